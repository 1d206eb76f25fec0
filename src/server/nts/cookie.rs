//! Cookies: the client's session keys, encrypted under one of the server's master keys, so the
//! server keeps no state per client. A cookie is the master key's id (4 bytes), a nonce (12),
//! and AES-128-GCM-SIV (RFC 8452) over the algorithm id (2), two zero bytes and both session
//! keys, with the key id as associated data. The GCM-SIV key is derived from the master key
//! once, when the keys are loaded, so a request pays no key schedule for its cookie. Master
//! keys are rotated; cookies from the kept ones still open, so a client's cookies outlive a
//! rotation and a restart, including those from before 2026-12-02, which used AES-SIV-CMAC-256
//! with a 16-byte nonce (4 bytes longer, which is how they are told apart).

use aes_gcm_siv::aead::{AeadInPlace, KeyInit};
use aes_gcm_siv::Aes128GcmSiv;
use sha2::{Digest, Sha256};

use crate::ntp::nts::aead::{Algorithm, SessionKeys, TAG_LEN};

pub const MASTER_KEY_LEN: usize = 32;
pub const NONCE_LEN: usize = 12;
const HEAD_LEN: usize = 4 + NONCE_LEN;
/// The cookies sealed before GCM-SIV: AES-SIV-CMAC-256 under the master key itself, a 16-byte
/// nonce, the tag before the ciphertext.
const LEGACY_NONCE_LEN: usize = 16;
const LEGACY: Algorithm = Algorithm::AesSivCmac256;
/// Separates the GCM-SIV key from every other use of the master key.
const DERIVE_LABEL: &[u8] = b"pitime NTS cookie AES-128-GCM-SIV";

/// The length of a cookie for a session of `algorithm`: a multiple of four, so it fills its
/// extension field exactly.
pub fn cookie_len(algorithm: Algorithm) -> usize {
    HEAD_LEN + TAG_LEN + 4 + 2 * algorithm.key_len()
}

fn legacy_len(algorithm: Algorithm) -> usize {
    cookie_len(algorithm) + LEGACY_NONCE_LEN - NONCE_LEN
}

/// The longest cookie pitime opens (a legacy one).
pub const MAX_COOKIE_LEN: usize = 4 + LEGACY_NONCE_LEN + TAG_LEN + 4 + 2 * 32;

/// One master key.
#[derive(Clone, PartialEq, Eq)]
pub struct MasterKey {
    pub id: u32,
    /// When it was made, in Unix seconds: it encrypts new cookies for `rotation` seconds, and
    /// opens them until it is `retention` seconds old.
    pub created: u64,
    pub key: [u8; MASTER_KEY_LEN],
}

impl MasterKey {
    fn cipher(&self) -> Aes128GcmSiv {
        let derived = Sha256::new()
            .chain_update(DERIVE_LABEL)
            .chain_update(self.key)
            .finalize();
        Aes128GcmSiv::new_from_slice(&derived[..16]).expect("16 bytes is AES-128's key length")
    }
}

/// The master keys, oldest first, each with its ready cipher; the newest encrypts new cookies.
#[derive(Clone, Default)]
pub struct CookieKeys {
    keys: Vec<MasterKey>,
    ciphers: Vec<Aes128GcmSiv>,
}

impl PartialEq for CookieKeys {
    fn eq(&self, other: &CookieKeys) -> bool {
        self.keys == other.keys
    }
}

impl Eq for CookieKeys {}

impl std::fmt::Debug for CookieKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<(u32, u64)> = self.keys.iter().map(|k| (k.id, k.created)).collect();
        write!(f, "CookieKeys(ids and creation times {ids:?}, keys hidden)")
    }
}

/// When to make a new master key, and how long to keep the old ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rotation {
    pub interval: u64,
    pub retention: u64,
}

impl CookieKeys {
    /// Keys in any order; they are kept oldest first.
    pub fn new(mut keys: Vec<MasterKey>) -> CookieKeys {
        keys.sort_by_key(|k| k.created);
        CookieKeys::ordered(keys)
    }

    fn ordered(keys: Vec<MasterKey>) -> CookieKeys {
        let ciphers = keys.iter().map(MasterKey::cipher).collect();
        CookieKeys { keys, ciphers }
    }

    pub fn keys(&self) -> &[MasterKey] {
        &self.keys
    }

    pub fn newest(&self) -> Option<&MasterKey> {
        self.keys.last()
    }

    /// Encrypts `session` into a cookie at the start of `out` with the newest key and `nonce`;
    /// returns its length, or `None` with no key or too little room.
    pub fn seal(
        &self,
        session: &SessionKeys,
        nonce: &[u8; NONCE_LEN],
        out: &mut [u8],
    ) -> Option<usize> {
        let (key, cipher) = (self.keys.last()?, self.ciphers.last()?);
        let len = cookie_len(session.algorithm);
        let out = out.get_mut(..len)?;
        let (head, body) = out.split_at_mut(HEAD_LEN);
        head[..4].copy_from_slice(&key.id.to_be_bytes());
        head[4..].copy_from_slice(nonce);
        let n = session.algorithm.key_len();
        let (text, tag) = body.split_at_mut(4 + 2 * n);
        text[..2].copy_from_slice(&session.algorithm.id().to_be_bytes());
        text[2..4].fill(0);
        text[4..4 + n].copy_from_slice(session.c2s());
        text[4 + n..].copy_from_slice(session.s2c());
        let t = cipher
            .encrypt_in_place_detached(nonce.into(), &head[..4], text)
            .ok()?;
        tag.copy_from_slice(&t);
        Some(len)
    }

    /// The session keys in a cookie; `None` if its key is unknown (rotated out) or it does not
    /// decrypt.
    pub fn open(&self, cookie: &[u8]) -> Option<SessionKeys> {
        if cookie.len() < HEAD_LEN + TAG_LEN + 4 || cookie.len() > MAX_COOKIE_LEN {
            return None;
        }
        let id = u32::from_be_bytes(cookie[..4].try_into().ok()?);
        let i = self.keys.iter().rposition(|k| k.id == id)?;
        let mut body = [0u8; MAX_COOKIE_LEN];
        let body = &mut body[..cookie.len()];
        body.copy_from_slice(cookie);
        let (head, rest) = body.split_at_mut(4);
        let plain = if Algorithm::ALL
            .iter()
            .any(|&a| cookie.len() == legacy_len(a))
        {
            let (nonce, sealed) = rest.split_at_mut(LEGACY_NONCE_LEN);
            LEGACY.open(&self.keys[i].key, nonce, head, sealed).ok()?
        } else {
            let (nonce, sealed) = rest.split_at_mut(NONCE_LEN);
            let (text, tag) = sealed.split_at_mut(sealed.len() - TAG_LEN);
            self.ciphers[i]
                .decrypt_in_place_detached((&*nonce).into(), head, text, (&*tag).into())
                .ok()?;
            text
        };
        let algorithm = Algorithm::from_id(u16::from_be_bytes([plain[0], plain[1]]))?;
        let n = algorithm.key_len();
        if plain.len() != 4 + 2 * n {
            return None;
        }
        SessionKeys::new(algorithm, &plain[4..4 + n], &plain[4 + n..])
    }

    /// The keys after a rotation check at `now` (Unix seconds), or `None` if nothing changes:
    /// a new key (`fresh`, random) when the newest is `interval` old, and keys older than
    /// `retention` forgotten, though never the newest.
    pub fn rotated(
        &self,
        now: u64,
        rotation: Rotation,
        fresh: [u8; MASTER_KEY_LEN],
        fresh_id: u32,
    ) -> Option<CookieKeys> {
        let due = self
            .newest()
            .is_none_or(|k| now >= k.created.saturating_add(rotation.interval));
        let mut keys = self.keys.clone();
        if due {
            // Ids follow on, so a key id names one key for as long as the file is shared.
            let id = self.newest().map_or(fresh_id, |k| k.id.wrapping_add(1));
            keys.push(MasterKey {
                id,
                created: now,
                key: fresh,
            });
        }
        let newest = keys.len() - 1;
        let mut i = 0;
        keys.retain(|k| {
            i += 1;
            i - 1 == newest || now < k.created.saturating_add(rotation.retention)
        });
        (keys != self.keys).then(|| CookieKeys::ordered(keys))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: u64 = 86_400;
    const ROTATION: Rotation = Rotation {
        interval: DAY,
        retention: 7 * DAY,
    };

    fn session(algorithm: Algorithm) -> SessionKeys {
        let n = algorithm.key_len();
        SessionKeys::new(algorithm, &vec![1; n], &vec![2; n]).unwrap()
    }

    fn keys() -> CookieKeys {
        CookieKeys::default()
            .rotated(1_000, ROTATION, [5; 32], 77)
            .unwrap()
    }

    #[test]
    fn cookies_open_to_the_sessions_sealed_in_them() {
        let keys = keys();
        for algorithm in Algorithm::ALL {
            let mut cookie = [0u8; 200];
            let len = keys
                .seal(&session(algorithm), &[9; NONCE_LEN], &mut cookie)
                .unwrap();
            assert_eq!((len, len % 4), (cookie_len(algorithm), 0));
            assert_eq!(cookie[..4], 77u32.to_be_bytes());
            assert_eq!(keys.open(&cookie[..len]), Some(session(algorithm)));
            // Two cookies of one session do not look alike.
            let mut other = [0u8; 200];
            keys.seal(&session(algorithm), &[8; NONCE_LEN], &mut other);
            assert_ne!(cookie[HEAD_LEN..len], other[HEAD_LEN..len]);
            for i in 0..len {
                let mut bad = cookie;
                bad[i] ^= 0x10;
                assert_eq!(keys.open(&bad[..len]), None, "byte {i} flipped");
            }
            assert_eq!(keys.open(&cookie[..len - 1]), None);
        }
        assert_eq!(keys.open(&[]), None);
        assert_eq!(keys.open(&[0; 300]), None);
    }

    /// Cookies from Python's `cryptography` (AESGCMSIV and AESSIV), master key 00 01 .. 1f,
    /// key id 77, an AES-SIV-CMAC-256 session of keys 01.. and 02..: pitime seals the same
    /// bytes, and still opens the format it sealed before 2026-12-02.
    #[test]
    fn cookies_match_an_independent_implementation_in_both_formats() {
        use crate::ntp::mac::tests::hex;
        let key: [u8; 32] = std::array::from_fn(|i| i as u8);
        let keys = CookieKeys::new(vec![MasterKey {
            id: 77,
            created: 0,
            key,
        }]);
        let session = session(Algorithm::AesSivCmac256);
        let now = hex(
            "0000004d0909090909090909090909092292e884d425a6f8c8fb9cedf4642e1bddbc58183317e45450\
             c8ebfb74f24a4b621b89ae401643eb1ac3923f49191e15e59b87beb63f1cc4b025f2d720484ad7dc7b\
             66dca4a0ef9315c04e8a79236b5d35f2a5ed",
        );
        let mut cookie = [0u8; 200];
        let len = keys.seal(&session, &[9; NONCE_LEN], &mut cookie).unwrap();
        assert_eq!(cookie[..len], now[..]);
        assert_eq!(keys.open(&now), Some(session));
        let legacy = hex(
            "0000004d09090909090909090909090909090909fa3e744a37a515fc83946dfff44ea90030c4f77f98\
             d89878203b9e53cf3c2d7f5caf26d97d07723020dacb45171d0d4faaa7c240f88518fa96864e766c49\
             073db8890356e281331c9e8617a1d71f168b56e395e3",
        );
        assert_eq!(legacy.len(), legacy_len(Algorithm::AesSivCmac256));
        assert_eq!(keys.open(&legacy), Some(session));
        let mut forged = legacy.clone();
        forged[30] ^= 1;
        assert_eq!(keys.open(&forged), None);
    }

    #[test]
    fn rotation_adds_a_key_daily_and_forgets_after_a_week() {
        let mut keys = keys();
        let mut cookie = [0u8; 200];
        let len = keys
            .seal(
                &session(Algorithm::AesSivCmac256),
                &[9; NONCE_LEN],
                &mut cookie,
            )
            .unwrap();
        assert_eq!(keys.rotated(1_000 + DAY - 1, ROTATION, [6; 32], 0), None);
        for day in 1..=7 {
            keys = keys
                .rotated(1_000 + day * DAY, ROTATION, [day as u8; 32], 0)
                .unwrap();
            assert_eq!(keys.newest().unwrap().id, 77 + day as u32);
        }
        // The first key is forgotten on its seventh day, and its cookies with it.
        assert_eq!(keys.keys().len(), 7);
        assert_eq!(keys.open(&cookie[..len]), None);
        assert_eq!(keys.keys()[0].id, 78);
        // After a long stop, all old keys go at once but a fresh one is always there.
        let later = keys
            .rotated(1_000 + 100 * DAY, ROTATION, [1; 32], 0)
            .unwrap();
        assert_eq!(later.keys().len(), 1);
        assert_eq!(later.newest().unwrap().id, 85);
    }
}
