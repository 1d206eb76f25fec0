//! Clocks: reading the system clock, and the actuators that carry out the discipline's
//! corrections.
//!
//! The discipline never touches a clock: it returns `Adjustment`s. With the virtual actuator
//! it returns none and the correction lives in the served time (`snapshot::Correction`); with
//! the kernel actuator the daemon applies them to CLOCK_REALTIME, and `pitime simulate`
//! applies them to its simulated oscillator.

pub mod change;
pub mod kernel;
pub mod system;

use crate::time::Leap;

/// RFC 5905's PHI: how fast the error of a time kept by a free-running clock grows, 15 ppm.
pub const PHI: f64 = 15e-6;

/// One correction of the clock.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Adjustment {
    /// Step the clock forward by this many seconds (negative: backwards).
    Step(f64),
    /// Set the frequency correction (dimensionless; positive speeds the clock up).
    Frequency(f64),
    /// Announce (or withdraw) a leap second at the end of the UTC day, and say whether the
    /// clock is synchronised with this error estimate (seconds).
    Status {
        leap: Leap,
        synchronised: bool,
        error: f64,
    },
}

/// Something that carries out adjustments.
pub trait Actuator {
    fn apply(&mut self, adjustment: Adjustment) -> std::io::Result<()>;
}
