//! `/metrics`: the status in Prometheus' text format (version 0.0.4), named by Prometheus'
//! conventions: base units in the names (`_seconds`, `_bytes`, `_ratio`), `_total` on counters,
//! an enum as one 0/1 series per state, and the standard `process_*` names every exporter uses
//! for memory and start time. docs/monitoring.md lists them.

use std::fmt::Write;

use super::status::{NtsView, Status};
use crate::discipline::{ClockState, Standing};
use crate::time::Realtime;

struct Metrics(String);

impl Metrics {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    /// One sample. Label values are escaped as the format requires (backslash, double quote,
    /// newline), so a source named by a user cannot break a line or forge a series; anything
    /// else, UTF-8 included, is allowed inside the quotes.
    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.0.push_str(name);
        for (i, (k, v)) in labels.iter().enumerate() {
            self.0.push_str(if i == 0 { "{" } else { "," });
            let _ = write!(self.0, "{k}=\"");
            for c in v.chars() {
                match c {
                    '\\' => self.0.push_str("\\\\"),
                    '"' => self.0.push_str("\\\""),
                    '\n' => self.0.push_str("\\n"),
                    c => self.0.push(c),
                }
            }
            self.0.push('"');
        }
        if !labels.is_empty() {
            self.0.push('}');
        }
        // Rust writes `inf` and `NaN`; the format wants `+Inf`, `-Inf` and `NaN`.
        let _ = match value {
            v if v == f64::INFINITY => writeln!(self.0, " +Inf"),
            v if v == f64::NEG_INFINITY => writeln!(self.0, " -Inf"),
            v => writeln!(self.0, " {v}"),
        };
    }

    fn gauge(&mut self, name: &str, help: &str, value: f64) {
        self.family(name, "gauge", help);
        self.sample(name, &[], value);
    }
}

fn flag(b: bool) -> f64 {
    f64::from(u8::from(b))
}

/// Resident memory of this process, from /proc/self/statm.
fn resident_bytes() -> Option<f64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: f64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as f64;
    Some(pages * page)
}

const CLOCK_STATES: [(ClockState, &str); 4] = [
    (ClockState::Unsynchronised, "unsynchronised"),
    (ClockState::Locked, "locked"),
    (ClockState::Holdover, "holdover"),
    (ClockState::Expired, "expired"),
];

const STANDINGS: [(Standing, &str); 5] = [
    (Standing::Selected, "selected"),
    (Standing::Candidate, "candidate"),
    (Standing::Falseticker, "falseticker"),
    (Standing::Noselect, "noselect"),
    (Standing::Unreachable, "unreachable"),
];

/// The metrics of `s`, scraped at `now` (system clock): the served time is taken at `now`, so
/// that Prometheus can compare servers to within a scrape's latency.
pub fn render(s: &Status, now: Realtime) -> String {
    let mut m = Metrics(String::with_capacity(8192));
    let c = &s.clock;
    m.family(
        "pitime_build_info",
        "gauge",
        "Always 1; the version as a label.",
    );
    m.sample("pitime_build_info", &[("version", s.version)], 1.0);
    m.gauge(
        "pitime_synchronised",
        "1 when the served time follows a reference (clients are told to use it).",
        flag(c.synchronised),
    );
    m.gauge("pitime_stratum", "Stratum served.", f64::from(c.stratum));
    m.family(
        "pitime_clock_state",
        "gauge",
        "1 for the clock's state: locked to a reference, holding over without one, holdover \
         expired, or never synchronised.",
    );
    for (state, name) in CLOCK_STATES {
        m.sample(
            "pitime_clock_state",
            &[("state", name)],
            flag(c.state == state),
        );
    }
    m.gauge(
        "pitime_time_seconds",
        "The time served (seconds since 1970) at the scrape: minus timestamp() it is this \
         server's offset from Prometheus' clock, to within the scrape's latency.",
        c.correction.apply(now).as_nanos() as f64 / 1e9,
    );
    m.gauge(
        "pitime_offset_seconds",
        "Served time minus the system clock: the correction of the virtual actuator (0 with \
         the kernel actuator, which steers the system clock).",
        c.offset_seconds,
    );
    m.gauge(
        "pitime_frequency_correction_ratio",
        "Frequency correction of the clock (1e-6 is 1 ppm).",
        c.frequency_ppm * 1e-6,
    );
    m.gauge(
        "pitime_root_dispersion_seconds",
        "Error bound served to clients, relative to the primary reference.",
        c.root_dispersion_seconds,
    );
    m.gauge(
        "pitime_root_delay_seconds",
        "Round-trip delay to the primary reference served to clients.",
        c.root_delay_seconds,
    );
    m.gauge(
        "pitime_alarms",
        "Alarms raised now (the status page lists them).",
        s.alarms.len() as f64,
    );
    m.family(
        "pitime_alarm_active",
        "gauge",
        "1 for each alarm raised now, by subject (a source, or clock) and kind.",
    );
    for a in &s.alarms {
        m.sample(
            "pitime_alarm_active",
            &[("subject", &a.subject), ("kind", a.kind.name())],
            1.0,
        );
    }
    m.gauge(
        "process_start_time_seconds",
        "Start time of the process since 1970, seconds.",
        s.started.as_nanos() as f64 / 1e9,
    );
    if let Some(bytes) = resident_bytes() {
        m.gauge(
            "process_resident_memory_bytes",
            "Resident memory size.",
            bytes,
        );
    }

    m.family(
        "pitime_source_state",
        "gauge",
        "1 for the source's standing in the selection: selected (followed), candidate, \
         falseticker, noselect or unreachable.",
    );
    for r in &s.sources {
        for (standing, name) in STANDINGS {
            m.sample(
                "pitime_source_state",
                &[("source", &r.name), ("state", name)],
                flag(r.state == standing),
            );
        }
    }
    m.family(
        "pitime_source_reach",
        "gauge",
        "Reach register (one bit a second, 255 all reached).",
    );
    for r in &s.sources {
        m.sample(
            "pitime_source_reach",
            &[("source", &r.name)],
            f64::from(r.reach),
        );
    }
    m.family(
        "pitime_source_offset_seconds",
        "gauge",
        "Median offset (source minus served time) of the source's recent samples.",
    );
    for r in &s.sources {
        if let Some(v) = r.offset {
            m.sample("pitime_source_offset_seconds", &[("source", &r.name)], v);
        }
    }
    m.family(
        "pitime_source_jitter_seconds",
        "gauge",
        "RMS deviation of the source's recent offsets.",
    );
    for r in &s.sources {
        if let Some(v) = r.jitter {
            m.sample("pitime_source_jitter_seconds", &[("source", &r.name)], v);
        }
    }

    m.family(
        "pitime_gps_satellites",
        "gauge",
        "Satellites by system, in view or used in the fix.",
    );
    for g in &s.gps {
        for c in &g.constellations {
            for (state, n) in [("in_view", c.in_view), ("used", c.used)] {
                m.sample(
                    "pitime_gps_satellites",
                    &[("source", &g.name), ("system", c.name), ("state", state)],
                    n as f64,
                );
            }
        }
    }
    m.family(
        "pitime_gps_snr_dbhz",
        "gauge",
        "Carrier-to-noise density (NMEA's SNR) of each satellite in view, dB-Hz.",
    );
    for g in &s.gps {
        for sat in &g.satellites {
            if let Some(snr) = sat.snr {
                let prn = sat.prn.to_string();
                m.sample(
                    "pitime_gps_snr_dbhz",
                    &[
                        ("source", &g.name),
                        ("system", sat.constellation),
                        ("prn", &prn),
                    ],
                    f64::from(snr),
                );
            }
        }
    }
    m.family(
        "pitime_gps_fix",
        "gauge",
        "1 when the receiver reports a fix.",
    );
    m.family(
        "pitime_gps_antenna_fault",
        "gauge",
        "1 when the antenna is open or shorted.",
    );
    m.family(
        "pitime_gps_spoof_detected",
        "gauge",
        "1 while the receiver reports spoofing (the source is then watched, not followed).",
    );
    m.family(
        "pitime_gps_jamming",
        "gauge",
        "1 while the receiver reports jamming (its own state, or a CW indicator of 200 or more).",
    );
    m.family(
        "pitime_gps_jam_indicator",
        "gauge",
        "The receiver's CW jamming indicator, 0 (none) to 255 (strong).",
    );
    m.family(
        "pitime_gps_noise_per_ms",
        "gauge",
        "The noise level the receiver measures, on its own scale.",
    );
    m.family(
        "pitime_gps_pps_qerr_seconds",
        "gauge",
        "The quantisation error the receiver gave for the last pulse (u-blox TIM-TP).",
    );
    m.family(
        "pitime_gps_pps_samples_total",
        "counter",
        "Sentences paired with a pulse.",
    );
    m.family(
        "pitime_gps_bad_frames_total",
        "counter",
        "Lines with a bad checksum or bytes.",
    );
    m.family(
        "pitime_gps_lines_dropped_total",
        "counter",
        "Serial lines cut off: too long, or never ended (a wrong baud rate, noise).",
    );
    m.family(
        "pitime_gps_jumps_rejected_total",
        "counter",
        "Times rejected for disagreeing with the trusted time.",
    );
    for g in &s.gps {
        let l = [("source", g.name.as_str())];
        m.sample("pitime_gps_fix", &l, flag(g.fix != "none"));
        m.sample(
            "pitime_gps_antenna_fault",
            &l,
            flag(matches!(g.antenna, "open" | "short")),
        );
        m.sample("pitime_gps_spoof_detected", &l, flag(g.spoof_detected));
        if let Some(j) = &g.jamming {
            m.sample("pitime_gps_jamming", &l, flag(j.alarm));
            m.sample("pitime_gps_jam_indicator", &l, f64::from(j.indicator));
            m.sample("pitime_gps_noise_per_ms", &l, f64::from(j.noise));
        }
        if let Some(q) = g.pps_qerr_seconds {
            m.sample("pitime_gps_pps_qerr_seconds", &l, q);
        }
        m.sample("pitime_gps_pps_samples_total", &l, g.pps_samples as f64);
        m.sample("pitime_gps_bad_frames_total", &l, g.bad_frames as f64);
        m.sample("pitime_gps_lines_dropped_total", &l, g.lines_dropped as f64);
        m.sample(
            "pitime_gps_jumps_rejected_total",
            &l,
            g.jumps_rejected as f64,
        );
    }
    m.family(
        "pitime_gps_receiver_settings",
        "gauge",
        "[source.receiver] settings of the last configuration pass, by state.",
    );
    for g in &s.gps {
        for state in ["applied", "failed", "pending"] {
            let n = g.settings.iter().filter(|x| x.state == state).count();
            let l = [("source", g.name.as_str()), ("state", state)];
            m.sample("pitime_gps_receiver_settings", &l, n as f64);
        }
    }

    m.family(
        "pitime_longwave_locked",
        "gauge",
        "1 while a longwave receiver's second markers are locked.",
    );
    m.family(
        "pitime_longwave_events_total",
        "counter",
        "A longwave receiver's pulses, errors and minutes, by kind.",
    );
    for d in &s.longwave {
        let station = d.station.name();
        m.sample(
            "pitime_longwave_locked",
            &[("source", &d.name), ("station", station)],
            flag(d.quality.locked),
        );
        for (kind, n) in [
            ("pulse", d.quality.pulses),
            ("glitch", d.quality.glitches),
            ("wrong_width", d.quality.wrong_widths),
            ("undecided", d.quality.undecided),
            ("missing", d.quality.missing),
            ("parity_error", d.quality.parity_errors),
            ("bad_frame", d.quality.bad_frames),
            ("minute_accepted", d.quality.minutes_accepted),
            ("minute_rejected", d.quality.minutes_rejected),
        ] {
            m.sample(
                "pitime_longwave_events_total",
                &[("source", &d.name), ("station", station), ("kind", kind)],
                n as f64,
            );
        }
    }

    m.family(
        "pitime_upstream_reach",
        "gauge",
        "Reach register of an upstream server: the last eight requests, bit 0 the newest.",
    );
    m.family(
        "pitime_upstream_offset_seconds",
        "gauge",
        "Upstream server's time minus the local clock, from the clock filter.",
    );
    m.family(
        "pitime_upstream_delay_seconds",
        "gauge",
        "Round-trip delay to an upstream server, from the clock filter.",
    );
    m.family(
        "pitime_upstream_dropped_total",
        "counter",
        "Datagrams from an upstream server that failed the checks.",
    );
    for u in &s.upstream {
        let l = [("source", u.name.as_str())];
        m.sample("pitime_upstream_reach", &l, f64::from(u.reach));
        if let (Some(offset), Some(delay)) = (u.offset_seconds, u.delay_seconds) {
            m.sample("pitime_upstream_offset_seconds", &l, offset);
            m.sample("pitime_upstream_delay_seconds", &l, delay);
        }
        m.sample("pitime_upstream_dropped_total", &l, u.dropped as f64);
    }

    m.family(
        "pitime_ntp_requests_total",
        "counter",
        "NTP requests by what was done with them.",
    );
    for (outcome, n) in &s.ntp.counters {
        m.sample(
            "pitime_ntp_requests_total",
            &[("outcome", outcome)],
            *n as f64,
        );
    }
    m.gauge(
        "pitime_ntp_clients",
        "Distinct client addresses since start (an estimate, within about 6.5%).",
        s.ntp.clients_seen,
    );
    m.family(
        "pitime_ntp_interleaved_replies_total",
        "counter",
        "Replies in interleaved mode, carrying the kernel's transmit time of the previous one.",
    );
    m.sample(
        "pitime_ntp_interleaved_replies_total",
        &[],
        s.ntp.interleaved as f64,
    );
    m.family(
        "pitime_ntp_hardware_timestamps_total",
        "counter",
        "Requests received and replies sent on interfaces with hardware timestamps, by whether the interface's timestamp was used or the kernel's instead.",
    );
    let hw = &s.ntp.hardware_timestamps;
    for (direction, result, n) in [
        ("receive", "hardware", hw.receive),
        ("receive", "fell_back", hw.receive_fallback),
        ("transmit", "hardware", hw.transmit),
        ("transmit", "fell_back", hw.transmit_fallback),
    ] {
        m.sample(
            "pitime_ntp_hardware_timestamps_total",
            &[("direction", direction), ("result", result)],
            n as f64,
        );
    }
    if let Some(nts) = &s.nts {
        nts_metrics(&mut m, nts, &s.ntp.counters);
    }
    m.0
}

fn nts_metrics(m: &mut Metrics, nts: &NtsView, counters: &[(&'static str, u64)]) {
    m.family(
        "pitime_nts_ke_sessions_total",
        "counter",
        "NTS-KE sessions that gave keys and cookies.",
    );
    m.sample("pitime_nts_ke_sessions_total", &[], nts.ke_sessions as f64);
    m.family(
        "pitime_nts_ke_failures_total",
        "counter",
        "NTS-KE connections that ended without keys, by reason.",
    );
    for (reason, n) in &nts.ke_failures {
        m.sample(
            "pitime_nts_ke_failures_total",
            &[("reason", reason)],
            *n as f64,
        );
    }
    m.family(
        "pitime_nts_requests_total",
        "counter",
        "NTS-authenticated NTP requests: answered (served) or with an NTS NAK (nak).",
    );
    let count = |name: &str| counters.iter().find(|(n, _)| *n == name).map_or(0, |c| c.1);
    m.sample(
        "pitime_nts_requests_total",
        &[("result", "served")],
        count("served_nts") as f64,
    );
    m.sample(
        "pitime_nts_requests_total",
        &[("result", "nak")],
        count("kod_ntsn") as f64,
    );
    if let Some(age) = nts.cookie_key_age_seconds {
        m.gauge(
            "pitime_nts_cookie_key_age_seconds",
            "Age of the master key that makes new cookies.",
            age,
        );
    }
    if let Some(t) = nts.certificate_expires_unix {
        m.gauge(
            "pitime_nts_certificate_expiry_timestamp_seconds",
            "When the NTS-KE server's certificate expires (Unix time).",
            t as f64,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SourceKind;
    use crate::discipline::SourceReport;

    fn source(name: &str) -> SourceReport {
        SourceReport {
            name: name.to_string(),
            kind: SourceKind::Gps,
            state: Standing::Selected,
            reach: 255,
            last_sample_ago: None,
            offset: Some(1e-6),
            jitter: None,
            error: None,
            refid: None,
            stratum: None,
            outliers: 0,
        }
    }

    /// Whatever a user names a source, each sample stays on its line, and a value in its
    /// label reads back as the name.
    #[test]
    fn hostile_source_names_stay_inside_their_label() {
        let names = [
            "quote\" } x=\"1",
            "back\\slash\\",
            "new\nline pitime_stratum 0",
            "Frankfurt {Mainflingen} # DCF77, 77.5 kHz",
            "\u{e9}t\u{e9}\t\u{1F6F0}",
            "",
        ];
        let status = Status {
            sources: names.iter().map(|n| source(n)).collect(),
            ..Status::default()
        };
        let text = render(&status, Realtime::from_nanos(0));
        let reach: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("pitime_source_reach{"))
            .collect();
        assert_eq!(reach.len(), names.len(), "{text}");
        for (line, name) in reach.iter().zip(names) {
            let quoted = line
                .strip_prefix("pitime_source_reach{source=\"")
                .and_then(|l| l.strip_suffix("\"} 255"))
                .unwrap_or_else(|| panic!("{line}"));
            let mut unescaped = String::new();
            let mut chars = quoted.chars();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => match chars.next() {
                        Some('n') => unescaped.push('\n'),
                        Some(c @ ('\\' | '"')) => unescaped.push(c),
                        other => panic!("bad escape {other:?} in {line}"),
                    },
                    '"' => panic!("unescaped quote in {line}"),
                    c => unescaped.push(c),
                }
            }
            assert_eq!(unescaped, name);
        }
        // No line other than comments and samples of our families.
        assert!(text
            .lines()
            .all(|l| l.starts_with("# ") || l.starts_with("pitime_") || l.starts_with("process_")));
    }

    /// MSF and WWVB receivers are exported as longwave sources that say their station, not
    /// as DCF77.
    #[test]
    fn longwave_sources_are_labelled_with_their_station() {
        use crate::refclock::longwave::station::StationKind;
        use crate::web::status::LongwaveView;
        let receiver = |name: &str, station, locked| {
            let mut v = LongwaveView {
                name: name.to_string(),
                station,
                ..LongwaveView::default()
            };
            v.quality.locked = locked;
            v.quality.minutes_accepted = 3;
            v
        };
        let status = Status {
            longwave: vec![
                receiver("anthorn", StationKind::Msf, true),
                receiver("boulder", StationKind::Wwvb, false),
            ],
            ..Status::default()
        };
        let text = render(&status, Realtime::from_nanos(0));
        let lines: Vec<&str> = text.lines().collect();
        for expected in [
            r#"pitime_longwave_locked{source="anthorn",station="msf"} 1"#,
            r#"pitime_longwave_locked{source="boulder",station="wwvb"} 0"#,
            r#"pitime_longwave_events_total{source="anthorn",station="msf",kind="minute_accepted"} 3"#,
            r#"pitime_longwave_events_total{source="boulder",station="wwvb",kind="pulse"} 0"#,
        ] {
            assert!(lines.contains(&expected), "{expected} missing from\n{text}");
        }
        assert!(!text.contains("dcf77"), "{text}");
    }

    #[test]
    fn infinities_are_written_as_the_format_spells_them() {
        let mut m = Metrics(String::new());
        m.sample("x", &[], f64::INFINITY);
        m.sample("x", &[], f64::NEG_INFINITY);
        m.sample("x", &[], f64::NAN);
        assert_eq!(m.0, "x +Inf\nx -Inf\nx NaN\n");
    }
}
