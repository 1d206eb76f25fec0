//! A longwave time signal generator (DCF77, MSF, WWVB): the edges a receiver module gives for
//! a stretch of true time, with the impairments of a real indoor receiver, the same for every
//! station. Pure and deterministic for a seed.

use crate::refclock::longwave::station::{Minute, StationKind};
use crate::refclock::{dcf77, msf, wwvb};
use crate::sim::rng::Rng;
use crate::time::{civil_from_days, days_from_civil, Realtime, UtcTime};

#[derive(Clone, Debug, PartialEq)]
pub struct LongwaveSignal {
    pub station: StationKind,
    /// True UTC (Unix seconds) at stream time 0; need not be a minute's start.
    pub start: i64,
    pub duration: f64,
    /// Standard deviation of each edge's time, seconds.
    pub jitter: f64,
    /// The receiver's delay: pulses start this long after the true second.
    pub receiver_delay: f64,
    /// What the module makes of 100 and 200 ms of reduced carrier, stretched or shortened by
    /// its filter (other lengths scale alike).
    pub widths: (f64, f64),
    /// Spikes a second (a few milliseconds of the opposite level, anywhere).
    pub glitch_rate: f64,
    /// Share of pulses with a random width (DCF77: 30 to 290 ms; up to 590 ms for MSF, 890
    /// ms for WWVB).
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

impl Default for LongwaveSignal {
    fn default() -> Self {
        LongwaveSignal {
            station: StationKind::Dcf77,
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
/// in Unix seconds: the rule of the EU and the UK.
fn eu_change(year: i64, month: u32) -> i64 {
    let last = days_from_civil(year, month, 31);
    let weekday = (last + 3).rem_euclid(7); // 0 = Monday
    (last - (weekday + 1) % 7) * 86_400 + 3600
}

/// Whether summer time is in effect in the EU and the UK at Unix second `t`, and the next
/// change's time.
pub fn eu_summer_time(t: i64) -> (bool, i64) {
    let year = civil_from_days(t.div_euclid(86_400)).0;
    let (spring, autumn) = (eu_change(year, 3), eu_change(year, 10));
    if t < spring {
        (false, spring)
    } else if t < autumn {
        (true, autumn)
    } else {
        (false, eu_change(year + 1, 3))
    }
}

/// The `n`th Sunday of a month, in days since 1970-01-01.
fn nth_sunday(year: i64, month: u32, n: i64) -> i64 {
    let first = days_from_civil(year, month, 1);
    let to_sunday = (6 - (first + 3).rem_euclid(7)).rem_euclid(7); // 0 = Monday
    first + to_sunday + 7 * (n - 1)
}

/// Whether US daylight saving time is in effect on UTC day `day` (its rule's dates: from the
/// second Sunday of March to the first Sunday of November), as WWVB's DST bits tell it.
pub fn us_dst(day: i64) -> bool {
    let year = civil_from_days(day).0;
    (nth_sunday(year, 3, 2)..nth_sunday(year, 11, 1)).contains(&day)
}

impl LongwaveSignal {
    /// What the DCF77 or MSF frame sent during the minute that ends at Unix second `next`
    /// says: `offset` is the civil time's in summer and winter.
    fn minute_at(&self, next: i64, offset: [i64; 2]) -> Minute {
        // The announcements are sent for the hour before the change or the leap second.
        let change = eu_summer_time(next - 1).1;
        let leap_end = self.leap_day.map(|d| (d + 1) * 86_400);
        Minute {
            utc: UtcTime::from_realtime(Realtime::from_timespec(next, 0)),
            offset_hours: offset[usize::from(eu_summer_time(next).0)],
            dst_announced: change - next < 3600,
            leap_announced: leap_end.is_some_and(|e| e - 3600 < next && next <= e),
        }
    }

    /// Each second of the minute that starts at Unix second `label` (61 with a leap second):
    /// the stretches of reduced carrier, from the second's start.
    fn minute_pulses(&self, label: i64, leap: bool) -> Vec<Vec<(f64, f64)>> {
        let pulse = |width: f64| vec![(0.0, width)];
        match self.station {
            StationKind::Dcf77 => {
                let bits = dcf77::frame::encode(&self.minute_at(label + 60, [1, 2]));
                let mut seconds: Vec<_> = bits
                    .iter()
                    .map(|&b| pulse(if b { 0.2 } else { 0.1 }))
                    .collect();
                // The leap second is a 0 bit at 59 and the gap at 60.
                if leap {
                    seconds.push(pulse(0.1));
                }
                seconds.push(Vec::new());
                seconds
            }
            StationKind::Msf => {
                let bits = msf::frame::encode(&self.minute_at(label + 60, [0, 1]));
                let mut seconds: Vec<_> = (0..60)
                    .map(|p| match (p, bits[p], bits[msf::frame::B + p]) {
                        (0, ..) => pulse(0.5),
                        (_, a, false) => pulse(if a { 0.2 } else { 0.1 }),
                        (_, false, true) => vec![(0.0, 0.1), (0.2, 0.3)],
                        (_, true, true) => pulse(0.3),
                    })
                    .collect();
                // The leap second is an extra 00 second after the DUT1 code.
                if leap {
                    seconds.insert(17, pulse(0.1));
                }
                seconds
            }
            StationKind::Wwvb => {
                let utc = UtcTime::from_realtime(Realtime::from_timespec(label, 0));
                let flags = wwvb::frame::Flags {
                    dst: [us_dst(utc.day - 1), us_dst(utc.day)],
                    leap_warning: self.leap_day.is_some_and(|d| {
                        let (y, m, _) = civil_from_days(d);
                        civil_from_days(utc.day).0 == y && civil_from_days(utc.day).1 == m
                    }),
                };
                let width = |s: wwvb::frame::Symbol| match s {
                    wwvb::frame::Symbol::Zero => 0.2,
                    wwvb::frame::Symbol::One => 0.5,
                    wwvb::frame::Symbol::Marker => 0.8,
                };
                let symbols = wwvb::frame::encode(utc, flags);
                let mut seconds: Vec<_> = symbols.iter().map(|&s| pulse(width(s))).collect();
                // The leap second is a third marker in a row.
                if leap {
                    seconds.push(pulse(0.8));
                }
                seconds
            }
        }
    }

    /// The station's longest pulse but its marker (random widths go a little beyond it).
    fn longest(&self) -> f64 {
        match self.station {
            StationKind::Dcf77 => 0.2,
            StationKind::Msf => 0.5,
            StationKind::Wwvb => 0.8,
        }
    }

    /// What the module makes of `length` seconds of reduced carrier.
    fn stretched(&self, length: f64) -> f64 {
        self.widths.0 + (length - 0.1) * (self.widths.1 - self.widths.0) / 0.1
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
            let shapes = self.minute_pulses(label, leap);
            let length = shapes.len();
            minutes.push((
                at,
                UtcTime::from_realtime(Realtime::from_timespec(label, 0)),
            ));
            let day = label.div_euclid(86_400);
            for (second, sent) in shapes.iter().enumerate() {
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
                if sent.is_empty() {
                    continue;
                }
                let start = at + second as f64 + self.receiver_delay;
                let lost = self.lost_from.is_some_and(|l| start >= l);
                if start < 0.0
                    || start >= self.duration
                    || lost
                    || rng.uniform() < self.missing_rate
                {
                    continue;
                }
                let shape = if rng.uniform() < self.wrong_width_rate {
                    vec![(0.0, 0.03 + (self.longest() + 0.06) * rng.uniform())]
                } else {
                    let each = sent.iter();
                    each.map(|&(a, b)| (a, a + self.stretched(b - a))).collect()
                };
                for (a, b) in shape {
                    let a = start + a + rng.normal(self.jitter);
                    let b = start + b + rng.normal(self.jitter);
                    if b > a {
                        pulses.push((a, b));
                    }
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
        assert!(!eu_summer_time(1_774_745_999).0);
        assert!(eu_summer_time(1_774_746_000).0);
        assert!(!eu_summer_time(1_792_890_000).0);
        // US: 8 March and 1 November 2026, 14 March and 7 November 2027.
        for (y, m, d) in [(2026, 3, 8), (2026, 11, 1), (2027, 3, 14), (2027, 11, 7)] {
            let day = days_from_civil(y, m, d);
            assert_ne!(us_dst(day - 1), us_dst(day), "{y}-{m}-{d}");
        }
    }

    #[test]
    fn the_clean_signal_is_what_the_frames_say() {
        let g = LongwaveSignal {
            duration: 130.0,
            ..LongwaveSignal::default()
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
