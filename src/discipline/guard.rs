//! The guards on the clock's big changes. The first setting: a step backwards beyond
//! `backward_limit` needs two agreeing sources. Later, followed sources that move beyond
//! `jump_limit` are followed at once when two or more agree. A lone source is never followed
//! on its own word unless `lone_jump` says after how long: the clock holds over (with an
//! alarm) until a second source agrees or the operator accepts the jump (`accept_jump`).

use super::kalman::ClockModel;
use super::{Discipline, Followed, WANDER};
use crate::clock::Adjustment;
use crate::config::LoneJump;
use crate::refclock::Sample;
use crate::time::Realtime;

/// A pending jump not seen for this long (seconds) is over: a source that falls silent and
/// comes back starts again.
const PENDING_GAP: f64 = 30.0;

/// The followed sources have been `offset` seconds away since `since`, last seen at `seen`,
/// as told by the source at `source`.
#[derive(Clone, Copy, Debug)]
pub(super) struct PendingJump {
    pub(super) since: Realtime,
    pub(super) seen: Realtime,
    pub(super) offset: f64,
    pub(super) source: usize,
    /// The operator accepted it: followed with the source's next sample.
    pub(super) accepted: bool,
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
        if backwards && followed.corroborating < 2 && !self.confirmed(index, now, followed.offset) {
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

    /// The followed sources moved beyond `jump_limit` (the source at `index` telling of it):
    /// followed at once when two or more agree, else as `lone_jump` says.
    pub(super) fn follow_jump(
        &mut self,
        index: usize,
        followed: &Followed,
        variance: f64,
        now: Realtime,
    ) -> Vec<Adjustment> {
        let mut adjustments = Vec::new();
        // Two or more sources that each put the clock there are believed at once; a lone
        // source needs the operator's word, or to insist as long as `lone_jump` allows.
        if followed.corroborating < 2 && !self.confirmed(index, now, followed.offset) {
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

    /// Whether a lone source's jump to `offset` may be followed now: accepted by the operator,
    /// or insisted on, without a break, as long as `lone_jump` allows. Counts from now when
    /// the jump is new.
    fn confirmed(&mut self, index: usize, now: Realtime, offset: f64) -> bool {
        let limit = self.config.jump_limit;
        match self.pending_jump {
            Some(p) if self.pending_is_current(p, now) && (offset - p.offset).abs() <= limit => {
                let insisted = match self.config.lone_jump {
                    LoneJump::After(s) => now.seconds_since(p.since) >= s,
                    LoneJump::Hold => false,
                };
                if p.accepted || insisted {
                    self.pending_jump = None;
                    return true;
                }
                self.pending_jump = Some(PendingJump { seen: now, ..p });
                false
            }
            _ => {
                let source = &self.sources[index].name;
                match self.config.lone_jump {
                    LoneJump::Hold => tracing::warn!(
                        %source,
                        seconds = offset,
                        "a lone source jumped; holding over until a second source agrees or \
                         the jump is accepted"
                    ),
                    LoneJump::After(_) => tracing::warn!(
                        %source,
                        seconds = offset,
                        "the followed sources jumped; waiting for confirmation"
                    ),
                }
                self.pending_jump = Some(PendingJump {
                    since: now,
                    seen: now,
                    offset,
                    source: index,
                    accepted: false,
                });
                false
            }
        }
    }

    /// A pending jump counts only while it keeps being seen: a source that falls silent
    /// mid-way starts again.
    pub(super) fn pending_is_current(&self, p: PendingJump, now: Realtime) -> bool {
        now.seconds_since(p.seen) <= PENDING_GAP
    }

    /// The pending jump, while it is current.
    pub(super) fn current_jump(&self, now: Realtime) -> Option<PendingJump> {
        self.pending_jump
            .filter(|p| self.pending_is_current(*p, now))
    }

    /// The operator accepts the pending jump of the source named `source`: it is followed with
    /// that source's next sample. Returns the jump's size in seconds, or why there is nothing
    /// to accept.
    pub fn accept_jump(&mut self, source: &str, now: Realtime) -> Result<f64, String> {
        if !self.sources.iter().any(|s| s.name == source) {
            return Err(format!("no source is named `{source}`"));
        }
        match self.current_jump(now) {
            Some(p) if self.sources[p.source].name == source => {
                self.pending_jump = Some(PendingJump {
                    accepted: true,
                    ..p
                });
                Ok(p.offset)
            }
            Some(p) => Err(format!(
                "`{source}` has no pending jump (the pending one is `{}`'s)",
                self.sources[p.source].name
            )),
            None => Err(format!("`{source}` has no pending jump")),
        }
    }
}
