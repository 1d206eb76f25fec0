//! Reference clocks, one module per kind. Each turns its receiver's output into `Sample`s.

pub mod dcf77;
pub mod gps;
pub mod local;

use crate::time::Realtime;

/// One measurement of the local clock against a reference.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample {
    /// The local clock (CLOCK_REALTIME) at the measured instant.
    pub local: Realtime,
    /// The reference's time (UTC) at that instant.
    pub reference: Realtime,
    /// Bound on the error of this one measurement, seconds.
    pub error: f64,
    /// What kind of reference it was, as NTP's refid at stratum 1.
    pub refid: [u8; 4],
}

impl Sample {
    pub fn new(local: Realtime, reference: Realtime, error: f64, refid: [u8; 4]) -> Self {
        Sample {
            local,
            reference,
            error,
            refid,
        }
    }

    /// Reference minus local clock, seconds: what the local clock must be corrected by.
    pub fn offset(&self) -> f64 {
        self.reference.seconds_since(self.local)
    }
}
