//! Raw HTTP/1.1 bytes (from tcpdump, a proxy's capture, a file written by hand): the request
//! line, the header lines up to the blank line, the rest as the body. Bytes are kept as they
//! are; only lines that end in a bare LF (a file saved by an editor) are sent with CRLF, and
//! the report says so.

use super::{Header, ParseError, Parsed, Request, Source};

const WHAT: &str = "the raw request";

pub fn parse(input: &[u8]) -> Result<Parsed, ParseError> {
    let mut notes = Vec::new();
    let mut pos = 0;
    let mut bare_lf = false;
    // The next line: its bytes without the line end, and the offset after it.
    let mut next_line = |pos: usize| -> Option<(&[u8], usize)> {
        let rest = &input[pos..];
        let nl = memchr::memchr(b'\n', rest)?;
        let line = &rest[..nl];
        let line = match line.strip_suffix(b"\r") {
            Some(l) => l,
            None => {
                bare_lf = true;
                line
            }
        };
        Some((line, pos + nl + 1))
    };
    // Blank lines before the request line are skipped, as servers do (RFC 9112 §2.2).
    let (line, line_start) = loop {
        let Some((line, after)) = next_line(pos) else {
            return Err(ParseError::at(
                WHAT,
                input,
                pos,
                "no request line ending in CRLF",
            ));
        };
        if !line.is_empty() {
            let start = pos;
            pos = after;
            break (line, start);
        }
        pos = after;
    };
    let first = memchr::memchr(b' ', line);
    let last = memchr::memrchr(b' ', line);
    let (method, target, version) = match (first, last) {
        (Some(a), Some(b)) if a < b => (&line[..a], &line[a + 1..b], &line[b + 1..]),
        _ => {
            return Err(ParseError::at(
                WHAT,
                input,
                line_start,
                "the request line is not `METHOD TARGET VERSION`",
            ))
        }
    };
    let mut headers = Vec::new();
    loop {
        let Some((line, after)) = next_line(pos) else {
            return Err(ParseError::at(
                WHAT,
                input,
                pos,
                "the head does not end with a blank line",
            ));
        };
        pos = after;
        if line.is_empty() {
            break;
        }
        headers.push(split_header(line));
    }
    if bare_lf {
        notes.push("the head's lines end in LF alone; they are sent with CRLF".to_string());
    }
    Ok(Parsed {
        request: Request {
            method: method.to_vec(),
            target: target.to_vec(),
            version: version.to_vec(),
            headers,
            body: input[pos..].to_vec(),
        },
        source: Source::Raw,
        notes,
    })
}

/// `Name: value` into its three parts, keeping the exact separator (`Name:value`,
/// `Name : value`); a line without a colon is all name.
pub fn split_header(line: &[u8]) -> Header {
    let Some(colon) = memchr::memchr(b':', line) else {
        return Header {
            name: line.to_vec(),
            sep: Vec::new(),
            value: Vec::new(),
        };
    };
    let name_end = line[..colon]
        .iter()
        .rposition(|b| !matches!(b, b' ' | b'\t'))
        .map_or(0, |p| p + 1);
    let value_start = colon
        + 1
        + line[colon + 1..]
            .iter()
            .take_while(|b| matches!(b, b' ' | b'\t'))
            .count();
    Header {
        name: line[..name_end].to_vec(),
        sep: line[name_end..value_start].to_vec(),
        value: line[value_start..].to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_bytes_go_out_as_they_came() {
        let raw =
            b"post /upload?x=1 HTTP/1.1\r\nHost: a\r\nX-Odd :v\r\nContent-Length: 3\r\n\r\nabc";
        let p = parse(raw).unwrap();
        assert_eq!(p.request.method, b"post");
        assert_eq!(p.request.target, b"/upload?x=1");
        assert_eq!(p.request.headers[1].sep, b" :");
        assert_eq!(p.request.body, b"abc");
        assert_eq!(p.request.to_bytes(), raw.to_vec());
        assert!(p.notes.is_empty());
    }

    #[test]
    fn bare_lf_is_sent_as_crlf_and_said() {
        let p = parse(b"GET / HTTP/1.1\nHost: a\n\n").unwrap();
        assert_eq!(
            p.request.to_bytes(),
            b"GET / HTTP/1.1\r\nHost: a\r\n\r\n".to_vec()
        );
        assert_eq!(p.notes.len(), 1);
    }

    #[test]
    fn where_a_broken_request_breaks() {
        let e = parse(b"GET / HTTP/1.1\r\nHost: a\r\n").unwrap_err();
        assert_eq!((e.line, e.column), (3, 1));
        let e = parse(b"\r\nGARBAGE\r\n\r\n").unwrap_err();
        assert_eq!((e.line, e.column), (2, 1));
        assert!(e.to_string().contains("METHOD TARGET VERSION"), "{e}");
    }
}
