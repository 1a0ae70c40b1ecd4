//! Any request a run sends or plans to send (a probe's, a replay's), as a curl command a person
//! can paste into a shell or a ticket, or why curl cannot send those exact bytes. A wrong
//! command is worse than none: only bytes that come back identical from the request reader
//! ([`super::raw`]) and that [`super::curl::to_curl`] can express get one.

use serde::{Deserialize, Serialize};

use crate::transport::{Endpoint, IpFamily, Wire};

use super::curl::{quote, to_curl, Defaults};

/// Above this a shell command line is not the way to send a request: Linux caps one argument
/// at 128 KiB, and a report that repeats a 1 MB URI as a command doubles its size for nothing.
pub const MAX_CURL_BYTES: usize = 64 * 1024;

/// A request as curl, in every output that shows a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AsCurl {
    /// A curl command that sends the same bytes (secrets stay masked as `***`: put them back
    /// to run it).
    Command(String),
    /// Why curl cannot send these exact bytes.
    Cannot(String),
}

/// The curl command that sends `masked` (a request's bytes, secrets already masked) the way the
/// run sent it to `endpoint`: over TLS or not whatever the URL's scheme, to the address the run
/// connected to, trusting and presenting what the run did.
pub fn curl_for(masked: &[u8], endpoint: &Endpoint) -> AsCurl {
    if masked.len() > MAX_CURL_BYTES {
        return AsCurl::Cannot(format!(
            "the request is {} bytes, above the {} KiB a command line is fit for: send the bytes with nc or openssl s_client",
            masked.len(),
            MAX_CURL_BYTES / 1024
        ));
    }
    if masked.is_empty() {
        return AsCurl::Cannot(
            "the probe opens a connection and sends no byte; curl always sends a request".into(),
        );
    }
    let Ok(parsed) = super::raw::parse(masked) else {
        return AsCurl::Cannot(
            "the bytes are not one whole HTTP/1.1 request (a partial or framing probe); curl always completes a request"
                .into(),
        );
    };
    if parsed.request.to_bytes() != masked {
        return AsCurl::Cannot(
            "curl writes a request in one regular shape and these bytes differ from it (line ends, spacing or framing)"
                .into(),
        );
    }
    let (scheme, default_port, url_host) = match &endpoint.wire {
        // The URL's host is what curl presents as the TLS server name.
        Wire::Tls { server_name, .. } => ("https", 443, server_name.clone()),
        Wire::Plain => (
            "http",
            80,
            host_of(&parsed.request).unwrap_or(endpoint.host.clone()),
        ),
    };
    let bracketed = |h: &str| {
        if h.contains(':') {
            format!("[{h}]")
        } else {
            h.to_string()
        }
    };
    let base = if endpoint.port == default_port {
        format!("{scheme}://{}", bracketed(&url_host))
    } else {
        format!("{scheme}://{}:{}", bracketed(&url_host), endpoint.port)
    };
    match to_curl(&parsed.request, &base, &Defaults::default()) {
        Ok(line) => AsCurl::Command(with_connection(&line, endpoint, &url_host)),
        Err(why) => AsCurl::Cannot(why),
    }
}

/// The host of the request's one Host header (without its port), when it names one curl can
/// put in a URL: the plain-HTTP URL then reads as the request did.
fn host_of(req: &super::Request) -> Option<String> {
    let mut hosts = req.headers.iter().filter(|h| h.is("host"));
    let value = std::str::from_utf8(&hosts.next()?.value).ok()?;
    if hosts.next().is_some() {
        return None;
    }
    let host = match value.strip_prefix('[') {
        Some(v6) => v6.split_once(']')?.0,
        None => value.rsplit_once(':').map_or(value, |(h, _)| h),
    };
    let fits = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':'));
    fits.then(|| host.to_string())
}

/// `line` (which starts with `curl `) with the options that make curl connect where the run
/// connected and check what the run checked.
fn with_connection(line: &str, endpoint: &Endpoint, url_host: &str) -> String {
    let mut opts: Vec<String> = Vec::new();
    match endpoint.family {
        Some(IpFamily::V4) => opts.push("-4".into()),
        Some(IpFamily::V6) => opts.push("-6".into()),
        None => {}
    }
    if endpoint.host != url_host {
        let host = if endpoint.host.contains(':') {
            format!("[{}]", endpoint.host)
        } else {
            endpoint.host.clone()
        };
        opts.push("--connect-to".into());
        opts.push(quote(&format!(
            "{url_host}:{port}:{host}:{port}",
            port = endpoint.port
        )));
    }
    if let Wire::Tls { tls, .. } = &endpoint.wire {
        if !tls.verify {
            opts.push("-k".into());
        }
        let path = |p: &std::path::Path| quote(&p.display().to_string());
        if let Some(ca) = &tls.ca_file {
            opts.push("--cacert".into());
            opts.push(path(ca));
        }
        if let Some(cert) = &tls.client_cert {
            opts.push("--cert".into());
            opts.push(path(cert));
        }
        if let Some(key) = &tls.client_key {
            opts.push("--key".into());
            opts.push(path(key));
        }
    }
    match line.strip_prefix("curl ") {
        Some(rest) if !opts.is_empty() => format!("curl {} {rest}", opts.join(" ")),
        _ => line.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::tls::TlsSettings;

    fn plain(host: &str, port: u16) -> Endpoint {
        Endpoint {
            host: host.into(),
            port,
            wire: Wire::Plain,
            family: None,
        }
    }

    #[test]
    fn a_plain_request_gets_the_command_curl_sends_it_with() {
        let got = curl_for(
            b"TRACE /a HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n",
            &plain("127.0.0.1", 8080),
        );
        assert_eq!(
            got,
            AsCurl::Command(
                "curl http://127.0.0.1:8080/a -X TRACE -H User-Agent: -H Accept:".into()
            )
        );
    }

    #[test]
    fn bytes_curl_would_write_otherwise_get_the_reason() {
        let e = plain("127.0.0.1", 8080);
        // Bare LF line ends, a partial head, a space before the colon.
        for bytes in [
            &b"GET / HTTP/1.1\nHost: 127.0.0.1:8080\n\n"[..],
            b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n",
            b"GET / HTTP/1.1\r\nHost : 127.0.0.1:8080\r\n\r\n",
        ] {
            assert!(
                matches!(curl_for(bytes, &e), AsCurl::Cannot(_)),
                "{}",
                String::from_utf8_lossy(bytes)
            );
        }
        let big = format!(
            "GET /{} HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n",
            "a".repeat(MAX_CURL_BYTES)
        );
        assert!(matches!(curl_for(big.as_bytes(), &e), AsCurl::Cannot(w) if w.contains("KiB")));
    }

    #[test]
    fn the_command_connects_and_trusts_as_the_run_did() {
        // TLS to a name the run reached at another address, certificate not checked.
        let e = Endpoint {
            host: "127.0.0.1".into(),
            port: 8443,
            wire: Wire::Tls {
                server_name: "lb.example.test".into(),
                tls: TlsSettings::insecure(),
            },
            family: None,
        };
        let got = curl_for(b"GET / HTTP/1.1\r\nHost: lb.example.test\r\n\r\n", &e);
        let AsCurl::Command(line) = got else {
            panic!("no command: {got:?}")
        };
        assert_eq!(
            line,
            "curl --connect-to lb.example.test:8443:127.0.0.1:8443 -k https://lb.example.test:8443/ -H Host: lb.example.test -H User-Agent: -H Accept:"
                .replace("Host: lb.example.test", "'Host: lb.example.test'")
        );
        // Plain HTTP to a TLS port (the cross-protocol probe): http:// whatever the target's scheme.
        let got = curl_for(
            b"GET / HTTP/1.1\r\nHost: lb.example.test\r\n\r\n",
            &plain("127.0.0.1", 443),
        );
        assert!(
            matches!(&got, AsCurl::Command(l) if l.starts_with("curl --connect-to lb.example.test:443:127.0.0.1:443 http://lb.example.test:443/")),
            "{got:?}"
        );
    }
}
