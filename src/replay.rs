//! `pitime replay`: runs a decoder over a capture and prints what it makes of it, one JSON
//! object per line. Deterministic: no clock is read.

use serde_json::{json, Value};

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
