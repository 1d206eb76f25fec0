//! The master keys on disk (`nts-keys` in the state directory), mode 0600: one line per key,
//! `id created key`, the id in decimal, the creation time in Unix seconds, the key in hex.
//! Read at start, so a restart keeps the clients' cookies valid, and written after each
//! rotation. Several servers may share the file; each reads it again when it changes.

use std::path::Path;

use super::cookie::{CookieKeys, MasterKey, MASTER_KEY_LEN};

const HEADER: &str = "# pitime NTS cookie keys: id, created (Unix seconds), key (hex). Secret.\n";

#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("{path}: {error}")]
    Io { path: String, error: std::io::Error },
    #[error("{path}:{line}: expected `id created key` with a {MASTER_KEY_LEN}-byte key in hex")]
    Syntax { path: String, line: usize },
}

/// Parses the file's text; `name` is for errors.
pub fn parse(name: &str, text: &str) -> Result<CookieKeys, KeyFileError> {
    let mut keys = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let key = parse_line(line).ok_or_else(|| KeyFileError::Syntax {
            path: name.to_string(),
            line: i + 1,
        })?;
        keys.push(key);
    }
    Ok(CookieKeys::new(keys))
}

fn parse_line(line: &str) -> Option<MasterKey> {
    let mut words = line.split_ascii_whitespace();
    let id = words.next()?.parse().ok()?;
    let created = words.next()?.parse().ok()?;
    let hex = words.next()?.as_bytes();
    if words.next().is_some() || hex.len() != 2 * MASTER_KEY_LEN {
        return None;
    }
    let mut key = [0u8; MASTER_KEY_LEN];
    for (k, pair) in key.iter_mut().zip(hex.chunks_exact(2)) {
        *k = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
    }
    Some(MasterKey { id, created, key })
}

pub fn render(keys: &CookieKeys) -> String {
    let mut text = HEADER.to_string();
    for k in keys.keys() {
        let hex: String = k.key.iter().map(|b| format!("{b:02x}")).collect();
        text.push_str(&format!("{} {} {hex}\n", k.id, k.created));
    }
    text
}

/// The keys in `path`; no keys if it does not exist yet.
pub fn load(path: &Path) -> Result<CookieKeys, KeyFileError> {
    let name = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => parse(&name, &text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(CookieKeys::default()),
        Err(error) => Err(KeyFileError::Io { path: name, error }),
    }
}

/// Replaces the file atomically, readable by its owner only.
pub fn save(path: &Path, keys: &CookieKeys) -> Result<(), KeyFileError> {
    crate::atomic_file::write(path, render(keys).as_bytes(), 0o600).map_err(|error| {
        KeyFileError::Io {
            path: path.display().to_string(),
            error,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn keys_survive_the_file_with_its_mode() {
        let dir = std::env::temp_dir().join(format!("pitime-keyfile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("nts-keys");
        assert_eq!(load(&path).unwrap(), CookieKeys::default());
        let keys = CookieKeys::new(vec![
            MasterKey {
                id: 9,
                created: 200,
                key: [0xab; 32],
            },
            MasterKey {
                id: 8,
                created: 100,
                key: [1; 32],
            },
        ]);
        save(&path, &keys).unwrap();
        assert_eq!(load(&path).unwrap(), keys);
        assert_eq!(load(&path).unwrap().newest().unwrap().id, 9);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn bad_lines_are_named() {
        for bad in [
            "1 2",
            "1 2 abc",
            "x 2 00",
            &format!("1 2 {}", "zz".repeat(32)),
        ] {
            let e = parse("f", &format!("# c\n{bad}\n")).unwrap_err();
            assert!(e.to_string().starts_with("f:2: expected"), "{e}");
        }
    }
}
