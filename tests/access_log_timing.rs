//! `--access-log` and the timing rules against a real nginx: what nginx logs for a latency
//! request we leave before a slow backend answers (499, `$upstream_status -`), and for one it
//! ends itself with its own shorter `proxy_read_timeout` (504), and how the 499 findings use
//! those lines. Each test runs in a few seconds; they fail (never skip) without nginx.

mod support;

use std::sync::Arc;
use std::time::Duration;

use lbprobe::catalogue::Catalogue;
use lbprobe::classify::{self, Context, Verdict};
use lbprobe::lab::{NginxServer, NginxSpec};
use lbprobe::logs::probe_line::{self, AccessLog, LoggedLine, PROBE_FORMAT};
use lbprobe::probe::{Family, Observation, ProbeSpec};
use lbprobe::profile::{Numbers, Profile};
use lbprobe::report::Report;
use lbprobe::run::{execute, Job};
use lbprobe::target::Role;

use support::findings::{
    assert_verdict, backend_after, evidence, finding, lab_plan, loopback, start_nginx, summary,
};

/// What one test sets up: nginx in front of a lab backend that answers after `backend_ms`.
struct Setup {
    /// More nginx directives for the proxying server.
    nginx: &'static str,
    backend_ms: u64,
    /// The clients' declared timeout (the latency probe's `client-timeout`).
    client: Duration,
    /// The run's per-request timeout (`--timeout`).
    request_timeout: Duration,
    profile: Profile,
}

/// Run the latency probe through nginx and straight to the backend, with every raw request
/// marked and nginx's access log in lbprobe's `probe` format read after the run.
async fn run(setup: Setup) -> (Report, String) {
    let dir = tempfile::tempdir().unwrap();
    let log_file = dir.path().join("probe.log");
    let backend = backend_after(setup.backend_ms).await;
    let nginx = start_nginx(&NginxSpec {
        http_extra: format!("log_format probe '{PROBE_FORMAT}';"),
        ..NginxSpec::one(NginxServer::proxy(backend.url()).extra(format!(
            "{} access_log \"{}\" probe;",
            setup.nginx,
            log_file.display()
        )))
    });
    let plan = lab_plan(&nginx.url(0), Some(&backend.url()))
        .with_profile(setup.profile)
        .with_probes(vec![ProbeSpec::Latency {
            requests: 2,
            client_timeout: Some(setup.client),
        }])
        .with_limits(loopback(100, setup.request_timeout))
        .with_marker(true);
    let log = AccessLog {
        wait: Duration::from_secs(2),
        ..AccessLog::new(log_file.clone(), AccessLog::format_named("probe").unwrap())
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
        nginx: "",
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
    let declared = Profile::nginx().with_declared(&Numbers {
        response_timeout: Some(Duration::from_secs(1)),
        connect_timeout: Some(Duration::from_secs(1)),
        ..Numbers::default()
    });
    let (report, log) = run(Setup {
        nginx: "proxy_read_timeout 1s; proxy_connect_timeout 1s;",
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
        assert_eq!(line.upstream_status, Some(vec![504]), "{line:?}");
        let t = line.request_time_s.unwrap();
        assert!((0.9..1.4).contains(&t), "request_time {t}");
        assert!(raw_line(&log, &line.marker).contains("\" 504 "));
    }

    for cause in ["499.client-timeout-short", "499.backend-slow"] {
        // The measured 504s alone rule them out too: nginx's own timeout ran out first.
        assert_eq!(
            measured_only(&report, cause),
            Verdict::RuledOut,
            "{cause} measured alone"
        );
        let text = assert_verdict(&report, cause, Verdict::RuledOut);
        let why = &finding(&report, cause).reason;
        assert!(
            why.contains(
                "the listener itself ended 2 of the 2 requests through it, logging 504 after 1.0 s"
            ),
            "{why}"
        );
        assert!(why.contains("before the clients' 1.5 s"), "{why}");
        assert!(why.contains("(see 504.backend-slow)"), "{why}");
        assert!(
            text.contains(
                "the listener logged 504 for it, upstream_status 504, request_time 1.0 s"
            ),
            "{text}"
        );
    }
    assert_verdict(&report, "504.backend-slow", Verdict::Confirmed);
}
