//! Tolerant, bounded parsing of an HTTP/1.x response from raw bytes. Pure: no I/O.

use serde::{Deserialize, Serialize};

/// Hard bounds on what the parser looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseLimits {
    /// Bytes of status line + header block considered; beyond it the head is "too large".
    pub max_head_bytes: usize,
    pub max_headers: usize,
    /// Bytes of body kept (escaped) in `body_prefix`.
    pub body_prefix_bytes: usize,
}

impl Default for ParseLimits {
    fn default() -> Self {
        ParseLimits {
            max_head_bytes: 64 * 1024,
            max_headers: 200,
            body_prefix_bytes: 512,
        }
    }
}

/// A response as far as it could be read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response {
    /// e.g. `HTTP/1.1`; whatever the status line carried.
    pub version: String,
    pub status: u16,
    pub reason: String,
    pub headers: Vec<(String, String)>,
    /// First body bytes, escaped.
    pub body_prefix: String,
    /// Body bytes received (after de-chunking when chunked).
    pub body_bytes: usize,
    pub content_length: Option<u64>,
    pub chunked: bool,
    /// The whole response (head and body as framed) was received.
    pub complete: bool,
    /// What a strict parser would object to: bad status line, invalid header lines,
    /// head too large, body shorter than Content-Length, ...
    pub problems: Vec<String>,
}

impl Response {
    /// First header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Parse whatever response bytes arrived. `None` when they do not start like HTTP.
/// `head_request` says the response to a HEAD has no body whatever its headers say.
pub fn parse_response(bytes: &[u8], head_request: bool, limits: &ParseLimits) -> Option<Response> {
    let _ = (bytes, head_request, limits);
    None
}
