//! A lenient, bounded HTTP/1.1 request parser for the lab backend — pure functions over bytes.
//!
//! Lenient on purpose: many application servers accept lowercase methods, bare LF line ends and
//! obs-folded headers, and the lab must behave like them so that lbprobe can show where a listener
//! is stricter than the backend behind it. Only what cannot be read at all is `Malformed`.

/// The most a request head may take before the backend gives up on it.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;

/// Longest chunk-size line (size, extensions, line end) accepted in a chunked body.
const MAX_CHUNK_LINE: usize = 4096;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub name: String,
    pub value: String,
    /// Bytes of `Name: value` as sent, without the line end (folded lines included), for the
    /// backend's header-size limit.
    pub line_bytes: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    /// As sent (not upper-cased): the backend accepts lowercase methods.
    pub method: String,
    pub target: String,
    pub version: String,
    pub headers: Vec<Header>,
}

impl RequestHead {
    /// The first header of that name, matched case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value.as_str())
    }

    pub fn headers_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value.as_str())
    }
}

/// What the parser could not read at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Malformed {
    RequestLine,
    /// 1-based line number in the head (the request line is line 1).
    HeaderLine(usize),
    Nul,
}

impl Malformed {
    pub fn message(&self) -> String {
        match self {
            Malformed::RequestLine => "malformed request line".to_string(),
            Malformed::HeaderLine(n) => format!("malformed header line {n}"),
            Malformed::Nul => "NUL byte in request head".to_string(),
        }
    }
}

/// Empty lines a client may send before the request line (RFC 9112 §2.2 lets servers skip them).
fn leading_blank_len(buf: &[u8]) -> usize {
    buf.iter()
        .take_while(|b| **b == b'\r' || **b == b'\n')
        .count()
}

/// The length of the head including its terminating empty line, if the buffer holds it all.
/// Accepts CRLF CRLF, LF LF and the mixtures.
pub fn find_head_end(buf: &[u8]) -> Option<usize> {
    let start = leading_blank_len(buf);
    let mut i = start;
    while let Some(off) = buf[i..].iter().position(|b| *b == b'\n') {
        let lf = i + off;
        match (buf.get(lf + 1), buf.get(lf + 2)) {
            (Some(b'\n'), _) => return Some(lf + 2),
            (Some(b'\r'), Some(b'\n')) => return Some(lf + 3),
            _ => i = lf + 1,
        }
    }
    None
}

/// The first line of what was received (without its line end): used when the head is too large,
/// to tell an overlong request line (414) from too many header bytes.
pub fn first_line(buf: &[u8]) -> &[u8] {
    let buf = &buf[leading_blank_len(buf)..];
    let line = match buf.iter().position(|b| *b == b'\n') {
        Some(lf) => &buf[..lf],
        None => buf,
    };
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Parses a complete head (as delimited by [`find_head_end`]).
pub fn parse_head(head: &[u8]) -> Result<RequestHead, Malformed> {
    if head.contains(&0) {
        return Err(Malformed::Nul);
    }
    let head = &head[leading_blank_len(head)..];
    let mut lines = head
        .split(|b| *b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));

    let request_line = lines.next().ok_or(Malformed::RequestLine)?;
    let parts: Vec<&[u8]> = request_line
        .split(|b| *b == b' ' || *b == b'\t')
        .filter(|p| !p.is_empty())
        .collect();
    let [method, target, version] = parts[..] else {
        return Err(Malformed::RequestLine);
    };
    if !method.iter().all(|b| crate::transport::is_token_byte(*b))
        || version.len() < 5
        || !version[..5].eq_ignore_ascii_case(b"HTTP/")
    {
        return Err(Malformed::RequestLine);
    }

    let mut headers: Vec<Header> = Vec::new();
    for (index, line) in lines.enumerate() {
        let line_no = index + 2;
        if line.is_empty() {
            break;
        }
        if line[0] == b' ' || line[0] == b'\t' {
            // obs-fold: lenient servers join it to the previous header.
            let Some(previous) = headers.last_mut() else {
                return Err(Malformed::HeaderLine(line_no));
            };
            let more = String::from_utf8_lossy(line.trim_ascii());
            if !more.is_empty() {
                previous.value.push(' ');
                previous.value.push_str(&more);
            }
            previous.line_bytes += line.len();
            continue;
        }
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            return Err(Malformed::HeaderLine(line_no));
        };
        let name = line[..colon].trim_ascii();
        if name.is_empty() || !name.iter().all(|b| crate::transport::is_token_byte(*b)) {
            return Err(Malformed::HeaderLine(line_no));
        }
        headers.push(Header {
            name: String::from_utf8_lossy(name).into_owned(),
            value: String::from_utf8_lossy(line[colon + 1..].trim_ascii()).into_owned(),
            line_bytes: line.len(),
        });
    }

    Ok(RequestHead {
        method: String::from_utf8_lossy(method).into_owned(),
        target: String::from_utf8_lossy(target).into_owned(),
        version: String::from_utf8_lossy(version).into_owned(),
        headers,
    })
}

/// How the request says its body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    None,
    Length(u64),
    Chunked,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FramingError {
    InvalidContentLength,
    UnsupportedTransferEncoding,
}

impl FramingError {
    pub fn message(&self) -> &'static str {
        match self {
            FramingError::InvalidContentLength => "invalid content-length",
            FramingError::UnsupportedTransferEncoding => "unsupported transfer-encoding",
        }
    }
}

/// Transfer-Encoding wins over Content-Length (RFC 9112 §6.3); repeated equal Content-Length
/// values (also `5, 5` in one header) are accepted, as lenient servers do.
pub fn framing(head: &RequestHead) -> Result<Framing, FramingError> {
    let codings: Vec<String> = head
        .headers_named("transfer-encoding")
        .flat_map(|v| v.split(','))
        .map(|c| c.trim().to_ascii_lowercase())
        .filter(|c| !c.is_empty())
        .collect();
    if let Some(last) = codings.last() {
        return if last == "chunked" {
            Ok(Framing::Chunked)
        } else {
            Err(FramingError::UnsupportedTransferEncoding)
        };
    }
    let mut length: Option<u64> = None;
    for value in head
        .headers_named("content-length")
        .flat_map(|v| v.split(','))
    {
        let value = value.trim();
        if value.is_empty() || value.len() > 19 || !value.bytes().all(|b| b.is_ascii_digit()) {
            return Err(FramingError::InvalidContentLength);
        }
        let n: u64 = value
            .parse()
            .map_err(|_| FramingError::InvalidContentLength)?;
        match length {
            Some(seen) if seen != n => return Err(FramingError::InvalidContentLength),
            _ => length = Some(n),
        }
    }
    Ok(length.map_or(Framing::None, Framing::Length))
}

/// [`framing`] as a careless server reads it, the back half of a request-smuggling desync:
/// Content-Length wins over Transfer-Encoding, and a length is its leading digits after an
/// optional sign (`+5` and `5x` read as 5; of two lengths the first). Only what no length can
/// be read from falls back to Transfer-Encoding.
pub fn lenient_framing(head: &RequestHead) -> Result<Framing, FramingError> {
    let leading_digits = |v: &str| -> Option<u64> {
        let v = v.trim_start();
        let v = v.strip_prefix('+').unwrap_or(v);
        let end = v.bytes().take_while(u8::is_ascii_digit).count();
        v[..end.min(19)].parse().ok()
    };
    match head
        .headers_named("content-length")
        .find_map(leading_digits)
    {
        Some(n) => Ok(Framing::Length(n)),
        None => framing(head),
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChunkedError {
    Malformed,
    TooLarge,
}

/// Decodes a chunked body from the start of `buf`. `Ok(None)` means more bytes are needed;
/// `Ok(Some((body, consumed)))` a complete body (trailers read and dropped).
pub fn decode_chunked(
    buf: &[u8],
    max_body: usize,
) -> Result<Option<(Vec<u8>, usize)>, ChunkedError> {
    let mut body = Vec::new();
    let mut pos = 0;
    loop {
        let Some((line, next)) = take_line(buf, pos, MAX_CHUNK_LINE)? else {
            return Ok(None);
        };
        let size_text = line
            .split(|b| *b == b';')
            .next()
            .unwrap_or(&[])
            .trim_ascii();
        if size_text.is_empty()
            || size_text.len() > 15
            || !size_text.iter().all(|b| b.is_ascii_hexdigit())
        {
            return Err(ChunkedError::Malformed);
        }
        let text = std::str::from_utf8(size_text).map_err(|_| ChunkedError::Malformed)?;
        let size = usize::from_str_radix(text, 16).map_err(|_| ChunkedError::Malformed)?;
        pos = next;
        if size == 0 {
            // Trailer section: header lines until an empty line.
            loop {
                let Some((line, next)) = take_line(buf, pos, MAX_CHUNK_LINE)? else {
                    return Ok(None);
                };
                pos = next;
                if line.is_empty() {
                    return Ok(Some((body, pos)));
                }
            }
        }
        if body.len().saturating_add(size) > max_body {
            return Err(ChunkedError::TooLarge);
        }
        if buf.len() < pos + size {
            return Ok(None);
        }
        body.extend_from_slice(&buf[pos..pos + size]);
        pos += size;
        // The chunk's data must be followed by its line end and nothing else.
        match (buf.get(pos), buf.get(pos + 1)) {
            (None, _) | (Some(b'\r'), None) => return Ok(None),
            (Some(b'\n'), _) => pos += 1,
            (Some(b'\r'), Some(b'\n')) => pos += 2,
            _ => return Err(ChunkedError::Malformed),
        }
    }
}

/// One line from `pos` (LF or CRLF ended): the line without its end, and where the next starts.
fn take_line(buf: &[u8], pos: usize, max: usize) -> Result<Option<(&[u8], usize)>, ChunkedError> {
    let rest = &buf[pos.min(buf.len())..];
    match rest.iter().take(max).position(|b| *b == b'\n') {
        Some(lf) => {
            let line = &rest[..lf];
            Ok(Some((
                line.strip_suffix(b"\r").unwrap_or(line),
                pos + lf + 1,
            )))
        }
        None if rest.len() >= max => Err(ChunkedError::Malformed),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_end_accepts_crlf_lf_and_mixtures() {
        assert_eq!(
            find_head_end(b"GET / HTTP/1.1\r\nA: b\r\n\r\nbody"),
            Some(24)
        );
        assert_eq!(find_head_end(b"GET / HTTP/1.1\nA: b\n\nbody"), Some(21));
        assert_eq!(find_head_end(b"GET / HTTP/1.1\nA: b\n\r\n"), Some(22));
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\nA: b\r\n"), None);
        assert_eq!(find_head_end(b"\r\nGET / HTTP/1.1\r\n\r\n"), Some(20));
    }

    #[test]
    fn lowercase_method_and_bare_lf_are_accepted() {
        let head = parse_head(b"get /x HTTP/1.1\nHost: a\nX-Y:  z \n\n").unwrap();
        assert_eq!(head.method, "get");
        assert_eq!(head.target, "/x");
        assert_eq!(head.header("host"), Some("a"));
        assert_eq!(head.header("x-y"), Some("z"));
        assert_eq!(head.headers[1].line_bytes, "X-Y:  z ".len());
    }

    #[test]
    fn unreadable_lines_are_malformed() {
        assert_eq!(parse_head(b"GET /\r\n\r\n"), Err(Malformed::RequestLine));
        assert_eq!(
            parse_head(b"GET / FOO/1.1\r\n\r\n"),
            Err(Malformed::RequestLine)
        );
        assert_eq!(
            parse_head(b"GET / HTTP/1.1\r\nHost: a\r\nno colon here\r\n\r\n"),
            Err(Malformed::HeaderLine(3))
        );
        assert_eq!(
            parse_head(b"GET / HTTP/1.1\r\nA: \0\r\n\r\n"),
            Err(Malformed::Nul)
        );
        assert_eq!(
            parse_head(b"GET / HTTP/1.1\r\n folded first\r\n\r\n"),
            Err(Malformed::HeaderLine(2))
        );
    }

    #[test]
    fn obs_fold_joins_the_previous_header() {
        let head = parse_head(b"GET / HTTP/1.1\r\nA: one\r\n two\r\n\r\n").unwrap();
        assert_eq!(head.header("a"), Some("one two"));
        assert_eq!(head.headers[0].line_bytes, 6 + 4);
    }

    #[test]
    fn lenient_framing_reads_what_a_careless_server_reads() {
        let f = |raw: &[u8]| lenient_framing(&parse_head(raw).unwrap());
        assert_eq!(
            f(b"POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"),
            Ok(Framing::Length(5))
        );
        assert_eq!(
            f(b"POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\n"),
            Ok(Framing::Length(5))
        );
        assert_eq!(
            f(b"POST / HTTP/1.1\r\nContent-Length: 5x\r\n\r\n"),
            Ok(Framing::Length(5))
        );
        assert_eq!(
            f(b"POST / HTTP/1.1\r\nContent-Length: 0\r\nContent-Length: 5\r\n\r\n"),
            Ok(Framing::Length(0))
        );
        assert_eq!(
            f(b"POST / HTTP/1.1\r\nContent-Length: x\r\nTransfer-Encoding: chunked\r\n\r\n"),
            Ok(Framing::Chunked)
        );
        // The strict reading of the same heads.
        let strict = |raw: &[u8]| framing(&parse_head(raw).unwrap());
        assert_eq!(
            strict(b"POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"),
            Ok(Framing::Chunked)
        );
        assert!(strict(b"POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\n").is_err());
    }

    #[test]
    fn framing_rules() {
        let f = |raw: &[u8]| framing(&parse_head(raw).unwrap());
        assert_eq!(f(b"GET / HTTP/1.1\r\n\r\n"), Ok(Framing::None));
        assert_eq!(
            f(b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\n"),
            Ok(Framing::Length(5))
        );
        assert_eq!(
            f(b"POST / HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\n"),
            Ok(Framing::Length(5))
        );
        assert_eq!(
            f(b"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"),
            Err(FramingError::InvalidContentLength)
        );
        assert_eq!(
            f(b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n"),
            Err(FramingError::InvalidContentLength)
        );
        assert_eq!(
            f(b"POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"),
            Ok(Framing::Chunked)
        );
        assert_eq!(
            f(b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n"),
            Err(FramingError::UnsupportedTransferEncoding)
        );
    }

    #[test]
    fn chunked_bodies() {
        let full = b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nTrailer: x\r\n\r\nNEXT";
        let (body, used) = decode_chunked(full, 1024).unwrap().unwrap();
        assert_eq!(body, b"hello world");
        assert_eq!(&full[used..], b"NEXT");
        for cut in 0..full.len() - 4 {
            assert_eq!(decode_chunked(&full[..cut], 1024), Ok(None), "cut at {cut}");
        }
        assert_eq!(
            decode_chunked(b"5\nhello\n0\n\n", 1024).unwrap().unwrap().0,
            b"hello"
        );
        assert_eq!(
            decode_chunked(b"zz\r\n", 1024),
            Err(ChunkedError::Malformed)
        );
        assert_eq!(
            decode_chunked(b"5\r\nhelloXX", 1024),
            Err(ChunkedError::Malformed)
        );
        assert_eq!(decode_chunked(b"400\r\n", 16), Err(ChunkedError::TooLarge));
    }

    #[test]
    fn first_line_of_an_overlong_head() {
        assert_eq!(
            first_line(b"\r\nGET /aaaa HTTP/1.1\r\nHost"),
            b"GET /aaaa HTTP/1.1"
        );
        assert_eq!(first_line(b"GET /aaaa"), b"GET /aaaa");
    }
}
