//! The endpoints a scenario names: the listener (the load balancer) and the backend behind it.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Which side of the load balancer a request was sent to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Listener,
    Backend,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Listener => "listener",
            Role::Backend => "backend",
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    Http,
    Https,
}

/// A validated target. Only these host/port pairs are ever contacted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Target {
    pub role: Role,
    pub scheme: Scheme,
    pub host: String,
    pub port: u16,
    /// Path and query used by probes that need a path (defaults to `/`).
    pub path: String,
    /// Server name sent in TLS; defaults to `host`.
    pub sni: Option<String>,
    /// Verify the server certificate (on unless the scenario says `tls_verify: false`).
    pub tls_verify: bool,
    /// Extra headers added to every well-formed request (e.g. Host overrides, auth).
    pub headers: Vec<(String, String)>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TargetError {
    #[error("{url:?} is not a URL: {why}")]
    BadUrl { url: String, why: String },
    #[error("{url:?}: scheme must be http or https, not {scheme:?}")]
    BadScheme { url: String, scheme: String },
    #[error("{url:?} has no host")]
    NoHost { url: String },
}

impl Target {
    pub fn parse(role: Role, url: &str) -> Result<Target, TargetError> {
        let parsed = reqwest::Url::parse(url).map_err(|e| TargetError::BadUrl {
            url: url.to_string(),
            why: e.to_string(),
        })?;
        let scheme = match parsed.scheme() {
            "http" => Scheme::Http,
            "https" => Scheme::Https,
            other => {
                return Err(TargetError::BadScheme {
                    url: url.to_string(),
                    scheme: other.to_string(),
                })
            }
        };
        let host = match parsed.host() {
            Some(url::Host::Ipv6(a)) => a.to_string(),
            Some(h) => h.to_string(),
            None => {
                return Err(TargetError::NoHost {
                    url: url.to_string(),
                })
            }
        };
        let port = parsed.port_or_known_default().unwrap_or(match scheme {
            Scheme::Http => 80,
            Scheme::Https => 443,
        });
        let mut path = parsed.path().to_string();
        if let Some(q) = parsed.query() {
            path.push('?');
            path.push_str(q);
        }
        Ok(Target {
            role,
            scheme,
            host,
            port,
            path,
            sni: None,
            tls_verify: true,
            headers: Vec::new(),
        })
    }

    pub fn is_tls(&self) -> bool {
        self.scheme == Scheme::Https
    }

    /// The value for a `Host` header: the port is omitted when it is the scheme's default.
    pub fn host_header(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        let default = match self.scheme {
            Scheme::Http => 80,
            Scheme::Https => 443,
        };
        if self.port == default {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }

    /// The TLS server name to present.
    pub fn server_name(&self) -> &str {
        self.sni.as_deref().unwrap_or(&self.host)
    }

    pub fn url(&self) -> String {
        let scheme = match self.scheme {
            Scheme::Http => "http",
            Scheme::Https => "https",
        };
        format!("{scheme}://{}{}", self.host_header(), self.path)
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.role, self.url())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_default_ports_and_path() {
        let t = Target::parse(Role::Listener, "https://example.test/a?b=1").unwrap();
        assert_eq!(t.port, 443);
        assert_eq!(t.path, "/a?b=1");
        assert_eq!(t.host_header(), "example.test");
        let t = Target::parse(Role::Backend, "http://[::1]:8080").unwrap();
        assert_eq!(t.host, "::1");
        assert_eq!(t.host_header(), "[::1]:8080");
        assert_eq!(t.path, "/");
    }

    #[test]
    fn rejects_other_schemes() {
        assert!(matches!(
            Target::parse(Role::Listener, "ftp://x"),
            Err(TargetError::BadScheme { .. })
        ));
    }
}
