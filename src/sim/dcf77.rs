//! A DCF77 signal generator: the edges a receiver module gives for a stretch of true time,
//! with the impairments of a real indoor receiver. Pure and deterministic for a seed.

use crate::refclock::dcf77::frame::{self, Minute};
use crate::sim::rng::Rng;
use crate::time::{days_from_civil, Realtime, UtcTime};

#[derive(Clone, Debug, PartialEq)]
pub struct Dcf77Signal {
    /// True UTC (Unix seconds) at stream time 0; need not be a minute's start.
    pub start: i64,
    pub duration: f64,
    /// Standard deviation of each edge's time, seconds.
    pub jitter: f64,
    /// The receiver's delay: pulses start this long after the true second.
    pub receiver_delay: f64,
    /// The module's pulse widths for 0 and 1 bits: sent as 100 and 200 ms, stretched or
    /// shortened by its filter.
    pub widths: (f64, f64),
    /// Spikes a second (a few milliseconds of the opposite level, anywhere).
    pub glitch_rate: f64,
    /// Share of pulses with a random width (30 to 290 ms).
    pub wrong_width_rate: f64,
    /// Share of pulses lost.
    pub missing_rate: f64,
    /// Stretches of pure noise: (start, length) in stream seconds.
    pub bursts: Vec<(f64, f64)>,
    /// The transmitter is lost from this stream time on (no pulses; noise goes on).
    pub lost_from: Option<f64>,
    /// A leap second is inserted at the end of this UTC day (days since 1970-01-01).
    pub leap_day: Option<i64>,
    /// The module's output is low while the carrier is reduced.
    pub active_low: bool,
    pub seed: u64,
}

impl Default for Dcf77Signal {
    fn default() -> Self {
        Dcf77Signal {
            start: 1_795_317_360, // 2026-11-22T03:16:00Z
            duration: 600.0,
            jitter: 0.0,
            receiver_delay: 0.0,
            widths: (0.1, 0.2),
            glitch_rate: 0.0,
            wrong_width_rate: 0.0,
            missing_rate: 0.0,
            bursts: Vec::new(),
            lost_from: None,
            leap_day: None,
            active_low: false,
            seed: 1,
        }
    }
}

/// The edges, and the truth: the stream time of each minute's and each second's start (before
/// the receiver's delay), and its UTC (an inserted leap second is second 86400 of its day).
pub struct Generated {
    /// (stream time, level of the line after the edge).
    pub edges: Vec<(f64, bool)>,
    pub minutes: Vec<(f64, UtcTime)>,
    pub seconds: Vec<(f64, UtcTime)>,
}

/// Start of summer time (last Sunday in March) or its end (last Sunday in October), 01:00 UTC,
/// in Unix seconds.
fn eu_change(year: i64, month: u32) -> i64 {
    let last = days_from_civil(year, month, 31);
    let weekday = (last + 3).rem_euclid(7); // 0 = Monday
    (last - (weekday + 1) % 7) * 86_400 + 3600
}

/// Hours ahead of UTC in Germany at Unix second `t`, and the next change's time.
pub fn german_offset(t: i64) -> (i64, i64) {
    let year = crate::time::civil_from_days(t.div_euclid(86_400)).0;
    let (spring, autumn) = (eu_change(year, 3), eu_change(year, 10));
    if t < spring {
        (1, spring)
    } else if t < autumn {
        (2, autumn)
    } else {
        (1, eu_change(year + 1, 3))
    }
}

impl Dcf77Signal {
    /// The frame sent during the minute that ends at Unix second `next`.
    fn minute_at(&self, next: i64) -> Minute {
        // A1 and A2 are sent for the hour before the change or the leap second.
        let change = german_offset(next - 1).1;
        let leap_end = self.leap_day.map(|d| (d + 1) * 86_400);
        Minute {
            utc: UtcTime::from_realtime(Realtime::from_timespec(next, 0)),
            offset_hours: german_offset(next).0,
            dst_announced: change - next < 3600,
            leap_announced: leap_end.is_some_and(|e| e - 3600 < next && next <= e),
        }
    }

    pub fn generate(&self) -> Generated {
        let mut rng = Rng::new(self.seed);
        // Active intervals of the clean signal, in stream time.
        let mut pulses: Vec<(f64, f64)> = Vec::new();
        let mut minutes = Vec::new();
        let mut seconds = Vec::new();
        let first_minute = self.start.div_euclid(60) * 60;
        let mut label = first_minute;
        // Stream time of this minute's start (negative when the stream begins mid-minute).
        let mut at = (first_minute - self.start) as f64;
        while at < self.duration {
            let leap = self
                .leap_day
                .is_some_and(|d| label == (d + 1) * 86_400 - 60);
            let bits = frame::encode(&self.minute_at(label + 60));
            let length = if leap { 61 } else { 60 };
            minutes.push((
                at,
                UtcTime::from_realtime(Realtime::from_timespec(label, 0)),
            ));
            let day = label.div_euclid(86_400);
            for second in 0..length {
                if (0.0..self.duration).contains(&(at + second as f64)) {
                    let of_day = (label.rem_euclid(86_400) + second as i64) as u32;
                    seconds.push((
                        at + second as f64,
                        UtcTime {
                            day,
                            second: of_day,
                            nanos: 0,
                        },
                    ));
                }
                let width = match second {
                    59 if leap => self.widths.0,
                    59 | 60 => continue,
                    s if bits[s] => self.widths.1,
                    _ => self.widths.0,
                };
                let start = at + second as f64 + self.receiver_delay;
                let lost = self.lost_from.is_some_and(|l| start >= l);
                if start < 0.0
                    || start >= self.duration
                    || lost
                    || rng.uniform() < self.missing_rate
                {
                    continue;
                }
                let width = if rng.uniform() < self.wrong_width_rate {
                    0.03 + 0.26 * rng.uniform()
                } else {
                    width
                };
                let a = start + rng.normal(self.jitter);
                let b = start + width + rng.normal(self.jitter);
                if b > a {
                    pulses.push((a, b));
                }
            }
            at += length as f64;
            label += 60;
        }
        let mut noise = Vec::new();
        let spikes = (self.glitch_rate * self.duration).round() as usize;
        for _ in 0..spikes {
            let a = rng.uniform() * self.duration;
            noise.push((a, a + 0.002 + 0.028 * rng.uniform()));
        }
        for &(start, len) in &self.bursts {
            let mut t = start;
            while t < start + len {
                let w = 0.005 + 0.05 * rng.uniform();
                noise.push((t, t + w));
                t += w + 0.005 + 0.05 * rng.uniform();
            }
        }
        Generated {
            edges: xor_edges(&pulses, &noise, self.active_low),
            minutes: minutes.into_iter().filter(|m| m.0 >= 0.0).collect(),
            seconds,
        }
    }
}

/// The edges of (signal XOR noise), each interval list meaning "active between".
fn xor_edges(signal: &[(f64, f64)], noise: &[(f64, f64)], invert: bool) -> Vec<(f64, bool)> {
    // (time, change of the signal count, change of the noise count)
    let mut events: Vec<(f64, i32, i32)> = signal
        .iter()
        .flat_map(|&(a, b)| [(a, 1, 0), (b, -1, 0)])
        .chain(noise.iter().flat_map(|&(a, b)| [(a, 0, 1), (b, 0, -1)]))
        .collect();
    events.sort_by(|x, y| x.0.total_cmp(&y.0));
    let (mut sig, mut noi, mut level) = (0, 0, false);
    let mut edges = Vec::new();
    for (t, ds, dn) in events {
        sig += ds;
        noi += dn;
        let active = (sig > 0) != (noi > 0);
        if active != level {
            level = active;
            edges.push((t, active != invert));
        }
    }
    edges
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summer_time_changes_on_the_last_sundays() {
        // 2026: 29 March and 25 October, at 01:00 UTC.
        assert_eq!(eu_change(2026, 3), 1_774_746_000);
        assert_eq!(eu_change(2026, 10), 1_792_890_000);
        assert_eq!(german_offset(1_774_745_999).0, 1);
        assert_eq!(german_offset(1_774_746_000).0, 2);
        assert_eq!(german_offset(1_792_890_000).0, 1);
    }

    #[test]
    fn the_clean_signal_is_what_the_frames_say() {
        let g = Dcf77Signal {
            duration: 130.0,
            ..Dcf77Signal::default()
        }
        .generate();
        // 2026-11-22T03:16:00Z: pulses at 0..58, none at 59, then the next minute.
        assert_eq!(
            g.minutes[0],
            (
                0.0,
                UtcTime::from_civil((2026, 11, 22), (3, 16, 0), 0).unwrap()
            )
        );
        assert_eq!(g.edges[0], (0.0, true));
        let starts: Vec<f64> = g.edges.iter().filter(|e| e.1).map(|e| e.0).collect();
        assert_eq!(starts[58], 58.0);
        assert_eq!(starts[59], 60.0);
    }
}
