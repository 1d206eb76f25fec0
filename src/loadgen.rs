//! `pitime bench-server`: a closed-loop NTP load generator. Many sockets, each bound to its own
//! loopback address (all of 127.0.0.0/8 is local on Linux), keep a window of requests in flight;
//! each reply is matched by its origin timestamp and immediately replaced. Reports replies per
//! second and latency percentiles. Batched system calls keep the generator cheaper per request
//! than the servers it measures.
//!
//! With `interleaved`, each request slot cycles through three requests (RFC 9769): a basic one;
//! one in interleaved form naming its reply's receive time, which a server stamping only the
//! replies of clients that interleave (pitime, chrony) answers in basic mode while taking the
//! kernel's transmit timestamp of that answer; and one naming that answer, whose interleaved
//! reply carries the kernel's time. Its difference from the transmit timestamp the basic answer
//! carried (read before the send) is the error interleaved mode removes.

use std::io;
use std::mem::zeroed;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use crate::ntp::keys::Key;
use crate::ntp::nts::aead::SessionKeys;
use crate::ntp::nts::client;
use crate::ntp::packet::{Header, HEADER_LEN};
use crate::time::NtpTimestamp;

const BATCH: usize = 64;
const MAX_PACKET: usize = crate::ntp::packet::MAX_REPLY_LEN;

#[derive(Clone, Debug)]
pub struct LoadOptions {
    pub server: SocketAddr,
    pub duration: Duration,
    pub warmup: Duration,
    /// Number of client sockets, each with its own source address when the server is IPv4.
    pub sources: usize,
    /// Requests in flight per socket.
    pub window: usize,
    /// A request unanswered this long is counted lost and sent again.
    pub timeout: Duration,
    /// Sign requests with this key (id, key).
    pub key: Option<(u32, Key)>,
    /// Alternate basic and interleaved requests, and measure the error of the basic T3.
    pub interleaved: bool,
    /// Send NTS requests with these keys and this cookie (from one key exchange): the server
    /// keeps no state per cookie, so one serves every request, and every request costs the
    /// server a cookie opened, a request authenticated and a fresh cookie and reply sealed.
    pub nts: Option<(SessionKeys, Vec<u8>)>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct LoadReport {
    pub seconds: f64,
    pub sent: u64,
    pub replies: u64,
    pub lost: u64,
    pub replies_per_second: f64,
    /// Latency percentiles in microseconds: p50, p90, p99, p99.9; lost requests count as the
    /// timeout.
    pub latency_us: [f64; 4],
    /// With `interleaved`: how many replies gave the server's kernel transmit time for one
    /// whose user-space time was seen, and the kernel's minus the user-space time of the same
    /// replies, microseconds: p50, p99, max.
    pub t3_samples: u64,
    pub t3_error_us: Option<[f64; 3]>,
}

impl LoadReport {
    pub fn to_json(&self) -> String {
        let [p50, p90, p99, p999] = self.latency_us;
        let t3 = match self.t3_error_us {
            Some([p50, p99, max]) => format!(
                ",\"t3_samples\":{},\"t3_error_us\":{{\"p50\":{p50:.2},\"p99\":{p99:.2},\"max\":{max:.2}}}",
                self.t3_samples
            ),
            None => String::new(),
        };
        format!(
            "{{\"seconds\":{:.3},\"sent\":{},\"replies\":{},\"lost\":{},\"replies_per_second\":{:.0},\
             \"latency_us\":{{\"p50\":{p50:.1},\"p90\":{p90:.1},\"p99\":{p99:.1},\"p99.9\":{p999:.1}}}{t3}}}",
            self.seconds, self.sent, self.replies, self.lost, self.replies_per_second
        )
    }
}

struct Slot {
    seq: u32,
    sent_at: Option<Instant>,
    /// The receive and transmit timestamps of this slot's last basic reply, and whether it
    /// answered a request in interleaved form (the server stamped it), while the next request
    /// names it.
    basic: Option<(NtpTimestamp, NtpTimestamp, bool)>,
}

struct Flow {
    socket: UdpSocket,
    slots: Vec<Slot>,
    /// UDP segmentation offload works here (cleared at the first failure).
    gso: bool,
}

struct Tally {
    measuring: bool,
    sent: u64,
    replies: u64,
    lost: u64,
    latencies_ns: Vec<u32>,
    /// Kernel minus user-space transmit time of the same reply, nanoseconds (within ±2 s).
    t3_errors_ns: Vec<i32>,
}

/// Runs the load and returns what it measured.
pub fn run(opts: &LoadOptions) -> io::Result<LoadReport> {
    let mut flows = (0..opts.sources.max(1))
        .map(|i| open_flow(opts, i))
        .collect::<io::Result<Vec<_>>>()?;
    let mut tally = Tally::new(false);
    let mut out = [[0u8; MAX_PACKET]; BATCH];
    let mut inbuf = [[0u8; MAX_PACKET]; BATCH];
    let mut inlens = [0usize; BATCH];
    let start = Instant::now();
    let measure_from = start + opts.warmup;
    let end = measure_from + opts.duration;
    for (f, flow) in flows.iter_mut().enumerate() {
        let slots: Vec<usize> = (0..flow.slots.len()).collect();
        send_slots(flow, f, &slots, opts, &mut out, &mut tally);
    }
    let mut last_scan = Instant::now();
    let mut ready = Vec::with_capacity(BATCH);
    loop {
        let now = Instant::now();
        if now >= end {
            break;
        }
        if !tally.measuring && now >= measure_from {
            tally = Tally::new(true);
        }
        for (f, flow) in flows.iter_mut().enumerate() {
            ready.clear();
            let n = recv_batch(&flow.socket, &mut inbuf, &mut inlens);
            let now = Instant::now();
            for (data, len) in inbuf.iter().zip(inlens).take(n) {
                let Some(h) = Header::parse(&data[..len]) else {
                    continue;
                };
                // A reply echoes the id: the transmit field of a basic request, the receive field
                // of one in interleaved form, whose transmit field (echoed by a basic reply) is
                // the id's complement.
                let echoed = (h.origin.0 >> 48) as usize == f;
                let id = match echoed || !opts.interleaved {
                    true => h.origin.0,
                    false => !h.origin.0,
                };
                let (slot, seq) = (((id >> 32) & 0xffff) as usize, id as u32);
                if (id >> 48) as usize != f || slot >= flow.slots.len() {
                    continue;
                }
                let s = &mut flow.slots[slot];
                if let (Some(at), true) = (s.sent_at, s.seq == seq) {
                    if tally.measuring {
                        tally.replies += 1;
                        tally.latencies_ns.push(nanos_u32(now.duration_since(at)));
                    }
                    if opts.interleaved {
                        tally.interleave(s, &h, echoed);
                    }
                    s.sent_at = None;
                    ready.push(slot);
                }
            }
            if !ready.is_empty() {
                send_slots(flow, f, &ready, opts, &mut out, &mut tally);
            }
        }
        if now.duration_since(last_scan) > opts.timeout / 4 {
            last_scan = now;
            for (f, flow) in flows.iter_mut().enumerate() {
                ready.clear();
                for (i, s) in flow.slots.iter_mut().enumerate() {
                    if s.sent_at
                        .is_some_and(|at| now.duration_since(at) > opts.timeout)
                    {
                        // A lost request counts in the percentiles at the timeout: a server
                        // that drops requests must not look faster for it.
                        if tally.measuring {
                            tally.lost += 1;
                            tally.latencies_ns.push(nanos_u32(opts.timeout));
                        }
                        s.sent_at = None;
                        ready.push(i);
                    }
                }
                if !ready.is_empty() {
                    send_slots(flow, f, &ready, opts, &mut out, &mut tally);
                }
            }
        }
    }
    let seconds = opts.duration.as_secs_f64();
    let mut lat = tally.latencies_ns;
    lat.sort_unstable();
    let pct = |p| percentile(&lat, p);
    let mut t3 = tally.t3_errors_ns;
    t3.sort_unstable();
    Ok(LoadReport {
        seconds,
        sent: tally.sent,
        replies: tally.replies,
        lost: tally.lost,
        replies_per_second: tally.replies as f64 / seconds,
        latency_us: [pct(0.5), pct(0.9), pct(0.99), pct(0.999)],
        t3_samples: t3.len() as u64,
        t3_error_us: opts.interleaved.then(|| {
            [
                percentile(&t3, 0.5),
                percentile(&t3, 0.99),
                percentile(&t3, 1.0),
            ]
        }),
    })
}

/// The `p` quantile of sorted nanoseconds, in microseconds.
fn percentile<T: Copy + Into<f64>>(sorted: &[T], p: f64) -> f64 {
    match sorted.len() {
        0 => f64::NAN,
        n => sorted[((n - 1) as f64 * p).round() as usize].into() / 1000.0,
    }
}

impl Tally {
    fn new(measuring: bool) -> Tally {
        Tally {
            measuring,
            sent: 0,
            replies: 0,
            lost: 0,
            latencies_ns: Vec::with_capacity(if measuring { 1 << 22 } else { 0 }),
            t3_errors_ns: Vec::new(),
        }
    }

    /// Accounts a reply to slot `s` in the cycle: a basic reply's timestamps are kept for the
    /// next request to name; an interleaved reply naming a stamped basic one gives the error of
    /// that one's T3, and the cycle starts again.
    fn interleave(&mut self, s: &mut Slot, reply: &Header, echoed_receive: bool) {
        // A reply echoing the id answered a request in interleaved form if the slot sent one.
        let asked = s.basic.is_some();
        match s.basic.take() {
            Some((_, user_tx, true)) if echoed_receive => {
                if self.measuring {
                    let diff = reply.transmit.0.wrapping_sub(user_tx.0) as i64;
                    let nanos = (diff as i128 * 1_000_000_000) >> 32;
                    self.t3_errors_ns
                        .push(nanos.clamp(i32::MIN.into(), i32::MAX.into()) as i32);
                }
            }
            // Interleaved about a reply the server had not been asked to stamp: start again.
            Some(_) if echoed_receive => {}
            _ => s.basic = Some((reply.receive, reply.transmit, asked)),
        }
    }
}

/// Latencies are kept as u32 nanoseconds (up to 4.3 s) to halve the memory of a long run.
fn nanos_u32(d: Duration) -> u32 {
    d.as_nanos().min(u32::MAX as u128) as u32
}

fn open_flow(opts: &LoadOptions, index: usize) -> io::Result<Flow> {
    let local: SocketAddr = match opts.server.ip() {
        // 127.1.0.1, 127.1.0.2, ...: a distinct client address per socket.
        IpAddr::V4(v4) if v4.is_loopback() => {
            let n = index as u32 + 1;
            (Ipv4Addr::new(127, 1, (n >> 8) as u8, n as u8), 0).into()
        }
        IpAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        IpAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let socket = UdpSocket::bind(local)?;
    socket.connect(opts.server)?;
    socket.set_nonblocking(true)?;
    let slots = (0..opts.window.clamp(1, u16::MAX as usize))
        .map(|_| Slot {
            seq: 0,
            sent_at: None,
            basic: None,
        })
        .collect();
    Ok(Flow {
        socket,
        slots,
        gso: true,
    })
}

fn send_slots(
    flow: &mut Flow,
    f: usize,
    slots: &[usize],
    opts: &LoadOptions,
    out: &mut [[u8; MAX_PACKET]; BATCH],
    tally: &mut Tally,
) {
    for chunk in slots.chunks(BATCH) {
        let mut len = 0;
        for (k, &slot) in chunk.iter().enumerate() {
            let s = &mut flow.slots[slot];
            s.seq = s.seq.wrapping_add(1);
            let id = (f as u64) << 48 | (slot as u64) << 32 | s.seq as u64;
            let header = match s.basic {
                // Name the basic reply's receive time; an interleaved reply echoes `receive`.
                Some((rx, ..)) => Header {
                    origin: rx,
                    receive: NtpTimestamp(id),
                    ..Header::client_request(6, NtpTimestamp(!id))
                },
                None => Header::client_request(6, NtpTimestamp(id)),
            };
            len = write_request(&mut out[k], &header, opts);
        }
        let now = Instant::now();
        let sent = send_batch(flow, &mut out[..chunk.len()], len);
        for &slot in chunk {
            // Unsent requests time out and are sent again, like lost ones.
            flow.slots[slot].sent_at = Some(now);
        }
        tally.sent += if tally.measuring { sent as u64 } else { 0 };
    }
}

fn write_request(buf: &mut [u8; MAX_PACKET], header: &Header, opts: &LoadOptions) -> usize {
    if let Some((session, cookie)) = &opts.nts {
        // The nonce and identifier need not differ: the server remembers neither.
        let nonce = [7u8; 16];
        let nonce = &nonce[..session.algorithm.nonce_len()];
        return client::write_request(buf, header, &[0x5a; 32], cookie, 0, session, nonce);
    }
    header.write((&mut buf[..HEADER_LEN]).try_into().expect("header fits"));
    let Some((id, key)) = &opts.key else {
        return HEADER_LEN;
    };
    key.sign(*id, buf, HEADER_LEN)
}

/// Sends equal-length requests. With UDP segmentation offload (Linux 4.18+) the batch goes down
/// as one datagram train in one system call, which keeps the generator cheaper per request than
/// the servers it measures; without it, one sendmmsg.
fn send_batch(flow: &mut Flow, bufs: &mut [[u8; MAX_PACKET]], len: usize) -> usize {
    if flow.gso && bufs.len() > 1 {
        let mut train = [0u8; MAX_PACKET * BATCH];
        for (i, b) in bufs.iter().enumerate() {
            train[i * len..(i + 1) * len].copy_from_slice(&b[..len]);
        }
        match send_segmented(&flow.socket, &train[..len * bufs.len()], len as u16) {
            Ok(_) => return bufs.len(),
            Err(_) => flow.gso = false,
        }
    }
    // SAFETY: zeroed iovec/mmsghdr are valid; each points into `bufs`, alive across the call.
    unsafe {
        let mut iov: [libc::iovec; BATCH] = zeroed();
        let mut hdrs: [libc::mmsghdr; BATCH] = zeroed();
        for i in 0..bufs.len() {
            iov[i] = libc::iovec {
                iov_base: bufs[i].as_mut_ptr().cast(),
                iov_len: len,
            };
            hdrs[i].msg_hdr.msg_iov = &mut iov[i];
            hdrs[i].msg_hdr.msg_iovlen = 1;
        }
        let n = libc::sendmmsg(
            flow.socket.as_raw_fd(),
            hdrs.as_mut_ptr(),
            bufs.len() as u32,
            0,
        );
        n.max(0) as usize
    }
}

fn send_segmented(socket: &UdpSocket, train: &[u8], segment: u16) -> io::Result<usize> {
    #[repr(C, align(8))]
    struct Control([u8; 32]);
    let mut control = Control([0; 32]);
    // SAFETY: one cmsg carrying a u16 fits in 32 aligned bytes; iov points into `train`.
    unsafe {
        let mut iov = libc::iovec {
            iov_base: train.as_ptr() as *mut _,
            iov_len: train.len(),
        };
        let mut h: libc::msghdr = zeroed();
        h.msg_iov = &mut iov;
        h.msg_iovlen = 1;
        h.msg_control = control.0.as_mut_ptr().cast();
        h.msg_controllen = libc::CMSG_SPACE(2) as usize;
        let c = libc::CMSG_FIRSTHDR(&h);
        (*c).cmsg_level = libc::SOL_UDP;
        (*c).cmsg_type = libc::UDP_SEGMENT;
        (*c).cmsg_len = libc::CMSG_LEN(2) as usize;
        std::ptr::write_unaligned(libc::CMSG_DATA(c) as *mut u16, segment);
        let n = libc::sendmsg(socket.as_raw_fd(), &h, 0);
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(n as usize)
        }
    }
}

fn recv_batch(
    socket: &UdpSocket,
    bufs: &mut [[u8; MAX_PACKET]; BATCH],
    lens: &mut [usize; BATCH],
) -> usize {
    // SAFETY: as in send_batch; MSG_DONTWAIT makes the call return at once when nothing waits.
    unsafe {
        let mut iov: [libc::iovec; BATCH] = zeroed();
        let mut hdrs: [libc::mmsghdr; BATCH] = zeroed();
        for i in 0..BATCH {
            iov[i] = libc::iovec {
                iov_base: bufs[i].as_mut_ptr().cast(),
                iov_len: MAX_PACKET,
            };
            hdrs[i].msg_hdr.msg_iov = &mut iov[i];
            hdrs[i].msg_hdr.msg_iovlen = 1;
        }
        let n = libc::recvmmsg(
            socket.as_raw_fd(),
            hdrs.as_mut_ptr(),
            BATCH as u32,
            libc::MSG_DONTWAIT,
            std::ptr::null_mut(),
        );
        let n = n.max(0) as usize;
        for i in 0..n {
            lens[i] = (hdrs[i].msg_len as usize).min(MAX_PACKET);
        }
        n
    }
}
