//! The UDP socket adapter: batched receive with kernel receive timestamps (SO_TIMESTAMPNS) and
//! destination addresses (IP_PKTINFO), batched send from the address each request was sent to.
//! Only Linux system calls live here; the decisions are in `respond`.

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd};
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};

use crate::time::Realtime;

pub const BATCH: usize = 32;
/// One byte more than the largest request considered: a longer datagram arrives cut to this
/// length, which `respond` drops as oversized.
const RECV_BUF: usize = super::packet::MAX_REQUEST_LEN + 1;
/// Room for a receive timestamp in both forms (SO_TIMESTAMPNS and SO_TIMESTAMPING), the
/// destination address and, on the error queue, the extended error.
const CONTROL_LEN: usize = 256;

/// Makes the kernel hand every datagram from one client address (IPv6: its /64) to the same
/// socket of a SO_REUSEPORT group of `sockets`, so that the rate limit of each thread's table
/// is a client's whole limit. By default the kernel hashes source ports too, and a client
/// sending from many ports got `sockets` times its limit. A classic BPF program returns the
/// socket's index: the source address modulo `sockets`.
pub fn steer_by_source(socket: &UdpSocket, ipv6: bool, sockets: u32) -> io::Result<()> {
    let stmt = |code: u32, k: u32| libc::sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    };
    // The network header, whatever the offset of the data the program sees (the payload).
    let net = |offset: u32| (libc::SKF_NET_OFF as u32).wrapping_add(offset);
    let load = libc::BPF_LD | libc::BPF_W | libc::BPF_ABS;
    let mut program = match ipv6 {
        // The source's /64: the XOR of its two first words.
        true => vec![
            stmt(load, net(8)),
            stmt(libc::BPF_MISC | libc::BPF_TAX, 0),
            stmt(load, net(12)),
            stmt(libc::BPF_ALU | libc::BPF_XOR | libc::BPF_X, 0),
        ],
        false => vec![stmt(load, net(12))],
    };
    program.push(stmt(libc::BPF_ALU | libc::BPF_MOD | libc::BPF_K, sockets));
    program.push(stmt(libc::BPF_RET | libc::BPF_A, 0));
    let fprog = libc::sock_fprog {
        len: program.len() as u16,
        filter: program.as_mut_ptr(),
    };
    // SAFETY: `fprog` points at `program`, alive for the call; the kernel copies it.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ATTACH_REUSEPORT_CBPF,
            (&fprog as *const libc::sock_fprog).cast(),
            size_of::<libc::sock_fprog>() as libc::socklen_t,
        )
    };
    match rc {
        0 => Ok(()),
        _ => Err(io::Error::last_os_error()),
    }
}

/// Opens a UDP socket for the NTP service on `addr`.
pub fn bind(addr: SocketAddr, reuse_port: bool, read_timeout: Duration) -> io::Result<UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        // "[::]:123" means IPv6 only; list "0.0.0.0:123" too for IPv4.
        socket.set_only_v6(true)?;
    }
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    // The receive buffer stays at the system default (net.core.rmem_default, a few hundred
    // requests): a deeper queue only makes every client wait longer under overload.
    let fd = socket.as_raw_fd();
    // Without kernel timestamps (an emulator, an odd kernel) replies still work, stamped on
    // receipt in user space: worse by the scheduling delay, so say so.
    if let Err(e) = set_flag(fd, libc::SOL_SOCKET, libc::SO_TIMESTAMPNS) {
        tracing::warn!(%addr, "no kernel receive timestamps ({e}); using the time of reading");
    }
    // Only a wildcard socket needs to learn (and reply from) each request's destination.
    match addr.ip() {
        ip if !ip.is_unspecified() => {}
        IpAddr::V4(_) => set_flag(fd, libc::IPPROTO_IP, libc::IP_PKTINFO)?,
        IpAddr::V6(_) => set_flag(fd, libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO)?,
    }
    socket.bind(&addr.into())?;
    socket.set_read_timeout(Some(read_timeout))?;
    // SAFETY: the descriptor is owned by `socket`, whose ownership moves to the UdpSocket.
    Ok(unsafe { UdpSocket::from_raw_fd(socket.into_raw_fd()) })
}

/// What `wait` found on a socket.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Ready {
    /// Datagrams to receive.
    pub datagrams: bool,
    /// Messages on the error queue (looped-back transmit timestamps).
    pub errors: bool,
}

/// Waits at most `timeout` for a datagram or an error queue message on `socket`: a blocking
/// receive is not woken by the error queue, where hardware transmit stamps come some time
/// after the send.
pub fn wait(socket: &UdpSocket, timeout: std::time::Duration) -> io::Result<Ready> {
    let mut fd = libc::pollfd {
        fd: socket.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = timeout.as_millis().clamp(1, i32::MAX as u128) as i32;
    // SAFETY: one valid pollfd, alive across the call.
    match unsafe { libc::poll(&mut fd, 1, ms) } {
        n if n < 0 => Err(io::Error::last_os_error()),
        _ => Ok(Ready {
            datagrams: fd.revents & libc::POLLIN != 0,
            errors: fd.revents & libc::POLLERR != 0,
        }),
    }
}

fn set_flag(fd: i32, level: i32, name: i32) -> io::Result<()> {
    let one: libc::c_int = 1;
    // SAFETY: passes a valid pointer to a c_int and its size.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            &one as *const _ as *const libc::c_void,
            size_of::<libc::c_int>() as u32,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Where a datagram came from and which local address it was sent to.
#[derive(Clone, Copy)]
pub struct Peer {
    addr: libc::sockaddr_storage,
    addr_len: libc::socklen_t,
    local: Option<LocalAddr>,
}

#[derive(Clone, Copy)]
enum LocalAddr {
    V4(libc::in_pktinfo),
    V6(libc::in6_pktinfo),
}

impl Peer {
    pub fn socket_addr(&self) -> Option<SocketAddr> {
        // SAFETY: the family field says which sockaddr type the kernel wrote.
        unsafe {
            match self.addr.ss_family as i32 {
                libc::AF_INET => {
                    let a = &*(&self.addr as *const _ as *const libc::sockaddr_in);
                    let ip = Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
                    Some(SocketAddr::new(ip.into(), u16::from_be(a.sin_port)))
                }
                libc::AF_INET6 => {
                    let a = &*(&self.addr as *const _ as *const libc::sockaddr_in6);
                    let ip = Ipv6Addr::from(a.sin6_addr.s6_addr);
                    Some(SocketAddr::new(ip.into(), u16::from_be(a.sin6_port)))
                }
                _ => None,
            }
        }
    }
}

/// Buffers for receiving up to `BATCH` datagrams with one recvmmsg call.
pub struct RecvBatch {
    bufs: Box<[[u8; RECV_BUF]; BATCH]>,
    control: Box<[Control<CONTROL_LEN>; BATCH]>,
    addrs: [libc::sockaddr_storage; BATCH],
    iovecs: [libc::iovec; BATCH],
    headers: [libc::mmsghdr; BATCH],
}

/// One received datagram.
pub struct Received<'a> {
    pub data: &'a [u8],
    pub peer: Peer,
    /// Kernel receive timestamp, if the kernel gave one.
    pub rx: Option<Realtime>,
    /// The network interface's own timestamp (nanoseconds of its hardware clock), on sockets
    /// that ask for them (`hwstamp::enable_socket`) and interfaces that give them.
    pub hw: Option<i64>,
    /// The interface it came in (or, on the error queue, left) by, if the kernel said.
    pub interface: Option<u32>,
    /// Its length as a frame (link-layer headers and all), with a hardware stamp.
    pub frame_len: Option<u32>,
}

impl Default for RecvBatch {
    fn default() -> Self {
        // SAFETY: all-zero is a valid value for these plain C structs.
        unsafe {
            RecvBatch {
                bufs: Box::new([[0; RECV_BUF]; BATCH]),
                control: Box::new([Control([0; CONTROL_LEN]); BATCH]),
                addrs: zeroed(),
                iovecs: zeroed(),
                headers: zeroed(),
            }
        }
    }
}

impl RecvBatch {
    /// Blocks until at least one datagram arrives (or the socket's read timeout), then takes
    /// whatever else is already queued, up to `BATCH`.
    pub fn recv(&mut self, socket: &UdpSocket) -> io::Result<usize> {
        self.recv_flags(socket, libc::MSG_WAITFORONE)
    }

    /// Takes up to `BATCH` messages waiting on the socket's error queue, without blocking: the
    /// sent datagrams the kernel looped back with their transmit timestamps (`Received::rx`
    /// is then the transmit time, and `data` the whole frame as it left).
    pub fn recv_errqueue(&mut self, socket: &UdpSocket) -> io::Result<usize> {
        self.recv_flags(socket, libc::MSG_ERRQUEUE | libc::MSG_DONTWAIT)
    }

    fn recv_flags(&mut self, socket: &UdpSocket, flags: i32) -> io::Result<usize> {
        for i in 0..BATCH {
            self.iovecs[i] = libc::iovec {
                iov_base: self.bufs[i].as_mut_ptr().cast(),
                iov_len: RECV_BUF,
            };
            let h = &mut self.headers[i].msg_hdr;
            h.msg_name = (&mut self.addrs[i] as *mut libc::sockaddr_storage).cast();
            h.msg_namelen = size_of::<libc::sockaddr_storage>() as u32;
            h.msg_iov = &mut self.iovecs[i];
            h.msg_iovlen = 1;
            h.msg_control = self.control[i].0.as_mut_ptr().cast();
            h.msg_controllen = CONTROL_LEN;
            h.msg_flags = 0;
            self.headers[i].msg_len = 0;
        }
        // SAFETY: every header points into buffers owned by self that outlive the call.
        let n = unsafe {
            libc::recvmmsg(
                socket.as_raw_fd(),
                self.headers.as_mut_ptr(),
                BATCH as u32,
                flags,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(n as usize)
        }
    }

    pub fn get(&self, i: usize) -> Received<'_> {
        let h = &self.headers[i];
        let len = (h.msg_len as usize).min(RECV_BUF);
        let c = parse_control(&h.msg_hdr);
        Received {
            data: &self.bufs[i][..len],
            peer: Peer {
                addr: self.addrs[i],
                addr_len: h.msg_hdr.msg_namelen,
                local: c.local,
            },
            rx: c.rx,
            hw: c.hw,
            interface: c.interface,
            frame_len: c.frame_len,
        }
    }
}

/// `SCM_TIMESTAMPING_PKTINFO` of asm-generic/socket.h (not in the libc crate for glibc): the
/// interface a hardware-stamped datagram came in by (SOF_TIMESTAMPING_OPT_PKTINFO).
const SCM_TIMESTAMPING_PKTINFO: i32 = 58;

/// `struct scm_ts_pktinfo` of linux/net_tstamp.h.
#[repr(C)]
#[derive(Clone, Copy)]
struct ScmTsPktinfo {
    if_index: u32,
    pkt_length: u32,
    reserved: [u32; 2],
}

/// What the control messages of one datagram said.
#[derive(Default)]
struct Controls {
    rx: Option<Realtime>,
    hw: Option<i64>,
    interface: Option<u32>,
    frame_len: Option<u32>,
    local: Option<LocalAddr>,
}

/// A timestamp's seconds and nanoseconds, `None` when the kernel left it zero (not given).
// time_t and long are 32 bits on a 32-bit Pi OS: the casts are needed there.
#[allow(clippy::unnecessary_cast)]
fn given(ts: &libc::timespec) -> Option<(i64, i64)> {
    let (secs, nanos) = (ts.tv_sec as i64, ts.tv_nsec as i64);
    (secs != 0 || nanos != 0).then_some((secs, nanos))
}

fn parse_control(h: &libc::msghdr) -> Controls {
    let mut got = Controls::default();
    let mut pktinfo_index = None;
    // SAFETY: the CMSG macros walk the control buffer the kernel filled, within msg_controllen;
    // each message is read as the type its level and type say the kernel wrote.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(h);
        while !c.is_null() {
            let data = libc::CMSG_DATA(c);
            match ((*c).cmsg_level, (*c).cmsg_type) {
                (libc::SOL_SOCKET, libc::SCM_TIMESTAMPNS) => {
                    let ts = std::ptr::read_unaligned(data as *const libc::timespec);
                    got.rx = Some(Realtime::from_timespec(ts.tv_sec as i64, ts.tv_nsec as i64));
                }
                // SO_TIMESTAMPING: software, (deprecated), raw hardware; each zero when not
                // given. On the error queue these are the transmit time.
                (libc::SOL_SOCKET, libc::SCM_TIMESTAMPING) => {
                    let ts = std::ptr::read_unaligned(data as *const [libc::timespec; 3]);
                    if let Some((s, ns)) = given(&ts[0]) {
                        got.rx = Some(Realtime::from_timespec(s, ns));
                    }
                    got.hw = given(&ts[2])
                        .and_then(|(s, ns)| s.checked_mul(1_000_000_000)?.checked_add(ns));
                }
                (libc::SOL_SOCKET, SCM_TIMESTAMPING_PKTINFO) => {
                    let info = std::ptr::read_unaligned(data as *const ScmTsPktinfo);
                    got.interface = Some(info.if_index);
                    got.frame_len = Some(info.pkt_length);
                }
                (libc::IPPROTO_IP, libc::IP_PKTINFO) => {
                    let info = std::ptr::read_unaligned(data as *const libc::in_pktinfo);
                    pktinfo_index = u32::try_from(info.ipi_ifindex).ok();
                    got.local = Some(LocalAddr::V4(info));
                }
                (libc::IPPROTO_IPV6, libc::IPV6_PKTINFO) => {
                    let info = std::ptr::read_unaligned(data as *const libc::in6_pktinfo);
                    pktinfo_index = Some(info.ipi6_ifindex);
                    got.local = Some(LocalAddr::V6(info));
                }
                _ => {}
            }
            c = libc::CMSG_NXTHDR(h, c);
        }
    }
    got.interface = got.interface.or(pktinfo_index).filter(|&i| i != 0);
    got
}

/// Replies waiting to be sent with one sendmmsg call.
pub struct SendBatch {
    pub bufs: [[u8; super::packet::MAX_REPLY_LEN]; BATCH],
    lens: [usize; BATCH],
    peers: [Option<Peer>; BATCH],
    /// Ask the kernel for this datagram's transmit timestamp.
    stamp: [bool; BATCH],
    /// Which: software, or the interface's where it has them too.
    stamp_flags: u32,
    control: [Control<64>; BATCH],
    iovecs: [libc::iovec; BATCH],
    headers: [libc::mmsghdr; BATCH],
    count: usize,
}

impl Default for SendBatch {
    fn default() -> Self {
        // SAFETY: all-zero is a valid value for these plain C structs.
        unsafe {
            SendBatch {
                bufs: [[0; super::packet::MAX_REPLY_LEN]; BATCH],
                lens: [0; BATCH],
                peers: [None; BATCH],
                stamp: [false; BATCH],
                stamp_flags: libc::SOF_TIMESTAMPING_TX_SOFTWARE,
                control: [Control([0; 64]); BATCH],
                iovecs: zeroed(),
                headers: zeroed(),
                count: 0,
            }
        }
    }
}

impl SendBatch {
    /// Asks for the interface's transmit timestamps too, for a socket some of whose interfaces
    /// stamp in hardware. A datagram the driver stamps comes back twice, software stamp first
    /// (the socket asks for both: `hwstamp::enable_socket`).
    pub fn stamp_in_hardware(&mut self) {
        self.stamp_flags |= libc::SOF_TIMESTAMPING_TX_HARDWARE;
    }

    /// The buffer for the next reply.
    pub fn next_buf(&mut self) -> &mut [u8; super::packet::MAX_REPLY_LEN] {
        &mut self.bufs[self.count]
    }

    /// Queues the reply written into `next_buf`, `len` bytes, for `peer`; with `stamp`, the
    /// kernel loops it back with its transmit timestamp (the socket must report software
    /// timestamps: `txstamp::enable_kernel`).
    pub fn push(&mut self, len: usize, peer: Peer, stamp: bool) {
        self.lens[self.count] = len;
        self.peers[self.count] = Some(peer);
        self.stamp[self.count] = stamp;
        self.count += 1;
    }

    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Mutable access to queued reply `i` (to add the transmit timestamp).
    pub fn reply_mut(&mut self, i: usize) -> (&mut [u8; super::packet::MAX_REPLY_LEN], &mut usize) {
        (&mut self.bufs[i], &mut self.lens[i])
    }

    /// Sends everything queued; returns how many the kernel took. The batch is emptied.
    pub fn send(&mut self, socket: &UdpSocket) -> usize {
        let count = std::mem::take(&mut self.count);
        for i in 0..count {
            let Some(peer) = self.peers[i].as_mut() else {
                continue;
            };
            self.iovecs[i] = libc::iovec {
                iov_base: self.bufs[i].as_mut_ptr().cast(),
                iov_len: self.lens[i],
            };
            let h = &mut self.headers[i].msg_hdr;
            h.msg_name = (&mut peer.addr as *mut libc::sockaddr_storage).cast();
            h.msg_namelen = peer.addr_len;
            h.msg_iov = &mut self.iovecs[i];
            h.msg_iovlen = 1;
            h.msg_flags = 0;
            let mut control_len = write_source(&mut self.control[i], peer.local);
            if self.stamp[i] {
                let flags = self.stamp_flags;
                control_len = write_cmsg(
                    &mut self.control[i],
                    control_len,
                    libc::SOL_SOCKET,
                    libc::SO_TIMESTAMPING,
                    &flags,
                );
            }
            h.msg_control = if control_len == 0 {
                std::ptr::null_mut()
            } else {
                self.control[i].0.as_mut_ptr().cast()
            };
            h.msg_controllen = control_len;
        }
        let (mut sent, mut failed) = (0, 0);
        while sent < count {
            // SAFETY: headers[sent..count] point into buffers owned by self.
            let n = unsafe {
                libc::sendmmsg(
                    socket.as_raw_fd(),
                    self.headers[sent..].as_mut_ptr(),
                    (count - sent) as u32,
                    0,
                )
            };
            if n <= 0 {
                // Skip the datagram the kernel refused (e.g. an unreachable address) and go on.
                let err = io::Error::last_os_error();
                if err.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                tracing::debug!(error = %err, "send failed");
                sent += 1;
                failed += 1;
                continue;
            }
            sent += n as usize;
        }
        count - failed
    }
}

/// Sends one datagram to `peer`, from the address its request was sent to.
pub fn send_one(socket: &UdpSocket, data: &[u8], peer: &Peer) -> io::Result<()> {
    let mut peer = *peer;
    let mut control = Control([0u8; 64]);
    let mut iov = libc::iovec {
        iov_base: data.as_ptr() as *mut libc::c_void,
        iov_len: data.len(),
    };
    // SAFETY: all-zero is a valid msghdr; every pointer set below outlives the call.
    let mut h: libc::msghdr = unsafe { zeroed() };
    h.msg_name = (&mut peer.addr as *mut libc::sockaddr_storage).cast();
    h.msg_namelen = peer.addr_len;
    h.msg_iov = &mut iov;
    h.msg_iovlen = 1;
    let control_len = write_source(&mut control, peer.local);
    if control_len > 0 {
        h.msg_control = control.0.as_mut_ptr().cast();
        h.msg_controllen = control_len;
    }
    // SAFETY: the header points at live buffers; sendmsg only reads the data.
    let n = unsafe { libc::sendmsg(socket.as_raw_fd(), &h, 0) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Writes a PKTINFO control message so the reply leaves from the address the request was sent
/// to (a wildcard socket on a host with several addresses would otherwise pick by route).
fn write_source(buf: &mut Control<64>, local: Option<LocalAddr>) -> usize {
    buf.0.fill(0);
    match local {
        None => 0,
        Some(LocalAddr::V4(info)) => {
            // SAFETY: all-zero is a valid in_pktinfo.
            let mut reply: libc::in_pktinfo = unsafe { zeroed() };
            reply.ipi_spec_dst = info.ipi_addr;
            write_cmsg(buf, 0, libc::IPPROTO_IP, libc::IP_PKTINFO, &reply)
        }
        Some(LocalAddr::V6(info)) => {
            write_cmsg(buf, 0, libc::IPPROTO_IPV6, libc::IPV6_PKTINFO, &info)
        }
    }
}

/// Writes one control message at byte `at` of `buf` (the end of those before it); returns the
/// end of this one.
fn write_cmsg<T: Copy, const N: usize>(
    buf: &mut Control<N>,
    at: usize,
    level: i32,
    kind: i32,
    value: &T,
) -> usize {
    // SAFETY: the assert keeps the message within the buffer; the buffer is aligned for
    // cmsghdr and `at` is a CMSG_SPACE multiple.
    unsafe {
        let space = libc::CMSG_SPACE(size_of::<T>() as u32) as usize;
        assert!(at + space <= buf.0.len(), "control messages overflow");
        let c = buf.0.as_mut_ptr().add(at) as *mut libc::cmsghdr;
        (*c).cmsg_level = level;
        (*c).cmsg_type = kind;
        (*c).cmsg_len = libc::CMSG_LEN(size_of::<T>() as u32) as usize;
        std::ptr::write_unaligned(libc::CMSG_DATA(c) as *mut T, *value);
        at + space
    }
}

/// A control-message buffer aligned for `cmsghdr`.
#[derive(Clone, Copy)]
#[repr(C, align(8))]
pub struct Control<const N: usize>([u8; N]);

#[cfg(test)]
mod tests {
    use super::*;

    fn timespec(sec: i64, nsec: i64) -> libc::timespec {
        libc::timespec {
            tv_sec: sec as _,
            tv_nsec: nsec as _,
        }
    }

    /// Parses the control messages that `write` puts into a buffer, as the kernel would hand
    /// them to `recvmmsg`.
    fn parse(write: impl Fn(&mut Control<CONTROL_LEN>) -> usize) -> Controls {
        let mut buf = Control([0u8; CONTROL_LEN]);
        let len = write(&mut buf);
        // SAFETY: all-zero is a valid msghdr; it points at `buf`, alive while it is parsed.
        let mut h: libc::msghdr = unsafe { zeroed() };
        h.msg_control = buf.0.as_mut_ptr().cast();
        h.msg_controllen = len;
        parse_control(&h)
    }

    #[test]
    fn a_hardware_stamp_comes_with_its_interface() {
        let stamps = [
            timespec(1_790_000_000, 5),
            timespec(0, 0),
            timespec(37, 123),
        ];
        let got = parse(|buf| {
            let at = write_cmsg(buf, 0, libc::SOL_SOCKET, libc::SCM_TIMESTAMPING, &stamps);
            let info = ScmTsPktinfo {
                if_index: 3,
                pkt_length: 90,
                reserved: [0; 2],
            };
            write_cmsg(buf, at, libc::SOL_SOCKET, SCM_TIMESTAMPING_PKTINFO, &info)
        });
        assert_eq!(got.rx, Some(Realtime::from_timespec(1_790_000_000, 5)));
        assert_eq!(got.hw, Some(37_000_000_123));
        assert_eq!((got.interface, got.frame_len), (Some(3), Some(90)));
    }

    #[test]
    fn a_transmit_stamp_from_hardware_alone_names_its_interface_by_pktinfo() {
        // On the error queue, the hardware and software stamps come in separate messages.
        let stamps = [timespec(0, 0), timespec(0, 0), timespec(12, 999_999_999)];
        let got = parse(|buf| {
            let at = write_cmsg(buf, 0, libc::SOL_SOCKET, libc::SCM_TIMESTAMPING, &stamps);
            // SAFETY: all-zero is a valid in_pktinfo.
            let mut info: libc::in_pktinfo = unsafe { zeroed() };
            info.ipi_ifindex = 7;
            write_cmsg(buf, at, libc::IPPROTO_IP, libc::IP_PKTINFO, &info)
        });
        assert_eq!(
            (got.rx, got.hw, got.interface),
            (None, Some(12_999_999_999), Some(7))
        );
        assert!(got.local.is_some());
    }

    #[test]
    fn a_software_stamp_alone_has_no_hardware_time() {
        let stamps = [timespec(1_790_000_000, 5), timespec(0, 0), timespec(0, 0)];
        let got =
            parse(|buf| write_cmsg(buf, 0, libc::SOL_SOCKET, libc::SCM_TIMESTAMPING, &stamps));
        assert_eq!(got.rx, Some(Realtime::from_timespec(1_790_000_000, 5)));
        assert_eq!((got.hw, got.interface), (None, None));
        // A hardware stamp too large for nanoseconds in an i64 is dropped, not wrapped.
        let stamps = [timespec(0, 0), timespec(0, 0), timespec(i64::MAX / 2, 0)];
        let got =
            parse(|buf| write_cmsg(buf, 0, libc::SOL_SOCKET, libc::SCM_TIMESTAMPING, &stamps));
        assert_eq!((got.rx, got.hw), (None, None));
    }
}
