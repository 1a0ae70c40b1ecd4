//! `--access-log`: each marked probe's own line in a real listener's access log, found by its
//! `X-Lbprobe-Id` token and attached to the observation; a log whose format has no field for
//! the marker gets the line to add and no attachment. These tests fail (never skip) when nginx
//! or HAProxy is missing.

#[path = "support/json_schema.rs"]
mod json_schema;
mod support;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use lbprobe::lab::{
    BackendConfig, HaproxyFrontend, HaproxySpec, LabBackend, NginxServer, NginxSpec,
};
use lbprobe::logs::probe_line::{self, AccessLog, PROBE_FORMAT};
use lbprobe::logs::LogFormat;
use lbprobe::probe::{Family, MarkerPlace, Observation, Plan, ProbeSpec};
use lbprobe::profile::Profile;
use lbprobe::report::Report;
use lbprobe::run::{execute, Job};
use lbprobe::target::Role;

use lbprobe::classify::Verdict;
use support::findings::{evidence, finding, lab_target, start_haproxy, start_nginx};

/// Short client timeouts, so the partial probes end in about a second.
const NGINX_TIMEOUTS: &str = "client_header_timeout 1s; client_body_timeout 1s;";
const PATH: &str = "/logged";

async fn run(plan: Plan, log: AccessLog) -> Report {
    let job = Job {
        access_log: Some(log),
        ..Job::new("access-log", "tests/access_log.rs", plan.with_marker(true))
    };
    execute(job, Arc::new(|_| {})).await
}

/// The line of `file` that holds `"marker"` as nginx writes `"$http_x_lbprobe_id"`, read here
/// without the feature's own search.
fn line_with(file: &Path, marker: &str) -> Option<String> {
    let quoted = format!("\"{marker}\"");
    std::fs::read_to_string(file)
        .ok()?
        .lines()
        .find(|l| l.ends_with(&quoted))
        .map(str::to_string)
}

fn listener_marked(report: &Report) -> Vec<(&Observation, String)> {
    report
        .observations
        .iter()
        .filter(|o| o.role == Role::Listener)
        .filter_map(|o| Some((o, probe_line::marker_of(o)?)))
        .collect()
}

fn observation<'a>(report: &'a Report, variant: &str) -> &'a Observation {
    report
        .observations
        .iter()
        .find(|o| o.role == Role::Listener && o.family == Family::Partial && o.variant == variant)
        .unwrap_or_else(|| panic!("no listener {variant} observation"))
}

#[tokio::test]
async fn nginx_logs_each_marked_probe_and_a_format_without_the_marker_attaches_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let probe_log = dir.path().join("probe.log");
    let combined_log = dir.path().join("combined.log");
    let backend = LabBackend::start(BackendConfig::default())
        .await
        .expect("lab backend starts");
    let nginx = start_nginx(&NginxSpec {
        http_extra: format!("log_format probe '{PROBE_FORMAT}';"),
        ..NginxSpec::one(NginxServer::proxy(backend.url()).extra(format!(
            "{NGINX_TIMEOUTS} access_log \"{}\" probe; access_log \"{}\" combined;",
            probe_log.display(),
            combined_log.display()
        )))
    });
    let plan = Plan::new(
        Some(lab_target(
            Role::Listener,
            &format!("{}{PATH}", nginx.url(0)),
        )),
        None,
    )
    .with_profile(Profile::nginx())
    .with_probes(vec![ProbeSpec::Partial {
        max_wait: Duration::from_secs(3),
    }]);
    let log = AccessLog {
        wait: Duration::from_secs(2),
        ..AccessLog::new(probe_log.clone(), AccessLog::format_named("probe").unwrap())
    };
    let report = run(plan, log).await;

    let marked = listener_marked(&report);
    // The baseline and the four partial variants: the cut ones are marked too.
    assert!(marked.len() >= 5, "{} marked", marked.len());
    for (o, marker) in &marked {
        let logged = o.logged.as_ref().unwrap_or_else(|| {
            panic!(
                "{} {}: no line attached ({marker})",
                o.family.as_str(),
                o.variant
            )
        });
        assert_eq!(&logged.marker, marker);
        // The same line, found independently, says the same status.
        let line =
            line_with(&probe_log, marker).unwrap_or_else(|| panic!("{marker} not in the log"));
        assert!(line.contains(&format!("\" {} ", logged.status)), "{line}");
    }
    // The experiment: nginx logs $http_x_lbprobe_id for a request cut mid-header that the
    // client abandons (400, no upstream), and for the head it timed out on (408).
    let early = observation(&report, "close-early").logged.clone().unwrap();
    assert_eq!(early.status, 400, "{early:?}");
    assert_eq!(early.upstream_status, Some(vec![]), "{early:?}");
    let early_s = early.request_time_s.unwrap();
    assert!((0.4..2.0).contains(&early_s), "request_time {early_s}");
    let head = observation(&report, "headers-partial")
        .logged
        .clone()
        .unwrap();
    assert_eq!(head.status, 408, "{head:?}");
    assert!(head.request_time_s.unwrap() >= 0.9, "{head:?}");
    // The findings state what nginx logged, in place of "look in its access log".
    let early_finding = finding(&report, "400.client-closed-early");
    let text = evidence(early_finding);
    assert_eq!(
        early_finding.verdict,
        Verdict::Reproduced,
        "{}",
        early_finding.reason
    );
    assert!(
        early_finding.reason.contains("logged 400 for it"),
        "{}",
        early_finding.reason
    );
    assert!(
        text.contains("the listener logged status 400, upstream_status -"),
        "{text}"
    );
    assert!(!text.contains("look in its access log"), "{text}");
    let timeout = finding(&report, "408.partial-request");
    let text = evidence(timeout);
    assert_eq!(timeout.verdict, Verdict::Reproduced, "{}", timeout.reason);
    assert!(
        text.contains("the listener logged status 408, upstream_status -"),
        "{text}"
    );
    let note = report.notes.join("\n");
    assert!(
        note.contains(&format!(
            "found the listener's own line for {} of {}",
            marked.len(),
            marked.len()
        )),
        "{note}"
    );
    // A control request nginx passed on: the backend's 200 as its upstream status.
    let baseline = marked
        .iter()
        .find(|(o, _)| o.well_formed)
        .and_then(|(o, _)| o.logged.clone())
        .expect("the baseline's line");
    assert_eq!(baseline.upstream_status, Some(vec![baseline.status]));
    assert!(baseline.upstream_response_time_s.is_some(), "{baseline:?}");

    // Neighbour: the same run's requests in nginx's `combined` format, which has no field for
    // the header. Nothing is attached, and the note gives the log_format line to add.
    let combined = AccessLog {
        wait: Duration::from_millis(200),
        ..AccessLog::new(combined_log.clone(), LogFormat::parse("combined").unwrap())
    };
    let mut observations = report.observations.clone();
    for o in &mut observations {
        o.logged = None;
    }
    let lookup = combined
        .find(None, &probe_line::wanted(&observations))
        .unwrap();
    let notes = probe_line::attach(&combined, &lookup, &mut observations).join("\n");
    assert!(observations.iter().all(|o| o.logged.is_none()));
    assert!(notes.contains("\"$http_x_lbprobe_id\""), "{notes}");
    assert!(notes.contains("log_format lbprobe '"), "{notes}");
    assert!(
        std::fs::read_to_string(&combined_log)
            .unwrap()
            .lines()
            .count()
            >= marked.len(),
        "nginx wrote the combined log too"
    );
}

/// HAProxy logs to its stdout (`log stdout format raw`), which the harness keeps in a file:
/// the frontend with the capture line carries the marker in `{…}`, the other does not.
#[tokio::test]
async fn haproxy_capture_carries_the_marker_and_a_frontend_without_it_gets_the_line_to_add() {
    let backend = LabBackend::start(BackendConfig::default())
        .await
        .expect("lab backend starts");
    let haproxy = start_haproxy(
        &HaproxySpec {
            frontends: vec![
                HaproxyFrontend::proxy(backend.url()).extra(probe_line::HAPROXY_CAPTURE_LINE),
                HaproxyFrontend::proxy(backend.url()),
            ],
            ..HaproxySpec::default()
        }
        .defaults("timeout http-request 1s"),
    );
    let log_file = haproxy.dir().join("access.log");
    let plan = |port: usize| {
        Plan::new(
            Some(lab_target(
                Role::Listener,
                &format!("{}{PATH}", haproxy.url(port)),
            )),
            None,
        )
        .with_profile(Profile::haproxy())
        .with_probes(vec![ProbeSpec::Partial {
            max_wait: Duration::from_secs(3),
        }])
    };
    let log = AccessLog {
        wait: Duration::from_secs(1),
        ..AccessLog::new(log_file.clone(), LogFormat::Haproxy)
    };
    let report = run(plan(0), log.clone()).await;
    let text = std::fs::read_to_string(&log_file).unwrap();
    let marked = listener_marked(&report);
    for (o, marker) in &marked {
        let captured = format!("{{{marker}}}");
        let line = text.lines().find(|l| l.contains(&captured));
        match (&o.logged, line) {
            (Some(logged), Some(line)) => {
                assert!(line.contains(&format!(" {} ", logged.status)), "{line}");
                assert!(logged.termination.is_some(), "{logged:?}");
            }
            (None, None) => {}
            (logged, line) => panic!("{} {marker}: attached {logged:?}, line {line:?}", o.variant),
        }
    }
    let baseline = marked
        .iter()
        .find(|(o, _)| o.well_formed)
        .and_then(|(o, _)| o.logged.clone())
        .expect("the baseline's line");
    assert_eq!(baseline.status, 200);
    assert_eq!(baseline.termination.as_deref(), Some("--"));
    assert_eq!(baseline.upstream_status, Some(vec![200]));
    // Complete heads with a missing body: captured and found.
    for variant in ["body-missing", "body-partial"] {
        let logged = observation(&report, variant).logged.clone();
        assert!(logged.is_some(), "{variant}: no line attached");
    }
    // The experiment: HAProxy logs a request whose head never completed as <BADREQ> with no
    // capture (it captures once the head is parsed): 408 cR for the stalled head, 400 CR for
    // the one the client abandoned. Their markers are nowhere, and nothing is attached.
    assert!(text.contains("408 0 - - cR--"), "{text}");
    assert!(text.contains("400 0 - - CR--"), "{text}");
    for variant in ["headers-partial", "close-early"] {
        assert!(observation(&report, variant).logged.is_none(), "{variant}");
    }
    let notes = report.notes.join("\n");
    assert!(
        notes.contains("found the listener's own line for 3 of 5 marked probes"),
        "{notes}"
    );
    assert!(notes.contains("<BADREQ>"), "{notes}");

    // Neighbour: the frontend without the capture line. Its lines carry no marker: nothing is
    // attached (never another probe's line), and the note gives the line to add.
    let report = run(plan(1).with_probes(Vec::new()), log.clone()).await;
    let marked = listener_marked(&report);
    assert!(!marked.is_empty());
    assert!(marked.iter().all(|(o, _)| o.logged.is_none()));
    let notes = report.notes.join("\n");
    assert!(notes.contains(probe_line::HAPROXY_CAPTURE_LINE), "{notes}");
    assert!(
        notes.contains("found the listener's own line for 0 of"),
        "{notes}"
    );
    let text = std::fs::read_to_string(&log_file).unwrap();
    assert!(
        text.lines().any(|l| l.contains(" fe1 ")),
        "fe1 logged its requests: {text}"
    );

    // The same frontend with the marker in the query string (`--marker-in query`): its
    // httplog line holds the request line, and every marked probe with a whole head is found.
    let report = run(
        plan(1).with_marker_place(MarkerPlace::Query),
        AccessLog {
            place: MarkerPlace::Query,
            ..log
        },
    )
    .await;
    let marked = listener_marked(&report);
    let text = std::fs::read_to_string(&log_file).unwrap();
    for variant in ["body-missing", "body-partial"] {
        let o = observation(&report, variant);
        let logged = o
            .logged
            .clone()
            .unwrap_or_else(|| panic!("{variant}: no line attached; notes {:?}", report.notes));
        let line = text
            .lines()
            .find(|l| l.contains(&format!("lbprobe-id={} ", logged.marker)))
            .unwrap_or_else(|| panic!("{} not in {text}", logged.marker));
        assert!(line.contains(" fe1 "), "{line}");
        assert!(line.contains(&format!(" {} ", logged.status)), "{line}");
    }
    assert!(marked.len() >= 3, "{} marked", marked.len());
}

/// The flags as a person types them: `--access-log FILE` with the default `probe` format turns
/// the marker on, and the JSON report carries each line under `logged`.
#[tokio::test]
async fn cli_scan_with_access_log_attaches_logged_lines_to_the_json_report() {
    let dir = tempfile::tempdir().unwrap();
    let probe_log = dir.path().join("probe.log");
    let backend = LabBackend::start(BackendConfig::default())
        .await
        .expect("lab backend starts");
    let nginx = start_nginx(&NginxSpec {
        http_extra: format!("log_format probe '{PROBE_FORMAT}';"),
        ..NginxSpec::one(NginxServer::proxy(backend.url()).extra(format!(
            "{NGINX_TIMEOUTS} access_log \"{}\" probe;",
            probe_log.display()
        )))
    });
    let listener = format!("{}{PATH}", nginx.url(0));
    let file = probe_log.display().to_string();
    let mut args = vec![
        "scan",
        "--listener",
        &listener,
        "--probes",
        "partial",
        "--access-log",
        &file,
        "--access-log-wait",
        "1",
        "--format",
        "json",
    ];
    args.extend_from_slice(support::report_json::TIGHT);
    let out = support::report_json::lbprobe_async(&args).await;
    let report = support::report_json::json(&out);
    // docs/schema/defs.schema.json's LoggedLine holds what was attached.
    json_schema::assert_valid(lbprobe::report::schema::Kind::Run, &report);
    let observations = report["observations"].as_array().expect("observations");
    let early = observations
        .iter()
        .find(|o| o["role"] == "listener" && o["variant"] == "close-early")
        .expect("the close-early observation");
    assert_eq!(early["logged"]["status"], 400, "{early}");
    assert_eq!(
        early["logged"]["upstream_status"],
        serde_json::json!([]),
        "{early}"
    );
    let logged = observations
        .iter()
        .filter(|o| o["role"] == "listener" && !o["logged"].is_null())
        .count();
    assert!(logged >= 5, "{logged} listener observations with a line");
    let notes = report["notes"].to_string();
    assert!(
        notes.contains(&format!(
            "found the listener's own line for {logged} of {logged}"
        )),
        "{notes}"
    );
}

/// nginx with a buffered access log (`buffer=64k flush=2s`) writes a request's line up to two
/// seconds after the answer: the read waits for it instead of reporting it missing.
#[tokio::test]
async fn a_line_nginx_writes_after_the_run_is_waited_for() {
    let dir = tempfile::tempdir().unwrap();
    let probe_log = dir.path().join("probe.log");
    let nginx = start_nginx(&NginxSpec {
        http_extra: format!("log_format probe '{PROBE_FORMAT}';"),
        ..NginxSpec::one(NginxServer::fixed().extra(format!(
            "access_log \"{}\" probe buffer=64k flush=2s;",
            probe_log.display()
        )))
    });
    let log = AccessLog {
        wait: Duration::from_secs(3),
        ..AccessLog::new(probe_log.clone(), AccessLog::format_named("probe").unwrap())
    };
    let start = log.start();
    let plan = Plan::new(
        Some(lab_target(
            Role::Listener,
            &format!("{}{PATH}", nginx.url(0)),
        )),
        None,
    )
    .with_probes(Vec::new())
    .with_marker(true);
    let report = execute(
        Job::new("buffered", "tests/access_log.rs", plan),
        Arc::new(|_| {}),
    )
    .await;
    let markers = probe_line::wanted(&report.observations);
    assert_eq!(markers.len(), 1, "the baseline is marked");
    // Still in nginx's buffer when the run is over.
    let now = std::fs::read_to_string(&probe_log).unwrap_or_default();
    assert!(!now.contains(&markers[0]), "already written: {now}");
    let t0 = std::time::Instant::now();
    let lookup = log.find(start, &markers).unwrap();
    let waited = t0.elapsed();
    let line = lookup
        .lines
        .get(&markers[0])
        .expect("the baseline's line, once flushed");
    assert_eq!(line.status, 200);
    assert!(
        waited < Duration::from_secs(3),
        "stopped once found: {waited:?}"
    );
}

/// nginx's stock `combined` format has no field for the marker header but logs the request
/// line: `--access-log` puts the marker in the query string instead, says so, and finds each
/// probe's line by it. Neighbour: a format that logs neither the header nor the request line
/// attaches nothing and names the variable to add, even with `--marker-in query`.
#[tokio::test]
async fn a_combined_log_finds_each_probe_by_the_query_string_marker() {
    let dir = tempfile::tempdir().unwrap();
    let combined_log = dir.path().join("combined.log");
    let bare_log = dir.path().join("bare.log");
    const BARE: &str = "$remote_addr [$time_local] $status $request_time";
    let backend = LabBackend::start(BackendConfig::default())
        .await
        .expect("lab backend starts");
    let nginx = start_nginx(&NginxSpec {
        http_extra: format!("log_format bare '{BARE}';"),
        ..NginxSpec::one(NginxServer::proxy(backend.url()).extra(format!(
            "{NGINX_TIMEOUTS} access_log \"{}\" combined; access_log \"{}\" bare;",
            combined_log.display(),
            bare_log.display()
        )))
    });
    let listener = format!("{}{PATH}", nginx.url(0));
    let scan = |file: String, format: &'static str, extra: &'static [&'static str]| {
        let listener = listener.clone();
        async move {
            let mut args: Vec<&str> = vec![
                "scan",
                "--listener",
                &listener,
                "--probes",
                "partial,methods",
                "--access-log",
                &file,
                "--log-format",
                format,
                "--access-log-wait",
                "1",
                "--format",
                "json",
            ];
            args.extend_from_slice(extra);
            args.extend_from_slice(support::report_json::TIGHT);
            let out = support::report_json::lbprobe_async(&args).await;
            support::report_json::json(&out)
        }
    };

    let report = scan(combined_log.display().to_string(), "combined", &[]).await;
    json_schema::assert_valid(lbprobe::report::schema::Kind::Run, &report);
    let notes = report["notes"].to_string();
    assert!(
        notes.contains("carry the marker in the query string"),
        "{notes}"
    );
    let observations = report["observations"].as_array().expect("observations");
    let listener_side = || observations.iter().filter(|o| o["role"] == "listener");
    let logged: Vec<_> = listener_side().filter(|o| !o["logged"].is_null()).collect();
    assert!(
        logged.len() >= 5,
        "{} listener observations with a line",
        logged.len()
    );
    assert!(
        notes.contains(&format!(
            "found the listener's own line for {0} of {0}",
            logged.len()
        )),
        "{notes}"
    );
    let written = std::fs::read_to_string(&combined_log).unwrap();
    for o in &logged {
        let marker = o["logged"]["marker"].as_str().unwrap();
        // The request sent carries it in its target, and nginx's line holds that target.
        let sent = o["request"]["text"].as_str().unwrap();
        assert!(
            sent.contains(&format!("?lbprobe-id={marker} HTTP/1.1")),
            "{sent}"
        );
        let line = written
            .lines()
            .find(|l| l.contains(&format!("lbprobe-id={marker} ")))
            .unwrap_or_else(|| panic!("{marker} not in {written}"));
        assert!(
            line.contains(&format!("\" {} ", o["logged"]["status"])),
            "{line} vs {}",
            o["logged"]
        );
    }
    let early = listener_side()
        .find(|o| o["variant"] == "close-early")
        .expect("the close-early observation");
    assert_eq!(early["logged"]["status"], 400, "{early}");
    // The methods the HTTP client sends carry it in their URL: nginx logged DELETE's line.
    let delete = listener_side()
        .find(|o| o["family"] == "methods" && o["variant"] == "DELETE")
        .expect("the DELETE observation");
    assert_eq!(delete["detail"]["via"], "reqwest", "{delete}");
    assert_eq!(
        delete["logged"]["status"], delete["exchange"]["response"]["status"],
        "{delete}"
    );
    // combined has no upstream fields: none is claimed.
    assert!(early["logged"]["upstream_status"].is_null(), "{early}");

    let report = scan(
        bare_log.display().to_string(),
        BARE,
        &["--marker-in", "query"],
    )
    .await;
    let observations = report["observations"].as_array().expect("observations");
    assert!(observations.iter().all(|o| o["logged"].is_null()));
    let notes = report["notes"].to_string();
    assert!(
        notes.contains("no field that holds the request's query string"),
        "{notes}"
    );
    assert!(notes.contains("add \\\"$request\\\""), "{notes}");
}
