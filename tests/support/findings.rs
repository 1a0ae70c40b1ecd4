//! Runs against the lab and reading their reports in assertions: one finding by cause, its
//! verdict, and every finding in a line each for the failure message.

use std::sync::Arc;
use std::time::Duration;

use lbprobe::classify::{Basis, Finding, Verdict};
use lbprobe::lab::{
    Apache, ApacheSpec, BackendConfig, Fault, FaultRule, Haproxy, HaproxySpec, LabBackend, Nginx,
    NginxSpec,
};
use lbprobe::probe::{Detail, Family, LimitSearch, Limits, Plan, ProbeSpec};
use lbprobe::profile::Profile;
use lbprobe::report::Report;
use lbprobe::run::{self, Job};
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

/// Asserts the verdict on `cause` and that its reason says `words`; returns the finding.
pub fn assert_reason<'a>(
    report: &'a Report,
    cause: &str,
    verdict: Verdict,
    words: &str,
) -> &'a Finding {
    let f = finding(report, cause);
    assert_eq!(f.verdict, verdict, "{cause}; findings:{}", summary(report));
    assert!(
        f.reason.contains(words),
        "{cause}: the reason does not say {words:?}: {}",
        f.reason
    );
    f
}

/// A listener whose read timeout (1 s) is shorter than the lab backend's 2 s answer: its own
/// `status` (502 or 504) confirms `<status>.backend-slow`, resting on the wait it measured and
/// the timeout `profile` documents (60 s).
pub fn assert_backend_slow_measured(report: &Report, status: u16, profile: &str) {
    let cause = format!("{status}.backend-slow");
    assert_verdict(report, &cause, Verdict::Confirmed);
    let why = text_of(report, &cause);
    assert!(
        why.contains(&format!("gives up with {status} after 1.0 s (measured)")),
        "{why}"
    );
    assert!(why.contains("up to 2"), "the backend's own time: {why}");
    assert!(
        why.contains(&format!(
            "the {profile} profile documents 60 s for its read timeout"
        )),
        "{why}"
    );
    let f = finding(report, &cause);
    assert_eq!(f.rests_on, vec![Basis::Measured, Basis::Documented]);
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

/// The methods family sending only `methods`, in this order.
pub fn methods_probe(methods: &[&str]) -> ProbeSpec {
    ProbeSpec::Methods {
        methods: Some(methods.iter().map(|m| m.to_string()).collect()),
    }
}

/// DELETE sent to a lab backend that rejects it (`reject_method("DELETE")`): its own 405,
/// reproduced straight and through the listener. Returns the finding's evidence.
pub fn assert_backend_405_on_delete(report: &Report) -> String {
    let delete = assert_verdict(
        report,
        "405.backend-method-unsupported",
        Verdict::Reproduced,
    );
    assert!(
        delete.contains("DELETE straight to the backend: 405 Method Not Allowed"),
        "{delete}"
    );
    assert!(delete.contains("passed on by the listener"), "{delete}");
    delete
}

/// The bad pool member confirmed and named by its place and address (`member 2 of 3
/// (127.0.0.1:PORT)`); returns the finding's reason.
pub fn assert_bad_member_named(report: &Report, place: &str, url: &str) -> String {
    assert_verdict(report, "502.bad-pool-member", Verdict::Confirmed);
    let reason = finding(report, "502.bad-pool-member").reason.clone();
    let addr = url.trim_start_matches("http://");
    assert!(reason.contains(&format!("{place} ({addr})")), "{reason}");
    reason
}

/// The reason and every piece of evidence of a finding, one text.
pub fn text_of(report: &Report, cause: &str) -> String {
    let f = finding(report, cause);
    let mut all = f.reason.clone();
    for e in &f.evidence {
        all.push('\n');
        all.push_str(&e.text);
    }
    all
}

/// The finished limit search of `family` on `role`.
pub fn limit_search(report: &Report, family: Family, role: Role) -> LimitSearch {
    let o = report
        .observations
        .iter()
        .find(|o| o.family == family && o.role == role && o.variant == "limit")
        .unwrap_or_else(|| panic!("no {family} limit for the {role}"));
    match &o.detail {
        Detail::Limit(l) => l.clone(),
        _ => panic!("{family}: not a limit search"),
    }
}

/// The evidence of a finding as one text, a line per fact.
pub fn evidence(f: &Finding) -> String {
    lbprobe::classify::evidence_text(&f.evidence)
}

/// A target for a lab URL; lab certificates are self-signed, so TLS is not verified.
pub fn lab_target(role: Role, url: &str) -> Target {
    let mut t = Target::parse(role, url).unwrap_or_else(|e| panic!("{url}: {e}"));
    t.tls_verify = false;
    t
}

/// A plan against lab URLs: the listener, and the backend when there is one.
pub fn lab_plan(listener: &str, backend: Option<&str>) -> Plan {
    Plan::new(
        Some(lab_target(Role::Listener, listener)),
        backend.map(|b| lab_target(Role::Backend, b)),
    )
}

/// Caps for a run against loopback, which answers in milliseconds: a fast rate, and a cap on
/// the whole run so a stuck probe cannot stall the suite.
pub const fn loopback(max_requests: u32, request_timeout: Duration) -> Limits {
    Limits {
        max_requests,
        max_rate: 1000.0,
        max_duration: Duration::from_secs(60),
        request_timeout,
    }
}

/// Run `plan` as the job of the test file `origin` (`file!()`), named after it: no progress
/// shown, nothing expected.
pub async fn execute(origin: &str, plan: Plan) -> Report {
    let name = origin
        .trim_start_matches("tests/")
        .trim_end_matches(".rs")
        .replace('_', "-");
    run::execute(Job::new(name, origin, plan), Arc::new(|_| {})).await
}

/// The runs of one test file against lab URLs, all under the same caps, named after the file.
pub struct LabRuns {
    /// The test file, `file!()`.
    pub origin: &'static str,
    pub limits: Limits,
}

impl LabRuns {
    /// Run `probes` with `profile` against `listener` (and `backend` when there is one).
    pub async fn execute(
        &self,
        listener: &str,
        backend: Option<&str>,
        profile: Profile,
        probes: Vec<ProbeSpec>,
    ) -> Report {
        let plan = lab_plan(listener, backend)
            .with_profile(profile)
            .with_probes(probes)
            .with_limits(self.limits);
        execute(self.origin, plan).await
    }
}

pub fn start_nginx(spec: &NginxSpec) -> Nginx {
    Nginx::start(spec).unwrap_or_else(|e| panic!("this test needs a real nginx: {e}"))
}

pub fn start_haproxy(spec: &HaproxySpec) -> Haproxy {
    Haproxy::start(spec).unwrap_or_else(|e| panic!("this test needs a real HAProxy: {e}"))
}

pub fn start_apache(spec: &ApacheSpec) -> Apache {
    Apache::start(spec).unwrap_or_else(|e| panic!("this test needs a real apache httpd: {e}"))
}

/// A lab backend that answers every request after `ms`.
pub async fn backend_after(ms: u64) -> lbprobe::lab::LabBackend {
    start_backend(
        BackendConfig::default().fault(FaultRule::all(Fault::Delay(Duration::from_millis(ms)))),
    )
    .await
}

/// Two timed requests per side (two answers at one moment are a timeout) and the handshakes.
pub fn timing_probes() -> Vec<ProbeSpec> {
    vec![
        ProbeSpec::Latency {
            requests: 2,
            client_timeout: None,
        },
        ProbeSpec::Connect { attempts: 2 },
    ]
}

pub async fn start_backend(config: lbprobe::lab::BackendConfig) -> LabBackend {
    LabBackend::start(config)
        .await
        .unwrap_or_else(|e| panic!("lab backend: {e}"))
}
