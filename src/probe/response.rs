//! The `response` family: the backend's answer to a valid request, parsed strictly, and the
//! listener's answer to the same request.
//!
//! A valid GET and a valid HEAD go to every side at once; each answer becomes a
//! [`ResponseCheck`]: what a strict HTTP/1.1 parser objects to, and whether the answer arrived
//! whole before the connection ended. The HEAD shows the header block alone, so a body fault
//! (a short body) and a head fault (a broken header) can be told apart.

use std::fmt;

use serde::Serialize;

use crate::transport::{ConnEnd, Exchange};

use super::context::{Engine, Planned, Side, Via};
use super::engine::all_at_once;
use super::{request, Detail, Family, Observation};

/// The causes this family speaks to (opaque to the engine, read by the classifier).
pub const EVIDENCE_FOR: &[&str] = &[
    "502.malformed-backend-response",
    "500.backend-closed-early",
    "502.backend-error-mapped",
];

/// Escaped characters of a non-HTTP answer kept in [`Problem::NotHttp`].
const PREFIX_CHARS: usize = 80;
/// Escaped characters of a TLS record kept in [`Problem::SpeaksTls`]: its header says enough.
const TLS_PREFIX_CHARS: usize = 28;

/// The requests of the family: variant name and method.
const METHODS: [(&str, &str); 2] = [("get", "GET"), ("head", "HEAD")];

/// How the connection of one answer ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Ending {
    /// The answer was complete when we stopped reading.
    Complete,
    /// The server closed (FIN) before a complete answer.
    Fin,
    /// The server reset the connection (RST) before a complete answer.
    Reset,
    /// Nothing more came within the probe's time bound.
    Timeout,
    /// The answer was larger than we read.
    SizeBound,
    /// No TCP connection was made.
    NotConnected,
    /// TLS failed (handshake or alert).
    Tls,
    /// Another I/O error.
    Io,
}

impl Ending {
    fn of(end: &ConnEnd) -> Ending {
        match end {
            ConnEnd::Complete => Ending::Complete,
            ConnEnd::Fin => Ending::Fin,
            ConnEnd::Reset => Ending::Reset,
            ConnEnd::Timeout => Ending::Timeout,
            ConnEnd::SizeBound => Ending::SizeBound,
            ConnEnd::ConnectRefused
            | ConnEnd::ConnectTimeout
            | ConnEnd::Unreachable(_)
            | ConnEnd::NameNotResolved(_) => Ending::NotConnected,
            ConnEnd::TlsFailed(_) | ConnEnd::TlsAlert(_) => Ending::Tls,
            ConnEnd::Io(_) => Ending::Io,
        }
    }

    /// The server itself ended the connection (FIN or RST).
    pub fn closed_by_server(self) -> bool {
        matches!(self, Ending::Fin | Ending::Reset)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Ending::Complete => "complete",
            Ending::Fin => "closed (FIN)",
            Ending::Reset => "reset (RST)",
            Ending::Timeout => "timed out",
            Ending::SizeBound => "stopped at the size bound",
            Ending::NotConnected => "never connected",
            Ending::Tls => "TLS failed",
            Ending::Io => "I/O error",
        }
    }
}

/// One thing a strict parser objects to in an answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Problem {
    /// The bytes do not begin like an HTTP response at all.
    NotHttp {
        prefix: String,
    },
    /// The bytes are a TLS record (a handshake or an alert): the port speaks TLS, and nothing
    /// HTTP was answered, malformed or not.
    SpeaksTls {
        prefix: String,
    },
    MalformedStatusLine {
        detail: String,
    },
    /// A header line a strict parser refuses (no colon, bad name, obs-fold, NUL or CR).
    InvalidHeader {
        detail: String,
    },
    /// The header block is larger than the parser's bound, or has too many lines.
    HeaderBlockTooLarge {
        detail: String,
    },
    /// Content-Length / Transfer-Encoding that a strict parser cannot frame a body with.
    InvalidFraming {
        detail: String,
    },
    /// The connection ended before the empty line that ends the header block.
    ClosedInHeaders,
    /// The connection ended after `received` of the `expected` body bytes.
    ShortBody {
        received: u64,
        expected: u64,
    },
    ChunkedNotTerminated {
        detail: String,
    },
    /// The server closed (FIN) or reset (RST) without sending a byte: nginx's 444 does this.
    NoResponse {
        ending: Ending,
    },
    /// The connection ended before the answer was complete, in a way none of the above names.
    EndedEarly {
        ending: Ending,
        received: usize,
    },
    /// No complete answer within the probe's time bound.
    Timeout {
        received: usize,
    },
    /// Bytes after the end of the framed response.
    TrailingBytes {
        detail: String,
    },
    Other {
        detail: String,
    },
}

impl Problem {
    /// The answer's form is wrong (as opposed to its being cut short): what a listener refuses
    /// to relay and answers 502 for.
    pub fn is_malformed(&self) -> bool {
        matches!(
            self,
            Problem::NotHttp { .. }
                | Problem::MalformedStatusLine { .. }
                | Problem::InvalidHeader { .. }
                | Problem::HeaderBlockTooLarge { .. }
                | Problem::InvalidFraming { .. }
        )
    }

    /// The answer was cut short by the server's close.
    pub fn is_cut_short(&self) -> bool {
        matches!(
            self,
            Problem::ClosedInHeaders
                | Problem::ShortBody { .. }
                | Problem::ChunkedNotTerminated { .. }
                | Problem::NoResponse { .. }
                | Problem::EndedEarly { .. }
        )
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::NotHttp { prefix } => write!(f, "not an HTTP response: \"{prefix}\""),
            Problem::SpeaksTls { prefix } => write!(
                f,
                "a TLS record, not an HTTP answer (\"{prefix}\"): the port speaks TLS"
            ),
            Problem::MalformedStatusLine { detail }
            | Problem::InvalidHeader { detail }
            | Problem::HeaderBlockTooLarge { detail }
            | Problem::InvalidFraming { detail }
            | Problem::ChunkedNotTerminated { detail }
            | Problem::TrailingBytes { detail }
            | Problem::Other { detail } => f.write_str(detail),
            Problem::ClosedInHeaders => {
                f.write_str("the connection ended before the end of the headers")
            }
            Problem::ShortBody { received, expected } => write!(
                f,
                "body shorter than Content-Length: {received} of {expected} bytes before the close"
            ),
            Problem::NoResponse { ending } => {
                write!(
                    f,
                    "no response: the connection was {} with no byte sent",
                    ending.as_str()
                )
            }
            Problem::EndedEarly { ending, received } => write!(
                f,
                "the connection was {} after {received} bytes, before the answer was complete",
                ending.as_str()
            ),
            Problem::Timeout { received } => write!(
                f,
                "no complete answer within the time bound ({received} bytes received)"
            ),
        }
    }
}

/// What a strict parse of one answer found.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct ResponseCheck {
    /// The request's method (`GET`, `HEAD`): a HEAD's answer has no body whatever it announces.
    pub method: String,
    pub status: Option<u16>,
    /// The whole answer arrived, framed by its own headers (or by the close when it has no
    /// length).
    pub complete: bool,
    pub ending: Ending,
    pub bytes_in: usize,
    /// Bytes of the status line and header block, when the framing lets us count them.
    pub head_bytes: Option<usize>,
    pub problems: Vec<Problem>,
}

impl ResponseCheck {
    /// Judge one exchange. Pure: the transport's tolerant parse already lists what a strict
    /// parser objects to; here those objections get kinds, and the connection's end is added.
    pub fn of(method: &str, exchange: &Exchange) -> ResponseCheck {
        let ending = Ending::of(&exchange.end);
        let response = exchange.response.as_ref();
        let mut problems = Vec::new();
        match response {
            Some(r) => {
                for text in &r.problems {
                    problems.push(kind_of(text, r));
                }
            }
            // The server's half of a handshake that failed (often on the certificate): TLS
            // talking, which the connection's end already says.
            None if matches!(exchange.end, ConnEnd::TlsFailed(_)) => {}
            None if exchange.bytes_in > 0 && exchange.raw_prefix.is_tls_record() => {
                problems.push(Problem::SpeaksTls {
                    prefix: exchange
                        .raw_prefix
                        .escaped()
                        .chars()
                        .take(TLS_PREFIX_CHARS)
                        .collect(),
                })
            }
            None if exchange.bytes_in > 0 => problems.push(Problem::NotHttp {
                prefix: exchange
                    .raw_prefix
                    .escaped()
                    .chars()
                    .take(PREFIX_CHARS)
                    .collect(),
            }),
            None => {}
        }
        let complete = response.is_some_and(|r| r.complete) && ending == Ending::Complete;
        if !ending.closed_by_server() {
            // A body still short when our bound ran out was not cut short by the server: it
            // was slow (or larger than we read). Only a close makes it a short body.
            problems.retain(|p| {
                !matches!(
                    p,
                    Problem::ShortBody { .. } | Problem::ChunkedNotTerminated { .. }
                )
            });
        }
        if !complete {
            // A malformed answer cannot complete either; saying it also ended early adds nothing.
            let explained = problems
                .iter()
                .any(|p| p.is_cut_short() || p.is_malformed());
            match ending {
                Ending::Fin | Ending::Reset if exchange.bytes_in == 0 => {
                    problems.push(Problem::NoResponse { ending })
                }
                Ending::Fin | Ending::Reset if !explained && response.is_some() => {
                    problems.push(Problem::EndedEarly {
                        ending,
                        received: exchange.bytes_in,
                    })
                }
                Ending::Timeout => problems.push(Problem::Timeout {
                    received: exchange.bytes_in,
                }),
                Ending::Tls | Ending::Io => problems.push(Problem::Other {
                    detail: exchange.end.to_string(),
                }),
                _ => {}
            }
        }
        let head_bytes = response.and_then(|r| {
            let trailing = problems
                .iter()
                .any(|p| matches!(p, Problem::TrailingBytes { .. }));
            (complete && !r.chunked && !trailing)
                .then(|| exchange.bytes_in.saturating_sub(r.body_bytes))
        });
        ResponseCheck {
            method: method.to_string(),
            // A status line without a three-digit code parses as 0: there is no status.
            status: response.map(|r| r.status).filter(|&s| s != 0),
            complete,
            ending,
            bytes_in: exchange.bytes_in,
            head_bytes,
            problems,
        }
    }

    /// What makes the answer malformed (empty when its form is valid).
    pub fn malformed(&self) -> Vec<&Problem> {
        self.problems.iter().filter(|p| p.is_malformed()).collect()
    }

    /// The server closed or reset before the answer was complete.
    pub fn cut_short(&self) -> Option<&Problem> {
        self.problems.iter().find(|p| p.is_cut_short())
    }

    /// The server closed or reset without sending anything.
    pub fn no_response(&self) -> bool {
        self.problems
            .iter()
            .any(|p| matches!(p, Problem::NoResponse { .. }))
    }

    /// Complete, and nothing a strict parser objects to in its form.
    pub fn clean(&self) -> bool {
        self.complete && self.malformed().is_empty()
    }
}

/// The kind of one of the transport's problem texts (see `transport::response`).
fn kind_of(text: &str, r: &crate::transport::Response) -> Problem {
    let detail = text.to_string();
    if text.starts_with("malformed status line") || text.starts_with("bytes after interim") {
        Problem::MalformedStatusLine { detail }
    } else if text.starts_with("obs-fold")
        || text.starts_with("header line without colon")
        || text.starts_with("whitespace before colon")
        || text.starts_with("invalid header name")
        || text.starts_with("NUL or CR in the value")
    {
        Problem::InvalidHeader { detail }
    } else if text.starts_with("head larger than")
        || (text.starts_with("more than ") && text.ends_with(" headers"))
    {
        Problem::HeaderBlockTooLarge { detail }
    } else if text.starts_with("invalid Content-Length")
        || text.starts_with("conflicting Content-Length")
        || text.starts_with("both Transfer-Encoding and Content-Length")
    {
        Problem::InvalidFraming { detail }
    } else if text.starts_with("body shorter than Content-Length") {
        Problem::ShortBody {
            received: r.body_bytes as u64,
            expected: r.content_length.unwrap_or(0),
        }
    } else if text.starts_with("chunked body not terminated: ") {
        // A chunk-size line or chunk end that does not parse: broken framing, not a cut.
        Problem::InvalidFraming { detail }
    } else if text.starts_with("chunked body not terminated") {
        Problem::ChunkedNotTerminated { detail }
    } else if text.starts_with("connection closed before the end of the headers") {
        Problem::ClosedInHeaders
    } else if text.contains("bytes after the end of the response") {
        Problem::TrailingBytes { detail }
    } else {
        Problem::Other { detail }
    }
}

/// The valid requests of the family for one side, with their methods.
fn requests(side: &Side) -> Vec<(&'static str, Planned)> {
    METHODS
        .iter()
        .map(|&(variant, method)| {
            let bytes = request::build(method, side, &[], None);
            (
                method,
                side.planned(Family::Response, variant, Via::Raw, bytes),
            )
        })
        .collect()
}

/// A valid GET and HEAD to every side, all at once (they do not disturb each other): the
/// backend's answers say what it sends, the listener's what it makes of it.
pub async fn run(engine: &Engine, sides: &[Side]) -> Vec<Observation> {
    let sends = sides.iter().flat_map(|side| {
        requests(side)
            .into_iter()
            .map(move |(method, planned)| async move {
                let (sent, exchange) = engine.send_planned(&planned, None).await.ok()?;
                let check = ResponseCheck::of(method, &exchange);
                Some(engine.observation(
                    Family::Response,
                    planned.variant,
                    side,
                    true,
                    EVIDENCE_FOR,
                    sent,
                    Some(exchange),
                    Detail::Response(check),
                ))
            })
    });
    all_at_once(sends).await
}

/// The requests a run sends to a side.
pub fn plan(side: &Side) -> Vec<Planned> {
    requests(side)
        .into_iter()
        .map(|(_, planned)| planned)
        .collect()
}

/// Exchanges built from bytes the way the transport builds them, for table tests here and in
/// the classifier.
#[cfg(test)]
pub(crate) mod test_support {
    use crate::transport::response::{parse_response, parse_response_closed};
    use crate::transport::{ConnEnd, Exchange, ParseLimits};

    /// The exchange a GET (or HEAD) gets when the server sends `raw` and the read ends with
    /// `end`: a FIN completes a close-delimited body, as in the transport.
    pub(crate) fn exchange(raw: &[u8], end: ConnEnd, head: bool) -> Exchange {
        let limits = ParseLimits::default();
        let (end, response) = match end {
            ConnEnd::Fin => {
                let r = parse_response_closed(raw, head, &limits);
                let end = if r.as_ref().is_some_and(|r| r.complete) {
                    ConnEnd::Complete
                } else {
                    ConnEnd::Fin
                };
                (end, r)
            }
            other => (other, parse_response(raw, head, &limits)),
        };
        Exchange {
            bytes_out: 10,
            bytes_in: raw.len(),
            response,
            raw_prefix: crate::transport::WireBytes::from(&raw[..raw.len().min(512)]),
            ..Exchange::ended("127.0.0.1:1", end)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::exchange;
    use super::*;

    fn check(raw: &[u8], end: ConnEnd) -> ResponseCheck {
        ResponseCheck::of("GET", &exchange(raw, end, false))
    }

    fn kinds(c: &ResponseCheck) -> Vec<&'static str> {
        c.problems
            .iter()
            .map(|p| match p {
                Problem::NotHttp { .. } => "not-http",
                Problem::SpeaksTls { .. } => "speaks-tls",
                Problem::MalformedStatusLine { .. } => "status-line",
                Problem::InvalidHeader { .. } => "header",
                Problem::HeaderBlockTooLarge { .. } => "too-large",
                Problem::InvalidFraming { .. } => "framing",
                Problem::ClosedInHeaders => "closed-in-headers",
                Problem::ShortBody { .. } => "short-body",
                Problem::ChunkedNotTerminated { .. } => "chunked",
                Problem::NoResponse { .. } => "no-response",
                Problem::EndedEarly { .. } => "ended-early",
                Problem::Timeout { .. } => "timeout",
                Problem::TrailingBytes { .. } => "trailing",
                Problem::Other { .. } => "other",
            })
            .collect()
    }

    const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nServer: x\r\n\r\nok";

    #[test]
    fn clean_answer() {
        let c = check(OK, ConnEnd::Complete);
        assert!(c.clean() && c.complete, "{c:?}");
        assert_eq!(c.status, Some(200));
        assert!(c.problems.is_empty());
        assert_eq!(c.head_bytes, Some(OK.len() - 2));
        // Close-delimited and ended by FIN: complete too.
        let c = check(b"HTTP/1.0 200 OK\r\n\r\nall", ConnEnd::Fin);
        assert!(c.clean(), "{c:?}");
        assert_eq!(c.ending, Ending::Complete);
    }

    #[test]
    fn each_fault_gets_its_kind() {
        let table: &[(&[u8], ConnEnd, &[&str])] = &[
            (
                b"HTTP/1.1 2x0 OK\r\nContent-Length: 0\r\n\r\n",
                ConnEnd::Complete,
                &["status-line"],
            ),
            (
                b"HTTP/1.1 200 OK\r\nBroken header\r\nContent-Length: 0\r\n\r\n",
                ConnEnd::Complete,
                &["header"],
            ),
            (
                b"HTTP/1.1 200 OK\r\nBad Name: v\r\nContent-Length: 0\r\n\r\n",
                ConnEnd::Complete,
                &["header"],
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\na",
                ConnEnd::Fin,
                &["framing"],
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",
                ConnEnd::Fin,
                &["short-body"],
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",
                ConnEnd::Reset,
                &["short-body"],
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Len",
                ConnEnd::Fin,
                &["closed-in-headers"],
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Len",
                ConnEnd::Reset,
                &["ended-early"],
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
                ConnEnd::Fin,
                &["chunked"],
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
                ConnEnd::Fin,
                &["framing"],
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
                ConnEnd::Timeout,
                &["timeout"],
            ),
            (b"", ConnEnd::Fin, &["no-response"]),
            (b"", ConnEnd::Reset, &["no-response"]),
            (b"", ConnEnd::Timeout, &["timeout"]),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",
                ConnEnd::Timeout,
                &["timeout"],
            ),
            (b"garbage\r\n\r\n", ConnEnd::Fin, &["not-http"]),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nabc",
                ConnEnd::Complete,
                &["trailing"],
            ),
        ];
        for (raw, end, want) in table {
            let c = check(raw, end.clone());
            assert_eq!(kinds(&c), *want, "{} {end:?}: {c:?}", escape(raw));
        }
    }

    fn escape(raw: &[u8]) -> String {
        crate::transport::escape_bytes(raw)
    }

    #[test]
    fn short_body_counts_bytes() {
        let c = check(
            b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n0123456789",
            ConnEnd::Fin,
        );
        assert!(!c.complete);
        assert_eq!(c.ending, Ending::Fin);
        assert_eq!(
            c.problems,
            vec![Problem::ShortBody {
                received: 10,
                expected: 1000
            }]
        );
        assert!(c.malformed().is_empty());
        assert!(c.cut_short().is_some());
        assert!(c.problems[0].to_string().contains("10 of 1000 bytes"));
        // The same head to a HEAD is complete: the fault is in the body only.
        let head = ResponseCheck::of(
            "HEAD",
            &exchange(
                b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n",
                ConnEnd::Complete,
                true,
            ),
        );
        assert!(head.clean(), "{head:?}");
    }

    /// TLS bytes are a TLS peer talking, never a malformed HTTP answer: a TLS port's alert to
    /// plain HTTP, and the server's half of a verified handshake that failed on the certificate.
    #[test]
    fn tls_bytes_are_no_malformed_answer() {
        let alert = check(b"\x15\x03\x03\x00\x02\x02\x32", ConnEnd::Fin);
        assert_eq!(kinds(&alert), ["speaks-tls"], "{alert:?}");
        assert!(alert.malformed().is_empty());
        assert!(alert.problems[0]
            .to_string()
            .ends_with("the port speaks TLS"));

        let hello = b"\x16\x03\x03\x00\x7a\x02\x00\x00\x76\x03\x03";
        let failed = check(
            hello,
            ConnEnd::TlsFailed("invalid certificate: unknown issuer".into()),
        );
        assert!(failed.malformed().is_empty(), "{failed:?}");
        assert_eq!(kinds(&failed), ["other"]);
        assert_eq!(
            failed.problems[0].to_string(),
            "TLS handshake failed: invalid certificate: unknown issuer"
        );
    }

    #[test]
    fn malformed_and_cut_short_are_apart() {
        let none = check(b"", ConnEnd::Fin);
        assert!(none.no_response() && none.malformed().is_empty());
        assert_eq!(none.status, None);
        let bad = check(
            b"HTTP/1.1 2x0 OK\r\nContent-Length: 0\r\n\r\n",
            ConnEnd::Complete,
        );
        assert_eq!(bad.status, None, "no three-digit code: no status");
        assert_eq!(bad.malformed().len(), 1);
        assert!(bad.cut_short().is_none() && !bad.clean());
        let garbage = check(b"\x00\x01junk", ConnEnd::Fin);
        assert!(!garbage.malformed().is_empty());
        assert!(garbage.cut_short().is_none());
        assert!(!garbage.no_response());
    }

    #[test]
    fn planned_requests_are_a_get_and_a_head() {
        let target =
            crate::target::Target::parse(crate::target::Role::Backend, "http://127.0.0.1:9/p")
                .unwrap();
        let side = Side::new(target, false);
        let planned = plan(&side);
        let names: Vec<&str> = planned.iter().map(|p| p.variant.as_str()).collect();
        assert_eq!(names, ["get", "head"]);
        assert!(planned[0]
            .bytes
            .starts_with(b"GET /p HTTP/1.1\r\nHost: 127.0.0.1:9\r\n"));
        assert!(planned[1].bytes.starts_with(b"HEAD /p HTTP/1.1\r\n"));
        assert!(planned.iter().all(|p| p.bytes.ends_with(b"\r\n\r\n")));
    }

    #[test]
    fn check_serializes_with_kinds() {
        let c = check(
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab",
            ConnEnd::Reset,
        );
        let json = serde_json::to_value(&c).unwrap();
        assert_eq!(json["ending"], "reset");
        assert_eq!(json["problems"][0]["kind"], "short-body");
        assert_eq!(json["problems"][0]["received"], 2);
        assert_eq!(json["problems"][0]["expected"], 5);
    }
}
