//! Reading a run's report in assertions: one finding by cause, its verdict, and every finding
//! in a line each for the failure message.

use lbprobe::classify::{Finding, Verdict};
use lbprobe::lab::LabBackend;
use lbprobe::report::Report;
use lbprobe::target::{Role, Target};

/// Every finding in one line each (and the run's notes), for assertion messages.
pub fn summary(report: &Report) -> String {
    let mut out = String::new();
    for f in &report.findings {
        out.push_str(&format!(
            "\n  {} {}: {}\n    {}",
            f.cause,
            f.verdict,
            f.reason,
            evidence(f).replace('\n', "\n    ")
        ));
    }
    if !report.notes.is_empty() {
        out.push_str(&format!("\n  notes: {:?}", report.notes));
    }
    out
}

pub fn finding<'a>(report: &'a Report, cause: &str) -> &'a Finding {
    report
        .findings
        .iter()
        .find(|f| f.cause == cause)
        .unwrap_or_else(|| panic!("no finding for {cause}; findings:{}", summary(report)))
}

/// Asserts the verdict on `cause` and returns its evidence.
pub fn assert_verdict(report: &Report, cause: &str, verdict: Verdict) -> String {
    let f = finding(report, cause);
    assert_eq!(
        f.verdict,
        verdict,
        "{cause}: {}; findings:{}",
        f.reason,
        summary(report)
    );
    evidence(f)
}

/// The evidence of a finding as one text, a line per fact.
pub fn evidence(f: &Finding) -> String {
    f.evidence
        .iter()
        .map(|e| e.text.as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

/// A target for a lab URL; lab certificates are self-signed, so TLS is not verified.
pub fn lab_target(role: Role, url: &str) -> Target {
    let mut t = Target::parse(role, url).unwrap_or_else(|e| panic!("{url}: {e}"));
    t.tls_verify = false;
    t
}

pub async fn start_backend(config: lbprobe::lab::BackendConfig) -> LabBackend {
    LabBackend::start(config)
        .await
        .unwrap_or_else(|e| panic!("lab backend: {e}"))
}
