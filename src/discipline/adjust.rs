//! What the discipline asks of the actuator (a step, a frequency), and how it keeps its own
//! books when the clock changes: the loop, the sources' kept samples, and the published
//! clock-change count every other part of pitime follows (`clock::change`).

use super::kalman::ClockModel;
use super::Discipline;
use crate::clock::change::ClockChange;
use crate::clock::Adjustment;
use crate::time::Realtime;

impl Discipline {
    /// Whether the kernel actuator carries out corrections (else they stay in the served
    /// time). Fixed at start: a reload keeps the actuator.
    pub(super) fn steers(&self) -> bool {
        self.config.actuator == crate::config::ActuatorKind::Kernel
    }

    /// What the actuator must do before the first sample: take the learned frequency.
    pub fn initial_adjustments(&self) -> Vec<Adjustment> {
        match self.steers() {
            true => vec![Adjustment::Frequency(self.applied_freq)],
            false => Vec::new(),
        }
    }

    /// Sets the actuator's frequency at `now`; the loop and the kept samples take it over.
    pub(super) fn set_frequency(&mut self, target: f64, now: Realtime) -> Adjustment {
        let change = target - self.applied_freq;
        if let Some(model) = &mut self.model {
            model.applied(0.0, change);
        }
        self.clock_changed(ClockChange {
            step: 0.0,
            frequency: change,
            at: now,
        });
        self.applied_freq = target;
        Adjustment::Frequency(target)
    }

    /// Restates what the discipline keeps, and publishes the change for every other part
    /// that keeps local times (`clock::change`).
    pub(super) fn clock_changed(&mut self, change: ClockChange) {
        for s in &mut self.sources {
            s.filter.clock_changed(&change);
        }
        self.changes.record(change);
    }

    /// Steps the clock by the model's phase at local time `now`; returns the adjustment and
    /// what the clock reads after it.
    pub(super) fn step(&mut self, model: &mut ClockModel, now: Realtime) -> (Adjustment, Realtime) {
        let seconds = model.phase;
        model.applied(seconds, 0.0);
        model.epoch = model.epoch.add_secs_f64(seconds);
        let after = now.add_secs_f64(seconds);
        self.clock_changed(ClockChange {
            step: seconds,
            frequency: 0.0,
            at: after,
        });
        if let Some(t) = &mut self.last_update {
            *t = t.add_secs_f64(seconds);
        }
        (Adjustment::Step(seconds), after)
    }
}
