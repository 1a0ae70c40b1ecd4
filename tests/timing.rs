//! The timing probes (latency, connect) against a real nginx with short upstream timeouts and
//! lab backends that are slow, fast, closed or silent: the classifier names each cause and not
//! its neighbours. Assertions are on verdicts and evidence, never on how long anything took.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use lbprobe::classify::Verdict;
use lbprobe::lab::{BackendConfig, LabBackend, Nginx, NginxServer, NginxSpec, UnacceptingListener};
use lbprobe::probe::{self, Detail, Family, Limits, Plan, ProbeSpec};
use lbprobe::profile::{Numbers, Profile};
use lbprobe::target::{Role, Target};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

mod support;
use support::findings::backend_after;
use support::outcome::Outcome;
use support::says::assert_says;

/// nginx gives up on the backend after these, and the profile says so, so the classifier
/// compares against what nginx really does.
const NGINX_TIMEOUTS: &str = "proxy_read_timeout 1s; proxy_connect_timeout 1s;";

fn profile() -> Profile {
    Profile::nginx().with_declared(&Numbers {
        response_timeout: Some(Duration::from_secs(1)),
        connect_timeout: Some(Duration::from_secs(1)),
        ..Numbers::default()
    })
}

fn nginx_in_front_of(upstream: &str) -> Nginx {
    let spec = NginxSpec::one(NginxServer::proxy(upstream).extra(NGINX_TIMEOUTS));
    Nginx::start(&spec).unwrap_or_else(|e| panic!("cannot run the nginx tests: {e}"))
}

/// Probe listener and backend with latency and connect, then classify.
async fn probe(
    listener: &str,
    backend: &str,
    requests: u32,
    client_timeout: Option<Duration>,
) -> Outcome {
    let plan = Plan::new(
        Some(Target::parse(Role::Listener, listener).unwrap()),
        Some(Target::parse(Role::Backend, backend).unwrap()),
    )
    .with_profile(profile())
    .with_probes(vec![
        ProbeSpec::Latency {
            requests,
            client_timeout,
        },
        ProbeSpec::Connect { attempts: 3 },
    ])
    .with_limits(Limits {
        request_timeout: Duration::from_secs(5),
        max_rate: 200.0,
        max_duration: Duration::from_secs(60),
        ..Limits::default()
    });
    let out = probe::run(&plan, Arc::new(|_| {})).await;
    Outcome::of(&plan, out)
}

/// A socket bound to a loopback port without SO_REUSEADDR and without listening.
fn bound_not_listening() -> Socket {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).unwrap();
    socket
        .bind(&SockAddr::from(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))))
        .unwrap();
    socket
}

fn stats_of(outcome: &Outcome, role: Role) -> &lbprobe::probe::latency::LatencyStats {
    outcome
        .observations
        .iter()
        .find_map(|o| match &o.detail {
            Detail::Latency(s) if o.role == role => Some(s),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no latency stats for the {role}"))
}

#[tokio::test]
async fn slow_backend_confirms_504_backend_slow_not_connect_timeout() {
    let lab = backend_after(1500).await;
    let nginx = nginx_in_front_of(&lab.url());
    let o = probe(&nginx.url(0), &lab.url(), 3, None).await;

    o.assert("504.backend-slow", Verdict::Confirmed);
    o.assert("504.connect-timeout", Verdict::RuledOut);
    o.assert("502.backend-slow", Verdict::RuledOut);
    o.assert("502.backend-unreachable", Verdict::RuledOut);
    let slow = o.text("504.backend-slow");
    assert_says(
        &slow,
        &[
            "straight to the backend: 200 ×3; time to first byte",
            "got 504",
        ],
    );
    // Every request got an answer: nginx's 504 through the listener, the slow 200 straight.
    assert_eq!(
        stats_of(&o, Role::Listener).statuses.get(&504),
        Some(&3),
        "{:?}",
        stats_of(&o, Role::Listener)
    );
    assert_eq!(stats_of(&o, Role::Backend).statuses.get(&200), Some(&3));
    // One observation per request and one summary per side.
    let requests = o
        .observations
        .iter()
        .filter(|o| o.family == Family::Latency && o.variant.starts_with("request-"))
        .count();
    assert_eq!(requests, 6);
}

#[tokio::test]
async fn fast_backend_rules_out_both_504_causes() {
    let lab = LabBackend::start(BackendConfig::default()).await.unwrap();
    let nginx = nginx_in_front_of(&lab.url());
    let o = probe(&nginx.url(0), &lab.url(), 5, None).await;

    o.assert("504.backend-slow", Verdict::RuledOut);
    o.assert("504.connect-timeout", Verdict::RuledOut);
    o.assert("502.backend-slow", Verdict::RuledOut);
    o.assert("502.backend-unreachable", Verdict::RuledOut);
    // Loopback neither loses packets nor takes 200 ms.
    o.assert("408.network-rtt-loss", Verdict::RuledOut);
    o.assert("499.network-rtt-loss", Verdict::RuledOut);
    o.assert("408.bandwidth-throttled", Verdict::Inconclusive);
    let bandwidth = o.text("499.bandwidth-throttled");
    assert_says(
        &bandwidth,
        &["provider's monitoring", "retransmitted segments"],
    );
    // No client timeout declared: nothing to compare with, but a recommendation all the same.
    o.assert("499.client-timeout-short", Verdict::Inconclusive);
    let short = o.text("499.client-timeout-short");
    assert!(short.contains("recommended client timeout"), "{short}");
}

#[tokio::test]
async fn closed_backend_port_confirms_502_backend_unreachable() {
    // Bound but never listening: connections are refused, and while it is held no other
    // process (another test's nginx) can take the port.
    let closed = bound_not_listening();
    let backend = format!(
        "http://{}",
        closed.local_addr().unwrap().as_socket().unwrap()
    );
    let nginx = nginx_in_front_of(&backend);
    let o = probe(&nginx.url(0), &backend, 3, None).await;

    o.assert("502.backend-unreachable", Verdict::Confirmed);
    let why = o.text("502.backend-unreachable");
    assert!(why.contains("refused (RST)"), "{why}");
    o.assert("504.connect-timeout", Verdict::RuledOut);
    assert_ne!(o.verdict("504.backend-slow"), Some(Verdict::Confirmed));
    assert_eq!(
        stats_of(&o, Role::Listener).statuses.get(&502),
        Some(&3),
        "nginx answers 502 for a refused upstream"
    );
}

#[tokio::test]
async fn client_timeout_below_a_consistent_backend_is_too_short() {
    let lab = backend_after(300).await;
    let nginx = nginx_in_front_of(&lab.url());
    let o = probe(
        &nginx.url(0),
        &lab.url(),
        5,
        Some(Duration::from_millis(100)),
    )
    .await;

    o.assert("499.client-timeout-short", Verdict::Confirmed);
    o.assert("499.backend-slow", Verdict::RuledOut);
    let short = o.text("499.client-timeout-short");
    assert_says(
        &short,
        &[
            "recommended client timeout: ",
            "× 2, rounded up",
            "the clients' declared timeout is 100 ms",
        ],
    );
    // The backend is slow for this client, not for nginx.
    o.assert("504.backend-slow", Verdict::RuledOut);
    assert_eq!(
        stats_of(&o, Role::Backend).client_timeout_ms,
        Some(100.0),
        "the stats carry the declared client timeout"
    );
}

/// The neighbour of the test above: the same 300 ms backend, clients that wait 2 s. Requests
/// finish well inside their timeout.
#[tokio::test]
async fn client_timeout_above_a_consistent_backend_is_not_too_short() {
    let lab = backend_after(300).await;
    let nginx = nginx_in_front_of(&lab.url());
    let o = probe(&nginx.url(0), &lab.url(), 3, Some(Duration::from_secs(2))).await;

    o.assert("499.client-timeout-short", Verdict::RuledOut);
    o.assert("499.backend-slow", Verdict::RuledOut);
    let short = o.text("499.client-timeout-short");
    assert!(
        short.contains("requests finish within the clients' 2 s"),
        "{short}"
    );
}

#[tokio::test]
async fn silently_dropped_syns_confirm_504_connect_timeout() {
    let silent = UnacceptingListener::start().expect("unaccepting listener");
    let nginx = nginx_in_front_of(&silent.url());
    let o = probe(&nginx.url(0), &silent.url(), 3, None).await;

    o.assert("504.connect-timeout", Verdict::Confirmed);
    let why = o.text("504.connect-timeout");
    assert_says(&why, &["got no answer to the SYN", "got 504"]);
    o.assert("502.backend-unreachable", Verdict::RuledOut);
    assert_ne!(o.verdict("504.backend-slow"), Some(Verdict::Confirmed));
}
