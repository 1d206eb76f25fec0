//! The NTS-KE server's certificate: a configured PEM chain and key (from an ACME client, say),
//! or, with none configured, one issued by a local certificate authority that pitime creates
//! once in its state directory, naming this machine's host names and addresses. Clients trust
//! the CA (`nts-ca.pem`, offered by the status page); the server certificate is issued again
//! when it nears its expiry or the machine's names change.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    date_time_ymd, BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};

use crate::alarm::{Alarm, AlarmKind};
use crate::ntp::nts::ALPN;
use crate::time::{civil_from_days, days_from_civil};

const DAY: u64 = 86_400;
/// The local CA lasts as long as the Pi; its server certificates a year, renewed a month early.
const CA_DAYS: u64 = 20 * 365;
const CERT_DAYS: u64 = 365;
pub const RENEW_BEFORE: u64 = 30 * DAY;

pub const CA_FILE: &str = "nts-ca.pem";
const CA_KEY_FILE: &str = "nts-ca.key";
const CA_NAME_FILE: &str = "nts-ca.name";
const CERT_FILE: &str = "nts-cert.pem";
const CERT_KEY_FILE: &str = "nts-cert.key";
const CERT_NAMES_FILE: &str = "nts-cert.names";

#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("{path}: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{0}: no certificate, or not PEM")]
    NoCertificate(PathBuf),
    #[error("{0}: no private key, or not PEM")]
    NoKey(PathBuf),
    #[error("making a certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("the certificate and key do not make a TLS server: {0}")]
    Tls(#[from] rustls::Error),
}

/// A certificate chain with its key, ready to serve.
#[derive(Debug)]
pub struct Identity {
    pub config: Arc<rustls::ServerConfig>,
    /// The server certificate's notAfter, in Unix seconds (`None` if unreadable).
    pub expires: Option<u64>,
    pub fingerprint: String,
    /// The local CA's certificate (PEM), when the certificate is pitime's own.
    pub local_ca: Option<LocalCa>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalCa {
    pub pem: String,
    /// SHA-256 of its DER, hex pairs joined by colons, as `openssl x509 -fingerprint` shows.
    pub fingerprint: String,
    pub path: PathBuf,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CertError + '_ {
    move |error| CertError::Io {
        path: path.to_path_buf(),
        error,
    }
}

/// A TLS 1.3-only server speaking NTS-KE's ALPN protocol, with `chain` and `key`.
fn tls_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<rustls::ServerConfig>, CertError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![ALPN.to_vec()];
    Ok(Arc::new(config))
}

/// Loads a configured PEM chain and key.
pub fn load(cert: &Path, key: &Path) -> Result<Identity, CertError> {
    let chain_pem = std::fs::read(cert).map_err(io(cert))?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&chain_pem)
        .filter_map(Result::ok)
        .collect();
    let first = chain
        .first()
        .cloned()
        .ok_or_else(|| CertError::NoCertificate(cert.to_path_buf()))?;
    let key_pem = std::fs::read(key).map_err(io(key))?;
    let key_der =
        PrivateKeyDer::from_pem_slice(&key_pem).map_err(|_| CertError::NoKey(key.to_path_buf()))?;
    Ok(Identity {
        config: tls_config(chain, key_der)?,
        expires: not_after(&first),
        fingerprint: fingerprint(&first),
        local_ca: None,
    })
}

/// The local CA's parameters: what its certificate says, and what an issuer must repeat.
fn ca_params(name: &str, now: u64) -> Result<CertificateParams, CertError> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    set_validity(&mut params, now, CA_DAYS);
    Ok(params)
}

/// Valid from a day before `now` (clocks that lag a little) for `days`.
fn set_validity(params: &mut CertificateParams, now: u64, days: u64) {
    let date = |unix: u64| {
        let (y, m, d) = civil_from_days((unix / DAY) as i64);
        date_time_ymd(y as i32, m as u8, d as u8)
    };
    params.not_before = date(now.saturating_sub(DAY));
    params.not_after = date(now + days * DAY);
}

fn write(dir: &Path, file: &str, text: &str, mode: u32) -> Result<(), CertError> {
    let path = dir.join(file);
    crate::atomic_file::write(&path, text.as_bytes(), mode).map_err(io(&path))
}

fn read(dir: &Path, file: &str) -> Option<String> {
    std::fs::read_to_string(dir.join(file)).ok()
}

/// The certificate from the local CA in `dir`, creating the CA the first time and issuing the
/// certificate again when it is due for renewal at `now` or `names` changed.
pub fn local(dir: &Path, names: &[String], now: u64) -> Result<Identity, CertError> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let (ca_pem, ca_key, ca_name) = match (
        read(dir, CA_FILE),
        read(dir, CA_KEY_FILE).and_then(|k| KeyPair::from_pem(&k).ok()),
        read(dir, CA_NAME_FILE),
    ) {
        (Some(pem), Some(key), Some(name)) => (pem, key, name.trim().to_string()),
        _ => {
            let key = KeyPair::generate()?;
            let mut tag = [0u8; 4];
            getrandom::fill(&mut tag).map_err(|e| io(dir)(std::io::Error::other(e)))?;
            let name = format!("pitime NTS CA {}", hex(&tag, ""));
            let cert = ca_params(&name, now)?.self_signed(&key)?;
            write(dir, CA_KEY_FILE, &key.serialize_pem(), 0o600)?;
            write(dir, CA_NAME_FILE, &format!("{name}\n"), 0o644)?;
            write(dir, CA_FILE, &cert.pem(), 0o644)?;
            tracing::info!(path = %dir.join(CA_FILE).display(), "created a local certificate authority for NTS");
            (cert.pem(), key, name)
        }
    };
    let ca_der = CertificateDer::from_pem_slice(ca_pem.as_bytes())
        .map_err(|_| CertError::NoCertificate(dir.join(CA_FILE)))?;
    let wanted = names.join("\n");
    let current = (read(dir, CERT_FILE), read(dir, CERT_KEY_FILE));
    let fresh = match &current {
        (Some(pem), Some(_)) => {
            let der = CertificateDer::from_pem_slice(pem.as_bytes()).ok();
            let expires = der.as_deref().and_then(not_after).unwrap_or(0);
            expires > now + RENEW_BEFORE && read(dir, CERT_NAMES_FILE).as_deref() == Some(&wanted)
        }
        _ => false,
    };
    if !fresh {
        let issuer = Issuer::new(ca_params(&ca_name, now)?, &ca_key);
        let mut params = CertificateParams::new(names.to_vec())?;
        params.distinguished_name.push(
            DnType::CommonName,
            names.first().map_or("pitime", |n| n.as_str()),
        );
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.use_authority_key_identifier_extension = true;
        set_validity(&mut params, now, CERT_DAYS);
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &issuer)?;
        write(dir, CERT_KEY_FILE, &key.serialize_pem(), 0o600)?;
        write(dir, CERT_FILE, &format!("{}{ca_pem}", cert.pem()), 0o644)?;
        write(dir, CERT_NAMES_FILE, &wanted, 0o644)?;
        tracing::info!(names = %names.join(", "), "issued the NTS certificate from the local CA");
    }
    let mut identity = load(&dir.join(CERT_FILE), &dir.join(CERT_KEY_FILE))?;
    identity.local_ca = Some(LocalCa {
        fingerprint: fingerprint(&ca_der),
        pem: ca_pem,
        path: dir.join(CA_FILE),
    });
    Ok(identity)
}

fn hex(bytes: &[u8], separator: &str) -> String {
    let pairs: Vec<String> = bytes.iter().map(|b| format!("{b:02X}")).collect();
    pairs.join(separator)
}

/// How early an expiring certificate raises an alarm: after the local CA's renewal (30 days
/// before) has failed, or an ACME client's (usually 30 days before) has not been picked up.
pub const WARN_BEFORE: u64 = 14 * DAY;

/// The alarm for a certificate that expires within `WARN_BEFORE` of `now`, or has.
pub fn expiry_alarm(expires: Option<u64>, now: u64) -> Option<Alarm> {
    let expires = expires?;
    let text = match expires.checked_sub(now) {
        None | Some(0) => "the NTS certificate has expired: clients cannot get keys".to_string(),
        Some(left) if left < WARN_BEFORE => format!(
            "the NTS certificate expires in {:.1} days: renew it, then reload (SIGHUP)",
            left as f64 / DAY as f64
        ),
        Some(_) => return None,
    };
    Some(Alarm::new(NTS, AlarmKind::NtsCertificateExpiring, text))
}

/// The subject of NTS alarms.
pub const NTS: &str = "nts";

/// SHA-256 of a certificate, `AB:CD:...`.
pub fn fingerprint(der: &[u8]) -> String {
    hex(&Sha256::digest(der), ":")
}

/// This machine's names for its certificate: the host name, `HOST.local` (mDNS), `localhost`,
/// and its addresses.
pub fn machine_names(host: &str, addresses: &[IpAddr]) -> Vec<String> {
    let mut names = Vec::new();
    let host = host.trim().trim_end_matches('.');
    if !host.is_empty() && host != "localhost" {
        names.push(host.to_string());
        if !host.contains('.') {
            names.push(format!("{host}.local"));
        }
    }
    names.push("localhost".to_string());
    names.extend(addresses.iter().map(IpAddr::to_string));
    names.dedup();
    names
}

/// One TLV of DER at the start of `data`: its tag, contents and what follows.
fn tlv(data: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = data.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = match first {
        0..=0x7f => (usize::from(first), rest),
        0x81..=0x84 => {
            let n = usize::from(first & 0x7f);
            let bytes = rest.get(..n)?;
            let len = bytes.iter().fold(0usize, |l, b| l << 8 | usize::from(*b));
            (len, &rest[n..])
        }
        _ => return None,
    };
    Some((tag, rest.get(..len)?, rest.get(len..)?))
}

/// A certificate's notAfter in Unix seconds, read from its DER (RFC 5280 section 4.1).
pub fn not_after(der: &[u8]) -> Option<u64> {
    const SEQUENCE: u8 = 0x30;
    let (SEQUENCE, cert, _) = tlv(der)? else {
        return None;
    };
    let (SEQUENCE, tbs, _) = tlv(cert)? else {
        return None;
    };
    let mut rest = tbs;
    // The optional explicit version, then serial, signature algorithm and issuer.
    if rest.first() == Some(&0xa0) {
        rest = tlv(rest)?.2;
    }
    for _ in 0..3 {
        rest = tlv(rest)?.2;
    }
    let (SEQUENCE, validity, _) = tlv(rest)? else {
        return None;
    };
    let (tag, time, _) = tlv(tlv(validity)?.2)?;
    parse_time(tag, time)
}

/// UTCTime (`YYMMDDHHMMSSZ`, years 1950-2049) or GeneralizedTime (`YYYYMMDDHHMMSSZ`).
fn parse_time(tag: u8, text: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(text).ok()?.strip_suffix('Z')?;
    let (year, rest) = match (tag, text.len()) {
        (0x17, 12) => {
            let yy: i64 = text[..2].parse().ok()?;
            (if yy < 50 { 2000 + yy } else { 1900 + yy }, &text[2..])
        }
        (0x18, 14) => (text[..4].parse().ok()?, &text[4..]),
        _ => return None,
    };
    if !rest.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let field = |i: usize| rest[i..i + 2].parse::<u32>().ok();
    let (month, day) = (field(0)?, field(2)?);
    let (h, m, s) = (field(4)?, field(6)?, field(8)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || h > 23 || m > 59 || s > 60 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    u64::try_from(days * 86_400 + i64::from(h * 3600 + m * 60 + s)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000;

    #[test]
    fn the_local_ca_is_made_once_and_its_certificate_renewed_when_due() {
        let dir = std::env::temp_dir().join(format!("pitime-certs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let names = machine_names("pi", &["192.0.2.7".parse().unwrap()]);
        assert_eq!(names, ["pi", "pi.local", "localhost", "192.0.2.7"]);
        let first = local(&dir, &names, NOW).unwrap();
        let ca = first.local_ca.clone().unwrap();
        let expires = first.expires.unwrap();
        assert!(expires.abs_diff(NOW + 365 * DAY) < DAY, "{expires}");
        let mode = |f: &str| {
            use std::os::unix::fs::PermissionsExt;
            std::fs::metadata(dir.join(f)).unwrap().permissions().mode() & 0o777
        };
        assert_eq!((mode(CA_KEY_FILE), mode(CERT_KEY_FILE)), (0o600, 0o600));
        // A restart keeps both; a month before expiry or with new names the certificate is
        // issued again by the same CA.
        let again = local(&dir, &names, NOW + DAY).unwrap();
        assert_eq!(
            (&again.fingerprint, again.local_ca.as_ref()),
            (&first.fingerprint, Some(&ca))
        );
        let renewed = local(&dir, &names, expires - RENEW_BEFORE).unwrap();
        assert_ne!(renewed.fingerprint, first.fingerprint);
        assert_eq!(renewed.local_ca.as_ref(), Some(&ca));
        let moved = local(&dir, &machine_names("pi", &[]), expires - RENEW_BEFORE).unwrap();
        assert_ne!(moved.fingerprint, renewed.fingerprint);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_expiring_certificate_raises_an_alarm() {
        assert_eq!(expiry_alarm(None, NOW), None);
        assert_eq!(expiry_alarm(Some(NOW + 15 * DAY), NOW), None);
        let soon = expiry_alarm(Some(NOW + 13 * DAY), NOW).unwrap();
        assert_eq!(soon.kind, AlarmKind::NtsCertificateExpiring);
        assert!(soon.text.contains("expires in 13.0 days"), "{}", soon.text);
        assert!(expiry_alarm(Some(NOW - 1), NOW)
            .unwrap()
            .text
            .contains("has expired"));
    }

    #[test]
    fn expiry_is_read_from_both_time_forms() {
        assert_eq!(parse_time(0x17, b"491231235959Z"), Some(2_524_607_999));
        assert_eq!(parse_time(0x18, b"20491231235959Z"), Some(2_524_607_999));
        // 1950: before the Unix epoch.
        assert_eq!(parse_time(0x17, b"501231235959Z"), None);
        for bad in [
            &b"4912312359Z"[..],
            b"491331235959Z",
            b"49123123595aZ",
            b"491231235959",
        ] {
            assert_eq!(parse_time(0x17, bad), None);
        }
        assert_eq!(not_after(&[0x30, 0x03, 0x30, 0x01, 0x00]), None);
        assert_eq!(not_after(&[]), None);
    }
}
