//! One bad backend in a pool: nginx round-robin over three lab backends, one of which answers
//! with a header line nginx refuses (502). The listener fails about a third of the time and
//! the report names that member. Bounded: 3 requests to each member, 18 through nginx.

use std::time::Duration;

use lbprobe::classify::Verdict;
use lbprobe::lab::{BackendConfig, Fault, FaultRule, LabBackend, Nginx, NginxServer, NginxSpec};
use lbprobe::probe::pool::PoolSpec;
use lbprobe::probe::{Limits, ProbeSpec};
use lbprobe::profile::Profile;
use lbprobe::report::Report;
use lbprobe::target::Role;

mod support;
use support::findings::{
    assert_bad_member_named, assert_verdict, finding, lab_plan, lab_target, loopback,
    start_backend, start_nginx,
};
use support::says::assert_says;

/// nginx round-robin over `members`. `passive`: nginx's default passive health check, which
/// rests a member for 10 s after one bad answer; without it (`max_fails=0`) nginx keeps sending
/// each member its turn, as a cloud listener that only runs active checks does.
fn nginx_over(members: &[String], passive: bool) -> Nginx {
    let option = if passive { "" } else { " max_fails=0" };
    let servers: String = members
        .iter()
        .map(|u| format!("server {}{option}; ", u.trim_start_matches("http://")))
        .collect();
    start_nginx(&NginxSpec {
        cert: None,
        servers: vec![NginxServer::proxy("http://lbprobe_pool")],
        http_extra: format!("upstream lbprobe_pool {{ {servers}}}"),
    })
}

/// A lab backend whose every answer has a header line nginx refuses (`Name : value`): 502.
fn bad_header() -> BackendConfig {
    BackendConfig::default().fault(FaultRule::all(Fault::SpaceBeforeColon))
}

/// Three lab backends started with `config`, and their URLs.
async fn pool_of_3(config: BackendConfig) -> (Vec<LabBackend>, Vec<String>) {
    let mut backends = Vec::new();
    for _ in 0..3 {
        backends.push(start_backend(config.clone()).await);
    }
    let members = backends.iter().map(LabBackend::url).collect();
    (backends, members)
}

async fn scan(listener: &str, members: &[String]) -> Report {
    scan_with(
        listener,
        members,
        vec![ProbeSpec::Pool(PoolSpec::default())],
    )
    .await
}

async fn scan_with(listener: &str, members: &[String], probes: Vec<ProbeSpec>) -> Report {
    let pool = members.iter().map(|m| lab_target(Role::Backend, m));
    let plan = lab_plan(listener, Some(&members[0]))
        .with_profile(Profile::nginx())
        .with_probes(probes)
        .with_limits(Limits {
            max_rate: 500.0,
            ..loopback(200, Duration::from_secs(5))
        })
        .with_pool(pool.collect());
    support::findings::execute(file!(), plan).await
}

#[tokio::test]
async fn the_member_with_a_bad_header_explains_a_third_of_502s() {
    let good_a = start_backend(BackendConfig::default()).await;
    let bad = start_backend(bad_header()).await;
    let good_b = start_backend(BackendConfig::default()).await;
    let members = vec![good_a.url(), bad.url(), good_b.url()];
    let nginx = nginx_over(&members, false);
    let report = scan(&nginx.url(0), &members).await;

    let evidence = assert_verdict(&report, "502.bad-pool-member", Verdict::Confirmed);
    let reason = assert_bad_member_named(&report, "member 2 of 3", &bad.url());
    assert!(!reason.contains(good_a.url().trim_start_matches("http://")));
    // Round-robin over three: 6 of the 18 requests met the bad member.
    let listener: Vec<_> = report
        .observations
        .iter()
        .filter(|o| o.variant == lbprobe::probe::pool::THROUGH_LISTENER)
        .collect();
    assert_eq!(listener.len(), 18);
    let failed = listener
        .iter()
        .filter(|o| o.exchange.as_ref().and_then(|e| e.status()) == Some(502))
        .count();
    assert!((4..=8).contains(&failed), "{failed} of 18 got 502");
    assert!(evidence.contains("answered 502"), "{evidence}");
    assert!(reason.contains("(1 of 3: 33 %)"), "{reason}");
    // Every member was asked directly, and only the bad one failed.
    assert_says(&evidence, &["member 1 of 3", "member 3 of 3"]);
    assert_eq!(
        evidence.matches("every answer usable").count(),
        2,
        "{evidence}"
    );
}

#[tokio::test]
async fn a_healthy_pool_blames_nobody() {
    let (backends, members) = pool_of_3(BackendConfig::default()).await;
    let nginx = nginx_over(&members, false);
    let report = scan(&nginx.url(0), &members).await;
    assert_verdict(&report, "502.bad-pool-member", Verdict::RuledOut);
    // nginx spread the 18 requests over all three.
    for b in &backends {
        assert!(b.requests_seen() >= 3 + 4, "{} requests", b.requests_seen());
    }
}

/// nginx's default passive health check rests the bad member after its first failure: fewer
/// 502s than its turn, the same member named, and the report says why the share is low.
#[tokio::test]
async fn passive_health_checks_lower_the_share_but_not_the_verdict() {
    let good_a = start_backend(BackendConfig::default()).await;
    let bad = start_backend(bad_header()).await;
    let good_b = start_backend(BackendConfig::default()).await;
    let members = vec![good_a.url(), good_b.url(), bad.url()];
    let nginx = nginx_over(&members, true);
    let report = scan(&nginx.url(0), &members).await;
    let reason = assert_bad_member_named(&report, "member 3 of 3", &bad.url());
    assert!(reason.contains("rest it after failures"), "{reason}");
}

/// Issue 14, item 3: one member with a malformed header is named, and the listener, which
/// passes two requests in three on to healthy members, is not "without a healthy backend",
/// though its baseline GET meets the bad member and gets 502 at once while the backend named
/// answers 200: nginx's round robin takes its servers in order, the bad one first, and without
/// the protocol family the baseline is the run's first GET through the listener.
#[tokio::test]
async fn one_bad_member_is_not_every_backend_unhealthy() {
    let good_a = start_backend(BackendConfig::default()).await;
    let bad = start_backend(bad_header()).await;
    let good_b = start_backend(BackendConfig::default()).await;
    let members = vec![good_a.url(), bad.url(), good_b.url()];
    let nginx = nginx_over(&[bad.url(), good_a.url(), good_b.url()], false);
    let report = scan_with(
        &nginx.url(0),
        &members,
        vec![ProbeSpec::Pool(PoolSpec::default())],
    )
    .await;

    assert_bad_member_named(&report, "member 2 of 3", &bad.url());
    let baseline = report
        .observations
        .iter()
        .find(|o| o.variant == "baseline" && o.role == Role::Listener)
        .and_then(|o| o.exchange.as_ref()?.status());
    assert_eq!(baseline, Some(502), "the baseline met the bad member");
    assert_verdict(&report, "502.all-backends-unhealthy", Verdict::RuledOut);
    let why = &finding(&report, "502.all-backends-unhealthy").reason;
    assert_says(
        why,
        &["it has a backend it sends to", "502.bad-pool-member"],
    );
}

/// The neighbour: every member sends the malformed header, so nginx answers 502 at once to
/// every request and every member fails directly. That is every backend unhealthy, not one bad
/// member.
#[tokio::test]
async fn every_member_failing_directly_is_every_backend_unhealthy() {
    let (_backends, members) = pool_of_3(bad_header()).await;
    let nginx = nginx_over(&members, false);
    let report = scan_with(
        &nginx.url(0),
        &members,
        vec![ProbeSpec::Protocol, ProbeSpec::Pool(PoolSpec::default())],
    )
    .await;

    let evidence = assert_verdict(&report, "502.all-backends-unhealthy", Verdict::Confirmed);
    let why = &finding(&report, "502.all-backends-unhealthy").reason;
    assert!(
        why.contains("every one of the 3 pool members fails when asked directly"),
        "{why}"
    );
    assert!(evidence.contains("its 502s came at once"), "{evidence}");
    assert_eq!(evidence.matches(" failed: ").count(), 3, "{evidence}");
    assert_verdict(&report, "502.bad-pool-member", Verdict::RuledOut);
}
