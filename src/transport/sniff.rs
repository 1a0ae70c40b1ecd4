//! What does a port speak? Plain HTTP, TLS, or nothing.

use serde::{Deserialize, Serialize};

use super::{Bounds, ConnEnd};

/// The verdict of a protocol sniff on one port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "speaks", rename_all = "kebab-case")]
pub enum Sniff {
    /// A TLS handshake got a ServerHello (certificate not verified: we only ask what it speaks).
    Tls { version: Option<String> },
    /// A plain HTTP request got an HTTP status line back.
    PlainHttp { status: u16 },
    /// Connected, but neither TLS nor HTTP came back; `detail` says what did.
    Neither { detail: String },
    /// Could not connect at all.
    Unreachable { end: ConnEnd },
}

/// Find out what `host:port` speaks. Tries TLS first (a plain-HTTP server answers a
/// ClientHello with a 400 or a close, which is cheap), then plain HTTP.
pub async fn sniff(host: &str, port: u16, server_name: &str, bounds: &Bounds) -> Sniff {
    let _ = (host, port, server_name, bounds);
    Sniff::Neither {
        detail: "not implemented".into(),
    }
}
