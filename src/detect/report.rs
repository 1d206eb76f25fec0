//! What `pitime detect` found, as text for a person, as JSON, and as the `[[source]]` sections
//! it suggests. Pure.

use std::fmt::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::pulses::{Edge, Pulses};
use super::stream::StreamSummary;

#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    pub serial: Vec<SerialReport>,
    pub gpio: Option<ChipReport>,
    pub pps: Vec<PpsReport>,
}

#[derive(Clone, Debug, Serialize)]
pub struct SerialReport {
    pub device: PathBuf,
    /// The speed at which it spoke NMEA or UBX; `None` when it did not.
    pub baud: Option<u32>,
    /// What was read at that speed (or at the last speed tried).
    pub stream: Option<StreamSummary>,
    /// Why there is no receiver: not opened, silent, not understood.
    pub note: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ChipReport {
    pub chip: PathBuf,
    pub seconds: f64,
    pub lines: Vec<LineReport>,
    pub note: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct LineReport {
    pub line: u32,
    pub name: String,
    /// `None` when the line was not watched.
    pub pulses: Option<Pulses>,
    /// Why it was not watched.
    pub skipped: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct PpsReport {
    pub device: PathBuf,
    /// The kernel's name for it (`pps@12.-1`: the pps-gpio device on GPIO 12... of its tree).
    pub name: Option<String>,
    pub pulses: usize,
    /// Mean seconds between pulses.
    pub interval: Option<f64>,
    pub note: Option<String>,
}

impl PpsReport {
    /// Pulses arrive about once a second.
    pub fn pulsing(&self) -> bool {
        self.pulses >= 2 && self.interval.is_some_and(|i| (i - 1.0).abs() < 0.01)
    }
}

fn ms(seconds: f64) -> String {
    format!("{:.0} ms", seconds * 1e3)
}

fn describe_stream(s: &StreamSummary) -> String {
    let mut parts = Vec::new();
    if s.sentences > 0 {
        let types: Vec<&str> = s.sentence_types.iter().map(String::as_str).collect();
        parts.push(format!("NMEA {}", types.join(" ")));
    }
    if s.ubx_frames > 0 {
        let names: Vec<&str> = s.ubx_messages.iter().map(String::as_str).collect();
        parts.push(format!("UBX {}", names.join(" ")));
    }
    parts.push(
        match s.fix {
            Some(true) => "fix: yes",
            Some(false) => "fix: no (it may need minutes of open sky)",
            None => "fix: not reported",
        }
        .to_string(),
    );
    if let Some(m) = &s.module {
        let firmware = s.firmware.as_ref().map(|f| format!(", {f}"));
        parts.push(format!("module {m}{}", firmware.unwrap_or_default()));
    }
    parts.join("; ")
}

fn describe_pulses(p: &Pulses) -> String {
    match p {
        Pulses::Nothing => "no edges".into(),
        Pulses::Pps { on_time, width, .. } => format!(
            "a PPS: {} pulse, {} edge on time",
            ms(*width),
            match on_time {
                Edge::Rising => "rising",
                Edge::Falling => "falling",
            }
        ),
        Pulses::Dcf77 {
            active_low,
            short,
            long,
            ..
        } => format!(
            "DCF77: {} pulses, {}",
            [short, long]
                .iter()
                .filter_map(|w| w.map(ms))
                .collect::<Vec<_>>()
                .join(" and "),
            match active_low {
                true => "low during the pulse (active_low = true)",
                false => "high during the pulse",
            }
        ),
        Pulses::Other { edges, per_second } => {
            format!("{edges} edges ({per_second:.1} a second): neither a PPS nor DCF77")
        }
    }
}

impl Report {
    /// The report for a person, ending with the suggested configuration.
    pub fn text(&self) -> String {
        let mut out = String::new();
        out.push_str("Serial ports\n");
        if self.serial.is_empty() {
            out.push_str("  none looked at\n");
        }
        for s in &self.serial {
            let what = match (s.baud, &s.stream, &s.note) {
                (Some(baud), Some(stream), _) => {
                    format!(
                        "a GNSS receiver at {baud} baud: {}",
                        describe_stream(stream)
                    )
                }
                (_, _, Some(note)) => note.clone(),
                _ => "nothing understood".into(),
            };
            let _ = writeln!(out, "  {}: {what}", s.device.display());
        }
        if let Some(chip) = &self.gpio {
            let _ = writeln!(
                out,
                "GPIO lines on {} ({} s)",
                chip.chip.display(),
                chip.seconds
            );
            if let Some(note) = &chip.note {
                let _ = writeln!(out, "  {note}");
            }
            let mut quiet = Vec::new();
            for l in &chip.lines {
                let what = match (&l.pulses, &l.skipped) {
                    (Some(Pulses::Nothing), _) => {
                        quiet.push(l.line.to_string());
                        continue;
                    }
                    (Some(p), _) => describe_pulses(p),
                    (None, Some(why)) => format!("not watched: {why}"),
                    (None, None) => continue,
                };
                let name = match l.name.is_empty() {
                    true => String::new(),
                    false => format!(" ({})", l.name),
                };
                let _ = writeln!(out, "  line {}{name}: {what}", l.line);
            }
            if !quiet.is_empty() {
                let _ = writeln!(out, "  no edges on lines {}", quiet.join(", "));
            }
        }
        if !self.pps.is_empty() {
            out.push_str("Kernel PPS devices\n");
        }
        for p in &self.pps {
            let name = p
                .name
                .as_ref()
                .map(|n| format!(" ({n})"))
                .unwrap_or_default();
            let what = match (&p.note, p.interval) {
                (Some(note), _) => note.clone(),
                (None, Some(i)) => format!("{} pulses, {i:.3} s apart", p.pulses),
                (None, None) => {
                    format!("{} pulses (receivers send them only with a fix)", p.pulses)
                }
            };
            let _ = writeln!(out, "  {}{name}: {what}", p.device.display());
        }
        out.push_str("\nSuggested pitime.toml sources:\n\n");
        out.push_str(&self.suggestion());
        out
    }

    /// The `[[source]]` sections for what was found, with comments for what was not.
    pub fn suggestion(&self) -> String {
        let mut out = String::from("# Suggested by `pitime detect`.\n");
        let receivers: Vec<&SerialReport> =
            self.serial.iter().filter(|s| s.baud.is_some()).collect();
        let gpio_pps = self.gpio.iter().flat_map(|chip| {
            chip.lines.iter().filter_map(move |l| match l.pulses {
                Some(Pulses::Pps { on_time, .. }) => Some((&chip.chip, l.line, on_time)),
                _ => None,
            })
        });
        // A kernel PPS device first: stamped in the interrupt, it is the better of the two.
        let pps: Option<(String, Edge)> = self
            .pps
            .iter()
            .find(|p| p.pulsing())
            .map(|p| (p.device.display().to_string(), Edge::Rising))
            .or_else(|| {
                gpio_pps
                    .clone()
                    .next()
                    .map(|(chip, line, edge)| (format!("{}:{line}", chip.display()), edge))
            });
        for (i, r) in receivers.iter().enumerate() {
            let name = match i {
                0 => "gps".to_string(),
                n => format!("gps{}", n + 1),
            };
            let _ = write!(
                out,
                "\n[[source]]\nkind = \"gps\"\nname = \"{name}\"\ndevice = {}\nbaud = {}\n",
                toml_string(&r.device),
                r.baud.unwrap_or(9600)
            );
            match (i, &pps) {
                (0, Some((device, edge))) => {
                    let _ = writeln!(out, "pps = \"{device}\"");
                    if *edge == Edge::Falling {
                        out.push_str("pps_edge = \"clear\"\n");
                    }
                }
                _ => out.push_str(
                    "# No pulse found: the time is only as good as the sentences (milliseconds).\n\
                     pps = \"\"\n",
                ),
            }
        }
        if receivers.is_empty() && pps.is_some() {
            out.push_str(
                "\n# A pulse was found, but no receiver on a serial port: a gps source needs the\n\
                 # receiver's sentences to number the pulses. Check its serial wiring and speed.\n",
            );
        }
        let dcf77 = self.gpio.iter().flat_map(|chip| {
            chip.lines.iter().filter_map(move |l| match l.pulses {
                Some(Pulses::Dcf77 { active_low, .. }) => Some((&chip.chip, l.line, active_low)),
                _ => None,
            })
        });
        for (i, (chip, line, active_low)) in dcf77.enumerate() {
            let name = match i {
                0 => "dcf77".to_string(),
                n => format!("dcf77-{}", n + 1),
            };
            let _ = write!(
                out,
                "\n[[source]]\nkind = \"dcf77\"\nname = \"{name}\"\nchip = {}\nline = {line}\n\
                 active_low = {active_low}\n",
                toml_string(chip)
            );
        }
        if out.lines().count() == 1 {
            out.push_str(
                "# Nothing found: no receiver on the serial ports looked at, no pulses.\n",
            );
        }
        out
    }
}

/// A path as a TOML basic string.
fn toml_string(path: &Path) -> String {
    serde_json::to_string(&path.display().to_string()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, PpsEdge, PpsInput, SourceConfig};

    fn receiver() -> SerialReport {
        SerialReport {
            device: "/dev/serial0".into(),
            baud: Some(38400),
            stream: Some(StreamSummary {
                sentences: 10,
                fix: Some(true),
                ..StreamSummary::default()
            }),
            note: None,
        }
    }

    fn line(line: u32, pulses: Pulses) -> LineReport {
        LineReport {
            line,
            name: format!("GPIO{line}"),
            pulses: Some(pulses),
            skipped: None,
        }
    }

    fn parse(text: &str) -> Config {
        Config::parse("suggested", text, Path::new("/")).unwrap_or_else(|e| panic!("{e:?}\n{text}"))
    }

    #[test]
    fn a_receiver_with_a_gpio_pps_and_an_inverted_dcf77_module() {
        let report = Report {
            serial: vec![receiver()],
            gpio: Some(ChipReport {
                chip: "/dev/gpiochip-header".into(),
                seconds: 10.0,
                lines: vec![
                    line(4, Pulses::Nothing),
                    line(
                        18,
                        Pulses::Pps {
                            on_time: Edge::Falling,
                            width: 0.1,
                            pulses: 10,
                        },
                    ),
                    line(
                        17,
                        Pulses::Dcf77 {
                            active_low: true,
                            short: Some(0.1),
                            long: Some(0.2),
                            pulses: 9,
                            missing_second: false,
                        },
                    ),
                ],
                note: None,
            }),
            pps: vec![],
        };
        let config = parse(&report.suggestion());
        match &config.sources[..] {
            [SourceConfig::Gps(g), SourceConfig::Longwave(d)] => {
                assert_eq!((g.device.to_str(), g.baud), (Some("/dev/serial0"), 38400));
                assert_eq!(
                    (&g.pps, g.pps_edge),
                    (
                        &PpsInput::Gpio {
                            chip: "/dev/gpiochip-header".into(),
                            line: 18
                        },
                        PpsEdge::Clear
                    )
                );
                assert_eq!((d.line, d.active_low), (17, true));
            }
            other => panic!("{other:?}"),
        }
        let text = report.text();
        assert!(text.contains("no edges on lines 4"), "{text}");
        assert!(text.contains("line 17 (GPIO17): DCF77"), "{text}");
    }

    #[test]
    fn a_kernel_pps_device_is_preferred_and_nothing_found_is_a_valid_file() {
        let report = Report {
            serial: vec![receiver()],
            gpio: None,
            pps: vec![PpsReport {
                device: "/dev/pps0".into(),
                name: Some("pps@12.-1".into()),
                pulses: 5,
                interval: Some(1.0),
                note: None,
            }],
        };
        match &parse(&report.suggestion()).sources[..] {
            [SourceConfig::Gps(g)] => {
                assert_eq!(g.pps, PpsInput::Kernel("/dev/pps0".into()));
            }
            other => panic!("{other:?}"),
        }
        let nothing = Report::default().suggestion();
        assert!(nothing.contains("Nothing found"));
        parse(&nothing);
    }
}
