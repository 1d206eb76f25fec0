//! Plays the simulated receiver in real time: NMEA on a pseudo-terminal reached through a
//! symlink (the path the GPS driver opens, as it would /dev/ttyACM0), and pulses on a channel
//! (standing in for /dev/pps0). Unplugging closes the terminal and removes the link.

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver};

use super::gps::GpsSimulator;
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
                    tracing::info!("simulated receiver plugged back in");
                }
                Err(e) => tracing::warn!("simulated receiver: {e}"),
            },
            _ => {}
        }
        for (at, bytes) in &s.sentences {
            if clock.sleep_until(top.add_secs_f64(*at), stop).is_none() {
                return;
            }
            if let Some(p) = &mut pty {
                // A full buffer (nobody reading) drops the sentence, as a UART would.
                let _ = p.master.write_all(bytes);
            }
        }
        second += 1;
    }
}
