//! `pitime capture dcf77`: records a GPIO line's edges in the format `pitime replay dcf77`
//! reads, so a receiver's signal can travel with a bug report. Levels are as at the pin (the
//! replay's `--active-low` applies the source's setting); times are seconds since the start.

use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use gpiocdev::line::EdgeKind;

use crate::clock::system::monotonic_now;
use crate::config::Bias;
use crate::refclock::longwave::driver::request_line;
use crate::replay::format_dcf77_edges;

/// How often the stop flag is looked at.
const POLL: Duration = Duration::from_millis(200);

/// Writes the line's edges to `out` for `seconds` or until `stop`; returns them.
pub fn dcf77(
    chip: &Path,
    line: u32,
    bias: Bias,
    debounce: f64,
    seconds: f64,
    out: &mut impl Write,
    stop: &AtomicBool,
) -> Result<Vec<(f64, bool)>, String> {
    let request = request_line(chip, line, false, bias, debounce, "pitime-capture")
        .map_err(|e| format!("{}: line {line}: {e}", chip.display()))?;
    let start = monotonic_now();
    let end = start + (seconds * 1e9) as i64;
    writeln!(
        out,
        "# pitime capture dcf77: {} line {line}, bias {}, debounce {debounce} s\n\
         # <seconds since the start> <level at the pin: 1 high, 0 low>",
        chip.display(),
        bias.name(),
    )
    .map_err(|e| e.to_string())?;
    let mut edges = Vec::new();
    while !stop.load(Ordering::Relaxed) && monotonic_now() < end {
        if !request.wait_edge_event(POLL).map_err(|e| e.to_string())? {
            continue;
        }
        let e = request.read_edge_event().map_err(|e| e.to_string())?;
        let edge = (
            (e.timestamp_ns as i64 - start) as f64 / 1e9,
            e.kind == EdgeKind::Rising,
        );
        // Written as it comes, so that a capture cut short still holds what it saw.
        out.write_all(format_dcf77_edges(&[edge]).as_bytes())
            .and_then(|()| out.flush())
            .map_err(|e| e.to_string())?;
        edges.push(edge);
    }
    Ok(edges)
}
