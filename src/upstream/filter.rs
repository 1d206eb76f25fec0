//! ntpd's clock filter (RFC 5905 section 10): the last eight measurements of one server, of
//! which the one with the smallest round-trip delay is trusted most, since queueing delay is
//! what spoils an offset and it only ever adds.

use std::collections::VecDeque;

use crate::clock::change::ClockChange;
use crate::time::Realtime;

/// Measurements kept (RFC 5905's NSTAGE).
pub const STAGES: usize = 8;
use crate::clock::PHI;

/// One exchange with the server.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Measurement {
    /// Server minus local clock, seconds.
    pub offset: f64,
    /// Round-trip delay, seconds.
    pub delay: f64,
    /// Error bound from precision and frequency error at the time, seconds.
    pub dispersion: f64,
    /// Local time the reply arrived (T4).
    pub at: Realtime,
}

impl Measurement {
    /// The dispersion grown by `PHI` since the measurement.
    pub fn dispersion_at(&self, now: Realtime) -> f64 {
        self.dispersion + PHI * now.seconds_since(self.at).max(0.0)
    }
}

/// The filter's choice and how much the kept offsets scatter around it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Best {
    pub measurement: Measurement,
    /// RMS of the other offsets' differences from the chosen one, seconds.
    pub jitter: f64,
}

#[derive(Clone, Debug, Default)]
pub struct ClockFilter {
    stages: VecDeque<Measurement>,
}

impl ClockFilter {
    /// Adds a measurement, forgetting the oldest beyond `STAGES`.
    pub fn add(&mut self, m: Measurement) {
        if self.stages.len() == STAGES {
            self.stages.pop_front();
        }
        self.stages.push_back(m);
    }

    pub fn clear(&mut self) {
        self.stages.clear();
    }

    /// The local clock was stepped: restate the kept measurements as the changed clock reads
    /// them (server minus local loses the step).
    pub fn clock_changed(&mut self, change: &ClockChange) {
        for m in &mut self.stages {
            m.at = change.restate(m.at);
            m.offset -= change.step;
        }
    }

    /// The measurement with the smallest delay (the newest on a tie), and the jitter.
    pub fn best(&self) -> Option<Best> {
        let best = *self
            .stages
            .iter()
            .rev()
            .min_by(|a, b| a.delay.total_cmp(&b.delay))?;
        let others = self.stages.len().saturating_sub(1);
        let sum: f64 = self
            .stages
            .iter()
            .map(|m| (m.offset - best.offset).powi(2))
            .sum();
        let jitter = match others {
            0 => 0.0,
            n => (sum / n as f64).sqrt(),
        };
        Some(Best {
            measurement: best,
            jitter,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(offset: f64, delay: f64, at: i64) -> Measurement {
        Measurement {
            offset,
            delay,
            dispersion: 0.0,
            at: Realtime::from_timespec(at, 0),
        }
    }

    #[test]
    fn picks_the_smallest_delay_and_measures_jitter_around_it() {
        let mut f = ClockFilter::default();
        assert_eq!(f.best(), None);
        f.add(m(0.003, 0.030, 1));
        f.add(m(0.001, 0.010, 2));
        f.add(m(-0.001, 0.020, 3));
        let best = f.best().unwrap();
        assert_eq!(best.measurement, m(0.001, 0.010, 2));
        // Differences 0.002 and -0.002: RMS over the two others is 0.002.
        assert!((best.jitter - 0.002).abs() < 1e-12, "{}", best.jitter);
    }

    #[test]
    fn keeps_eight_and_forgets_the_oldest() {
        let mut f = ClockFilter::default();
        f.add(m(0.5, 0.001, 0));
        for i in 1..=STAGES as i64 {
            f.add(m(0.0, 0.010, i));
        }
        let best = f.best().unwrap();
        // The low-delay first one is gone; of equal delays the newest wins.
        assert_eq!(best.measurement.at, Realtime::from_timespec(8, 0));
        assert_eq!(best.jitter, 0.0);
    }

    #[test]
    fn dispersion_grows_with_age() {
        let x = Measurement {
            dispersion: 1e-3,
            ..m(0.0, 0.0, 0)
        };
        let later = Realtime::from_timespec(1000, 0);
        assert!((x.dispersion_at(later) - (1e-3 + 1000.0 * PHI)).abs() < 1e-15);
        assert_eq!(x.dispersion_at(Realtime::from_timespec(-5, 0)), 1e-3);
    }
}
