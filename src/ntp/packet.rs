//! NTP packet codec (RFC 5905 header, RFC 7822 extension fields and MAC trailer). Pure.

use crate::time::{Leap, NtpShort, NtpTimestamp};

pub const HEADER_LEN: usize = 48;
/// The longest reply: an NTS reply with its unique identifier and up to eight fresh cookies
/// (a MAC reply is at most a header and a 64-byte digest, SHA-512 in NTPv3).
pub const MAX_REPLY_LEN: usize = 1200;
/// The longest request considered; anything longer is dropped as oversized.
pub const MAX_REQUEST_LEN: usize = 1500;
/// Key identifier plus an MD5/AES-CMAC (16 bytes) or SHA1/truncated SHA-2 (20 bytes) digest.
const MAC_LENGTHS: [usize; 2] = [4 + 16, 4 + 20];
/// NTPv3 has no extension fields, so whole SHA-2 digests (32, 48, 64 bytes) fit too; in NTPv4
/// only where they cannot be read as an extension field.
const V3_MAC_LENGTHS: [usize; 5] = [4 + 16, 4 + 20, 4 + 32, 4 + 48, 4 + 64];
const MIN_EXTENSION_LEN: usize = 16;

pub const MODE_CLIENT: u8 = 3;
pub const MODE_SERVER: u8 = 4;

/// The fixed 48-byte NTP header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub leap: Leap,
    pub version: u8,
    pub mode: u8,
    pub stratum: u8,
    pub poll: i8,
    pub precision: i8,
    pub root_delay: NtpShort,
    pub root_dispersion: NtpShort,
    pub refid: [u8; 4],
    pub reference: NtpTimestamp,
    pub origin: NtpTimestamp,
    pub receive: NtpTimestamp,
    pub transmit: NtpTimestamp,
}

fn be32(d: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([d[at], d[at + 1], d[at + 2], d[at + 3]])
}

fn ts(d: &[u8], at: usize) -> NtpTimestamp {
    NtpTimestamp((be32(d, at) as u64) << 32 | be32(d, at + 4) as u64)
}

impl Header {
    /// A client's request (mode 3, version 4) that says nothing about the client but its poll
    /// interval: every other field is zero, and `transmit` is the origin cookie the reply must
    /// echo.
    pub fn client_request(poll: i8, transmit: NtpTimestamp) -> Header {
        Header {
            leap: Leap::None,
            version: 4,
            mode: MODE_CLIENT,
            stratum: 0,
            poll,
            precision: 0,
            root_delay: NtpShort(0),
            root_dispersion: NtpShort(0),
            refid: [0; 4],
            reference: NtpTimestamp::ZERO,
            origin: NtpTimestamp::ZERO,
            receive: NtpTimestamp::ZERO,
            transmit,
        }
    }

    /// Decodes the header at the start of `data`; `None` if shorter than 48 bytes.
    pub fn parse(data: &[u8]) -> Option<Header> {
        if data.len() < HEADER_LEN {
            return None;
        }
        let leap = match data[0] >> 6 {
            0 => Leap::None,
            1 => Leap::Insert,
            2 => Leap::Delete,
            _ => Leap::Unsynchronised,
        };
        Some(Header {
            leap,
            version: (data[0] >> 3) & 7,
            mode: data[0] & 7,
            stratum: data[1],
            poll: data[2] as i8,
            precision: data[3] as i8,
            root_delay: NtpShort(be32(data, 4)),
            root_dispersion: NtpShort(be32(data, 8)),
            refid: [data[12], data[13], data[14], data[15]],
            reference: ts(data, 16),
            origin: ts(data, 24),
            receive: ts(data, 32),
            transmit: ts(data, 40),
        })
    }

    pub fn write(&self, out: &mut [u8; HEADER_LEN]) {
        out[0] = (self.leap as u8) << 6 | (self.version & 7) << 3 | (self.mode & 7);
        out[1] = self.stratum;
        out[2] = self.poll as u8;
        out[3] = self.precision as u8;
        out[4..8].copy_from_slice(&self.root_delay.0.to_be_bytes());
        out[8..12].copy_from_slice(&self.root_dispersion.0.to_be_bytes());
        out[12..16].copy_from_slice(&self.refid);
        out[16..24].copy_from_slice(&self.reference.to_be_bytes());
        out[24..32].copy_from_slice(&self.origin.to_be_bytes());
        out[32..40].copy_from_slice(&self.receive.to_be_bytes());
        out[40..48].copy_from_slice(&self.transmit.to_be_bytes());
    }
}

/// Overwrites the transmit timestamp of an encoded packet (done as late as possible).
pub fn set_transmit(packet: &mut [u8], transmit: NtpTimestamp) {
    packet[40..48].copy_from_slice(&transmit.to_be_bytes());
}

/// What follows the header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Trailer<'a> {
    /// Number of well-formed extension fields (none are understood yet; they are skipped).
    pub extension_fields: usize,
    pub mac: Option<Mac<'a>>,
}

/// A message authentication code: the key id and digest, and how many leading bytes it covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mac<'a> {
    pub key_id: u32,
    pub digest: &'a [u8],
    pub signed_len: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TrailerError {
    #[error("extension field shorter than 16 bytes, not a multiple of 4 or past the end")]
    BadExtensionField,
    #[error("trailing bytes that are neither an extension field nor a MAC")]
    BadLength,
    #[error("extension fields in a packet older than NTPv4")]
    ExtensionBeforeV4,
}

/// Walks the extension fields and MAC after the header (RFC 7822: a 20 or 24 byte remainder is a
/// MAC, anything longer starts an extension field).
pub fn parse_trailer(packet: &[u8], version: u8) -> Result<Trailer<'_>, TrailerError> {
    let mut pos = HEADER_LEN;
    let mut extension_fields = 0;
    let mac_at = |pos: usize, extension_fields| {
        let mac = Mac {
            key_id: be32(packet, pos),
            digest: &packet[pos + 4..],
            signed_len: pos,
        };
        Ok(Trailer {
            extension_fields,
            mac: Some(mac),
        })
    };
    loop {
        let rest = packet.len().saturating_sub(pos);
        if rest == 0 {
            return Ok(Trailer {
                extension_fields,
                mac: None,
            });
        }
        let mac_lengths: &[usize] = if version < 4 {
            &V3_MAC_LENGTHS
        } else {
            &MAC_LENGTHS
        };
        if mac_lengths.contains(&rest) {
            return mac_at(pos, extension_fields);
        }
        if rest < MIN_EXTENSION_LEN {
            return Err(TrailerError::BadLength);
        }
        if version < 4 {
            return Err(TrailerError::ExtensionBeforeV4);
        }
        let len = u16::from_be_bytes([packet[pos + 2], packet[pos + 3]]) as usize;
        if len < MIN_EXTENSION_LEN || len % 4 != 0 || len > rest {
            // Not an extension field: a whole SHA-2 digest, as NTPsec's ntpdig sends it even in
            // NTPv4 (chrony and ntpd truncate it to 20 bytes). Unambiguous, so accepted.
            if V3_MAC_LENGTHS.contains(&rest) {
                return mac_at(pos, extension_fields);
            }
            return Err(TrailerError::BadExtensionField);
        }
        pos += len;
        extension_fields += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Header {
        Header {
            leap: Leap::Insert,
            version: 4,
            mode: MODE_SERVER,
            stratum: 1,
            poll: -6,
            precision: -23,
            root_delay: NtpShort(0x0001_0000),
            root_dispersion: NtpShort(0x20),
            refid: *b"PPS\0",
            reference: NtpTimestamp(1),
            origin: NtpTimestamp(2),
            receive: NtpTimestamp(3),
            transmit: NtpTimestamp(u64::MAX),
        }
    }

    #[test]
    fn header_round_trips() {
        let mut buf = [0u8; HEADER_LEN];
        header().write(&mut buf);
        assert_eq!(buf[0], 0b01_100_100);
        assert_eq!(Header::parse(&buf), Some(header()));
        assert_eq!(Header::parse(&buf[..47]), None);
    }

    fn with_tail(tail: &[u8]) -> Vec<u8> {
        let mut p = vec![0u8; HEADER_LEN];
        p.extend_from_slice(tail);
        p
    }

    #[test]
    fn bare_header_has_no_trailer() {
        let p = with_tail(&[]);
        let t = parse_trailer(&p, 4).unwrap();
        assert_eq!(
            t,
            Trailer {
                extension_fields: 0,
                mac: None
            }
        );
    }

    #[test]
    fn mac_lengths_are_recognised() {
        let mut tail = vec![0, 0, 0, 7];
        tail.extend_from_slice(&[0xaa; 16]);
        let p = with_tail(&tail);
        let mac = parse_trailer(&p, 3).unwrap().mac.unwrap();
        assert_eq!((mac.key_id, mac.digest.len(), mac.signed_len), (7, 16, 48));
        tail.extend_from_slice(&[0xbb; 4]);
        let p = with_tail(&tail);
        let mac = parse_trailer(&p, 4).unwrap().mac.unwrap();
        assert_eq!(mac.digest.len(), 20);
    }

    #[test]
    fn ntpv3_carries_whole_sha2_digests() {
        for digest in [32, 48, 64] {
            let mut tail = vec![0, 0, 0, 5];
            tail.extend(std::iter::repeat_n(0xcc, digest));
            let p = with_tail(&tail);
            assert_eq!(
                parse_trailer(&p, 3).unwrap().mac.unwrap().digest.len(),
                digest
            );
            // In NTPv4 too, since they cannot be an extension field (ntpdig sends these)...
            assert_eq!(
                parse_trailer(&p, 4).unwrap().mac.unwrap().digest.len(),
                digest
            );
            // ...but a key id that reads as an extension field's length makes them one.
            tail[..4].copy_from_slice(&[0, 0, 0, 4 + digest as u8]);
            let p = with_tail(&tail);
            assert!(parse_trailer(&p, 4).unwrap().mac.is_none());
        }
    }

    #[test]
    fn extension_field_then_mac() {
        let mut tail = vec![0x01, 0x04, 0, 28];
        tail.extend_from_slice(&[0; 24]);
        tail.extend_from_slice(&[0, 0, 0, 9]);
        tail.extend_from_slice(&[1; 16]);
        let p = with_tail(&tail);
        let t = parse_trailer(&p, 4).unwrap();
        assert_eq!(t.extension_fields, 1);
        assert_eq!(t.mac.unwrap().signed_len, 48 + 28);
    }

    #[test]
    fn garbage_trailers_are_rejected() {
        assert_eq!(
            parse_trailer(&with_tail(&[1, 2, 3]), 4),
            Err(TrailerError::BadLength)
        );
        // Length field of 0, of 18 (not a multiple of 4) and past the end.
        for len in [0u8, 18, 200] {
            let mut tail = vec![0, 0, 0, len];
            tail.extend_from_slice(&[0; 28]);
            assert_eq!(
                parse_trailer(&with_tail(&tail), 4),
                Err(TrailerError::BadExtensionField)
            );
        }
        let mut tail = vec![0, 1, 0, 32];
        tail.extend_from_slice(&[0; 28]);
        assert_eq!(
            parse_trailer(&with_tail(&tail), 3),
            Err(TrailerError::ExtensionBeforeV4)
        );
    }
}
