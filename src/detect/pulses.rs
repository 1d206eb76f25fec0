//! What a line's edges are: a PPS, a DCF77 receiver (and which level is its pulse), something
//! else, or nothing. Pure: takes (seconds, level after the edge) pairs, as a GPIO line gives
//! them and as DCF77 captures store them.

use serde::Serialize;

/// A PPS's period and width hold to this (kernel timestamps jitter by microseconds; a DCF77
/// receiver's edges by milliseconds).
const PPS_TOLERANCE: f64 = 0.002;
/// DCF77 pulses start this close to whole seconds apart.
const DCF77_ALIGN: f64 = 0.05;
/// DCF77 pulses are 100 or 200 ms; these bound what a receiver makes of them.
const DCF77_WIDTHS: std::ops::RangeInclusive<f64> = 0.04..=0.3;
/// Between a 0 bit's pulse and a 1 bit's.
const DCF77_SPLIT: f64 = 0.15;
/// Share of pulses (or intervals) that must fit; the rest may be noise.
const FIT: f64 = 0.8;
/// Pulses needed to say anything about a rhythm.
const MIN_PULSES: usize = 3;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Edge {
    Rising,
    Falling,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Pulses {
    /// Not one edge.
    Nothing,
    /// One pulse of constant width each second.
    Pps {
        /// The pulse's leading edge, the one on time.
        on_time: Edge,
        /// Seconds.
        width: f64,
        pulses: usize,
    },
    /// About one pulse a second, of ~100 and ~200 ms, less precise than a PPS.
    Dcf77 {
        /// The pulse is the low level: the decoder needs `active_low`.
        active_low: bool,
        /// Mean widths of the short (0) and long (1) pulses seen, seconds.
        short: Option<f64>,
        long: Option<f64>,
        pulses: usize,
        /// A second without a pulse was seen (the 59th, or one lost).
        missing_second: bool,
    },
    Other {
        edges: usize,
        per_second: f64,
    },
}

/// Classifies the edges seen in `duration` seconds.
pub fn classify(edges: &[(f64, bool)], duration: f64) -> Pulses {
    if edges.is_empty() {
        return Pulses::Nothing;
    }
    let polarities = [true, false].map(|level| (level, pulses(edges, level)));
    // A PPS first: DCF77's rhythm is the same, looser (and its pulses may all be 0 bits for
    // seconds), so what holds to a PPS's tolerance is one.
    polarities
        .iter()
        .find_map(|(level, p)| pps(p, *level))
        .or_else(|| polarities.iter().find_map(|(level, p)| dcf77(p, !level)))
        .unwrap_or(Pulses::Other {
            edges: edges.len(),
            per_second: edges.len() as f64 / duration.max(1e-3),
        })
}

/// (start, width) of each stretch at `level`: from an edge to it to the next edge away.
fn pulses(edges: &[(f64, bool)], level: bool) -> Vec<(f64, f64)> {
    let mut out = Vec::new();
    let mut start = None;
    for &(t, l) in edges {
        if l == level {
            // Two edges to the same level (an event lost): the later one starts the pulse.
            start = Some(t);
        } else if let Some(s) = start.take() {
            out.push((s, t - s));
        }
    }
    out
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

fn mostly(matching: usize, all: usize) -> bool {
    all > 0 && matching as f64 >= FIT * all as f64
}

fn pps(pulses: &[(f64, f64)], high: bool) -> Option<Pulses> {
    if pulses.len() < MIN_PULSES {
        return None;
    }
    let width = median(pulses.iter().map(|p| p.1).collect());
    let alike = pulses
        .iter()
        .filter(|p| (p.1 - width).abs() <= PPS_TOLERANCE)
        .count();
    let seconds = pulses
        .windows(2)
        .filter(|w| (w[1].0 - w[0].0 - 1.0).abs() <= PPS_TOLERANCE)
        .count();
    (width < 0.5 && mostly(alike, pulses.len()) && mostly(seconds, pulses.len() - 1)).then_some(
        Pulses::Pps {
            on_time: if high { Edge::Rising } else { Edge::Falling },
            width,
            pulses: pulses.len(),
        },
    )
}

fn dcf77(pulses: &[(f64, f64)], active_low: bool) -> Option<Pulses> {
    let fitting: Vec<(f64, f64)> = pulses
        .iter()
        .copied()
        .filter(|p| DCF77_WIDTHS.contains(&p.1))
        .collect();
    if fitting.len() < MIN_PULSES || !mostly(fitting.len(), pulses.len()) {
        return None;
    }
    let gaps: Vec<f64> = fitting.windows(2).map(|w| w[1].0 - w[0].0).collect();
    let aligned = gaps
        .iter()
        .filter(|&&d| (1.0..=2.0).contains(&d.round()) && (d - d.round()).abs() <= DCF77_ALIGN)
        .count();
    if !mostly(aligned, gaps.len()) {
        return None;
    }
    let mean = |v: Vec<f64>| (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64);
    let (short, long): (Vec<f64>, Vec<f64>) =
        fitting.iter().map(|p| p.1).partition(|&w| w < DCF77_SPLIT);
    Some(Pulses::Dcf77 {
        active_low,
        short: mean(short),
        long: mean(long),
        pulses: fitting.len(),
        missing_second: gaps.iter().any(|d| d.round() == 2.0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::longwave::LongwaveSignal;
    use crate::sim::rng::Rng;

    /// A PPS: `width` seconds at `high`, once a second, with a little jitter.
    fn pps_edges(seconds: usize, width: f64, high: bool) -> Vec<(f64, bool)> {
        let mut rng = Rng::new(2);
        (0..seconds)
            .flat_map(|s| {
                let t = 0.3 + s as f64 + rng.normal(20e-6);
                [(t, high), (t + width + rng.normal(20e-6), !high)]
            })
            .collect()
    }

    #[test]
    fn nothing_and_a_few_stray_edges() {
        assert_eq!(classify(&[], 10.0), Pulses::Nothing);
        assert!(matches!(
            classify(&[(1.0, true), (1.5, false)], 10.0),
            Pulses::Other { edges: 2, .. }
        ));
    }

    #[test]
    fn a_pps_and_its_on_time_edge() {
        for (high, on_time) in [(true, Edge::Rising), (false, Edge::Falling)] {
            match classify(&pps_edges(10, 0.1, high), 10.0) {
                Pulses::Pps {
                    on_time: e,
                    width,
                    pulses,
                } => {
                    assert_eq!((e, pulses), (on_time, 10));
                    assert!((width - 0.1).abs() < 1e-3);
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn a_two_hertz_square_wave_is_not_a_pps() {
        let edges: Vec<(f64, bool)> = (0..40).map(|i| (i as f64 * 0.25, i % 2 == 0)).collect();
        assert!(matches!(classify(&edges, 10.0), Pulses::Other { .. }));
    }

    fn dcf77_verdict(signal: LongwaveSignal) -> Pulses {
        let duration = signal.duration;
        classify(&signal.generate().edges, duration)
    }

    #[test]
    fn ten_seconds_of_simulated_dcf77_in_either_polarity() {
        for active_low in [false, true] {
            // Seconds 0 to 9 (all 0 bits in the simulator), then 15 to 24 (both).
            for (skip, long) in [(0, None), (15, Some(0.2))] {
                let signal = LongwaveSignal {
                    start: LongwaveSignal::default().start + skip,
                    duration: 10.0,
                    jitter: 0.004,
                    active_low,
                    ..LongwaveSignal::default()
                };
                match dcf77_verdict(signal) {
                    Pulses::Dcf77 {
                        active_low: low,
                        short: Some(short),
                        long: l,
                        ..
                    } => {
                        assert_eq!(low, active_low);
                        assert!((short - 0.1).abs() < 0.01, "{short}");
                        assert_eq!(l.map(|l| (l * 100.0).round() / 100.0), long);
                    }
                    other => panic!("{other:?}"),
                }
            }
        }
    }

    #[test]
    fn dcf77_over_a_minute_shows_the_missing_second_through_noise() {
        let signal = LongwaveSignal {
            duration: 70.0,
            jitter: 0.004,
            glitch_rate: 0.05,
            missing_rate: 0.02,
            seed: 4,
            ..LongwaveSignal::default()
        };
        assert!(matches!(
            dcf77_verdict(signal),
            Pulses::Dcf77 {
                active_low: false,
                missing_second: true,
                ..
            }
        ));
    }

    #[test]
    fn pure_noise_is_other() {
        let signal = LongwaveSignal {
            duration: 10.0,
            missing_rate: 1.0,
            bursts: vec![(0.0, 10.0)],
            ..LongwaveSignal::default()
        };
        assert!(matches!(dcf77_verdict(signal), Pulses::Other { .. }));
    }
}
