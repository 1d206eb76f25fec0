//! MSF for the shared longwave decoder: every second starts with 100 ms of carrier off, bits A
//! and B in the two 100 ms after it, second 0 with 500 ms off; the frame names the next minute
//! in GMT or BST. No leap second is announced: in the last minute of a month the decoder looks
//! for the marker one second late.

use std::sync::OnceLock;

use super::frame::{self, bcd_bits, Minute, B, BST, DAY, HOUR, MINUTE, MONTH, WEEKDAY, YEAR};
use crate::refclock::longwave::evidence::{agreement, sure, DateTable, Frame};
use crate::refclock::longwave::level::{
    soft_bit, windows, Level, Observation, CLEAN_BIT, READ_BINS,
};
use crate::refclock::longwave::station::{self, Check, End, Station, StationKind};
use crate::time::UtcTime;

/// Each bit of the minute identifier counts this much towards the minute mark.
const IDENTIFIER_WEIGHT: f32 = 0.5;

#[derive(Clone, Copy, Debug, Default)]
pub struct Msf;

/// Scores of each local minute of day for the time bits (A 39-51) and their parity (B 57).
fn time_scores(frame: &Frame) -> Vec<f32> {
    let hours: Vec<(f32, u32)> = (0..24)
        .map(|h| {
            let bits = bcd_bits(h, HOUR.1);
            (
                agreement(frame, HOUR.0, HOUR.1.len(), bits),
                bits.count_ones(),
            )
        })
        .collect();
    let minutes: Vec<(f32, u32)> = (0..60)
        .map(|m| {
            let bits = bcd_bits(m, MINUTE.1);
            (
                agreement(frame, MINUTE.0, MINUTE.1.len(), bits),
                bits.count_ones(),
            )
        })
        .collect();
    let parity = frame[B + 57];
    (0..1440)
        .map(|l| {
            let ((h, hn), (m, mn)) = (hours[l / 60], minutes[l % 60]);
            // Odd parity: the bit is 1 when the time has an even number of ones.
            h + m + if (hn + mn) % 2 == 0 { parity } else { -parity }
        })
        .collect()
}

/// Hours ahead of UTC that suit UTC minute of day `utc` best in this frame (0 GMT, 1 BST).
fn fit_offset(time: &[f32], frame: &Frame, utc: usize) -> (i64, f32) {
    let fit =
        |z: usize| time[(utc + 60 * z) % 1440] + if z == 1 { frame[BST] } else { -frame[BST] };
    match fit(1) > fit(0) {
        true => (1, fit(1)),
        false => (0, fit(0)),
    }
}

/// The date bits: year, month, day, weekday, and their parities.
const DATE_FIELDS: [(usize, usize); 7] = [
    (YEAR.0, 8),
    (B + 54, 1),
    (MONTH.0, 5),
    (DAY.0, 6),
    (B + 55, 1),
    (WEEKDAY.0, 3),
    (B + 56, 1),
];

impl Station for Msf {
    const KIND: StationKind = StationKind::Msf;
    const WIDTHS: (f64, f64) = (0.1, 0.2);
    const MAX_WIDTH: f64 = 0.55;
    const PULSE: (usize, usize) = (0, 10);
    const QUIET: (usize, usize) = (35, 95);
    const PREVIEW_FROM: i64 = HOUR.0 as i64;
    /// Its last date parity is bit 56B.
    const DATE_PREVIEW_FROM: i64 = 56;
    const LEAP_AT: usize = 17;
    const BACKLOG: usize = 3;

    /// The first 90 ms must be off for a pulse; 110-190 ms tell bit A, 210-290 ms bit B;
    /// 310-490 ms off is the minute marker; 550-950 ms must be quiet. A pulse that starts
    /// within 30 ms of the marker, each bit's middle 40 ms wholly off or on, and quiet from
    /// 330 ms on, gives clean bits.
    fn observe(level: &Level, marker: i64) -> Observation {
        let shares = windows(
            level,
            marker,
            [
                (0, 9),
                (11, 19),
                (21, 29),
                (31, 49),
                (55, READ_BINS),
                (3, 7),
                (13, 17),
                (23, 27),
                (33, READ_BINS),
            ],
        );
        let Some([pulse, a, b, long, quiet, on, a_core, b_core, after]) = shares else {
            return Observation::Unclear;
        };
        let clean = on >= 0.95 && after <= 0.05;
        let bit = |share: f32, core: f32| match core {
            c if clean && c >= 0.95 => CLEAN_BIT,
            c if clean && c <= 0.05 => -CLEAN_BIT,
            _ => soft_bit(share),
        };
        match (pulse, long) {
            _ if quiet > 0.25 => Observation::Unclear,
            (p, _) if p <= 0.2 => Observation::Absent,
            (p, _) if p < 0.5 => Observation::Unclear,
            (_, l) if l >= 0.75 && a >= 0.75 && b >= 0.75 => Observation::Marker,
            (_, l) if l <= 0.25 => Observation::Present([bit(a, a_core), bit(b, b_core)]),
            _ => Observation::Unclear,
        }
    }

    fn fit(position: usize, seen: Observation) -> f32 {
        match (position, seen) {
            (0, Observation::Marker) => 1.0,
            (0, Observation::Present(_)) | (_, Observation::Marker) => -1.0,
            (52..=59, Observation::Present([a, _])) => match frame::IDENTIFIER[position - 52] {
                true => IDENTIFIER_WEIGHT * a,
                false => -IDENTIFIER_WEIGHT * a,
            },
            _ => 0.0,
        }
    }

    /// In the last minute of a month, a plain second where the marker was due, and the marker
    /// after it, are a leap second.
    fn end(tail: &[Observation], leap_minute: bool) -> End {
        use Observation::{Marker, Present, Unclear};
        match (tail, leap_minute) {
            ([s59], false) => End::Here {
                unsure: *s59 == Unclear,
            },
            ([_], true) | ([_, Present(_)], true) => End::Wait,
            ([_, Marker], _) => End::Next,
            ([_, Present(_), Marker], true) => End::Leap,
            _ => End::Lost,
        }
    }

    /// A plain pulse where the marker was due.
    fn misplaced_start(seen: Observation) -> bool {
        matches!(seen, Observation::Present(_))
    }

    fn add_time_of_day(frame: &Frame, score: &mut [f32], decay: f32) -> (f32, bool) {
        let time = time_scores(frame);
        for (utc, score) in score.iter_mut().enumerate() {
            *score = *score * decay + fit_offset(&time, frame, utc).1;
        }
        let bits = &frame[HOUR.0..=MINUTE.0 + 6];
        let weight = bits.iter().chain([&frame[B + 57], &frame[BST]]);
        (
            weight.map(|b| b.abs()).sum(),
            bits.iter().any(|&b| b != 0.0),
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
                    offset_hours: 0,
                    dst_announced: false,
                    leap_announced: false,
                }))
            })
        })
    }

    /// During BST, the UK date is the next day from 23:00 UTC.
    fn date_carry(frame: &Frame, of_day: usize) -> i64 {
        let offset = fit_offset(&time_scores(frame), frame, of_day).0;
        (of_day as i64 + 60 * offset) / 1440
    }

    fn leap_bit(_: &Frame) -> f32 {
        0.0
    }

    fn leap_minute(_: f32, utc: UtcTime) -> bool {
        station::last_minute_of_month(utc)
    }

    fn check(frame: &Frame) -> Check {
        let bits = frame.map(|s| match s {
            s if s > 0.3 => Some(true),
            s if s < -0.3 => Some(false),
            _ => None,
        });
        match frame::decode(&bits) {
            Ok(_) => Check::Good,
            Err(frame::FrameError::Parity) => Check::Parity,
            Err(_) => Check::Bad,
        }
    }

    fn minute(frame: &Frame, utc: UtcTime) -> Minute {
        let time = time_scores(frame);
        Minute {
            utc,
            offset_hours: fit_offset(&time, frame, utc.second as usize / 60).0,
            dst_announced: frame[frame::BST_WARNING] > 0.0,
            leap_announced: false,
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
        let l = level(
            &[
                (1.0, 0.5),
                (2.0, 0.1),
                (3.0, 0.2),
                (4.0, 0.1),
                (4.2, 0.1),
                (5.0, 0.3),
            ],
            6.0,
        );
        assert_eq!(Msf::observe(&l, 100), Observation::Marker);
        assert_eq!(
            Msf::observe(&l, 200),
            Observation::Present([-CLEAN_BIT, -CLEAN_BIT])
        );
        assert_eq!(
            Msf::observe(&l, 300),
            Observation::Present([CLEAN_BIT, -CLEAN_BIT])
        );
        assert_eq!(
            Msf::observe(&l, 400),
            Observation::Present([-CLEAN_BIT, CLEAN_BIT])
        );
        assert_eq!(
            Msf::observe(&l, 500),
            Observation::Present([CLEAN_BIT, CLEAN_BIT])
        );
        let l = level(&[(1.0, 0.1)], 3.0);
        assert_eq!(Msf::observe(&l, 200), Observation::Absent);
    }

    #[test]
    fn a_leap_second_needs_the_marker_after_it() {
        use Observation::{Marker, Present, Unclear};
        let plain = Present([-1.0, -1.0]);
        assert_eq!(Msf::end(&[plain], false), End::Here { unsure: false });
        assert_eq!(Msf::end(&[plain], true), End::Wait);
        assert_eq!(Msf::end(&[plain, Marker], true), End::Next);
        assert_eq!(Msf::end(&[plain, plain], true), End::Wait);
        assert_eq!(Msf::end(&[plain, plain, Marker], true), End::Leap);
        // The marker misread as a plain second, then second 1: no leap second after all.
        assert_eq!(Msf::end(&[plain, plain, plain], true), End::Lost);
        assert_eq!(Msf::end(&[plain, Unclear], true), End::Lost);
    }

    #[test]
    fn frames_add_up_to_the_time_across_the_change_to_bst() {
        // 2027-03-28 00:58 UTC on: GMT, then BST from 01:00 UTC.
        let start = days_from_civil(2027, 3, 28) * 86_400 + 58 * 60;
        let (mut tod, mut date) = (TimeOfDay::default(), Date::default());
        for k in 0..4 {
            let unix = start + k * 60;
            let zone = i64::from(unix >= start + 120);
            let mut frame = sure(&frame::encode(&Minute {
                utc: UtcTime::from_realtime(crate::time::Realtime::from_timespec(unix, 0)),
                offset_hours: zone,
                dst_announced: zone == 0,
                leap_announced: false,
            }));
            // A different bit lost in each frame.
            frame[40 + k as usize] = 0.0;
            tod.minute::<Msf>(&frame);
            date.add::<Msf>(&frame, Msf::date_carry(&frame, 58 + k as usize));
            assert_eq!(
                Msf::minute(
                    &frame,
                    UtcTime::from_realtime(crate::time::Realtime::from_timespec(unix, 0))
                )
                .offset_hours,
                zone
            );
        }
        let t = tod.lead().unwrap();
        assert_eq!(t.value, 61);
        assert!(t.margin >= 8.0, "{t:?}");
        let d = date.lead().unwrap();
        assert_eq!(d.value as i64 + first_day(), days_from_civil(2027, 3, 28));
        assert!(d.margin >= 8.0, "{d:?}");
    }
}
