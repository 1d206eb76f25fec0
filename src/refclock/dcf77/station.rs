//! DCF77 for the shared longwave decoder: 100 and 200 ms pulses of reduced carrier, none at
//! second 59; the frame names the next minute in CET or CEST; A2 announces a leap second,
//! which comes as a 0 bit at second 59 and the gap at 60.

use std::sync::OnceLock;

use super::frame::{
    self, bcd_bits, FrameError, DAY, FRAME_BITS, HOUR, MINUTE, MONTH, WEEKDAY, YEAR,
};
use crate::refclock::longwave::evidence::{agreement, sure, weight, DateTable, Frame};
use crate::refclock::longwave::level::{soft_bit, windows, Level, Observation, READ_BINS};
use crate::refclock::longwave::station::{self, Check, End, Minute, Station, StationKind};
use crate::time::UtcTime;

/// Fixed bits 0 (always 0) and 20 (always 1) count this much towards the minute mark.
const FIXED_BITS_WEIGHT: f32 = 0.5;

#[derive(Clone, Copy, Debug, Default)]
pub struct Dcf77;

/// `bits` (`len` of them) followed by their even parity bit.
fn with_parity(bits: u32, len: usize) -> u32 {
    bits | (bits.count_ones() & 1) << len
}

/// Hours ahead of UTC that Z1 and Z2 say, as scores for CET (1) and CEST (2).
fn zone_scores(frame: &Frame) -> [f32; 2] {
    [frame[18] - frame[17], frame[17] - frame[18]]
}

/// Scores of each hour 0..24 (bits 29-35) of a frame.
fn hour_scores(frame: &Frame) -> [f32; 24] {
    std::array::from_fn(|h| {
        let bits = bcd_bits(h as u32, HOUR.1);
        agreement(
            frame,
            HOUR.0,
            HOUR.1.len() + 1,
            with_parity(bits, HOUR.1.len()),
        )
    })
}

/// Hours ahead of UTC that suit UTC minute of day `utc` best in this frame.
pub fn offset_hours(frame: &Frame, utc: usize) -> i64 {
    let hours = hour_scores(frame);
    let zones = zone_scores(frame);
    let fit = |z: usize| hours[(utc / 60 + z) % 24] + zones[z - 1];
    if fit(2) > fit(1) {
        2
    } else {
        1
    }
}

/// The date bits: day, weekday, month, year, and their parity P3.
const DATE_FIELDS: [(usize, usize); 5] = [
    (DAY.0, DAY.1.len()),
    (WEEKDAY.0, WEEKDAY.1.len()),
    (MONTH.0, MONTH.1.len()),
    (YEAR.0, YEAR.1.len()),
    (FRAME_BITS - 1, 1),
];

impl Station for Dcf77 {
    const KIND: StationKind = StationKind::Dcf77;
    const WIDTHS: (f64, f64) = (0.1, 0.2);
    const MAX_WIDTH: f64 = 0.3;
    const PULSE: (usize, usize) = (0, 10);
    const QUIET: (usize, usize) = (25, 95);
    const PREVIEW_FROM: i64 = MINUTE.0 as i64;
    /// Its date parity is bit 58.
    const DATE_PREVIEW_FROM: i64 = 58;
    const LEAP_AT: usize = 59;
    const BACKLOG: usize = 3;

    /// The first 90 ms must be active for a pulse, 110-190 ms tell the bit, and 300-950 ms must
    /// be quiet for the second to count at all.
    fn observe(level: &Level, marker: i64) -> Observation {
        let Some([pulse, bit, quiet]) = windows(level, marker, [(0, 9), (11, 19), (30, READ_BINS)])
        else {
            return Observation::Unclear;
        };
        if quiet > 0.25 {
            Observation::Unclear
        } else if pulse >= 0.5 {
            Observation::Present([soft_bit(bit), 0.0])
        } else if pulse <= 0.2 {
            Observation::Absent
        } else {
            Observation::Unclear
        }
    }

    fn fit(position: usize, seen: Observation) -> f32 {
        match (position, seen) {
            (59, Observation::Absent) => 1.0,
            (59, Observation::Present(_)) => -1.0,
            (0, Observation::Present([bit, _])) => -FIXED_BITS_WEIGHT * bit,
            (20, Observation::Present([bit, _])) => FIXED_BITS_WEIGHT * bit,
            _ => 0.0,
        }
    }

    /// A pulse at 59 is a leap second's 0 bit, or a stray pulse in the gap: the next second
    /// tells (a leap second leaves 60 without a pulse).
    fn end(tail: &[Observation], leap_minute: bool) -> End {
        use Observation::{Absent, Present, Unclear};
        match (tail, leap_minute) {
            ([Present(_)], _) | ([_], true) => End::Wait,
            ([s59], false) => End::Here {
                unsure: *s59 == Unclear,
            },
            ([Present(_), Absent], true) => End::Leap,
            ([Present(_), Present(_)], false) | ([Absent | Unclear, Present(_)], _) => End::Next,
            _ => End::Lost,
        }
    }

    fn misplaced_start(seen: Observation) -> bool {
        seen == Observation::Absent
    }

    fn add_time_of_day(frame: &Frame, score: &mut [f32], decay: f32) -> (f32, bool) {
        let minutes: [f32; 60] = std::array::from_fn(|m| {
            let bits = bcd_bits(m as u32, MINUTE.1);
            agreement(
                frame,
                MINUTE.0,
                MINUTE.1.len() + 1,
                with_parity(bits, MINUTE.1.len()),
            )
        });
        let hours = hour_scores(frame);
        let zones = zone_scores(frame);
        for (utc, score) in score.iter_mut().enumerate() {
            let local = |z: usize| hours[(utc / 60 + z) % 24] + zones[z - 1];
            *score = *score * decay + minutes[utc % 60] + local(1).max(local(2));
        }
        let last = HOUR.0 + HOUR.1.len();
        let carried = frame[MINUTE.0..=last].iter().any(|&b| b != 0.0);
        // Z1 and Z2, then minute, hour and their parities.
        (
            weight(frame, 17, 18) + weight(frame, MINUTE.0, last),
            carried,
        )
    }

    fn date_table() -> &'static DateTable {
        static TABLE: OnceLock<DateTable> = OnceLock::new();
        TABLE.get_or_init(|| {
            DateTable::new(&DATE_FIELDS, |day| {
                sure(&frame::encode(&Minute {
                    utc: UtcTime {
                        day,
                        second: 12 * 3600,
                        nanos: 0,
                    },
                    offset_hours: 1,
                    dst_announced: false,
                    leap_announced: false,
                }))
            })
        })
    }

    /// Near midnight UTC the local date is the next day.
    fn date_carry(frame: &Frame, of_day: usize) -> i64 {
        let local = of_day as i64 + 60 * offset_hours(frame, of_day);
        local / 1440
    }

    fn leap_bit(frame: &Frame) -> f32 {
        frame[19]
    }

    fn leap_minute(announced: f32, utc: UtcTime) -> bool {
        announced >= 1.0 && station::last_minute_of_day(utc)
    }

    fn check(frame: &Frame) -> Check {
        let mut bits: [Option<bool>; FRAME_BITS] = std::array::from_fn(|i| match frame[i] {
            s if s > 0.3 => Some(true),
            s if s < -0.3 => Some(false),
            _ => None,
        });
        frame::resolve(&mut bits);
        match frame::decode(&bits) {
            Ok(_) => Check::Good,
            Err(FrameError::Parity) => Check::Parity,
            Err(_) => Check::Bad,
        }
    }

    fn minute(frame: &Frame, utc: UtcTime) -> Minute {
        Minute {
            utc,
            offset_hours: offset_hours(frame, utc.second as usize / 60),
            dst_announced: frame[16] > 0.0,
            leap_announced: frame[19] > 0.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::refclock::longwave::evidence::{first_day, Date, TimeOfDay};
    use crate::refclock::longwave::level::tests::level;
    use crate::refclock::longwave::mark::MinuteMark;
    use crate::time::days_from_civil;

    #[test]
    fn a_second_reads_as_its_pulse() {
        let l = level(&[(1.0, 0.1), (2.0, 0.2), (4.0, 0.1)], 5.5);
        assert_eq!(Dcf77::observe(&l, 100), Observation::Present([-1.0, 0.0]));
        assert_eq!(Dcf77::observe(&l, 200), Observation::Present([1.0, 0.0]));
        assert_eq!(Dcf77::observe(&l, 300), Observation::Absent);
        // Not yet complete.
        assert_eq!(Dcf77::observe(&l, 500), Observation::Unclear);
    }

    #[test]
    fn noise_in_the_quiet_part_makes_a_second_unclear_and_glitches_do_not() {
        let mut noisy: Vec<(f64, f64)> = vec![(1.0, 0.1)];
        noisy.extend((0..12).map(|i| (1.3 + 0.05 * f64::from(i), 0.03)));
        noisy.push((2.0, 0.1));
        noisy.push((2.5, 0.02));
        let l = level(&noisy, 3.5);
        assert_eq!(Dcf77::observe(&l, 100), Observation::Unclear);
        assert_eq!(Dcf77::observe(&l, 200), Observation::Present([-1.0, 0.0]));
    }

    #[test]
    fn the_mark_stands_out_after_two_minutes_despite_lost_pulses() {
        let mut mark = MinuteMark::<Dcf77>::default();
        for n in 0..200i64 {
            let seen = match n % 60 {
                59 => Observation::Absent,
                13 if n < 60 => Observation::Absent,
                0 => Observation::Present([-1.0, 0.0]),
                20 => Observation::Present([1.0, 0.0]),
                _ => Observation::Present([-0.3, 0.0]),
            };
            mark.second(n, seen);
            if n == 70 {
                assert_eq!(mark.best(), None, "one minute with a lost pulse");
            }
        }
        assert_eq!(mark.best(), Some(59));
        mark.shift();
        assert_eq!(mark.best(), Some(0));
    }

    fn minute(unix: i64, offset_hours: i64) -> Minute {
        Minute {
            utc: UtcTime::from_realtime(crate::time::Realtime::from_timespec(unix, 0)),
            offset_hours,
            dst_announced: false,
            leap_announced: false,
        }
    }

    #[test]
    fn frames_with_bits_lost_add_up_to_the_time() {
        // 2026-03-29 00:58 UTC on: CET, then CEST from 01:00 UTC.
        let start = days_from_civil(2026, 3, 29) * 86_400 + 58 * 60;
        let (mut tod, mut date) = (TimeOfDay::default(), Date::default());
        for k in 0..4 {
            let unix = start + k * 60;
            let zone = if unix >= start + 120 { 2 } else { 1 };
            let mut frame = sure(&frame::encode(&minute(unix, zone)));
            // A different pair of bits lost in each frame: none decodes alone.
            for i in [23 + k as usize, 30 + k as usize, 40 + k as usize] {
                frame[i] = 0.0;
            }
            frame[50 + k as usize] *= -0.5;
            tod.minute::<Dcf77>(&frame);
            let utc = (58 + k as usize) % 1440;
            assert_eq!(offset_hours(&frame, utc), zone);
            date.add::<Dcf77>(&frame, 0);
        }
        let t = tod.lead().unwrap();
        assert_eq!(t.value, 61);
        assert!(t.agreement > 0.9, "{t:?}");
        assert!(t.margin >= 8.0, "{t:?}");
        let d = date.lead().unwrap();
        assert_eq!(d.value as i64 + first_day(), days_from_civil(2026, 3, 29));
        assert!(d.margin >= 8.0, "{d:?}");
        date.pass(1);
        assert_eq!(date.lead().unwrap().value, d.value + 1);
    }
}
