//! The lab against real sockets: lab backends on loopback, and a real nginx in front of them.
//! nginx tests fail (never skip) when nginx is missing, naming the binary that was looked for.

#[path = "support/says.rs"]
mod says;
use says::assert_says;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use lbprobe::lab::{
    BackendConfig, Fault, FaultRule, LabBackend, LabError, Nginx, NginxServer, NginxSpec,
    UnacceptingListener, ANNOUNCED_LENGTH, MALFORMED_HEADER_LINE, MALFORMED_STATUS_LINE,
    SHORT_BODY, SPACE_BEFORE_COLON_LINE,
};
use lbprobe::transport::tls::{Alpn, TlsSettings};
use lbprobe::transport::{self, Bounds, ConnEnd, Endpoint, Exchange, ParseLimits, Wire};
use rustls::pki_types::{CertificateDer, ServerName};
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
        let split = lbprobe::bytes::find(&raw, b"\r\n\r\n");
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

/// A TLS exchange; also returns the certificate the server presented.
async fn tls_exchange(
    addr: std::net::SocketAddr,
    request: &[u8],
) -> (Answer, CertificateDer<'static>) {
    // Lab certificates are self-signed: lbprobe's own insecure configuration, which still checks
    // the handshake signatures, so the TLS is real. No ALPN, as a raw probe sends.
    let config = transport::tls::client_config(&TlsSettings::insecure(), Alpn::None)
        .expect("an insecure client configuration needs no files");
    let connector = tokio_rustls::TlsConnector::from(config);
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
        cert: None,
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
    assert_says(
        &message,
        &["/opt/none/nginx", "apt-get install nginx-light"],
    );
}

#[test]
fn nginx_start_failure_carries_the_error_log_tail() {
    let spec = NginxSpec {
        cert: None,
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

// ---- faults, straight at the backend ----
//
// Each request goes through lbprobe's own transport, so these tests also pin down what a probe
// sees of each fault (the end of the connection and the parser's problems).

/// Bounds for faults that answer: generous, never what a test waits for.
fn probe_bounds() -> Bounds {
    Bounds {
        connect_timeout: Duration::from_secs(5),
        total_timeout: Duration::from_secs(10),
        ..Bounds::default()
    }
}

/// Bounds for faults that never finish: the client gives up quickly.
fn impatient_bounds() -> Bounds {
    Bounds {
        total_timeout: Duration::from_millis(300),
        ..probe_bounds()
    }
}

async fn probe_at(addr: SocketAddr, path: &str, bounds: &Bounds) -> Exchange {
    let endpoint = Endpoint::plain(addr.ip().to_string(), addr.port());
    transport::exchange(&endpoint, &get(path), bounds).await
}

async fn faulty(fault: Fault) -> LabBackend {
    // Only /fault misbehaves: every test also checks that the rule stays on its path.
    backend(BackendConfig::default().fault(FaultRule::path("/fault", fault))).await
}

async fn assert_other_paths_healthy(lab: &LabBackend) {
    let healthy = probe_at(lab.addr(), "/healthy", &probe_bounds()).await;
    assert_eq!(
        (&healthy.end, healthy.status()),
        (&ConnEnd::Complete, Some(200)),
        "{healthy:#?}"
    );
}

/// Polls (bounded) until the backend holds no connection: a held connection must be let go
/// once its client has left.
async fn assert_lets_go(lab: &LabBackend) {
    for _ in 0..500 {
        if lab.open_connections() == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!(
        "the backend still holds {} connection(s) after the client left",
        lab.open_connections()
    );
}

fn has_problem(ex: &Exchange, needle: &str) -> bool {
    ex.response
        .as_ref()
        .is_some_and(|r| r.problems.iter().any(|p| p.contains(needle)))
}

#[tokio::test]
async fn backend_close_after_headers_announces_a_body_and_sends_none() {
    let lab = faulty(Fault::CloseAfterHeaders).await;
    let ex = probe_at(lab.addr(), "/fault", &probe_bounds()).await;
    assert_eq!(ex.end, ConnEnd::Fin, "{ex:#?}");
    let r = ex.response.as_ref().expect("a response head");
    assert_eq!(r.status, 200);
    assert_eq!(r.content_length, Some(ANNOUNCED_LENGTH as u64));
    assert_eq!((r.body_bytes, r.complete), (0, false));
    assert!(has_problem(&ex, "shorter than Content-Length"), "{ex:#?}");
    assert_other_paths_healthy(&lab).await;
}

#[tokio::test]
async fn backend_close_without_response_sends_no_byte_and_fins() {
    let lab = faulty(Fault::CloseWithoutResponse).await;
    let ex = probe_at(lab.addr(), "/fault", &probe_bounds()).await;
    assert_eq!((&ex.end, ex.bytes_in), (&ConnEnd::Fin, 0), "{ex:#?}");
    assert!(ex.response.is_none());
    // The request was read before the close, as a listener in front would see it.
    assert_eq!(lab.recent_requests()[0].target, "/fault");
    assert_other_paths_healthy(&lab).await;
}

#[tokio::test]
async fn backend_reset_without_response_sends_no_byte_and_resets() {
    let lab = faulty(Fault::ResetWithoutResponse).await;
    let ex = probe_at(lab.addr(), "/fault", &probe_bounds()).await;
    assert_eq!((&ex.end, ex.bytes_in), (&ConnEnd::Reset, 0), "{ex:#?}");
    assert_eq!(lab.requests_seen(), 1);
    assert_other_paths_healthy(&lab).await;
}

#[tokio::test]
async fn tls_backend_reset_without_response_resets_under_tls() {
    let lab = backend(
        BackendConfig::default()
            .tls(true)
            .fault(FaultRule::all(Fault::ResetWithoutResponse)),
    )
    .await;
    let endpoint = Endpoint {
        host: "127.0.0.1".into(),
        port: lab.addr().port(),
        wire: Wire::Tls {
            server_name: "localhost".into(),
            tls: lbprobe::transport::tls::TlsSettings::insecure(),
        },
        family: None,
    };
    let ex = transport::exchange(&endpoint, &get("/tls"), &probe_bounds()).await;
    assert!(ex.timings.tls_ms.is_some(), "{ex:#?}");
    assert_eq!((&ex.end, ex.bytes_in), (&ConnEnd::Reset, 0), "{ex:#?}");
}

#[tokio::test]
async fn backend_malformed_status_line_is_sent_with_an_otherwise_fine_answer() {
    let lab = faulty(Fault::MalformedStatusLine).await;
    let ex = probe_at(lab.addr(), "/fault", &probe_bounds()).await;
    assert!(
        ex.raw_prefix.escaped().starts_with(&format!(
            "{MALFORMED_STATUS_LINE}\\r\\nServer: lbprobe-lab\\r\\n"
        )),
        "{ex:#?}"
    );
    assert!(has_problem(&ex, "malformed status line"), "{ex:#?}");
    assert_other_paths_healthy(&lab).await;
}

#[tokio::test]
async fn backend_malformed_header_line_has_no_colon() {
    let lab = faulty(Fault::MalformedHeader).await;
    let ex = probe_at(lab.addr(), "/fault", &probe_bounds()).await;
    assert_eq!(
        (&ex.end, ex.status()),
        (&ConnEnd::Complete, Some(200)),
        "{ex:#?}"
    );
    assert!(
        ex.raw_prefix
            .escaped()
            .contains(&format!("\\r\\n{MALFORMED_HEADER_LINE}\\r\\n")),
        "{ex:#?}"
    );
    assert!(has_problem(&ex, "header line without colon"), "{ex:#?}");
    assert_other_paths_healthy(&lab).await;
}

#[tokio::test]
async fn backend_space_before_colon_is_sent_in_an_otherwise_fine_answer() {
    let lab = faulty(Fault::SpaceBeforeColon).await;
    let ex = probe_at(lab.addr(), "/fault", &probe_bounds()).await;
    assert_eq!(
        (&ex.end, ex.status()),
        (&ConnEnd::Complete, Some(200)),
        "{ex:#?}"
    );
    assert!(
        ex.raw_prefix
            .escaped()
            .contains(&format!("\\r\\n{SPACE_BEFORE_COLON_LINE}\\r\\n")),
        "{ex:#?}"
    );
    assert!(has_problem(&ex, "whitespace before colon"), "{ex:#?}");
}

#[tokio::test]
async fn backend_short_body_sends_10_of_100_bytes_then_closes() {
    let lab = faulty(Fault::ShortBody).await;
    let ex = probe_at(lab.addr(), "/fault", &probe_bounds()).await;
    assert_eq!(ex.end, ConnEnd::Fin, "{ex:#?}");
    let r = ex.response.as_ref().expect("a response");
    assert_eq!(r.content_length, Some(ANNOUNCED_LENGTH as u64));
    assert_eq!(r.body_bytes, SHORT_BODY.len());
    assert_eq!(r.body_prefix.as_bytes(), SHORT_BODY);
    assert!(has_problem(
        &ex,
        "body shorter than Content-Length (10 of 100 bytes)"
    ));
}

#[tokio::test]
async fn backend_injected_504_has_a_json_body() {
    let lab = faulty(Fault::Status(504)).await;
    let ex = probe_at(lab.addr(), "/fault", &probe_bounds()).await;
    assert_eq!(
        (&ex.end, ex.status()),
        (&ConnEnd::Complete, Some(504)),
        "{ex:#?}"
    );
    let r = ex.response.as_ref().unwrap();
    assert_eq!(r.body_prefix, r#"{"error":"injected status 504"}"#);
    assert_eq!(r.header("Server"), Some("lbprobe-lab"));
    assert!(r.problems.is_empty(), "{r:#?}");
}

#[tokio::test]
async fn backend_never_answer_holds_the_connection_until_the_client_leaves() {
    let lab = faulty(Fault::NeverAnswer).await;
    let ex = probe_at(lab.addr(), "/fault", &impatient_bounds()).await;
    assert_eq!((&ex.end, ex.bytes_in), (&ConnEnd::Timeout, 0), "{ex:#?}");
    assert_eq!(lab.requests_seen(), 1, "the request was read");
    assert_lets_go(&lab).await;
    assert_other_paths_healthy(&lab).await;
}

#[tokio::test]
async fn backend_delay_longer_than_the_clients_patience_lets_go() {
    let lab = faulty(Fault::Delay(Duration::from_secs(120))).await;
    let ex = probe_at(lab.addr(), "/fault", &impatient_bounds()).await;
    assert_eq!((&ex.end, ex.bytes_in), (&ConnEnd::Timeout, 0), "{ex:#?}");
    assert_lets_go(&lab).await;
    assert_other_paths_healthy(&lab).await;
}

#[tokio::test]
async fn backend_delay_composes_with_a_write_fault() {
    let lab = backend(
        BackendConfig::default()
            .fault(FaultRule::all(Fault::Delay(Duration::from_millis(50))))
            .fault(FaultRule::all(Fault::Status(503)))
            .fault(FaultRule::all(Fault::ShortBody)),
    )
    .await;
    let ex = probe_at(lab.addr(), "/any", &probe_bounds()).await;
    assert_eq!(
        (&ex.end, ex.status()),
        (&ConnEnd::Fin, Some(503)),
        "{ex:#?}"
    );
    assert_eq!(ex.response.unwrap().body_bytes, SHORT_BODY.len());
}

#[tokio::test]
async fn backend_huge_header_is_one_line_of_the_asked_size() {
    let size = 100_000;
    let lab = faulty(Fault::HugeHeader(size)).await;
    let bounds = Bounds {
        max_response_bytes: 1024 * 1024,
        parse: ParseLimits {
            max_head_bytes: 256 * 1024,
            ..ParseLimits::default()
        },
        ..probe_bounds()
    };
    let ex = probe_at(lab.addr(), "/fault", &bounds).await;
    assert_eq!(
        (&ex.end, ex.status()),
        (&ConnEnd::Complete, Some(200)),
        "{ex:#?}"
    );
    let r = ex.response.as_ref().unwrap();
    let huge = r.header("X-Lab-Huge").expect("the huge header");
    assert_eq!("X-Lab-Huge: ".len() + huge.len(), size);
    assert_eq!(r.header("Server"), Some("lbprobe-lab"));
}

#[tokio::test]
async fn backend_endless_headers_stop_when_the_client_leaves() {
    let lab = faulty(Fault::EndlessHeaders).await;
    let ex = probe_at(lab.addr(), "/fault", &probe_bounds()).await;
    assert_eq!(ex.end, ConnEnd::SizeBound, "{ex:#?}");
    assert_eq!(ex.status(), Some(200));
    assert!(has_problem(&ex, "head larger than"), "{ex:#?}");
    assert_lets_go(&lab).await;
}

#[tokio::test]
async fn backend_endless_body_stops_when_the_client_leaves() {
    let lab = faulty(Fault::EndlessBody).await;
    let ex = probe_at(lab.addr(), "/fault", &probe_bounds()).await;
    assert_eq!(ex.end, ConnEnd::SizeBound, "{ex:#?}");
    let r = ex.response.as_ref().unwrap();
    assert!(r.chunked && !r.complete, "{r:#?}");
    assert!(has_problem(&ex, "chunked body not terminated"), "{ex:#?}");
    assert_lets_go(&lab).await;
}

#[tokio::test]
async fn backend_trickle_sends_the_answer_a_byte_at_a_time() {
    let lab = faulty(Fault::Trickle {
        byte_every: Duration::from_millis(100),
    })
    .await;
    let bounds = Bounds {
        total_timeout: Duration::from_secs(1),
        ..probe_bounds()
    };
    let ex = probe_at(lab.addr(), "/fault", &bounds).await;
    assert_eq!(ex.end, ConnEnd::Timeout, "{ex:#?}");
    // Some of the answer came, in order, and far from all of it (at one byte per 100 ms, a
    // second cannot bring 20).
    assert!(ex.bytes_in > 0 && ex.bytes_in < 20, "{ex:#?}");
    assert!(
        "HTTP/1.1 200 OK\\r\\nServer: lbprobe-lab".starts_with(&ex.raw_prefix.escaped()),
        "{ex:#?}"
    );
    assert_lets_go(&lab).await;
}

#[tokio::test]
async fn backend_raw_fault_sends_the_bytes_verbatim() {
    let lab = faulty(Fault::Raw(b"\x00\xffnot http\r\n".to_vec())).await;
    let ex = probe_at(lab.addr(), "/fault", &probe_bounds()).await;
    assert_eq!(ex.end, ConnEnd::Fin, "{ex:#?}");
    assert!(ex.response.is_none());
    assert_eq!(ex.raw_prefix.escaped(), "\\x00\\xffnot http\\r\\n");
}

/// Fills the accept queue of a socket that never accepts; a further connect must time out
/// (the SYN is dropped), not be refused (RST) — the "SYNs go nowhere" of a DROP rule.
#[tokio::test]
async fn unaccepting_listener_times_out_connects_instead_of_refusing() {
    let silent = UnacceptingListener::start().expect("unaccepting listener");
    assert!(silent.queued() >= 1);
    let bounds = Bounds {
        connect_timeout: Duration::from_millis(300),
        ..probe_bounds()
    };
    let ex = probe_at(silent.addr(), "/", &bounds).await;
    assert_eq!(ex.end, ConnEnd::ConnectTimeout, "{ex:#?}");
    assert!(ex.end.never_connected());
    // The same with a bare connect, independent of lbprobe's transport.
    let bare = tokio::time::timeout(
        Duration::from_millis(300),
        TcpStream::connect(silent.addr()),
    )
    .await;
    assert!(bare.is_err(), "connect did not time out: {bare:?}");
}

// ---- faults behind nginx ----
//
// What nginx 1.22 makes of each backend fault: the statuses the classifier builds on. The
// client's view (what lbprobe sees at the listener) and nginx's own record (access log status
// and upstream_status, error log reason) are both pinned.

/// Short upstream timeouts so the timeout rows stay fast; no temp file, so an endless body is
/// relayed only as fast as the client reads it instead of filling the disk.
const FAULT_PROXY_EXTRA: &str =
    "proxy_read_timeout 2s; proxy_connect_timeout 1s; proxy_max_temp_file_size 0;";

/// Waits (bounded) for the error-log line about `path`.
fn error_log_line(nginx: &Nginx, path: &str) -> String {
    let needle = format!("request: \"GET {path} HTTP/1.1\"");
    for _ in 0..250 {
        if let Some(line) = nginx.error_log().lines().find(|l| l.contains(&needle)) {
            return line.to_string();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("no error-log line for {path}; log:\n{}", nginx.error_log());
}

/// One fault behind nginx: what the client gets and what nginx logs.
struct Row {
    path: &'static str,
    fault: Fault,
    /// The status the client parses from nginx's answer (`Some(0)`: a status line without a
    /// number, relayed as is).
    client_status: Option<u16>,
    client_end: ConnEnd,
    /// `status=... upstream_status=...` in the access log.
    logged: &'static str,
    /// A phrase of the error-log line for the request; `None`: nginx logs no error.
    error: Option<&'static str>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_turns_backend_faults_into_its_statuses() {
    let rows = [
        Row {
            path: "/close-after-headers",
            fault: Fault::CloseAfterHeaders,
            // nginx has already sent the backend's head: the client gets a truncated 200.
            client_status: Some(200),
            client_end: ConnEnd::Fin,
            logged: "status=200 upstream_status=200",
            error: Some("upstream prematurely closed connection while reading upstream"),
        },
        Row {
            path: "/short-body",
            fault: Fault::ShortBody,
            client_status: Some(200),
            client_end: ConnEnd::Fin,
            logged: "status=200 upstream_status=200",
            error: Some("upstream prematurely closed connection while reading upstream"),
        },
        Row {
            path: "/close-without-response",
            fault: Fault::CloseWithoutResponse,
            client_status: Some(502),
            client_end: ConnEnd::Complete,
            logged: "status=502 upstream_status=502",
            error: Some(
                "upstream prematurely closed connection while reading response header from \
                 upstream",
            ),
        },
        Row {
            path: "/reset-without-response",
            fault: Fault::ResetWithoutResponse,
            client_status: Some(502),
            client_end: ConnEnd::Complete,
            logged: "status=502 upstream_status=502",
            error: Some(
                "(104: Connection reset by peer) while reading response header from upstream",
            ),
        },
        Row {
            path: "/malformed-status-line",
            fault: Fault::MalformedStatusLine,
            // Not a 502: nginx takes a status line it cannot read for an HTTP/0.9 answer and
            // relays the bytes as they are, logging status 009.
            client_status: Some(0),
            client_end: ConnEnd::Complete,
            logged: "status=009 upstream_status=200",
            error: Some("upstream sent no valid HTTP/1.0 header"),
        },
        Row {
            path: "/garbage",
            fault: Fault::Raw(b"\x00\xffgarbage\r\n".to_vec()),
            client_status: None,
            client_end: ConnEnd::Fin,
            logged: "status=009 upstream_status=200",
            error: Some("upstream sent no valid HTTP/1.0 header"),
        },
        Row {
            path: "/malformed-header",
            fault: Fault::MalformedHeader,
            // Not a 502 either: nginx reads a header line without a colon as a header with an
            // empty value and passes it on.
            client_status: Some(200),
            client_end: ConnEnd::Complete,
            logged: "status=200 upstream_status=200",
            error: None,
        },
        Row {
            path: "/space-before-colon",
            fault: Fault::SpaceBeforeColon,
            client_status: Some(502),
            client_end: ConnEnd::Complete,
            logged: "status=502 upstream_status=502",
            error: Some("upstream sent invalid header"),
        },
        Row {
            path: "/huge-header",
            fault: Fault::HugeHeader(64 * 1024),
            client_status: Some(502),
            client_end: ConnEnd::Complete,
            logged: "status=502 upstream_status=502",
            error: Some("upstream sent too big header"),
        },
        Row {
            path: "/endless-headers",
            fault: Fault::EndlessHeaders,
            client_status: Some(502),
            client_end: ConnEnd::Complete,
            logged: "status=502 upstream_status=502",
            error: Some("upstream sent too big header"),
        },
        Row {
            path: "/endless-body",
            fault: Fault::EndlessBody,
            // nginx relays the head and streams the body: only the client's bound stops it.
            client_status: Some(200),
            client_end: ConnEnd::SizeBound,
            logged: "status=200 upstream_status=200",
            error: None,
        },
        Row {
            path: "/status-504",
            fault: Fault::Status(504),
            // Passed through with the backend's body; nginx puts its own Server header on it.
            client_status: Some(504),
            client_end: ConnEnd::Complete,
            logged: "status=504 upstream_status=504",
            error: None,
        },
        Row {
            path: "/trickle",
            fault: Fault::Trickle {
                byte_every: Duration::from_millis(2),
            },
            // Each byte comes well within proxy_read_timeout: nginx waits and answers 200.
            client_status: Some(200),
            client_end: ConnEnd::Complete,
            logged: "status=200 upstream_status=200",
            error: None,
        },
    ];
    let mut config = BackendConfig::default();
    for row in &rows {
        config = config.fault(FaultRule::path(row.path, row.fault.clone()));
    }
    let lab = backend(config).await;
    let nginx = nginx(&NginxSpec::one(
        NginxServer::proxy(lab.url()).extra(FAULT_PROXY_EXTRA),
    ));
    let at_nginx = probe_bounds();
    for row in &rows {
        let endpoint = Endpoint::plain("127.0.0.1", nginx.port(0));
        // get() asks for Connection: close, so that nginx ends the connection after an answer
        // without framing (an HTTP/0.9 relay) instead of keeping it alive for the next request.
        let ex = transport::exchange(&endpoint, &get(row.path), &at_nginx).await;
        let context = format!("{}: {ex:#?}\nerror log:\n{}", row.path, nginx.error_log());
        assert_eq!(ex.status(), row.client_status, "{context}");
        assert_eq!(ex.end, row.client_end, "{context}");
        assert!(ex.bytes_in <= at_nginx.max_response_bytes, "{}", row.path);
        let line = access_log_line(&nginx, &format!("GET {} ", row.path));
        assert!(line.contains(row.logged), "{}: {line}", row.path);
        match row.error {
            Some(phrase) => {
                let error = error_log_line(&nginx, row.path);
                assert!(error.contains(phrase), "{}: {error}", row.path);
            }
            None => assert!(
                !nginx
                    .error_log()
                    .contains(&format!("request: \"GET {} HTTP/1.1\"", row.path)),
                "{}: {}",
                row.path,
                nginx.error_log()
            ),
        }
        // Details the classifier will lean on.
        let response = ex.response.as_ref();
        match row.path {
            "/close-after-headers" | "/short-body" => {
                let r = response.unwrap();
                assert_eq!(r.content_length, Some(ANNOUNCED_LENGTH as u64));
                assert!(r
                    .problems
                    .iter()
                    .any(|p| p.contains("shorter than Content-Length")));
            }
            "/malformed-status-line" => {
                assert!(
                    ex.raw_prefix.escaped().starts_with(MALFORMED_STATUS_LINE),
                    "{context}"
                )
            }
            "/garbage" => assert_eq!(ex.raw_prefix.escaped(), "\\x00\\xffgarbage\\r\\n"),
            "/malformed-header" => assert_eq!(
                response.unwrap().header(MALFORMED_HEADER_LINE),
                Some(""),
                "{context}"
            ),
            "/status-504" => {
                let r = response.unwrap();
                assert_eq!(r.body_prefix, r#"{"error":"injected status 504"}"#);
                assert!(
                    r.header("Server").unwrap().starts_with("nginx"),
                    "{context}"
                );
            }
            "/close-without-response" | "/reset-without-response" | "/huge-header" => {
                assert!(
                    response.unwrap().body_prefix.text().contains("nginx"),
                    "{context}"
                )
            }
            _ => {}
        }
    }
    assert_lets_go(&lab).await;
}

/// The timeout rows, concurrently: a backend that never answers or answers after
/// proxy_read_timeout, and an upstream whose SYNs go nowhere (proxy_connect_timeout), all end
/// in nginx's own 504 — told apart only by the error log's "while ..." part.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_answers_504_to_a_silent_a_slow_and_an_unreachable_backend() {
    let lab = backend(
        BackendConfig::default()
            .fault(FaultRule::path("/never-answer", Fault::NeverAnswer))
            .fault(FaultRule::path(
                "/slow",
                Fault::Delay(Duration::from_secs(60)),
            )),
    )
    .await;
    let silent = UnacceptingListener::start().expect("unaccepting listener");
    let nginx = nginx(&NginxSpec {
        cert: None,
        servers: vec![
            NginxServer::proxy(lab.url()).extra(FAULT_PROXY_EXTRA),
            NginxServer::proxy(silent.url()).extra(FAULT_PROXY_EXTRA),
        ],
        http_extra: String::new(),
    });
    let at = |port: u16, path: &'static str| {
        let endpoint = Endpoint::plain("127.0.0.1", port);
        async move { transport::exchange(&endpoint, &get(path), &probe_bounds()).await }
    };
    let (never, slow, unreachable) = tokio::join!(
        at(nginx.port(0), "/never-answer"),
        at(nginx.port(0), "/slow"),
        at(nginx.port(1), "/unreachable"),
    );
    for (path, ex, reason) in [
        (
            "/never-answer",
            &never,
            "upstream timed out (110: Connection timed out) while reading response header",
        ),
        (
            "/slow",
            &slow,
            "upstream timed out (110: Connection timed out) while reading response header",
        ),
        (
            "/unreachable",
            &unreachable,
            "upstream timed out (110: Connection timed out) while connecting to upstream",
        ),
    ] {
        assert_eq!(
            (&ex.end, ex.status()),
            (&ConnEnd::Complete, Some(504)),
            "{path}: {ex:#?}"
        );
        assert!(ex
            .response
            .as_ref()
            .unwrap()
            .body_prefix
            .text()
            .contains("nginx"));
        let line = access_log_line(&nginx, &format!("GET {path} "));
        assert!(line.contains("status=504 upstream_status=504"), "{line}");
        let error = error_log_line(&nginx, path);
        assert!(error.contains(reason), "{path}: {error}");
    }
    // nginx closed its upstream connections at its timeout: the backend let them go.
    assert_lets_go(&lab).await;
}
