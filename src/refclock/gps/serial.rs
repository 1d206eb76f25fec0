//! The receiver's serial port: raw mode at a set speed, reads with a timeout so the driver can
//! notice a stop request or a silent receiver. The port's settings are restored when it is
//! closed, so that `pitime detect` trying speeds leaves a port as it found it.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::Duration;

pub struct SerialPort {
    file: File,
    /// The settings before ours.
    saved: libc::termios,
}

fn speed(baud: u32) -> io::Result<libc::speed_t> {
    Ok(match baud {
        4800 => libc::B4800,
        9600 => libc::B9600,
        19200 => libc::B19200,
        38400 => libc::B38400,
        57600 => libc::B57600,
        115200 => libc::B115200,
        230400 => libc::B230400,
        460800 => libc::B460800,
        _ => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "unsupported speed",
            ))
        }
    })
}

impl SerialPort {
    /// Opens `path` (a tty, a USB serial device or a pseudo-terminal) in raw mode.
    pub fn open(path: &Path, baud: u32) -> io::Result<Self> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOCTTY | libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(path)?;
        let fd = file.as_raw_fd();
        // SAFETY: termios is plain data; fd is open for the duration of these calls.
        unsafe {
            let mut saved: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(fd, &mut saved) != 0 {
                return Err(io::Error::last_os_error());
            }
            let mut t = saved;
            libc::cfmakeraw(&mut t);
            t.c_cflag |= libc::CLOCAL | libc::CREAD;
            let s = speed(baud)?;
            libc::cfsetispeed(&mut t, s);
            libc::cfsetospeed(&mut t, s);
            if libc::tcsetattr(fd, libc::TCSANOW, &t) != 0 {
                return Err(io::Error::last_os_error());
            }
            // What arrived before (at another speed, or long ago) has no use and no timing.
            libc::tcflush(fd, libc::TCIFLUSH);
            Ok(SerialPort { file, saved })
        }
    }

    /// Reads what has arrived, waiting up to `timeout`: `Ok(0)` on timeout. A hang-up (the
    /// device unplugged, the pty closed) is an error, so the caller reopens.
    pub fn read_timeout(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<usize> {
        let mut pfd = libc::pollfd {
            fd: self.file.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: one valid pollfd.
        let n = unsafe { libc::poll(&mut pfd, 1, ms) };
        if n < 0 {
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::Interrupted {
                Ok(0)
            } else {
                Err(e)
            };
        }
        if n == 0 {
            return Ok(0);
        }
        match self.file.read(buf) {
            Ok(0) => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "device closed",
            )),
            Ok(n) => Ok(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if pfd.revents & (libc::POLLHUP | libc::POLLERR) != 0 {
                    Err(io::Error::new(io::ErrorKind::BrokenPipe, "device hung up"))
                } else {
                    Ok(0)
                }
            }
            Err(e) => Err(e),
        }
    }
}

/// Writes to an open port and changes its speed, from another thread than the one reading it.
pub struct PortHandle {
    file: File,
}

impl PortHandle {
    /// Writes all of `bytes`, waiting briefly when the output buffer is full (commands are short;
    /// a port that stays full is an error).
    pub fn write(&self, bytes: &[u8]) -> io::Result<()> {
        let mut rest = bytes;
        let mut waits = 0;
        while !rest.is_empty() {
            match (&self.file).write(rest) {
                Ok(n) => rest = &rest[n..],
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && waits < 20 => {
                    waits += 1;
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Moves the port to `baud`, dropping what was received at the old speed.
    pub fn set_baud(&self, baud: u32) -> io::Result<()> {
        let fd = self.file.as_raw_fd();
        let s = speed(baud)?;
        // SAFETY: termios is plain data; fd is open for the duration of these calls.
        unsafe {
            let mut t: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(fd, &mut t) != 0 {
                return Err(io::Error::last_os_error());
            }
            libc::cfsetispeed(&mut t, s);
            libc::cfsetospeed(&mut t, s);
            // Drained first: a command written just before goes out at the old speed.
            libc::tcdrain(fd);
            if libc::tcsetattr(fd, libc::TCSANOW, &t) != 0 {
                return Err(io::Error::last_os_error());
            }
            libc::tcflush(fd, libc::TCIFLUSH);
        }
        Ok(())
    }
}

impl SerialPort {
    /// A handle on the same open port, for writing and changing speed.
    pub fn handle(&self) -> io::Result<PortHandle> {
        Ok(PortHandle {
            file: self.file.try_clone()?,
        })
    }
}

impl Drop for SerialPort {
    fn drop(&mut self) {
        // SAFETY: restores settings read from this descriptor, which is still open.
        unsafe { libc::tcsetattr(self.file.as_raw_fd(), libc::TCSANOW, &self.saved) };
    }
}

/// The line discipline attached to a tty (`N_TTY`, 0, unless a kernel driver such as Bluetooth's
/// HCI or the PPS line discipline took the port), read without changing anything.
pub fn line_discipline(path: &Path) -> io::Result<i32> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOCTTY | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)?;
    let mut ldisc: libc::c_int = 0;
    // SAFETY: TIOCGETD writes one int.
    if unsafe { libc::ioctl(file.as_raw_fd(), libc::TIOCGETD, &mut ldisc) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(ldisc)
}
