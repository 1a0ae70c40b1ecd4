//! Where a run's marker goes in a request: the `X-Lbprobe-Id` header (see
//! [`super::mask::insert_marker`]) or, for a listener whose access log has no field for request
//! headers but logs the request line (nginx's `combined`, HAProxy's `httplog`, the load
//! balancer's JSON export with `request_uri`), the query string: `?lbprobe-id=<run>-<n>`.
//! Works on bytes; a request whose request line is not a plain `METHOD /path HTTP/x.y` keeps
//! its bytes, since the marker would change what the probe tests.

use serde::{Deserialize, Serialize};

use super::mask::{insert_marker, insert_marker_in_cut};

/// The query parameter that carries the marker.
pub const MARKER_QUERY_KEY: &str = "lbprobe-id";

/// Where a run's requests carry the marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MarkerPlace {
    /// `X-Lbprobe-Id: <run>-<n>`, the last header line.
    #[default]
    Header,
    /// `lbprobe-id=<run>-<n>`, the last query parameter of the request target.
    Query,
}

impl MarkerPlace {
    /// How the marker reads in a request, for notes: `X-Lbprobe-Id: RUN-<n>`.
    pub fn shown(self, run: &str) -> String {
        match self {
            MarkerPlace::Header => format!("`{}: {run}-<n>`", super::mask::MARKER_HEADER),
            MarkerPlace::Query => format!("`{MARKER_QUERY_KEY}={run}-<n>` in the query string"),
        }
    }
}

/// The request marked with `value` in `place`; `None` when it cannot carry the marker there.
/// `cut`: the request is cut off on purpose (the partial probes): a header goes right after its
/// request line (see [`insert_marker_in_cut`]); the query string needs only a whole request
/// line either way.
pub fn mark(bytes: &[u8], value: &str, place: MarkerPlace, cut: bool) -> Option<Vec<u8>> {
    match place {
        MarkerPlace::Header if cut => insert_marker_in_cut(bytes, value),
        MarkerPlace::Header => {
            let out = insert_marker(bytes, value);
            (out.len() != bytes.len()).then_some(out)
        }
        // A partial probe marks its request where it is cut and may hand the result on to a
        // send that marks whole requests: one marker per request.
        MarkerPlace::Query if find_query_marker(bytes).is_some() => None,
        MarkerPlace::Query => insert_query_marker(bytes, value),
    }
}

/// `lbprobe-id=VALUE` appended to the request target's query (`?` or `&`), only where the first
/// line is exactly `METHOD SP /origin-form SP HTTP/…` ending in LF: an absolute-form, `*` or
/// malformed request line is what its probe tests, and a marker in it would test something else.
pub fn insert_query_marker(bytes: &[u8], value: &str) -> Option<Vec<u8>> {
    let lf = memchr::memchr(b'\n', bytes)?;
    let line = bytes[..lf].strip_suffix(b"\r").unwrap_or(&bytes[..lf]);
    let mut parts = line.split(|&b| b == b' ');
    let (method, target, version) = (parts.next()?, parts.next()?, parts.next()?);
    let plain = parts.next().is_none()
        && !method.is_empty()
        && method.iter().all(u8::is_ascii_uppercase)
        && target.first() == Some(&b'/')
        && target.iter().all(|&b| b.is_ascii_graphic() && b != b'#')
        && version.starts_with(b"HTTP/");
    if !plain {
        return None;
    }
    let at = method.len() + 1 + target.len();
    let joint = if target.contains(&b'?') { '&' } else { '?' };
    let mut out = Vec::with_capacity(bytes.len() + MARKER_QUERY_KEY.len() + value.len() + 2);
    out.extend_from_slice(&bytes[..at]);
    out.extend_from_slice(format!("{joint}{MARKER_QUERY_KEY}={value}").as_bytes());
    out.extend_from_slice(&bytes[at..]);
    Some(out)
}

/// The marker in a request line's query (`lbprobe-id=VALUE`), within the first line.
pub fn find_query_marker(bytes: &[u8]) -> Option<String> {
    let line = &bytes[..memchr::memchr(b'\n', bytes).unwrap_or(bytes.len())];
    let key = format!("{MARKER_QUERY_KEY}=");
    memchr::memmem::find_iter(line, key.as_bytes())
        .filter(|&at| at > 0 && matches!(line[at - 1], b'?' | b'&'))
        .find_map(|at| {
            let value = &line[at + key.len()..];
            let end = value
                .iter()
                .position(|&b| !(b.is_ascii_alphanumeric() || b == b'-'))
                .unwrap_or(value.len());
            let value = std::str::from_utf8(&value[..end]).ok()?;
            (!value.is_empty() && value.len() <= 64).then(|| value.to_string())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_marker_goes_at_the_end_of_a_plain_target_only() {
        let cases: [(&[u8], Option<&[u8]>); 7] = [
            (
                b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n",
                Some(b"GET /a?lbprobe-id=ab-1 HTTP/1.1\r\nHost: x\r\n\r\n"),
            ),
            (
                b"POST /a?b=1 HTTP/1.1\nHost: x\n\n",
                Some(b"POST /a?b=1&lbprobe-id=ab-1 HTTP/1.1\nHost: x\n\n"),
            ),
            // A cut request with a whole request line is marked too.
            (
                b"GET / HTTP/1.1\r\nHost: x\r\nUser-Ag",
                Some(b"GET /?lbprobe-id=ab-1 HTTP/1.1\r\nHost: x\r\nUser-Ag"),
            ),
            (b"GET http://x/ HTTP/1.1\r\n\r\n", None),
            (b"OPTIONS * HTTP/1.1\r\n\r\n", None),
            (b"GET  / HTTP/1.1\r\n\r\n", None),
            (b"GET / HTTP/1.1", None),
        ];
        for (request, expected) in cases {
            assert_eq!(
                insert_query_marker(request, "ab-1").as_deref(),
                expected,
                "{}",
                String::from_utf8_lossy(request)
            );
        }
        assert_eq!(insert_query_marker(b"\x16\x03\x01\n", "ab-1"), None);
    }

    #[test]
    fn a_query_marker_is_found_as_a_whole_parameter() {
        assert_eq!(
            find_query_marker(b"GET /a?b=1&lbprobe-id=ab-12 HTTP/1.1\r\n").as_deref(),
            Some("ab-12")
        );
        assert_eq!(
            find_query_marker(b"GET /a?xlbprobe-id=ab-1 HTTP/1.1\r\n"),
            None
        );
        assert_eq!(
            find_query_marker(b"GET / HTTP/1.1\r\nReferer: /?lbprobe-id=ab-1\r\n"),
            None
        );
    }

    #[test]
    fn mark_puts_the_marker_where_the_place_says() {
        let req = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        let header = mark(req, "ab-1", MarkerPlace::Header, false).unwrap();
        assert!(header.ends_with(b"X-Lbprobe-Id: ab-1\r\n\r\n"));
        let query = mark(req, "ab-1", MarkerPlace::Query, false).unwrap();
        assert!(query.starts_with(b"GET /?lbprobe-id=ab-1 HTTP/1.1\r\n"));
        // A head that never ends takes no header but a query marker.
        let cut = b"GET / HTTP/1.1\nHost";
        assert_eq!(mark(cut, "ab-1", MarkerPlace::Header, false), None);
        let once = mark(cut, "ab-1", MarkerPlace::Query, true).unwrap();
        assert_eq!(mark(&once, "ab-2", MarkerPlace::Query, false), None);
    }
}
