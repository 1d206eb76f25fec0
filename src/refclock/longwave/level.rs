//! The line's level in 10 ms bins, the last few seconds of it, and what one second of it shows
//! once its marker is known. Bins on a fixed grid of stream time turn an edge stream of any
//! rate into a fixed amount of work per second, and let glitches count for only as long as
//! they last.

/// Seconds per bin.
pub const BIN: f64 = 0.01;
pub const BINS_PER_SECOND: i64 = 100;
/// Bins held: a little over five seconds.
const RING: usize = 512;

#[derive(Clone, Debug)]
pub struct Level {
    /// Active time in each bin, seconds.
    bins: [f32; RING],
    /// The bin being filled; every earlier one held is complete.
    current: i64,
    /// When the level began to be known.
    start: f64,
    filled_to: f64,
    active: bool,
}

impl Level {
    /// The level from stream time `t` on.
    pub fn new(t: f64, active: bool) -> Self {
        Level {
            bins: [0.0; RING],
            current: (t / BIN).floor() as i64,
            start: t,
            filled_to: t,
            active,
        }
    }

    pub fn start(&self) -> f64 {
        self.start
    }

    pub fn filled_to(&self) -> f64 {
        self.filled_to
    }

    pub fn active(&self) -> bool {
        self.active
    }

    /// Fills the current level towards `t`: returns the index of the bin it completed, or
    /// `None` once `t` lies in the current bin. Call until `None`, then `set` the new level.
    pub fn advance(&mut self, t: f64) -> Option<i64> {
        let end = (self.current + 1) as f64 * BIN;
        if t < end {
            self.fill(t);
            return None;
        }
        self.fill(end);
        self.current += 1;
        self.bins[slot(self.current)] = 0.0;
        Some(self.current - 1)
    }

    fn fill(&mut self, to: f64) {
        if self.active {
            self.bins[slot(self.current)] += (to - self.filled_to).max(0.0) as f32;
        }
        self.filled_to = self.filled_to.max(to);
    }

    pub fn set(&mut self, active: bool) {
        self.active = active;
    }

    /// The active share of bins `from..to`, when they are complete and still held.
    pub fn share(&self, from: i64, to: i64) -> Option<f32> {
        let held = from > self.current - RING as i64 && to <= self.current && from < to;
        held.then(|| {
            let active: f32 = (from..to).map(|k| self.bins[slot(k)]).sum();
            active / ((to - from) as f64 * BIN) as f32
        })
    }
}

fn slot(bin: i64) -> usize {
    bin.rem_euclid(RING as i64) as usize
}

/// What one second shows, seen from its marker.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Observation {
    /// A pulse, and its bits: -1 surely 0, +1 surely 1, between as unsure (the second bit is
    /// MSF's B bit, 0 elsewhere).
    Present([f32; 2]),
    /// The station's marker pulse (MSF's 500 ms, WWVB's 800 ms).
    Marker,
    /// No pulse: DCF77's minute mark, or a pulse lost.
    Absent,
    /// Noise: the second tells nothing.
    Unclear,
}

impl Observation {
    /// The bits, softly: 0 when there are none.
    pub fn soft(self) -> [f32; 2] {
        match self {
            Observation::Present(bits) => bits,
            _ => [0.0; 2],
        }
    }

    /// A pulse began at the marker: the marker is where the count puts it.
    pub fn pulse(self) -> bool {
        matches!(self, Observation::Present(_) | Observation::Marker)
    }
}

/// Bins from a second's marker that must be complete before it can be read.
pub const READ_BINS: i64 = 95;

/// A bit, softly, from the active share of the window that tells it.
pub fn soft_bit(share: f32) -> f32 {
    ((share - 0.5) * 4.0).clamp(-1.0, 1.0)
}

/// A bit read from a pulse that fits one of its station's clean shapes closely: both of its
/// edges within some 50 ms of where they belong, the rest of the second quiet. Under jitter,
/// spikes and lost pulses such a pulse is what was sent; only a pulse of random width can
/// mimic the other shape that closely (about one random width in ten, where a loose reading
/// is fooled by one in five), so it counts half again as much as a loosely read bit: two such
/// readings of a bit that tells two candidates apart make the margin `decoder` asks for,
/// where it takes three loose ones.
pub const CLEAN_BIT: f32 = 1.5;

/// The active shares of windows `(from, to)` bins from `marker`, when all are complete.
pub fn windows<const N: usize>(
    level: &Level,
    marker: i64,
    windows: [(i64, i64); N],
) -> Option<[f32; N]> {
    let mut shares = [0.0; N];
    for (share, (from, to)) in shares.iter_mut().zip(windows) {
        *share = level.share(marker + from, marker + to)?;
    }
    Some(shares)
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// The level of `pulses` (start, width) from time 0, through `until`.
    pub fn level(pulses: &[(f64, f64)], until: f64) -> Level {
        let mut level = Level::new(0.0, false);
        for &(a, w) in pulses {
            for (t, active) in [(a, true), (a + w, false)] {
                while level.advance(t).is_some() {}
                level.set(active);
            }
        }
        while level.advance(until).is_some() {}
        level
    }

    #[test]
    fn bins_hold_the_active_share_and_old_ones_are_gone() {
        let l = level(&[(1.0, 0.1), (2.0, 0.05)], 5.5);
        assert!((l.share(100, 110).unwrap() - 1.0).abs() < 1e-4);
        assert!((l.share(200, 210).unwrap() - 0.5).abs() < 1e-4);
        assert_eq!(windows(&l, 500, [(0, 95)]), None, "not yet complete");
        let l = level(&[(1.0, 0.1)], 30.0);
        assert_eq!(l.share(100, 110), None);
    }
}
