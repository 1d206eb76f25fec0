//! The NTP server's decision for one datagram: parse, check access, rate and authentication, and
//! build the reply. Pure: the receive time, the clock state and the policy come in as arguments;
//! the transmit timestamp and MAC are added by `finish` just before the send.

use std::net::IpAddr;

use super::acl::AccessList;
use super::keys::KeyStore;
use super::mac::MAX_DIGEST_LEN;
use super::packet::{self, Header, Leap, HEADER_LEN, MODE_CLIENT, MODE_SERVER};
use super::ratelimit::{self, RateLimiter, Verdict};
use super::stats::Outcome;
use crate::config::Refusal;
use crate::discipline::snapshot::ClockSnapshot;
use crate::time::{NtpShort, NtpTimestamp, Realtime};

/// The longest reply: a header and a 20-byte digest MAC.
pub const MAX_REPLY_LEN: usize = HEADER_LEN + 4 + MAX_DIGEST_LEN;
/// The longest request considered; anything longer is dropped as oversized.
pub const MAX_REQUEST_LEN: usize = 1500;
const MIN_POLL: i8 = 4;
const MAX_POLL: i8 = 17;

/// Who may ask and how: built from the configuration, swapped whole on reload.
#[derive(Clone, Debug)]
pub struct Policy {
    pub access: AccessList,
    pub deny_action: Refusal,
    pub rate_limit: Option<ratelimit::Params>,
    pub rate_action: Refusal,
    pub keys: KeyStore,
    /// Key ids clients may use; `None` trusts every key in `keys`.
    pub trusted_keys: Option<Vec<u32>>,
    pub require_auth: bool,
}

impl Policy {
    fn trusts(&self, key_id: u32) -> bool {
        self.trusted_keys
            .as_ref()
            .is_none_or(|ids| ids.contains(&key_id))
    }
}

/// A reply built into the output buffer, waiting for its transmit timestamp.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reply {
    pub len: usize,
    /// Key id to sign with once the transmit timestamp is in.
    pub sign_with: Option<u32>,
    pub outcome: Outcome,
}

/// What to do with one datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Reply(Reply),
    Drop(Outcome),
}

enum Kind {
    Time,
    CryptoNak,
    Kiss(&'static [u8; 4]),
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
        return match policy.deny_action {
            Refusal::Ignore => Drop(Outcome::DropDenied),
            Refusal::Kiss => build(
                &req,
                Kind::Kiss(b"DENY"),
                None,
                rx,
                clock,
                out,
                Outcome::KissDeny,
            ),
        };
    }
    if let (Some(limiter), Some(_)) = (limiter, policy.rate_limit) {
        if let Verdict::Limited { kod } = limiter.check(peer, rx.as_nanos()) {
            return match (policy.rate_action, kod) {
                (Refusal::Kiss, true) => build(
                    &req,
                    Kind::Kiss(b"RATE"),
                    None,
                    rx,
                    clock,
                    out,
                    Outcome::KissRate,
                ),
                _ => Drop(Outcome::DropRateLimited),
            };
        }
    }
    match trailer.mac {
        None if policy.require_auth => Drop(Outcome::DropAuthRequired),
        None => build(&req, Kind::Time, None, rx, clock, out, Outcome::Served),
        Some(mac) => {
            let valid = policy.trusts(mac.key_id)
                && policy.keys.get(mac.key_id).is_some_and(|k| {
                    k.algorithm
                        .verify(&k.secret, &request[..mac.signed_len], mac.digest)
                });
            if valid {
                let outcome = Outcome::ServedAuthenticated;
                build(&req, Kind::Time, Some(mac.key_id), rx, clock, out, outcome)
            } else {
                build(
                    &req,
                    Kind::CryptoNak,
                    None,
                    rx,
                    clock,
                    out,
                    Outcome::CryptoNak,
                )
            }
        }
    }
}

fn build(
    req: &Header,
    kind: Kind,
    sign_with: Option<u32>,
    rx: Realtime,
    clock: &ClockSnapshot,
    out: &mut [u8; MAX_REPLY_LEN],
    outcome: Outcome,
) -> Decision {
    let served_rx = clock.correction.apply(rx);
    let mut header = Header {
        leap: if clock.synchronised {
            clock.leap
        } else {
            Leap::Unsynchronised
        },
        version: req.version,
        mode: MODE_SERVER,
        stratum: if clock.synchronised {
            clock.stratum
        } else {
            16
        },
        poll: req.poll.clamp(MIN_POLL, MAX_POLL),
        precision: clock.precision,
        root_delay: NtpShort::from_secs_f64(clock.root_delay),
        root_dispersion: NtpShort::from_secs_f64(clock.root_dispersion_at(served_rx)),
        refid: clock.refid,
        reference: if clock.synchronised {
            clock.reference_time.to_ntp()
        } else {
            NtpTimestamp::ZERO
        },
        origin: req.transmit,
        receive: served_rx.to_ntp(),
        transmit: NtpTimestamp::ZERO,
    };
    if let Kind::Kiss(code) = kind {
        header.leap = Leap::Unsynchronised;
        header.stratum = 0;
        header.refid = *code;
        header.root_delay = NtpShort(0);
        header.root_dispersion = NtpShort(0);
        header.reference = NtpTimestamp::ZERO;
    }
    let head: &mut [u8; HEADER_LEN] = (&mut out[..HEADER_LEN])
        .try_into()
        .expect("buffer holds a header");
    header.write(head);
    let len = match (kind, sign_with) {
        // A crypto-NAK is the reply with a MAC of key id 0 and no digest.
        (Kind::CryptoNak, _) => {
            out[HEADER_LEN..HEADER_LEN + 4].fill(0);
            HEADER_LEN + 4
        }
        _ => HEADER_LEN,
    };
    Decision::Reply(Reply {
        len,
        sign_with,
        outcome,
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
    packet::set_transmit(out, clock.correction.apply(tx).to_ntp());
    // `respond` checked the key against this same policy, so it is there.
    let Some((key_id, key)) = reply
        .sign_with
        .and_then(|id| Some((id, policy.keys.get(id)?)))
    else {
        return reply.len;
    };
    out[HEADER_LEN..HEADER_LEN + 4].copy_from_slice(&key_id.to_be_bytes());
    let mut digest = [0u8; MAX_DIGEST_LEN];
    let n = key
        .algorithm
        .compute(&key.secret, &out[..HEADER_LEN], &mut digest);
    out[HEADER_LEN + 4..HEADER_LEN + 4 + n].copy_from_slice(&digest[..n]);
    HEADER_LEN + 4 + n
}
