//! From GPIO edges to accepted DCF77 minutes. Pure: edges carry their stream time in seconds.
//!
//! 1. Pulses: an active period from a rising to a falling edge; dropouts shorter than
//!    `MERGE_GAP` inside a pulse are bridged, active periods shorter than `GLITCH` or longer than
//!    `MAX_WIDTH` are noise.
//! 2. Seconds: three pulses a whole number of seconds apart lock the phase; after that each
//!    pulse must start within `ALIGN` of a second's start, and each second gets a slot: a bit
//!    (0 for ~100 ms, 1 for ~200 ms, undecided near the threshold, which adapts to the receiver
//!    from bits 0 and 20), or empty. Missing pulses leave empty slots, so the count survives.
//! 3. Minutes: a pulse after an empty slot (or, once the count is known, the 60th or 61st slot)
//!    starts a minute; the 59 slots before it are the frame (`frame::decode`).
//! 4. Trust: a decoded minute is accepted only when it follows the last accepted one (by the
//!    minutes elapsed) or, at start-up, when `confirm` decoded minutes in a row agree.

use std::collections::VecDeque;

use super::frame::{self, FrameError, Minute, FRAME_BITS};
use crate::time::UtcTime;

/// Active periods shorter than this are noise.
const GLITCH: f64 = 0.040;
/// Longer ones are not DCF77 pulses (those are 100 or 200 ms).
const MAX_WIDTH: f64 = 0.300;
/// A dropout this short inside a pulse is noise, bridged.
const MERGE_GAP: f64 = 0.030;
/// A pulse further than this from its second's start is not a second marker.
const ALIGN: f64 = 0.080;
/// While unlocked: how close to a whole number of seconds pulses must be to lock.
const ACQUIRE_ALIGN: f64 = 0.030;
/// Widths this close to the threshold are undecided.
const UNDECIDED_BAND: f64 = 0.012;
/// Pulses in a row that miss their second before the phase is dropped.
const MAX_MISALIGNED: u32 = 10;
/// Minutes a trusted time is carried by counting seconds without a new accepted minute.
const FLYWHEEL_MINUTES: i64 = 10;

#[derive(Clone, Copy, Debug, PartialEq)]
struct Slot {
    /// Start of the pulse (or of the second, for an empty slot), stream seconds.
    t: f64,
    width: Option<f64>,
    bit: Option<bool>,
    /// Two pulses in this second: which was the marker is anyone's guess.
    doubled: bool,
}

impl Slot {
    fn empty(&self) -> bool {
        self.width.is_none()
    }
}

/// Signal quality, as dcf77pi shows it.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct Quality {
    pub pulses: u64,
    pub glitches: u64,
    pub wrong_widths: u64,
    /// Pulses away from the second's start.
    pub misaligned: u64,
    /// Seconds with a pulse too near the threshold, or two pulses.
    pub undecided: u64,
    /// Seconds without a pulse where one was due.
    pub missing: u64,
    pub parity_errors: u64,
    /// Frames failing another check (start bits, zone bits, digits, calendar, undecided bits).
    pub bad_frames: u64,
    pub minutes_accepted: u64,
    /// Frames that decoded but did not fit the minutes before them.
    pub minutes_rejected: u64,
    pub locked: bool,
    /// The 0-bit and 1-bit widths learned, seconds.
    #[serde(skip)]
    pub widths: (f64, f64),
    #[serde(skip)]
    pub last_accepted: Option<Minute>,
    /// The bits of the minute in progress, as they arrive.
    #[serde(skip)]
    pub current_bits: Vec<Option<bool>>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Event {
    /// A minute accepted: it starts at stream time `t` (its second-0 edge).
    Minute { t: f64, minute: Minute },
    /// A second marker: the pulse starting at `t` marks `utc` (the minute's time is trusted).
    Second { t: f64, utc: UtcTime },
}

#[derive(Clone, Debug)]
pub struct Dcf77Decoder {
    /// Decoded minutes in a row that must agree before the first is accepted.
    confirm: usize,
    active: bool,
    pulse_start: Option<f64>,
    /// A finished pulse, held until no dropout could continue it.
    pending: Option<(f64, f64)>,
    /// Start of the newest slot's second, once locked.
    phase: Option<f64>,
    acquiring: VecDeque<f64>,
    misaligned_run: u32,
    slots: VecDeque<Slot>,
    /// Second number of the newest slot, once a minute has been decoded.
    count: Option<usize>,
    minute_length: usize,
    /// The minute in progress, when trusted (accepted, or carried from one that was).
    current: Option<UtcTime>,
    /// Last accepted minute.
    trusted: Option<Anchor>,
    streak: Vec<Anchor>,
    /// Minutes in a row that did not decode where the count put them.
    failures: u32,
    pub quality: Quality,
}

/// A decoded minute: where it started, which it was, whether it announced a leap second.
#[derive(Clone, Copy, Debug)]
struct Anchor {
    t: f64,
    minute: i64,
    leap: bool,
}

impl Anchor {
    /// Whether `later` is whole minutes after this one, to the second.
    fn followed_by(&self, later: &Anchor) -> bool {
        let elapsed = later.t - self.t;
        let k = later.minute - self.minute;
        let extra = elapsed - 60.0 * k as f64;
        k >= 1 && (extra.abs() < 0.5 || (self.leap && (extra - 1.0).abs() < 0.5))
    }
}

fn minutes(m: &Minute) -> i64 {
    m.utc.day * 1440 + i64::from(m.utc.second / 60)
}

impl Dcf77Decoder {
    pub fn new(confirm: usize) -> Self {
        Dcf77Decoder {
            confirm: confirm.max(1),
            active: false,
            pulse_start: None,
            pending: None,
            phase: None,
            acquiring: VecDeque::new(),
            misaligned_run: 0,
            slots: VecDeque::new(),
            count: None,
            minute_length: 60,
            current: None,
            trusted: None,
            streak: Vec::new(),
            failures: 0,
            quality: Quality {
                widths: (0.1, 0.2),
                ..Quality::default()
            },
        }
    }

    /// An edge: at stream time `t` the line became active (carrier reduced) or not.
    pub fn edge(&mut self, t: f64, active: bool) -> Vec<Event> {
        let mut events = Vec::new();
        if active == self.active || !t.is_finite() {
            return events;
        }
        self.active = active;
        if active {
            if let Some((start, end)) = self.pending.take() {
                if t - end < MERGE_GAP {
                    self.pulse_start = Some(start);
                    return events;
                }
                self.pulse(start, end - start, &mut events);
            }
            self.pulse_start = Some(t);
        } else if let Some(start) = self.pulse_start.take() {
            self.pending = Some((start, t));
        }
        events
    }

    /// Processes a pulse still held back (at the end of a capture).
    pub fn finish(&mut self) -> Vec<Event> {
        let mut events = Vec::new();
        if let Some((start, end)) = self.pending.take() {
            self.pulse(start, end - start, &mut events);
        }
        events
    }

    fn pulse(&mut self, start: f64, width: f64, events: &mut Vec<Event>) {
        self.quality.pulses += 1;
        if width < GLITCH {
            self.quality.glitches += 1;
            return;
        }
        if width > MAX_WIDTH {
            self.quality.wrong_widths += 1;
            return;
        }
        let Some(phase) = self.phase else {
            self.acquire(start, width);
            return;
        };
        let n = (start - phase).round();
        let residual = start - phase - n;
        if n < 0.0 || residual.abs() > ALIGN {
            self.quality.misaligned += 1;
            self.misaligned_run += 1;
            if self.misaligned_run > MAX_MISALIGNED {
                self.unlock();
            }
            return;
        }
        self.misaligned_run = 0;
        if n == 0.0 {
            // Two pulses in one second: which is the marker is anyone's guess.
            if let Some(last) = self.slots.back_mut() {
                last.bit = None;
                last.doubled = true;
            }
            self.quality.undecided += 1;
            return;
        }
        if n > 300.0 {
            // Five minutes without a pulse: start again.
            self.unlock();
            self.acquire(start, width);
            return;
        }
        // Follow the receiver's phase slowly; one pulse's jitter must not move it much.
        self.phase = Some(phase + n + residual * 0.2);
        for k in 1..n as usize {
            let slot = Slot {
                t: phase + k as f64,
                width: None,
                bit: None,
                doubled: false,
            };
            self.push(slot, events);
        }
        let bit = self.classify(width);
        self.push(
            Slot {
                t: start,
                width: Some(width),
                bit,
                doubled: false,
            },
            events,
        );
    }

    fn acquire(&mut self, start: f64, width: f64) {
        if !(0.05..=0.26).contains(&width) {
            return;
        }
        // Only the last five seconds count (and none from the future: the clock may step).
        self.acquiring
            .retain(|&s| (0.0..=5.0).contains(&(start - s)));
        let aligned = self
            .acquiring
            .iter()
            .filter(|&&s| {
                let d = start - s;
                d.round() >= 1.0 && (d - d.round()).abs() < ACQUIRE_ALIGN
            })
            .count();
        self.acquiring.push_back(start);
        if aligned >= 2 {
            self.phase = Some(start);
            self.quality.locked = true;
            self.acquiring.clear();
            self.slots.clear();
            self.count = None;
            let bit = self.classify(width);
            self.slots.push_back(Slot {
                t: start,
                width: Some(width),
                bit,
                doubled: false,
            });
        }
    }

    fn unlock(&mut self) {
        self.phase = None;
        self.quality.locked = false;
        self.misaligned_run = 0;
        self.slots.clear();
        self.count = None;
        self.current = None;
    }

    fn threshold(&self) -> f64 {
        (self.quality.widths.0 + self.quality.widths.1) / 2.0
    }

    fn classify(&mut self, width: f64) -> Option<bool> {
        let threshold = self.threshold();
        if (width - threshold).abs() < UNDECIDED_BAND {
            self.quality.undecided += 1;
            None
        } else {
            Some(width > threshold)
        }
    }

    /// Adds the next second's slot, and decodes a minute when this slot starts one.
    fn push(&mut self, slot: Slot, events: &mut Vec<Event>) {
        let previous = self.slots.back().copied();
        self.slots.push_back(slot);
        if self.slots.len() > 2 * FRAME_BITS + 4 {
            self.slots.pop_front();
        }
        let starts_minute = match self.count {
            // Second 60 exists only in a leap minute: an empty second after a pulse at 59.
            // The gap decides, not the (unprotected) A2 bit.
            Some(59) if slot.empty() && previous.is_some_and(|p| !p.empty()) => {
                self.minute_length = 61;
                false
            }
            Some(c) => c + 1 >= self.minute_length,
            None => !slot.empty() && previous.is_some_and(|p| p.empty()),
        };
        if starts_minute {
            self.minute_start(events);
        } else if let Some(c) = &mut self.count {
            *c += 1;
            if slot.empty() {
                self.quality.missing += 1;
            }
        }
        let second = self.count.unwrap_or(0);
        if let (Some(minute), false) = (self.current, slot.empty()) {
            if second < 60 {
                let utc = UtcTime {
                    second: minute.second + second as u32,
                    ..minute
                };
                events.push(Event::Second { t: slot.t, utc });
            }
        }
        self.quality.current_bits = self.minute_so_far();
    }

    /// The bits since the minute began (while the count is unknown, the last ones).
    fn minute_so_far(&self) -> Vec<Option<bool>> {
        let n = self
            .count
            .map_or(FRAME_BITS, |c| c + 1)
            .min(self.slots.len());
        self.slots
            .iter()
            .skip(self.slots.len() - n)
            .map(|s| s.bit)
            .collect()
    }

    /// The newest slot starts a minute: decode the frame before it.
    fn minute_start(&mut self, events: &mut Vec<Event>) {
        let newest = self.slots.len() - 1;
        let t = self.slots[newest].t;
        // A leap minute has 61 seconds: a 0 bit at second 59, the mark at second 60.
        let leap_first = self.minute_length == 61;
        let layouts = if leap_first { [1, 0] } else { [0, 1] };
        // First with the bits as decided (one undecided bit per parity group is filled in);
        // then, if bits stayed undecided, with every width against the threshold, leaving it to
        // the parities, the calendar and the minutes before to catch a wrong guess.
        let mut result = Err(FrameError::Undecided);
        let mut last_bit = 0;
        'layouts: for hard in [false, true] {
            for extra in layouts {
                let Some(last) = newest.checked_sub(2 + extra) else {
                    continue;
                };
                last_bit = last;
                result = self.frame(newest, extra, hard).and_then(|mut bits| {
                    frame::resolve(&mut bits);
                    frame::decode(&bits)
                });
                if result.is_ok() {
                    break 'layouts;
                }
            }
            if result != Err(FrameError::Undecided) {
                break;
            }
        }
        let elapsed_current = self.current;
        self.current = None;
        let leap_minute = self.minute_length == 61;
        self.minute_length = 60;
        match result {
            Ok(minute) => {
                self.learn_widths(last_bit);
                if self.trust(t, &minute) {
                    // Only a trusted minute fixes the count of seconds.
                    self.count = Some(0);
                    self.failures = 0;
                    self.quality.minutes_accepted += 1;
                    self.quality.last_accepted = Some(minute);
                    self.current = Some(minute.utc);
                    events.push(Event::Minute { t, minute });
                } else {
                    self.quality.minutes_rejected += 1;
                    self.count = None;
                }
            }
            Err(e) => {
                match e {
                    FrameError::Parity => self.quality.parity_errors += 1,
                    _ => self.quality.bad_frames += 1,
                }
                self.failures += 1;
                // A guessed leap second that was not one, or two failures in a row where the
                // count put the minute: the count may be wrong, so find the gap again.
                if leap_minute || self.failures >= 2 {
                    self.count = None;
                }
                if let Some(c) = &mut self.count {
                    *c = 0;
                    // Carry a trusted time over a minute that did not decode.
                    if let (Some(prev), Some(anchor)) = (elapsed_current, self.trusted) {
                        let next = prev.day * 1440 + i64::from(prev.second / 60) + 1;
                        if next - anchor.minute <= FLYWHEEL_MINUTES && t - anchor.t < 60.0 * 11.0 {
                            self.current = Some(UtcTime {
                                day: next.div_euclid(1440),
                                second: (next.rem_euclid(1440) * 60) as u32,
                                nanos: 0,
                            });
                        }
                    }
                }
            }
        }
    }

    /// The 59 bits before the minute mark (the empty slot before `newest`). With `extra` = 1 (a
    /// leap minute) a 0 bit, second 59, stands between bit 58 and the mark. Seconds before
    /// the first slot seen are unknown.
    fn frame(
        &self,
        newest: usize,
        extra: usize,
        hard: bool,
    ) -> Result<[Option<bool>; FRAME_BITS], FrameError> {
        let last = newest.checked_sub(2 + extra).ok_or(FrameError::Undecided)?;
        // Before the count is known, only a missing pulse marks the minute.
        if self.count.is_none() && !self.slots[newest - 1].empty() {
            return Err(FrameError::Undecided);
        }
        if extra == 1 && self.slots[newest - 2].bit != Some(false) {
            return Err(FrameError::StartBits);
        }
        let mut bits = [None; FRAME_BITS];
        for (i, bit) in bits.iter_mut().enumerate() {
            if let Some(j) = last.checked_sub(FRAME_BITS - 1 - i) {
                let slot = self.slots[j];
                *bit = match (hard, slot.width) {
                    (true, Some(w)) if !slot.doubled => Some(w > self.threshold()),
                    _ => slot.bit,
                };
            }
        }
        Ok(bits)
    }

    /// Bits 0 and 20 of a good frame are always 0 and 1: they teach the receiver's widths.
    /// `last` is the slot of bit 58.
    fn learn_widths(&mut self, last: usize) {
        let width = |bit: usize| {
            last.checked_sub(FRAME_BITS - 1 - bit)
                .and_then(|j| self.slots.get(j))
                .and_then(|s| s.width)
        };
        let (w0, w1) = (width(0), width(20));
        let widths = &mut self.quality.widths;
        if let Some(w) = w0 {
            widths.0 += (w - widths.0) * 0.25;
        }
        if let Some(w) = w1 {
            widths.1 += (w - widths.1) * 0.25;
        }
    }

    /// Whether a decoded minute can be believed: it follows the last accepted one (whole
    /// minutes later, to the second, one more if a leap second was announced), or `confirm`
    /// decoded minutes in a row agree (more when they contradict a trusted time).
    fn trust(&mut self, t: f64, minute: &Minute) -> bool {
        let now = Anchor {
            t,
            minute: minutes(minute),
            leap: minute.leap_announced,
        };
        if self.trusted.is_some_and(|a| a.followed_by(&now)) {
            self.trusted = Some(now);
            self.streak.clear();
            return true;
        }
        if !self.streak.last().is_some_and(|a| a.followed_by(&now)) {
            self.streak.clear();
        }
        self.streak.push(now);
        let needed = if self.trusted.is_some() {
            self.confirm.max(3)
        } else {
            self.confirm
        };
        if self.streak.len() >= needed {
            if self.trusted.is_some() {
                tracing::warn!(
                    "DCF77: following a new time that {needed} minutes in a row agree on"
                );
            }
            self.trusted = Some(now);
            self.streak.clear();
            return true;
        }
        false
    }
}

/// Every event a decoder gives for a capture's edges (level `true` = line high).
pub fn decode(edges: &[(f64, bool)], active_low: bool, confirm: usize) -> Vec<Event> {
    let mut decoder = Dcf77Decoder::new(confirm);
    let mut events = Vec::new();
    for &(t, level) in edges {
        events.extend(decoder.edge(t, level != active_low));
    }
    events.extend(decoder.finish());
    events
}
