//! nginx `log_format` strings compiled once into a byte-level line parser (no regex per line).
//!
//! A format is a literal prefix, then variables each followed by the literal that ends it.
//! A variable's value runs up to the first occurrence of that literal; nginx escapes `"` and
//! control bytes in variable values, so a quoted `"$request"` cannot contain its delimiter.
//! Upstream variables are lists (`502, 200`, `504 : 200`) whose separators contain spaces, so a
//! space delimiter that is part of such a separator does not end them.

use crate::bytes::find_byte;

use super::record::Record;
use super::LineError;

/// The classifier's fields; every other variable is skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Status,
    UpstreamStatus,
    RequestTime,
    UpstreamResponseTime,
    UpstreamConnectTime,
    UpstreamHeaderTime,
    Request,
    Method,
    Uri,
    Client,
    Time,
    BytesSent,
    RequestLength,
    TcpinfoRtt,
    UpstreamAddr,
    UpstreamBytesReceived,
    Connection,
    Scheme,
    SslProtocol,
    Other,
}

impl Field {
    fn of_variable(name: &str) -> Field {
        match name {
            "status" => Field::Status,
            "upstream_status" => Field::UpstreamStatus,
            "request_time" => Field::RequestTime,
            "upstream_response_time" => Field::UpstreamResponseTime,
            "upstream_connect_time" => Field::UpstreamConnectTime,
            "upstream_header_time" => Field::UpstreamHeaderTime,
            "request" => Field::Request,
            "request_method" => Field::Method,
            "request_uri" | "uri" => Field::Uri,
            "remote_addr" => Field::Client,
            "time_local" | "time_iso8601" | "msec" => Field::Time,
            "body_bytes_sent" | "bytes_sent" => Field::BytesSent,
            "request_length" => Field::RequestLength,
            "tcpinfo_rtt" => Field::TcpinfoRtt,
            "upstream_addr" => Field::UpstreamAddr,
            "upstream_bytes_received" => Field::UpstreamBytesReceived,
            "connection" => Field::Connection,
            "scheme" => Field::Scheme,
            "ssl_protocol" => Field::SslProtocol,
            _ => Field::Other,
        }
    }

    /// Lists of one value per upstream server tried.
    fn is_upstream_list(self) -> bool {
        matches!(
            self,
            Field::UpstreamStatus
                | Field::UpstreamResponseTime
                | Field::UpstreamConnectTime
                | Field::UpstreamHeaderTime
                | Field::UpstreamAddr
                | Field::UpstreamBytesReceived
        )
    }
}

#[derive(Debug, Clone)]
struct Item {
    /// The variable's name as written, for messages and `--explain-line`.
    name: String,
    field: Field,
    /// The literal after the variable; empty: the value runs to the end of the line.
    delim: Vec<u8>,
}

/// A compiled nginx `log_format`.
#[derive(Debug, Clone)]
pub struct NginxFormat {
    source: String,
    prefix: Vec<u8>,
    items: Vec<Item>,
    /// Index of the `$status` item: the fast path stops after it.
    status_at: usize,
    /// Where `$status` is found by counting quotes, when the format allows it.
    anchor: Option<QuoteAnchor>,
}

/// nginx writes a `"` inside a variable's value as `\x22` (`escape=default`), so every `"` in a
/// line is one of the format's own: `$status` starts right after the format's Nth quote and
/// the literal that follows it. Finding it takes a couple of memchr calls instead of a walk
/// over every field before it, the cost of every line of a log that is mostly 2xx.
#[derive(Debug, Clone)]
struct QuoteAnchor {
    /// Quotes in the format's literal text before `$status`.
    quotes: usize,
    /// The literal between the last of them and `$status` (no variable in between).
    after: Vec<u8>,
    /// The usual case, checked in a handful of instructions: no prefix, one byte between the
    /// quote and `$status` and one after it (`"$request" $status $body_bytes_sent`).
    simple: Option<(u8, u8)>,
}

/// Why a `log_format` string cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    #[error("the log format has no $status variable, which every classification starts from")]
    NoStatus,
    #[error("the log format has ${first} directly followed by ${second}: with nothing between them, a parser cannot tell where one ends")]
    Adjacent { first: String, second: String },
    #[error("the log format has an unterminated ${{ at byte {at}")]
    Unterminated { at: usize },
}

/// nginx's predefined `combined` format.
pub const COMBINED: &str = "$remote_addr - $remote_user [$time_local] \"$request\" $status \
     $body_bytes_sent \"$http_referer\" \"$http_user_agent\"";

/// `combined` plus the upstream fields the classifier reads, the usual way people extend it.
pub const COMBINED_UPSTREAM: &str = "$remote_addr - $remote_user [$time_local] \"$request\" \
     $status $body_bytes_sent \"$http_referer\" \"$http_user_agent\" $request_length \
     $request_time $upstream_addr $upstream_status $upstream_response_time \
     $upstream_connect_time $upstream_header_time";

impl NginxFormat {
    /// Compile a `log_format` string as written in nginx.conf (without the surrounding quotes
    /// of the directive; adjacent quoted pieces must already be joined).
    pub fn compile(source: &str) -> Result<NginxFormat, FormatError> {
        let bytes = source.as_bytes();
        let mut prefix = Vec::new();
        let mut items: Vec<Item> = Vec::new();
        let mut literal = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            let name = if b == b'$' && bytes.get(i + 1) == Some(&b'{') {
                let close = bytes[i + 2..]
                    .iter()
                    .position(|&c| c == b'}')
                    .ok_or(FormatError::Unterminated { at: i })?;
                let name = &source[i + 2..i + 2 + close];
                i += 3 + close;
                Some(name)
            } else if b == b'$' {
                let len = bytes[i + 1..]
                    .iter()
                    .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_')
                    .count();
                if len == 0 {
                    None
                } else {
                    let name = &source[i + 1..i + 1 + len];
                    i += 1 + len;
                    Some(name)
                }
            } else {
                None
            };
            match name {
                Some(name) => {
                    match items.last_mut() {
                        None => prefix = std::mem::take(&mut literal),
                        Some(last) => {
                            if literal.is_empty() {
                                return Err(FormatError::Adjacent {
                                    first: last.name.clone(),
                                    second: name.to_string(),
                                });
                            }
                            last.delim = std::mem::take(&mut literal);
                        }
                    }
                    items.push(Item {
                        name: name.to_string(),
                        field: Field::of_variable(name),
                        delim: Vec::new(),
                    });
                }
                None => {
                    literal.push(b);
                    i += 1;
                }
            }
        }
        if let Some(last) = items.last_mut() {
            last.delim = literal;
        }
        let status_at = items
            .iter()
            .position(|it| it.field == Field::Status)
            .ok_or(FormatError::NoStatus)?;
        let mut anchor = quote_anchor(&prefix, &items[..status_at]);
        if let Some(a) = &mut anchor {
            if let ([after], [delim], true) =
                (&a.after[..], &items[status_at].delim[..], prefix.is_empty())
            {
                a.simple = Some((*after, *delim));
            }
        }
        Ok(NginxFormat {
            source: source.to_string(),
            prefix,
            items,
            status_at,
            anchor,
        })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// The literal before the first variable.
    pub fn prefix(&self) -> &[u8] {
        &self.prefix
    }

    /// Each variable in order: its name, the field it fills, the literal that ends it (empty:
    /// the end of the line), and whether its value is an upstream list (`502, 200`), whose
    /// separators may hold the delimiter's space. What the SQL loaders' line regex is made of.
    pub fn variables(&self) -> impl Iterator<Item = (&str, Field, &[u8], bool)> + '_ {
        self.items.iter().map(|it| {
            (
                it.name.as_str(),
                it.field,
                it.delim.as_slice(),
                it.field.is_upstream_list(),
            )
        })
    }

    /// Parse one line (without its newline). `fast`: stop after `$status` when it is below 400,
    /// the path every successful request takes.
    pub fn parse<'a>(&self, line: &'a [u8], fast: bool) -> Result<Record<'a>, LineError> {
        let mut rec = Record::new();
        self.walk(line, fast, |_, field, value| set(&mut rec, field, value))?;
        Ok(rec)
    }

    /// The status alone, when the line is good up to it: the fast path of every line.
    /// `None` when the line does not parse that far (the full parse then says why).
    #[inline]
    pub fn status(&self, line: &[u8]) -> Option<u16> {
        if !starts_with(line, &self.prefix) {
            return None;
        }
        let mut pos = self.prefix.len();
        for item in &self.items[..=self.status_at] {
            let rest = &line[pos..];
            let end = if item.delim.is_empty() {
                rest.len()
            } else {
                find_end(rest, &item.delim, item.field.is_upstream_list())?
            };
            if item.field == Field::Status {
                return status_of(&rest[..end]);
            }
            pos += end + item.delim.len();
        }
        None
    }

    /// [`status`](Self::status) by the quote anchor where the format has one: the same answer
    /// on every line nginx can write, checked by the tests on every golden line and on the
    /// benchmark's data. Lines it cannot place (`None`) take the walk.
    #[inline]
    pub fn status_by_anchor(&self, line: &[u8]) -> Option<u16> {
        let anchor = self.anchor.as_ref()?;
        let mut pos = 0;
        for _ in 0..anchor.quotes {
            pos += memchr::memchr(b'"', line.get(pos..)?)? + 1;
        }
        self.status_after_anchor(line, pos)
    }

    /// How many quotes come before `$status`, when the format has a quote anchor.
    pub fn anchor_quotes(&self) -> Option<usize> {
        self.anchor.as_ref().map(|a| a.quotes)
    }

    /// The status of `line` whose anchor quote ends right before `pos` (found by the caller,
    /// who may scan many lines at once); the same checks as
    /// [`status_by_anchor`](Self::status_by_anchor).
    #[inline(always)]
    pub fn status_after_anchor(&self, line: &[u8], pos: usize) -> Option<u16> {
        let anchor = self.anchor.as_ref()?;
        if let Some((after, delim)) = anchor.simple {
            // The 8 bytes from two before `pos` (the byte before the quote, the quote, `after`,
            // three digits, `delim`, one more) checked in a register; lines too short for that
            // take the byte-by-byte check.
            if let Some(w) = line.get(pos.wrapping_sub(2)..pos.wrapping_add(6)) {
                let w = u64::from_le_bytes(w.try_into().unwrap_or([0; 8]));
                let want = u64::from(after) << 16 | u64::from(delim) << 48;
                let digits = (w >> 24) & 0x00ff_ffff;
                let is_digits = digits & 0x00f0_f0f0 == 0x0030_3030
                    && (digits + 0x0006_0606) & 0x00f0_f0f0 == 0x0030_3030;
                if w & 0xff == u64::from(b'\\') || w & 0x00ff_0000_00ff_0000 != want || !is_digits {
                    return None;
                }
                let d = |i: u32| ((digits >> (8 * i)) & 0xf) as u16;
                return Some(d(0) * 100 + d(1) * 10 + d(2));
            }
            return simple_status_short(line, pos, after, delim);
        }
        self.status_after_anchor_general(line, pos)
    }

    /// [`status_after_anchor`](Self::status_after_anchor) of a format without the usual anchor.
    #[inline(never)]
    fn status_after_anchor_general(&self, line: &[u8], pos: usize) -> Option<u16> {
        let anchor = self.anchor.as_ref()?;
        if !starts_with(line, &self.prefix) || pos == 0 || pos > line.len() {
            return None;
        }
        // `escape=json` writes a quote in a value as `\"`: such a quote is not the format's.
        if pos >= 2 && line[pos - 2] == b'\\' {
            return None;
        }
        let rest = &line[pos..];
        if !starts_with(rest, &anchor.after) {
            return None;
        }
        let rest = &rest[anchor.after.len()..];
        let status = status_of(rest.get(..3)?)?;
        let delim = &self.items[self.status_at].delim;
        if !starts_with(&rest[3..], delim) || (delim.is_empty() && rest.len() != 3) {
            return None;
        }
        Some(status)
    }

    /// Every variable of the format with its value, for `--explain-line`.
    pub fn fields<'a>(&self, line: &'a [u8]) -> Result<Vec<(String, &'a [u8])>, LineError> {
        let mut out = Vec::new();
        self.walk(line, false, |name, _, value| {
            out.push((format!("${name}"), value));
            Ok(())
        })?;
        Ok(out)
    }

    fn walk<'a>(
        &self,
        line: &'a [u8],
        fast: bool,
        mut visit: impl FnMut(&str, Field, &'a [u8]) -> Result<(), LineError>,
    ) -> Result<(), LineError> {
        if !line.starts_with(&self.prefix) {
            return Err(LineError::new(
                0,
                format!("expected {:?} at the start", lossy(&self.prefix)),
            ));
        }
        let mut pos = self.prefix.len();
        for (idx, item) in self.items.iter().enumerate() {
            let rest = &line[pos..];
            let end = if item.delim.is_empty() {
                rest.len()
            } else {
                find_end(rest, &item.delim, item.field.is_upstream_list()).ok_or_else(|| {
                    LineError::new(
                        pos,
                        format!("expected {:?} after ${}", lossy(&item.delim), item.name),
                    )
                })?
            };
            let value = &rest[..end];
            visit(&item.name, item.field, value).map_err(|mut e| {
                e.column = pos;
                e
            })?;
            pos += end + item.delim.len();
            if fast && idx == self.status_at && status_of(value).is_some_and(|s| s < 400) {
                return Ok(());
            }
        }
        if pos != line.len() {
            return Err(LineError::new(
                pos,
                "unexpected text after the last field".into(),
            ));
        }
        Ok(())
    }
}

fn set<'a>(rec: &mut Record<'a>, field: Field, value: &'a [u8]) -> Result<(), LineError> {
    match field {
        Field::Status => {
            rec.status = status_of(value).ok_or_else(|| {
                LineError::new(
                    0,
                    format!("$status is {:?}, not a status code", lossy(value)),
                )
            })?;
        }
        Field::UpstreamStatus => rec.upstream_status = Some(value),
        Field::RequestTime => rec.request_time = Some(value),
        Field::UpstreamResponseTime => rec.upstream_response_time = Some(value),
        Field::UpstreamConnectTime => rec.upstream_connect_time = Some(value),
        Field::UpstreamHeaderTime => rec.upstream_header_time = Some(value),
        Field::Request => rec.request = Some(value),
        Field::Method => rec.method = Some(value),
        Field::Uri => rec.uri = Some(value),
        Field::Client => rec.client = Some(value),
        Field::Time => rec.time = Some(value),
        Field::BytesSent => rec.bytes_sent = Some(value),
        Field::RequestLength => rec.request_length = Some(value),
        Field::TcpinfoRtt => rec.tcpinfo_rtt = Some(value),
        Field::UpstreamAddr => rec.upstream_addr = Some(value),
        Field::UpstreamBytesReceived => rec.upstream_bytes_received = Some(value),
        Field::Connection => rec.connection = Some(value),
        Field::Scheme => rec.scheme = Some(value),
        Field::SslProtocol => rec.ssl_protocol = Some(value),
        Field::Other => {}
    }
    Ok(())
}

/// The usual anchor's check byte by byte (`after`, three digits, `delim`; the quote not an
/// escaped `\"`), for an anchor near either end of the line.
#[cold]
#[inline(never)]
fn simple_status_short(line: &[u8], pos: usize, after: u8, delim: u8) -> Option<u16> {
    let t = line.get(pos..pos.checked_add(5)?)?;
    if pos == 0 || (pos >= 2 && line[pos - 2] == b'\\') || t[0] != after || t[4] != delim {
        return None;
    }
    status_of(&t[1..4])
}

/// The quote anchor of a format whose `$status` follows a quote with only literal text in
/// between (`"$request" $status`); `None` for formats without one.
fn quote_anchor(prefix: &[u8], before_status: &[Item]) -> Option<QuoteAnchor> {
    let literal_before = before_status.last().map_or(prefix, |it| &it.delim[..]);
    let last_quote = literal_before.iter().rposition(|&b| b == b'"')?;
    let quotes = prefix.iter().filter(|&&b| b == b'"').count()
        + before_status
            .iter()
            .map(|it| it.delim.iter().filter(|&&b| b == b'"').count())
            .sum::<usize>();
    Some(QuoteAnchor {
        quotes,
        after: literal_before[last_quote + 1..].to_vec(),
        simple: None,
    })
}

/// A three-digit status code (nginx logs 000 when no status was set).
#[inline(always)]
pub fn status_of(v: &[u8]) -> Option<u16> {
    match v {
        [a @ b'0'..=b'9', b @ b'0'..=b'9', c @ b'0'..=b'9'] => {
            Some(u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0'))
        }
        _ => None,
    }
}

/// Where `delim` first occurs in `hay`; for upstream lists, a delimiter that begins with a
/// space is skipped where that space belongs to a `, ` or ` : ` separator.
#[inline]
fn find_end(hay: &[u8], delim: &[u8], list: bool) -> Option<usize> {
    let first = delim[0];
    let rest = &delim[1..];
    let mut from = 0;
    while from <= hay.len() {
        let at = from + find_byte(first, &hay[from..])?;
        if starts_with(&hay[at + 1..], rest) {
            let separator = list
                && first == b' '
                && ((at > 0 && matches!(hay[at - 1], b',' | b':'))
                    || starts_with(&hay[at + 1..], b": "));
            if !separator {
                return Some(at);
            }
        }
        from = at + 1;
    }
    None
}

/// Delimiters are a few bytes: comparing inline beats a call to memcmp.
#[inline]
fn starts_with(hay: &[u8], prefix: &[u8]) -> bool {
    hay.len() >= prefix.len() && hay.iter().zip(prefix).all(|(a, b)| a == b)
}

pub(crate) fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn combined_upstream_line_parses_with_a_retry_list() {
        let f = NginxFormat::compile(COMBINED_UPSTREAM).unwrap();
        let line = br#"10.0.0.1 - - [24/Nov/2025:19:29:01 +0000] "GET /a HTTP/1.1" 502 157 "-" "curl/8" 80 0.012 10.0.0.5:80, 10.0.0.6:80 502, 200 0.004, 0.008 0.001, 0.001 0.004, 0.008"#;
        let r = f.parse(line, false).unwrap();
        assert_eq!(r.status, 502);
        assert_eq!(r.upstream_status, Some(&b"502, 200"[..]));
        assert_eq!(r.upstream_addr, Some(&b"10.0.0.5:80, 10.0.0.6:80"[..]));
        assert_eq!(r.upstream_header_time, Some(&b"0.004, 0.008"[..]));
        assert_eq!(r.method(), Some(&b"GET"[..]));
        assert_eq!(r.time, Some(&b"24/Nov/2025:19:29:01 +0000"[..]));
    }

    #[test]
    fn fast_path_stops_after_a_good_status() {
        let f = NginxFormat::compile("$status [$request_time]").unwrap();
        // The rest is not looked at: a 200 line is counted, never classified.
        assert_eq!(f.parse(b"200 [junk", true).unwrap().status, 200);
        assert!(f.parse(b"200 [junk", false).is_err());
        assert!(f.parse(b"500 [junk", true).is_err());
    }

    #[test]
    fn format_errors_are_named() {
        assert_eq!(
            NginxFormat::compile("$remote_addr").unwrap_err(),
            FormatError::NoStatus
        );
        assert!(matches!(
            NginxFormat::compile("$status$request_time"),
            Err(FormatError::Adjacent { .. })
        ));
        assert!(NginxFormat::compile("${status").is_err());
        assert!(NginxFormat::compile("[${status}]").is_ok());
    }

    /// The short check of the usual anchor (`" 200 `) says what the general one says, on a line
    /// damaged at every byte and cut at every length.
    #[test]
    fn simple_anchor_check_agrees_with_the_general_one() {
        let f = NginxFormat::compile(COMBINED_UPSTREAM).unwrap();
        assert!(f.anchor.as_ref().unwrap().simple.is_some());
        let mut general = f.clone();
        general.anchor.as_mut().unwrap().simple = None;
        let line = br#"10.0.0.1 - - [24/Nov/2025:19:29:01 +0000] "GET /a HTTP/1.1" 502 157 "-" "curl/8" 80 0.012 10.0.0.5:80 502 0.004 0.001 0.004"#;
        let mut tried = 0;
        for i in 0..=line.len() {
            let mut variants = vec![line[..i].to_vec()];
            for b in [b'\\', b' ', b'9', b'"', b'x'] {
                if i < line.len() {
                    let mut v = line.to_vec();
                    v[i] = b;
                    variants.push(v);
                }
            }
            for v in variants {
                assert_eq!(
                    f.status_by_anchor(&v),
                    general.status_by_anchor(&v),
                    "{v:?}"
                );
                tried += usize::from(f.status_by_anchor(&v).is_some());
            }
        }
        assert!(tried > 100);
    }

    /// The usual anchor's check in a register says what the byte-by-byte check says, at every
    /// position of lines damaged around the status, the ends of the line included.
    #[test]
    fn register_anchor_check_agrees_with_the_byte_check() {
        let f = NginxFormat::compile(COMBINED).unwrap();
        let (after, delim) = f.anchor.as_ref().unwrap().simple.unwrap();
        let base = br#"1 - - [t] "GET / HTTP/1.1" 502 157 "-" "c""#;
        let mut lines: Vec<Vec<u8>> = vec![base.to_vec(), b"\" 200 ".to_vec(), b"\" 200".to_vec()];
        for i in 0..base.len() {
            for b in [b'\\', b' ', b'0', b'9', b'/', b':', b'"', 0xb9, 0x3a] {
                let mut v = base.to_vec();
                v[i] = b;
                lines.push(v);
            }
            lines.push(base[..i].to_vec());
        }
        for v in &lines {
            for pos in (0..v.len() + 8).chain([usize::MAX - 3, usize::MAX]) {
                assert_eq!(
                    f.status_after_anchor(v, pos),
                    simple_status_short(v, pos, after, delim),
                    "{pos} in {v:?}"
                );
            }
        }
    }

    #[test]
    fn bad_lines_say_where() {
        let f = NginxFormat::compile(COMBINED).unwrap();
        let e = f.parse(b"garbage", false).unwrap_err();
        assert!(e.message.contains("after $remote_addr"), "{e:?}");
    }
}
