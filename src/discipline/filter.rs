//! Each source's recent samples: its filtered offset, its jitter, and which samples are outliers.
//!
//! Offsets drift with the local clock's frequency error (100 ppm is 1.6 ms in 16 s), so the
//! samples are compared as residuals against the loop's prediction (`ClockModel::phase_at`),
//! not as raw offsets. The median of the residuals is robust to the odd bad pulse (a PPS
//! median filter, as chrony and ntpd use for reference clocks); for an NTP upstream the
//! sample with the lowest delay already passed the client's clock filter.

use std::collections::VecDeque;

use super::kalman::ClockModel;
use crate::clock::change::ClockChange;
use crate::refclock::Sample;
use crate::time::Realtime;

/// Samples kept per source.
const KEPT: usize = 16;
/// A sample further from the median than this many sigmas is an outlier.
const OUTLIER_SIGMAS: f64 = 5.0;

#[derive(Debug, Default)]
pub struct SampleFilter {
    samples: VecDeque<Sample>,
    /// Samples refused as outliers since start.
    pub outliers: u64,
}

/// What the filter makes of a source's samples at one instant.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Filtered {
    /// Median residual: the source's offset from the loop's estimate, seconds.
    pub residual: f64,
    /// RMS deviation of the residuals from their median, seconds.
    pub jitter: f64,
    /// The newest sample.
    pub last: Sample,
    /// Samples kept.
    pub count: usize,
}

impl Filtered {
    /// Root distance: the bound on the error of `residual`, seconds, as of the newest sample.
    pub fn distance(&self) -> f64 {
        self.last.error + self.jitter + self.last.root_delay / 2.0
    }
}

impl SampleFilter {
    /// Adds a sample; returns whether it is consistent with the recent ones (not an outlier).
    /// A change of kind (PPS lost, NMEA only) starts the filter afresh.
    pub fn add(&mut self, sample: Sample, model: Option<&ClockModel>) -> bool {
        if self.samples.back().is_some_and(|s| s.refid != sample.refid) {
            self.samples.clear();
        }
        let consistent = match self.filtered(model) {
            Some(f) if self.samples.len() >= 4 => {
                let bound = (OUTLIER_SIGMAS * f.jitter).max(3.0 * sample.error);
                (residual(&sample, model) - f.residual).abs() <= bound
            }
            _ => true,
        };
        if !consistent {
            self.outliers += 1;
        }
        // Outliers are kept: if they persist they move the median, and the selection and
        // the jump guard decide what that means.
        self.samples.push_back(sample);
        if self.samples.len() > KEPT {
            self.samples.pop_front();
        }
        consistent
    }

    pub fn last(&self) -> Option<&Sample> {
        self.samples.back()
    }

    /// Whether the newest sample is younger than `max_age` seconds.
    pub fn is_fresh(&self, now: Realtime, max_age: f64) -> bool {
        self.samples
            .back()
            .is_some_and(|last| now.seconds_since(last.local).abs() < max_age)
    }

    /// Median residual and jitter of the kept samples.
    pub fn filtered(&self, model: Option<&ClockModel>) -> Option<Filtered> {
        let last = *self.samples.back()?;
        let mut r: Vec<f64> = self.samples.iter().map(|s| residual(s, model)).collect();
        r.sort_by(f64::total_cmp);
        let median = r[r.len() / 2];
        let jitter = (r.iter().map(|x| (x - median).powi(2)).sum::<f64>() / r.len() as f64).sqrt();
        Some(Filtered {
            residual: median,
            jitter,
            last,
            count: r.len(),
        })
    }

    /// A leap second passed at local time `at`: the references of earlier samples move by
    /// `step` seconds (-1 for an inserted second), as if they had been taken after it.
    pub fn leapt(&mut self, at: Realtime, step: f64) {
        for s in self.samples.iter_mut().filter(|s| s.local < at) {
            s.reference = s.reference.add_secs_f64(step);
        }
    }

    /// Starts afresh (after a followed jump: the kept samples tell of the time before it).
    pub fn clear(&mut self) {
        self.samples.clear();
    }

    /// The clock was changed: a step moves the kept samples' local times; from a frequency
    /// change on the clock runs faster, so the samples are restated as the loop now sees them
    /// and their residuals stay put.
    pub fn clock_changed(&mut self, change: &ClockChange) {
        for s in &mut self.samples {
            s.local = change.restate(s.local);
            s.reference = s
                .reference
                .add_secs_f64(change.frequency * change.at.seconds_since(s.local));
        }
    }
}

/// The sample's offset minus what the loop predicts for its instant.
fn residual(sample: &Sample, model: Option<&ClockModel>) -> f64 {
    sample.offset() - model.map_or(0.0, |m| m.phase_at(sample.local))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pps(t: i64, offset: f64) -> Sample {
        let local = Realtime::from_timespec(t, 0);
        Sample::new(local, local.add_secs_f64(offset), 1e-6, *b"PPS\0")
    }

    #[test]
    fn median_and_jitter_ignore_a_bad_pulse_and_flag_it() {
        let mut f = SampleFilter::default();
        for (t, off) in [1e-6, -1e-6, 0.0, 2e-6, -2e-6, 1e-6]
            .into_iter()
            .enumerate()
        {
            assert!(f.add(pps(t as i64, off), None));
        }
        assert!(!f.add(pps(6, 0.3), None));
        assert_eq!(f.outliers, 1);
        let got = f.filtered(None).unwrap();
        assert_eq!(got.residual, 1e-6);
        assert!(got.jitter < 0.2, "{}", got.jitter);
    }

    #[test]
    fn residuals_follow_the_model_frequency() {
        let model = ClockModel::new(Realtime::from_timespec(0, 0), 0.0, 1e-12, Some(1e-4), 0.0);
        let mut f = SampleFilter::default();
        for t in 0..16 {
            // The raw offsets drift by 100 ppm; against the model they are flat.
            assert!(f.add(pps(t, 1e-4 * t as f64 + 5e-6), Some(&model)));
        }
        let got = f.filtered(Some(&model)).unwrap();
        assert!((got.residual - 5e-6).abs() < 1e-9);
        assert!(got.jitter < 1e-9);
    }
}
