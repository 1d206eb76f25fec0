//! WWVB for the shared longwave decoder: every second starts with the carrier reduced, for
//! 0.2 s (0), 0.5 s (1) or 0.8 s (marker); the frame names the UTC minute it began with (so
//! the minute that starts at its end is one later); bit 56 announces a leap second at the end
//! of the month, sent as a third marker in a row.

use std::sync::OnceLock;

use super::frame::{self, Flags, Symbol, DAY, HOUR, MARKERS, MINUTE, ZEROS};
use crate::refclock::longwave::bcd::bcd_bits;
use crate::refclock::longwave::evidence::{DateTable, Frame};
use crate::refclock::longwave::level::{
    soft_bit, windows, Level, Observation, CLEAN_BIT, READ_BINS,
};
use crate::refclock::longwave::station::{self, Check, End, Minute, Station, StationKind};
use crate::time::UtcTime;

/// Each unused bit (always 0) counts this much towards the minute mark.
const ZERO_WEIGHT: f32 = 0.5;

#[derive(Clone, Copy, Debug, Default)]
pub struct Wwvb;

/// How well the bits at `at` match the BCD pattern of each value `0..n`.
fn scores<const N: usize>(
    frame: &Frame,
    (at, weights): ([usize; N], [u32; N]),
    n: u32,
) -> Vec<f32> {
    (0..n)
        .map(|v| {
            let bits = bcd_bits(v, &weights);
            let each = at.iter().enumerate();
            each.map(|(i, &k)| {
                if bits >> i & 1 == 1 {
                    frame[k]
                } else {
                    -frame[k]
                }
            })
            .sum()
        })
        .collect()
}

/// The date bits: day of year, year, leap year.
const DATE_FIELDS: [(usize, usize); 6] = [(22, 2), (25, 4), (30, 4), (45, 4), (50, 4), (55, 1)];

/// A frame's symbols as sure soft bits (markers carry none).
pub fn soft(symbols: &[Symbol; 60]) -> Frame {
    let mut frame = [0.0; 120];
    for (s, symbol) in frame.iter_mut().zip(symbols) {
        *s = match symbol {
            Symbol::One => 1.0,
            Symbol::Zero => -1.0,
            Symbol::Marker => 0.0,
        };
    }
    frame
}

/// The UTC minute of day a frame names, for the minute of day `u` that starts at its end.
fn named(u: usize) -> usize {
    (u + 1439) % 1440
}

impl Station for Wwvb {
    const KIND: StationKind = StationKind::Wwvb;
    const WIDTHS: (f64, f64) = (0.2, 0.5);
    const MAX_WIDTH: f64 = 0.85;
    const PULSE: (usize, usize) = (0, 18);
    const QUIET: (usize, usize) = (84, 98);
    /// Once the minute is in: the hour may be known from earlier frames.
    const PREVIEW_FROM: i64 = MINUTE.0[6] as i64;
    /// No parity: the day of year counts from its last bit on.
    const DATE_PREVIEW_FROM: i64 = DAY.0[9] as i64;
    const LEAP_AT: usize = 60;
    const BACKLOG: usize = 8;

    /// The first 180 ms must be reduced for a pulse; 220-480 ms tell a 1, 520-780 ms a marker;
    /// 840-950 ms must be quiet. A pulse that starts within 30 ms of the marker and ends
    /// between 160 and 250 ms (a 0) or 450 and 550 ms (a 1), quiet after it, is a clean bit.
    fn observe(level: &Level, marker: i64) -> Observation {
        let shares = windows(
            level,
            marker,
            [
                (0, 18),
                (22, 48),
                (52, 78),
                (84, READ_BINS),
                (3, 16),
                (25, READ_BINS),
                (3, 45),
                (55, READ_BINS),
            ],
        );
        let Some([pulse, one, long, quiet, zero_on, zero_off, one_on, one_off]) = shares else {
            return Observation::Unclear;
        };
        let clean = |on: f32, off: f32| on >= 0.95 && off <= 0.05;
        let bit = match soft_bit(one) {
            _ if clean(zero_on, zero_off) => -CLEAN_BIT,
            _ if clean(one_on, one_off) => CLEAN_BIT,
            bit => bit,
        };
        match (pulse, long) {
            _ if quiet > 0.25 => Observation::Unclear,
            (p, _) if p <= 0.2 => Observation::Absent,
            (p, _) if p < 0.5 => Observation::Unclear,
            (_, l) if l >= 0.75 && one >= 0.75 => Observation::Marker,
            (_, l) if l <= 0.25 => Observation::Present([bit, 0.0]),
            _ => Observation::Unclear,
        }
    }

    fn fit(position: usize, seen: Observation) -> f32 {
        let marker = MARKERS.contains(&position);
        match seen {
            Observation::Marker if marker => 1.0,
            Observation::Marker => -1.0,
            Observation::Present(_) if marker => -1.0,
            Observation::Present([bit, _]) if ZEROS.contains(&position) => -ZERO_WEIGHT * bit,
            _ => 0.0,
        }
    }

    /// In a minute with a leap second announced, a third marker in a row, and a bit after it,
    /// are the leap second.
    fn end(tail: &[Observation], leap_minute: bool) -> End {
        use Observation::{Marker, Present, Unclear};
        match (tail, leap_minute) {
            ([_], false) => End::Here { unsure: false },
            ([_] | [_, _] | [_, Marker, Marker], true) => End::Wait,
            ([_, Marker | Unclear, Present(_)], _) => End::Next,
            ([_, Marker, Marker, Present(_)], _) => End::Leap,
            _ => End::Lost,
        }
    }

    fn misplaced_start(_: Observation) -> bool {
        false
    }

    fn add_time_of_day(frame: &Frame, score: &mut [f32], decay: f32) -> (f32, bool) {
        let minutes = scores(frame, MINUTE, 60);
        let hours = scores(frame, HOUR, 24);
        for (utc, score) in score.iter_mut().enumerate() {
            let m = named(utc);
            *score = *score * decay + minutes[m % 60] + hours[m / 60];
        }
        let bits = MINUTE.0.iter().chain(&HOUR.0).map(|&k| frame[k]);
        let weight = bits.clone().map(f32::abs).sum();
        (weight, bits.into_iter().any(|b| b != 0.0))
    }

    fn date_table() -> &'static DateTable {
        static TABLE: OnceLock<DateTable> = OnceLock::new();
        TABLE.get_or_init(|| {
            DateTable::new(&DATE_FIELDS, |day| {
                let noon = UtcTime {
                    day,
                    second: 12 * 3600,
                    nanos: 0,
                };
                let flags = Flags {
                    dst: [false; 2],
                    leap_warning: false,
                };
                soft(&frame::encode(noon, flags))
            })
        })
    }

    /// The frame before 00:00 UTC names the day before.
    fn date_carry(_: &Frame, of_day: usize) -> i64 {
        -i64::from(of_day == 0)
    }

    /// Announced by two frames at least, however clean.
    fn leap_bit(frame: &Frame) -> f32 {
        frame[frame::LEAP_WARNING].clamp(-1.0, 1.0)
    }

    /// The warning stands for the whole month: the leap second ends its last minute.
    fn leap_minute(announced: f32, utc: UtcTime) -> bool {
        announced >= 1.0 && station::last_minute_of_month(utc)
    }

    fn check(frame: &Frame) -> Check {
        let symbols: [Option<Symbol>; 60] = std::array::from_fn(|i| match frame[i] {
            _ if MARKERS.contains(&i) => Some(Symbol::Marker),
            s if s > 0.3 => Some(Symbol::One),
            s if s < -0.3 => Some(Symbol::Zero),
            _ => None,
        });
        match frame::decode(&symbols) {
            Ok(_) => Check::Good,
            Err(_) => Check::Bad,
        }
    }

    fn minute(frame: &Frame, utc: UtcTime) -> Minute {
        Minute {
            utc,
            offset_hours: 0,
            dst_announced: (frame[frame::DST_END_OF_DAY] > 0.0)
                != (frame[frame::DST_START_OF_DAY] > 0.0),
            leap_announced: frame[frame::LEAP_WARNING] > 0.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::refclock::longwave::evidence::{first_day, Date, TimeOfDay};
    use crate::refclock::longwave::level::tests::level;
    use crate::time::days_from_civil;

    #[test]
    fn each_kind_of_second_reads_as_sent() {
        let l = level(&[(1.0, 0.2), (2.0, 0.5), (3.0, 0.8), (5.0, 0.2)], 6.0);
        assert_eq!(
            Wwvb::observe(&l, 100),
            Observation::Present([-CLEAN_BIT, 0.0])
        );
        assert_eq!(
            Wwvb::observe(&l, 200),
            Observation::Present([CLEAN_BIT, 0.0])
        );
        assert_eq!(Wwvb::observe(&l, 300), Observation::Marker);
        assert_eq!(Wwvb::observe(&l, 400), Observation::Absent);
    }

    #[test]
    fn a_leap_second_is_a_third_marker_and_a_bit_after_it() {
        use Observation::{Marker, Present};
        let bit = Present([1.0, 0.0]);
        assert_eq!(Wwvb::end(&[Marker], false), End::Here { unsure: false });
        assert_eq!(Wwvb::end(&[Marker, Marker], true), End::Wait);
        assert_eq!(Wwvb::end(&[Marker, Marker, bit], true), End::Next);
        assert_eq!(Wwvb::end(&[Marker, Marker, Marker], true), End::Wait);
        assert_eq!(Wwvb::end(&[Marker, Marker, Marker, bit], true), End::Leap);
        // Second 1 misread as a marker: four markers in a row are nothing WWVB sends.
        assert_eq!(Wwvb::end(&[Marker; 4], true), End::Lost);
    }

    #[test]
    fn frames_across_midnight_add_up_to_the_time_and_the_date() {
        // The frames of 2027-01-01 23:58 to 2027-01-02 00:01 UTC.
        let start = days_from_civil(2027, 1, 1) * 86_400 + 1438 * 60;
        let (mut tod, mut date) = (TimeOfDay::default(), Date::default());
        for k in 0..4 {
            let utc =
                UtcTime::from_realtime(crate::time::Realtime::from_timespec(start + k * 60, 0));
            let flags = Flags {
                dst: [false; 2],
                leap_warning: false,
            };
            let frame = soft(&frame::encode(utc, flags));
            tod.minute::<Wwvb>(&frame);
            // The minute starting at the frame's end.
            let next = (1439 + k as usize) % 1440;
            if k == 1 {
                date.pass(1);
            }
            date.add::<Wwvb>(&frame, Wwvb::date_carry(&frame, next));
        }
        let t = tod.lead().unwrap();
        assert_eq!(t.value, 2, "the minute after the last frame's");
        let d = date.lead().unwrap();
        assert_eq!(d.value as i64 + first_day(), days_from_civil(2027, 1, 2));
    }
}
