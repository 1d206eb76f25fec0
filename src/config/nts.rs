//! `[nts]`: Network Time Security, its key exchange server, certificate and cookie keys.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::reader::{Errors, Section};
use super::{any, in_range, positive, socket_addr};
use crate::server::nts::cookie::Rotation;

#[derive(Clone, Debug, PartialEq)]
pub struct NtsConfig {
    pub enabled: bool,
    /// Where the NTS-KE server (TLS) listens.
    pub listen: Vec<SocketAddr>,
    /// The cookie keys, and the local CA and certificate when none is configured.
    pub state_dir: PathBuf,
    /// A certificate chain and its key (PEM); `None`: made from a local CA.
    pub certificate: Option<(PathBuf, PathBuf)>,
    pub rotation: Rotation,
    /// The NTP server and port sent to clients; `None`: they use this server's address and 123.
    pub ntp_server: Option<String>,
    pub ntp_port: Option<u16>,
    pub max_connections: usize,
    /// How long a client has for its TLS handshake and request.
    pub timeout: Duration,
}

pub(super) fn read_nts(mut sec: Section, errs: &mut Errors) -> NtsConfig {
    let enabled = sec.value(errs, "enabled", false, any);
    let listen = sec.array_or(
        errs,
        "listen",
        r#"["0.0.0.0:4460", "[::]:4460"]"#,
        socket_addr,
    );
    let state_dir = sec
        .path(errs, "state_dir", |_| Ok(()))
        .unwrap_or_else(|| PathBuf::from("/var/lib/pitime"));
    let certificate = sec.path(errs, "certificate", |_| Ok(()));
    let key_span = sec.span_of("private_key");
    let private_key = sec.path(errs, "private_key", |_| Ok(()));
    let certificate = match (certificate, private_key) {
        (Some(c), Some(k)) => Some((c, k)),
        (None, None) => None,
        (_, _) => {
            let span = key_span
                .or_else(|| sec.span_of("certificate"))
                .unwrap_or(0..0);
            let why = "`certificate` and `private_key` go together: set both, or neither for a certificate from pitime's own CA";
            errs.push(span, &sec.key_path("private_key"), why);
            None
        }
    };
    let interval = sec.value(
        errs,
        "key_rotation",
        86_400i64,
        in_range(60u64, 30 * 86_400),
    );
    let retention_span = sec.span_of("key_retention");
    let retention = sec.value(
        errs,
        "key_retention",
        7 * 86_400i64,
        in_range(60u64, 365 * 86_400),
    );
    if retention < interval {
        let why = "expected at least `key_rotation`: cookies must outlive the key that made them";
        errs.push(
            retention_span.unwrap_or(0..0),
            &sec.key_path("key_retention"),
            why,
        );
    }
    let ntp_server = sec.optional(errs, "ntp_server", |s: &String| {
        match s.is_empty() || s.len() > 255 {
            true => Err("expected a host name or address".to_string()),
            false => Ok(()),
        }
    });
    let ntp_port = sec
        .optional(errs, "ntp_port", in_range(1u16, u16::MAX))
        .map(|p| p as u16);
    let max_connections =
        sec.value(errs, "max_connections", 64i64, in_range(1usize, 10_000)) as usize;
    let timeout = sec.value(errs, "timeout", 5.0, positive);
    sec.finish(errs);
    NtsConfig {
        enabled,
        listen,
        state_dir,
        certificate,
        rotation: Rotation {
            interval: interval as u64,
            retention: retention as u64,
        },
        ntp_server,
        ntp_port,
        max_connections,
        timeout: Duration::from_secs_f64(timeout.min(3600.0)),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::Config;

    fn errors(text: &str) -> Vec<String> {
        Config::parse("t.toml", text, Path::new("/etc/pitime"))
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn defaults_and_relative_paths() {
        let c = Config::parse("t.toml", "", Path::new("/etc/pitime"))
            .unwrap()
            .nts;
        assert!(!c.enabled);
        assert_eq!(c.listen.len(), 2);
        assert_eq!(c.state_dir, Path::new("/var/lib/pitime"));
        assert_eq!(
            (c.rotation.interval, c.rotation.retention),
            (86_400, 604_800)
        );
        let text = "[nts]\nenabled = true\ncertificate = \"c.pem\"\nprivate_key = \"k.pem\"\n";
        let c = Config::parse("t.toml", text, Path::new("/etc/pitime"))
            .unwrap()
            .nts;
        let (cert, key) = c.certificate.unwrap();
        assert_eq!(
            (cert.as_path(), key.as_path()),
            (
                Path::new("/etc/pitime/c.pem"),
                Path::new("/etc/pitime/k.pem")
            )
        );
    }

    #[test]
    fn bad_values_are_refused_with_their_place() {
        let e = errors("[nts]\ncertificate = \"c.pem\"\n");
        assert!(
            e[0].contains("`certificate` and `private_key` go together"),
            "{e:?}"
        );
        let e = errors("[nts]\nkey_rotation = 7200\nkey_retention = 3600\n");
        assert!(
            e[0].starts_with("t.toml:3:17: `nts.key_retention`"),
            "{e:?}"
        );
        let e = errors("[nts]\nntp_port = 0\nlisten = [\"x\"]\ntimeout = -1.0\n");
        assert_eq!(e.len(), 3, "{e:?}");
    }
}
