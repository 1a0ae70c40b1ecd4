//! `lbprobe replay`: one failing request, as a person has it (raw HTTP/1.1 bytes, a curl command
//! line, a HAR 1.2 file), read into one typed [`Request`], sent as given to the listener (and
//! the backend) through the probe engine, classified by the same rules as the probes, and on
//! request shrunk to what triggers the answer ([`shrink`]).
//!
//! One module per input format ([`raw`], [`curl`], [`har`]); [`run`] sends and shrinks.

pub mod curl;
pub mod har;
pub mod raw;
pub mod run;
pub mod share;
pub mod shrink;

use std::fmt;

/// One header line as it will be written: `name`, the bytes between name and value (`": "`
/// almost always), `value`. Kept apart so a raw request goes out byte for byte as it came in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub name: Vec<u8>,
    pub sep: Vec<u8>,
    pub value: Vec<u8>,
}

impl Header {
    pub fn new(name: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> Header {
        let value = value.into();
        // curl writes `Name:` without the space when the value is empty.
        let sep = if value.is_empty() {
            b":".to_vec()
        } else {
            b": ".to_vec()
        };
        Header {
            name: name.into(),
            sep,
            value,
        }
    }

    pub fn is(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name.as_bytes())
    }

    /// The line's length with its CRLF, as servers count it against their buffers.
    pub fn line_len(&self) -> usize {
        self.name.len() + self.sep.len() + self.value.len() + 2
    }

    pub fn name_text(&self) -> String {
        String::from_utf8_lossy(&self.name).into_owned()
    }
}

/// One HTTP/1.x request: request line, ordered headers, body, all as bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: Vec<u8>,
    pub target: Vec<u8>,
    pub version: Vec<u8>,
    pub headers: Vec<Header>,
    pub body: Vec<u8>,
}

impl Request {
    /// The bytes on the wire.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.head_len() + self.body.len());
        out.extend_from_slice(&self.method);
        out.push(b' ');
        out.extend_from_slice(&self.target);
        out.push(b' ');
        out.extend_from_slice(&self.version);
        out.extend_from_slice(b"\r\n");
        for h in &self.headers {
            out.extend_from_slice(&h.name);
            out.extend_from_slice(&h.sep);
            out.extend_from_slice(&h.value);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&self.body);
        out
    }

    /// Bytes of the head, blank line included.
    pub fn head_len(&self) -> usize {
        self.method.len()
            + self.target.len()
            + self.version.len()
            + 4
            + self.headers.iter().map(Header::line_len).sum::<usize>()
            + 2
    }

    pub fn header(&self, name: &str) -> Option<&Header> {
        self.headers.iter().find(|h| h.is(name))
    }

    /// The body replaced, `Content-Length` (when the request has one) following it, so a
    /// shorter body is still one request.
    pub fn with_body(&self, body: Vec<u8>) -> Request {
        let mut r = self.clone();
        r.body = body;
        for h in r.headers.iter_mut().filter(|h| h.is("content-length")) {
            h.value = r.body.len().to_string().into_bytes();
        }
        r
    }

    /// The path and the query, split at the first `?`.
    pub fn path_and_query(&self) -> (&[u8], Option<&[u8]>) {
        match memchr::memchr(b'?', &self.target) {
            Some(at) => (&self.target[..at], Some(&self.target[at + 1..])),
            None => (&self.target, None),
        }
    }
}

/// Where a request came from, for the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Raw,
    Curl,
    /// The entry's index, counting from 1, its recorded status, and the protocol it was
    /// recorded over when not HTTP/1.x (`h2`, `h3`: it is sent as HTTP/1.1).
    Har {
        entry: usize,
        status: i64,
        over: Option<String>,
    },
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Raw => f.write_str("raw HTTP/1.1 bytes"),
            Source::Curl => f.write_str("a curl command line"),
            Source::Har { entry, status, .. } => {
                write!(f, "entry {entry} of a HAR file (recorded status {status})")
            }
        }
    }
}

/// A request read from its input, with what the reading noticed (flags that change nothing
/// on the wire, an h2 recording sent as HTTP/1.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    pub request: Request,
    pub source: Source,
    pub notes: Vec<String>,
}

/// Why an input is not a request, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what}, line {line} column {column}: {message}")]
pub struct ParseError {
    /// "the curl command line", "the HAR file", "the raw request".
    pub what: &'static str,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl ParseError {
    pub(crate) fn at(
        what: &'static str,
        text: &[u8],
        offset: usize,
        message: impl Into<String>,
    ) -> ParseError {
        let (line, column) = position(text, offset);
        ParseError {
            what,
            line,
            column,
            message: message.into(),
        }
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub(crate) fn position(text: &[u8], offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |p| p + 1);
    let column = String::from_utf8_lossy(&before[start..]).chars().count() + 1;
    (line, column)
}

/// Read REQUEST's bytes as whichever format they are: a HAR file starts with `{`, a curl
/// command line with `curl`, anything else is raw HTTP/1.1. `entry` picks a HAR entry
/// (counting from 1); `None`: the first one recorded with a status of 400 or above.
pub fn parse(input: &[u8], entry: Option<usize>) -> Result<Parsed, ParseError> {
    let start = input
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(input.len());
    let rest = &input[start..];
    if rest.starts_with(b"{") {
        har::parse(input, entry)
    } else if rest.starts_with(b"curl") && rest.get(4).is_none_or(|b| b.is_ascii_whitespace()) {
        if entry.is_some() {
            return Err(ParseError::at(
                "the curl command line",
                input,
                0,
                "--entry picks an entry of a HAR file; this is a curl command line",
            ));
        }
        let text = std::str::from_utf8(input).map_err(|e| {
            ParseError::at(
                "the curl command line",
                input,
                e.valid_up_to(),
                "not UTF-8 text",
            )
        })?;
        curl::parse(text, &curl::Defaults::default())
    } else {
        if entry.is_some() {
            return Err(ParseError::at(
                "the raw request",
                input,
                0,
                "--entry picks an entry of a HAR file; this is a raw request",
            ));
        }
        raw::parse(input)
    }
}
