//! The loop: a two-state Kalman filter estimating the local clock's phase and frequency error.
//!
//! Why a Kalman filter rather than ntpd's PLL/FLL: its gain follows from the measurement noise
//! (each source's jitter) and the oscillator's wander, so the time constant adapts by itself
//! (seconds while the frequency is unknown, minutes once it is learned from a low-jitter PPS),
//! and its covariance says at every instant how wrong the clock may be, which is exactly what
//! holdover needs to advertise. docs/benchmarks.md has the figures from `pitime simulate`.
//!
//! State at local time `epoch`: `phase` = reference minus local clock (seconds) and `freq` =
//! d(phase)/dt (dimensionless): the correction still to be applied.

use crate::time::Realtime;

/// Random-walk phase noise (s²/s): the oscillator's short-term white frequency noise.
const PHASE_NOISE: f64 = 1e-18;
/// Squared innovation, in units of its expected variance, beyond which the model's own
/// uncertainty is widened (a 5-sigma surprise).
const SURPRISE: f64 = 25.0;
/// Variance of the frequency before anything is known: a crystal is within ±100 ppm.
const UNKNOWN_FREQ_VAR: f64 = 100e-6 * 100e-6;

#[derive(Clone, Debug, PartialEq)]
pub struct ClockModel {
    pub epoch: Realtime,
    pub phase: f64,
    pub freq: f64,
    /// Covariance of (phase, freq).
    p: [[f64; 2]; 2],
    /// Random-walk frequency noise (1/s): how fast the frequency wanders.
    wander: f64,
}

impl ClockModel {
    /// Starts from a first measurement. `freq` is the drift file's value when known.
    pub fn new(epoch: Realtime, phase: f64, variance: f64, freq: Option<f64>, wander: f64) -> Self {
        let freq_var = match freq {
            // A remembered frequency is good to a few ppm (temperature since it was saved), or
            // wrong altogether (a card moved to another Pi): `update` widens it if need be.
            Some(_) => 10e-6 * 10e-6,
            None => UNKNOWN_FREQ_VAR,
        };
        ClockModel {
            epoch,
            phase,
            freq: freq.unwrap_or(0.0),
            p: [[variance, 0.0], [0.0, freq_var]],
            wander,
        }
    }

    /// The estimated phase at local time `at`.
    pub fn phase_at(&self, at: Realtime) -> f64 {
        self.phase + self.freq * at.seconds_since(self.epoch)
    }

    /// The served time at local time `at`: the local clock corrected by the estimated phase.
    pub fn served(&self, at: Realtime) -> Realtime {
        at.add_secs_f64(self.phase_at(at))
    }

    /// Standard deviation of the phase estimate at `at`, seconds.
    pub fn phase_sigma_at(&self, at: Realtime) -> f64 {
        self.predicted_cov(at.seconds_since(self.epoch).max(0.0))[0][0]
            .max(0.0)
            .sqrt()
    }

    pub fn freq_sigma(&self) -> f64 {
        self.p[1][1].max(0.0).sqrt()
    }

    fn predicted_cov(&self, dt: f64) -> [[f64; 2]; 2] {
        let p = &self.p;
        let q = self.wander;
        // P' = F P F' + Q with F = [[1, dt], [0, 1]], Q for random-walk phase and frequency.
        [
            [
                p[0][0]
                    + dt * (p[0][1] + p[1][0])
                    + dt * dt * p[1][1]
                    + PHASE_NOISE * dt
                    + q * dt.powi(3) / 3.0,
                p[0][1] + dt * p[1][1] + q * dt * dt / 2.0,
            ],
            [p[1][0] + dt * p[1][1] + q * dt * dt / 2.0, p[1][1] + q * dt],
        ]
    }

    /// Moves the estimate to local time `at` (never backwards: a late sample is applied at the
    /// current epoch, see `update`).
    pub fn predict(&mut self, at: Realtime) {
        let dt = at.seconds_since(self.epoch);
        if dt <= 0.0 {
            return;
        }
        self.p = self.predicted_cov(dt);
        self.phase += self.freq * dt;
        self.epoch = at;
    }

    /// The innovation of a measurement of the phase at `at`: measured minus predicted.
    pub fn innovation(&self, at: Realtime, measured: f64) -> f64 {
        measured - self.phase_at(at)
    }

    /// Takes a measurement of the phase at local time `at` with the given variance.
    pub fn update(&mut self, at: Realtime, measured: f64, variance: f64) {
        self.predict(at);
        let innovation = self.innovation(at, measured);
        let mut s = self.p[0][0] + variance;
        // A measurement far outside what the model expects (the sources' filters have already
        // dropped outliers) means the model is wrong, typically its frequency: widen its
        // uncertainty to match, so that it learns again rather than creep.
        let surprise = innovation * innovation / s;
        if surprise > SURPRISE {
            let widen = surprise / SURPRISE;
            self.p[0][0] *= widen;
            self.p[1][1] *= widen;
            self.p[0][1] *= widen;
            self.p[1][0] *= widen;
            s = self.p[0][0] + variance;
        }
        let k = [self.p[0][0] / s, self.p[1][0] / s];
        self.phase += k[0] * innovation;
        self.freq += k[1] * innovation;
        let p = self.p;
        self.p = [
            [(1.0 - k[0]) * p[0][0], (1.0 - k[0]) * p[0][1]],
            [p[1][0] - k[1] * p[0][0], p[1][1] - k[1] * p[0][1]],
        ];
    }

    /// The actuator corrected the clock by `phase` seconds and `freq` (a step, a slew or a
    /// frequency change): what remains to be corrected shrinks by as much.
    pub fn applied(&mut self, phase: f64, freq: f64) {
        self.phase -= phase;
        self.freq -= freq;
    }

    /// The phase jumped by `by` seconds (a followed jump, a leap second in the served time):
    /// keep the frequency, trust the new phase only as much as the measurement that set it.
    pub fn reset_phase(&mut self, by: f64, variance: f64) {
        self.phase += by;
        self.p[0][0] = variance;
        self.p[0][1] = 0.0;
        self.p[1][0] = 0.0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::rng::Rng;

    fn at(s: f64) -> Realtime {
        Realtime::from_nanos((s * 1e9) as i64)
    }

    #[test]
    fn learns_phase_and_frequency_from_noisy_measurements() {
        let mut rng = Rng::new(7);
        let truth = |t: f64| 0.01 + 30e-6 * t;
        let mut m = ClockModel::new(at(0.0), truth(0.0), 1e-12, None, 1e-18);
        for s in 1..600 {
            let t = s as f64;
            m.update(at(t), truth(t) + rng.normal(1e-6), 1e-12);
        }
        assert!((m.phase_at(at(600.0)) - truth(600.0)).abs() < 0.5e-6);
        assert!((m.freq - 30e-6).abs() < 5e-9, "{}", m.freq);
        assert!(m.freq_sigma() < 1e-8, "{}", m.freq_sigma());
    }

    #[test]
    fn uncertainty_grows_without_measurements() {
        let mut m = ClockModel::new(at(0.0), 0.0, 1e-12, Some(0.0), 1e-16);
        for s in 1..100 {
            m.update(at(s as f64), 0.0, 1e-12);
        }
        let now = m.phase_sigma_at(at(100.0));
        let later = m.phase_sigma_at(at(3700.0));
        assert!(later > 10.0 * now, "{now} {later}");
    }

    #[test]
    fn applied_corrections_leave_the_prediction_consistent() {
        let mut m = ClockModel::new(at(0.0), 0.5, 1e-6, Some(1e-5), 1e-18);
        m.applied(0.5, 1e-5);
        assert_eq!((m.phase, m.freq), (0.0, 0.0));
        m.reset_phase(-1.0, 1e-6);
        assert_eq!(m.phase_at(at(10.0)), -1.0);
    }
}
