//! A curl command line, sent by curl itself and by `lbprobe replay`, arrives at a capturing lab
//! backend as the same bytes: header order, casing and framing included. Needs curl
//! (scripts/test.sh installs it).

use std::process::Command;
use std::time::Duration;

use lbprobe::lab::{BackendConfig, LabBackend};
use lbprobe::profile::Profile;
use lbprobe::replay::curl::Defaults;
use lbprobe::replay::run::{execute, quiet, ReplayJob};
use lbprobe::replay::Parsed;
use lbprobe::report::replay::ReplayReport;
use lbprobe::target::{Role, Target};

mod support;
use support::findings::{loopback, start_backend};

/// What the installed curl sends of its own: its User-Agent and the encodings its build
/// decodes (`--compressed`).
fn installed_curl() -> Defaults {
    let out = Command::new("curl")
        .arg("--version")
        .output()
        .unwrap_or_else(|e| panic!("this test needs curl (apt-get install -y curl): {e}"));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let version = text.split_whitespace().nth(1).unwrap().to_string();
    let first = text.lines().next().unwrap_or("").to_ascii_lowercase();
    let mut encodings = vec!["deflate", "gzip"];
    if first.contains("brotli/") {
        encodings.push("br");
    }
    if first.contains("zstd/") {
        encodings.push("zstd");
    }
    Defaults {
        user_agent: format!("curl/{version}"),
        accept_encoding: encodings.join(", "),
    }
}

/// The bytes the backend received for the last request.
fn last_raw(backend: &LabBackend) -> Vec<u8> {
    backend
        .recent_requests()
        .last()
        .map(|r| r.raw.clone())
        .expect("the backend saw no request")
}

fn run_curl(line: &str) {
    // The line as bash runs it (browsers write `$'…'` for bash): its quoting and
    // continuations are the shell's to read.
    let status = Command::new("bash")
        .arg("-c")
        .arg(format!("{line} -s -o /dev/null --max-time 5"))
        .status()
        .unwrap();
    assert!(status.success(), "curl failed: {line}");
}

/// Replays `parsed` once to the lab backend, as its only target, with the installed curl's
/// defaults.
async fn replay_to(backend: &LabBackend, parsed: Parsed, curl: Defaults) -> ReplayReport {
    let job = ReplayJob {
        parsed,
        listener: Target::parse(Role::Listener, &backend.url()).unwrap(),
        backend: None,
        limits: loopback(5, Duration::from_secs(3)),
        profile: Profile::none(),
        mask: Vec::new(),
        shrink: false,
        curl,
    };
    execute(job, quiet(), lbprobe::probe::Interrupt::new()).await
}

async fn run_lbprobe(line: &str, backend: &LabBackend, defaults: &Defaults) {
    let parsed = lbprobe::replay::curl::parse(line, defaults).unwrap_or_else(|e| panic!("{e}"));
    let r = replay_to(backend, parsed, defaults.clone()).await;
    assert_eq!(r.requests_sent, 1, "{}", r.exit_reason);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_and_lbprobe_send_the_same_bytes_for_every_flag() {
    let backend = start_backend(BackendConfig::default()).await;
    let defaults = installed_curl();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("form.txt");
    std::fs::write(&file, "a=1\r\nb=2\n").unwrap();
    let file = file.display();
    let u = backend.url();
    let lines = [
        format!("curl '{u}/plain'"),
        format!("curl -X PUT '{u}/put?x=1' -H 'X-A: 1' -H 'x-lower: two'"),
        format!("curl '{u}/h' -H 'Accept:' -H 'X-Empty;' -H 'Host: shop.example.com'"),
        format!("curl '{u}/d' -d 'a=1' -d 'b=2'"),
        format!("curl '{u}/d' --data 'x y' --data-raw '@not-a-file'"),
        format!("curl '{u}/b' --data-binary $'line\\nnext\\ttab'"),
        format!("curl '{u}/f' -d @{file}"),
        format!("curl '{u}/f' --data-binary @{file}"),
        format!("curl '{u}/c' --compressed"),
        format!("curl --http1.0 '{u}/v'"),
        format!("curl --http1.1 '{u}/v'"),
        format!("curl '{u}/a' -A 'Mozilla/5.0 (X11; Linux x86_64)'"),
        format!("curl '{u}/k' -b 'a=1; b=2' -e 'https://ref.example.com/'"),
        format!("curl '{u}/u' -u 'user:secret'"),
        format!("curl -I '{u}/head'"),
        format!("curl '{u}/json' --json '{{\"a\": 1}}' -H 'X-After: 1'"),
        format!("curl '{u}/multi' \\\n  -H \"X-Quoted: say \\\"hi\\\"\" \\\n  -H 'X-Single: it'\\''s' \\\n  --compressed"),
    ];
    for line in &lines {
        run_curl(line);
        let by_curl = last_raw(&backend);
        run_lbprobe(line, &backend, &defaults).await;
        let by_lbprobe = last_raw(&backend);
        assert_eq!(
            String::from_utf8_lossy(&by_lbprobe),
            String::from_utf8_lossy(&by_curl),
            "{line}"
        );
    }
}

/// The curl command the report gives for a replayed request makes curl send that request's
/// exact bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reports_curl_command_sends_the_replayed_bytes() {
    let backend = start_backend(BackendConfig::default()).await;
    let defaults = installed_curl();
    let raw = "post /upload?x=1 HTTP/1.1\r\nHost: shop.example.com\r\nx-lower: 1\r\nContent-Type: text/plain\r\nContent-Length: 11\r\n\r\nhello world";
    let parsed = lbprobe::replay::parse(raw.as_bytes(), None).unwrap();
    let r = replay_to(&backend, parsed, defaults).await;
    let by_lbprobe = last_raw(&backend);
    assert_eq!(by_lbprobe, raw.as_bytes());
    let line = r
        .request
        .curl
        .clone()
        .unwrap_or_else(|| panic!("no curl: {:?}", r.request.curl_cannot));
    run_curl(&line);
    assert_eq!(String::from_utf8_lossy(&last_raw(&backend)), raw, "{line}");
}

/// A loopback port that takes one request per connection, keeps its bytes (all of them once
/// `want` bytes came, or what came before a short quiet spell), answers 200 and closes: a
/// request curl frames oddly (a Content-Length larger than its body) is captured all the same.
struct Capture {
    port: u16,
    want: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    got: std::sync::mpsc::Receiver<Vec<u8>>,
}

impl Capture {
    fn start() -> Capture {
        use std::io::{Read, Write};
        use std::sync::atomic::{AtomicUsize, Ordering};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let want = std::sync::Arc::new(AtomicUsize::new(0));
        let (tx, got) = std::sync::mpsc::channel();
        let expected = want.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { return };
                // Long enough for curl's 1 s wait for a `100 Continue` before it sends a body.
                let _ = conn.set_read_timeout(Some(Duration::from_millis(1500)));
                let mut seen = Vec::new();
                let mut buf = [0u8; 16 * 1024];
                while seen.len() < expected.load(Ordering::SeqCst) {
                    match conn.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = conn.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
                if tx.send(seen).is_err() {
                    return;
                }
            }
        });
        Capture { port, want, got }
    }
}

/// Every probe's curl command (as the dry run lists them for a scan; a run's report carries the
/// same) sends that probe's exact bytes: each command, run by curl, arrives byte for byte as the
/// request the plan shows. Requests curl cannot send say why instead.
#[test]
fn every_probes_curl_command_sends_its_exact_bytes() {
    use std::sync::atomic::Ordering;
    let capture = Capture::start();
    let url = format!("http://127.0.0.1:{}/", capture.port);
    let out = support::report_json::lbprobe(&[
        "scan",
        "--listener",
        &url,
        "--only",
        "400,405,414",
        "--dry-run",
        "--format",
        "json",
    ]);
    let plan = support::report_json::json(&out);
    let (mut checked, mut cannot) = (0, 0);
    for r in plan["requests"].as_array().expect("requests") {
        let text = r["text"].as_str().expect("text");
        let Some(line) = r["curl"]["command"].as_str() else {
            let why = r["curl"]["cannot"].as_str();
            assert!(
                why.is_some_and(|w| !w.is_empty()),
                "neither command nor reason: {r}"
            );
            cannot += 1;
            continue;
        };
        // TLS to this plain port (the cross-protocol probe) never gets as far as the request.
        if r["endpoint"].as_str().is_some_and(|e| e.ends_with("(tls)")) {
            assert!(line.contains("https://"), "{line}");
            continue;
        }
        let want = lbprobe::transport::unescape_bytes(text).unwrap();
        capture.want.store(want.len(), Ordering::SeqCst);
        run_curl(line);
        let got = capture
            .got
            .recv_timeout(Duration::from_secs(5))
            .expect("nothing captured");
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&want),
            "{}/{}: {line}",
            r["family"],
            r["variant"]
        );
        checked += 1;
    }
    // The methods, the limits' first sizes and the well-formed malformed templates have
    // commands; the framing and byte-level templates have reasons.
    assert!(
        checked >= 30 && cannot >= 30,
        "{checked} commands, {cannot} reasons"
    );
}
