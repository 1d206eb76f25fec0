//! PPS inputs: the kernel's RFC 2783 interface (`/dev/ppsN`), a GPIO line's edge events, or
//! the simulator. Each yields CLOCK_REALTIME timestamps of the chosen edge.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Duration;

use gpiocdev::line::{EdgeDetection, EdgeKind, EventClock};

use crate::config::{PpsEdge, PpsInput};
use crate::time::Realtime;

/// A source of pulse timestamps.
pub enum Pulses {
    Kernel(KernelPps),
    Gpio(gpiocdev::Request, PpsEdge),
    /// Timestamps from elsewhere in the process (the daemon injects a simulator's).
    Injected(Receiver<Realtime>),
}

/// The input as the configuration names it, when there is one.
pub fn name(input: &PpsInput) -> Option<String> {
    match input {
        PpsInput::None => None,
        PpsInput::Kernel(path) => Some(path.display().to_string()),
        PpsInput::Gpio { chip, line } => Some(format!("{}:{line}", chip.display())),
    }
}

impl Pulses {
    pub fn open(input: &PpsInput, edge: PpsEdge) -> io::Result<Option<Self>> {
        Ok(match input {
            PpsInput::None => None,
            PpsInput::Kernel(path) => Some(Pulses::Kernel(KernelPps::open(path, edge)?)),
            PpsInput::Gpio { chip, line } => {
                let request = gpiocdev::Request::builder()
                    .on_chip(chip)
                    .with_consumer("pitime")
                    .with_line(*line)
                    .as_input()
                    .with_edge_detection(match edge {
                        PpsEdge::Assert => EdgeDetection::RisingEdge,
                        PpsEdge::Clear => EdgeDetection::FallingEdge,
                    })
                    .with_event_clock(EventClock::Realtime)
                    .request()
                    .map_err(io::Error::other)?;
                Some(Pulses::Gpio(request, edge))
            }
        })
    }

    /// The next pulse, waiting up to `timeout`: `Ok(None)` when none came.
    pub fn next(&mut self, timeout: Duration) -> io::Result<Option<Realtime>> {
        match self {
            Pulses::Kernel(k) => k.fetch(timeout),
            Pulses::Gpio(request, edge) => {
                if !request.wait_edge_event(timeout).map_err(io::Error::other)? {
                    return Ok(None);
                }
                let e = request.read_edge_event().map_err(io::Error::other)?;
                let wanted = match edge {
                    PpsEdge::Assert => EdgeKind::Rising,
                    PpsEdge::Clear => EdgeKind::Falling,
                };
                Ok((e.kind == wanted).then(|| Realtime::from_nanos(e.timestamp_ns as i64)))
            }
            Pulses::Injected(rx) => match rx.recv_timeout(timeout) {
                Ok(t) => Ok(Some(t)),
                Err(RecvTimeoutError::Timeout) => Ok(None),
                Err(RecvTimeoutError::Disconnected) => Err(io::Error::new(
                    io::ErrorKind::BrokenPipe,
                    "the injected pulses stopped",
                )),
            },
        }
    }
}

// RFC 2783 as Linux implements it (linux/pps.h). The ioctl numbers encode the size of a
// pointer, not of the structure: a quirk of the header kept for compatibility.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct PpsKtime {
    sec: i64,
    nsec: i32,
    flags: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct PpsKinfo {
    assert_sequence: u32,
    clear_sequence: u32,
    assert_tu: PpsKtime,
    clear_tu: PpsKtime,
    current_mode: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct PpsFdata {
    info: PpsKinfo,
    timeout: PpsKtime,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct PpsKparams {
    api_version: i32,
    mode: i32,
    assert_off_tu: PpsKtime,
    clear_off_tu: PpsKtime,
}

const PPS_CAPTUREASSERT: i32 = 0x01;
const PPS_CAPTURECLEAR: i32 = 0x02;
const PPS_TSFMT_TSPEC: i32 = 0x1000;

const fn ioc(dir: u64, nr: u64) -> u64 {
    (dir << 30) | ((std::mem::size_of::<usize>() as u64) << 16) | ((b'p' as u64) << 8) | nr
}
const PPS_GETPARAMS: u64 = ioc(2, 0xa1);
const PPS_SETPARAMS: u64 = ioc(1, 0xa2);
const PPS_FETCH: u64 = ioc(3, 0xa4);

pub struct KernelPps {
    file: File,
    edge: PpsEdge,
    last_sequence: Option<u32>,
}

impl KernelPps {
    fn open(path: &std::path::Path, edge: PpsEdge) -> io::Result<Self> {
        let file = File::options().read(true).write(true).open(path)?;
        let fd = file.as_raw_fd();
        let mut params = PpsKparams::default();
        // SAFETY: the ioctls take a pointer to a PpsKparams that lives across the calls.
        unsafe {
            if libc::ioctl(fd, PPS_GETPARAMS as _, &mut params) < 0 {
                return Err(io::Error::last_os_error());
            }
            params.mode |= PPS_TSFMT_TSPEC
                | match edge {
                    PpsEdge::Assert => PPS_CAPTUREASSERT,
                    PpsEdge::Clear => PPS_CAPTURECLEAR,
                };
            // Drivers that capture only one edge refuse the change; fetching still works.
            if libc::ioctl(fd, PPS_SETPARAMS as _, &params) < 0 {
                tracing::debug!(error = %io::Error::last_os_error(), "PPS_SETPARAMS refused");
            }
        }
        Ok(KernelPps {
            file,
            edge,
            last_sequence: None,
        })
    }

    fn fetch(&mut self, timeout: Duration) -> io::Result<Option<Realtime>> {
        let mut data = PpsFdata::default();
        data.timeout.sec = timeout.as_secs() as i64;
        data.timeout.nsec = timeout.subsec_nanos() as i32;
        // SAFETY: PPS_FETCH reads and writes one PpsFdata.
        let r = unsafe { libc::ioctl(self.file.as_raw_fd(), PPS_FETCH as _, &mut data) };
        if r < 0 {
            let e = io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(libc::ETIMEDOUT) | Some(libc::EINTR) => Ok(None),
                _ => Err(e),
            };
        }
        let (sequence, t) = match self.edge {
            PpsEdge::Assert => (data.info.assert_sequence, data.info.assert_tu),
            PpsEdge::Clear => (data.info.clear_sequence, data.info.clear_tu),
        };
        // FETCH also returns on the other edge: only a new sequence number is a new pulse.
        if self.last_sequence == Some(sequence) {
            return Ok(None);
        }
        self.last_sequence = Some(sequence);
        Ok(Some(Realtime::from_timespec(t.sec, t.nsec as i64)))
    }
}
