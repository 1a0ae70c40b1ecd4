//! What does a port speak? Plain HTTP, TLS, or nothing.

use serde::{Deserialize, Serialize};

use rustls::ProtocolVersion;

use super::exchange::{connect_measured, exchange, tls_handshake};
use super::response::parse_response;
use super::{escape_bytes, tls, Bounds, ConnEnd, Endpoint, IpFamily};

/// The verdict of a protocol sniff on one port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "speaks", rename_all = "kebab-case")]
pub enum Sniff {
    /// A TLS handshake got a ServerHello. The handshake accepts any certificate (it only asks
    /// what the port speaks, and nothing is sent over it); `certificate` is the presented chain
    /// checked against the user's trust settings, `None` when the handshake did not get as far
    /// as a certificate.
    Tls {
        version: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        certificate: Option<tls::CertCheck>,
    },
    /// A plain HTTP request got an HTTP status line back.
    PlainHttp { status: u16 },
    /// Connected, but neither TLS nor HTTP came back; `detail` says what did.
    Neither { detail: String },
    /// Could not connect at all.
    Unreachable { end: ConnEnd },
}

/// Find out what `host:port` speaks. Tries TLS first (a plain-HTTP server answers a
/// ClientHello with a 400 or a close, which is cheap), then plain HTTP.
///
/// TLS is tried without certificate verification and with `server_name` as SNI (an IP literal
/// sends none); the certificate is then checked against the web PKI's roots. Each attempt is
/// bounded by `bounds` like an exchange.
pub async fn sniff(host: &str, port: u16, server_name: &str, bounds: &Bounds) -> Sniff {
    let authority = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let trust = tls::TlsSettings::verified();
    sniff_over(host, port, None, server_name, &authority, &trust, bounds).await
}

/// [`sniff`] of `host:port` (over one address family only when `family` is given), naming
/// `authority` in the plain GET's Host header: the URL's, when `--connect-to` points elsewhere.
/// A presented certificate is checked against `trust` (the target's CA file or the web PKI;
/// not at all when verification is off).
pub async fn sniff_over(
    host: &str,
    port: u16,
    family: Option<IpFamily>,
    server_name: &str,
    authority: &str,
    trust: &tls::TlsSettings,
    bounds: &Bounds,
) -> Sniff {
    let tcp = match connect_measured(host, port, family, bounds).await.0 {
        Ok(tcp) => tcp,
        Err(end) => return Sniff::Unreachable { end },
    };
    let deadline = tokio::time::Instant::now() + bounds.total_timeout;
    // What a failed handshake got back, in case the plain attempt gets nothing at all.
    // Without a usable name, the host itself (an IP literal or a DNS name) is the best guess.
    let server_name = if tls::server_name(server_name).is_some() {
        server_name
    } else {
        host
    };
    let request = format!("GET / HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n");
    let endpoint = Endpoint {
        family,
        ..Endpoint::plain(host, port)
    };
    // Both attempts at once: a port that answers neither would otherwise cost two timeouts
    // in a row, and a silent backend is the verdict that must come fastest.
    let insecure = tls::TlsSettings::insecure();
    let (handshake, ex) = tokio::join!(
        tls_handshake(tcp, server_name, &insecure, deadline),
        exchange(&endpoint, request.as_bytes(), bounds)
    );
    let tls_answer = match handshake {
        Ok(stream) => {
            let conn = stream.get_ref().1;
            let version = conn.protocol_version().map(version_name);
            let chain = conn.peer_certificates().unwrap_or(&[]);
            let certificate = Some(tls::check_certificate(chain, server_name, trust));
            return Sniff::Tls {
                version,
                certificate,
            };
        }
        Err(failure) if failure.peer_spoke_tls() => {
            // A ServerHello or an alert is TLS even when we could not agree on the rest.
            return Sniff::Tls {
                version: server_hello_version(&failure.seen),
                certificate: None,
            };
        }
        Err(failure) => failure.seen,
    };

    if let Some(response) = &ex.response {
        return Sniff::PlainHttp {
            status: response.status,
        };
    }
    if ex.end.never_connected() {
        return Sniff::Unreachable { end: ex.end };
    }
    // An HTTP answer to the ClientHello says plain HTTP even when the plain request's answer
    // only began (a server that drips its answers still refuses a ClientHello at once).
    if let Some(response) = parse_response(&tls_answer, false, &bounds.parse) {
        return Sniff::PlainHttp {
            status: response.status,
        };
    }
    if ex.bytes_in > 0 {
        return Sniff::Neither {
            detail: format!(
                "answered a plain HTTP request with {}",
                ex.raw_prefix.escaped()
            ),
        };
    }
    if !tls_answer.is_empty() {
        return Sniff::Neither {
            detail: format!(
                "answered a TLS ClientHello with {}",
                escape_bytes(&tls_answer[..tls_answer.len().min(512)])
            ),
        };
    }
    Sniff::Neither {
        detail: format!("no answer ({})", ex.end),
    }
}

fn version_name(v: ProtocolVersion) -> String {
    match v {
        ProtocolVersion::TLSv1_3 => "TLSv1.3".into(),
        ProtocolVersion::TLSv1_2 => "TLSv1.2".into(),
        ProtocolVersion::TLSv1_1 => "TLSv1.1".into(),
        ProtocolVersion::TLSv1_0 => "TLSv1.0".into(),
        ProtocolVersion::SSLv3 => "SSLv3".into(),
        other => format!("TLS version {:#06x}", u16::from(other)),
    }
}

/// The version a ServerHello record chose, when `bytes` start with one: its legacy version field,
/// or TLS 1.3 when a supported_versions extension says so. `None` for alerts and anything else.
fn server_hello_version(bytes: &[u8]) -> Option<String> {
    // Record header (5) + handshake type 2 + length (3) + legacy version (2) + random (32).
    let hello = bytes.get(5..)?;
    if bytes.first() != Some(&0x16) || hello.first() != Some(&0x02) {
        return None;
    }
    let legacy = u16::from_be_bytes([*hello.get(4)?, *hello.get(5)?]);
    let mut pos = 6 + 32;
    let session_id_len = usize::from(*hello.get(pos)?);
    pos += 1 + session_id_len + 2 + 1; // session id, cipher suite, compression
    let ext_len = usize::from(u16::from_be_bytes([*hello.get(pos)?, *hello.get(pos + 1)?]));
    pos += 2;
    let exts = hello.get(pos..pos + ext_len).unwrap_or(&[]);
    let mut i = 0;
    let mut chosen = legacy;
    while i + 4 <= exts.len() {
        let kind = u16::from_be_bytes([exts[i], exts[i + 1]]);
        let len = usize::from(u16::from_be_bytes([exts[i + 2], exts[i + 3]]));
        // supported_versions (43) in a ServerHello holds the one selected version.
        if kind == 43 && len == 2 {
            if let Some(v) = exts.get(i + 4..i + 6) {
                chosen = u16::from_be_bytes([v[0], v[1]]);
            }
        }
        i += 4 + len;
    }
    Some(version_name(ProtocolVersion::from(chosen)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_hello_versions() {
        let mut hello = vec![
            0x16, 0x03, 0x03, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x03, 0x03,
        ];
        hello.extend_from_slice(&[0u8; 32]); // random
        hello.push(0); // empty session id
        hello.extend_from_slice(&[0x13, 0x01, 0x00]); // suite, compression
        let tls12 = {
            let mut h = hello.clone();
            h.extend_from_slice(&[0x00, 0x00]);
            h
        };
        assert_eq!(server_hello_version(&tls12).as_deref(), Some("TLSv1.2"));
        let mut tls13 = hello;
        tls13.extend_from_slice(&[0x00, 0x06, 0x00, 0x2b, 0x00, 0x02, 0x03, 0x04]);
        assert_eq!(server_hello_version(&tls13).as_deref(), Some("TLSv1.3"));
        assert_eq!(server_hello_version(b"\x15\x03\x03\x00\x02\x02\x28"), None);
        assert_eq!(server_hello_version(b"\x16\x03"), None);
    }
}
