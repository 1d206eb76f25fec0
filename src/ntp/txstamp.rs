//! Kernel transmit timestamps (SO_TIMESTAMPING): the kernel loops each sent datagram back on the
//! socket's error queue with the time its driver took it, which is later and truer than any
//! time user space can read before `sendmmsg`. The datagram comes back as the whole frame that
//! left (link-layer, IP and UDP headers), so a reply is matched by its own contents: its
//! destination address and the timestamps it carries. Nothing needs to be remembered per send.

use std::io;
use std::mem::size_of;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, UdpSocket};
use std::os::fd::AsRawFd;

/// Where a socket's timestamps come from (`[server] timestamping`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Timestamping {
    /// Hardware where the interface has it, kernel otherwise.
    Auto,
    /// The network interface's own clock (PTP hardware clock).
    Hardware,
    /// The kernel's software timestamps, on receipt and as the driver sends.
    Kernel,
    /// Read in user space, before the send and after the receive.
    User,
}

impl Timestamping {
    pub const NAMES: [&'static str; 4] = ["auto", "hardware", "kernel", "user"];

    pub fn parse(name: &str) -> Option<Timestamping> {
        let all = [Self::Auto, Self::Hardware, Self::Kernel, Self::User];
        Self::NAMES
            .iter()
            .zip(all)
            .find(|(n, _)| **n == name)
            .map(|(_, t)| t)
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Hardware => "hardware",
            Self::Kernel => "kernel",
            Self::User => "user",
        }
    }
}

/// Moves `socket`'s kernel timestamps to SO_TIMESTAMPING: receive timestamps as before (one
/// control message: SO_TIMESTAMPNS goes off, or each datagram would carry two), and the
/// transmit timestamps asked for on its error queue. A server asks per datagram
/// (`SendBatch::push`), since the kernel's loop-back costs a copy of every stamped reply and
/// only clients in interleaved mode use them; a client, sending little, asks for `every_send`.
pub fn enable_kernel(socket: &UdpSocket, every_send: bool) -> io::Result<()> {
    let mut flags = libc::SOF_TIMESTAMPING_SOFTWARE | libc::SOF_TIMESTAMPING_RX_SOFTWARE;
    if every_send {
        flags |= libc::SOF_TIMESTAMPING_TX_SOFTWARE;
    }
    set_int(socket, libc::SO_TIMESTAMPING, flags as libc::c_int)?;
    disable_kernel_rx(socket)
}

/// Turns off the receive timestamps `udp::bind` asked for with SO_TIMESTAMPNS.
pub fn disable_kernel_rx(socket: &UdpSocket) -> io::Result<()> {
    set_int(socket, libc::SO_TIMESTAMPNS, 0)
}

pub(super) fn set_int(socket: &UdpSocket, name: i32, value: libc::c_int) -> io::Result<()> {
    // SAFETY: passes a valid pointer to a c_int and its size.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            name,
            (&value as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    match rc {
        0 => Ok(()),
        _ => Err(io::Error::last_os_error()),
    }
}

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86dd;
const ETHERTYPE_VLAN: u16 = 0x8100;
const IPPROTO_UDP: u8 = 17;

/// The destination and UDP payload of a looped-back frame: Ethernet (with at most one VLAN
/// tag) or bare IP (tunnels), IPv4 or IPv6 without extension headers. `None` for anything else,
/// or a frame cut short.
pub fn udp_payload(frame: &[u8]) -> Option<(IpAddr, &[u8])> {
    let be16 = |d: &[u8], at: usize| Some(u16::from_be_bytes(d.get(at..at + 2)?.try_into().ok()?));
    let ip = match be16(frame, 12)? {
        ETHERTYPE_IPV4 | ETHERTYPE_IPV6 => &frame[14..],
        ETHERTYPE_VLAN if matches!(be16(frame, 16)?, ETHERTYPE_IPV4 | ETHERTYPE_IPV6) => {
            &frame[18..]
        }
        _ => frame,
    };
    let (to, udp) = match ip.first()? >> 4 {
        4 => {
            let header = usize::from(ip[0] & 0x0f) * 4;
            if header < 20 || *ip.get(9)? != IPPROTO_UDP {
                return None;
            }
            let to: [u8; 4] = ip.get(16..20)?.try_into().ok()?;
            (IpAddr::V4(Ipv4Addr::from(to)), ip.get(header..)?)
        }
        6 => {
            if *ip.get(6)? != IPPROTO_UDP {
                return None;
            }
            let to: [u8; 16] = ip.get(24..40)?.try_into().ok()?;
            (IpAddr::V6(Ipv6Addr::from(to)), ip.get(40..)?)
        }
        _ => return None,
    };
    let len = usize::from(be16(udp, 4)?);
    Some((to, udp.get(8..len.max(8))?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn udp(payload: &[u8]) -> Vec<u8> {
        let mut u = vec![0x00, 0x7b, 0xd4, 0x31];
        u.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        u.extend_from_slice(&[0, 0]);
        u.extend_from_slice(payload);
        u
    }

    fn ipv4(to: [u8; 4], payload: &[u8]) -> Vec<u8> {
        let mut p = vec![
            0x45,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            64,
            IPPROTO_UDP,
            0,
            0,
            10,
            0,
            0,
            1,
        ];
        p.extend_from_slice(&to);
        p.extend_from_slice(&udp(payload));
        p
    }

    fn ethernet(ethertype: u16, ip: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&ethertype.to_be_bytes());
        f.extend_from_slice(ip);
        f
    }

    #[test]
    fn finds_the_payload_behind_ethernet_vlan_or_bare_ip() {
        let payload = [7u8; 48];
        let ip = ipv4([192, 0, 2, 9], &payload);
        let to: IpAddr = "192.0.2.9".parse().unwrap();
        let mut vlan = ethernet(ETHERTYPE_VLAN, &[0, 5, 0x08, 0x00]);
        vlan.extend_from_slice(&ip);
        for frame in [ethernet(ETHERTYPE_IPV4, &ip), vlan, ip.clone()] {
            assert_eq!(udp_payload(&frame), Some((to, &payload[..])));
        }
        let mut v6 = vec![0x60, 0, 0, 0, 0, 56, IPPROTO_UDP, 64];
        v6.extend_from_slice(&[0; 16]);
        v6.extend_from_slice(&Ipv6Addr::LOCALHOST.octets());
        v6.extend_from_slice(&udp(&payload));
        let frame = ethernet(ETHERTYPE_IPV6, &v6);
        assert_eq!(
            udp_payload(&frame),
            Some((IpAddr::V6(Ipv6Addr::LOCALHOST), &payload[..]))
        );
    }

    #[test]
    fn cut_or_foreign_frames_give_nothing() {
        let ip = ipv4([192, 0, 2, 9], &[7u8; 48]);
        let frame = ethernet(ETHERTYPE_IPV4, &ip);
        for len in 0..frame.len() {
            assert_eq!(udp_payload(&frame[..len]), None, "cut to {len}");
        }
        let mut tcp = frame.clone();
        tcp[14 + 9] = 6;
        assert_eq!(udp_payload(&tcp), None);
    }

    #[test]
    fn names_round_trip() {
        for name in Timestamping::NAMES {
            assert_eq!(Timestamping::parse(name).unwrap().name(), name);
        }
        assert_eq!(Timestamping::parse("hw"), None);
    }
}
