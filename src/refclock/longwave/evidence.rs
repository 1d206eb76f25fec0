//! Evidence for the time, gathered across minutes (the approach of Udo Klein's DCF77 library):
//! each frame's soft bits (+1 a sure 1, -1 a sure 0, 0 unknown) score every candidate value,
//! and the scores of earlier frames move on with the minutes elapsed, so the candidate that
//! fits all frames stands out even when no single frame decodes. The time of day is one field
//! of 1440 UTC minutes (the carry from minutes into hours needs no guess, and a change of
//! summer time moves nothing), the date one field of the 36525 days of 2000-2099 (all of a
//! station's date fields and their parities checked together). The station scores a frame
//! (`Station::add_time_of_day`, `Station::date_table`); the fields here add up.

use super::station::Station;
use crate::time::days_from_civil;

/// A frame's soft bits: `[position]`, and MSF's B bits at `[60 + position]`.
pub type Frame = [f32; 120];

/// Known bits, from `[0]` on, as sure soft bits; the rest of the frame unknown.
pub fn sure(bits: &[bool]) -> Frame {
    let mut frame = [0.0; 120];
    for (s, &b) in frame.iter_mut().zip(bits) {
        *s = if b { 1.0 } else { -1.0 };
    }
    frame
}

/// Each frame's evidence counts this much less for every later frame: a time constant of
/// twenty minutes.
pub const DECAY: f32 = 0.95;
pub const MINUTES_PER_DAY: usize = 1440;
const DAYS: usize = 36_525;
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
pub fn agreement(frame: &Frame, first: usize, len: usize, pattern: u32) -> f32 {
    (0..len)
        .map(|i| match pattern >> i & 1 {
            1 => frame[first + i],
            _ => -frame[first + i],
        })
        .sum()
}

/// The sum of a frame's bits' weights from `first` to `last`: the most a candidate can score.
pub fn weight(frame: &Frame, first: usize, last: usize) -> f32 {
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
    pub fn minute<S: Station>(&mut self, frame: &Frame) {
        self.score.rotate_right(1);
        let (possible, carried) = S::add_time_of_day(frame, &mut self.score, DECAY);
        if carried {
            self.frames += 1;
        }
        self.possible = self.possible * DECAY + possible;
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

/// A station's date fields, each a run of frame bits (`(first, length)`, pattern bit 0 at
/// `first`), and each day's pattern of every field.
pub struct DateTable {
    fields: &'static [(usize, usize)],
    patterns: Vec<u32>,
}

impl DateTable {
    /// The table of `fields`, the frame of each day (days since 1970-01-01) from `encode`.
    pub fn new(fields: &'static [(usize, usize)], encode: impl Fn(i64) -> Frame) -> Self {
        let mut patterns = Vec::with_capacity(DAYS * fields.len());
        for d in 0..DAYS as i64 {
            let frame = encode(first_day() + d);
            for &(first, len) in fields {
                let bits = (0..len).filter(|&i| frame[first + i] > 0.0);
                patterns.push(bits.fold(0, |p, i| p | 1 << i));
            }
        }
        DateTable { fields, patterns }
    }
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

    /// A frame whose date is the UTC date plus `carry` days.
    pub fn add<S: Station>(&mut self, frame: &Frame, carry: i64) {
        let table = S::date_table();
        // Each field's score for each of its bit patterns, then a sum per day.
        let fields: Vec<Vec<f32>> = table
            .fields
            .iter()
            .map(|&(first, len)| {
                (0..1u32 << len)
                    .map(|p| agreement(frame, first, len, p))
                    .collect()
            })
            .collect();
        let days = table.patterns.chunks_exact(fields.len());
        let skipped = carry.clamp(0, DAYS as i64) as usize;
        let mut days = days.skip(skipped);
        for (utc, score) in self.score.iter_mut().enumerate() {
            *score *= DECAY;
            if (utc as i64) + carry < 0 {
                continue;
            }
            let Some(patterns) = days.next() else {
                continue;
            };
            for (scores, &pattern) in fields.iter().zip(patterns) {
                *score += scores[pattern as usize];
            }
        }
        let possible: f32 = (table.fields.iter())
            .flat_map(|&(first, len)| &frame[first..first + len])
            .map(|b| b.abs())
            .sum();
        self.possible = self.possible * DECAY + possible;
        self.lead = lead(&self.score, self.possible);
    }

    pub fn lead(&self) -> Option<Lead> {
        self.lead
    }
}
