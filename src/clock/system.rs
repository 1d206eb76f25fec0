//! Reading the system clock: the only place outside the I/O drivers that calls clock_gettime.

use crate::time::Realtime;

/// Nanoseconds on one of the kernel's clocks.
#[allow(clippy::unnecessary_cast)] // time_t and c_long are 32 bits on 32-bit ARM
pub fn read_nanos(clock: libc::clockid_t) -> i64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec; the clocks used here always exist on Linux.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as i64 * 1_000_000_000 + ts.tv_nsec as i64
}

/// Now, from CLOCK_REALTIME.
pub fn realtime_now() -> Realtime {
    Realtime::from_nanos(read_nanos(libc::CLOCK_REALTIME))
}

/// Now, from CLOCK_MONOTONIC: slewed with the system clock's frequency, never stepped, so
/// intervals measured on it survive the kernel actuator's steps.
pub fn monotonic_now() -> i64 {
    read_nanos(libc::CLOCK_MONOTONIC)
}

/// The system clock's reading at a CLOCK_MONOTONIC instant, through the two clocks' difference
/// now: an instant taken before a step and converted after it lands on the stepped clock, the
/// one the discipline now steers.
pub fn realtime_at_monotonic(monotonic: i64) -> Realtime {
    let now = realtime_now();
    Realtime::from_nanos(now.as_nanos() - (monotonic_now() - monotonic))
}

/// The inverse of `realtime_at_monotonic`, for events stamped on the system clock.
pub fn monotonic_at_realtime(t: Realtime) -> i64 {
    let now = realtime_now();
    monotonic_now() - (now.as_nanos() - t.as_nanos())
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

    #[test]
    fn monotonic_and_realtime_convert_both_ways() {
        let t = realtime_now().add_secs_f64(-86_400.0);
        let back = realtime_at_monotonic(monotonic_at_realtime(t));
        assert!(back.seconds_since(t).abs() < 0.01, "{back:?} {t:?}");
        let a = monotonic_now();
        assert!(monotonic_now() >= a);
    }
}
