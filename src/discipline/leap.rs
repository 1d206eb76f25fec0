//! Leap seconds in the discipline: which one is due (announced by a majority of the followed
//! sources, else by the leap-seconds.list), how the served time carries it (stepped, smeared,
//! or left to the kernel), and what changes once it has passed.

use super::leapfile::LeapTable;
use super::snapshot::{LeapCorrection, SMEAR_WINDOW};
use super::Discipline;
use crate::time::{Leap, Realtime};

/// Seconds after a leap second during which the sources' announcements are ignored.
const LEAP_QUIET: f64 = 43_200.0;

impl Discipline {
    /// The leap-seconds.list in use, for leaps no source announces.
    pub fn set_leap_table(&mut self, table: Option<LeapTable>) {
        self.leap_table = table;
    }

    /// The leap second due and its midnight: the one pending (even just after its midnight,
    /// until `pass_leap` has taken it over), else the one announced at local time `now`.
    pub(super) fn leap_due(&self, now: Realtime) -> Option<(Leap, Realtime)> {
        self.leap_pending.or_else(|| self.leap_announced(now))
    }

    /// The leap second announced for the end of the current UTC day, and that midnight.
    pub(super) fn leap_announced(&self, now: Realtime) -> Option<(Leap, Realtime)> {
        let served = self.model.as_ref()?.served(now);
        // A source still announcing after the leap (DCF77 between decoded minutes, a stale
        // upstream) must not schedule another one for the next midnight.
        if self
            .leap_passed
            .is_some_and(|(_, at)| served.seconds_since(at) < LEAP_QUIET)
        {
            return None;
        }
        let day = served.as_nanos().div_euclid(86_400_000_000_000) + 1;
        let midnight = Realtime::from_timespec(day * 86_400, 0);
        let announced = self.reference.map_or(Leap::None, |r| r.leap);
        let leap = match (announced, &self.leap_table) {
            (Leap::Insert | Leap::Delete, _) => announced,
            (_, Some(table)) => table.announcement(served),
            _ => Leap::None,
        };
        matches!(leap, Leap::Insert | Leap::Delete).then_some((leap, midnight))
    }

    /// Whether the served time carries leap seconds itself (else the kernel inserts them).
    pub(super) fn serves_leaps(&self) -> bool {
        !self.steers() || self.config.leap_smear
    }

    /// How the served time carries the leap second `due` (or the one just passed, while its
    /// smear goes on), at `served`: the time corrected for phase and frequency only.
    pub(super) fn leap_correction(
        &self,
        due: Option<(Leap, Realtime)>,
        served: Realtime,
    ) -> Option<LeapCorrection> {
        let correction = |(leap, at), folded| LeapCorrection {
            at,
            leap,
            step: self.serves_leaps(),
            smear: self.config.leap_smear,
            folded,
        };
        if let Some(due) = due {
            return Some(correction(due, false));
        }
        let (leap, at) = self.leap_passed?;
        let smearing = self.config.leap_smear && served.seconds_since(at) < SMEAR_WINDOW / 2.0;
        smearing.then(|| correction((leap, at), true))
    }

    /// Once the served time has passed a leap second it carries itself, the loop's phase takes
    /// it over, and so do the kept samples' references.
    pub(super) fn pass_leap(&mut self, now: Realtime) {
        let serves_leaps = self.serves_leaps();
        let Some(model) = self.model.as_mut() else {
            return;
        };
        let served = model.served(now);
        let Some((leap, midnight)) = self.leap_pending.filter(|p| served >= p.1) else {
            self.leap_pending = self.leap_announced(now);
            return;
        };
        self.leap_pending = None;
        tracing::info!(?leap, "leap second");
        self.leap_passed = Some((leap, midnight));
        if !serves_leaps {
            return;
        }
        // With the kernel actuator and a smear, the system clock did not leap: the loop now
        // sees it a second off and slews it back, while the served time stays smooth.
        let step = if leap == Leap::Insert { -1.0 } else { 1.0 };
        let leap_local = midnight.add_secs_f64(-model.phase_at(now));
        model.applied(-step, 0.0);
        for s in &mut self.sources {
            s.filter.leapt(leap_local, step);
        }
    }
}
