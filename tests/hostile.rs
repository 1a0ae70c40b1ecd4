//! Hostile and broken servers: a side that accepts and never answers, or drips its answer a
//! byte at a time, is declared silent once; the families that need answers leave it alone
//! instead of each waiting out its timeouts there, so the verdict comes in a few timeouts, not
//! hundreds. The kinds of `lbprobe lab --hostile` (lbprobe::lab::hostile) are scanned here for
//! what the scan sends and says; how fast is bench/hostile.py's business, never a test's.

mod support;
use support::findings::start_backend;

use std::time::Duration;

use support::report_json::lbprobe_async;

use lbprobe::lab::{hostile, BackendConfig, Fault, FaultRule, LabBackend};
use serde_json::Value;

async fn scan_of(fault: Fault) -> Value {
    let backend = start_backend(BackendConfig::default().fault(FaultRule::all(fault))).await;
    let url = backend.url();
    let out = lbprobe_async(&[
        "scan",
        "--backend",
        &url,
        "--timeout",
        "1",
        "--max-rate",
        "1000",
        "--format",
        "json",
        "-q",
    ])
    .await;
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("JSON report: {e}\n{}", String::from_utf8_lossy(&out.stderr)))
}

fn assert_declared_silent(report: &Value) {
    let notes = report["notes"].to_string();
    assert!(notes.contains("declared silent"), "{notes}");
    // The default families that need answers sent the silent backend nothing.
    let families: Vec<&str> = report["observations"]
        .as_array()
        .expect("observations")
        .iter()
        .filter_map(|o| o["family"].as_str())
        .collect();
    for skipped in [
        "malformed",
        "methods",
        "header-size",
        "uri-limit",
        "response",
    ] {
        assert!(
            !families.contains(&skipped),
            "{skipped} probed a silent side: {families:?}"
        );
    }
    // The sniff (two), the baseline and three TCP handshakes; latency takes the baseline, and
    // a TLS side adds plain HTTP to its port and the ALPN offer.
    let sent = report["requests_sent"].as_u64().expect("requests_sent");
    assert!(sent <= 8, "{sent} requests to a silent side");
    // A hung backend is named for what it did, never "answering within" anything.
    let slow = report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .find(|f| f["cause"] == "504.backend-slow")
        .expect("504.backend-slow");
    let reason = slow["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("sent no answer within")
            || reason.contains("sent no complete answer within"),
        "{reason}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_that_never_answers_is_declared_silent_once() {
    assert_declared_silent(&scan_of(Fault::NeverAnswer).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_that_drips_its_answer_is_silent_too() {
    // A byte every 300 ms: bytes arrive, an answer never completes within the 1 s timeout.
    assert_declared_silent(
        &scan_of(Fault::Trickle {
            byte_every: Duration::from_millis(300),
        })
        .await,
    );
}

/// The neighbour: a slow backend that does answer within the timeout is probed as usual.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_backend_that_answers_is_not_silent() {
    let report = scan_of(Fault::Delay(Duration::from_millis(200))).await;
    let notes = report["notes"].to_string();
    assert!(!notes.contains("declared silent"), "{notes}");
    let families = report["observations"].to_string();
    assert!(families.contains("\"methods\""), "methods ran");
}

/// A scan with short waits of the lab backend playing the hostile kind `name`, as `role`.
async fn scan_kind(name: &str, role: &str, extra: &[&str]) -> Value {
    let kind = hostile::kind(name).unwrap_or_else(|| panic!("no hostile kind {name}"));
    let backend = start_backend(kind.config()).await;
    let url = backend.url();
    let flag = format!("--{role}");
    let mut args = vec![
        "scan",
        &flag,
        &url,
        "--timeout",
        "1",
        "--max-rate",
        "1000",
        "--format",
        "json",
        "-q",
    ];
    if url.starts_with("https:") {
        args.push("--insecure");
    }
    args.extend_from_slice(extra);
    let out = lbprobe_async(&args).await;
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{name}: JSON report: {e}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn observations<'a>(report: &'a Value, family: &str, variant: &str) -> Vec<&'a Value> {
    report["observations"]
        .as_array()
        .expect("observations")
        .iter()
        .filter(|o| o["family"] == family && o["variant"] == variant)
        .collect()
}

/// A silent side on its own is timed by its baseline: the latency family's one request would
/// have been the same GET, waited as long, so none is sent; the sniff, the baseline and the
/// connect family's three handshakes are all the scan sends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_backend_alone_is_timed_by_its_baseline() {
    let report = scan_kind("silence", "backend", &[]).await;
    assert_declared_silent(&report);
    let sent = report["requests_sent"].as_u64().expect("requests_sent");
    assert!(
        sent <= 6,
        "{sent} requests: only the sniff, the baseline and three handshakes"
    );
    let baseline = observations(&report, "protocol", "baseline");
    let timed = observations(&report, "latency", "request-1");
    assert_eq!((baseline.len(), timed.len()), (1, 1));
    assert_eq!(
        baseline[0]["exchange"], timed[0]["exchange"],
        "the latency sample is the baseline's exchange"
    );
    let stats = observations(&report, "latency", "stats");
    let text = stats[0]["request"]["text"].as_str().unwrap_or_default();
    assert!(text.contains("baseline"), "{text}");
}

/// Neighbour: beside an answering listener a silent backend still gets latency's own request,
/// whose longer wait is what compares it with the listener's timeout firing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_backend_beside_an_answering_listener_gets_its_own_latency_request() {
    let silent = LabBackend::start(hostile::kind("silence").unwrap().config())
        .await
        .unwrap();
    let answering = LabBackend::start(BackendConfig::default()).await.unwrap();
    let (b, l) = (silent.url(), answering.url());
    let out = lbprobe_async(&[
        "scan",
        "--listener",
        &l,
        "--backend",
        &b,
        "--probes",
        "latency",
        // The listener's read timeout, so latency's wait past it is 2 s, not the 66 s of an
        // unknown listener.
        "--response-timeout",
        "1s",
        "--timeout",
        "1",
        "--max-rate",
        "1000",
        "--format",
        "json",
        "-q",
    ])
    .await;
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    let timed: Vec<&Value> = observations(&report, "latency", "request-1")
        .into_iter()
        .filter(|o| o["role"] == "backend")
        .collect();
    let baseline: Vec<&Value> = observations(&report, "protocol", "baseline")
        .into_iter()
        .filter(|o| o["role"] == "backend")
        .collect();
    assert_eq!((timed.len(), baseline.len()), (1, 1));
    assert_ne!(
        timed[0]["exchange"], baseline[0]["exchange"],
        "a request of its own"
    );
    assert!(silent.requests_seen() >= 3, "sniff, baseline and latency");
}

/// A TLS port that never answers the ClientHello: every step of the opening (sniff, baseline,
/// plain HTTP to the port, the ALPN offer) waits at once, and the side is declared silent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_port_that_never_answers_the_hello_is_declared_silent_once() {
    let report = scan_kind("tls-silence", "backend", &[]).await;
    assert_declared_silent(&report);
    let sent = report["requests_sent"].as_u64().expect("requests_sent");
    // Sniff (two), baseline, plain HTTP to the port, ALPN offer, three handshakes.
    assert!(sent <= 8, "{sent} requests to a silent TLS port");
    assert_eq!(observations(&report, "protocol", "alpn").len(), 1);
}

/// Answers whose framing never ends (a length never met, a chunk beyond any integer, CL and TE
/// at once) are heads that came and bodies that did not: hung mid-answer, declared silent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_whose_framing_never_ends_are_hung_mid_answer() {
    for kind in ["length-unmet", "chunk-overflow", "cl-te-conflict"] {
        let report = scan_kind(kind, "backend", &[]).await;
        assert_declared_silent(&report);
        let slow = report["findings"]
            .as_array()
            .expect("findings")
            .iter()
            .find(|f| f["cause"] == "504.backend-slow")
            .expect("504.backend-slow");
        let reason = slow["reason"].as_str().unwrap_or_default();
        assert!(
            reason.contains("began answering but sent no complete answer"),
            "{kind}: {reason}"
        );
    }
}

/// Escape sequences and NUL bytes in a server's answers never reach a terminal raw.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_bytes_in_answers_never_reach_the_terminal() {
    for name in ["escape-sequences", "nul-bytes"] {
        let backend = LabBackend::start(hostile::kind(name).unwrap().config())
            .await
            .unwrap();
        let url = backend.url();
        let out = lbprobe_async(&[
            "scan",
            "--backend",
            &url,
            "--probes",
            "protocol,response,methods",
            "--timeout",
            "1",
            "--max-rate",
            "1000",
            "-v",
        ])
        .await;
        assert!(!out.stdout.is_empty(), "{name}: a human report");
        for (stream, bytes) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
            let raw = bytes
                .iter()
                .position(|&b| b == 0x1b || b == 0 || b == 0x07 || b == 0x08);
            assert_eq!(
                raw,
                None,
                "{name}: a raw control byte on {stream}: {}",
                String::from_utf8_lossy(bytes)
            );
        }
        assert!(backend.requests_seen() > 0, "{name}: the scan reached it");
    }
}

/// An h2 server that never ends its headers: the client library gives up on the flood, the
/// scan goes on, and no h2 check is taken for an answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_h2_continuation_flood_ends_each_h2_check_without_an_answer() {
    let report = scan_kind("h2-continuation-flood", "backend", &["--probes", "methods"]).await;
    let notes = report["notes"].to_string();
    assert!(notes.contains("negotiates HTTP/2"), "{notes}");
    let h2: Vec<&Value> = report["observations"]
        .as_array()
        .expect("observations")
        .iter()
        .filter(|o| o["variant"].as_str().is_some_and(|v| v.ends_with(" h2")))
        .collect();
    assert!(!h2.is_empty(), "the h2 checks ran");
    for o in &h2 {
        assert!(
            o["exchange"]["response"].is_null(),
            "{}: an answer from a flood",
            o["variant"]
        );
    }
    // HTTP/1.1 is answered as usual.
    let get: Vec<&Value> = observations(&report, "methods", "GET");
    assert_eq!(get[0]["exchange"]["response"]["status"], 200);
}

/// A server that floods interim `100 Continue` answers holds the client library for the whole
/// request timeout (it reads interim answers without a bound): one such timeout, and the
/// methods family sends the side's other methods raw, each ended at the size bound at once.
/// Neighbour: an answering backend keeps every method on the client library.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_1xx_flood_costs_the_methods_family_one_timeout_not_one_per_method() {
    let via = |report: &Value| -> Vec<(String, String)> {
        report["observations"]
            .as_array()
            .expect("observations")
            .iter()
            .filter(|o| o["family"] == "methods")
            .map(|o| {
                (
                    o["variant"].as_str().unwrap_or("").to_string(),
                    o["detail"]["via"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect()
    };
    let report = scan_kind("1xx-flood", "backend", &["--probes", "methods"]).await;
    let sent = via(&report);
    let by_client: Vec<&(String, String)> = sent.iter().filter(|(_, v)| v == "reqwest").collect();
    assert_eq!(by_client.len(), 1, "{sent:?}");
    assert!(sent.len() >= 8, "every method was still checked: {sent:?}");
    let notes = report["notes"].to_string();
    assert!(
        notes.contains("its other methods go out as raw bytes"),
        "{notes}"
    );

    let answering = start_backend(BackendConfig::default()).await;
    let url = answering.url();
    let out = lbprobe_async(&[
        "scan",
        "--backend",
        &url,
        "--probes",
        "methods",
        // Well above what a loaded machine takes to answer: a timeout here would be the
        // machine's, not the backend's.
        "--timeout",
        "5",
        "--format",
        "json",
        "-q",
    ])
    .await;
    let report: Value = serde_json::from_slice(&out.stdout).expect("a JSON report");
    let sent = via(&report);
    assert!(sent.len() >= 8, "{sent:?}");
    assert!(
        sent.iter()
            .filter(|(m, _)| m != "CONNECT")
            .all(|(_, v)| v == "reqwest"),
        "{sent:?}"
    );
}

/// `lab --hostile list` names every kind; an unknown kind is bad input with the nearest name;
/// `lab --hostile KIND` prints the backend's URL and the kind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lab_hostile_lists_starts_and_refuses_kinds() {
    let list = lbprobe_async(&["lab", "--hostile", "list"]).await;
    assert!(list.status.success());
    let text = String::from_utf8_lossy(&list.stdout);
    for kind in hostile::KINDS {
        assert!(
            text.contains(kind.name),
            "{} missing from\n{text}",
            kind.name
        );
    }
    let unknown = lbprobe_async(&["lab", "--hostile", "silense"]).await;
    assert_eq!(unknown.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&unknown.stderr).contains("did you mean silence?"),
        "{}",
        String::from_utf8_lossy(&unknown.stderr)
    );
    let started = lbprobe_async(&[
        "--format",
        "json",
        "lab",
        "--hostile",
        "tls-silence",
        "--for",
        "0",
    ])
    .await;
    assert!(started.status.success());
    let info: Value = serde_json::from_slice(&started.stdout).expect("JSON");
    assert_eq!(info["hostile"], "tls-silence");
    assert!(
        info["backend"]
            .as_str()
            .is_some_and(|u| u.starts_with("https://127.0.0.1:")),
        "{info}"
    );
}
