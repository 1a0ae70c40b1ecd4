//! lbprobe's JUnit reports validate against the JUnit schema Jenkins' xunit plugin checks them
//! with (tests/junit.xsd, written by hand from its published structure; see its header), using
//! `xmllint --schema` from libxml2-utils. The reports are real: a scan of a lab nginx and
//! backend, a run cut short by its request cap, a run whose confirmed fault is expected. The
//! schema refuses broken documents, so that the check is not vacuous. xmllint missing is a
//! failure, never a skip (scripts/test.sh installs it).

#[path = "support/junit_xml.rs"]
mod junit_xml;
mod support;
#[path = "support/xmllint.rs"]
mod xmllint;

use std::path::Path;
use std::process::Command;

use lbprobe::lab::{BackendConfig, Fault, FaultRule, NginxServer, NginxSpec};
use support::findings::{start_backend, start_nginx};
use support::report_json::{
    assert_exit, backend_scenario, confirmed_causes, json, lbprobe_async, scan_args, text,
};
use xmllint::{assert_valid, validate};

/// The value of the suite's property `name`.
fn property<'a>(suite: &'a junit_xml::Suite, name: &str) -> &'a str {
    suite
        .properties
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no property {name} in {:#?}", suite.properties))
}

/// The suite's `timestamp` (`2026-01-01T00:00:00Z`) is within a minute of now: the run's start.
fn assert_recent_timestamp(xml: &str) {
    let stamp = xml
        .split("timestamp=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no timestamp on the suite: {xml}"));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let out = Command::new("date")
        .args(["-u", "-d", stamp, "+%s"])
        .output()
        .expect("date");
    let then: u64 = text(&out.stdout)
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("timestamp {stamp} does not read as a date ({e})"));
    assert!(now.abs_diff(then) < 60, "timestamp {stamp} is not now");
}

/// The snapshot report validates; the same document broken in ways Jenkins' xunit plugin
/// refuses does not.
#[test]
fn the_schema_takes_the_snapshot_report_and_refuses_broken_ones() {
    let snap = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/snapshots/report_snapshots__junit.snap"
    ))
    .expect("the JUnit snapshot");
    let xml = &snap[snap.find("<?xml").expect("XML in the snapshot")..];
    assert_valid("the snapshot", xml);

    let first_case = "<testcase classname=\"400\" name=\"400.backend-expects-https\"";
    assert!(xml.contains(first_case), "{xml}");
    let broken = [
        (
            "a testcase without a name",
            xml.replacen(first_case, "<testcase classname=\"400\"", 1),
        ),
        (
            "a time that is not a number",
            xml.replacen("time=\"0.005\"", "time=\"fast\"", 1),
        ),
        (
            "skipped on testsuites",
            xml.replacen(
                "<testsuites name=\"lbprobe\"",
                "<testsuites skipped=\"1\" name=\"lbprobe\"",
                1,
            ),
        ),
        (
            "a timestamp that is not a date",
            xml.replacen("2026-01-01T00:00:00Z", "yesterday", 1),
        ),
        (
            "a failure outside a testcase",
            xml.replacen("<properties>", "<failure/><properties>", 1),
        ),
        (
            "a property without a value",
            xml.replacen(
                "<property name=\"scenario\" value=\"snapshot\"/>",
                "<property name=\"scenario\"/>",
                1,
            ),
        ),
    ];
    for (what, doc) in broken {
        assert_ne!(&doc, xml, "{what}: the replacement did not apply");
        assert!(
            validate(&doc).is_err(),
            "{what}: tests/junit.xsd accepted it"
        );
    }
}

/// A scan of a lab nginx in front of a lab backend: valid, with the targets, the profile, the
/// host and the time the run started.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scan_of_the_lab_as_junit_validates() {
    let backend = start_backend(BackendConfig::default().reject_method("DELETE")).await;
    let nginx = start_nginx(&NginxSpec::one(NginxServer::proxy(backend.url())));
    let (listener, direct) = (nginx.url(0), backend.url());
    let out = lbprobe_async(&scan_args(
        &listener,
        &direct,
        &["--probes", "protocol,methods", "--format", "junit", "-q"],
    ))
    .await;
    assert_exit(&out, lbprobe::exit::OK);
    let xml = text(&out.stdout);
    assert_valid("a scan of the lab", &xml);
    let suite = junit_xml::parse(&xml);
    assert!(!suite.cases.is_empty(), "{xml}");
    assert!(
        property(&suite, "listener").starts_with(listener.trim_end_matches('/')),
        "{xml}"
    );
    assert!(
        property(&suite, "backend").starts_with(direct.trim_end_matches('/')),
        "{xml}"
    );
    assert!(!property(&suite, "profile").is_empty(), "{xml}");
    assert!(xml.contains(" hostname=\""), "{xml}");
    assert_recent_timestamp(&xml);
}

/// A scenario against one lab backend, with `extra` YAML appended; its path inside `dir`.
fn scenario(dir: &Path, backend: &str, extra: &str) -> String {
    backend_scenario(
        dir,
        backend,
        &format!("probes: [protocol, methods]\n{extra}"),
    )
}

/// A run cut short by its request cap: exit 1, valid, and the report says which cap and that
/// the skipped causes were not decided.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_cut_short_as_junit_validates() {
    let backend = start_backend(BackendConfig::default()).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let path = scenario(
        dir.path(),
        &backend.url(),
        "limits: { max-rate: 500, request-timeout: 2s, max-requests: 4 }\n",
    );
    let out = lbprobe_async(&["run", &path, "--format", "junit", "-q"]).await;
    assert_exit(&out, lbprobe::exit::FINDING);
    let xml = text(&out.stdout);
    assert_valid("a run cut short", &xml);
    let suite = junit_xml::parse(&xml);
    assert!(
        property(&suite, "cut_short").contains("request cap (4)"),
        "{xml}"
    );
    assert!(xml.contains("CUT SHORT"), "{xml}");
}

/// A run whose confirmed faults the scenario expects: exit 0, valid, no failing testcase; the
/// expectations are passing testcases.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_with_expected_faults_as_junit_validates() {
    let backend =
        start_backend(BackendConfig::default().fault(FaultRule::all(Fault::Status(500)))).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let limits = "limits: { max-rate: 500, request-timeout: 2s }\n";
    let plain = scenario(dir.path(), &backend.url(), limits);
    let unpinned = dir.path().join("unpinned.xml");
    let unpinned_arg = format!("junit={}", unpinned.display());
    let out = lbprobe_async(&["run", &plain, "--format", "json", "-q", "-o", &unpinned_arg]).await;
    assert_exit(&out, lbprobe::exit::FINDING);
    // The neighbour: the same fault, not expected, is a failing testcase.
    let unpinned = std::fs::read_to_string(&unpinned).expect("the JUnit file");
    assert_valid("a run with an unexpected fault", &unpinned);
    assert!(junit_xml::parse(&unpinned).totals[1] > 0, "{unpinned}");
    let expect: String = confirmed_causes(&json(&out))
        .iter()
        .map(|c| format!("  {c}: confirmed\n"))
        .collect();
    assert!(!expect.is_empty(), "a 500 everywhere confirms something");

    let pinned = scenario(
        dir.path(),
        &backend.url(),
        &format!("{limits}expect:\n{expect}"),
    );
    let out = lbprobe_async(&["run", &pinned, "--format", "junit", "-q"]).await;
    assert_exit(&out, lbprobe::exit::OK);
    let xml = text(&out.stdout);
    assert_valid("a run with expected faults", &xml);
    let suite = junit_xml::parse(&xml);
    let expected: Vec<&junit_xml::TestCase> = suite
        .cases
        .iter()
        .filter(|c| c.classname == "expect")
        .collect();
    assert_eq!(expected.len(), expect.lines().count(), "{xml}");
    assert!(expected.iter().all(|c| c.outcome.is_none()), "{xml}");
    assert_eq!(suite.totals[1], 0, "no failure: {xml}");
    let first = expect.trim_start().split(':').next().expect("a cause id");
    let case = suite.case(first);
    assert!(case.outcome.is_none(), "{xml}");
    assert!(case.text.contains("confirmed as expected ("), "{xml}");
}
