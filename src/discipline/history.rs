//! The clock's recent past for the status page's charts: averages over 10 s for the last hour
//! and over a minute for the last day, in fixed-size rings.

use std::collections::VecDeque;

/// One averaged point: Unix time of its end, offset (s), frequency (ppm), jitter (s).
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct Point {
    pub t: i64,
    pub offset: f64,
    pub frequency: f64,
    pub jitter: f64,
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
        self.count += 1;
        if p.t % self.step == 0 || self.count as i64 >= self.step {
            let n = f64::from(self.count);
            self.points.push_back(Point {
                t: p.t,
                offset: self.sum.offset / n,
                frequency: self.sum.frequency / n,
                jitter: self.sum.jitter / n,
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
            hour: Ring::new(10, 360),
            day: Ring::new(60, 1440),
        }
    }
}

impl History {
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
            });
        }
        let hour = h.hour();
        assert_eq!(hour.len(), 360);
        assert_eq!(hour.last().unwrap().t, 7200);
        // 1..10 mod 10: 1+...+9+0 over 10.
        assert!((hour[0].offset - 4.5).abs() < 1e-9);
        assert_eq!(h.day().len(), 120);
    }
}
