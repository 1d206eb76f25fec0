//! What each network interface can timestamp (ETHTOOL_GET_TS_INFO), and which timestamps a
//! socket gets from the configured `timestamping` on the interfaces it serves.
//!
//! Hardware timestamps are stamped by the interface's own clock (a PTP hardware clock) and need
//! converting to the system clock, as chrony does; pitime does not do that yet, so an interface
//! that has them is reported as such and served with kernel timestamps.

use std::ffi::CStr;
use std::io;
use std::mem::zeroed;
use std::net::IpAddr;
use std::os::fd::AsRawFd;

use super::txstamp::Timestamping;

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
    /// Stamps every received frame (or every NTP frame) with its own clock.
    pub hardware_rx: bool,
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
            hardware_rx: has(libc::SOF_TIMESTAMPING_RX_HARDWARE)
                && (rx_filter(libc::HWTSTAMP_FILTER_ALL) || rx_filter(HWTSTAMP_FILTER_NTP_ALL)),
            phc: u32::try_from(info.phc_index).ok(),
            software_tx: has(libc::SOF_TIMESTAMPING_TX_SOFTWARE),
        }
    }

    pub fn hardware(&self) -> bool {
        self.hardware_tx && self.hardware_rx && self.phc.is_some()
    }
}

const HWTSTAMP_FILTER_NTP_ALL: u32 = 15;

/// Asks the driver of interface `name` what it can timestamp.
pub fn query(name: &str) -> io::Result<Capability> {
    let socket =
        std::net::UdpSocket::bind("0.0.0.0:0").or_else(|_| std::net::UdpSocket::bind("[::]:0"))?;
    let mut info = EthtoolTsInfo {
        cmd: ETHTOOL_GET_TS_INFO,
        ..EthtoolTsInfo::default()
    };
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
    req.ifr_ifru.ifru_data = (&mut info as *mut EthtoolTsInfo).cast();
    // SAFETY: SIOCETHTOOL reads the command from `info` and writes the answer into it, alive
    // across the call.
    let rc = unsafe { libc::ioctl(socket.as_raw_fd(), libc::SIOCETHTOOL as _, &mut req) };
    match rc {
        0 => Ok(Capability::from_info(&info)),
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
/// The socket's own setting (software transmit timestamps or none) is decided apart, since one
/// socket serves every interface of its address.
pub fn choose(wanted: Timestamping, capability: &io::Result<Capability>) -> (Timestamping, String) {
    use Timestamping::*;
    match (wanted, capability) {
        (User, _) => (User, "as configured".into()),
        (Kernel, _) => (Kernel, "as configured".into()),
        (Auto | Hardware, Ok(c)) if c.hardware() => (
            Kernel,
            format!(
                "has hardware timestamps (/dev/ptp{}), which pitime does not use yet",
                c.phc.unwrap_or_default()
            ),
        ),
        (Auto, Ok(_)) => (Kernel, "no hardware timestamps".into()),
        (Hardware, Ok(c)) => (
            Kernel,
            format!(
                "no hardware timestamps (transmit {}, receive {}, clock {})",
                yes(c.hardware_tx),
                yes(c.hardware_rx),
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
        // PTP-only filters (e.g. PTP_V2_EVENT) do not stamp NTP.
        assert!(!Capability::from_info(&info(HW, 1 << 1, 1 << 12, 0)).hardware());
        // No clock (phc_index -1), or no TX_ON.
        assert!(!Capability::from_info(&info(HW, 1 << 1, 1 << 1, -1)).hardware());
        assert!(!Capability::from_info(&info(HW, 1 << 0, 1 << 1, 0)).hardware());
    }

    #[test]
    fn every_wish_falls_back_to_kernel_timestamps_and_says_why() {
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
        assert_eq!(got, Timestamping::Kernel);
        assert!(why.contains("/dev/ptp3"), "{why}");
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
        assert!(interfaces("127.0.0.1".parse().unwrap())
            .unwrap()
            .contains(&"lo".to_string()));
    }
}
