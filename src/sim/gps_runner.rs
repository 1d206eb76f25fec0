//! Plays the simulated receiver in real time: NMEA on a pseudo-terminal reached through a
//! symlink (the path the GPS driver opens, as it would /dev/ttyACM0), and pulses on a channel
//! (standing in for /dev/pps0). Unplugging closes the terminal and removes the link.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver};

use super::gps::GpsSimulator;
use super::gps_receiver::{Output, SimReceiver};
use super::true_clock::TrueClock;
use crate::config::GpsSimConfig;
use crate::time::Realtime;
use crate::worker::Workers;

/// A pseudo-terminal pair: the simulator writes the master; the slave stays open so the
/// device exists (as a plugged-in receiver does) while the driver reconnects.
struct Pty {
    master: File,
    _slave: OwnedFd,
}

/// A new pseudo-terminal: its master side, and its slave side (the receiver's serial port).
pub fn pseudo_terminal() -> io::Result<(File, OwnedFd)> {
    let (mut master, mut slave) = (-1, -1);
    // SAFETY: openpty writes two descriptors; the name, termios and winsize are optional.
    let r = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both descriptors are new and owned here.
    Ok(unsafe { (File::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) })
}

fn open_pty(link: &Path) -> io::Result<Pty> {
    let (master, slave) = pseudo_terminal()?;
    use std::os::fd::AsRawFd;
    // SAFETY: termios is plain data; the descriptors are open.
    unsafe {
        let mut t: libc::termios = std::mem::zeroed();
        libc::tcgetattr(slave.as_raw_fd(), &mut t);
        libc::cfmakeraw(&mut t);
        libc::tcsetattr(slave.as_raw_fd(), libc::TCSANOW, &t);
        // Never block the simulator on a reader that is not reading.
        let flags = libc::fcntl(master.as_raw_fd(), libc::F_GETFL);
        libc::fcntl(master.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK);
    }
    let target = std::fs::read_link(format!("/proc/self/fd/{}", slave.as_raw_fd()))?;
    let tmp = link.with_extension("new");
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(target, &tmp)?;
    std::fs::rename(&tmp, link)?;
    Ok(Pty {
        master,
        _slave: slave,
    })
}

pub struct SimulatedGps {
    workers: Workers,
    dir: PathBuf,
    /// The path to open as the receiver's serial device.
    pub device: PathBuf,
}

impl SimulatedGps {
    /// Starts the receiver; pulses arrive on the returned channel, stamped as the kernel
    /// would stamp them (local time of the edge).
    pub fn start(config: GpsSimConfig, name: &str) -> io::Result<(Self, Receiver<Realtime>)> {
        // A directory of our own per simulator (the name is only a hint, kept to safe letters).
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let safe: String = name
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .take(32)
            .collect();
        let dir =
            std::env::temp_dir().join(format!("pitime-sim-{}-{n}-{safe}", std::process::id()));
        std::fs::create_dir(&dir)?;
        let device = dir.join("tty");
        let pty = open_pty(&device)?;
        let (tx, rx) = mpsc::channel();
        let mut workers = Workers::default();
        workers.spawn("sim-gps", {
            let device = device.clone();
            move |stop| play(config, pty, &device, tx, stop)
        })?;
        Ok((
            SimulatedGps {
                workers,
                dir,
                device,
            },
            rx,
        ))
    }
}

impl Drop for SimulatedGps {
    fn drop(&mut self) {
        // Stopped first, so that it cannot plug the device back in.
        drop(std::mem::take(&mut self.workers));
        // Only what we made: the link (and a half-made one), then the empty directory.
        let _ = std::fs::remove_file(&self.device);
        let _ = std::fs::remove_file(self.device.with_extension("new"));
        let _ = std::fs::remove_dir(&self.dir);
    }
}

fn play(
    config: GpsSimConfig,
    pty: Pty,
    device: &Path,
    pulses: mpsc::Sender<Realtime>,
    stop: &AtomicBool,
) {
    let clock = TrueClock::new(config.clock_offset);
    // A receiver that answers commands, or (no model) one that only talks.
    let mut rx = config
        .model
        .as_deref()
        .map(|m| SimReceiver::new(m, config.nak_all, config.deaf, config.reset_after));
    let mut sim = GpsSimulator::new(config);
    let mut pty = Some(pty);
    let start = clock.now();
    // The first whole second of true time after now.
    let mut second = start.as_nanos().div_euclid(1_000_000_000) + 1;
    loop {
        let top = Realtime::from_timespec(second, 0);
        let s = sim.second(second, top.seconds_since(start));
        let Some(edge) = clock.sleep_until(top.add_secs_f64(s.pulse.unwrap_or(0.0)), stop) else {
            return;
        };
        if s.pulse.is_some() {
            let _ = pulses.send(edge);
        }
        match (s.unplugged, pty.is_some()) {
            (true, true) => {
                pty = None;
                let _ = std::fs::remove_file(device);
                tracing::info!("simulated receiver unplugged");
            }
            (false, false) => match open_pty(device) {
                Ok(p) => {
                    pty = Some(p);
                    // Powered off while unplugged: its settings are gone.
                    rx.iter_mut().for_each(SimReceiver::power_cycle);
                    tracing::info!("simulated receiver plugged back in");
                }
                Err(e) => tracing::warn!("simulated receiver: {e}"),
            },
            _ => {}
        }
        let elapsed = top.seconds_since(start);
        for (at, bytes) in &s.sentences {
            if !listen_until(
                &clock,
                top.add_secs_f64(*at),
                stop,
                &mut pty,
                &mut rx,
                elapsed,
            ) {
                return;
            }
            if let Some(p) = &mut pty {
                match &rx {
                    Some(r) if r.sends(bytes) => send(p, r, bytes),
                    Some(_) => {}
                    // A full buffer (nobody reading) drops the sentence, as a UART would.
                    None => drop(p.master.write_all(bytes)),
                }
            }
        }
        if let (Some(p), Some(r)) = (&mut pty, &mut rx) {
            if let Some(survey) = r.survey_message(elapsed) {
                send(p, r, &survey);
            }
        }
        // Commands are answered between the bursts too, up to just before the next pulse.
        let before_next = top.add_secs_f64(0.97);
        if !listen_until(&clock, before_next, stop, &mut pty, &mut rx, elapsed) {
            return;
        }
        second += 1;
    }
}

/// Sleeps until `t`, answering commands every 20 ms meanwhile; false if asked to stop.
fn listen_until(
    clock: &TrueClock,
    t: Realtime,
    stop: &AtomicBool,
    pty: &mut Option<Pty>,
    rx: &mut Option<SimReceiver>,
    elapsed: f64,
) -> bool {
    loop {
        if let (Some(p), Some(r)) = (pty.as_mut(), rx.as_mut()) {
            answer(p, r, elapsed);
        }
        let now = clock.now();
        if now >= t || rx.is_none() {
            return clock.sleep_until(t, stop).is_some();
        }
        let step = now.add_secs_f64(0.02);
        if clock
            .sleep_until(if step < t { step } else { t }, stop)
            .is_none()
        {
            return false;
        }
    }
}

/// The speed the pseudo-terminal is set to: the other end's (the driver's) termios.
fn port_baud(pty: &Pty) -> Option<u32> {
    use std::os::fd::AsRawFd;
    // SAFETY: termios is plain data; the descriptor is open.
    let speed = unsafe {
        let mut t: libc::termios = std::mem::zeroed();
        if libc::tcgetattr(pty.master.as_raw_fd(), &mut t) != 0 {
            return None;
        }
        libc::cfgetospeed(&t)
    };
    [
        (libc::B9600, 9600),
        (libc::B19200, 19200),
        (libc::B38400, 38400),
        (libc::B57600, 57600),
        (libc::B115200, 115_200),
    ]
    .into_iter()
    .find_map(|(s, baud)| (s == speed).then_some(baud))
}

/// Writes as the receiver's UART does: at another speed than the port's, what arrives is
/// noise (never a `$` or a UBX sync byte).
fn send(pty: &mut Pty, rx: &SimReceiver, bytes: &[u8]) {
    let _ = match port_baud(pty) == Some(rx.baud) {
        true => pty.master.write_all(bytes),
        false => {
            let noise: Vec<u8> = bytes.iter().map(|b| b.rotate_left(3) | 0x80).collect();
            pty.master.write_all(&noise)
        }
    };
}

/// Reads what the driver sent and answers it; at another speed than the receiver's, the
/// receiver hears nothing it can use.
fn answer(pty: &mut Pty, rx: &mut SimReceiver, elapsed: f64) {
    let mut buf = [0u8; 1024];
    while let Ok(n @ 1..) = pty.master.read(&mut buf) {
        if port_baud(pty) != Some(rx.baud) {
            continue;
        }
        for out in rx.input(&buf[..n], elapsed) {
            match out {
                Output::Bytes(b) => send(pty, rx, &b),
                Output::Baud(baud) => rx.baud = baud,
            }
        }
    }
}
