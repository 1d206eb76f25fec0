//! `pitime replay`: runs a decoder over a capture and prints what it makes of it, one JSON
//! object per line. Deterministic: no clock is read.

use serde_json::{json, Value};

use crate::refclock::dcf77::decoder::{Dcf77Decoder, Event};
use crate::refclock::gps::decoder::{DecoderOptions, NmeaDecoder, TimeReport};
use crate::refclock::gps::nmea::LineReader;

/// The bytes of a capture that a receiver sent: lines starting with `#` are comments.
pub fn capture_bytes(file: &[u8]) -> Vec<u8> {
    file.split_inclusive(|&b| b == b'\n')
        .filter(|line| !line.starts_with(b"#"))
        .flatten()
        .copied()
        .collect()
}

/// Every time report the NMEA decoder gives for a capture, in order.
pub fn nmea_reports(file: &[u8], options: DecoderOptions) -> Vec<TimeReport> {
    let mut decoder = NmeaDecoder::new(options);
    let mut reader = LineReader::default();
    let mut reports = Vec::new();
    reader.push(&capture_bytes(file), (), |line, ()| {
        reports.extend(decoder.line(line));
    });
    reports
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

/// Every minute the DCF77 decoder accepts from a capture's edges.
pub fn dcf77_minutes(edges: &[(f64, bool)], active_low: bool, confirm: usize) -> Vec<Value> {
    let mut decoder = Dcf77Decoder::new(confirm);
    let mut events: Vec<Event> = Vec::new();
    for &(t, level) in edges {
        events.extend(decoder.edge(t, level != active_low));
    }
    events.extend(decoder.finish());
    events
        .into_iter()
        .filter_map(|e| match e {
            Event::Minute { t, minute } => Some(json!({
                "t": (t * 1e6).round() / 1e6,
                "utc": format!("{}Z", &minute.utc.to_string()[..19]),
                "offset_hours": minute.offset_hours,
                "dst_announced": minute.dst_announced,
                "leap_announced": minute.leap_announced,
            })),
            Event::Second { .. } => None,
        })
        .collect()
}
