//! Documented limits of a kind of load balancer, which measured behaviour is compared against.

use std::time::Duration;

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Profile {
    pub name: String,
    /// Largest single header line (`Name: value`, without CRLF) the listener documents accepting.
    pub max_header_bytes: usize,
    /// Largest request URI the listener documents accepting.
    pub max_uri_bytes: usize,
    /// How long the listener waits for a complete client request.
    #[serde(with = "secs")]
    pub request_timeout: Duration,
    /// How long the listener waits for a TCP connection to a backend.
    #[serde(with = "secs")]
    pub connect_timeout: Duration,
    /// How long the listener waits for a backend's response once the request is sent.
    #[serde(with = "secs")]
    pub response_timeout: Duration,
    /// How long the listener keeps an idle connection to a backend open for reuse: a backend
    /// that closes idle connections sooner meets the keep-alive race (`502.keepalive-race`).
    #[serde(with = "secs")]
    pub backend_keepalive_timeout: Duration,
    /// Whether the listener passes TRACE on.
    pub trace_allowed: bool,
    /// Where the numbers come from.
    pub source: String,
}

mod secs {
    use std::time::Duration;

    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }
}

impl Profile {
    /// The cloud load balancer of the reference page.
    pub fn clb() -> Profile {
        Profile {
            name: "clb".into(),
            max_header_bytes: 32 * 1024,
            max_uri_bytes: 32 * 1024,
            request_timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(5),
            response_timeout: Duration::from_secs(60),
            // Not on the reference page. Assumed: the load balancer's 60 s idle timeout also
            // bounds reuse of its backend connections, as with most cloud load balancers (AWS
            // ALB's default idle timeout is 60 s); override it when yours is set otherwise.
            backend_keepalive_timeout: Duration::from_secs(60),
            trace_allowed: false,
            source: "CLB error status codes page (docs/causes.md)".into(),
        }
    }

    /// nginx defaults: `large_client_header_buffers 4 8k` (a header line or the request line
    /// must fit one 8 KiB buffer with its CRLF), `client_header_timeout 60s`,
    /// `proxy_connect_timeout 60s`, `proxy_read_timeout 60s`; nginx answers TRACE with 405.
    pub fn nginx() -> Profile {
        Profile {
            name: "nginx".into(),
            max_header_bytes: 8190,
            max_uri_bytes: 8192 - "GET  HTTP/1.1\r\n".len(),
            request_timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(60),
            response_timeout: Duration::from_secs(60),
            // `keepalive_timeout` inside an `upstream` block with `keepalive N` (since 1.15.3):
            // default 60 s. Without `keepalive`, nginx does not reuse backend connections.
            backend_keepalive_timeout: Duration::from_secs(60),
            trace_allowed: false,
            source: "nginx documentation defaults (large_client_header_buffers 4 8k)".into(),
        }
    }

    pub fn by_name(name: &str) -> Option<Profile> {
        match name {
            "clb" => Some(Profile::clb()),
            "nginx" => Some(Profile::nginx()),
            _ => None,
        }
    }

    pub const NAMES: &'static [&'static str] = &["clb", "nginx"];
}

impl Default for Profile {
    fn default() -> Self {
        Profile::clb()
    }
}
