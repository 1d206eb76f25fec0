//! Plays the simulated receivers of a configuration file to devices outside this process, for
//! the emulated hardware rig (`scripts/qemu-test.sh --rig`): the GNSS receiver's NMEA to a
//! serial port (QEMU's emulated USB serial adapter, through a Unix socket), and every pulse
//! edge, PPS and DCF77, as one byte to a second socket, which a relay in the guest turns into
//! levels of gpio-sim lines. The guest's kernel drivers then stand between these signals and
//! pitime, as they do on a Pi.
//!
//! The pulse bytes: `P`/`p` the PPS line high/low, `D`/`d` the DCF77 line active/inactive.
//! A peer that is not there, or not reading, loses what is sent meanwhile, as a UART would:
//! nothing is queued to arrive late with a stale time.

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::gps_runner::SimulatedGps;
use super::longwave_runner::SimulatedLongwave;
use crate::config::{Config, SourceConfig};
use crate::time::Realtime;
use crate::worker::Workers;

/// How long the PPS line stays high.
const PULSE_WIDTH: Duration = Duration::from_millis(100);
const POLL: Duration = Duration::from_millis(200);

/// A Unix socket connected when first needed and again after its peer went away. What the peer
/// sends back (the guest writing to the receiver) is read and dropped, as a receiver would
/// ignore it: left unread, it would fill the socket and stall QEMU, which writes it blocking.
struct Link {
    path: PathBuf,
    stream: Option<UnixStream>,
    /// Whether the peer's first bytes were reported on stderr.
    heard_back: bool,
}

impl Link {
    fn new(path: &Path) -> Self {
        Link {
            path: path.to_path_buf(),
            stream: None,
            heard_back: false,
        }
    }

    fn drain(&mut self) {
        let Some(s) = &mut self.stream else { return };
        let mut buf = [0u8; 4096];
        loop {
            match s.read(&mut buf) {
                Ok(0) => return self.stream = None,
                Ok(n) if !self.heard_back => {
                    let text = String::from_utf8_lossy(&buf[..n.min(80)]);
                    eprintln!("{}: the peer sent {n} bytes: {text:?}", self.path.display());
                    self.heard_back = true;
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(_) => return self.stream = None,
            }
        }
    }

    /// Sends what the socket takes of `bytes` and drops the rest, as a UART with nobody reading
    /// would (a cut sentence fails its checksum at the reader).
    fn send(&mut self, bytes: &[u8]) {
        if self.stream.is_none() {
            self.stream = UnixStream::connect(&self.path)
                .and_then(|s| s.set_nonblocking(true).map(|()| s))
                .ok();
            if let Some(s) = &self.stream {
                shrink_send_buffer(s);
            }
        }
        self.drain();
        if let Some(s) = &mut self.stream {
            match s.write(bytes) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => self.stream = None,
            }
        }
    }
}

/// The smallest send buffer the kernel allows (a few kilobytes): QEMU reads its socket only
/// while the guest reads the device, and what waits in a larger buffer would arrive minutes
/// late, with the time it had when it was sent.
fn shrink_send_buffer(s: &UnixStream) {
    use std::os::fd::AsRawFd;
    let size: libc::c_int = 1;
    // SAFETY: a valid socket and an int option of the right size; a failure only keeps the
    // default size.
    unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_SNDBUF,
            (&size as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

/// What the player plays, from the first `gps` and longwave (`dcf77`, `msf`, `wwvb`) sources with `[source.simulate]`.
pub struct Signals {
    _workers: Workers,
    _gps: Option<SimulatedGps>,
    _dcf77: Option<SimulatedLongwave>,
}

impl Signals {
    pub fn start(config: &Config, serial: &Path, pulses: &Path) -> io::Result<Self> {
        let pulses = Arc::new(Mutex::new(Link::new(pulses)));
        let mut workers = Workers::default();
        let mut gps = None;
        let mut dcf77 = None;
        for source in &config.sources {
            match source {
                SourceConfig::Gps(c) if gps.is_none() => {
                    let Some(sim) = &c.simulate else { continue };
                    let (sim, rx) = SimulatedGps::start(sim.clone(), &c.name)?;
                    let tty = std::fs::File::open(&sim.device)?;
                    let mut serial = Link::new(serial);
                    workers.spawn("play-nmea", move |stop| copy(tty, &mut serial, stop))?;
                    let pulses = pulses.clone();
                    workers.spawn("play-pps", move |stop| {
                        relay(&rx, stop, |_| {
                            send(&pulses, b"P");
                            std::thread::sleep(PULSE_WIDTH);
                            send(&pulses, b"p");
                        })
                    })?;
                    gps = Some(sim);
                }
                SourceConfig::Longwave(c) if dcf77.is_none() => {
                    let Some(sim) = &c.simulate else { continue };
                    let (sim, rx) = SimulatedLongwave::start(
                        c.station,
                        sim.clone(),
                        c.receiver_delay.unwrap_or(0.0),
                    )?;
                    let pulses = pulses.clone();
                    workers.spawn("play-dcf77", move |stop| {
                        relay(&rx, stop, |(_, active): (Realtime, bool)| {
                            send(&pulses, if active { b"D" } else { b"d" });
                        })
                    })?;
                    dcf77 = Some(sim);
                }
                _ => {}
            }
        }
        if gps.is_none() && dcf77.is_none() {
            return Err(io::Error::other(
                "no gps or dcf77 source with [source.simulate] to play",
            ));
        }
        Ok(Signals {
            _workers: workers,
            _gps: gps,
            _dcf77: dcf77,
        })
    }
}

fn send(link: &Mutex<Link>, bytes: &[u8]) {
    if let Ok(mut l) = link.lock() {
        l.send(bytes);
    }
}

/// Hands each event to `f` until told to stop or the simulator ends.
fn relay<T>(rx: &Receiver<T>, stop: &AtomicBool, mut f: impl FnMut(T)) {
    while !stop.load(Ordering::Relaxed) {
        match rx.recv_timeout(POLL) {
            Ok(event) => f(event),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// Copies the simulated receiver's terminal to the serial link.
fn copy(mut tty: std::fs::File, serial: &mut Link, stop: &AtomicBool) {
    use std::os::fd::AsRawFd;
    let mut buf = [0u8; 4096];
    while !stop.load(Ordering::Relaxed) {
        let mut poll = libc::pollfd {
            fd: tty.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd for the duration of the call.
        if unsafe { libc::poll(&mut poll, 1, POLL.as_millis() as libc::c_int) } <= 0 {
            continue;
        }
        match tty.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => serial.send(&buf[..n]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;

    #[test]
    fn plays_nmea_and_pulse_edges_to_the_sockets() {
        let dir = std::env::temp_dir().join(format!("pitime-player-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (serial_path, pulses_path) = (dir.join("serial"), dir.join("pulses"));
        let serial = UnixListener::bind(&serial_path).unwrap();
        let pulses = UnixListener::bind(&pulses_path).unwrap();
        let text = "[[source]]\nkind = \"gps\"\n[source.simulate]\n\
                    [[source]]\nkind = \"dcf77\"\n[source.simulate]\n";
        let config = Config::parse("rig.toml", text, Path::new(".")).unwrap();
        let signals = Signals::start(&config, &serial_path, &pulses_path).unwrap();

        // Waits on the simulator's output: the first pulse comes at the next whole second.
        let (mut serial, _) = serial.accept().unwrap();
        let (mut pulses, _) = pulses.accept().unwrap();
        serial
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        pulses
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut nmea = Vec::new();
        while !String::from_utf8_lossy(&nmea).contains("RMC") {
            let mut buf = [0u8; 512];
            let n = serial.read(&mut buf).unwrap();
            nmea.extend_from_slice(&buf[..n]);
        }
        let mut edges = Vec::new();
        while !(edges.contains(&b'P') && edges.contains(&b'p') && edges.contains(&b'D')) {
            let mut buf = [0u8; 16];
            let n = pulses.read(&mut buf).unwrap();
            assert!(n > 0, "pulse socket closed after {edges:?}");
            edges.extend_from_slice(&buf[..n]);
        }
        assert!(edges.iter().all(|b| b"PpDd".contains(b)), "{edges:?}");
        drop(signals);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
