//! The `partial` family against a real nginx with 2 s client timeouts, a lab backend behind it:
//! what nginx does with incomplete requests, what the classifier makes of it, and what nginx
//! writes into its access log. These tests fail (never skip) when nginx is missing.

#[path = "support/says.rs"]
mod says;
use says::assert_says;

use std::sync::Arc;
use std::time::{Duration, Instant};

use lbprobe::classify::{Finding, Verdict};
use lbprobe::lab::{BackendConfig, LabBackend, Nginx, NginxServer, NginxSpec};
use lbprobe::probe::partial::{Outcome, PartialResult};
use lbprobe::probe::{Detail, Family, Observation, Plan, ProbeSpec};
use lbprobe::profile::Profile;
use lbprobe::report::Report;
use lbprobe::run::{execute, Job};
use lbprobe::target::{Role, Target};

/// nginx's timeouts in these tests; the probe's cap is set above or below it.
const NGINX_TIMEOUTS: &str = "client_header_timeout 2s; client_body_timeout 2s;";
const PATH: &str = "/partial-probe";
const LOG_POLL: Duration = Duration::from_secs(5);

struct Lab {
    nginx: Nginx,
    // Kept alive for the run: dropping it stops the backend.
    _backend: LabBackend,
    report: Report,
}

/// nginx (with [`NGINX_TIMEOUTS`]) in front of a lab backend, probed with the partial family.
async fn probe_partial(max_wait: Duration) -> Lab {
    let backend = LabBackend::start(BackendConfig::default())
        .await
        .expect("lab backend starts");
    let nginx = Nginx::start(&NginxSpec::one(
        NginxServer::proxy(backend.url()).extra(NGINX_TIMEOUTS),
    ))
    .unwrap_or_else(|e| panic!("cannot run the nginx tests: {e}"));
    let target = |role, base: String| Target::parse(role, &format!("{base}{PATH}")).unwrap();
    let plan = Plan::new(
        Some(target(Role::Listener, nginx.url(0))),
        Some(target(Role::Backend, backend.url())),
    )
    .with_profile(Profile::clb())
    .with_probes(vec![ProbeSpec::Partial { max_wait }]);
    let job = Job::new("partial", "tests/partial.rs", plan);
    let report = execute(job, Arc::new(|_| {})).await;
    Lab {
        nginx,
        _backend: backend,
        report,
    }
}

fn finding<'a>(report: &'a Report, cause: &str) -> &'a Finding {
    report
        .findings
        .iter()
        .find(|f| f.cause == cause)
        .unwrap_or_else(|| panic!("no finding for {cause}: {:#?}", report.findings))
}

fn evidence(f: &Finding) -> String {
    lbprobe::classify::evidence_text(&f.evidence)
}

fn partial<'a>(
    report: &'a Report,
    variant: &str,
    role: Role,
) -> (&'a Observation, &'a PartialResult) {
    let o = report
        .observations
        .iter()
        .find(|o| o.family == Family::Partial && o.variant == variant && o.role == role)
        .unwrap_or_else(|| panic!("no {variant} observation for the {role}"));
    match &o.detail {
        Detail::Partial(r) => (o, r),
        other => panic!("{variant}: detail {other:?}"),
    }
}

/// Access-log lines, polled until `want` matches one: nginx writes a line when it finishes a
/// request, which may trail our side of the connection by a moment.
fn log_line(nginx: &Nginx, want: impl Fn(&str) -> bool) -> Option<String> {
    let deadline = Instant::now() + LOG_POLL;
    loop {
        if let Some(line) = nginx.access_log().lines().find(|l| want(l)) {
            return Some(line.to_string());
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test]
async fn nginx_giving_up_on_an_incomplete_request_reproduces_408_partial_request() {
    let cap = Duration::from_secs(6);
    let lab = probe_partial(cap).await;
    let f = finding(&lab.report, "408.partial-request");
    let text = evidence(f);
    assert_eq!(f.verdict, Verdict::Reproduced, "{}\n{text}", f.reason);
    for variant in ["body-missing", "body-partial", "headers-partial"] {
        assert!(text.contains(variant), "{variant} not in {text}");
        // nginx sends nothing on a client timeout: it closes, after its own 2 s, below our cap.
        let (_, r) = partial(&lab.report, variant, Role::Listener);
        assert_eq!(r.outcome, Outcome::Closed, "{variant}: {r:?}");
        assert!(
            r.waited_ms >= 1500.0 && r.waited_ms < cap.as_secs_f64() * 1000.0,
            "{variant}: nginx waited {} ms",
            r.waited_ms
        );
        // The lab backend, straight, gives up too (408 for the head, 400 for the body).
        let (_, b) = partial(&lab.report, variant, Role::Backend);
        assert!(b.gave_up(), "{variant} backend: {b:?}");
    }
    // The clb profile documents 60 s: a 2 s wait is named as a mismatch.
    assert_says(&text, &["markedly shorter", "straight to the backend"]);
    // What the probe saw as a close, nginx logged as 408, without asking the backend.
    for request in [
        format!("\"POST {PATH} HTTP/1.1\""),
        format!("\"GET {PATH} HTTP/1.1\""),
    ] {
        let line = log_line(&lab.nginx, |l| {
            l.contains(&request) && l.contains("status=408 ")
        });
        assert!(
            line.as_deref()
                .is_some_and(|l| l.contains("upstream_status=-")),
            "no 408 for {request} in the access log:\n{}",
            lab.nginx.access_log()
        );
    }
}

#[tokio::test]
async fn a_cap_below_nginx_timeout_is_inconclusive() {
    let lab = probe_partial(Duration::from_secs(1)).await;
    let f = finding(&lab.report, "408.partial-request");
    assert_eq!(f.verdict, Verdict::Inconclusive, "{}", f.reason);
    assert!(f.reason.contains("raise max-wait"), "{}", f.reason);
    let (_, r) = partial(&lab.report, "body-missing", Role::Listener);
    assert_eq!(r.outcome, Outcome::StillWaiting, "{r:?}");
}

#[tokio::test]
async fn closing_early_reproduces_400_client_closed_early_and_nginx_logs_400() {
    let lab = probe_partial(Duration::from_secs(6)).await;
    let f = finding(&lab.report, "400.client-closed-early");
    let text = evidence(f);
    assert_eq!(f.verdict, Verdict::Reproduced, "{}\n{text}", f.reason);
    assert_says(&text, &["close-early", "access log"]);

    // We closed first; nginx had said nothing, and closed its side once we had.
    let (o, r) = partial(&lab.report, "close-early", Role::Listener);
    assert_eq!(r.outcome, Outcome::StillWaiting, "{r:?}");
    assert!(r.we_closed_after_ms.is_some(), "{r:?}");
    assert_eq!(r.after_our_close, Some(Outcome::Closed), "{r:?}");
    assert_eq!(o.exchange.as_ref().map(|e| e.bytes_in), Some(0));

    // nginx records the abandoned request as 400, answered by nobody, nothing sent.
    let request = format!("\"GET {PATH} HTTP/1.1\"");
    let line = log_line(&lab.nginx, |l| {
        l.contains(&request) && l.contains("status=400 ")
    })
    .unwrap_or_else(|| panic!("no 400 in the access log:\n{}", lab.nginx.access_log()));
    assert_says(&line, &["upstream_status=-", "bytes_sent=0"]);
}
