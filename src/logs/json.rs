//! The load balancer's JSON export: one flat JSON object per line (see
//! reference/clb-access-log-fields.md), read by a small bounded scanner that borrows values.
//!
//! Values are kept raw: a string's bytes between its quotes (escapes left as written, which is
//! all a count or a top-K list needs), a number's text. Nested objects and arrays are skipped.

use super::format::{lossy, status_of};
use super::record::{Dialect, Record};
use super::LineError;

/// How deep a skipped nested value may go before the line is called bad.
const MAX_DEPTH: usize = 32;

/// Parse one line of the export. `fast`: stop as soon as a status below 400 is seen.
pub fn parse(line: &[u8], fast: bool) -> Result<Record<'_>, LineError> {
    let mut rec = Record {
        dialect: Dialect::Export,
        ..Record::new()
    };
    let mut status_seen = false;
    let mut stop = false;
    walk(line, |key, value| {
        match key {
            b"status" => {
                rec.status = status_of(value).ok_or_else(|| {
                    LineError::new(
                        0,
                        format!("\"status\" is {:?}, not a status code", lossy(value)),
                    )
                })?;
                status_seen = true;
                if fast && rec.status < 400 {
                    stop = true;
                }
            }
            b"upstream_status" => rec.upstream_status = Some(value),
            b"request_time" => rec.request_time = Some(value),
            b"upstream_response_time" => rec.upstream_response_time = Some(value),
            b"upstream_connect_time" => rec.upstream_connect_time = Some(value),
            b"upstream_header_time" => rec.upstream_header_time = Some(value),
            b"request" => rec.request = Some(value),
            b"request_method" => rec.method = Some(value),
            b"request_uri" => rec.uri = Some(value),
            b"client_ip" | b"remote_addr" => rec.client = Some(value),
            b"time" => rec.time = Some(value),
            b"body_bytes_sent" => rec.bytes_sent = Some(value),
            b"request_length" => rec.request_length = Some(value),
            b"tcpinfo_rtt" => rec.tcpinfo_rtt = Some(value),
            b"upstream_addr" => rec.upstream_addr = Some(value),
            b"upstream_bytes_received" => rec.upstream_bytes_received = Some(value),
            b"scheme" => rec.scheme = Some(value),
            b"ssl_protocol" => rec.ssl_protocol = Some(value),
            _ => {}
        }
        Ok(!stop)
    })?;
    if !status_seen {
        return Err(LineError::new(0, "no \"status\" field".into()));
    }
    Ok(rec)
}

/// Every key with its raw value, for `--explain-line`.
pub fn fields(line: &[u8]) -> Result<Vec<(String, &[u8])>, LineError> {
    let mut out = Vec::new();
    walk(line, |key, value| {
        out.push((lossy(key), value));
        Ok(true)
    })?;
    Ok(out)
}

/// Visit the top-level members of the object; the visitor returns `false` to stop early.
fn walk<'a>(
    line: &'a [u8],
    mut visit: impl FnMut(&'a [u8], &'a [u8]) -> Result<bool, LineError>,
) -> Result<(), LineError> {
    let mut p = Scanner { s: line, i: 0 };
    p.ws();
    p.expect(b'{')?;
    p.ws();
    if p.peek() == Some(b'}') {
        p.i += 1;
        return p.end();
    }
    loop {
        p.ws();
        let key = p.string()?;
        p.ws();
        p.expect(b':')?;
        p.ws();
        let at = p.i;
        let value = p.value(0)?;
        if !visit(key, value).map_err(|mut e| {
            e.column = at;
            e
        })? {
            return Ok(());
        }
        p.ws();
        match p.next() {
            Some(b',') => continue,
            Some(b'}') => return p.end(),
            _ => return Err(p.error("expected , or } after a value")),
        }
    }
}

struct Scanner<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> Scanner<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.i += 1;
        Some(b)
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\r')) {
            self.i += 1;
        }
    }

    fn error(&self, what: &str) -> LineError {
        LineError::new(self.i, format!("not a JSON object: {what}"))
    }

    fn expect(&mut self, b: u8) -> Result<(), LineError> {
        if self.next() == Some(b) {
            Ok(())
        } else {
            Err(self.error(&format!("expected {:?}", b as char)))
        }
    }

    fn end(&mut self) -> Result<(), LineError> {
        self.ws();
        if self.i == self.s.len() {
            Ok(())
        } else {
            Err(self.error("text after the object"))
        }
    }

    /// A string's raw bytes between its quotes.
    fn string(&mut self) -> Result<&'a [u8], LineError> {
        self.expect(b'"')?;
        let start = self.i;
        loop {
            let rest = &self.s[self.i..];
            let Some(at) = memchr::memchr2(b'"', b'\\', rest) else {
                self.i = self.s.len();
                return Err(self.error("unterminated string"));
            };
            self.i += at;
            if self.s[self.i] == b'\\' {
                // Skip the escaped byte; \uXXXX's hex digits are plain bytes.
                self.i += 2;
                if self.i > self.s.len() {
                    self.i = self.s.len();
                    return Err(self.error("unterminated string"));
                }
            } else {
                let v = &self.s[start..self.i];
                self.i += 1;
                return Ok(v);
            }
        }
    }

    fn value(&mut self, depth: usize) -> Result<&'a [u8], LineError> {
        if depth > MAX_DEPTH {
            return Err(self.error("nested too deep"));
        }
        match self.peek() {
            Some(b'"') => self.string(),
            Some(open @ (b'{' | b'[')) => {
                let start = self.i;
                self.i += 1;
                let close = if open == b'{' { b'}' } else { b']' };
                loop {
                    self.ws();
                    match self.peek() {
                        Some(c) if c == close => {
                            self.i += 1;
                            return Ok(&self.s[start..self.i]);
                        }
                        Some(b',' | b':') => self.i += 1,
                        Some(_) => {
                            self.value(depth + 1)?;
                        }
                        None => return Err(self.error("unterminated nested value")),
                    }
                }
            }
            Some(_) => {
                let start = self.i;
                while let Some(b) = self.peek() {
                    if matches!(
                        b,
                        b',' | b'}' | b']' | b':' | b' ' | b'\t' | b'\r' | b'"' | b'{' | b'['
                    ) {
                        break;
                    }
                    self.i += 1;
                }
                if self.i == start {
                    return Err(self.error("expected a value"));
                }
                let v = &self.s[start..self.i];
                Ok(if v == b"null" { b"" } else { v })
            }
            None => Err(self.error("expected a value")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn export_line() {
        let line = br#"{"__topic__":"slb_layer7_access_log","status":"504","upstream_status":"-","request_time":"5.001","upstream_response_time":5.0,"tcpinfo_rtt":"870","request_uri":"/a\"b","extra":{"x":[1,2,{"y":null}]}}"#;
        let r = parse(line, false).unwrap();
        assert_eq!(r.status, 504);
        assert_eq!(r.upstream_status, Some(&b"-"[..]));
        assert_eq!(r.upstream_response_time, Some(&b"5.0"[..]));
        assert_eq!(r.uri, Some(&br#"/a\"b"#[..]));
        assert_eq!(fields(line).unwrap().len(), 8);
    }

    #[test]
    fn not_json_is_a_bad_line() {
        for bad in [
            &b"GET / 200"[..],
            b"{",
            b"{\"status\":",
            b"{\"status\":\"200\"} x",
            b"{}",
        ] {
            assert!(parse(bad, false).is_err(), "{:?}", lossy(bad));
        }
    }
}
