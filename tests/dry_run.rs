//! `--dry-run` shows exactly what the real run sends. For a scan against a real nginx in front
//! of a lab backend, and a scenario against a real HAProxy in front of a pool of two, the dry
//! run's plan (`--dry-run --format json`) and the run it stands for (`--format json`, the same
//! flags) are compared family by family and request by request, on the exact bytes as both
//! record them (escaped, secrets masked, no marker):
//! - every planned request was sent;
//! - a family whose plan says it is complete sent nothing it did not plan;
//! - a family whose later requests depend on the answers (a limit search, the rate ramp, the
//!   keep-alive trials) sent its planned first requests, and the rest are its own kind;
//! - no family sent anything without a plan.
//!
//! Observations that stand for no request of their own (the sniff, the ALPN offer, a limit's
//! result, latency statistics, TCP handshakes) carry no bytes and are left out.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Output;

use serde_json::Value;

use lbprobe::lab::{BackendConfig, HaproxyFrontend, HaproxySpec, NginxServer, NginxSpec};

mod support;
use support::findings::{start_backend, start_haproxy, start_nginx};
use support::report_json::{lbprobe_async, scan_args, TIGHT};

/// One request as the dry run lists it and the report records it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Request {
    variant: String,
    role: String,
    exact: bool,
    bytes: u64,
    text: String,
}

impl Request {
    fn of(family_item: &Value, request: &Value) -> Request {
        Request {
            variant: str_of(&family_item["variant"]),
            role: str_of(&family_item["role"]),
            exact: request["exact"].as_bool().expect("exact"),
            bytes: request["bytes"].as_u64().expect("bytes"),
            text: str_of(&request["text"]),
        }
    }

    /// For failure messages: the request without its padding.
    fn short(&self) -> String {
        let mut text = self.text.clone();
        if text.len() > 120 {
            text.truncate(120);
            text.push('…');
        }
        format!(
            "{} {} ({} bytes): {text}",
            self.role, self.variant, self.bytes
        )
    }
}

fn str_of(v: &Value) -> String {
    v.as_str()
        .unwrap_or_else(|| panic!("a string, not {v}"))
        .to_string()
}

fn json(out: &Output, what: &str) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{what}: stdout is not JSON ({e}); stderr:\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// The dry run's requests by family, and whether each family's plan is complete.
fn planned(plan: &Value) -> (BTreeMap<String, Vec<Request>>, BTreeMap<String, bool>) {
    let mut by_family: BTreeMap<String, Vec<Request>> = BTreeMap::new();
    for r in plan["requests"].as_array().expect("requests") {
        by_family
            .entry(str_of(&r["family"]))
            .or_default()
            .push(Request::of(r, r));
    }
    let complete = plan["plans"]
        .as_array()
        .expect("plans")
        .iter()
        .map(|p| {
            (
                str_of(&p["family"]),
                p["complete"].as_bool().expect("complete"),
            )
        })
        .collect();
    (by_family, complete)
}

/// The report's requests by family: every observation that records bytes it sent, and the
/// malformed templates' (`rl-zero-bytes` is a connection on which no byte is sent, on purpose).
fn sent(report: &Value) -> BTreeMap<String, Vec<Request>> {
    let mut by_family: BTreeMap<String, Vec<Request>> = BTreeMap::new();
    for o in report["observations"].as_array().expect("observations") {
        if o["request"]["bytes"].as_u64() == Some(0) && o["family"] != "malformed" {
            continue;
        }
        by_family
            .entry(str_of(&o["family"]))
            .or_default()
            .push(Request::of(o, &o["request"]));
    }
    by_family
}

/// `want` minus `have`, as multisets.
fn missing(want: &[Request], have: &[Request]) -> Vec<Request> {
    let mut left: Vec<&Request> = have.iter().collect();
    let mut out = Vec::new();
    for r in want {
        match left.iter().position(|h| *h == r) {
            Some(i) => {
                left.swap_remove(i);
            }
            None => out.push(r.clone()),
        }
    }
    out
}

/// What the comparison covered, for the test's own checks.
#[derive(Debug, Default)]
struct Compared {
    families: BTreeSet<String>,
    complete: BTreeSet<String>,
    adaptive: BTreeSet<String>,
    requests: usize,
}

/// Compare a dry run with the run it stands for; panics with every difference found.
fn compare(plan: &Value, report: &Value) -> Compared {
    let (planned, complete) = planned(plan);
    let sent = sent(report);
    let mut problems = Vec::new();
    let mut compared = Compared::default();
    for family in sent.keys() {
        if !complete.contains_key(family) {
            problems.push(format!(
                "{family}: sent requests, and the dry run has no plan for it"
            ));
        }
    }
    for (family, is_complete) in &complete {
        let want = planned.get(family).cloned().unwrap_or_default();
        let got = sent.get(family).cloned().unwrap_or_default();
        for r in missing(&want, &got) {
            problems.push(format!("{family}: planned, never sent: {}", r.short()));
        }
        if *is_complete {
            for r in missing(&got, &want) {
                problems.push(format!(
                    "{family}: sent, never planned (and the plan says it is complete): {}",
                    r.short()
                ));
            }
            compared.complete.insert(family.clone());
        } else {
            // The rest of an adaptive family is chosen from the answers: its own variants and
            // sides, never another family's.
            let roles: BTreeSet<&str> = want.iter().map(|r| r.role.as_str()).collect();
            for r in missing(&got, &want) {
                if !roles.contains(r.role.as_str()) {
                    problems.push(format!(
                        "{family}: sent to a side its plan never named: {}",
                        r.short()
                    ));
                }
            }
            compared.adaptive.insert(family.clone());
        }
        compared.requests += want.len();
        if !want.is_empty() || !got.is_empty() {
            compared.families.insert(family.clone());
        }
    }
    assert!(
        problems.is_empty(),
        "the dry run and the run differ:\n{}\nrun notes: {:#}",
        problems.join("\n"),
        report["notes"]
    );
    compared
}

/// The same arguments, once with `--dry-run` and once for real; both as JSON.
async fn dry_and_real(args: &[&str]) -> (Value, Value) {
    let mut dry = args.to_vec();
    dry.extend(["--dry-run", "--format", "json"]);
    let out = lbprobe_async(&dry).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "dry run: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let plan = json(&out, "dry run");
    let mut real = args.to_vec();
    real.extend(["--format", "json", "--quiet"]);
    let out = lbprobe_async(&real).await;
    let report = json(&out, "run");
    assert_eq!(report["partial"], false, "{:#}", report["notes"]);
    (plan, report)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_scan_sends_exactly_what_its_dry_run_shows() {
    let backend = start_backend(BackendConfig::default()).await;
    // Short waits for incomplete requests, so that the partial family ends in a second.
    let nginx = start_nginx(&NginxSpec::one(
        NginxServer::proxy(backend.url())
            .extra("client_header_timeout 1s;\nclient_body_timeout 1s;"),
    ));
    let (listener, direct) = (nginx.url(0), backend.url());
    let mut args = scan_args(
        &listener,
        &direct,
        &[
            "--profile",
            "nginx",
            "-H",
            "Authorization: Bearer dry-run-secret",
            "--probes",
            "protocol,malformed,methods,header-size,header-limit,uri-limit,partial,latency,connect,response",
            "--max-requests",
            "2000",
        ],
    );
    args.extend_from_slice(TIGHT);
    let (plan, report) = dry_and_real(&args).await;
    let compared = compare(&plan, &report);
    assert!(
        !plan.to_string().contains("dry-run-secret")
            && !report.to_string().contains("dry-run-secret"),
        "the secret is masked in both"
    );
    for family in [
        "protocol",
        "malformed",
        "methods",
        "partial",
        "latency",
        "response",
    ] {
        assert!(compared.complete.contains(family), "{family}: {compared:?}");
    }
    for family in ["header-size", "header-limit", "uri-limit"] {
        assert!(compared.adaptive.contains(family), "{family}: {compared:?}");
    }
    assert!(compared.requests > 250, "{compared:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn haproxy_scenario_sends_exactly_what_its_dry_run_shows() {
    let one = start_backend(BackendConfig::default()).await;
    let two = start_backend(BackendConfig::default()).await;
    let haproxy = start_haproxy(
        &HaproxySpec::one(HaproxyFrontend {
            servers: vec![one.url(), two.url()],
            ..HaproxyFrontend::default()
        })
        .defaults("timeout http-request 1s\n    timeout http-keep-alive 1s"),
    );
    // Every family, each with caps that keep it to a second or two.
    let dir = tempfile::tempdir().expect("temp dir");
    let scenario = dir.path().join("every-family.yaml");
    std::fs::write(
        &scenario,
        r#"name: every-family
targets:
  listener: { url: "${LISTENER}" }
  backend: { url: "${ONE}" }
  pool:
    - { url: "${ONE}" }
    - { url: "${TWO}" }
probes:
  - protocol
  - malformed: { variants: [te, host, obs-fold] }
  - methods
  - header-size
  - uri-limit: { bisect: false }
  - response
  - partial: { max-wait: 3s }
  - latency: { requests: 3 }
  - connect: { attempts: 2 }
  - mtu: { sizes: [1200, 9000], discover: false }
  - keepalive: { max-wait: 2s }
  - rate: { start: 5, factor: 2, step: 500ms, max-rate: 20, max-requests: 40, max-duration: 5s }
  - pool
limits:
  max-requests: 2000
  max-rate: 1000
  max-duration: 60s
  request-timeout: 3s
"#,
    )
    .expect("scenario written");
    let (listener, one_url, two_url) = (haproxy.url(0), one.url(), two.url());
    let vars = [
        format!("LISTENER={listener}"),
        format!("ONE={one_url}"),
        format!("TWO={two_url}"),
    ];
    let file = scenario.to_string_lossy().to_string();
    let args = vec![
        "run", &file, "--var", &vars[0], "--var", &vars[1], "--var", &vars[2],
    ];
    let (plan, report) = dry_and_real(&args).await;
    let compared = compare(&plan, &report);
    for family in [
        "protocol",
        "malformed",
        "methods",
        "response",
        "partial",
        "latency",
        "mtu",
        "pool",
    ] {
        assert!(compared.complete.contains(family), "{family}: {compared:?}");
    }
    for family in ["header-size", "uri-limit", "keepalive", "rate"] {
        assert!(compared.adaptive.contains(family), "{family}: {compared:?}");
        assert!(compared.families.contains(family), "{family}: {compared:?}");
    }
    assert!(compared.requests > 80, "{compared:?}");
}
