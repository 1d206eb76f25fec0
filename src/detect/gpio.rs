//! Watches a GPIO chip's lines for edges and classifies each line's. It requests lines as
//! inputs, which on the Pi also switches a pin's function to GPIO (and leaves it so), so lines
//! in use, outputs, and pins muxed to a device (the UART, I2C, SPI, the SD card) are left alone.

use std::collections::BTreeMap;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use gpiocdev::line::{Direction, EdgeKind};

use super::pulses::classify;
use super::report::{ChipReport, LineReport};
use crate::clock::system::monotonic_now;
use crate::config::Bias;
use crate::refclock::longwave::driver::request_line;

/// The header's GPIO lines on a Pi (lines 28 and up are the board's own: SD card, Wi-Fi, LEDs).
const PI_HEADER: std::ops::RangeInclusive<u32> = 2..=27;
/// Header lines that carry I2C, SPI or the UART when those are enabled: without the kernel's
/// pinmux table to say which are, they are watched only when named.
const PI_ALTERNATE: [u32; 9] = [2, 3, 7, 8, 9, 10, 11, 14, 15];

/// The header's chip on pitime's image, else the first chip (the header's on Raspberry Pi OS).
pub fn default_chip() -> PathBuf {
    let header = Path::new("/dev/gpiochip-header");
    match header.exists() {
        true => header.into(),
        false => "/dev/gpiochip0".into(),
    }
}

/// Pins that the kernel's pinmux table (debugfs `pinmux-pins`) shows muxed to a device
/// function: pin number and owner. Pins set up as GPIO, or unclaimed, are not listed.
pub fn muxed_pins(table: &str) -> BTreeMap<u32, String> {
    let mut out = BTreeMap::new();
    for line in table.lines() {
        // pin 14 (gpio14): fe201000.serial (GPIO UNCLAIMED) function alt0 group gpio14
        let Some((pin, rest)) = line.strip_prefix("pin ").and_then(|l| l.split_once(':')) else {
            continue;
        };
        let Some(pin) = pin.split_whitespace().next().and_then(|p| p.parse().ok()) else {
            continue;
        };
        let owner = rest.split_whitespace().next().unwrap_or("(MUX");
        let function = rest
            .split_once(" function ")
            .and_then(|(_, f)| f.split_whitespace().next());
        if owner != "(MUX" && !function.is_some_and(|f| f.starts_with("gpio")) {
            out.insert(pin, format!("{owner} ({})", function.unwrap_or("?")));
        }
    }
    out
}

/// The pinmux table of the pin controller behind a chip (its label names both), when debugfs
/// is mounted and readable (as root).
fn pinmux_table(label: &str) -> Option<String> {
    std::fs::read_dir("/sys/kernel/debug/pinctrl")
        .ok()?
        .flatten()
        .find(|e| e.file_name().to_string_lossy().ends_with(label))
        .and_then(|e| std::fs::read_to_string(e.path().join("pinmux-pins")).ok())
}

/// Watches `lines` (default: all that are safe to) of `chip` for `seconds`.
pub fn watch(chip_path: &Path, lines: Option<&[u32]>, seconds: f64) -> ChipReport {
    let mut report = ChipReport {
        chip: chip_path.into(),
        seconds,
        lines: Vec::new(),
        note: None,
    };
    let chip = match gpiocdev::Chip::from_path(chip_path).and_then(|c| Ok((c.info()?, c))) {
        Ok(c) => c,
        Err(e) => {
            report.note = Some(format!("cannot open: {e}"));
            return report;
        }
    };
    let (info, chip) = chip;
    let names: Vec<String> = (0..info.num_lines)
        .map(|l| chip.line_info(l).map(|i| i.name).unwrap_or_default())
        .collect();
    let pi = names.first().is_some_and(|n| n == "ID_SDA" || n == "ID_SD");
    let muxed = pinmux_table(&info.label).map(|t| muxed_pins(&t));
    let candidates: Vec<u32> = match (lines, pi) {
        (Some(l), _) => l.to_vec(),
        (None, false) => (0..info.num_lines).collect(),
        (None, true) => {
            if muxed.is_none() {
                report.note = Some(format!(
                    "the kernel's pinmux table is not readable (run as root): lines {PI_ALTERNATE:?}, \
                     which may carry I2C, SPI or the UART, are watched only if named with --lines"
                ));
            }
            PI_HEADER
                .filter(|l| muxed.is_some() || !PI_ALTERNATE.contains(l))
                .collect()
        }
    };
    let start = monotonic_now();
    let mut watched = Vec::new();
    for line in candidates {
        let name = names.get(line as usize).cloned().unwrap_or_default();
        let skip = |why: String| LineReport {
            line,
            name: name.clone(),
            pulses: None,
            skipped: Some(why),
        };
        let info = match chip.line_info(line) {
            Ok(i) => i,
            Err(e) => {
                report.lines.push(skip(e.to_string()));
                continue;
            }
        };
        let mux = muxed.as_ref().and_then(|m| m.get(&line));
        let why = if info.used {
            Some(format!("in use by {}", non_empty(&info.consumer)))
        } else if info.direction == Direction::Output {
            Some("an output".to_string())
        } else {
            mux.map(|owner| format!("muxed to {owner}"))
        };
        if let Some(why) = why {
            report.lines.push(skip(why));
            continue;
        }
        match request_line(chip_path, line, false, Bias::AsIs, 0.0, "pitime-detect") {
            Ok(request) => watched.push((line, name, request, Vec::new())),
            Err(e) => report.lines.push(skip(format!("cannot request: {e}"))),
        }
    }
    let end = start + (seconds * 1e9) as i64;
    let mut fds: Vec<libc::pollfd> = watched
        .iter()
        .map(|(_, _, r, _)| libc::pollfd {
            fd: r.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    while !fds.is_empty() {
        let left = Duration::from_nanos((end - monotonic_now()).max(0) as u64);
        if left.is_zero() {
            break;
        }
        let ms = left.as_millis().clamp(1, i32::MAX as u128) as i32;
        // SAFETY: `fds` holds valid pollfds for descriptors the requests keep open.
        if unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) } < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            report.note = Some(format!("watching stopped early: {e}"));
            break;
        }
        for (pfd, (_, _, request, edges)) in fds.iter().zip(&mut watched) {
            if pfd.revents & libc::POLLIN == 0 {
                continue;
            }
            if let Ok(e) = request.read_edge_event() {
                let t = (e.timestamp_ns as i64 - start) as f64 / 1e9;
                edges.push((t, e.kind == EdgeKind::Rising));
            }
        }
    }
    for (line, name, _, edges) in watched {
        report.lines.push(LineReport {
            line,
            name,
            pulses: Some(classify(&edges, seconds)),
            skipped: None,
        });
    }
    report.lines.sort_by_key(|l| l.line);
    report
}

fn non_empty(consumer: &str) -> &str {
    match consumer {
        "" => "another program",
        c => c,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_muxed_to_devices_are_found_in_the_pinmux_table() {
        let table = "Pinmux settings per pin\n\
            Format: pin (name): mux_owner gpio_owner hog?\n\
            pin 2 (gpio2): fe804000.i2c (GPIO UNCLAIMED) function alt0 group gpio2\n\
            pin 4 (gpio4): (MUX UNCLAIMED) (GPIO UNCLAIMED)\n\
            pin 14 (gpio14): fe201000.serial (GPIO UNCLAIMED) function alt0 group gpio14\n\
            pin 17 (gpio17): fe200000.gpio (GPIO UNCLAIMED) (HOG) function gpio_in group gpio17\n\
            pin 18 (gpio18): (MUX UNCLAIMED) pinctrl-bcm2711:18\n\
            pin x (bad): junk\n";
        let m = muxed_pins(table);
        assert_eq!(m.keys().copied().collect::<Vec<_>>(), [2, 14]);
        assert_eq!(m[&14], "fe201000.serial (alt0)");
    }
}
