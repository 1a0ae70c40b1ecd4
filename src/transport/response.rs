//! Tolerant, bounded parsing of an HTTP/1.x response from raw bytes. Pure: no I/O.

use serde::{Deserialize, Serialize};

use super::WireBytes;

/// Hard bounds on what the parser looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseLimits {
    /// Bytes of status line + header block considered; beyond it the head is "too large".
    pub max_head_bytes: usize,
    pub max_headers: usize,
    /// Bytes of body kept in `body_prefix`.
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
    /// First body bytes; escaped in JSON.
    pub body_prefix: WireBytes,
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
    /// A complete `HTTP/1.1` answer with `status`, `reason`, `headers` and the whole `body`,
    /// framed by a Content-Length: what tests and replays build where no bytes were parsed.
    pub fn complete(status: u16, reason: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
        Response {
            version: "HTTP/1.1".into(),
            status,
            reason: reason.into(),
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            body_prefix: WireBytes::from(body),
            body_bytes: body.len(),
            content_length: Some(body.len() as u64),
            chunked: false,
            complete: true,
            problems: Vec::new(),
        }
    }

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
///
/// A close-delimited body (no Content-Length, not chunked) is never `complete` here, since only
/// the connection's end completes it: see [`parse_response_closed`].
pub fn parse_response(bytes: &[u8], head_request: bool, limits: &ParseLimits) -> Option<Response> {
    parse(bytes, head_request, limits, false)
}

/// [`parse_response`] for bytes after which the server closed the connection: a close-delimited
/// body is then complete.
pub fn parse_response_closed(
    bytes: &[u8],
    head_request: bool,
    limits: &ParseLimits,
) -> Option<Response> {
    parse(bytes, head_request, limits, true)
}

/// True when `bytes` hold a whole final response framed by its own headers (no body, length or
/// chunked end), so a reader can stop without waiting for the server to close.
pub fn response_is_complete(bytes: &[u8], head_request: bool, limits: &ParseLimits) -> bool {
    parse(bytes, head_request, limits, false).is_some_and(|r| r.complete)
}

/// Final (non-1xx) responses in bytes that hold several, one after another on a connection
/// (the answers to pipelined requests): each framed by its own head, as a client reads them.
/// A head cut short at the end counts; a close-delimited body takes the rest.
pub fn count_final_responses(bytes: &[u8]) -> u32 {
    let limits = ParseLimits::default();
    let mut n = 0;
    let mut off = 0;
    // Every answer takes at least its head's bytes: the loop is bounded by the input.
    while off < bytes.len() {
        let rest = &bytes[off..];
        let Some((_, Some((framing, body_start)))) = parse_framed(rest, false, &limits, true)
        else {
            if rest.trim_ascii_start().starts_with(b"HTTP/") {
                n += 1;
            }
            break;
        };
        n += 1;
        off += match framing {
            Framing::NoBody => body_start,
            Framing::Length(len) => {
                body_start.saturating_add(usize::try_from(len).unwrap_or(usize::MAX))
            }
            Framing::Chunked => {
                let mut sink = BodySink {
                    kept: Vec::new(),
                    keep: 0,
                    total: 0,
                };
                body_start + dechunk(&rest[body_start..], &mut sink).0
            }
            Framing::Close => rest.len(),
        };
    }
    n
}

/// What would complete a response that is not complete yet: lets a reader that gets a few bytes
/// per read skip re-parsing until those bytes can have arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Completion {
    Complete,
    /// Complete once this many bytes are in (Content-Length framing).
    AtLength(usize),
    /// Complete, if at all, only with a blank line: the end of a head still to come (also the
    /// final one after an interim 1xx) or the end of a chunked body (its last chunk and
    /// trailers end with an empty line).
    AtBlankLine,
    /// Only the close completes it (close-delimited body, not HTTP at all, or a head past the
    /// size limit).
    AtClose,
}

/// [`response_is_complete`], saying what is still missing when it is not.
pub(crate) fn completion(bytes: &[u8], head_request: bool, limits: &ParseLimits) -> Completion {
    match parse_framed(bytes, head_request, limits, false) {
        None => {
            // Leading blank lines, or a status line cut short, may still become a response.
            let rest = bytes.trim_ascii_start();
            if rest.len() < 5 && b"HTTP/".starts_with(rest) {
                Completion::AtBlankLine
            } else {
                Completion::AtClose
            }
        }
        Some((response, _)) if response.complete => Completion::Complete,
        Some((_, Some((Framing::Length(n), body_start)))) => Completion::AtLength(
            body_start.saturating_add(usize::try_from(n).unwrap_or(usize::MAX)),
        ),
        Some((_, Some((Framing::Chunked, _)))) => Completion::AtBlankLine,
        Some((_, Some((Framing::Close | Framing::NoBody, _)))) => Completion::AtClose,
        Some((response, None))
            if response
                .problems
                .iter()
                .any(|p| p.starts_with("head larger")) =>
        {
            Completion::AtClose
        }
        Some((_, None)) => Completion::AtBlankLine,
    }
}

/// Interim (1xx) responses skipped before giving up on finding the final one.
const MAX_INTERIM: usize = 16;

/// How a message's body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    NoBody,
    Length(u64),
    Chunked,
    Close,
}

/// The head of one message: its lines (without line ends) and where the body starts (`None` when the empty line
/// ending the head was not found within the bytes or the limit).
struct Head<'a> {
    lines: Vec<&'a [u8]>,
    body_start: Option<usize>,
    too_large: bool,
}

fn split_head<'a>(bytes: &'a [u8], start: usize, limits: &ParseLimits) -> Head<'a> {
    let window_end = start.saturating_add(limits.max_head_bytes).min(bytes.len());
    let mut lines = Vec::new();
    let mut pos = start;
    while pos < window_end {
        let Some(nl) = bytes[pos..window_end].iter().position(|&b| b == b'\n') else {
            break;
        };
        let mut text = &bytes[pos..pos + nl];
        if let [rest @ .., b'\r'] = text {
            text = rest;
        }
        pos += nl + 1;
        if text.is_empty() {
            return Head {
                lines,
                body_start: Some(pos),
                too_large: false,
            };
        }
        lines.push(text);
    }
    Head {
        lines,
        body_start: None,
        too_large: bytes.len() - start > limits.max_head_bytes,
    }
}

fn parse(bytes: &[u8], head_request: bool, limits: &ParseLimits, closed: bool) -> Option<Response> {
    parse_framed(bytes, head_request, limits, closed).map(|(response, _)| response)
}

/// [`parse`], with the final message's framing and where its body starts, when its head is in.
fn parse_framed(
    bytes: &[u8],
    head_request: bool,
    limits: &ParseLimits,
    closed: bool,
) -> Option<(Response, Option<(Framing, usize)>)> {
    let lead = bytes
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(bytes.len());
    if !bytes[lead..].starts_with(b"HTTP/") {
        return None;
    }
    let mut start = lead;
    let mut interim = 0;
    loop {
        let (mut response, head) = parse_head(bytes, start, limits);
        let Some(body_start) = head.body_start else {
            // Head not finished: what we have is all there is to say.
            if head.too_large {
                response.problems.push(format!(
                    "head larger than {} bytes (no end of headers within it)",
                    limits.max_head_bytes
                ));
            } else if closed {
                response
                    .problems
                    .push("connection closed before the end of the headers".into());
            }
            return Some((response, None));
        };
        if (100..200).contains(&response.status) && response.status != 101 {
            // A 1xx is followed by the final response on the same connection; until it has
            // arrived the response is not complete.
            let rest = &bytes[body_start..];
            if rest.len() < 5 && b"HTTP/".starts_with(rest) {
                return Some((response, None));
            }
            if interim == MAX_INTERIM {
                response
                    .problems
                    .push(format!("more than {MAX_INTERIM} interim (1xx) responses"));
                return Some((response, None));
            }
            if !bytes[body_start..].starts_with(b"HTTP/") {
                response.problems.push(format!(
                    "bytes after interim {} response are not a status line: {}",
                    response.status,
                    super::escape_bytes(prefix(&bytes[body_start..], 40))
                ));
                return Some((response, None));
            }
            interim += 1;
            start = body_start;
            continue;
        }
        let framing = framing(&mut response, head_request);
        read_body(&mut response, &bytes[body_start..], framing, limits, closed);
        return Some((response, Some((framing, body_start))));
    }
}

fn prefix(bytes: &[u8], n: usize) -> &[u8] {
    &bytes[..bytes.len().min(n)]
}

/// Status line and headers of the message starting at `start`.
fn parse_head<'a>(bytes: &'a [u8], start: usize, limits: &ParseLimits) -> (Response, Head<'a>) {
    let head = split_head(bytes, start, limits);
    let mut response = Response {
        version: String::new(),
        status: 0,
        reason: String::new(),
        headers: Vec::new(),
        body_prefix: WireBytes::default(),
        body_bytes: 0,
        content_length: None,
        chunked: false,
        complete: false,
        problems: Vec::new(),
    };
    let status_line = match head.lines.first() {
        Some(line) => line,
        // Not even the status line is complete: take what there is (still bounded).
        None => {
            let end = start.saturating_add(limits.max_head_bytes).min(bytes.len());
            let text = &bytes[start..end];
            text.strip_suffix(b"\r").unwrap_or(text)
        }
    };
    parse_status_line(status_line, &mut response);
    let mut count_warned = false;
    for line in head.lines.iter().skip(1) {
        parse_header_line(line, limits, &mut response, &mut count_warned);
    }
    (response, head)
}

fn parse_status_line(line: &[u8], response: &mut Response) {
    let mut malformed = Vec::new();
    let (version, rest) = match line.iter().position(|&b| b == b' ' || b == b'\t') {
        Some(i) => (&line[..i], &line[i..]),
        None => (line, &line[line.len()..]),
    };
    response.version = text(version);
    let valid_version = version.len() == 8
        && version[5].is_ascii_digit()
        && version[6] == b'.'
        && version[7].is_ascii_digit();
    if !valid_version {
        malformed.push("bad version");
    }
    if rest.first() == Some(&b'\t') || rest.starts_with(b"  ") {
        malformed.push("not a single space after the version");
    }
    let rest = trim_start(rest);
    let code_len = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if code_len == 3 {
        let code = &rest[..3];
        response.status = code
            .iter()
            .fold(0u16, |acc, d| acc * 10 + u16::from(d - b'0'));
        let after = &rest[3..];
        match after.first() {
            None => {}
            Some(b' ') => response.reason = text(&after[1..]),
            Some(_) => {
                malformed.push("status code not followed by a space");
                response.reason = text(trim_start(after));
            }
        }
    } else {
        malformed.push("no three-digit status code");
    }
    if line.iter().any(|&b| b == 0 || b == b'\r') {
        malformed.push("NUL or CR in the line");
    }
    if !malformed.is_empty() {
        response.problems.push(format!(
            "malformed status line ({}): {}",
            malformed.join(", "),
            super::escape_bytes(prefix(line, 80))
        ));
    }
}

fn parse_header_line(
    line: &[u8],
    limits: &ParseLimits,
    response: &mut Response,
    count_warned: &mut bool,
) {
    if matches!(line.first(), Some(b' ' | b'\t')) {
        response
            .problems
            .push("obs-fold (header continued on an indented line)".into());
        if let Some((_, value)) = response.headers.last_mut() {
            let more = text(trim(line));
            if !more.is_empty() {
                value.push(' ');
                value.push_str(&more);
            }
        }
        return;
    }
    let Some(colon) = line.iter().position(|&b| b == b':') else {
        response.problems.push(format!(
            "header line without colon: {}",
            super::escape_bytes(prefix(line, 80))
        ));
        return;
    };
    let raw_name = &line[..colon];
    let name = trim_end(raw_name);
    if name.len() != raw_name.len() {
        response.problems.push(format!(
            "whitespace before colon in header {}",
            super::escape_bytes(prefix(name, 80))
        ));
    }
    if name.is_empty() || !name.iter().all(|&b| super::is_token_byte(b)) {
        response.problems.push(format!(
            "invalid header name: {}",
            super::escape_bytes(prefix(name, 80))
        ));
    }
    let value = trim(&line[colon + 1..]);
    if value.iter().any(|&b| b == 0 || b == b'\r') {
        response.problems.push(format!(
            "NUL or CR in the value of header {}",
            super::escape_bytes(prefix(name, 80))
        ));
    }
    if response.headers.len() >= limits.max_headers {
        if !*count_warned {
            *count_warned = true;
            response
                .problems
                .push(format!("more than {} headers", limits.max_headers));
        }
        return;
    }
    response.headers.push((text(name), text(value)));
}

/// Header text for humans: kept as is when it is printable UTF-8, escaped otherwise so control
/// bytes stay visible.
fn text(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) if !s.chars().any(|c| c.is_control()) => s.to_string(),
        _ => super::escape_bytes(bytes),
    }
}

fn trim_start(b: &[u8]) -> &[u8] {
    let n = b.iter().take_while(|&&c| c == b' ' || c == b'\t').count();
    &b[n..]
}

fn trim_end(b: &[u8]) -> &[u8] {
    let n = b
        .iter()
        .rev()
        .take_while(|&&c| c == b' ' || c == b'\t')
        .count();
    &b[..b.len() - n]
}

fn trim(b: &[u8]) -> &[u8] {
    trim_end(trim_start(b))
}

/// Decide the body framing from the status and headers, noting conflicts on the way.
fn framing(response: &mut Response, head_request: bool) -> Framing {
    let mut lengths: Vec<u64> = Vec::new();
    let mut invalid_length = false;
    let mut transfer_encodings: Vec<String> = Vec::new();
    for (name, value) in &response.headers {
        if name.eq_ignore_ascii_case("content-length") {
            for part in value.split(',') {
                let part = part.trim();
                match part.parse::<u64>() {
                    Ok(n) if part.bytes().all(|b| b.is_ascii_digit()) => lengths.push(n),
                    _ => invalid_length = true,
                }
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            transfer_encodings.extend(
                value
                    .split(',')
                    .map(|c| c.trim().to_ascii_lowercase())
                    .filter(|c| !c.is_empty()),
            );
        }
    }
    if invalid_length {
        response.problems.push("invalid Content-Length".into());
    }
    if lengths.windows(2).any(|w| w[0] != w[1]) {
        response
            .problems
            .push("conflicting Content-Length values".into());
    }
    response.content_length = if invalid_length && lengths.is_empty() {
        None
    } else {
        lengths.first().copied()
    };
    response.chunked = transfer_encodings.last().is_some_and(|c| c == "chunked");
    if !transfer_encodings.is_empty() && !lengths.is_empty() {
        response
            .problems
            .push("both Transfer-Encoding and Content-Length".into());
    }
    let status = response.status;
    if head_request || (100..200).contains(&status) || status == 204 || status == 304 {
        return Framing::NoBody;
    }
    if !transfer_encodings.is_empty() {
        // Transfer-Encoding wins over Content-Length; without a final chunked the response
        // runs until the close.
        return if response.chunked {
            Framing::Chunked
        } else {
            Framing::Close
        };
    }
    match response.content_length {
        Some(n) if !invalid_length && !lengths.windows(2).any(|w| w[0] != w[1]) => {
            Framing::Length(n)
        }
        _ => Framing::Close,
    }
}

/// Collects body bytes: counts them all, keeps the first `keep` of them.
struct BodySink {
    kept: Vec<u8>,
    keep: usize,
    total: usize,
}

impl BodySink {
    fn push(&mut self, data: &[u8]) {
        let room = self.keep.saturating_sub(self.kept.len());
        self.kept.extend_from_slice(prefix(data, room));
        self.total += data.len();
    }
}

fn read_body(
    response: &mut Response,
    body: &[u8],
    framing: Framing,
    limits: &ParseLimits,
    closed: bool,
) {
    let mut sink = BodySink {
        kept: Vec::new(),
        keep: limits.body_prefix_bytes,
        total: 0,
    };
    let consumed = match framing {
        Framing::NoBody => {
            response.complete = true;
            0
        }
        Framing::Length(n) => {
            let have = body.len().min(usize::try_from(n).unwrap_or(usize::MAX));
            sink.push(&body[..have]);
            if have as u64 >= n {
                response.complete = true;
            } else {
                response.problems.push(format!(
                    "body shorter than Content-Length ({have} of {n} bytes)"
                ));
            }
            have
        }
        Framing::Chunked => {
            let (consumed, end) = dechunk(body, &mut sink);
            match end {
                ChunkEnd::Done => response.complete = true,
                ChunkEnd::Truncated => response.problems.push("chunked body not terminated".into()),
                ChunkEnd::Invalid(why) => response
                    .problems
                    .push(format!("chunked body not terminated: {why}")),
            }
            consumed
        }
        Framing::Close => {
            sink.push(body);
            response.complete = closed;
            body.len()
        }
    };
    if consumed < body.len() {
        response.problems.push(format!(
            "{} bytes after the end of the response",
            body.len() - consumed
        ));
    }
    response.body_bytes = sink.total;
    response.body_prefix = WireBytes::from(sink.kept);
}

enum ChunkEnd {
    Done,
    Truncated,
    Invalid(String),
}

/// Find the next line (ending in LF, CR optional) at `pos`: its text and the position after it.
fn next_line(bytes: &[u8], pos: usize) -> Option<(&[u8], usize)> {
    let nl = bytes.get(pos..)?.iter().position(|&b| b == b'\n')?;
    let text = &bytes[pos..pos + nl];
    Some((text.strip_suffix(b"\r").unwrap_or(text), pos + nl + 1))
}

/// De-chunk `body` into `sink`. Returns the bytes consumed and how the chunked body ended.
fn dechunk(body: &[u8], sink: &mut BodySink) -> (usize, ChunkEnd) {
    let mut pos = 0;
    loop {
        let Some((line, after)) = next_line(body, pos) else {
            return (body.len(), ChunkEnd::Truncated);
        };
        let size_text = trim(line.split(|&b| b == b';').next().unwrap_or(line));
        let size = if size_text.is_empty() || size_text.len() > 15 {
            None
        } else {
            std::str::from_utf8(size_text)
                .ok()
                .and_then(|s| usize::from_str_radix(s, 16).ok())
        };
        let Some(size) = size else {
            return (
                body.len(),
                ChunkEnd::Invalid(format!(
                    "invalid chunk size line {}",
                    super::escape_bytes(prefix(line, 40))
                )),
            );
        };
        pos = after;
        if size == 0 {
            // Trailer section: header lines up to an empty line.
            loop {
                let Some((line, after)) = next_line(body, pos) else {
                    return (body.len(), ChunkEnd::Truncated);
                };
                pos = after;
                if line.is_empty() {
                    return (pos, ChunkEnd::Done);
                }
            }
        }
        let available = body.len() - pos;
        if available < size {
            sink.push(&body[pos..]);
            return (body.len(), ChunkEnd::Truncated);
        }
        sink.push(&body[pos..pos + size]);
        pos += size;
        let rest = &body[pos..];
        if rest.starts_with(b"\r\n") {
            pos += 2;
        } else if rest.starts_with(b"\n") {
            pos += 1;
        } else if rest.is_empty() || rest == b"\r" {
            return (body.len(), ChunkEnd::Truncated);
        } else {
            return (
                body.len(),
                ChunkEnd::Invalid("chunk data not followed by CRLF".into()),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(bytes: &[u8]) -> Response {
        parse_response(bytes, false, &ParseLimits::default()).expect("HTTP-like")
    }

    fn has_problem(r: &Response, needle: &str) -> bool {
        r.problems.iter().any(|p| p.contains(needle))
    }

    #[test]
    fn content_length_response() {
        let r = parse(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nServer: x\r\n\r\nhello");
        assert_eq!(r.version, "HTTP/1.1");
        assert_eq!((r.status, r.reason.as_str()), (200, "OK"));
        assert_eq!(r.header("server"), Some("x"));
        assert_eq!(r.content_length, Some(5));
        assert_eq!((r.body_bytes, r.body_prefix.text().as_ref()), (5, "hello"));
        assert!(r.complete);
        assert!(r.problems.is_empty(), "{:?}", r.problems);
    }

    #[test]
    fn chunked_response_is_dechunked() {
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n";
        let r = parse(raw);
        assert!(r.chunked);
        assert_eq!(r.body_prefix, "hello world");
        assert_eq!(r.body_bytes, 11);
        assert!(r.complete);
        assert!(r.problems.is_empty(), "{:?}", r.problems);
        assert!(response_is_complete(raw, false, &ParseLimits::default()));
        // Every strict prefix is incomplete.
        for n in 0..raw.len() {
            assert!(!response_is_complete(
                &raw[..n],
                false,
                &ParseLimits::default()
            ));
        }
    }

    #[test]
    fn chunked_not_terminated() {
        let r = parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel");
        assert!(!r.complete);
        assert_eq!(r.body_bytes, 3);
        assert!(has_problem(&r, "chunked body not terminated"));
        let r = parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n");
        assert!(!r.complete);
        assert!(has_problem(&r, "invalid chunk size"));
    }

    #[test]
    fn head_response_has_no_body() {
        let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n";
        let r = parse_response(raw, true, &ParseLimits::default()).unwrap();
        assert_eq!(r.content_length, Some(1234));
        assert_eq!(r.body_bytes, 0);
        assert!(r.complete);
        assert!(response_is_complete(raw, true, &ParseLimits::default()));
        // The same bytes as the answer to a GET are a truncated body.
        assert!(!response_is_complete(raw, false, &ParseLimits::default()));
    }

    #[test]
    fn no_body_statuses() {
        for status in ["204 No Content", "304 Not Modified"] {
            let raw = format!("HTTP/1.1 {status}\r\nContent-Length: 10\r\n\r\n");
            let r = parse(raw.as_bytes());
            assert!(r.complete, "{status}");
            assert_eq!(r.body_bytes, 0);
        }
    }

    #[test]
    fn final_responses_are_counted_by_their_status_lines() {
        let two = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok\
HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(count_final_responses(two), 2);
        assert_eq!(count_final_responses(b""), 0);
        assert_eq!(count_final_responses(b"garbage\r\nHTTP/1.1 2\r\n"), 0);
        // A body without a final newline, then the next answer: framing, not line starts.
        let glued = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n{\"a\"}HTTP/1.1 200 OK\r\n\
Transfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\nHTTP/1.1 400 Bad\r\nConnection: close\r\n\r\nbye";
        assert_eq!(count_final_responses(glued), 3);
    }

    #[test]
    fn interim_100_continue_is_skipped() {
        let raw =
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok";
        let r = parse(raw);
        assert_eq!(r.status, 201);
        assert_eq!(r.body_prefix, "ok");
        assert!(r.complete);
        // Only the 100 so far: not complete, whatever it says.
        let only_100 = b"HTTP/1.1 100 Continue\r\n\r\n";
        assert_eq!(parse(only_100).status, 100);
        assert!(!response_is_complete(
            only_100,
            false,
            &ParseLimits::default()
        ));
        assert!(!response_is_complete(
            &raw[..only_100.len() + 3],
            false,
            &ParseLimits::default()
        ));
    }

    #[test]
    fn lf_only_and_missing_reason_are_tolerated() {
        let r = parse(b"\r\nHTTP/1.0 404\nContent-Length: 0\n\n");
        assert_eq!(r.status, 404);
        assert_eq!(r.reason, "");
        assert!(r.complete);
        assert!(r.problems.is_empty(), "{:?}", r.problems);
    }

    #[test]
    fn garbage_is_not_http() {
        let limits = ParseLimits::default();
        assert!(parse_response(b"", false, &limits).is_none());
        assert!(parse_response(b"\x15\x03\x03\x00\x02\x02\x28", false, &limits).is_none());
        assert!(parse_response(b"SSH-2.0-OpenSSH\r\n", false, &limits).is_none());
        assert!(parse_response(b"HTT", false, &limits).is_none());
        assert!(!response_is_complete(b"garbage", false, &limits));
    }

    #[test]
    fn malformed_status_line() {
        let r = parse(b"HTTP/1.1 2x0 OK\r\n\r\n");
        assert_eq!(r.status, 0);
        assert!(has_problem(&r, "malformed status line"));
        let r = parse(b"HTTP/one 200  OK\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(r.status, 200);
        assert!(has_problem(&r, "bad version"));
    }

    #[test]
    fn bad_header_lines_are_recorded() {
        let raw = b"HTTP/1.1 200 OK\r\nNoColonHere\r\nX-Sp : a\r\nX-Fold: a\r\n  b\r\nBad Name: v\r\nX-Nul: a\x00b\r\nContent-Length: 0\r\n\r\n";
        let r = parse(raw);
        assert!(has_problem(&r, "without colon: NoColonHere"));
        assert!(has_problem(&r, "whitespace before colon"));
        assert!(has_problem(&r, "obs-fold"));
        assert!(has_problem(&r, "invalid header name: Bad Name"));
        assert!(has_problem(&r, "NUL or CR"));
        assert_eq!(r.header("x-fold"), Some("a b"));
        assert_eq!(r.header("x-sp"), Some("a"));
        assert_eq!(r.header("x-nul"), Some("a\\x00b"));
        assert!(r.complete);
    }

    #[test]
    fn content_length_problems() {
        let r = parse(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort");
        assert!(!r.complete);
        assert_eq!(r.body_bytes, 5);
        assert!(has_problem(&r, "body shorter than Content-Length (5 of 10"));

        let r = parse(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc");
        assert!(has_problem(&r, "conflicting Content-Length"));
        let r = parse(b"HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\n\r\nab");
        assert!(r.complete && r.problems.is_empty(), "{:?}", r.problems);
        let r = parse(b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\nab");
        assert!(has_problem(&r, "invalid Content-Length"));
        assert!(
            !r.complete,
            "an invalid length falls back to close-delimited"
        );
        let r = parse(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nabEXTRA");
        assert!(r.complete);
        assert!(has_problem(&r, "5 bytes after the end"));
    }

    #[test]
    fn close_delimited_body_completes_only_at_close() {
        let raw = b"HTTP/1.0 200 OK\r\n\r\nall of it";
        let limits = ParseLimits::default();
        assert!(!parse(raw).complete);
        assert!(!response_is_complete(raw, false, &limits));
        let r = parse_response_closed(raw, false, &limits).unwrap();
        assert!(r.complete);
        assert_eq!(r.body_bytes, 9);
    }

    #[test]
    fn head_beyond_limits() {
        let limits = ParseLimits {
            max_head_bytes: 1024,
            max_headers: 10,
            body_prefix_bytes: 8,
        };
        let mut raw = b"HTTP/1.1 200 OK\r\n".to_vec();
        for i in 0..200 {
            raw.extend_from_slice(format!("X-H{i}: v\r\n").as_bytes());
        }
        raw.extend_from_slice(b"\r\n");
        let r = parse_response(&raw, false, &limits).unwrap();
        assert!(!r.complete);
        assert!(r
            .problems
            .iter()
            .any(|p| p.contains("head larger than 1024")));
        assert!(r
            .problems
            .iter()
            .any(|p| p.contains("more than 10 headers")));
        assert_eq!(r.headers.len(), 10);

        // A head within the byte limit but over the header count still frames its body.
        let mut raw = b"HTTP/1.1 200 OK\r\n".to_vec();
        for i in 0..20 {
            raw.extend_from_slice(format!("X-H{i}: v\r\n").as_bytes());
        }
        raw.extend_from_slice(b"Content-Length: 3\r\n\r\nabc");
        let r = parse_response(&raw, false, &limits).unwrap();
        assert!(r
            .problems
            .iter()
            .any(|p| p.contains("more than 10 headers")));
        // Content-Length was beyond the kept headers: close-delimited, not complete.
        assert!(!r.complete);
    }

    #[test]
    fn body_prefix_is_bounded() {
        let limits = ParseLimits {
            body_prefix_bytes: 4,
            ..ParseLimits::default()
        };
        let r = parse_response(
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789",
            false,
            &limits,
        )
        .unwrap();
        assert_eq!(r.body_prefix, "0123");
        assert_eq!(r.body_bytes, 10);
    }

    #[test]
    fn completion_says_what_is_missing() {
        let limits = ParseLimits::default();
        let c = |raw: &[u8]| completion(raw, false, &limits);
        assert_eq!(
            c(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
            Completion::Complete
        );
        let head: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n";
        assert_eq!(
            c(&[head, b"ok"].concat()),
            Completion::AtLength(head.len() + 10)
        );
        assert_eq!(
            c(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n"),
            Completion::AtBlankLine
        );
        assert_eq!(
            c(b"HTTP/1.1 200 OK\r\n\r\nuntil close"),
            Completion::AtClose
        );
        assert_eq!(c(b"HTTP/1.1 100 Continue\r\n\r\n"), Completion::AtBlankLine);
        assert_eq!(c(b"HTTP/1.1 200 OK\r\nX: y\r\n"), Completion::AtBlankLine);
        // Leading blank lines may still be followed by a response; garbage never is.
        assert_eq!(c(b"\r\n\r\n"), Completion::AtBlankLine);
        assert_eq!(c(b"\r\n\r\nHTT"), Completion::AtBlankLine);
        assert_eq!(c(b"SSH-2.0\r\n\r\n"), Completion::AtClose);
    }
}
