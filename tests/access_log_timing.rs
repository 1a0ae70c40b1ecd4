//! `--access-log` and the timing rules against a real nginx and a real HAProxy: what each logs
//! for a latency request we leave before a slow backend answers (nginx: 499, `$upstream_status
//! -`; HAProxy: `400 CH` with `option abortonclose`, else the server's 200 once it answers),
//! and for one it ends itself with its own shorter timeout (504; HAProxy's `sH`), and how the
//! 499 findings use those lines. Each test runs in a few seconds; they fail (never skip)
//! without nginx or HAProxy.

mod support;

use std::sync::Arc;
use std::time::Duration;

use lbprobe::catalogue::Catalogue;
use lbprobe::classify::{self, Context, Verdict};
use lbprobe::lab::{HaproxyFrontend, HaproxySpec, NginxServer, NginxSpec};
use lbprobe::logs::probe_line::{self, AccessLog, LoggedLine, HAPROXY_CAPTURE_LINE, PROBE_FORMAT};
use lbprobe::logs::LogFormat;
use lbprobe::probe::{Family, Observation, ProbeSpec};
use lbprobe::profile::{Numbers, Profile};
use lbprobe::report::Report;
use lbprobe::run::{execute, Job};
use lbprobe::target::Role;

use support::findings::{
    assert_verdict, backend_after, evidence, finding, lab_plan, loopback, start_haproxy,
    start_nginx, summary,
};

/// The listener in front of the lab backend, with what it is configured with beyond the
/// harness's own.
enum Listener {
    /// More nginx directives for the proxying server; its log in lbprobe's `probe` format.
    Nginx(&'static str),
    /// More lines for HAProxy's `defaults` (`timeout server 1s`); its `option httplog` line
    /// with the marker captured.
    Haproxy(&'static str),
}

/// What one test sets up: a listener in front of a lab backend that answers after
/// `backend_ms`.
struct Setup {
    listener: Listener,
    backend_ms: u64,
    /// The clients' declared timeout (the latency probe's `client-timeout`).
    client: Duration,
    /// The run's per-request timeout (`--timeout`).
    request_timeout: Duration,
    profile: Profile,
}

/// Run the latency probe through the listener and straight to the backend, with every raw
/// request marked and the listener's access log read after the run.
async fn run(setup: Setup) -> (Report, String) {
    let dir = tempfile::tempdir().unwrap();
    let backend = backend_after(setup.backend_ms).await;
    // The listener's guard lives until the log is read; HAProxy's log is its stdout, kept in
    // a file of its own dir.
    let (_nginx, _haproxy, url, log_file, format) = match setup.listener {
        Listener::Nginx(directives) => {
            let log_file = dir.path().join("probe.log");
            let nginx = start_nginx(&NginxSpec {
                http_extra: format!("log_format probe '{PROBE_FORMAT}';"),
                ..NginxSpec::one(NginxServer::proxy(backend.url()).extra(format!(
                    "{directives} access_log \"{}\" probe;",
                    log_file.display()
                )))
            });
            let url = nginx.url(0);
            let format = AccessLog::format_named("probe").unwrap();
            (Some(nginx), None, url, log_file, format)
        }
        Listener::Haproxy(defaults) => {
            let haproxy = start_haproxy(
                &HaproxySpec::one(
                    HaproxyFrontend::proxy(backend.url()).extra(HAPROXY_CAPTURE_LINE),
                )
                .defaults(defaults),
            );
            let url = haproxy.url(0);
            let log_file = haproxy.dir().join("access.log");
            (None, Some(haproxy), url, log_file, LogFormat::Haproxy)
        }
    };
    let plan = lab_plan(&url, Some(&backend.url()))
        .with_profile(setup.profile)
        .with_probes(vec![ProbeSpec::Latency {
            requests: 2,
            client_timeout: Some(setup.client),
        }])
        .with_limits(loopback(100, setup.request_timeout))
        .with_marker(true);
    // HAProxy writes its line when the request ends on its side, which may be seconds after
    // we left it (see below).
    let log = AccessLog {
        wait: Duration::from_secs(3),
        ..AccessLog::new(log_file.clone(), format)
    };
    let job = Job {
        access_log: Some(log),
        ..Job::new("access-log-timing", file!(), plan)
    };
    let report = execute(job, Arc::new(|_| {})).await;
    let text = std::fs::read_to_string(&log_file).unwrap_or_default();
    (report, text)
}

/// The latency requests through the listener, with the line attached to each.
fn latency_lines(report: &Report) -> Vec<(&Observation, &LoggedLine)> {
    let requests: Vec<&Observation> = report
        .observations
        .iter()
        .filter(|o| o.role == Role::Listener && o.family == Family::Latency)
        .filter(|o| o.exchange.is_some())
        .collect();
    assert!(
        !requests.is_empty(),
        "no latency request:{}",
        summary(report)
    );
    requests
        .into_iter()
        .map(|o| {
            let line = o
                .logged
                .as_ref()
                .unwrap_or_else(|| panic!("{}: no line attached:{}", o.variant, summary(report)));
            (o, line)
        })
        .collect()
}

/// The line of the log that ends with `"marker"`, found without the feature's own search.
fn raw_line<'a>(log: &'a str, marker: &str) -> &'a str {
    let quoted = format!("\"{marker}\"");
    log.lines()
        .find(|l| l.ends_with(&quoted))
        .unwrap_or_else(|| panic!("{marker} not in the log:\n{log}"))
}

/// The report's observations classified again without their lines: what was measured alone.
fn measured_only(report: &Report, cause: &str) -> Verdict {
    let mut observations = report.observations.clone();
    for o in &mut observations {
        o.logged = None;
    }
    let ctx = Context {
        profile: &report.profile,
        listener_tls: Some(false),
        has_backend: true,
    };
    classify::classify(&observations, Catalogue::builtin(), &ctx)
        .into_iter()
        .find(|f| f.cause == cause)
        .unwrap_or_else(|| panic!("no finding for {cause}"))
        .verdict
}

fn not_confirmed(report: &Report, cause: &str) -> String {
    let f = finding(report, cause);
    assert_ne!(f.verdict, Verdict::Confirmed, "{cause}:{}", summary(report));
    format!("{}\n{}", f.reason, evidence(f))
}

/// A backend that needs 3 s, nginx at its default 60 s `proxy_read_timeout`, and a run whose
/// requests wait 1 s (`--timeout 1s`): we leave first. (Both sides then count as silent, and
/// the latency family takes the baseline GET, marked like any, as its one request.) The
/// experiment: nginx 1.22 logs 499 with the marker, `$upstream_status -` (no backend had
/// answered), `$request_time` 1.0 s and `$upstream_response_time` as long (it waited on the
/// backend the whole time). The findings state it; with no valid answer measured, they stay
/// inconclusive.
#[tokio::test]
async fn a_request_we_leave_before_a_slow_backend_answers_is_logged_499_and_stated() {
    let (report, log) = run(Setup {
        listener: Listener::Nginx(""),
        backend_ms: 3000,
        client: Duration::from_secs(1),
        request_timeout: Duration::from_secs(1),
        profile: Profile::nginx(),
    })
    .await;

    let lines = latency_lines(&report);
    for (o, line) in &lines {
        let ex = o.exchange.as_ref().unwrap();
        assert!(ex.response.is_none(), "{}: answered", o.variant);
        assert_eq!(line.status, 499, "{line:?}");
        assert_eq!(line.upstream_status, Some(vec![]), "{line:?}");
        let t = line.request_time_s.unwrap();
        assert!((0.9..2.0).contains(&t), "request_time {t}");
        let upstream = line.upstream_response_time_s.unwrap();
        assert!((t - upstream).abs() < 0.1, "{line:?}");
        // The same line, read here from the file: 499, nothing sent, upstream_status `-`.
        let raw = raw_line(&log, &line.marker);
        assert!(raw.contains("\" 499 0 \""), "{raw}");
        assert_eq!(
            probe_line::marker_of(o).as_deref(),
            Some(line.marker.as_str())
        );
    }

    for cause in ["499.client-timeout-short", "499.backend-slow"] {
        let text = not_confirmed(&report, cause);
        assert_eq!(finding(&report, cause).verdict, Verdict::Inconclusive);
        for words in [
            "we left it without an answer after 1.0 s",
            "the listener logged 499 for it, upstream_status -, request_time 1.0 s",
            "it records our leaving as a client abort",
            "still waiting for its backend (upstream_status -): a client that waits 1.0 s leaves it too",
        ] {
            assert!(text.contains(words), "{cause}: {words:?} not in {text}");
        }
    }
    // The 504 rule's "no answer within our wait": the line says the listener was waiting for
    // its backend, not stuck itself.
    let slow = assert_verdict(&report, "504.backend-slow", Verdict::Inconclusive);
    assert!(
        slow.contains("it was still waiting for its backend when we left"),
        "{slow}"
    );
}

/// The neighbour: the same probe with nginx's own `proxy_read_timeout 1s`, shorter than the
/// clients' 1.5 s, in front of a backend that needs 2 s. nginx answers and logs 504 after 1 s
/// for every request: no client waits long enough to leave. The measured 504s (two at one
/// moment, before the clients' timeout) rule both 499 causes out, and the 504 lines say the same
/// in the listener's words; 504.backend-slow stays confirmed.
#[tokio::test]
async fn a_listener_that_logs_504_before_the_clients_timeout_rules_the_499s_out() {
    let (report, log) = run_504(
        Listener::Nginx("proxy_read_timeout 1s; proxy_connect_timeout 1s;"),
        Profile::nginx(),
    )
    .await;
    for (_, line) in latency_lines(&report) {
        assert_eq!(line.upstream_status, Some(vec![504]), "{line:?}");
        assert!(raw_line(&log, &line.marker).contains("\" 504 "));
    }

    assert_504_rules_the_499s_out(
        &report,
        "the listener itself ended 2 of the 2 requests through it, logging 504 after 1.0 s",
        "the listener logged 504 for it, upstream_status 504, request_time 1.0 s",
    );
}

/// The listener's line for each latency request through it, found in `log` by its `{marker}`
/// capture, without the feature's own search.
fn haproxy_line<'a>(log: &'a str, marker: &str) -> &'a str {
    let captured = format!("{{{marker}}}");
    log.lines()
        .find(|l| l.contains(&captured))
        .unwrap_or_else(|| panic!("{marker} not in the log:\n{log}"))
}

/// The HAProxy counterpart of the 499 test: a backend that needs 3 s, `timeout server 10s`,
/// and a run whose requests wait 1 s, then close (a FIN). The experiment (HAProxy 2.6.12,
/// Debian 12) found that what HAProxy logs depends on `option abortonclose`:
///
/// ```text
/// with it (in defaults):
/// 127.0.0.1:37288 [08/Dec/2026:05:18:51.758] fe0 be0/s0 0/0/1/-1/1001 400 206 - - CH-- 1/1/0/0/0 0/0 {36cf1658-1} "GET / HTTP/1.1"
/// without it (HAProxy's default):
/// 127.0.0.1:37482 [08/Dec/2026:05:10:37.833] fe0 be0/s0 0/0/0/3003/3003 200 147 - - ---- 1/1/0/0/0 0/0 {36f3da7c-1} "GET / HTTP/1.1"
/// ```
///
/// With it, HAProxy drops the request when we leave and logs its client abort while it waited
/// for the server's headers: status 400 (not -1), `CH`, Tr -1, Ta 1.0 s. The findings state
/// it as they state nginx's 499, and it decides nothing on its own. Without it, a FIN is to HAProxy a client that may only have closed its sending side:
/// it keeps waiting, sends the server's answer into the closed connection and logs it as
/// served when the server answers, 200 `----` with Tr and Ta 3.0 s: nothing records our
/// leaving, and the findings claim no abort. (`option abortonclose` in the backend section
/// alone left the default line; a frontend section ignores it with a warning.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn haproxy_logs_a_request_we_leave_as_a_client_abort_ch_only_with_abortonclose() {
    let setup = |defaults| Setup {
        listener: Listener::Haproxy(defaults),
        backend_ms: 3000,
        client: Duration::from_secs(1),
        request_timeout: Duration::from_secs(1),
        profile: Profile::haproxy(),
    };
    // Side by side: each has its own HAProxy and backend, and both wait on timers.
    let ((report, log), (served, served_log)) = tokio::join!(
        run(setup("timeout server 10s\n    option abortonclose")),
        run(setup("timeout server 10s")),
    );

    for (o, line) in latency_lines(&report) {
        let ex = o.exchange.as_ref().unwrap();
        assert!(ex.response.is_none(), "{}: answered", o.variant);
        assert_eq!(line.status, 400, "{line:?}\n{log}");
        assert_eq!(line.termination.as_deref(), Some("CH"), "{line:?}");
        // Tr -1: no response headers from the server when we left.
        assert_eq!(line.upstream_response_time_s, None, "{line:?}");
        assert_eq!(line.upstream_status, Some(vec![]), "{line:?}");
        let ta = line.request_time_s.unwrap();
        assert!((0.9..2.0).contains(&ta), "Ta {ta}");
        let raw = haproxy_line(&log, &line.marker);
        assert!(
            raw.contains("/-1/") && raw.contains(" 400 ") && raw.contains(" CH-- "),
            "{raw}"
        );
    }
    for cause in ["499.client-timeout-short", "499.backend-slow"] {
        assert_eq!(
            measured_only(&report, cause),
            Verdict::Inconclusive,
            "{cause} measured alone"
        );
        let text = not_confirmed(&report, cause);
        assert_eq!(finding(&report, cause).verdict, Verdict::Inconclusive);
        for words in [
            "we left it without an answer after 1.0 s",
            "HAProxy logged 400 CH for it (the client aborted while it waited for the server's response headers), Tr -1, Ta 1.0 s",
            "it records our leaving as a client abort",
            "its record of a client that aborted while it waited for the server's response headers: a client that waits 1.0 s leaves it too",
        ] {
            assert!(text.contains(words), "{cause}: {words:?} not in {text}");
        }
    }
    let slow = assert_verdict(&report, "504.backend-slow", Verdict::Inconclusive);
    assert!(
        slow.contains("it was still waiting for its backend when we left"),
        "{slow}"
    );

    // HAProxy's default: the same request, logged as served once the server answered.
    for (o, line) in latency_lines(&served) {
        let ex = o.exchange.as_ref().unwrap();
        assert!(ex.response.is_none(), "{}: answered", o.variant);
        assert!(ex.timings.total_ms < 2000.0, "we left at 1 s");
        assert_eq!(line.status, 200, "{line:?}\n{served_log}");
        assert_eq!(line.termination.as_deref(), Some("--"), "{line:?}");
        assert_eq!(line.upstream_status, Some(vec![200]), "{line:?}");
        let ta = line.request_time_s.unwrap();
        assert!((2.9..4.0).contains(&ta), "Ta {ta}");
        let tr = line.upstream_response_time_s.unwrap();
        assert!((ta - tr).abs() < 0.1, "{line:?}");
        let raw = haproxy_line(&served_log, &line.marker);
        assert!(raw.contains(" 200 ") && raw.contains(" ---- "), "{raw}");
    }
    for cause in ["499.client-timeout-short", "499.backend-slow"] {
        let f = finding(&served, cause);
        assert_eq!(f.verdict, measured_only(&served, cause), "{cause}");
        assert_eq!(f.verdict, Verdict::Inconclusive, "{cause}");
        let text = format!("{}\n{}", f.reason, evidence(f));
        for words in ["client abort", "HAProxy logged"] {
            assert!(!text.contains(words), "{cause}: {words:?} in {text}");
        }
    }
}

/// The neighbour: HAProxy's own `timeout server 1s`, shorter than the clients' 1.5 s, in front
/// of a backend that needs 2 s. HAProxy answers 504 after 1 s and logs (HAProxy 2.6.12):
///
/// ```text
/// 127.0.0.1:40314 [08/Dec/2026:05:10:29.129] fe0 be0/s0 0/0/0/-1/1001 504 198 - - sH-- 1/1/0/0/0 0/0 {2db455a2-1} "GET / HTTP/1.1"
/// ```
///
/// Tr -1 (no response headers from the server), Ta 1.0 s, termination state `sH` (its server
/// timeout struck while it waited for them). As nginx's 504 lines do, these rule both 499 causes
/// out, in HAProxy's words; 504.backend-slow stays confirmed.
#[tokio::test]
async fn a_haproxy_that_logs_504_sh_before_the_clients_timeout_rules_the_499s_out() {
    let (report, log) = run_504(Listener::Haproxy("timeout server 1s"), Profile::haproxy()).await;
    for (_, line) in latency_lines(&report) {
        assert_eq!(line.termination.as_deref(), Some("sH"), "{line:?}");
        // Tr -1: no server answered.
        assert_eq!(line.upstream_status, Some(vec![]), "{line:?}");
        assert_eq!(line.upstream_response_time_s, None, "{line:?}");
        let raw = haproxy_line(&log, &line.marker);
        assert!(
            raw.contains("/-1/") && raw.contains(" 504 ") && raw.contains(" sH-- "),
            "{raw}"
        );
    }

    assert_504_rules_the_499s_out(
        &report,
        "the listener itself ended 2 of the 2 requests through it, logging 504 after 1.0 s (its Ta)",
        "HAProxy logged 504 sH for it (its server timeout struck while it waited for the server's response headers), Tr -1, Ta 1.0 s",
    );
}

/// The 504 neighbours' run: the listener's own 1 s timeout (declared in `profile` too) in front
/// of a backend that needs 2 s, clients of 1.5 s. Each of the two latency requests through it
/// got 504, and its line says 504 after about a second (nginx's request_time, HAProxy's Ta).
async fn run_504(listener: Listener, profile: Profile) -> (Report, String) {
    let declared = profile.with_declared(&Numbers {
        response_timeout: Some(Duration::from_secs(1)),
        connect_timeout: Some(Duration::from_secs(1)),
        ..Numbers::default()
    });
    let (report, log) = run(Setup {
        listener,
        backend_ms: 2000,
        client: Duration::from_millis(1500),
        request_timeout: Duration::from_secs(3),
        profile: declared,
    })
    .await;
    let lines = latency_lines(&report);
    assert_eq!(lines.len(), 2);
    for (o, line) in &lines {
        assert_eq!(o.exchange.as_ref().unwrap().status(), Some(504));
        assert_eq!(line.status, 504, "{line:?}");
        let t = line.request_time_s.unwrap();
        assert!((0.9..1.4).contains(&t), "request_time {t}");
    }
    (report, log)
}

/// A listener that ended every request with its own 504 before the clients' 1.5 s: both 499
/// causes ruled out, from the measured 504s alone and with the lines (whose words `ended` and
/// `logged` are in the reason and the evidence); 504.backend-slow stays confirmed.
fn assert_504_rules_the_499s_out(report: &Report, ended: &str, logged: &str) {
    for cause in ["499.client-timeout-short", "499.backend-slow"] {
        assert_eq!(
            measured_only(report, cause),
            Verdict::RuledOut,
            "{cause} measured alone"
        );
        let text = assert_verdict(report, cause, Verdict::RuledOut);
        let why = &finding(report, cause).reason;
        assert!(why.contains(ended), "{why}");
        assert!(why.contains("before the clients' 1.5 s"), "{why}");
        assert!(why.contains("(see 504.backend-slow)"), "{why}");
        assert!(text.contains(logged), "{text}");
    }
    assert_verdict(report, "504.backend-slow", Verdict::Confirmed);
}
