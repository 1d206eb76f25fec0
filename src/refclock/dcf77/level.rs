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
    /// A pulse, and its bit: -1 surely 0 (100 ms), +1 surely 1 (200 ms), between as unsure.
    Present(f32),
    /// No pulse: the minute mark, or a pulse lost.
    Absent,
    /// Noise: the second tells nothing.
    Unclear,
}

impl Observation {
    /// The bit, softly: 0 when there is none.
    pub fn soft(self) -> f32 {
        match self {
            Observation::Present(bit) => bit,
            _ => 0.0,
        }
    }
}

/// Bins from a second's marker that must be complete before it can be read.
pub const READ_BINS: i64 = 95;

/// Reads the second whose marker is bin `marker` (all its bins must be complete): the first
/// 90 ms must be active for a pulse, 110-190 ms tell the bit, and 300-950 ms must be quiet
/// for the second to count at all.
pub fn observe(level: &Level, marker: i64) -> Observation {
    let window = |from: i64, to: i64| level.share(marker + from, marker + to);
    let (Some(pulse), Some(bit), Some(quiet)) =
        (window(0, 9), window(11, 19), window(30, READ_BINS))
    else {
        return Observation::Unclear;
    };
    if quiet > 0.25 {
        Observation::Unclear
    } else if pulse >= 0.5 {
        Observation::Present(((bit - 0.5) * 4.0).clamp(-1.0, 1.0))
    } else if pulse <= 0.2 {
        Observation::Absent
    } else {
        Observation::Unclear
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The level of `pulses` (start, width) from time 0, through `until`.
    fn level(pulses: &[(f64, f64)], until: f64) -> Level {
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
    fn a_second_reads_as_its_pulse() {
        let l = level(&[(1.0, 0.1), (2.0, 0.2), (4.0, 0.1)], 5.5);
        assert_eq!(observe(&l, 100), Observation::Present(-1.0));
        assert_eq!(observe(&l, 200), Observation::Present(1.0));
        assert_eq!(observe(&l, 300), Observation::Absent);
        // Not yet complete.
        assert_eq!(observe(&l, 500), Observation::Unclear);
        assert!((l.share(100, 110).unwrap() - 1.0).abs() < 1e-4);
    }

    #[test]
    fn noise_in_the_quiet_part_makes_a_second_unclear_and_glitches_do_not() {
        let mut noisy: Vec<(f64, f64)> = vec![(1.0, 0.1)];
        noisy.extend((0..12).map(|i| (1.3 + 0.05 * f64::from(i), 0.03)));
        noisy.push((2.0, 0.1));
        noisy.push((2.5, 0.02));
        let l = level(&noisy, 3.5);
        assert_eq!(observe(&l, 100), Observation::Unclear);
        assert_eq!(observe(&l, 200), Observation::Present(-1.0));
    }

    #[test]
    fn bins_long_gone_are_not_read() {
        let l = level(&[(1.0, 0.1)], 30.0);
        assert_eq!(l.share(100, 110), None);
        assert_eq!(observe(&l, 100), Observation::Unclear);
    }
}
