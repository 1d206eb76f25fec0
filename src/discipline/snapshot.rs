//! The clock state the discipline publishes and everything else reads: immutable once built,
//! swapped atomically, so the NTP hot path never takes a lock.

use crate::clock::change::ClockChanges;
use crate::time::Leap;
use crate::time::{NtpTimestamp, Realtime};

use crate::clock::PHI;

/// How the time pitime serves relates to the system clock. With the kernel actuator the system
/// clock is steered and this is the identity; with the virtual actuator the correction lives
/// here: served = realtime + offset + freq * (realtime - epoch).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Correction {
    pub epoch: Realtime,
    pub offset: f64,
    pub freq: f64,
    /// A leap second at the end of this UTC day, when the served time must carry it.
    pub leap: Option<LeapCorrection>,
}

/// How the served time passes a leap second.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LeapCorrection {
    /// Midnight UTC at the end of the day with the leap second.
    pub at: Realtime,
    pub leap: Leap,
    /// The served time carries the leap itself (virtual actuator, or any smear); otherwise
    /// the kernel inserts or deletes it in the system clock.
    pub step: bool,
    /// Spread the second over `SMEAR_WINDOW` around `at` instead of repeating or skipping
    /// 23:59:59 (non-standard, off by default).
    pub smear: bool,
    /// The loop has taken the leap over: the corrected time is UTC again, one second behind
    /// (inserted) or ahead (deleted) of a clock that never leapt.
    pub folded: bool,
}

/// Seconds over which a smeared leap second is spread (Google's noon-to-noon smear).
pub const SMEAR_WINDOW: f64 = 86_400.0;

impl LeapCorrection {
    /// The served time for `linear`, the time corrected for phase and frequency only.
    fn apply(&self, linear: Realtime) -> Realtime {
        if !self.step {
            return linear;
        }
        // Seconds the leap adds to the day: 1 inserted, -1 deleted.
        let added = match self.leap {
            Leap::Insert => 1.0,
            Leap::Delete => -1.0,
            Leap::None | Leap::Unsynchronised => return linear,
        };
        // Time on a clock that never leapt, which has no second to repeat or skip.
        let continuous = match self.folded {
            true => linear.add_secs_f64(added),
            false => linear,
        };
        if self.smear {
            // Google's smear: linear over the window, which lasts `SMEAR_WINDOW + added` of
            // continuous time from the noon before; UTC at both ends.
            let start = self.at.add_secs_f64(-SMEAR_WINDOW / 2.0);
            let share = (continuous.seconds_since(start) / (SMEAR_WINDOW + added)).clamp(0.0, 1.0);
            return continuous.add_secs_f64(-added * share);
        }
        match (self.leap, continuous.seconds_since(self.at)) {
            // 23:59:59 is served twice, as the kernel does it.
            (Leap::Insert, since) if since >= 0.0 => continuous.add_secs_f64(-1.0),
            // 23:59:59 never comes.
            (Leap::Delete, since) if since >= -1.0 => continuous.add_secs_f64(1.0),
            _ => continuous,
        }
    }
}

impl Correction {
    pub fn apply(&self, t: Realtime) -> Realtime {
        if self.offset == 0.0 && self.freq == 0.0 && self.leap.is_none() {
            return t;
        }
        let linear = t.add_secs_f64(self.offset + self.freq * t.seconds_since(self.epoch));
        match &self.leap {
            Some(l) => l.apply(linear),
            None => linear,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct ClockSnapshot {
    /// Whether the clock is synchronised to some reference; when false pitime serves LI=3,
    /// stratum 16 so that clients ignore it.
    pub synchronised: bool,
    /// Leap second announced for the end of the current day (None/Insert/Delete).
    pub leap: Leap,
    pub stratum: u8,
    /// Reference identifier: a four-letter code at stratum 1, an address at stratum 2 and above.
    pub refid: [u8; 4],
    /// When the clock was last set or confirmed by its reference (served timescale).
    pub reference_time: Realtime,
    /// Round-trip delay to the primary reference, seconds.
    pub root_delay: f64,
    /// Error bound relative to the primary reference at `reference_time`, seconds.
    pub root_dispersion: f64,
    /// log2 of the clock's reading precision, seconds.
    pub precision: i8,
    pub correction: Correction,
    /// How fast the error bound grows after `reference_time` (dimensionless): PHI for a
    /// free-running clock, the learned frequency's uncertainty for a disciplined one.
    pub dispersion_rate: f64,
    /// The clock's total frequency correction (actuator plus served), dimensionless.
    pub frequency: f64,
    /// The kernel actuator's steps and frequency changes since start: parts that keep local
    /// times restate them when these change (`clock::change`).
    pub changes: ClockChanges,
    /// A source that labels whole seconds by itself (not a pulse) agrees with the clock.
    pub numbering: bool,
}

impl ClockSnapshot {
    /// The system clock served as it is (with what the discipline last learned, if anything)
    /// at a `local` source's high stratum, so that clients can tell it from real time:
    /// ntpd's LOCAL driver, chrony's `local stratum`. The last resort.
    pub fn local(stratum: u8, now: Realtime, precision: i8, correction: Correction) -> Self {
        ClockSnapshot {
            synchronised: true,
            leap: Leap::None,
            stratum,
            refid: *b"LOCL",
            reference_time: now,
            root_delay: 0.0,
            root_dispersion: 2f64.powi(precision.into()),
            precision,
            correction,
            dispersion_rate: PHI,
            frequency: correction.freq,
            changes: Default::default(),
            numbering: false,
        }
    }

    /// A clock following a pulse at stratum 1, with a leap second announced: for tests and
    /// fuzzing.
    #[doc(hidden)]
    pub fn example() -> Self {
        ClockSnapshot {
            synchronised: true,
            leap: Leap::Insert,
            stratum: 1,
            refid: *b"PPS\0",
            reference_time: Realtime::from_timespec(1_800_000_000, 0),
            root_delay: 0.0,
            root_dispersion: 1e-6,
            ..ClockSnapshot::unsynchronised(-20)
        }
    }

    /// The state before any reference is usable.
    pub fn unsynchronised(precision: i8) -> Self {
        ClockSnapshot {
            synchronised: false,
            leap: Leap::Unsynchronised,
            stratum: 16,
            refid: *b"INIT",
            reference_time: Realtime::default(),
            root_delay: 0.0,
            root_dispersion: 0.0,
            precision,
            correction: Correction::default(),
            dispersion_rate: PHI,
            frequency: 0.0,
            changes: ClockChanges::default(),
            numbering: false,
        }
    }

    /// The estimate (served time - local time) at local time `at` for numbering PPS pulses that
    /// no sentence labels, when a source other than a pulse (DCF77, an upstream server) vouches
    /// for the second: never from the pulses alone, which would keep themselves alive.
    pub fn numbering_offset(&self, at: Realtime) -> Option<f64> {
        (self.synchronised && self.numbering && self.root_dispersion < 0.1)
            .then(|| self.correction.apply(at).seconds_since(at))
    }

    /// The leap indicator clients are told: unsynchronised (3) until a reference is usable.
    pub fn served_leap(&self) -> Leap {
        match self.synchronised {
            true => self.leap,
            false => Leap::Unsynchronised,
        }
    }

    /// The stratum clients are told: 16 (unusable) until a reference is usable.
    pub fn served_stratum(&self) -> u8 {
        match self.synchronised {
            true => self.stratum,
            false => 16,
        }
    }

    /// The reference timestamp clients are told: zero until a reference is usable.
    pub fn served_reference(&self) -> NtpTimestamp {
        match self.synchronised {
            true => self.reference_time.to_ntp(),
            false => NtpTimestamp::ZERO,
        }
    }

    /// Root dispersion at `now`: the bound grows since the reference time.
    pub fn root_dispersion_at(&self, now: Realtime) -> f64 {
        self.root_dispersion
            + self.dispersion_rate * now.seconds_since(self.reference_time).max(0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dispersion_grows_at_phi() {
        let mut s = ClockSnapshot::unsynchronised(-20);
        s.reference_time = Realtime::from_timespec(1000, 0);
        s.root_dispersion = 1e-3;
        let later = Realtime::from_timespec(2000, 0);
        assert!((s.root_dispersion_at(later) - (1e-3 + 1000.0 * PHI)).abs() < 1e-12);
        // Before the reference time (clock stepped back) the bound does not shrink.
        assert_eq!(s.root_dispersion_at(Realtime::from_timespec(0, 0)), 1e-3);
    }

    #[test]
    fn leap_seconds_repeat_or_skip_23_59_59_or_are_smeared() {
        // The leap second at the end of 2016; times on a clock that never leapt.
        let at = Realtime::from_timespec(1_483_228_800, 0);
        let leap = |leap, smear, folded| LeapCorrection {
            at,
            leap,
            step: true,
            smear,
            folded,
        };
        let served =
            |l: LeapCorrection, since: f64| l.apply(at.add_secs_f64(since)).seconds_since(at);
        let insert = leap(Leap::Insert, false, false);
        assert_eq!((served(insert, -0.5), served(insert, 0.5)), (-0.5, -0.5));
        let delete = leap(Leap::Delete, false, false);
        assert_eq!((served(delete, -1.5), served(delete, -0.5)), (-1.5, 0.5));
        // Google's smear: 6 h before the leap a quarter of the second is absorbed, at the leap
        // half, and from noon after it the time is UTC again (here: folded by the loop).
        let smear = leap(Leap::Insert, true, false);
        assert!((served(smear, -21_600.0) - (-21_600.0 - 21_600.0 / 86_401.0)).abs() < 1e-9);
        assert!((served(smear, 0.0) - (-43_200.0 / 86_401.0)).abs() < 1e-9);
        let after = leap(Leap::Insert, true, true);
        assert!((served(after, 43_200.0) - 43_200.0).abs() < 1e-9);
        assert!((served(after, 0.0) - (1.0 - 43_201.0 / 86_401.0)).abs() < 1e-9);
    }

    #[test]
    fn correction_applies_offset_and_frequency() {
        let epoch = Realtime::from_timespec(100, 0);
        let c = Correction {
            epoch,
            offset: 0.5,
            freq: 1e-5,
            leap: None,
        };
        let t = Realtime::from_timespec(200, 0);
        assert!((c.apply(t).seconds_since(t) - (0.5 + 1e-3)).abs() < 1e-9);
        assert_eq!(Correction::default().apply(t), t);
    }
}
