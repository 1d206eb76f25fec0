//! Scoring the longwave decoder on generated signals, label by label against the generator's
//! truth, and the scenarios of `pitime bench-longwave` (figures in docs/benchmarks.md).

use crate::refclock::longwave::decoder::{decode, Event};
use crate::refclock::longwave::station::StationKind;
use crate::sim::longwave::{Generated, LongwaveSignal};

/// A label is right only this close to its second's true marker: a noise edge far from the
/// marker is not a second marker, whatever the count says.
pub const LABEL_TOLERANCE: f64 = 0.1;
/// Seconds are counted from this stream time on: the first minutes go to finding the time.
pub const SETTLE: f64 = 180.0;

/// How a decoder did on a generated signal.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Score {
    /// Minutes that began in the stream (after its first second-0 pulse).
    pub minutes: usize,
    pub accepted: usize,
    /// Accepted minutes whose time is not the truth: must be 0.
    pub wrong: usize,
    /// Stream time of the first accepted minute.
    pub first_accepted: Option<f64>,
    /// Seconds from `SETTLE` on, and how many of them carry a right label.
    pub seconds: usize,
    pub labelled: usize,
    /// Labels that do not name their second's UTC or lie far from its marker: must be 0.
    pub wrong_labels: usize,
    /// Stream times of the first and the last label.
    pub first_label: Option<f64>,
    pub last_label: Option<f64>,
}

impl Score {
    /// The share of seconds after `SETTLE` that carry a right label.
    pub fn labelled_share(&self) -> f64 {
        self.labelled as f64 / self.seconds.max(1) as f64
    }

    /// Adds another run's counts (first and last times are this run's).
    pub fn add(&mut self, other: &Score) {
        self.minutes += other.minutes;
        self.accepted += other.accepted;
        self.wrong += other.wrong;
        self.seconds += other.seconds;
        self.labelled += other.labelled;
        self.wrong_labels += other.wrong_labels;
    }
}

/// Checks every minute and every second label against the truth.
pub fn score(signal: &LongwaveSignal, generated: &Generated, events: &[Event]) -> Score {
    let delay = signal.receiver_delay;
    let truth = &generated.seconds;
    let mut right = vec![false; truth.len()];
    let mut score = Score {
        minutes: generated.minutes.len(),
        seconds: truth.iter().filter(|s| s.0 >= SETTLE).count(),
        ..Score::default()
    };
    for e in events {
        match *e {
            Event::Minute { t, minute } => {
                score.accepted += 1;
                score.first_accepted.get_or_insert(t);
                let known = generated
                    .minutes
                    .iter()
                    .find(|(start, _)| (start + delay - t).abs() < LABEL_TOLERANCE);
                if known.is_none_or(|(_, utc)| *utc != minute.utc) {
                    score.wrong += 1;
                }
            }
            Event::Second { t, utc } => {
                score.first_label.get_or_insert(t);
                score.last_label = Some(t);
                // The true second whose marker is nearest.
                let i = truth.partition_point(|s| s.0 + delay < t);
                let nearest = [i.checked_sub(1), Some(i)]
                    .into_iter()
                    .flatten()
                    .filter(|&j| j < truth.len())
                    .min_by(|&a, &b| {
                        let d = |j: usize| (truth[j].0 + delay - t).abs();
                        d(a).total_cmp(&d(b))
                    });
                match nearest {
                    Some(j)
                        if (truth[j].0 + delay - t).abs() <= LABEL_TOLERANCE
                            && truth[j].1 == utc =>
                    {
                        right[j] = true;
                    }
                    _ => score.wrong_labels += 1,
                }
            }
        }
    }
    score.labelled = truth
        .iter()
        .zip(&right)
        .filter(|(s, &r)| r && s.0 >= SETTLE)
        .count();
    score
}

/// Generates the signal, decodes it, and scores the result.
pub fn evaluate(signal: &LongwaveSignal, confirm: usize) -> Score {
    let generated = signal.generate();
    score(
        signal,
        &generated,
        &decode(signal.station, &generated.edges, signal.active_low, confirm),
    )
}

/// A benchmark scenario: a name and the signal of its first seed.
pub struct Scenario {
    pub name: &'static str,
    pub signal: LongwaveSignal,
    /// One of the targets (95% of seconds labelled); the others show where the
    /// decoder gives up, still without a wrong label.
    pub target: bool,
}

impl Scenario {
    /// The signal for another seed: other noise, another time of year.
    pub fn seeded(&self, seed: u64) -> LongwaveSignal {
        LongwaveSignal {
            seed,
            start: self.signal.start + seed as i64 * 7_919_113,
            ..self.signal.clone()
        }
    }
}

/// The targets: each impairment alone, all mixed, pure noise, and noise after an hour of
/// good signal (the transmitter lost); then each impairment twice as bad, beyond the targets.
pub fn scenarios(station: StationKind, minutes: usize) -> Vec<Scenario> {
    let base = LongwaveSignal {
        station,
        duration: minutes as f64 * 60.0,
        ..LongwaveSignal::default()
    };
    let scenario = |name, f: fn(&mut LongwaveSignal), target| {
        let mut signal = base.clone();
        f(&mut signal);
        Scenario {
            name,
            signal,
            target,
        }
    };
    let with = |name, f| scenario(name, f, true);
    let beyond = |name, f| scenario(name, f, false);
    vec![
        with("clean", |_| {}),
        with("jitter_20ms", |s| s.jitter = 0.02),
        with("random_width_5pct", |s| s.wrong_width_rate = 0.05),
        with("glitches_2_per_s", |s| s.glitch_rate = 2.0),
        with("missing_5pct", |s| s.missing_rate = 0.05),
        with("mixed", |s| {
            s.jitter = 0.02;
            s.wrong_width_rate = 0.05;
            s.glitch_rate = 2.0;
            s.missing_rate = 0.05;
        }),
        with("pure_noise", |s| {
            s.bursts = vec![(0.0, s.duration)];
            s.missing_rate = 1.0;
        }),
        with("noise_30min_after_1h", |s| {
            s.duration = 5400.0;
            s.lost_from = Some(3600.0);
            s.bursts = vec![(3600.0, 1800.0)];
        }),
        beyond("jitter_40ms", |s| s.jitter = 0.04),
        beyond("random_width_10pct", |s| s.wrong_width_rate = 0.1),
        beyond("glitches_5_per_s", |s| s.glitch_rate = 5.0),
        beyond("missing_10pct", |s| s.missing_rate = 0.1),
        beyond("mixed_twice_as_bad", |s| {
            s.jitter = 0.04;
            s.wrong_width_rate = 0.1;
            s.glitch_rate = 4.0;
            s.missing_rate = 0.1;
        }),
    ]
}

/// Seconds from the start of a clean signal to its first label, for each start second 0..59
/// within the minute.
pub fn first_labels(station: StationKind, confirm: usize) -> Vec<Option<f64>> {
    (0..60)
        .map(|offset| {
            let signal = LongwaveSignal {
                station,
                start: LongwaveSignal::default().start + offset,
                duration: 400.0,
                ..LongwaveSignal::default()
            };
            evaluate(&signal, confirm).first_label
        })
        .collect()
}
