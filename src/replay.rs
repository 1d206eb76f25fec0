//! `pitime replay`: runs a decoder over a capture and prints what it makes of it, one JSON
//! object per line. Deterministic: no clock is read.

use serde_json::{json, Value};

use crate::detect::pulses::{classify, Pulses};
use crate::refclock::gps::decoder::{DecoderOptions, NmeaDecoder, TimeReport};
use crate::refclock::gps::ubx::{Message, ReceiverStream, UbxFrame};
use crate::refclock::gps::{ubx_nav, ubx_receiver};
use crate::refclock::longwave::decoder::{decode, Event};
use crate::refclock::longwave::station::StationKind;
use crate::time::UtcTime;

/// The bytes of a capture that a receiver sent: text lines starting with `#` are comments (a
/// `#` that starts a binary stretch, after a UBX frame's newline byte, is data).
pub fn capture_bytes(file: &[u8]) -> Vec<u8> {
    let comment = |line: &[u8]| {
        line.starts_with(b"#")
            && line
                .iter()
                .all(|&b| b == b'\t' || b == b'\r' || b == b'\n' || (0x20..0x7f).contains(&b))
    };
    file.split_inclusive(|&b| b == b'\n')
        .filter(|line| !comment(line))
        .flatten()
        .copied()
        .collect()
}

/// Runs the decoder over a capture: each line or frame, with the report it gave.
fn decode_receiver(
    file: &[u8],
    options: DecoderOptions,
    mut each: impl FnMut(&Message, Option<TimeReport>),
) {
    let mut decoder = NmeaDecoder::new(options);
    let mut reader = ReceiverStream::default();
    reader.push(&capture_bytes(file), (), |message, ()| {
        let report = decoder.message(&message);
        each(&message, report)
    });
}

/// Every time report the decoder gives for a capture of NMEA, UBX or both, in order.
pub fn nmea_reports(file: &[u8], options: DecoderOptions) -> Vec<TimeReport> {
    let mut reports = Vec::new();
    decode_receiver(file, options, |_, report| reports.extend(report));
    reports
}

/// What `pitime replay nmea` prints for a capture: a line for each time-bearing sentence or
/// UBX message (`{"sentence":...}`), and one for each other UBX message pitime uses
/// (`{"message":...}`).
pub fn nmea_lines(file: &[u8], options: DecoderOptions) -> Vec<Value> {
    let mut lines = Vec::new();
    decode_receiver(file, options, |message, report| match (report, message) {
        (Some(report), _) => lines.push(report_json(&report)),
        (None, Message::Frame(frame)) => lines.extend(message_json(frame)),
        (None, Message::Line(_)) => {}
    });
    lines
}

/// A UBX message pitime reads for something other than time, as its own JSON line.
fn message_json(frame: &UbxFrame) -> Option<Value> {
    let mut v = json!({ "message": frame.name() });
    if let Some(ls) = ubx_nav::timels(frame).ok()? {
        v["gps_utc"] = json!(ls.current);
        v["change"] = json!(ls.change);
        v["seconds_to_event"] = json!(ls.to_event);
    } else if let Some(spoofing) = ubx_receiver::spoofing(frame).ok()? {
        v["spoofing"] = json!(spoofing.name());
    } else if let Some(j) = ubx_receiver::jamming(frame).ok()? {
        v["jamming"] = json!(j.state.name());
        v["indicator"] = json!(j.indicator);
        v["noise"] = json!(j.noise);
    } else if let Some(tp) = ubx_receiver::time_pulse(frame).ok()? {
        v["qerr"] = json!(tp.q_error);
    } else {
        return None;
    }
    Some(v)
}

pub fn report_json(report: &TimeReport) -> Value {
    let mut v = json!({ "sentence": report.sentence });
    if let Some(t) = report.time {
        v["time"] = json!(t.to_string());
    }
    v["valid"] = json!(report.verdict.is_ok());
    if let Err(reason) = &report.verdict {
        v["reason"] = json!(reason.to_string());
    }
    v
}

/// Reads a DCF77 capture: one `<seconds> <level>` line per edge (`#` lines and blank lines
/// skipped). Lines that do not parse are returned as errors with their numbers; the rest is
/// still used.
pub fn dcf77_edges(text: &str) -> (Vec<(f64, bool)>, Vec<String>) {
    let mut edges = Vec::new();
    let mut errors = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut parts = line.split_whitespace();
        match (
            parts.next().and_then(|t| t.parse::<f64>().ok()),
            parts.next(),
            parts.next(),
        ) {
            (Some(t), Some("0"), None) if t.is_finite() => edges.push((t, false)),
            (Some(t), Some("1"), None) if t.is_finite() => edges.push((t, true)),
            _ => errors.push(format!(
                "line {}: expected `<seconds> <0|1>`, found `{line}`",
                i + 1
            )),
        }
    }
    (edges, errors)
}

/// A DCF77 capture's text for edges: what `dcf77_edges` reads back.
pub fn format_dcf77_edges(edges: &[(f64, bool)]) -> String {
    edges
        .iter()
        .map(|(t, level)| format!("{t:.6} {}\n", u8::from(*level)))
        .collect()
}

/// What to say when a capture's pulses are at the other level than `active_low` says: the
/// decoder then sees 800 and 900 ms pulses and decodes nothing. WWVB's inverted seconds look
/// like its own (0.8, 0.5 and 0.2 s), so there the decoder tries both levels.
pub fn polarity_hint(
    station: StationKind,
    edges: &[(f64, bool)],
    active_low: bool,
) -> Option<String> {
    let span = match (edges.first(), edges.last()) {
        (Some(a), Some(b)) => b.0 - a.0,
        _ => return None,
    };
    let low = match (station, classify(edges, span)) {
        (StationKind::Wwvb, _) => {
            let labels = |low| {
                let events = decode(station, edges, low, 1);
                events.iter().any(|e| matches!(e, Event::Second { .. }))
            };
            (!labels(active_low) && labels(!active_low)).then_some(!active_low)
        }
        (
            _,
            Pulses::Dcf77 {
                active_low: low, ..
            },
        ) => (low != active_low).then_some(low),
        _ => None,
    }?;
    Some(format!(
        "the pulses look inverted (the line is {} during them): replay {} --active-low, \
         and set `active_low = {low}` on the {} source",
        if low { "low" } else { "high" },
        if low { "with" } else { "without" },
        station.name()
    ))
}

/// Every minute the station's decoder accepts from a capture's edges.
pub fn longwave_minutes(
    station: StationKind,
    edges: &[(f64, bool)],
    active_low: bool,
    confirm: usize,
) -> Vec<Value> {
    decode(station, edges, active_low, confirm)
        .into_iter()
        .filter_map(|e| match e {
            Event::Minute { t, minute } => Some(json!({
                "t": micros(t),
                "utc": seconds_text(&minute.utc),
                "offset_hours": minute.offset_hours,
                "dst_announced": minute.dst_announced,
                "leap_announced": minute.leap_announced,
            })),
            Event::Second { .. } => None,
        })
        .collect()
}

/// Every second the station's decoder labels: its marker's time in the capture and its UTC.
pub fn longwave_seconds(
    station: StationKind,
    edges: &[(f64, bool)],
    active_low: bool,
    confirm: usize,
) -> Vec<Value> {
    decode(station, edges, active_low, confirm)
        .into_iter()
        .filter_map(|e| match e {
            Event::Second { t, utc } => Some(json!({"t": micros(t), "utc": seconds_text(&utc)})),
            Event::Minute { .. } => None,
        })
        .collect()
}

fn micros(t: f64) -> f64 {
    (t * 1e6).round() / 1e6
}

/// `YYYY-MM-DDTHH:MM:SSZ` (an inserted leap second is `23:59:60`).
fn seconds_text(utc: &UtcTime) -> String {
    format!("{}Z", &utc.to_string()[..19])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::longwave::LongwaveSignal;

    #[test]
    fn an_inverted_wwvb_capture_gets_the_hint() {
        let signal = LongwaveSignal {
            station: StationKind::Wwvb,
            duration: 300.0,
            active_low: true,
            ..LongwaveSignal::default()
        };
        let edges = signal.generate().edges;
        let hint = polarity_hint(StationKind::Wwvb, &edges, false).expect("a hint");
        assert!(hint.contains("`active_low = true`"), "{hint}");
        assert_eq!(polarity_hint(StationKind::Wwvb, &edges, true), None);
    }
}
