//! Which second of each 60 is the minute mark (second 59, without a pulse): evidence per
//! second-of-minute class, gathered over many minutes, so a pulse lost now and then (which
//! also looks like a mark) does not move it. Bits 0 (always 0) and 20 (always 1) add their
//! weight to the class before them.

use super::level::Observation;

/// Evidence kept per second: about eight minutes' worth.
const DECAY: f32 = 0.998;
/// How far the best class must lead the next.
const MARGIN: f32 = 2.5;
const FIXED_BITS_WEIGHT: f32 = 0.5;

#[derive(Clone, Debug)]
pub struct MinuteMark {
    score: [f32; 60],
}

impl Default for MinuteMark {
    fn default() -> Self {
        MinuteMark { score: [0.0; 60] }
    }
}

/// The class of second `n`.
pub fn class(n: i64) -> usize {
    n.rem_euclid(60) as usize
}

impl MinuteMark {
    /// Second `n` (of the second counter) showed `seen`.
    pub fn second(&mut self, n: i64, seen: Observation) {
        for s in &mut self.score {
            *s *= DECAY;
        }
        match seen {
            Observation::Absent => self.score[class(n)] += 1.0,
            Observation::Present(bit) => {
                self.score[class(n)] -= 1.0;
                self.score[class(n - 1)] -= FIXED_BITS_WEIGHT * bit;
                self.score[class(n - 21)] += FIXED_BITS_WEIGHT * bit;
            }
            Observation::Unclear => {}
        }
    }

    /// The class of the minute mark, when it leads clearly.
    pub fn best(&self) -> Option<usize> {
        let mut order: Vec<usize> = (0..60).collect();
        order.sort_by(|&a, &b| self.score[b].total_cmp(&self.score[a]));
        (self.score[order[0]] - self.score[order[1]] >= MARGIN).then_some(order[0])
    }

    /// A leap second moved the mark one second later.
    pub fn shift(&mut self) {
        self.score.rotate_right(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mark_stands_out_after_two_minutes_despite_lost_pulses() {
        let mut mark = MinuteMark::default();
        for n in 0..200i64 {
            let seen = match n % 60 {
                59 => Observation::Absent,
                13 if n < 60 => Observation::Absent,
                0 => Observation::Present(-1.0),
                20 => Observation::Present(1.0),
                _ => Observation::Present(-0.3),
            };
            mark.second(n, seen);
            if n == 70 {
                assert_eq!(mark.best(), None, "one minute with a lost pulse");
            }
        }
        assert_eq!(mark.best(), Some(59));
        mark.shift();
        assert_eq!(mark.best(), Some(0));
    }
}
