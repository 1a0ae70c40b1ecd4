//! `lbprobe logs` on what real nginx and HAProxy write: faults set up on purpose behind each
//! (the truth known per request), one request per fault, then the classifier on the access log
//! the server wrote, with the default profile. Every line whose fields carry the signal is
//! read right; the others are named as undecided with what would tell; with nginx's error.log
//! joined, they settle. Fails (never skips) without nginx or HAProxy.
//!
//! `LBPROBE_KEEP_LOGS=DIR` copies the logs the servers wrote into DIR, for a look by hand.

#[path = "support/sql.rs"]
#[allow(
    dead_code,
    reason = "the Trino parse is tests/logs_sql.rs's; this file runs the engines"
)]
mod sql_engines;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use lbprobe::lab::{
    BackendConfig, Fault, FaultRule, Haproxy, HaproxyFrontend, HaproxySpec, LabBackend, Nginx,
    NginxServer, NginxSpec, UnacceptingListener,
};
use lbprobe::logs::classify::{classify, Facts, Timeouts};
use lbprobe::logs::errorlog::ErrorIndex;
use lbprobe::logs::{self, Input, LogFormat, Options};
use lbprobe::profile::Profile;

/// Every field that tells nginx's own failures from the backend's answers.
const RICH: &str = "$remote_addr - [$time_local] \"$request\" $status $body_bytes_sent \
     rt=$request_time uct=\"$upstream_connect_time\" uht=\"$upstream_header_time\" \
     urt=\"$upstream_response_time\" us=\"$upstream_status\" ua=\"$upstream_addr\" \
     ubr=\"$upstream_bytes_received\" rl=$request_length scheme=$scheme conn=$connection";

/// `combined` plus what people usually add: the upstream status and times, nothing that says
/// who wrote the status.
const PLAIN: &str = "$remote_addr - $remote_user [$time_local] \"$request\" $status \
     $body_bytes_sent \"$http_referer\" \"$http_user_agent\" \"$upstream_status\" \
     $request_time $upstream_response_time";

/// Each line the classifier can only narrow down, by its candidates.
const NGINX_400: &str =
    "400.malformed-request or 400.header-too-large or 400.http-to-https-listener";
const NGINX_502_RICH: &str = "502.malformed-backend-response or 500.backend-closed-early";
const NGINX_502_PLAIN: &str = "502.passthrough or 502.backend-unreachable or \
     502.malformed-backend-response or 500.backend-closed-early or 502.all-backends-unhealthy";
const NGINX_504_PLAIN: &str =
    "504.connect-timeout or 504.backend-slow or 504.backend-dependency-timeout";

/// One fault behind nginx and what each log makes of it.
struct NginxCase {
    /// The request's path: what the lines are keyed by.
    path: &'static str,
    /// What was done on purpose.
    truth: &'static str,
    /// The cause (or `A or B` when undecided, `-` for none) from the rich format alone.
    rich: &'static str,
    /// … from the plain format alone.
    plain: &'static str,
    /// … from either format with nginx's error.log (at info) joined: the truth's cause.
    joined: &'static str,
}

const NGINX_CASES: &[NginxCase] = &[
    NginxCase {
        path: "/ok",
        truth: "a healthy 200",
        rich: "-",
        plain: "-",
        joined: "-",
    },
    NginxCase {
        path: "/connect-timeout",
        truth: "the backend's address drops SYNs (a full accept queue); proxy_connect_timeout 1s",
        rich: "504.connect-timeout",
        plain: NGINX_504_PLAIN,
        joined: "504.connect-timeout",
    },
    NginxCase {
        path: "/read-timeout",
        truth: "the backend never answers; proxy_read_timeout 1s",
        rich: "504.backend-slow",
        plain: NGINX_504_PLAIN,
        joined: "504.backend-slow",
    },
    NginxCase {
        path: "/refused",
        truth: "nothing listens on the backend's port",
        rich: "502.backend-unreachable",
        plain: NGINX_502_PLAIN,
        joined: "502.backend-unreachable",
    },
    NginxCase {
        path: "/reset",
        truth: "the backend resets the connection without a byte",
        rich: "500.backend-closed-early",
        plain: NGINX_502_PLAIN,
        joined: "500.backend-closed-early",
    },
    NginxCase {
        path: "/no-response",
        truth: "the backend closes without a byte",
        rich: "500.backend-closed-early",
        plain: NGINX_502_PLAIN,
        joined: "500.backend-closed-early",
    },
    NginxCase {
        path: "/half-header",
        truth: "the backend closes in the middle of its header",
        rich: NGINX_502_RICH,
        plain: NGINX_502_PLAIN,
        joined: "500.backend-closed-early",
    },
    NginxCase {
        path: "/invalid-header",
        truth: "the backend sends a header name with a NUL byte",
        rich: NGINX_502_RICH,
        plain: NGINX_502_PLAIN,
        joined: "502.malformed-backend-response",
    },
    NginxCase {
        path: "/all-down",
        truth: "every server of the upstream group is marked down",
        rich: "502.all-backends-unhealthy",
        plain: NGINX_502_PLAIN,
        joined: "502.all-backends-unhealthy",
    },
    NginxCase {
        path: "/own-500",
        truth: "the backend answers 500",
        rich: "500.backend-error",
        plain: "500.backend-error",
        joined: "500.backend-error",
    },
    NginxCase {
        path: "/own-502",
        truth: "the backend answers 502",
        rich: "502.passthrough",
        plain: NGINX_502_PLAIN,
        joined: "502.passthrough",
    },
    NginxCase {
        path: "/own-503",
        truth: "the backend answers 503",
        rich: "503.backend-error",
        plain: "503.backend-error",
        joined: "503.backend-error",
    },
    NginxCase {
        path: "/own-504",
        truth: "the backend answers 504",
        rich: "504.backend-dependency-timeout",
        plain: NGINX_504_PLAIN,
        joined: "504.backend-dependency-timeout",
    },
    NginxCase {
        path: "/rate-limited/1",
        truth: "the first request under limit_req 1r/m",
        rich: "-",
        plain: "-",
        joined: "-",
    },
    NginxCase {
        path: "/rate-limited/2",
        truth: "the second request under limit_req 1r/m",
        rich: "503.rate-limited",
        plain: "503.rate-limited",
        joined: "503.rate-limited",
    },
    NginxCase {
        path: "/big-header",
        truth: "a 9 KB header line (large_client_header_buffers 4 8k)",
        rich: NGINX_400,
        plain: NGINX_400,
        joined: "400.header-too-large",
    },
    NginxCase {
        path: "/plain-to-tls",
        truth: "plain HTTP to nginx's ssl port",
        rich: NGINX_400,
        plain: NGINX_400,
        joined: "400.http-to-https-listener",
    },
    NginxCase {
        path: "/bad",
        truth: "a request line of four words",
        rich: "400.malformed-request",
        plain: NGINX_400,
        joined: "400.malformed-request",
    },
    NginxCase {
        path: "/long-uri",
        truth: "a 9 KB URI",
        rich: "414.uri-too-long",
        plain: "414.uri-too-long",
        joined: "414.uri-too-long",
    },
    NginxCase {
        path: "/trace",
        truth: "a TRACE request",
        rich: "405.trace-unsupported",
        plain: "405.trace-unsupported",
        joined: "405.trace-unsupported",
    },
    NginxCase {
        path: "/slow-client",
        truth: "a request head never finished; client_header_timeout 1s",
        rich: "408.partial-request",
        plain: "408.partial-request",
        joined: "408.partial-request",
    },
    NginxCase {
        path: "/client-abort",
        truth: "the client leaves after 0.3 s while the backend takes 3 s",
        rich: "499.backend-slow",
        plain: "499.backend-slow",
        joined: "499.backend-slow",
    },
];

/// Sends `bytes` and reads the answer (bounded); `leave_after`: close without reading.
/// Returns the client's local port, which HAProxy logs for requests it could not read.
fn send(addr: SocketAddr, bytes: &[u8], leave_after: Option<Duration>) -> u16 {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).expect("connect");
    let port = s.local_addr().expect("local address").port();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
    // A server that refuses a request early may close before it is all written.
    let _ = s.write_all(bytes);
    match leave_after {
        Some(d) => std::thread::sleep(d),
        None => {
            let mut sink = Vec::new();
            let _ = s.take(1 << 20).read_to_end(&mut sink);
        }
    }
    port
}

fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").into_bytes()
}

fn big_header(path: &str, bytes: usize) -> Vec<u8> {
    format!(
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nX-Big: {}\r\nConnection: close\r\n\r\n",
        "a".repeat(bytes)
    )
    .into_bytes()
}

/// A backend with one fault per path.
async fn faulty_backend() -> LabBackend {
    LabBackend::start(
        BackendConfig::default()
            .fault(FaultRule::path("/read-timeout", Fault::NeverAnswer))
            .fault(FaultRule::path(
                "/invalid-header",
                Fault::Raw(
                    b"HTTP/1.1 200 OK\r\nX-Bad\0Name: v\r\nContent-Length: 0\r\n\r\n".to_vec(),
                ),
            ))
            .fault(FaultRule::path(
                "/invalid-status",
                Fault::MalformedStatusLine,
            ))
            .fault(FaultRule::path(
                "/half-header",
                Fault::Raw(b"HTTP/1.1 200 OK\r\nContent-Type: te".to_vec()),
            ))
            .fault(FaultRule::path("/no-response", Fault::CloseWithoutResponse))
            .fault(FaultRule::path("/reset", Fault::ResetWithoutResponse))
            .fault(FaultRule::path("/own-500", Fault::Status(500)))
            .fault(FaultRule::path("/own-502", Fault::Status(502)))
            .fault(FaultRule::path("/own-503", Fault::Status(503)))
            .fault(FaultRule::path("/own-504", Fault::Status(504)))
            .fault(FaultRule::path(
                "/client-abort",
                Fault::Delay(Duration::from_secs(3)),
            )),
    )
    .await
    .expect("lab backend")
}

/// The cause a classification names, `A or B` when undecided, `-` for none.
fn label(c: &lbprobe::logs::classify::Classification) -> String {
    c.cause
        .or(c.either.map(|e| e.id))
        .unwrap_or("-")
        .to_string()
}

/// Every line of `log`, classified as `lbprobe logs` does, keyed by what `key` makes of it.
fn classify_log(
    format: &LogFormat,
    timeouts: &Timeouts,
    log: &str,
    errors: Option<&ErrorIndex>,
    key: impl Fn(&lbprobe::logs::record::Record<'_>, &str) -> String,
) -> BTreeMap<String, (String, String)> {
    let mut out = BTreeMap::new();
    for line in log.lines() {
        let rec = format
            .parse_line(line.as_bytes(), false)
            .unwrap_or_else(|e| {
                panic!(
                    "a line nginx or HAProxy wrote does not parse: {}: {line}",
                    e.message
                )
            });
        let mut f = Facts::of(&rec);
        if let Some(ix) = errors {
            f.join(ix.join(&rec, rec.status));
        }
        let got = label(&classify(&f, timeouts));
        out.insert(key(&rec, line), (got, line.to_string()));
    }
    out
}

/// The request's path, first segment only (the long URI's is /long-uri).
fn path_key(rec: &lbprobe::logs::record::Record<'_>, _line: &str) -> String {
    let uri = String::from_utf8_lossy(rec.uri().unwrap_or(b"?")).into_owned();
    match uri.find('/').and_then(|_| uri[1..].find('/')) {
        Some(second) if !uri.starts_with("/rate-limited") => uri[..second + 1].to_string(),
        _ => uri,
    }
}

/// Copies `files` into `LBPROBE_KEEP_LOGS`, when set.
fn keep(files: &[(&str, &Path)]) {
    let Some(dir) = std::env::var_os("LBPROBE_KEEP_LOGS") else {
        return;
    };
    let dir = PathBuf::from(dir);
    std::fs::create_dir_all(&dir).unwrap();
    for (name, path) in files {
        std::fs::copy(path, dir.join(name)).unwrap();
    }
}

/// Mismatches of `got` against `want(case)`, one line each, for a readable failure.
fn mismatches<'a>(
    cases: impl Iterator<Item = (&'a str, &'a str, &'a str)>,
    got: &BTreeMap<String, (String, String)>,
) -> Vec<String> {
    let mut bad = Vec::new();
    for (key, truth, want) in cases {
        match got.get(key) {
            None => bad.push(format!("{key} ({truth}): no line")),
            Some((g, line)) if g != want => {
                bad.push(format!("{key} ({truth}): want {want}, got {g}\n    {line}"))
            }
            Some(_) => {}
        }
    }
    bad
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_nginx_logs_read_right_and_name_what_they_cannot_tell() {
    let backend = faulty_backend().await;
    let silent = UnacceptingListener::start().expect("an address that drops SYNs");
    // A port nothing listens on: taken free, then let go.
    let closed = lbprobe::lab::free_port().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str| dir.path().join(name);
    let server = format!(
        "access_log {} rich; access_log {} plain; error_log {} info; error_log {} warn; \
         proxy_read_timeout 1s; proxy_connect_timeout 1s; client_header_timeout 1s;",
        file("rich.log").display(),
        file("plain.log").display(),
        file("error-info.log").display(),
        file("error-warn.log").display(),
    );
    let spec = NginxSpec {
        cert: None,
        servers: vec![
            NginxServer::proxy(backend.url()).extra(format!(
                "{server} \
                 location /connect-timeout {{ proxy_pass {silent}; }} \
                 location /refused {{ proxy_pass http://127.0.0.1:{closed}; }} \
                 location /all-down {{ proxy_pass http://dead; }} \
                 location /rate-limited {{ limit_req zone=one nodelay; proxy_pass {backend}; }}",
                silent = silent.url(),
                backend = backend.url(),
            )),
            NginxServer::proxy(backend.url())
                .tls(true)
                .extra(server.clone()),
        ],
        http_extra: format!(
            "log_format rich '{RICH}'; log_format plain '{PLAIN}'; \
             upstream dead {{ server 127.0.0.1:{closed} down; }} \
             limit_req_zone $binary_remote_addr zone=one:1m rate=1r/m;"
        ),
    };
    let nginx = Nginx::start(&spec).unwrap_or_else(|e| panic!("this test needs a real nginx: {e}"));
    let (plain_port, tls_port) = (nginx.addr(0), nginx.addr(1));
    tokio::task::spawn_blocking(move || {
        for p in [
            "/ok",
            "/connect-timeout",
            "/read-timeout",
            "/refused",
            "/reset",
            "/no-response",
            "/half-header",
            "/invalid-header",
            "/all-down",
            "/own-500",
            "/own-502",
            "/own-503",
            "/own-504",
            "/rate-limited/1",
            "/rate-limited/2",
        ] {
            send(plain_port, &get(p), None);
        }
        send(plain_port, &big_header("/big-header", 9 * 1024), None);
        send(
            plain_port,
            &get(&format!("/long-uri/{}", "u".repeat(9 * 1024))),
            None,
        );
        send(
            plain_port,
            b"GET /bad request HTTP/1.1\r\nHost: localhost\r\n\r\n",
            None,
        );
        send(
            plain_port,
            b"TRACE /trace HTTP/1.1\r\nHost: localhost\r\n\r\n",
            None,
        );
        send(
            plain_port,
            b"GET /slow-client HTTP/1.1\r\nHost: localhost\r\n",
            None,
        );
        send(
            plain_port,
            &get("/client-abort"),
            Some(Duration::from_millis(300)),
        );
        send(tls_port, &get("/plain-to-tls"), None);
    })
    .await
    .unwrap();
    // nginx logs the client's abort when it notices it, and the 499 line after that.
    let rich_log = || std::fs::read_to_string(file("rich.log")).unwrap_or_default();
    for _ in 0..100 {
        if rich_log().lines().count() >= NGINX_CASES.len() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    keep(&[
        ("nginx-rich.log", &file("rich.log")),
        ("nginx-plain.log", &file("plain.log")),
        ("nginx-error-info.log", &file("error-info.log")),
        ("nginx-error-warn.log", &file("error-warn.log")),
    ]);

    // The default profile: `auto`, which the format resolves to nginx's documentation.
    let rich = LogFormat::parse(RICH).unwrap();
    let plain = LogFormat::parse(PLAIN).unwrap();
    let profile = Profile::auto().resolve(Ok(rich.listener()));
    assert_eq!(profile.name, "nginx");
    let timeouts = Timeouts::of(&profile);
    let read = |name: &str| std::fs::read_to_string(file(name)).unwrap();
    let errors = |name: &str| {
        logs::read_error_log(&Input::File(file(name)), &rich).expect("nginx's error.log reads")
    };
    let info = errors("error-info.log");
    let warn = errors("error-warn.log");
    assert!(info.client_side > 0, "{}", read("error-info.log"));
    assert_eq!(warn.client_side, 0, "{}", read("error-warn.log"));

    let mut failures = Vec::new();
    // Each format alone, then with the error.log: the name, format, log, error.log and the
    // column of NGINX_CASES that holds the truth for it.
    type Run<'a> = (
        &'a str,
        &'a LogFormat,
        &'a str,
        Option<&'a ErrorIndex>,
        fn(&NginxCase) -> &'static str,
    );
    let runs: [Run; 4] = [
        ("rich", &rich, "rich.log", None, |c| c.rich),
        ("plain", &plain, "plain.log", None, |c| c.plain),
        ("rich + error.log", &rich, "rich.log", Some(&info), |c| {
            c.joined
        }),
        ("plain + error.log", &plain, "plain.log", Some(&info), |c| {
            c.joined
        }),
    ];
    for (name, format, log, errors, want) in runs {
        let got = classify_log(format, &timeouts, &read(log), errors, path_key);
        assert_eq!(got.len(), NGINX_CASES.len(), "{name}: {got:#?}");
        for m in mismatches(NGINX_CASES.iter().map(|c| (c.path, c.truth, want(c))), &got) {
            failures.push(format!("{name}: {m}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{}\n--- error.log ---\n{}",
        failures.join("\n"),
        read("error-info.log")
    );

    // An error.log at warn has the upstream reasons but none of the client's: those lines
    // stay undecided, and the report says why.
    let got = classify_log(&rich, &timeouts, &read("rich.log"), Some(&warn), path_key);
    for (path, want) in [
        ("/half-header", "500.backend-closed-early"),
        ("/invalid-header", "502.malformed-backend-response"),
        ("/big-header", NGINX_400),
        ("/plain-to-tls", NGINX_400),
    ] {
        assert_eq!(
            got[path].0, want,
            "{path} with error_log warn: {}",
            got[path].1
        );
    }

    // The binary: the same verdicts end to end, the undecided lines with what would tell, the
    // profile it chose and why, the timeouts it measured against the documented ones.
    let report = |log: &str, error_log: Option<&str>| -> serde_json::Value {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_lbprobe"));
        cmd.args(["logs", "--format", "json", "--log-format", RICH])
            .arg(file(log));
        if let Some(e) = error_log {
            cmd.arg("--error-log").arg(file(e));
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let alone = report("rich.log", None);
    assert!(
        alone["profile"]
            .as_str()
            .unwrap()
            .starts_with("nginx (auto: the log is in nginx log_format"),
        "{}",
        alone["profile"]
    );
    let undecided = alone["undecided"].as_array().unwrap();
    let tells: Vec<&str> = undecided
        .iter()
        .map(|u| u["tell"].as_str().unwrap())
        .collect();
    assert!(tells.iter().all(|t| t.contains("error.log")), "{tells:?}");
    let slow = alone["causes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["cause"] == "504.backend-slow")
        .expect("504.backend-slow");
    assert_eq!(
        slow["timeout"],
        "this listener gave up after 1.0 s; the nginx profile documents 60 s (response timeout)"
    );
    assert!(
        alone["notes"].to_string().contains("--error-log"),
        "{}",
        alone["notes"]
    );
    let joined = report("rich.log", Some("error-info.log"));
    assert!(
        joined["undecided"].as_array().unwrap().is_empty(),
        "{}",
        joined["undecided"]
    );
    // 15 reasons; the 4 lines the rich format could not tell settle (the 2 undecided 502s,
    // the 9 KB header and plain HTTP on the TLS port).
    assert_eq!(
        joined["error_log"]["decided"], 15,
        "{}",
        joined["error_log"]
    );
    assert_eq!(joined["error_log"]["settled"], 4, "{}", joined["error_log"]);
    let at_warn = report("rich.log", Some("error-warn.log"));
    assert!(
        at_warn["notes"].to_string().contains("error_log … info"),
        "{}",
        at_warn["notes"]
    );

    // The classifier as SQL on what real nginx wrote: DuckDB, ClickHouse's engine (chdb) and
    // PostgreSQL count each cause as the native classifier does (tests/logs_sql.rs has the
    // fixtures; the Trino query is parsed there).
    for (format, log) in [(RICH, "rich.log"), (PLAIN, "plain.log")] {
        let path = file(log);
        let want = sql_engines::native(format, &[&path]);
        assert!(want.len() >= 8, "{log}: {want:#?}");
        for engine in [
            sql_engines::Engine::DuckDb,
            sql_engines::Engine::Chdb,
            sql_engines::Engine::Postgres,
        ] {
            let got = sql_engines::sql(engine, format, &[&path]);
            assert_eq!(
                got,
                want,
                "{engine:?} on the {log} nginx wrote:\n{}",
                read(log)
            );
        }
    }
}

/// One fault behind HAProxy and what its log makes of it.
struct HaproxyCase {
    truth: &'static str,
    /// The frontend the request goes to, and the request.
    frontend: usize,
    /// The client closes this long after its request, without reading; 0: it reads the
    /// answer to the end.
    leave_after_ms: u64,
    request: fn() -> Vec<u8>,
    /// The cause (or `A or B`, or `-`) from HAProxy's log with the default profile.
    want: &'static str,
}

const HAPROXY_400: &str = "400.malformed-request or 400.header-too-large";

const HAPROXY_CASES: &[HaproxyCase] = &[
    HaproxyCase {
        truth: "a healthy 200",
        frontend: 0,
        leave_after_ms: 0,
        request: || get("/ok"),
        want: "-",
    },
    HaproxyCase {
        truth: "the backend never answers; timeout server 1s",
        frontend: 0,
        leave_after_ms: 0,
        request: || get("/read-timeout"),
        want: "504.backend-slow",
    },
    HaproxyCase {
        truth: "the backend resets the connection without a byte",
        frontend: 0,
        leave_after_ms: 0,
        request: || get("/reset"),
        want: "500.backend-closed-early",
    },
    HaproxyCase {
        truth: "the backend closes without a byte",
        frontend: 0,
        leave_after_ms: 0,
        request: || get("/no-response"),
        want: "500.backend-closed-early",
    },
    HaproxyCase {
        truth: "the backend closes in the middle of its header",
        frontend: 0,
        leave_after_ms: 0,
        request: || get("/half-header"),
        want: "500.backend-closed-early",
    },
    HaproxyCase {
        truth: "the backend's status line is not HTTP (2OO)",
        frontend: 0,
        leave_after_ms: 0,
        request: || get("/invalid-status"),
        want: "502.malformed-backend-response",
    },
    HaproxyCase {
        truth: "the backend answers 500",
        frontend: 0,
        leave_after_ms: 0,
        request: || get("/own-500"),
        want: "500.backend-error",
    },
    HaproxyCase {
        truth: "the backend answers 502",
        frontend: 0,
        leave_after_ms: 0,
        request: || get("/own-502"),
        want: "502.passthrough",
    },
    HaproxyCase {
        truth: "the backend answers 503",
        frontend: 0,
        leave_after_ms: 0,
        request: || get("/own-503"),
        want: "503.backend-error",
    },
    HaproxyCase {
        truth: "the backend answers 504",
        frontend: 0,
        leave_after_ms: 0,
        request: || get("/own-504"),
        want: "504.backend-dependency-timeout",
    },
    HaproxyCase {
        truth: "an http-request deny rule with deny_status 503",
        frontend: 0,
        leave_after_ms: 0,
        request: || get("/denied"),
        want: "-",
    },
    HaproxyCase {
        truth: "a 17 KB header line (tune.bufsize 16384)",
        frontend: 0,
        leave_after_ms: 0,
        request: || big_header("/big-header", 17 * 1024),
        want: HAPROXY_400,
    },
    HaproxyCase {
        truth: "a 17 KB URI (HAProxy answers 400, not 414)",
        frontend: 0,
        leave_after_ms: 0,
        request: || get(&format!("/long-uri/{}", "u".repeat(17 * 1024))),
        want: HAPROXY_400,
    },
    HaproxyCase {
        truth: "a request line of four words",
        frontend: 0,
        leave_after_ms: 0,
        request: || b"GET /bad request HTTP/1.1\r\nHost: localhost\r\n\r\n".to_vec(),
        want: HAPROXY_400,
    },
    HaproxyCase {
        truth: "a request head never finished; timeout http-request 1s",
        frontend: 0,
        leave_after_ms: 0,
        request: || b"GET /slow-client HTTP/1.1\r\nHost: localhost\r\n".to_vec(),
        want: "408.partial-request",
    },
    HaproxyCase {
        truth: "the server's address drops SYNs; timeout connect 1s",
        frontend: 1,
        leave_after_ms: 0,
        request: || get("/connect-timeout"),
        want: "504.connect-timeout",
    },
    HaproxyCase {
        truth: "nothing listens on the server's port",
        frontend: 2,
        leave_after_ms: 0,
        request: || get("/refused"),
        want: "502.backend-unreachable",
    },
    HaproxyCase {
        truth: "a backend without servers",
        frontend: 3,
        leave_after_ms: 0,
        request: || get("/no-server"),
        want: "503.no-backends",
    },
    HaproxyCase {
        truth: "a backend whose only server is disabled",
        frontend: 4,
        leave_after_ms: 0,
        request: || get("/all-down"),
        want: "503.no-backends",
    },
    HaproxyCase {
        truth: "the client leaves after 300 ms, the server not answered yet (option abortonclose)",
        frontend: 0,
        leave_after_ms: 300,
        request: || get("/read-timeout"),
        want: "499.backend-slow",
    },
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_haproxy_log_reads_right_and_names_what_it_cannot_tell() {
    let backend = faulty_backend().await;
    let silent = UnacceptingListener::start().expect("an address that drops SYNs");
    let closed = lbprobe::lab::free_port().unwrap();
    let spec = HaproxySpec {
        frontends: vec![
            HaproxyFrontend::proxy(backend.url())
                .extra("http-request deny deny_status 503 if { path_beg /denied }"),
            HaproxyFrontend::proxy(silent.url()),
            HaproxyFrontend::proxy(format!("http://127.0.0.1:{closed}")),
            HaproxyFrontend::no_server(),
            HaproxyFrontend::no_server()
                .backend_extra(format!("server s0 {} disabled", backend.addr())),
        ],
        global_extra: String::new(),
        // `option abortonclose` (defaults only: HAProxy 2.6 ignores it in a frontend) makes a
        // client that leaves before the server answers a `400 CH--` line at once.
        defaults_extra: "timeout server 1s\n    timeout connect 1s\n    \
                         timeout http-request 1s\n    retries 0\n    option abortonclose"
            .into(),
    };
    let haproxy =
        Haproxy::start(&spec).unwrap_or_else(|e| panic!("this test needs a real HAProxy: {e}"));
    let addrs: Vec<SocketAddr> = (0..spec.frontends.len()).map(|i| haproxy.addr(i)).collect();
    // The client's port keys each line: HAProxy logs `<BADREQ>` for requests it could not read.
    let ports: Vec<u16> = tokio::task::spawn_blocking(move || {
        HAPROXY_CASES
            .iter()
            .map(|c| {
                let leave = (c.leave_after_ms > 0).then(|| Duration::from_millis(c.leave_after_ms));
                send(addrs[c.frontend], &(c.request)(), leave)
            })
            .collect()
    })
    .await
    .unwrap();
    for _ in 0..100 {
        if haproxy.access_log().lines().count() >= HAPROXY_CASES.len() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("haproxy.log");
    std::fs::write(&log, haproxy.access_log()).unwrap();
    keep(&[("haproxy.log", &log)]);

    let format = LogFormat::parse("haproxy").unwrap();
    let profile = Profile::auto().resolve(Ok(format.listener()));
    assert_eq!(profile.name, "haproxy");
    // HAProxy's client field is `address:port`; the record keeps the address.
    let by_port = classify_log(
        &format,
        &Timeouts::of(&profile),
        &haproxy.access_log(),
        None,
        |_, line| {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix("127.0.0.1:"))
                .unwrap_or("?")
                .to_string()
        },
    );
    let keys: Vec<String> = ports.iter().map(u16::to_string).collect();
    let bad = mismatches(
        HAPROXY_CASES
            .iter()
            .zip(&keys)
            .map(|(c, k)| (k.as_str(), c.truth, c.want)),
        &by_port,
    );
    assert!(
        bad.is_empty(),
        "{}\n--- log ---\n{}",
        bad.join("\n"),
        haproxy.access_log()
    );

    // The whole log through the summary: nothing unparsed, the deny counted as HAProxy's own
    // refusal, not as a missing backend.
    let opts = Options {
        format,
        profile: profile.label(),
        timeouts: Timeouts::of(&profile),
        threads: 1,
        errors: None,
    };
    let s = logs::analyze(&[Input::File(log)], &opts).unwrap();
    assert_eq!(s.bad, 0, "{:?}", s.bad_samples);
    assert_eq!(s.causes["503.no-backends"].count, 2);
    assert_eq!(s.unexplained.get(&503), Some(&1));
    assert_eq!(s.undecided[HAPROXY_400].stats.count, 3);
}
