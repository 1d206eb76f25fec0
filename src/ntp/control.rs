//! NTP control messages (mode 6: RFC 9327, as ntpd's `ntp_control.c` speaks them, which is what
//! `ntpq` and the monitoring plugins expect): the 12-byte header, requests with their optional
//! MAC, and responses cut into fragments. Pure.

use super::mac::MAX_DIGEST_LEN;
use super::packet::Mac;

pub const MODE_CONTROL: u8 = 6;
pub const HEADER_LEN: usize = 12;
/// Most data bytes in one fragment: RFC 9327's limit, and what check_ntp_peer reads at most.
pub const MAX_DATA: usize = 468;
/// The longest fragment: header, data padded to 8 bytes, key id and the longest digest.
pub const MAX_FRAGMENT: usize = HEADER_LEN + MAX_DATA + 4 + 4 + MAX_DIGEST_LEN;

pub const OP_READSTAT: u8 = 1;
pub const OP_READVAR: u8 = 2;

const RESPONSE: u8 = 0x80;
const ERROR: u8 = 0x40;
const MORE: u8 = 0x20;
const OP_MASK: u8 = 0x1f;

/// The error codes of an error response (in the high byte of its status word).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorCode {
    /// Refused: ntpd's answer to an operation the requester may not perform.
    Permission = 1,
    BadFormat = 2,
    BadOpcode = 3,
    BadAssociation = 4,
    UnknownVariable = 5,
}

/// A request to answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request<'a> {
    /// What it asks and what its answer must echo.
    pub to: ReplyTo,
    /// The request's data: for READVAR, the names of the variables wanted.
    pub data: &'a [u8],
    /// A MAC after the data (padded to 8 bytes, as ntpq sends it), unverified.
    pub mac: Option<Mac<'a>>,
}

/// Why a datagram is not a request to answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Invalid {
    /// Not worth a reply: too short, a response or fragment (answering those could start a
    /// loop between two servers), or an unknown version.
    Ignore,
    /// A request whose count and length disagree: answered with a format error.
    BadFormat(ReplyTo),
}

/// The request's header: what a response (or an error) echoes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplyTo {
    pub version: u8,
    pub opcode: u8,
    pub sequence: u16,
    pub association: u16,
}

fn be16(d: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([d[at], d[at + 1]])
}

/// Digest lengths a request's MAC may have: MD5 or AES-CMAC, SHA-1, whole SHA-2 digests.
const DIGEST_LENGTHS: [usize; 5] = [16, 20, 32, 48, 64];

impl<'a> Request<'a> {
    pub fn parse(d: &'a [u8]) -> Result<Request<'a>, Invalid> {
        if d.len() < HEADER_LEN || d[0] & 7 != MODE_CONTROL {
            return Err(Invalid::Ignore);
        }
        let version = (d[0] >> 3) & 7;
        if d[1] & (RESPONSE | ERROR | MORE) != 0 || be16(d, 8) != 0 || !(1..=4).contains(&version) {
            return Err(Invalid::Ignore);
        }
        let reply_to = ReplyTo {
            version,
            opcode: d[1] & OP_MASK,
            sequence: be16(d, 2),
            association: be16(d, 6),
        };
        let count = be16(d, 10) as usize;
        let end = HEADER_LEN + count;
        if count > MAX_DATA || end > d.len() || d.len() % 4 != 0 {
            return Err(Invalid::BadFormat(reply_to));
        }
        // ntpq pads the data to 8 bytes before the MAC; anything else after the data is padding.
        let mac_at = end.next_multiple_of(8);
        let mac = d
            .len()
            .checked_sub(mac_at + 4)
            .filter(|n| DIGEST_LENGTHS.contains(n))
            .map(|_| Mac {
                key_id: u32::from_be_bytes([
                    d[mac_at],
                    d[mac_at + 1],
                    d[mac_at + 2],
                    d[mac_at + 3],
                ]),
                digest: &d[mac_at + 4..],
                signed_len: mac_at,
            });
        Ok(Request {
            to: reply_to,
            data: &d[HEADER_LEN..end],
            mac,
        })
    }

    /// The variable names a READVAR asks for (`name` or `name=value`, comma separated);
    /// `None` if the list is not text.
    pub fn variable_names(&self) -> Option<Vec<&'a str>> {
        let text = std::str::from_utf8(self.data).ok()?;
        Some(
            text.split(',')
                .map(|item| {
                    item.split('=')
                        .next()
                        .unwrap_or("")
                        .trim_matches([' ', '\r', '\n', '\0'])
                })
                .filter(|name| !name.is_empty())
                .collect(),
        )
    }
}

/// Writes one response fragment into `out` (at least `HEADER_LEN` + data rounded up to 4 long):
/// header, `data`, zero padding to 4 bytes. Returns its length; a MAC, if any, goes after the data
/// padded to 8 (`signed_len`).
pub fn write_fragment(
    out: &mut [u8],
    to: &ReplyTo,
    leap: u8,
    status: u16,
    offset: usize,
    data: &[u8],
    more: bool,
) -> usize {
    out[0] = (leap & 3) << 6 | (to.version & 7) << 3 | MODE_CONTROL;
    out[1] = RESPONSE | if more { MORE } else { 0 } | (to.opcode & OP_MASK);
    out[2..4].copy_from_slice(&to.sequence.to_be_bytes());
    out[4..6].copy_from_slice(&status.to_be_bytes());
    out[6..8].copy_from_slice(&to.association.to_be_bytes());
    out[8..10].copy_from_slice(&(offset as u16).to_be_bytes());
    out[10..12].copy_from_slice(&(data.len() as u16).to_be_bytes());
    let end = HEADER_LEN + data.len();
    out[HEADER_LEN..end].copy_from_slice(data);
    let padded = end.next_multiple_of(4);
    out[end..padded].fill(0);
    padded
}

/// Writes an error response (12 bytes) into `out`.
pub fn write_error(out: &mut [u8], to: &ReplyTo, leap: u8, code: ErrorCode) -> usize {
    let len = write_fragment(out, to, leap, (code as u16) << 8, 0, &[], false);
    out[1] |= ERROR;
    len
}

/// Where a MAC goes after a fragment of `len` bytes: ntpd starts it on an 8-byte boundary.
pub fn signed_len(len: usize) -> usize {
    len.next_multiple_of(8)
}

/// Text variables as ntpd writes them: `name=value` items separated by `, `, a line break
/// before an item that would make the line longer than ntpq's 72 columns; items that would make
/// the text longer than its limit are left out.
pub struct Variables {
    text: String,
    line: usize,
    limit: usize,
}

const LINE: usize = 72;

impl Variables {
    pub fn new(limit: usize) -> Self {
        Variables {
            text: String::new(),
            line: 0,
            limit,
        }
    }

    pub fn push(&mut self, name: &str, value: std::fmt::Arguments) {
        let item = format!("{name}={value}");
        // Room for the separator and the final line break.
        if self.text.len() + item.len() + 5 > self.limit {
            return;
        }
        if !self.text.is_empty() {
            self.text.push(',');
            if self.line + item.len() + 2 >= LINE {
                self.text.push_str("\r\n");
                self.line = 0;
            } else {
                self.text.push(' ');
                self.line += 2;
            }
        }
        self.line += item.len();
        self.text.push_str(&item);
    }

    /// The text, ended with a line break as ntpd ends it.
    pub fn finish(mut self) -> Vec<u8> {
        if !self.text.is_empty() {
            self.text.push_str("\r\n");
        }
        self.text.into_bytes()
    }
}

/// How the selection judged a source: the select field of ntpd's peer status word, the tally
/// character ntpq prints before each peer in brackets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerSelect {
    /// (space) rejected: unreachable, or failed the sanity checks.
    Reject = 0,
    /// `x` falseticker: outside the intersection of the truechimers.
    Falsetick = 1,
    /// `.` excess: survived but beyond the number of sources combined.
    Excess = 2,
    /// `-` outlier: discarded by the clustering.
    Outlier = 3,
    /// `+` candidate: combined into the clock's offset.
    Candidate = 4,
    /// `#` backup: good, but more than enough sources are selected.
    Backup = 5,
    /// `*` the system peer.
    SysPeer = 6,
    /// `o` the system peer, disciplining through its PPS signal.
    PpsPeer = 7,
}

/// ntpd's peer status word (`ntp_control.h`, as in the RFC 1305 appendix B and ntpq's `as`):
/// bits 15..11 are configured, authentication enabled, authentic, reachable and broadcast;
/// bits 10..8 the select field; the low byte an event counter and code, left 0 because pitime
/// keeps no per-source event log. Every pitime source comes from the config file, so the
/// configured bit is always set. A reachable system peer gives `9600`.
pub fn peer_status_word(select: PeerSelect, reachable: bool) -> u16 {
    const CONFIGURED: u16 = 0x8000;
    const REACHABLE: u16 = 0x1000;
    let reach = if reachable { REACHABLE } else { 0 };
    CONFIGURED | reach | (select as u16) << 8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_words_follow_ntpd() {
        use PeerSelect::*;
        let words: Vec<u16> = [
            Reject, Falsetick, Excess, Outlier, Candidate, Backup, SysPeer, PpsPeer,
        ]
        .into_iter()
        .map(|select| peer_status_word(select, true))
        .collect();
        assert_eq!(
            words,
            [0x9000, 0x9100, 0x9200, 0x9300, 0x9400, 0x9500, 0x9600, 0x9700]
        );
        assert_eq!(peer_status_word(Reject, false), 0x8000);
        assert_eq!(peer_status_word(Candidate, false), 0x8400);
    }

    fn request(opcode: u8, association: u16, data: &[u8]) -> Vec<u8> {
        let mut p = vec![2 << 3 | MODE_CONTROL, opcode, 0, 7, 0, 0];
        p.extend_from_slice(&association.to_be_bytes());
        p.extend_from_slice(&[0, 0]);
        p.extend_from_slice(&(data.len() as u16).to_be_bytes());
        p.extend_from_slice(data);
        p.resize(p.len().next_multiple_of(4), 0);
        p
    }

    #[test]
    fn requests_are_parsed_with_their_variable_names() {
        let p = request(OP_READVAR, 0, b"offset,sys_jitter, stratum=1");
        let r = Request::parse(&p).unwrap();
        assert_eq!(
            (r.to.version, r.to.opcode, r.to.sequence, r.to.association),
            (2, 2, 7, 0)
        );
        assert_eq!(
            r.variable_names().unwrap(),
            ["offset", "sys_jitter", "stratum"]
        );
        assert_eq!(r.mac, None);
    }

    #[test]
    fn a_mac_after_the_data_padded_to_8_is_found() {
        let mut p = request(OP_READSTAT, 0, b"");
        p.resize(16, 0);
        p.extend_from_slice(&5u32.to_be_bytes());
        p.extend_from_slice(&[0xaa; 20]);
        let mac = Request::parse(&p).unwrap().mac.unwrap();
        assert_eq!((mac.key_id, mac.digest.len(), mac.signed_len), (5, 20, 16));
    }

    #[test]
    fn responses_fragments_and_lying_counts_are_refused() {
        let good = request(OP_READSTAT, 0, b"");
        for (what, change) in [
            ("response", [1usize, 0x80]),
            ("error", [1, 0x40]),
            ("more", [1, 0x20]),
            ("offset", [9, 4]),
            ("version 0", [0, MODE_CONTROL as usize]),
            ("version 5", [0, (5 << 3) | MODE_CONTROL as usize]),
        ] {
            let mut p = good.clone();
            p[change[0]] |= change[1] as u8;
            if what.starts_with("version") {
                p[0] = change[1] as u8;
            }
            assert_eq!(Request::parse(&p), Err(Invalid::Ignore), "{what}");
        }
        assert_eq!(Request::parse(&good[..11]), Err(Invalid::Ignore));
        for count in [4u16, 469, 0xffff] {
            let mut p = good.clone();
            p[10..12].copy_from_slice(&count.to_be_bytes());
            assert!(
                matches!(Request::parse(&p), Err(Invalid::BadFormat(_))),
                "{count}"
            );
        }
        let mut unaligned = good.clone();
        unaligned.push(0);
        assert!(matches!(
            Request::parse(&unaligned),
            Err(Invalid::BadFormat(_))
        ));
    }

    #[test]
    fn fragments_carry_offset_more_bit_and_padding() {
        let to = Request::parse(&request(OP_READVAR, 3, b"")).unwrap().to;
        let mut out = [0xffu8; MAX_FRAGMENT];
        let len = write_fragment(&mut out, &to, 1, 0x1234, 468, b"abcde", true);
        assert_eq!(len, 20);
        assert_eq!(
            out[..12],
            [0x56, 0xa2, 0, 7, 0x12, 0x34, 0, 3, 0x01, 0xd4, 0, 5]
        );
        assert_eq!(&out[12..20], b"abcde\0\0\0");
        let len = write_error(&mut out, &to, 3, ErrorCode::BadAssociation);
        assert_eq!(out[..len], [0xd6, 0xc2, 0, 7, 4, 0, 0, 3, 0, 0, 0, 0]);
    }

    #[test]
    fn variables_are_written_as_ntpd_writes_them() {
        let mut v = Variables::new(200);
        v.push("stratum", format_args!("{}", 1));
        v.push("refid", format_args!("PPS"));
        for _ in 0..20 {
            v.push("offset", format_args!("{:.6}", -0.000123));
        }
        let text = String::from_utf8(v.finish()).unwrap();
        assert!(
            text.starts_with("stratum=1, refid=PPS, offset=-0.000123, "),
            "{text}"
        );
        assert!(text.ends_with("\r\n"));
        assert!(text.lines().all(|l| l.len() < LINE), "{text}");
        assert!(text.len() <= 200 && text.len() > 150, "{}", text.len());
    }
}
