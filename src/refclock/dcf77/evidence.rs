//! Evidence for the time, gathered across minutes (the approach of Udo Klein's DCF77 library):
//! each frame's soft bits (+1 a sure 1, -1 a sure 0, 0 unknown) score every candidate value,
//! and the scores of earlier frames move on with the minutes elapsed, so the candidate that
//! fits all frames stands out even when no single frame decodes. The time of day is one field
//! of 1440 UTC minutes (the carry from minutes into hours needs no guess, and a change between
//! CET and CEST moves nothing), the date one field of the 36525 days of 2000-2099 (day, weekday,
//! month, year and their parity checked together).

use std::sync::OnceLock;

use super::frame::{bcd_bits, DAY, FRAME_BITS, HOUR, MINUTE, MONTH, WEEKDAY, YEAR};
use crate::time::{civil_from_days, days_from_civil};

/// A frame's soft bits.
pub type Frame = [f32; FRAME_BITS];

/// Each frame's evidence counts this much less for every later frame: a time constant of
/// twenty minutes.
const DECAY: f32 = 0.95;
pub const MINUTES_PER_DAY: usize = 1440;
const DAYS: usize = 36_525;
/// Bits 36..=58: day, weekday, month, year and their parity.
const DATE_FIRST: usize = 36;

/// The best candidate, how far it leads the next, and how well it fits the bits received: its
/// score over the most any candidate could have (1: every bit agrees; 0.8: a tenth disagree).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Lead {
    pub value: usize,
    pub margin: f32,
    pub agreement: f32,
}

fn lead(scores: &[f32], possible: f32) -> Option<Lead> {
    let (mut best, mut second) = (None::<usize>, f32::MIN);
    for (i, &s) in scores.iter().enumerate() {
        match best {
            Some(b) if s <= scores[b] => second = second.max(s),
            _ => {
                if let Some(b) = best {
                    second = second.max(scores[b]);
                }
                best = Some(i);
            }
        }
    }
    best.map(|value| Lead {
        value,
        margin: scores[value] - second,
        agreement: if possible > 0.0 {
            scores[value] / possible
        } else {
            0.0
        },
    })
}

/// How well `len` bits of `frame` from `first` match `pattern` (bit 0 first).
fn agreement(frame: &Frame, first: usize, len: usize, pattern: u32) -> f32 {
    (0..len)
        .map(|i| match pattern >> i & 1 {
            1 => frame[first + i],
            _ => -frame[first + i],
        })
        .sum()
}

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

/// The sum of a frame's bits' weights from `first` to `last`: the most a candidate can score.
fn weight(frame: &Frame, first: usize, last: usize) -> f32 {
    frame[first..=last].iter().map(|b| b.abs()).sum()
}

/// The UTC minute of day of the minute in progress.
#[derive(Clone, Debug)]
pub struct TimeOfDay {
    score: Vec<f32>,
    possible: f32,
    frames: u32,
    lead: Option<Lead>,
}

impl Default for TimeOfDay {
    fn default() -> Self {
        TimeOfDay {
            score: vec![0.0; MINUTES_PER_DAY],
            possible: 0.0,
            frames: 0,
            lead: None,
        }
    }
}

impl TimeOfDay {
    /// A minute passed and `frame` (possibly empty) says what the new one is.
    pub fn minute(&mut self, frame: &Frame) {
        self.score.rotate_right(1);
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
        for (utc, score) in self.score.iter_mut().enumerate() {
            let local = |z: usize| hours[(utc / 60 + z) % 24] + zones[z - 1];
            *score = *score * DECAY + minutes[utc % 60] + local(1).max(local(2));
        }
        let last = HOUR.0 + HOUR.1.len();
        if frame[MINUTE.0..=last].iter().any(|&b| b != 0.0) {
            self.frames += 1;
        }
        // Z1 and Z2, then minute, hour and their parities.
        self.possible =
            self.possible * DECAY + weight(frame, 17, 18) + weight(frame, MINUTE.0, last);
        self.lead = lead(&self.score, self.possible);
    }

    /// Frames that carried any bit of the time of day.
    pub fn frames(&self) -> u32 {
        self.frames
    }

    pub fn lead(&self) -> Option<Lead> {
        self.lead
    }
}

/// The encoded date bits (36..=58, bit 36 first) of each local day of 2000-2099.
fn encoded_dates() -> &'static [u32] {
    static DATES: OnceLock<Vec<u32>> = OnceLock::new();
    DATES.get_or_init(|| {
        let first = days_from_civil(2000, 1, 1);
        (0..DAYS as i64)
            .map(|d| {
                let days = first + d;
                let (year, month, day) = civil_from_days(days);
                let weekday = ((days + 3).rem_euclid(7) + 1) as u32;
                let bits = bcd_bits(day, DAY.1)
                    | bcd_bits(weekday, WEEKDAY.1) << (WEEKDAY.0 - DATE_FIRST)
                    | bcd_bits(month, MONTH.1) << (MONTH.0 - DATE_FIRST)
                    | bcd_bits((year % 100) as u32, YEAR.1) << (YEAR.0 - DATE_FIRST);
                with_parity(bits, FRAME_BITS - 1 - DATE_FIRST)
            })
            .collect()
    })
}

/// The UTC day (from 2000-01-01) of the minute in progress.
#[derive(Clone, Debug)]
pub struct Date {
    score: Vec<f32>,
    possible: f32,
    lead: Option<Lead>,
}

impl Default for Date {
    fn default() -> Self {
        Date {
            score: vec![0.0; DAYS],
            possible: 0.0,
            lead: None,
        }
    }
}

/// The first day of the date field, 2000-01-01, in days since 1970-01-01.
pub fn first_day() -> i64 {
    days_from_civil(2000, 1, 1)
}

impl Date {
    /// `days` UTC midnights passed.
    pub fn pass(&mut self, days: usize) {
        let days = days.min(DAYS);
        self.score.copy_within(..DAYS - days, days);
        self.score[..days].fill(0.0);
        self.lead = lead(&self.score, self.possible);
    }

    /// A frame whose local date is the UTC date plus `carry` days (0 or 1).
    pub fn add(&mut self, frame: &Frame, carry: usize) {
        // Each field's score for each of its bit patterns, then a sum per day.
        let table = |(first, weights): (usize, &[u32])| -> Vec<f32> {
            (0..1u32 << weights.len())
                .map(|p| agreement(frame, first, weights.len(), p))
                .collect()
        };
        let fields = [
            (table(DAY), DAY),
            (table(WEEKDAY), WEEKDAY),
            (table(MONTH), MONTH),
            (table(YEAR), YEAR),
        ];
        let parity = [-frame[FRAME_BITS - 1], frame[FRAME_BITS - 1]];
        let dates = encoded_dates();
        for (utc, score) in self.score.iter_mut().enumerate() {
            *score *= DECAY;
            let Some(&bits) = dates.get(utc + carry) else {
                continue;
            };
            for (scores, (first, weights)) in &fields {
                let pattern = bits >> (first - DATE_FIRST) & ((1 << weights.len()) - 1);
                *score += scores[pattern as usize];
            }
            *score += parity[(bits >> (FRAME_BITS - 1 - DATE_FIRST)) as usize & 1];
        }
        self.possible = self.possible * DECAY + weight(frame, DATE_FIRST, FRAME_BITS - 1);
        self.lead = lead(&self.score, self.possible);
    }

    pub fn lead(&self) -> Option<Lead> {
        self.lead
    }
}

#[cfg(test)]
mod tests {
    use super::super::frame::{encode, Minute};
    use super::*;
    use crate::time::UtcTime;

    fn soft(minute: &Minute) -> Frame {
        encode(minute).map(|b| if b { 1.0 } else { -1.0 })
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
            let mut frame = soft(&minute(unix, zone));
            // A different pair of bits lost in each frame: none decodes alone.
            for i in [23 + k as usize, 30 + k as usize, 40 + k as usize] {
                frame[i] = 0.0;
            }
            frame[50 + k as usize] *= -0.5;
            tod.minute(&frame);
            let utc = (58 + k as usize) % 1440;
            assert_eq!(offset_hours(&frame, utc), zone);
            date.add(&frame, 0);
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
