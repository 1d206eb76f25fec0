//! Where in the second the markers fall: each second's bins are folded into one averaged
//! second, and the phase is the bin where the part every pulse has (DCF77's first 100 ms, 0
//! and 1 bits alike) stands out most from the part of the second that is always quiet. Noise, spread evenly, averages
//! out; a missing or misshapen pulse is one second among many.

use super::level::{Level, BINS_PER_SECOND};

const BINS: usize = BINS_PER_SECOND as usize;
/// Seconds averaged (after the first few, which are averaged evenly).
const SPAN: u32 = 16;

#[derive(Clone, Debug)]
pub struct PhaseHistogram {
    /// Average active share of each bin of the second.
    share: [f32; BINS],
    seconds: u32,
}

impl Default for PhaseHistogram {
    fn default() -> Self {
        PhaseHistogram {
            share: [0.0; BINS],
            seconds: 0,
        }
    }
}

impl PhaseHistogram {
    /// Folds in the second of grid bins `first..first + 100` (complete and held).
    pub fn fold(&mut self, level: &Level, first: i64) {
        self.seconds = self.seconds.saturating_add(1);
        let weight = 1.0 / self.seconds.min(SPAN) as f32;
        for (i, share) in self.share.iter_mut().enumerate() {
            let bin = first + i as i64;
            let now = level.share(bin, bin + 1).unwrap_or(0.5);
            *share += (now - *share) * weight;
        }
    }

    /// Seconds folded in.
    pub fn seconds(&self) -> u32 {
        self.seconds
    }

    /// The bin (of the grid second) where markers fall, and how clearly: the average share of
    /// the window every pulse fills (`pulse`, bins from the marker) less that of the window
    /// that is always quiet (`quiet`), 1 for a clean signal, near 0 for noise.
    pub fn best(&self, pulse: (usize, usize), quiet: (usize, usize)) -> (usize, f32) {
        let mut prefix = [0.0f32; 2 * BINS + 1];
        for i in 0..2 * BINS {
            prefix[i + 1] = prefix[i] + self.share[i % BINS];
        }
        let mean =
            |j: usize, (a, b): (usize, usize)| (prefix[j + b] - prefix[j + a]) / (b - a) as f32;
        (0..BINS)
            .map(|j| (j, mean(j, pulse) - mean(j, quiet)))
            .fold((0, f32::MIN), |best, c| if c.1 > best.1 { c } else { best })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_pulses_start_and_not_noise() {
        let mut level = Level::new(0.0, false);
        let mut phase = PhaseHistogram::default();
        for second in 0..20 {
            let start = f64::from(second) + 0.437;
            let width = if second % 3 == 0 { 0.2 } else { 0.1 };
            for (t, active) in [(start, true), (start + width, false)] {
                while let Some(bin) = level.advance(t) {
                    if (bin + 1) % BINS_PER_SECOND == 0 {
                        phase.fold(&level, bin + 1 - BINS_PER_SECOND);
                    }
                }
                level.set(active);
            }
        }
        let (bin, contrast) = phase.best((0, 10), (25, 95));
        assert!((43..=44).contains(&bin), "{bin}");
        assert!(contrast > 0.9, "{contrast}");
        assert_eq!(PhaseHistogram::default().best((0, 10), (25, 95)).1, 0.0);
    }
}
