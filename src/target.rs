//! The endpoints a scenario names: the listener (the load balancer) and the backend behind it.

use std::fmt;
use std::path::PathBuf;

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
    /// Where to connect instead of `host:port` (`--connect-to`, `--resolve`); the Host header
    /// and the TLS server name stay those of the URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect: Option<ConnectTo>,
    /// `-4`/`-6`: connect over this address family only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<crate::transport::IpFamily>,
    /// PEM certificates trusted instead of the web PKI (`ca-file`, `--cacert`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate for mutual TLS (`client-cert`, `--cert`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_cert: Option<PathBuf>,
    /// Its private key, when not in the certificate's file (`client-key`, `--key`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_key: Option<PathBuf>,
}

/// An address to connect to in place of the URL's: a host (an IP literal, or a name that is
/// then resolved) and a port.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ConnectTo {
    pub host: String,
    pub port: u16,
}

/// One `--connect-to HOST:PORT:CONNECT_HOST:CONNECT_PORT` or `--resolve HOST:PORT:ADDR` rule,
/// with curl's meanings: an empty HOST or PORT (connect-to only) matches any; an empty
/// CONNECT_HOST or CONNECT_PORT keeps the URL's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectRule {
    host: Option<String>,
    port: Option<u16>,
    to_host: Option<String>,
    to_port: Option<u16>,
}

impl ConnectRule {
    /// `HOST:PORT:CONNECT_HOST:CONNECT_PORT`; IPv6 addresses in brackets.
    pub fn connect_to(spec: &str) -> Result<ConnectRule, String> {
        let parts = split_fields(spec)?;
        let [host, port, to_host, to_port] = parts.as_slice() else {
            return Err(format!(
                "--connect-to {spec:?}: expected HOST:PORT:CONNECT-TO-HOST:CONNECT-TO-PORT"
            ));
        };
        Ok(ConnectRule {
            host: non_empty(host),
            port: port_of(port, spec)?,
            to_host: non_empty(to_host),
            to_port: port_of(to_port, spec)?,
        })
    }

    /// `HOST:PORT:ADDR`: the name at that port resolves to ADDR (an IP address).
    pub fn resolve(spec: &str) -> Result<ConnectRule, String> {
        let parts = split_fields(spec)?;
        let [host, port, addr] = parts.as_slice() else {
            return Err(format!("--resolve {spec:?}: expected HOST:PORT:ADDRESS"));
        };
        if host.is_empty() || port.is_empty() {
            return Err(format!("--resolve {spec:?}: HOST and PORT are required"));
        }
        if addr.parse::<std::net::IpAddr>().is_err() {
            return Err(format!("--resolve {spec:?}: {addr:?} is not an IP address"));
        }
        Ok(ConnectRule {
            host: Some(host.to_string()),
            port: port_of(port, spec)?,
            to_host: Some(addr.to_string()),
            to_port: None,
        })
    }

    /// Point `target` at this rule's address when the rule matches its host and port.
    pub fn apply(&self, target: &mut Target) -> bool {
        let matches = self
            .host
            .as_ref()
            .is_none_or(|h| h.eq_ignore_ascii_case(&target.host))
            && self.port.is_none_or(|p| p == target.port);
        if matches {
            target.connect = Some(ConnectTo {
                host: self.to_host.clone().unwrap_or_else(|| target.host.clone()),
                port: self.to_port.unwrap_or(target.port),
            });
        }
        matches
    }
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

fn port_of(s: &str, spec: &str) -> Result<Option<u16>, String> {
    if s.is_empty() {
        return Ok(None);
    }
    s.parse::<u16>()
        .ok()
        .filter(|p| *p > 0)
        .map(Some)
        .ok_or_else(|| format!("{spec:?}: {s:?} is not a port"))
}

/// Colon-separated fields, where `[...]` (an IPv6 address) is one field without its brackets.
fn split_fields(spec: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut rest = spec;
    loop {
        let (field, tail) = if let Some(inner) = rest.strip_prefix('[') {
            let end = inner
                .find(']')
                .ok_or_else(|| format!("{spec:?}: unclosed ["))?;
            let tail = &inner[end + 1..];
            if !(tail.is_empty() || tail.starts_with(':')) {
                return Err(format!("{spec:?}: expected : after ]"));
            }
            (inner[..end].to_string(), tail)
        } else {
            match rest.find(':') {
                Some(i) => (rest[..i].to_string(), &rest[i..]),
                None => (rest.to_string(), ""),
            }
        };
        out.push(field);
        match tail.strip_prefix(':') {
            Some(t) => rest = t,
            None => return Ok(out),
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TargetError {
    #[error("{url:?} is not a URL: {why}")]
    BadUrl { url: String, why: String },
    /// The URL would only parse after repair (whitespace dropped, a slash moved, a backslash
    /// read as a slash): a target is used exactly as written, or not at all.
    #[error("{url:?}: {why}; a target is used exactly as written")]
    NotAsWritten { url: String, why: String },
    #[error("{url:?} has no scheme: add http:// or https://")]
    NoScheme { url: String },
    #[error("{url:?} holds credentials (user:password@): lbprobe does not send credentials from a URL; pass them as a header (-H 'Authorization: …', or `headers:` in a scenario), which every report masks")]
    Credentials { url: String },
    #[error("{url:?}: scheme must be http or https, not {scheme:?}")]
    BadScheme { url: String, scheme: String },
    #[error("{url:?} has no host")]
    NoHost { url: String },
}

/// The URL with any `user:password@` replaced by `***@`, for error messages: an error must not
/// echo a secret.
fn shown(url: &str) -> String {
    let scheme = url.find("://").filter(|&i| is_scheme(&url[..i]));
    let Some(i) = scheme else {
        // No scheme to find the authority by (`admin:pw@10.0.0.5:8080`): everything before
        // the last `@` may be credentials.
        return match url.rfind('@') {
            Some(at) => format!("***{}", &url[at..]),
            None => url.to_string(),
        };
    };
    let (scheme, rest) = (&url[..i], &url[i + 3..]);
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://***{}", &rest[at..]),
        None => url.to_string(),
    }
}

/// RFC 3986 §3.1: a letter, then letters, digits, `+`, `-` and `.`.
fn is_scheme(text: &str) -> bool {
    text.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
}

/// Refuses what a URL parser would repair instead of reject: control characters and whitespace
/// anywhere (a CR LF would otherwise turn into a header of its own, or vanish), backslashes
/// (read as slashes), a missing scheme, and a scheme not followed by exactly `//` and a host
/// (`http:///path` would make `path` the host: a DNS lookup of a name nobody gave).
fn as_written(url: &str) -> Result<(), TargetError> {
    let refuse = |why: String| {
        Err(TargetError::NotAsWritten {
            url: shown(url),
            why,
        })
    };
    if let Some((at, c)) = url
        .char_indices()
        .find(|(_, c)| c.is_control() || c.is_whitespace())
    {
        let what = match c {
            ' ' => "a space".to_string(),
            '\r' => "a carriage return (CR)".to_string(),
            '\n' => "a line feed (LF)".to_string(),
            '\t' => "a tab".to_string(),
            c => format!("the control character U+{:04X}", c as u32),
        };
        return refuse(format!("{what} at byte {at}"));
    }
    if let Some(at) = url.find('\\') {
        return refuse(format!("a backslash at byte {at}"));
    }
    let Some((scheme, rest)) = url.split_once(':') else {
        return Err(TargetError::NoScheme { url: shown(url) });
    };
    if !is_scheme(scheme) || !matches!(scheme.to_ascii_lowercase().as_str(), "http" | "https") {
        // `127.0.0.1:8080` and `localhost:8080/x` parse as a scheme and a path; neither is
        // what the person meant.
        if !rest.starts_with("//") {
            return Err(TargetError::NoScheme { url: shown(url) });
        }
        return Ok(()); // a real scheme that is not http(s): the caller names it.
    }
    let Some(authority) = rest.strip_prefix("//") else {
        return refuse(format!("{scheme}: must be followed by //"));
    };
    if authority.is_empty() || authority.starts_with(['/', '?', '#']) {
        return refuse("the host is empty".into());
    }
    Ok(())
}

impl Target {
    pub fn parse(role: Role, url: &str) -> Result<Target, TargetError> {
        as_written(url)?;
        let parsed = reqwest::Url::parse(url).map_err(|e| TargetError::BadUrl {
            url: shown(url),
            why: e.to_string(),
        })?;
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(TargetError::Credentials { url: shown(url) });
        }
        let scheme = match parsed.scheme() {
            "http" => Scheme::Http,
            "https" => Scheme::Https,
            other => {
                return Err(TargetError::BadScheme {
                    url: shown(url),
                    scheme: other.to_string(),
                })
            }
        };
        let host = match parsed.host() {
            Some(url::Host::Ipv6(a)) => a.to_string(),
            Some(h) => h.to_string(),
            None => return Err(TargetError::NoHost { url: shown(url) }),
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
            connect: None,
            family: None,
            ca_file: None,
            client_cert: None,
            client_key: None,
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

    /// The host and port connections go to: `connect` when set, else the URL's.
    pub fn connect_host_port(&self) -> (&str, u16) {
        match &self.connect {
            Some(c) => (&c.host, c.port),
            None => (&self.host, self.port),
        }
    }

    /// How TLS connections to this target check the server and present a client certificate.
    pub fn tls_settings(&self) -> crate::transport::tls::TlsSettings {
        crate::transport::tls::TlsSettings {
            verify: self.tls_verify,
            ca_file: self.ca_file.clone(),
            client_cert: self.client_cert.clone(),
            client_key: self.client_key.clone(),
        }
    }

    /// Builds this target's TLS client configuration now, so that a missing or broken CA,
    /// certificate or key file is an input error before anything is sent.
    pub fn check_tls_files(&self) -> Result<(), crate::transport::tls::TlsSetupError> {
        if self.ca_file.is_none() && self.client_cert.is_none() && self.client_key.is_none() {
            return Ok(());
        }
        crate::transport::tls::client_config(
            &self.tls_settings(),
            crate::transport::tls::Alpn::None,
        )
        .map(drop)
    }

    /// What reports say after the URL: TLS left unverified, a CA file or client certificate
    /// in use, a connect-to address; empty for a plain target.
    pub fn connection_note(&self) -> String {
        let mut notes = Vec::new();
        if self.is_tls() {
            if !self.tls_verify {
                notes.push("TLS not verified".to_string());
            } else if let Some(ca) = &self.ca_file {
                notes.push(format!("CA file {}", ca.display()));
            }
            if let Some(cert) = &self.client_cert {
                notes.push(format!("client certificate {}", cert.display()));
            }
            if let Some(sni) = &self.sni {
                notes.push(format!("SNI {sni}"));
            }
        }
        if let Some(c) = &self.connect {
            notes.push(format!(
                "connecting to {}",
                crate::transport::endpoint_label(&c.host, c.port, false)
            ));
        }
        if notes.is_empty() {
            String::new()
        } else {
            format!(" ({})", notes.join(", "))
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
    #[test]
    fn connect_rules_follow_curls_fields() {
        let mut t = Target::parse(Role::Listener, "https://lb.example.test/").unwrap();
        let rule = ConnectRule::connect_to("lb.example.test:443:10.0.0.7:8443").unwrap();
        assert!(rule.apply(&mut t));
        assert_eq!(t.connect_host_port(), ("10.0.0.7", 8443));
        assert_eq!(t.server_name(), "lb.example.test");
        assert_eq!(t.host_header(), "lb.example.test");

        // Empty fields: any host and port, the URL's port kept; IPv6 in brackets.
        let mut t = Target::parse(Role::Backend, "http://a.test:8080/").unwrap();
        assert!(ConnectRule::connect_to("::[::1]:").unwrap().apply(&mut t));
        assert_eq!(t.connect_host_port(), ("::1", 8080));

        // A rule for another port leaves the target alone.
        let mut t = Target::parse(Role::Backend, "http://a.test:8080/").unwrap();
        assert!(!ConnectRule::resolve("a.test:80:127.0.0.3")
            .unwrap()
            .apply(&mut t));
        assert_eq!(t.connect_host_port(), ("a.test", 8080));
        assert!(ConnectRule::resolve("a.test:8080:127.0.0.3")
            .unwrap()
            .apply(&mut t));
        assert_eq!(t.connect_host_port(), ("127.0.0.3", 8080));

        for bad in ["a:80", "a:80:b:99999", "a:x:b:1", "[::1:80:b:1"] {
            assert!(ConnectRule::connect_to(bad).is_err(), "{bad}");
        }
        for bad in ["a:80:name", ":80:127.0.0.1", "a::127.0.0.1"] {
            assert!(ConnectRule::resolve(bad).is_err(), "{bad}");
        }
    }

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

    /// A target is what the person wrote, or an error that says what is wrong with it and
    /// never echoes a password.
    #[test]
    fn refuses_what_a_parser_would_repair() {
        let cases: &[(&str, &str)] = &[
            ("http:///127.0.0.1:8080/", "the host is empty"),
            ("http:///path", "the host is empty"),
            ("http:/127.0.0.1/", "must be followed by //"),
            (
                "http://127.0.0.1/a\r\nX-Injected: 1",
                "a carriage return (CR) at byte 18",
            ),
            ("http://127.0.0.1/a b", "a space at byte 18"),
            (" http://127.0.0.1/", "a space at byte 0"),
            ("http://127.0.0.1/\t", "a tab"),
            ("http://127.0.0.1/\u{7f}", "U+007F"),
            ("http:\\\\127.0.0.1\\", "a backslash at byte 5"),
            ("127.0.0.1:8080", "add http:// or https://"),
            ("localhost:8080/health", "add http:// or https://"),
            ("lb.example.test", "add http:// or https://"),
            (
                "http://admin:hunter2@127.0.0.1/",
                "lbprobe does not send credentials from a URL",
            ),
        ];
        for (url, says) in cases {
            let err = Target::parse(Role::Listener, url)
                .expect_err(url)
                .to_string();
            assert!(err.contains(says), "{url:?}: {err}");
            assert!(!err.contains("hunter2"), "{url:?}: {err}");
        }
        // Without a scheme, whatever precedes the last `@` may be credentials (found by fuzzing).
        for url in [
            "admin:hunter2@127.0.0.1:8080",
            "p/:hunter2@ahpu://:hunter2@ah@ah",
        ] {
            let err = Target::parse(Role::Listener, url)
                .expect_err(url)
                .to_string();
            assert!(!err.contains("hunter2"), "{err}");
        }
        // A bad URL with a password does not echo it either.
        let err = Target::parse(Role::Listener, "http://u:hunter2@127.0.0.1/a b")
            .expect_err("space")
            .to_string();
        assert!(err.contains("***@127.0.0.1"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
        // What is written right is kept as written.
        for url in [
            "http://127.0.0.1:8080/",
            "https://[::1]:8443/x?y=1",
            "HTTP://Lb.Example.Test/",
        ] {
            assert!(Target::parse(Role::Listener, url).is_ok(), "{url}");
        }
    }
}
