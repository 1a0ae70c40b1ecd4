//! Documented limits of a kind of load balancer, which measured behaviour is compared against.

use std::time::Duration;

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Profile {
    pub name: String,
    /// Largest single header line (`Name: value`, without CRLF) the listener documents accepting.
    pub max_header_bytes: usize,
    /// Largest header block (every header line with its CRLF) the listener documents accepting.
    pub max_header_block_bytes: usize,
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
            // The page documents one number for headers; it bounds the block too.
            max_header_block_bytes: 32 * 1024,
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
            // nginx documents no total, only 4 buffers of 8k; how many bytes of a block fit
            // depends on how its lines fill them, so the profile promises one full line.
            max_header_block_bytes: 8190,
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

    /// HAProxy 2.x defaults (configuration manual, section 3.2 `tune.bufsize`/`tune.maxrewrite`,
    /// section 4.2 `timeout`):
    /// - `tune.bufsize 16384` less `tune.maxrewrite 1024`: "If an HTTP request is larger than
    ///   (tune.bufsize - tune.maxrewrite), HAProxy will return HTTP 400". The request line and
    ///   every header share those 15 360 bytes, as HAProxy stores them (measured with 2.6 in
    ///   tests/haproxy_causes.rs: a head passes while its bytes on the wire plus 4 per header
    ///   line stay within bufsize − maxrewrite − 56), and an oversized URI gets 400, not 414.
    ///   The profile documents 15 000 bytes for a header line, a block and a URI: the shared
    ///   budget less a small request's other lines.
    /// - HAProxy has no default timeouts (an unset one waits forever and draws a startup
    ///   warning), so the profile assumes the configuration Debian and Ubuntu ship
    ///   (/etc/haproxy/haproxy.cfg: `timeout connect 5000`, `timeout client 50000`, `timeout
    ///   server 50000`); without `timeout http-request`, the client timeout bounds a request.
    /// - HAProxy passes TRACE on to the backend.
    pub fn haproxy() -> Profile {
        const HEAD_BUDGET: usize = 15_000;
        Profile {
            name: "haproxy".into(),
            max_header_bytes: HEAD_BUDGET,
            max_header_block_bytes: HEAD_BUDGET,
            max_uri_bytes: HEAD_BUDGET,
            request_timeout: Duration::from_secs(50),
            connect_timeout: Duration::from_secs(5),
            response_timeout: Duration::from_secs(50),
            // Idle server-side connections are kept for reuse and purged in batches every
            // `pool-purge-delay` (5 s by default).
            backend_keepalive_timeout: Duration::from_secs(5),
            trace_allowed: true,
            source: "HAProxy configuration manual (tune.bufsize 16384 - tune.maxrewrite 1024 \
                     shared by the request head; no default timeouts: Debian's haproxy.cfg \
                     connect 5 s, client and server 50 s)"
                .into(),
        }
    }

    /// AWS Application Load Balancer, from its quotas page ("HTTP headers": request line 16K,
    /// single header 16K, whole request header 64K) and its troubleshooting page (504 when a
    /// target connection is not established within 10 seconds; idle timeout 60 s by default;
    /// TRACE is answered with 405).
    pub fn aws_alb() -> Profile {
        Profile {
            name: "aws-alb".into(),
            max_header_bytes: 16 * 1024,
            max_header_block_bytes: 64 * 1024,
            // The 16K request line holds the method and version too.
            max_uri_bytes: 16 * 1024 - "GET  HTTP/1.1".len(),
            request_timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
            response_timeout: Duration::from_secs(60),
            // AWS asks for targets' keep-alive timeouts above the load balancer's idle
            // timeout (60 s by default), the window in which it reuses their connections.
            backend_keepalive_timeout: Duration::from_secs(60),
            trace_allowed: false,
            source: "AWS Application Load Balancer quotas (HTTP headers) and troubleshooting \
                     pages: request line 16 KB, single header 16 KB, all headers 64 KB, \
                     target connect timeout 10 s, idle timeout 60 s"
                .into(),
        }
    }

    pub fn by_name(name: &str) -> Option<Profile> {
        match name {
            "clb" => Some(Profile::clb()),
            "nginx" => Some(Profile::nginx()),
            "haproxy" => Some(Profile::haproxy()),
            "aws-alb" => Some(Profile::aws_alb()),
            _ => None,
        }
    }

    pub const NAMES: &'static [&'static str] = &["clb", "nginx", "haproxy", "aws-alb"];
}

impl Default for Profile {
    fn default() -> Self {
        Profile::clb()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_has_its_profile() {
        for name in Profile::NAMES {
            let p = Profile::by_name(name).unwrap_or_else(|| panic!("{name}"));
            assert_eq!(&p.name, name);
            assert!(!p.source.is_empty());
            // A block holds at least one line.
            assert!(p.max_header_block_bytes >= p.max_header_bytes, "{name}");
        }
        assert_eq!(Profile::by_name("envoy"), None);
    }

    #[test]
    fn alb_documents_its_quotas() {
        let p = Profile::aws_alb();
        assert_eq!(p.max_header_bytes, 16_384);
        assert_eq!(p.max_header_block_bytes, 65_536);
        assert_eq!(p.max_uri_bytes, 16_371);
        assert_eq!(p.connect_timeout, Duration::from_secs(10));
    }
}
