//! From GPIO edges to labelled seconds and minutes. Pure: edges carry their stream time in
//! seconds; nothing is read from a clock.
//!
//! 1. Level: the line is sampled into 10 ms bins (`level`).
//! 2. Phase: every second folds into one averaged second, and the markers fall where the
//!    part all pulses share stands out (`phase`); rising edges near the markers then refine
//!    it. From then on a local counter numbers the seconds, pulse or no pulse, and each second
//!    is read from its marker: a pulse with soft bits, a marker, no pulse, or noise
//!    (`Station::observe`).
//! 3. Minute mark: the alignment of the minute all seconds fit best (DCF77's second without
//!    a pulse, MSF's and WWVB's markers), from evidence of many minutes (`mark`).
//! 4. Time: each minute's soft bits add evidence for every candidate time of day and date,
//!    carried on with the minutes counted (`evidence`); while the time is not yet known, the
//!    bits of the minute in progress are tried as they arrive (for the date, once its
//!    parities are in: `Station::DATE_PREVIEW_FROM`).
//! 5. Labels: a second is labelled with its UTC only while the phase is seen, the time of day
//!    and the date lead every other candidate clearly, and the time follows the last trusted
//!    one by the seconds elapsed (or leads by far more, to override it); a second without a
//!    pulse at its marker waits for a later pulse to confirm the marker. A leap second is
//!    believed only by what the seconds show where it would be (`Station::end`: DCF77's gap
//!    at second 60 of the announced minute, MSF's marker one second late, WWVB's third marker
//!    in a row).

use super::evidence::{self, Date, Frame, Lead, TimeOfDay, MINUTES_PER_DAY};
use super::level::{Level, Observation, BIN, BINS_PER_SECOND, READ_BINS};
use super::mark::{class, MinuteMark};
use super::phase::PhaseHistogram;
use super::station::{Check, End, Minute, Station, StationKind};
use crate::refclock::dcf77::station::Dcf77;
use crate::refclock::msf::station::Msf;
use crate::refclock::wwvb::station::Wwvb;
use crate::time::UtcTime;

/// Active periods shorter than this are glitches, longer than `Station::MAX_WIDTH` not pulses.
const GLITCH: f64 = 0.040;
/// The phase histogram's contrast needed to find the phase, and to label by it.
const LOCK_CONTRAST: f32 = 0.5;
const LABEL_CONTRAST: f32 = 0.4;
/// Seconds folded before the phase is believed.
const LOCK_SECONDS: u32 = 4;
/// A clear phase this far from the one followed, this many seconds in a row, replaces it.
const PHASE_MOVED: f64 = 0.05;
const PHASE_MOVED_SECONDS: u32 = 10;
/// Rising edges this close to a marker refine the phase, by at most this share each.
const RISE_WINDOW: f64 = 0.05;
const RISE_GAIN: f64 = 0.1;
/// Margins the time of day and the date must lead by: a sure bit that tells two candidates
/// apart adds 2 (3 when read from a clean pulse, `level::CLEAN_BIT`), so this is three such
/// bits, or two clean ones (less what the first frame lost by decay since):
/// one frame, its parity included, can be wrong in two. `OVERRIDE` times that to contradict a
/// trusted time.
const TOD_MARGIN: f32 = 5.5;
const DATE_MARGIN: f32 = 5.5;
/// How well the best time of day and date must fit the bits received: with a tenth or more
/// of the bits wrong, a lead of a few bits may be noise (seen: the hour one off by three
/// frames' zone bits; a date months off among the 36,525 candidates).
const AGREEMENT: f32 = 0.8;
const OVERRIDE: f32 = 3.0;
/// A trusted time binds later ones for this long (the local clock's drift stays far below
/// half a second).
const TRUST_SPAN: f64 = 3600.0;
/// The line silent this long: start again.
const MAX_SILENCE: f64 = 300.0;
/// Stream times beyond this (some 30,000 years) are nonsense: bin numbers must not overflow.
const MAX_TIME: f64 = 1e12;
/// Seconds of observations kept, for the frames before the mark was found.
const KEPT: usize = 128;
/// Room for the frames kept while the time of day is not known, for the date once it is (a
/// station keeps `Station::BACKLOG` of them).
const STASH: usize = 8;
/// Seconds without a pulse held, unlabelled, for a pulse to confirm the phase.
const HOLD: usize = 3;
/// Seconds from second 59 on that a station may need to see where the minute ends.
const TAIL: usize = 4;

/// Signal quality, as dcf77pi shows it.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct Quality {
    pub pulses: u64,
    pub glitches: u64,
    pub wrong_widths: u64,
    /// Pulses starting away from the second's marker.
    pub misaligned: u64,
    /// Seconds drowned in noise.
    pub undecided: u64,
    /// Seconds without a pulse where one was due.
    pub missing: u64,
    pub parity_errors: u64,
    /// Frames failing another check (fixed bits, zone bits, digits, calendar, unsure bits).
    pub bad_frames: u64,
    pub minutes_accepted: u64,
    /// Minutes whose evidence contradicted the trusted time without leading by far enough.
    pub minutes_rejected: u64,
    /// The phase is found and the signal still shows it.
    pub locked: bool,
    /// The 0-bit and 1-bit widths seen, seconds.
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
    /// A minute accepted: it starts at stream time `t` (its second-0 marker).
    Minute { t: f64, minute: Minute },
    /// A second labelled: its marker at stream time `t` marks `utc`.
    Second { t: f64, utc: UtcTime },
}

/// The phase followed and the second counter.
#[derive(Clone, Copy, Debug)]
struct Lock {
    /// Marker of second `n`, the next to read.
    marker: f64,
    n: i64,
    refined: u32,
    moved: u32,
    /// The nearest rising edge to the markers of seconds `n` and `n + 1`: (second, offset).
    rises: [Option<(i64, f64)>; 2],
}

/// Where the minutes begin.
#[derive(Clone, Copy, Debug)]
struct Framing {
    /// Class of the minute mark's second.
    mark: usize,
    /// Counter of the current minute's second 0.
    start: i64,
    /// Second 59 and those after it, while they are deciding where the minute ends (a pulse
    /// in DCF77's gap, or a minute that may hold a leap second): (marker time, what it showed).
    tail: [(f64, Observation); TAIL],
    tail_len: usize,
    /// Second 59 was noise: a missing pulse at second 0 then means the mark moved.
    unsure_mark: bool,
}

/// The minute in progress, when its time is trusted.
#[derive(Clone, Copy, Debug)]
struct Current {
    minute: Minute,
    day: i64,
    of_day: usize,
}

/// A trusted minute: its marker's stream time, UTC minutes since 1970, and whether a leap
/// second was announced (the next minute may then come one second later).
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

#[derive(Clone, Debug)]
pub struct Decoder<S> {
    /// Minutes of evidence needed before the first label.
    confirm: u32,
    level: Option<Level>,
    pulse_start: Option<f64>,
    phase: PhaseHistogram,
    contrast: f32,
    lock: Option<Lock>,
    /// Observations by second, for frames that ended before the mark was found.
    seen: [(i64, Observation); KEPT],
    mark: MinuteMark<S>,
    framing: Option<Framing>,
    tod: TimeOfDay,
    date: Date,
    /// Frames counted since the evidence began, and the last one added to the date: (frame,
    /// its UTC minute of day).
    frames: u64,
    date_ref: Option<(u64, usize)>,
    /// Frames not yet in the date (the time of day was not known): (frame number, bits).
    stash: [Option<(u64, Frame)>; STASH],
    /// Leap-second announcements (DCF77's A2, WWVB's bit 56: unprotected), softly, decaying.
    leap: f32,
    current: Option<Current>,
    /// Labels waiting for a pulse at a marker (at most `HOLD` seconds' worth).
    held: Vec<Event>,
    trusted: Option<Anchor>,
    pub quality: Quality,
}

impl<S: Station> Decoder<S> {
    pub fn new(confirm: usize) -> Self {
        Decoder {
            confirm: confirm.clamp(1, 60) as u32,
            level: None,
            pulse_start: None,
            phase: PhaseHistogram::default(),
            contrast: 0.0,
            lock: None,
            seen: [(i64::MIN, Observation::Unclear); KEPT],
            mark: MinuteMark::default(),
            framing: None,
            tod: TimeOfDay::default(),
            date: Date::default(),
            frames: 0,
            date_ref: None,
            stash: [None; STASH],
            leap: 0.0,
            current: None,
            held: Vec::new(),
            trusted: None,
            quality: Quality {
                widths: S::WIDTHS,
                ..Quality::default()
            },
        }
    }

    /// An edge: at stream time `t` the line became active (carrier reduced) or not.
    pub fn edge(&mut self, t: f64, active: bool) -> Vec<Event> {
        let mut events = Vec::new();
        // Out of range, out of order or repeated edges tell nothing.
        if !t.is_finite() || t.abs() >= MAX_TIME {
            return events;
        }
        let Some(level) = &mut self.level else {
            self.level = Some(Level::new(t, active));
            return events;
        };
        if t < level.filled_to() || active == level.active() {
            return events;
        }
        if t - level.filled_to() > MAX_SILENCE {
            *self = Decoder {
                trusted: self.trusted,
                quality: std::mem::take(&mut self.quality),
                ..Decoder::new(self.confirm as usize)
            };
            self.quality.locked = false;
            self.level = Some(Level::new(t, active));
            return events;
        }
        while let Some(bin) = self.level.as_mut().and_then(|l| l.advance(t)) {
            self.bin_done(bin, &mut events);
        }
        if let Some(level) = &mut self.level {
            level.set(active);
        }
        self.pulse_edge(t, active);
        events
    }

    /// Pulse statistics, and rising edges near a marker for the phase.
    fn pulse_edge(&mut self, t: f64, active: bool) {
        if active {
            self.pulse_start = Some(t);
            if let Some(lock) = &mut self.lock {
                let k = (t - lock.marker).round();
                let offset = t - lock.marker - k;
                let n = lock.n + k as i64;
                if !(0.0..=1.0).contains(&k) || offset.abs() >= RISE_WINDOW {
                    self.quality.misaligned += 1;
                    return;
                }
                let slot = &mut lock.rises[n.rem_euclid(2) as usize];
                if slot.is_none_or(|(m, o)| m != n || offset.abs() < o.abs()) {
                    *slot = Some((n, offset));
                }
            }
            return;
        }
        let Some(start) = self.pulse_start.take() else {
            return;
        };
        let width = t - start;
        self.quality.pulses += 1;
        let widths = &mut self.quality.widths;
        if width < GLITCH {
            self.quality.glitches += 1;
        } else if width > S::MAX_WIDTH {
            self.quality.wrong_widths += 1;
        } else if width < (widths.0 + widths.1) / 2.0 {
            widths.0 += (width - widths.0) * 0.05;
        } else {
            widths.1 += (width - widths.1) * 0.05;
        }
    }

    /// Bin `bin` is complete: fold a finished second into the phase, read seconds whose bins
    /// are all in.
    fn bin_done(&mut self, bin: i64, events: &mut Vec<Event>) {
        let Some(level) = &self.level else {
            return;
        };
        if (bin + 1) % BINS_PER_SECOND == 0 {
            let first = bin + 1 - BINS_PER_SECOND;
            self.phase.fold(level, first);
            self.follow_phase(first);
        }
        while let Some(lock) = self.lock {
            let marker = (lock.marker / BIN).round() as i64;
            if marker + READ_BINS > bin + 1 {
                break;
            }
            let Some(level) = &self.level else {
                return;
            };
            let seen = S::observe(level, marker);
            let mut next = lock;
            next.marker += 1.0;
            next.n += 1;
            if let (true, Some((n, offset))) =
                (seen.pulse(), lock.rises[lock.n.rem_euclid(2) as usize])
            {
                if n == lock.n {
                    next.refined = next.refined.saturating_add(1);
                    next.marker += offset * (1.0 / f64::from(next.refined)).max(RISE_GAIN);
                }
            }
            self.lock = Some(next);
            self.second(lock.n, lock.marker, seen, events);
        }
    }

    /// Finds the phase, or checks the one followed, after grid second `first` was folded.
    fn follow_phase(&mut self, first: i64) {
        let (bin, contrast) = self.phase.best(S::PULSE, S::QUIET);
        self.contrast = contrast;
        self.quality.locked = self.lock.is_some() && contrast >= LABEL_CONTRAST;
        let clear = contrast >= LOCK_CONTRAST && self.phase.seconds() >= LOCK_SECONDS;
        let at = (first + bin as i64) as f64 * BIN;
        match &mut self.lock {
            None if clear => {
                // Count from the oldest second still held: the seconds that found the phase
                // carry bits too.
                let held = self.level.as_ref().map_or(0.0, |l| at - l.start());
                self.lock = Some(Lock {
                    marker: at - held.floor().clamp(0.0, f64::from(LOCK_SECONDS)),
                    n: 0,
                    refined: 0,
                    moved: 0,
                    rises: [None; 2],
                });
            }
            Some(lock) if clear => {
                let d = (at - lock.marker).rem_euclid(1.0);
                if d.min(1.0 - d) <= PHASE_MOVED {
                    lock.moved = 0;
                } else {
                    lock.moved += 1;
                    if lock.moved >= PHASE_MOVED_SECONDS {
                        // Another phase: the seconds counted so far mean nothing there.
                        self.lock = None;
                        self.lose_mark();
                    }
                }
            }
            _ => {}
        }
    }

    /// Second `n` of the counter, its marker at `t`, showed `seen`.
    fn second(&mut self, n: i64, t: f64, seen: Observation, events: &mut Vec<Event>) {
        self.seen[n.rem_euclid(KEPT as i64) as usize] = (n, seen);
        self.mark.second(n, seen);
        if seen == Observation::Unclear {
            self.quality.undecided += 1;
        }
        if self.framing.is_none() {
            if let Some(mark) = self.mark.best() {
                self.start_framing(mark, n, t);
            }
        }
        let Some(framing) = self.framing else {
            return;
        };
        if self.mark.best().is_some_and(|m| m != framing.mark) && framing.tail_len == 0 {
            // The mark moved (found again after noise, or a leap second nobody announced).
            self.realign();
            return;
        }
        match n - framing.start {
            ..0 => {}
            0 if framing.unsure_mark && S::misplaced_start(seen) => {
                // No mark where it was due, and none here either: where is the minute?
                self.lose_mark();
            }
            position @ 0..=58 => {
                if seen == Observation::Absent {
                    self.quality.missing += 1;
                }
                self.label(position, t, seen, events);
                if position >= S::PREVIEW_FROM && self.current.is_none() {
                    self.preview(position, t);
                }
            }
            position => {
                if position == 59 {
                    // Second 59 is itself in either case; what the minute was, what follows
                    // decides.
                    self.label(59, t, seen, events);
                }
                self.minute_end(framing, t, seen, events);
            }
        }
        if let Some(f) = self.framing {
            let bits = (f.start..=n.max(f.start)).map(|k| match self.observed(k) {
                Observation::Present([bit, _]) => Some(bit > 0.0),
                _ => None,
            });
            self.quality.current_bits = bits.collect();
        }
    }

    /// Second 59 or one after it (`seen`, its marker at `t`): the station says whether the
    /// minute ends, and where.
    fn minute_end(
        &mut self,
        mut framing: Framing,
        t: f64,
        seen: Observation,
        events: &mut Vec<Event>,
    ) {
        let leap_minute = self
            .current
            .is_some_and(|c| S::leap_minute(self.leap, c.minute.utc));
        framing.tail[framing.tail_len] = (t, seen);
        framing.tail_len += 1;
        let tail = &framing.tail[..framing.tail_len];
        let seen_tail: Vec<Observation> = tail.iter().map(|s| s.1).collect();
        let (next, leap) = match S::end(&seen_tail, leap_minute) {
            End::Wait if framing.tail_len < TAIL => {
                self.framing = Some(framing);
                return;
            }
            End::Here { unsure } => return self.end_minute(60, t + 1.0, unsure),
            End::Next => (&framing.tail[1..framing.tail_len], false),
            End::Leap => {
                let (t60, seen60) = framing.tail[1];
                self.label(60, t60, seen60, events);
                self.mark.shift();
                framing.mark = class(framing.start + 60);
                self.framing = Some(framing);
                (&framing.tail[2..framing.tail_len], true)
            }
            End::Wait | End::Lost => return self.lose_mark(),
        };
        let last = framing.tail[framing.tail_len - 1].0;
        let start = next.first().map_or(last + 1.0, |s| s.0);
        self.end_minute(60 + i64::from(leap), start, false);
        for (position, &(t, seen)) in next.iter().enumerate() {
            self.label(position as i64, t, seen, events);
        }
    }

    /// What second `n` showed, if still kept.
    fn observed(&self, n: i64) -> Observation {
        match self.seen[n.rem_euclid(KEPT as i64) as usize] {
            (k, seen) if k == n => seen,
            _ => Observation::Unclear,
        }
    }

    /// The mark was found at class `mark`, at second `n`: frames that ended at the marks
    /// still kept count at once.
    fn start_framing(&mut self, mark: usize, n: i64, t: f64) {
        let last = n - (n - mark as i64).rem_euclid(60);
        for end in [last - 60, last] {
            self.add_frame(end - 59, false);
        }
        self.framing = Some(Framing {
            mark,
            start: last + 1,
            tail: [(0.0, Observation::Unclear); TAIL],
            tail_len: 0,
            unsure_mark: false,
        });
        self.decide(
            t + (last - n + 1) as f64,
            self.tod.lead(),
            self.date.lead(),
            self.tod.frames(),
        );
    }

    /// The minute in progress ended after `length` seconds; the next begins at stream time `t`.
    fn end_minute(&mut self, length: i64, t: f64, unsure_mark: bool) {
        let Some(f) = &mut self.framing else {
            return;
        };
        let first = f.start;
        f.start += length;
        f.tail_len = 0;
        f.unsure_mark = unsure_mark;
        self.add_frame(first, length == 61);
        self.decide(t, self.tod.lead(), self.date.lead(), self.tod.frames());
    }

    /// The bits of the frame in progress are in up to `position`, at stream time `t`: with
    /// them (from `Station::PREVIEW_FROM` on) the time of day may be known before the minute
    /// ends.
    fn preview(&mut self, position: i64, t: f64) {
        let Some(f) = self.framing else {
            return;
        };
        let partial = self.frame(f.start, position as usize, false);
        let mut tod = self.tod.clone();
        tod.minute::<S>(&partial);
        // The frame tells the next minute.
        let Some(next) = tod.lead() else {
            return;
        };
        let lead = Lead {
            value: (next.value + MINUTES_PER_DAY - 1) % MINUTES_PER_DAY,
            ..next
        };
        self.update_date(lead);
        let date = self.date_with(&partial, position, lead);
        self.decide(t - position as f64, Some(lead), date, tod.frames());
    }

    /// The date of the minute in progress (UTC minute of day `tod`), with the bits of its frame
    /// that are in up to `position` once they may tell it and every complete frame is in.
    fn date_with(&self, partial: &Frame, position: i64, tod: Lead) -> Option<Lead> {
        let ready = position >= S::DATE_PREVIEW_FROM;
        if !ready || self.date_ref != Some((self.frames, tod.value)) {
            return self.date.lead();
        }
        let next = (tod.value + 1) % MINUTES_PER_DAY;
        // The frame's date is that of the minute at its end, a day on past midnight.
        let carry = S::date_carry(partial, next) + i64::from(next == 0);
        let mut date = self.date.clone();
        date.add::<S>(partial, carry);
        date.lead()
    }

    /// The frame whose bit 0 is second `first`, its bits up to position `upto`; in a minute
    /// with a leap second, bits from `Station::LEAP_AT` on come a second late.
    fn frame(&self, first: i64, upto: usize, leap: bool) -> Frame {
        let mut frame = [0.0; 120];
        for p in 0..=upto.min(59) {
            let n = first + p as i64 + i64::from(leap && p >= S::LEAP_AT);
            [frame[p], frame[60 + p]] = self.observed(n).soft();
        }
        frame
    }

    /// Adds the frame whose bit 0 is second `first` (of a minute with a leap second: `leap`).
    fn add_frame(&mut self, first: i64, leap: bool) {
        let frame = self.frame(first, 59, leap);
        match S::check(&frame) {
            Check::Good => {}
            Check::Parity => self.quality.parity_errors += 1,
            Check::Bad => self.quality.bad_frames += 1,
        }
        self.frames += 1;
        self.tod.minute::<S>(&frame);
        self.leap = self.leap * 0.8 + S::leap_bit(&frame);
        let slot = (self.frames % S::BACKLOG as u64) as usize;
        self.stash[slot] = Some((self.frames, frame));
        if let Some(tod) = self.tod.lead() {
            self.update_date(tod);
        }
    }

    /// Adds the frames not yet in the date, once the time of day (`tod`, of the minute in
    /// progress) is known: near midnight UTC the date sent may be another day.
    fn update_date(&mut self, tod: Lead) {
        if tod.margin < TOD_MARGIN {
            return;
        }
        let mut pending: Vec<(u64, Frame)> = self.stash.iter().flatten().copied().collect();
        pending.sort_by_key(|p| p.0);
        for (k, frame) in pending {
            if self.date_ref.is_some_and(|(last, _)| k <= last) {
                continue;
            }
            let behind = (self.frames - k) as usize % MINUTES_PER_DAY;
            let of_day = (tod.value + MINUTES_PER_DAY - behind) % MINUTES_PER_DAY;
            if let Some((last, last_of_day)) = self.date_ref {
                if (last_of_day + (k - last) as usize) % MINUTES_PER_DAY != of_day {
                    // The time of day is not the one the date was gathered with.
                    self.date = Date::default();
                } else {
                    self.date
                        .pass((last_of_day + (k - last) as usize) / MINUTES_PER_DAY);
                }
            }
            self.date.add::<S>(&frame, S::date_carry(&frame, of_day));
            self.date_ref = Some((k, of_day));
        }
    }

    /// Decides whether the minute starting at stream time `t` is trusted, by the evidence of
    /// `frames` frames for its time of day `tod` and its `date`.
    fn decide(&mut self, t: f64, tod: Option<Lead>, date: Option<Lead>, frames: u32) {
        self.current = None;
        let (Some(tod), Some(date)) = (tod, date) else {
            return;
        };
        let fits = tod.agreement.min(date.agreement) >= AGREEMENT;
        if frames < self.confirm || tod.margin < TOD_MARGIN || date.margin < DATE_MARGIN || !fits {
            return;
        }
        let day = evidence::first_day() + date.value as i64;
        let utc = UtcTime {
            day,
            second: tod.value as u32 * 60,
            nanos: 0,
        };
        let now = Anchor {
            t,
            minute: day * MINUTES_PER_DAY as i64 + tod.value as i64,
            // Announced, or (MSF) where one may come unannounced.
            leap: self.leap >= 1.0 || S::leap_minute(self.leap, utc),
        };
        let follows = self.trusted.is_some_and(|a| a.followed_by(&now));
        let expired = self.trusted.is_none_or(|a| t - a.t > TRUST_SPAN);
        let strong = tod.margin >= OVERRIDE * TOD_MARGIN && date.margin >= OVERRIDE * DATE_MARGIN;
        if !(follows || expired || strong) {
            self.quality.minutes_rejected += 1;
            return;
        }
        if !follows && !expired {
            tracing::warn!(
                "{}: following a new time that the minutes since agree on",
                S::KIND.label()
            );
        }
        self.trusted = Some(now);
        let frame =
            self.stash[(self.frames % S::BACKLOG as u64) as usize].map_or([0.0; 120], |(_, f)| f);
        self.current = Some(Current {
            minute: S::minute(&frame, utc),
            day,
            of_day: tod.value,
        });
    }

    /// Labels the second at `position` of the minute in progress, when all is known. A second
    /// without a pulse at its marker is held until a later pulse shows the marker is still
    /// where the counter puts it (the receiver's phase may have moved), at most `HOLD` of them.
    fn label(&mut self, position: i64, t: f64, seen: Observation, events: &mut Vec<Event>) {
        let Some(current) = self.current.filter(|_| self.contrast >= LABEL_CONTRAST) else {
            self.held.clear();
            return;
        };
        let held = self
            .held
            .iter()
            .filter(|e| matches!(e, Event::Second { .. }));
        if held.count() >= HOLD {
            self.held.clear();
        }
        if position == 0 {
            self.held.push(Event::Minute {
                t,
                minute: current.minute,
            });
        }
        self.held.push(Event::Second {
            t,
            utc: UtcTime {
                day: current.day,
                second: current.of_day as u32 * 60 + position as u32,
                nanos: 0,
            },
        });
        if seen.pulse() {
            for e in self.held.drain(..) {
                if let Event::Minute { minute, .. } = e {
                    self.quality.minutes_accepted += 1;
                    self.quality.last_accepted = Some(minute);
                }
                events.push(e);
            }
        }
    }

    /// Nothing says where the minute is: find the mark again from scratch.
    fn lose_mark(&mut self) {
        self.mark = MinuteMark::default();
        self.realign();
    }

    /// The minutes are lost: the evidence gathered with them means nothing now. The trusted
    /// time stays, to check the next against.
    fn realign(&mut self) {
        self.framing = None;
        self.tod = TimeOfDay::default();
        self.date = Date::default();
        self.frames = 0;
        self.date_ref = None;
        self.stash = [None; STASH];
        self.leap = 0.0;
        self.current = None;
        self.held.clear();
    }
}

/// Every event a decoder for `station` gives for a capture's edges (level `true` = line high).
pub fn decode(
    station: StationKind,
    edges: &[(f64, bool)],
    active_low: bool,
    confirm: usize,
) -> Vec<Event> {
    fn run<S: Station>(edges: &[(f64, bool)], active_low: bool, confirm: usize) -> Vec<Event> {
        let mut decoder = Decoder::<S>::new(confirm);
        edges
            .iter()
            .flat_map(|&(t, level)| decoder.edge(t, level != active_low))
            .collect()
    }
    match station {
        StationKind::Dcf77 => run::<Dcf77>(edges, active_low, confirm),
        StationKind::Msf => run::<Msf>(edges, active_low, confirm),
        StationKind::Wwvb => run::<Wwvb>(edges, active_low, confirm),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::sim::longwave::LongwaveSignal;
    use crate::sim::longwave_bench::{evaluate, scenarios, score};
    use crate::time::days_from_civil;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]
        #[test]
        fn hostile_edges_never_panic(
            steps in proptest::collection::vec((any::<f64>(), 0.0..2.0f64, any::<bool>(), 0u8..8), 0..3000)
        ) {
            let mut t = 0.0;
            let edges: Vec<(f64, bool)> = steps
                .into_iter()
                .map(|(wild, step, active, kind)| {
                    // Mostly plausible steps, now and then anything at all.
                    t = match kind {
                        0 => wild,
                        1 => t - step,
                        2 => t + 400.0 * step,
                        _ => t + step * 0.2,
                    };
                    (t, active)
                })
                .collect();
            for station in StationKind::ALL {
                for e in decode(station, &edges, false, 1) {
                    if let Event::Second { utc, .. } = e {
                        prop_assert!(utc.second <= 86_400);
                    }
                }
            }
        }
    }

    #[test]
    fn a_jump_of_the_receivers_phase_costs_labels_not_truth() {
        // Half a second into the stream's eighth minute the module's delay jumps by 0.4 s.
        let signal = LongwaveSignal {
            duration: 1200.0,
            ..LongwaveSignal::default()
        };
        let generated = signal.generate();
        let shifted: Vec<(f64, bool)> = generated
            .edges
            .iter()
            .map(|&(t, level)| (if t > 480.5 { t + 0.4 } else { t }, level))
            .collect();
        let events = decode(StationKind::Dcf77, &shifted, false, 2);
        let before: Vec<Event> = events
            .iter()
            .copied()
            .filter(|e| matches!(e, Event::Second { t, .. } if *t < 480.5))
            .collect();
        let after: Vec<(f64, UtcTime)> = events
            .iter()
            .filter_map(|e| match *e {
                Event::Second { t, utc } if t >= 480.5 => Some((t - 0.4, utc)),
                _ => None,
            })
            .collect();
        assert_eq!(score(&signal, &generated, &before).wrong_labels, 0);
        // After the jump, every label names the second whose (moved) pulse it is.
        for (t, utc) in &after {
            let truth = generated
                .seconds
                .iter()
                .find(|s| (s.0 - t).abs() < 0.1)
                .map(|s| s.1);
            assert_eq!(truth, Some(*utc), "at {t}");
        }
        assert!(after.len() > 400, "labels resume: {}", after.len());
    }

    #[test]
    fn the_first_label_from_the_frame_in_progress_is_right_across_midnight() {
        // The first labels come while a frame is in progress, its date scored with the rest:
        // here the frame that ends at midnight, UTC or local, summer and winter.
        for station in StationKind::ALL {
            for (month, midnight) in [(1, 0), (1, 23), (7, 0), (7, 22), (7, 23)] {
                for early in [100, 115, 130, 145] {
                    let signal = LongwaveSignal {
                        station,
                        start: (days_from_civil(2027, month, 15) * 24 + midnight) * 3600 - early,
                        duration: 300.0,
                        ..LongwaveSignal::default()
                    };
                    let s = evaluate(&signal, 2);
                    let at = (station, month, midnight, early);
                    assert_eq!((s.wrong_labels, s.wrong), (0, 0), "{at:?}");
                    assert!(s.first_label.is_some(), "{at:?}");
                }
            }
        }
    }

    #[test]
    fn a_frame_in_progress_tells_the_date_only_with_its_parities() {
        // MSF under 40 ms of edge jitter, which fakes a clean reading of the other bit in
        // one pulse in 25: hour 23 led 21 (one bit apart, the parity 57B not yet in) just as
        // the date bits of the frame in progress, their parities 54B-56B not yet in either,
        // completed the date: 20 wrong labels when that frame counted from bit 39 on.
        let jitter_40ms = scenarios(StationKind::Msf, 60)
            .into_iter()
            .find(|s| s.name == "jitter_40ms")
            .expect("a scenario of 40 ms jitter");
        assert_eq!(evaluate(&jitter_40ms.seeded(158), 2).wrong_labels, 0);
    }
}
