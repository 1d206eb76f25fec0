//! Inline SVG drawn by the server: line charts and the sky plot. No scripts, no external
//! assets: the Pi may have no internet.

use std::fmt::Write;

use super::status::SatelliteView;

const W: f64 = 600.0;
const H: f64 = 190.0;
/// The plot area: room on the left for the values, above for the title, below for the times.
const LEFT: f64 = 64.0;
const RIGHT: f64 = W - 10.0;
const TOP: f64 = 24.0;
const BOTTOM: f64 = H - 30.0;

/// A time series to draw over a fixed window ending now.
pub struct Chart<'a> {
    pub id: &'a str,
    pub title: &'a str,
    /// "s" gets an SI prefix; other units are shown as they are.
    pub unit: &'a str,
    /// (Unix seconds, value), oldest first; a value that is not finite breaks the line.
    pub points: &'a [(i64, f64)],
    /// The window shown, in Unix seconds: the time axis spans it even before it fills.
    pub window: (i64, i64),
    /// The spacing of the points: a longer gap (a pause, a clock step) breaks the line.
    pub step: i64,
    /// Periods to shade, as (from, to, class); the class is also their tooltip.
    pub bands: &'a [(i64, i64, &'static str)],
}

/// A line chart with a time axis in UTC, value grid lines with units, the latest value, and
/// shaded periods.
pub fn line_chart(c: &Chart) -> String {
    let (t0, t1) = (c.window.0, c.window.1.max(c.window.0 + 1));
    let inside: Vec<(i64, f64)> = c
        .points
        .iter()
        .copied()
        .filter(|p| (t0..=t1).contains(&p.0))
        .collect();
    let finite = || inside.iter().filter(|p| p.1.is_finite());
    let latest = finite()
        .next_back()
        .map_or("-".into(), |p| scaled(p.1, c.unit));
    let mut svg = format!(
        r#"<svg id="{}" class="chart" viewBox="0 0 {W} {H}" role="img" aria-label="{}"><text x="{LEFT}" y="14" class="label">{} ({})</text><text x="{RIGHT}" y="14" text-anchor="end" class="label">latest <tspan class="latest">{latest}</tspan></text>"#,
        c.id, c.title, c.title, c.unit
    );
    let x = |t: i64| LEFT + (t - t0) as f64 / (t1 - t0) as f64 * (RIGHT - LEFT);
    for &(from, to, class) in c.bands {
        let (a, b) = (x(from.clamp(t0, t1)), x(to.clamp(t0, t1)));
        if b > a {
            let _ = write!(
                svg,
                r#"<rect x="{a:.1}" y="{TOP}" width="{:.1}" height="{}" class="band {class}"><title>{class}</title></rect>"#,
                b - a,
                BOTTOM - TOP
            );
        }
    }
    time_axis(&mut svg, t0, t1, &x);
    if finite().count() < 2 {
        svg.push_str(r#"<text x="327" y="95" text-anchor="middle" class="label">collecting data</text></svg>"#);
        return svg;
    }
    let (lo, hi) = finite().fold((f64::MAX, f64::MIN), |(lo, hi), p| {
        (lo.min(p.1), hi.max(p.1))
    });
    let ticks = value_ticks(lo, hi);
    let (lo, hi) = (ticks[0], ticks[ticks.len() - 1]);
    let y = |v: f64| BOTTOM - (v - lo) / (hi - lo) * (BOTTOM - TOP);
    let (factor, prefix) = si_prefix(lo.abs().max(hi.abs()), c.unit);
    let decimals = decimals(ticks[1] - ticks[0], factor);
    for v in &ticks {
        let _ = write!(
            svg,
            r#"<line x1="{LEFT}" y1="{0:.1}" x2="{RIGHT}" y2="{0:.1}" class="grid"/><text x="{1}" y="{2:.1}" text-anchor="end" class="label">{3:.4$} {prefix}{5}</text>"#,
            y(*v),
            LEFT - 4.0,
            y(*v) + 4.0,
            v * factor,
            decimals,
            c.unit
        );
    }
    // One polyline per stretch without gaps.
    let mut line: Vec<String> = Vec::new();
    let mut last_t = None;
    for &(t, v) in &inside {
        let broken = last_t.is_some_and(|l| t <= l || t - l > 2 * c.step.max(1));
        if !v.is_finite() || broken {
            polyline(&mut svg, &mut line);
        }
        if v.is_finite() {
            line.push(format!("{:.1},{:.1}", x(t), y(v)));
        }
        last_t = Some(t);
    }
    polyline(&mut svg, &mut line);
    if let Some(&(t, v)) = finite().next_back() {
        let _ = write!(
            svg,
            r#"<circle cx="{:.1}" cy="{:.1}" r="2.5" class="dot"/>"#,
            x(t),
            y(v)
        );
    }
    svg.push_str("</svg>");
    svg
}

fn polyline(svg: &mut String, points: &mut Vec<String>) {
    if points.len() > 1 {
        let _ = write!(
            svg,
            r#"<polyline points="{}" class="line"/>"#,
            points.join(" ")
        );
    }
    points.clear();
}

/// Ticks at round times (whole minutes, hours), labelled HH:MM in UTC, with the axis's name.
fn time_axis(svg: &mut String, t0: i64, t1: i64, x: &dyn Fn(i64) -> f64) {
    const STEPS: [i64; 9] = [60, 300, 600, 900, 1800, 3600, 7200, 10800, 21600];
    let step = STEPS
        .into_iter()
        .find(|s| (t1 - t0) / s <= 6)
        .unwrap_or(86400);
    let mut t = t0.div_euclid(step) * step + step;
    while t <= t1 {
        let day = t.rem_euclid(86400);
        let _ = write!(
            svg,
            r#"<line x1="{0:.1}" y1="{TOP}" x2="{0:.1}" y2="{BOTTOM}" class="grid"/><text x="{0:.1}" y="{1}" text-anchor="middle" class="label">{2:02}:{3:02}</text>"#,
            x(t),
            BOTTOM + 13.0,
            day / 3600,
            day % 3600 / 60
        );
        t += step;
    }
    let _ = write!(
        svg,
        r#"<line x1="{LEFT}" y1="{BOTTOM}" x2="{RIGHT}" y2="{BOTTOM}" class="axis"/><text x="{RIGHT}" y="{}" text-anchor="end" class="label">time (UTC)</text>"#,
        H - 3.0
    );
}

/// Round values covering lo..hi, at a step of 1, 2 or 5 times a power of ten, at least two.
fn value_ticks(lo: f64, hi: f64) -> Vec<f64> {
    // A flat line gets a band around it: a tenth of its size, or a nanosecond at zero.
    let flat = hi - lo <= hi.abs().max(lo.abs()) * 1e-9;
    let pad = (hi.abs() * 0.05).max(5e-10);
    let (lo, hi) = if flat { (lo - pad, hi + pad) } else { (lo, hi) };
    let raw = (hi - lo) / 4.0;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * magnitude);
    let first = (lo / step).floor();
    let count = ((hi / step).ceil() - first).clamp(1.0, 10.0) as usize;
    // + 0.0 turns -0 into 0, which prints without a sign.
    (0..=count)
        .map(|i| (first + i as f64) * step + 0.0)
        .collect()
}

/// Decimals that tell ticks `step` apart once multiplied by `factor`.
fn decimals(step: f64, factor: f64) -> usize {
    (-(step * factor).log10().floor()).clamp(0.0, 6.0) as usize
}

/// A value with an SI prefix: 0.000012 s is "12 µs".
pub fn scaled(v: f64, unit: &str) -> String {
    let (factor, prefix) = si_prefix(v.abs(), unit);
    format!("{:.3} {prefix}{unit}", v * factor)
}

/// The factor and prefix that show a magnitude of seconds in s, ms, µs or ns.
fn si_prefix(magnitude: f64, unit: &str) -> (f64, &'static str) {
    match magnitude {
        _ if unit != "s" => (1.0, ""),
        a if a >= 1.0 || a == 0.0 => (1.0, ""),
        a if a >= 1e-3 => (1e3, "m"),
        a if a >= 1e-6 => (1e6, "µ"),
        _ => (1e9, "n"),
    }
}

/// Satellites by azimuth and elevation: the horizon is the outer ring, the zenith the centre;
/// filled circles are used in the fix.
pub fn sky_plot(sats: &[SatelliteView]) -> String {
    let (c, r) = (110.0, 100.0);
    let mut svg = format!(
        r#"<svg id="sky" viewBox="0 0 220 220" role="img" aria-label="sky plot"><circle cx="{c}" cy="{c}" r="{r}" class="ring"/><circle cx="{c}" cy="{c}" r="{}" class="ring"/><circle cx="{c}" cy="{c}" r="{}" class="ring"/><text x="{c}" y="8" text-anchor="middle" class="label">N</text>"#,
        r * 2.0 / 3.0,
        r / 3.0
    );
    for s in sats {
        let (Some(el), Some(az)) = (s.elevation, s.azimuth) else {
            continue;
        };
        let dist = r * (90.0 - f64::from(el.clamp(0, 90))) / 90.0;
        let a = f64::from(az).to_radians();
        let (x, y) = (c + dist * a.sin(), c - dist * a.cos());
        let class = if s.used { "sat used" } else { "sat" };
        let _ = write!(
            svg,
            r#"<circle cx="{x:.1}" cy="{y:.1}" r="6" class="{class}"><title>{} {}</title></circle><text x="{:.1}" y="{:.1}" class="small">{}</text>"#,
            s.constellation,
            s.prn,
            x + 7.0,
            y + 3.0,
            s.prn
        );
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chart<'a>(points: &'a [(i64, f64)], bands: &'a [(i64, i64, &'static str)]) -> String {
        line_chart(&Chart {
            id: "c",
            title: "offset",
            unit: "s",
            points,
            window: (0, 3600),
            step: 10,
            bands,
        })
    }

    #[test]
    fn charts_have_a_utc_time_axis_a_value_grid_and_the_latest_value() {
        let svg = chart(&[(600, 1e-6), (610, 3e-6), (620, f64::NAN)], &[]);
        // Ten-minute ticks across the hour, labelled in UTC.
        for label in ["00:10", "00:30", "01:00", "time (UTC)"] {
            assert!(
                svg.contains(&format!(">{label}<")),
                "{label} missing: {svg}"
            );
        }
        // Round values, with a common unit prefix, from the lowest to the highest point.
        for label in ["1 µs", "2 µs", "3 µs"] {
            assert!(
                svg.contains(&format!(">{label}<")),
                "{label} missing: {svg}"
            );
        }
        assert!(svg.contains(r#"latest <tspan class="latest">3.000 µs</tspan>"#));
        assert!(
            svg.contains(r#"<polyline points="151.7,160.0 153.1,24.0""#),
            "{svg}"
        );
        assert!(chart(&[], &[]).contains("collecting data"));
        assert_eq!(scaled(0.0123, "s"), "12.300 ms");
    }

    #[test]
    fn gaps_and_steps_back_break_the_line_and_old_points_are_left_out() {
        let points = [
            (-5, 9.0),
            (600, 1.0),
            (610, 2.0),
            (900, 1.0),
            (910, 2.0),
            (905, 1.0),
        ];
        let svg = chart(&points, &[]);
        assert_eq!(svg.matches("<polyline").count(), 2, "{svg}");
        assert!(
            !svg.contains(">9"),
            "a point before the window scaled the chart: {svg}"
        );
    }

    #[test]
    fn bands_are_shaded_within_the_window() {
        let svg = chart(
            &[(0, 0.0), (3600, 0.0)],
            &[(-100, 360, "holdover"), (1800, 1800, "alarm")],
        );
        assert!(
            svg.contains(
                r#"<rect x="64.0" y="24" width="52.6" height="136" class="band holdover">"#
            ),
            "{svg}"
        );
        assert!(
            !svg.contains("band alarm"),
            "an empty band was drawn: {svg}"
        );
    }

    #[test]
    fn flat_and_extreme_values_still_give_finite_labels() {
        for points in [
            [(0, 0.0), (10, 0.0)],
            [(0, 12.5), (10, 12.5)],
            [(0, -1e300), (10, 1e300)],
            [(0, f64::MIN_POSITIVE), (10, 0.0)],
        ] {
            let svg = chart(&points, &[]);
            assert!(
                !svg.contains("NaN") && !svg.contains("inf"),
                "{points:?}: {svg}"
            );
            assert!(svg.contains("<polyline"), "{points:?}: {svg}");
        }
    }

    #[test]
    fn sky_plot_places_zenith_at_the_centre() {
        let sat = SatelliteView {
            constellation: "GPS",
            prn: 7,
            elevation: Some(90),
            azimuth: Some(0),
            snr: Some(40),
            used: true,
        };
        let svg = sky_plot(&[sat]);
        assert!(
            svg.contains(r#"cx="110.0" cy="110.0" r="6" class="sat used""#),
            "{svg}"
        );
    }
}
