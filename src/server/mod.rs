//! The NTP service on UDP: one thread per listening socket (and per `threads`, with
//! SO_REUSEPORT), each reading the latest clock snapshot and policy without locks.

pub mod acl;
pub mod control;
pub mod hwclock;
pub mod interleave;
pub mod nts;
pub mod ratelimit;
pub mod respond;
mod send_time;
pub mod stats;
pub mod txstamp;

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context;
use arc_swap::ArcSwap;

use crate::clock::system::realtime_now;
use crate::discipline::snapshot::ClockSnapshot;
use crate::ntp::txstamp::Timestamping;
use crate::ntp::udp::{self, Received, RecvBatch, SendBatch, BATCH};
use control::ControlView;
use hwclock::{Poller, SocketHardware, Stamp};
use interleave::Interleave;
use ratelimit::RateLimiter;
use respond::{Decision, Policy, Reply};
use send_time::{SendTime, Work};
use stats::{Outcome, ServerStats};

/// How often an idle worker checks whether it should stop.
const STOP_CHECK: Duration = Duration::from_millis(200);

/// What the workers read: published by the discipline and by configuration reloads.
pub struct Shared {
    pub clock: ArcSwap<ClockSnapshot>,
    pub policy: ArcSwap<Policy>,
    pub stats: ServerStats,
    /// The sources and the loop, for mode 6 (ntpq) answers: published once a second.
    pub control: ArcSwap<ControlView>,
}

pub struct NtpServer {
    shared: Arc<Shared>,
    threads: usize,
    timestamping: Timestamping,
    groups: Vec<Group>,
    /// Reads the clocks of the interfaces with hardware timestamps.
    poller: Poller,
}

/// The workers serving one configured address.
struct Group {
    requested: SocketAddr,
    local: SocketAddr,
    stamping: Vec<txstamp::Stamping>,
    stop: Arc<AtomicBool>,
    workers: Vec<JoinHandle<()>>,
}

impl Group {
    fn start(
        requested: SocketAddr,
        threads: usize,
        timestamping: Timestamping,
        shared: &Arc<Shared>,
        poller: &mut Poller,
    ) -> anyhow::Result<Group> {
        let stop = Arc::new(AtomicBool::new(false));
        let mut group = Group {
            requested,
            local: requested,
            stamping: txstamp::plan(requested, timestamping, poller, shared),
            stop,
            workers: Vec::new(),
        };
        let hardware = txstamp::hardware(&group.stamping);
        for _ in 0..threads {
            let socket = udp::bind(group.local, threads > 1, STOP_CHECK)
                .with_context(|| format!("cannot listen on {}", group.local))?;
            // With port 0 the kernel picks one: the other threads share it.
            group.local = socket.local_addr().context("local address of NTP socket")?;
            let stamps = txstamp::setup(&socket, timestamping, hardware.is_some());
            if group.workers.is_empty() {
                for s in &mut group.stamping {
                    s.address = group.local;
                }
                txstamp::report(&mut group.stamping, stamps);
            }
            let hardware = hardware
                .clone()
                .filter(|_| stamps == Timestamping::Hardware);
            if threads > 1 && group.workers.is_empty() {
                let sockets = threads as u32;
                if let Err(e) = udp::steer_by_source(&socket, group.local.is_ipv6(), sockets) {
                    tracing::warn!(addr = %group.local, "cannot keep each client on one thread ({e}): with `threads` > 1 a client sending from many ports gets up to {threads} times its rate limit");
                }
            }
            let (shared, stop) = (shared.clone(), group.stop.clone());
            let worker = std::thread::Builder::new()
                .name(format!("ntp {}", group.local))
                .spawn(move || serve(socket, stamps, hardware, &shared, &stop))
                .context("starting NTP worker")?;
            group.workers.push(worker);
        }
        tracing::info!(addr = %group.local, "serving NTP");
        Ok(group)
    }

    fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        for w in self.workers {
            let _ = w.join();
        }
        tracing::info!(addr = %self.local, "stopped serving NTP");
    }
}

impl NtpServer {
    /// Binds every address (each `threads` times, with SO_REUSEPORT) and starts serving.
    /// Addresses that cannot be bound are logged; it fails only if none can.
    pub fn start(
        listen: &[SocketAddr],
        threads: usize,
        timestamping: Timestamping,
        shared: Arc<Shared>,
    ) -> anyhow::Result<NtpServer> {
        let mut server = NtpServer {
            shared,
            threads,
            timestamping,
            groups: Vec::new(),
            poller: Poller::default(),
        };
        server.listen_on(listen);
        if server.groups.is_empty() {
            anyhow::bail!("could not listen on any of {listen:?}");
        }
        Ok(server)
    }

    /// Serves exactly `listen`: stops the addresses no longer listed and opens the new ones,
    /// leaving the others' sockets untouched.
    pub fn listen_on(&mut self, listen: &[SocketAddr]) {
        let (keep, gone) = std::mem::take(&mut self.groups)
            .into_iter()
            .partition(|g| listen.contains(&g.requested));
        self.groups = keep;
        gone.into_iter().for_each(Group::stop);
        for addr in listen {
            if self.groups.iter().any(|g| g.requested == *addr) {
                continue;
            }
            let (threads, timestamping) = (self.threads, self.timestamping);
            match Group::start(*addr, threads, timestamping, &self.shared, &mut self.poller) {
                Ok(g) => self.groups.push(g),
                Err(e) => tracing::error!("{e:#}"),
            }
        }
        let stamping = self
            .groups
            .iter()
            .flat_map(|g| g.stamping.clone())
            .collect();
        if let Ok(mut shown) = self.shared.stats.timestamping.lock() {
            *shown = stamping;
        }
    }

    /// Stops the workers and waits for them (at most one `STOP_CHECK` each).
    pub fn stop(self) {
        self.groups.into_iter().for_each(Group::stop);
        self.poller.stop();
    }
}

fn new_limiter(policy: &Policy) -> Option<RateLimiter> {
    policy
        .needs_limiter()
        .then(|| RateLimiter::new(policy.limits))
}

/// Mode 6 clients: monitoring hosts, a few. The limiter always applies to them, with the NTP
/// limits but no leak, since a control answer is larger than its request.
fn control_limits(policy: &Policy) -> ratelimit::Params {
    ratelimit::Params {
        max_clients: 256,
        leak: 0.0,
        ..policy.limits
    }
}

fn serve(
    socket: UdpSocket,
    stamps: Timestamping,
    hardware: Option<SocketHardware>,
    shared: &Shared,
    stop: &AtomicBool,
) {
    let mut recv = RecvBatch::default();
    // With kernel transmit timestamps: their error queue, and the interleaved mode they allow.
    let mut looped = RecvBatch::default();
    let mut xleave = (stamps != Timestamping::User)
        .then(|| Interleave::new(shared.policy.load().limits.max_clients));
    let mut due = txstamp::Awaited::default();
    let mut send = Box::<SendBatch>::default();
    if hardware.is_some() {
        send.stamp_in_hardware();
    }
    let mut replies: Vec<(Reply, usize)> = Vec::with_capacity(BATCH);
    let mut send_time = SendTime::default();
    let (mut work, mut leads) = (Vec::with_capacity(BATCH), Vec::with_capacity(BATCH));
    let mut policy = shared.policy.load_full();
    let mut limiter = new_limiter(&policy);
    let mut control_limiter = RateLimiter::new(control_limits(&policy));
    while !stop.load(Ordering::Relaxed) {
        // Hardware transmit stamps come some time after the send: while some are due, wait for
        // them as for requests, since they do not wake a blocking receive.
        if let (Some(wait), Some(table)) = (due.hardware_wait(Instant::now()), xleave.as_mut()) {
            let ready = if wait.is_zero() {
                let lost = due.lost() as u64;
                let fallback = &shared.stats.hw.tx_fallback;
                fallback.fetch_add(lost, Ordering::Relaxed);
                None
            } else {
                udp::wait(&socket, wait.min(STOP_CHECK)).ok()
            };
            if ready.is_some_and(|r| r.errors) {
                let clock = shared.clock.load();
                let queue = (&socket, &mut looped);
                take_stamps(queue, table, &clock, hardware.as_ref(), shared, &mut due);
            }
            if !ready.is_some_and(|r| r.datagrams) {
                continue;
            }
        }
        let n = match recv.recv(&socket) {
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) =>
            {
                continue
            }
            Err(e) => {
                tracing::warn!(error = %e, "receive failed");
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        let clock = shared.clock.load();
        // Only sockets with hardware timestamps load their clocks: once a batch, no lock.
        let hw_clocks = hardware
            .as_ref()
            .map(|h| (h, shared.stats.hw_clocks.load()));
        let current = shared.policy.load();
        if !Arc::ptr_eq(&current, &policy) {
            policy = arc_swap::Guard::into_inner(current);
            limiter = match limiter {
                Some(mut l)
                    if policy.needs_limiter()
                        && l.params().max_clients == policy.limits.max_clients =>
                {
                    l.set_params(policy.limits);
                    Some(l)
                }
                _ => new_limiter(&policy),
            };
            control_limiter.set_params(control_limits(&policy));
        }
        let (mut stamped, mut stamped_hardware) = (0, 0);
        for i in 0..n {
            let r = recv.get(i);
            if control::is_control(r.data) {
                let view = shared.control.load();
                answer_control(
                    &socket,
                    &r,
                    shared,
                    &clock,
                    &view,
                    &policy,
                    &mut control_limiter,
                );
                continue;
            }
            let mut stamp = false;
            let outcome = match r.peer.socket_addr() {
                Some(from) if from.port() != 0 => {
                    shared.stats.clients.observe(from.ip());
                    let mut rx = r.rx.unwrap_or_else(realtime_now);
                    if let Some((h, clocks)) = &hw_clocks {
                        let clocks = hwclock::Clocks {
                            clocks,
                            stepped: clock.changes.stepped,
                        };
                        let stamp = h.received(&clocks, &r, from.is_ipv4(), rx);
                        let counts = &shared.stats.hw;
                        hwclock::count(stamp, &counts.rx, &counts.rx_fallback);
                        if let Stamp::Hardware(t) = stamp {
                            rx = t;
                        }
                    }
                    let out = send.next_buf();
                    let mut d = respond::respond(
                        r.data,
                        from.ip(),
                        rx,
                        &clock,
                        &policy,
                        limiter.as_mut(),
                        out,
                    );
                    if let (Some(table), Decision::Reply(reply)) = (xleave.as_mut(), &mut d) {
                        stamp = table.reply(reply, from.ip(), r.data, out, &shared.stats);
                    }
                    d
                }
                _ => Decision::Drop(Outcome::DropBadSource),
            };
            match outcome {
                Decision::Reply(reply) => {
                    replies.push((reply, r.data.len()));
                    send.push(reply.len, r.peer, stamp);
                    stamped += usize::from(stamp);
                    let by_hardware = stamp
                        && hardware
                            .as_ref()
                            .is_some_and(|h| h.interface(r.interface).is_some());
                    stamped_hardware += usize::from(by_hardware);
                }
                Decision::Drop(o) => shared.stats.count(o),
            }
        }
        // Transmit timestamps are taken last, each as its reply is finished, plus the time
        // until that reply is predicted to leave (see `send_time`).
        work.clear();
        work.extend(replies.iter().map(|(reply, _)| Work::of(reply)));
        send_time.leads(&work, &mut leads);
        let mut started = realtime_now();
        for (i, (reply, request_len)) in replies.drain(..).enumerate() {
            let (buf, len) = send.reply_mut(i);
            let now = realtime_now();
            if i > 0 {
                send_time.finished(work[i - 1], now.seconds_since(started));
            }
            started = now;
            *len = respond::finish(&reply, buf, now.add_secs_f64(leads[i]), &clock, &policy);
            debug_assert!(*len <= request_len, "reply longer than request");
            shared.stats.count(reply.outcome);
        }
        if !send.is_empty() {
            let queued = send.len();
            let sending = realtime_now();
            send_time.finished(work[queued - 1], sending.seconds_since(started));
            let sent = send.send(&socket);
            send_time.sent(sent, realtime_now().seconds_since(sending));
            for _ in sent..queued {
                shared.stats.count(Outcome::DropSendFailed);
            }
            due.sent(stamped, stamped_hardware, Instant::now());
            if let (Some(table), true) = (xleave.as_mut(), due.first > 0) {
                let queue = (&socket, &mut looped);
                take_stamps(queue, table, &clock, hardware.as_ref(), shared, &mut due);
            }
        }
    }
}

/// Reads the transmit stamps on the error queue of `queue`'s socket into `table`
/// (`txstamp::collect`) and keeps the books of those still `due`.
fn take_stamps(
    (socket, looped): (&UdpSocket, &mut RecvBatch),
    table: &mut Interleave,
    clock: &ClockSnapshot,
    hardware: Option<&SocketHardware>,
    shared: &Shared,
    due: &mut txstamp::Awaited,
) {
    let hardware = hardware.map(|h| (h, shared));
    let found = txstamp::collect(socket, looped, table, clock, hardware);
    due.got(&found, Instant::now());
    let first = found.first as u64;
    shared.stats.tx_stamps.fetch_add(first, Ordering::Relaxed);
}

/// Answers a mode 6 request (rare, a few fragments) at once rather than through the batch.
fn answer_control(
    socket: &UdpSocket,
    r: &Received,
    shared: &Shared,
    clock: &ClockSnapshot,
    view: &ControlView,
    policy: &Policy,
    limiter: &mut RateLimiter,
) {
    let Some(from) = r.peer.socket_addr().filter(|a| a.port() != 0) else {
        return shared.stats.count(Outcome::DropBadSource);
    };
    let now = r.rx.unwrap_or_else(realtime_now);
    match control::respond(r.data, from.ip(), now, clock, view, policy, limiter) {
        control::Decision::Reply(fragments, outcome) => {
            shared.stats.count(outcome);
            for f in &fragments {
                if let Err(e) = udp::send_one(socket, f, &r.peer) {
                    tracing::debug!(error = %e, "control reply not sent");
                    shared.stats.count(Outcome::DropSendFailed);
                }
            }
        }
        control::Decision::Drop(outcome) => shared.stats.count(outcome),
    }
}
