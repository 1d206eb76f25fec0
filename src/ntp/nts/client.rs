//! The client's side of NTS on NTP: a request with a unique identifier, a cookie, placeholders
//! and an authenticator, and the check of the reply that yields its fresh cookies. For the
//! load generator and the tests that play an NTS client.

use super::aead::{SessionKeys, TAG_LEN};
use super::extension::{
    self, authenticator_len, field_len, write_authenticator_head, write_field, COOKIE,
    COOKIE_PLACEHOLDER, UNIQUE_IDENTIFIER,
};
use crate::ntp::packet::{Header, HEADER_LEN};

/// Writes an NTS request after `header` into `out`; returns its length. `out` must hold it.
pub fn write_request(
    out: &mut [u8],
    header: &Header,
    unique_id: &[u8; 32],
    cookie: &[u8],
    placeholders: usize,
    session: &SessionKeys,
    nonce: &[u8],
) -> usize {
    let head: &mut [u8; HEADER_LEN] = (&mut out[..HEADER_LEN]).try_into().expect("room");
    header.write(head);
    let mut at = HEADER_LEN;
    at += write_field(&mut out[at..], UNIQUE_IDENTIFIER, unique_id.len());
    out[at - 32..at].copy_from_slice(unique_id);
    let len = write_field(&mut out[at..], COOKIE, cookie.len());
    out[at + 4..at + 4 + cookie.len()].copy_from_slice(cookie);
    at += len;
    for _ in 0..placeholders {
        let len = write_field(&mut out[at..], COOKIE_PLACEHOLDER, cookie.len());
        out[at + 4..at + len].fill(0);
        at += len;
    }
    let text_at = at + write_authenticator_head(&mut out[at..], nonce, TAG_LEN);
    let (ad, rest) = out.split_at_mut(at);
    let text = &mut rest[text_at - at..];
    let sealed = session.algorithm.seal(session.c2s(), nonce, ad, text, 0);
    debug_assert!(sealed.is_ok());
    at + authenticator_len(nonce.len(), TAG_LEN)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReplyError {
    #[error("an NTS NAK (kiss code NTSN)")]
    Nak,
    #[error("no authenticator or unique identifier, or not ours")]
    Unauthenticated,
}

/// Checks a reply to a request with `unique_id`; returns the fresh cookies it carries.
pub fn read_reply(
    reply: &[u8],
    unique_id: &[u8; 32],
    session: &SessionKeys,
) -> Result<Vec<Vec<u8>>, ReplyError> {
    let header = Header::parse(reply).ok_or(ReplyError::Unauthenticated)?;
    if header.stratum == 0 && header.refid == *b"NTSN" {
        return Err(ReplyError::Nak);
    }
    let mut at = HEADER_LEN;
    let mut uid_seen = false;
    while at + 4 <= reply.len() {
        let kind = u16::from_be_bytes([reply[at], reply[at + 1]]);
        let len = usize::from(u16::from_be_bytes([reply[at + 2], reply[at + 3]]));
        let body = reply
            .get(at + 4..at + len)
            .filter(|_| len >= 4)
            .ok_or(ReplyError::Unauthenticated)?;
        match kind {
            UNIQUE_IDENTIFIER => uid_seen = body == unique_id,
            extension::AUTHENTICATOR if uid_seen => {
                let nonce_len = usize::from(u16::from_be_bytes([body[0], body[1]]));
                let text_len = usize::from(u16::from_be_bytes([body[2], body[3]]));
                let text_at = 4 + nonce_len.next_multiple_of(4);
                let nonce = body
                    .get(4..4 + nonce_len)
                    .ok_or(ReplyError::Unauthenticated)?;
                let mut text = body
                    .get(text_at..text_at + text_len)
                    .ok_or(ReplyError::Unauthenticated)?
                    .to_vec();
                let plain = session
                    .algorithm
                    .open(session.s2c(), nonce, &reply[..at], &mut text)
                    .map_err(|_| ReplyError::Unauthenticated)?;
                return Ok(cookies(plain));
            }
            _ => {}
        }
        at += len;
    }
    Err(ReplyError::Unauthenticated)
}

/// The NTS Cookie fields among the decrypted fields.
fn cookies(mut plain: &[u8]) -> Vec<Vec<u8>> {
    let mut found = Vec::new();
    while plain.len() >= 4 {
        let kind = u16::from_be_bytes([plain[0], plain[1]]);
        let len = usize::from(u16::from_be_bytes([plain[2], plain[3]]));
        let Some(body) = plain.get(4..len) else { break };
        if kind == COOKIE {
            found.push(body.to_vec());
        }
        plain = &plain[len.max(4)..];
    }
    found
}

/// The length of a request with this cookie, placeholders and nonce.
pub fn request_len(cookie_len: usize, placeholders: usize, nonce_len: usize) -> usize {
    HEADER_LEN
        + field_len(32)
        + (1 + placeholders) * field_len(cookie_len)
        + authenticator_len(nonce_len, TAG_LEN)
}
