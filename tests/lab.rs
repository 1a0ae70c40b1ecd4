//! The lab against real sockets: lab backends on loopback, and a real nginx in front of them.
//! nginx tests fail (never skip) when nginx is missing, naming the binary that was looked for.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use lbprobe::lab::{BackendConfig, LabBackend, LabError, Nginx, NginxServer, NginxSpec};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

const IO_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_ANSWER: usize = 1024 * 1024;

/// A parsed answer, enough for assertions.
#[derive(Debug)]
struct Answer {
    raw: Vec<u8>,
    status: Option<u16>,
    head: String,
    body: String,
}

impl Answer {
    fn parse(raw: Vec<u8>) -> Answer {
        let split = raw.windows(4).position(|w| w == b"\r\n\r\n");
        let (head, body) = match split {
            Some(at) => (&raw[..at], &raw[at + 4..]),
            None => (&raw[..], &[][..]),
        };
        let head = String::from_utf8_lossy(head).into_owned();
        let body = String::from_utf8_lossy(body).into_owned();
        let status = head
            .strip_prefix("HTTP/1.1 ")
            .and_then(|rest| rest.get(..3))
            .and_then(|code| code.parse().ok());
        Answer {
            raw,
            status,
            head,
            body,
        }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {:?}", self.body))
    }
}

/// Writes `request`, then reads until the peer closes (bounded in time and size).
async fn exchange_on<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, request: &[u8]) -> Answer {
    // A TLS-only peer may close before taking all the bytes: what it answers still counts.
    let _ = tokio::time::timeout(IO_TIMEOUT, stream.write_all(request)).await;
    let mut raw = Vec::new();
    let mut chunk = [0u8; 8192];
    while raw.len() < MAX_ANSWER {
        match tokio::time::timeout(IO_TIMEOUT, stream.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => raw.extend_from_slice(&chunk[..n]),
            _ => break,
        }
    }
    Answer::parse(raw)
}

async fn exchange(addr: std::net::SocketAddr, request: &[u8]) -> Answer {
    let tcp = TcpStream::connect(addr).await.expect("connect");
    exchange_on(tcp, request).await
}

/// Trusts whatever certificate the peer shows (lab certificates are self-signed) but still
/// checks the handshake signatures, so the TLS is real.
#[derive(Debug)]
struct AcceptAnyCert(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A TLS exchange; also returns the certificate the server presented.
async fn tls_exchange(
    addr: std::net::SocketAddr,
    request: &[u8],
) -> (Answer, CertificateDer<'static>) {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAnyCert(provider)))
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let tls = tokio::time::timeout(
        IO_TIMEOUT,
        connector.connect(ServerName::try_from("localhost").unwrap(), tcp),
    )
    .await
    .expect("TLS handshake timed out")
    .expect("TLS handshake");
    let presented = tls.get_ref().1.peer_certificates().unwrap()[0].clone();
    (exchange_on(tls, request).await, presented)
}

fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").into_bytes()
}

async fn backend(config: BackendConfig) -> LabBackend {
    LabBackend::start(config).await.expect("lab backend starts")
}

/// Starts nginx or fails the test with the reason (e.g. which binary was missing).
fn nginx(spec: &NginxSpec) -> Nginx {
    Nginx::start(spec).unwrap_or_else(|e| panic!("cannot run the nginx tests: {e}"))
}

#[tokio::test]
async fn backend_healthy_get_gets_200_with_server_header() {
    let lab = backend(BackendConfig::default()).await;
    assert!(lab.url().starts_with("http://127.0.0.1:"));
    let answer = exchange(lab.addr(), &get("/hello?x=1")).await;
    assert_eq!(answer.status, Some(200), "{answer:?}");
    assert_eq!(answer.header("Server"), Some("lbprobe-lab"));
    assert_eq!(answer.header("Connection"), Some("close"));
    let json = answer.json();
    assert_eq!(json["ok"], true);
    assert_eq!(json["method"], "GET");
    assert_eq!(json["path"], "/hello?x=1");
    assert_eq!(lab.requests_seen(), 1);
    assert_eq!(lab.recent_requests()[0].target, "/hello?x=1");
}

#[tokio::test]
async fn backend_rejected_method_gets_405_with_allow() {
    let lab = backend(BackendConfig::default().reject_method("DELETE")).await;
    let answer = exchange(
        lab.addr(),
        b"DELETE /item HTTP/1.1\r\nHost: localhost\r\n\r\n",
    )
    .await;
    assert_eq!(answer.status, Some(405), "{answer:?}");
    let allow = answer.header("Allow").expect("Allow header");
    assert!(
        allow.contains("GET") && !allow.contains("DELETE"),
        "{allow}"
    );
    assert_eq!(answer.header("Server"), Some("lbprobe-lab"));
    assert_eq!(exchange(lab.addr(), &get("/item")).await.status, Some(200));
}

#[tokio::test]
async fn backend_validation_missing_header_gets_400_present_gets_200() {
    let lab = backend(BackendConfig::default().required_header("X-Api-Key")).await;
    let missing = exchange(lab.addr(), &get("/")).await;
    assert_eq!(missing.status, Some(400), "{missing:?}");
    assert_eq!(
        missing.body,
        r#"{"error":"validation failed: missing header X-Api-Key"}"#
    );
    let present = exchange(
        lab.addr(),
        b"GET / HTTP/1.1\r\nHost: localhost\r\nx-api-key: secret\r\n\r\n",
    )
    .await;
    assert_eq!(present.status, Some(200), "{present:?}");
}

#[tokio::test]
async fn backend_uri_above_limit_gets_414() {
    let lab = backend(BackendConfig::default().max_uri_bytes(100)).await;
    let long = format!("/{}", "a".repeat(200));
    let answer = exchange(lab.addr(), &get(&long)).await;
    assert_eq!(answer.status, Some(414), "{answer:?}");
    assert_eq!(answer.header("Server"), Some("lbprobe-lab"));
    assert_eq!(exchange(lab.addr(), &get("/short")).await.status, Some(200));
    // Beyond the 64 KiB head bound, the long request line still reads as a URI problem.
    let huge = format!("/{}", "b".repeat(70 * 1024));
    assert_eq!(exchange(lab.addr(), &get(&huge)).await.status, Some(414));
}

/// The 414 is sent before the body is read; the backend drains what follows so that closing
/// does not reset the connection and destroy the answer in flight.
#[tokio::test]
async fn backend_early_answer_survives_an_unread_body() {
    let lab = backend(BackendConfig::default().max_uri_bytes(10)).await;
    let mut request = format!(
        "POST /{} HTTP/1.1\r\nHost: localhost\r\nContent-Length: 200000\r\n\r\n",
        "p".repeat(20)
    )
    .into_bytes();
    request.extend(vec![b'x'; 200_000]);
    let answer = exchange(lab.addr(), &request).await;
    assert_eq!(answer.status, Some(414), "{answer:?}");
    assert_eq!(answer.body, r#"{"error":"uri too long"}"#);
}

#[tokio::test]
async fn backend_header_line_above_limit_gets_400() {
    let lab = backend(BackendConfig::default().max_header_bytes(64)).await;
    let request = format!(
        "GET / HTTP/1.1\r\nHost: localhost\r\nX-Big: {}\r\n\r\n",
        "v".repeat(100)
    );
    let answer = exchange(lab.addr(), request.as_bytes()).await;
    assert_eq!(answer.status, Some(400), "{answer:?}");
    assert_eq!(answer.body, r#"{"error":"header too large"}"#);
}

#[tokio::test]
async fn backend_is_lenient_but_answers_unreadable_lines_itself() {
    let lab = backend(BackendConfig::default()).await;
    let lowercase = exchange(lab.addr(), b"get /lf HTTP/1.1\nHost: localhost\n\n").await;
    assert_eq!(lowercase.status, Some(200), "{lowercase:?}");
    assert_eq!(lowercase.json()["method"], "get");

    let no_colon = exchange(
        lab.addr(),
        b"GET / HTTP/1.1\r\nHost: localhost\r\nthis line has no colon\r\n\r\n",
    )
    .await;
    assert_eq!(no_colon.status, Some(400), "{no_colon:?}");
    assert_eq!(no_colon.header("Server"), Some("lbprobe-lab"));
    assert!(no_colon.json()["error"]
        .as_str()
        .unwrap()
        .contains("malformed"));

    let nul = exchange(lab.addr(), b"GET / HTTP/1.1\r\nX: a\0b\r\n\r\n").await;
    assert_eq!(nul.status, Some(400), "{nul:?}");
}

#[tokio::test]
async fn backend_short_body_gets_400_incomplete_body_and_extra_bytes_are_ignored() {
    let lab = backend(BackendConfig::default().read_timeout(Duration::from_millis(300))).await;
    let short = exchange(
        lab.addr(),
        b"POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 10\r\n\r\nabc",
    )
    .await;
    assert_eq!(short.status, Some(400), "{short:?}");
    assert_eq!(short.body, r#"{"error":"incomplete body"}"#);

    let extra = exchange(
        lab.addr(),
        b"POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 3\r\n\r\nabcdef",
    )
    .await;
    assert_eq!(extra.status, Some(200), "{extra:?}");
    assert_eq!(extra.json()["body_bytes"], 3);
}

#[tokio::test]
async fn backend_reads_chunked_bodies() {
    let lab = backend(BackendConfig::default()).await;
    let answer = exchange(
        lab.addr(),
        b"POST /c HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n\
          4\r\nwiki\r\n5\r\npedia\r\n0\r\n\r\n",
    )
    .await;
    assert_eq!(answer.status, Some(200), "{answer:?}");
    assert_eq!(answer.json()["body_bytes"], 9);
}

#[tokio::test]
async fn backend_trace_echoes_and_options_lists_allowed_methods() {
    let lab = backend(BackendConfig::default().reject_method("PUT")).await;
    let request = b"TRACE /t HTTP/1.1\r\nHost: localhost\r\nX-Marker: m1\r\n\r\n";
    let trace = exchange(lab.addr(), request).await;
    assert_eq!(trace.status, Some(200), "{trace:?}");
    assert_eq!(trace.header("Content-Type"), Some("message/http"));
    assert!(trace.body.contains("X-Marker: m1"), "{trace:?}");

    let options = exchange(lab.addr(), b"OPTIONS * HTTP/1.1\r\nHost: localhost\r\n\r\n").await;
    assert_eq!(options.status, Some(204), "{options:?}");
    let allow = options.header("Allow").expect("Allow header");
    assert!(allow.contains("TRACE") && !allow.contains("PUT"), "{allow}");
}

#[tokio::test]
async fn tls_backend_answers_over_tls_and_not_to_plain_http() {
    let lab = backend(BackendConfig::default().tls(true)).await;
    assert!(lab.url().starts_with("https://127.0.0.1:"));
    let (answer, presented) = tls_exchange(lab.addr(), &get("/secure")).await;
    assert_eq!(answer.status, Some(200), "{answer:?}");
    assert_eq!(answer.json()["path"], "/secure");
    assert_eq!(presented, lab.cert().unwrap().cert_der().unwrap());

    let plain = exchange(lab.addr(), &get("/plain")).await;
    assert!(
        !plain.raw.starts_with(b"HTTP/"),
        "a TLS-only backend answered plain HTTP: {plain:?}"
    );
    assert_eq!(lab.requests_seen(), 1);
}

#[tokio::test]
async fn backend_drop_stops_accepting() {
    let lab = backend(BackendConfig::default()).await;
    let addr = lab.addr();
    assert_eq!(exchange(addr, &get("/")).await.status, Some(200));
    drop(lab);
    // The accept loop ends when the runtime next polls the aborted task: poll, bounded.
    let mut refused = false;
    for _ in 0..200 {
        if TcpStream::connect(addr).await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        refused,
        "{addr} still accepts after the backend was dropped"
    );
}

/// Waits (bounded) for an access-log line containing `needle`: nginx writes the line when it
/// finalises the request, which may trail the client's read of the answer.
fn access_log_line(nginx: &Nginx, needle: &str) -> String {
    for _ in 0..250 {
        if let Some(line) = nginx.access_log().lines().find(|l| l.contains(needle)) {
            return line.to_string();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!(
        "no access-log line with {needle:?}; log:\n{}",
        nginx.access_log()
    );
}

#[tokio::test]
async fn nginx_proxies_to_a_backend() {
    let lab = backend(BackendConfig::default()).await;
    let nginx = nginx(&NginxSpec::one(NginxServer::proxy(lab.url())));
    assert!(nginx.url(0).starts_with("http://127.0.0.1:"));
    assert_eq!(lab.requests_seen(), 0);
    let answer = exchange(nginx.addr(0), &get("/through-nginx")).await;
    assert_eq!(answer.status, Some(200), "{answer:?}");
    assert_eq!(answer.json()["path"], "/through-nginx");
    assert_eq!(lab.requests_seen(), 1);
    let line = access_log_line(&nginx, "/through-nginx");
    assert!(
        line.contains("status=200 upstream_status=200"),
        "access log line: {line}"
    );
}

#[tokio::test]
async fn nginx_passes_the_backend_validation_400_through() {
    let lab = backend(BackendConfig::default().required_header("X-Api-Key")).await;
    let nginx = nginx(&NginxSpec::one(NginxServer::proxy(lab.url())));
    let answer = exchange(nginx.addr(0), &get("/v")).await;
    assert_eq!(answer.status, Some(400), "{answer:?}");
    assert!(answer.body.contains("validation failed"), "{answer:?}");
    let line = access_log_line(&nginx, "/v ");
    assert!(line.contains("status=400 upstream_status=400"), "{line}");
}

#[tokio::test]
async fn nginx_proxies_to_a_tls_backend_over_https() {
    let lab = backend(BackendConfig::default().tls(true)).await;
    let nginx = nginx(&NginxSpec::one(NginxServer::proxy(lab.url())));
    let answer = exchange(nginx.addr(0), &get("/tls-upstream")).await;
    assert_eq!(answer.status, Some(200), "{answer:?}");
    assert_eq!(lab.requests_seen(), 1);
}

/// nginx 1.22 does not turn this into 502: the backend's TLS alert is no HTTP/1.x status line,
/// so nginx relays it to the client as an HTTP/0.9 answer and logs status 009.
#[tokio::test]
async fn nginx_plain_http_to_a_tls_backend_relays_the_tls_alert() {
    let lab = backend(BackendConfig::default().tls(true)).await;
    let plain_url = lab.url().replacen("https://", "http://", 1);
    let nginx = nginx(&NginxSpec::one(NginxServer::proxy(plain_url)));
    let answer = exchange(nginx.addr(0), &get("/wrong-scheme")).await;
    assert_eq!(answer.status, None, "{answer:?}");
    assert_eq!(
        answer.raw.first(),
        Some(&0x15),
        "not a TLS alert record: {answer:?}"
    );
    assert_eq!(lab.requests_seen(), 0);
    let line = access_log_line(&nginx, "/wrong-scheme");
    assert!(line.contains("status=009"), "{line}");
    assert!(
        nginx
            .error_log()
            .contains("upstream sent no valid HTTP/1.0 header"),
        "{}",
        nginx.error_log()
    );
}

#[tokio::test]
async fn nginx_tls_server_answers_over_tls() {
    let nginx = nginx(&NginxSpec::one(NginxServer::fixed().tls(true)));
    assert!(nginx.url(0).starts_with("https://127.0.0.1:"));
    let (answer, _) = tls_exchange(nginx.addr(0), &get("/")).await;
    assert_eq!(answer.status, Some(200), "{answer:?}");
    assert_eq!(answer.json()["server"], "nginx");
}

#[tokio::test]
async fn http_to_https_port_gets_400() {
    let nginx = nginx(&NginxSpec::one(NginxServer::fixed().tls(true)));
    let answer = exchange(nginx.addr(0), &get("/")).await;
    assert_eq!(answer.status, Some(400), "{answer:?}");
    assert!(
        answer
            .body
            .contains("The plain HTTP request was sent to HTTPS port"),
        "{answer:?}"
    );
}

#[tokio::test]
async fn nginx_serves_several_servers_on_distinct_ports() {
    let lab = backend(BackendConfig::default()).await;
    let spec = NginxSpec {
        servers: vec![
            NginxServer::proxy(lab.url()),
            NginxServer::fixed().extra("large_client_header_buffers 4 1k;"),
        ],
        http_extra: String::new(),
    };
    let nginx = nginx(&spec);
    assert_ne!(nginx.port(0), nginx.port(1));
    assert_eq!(exchange(nginx.addr(0), &get("/a")).await.json()["ok"], true);
    let long = format!("/{}", "u".repeat(2000));
    assert_eq!(exchange(nginx.addr(1), &get(&long)).await.status, Some(414));
}

/// Processes whose parent is `pid` (nginx workers of a master), from /proc.
fn children_of(pid: u32) -> Vec<u32> {
    let mut children = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Some(child) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // After the last ')' (the command name may hold anything): state, then ppid.
        let Some((_, after)) = stat.rsplit_once(')') else {
            continue;
        };
        if after.split_whitespace().nth(1) == Some(pid.to_string().as_str()) {
            children.push(child);
        }
    }
    children
}

/// Alive means: /proc has it and it is not a zombie awaiting its parent.
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => false,
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, after)| after.split_whitespace().next())
            .is_some_and(|state| state != "Z"),
    }
}

#[test]
fn nginx_drop_leaves_no_nginx_process() {
    let nginx = nginx(&NginxSpec::one(NginxServer::fixed()));
    let pid_file = nginx.pid_file().to_path_buf();
    let dir = nginx.dir().to_path_buf();
    let master: u32 = std::fs::read_to_string(&pid_file)
        .expect("pid file")
        .trim()
        .parse()
        .expect("pid in pid file");
    assert_eq!(master, nginx.pid());
    let workers = children_of(master);
    assert!(!workers.is_empty(), "nginx master {master} has no workers");
    assert!(alive(master));

    drop(nginx);

    assert!(!alive(master), "nginx master {master} still runs");
    for worker in workers {
        assert!(!alive(worker), "nginx worker {worker} still runs");
    }
    assert!(!Path::new(&dir).exists(), "temp dir {dir:?} left behind");
}

#[test]
fn nginx_not_found_names_what_was_looked_for_and_the_fix() {
    let message = LabError::NginxNotFound {
        looked_for: "LBPROBE_NGINX=/opt/none/nginx".to_string(),
    }
    .to_string();
    assert!(message.contains("/opt/none/nginx"), "{message}");
    assert!(message.contains("apt-get install nginx-light"), "{message}");
}

#[test]
fn nginx_start_failure_carries_the_error_log_tail() {
    let spec = NginxSpec {
        servers: vec![NginxServer::fixed()],
        http_extra: "this_is_not_a_directive on;".to_string(),
    };
    match Nginx::start(&spec) {
        Err(LabError::NginxFailed { log_tail, .. }) => {
            assert!(log_tail.contains("this_is_not_a_directive"), "{log_tail}")
        }
        Err(other) => panic!("cannot run the nginx tests: {other}"),
        Ok(_) => panic!("nginx started with an unknown directive"),
    }
}
