//! The binary: exit codes, error positions, JSON on stdout, `--output`, and whole runs against a
//! real nginx and the lab. nginx-backed tests fail (never skip) when nginx is missing.

mod support;
use support::findings::{start_backend, start_nginx};
use support::says::assert_says;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Output;

use support::debug_text::{assert_human_output_is_words, debug_text};
use support::report_json::{assert_exit, confirmed_causes, finding, json, scan_args, text};

use lbprobe::lab::{BackendConfig, LabBackend, NginxServer, NginxSpec};
use serde_json::Value;

/// Caps for runs against loopback targets: fast, and a stuck probe cannot stall the suite.
const TIGHT: &[&str] = &[
    "--timeout",
    "3",
    "--max-rate",
    "500",
    "--max-duration",
    "60",
];

/// Every run of the binary in this file: whatever it writes for a person (stderr always, stdout
/// unless JSON or JUnit was asked for) is checked for Rust Debug text.
fn lbprobe(args: &[&str]) -> Output {
    let out = support::report_json::lbprobe(args);
    assert_human_output_is_words(args, &out);
    out
}

/// [`lbprobe`], without blocking the runtime that serves a lab backend.
async fn lbprobe_async(args: &[&str]) -> Output {
    let out = support::report_json::lbprobe_async(args).await;
    assert_human_output_is_words(args, &out);
    out
}

#[test]
fn debug_text_is_found_and_words_are_not() {
    assert_eq!(
        debug_text("connect failed: Unreachable(\"No route to host (os error 113)\")"),
        ["Unreachable("]
    );
    assert_eq!(debug_text("ended: ConnectRefused"), ["ConnectRefused"]);
    assert_eq!(debug_text("value Some(3)"), ["Some("]);
    assert!(debug_text("the backend refused the connection (ECONNREFUSED)").is_empty());
    // A JSON report's sentences are checked; the bytes it recorded are not.
    let report = serde_json::json!({
        "findings": [{"reason": "ended: TimedOut", "evidence": [{"text": "fine words"}]}],
        "observations": [{"request": {"text": "GET / HTTP/1.1\\r\\nX-CamelCase: Some(1)"}}],
    });
    let mut sentences = support::debug_text::sentences(&report);
    sentences.sort();
    assert_eq!(sentences, ["ended: TimedOut", "fine words"]);
    // Escaped bytes, quoted configuration and protocol messages are not Rust names.
    assert!(debug_text(r"GET / HTTP/1.1\r\nHost: a\r\n\x00Accept").is_empty());
    assert!(debug_text("raise Tomcat `maxHttpHeaderSize`; the ClientHello").is_empty());
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/cli")
        .join(name)
}

fn code(out: &Output) -> i32 {
    out.status
        .code()
        .unwrap_or_else(|| panic!("killed by a signal: {out:?}"))
}

/// The JSON plan of a dry run of `args` (exit 0): what the run would send.
fn dry_run_plan(args: &[&str]) -> Value {
    let mut args = args.to_vec();
    args.extend(["--dry-run", "--format", "json"]);
    let out = lbprobe(&args);
    assert_exit(&out, lbprobe::exit::OK);
    json(&out)
}

/// A quiet JSON run of `args` under the TIGHT caps that took its input (exit 0 or 1): its
/// report.
async fn quiet_json_run(args: &[&str]) -> Value {
    let mut args = args.to_vec();
    args.extend(["--format", "json", "--quiet"]);
    args.extend_from_slice(TIGHT);
    let out = lbprobe_async(&args).await;
    assert!(code(&out) <= 1, "{}", text(&out.stderr));
    json(&out)
}

/// A loopback port nobody listens on: bound, read, released.
fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local addr").port()
}

fn scenario_error_is_bad_input_with_position(file: &str, position: &str, message: &str) {
    let path = fixture(file);
    let path = path.to_str().expect("UTF-8 path");
    let out = lbprobe(&["run", path]);
    assert_exit(&out, lbprobe::exit::BAD_INPUT);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!("{path}:{position}: {message}")),
        "stderr should point at {path}:{position}: {stderr}"
    );
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
}

#[test]
fn scenario_with_yaml_syntax_error_exits_2_at_line_and_column() {
    // The flow sequence opened on line 5 is still open when `limits:` starts line 6.
    scenario_error_is_bad_input_with_position(
        "syntax-error.yaml",
        "6:7",
        "YAML syntax: did not find expected ',' or ']'",
    );
}

#[test]
fn scenario_with_unknown_key_exits_2_at_line_and_column() {
    scenario_error_is_bad_input_with_position(
        "unknown-key.yaml",
        "3:3",
        "unknown key \"listner\" (expected one of: listener, backend, pool)",
    );
}

#[test]
fn explain_known_cause_names_its_side() {
    let out = lbprobe(&["explain", "400.http-to-https-listener"]);
    assert_exit(&out, lbprobe::exit::OK);
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("400.http-to-https-listener"), "{stdout}");
    assert!(
        stdout
            .lines()
            .any(|l| l.trim_start().starts_with("side  listener")),
        "{stdout}"
    );
}

#[test]
fn explain_unknown_cause_exits_2() {
    let out = lbprobe(&["explain", "nope"]);
    assert_exit(&out, lbprobe::exit::BAD_INPUT);
    assert!(
        text(&out.stderr).contains("unknown cause \"nope\""),
        "{}",
        text(&out.stderr)
    );
    assert!(out.stdout.is_empty());
    // A typo gets the id it was meant to be, not every id of its code.
    let out = lbprobe(&["explain", "502.backend-unreachble"]);
    assert_exit(&out, lbprobe::exit::BAD_INPUT);
    let err = text(&out.stderr);
    assert!(
        err.contains("did you mean 502.backend-unreachable?"),
        "{err}"
    );
    assert!(!err.contains("502.mtu-mismatch"), "{err}");
}

/// `--only` narrows a scan to the families that speak to the codes and never adds one: the
/// dry run shows the same families the run sends, and names the slow ones left out.
#[test]
fn only_never_means_more_and_the_dry_run_shows_it() {
    let families = |only: &str| {
        dry_run_plan(&[
            "scan",
            "--listener",
            "http://127.0.0.1:1/",
            "--backend",
            "http://127.0.0.1:2/",
            "--only",
            only,
        ])
    };
    let defaults: Vec<&str> = lbprobe::probe::Family::defaults()
        .map(|f| f.as_str())
        .collect();
    for only in ["400", "502", "408,499"] {
        let plan = families(only);
        let sent: std::collections::BTreeSet<&str> = plan["requests"]
            .as_array()
            .expect("requests")
            .iter()
            .filter_map(|r| r["family"].as_str())
            .collect();
        for f in &sent {
            assert!(defaults.contains(f), "--only {only} added {f}");
        }
        assert!(!sent.is_empty(), "--only {only} sends nothing");
    }
    let plan = families("502");
    let notes = plan["notes"].to_string();
    assert!(
        notes.contains("keepalive") && notes.contains("--probes"),
        "{notes}"
    );
}

#[test]
fn probes_lists_every_template_and_filters_by_tag() {
    let out = lbprobe(&["probes", "--format", "json"]);
    assert_exit(&out, lbprobe::exit::OK);
    let json = json(&out);
    let listed: Vec<&str> = json["templates"]
        .as_array()
        .expect("a `templates` array")
        .iter()
        .map(|t| t["id"].as_str().expect("an id per template"))
        .collect();
    let all: Vec<&str> = lbprobe::probe::templates::malformed_ids().collect();
    assert_eq!(listed, all);
    let fold = &json["templates"][listed.iter().position(|id| *id == "obs-fold").unwrap()];
    assert!(
        fold["rfc"]
            .as_str()
            .is_some_and(|r| r.starts_with("RFC 9112 §5.2")),
        "{fold}"
    );
    // RFC 9112 §5.2: answer 400 or replace the fold with SP.
    assert_eq!(fold["strict"], "any");
    assert_eq!(fold["tags"][0], "header");

    let out = lbprobe(&["probes", "--tag", "te"]);
    assert_exit(&out, lbprobe::exit::OK);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_says(&text, &["te-xchunked", "reject (400/501)"]);
    assert!(!text.contains("obs-fold"), "{text}");

    let out = lbprobe(&["probes", "--tag", "nope"]);
    assert_exit(&out, lbprobe::exit::BAD_INPUT);
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown tag"));
}

#[test]
fn causes_as_json_lists_every_cause() {
    let out = lbprobe(&["causes", "--format", "json"]);
    assert_exit(&out, lbprobe::exit::OK);
    let json = json(&out);
    let mut listed: Vec<&str> = json["causes"]
        .as_array()
        .expect("a `causes` array")
        .iter()
        .map(|c| c["id"].as_str().expect("an id per cause"))
        .collect();
    let mut want: Vec<&str> = lbprobe::catalogue::Catalogue::builtin()
        .causes()
        .iter()
        .map(|c| c.id.as_str())
        .collect();
    listed.sort_unstable();
    want.sort_unstable();
    assert_eq!(listed, want);
    // Exactly the catalogue: that the catalogue holds DESIGN.md's ids and every passthrough,
    // the contract, is checked once, by its own tests (src/catalogue/mod.rs, DESIGN_IDS).
}

#[test]
fn scan_without_target_exits_2() {
    let out = lbprobe(&["scan"]);
    assert_exit(&out, lbprobe::exit::BAD_INPUT);
    assert!(
        text(&out.stderr).contains("scan needs --listener URL, --backend URL or both"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn scan_of_closed_port_exits_3_and_rules_nothing_out() {
    let url = format!("http://127.0.0.1:{}/", closed_port());
    let mut args = vec!["scan", "--listener", &url, "--format", "json"];
    args.extend_from_slice(TIGHT);
    let out = lbprobe(&args);
    assert_exit(&out, lbprobe::exit::UNREACHABLE);
    let report = json(&out);
    assert_eq!(report["exit_code"], lbprobe::exit::UNREACHABLE);
    let unreachable = report["unreachable"].as_array().expect("unreachable list");
    assert_eq!(unreachable.len(), 1, "{unreachable:?}");
    assert!(
        unreachable[0]
            .as_str()
            .is_some_and(|u| u.contains(&url) && u.contains("connection refused")),
        "{unreachable:?}"
    );
    // A refused connection says nothing about what the listener does with TRACE, malformed
    // requests or large headers: those stay open rather than ruled out.
    for cause in [
        "405.trace-unsupported",
        "400.malformed-request",
        "400.header-too-large",
    ] {
        let f = finding(&report, cause);
        assert_eq!(f["verdict"], "inconclusive", "{cause}: {f:#}");
        assert!(
            f["reason"]
                .as_str()
                .is_some_and(|r| r.contains("could not be reached")),
            "{cause}: {f:#}"
        );
    }
}

/// What a person reads of a run that fails (a refused connection, an unreachable target) is
/// words in every format for people: no `ConnectRefused`, no `Err(...)`.
#[test]
fn a_failing_runs_reports_for_people_are_words() {
    let url = format!("http://127.0.0.1:{}/", closed_port());
    for format in ["human", "markdown"] {
        let mut args = vec![
            "scan",
            "--listener",
            &url,
            "--backend",
            &url,
            "--format",
            format,
        ];
        args.extend_from_slice(TIGHT);
        // `lbprobe` checks stdout and stderr for Rust Debug text.
        let out = lbprobe(&args);
        assert_exit(&out, lbprobe::exit::UNREACHABLE);
        let stdout = text(&out.stdout);
        assert!(stdout.contains("connection refused"), "{stdout}");
    }
}

#[test]
fn scan_with_output_file_writes_the_report_there() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("report.json");
    let url = format!("http://127.0.0.1:{}/", closed_port());
    let file_arg = file.to_str().expect("UTF-8 path");
    let mut args = vec![
        "scan",
        "--listener",
        &url,
        "--format",
        "json",
        "--output",
        file_arg,
    ];
    args.extend_from_slice(TIGHT);
    let out = lbprobe(&args);
    assert_exit(&out, lbprobe::exit::UNREACHABLE);
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
    let written = std::fs::read(&file).expect("the --output file exists");
    let report: Value = serde_json::from_slice(&written).expect("the file holds JSON");
    assert_eq!(report["exit_code"], lbprobe::exit::UNREACHABLE);
    assert_eq!(report["origin"], "scan");
}

/// A lab that does not start is lbprobe's failure, not the person's input: exit 4, never 2.
#[test]
fn a_lab_that_cannot_start_exits_4_not_bad_input() {
    for args in [&["lab", "--for", "1"][..], &["demo"][..]] {
        // An "nginx" that exits at once: the lab's listener never comes up.
        let out = std::process::Command::new(support::report_json::BIN)
            .args(args)
            .env("NO_COLOR", "1")
            .env("LBPROBE_NGINX", "/bin/false")
            .output()
            .expect("run lbprobe");
        assert_exit(&out, lbprobe::exit::CANNOT_RUN);
        let err = text(&out.stderr);
        assert!(err.contains("nginx failed"), "{args:?}: {err}");
    }
}

/// An `--output` the report cannot be written to is not bad input either, and the reason is
/// said once (the error's source used to be printed after its message, which already holds it).
#[test]
fn a_report_that_cannot_be_written_exits_4_and_says_why_once() {
    // A directory that does not exist: nothing is created.
    let out = lbprobe(&["causes", "--output", "/no-such-lbprobe-dir/causes.txt"]);
    assert_exit(&out, lbprobe::exit::CANNOT_RUN);
    let err = text(&out.stderr);
    assert!(err.starts_with("lbprobe: cannot write "), "{err}");
    assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthy_nginx_and_backend_confirm_nothing_and_exit_0() {
    let backend = start_backend(BackendConfig::default()).await;
    let nginx = start_nginx(&NginxSpec::one(NginxServer::proxy(backend.url())));
    let (listener, direct) = (nginx.url(0), backend.url());
    let mut args = scan_args(
        &listener,
        &direct,
        &["--profile", "nginx", "--format", "json"],
    );
    args.extend_from_slice(TIGHT);
    let out = lbprobe_async(&args).await;
    let report = json(&out);
    let findings = serde_json::to_string_pretty(&report["findings"]).unwrap_or_default();
    assert_exit(&out, lbprobe::exit::OK);
    assert_eq!(report["summary"]["confirmed"], 0, "{findings}");
    // Healthy is not silent: nginx's own triggers are still reproduced.
    for cause in [
        "405.trace-unsupported",
        "400.malformed-request",
        "400.header-too-large",
    ] {
        assert_eq!(finding(&report, cause)["verdict"], "reproduced", "{cause}");
    }
    // nginx's default header limit is the nginx profile's 8190 bytes, exactly.
    let header = finding(&report, "400.header-too-large");
    assert!(
        header["evidence"][0]["text"].as_str().is_some_and(
            |t| t.contains("header lines above 8190 bytes are refused, 8190 bytes pass")
        ),
        "{header:#}"
    );
}

#[test]
fn demo_confirms_nginx_header_limit_below_clb_and_the_backend_uri_limit_and_meets_its_expectations()
{
    // Without nginx the demo probes the backend alone, and this test is about the whole lab:
    // fail with the lab's own message (naming where nginx was looked for) rather than skip.
    drop(start_nginx(&NginxSpec::one(NginxServer::fixed())));
    let out = lbprobe(&["demo", "--format", "json"]);
    let report = json(&out);
    // The clb profile documents 32 KiB header lines; nginx's default buffers take 8190 bytes.
    // And the lab backend's 4000-byte URI limit is tighter than nginx's: long URIs pass the
    // listener and fail one hop further. Those two faults, and nothing else, are confirmed.
    assert_exit(&out, lbprobe::exit::FINDING);
    let confirmed = confirmed_causes(&report);
    assert_eq!(
        confirmed,
        ["400.header-too-large", "414.backend-uri-limit"],
        "{:#}",
        report["findings"]
    );
    let header = finding(&report, "400.header-too-large");
    assert_eq!(header["verdict"], "confirmed");
    assert!(
        header["reason"]
            .as_str()
            .is_some_and(|r| r.contains("above 8190 bytes") && r.contains("32768")),
        "{header:#}"
    );
    let expectations = report["expectations"].as_array().expect("expectations");
    assert!(!expectations.is_empty());
    for e in expectations {
        assert_eq!(e["met"], true, "unmet: {e:#}");
    }
    assert_eq!(report["summary"]["expectations_unmet"], 0);
    assert!(report["unreachable"].as_array().is_some_and(Vec::is_empty));
}

/// `--malformed TAG,...` sends exactly the templates of those kinds (and no other family is
/// needed on the command line), through a real nginx.
#[tokio::test]
async fn malformed_flag_selects_templates_by_tag_against_nginx() {
    let nginx = start_nginx(&NginxSpec::one(NginxServer::fixed()));
    let listener = nginx.url(0);
    let report = quiet_json_run(&[
        "scan",
        "--listener",
        &listener,
        "--probes",
        "protocol",
        "--malformed",
        "te,chunked",
    ])
    .await;
    let sent: std::collections::BTreeSet<String> = report["observations"]
        .as_array()
        .expect("observations")
        .iter()
        .filter(|o| o["family"] == "malformed")
        .map(|o| o["variant"].as_str().expect("variant").to_string())
        .collect();
    let want: std::collections::BTreeSet<String> = lbprobe::probe::templates::malformed()
        .iter()
        .filter(|t| t.has_tag("te") || t.has_tag("chunked"))
        .map(|t| t.id.clone())
        .collect();
    assert!(want.len() > 20, "{} te/chunked templates", want.len());
    assert_eq!(sent, want);
}

#[test]
fn malformed_flag_names_an_unknown_tag() {
    let out = lbprobe(&[
        "scan",
        "--listener",
        "http://127.0.0.1:1/",
        "--malformed",
        "te,chunky",
        "--dry-run",
    ]);
    assert_exit(&out, 2);
    let err = text(&out.stderr);
    assert_says(&err, &["\"chunky\"", "content-length"]);
}

/// The smuggling sequences run only when named; without `--i-own-this-target` the dry run
/// lists only those that leave no request behind and says why the others are held back.
#[test]
fn smuggling_sequences_need_naming_and_ownership_and_the_dry_run_says_so() {
    let scan = |extra: &[&str]| {
        let mut args = vec![
            "scan",
            "--listener",
            "http://127.0.0.1:1/",
            "--probes",
            "malformed",
            "--dry-run",
        ];
        args.extend_from_slice(extra);
        let out = lbprobe(&args);
        assert_exit(&out, lbprobe::exit::OK);
        text(&out.stdout)
    };
    // A tag the sequences' bytes touch does not pick them (the whole catalogue is checked by
    // the unit tests: its bytes hold words the human-output check reads as Rust names).
    let unnamed = scan(&["--malformed", "te"]);
    assert!(
        unnamed.contains("malformed/te-chunked-not-last"),
        "{unnamed}"
    );
    assert!(!unnamed.contains("malformed/smuggle-"), "{unnamed}");
    let named = scan(&["--malformed", "smuggling"]);
    assert!(named.contains("malformed/smuggle-cl-te-timing"), "{named}");
    assert!(
        !named.contains("malformed/smuggle-cl-te-pipelined-get"),
        "{named}"
    );
    assert!(
        named.contains("--i-own-this-target sends them") && named.contains("response queue"),
        "{named}"
    );
    let owned = scan(&["--malformed", "smuggling", "--i-own-this-target"]);
    assert_says(
        &owned,
        &[
            "malformed/smuggle-cl-te-pipelined-get",
            "X-Lbprobe-Smuggled: 1",
        ],
    );
    assert!(!owned.contains("not sent, they leave"), "{owned}");
}

/// `--backend` repeated names a pool: the dry run shows each member asked directly and the
/// listener asked in turn, and nothing is sent.
#[test]
fn repeated_backend_makes_a_pool() {
    let plan = dry_run_plan(&[
        "scan",
        "--listener",
        "http://127.0.0.1:1/",
        "--backend",
        "http://127.0.0.1:2/",
        "--backend",
        "http://127.0.0.1:3/",
        "--probes",
        "pool",
    ]);
    let pool: Vec<(&str, &str)> = plan["requests"]
        .as_array()
        .expect("requests")
        .iter()
        .filter(|r| r["family"] == "pool")
        .map(|r| {
            (
                r["variant"].as_str().unwrap_or(""),
                r["endpoint"].as_str().unwrap_or(""),
            )
        })
        .collect();
    let count = |v: &str| pool.iter().filter(|(variant, _)| *variant == v).count();
    assert_eq!(count("member-1"), 3, "{pool:?}");
    assert_eq!(count("member-2"), 3, "{pool:?}");
    assert_eq!(count("through-listener"), 12, "{pool:?}");
    assert!(pool
        .iter()
        .any(|(v, e)| *v == "member-2" && e.contains("127.0.0.1:3")));
}

/// `--connect-to` and `--resolve` aim every probe at one address while the Host header (and
/// the TLS name) stay the URL's; every exchange records the address it went to. The name is
/// never looked up: nothing here may reach DNS.
#[tokio::test]
async fn connect_to_and_resolve_reach_the_chosen_address_with_the_urls_host() {
    let backend = LabBackend::start_at(
        BackendConfig::default(),
        "127.0.0.2:0".parse().expect("address"),
    )
    .await
    .unwrap_or_else(|e| panic!("lab backend on 127.0.0.2: {e}"));
    let port = backend.addr().port();
    let peer = format!("127.0.0.2:{port}");
    let connect_to = format!("lb.example.test:8080:127.0.0.2:{port}");
    let resolve = format!("lb.example.test:{port}:127.0.0.2");
    let resolved_url = format!("http://lb.example.test:{port}/");
    let runs: [(&str, &str, &str, String); 2] = [
        (
            "http://lb.example.test:8080/",
            "--connect-to",
            &connect_to,
            "lb.example.test:8080".into(),
        ),
        (
            &resolved_url,
            "--resolve",
            &resolve,
            format!("lb.example.test:{port}"),
        ),
    ];
    for (url, flag, rule, host) in runs {
        let before = backend.recent_requests().len();
        let report = quiet_json_run(&[
            "scan",
            "--listener",
            url,
            flag,
            rule,
            "--probes",
            "protocol,methods",
        ])
        .await;
        let observations = report["observations"].as_array().expect("observations");
        assert!(observations.len() > 5);
        for o in observations {
            if let Some(p) = o["exchange"]["peer"].as_str() {
                assert_eq!(p, peer, "{o}");
            }
        }
        let baseline = observations
            .iter()
            .find(|o| o["variant"] == "baseline")
            .expect("baseline");
        assert_eq!(
            baseline["exchange"]["response"]["status"], 200,
            "{baseline}"
        );
        // The methods go through reqwest: they reached the address too, with the URL's Host.
        let seen: Vec<_> = backend.recent_requests().into_iter().skip(before).collect();
        let methods: Vec<_> = seen.iter().filter(|r| r.method == "PUT").collect();
        assert!(!methods.is_empty(), "no PUT reached the backend");
        // (The cross-protocol check's TLS hello to this plain port has no head to read.)
        for r in seen.iter().filter(|r| !r.method.is_empty()) {
            let h = r
                .headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case("host"))
                .map(|(_, v)| v.as_str());
            assert_eq!(h, Some(host.as_str()), "{r:?}");
        }
    }
    let bad = lbprobe(&[
        "scan",
        "--listener",
        "http://a/",
        "--resolve",
        "a:80:nope",
        "--dry-run",
    ]);
    assert_exit(&bad, 2);
    assert!(
        text(&bad.stderr).contains("not an IP address"),
        "{}",
        text(&bad.stderr)
    );
}

/// `-4`/`-6` hold every connection to one address family: an IPv4 target under `-6` is not
/// reached over IPv4 behind the person's back, it is unreachable, and the report says why.
#[tokio::test]
async fn ip_family_flags_never_fall_back() {
    let backend = start_backend(BackendConfig::default()).await;
    let url = backend.url();
    let scan = ["scan", "--listener", &url, "--probes", "protocol,methods"];
    quiet_json_run(&[&scan[..], &["-4"]].concat()).await;

    let mut v6 = [&scan[..], &["-6", "--format", "json", "--quiet"]].concat();
    v6.extend_from_slice(TIGHT);
    let out = lbprobe_async(&v6).await;
    assert_exit(&out, lbprobe::exit::UNREACHABLE);
    let report = json(&out);
    let ends: Vec<String> = report["observations"]
        .as_array()
        .expect("observations")
        .iter()
        .filter_map(|o| o["exchange"]["end"]["detail"].as_str().map(String::from))
        .collect();
    assert!(
        ends.iter().any(|e| e.contains("no IPv6 address (-6 given")),
        "{ends:?}"
    );
    let methods_reached = report["observations"]
        .as_array()
        .expect("observations")
        .iter()
        .any(|o| o["family"] == "methods" && o["exchange"]["response"]["status"].is_u64());
    assert!(!methods_reached, "a method got through over IPv4 under -6");
    assert_exit(
        &lbprobe(&["scan", "--listener", &url, "-4", "-6", "--dry-run"]),
        2,
    );
}

/// `scan --reproduce` adds the keep-alive family with the race's POSTs through the listener,
/// which the dry run shows.
#[test]
fn reproduce_adds_the_keepalive_race() {
    let plan = |extra: &[&str]| {
        let scan = [
            "scan",
            "--listener",
            "http://127.0.0.1:1/",
            "--backend",
            "http://127.0.0.1:2/",
            "--probes",
            "protocol",
        ];
        dry_run_plan(&[&scan[..], extra].concat())
    };
    let races = |p: &Value| {
        p["requests"]
            .as_array()
            .expect("requests")
            .iter()
            .filter(|r| r["family"] == "keepalive" && r["role"] == "listener")
            .filter(|r| r["text"].as_str().is_some_and(|t| t.starts_with("POST ")))
            .count()
    };
    assert_eq!(races(&plan(&[])), 0);
    assert!(races(&plan(&["--reproduce"])) > 0);
}

/// What a scenario can say of a listener, `scan` can too: profile numbers (declared, apart
/// from the documented ones), the clients' timeout, and headers to mask.
#[test]
fn scan_declares_profile_numbers_client_timeout_and_masks() {
    use clap::Parser as _;
    use lbprobe::cli::{Cli, Command};
    use lbprobe::probe::ProbeSpec;
    use lbprobe::profile::Basis;
    use std::time::Duration;

    let args = [
        "lbprobe",
        "scan",
        "--listener",
        "http://127.0.0.1:1/",
        "--profile",
        "nginx",
        "--set",
        "max-uri-bytes=4k",
        "--response-timeout",
        "2s",
        "--client-timeout",
        "1500ms",
        "--mask",
        "X-Api-Key",
        "--probes",
        "protocol,latency",
    ];
    let Command::Scan(scan) = Cli::parse_from(args).command else {
        panic!("scan expected");
    };
    let job = lbprobe::app::scan_job(&scan).expect("valid flags");
    let p = &job.plan.profile;
    let uri = p.max_uri_bytes().expect("declared");
    assert_eq!((uri.value, uri.basis), (4096, Basis::Declared));
    let read = p.response_timeout().expect("declared");
    assert_eq!(
        (read.value, read.basis),
        (Duration::from_secs(2), Basis::Declared)
    );
    // What was not declared is still the profile's own documentation.
    assert_eq!(
        p.connect_timeout().map(|c| c.basis),
        Some(Basis::Documented)
    );
    assert!(job.plan.probes.iter().any(|s| matches!(
        s,
        ProbeSpec::Latency { client_timeout: Some(t), .. } if *t == Duration::from_millis(1500)
    )));
    assert_eq!(job.plan.mask, vec!["X-Api-Key".to_string()]);

    // The masked header's value never reaches the plan a person or CI reads.
    let out = lbprobe(&[
        "scan",
        "--listener",
        "http://127.0.0.1:1/",
        "-H",
        "X-Api-Key: sekrit-value",
        "--mask",
        "x-api-key",
        "--set",
        "response-timeout=2s",
        "--probes",
        "protocol",
        "--dry-run",
        "--format",
        "json",
    ]);
    assert_exit(&out, 0);
    let plan = json(&out);
    assert!(!text(&out.stdout).contains("sekrit-value"), "{plan}");
    assert_eq!(plan["profile"]["declared"]["response_timeout"], 2.0);
}

#[test]
fn scan_refuses_an_unknown_or_malformed_declaration() {
    for (flags, says) in [
        (
            &["--set", "respons-timeout=2s"][..],
            "did you mean response-timeout?",
        ),
        (&["--set", "response-timeout"][..], "expected KEY=VALUE"),
        (
            &["--set", "max-uri-bytes=lots"][..],
            "expected a size above 0",
        ),
        (
            &["--response-timeout", "0s"][..],
            "expected a duration above 0",
        ),
        (&["--client-timeout", "soon"][..], "--client-timeout"),
        (&["--mask", "X Api"][..], "expected a header name"),
        (
            &["--set", "connect-timeout=1s", "--connect-timeout", "2s"][..],
            "declared twice",
        ),
    ] {
        let mut args = vec!["scan", "--listener", "http://127.0.0.1:1/", "--dry-run"];
        args.extend_from_slice(flags);
        let out = lbprobe(&args);
        assert_exit(&out, lbprobe::exit::BAD_INPUT);
        let err = text(&out.stderr);
        assert!(err.contains(says), "{flags:?}: {err}");
    }
}

/// `--listener` is used exactly as written: a URL a parser would repair, or one with
/// credentials, is refused before anything is sent, and the error never echoes the password.
#[test]
fn scan_refuses_targets_it_would_have_to_repair() {
    for (url, says) in [
        ("http:///127.0.0.1:8080/", "the host is empty"),
        (
            "http://127.0.0.1/a\r\nX-Injected: 1",
            "a carriage return (CR)",
        ),
        ("127.0.0.1:8080", "add http:// or https://"),
        ("http://user:hunter2@127.0.0.1:1/", "-H 'Authorization: …'"),
    ] {
        let out = lbprobe(&["scan", "--listener", url, "--dry-run"]);
        assert_exit(&out, lbprobe::exit::BAD_INPUT);
        let err = text(&out.stderr);
        assert!(
            err.contains("--listener") && err.contains(says),
            "{url:?}: {err}"
        );
        assert!(!err.contains("hunter2"), "{err}");
        assert!(out.stdout.is_empty(), "nothing planned for {url:?}");
    }
}
