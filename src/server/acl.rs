//! Address-based access control: allow and deny lists of CIDR networks, deny wins.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// An IPv4 or IPv6 network. IPv4-mapped IPv6 addresses match IPv4 networks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, canonical(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => prefix_eq(
                u32::from(net) as u128,
                u32::from(ip) as u128,
                self.prefix,
                32,
            ),
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                prefix_eq(u128::from(net), u128::from(ip), self.prefix, 128)
            }
            _ => false,
        }
    }
}

fn prefix_eq(a: u128, b: u128, prefix: u8, bits: u32) -> bool {
    let shift = bits - prefix as u32;
    shift >= bits || (a >> shift) == (b >> shift)
}

/// Maps IPv4-mapped IPv6 addresses (from dual-stack sockets) to plain IPv4.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr = canonical(
            addr.parse::<IpAddr>()
                .map_err(|_| format!("`{addr}` is not an IPv4 or IPv6 address"))?,
        );
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => match p.parse::<u8>() {
                Ok(p) if p <= max => p,
                _ => {
                    return Err(format!(
                        "prefix length `{p}` is not a number from 0 to {max}"
                    ))
                }
            },
        };
        Ok(Cidr { addr, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// The access decision for one client address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessList {
    pub allow: Vec<Cidr>,
    pub deny: Vec<Cidr>,
}

impl AccessList {
    /// Allowed when some allow entry matches and no deny entry does.
    pub fn permits(&self, ip: IpAddr) -> bool {
        !self.deny.iter().any(|c| c.contains(ip)) && self.allow.iter().any(|c| c.contains(ip))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(allow: &[&str], deny: &[&str]) -> AccessList {
        let p = |v: &[&str]| v.iter().map(|s| s.parse().unwrap()).collect();
        AccessList {
            allow: p(allow),
            deny: p(deny),
        }
    }

    #[test]
    fn deny_wins_over_allow() {
        let acl = list(&["10.0.0.0/8", "::/0"], &["10.1.0.0/16", "fd00::/8"]);
        assert!(acl.permits("10.2.3.4".parse().unwrap()));
        assert!(!acl.permits("10.1.3.4".parse().unwrap()));
        assert!(!acl.permits("192.168.1.1".parse().unwrap()));
        assert!(acl.permits("2001:db8::1".parse().unwrap()));
        assert!(!acl.permits("fd12::1".parse().unwrap()));
    }

    #[test]
    fn mapped_addresses_match_ipv4_networks() {
        let acl = list(&["127.0.0.0/8"], &[]);
        assert!(acl.permits("::ffff:127.0.0.1".parse().unwrap()));
    }

    #[test]
    fn parse_errors_are_explained() {
        assert!("10.0.0.0/33"
            .parse::<Cidr>()
            .unwrap_err()
            .contains("0 to 32"));
        assert!("nonsense".parse::<Cidr>().is_err());
        assert_eq!(
            "0.0.0.0/0".parse::<Cidr>().unwrap().to_string(),
            "0.0.0.0/0"
        );
        assert_eq!("::1".parse::<Cidr>().unwrap().to_string(), "::1/128");
    }
}
