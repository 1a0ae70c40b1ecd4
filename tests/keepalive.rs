//! The keep-alive race against a real nginx that pools its backend connections
//! (`upstream { keepalive 16; }`), in front of lab backends that keep connections alive and give
//! them up after an idle time. These tests fail (never skip) when nginx is missing.

#[path = "support/says.rs"]
mod says;
use says::assert_says;

use std::sync::Arc;
use std::time::Duration;

use lbprobe::classify::{Finding, Verdict};
use lbprobe::lab::{BackendConfig, KeepAlive, LabBackend, Nginx, NginxServer, NginxSpec};
use lbprobe::probe::keepalive::{
    IdleResult, IdleTimeout, KeepaliveDetail, RaceResult, IDLE_TIMEOUT, RACE, RACE_REQUESTS,
};
use lbprobe::probe::{Detail, Family, Plan, ProbeSpec};
use lbprobe::profile::{Numbers, Profile};
use lbprobe::report::Report;
use lbprobe::run::{execute, Job};
use lbprobe::target::{Role, Target};

const ID: &str = "502.keepalive-race";
/// The probe's cap: above the short backend timeout, far below nginx's own defaults.
const MAX_WAIT: Duration = Duration::from_secs(3);

/// nginx reusing up to 16 idle connections to `backend`; `upstream_extra` goes into the
/// upstream block (e.g. its `keepalive_timeout`).
fn pooling_nginx(backend: &LabBackend, upstream_extra: &str) -> Nginx {
    let spec = NginxSpec {
        http_extra: format!(
            "upstream lab {{ server {}; keepalive 16; {upstream_extra} }}",
            backend.addr()
        ),
        // Without this nginx asks the backend to close after every request.
        ..NginxSpec::one(
            NginxServer::proxy("http://lab").extra("proxy_set_header Connection \"\";"),
        )
    };
    Nginx::start(&spec).unwrap_or_else(|e| panic!("cannot run the nginx tests: {e}"))
}

async fn probe(
    listener: Option<String>,
    backend: &LabBackend,
    profile: Profile,
    reproduce: bool,
) -> Report {
    let target = |role, base: String| Target::parse(role, &format!("{base}/ka")).unwrap();
    let plan = Plan::new(
        listener.map(|url| target(Role::Listener, url)),
        Some(target(Role::Backend, backend.url())),
    )
    .with_profile(profile)
    .with_probes(vec![ProbeSpec::Keepalive {
        max_wait: MAX_WAIT,
        reproduce,
    }]);
    let job = Job::new("keepalive", "tests/keepalive.rs", plan);
    execute(job, Arc::new(|_| {})).await
}

/// A lab backend that closes idle keep-alive connections as `keep_alive` says.
async fn backend_closing_idle(keep_alive: KeepAlive) -> LabBackend {
    LabBackend::start(BackendConfig::default().keep_alive(keep_alive))
        .await
        .expect("lab backend starts")
}

fn finding(report: &Report) -> &Finding {
    report
        .findings
        .iter()
        .find(|f| f.cause == ID)
        .unwrap_or_else(|| panic!("no finding for {ID}: {:#?}", report.findings))
}

fn idle(report: &Report, role: Role) -> &IdleResult {
    let o = report
        .observations
        .iter()
        .find(|o| o.family == Family::Keepalive && o.variant == IDLE_TIMEOUT && o.role == role)
        .unwrap_or_else(|| panic!("no idle-timeout observation for the {role}"));
    match &o.detail {
        Detail::Keepalive(KeepaliveDetail::Idle(r)) => r,
        other => panic!("detail {other:?}"),
    }
}

fn race(report: &Report) -> &RaceResult {
    let o = report
        .observations
        .iter()
        .find(|o| o.family == Family::Keepalive && o.variant == RACE)
        .unwrap_or_else(|| panic!("no race observation; notes: {:?}", report.notes));
    match &o.detail {
        Detail::Keepalive(KeepaliveDetail::Race(r)) => r,
        other => panic!("detail {other:?}"),
    }
}

fn text(f: &Finding) -> String {
    let evidence: Vec<&str> = f.evidence.iter().map(|e| e.text.as_str()).collect();
    format!("{}\n{}", f.reason, evidence.join("\n"))
}

#[tokio::test]
async fn lazy_backend_idle_shorter_than_nginx_pool_confirms_and_reproduces_the_race() {
    let backend = backend_closing_idle(KeepAlive::lazy(Duration::from_secs(1))).await;
    let nginx = pooling_nginx(&backend, "");
    let report = probe(Some(nginx.url(0)), &backend, Profile::nginx(), true).await;

    let measured = idle(&report, Role::Backend);
    let IdleTimeout::Lazy {
        answered_ms,
        refused_ms,
    } = measured.timeout
    else {
        panic!("backend: {measured:#?}");
    };
    assert!(
        (500.0..=1000.0).contains(&answered_ms) && (1000.0..=2000.0).contains(&refused_ms),
        "{measured:#?}"
    );

    let f = finding(&report);
    let said = text(f);
    assert_eq!(f.verdict, Verdict::Confirmed, "{said}");
    assert_says(
        &said,
        &[
            "the nginx profile documents that the listener reuses idle backend connections for 60 s",
            "raise the backend's keep-alive timeout",
        ],
    );

    // nginx retries a GET that failed on a pooled connection, never a POST: some of these fail.
    let r = race(&report);
    assert!(r.sent <= RACE_REQUESTS && r.sent >= 2, "{r:#?}");
    assert!(r.bad_gateway >= 1, "{r:#?}\n{}", nginx.error_log());
    assert!(said.contains("POSTs through the listener"), "{said}");
    assert!(
        nginx.error_log().contains("upstream prematurely closed")
            || nginx.error_log().contains("reset by peer"),
        "{}",
        nginx.error_log()
    );
}

#[tokio::test]
async fn backend_idle_longer_than_the_pool_rules_the_race_out() {
    let backend = backend_closing_idle(KeepAlive::lazy(Duration::from_secs(30))).await;
    // nginx drops its pooled connections after 2 s idle, and the profile says so.
    let nginx = pooling_nginx(&backend, "keepalive_timeout 2s;");
    let profile = Profile::nginx().with_declared(&Numbers {
        backend_keepalive_timeout: Some(Duration::from_secs(2)),
        ..Numbers::default()
    });
    let report = probe(Some(nginx.url(0)), &backend, profile, false).await;
    let measured = idle(&report, Role::Backend);
    assert!(
        matches!(measured.timeout, IdleTimeout::BeyondCap { answered_ms } if answered_ms >= 2000.0),
        "{measured:#?}"
    );
    let f = finding(&report);
    assert_eq!(f.verdict, Verdict::RuledOut, "{}", text(f));
}

#[tokio::test]
async fn eager_backend_close_is_timed_on_the_idle_connection() {
    let backend = backend_closing_idle(KeepAlive::eager(Duration::from_secs(1))).await;
    let report = probe(None, &backend, Profile::nginx(), false).await;
    let measured = idle(&report, Role::Backend);
    assert!(
        matches!(measured.timeout, IdleTimeout::Eager { after_ms } if (900.0..=2000.0).contains(&after_ms)),
        "{measured:#?}"
    );
    assert_eq!(finding(&report).verdict, Verdict::Confirmed);
}

#[tokio::test]
async fn backend_that_closes_after_every_answer_cannot_race() {
    let backend = LabBackend::start(BackendConfig::default())
        .await
        .expect("lab backend starts");
    let report = probe(None, &backend, Profile::nginx(), false).await;
    let measured = idle(&report, Role::Backend);
    assert!(
        matches!(measured.timeout, IdleTimeout::NoReuse { .. }),
        "{measured:#?}"
    );
    assert_eq!(measured.trials.len(), 1, "one connection tells");
    assert_eq!(finding(&report).verdict, Verdict::RuledOut);
}
