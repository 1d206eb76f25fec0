//! The NTP server's decision for one datagram: parse, check access, rate and authentication, and
//! build the reply. Pure: the receive time, the clock state and the policy come in as arguments;
//! the transmit timestamp and MAC are added by `finish` just before the send.

use std::net::IpAddr;

use super::acl::AccessList;
use super::nts::{self, cookie::CookieKeys};
use super::ratelimit::{self, RateLimiter, Verdict};
use super::stats::Outcome;
use crate::discipline::snapshot::ClockSnapshot;
use crate::ntp::keys::KeyStore;
use crate::ntp::packet::{
    self, Header, HEADER_LEN, MAX_REPLY_LEN, MAX_REQUEST_LEN, MODE_CLIENT, MODE_SERVER,
};
use crate::time::Leap;
use crate::time::{NtpShort, NtpTimestamp, Realtime};

const MIN_POLL: i8 = 4;
const MAX_POLL: i8 = 17;

/// What to do with a request that is refused (denied or over the rate limit).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Send nothing.
    Ignore,
    /// Answer with a kiss-o'-death (DENY or RATE), so well-behaved clients back off.
    Kiss,
}

/// Who may ask and how: built from the configuration, swapped whole on reload.
#[derive(Clone, Debug)]
pub struct Policy {
    pub access: AccessList,
    pub deny_action: Refusal,
    /// The client table's parameters; the limits are enforced only when `rate_limit` is set.
    pub limits: ratelimit::Params,
    pub rate_limit: bool,
    pub rate_action: Refusal,
    pub keys: KeyStore,
    /// Key ids clients may use; `None` trusts every key in `keys`.
    pub trusted_keys: Option<Vec<u32>>,
    pub require_auth: bool,
    /// Who may ask mode 6 (ntpq) questions; everyone else gets no answer at all.
    pub query_access: AccessList,
    /// The NTS cookie keys, when NTS is on.
    pub nts: Option<std::sync::Arc<CookieKeys>>,
}

impl Policy {
    /// Whether a client table is needed: to enforce the limits, or to ration DENY kisses.
    pub fn needs_limiter(&self) -> bool {
        self.rate_limit || self.deny_action == Refusal::Kiss
    }

    pub(super) fn trusts(&self, key_id: u32) -> bool {
        self.trusted_keys
            .as_ref()
            .is_none_or(|ids| ids.contains(&key_id))
    }
}

/// A reply built into the output buffer, waiting for its transmit timestamp.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reply {
    pub len: usize,
    /// Key id and digest length (the request's) to sign with once the transmit timestamp is in.
    pub sign_with: Option<(u32, usize)>,
    /// The NTS keys and places to encrypt with once the transmit timestamp is in.
    pub nts: Option<nts::Seal>,
    pub outcome: Outcome,
    /// The transmit timestamp to send instead of the time of sending: an interleaved reply's
    /// (see `interleave`), the kernel's time of the previous reply.
    pub transmit: Option<NtpTimestamp>,
}

/// What to do with one datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Reply(Reply),
    Drop(Outcome),
}

/// What kind of reply to build; the outcome counted follows from it.
enum Kind {
    /// Time, signed with this key id and digest length if any.
    Time(Option<(u32, usize)>),
    CryptoNak,
    KissDeny,
    KissRate,
    KissNts,
}

/// Decides what to answer to `request` from `peer`, received (kernel timestamp) at `rx`.
pub fn respond(
    request: &[u8],
    peer: IpAddr,
    rx: Realtime,
    clock: &ClockSnapshot,
    policy: &Policy,
    limiter: Option<&mut RateLimiter>,
    out: &mut [u8; MAX_REPLY_LEN],
) -> Decision {
    use Decision::Drop;
    if request.len() > MAX_REQUEST_LEN {
        return Drop(Outcome::DropOversized);
    }
    let Some(req) = Header::parse(request) else {
        return Drop(Outcome::DropTooShort);
    };
    if !(1..=4).contains(&req.version) {
        return Drop(Outcome::DropBadVersion);
    }
    if req.mode != MODE_CLIENT {
        return Drop(Outcome::DropBadMode);
    }
    let Ok(trailer) = packet::parse_trailer(request, req.version) else {
        return Drop(Outcome::DropMalformed);
    };
    if !policy.access.permits(peer) {
        // A DENY kiss answers a forged request too: rationed like RATE kisses.
        let kiss = policy.deny_action == Refusal::Kiss
            && limiter.is_some_and(|l| l.kiss(peer, rx.as_nanos()));
        return match kiss {
            true => build(&req, Kind::KissDeny, rx, clock, out),
            false => Drop(Outcome::DropDenied),
        };
    }
    if let (Some(limiter), true) = (limiter, policy.rate_limit) {
        if let Verdict::Limited { kod } = limiter.check(peer, rx.as_nanos()) {
            return match (policy.rate_action, kod) {
                (Refusal::Kiss, true) => build(&req, Kind::KissRate, rx, clock, out),
                _ => Drop(Outcome::DropRateLimited),
            };
        }
    }
    if let (None, Some(keys)) = (trailer.mac, &policy.nts) {
        match nts::check(request, keys) {
            nts::Check::NotNts => {}
            nts::Check::Malformed => return Drop(Outcome::DropMalformed),
            nts::Check::Nak(unique_id) => {
                build(&req, Kind::KissNts, rx, clock, out);
                return Decision::Reply(nts::nak(unique_id, out));
            }
            nts::Check::Valid(valid) => {
                build(&req, Kind::Time(None), rx, clock, out);
                return nts::reply(&valid, keys, request.len(), out)
                    .map_or(Drop(Outcome::DropNoRandom), Decision::Reply);
            }
        }
    }
    match trailer.mac {
        None if policy.require_auth => Drop(Outcome::DropAuthRequired),
        None => build(&req, Kind::Time(None), rx, clock, out),
        Some(mac) => {
            let signed = &request[..mac.signed_len];
            let valid = policy.trusts(mac.key_id)
                && policy.keys.get(mac.key_id).is_some_and(|k| {
                    k.algorithm
                        .verify(&k.secret, req.version, signed, mac.digest)
                });
            let kind = if valid {
                Kind::Time(Some((mac.key_id, mac.digest.len())))
            } else {
                Kind::CryptoNak
            };
            build(&req, kind, rx, clock, out)
        }
    }
}

fn build(
    req: &Header,
    kind: Kind,
    rx: Realtime,
    clock: &ClockSnapshot,
    out: &mut [u8; MAX_REPLY_LEN],
) -> Decision {
    let served_rx = clock.correction.apply(rx);
    let mut header = Header {
        leap: clock.served_leap(),
        version: req.version,
        mode: MODE_SERVER,
        stratum: clock.served_stratum(),
        poll: req.poll.clamp(MIN_POLL, MAX_POLL),
        precision: clock.precision,
        root_delay: NtpShort::from_secs_f64(clock.root_delay),
        root_dispersion: NtpShort::from_secs_f64(clock.root_dispersion_at(served_rx)),
        refid: clock.refid,
        reference: clock.served_reference(),
        origin: req.transmit,
        receive: served_rx.to_ntp(),
        transmit: NtpTimestamp::ZERO,
    };
    if let Kind::KissDeny | Kind::KissRate | Kind::KissNts = kind {
        header.leap = Leap::Unsynchronised;
        header.stratum = 0;
        header.refid = match kind {
            Kind::KissDeny => *b"DENY",
            Kind::KissRate => *b"RATE",
            _ => *b"NTSN",
        };
        header.root_delay = NtpShort(0);
        header.root_dispersion = NtpShort(0);
        header.reference = NtpTimestamp::ZERO;
    }
    let head: &mut [u8; HEADER_LEN] = (&mut out[..HEADER_LEN])
        .try_into()
        .expect("buffer holds a header");
    header.write(head);
    let (len, sign_with, outcome) = match kind {
        Kind::Time(None) => (HEADER_LEN, None, Outcome::Served),
        Kind::Time(key) => (HEADER_LEN, key, Outcome::ServedAuthenticated),
        // A crypto-NAK is the reply with a MAC of key id 0 and no digest.
        Kind::CryptoNak => {
            out[HEADER_LEN..HEADER_LEN + 4].fill(0);
            (HEADER_LEN + 4, None, Outcome::CryptoNak)
        }
        Kind::KissDeny => (HEADER_LEN, None, Outcome::KissDeny),
        Kind::KissRate => (HEADER_LEN, None, Outcome::KissRate),
        Kind::KissNts => (HEADER_LEN, None, Outcome::KissNts),
    };
    Decision::Reply(Reply {
        len,
        sign_with,
        nts: None,
        outcome,
        transmit: None,
    })
}

/// Puts the transmit timestamp into a built reply and signs it; returns the final length.
pub fn finish(
    reply: &Reply,
    out: &mut [u8; MAX_REPLY_LEN],
    tx: Realtime,
    clock: &ClockSnapshot,
    policy: &Policy,
) -> usize {
    let transmit = reply
        .transmit
        .unwrap_or_else(|| clock.correction.apply(tx).to_ntp());
    packet::set_transmit(out, transmit);
    if let Some(seal) = &reply.nts {
        // Never the cookies in plaintext: a bare header, which the client discards, instead.
        return match nts::seal(seal, out) {
            true => reply.len,
            false => HEADER_LEN,
        };
    }
    // `respond` checked the key against this same policy, so it is there.
    let Some((key_id, digest_len, key)) = reply
        .sign_with
        .and_then(|(id, len)| Some((id, len, policy.keys.get(id)?)))
    else {
        return reply.len;
    };
    key.sign_with_digest(key_id, out, HEADER_LEN, digest_len)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::ntp::mac::Algorithm;
    use crate::ntp::packet::MODE_CLIENT;
    use crate::server::acl::Cidr;
    use proptest::prelude::*;

    pub(in crate::server) const KEYS: &str =
        "1 MD5 md5secret\n2 SHA1 HEX:0102030405060708090a0b0c0d0e0f1011121314\n\
                        3 AES128 HEX:000102030405060708090a0b0c0d0e0f\n4 SHA256 sha256secret\n";

    /// Serves everyone, rate limit off; the tests of `control` share it.
    pub(in crate::server) fn policy() -> Policy {
        Policy {
            access: AccessList {
                allow: vec!["0.0.0.0/0".parse().unwrap(), "::/0".parse().unwrap()],
                deny: vec![],
            },
            deny_action: Refusal::Ignore,
            limits: ratelimit::Params {
                interval: 8.0,
                burst: 2,
                ipv4_prefix: 32,
                ipv6_prefix: 64,
                max_clients: 16,
                leak: 0.0,
            },
            rate_limit: false,
            rate_action: Refusal::Kiss,
            keys: KeyStore::parse(KEYS).unwrap(),
            trusted_keys: None,
            require_auth: false,
            query_access: AccessList {
                allow: vec!["127.0.0.0/8".parse().unwrap()],
                deny: vec![],
            },
            nts: None,
        }
    }

    pub(in crate::server) fn clock() -> ClockSnapshot {
        ClockSnapshot::example()
    }

    const RX: Realtime = Realtime::from_nanos(1_800_000_010_000_000_000);
    const PEER: &str = "192.0.2.10";

    fn request(version: u8, mode: u8) -> Vec<u8> {
        let mut p = vec![0u8; HEADER_LEN];
        p[0] = version << 3 | mode;
        p[2] = 6;
        p[40..48].copy_from_slice(&0x1122_3344_5566_7788u64.to_be_bytes());
        p
    }

    fn signed(key_id: u32, algorithm: Algorithm, secret: &[u8]) -> Vec<u8> {
        signed_v(4, key_id, algorithm, secret)
    }

    fn signed_v(version: u8, key_id: u32, algorithm: Algorithm, secret: &[u8]) -> Vec<u8> {
        let key = crate::ntp::keys::Key {
            algorithm,
            secret: secret.to_vec(),
        };
        let mut p = request(version, MODE_CLIENT);
        p.resize(MAX_REPLY_LEN, 0);
        let len = key.sign(key_id, &mut p, HEADER_LEN);
        p.truncate(len);
        p
    }

    /// Runs respond and finish as the server does; returns the outcome and the reply bytes.
    fn exchange(
        req: &[u8],
        policy: &Policy,
        limiter: Option<&mut RateLimiter>,
    ) -> (Outcome, Vec<u8>) {
        let clock = clock();
        let mut out = [0u8; MAX_REPLY_LEN];
        match respond(
            req,
            PEER.parse().unwrap(),
            RX,
            &clock,
            policy,
            limiter,
            &mut out,
        ) {
            Decision::Drop(o) => (o, Vec::new()),
            Decision::Reply(r) => {
                let len = finish(&r, &mut out, RX.add_secs_f64(1e-5), &clock, policy);
                (r.outcome, out[..len].to_vec())
            }
        }
    }

    #[test]
    fn answers_client_requests_of_every_version() {
        for version in 1..=4 {
            let (outcome, reply) = exchange(&request(version, MODE_CLIENT), &policy(), None);
            assert_eq!(outcome, Outcome::Served);
            let h = Header::parse(&reply).unwrap();
            assert_eq!(reply.len(), HEADER_LEN);
            assert_eq!(
                (h.version, h.mode, h.stratum, h.leap),
                (version, MODE_SERVER, 1, Leap::Insert)
            );
            assert_eq!(h.refid, *b"PPS\0");
            assert_eq!(h.origin, NtpTimestamp(0x1122_3344_5566_7788));
            assert_eq!(h.receive, RX.to_ntp());
            assert_eq!(h.transmit, RX.add_secs_f64(1e-5).to_ntp());
            assert_eq!(h.reference, clock().reference_time.to_ntp());
            assert_eq!(h.poll, 6);
            assert_eq!(h.precision, -20);
            // 10 s after the reference time: 1 us plus 10 s at 15 ppm.
            assert!((h.root_dispersion.as_secs_f64() - 151e-6).abs() < 2e-5);
        }
    }

    #[test]
    fn unsynchronised_clock_is_advertised_as_unusable() {
        let clock = ClockSnapshot::unsynchronised(-20);
        let mut out = [0u8; MAX_REPLY_LEN];
        let d = respond(
            &request(4, MODE_CLIENT),
            PEER.parse().unwrap(),
            RX,
            &clock,
            &policy(),
            None,
            &mut out,
        );
        assert!(matches!(d, Decision::Reply(_)));
        let h = Header::parse(&out).unwrap();
        assert_eq!(
            (h.leap, h.stratum, h.reference),
            (Leap::Unsynchronised, 16, NtpTimestamp::ZERO)
        );
    }

    #[test]
    fn poll_is_echoed_within_limits() {
        for (asked, echoed) in [(0i8, 4i8), (6, 6), (17, 17), (-3, 4), (40, 17)] {
            let mut req = request(4, MODE_CLIENT);
            req[2] = asked as u8;
            let (_, reply) = exchange(&req, &policy(), None);
            assert_eq!(Header::parse(&reply).unwrap().poll, echoed);
        }
    }

    #[test]
    fn short_and_oversized_datagrams_are_dropped() {
        for len in [0, 1, 47] {
            assert_eq!(
                exchange(&request(4, MODE_CLIENT)[..len], &policy(), None).0,
                Outcome::DropTooShort
            );
        }
        let mut big = request(4, MODE_CLIENT);
        big.resize(MAX_REQUEST_LEN + 1, 0);
        assert_eq!(exchange(&big, &policy(), None).0, Outcome::DropOversized);
    }

    #[test]
    fn wrong_versions_and_modes_are_dropped() {
        for version in [0, 5, 6, 7] {
            assert_eq!(
                exchange(&request(version, MODE_CLIENT), &policy(), None).0,
                Outcome::DropBadVersion
            );
        }
        for mode in [0, 1, 2, 4, 5, 6, 7] {
            assert_eq!(
                exchange(&request(4, mode), &policy(), None).0,
                Outcome::DropBadMode
            );
        }
    }

    #[test]
    fn garbage_extension_fields_are_dropped_and_valid_ones_ignored() {
        let mut garbage = request(4, MODE_CLIENT);
        garbage.extend_from_slice(&[
            0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13,
        ]);
        assert_eq!(
            exchange(&garbage, &policy(), None).0,
            Outcome::DropMalformed
        );
        let mut valid = request(4, MODE_CLIENT);
        valid.extend_from_slice(&[0x12, 0x34, 0, 32]);
        valid.extend_from_slice(&[0; 28]);
        let (outcome, reply) = exchange(&valid, &policy(), None);
        assert_eq!((outcome, reply.len()), (Outcome::Served, HEADER_LEN));
    }

    #[test]
    fn denied_clients_are_ignored_or_kissed() {
        let mut p = policy();
        p.access.deny = vec!["192.0.2.0/24".parse::<Cidr>().unwrap()];
        assert_eq!(
            exchange(&request(4, MODE_CLIENT), &p, None).0,
            Outcome::DropDenied
        );
        p.deny_action = Refusal::Kiss;
        let mut limiter = RateLimiter::new(p.limits);
        let (outcome, reply) = exchange(&request(4, MODE_CLIENT), &p, Some(&mut limiter));
        assert_eq!(outcome, Outcome::KissDeny);
        let h = Header::parse(&reply).unwrap();
        assert_eq!(
            (h.leap, h.stratum, &h.refid),
            (Leap::Unsynchronised, 0, b"DENY")
        );
        // One kiss per interval: a flood of forged requests is not reflected.
        for _ in 0..100 {
            let (outcome, _) = exchange(&request(4, MODE_CLIENT), &p, Some(&mut limiter));
            assert_eq!(outcome, Outcome::DropDenied);
        }
        assert_eq!(h.origin, NtpTimestamp(0x1122_3344_5566_7788));
    }

    #[test]
    fn rate_limited_clients_get_one_kiss_then_silence() {
        let mut p = policy();
        p.rate_limit = true;
        let params = p.limits;
        let mut limiter = RateLimiter::new(params);
        let req = request(4, MODE_CLIENT);
        assert_eq!(exchange(&req, &p, Some(&mut limiter)).0, Outcome::Served);
        assert_eq!(exchange(&req, &p, Some(&mut limiter)).0, Outcome::Served);
        let (outcome, reply) = exchange(&req, &p, Some(&mut limiter));
        assert_eq!(outcome, Outcome::KissRate);
        assert_eq!(&Header::parse(&reply).unwrap().refid, b"RATE");
        assert_eq!(
            exchange(&req, &p, Some(&mut limiter)).0,
            Outcome::DropRateLimited
        );
        p.rate_action = Refusal::Ignore;
        let mut limiter = RateLimiter::new(params);
        for _ in 0..2 {
            exchange(&req, &p, Some(&mut limiter));
        }
        assert_eq!(
            exchange(&req, &p, Some(&mut limiter)).0,
            Outcome::DropRateLimited
        );
    }

    #[test]
    fn authenticated_requests_get_replies_signed_with_the_same_key() {
        let keys = KeyStore::parse(KEYS).unwrap();
        for (id, version) in (1..=4).flat_map(|id| [(id, 3), (id, 4)]) {
            let key = keys.get(id).unwrap();
            let req = signed_v(version, id, key.algorithm, &key.secret);
            let (outcome, reply) = exchange(&req, &policy(), None);
            assert_eq!(outcome, Outcome::ServedAuthenticated, "key {id} v{version}");
            assert_eq!(reply.len(), req.len());
            assert_eq!(u32::from_be_bytes(reply[48..52].try_into().unwrap()), id);
            let signed = &reply[..48];
            assert!(key
                .algorithm
                .verify(&key.secret, version, signed, &reply[52..]));
        }
    }

    #[test]
    fn bad_or_unknown_keys_get_a_crypto_nak() {
        let nak = |req: &[u8], p: &Policy| {
            let (outcome, reply) = exchange(req, p, None);
            assert_eq!(outcome, Outcome::CryptoNak);
            assert_eq!(reply.len(), HEADER_LEN + 4);
            assert_eq!(reply[48..52], [0, 0, 0, 0]);
        };
        nak(&signed(99, Algorithm::Md5, b"md5secret"), &policy());
        nak(&signed(1, Algorithm::Md5, b"wrong"), &policy());
        let mut p = policy();
        p.trusted_keys = Some(vec![2]);
        nak(&signed(1, Algorithm::Md5, b"md5secret"), &p);
    }

    #[test]
    fn required_authentication_drops_unsigned_requests() {
        let mut p = policy();
        p.require_auth = true;
        assert_eq!(
            exchange(&request(4, MODE_CLIENT), &p, None).0,
            Outcome::DropAuthRequired
        );
        assert_eq!(
            exchange(&signed(1, Algorithm::Md5, b"md5secret"), &p, None).0,
            Outcome::ServedAuthenticated
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]
        #[test]
        fn never_panics_never_amplifies(data in proptest::collection::vec(any::<u8>(), 0..1500), header in any::<u8>()) {
            // Half the cases get a plausible first byte so the deeper paths are reached too.
            let mut data = data;
            if header & 1 == 1 && !data.is_empty() {
                data[0] = (header >> 1) & 0b0011_1000 | MODE_CLIENT;
            }
            // Asserts that no reply is larger than its request.
            crate::fuzz::ntp_request(&data);
        }
    }
}
