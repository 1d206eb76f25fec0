//! The kernel actuator: CLOCK_REALTIME steered with clock_adjtime(2).
//!
//! Like chrony, pitime leaves the kernel's own PLL off and sets the frequency directly, so the
//! loop is the discipline's alone; phase is corrected through the frequency over the loop's
//! time constant, and stepped only when the discipline says so. The leap-second flags are the
//! kernel's (STA_INS/STA_DEL): it inserts or deletes the second itself at midnight UTC.

use std::io;

use super::{Actuator, Adjustment};
use crate::time::Leap;

/// The kernel refuses frequencies beyond ±500 ppm.
pub const MAX_FREQ: f64 = 500e-6;

pub struct KernelClock {
    _private: (),
}

impl KernelClock {
    /// Checks that the clock can be adjusted (CAP_SYS_TIME) by writing back its own status.
    pub fn open() -> io::Result<Self> {
        let mut t = read()?;
        t.modes = libc::ADJ_STATUS;
        // Our loop, not the kernel's; no stale leap flags.
        t.status &= !(libc::STA_PLL | libc::STA_FLL | libc::STA_INS | libc::STA_DEL);
        adjtime(&mut t)?;
        Ok(KernelClock { _private: () })
    }

    /// The frequency correction the kernel applies now.
    pub fn frequency(&self) -> io::Result<f64> {
        Ok(read()?.freq as f64 / 65536.0 * 1e-6)
    }
}

impl Actuator for KernelClock {
    fn apply(&mut self, adjustment: Adjustment) -> io::Result<()> {
        let mut t = zeroed();
        match adjustment {
            Adjustment::Step(seconds) => {
                let nanos = (seconds * 1e9).round() as i64;
                t.modes = libc::ADJ_SETOFFSET | libc::ADJ_NANO;
                t.time.tv_sec = nanos.div_euclid(1_000_000_000) as libc::time_t;
                t.time.tv_usec = nanos.rem_euclid(1_000_000_000) as libc::suseconds_t;
            }
            Adjustment::Frequency(freq) => {
                t.modes = libc::ADJ_FREQUENCY;
                // Units of 2^-16 ppm.
                t.freq = (freq.clamp(-MAX_FREQ, MAX_FREQ) * 1e6 * 65536.0).round() as libc::c_long;
            }
            Adjustment::Status {
                leap,
                synchronised,
                error,
            } => {
                t = read()?;
                t.modes = libc::ADJ_STATUS | libc::ADJ_ESTERROR | libc::ADJ_MAXERROR;
                t.status &= !(libc::STA_INS | libc::STA_DEL | libc::STA_UNSYNC);
                t.status |= match leap {
                    Leap::Insert => libc::STA_INS,
                    Leap::Delete => libc::STA_DEL,
                    Leap::None | Leap::Unsynchronised => 0,
                };
                if !synchronised {
                    t.status |= libc::STA_UNSYNC;
                }
                // Microseconds; the kernel grows maxerror by itself between updates.
                t.esterror = (error * 1e6).min(16e6) as libc::c_long;
                t.maxerror = (error * 3e6).min(16e6) as libc::c_long;
            }
        }
        adjtime(&mut t).map(drop)
    }
}

fn zeroed() -> libc::timex {
    // SAFETY: timex is plain old data; all zeroes means "change nothing".
    unsafe { std::mem::zeroed() }
}

fn read() -> io::Result<libc::timex> {
    let mut t = zeroed();
    adjtime(&mut t)?;
    Ok(t)
}

fn adjtime(t: &mut libc::timex) -> io::Result<libc::c_int> {
    // SAFETY: `t` is a valid timex for the duration of the call.
    let r = unsafe { libc::clock_adjtime(libc::CLOCK_REALTIME, t) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Reading (modes = 0) changes nothing, so it is safe on the build machine.
    #[test]
    fn the_kernel_frequency_can_be_read() {
        let f = KernelClock { _private: () }.frequency().unwrap();
        assert!(f.abs() <= MAX_FREQ, "{f}");
    }
}
