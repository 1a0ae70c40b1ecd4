//! The listener's gateway timeouts, measured from its own answers against real nginx and HAProxy
//! configured tighter than their documentation: a 504 (or 502) after the listener's timeout T,
//! in front of a backend slower than T, confirms the slow backend with both numbers, whatever
//! the profile documents, and is never read as "no backends". Timeouts of 1 s keep each test to
//! a few seconds.

use std::time::Duration;

use lbprobe::classify::{Basis, Verdict};
use lbprobe::lab::{
    BackendConfig, Fault, FaultRule, HaproxyFrontend, HaproxySpec, Nginx, NginxServer, NginxSpec,
    UnacceptingListener,
};
use lbprobe::probe::{Limits, ProbeSpec};
use lbprobe::profile::{Numbers, Profile};
use lbprobe::report::Report;

mod support;
use support::findings::{
    assert_backend_slow_measured, assert_verdict, backend_after, finding, lab_plan, loopback,
    start_backend, start_haproxy, summary, text_of, timing_probes,
};
use support::says::assert_says;

fn start_nginx(server: NginxServer) -> Nginx {
    support::findings::start_nginx(&NginxSpec::one(server))
}

async fn scan(listener: &str, backend: &str, profile: Profile, probes: Vec<ProbeSpec>) -> Report {
    let plan = lab_plan(listener, Some(backend))
        .with_profile(profile)
        .with_probes(probes)
        .with_limits(Limits {
            max_rate: 100.0,
            // 1.5 s: our own handshakes give up after this (the connect probe, and requests to
            // a backend that drops SYNs).
            ..loopback(100, Duration::from_millis(1500))
        });
    support::findings::execute(file!(), plan).await
}

fn not_confirmed(report: &Report, cause: &str) {
    let f = finding(report, cause);
    assert!(
        matches!(f.verdict, Verdict::RuledOut | Verdict::Inconclusive),
        "{cause} must not be confirmed:{}",
        summary(report)
    );
}

/// nginx `proxy_read_timeout 1s` in front of a backend that answers after 2 s: nginx answers 504
/// after 1 s, every time. With the default profile (auto, which picks nginx from its 504 page)
/// the finding gives the measured second beside the 60 s nginx documents.
#[tokio::test]
async fn nginx_read_timeout_shorter_than_documented_confirms_the_slow_backend() {
    let backend = backend_after(2000).await;
    let nginx = start_nginx(NginxServer::proxy(backend.url()).extra("proxy_read_timeout 1s;"));
    let report = scan(
        &nginx.url(0),
        &backend.url(),
        Profile::default(),
        timing_probes(),
    )
    .await;

    assert_eq!(
        report.profile.name, "nginx",
        "auto picks nginx from its own page"
    );
    assert_backend_slow_measured(&report, 504, "nginx");
    // The backend accepts connections at once: the 504 is a read timeout.
    assert_verdict(&report, "504.connect-timeout", Verdict::RuledOut);
    assert_verdict(&report, "502.backend-slow", Verdict::RuledOut);
    // nginx's own 504, while the backend answers 200: nothing passed through.
    assert!(
        report
            .findings
            .iter()
            .all(|f| f.cause != "504.passthrough" || f.verdict != Verdict::Confirmed),
        "{}",
        summary(&report)
    );
}

/// The same with no profile at all: the measurements alone confirm it.
#[tokio::test]
async fn nginx_read_timeout_is_measured_without_any_profile() {
    let backend = backend_after(2000).await;
    let nginx = start_nginx(NginxServer::proxy(backend.url()).extra("proxy_read_timeout 1s;"));
    let report = scan(
        &nginx.url(0),
        &backend.url(),
        Profile::none(),
        timing_probes(),
    )
    .await;

    assert_verdict(&report, "504.backend-slow", Verdict::Confirmed);
    let f = finding(&report, "504.backend-slow");
    assert_eq!(f.rests_on, vec![Basis::Measured], "{}", summary(&report));
    let why = text_of(&report, "504.backend-slow");
    assert!(!why.contains("documents"), "{why}");
}

/// The neighbour: the same nginx, a backend well inside its timeout. Nothing times out.
#[tokio::test]
async fn a_backend_inside_the_listeners_timeout_is_not_slow() {
    let backend = backend_after(300).await;
    let nginx = start_nginx(NginxServer::proxy(backend.url()).extra("proxy_read_timeout 1s;"));
    let report = scan(
        &nginx.url(0),
        &backend.url(),
        Profile::default(),
        timing_probes(),
    )
    .await;

    not_confirmed(&report, "504.backend-slow");
    not_confirmed(&report, "502.backend-slow");
    not_confirmed(&report, "504.connect-timeout");
    let why = text_of(&report, "504.backend-slow");
    assert!(why.contains("passed every answer on"), "{why}");
}

/// HAProxy `timeout server 1s` against the haproxy profile, which documents Debian's 50 s.
#[tokio::test]
async fn haproxy_timeout_server_shorter_than_documented_confirms_the_slow_backend() {
    let backend = backend_after(2000).await;
    let haproxy = start_haproxy(
        &HaproxySpec::one(HaproxyFrontend::proxy(backend.url())).defaults("timeout server 1s"),
    );
    let report = scan(
        &haproxy.url(0),
        &backend.url(),
        Profile::haproxy(),
        timing_probes(),
    )
    .await;

    assert_verdict(&report, "504.backend-slow", Verdict::Confirmed);
    let why = text_of(&report, "504.backend-slow");
    assert_says(
        &why,
        &[
            "gives up with 504 after 1.0 s (measured)",
            "the haproxy profile documents 50 s",
        ],
    );
    assert_verdict(&report, "504.connect-timeout", Verdict::RuledOut);
}

/// nginx that answers its read timeout with 502 (its 504 remapped), as some proxies do.
fn nginx_502_after_timeout(upstream: &str) -> Nginx {
    start_nginx(NginxServer::proxy(upstream).extra(
        "proxy_read_timeout 1s; error_page 504 = @gateway; location @gateway { return 502; }",
    ))
}

fn with_baseline(mut probes: Vec<ProbeSpec>) -> Vec<ProbeSpec> {
    probes.insert(0, ProbeSpec::Protocol);
    probes
}

/// Issue 14, item 7: a 502 after the listener's 1 s timeout in front of a 2 s backend is that
/// timeout, not "every backend unhealthy": the 502 only looked immediate next to the backend's
/// own 2 s. With the default profile, and with the timeout declared.
#[tokio::test]
async fn a_502_at_the_listeners_timeout_is_a_slow_backend_not_no_backends() {
    let declared = Profile::nginx().with_declared(&Numbers {
        response_timeout: Some(Duration::from_secs(1)),
        ..Numbers::default()
    });
    tokio::join!(
        slow_backend_behind_a_502_timeout(Profile::default()),
        slow_backend_behind_a_502_timeout(declared),
    );
}

async fn slow_backend_behind_a_502_timeout(profile: Profile) {
    let label = profile.label();
    let backend = backend_after(2000).await;
    let nginx = nginx_502_after_timeout(&backend.url());
    let report = scan(
        &nginx.url(0),
        &backend.url(),
        profile,
        with_baseline(timing_probes()),
    )
    .await;

    assert_verdict(&report, "502.backend-slow", Verdict::Confirmed);
    let f = finding(&report, "502.all-backends-unhealthy");
    assert_eq!(f.verdict, Verdict::RuledOut, "{label}:{}", summary(&report));
    assert!(
        f.reason.contains("every time (measured)"),
        "{label}: {}",
        f.reason
    );
    assert!(
        report
            .findings
            .iter()
            .all(|f| f.cause != "503.no-backends" || f.verdict != Verdict::Confirmed),
        "{}",
        summary(&report)
    );
}

/// Without the latency probe, only the baseline: a declared timeout that the 502 arrives at
/// rules "no backends" out; with nothing declared, a 502 after a second is not "at once" either.
#[tokio::test]
async fn a_502_at_a_declared_timeout_is_not_no_backends_without_latency_requests() {
    let backend = backend_after(2000).await;
    let nginx = nginx_502_after_timeout(&backend.url());
    let declared = Profile::nginx().with_declared(&Numbers {
        response_timeout: Some(Duration::from_secs(1)),
        ..Numbers::default()
    });
    let (listener, backend_url) = (nginx.url(0), backend.url());
    let (with_declared, without) = tokio::join!(
        scan(&listener, &backend_url, declared, vec![ProbeSpec::Protocol]),
        scan(
            &listener,
            &backend_url,
            Profile::none(),
            vec![ProbeSpec::Protocol]
        ),
    );
    let f = finding(&with_declared, "502.all-backends-unhealthy");
    assert_eq!(f.verdict, Verdict::RuledOut, "{}", summary(&with_declared));
    assert!(f.reason.contains("you declared"), "{}", f.reason);
    let f = finding(&without, "502.all-backends-unhealthy");
    assert_eq!(f.verdict, Verdict::Inconclusive, "{}", summary(&without));
    assert!(f.reason.contains("not at once"), "{}", f.reason);
}

/// nginx `proxy_connect_timeout 1s` in front of a backend whose SYNs are dropped: its 504 after
/// 1 s is its connect timeout, measured, beside the 60 s nginx documents.
#[tokio::test]
async fn nginx_connect_timeout_is_measured_on_dropped_syns() {
    let silent = UnacceptingListener::start().expect("unaccepting listener");
    let nginx = start_nginx(NginxServer::proxy(silent.url()).extra("proxy_connect_timeout 1s;"));
    let report = scan(
        &nginx.url(0),
        &silent.url(),
        Profile::default(),
        timing_probes(),
    )
    .await;

    assert_verdict(&report, "504.connect-timeout", Verdict::Confirmed);
    let why = text_of(&report, "504.connect-timeout");
    assert_says(
        &why,
        &[
            "got no answer to the SYN",
            "how long it waits for a connection (measured)",
            "the nginx profile documents 60 s for its connect timeout",
        ],
    );
    not_confirmed(&report, "504.backend-slow");
}

/// A listener that waits longer than we do: declared 1 s, so the probe waits 2 s, while nginx
/// waits 10 s for a backend that never answers. Nothing can be seen past our wait, and the
/// finding says so and what to raise rather than rule the cause out.
#[tokio::test]
async fn a_listener_waiting_longer_than_we_do_is_inconclusive_with_what_to_raise() {
    let backend =
        start_backend(BackendConfig::default().fault(FaultRule::all(Fault::NeverAnswer))).await;
    let nginx = start_nginx(NginxServer::proxy(backend.url()).extra("proxy_read_timeout 10s;"));
    let declared = Profile::nginx().with_declared(&Numbers {
        response_timeout: Some(Duration::from_secs(1)),
        connect_timeout: Some(Duration::from_secs(1)),
        ..Numbers::default()
    });
    let report = scan(
        &nginx.url(0),
        &backend.url(),
        declared,
        vec![ProbeSpec::Latency {
            requests: 2,
            client_timeout: None,
        }],
    )
    .await;
    assert_verdict(&report, "504.backend-slow", Verdict::Inconclusive);
    let why = text_of(&report, "504.backend-slow");
    assert_says(&why, &["got no answer within our", "response-timeout"]);
}

/// HAProxy `timeout connect 300ms` in front of a backend whose SYNs are dropped: with its 3
/// retries it gives up after 1.2 s, with its own 503 (log `sC--`), which carries the same words as
/// its "no server" page. Measured as its connect timeout, and not read as "no backends": the 503
/// comes after the listener waited.
#[tokio::test]
async fn haproxy_connect_timeout_is_measured_on_dropped_syns() {
    let silent = UnacceptingListener::start().expect("unaccepting listener");
    let haproxy = start_haproxy(
        &HaproxySpec::one(HaproxyFrontend::proxy(silent.url())).defaults("timeout connect 300ms"),
    );
    let report = scan(
        &haproxy.url(0),
        &silent.url(),
        Profile::haproxy(),
        timing_probes(),
    )
    .await;

    assert_verdict(&report, "504.connect-timeout", Verdict::Confirmed);
    let why = text_of(&report, "504.connect-timeout");
    assert_says(
        &why,
        &[
            "the listener answers 503 after 1.2 s every time: that is how long it waits for a connection (measured)",
            "the haproxy profile documents 5 s for its connect timeout",
        ],
    );
    assert_verdict(&report, "503.no-backends", Verdict::RuledOut);
    not_confirmed(&report, "504.backend-slow");
}
