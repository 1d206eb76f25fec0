//! A simulated local oscillator: the clock the discipline must correct, with a frequency error,
//! random-walk wander and a temperature cycle, and the kernel actuator's controls.

use super::rng::Rng;
use crate::clock::{Actuator, Adjustment};

/// The oscillator's behaviour.
#[derive(Clone, Debug, PartialEq)]
pub struct OscillatorParams {
    /// Initial fractional frequency error (positive: the clock runs fast).
    pub freq: f64,
    /// Random-walk wander: RMS frequency change over one hour (fractional).
    pub wander: f64,
    /// Amplitude of a daily temperature-driven frequency swing (fractional).
    pub temperature: f64,
    /// Initial clock error (local minus true), seconds.
    pub offset: f64,
}

#[derive(Clone, Debug)]
pub struct Oscillator {
    params: OscillatorParams,
    /// Local minus true time, seconds.
    offset: f64,
    /// Frequency error without the temperature term.
    freq: f64,
    /// The kernel actuator's frequency correction.
    applied: f64,
    /// True seconds since start.
    elapsed: f64,
    rng: Rng,
}

impl Oscillator {
    pub fn new(params: OscillatorParams, seed: u64) -> Self {
        Oscillator {
            offset: params.offset,
            freq: params.freq,
            applied: 0.0,
            elapsed: 0.0,
            rng: Rng::new(seed),
            params,
        }
    }

    /// Local minus true time now, seconds.
    pub fn offset(&self) -> f64 {
        self.offset
    }

    /// The frequency error now, including the temperature term but not the correction.
    pub fn freq(&self) -> f64 {
        let day = std::f64::consts::TAU * self.elapsed / 86_400.0;
        self.freq + self.params.temperature * day.sin()
    }

    /// Advances true time by `dt` seconds.
    pub fn advance(&mut self, dt: f64) {
        self.offset += (self.freq() + self.applied) * dt;
        self.freq += self.rng.normal(self.params.wander * (dt / 3600.0).sqrt());
        self.elapsed += dt;
    }
}

impl Actuator for Oscillator {
    fn apply(&mut self, adjustment: Adjustment) -> std::io::Result<()> {
        match adjustment {
            Adjustment::Step(s) => self.offset += s,
            Adjustment::Frequency(f) => self.applied = f,
            Adjustment::Status { .. } => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drifts_at_its_frequency_and_obeys_the_actuator() {
        let params = OscillatorParams {
            freq: 10e-6,
            wander: 0.0,
            temperature: 0.0,
            offset: 0.5,
        };
        let mut o = Oscillator::new(params, 1);
        o.advance(100.0);
        assert!((o.offset() - (0.5 + 1e-3)).abs() < 1e-12);
        o.apply(Adjustment::Step(-0.501)).unwrap();
        o.apply(Adjustment::Frequency(-10e-6)).unwrap();
        o.advance(100.0);
        assert!(o.offset().abs() < 1e-12);
    }
}
