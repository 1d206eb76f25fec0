//! The u-blox captures of gpsd's regression suite (UBX binary mixed with NMEA), decoded by
//! pitime and checked against the fix times gpsd reported for them (its `.chk` files): every
//! time one of them has and the other has not is listed below with the reason.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use pitime::refclock::gps::decoder::{build_date, parse_date, DecoderOptions};
use pitime::replay::{nmea_lines, nmea_reports};
use serde_json::json;

/// Copied from ../shared/testdata/ubx/gpsd (GPSD project, BSD-2-Clause: see COPYING there).
const CAPTURES: &str = "tests/data/ubx/gpsd";

/// Why pitime and gpsd differ on one epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Why {
    /// The capture begins inside this epoch or before gpsd's first end of cycle: gpsd reports
    /// a cycle when it sees the cycle end, pitime reads each time message by itself.
    FirstEpoch,
    /// The capture ends inside this epoch: pitime read its time message, and gpsd never saw the
    /// cycle end (or the reverse: gpsd reported the cycle from the NAV-SOL it had, while the
    /// NAV-TIMEGPS pitime reads was cut off).
    LastEpoch,
    /// Antaris 4 receivers send NAV-SOL (GPS time) before NAV-TIMEGPS: gpsd labels the first
    /// NAV-SOL with its built-in leap-second count (18) before the receiver tells it the true
    /// one (14 in 2007, 15 in 2009), so its first report is 4 or 3 seconds early; pitime labels
    /// that epoch with the receiver's count, from NAV-TIMEGPS and NAV-TIMEUTC.
    GpsdLeapGuess,
    /// gpsd also reports the 10 Hz UBX-HNR-PVT high-rate (dead-reckoned) solutions; pitime needs
    /// one navigation solution a second and reads NAV-PVT only.
    HighRate,
    /// In the middle of the capture gpsd merges this epoch into the next (it reports that one
    /// twice, or skips a second): in ublox-lea-m8f bytes were lost every fifth epoch, in
    /// ublox-zed-f9t-rtcm3 RTCM3 frames are interleaved with the UBX. The NAV-PVT or
    /// NAV-TIMEGPS pitime reads for the epoch is whole (checksum good), valid, and one second
    /// after its neighbours.
    GpsdMergedCycle,
}

use Why::*;

/// (capture, time, why): times pitime accepts and gpsd does not report.
const PITIME_ONLY: &[(&str, &str, Why)] = &[
    (
        "ublox-aek-4t.log",
        "2007-12-23T23:11:23.999Z",
        GpsdLeapGuess,
    ),
    ("ublox-f9p-rtcm.log", "2022-05-24T23:40:41.000Z", FirstEpoch),
    (
        "ublox-lea-4t.log",
        "2009-01-28T20:35:43.001Z",
        GpsdLeapGuess,
    ),
    ("ublox-lea-m8f.log", "2025-04-11T05:06:24.000Z", FirstEpoch),
    (
        "ublox-lea-m8f.log",
        "2025-04-11T05:06:29.000Z",
        GpsdMergedCycle,
    ),
    (
        "ublox-lea-m8f.log",
        "2025-04-11T05:06:30.000Z",
        GpsdMergedCycle,
    ),
    (
        "ublox-lea-m8f.log",
        "2025-04-11T05:06:34.000Z",
        GpsdMergedCycle,
    ),
    (
        "ublox-lea-m8f.log",
        "2025-04-11T05:06:35.000Z",
        GpsdMergedCycle,
    ),
    (
        "ublox-lea-m8f.log",
        "2025-04-11T05:06:39.000Z",
        GpsdMergedCycle,
    ),
    (
        "ublox-lea-m8f.log",
        "2025-04-11T05:06:40.000Z",
        GpsdMergedCycle,
    ),
    (
        "ublox-lea-m8f.log",
        "2025-04-11T05:06:44.000Z",
        GpsdMergedCycle,
    ),
    (
        "ublox-lea-m8f.log",
        "2025-04-11T05:06:45.000Z",
        GpsdMergedCycle,
    ),
    ("ublox-lea-m8f.log", "2025-04-11T05:06:51.000Z", LastEpoch),
    ("ublox-neo-m8n.log", "2017-07-19T08:50:00.800Z", FirstEpoch),
    ("ublox-neo-m8n.log", "2017-07-19T08:50:05.400Z", LastEpoch),
    (
        "ublox-zed-f9p-hp.log",
        "2019-04-22T21:19:20.000Z",
        FirstEpoch,
    ),
    (
        "ublox-zed-f9p-sfrbx.log",
        "2020-06-10T21:27:56.000Z",
        FirstEpoch,
    ),
    ("ublox-zed-f9r.log", "2025-04-11T23:14:08.000Z", FirstEpoch),
    (
        "ublox-zed-f9t-rtcm3.log",
        "2019-10-17T08:13:29.000Z",
        FirstEpoch,
    ),
    (
        "ublox-zed-f9t-rtcm3.log",
        "2019-10-17T08:13:30.000Z",
        FirstEpoch,
    ),
    (
        "ublox-zed-f9t-rtcm3.log",
        "2019-10-17T08:13:40.000Z",
        GpsdMergedCycle,
    ),
    (
        "ublox-zed-f9t-rtcm3.log",
        "2019-10-17T08:13:50.000Z",
        GpsdMergedCycle,
    ),
];

/// (capture, time, why): fix times gpsd reports and pitime does not accept.
const GPSD_ONLY: &[(&str, &str, Why)] = &[
    ("ublox-8-time.log", "2017-12-01T17:24:05.000Z", LastEpoch),
    (
        "ublox-aek-4t.log",
        "2007-12-23T23:11:19.999Z",
        GpsdLeapGuess,
    ),
    ("ublox-aek-4t.log", "2007-12-23T23:11:26.999Z", LastEpoch),
    (
        "ublox-lea-4t.log",
        "2009-01-28T20:35:40.001Z",
        GpsdLeapGuess,
    ),
    (
        "ublox-neo-m8u-hnr.log",
        "2021-06-16T23:46:04.800Z",
        HighRate,
    ),
    (
        "ublox-neo-m8u-hnr.log",
        "2021-06-16T23:46:04.900Z",
        HighRate,
    ),
    (
        "ublox-neo-m8u-hnr.log",
        "2021-06-16T23:46:05.100Z",
        HighRate,
    ),
    (
        "ublox-neo-m8u-hnr.log",
        "2021-06-16T23:46:05.200Z",
        HighRate,
    ),
    (
        "ublox-neo-m8u-hnr.log",
        "2021-06-16T23:46:05.300Z",
        HighRate,
    ),
    (
        "ublox-neo-m8u-hnr.log",
        "2021-06-16T23:46:05.400Z",
        HighRate,
    ),
    (
        "ublox-neo-m8u-hnr.log",
        "2021-06-16T23:46:05.500Z",
        HighRate,
    ),
    (
        "ublox-neo-m8u-hnr.log",
        "2021-06-16T23:46:05.600Z",
        HighRate,
    ),
    (
        "ublox-neo-m8u-hnr.log",
        "2021-06-16T23:46:05.700Z",
        HighRate,
    ),
    (
        "ublox-neo-m8u-hnr.log",
        "2021-06-16T23:46:05.800Z",
        HighRate,
    ),
    (
        "ublox-neo-m8u-hnr.log",
        "2021-06-16T23:46:05.900Z",
        HighRate,
    ),
];

fn captures() -> Vec<PathBuf> {
    let logs = common::capture_logs(CAPTURES);
    assert_eq!(logs.len(), 14, "the u-blox captures in {CAPTURES}");
    logs
}

fn name(log: &Path) -> &str {
    log.file_name().unwrap().to_str().unwrap()
}

/// gpsd's TPV times with a 2D or 3D fix, as it prints them (which is how pitime prints them).
fn gpsd_times(log: &Path) -> BTreeSet<String> {
    let chk = std::fs::read(log.with_extension("log.chk")).unwrap();
    String::from_utf8_lossy(&chk)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["class"] == "TPV" && v["mode"].as_u64().is_some_and(|m| m >= 2))
        .filter_map(|v| Some(v["time"].as_str()?.to_string()))
        .collect()
}

fn accepted(log: &Path, options: DecoderOptions) -> Vec<(&'static str, String)> {
    nmea_reports(&std::fs::read(log).unwrap(), options)
        .into_iter()
        .filter(|r| r.verdict.is_ok())
        .filter_map(|r| Some((r.sentence, r.time?.to_string())))
        .collect()
}

fn listed(list: &[(&str, &str, Why)], log: &Path) -> BTreeSet<String> {
    list.iter()
        .filter(|(l, _, _)| *l == name(log))
        .map(|(_, t, _)| t.to_string())
        .collect()
}

#[test]
fn pitime_accepts_the_times_gpsd_reports_and_every_difference_is_explained() {
    let options = || DecoderOptions {
        not_before: parse_date("1980-01-06").unwrap(),
        require_fix: true,
    };
    let mut ubx_times = 0;
    for log in captures() {
        let accepted = accepted(&log, options());
        ubx_times += accepted.iter().filter(|a| a.0.starts_with("NAV-")).count();
        let ours: BTreeSet<String> = accepted.into_iter().map(|a| a.1).collect();
        let gpsd = gpsd_times(&log);
        let ours_only: BTreeSet<String> = ours.difference(&gpsd).cloned().collect();
        let gpsd_only: BTreeSet<String> = gpsd.difference(&ours).cloned().collect();
        assert_eq!(
            ours_only,
            listed(PITIME_ONLY, &log),
            "{}: times pitime accepts and gpsd does not report",
            name(&log)
        );
        assert_eq!(
            gpsd_only,
            listed(GPSD_ONLY, &log),
            "{}: times gpsd reports and pitime does not accept",
            name(&log)
        );
    }
    // Most of these captures are UBX only: the times above came from UBX messages.
    assert!(ubx_times > 300, "{ubx_times} UBX times");
}

#[test]
fn the_nmea_between_the_frames_is_read_whole() {
    for log in captures() {
        let options = DecoderOptions {
            not_before: parse_date("1980-01-06").unwrap(),
            require_fix: false,
        };
        let reports = nmea_reports(&std::fs::read(&log).unwrap(), options);
        // A frame's bytes mistaken for a sentence, or a sentence cut by a frame, would fail its
        // checksum here.
        let broken: Vec<_> = reports
            .iter()
            .filter(|r| {
                r.verdict
                    .as_ref()
                    .is_err_and(|e| e.to_string().contains("checksum"))
            })
            .collect();
        assert!(broken.is_empty(), "{}: {broken:?}", name(&log));
    }
    let f9r = captures()
        .into_iter()
        .find(|l| name(l) == "ublox-zed-f9r.log");
    let nmea = accepted(
        &f9r.unwrap(),
        DecoderOptions {
            not_before: parse_date("1980-01-06").unwrap(),
            require_fix: true,
        },
    );
    // ublox-zed-f9r sends RMC, GGA and ZDA between its UBX frames, every second for 30 s.
    for sentence in ["RMC", "GGA", "ZDA"] {
        let n = nmea.iter().filter(|a| a.0 == sentence).count();
        assert_eq!(n, 30, "{sentence}");
    }
}

#[test]
fn every_capture_predates_the_build_floor() {
    for log in captures() {
        let options = DecoderOptions {
            not_before: build_date(),
            require_fix: false,
        };
        assert_eq!(accepted(&log, options), [], "{}", name(&log));
    }
}

#[test]
fn nav_timels_in_replay_places_the_last_leap_second_at_the_end_of_2016() {
    let log = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(CAPTURES)
        .join("ublox-zed-f9p-hp.log");
    let options = DecoderOptions {
        not_before: parse_date("1980-01-06").unwrap(),
        require_fix: true,
    };
    let lines = nmea_lines(&std::fs::read(log).unwrap(), options);
    let leap = parse_date("2017-01-01").unwrap().day * 86_400;
    let mut last_time = None;
    let mut checked = 0;
    for line in &lines {
        if let Some(t) = line["time"].as_str() {
            let day = parse_date(&t[..10]).unwrap().day;
            let (h, m, s) = (&t[11..13], &t[14..16], &t[17..19]);
            let sod: i64 = h.parse::<i64>().unwrap() * 3600
                + m.parse::<i64>().unwrap() * 60
                + s.parse::<i64>().unwrap();
            last_time = Some(day * 86_400 + sod);
        }
        if line["message"] == "NAV-TIMELS" {
            assert_eq!((&line["gps_utc"], &line["change"]), (&json!(18), &json!(0)));
            let since = line["seconds_to_event"].as_i64().unwrap();
            // The receiver counts from its own epoch, a second or two either side.
            let event = last_time.unwrap() + since;
            assert!(
                (event - leap).abs() <= 2,
                "{line}: event at {event}, not {leap}"
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 29);
}

#[test]
fn the_f9r_capture_reports_no_jamming_and_the_aek_4t_no_spoofing_detection() {
    let lines = |log: &str| {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(CAPTURES)
            .join(log);
        let options = DecoderOptions {
            not_before: parse_date("1980-01-06").unwrap(),
            require_fix: true,
        };
        nmea_lines(&std::fs::read(path).unwrap(), options)
    };
    // ZED-F9R HPS 1.30 sends MON-RF in its compact form: each one read, its L1 and L2 blocks
    // quiet (jamming state ok, CW indicator in the teens and twenties, noise 69).
    let rf: Vec<_> = lines("ublox-zed-f9r.log")
        .into_iter()
        .filter(|l| l["message"] == "MON-RF")
        .collect();
    assert_eq!(rf.len(), 7);
    for l in rf {
        assert_eq!(l["jamming"], "ok", "{l}");
        assert!(l["indicator"].as_u64().unwrap() < 100, "{l}");
    }
    // The Antaris 4 predates spoofing detection: NAV-STATUS reads, the state is unknown.
    let status: Vec<_> = lines("ublox-aek-4t.log")
        .into_iter()
        .filter(|l| l["message"] == "NAV-STATUS")
        .collect();
    assert_eq!(status.len(), 3);
    assert!(status.iter().all(|l| l["spoofing"] == "unknown"));
}
