//! The read-only HTTP side: the status page (`/`), the JSON API (`/api/v1/status`) and
//! Prometheus metrics (`/metrics`), served with axum on a runtime thread of its own.
//!
//! Bounds against hostile clients: at most `MAX_CONNECTIONS` at once (the rest wait in the
//! kernel's backlog) and `MAX_PER_ADDRESS` from one address (or IPv6 /64), so that one client
//! cannot take every slot; request heads of at most `MAX_HEAD` bytes (431 beyond), `HEAD_TIMEOUT` to
//! send a head and `CONNECTION_TIMEOUT` for a whole connection; only GET and HEAD; callers outside
//! the allowed networks are disconnected.

pub mod client;
pub mod metrics;
pub mod page;
pub mod status;
pub mod svg;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::sync::{watch, Semaphore};

use crate::server::acl::AccessList;
use crate::server::ratelimit::client_key;
use crate::tcp::TcpService;
use status::Status;

const MAX_CONNECTIONS: usize = 64;
const MAX_PER_ADDRESS: usize = 8;
const MAX_HEAD: usize = 16 * 1024;
const HEAD_TIMEOUT: Duration = Duration::from_secs(5);
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(30);

/// What the handlers read: the latest status, published once a second.
#[derive(Clone)]
struct Published(Arc<ArcSwap<Status>>);

async fn page(State(s): State<Published>) -> impl IntoResponse {
    let html = page::render(&s.0.load());
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html)
}

async fn api(State(s): State<Published>) -> impl IntoResponse {
    let json = serde_json::to_string(&**s.0.load()).unwrap_or_else(|_| "{}".into());
    ([(header::CONTENT_TYPE, "application/json")], json)
}

async fn metrics(State(s): State<Published>) -> impl IntoResponse {
    let text = metrics::render(&s.0.load(), crate::clock::system::realtime_now());
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
}

/// The local NTS CA's certificate, for clients to trust (404 when pitime's is not in use).
async fn nts_ca(State(s): State<Published>) -> axum::response::Response {
    match s.0.load().nts.as_ref().and_then(|n| n.local_ca.as_ref()) {
        Some(ca) => (
            [(header::CONTENT_TYPE, "application/x-pem-file")],
            ca.pem.clone(),
        )
            .into_response(),
        None => not_found().await.into_response(),
    }
}

async fn not_found() -> impl IntoResponse {
    (StatusCode::NOT_FOUND, "not found\n")
}

fn router(status: Arc<ArcSwap<Status>>) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/api/v1/status", get(api))
        .route("/metrics", get(metrics))
        .route("/nts-ca.pem", get(nts_ca))
        .fallback(not_found)
        .with_state(Published(status))
}

pub struct WebServer(TcpService);

impl WebServer {
    /// Binds every address now (so a failure is reported at start) and serves on a thread.
    pub fn start(
        listen: &[SocketAddr],
        status: Arc<ArcSwap<Status>>,
        access: Arc<ArcSwap<AccessList>>,
    ) -> std::io::Result<Self> {
        let mut listeners = Vec::new();
        for addr in listen {
            let listener = crate::tcp::listen(*addr)?;
            // The bound address: with port 0 the kernel picked one.
            tracing::info!(addr = %listener.local_addr()?, "serving the status page");
            listeners.push(listener);
        }
        let app = router(status);
        let service = TcpService::start("web", listeners, move |listeners, stopped| async move {
            let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
            let visitors = Visitors::default();
            let mut tasks = Vec::new();
            for l in listeners {
                let (app, access, permits) = (app.clone(), access.clone(), permits.clone());
                tasks.push(tokio::spawn(accept(
                    l,
                    app,
                    access,
                    (permits, visitors.clone()),
                    stopped.clone(),
                )));
            }
            for t in tasks {
                let _ = t.await;
            }
        })?;
        Ok(WebServer(service))
    }

    pub fn stop(self) {
        self.0.stop();
    }
}

async fn accept(
    listener: tokio::net::TcpListener,
    app: Router,
    access: Arc<ArcSwap<AccessList>>,
    (permits, visitors): (Arc<Semaphore>, Visitors),
    mut stopped: watch::Receiver<bool>,
) {
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => return },
            _ = stopped.changed() => return,
        };
        let Some((stream, peer)) = crate::tcp::next(&listener, &mut stopped).await else {
            return;
        };
        // This machine may always ask: `pitime status` and local monitoring must work whatever
        // the allow and deny lists say about the network.
        let local = peer.ip().to_canonical().is_loopback();
        if !local && !access.load().permits(peer.ip()) {
            continue;
        }
        let Some(visit) = visitors.enter(peer.ip()) else {
            continue;
        };
        let service = TowerToHyperService::new(app.clone());
        tokio::spawn(async move {
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEAD_TIMEOUT)
                .max_buf_size(MAX_HEAD)
                .serve_connection(TokioIo::new(stream), service);
            let _ = tokio::time::timeout(CONNECTION_TIMEOUT, connection).await;
            drop((permit, visit));
        });
    }
}

/// Open connections per client: an address, an IPv6 client by its /64 (which one host owns), as
/// the NTP rate limiter counts them.
#[derive(Clone, Default)]
struct Visitors(Arc<Mutex<HashMap<u128, usize>>>);

/// One open connection, counted until dropped.
struct Visit {
    visitors: Visitors,
    client: u128,
}

impl Visitors {
    /// Counts a connection from `ip`, or `None` when that client has `MAX_PER_ADDRESS` open.
    fn enter(&self, ip: IpAddr) -> Option<Visit> {
        let client = client_key(ip, 32, 64);
        let mut open = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let count = open.entry(client).or_default();
        if *count >= MAX_PER_ADDRESS {
            return None;
        }
        *count += 1;
        Some(Visit {
            visitors: self.clone(),
            client,
        })
    }
}

impl Drop for Visit {
    fn drop(&mut self) {
        let mut open = self.visitors.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = open.get_mut(&self.client) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.client);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_client_gets_at_most_its_share_of_connections() {
        let visitors = Visitors::default();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let mut held: Vec<Visit> = (0..MAX_PER_ADDRESS)
            .map(|_| visitors.enter(a).unwrap())
            .collect();
        assert!(visitors.enter(a).is_none());
        // Others are unaffected; an IPv6 /64 counts as one client.
        assert!(visitors.enter("192.0.2.2".parse().unwrap()).is_some());
        let v6 = |host: u16| IpAddr::from([0x2001, 0xdb8, 0, 1, 0, 0, 0, host]);
        let six: Vec<Visit> = (1..=MAX_PER_ADDRESS as u16)
            .map(|h| visitors.enter(v6(h)).unwrap())
            .collect();
        assert!(visitors.enter(v6(99)).is_none());
        drop(six);
        // A closed connection frees its place, and the table forgets idle clients.
        held.pop();
        assert!(visitors.enter(a).is_some());
        drop(held);
        assert!(visitors.0.lock().unwrap().is_empty());
    }
}
