//! Answers to `ntpq` and the monitoring plugins (NTP mode 6, read-only): the association list
//! with status words (READSTAT) and the system's and each association's variables (READVAR),
//! formatted as ntpd formats them. Pure: the clock, the associations and the policy come in.
//!
//! Mode 6 answers are larger than the requests, which made it an amplifier on the internet. So:
//! only sources in `query_allow` get anything at all (a forged request cannot aim a reply at
//! anyone outside it), each client is rate-limited with no leak, a response is at most
//! `MAX_FRAGMENTS` fragments, and nothing can change state: writes and configuration are refused.

mod variables;

use std::net::IpAddr;

use super::ratelimit::{RateLimiter, Verdict};
use super::respond::Policy;
use super::stats::Outcome;
use crate::discipline::snapshot::ClockSnapshot;
use crate::ntp::control::{
    self, ErrorCode, Invalid, ReplyTo, Request, MAX_DATA, MAX_FRAGMENT, OP_READSTAT, OP_READVAR,
};
use crate::ntp::keys::Key;
use crate::time::Realtime;
use variables::{peer_status, peer_variables, read_status, system_status, system_variables};
pub use variables::{source, Association, ControlView, LoopView, Origin};

/// Fragments in the longest response; anything beyond is left out.
pub const MAX_FRAGMENTS: usize = 4;
const MAX_RESPONSE: usize = MAX_FRAGMENTS * MAX_DATA;

/// Opcodes that would change state (ntpd's WRITEVAR, WRITECLOCK, SETTRAP, CONFIGURE, UNSETTRAP).
const OP_WRITEVAR: u8 = 3;
const OP_WRITECLOCK: u8 = 5;
const OP_SETTRAP: u8 = 6;
const OP_CONFIGURE: u8 = 8;
const OP_UNSETTRAP: u8 = 31;

/// Whether a datagram is a control message (mode 6), for this module rather than `respond`.
pub fn is_control(datagram: &[u8]) -> bool {
    datagram
        .first()
        .is_some_and(|b| b & 7 == control::MODE_CONTROL)
}

/// What to do with one mode 6 datagram.
#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    /// The fragments to send, and what to count.
    Reply(Vec<Vec<u8>>, Outcome),
    Drop(Outcome),
}

/// Decides what to answer to a mode 6 `request` from `peer` at `now`.
pub fn respond(
    request: &[u8],
    peer: IpAddr,
    now: Realtime,
    clock: &ClockSnapshot,
    view: &ControlView,
    policy: &Policy,
    limiter: &mut RateLimiter,
) -> Decision {
    if !policy.query_access.permits(peer) {
        return Decision::Drop(Outcome::DropControlDenied);
    }
    if let Verdict::Limited { .. } = limiter.check(peer, now.as_nanos()) {
        return Decision::Drop(Outcome::DropControlRateLimited);
    }
    let leap = clock.served_leap() as u8;
    let req = match Request::parse(request) {
        Ok(req) => req,
        Err(Invalid::Ignore) => return Decision::Drop(Outcome::DropMalformed),
        Err(Invalid::BadFormat(to)) => return error(&to, leap, ErrorCode::BadFormat, None),
    };
    let sign = match req.mac {
        None => None,
        Some(mac) => {
            let signed = &request[..mac.signed_len];
            let key = policy.keys.get(mac.key_id).filter(|k| {
                policy.trusts(mac.key_id) && k.algorithm.verify(&k.secret, 3, signed, mac.digest)
            });
            match key {
                Some(key) => Some(Signer {
                    key,
                    id: mac.key_id,
                    digest_len: mac.digest.len(),
                }),
                // A request that tries to authenticate and fails is refused, not served as
                // unsigned: its sender expects a signed answer.
                None => return error(&req.to, leap, ErrorCode::Permission, None),
            }
        }
    };
    let to = req.to;
    let associations = &view.associations[..];
    let find = |id| associations.iter().find(|a| a.id == id);
    let response = match (to.opcode, to.association) {
        (OP_READSTAT, 0) => Ok((
            system_status(clock, associations),
            read_status(associations),
        )),
        (OP_READSTAT | OP_READVAR, id) if id != 0 => match find(id) {
            None => Err(ErrorCode::BadAssociation),
            Some(a) => peer_variables(a, &req).map(|v| (peer_status(a), v)),
        },
        (OP_READVAR, _) => system_variables(clock, view, &req, now)
            .map(|v| (system_status(clock, associations), v)),
        // Writes, configuration, traps: never. ntpd answers a forbidden operation with a
        // permission error, which ntpq shows for what it is.
        (OP_WRITEVAR | OP_WRITECLOCK | OP_SETTRAP | OP_CONFIGURE | OP_UNSETTRAP, _) => {
            Err(ErrorCode::Permission)
        }
        // Clock variables, MRU lists (which would tell who the clients are), nonces: not served.
        _ => Err(ErrorCode::BadOpcode),
    };
    match response {
        Ok((status, data)) => Decision::Reply(
            fragments(&to, leap, status, &data, sign.as_ref()),
            Outcome::ControlAnswered,
        ),
        Err(code) => error(&to, leap, code, sign.as_ref()),
    }
}

/// Signs response fragments with the key (and digest length) the request was signed with.
struct Signer<'a> {
    key: &'a Key,
    id: u32,
    digest_len: usize,
}

/// One datagram, written by `write` into a buffer long enough for any fragment, then signed
/// after its data padded to 8 bytes, as ntpd signs.
fn datagram(write: impl FnOnce(&mut [u8]) -> usize, sign: Option<&Signer>) -> Vec<u8> {
    let mut out = vec![0u8; MAX_FRAGMENT];
    let mut len = write(&mut out);
    if let Some(s) = sign {
        len = s
            .key
            .sign_with_digest(s.id, &mut out, control::signed_len(len), s.digest_len);
    }
    out.truncate(len);
    out
}

fn error(to: &ReplyTo, leap: u8, code: ErrorCode, sign: Option<&Signer>) -> Decision {
    let out = datagram(|out| control::write_error(out, to, leap, code), sign);
    Decision::Reply(vec![out], Outcome::ControlError)
}

/// `data` (at most `MAX_RESPONSE` bytes of it) in fragments of `MAX_DATA`.
fn fragments(
    to: &ReplyTo,
    leap: u8,
    status: u16,
    data: &[u8],
    sign: Option<&Signer>,
) -> Vec<Vec<u8>> {
    let data = &data[..data.len().min(MAX_RESPONSE)];
    let count = data.len().div_ceil(MAX_DATA).max(1);
    (0..count)
        .map(|i| {
            let chunk = &data[i * MAX_DATA..data.len().min((i + 1) * MAX_DATA)];
            let more = i + 1 < count;
            let write = |out: &mut [u8]| {
                control::write_fragment(out, to, leap, status, i * MAX_DATA, chunk, more)
            };
            datagram(write, sign)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ntp::keys::KeyStore;
    use crate::server::respond::tests::{clock, policy, KEYS};
    use proptest::prelude::*;

    const NOW: Realtime = Realtime::from_nanos(1_800_000_010_000_000_000);
    const LOOPBACK: &str = "127.0.0.1";

    fn view() -> ControlView {
        ControlView::example(NOW)
    }

    fn request(opcode: u8, association: u16, data: &str) -> Vec<u8> {
        let mut p = vec![2 << 3 | control::MODE_CONTROL, opcode, 0, 9, 0, 0];
        p.extend_from_slice(&association.to_be_bytes());
        p.extend_from_slice(&[0, 0]);
        p.extend_from_slice(&(data.len() as u16).to_be_bytes());
        p.extend_from_slice(data.as_bytes());
        p.resize(p.len().next_multiple_of(4), 0);
        p
    }

    fn limiter(policy: &Policy) -> RateLimiter {
        RateLimiter::new(crate::server::ratelimit::Params {
            leak: 0.0,
            ..policy.limits
        })
    }

    fn ask(req: &[u8], from: &str, view: &ControlView) -> Decision {
        let p = policy();
        respond(
            req,
            from.parse().unwrap(),
            NOW,
            &clock(),
            view,
            &p,
            &mut limiter(&p),
        )
    }

    /// The fragments' data put together, and the last fragment's status word.
    fn answer(req: &[u8], view: &ControlView) -> (String, u16, Vec<Vec<u8>>) {
        let Decision::Reply(fragments, Outcome::ControlAnswered) = ask(req, LOOPBACK, view) else {
            panic!("no answer to {req:?}");
        };
        let mut data = Vec::new();
        for f in &fragments {
            let count = u16::from_be_bytes([f[10], f[11]]) as usize;
            data.extend_from_slice(&f[12..12 + count]);
        }
        let last = fragments.last().unwrap();
        let status = u16::from_be_bytes([last[4], last[5]]);
        (
            String::from_utf8_lossy(&data).into_owned(),
            status,
            fragments,
        )
    }

    fn error_code(req: &[u8]) -> u8 {
        match ask(req, LOOPBACK, &view()) {
            Decision::Reply(f, Outcome::ControlError) => {
                assert_eq!((f.len(), f[0].len(), f[0][1] & 0xc0), (1, 12, 0xc0));
                f[0][4]
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_association_list_has_ntpd_status_words() {
        let (_, status, fragments) = answer(&request(OP_READSTAT, 0, ""), &view());
        // Leap indicator 1 (the test clock announces a leap second), clock source PPS, one
        // event, clock_sync.
        assert_eq!(status, 0x4115);
        let f = &fragments[0];
        assert_eq!(f[..4], [0x56, 0x81, 0, 9]);
        assert_eq!(f[12..20], [0, 1, 0x96, 0x00, 0, 2, 0x80, 0x00]);
    }

    #[test]
    fn system_variables_are_formatted_as_ntpd_does() {
        let (text, _, _) = answer(&request(OP_READVAR, 0, ""), &view());
        for item in [
            "version=\"pitime ",
            "leap=1,",
            "stratum=1,",
            "precision=-20,",
            "rootdelay=0.000,",
            // 1 us, and 10 s since the reference time at 15 ppm.
            "rootdisp=0.151,",
            "refid=PPS",
            "reftime=0x",
            "peer=1,",
            "peeradr=\"127.127.20.0:0\", peermode=3,",
            "offset=-0.012500",
            "frequency=3.250",
            "sys_jitter=0.002000",
            "clk_wander=0.010000",
        ] {
            assert!(text.contains(item), "{item} in {text}");
        }
        assert!(text.ends_with("\r\n"));
        let (text, _, _) = answer(&request(OP_READVAR, 0, "offset,stratum"), &view());
        assert_eq!(text, "stratum=1, offset=-0.012500\r\n");
    }

    #[test]
    fn association_variables_show_refclocks_as_ntpd_does() {
        let (text, status, _) = answer(&request(OP_READVAR, 1, ""), &view());
        assert_eq!(status, 0x9600);
        for item in [
            "srcadr=127.127.20.0, srcport=0, srchost=\"source1(0)\"",
            "stratum=0, refid=PPS",
            "reach=0xff",
            "hmode=3",
            "flash=0x0",
            "offset=-0.012500",
            "jitter=0.002000",
        ] {
            assert!(text.contains(item), "{item} in {text}");
        }
        let (text, status, _) = answer(&request(OP_READVAR, 2, "srcadr,reach,flash"), &view());
        assert_eq!(status, 0x8000);
        assert_eq!(text, "srcadr=192.0.2.1, reach=0x0, flash=0x1000\r\n");
        let (text, _, _) = answer(&request(OP_READSTAT, 1, ""), &view());
        assert!(text.contains("srcadr=127.127.20.0"));
    }

    #[test]
    fn unknown_associations_variables_and_opcodes_are_errors() {
        assert_eq!(error_code(&request(OP_READVAR, 7, "")), 4);
        assert_eq!(error_code(&request(OP_READSTAT, 0xffff, "")), 4);
        assert_eq!(error_code(&request(OP_READVAR, 0, "offset,nonsense")), 5);
        assert_eq!(error_code(&request(OP_READVAR, 1, "\u{ff}")), 5);
        for op in [10, 12, 0, 4, 30] {
            assert_eq!(error_code(&request(op, 0, "")), 3, "opcode {op}");
        }
        let mut lying = request(OP_READVAR, 0, "offset");
        lying[11] = 200;
        assert_eq!(error_code(&lying), 2);
    }

    #[test]
    fn writes_and_configuration_are_refused() {
        for op in [
            OP_WRITEVAR,
            OP_WRITECLOCK,
            OP_SETTRAP,
            OP_CONFIGURE,
            OP_UNSETTRAP,
        ] {
            assert_eq!(error_code(&request(op, 0, "leap=1")), 1, "opcode {op}");
        }
    }

    #[test]
    fn responses_fragments_and_denied_sources_get_nothing() {
        let mut response = request(OP_READSTAT, 0, "");
        response[1] |= 0x80;
        assert_eq!(
            ask(&response, LOOPBACK, &view()),
            Decision::Drop(Outcome::DropMalformed)
        );
        assert_eq!(
            ask(&request(OP_READSTAT, 0, ""), "192.0.2.7", &view()),
            Decision::Drop(Outcome::DropControlDenied)
        );
        // Not even an error for a malformed one.
        assert_eq!(
            ask(&request(OP_CONFIGURE, 0, "x"), "::ffff:10.0.0.1", &view()),
            Decision::Drop(Outcome::DropControlDenied)
        );
    }

    #[test]
    fn clients_over_the_rate_get_nothing() {
        let p = policy();
        let mut limiter = limiter(&p);
        let req = request(OP_READSTAT, 0, "");
        let peer = LOOPBACK.parse().unwrap();
        let mut ask = || respond(&req, peer, NOW, &clock(), &view(), &p, &mut limiter);
        for _ in 0..p.limits.burst {
            assert!(matches!(ask(), Decision::Reply(..)));
        }
        assert_eq!(ask(), Decision::Drop(Outcome::DropControlRateLimited));
    }

    #[test]
    fn long_responses_are_fragmented_and_bounded() {
        let mut v = view();
        let one = v.associations[0].clone();
        v.associations = (1..=1000)
            .map(|id| Association { id, ..one.clone() })
            .collect();
        let (_, _, fragments) = answer(&request(OP_READSTAT, 0, ""), &v);
        assert_eq!(fragments.len(), MAX_FRAGMENTS);
        for (i, f) in fragments.iter().enumerate() {
            let offset = u16::from_be_bytes([f[8], f[9]]) as usize;
            assert_eq!(offset, i * MAX_DATA);
            assert_eq!(f[1] & 0x20 != 0, i + 1 < MAX_FRAGMENTS, "more bit of {i}");
            assert_eq!(f.len(), 12 + MAX_DATA);
        }
        // A long name in every variable list is cut at an item, within the bound.
        v.associations[0].name = "n".repeat(3000);
        let (text, _, fragments) = answer(&request(OP_READVAR, 1, ""), &v);
        assert!(fragments.len() <= MAX_FRAGMENTS && !text.contains("nnnnn"));
    }

    #[test]
    fn signed_requests_get_signed_answers() {
        let keys = KeyStore::parse(KEYS).unwrap();
        let p = Policy {
            keys: keys.clone(),
            ..policy()
        };
        for id in 1..=4 {
            let key = keys.get(id).unwrap();
            let mut req = request(OP_READVAR, 0, "stratum");
            req.resize(req.len().next_multiple_of(8), 0);
            let signed = req.len();
            req.resize(signed + 4 + 64, 0);
            let len = key.sign_with_digest(id, &mut req, signed, key.algorithm.digest_len(3));
            req.truncate(len);
            let peer = LOOPBACK.parse().unwrap();
            let d = respond(&req, peer, NOW, &clock(), &view(), &p, &mut limiter(&p));
            let Decision::Reply(fragments, Outcome::ControlAnswered) = d else {
                panic!("key {id}: {d:?}");
            };
            // "stratum=1\r\n" padded to 8 bytes, then the MAC.
            let f = &fragments[0];
            assert_eq!(f.len(), 24 + 4 + key.algorithm.digest_len(3), "key {id}");
            assert_eq!(f[24..28], id.to_be_bytes());
            assert!(key.algorithm.verify(&key.secret, 3, &f[..24], &f[28..]));
            // A wrong digest is refused, not answered unsigned.
            *req.last_mut().unwrap() ^= 1;
            let d = respond(&req, peer, NOW, &clock(), &view(), &p, &mut limiter(&p));
            let Decision::Reply(f, Outcome::ControlError) = d else {
                panic!("key {id}: {d:?}");
            };
            assert_eq!(f[0][4], ErrorCode::Permission as u8);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]
        #[test]
        fn never_panics_and_stays_bounded(
            data in proptest::collection::vec(any::<u8>(), 0..600),
            head in any::<[u8; 12]>(),
            denied in any::<bool>(),
        ) {
            // Most cases get a plausible header so the deeper paths are reached.
            let mut p = head.to_vec();
            p[0] = p[0] & 0x38 | control::MODE_CONTROL;
            p[1] &= 0x1f;
            p[8] = 0;
            p[9] = 0;
            p.extend_from_slice(&data);
            let from = if denied { "198.51.100.1" } else { LOOPBACK };
            match ask(&p, from, &view()) {
                Decision::Reply(fragments, _) => {
                    prop_assert!(!denied);
                    prop_assert!(fragments.len() <= MAX_FRAGMENTS);
                    prop_assert!(fragments.iter().all(|f| f.len() <= MAX_FRAGMENT));
                }
                Decision::Drop(_) => {}
            }
        }
    }
}
