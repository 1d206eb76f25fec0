//! Clock changes as one event. When the discipline steps the system clock or changes its
//! frequency, every part that keeps local timestamps must restate them: the discipline's own
//! sample filters, the GPS pairing of pulses and sentences, the upstream client's pending request
//! and clock filter, and the simulator. (chrony does the same with its parameter-change
//! handlers.) The discipline publishes the running totals of its changes in every clock snapshot;
//! each consumer keeps a `ClockWatch` and asks it for what changed since it last looked.
//!
//! The DCF77 driver keeps no local timestamps across seconds: it decodes on CLOCK_MONOTONIC,
//! which no step moves, and converts each second marker to the system clock when it makes the
//! sample, so it needs no watch.

use crate::time::Realtime;

/// A change to the system clock, or several folded into one.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ClockChange {
    /// Seconds added to the clock's readings (0 for a frequency change alone).
    pub step: f64,
    /// Frequency added to the clock, dimensionless (500e-6: 500 ppm faster).
    pub frequency: f64,
    /// When the last of the changes took effect, local time after it.
    pub at: Realtime,
}

impl ClockChange {
    /// A local time read before the change, as the changed clock reads that instant. A frequency
    /// change does not move past readings (only the rate from `at` on), so it is ignored here.
    pub fn restate(&self, local: Realtime) -> Realtime {
        local.add_secs_f64(self.step)
    }
}

/// Every change since start: a count and the running totals, as the discipline publishes them.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ClockChanges {
    pub count: u64,
    /// Seconds stepped in all.
    pub stepped: f64,
    /// Frequency changed in all, dimensionless.
    pub frequency: f64,
    /// When the last change took effect.
    pub last: Realtime,
}

impl ClockChanges {
    pub fn record(&mut self, change: ClockChange) {
        self.count += 1;
        self.stepped += change.step;
        self.frequency += change.frequency;
        self.last = change.at;
    }
}

/// What one consumer has taken in of the published changes.
#[derive(Clone, Copy, Debug, Default)]
pub struct ClockWatch {
    seen: ClockChanges,
}

impl ClockWatch {
    /// The changes published since the last look, folded into one (steps and frequency changes
    /// add up), or `None`.
    pub fn news(&mut self, published: &ClockChanges) -> Option<ClockChange> {
        if published.count == self.seen.count {
            return None;
        }
        let change = ClockChange {
            step: published.stepped - self.seen.stepped,
            frequency: published.frequency - self.seen.frequency,
            at: published.last,
        };
        self.seen = *published;
        Some(change)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_watch_gets_each_change_once_folded_with_those_it_missed() {
        let mut published = ClockChanges::default();
        let mut watch = ClockWatch::default();
        assert_eq!(watch.news(&published), None);
        let at = Realtime::from_nanos(86_400_000_000_000);
        published.record(ClockChange {
            step: 86_400.0,
            frequency: 0.0,
            at,
        });
        published.record(ClockChange {
            step: 0.0,
            frequency: 500e-6,
            at,
        });
        let change = watch.news(&published).unwrap();
        assert_eq!(
            (change.step, change.frequency, change.at),
            (86_400.0, 500e-6, at)
        );
        assert_eq!(watch.news(&published), None);
        assert_eq!(change.restate(Realtime::from_nanos(0)), at);
    }
}
