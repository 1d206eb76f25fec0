//! Counters of what the NTP service did with each datagram, by outcome. Relaxed atomics: they
//! are statistics, read by the status page and metrics, not used for control.

use std::sync::atomic::{AtomicU64, Ordering};

/// Every way a datagram can end. Each has a counter; names are stable metric label values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Answered with time.
    Served,
    /// Answered with time, signed with the client's key.
    ServedAuthenticated,
    /// Answered with a crypto-NAK (unknown key id or bad MAC).
    CryptoNak,
    /// Answered with a RATE kiss-o'-death.
    KissRate,
    /// Answered with a DENY kiss-o'-death.
    KissDeny,
    DropTooShort,
    DropOversized,
    DropBadVersion,
    DropBadMode,
    DropMalformed,
    DropDenied,
    DropRateLimited,
    DropAuthRequired,
    /// A source address the kernel could not give, or port 0 (nowhere to reply to).
    DropBadSource,
    /// A built reply the kernel refused to send; it is also counted under its reply outcome.
    DropSendFailed,
}

impl Outcome {
    pub const ALL: [Outcome; 15] = [
        Outcome::Served,
        Outcome::ServedAuthenticated,
        Outcome::CryptoNak,
        Outcome::KissRate,
        Outcome::KissDeny,
        Outcome::DropTooShort,
        Outcome::DropOversized,
        Outcome::DropBadVersion,
        Outcome::DropBadMode,
        Outcome::DropMalformed,
        Outcome::DropDenied,
        Outcome::DropRateLimited,
        Outcome::DropAuthRequired,
        Outcome::DropBadSource,
        Outcome::DropSendFailed,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Outcome::Served => "served",
            Outcome::ServedAuthenticated => "served_authenticated",
            Outcome::CryptoNak => "crypto_nak",
            Outcome::KissRate => "kod_rate",
            Outcome::KissDeny => "kod_deny",
            Outcome::DropTooShort => "too_short",
            Outcome::DropOversized => "oversized",
            Outcome::DropBadVersion => "bad_version",
            Outcome::DropBadMode => "bad_mode",
            Outcome::DropMalformed => "malformed",
            Outcome::DropDenied => "denied",
            Outcome::DropRateLimited => "rate_limited",
            Outcome::DropAuthRequired => "auth_required",
            Outcome::DropBadSource => "bad_source",
            Outcome::DropSendFailed => "send_failed",
        }
    }
}

#[derive(Default)]
pub struct ServerStats {
    counts: [AtomicU64; Outcome::ALL.len()],
}

impl ServerStats {
    pub fn count(&self, outcome: Outcome) {
        self.counts[outcome as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn get(&self, outcome: Outcome) -> u64 {
        self.counts[outcome as usize].load(Ordering::Relaxed)
    }

    /// (name, count) for every outcome, in a stable order.
    pub fn snapshot(&self) -> Vec<(&'static str, u64)> {
        Outcome::ALL
            .iter()
            .map(|o| (o.name(), self.get(*o)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_outcome_has_its_own_counter() {
        let stats = ServerStats::default();
        for (i, o) in Outcome::ALL.iter().enumerate() {
            assert_eq!(*o as usize, i);
            stats.count(*o);
        }
        assert!(stats.snapshot().iter().all(|(_, n)| *n == 1));
    }
}
