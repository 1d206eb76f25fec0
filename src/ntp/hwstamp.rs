//! What each network interface can timestamp (ETHTOOL_GET_TS_INFO), which timestamps it gets
//! from the configured `timestamping`, and turning hardware timestamps on: in the interface's
//! driver (SIOCSHWTSTAMP, which needs CAP_NET_ADMIN) and on a socket (SO_TIMESTAMPING).
//!
//! Hardware timestamps are stamped by the interface's own clock (a PTP hardware clock, read by
//! `phc` and fitted by `phc_fit`) and are converted to the system clock, as chrony does.

use std::ffi::CStr;
use std::io;
use std::mem::zeroed;
use std::net::IpAddr;
use std::os::fd::AsRawFd;

use super::txstamp::{self, Timestamping};

const ETHTOOL_GET_TS_INFO: u32 = 0x41;

/// `struct ethtool_ts_info` of linux/ethtool.h.
#[repr(C)]
#[derive(Default)]
struct EthtoolTsInfo {
    cmd: u32,
    so_timestamping: u32,
    phc_index: i32,
    tx_types: u32,
    tx_reserved: [u32; 3],
    rx_filters: u32,
    rx_reserved: [u32; 3],
}

/// What an interface's driver says it can timestamp.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capability {
    /// Stamps sent frames with its own clock.
    pub hardware_tx: bool,
    /// The receive filter that stamps NTP, if it has one: every frame, else every NTP frame.
    pub rx_filter: Option<u32>,
    /// Its clock, /dev/ptpN, if it has one.
    pub phc: Option<u32>,
    /// The driver calls the kernel's software transmit timestamp hook.
    pub software_tx: bool,
}

impl Capability {
    fn from_info(info: &EthtoolTsInfo) -> Capability {
        let has = |flag: u32| info.so_timestamping & flag != 0;
        let rx_filter = |filter: u32| info.rx_filters & (1 << filter) != 0;
        Capability {
            hardware_tx: has(libc::SOF_TIMESTAMPING_TX_HARDWARE)
                && has(libc::SOF_TIMESTAMPING_RAW_HARDWARE)
                && info.tx_types & (1 << libc::HWTSTAMP_TX_ON) != 0,
            rx_filter: [libc::HWTSTAMP_FILTER_ALL, libc::HWTSTAMP_FILTER_NTP_ALL]
                .into_iter()
                .find(|&f| rx_filter(f))
                .filter(|_| has(libc::SOF_TIMESTAMPING_RX_HARDWARE)),
            phc: u32::try_from(info.phc_index).ok(),
            software_tx: has(libc::SOF_TIMESTAMPING_TX_SOFTWARE),
        }
    }

    /// Stamps at least what it sends, with a clock to read: what interleaved mode needs. Without
    /// a receive filter for NTP, received datagrams keep the kernel's stamps (chrony's "TX
    /// only"), as on QEMU's igb and some PHYs.
    pub fn hardware(&self) -> bool {
        self.hardware_tx && self.phc.is_some()
    }
}

/// Asks the driver of interface `name` what it can timestamp.
pub fn query(name: &str) -> io::Result<Capability> {
    let mut info = EthtoolTsInfo {
        cmd: ETHTOOL_GET_TS_INFO,
        ..EthtoolTsInfo::default()
    };
    interface_ioctl(name, libc::SIOCETHTOOL, &mut info)?;
    Ok(Capability::from_info(&info))
}

/// Turns on the hardware timestamps of interface `name` (which `capability` says it has):
/// every sent frame that asks, and received frames by the filter it offers, if any. Needs
/// CAP_NET_ADMIN; without it, or if the driver refuses, it is enough that the interface is
/// already stamping that way (ptp4l, chrony or a previous pitime turned it on), as chrony
/// accepts. The setting is the interface's, for every program, and is left on at exit.
/// Whether received NTP datagrams are stamped too.
pub fn enable(name: &str, capability: &Capability) -> io::Result<bool> {
    // `struct hwtstamp_config` of linux/net_tstamp.h (the libc crate's).
    let mut config = libc::hwtstamp_config {
        flags: 0,
        tx_type: libc::HWTSTAMP_TX_ON as i32,
        rx_filter: capability.rx_filter.unwrap_or(libc::HWTSTAMP_FILTER_NONE) as i32,
    };
    let set = interface_ioctl(name, libc::SIOCSHWTSTAMP, &mut config);
    if set.is_err() {
        // Refused: what the interface does already may be enough.
        let mut current = libc::hwtstamp_config {
            flags: 0,
            tx_type: 0,
            rx_filter: 0,
        };
        if interface_ioctl(name, libc::SIOCGHWTSTAMP, &mut current).is_err() {
            // The refusal, its errno kept (EPERM says CAP_NET_ADMIN is missing).
            return set.map(|()| false);
        }
        config = current;
    }
    // The driver writes back what it did: it may stamp more than asked, never less.
    let stamps_ntp = [libc::HWTSTAMP_FILTER_ALL, libc::HWTSTAMP_FILTER_NTP_ALL]
        .contains(&(config.rx_filter as u32));
    // An interface without a filter for NTP is used for what it sends alone.
    let receive_ok = stamps_ntp || capability.rx_filter.is_none();
    match (
        config.tx_type == libc::HWTSTAMP_TX_ON as i32 && receive_ok,
        set,
    ) {
        (true, _) => Ok(stamps_ntp),
        (false, Err(e)) => Err(e),
        (false, Ok(())) => Err(io::Error::other(format!(
            "the driver set transmit type {}, receive filter {}",
            config.tx_type, config.rx_filter
        ))),
    }
}

/// Asks the kernel for hardware timestamps on `socket` besides its kernel ones (which
/// `txstamp::enable_kernel` turned on): received datagrams carry both, with the interface they
/// came in by (OPT_PKTINFO); looped-back sent ones carry their IP_PKTINFO (OPT_CMSG), which says
/// the interface they left by on a socket that asks for it (a wildcard address). A sent
/// datagram the driver takes to stamp in hardware gets its software stamp too (OPT_TX_SWHW),
/// which the kernel otherwise withholds: a driver that never delivers the hardware one (QEMU's
/// e1000e, a busy i210 dropping stamps) must not leave interleaved clients without any.
pub fn enable_socket(socket: &std::net::UdpSocket) -> io::Result<()> {
    let flags = libc::SOF_TIMESTAMPING_SOFTWARE
        | libc::SOF_TIMESTAMPING_RX_SOFTWARE
        | libc::SOF_TIMESTAMPING_RAW_HARDWARE
        | libc::SOF_TIMESTAMPING_RX_HARDWARE
        | libc::SOF_TIMESTAMPING_OPT_CMSG
        | libc::SOF_TIMESTAMPING_OPT_PKTINFO
        | libc::SOF_TIMESTAMPING_OPT_TX_SWHW;
    txstamp::set_int(socket, libc::SO_TIMESTAMPING, flags as libc::c_int)
}

/// The kernel's index of interface `name`.
pub fn index(name: &str) -> io::Result<u32> {
    let c = std::ffi::CString::new(name).map_err(io::Error::other)?;
    // SAFETY: a NUL-terminated name, alive across the call.
    match unsafe { libc::if_nametoindex(c.as_ptr()) } {
        0 => Err(io::Error::last_os_error()),
        i => Ok(i),
    }
}

/// An ioctl on interface `name` that passes `data` through `ifreq.ifr_data`.
fn interface_ioctl<T>(name: &str, request: libc::c_ulong, data: &mut T) -> io::Result<()> {
    let socket =
        std::net::UdpSocket::bind("0.0.0.0:0").or_else(|_| std::net::UdpSocket::bind("[::]:0"))?;
    // SAFETY: all-zero is a valid ifreq; the name is copied in bounded, NUL-terminated.
    let mut req: libc::ifreq = unsafe { zeroed() };
    if name.len() >= req.ifr_name.len() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "interface name too long",
        ));
    }
    for (dst, src) in req.ifr_name.iter_mut().zip(name.bytes()) {
        *dst = src as libc::c_char;
    }
    req.ifr_ifru.ifru_data = (data as *mut T).cast();
    // SAFETY: the request reads and writes the struct `data` points to (the one it takes:
    // each caller passes its own), alive across the call.
    let rc = unsafe { libc::ioctl(socket.as_raw_fd(), request as _, &mut req) };
    match rc {
        0 => Ok(()),
        _ => Err(io::Error::last_os_error()),
    }
}

/// The interfaces that carry `ip`: the one with that address, or all that are up for a
/// wildcard address. Names sorted, each once.
pub fn interfaces(ip: IpAddr) -> io::Result<Vec<String>> {
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs allocates the list, freed below.
    if unsafe { libc::getifaddrs(&mut list) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let mut names = Vec::new();
    let mut at = list;
    while !at.is_null() {
        // SAFETY: `at` walks the list getifaddrs made, each entry valid until freeifaddrs.
        let entry = unsafe { &*at };
        at = entry.ifa_next;
        // SAFETY: as above; ifa_name is a NUL-terminated string.
        let name = unsafe { CStr::from_ptr(entry.ifa_name) }.to_string_lossy();
        let up = entry.ifa_flags & libc::IFF_UP as u32 != 0;
        let matches = match ip.is_unspecified() {
            true => up,
            false => address(entry.ifa_addr) == Some(ip),
        };
        if matches {
            names.push(name.into_owned());
        }
    }
    // SAFETY: frees the list getifaddrs made; nothing points into it any more.
    unsafe { libc::freeifaddrs(list) };
    names.sort();
    names.dedup();
    Ok(names)
}

fn address(sa: *const libc::sockaddr) -> Option<IpAddr> {
    if sa.is_null() {
        return None;
    }
    // SAFETY: the family says which sockaddr type the kernel wrote.
    unsafe {
        match i32::from((*sa).sa_family) {
            libc::AF_INET => {
                let a = &*(sa as *const libc::sockaddr_in);
                Some(IpAddr::from(u32::from_be(a.sin_addr.s_addr).to_be_bytes()))
            }
            libc::AF_INET6 => Some(IpAddr::from(
                (*(sa as *const libc::sockaddr_in6)).sin6_addr.s6_addr,
            )),
            _ => None,
        }
    }
}

/// Which timestamps an interface gets when `wanted`, given what its driver said, and why.
/// `Hardware` means: to be turned on, which may still fail. The socket's own setting (software
/// transmit timestamps or none) is decided apart, since one socket serves every interface of
/// its address.
pub fn choose(wanted: Timestamping, capability: &io::Result<Capability>) -> (Timestamping, String) {
    use Timestamping::*;
    match (wanted, capability) {
        (User, _) => (User, "as configured".into()),
        (Kernel, _) => (Kernel, "as configured".into()),
        (Auto | Hardware, Ok(c)) if c.hardware() => (
            Hardware,
            format!("its own clock, /dev/ptp{}", c.phc.unwrap_or_default()),
        ),
        (Auto, Ok(_)) => (Kernel, "no hardware timestamps".into()),
        (Hardware, Ok(c)) => (
            Kernel,
            format!(
                "no hardware timestamps (transmit {}, receive {}, clock {})",
                yes(c.hardware_tx),
                yes(c.rx_filter.is_some()),
                c.phc.map_or("none".into(), |n| format!("/dev/ptp{n}"))
            ),
        ),
        (Auto | Hardware, Err(e)) => (Kernel, format!("cannot ask the driver ({e})")),
    }
}

fn yes(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(so_timestamping: u32, tx_types: u32, rx_filters: u32, phc_index: i32) -> EthtoolTsInfo {
        EthtoolTsInfo {
            cmd: ETHTOOL_GET_TS_INFO,
            so_timestamping,
            phc_index,
            tx_types,
            rx_filters,
            ..Default::default()
        }
    }

    const HW: u32 = libc::SOF_TIMESTAMPING_TX_HARDWARE
        | libc::SOF_TIMESTAMPING_RX_HARDWARE
        | libc::SOF_TIMESTAMPING_RAW_HARDWARE
        | libc::SOF_TIMESTAMPING_TX_SOFTWARE;

    #[test]
    fn a_nic_with_a_clock_and_all_filters_is_hardware_capable() {
        // An i210: TX on, RX filter ALL, /dev/ptp0.
        let c = Capability::from_info(&info(HW, 1 << 1, 1 << 1, 0));
        assert!(c.hardware());
        // Filter NTP_ALL (15) is as good as ALL.
        assert!(Capability::from_info(&info(HW, 1 << 1, 1 << 15, 2)).hardware());
        // PTP-only filters (e.g. PTP_V2_EVENT) do not stamp NTP: transmit stamps only.
        let tx_only = Capability::from_info(&info(HW, 1 << 1, 1 << 12, 0));
        assert!(tx_only.hardware() && tx_only.rx_filter.is_none());
        // No clock (phc_index -1), or no TX_ON.
        assert!(!Capability::from_info(&info(HW, 1 << 1, 1 << 1, -1)).hardware());
        assert!(!Capability::from_info(&info(HW, 1 << 0, 1 << 1, 0)).hardware());
    }

    #[test]
    fn hardware_is_chosen_where_the_driver_has_it_and_otherwise_says_why() {
        let none = Ok(Capability::from_info(&info(
            libc::SOF_TIMESTAMPING_TX_SOFTWARE,
            0,
            0,
            -1,
        )));
        let hw = Ok(Capability::from_info(&info(HW, 1 << 1, 1 << 1, 3)));
        let unknown: io::Result<Capability> = Err(io::Error::from_raw_os_error(libc::EOPNOTSUPP));
        assert_eq!(choose(Timestamping::User, &hw).0, Timestamping::User);
        assert_eq!(choose(Timestamping::Kernel, &hw).0, Timestamping::Kernel);
        let (got, why) = choose(Timestamping::Hardware, &none);
        assert_eq!(got, Timestamping::Kernel);
        assert_eq!(
            why,
            "no hardware timestamps (transmit no, receive no, clock none)"
        );
        let (got, why) = choose(Timestamping::Auto, &hw);
        assert_eq!(
            (got, why.as_str()),
            (Timestamping::Hardware, "its own clock, /dev/ptp3")
        );
        assert_eq!(
            Capability::from_info(&info(HW, 1 << 1, (1 << 1) | (1 << 15), 0)).rx_filter,
            Some(libc::HWTSTAMP_FILTER_ALL)
        );
        assert!(choose(Timestamping::Auto, &unknown)
            .1
            .starts_with("cannot ask the driver"));
    }

    #[test]
    fn loopback_answers_the_query_without_hardware() {
        // The loopback's driver stamps in software only: what this machine can check for real.
        match query("lo") {
            Ok(c) => assert!(!c.hardware(), "{c:?}"),
            Err(e) => assert_eq!(e.raw_os_error(), Some(libc::EOPNOTSUPP), "{e}"),
        }
        assert!(query("no-such-interface-x").is_err());
        assert!(index("lo").is_ok_and(|i| i > 0));
        // Without hardware (and without CAP_NET_ADMIN, as a user) turning it on fails, saying so.
        let lo = Capability {
            rx_filter: Some(libc::HWTSTAMP_FILTER_ALL),
            ..query("lo").unwrap_or(Capability {
                hardware_tx: true,
                rx_filter: None,
                phc: Some(0),
                software_tx: true,
            })
        };
        assert!(enable("lo", &lo).is_err());
        assert!(interfaces("127.0.0.1".parse().unwrap())
            .unwrap()
            .contains(&"lo".to_string()));
    }
}
