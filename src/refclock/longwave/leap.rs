//! A leap-second announcement (DCF77's A2, sent for the hour before; WWVB's bit 56, for the
//! month), believed only once several decoded minutes in a row carry it: neither bit has a
//! parity, and one bit flipped by noise must not insert a second; five minutes cost nothing.
//! Both announce only insertions; MSF announces none (its decoder still labels 23:59:60).

use crate::time::Leap;

/// Decoded minutes in a row with the announcement before it is believed.
const MINUTES: u32 = 5;

#[derive(Clone, Copy, Debug, Default)]
pub struct LeapVote {
    /// Decoded minutes in a row that carried the announcement.
    in_a_row: u32,
}

impl LeapVote {
    /// One decoded minute, with or without the announcement bit.
    pub fn minute(&mut self, announced: bool) {
        self.in_a_row = match announced {
            true => self.in_a_row.saturating_add(1),
            false => 0,
        };
    }

    pub fn leap(&self) -> Leap {
        match self.in_a_row >= MINUTES {
            true => Leap::Insert,
            false => Leap::None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_minutes_in_a_row_announce_and_one_without_withdraws() {
        let mut vote = LeapVote::default();
        for _ in 0..4 {
            vote.minute(true);
            assert_eq!(vote.leap(), Leap::None);
        }
        vote.minute(true);
        assert_eq!(vote.leap(), Leap::Insert);
        vote.minute(false);
        assert_eq!(vote.leap(), Leap::None);
        // A flipped bit now and then never adds up.
        for i in 0..100 {
            vote.minute(i % 4 == 0);
            assert_eq!(vote.leap(), Leap::None);
        }
    }
}
