//! The report sets its wall time against its floor (max(requests ÷ max-rate, the longest single
//! wait)), and a backend slow to refuse does not make the limit search less exact. How close to
//! the floor a default scan comes is measured by bench/floor.py, not asserted here: timings on a
//! shared machine are no test.

mod support;
use support::report_json::observation;

use std::time::Duration;

use lbprobe::lab::{BackendConfig, LabBackend};
use serde_json::Value;

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_states_its_floor_and_names_the_longest_wait() {
    // Slow to say no, quick to say yes; it sits on a body that never comes for longer than the
    // template's declared 3 s wait.
    let backend = LabBackend::start(
        BackendConfig::default()
            .max_header_bytes(4000)
            .read_timeout(Duration::from_secs(4))
            .refusal_delay(Duration::from_millis(300)),
    )
    .await
    .unwrap_or_else(|e| panic!("lab backend: {e}"));
    let url = backend.url();
    let args = [
        "scan",
        "--backend",
        &url,
        "--probes",
        "header-size",
        "--malformed",
        "cl-larger-than-body,cl-non-numeric",
        "--timeout",
        "5",
        "--max-rate",
        "500",
        "--format",
        "json",
        "--quiet",
    ];
    let out = support::report_json::lbprobe_async(&args).await;
    let report = support::report_json::json(&out);
    let t = &report["timing"];

    // The numbers agree with each other and with the rest of the report.
    let requests = f(&report["requests_sent"]);
    assert!(
        (f(&t["rate_seconds"]) - requests / 500.0).abs() < 1e-9,
        "{t}"
    );
    assert!((f(&t["wall_seconds"]) - f(&report["duration_ms"]) / 1000.0).abs() < 1e-9);
    let wait = &t["longest_wait"];
    let floor = f(&t["rate_seconds"]).max(f(&wait["seconds"]));
    assert!((f(&t["floor_seconds"]) - floor).abs() < 1e-9, "{t}");
    assert!(
        (f(&t["ratio"]) - f(&t["wall_seconds"]) / floor).abs() < 1e-9,
        "{t}"
    );
    assert!(f(&t["ratio"]) >= 1.0, "no run beats its floor: {t}");

    // The longest wait is the template the backend sat on, waited out to its declared bound,
    // and it is the request's own observation.
    assert_eq!(wait["family"], "malformed", "{t}");
    assert_eq!(wait["variant"], "cl-larger-than-body", "{t}");
    assert_eq!(wait["role"], "backend", "{t}");
    assert_eq!(wait["declared"], true, "{t}");
    assert_eq!(f(&wait["bound_seconds"]), 3.0, "{t}");
    assert!(f(&wait["seconds"]) >= 2.9, "{t}");
    assert_eq!(t["floor_set_by"], "wait", "{t}");
    let observed = observation(&report, "malformed", "cl-larger-than-body", "backend");
    assert_eq!(
        f(&observed["exchange"]["timings"]["total_ms"]) / 1000.0,
        f(&wait["seconds"])
    );

    // A side slow to refuse still gets an exact limit: the search presumes, the answers decide.
    let limit = observation(&report, "header-size", "limit", "backend");
    let search = &limit["detail"];
    assert_eq!(search["exact"], true, "{search}");
    let accepted = search["largest_accepted"]
        .as_u64()
        .expect("a size accepted");
    assert_eq!(
        search["smallest_rejected"].as_u64(),
        Some(accepted + 1),
        "{search}"
    );
}
