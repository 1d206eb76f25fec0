//! monitoring/: the metrics, the alerting rules and the dashboard, checked by Prometheus' own
//! tools: `promtool` on the metrics text and the rules (with their unit tests).

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use common::*;
use pitime::discipline::{SourceReport, Standing};
use pitime::time::Realtime;
use pitime::web::status::Status;

const MONITORING: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/monitoring");

/// Runs promtool with `args`, `input` on its stdin; panics with its output unless it succeeds.
fn promtool(args: &[&str], input: &str) -> String {
    let mut child = Command::new("promtool")
        .args(args)
        .current_dir(MONITORING)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start promtool");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool {args:?} failed:\n{text}");
    text
}

/// Whatever users name their sources, `/metrics` is valid text and passes promtool's lint
/// (names, units, `_total` on counters, help on every family).
#[test]
fn metrics_with_hostile_source_names_pass_promtool() {
    needs!("promtool");
    let names = [
        "quote\" } x=\"1",
        "back\\slash\\",
        "new\nline pitime_stratum 0",
        "Frankfurt {Mainflingen} # 77.5 kHz",
        "\u{e9}t\u{e9}\t\u{1F6F0}",
    ];
    let status = Status {
        sources: names
            .iter()
            .map(|name| SourceReport {
                name: name.to_string(),
                kind: "gps",
                state: Standing::Falseticker,
                reach: 255,
                last_sample_ago: None,
                offset: Some(-0.25),
                jitter: Some(f64::INFINITY),
                error: None,
                refid: None,
                stratum: None,
                outliers: 0,
            })
            .collect(),
        ..Status::default()
    };
    let text =
        pitime::web::metrics::render(&status, Realtime::from_nanos(1_700_000_000_000_000_000));
    promtool(&["check", "metrics"], &text);
}

#[test]
fn alerting_rules_pass_promtool_and_their_unit_tests() {
    needs!("promtool");
    assert!(Path::new(MONITORING).join("pitime-alerts.yml").is_file());
    promtool(&["check", "rules", "pitime-alerts.yml"], "");
    promtool(&["test", "rules", "pitime-alerts.test.yml"], "");
}
