//! `pitime detect`: looks for GNSS receivers on serial ports, pulses on GPIO lines and kernel PPS
//! devices, and suggests the `[[source]]` sections for what it finds. It only listens.
//!
//! `stream` (NMEA and UBX in a byte stream), `pulses` (what a line's edges are) and `report`
//! are pure; `serial`, `gpio` and `pps` read the devices, all at once, each in its own thread.

pub mod gpio;
pub mod pps;
pub mod pulses;
pub mod report;
pub mod serial;
pub mod stream;

use std::path::PathBuf;

use report::Report;

/// The device nodes in /dev named one of `prefixes` and a number (ttyUSB0, pps1), in numeric
/// order: `ttyS10` after `ttyS9`.
fn device_nodes(prefixes: &[&str]) -> Vec<PathBuf> {
    let number = |name: &str| -> Option<(String, u32)> {
        let prefix = prefixes.iter().find(|p| name.starts_with(**p))?;
        let digits = &name[prefix.len()..];
        let ok = !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit());
        ok.then(|| (prefix.to_string(), digits.parse().unwrap_or(u32::MAX)))
    };
    let mut found: Vec<((String, u32), PathBuf)> = std::fs::read_dir("/dev")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter_map(|p| Some((number(p.file_name()?.to_str()?)?, p)))
        .collect();
    found.sort();
    found.into_iter().map(|(_, p)| p).collect()
}

/// Which devices of a kind to look at.
#[derive(Clone, Debug, PartialEq)]
pub enum Devices {
    /// The usual places.
    Search,
    These(Vec<PathBuf>),
    Skip,
}

impl Devices {
    /// From a repeatable option: none given searches, `none` skips.
    pub fn from_args(args: Vec<PathBuf>) -> Self {
        match args.as_slice() {
            [] => Devices::Search,
            [one] if one.as_os_str() == "none" => Devices::Skip,
            _ => Devices::These(args),
        }
    }

    fn list(self, search: impl FnOnce() -> Vec<PathBuf>) -> Vec<PathBuf> {
        match self {
            Devices::Search => search(),
            Devices::These(d) => d,
            Devices::Skip => Vec::new(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Options {
    pub serial: Devices,
    /// At most one chip: the header's.
    pub chip: Devices,
    pub lines: Option<Vec<u32>>,
    pub pps: Devices,
    /// How long to watch GPIO lines and PPS devices.
    pub seconds: f64,
}

pub fn run(options: Options) -> Report {
    let serial = options.serial.list(serial::candidates);
    let chip = options.chip.list(|| vec![gpio::default_chip()]);
    let pps = options.pps.list(pps::candidates);
    let (seconds, lines) = (options.seconds, options.lines);
    std::thread::scope(|scope| {
        let serial: Vec<_> = serial
            .iter()
            .map(|d| scope.spawn(move || serial::probe(d)))
            .collect();
        let gpio = chip
            .first()
            .map(|c| scope.spawn(move || gpio::watch(c, lines.as_deref(), seconds)));
        let pps: Vec<_> = pps
            .iter()
            .map(|d| scope.spawn(move || pps::listen(d, seconds)))
            .collect();
        // A probe that panicked is a bug; the others' findings still count.
        Report {
            serial: serial.into_iter().filter_map(|h| h.join().ok()).collect(),
            gpio: gpio.and_then(|h| h.join().ok()),
            pps: pps.into_iter().filter_map(|h| h.join().ok()).collect(),
        }
    })
}
