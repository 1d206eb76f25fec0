//! Symmetric-key MACs for NTP: the RFC 5905 digest MAC (hash of key then packet) and the
//! RFC 8573 AES-CMAC. In NTPv4 a MAC longer than 24 bytes would read as an extension field
//! (RFC 7822), so SHA-2 digests are truncated to 20 bytes there, as chrony does; chrony sends
//! requests with longer digests as NTPv3, where the whole digest is carried. NTPsec's ntpdig
//! sends whole digests in NTPv4 too: a reply carries a digest as long as the request's.

use aes::{Aes128, Aes256};
use cmac::Cmac;
use md5::Md5;
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha384, Sha512};

/// Longest digest carried in a packet (SHA-512 in NTPv3).
pub const MAX_DIGEST_LEN: usize = 64;
/// Longest digest in an NTPv4 packet.
const MAX_V4_DIGEST_LEN: usize = 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Algorithm {
    Md5,
    Sha1,
    Sha256,
    Sha384,
    Sha512,
    Aes128Cmac,
    Aes256Cmac,
}

impl Algorithm {
    /// Parses the type column of an ntpd/chrony keys file (case-insensitive).
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name.to_ascii_uppercase().as_str() {
            "M" | "MD5" => Algorithm::Md5,
            "SHA1" | "SHA-1" => Algorithm::Sha1,
            "SHA256" | "SHA-256" => Algorithm::Sha256,
            "SHA384" | "SHA-384" => Algorithm::Sha384,
            "SHA512" | "SHA-512" => Algorithm::Sha512,
            "AES" | "AES128" | "AES-128" | "AES128CMAC" | "AES-128-CMAC" => Algorithm::Aes128Cmac,
            "AES256" | "AES-256" | "AES256CMAC" | "AES-256-CMAC" => Algorithm::Aes256Cmac,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Sha1 => "SHA1",
            Algorithm::Sha256 => "SHA256",
            Algorithm::Sha384 => "SHA384",
            Algorithm::Sha512 => "SHA512",
            Algorithm::Aes128Cmac => "AES128",
            Algorithm::Aes256Cmac => "AES256",
        }
    }

    /// Length of the whole digest.
    fn full_len(self) -> usize {
        match self {
            Algorithm::Md5 | Algorithm::Aes128Cmac | Algorithm::Aes256Cmac => 16,
            Algorithm::Sha1 => 20,
            Algorithm::Sha256 => 32,
            Algorithm::Sha384 => 48,
            Algorithm::Sha512 => 64,
        }
    }

    /// Length of the digest pitime sends in a packet of this NTP version.
    pub fn digest_len(self, version: u8) -> usize {
        if version >= 4 {
            self.full_len().min(MAX_V4_DIGEST_LEN)
        } else {
            self.full_len()
        }
    }

    /// The exact key length a cipher needs; hash MACs take any non-empty key.
    pub fn required_key_len(self) -> Option<usize> {
        match self {
            Algorithm::Aes128Cmac => Some(16),
            Algorithm::Aes256Cmac => Some(32),
            _ => None,
        }
    }

    /// Computes the MAC of `data` with `key` into `out`, truncated to `len` bytes (at most the
    /// whole digest), returning its length. The key length must already have been checked
    /// against `required_key_len`.
    pub fn compute(
        self,
        key: &[u8],
        len: usize,
        data: &[u8],
        out: &mut [u8; MAX_DIGEST_LEN],
    ) -> usize {
        fn hash<D: Digest>(key: &[u8], data: &[u8], out: &mut [u8]) {
            let mut h = D::new();
            h.update(key);
            h.update(data);
            let full = h.finalize();
            out.copy_from_slice(&full[..out.len()]);
        }
        fn cmac<C: cmac::Mac + cmac::digest::KeyInit>(key: &[u8], data: &[u8], out: &mut [u8]) {
            let mut m = <C as cmac::digest::KeyInit>::new_from_slice(key)
                .expect("key length checked at load");
            m.update(data);
            out.copy_from_slice(&m.finalize().into_bytes()[..out.len()]);
        }
        let n = len.min(self.full_len());
        let out = &mut out[..n];
        match self {
            Algorithm::Md5 => hash::<Md5>(key, data, out),
            Algorithm::Sha1 => hash::<Sha1>(key, data, out),
            Algorithm::Sha256 => hash::<Sha256>(key, data, out),
            Algorithm::Sha384 => hash::<Sha384>(key, data, out),
            Algorithm::Sha512 => hash::<Sha512>(key, data, out),
            Algorithm::Aes128Cmac => cmac::<Cmac<Aes128>>(key, data, out),
            Algorithm::Aes256Cmac => cmac::<Cmac<Aes256>>(key, data, out),
        }
        n
    }

    /// Checks a received digest, as pitime would send it in a packet of `version` or whole, in
    /// constant time.
    pub fn verify(self, key: &[u8], version: u8, data: &[u8], digest: &[u8]) -> bool {
        let n = digest.len();
        if n != self.digest_len(version) && n != self.full_len() {
            return false;
        }
        let mut buf = [0u8; MAX_DIGEST_LEN];
        self.compute(key, n, data, &mut buf);
        buf[..n]
            .iter()
            .zip(digest)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn aes_cmac_matches_rfc4493_vector() {
        // RFC 4493 example 2: 16-byte message.
        let key = hex("2b7e151628aed2a6abf7158809cf4f3c");
        let msg = hex("6bc1bee22e409f96e93d7e117393172a");
        let mut out = [0u8; MAX_DIGEST_LEN];
        let n = Algorithm::Aes128Cmac.compute(&key, 16, &msg, &mut out);
        assert_eq!(out[..n], hex("070a16b46b4d4144f79bdd9dd04a287c")[..]);
    }

    #[test]
    fn md5_is_hash_of_key_then_data() {
        let mut out = [0u8; MAX_DIGEST_LEN];
        let n = Algorithm::Md5.compute(b"a", 16, b"bc", &mut out);
        // md5("abc")
        assert_eq!(out[..n], hex("900150983cd24fb0d6963f7d28e17f72")[..]);
    }

    #[test]
    fn sha256_is_truncated_to_20_bytes_in_ntpv4_only() {
        let mut out = [0u8; MAX_DIGEST_LEN];
        let (v4, v3) = (
            Algorithm::Sha256.digest_len(4),
            Algorithm::Sha256.digest_len(3),
        );
        assert_eq!(Algorithm::Sha256.compute(b"", v4, b"abc", &mut out), 20);
        assert_eq!(out[..4], hex("ba7816bf")[..]);
        assert_eq!(Algorithm::Sha256.compute(b"", v3, b"abc", &mut out), 32);
        assert_eq!(out[28..32], hex("f20015ad")[..]);
        assert_eq!(Algorithm::Sha512.digest_len(3), 64);
        // A whole digest in NTPv4 (ntpdig) is checked too.
        assert!(Algorithm::Sha256.verify(b"", 4, b"abc", &out[..32]));
        assert!(!Algorithm::Sha256.verify(b"", 4, b"abc", &out[..24]));
    }

    #[test]
    fn verify_rejects_wrong_digest_and_length() {
        let mut out = [0u8; MAX_DIGEST_LEN];
        let n = Algorithm::Sha1.compute(b"key", 20, b"data", &mut out);
        assert!(Algorithm::Sha1.verify(b"key", 4, b"data", &out[..n]));
        assert!(!Algorithm::Sha1.verify(b"key", 4, b"datA", &out[..n]));
        assert!(!Algorithm::Sha1.verify(b"key", 4, b"data", &out[..n - 1]));
    }
}
