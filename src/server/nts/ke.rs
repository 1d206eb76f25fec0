//! The NTS-KE server (RFC 8915 section 4): TLS 1.3 with ALPN `ntske/1` on TCP, on a tokio
//! runtime thread of its own so that slow or many TLS clients never hold up the NTP workers.
//! Each connection has a deadline for its handshake and request, a request size cap, and a
//! place among at most `max_connections`; past that, new connections are closed at once.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{watch, Semaphore};
use tokio_rustls::TlsAcceptor;

use super::certs::Identity;
use super::cookie::{self, MAX_COOKIE_LEN};
use super::exchange::{self, Negotiation, Referral, Refusal};
use crate::ntp::nts::aead::{Algorithm, SessionKeys, MAX_KEY_LEN};
use crate::ntp::nts::{exporter_context, record, ALPN, EXPORTER_LABEL};
use crate::server::Shared;
use crate::tcp::TcpService;

/// A request is a few small records; anything longer is not a client's.
pub const MAX_REQUEST: usize = 1024;

/// What the KE server reads: the NTP server's state (cookie keys in its policy, access lists),
/// the certificate (swapped on renewal and SIGHUP), the referral, and its counters.
pub struct KeShared {
    pub ntp: Arc<Shared>,
    pub identity: ArcSwap<Identity>,
    pub referral: ArcSwap<Referral>,
    pub stats: KeStats,
}

/// How a KE connection ended, other than with keys; names are stable metric label values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    Busy,
    Denied,
    Handshake,
    NoAlpn,
    Timeout,
    TooLarge,
    Malformed,
    Refused(Refusal),
    Internal,
}

impl Failure {
    pub const ALL: [Failure; 12] = [
        Failure::Busy,
        Failure::Denied,
        Failure::Handshake,
        Failure::NoAlpn,
        Failure::Timeout,
        Failure::TooLarge,
        Failure::Malformed,
        Failure::Refused(Refusal::UnknownCritical),
        Failure::Refused(Refusal::BadRequest),
        Failure::Refused(Refusal::NoProtocol),
        Failure::Refused(Refusal::NoAlgorithm),
        Failure::Internal,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Failure::Busy => "busy",
            Failure::Denied => "denied",
            Failure::Handshake => "tls_handshake",
            Failure::NoAlpn => "no_alpn",
            Failure::Timeout => "timeout",
            Failure::TooLarge => "too_large",
            Failure::Malformed => "malformed",
            Failure::Refused(r) => r.name(),
            Failure::Internal => "internal",
        }
    }

    fn index(self) -> usize {
        Failure::ALL.iter().position(|f| *f == self).unwrap_or(0)
    }
}

/// Counters of the KE server: relaxed atomics, for the status page and metrics.
#[derive(Default)]
pub struct KeStats {
    sessions: AtomicU64,
    failures: [AtomicU64; Failure::ALL.len()],
}

impl KeStats {
    pub fn sessions(&self) -> u64 {
        self.sessions.load(Ordering::Relaxed)
    }

    fn fail(&self, f: Failure) {
        self.failures[f.index()].fetch_add(1, Ordering::Relaxed);
    }

    /// (reason, count) for every failure, in a stable order.
    pub fn failures(&self) -> Vec<(&'static str, u64)> {
        Failure::ALL
            .iter()
            .map(|f| (f.name(), self.failures[f.index()].load(Ordering::Relaxed)))
            .collect()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub max_connections: usize,
    pub timeout: Duration,
}

pub struct KeServer {
    service: TcpService,
    pub local: Vec<SocketAddr>,
}

impl KeServer {
    /// Binds every address now (so a failure is reported at start) and serves on a thread.
    pub fn start(
        listen: &[SocketAddr],
        limits: Limits,
        shared: Arc<KeShared>,
    ) -> std::io::Result<KeServer> {
        let mut listeners = Vec::new();
        for addr in listen {
            let l = crate::tcp::listen(*addr)?;
            tracing::info!(addr = %l.local_addr()?, "serving NTS-KE");
            listeners.push(l);
        }
        let local = listeners
            .iter()
            .filter_map(|l| l.local_addr().ok())
            .collect();
        let service =
            TcpService::start("nts-ke", listeners, move |listeners, stopped| async move {
                let permits = Arc::new(Semaphore::new(limits.max_connections));
                let mut tasks = Vec::new();
                for l in listeners {
                    let accepting = accept(
                        l,
                        shared.clone(),
                        permits.clone(),
                        limits.timeout,
                        stopped.clone(),
                    );
                    tasks.push(tokio::spawn(accepting));
                }
                for t in tasks {
                    let _ = t.await;
                }
            })?;
        Ok(KeServer { service, local })
    }

    /// Stops accepting and drops the open connections.
    pub fn stop(self) {
        self.service.stop();
    }
}

async fn accept(
    listener: tokio::net::TcpListener,
    shared: Arc<KeShared>,
    permits: Arc<Semaphore>,
    timeout: Duration,
    mut stopped: watch::Receiver<bool>,
) {
    loop {
        let Some((stream, peer)) = crate::tcp::next(&listener, &mut stopped).await else {
            return;
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            shared.stats.fail(Failure::Busy);
            continue;
        };
        if !shared.ntp.policy.load().access.permits(peer.ip()) {
            shared.stats.fail(Failure::Denied);
            continue;
        }
        let shared = shared.clone();
        let mut stopped = stopped.clone();
        tokio::spawn(async move {
            let outcome = tokio::select! {
                r = tokio::time::timeout(timeout, session(stream, peer.ip(), &shared)) => {
                    r.unwrap_or(Err(Failure::Timeout))
                }
                _ = stopped.changed() => Ok(()),
            };
            match outcome {
                Ok(()) => {}
                Err(f) => {
                    tracing::debug!(%peer, reason = f.name(), "NTS-KE session failed");
                    shared.stats.fail(f);
                }
            }
            drop(permit);
        });
    }
}

/// One client: handshake, request, answer.
async fn session(
    stream: tokio::net::TcpStream,
    peer: IpAddr,
    shared: &KeShared,
) -> Result<(), Failure> {
    let _ = stream.set_nodelay(true);
    let acceptor = TlsAcceptor::from(shared.identity.load().config.clone());
    let mut tls = acceptor
        .accept(stream)
        .await
        .map_err(|_| Failure::Handshake)?;
    if tls.get_ref().1.alpn_protocol() != Some(ALPN) {
        return Err(Failure::NoAlpn);
    }
    let mut request = Vec::with_capacity(256);
    let mut chunk = [0u8; 512];
    let answer = loop {
        let n = tls.read(&mut chunk).await.map_err(|_| Failure::Malformed)?;
        if n == 0 {
            return Err(Failure::Malformed);
        }
        request.extend_from_slice(&chunk[..n]);
        if request.len() > MAX_REQUEST {
            break Err((bad_request(), Failure::TooLarge));
        }
        match record::parse_message(&request) {
            Ok(None) => continue,
            Ok(Some(records)) => break answer(&records, &tls, shared),
            Err(_) => break Err((bad_request(), Failure::Malformed)),
        }
    };
    let (message, result) = match answer {
        Ok(message) => (message, Ok(())),
        Err((message, failure)) => (message, Err(failure)),
    };
    tls.write_all(&message)
        .await
        .map_err(|_| Failure::Malformed)?;
    let _ = tls.shutdown().await;
    if result.is_ok() {
        shared.stats.sessions.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(%peer, "NTS-KE session");
    }
    result
}

fn bad_request() -> Vec<u8> {
    let mut m = Vec::new();
    record::push_u16s(&mut m, true, record::ERROR, &[record::ERROR_BAD_REQUEST]);
    record::push_end(&mut m);
    m
}

fn internal_error() -> (Vec<u8>, Failure) {
    let mut m = Vec::new();
    record::push_u16s(&mut m, true, record::ERROR, &[record::ERROR_INTERNAL]);
    record::push_end(&mut m);
    (m, Failure::Internal)
}

/// The answer to a complete request: keys exported from this TLS session, eight cookies.
fn answer(
    records: &[record::Record],
    tls: &tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
    shared: &KeShared,
) -> Result<Vec<u8>, (Vec<u8>, Failure)> {
    let algorithm = match exchange::negotiate(records) {
        Negotiation::Agreed(a) => a,
        Negotiation::Refused(m, why) => return Err((m, Failure::Refused(why))),
    };
    let session = export(tls.get_ref().1, algorithm).ok_or_else(internal_error)?;
    let policy = shared.ntp.policy.load();
    let keys = policy.nts.as_ref().ok_or_else(internal_error)?;
    let mut nonces = [0u8; cookie::NONCE_LEN * exchange::COOKIES];
    getrandom::fill(&mut nonces).map_err(|_| internal_error())?;
    let mut cookies = Vec::with_capacity(exchange::COOKIES);
    for nonce in nonces.chunks_exact(cookie::NONCE_LEN) {
        let mut cookie = vec![0u8; MAX_COOKIE_LEN];
        let nonce = nonce.try_into().map_err(|_| internal_error())?;
        let len = keys
            .seal(&session, nonce, &mut cookie)
            .ok_or_else(internal_error)?;
        cookie.truncate(len);
        cookies.push(cookie);
    }
    Ok(exchange::answer(
        algorithm,
        &shared.referral.load(),
        &cookies,
    ))
}

/// Both keys of the association, exported from the TLS session (RFC 8915 section 5.1).
fn export(conn: &rustls::ServerConnection, algorithm: Algorithm) -> Option<SessionKeys> {
    let n = algorithm.key_len();
    let mut c2s = [0u8; MAX_KEY_LEN];
    let mut s2c = [0u8; MAX_KEY_LEN];
    for (key, s2c_side) in [(&mut c2s, false), (&mut s2c, true)] {
        let context = exporter_context(algorithm, s2c_side);
        conn.export_keying_material(&mut key[..n], EXPORTER_LABEL, Some(&context))
            .ok()?;
    }
    SessionKeys::new(algorithm, &c2s[..n], &s2c[..n])
}
