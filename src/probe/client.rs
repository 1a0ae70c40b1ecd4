//! The client library (reqwest) as probes use it: a client pinned to one side, and the
//! records of its exchanges in the engine's terms. For the checks a client library must send
//! (method checks, requests over h2), where exact bytes are not the point.

use std::net::SocketAddr;
use std::time::Instant;

use crate::transport::tls::Alpn;
use crate::transport::{ConnEnd, Exchange, Response, Timings};

use super::context::{Engine, Side};
use super::request;

/// Body bytes of a response read into the observation, at most.
const BODY_CAP: usize = 64 * 1024;

/// A client that talks only to this side: no redirects, the side's TLS settings, the SNI name
/// pinned to the side's address, HTTP/1.1 only or h2 where ALPN picks it (`alpn`). The URL is
/// the side's, path included.
pub async fn client_for(
    engine: &Engine,
    side: &Side,
    alpn: Alpn,
) -> Result<(reqwest::Client, String), String> {
    let tls = side.is_tls();
    let target = &side.target;
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(0)
        .connect_timeout(engine.connect_timeout())
        .timeout(engine.request_timeout())
        .user_agent(request::USER_AGENT);
    if alpn != Alpn::H2OrHttp1 {
        builder = builder.http1_only();
    }
    if tls {
        // The raw probes' own rustls settings (CA file, client certificate, verification), so
        // both paths trust and present the same things; ALPN as asked.
        let config = crate::transport::tls::client_config(&target.tls_settings(), alpn)
            .map_err(|e| e.to_string())?;
        builder = builder.use_preconfigured_tls((*config).clone());
    }
    // A socket bound to the family's unspecified address connects over that family only.
    match target.family {
        Some(crate::transport::IpFamily::V4) => {
            builder = builder.local_address(std::net::IpAddr::from([0u8; 4]));
        }
        Some(crate::transport::IpFamily::V6) => {
            builder = builder.local_address(std::net::IpAddr::from([0u16; 8]));
        }
        None => {}
    }
    let name = target.server_name().to_string();
    let (connect_host, connect_port) = target.connect_host_port();
    let bracketed = |h: &str| {
        if h.contains(':') {
            format!("[{h}]")
        } else {
            h.to_string()
        }
    };
    let host_in_url = if target.sni.is_some() || target.connect.is_some() {
        if name.parse::<std::net::IpAddr>().is_ok() {
            // No name to pin an address to: the URL carries the address, the Host header the
            // URL's host (below).
            bracketed(connect_host)
        } else {
            let addr: SocketAddr = tokio::net::lookup_host((connect_host, connect_port))
                .await
                .map_err(|e| format!("cannot resolve {connect_host}: {e}"))?
                .next()
                .ok_or_else(|| format!("{connect_host} resolves to nothing"))?;
            builder = builder.resolve(&name, addr);
            name
        }
    } else {
        bracketed(&target.host)
    };
    if target.connect.is_some() {
        // reqwest connects to the URL's port and names it in Host: the URL takes the connect
        // port, and Host is set back to the target's own.
        let mut headers = reqwest::header::HeaderMap::new();
        let host = reqwest::header::HeaderValue::from_str(&target.host_header())
            .map_err(|e| format!("Host header {:?}: {e}", target.host_header()))?;
        headers.insert(reqwest::header::HOST, host);
        builder = builder.default_headers(headers);
    }
    let scheme = if tls { "https" } else { "http" };
    let url = format!("{scheme}://{host_in_url}:{connect_port}{}", target.path);
    let client = builder.build().map_err(|e| e.to_string())?;
    Ok((client, url))
}

/// The record of a client-library exchange that got an answer.
pub async fn response_exchange(
    mut resp: reqwest::Response,
    started: Instant,
    side: &Side,
    bytes_out: usize,
) -> Exchange {
    let first_byte = started.elapsed();
    let status = resp.status();
    let version = format!("{:?}", resp.version());
    let http_version = version.clone();
    let peer = resp.remote_addr().map(|a| a.to_string());
    let headers: Vec<(String, String)> = resp
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let content_length = resp.content_length();
    let mut body = Vec::new();
    let mut end = ConnEnd::Complete;
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                let room = BODY_CAP.saturating_sub(body.len());
                body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                if body.len() >= BODY_CAP {
                    end = ConnEnd::SizeBound;
                    break;
                }
            }
            Ok(None) => break,
            Err(e) => {
                end = if e.is_timeout() {
                    ConnEnd::Timeout
                } else {
                    ConnEnd::Io(e.to_string())
                };
                break;
            }
        }
    }
    let complete = end == ConnEnd::Complete;
    Exchange {
        timings: Timings {
            connect_ms: None,
            tls_ms: None,
            first_byte_ms: Some(ms(first_byte)),
            total_ms: ms(started.elapsed()),
            dns_ms: None,
            transfer_ms: None,
        },
        bytes_out,
        bytes_in: body.len(),
        end,
        response: Some(Response {
            version,
            status: status.as_u16(),
            reason: status.canonical_reason().unwrap_or("").to_string(),
            headers,
            body_prefix: body[..body.len().min(512)].into(),
            body_bytes: body.len(),
            content_length,
            chunked: false,
            complete,
            problems: Vec::new(),
        }),
        http_version: Some(http_version),
        peer,
        ..Exchange::not_started(&side.endpoint)
    }
}

/// The record of a client-library exchange that failed.
pub fn error_exchange(e: &reqwest::Error, started: Instant, side: &Side) -> Exchange {
    let chain = error_chain(e);
    let end = if e.is_connect() {
        if chain.contains("refused") {
            ConnEnd::ConnectRefused
        } else if e.is_timeout() || chain.contains("timed out") {
            ConnEnd::ConnectTimeout
        } else if chain.contains("certificate") || chain.contains("tls") || chain.contains("TLS") {
            ConnEnd::TlsFailed(chain.clone())
        } else {
            ConnEnd::Unreachable(chain.clone())
        }
    } else if e.is_timeout() {
        ConnEnd::Timeout
    } else if chain.contains("reset")
        || chain.contains("http2 error: ") && chain.contains("error received")
    {
        // An h2 peer that ends the stream or the connection (RST_STREAM, GOAWAY) with an error
        // code refuses the request as a reset would: HAProxy does so for oversized headers.
        ConnEnd::Reset
    } else if chain.contains("closed") || chain.contains("incomplete") {
        ConnEnd::Fin
    } else {
        ConnEnd::Io(chain.clone())
    };
    Exchange {
        timings: Timings {
            total_ms: ms(started.elapsed()),
            dns_ms: None,
            transfer_ms: None,
            ..Timings::default()
        },
        end,
        ..Exchange::not_started(&side.endpoint)
    }
}

/// The error and its causes, without the request URL (a limit search's URL is up to 64 KiB of
/// padding) and at most [`ERROR_TEXT_MAX`] bytes.
fn error_chain(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&cause_words(s));
        source = s.source();
    }
    if let Some(url) = e.url() {
        text = text.replace(&format!(" for url ({url})"), "");
    }
    if crate::transport::truncate_utf8(&mut text, ERROR_TEXT_MAX) {
        text.push('…');
    }
    text
}

const ERROR_TEXT_MAX: usize = 400;

/// One cause of a client-library error in words: a rustls error (bare, or inside the I/O
/// error hyper wraps it in) in [`crate::transport::tls::error_words`]'s, since rustls's own
/// text names some reasons as Rust values.
fn cause_words(cause: &(dyn std::error::Error + 'static)) -> String {
    match rustls_inside(cause) {
        Some(tls) => crate::transport::tls::error_words(tls),
        None => cause.to_string(),
    }
}

/// The rustls error `e` is, or wraps in I/O errors: tokio-rustls wraps it in one, and
/// hyper-rustls wraps that in another.
fn rustls_inside<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    if let Some(tls) = e.downcast_ref::<rustls::Error>() {
        return Some(tls);
    }
    let inner = e.downcast_ref::<std::io::Error>()?.get_ref()?;
    rustls_inside(inner)
}

fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
