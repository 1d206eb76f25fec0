//! Per-client rate limiting with a token bucket per client, in a fixed-size table.
//!
//! A client is an address masked to a prefix (IPv6 by /64 by default, since one host owns a
//! whole /64). The table is set-associative: a client hashes (with a per-process random key, so
//! attackers cannot aim at one set) to a set of `WAYS` slots, and a new client replaces the least
//! recently seen one in its set. Memory is fixed at start, whatever the traffic.

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
}

impl RateLimiter {
    /// A table holding at least `params.max_clients` clients (rounded up to a power of two).
    pub fn new(params: Params) -> Self {
        let sets = (params.max_clients.max(WAYS) / WAYS).next_power_of_two();
        RateLimiter {
            slots: vec![Slot::default(); sets * WAYS],
            set_mask: sets - 1,
            hasher: RandomState::new(),
            params,
        }
    }

    pub fn capacity(&self) -> usize {
        self.slots.len()
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
        let client = client_key(ip, &self.params);
        let set = (self.hasher.hash_one(client) as usize & self.set_mask) * WAYS;
        let ways = &mut self.slots[set..set + WAYS];
        let burst = self.params.burst.max(1) as f32;
        let interval_nanos = (self.params.interval * 1e9) as i64;
        let slot = match ways.iter().position(|s| s.used && s.client == client) {
            Some(i) => {
                let s = &mut ways[i];
                // A clock stepped backwards refills nothing rather than panicking or overflowing.
                let elapsed = now_nanos.saturating_sub(s.last_nanos).max(0);
                let refill = elapsed as f64 / (self.params.interval * 1e9).max(1.0);
                s.tokens = (s.tokens + refill as f32).min(burst);
                s
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
                &mut ways[victim]
            }
        };
        slot.last_nanos = now_nanos;
        if slot.tokens >= 1.0 {
            slot.tokens -= 1.0;
            return Verdict::Pass;
        }
        let kod = now_nanos.saturating_sub(slot.last_kod_nanos) >= interval_nanos;
        if kod {
            slot.last_kod_nanos = now_nanos;
        }
        Verdict::Limited { kod }
    }
}

fn client_key(ip: IpAddr, params: &Params) -> u128 {
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
                | mask(u32::from(v4) as u128, 32, params.ipv4_prefix)
        }
        IpAddr::V6(v6) => mask(u128::from(v6), 128, params.ipv6_prefix),
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
