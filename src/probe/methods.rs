//! The `methods` family: the curl-style method matrix, to the listener and the backend side by
//! side, so that a 405 can be attributed. A real client library (reqwest) sends the methods it
//! can; CONNECT, which it cannot send to an origin, goes out as raw bytes.

use std::time::Instant;

use crate::transport::marker::{MarkerPlace, MARKER_QUERY_KEY};
use crate::transport::mask::MARKER_HEADER;
use crate::transport::tls::Alpn;
use crate::transport::ConnEnd;

use super::client::{client_for, error_exchange, response_exchange};
use super::context::{Engine, ErrorBudget, Planned, Side, Via, ERROR_BUDGET};
use super::engine::all_at_once;
use super::{request, Detail, Family, Observation, SentRequest};

pub const MATRIX: &[&str] = &[
    "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT",
];

/// Causes every method check speaks to (opaque to the engine).
pub const EVIDENCE: &[&str] = &[
    "405.trace-unsupported",
    "405.backend-method-unsupported",
    "405.passthrough",
];

pub async fn run(engine: &Engine, sides: &[Side], only: Option<&[String]>) -> Vec<Observation> {
    let methods = chosen(only);
    let per_side = sides.iter().map(|side| {
        let methods = &methods;
        async move {
            let client = match client_for(engine, side, Alpn::Http1).await {
                Ok(c) => Some(c),
                Err(why) => {
                    engine.note(format!(
                        "methods: no HTTP client for the {}: {why}",
                        side.role()
                    ));
                    None
                }
            };
            let mut out = Vec::new();
            let mut errors = ErrorBudget::default();
            // The client library reads a response head without our bounds (a server that
            // floods interim 1xx answers holds it for the whole request timeout): after its
            // first timeout on this side, the rest go out raw, whose reads are bounded.
            let mut client = client;
            for method in methods.iter() {
                if errors.exhausted(side.role()) {
                    engine.note(format!(
                        "methods: stopped probing the {} after {} consecutive timeouts or connect failures",
                        side.role(),
                        ERROR_BUDGET
                    ));
                    break;
                }
                let obs = if !via_client_library(method) || client.is_none() {
                    raw(engine, side, method).await
                } else if let Some((client, url)) = client.as_ref() {
                    via_client(engine, side, client, url, method, false).await
                } else {
                    None
                };
                match obs {
                    Some(o) => {
                        if let Some(ex) = &o.exchange {
                            errors.record(side.role(), ex);
                            if client.is_some()
                                && via_client_library(method)
                                && ex.end == ConnEnd::Timeout
                            {
                                client = None;
                                engine.note(format!(
                                    "methods: the HTTP client got no complete answer from the {} to {method} within the request timeout; its other methods go out as raw bytes, whose reads are bounded",
                                    side.role()
                                ));
                            }
                        }
                        out.push(o)
                    }
                    None => break,
                }
            }
            if side.h2 && !errors.exhausted(side.role()) {
                out.extend(over_h2(engine, side, methods).await);
            }
            out
        }
    });
    all_at_once(per_side).await
}

/// The matrix again over h2, for a side that negotiated it: a listener may treat a method
/// differently per protocol version (nginx's h2 module is its own request parser). CONNECT
/// stays out: over h2 it is the extended tunnel handshake, not an origin request.
async fn over_h2(engine: &Engine, side: &Side, methods: &[String]) -> Vec<Observation> {
    let (client, url) = match client_for(engine, side, Alpn::H2OrHttp1).await {
        Ok(c) => c,
        Err(why) => {
            engine.note(format!(
                "methods: no HTTP/2 client for the {}: {why}",
                side.role()
            ));
            return Vec::new();
        }
    };
    let mut out = Vec::new();
    let mut errors = ErrorBudget::default();
    for method in methods.iter().filter(|m| via_client_library(m)) {
        if errors.exhausted(side.role()) {
            break;
        }
        let Some(o) = via_client(engine, side, &client, &url, method, true).await else {
            break;
        };
        if let Some(ex) = &o.exchange {
            errors.record(side.role(), ex);
        }
        out.push(o);
    }
    out
}

/// The bytes of a method check: what goes out raw, and how a client-library request is shown.
pub fn request_bytes(side: &Side, method: &str) -> Vec<u8> {
    if method == "CONNECT" {
        let authority = side.target.host_header();
        let authority = if authority.contains(':') {
            authority
        } else {
            format!("{authority}:{}", side.target.port)
        };
        request::build_for(
            "CONNECT",
            &authority,
            &authority,
            &side.extra_lines(),
            &[],
            None,
        )
    } else {
        let body = body_for(method);
        // reqwest sends the same Content-Type for the bodies it carries (see `via_client`).
        let headers: Vec<(&str, String)> = body
            .iter()
            .map(|_| ("Content-Type", "application/json".to_string()))
            .collect();
        request::build(method, side, &headers, body.map(str::as_bytes))
    }
}

/// A method check as it is sent to a side: raw bytes, or through the client library (the
/// bytes then show what it amounts to).
fn request(side: &Side, method: &str) -> Planned {
    let via = if via_client_library(method) {
        Via::ClientLibrary
    } else {
        Via::Raw
    };
    side.planned(Family::Methods, method, via, request_bytes(side, method))
}

/// Every method check the run sends a side over HTTP/1.1 (the h2 twins depend on ALPN).
pub fn plan(side: &Side, only: Option<&[String]>) -> Vec<Planned> {
    chosen(only).iter().map(|m| request(side, m)).collect()
}

/// Whether a method goes out through the client library (else as raw bytes).
pub fn via_client_library(method: &str) -> bool {
    method != "CONNECT"
}

/// The methods a run checks: the matrix, or the ones named.
pub fn chosen(only: Option<&[String]>) -> Vec<String> {
    match only {
        Some(list) => list.iter().map(|m| m.to_ascii_uppercase()).collect(),
        None => MATRIX.iter().map(|m| m.to_string()).collect(),
    }
}

async fn raw(engine: &Engine, side: &Side, method: &str) -> Option<Observation> {
    // Raw even where the plan says client library: a side without a client gets the bytes.
    let planned = Planned {
        via: Via::Raw,
        ..request(side, method)
    };
    let (sent, ex) = engine.send_planned(&planned, None).await.ok()?;
    Some(engine.observation(
        Family::Methods,
        method,
        side,
        true,
        EVIDENCE,
        sent,
        Some(ex),
        Detail::Method {
            method: method.to_string(),
            via: "raw".into(),
        },
    ))
}

fn body_for(method: &str) -> Option<&'static str> {
    matches!(method, "POST" | "PUT" | "PATCH").then_some("{}")
}

/// One method through the client library, over HTTP/2 when `h2` (the client offers it).
async fn via_client(
    engine: &Engine,
    side: &Side,
    client: &reqwest::Client,
    url: &str,
    method: &str,
    h2: bool,
) -> Option<Observation> {
    engine.ticket().await.ok()?;
    let m = reqwest::Method::from_bytes(method.as_bytes()).ok()?;
    // What reqwest sends, rendered for the report (reqwest may order or add headers itself),
    // with the run's marker where it asks for one: in the URL's query or as a header.
    let mut rendered = request(side, method).bytes;
    let mut url = reqwest::Url::parse(url).ok()?;
    let mut marker_header = None;
    if let Some((value, place, marked)) = engine.mark_client(&rendered) {
        rendered = marked;
        match place {
            MarkerPlace::Query => {
                url.query_pairs_mut().append_pair(MARKER_QUERY_KEY, &value);
            }
            MarkerPlace::Header => marker_header = Some(value),
        }
    }
    let mut req = client.request(m, url);
    if h2 {
        req = req.version(reqwest::Version::HTTP_2);
    }
    for (k, v) in &side.target.headers {
        req = req.header(k, v);
    }
    let body = body_for(method);
    if let Some(b) = body {
        req = req.header("Content-Type", "application/json").body(b);
    }
    if let Some(value) = marker_header {
        req = req.header(MARKER_HEADER, value);
    }
    let sent: SentRequest = engine.sent(&side.endpoint, &rendered, false);
    let started = Instant::now();
    let result = req.send().await;
    let mut exchange = match result {
        Ok(resp) => response_exchange(resp, started, side, rendered.len()).await,
        Err(e) => error_exchange(&e, started, side),
    };
    engine.mask_response(&mut exchange);
    let (variant, via) = if h2 {
        (super::h2::variant(method), "reqwest-h2")
    } else {
        (method.to_string(), "reqwest")
    };
    Some(engine.observation(
        Family::Methods,
        variant,
        side,
        true,
        EVIDENCE,
        sent,
        Some(exchange),
        Detail::Method {
            method: method.to_string(),
            via: via.into(),
        },
    ))
}
