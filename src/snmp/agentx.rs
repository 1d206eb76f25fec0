//! The AgentX protocol (RFC 2741), as much as a read-only subagent needs: the header, OIDs,
//! octet strings and variable bindings, the Open, Register and Response PDUs it sends, and the
//! Get, GetNext and GetBulk requests it answers. Pure: bytes in, bytes out; anything malformed
//! is an error, never a panic.

use std::cmp::Ordering;

pub const HEADER_LEN: usize = 20;
/// The largest PDU accepted from the master: requests for a few objects are far smaller.
pub const MAX_PAYLOAD: usize = 64 * 1024;

pub const OPEN: u8 = 1;
pub const CLOSE: u8 = 2;
pub const REGISTER: u8 = 3;
pub const GET: u8 = 5;
pub const GET_NEXT: u8 = 6;
pub const GET_BULK: u8 = 7;
pub const NOTIFY: u8 = 12;
pub const RESPONSE: u8 = 18;

const FLAG_NON_DEFAULT_CONTEXT: u8 = 0x08;
const FLAG_NETWORK_BYTE_ORDER: u8 = 0x10;

/// Response errors (RFC 2741 section 6.2.16) this subagent gives.
pub const NO_ERROR: u16 = 0;
pub const GEN_ERR: u16 = 5;
pub const NOT_WRITABLE: u16 = 17;

/// An object identifier.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Oid(pub Vec<u32>);

impl Oid {
    pub fn child(&self, ids: &[u32]) -> Oid {
        Oid([&self.0[..], ids].concat())
    }

    pub fn starts_with(&self, prefix: &Oid) -> bool {
        self.0.starts_with(&prefix.0)
    }
}

impl std::fmt::Display for Oid {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        let parts: Vec<String> = self.0.iter().map(u32::to_string).collect();
        f.write_str(&parts.join("."))
    }
}

/// A value of a variable binding.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Integer(i32),
    OctetString(Vec<u8>),
    ObjectIdentifier(Oid),
    Counter32(u32),
    /// Gauge32, which is also Unsigned32.
    Gauge32(u32),
    TimeTicks(u32),
    NoSuchObject,
    EndOfMibView,
}

impl Value {
    fn tag(&self) -> u16 {
        match self {
            Value::Integer(_) => 2,
            Value::OctetString(_) => 4,
            Value::ObjectIdentifier(_) => 6,
            Value::Counter32(_) => 65,
            Value::Gauge32(_) => 66,
            Value::TimeTicks(_) => 67,
            Value::NoSuchObject => 128,
            Value::EndOfMibView => 130,
        }
    }
}

/// A request's header fields the response must echo.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub kind: u8,
    pub flags: u8,
    pub session: u32,
    pub transaction: u32,
    pub packet: u32,
    pub payload_len: usize,
}

impl Header {
    /// Reads a header; its payload follows.
    pub fn parse(b: &[u8]) -> Result<Header, &'static str> {
        if b.len() < HEADER_LEN {
            return Err("short header");
        }
        if b[0] != 1 {
            return Err("not AgentX version 1");
        }
        let mut r = Reader::new(&b[4..HEADER_LEN], b[2] & FLAG_NETWORK_BYTE_ORDER != 0);
        let (session, transaction, packet) = (r.u32()?, r.u32()?, r.u32()?);
        let payload_len = r.u32()? as usize;
        if payload_len > MAX_PAYLOAD || payload_len % 4 != 0 {
            return Err("payload length out of bounds");
        }
        Ok(Header {
            kind: b[1],
            flags: b[2],
            session,
            transaction,
            packet,
            payload_len,
        })
    }
}

/// One range a Get, GetNext or GetBulk asks about.
#[derive(Clone, Debug, PartialEq)]
pub struct SearchRange {
    pub start: Oid,
    /// For GetNext: whether `start` itself may be the answer.
    pub include: bool,
    /// Empty: no end.
    pub end: Oid,
}

/// A request from the master.
#[derive(Clone, Debug, PartialEq)]
pub enum Request {
    Get(Vec<SearchRange>),
    GetNext(Vec<SearchRange>),
    GetBulk {
        non_repeaters: usize,
        max_repetitions: usize,
        ranges: Vec<SearchRange>,
    },
    /// The master ends the session.
    Close,
    /// Anything else (a set, a ping's answer): answered with an error or ignored.
    Other(u8),
}

/// Reads a request's payload.
pub fn parse_request(h: &Header, payload: &[u8]) -> Result<Request, &'static str> {
    let mut r = Reader::new(payload, h.flags & FLAG_NETWORK_BYTE_ORDER != 0);
    if h.flags & FLAG_NON_DEFAULT_CONTEXT != 0 && matches!(h.kind, GET | GET_NEXT | GET_BULK) {
        r.octet_string()?;
    }
    let ranges = |r: &mut Reader| -> Result<Vec<SearchRange>, &'static str> {
        let mut ranges = Vec::new();
        while !r.is_empty() {
            let (start, include) = r.oid()?;
            let (end, _) = r.oid()?;
            ranges.push(SearchRange {
                start,
                include,
                end,
            });
        }
        Ok(ranges)
    };
    Ok(match h.kind {
        GET => Request::Get(ranges(&mut r)?),
        GET_NEXT => Request::GetNext(ranges(&mut r)?),
        GET_BULK => {
            let non_repeaters = usize::from(r.u16()?);
            let max_repetitions = usize::from(r.u16()?);
            Request::GetBulk {
                non_repeaters,
                max_repetitions,
                ranges: ranges(&mut r)?,
            }
        }
        CLOSE => Request::Close,
        kind => Request::Other(kind),
    })
}

/// Whether `oid` lies in `range` for a GetNext: after its start (or at it, if included) and
/// before its end.
pub fn in_range(oid: &Oid, range: &SearchRange) -> bool {
    let after = match oid.cmp(&range.start) {
        Ordering::Greater => true,
        Ordering::Equal => range.include,
        Ordering::Less => false,
    };
    after && (range.end.0.is_empty() || *oid < range.end)
}

/// Builds PDUs in network byte order.
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    fn new(kind: u8, session: u32, transaction: u32, packet: u32) -> Writer {
        let mut buf = vec![1, kind, FLAG_NETWORK_BYTE_ORDER, 0];
        for v in [session, transaction, packet, 0] {
            buf.extend_from_slice(&v.to_be_bytes());
        }
        Writer { buf }
    }

    fn u8s(&mut self, b: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(b);
        self
    }

    fn oid(&mut self, oid: &Oid, include: bool) -> &mut Self {
        // The 1.3.6.1.X prefix is written as X, as the RFC suggests.
        let (prefix, ids) = match &oid.0[..] {
            [1, 3, 6, 1, x, rest @ ..] if *x <= 255 && !rest.is_empty() => (*x as u8, rest),
            ids => (0, ids),
        };
        let n = ids.len().min(128) as u8;
        self.u8s(&[n, prefix, u8::from(include), 0]);
        for id in &ids[..usize::from(n)] {
            self.u8s(&id.to_be_bytes());
        }
        self
    }

    fn octet_string(&mut self, s: &[u8]) -> &mut Self {
        self.u8s(&(s.len() as u32).to_be_bytes()).u8s(s);
        let pad = (4 - s.len() % 4) % 4;
        self.u8s(&[0; 3][..pad])
    }

    fn varbind(&mut self, name: &Oid, value: &Value) -> &mut Self {
        self.u8s(&value.tag().to_be_bytes())
            .u8s(&[0, 0])
            .oid(name, false);
        match value {
            Value::Integer(v) => self.u8s(&v.to_be_bytes()),
            Value::OctetString(s) => self.octet_string(s),
            Value::ObjectIdentifier(oid) => self.oid(oid, false),
            Value::Counter32(v) | Value::Gauge32(v) | Value::TimeTicks(v) => {
                self.u8s(&v.to_be_bytes())
            }
            Value::NoSuchObject | Value::EndOfMibView => self,
        }
    }

    fn finish(mut self) -> Vec<u8> {
        let len = (self.buf.len() - HEADER_LEN) as u32;
        self.buf[16..20].copy_from_slice(&len.to_be_bytes());
        self.buf
    }
}

/// The Open PDU: a session with `timeout` seconds for answers, named by `id` and `descr`.
pub fn open(packet: u32, timeout: u8, id: &Oid, descr: &str) -> Vec<u8> {
    let mut w = Writer::new(OPEN, 0, 0, packet);
    w.u8s(&[timeout, 0, 0, 0])
        .oid(id, false)
        .octet_string(descr.as_bytes());
    w.finish()
}

/// The Register PDU for `subtree`, at the default priority.
pub fn register(session: u32, packet: u32, subtree: &Oid) -> Vec<u8> {
    let mut w = Writer::new(REGISTER, session, 0, packet);
    w.u8s(&[0, 127, 0, 0]).oid(subtree, false);
    w.finish()
}

/// A Notify PDU: `bindings` start with sysUpTime.0 and snmpTrapOID.0 (RFC 2741 6.2.10).
pub fn notify(session: u32, packet: u32, bindings: &[(Oid, Value)]) -> Vec<u8> {
    let mut w = Writer::new(NOTIFY, session, 0, packet);
    for (name, value) in bindings {
        w.varbind(name, value);
    }
    w.finish()
}

/// A Response to the request `to`.
pub fn response(to: &Header, error: u16, index: u16, bindings: &[(Oid, Value)]) -> Vec<u8> {
    let mut w = Writer::new(RESPONSE, to.session, to.transaction, to.packet);
    w.u8s(&0u32.to_be_bytes())
        .u8s(&error.to_be_bytes())
        .u8s(&index.to_be_bytes());
    for (name, value) in bindings {
        w.varbind(name, value);
    }
    w.finish()
}

/// The master's Response to one of ours: its error field.
pub fn response_error(h: &Header, payload: &[u8]) -> Result<u16, &'static str> {
    if h.kind != RESPONSE {
        return Err("not a response");
    }
    let mut r = Reader::new(payload, h.flags & FLAG_NETWORK_BYTE_ORDER != 0);
    r.u32()?;
    r.u16()
}

/// Reads fields in the byte order the PDU's header names.
struct Reader<'a> {
    b: &'a [u8],
    big_endian: bool,
}

impl<'a> Reader<'a> {
    fn new(b: &'a [u8], big_endian: bool) -> Self {
        Reader { b, big_endian }
    }

    fn is_empty(&self) -> bool {
        self.b.is_empty()
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], &'static str> {
        if self.b.len() < n {
            return Err("truncated");
        }
        let (head, rest) = self.b.split_at(n);
        self.b = rest;
        Ok(head)
    }

    fn u16(&mut self) -> Result<u16, &'static str> {
        let b: [u8; 2] = self.take(2)?.try_into().map_err(|_| "truncated")?;
        Ok(if self.big_endian {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        })
    }

    fn u32(&mut self) -> Result<u32, &'static str> {
        let b: [u8; 4] = self.take(4)?.try_into().map_err(|_| "truncated")?;
        Ok(if self.big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    }

    fn oid(&mut self) -> Result<(Oid, bool), &'static str> {
        let head = self.take(4)?;
        let (n, prefix, include) = (usize::from(head[0]), head[1], head[2] != 0);
        if n > 128 {
            return Err("OID too long");
        }
        let mut ids = Vec::with_capacity(n + 5);
        if prefix != 0 {
            ids.extend([1, 3, 6, 1, u32::from(prefix)]);
        }
        for _ in 0..n {
            ids.push(self.u32()?);
        }
        Ok((Oid(ids), include))
    }

    fn octet_string(&mut self) -> Result<&'a [u8], &'static str> {
        let len = self.u32()? as usize;
        if len > self.b.len() {
            return Err("truncated");
        }
        let s = self.take(len)?;
        self.take((4 - len % 4) % 4)?;
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oid(s: &str) -> Oid {
        Oid(s.split('.').map(|x| x.parse().unwrap()).collect())
    }

    #[test]
    fn a_getnext_is_read_in_either_byte_order() {
        // GetNext for 1.3.6.1.2.1.197 (prefix 2: mib-2's 1.3.6.1.2), included, to no end.
        for big in [true, false] {
            let u32b = |v: u32| {
                if big {
                    v.to_be_bytes()
                } else {
                    v.to_le_bytes()
                }
            };
            let mut payload = vec![2, 2, 1, 0];
            payload.extend(u32b(1));
            payload.extend(u32b(197));
            payload.extend([0, 0, 0, 0]);
            let mut pdu = vec![1, GET_NEXT, if big { 0x10 } else { 0 }, 0];
            for v in [7, 8, 9, payload.len() as u32] {
                pdu.extend(u32b(v));
            }
            pdu.extend(&payload);
            let h = Header::parse(&pdu).unwrap();
            assert_eq!((h.session, h.transaction, h.packet), (7, 8, 9));
            let request = parse_request(&h, &pdu[HEADER_LEN..]).unwrap();
            assert_eq!(
                request,
                Request::GetNext(vec![SearchRange {
                    start: oid("1.3.6.1.2.1.197"),
                    include: true,
                    end: Oid(vec![]),
                }])
            );
        }
    }

    #[test]
    fn responses_carry_the_request_ids_and_padded_values() {
        let h = Header {
            kind: GET,
            flags: 0,
            session: 1,
            transaction: 2,
            packet: 3,
            payload_len: 0,
        };
        let pdu = response(
            &h,
            NO_ERROR,
            0,
            &[(
                oid("1.3.6.1.2.1.197.1.1.1.0"),
                Value::OctetString(b"pitime".to_vec()),
            )],
        );
        let back = Header::parse(&pdu).unwrap();
        assert_eq!((back.kind, back.session, back.packet), (RESPONSE, 1, 3));
        assert_eq!(back.payload_len, pdu.len() - HEADER_LEN);
        // sysUpTime, error, index; the binding: type 4, OID with prefix 2 and six ids, the
        // string's length and its six bytes padded to eight.
        assert_eq!(pdu.len(), HEADER_LEN + 8 + 4 + 4 + 6 * 4 + 4 + 8);
        assert_eq!(&pdu[pdu.len() - 8..], b"pitime\0\0");
    }

    #[test]
    fn hostile_pdus_are_errors() {
        assert!(Header::parse(&[1, 5, 0x10, 0]).is_err());
        let mut pdu = vec![1, GET, 0x10, 0];
        pdu.extend([0u8; 12]);
        pdu.extend(0xffff_fff0u32.to_be_bytes());
        assert!(Header::parse(&pdu).is_err());
        let h = Header {
            kind: GET,
            flags: 0x10,
            session: 0,
            transaction: 0,
            packet: 0,
            payload_len: 8,
        };
        // An OID that claims 200 ids, one that claims 3 and has 1.
        assert!(parse_request(&h, &[200, 0, 0, 0]).is_err());
        assert!(parse_request(&h, &[3, 0, 0, 0, 0, 0, 0, 1]).is_err());
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_from_the_master_are_read_or_refused(
            data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
            kind in 1u8..20,
            flags in proptest::prelude::any::<u8>(),
        ) {
            let mut pdu = vec![1, kind, flags, 0];
            pdu.extend(&data);
            if let Ok(h) = Header::parse(&pdu) {
                let end = (HEADER_LEN + h.payload_len).min(pdu.len());
                let _ = parse_request(&h, &pdu[HEADER_LEN..end]);
                let _ = response_error(&h, &pdu[HEADER_LEN..end]);
            }
        }
    }

    #[test]
    fn getnext_ranges_include_their_start_only_when_asked() {
        let range = |include| SearchRange {
            start: oid("1.3.6.1.2.1.197.1.1.1.0"),
            include,
            end: oid("1.3.6.1.2.1.197.1.2"),
        };
        assert!(!in_range(&oid("1.3.6.1.2.1.197.1.1.1.0"), &range(false)));
        assert!(in_range(&oid("1.3.6.1.2.1.197.1.1.1.0"), &range(true)));
        assert!(in_range(&oid("1.3.6.1.2.1.197.1.1.2.0"), &range(false)));
        assert!(!in_range(&oid("1.3.6.1.2.1.197.1.2.1.0"), &range(false)));
    }
}
