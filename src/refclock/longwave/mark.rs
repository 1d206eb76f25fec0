//! Which second of each 60 ends the minute (its second 59): evidence per second-of-minute
//! class, gathered over many minutes, so a pulse lost or misread now and then does not move
//! it. Each second adds, for every class, how well it fits the frame position that class
//! would give it (`Station::fit`: DCF77's missing pulse at 59 and fixed bits 0 and 20, MSF's
//! 500 ms marker and its 01111110, WWVB's markers every ten seconds and twice at the minute).

use std::marker::PhantomData;

use super::level::Observation;
use super::station::Station;

/// Evidence kept per second: about eight minutes' worth.
const DECAY: f32 = 0.998;
/// How far the best class must lead the next.
const MARGIN: f32 = 2.5;

#[derive(Clone, Debug)]
pub struct MinuteMark<S> {
    score: [f32; 60],
    station: PhantomData<S>,
}

impl<S> Default for MinuteMark<S> {
    fn default() -> Self {
        MinuteMark {
            score: [0.0; 60],
            station: PhantomData,
        }
    }
}

/// The class of second `n`.
pub fn class(n: i64) -> usize {
    n.rem_euclid(60) as usize
}

impl<S: Station> MinuteMark<S> {
    /// Second `n` (of the second counter) showed `seen`.
    pub fn second(&mut self, n: i64, seen: Observation) {
        for s in &mut self.score {
            *s *= DECAY;
        }
        if seen == Observation::Unclear {
            return;
        }
        for (mark, score) in self.score.iter_mut().enumerate() {
            // With the minute's second 59 in class `mark`, second `n` is at this position.
            *score += S::fit(class(n - mark as i64 - 1), seen);
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
