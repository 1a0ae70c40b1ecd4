//! One parsed line → the documented cause it shows, by the reference page's logic: compare
//! status with upstream_status, then the timings with the profile's timeouts. Pure: a table
//! test below has a row per rule.

use super::record::{is_dash, last_upstream, parse_number, split_upstream, Record};
use crate::profile::Profile;

/// A client connection's round-trip time above this (µs) is a network problem of its own.
pub const HIGH_RTT_US: f64 = 200_000.0;
/// A value "at" a timeout: within 5 % below it, or above.
const AT_TIMEOUT: f64 = 0.95;
/// nginx logs at most this many upstream tries we look at; more are counted, not kept.
const MAX_TRIES: usize = 8;

/// What the line shows: a cause id of the catalogue, or none, and which rule said so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Classification {
    pub cause: Option<&'static str>,
    pub rule: &'static str,
}

fn shows(cause: &'static str, rule: &'static str) -> Classification {
    Classification {
        cause: Some(cause),
        rule,
    }
}

fn none(rule: &'static str) -> Classification {
    Classification { cause: None, rule }
}

/// The timeouts lines are compared with (from a profile, overridable on the command line).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timeouts {
    pub connect: f64,
    pub response: f64,
    pub request: f64,
    /// Requests whose header is larger than this got 400 for its size.
    pub max_header_bytes: u64,
}

impl Timeouts {
    /// A number the profile does not give matches no line: a timing at "the timeout" cannot
    /// be told without knowing it.
    pub fn of(profile: &Profile) -> Timeouts {
        let n = profile.effective();
        let secs = |d: Option<std::time::Duration>| d.map_or(f64::INFINITY, |d| d.as_secs_f64());
        Timeouts {
            connect: secs(n.connect_timeout),
            response: secs(n.response_timeout),
            request: secs(n.request_timeout),
            max_header_bytes: n.max_header_bytes.map_or(u64::MAX, |b| b as u64),
        }
    }
}

/// What the classifier reads from a record, in seconds and numbers.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Facts {
    pub status: u16,
    /// Whether the format logs upstream_status at all.
    pub upstream_logged: bool,
    /// The numeric upstream statuses, one per try, in order (`-` tries left out).
    pub upstream: Vec<u16>,
    /// The last try had no status (`-`): that server never answered.
    pub last_try_dash: bool,
    pub request_time: Option<f64>,
    /// The last try's upstream_response_time.
    pub upstream_response_time: Option<f64>,
    /// The last try's upstream_connect_time; `connect_failed`: the field is logged and says `-`.
    pub upstream_connect_time: Option<f64>,
    pub connect_failed: bool,
    /// The field is logged and the last try says `-`: no response header came.
    pub no_response_header: bool,
    pub method: Option<Vec<u8>>,
    pub request_missing: bool,
    pub bytes_sent: Option<u64>,
    pub request_length: Option<u64>,
    pub tcpinfo_rtt_us: Option<f64>,
    /// `$scheme` says https but `$ssl_protocol` is empty: plain HTTP on a TLS port.
    pub plain_on_tls: bool,
    pub termination: Option<[u8; 2]>,
    /// HAProxy's `<NOSRV>`: no server was picked.
    pub no_server: bool,
}

impl Facts {
    pub fn of(r: &Record<'_>) -> Facts {
        let mut f = Facts::default();
        f.fill(r);
        f
    }

    /// [`Facts::of`] into `self`, reusing its allocations: the path of every error line.
    pub fn fill(&mut self, r: &Record<'_>) {
        let scale = r.time_scale;
        let last = |v: Option<&[u8]>| -> (Option<f64>, bool) {
            match v {
                None => (None, false),
                Some(v) => match last_upstream(v) {
                    Some(t) if !is_dash(t) => (parse_number(t).map(|n| n * scale), false),
                    _ => (None, true),
                },
            }
        };
        let mut upstream = std::mem::take(&mut self.upstream);
        upstream.clear();
        let mut last_try_dash = false;
        if let Some(u) = r.upstream_status {
            for (i, s) in split_upstream(u).enumerate() {
                if i >= MAX_TRIES {
                    break;
                }
                last_try_dash = is_dash(s);
                if let Some(code) = super::format::status_of(s) {
                    upstream.push(code);
                }
            }
        }
        let (connect, connect_failed) = last(r.upstream_connect_time);
        let (_, no_response_header) = last(r.upstream_header_time);
        let request = r.request;
        let method = r.method().filter(|m| !is_dash(m)).map(|m| {
            let mut v = self.method.take().unwrap_or_default();
            v.clear();
            v.extend_from_slice(m);
            v
        });
        *self = Facts {
            status: r.status,
            upstream_logged: r.upstream_status.is_some(),
            upstream,
            last_try_dash,
            request_time: r.request_time.and_then(parse_number).map(|n| n * scale),
            upstream_response_time: last(r.upstream_response_time).0,
            upstream_connect_time: connect,
            connect_failed,
            no_response_header,
            method,
            request_missing: request.is_some_and(is_dash)
                || (request.is_none() && r.method.is_some_and(is_dash)),
            bytes_sent: r.bytes_sent.and_then(parse_number).map(|n| n as u64),
            request_length: r.request_length.and_then(parse_number).map(|n| n as u64),
            tcpinfo_rtt_us: r.tcpinfo_rtt.and_then(parse_number),
            plain_on_tls: r.scheme == Some(b"https") && r.ssl_protocol.is_some_and(is_dash),
            termination: r.termination,
            no_server: r.upstream_addr.is_some_and(|a| a.ends_with(b"<NOSRV>")),
        };
    }

    /// The backend's status the listener compares with: the last try's.
    fn upstream_last(&self) -> Option<u16> {
        if self.last_try_dash {
            None
        } else {
            self.upstream.last().copied()
        }
    }

    fn high_rtt(&self) -> bool {
        self.tcpinfo_rtt_us.is_some_and(|r| r >= HIGH_RTT_US)
    }
}

fn at(value: Option<f64>, timeout: f64) -> bool {
    timeout > 0.0 && value.is_some_and(|v| v >= timeout * AT_TIMEOUT)
}

/// The cause one error line shows. Lines below 400 show none.
pub fn classify(f: &Facts, t: &Timeouts) -> Classification {
    if f.status < 400 {
        return none("not an error status");
    }
    if let Some(term) = f.termination {
        if let Some(c) = haproxy(f, term) {
            return c;
        }
    }
    match f.upstream_last() {
        None if !f.upstream.is_empty() => reached_then_failed(f, t),
        None => never_reached(f, t),
        Some(u) => reached(f, u, t),
    }
}

/// HAProxy says in its termination state what nginx and the LB leave to the timings.
fn haproxy(f: &Facts, term: [u8; 2]) -> Option<Classification> {
    Some(match &term {
        _ if f.no_server && f.status == 503 => shows("503.no-backends", "HAProxy picked no server (<NOSRV>): no server available in the backend"),
        b"sC" => shows("504.connect-timeout", "HAProxy termination sC: the connect to the server timed out (HAProxy answers 503)"),
        b"SC" => shows("502.backend-unreachable", "HAProxy termination SC: the server refused or reset the connection"),
        b"sH" => shows("504.backend-slow", "HAProxy termination sH: no response header before the server timeout"),
        b"SH" => shows("500.backend-closed-early", "HAProxy termination SH: the server closed before sending complete headers (HAProxy answers 502)"),
        b"PH" => shows("502.malformed-backend-response", "HAProxy termination PH: HAProxy refused the server's invalid response"),
        b"cR" => shows("408.partial-request", "HAProxy termination cR: the client did not finish its request before the timeout"),
        b"CR" => shows("400.client-closed-early", "HAProxy termination CR: the client closed before its request was complete"),
        b"PR" if f.status == 400 => shows("400.malformed-request", "HAProxy termination PR with 400: HAProxy refused the request as invalid"),
        b"sQ" | b"SQ" => shows("503.rate-limited", "HAProxy termination sQ/SQ: the request waited in the queue for a free server slot and gave up"),
        _ => return None,
    })
}

/// upstream_status `-` (or empty): no backend was asked.
fn never_reached(f: &Facts, t: &Timeouts) -> Classification {
    match f.status {
        400 if f.request_length.is_some_and(|l| l > t.max_header_bytes) => shows(
            "400.header-too-large",
            "400 with no upstream_status and a request_length above the profile's header limit",
        ),
        400 if f.plain_on_tls => shows(
            "400.http-to-https-listener",
            "400 with no upstream_status; $scheme is https but no TLS protocol was negotiated",
        ),
        400 if f.bytes_sent == Some(0) => shows(
            "400.client-closed-early",
            "400 with no upstream_status and nothing sent back: the client left before its request was complete",
        ),
        400 => shows(
            "400.malformed-request",
            "400 with no upstream_status: the listener refused the request itself",
        ),
        405 if f.method.as_deref() == Some(b"TRACE") => shows(
            "405.trace-unsupported",
            "405 for TRACE with no upstream_status: the listener refuses TRACE",
        ),
        405 => none("405 from the listener for a method other than TRACE: no documented cause"),
        408 if f.high_rtt() => shows(
            "408.network-rtt-loss",
            "408 with a tcpinfo_rtt above 200 ms: the client's network is slow or lossy",
        ),
        408 => shows(
            "408.partial-request",
            "408 with no upstream_status: the client did not finish its request in time",
        ),
        414 => shows(
            "414.uri-too-long",
            "414 with no upstream_status: the URI is above the listener's limit",
        ),
        499 if f.high_rtt() => shows(
            "499.network-rtt-loss",
            "499 with a tcpinfo_rtt above 200 ms: the client's network is slow or lossy",
        ),
        499 if f.request_time.is_some_and(|rt| {
            f.upstream_response_time.is_some_and(|ut| rt > 0.0 && ut >= rt * 0.9)
        }) => shows(
            "499.backend-slow",
            "499 with upstream_response_time as long as request_time: the client gave up waiting for the backend",
        ),
        499 => shows(
            "499.client-aborted",
            "499 before any backend answered: the client gave up on its own",
        ),
        500 => shows(
            "500.backend-closed-early",
            "500 without an upstream_status: the backend's answer never arrived whole",
        ),
        502 => shows(
            "502.all-backends-unhealthy",
            "502 with upstream_status -: the listener had no healthy backend to forward to",
        ),
        503 => shows(
            "503.rate-limited",
            "503 with upstream_status -: the request was never sent to a backend (a limit turned it away)",
        ),
        504 if at(f.upstream_connect_time, t.connect) => shows(
            "504.connect-timeout",
            "504 with upstream_connect_time at the connect timeout",
        ),
        504 if !f.upstream_logged || f.upstream_connect_time.is_none() && at(f.upstream_response_time, t.connect) && f.upstream_response_time.is_some_and(|v| v < t.response * AT_TIMEOUT) => shows(
            "504.connect-timeout",
            "504 with no upstream_status and upstream_response_time at the connect timeout: the backend never accepted",
        ),
        504 if at(f.request_time, t.response) => shows(
            "504.backend-slow",
            "504 with request_time at the response timeout",
        ),
        _ => none("no documented cause matches this status without an upstream_status"),
    }
}

/// Tries were made, but the last one has no status: the server never answered.
fn reached_then_failed(f: &Facts, t: &Timeouts) -> Classification {
    match f.status {
        502 => shows(
            "502.backend-unreachable",
            "502 whose last upstream try has no status: that backend never answered",
        ),
        504 if at(f.upstream_connect_time, t.connect) || f.connect_failed => shows(
            "504.connect-timeout",
            "504 whose last upstream try never connected",
        ),
        _ => never_reached(f, t),
    }
}

/// A backend answered `u` (the last try).
fn reached(f: &Facts, u: u16, t: &Timeouts) -> Classification {
    let s = f.status;
    match s {
        499 if f.high_rtt() => shows(
            "499.network-rtt-loss",
            "499 with a tcpinfo_rtt above 200 ms: the client's network is slow or lossy",
        ),
        499 if f.request_time.is_some_and(|rt| {
            f.upstream_response_time.is_some_and(|ut| rt > 0.0 && ut >= rt * 0.9)
        }) => shows(
            "499.backend-slow",
            "499 with upstream_response_time as long as request_time: the client gave up waiting for the backend",
        ),
        499 if u == 499 && !f.no_response_header && f.upstream_response_time.is_some() => shows(
            "499.passthrough",
            "499 with upstream_status 499: the backend's own 499, passed on",
        ),
        499 => shows(
            "499.client-aborted",
            "499 with request_time well beyond the backend's time: the client gave up for reasons of its own",
        ),
        502 if u != 502 => shows(
            "502.backend-error-mapped",
            "502 with a different upstream_status: the listener mapped the backend's error to 502",
        ),
        502 if f.connect_failed => shows(
            "502.backend-unreachable",
            "502 with upstream_connect_time -: the connection to the backend failed",
        ),
        502 if at(f.upstream_response_time, t.response) => shows(
            "502.backend-slow",
            "502 with upstream_response_time at the response timeout",
        ),
        502 if f.no_response_header => shows(
            "502.malformed-backend-response",
            "502 after a connect but with no upstream_header_time: the backend's answer was not valid HTTP",
        ),
        502 => shows(
            "502.passthrough",
            "502 with upstream_status 502: the backend's own 502, passed on",
        ),
        504 if at(f.upstream_connect_time, t.connect) || f.connect_failed && at(f.upstream_response_time, t.connect) => shows(
            "504.connect-timeout",
            "504 with upstream_connect_time at the connect timeout",
        ),
        504 if at(f.upstream_response_time, t.response) || at(f.request_time, t.response) && f.upstream_response_time.is_none() => shows(
            "504.backend-slow",
            "504 with upstream_response_time at the response timeout: the backend did not answer in time",
        ),
        504 if u == 504 => shows(
            "504.backend-dependency-timeout",
            "504 with upstream_status 504 well before the listener's timeout: the backend's own 504",
        ),
        500 if u != 500 => shows(
            "500.backend-closed-early",
            "500 with a different upstream_status: the backend's answer did not arrive whole",
        ),
        _ if s == u => passthrough(s),
        _ => none("the status differs from upstream_status in a way no documented cause explains"),
    }
}

/// status == upstream_status: the backend said it; the code's upstream cause or passthrough.
fn passthrough(code: u16) -> Classification {
    match code {
        400 => shows(
            "400.passthrough",
            "400 with upstream_status 400: the backend's own 400, passed on",
        ),
        405 => shows(
            "405.backend-method-unsupported",
            "405 with upstream_status 405: the backend does not support the method",
        ),
        408 => shows(
            "408.passthrough",
            "408 with upstream_status 408: the backend's own 408, passed on",
        ),
        414 => shows(
            "414.backend-uri-limit",
            "414 with upstream_status 414: the backend's URI limit is below the listener's",
        ),
        500 => shows(
            "500.backend-error",
            "500 with upstream_status 500: the backend's own 500, passed on",
        ),
        503 => shows(
            "503.backend-error",
            "503 with upstream_status 503: the backend's own 503, passed on",
        ),
        _ => none("status equals upstream_status for a code the catalogue does not cover"),
    }
}

/// Every cause id a rule can name, for the test that they all exist in the catalogue.
pub const CAUSES: &[&str] = &[
    "400.header-too-large",
    "400.http-to-https-listener",
    "400.client-closed-early",
    "400.malformed-request",
    "400.passthrough",
    "405.trace-unsupported",
    "405.backend-method-unsupported",
    "408.network-rtt-loss",
    "408.partial-request",
    "408.passthrough",
    "414.uri-too-long",
    "414.backend-uri-limit",
    "499.network-rtt-loss",
    "499.client-aborted",
    "499.backend-slow",
    "499.passthrough",
    "500.backend-closed-early",
    "500.backend-error",
    "502.all-backends-unhealthy",
    "502.backend-unreachable",
    "502.backend-error-mapped",
    "502.backend-slow",
    "502.malformed-backend-response",
    "502.passthrough",
    "503.rate-limited",
    "503.no-backends",
    "503.backend-error",
    "504.connect-timeout",
    "504.backend-slow",
    "504.backend-dependency-timeout",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn t() -> Timeouts {
        Timeouts {
            connect: 5.0,
            response: 60.0,
            request: 60.0,
            max_header_bytes: 32768,
        }
    }

    fn facts(status: u16, upstream: &str) -> Facts {
        let mut f = Facts {
            status,
            upstream_logged: true,
            ..Facts::default()
        };
        for s in upstream.split(", ") {
            match super::super::format::status_of(s.as_bytes()) {
                Some(c) => {
                    f.upstream.push(c);
                    f.last_try_dash = false;
                }
                None => f.last_try_dash = true,
            }
        }
        f
    }

    #[test]
    fn one_row_per_rule() {
        let rows: Vec<(Facts, Option<&str>)> = vec![
            (facts(200, "200"), None),
            (facts(400, "400"), Some("400.passthrough")),
            (facts(400, "-"), Some("400.malformed-request")),
            (
                Facts {
                    bytes_sent: Some(0),
                    ..facts(400, "-")
                },
                Some("400.client-closed-early"),
            ),
            (
                Facts {
                    request_length: Some(40000),
                    ..facts(400, "-")
                },
                Some("400.header-too-large"),
            ),
            (
                Facts {
                    plain_on_tls: true,
                    ..facts(400, "-")
                },
                Some("400.http-to-https-listener"),
            ),
            (
                Facts {
                    method: Some(b"TRACE".to_vec()),
                    ..facts(405, "-")
                },
                Some("405.trace-unsupported"),
            ),
            (facts(405, "405"), Some("405.backend-method-unsupported")),
            (facts(408, "-"), Some("408.partial-request")),
            (
                Facts {
                    tcpinfo_rtt_us: Some(350_000.0),
                    ..facts(408, "-")
                },
                Some("408.network-rtt-loss"),
            ),
            (facts(408, "408"), Some("408.passthrough")),
            (facts(414, "-"), Some("414.uri-too-long")),
            (facts(414, "414"), Some("414.backend-uri-limit")),
            (
                Facts {
                    request_time: Some(3.0),
                    upstream_response_time: Some(3.0),
                    ..facts(499, "499")
                },
                Some("499.backend-slow"),
            ),
            (
                Facts {
                    request_time: Some(3.0),
                    upstream_response_time: Some(0.1),
                    ..facts(499, "200")
                },
                Some("499.client-aborted"),
            ),
            (facts(499, "-"), Some("499.client-aborted")),
            (facts(500, "500"), Some("500.backend-error")),
            (facts(500, "-"), Some("500.backend-closed-early")),
            (facts(502, "504"), Some("502.backend-error-mapped")),
            (facts(502, "502, 444"), Some("502.backend-error-mapped")),
            (facts(502, "-"), Some("502.all-backends-unhealthy")),
            (facts(502, "502, -"), Some("502.backend-unreachable")),
            (
                Facts {
                    connect_failed: true,
                    ..facts(502, "502")
                },
                Some("502.backend-unreachable"),
            ),
            (
                Facts {
                    upstream_response_time: Some(60.0),
                    ..facts(502, "502")
                },
                Some("502.backend-slow"),
            ),
            (
                Facts {
                    no_response_header: true,
                    ..facts(502, "502")
                },
                Some("502.malformed-backend-response"),
            ),
            (facts(502, "502"), Some("502.passthrough")),
            (facts(503, "-"), Some("503.rate-limited")),
            (facts(503, "503"), Some("503.backend-error")),
            (
                Facts {
                    upstream_connect_time: Some(5.0),
                    ..facts(504, "504")
                },
                Some("504.connect-timeout"),
            ),
            (
                Facts {
                    upstream_response_time: Some(5.0),
                    ..facts(504, "-")
                },
                Some("504.connect-timeout"),
            ),
            (
                Facts {
                    upstream_response_time: Some(60.001),
                    ..facts(504, "504")
                },
                Some("504.backend-slow"),
            ),
            (
                Facts {
                    upstream_response_time: Some(2.0),
                    ..facts(504, "504")
                },
                Some("504.backend-dependency-timeout"),
            ),
            (
                Facts {
                    termination: Some(*b"sH"),
                    ..facts(504, "-")
                },
                Some("504.backend-slow"),
            ),
            (
                Facts {
                    termination: Some(*b"sC"),
                    ..facts(503, "-")
                },
                Some("504.connect-timeout"),
            ),
            (
                Facts {
                    termination: Some(*b"cR"),
                    ..facts(408, "-")
                },
                Some("408.partial-request"),
            ),
            (facts(404, "404"), None),
        ];
        for (f, want) in rows {
            assert_eq!(classify(&f, &t()).cause, want, "{f:?}");
        }
    }

    #[test]
    fn every_named_cause_is_in_the_catalogue() {
        let cat = crate::catalogue::Catalogue::builtin();
        for id in CAUSES {
            assert!(cat.get(id).is_some(), "{id} is not in the catalogue");
        }
    }
}
