//! Synthetic observations for the classifier and report tests: what the probe engine would record,
//! built by hand so that every answer, body and timing is fixed.

#![allow(
    dead_code,
    reason = "each test binary uses its own part of the helpers: `expect` would go unfulfilled in one that uses them all"
)]

pub mod debug_text;
pub mod findings;
pub mod outcome;
pub mod report_json;
pub mod says;
pub mod timing;

use lbprobe::probe::{templates, Detail, Family, LimitSearch, Observation, SentRequest};
use lbprobe::target::Role;
use lbprobe::transport::{
    escape_bytes, unescape_bytes, ConnEnd, Exchange, Response, Sniff, Timings,
};

pub const LISTENER: Role = Role::Listener;
pub const BACKEND: Role = Role::Backend;

/// Evidence tags as the probes set them.
pub use lbprobe::probe::methods::EVIDENCE as METHOD_EVIDENCE;
pub use lbprobe::probe::protocol::{
    BASELINE_EVIDENCE, PLAIN_TO_TLS_BACKEND, PLAIN_TO_TLS_BACKEND_EVIDENCE, PLAIN_TO_TLS_EVIDENCE,
    SNIFF_EVIDENCE,
};

pub const HEADER_EVIDENCE: &[&str] = &["400.header-too-large"];

/// The error page nginx writes itself, escaped as `body_prefix` holds it.
pub fn nginx_page(status: u16, reason: &str) -> String {
    escape_bytes(
        format!(
            "<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n\
             <center><h1>{status} {reason}</h1></center>\r\n<hr><center>nginx/1.22.1</center>\r\n\
             </body>\r\n</html>\r\n"
        )
        .as_bytes(),
    )
}

/// nginx's page for plain HTTP sent to its TLS port.
pub fn nginx_plain_to_tls_page() -> String {
    escape_bytes(
        b"<html>\r\n<head><title>400 The plain HTTP request was sent to HTTPS port</title></head>\r\n\
          <body>\r\n<center><h1>400 Bad Request</h1></center>\r\n\
          <center>The plain HTTP request was sent to HTTPS port</center>\r\n\
          <hr><center>nginx/1.22.1</center>\r\n</body>\r\n</html>\r\n",
    )
}

/// A backend application's own JSON body.
pub fn app_body(status: u16) -> String {
    format!("{{\"status\":{status},\"from\":\"app\"}}")
}

/// One observation under construction.
pub struct Obs {
    o: Observation,
}

/// Start an observation of `family`/`variant` sent to `role`, with the evidence tags and
/// well-formedness the engine would give it.
pub fn obs(family: Family, variant: &str, role: Role) -> Obs {
    let (well_formed, evidence): (bool, Vec<String>) = match family {
        Family::Protocol => match variant {
            "baseline" => (true, strings(BASELINE_EVIDENCE)),
            "sniff" => (true, strings(SNIFF_EVIDENCE)),
            "plain-http-to-tls-port" => (true, strings(PLAIN_TO_TLS_EVIDENCE)),
            PLAIN_TO_TLS_BACKEND => (false, strings(PLAIN_TO_TLS_BACKEND_EVIDENCE)),
            _ => (true, Vec::new()),
        },
        Family::Malformed => templates::malformed()
            .iter()
            .find(|t| t.id == variant)
            .map(|t| (t.well_formed, t.evidence_for.clone()))
            .unwrap_or_else(|| panic!("no malformed template {variant:?}")),
        Family::Methods => (true, strings(METHOD_EVIDENCE)),
        Family::HeaderSize | Family::HeaderLimit => (true, strings(HEADER_EVIDENCE)),
        _ => (true, Vec::new()),
    };
    let detail = match family {
        Family::Methods => Detail::Method {
            method: variant.to_string(),
            via: if variant == "CONNECT" {
                "raw"
            } else {
                "reqwest"
            }
            .into(),
        },
        _ => Detail::None,
    };
    let request = format!("GET / HTTP/1.1\\r\\nHost: {}\\r\\n\\r\\n", host(role));
    let bytes = unescape_bytes(&request).map_or(0, |b| b.len());
    Obs {
        o: Observation {
            id: String::new(),
            family,
            variant: variant.to_string(),
            role,
            well_formed,
            evidence_for: evidence,
            request: SentRequest::described(request, bytes, family != Family::Methods),
            exchange: None,
            detail,
            logged: None,
        },
    }
}

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn host(role: Role) -> &'static str {
    match role {
        Role::Listener => "127.0.0.1:8443",
        Role::Backend => "127.0.0.1:9090",
    }
}

fn exchange(role: Role, tls: bool) -> Exchange {
    let endpoint = if tls {
        format!("{} (tls)", host(role))
    } else {
        host(role).to_string()
    };
    Exchange {
        tls,
        timings: Timings {
            connect_ms: Some(0.5),
            tls_ms: tls.then_some(1.25),
            first_byte_ms: Some(2.0),
            total_ms: 2.5,
            dns_ms: None,
            transfer_ms: None,
        },
        bytes_out: 64,
        tcp_rtt_us: Some(40),
        tcp_retransmits: Some(0),
        ..Exchange::ended(endpoint, ConnEnd::Complete)
    }
}

/// Escaped text cut anywhere, as bytes: an escape the cut split is left out.
fn unescape_cut(text: &str) -> Vec<u8> {
    let mut end = text.len();
    for _ in 0..4 {
        if let Ok(bytes) = unescape_bytes(&text[..end]) {
            return bytes;
        }
        end = text[..end].char_indices().last().map_or(0, |(i, _)| i);
    }
    Vec::new()
}

impl Obs {
    /// The side answered `status reason` with `body` (already escaped, as `body_prefix` is).
    pub fn answer(mut self, status: u16, reason: &str, body: &str) -> Obs {
        let tls = self.o.role == Role::Listener && self.o.variant != "plain-http-to-tls-port";
        let server = if body.contains("nginx") || self.o.role == Role::Listener {
            "nginx/1.22.1"
        } else {
            "lab-app"
        };
        let mut ex = exchange(self.o.role, tls);
        let head = format!(
            "HTTP/1.1 {status} {reason}\r\nServer: {server}\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        // The fixture's sizes and first 120 characters are counted on the escaped text, as
        // the reports this table was written against showed them.
        let escaped: String = format!("{}{body}", escape_bytes(head.as_bytes()))
            .chars()
            .take(120)
            .collect();
        ex.bytes_in = escape_bytes(head.as_bytes()).len() + body.len();
        ex.raw_prefix = unescape_cut(&escaped).into();
        // Sizes are the escaped body's, as the reports this table was written against showed.
        let length = body.len().to_string();
        let headers = [("Server", server), ("Content-Length", length.as_str())];
        ex.response = Some(Response {
            body_prefix: unescape_bytes(body).expect("an escaped body").into(),
            ..Response::complete(status, reason, &headers, body.as_bytes())
        });
        self.o.exchange = Some(ex);
        self
    }

    /// Add a response header (after [`Obs::answer`]).
    pub fn header(mut self, name: &str, value: &str) -> Obs {
        let r = self
            .o
            .exchange
            .as_mut()
            .and_then(|e| e.response.as_mut())
            .expect("header() after answer()");
        r.headers.push((name.into(), value.into()));
        self
    }

    /// No HTTP answer: the connection ended this way.
    pub fn ended(mut self, end: ConnEnd) -> Obs {
        let mut ex = exchange(self.o.role, false);
        if end.never_connected() {
            ex.timings = Timings {
                total_ms: 5000.0,
                dns_ms: None,
                transfer_ms: None,
                ..Timings::default()
            };
            ex.tcp_rtt_us = None;
            ex.tcp_retransmits = None;
        }
        ex.end = end;
        self.o.exchange = Some(ex);
        self
    }

    pub fn detail(mut self, detail: Detail) -> Obs {
        self.o.detail = detail;
        self
    }

    /// Rename the variant (e.g. to its h2 twin).
    pub fn variant(mut self, variant: &str) -> Obs {
        self.o.variant = variant.to_string();
        self
    }

    pub fn build(self) -> Observation {
        self.o
    }
}

/// Number observations `o1`, `o2`, ... in order, as the engine does at the end of a run.
pub fn numbered(list: Vec<Obs>) -> Vec<Observation> {
    list.into_iter()
        .enumerate()
        .map(|(i, b)| {
            let mut o = b.build();
            o.id = format!("o{}", i + 1);
            o
        })
        .collect()
}

// ---- Shorthands for the observations most rows need.

pub fn baseline(role: Role, status: u16, reason: &str) -> Obs {
    obs(Family::Protocol, "baseline", role).answer(status, reason, &app_body(status))
}

pub fn sniff(role: Role, sniff: Sniff) -> Obs {
    obs(Family::Protocol, "sniff", role).detail(Detail::Sniff { sniff })
}

pub fn sniff_tls(role: Role) -> Obs {
    sniff(
        role,
        Sniff::Tls {
            version: Some("TLSv1.3".into()),
            certificate: None,
        },
    )
}

pub fn sniff_plain(role: Role) -> Obs {
    sniff(role, Sniff::PlainHttp { status: 200 })
}

pub fn method(role: Role, name: &str, status: u16, reason: &str, body: &str) -> Obs {
    obs(Family::Methods, name, role).answer(status, reason, body)
}

pub fn malformed(variant: &str, role: Role, status: u16, reason: &str, body: &str) -> Obs {
    obs(Family::Malformed, variant, role).answer(status, reason, body)
}

/// A finished header-size limit search on one side.
pub fn limit(
    role: Role,
    accepted: Option<usize>,
    rejected: Option<usize>,
    status: Option<u16>,
) -> Obs {
    finished_search(Family::HeaderSize, role, accepted, rejected, status)
}

/// The `limit` observation of a URI search on `role`.
pub fn uri_limit(
    role: Role,
    accepted: Option<usize>,
    rejected: Option<usize>,
    status: Option<u16>,
) -> Obs {
    finished_search(Family::UriLimit, role, accepted, rejected, status)
}

/// The `limit` observation of a finished search of `family` (header size or URI length).
fn finished_search(
    family: Family,
    role: Role,
    accepted: Option<usize>,
    rejected: Option<usize>,
    status: Option<u16>,
) -> Obs {
    let exact = matches!((accepted, rejected), (Some(a), Some(r)) if r == a + 1);
    obs(family, "limit", role).detail(Detail::Limit(LimitSearch {
        largest_accepted: accepted,
        smallest_rejected: rejected,
        rejected_status: status,
        requests: 17,
        exact,
        refuses_everything: false,
    }))
}

/// The `limit` observation of a header search that found the side refusing even its smallest
/// request.
pub fn refusing_everything(role: Role) -> Obs {
    obs(Family::HeaderSize, "limit", role).detail(Detail::Limit(LimitSearch {
        largest_accepted: None,
        smallest_rejected: Some(1024),
        rejected_status: Some(400),
        requests: 2,
        exact: false,
        refuses_everything: true,
    }))
}

/// One padded header request of `bytes` bytes.
pub fn header_probe(role: Role, bytes: usize, status: u16, reason: &str, body: &str) -> Obs {
    obs(Family::HeaderSize, &format!("header-{bytes}"), role)
        .answer(status, reason, body)
        .detail(Detail::Size { bytes })
}

/// One padded header request of `bytes` bytes that nginx refused with its own 400 page, as its
/// default 8 KiB buffers refuse anything above 8190 bytes.
pub fn nginx_refused_header(role: Role, bytes: usize) -> Obs {
    header_probe(
        role,
        bytes,
        400,
        "Bad Request",
        &nginx_page(400, "Bad Request"),
    )
}

/// One request of a URI search, `bytes` bytes of request target.
pub fn uri_probe(role: Role, bytes: usize, status: u16, reason: &str, body: &str) -> Obs {
    obs(Family::UriLimit, &format!("uri-{bytes}"), role)
        .answer(status, reason, body)
        .detail(Detail::Size { bytes })
}

/// HAProxy's own error page for `status`, escaped as `body_prefix` holds it (2.6's pages).
pub fn haproxy_page(status: u16, title: &str, sentence: &str) -> String {
    escape_bytes(
        format!("<html><body><h1>{status} {title}</h1>\n{sentence}\n</body></html>\n").as_bytes(),
    )
}

impl Obs {
    /// Drop a response header (after [`Obs::answer`]): HAProxy's and Go's own answers carry no
    /// `Server` header.
    pub fn without_header(mut self, name: &str) -> Obs {
        let r = self
            .o
            .exchange
            .as_mut()
            .and_then(|e| e.response.as_mut())
            .expect("without_header() after answer()");
        r.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self
    }

    /// Replace every response header (after [`Obs::answer`]).
    pub fn headers_exactly(mut self, headers: &[(&str, &str)]) -> Obs {
        let r = self
            .o
            .exchange
            .as_mut()
            .and_then(|e| e.response.as_mut())
            .expect("headers_exactly() after answer()");
        r.headers = headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        self
    }
}
