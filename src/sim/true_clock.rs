//! True time for the simulated receivers: what a real antenna hears, independent of the
//! system clock. It runs on CLOCK_MONOTONIC_RAW, which neither steps nor slews, so a kernel
//! actuator that steers the system clock changes what the simulated events are timestamped
//! with (as it would for real hardware) but not when they happen.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::clock::system::{read_nanos, realtime_now};
use crate::time::Realtime;

pub struct TrueClock {
    /// True time at `raw0`.
    true0: Realtime,
    raw0: i64,
}

impl TrueClock {
    /// True time is the system clock plus `offset` seconds, now.
    pub fn new(offset: f64) -> Self {
        TrueClock {
            raw0: raw_nanos(),
            true0: realtime_now().add_secs_f64(offset),
        }
    }

    pub fn now(&self) -> Realtime {
        Realtime::from_nanos(self.true0.as_nanos() + (raw_nanos() - self.raw0))
    }

    /// Sleeps until true time `t`, then returns the system clock's reading at that instant
    /// (what the kernel would timestamp the event with); `None` if asked to stop meanwhile.
    pub fn sleep_until(&self, t: Realtime, stop: &AtomicBool) -> Option<Realtime> {
        loop {
            if stop.load(Ordering::Relaxed) {
                return None;
            }
            let left = t.seconds_since(self.now());
            if left <= 0.0 {
                // Read both clocks together and take out the oversleep.
                let local = realtime_now();
                return Some(local.add_secs_f64(-self.now().seconds_since(t)));
            }
            std::thread::sleep(Duration::from_secs_f64(left.min(0.2)));
        }
    }
}

fn raw_nanos() -> i64 {
    read_nanos(libc::CLOCK_MONOTONIC_RAW)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_at_the_offset_and_timestamps_on_the_system_clock() {
        let clock = TrueClock::new(0.25);
        assert!((clock.now().seconds_since(realtime_now()) - 0.25).abs() < 0.01);
        let stop = AtomicBool::new(false);
        let target = clock.now().add_secs_f64(0.05);
        let local = clock.sleep_until(target, &stop).unwrap();
        assert!((target.seconds_since(local) - 0.25).abs() < 0.01);
        stop.store(true, Ordering::Relaxed);
        assert_eq!(clock.sleep_until(target.add_secs_f64(10.0), &stop), None);
    }
}
