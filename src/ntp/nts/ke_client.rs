//! A blocking NTS-KE client: TLS 1.3 with the NTS-KE ALPN, a request for NTPv4 with the given
//! algorithms, and the session keys and cookies of the answer. For the load generator and the
//! tests that play an NTS client.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

use super::aead::{Algorithm, SessionKeys, MAX_KEY_LEN};
use super::record::{self, parse_message};
use super::{exporter_context, ALPN, EXPORTER_LABEL, PROTOCOL_NTPV4};

/// What a key exchange gave.
#[derive(Debug)]
pub struct Exchanged {
    pub session: SessionKeys,
    pub cookies: Vec<Vec<u8>>,
    /// The NTP server and port the answer named, if it did.
    pub server: Option<String>,
    pub port: Option<u16>,
}

#[derive(Debug, thiserror::Error)]
pub enum KeError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("TLS: {0}")]
    Tls(#[from] rustls::Error),
    #[error("no certificate in the CA file")]
    NoCa,
    #[error("the server answered with error code {0}")]
    Refused(u16),
    #[error("a malformed or incomplete answer")]
    Malformed,
}

/// A TLS 1.3 client trusting the certificates in `ca_pem`, offering NTS-KE's ALPN.
pub fn tls_client(ca_pem: &[u8]) -> Result<Arc<rustls::ClientConfig>, KeError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem).filter_map(Result::ok) {
        roots.add(cert)?;
    }
    if roots.is_empty() {
        return Err(KeError::NoCa);
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![ALPN.to_vec()];
    Ok(Arc::new(config))
}

/// The request records for NTPv4 and `algorithms`, in order of preference.
pub fn request(algorithms: &[Algorithm]) -> Vec<u8> {
    let ids: Vec<u16> = algorithms.iter().map(|a| a.id()).collect();
    let mut m = Vec::new();
    record::push_u16s(&mut m, true, record::NEXT_PROTOCOL, &[PROTOCOL_NTPV4]);
    record::push_u16s(&mut m, true, record::AEAD_ALGORITHM, &ids);
    record::push_end(&mut m);
    m
}

/// Runs one key exchange with `addr`, whose certificate must name `name`.
pub fn exchange(
    addr: SocketAddr,
    name: &str,
    tls: Arc<rustls::ClientConfig>,
    algorithms: &[Algorithm],
) -> Result<Exchanged, KeError> {
    let name = ServerName::try_from(name.to_string()).map_err(|_| KeError::Malformed)?;
    let mut conn = rustls::ClientConnection::new(tls, name)?;
    let mut sock = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    sock.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut stream = rustls::Stream::new(&mut conn, &mut sock);
    stream.write_all(&request(algorithms))?;
    let mut answer = Vec::new();
    let mut chunk = [0u8; 4096];
    let records = loop {
        let n = match stream.read(&mut chunk) {
            Ok(n) => n,
            // Some servers close without close_notify after their answer.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => 0,
            Err(e) => return Err(e.into()),
        };
        answer.extend_from_slice(&chunk[..n]);
        match parse_message(&answer) {
            Ok(Some(_)) => break parse_message(&answer).ok().flatten().unwrap_or_default(),
            Ok(None) if n > 0 && answer.len() < 65_536 => continue,
            _ => return Err(KeError::Malformed),
        }
    };
    let mut found = (None, Vec::new(), None, None);
    for r in &records {
        let values = || record::u16s(r.body).into_iter().flatten();
        match r.kind {
            record::ERROR => return Err(KeError::Refused(values().next().unwrap_or(u16::MAX))),
            record::AEAD_ALGORITHM => found.0 = values().next().and_then(Algorithm::from_id),
            record::NEW_COOKIE => found.1.push(r.body.to_vec()),
            record::NTPV4_SERVER => found.2 = String::from_utf8(r.body.to_vec()).ok(),
            record::NTPV4_PORT => found.3 = values().next(),
            _ => {}
        }
    }
    let algorithm = found.0.ok_or(KeError::Malformed)?;
    let n = algorithm.key_len();
    let mut keys = [[0u8; MAX_KEY_LEN]; 2];
    for (key, s2c) in keys.iter_mut().zip([false, true]) {
        let context = exporter_context(algorithm, s2c);
        conn.export_keying_material(&mut key[..n], EXPORTER_LABEL, Some(&context))?;
    }
    let session =
        SessionKeys::new(algorithm, &keys[0][..n], &keys[1][..n]).ok_or(KeError::Malformed)?;
    Ok(Exchanged {
        session,
        cookies: found.1,
        server: found.2,
        port: found.3,
    })
}
