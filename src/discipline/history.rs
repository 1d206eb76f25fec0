//! The clock's recent past for the status page's charts: averages over 10 s for the last hour
//! and over a minute for the last day, in fixed-size rings. A point is marked holdover or alarm
//! when any second it covers was, so that a short episode is not averaged away.

use std::collections::VecDeque;

/// One averaged point: Unix time of its end, offset (s), frequency (ppm), jitter (s), and
/// whether the clock was in holdover or an alarm was raised during it.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct Point {
    pub t: i64,
    pub offset: f64,
    pub frequency: f64,
    pub jitter: f64,
    pub holdover: bool,
    pub alarm: bool,
}

#[derive(Clone, Debug, Default)]
struct Ring {
    step: i64,
    len: usize,
    points: VecDeque<Point>,
    sum: Point,
    count: u32,
}

impl Ring {
    fn new(step: i64, len: usize) -> Self {
        Ring {
            step,
            len,
            ..Ring::default()
        }
    }

    fn push(&mut self, p: Point) {
        self.sum.offset += p.offset;
        self.sum.frequency += p.frequency;
        self.sum.jitter += p.jitter;
        self.sum.holdover |= p.holdover;
        self.sum.alarm |= p.alarm;
        self.count += 1;
        if p.t % self.step == 0 || self.count as i64 >= self.step {
            let n = f64::from(self.count);
            self.points.push_back(Point {
                t: p.t,
                offset: self.sum.offset / n,
                frequency: self.sum.frequency / n,
                jitter: self.sum.jitter / n,
                holdover: self.sum.holdover,
                alarm: self.sum.alarm,
            });
            if self.points.len() > self.len {
                self.points.pop_front();
            }
            self.sum = Point::default();
            self.count = 0;
        }
    }
}

#[derive(Clone, Debug)]
pub struct History {
    hour: Ring,
    day: Ring,
}

impl Default for History {
    fn default() -> Self {
        History {
            hour: Ring::new(History::HOUR_STEP, 360),
            day: Ring::new(History::DAY_STEP, 1440),
        }
    }
}

impl History {
    /// The spacing of the hour's points, in seconds.
    pub const HOUR_STEP: i64 = 10;
    /// The spacing of the day's points, in seconds.
    pub const DAY_STEP: i64 = 60;

    /// Adds the state of one second.
    pub fn push(&mut self, p: Point) {
        self.hour.push(p);
        self.day.push(p);
    }

    pub fn hour(&self) -> Vec<Point> {
        self.hour.points.iter().copied().collect()
    }

    pub fn day(&self) -> Vec<Point> {
        self.day.points.iter().copied().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn averages_into_bounded_rings() {
        let mut h = History::default();
        for t in 1..=7200 {
            h.push(Point {
                t,
                offset: (t % 10) as f64,
                frequency: 1.0,
                jitter: 0.0,
                holdover: t == 3605,
                alarm: false,
            });
        }
        let hour = h.hour();
        assert_eq!(hour.len(), 360);
        assert_eq!(hour.last().unwrap().t, 7200);
        // 1..10 mod 10: 1+...+9+0 over 10.
        assert!((hour[0].offset - 4.5).abs() < 1e-9);
        assert_eq!(h.day().len(), 120);
        // One second of holdover marks its 10 s point and its minute, and no other.
        let marked = |points: Vec<Point>| -> Vec<i64> {
            points.iter().filter(|p| p.holdover).map(|p| p.t).collect()
        };
        assert_eq!(marked(h.hour()), [3610]);
        assert_eq!(marked(h.day()), [3660]);
    }
}
