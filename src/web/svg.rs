//! Inline SVG drawn by the server: line charts and the sky plot. No scripts, no external
//! assets: the Pi may have no internet.

use std::fmt::Write;

use super::status::SatelliteView;

const W: f64 = 600.0;
const H: f64 = 160.0;
const PAD: f64 = 40.0;

/// A line chart of (unix seconds, value) points, scaled to fit, with its range labelled.
pub fn line_chart(id: &str, title: &str, unit: &str, points: &[(i64, f64)]) -> String {
    let mut svg = format!(
        r#"<svg id="{id}" class="chart" viewBox="0 0 {W} {H}" role="img" aria-label="{title}"><text x="{PAD}" y="14" class="label">{title}</text>"#
    );
    let finite: Vec<(i64, f64)> = points.iter().copied().filter(|p| p.1.is_finite()).collect();
    if finite.len() < 2 {
        svg.push_str(r#"<text x="300" y="90" text-anchor="middle" class="label">collecting data</text></svg>"#);
        return svg;
    }
    let (t0, t1) = (finite[0].0, finite[finite.len() - 1].0);
    let (mut lo, mut hi) = finite.iter().fold((f64::MAX, f64::MIN), |(lo, hi), p| {
        (lo.min(p.1), hi.max(p.1))
    });
    if hi - lo < 1e-12 {
        lo -= 1e-9;
        hi += 1e-9;
    }
    let x = |t: i64| PAD + (t - t0) as f64 / ((t1 - t0).max(1) as f64) * (W - PAD - 10.0);
    let y = |v: f64| H - 20.0 - (v - lo) / (hi - lo) * (H - 45.0);
    let path: Vec<String> = finite
        .iter()
        .map(|&(t, v)| format!("{:.1},{:.1}", x(t), y(v)))
        .collect();
    let _ = write!(
        svg,
        r#"<line x1="{PAD}" y1="{:.1}" x2="{:.1}" y2="{:.1}" class="axis"/><polyline points="{}" class="line"/><text x="2" y="{:.1}" class="label">{}</text><text x="2" y="{:.1}" class="label">{}</text></svg>"#,
        H - 20.0,
        W - 10.0,
        H - 20.0,
        path.join(" "),
        y(hi) + 4.0,
        scaled(hi, unit),
        y(lo) + 4.0,
        scaled(lo, unit),
    );
    svg
}

/// A value with an SI prefix: 0.000012 s is "12 µs".
pub fn scaled(v: f64, unit: &str) -> String {
    let a = v.abs();
    let (factor, prefix) = match a {
        _ if unit != "s" => (1.0, ""),
        a if a >= 1.0 || a == 0.0 => (1.0, ""),
        a if a >= 1e-3 => (1e3, "m"),
        a if a >= 1e-6 => (1e6, "µ"),
        _ => (1e9, "n"),
    };
    format!("{:.3} {prefix}{unit}", v * factor)
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

    #[test]
    fn charts_scale_and_label() {
        let svg = line_chart("c", "Offset", "s", &[(0, 1e-6), (10, 3e-6), (20, f64::NAN)]);
        assert!(
            svg.contains("<polyline points=\"40.0,140.0 590.0,25.0\""),
            "{svg}"
        );
        assert!(svg.contains("3.000 µs") && svg.contains("1.000 µs"));
        assert!(line_chart("c", "t", "s", &[]).contains("collecting data"));
        assert_eq!(scaled(0.0123, "s"), "12.300 ms");
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
