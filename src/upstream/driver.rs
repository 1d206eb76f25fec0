//! Runs one upstream server: a thread with a UDP socket connected to the server's address (so
//! the kernel drops datagrams from anyone else), feeding the client state machine with kernel
//! receive timestamps and publishing what it knows for the status page.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;

use super::client::{Client, Due, Received};
use crate::clock::change::{ClockChanges, ClockWatch};
use crate::clock::system::realtime_now;
use crate::config::NtpSourceConfig;
use crate::ntp::keys::{Key, KeyStore};
use crate::ntp::packet::Header;
use crate::ntp::txstamp;
use crate::ntp::udp::{self, RecvBatch};
use crate::refclock::Sample;
use crate::worker::{pause, Retry, Workers};

/// The longest wait for a datagram: how soon a stop is noticed.
const STEP: Duration = Duration::from_millis(500);
/// Wait after a failed resolution or socket error.
const RETRY: Duration = Duration::from_secs(10);

/// What the status page shows of one upstream server.
#[derive(Clone, Debug, Default)]
pub struct NtpStatus {
    /// The address polled, once the name resolved.
    pub address: Option<SocketAddr>,
    pub reach: u8,
    /// Requests in a row without a reply.
    pub unanswered: u32,
    /// Poll interval, log2 seconds.
    pub poll: i8,
    /// The filter's chosen offset (server minus local clock), delay, and the jitter, seconds.
    pub offset: Option<f64>,
    pub delay: Option<f64>,
    pub jitter: Option<f64>,
    /// Datagrams that failed the checks (malformed, spoofed, late, unsynchronised).
    pub dropped: u64,
    /// The server sent DENY or RSTR: it is no longer polled.
    pub denied: bool,
    /// The server's own refid, from its last usable reply.
    pub server_refid: Option<[u8; 4]>,
    /// Our requests' send times come from the kernel, and the last reply was interleaved.
    pub kernel_tx: bool,
    pub interleaved: bool,
}

/// Polls until dropped.
pub struct NtpDriver {
    _workers: Workers,
    pub status: Arc<ArcSwap<NtpStatus>>,
    pub name: String,
}

impl NtpDriver {
    /// Starts polling; `keys` must hold the configured key, if any.
    /// `changes` reads the changes the discipline has made to the system clock.
    pub fn start(
        config: &NtpSourceConfig,
        keys: &KeyStore,
        sample: Box<dyn Fn(Sample) + Send>,
        changes: Box<dyn Fn() -> ClockChanges + Send>,
    ) -> io::Result<Self> {
        let key = match config.key {
            Some(id) => Some(keys.get(id).cloned().ok_or_else(|| {
                let why = format!("key {id} is not in the server's keys file");
                io::Error::new(io::ErrorKind::InvalidInput, why)
            })?),
            None => None,
        };
        let status = Arc::new(ArcSwap::from_pointee(NtpStatus::default()));
        let mut workers = Workers::default();
        workers.spawn("ntp", {
            let (status, config) = (status.clone(), config.clone());
            move |stop| run(&config, key, &*sample, &*changes, &status, stop)
        })?;
        Ok(NtpDriver {
            _workers: workers,
            status,
            name: config.name.clone(),
        })
    }
}

/// A socket connected to the server's current address.
struct Link {
    socket: UdpSocket,
    addr: SocketAddr,
    kernel_tx: bool,
}

/// Resolves the server's name and connects a socket to its `turn`th address, round-robin: a
/// name whose first address does not answer (IPv6 without a route) is tried at the next.
fn connect(c: &NtpSourceConfig, turn: usize) -> io::Result<Link> {
    let addrs: Vec<SocketAddr> = (c.server.as_str(), c.port).to_socket_addrs()?.collect();
    let addr = *addrs
        .get(turn % addrs.len().max(1))
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "the name has no address"))?;
    let local: SocketAddr = match addr {
        SocketAddr::V4(_) => (std::net::Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let socket = udp::bind(local, false, STEP)?;
    socket.connect(addr)?;
    let kernel_tx = match txstamp::enable_kernel(&socket, true) {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(source = %c.name, "no kernel transmit timestamps ({e}): sending times read before sending");
            false
        }
    };
    Ok(Link {
        socket,
        addr,
        kernel_tx,
    })
}

/// 64 random bits from the kernel for a request's cookie. Without them (an old kernel) the
/// clock's nanoseconds are a poor substitute, still unknown to an off-path attacker.
fn cookie() -> u64 {
    let mut bytes = [0u8; 8];
    // SAFETY: getrandom writes at most `bytes.len()` bytes into the buffer.
    let n = unsafe { libc::getrandom(bytes.as_mut_ptr().cast(), bytes.len(), 0) };
    match n {
        8 => u64::from_ne_bytes(bytes),
        _ => realtime_now().as_nanos() as u64,
    }
}

fn run(
    c: &NtpSourceConfig,
    key: Option<Key>,
    sample: &dyn Fn(Sample),
    changes: &dyn Fn() -> ClockChanges,
    published: &ArcSwap<NtpStatus>,
    stop: &AtomicBool,
) {
    let mut watch = ClockWatch::default();
    let mut link: Option<Link> = None;
    let mut client: Option<Client> = None;
    let mut batch = RecvBatch::default();
    let mut looped = RecvBatch::default();
    let mut status = NtpStatus::default();
    let mut turn = 0;
    let mut retry = Retry::default();
    while !stop.load(Ordering::Relaxed) {
        let Some(Link {
            socket, kernel_tx, ..
        }) = &link
        else {
            match connect(c, turn) {
                Ok(l) => {
                    if status.address != Some(l.addr) {
                        tracing::info!(source = %c.name, address = %l.addr, "polling NTP server");
                    }
                    let now = realtime_now();
                    client
                        .get_or_insert_with(|| Client::new(c, key.clone(), l.addr.ip(), now))
                        .set_peer(l.addr.ip());
                    status.address = Some(l.addr);
                    status.kernel_tx = l.kernel_tx;
                    link = Some(l);
                    retry.succeeded();
                }
                Err(e) => {
                    if retry.failed() {
                        tracing::warn!(source = %c.name, server = %c.server, "cannot resolve or connect to the NTP server: {e}; retrying");
                    }
                    pause(RETRY, stop);
                }
            }
            continue;
        };
        let Some(client) = client.as_mut() else {
            continue;
        };
        if let Some(change) = watch.news(&changes()) {
            client.clock_changed(&change);
        }
        let now = realtime_now();
        let Some(wait) = client.until_poll(now) else {
            pause(STEP, stop);
            continue;
        };
        if wait <= 0.0 {
            if client.due() == Due::Resolve {
                turn += 1;
                link = None;
                continue;
            }
            // T1 as late as possible: the cookie is fetched before it.
            let cookie = cookie();
            let request = client.request(realtime_now(), cookie);
            if let Err(e) = socket.send(&request) {
                tracing::debug!(source = %c.name, "send failed: {e}");
            }
            if *kernel_tx {
                take_tx_stamps(socket, &mut looped, client);
            }
            if status.reach != 0 && client.reach() == 0 {
                tracing::warn!(source = %c.name, "NTP server unreachable: no reply to eight requests");
            }
            publish(&mut status, client, published);
            continue;
        }
        let timeout = Duration::try_from_secs_f64(wait)
            .unwrap_or(STEP)
            .clamp(Duration::from_millis(1), STEP);
        let _ = socket.set_read_timeout(Some(timeout));
        let count = match batch.recv(socket) {
            Ok(n) => n,
            Err(e) if transient(&e) => continue,
            Err(e) => {
                tracing::warn!(source = %c.name, "NTP socket failed: {e}");
                link = None;
                pause(RETRY, stop);
                continue;
            }
        };
        // Stamped on reading when the kernel gave no timestamp.
        let read_at = realtime_now();
        if *kernel_tx {
            // A transmit timestamp late from the kernel, before its reply is measured.
            take_tx_stamps(socket, &mut looped, client);
        }
        // A step between the request and now: its reply must not be measured across it.
        if let Some(change) = watch.news(&changes()) {
            client.clock_changed(&change);
        }
        for i in 0..count {
            let got = batch.get(i);
            match client.receive(got.data, got.rx.unwrap_or(read_at)) {
                Ok(Received::Sample(s)) => {
                    if status.reach == 0 {
                        tracing::info!(source = %c.name, offset = s.offset(), stratum = s.stratum, "NTP server reached");
                    }
                    sample(s);
                }
                Ok(Received::Filtered) => {}
                Ok(Received::RateLimited) => {
                    tracing::info!(source = %c.name, poll = client.poll(), "NTP server asks us to slow down (RATE)");
                }
                Ok(Received::Denied(code)) => {
                    let code = String::from_utf8_lossy(&code).into_owned();
                    tracing::warn!(source = %c.name, code, "NTP server refuses us; not polling it again");
                    status.denied = true;
                }
                Err(why) => {
                    tracing::debug!(source = %c.name, "reply dropped: {why}");
                    status.dropped += 1;
                }
            }
        }
        publish(&mut status, client, published);
    }
}

/// Gives the client the kernel's send times of its requests, looped back on the error queue.
fn take_tx_stamps(socket: &UdpSocket, batch: &mut RecvBatch, client: &mut Client) {
    while let Ok(n) = batch.recv_errqueue(socket) {
        for i in 0..n {
            let r = batch.get(i);
            let request = txstamp::udp_payload(r.data).and_then(|(_, p)| Header::parse(p));
            if let (Some(at), Some(request)) = (r.rx, request) {
                client.transmitted(request.transmit, at);
            }
        }
        if n < udp::BATCH {
            break;
        }
    }
}

/// Errors that only mean "nothing this time": the timeout, a signal, an ICMP port unreachable
/// from an earlier request (the server is down: the reach register tells).
fn transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock
            | io::ErrorKind::TimedOut
            | io::ErrorKind::Interrupted
            | io::ErrorKind::ConnectionRefused
    )
}

fn publish(status: &mut NtpStatus, client: &Client, published: &ArcSwap<NtpStatus>) {
    status.reach = client.reach();
    status.unanswered = client.unanswered();
    status.poll = client.poll();
    status.server_refid = client.server_refid();
    status.interleaved = client.interleaved();
    let best = client.best();
    status.offset = best.map(|b| b.measurement.offset);
    status.delay = best.map(|b| b.measurement.delay);
    status.jitter = best.map(|b| b.jitter);
    published.store(Arc::new(status.clone()));
}
