//! `/metrics`: the status in Prometheus' text format, base units in the names.

use std::fmt::Write;

use super::status::Status;
use crate::discipline::{ClockState, Standing};

struct Metrics(String);

impl Metrics {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(
            self.0,
            "# HELP pitime_{name} {help}\n# TYPE pitime_{name} {kind}"
        );
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        let labels: Vec<String> = labels
            .iter()
            .map(|(k, v)| {
                let v = v
                    .replace('\\', "\\\\")
                    .replace('"', "\\\"")
                    .replace('\n', "\\n");
                format!("{k}=\"{v}\"")
            })
            .collect();
        let labels = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{}}}", labels.join(","))
        };
        let _ = writeln!(self.0, "pitime_{name}{labels} {value}");
    }

    fn gauge(&mut self, name: &str, help: &str, value: f64) {
        self.family(name, "gauge", help);
        self.sample(name, &[], value);
    }
}

/// Resident memory of this process, from /proc/self/statm.
fn resident_bytes() -> Option<f64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: f64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as f64;
    Some(pages * page)
}

pub fn render(s: &Status) -> String {
    let mut m = Metrics(String::with_capacity(8192));
    let c = &s.clock;
    m.gauge(
        "synchronised",
        "1 when the served time follows a reference.",
        f64::from(u8::from(c.synchronised)),
    );
    m.gauge("stratum", "Stratum served.", f64::from(c.stratum));
    m.gauge(
        "holdover",
        "1 while the clock holds over without references.",
        f64::from(u8::from(c.state == ClockState::Holdover)),
    );
    m.gauge(
        "alarms",
        "Alarms raised now (the status page lists them).",
        s.alarms.len() as f64,
    );
    m.gauge(
        "offset_seconds",
        "Served time minus the system clock.",
        c.offset_seconds,
    );
    m.gauge(
        "frequency_ppm",
        "Frequency correction, parts per million.",
        c.frequency_ppm,
    );
    m.gauge(
        "root_dispersion_seconds",
        "Error bound served to clients.",
        c.root_dispersion_seconds,
    );
    m.gauge(
        "root_delay_seconds",
        "Round-trip delay to the primary reference.",
        c.root_delay_seconds,
    );
    m.gauge(
        "uptime_seconds",
        "Seconds since the daemon started.",
        s.uptime_seconds,
    );
    if let Some(bytes) = resident_bytes() {
        m.gauge("process_resident_memory_bytes", "Resident memory.", bytes);
    }

    m.family(
        "source_selected",
        "gauge",
        "1 for the source the clock follows.",
    );
    for r in &s.sources {
        m.sample(
            "source_selected",
            &[("source", &r.name)],
            f64::from(u8::from(r.state == Standing::Selected)),
        );
    }
    m.family(
        "source_falseticker",
        "gauge",
        "1 for a source that disagrees with the majority (or when no majority exists).",
    );
    for r in &s.sources {
        m.sample(
            "source_falseticker",
            &[("source", &r.name)],
            f64::from(u8::from(r.state == Standing::Falseticker)),
        );
    }
    m.family(
        "source_reach",
        "gauge",
        "Reach register (one bit a second, 255 all reached).",
    );
    for r in &s.sources {
        m.sample("source_reach", &[("source", &r.name)], f64::from(r.reach));
    }
    m.family(
        "source_offset_seconds",
        "gauge",
        "Median offset of the source's recent samples.",
    );
    for r in &s.sources {
        if let Some(v) = r.offset {
            m.sample("source_offset_seconds", &[("source", &r.name)], v);
        }
    }
    m.family(
        "source_jitter_seconds",
        "gauge",
        "RMS deviation of the source's recent offsets.",
    );
    for r in &s.sources {
        if let Some(v) = r.jitter {
            m.sample("source_jitter_seconds", &[("source", &r.name)], v);
        }
    }

    m.family(
        "gps_satellites",
        "gauge",
        "Satellites by system, in view or used in the fix.",
    );
    for g in &s.gps {
        for c in &g.constellations {
            m.sample(
                "gps_satellites",
                &[
                    ("source", &g.name),
                    ("system", c.name),
                    ("state", "in_view"),
                ],
                c.in_view as f64,
            );
            m.sample(
                "gps_satellites",
                &[("source", &g.name), ("system", c.name), ("state", "used")],
                c.used as f64,
            );
        }
    }
    m.family(
        "gps_snr_dbhz",
        "gauge",
        "Signal strength of each satellite in view.",
    );
    for g in &s.gps {
        for sat in &g.satellites {
            if let Some(snr) = sat.snr {
                let prn = sat.prn.to_string();
                m.sample(
                    "gps_snr_dbhz",
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
    m.family("gps_fix", "gauge", "1 when the receiver reports a fix.");
    m.family(
        "gps_antenna_fault",
        "gauge",
        "1 when the antenna is open or shorted.",
    );
    m.family(
        "gps_pps_samples_total",
        "counter",
        "Sentences paired with a pulse.",
    );
    m.family(
        "gps_bad_frames_total",
        "counter",
        "Lines with a bad checksum or bytes.",
    );
    m.family(
        "gps_jumps_rejected_total",
        "counter",
        "Times rejected for disagreeing with the trusted time.",
    );
    for g in &s.gps {
        let l = [("source", g.name.as_str())];
        m.sample("gps_fix", &l, f64::from(u8::from(g.fix != "none")));
        m.sample(
            "gps_antenna_fault",
            &l,
            f64::from(u8::from(matches!(g.antenna, "open" | "short"))),
        );
        m.sample("gps_pps_samples_total", &l, g.pps_samples as f64);
        m.sample("gps_bad_frames_total", &l, g.bad_frames as f64);
        m.sample("gps_jumps_rejected_total", &l, g.jumps_rejected as f64);
    }

    m.family(
        "dcf77_locked",
        "gauge",
        "1 while the second markers are locked.",
    );
    m.family(
        "dcf77_events_total",
        "counter",
        "Pulses, errors and minutes, by kind.",
    );
    for d in &s.dcf77 {
        m.sample(
            "dcf77_locked",
            &[("source", &d.name)],
            f64::from(u8::from(d.quality.locked)),
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
                "dcf77_events_total",
                &[("source", &d.name), ("kind", kind)],
                n as f64,
            );
        }
    }

    m.family(
        "upstream_reach",
        "gauge",
        "Reach register of an upstream server: the last eight requests, bit 0 the newest.",
    );
    m.family(
        "upstream_offset_seconds",
        "gauge",
        "Upstream server's time minus the local clock, from the clock filter.",
    );
    m.family(
        "upstream_delay_seconds",
        "gauge",
        "Round-trip delay to an upstream server, from the clock filter.",
    );
    m.family(
        "upstream_dropped_total",
        "counter",
        "Datagrams from an upstream server that failed the checks.",
    );
    for u in &s.upstream {
        let l = [("source", u.name.as_str())];
        m.sample("upstream_reach", &l, f64::from(u.reach));
        if let (Some(offset), Some(delay)) = (u.offset_seconds, u.delay_seconds) {
            m.sample("upstream_offset_seconds", &l, offset);
            m.sample("upstream_delay_seconds", &l, delay);
        }
        m.sample("upstream_dropped_total", &l, u.dropped as f64);
    }

    m.family(
        "ntp_requests_total",
        "counter",
        "NTP requests by what was done with them.",
    );
    for (outcome, n) in &s.ntp.counters {
        m.sample("ntp_requests_total", &[("outcome", outcome)], *n as f64);
    }
    m.0
}
