//! The status page: HTML rendered by the server from the same `Status` the JSON API returns.
//! It refreshes itself; each receiver's section appears only when that receiver is configured.

use std::fmt::Write;

use super::status::{GpsView, HwClockView, LongwaveView, NtsView, Status};
use super::svg::{line_chart, scaled, sky_plot, Chart};
use crate::discipline::history::{History, Point};
use crate::discipline::ClockState;

const STYLE: &str = r#"
body{font-family:system-ui,sans-serif;margin:0 auto;max-width:980px;padding:12px;color:#222;background:#fafafa}
h1{font-size:1.4em;margin:.2em 0}h2{font-size:1.1em;border-bottom:1px solid #ccc;margin-top:1.4em}
.headline{display:grid;grid-template-columns:repeat(auto-fit,minmax(150px,1fr));gap:8px}
.card{background:#fff;border:1px solid #ddd;border-radius:6px;padding:8px}
.card b{display:block;font-size:1.2em}.ok{color:#186a1e}.warn{color:#9a5b00}.bad{color:#a11}
table{border-collapse:collapse;width:100%;font-size:.9em}td,th{padding:3px 6px;border-bottom:1px solid #eee;text-align:left}
.chart{width:100%;height:auto;background:#fff;border:1px solid #ddd}
.axis{stroke:#999}.grid{stroke:#eee}.line{fill:none;stroke:#1565c0;stroke-width:1.5}.dot{fill:#1565c0}.label{font-size:11px;fill:#444}
.latest{font-weight:bold;fill:#222}.band.holdover{fill:#ffd27f;opacity:.5}.band.alarm{fill:#f5a09c;opacity:.4}
.key{padding:0 4px;border-radius:3px}.key.holdover{background:#ffe4b0}.key.alarm{background:#fbd2d0}
.small{font-size:8px;fill:#333}.ring{fill:none;stroke:#bbb}.sat{fill:#fff;stroke:#1565c0}.sat.used{fill:#1565c0}
.bar{display:inline-block;height:10px;background:#1565c0;vertical-align:middle}
.bits{font-family:monospace;word-break:break-all}.alarm{background:#fdecea;border:1px solid #f5c2c0;padding:6px;border-radius:4px}
"#;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn opt(v: Option<f64>, unit: &str) -> String {
    v.map_or("-".into(), |v| scaled(v, unit))
}

fn card(out: &mut String, label: &str, value: &str, class: &str) {
    let _ = write!(
        out,
        r#"<div class="card">{label}<b class="{class}">{}</b></div>"#,
        esc(value)
    );
}

pub fn render(s: &Status) -> String {
    let mut o = String::with_capacity(32 * 1024);
    let _ = write!(
        o,
        r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><meta http-equiv="refresh" content="5"><title>pitime: stratum {} {}</title><style>{STYLE}</style></head><body><h1>pitime</h1>"#,
        s.clock.stratum,
        esc(&s.clock.refid)
    );
    headline(&mut o, s);
    if !s.alarms.is_empty() {
        o.push_str(r#"<h2>Alarms</h2><div id="alarms" class="alarm"><ul>"#);
        for a in &s.alarms {
            let _ = write!(o, "<li>{}</li>", esc(&a.text));
        }
        o.push_str("</ul></div>");
    }
    sources(&mut o, s);
    for g in &s.gps {
        gps(&mut o, g);
    }
    for d in &s.longwave {
        longwave(&mut o, d);
    }
    upstream(&mut o, s);
    ntp(&mut o, s);
    if let Some(n) = &s.nts {
        nts(&mut o, n);
    }
    charts(&mut o, s);
    let _ = write!(
        o,
        r#"<p class="label">pitime {} · <a href="/api/v1/status">JSON</a> · <a href="/metrics">metrics</a></p></body></html>"#,
        s.version
    );
    o
}

fn headline(o: &mut String, s: &Status) {
    let c = &s.clock;
    o.push_str(r#"<div id="headline" class="headline">"#);
    let (state, class) = match (c.synchronised, c.state) {
        (true, ClockState::Holdover) => ("holdover", "warn"),
        (true, _) => ("synchronised", "ok"),
        (false, _) => ("not synchronised", "bad"),
    };
    card(o, "state", state, class);
    card(o, "stratum", &c.stratum.to_string(), "");
    card(o, "reference", &c.refid, "");
    card(
        o,
        "estimated error",
        &scaled(c.root_dispersion_seconds, "s"),
        "",
    );
    card(o, "offset", &scaled(c.offset_seconds, "s"), "");
    card(o, "frequency", &format!("{:.3} ppm", c.frequency_ppm), "");
    card(o, "leap", c.leap, "");
    let up = s.uptime_seconds as u64;
    let uptime = format!("{}d {:02}:{:02}", up / 86_400, up / 3600 % 24, up / 60 % 60);
    card(o, "uptime", &uptime, "");
    o.push_str("</div>");
}

fn sources(o: &mut String, s: &Status) {
    o.push_str(r#"<h2>Sources</h2><table id="sources"><tr><th></th><th>name</th><th>kind</th><th>state</th><th>reach</th><th>last sample</th><th>offset</th><th>jitter</th></tr>"#);
    for r in &s.sources {
        let mark = r.state.mark();
        let _ = write!(
            o,
            "<tr><td>{mark}</td><td>{}</td><td>{} {}</td><td>{:?}</td><td>{:o}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&r.name),
            r.kind,
            esc(r.refid.as_deref().unwrap_or("")),
            r.state,
            r.reach,
            r.last_sample_ago.map_or("-".into(), |a| format!("{a:.1} s ago")),
            opt(r.offset, "s"),
            opt(r.jitter, "s"),
        );
    }
    o.push_str("</table>");
}

fn gps(o: &mut String, g: &GpsView) {
    let _ = write!(o, r#"<h2>GPS: {}</h2><div class="headline">"#, esc(&g.name));
    card(o, "fix", g.fix, if g.fix == "none" { "bad" } else { "ok" });
    card(
        o,
        "antenna",
        g.antenna,
        if g.antenna == "ok" { "ok" } else { "" },
    );
    if let Some(l) = &g.leap_second {
        card(o, "leap second", &format!("{} before {}", l.leap, l.at), "");
    }
    if g.spoofing != "unknown" {
        let class = if g.spoof_detected { "bad" } else { "ok" };
        card(o, "spoofing", g.spoofing, class);
    }
    if let Some(j) = &g.jamming {
        let text = format!("{} ({}/255)", j.state, j.indicator);
        card(o, "jamming", &text, if j.alarm { "bad" } else { "ok" });
    }
    card(
        o,
        "time",
        if g.trusted { "trusted" } else { "not trusted" },
        "",
    );
    card(o, "sentence delay", &opt(g.sentence_delay_seconds, "s"), "");
    if let Some([lat, lon, _]) = g.position {
        card(o, "position", &format!("{lat:.4}, {lon:.4}"), "");
    }
    card(o, "receiver", &g.receiver, "");
    if let Some(sv) = &g.survey {
        let state = match (sv.valid, sv.active) {
            (true, _) => "done",
            (false, true) => "surveying",
            (false, false) => "stopped",
        };
        let detail = format!(
            "{state}: {} s, {:.2} m, {} fixes",
            sv.seconds, sv.accuracy_metres, sv.observations
        );
        card(o, "survey-in", &detail, if sv.valid { "ok" } else { "" });
    }
    o.push_str("</div><table><tr><th>system</th><th>in view</th><th>used</th></tr>");
    for c in &g.constellations {
        let _ = write!(
            o,
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            c.name, c.in_view, c.used
        );
    }
    o.push_str("</table><div style=\"display:flex;flex-wrap:wrap;gap:12px\"><div style=\"flex:1;min-width:260px\"><table><tr><th>satellite</th><th>signal (dB-Hz)</th></tr>");
    for sat in &g.satellites {
        let snr = sat.snr.unwrap_or(0);
        let _ = write!(
            o,
            r#"<tr><td>{} {}{}</td><td><span class="bar" style="width:{}px"></span> {}</td></tr>"#,
            sat.constellation,
            sat.prn,
            if sat.used { " ✓" } else { "" },
            u32::from(snr) * 3,
            snr
        );
    }
    let _ = write!(
        o,
        r#"</table></div><div style="width:240px">{}</div></div><p class="label">sentences {} · bad {} · lines dropped {} · rejected times {} · PPS samples {} · NMEA samples {} · bad pulses {} · jumps rejected {} · reconnects {}</p>"#,
        sky_plot(&g.satellites),
        g.sentences,
        g.bad_frames,
        g.lines_dropped,
        g.rejected_times,
        g.pps_samples,
        g.nmea_samples,
        g.bad_pulses,
        g.jumps_rejected,
        g.reconnects
    );
    if !g.settings.is_empty() {
        let _ = write!(
            o,
            r#"<table><tr><th>receiver setting ({} baud)</th><th>state</th></tr>"#,
            g.baud
        );
        for st in &g.settings {
            let reason = st
                .reason
                .as_deref()
                .map(|r| format!(": {}", esc(r)))
                .unwrap_or_default();
            let class = match st.state {
                "applied" => "ok",
                "failed" => "bad",
                _ => "",
            };
            let _ = write!(
                o,
                r#"<tr><td>{}</td><td class="{class}">{}{reason}</td></tr>"#,
                esc(&st.name),
                st.state
            );
        }
        o.push_str("</table>");
    }
}

fn longwave(o: &mut String, d: &LongwaveView) {
    let _ = write!(
        o,
        r#"<h2>{}: {}</h2><div class="headline">"#,
        d.station.label(),
        esc(&d.name)
    );
    card(
        o,
        "signal",
        if d.quality.locked {
            "locked"
        } else {
            "searching"
        },
        if d.quality.locked { "ok" } else { "bad" },
    );
    card(
        o,
        "last minute",
        d.last_minute.as_deref().unwrap_or("-"),
        "",
    );
    card(
        o,
        "minutes accepted",
        &d.quality.minutes_accepted.to_string(),
        "",
    );
    card(o, "parity errors", &d.quality.parity_errors.to_string(), "");
    let _ = write!(
        o,
        r#"</div><p>this minute: <span id="longwave-bits" class="bits">{}</span></p><p class="label">pulses {} · glitches {} · wrong widths {} · undecided {} · missing {} · bad frames {} · rejected minutes {} · widths {:.0}/{:.0} ms</p>"#,
        esc(&d.current_bits),
        d.quality.pulses,
        d.quality.glitches,
        d.quality.wrong_widths,
        d.quality.undecided,
        d.quality.missing,
        d.quality.bad_frames,
        d.quality.minutes_rejected,
        d.widths_seconds[0] * 1e3,
        d.widths_seconds[1] * 1e3
    );
}

fn upstream(o: &mut String, s: &Status) {
    if s.upstream.is_empty() {
        return;
    }
    o.push_str(r#"<h2>Upstream servers</h2><table id="upstream"><tr><th>name</th><th>address</th><th>reach</th><th>poll</th><th>offset</th><th>delay</th><th>jitter</th><th>dropped</th></tr>"#);
    for u in &s.upstream {
        let _ = write!(
            o,
            "<tr><td>{}</td><td>{}</td><td>{:o}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&u.name),
            esc(u.address.as_deref().unwrap_or("-")),
            u.reach,
            if u.denied { "refused".into() } else { format!("{} s", u.poll_seconds) },
            opt(u.offset_seconds, "s"),
            opt(u.delay_seconds, "s"),
            opt(u.jitter_seconds, "s"),
            u.dropped,
        );
    }
    o.push_str("</table>");
}

fn ntp(o: &mut String, s: &Status) {
    let _ = write!(
        o,
        r#"<h2>NTP service</h2><p>{:.1} requests per second · about {} clients seen</p><table id="ntp"><tr><th>outcome</th><th>count</th></tr>"#,
        s.ntp.requests_per_second, s.ntp.clients_seen
    );
    for (name, n) in s.ntp.counters.iter().filter(|c| c.1 > 0) {
        let _ = write!(o, "<tr><td>{name}</td><td>{n}</td></tr>");
    }
    o.push_str("</table>");
    let hw = &s.ntp.hardware_timestamps;
    let hardware = match s.ntp.timestamping.iter().any(|t| t.clock.is_some()) {
        true => format!(
            " · hardware timestamps: {} received ({} fell back), {} sent ({} fell back)",
            hw.receive, hw.receive_fallback, hw.transmit, hw.transmit_fallback
        ),
        false => String::new(),
    };
    let _ = write!(
        o,
        r#"<p>{} replies in interleaved mode · {} kernel transmit timestamps{hardware}</p><table id="timestamping"><tr><th>address</th><th>interface</th><th>timestamps</th><th>why</th></tr>"#,
        s.ntp.interleaved, s.ntp.transmit_timestamps
    );
    for t in &s.ntp.timestamping {
        let why = match &t.clock {
            Some(c) => hw_clock(c),
            None => t.why.clone(),
        };
        let _ = write!(
            o,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&t.address),
            esc(&t.interface),
            t.timestamping,
            esc(&why)
        );
    }
    o.push_str("</table>");
}

/// How well an interface's clock is followed, in words.
fn hw_clock(c: &HwClockView) -> String {
    let state = match (c.ready, c.fit_error) {
        (true, Some(e)) => format!("{} samples, fit error {:.0} ns", c.samples, e * 1e9),
        _ => format!(
            "{} samples, not ready: kernel timestamps until it is",
            c.samples
        ),
    };
    let problem = c
        .problem
        .as_ref()
        .map_or(String::new(), |p| format!("; last reading: {p}"));
    format!("{} ({}): {state}{problem}", c.device, c.method)
}

fn nts(o: &mut String, n: &NtsView) {
    o.push_str(r#"<h2>NTS</h2><div id="nts" class="headline">"#);
    let listen = match n.ke_listen.is_empty() {
        true => "not serving".to_string(),
        false => n.ke_listen.join(" "),
    };
    card(
        o,
        "key exchange",
        &listen,
        if n.ke_listen.is_empty() { "bad" } else { "" },
    );
    card(o, "sessions", &n.ke_sessions.to_string(), "");
    let expires = n.certificate_expires.as_deref().unwrap_or("unknown");
    card(o, "certificate expires", expires, "");
    let age = n
        .cookie_key_age_seconds
        .map_or("-".into(), |a| format!("{:.1} h", a / 3600.0));
    card(o, "cookie key age", &age, "");
    o.push_str("</div>");
    if let Some(ca) = &n.local_ca {
        let _ = write!(
            o,
            r#"<p>Clients trust this server's own certificate authority: <a href="/nts-ca.pem">nts-ca.pem</a>, SHA-256 fingerprint <code>{}</code>. Save it on the client, then add:</p><p>chrony:</p><pre>{}</pre><p>ntpd-rs:</p><pre>{}</pre>"#,
            esc(&ca.fingerprint),
            esc(&ca.chrony),
            esc(&ca.ntpd_rs)
        );
    }
}

fn charts(o: &mut String, s: &Status) {
    type Series = (&'static str, &'static str, fn(&Point) -> f64);
    const SERIES: [Series; 3] = [
        ("offset", "s", |p| p.offset),
        ("jitter", "s", |p| p.jitter),
        ("frequency", "ppm", |p| p.frequency),
    ];
    let now = s.now.as_nanos().div_euclid(1_000_000_000);
    for (span, title, seconds, step, points) in [
        (
            "hour",
            "Last hour",
            3600,
            History::HOUR_STEP,
            &s.history.hour,
        ),
        ("day", "Last day", 86400, History::DAY_STEP, &s.history.day),
    ] {
        let _ = write!(
            o,
            r#"<h2>{title}</h2><p class="label">Times in UTC. On the offset chart, <span class="key holdover">amber</span> marks holdover and <span class="key alarm">red</span> an alarm.</p>"#
        );
        for (name, unit, value) in SERIES {
            let values: Vec<(i64, f64)> = points.iter().map(|p| (p.t, value(p))).collect();
            // Holdover and alarms are marked where they show what happened to the time.
            let bands = if name == "offset" {
                bands(points, step)
            } else {
                Vec::new()
            };
            o.push_str(&line_chart(&Chart {
                id: &format!("chart-{name}-{span}"),
                title: name,
                unit,
                points: &values,
                window: (now - seconds, now),
                step,
                bands: &bands,
            }));
        }
    }
}

/// The periods of holdover and of alarms: each marked point covers the `step` before it.
fn bands(points: &[Point], step: i64) -> Vec<(i64, i64, &'static str)> {
    type Flag = (&'static str, fn(&Point) -> bool);
    const FLAGS: [Flag; 2] = [("alarm", |p| p.alarm), ("holdover", |p| p.holdover)];
    let mut bands: Vec<(i64, i64, &'static str)> = Vec::new();
    for (class, flag) in FLAGS {
        for p in points.iter().filter(|p| flag(p)) {
            match bands.last_mut() {
                Some(b) if b.2 == class && b.1 >= p.t - step => b.1 = p.t,
                _ => bands.push((p.t - step, p.t, class)),
            }
        }
    }
    bands
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::web::status::StampingView;

    #[test]
    fn a_hardware_interface_shows_its_clock_and_the_counts() {
        let clock = HwClockView {
            device: "/dev/ptp0".into(),
            method: "PTP_SYS_OFFSET_PRECISE",
            ready: true,
            samples: 16,
            fit_error: Some(42e-9),
            ..HwClockView::default()
        };
        let mut s = Status::default();
        s.ntp.hardware_timestamps.receive = 7;
        s.ntp.timestamping = vec![StampingView {
            interface: "eth0".into(),
            timestamping: "hardware",
            clock: Some(clock.clone()),
            ..StampingView::default()
        }];
        let mut o = String::new();
        ntp(&mut o, &s);
        assert!(
            o.contains("hardware timestamps: 7 received (0 fell back)"),
            "{o}"
        );
        assert!(
            o.contains("<td>/dev/ptp0 (PTP_SYS_OFFSET_PRECISE): 16 samples, fit error 42 ns</td>"),
            "{o}"
        );
        let starting = HwClockView {
            ready: false,
            samples: 2,
            fit_error: None,
            problem: Some("off the fit".into()),
            ..clock
        };
        assert_eq!(
            hw_clock(&starting),
            "/dev/ptp0 (PTP_SYS_OFFSET_PRECISE): 2 samples, not ready: kernel timestamps until it is; last reading: off the fit"
        );
        // Without hardware interfaces, no hardware counts.
        s.ntp.timestamping[0].clock = None;
        let mut o = String::new();
        ntp(&mut o, &s);
        assert!(!o.contains("hardware timestamps:"), "{o}");
    }

    #[test]
    fn a_longwave_section_is_headed_by_its_station() {
        use crate::refclock::longwave::station::StationKind;
        let mut o = String::new();
        longwave(
            &mut o,
            &LongwaveView {
                name: "anthorn".into(),
                station: StationKind::Msf,
                ..LongwaveView::default()
            },
        );
        assert!(o.starts_with("<h2>MSF: anthorn</h2>"), "{o}");
        assert!(!o.contains("DCF77"), "{o}");
    }

    #[test]
    fn marked_points_join_into_bands() {
        let point = |t, holdover, alarm| Point {
            t,
            holdover,
            alarm,
            ..Point::default()
        };
        let points = [
            point(10, true, true),
            point(20, true, false),
            point(30, false, false),
            point(40, true, false),
        ];
        assert_eq!(
            bands(&points, 10),
            [(0, 10, "alarm"), (0, 20, "holdover"), (30, 40, "holdover")]
        );
    }
}
