//! Turning samples from the sources into one clock state.
//!
//! For now: the reference clock with the smallest error among those with a fresh sample is
//! selected, and the served time is corrected by the median of its recent offsets (phase only,
//! applied by the virtual actuator). The local clock is the fallback. The filters, intersection,
//! frequency loop and holdover of a real discipline replace this selection.

pub mod history;
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
    name: String,
    kind: &'static str,
    local: Option<LocalClock>,
    samples: VecDeque<Sample>,
    /// One bit a tick, set when a sample arrived: chronyc's reach register.
    reach: u8,
    sampled: bool,
}

/// How a source stands in the selection, as `chronyc sources` shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Standing {
    Selected,
    Candidate,
    Unreachable,
}

/// One row of the sources table.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct SourceReport {
    pub name: String,
    pub kind: &'static str,
    pub state: Standing,
    pub reach: u8,
    /// Seconds since the last sample.
    pub last_sample_ago: Option<f64>,
    /// Median offset (reference minus local clock) and its jitter, seconds.
    pub offset: Option<f64>,
    pub jitter: Option<f64>,
    pub error: Option<f64>,
    pub refid: Option<String>,
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
                name: s.name().to_string(),
                kind: s.kind(),
                local: match s {
                    SourceConfig::Local(l) => Some(LocalClock { stratum: l.stratum }),
                    SourceConfig::Gps(_) | SourceConfig::Dcf77(_) | SourceConfig::Ntp(_) => None,
                },
                samples: VecDeque::new(),
                reach: 0,
                sampled: false,
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
        source.sampled = true;
        if source.samples.len() > KEPT {
            source.samples.pop_front();
        }
    }

    /// Shifts the reach registers: call once a second.
    pub fn tick(&mut self) {
        for s in &mut self.sources {
            s.reach = (s.reach << 1) | u8::from(std::mem::take(&mut s.sampled));
        }
    }

    /// The reference clock followed at `now`: the fresh one with the smallest error.
    fn selected(&self, now: Realtime) -> Option<usize> {
        self.sources
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.samples.back().map(|last| (i, last)))
            .filter(|(_, last)| now.seconds_since(last.local).abs() < MAX_AGE)
            .min_by(|a, b| a.1.error.total_cmp(&b.1.error))
            .map(|(i, _)| i)
    }

    /// The sources table at `now`.
    pub fn report(&self, now: Realtime) -> Vec<SourceReport> {
        let selected = self.selected(now);
        let local_selected = selected.is_none();
        let best_local = self
            .sources
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.local.as_ref().map(|l| (i, l.stratum)))
            .min_by_key(|&(_, stratum)| stratum)
            .map(|(i, _)| i);
        self.sources
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let last = s.samples.back();
                let fresh = last.is_some_and(|l| now.seconds_since(l.local).abs() < MAX_AGE);
                let state = if selected == Some(i) || (local_selected && best_local == Some(i)) {
                    Standing::Selected
                } else if fresh || s.local.is_some() {
                    Standing::Candidate
                } else {
                    Standing::Unreachable
                };
                let (offset, jitter) = match median_jitter(&s.samples) {
                    Some((m, j)) => (Some(m), Some(j)),
                    None => (None, None),
                };
                SourceReport {
                    name: s.name.clone(),
                    kind: s.kind,
                    state,
                    reach: if s.local.is_some() { u8::MAX } else { s.reach },
                    last_sample_ago: last.map(|l| now.seconds_since(l.local)),
                    offset,
                    jitter,
                    error: last.map(|l| l.error),
                    refid: last.map(|l| refid_text(&l.refid)),
                }
            })
            .collect()
    }

    /// The clock state at `now`.
    pub fn state(&self, now: Realtime, precision: i8) -> ClockSnapshot {
        if let Some(i) = self.selected(now) {
            let source = &self.sources[i];
            if let Some(last) = source.samples.back() {
                return refclock_state(source, last, precision);
            }
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

/// A refid as text: letters for stratum-1 codes.
pub fn refid_text(refid: &[u8; 4]) -> String {
    refid
        .iter()
        .take_while(|&&b| b != 0)
        .map(|&b| b as char)
        .collect()
}

/// Median offset of the samples and their RMS deviation from it.
fn median_jitter(samples: &VecDeque<Sample>) -> Option<(f64, f64)> {
    let mut offsets: Vec<f64> = samples.iter().map(Sample::offset).collect();
    offsets.sort_by(f64::total_cmp);
    let median = *offsets.get(offsets.len() / 2)?;
    let jitter =
        (offsets.iter().map(|o| (o - median).powi(2)).sum::<f64>() / offsets.len() as f64).sqrt();
    Some((median, jitter))
}

fn refclock_state(source: &SourceState, last: &Sample, precision: i8) -> ClockSnapshot {
    let (median, jitter) = median_jitter(&source.samples).unwrap_or((last.offset(), 0.0));
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
            select: Default::default(),
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
