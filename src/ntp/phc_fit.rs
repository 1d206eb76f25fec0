//! A network interface's own clock (its PTP hardware clock, PHC) as the system clock sees it:
//! from readings of both clocks taken together, a fit of their offset and frequency over the
//! last samples, which turns a hardware timestamp into system time, as chrony's hwclock.c does.
//! Each poll's readings become one sample, the one read fastest (the shortest delay between the
//! two system clock readings around it bounds its error); a least-squares line over a window of
//! samples gives the offset and frequency; a sample far from the line is rejected, and several
//! in a row mean a clock was stepped: the fit starts again. Pure: readings come in as numbers.

use std::collections::VecDeque;

use crate::clock::change::ClockChange;

/// One reading: the system clock before and after, and the hardware clock between them, in
/// nanoseconds (a precise cross-timestamp has `sys_before == sys_after`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reading {
    pub sys_before: i64,
    pub phc: i64,
    pub sys_after: i64,
}

/// Samples in the fit, and how many it needs before it converts anything.
const WINDOW: usize = 16;
pub const MIN_SAMPLES: usize = 4;
/// The largest frequency difference believed between the two clocks: each is within a few
/// hundred ppm of true, and the kernel slews the system clock by at most 500 ppm.
const MAX_FREQUENCY: f64 = 2e-3;
/// Consecutive samples off the fit that mean a clock was stepped rather than a bad reading.
const RESET_AFTER: usize = 3;
/// A reading slower than this is not worth a sample (the thread was descheduled).
const MAX_DELAY_NS: i128 = 1_000_000;
/// The floor of every error: the resolution of both clocks.
const RESOLUTION: f64 = 1e-9;
/// How far from the line, in robust standard deviations, a sample is an outlier.
const OUTLIER_SIGMAS: f64 = 5.0;
/// A new sample this close to the fit's prediction is never off it: readings across PCIe or
/// a PHY's bus jitter by about this much, and a young fit extrapolates no better.
const GATE_FLOOR: f64 = 1e-6;

#[derive(Clone, Copy, Debug, PartialEq)]
struct Sample {
    phc: i64,
    sys: i64,
    /// Half the delay of its reading, in seconds.
    err: f64,
}

/// The fit at one moment: what the server workers use to convert hardware timestamps.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Conversion {
    /// The newest sample's hardware time, and system minus hardware time there, from the fit.
    phc_ref: i64,
    offset_ref: i128,
    /// System seconds per hardware second, minus one.
    pub frequency: f64,
    /// The estimated error of a converted time, in seconds.
    pub error: f64,
}

impl Conversion {
    /// The system time, in nanoseconds, of hardware time `phc`; `None` if out of range.
    pub fn to_system(&self, phc: i64) -> Option<i64> {
        let elapsed = i128::from(phc) - i128::from(self.phc_ref);
        let drift = (elapsed as f64 * self.frequency).round() as i128;
        i64::try_from(i128::from(phc) + self.offset_ref + drift).ok()
    }
}

/// Why a poll's readings gave no sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rejected {
    NoReadings,
    /// The system clock went back during a reading: it was stepped.
    Stepped,
    /// Every reading took longer than `MAX_DELAY_NS`.
    TooSlow,
    /// Too far from the fit (an outlier, or one of the first of a step).
    OffTheFit,
    /// The clocks' rates differ by this many ppm, more than `MAX_FREQUENCY`: the fit started
    /// again (QEMU's e1000e clock runs 2.5 times as fast as the system's).
    Frequency(i64),
}

impl std::fmt::Display for Rejected {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str(match self {
            Rejected::NoReadings => "no readings",
            Rejected::Stepped => "the system clock went back during the reading",
            Rejected::TooSlow => "every reading took over 1 ms",
            Rejected::OffTheFit => "off the fit",
            Rejected::Frequency(ppm) => {
                return write!(
                f,
                "the clock runs {ppm} ppm from the system clock (more than {:.0}): fit restarted",
                MAX_FREQUENCY * 1e6
            )
            }
        })
    }
}

/// What the status shows of one clock's fit.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct FitState {
    pub samples: usize,
    /// The last fit's error (seconds), once there is a fit.
    pub error: Option<f64>,
    pub rejected: u64,
    pub resets: u64,
}

#[derive(Default)]
pub struct PhcFit {
    samples: VecDeque<Sample>,
    conversion: Option<Conversion>,
    /// Samples in a row that were off the fit.
    off: usize,
    rejected: u64,
    resets: u64,
}

impl PhcFit {
    /// The conversion, once there are enough samples; `None`: not ready, use kernel stamps.
    pub fn conversion(&self) -> Option<Conversion> {
        self.conversion
    }

    pub fn state(&self) -> FitState {
        FitState {
            samples: self.samples.len(),
            error: self.conversion.map(|c| c.error),
            rejected: self.rejected,
            resets: self.resets,
        }
    }

    /// Restates what the fit keeps after pitime changed the system clock (`clock::change`):
    /// each sample's system time as the changed clock would have read it, had its new frequency
    /// always applied (as chrony's hwclock.c does) and the step been made before; then refits.
    pub fn clock_changed(&mut self, change: &ClockChange) {
        let at = i128::from(change.at.as_nanos());
        let step = (change.step * 1e9).round() as i128;
        for s in &mut self.samples {
            let before = (at - i128::from(s.sys)).max(0) as f64;
            let sys = i128::from(s.sys) - (before * change.frequency).round() as i128 + step;
            s.sys = i64::try_from(sys).unwrap_or(s.sys);
        }
        // A fit restarted for its frequency says so at the next poll.
        let _ = self.refit();
    }

    /// Takes one poll's readings (taken back to back).
    pub fn add(&mut self, readings: &[Reading]) -> Result<(), Rejected> {
        let result = self.add_sample(readings);
        if result.is_err() {
            self.rejected += 1;
        }
        result
    }

    fn add_sample(&mut self, readings: &[Reading]) -> Result<(), Rejected> {
        let sample = best(readings)?;
        let goes_back = self
            .samples
            .back()
            .is_some_and(|last| sample.phc <= last.phc || sample.sys <= last.sys);
        if goes_back {
            self.reset();
        }
        if let Some(c) = self.conversion {
            let predicted = c.to_system(sample.phc).unwrap_or(i64::MAX);
            let miss = (i128::from(sample.sys) - i128::from(predicted)).abs() as f64 * 1e-9;
            if miss > GATE_FLOOR.max(OUTLIER_SIGMAS * c.error.max(sample.err)) {
                self.off += 1;
                if self.off < RESET_AFTER {
                    return Err(Rejected::OffTheFit);
                }
                self.reset();
            }
        }
        self.off = 0;
        if self.samples.len() == WINDOW {
            self.samples.pop_front();
        }
        self.samples.push_back(sample);
        self.refit()
    }

    fn reset(&mut self) {
        self.samples.clear();
        self.conversion = None;
        self.off = 0;
        self.resets += 1;
    }

    /// Fits the window, dropping outliers one at a time (at most a third of it).
    fn refit(&mut self) -> Result<(), Rejected> {
        self.conversion = None;
        let mut dropped = 0;
        loop {
            if self.samples.len() < MIN_SAMPLES {
                return Ok(());
            }
            let (conversion, residuals) = fit(&self.samples);
            let mut sorted: Vec<f64> = residuals.iter().map(|r| r.abs()).collect();
            sorted.sort_by(f64::total_cmp);
            let spread = 1.4826 * sorted[sorted.len() / 2];
            let worst = (0..residuals.len())
                .filter(|&i| {
                    let limit = OUTLIER_SIGMAS * spread.max(self.samples[i].err).max(RESOLUTION);
                    residuals[i].abs() > limit
                })
                .max_by(|&a, &b| residuals[a].abs().total_cmp(&residuals[b].abs()));
            match worst {
                Some(i) if dropped < self.samples.len() / 3 => {
                    self.samples.remove(i);
                    self.rejected += 1;
                    dropped += 1;
                }
                _ if conversion.frequency.abs() > MAX_FREQUENCY => {
                    // Not two clocks ticking together: start again from the newest sample.
                    let newest = self.samples.back().copied();
                    self.reset();
                    self.samples.extend(newest);
                    return Err(Rejected::Frequency((conversion.frequency * 1e6) as i64));
                }
                _ => {
                    self.conversion = Some(conversion);
                    return Ok(());
                }
            }
        }
    }
}

/// The sample of a poll: its fastest reading, the system time taken halfway.
fn best(readings: &[Reading]) -> Result<Sample, Rejected> {
    let delay = |r: &Reading| i128::from(r.sys_after) - i128::from(r.sys_before);
    if readings.iter().any(|r| delay(r) < 0) {
        return Err(Rejected::Stepped);
    }
    let r = readings
        .iter()
        .min_by_key(|r| delay(r))
        .ok_or(Rejected::NoReadings)?;
    let d = delay(r);
    if d > MAX_DELAY_NS {
        return Err(Rejected::TooSlow);
    }
    Ok(Sample {
        phc: r.phc,
        sys: (i128::from(r.sys_before) + d / 2) as i64,
        err: (d as f64 * 0.5e-9).max(RESOLUTION),
    })
}

/// A weighted least-squares line of (system - hardware) against hardware time, relative to the
/// newest sample so that every number in it is small; its residuals in seconds.
fn fit(samples: &VecDeque<Sample>) -> (Conversion, Vec<f64>) {
    let newest = samples[samples.len() - 1];
    let base = i128::from(newest.sys) - i128::from(newest.phc);
    let xy = |s: &Sample| {
        let x = (i128::from(s.phc) - i128::from(newest.phc)) as f64 * 1e-9;
        let y = (i128::from(s.sys) - i128::from(s.phc) - base) as f64 * 1e-9;
        (x, y, 1.0 / (s.err * s.err))
    };
    let (mut sw, mut sx, mut sy) = (0.0, 0.0, 0.0);
    for (x, y, w) in samples.iter().map(xy) {
        sw += w;
        sx += w * x;
        sy += w * y;
    }
    let (mx, my) = (sx / sw, sy / sw);
    let (mut sxx, mut sxy) = (0.0, 0.0);
    for (x, y, w) in samples.iter().map(xy) {
        sxx += w * (x - mx) * (x - mx);
        sxy += w * (x - mx) * (y - my);
    }
    let slope = if sxx > 0.0 { sxy / sxx } else { 0.0 };
    let intercept = my - slope * mx;
    let residuals: Vec<f64> = samples
        .iter()
        .map(xy)
        .map(|(x, y, _)| y - (intercept + slope * x))
        .collect();
    let n = residuals.len() as f64;
    let rms = (residuals.iter().map(|r| r * r).sum::<f64>() / (n - 2.0).max(1.0)).sqrt();
    let err = samples.iter().map(|s| s.err).fold(f64::INFINITY, f64::min);
    let conversion = Conversion {
        phc_ref: newest.phc,
        offset_ref: base + (intercept * 1e9).round() as i128,
        frequency: slope,
        error: rms.max(err).max(RESOLUTION),
    };
    (conversion, residuals)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::Realtime;
    use proptest::prelude::*;

    const SECOND: i64 = 1_000_000_000;
    /// A system time in 2026 and a hardware clock on TAI from its own epoch: far apart.
    const SYS0: i64 = 1_790_000_000 * SECOND;
    const PHC0: i64 = 37 * SECOND + 123_456_789;

    /// A poll at hardware time `phc`: the system clock runs `ppm` faster and `offset` ns ahead,
    /// read with `delay` ns around it.
    fn poll(phc: i64, ppm: f64, offset: i64, delay: i64) -> Reading {
        let elapsed = (phc - PHC0) as f64;
        let sys = SYS0 + offset + (elapsed * (1.0 + ppm * 1e-6)).round() as i64;
        Reading {
            sys_before: sys - delay / 2,
            phc,
            sys_after: sys - delay / 2 + delay,
        }
    }

    fn truth(phc: i64, ppm: f64, offset: i64) -> i64 {
        poll(phc, ppm, offset, 0).sys_before
    }

    #[test]
    fn not_ready_until_it_has_enough_samples() {
        let mut fit = PhcFit::default();
        for i in 0..MIN_SAMPLES as i64 {
            assert_eq!(fit.conversion(), None, "after {i} samples");
            fit.add(&[poll(PHC0 + i * SECOND, 0.0, 0, 100)]).unwrap();
        }
        assert!(fit.conversion().is_some());
        assert_eq!(fit.state().samples, MIN_SAMPLES);
    }

    #[test]
    fn a_clock_at_another_rate_is_never_fitted_and_says_so() {
        // QEMU's e1000e: its clock runs 2.5 times as fast as the system's.
        let mut fit = PhcFit::default();
        let results: Vec<_> = (0..12)
            .map(|i| fit.add(&[poll(PHC0 + i * SECOND, -600_000.0, 0, 100)]))
            .collect();
        assert_eq!(fit.conversion(), None);
        assert!(
            results.contains(&Err(Rejected::Frequency(-600_000))),
            "{results:?}"
        );
        assert_eq!(
            Rejected::Frequency(-600_000).to_string(),
            "the clock runs -600000 ppm from the system clock (more than 2000): fit restarted"
        );
    }

    #[test]
    fn follows_a_linear_drift_to_the_nanosecond() {
        let mut fit = PhcFit::default();
        for i in 0..20 {
            fit.add(&[poll(PHC0 + i * SECOND, 37.5, 5_000, 0)]).unwrap();
        }
        let c = fit.conversion().unwrap();
        assert!((c.frequency - 37.5e-6).abs() < 1e-9, "{c:?}");
        for phc in [PHC0 + 19 * SECOND + 500_000_000, PHC0 + 21 * SECOND] {
            let got = c.to_system(phc).unwrap();
            assert!((got - truth(phc, 37.5, 5_000)).abs() <= 2, "{got}");
        }
        assert_eq!(fit.state().samples, WINDOW);
    }

    #[test]
    fn keeps_the_fastest_reading_of_a_poll() {
        let mut fit = PhcFit::default();
        for i in 0..8 {
            let phc = PHC0 + i * SECOND;
            // A slow reading whose midpoint is 3 us off, and a fast one that is right.
            let mut slow = poll(phc, 0.0, 0, 20_000);
            slow.sys_after += 6_000;
            slow.sys_before += 6_000;
            fit.add(&[slow, poll(phc, 0.0, 0, 40), slow]).unwrap();
        }
        let c = fit.conversion().unwrap();
        let phc = PHC0 + 8 * SECOND;
        assert!((c.to_system(phc).unwrap() - truth(phc, 0.0, 0)).abs() <= 1);
        assert!(c.error <= 25e-9, "{c:?}");
    }

    #[test]
    fn an_outlier_is_rejected_and_a_step_restarts_the_fit() {
        let mut fit = PhcFit::default();
        for i in 0..10 {
            fit.add(&[poll(PHC0 + i * SECOND, 10.0, 0, 100)]).unwrap();
        }
        // One reading 50 us off (an interrupt between the clock reads): rejected.
        let mut bad = poll(PHC0 + 10 * SECOND, 10.0, 0, 100);
        bad.sys_before += 50_000;
        bad.sys_after += 50_000;
        assert_eq!(fit.add(&[bad]), Err(Rejected::OffTheFit));
        let phc = PHC0 + 11 * SECOND;
        let got = fit.conversion().unwrap().to_system(phc).unwrap();
        assert!((got - truth(phc, 10.0, 0)).abs() <= 2);
        fit.add(&[poll(phc, 10.0, 0, 100)]).unwrap();
        // The system clock stepped 1 ms: two samples rejected, then the fit starts over.
        for i in 12..15 {
            let r = fit.add(&[poll(PHC0 + i * SECOND, 10.0, 1_000_000, 100)]);
            assert_eq!(r.is_ok(), i == 14, "sample {i}: {r:?}");
        }
        assert_eq!(fit.conversion(), None);
        for i in 15..18 {
            fit.add(&[poll(PHC0 + i * SECOND, 10.0, 1_000_000, 100)])
                .unwrap();
        }
        let c = fit.conversion().unwrap();
        let phc = PHC0 + 18 * SECOND;
        assert!((c.to_system(phc).unwrap() - truth(phc, 10.0, 1_000_000)).abs() <= 2);
        assert_eq!(fit.state().resets, 1);
    }

    #[test]
    fn a_change_of_the_system_clock_announced_moves_the_fit_with_it() {
        let mut fit = PhcFit::default();
        for i in 0..8 {
            fit.add(&[poll(PHC0 + i * SECOND, 3.0, 0, 100)]).unwrap();
        }
        // A step of -250 ms and 2 ppm faster from the last sample on, as the discipline
        // announces them.
        let at = truth(PHC0 + 7 * SECOND, 3.0, 0);
        fit.clock_changed(&ClockChange {
            step: -0.25,
            frequency: 2e-6,
            at: Realtime::from_nanos(at),
        });
        let after = |phc: i64| {
            let elapsed = (phc - (PHC0 + 7 * SECOND)) as f64;
            at - 250_000_000 + (elapsed * (1.0 + 5e-6)).round() as i64
        };
        let phc = PHC0 + 8 * SECOND;
        let c = fit.conversion().unwrap();
        assert!((c.to_system(phc).unwrap() - after(phc)).abs() <= 3, "{c:?}");
        assert!((c.frequency - 5e-6).abs() < 1e-9, "{c:?}");
        // The next sample, on the changed clock, fits: nothing rejected, nothing restarted.
        let r = Reading {
            sys_before: after(phc) - 50,
            phc,
            sys_after: after(phc) + 50,
        };
        fit.add(&[r]).unwrap();
        assert_eq!((fit.state().rejected, fit.state().resets), (0, 0));
        assert_eq!(fit.state().samples, 9);
    }

    #[test]
    fn readings_across_a_step_or_too_slow_give_no_sample() {
        let mut fit = PhcFit::default();
        assert_eq!(fit.add(&[]), Err(Rejected::NoReadings));
        let mut back = poll(PHC0, 0.0, 0, 0);
        back.sys_after -= 1;
        assert_eq!(fit.add(&[back]), Err(Rejected::Stepped));
        assert_eq!(
            fit.add(&[poll(PHC0, 0.0, 0, 2_000_000)]),
            Err(Rejected::TooSlow)
        );
        assert_eq!(fit.state().rejected, 3);
    }

    #[test]
    fn extreme_timestamps_do_not_wrap() {
        let mut fit = PhcFit::default();
        for i in 0..MIN_SAMPLES as i64 {
            let r = Reading {
                sys_before: i64::MAX - 10 * SECOND + i * SECOND,
                phc: i64::MIN + i * SECOND,
                sys_after: i64::MAX - 10 * SECOND + i * SECOND,
            };
            fit.add(&[r]).unwrap();
        }
        let c = fit.conversion().unwrap();
        assert_eq!(
            c.to_system(i64::MIN + 3 * SECOND),
            Some(i64::MAX - 7 * SECOND)
        );
        assert_eq!(c.to_system(i64::MIN + 20 * SECOND), None);
    }

    proptest! {
        /// Whatever the drift and the reading noise, the conversion is right within a few
        /// times the noise (a bias common to every reading cannot be seen, hence its 200 ns).
        #[test]
        fn noisy_readings_convert_within_their_noise(
            ppm in -200.0f64..200.0,
            offset in -1_000_000_000i64..1_000_000_000,
            noise in proptest::collection::vec(-200i64..200, 16),
            delay in 0i64..1_000,
        ) {
            let mut fit = PhcFit::default();
            for (i, n) in noise.iter().enumerate() {
                let mut r = poll(PHC0 + i as i64 * SECOND, ppm, offset, delay);
                r.sys_before += n;
                r.sys_after += n;
                let _ = fit.add(&[r]);
            }
            let c = fit.conversion().expect("ready");
            let phc = PHC0 + 16 * SECOND;
            let miss = (c.to_system(phc).unwrap() - truth(phc, ppm, offset)).abs() as f64;
            prop_assert!(miss <= 600.0, "missed by {} ns: {:?}", miss, c);
            prop_assert!(c.error >= RESOLUTION && c.error < 1e-6, "{:?}", c);
            prop_assert!((c.frequency - ppm * 1e-6).abs() < 1e-7, "{:?}", c);
        }
    }
}
