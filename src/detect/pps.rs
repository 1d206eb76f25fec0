//! Listens to the kernel's PPS devices (`/dev/ppsN`) for assert pulses.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::report::PpsReport;
use crate::config::{PpsEdge, PpsInput};
use crate::refclock::gps::pps::Pulses;

pub fn candidates() -> Vec<PathBuf> {
    super::device_nodes(&["pps"])
}

pub fn listen(device: &Path, seconds: f64) -> PpsReport {
    let name = device
        .file_name()
        .and_then(|n| {
            std::fs::read_to_string(Path::new("/sys/class/pps").join(n).join("name")).ok()
        })
        .map(|n| n.trim().to_string());
    let mut report = PpsReport {
        device: device.into(),
        name,
        pulses: 0,
        interval: None,
        note: None,
    };
    let mut pulses = match Pulses::open(&PpsInput::Kernel(device.into()), PpsEdge::Assert) {
        Ok(Some(p)) => p,
        Ok(None) => return report,
        Err(e) => {
            report.note = Some(format!("cannot open: {e}"));
            return report;
        }
    };
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let mut stamps = Vec::new();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match pulses.next(left) {
            Ok(Some(t)) => stamps.push(t),
            Ok(None) => {}
            Err(e) => {
                report.note = Some(format!("cannot read: {e}"));
                break;
            }
        }
    }
    report.pulses = stamps.len();
    if let (Some(first), Some(last)) = (stamps.first(), stamps.last()) {
        if stamps.len() > 1 {
            report.interval = Some(last.seconds_since(*first) / (stamps.len() - 1) as f64);
        }
    }
    report
}
