//! Hostile and broken servers: a side that accepts and never answers, or drips its answer a
//! byte at a time, is declared silent once; the families that need answers leave it alone
//! instead of each waiting out its timeouts there, so the verdict comes in a few timeouts, not
//! hundreds.

mod support;

use std::time::Duration;

use support::report_json::lbprobe_async;

use lbprobe::lab::{BackendConfig, Fault, FaultRule, LabBackend};
use serde_json::Value;

async fn scan_of(fault: Fault) -> Value {
    let backend = LabBackend::start(BackendConfig::default().fault(FaultRule::all(fault)))
        .await
        .unwrap_or_else(|e| panic!("lab backend: {e}"));
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
    // The sniff (two), the baseline, one latency request and three TCP handshakes.
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
