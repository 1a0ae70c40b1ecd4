//! Snapshots of the human and JSON reports for one fixed run, and a check that docs/report.md
//! names every JSON key the report has.
//!
//! The run is synthetic (fixed observations through the real classifier, fixed start time,
//! duration and timings), so the snapshots are deterministic and need no redaction. To accept a
//! deliberate change: `INSTA_UPDATE=always cargo test --test report_snapshots`, then review the
//! diff of tests/snapshots/ (or use `cargo insta review` where cargo-insta is installed).

mod support;

#[path = "support/junit_xml.rs"]
mod junit_xml;

use std::collections::BTreeSet;

use lbprobe::catalogue::Catalogue;
use lbprobe::classify::{classify, Context, Finding, Verdict};
use lbprobe::exit;
use lbprobe::probe::floor::{Floor, LongestWait};
use lbprobe::probe::{Family, Limits};
use lbprobe::profile::Profile;
use lbprobe::report::model::{Timing, SCHEMA_VERSION};
use lbprobe::report::{render, ExpectationResult, Format, Report, Style, Summary};
use lbprobe::run::{check_limit_expectations, exit_status, Expect, Expected, RunEnd};
use lbprobe::target::{Role, Target};
use lbprobe::transport::ConnEnd;

use support::says::assert_says;
use support::*;

/// The story: an nginx listener on TLS forwards plain HTTP to a backend port that speaks TLS,
/// refuses TRACE itself and has a header limit below the clb profile's.
fn observations() -> Vec<lbprobe::probe::Observation> {
    let ok = app_body(200);
    let backend_tls_page = nginx_plain_to_tls_page();
    numbered(vec![
        sniff_tls(LISTENER),
        sniff_tls(BACKEND),
        obs(Family::Protocol, "baseline", LISTENER).answer(400, "Bad Request", &backend_tls_page),
        baseline(BACKEND, 200, "OK"),
        obs(Family::Protocol, "plain-http-to-tls-port", LISTENER).answer(
            400,
            "Bad Request",
            &nginx_plain_to_tls_page(),
        ),
        malformed("control", LISTENER, 400, "Bad Request", &backend_tls_page),
        malformed("control", BACKEND, 200, "OK", &ok),
        malformed(
            "lowercase-method",
            LISTENER,
            400,
            "Bad Request",
            &nginx_page(400, "Bad Request"),
        ),
        malformed("lowercase-method", BACKEND, 200, "OK", &ok),
        method(
            LISTENER,
            "TRACE",
            405,
            "Not Allowed",
            &nginx_page(405, "Not Allowed"),
        ),
        method(BACKEND, "TRACE", 200, "OK", &ok),
        obs(Family::Methods, "CONNECT", LISTENER).ended(ConnEnd::Reset),
        obs(Family::Methods, "CONNECT", BACKEND).ended(ConnEnd::Io(
            "connection closed before message completed".into(),
        )),
        nginx_refused_header(LISTENER, 8191),
        limit(LISTENER, Some(8190), Some(8191), Some(400)),
    ])
}

fn targets() -> Vec<Target> {
    let mut listener = Target::parse(Role::Listener, "https://127.0.0.1:8443/").expect("url");
    listener.tls_verify = false;
    listener.sni = Some("lb.example.test".into());
    let mut backend = Target::parse(Role::Backend, "http://127.0.0.1:9090/").expect("url");
    backend.headers = vec![("X-Env".into(), "test".into())];
    vec![listener, backend]
}

fn expectation(
    cause: &str,
    expected: Verdict,
    findings: &[Finding],
    line: u32,
) -> ExpectationResult {
    let actual = findings
        .iter()
        .find(|f| f.cause == cause)
        .map(|f| f.verdict);
    ExpectationResult {
        cause: cause.into(),
        expected,
        actual,
        met: actual == Some(expected),
        location: format!("scenarios/snapshot.yaml:{line}:3"),
    }
}

/// The report `run::execute` would build for these observations, with fixed clock values.
fn fixed_report() -> Report {
    let profile = Profile::clb();
    let observations = observations();
    let catalogue = Catalogue::builtin();
    let findings = classify(
        &observations,
        catalogue,
        &Context {
            profile: &profile,
            listener_tls: Some(true),
            has_backend: true,
        },
    );
    let expectations = vec![
        expectation("405.trace-unsupported", Verdict::Reproduced, &findings, 14),
        expectation(
            "400.backend-expects-https",
            Verdict::RuledOut,
            &findings,
            15,
        ),
    ];
    // The listener's header lines: 8190 bytes pass, 8191 are refused.
    let limit_expectations = check_limit_expectations(
        &[
            Expect {
                cause: "header-size".into(),
                expected: Expected::Limit {
                    family: Family::HeaderSize,
                    at_least: Some(4096),
                    at_most: Some(16384),
                },
                location: "scenarios/snapshot.yaml:16:3".into(),
            },
            Expect {
                cause: "header-size".into(),
                expected: Expected::Limit {
                    family: Family::HeaderSize,
                    at_least: Some(16384),
                    at_most: None,
                },
                location: "scenarios/snapshot.yaml:17:3".into(),
            },
        ],
        &observations,
        Role::Listener,
    );
    let mut summary = Summary::of(&findings, &expectations);
    summary.expectations_unmet += limit_expectations.iter().filter(|e| !e.met).count();
    let covered: BTreeSet<&str> = findings.iter().map(|f| f.cause.as_str()).collect();
    let not_covered = catalogue
        .causes()
        .iter()
        .filter(|c| !covered.contains(c.id.as_str()))
        .map(|c| c.id.clone())
        .collect();
    let (exit_code, exit_reason) =
        exit_status(&findings, &expectations, &summary, &RunEnd::default());
    Report {
        schema_version: SCHEMA_VERSION,
        tool: "lbprobe (snapshot)".into(),
        scenario: "snapshot".into(),
        origin: "scenarios/snapshot.yaml".into(),
        started_unix_ms: 1_767_225_600_000,
        hostname: "ci-runner-7".into(),
        duration_ms: 4100.0,
        profile,
        targets: targets(),
        limits: Limits::default(),
        requests_sent: 57,
        partial: false,
        // 57 requests at 50/s are 1.14 s; a 3 s wait the backend sat on sets the floor.
        timing: Timing::new(
            4.1,
            &Floor {
                rate_seconds: 1.14,
                longest_wait: Some(LongestWait {
                    family: Family::Malformed,
                    variant: "cl-larger-than-body".into(),
                    role: Role::Backend,
                    seconds: 3.0,
                    bound_seconds: 3.0,
                    declared: true,
                }),
            },
        ),
        notes: vec![
            "the backend port 127.0.0.1:9090 speaks TLS though its URL says http; direct probes use TLS"
                .into(),
        ],
        summary,
        findings,
        expectations,
        limit_expectations,
        not_covered,
        unreachable: Vec::new(),
        malformed: lbprobe::classify::malformed_table::table(&observations),
        observations,
        exit_code,
        cut_short: None,
        exit_reason,
    }
}

#[test]
fn the_fixed_run_tells_its_story() {
    // The snapshots are only worth reviewing if the run says what it is built to say.
    let r = fixed_report();
    let verdict = |id: &str| r.findings.iter().find(|f| f.cause == id).map(|f| f.verdict);
    assert_eq!(
        verdict("400.backend-expects-https"),
        Some(Verdict::Confirmed)
    );
    assert_eq!(verdict("400.header-too-large"), Some(Verdict::Confirmed));
    assert_eq!(verdict("405.trace-unsupported"), Some(Verdict::Reproduced));
    assert_eq!(
        verdict("400.malformed-request"),
        Some(Verdict::Inconclusive)
    );
    assert_eq!(verdict("502.backend-unreachable"), Some(Verdict::RuledOut));
    assert_eq!(r.summary.expectations_unmet, 2);
    let limits: Vec<bool> = r.limit_expectations.iter().map(|e| e.met).collect();
    assert_eq!(limits, [true, false], "{:#?}", r.limit_expectations);
    assert_eq!(r.exit_code, exit::FINDING);
}

#[test]
fn human_report() {
    let text = render(&fixed_report(), Format::Human, Style::plain());
    assert!(!text.contains('\x1b'), "color off means no escape codes");
    insta::assert_snapshot!("human", text);
}

#[test]
fn human_report_in_color_only_adds_escapes() {
    let plain = render(&fixed_report(), Format::Human, Style::plain());
    let color = render(
        &fixed_report(),
        Format::Human,
        Style {
            color: true,
            ..Style::plain()
        },
    );
    let alarm = lbprobe::report::style::look::ALARM.render().to_string();
    assert!(color.contains(&format!("{alarm}confirmed")), "{color:?}");
    // Colour never moves a line break: widths are counted without the escapes.
    assert_eq!(strip_ansi(&color), plain);
}

/// With `-v` every row is in the table, what is wrong still first, and nothing is folded.
#[test]
fn human_report_verbose() {
    let text = render(
        &fixed_report(),
        Format::Human,
        Style {
            verbose: true,
            ..Style::plain()
        },
    );
    insta::assert_snapshot!("human_verbose", text);
}

/// The table leads with what is wrong: confirmed faults, then reproduced triggers, then (folded
/// unless `-v`) the rest; the last line names the confirmed causes.
#[test]
fn human_report_leads_with_what_is_wrong() {
    let report = fixed_report();
    for verbose in [false, true] {
        let text = render(
            &report,
            Format::Human,
            Style {
                verbose,
                ..Style::plain()
            },
        );
        let verdicts: Vec<&str> = text
            .lines()
            .skip_while(|l| !l.starts_with("CAUSE"))
            .skip(1)
            .take_while(|l| !l.is_empty())
            .filter_map(|l| l.split_whitespace().nth(1))
            .filter(|w| Verdict::parse(w).is_some())
            .collect();
        let rank = |v: &str| {
            ["confirmed", "reproduced", "inconclusive", "ruled_out"]
                .iter()
                .position(|x| *x == v)
        };
        assert!(
            verdicts.windows(2).all(|w| rank(w[0]) <= rank(w[1])),
            "{verdicts:?}\n{text}"
        );
        assert_eq!(verdicts[0], "confirmed", "{text}");
        if verbose {
            assert!(verdicts.contains(&"ruled_out"), "{text}");
        } else {
            assert!(!verdicts.contains(&"ruled_out"), "{text}");
            let folded = text
                .lines()
                .find(|l| l.contains(" ruled_out: "))
                .unwrap_or_else(|| panic!("no folded ruled_out line:\n{text}"));
            let ruled_out = format!("{} ruled_out: ", report.summary.ruled_out);
            assert!(folded.starts_with(&ruled_out), "{folded}");
        }
        let last = text.lines().last().unwrap_or_default();
        assert!(
            last.contains("400.backend-expects-https") && last.contains("400.header-too-large"),
            "the last line names the confirmed causes: {last}"
        );
    }
}

/// Every line fits the width unless one word alone is longer; a narrower width wraps the WHY
/// column under itself.
#[test]
fn human_report_is_wrapped_to_the_width() {
    for width in [60, 100, 160] {
        let text = render(
            &fixed_report(),
            Format::Human,
            Style {
                width,
                ..Style::plain()
            },
        );
        for line in text.lines() {
            let longest_word = line
                .split(' ')
                .map(|w| w.chars().count())
                .max()
                .unwrap_or(0);
            assert!(
                line.chars().count() <= width || longest_word > 30,
                "{width} columns: {line:?}"
            );
        }
    }
    let narrow = render(
        &fixed_report(),
        Format::Human,
        Style {
            width: 60,
            ..Style::plain()
        },
    );
    let row = narrow
        .lines()
        .position(|l| l.starts_with("400.header-too-large "))
        .expect("row");
    let lines: Vec<&str> = narrow.lines().collect();
    assert!(
        lines[row + 1].starts_with("    the listener refuses header lines"),
        "too narrow for a WHY column, the reason goes under its row:\n{narrow}"
    );
    let wide = render(&fixed_report(), Format::Human, Style::plain());
    let row = wide
        .lines()
        .find(|l| l.starts_with("400.header-too-large "))
        .expect("row");
    let column = row.find("the listener refuses").expect("why in its column");
    let next = wide
        .lines()
        .skip_while(|l| !l.starts_with("400.header-too-large "))
        .nth(1)
        .expect("the reason's second line");
    assert!(
        next[..column].trim().is_empty() && !next[column..].starts_with(' '),
        "the reason goes on under its column:\n{wide}"
    );
}

fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            // `ESC [ params m`: skip through the final `m`.
            for d in chars.by_ref() {
                if d == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[test]
fn json_report() {
    let text = render(&fixed_report(), Format::Json, Style::plain());
    let value: serde_json::Value = serde_json::from_str(&text).expect("the JSON report parses");
    assert_eq!(value["schema_version"], SCHEMA_VERSION);
    insta::assert_snapshot!("json", text);
}

#[test]
fn json_report_reads_back_whole_for_merge() {
    // `lbprobe merge` classifies a client run again from its JSON report: the observations
    // must come back exactly as they were recorded.
    let report = fixed_report();
    let text = render(&report, Format::Json, Style::plain());
    let run: lbprobe::host::merge::ClientRun =
        serde_json::from_str(&text).expect("the JSON report reads back as a client run");
    assert_eq!(run.observations, report.observations);
    // The whole profile comes back, declared numbers and how it was chosen included.
    match run.profile {
        lbprobe::host::merge::RunProfile::Whole(p) => assert_eq!(*p, report.profile),
        other => panic!("the profile read back by name only: {other:?}"),
    }
    assert_eq!(run.findings.len(), report.findings.len());
}

/// Every object key anywhere in `value`, with the path of its first appearance.
fn keys(value: &serde_json::Value, path: &str, out: &mut Vec<(String, String)>) {
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                let here = format!("{path}.{k}");
                if !out.iter().any(|(key, _)| key == k) {
                    out.push((k.clone(), here.clone()));
                }
                keys(v, &here, out);
            }
        }
        serde_json::Value::Array(items) => {
            for v in items {
                keys(v, &format!("{path}[]"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn docs_report_md_names_every_json_key() {
    let docs = include_str!("../docs/report.md");
    let text = render(&fixed_report(), Format::Json, Style::plain());
    let value: serde_json::Value = serde_json::from_str(&text).expect("the JSON report parses");
    let top: Vec<&String> = value.as_object().expect("an object").keys().collect();
    assert!(
        top.len() >= 20,
        "the report has its top-level fields: {top:?}"
    );
    let mut all = Vec::new();
    keys(&value, "$", &mut all);
    let missing: Vec<String> = all
        .iter()
        .filter(|(k, _)| !docs.contains(&format!("`{k}`")))
        .map(|(k, path)| format!("{k} (at {path})"))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/report.md does not name these JSON keys (write them as `key`): {missing:?}"
    );
}

#[test]
fn junit_report() {
    let text = render(&fixed_report(), Format::Junit, Style::plain());
    let suite = junit_xml::parse(&text);
    // A confirmed fault fails, with its evidence and fix.
    let header = suite.case("400.header-too-large");
    assert_eq!(header.classname, "400");
    assert_eq!(header.outcome.as_deref(), Some("failure"));
    assert!(header.text.contains("8190 bytes pass"), "{header:#?}");
    assert!(header.text.contains("fix:"), "{header:#?}");
    // A body prefix holding markup comes back intact through the escaping.
    let https = suite.case("400.backend-expects-https");
    assert!(https.text.contains("\"<html>\\r\\n<head>"), "{https:#?}");
    // Reproduced and ruled out pass; inconclusive is skipped, with its reason.
    assert_eq!(suite.case("405.trace-unsupported").outcome, None);
    assert_eq!(suite.case("502.backend-unreachable").outcome, None);
    let malformed = suite.case("400.malformed-request");
    assert_eq!(malformed.outcome.as_deref(), Some("skipped"));
    assert!(malformed
        .message
        .as_deref()
        .is_some_and(|m| m.contains("control request")));
    // One testcase per expectation; the unmet ones fail and say why.
    assert_eq!(
        suite.case("405.trace-unsupported: reproduced").outcome,
        None
    );
    let unmet = suite.case("400.backend-expects-https: ruled_out");
    assert_eq!(unmet.outcome.as_deref(), Some("failure"));
    assert!(unmet
        .message
        .as_deref()
        .is_some_and(|m| m.contains("expected ruled_out, got confirmed")));
    assert_eq!(
        suite
            .case("header-size: at-least 4096, at-most 16384")
            .outcome,
        None
    );
    let limit = suite.case("header-size: at-least 16384");
    assert_eq!(limit.outcome.as_deref(), Some("failure"));
    assert!(
        limit
            .message
            .as_deref()
            .is_some_and(|m| m.contains("accepts 8190 bytes and refuses 8191")
                && m.contains("below at-least 16384")),
        "{limit:#?}"
    );
    assert!(suite.properties.contains(&(
        "listener".into(),
        "https://127.0.0.1:8443/ (TLS not verified, SNI lb.example.test)".into()
    )));
    insta::assert_snapshot!("junit", text);
}

#[test]
fn junit_report_marks_an_unreachable_target_as_an_error() {
    let mut report = fixed_report();
    report.unreachable = vec!["backend http://127.0.0.1:9090/: connection refused".into()];
    // Hostile text anywhere (a note quoting a server) stays well-formed.
    report
        .notes
        .push("server said <x a=\"1\">&amp;\u{0}\u{1b}]]>".into());
    let suite = junit_xml::parse(&render(&report, Format::Junit, Style::plain()));
    let error = suite.case("backend http://127.0.0.1:9090/");
    assert_eq!(error.classname, "reachability");
    assert_eq!(error.outcome.as_deref(), Some("error"));
    assert!(error
        .message
        .as_deref()
        .is_some_and(|m| m.contains("connection refused")));
    assert_eq!(suite.totals[2], 1, "one error");
}

#[test]
fn markdown_report() {
    let text = render(&fixed_report(), Format::Markdown, Style::plain());
    assert!(
        text.starts_with("## ❌ lbprobe · scenario `snapshot` · exit 1"),
        "{text}"
    );
    assert_says(
        &text,
        &[
            "| `400.header-too-large` | **confirmed** | listener |",
            "#### `400.header-too-large` · **confirmed**",
            "`https://127.0.0.1:8443/` (TLS not verified, SNI lb.example.test)",
        ],
    );
    // Ruled-out causes are in the table, not in the details.
    assert!(
        text.contains("| `502.backend-unreachable` | ruled\\_out |"),
        "{text}"
    );
    assert!(!text.contains("#### `502.backend-unreachable`"), "{text}");
    insta::assert_snapshot!("markdown", text);
}

/// The run as Prometheus metrics (`lbprobe serve`'s `/probe`, `--format prometheus`): each
/// finding with its verdict, and the limit measured (never the profile's documented one).
#[test]
fn prometheus_report() {
    let text = render(&fixed_report(), Format::Prometheus, Style::plain());
    assert!(
        text.contains(
            r#"lbprobe_finding{cause="400.header-too-large",verdict="confirmed",side="listener"} 1.0"#
        ),
        "{text}"
    );
    assert!(
        text.contains(r#"lbprobe_limit_bytes{kind="header-size",side="listener"} 8190.0"#),
        "{text}"
    );
    assert!(text.contains("lbprobe_probe_success 0.0"), "{text}");
    insta::assert_snapshot!("prometheus", text);
}
