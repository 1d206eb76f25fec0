//! Cookies: the client's session keys, encrypted under one of the server's master keys, so the
//! server keeps no state per client. A cookie is the master key's id (4 bytes), a nonce (16),
//! and AES-SIV-CMAC-256 over the algorithm id (2), two zero bytes and both session keys, with
//! the key id as associated data. Master keys are rotated; cookies from the kept ones still
//! open, so a client's cookies outlive a rotation and a restart.

use crate::ntp::nts::aead::{Algorithm, SessionKeys, TAG_LEN};

const MASTER: Algorithm = Algorithm::AesSivCmac256;
pub const MASTER_KEY_LEN: usize = 32;
const NONCE_LEN: usize = 16;
const HEAD_LEN: usize = 4 + NONCE_LEN;

/// The length of a cookie for a session of `algorithm`: a multiple of four, so it fills its
/// extension field exactly.
pub fn cookie_len(algorithm: Algorithm) -> usize {
    HEAD_LEN + TAG_LEN + 4 + 2 * algorithm.key_len()
}

/// The longest cookie.
pub const MAX_COOKIE_LEN: usize = HEAD_LEN + TAG_LEN + 4 + 2 * 32;

/// One master key.
#[derive(Clone, PartialEq, Eq)]
pub struct MasterKey {
    pub id: u32,
    /// When it was made, in Unix seconds: it encrypts new cookies for `rotation` seconds, and
    /// opens them until it is `retention` seconds old.
    pub created: u64,
    pub key: [u8; MASTER_KEY_LEN],
}

/// The master keys, oldest first; the newest encrypts new cookies.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct CookieKeys {
    keys: Vec<MasterKey>,
}

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
        CookieKeys { keys }
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
        let key = self.newest()?;
        let len = cookie_len(session.algorithm);
        let out = out.get_mut(..len)?;
        let (head, body) = out.split_at_mut(HEAD_LEN);
        head[..4].copy_from_slice(&key.id.to_be_bytes());
        head[4..].copy_from_slice(nonce);
        let n = session.algorithm.key_len();
        body[..2].copy_from_slice(&session.algorithm.id().to_be_bytes());
        body[2..4].fill(0);
        body[4..4 + n].copy_from_slice(session.c2s());
        body[4 + n..4 + 2 * n].copy_from_slice(session.s2c());
        MASTER
            .seal(&key.key, nonce, &head[..4], body, 4 + 2 * n)
            .ok()?;
        Some(len)
    }

    /// The session keys in a cookie; `None` if its key is unknown (rotated out) or it does not
    /// decrypt.
    pub fn open(&self, cookie: &[u8]) -> Option<SessionKeys> {
        if cookie.len() < HEAD_LEN + TAG_LEN + 4 || cookie.len() > MAX_COOKIE_LEN {
            return None;
        }
        let id = u32::from_be_bytes(cookie[..4].try_into().ok()?);
        let key = self.keys.iter().rev().find(|k| k.id == id)?;
        let mut body = [0u8; MAX_COOKIE_LEN];
        let body = &mut body[..cookie.len() - HEAD_LEN];
        body.copy_from_slice(&cookie[HEAD_LEN..]);
        let plain = MASTER
            .open(&key.key, &cookie[4..HEAD_LEN], &cookie[..4], body)
            .ok()?;
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
        (keys != self.keys).then_some(CookieKeys { keys })
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
                .seal(&session(algorithm), &[9; 16], &mut cookie)
                .unwrap();
            assert_eq!((len, len % 4), (cookie_len(algorithm), 0));
            assert_eq!(cookie[..4], 77u32.to_be_bytes());
            assert_eq!(keys.open(&cookie[..len]), Some(session(algorithm)));
            // Two cookies of one session do not look alike.
            let mut other = [0u8; 200];
            keys.seal(&session(algorithm), &[8; 16], &mut other);
            assert_ne!(cookie[20..len], other[20..len]);
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

    #[test]
    fn rotation_adds_a_key_daily_and_forgets_after_a_week() {
        let mut keys = keys();
        let mut cookie = [0u8; 200];
        let len = keys
            .seal(&session(Algorithm::AesSivCmac256), &[9; 16], &mut cookie)
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
