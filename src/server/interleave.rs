//! Interleaved client/server mode (RFC 9769, chrony's `xleave`): a reply's transmit timestamp
//! is read before it leaves, so it is early by the time the send takes. The kernel says when
//! the reply really left, but only after it left; an interleaved reply carries that true time
//! of the *previous* reply to the same client instead.
//!
//! A client asks for it by putting our receive timestamp of its previous request in its origin
//! field (a basic client puts zero or our transmit timestamp there). If that is the receive
//! timestamp we remember for this client and we have the kernel's transmit timestamp of that
//! reply, the reply is interleaved: origin = the request's receive field (the client's own
//! cookie), receive = this request's receive time, transmit = the previous reply's true
//! transmit time. Otherwise it is basic, unchanged.
//!
//! Only replies to requests in interleaved form are stamped, so a client's third reply is its
//! first interleaved one, and basic clients cost no transmit timestamps.
//!
//! The state is one entry per client address, in a fixed-size set-associative table like the
//! rate limiter's: a flood of addresses evicts entries, and an evicted client simply gets one
//! basic reply. A request with a forged origin (an off-path guess of a 64-bit timestamp) gets a
//! basic reply; one with a forged source address can only replace that address's own entry, so
//! no reply ever carries another client's timestamps. Pure: no clock, no socket.

use std::hash::{BuildHasher, RandomState};
use std::net::IpAddr;

use super::ratelimit::client_key;
use super::respond::Reply;
use super::stats::{Outcome, ServerStats};
use crate::time::NtpTimestamp;

const WAYS: usize = 4;
const ORIGIN: usize = 24;
const RECEIVE: usize = 32;
const TRANSMIT: usize = 40;

#[derive(Clone, Copy, Default)]
struct Slot {
    client: u128,
    /// Our receive timestamp of the client's last request, as served.
    rx: u64,
    /// The kernel's transmit timestamp of the reply to it, as served; 0 until it is known.
    tx: u64,
    /// `tx` is the network interface's (hardware) timestamp.
    tx_hardware: bool,
    /// When the slot was last used, to evict the least recently seen client of a set.
    seen: u64,
}

/// What `Interleave::answer` decided for one reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Answer {
    /// The transmit timestamp an interleaved reply carries; `None`: a basic reply.
    pub transmit: Option<NtpTimestamp>,
    /// Whether to ask the kernel when this reply leaves: only for a client whose request was in
    /// interleaved form, which will name this reply next (chrony does the same, so a new
    /// client's third reply is its first interleaved one). Everyone else costs nothing.
    pub stamp: bool,
}

pub struct Interleave {
    slots: Vec<Slot>,
    set_mask: usize,
    hasher: RandomState,
    /// A counter standing in for time in the eviction order.
    tick: u64,
}

impl Interleave {
    /// A table for at least `max_clients` clients (rounded up to a power of two).
    pub fn new(max_clients: usize) -> Interleave {
        let sets = Self::sets_for(max_clients);
        Interleave {
            slots: vec![Slot::default(); sets * WAYS],
            set_mask: sets - 1,
            hasher: RandomState::new(),
            tick: 0,
        }
    }

    /// The memory a table for `max_clients` takes.
    pub fn bytes_for(max_clients: usize) -> usize {
        Self::sets_for(max_clients) * WAYS * std::mem::size_of::<Slot>()
    }

    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    fn sets_for(max_clients: usize) -> usize {
        (max_clients.max(WAYS) / WAYS).next_power_of_two()
    }

    /// Makes the time reply `reply` (built in `out`) to `request` from `peer` interleaved if
    /// the client asks for it and we can; kisses and crypto-NAKs stay as they are.
    /// Returns whether to ask the kernel for this reply's transmit timestamp.
    pub fn reply(
        &mut self,
        reply: &mut Reply,
        peer: IpAddr,
        request: &[u8],
        out: &mut [u8],
        stats: &ServerStats,
    ) -> bool {
        let (Outcome::Served | Outcome::ServedAuthenticated) = reply.outcome else {
            return false;
        };
        let answer = self.answer(peer, request, out);
        reply.transmit = answer.transmit;
        if reply.transmit.is_some() {
            stats
                .interleaved
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        answer.stamp
    }

    /// Turns the basic reply `reply` to `request` from `peer` into an interleaved one if the
    /// client asks for it and we can. Either way remembers the reply's receive timestamp as
    /// this client's latest. `request` and `reply` have full headers (the responder checked).
    pub fn answer(&mut self, peer: IpAddr, request: &[u8], reply: &mut [u8]) -> Answer {
        let client = client_key(peer, 32, 128);
        let origin = read(request, ORIGIN);
        let (set, found) = self.find(client);
        // The request's form: naming our last receive time (a client that copies its transmit
        // timestamp into the receive field is not interleaving, as chrony judges).
        let asks = found.map(|i| self.slots[set + i]).filter(|s| {
            origin != 0 && s.rx == origin && request[RECEIVE..TRANSMIT] != request[TRANSMIT..]
        });
        let transmit = asks.filter(|s| s.tx != 0).map(|s| {
            reply[ORIGIN..RECEIVE].copy_from_slice(&request[RECEIVE..TRANSMIT]);
            NtpTimestamp(s.tx)
        });
        let way = found.unwrap_or_else(|| self.victim(set));
        self.tick += 1;
        self.slots[set + way] = Slot {
            client,
            rx: read(reply, RECEIVE),
            tx: 0,
            tx_hardware: false,
            seen: self.tick,
        };
        Answer {
            transmit,
            stamp: asks.is_some(),
        }
    }

    /// Records that the reply to `to` carrying receive timestamp `rx` left at `tx` (both as
    /// served), stamped by the network interface if `hardware`: a hardware stamp replaces a
    /// software one of the same reply (a driver may loop back both), never the reverse. A reply
    /// the table no longer expects (evicted, or followed by a newer request) is ignored.
    /// Returns whether this was the reply's first transmit timestamp.
    pub fn transmitted(
        &mut self,
        to: IpAddr,
        rx: NtpTimestamp,
        tx: NtpTimestamp,
        hardware: bool,
    ) -> bool {
        let (set, found) = self.find(client_key(to, 32, 128));
        let Some(slot) = found.map(|i| &mut self.slots[set + i]) else {
            return false;
        };
        let first = slot.tx == 0;
        if slot.rx == rx.0 && (first || (hardware && !slot.tx_hardware)) {
            slot.tx = tx.0;
            slot.tx_hardware = hardware;
            return first;
        }
        false
    }

    /// The client's set, and its way in the set if it has one.
    fn find(&self, client: u128) -> (usize, Option<usize>) {
        let set = (self.hasher.hash_one(client) as usize & self.set_mask) * WAYS;
        let ways = &self.slots[set..set + WAYS];
        (
            set,
            ways.iter().position(|s| s.seen != 0 && s.client == client),
        )
    }

    /// The way to give a new client: an unused one, or the least recently seen.
    fn victim(&self, set: usize) -> usize {
        let ways = &self.slots[set..set + WAYS];
        (0..WAYS).min_by_key(|&i| ways[i].seen).unwrap_or(0)
    }
}

fn read(packet: &[u8], at: usize) -> u64 {
    packet
        .get(at..at + 8)
        .map_or(0, |b| u64::from_be_bytes(b.try_into().expect("8 bytes")))
}

/// The receive timestamp a sent reply carries: the key `transmitted` matches it by.
pub fn sent_receive(reply: &[u8]) -> Option<NtpTimestamp> {
    reply
        .get(RECEIVE..TRANSMIT)
        .map(|b| NtpTimestamp(u64::from_be_bytes(b.try_into().expect("8 bytes"))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A request: origin, receive and transmit fields as given.
    fn request(origin: u64, receive: u64, transmit: u64) -> Vec<u8> {
        let mut p = vec![0u8; 48];
        p[0] = 0x23;
        p[ORIGIN..RECEIVE].copy_from_slice(&origin.to_be_bytes());
        p[RECEIVE..TRANSMIT].copy_from_slice(&receive.to_be_bytes());
        p[TRANSMIT..].copy_from_slice(&transmit.to_be_bytes());
        p
    }

    /// A basic reply to `req` received at `rx`, as the responder builds it.
    fn reply(req: &[u8], rx: u64) -> Vec<u8> {
        let mut r = vec![0u8; 48];
        r[0] = 0x24;
        r[ORIGIN..RECEIVE].copy_from_slice(&req[TRANSMIT..]);
        r[RECEIVE..TRANSMIT].copy_from_slice(&rx.to_be_bytes());
        r
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// One exchange: the transmit timestamp of an interleaved reply, the reply's origin field,
    /// and whether the reply is to be stamped.
    fn exchange(t: &mut Interleave, peer: IpAddr, req: &[u8], rx: u64) -> (Option<u64>, u64, bool) {
        let mut r = reply(req, rx);
        let answer = t.answer(peer, req, &mut r);
        (answer.transmit.map(|t| t.0), read(&r, ORIGIN), answer.stamp)
    }

    #[test]
    fn a_client_that_asks_gets_the_previous_replys_true_transmit_time() {
        let mut t = Interleave::new(64);
        let a = ip("192.0.2.1");
        // The first request is basic: the reply echoes its transmit field, and is not stamped.
        assert_eq!(
            exchange(&mut t, a, &request(0, 0, 111), 1000),
            (None, 111, false)
        );
        // Then the client names our receive time 1000, and its own receive time 2000 as cookie:
        // still basic (1000's reply was not stamped), but this one is.
        assert_eq!(
            exchange(&mut t, a, &request(1000, 2000, 222), 3000),
            (None, 222, true)
        );
        t.transmitted(a, NtpTimestamp(3000), NtpTimestamp(3005), false);
        assert_eq!(
            exchange(&mut t, a, &request(3000, 4000, 333), 5000),
            (Some(3005), 4000, true)
        );
        // Its transmit time not yet known: basic, stamped.
        assert_eq!(
            exchange(&mut t, a, &request(5000, 6000, 444), 7000),
            (None, 444, true)
        );
        // A request whose receive field copies its transmit field is not interleaving.
        t.transmitted(a, NtpTimestamp(7000), NtpTimestamp(7005), false);
        assert_eq!(
            exchange(&mut t, a, &request(7000, 555, 555), 8000),
            (None, 555, false)
        );
    }

    #[test]
    fn a_hardware_transmit_stamp_wins_over_the_software_one_of_the_same_reply() {
        let mut t = Interleave::new(64);
        let a = ip("192.0.2.1");
        exchange(&mut t, a, &request(0, 0, 111), 1000);
        exchange(&mut t, a, &request(1000, 2000, 222), 3000);
        // Software first, then hardware: both recorded, counted once.
        assert!(t.transmitted(a, NtpTimestamp(3000), NtpTimestamp(3007), false));
        assert!(!t.transmitted(a, NtpTimestamp(3000), NtpTimestamp(3005), true));
        assert!(!t.transmitted(a, NtpTimestamp(3000), NtpTimestamp(3009), false));
        assert_eq!(
            exchange(&mut t, a, &request(3000, 4000, 333), 5000),
            (Some(3005), 4000, true)
        );
        // Hardware first: the software one that follows changes nothing.
        assert!(t.transmitted(a, NtpTimestamp(5000), NtpTimestamp(5005), true));
        assert!(!t.transmitted(a, NtpTimestamp(5000), NtpTimestamp(5008), false));
        assert_eq!(
            exchange(&mut t, a, &request(5000, 6000, 444), 7000),
            (Some(5005), 6000, true)
        );
    }

    #[test]
    fn stale_or_forged_origins_and_other_clients_get_basic_replies() {
        let mut t = Interleave::new(64);
        let (a, b) = (ip("192.0.2.1"), ip("2001:db8::1"));
        exchange(&mut t, a, &request(0, 0, 1), 1000);
        t.transmitted(a, NtpTimestamp(1000), NtpTimestamp(1005), false);
        // Another address naming a's receive timestamp gets nothing of a's.
        assert_eq!(
            exchange(&mut t, b, &request(1000, 9, 2), 1100),
            (None, 2, false)
        );
        // A guess at a's origin gets a basic reply, and replaces a's entry (a gets basic next).
        assert_eq!(
            exchange(&mut t, a, &request(999, 9, 3), 1200),
            (None, 3, false)
        );
        assert_eq!(
            exchange(&mut t, a, &request(1000, 9, 4), 1300),
            (None, 4, false)
        );
        // A transmit report for a reply the table no longer expects changes nothing.
        t.transmitted(a, NtpTimestamp(1000), NtpTimestamp(1), false);
        t.transmitted(b, NtpTimestamp(1300), NtpTimestamp(1), false);
        assert_eq!(
            exchange(&mut t, a, &request(1300, 9, 5), 1400),
            (None, 5, true)
        );
    }

    #[test]
    fn the_table_stays_its_size_under_a_flood_and_an_evicted_client_falls_back() {
        let mut t = Interleave::new(1000);
        let cap = t.capacity();
        let a = ip("198.51.100.7");
        exchange(&mut t, a, &request(0, 0, 1), 1000);
        t.transmitted(a, NtpTimestamp(1000), NtpTimestamp(1005), false);
        for i in 0..100_000u32 {
            exchange(
                &mut t,
                IpAddr::V4(i.into()),
                &request(0, 0, 1),
                5000 + i as u64,
            );
        }
        assert_eq!(t.capacity(), cap);
        assert_eq!(
            Interleave::bytes_for(1000),
            cap * std::mem::size_of::<Slot>()
        );
        assert_eq!(
            exchange(&mut t, a, &request(1000, 9, 7), 9),
            (None, 7, false)
        );
    }

    #[derive(Clone, Debug)]
    enum Step {
        /// Client `c` sends a request: interleaved (naming its last receive time, or a wrong
        /// one) or basic.
        Ask {
            c: usize,
            interleaved: bool,
            forged: bool,
        },
        /// The kernel reports the transmit time of client `c`'s last reply.
        Sent { c: usize },
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            (0..6usize, any::<bool>(), any::<bool>()).prop_map(|(c, interleaved, forged)| {
                Step::Ask {
                    c,
                    interleaved,
                    forged,
                }
            }),
            (0..6usize).prop_map(|c| Step::Sent { c }),
        ]
    }

    proptest! {
        /// Whatever the order of requests, modes, forgeries and reports, across clients that
        /// crowd a tiny table: a reply is interleaved only if the client named the receive
        /// time of its own previous reply, and then carries exactly that reply's transmit time;
        /// only such requests' replies are stamped.
        #[test]
        fn only_a_clients_own_previous_transmit_time_is_ever_returned(steps in proptest::collection::vec(step(), 1..300)) {
            let mut t = Interleave::new(4);
            let clients: Vec<IpAddr> = (1..=6).map(|i| IpAddr::V4([192, 0, 2, i].into())).collect();
            // Per client: the receive time of its last reply, whether it was stamped, and its
            // true transmit time once the kernel said.
            let mut last: Vec<Option<(u64, bool, Option<u64>)>> = vec![None; 6];
            let mut clock = 1000u64;
            for s in steps {
                clock += 10;
                match s {
                    Step::Ask { c, interleaved, forged } => {
                        let named = match (last[c], forged) {
                            (Some((rx, ..)), false) => rx,
                            (Some((rx, ..)), true) => rx ^ 1 << 63,
                            (None, _) => 1 << 63,
                        };
                        let req = if interleaved { request(named, clock + 1, clock + 2) } else { request(0, 0, clock + 2) };
                        let (tx, origin, stamp) = exchange(&mut t, clients[c], &req, clock);
                        prop_assert!(!stamp || (interleaved && !forged));
                        if let Some(tx) = tx {
                            prop_assert!(stamp);
                            prop_assert_eq!(Some(tx), last[c].and_then(|l| l.2));
                            prop_assert_eq!(origin, clock + 1);
                        } else {
                            prop_assert_eq!(origin, clock + 2);
                        }
                        last[c] = Some((clock, stamp, None));
                    }
                    Step::Sent { c } => {
                        if let Some((rx, true, None)) = last[c] {
                            t.transmitted(clients[c], NtpTimestamp(rx), NtpTimestamp(rx + 3), false);
                            last[c] = Some((rx, true, Some(rx + 3)));
                        }
                    }
                }
            }
        }
    }
}
