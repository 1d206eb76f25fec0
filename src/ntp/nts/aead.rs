//! The AEAD algorithms of NTS: AES-SIV-CMAC-256 (RFC 5297, id 15, mandatory) and
//! AES-128-GCM-SIV (RFC 8452, id 30, shorter keys). Both take the plaintext at the start of a
//! buffer and leave the ciphertext in its place, in the byte order NTS puts on the wire.

use aes_gcm_siv::aead::{AeadInPlace, KeyInit};
use aes_gcm_siv::Aes128GcmSiv;
use aes_siv::siv::Aes128Siv;

/// Both algorithms add a 16-byte tag.
pub const TAG_LEN: usize = 16;
/// The longest key (AES-SIV-CMAC-256's two AES-128 keys).
pub const MAX_KEY_LEN: usize = 32;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    AesSivCmac256,
    Aes128GcmSiv,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AeadError {
    #[error("key, nonce or buffer of the wrong length")]
    BadLength,
    #[error("authentication failed")]
    Forged,
}

impl Algorithm {
    /// Every algorithm pitime speaks.
    pub const ALL: [Algorithm; 2] = [Algorithm::AesSivCmac256, Algorithm::Aes128GcmSiv];

    /// The IANA AEAD id.
    pub fn id(self) -> u16 {
        match self {
            Algorithm::AesSivCmac256 => 15,
            Algorithm::Aes128GcmSiv => 30,
        }
    }

    pub fn from_id(id: u16) -> Option<Algorithm> {
        Algorithm::ALL.into_iter().find(|a| a.id() == id)
    }

    pub fn key_len(self) -> usize {
        match self {
            Algorithm::AesSivCmac256 => 32,
            Algorithm::Aes128GcmSiv => 16,
        }
    }

    /// The nonce length pitime sends: 16 for SIV (any length is allowed, 16 needs no padding
    /// in an authenticator), GCM-SIV's fixed 12.
    pub fn nonce_len(self) -> usize {
        match self {
            Algorithm::AesSivCmac256 => 16,
            Algorithm::Aes128GcmSiv => 12,
        }
    }

    /// Encrypts `buf[..len]` in place into `buf[..len + TAG_LEN]`, authenticating `ad` too:
    /// SIV puts its tag first (RFC 5297), GCM-SIV last (RFC 8452).
    pub fn seal(
        self,
        key: &[u8],
        nonce: &[u8],
        ad: &[u8],
        buf: &mut [u8],
        len: usize,
    ) -> Result<usize, AeadError> {
        let out_len = len + TAG_LEN;
        if buf.len() < out_len || key.len() != self.key_len() {
            return Err(AeadError::BadLength);
        }
        match self {
            Algorithm::AesSivCmac256 => {
                let mut siv = Aes128Siv::new_from_slice(key).map_err(|_| AeadError::BadLength)?;
                buf.copy_within(..len, TAG_LEN);
                let (tag, text) = buf[..out_len].split_at_mut(TAG_LEN);
                let t = siv
                    .encrypt_in_place_detached([ad, nonce], text)
                    .map_err(|_| AeadError::BadLength)?;
                tag.copy_from_slice(&t);
            }
            Algorithm::Aes128GcmSiv => {
                let cipher = gcm(key, nonce)?;
                let (text, tag) = buf[..out_len].split_at_mut(len);
                let t = cipher
                    .encrypt_in_place_detached(nonce.into(), ad, text)
                    .map_err(|_| AeadError::BadLength)?;
                tag.copy_from_slice(&t);
            }
        }
        Ok(out_len)
    }

    /// Decrypts `buf` (ciphertext with its tag) in place; returns the plaintext within it.
    pub fn open<'a>(
        self,
        key: &[u8],
        nonce: &[u8],
        ad: &[u8],
        buf: &'a mut [u8],
    ) -> Result<&'a [u8], AeadError> {
        if buf.len() < TAG_LEN || key.len() != self.key_len() {
            return Err(AeadError::BadLength);
        }
        match self {
            Algorithm::AesSivCmac256 => {
                let mut siv = Aes128Siv::new_from_slice(key).map_err(|_| AeadError::BadLength)?;
                let (tag, text) = buf.split_at_mut(TAG_LEN);
                let tag = aes_siv::Tag::clone_from_slice(tag);
                siv.decrypt_in_place_detached([ad, nonce], text, &tag)
                    .map_err(|_| AeadError::Forged)?;
                Ok(text)
            }
            Algorithm::Aes128GcmSiv => {
                let cipher = gcm(key, nonce)?;
                let (text, tag) = buf.split_at_mut(buf.len() - TAG_LEN);
                let tag = aes_gcm_siv::Tag::clone_from_slice(tag);
                cipher
                    .decrypt_in_place_detached(nonce.into(), ad, text, &tag)
                    .map_err(|_| AeadError::Forged)?;
                Ok(text)
            }
        }
    }
}

/// The two keys of one NTS association, as exported from its TLS session: client-to-server
/// (requests) and server-to-client (replies).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SessionKeys {
    pub algorithm: Algorithm,
    c2s: [u8; MAX_KEY_LEN],
    s2c: [u8; MAX_KEY_LEN],
}

impl SessionKeys {
    /// `None` if a key is not the algorithm's length.
    pub fn new(algorithm: Algorithm, c2s: &[u8], s2c: &[u8]) -> Option<SessionKeys> {
        let n = algorithm.key_len();
        if c2s.len() != n || s2c.len() != n {
            return None;
        }
        let mut keys = SessionKeys {
            algorithm,
            c2s: [0; MAX_KEY_LEN],
            s2c: [0; MAX_KEY_LEN],
        };
        keys.c2s[..n].copy_from_slice(c2s);
        keys.s2c[..n].copy_from_slice(s2c);
        Some(keys)
    }

    pub fn c2s(&self) -> &[u8] {
        &self.c2s[..self.algorithm.key_len()]
    }

    pub fn s2c(&self) -> &[u8] {
        &self.s2c[..self.algorithm.key_len()]
    }
}

impl std::fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SessionKeys({:?}, keys hidden)", self.algorithm)
    }
}

fn gcm(key: &[u8], nonce: &[u8]) -> Result<Aes128GcmSiv, AeadError> {
    if nonce.len() != 12 {
        return Err(AeadError::BadLength);
    }
    Aes128GcmSiv::new_from_slice(key).map_err(|_| AeadError::BadLength)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ntp::mac::tests::hex;

    #[test]
    fn aes_siv_matches_rfc5297_deterministic_vector() {
        // RFC 5297 appendix A.1: the same construction with no nonce.
        let key = hex("fffefdfcfbfaf9f8f7f6f5f4f3f2f1f0f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff");
        let ad = hex("101112131415161718191a1b1c1d1e1f2021222324252627");
        let mut text = hex("112233445566778899aabbccddee");
        let mut siv = Aes128Siv::new_from_slice(&key).unwrap();
        let tag = siv.encrypt_in_place_detached([&ad[..]], &mut text).unwrap();
        let mut out = tag.to_vec();
        out.extend_from_slice(&text);
        assert_eq!(
            out,
            hex("85632d07c6e8f37f950acd320a2ecc9340c02b9690c4dc04daef7f6afe5c")
        );
    }

    #[test]
    fn both_algorithms_round_trip_and_detect_tampering() {
        for alg in Algorithm::ALL {
            let key = vec![7u8; alg.key_len()];
            let nonce = vec![9u8; alg.nonce_len()];
            let mut buf = [0u8; 64];
            buf[..20].copy_from_slice(b"twenty bytes of text");
            let n = alg.seal(&key, &nonce, b"ad", &mut buf, 20).unwrap();
            assert_eq!(n, 36);
            assert_ne!(&buf[..20], b"twenty bytes of text");
            let mut copy = buf;
            assert_eq!(
                alg.open(&key, &nonce, b"ad", &mut copy[..n]).unwrap(),
                b"twenty bytes of text"
            );
            let mut copy = buf;
            assert_eq!(
                alg.open(&key, &nonce, b"da", &mut copy[..n]),
                Err(AeadError::Forged)
            );
            let mut copy = buf;
            copy[3] ^= 1;
            assert_eq!(
                alg.open(&key, &nonce, b"ad", &mut copy[..n]),
                Err(AeadError::Forged)
            );
            assert_eq!(
                alg.open(&key[1..], &nonce, b"ad", &mut buf[..n]),
                Err(AeadError::BadLength)
            );
            assert_eq!(Algorithm::from_id(alg.id()), Some(alg));
        }
        assert_eq!(Algorithm::from_id(16), None);
    }
}
