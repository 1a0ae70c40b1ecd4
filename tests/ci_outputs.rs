//! The binary as a CI job uses it: `--format junit` and `--format markdown` on the demo, limit
//! expectations against a real nginx, and Ctrl-C in the middle of a run still writing the
//! report. nginx-backed tests fail (never skip) when nginx is missing.

#[path = "support/junit_xml.rs"]
mod junit_xml;
mod support;
use support::findings::{start_backend, start_nginx};
use support::says::assert_says;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use lbprobe::lab::{BackendConfig, Fault, FaultRule, NginxServer, NginxSpec};
use serde_json::Value;
use support::report_json::{self, assert_exit, confirmed_causes, json, lbprobe_async, text};

const BIN: &str = env!("CARGO_BIN_EXE_lbprobe");

#[test]
fn demo_as_junit_fails_exactly_its_unexpected_fault_testcase() {
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
    // The demo's one unexpected fault fails, nothing else: nginx's header limit below clb's.
    // Its other fault, the lab backend's URI limit tighter than nginx's, is one the scenario
    // expects confirmed: an expectation met, so its testcase passes and says so.
    let failed: Vec<&str> = suite
        .cases
        .iter()
        .filter(|c| c.outcome.as_deref() == Some("failure"))
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(failed, ["400.header-too-large"], "{:#?}", suite.cases);
    let uri = suite.case("414.backend-uri-limit");
    assert_eq!(uri.outcome, None, "{uri:#?}");
    assert!(
        uri.text
            .contains("confirmed as expected (scenarios/demo.yaml:"),
        "{uri:#?}"
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
    assert_says(
        &md,
        &[
            "| cause | verdict | side | why |",
            "| `400.header-too-large` | **confirmed** | listener |",
            "#### `400.header-too-large`",
            "(TLS not verified)",
        ],
    );
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
    let backend = start_backend(BackendConfig::default()).await;
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
    let report = json(&out);
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
#[expect(
    unsafe_code,
    reason = "std sends only SIGKILL to a child; the test needs SIGINT and SIGTERM"
)]
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
    let backend = start_backend(
        BackendConfig::default().fault(FaultRule::all(Fault::Delay(Duration::from_secs(2)))),
    )
    .await;
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
    let backend = start_backend(BackendConfig::default()).await;
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

/// A scenario against one lab backend that answers `status` to everything, with `extra` YAML
/// appended (expectations, limits); returns the scenario's path inside `dir`.
fn backend_scenario(dir: &std::path::Path, backend: &str, extra: &str) -> String {
    report_json::backend_scenario(
        dir,
        backend,
        &format!("probes: [protocol]\nlimits: {{ max-rate: 500, request-timeout: 2s }}\n{extra}"),
    )
}

async fn backend_answering(status: u16) -> lbprobe::lab::LabBackend {
    start_backend(BackendConfig::default().fault(FaultRule::all(Fault::Status(status)))).await
}

/// A fault the scenario expects to be confirmed is an expectation met: exit 0, and the reason
/// names it as expected. The neighbour, the same run without the expectation, fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expected_confirmed_fault_exits_0_and_an_unexpected_one_exits_1() {
    let backend = backend_answering(500).await;
    let dir = tempfile::tempdir().expect("temp dir");

    let plain = backend_scenario(dir.path(), &backend.url(), "");
    let out = lbprobe_async(&["run", &plain, "--format", "json", "-q"]).await;
    assert_exit(&out, lbprobe::exit::FINDING);
    let report = json(&out);
    let confirmed = confirmed_causes(&report);
    assert!(!confirmed.is_empty(), "a 500 everywhere confirms something");

    let expect: String = confirmed
        .iter()
        .map(|c| format!("  {c}: confirmed\n"))
        .collect();
    let pinned = backend_scenario(dir.path(), &backend.url(), &format!("expect:\n{expect}"));
    let out = lbprobe_async(&["run", &pinned, "--format", "json", "-q"]).await;
    assert_exit(&out, lbprobe::exit::OK);
    let reason = json(&out)["exit_reason"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(reason.contains("confirmed as expected"), "{reason}");
    assert!(reason.contains(confirmed[0]), "{reason}");

    // Expecting the fault gone while it is there is still a failure.
    let wrong: String = confirmed
        .iter()
        .map(|c| format!("  {c}: ruled_out\n"))
        .collect();
    let stale = backend_scenario(dir.path(), &backend.url(), &format!("expect:\n{wrong}"));
    let out = lbprobe_async(&["run", &stale, "--format", "json", "-q"]).await;
    assert_exit(&out, lbprobe::exit::FINDING);
}

/// A run its request cap cut short is not a silent success: exit 1, `cut_short` in the JSON, the
/// reason says so, and JUnit carries it. The neighbour with room for every request exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_cut_short_by_its_request_cap_is_not_a_success() {
    let backend = start_backend(BackendConfig::default()).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let scenario = dir.path().join("capped.yaml");
    let write = |max_requests: u32| {
        std::fs::write(
            &scenario,
            format!(
                "targets:\n  backend: {{ url: \"{}\" }}\nprobes: [protocol, methods]\nlimits: {{ max-rate: 500, request-timeout: 2s, max-requests: {max_requests} }}\n",
                backend.url()
            ),
        )
        .expect("write the scenario");
    };
    let path = scenario.to_str().expect("UTF-8 path").to_string();

    write(500);
    let out = lbprobe_async(&["run", &path, "--format", "json", "-q"]).await;
    assert_exit(&out, lbprobe::exit::OK);
    assert!(json(&out).get("cut_short").is_none());

    write(4);
    let junit = dir.path().join("junit.xml");
    let junit_arg = format!("junit={}", junit.display());
    let out = lbprobe_async(&["run", &path, "--format", "json", "-q", "-o", &junit_arg]).await;
    assert_exit(&out, lbprobe::exit::FINDING);
    let report = json(&out);
    let cut = report["cut_short"].as_str().unwrap_or_default();
    assert!(cut.contains("request cap (4)"), "{report:#}");
    let reason = report["exit_reason"].as_str().unwrap_or_default();
    assert!(
        reason.starts_with("cut short: the run's request cap (4)"),
        "{reason}"
    );
    let xml = std::fs::read_to_string(&junit).expect("the JUnit file was written");
    let suite = junit_xml::parse(&xml);
    assert!(
        xml.contains("request cap (4)"),
        "the JUnit report says the run was cut short: {suite:#?}"
    );
}

/// One run, several reports: `--output FORMAT=FILE` beside `--format`'s stdout. The backend sees
/// one run's requests, and every file holds that run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_run_writes_every_report_asked_for() {
    let backend = start_backend(BackendConfig::default()).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let path = backend_scenario(dir.path(), &backend.url(), "");
    let file = |name: &str| dir.path().join(name);
    let arg = |format: &str, name: &str| format!("{format}={}", file(name).display());
    let (json, junit, md, human) = (
        arg("json", "r.json"),
        arg("junit", "r.xml"),
        arg("markdown", "r.md"),
        arg("human", "r.txt"),
    );
    let out = lbprobe_async(&[
        "run", &path, "-q", "-o", &json, "-o", &junit, "-o", &md, "-o", &human,
    ])
    .await;
    assert_exit(&out, lbprobe::exit::OK);
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("Exit 0"),
        "the human report on stdout: {stdout}"
    );

    let report: Value =
        serde_json::from_slice(&std::fs::read(file("r.json")).expect("r.json")).expect("JSON");
    let sent = report["requests_sent"].as_u64().expect("requests_sent");
    assert_eq!(
        backend.requests_seen() as u64,
        sent,
        "one run's requests, not one run per format"
    );
    let xml = std::fs::read_to_string(file("r.xml")).expect("r.xml");
    let suite = junit_xml::parse(&xml);
    assert!(!suite.cases.is_empty(), "{xml}");
    assert!(xml.contains(&format!("value=\"{sent}\"")), "{xml}");
    let markdown = std::fs::read_to_string(file("r.md")).expect("r.md");
    assert!(
        markdown.starts_with('#') || markdown.contains("|"),
        "{markdown}"
    );
    let human_file = std::fs::read_to_string(file("r.txt")).expect("r.txt");
    assert!(human_file.contains("Exit 0"), "{human_file}");
    assert!(
        !human_file.contains('\x1b'),
        "no colour in a file at --color auto"
    );
}

/// Two reports into one file, or two plain files, are refused before anything is sent.
#[test]
fn conflicting_outputs_are_refused_before_the_run() {
    for args in [
        &["-o", "a.json", "-o", "b.json"][..],
        &["-o", "json=same.out", "-o", "junit=same.out"][..],
    ] {
        let out = Command::new(BIN)
            .args(["scan", "--backend", "http://127.0.0.1:9/", "--dry-run"])
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {BIN}: {e}"));
        assert_exit(&out, lbprobe::exit::BAD_INPUT);
        assert!(
            text(&out.stderr).contains("--output"),
            "{}",
            text(&out.stderr)
        );
    }
}
