//! Every JSON document lbprobe prints carries its `schema_version` and validates against its
//! JSON Schema under docs/schema/ (draft 2020-12). The documents are real: each comes from
//! running the binary (against a lab backend and nginx where it needs targets). A broken
//! document must fail, so that the check is not vacuous.

#[path = "support/json_schema.rs"]
mod json_schema;
mod support;

use std::process::{Command, Output, Stdio};

use json_schema::{assert_valid, errors, read_json, schema_dir, schema_path, validator};
use lbprobe::lab::{BackendConfig, Fault, FaultRule, NginxServer, NginxSpec};
use lbprobe::report::schema::Kind;
use serde_json::{json, Value};
use support::findings::{start_backend, start_nginx};
use support::report_json::scan_args;

const BIN: &str = env!("CARGO_BIN_EXE_lbprobe");

fn run(args: &[&str], stdin: &[u8]) -> Output {
    use std::io::Write;
    let mut child = Command::new(BIN)
        .args(args)
        .env("NO_COLOR", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {BIN}: {e}"));
    let mut input = child.stdin.take().expect("stdin");
    input.write_all(stdin).expect("write stdin");
    drop(input);
    child.wait_with_output().expect("lbprobe output")
}

/// `lbprobe ARGS` as JSON, checking its exit code against `codes`.
fn json_of(args: &[&str], stdin: &[u8], codes: &[i32]) -> Value {
    let out = run(args, stdin);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.code().is_some_and(|c| codes.contains(&c)),
        "lbprobe {} exited {:?}; stderr:\n{stderr}",
        args.join(" "),
        out.status.code()
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "lbprobe {} printed no JSON ({e}); stderr:\n{stderr}",
            args.join(" ")
        )
    })
}

/// Async: the lab tests run the binary while the lab's backend answers on the same runtime.
async fn json_of_async(args: Vec<String>, stdin: Vec<u8>, codes: &'static [i32]) -> Value {
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        json_of(&args, &stdin, codes)
    })
    .await
    .expect("lbprobe task")
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

#[test]
fn every_output_kind_has_a_schema_stating_its_version_and_a_line_in_the_readme() {
    let readme = std::fs::read_to_string(schema_dir().join("README.md")).expect("README.md");
    for kind in Kind::ALL {
        let schema = read_json(&schema_path(kind));
        assert_eq!(
            schema["$schema"],
            "https://json-schema.org/draft/2020-12/schema",
            "{}",
            kind.name()
        );
        assert_eq!(
            schema["properties"]["schema_version"]["const"],
            json!(kind.version()),
            "{}: the schema's schema_version is the one the binary writes",
            kind.name()
        );
        assert!(
            schema["required"]
                .as_array()
                .is_some_and(|r| r.contains(&json!("schema_version"))),
            "{}",
            kind.name()
        );
        validator(kind);
        let row = format!(
            "| [`{0}.schema.json`]({0}.schema.json) | {1} |",
            kind.name(),
            kind.version()
        );
        assert!(
            readme.contains(&row),
            "docs/schema/README.md lacks the row starting {row}"
        );
    }
}

/// The outputs that need no target: the catalogue, one cause, the templates, the hostile kinds,
/// a log summary and one log line explained.
#[test]
fn outputs_without_targets_match_their_schemas() {
    let log = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/logs/nginx-upstream.log"
    );
    let cases: [(Kind, &[&str]); 7] = [
        (Kind::Causes, &["causes", "--format", "json"]),
        (
            Kind::Cause,
            &["explain", "502.backend-unreachable", "--format", "json"],
        ),
        (Kind::Probes, &["probes", "--format", "json"]),
        (
            Kind::HostileKinds,
            &["lab", "--hostile", "list", "--format", "json"],
        ),
        (Kind::Logs, &["logs", log, "--format", "json"]),
        (
            Kind::LogLine,
            &["logs", log, "--explain-line", "3", "--format", "json"],
        ),
        // The lab's backend alone, started and stopped at once.
        (
            Kind::Lab,
            &[
                "lab",
                "--hostile",
                "silence",
                "--for",
                "0",
                "--format",
                "json",
            ],
        ),
    ];
    for (kind, args) in cases {
        assert_valid(kind, &json_of(args, b"", &[0]));
    }
    // The catalogue's causes each read as the single-cause document's body.
    let causes = json_of(&["causes", "--format", "json"], b"", &[0]);
    for cause in causes["causes"].as_array().expect("causes") {
        let mut one = cause.clone();
        one["schema_version"] = json!(Kind::Cause.version());
        assert_valid(Kind::Cause, &one);
    }
}

/// The outputs of runs against a lab nginx in front of a lab backend: a scan, its dry run, a
/// marked scan merged with a capture, a replay, `backend` on the lab backend's port, and the
/// lab itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outputs_of_runs_against_the_lab_match_their_schemas() {
    let backend = start_backend(BackendConfig::default().reject_method("DELETE")).await;
    let nginx = start_nginx(&NginxSpec::one(NginxServer::proxy(backend.url())));
    let (listener, direct) = (nginx.url(0), backend.url());
    let scan = |extra: &[&str]| {
        let mut args = strings(&scan_args(
            &listener,
            &direct,
            &["--probes", "protocol,methods", "--format", "json", "-q"],
        ));
        args.extend(strings(extra));
        args
    };

    let report = json_of_async(scan(&[]), Vec::new(), &[0, 1]).await;
    assert_valid(Kind::Run, &report);
    assert!(
        report["findings"].as_array().is_some_and(|f| !f.is_empty()),
        "a scan of the lab finds something to say: {report:#}"
    );
    assert_valid(
        Kind::Plan,
        &json_of_async(scan(&["--dry-run"]), Vec::new(), &[0]).await,
    );

    // merge: a marked scan of the listener, and a capture that saw its first marker arrive.
    let dir = tempfile::tempdir().expect("temp dir");
    let client = json_of_async(
        strings(&[
            "scan",
            "--listener",
            &listener,
            "--marker",
            "--probes",
            "protocol",
            "--format",
            "json",
            "-q",
        ]),
        Vec::new(),
        &[0, 1],
    )
    .await;
    let marker = client["observations"]
        .as_array()
        .expect("observations")
        .iter()
        .filter_map(|o| o["request"]["text"].as_str())
        .find_map(|t| {
            t.split("X-Lbprobe-Id: ")
                .nth(1)
                .and_then(|rest| rest.split('\\').next())
        })
        .unwrap_or_else(|| panic!("no marked request in {client:#}"))
        .to_string();
    let client_path = dir.path().join("client.json");
    let capture_path = dir.path().join("capture.json");
    std::fs::write(&client_path, client.to_string()).expect("client.json");
    std::fs::write(
        &capture_path,
        json!({ "capture": { "port": backend.addr().port(), "markers": [{ "marker": marker, "bytes": 120 }] } })
            .to_string(),
    )
    .expect("capture.json");
    let merged = json_of_async(
        strings(&[
            "merge",
            client_path.to_str().expect("UTF-8"),
            capture_path.to_str().expect("UTF-8"),
            "--format",
            "json",
        ]),
        Vec::new(),
        &[0, 1],
    )
    .await;
    assert_valid(Kind::Merge, &merged);
    assert_eq!(merged["summary"]["forwarded"], 1, "{merged:#}");

    let replayed = json_of_async(
        strings(&["replay", "-", "--listener", &listener, "--format", "json"]),
        b"GET /fine HTTP/1.1\r\nHost: shop.example\r\n\r\n".to_vec(),
        &[0, 1],
    )
    .await;
    assert_valid(Kind::Replay, &replayed);
    // A request nginx refuses (a header line above its 8k buffers), shrunk: the `shrink` part.
    let refused = format!(
        "GET /cart HTTP/1.1\r\nHost: shop.example\r\nAccept: */*\r\nCookie: c={}\r\n\r\n",
        "x".repeat(9000)
    );
    let shrunk = json_of_async(
        strings(&[
            "replay",
            "-",
            "--listener",
            &listener,
            "--backend",
            &direct,
            "--shrink",
            "--format",
            "json",
        ]),
        refused.into_bytes(),
        &[0, 1],
    )
    .await;
    assert_valid(Kind::Replay, &shrunk);
    assert!(shrunk["shrink"].is_object(), "{shrunk:#}");

    let port = backend.addr().port().to_string();
    let host = json_of_async(
        strings(&["backend", "--port", &port, "--format", "json", "--quiet"]),
        Vec::new(),
        &[0, 1],
    )
    .await;
    assert_valid(Kind::Backend, &host);
    assert!(host["checks"].is_object(), "{host:#}");

    assert_valid(
        Kind::Lab,
        &json_of_async(
            strings(&["lab", "--for", "0", "--format", "json"]),
            Vec::new(),
            &[0],
        )
        .await,
    );
}

/// A scenario run with every optional part of the run report present: expectations (met and
/// unmet), a limit expectation, and the run cut short by its request cap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_with_expectations_cut_short_matches_the_run_schema() {
    let backend =
        start_backend(BackendConfig::default().fault(FaultRule::all(Fault::Status(502)))).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let scenario = dir.path().join("s.yaml");
    std::fs::write(
        &scenario,
        format!(
            "targets:\n  backend: {{ url: \"{}\" }}\nprobes: [protocol, methods, uri-limit]\n\
             limits: {{ max-rate: 500, request-timeout: 2s, max-requests: 12 }}\n\
             expect:\n  502.backend-unreachable: ruled_out\n  405.trace-unsupported: reproduced\n  uri-limit: {{ at-least: 1k }}\n",
            backend.url()
        ),
    )
    .expect("scenario");
    let path = scenario.to_str().expect("UTF-8").to_string();
    let report = json_of_async(
        strings(&["run", &path, "--format", "json", "-q"]),
        Vec::new(),
        &[1],
    )
    .await;
    assert_valid(Kind::Run, &report);
    assert!(report["cut_short"].is_string(), "{report:#}");
    assert_eq!(
        report["expectations"].as_array().map(Vec::len),
        Some(2),
        "{report:#}"
    );
    assert_eq!(
        report["limit_expectations"].as_array().map(Vec::len),
        Some(1),
        "{report:#}"
    );
}

/// The check is not vacuous: real documents, each broken in one way a reader would trip on,
/// fail their schema, and say where.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_documents_fail_their_schemas() {
    let backend = start_backend(BackendConfig::default()).await;
    let report = json_of_async(
        strings(&[
            "scan",
            "--backend",
            &backend.url(),
            "--probes",
            "protocol,methods",
            "--format",
            "json",
            "-q",
        ]),
        Vec::new(),
        &[0],
    )
    .await;
    assert_valid(Kind::Run, &report);
    assert!(
        report["findings"].as_array().is_some_and(|f| !f.is_empty()),
        "{report:#}"
    );
    let cause = json_of(
        &["explain", "502.backend-unreachable", "--format", "json"],
        b"",
        &[0],
    );
    assert_valid(Kind::Cause, &cause);

    type Break = fn(&mut Value);
    let broken: [(Kind, &Value, &str, Break); 8] = [
        (Kind::Run, &report, "/findings/0/verdict", |d| {
            d["findings"][0]["verdict"] = json!("probably")
        }),
        (Kind::Run, &report, "/findings/0/side", |d| {
            d["findings"][0]["side"] = json!("backend")
        }),
        (Kind::Run, &report, "", |d| {
            d.as_object_mut().expect("object").remove("exit_code");
        }),
        (Kind::Run, &report, "/schema_version", |d| {
            d["schema_version"] = json!(99)
        }),
        (Kind::Run, &report, "", |d| d["surprise"] = json!(true)),
        (Kind::Run, &report, "/observations/0/role", |d| {
            d["observations"][0]["role"] = json!("client")
        }),
        (Kind::Cause, &cause, "/code", |d| d["code"] = json!("502")),
        (Kind::Cause, &cause, "", |d| {
            d.as_object_mut().expect("object").remove("schema_version");
        }),
    ];
    for (kind, doc, at, break_it) in broken {
        let mut bad = doc.clone();
        break_it(&mut bad);
        let errors = errors(kind, &bad);
        assert!(
            errors.iter().any(|e| e.starts_with(&format!("at {at}:"))),
            "a {} document broken at `{at}` must fail there; errors: {errors:#?}",
            kind.name()
        );
    }
}
