//! Turning sources into one clock state. For now the only reference is the local clock; the
//! filters, selection and loop for GPS, DCF77 and upstream servers come with those sources.

pub mod snapshot;

use crate::config::SourceConfig;
use crate::refclock::local::LocalClock;
use crate::time::Realtime;
use snapshot::ClockSnapshot;

/// The clock state at `now` for the configured sources.
pub fn current_state(sources: &[SourceConfig], now: Realtime, precision: i8) -> ClockSnapshot {
    let best_local = sources
        .iter()
        .map(|s| match s {
            SourceConfig::Local(l) => LocalClock { stratum: l.stratum },
        })
        .min_by_key(|l| l.stratum);
    match best_local {
        Some(local) => local.snapshot(now, precision),
        None => ClockSnapshot::unsynchronised(precision),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::LocalSourceConfig;

    #[test]
    fn no_source_means_unsynchronised() {
        let s = current_state(&[], Realtime::from_nanos(0), -20);
        assert!(!s.synchronised);
        assert_eq!(s.stratum, 16);
    }

    #[test]
    fn lowest_local_stratum_wins() {
        let local = |stratum| {
            SourceConfig::Local(LocalSourceConfig {
                name: "l".into(),
                stratum,
            })
        };
        let s = current_state(&[local(12), local(9)], Realtime::from_nanos(5), -20);
        assert!(s.synchronised);
        assert_eq!((s.stratum, &s.refid), (9, b"LOCL"));
        assert_eq!(s.reference_time, Realtime::from_nanos(5));
    }
}
