//! One parsed line → the documented cause it shows: the reason nginx gave in its error.log
//! when one is joined, HAProxy's termination state, then status against upstream_status and
//! what the listener wrote about the backend (did it connect, did a header come, did any byte
//! come back), then the timings against the profile's timeouts. Where the line's fields cannot
//! decide, it says which causes it may show and what would tell them apart. Pure: a table test
//! below has a row per rule.

use super::errorlog::{Joined, Reason};
use super::record::{is_dash, last_upstream, parse_number, split_upstream, trim, Dialect, Record};
use super::rules::Outcome;
use crate::profile::Profile;

/// A client connection's round-trip time above this (µs) is a network problem of its own.
pub const HIGH_RTT_US: f64 = 200_000.0;
/// A value "at" a timeout: within 5 % below it, or above.
pub const AT_TIMEOUT: f64 = 0.95;
/// nginx logs at most this many upstream tries we look at; more are counted, not kept.
const MAX_TRIES: usize = 8;

/// What the line shows: a cause id of the catalogue, or causes it cannot tell apart, or none,
/// and which rule said so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Classification {
    pub cause: Option<&'static str>,
    /// The line may show any of these; the log's fields cannot decide.
    pub either: Option<&'static Either>,
    pub rule: &'static str,
    /// The reason nginx wrote in its error.log decided it.
    pub from_error_log: bool,
}

/// Causes one line cannot tell apart, and what would.
#[derive(Debug, PartialEq, Eq)]
pub struct Either {
    /// `A or B`: the key lines are counted under.
    pub id: &'static str,
    pub causes: &'static [&'static str],
    /// What tells them apart: a field to add to the log format, or another log.
    pub tell: &'static str,
}

fn shows(cause: &'static str, rule: &'static str) -> Classification {
    Classification {
        cause: Some(cause),
        either: None,
        rule,
        from_error_log: false,
    }
}

fn none(rule: &'static str) -> Classification {
    Classification {
        cause: None,
        either: None,
        rule,
        from_error_log: false,
    }
}

fn undecided(e: &'static Either, rule: &'static str) -> Classification {
    Classification {
        cause: None,
        either: Some(e),
        rule,
        from_error_log: false,
    }
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
    pub dialect: Dialect,
    /// The format logs `$upstream_header_time` / `$upstream_connect_time` (whatever they say).
    pub header_logged: bool,
    pub connect_logged: bool,
    /// The last try's `$upstream_bytes_received`: 0 means nothing came back at all.
    pub bytes_received: Option<u64>,
    /// nginx's last `$upstream_addr` is a name without a port: the upstream group's, written
    /// when no server of the group was live to try.
    pub no_live_upstream: bool,
    /// The reason nginx gave in its error.log, when one was joined to the line.
    pub reason: Option<Reason>,
    /// An error.log that covers the line's time gives no reason for it.
    pub error_log_silent: bool,
    pub addr_logged: bool,
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
            dialect: r.dialect,
            header_logged: r.upstream_header_time.is_some(),
            connect_logged: r.upstream_connect_time.is_some(),
            bytes_received: r
                .upstream_bytes_received
                .and_then(last_upstream)
                .and_then(parse_number)
                .map(|n| n as u64),
            // Read for the 502s only, the one status it decides.
            no_live_upstream: r.status == 502
                && r.dialect == Dialect::Nginx
                && r.upstream_addr.is_some_and(|a| {
                    let last = last_address(a);
                    !is_dash(last) && !last.contains(&b':')
                }),
            reason: None,
            error_log_silent: false,
            addr_logged: r.upstream_addr.is_some(),
        };
    }

    /// What nginx's error.log says of this line's request.
    pub fn join(&mut self, joined: Joined) {
        (self.reason, self.error_log_silent) = match joined {
            Joined::Reason(r) => (Some(r), false),
            Joined::Silent => (None, true),
            Joined::Unknown => (None, false),
        };
    }

    /// The backend's status the listener compares with: the last try's.
    pub fn upstream_last(&self) -> Option<u16> {
        if self.last_try_dash {
            None
        } else {
            self.upstream.last().copied()
        }
    }
}

/// The last server of an `$upstream_addr` list (`10.0.0.5:80, 10.0.0.6:80 : group`): the
/// separators are `, ` and ` : `, never a bare colon, which belongs to the address.
fn last_address(v: &[u8]) -> &[u8] {
    // From the end, to the first separator: addresses hold no spaces, so only a space is looked
    // at twice.
    for i in (0..v.len()).rev() {
        if v[i] != b' ' {
            continue;
        }
        if i > 0 && v[i - 1] == b',' {
            return trim(&v[i + 1..]);
        }
        if v[i + 1..].starts_with(b": ") {
            return trim(&v[i + 3..]);
        }
    }
    trim(v)
}

/// The cause one error line shows. Lines below 400 show none.
pub fn classify(f: &Facts, t: &Timeouts) -> Classification {
    if f.status < 400 {
        return none("not an error status");
    }
    if let Some(reason) = f.reason {
        let (cause, status) = reason.cause();
        // A reason logged with another status than this line's is not its last word.
        if status == f.status {
            return Classification {
                from_error_log: true,
                ..shows(cause, reason_rule(reason))
            };
        }
    }
    let c = match super::rules::RULES.first(f, t) {
        Some(rule) => match rule.then {
            Outcome::Shows(cause) => shows(cause, rule.text),
            Outcome::Undecided(e) => undecided(e, rule.text),
            Outcome::Nothing => none(rule.text),
        },
        None => none("no documented cause matches this line"),
    };
    match c.either {
        Some(e) if f.error_log_silent && f.upstream_last() == Some(f.status) => {
            settled_by_silence(f.status, e).unwrap_or(c)
        }
        _ => c,
    }
}

/// nginx writes every failure of its own to reach or read a backend (refused, timed out,
/// invalid, cut short, no live server) at level `error`: a 502 or 504 that an error.log
/// covering its time gives no reason for was the backend's own answer.
fn settled_by_silence(status: u16, e: &Either) -> Option<Classification> {
    let (own, rule) = match status {
        502 => ("502.passthrough", "nginx's error.log covers this time and gives no reason for the request: nginx found nothing wrong, so the 502 is the backend's own, passed on"),
        504 => ("504.backend-dependency-timeout", "nginx's error.log covers this time and gives no reason for the request: nginx found nothing wrong, so the 504 is the backend's own"),
        _ => return None,
    };
    e.causes.contains(&own).then_some(Classification {
        from_error_log: true,
        ..shows(own, rule)
    })
}

/// The rule text of a reason joined from nginx's error.log.
fn reason_rule(r: Reason) -> &'static str {
    match r {
        Reason::ConnectTimeout => "nginx's error.log: \"upstream timed out … while connecting to upstream\": the backend never accepted the connection",
        Reason::ReadTimeout => "nginx's error.log: \"upstream timed out … while reading response header from upstream\": the backend did not answer in time",
        Reason::ConnectFailed => "nginx's error.log: \"connect() failed … while connecting to upstream\": the backend refused the connection or could not be reached",
        Reason::NoLiveUpstreams => "nginx's error.log: \"no live upstreams\": every server of the group was marked down",
        Reason::InvalidResponse => "nginx's error.log: \"upstream sent invalid header\" (or no valid header, or too big a header): the backend's answer was not valid HTTP",
        Reason::UpstreamClosed => "nginx's error.log: \"upstream prematurely closed connection while reading response header\": the backend closed before its header was complete",
        Reason::UpstreamReset => "nginx's error.log: \"Connection reset by peer\" from the upstream: the backend reset the connection before answering",
        Reason::HeaderTooLong => "nginx's error.log: \"client sent too long header line\": a header did not fit nginx's buffers",
        Reason::UriTooLong => "nginx's error.log: \"client sent too long URI\"",
        Reason::PlainHttpToHttps => "nginx's error.log: \"client sent plain HTTP request to HTTPS port\"",
        Reason::Trace => "nginx's error.log: \"client sent TRACE method\"",
        Reason::InvalidRequest => "nginx's error.log: \"client sent invalid …\": nginx refused the request as malformed",
        Reason::ClientTimeout => "nginx's error.log: \"client timed out … while reading client request\"",
        Reason::ClientClosed => "nginx's error.log: \"client prematurely closed connection while reading client request\"",
        Reason::Limited => "nginx's error.log: \"limiting requests\" (or connections): limit_req or limit_conn turned it away",
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
        // As the `upstream` format logs them: the upstream fields are all there.
        let mut f = Facts {
            status,
            upstream_logged: true,
            header_logged: true,
            connect_logged: true,
            addr_logged: true,
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

    /// The cause, or the causes a line cannot tell apart, or `-`.
    fn label(c: &Classification) -> &'static str {
        c.cause.or(c.either.map(|e| e.id)).unwrap_or("-")
    }

    #[test]
    fn one_row_per_rule() {
        let rows: Vec<(Facts, Option<&str>)> = vec![
            (facts(200, "200"), None),
            (facts(400, "400"), Some("400.passthrough")),
            (
                facts(400, "-"),
                Some("400.malformed-request or 400.header-too-large or 400.http-to-https-listener"),
            ),
            (
                Facts {
                    request_length: Some(0),
                    ..facts(400, "-")
                },
                Some("400.malformed-request"),
            ),
            (
                Facts {
                    dialect: Dialect::Export,
                    ..facts(400, "-")
                },
                Some("400.malformed-request"),
            ),
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
                Some("502.malformed-backend-response or 500.backend-closed-early"),
            ),
            (
                Facts {
                    no_response_header: true,
                    bytes_received: Some(0),
                    ..facts(502, "502")
                },
                Some("500.backend-closed-early"),
            ),
            (
                Facts {
                    no_response_header: true,
                    bytes_received: Some(33),
                    ..facts(502, "502")
                },
                Some("502.malformed-backend-response or 500.backend-closed-early"),
            ),
            (
                Facts {
                    no_response_header: true,
                    dialect: Dialect::Export,
                    ..facts(502, "502")
                },
                Some("502.malformed-backend-response"),
            ),
            (
                Facts {
                    connect_failed: true,
                    no_live_upstream: true,
                    ..facts(502, "502")
                },
                Some("502.all-backends-unhealthy"),
            ),
            (
                Facts {
                    header_logged: false,
                    ..facts(502, "502")
                },
                Some("502.passthrough or 502.malformed-backend-response or 500.backend-closed-early"),
            ),
            (
                Facts {
                    dialect: Dialect::Export,
                    header_logged: false,
                    connect_logged: false,
                    ..facts(502, "502")
                },
                Some("502.passthrough"),
            ),
            (
                Facts {
                    upstream_logged: false,
                    ..facts(502, "-")
                },
                Some("502.passthrough or 502.backend-unreachable or 502.malformed-backend-response or 500.backend-closed-early or 502.all-backends-unhealthy"),
            ),
            (
                Facts {
                    connect_failed: true,
                    upstream_response_time: Some(1.0),
                    no_response_header: true,
                    ..facts(504, "504")
                },
                Some("504.connect-timeout"),
            ),
            (
                Facts {
                    upstream_response_time: Some(1.0),
                    no_response_header: true,
                    ..facts(504, "504")
                },
                Some("504.backend-slow"),
            ),
            (
                Facts {
                    upstream_response_time: Some(1.0),
                    header_logged: false,
                    ..facts(504, "504")
                },
                Some("504.backend-slow or 504.backend-dependency-timeout"),
            ),
            (
                Facts {
                    status: 504,
                    reason: Some(Reason::ConnectTimeout),
                    upstream_response_time: Some(1.0),
                    header_logged: false,
                    ..facts(504, "504")
                },
                Some("504.connect-timeout"),
            ),
            (
                // 60 s is at (or past) both timeouts, and no connect time says which fired.
                Facts {
                    upstream_response_time: Some(60.0),
                    header_logged: false,
                    connect_logged: false,
                    ..facts(504, "504")
                },
                Some("504.connect-timeout or 504.backend-slow"),
            ),
            (
                // The backend's own 504: the error.log, covering the time, has no reason.
                Facts {
                    error_log_silent: true,
                    upstream_response_time: Some(1.0),
                    header_logged: false,
                    ..facts(504, "504")
                },
                Some("504.backend-dependency-timeout"),
            ),
            (
                Facts {
                    error_log_silent: true,
                    header_logged: false,
                    connect_logged: false,
                    addr_logged: false,
                    ..facts(502, "502")
                },
                Some("502.passthrough"),
            ),
            (
                // Silence says nothing of a 400: nginx writes those at info.
                Facts {
                    error_log_silent: true,
                    ..facts(400, "-")
                },
                Some("400.malformed-request or 400.header-too-large or 400.http-to-https-listener"),
            ),
            (
                Facts {
                    connect_failed: true,
                    addr_logged: false,
                    ..facts(502, "502")
                },
                Some("502.backend-unreachable or 502.all-backends-unhealthy"),
            ),
            (
                // A reason of another status is not this line's.
                Facts {
                    reason: Some(Reason::ConnectFailed),
                    upstream_response_time: Some(1.0),
                    header_logged: false,
                    ..facts(504, "504")
                },
                Some("504.backend-slow or 504.backend-dependency-timeout"),
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
            // HAProxy's record of a client that left while the server had not answered
            // (`option abortonclose`): not a request it refused.
            (
                Facts {
                    termination: Some(*b"CH"),
                    ..facts(400, "-")
                },
                Some("499.backend-slow"),
            ),
            (
                Facts {
                    termination: Some(*b"PR"),
                    no_server: true,
                    ..facts(503, "-")
                },
                None,
            ),
            (
                Facts {
                    termination: Some(*b"PR"),
                    no_server: true,
                    ..facts(400, "-")
                },
                Some("400.malformed-request or 400.header-too-large"),
            ),
            (
                Facts {
                    termination: Some(*b"SC"),
                    no_server: true,
                    ..facts(503, "-")
                },
                Some("503.no-backends"),
            ),
            (facts(404, "404"), None),
        ];
        for (f, want) in rows {
            assert_eq!(label(&classify(&f, &t())), want.unwrap_or("-"), "{f:?}");
        }
    }

    #[test]
    fn every_named_cause_is_in_the_catalogue() {
        let cat = crate::catalogue::Catalogue::builtin();
        for id in CAUSES {
            assert!(cat.get(id).is_some(), "{id} is not in the catalogue");
        }
        for r in Reason::ALL {
            let id = r.cause().0;
            assert!(CAUSES.contains(&id), "{id} of {r:?} is not in CAUSES");
        }
    }

    /// The last address of an `$upstream_addr` list, and whether it is a group's name.
    #[test]
    fn last_addresses() {
        assert_eq!(last_address(b"10.0.0.5:80, 10.0.0.6:80"), b"10.0.0.6:80");
        assert_eq!(last_address(b"10.0.0.5:80 : dead"), b"dead");
        assert_eq!(last_address(b"[::1]:8080"), b"[::1]:8080");
        assert_eq!(last_address(b"unix:/run/app.sock"), b"unix:/run/app.sock");
        assert_eq!(last_address(b"-"), b"-");
    }
}
