//! Reading the system clock: the only place outside the I/O drivers that calls clock_gettime.

use crate::time::Realtime;

/// Now, from CLOCK_REALTIME.
#[allow(clippy::unnecessary_cast)] // time_t and c_long are 32 bits on 32-bit ARM
pub fn realtime_now() -> Realtime {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec; CLOCK_REALTIME always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) };
    Realtime::from_timespec(ts.tv_sec as i64, ts.tv_nsec as i64)
}

/// The clock's precision as log2 seconds, measured as ntpd does: the smallest step between
/// successive readings, or the cost of one reading when the clock ticks finer than that.
pub fn measure_precision() -> i8 {
    let mut best = i64::MAX;
    let mut last = realtime_now().as_nanos();
    for _ in 0..10_000 {
        let now = realtime_now().as_nanos();
        let step = now - last;
        if step > 0 {
            best = best.min(step);
        }
        last = now;
    }
    precision_from_step_nanos(best)
}

/// The exponent p with 2^p >= step (at least one nanosecond, at most one second).
pub fn precision_from_step_nanos(step: i64) -> i8 {
    let seconds = (step.clamp(1, 1_000_000_000)) as f64 / 1e9;
    seconds.log2().ceil() as i8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precision_exponent_covers_the_step() {
        assert_eq!(precision_from_step_nanos(1), -29);
        assert_eq!(precision_from_step_nanos(1_000), -19);
        assert_eq!(precision_from_step_nanos(1_000_000_000), 0);
        assert_eq!(precision_from_step_nanos(i64::MAX), 0);
        let p = measure_precision();
        assert!((-30..=0).contains(&p));
    }
}
