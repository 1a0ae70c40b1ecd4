//! Issue 14's cases against a third real proxy: Apache httpd 2.4 with mod_proxy (Debian's
//! /usr/sbin/apache2), set up as production ones are — short timeouts (`ProxyTimeout 1`,
//! `timeout=1` on the workers), a `balancer://` pool, TLS on its own certificate — in front of
//! lab backends. Each confirmed cause has its neighbour here, a setup that must not confirm it.
//! Apache answers 503, not 502, when it cannot connect to a backend: the findings say so. When
//! httpd is missing these tests fail, naming where it was looked for: they never skip.

use std::time::Duration;

use lbprobe::classify::Verdict;
use lbprobe::lab::{
    free_port, Apache, ApacheSpec, ApacheVhost, BackendConfig, Fault, FaultRule, LabCert,
};
use lbprobe::probe::pool::PoolSpec;
use lbprobe::probe::{Family, Limits, Plan, ProbeSpec};
use lbprobe::report::Report;
use lbprobe::target::{Role, Target};

mod support;
use support::findings::{
    assert_backend_slow_measured, assert_bad_member_named, assert_reason, assert_verdict,
    backend_after, finding, lab_target, start_apache, start_backend, summary, text_of,
    timing_probes,
};
use support::says::assert_says;

/// One scan with the default profile (auto: chosen from Apache's own answers). Lab listeners
/// present lab certificates, so the listener's is not verified; the backend's is as given.
async fn scan(
    listener: &str,
    backend: Option<Target>,
    pool: &[String],
    probes: Vec<ProbeSpec>,
) -> Report {
    let plan = Plan::new(Some(lab_target(Role::Listener, listener)), backend)
        .with_probes(probes)
        .with_limits(Limits {
            max_requests: 200,
            max_rate: 500.0,
            max_duration: Duration::from_secs(30),
            request_timeout: Duration::from_millis(1500),
        })
        .with_pool(pool.iter().map(|m| lab_target(Role::Backend, m)).collect());
    support::findings::execute(file!(), plan).await
}

/// A lab backend as a target, its certificate (if any) not verified.
fn lab_backend(url: &str) -> Option<Target> {
    Some(lab_target(Role::Backend, url))
}

/// A backend as a user gives it: its certificate verified against the web PKI, which a lab
/// certificate never is.
fn verified_backend(url: &str) -> Option<Target> {
    Some(Target::parse(Role::Backend, url).unwrap_or_else(|e| panic!("{url}: {e}")))
}

fn not_confirmed(report: &Report, cause: &str) {
    let f = finding(report, cause);
    assert_ne!(
        f.verdict,
        Verdict::Confirmed,
        "{cause} must not be confirmed:{}",
        summary(report)
    );
}

/// Apache answering its requests through a `ProxyTimeout 1` in front of a backend that answers
/// after `ms`.
async fn apache_with_proxy_timeout_1s(ms: u64) -> (lbprobe::lab::LabBackend, Apache) {
    let backend = backend_after(ms).await;
    let apache =
        start_apache(&ApacheSpec::one(ApacheVhost::proxy(backend.url())).global("ProxyTimeout 1"));
    (backend, apache)
}

// ---------------------------------------------------------------- item 1: gateway timeouts

/// `ProxyTimeout 1` in front of a backend that answers after 2 s. Apache 2.4 answers a read
/// timeout with its own `502 Proxy Error` ("Error reading from remote server"), not 504: the
/// slow backend is confirmed under 502, with both numbers beside the 60 s Apache documents, and
/// the 504 cause points there rather than claiming a code Apache never sent.
#[tokio::test]
async fn apache_proxy_timeout_shorter_than_documented_confirms_the_slow_backend_under_502() {
    let (backend, apache) = apache_with_proxy_timeout_1s(2000).await;
    let report = scan(
        &apache.url(0),
        lab_backend(&backend.url()),
        &[],
        timing_probes(),
    )
    .await;

    assert_eq!(report.profile.name, "apache", "{}", summary(&report));
    assert_backend_slow_measured(&report, 502, "apache");
    // A verdict for 504 only when 504 was seen.
    let f = finding(&report, "504.backend-slow");
    assert_eq!(f.verdict, Verdict::RuledOut, "{}", summary(&report));
    assert!(
        f.reason.contains("gives up with 502, not 504")
            && f.reason.contains("see 502.backend-slow"),
        "{}",
        f.reason
    );
    // It waited on a backend that accepted at once: no connect fault, no "no backends", and
    // its own 502 is not the backend's answer passed on.
    assert_verdict(&report, "504.connect-timeout", Verdict::RuledOut);
    assert_verdict(&report, "502.backend-unreachable", Verdict::RuledOut);
    not_confirmed(&report, "502.all-backends-unhealthy");
    assert!(
        report
            .findings
            .iter()
            .all(|f| !f.cause.ends_with(".passthrough") || f.verdict != Verdict::Confirmed),
        "{}",
        summary(&report)
    );
    // Apache's own words for it: a read timeout (APR's 70007), answered as a proxy error.
    let log = apache.error_log();
    assert!(
        log.contains("AH01102") && log.contains("(70007)The timeout specified has expired"),
        "{log}"
    );
}

/// The neighbour: the same Apache, a backend well inside its timeout.
#[tokio::test]
async fn apache_in_front_of_a_backend_inside_its_timeout_confirms_no_slow_backend() {
    let (backend, apache) = apache_with_proxy_timeout_1s(300).await;
    let report = scan(
        &apache.url(0),
        lab_backend(&backend.url()),
        &[],
        timing_probes(),
    )
    .await;

    for cause in [
        "502.backend-slow",
        "504.backend-slow",
        "504.connect-timeout",
    ] {
        not_confirmed(&report, cause);
    }
    let why = text_of(&report, "502.backend-slow");
    assert!(why.contains("passed every answer on"), "{why}");
    assert_eq!(report.summary.confirmed, 0, "{}", summary(&report));
}

// ---------------------------------------------------------------- items 2 and 5: URI limits

/// Listener only, Apache at its default `LimitRequestLine` in front of a backend that takes any
/// URI: the 414 is Apache's own page, so the trigger is reproduced as the listener's, at the
/// limit Apache documents (its neighbour, the backend's 414 relayed, is in tests/apache.rs).
#[tokio::test]
async fn listener_only_scan_reproduces_apaches_own_414_as_the_listeners() {
    let backend = start_backend(BackendConfig::default()).await;
    let apache = start_apache(&ApacheSpec::one(ApacheVhost::proxy(backend.url())));
    let report = scan(
        &apache.url(0),
        None,
        &[],
        vec![ProbeSpec::default_for(Family::UriLimit)],
    )
    .await;
    assert_eq!(report.profile.name, "apache", "{}", summary(&report));
    let ev = assert_verdict(&report, "414.uri-too-long", Verdict::Reproduced);
    assert!(ev.contains("Apache httpd's own 414 page"), "{ev}");
}

// ---------------------------------------------------------------- item 3: a balancer pool

async fn pool_scan(apache: &Apache, members: &[String]) -> Report {
    scan(
        &apache.url(0),
        lab_backend(&members[0]),
        members,
        vec![ProbeSpec::Protocol, ProbeSpec::Pool(PoolSpec::default())],
    )
    .await
}

/// Apache balancing by request over `members`, `timeout=1` on each.
fn apache_balancing(members: &[String]) -> Apache {
    start_apache(&ApacheSpec::one(
        ApacheVhost::balance(members).pass_options("timeout=1"),
    ))
}

/// Three `BalancerMember`s, the second of which answers with a header line without a colon:
/// Apache answers its own 502 for the requests it sends there and passes the others on. The
/// member is named; "every backend unhealthy" is not confirmed.
#[tokio::test]
async fn apache_balancer_with_one_bad_member_names_it_and_not_every_backend() {
    let good_a = start_backend(BackendConfig::default()).await;
    let bad =
        start_backend(BackendConfig::default().fault(FaultRule::all(Fault::MalformedHeader))).await;
    let good_b = start_backend(BackendConfig::default()).await;
    let members = vec![good_a.url(), bad.url(), good_b.url()];
    let apache = apache_balancing(&members);
    let report = pool_scan(&apache, &members).await;

    let reason = assert_bad_member_named(&report, "member 2 of 3", &bad.url());
    assert!(reason.contains("(1 of 3: 33 %)"), "{reason}");
    assert_reason(
        &report,
        "502.all-backends-unhealthy",
        Verdict::RuledOut,
        "it has a backend it sends to",
    );
    not_confirmed(&report, "503.no-backends");
}

/// The neighbour: every member refuses connections. Apache answers its own 503 at once to every
/// request, having no member to send to: that is 503.no-backends, with a note that the reference
/// page documents 502 for every backend unhealthy; the 502 causes are not confirmed, as no 502
/// was seen, and the one they would be points to the 503.
#[tokio::test]
async fn apache_balancer_with_every_member_down_is_no_backends_under_503() {
    let members: Vec<String> = (0..3)
        .map(|_| format!("http://127.0.0.1:{}", free_port().expect("a free port")))
        .collect();
    let apache = apache_balancing(&members);
    let report = pool_scan(&apache, &members).await;

    let ev = assert_verdict(&report, "503.no-backends", Verdict::Confirmed);
    let why = &finding(&report, "503.no-backends").reason;
    assert!(
        why.contains("every one of the 3 pool members fails when asked directly"),
        "{why}"
    );
    assert!(
        ev.contains("Apache httpd answers 503 when every member of its pool is down; the reference page documents 502"),
        "{ev}"
    );
    assert_reason(
        &report,
        "502.all-backends-unhealthy",
        Verdict::RuledOut,
        "with 503, not 502 (see 503.no-backends)",
    );
    assert_verdict(&report, "502.bad-pool-member", Verdict::RuledOut);
    // Each member's own failure is its own cause: the one named is refused.
    let ev = assert_verdict(&report, "502.backend-unreachable", Verdict::Confirmed);
    assert!(ev.contains("Apache httpd answers 503 for it"), "{ev}");
}

// ---------------------------------------------------------------- item 4: a TLS backend

/// A TLS-only lab backend on a self-signed certificate lbprobe cannot verify; `plain_page`: it
/// answers plain HTTP with a 400 page of its own, as nginx does, rather than closing.
async fn tls_backend(plain_page: bool) -> lbprobe::lab::LabBackend {
    start_backend(
        BackendConfig::default()
            .tls(true)
            .answer_plain_http(plain_page),
    )
    .await
}

fn lab_cert() -> LabCert {
    LabCert::localhost().unwrap_or_else(|e| panic!("a lab certificate: {e}"))
}

/// Apache on TLS with its own certificate, `ProxyPass / http://` to a TLS-only backend that
/// answers plain HTTP with its 400 page: Apache relays that 400. The handshake with the backend
/// and the relayed page prove it, though lbprobe's own verified request to the backend fails.
#[tokio::test]
async fn apache_proxying_plain_http_to_a_tls_backend_relays_its_400_and_is_confirmed() {
    let backend = tls_backend(true).await;
    let apache = start_apache(&ApacheSpec::one(
        ApacheVhost::proxy(format!("http://{}", backend.addr())).tls(lab_cert()),
    ));
    let report = scan(
        &apache.url(0),
        verified_backend(&backend.url()),
        &[],
        vec![ProbeSpec::Protocol],
    )
    .await;

    let ev = assert_verdict(&report, "400.backend-expects-https", Verdict::Confirmed);
    assert!(ev.contains("completed a TLSv1."), "{ev}");
    assert!(
        ev.contains("a valid GET through the listener got 400 Bad Request")
            && ev.contains("plain HTTP request sent to the HTTPS port"),
        "{ev}"
    );
    assert!(
        ev.contains("straight to the backend got no HTTP answer: TLS handshake failed"),
        "{ev}"
    );
    // The access log: Apache sent the backend's 400 on.
    assert!(
        apache.access_log().contains("\" 400 "),
        "{}",
        apache.access_log()
    );
}

/// The neighbour set up right: `SSLProxyEngine on` and `ProxyPass / https://` to the same kind
/// of backend (not verified, as mod_ssl's `SSLProxyVerify none` default says). Ruled out. Its
/// TLS listener answers plain HTTP with its own 400, the trigger of another cause.
#[tokio::test]
async fn apache_with_sslproxyengine_to_the_tls_backend_rules_it_out() {
    let backend = tls_backend(true).await;
    let apache = start_apache(&ApacheSpec::one(
        ApacheVhost::proxy(format!("https://{}", backend.addr()))
            .extra("SSLProxyEngine on\n    SSLProxyVerify none\n    SSLProxyCheckPeerName off")
            .tls(lab_cert()),
    ));
    let report = scan(
        &apache.url(0),
        verified_backend(&backend.url()),
        &[],
        vec![ProbeSpec::Protocol],
    )
    .await;

    let ev = assert_verdict(&report, "400.backend-expects-https", Verdict::RuledOut);
    assert!(ev.contains("through the listener got 200 OK"), "{ev}");
    let ev = assert_verdict(&report, "400.http-to-https-listener", Verdict::Reproduced);
    assert!(ev.contains("got 400 Bad Request"), "{ev}");
    assert_eq!(report.summary.confirmed, 0, "{}", summary(&report));
}

/// A TLS-only backend that closes on plain HTTP (as most TLS stacks do) rather than answering
/// it: Apache answers its own `502 Proxy Error` ("Error reading from remote server"). From
/// outside that is the same 502 a listener speaking TLS to it would give if it could not set
/// the connection up, so the cause stays open, saying so and where to look.
#[tokio::test]
async fn apache_proxying_plain_http_to_a_closing_tls_backend_is_inconclusive_with_the_reason() {
    let backend = tls_backend(false).await;
    let apache = start_apache(&ApacheSpec::one(ApacheVhost::proxy(format!(
        "http://{}",
        backend.addr()
    ))));
    let report = scan(
        &apache.url(0),
        verified_backend(&backend.url()),
        &[],
        vec![ProbeSpec::Protocol],
    )
    .await;

    let f = finding(&report, "400.backend-expects-https");
    assert_eq!(f.verdict, Verdict::Inconclusive, "{}", summary(&report));
    assert!(
        f.reason.contains("gets 502 Proxy Error") && f.reason.contains("error log"),
        "{}",
        f.reason
    );
    not_confirmed(&report, "502.all-backends-unhealthy");
    assert!(
        apache.error_log().contains("AH01102"),
        "{}",
        apache.error_log()
    );
}

// ---------------------------------------------------------------- a refused backend

/// Nothing listens on the backend's port: Apache answers its own 503 Service Unavailable at
/// once. The backend's fault is measured straight at it (502.backend-unreachable), with a note
/// that this listener answers 503 for it; "no backends" stays open between that refusal
/// reported and the backend held in error, naming the refusal's cause.
#[tokio::test]
async fn apache_in_front_of_a_refused_backend_answers_503_and_the_refusal_is_confirmed() {
    let backend = format!("http://127.0.0.1:{}", free_port().expect("a free port"));
    let apache = start_apache(&ApacheSpec::one(ApacheVhost::proxy(&backend)));
    let mut probes = vec![ProbeSpec::Protocol];
    probes.extend(timing_probes());
    let report = scan(&apache.url(0), lab_backend(&backend), &[], probes).await;

    let ev = assert_verdict(&report, "502.backend-unreachable", Verdict::Confirmed);
    assert_says(
        &ev,
        &[
            "refused (RST)",
            "Apache httpd answers 503 for it, not the 502 the reference page documents",
        ],
    );
    assert_reason(&report, "503.no-backends", Verdict::Inconclusive, "(see 502.backend-unreachable; Apache httpd answers 503 when it cannot connect to a backend)");
    for cause in [
        "504.connect-timeout",
        "502.backend-slow",
        "504.backend-slow",
    ] {
        assert_verdict(&report, cause, Verdict::RuledOut);
    }
    assert!(
        apache.error_log().contains("AH01114"),
        "{}",
        apache.error_log()
    );
}
