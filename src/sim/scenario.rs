//! `pitime simulate`: the real GPS pairing and discipline code against a simulated oscillator
//! and receiver, faster than real time, scored against the true time.
//!
//! Each simulated second the receiver's pulse arrives (with jitter) and its RMC sentence
//! follows after the sentence delay; both go through `GpsClock` as the driver would send them,
//! and its samples go to the `Discipline`. Half a second later the served time is compared
//! with the truth. Outages silence the receiver; a spoofed jump shifts its time.

use serde::Serialize;

use super::oscillator::{Oscillator, OscillatorParams};
use super::rng::Rng;
use crate::clock::change::ClockWatch;
use crate::clock::Actuator;
use std::path::Path;

use crate::config::{ActuatorKind, Config, DisciplineConfig, LoneJump};
use crate::discipline::{ClockState, Discipline};
use crate::refclock::gps::clock::{ClockOptions, GpsClock};
use crate::refclock::gps::decoder::TimeReport;
use crate::refclock::Sample;
use crate::time::{Realtime, UtcTime};

/// 2026-01-01T00:00:00Z: where simulated time starts.
const START: i64 = 1_767_225_600;
/// The simulated system clock's precision: a microsecond, a Pi's.
const PRECISION: i8 = -20;

#[derive(Clone, Debug, PartialEq)]
pub struct Scenario {
    /// Simulated seconds.
    pub duration: u64,
    pub seed: u64,
    pub oscillator: OscillatorParams,
    /// PPS timestamp jitter (RMS), seconds.
    pub pps_jitter: f64,
    /// From the pulse to the RMC sentence's arrival, seconds, and its jitter.
    pub sentence_delay: f64,
    pub sentence_jitter: f64,
    /// Receiver silent from START to END seconds.
    pub outages: Vec<(u64, u64)>,
    /// From START to END seconds the receiver reports a time off by SECONDS.
    pub jump: Option<(u64, u64, f64)>,
    /// What the discipline does with that jump (`discipline.lone_jump`).
    pub lone_jump: LoneJump,
    pub actuator: ActuatorKind,
    /// Initial frequency from a drift file, fractional.
    pub drift: Option<f64>,
}

/// The result, printed as JSON.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    pub duration_s: u64,
    pub seed: u64,
    pub actuator: &'static str,
    /// When the first PPS sample (a pulse paired with its sentence) reached the discipline.
    pub first_pps_sample_s: Option<u64>,
    /// When the served error fell below `lock_threshold_s` for good (until the first fault).
    pub lock_s: Option<u64>,
    pub lock_after_first_pps_s: Option<u64>,
    pub lock_threshold_s: f64,
    /// RMS and maximum error of the served time from lock to the end, outside faults and the
    /// recovery after them.
    pub rms_error_s: Option<f64>,
    pub max_error_s: Option<f64>,
    pub outages: Vec<OutageScore>,
    /// The largest error while a spoofed jump was being reported.
    pub max_error_during_jump_s: Option<f64>,
    pub true_frequency_ppm: f64,
    pub learned_frequency_ppm: Option<f64>,
    pub final_state: ClockState,
}

#[derive(Clone, Debug, Serialize)]
pub struct OutageScore {
    pub start_s: u64,
    pub end_s: u64,
    /// Served minus true time as the references return.
    pub error_at_end_s: f64,
    pub max_error_s: f64,
    pub state_at_end: ClockState,
    /// The error bound advertised to clients as the references return.
    pub advertised_error_at_end_s: f64,
}

/// Seconds after a fault that are not scored: the loop is reacquiring.
const RECOVERY: u64 = 60;

pub fn run(s: &Scenario) -> Summary {
    let mut osc = Oscillator::new(s.oscillator.clone(), s.seed);
    let mut rng = Rng::new(s.seed ^ 0x5eed);
    let gps_config = Config::parse("simulate", "[[source]]\nkind = \"gps\"\n", Path::new("."))
        .expect("a GPS source with defaults parses")
        .sources;
    let config = DisciplineConfig {
        actuator: s.actuator,
        lone_jump: s.lone_jump,
        ..DisciplineConfig::default()
    };
    let mut discipline = Discipline::new(&gps_config, &config, s.drift, PRECISION);
    for a in discipline.initial_adjustments() {
        let _ = osc.apply(a);
    }
    let mut gps = GpsClock::new(ClockOptions {
        pps: true,
        sentence_delay: None,
    });
    let local_at =
        |osc: &Oscillator, t: f64| Realtime::from_timespec(START, 0).add_secs_f64(t + osc.offset());
    let in_window = |t: u64, (a, b): (u64, u64)| t >= a && t < b;
    let mut errors: Vec<(u64, f64)> = Vec::new();
    let mut first_pps = None;
    let mut outages: Vec<OutageScore> = Vec::new();
    let mut jump_max: Option<f64> = None;
    let mut watch = ClockWatch::default();
    for sec in 0..s.duration {
        let t = sec as f64;
        let silent = s.outages.iter().any(|&w| in_window(sec, w));
        let shift = s
            .jump
            .filter(|&(a, b, _)| in_window(sec, (a, b)))
            .map_or(0.0, |j| j.2);
        if !silent {
            let pulse = local_at(&osc, t).add_secs_f64(rng.normal(s.pps_jitter));
            if let Some(change) = watch.news(&discipline.state(pulse).changes) {
                gps.clock_changed(&change);
            }
            if let Some(sample) = gps.on_pps(pulse, None).sample {
                feed(
                    &mut discipline,
                    &mut osc,
                    sample,
                    pulse,
                    sec,
                    &mut first_pps,
                );
            }
        }
        let delay = s.sentence_delay + rng.normal(s.sentence_jitter);
        osc.advance(delay);
        if !silent {
            let label = Realtime::from_timespec(START + sec as i64, 0).add_secs_f64(shift);
            let report = TimeReport {
                sentence: "RMC",
                time: Some(UtcTime::from_realtime(label)),
                verdict: Ok(()),
                accuracy: None,
            };
            let rx = local_at(&osc, t + delay);
            if let Some(sample) = gps.on_time(&report, rx).sample {
                feed(&mut discipline, &mut osc, sample, rx, sec, &mut first_pps);
            }
        }
        osc.advance(0.5 - delay);
        let now = local_at(&osc, t + 0.5);
        let state = discipline.state(now);
        let error = state
            .correction
            .apply(now)
            .seconds_since(Realtime::from_timespec(START, 0))
            - (t + 0.5);
        errors.push((sec, error));
        if shift != 0.0 {
            jump_max = Some(jump_max.unwrap_or(0.0).max(error.abs()));
        }
        if let Some(&(start, end)) = s.outages.iter().find(|&&(_, end)| end == sec + 1) {
            let max = errors[start as usize..]
                .iter()
                .map(|e| e.1.abs())
                .fold(0.0, f64::max);
            outages.push(OutageScore {
                start_s: start,
                end_s: end,
                error_at_end_s: error,
                max_error_s: max,
                state_at_end: discipline.clock_state(now),
                advertised_error_at_end_s: state.root_dispersion_at(now),
            });
        }
        osc.advance(0.5);
        let now = local_at(&osc, t + 1.0);
        apply(&mut osc, discipline.tick(now));
    }
    let threshold = (10.0 * s.pps_jitter).max(1e-6);
    let faults: Vec<(u64, u64)> = s
        .outages
        .iter()
        .copied()
        .chain(s.jump.map(|(a, b, _)| (a, b)))
        .collect();
    let first_fault = faults.iter().map(|f| f.0).min().unwrap_or(s.duration);
    let lock = errors
        .iter()
        .take(first_fault as usize)
        .rposition(|e| e.1.abs() > threshold)
        .map_or(0, |i| i as u64 + 1);
    let lock = (lock < first_fault).then_some(lock);
    let scored: Vec<f64> = errors
        .iter()
        .filter(|(sec, _)| lock.is_some_and(|l| *sec >= l))
        .filter(|(sec, _)| {
            !faults
                .iter()
                .any(|&(a, b)| *sec >= a && *sec < b + RECOVERY)
        })
        .map(|e| e.1)
        .collect();
    let rms = (!scored.is_empty())
        .then(|| (scored.iter().map(|e| e * e).sum::<f64>() / scored.len() as f64).sqrt());
    let last_local = local_at(&osc, s.duration as f64);
    Summary {
        duration_s: s.duration,
        seed: s.seed,
        actuator: match s.actuator {
            ActuatorKind::Kernel => "kernel",
            ActuatorKind::Virtual => "virtual",
        },
        first_pps_sample_s: first_pps,
        lock_s: lock,
        lock_after_first_pps_s: lock.zip(first_pps).map(|(l, f)| l.saturating_sub(f)),
        lock_threshold_s: threshold,
        rms_error_s: rms,
        max_error_s: (!scored.is_empty())
            .then(|| scored.iter().map(|e| e.abs()).fold(0.0, f64::max)),
        outages,
        max_error_during_jump_s: jump_max,
        // The correction that cancels the oscillator's error, as the drift file states it.
        true_frequency_ppm: -osc.freq() * 1e6,
        learned_frequency_ppm: discipline.frequency().map(|f| f * 1e6),
        final_state: discipline.clock_state(last_local),
    }
}

/// Hands a sample to the discipline and its adjustments to the oscillator.
fn feed(
    discipline: &mut Discipline,
    osc: &mut Oscillator,
    sample: Sample,
    now: Realtime,
    sec: u64,
    first_pps: &mut Option<u64>,
) {
    if &sample.refid == b"PPS\0" {
        first_pps.get_or_insert(sec);
    }
    apply(osc, discipline.add_sample(0, sample, now));
}

fn apply(osc: &mut Oscillator, adjustments: Vec<crate::clock::Adjustment>) {
    for a in adjustments {
        let _ = osc.apply(a);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario(actuator: ActuatorKind) -> Scenario {
        Scenario {
            duration: 7200,
            seed: 1,
            oscillator: OscillatorParams {
                freq: 30e-6,
                wander: 0.01e-6,
                temperature: 0.0,
                offset: 0.4,
            },
            pps_jitter: 1e-6,
            sentence_delay: 0.15,
            sentence_jitter: 0.005,
            outages: vec![(3600, 7200)],
            jump: None,
            lone_jump: LoneJump::Hold,
            actuator,
            drift: None,
        }
    }

    #[test]
    fn converges_and_holds_over_with_either_actuator() {
        for actuator in [ActuatorKind::Virtual, ActuatorKind::Kernel] {
            let s = run(&scenario(actuator));
            assert!(s.lock_after_first_pps_s.is_some_and(|l| l <= 30), "{s:?}");
            assert!(s.rms_error_s.is_some_and(|e| e < 0.5e-6), "{s:?}");
            let outage = &s.outages[0];
            assert!(outage.error_at_end_s.abs() < 1e-3, "{s:?}");
            assert_eq!(outage.state_at_end, ClockState::Holdover);
            // The bound told to clients covers the real error.
            assert!(outage.advertised_error_at_end_s > outage.error_at_end_s.abs());
            assert!(
                (s.learned_frequency_ppm.unwrap() + 30.0).abs() < 0.05,
                "{s:?}"
            );
        }
    }

    #[test]
    fn a_lone_receivers_jump_is_held_over_unless_a_duration_lets_it_through() {
        let mut sc = scenario(ActuatorKind::Virtual);
        sc.outages.clear();
        sc.duration = 1800;
        sc.jump = Some((1000, 1400, 1.0));
        let held = run(&sc);
        assert!(
            held.max_error_during_jump_s.is_some_and(|e| e < 1e-3),
            "{held:?}"
        );
        assert_eq!(held.final_state, ClockState::Locked);
        // Following a receiver that insists 60 s: it serves the spoofed second.
        sc.lone_jump = LoneJump::After(60.0);
        let followed = run(&sc);
        let max = followed.max_error_during_jump_s.unwrap();
        assert!((max - 1.0).abs() < 1e-3, "{followed:?}");
    }
}
