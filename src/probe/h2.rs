//! HTTP/2 where a TLS side negotiates it: one ALPN handshake per side says whether it does, and
//! the method checks and the limit searches then run over h2 as well, through the client
//! library, the same requests as their HTTP/1.1 bytes. Raw probes stay HTTP/1.x: h2 frames are
//! binary and HPACK-compressed, so "the exact bytes" of a malformed header have no h2 twin.

use std::time::Instant;

use crate::replay::share::AsCurl;
use crate::transport::{self, ConnEnd, Exchange};

use super::context::{Engine, Side};
use super::{Detail, Family, Observation, SentRequest};

/// The families that run again over h2 where a side negotiates it; the others are raw bytes.
pub const FAMILIES: [Family; 4] = [
    Family::Methods,
    Family::HeaderSize,
    Family::HeaderLimit,
    Family::UriLimit,
];

/// Variant suffix of every observation made over h2 (`GET h2`, `header-8190 h2`, `limit h2`).
pub const SUFFIX: &str = " h2";

/// `variant` as its h2 twin is named.
pub fn variant(variant: &str) -> String {
    format!("{variant}{SUFFIX}")
}

/// The HTTP/1.1 variant an h2 observation twins, or `None` for an HTTP/1.x one.
pub fn h1_twin(variant: &str) -> Option<&str> {
    variant.strip_suffix(SUFFIX)
}

/// What a side chose when offered h2 and http/1.1.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AlpnResult {
    pub offered: Vec<String>,
    /// `None` when the side chose no protocol, or the handshake failed.
    pub chosen: Option<String>,
}

/// One ALPN handshake offering h2 and http/1.1 to a TLS side: whether it chose h2, and the
/// observation. `None` when the budget is spent. Says nothing yet: see [`note`].
pub async fn offer(engine: &Engine, side: &Side) -> Option<(bool, Observation)> {
    engine.ticket().await.ok()?;
    let answer = transport::offer_h2(&side.endpoint, &engine.bounds(None)).await;
    let chosen = answer.tls_info.as_ref().and_then(|t| t.alpn.clone());
    let h2 = chosen.as_deref() == Some("h2");
    let obs = engine.observation(
        Family::Protocol,
        "alpn",
        side,
        false,
        &[],
        engine.sent(&side.endpoint, b"", false),
        Some(answer),
        Detail::Alpn(AlpnResult {
            offered: vec!["h2".into(), "http/1.1".into()],
            chosen,
        }),
    );
    Some((h2, obs))
}

/// The note for a side that negotiates h2: what runs over it.
pub fn note(engine: &Engine, side: &Side) {
    engine.note(format!(
        "the {} negotiates HTTP/2 (ALPN h2): method checks and limits ran over h2 too (variants ending in \"{}\"); raw probes speak HTTP/1.1 as written, over TLS without ALPN",
        side.role(),
        SUFFIX.trim()
    ));
}

/// The parts of a raw HTTP/1.1 request that an h2 request can carry: method, target and the
/// headers h2 allows (no Host, which becomes `:authority`; no connection-specific headers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct H2Request {
    pub method: String,
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// Headers HTTP/2 forbids or replaces (RFC 9113 §8.2.2), and those the client library frames.
const DROPPED: &[&str] = &[
    "host",
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
    "content-length",
    "user-agent",
];

/// Split well-formed HTTP/1.1 request bytes into what an h2 request carries; `None` for bytes
/// that are not a well-formed request (those stay HTTP/1.x only).
pub fn from_http1(bytes: &[u8]) -> Option<H2Request> {
    let text = std::str::from_utf8(bytes).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next()?.splitn(3, ' ');
    let method = request_line.next()?.to_string();
    let target = request_line.next()?.to_string();
    if !request_line.next()?.starts_with("HTTP/1.") {
        return None;
    }
    let mut headers = Vec::new();
    for line in lines {
        let (name, value) = line.split_once(':')?;
        if DROPPED.iter().any(|d| name.eq_ignore_ascii_case(d)) {
            continue;
        }
        headers.push((name.to_ascii_lowercase(), value.trim().to_string()));
    }
    Some(H2Request {
        method,
        target,
        headers,
        body: body.as_bytes().to_vec(),
    })
}

/// Send `bytes` (a well-formed HTTP/1.1 request) to `side` as an h2 request through `client`,
/// whose `origin` is `scheme://authority` without a path. `None` when the budget is spent.
pub async fn send(
    engine: &Engine,
    side: &Side,
    client: &reqwest::Client,
    origin: &str,
    bytes: &[u8],
) -> Option<(SentRequest, Exchange)> {
    engine.ticket().await.ok()?;
    send_ticketed(engine, side, client, origin, bytes).await
}

/// [`send`] once its ticket is taken ([`Engine::ticket`]): for a family that needs to know when
/// its request leaves, not when it asked to send it.
pub async fn send_ticketed(
    engine: &Engine,
    side: &Side,
    client: &reqwest::Client,
    origin: &str,
    bytes: &[u8],
) -> Option<(SentRequest, Exchange)> {
    let mut sent = engine.sent(&side.endpoint, bytes, false);
    // The bytes are the HTTP/1.1 twin; curl sends the same request over h2 when asked.
    if let Some(AsCurl::Command(line)) = &mut sent.curl {
        *line = line.replacen("curl ", "curl --http2 ", 1);
    }
    let Some(req) = from_http1(bytes) else {
        let mut ex = Exchange::not_started(&side.endpoint);
        ex.end = ConnEnd::Io("not a well-formed HTTP/1.1 request: no h2 twin".into());
        return Some((sent, ex));
    };
    let method = reqwest::Method::from_bytes(req.method.as_bytes()).ok()?;
    let mut builder = client
        .request(method, format!("{origin}{}", req.target))
        .version(reqwest::Version::HTTP_2);
    for (name, value) in &req.headers {
        builder = builder.header(name, value);
    }
    if !req.body.is_empty() {
        builder = builder.body(req.body.clone());
    }
    let started = Instant::now();
    let mut exchange = match builder.send().await {
        Ok(resp) => super::client::response_exchange(resp, started, side, bytes.len()).await,
        Err(e) => super::client::error_exchange(&e, started, side),
    };
    engine.mask_response(&mut exchange);
    Some((sent, exchange))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http1_bytes_become_an_h2_request_without_connection_headers() {
        let r = from_http1(
            b"POST /a?b=1 HTTP/1.1\r\nHost: x.test\r\nConnection: close\r\nContent-Length: 2\r\nX-Pad: aaa\r\nContent-Type: application/json\r\n\r\n{}",
        )
        .unwrap();
        assert_eq!(r.method, "POST");
        assert_eq!(r.target, "/a?b=1");
        assert_eq!(
            r.headers,
            vec![
                ("x-pad".to_string(), "aaa".to_string()),
                ("content-type".to_string(), "application/json".to_string())
            ]
        );
        assert_eq!(r.body, b"{}");
        assert!(from_http1(b"GET / HTTP/1.1\r\nBroken header\r\n\r\n").is_none());
        assert!(from_http1(b"GET /\r\n\r\n").is_none());
        assert_eq!(h1_twin("header-8190 h2"), Some("header-8190"));
        assert_eq!(h1_twin("GET"), None);
        assert_eq!(variant("limit"), "limit h2");
    }
}
