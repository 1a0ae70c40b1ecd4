//! Raw TCP and TLS exchanges that write exactly the bytes they are given and record what came back.
//!
//! Nothing here knows about probes or causes. Every read is bounded in size and time: a hostile
//! server (endless headers, garbage, resets, silence) produces an [`Exchange`] describing it,
//! never a panic or a hang. `Err` is not used for the target's misbehaviour.

pub mod client_hello;
pub mod exchange;
pub mod keepalive;
pub mod marker;
pub mod mask;
pub mod partial;
pub mod pmtu;
pub mod progress;
pub mod response;
pub mod sniff;
pub mod tcp_info;
pub mod tls;
pub mod wire_bytes;

use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use exchange::{exchange, offer_h2};
pub use response::{parse_response, ParseLimits, Response};
pub use sniff::{sniff, Sniff};
pub use wire_bytes::WireBytes;

/// How to talk to an endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Wire {
    Plain,
    Tls {
        server_name: String,
        #[serde(flatten)]
        tls: tls::TlsSettings,
    },
}

/// Where to connect and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    pub wire: Wire,
    /// `-4`/`-6`: only addresses of this family; none of it is an error, never a fallback.
    pub family: Option<IpFamily>,
}

/// An IP address family a connection is held to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IpFamily {
    V4,
    V6,
}

impl IpFamily {
    pub fn admits(self, ip: &std::net::IpAddr) -> bool {
        match self {
            IpFamily::V4 => ip.is_ipv4(),
            IpFamily::V6 => ip.is_ipv6(),
        }
    }

    pub fn flag(self) -> &'static str {
        match self {
            IpFamily::V4 => "-4",
            IpFamily::V6 => "-6",
        }
    }
}

impl Endpoint {
    /// Plain HTTP to `host:port`, over whichever address family the name resolves to.
    pub fn plain(host: impl Into<String>, port: u16) -> Endpoint {
        Endpoint {
            host: host.into(),
            port,
            wire: Wire::Plain,
            family: None,
        }
    }

    /// `host:port`, plus ` (tls)` for TLS: how reports name an endpoint.
    pub fn label(&self) -> String {
        endpoint_label(&self.host, self.port, matches!(self.wire, Wire::Tls { .. }))
    }
}

pub(crate) fn endpoint_label(host: &str, port: u16, tls: bool) -> String {
    let host = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_string()
    };
    let suffix = if tls { " (tls)" } else { "" };
    format!("{host}:{port}{suffix}")
}

/// Hard limits on one exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    pub connect_timeout: Duration,
    /// Deadline for the whole exchange after the connection is up (TLS, write, read).
    pub total_timeout: Duration,
    /// Stop reading after this many bytes.
    pub max_response_bytes: usize,
    pub parse: ParseLimits,
    /// The minimum-rate rule for answer heads ([`progress`]): a head that has begun and
    /// trickles is a timeout before `total_timeout`. `None` waits for `total_timeout` alone.
    pub head_min_rate: Option<progress::MinRate>,
}

impl Default for Bounds {
    fn default() -> Self {
        Bounds {
            connect_timeout: Duration::from_secs(5),
            total_timeout: Duration::from_secs(10),
            max_response_bytes: 256 * 1024,
            parse: ParseLimits::default(),
            head_min_rate: Some(progress::MinRate::default()),
        }
    }
}

/// Millisecond timings of one exchange; `None` when the stage was never reached.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Timings {
    /// From the start to the TCP connection established (name lookup included).
    pub connect_ms: Option<f64>,
    /// The TLS handshake alone.
    pub tls_ms: Option<f64>,
    /// From the request fully written to the first byte of the answer.
    pub first_byte_ms: Option<f64>,
    /// From the start to the end of the exchange.
    pub total_ms: f64,
    /// The name lookup alone; `None` when the host is an address (nothing was looked up).
    #[serde(default)]
    pub dns_ms: Option<f64>,
    /// From the first byte of the answer to the end of reading it.
    #[serde(default)]
    pub transfer_ms: Option<f64>,
}

/// How the connection ended, as seen by us.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "detail", rename_all = "snake_case")]
pub enum ConnEnd {
    /// The server finished a complete response (by length, chunked end, or close-delimited FIN)
    /// and we stopped reading.
    Complete,
    /// The server closed with FIN before a complete response.
    Fin,
    /// The server reset the connection (RST).
    Reset,
    /// No more bytes came within the deadline.
    Timeout,
    /// We stopped reading at the size bound.
    SizeBound,
    /// The TCP connection was refused (RST to our SYN).
    ConnectRefused,
    /// No answer to our SYN within the connect timeout (silent drop).
    ConnectTimeout,
    /// The network said no (ICMP unreachable, no route, no address of the family asked for).
    Unreachable(String),
    /// The name did not resolve here: says nothing of the network path to the target.
    NameNotResolved(String),
    /// TLS handshake failed, with the reason (alert, not TLS, bad certificate...).
    TlsFailed(String),
    /// A TLS alert arrived after the handshake.
    TlsAlert(String),
    /// Any other I/O error, with its text.
    Io(String),
}

/// How a connection ended, in words for a person: `connection refused`, `unreachable: No route
/// to host (os error 113)`, `TLS handshake failed: the certificate is not issued by a trusted
/// CA`. Never the variant's name.
impl std::fmt::Display for ConnEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnEnd::Complete => f.write_str("complete"),
            ConnEnd::Fin => f.write_str("closed (FIN)"),
            ConnEnd::Reset => f.write_str("reset (RST)"),
            ConnEnd::Timeout => f.write_str("no answer in time"),
            ConnEnd::SizeBound => f.write_str("stopped at the size bound"),
            ConnEnd::ConnectRefused => f.write_str("connection refused"),
            ConnEnd::ConnectTimeout => f.write_str("the TCP handshake timed out"),
            ConnEnd::Unreachable(why) => write!(f, "unreachable: {why}"),
            ConnEnd::NameNotResolved(why) => write!(f, "name not resolved: {why}"),
            ConnEnd::TlsFailed(why) => write!(f, "TLS handshake failed: {why}"),
            ConnEnd::TlsAlert(why) => write!(f, "TLS alert: {why}"),
            ConnEnd::Io(why) => write!(f, "I/O error: {why}"),
        }
    }
}

impl ConnEnd {
    /// True when no TCP connection was ever established.
    /// No byte of the request reached the server's HTTP layer: no connection, or a TLS
    /// handshake that failed before the request could go out.
    pub fn request_never_arrived(&self) -> bool {
        self.never_connected() || matches!(self, ConnEnd::TlsFailed(_))
    }

    pub fn never_connected(&self) -> bool {
        matches!(
            self,
            ConnEnd::ConnectRefused
                | ConnEnd::ConnectTimeout
                | ConnEnd::Unreachable(_)
                | ConnEnd::NameNotResolved(_)
        )
    }

    /// The fatal alert the peer sent when a TLS handshake or session ended on one.
    pub fn peer_alert(&self) -> Option<tls::PeerAlert> {
        match self {
            ConnEnd::TlsFailed(why) | ConnEnd::TlsAlert(why) | ConnEnd::Io(why) => {
                tls::PeerAlert::in_words(why)
            }
            _ => None,
        }
    }
}

/// What happened when a request was sent: the record every probe builds on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Exchange {
    /// `host:port`, plus ` (tls)` when TLS was used.
    pub endpoint: String,
    pub tls: bool,
    pub timings: Timings,
    pub bytes_out: usize,
    pub bytes_in: usize,
    pub end: ConnEnd,
    /// Tolerant parse of whatever came back; `None` when nothing or nothing HTTP-like came back.
    pub response: Option<Response>,
    /// The first bytes received (shows garbage and non-HTTP answers); escaped in JSON.
    pub raw_prefix: WireBytes,
    /// Kernel smoothed RTT in microseconds (TCP_INFO), where available.
    pub tcp_rtt_us: Option<u32>,
    /// Kernel retransmission count for the connection (TCP_INFO), where available.
    pub tcp_retransmits: Option<u32>,
    /// The address the connection went to, after DNS, `--resolve` and `--connect-to`; `None`
    /// when no connection was made.
    #[serde(default)]
    pub peer: Option<String>,
    /// What the TLS handshake settled on; `None` for plain HTTP or a failed handshake.
    #[serde(default)]
    pub tls_info: Option<TlsInfo>,
    /// The HTTP version the exchange spoke: `HTTP/1.1` for raw bytes (written as HTTP/1.x
    /// whatever the server prefers), what the client library negotiated for its checks
    /// (`HTTP/2.0` over ALPN h2); `None` when no connection was made.
    #[serde(default)]
    pub http_version: Option<String>,
}

/// The parameters a TLS handshake negotiated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsInfo {
    /// `TLSv1.3`, `TLSv1.2`.
    pub version: String,
    /// e.g. `TLS13_AES_256_GCM_SHA384`.
    pub cipher: String,
    /// The protocol ALPN chose (`http/1.1`, `h2`), `None` when the server chose none.
    pub alpn: Option<String>,
}

impl Exchange {
    /// The record of an exchange with `endpoint` before anything happened; the stages fill it.
    pub fn not_started(endpoint: &Endpoint) -> Exchange {
        Exchange {
            tls: matches!(endpoint.wire, Wire::Tls { .. }),
            ..Exchange::ended(endpoint.label(), ConnEnd::Io("not started".into()))
        }
    }

    /// An exchange with `endpoint` (a label) that ended as `end` with nothing else recorded:
    /// no bytes, no timings, no answer. Replays and tests set what they saw on top of it, so a
    /// new field is added here once.
    pub fn ended(endpoint: impl Into<String>, end: ConnEnd) -> Exchange {
        Exchange {
            endpoint: endpoint.into(),
            tls: false,
            timings: Timings::default(),
            bytes_out: 0,
            bytes_in: 0,
            end,
            response: None,
            raw_prefix: WireBytes::default(),
            tcp_rtt_us: None,
            tcp_retransmits: None,
            peer: None,
            tls_info: None,
            http_version: None,
        }
    }

    /// An exchange with `endpoint` that got `response` in full.
    pub fn answered(endpoint: impl Into<String>, response: Response) -> Exchange {
        Exchange {
            response: Some(response),
            ..Exchange::ended(endpoint, ConnEnd::Complete)
        }
    }

    pub fn status(&self) -> Option<u16> {
        self.response.as_ref().map(|r| r.status)
    }
}

/// Cut `text` to at most `max` bytes, at a character boundary; true when something was cut.
pub fn truncate_utf8(text: &mut String, max: usize) -> bool {
    if text.len() <= max {
        return false;
    }
    let mut cut = max;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    text.truncate(cut);
    true
}

/// Escape bytes for display: printable ASCII as is, `\r` `\n` `\t` `\\` and `\xNN` otherwise.
pub fn escape_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        match b {
            b'\r' => out.push_str("\\r"),
            b'\n' => out.push_str("\\n"),
            b'\t' => out.push_str("\\t"),
            b'\\' => out.push_str("\\\\"),
            0x20..=0x7e => out.push(b as char),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out
}

/// Inverse of [`escape_bytes`], also used by probe templates to write raw bytes in YAML.
pub fn unescape_bytes(text: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(text.len());
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' {
            out.push(b[i]);
            i += 1;
            continue;
        }
        let Some(&c) = b.get(i + 1) else {
            return Err("trailing backslash".into());
        };
        match c {
            b'r' => out.push(b'\r'),
            b'n' => out.push(b'\n'),
            b't' => out.push(b'\t'),
            b'0' => out.push(0),
            b'\\' => out.push(b'\\'),
            b'x' => {
                let hex = text
                    .get(i + 2..i + 4)
                    .ok_or_else(|| format!("incomplete \\x escape at byte {i}"))?;
                let v = u8::from_str_radix(hex, 16)
                    .map_err(|_| format!("bad \\x escape {hex:?} at byte {i}"))?;
                out.push(v);
                i += 2;
            }
            other => return Err(format!("unknown escape \\{} at byte {i}", other as char)),
        }
        i += 2;
    }
    Ok(out)
}

/// An RFC 9110 token character (§5.6.2): what header names and methods are made of.
pub fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// A non-empty RFC 9110 token.
pub fn is_token(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(is_token_byte)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_stays_on_a_character_boundary() {
        let mut t = "aé€".to_string(); // 1 + 2 + 3 bytes
        assert!(!truncate_utf8(&mut t, 6));
        assert!(truncate_utf8(&mut t, 5));
        assert_eq!(t, "aé");
        assert!(truncate_utf8(&mut t, 2));
        assert_eq!(t, "a");
    }

    #[test]
    fn escape_round_trips() {
        let raw = b"GET / HTTP/1.1\r\nX: \x00\x7f\\\t\n";
        let esc = escape_bytes(raw);
        assert_eq!(esc, "GET / HTTP/1.1\\r\\nX: \\x00\\x7f\\\\\\t\\n");
        assert_eq!(unescape_bytes(&esc).unwrap(), raw.to_vec());
    }
}
