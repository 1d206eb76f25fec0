//! Listens to serial ports at the usual speeds for a GNSS receiver. Reads only: nothing is sent,
//! and each port's settings are restored when it is closed.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::report::SerialReport;
use super::stream::StreamSurvey;
use crate::refclock::gps::serial::{self, SerialPort};

/// The speeds receivers ship with, most common first.
pub const BAUDS: [u32; 6] = [9600, 38400, 115200, 4800, 57600, 230400];
/// Per speed: a receiver sends at least once a second, so two bursts and some.
const LISTEN: Duration = Duration::from_millis(2500);
/// The line disciplines that leave the bytes to a reader: the plain tty, and the PPS line
/// discipline (which only watches DCD). Others (Bluetooth's HCI on the Pi's PL011) own the port.
const N_TTY: i32 = 0;
const N_PPS: i32 = 18;

/// Where a Pi's receiver may be: the header UART by its stable name, the UARTs, USB adapters and
/// receivers with USB. Only those that exist; a port reached by two names is listed once.
pub fn candidates() -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = Vec::new();
    let serial0 = Path::new("/dev/serial0");
    if serial0.exists() {
        found.push(serial0.into());
    }
    let ttys = super::device_nodes(&["ttyAMA", "ttyS", "ttyUSB", "ttyACM"]);
    let canonical = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.into());
    for tty in ttys {
        if !found.iter().any(|f| canonical(f) == canonical(&tty)) {
            found.push(tty);
        }
    }
    found
}

/// Listens to `device` at each speed until one gives NMEA or UBX.
pub fn probe(device: &Path) -> SerialReport {
    let report = |baud, stream, note: Option<String>| SerialReport {
        device: device.into(),
        baud,
        stream,
        note,
    };
    match serial::line_discipline(device) {
        Ok(N_TTY | N_PPS) => {}
        Ok(other) => {
            return report(
                None,
                None,
                Some(format!(
                    "not read: a kernel driver owns it (line discipline {other})"
                )),
            )
        }
        Err(e) => return report(None, None, Some(format!("cannot open: {e}"))),
    }
    let mut last = None;
    for baud in BAUDS {
        let survey = match listen(device, baud) {
            Ok(s) => s,
            Err(e) => return report(None, None, Some(format!("cannot read at {baud} baud: {e}"))),
        };
        let summary = survey.summary().clone();
        if summary.speaks() {
            return report(Some(baud), Some(summary), None);
        }
        if summary.bytes == 0 {
            // A wrong speed still gives bytes (garbage, or NULs for framing errors): nothing at
            // all means nothing is sending.
            return report(
                None,
                None,
                Some(format!("silent: no byte in {} s", LISTEN.as_secs_f64())),
            );
        }
        last = Some(summary);
    }
    let bytes = last.as_ref().map_or(0, |s| s.bytes);
    report(
        None,
        last,
        Some(format!(
            "{bytes} bytes at {} baud, but no NMEA or UBX at any of {BAUDS:?}",
            BAUDS[BAUDS.len() - 1]
        )),
    )
}

fn listen(device: &Path, baud: u32) -> std::io::Result<StreamSurvey> {
    let mut port = SerialPort::open(device, baud)?;
    let mut survey = StreamSurvey::default();
    let deadline = Instant::now() + LISTEN;
    let mut buf = [0u8; 1024];
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        let n = port.read_timeout(&mut buf, left)?;
        survey.push(&buf[..n]);
    }
    Ok(survey)
}
