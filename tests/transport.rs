//! Transport against real loopback servers: exact bytes out, hostile servers, TLS, sniffing.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use lbprobe::lab::{BackendConfig, Fault, FaultRule, LabBackend, LabCert};
use lbprobe::transport::progress::MinRate;
use lbprobe::transport::tls::{CertCheck, CertFault};
use lbprobe::transport::{
    exchange, sniff, Bounds, ConnEnd, Endpoint, Exchange, ParseLimits, Sniff, Wire,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio_rustls::TlsAcceptor;

/// Bounds short enough that a hostile server cannot stall the suite.
fn short_bounds() -> Bounds {
    Bounds {
        connect_timeout: Duration::from_secs(2),
        total_timeout: Duration::from_millis(300),
        ..Bounds::default()
    }
}

/// Bounds for servers expected to answer: generous, never what a test waits for.
fn bounds() -> Bounds {
    Bounds {
        connect_timeout: Duration::from_secs(5),
        total_timeout: Duration::from_secs(10),
        ..Bounds::default()
    }
}

fn plain(port: u16) -> Endpoint {
    Endpoint::plain("127.0.0.1", port)
}

fn tls(port: u16, verify: bool) -> Endpoint {
    Endpoint {
        host: "127.0.0.1".into(),
        port,
        wire: Wire::Tls {
            server_name: "localhost".into(),
            tls: lbprobe::transport::tls::TlsSettings::new(verify),
        },
        family: None,
    }
}

const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: test\r\n\r\n";
const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

/// Serve up to `max_conns` connections on a loopback port, each with `handler`.
async fn serve<F, Fut>(max_conns: usize, handler: F) -> u16
where
    F: Fn(TcpStream) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        for _ in 0..max_conns {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(handler(stream));
        }
    });
    port
}

/// Read until the end of a request head (or `want` bytes, EOF, 64 KiB, 5 s).
async fn read_request<S: AsyncRead + Unpin>(stream: &mut S, want: Option<usize>) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while got.len() < 64 * 1024 {
        let done = match want {
            Some(n) => got.len() >= n,
            None => lbprobe::bytes::contains(&got, b"\r\n\r\n"),
        };
        if done {
            break;
        }
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => got.extend_from_slice(&buf[..n]),
            _ => break,
        }
    }
    got
}

/// Close with an RST: linger 0 (non-blocking socket, so the drop does not block).
fn rst(s: TcpStream) {
    let _ = socket2::SockRef::from(&s).set_linger(Some(Duration::ZERO));
    drop(s);
}

fn assert_end(ex: &Exchange, end: ConnEnd) {
    assert_eq!(ex.end, end, "exchange: {ex:#?}");
}

#[tokio::test]
async fn request_bytes_reach_the_server_exactly() {
    let odd: &[u8] =
        b"get /a\x00b HTTP/1.1\nHost: x\r\nX-Fold: a\r\n folded\r\nX-Nul: \x00\r\n\r\n";
    let (tx, rx) = oneshot::channel();
    let tx = std::sync::Mutex::new(Some(tx));
    let port = serve(1, move |mut s| {
        let tx = tx.lock().unwrap().take();
        async move {
            let got = read_request(&mut s, Some(odd.len())).await;
            let _ = s.write_all(OK).await;
            if let Some(tx) = tx {
                let _ = tx.send(got);
            }
            // Hold the connection open: the client must stop on Content-Length, not on close.
            let _ = read_request(&mut s, Some(1)).await;
        }
    })
    .await;
    let ex = exchange(&plain(port), odd, &bounds()).await;
    assert_eq!(rx.await.unwrap(), odd);
    assert_end(&ex, ConnEnd::Complete);
    assert_eq!(ex.bytes_out, odd.len());
    assert_eq!(ex.status(), Some(200));
    assert_eq!(ex.bytes_in, OK.len());
    assert!(ex.timings.connect_ms.is_some() && ex.timings.first_byte_ms.is_some());
    assert_eq!(ex.endpoint, format!("127.0.0.1:{port}"));
    assert!(ex.raw_prefix.escaped().starts_with("HTTP/1.1 200 OK\\r\\n"));
    if cfg!(target_os = "linux") {
        assert_eq!(ex.tcp_retransmits, Some(0));
    }
}

#[tokio::test]
async fn head_response_completes_without_waiting_for_close() {
    let port = serve(1, |mut s| async move {
        read_request(&mut s, None).await;
        let _ = s
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n")
            .await;
        let _ = read_request(&mut s, Some(1)).await;
    })
    .await;
    let ex = exchange(
        &plain(port),
        b"HEAD / HTTP/1.1\r\nHost: t\r\n\r\n",
        &bounds(),
    )
    .await;
    assert_end(&ex, ConnEnd::Complete);
    let r = ex.response.unwrap();
    assert!(r.complete);
    assert_eq!(r.content_length, Some(5000));
}

#[tokio::test]
async fn close_delimited_body_ends_complete() {
    let port = serve(1, |mut s| async move {
        read_request(&mut s, None).await;
        let _ = s.write_all(b"HTTP/1.0 200 OK\r\n\r\nuntil close").await;
    })
    .await;
    let ex = exchange(&plain(port), GET, &bounds()).await;
    assert_end(&ex, ConnEnd::Complete);
    assert_eq!(ex.response.unwrap().body_prefix, "until close");
}

#[tokio::test]
async fn endless_headers_stop_at_the_size_bound() {
    let port = serve(1, |mut s| async move {
        read_request(&mut s, None).await;
        if s.write_all(b"HTTP/1.1 200 OK\r\n").await.is_err() {
            return;
        }
        // Until the client gives up (bounded anyway).
        for i in 0..1_000_000u32 {
            let line = format!("X-Endless-{i}: aaaaaaaaaaaaaaaa\r\n");
            if s.write_all(line.as_bytes()).await.is_err() {
                return;
            }
        }
    })
    .await;
    let b = Bounds {
        max_response_bytes: 64 * 1024,
        parse: ParseLimits {
            max_head_bytes: 8 * 1024,
            ..ParseLimits::default()
        },
        ..bounds()
    };
    let ex = exchange(&plain(port), GET, &b).await;
    assert_end(&ex, ConnEnd::SizeBound);
    assert_eq!(ex.bytes_in, 64 * 1024);
    let r = ex.response.unwrap();
    assert_eq!(r.status, 200);
    assert!(!r.complete);
    assert!(
        r.problems
            .iter()
            .any(|p| p.contains("head larger than 8192")),
        "{:?}",
        r.problems
    );
}

#[tokio::test]
async fn garbage_answer_is_kept_escaped() {
    let port = serve(1, |mut s| async move {
        read_request(&mut s, None).await;
        let _ = s.write_all(b"\x00\xffSSH-2.0-nope\r\n").await;
    })
    .await;
    let ex = exchange(&plain(port), GET, &bounds()).await;
    assert_end(&ex, ConnEnd::Fin);
    assert!(ex.response.is_none());
    assert_eq!(ex.raw_prefix.escaped(), "\\x00\\xffSSH-2.0-nope\\r\\n");
}

#[tokio::test]
async fn reset_keeps_bytes_received_before_it() {
    let port = serve(1, |mut s| async move {
        read_request(&mut s, None).await;
        let _ = s
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial")
            .await;
        rst(s);
    })
    .await;
    let ex = exchange(&plain(port), GET, &bounds()).await;
    assert_end(&ex, ConnEnd::Reset);
    assert!(ex.bytes_in > 0);
    let r = ex.response.unwrap();
    assert_eq!(r.status, 200);
    assert!(!r.complete);
}

#[tokio::test]
async fn immediate_reset() {
    let port = serve(1, |s| async move { rst(s) }).await;
    let ex = exchange(&plain(port), GET, &bounds()).await;
    // Whether the RST hits our write or our read, it is a reset.
    assert_end(&ex, ConnEnd::Reset);
    assert_eq!(ex.bytes_in, 0);
    assert!(ex.response.is_none());
}

#[tokio::test]
async fn silent_server_times_out() {
    let port = serve(1, |mut s| async move {
        // Read everything, answer nothing, until the client leaves.
        let _ = read_request(&mut s, Some(usize::MAX)).await;
    })
    .await;
    let ex = exchange(&plain(port), GET, &short_bounds()).await;
    assert_end(&ex, ConnEnd::Timeout);
    assert_eq!(ex.bytes_out, GET.len());
    assert!(ex.response.is_none());
    assert!(ex.timings.first_byte_ms.is_none());
}

#[tokio::test]
async fn closed_port_is_refused() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let ex = exchange(&plain(port), GET, &bounds()).await;
    assert_end(&ex, ConnEnd::ConnectRefused);
    assert!(ex.end.never_connected());
    assert_eq!(ex.bytes_out, 0);
    assert!(ex.timings.connect_ms.is_none());
}

#[tokio::test]
async fn close_mid_body_is_fin_and_incomplete() {
    let port = serve(1, |mut s| async move {
        read_request(&mut s, None).await;
        let _ = s
            .write_all(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 100\r\n\r\nonly part")
            .await;
        let _ = s.shutdown().await;
    })
    .await;
    let ex = exchange(&plain(port), GET, &bounds()).await;
    assert_end(&ex, ConnEnd::Fin);
    let r = ex.response.unwrap();
    assert_eq!(r.status, 502);
    assert!(!r.complete);
    assert_eq!(r.body_bytes, 9);
    assert!(r
        .problems
        .iter()
        .any(|p| p.contains("shorter than Content-Length")));
}

#[tokio::test]
async fn hostname_is_resolved() {
    let port = serve(1, |mut s| async move {
        read_request(&mut s, None).await;
        let _ = s.write_all(OK).await;
    })
    .await;
    let endpoint = Endpoint {
        host: "localhost".into(),
        ..plain(port)
    };
    // localhost may resolve to ::1 first, where nothing listens: the next address must be tried.
    let ex = exchange(&endpoint, GET, &bounds()).await;
    assert_end(&ex, ConnEnd::Complete);
    assert_eq!(ex.status(), Some(200));
}

// ---- TLS ----

fn tls_acceptor() -> TlsAcceptor {
    let cert =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let der: CertificateDer<'static> = cert.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(cert.key_pair.serialize_der()));
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![der], key)
    .unwrap();
    TlsAcceptor::from(Arc::new(config))
}

/// A TLS server answering every request with `OK`.
async fn tls_server(max_conns: usize) -> u16 {
    let acceptor = tls_acceptor();
    serve(max_conns, move |s| {
        let acceptor = acceptor.clone();
        async move {
            let accept = tokio::time::timeout(Duration::from_secs(5), acceptor.accept(s));
            let Ok(Ok(mut tls)) = accept.await else {
                return;
            };
            read_request(&mut tls, None).await;
            let _ = tls.write_all(OK).await;
            let _ = tls.flush().await;
            let _ = read_request(&mut tls, Some(1)).await;
        }
    })
    .await
}

/// A plain HTTP server: 200 to anything that looks like a request, 400 and close otherwise
/// (as nginx answers a TLS ClientHello).
async fn plain_http_server(max_conns: usize) -> u16 {
    serve(max_conns, |mut s| async move {
        let mut first = [0u8; 1];
        if s.peek(&mut first).await.ok() != Some(1) {
            return;
        }
        if first[0].is_ascii_uppercase() {
            read_request(&mut s, None).await;
            let _ = s.write_all(OK).await;
        } else {
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf).await;
            let _ = s
                .write_all(
                    b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                )
                .await;
        }
        let _ = s.shutdown().await;
    })
    .await
}

#[tokio::test]
async fn tls_without_verification_succeeds() {
    let port = tls_server(1).await;
    let ex = exchange(&tls(port, false), GET, &bounds()).await;
    assert_end(&ex, ConnEnd::Complete);
    assert!(ex.tls);
    assert!(ex.timings.tls_ms.is_some());
    assert_eq!(ex.status(), Some(200));
    assert_eq!(ex.endpoint, format!("127.0.0.1:{port} (tls)"));
}

#[tokio::test]
async fn tls_with_verification_rejects_self_signed_certificate() {
    let port = tls_server(1).await;
    let ex = exchange(&tls(port, true), GET, &bounds()).await;
    match &ex.end {
        ConnEnd::TlsFailed(why) => assert!(why.contains("certificate"), "{why}"),
        other => panic!("expected TlsFailed, got {other:?}"),
    }
    assert!(ex.timings.tls_ms.is_none());
    assert_eq!(ex.bytes_out, 0);
}

#[tokio::test]
async fn plain_http_to_tls_port_comes_back() {
    let port = tls_server(1).await;
    let ex = exchange(&plain(port), GET, &bounds()).await;
    assert!(
        matches!(ex.end, ConnEnd::Fin | ConnEnd::Reset),
        "exchange: {ex:#?}"
    );
    assert!(ex.response.is_none());
}

#[tokio::test]
async fn tls_to_plain_http_port_fails_with_what_came_back() {
    let port = plain_http_server(1).await;
    let ex = exchange(&tls(port, false), GET, &bounds()).await;
    match &ex.end {
        ConnEnd::TlsFailed(why) => assert!(why.contains("peer sent no TLS"), "{why}"),
        other => panic!("expected TlsFailed, got {other:?}"),
    }
    assert_eq!(ex.status(), Some(400));
    assert!(ex.raw_prefix.escaped().starts_with("HTTP/1.1 400"));
}

// ---- sniff ----

#[tokio::test]
async fn sniff_tls_server() {
    let port = tls_server(2).await;
    let got = sniff("127.0.0.1", port, "localhost", &bounds()).await;
    // The port speaks TLS whatever its certificate; the certificate (self-signed, so not one
    // the web PKI vouches for) is judged on its own.
    match got {
        Sniff::Tls {
            version,
            certificate:
                Some(CertCheck::Failed {
                    fault: CertFault::UnknownIssuer,
                    self_signed: true,
                    why,
                    against,
                }),
        } => {
            assert_eq!(version.as_deref(), Some("TLSv1.3"));
            assert!(why.starts_with("self-signed"), "{why}");
            assert_eq!(against, "the web PKI's roots");
        }
        other => panic!("expected TLS with a self-signed certificate, got {other:?}"),
    }
}

#[tokio::test]
async fn sniff_plain_http_server() {
    let port = plain_http_server(2).await;
    let got = sniff("127.0.0.1", port, "localhost", &bounds()).await;
    assert_eq!(got, Sniff::PlainHttp { status: 200 });
}

#[tokio::test]
async fn sniff_silent_server() {
    let port = serve(2, |mut s| async move {
        let _ = read_request(&mut s, Some(usize::MAX)).await;
    })
    .await;
    match sniff("127.0.0.1", port, "localhost", &short_bounds()).await {
        Sniff::Neither { detail } => assert!(detail.starts_with("no answer"), "{detail}"),
        other => panic!("expected Neither, got {other:?}"),
    }
}

#[tokio::test]
async fn sniff_garbage_server() {
    let port = serve(2, |mut s| async move {
        let _ = s.write_all(b"\x00garbage\xfe").await;
        // Closing (rather than holding on) keeps the outcome independent of timing.
        let _ = s.shutdown().await;
        let _ = read_request(&mut s, Some(usize::MAX)).await;
    })
    .await;
    match sniff("127.0.0.1", port, "localhost", &bounds()).await {
        Sniff::Neither { detail } => assert!(detail.contains("\\x00garbage\\xfe"), "{detail}"),
        other => panic!("expected Neither, got {other:?}"),
    }
}

#[tokio::test]
async fn sniff_closed_port() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let got = sniff("127.0.0.1", port, "localhost", &bounds()).await;
    assert_eq!(
        got,
        Sniff::Unreachable {
            end: ConnEnd::ConnectRefused
        }
    );
}

#[tokio::test]
async fn tls_close_without_close_notify_mid_body_is_fin() {
    let acceptor = tls_acceptor();
    let port = serve(1, move |s| {
        let acceptor = acceptor.clone();
        async move {
            let accept = tokio::time::timeout(Duration::from_secs(5), acceptor.accept(s));
            let Ok(Ok(mut tls)) = accept.await else {
                return;
            };
            read_request(&mut tls, None).await;
            let _ = tls
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nhalf")
                .await;
            let _ = tls.flush().await;
            // Close the TCP connection under TLS: no close_notify.
            let (mut tcp, _) = tls.into_inner();
            let _ = tcp.shutdown().await;
        }
    })
    .await;
    let ex = exchange(&tls(port, false), GET, &bounds()).await;
    assert_end(&ex, ConnEnd::Fin);
    let r = ex.response.unwrap();
    assert_eq!((r.status, r.body_bytes, r.complete), (200, 4, false));
}

// ---- hostile servers ----
//
// Each must end within the exchange's bounds with the failure named, without a panic, and
// without holding more than `max_response_bytes` (nor more than a bounded body prefix).

/// A lab backend with `fault` on every request.
async fn hostile(fault: Fault) -> LabBackend {
    LabBackend::start(BackendConfig::default().fault(FaultRule::all(fault)))
        .await
        .expect("lab backend starts")
}

/// The memory bounds every hostile exchange must respect.
fn assert_bounded(ex: &Exchange, b: &Bounds) {
    assert!(
        ex.bytes_in <= b.max_response_bytes,
        "{} bytes kept, bound {}",
        ex.bytes_in,
        b.max_response_bytes
    );
    // Escaping at most quadruples a byte (\xNN).
    assert!(ex.raw_prefix.len() <= 4 * 512, "{}", ex.raw_prefix.len());
    if let Some(r) = &ex.response {
        assert!(
            r.body_prefix.len() <= 4 * b.parse.body_prefix_bytes,
            "body prefix of {} chars",
            r.body_prefix.len()
        );
        assert!(
            r.headers.len() <= b.parse.max_headers,
            "{} headers",
            r.headers.len()
        );
    }
}

fn problems(ex: &Exchange) -> Vec<String> {
    ex.response
        .as_ref()
        .map(|r| r.problems.clone())
        .unwrap_or_default()
}

#[tokio::test]
async fn hostile_endless_header_lines_stop_at_the_size_bound() {
    let lab = hostile(Fault::EndlessHeaders).await;
    let b = bounds();
    let ex = exchange(&plain(lab.addr().port()), GET, &b).await;
    assert_end(&ex, ConnEnd::SizeBound);
    assert_bounded(&ex, &b);
    assert_eq!(ex.bytes_in, b.max_response_bytes);
    let p = problems(&ex);
    assert!(p.iter().any(|p| p.contains("head larger than")), "{p:?}");
    assert!(
        p.iter().any(|p| p.contains("more than 200 headers")),
        "{p:?}"
    );
}

#[tokio::test]
async fn hostile_endless_header_lines_over_tls_stop_at_the_size_bound() {
    let lab = LabBackend::start(
        BackendConfig::default()
            .tls(true)
            .fault(FaultRule::all(Fault::EndlessHeaders)),
    )
    .await
    .unwrap();
    let b = bounds();
    let ex = exchange(&tls(lab.addr().port(), false), GET, &b).await;
    assert_end(&ex, ConnEnd::SizeBound);
    assert_bounded(&ex, &b);
    assert_eq!(ex.status(), Some(200));
}

#[tokio::test]
async fn hostile_10_mb_header_stops_at_the_size_bound() {
    let lab = hostile(Fault::HugeHeader(10 * 1024 * 1024)).await;
    let b = bounds();
    let ex = exchange(&plain(lab.addr().port()), GET, &b).await;
    assert_end(&ex, ConnEnd::SizeBound);
    assert_bounded(&ex, &b);
    let r = ex.response.as_ref().expect("a status line came");
    assert_eq!(r.status, 200);
    assert!(!r.complete);
    assert!(
        r.problems
            .iter()
            .any(|p| p.contains("head larger than 65536 bytes")),
        "{:?}",
        r.problems
    );
}

#[tokio::test]
async fn hostile_endless_body_stops_at_the_size_bound() {
    let lab = hostile(Fault::EndlessBody).await;
    let b = bounds();
    let ex = exchange(&plain(lab.addr().port()), GET, &b).await;
    assert_end(&ex, ConnEnd::SizeBound);
    assert_bounded(&ex, &b);
    let r = ex.response.as_ref().unwrap();
    assert!(r.chunked && !r.complete, "{r:#?}");
    assert!(r.body_bytes > 0 && r.body_bytes < b.max_response_bytes);
    assert_eq!(r.body_prefix.len(), b.parse.body_prefix_bytes);
    assert!(
        r.problems
            .iter()
            .any(|p| p.contains("chunked body not terminated")),
        "{:?}",
        r.problems
    );
}

#[tokio::test]
async fn hostile_one_byte_a_second_ends_at_the_total_timeout() {
    let lab = hostile(Fault::Trickle {
        byte_every: Duration::from_secs(1),
    })
    .await;
    let b = Bounds {
        total_timeout: Duration::from_secs(1),
        ..bounds()
    };
    let ex = exchange(&plain(lab.addr().port()), GET, &b).await;
    assert_end(&ex, ConnEnd::Timeout);
    assert_bounded(&ex, &b);
    // At one byte a second, a one-second deadline leaves room for a byte or two at most.
    assert!(ex.bytes_in <= 2, "{ex:#?}");
    assert!(b"HT".starts_with(ex.raw_prefix.as_bytes()), "{ex:#?}");
}

/// The minimum-rate rule for heads: a head that began and trickles is a timeout long before the
/// request's deadline, with the bytes that came kept.
#[tokio::test]
async fn hostile_a_dripping_head_is_a_timeout_at_the_minimum_rate() {
    let lab = hostile(Fault::Trickle {
        byte_every: Duration::from_millis(100),
    })
    .await;
    let b = Bounds {
        total_timeout: Duration::from_secs(30),
        head_min_rate: Some(MinRate {
            grace: Duration::from_millis(500),
            bytes_per_sec: 500,
        }),
        ..bounds()
    };
    let ex = exchange(&plain(lab.addr().port()), GET, &b).await;
    assert_end(&ex, ConnEnd::Timeout);
    assert!(ex.bytes_in > 0, "{ex:#?}");
    assert!(ex.response.as_ref().is_none_or(|r| !r.complete), "{ex:#?}");
    // Cut by the rule (first byte, then half a second and a few bytes' allowance), not by the
    // 30 s deadline.
    assert!(ex.timings.total_ms < 10_000.0, "{:?}", ex.timings);
}

/// Neighbours of the rule: a head that arrives whole and a body that pauses, and interim answers
/// before a late final one, complete as they would without it.
#[tokio::test]
async fn a_pausing_body_and_a_late_final_answer_are_not_cut_by_the_head_rule() {
    let port = serve(2, |mut s| async move {
        let request = read_request(&mut s, None).await;
        if request.starts_with(b"GET /hints") {
            let _ = s
                .write_all(b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n")
                .await;
            tokio::time::sleep(Duration::from_millis(800)).await;
            let _ = s.write_all(OK).await;
        } else {
            let _ = s
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nab")
                .await;
            tokio::time::sleep(Duration::from_millis(800)).await;
            let _ = s.write_all(b"cd").await;
        }
    })
    .await;
    let b = Bounds {
        head_min_rate: Some(MinRate {
            grace: Duration::from_millis(200),
            bytes_per_sec: 500,
        }),
        ..bounds()
    };
    let paused = exchange(&plain(port), GET, &b).await;
    assert_end(&paused, ConnEnd::Complete);
    let hints = exchange(
        &plain(port),
        b"GET /hints HTTP/1.1\r\nHost: test\r\n\r\n",
        &b,
    )
    .await;
    assert_end(&hints, ConnEnd::Complete);
    assert_eq!(hints.status(), Some(200), "{hints:#?}");
}

#[tokio::test]
async fn hostile_endless_garbage_stops_at_the_size_bound() {
    let port = serve(1, |mut s| async move {
        read_request(&mut s, None).await;
        // Bytes that are no HTTP (nor TLS), until the client leaves (bounded anyway).
        let garbage: Vec<u8> = (0..16 * 1024u32).map(|i| (i * 7 + 1) as u8).collect();
        for _ in 0..10_000 {
            if s.write_all(&garbage).await.is_err() {
                return;
            }
        }
    })
    .await;
    let b = bounds();
    let ex = exchange(&plain(port), GET, &b).await;
    assert_end(&ex, ConnEnd::SizeBound);
    assert_bounded(&ex, &b);
    assert!(ex.response.is_none(), "{:?}", ex.response);
    assert!(
        ex.raw_prefix.escaped().starts_with("\\x01\\x08\\x0f"),
        "{}",
        ex.raw_prefix.escaped()
    );
}

#[tokio::test]
async fn hostile_garbage_status_line_is_a_response_with_a_problem() {
    let lab = hostile(Fault::MalformedStatusLine).await;
    let b = bounds();
    let ex = exchange(&plain(lab.addr().port()), GET, &b).await;
    assert_bounded(&ex, &b);
    let p = problems(&ex);
    assert!(
        p.iter().any(|p| p.contains("malformed status line")),
        "{ex:#?}"
    );
}

/// A fatal handshake_failure alert record (TLS 1.2 framing, as servers send it to any
/// ClientHello): content type 21, version 3.3, length 2, level fatal (2), description 40.
const FATAL_HANDSHAKE_FAILURE: &[u8] = b"\x15\x03\x03\x00\x02\x02\x28";

#[tokio::test]
async fn hostile_tls_alert_during_the_handshake_fails_it_by_name() {
    let port = serve(1, |mut s| async move {
        // Read the ClientHello (one record, bounded), answer with a bare alert, close.
        let mut hello = [0u8; 4096];
        let _ = tokio::time::timeout(Duration::from_secs(5), s.read(&mut hello)).await;
        let _ = s.write_all(FATAL_HANDSHAKE_FAILURE).await;
        let _ = s.shutdown().await;
        let _ = read_request(&mut s, Some(usize::MAX)).await;
    })
    .await;
    let b = bounds();
    let ex = exchange(&tls(port, false), GET, &b).await;
    match &ex.end {
        ConnEnd::TlsFailed(why) => assert!(
            why.contains("alert") && why.contains("handshake failure"),
            "{why}"
        ),
        other => panic!("expected TlsFailed, got {other:?}"),
    }
    assert_bounded(&ex, &b);
    assert_eq!(ex.bytes_out, 0, "no request bytes before a handshake");
    assert_eq!(ex.bytes_in, FATAL_HANDSHAKE_FAILURE.len());
    assert!(ex.response.is_none());
}

/// A TLS 1.3 server that requires a client certificate finishes the handshake from the
/// client's side, then rejects the (empty) certificate with an alert: the alert arrives where
/// the answer was expected.
#[tokio::test]
async fn hostile_tls_alert_after_the_handshake_is_named() {
    let cert = LabCert::localhost().unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.cert_der().unwrap()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .unwrap();
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![cert.cert_der().unwrap()], cert.key_der().unwrap())
        .unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let port = serve(1, move |s| {
        let acceptor = acceptor.clone();
        async move {
            let accept = acceptor.accept(s).into_fallible();
            if let Ok(Err((_, mut tcp))) =
                tokio::time::timeout(Duration::from_secs(5), accept).await
            {
                // The alert is written; drain what the client sent after its Finished so that
                // closing sends a FIN behind the alert, not an RST that could overtake it.
                let _ = read_request(&mut tcp, Some(usize::MAX)).await;
            }
        }
    })
    .await;
    let b = bounds();
    let ex = exchange(&tls(port, false), GET, &b).await;
    assert!(ex.timings.tls_ms.is_some(), "{ex:#?}");
    match &ex.end {
        ConnEnd::TlsAlert(why) => assert!(why.contains("certificate required"), "{why}"),
        other => panic!("expected TlsAlert, got {other:?}: {ex:#?}"),
    }
    assert_bounded(&ex, &b);
    assert!(ex.response.is_none());
}

#[tokio::test]
async fn hostile_reset_in_the_middle_of_a_large_body() {
    let port = serve(1, |mut s| async move {
        read_request(&mut s, None).await;
        let head = b"HTTP/1.1 200 OK\r\nContent-Length: 10000000\r\n\r\n";
        if s.write_all(head).await.is_err() {
            return;
        }
        let _ = s.write_all(&vec![b'm'; 100 * 1024]).await;
        rst(s);
    })
    .await;
    let b = bounds();
    let ex = exchange(&plain(port), GET, &b).await;
    assert_end(&ex, ConnEnd::Reset);
    assert_bounded(&ex, &b);
    let r = ex
        .response
        .as_ref()
        .expect("the head came before the reset");
    assert_eq!(r.status, 200);
    assert!(!r.complete);
    assert!(r.body_bytes <= 100 * 1024);
}

#[tokio::test]
async fn hostile_reset_without_response_from_the_lab() {
    let lab = hostile(Fault::ResetWithoutResponse).await;
    let ex = exchange(&plain(lab.addr().port()), GET, &bounds()).await;
    assert_end(&ex, ConnEnd::Reset);
    assert_eq!(ex.bytes_out, GET.len());
    assert!(ex.response.is_none());
}

#[tokio::test]
async fn hostile_never_answer_ends_at_the_total_timeout() {
    let lab = hostile(Fault::NeverAnswer).await;
    let b = short_bounds();
    let ex = exchange(&plain(lab.addr().port()), GET, &b).await;
    assert_end(&ex, ConnEnd::Timeout);
    assert_eq!((ex.bytes_in, ex.bytes_out), (0, GET.len()));
}

/// A server writing its answer in pieces of a few bytes as fast as it can: every read brings a
/// few bytes, so checking the whole response for completeness at each read would be quadratic
/// and run into the deadline before the size bound. The exchange must end at the size bound.
async fn tiny_pieces_server(head: &'static [u8], piece: &'static [u8]) -> u16 {
    serve(1, move |mut s| async move {
        let _ = s.set_nodelay(true);
        read_request(&mut s, None).await;
        if s.write_all(head).await.is_err() {
            return;
        }
        // Until the client leaves (bounded anyway).
        for _ in 0..4_000_000u32 {
            if s.write_all(piece).await.is_err() {
                return;
            }
        }
    })
    .await
}

/// Bounds large enough that re-parsing the whole response at every read of a few bytes
/// (about 2 MiB² / 8 bytes of work) cannot finish before the deadline.
fn big_bounds() -> Bounds {
    Bounds {
        max_response_bytes: 2 * 1024 * 1024,
        total_timeout: Duration::from_secs(10),
        ..bounds()
    }
}

#[tokio::test]
async fn hostile_tiny_chunks_end_at_the_size_bound_not_the_deadline() {
    let port = tiny_pieces_server(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"1\r\nx\r\n",
    )
    .await;
    let b = big_bounds();
    let ex = exchange(&plain(port), GET, &b).await;
    assert_end(&ex, ConnEnd::SizeBound);
    assert_bounded(&ex, &b);
    assert!(ex.response.unwrap().chunked);
}

#[tokio::test]
async fn hostile_tiny_pieces_of_a_long_body_end_at_the_size_bound_not_the_deadline() {
    let port = tiny_pieces_server(
        b"HTTP/1.1 200 OK\r\nContent-Length: 1000000000\r\n\r\n",
        b"\n\r\nxx",
    )
    .await;
    let b = big_bounds();
    let ex = exchange(&plain(port), GET, &b).await;
    assert_end(&ex, ConnEnd::SizeBound);
    assert_bounded(&ex, &b);
    assert_eq!(ex.response.unwrap().content_length, Some(1_000_000_000));
}

#[tokio::test]
async fn hostile_tiny_pieces_of_a_close_delimited_body_end_at_the_size_bound() {
    let port = tiny_pieces_server(b"HTTP/1.1 200 OK\r\n\r\n", b"\n\n\n\n").await;
    let b = big_bounds();
    let ex = exchange(&plain(port), GET, &b).await;
    assert_end(&ex, ConnEnd::SizeBound);
    assert_bounded(&ex, &b);
}

/// Phase timings: the lookup is timed only when a name was looked up, the transfer from the
/// first byte to the end; a phase that did not happen is absent, never 0.
#[tokio::test]
async fn phases_are_timed_and_absent_ones_are_null() {
    let backend = LabBackend::start(BackendConfig::default().fault(FaultRule::all(
        Fault::Trickle {
            byte_every: Duration::from_millis(2),
        },
    )))
    .await
    .unwrap();
    let port = backend.addr().port();
    let request = b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
    let by_address = exchange(&plain(port), request, &bounds()).await;
    assert_eq!(by_address.timings.dns_ms, None, "{by_address:?}");
    assert_eq!(
        by_address.peer.as_deref(),
        Some(&*format!("127.0.0.1:{port}"))
    );
    let transfer = by_address.timings.transfer_ms.expect("a transfer phase");
    // A trickled answer of ~150 bytes takes a while after its first byte.
    assert!(transfer > 50.0, "{:?}", by_address.timings);
    assert!(by_address.timings.tls_ms.is_none());

    // `localhost` comes from /etc/hosts: a lookup, without the network.
    let by_name = Endpoint {
        host: "localhost".into(),
        ..plain(port)
    };
    let ex = exchange(&by_name, request, &bounds()).await;
    assert!(ex.timings.dns_ms.is_some(), "{:?}", ex.timings);

    // Nothing listening: no connection, so no phase after it.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let gone = closed.local_addr().unwrap().port();
    drop(closed);
    let ex = exchange(&plain(gone), request, &bounds()).await;
    assert_eq!(ex.peer, None);
    assert_eq!(ex.timings.connect_ms, None);
    assert_eq!(ex.timings.first_byte_ms, None);
    assert_eq!(ex.timings.transfer_ms, None);
}

/// A TLS exchange names what the handshake settled on; plain HTTP has nothing to name.
#[tokio::test]
async fn tls_exchanges_name_the_version_cipher_and_alpn() {
    let backend = LabBackend::start(BackendConfig::default().tls(true))
        .await
        .unwrap();
    let port = backend.addr().port();
    let request = b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
    let ex = exchange(&tls(port, false), request, &bounds()).await;
    let info = ex.tls_info.as_ref().unwrap_or_else(|| panic!("{ex:?}"));
    assert_eq!(info.version, "TLSv1.3", "{info:?}");
    assert!(info.cipher.starts_with("TLS13_"), "{info:?}");
    let plain_backend = LabBackend::start(BackendConfig::default()).await.unwrap();
    let ex = exchange(&plain(plain_backend.addr().port()), request, &bounds()).await;
    assert_eq!(ex.tls_info, None);
}
