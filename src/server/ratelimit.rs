//! Per-client rate limiting with a token bucket per client, in a fixed-size table.
//!
//! A client is an address masked to a prefix (IPv6 by /64 by default, since one host owns a
//! whole /64). The table is set-associative: a client hashes (with a per-process random key, so
//! attackers cannot aim at one set) to a set of `WAYS` slots, and a new client replaces the least
//! recently seen one in its set. Memory is fixed at start, whatever the traffic.
//!
//! Anyone can forge a victim's address and spend its tokens, so a share of the requests over the
//! limit is answered anyway (chrony's `leak`): the victim keeps getting some answers, and the
//! forger gains at most that share in reflected replies, each no larger than its request.

use std::hash::{BuildHasher, RandomState};
use std::net::IpAddr;

use super::acl::canonical;

const WAYS: usize = 4;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Params {
    /// Average seconds between requests a client may sustain.
    pub interval: f64,
    /// Requests a client may send back to back after a quiet spell.
    pub burst: u32,
    pub ipv4_prefix: u8,
    pub ipv6_prefix: u8,
    /// Size of the client table.
    pub max_clients: usize,
    /// Share of the requests over the limit answered anyway, 0 to 1.
    pub leak: f64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    /// Over the limit; `kod` says whether this client may be sent a RATE kiss now (kisses are
    /// themselves limited to one per interval).
    Limited {
        kod: bool,
    },
}

#[derive(Clone, Copy, Default)]
struct Slot {
    client: u128,
    last_nanos: i64,
    last_kod_nanos: i64,
    tokens: f32,
    used: bool,
}

pub struct RateLimiter {
    slots: Vec<Slot>,
    set_mask: usize,
    hasher: RandomState,
    params: Params,
    /// xorshift64 state for the leak: fast, and unpredictable enough from outside (seeded by
    /// the process's random hash key).
    random: u64,
}

impl RateLimiter {
    /// A table holding at least `params.max_clients` clients (rounded up to a power of two).
    pub fn new(params: Params) -> Self {
        let sets = Self::sets_for(params.max_clients);
        let hasher = RandomState::new();
        RateLimiter {
            slots: vec![Slot::default(); sets * WAYS],
            set_mask: sets - 1,
            random: hasher.hash_one("leak") | 1,
            hasher,
            params,
        }
    }

    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// The memory a table for `max_clients` takes.
    pub fn bytes_for(max_clients: usize) -> usize {
        Self::sets_for(max_clients) * WAYS * std::mem::size_of::<Slot>()
    }

    fn sets_for(max_clients: usize) -> usize {
        (max_clients.max(WAYS) / WAYS).next_power_of_two()
    }

    pub fn params(&self) -> Params {
        self.params
    }

    /// Changes the limits; clients already in the table keep their history.
    pub fn set_params(&mut self, params: Params) {
        self.params = params;
    }

    /// Accounts one request from `ip` received at `now_nanos` (any monotonic-enough clock).
    pub fn check(&mut self, ip: IpAddr, now_nanos: i64) -> Verdict {
        let i = self.slot(ip, now_nanos);
        if self.slots[i].tokens >= 1.0 {
            self.slots[i].tokens -= 1.0;
            return Verdict::Pass;
        }
        if self.leak() {
            return Verdict::Pass;
        }
        Verdict::Limited {
            kod: self.kiss_slot(i, now_nanos),
        }
    }

    /// Whether `ip` may be sent a kiss-o'-death now: at most one per interval, whatever the
    /// reason (RATE or DENY), so that kisses cannot be used to reflect a flood.
    pub fn kiss(&mut self, ip: IpAddr, now_nanos: i64) -> bool {
        let i = self.slot(ip, now_nanos);
        self.kiss_slot(i, now_nanos)
    }

    fn kiss_slot(&mut self, i: usize, now_nanos: i64) -> bool {
        let interval_nanos = (self.params.interval * 1e9) as i64;
        let slot = &mut self.slots[i];
        let kod = now_nanos.saturating_sub(slot.last_kod_nanos) >= interval_nanos;
        if kod {
            slot.last_kod_nanos = now_nanos;
        }
        kod
    }

    /// Whether this over-limit request is one of the share answered anyway.
    fn leak(&mut self) -> bool {
        self.random ^= self.random << 13;
        self.random ^= self.random >> 7;
        self.random ^= self.random << 17;
        ((self.random >> 11) as f64 / (1u64 << 53) as f64) < self.params.leak
    }

    /// The index of the client's slot, its tokens refilled to `now_nanos`, made (evicting the
    /// least recently seen client of the set) if the client is new.
    fn slot(&mut self, ip: IpAddr, now_nanos: i64) -> usize {
        let client = client_key(ip, self.params.ipv4_prefix, self.params.ipv6_prefix);
        let set = (self.hasher.hash_one(client) as usize & self.set_mask) * WAYS;
        let ways = &mut self.slots[set..set + WAYS];
        let burst = self.params.burst.max(1) as f32;
        let way = match ways.iter().position(|s| s.used && s.client == client) {
            Some(i) => {
                let s = &mut ways[i];
                // A clock stepped backwards refills nothing rather than panicking or overflowing.
                let elapsed = now_nanos.saturating_sub(s.last_nanos).max(0);
                let refill = elapsed as f64 / (self.params.interval * 1e9).max(1.0);
                s.tokens = (s.tokens + refill as f32).min(burst);
                i
            }
            None => {
                let victim = ways
                    .iter()
                    .enumerate()
                    .min_by_key(|(_, s)| (s.used, s.last_nanos))
                    .map_or(0, |(i, _)| i);
                ways[victim] = Slot {
                    client,
                    last_nanos: now_nanos,
                    last_kod_nanos: i64::MIN,
                    tokens: burst,
                    used: true,
                };
                victim
            }
        };
        ways[way].last_nanos = now_nanos;
        set + way
    }
}

/// A client: its address masked to the prefixes, IPv4 and IPv6 in one key space.
pub fn client_key(ip: IpAddr, ipv4_prefix: u8, ipv6_prefix: u8) -> u128 {
    fn mask(value: u128, bits: u32, prefix: u8) -> u128 {
        let keep = (prefix as u32).min(bits);
        if keep == 0 {
            0
        } else {
            value & (u128::MAX << (bits - keep))
        }
    }
    match canonical(ip) {
        // IPv4 keys live in ::ffff:0:0/96, which no IPv6 key can reach: `canonical` has turned
        // every mapped address into IPv4.
        IpAddr::V4(v4) => {
            u128::from(v4.to_ipv6_mapped()) & !0xffff_ffff
                | mask(u32::from(v4) as u128, 32, ipv4_prefix)
        }
        IpAddr::V6(v6) => mask(u128::from(v6), 128, ipv6_prefix),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: i64 = 1_000_000_000;

    fn params() -> Params {
        Params {
            interval: 2.0,
            burst: 4,
            ipv4_prefix: 32,
            ipv6_prefix: 64,
            max_clients: 64,
            leak: 0.0,
        }
    }

    #[test]
    fn burst_then_limited_then_refilled() {
        let mut rl = RateLimiter::new(params());
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..4 {
            assert_eq!(rl.check(ip, 0), Verdict::Pass);
        }
        assert_eq!(rl.check(ip, 0), Verdict::Limited { kod: true });
        // The next kiss waits an interval.
        assert_eq!(rl.check(ip, SEC), Verdict::Limited { kod: false });
        assert_eq!(rl.check(ip, 3 * SEC), Verdict::Pass);
        // A steady client at the average interval is never limited.
        for i in 0..100 {
            assert_eq!(rl.check(ip, 10 * SEC + i * 2 * SEC), Verdict::Pass);
        }
    }

    #[test]
    fn ipv6_clients_share_their_64() {
        let mut rl = RateLimiter::new(Params {
            burst: 1,
            ..params()
        });
        assert_eq!(
            rl.check("2001:db8:1:2::1".parse().unwrap(), 0),
            Verdict::Pass
        );
        assert!(matches!(
            rl.check("2001:db8:1:2::ffff".parse().unwrap(), 0),
            Verdict::Limited { .. }
        ));
        assert_eq!(
            rl.check("2001:db8:1:3::1".parse().unwrap(), 0),
            Verdict::Pass
        );
    }

    #[test]
    fn table_stays_bounded_under_a_flood_of_addresses() {
        let mut rl = RateLimiter::new(Params {
            max_clients: 1000,
            ..params()
        });
        let cap = rl.capacity();
        for i in 0..100_000u32 {
            rl.check(IpAddr::V4(i.into()), i as i64);
        }
        assert_eq!(rl.capacity(), cap);
        // A recently seen client keeps its state: it is still limited after its burst.
        let ip: IpAddr = "198.51.100.7".parse().unwrap();
        let t = 200_000;
        for _ in 0..4 {
            rl.check(ip, t);
        }
        assert!(matches!(rl.check(ip, t), Verdict::Limited { .. }));
    }

    /// The attack the review measured: a client polling every 2 s while 2.4 requests a second
    /// are forged with its address. Without the leak it got 1 answer in 19.
    fn victim_share(leak: f64) -> f64 {
        let mut rl = RateLimiter::new(Params {
            interval: 1.0,
            burst: 16,
            leak,
            ..params()
        });
        let victim: IpAddr = "192.0.2.1".parse().unwrap();
        let (mut asked, mut answered) = (0, 0);
        let forged_every = SEC * 10 / 24;
        let mut next_forged = 0;
        for poll in 0..5000i64 {
            let t = poll * 2 * SEC;
            while next_forged < t {
                rl.check(victim, next_forged);
                next_forged += forged_every;
            }
            asked += 1;
            answered += (rl.check(victim, t) == Verdict::Pass) as i32;
        }
        answered as f64 / asked as f64
    }

    #[test]
    fn a_forged_flood_leaves_its_victim_a_share_of_answers() {
        // Without a leak, the tokens (1/s) go to the forged requests: 0.3% answered here.
        assert!(victim_share(0.0) < 0.05, "{}", victim_share(0.0));
        // With a quarter leaked, a quarter of the victim's polls are answered (25.4% here).
        let share = victim_share(0.25);
        assert!((0.2..0.3).contains(&share), "{share}");
    }

    #[test]
    fn kisses_are_one_per_interval_whatever_the_reason() {
        let mut rl = RateLimiter::new(params());
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        assert!(rl.kiss(ip, 0));
        assert!(!rl.kiss(ip, SEC));
        assert!(rl.kiss(ip, 2 * SEC));
        // A kiss does not spend the client's tokens.
        assert_eq!(rl.check(ip, 2 * SEC), Verdict::Pass);
    }

    #[test]
    fn clock_stepping_back_does_not_panic() {
        let mut rl = RateLimiter::new(Params {
            max_clients: 8,
            ..params()
        });
        let ip: IpAddr = "192.0.2.9".parse().unwrap();
        rl.check(ip, i64::MAX);
        rl.check(ip, i64::MIN);
        rl.check(ip, 0);
    }
}
