//! Turning samples from the sources into one clock state.
//!
//! For now: the reference clock with the smallest error among those with a fresh sample is
//! selected, and the served time is corrected by the median of its recent offsets (phase only,
//! applied by the virtual actuator). The local clock is the fallback. The filters, intersection,
//! frequency loop and holdover of a real discipline replace this selection.

pub mod snapshot;

use std::collections::VecDeque;

use crate::config::SourceConfig;
use crate::refclock::local::LocalClock;
use crate::refclock::Sample;
use crate::server::packet::Leap;
use crate::time::Realtime;
use snapshot::{ClockSnapshot, Correction};

/// A sample older than this (seconds) no longer makes its source selectable.
const MAX_AGE: f64 = 8.0;
/// Samples kept per source for the median.
const KEPT: usize = 16;

#[derive(Debug)]
struct SourceState {
    local: Option<LocalClock>,
    samples: VecDeque<Sample>,
}

#[derive(Debug)]
pub struct Discipline {
    sources: Vec<SourceState>,
}

impl Discipline {
    pub fn new(sources: &[SourceConfig]) -> Self {
        let sources = sources
            .iter()
            .map(|s| SourceState {
                local: match s {
                    SourceConfig::Local(l) => Some(LocalClock { stratum: l.stratum }),
                    SourceConfig::Gps(_) | SourceConfig::Dcf77(_) => None,
                },
                samples: VecDeque::new(),
            })
            .collect();
        Discipline { sources }
    }

    /// A sample from source `index` (its position in the configuration).
    pub fn add_sample(&mut self, index: usize, sample: Sample) {
        let Some(source) = self.sources.get_mut(index) else {
            return;
        };
        // A change of kind (PPS lost, NMEA only) starts the median afresh.
        if source
            .samples
            .back()
            .is_some_and(|s| s.refid != sample.refid)
        {
            source.samples.clear();
        }
        source.samples.push_back(sample);
        if source.samples.len() > KEPT {
            source.samples.pop_front();
        }
    }

    /// The clock state at `now`.
    pub fn state(&self, now: Realtime, precision: i8) -> ClockSnapshot {
        let best = self
            .sources
            .iter()
            .filter_map(|s| s.samples.back().map(|last| (s, last)))
            .filter(|(_, last)| now.seconds_since(last.local).abs() < MAX_AGE)
            .min_by(|a, b| a.1.error.total_cmp(&b.1.error));
        if let Some((source, last)) = best {
            return refclock_state(source, last, precision);
        }
        let best_local = self
            .sources
            .iter()
            .filter_map(|s| s.local.as_ref())
            .min_by_key(|l| l.stratum);
        match best_local {
            Some(local) => local.snapshot(now, precision),
            None => ClockSnapshot::unsynchronised(precision),
        }
    }
}

fn refclock_state(source: &SourceState, last: &Sample, precision: i8) -> ClockSnapshot {
    let mut offsets: Vec<f64> = source.samples.iter().map(Sample::offset).collect();
    offsets.sort_by(f64::total_cmp);
    let median = offsets[offsets.len() / 2];
    let jitter =
        (offsets.iter().map(|o| (o - median).powi(2)).sum::<f64>() / offsets.len() as f64).sqrt();
    ClockSnapshot {
        synchronised: true,
        leap: Leap::None,
        stratum: 1,
        refid: last.refid,
        reference_time: last.reference,
        root_delay: 0.0,
        root_dispersion: last.error + jitter + 2f64.powi(precision as i32),
        precision,
        correction: Correction {
            epoch: last.local,
            offset: median,
            freq: 0.0,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::LocalSourceConfig;

    fn local(stratum: u8) -> SourceConfig {
        SourceConfig::Local(LocalSourceConfig {
            name: "l".into(),
            stratum,
        })
    }

    #[test]
    fn no_source_means_unsynchronised() {
        let s = Discipline::new(&[]).state(Realtime::from_nanos(0), -20);
        assert!(!s.synchronised);
        assert_eq!(s.stratum, 16);
    }

    #[test]
    fn lowest_local_stratum_wins() {
        let d = Discipline::new(&[local(12), local(9)]);
        let s = d.state(Realtime::from_nanos(5), -20);
        assert!(s.synchronised);
        assert_eq!((s.stratum, &s.refid), (9, b"LOCL"));
        assert_eq!(s.reference_time, Realtime::from_nanos(5));
    }

    #[test]
    fn a_fresh_refclock_wins_with_its_median_offset_and_goes_stale() {
        let mut d = Discipline::new(&[local(10), local(10)]);
        let at = |s: i64| Realtime::from_timespec(s, 0);
        for (i, off) in [0.5, 0.5001, 0.4999, 0.9, 0.5].into_iter().enumerate() {
            let t = at(100 + i as i64);
            d.add_sample(1, Sample::new(t, t.add_secs_f64(off), 1e-5, *b"PPS\0"));
        }
        let s = d.state(at(105), -20);
        assert_eq!((s.stratum, &s.refid), (1, b"PPS\0"));
        assert_eq!(s.correction.offset, 0.5);
        assert!(s.root_dispersion > 1e-5 && s.root_dispersion < 0.2);
        assert_eq!(d.state(at(120), -20).stratum, 10);
    }
}
