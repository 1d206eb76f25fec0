//! Every gpsd regression capture in tests/data/nmea/gpsd, decoded by pitime and checked
//! against the times gpsd reported for it (its `.chk` files).

mod common;

use std::path::{Path, PathBuf};

use pitime::refclock::gps::decoder::{build_date, parse_date, DecoderOptions};
use pitime::replay::nmea_reports;
use pitime::time::{Realtime, UtcTime};

/// Copied from ../shared/testdata/nmea/gpsd (GPSD project, BSD-2-Clause: see COPYING there).
const CAPTURES: &str = "tests/data/nmea/gpsd";
/// 1024 GPS weeks, in seconds.
const WEEK_ROLLOVER: i64 = 1024 * 7 * 86_400;

fn captures() -> Vec<PathBuf> {
    let logs = common::capture_logs(CAPTURES);
    assert!(logs.len() > 50, "expected the gpsd captures in {CAPTURES}");
    logs
}

fn seconds(t: UtcTime) -> f64 {
    t.to_realtime().unwrap().as_nanos() as f64 / 1e9
}

fn parse_iso(s: &str) -> UtcTime {
    let (date, time) = s.trim_end_matches('Z').split_once('T').unwrap();
    let day = parse_date(date).unwrap();
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let mut p = hms.split(':').map(|x| x.parse::<u32>().unwrap());
    let (h, m, s) = (p.next().unwrap(), p.next().unwrap(), p.next().unwrap());
    let nanos = frac.parse::<u32>().unwrap() * 10u32.pow(9 - frac.len() as u32);
    let t = Realtime::from_timespec(day.day * 86_400 + (h * 3600 + m * 60 + s) as i64, 0);
    UtcTime {
        nanos,
        ..UtcTime::from_realtime(t)
    }
}

/// gpsd's TPV reports: (time, mode).
fn gpsd_times(log: &Path) -> Vec<(UtcTime, u64)> {
    let chk = std::fs::read_to_string(log.with_extension("log.chk")).unwrap_or_default();
    chk.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["class"] == "TPV")
        .filter_map(|v| Some((parse_iso(v["time"].as_str()?), v["mode"].as_u64()?)))
        .collect()
}

fn accepted(log: &Path) -> Vec<UtcTime> {
    let options = DecoderOptions {
        not_before: parse_date("1980-01-06").unwrap(),
        require_fix: true,
    };
    nmea_reports(&std::fs::read(log).unwrap(), options)
        .into_iter()
        .filter(|r| r.verdict.is_ok())
        .filter_map(|r| r.time)
        .collect()
}

fn name(log: &Path) -> &str {
    log.file_name().unwrap().to_str().unwrap()
}

/// Logs where gpsd moved the receiver's date on by 1024 weeks (its rollover guess, made
/// against the date the regression run pretends); pitime reports the date as sent.
const GPSD_ROLLOVER: [&str; 2] = ["rst39.log", "tcp-torture.log"];

#[test]
fn every_capture_decodes_without_panic_and_with_the_build_date_floor() {
    for log in captures() {
        let options = DecoderOptions {
            not_before: build_date(),
            require_fix: false,
        };
        let reports = nmea_reports(&std::fs::read(&log).unwrap(), options);
        // Every capture predates this build: none of its times may pass the floor.
        assert!(
            reports.iter().all(|r| r.verdict.is_err()),
            "{}: a time before the build date was accepted",
            name(&log)
        );
    }
}

#[test]
fn every_time_gpsd_reports_with_a_fix_is_accepted() {
    for log in captures() {
        let ours = accepted(&log);
        for (t, mode) in gpsd_times(&log).into_iter().filter(|(_, mode)| *mode >= 2) {
            let wanted = if GPSD_ROLLOVER.contains(&name(&log)) {
                seconds(t) - WEEK_ROLLOVER as f64
            } else {
                seconds(t)
            };
            assert!(
                ours.iter().any(|&a| seconds(a) == wanted),
                "{}: gpsd reports {t} (mode {mode}), pitime did not accept it",
                name(&log)
            );
        }
    }
}

#[test]
fn every_accepted_time_is_one_gpsd_reports_or_explained() {
    for log in captures() {
        let gpsd: Vec<f64> = gpsd_times(&log)
            .iter()
            .map(|(t, _)| match GPSD_ROLLOVER.contains(&name(&log)) {
                true => seconds(*t) - WEEK_ROLLOVER as f64,
                false => seconds(*t),
            })
            .collect();
        let last = gpsd.iter().copied().fold(f64::MIN, f64::max);
        for t in accepted(&log) {
            let near = gpsd.iter().any(|g| (g - seconds(t)).abs() <= 1.0);
            // gpsd reports a cycle when it ends; the last cycle of a log never does.
            let after_last = seconds(t) > last;
            // blumax-gps009 opens with a stale fix 2.5 minutes old that gpsd drops with its
            // first cycle; pitime's decoder passes it and the pairing's acquisition (three
            // agreeing seconds) keeps it out of any sample.
            let stale =
                name(&log) == "blumax-gps009.log" && t.to_string() == "2008-07-18T14:28:19.299Z";
            assert!(
                near || after_last || stale,
                "{}: pitime accepted {t}, which gpsd never reports",
                name(&log)
            );
        }
    }
}
