//! The targets a serve config allows probes to: exact URLs, host patterns and address ranges.
//! A probe whose every target is not on the list is refused before anything is sent.

use std::net::IpAddr;

use crate::host::cidr::Cidr;
use crate::target::{Role, Scheme, Target};

/// One `allow:` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Allowed {
    /// `http://lb.example:8080/health`: this scheme, host, port and path only.
    Url {
        scheme: Scheme,
        host: String,
        port: u16,
        path: String,
    },
    /// `lb.example` (that host, any port), or `*.lb.example` (any name under it, not the name
    /// itself). Names only: an address is written as a range.
    Host { name: String, subdomains: bool },
    /// `10.0.0.0/8`, `127.0.0.1`, `::1`: a target written as an address in the range. A name
    /// is never resolved to be matched here (its address could change between the check and the
    /// probe); allow names with a host pattern.
    Range(Cidr),
}

/// Why an `allow:` entry does not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AllowError {
    #[error("{entry:?} is not a URL lbprobe can probe: {why}")]
    Url { entry: String, why: String },
    #[error(transparent)]
    Range(#[from] crate::host::cidr::CidrError),
    #[error("{entry:?} is not a host pattern (expected a name such as lb.example, *.lb.example, an address or a range such as 10.0.0.0/8, or a URL)")]
    Pattern { entry: String },
}

impl Allowed {
    pub fn parse(entry: &str) -> Result<Allowed, AllowError> {
        let entry = entry.trim();
        if entry.contains("://") {
            let t = Target::parse(Role::Listener, entry).map_err(|e| AllowError::Url {
                entry: entry.to_string(),
                why: e.to_string(),
            })?;
            return Ok(Allowed::Url {
                scheme: t.scheme,
                host: t.host.to_ascii_lowercase(),
                port: t.port,
                path: t.path,
            });
        }
        if entry.contains('/') || entry.parse::<IpAddr>().is_ok() {
            return Ok(Allowed::Range(entry.parse()?));
        }
        let (name, subdomains) = match entry.strip_prefix("*.") {
            Some(rest) => (rest, true),
            None => (entry, false),
        };
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        if name.is_empty() || !name.split('.').all(label_ok) {
            return Err(AllowError::Pattern {
                entry: entry.to_string(),
            });
        }
        Ok(Allowed::Host {
            name: name.to_ascii_lowercase(),
            subdomains,
        })
    }

    /// Whether this entry allows probing `target`.
    pub fn allows(&self, target: &Target) -> bool {
        let host = target.host.to_ascii_lowercase();
        match self {
            Allowed::Url {
                scheme,
                host: h,
                port,
                path,
            } => {
                *scheme == target.scheme
                    && *h == host
                    && *port == target.port
                    && *path == target.path
            }
            Allowed::Host { name, subdomains } => {
                if host.parse::<IpAddr>().is_ok() {
                    return false;
                }
                let host = host.trim_end_matches('.');
                match subdomains {
                    false => host == name,
                    true => host
                        .strip_suffix(name.as_str())
                        .is_some_and(|prefix| prefix.len() > 1 && prefix.ends_with('.')),
                }
            }
            Allowed::Range(range) => host
                .parse::<IpAddr>()
                .is_ok_and(|ip| range.contains(canonical(ip))),
        }
    }
}

/// `::ffff:127.0.0.1` is 127.0.0.1: a range of IPv4 addresses covers it.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The whole `allow:` list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList(pub Vec<Allowed>);

impl AllowList {
    pub fn allows(&self, target: &Target) -> bool {
        self.0.iter().any(|a| a.allows(target))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(url: &str) -> Target {
        Target::parse(Role::Listener, url).expect("a target URL")
    }

    #[test]
    fn each_kind_of_entry_allows_what_it_says_and_nothing_else() {
        let table: &[(&str, &str, bool)] = &[
            (
                "http://lb.example:8080/health",
                "http://lb.example:8080/health",
                true,
            ),
            (
                "http://lb.example:8080/health",
                "http://LB.example:8080/health",
                true,
            ),
            (
                "http://lb.example:8080/health",
                "http://lb.example:8080/",
                false,
            ),
            (
                "http://lb.example:8080/health",
                "https://lb.example:8080/health",
                false,
            ),
            (
                "http://lb.example:8080/health",
                "http://lb.example:8081/health",
                false,
            ),
            ("lb.example", "https://lb.example/x", true),
            ("lb.example", "http://lb.example:9999/", true),
            ("lb.example", "http://a.lb.example/", false),
            ("lb.example", "http://evillb.example/", false),
            ("*.lb.example", "http://a.lb.example/", true),
            ("*.lb.example", "http://a.b.lb.example/", true),
            ("*.lb.example", "http://lb.example/", false),
            ("*.lb.example", "http://xlb.example/", false),
            ("127.0.0.0/8", "http://127.0.0.9:81/", true),
            ("127.0.0.0/8", "http://10.0.0.1/", false),
            ("127.0.0.0/8", "http://localhost/", false),
            ("127.0.0.0/8", "http://[::ffff:127.0.0.1]/", true),
            ("127.0.0.1", "http://127.0.0.1:8080/", true),
            ("127.0.0.1", "http://127.0.0.2/", false),
            ("::1", "http://[::1]:8080/", true),
            ("10.0.0.0/8", "http://[::1]/", false),
        ];
        for (entry, url, allowed) in table {
            let a = Allowed::parse(entry).expect(entry);
            assert_eq!(a.allows(&t(url)), *allowed, "{entry} vs {url}");
        }
    }

    #[test]
    fn entries_that_do_not_read_are_refused() {
        for bad in [
            "ftp://x/",
            "10.0.0.0/33",
            "lb..example",
            "*.",
            "-a.example",
            "a b",
            "*",
        ] {
            assert!(Allowed::parse(bad).is_err(), "{bad}");
        }
    }
}
