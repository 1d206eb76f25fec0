//! Reference clocks, one module per kind. Each turns its receiver's output into `Sample`s.

pub mod alarms;
pub mod dcf77;
pub mod gps;
pub mod longwave;
pub mod msf;
pub mod wwvb;

use crate::time::Leap;
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
    /// What kind of reference it was, as NTP's refid at stratum 1; an upstream server's
    /// address (or its hash) otherwise.
    pub refid: [u8; 4],
    /// The reference's stratum: 0 for a reference clock, the server's for an NTP upstream.
    pub stratum: u8,
    /// Round-trip delay to the primary reference, seconds (NTP's root delay plus the path to
    /// the upstream); 0 for a reference clock.
    pub root_delay: f64,
    /// The leap second the reference announces for the end of the current UTC day.
    pub leap: Leap,
    /// The reference itself doubts its time (a receiver that detects spoofing): the source is
    /// measured and shown, not selected, while its samples say so.
    pub demoted: bool,
}

impl Sample {
    pub fn new(local: Realtime, reference: Realtime, error: f64, refid: [u8; 4]) -> Self {
        Sample {
            local,
            reference,
            error,
            refid,
            stratum: 0,
            root_delay: 0.0,
            leap: Leap::None,
            demoted: false,
        }
    }

    /// The same sample with a leap-second announcement.
    pub fn with_leap(self, leap: Leap) -> Self {
        Sample { leap, ..self }
    }

    /// Reference minus local clock, seconds: what the local clock must be corrected by.
    pub fn offset(&self) -> f64 {
        self.reference.seconds_since(self.local)
    }
}
