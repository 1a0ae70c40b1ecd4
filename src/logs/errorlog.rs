//! nginx's error.log, joined to the access log: the reason nginx gives for a request
//! ("upstream timed out … while connecting to upstream", "client sent too long header line")
//! settles what the access log's fields cannot.
//!
//! A reason line reads
//! `2025/11/24 19:29:01 [error] 42#42: *7 MESSAGE, client: 10.0.0.1, server: x, request: "GET /a HTTP/1.1", upstream: "…", host: "…"`.
//! It is joined to the access-log line of the same request: by the connection number (`*7`,
//! the access log's `$connection`) when the access format logs it, else by client address and
//! request line; in both cases within the seconds the request took. Only lines whose message
//! names a known reason are kept, in bounded memory.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;

use super::record::{parse_number, Record};
use super::summary::{second_of, WordHasher};
use crate::bytes::{find, find_byte};

/// Reason lines kept at most; the rest are counted, not joined.
pub const MAX_REASONS: usize = 1_000_000;
/// The request line's first bytes a join compares (nginx cuts long error lines).
const REQUEST_PREFIX: usize = 64;
/// Seconds of slack on either side of a request's time span: both logs count whole seconds.
const SLACK_SECS: u64 = 1;

/// What nginx says went wrong, one kind per message it writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// `upstream timed out (110: …) while connecting to upstream`
    ConnectTimeout,
    /// `upstream timed out (110: …) while reading response header from upstream`, or while
    /// sending the request.
    ReadTimeout,
    /// `connect() failed (111: Connection refused) while connecting to upstream` and the like.
    ConnectFailed,
    /// `no live upstreams while connecting to upstream`
    NoLiveUpstreams,
    /// `upstream sent invalid header`, `… no valid HTTP/1.0 header`, `… too big header` …
    InvalidResponse,
    /// `upstream prematurely closed connection while reading response header from upstream`
    UpstreamClosed,
    /// `recv() failed (104: Connection reset by peer) while reading response header from
    /// upstream`, a broken pipe while sending the request
    UpstreamReset,
    /// `client sent too long header line`, `client sent too large request`
    HeaderTooLong,
    /// `client sent too long URI`
    UriTooLong,
    /// `client sent plain HTTP request to HTTPS port`
    PlainHttpToHttps,
    /// `client sent TRACE method`
    Trace,
    /// `client sent invalid request`, `… invalid header line`, `… invalid method` …
    InvalidRequest,
    /// `client timed out (110: …) while reading client request headers`
    ClientTimeout,
    /// `client prematurely closed connection while reading client request …`
    ClientClosed,
    /// `limiting requests, excess: …`, `limiting connections by zone …`
    Limited,
}

impl Reason {
    /// Every reason, for tables and tests.
    pub const ALL: [Reason; 15] = [
        Reason::ConnectTimeout,
        Reason::ReadTimeout,
        Reason::ConnectFailed,
        Reason::NoLiveUpstreams,
        Reason::InvalidResponse,
        Reason::UpstreamClosed,
        Reason::UpstreamReset,
        Reason::HeaderTooLong,
        Reason::UriTooLong,
        Reason::PlainHttpToHttps,
        Reason::Trace,
        Reason::InvalidRequest,
        Reason::ClientTimeout,
        Reason::ClientClosed,
        Reason::Limited,
    ];

    /// The message a line must carry to be this reason (a phrase of it).
    pub fn says(self) -> &'static str {
        match self {
            Reason::ConnectTimeout => "upstream timed out … while connecting to upstream",
            Reason::ReadTimeout => {
                "upstream timed out … while reading response header from upstream"
            }
            Reason::ConnectFailed => "connect() failed (111: Connection refused, …)",
            Reason::NoLiveUpstreams => "no live upstreams",
            Reason::InvalidResponse => {
                "upstream sent invalid header / no valid HTTP/1.0 header / too big header"
            }
            Reason::UpstreamClosed => {
                "upstream prematurely closed connection while reading response header"
            }
            Reason::UpstreamReset => "recv() failed (104: Connection reset by peer)",
            Reason::HeaderTooLong => "client sent too long header line",
            Reason::UriTooLong => "client sent too long URI",
            Reason::PlainHttpToHttps => "client sent plain HTTP request to HTTPS port",
            Reason::Trace => "client sent TRACE method",
            Reason::InvalidRequest => "client sent invalid request / header line / method …",
            Reason::ClientTimeout => "client timed out",
            Reason::ClientClosed => "client prematurely closed connection",
            Reason::Limited => "limiting requests / limiting connections",
        }
    }

    /// The cause of the catalogue the reason shows, and the status nginx logs with it: a
    /// reason joined to a line of another status is not this request's (or not its last word).
    pub fn cause(self) -> (&'static str, u16) {
        match self {
            Reason::ConnectTimeout => ("504.connect-timeout", 504),
            Reason::ReadTimeout => ("504.backend-slow", 504),
            Reason::ConnectFailed => ("502.backend-unreachable", 502),
            Reason::NoLiveUpstreams => ("502.all-backends-unhealthy", 502),
            Reason::InvalidResponse => ("502.malformed-backend-response", 502),
            // The catalogue's cause of a backend that ends the exchange before its answer is
            // whole; nginx reports it as 502.
            Reason::UpstreamClosed | Reason::UpstreamReset => ("500.backend-closed-early", 502),
            Reason::HeaderTooLong => ("400.header-too-large", 400),
            Reason::UriTooLong => ("414.uri-too-long", 414),
            Reason::PlainHttpToHttps => ("400.http-to-https-listener", 400),
            Reason::Trace => ("405.trace-unsupported", 405),
            Reason::InvalidRequest => ("400.malformed-request", 400),
            Reason::ClientTimeout => ("408.partial-request", 408),
            Reason::ClientClosed => ("400.client-closed-early", 400),
            Reason::Limited => ("503.rate-limited", 503),
        }
    }

    /// nginx writes the client's side at level `info`: an error.log at `warn` or above has
    /// none of these.
    pub fn client_side(self) -> bool {
        matches!(
            self,
            Reason::HeaderTooLong
                | Reason::UriTooLong
                | Reason::PlainHttpToHttps
                | Reason::Trace
                | Reason::InvalidRequest
                | Reason::ClientTimeout
                | Reason::ClientClosed
        )
    }

    /// The reason a message names, if any.
    pub fn of_message(m: &[u8]) -> Option<Reason> {
        let has = |needle: &[u8]| crate::bytes::contains(m, needle);
        let upstream_phase = has(b"while connecting to upstream")
            || has(b"while reading response header from upstream")
            || has(b"while sending request to upstream");
        Some(if m.starts_with(b"upstream timed out") {
            if has(b"while connecting to upstream") {
                Reason::ConnectTimeout
            } else if upstream_phase {
                Reason::ReadTimeout
            } else {
                return None;
            }
        } else if m.starts_with(b"connect() ") && has(b"failed") {
            Reason::ConnectFailed
        } else if m.starts_with(b"no live upstreams") {
            Reason::NoLiveUpstreams
        } else if m.starts_with(b"upstream sent ") && has(b"while reading response header") {
            Reason::InvalidResponse
        } else if m.starts_with(b"upstream prematurely closed connection")
            && has(b"while reading response header")
        {
            Reason::UpstreamClosed
        } else if (has(b"(104: Connection reset by peer)") || has(b"(32: Broken pipe)"))
            && upstream_phase
        {
            Reason::UpstreamReset
        } else if m.starts_with(b"client sent too long header line")
            || m.starts_with(b"client sent too large request")
        {
            Reason::HeaderTooLong
        } else if m.starts_with(b"client sent too long URI") {
            Reason::UriTooLong
        } else if m.starts_with(b"client sent plain HTTP request to HTTPS port") {
            Reason::PlainHttpToHttps
        } else if m.starts_with(b"client sent TRACE method") {
            Reason::Trace
        } else if m.starts_with(b"client sent ") {
            Reason::InvalidRequest
        } else if m.starts_with(b"client timed out") && has(b"while reading client request") {
            Reason::ClientTimeout
        } else if m.starts_with(b"client prematurely closed connection")
            && has(b"while reading client request")
        {
            Reason::ClientClosed
        } else if m.starts_with(b"limiting requests") || m.starts_with(b"limiting connections") {
            Reason::Limited
        } else {
            return None;
        })
    }
}

/// What the error.log says of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Joined {
    Reason(Reason),
    /// No reason, in a log that covers the request's time at level `error` or below: nginx
    /// found nothing wrong with its side of the request.
    Silent,
    /// No reason, and the log cannot say (other times, or filtered above `error`).
    Unknown,
}

/// One reason line, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReasonLine<'a> {
    pub second: u64,
    /// The `*N` connection number, when the line has one.
    pub connection: Option<u64>,
    pub reason: Reason,
    pub client: &'a [u8],
    /// The request line as logged; `complete` is false where nginx cut the line short.
    pub request: Option<(&'a [u8], bool)>,
}

/// The fields that end the request in a reason line, after `request: "…"`.
const AFTER_REQUEST: [&[u8]; 5] = [
    b"\", upstream: \"",
    b"\", host: \"",
    b"\", referrer: \"",
    b"\", subrequest: \"",
    b"\", server: \"",
];

/// Parse one error.log line; `None` for lines that name no known reason (or no client).
pub fn parse_line(line: &[u8]) -> Option<ReasonLine<'_>> {
    let second = second_of(line.get(..19)?)?;
    // ` [level] PID#TID: ` then maybe `*N `.
    let rest = line.get(19..)?.strip_prefix(b" [")?;
    let rest = &rest[find_byte(b']', rest)? + 1..];
    let rest = &rest[find(rest, b": ")? + 2..];
    let (connection, message) = match rest.strip_prefix(b"*") {
        Some(r) => {
            let sp = find_byte(b' ', r)?;
            (parse_number(&r[..sp]).map(|n| n as u64), &r[sp + 1..])
        }
        None => (None, rest),
    };
    let at = find(message, b", client: ")?;
    let reason = Reason::of_message(&message[..at])?;
    let context = &message[at + b", client: ".len()..];
    let client = &context[..find_byte(b',', context).unwrap_or(context.len())];
    let request = find(context, b", request: \"").map(|r| {
        let req = &context[r + b", request: \"".len()..];
        let end = AFTER_REQUEST.iter().filter_map(|e| find(req, e)).min();
        match end {
            Some(e) => (&req[..e], true),
            None => match req.strip_suffix(b"\"") {
                Some(r) => (r, true),
                None => (req, false),
            },
        }
    });
    Some(ReasonLine {
        second,
        connection,
        reason,
        client,
        request,
    })
}

type Map<V> = HashMap<u64, V, BuildHasherDefault<WordHasher>>;

/// One kept reason.
#[derive(Debug, Clone, Copy)]
struct Entry {
    second: u64,
    /// 0: the line has no `*N`.
    connection: u64,
    client: u64,
    request: Option<RequestKey>,
    reason: Reason,
}

/// What a join compares of a request line: its first bytes, and its length where the error
/// line holds all of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct RequestKey {
    prefix_hash: u64,
    prefix_len: u32,
    /// The whole request's length, when the error line was not cut inside it.
    len: Option<u32>,
}

impl RequestKey {
    fn of(request: &[u8], complete: bool) -> RequestKey {
        let n = request.len().min(REQUEST_PREFIX);
        RequestKey {
            prefix_hash: hash(&request[..n]),
            prefix_len: n as u32,
            len: complete.then_some(request.len() as u32),
        }
    }

    /// Whether an access log's request line (always whole) is this one.
    fn matches(&self, access: &[u8]) -> bool {
        let n = self.prefix_len as usize;
        self.len.is_none_or(|l| l as usize == access.len())
            && access.len() >= n
            && hash(&access[..n]) == self.prefix_hash
    }
}

fn hash(b: &[u8]) -> u64 {
    use std::hash::Hasher;
    let mut h = WordHasher::default();
    h.write(b);
    h.finish()
}

/// The reasons of an error.log, ready to be joined to access-log lines.
#[derive(Debug, Default)]
pub struct ErrorIndex {
    pub input: String,
    /// Lines read, and of them those that named a known reason.
    pub lines: u64,
    pub reasons: u64,
    /// Reasons of the client's side (nginx logs them at `info`).
    pub client_side: u64,
    /// Reasons beyond [`MAX_REASONS`], counted only.
    pub dropped: u64,
    /// Lines at level `error` or below (`warn`, `notice`, `info`, `debug`): nginx writes every
    /// upstream failure at `error`, so a log with none of these may be filtered above it.
    pub error_or_below: u64,
    /// The first and last second any line was written.
    pub span: Option<(u64, u64)>,
    entries: Vec<Entry>,
    by_connection: Map<Vec<u32>>,
    by_client: Map<Vec<u32>>,
}

impl ErrorIndex {
    pub fn new(input: String) -> ErrorIndex {
        ErrorIndex {
            input,
            ..ErrorIndex::default()
        }
    }

    /// Read one line of the error log.
    pub fn add_line(&mut self, line: &[u8]) {
        self.lines += 1;
        if let Some(second) = line.get(..19).and_then(second_of) {
            self.span = Some(
                self.span
                    .map_or((second, second), |(a, b)| (a.min(second), b.max(second))),
            );
            let level = line.get(19..).and_then(|l| l.strip_prefix(b" ["));
            if level.is_some_and(|l| {
                [&b"error]"[..], b"warn]", b"notice]", b"info]", b"debug]"]
                    .iter()
                    .any(|lv| l.starts_with(lv))
            }) {
                self.error_or_below += 1;
            }
        }
        let Some(r) = parse_line(line) else {
            return;
        };
        self.reasons += 1;
        if r.reason.client_side() {
            self.client_side += 1;
        }
        if self.entries.len() >= MAX_REASONS {
            self.dropped += 1;
            return;
        }
        let at = self.entries.len() as u32;
        let entry = Entry {
            second: r.second,
            connection: r.connection.unwrap_or(0),
            client: hash(r.client),
            request: r
                .request
                .map(|(req, complete)| RequestKey::of(req, complete)),
            reason: r.reason,
        };
        if entry.connection != 0 {
            self.by_connection
                .entry(entry.connection)
                .or_default()
                .push(at);
        }
        self.by_client.entry(entry.client).or_default().push(at);
        self.entries.push(entry);
    }

    /// Sort each list by time, so a join looks only at the seconds of its request (a busy
    /// client address, such as a load balancer in front, has many reasons).
    pub fn finish(&mut self) {
        let entries = &self.entries;
        for list in self
            .by_connection
            .values_mut()
            .chain(self.by_client.values_mut())
        {
            list.sort_by_key(|&i| entries[i as usize].second);
        }
    }

    /// What the error.log says of the request of this access-log line whose status is
    /// `status`: its reason, or nothing although the log covers the request's time (and is
    /// not filtered above `error`), or nothing it could know.
    pub fn join(&self, rec: &Record<'_>, status: u16) -> Joined {
        if let Some(r) = self.reason_for(rec, status) {
            return Joined::Reason(r);
        }
        let covered = self.error_or_below > 0
            && rec.time.and_then(second_of).is_some_and(|t| {
                self.span
                    .is_some_and(|(a, b)| a <= t + SLACK_SECS && t <= b + SLACK_SECS)
            });
        if covered {
            Joined::Silent
        } else {
            Joined::Unknown
        }
    }

    /// The reason nginx gave for the request of this access-log line whose status is
    /// `status`: the last one logged within the request's time span that goes with that
    /// status. By `$connection` when the line has it, else by client and request line.
    pub fn reason_for(&self, rec: &Record<'_>, status: u16) -> Option<Reason> {
        let end = rec.time.and_then(second_of)?;
        let took = rec
            .request_time
            .and_then(parse_number)
            .map_or(0, |t| (t * rec.time_scale).ceil().max(0.0) as u64);
        let from = end.saturating_sub(took + SLACK_SECS);
        let to = end + SLACK_SECS;
        let connection = rec
            .connection
            .and_then(parse_number)
            .map(|n| n as u64)
            .filter(|&n| n != 0);
        let (candidates, by_request) = match connection {
            Some(c) => (self.by_connection.get(&c)?, false),
            None => (self.by_client.get(&hash(rec.client?))?, true),
        };
        let request = rec.request;
        let upto = candidates.partition_point(|&i| self.entries[i as usize].second <= to);
        candidates[..upto]
            .iter()
            .rev()
            .map(|&i| &self.entries[i as usize])
            .take_while(|e| e.second >= from)
            .filter(|e| e.reason.cause().1 == status)
            .find(|e| {
                !by_request
                    || match (e.request, request) {
                        (Some(k), Some(r)) => k.matches(r),
                        // A line without the request (the client left before sending one) joins
                        // on the client and the time alone.
                        (None, _) | (_, None) => true,
                    }
            })
            .map(|e| e.reason)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINES: &[(&str, Option<Reason>)] = &[
        (
            r#"2026/12/07 14:30:05 [error] 32522#32522: *5 upstream timed out (110: Connection timed out) while connecting to upstream, client: 127.0.0.1, server: localhost, request: "GET /connect-timeout HTTP/1.1", upstream: "http://127.0.0.1:39407/connect-timeout", host: "localhost""#,
            Some(Reason::ConnectTimeout),
        ),
        (
            r#"2026/12/07 14:30:06 [error] 32522#32522: *7 upstream timed out (110: Connection timed out) while reading response header from upstream, client: 127.0.0.1, server: localhost, request: "GET /read-timeout HTTP/1.1", upstream: "http://127.0.0.1:41879/read-timeout", host: "localhost""#,
            Some(Reason::ReadTimeout),
        ),
        (
            r#"2026/12/07 14:30:06 [error] 32522#32522: *9 connect() failed (111: Connection refused) while connecting to upstream, client: 127.0.0.1, server: localhost, request: "GET /refused HTTP/1.1", upstream: "http://127.0.0.1:45191/refused", host: "localhost""#,
            Some(Reason::ConnectFailed),
        ),
        (
            r#"2026/12/07 14:30:06 [error] 32522#32522: *11 recv() failed (104: Connection reset by peer) while reading response header from upstream, client: 127.0.0.1, server: localhost, request: "GET /reset HTTP/1.1", upstream: "http://127.0.0.1:41879/reset", host: "localhost""#,
            Some(Reason::UpstreamReset),
        ),
        (
            r#"2026/12/07 14:30:06 [error] 32522#32522: *17 upstream prematurely closed connection while reading response header from upstream, client: 127.0.0.1, server: localhost, request: "GET /half-header HTTP/1.1", upstream: "http://127.0.0.1:41879/half-header", host: "localhost""#,
            Some(Reason::UpstreamClosed),
        ),
        (
            r#"2026/12/07 14:30:06 [error] 32522#32522: *21 no live upstreams while connecting to upstream, client: 127.0.0.1, server: localhost, request: "GET /all-down HTTP/1.1", upstream: "http://dead/all-down", host: "localhost""#,
            Some(Reason::NoLiveUpstreams),
        ),
        (
            r#"2026/12/07 14:30:06 [error] 32522#32522: *32 limiting requests, excess: 1.000 by zone "one", client: 127.0.0.1, server: localhost, request: "GET /rate-limited/2 HTTP/1.1", host: "localhost""#,
            Some(Reason::Limited),
        ),
        (
            r#"2026/12/07 14:30:06 [info] 32522#32522: *36 client sent invalid request while reading client request line, client: 127.0.0.1, server: localhost, request: "GET /bad request HTTP/1.1""#,
            Some(Reason::InvalidRequest),
        ),
        (
            r#"2026/12/07 14:30:07 [info] 32522#32522: *40 client sent plain HTTP request to HTTPS port while reading client request headers, client: 127.0.0.1, server: localhost, request: "GET /plain-to-tls HTTP/1.1", host: "localhost""#,
            Some(Reason::PlainHttpToHttps),
        ),
        (
            r#"2026/12/07 14:30:04 [info] 32522#32522: *1 client closed connection while waiting for request, client: 127.0.0.1, server: 127.0.0.1:34879"#,
            None,
        ),
        (
            r#"2026/12/07 14:30:04 [notice] 32521#32521: start worker process 32522"#,
            None,
        ),
        ("not an error log line", None),
    ];

    #[test]
    fn real_nginx_lines_name_their_reasons() {
        for (line, want) in LINES {
            assert_eq!(
                parse_line(line.as_bytes()).map(|r| r.reason),
                *want,
                "{line}"
            );
        }
        let r = parse_line(LINES[0].0.as_bytes()).unwrap();
        assert_eq!(r.connection, Some(5));
        assert_eq!(r.client, b"127.0.0.1");
        assert_eq!(
            r.request,
            Some((&b"GET /connect-timeout HTTP/1.1"[..], true))
        );
        assert_eq!(r.second % 60, 5);
    }

    #[test]
    fn a_cut_request_joins_by_its_first_bytes() {
        let long = format!("GET /{} HTTP/1.1", "u".repeat(3000));
        let line = format!(
            "2026/12/07 14:30:06 [info] 1#1: *34 client sent too long URI while reading client request line, client: 127.0.0.1, server: localhost, request: \"{}",
            &long[..1500]
        );
        let r = parse_line(line.as_bytes()).unwrap();
        assert_eq!(r.reason, Reason::UriTooLong);
        assert_eq!(r.request.map(|(_, complete)| complete), Some(false));
        let mut ix = ErrorIndex::new("error.log".into());
        ix.add_line(line.as_bytes());
        ix.finish();
        let rec = Record {
            status: 414,
            client: Some(b"127.0.0.1"),
            request: Some(long.as_bytes()),
            time: Some(b"07/Dec/2026:14:30:06 +0000"),
            ..Record::new()
        };
        assert_eq!(ix.reason_for(&rec, 414), Some(Reason::UriTooLong));
        // Another request of the same client at the same time is not this one.
        let other = Record {
            request: Some(b"GET /other HTTP/1.1"),
            ..rec
        };
        assert_eq!(ix.reason_for(&other, 414), None);
        // Nor is the same request minutes later, or with another status.
        let later = Record {
            time: Some(b"07/Dec/2026:14:35:06 +0000"),
            ..rec
        };
        assert_eq!(ix.reason_for(&later, 414), None);
        assert_eq!(ix.reason_for(&rec, 400), None);
    }

    #[test]
    fn connection_numbers_join_exactly() {
        let mut ix = ErrorIndex::new("error.log".into());
        for (line, _) in LINES {
            ix.add_line(line.as_bytes());
        }
        ix.finish();
        assert_eq!(ix.reasons, 9);
        assert_eq!(ix.client_side, 2);
        let rec = Record {
            status: 502,
            client: Some(b"127.0.0.1"),
            request: Some(b"GET /whatever HTTP/1.1"),
            connection: Some(b"9"),
            request_time: Some(b"0.000"),
            time: Some(b"07/Dec/2026:14:30:06 +0000"),
            ..Record::new()
        };
        assert_eq!(ix.reason_for(&rec, 502), Some(Reason::ConnectFailed));
        let by_client = Record {
            connection: None,
            request: Some(b"GET /reset HTTP/1.1"),
            ..rec
        };
        assert_eq!(ix.reason_for(&by_client, 502), Some(Reason::UpstreamReset));
    }
}
