//! The local clock as a last-resort reference (ntpd's LOCAL driver, chrony's `local stratum`):
//! serves the system clock as it is, at a high stratum, so clients can tell it from real time.

use crate::clock::PHI;
use crate::discipline::snapshot::{ClockSnapshot, Correction};
use crate::time::Leap;
use crate::time::Realtime;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalClock {
    pub stratum: u8,
}

impl LocalClock {
    /// The clock state when the local clock is the selected reference at `now`, serving the
    /// system clock with `correction` (what the discipline last learned, if anything).
    pub fn snapshot(&self, now: Realtime, precision: i8, correction: Correction) -> ClockSnapshot {
        ClockSnapshot {
            synchronised: true,
            leap: Leap::None,
            stratum: self.stratum,
            refid: *b"LOCL",
            reference_time: now,
            root_delay: 0.0,
            root_dispersion: 2f64.powi(precision as i32),
            precision,
            correction,
            dispersion_rate: PHI,
            frequency: correction.freq,
            changes: Default::default(),
            numbering: false,
        }
    }
}
