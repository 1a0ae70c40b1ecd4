//! Well-formed HTTP/1.1 requests, built byte for byte.

use super::context::Side;

pub const USER_AGENT: &str = concat!("lbprobe/", env!("CARGO_PKG_VERSION"));

/// A valid request for `side`, with its extra headers, `headers` and an optional body.
pub fn build(
    method: &str,
    side: &Side,
    headers: &[(&str, String)],
    body: Option<&[u8]>,
) -> Vec<u8> {
    build_for(
        method,
        &side.target.path,
        &side.target.host_header(),
        &side.extra_lines(),
        headers,
        body,
    )
}

pub fn build_for(
    method: &str,
    target: &str,
    host: &str,
    extra_lines: &str,
    headers: &[(&str, String)],
    body: Option<&[u8]>,
) -> Vec<u8> {
    let mut out = format!(
        "{method} {target} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {USER_AGENT}\r\nAccept: */*\r\n{extra_lines}"
    );
    for (name, value) in headers {
        out.push_str(name);
        out.push_str(": ");
        out.push_str(value);
        out.push_str("\r\n");
    }
    if let Some(body) = body {
        out.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    out.push_str("Connection: close\r\n\r\n");
    let mut bytes = out.into_bytes();
    if let Some(body) = body {
        bytes.extend_from_slice(body);
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_exact_bytes() {
        let b = build_for(
            "POST",
            "/p",
            "h:1",
            "X-A: 1\r\n",
            &[("Content-Type", "text/plain".into())],
            Some(b"hi"),
        );
        let want = format!(
            "POST /p HTTP/1.1\r\nHost: h:1\r\nUser-Agent: {USER_AGENT}\r\nAccept: */*\r\nX-A: 1\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi"
        );
        assert_eq!(b, want.into_bytes());
    }
}
