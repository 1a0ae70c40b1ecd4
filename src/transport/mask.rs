//! What the transport does to bytes besides carrying them: secrets out of every record (the
//! values of masked headers, in the requests we send and the answers we get, and those values
//! wherever they come back: an echo server puts a request's `Authorization` in its body), and
//! the run's marker header into the requests that carry it. Works on bytes, before anything is
//! sent or stored.

use crate::target::Target;

use super::Exchange;

/// Headers whose values never appear in a report.
pub const ALWAYS_MASKED: &[&str] = &[
    "Authorization",
    "Proxy-Authorization",
    "Cookie",
    "Set-Cookie",
];

/// What replaces a secret.
const HIDDEN: &[u8] = b"***";

/// Shorter values are masked only as header values: hiding every `1` of a body would destroy
/// the evidence and protect nothing.
const MIN_SECRET_BYTES: usize = 4;

/// The run's masking: header names (besides [`ALWAYS_MASKED`]) and the secret values the run
/// itself sends (its targets' masked headers).
#[derive(Debug, Clone, Default)]
pub struct Mask {
    names: Vec<String>,
    /// Longest first, so a value that contains another is hidden whole.
    secrets: Vec<Vec<u8>>,
}

impl Mask {
    /// Masking for `names` (besides the defaults) and the masked headers of `targets`.
    pub fn new<'a>(names: &[String], targets: impl IntoIterator<Item = &'a Target>) -> Mask {
        let mut mask = Mask {
            names: names.to_vec(),
            secrets: Vec::new(),
        };
        let mut secrets: Vec<Vec<u8>> = Vec::new();
        for target in targets {
            for (name, value) in &target.headers {
                if mask.is_masked(name) {
                    secrets.extend(parts(value));
                }
            }
        }
        secrets.retain(|s| s.len() >= MIN_SECRET_BYTES);
        secrets.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        secrets.dedup();
        mask.secrets = secrets;
        mask
    }

    /// Also hide the secret parts of these header values wherever they come back (a replayed
    /// request's own `Authorization` and cookies, which no target carries).
    pub fn learn<'a>(&mut self, headers: impl IntoIterator<Item = (&'a str, &'a str)>) {
        for (name, value) in headers {
            if self.is_masked(name) {
                self.secrets.extend(parts(value));
            }
        }
        self.secrets.retain(|s| s.len() >= MIN_SECRET_BYTES);
        self.secrets
            .sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        self.secrets.dedup();
    }

    /// Whether a header of this name has its value masked.
    pub fn is_masked(&self, name: &str) -> bool {
        is_masked(name, &self.names)
    }

    /// The bytes with masked header values replaced and every known secret hidden.
    pub fn bytes(&self, bytes: &[u8]) -> Vec<u8> {
        self.hide(&mask_headers(bytes, &self.names))
    }

    /// Known secret values hidden wherever they occur.
    pub fn hide(&self, bytes: &[u8]) -> Vec<u8> {
        let mut out = bytes.to_vec();
        for secret in &self.secrets {
            if memchr::memmem::find(&out, secret).is_none() {
                continue;
            }
            let mut replaced = Vec::with_capacity(out.len());
            let mut rest = out.as_slice();
            while let Some(at) = memchr::memmem::find(rest, secret) {
                replaced.extend_from_slice(&rest[..at]);
                replaced.extend_from_slice(HIDDEN);
                rest = &rest[at + secret.len()..];
            }
            replaced.extend_from_slice(rest);
            out = replaced;
        }
        out
    }

    /// Everything an exchange kept of the answer: the raw prefix (a head with `Set-Cookie`,
    /// an echoed request), the parsed headers and the body prefix.
    pub fn exchange(&self, exchange: &mut Exchange) {
        if !exchange.raw_prefix.is_empty() {
            exchange.raw_prefix = self.bytes(exchange.raw_prefix.as_bytes()).into();
        }
        if let Some(resp) = exchange.response.as_mut() {
            for (name, value) in resp.headers.iter_mut() {
                if self.is_masked(name) {
                    *value = "***".into();
                } else if !self.secrets.is_empty() {
                    *value = String::from_utf8_lossy(&self.hide(value.as_bytes())).into_owned();
                }
            }
            if !resp.body_prefix.is_empty() {
                resp.body_prefix = self.hide(resp.body_prefix.as_bytes()).into();
            }
        }
    }
}

/// A header value and the parts of it that are secrets on their own: the credentials after an
/// `Authorization` scheme, each cookie's value.
fn parts(value: &str) -> Vec<Vec<u8>> {
    let mut out = vec![value.trim().as_bytes().to_vec()];
    if let Some((_, credentials)) = value.trim().split_once(' ') {
        out.push(credentials.trim().as_bytes().to_vec());
    }
    for pair in value.split(';') {
        if let Some((_, v)) = pair.split_once('=') {
            out.push(v.trim().as_bytes().to_vec());
        }
    }
    out
}

fn is_masked(name: &str, extra: &[String]) -> bool {
    ALWAYS_MASKED.iter().any(|m| name.eq_ignore_ascii_case(m))
        || extra.iter().any(|m| name.eq_ignore_ascii_case(m))
}

/// The target as reports show it: values of masked headers replaced by `***`.
pub fn masked_target(target: &Target, extra: &[String]) -> Target {
    let mut t = target.clone();
    for (name, value) in t.headers.iter_mut() {
        if is_masked(name, extra) {
            *value = "***".into();
        }
    }
    t
}

/// Replace the values of masked header lines with `***`, leaving every other byte as sent.
pub fn mask_headers(bytes: &[u8], extra: &[String]) -> Vec<u8> {
    let head_end = memchr::memmem::find(bytes, b"\r\n\r\n")
        .or_else(|| memchr::memmem::find(bytes, b"\n\n"))
        .unwrap_or(bytes.len());
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < head_end {
        let line_end = bytes[i..head_end]
            .iter()
            .position(|&b| b == b'\n')
            .map(|p| i + p + 1)
            .unwrap_or(head_end);
        let line = &bytes[i..line_end];
        match line.iter().position(|&b| b == b':') {
            Some(colon)
                if is_masked(
                    std::str::from_utf8(&line[..colon]).unwrap_or("").trim(),
                    extra,
                ) =>
            {
                out.extend_from_slice(&line[..=colon]);
                out.extend_from_slice(b" ***");
                let ending = if line.ends_with(b"\r\n") {
                    &b"\r\n"[..]
                } else if line.ends_with(b"\n") {
                    &b"\n"[..]
                } else {
                    &b""[..]
                };
                out.extend_from_slice(ending);
            }
            _ => out.extend_from_slice(line),
        }
        i = line_end;
    }
    out.extend_from_slice(&bytes[head_end..]);
    out
}

/// The marker header's name: `X-Lbprobe-Id: <run>-<n>` on every raw request of a run that
/// asks for it, so that a capture on the backend host can tell which probes reached it.
pub const MARKER_HEADER: &str = "X-Lbprobe-Id";

/// Insert `X-Lbprobe-Id: VALUE` as the last header line, just before the blank line that
/// ends the head, so that every malformed line of the template keeps its place: right after
/// the request line it would turn a whitespace line that must come first into the marker's
/// continuation, and before a leading CRLF it would stand in front of the request line. A
/// request whose head never ends (partial probes, CR-only line ends, HTTP/0.9) gets none: no
/// place is safe, and such a request is not forwarded whole anyway.
pub fn insert_marker(bytes: &[u8], value: &str) -> Vec<u8> {
    // Binary (a TLS ClientHello, garbage) is no HTTP head: a marker would only corrupt it.
    if bytes
        .first()
        .is_some_and(|b| !b.is_ascii_graphic() && !b.is_ascii_whitespace())
    {
        return bytes.to_vec();
    }
    let Some(lf) = head_end(bytes) else {
        return bytes.to_vec();
    };
    // The marker line ends like the line before it, so a bare-LF probe stays bare-LF.
    let eol = if lf > 0 && bytes[lf - 1] == b'\r' {
        "\r\n"
    } else {
        "\n"
    };
    let mut out = Vec::with_capacity(bytes.len() + 48);
    out.extend_from_slice(&bytes[..=lf]);
    out.extend_from_slice(format!("{MARKER_HEADER}: {value}{eol}").as_bytes());
    out.extend_from_slice(&bytes[lf + 1..]);
    out
}

/// A request cut off on purpose (its head never ends: the partial probes) marked right after
/// its request line, which ends in CRLF: the cut stays where it was, and a listener that logs
/// what it read of such a request logs the marker with it. `None` when the first line does not
/// end in CRLF or the head does end (those go through [`insert_marker`]).
pub fn insert_marker_in_cut(bytes: &[u8], value: &str) -> Option<Vec<u8>> {
    if head_end(bytes).is_some() || !bytes.first().is_some_and(u8::is_ascii_alphabetic) {
        return None;
    }
    let lf = memchr::memchr(b'\n', bytes)?;
    if lf == 0 || bytes[lf - 1] != b'\r' {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() + 48);
    out.extend_from_slice(&bytes[..=lf]);
    out.extend_from_slice(format!("{MARKER_HEADER}: {value}\r\n").as_bytes());
    out.extend_from_slice(&bytes[lf + 1..]);
    Some(out)
}

/// The LF that ends the head's last line: the first one followed by a blank line (LF or CRLF)
/// once a line with content (the request line) has been seen; leading blank or whitespace-only
/// lines are not the end of a head.
fn head_end(bytes: &[u8]) -> Option<usize> {
    let mut line_start = 0;
    let mut seen_content = false;
    for lf in memchr::memchr_iter(b'\n', bytes) {
        let line = &bytes[line_start..lf];
        seen_content |= line.iter().any(|b| !matches!(b, b' ' | b'\t' | b'\r'));
        let rest = &bytes[lf + 1..];
        if seen_content && (rest.starts_with(b"\n") || rest.starts_with(b"\r\n")) {
            return Some(lf);
        }
        line_start = lf + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::Role;

    #[test]
    fn a_cut_request_is_marked_after_its_request_line_only() {
        let cut = b"GET / HTTP/1.1\r\nHost: a\r\nUser-Ag";
        let marked = insert_marker_in_cut(cut, "ab-1").unwrap();
        assert_eq!(
            marked,
            b"GET / HTTP/1.1\r\nX-Lbprobe-Id: ab-1\r\nHost: a\r\nUser-Ag".to_vec()
        );
        assert_eq!(
            insert_marker_in_cut(b"GET / HTTP/1.1\r\n\r\n", "ab-1"),
            None
        );
        assert_eq!(
            insert_marker_in_cut(b"GET / HTTP/1.1\nHost: a\n", "ab-1"),
            None
        );
        assert_eq!(insert_marker_in_cut(b"\x16\x03\x01", "ab-1"), None);
    }

    #[test]
    fn masks_secret_headers_only() {
        let raw = b"GET / HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer xyz\r\ncookie: s=1\r\nX-Key: k\r\n\r\nbody Authorization: no";
        let masked = mask_headers(raw, &["x-key".to_string()]);
        assert_eq!(
            masked,
            b"GET / HTTP/1.1\r\nHost: a\r\nAuthorization: ***\r\ncookie: ***\r\nX-Key: ***\r\n\r\nbody Authorization: no".to_vec()
        );
        let lf = mask_headers(b"GET / HTTP/1.1\nCookie: a\n\n", &[]);
        assert_eq!(lf, b"GET / HTTP/1.1\nCookie: ***\n\n".to_vec());
    }

    #[test]
    fn secrets_the_run_sends_are_hidden_wherever_they_come_back() {
        let mut target = Target::parse(Role::Backend, "http://127.0.0.1:1/").unwrap();
        target.headers = vec![
            ("Authorization".into(), "Bearer tok-123456".into()),
            ("Cookie".into(), "sid=cookie-abcdef; theme=dk".into()),
            ("X-Api-Key".into(), "key-987654".into()),
            ("X-Plain".into(), "visible-value".into()),
        ];
        let mask = Mask::new(&["x-api-key".to_string()], [&target]);
        let echo = b"TRACE / HTTP/1.1\r\nAuthorization: Bearer tok-123456\r\nX-Api-Key: key-987654\r\nX-Plain: visible-value\r\n\r\n{\"sid\":\"cookie-abcdef\",\"tok\":\"tok-123456\",\"theme\":\"dk\"}";
        let shown = String::from_utf8(mask.bytes(echo)).unwrap();
        for secret in ["tok-123456", "cookie-abcdef", "key-987654"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert!(shown.contains("visible-value"), "{shown}");
        // Too short to hide outside a header line: `dk` stays.
        assert!(shown.contains("\"theme\":\"dk\""), "{shown}");

        let mut ex = Exchange {
            raw_prefix: crate::transport::WireBytes::from(b"HTTP/1.1 200 OK\r\nSet-Cookie: sid=server-secret\r\nX-Echo: key-987654\r\n\r\nBearer tok-123456"),
            ..Exchange::answered(
                "127.0.0.1:1",
                crate::transport::Response::complete(
                    200,
                    "OK",
                    &[("Set-Cookie", "sid=server-secret"), ("X-Echo", "key-987654")],
                    b"Bearer tok-123456",
                ),
            )
        };
        mask.exchange(&mut ex);
        let json = serde_json::to_string(&ex).unwrap();
        for secret in ["server-secret", "tok-123456", "key-987654"] {
            assert!(!json.contains(secret), "{secret} in {json}");
        }
    }
}
