//! Causes reproduced through a real HAProxy (Debian's /usr/sbin/haproxy, 2.6) in front of lab
//! backends: the same probes as the nginx tests, asserting what HAProxy really does where it
//! differs (docs/load-balancers.md tabulates both). Each test starts its own haproxy on its own
//! free ports, so the tests run in parallel. When haproxy is missing these tests fail, naming
//! the binary that was looked for: they never skip.

use std::time::Duration;

use lbprobe::classify::attribution::{self, Origin};
use lbprobe::classify::Verdict;
use lbprobe::lab::{BackendConfig, Fault, FaultRule, Haproxy, HaproxyFrontend, HaproxySpec};
use lbprobe::probe::partial::Outcome;
use lbprobe::probe::{Detail, Family, Observation, ProbeSpec};
use lbprobe::profile::{Numbers, Profile};
use lbprobe::report::Report;
use lbprobe::target::Role;

mod support;
use support::findings::{
    assert_backend_405_on_delete, assert_reason, assert_verdict, backend_after, finding,
    limit_search, loopback, methods_probe, start_backend, start_haproxy, summary, LabRuns,
};
use support::says::assert_says;

/// HAProxy 2.6 keeps a request head within `tune.bufsize - tune.maxrewrite` as it stores it
/// (HTX): the bytes on the wire, plus 4 per header line (a block header of 8 bytes replaces
/// ": " and CRLF), plus this fixed overhead (start-line block and the end-of-headers block),
/// measured at two buffer sizes below.
const HTX_OVERHEAD: usize = 56;
/// HAProxy's default `tune.maxrewrite`.
const MAXREWRITE: usize = 1024;
const LOG_WAIT: Duration = Duration::from_secs(5);

const LAB: LabRuns = LabRuns {
    origin: file!(),
    limits: loopback(400, Duration::from_secs(5)),
};

fn observation<'a>(
    report: &'a Report,
    family: Family,
    variant: &str,
    role: Role,
) -> &'a Observation {
    report
        .observations
        .iter()
        .find(|o| o.family == family && o.variant == variant && o.role == role)
        .unwrap_or_else(|| panic!("no {family} {variant} observation for the {role}"))
}

fn status_of(o: &Observation) -> Option<u16> {
    o.exchange
        .as_ref()
        .and_then(|e| e.response.as_ref())
        .map(|r| r.status)
}

fn log_line(haproxy: &Haproxy, want: impl Fn(&str) -> bool) -> String {
    haproxy
        .wait_log_line(LOG_WAIT, want)
        .unwrap_or_else(|| panic!("not in the access log:\n{}", haproxy.access_log()))
}

#[tokio::test]
async fn plain_http_to_the_https_frontend_is_closed_without_a_400() {
    let haproxy = start_haproxy(&HaproxySpec::one(HaproxyFrontend::no_server().tls(true)));
    let report = LAB
        .execute(
            &haproxy.url(0),
            None,
            Profile::haproxy(),
            vec![ProbeSpec::Protocol],
        )
        .await;
    // Unlike nginx, HAProxy has no HTTP answer for plain HTTP on a TLS port: it closes.
    let ev = assert_verdict(&report, "400.http-to-https-listener", Verdict::RuledOut);
    assert!(ev.contains("no HTTP answer"), "{ev}");
    let o = observation(
        &report,
        Family::Protocol,
        "plain-http-to-tls-port",
        Role::Listener,
    );
    assert_eq!(status_of(o), None, "{o:?}");
    log_line(&haproxy, |l| l.contains("SSL handshake failure"));
}

#[tokio::test]
async fn malformed_requests_some_refused_with_400_others_normalised() {
    let backend = start_backend(BackendConfig::default()).await;
    let haproxy = start_haproxy(&HaproxySpec::one(HaproxyFrontend::proxy(backend.url())));
    let report = LAB
        .execute(
            &haproxy.url(0),
            Some(&backend.url()),
            Profile::haproxy(),
            vec![ProbeSpec::Malformed { variants: None }],
        )
        .await;
    let ev = assert_verdict(&report, "400.malformed-request", Verdict::Reproduced);
    // HAProxy's own 400s: its reason phrase "Bad request" and its page.
    for variant in ["duplicate-content-length", "header-without-colon"] {
        assert!(
            ev.contains(&format!("{variant}: listener 400 Bad request")),
            "{variant}: {ev}"
        );
        let o = observation(&report, Family::Malformed, variant, Role::Listener);
        let ex = o.exchange.as_ref().unwrap();
        assert!(
            attribution::looks_like_haproxy_answer(ex),
            "{variant}: {ex:?}"
        );
    }
    assert!(
        ev.contains("but the body is HAProxy's own 400 page"),
        "{ev}"
    );
    // Passed to the backend, repaired where needed: a lowercase method as is, a bare LF
    // line end, an obs-fold unfolded, and Content-Length dropped beside chunked encoding.
    for variant in [
        "lowercase-method",
        "bare-lf",
        "obs-fold",
        "content-length-and-transfer-encoding",
        "cl-smaller-than-body",
    ] {
        let o = observation(&report, Family::Malformed, variant, Role::Listener);
        assert_eq!(status_of(o), Some(200), "{variant} through HAProxy: {o:?}");
        assert!(!ev.contains(&format!("{variant}:")), "{variant}: {ev}");
    }
    // A NUL in a header value reaches the backend, whose own 400 is what the client sees.
    let ev = assert_verdict(&report, "400.passthrough", Verdict::Reproduced);
    assert!(ev.contains("malformed nul-in-header"), "{ev}");
    // The report's table groups the same kinds by the side that refuses them.
    let table = report.malformed.as_ref().expect("a malformed table");
    let g = &table.groups;
    // HAProxy's own 400 page for kinds the lab backend refuses too; its own refusal of kinds
    // the backend takes (a fragment in the target).
    for variant in ["duplicate-content-length", "header-without-colon"] {
        assert!(g.rejected_by_both.iter().any(|v| v == variant), "{g:?}");
    }
    assert!(
        g.listener_rejects.iter().any(|v| v == "rl-fragment"),
        "{g:?}"
    );
    assert!(
        g.backend_rejects_passed_on
            .iter()
            .any(|v| v == "nul-in-header"),
        "{g:?}"
    );
    assert!(g.accepted_by_both.iter().any(|v| v == "obs-fold"), "{g:?}");
    assert_eq!(
        table.rows.len(),
        lbprobe::probe::templates::malformed()
            .iter()
            .filter(|t| t.id != "control" && !t.is_sequence())
            .count(),
        "every template but the control and the keep-alive sequences (those run only when named)"
    );
    log_line(&haproxy, |l| {
        l.contains(" 400 ") && l.contains("be0/s0") && l.contains("\"GET / HTTP/1.1\"")
    });
    // ...and HAProxy's own refusals are logged as <BADREQ> answered by no server.
    log_line(&haproxy, |l| {
        l.contains("fe0/<NOSRV>") && l.contains("\"<BADREQ>\"")
    });
}

#[tokio::test]
async fn trace_is_passed_on_and_the_backend_405_is_passed_through() {
    let backend = start_backend(BackendConfig::default().reject_method("DELETE")).await;
    let haproxy = start_haproxy(&HaproxySpec::one(HaproxyFrontend::proxy(backend.url())));
    let report = LAB
        .execute(
            &haproxy.url(0),
            Some(&backend.url()),
            Profile::haproxy(),
            vec![methods_probe(&["GET", "TRACE", "DELETE"])],
        )
        .await;
    // HAProxy passes TRACE on: the listener's own 405 is ruled out.
    let trace = assert_verdict(&report, "405.trace-unsupported", Verdict::RuledOut);
    assert!(trace.contains("TRACE via the listener: 200"), "{trace}");
    assert!(
        finding(&report, "405.trace-unsupported")
            .reason
            .contains("passes TRACE on"),
        "{}",
        summary(&report)
    );
    assert_backend_405_on_delete(&report);
    assert_verdict(&report, "405.passthrough", Verdict::Reproduced);
    log_line(&haproxy, |l| {
        l.contains("\"TRACE / HTTP/1.1\"") && l.contains(" 200 ")
    });
}

/// The head of the request of `size` as HAProxy stores it: its bytes on the wire plus 4 per
/// header line.
fn stored_head(report: &Report, family: Family, prefix: &str, size: usize) -> usize {
    let o = observation(report, family, &format!("{prefix}-{size}"), Role::Listener);
    // Every line ends with CRLF: the request line, the header lines, the empty line.
    let header_lines = o.request.text.matches("\\r\\n").count() - 2;
    o.request.bytes + 4 * header_lines
}

async fn limits_with_bufsize(bufsize: usize) -> Report {
    let backend = start_backend(BackendConfig::default()).await;
    let haproxy = start_haproxy(
        &HaproxySpec::one(HaproxyFrontend::proxy(backend.url()))
            .global(format!("tune.bufsize {bufsize}")),
    );
    let probes = [Family::HeaderSize, Family::HeaderLimit, Family::UriLimit]
        .into_iter()
        .map(ProbeSpec::default_for)
        .collect();
    let report = LAB
        .execute(
            &haproxy.url(0),
            Some(&backend.url()),
            Profile::haproxy(),
            probes,
        )
        .await;
    let budget = bufsize - MAXREWRITE - HTX_OVERHEAD;
    for (family, prefix) in [
        (Family::HeaderSize, "header"),
        (Family::HeaderLimit, "block"),
        (Family::UriLimit, "uri"),
    ] {
        let l = limit_search(&report, family, Role::Listener);
        let accepted = l
            .largest_accepted
            .unwrap_or_else(|| panic!("{family}: {l:?}"));
        assert_eq!(l.smallest_rejected, Some(accepted + 1), "{family}: {l:?}");
        // An oversized URI gets 400 from HAProxy too, never 414.
        assert_eq!(l.rejected_status, Some(400), "{family}: {l:?}");
        assert_eq!(
            stored_head(&report, family, prefix, accepted),
            budget,
            "{family}: the largest head passed should fill bufsize {bufsize} - maxrewrite - \
             {HTX_OVERHEAD} exactly"
        );
        assert!(
            stored_head(&report, family, prefix, accepted + 1) > budget,
            "{family}"
        );
    }
    report
}

#[tokio::test]
async fn header_and_uri_limits_share_bufsize_minus_maxrewrite_at_8k() {
    let report = limits_with_bufsize(8192).await;
    // Below the profile's documented 15 000 bytes: a smaller buffer than the default is named.
    let f = assert_reason(
        &report,
        "400.header-too-large",
        Verdict::Confirmed,
        "below the 15000 bytes the haproxy profile",
    );
    // HAProxy answers an over-long URI with 400: that belongs to the 400 cause, with a note,
    // and no 414 cause is reproduced with a 400.
    let ev = assert_verdict(&report, "414.uri-too-long", Verdict::RuledOut);
    assert!(ev.contains("(status 400;"), "{ev}");
    assert!(
        f.evidence.iter().any(|e| e
            .text
            .contains("HAProxy answers an over-long URI with 400, not the 414")),
        "{}",
        summary(&report)
    );
}

#[tokio::test]
async fn header_and_uri_limits_share_bufsize_minus_maxrewrite_at_the_default_16k() {
    let report = limits_with_bufsize(16384).await;
    // HAProxy's defaults meet its profile: the limits are reproduced, not a mismatch.
    let ev = assert_verdict(&report, "400.header-too-large", Verdict::Reproduced);
    assert!(ev.contains("(status 400;"), "{ev}");
    // The over-long URI's 400 is reported under the 400 cause, never as a 414.
    assert_says(
        &ev,
        &[
            "listener (uri-limit): request targets above",
            "HAProxy answers an over-long URI with 400, not the 414",
        ],
    );
    let ev = assert_verdict(&report, "414.uri-too-long", Verdict::RuledOut);
    assert!(ev.contains("(status 400;"), "{ev}");
    // The lab backend takes far longer URIs: its limit is not the tighter one.
    let f = finding(&report, "414.backend-uri-limit");
    assert_ne!(f.verdict, Verdict::Confirmed, "{}", summary(&report));
}

#[tokio::test]
async fn incomplete_head_gets_408_from_haproxy_after_timeout_http_request() {
    let backend = start_backend(BackendConfig::default()).await;
    let haproxy = start_haproxy(
        &HaproxySpec::one(HaproxyFrontend::proxy(backend.url()))
            .defaults("timeout http-request 2s"),
    );
    let report = LAB
        .execute(
            &format!("{}/partial-probe", haproxy.url(0)),
            Some(&backend.url()),
            Profile::haproxy(),
            vec![ProbeSpec::Partial {
                max_wait: Duration::from_secs(6),
            }],
        )
        .await;
    let ev = assert_verdict(&report, "408.partial-request", Verdict::Reproduced);
    assert_says(&ev, &["headers-partial", "408 Request Time-out"]);
    // HAProxy answers with its own page (nginx closes without a word); it is not the
    // backend's 408 passed on, though the backend also answers 408.
    let o = observation(&report, Family::Partial, "headers-partial", Role::Listener);
    let listener = o.exchange.as_ref().unwrap();
    assert!(
        attribution::looks_like_haproxy_answer(listener),
        "{listener:?}"
    );
    let direct = observation(&report, Family::Partial, "headers-partial", Role::Backend);
    let (origin, why) = attribution::origin(listener, direct.exchange.as_ref());
    assert_eq!(origin, Origin::Listener, "{why}");
    assert!(
        report
            .findings
            .iter()
            .all(|f| f.cause != "408.passthrough" || f.verdict == Verdict::RuledOut),
        "{}",
        summary(&report)
    );
    // `timeout http-request` covers the head only: a missing body goes on to the backend,
    // which gives up itself (its 400 is what the client sees).
    let body_obs = observation(&report, Family::Partial, "body-missing", Role::Listener);
    match &body_obs.detail {
        Detail::Partial(r) => assert_eq!(r.outcome, Outcome::Answered { status: 400 }, "{r:?}"),
        other => panic!("{other:?}"),
    }
    assert!(
        !attribution::looks_like_haproxy_answer(body_obs.exchange.as_ref().unwrap()),
        "the 400 for a missing body is the backend's"
    );
    // A client that cuts its request and closes: nginx closes silently and logs 400; HAProxy
    // answers the half-closed connection with its 400 page at once.
    assert_verdict(&report, "400.client-closed-early", Verdict::Reproduced);
    match &observation(&report, Family::Partial, "close-early", Role::Listener).detail {
        Detail::Partial(r) => assert_eq!(
            r.after_our_close,
            Some(Outcome::Answered { status: 400 }),
            "{r:?}"
        ),
        other => panic!("{other:?}"),
    }
    // HAProxy logs the timed-out head as 408, client-side timeout during the request (cR).
    let line = log_line(&haproxy, |l| l.contains(" 408 "));
    assert!(line.contains("cR--") && line.contains("<NOSRV>"), "{line}");
}

#[tokio::test]
async fn slow_backend_gets_504_after_timeout_server() {
    let backend = backend_after(1500).await;
    let haproxy = start_haproxy(
        &HaproxySpec::one(HaproxyFrontend::proxy(backend.url()))
            .defaults("timeout server 1s\n    timeout connect 1s"),
    );
    let profile = Profile::haproxy().with_declared(&Numbers {
        response_timeout: Some(Duration::from_secs(1)),
        connect_timeout: Some(Duration::from_secs(1)),
        ..Numbers::default()
    });
    let report = LAB
        .execute(
            &haproxy.url(0),
            Some(&backend.url()),
            profile,
            vec![
                ProbeSpec::Latency {
                    requests: 3,
                    client_timeout: None,
                },
                ProbeSpec::Connect { attempts: 3 },
            ],
        )
        .await;
    let ev = assert_verdict(&report, "504.backend-slow", Verdict::Confirmed);
    assert!(ev.contains("got 504"), "{ev}");
    assert_verdict(&report, "504.connect-timeout", Verdict::RuledOut);
    assert_verdict(&report, "502.backend-slow", Verdict::RuledOut);
    let o = observation(&report, Family::Protocol, "baseline", Role::Listener);
    assert_eq!(status_of(o), Some(504));
    assert!(attribution::looks_like_haproxy_answer(
        o.exchange.as_ref().unwrap()
    ));
    // sH: the server timed out before sending its headers.
    let line = log_line(&haproxy, |l| l.contains(" 504 "));
    assert!(line.contains("sH--") && line.contains("be0/s0"), "{line}");
}

#[tokio::test]
async fn backend_without_server_gets_haproxys_own_503() {
    let backend = start_backend(BackendConfig::default()).await;
    let haproxy = start_haproxy(&HaproxySpec::one(HaproxyFrontend::no_server()));
    let report = LAB
        .execute(
            &haproxy.url(0),
            Some(&backend.url()),
            Profile::haproxy(),
            vec![
                ProbeSpec::Protocol,
                ProbeSpec::Latency {
                    requests: 3,
                    client_timeout: None,
                },
            ],
        )
        .await;
    let o = observation(&report, Family::Protocol, "baseline", Role::Listener);
    let listener = o.exchange.as_ref().unwrap();
    let r = listener.response.as_ref().unwrap();
    assert_eq!((r.status, r.reason.as_str()), (503, "Service Unavailable"));
    assert!(
        r.body_prefix
            .text()
            .contains("No server is available to handle this request."),
        "{r:?}"
    );
    // The listener wrote it: the backend, asked directly, answers 200.
    let direct = observation(&report, Family::Protocol, "baseline", Role::Backend);
    let (origin, why) = attribution::origin(listener, direct.exchange.as_ref());
    assert_eq!(origin, Origin::Listener, "{why}");
    assert!(why.contains("the body is HAProxy's own 503 page"), "{why}");
    // The backend's own 503 is ruled out, nothing blames the backend for passing one on, and
    // the listener answering at once with its own page while the backend is fine is exactly
    // 503.no-backends.
    assert_verdict(&report, "503.backend-error", Verdict::RuledOut);
    assert_verdict(&report, "503.no-backends", Verdict::Confirmed);
    assert!(
        report
            .findings
            .iter()
            .all(|f| !(f.cause == "503.passthrough"
                && matches!(f.verdict, Verdict::Confirmed | Verdict::Reproduced))),
        "{}",
        summary(&report)
    );
    assert_eq!(report.summary.confirmed, 1, "{}", summary(&report));
    let stats = report
        .observations
        .iter()
        .find_map(|o| match &o.detail {
            Detail::Latency(s) if o.role == Role::Listener => Some(s),
            _ => None,
        })
        .expect("latency stats for the listener");
    assert_eq!(stats.statuses.get(&503), Some(&3), "{stats:?}");
    // No server was tried: <NOSRV>, no connect time (-1), and SC (server-side connection
    // failure while connecting: there was nothing to connect to).
    let line = log_line(&haproxy, |l| l.contains(" 503 "));
    assert!(
        line.contains("be0/<NOSRV>") && line.contains("SC--") && line.contains("0/-1/-1/-1/"),
        "{line}"
    );
}

#[tokio::test]
async fn broken_backend_header_gets_502_from_haproxy() {
    let backend =
        start_backend(BackendConfig::default().fault(FaultRule::all(Fault::MalformedHeader))).await;
    let haproxy = start_haproxy(&HaproxySpec::one(HaproxyFrontend::proxy(backend.url())));
    let report = LAB
        .execute(
            &haproxy.url(0),
            Some(&backend.url()),
            Profile::haproxy(),
            vec![ProbeSpec::Response],
        )
        .await;
    assert_reason(
        &report,
        "502.malformed-backend-response",
        Verdict::Confirmed,
        "the listener refuses it and answers 502",
    );
    // PH: HAProxy refused the server's response headers.
    let line = log_line(&haproxy, |l| l.contains(" 502 "));
    assert!(line.contains("PH--"), "{line}");
}

#[tokio::test]
async fn backend_503_is_passed_through_as_the_backends() {
    let backend =
        start_backend(BackendConfig::default().fault(FaultRule::all(Fault::Status(503)))).await;
    let haproxy = start_haproxy(&HaproxySpec::one(HaproxyFrontend::proxy(backend.url())));
    let report = LAB
        .execute(
            &haproxy.url(0),
            Some(&backend.url()),
            Profile::haproxy(),
            vec![ProbeSpec::Response],
        )
        .await;
    assert_verdict(&report, "503.backend-error", Verdict::Confirmed);
    assert_verdict(&report, "503.passthrough", Verdict::Confirmed);
    let o = observation(&report, Family::Protocol, "baseline", Role::Listener);
    assert!(!attribution::looks_like_haproxy_answer(
        o.exchange.as_ref().unwrap()
    ));
    let line = log_line(&haproxy, |l| l.contains(" 503 "));
    assert!(line.contains("be0/s0") && line.contains(" ---- "), "{line}");
}

#[tokio::test]
async fn backend_closing_without_response_gets_502_from_haproxy() {
    let backend =
        start_backend(BackendConfig::default().fault(FaultRule::all(Fault::CloseWithoutResponse)))
            .await;
    let haproxy = start_haproxy(&HaproxySpec::one(HaproxyFrontend::proxy(backend.url())));
    let report = LAB
        .execute(
            &haproxy.url(0),
            Some(&backend.url()),
            Profile::haproxy(),
            vec![ProbeSpec::Response],
        )
        .await;
    assert_verdict(&report, "500.backend-closed-early", Verdict::Confirmed);
    let ev = assert_verdict(&report, "502.backend-error-mapped", Verdict::Confirmed);
    assert!(ev.contains("502"), "{ev}");
    // SH: the server aborted before sending its headers.
    let line = log_line(&haproxy, |l| l.contains(" 502 "));
    assert!(line.contains("SH--"), "{line}");
}
