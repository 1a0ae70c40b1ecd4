//! The binary as a CI job uses it: `--format junit` and `--format markdown` on the demo, limit
//! expectations against a real nginx, and Ctrl-C in the middle of a run still writing the
//! report. nginx-backed tests fail (never skip) when nginx is missing.

#[path = "support/junit_xml.rs"]
mod junit_xml;
mod support;

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use lbprobe::lab::{BackendConfig, Fault, FaultRule, LabBackend, Nginx, NginxServer, NginxSpec};
use serde_json::Value;
use support::report_json::lbprobe_async;

const BIN: &str = env!("CARGO_BIN_EXE_lbprobe");

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn assert_exit(out: &Output, want: i32) {
    assert_eq!(
        out.status.code(),
        Some(want),
        "exit code; stdout:\n{}\nstderr:\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

fn start_nginx(spec: &NginxSpec) -> Nginx {
    Nginx::start(spec).unwrap_or_else(|e| panic!("this test needs a real nginx: {e}"))
}

#[test]
fn demo_as_junit_fails_exactly_its_two_fault_testcases() {
    drop(start_nginx(&NginxSpec::one(NginxServer::fixed())));
    let out = Command::new(BIN)
        .args(["demo", "--format", "junit"])
        .env("NO_COLOR", "1")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {BIN}: {e}"));
    assert_exit(&out, lbprobe::exit::FINDING);
    let xml = text(&out.stdout);
    let suite = junit_xml::parse(&xml);
    let header = suite.case("400.header-too-large");
    assert_eq!(header.classname, "400");
    assert_eq!(header.outcome.as_deref(), Some("failure"), "{header:#?}");
    assert!(
        header
            .message
            .as_deref()
            .is_some_and(|m| m.contains("8190")),
        "{header:#?}"
    );
    // The demo's expectations are all met: each is a passing testcase.
    let expectations: Vec<&junit_xml::TestCase> = suite
        .cases
        .iter()
        .filter(|c| c.classname == "expect")
        .collect();
    assert!(!expectations.is_empty());
    assert!(
        expectations.iter().all(|c| c.outcome.is_none()),
        "{expectations:#?}"
    );
    // The demo's two faults fail, nothing else: nginx's header limit below clb's, and the lab
    // backend's URI limit tighter than nginx's.
    let failed: Vec<&str> = suite
        .cases
        .iter()
        .filter(|c| c.outcome.as_deref() == Some("failure"))
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(
        failed,
        ["400.header-too-large", "414.backend-uri-limit"],
        "{:#?}",
        suite.cases
    );
    assert!(
        suite
            .properties
            .iter()
            .any(|(k, v)| k == "listener" && v.ends_with("(TLS not verified)")),
        "{:?}",
        suite.properties
    );
}

#[test]
fn demo_as_markdown_has_the_table_and_the_details() {
    drop(start_nginx(&NginxSpec::one(NginxServer::fixed())));
    let out = Command::new(BIN)
        .args(["demo", "--format", "markdown"])
        .env("NO_COLOR", "1")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {BIN}: {e}"));
    assert_exit(&out, lbprobe::exit::FINDING);
    let md = text(&out.stdout);
    assert!(
        md.starts_with("## ❌ lbprobe · scenario `demo` · exit 1"),
        "{md}"
    );
    assert!(md.contains("| cause | verdict | side | why |"), "{md}");
    assert!(
        md.contains("| `400.header-too-large` | **confirmed** | listener |"),
        "{md}"
    );
    assert!(md.contains("#### `400.header-too-large`"), "{md}");
    assert!(md.contains("(TLS not verified)"), "{md}");
}

#[test]
fn junit_is_refused_where_there_is_no_run() {
    let out = Command::new(BIN)
        .args(["causes", "--format", "junit"])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {BIN}: {e}"));
    assert_exit(&out, lbprobe::exit::BAD_INPUT);
    assert!(
        text(&out.stderr).contains("for the reports of runs"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unmet_limit_expectation_exits_1_and_says_why() {
    let backend = LabBackend::start(BackendConfig::default())
        .await
        .unwrap_or_else(|e| panic!("lab backend: {e}"));
    let nginx = start_nginx(&NginxSpec::one(NginxServer::proxy(backend.url())));
    let dir = tempfile::tempdir().expect("temp dir");
    let scenario = dir.path().join("limits.yaml");
    // nginx's default header line limit is 8190 bytes: at-least 4k holds, at-least 16k does not.
    let write = |at_least: &str| {
        std::fs::write(
            &scenario,
            format!(
                "targets:\n  listener: {{ url: \"{}\" }}\n  backend: {{ url: \"{}\" }}\nprofile: nginx\nprobes: [header-size]\nlimits: {{ max-rate: 500, request-timeout: 3s }}\nexpect:\n  header-size: {{ at-least: {at_least} }}\n",
                nginx.url(0),
                backend.url()
            ),
        )
        .expect("write the scenario");
    };
    let path = scenario.to_str().expect("UTF-8 path").to_string();

    write("4k");
    let out = lbprobe_async(&["run", &path, "--format", "json"]).await;
    assert_exit(&out, lbprobe::exit::OK);

    write("16k");
    let out = lbprobe_async(&["run", &path, "--format", "json"]).await;
    assert_exit(&out, lbprobe::exit::FINDING);
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    let limit = &report["limit_expectations"][0];
    assert_eq!(limit["met"], false, "{limit:#}");
    assert_eq!(limit["largest_accepted"], 8190, "{limit:#}");
    assert_eq!(limit["location"], format!("{path}:8:3"));
    assert!(
        limit["why"]
            .as_str()
            .is_some_and(|w| w.contains("accepts 8190 bytes and refuses 8191")
                && w.contains("below at-least 16384")),
        "{limit:#}"
    );
    assert!(
        report["exit_reason"]
            .as_str()
            .is_some_and(|r| r.contains("1 expectation unmet")),
        "{}",
        report["exit_reason"]
    );
}

/// Send `signal` to a child process.
#[allow(unsafe_code)]
fn send_signal(child: &std::process::Child, signal: libc::c_int) {
    let pid = libc::pid_t::try_from(child.id()).expect("pid fits pid_t");
    // SAFETY: kill(2) with a pid of our own live child and a valid signal number touches no
    // memory of ours.
    let rc = unsafe { libc::kill(pid, signal) };
    assert_eq!(rc, 0, "kill({signal}) failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_stops_the_run_and_still_writes_a_partial_report() {
    stops_on_signal_with_a_partial_report(libc::SIGINT).await;
}

/// CI job timeouts, `timeout(1)` and systemd stop with SIGTERM: the report of what ran must
/// still be written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_the_run_and_still_writes_a_partial_report() {
    stops_on_signal_with_a_partial_report(libc::SIGTERM).await;
}

async fn stops_on_signal_with_a_partial_report(signal: libc::c_int) {
    // Every answer takes 2 s: 20 latency requests would keep the run busy for 40 s.
    let backend = LabBackend::start(
        BackendConfig::default().fault(FaultRule::all(Fault::Delay(Duration::from_secs(2)))),
    )
    .await
    .unwrap_or_else(|e| panic!("lab backend: {e}"));
    let dir = tempfile::tempdir().expect("temp dir");
    let scenario = dir.path().join("slow.yaml");
    std::fs::write(
        &scenario,
        format!(
            "targets:\n  backend: {{ url: \"{}\" }}\nprobes:\n  - latency: {{ requests: 20 }}\nlimits: {{ max-rate: 50, request-timeout: 10s, max-duration: 120s }}\n",
            backend.url()
        ),
    )
    .expect("write the scenario");
    let report_file = dir.path().join("report.json");
    let mut child = Command::new(BIN)
        .args([
            "run",
            scenario.to_str().expect("UTF-8 path"),
            "--format",
            "json",
            "--output",
        ])
        .arg(&report_file)
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {BIN}: {e}"));

    // Wait for the run's first request to reach the backend (bounded), then press Ctrl-C.
    let deadline = Instant::now() + Duration::from_secs(30);
    while backend.requests_seen() == 0 {
        assert!(
            child.try_wait().expect("try_wait").is_none(),
            "lbprobe ended before its first request"
        );
        assert!(Instant::now() < deadline, "no request reached the backend");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    send_signal(&child, signal);

    // The requests in flight finish or are dropped; nothing new is sent.
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("lbprobe did not stop after Ctrl-C");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        use std::io::Read;
        let _ = pipe.read_to_string(&mut stderr);
    }
    // An interrupted run is never a pass: what did not run was not checked.
    assert_eq!(
        status.code(),
        Some(lbprobe::exit::FINDING),
        "stderr:\n{stderr}"
    );
    assert!(stderr.contains("interrupted"), "{stderr}");
    let report: Value =
        serde_json::from_slice(&std::fs::read(&report_file).expect("the report was written"))
            .expect("the report is JSON");
    assert_eq!(report["partial"], true);
    let notes: Vec<&str> = report["notes"]
        .as_array()
        .expect("notes")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        notes
            .iter()
            .any(|n| n.contains("interrupted (Ctrl-C or SIGTERM)")),
        "{notes:?}"
    );
    assert!(
        report["exit_reason"]
            .as_str()
            .is_some_and(|r| r.contains("interrupted")),
        "{}",
        report["exit_reason"]
    );
    // Far fewer than the 20 latency requests were sent.
    let latency = report["observations"]
        .as_array()
        .expect("observations")
        .iter()
        .filter(|o| o["family"] == "latency")
        .count();
    assert!(latency < 20, "{latency} latency observations");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ci_smoke_scenario_passes_against_a_healthy_nginx_and_backend() {
    let backend = LabBackend::start(BackendConfig::default())
        .await
        .unwrap_or_else(|e| panic!("lab backend: {e}"));
    let nginx = start_nginx(&NginxSpec::one(NginxServer::proxy(backend.url())));
    let scenario = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios/ci-smoke.yaml");
    let listener = format!("LISTENER_URL={}", nginx.url(0));
    let direct = format!("BACKEND_URL={}", backend.url());
    let out = lbprobe_async(&[
        "run", scenario, "--var", &listener, "--var", &direct, "--format", "junit",
    ])
    .await;
    let suite = junit_xml::parse(&text(&out.stdout));
    let failed: Vec<&junit_xml::TestCase> = suite
        .cases
        .iter()
        .filter(|c| c.outcome.as_deref() == Some("failure"))
        .collect();
    assert!(failed.is_empty(), "{failed:#?}");
    assert_exit(&out, lbprobe::exit::OK);
    // Every expectation of the file is a testcase: four verdicts and two limits.
    let expectations = suite
        .cases
        .iter()
        .filter(|c| c.classname == "expect")
        .count();
    assert_eq!(expectations, 6, "{:#?}", suite.cases);
    assert_eq!(suite.case("header-size: at-least 4096").outcome, None);
}

/// `lbprobe lab` started by a script and stopped with SIGTERM must not leave its nginx behind:
/// the listener's port is closed once lbprobe has exited.
#[test]
fn sigterm_on_lab_stops_its_nginx() {
    let dir = tempfile::tempdir().expect("temp dir");
    let info_path = dir.path().join("lab.json");
    let mut child = Command::new(BIN)
        .args(["lab", "--for", "120", "--format", "json", "-o"])
        .arg(&info_path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {BIN}: {e}"));
    let deadline = Instant::now() + Duration::from_secs(30);
    let info: Value = loop {
        if let Some(v) = std::fs::read_to_string(&info_path)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
        {
            break v;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("lbprobe lab did not start in 30 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let listener = info["listener"]
        .as_str()
        .unwrap_or_else(|| panic!("the lab needs nginx for this test: {info}"));
    let addr: std::net::SocketAddr = listener
        .trim_start_matches("https://")
        .trim_end_matches('/')
        .parse()
        .unwrap_or_else(|e| panic!("listener address in {listener}: {e}"));
    std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .expect("the lab's nginx accepts connections while the lab runs");

    send_signal(&child, libc::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("lbprobe lab did not stop on SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(0), "lab ends cleanly on SIGTERM");
    // nginx's master is asked to stop when the lab is dropped; give it a bounded moment.
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok() {
        assert!(
            Instant::now() < deadline,
            "nginx still listens on {addr} after lbprobe lab exited"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
