//! Selection: which sources tell the truth (RFC 5905's intersection algorithm, after Marzullo)
//! and which of those the clock follows.
//!
//! Each candidate is an interval, its offset plus or minus its root distance. The largest set
//! of candidates whose intervals share a point, if it is a majority, are the truechimers; the
//! others are falsetickers. The clock then follows the truechimers whose distance is within
//! `COMBINE_LIMIT` of the best, so a PPS good to a microsecond is not dragged by NMEA or DCF77
//! good to milliseconds, yet those still vote against it.

/// Truechimers whose distance is within this factor of the best one's are combined (chrony's
/// `combinelimit`).
const COMBINE_LIMIT: f64 = 3.0;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Candidate {
    /// The source's offset, seconds (any common reference: here, from the loop's estimate).
    pub offset: f64,
    /// Root distance: the bound on the error of `offset`, seconds.
    pub distance: f64,
    pub prefer: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Followed by the clock.
    Combined,
    /// Agrees with the majority, but too coarse to be followed alongside the best.
    Truechimer,
    /// Disagrees with the majority.
    Falseticker,
    /// No majority agrees on anything: nobody can be trusted.
    NoMajority,
}

/// One verdict per candidate, in order.
pub fn select(candidates: &[Candidate]) -> Vec<Verdict> {
    let n = candidates.len();
    let Some((low, high)) = intersection(candidates) else {
        // Two sources that disagree: one is wrong and nothing says which, unless the
        // operator said whom to prefer.
        return match candidates.iter().position(|c| c.prefer) {
            Some(p) => (0..n)
                .map(|i| match i == p {
                    true => Verdict::Combined,
                    false => Verdict::Falseticker,
                })
                .collect(),
            None => vec![Verdict::NoMajority; n],
        };
    };
    let true_ = |c: &Candidate| c.offset + c.distance >= low && c.offset - c.distance <= high;
    let preferred = candidates.iter().any(|c| c.prefer && true_(c));
    let best = candidates
        .iter()
        .filter(|c| true_(c) && (c.prefer || !preferred))
        .map(|c| c.distance)
        .fold(f64::INFINITY, f64::min);
    candidates
        .iter()
        .map(|c| {
            if !true_(c) {
                Verdict::Falseticker
            } else if (c.prefer || !preferred) && c.distance <= COMBINE_LIMIT * best {
                Verdict::Combined
            } else {
                Verdict::Truechimer
            }
        })
        .collect()
}

/// The smallest interval shared by a majority of the candidates' intervals, allowing as few
/// falsetickers as possible (RFC 5905 section 11.2.1).
fn intersection(candidates: &[Candidate]) -> Option<(f64, f64)> {
    let n = candidates.len();
    // Endpoints: (value, -1 for a lower end, +1 for an upper end); lower ends sort first at
    // equal values so that touching intervals count as overlapping.
    let mut ends: Vec<(f64, i32)> = candidates
        .iter()
        .flat_map(|c| [(c.offset - c.distance, -1), (c.offset + c.distance, 1)])
        .collect();
    ends.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    for allowed in 0..n.div_ceil(2) {
        let needed = (n - allowed) as i32;
        let mut count = 0;
        let low = ends.iter().find(|&&(_, kind)| {
            count -= kind;
            count >= needed
        });
        count = 0;
        let high = ends.iter().rev().find(|&&(_, kind)| {
            count += kind;
            count >= needed
        });
        if let (Some(&(low, _)), Some(&(high, _))) = (low, high) {
            if low <= high {
                return Some((low, high));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use Verdict::*;

    fn c(offset: f64, distance: f64) -> Candidate {
        Candidate {
            offset,
            distance,
            prefer: false,
        }
    }

    #[test]
    fn the_odd_one_out_of_three_is_a_falseticker() {
        let v = select(&[c(0.0, 1e-3), c(0.0005, 1e-3), c(0.2, 1e-3)]);
        assert_eq!(v, [Combined, Combined, Falseticker]);
    }

    #[test]
    fn coarse_truechimers_vote_but_are_not_combined_with_a_pps() {
        let v = select(&[c(1e-6, 2e-6), c(0.002, 0.005), c(-0.001, 0.005)]);
        assert_eq!(v, [Combined, Truechimer, Truechimer]);
    }

    #[test]
    fn two_that_disagree_have_no_majority_unless_one_is_preferred() {
        assert_eq!(select(&[c(0.0, 1e-3), c(1.0, 1e-3)]), [NoMajority; 2]);
        let mut p = c(1.0, 1e-3);
        p.prefer = true;
        assert_eq!(select(&[c(0.0, 1e-3), p]), [Falseticker, Combined]);
    }

    #[test]
    fn a_preferred_truechimer_is_followed_alone() {
        let mut p = c(0.0, 4e-3);
        p.prefer = true;
        assert_eq!(
            select(&[c(0.001, 1e-3), p, c(0.0, 2e-3)]),
            [Truechimer, Combined, Truechimer]
        );
    }

    #[test]
    fn one_source_is_its_own_majority() {
        assert_eq!(select(&[c(5.0, 1e-3)]), [Combined]);
        assert_eq!(select(&[]), Vec::<Verdict>::new());
    }

    #[test]
    fn a_falseticker_among_five_is_found() {
        let v = select(&[
            c(0.0, 0.01),
            c(0.004, 0.01),
            c(-0.003, 0.01),
            c(-0.5, 0.01),
            c(0.002, 0.01),
        ]);
        assert_eq!(v[3], Falseticker);
        assert!(v.iter().filter(|v| **v == Combined).count() == 4);
    }
}
