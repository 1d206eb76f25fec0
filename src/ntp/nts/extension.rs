//! The NTS extension fields of NTP packets (RFC 8915 section 5): Unique Identifier, NTS
//! Cookie, Cookie Placeholder, and the Authenticator that carries the encrypted fields.

use crate::ntp::packet::HEADER_LEN;

pub const UNIQUE_IDENTIFIER: u16 = 0x0104;
pub const COOKIE: u16 = 0x0204;
pub const COOKIE_PLACEHOLDER: u16 = 0x0304;
pub const AUTHENTICATOR: u16 = 0x0404;

/// RFC 8915 asks for at least 32 bytes of unique identifier.
const MIN_UNIQUE_ID_LEN: usize = 32;

/// The NTS fields of a request, borrowed from it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request<'a> {
    /// The whole Unique Identifier field, to be echoed.
    pub unique_id_field: &'a [u8],
    pub cookie: &'a [u8],
    /// Placeholders before the authenticator, and the shortest one's body length.
    pub placeholders: usize,
    pub shortest_placeholder: usize,
    /// Where the authenticator starts: what it authenticates is the packet up to here.
    pub auth_at: usize,
    pub nonce: &'a [u8],
    /// The ciphertext, with its tag.
    pub ciphertext: &'a [u8],
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NtsError {
    #[error("extension field of a bad length")]
    BadField,
    #[error("no unique identifier, no cookie, two of either, or no authenticator")]
    Incomplete,
    #[error("unique identifier shorter than 32 bytes")]
    ShortUniqueId,
    #[error("authenticator whose lengths do not fit it")]
    BadAuthenticator,
}

/// One extension field: its type and body (padding included).
fn fields(packet: &[u8]) -> impl Iterator<Item = Result<(usize, u16, &[u8]), NtsError>> + '_ {
    let mut pos = HEADER_LEN;
    std::iter::from_fn(move || {
        let rest = packet.get(pos..).filter(|r| !r.is_empty())?;
        if rest.len() < 4 {
            pos = packet.len();
            return Some(Err(NtsError::BadField));
        }
        let kind = u16::from_be_bytes([rest[0], rest[1]]);
        let len = usize::from(u16::from_be_bytes([rest[2], rest[3]]));
        if len < 4 || len % 4 != 0 || len > rest.len() {
            pos = packet.len();
            return Some(Err(NtsError::BadField));
        }
        let at = pos;
        pos += len;
        Some(Ok((at, kind, &rest[4..len])))
    })
}

/// The NTS fields of `packet`, a request without a symmetric-key MAC: `Ok(None)` if it has none.
pub fn parse_request(packet: &[u8]) -> Result<Option<Request<'_>>, NtsError> {
    let is_nts = |kind| matches!(kind, UNIQUE_IDENTIFIER | COOKIE | AUTHENTICATOR);
    // A field that cannot be read might have been one: that is an error, not plain NTP.
    if !fields(packet).any(|f| f.is_err() || f.is_ok_and(|(_, kind, _)| is_nts(kind))) {
        return Ok(None);
    }
    let (mut unique_id, mut cookie, mut auth) = (None, None, None);
    let (mut placeholders, mut shortest_placeholder) = (0, usize::MAX);
    for field in fields(packet) {
        let (at, kind, body) = field?;
        if auth.is_some() {
            // Fields after the authenticator are not authenticated: ignored.
            break;
        }
        match kind {
            UNIQUE_IDENTIFIER if unique_id.is_none() => {
                if body.len() < MIN_UNIQUE_ID_LEN {
                    return Err(NtsError::ShortUniqueId);
                }
                unique_id = Some(&packet[at..at + 4 + body.len()]);
            }
            COOKIE if cookie.is_none() => cookie = Some(body),
            UNIQUE_IDENTIFIER | COOKIE => return Err(NtsError::Incomplete),
            COOKIE_PLACEHOLDER => {
                placeholders += 1;
                shortest_placeholder = shortest_placeholder.min(body.len());
            }
            AUTHENTICATOR => auth = Some((at, authenticator(body)?)),
            _ => {}
        }
    }
    let (Some(unique_id_field), Some(cookie), Some((auth_at, (nonce, ciphertext)))) =
        (unique_id, cookie, auth)
    else {
        return Err(NtsError::Incomplete);
    };
    Ok(Some(Request {
        unique_id_field,
        cookie,
        placeholders,
        shortest_placeholder,
        auth_at,
        nonce,
        ciphertext,
    }))
}

fn padded(n: usize) -> usize {
    n.div_ceil(4) * 4
}

/// An authenticator's body: nonce length, ciphertext length, nonce, ciphertext, each padded
/// to four bytes, then any padding.
fn authenticator(body: &[u8]) -> Result<(&[u8], &[u8]), NtsError> {
    if body.len() < 4 {
        return Err(NtsError::BadAuthenticator);
    }
    let nonce_len = usize::from(u16::from_be_bytes([body[0], body[1]]));
    let text_len = usize::from(u16::from_be_bytes([body[2], body[3]]));
    if 4 + padded(nonce_len) + padded(text_len) > body.len() {
        return Err(NtsError::BadAuthenticator);
    }
    let nonce = &body[4..4 + nonce_len];
    let at = 4 + padded(nonce_len);
    Ok((nonce, &body[at..at + text_len]))
}

/// The length of an extension field carrying `body_len` bytes.
pub fn field_len(body_len: usize) -> usize {
    4 + padded(body_len)
}

/// Writes a field header at `out[0..4]` for a body of `body_len` bytes, zeroes its padding;
/// returns the field's length.
pub fn write_field(out: &mut [u8], kind: u16, body_len: usize) -> usize {
    let len = field_len(body_len);
    out[..2].copy_from_slice(&kind.to_be_bytes());
    out[2..4].copy_from_slice(&(len as u16).to_be_bytes());
    out[4 + body_len..len].fill(0);
    len
}

/// The length of an authenticator with this nonce and ciphertext.
pub fn authenticator_len(nonce_len: usize, text_len: usize) -> usize {
    field_len(4 + padded(nonce_len) + text_len)
}

/// Writes an authenticator's header and nonce at `out`; returns where its ciphertext goes.
/// The ciphertext's padding is written by `write_field`, once its length is known.
pub fn write_authenticator_head(out: &mut [u8], nonce: &[u8], text_len: usize) -> usize {
    let len = write_field(out, AUTHENTICATOR, 4 + padded(nonce.len()) + text_len);
    debug_assert!(len <= out.len());
    out[4..6].copy_from_slice(&(nonce.len() as u16).to_be_bytes());
    out[6..8].copy_from_slice(&(text_len as u16).to_be_bytes());
    out[8..8 + nonce.len()].copy_from_slice(nonce);
    out[8 + nonce.len()..8 + padded(nonce.len())].fill(0);
    8 + padded(nonce.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    pub fn field(kind: u16, body: &[u8]) -> Vec<u8> {
        let mut f = vec![0; field_len(body.len())];
        write_field(&mut f, kind, body.len());
        f[4..4 + body.len()].copy_from_slice(body);
        f
    }

    fn packet(fields: &[Vec<u8>]) -> Vec<u8> {
        let mut p = vec![0x23; HEADER_LEN];
        for f in fields {
            p.extend_from_slice(f);
        }
        p
    }

    fn auth(nonce: &[u8], text: &[u8]) -> Vec<u8> {
        let mut f = vec![0; authenticator_len(nonce.len(), text.len())];
        let at = write_authenticator_head(&mut f, nonce, text.len());
        f[at..at + text.len()].copy_from_slice(text);
        f
    }

    #[test]
    fn a_request_is_read_with_its_placeholders() {
        let uid = field(UNIQUE_IDENTIFIER, &[1; 32]);
        let p = packet(&[
            uid.clone(),
            field(COOKIE, &[2; 100]),
            field(COOKIE_PLACEHOLDER, &[0; 100]),
            field(COOKIE_PLACEHOLDER, &[0; 96]),
            auth(&[3; 16], &[4; 16]),
            field(COOKIE_PLACEHOLDER, &[0; 100]),
        ]);
        let r = parse_request(&p).unwrap().unwrap();
        assert_eq!(r.unique_id_field, &uid[..]);
        assert_eq!(r.cookie, &[2; 100]);
        assert_eq!((r.placeholders, r.shortest_placeholder), (2, 96));
        assert_eq!(r.auth_at, HEADER_LEN + 36 + 104 + 104 + 100);
        assert_eq!((r.nonce, r.ciphertext), (&[3; 16][..], &[4; 16][..]));
    }

    #[test]
    fn plain_packets_are_not_nts() {
        assert_eq!(parse_request(&packet(&[])), Ok(None));
        assert_eq!(parse_request(&packet(&[field(0x1234, &[0; 28])])), Ok(None));
    }

    #[test]
    fn broken_requests_are_refused() {
        let uid = field(UNIQUE_IDENTIFIER, &[1; 32]);
        let cookie = field(COOKIE, &[2; 100]);
        let a = auth(&[3; 16], &[4; 16]);
        let cases = [
            (vec![cookie.clone(), a.clone()], NtsError::Incomplete),
            (vec![uid.clone(), a.clone()], NtsError::Incomplete),
            (vec![uid.clone(), cookie.clone()], NtsError::Incomplete),
            (
                vec![uid.clone(), cookie.clone(), cookie.clone(), a.clone()],
                NtsError::Incomplete,
            ),
            (
                vec![
                    field(UNIQUE_IDENTIFIER, &[1; 28]),
                    cookie.clone(),
                    a.clone(),
                ],
                NtsError::ShortUniqueId,
            ),
            (
                vec![
                    uid.clone(),
                    cookie.clone(),
                    field(AUTHENTICATOR, &[0, 16, 0, 16]),
                ],
                NtsError::BadAuthenticator,
            ),
        ];
        for (fields, error) in cases {
            assert_eq!(parse_request(&packet(&fields)), Err(error));
        }
        let mut p = packet(&[uid, cookie, a]);
        p[HEADER_LEN + 3] = 37;
        assert_eq!(parse_request(&p), Err(NtsError::BadField));
        p.truncate(p.len() - 2);
        assert_eq!(parse_request(&p), Err(NtsError::BadField));
    }
}
