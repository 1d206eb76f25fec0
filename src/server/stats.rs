//! Counters of what the NTP service did with each datagram, by outcome. Relaxed atomics: they
//! are statistics, read by the status page and metrics, not used for control.

use std::hash::{BuildHasher, RandomState};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Mutex;

use arc_swap::ArcSwap;

use super::hwclock::{HwClocks, HwCounts};
use super::txstamp::Stamping;

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
    /// Answered with time and fresh cookies, authenticated by NTS.
    ServedNts,
    /// Answered with an NTS NAK (kiss code NTSN): a cookie that does not open, a request that
    /// does not authenticate.
    KissNts,
    DropTooShort,
    DropOversized,
    DropBadVersion,
    DropBadMode,
    DropMalformed,
    DropDenied,
    DropRateLimited,
    DropAuthRequired,
    /// An NTS reply not built: the system gave no random numbers.
    DropNoRandom,
    /// A source address the kernel could not give, or port 0 (nowhere to reply to).
    DropBadSource,
    /// A built reply the kernel refused to send; it is also counted under its reply outcome.
    DropSendFailed,
    /// A mode 6 (ntpq) request answered with data.
    ControlAnswered,
    /// A mode 6 request answered with an error (unknown association or variable, a write).
    ControlError,
    /// A mode 6 request from outside `query_allow`: never answered.
    DropControlDenied,
    /// A mode 6 request over the client's rate: never answered.
    DropControlRateLimited,
}

impl Outcome {
    pub const ALL: [Outcome; 22] = [
        Outcome::Served,
        Outcome::ServedAuthenticated,
        Outcome::CryptoNak,
        Outcome::KissRate,
        Outcome::KissDeny,
        Outcome::ServedNts,
        Outcome::KissNts,
        Outcome::DropTooShort,
        Outcome::DropOversized,
        Outcome::DropBadVersion,
        Outcome::DropBadMode,
        Outcome::DropMalformed,
        Outcome::DropDenied,
        Outcome::DropRateLimited,
        Outcome::DropAuthRequired,
        Outcome::DropNoRandom,
        Outcome::DropBadSource,
        Outcome::DropSendFailed,
        Outcome::ControlAnswered,
        Outcome::ControlError,
        Outcome::DropControlDenied,
        Outcome::DropControlRateLimited,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Outcome::Served => "served",
            Outcome::ServedAuthenticated => "served_authenticated",
            Outcome::CryptoNak => "crypto_nak",
            Outcome::KissRate => "kod_rate",
            Outcome::KissDeny => "kod_deny",
            Outcome::ServedNts => "served_nts",
            Outcome::KissNts => "kod_ntsn",
            Outcome::DropTooShort => "too_short",
            Outcome::DropOversized => "oversized",
            Outcome::DropBadVersion => "bad_version",
            Outcome::DropBadMode => "bad_mode",
            Outcome::DropMalformed => "malformed",
            Outcome::DropDenied => "denied",
            Outcome::DropRateLimited => "rate_limited",
            Outcome::DropAuthRequired => "auth_required",
            Outcome::DropNoRandom => "no_random",
            Outcome::DropBadSource => "bad_source",
            Outcome::DropSendFailed => "send_failed",
            Outcome::ControlAnswered => "control_answered",
            Outcome::ControlError => "control_error",
            Outcome::DropControlDenied => "control_denied",
            Outcome::DropControlRateLimited => "control_rate_limited",
        }
    }
}

#[derive(Default)]
pub struct ServerStats {
    counts: [AtomicU64; Outcome::ALL.len()],
    pub clients: ClientCounter,
    /// Replies sent in interleaved mode (also counted under their outcome).
    pub interleaved: AtomicU64,
    /// Kernel transmit timestamps matched to the replies they belong to.
    pub tx_stamps: AtomicU64,
    /// Which timestamps each interface of each address got; set when addresses open or close.
    pub timestamping: Mutex<Vec<Stamping>>,
    /// The hardware clocks in use, published by their poller for the workers and the status.
    pub hw_clocks: ArcSwap<HwClocks>,
    /// Datagrams on hardware-stamping interfaces stamped by hardware, or not.
    pub hw: HwCounts,
}

const REGISTERS: usize = 256;

/// Distinct client addresses seen since start, estimated by HyperLogLog with 256 registers
/// (about 6.5% error): fixed memory and a lock-free update, however many clients come.
/// The hasher is random per process, so that nobody can pick addresses that inflate the count.
pub struct ClientCounter<S = RandomState> {
    registers: [AtomicU8; REGISTERS],
    hasher: S,
}

impl Default for ClientCounter {
    fn default() -> Self {
        ClientCounter::with_hasher(RandomState::new())
    }
}

impl<S: BuildHasher> ClientCounter<S> {
    pub fn with_hasher(hasher: S) -> Self {
        ClientCounter {
            registers: std::array::from_fn(|_| AtomicU8::new(0)),
            hasher,
        }
    }

    pub fn observe(&self, ip: IpAddr) {
        let h = self.hasher.hash_one(ip);
        let register = &self.registers[(h as usize) % REGISTERS];
        // The rank of the first 1 bit in the other 56 bits.
        let rank = ((h >> 8).leading_zeros() - 8 + 1).min(57) as u8;
        if register.load(Ordering::Relaxed) < rank {
            register.fetch_max(rank, Ordering::Relaxed);
        }
    }

    pub fn estimate(&self) -> f64 {
        let m = REGISTERS as f64;
        let (mut sum, mut zeros) = (0.0, 0usize);
        for r in &self.registers {
            let v = r.load(Ordering::Relaxed);
            sum += 2f64.powi(-i32::from(v));
            zeros += usize::from(v == 0);
        }
        let raw = 0.7213 / (1.0 + 1.079 / m) * m * m / sum;
        if raw <= 2.5 * m && zeros > 0 {
            // Few clients: linear counting is exact enough and unbiased.
            m * (m / zeros as f64).ln()
        } else {
            raw
        }
    }
}

impl ServerStats {
    pub fn count(&self, outcome: Outcome) {
        self.counts[outcome as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn get(&self, outcome: Outcome) -> u64 {
        self.counts[outcome as usize].load(Ordering::Relaxed)
    }

    /// Requests received: every outcome but a failed send, which is also counted under the
    /// reply it failed to send.
    pub fn received(&self) -> u64 {
        Outcome::ALL
            .iter()
            .filter(|o| **o != Outcome::DropSendFailed)
            .map(|o| self.get(*o))
            .sum()
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
    use std::hash::{BuildHasherDefault, DefaultHasher};

    #[test]
    fn a_failed_send_is_not_a_second_request() {
        let stats = ServerStats::default();
        stats.count(Outcome::Served);
        stats.count(Outcome::DropSendFailed);
        stats.count(Outcome::DropDenied);
        assert_eq!(stats.received(), 2);
    }

    #[test]
    fn every_outcome_has_its_own_counter() {
        let stats = ServerStats::default();
        for (i, o) in Outcome::ALL.iter().enumerate() {
            assert_eq!(*o as usize, i);
            stats.count(*o);
        }
        assert!(stats.snapshot().iter().all(|(_, n)| *n == 1));
    }

    #[test]
    fn distinct_clients_are_estimated_within_ten_percent() {
        // A fixed hasher: with a random one the estimate is off by more than 10% in one run
        // of eight (the standard error is 6.5%).
        let c = ClientCounter::with_hasher(BuildHasherDefault::<DefaultHasher>::default());
        assert_eq!(c.estimate(), 0.0);
        for n in 0..20_000u32 {
            // Each client asks several times; only distinct addresses count.
            for _ in 0..3 {
                c.observe(IpAddr::from(n.to_be_bytes()));
            }
        }
        let e = c.estimate();
        assert!((e - 20_000.0).abs() < 2_000.0, "{e}");
        let few = ClientCounter::with_hasher(BuildHasherDefault::<DefaultHasher>::default());
        for n in 0..10u32 {
            few.observe(IpAddr::from(n.to_be_bytes()));
        }
        assert!((few.estimate() - 10.0).abs() < 1.0, "{}", few.estimate());
    }
}
