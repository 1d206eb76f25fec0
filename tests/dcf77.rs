//! The DCF77 decoder over generated signals: every accepted minute must be right, in every
//! scenario, and a clean or mildly noisy signal must give minutes.

use pitime::sim::dcf77::{evaluate, Dcf77Signal, Score};
use pitime::time::days_from_civil;

const CONFIRM: usize = 2;

fn run(signal: Dcf77Signal) -> Score {
    let score = evaluate(&signal, CONFIRM);
    assert_eq!(score.wrong, 0, "wrong minutes: {score:?} for {signal:?}");
    score
}

/// Accepted minutes out of those after the first acceptance was possible.
fn share(s: &Score) -> f64 {
    s.accepted as f64 / s.minutes.saturating_sub(3).max(1) as f64
}

#[test]
fn clean_signal_every_minute_after_the_first_two() {
    let s = run(Dcf77Signal::default());
    assert!(s.accepted >= s.minutes - 2, "{s:?}");
    assert!(s.first_accepted.unwrap() <= 180.0, "{s:?}");
}

#[test]
fn starting_mid_minute_and_with_a_receiver_delay() {
    let s = run(Dcf77Signal {
        start: 1_795_317_360 + 37,
        receiver_delay: 0.045,
        ..Dcf77Signal::default()
    });
    assert!(share(&s) > 0.9, "{s:?}");
}

#[test]
fn ten_ms_jitter() {
    let s = run(Dcf77Signal {
        jitter: 0.010,
        ..Dcf77Signal::default()
    });
    assert!(share(&s) > 0.8, "{s:?}");
}

#[test]
fn a_glitch_every_second() {
    let s = run(Dcf77Signal {
        glitch_rate: 1.0,
        duration: 1200.0,
        ..Dcf77Signal::default()
    });
    assert!(s.accepted > 0, "{s:?}");
}

#[test]
fn one_percent_wrong_widths() {
    let s = run(Dcf77Signal {
        wrong_width_rate: 0.01,
        duration: 1200.0,
        ..Dcf77Signal::default()
    });
    assert!(share(&s) > 0.4, "{s:?}");
}

#[test]
fn a_thirty_second_noise_burst() {
    let s = run(Dcf77Signal {
        bursts: vec![(250.0, 30.0)],
        ..Dcf77Signal::default()
    });
    // The minutes the burst touches are lost; the rest come back.
    assert!(s.accepted >= s.minutes - 4, "{s:?}");
}

#[test]
fn missing_pulses_do_not_lose_the_count() {
    let s = run(Dcf77Signal {
        missing_rate: 0.005,
        duration: 1200.0,
        ..Dcf77Signal::default()
    });
    assert!(share(&s) > 0.6, "{s:?}");
}

#[test]
fn the_leap_second_of_2016_12_31() {
    let day = days_from_civil(2016, 12, 31);
    let s = run(Dcf77Signal {
        start: day * 86_400 + 86_400 - 600,
        leap_day: Some(day),
        ..Dcf77Signal::default()
    });
    // Including 2017-01-01T00:00:00Z, after the 61-second minute.
    assert!(s.accepted >= s.minutes - 2, "{s:?}");
}

#[test]
fn both_summer_time_changes_of_2026() {
    for start in [1_774_746_000 - 300, 1_792_890_000 - 300] {
        let s = run(Dcf77Signal {
            start,
            ..Dcf77Signal::default()
        });
        assert!(s.accepted >= s.minutes - 2, "{s:?}");
    }
}

#[test]
fn inverted_polarity() {
    let s = run(Dcf77Signal {
        active_low: true,
        jitter: 0.005,
        ..Dcf77Signal::default()
    });
    assert!(s.accepted >= s.minutes - 3, "{s:?}");
}

#[test]
fn pure_noise_gives_nothing() {
    let s = run(Dcf77Signal {
        bursts: vec![(0.0, 1800.0)],
        missing_rate: 1.0,
        duration: 1800.0,
        ..Dcf77Signal::default()
    });
    assert_eq!(s.accepted, 0, "{s:?}");
}
