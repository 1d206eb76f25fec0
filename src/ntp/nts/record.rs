//! NTS-KE records (RFC 8915 section 4): a critical bit and a 15-bit type, a 16-bit body
//! length, the body. A message is records up to and including End of Message.

pub const END_OF_MESSAGE: u16 = 0;
pub const NEXT_PROTOCOL: u16 = 1;
pub const ERROR: u16 = 2;
pub const WARNING: u16 = 3;
pub const AEAD_ALGORITHM: u16 = 4;
pub const NEW_COOKIE: u16 = 5;
pub const NTPV4_SERVER: u16 = 6;
pub const NTPV4_PORT: u16 = 7;

const CRITICAL: u16 = 0x8000;

/// Error codes of the Error record.
pub const ERROR_UNRECOGNIZED_CRITICAL: u16 = 0;
pub const ERROR_BAD_REQUEST: u16 = 1;
pub const ERROR_INTERNAL: u16 = 2;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record<'a> {
    pub critical: bool,
    pub kind: u16,
    pub body: &'a [u8],
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("bytes after the End of Message record")]
    AfterEnd,
    #[error("End of Message record with a body")]
    EndWithBody,
}

/// The records of a complete message at the start of `data`: `Ok(None)` while End of Message
/// has not arrived yet (read more, within the caller's size cap).
pub fn parse_message(data: &[u8]) -> Result<Option<Vec<Record<'_>>>, RecordError> {
    let mut records = Vec::new();
    let mut rest = data;
    while rest.len() >= 4 {
        let head = u16::from_be_bytes([rest[0], rest[1]]);
        let len = usize::from(u16::from_be_bytes([rest[2], rest[3]]));
        let Some(body) = rest.get(4..4 + len) else {
            return Ok(None);
        };
        let record = Record {
            critical: head & CRITICAL != 0,
            kind: head & !CRITICAL,
            body,
        };
        rest = &rest[4 + len..];
        if record.kind == END_OF_MESSAGE {
            if !body.is_empty() {
                return Err(RecordError::EndWithBody);
            }
            if !rest.is_empty() {
                return Err(RecordError::AfterEnd);
            }
            return Ok(Some(records));
        }
        records.push(record);
    }
    Ok(None)
}

/// The body as big-endian 16-bit values; `None` if its length is odd.
pub fn u16s(body: &[u8]) -> Option<impl Iterator<Item = u16> + '_> {
    (body.len() % 2 == 0).then(|| {
        body.chunks_exact(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
    })
}

/// Appends one record. Bodies longer than 65535 bytes are a caller's bug, not outside input.
pub fn push(out: &mut Vec<u8>, critical: bool, kind: u16, body: &[u8]) {
    let head = kind | if critical { CRITICAL } else { 0 };
    let len = u16::try_from(body.len()).expect("record body fits 16 bits");
    out.extend_from_slice(&head.to_be_bytes());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(body);
}

/// Appends a record whose body is 16-bit values.
pub fn push_u16s(out: &mut Vec<u8>, critical: bool, kind: u16, values: &[u16]) {
    let body: Vec<u8> = values.iter().flat_map(|v| v.to_be_bytes()).collect();
    push(out, critical, kind, &body);
}

pub fn push_end(out: &mut Vec<u8>) {
    push(out, true, END_OF_MESSAGE, &[]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_read_whole_or_asked_for_more() {
        let mut m = Vec::new();
        push_u16s(&mut m, true, NEXT_PROTOCOL, &[0]);
        push_u16s(&mut m, false, AEAD_ALGORITHM, &[30, 15]);
        push_end(&mut m);
        for cut in 0..m.len() {
            assert_eq!(parse_message(&m[..cut]), Ok(None), "cut at {cut}");
        }
        let records = parse_message(&m).unwrap().unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!(
            records[0],
            Record {
                critical: true,
                kind: NEXT_PROTOCOL,
                body: &[0, 0]
            }
        );
        assert!(!records[1].critical);
        assert_eq!(u16s(records[1].body).unwrap().collect::<Vec<_>>(), [30, 15]);
        assert!(u16s(&[1, 2, 3]).is_none());
        m.push(0);
        assert_eq!(parse_message(&m), Err(RecordError::AfterEnd));
        assert_eq!(
            parse_message(&[0x80, 0, 0, 1, 0]),
            Err(RecordError::EndWithBody)
        );
    }
}
