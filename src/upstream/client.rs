//! NTP client mode (RFC 5905) for one upstream server, without I/O: it builds requests, checks
//! replies, measures offset and delay from T1..T4, filters, and decides when to poll next. The
//! driver gives it the time of every event, a random cookie for every request and the bytes
//! that arrived.
//!
//! Poll interval: it starts at `minpoll`. A measurement is consistent when its error interval
//! (offset ± (delay/2 + dispersion)) overlaps the filter's chosen one: the server and our clock
//! agree as well as the path lets us tell. After `GROW_AFTER` consistent measurements in a row
//! the interval doubles, up to `maxpoll`; an inconsistent one (the offsets scatter more than
//! the delays explain: jitter, or our clock drifting between polls) halves it, down to
//! `minpoll`. A server's RATE kiss doubles it beyond that, up to `MAX_POLL`.
//!
//! Interleaved mode (RFC 9769): once a server has answered, each request names the server's
//! receive time of the previous one, and carries a second cookie in its receive field. A server
//! that offers interleaved mode (pitime, chrony) answers with that cookie as origin and the true
//! (kernel or hardware) transmit time of its previous reply; the measurement is then that of the
//! previous exchange, with our own kernel timestamps of it. Other servers echo the transmit
//! cookie as usual, and the reply is measured in basic mode.

use std::net::IpAddr;

use md5::{Digest, Md5};

use super::filter::{Best, ClockFilter, Measurement};
use crate::clock::change::ClockChange;
use crate::clock::PHI;
use crate::config::NtpSourceConfig;
use crate::ntp::keys::Key;
use crate::ntp::mac::MAX_DIGEST_LEN;
use crate::ntp::packet::{parse_trailer, Header, HEADER_LEN, MODE_SERVER};
use crate::refclock::Sample;
use crate::time::Leap;
use crate::time::{NtpTimestamp, Realtime};

/// Requests in a burst (`iburst`) and the seconds between them.
pub const BURST: u8 = 4;
pub const BURST_SPACING: f64 = 2.0;
/// Root distance beyond which a server is no reference at all, seconds (ntpd's `maxdist`).
pub const MAX_DISTANCE: f64 = 1.5;
/// Consistent measurements in a row after which the poll interval doubles.
pub const GROW_AFTER: u32 = 4;
/// The longest poll interval, log2 seconds (36 hours), as far as RATE kisses can push it.
pub const MAX_POLL: i8 = 17;
/// Unanswered requests after which the server's name is resolved again (it may have moved).
pub const RESOLVE_AFTER: u32 = 4;

/// What to do when a poll is due.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Due {
    /// Send the request.
    Send,
    /// Resolve the server's name again first; the request follows.
    Resolve,
}

/// What a reply that passed the checks means.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Received {
    /// A measurement: the filter's new best, at the instant it was measured.
    Sample(Sample),
    /// A good reply, but the filter still prefers a measurement already given.
    Filtered,
    /// A RATE kiss: the poll interval was doubled.
    RateLimited,
    /// A DENY or RSTR kiss (the code): this server is not polled again.
    Denied([u8; 4]),
}

/// Why a datagram was dropped.
#[derive(Clone, Copy, Debug, PartialEq, thiserror::Error)]
pub enum Rejected {
    #[error("shorter than an NTP header")]
    Short,
    #[error("not a server reply (mode {0})")]
    NotServer(u8),
    #[error("no request waiting for it (a duplicate or a late reply)")]
    Unexpected,
    #[error("origin timestamp is not our request's (spoofed or stale)")]
    WrongOrigin,
    #[error("not signed with our key")]
    Unauthenticated,
    #[error("the server is unsynchronised")]
    Unsynchronised,
    #[error("unknown kiss code {0:?}")]
    Kiss([u8; 4]),
    #[error("receive and transmit timestamps missing or out of order")]
    BadTimestamps,
    #[error("root distance {0:.3} s exceeds 1.5 s")]
    TooFar(f64),
}

/// The request awaiting its reply.
#[derive(Clone, Copy, Debug)]
struct Pending {
    /// The random transmit timestamp sent, which a basic reply must echo as its origin.
    cookie: NtpTimestamp,
    /// Local time of sending (T1).
    sent: Realtime,
    /// The exchange the request named, in interleaved form: an interleaved reply, which echoes
    /// the request's receive field (`!cookie`), measures it.
    named: Option<Exchange>,
}

/// A completed exchange, as an interleaved reply to the next request completes its timestamps.
#[derive(Clone, Copy, Debug)]
struct Exchange {
    /// Our time of sending (T1), our time of receiving the reply (T4), the server's receive
    /// time (T2).
    sent: Realtime,
    received: Realtime,
    server_rx: NtpTimestamp,
}

#[derive(Clone, Debug)]
pub struct Client {
    minpoll: i8,
    maxpoll: i8,
    iburst: bool,
    /// Signs requests; replies must carry a valid MAC with it.
    key: Option<(u32, Key)>,
    refid: [u8; 4],
    poll: i8,
    /// One bit per request, set when it was answered (newest in bit 0).
    reach: u8,
    burst_left: u8,
    next: Realtime,
    pending: Option<Pending>,
    unanswered: u32,
    /// The name was resolved again for the poll now due: that poll is sent.
    resolved: bool,
    consistent: u32,
    denied: bool,
    filter: ClockFilter,
    /// When the last measurement given as a sample arrived: each is given once.
    last_given: Option<Realtime>,
    /// The server's own refid in its last usable reply (what ntpq shows for it).
    server_refid: Option<[u8; 4]>,
    /// The last exchange answered, which the next request names.
    last: Option<Exchange>,
    /// Whether the last reply was interleaved.
    interleaved: bool,
}

/// The refid that names an upstream server (RFC 5905): its IPv4 address, or the first four
/// bytes of the MD5 digest of its IPv6 address.
pub fn refid(ip: IpAddr) -> [u8; 4] {
    match ip {
        IpAddr::V4(v4) => v4.octets(),
        IpAddr::V6(v6) => {
            let digest = Md5::digest(v6.octets());
            [digest[0], digest[1], digest[2], digest[3]]
        }
    }
}

impl Client {
    /// A client for the server at `peer`, whose first request is due at `now`; `key` is the
    /// one `config.key` names.
    pub fn new(config: &NtpSourceConfig, key: Option<Key>, peer: IpAddr, now: Realtime) -> Self {
        Client {
            minpoll: config.minpoll,
            maxpoll: config.maxpoll,
            iburst: config.iburst,
            key: config.key.zip(key),
            refid: refid(peer),
            poll: config.minpoll,
            reach: 0,
            burst_left: 0,
            next: now,
            pending: None,
            unanswered: 0,
            resolved: false,
            consistent: 0,
            denied: false,
            filter: ClockFilter::default(),
            last_given: None,
            server_refid: None,
            last: None,
            interleaved: false,
        }
    }

    /// The server's name resolved anew: a different address is another server, whose
    /// measurements start afresh.
    pub fn set_peer(&mut self, peer: IpAddr) {
        if refid(peer) != self.refid {
            self.refid = refid(peer);
            self.filter.clear();
            self.pending = None;
            self.consistent = 0;
            self.server_refid = None;
            self.last = None;
        }
    }

    /// The poll interval, log2 seconds.
    /// The local clock was changed. A request in flight was timed on the old clock: its reply
    /// is not taken (chrony does the same). The kept measurements and the next poll's time are
    /// restated, so the next measurement is a sample at once.
    pub fn clock_changed(&mut self, change: &ClockChange) {
        if change.step != 0.0 {
            self.pending = None;
            self.last = None;
        }
        self.filter.clock_changed(change);
        self.next = change.restate(self.next);
        if let Some(t) = &mut self.last_given {
            *t = change.restate(*t);
        }
    }

    pub fn poll(&self) -> i8 {
        self.poll
    }

    /// The server's own refid, once it has answered while synchronised.
    pub fn server_refid(&self) -> Option<[u8; 4]> {
        self.server_refid
    }

    pub fn reach(&self) -> u8 {
        self.reach
    }

    /// Whether the server answered the last request in interleaved mode.
    pub fn interleaved(&self) -> bool {
        self.interleaved
    }

    /// The kernel's time of sending the request whose transmit timestamp is `cookie`: truer
    /// than the time read before sending, and the T1 of its exchange.
    pub fn transmitted(&mut self, cookie: NtpTimestamp, at: Realtime) {
        if let Some(p) = self.pending.as_mut().filter(|p| p.cookie == cookie) {
            p.sent = at;
        }
    }

    /// Requests in a row without a reply, counting the one still awaited: at a poll, the
    /// number lost.
    pub fn unanswered(&self) -> u32 {
        self.unanswered + u32::from(self.pending.is_some())
    }

    /// The filter's current choice.
    pub fn best(&self) -> Option<Best> {
        self.filter.best()
    }

    fn interval(&self) -> f64 {
        match self.burst_left {
            0 => 2f64.powi(self.poll.into()),
            _ => BURST_SPACING,
        }
    }

    /// Seconds from `now` until the next request is due (0: now); `None` once the server
    /// refused us. A clock stepped back delays the next request by one interval at most.
    pub fn until_poll(&mut self, now: Realtime) -> Option<f64> {
        if self.denied {
            return None;
        }
        self.next = self.next.min(now.add_secs_f64(self.interval()));
        Some(self.next.seconds_since(now).max(0.0))
    }

    /// What a poll now due asks for: every `RESOLVE_AFTER` unanswered requests, the name is
    /// resolved again before the request is sent: a server that moved is found, one that is
    /// down costs a lookup every four polls.
    pub fn due(&mut self) -> Due {
        let lost = self.unanswered();
        if !self.resolved && lost > 0 && lost % RESOLVE_AFTER == 0 {
            self.resolved = true;
            return Due::Resolve;
        }
        self.resolved = false;
        Due::Send
    }

    /// The request to send at `now` (T1). `cookie` must be random: it is the transmit
    /// timestamp, which only a reply from someone who saw the request can echo.
    pub fn request(&mut self, now: Realtime, cookie: u64) -> Vec<u8> {
        if self.pending.is_some() {
            self.unanswered += 1;
        }
        if self.burst_left > 0 {
            self.burst_left -= 1;
        } else if self.iburst && self.reach == 0 {
            // Unreachable (or just started): a burst fills the filter quickly.
            self.burst_left = BURST - 1;
        }
        self.reach <<= 1;
        self.next = now.add_secs_f64(self.interval());
        let cookie = NtpTimestamp(cookie);
        let named = self.last;
        self.pending = Some(Pending {
            cookie,
            sent: now,
            named,
        });
        // Everything but the transmit timestamp is zero, a request tells nothing about us, but
        // in interleaved form: the server's receive time of the last request, and a cookie.
        let mut header = [0; HEADER_LEN];
        let basic = Header::client_request(self.poll, cookie);
        let request = match named {
            Some(e) => Header {
                origin: e.server_rx,
                receive: NtpTimestamp(!cookie.0),
                ..basic
            },
            None => basic,
        };
        request.write(&mut header);
        let mut out = header.to_vec();
        if let Some((id, key)) = &self.key {
            out.resize(HEADER_LEN + 4 + MAX_DIGEST_LEN, 0);
            let len = key.sign(*id, &mut out, HEADER_LEN);
            out.truncate(len);
        }
        out
    }

    /// A datagram from the server that arrived at local time `t4`.
    pub fn receive(&mut self, data: &[u8], t4: Realtime) -> Result<Received, Rejected> {
        let h = Header::parse(data).ok_or(Rejected::Short)?;
        if h.mode != MODE_SERVER {
            return Err(Rejected::NotServer(h.mode));
        }
        let pending = self.pending.ok_or(Rejected::Unexpected)?;
        let interleaved = pending
            .named
            .filter(|_| h.origin == NtpTimestamp(!pending.cookie.0));
        if h.origin != pending.cookie && interleaved.is_none() {
            return Err(Rejected::WrongOrigin);
        }
        if !self.signed(data, h.version) {
            return Err(Rejected::Unauthenticated);
        }
        // Answered: the cookie is spent, so a replay of this reply is `Unexpected`.
        self.pending = None;
        self.reach |= 1;
        self.unanswered = 0;
        self.last = None;
        self.interleaved = interleaved.is_some();
        if h.stratum == 0 {
            return self.kiss(h.refid, h.poll, pending.sent);
        }
        if h.leap == Leap::Unsynchronised || h.stratum >= 16 {
            return Err(Rejected::Unsynchronised);
        }
        self.server_refid = Some(h.refid);
        let m = match interleaved {
            // The previous exchange, completed by its true transmit time.
            Some(e) => measure(
                &Header {
                    receive: e.server_rx,
                    ..h
                },
                e.sent,
                e.received,
            )?,
            None => measure(&h, pending.sent, t4)?,
        };
        self.last = Some(Exchange {
            sent: pending.sent,
            received: t4,
            server_rx: h.receive,
        });
        let server_distance = h.root_delay.as_secs_f64() / 2.0 + h.root_dispersion.as_secs_f64();
        let distance = server_distance + m.delay / 2.0 + m.dispersion;
        if distance > MAX_DISTANCE {
            return Err(Rejected::TooFar(distance));
        }
        self.filter.add(m);
        let best = self.filter.best().unwrap_or(Best {
            measurement: m,
            jitter: 0.0,
        });
        if self.burst_left == 0 {
            self.adjust_poll(&m, &best.measurement, t4);
        }
        let chosen = best.measurement;
        // The offset belongs to its own instant: an older measurement restamped now would
        // carry the local clock's drift since, and be counted twice.
        if self.last_given.is_some_and(|t| chosen.at <= t) {
            return Ok(Received::Filtered);
        }
        self.last_given = Some(chosen.at);
        let sample = Sample {
            local: chosen.at,
            reference: chosen.at.add_secs_f64(chosen.offset),
            error: server_distance + chosen.delay / 2.0 + chosen.dispersion_at(t4) + best.jitter,
            refid: self.refid,
            stratum: h.stratum,
            root_delay: h.root_delay.as_secs_f64() + chosen.delay,
            leap: h.leap,
            demoted: false,
        };
        Ok(Received::Sample(sample))
    }

    /// Whether `data` carries a valid MAC with our key, if we have one.
    fn signed(&self, data: &[u8], version: u8) -> bool {
        let Some((id, key)) = &self.key else {
            return true;
        };
        let mac = parse_trailer(data, version).ok().and_then(|t| t.mac);
        mac.is_some_and(|m| {
            m.key_id == *id
                && key
                    .algorithm
                    .verify(&key.secret, version, &data[..m.signed_len], m.digest)
        })
    }

    fn kiss(
        &mut self,
        code: [u8; 4],
        server_poll: i8,
        sent: Realtime,
    ) -> Result<Received, Rejected> {
        match &code {
            b"RATE" => {
                self.poll = (self.poll + 1)
                    .max(server_poll)
                    .clamp(self.minpoll, MAX_POLL);
                self.burst_left = 0;
                self.consistent = 0;
                self.next = sent.add_secs_f64(self.interval());
                Ok(Received::RateLimited)
            }
            b"DENY" | b"RSTR" => {
                self.denied = true;
                Ok(Received::Denied(code))
            }
            _ => Err(Rejected::Kiss(code)),
        }
    }

    /// The poll rule in the module's comment.
    fn adjust_poll(&mut self, new: &Measurement, chosen: &Measurement, now: Realtime) {
        // Each offset is uncertain by half its delay plus its dispersion.
        let tolerance =
            (new.delay + chosen.delay) / 2.0 + new.dispersion + chosen.dispersion_at(now);
        if (new.offset - chosen.offset).abs() <= tolerance {
            self.consistent += 1;
            if self.consistent >= GROW_AFTER && self.poll < self.maxpoll {
                self.poll += 1;
                self.consistent = 0;
            }
        } else {
            self.consistent = 0;
            self.poll = (self.poll - 1).max(self.minpoll);
        }
    }
}

/// Offset, delay and dispersion of one exchange (RFC 5905 section 8): T1 sent and T4 received
/// by us, T2 received and T3 sent by the server.
fn measure(h: &Header, t1: Realtime, t4: Realtime) -> Result<Measurement, Rejected> {
    if h.receive == NtpTimestamp::ZERO || h.transmit == NtpTimestamp::ZERO {
        return Err(Rejected::BadTimestamps);
    }
    // Nanoseconds; each server time is read in the era nearest our reception.
    let t1 = t1.as_nanos() as i128;
    let t2 = h.receive.to_realtime_near(t4).as_nanos() as i128;
    let t3 = h.transmit.to_realtime_near(t4).as_nanos() as i128;
    let t4n = t4.as_nanos() as i128;
    if t3 < t2 || t4n < t1 {
        return Err(Rejected::BadTimestamps);
    }
    let offset = ((t2 - t1) + (t3 - t4n)) as f64 / 2e9;
    // Negative when the server's clock runs fast against ours: no path is shorter than none.
    let delay = (((t4n - t1) - (t3 - t2)) as f64 / 1e9).max(0.0);
    let precision = 2f64.powi(h.precision.into());
    Ok(Measurement {
        offset,
        delay,
        dispersion: precision + PHI * ((t4n - t1) as f64 / 1e9),
        at: t4,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Select;
    use crate::ntp::packet::MODE_CLIENT;
    use crate::time::NtpShort;
    use std::net::Ipv4Addr;

    const PEER: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7));

    fn config(iburst: bool, minpoll: i8, maxpoll: i8) -> NtpSourceConfig {
        NtpSourceConfig {
            name: "up".into(),
            select: Select::default(),
            server: "192.0.2.7".into(),
            port: 123,
            iburst,
            minpoll,
            maxpoll,
            key: None,
        }
    }

    fn at(secs: f64) -> Realtime {
        Realtime::from_timespec(1_800_000_000, 0).add_secs_f64(secs)
    }

    /// The server's reply to `request`: stratum 2, precision 2^-20, root delay 1/64 s and
    /// root dispersion 1/128 s; it received at `t2` and sent at `t3` (its clock).
    fn reply(request: &[u8], t2: Realtime, t3: Realtime) -> [u8; HEADER_LEN] {
        let req = Header::parse(request).unwrap();
        let mut out = [0; HEADER_LEN];
        Header {
            leap: Leap::None,
            version: 4,
            mode: MODE_SERVER,
            stratum: 2,
            poll: req.poll,
            precision: -20,
            root_delay: NtpShort(1024),
            root_dispersion: NtpShort(512),
            refid: [10, 0, 0, 1],
            reference: t2.to_ntp(),
            origin: req.transmit,
            receive: t2.to_ntp(),
            transmit: t3.to_ntp(),
        }
        .write(&mut out);
        out
    }

    /// One exchange sent at `t1` against a server `offset` ahead of us, `delay` round trip
    /// (all of it on the way back) and 1 ms of processing.
    fn exchange(c: &mut Client, t1: f64, offset: f64, delay: f64) -> Result<Received, Rejected> {
        let req = c.request(at(t1), t1.to_bits());
        let t2 = at(t1 + offset);
        let rep = reply(&req, t2, t2.add_secs_f64(0.001));
        c.receive(&rep, at(t1 + 0.001 + delay))
    }

    fn sample(r: Result<Received, Rejected>) -> Sample {
        match r {
            Ok(Received::Sample(s)) => s,
            other => panic!("{other:?}"),
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-8
    }

    #[test]
    fn an_interleaving_server_gives_the_previous_exchange_with_its_true_transmit_time() {
        // The server is 50 ms ahead; its replies leave 1 ms after the time they carry in
        // basic mode (the error of a user-space T3); the path is symmetric, 2 ms each way.
        let mut c = Client::new(&config(false, 6, 10), None, PEER, at(0.0));
        let req = c.request(at(0.0), 1);
        // The kernel's time of sending is 100 us after the time read before.
        c.transmitted(NtpTimestamp(1), at(0.0001));
        let t2 = at(0.0021);
        let early = t2.add_secs_f64(0.0500);
        let basic = sample(c.receive(&reply(&req, t2.add_secs_f64(0.05), early), at(0.0051)));
        // Basic mode: T3 1 ms early shows as a 0.5 ms offset error.
        assert!(close(basic.offset(), 0.0495), "{}", basic.offset());
        assert!(!c.interleaved());
        // The next request names the server's receive time and carries a second cookie.
        let req = c.request(at(64.0), 2);
        let h = Header::parse(&req).unwrap();
        assert_eq!(
            (h.origin, h.receive, h.transmit),
            (
                t2.add_secs_f64(0.05).to_ntp(),
                NtpTimestamp(!2),
                NtpTimestamp(2)
            )
        );
        // The interleaved reply: origin the second cookie, the true T3 of the first reply.
        let mut rep = reply(&req, at(64.0521), at(64.0522));
        rep[24..32].copy_from_slice(&(!2u64).to_be_bytes());
        rep[40..48].copy_from_slice(&t2.add_secs_f64(0.051).to_ntp().to_be_bytes());
        let r = c.receive(&rep, at(64.0052));
        assert!(c.interleaved());
        // The first exchange measured again with its true T3: the offset is exact. (It is the
        // filter's best now, at the first exchange's instant, already given: filtered.)
        assert_eq!(r, Ok(Received::Filtered));
        let best = c.best().unwrap().measurement;
        assert!(close(best.offset, 0.05), "{}", best.offset);
        assert!(close(best.delay, 0.004), "{}", best.delay);
        // A server that does not interleave echoes the transmit cookie: basic mode, as ever.
        let req = c.request(at(128.0), 3);
        let t2 = at(128.0021);
        let r = c.receive(
            &reply(&req, t2.add_secs_f64(0.05), t2.add_secs_f64(0.0501)),
            at(128.0042),
        );
        assert!(r.is_ok() && !c.interleaved(), "{r:?}");
    }

    #[test]
    fn the_request_carries_only_the_cookie() {
        let mut c = Client::new(&config(false, 6, 10), None, PEER, at(0.0));
        let req = c.request(at(0.0), 0x0123_4567_89ab_cdef);
        let h = Header::parse(&req).unwrap();
        assert_eq!((h.version, h.mode, h.poll), (4, MODE_CLIENT, 6));
        assert_eq!(h.transmit, NtpTimestamp(0x0123_4567_89ab_cdef));
        assert_eq!(req[..4], [0x23, 0, 6, 0]);
        assert!(req[4..40].iter().all(|&b| b == 0));
    }

    #[test]
    fn offset_delay_and_the_sample_follow_rfc_5905() {
        let mut c = Client::new(&config(false, 6, 10), None, PEER, at(0.0));
        // T1 = 0, T2 = 0.25, T3 = 0.251, T4 = 0.021: offset 0.24, delay 0.02.
        let s = sample(exchange(&mut c, 0.0, 0.25, 0.02));
        assert_eq!(s.local, at(0.021));
        assert!(close(s.offset(), 0.24), "{}", s.offset());
        let best = c.best().unwrap().measurement;
        assert!(close(best.delay, 0.02));
        assert!(close(best.dispersion, 2f64.powi(-20) + 15e-6 * 0.021));
        // Server: root delay 1/64, dispersion 1/128; path: half the delay and the dispersion.
        let error = 1.0 / 128.0 + 1.0 / 128.0 + 0.01 + best.dispersion;
        assert!(close(s.error, error), "{} {error}", s.error);
        assert!(close(s.root_delay, 1.0 / 64.0 + 0.02));
        assert_eq!(
            (s.stratum, s.refid, s.leap),
            (2, [192, 0, 2, 7], Leap::None)
        );
        // The sample names the server; ntpq is shown the server's own reference.
        assert_eq!(c.server_refid(), Some([10, 0, 0, 1]));
    }

    #[test]
    fn a_step_of_a_day_and_500_ppm_leave_the_next_sample_right() {
        let mut c = Client::new(&config(false, 6, 10), None, PEER, at(0.0));
        for i in 0..4 {
            exchange(&mut c, i as f64 * 64.0, 0.25, 0.02).unwrap();
        }
        // A request goes out; the clock is stepped a day ahead before its reply arrives.
        let req = c.request(at(256.0), 7);
        let change = ClockChange {
            step: 86_400.0,
            frequency: 500e-6,
            at: at(86_656.0),
        };
        c.clock_changed(&change);
        let t2 = at(256.25);
        let stale = reply(&req, t2, t2.add_secs_f64(0.001));
        assert_eq!(c.receive(&stale, at(86_656.021)), Err(Rejected::Unexpected));
        // The server is now a day behind the local clock; the very next exchange is a sample,
        // and right, although the filter kept exchanges from before the step.
        let s = sample(exchange(&mut c, 86_720.0, 0.25 - 86_400.0, 0.02));
        assert!(close(s.offset(), 0.24 - 86_400.0), "{}", s.offset());
        assert!(c.best().unwrap().jitter < 1e-6);
        // And the next poll was not pushed a day away.
        assert!(c.until_poll(at(86_720.1)).is_some_and(|w| w <= 1024.0));
    }

    #[test]
    fn replays_spoofs_and_strangers_are_dropped() {
        let mut c = Client::new(&config(false, 6, 10), None, PEER, at(0.0));
        let rep = [0u8; HEADER_LEN];
        assert_eq!(c.receive(&rep, at(0.0)), Err(Rejected::NotServer(0)));
        assert_eq!(c.receive(&rep[..47], at(0.0)), Err(Rejected::Short));
        let req = c.request(at(0.0), 42);
        let mut spoof = reply(&req, at(0.0), at(0.0));
        spoof[24..32].copy_from_slice(&43u64.to_be_bytes());
        assert_eq!(c.receive(&spoof, at(0.01)), Err(Rejected::WrongOrigin));
        // The genuine reply still counts after a spoof, and only once.
        let genuine = reply(&req, at(0.0), at(0.0));
        assert!(matches!(
            c.receive(&genuine, at(0.01)),
            Ok(Received::Sample(_))
        ));
        assert_eq!(c.receive(&genuine, at(0.02)), Err(Rejected::Unexpected));
        // A late reply to an earlier request does not match the new one.
        let _ = c.request(at(64.0), 44);
        assert_eq!(c.receive(&genuine, at(64.01)), Err(Rejected::WrongOrigin));
    }

    #[test]
    fn with_a_key_requests_are_signed_and_only_signed_replies_taken() {
        let key = Key {
            algorithm: crate::ntp::mac::Algorithm::Sha1,
            secret: b"pitime upstream key".to_vec(),
        };
        let config = NtpSourceConfig {
            key: Some(7),
            ..config(false, 6, 10)
        };
        let mut c = Client::new(&config, Some(key.clone()), PEER, at(0.0));
        let req = c.request(at(0.0), 5);
        let mac = parse_trailer(&req, 4).unwrap().mac.unwrap();
        assert_eq!(
            (req.len(), mac.key_id, mac.signed_len),
            (48 + 4 + 20, 7, 48)
        );
        let unsigned = reply(&req, at(0.0), at(0.0));
        assert_eq!(
            c.receive(&unsigned, at(0.01)),
            Err(Rejected::Unauthenticated)
        );
        let mut signed = [0u8; 48 + 4 + MAX_DIGEST_LEN];
        signed[..48].copy_from_slice(&unsigned);
        let other = Key {
            secret: b"another key".to_vec(),
            ..key.clone()
        };
        let len = other.sign(7, &mut signed, 48);
        assert_eq!(
            c.receive(&signed[..len], at(0.01)),
            Err(Rejected::Unauthenticated)
        );
        let len = key.sign(8, &mut signed, 48);
        assert_eq!(
            c.receive(&signed[..len], at(0.01)),
            Err(Rejected::Unauthenticated)
        );
        let len = key.sign(7, &mut signed, 48);
        assert!(matches!(
            c.receive(&signed[..len], at(0.01)),
            Ok(Received::Sample(_))
        ));
    }

    #[test]
    fn unsynchronised_and_distant_servers_are_ignored() {
        let mut c = Client::new(&config(false, 6, 10), None, PEER, at(0.0));
        for (byte, value) in [(0, 0xe4u8), (1, 16)] {
            let req = c.request(at(0.0), 7);
            let mut rep = reply(&req, at(0.0), at(0.0));
            rep[byte] = value;
            assert_eq!(c.receive(&rep, at(0.01)), Err(Rejected::Unsynchronised));
        }
        let req = c.request(at(0.0), 8);
        let mut rep = reply(&req, at(0.0), at(0.0));
        rep[8..12].copy_from_slice(&NtpShort::from_secs_f64(2.0).0.to_be_bytes());
        assert!(matches!(
            c.receive(&rep, at(0.01)),
            Err(Rejected::TooFar(_))
        ));
        let req = c.request(at(0.0), 9);
        let rep = reply(&req, at(0.5), at(0.4));
        assert_eq!(c.receive(&rep, at(0.01)), Err(Rejected::BadTimestamps));
        assert_eq!(c.reach(), 0x0f, "the server answered, if uselessly");
    }

    fn kiss(c: &mut Client, t: f64, code: &[u8; 4]) -> Result<Received, Rejected> {
        let req = c.request(at(t), 99 + t as u64);
        let mut rep = reply(&req, at(t), at(t));
        rep[0] = 0xe4;
        rep[1] = 0;
        rep[12..16].copy_from_slice(code);
        c.receive(&rep, at(t + 0.01))
    }

    #[test]
    fn rate_kisses_back_off_and_deny_stops_polling() {
        let mut c = Client::new(&config(true, 6, 10), None, PEER, at(0.0));
        assert_eq!(kiss(&mut c, 0.0, b"RATE"), Ok(Received::RateLimited));
        // The burst is off and the interval doubled, from the request's time.
        assert_eq!(c.poll(), 7);
        assert!(close(c.until_poll(at(0.01)).unwrap(), 128.0 - 0.01));
        assert_eq!(kiss(&mut c, 128.0, b"XXXX"), Err(Rejected::Kiss(*b"XXXX")));
        assert_eq!(kiss(&mut c, 256.0, b"DENY"), Ok(Received::Denied(*b"DENY")));
        assert_eq!(c.until_poll(at(300.0)), None);
        let mut c = Client::new(&config(false, 6, 10), None, PEER, at(0.0));
        assert_eq!(kiss(&mut c, 0.0, b"RSTR"), Ok(Received::Denied(*b"RSTR")));
        assert_eq!(c.until_poll(at(1.0)), None);
    }

    #[test]
    fn iburst_sends_four_two_seconds_apart_then_polls_at_minpoll() {
        let mut c = Client::new(&config(true, 6, 10), None, PEER, at(0.0));
        let mut t = 0.0;
        let mut sent = Vec::new();
        while sent.len() < 7 {
            let wait = c.until_poll(at(t)).unwrap();
            t += wait;
            sent.push(t);
            sample(exchange(&mut c, t, 0.0, 0.01));
        }
        assert_eq!(sent, [0.0, 2.0, 4.0, 6.0, 70.0, 134.0, 198.0]);
        assert_eq!(c.reach(), 0x7f);
        assert_eq!(c.unanswered(), 0);
    }

    #[test]
    fn reachability_loss_starts_another_burst() {
        let mut c = Client::new(&config(true, 4, 4), None, PEER, at(0.0));
        sample(exchange(&mut c, 0.0, 0.0, 0.01));
        let (mut t, mut sent) = (0.0, Vec::new());
        for i in 0..9 {
            t += c.until_poll(at(t)).unwrap();
            sent.push(t);
            let _ = c.request(at(t), i);
        }
        // The rest of the burst, then 16 s apart until eight in a row went unanswered.
        assert_eq!(sent, [2.0, 4.0, 6.0, 22.0, 38.0, 54.0, 70.0, 86.0, 102.0]);
        assert_eq!((c.reach(), c.unanswered()), (0, 9));
        assert_eq!(c.until_poll(at(t)), Some(2.0));
    }

    #[test]
    fn the_name_is_resolved_again_after_every_four_unanswered_requests() {
        let mut c = Client::new(&config(false, 4, 4), None, PEER, at(0.0));
        let mut dues = Vec::new();
        for i in 0..10u32 {
            let due = c.due();
            dues.push(due);
            if due == Due::Send {
                let _ = c.request(at(f64::from(i) * 16.0), u64::from(i));
            }
        }
        use Due::{Resolve as R, Send as S};
        // Four lost (the fourth still awaited), a lookup, then the fifth request, and so on.
        assert_eq!(dues, [S, S, S, S, R, S, S, S, S, R]);
        // An answer resets the count.
        let mut c = Client::new(&config(false, 4, 4), None, PEER, at(0.0));
        for i in 0..3u32 {
            let _ = c.request(at(f64::from(i) * 16.0), u64::from(i));
        }
        sample(exchange(&mut c, 48.0, 0.0, 0.01));
        assert_eq!(c.due(), Due::Send);
    }

    #[test]
    fn the_poll_grows_while_consistent_and_drops_on_scatter() {
        let mut c = Client::new(&config(false, 4, 6), None, PEER, at(0.0));
        let mut t = 0.0;
        let mut polls = Vec::new();
        // Offsets within 1 ms of each other, 10 ms delays: consistent.
        for i in 0..12 {
            t += c.until_poll(at(t)).unwrap();
            let _ = exchange(&mut c, t, 0.001 * (i % 2) as f64, 0.010);
            polls.push(c.poll());
        }
        assert_eq!(polls, [4, 4, 4, 5, 5, 5, 5, 6, 6, 6, 6, 6]);
        // A measurement 50 ms away with about the same delay cannot be explained by the path.
        t += c.until_poll(at(t)).unwrap();
        let _ = exchange(&mut c, t, 0.050, 0.012);
        assert_eq!(c.poll(), 5);
        let best = c.best().unwrap();
        assert!(best.jitter > 0.015, "{}", best.jitter);
    }

    #[test]
    fn the_filter_keeps_the_lowest_delay_offset() {
        let mut c = Client::new(&config(false, 6, 10), None, PEER, at(0.0));
        let first = sample(exchange(&mut c, 0.0, 0.002, 0.004));
        // A congested exchange: the filter keeps the first, already given, so no new sample.
        assert_eq!(exchange(&mut c, 64.0, 0.030, 0.080), Ok(Received::Filtered));
        assert_eq!(c.best().unwrap().measurement.at, first.local);
        // A better one later is given, stamped with its own arrival.
        let s = sample(exchange(&mut c, 128.0, 0.001, 0.002));
        assert!(close(s.offset(), 0.001 - 0.001), "{}", s.offset());
        assert_eq!(s.local, at(128.003));
    }

    #[test]
    fn a_new_address_is_a_new_server() {
        let mut c = Client::new(&config(false, 6, 10), None, PEER, at(0.0));
        sample(exchange(&mut c, 0.0, 0.0, 0.01));
        c.set_peer(PEER);
        assert!(c.best().is_some());
        let v6: std::net::Ipv6Addr = "2001:db8::1".parse().unwrap();
        c.set_peer(v6.into());
        assert!(c.best().is_none());
        let digest = Md5::digest(v6.octets());
        assert_eq!(
            refid(v6.into()),
            [digest[0], digest[1], digest[2], digest[3]]
        );
        assert_eq!(refid(PEER), [192, 0, 2, 7]);
    }
}
