//! Address ranges (`100.64.0.0/10`, `2001:db8::/32`): the health checker's source range and the
//! sources firewall rules match.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    /// The network address (host bits cleared).
    pub addr: IpAddr,
    pub prefix: u8,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not an address range like 100.64.0.0/10: {why}")]
pub struct CidrError {
    pub text: String,
    pub why: String,
}

impl Cidr {
    fn bits(addr: IpAddr) -> (u128, u8) {
        match addr {
            IpAddr::V4(a) => (u128::from(u32::from(a)), 32),
            IpAddr::V6(a) => (u128::from(a), 128),
        }
    }

    fn mask(prefix: u8, width: u8) -> u128 {
        if prefix == 0 {
            0
        } else {
            let all = if width == 32 {
                u128::from(u32::MAX)
            } else {
                u128::MAX
            };
            all & !((1u128 << (width - prefix)) - 1)
        }
    }

    pub fn new(addr: IpAddr, prefix: u8) -> Option<Cidr> {
        let (bits, width) = Cidr::bits(addr);
        if prefix > width {
            return None;
        }
        let net = bits & Cidr::mask(prefix, width);
        let addr = match addr {
            IpAddr::V4(_) => IpAddr::from(u32::try_from(net).ok()?.to_be_bytes()),
            IpAddr::V6(_) => IpAddr::from(net.to_be_bytes()),
        };
        Some(Cidr { addr, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let (net, width) = Cidr::bits(self.addr);
        let (bits, w) = Cidr::bits(ip);
        w == width && bits & Cidr::mask(self.prefix, width) == net
    }

    /// Every address of `other` is in `self`.
    pub fn contains_range(&self, other: &Cidr) -> bool {
        other.prefix >= self.prefix && self.contains(other.addr)
    }

    /// The two ranges share at least one address (one contains the other's network).
    pub fn overlaps(&self, other: &Cidr) -> bool {
        self.contains_range(other) || other.contains_range(self)
    }
}

impl FromStr for Cidr {
    type Err = CidrError;

    fn from_str(text: &str) -> Result<Cidr, CidrError> {
        let err = |why: &str| CidrError {
            text: text.to_string(),
            why: why.to_string(),
        };
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let addr: IpAddr = addr.trim().parse().map_err(|_| err("not an IP address"))?;
        let width = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .trim()
                .parse::<u8>()
                .map_err(|_| err("the prefix length is not a number"))?,
            None => width,
        };
        Cidr::new(addr, prefix).ok_or_else(|| err(&format!("the prefix length is above {width}")))
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl Serialize for Cidr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> Cidr {
        s.parse().unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn parses_and_clears_host_bits() {
        assert_eq!(c("100.64.1.2/10").to_string(), "100.64.0.0/10");
        assert_eq!(c("10.0.0.1").to_string(), "10.0.0.1/32");
        assert_eq!(c("0.0.0.0/0").to_string(), "0.0.0.0/0");
        assert_eq!(c("2001:db8::1/32").to_string(), "2001:db8::/32");
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
        assert!("ten/8".parse::<Cidr>().is_err());
    }

    #[test]
    fn overlap_is_containment_either_way() {
        assert!(c("100.64.0.0/10").overlaps(&c("100.64.5.0/24")));
        assert!(c("100.64.5.0/24").overlaps(&c("100.64.0.0/10")));
        assert!(c("0.0.0.0/0").overlaps(&c("100.64.0.0/10")));
        assert!(!c("10.0.0.0/8").overlaps(&c("100.64.0.0/10")));
        assert!(!c("::/0").overlaps(&c("100.64.0.0/10")));
        assert!(c("100.64.0.0/10").contains("100.127.255.255".parse().unwrap()));
        assert!(!c("100.64.0.0/10").contains("100.128.0.0".parse().unwrap()));
    }
}
