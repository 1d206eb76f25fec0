//! Network Time Security on the NTP server: requests carrying a cookie and an authenticator
//! get replies authenticated with the client's server-to-client key and carrying fresh cookies;
//! a cookie that does not open or a request that does not authenticate gets an NTS NAK (kiss
//! code NTSN). Pure but for the random nonces. The cookies themselves are `cookie`, the master
//! keys on disk `keyfile`.

pub mod certs;
pub mod cookie;
pub mod exchange;
pub mod ke;
pub mod keyfile;
pub mod random;

use cookie::{cookie_len, CookieKeys, NONCE_LEN as COOKIE_NONCE_LEN};

use super::respond::Reply;
use super::stats::Outcome;
use crate::ntp::nts::aead::{SessionKeys, TAG_LEN};
use crate::ntp::nts::extension::{self, COOKIE};
use crate::ntp::packet::{HEADER_LEN, MAX_REPLY_LEN, MAX_REQUEST_LEN};

/// What an NTP request is, as far as NTS goes.
#[derive(Debug, PartialEq, Eq)]
pub enum Check<'a> {
    /// No NTS fields: plain NTP.
    NotNts,
    /// NTS fields that cannot be read: dropped.
    Malformed,
    /// A cookie that does not open, or a request that does not authenticate: an NTS NAK,
    /// echoing the unique identifier field.
    Nak(&'a [u8]),
    Valid(Valid<'a>),
}

/// An authenticated request.
#[derive(Debug, PartialEq, Eq)]
pub struct Valid<'a> {
    unique_id_field: &'a [u8],
    session: SessionKeys,
    /// Cookies asked for: one for the cookie used, one per placeholder.
    cookies: usize,
}

/// What `finish` needs to encrypt a reply once its transmit timestamp is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Seal {
    session: SessionKeys,
    /// Where the authenticator and its ciphertext start, and how long the plaintext is.
    auth_at: u16,
    text_at: u16,
    plain_len: u16,
}

/// Reads and authenticates the NTS fields of `request`, a packet without a symmetric-key MAC.
pub fn check<'a>(request: &'a [u8], keys: &CookieKeys) -> Check<'a> {
    let r = match extension::parse_request(request) {
        Ok(None) => return Check::NotNts,
        Ok(Some(r)) => r,
        Err(_) => return Check::Malformed,
    };
    let Some(session) = keys.open(r.cookie) else {
        return Check::Nak(r.unique_id_field);
    };
    let mut text = [0u8; MAX_REQUEST_LEN];
    let Some(text) = text.get_mut(..r.ciphertext.len()) else {
        return Check::Malformed;
    };
    text.copy_from_slice(r.ciphertext);
    let ad = &request[..r.auth_at];
    if session
        .algorithm
        .open(session.c2s(), r.nonce, ad, text)
        .is_err()
    {
        return Check::Nak(r.unique_id_field);
    }
    // Placeholders shorter than our cookies would let the reply outgrow the request.
    let placeholders = match r.shortest_placeholder >= cookie_len(session.algorithm) {
        true => r.placeholders,
        false => 0,
    };
    Check::Valid(Valid {
        unique_id_field: r.unique_id_field,
        session,
        cookies: 1 + placeholders,
    })
}

/// Appends the unique identifier to the NTSN kiss whose header is in `out`.
pub fn nak(unique_id_field: &[u8], out: &mut [u8; MAX_REPLY_LEN]) -> Reply {
    let len = HEADER_LEN + unique_id_field.len();
    out[HEADER_LEN..len].copy_from_slice(unique_id_field);
    Reply {
        len,
        sign_with: None,
        nts: None,
        outcome: Outcome::KissNts,
        transmit: None,
    }
}

/// Appends the unique identifier and the fresh cookies (in plaintext, sealed by `seal` once
/// the transmit timestamp is in) to the reply whose header is in `out`: as many cookies as
/// asked for that fit in a reply no longer than the request. `None` if the system has no
/// randomness to give.
pub fn reply(
    valid: &Valid,
    keys: &CookieKeys,
    request_len: usize,
    out: &mut [u8; MAX_REPLY_LEN],
) -> Option<Reply> {
    let algorithm = valid.session.algorithm;
    let auth_at = HEADER_LEN + valid.unique_id_field.len();
    out[HEADER_LEN..auth_at].copy_from_slice(valid.unique_id_field);
    let nonce_len = algorithm.nonce_len();
    let limit = request_len.min(MAX_REPLY_LEN);
    let fixed = auth_at + extension::authenticator_len(nonce_len, TAG_LEN);
    let field = extension::field_len(cookie_len(algorithm));
    let count = valid.cookies.min(limit.saturating_sub(fixed) / field);
    let plain_len = count * field;
    // One nonce for the reply, one per cookie.
    let mut nonces = [0u8; 16 + COOKIE_NONCE_LEN * (MAX_REPLY_LEN / 64)];
    let nonces = &mut nonces[..nonce_len + COOKIE_NONCE_LEN * count];
    if !random::fill(nonces) {
        return None;
    }
    let (nonce, cookie_nonces) = nonces.split_at(nonce_len);
    let text_at = auth_at
        + extension::write_authenticator_head(&mut out[auth_at..], nonce, plain_len + TAG_LEN);
    for (i, n) in cookie_nonces.chunks_exact(COOKIE_NONCE_LEN).enumerate() {
        let at = text_at + i * field;
        let len = keys.seal(&valid.session, n.try_into().ok()?, &mut out[at + 4..])?;
        extension::write_field(&mut out[at..], COOKIE, len);
    }
    Some(Reply {
        len: auth_at + extension::authenticator_len(nonce_len, plain_len + TAG_LEN),
        sign_with: None,
        nts: Some(Seal {
            session: valid.session,
            auth_at: auth_at as u16,
            text_at: text_at as u16,
            plain_len: plain_len as u16,
        }),
        outcome: Outcome::ServedNts,
        transmit: None,
    })
}

/// Encrypts the cookies of a built reply, authenticating everything before the authenticator
/// (the transmit timestamp included). `false` if it could not, which the lengths chosen in
/// `reply` rule out: the caller must then not send the plaintext.
pub fn seal(seal: &Seal, out: &mut [u8; MAX_REPLY_LEN]) -> bool {
    let algorithm = seal.session.algorithm;
    let (auth_at, text_at) = (usize::from(seal.auth_at), usize::from(seal.text_at));
    let mut nonce = [0u8; 16];
    let nonce = &mut nonce[..algorithm.nonce_len()];
    nonce.copy_from_slice(&out[auth_at + 8..auth_at + 8 + nonce.len()]);
    let (ad, rest) = out.split_at_mut(auth_at);
    let text = &mut rest[text_at - auth_at..];
    algorithm
        .seal(
            seal.session.s2c(),
            nonce,
            ad,
            text,
            usize::from(seal.plain_len),
        )
        .is_ok()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::cookie::{MasterKey, Rotation};
    use super::*;
    use crate::discipline::snapshot::ClockSnapshot;
    use crate::ntp::nts::aead::Algorithm;
    use crate::ntp::nts::client::{read_reply, write_request, ReplyError};
    use crate::ntp::packet::Header;
    use crate::server::respond::tests::policy;
    use crate::server::respond::{finish, respond, Decision, Policy};
    use crate::time::{NtpTimestamp, Realtime};
    use proptest::prelude::*;

    const RX: Realtime = Realtime::from_nanos(1_800_000_010_000_000_000);
    const UID: [u8; 32] = [0x55; 32];

    fn keys() -> CookieKeys {
        CookieKeys::new(vec![MasterKey {
            id: 3,
            created: 0,
            key: [4; 32],
        }])
    }

    fn nts_policy(keys: CookieKeys) -> Policy {
        Policy {
            nts: Some(Arc::new(keys)),
            ..policy()
        }
    }

    fn session(algorithm: Algorithm) -> SessionKeys {
        let n = algorithm.key_len();
        SessionKeys::new(algorithm, &vec![1; n], &vec![2; n]).unwrap()
    }

    fn cookie(keys: &CookieKeys, session: &SessionKeys) -> Vec<u8> {
        let mut c = vec![0; 200];
        let len = keys.seal(session, &[6; COOKIE_NONCE_LEN], &mut c).unwrap();
        c.truncate(len);
        c
    }

    fn request(session: &SessionKeys, cookie: &[u8], placeholders: usize) -> Vec<u8> {
        let header = Header::client_request(6, NtpTimestamp(0x1234));
        let mut out = vec![0; 1500];
        let nonce = vec![8; session.algorithm.nonce_len()];
        let len = write_request(
            &mut out,
            &header,
            &UID,
            cookie,
            placeholders,
            session,
            &nonce,
        );
        out.truncate(len);
        out
    }

    fn exchange(req: &[u8], policy: &Policy) -> (Outcome, Vec<u8>) {
        let clock = ClockSnapshot::example();
        let mut out = [0u8; MAX_REPLY_LEN];
        let peer = "192.0.2.1".parse().unwrap();
        match respond(req, peer, RX, &clock, policy, None, &mut out) {
            Decision::Drop(o) => (o, Vec::new()),
            Decision::Reply(r) => {
                let len = finish(&r, &mut out, RX, &clock, policy);
                (r.outcome, out[..len].to_vec())
            }
        }
    }

    #[test]
    fn authenticated_requests_get_one_fresh_cookie_per_cookie_and_placeholder() {
        let policy = nts_policy(keys());
        for algorithm in Algorithm::ALL {
            let session = session(algorithm);
            for placeholders in [0, 1, 7] {
                let req = request(&session, &cookie(&keys(), &session), placeholders);
                let (outcome, reply) = exchange(&req, &policy);
                assert_eq!(outcome, Outcome::ServedNts);
                assert_eq!(reply.len(), req.len(), "{algorithm:?} {placeholders}");
                let h = Header::parse(&reply).unwrap();
                assert_eq!((h.stratum, h.origin), (1, NtpTimestamp(0x1234)));
                let cookies = read_reply(&reply, &UID, &session).unwrap();
                assert_eq!(cookies.len(), 1 + placeholders);
                for c in &cookies {
                    assert_eq!(keys().open(c), Some(session));
                }
                // The authenticator covers the header: a changed timestamp is noticed.
                let mut forged = reply.clone();
                forged[41] ^= 1;
                assert_eq!(
                    read_reply(&forged, &UID, &session),
                    Err(ReplyError::Unauthenticated)
                );
            }
        }
    }

    #[test]
    fn bad_cookies_and_forged_requests_get_an_nts_nak() {
        let policy = nts_policy(keys());
        let session = session(Algorithm::AesSivCmac256);
        let good = cookie(&keys(), &session);
        let mut garbage = good.clone();
        garbage[30] ^= 0xff;
        let other = CookieKeys::new(vec![MasterKey {
            id: 3,
            created: 0,
            key: [9; 32],
        }]);
        let mut forged = request(&session, &good, 1);
        forged[40] ^= 1;
        let cases = [
            request(&session, &garbage, 1),
            request(&session, &cookie(&other, &session), 1),
            request(&session, &[0xaa; 100], 0),
            forged,
        ];
        for req in cases {
            let (outcome, reply) = exchange(&req, &policy);
            assert_eq!(outcome, Outcome::KissNts);
            let h = Header::parse(&reply).unwrap();
            assert_eq!((h.stratum, &h.refid), (0, b"NTSN"));
            assert_eq!(&reply[HEADER_LEN + 4..HEADER_LEN + 36], &UID);
            assert_eq!(reply.len(), HEADER_LEN + 36);
            assert_eq!(read_reply(&reply, &UID, &session), Err(ReplyError::Nak));
        }
    }

    #[test]
    fn cookies_of_a_rotated_out_key_get_an_nts_nak() {
        let session = session(Algorithm::AesSivCmac256);
        let rotation = Rotation {
            interval: 10,
            retention: 30,
        };
        let old = keys();
        let c = cookie(&old, &session);
        let kept = old.rotated(10, rotation, [1; 32], 0).unwrap();
        let (outcome, reply) = exchange(&request(&session, &c, 0), &nts_policy(kept.clone()));
        assert_eq!(outcome, Outcome::ServedNts);
        // The fresh cookie is from the new key.
        let fresh = &read_reply(&reply, &UID, &session).unwrap()[0];
        assert_eq!(fresh[..4], 4u32.to_be_bytes());
        let gone = kept.rotated(30, rotation, [2; 32], 0).unwrap();
        let (outcome, _) = exchange(&request(&session, &c, 0), &nts_policy(gone));
        assert_eq!(outcome, Outcome::KissNts);
    }

    #[test]
    fn unreadable_nts_fields_are_dropped_and_plain_requests_served() {
        let policy = nts_policy(keys());
        let session = session(Algorithm::AesSivCmac256);
        let mut req = request(&session, &cookie(&keys(), &session), 0);
        // A unique identifier of 28 bytes.
        req.drain(HEADER_LEN + 32..HEADER_LEN + 36);
        req[HEADER_LEN + 3] = 32;
        assert_eq!(exchange(&req, &policy).0, Outcome::DropMalformed);
        let plain = &request(&session, &[0; 100], 0)[..HEADER_LEN];
        assert_eq!(exchange(plain, &policy).0, Outcome::Served);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn damaged_nts_requests_never_panic_nor_amplify(
            flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..6),
            cut in any::<prop::sample::Index>(),
            placeholders in 0usize..9,
        ) {
            let policy = nts_policy(keys());
            let session = session(Algorithm::AesSivCmac256);
            let mut req = request(&session, &cookie(&keys(), &session), placeholders);
            for (at, x) in flips {
                let i = at.index(req.len());
                req[i] ^= x;
            }
            if placeholders % 2 == 1 {
                req.truncate(HEADER_LEN.max(cut.index(req.len() + 1)));
            }
            let (outcome, reply) = exchange(&req, &policy);
            prop_assert!(reply.len() <= req.len(), "{outcome:?}");
        }
    }
}
