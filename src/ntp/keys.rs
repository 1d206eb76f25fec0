//! The symmetric keys file, in the format ntpd and chrony read: `ID TYPE KEY` per line, `#`
//! comments. KEY is ASCII, or hex with a `HEX:` prefix; like ntpd, an unprefixed key longer than
//! 20 characters made only of hex digits is hex. `ASCII:` forces ASCII.

use std::collections::HashMap;
use std::path::Path;

use super::mac::{Algorithm, MAX_DIGEST_LEN};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Key {
    pub algorithm: Algorithm,
    pub secret: Vec<u8>,
}

impl Key {
    /// Appends the MAC (key id, then digest) of the first `len` bytes of an NTP `packet`, which
    /// must have room for it; returns the signed length.
    pub fn sign(&self, key_id: u32, packet: &mut [u8], len: usize) -> usize {
        let version = (packet[0] >> 3) & 7;
        self.sign_with_digest(key_id, packet, len, self.algorithm.digest_len(version))
    }

    /// Signs with a digest of `digest_len` bytes: a reply's is as long as its request's.
    pub fn sign_with_digest(
        &self,
        key_id: u32,
        packet: &mut [u8],
        len: usize,
        digest_len: usize,
    ) -> usize {
        let mut digest = [0u8; MAX_DIGEST_LEN];
        let n = self
            .algorithm
            .compute(&self.secret, digest_len, &packet[..len], &mut digest);
        packet[len..len + 4].copy_from_slice(&key_id.to_be_bytes());
        packet[len + 4..len + 4 + n].copy_from_slice(&digest[..n]);
        len + 4 + n
    }
}

/// A keys file holds a few keys; anything larger is a mistake.
const MAX_KEYS_FILE: u64 = 1 << 20;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyStore {
    keys: HashMap<u32, Key>,
}

#[derive(Debug, thiserror::Error)]
pub enum KeysError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "{path} is readable by other users (mode {mode:03o}); run `chmod 640 {path}` (or 600)"
    )]
    Exposed { path: String, mode: u32 },
    #[error("{path}: refused as a keys file: {why}")]
    Unsafe { path: String, why: String },
    #[error("{path}:{line}: {message}")]
    Syntax {
        path: String,
        line: usize,
        message: String,
    },
}

impl KeyStore {
    pub fn get(&self, id: u32) -> Option<&Key> {
        self.keys.get(&id)
    }

    pub fn contains(&self, id: u32) -> bool {
        self.keys.contains_key(&id)
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Reads a keys file: a regular file (not a link, a FIFO or a device, which could block),
    /// owned by root or by this process's user, that nobody else can read, of at most
    /// `MAX_KEYS_FILE` bytes. Checked on the open descriptor, so the file cannot be swapped
    /// between the check and the read.
    pub fn load(path: &Path) -> Result<KeyStore, KeysError> {
        use std::io::Read;
        use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
        let shown = path.display().to_string();
        let io = |source| KeysError::Io {
            path: shown.clone(),
            source,
        };
        let unsafe_file = |why: String| KeysError::Unsafe {
            path: shown.clone(),
            why,
        };
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(path)
            .map_err(|e| match e.raw_os_error() {
                Some(libc::ELOOP) => unsafe_file("a symbolic link".into()),
                _ => io(e),
            })?;
        let meta = file.metadata().map_err(io)?;
        if !meta.is_file() {
            return Err(unsafe_file("not a regular file".into()));
        }
        // SAFETY: geteuid cannot fail and has no side effects.
        let me = unsafe { libc::geteuid() };
        if meta.uid() != 0 && meta.uid() != me {
            let why = format!("owned by uid {}, not root or this user", meta.uid());
            return Err(unsafe_file(why));
        }
        let mode = meta.mode() & 0o777;
        if mode & 0o007 != 0 {
            return Err(KeysError::Exposed { path: shown, mode });
        }
        if meta.len() > MAX_KEYS_FILE {
            let why = format!("{} bytes, more than {MAX_KEYS_FILE}", meta.len());
            return Err(unsafe_file(why));
        }
        let mut text = String::new();
        file.take(MAX_KEYS_FILE)
            .read_to_string(&mut text)
            .map_err(io)?;
        Self::parse(&text).map_err(|(line, message)| KeysError::Syntax {
            path: shown,
            line,
            message,
        })
    }

    /// Parses the file's text; an error carries the 1-based line number.
    pub fn parse(text: &str) -> Result<KeyStore, (usize, String)> {
        // A file read while it is being written ends mid-line, and a secret cut short is still
        // a valid secret (another one): refuse a last line without its newline.
        if !text.is_empty() && !text.ends_with('\n') {
            return Err((
                text.lines().count(),
                "the last line has no newline: the file may be half-written (end it with a \
                 newline)"
                    .into(),
            ));
        }
        let mut keys = HashMap::new();
        for (index, raw) in text.lines().enumerate() {
            let line = raw.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let err = |m: String| (index + 1, m);
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [id, kind, secret] = fields[..] else {
                return Err(err(format!(
                    "expected `ID TYPE KEY`, found {} fields",
                    fields.len()
                )));
            };
            let id: u32 = match id.parse() {
                Ok(id) if id > 0 => id,
                // Fields are not echoed: a misplaced secret must not reach the log.
                _ => {
                    return Err(err(
                        "the key id (first field) is not a number from 1 to 4294967295".into(),
                    ))
                }
            };
            let algorithm = Algorithm::from_name(kind).ok_or_else(|| {
                err("unknown key type (second field), expected MD5, SHA1, SHA256, SHA384, SHA512, AES128 or AES256".into())
            })?;
            let secret = decode_secret(secret).map_err(err)?;
            if let Some(required) = algorithm.required_key_len() {
                if secret.len() != required {
                    return Err(err(format!(
                        "{} key {id} must be {required} bytes, got {}",
                        algorithm.name(),
                        secret.len()
                    )));
                }
            }
            if keys.insert(id, Key { algorithm, secret }).is_some() {
                return Err(err(format!("key id {id} is defined twice")));
            }
        }
        Ok(KeyStore { keys })
    }
}

fn decode_secret(text: &str) -> Result<Vec<u8>, String> {
    let hex = if let Some(h) = text.strip_prefix("HEX:") {
        h
    } else if let Some(a) = text.strip_prefix("ASCII:") {
        return non_empty(a.as_bytes().to_vec());
    } else if text.len() > 20 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        text
    } else {
        return non_empty(text.as_bytes().to_vec());
    };
    if hex.len() % 2 != 0 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err("hex key must have an even number of hex digits".into());
    }
    let bytes = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap_or(0));
    non_empty(bytes.collect())
}

fn non_empty(secret: Vec<u8>) -> Result<Vec<u8>, String> {
    if secret.is_empty() {
        Err("empty key".into())
    } else {
        Ok(secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn parses_chrony_and_ntpd_forms() {
        let store = KeyStore::parse(
            "# comment\n\
             1 MD5 secret\n\
             2 SHA1 HEX:0102030405060708090a0b0c0d0e0f1011121314  # trailing\n\
             3 AES128 HEX:000102030405060708090a0b0c0d0e0f\n\
             4 M 0102030405060708090a0b0c0d0e0f1011121314\n\
             5 sha256 ASCII:0102030405060708090a0b\n",
        )
        .unwrap();
        assert_eq!(store.len(), 5);
        assert_eq!(store.get(1).unwrap().secret, b"secret");
        assert_eq!(store.get(2).unwrap().secret.len(), 20);
        assert_eq!(store.get(3).unwrap().algorithm, Algorithm::Aes128Cmac);
        assert_eq!(store.get(4).unwrap().secret[0], 1);
        assert_eq!(store.get(5).unwrap().secret.len(), 22);
    }

    #[test]
    fn errors_name_the_line() {
        for (text, line) in [
            ("1 MD5 a\n2 FOO b\n", 2),
            ("0 MD5 a\n", 1),
            ("\n\n1 AES128 HEX:00\n", 3),
            ("1 MD5\n", 1),
            ("1 MD5 a\n1 SHA1 b\n", 2),
            ("1 MD5 HEX:abc\n", 1),
            // Cut short while written: "HEX:01..." became the ASCII secret "HE".
            ("1 MD5 a\n2 MD5 HE", 2),
        ] {
            assert_eq!(KeyStore::parse(text).unwrap_err().0, line, "{text:?}");
        }
    }

    #[test]
    fn world_readable_file_is_refused() {
        let dir = std::env::temp_dir().join(format!("pitime-keys-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ntp.keys");
        std::fs::write(&path, "1 MD5 secret\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            KeyStore::load(&path),
            Err(KeysError::Exposed { mode: 0o644, .. })
        ));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        assert_eq!(KeyStore::load(&path).unwrap().len(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn links_fifos_and_devices_are_refused_without_blocking() {
        let dir = std::env::temp_dir().join(format!("pitime-keys-odd-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let real = dir.join("real.keys");
        std::fs::write(&real, "1 MD5 secret\n").unwrap();
        std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o600)).unwrap();
        let link = dir.join("link.keys");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let fifo = dir.join("fifo.keys");
        let c_fifo = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c_fifo.as_ptr(), 0o600) }, 0);
        for path in [link, fifo, "/dev/null".into()] {
            let e = KeyStore::load(&path).unwrap_err();
            assert!(matches!(e, KeysError::Unsafe { .. }), "{path:?}: {e}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn errors_do_not_echo_the_file() {
        for text in [
            "s3cr3t MD5 x\n",
            "1 s3cr3t x\n",
            "1 MD5 HEX:s3cr3t\n",
            "s3cr3t\n",
        ] {
            let (_, message) = KeyStore::parse(text).unwrap_err();
            assert!(!message.contains("s3cr3t"), "{message}");
        }
    }
}
