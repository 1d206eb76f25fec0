//! The guards on the clock's big changes. The first setting: a step backwards beyond
//! `backward_limit` needs two agreeing sources or one that insists. Later, a followed source
//! that moves beyond `jump_limit` alone is followed only once it has stayed there, without a
//! break, for `jump_confirm` seconds; two or more agreeing sources are followed at once.

use super::kalman::ClockModel;
use super::{Discipline, Followed, WANDER};
use crate::clock::Adjustment;
use crate::refclock::Sample;
use crate::time::Realtime;

/// The followed sources have been `offset` seconds away since `since`, last seen at `seen`.
#[derive(Clone, Copy, Debug)]
pub(super) struct PendingJump {
    pub(super) since: Realtime,
    pub(super) seen: Realtime,
    pub(super) offset: f64,
}

impl Discipline {
    /// The first setting of the clock, from the followed sources: a large step backwards
    /// needs two agreeing sources or one that insists.
    pub(super) fn set_first(
        &mut self,
        index: usize,
        sample: &Sample,
        followed: &Followed,
        variance: f64,
        now: Realtime,
    ) -> Vec<Adjustment> {
        let mut adjustments = Vec::new();
        let backwards = followed.offset < -self.config.backward_limit;
        if backwards && followed.corroborating < 2 && !self.confirmed(now, followed.offset) {
            return Vec::new();
        }
        let mut model = ClockModel::new(
            sample.local,
            sample.offset(),
            variance,
            self.known_freq,
            WANDER,
        );
        if self.steers() {
            // The actuator already applies the known frequency.
            model.freq = 0.0;
        }
        model.predict(now);
        let mut now = now;
        if self.steers() && model.phase.abs() > self.config.makestep {
            tracing::info!(seconds = model.phase, "stepping the clock");
            let (step, after) = self.step(&mut model, now);
            adjustments.push(step);
            now = after;
        }
        tracing::info!(source = %self.sources[index].name, offset = sample.offset(), "clock set");
        self.model = Some(model);
        self.pending_jump = None;
        self.updated(now, followed.reference);
        adjustments
    }

    /// The followed sources moved beyond `jump_limit`: followed at once when two or more
    /// agree, after `jump_confirm` seconds when one is alone.
    pub(super) fn follow_jump(
        &mut self,
        followed: &Followed,
        variance: f64,
        now: Realtime,
    ) -> Vec<Adjustment> {
        let mut adjustments = Vec::new();
        // Two or more sources that each put the clock there are believed at once; a lone
        // source must insist.
        if followed.corroborating < 2 && !self.confirmed(now, followed.offset) {
            return Vec::new();
        }
        tracing::warn!(
            seconds = followed.offset,
            sources = followed.corroborating,
            "the followed sources jumped; following"
        );
        // The sources that jumped start afresh: their kept samples tell of the time before
        // it. The others keep theirs, and now disagree.
        let limit = self.config.jump_limit;
        let model = self.model.as_ref();
        for s in &mut self.sources {
            let jumped = s.filter.filtered(model);
            if jumped.is_some_and(|f| (f.residual - followed.offset).abs() < limit) {
                s.filter.clear();
            }
        }
        let Some(mut model) = self.model.take() else {
            return adjustments;
        };
        model.predict(now);
        model.reset_phase(followed.offset, variance);
        let mut now = now;
        if self.steers() {
            let (step, after) = self.step(&mut model, now);
            adjustments.push(step);
            now = after;
        }
        self.model = Some(model);
        self.pending_jump = None;
        self.updated(now, followed.reference);
        adjustments
    }

    /// Whether the followed sources have stayed about `offset` seconds away, without a
    /// break, for `jump_confirm` seconds (starting the count when the jump is new).
    fn confirmed(&mut self, now: Realtime, offset: f64) -> bool {
        let limit = self.config.jump_limit;
        match self.pending_jump {
            Some(p) if self.pending_is_current(p, now) && (offset - p.offset).abs() <= limit => {
                if now.seconds_since(p.since) >= self.config.jump_confirm {
                    self.pending_jump = None;
                    return true;
                }
                self.pending_jump = Some(PendingJump { seen: now, ..p });
                false
            }
            _ => {
                tracing::warn!(
                    seconds = offset,
                    "the followed sources jumped; waiting for confirmation"
                );
                self.pending_jump = Some(PendingJump {
                    since: now,
                    seen: now,
                    offset,
                });
                false
            }
        }
    }

    /// A pending jump counts only while it keeps being seen: a source that falls silent
    /// mid-way starts again.
    pub(super) fn pending_is_current(&self, p: PendingJump, now: Realtime) -> bool {
        now.seconds_since(p.seen) <= self.config.jump_confirm / 2.0
    }
}
