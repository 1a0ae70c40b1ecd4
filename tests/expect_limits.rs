//! Limit expectations (`expect: { uri-limit: { at-least: 16384 } }`): how they load, where
//! their mistakes are reported, and how a measured limit meets them or says why not.

mod support;

use lbprobe::probe::{Detail, Family, LimitSearch};
use lbprobe::run::{check_limit_expectations, Expect, Expected};
use lbprobe::scenario::{load_str, LimitExpectation, LoadContext, Problem, ScenarioError};
use lbprobe::target::Role;

use support::says::assert_says;
use support::*;

fn known_cause(id: &str) -> bool {
    id == "405.trace-unsupported"
}

fn no_vars(_: &str) -> Option<String> {
    None
}

fn ctx() -> LoadContext<'static> {
    LoadContext {
        vars: &no_vars,
        known_cause: &known_cause,
        known_variant: &|_| true,
    }
}

const TARGETS: &str = "targets: { listener: { url: http://127.0.0.1:8080/ } }\n";

fn error_of(text: &str) -> ScenarioError {
    match load_str(&format!("{TARGETS}{text}"), "t.yaml", &ctx()) {
        Ok(s) => panic!("expected an error, loaded {s:#?}"),
        Err(e) => e,
    }
}

#[test]
fn limits_and_verdicts_load_side_by_side() {
    let text = format!(
        "{TARGETS}expect:\n  uri-limit: {{ at-least: 16384 }}\n  header-size: {{ at-least: 8k, at-most: 64k }}\n  405.trace-unsupported: reproduced\n  header-limit:\n    at-most: 1m\n"
    );
    let s = load_str(&text, "t.yaml", &ctx()).expect("loads");
    assert_eq!(s.expect.len(), 1);
    assert_eq!(s.expect[0].cause, "405.trace-unsupported");
    assert_eq!(
        s.expect_limits,
        vec![
            LimitExpectation {
                family: Family::UriLimit,
                at_least: Some(16384),
                at_most: None,
                line: 3,
                column: 3,
            },
            LimitExpectation {
                family: Family::HeaderSize,
                at_least: Some(8192),
                at_most: Some(65536),
                line: 4,
                column: 3,
            },
            LimitExpectation {
                family: Family::HeaderLimit,
                at_least: None,
                at_most: Some(1_048_576),
                line: 6,
                column: 3,
            },
        ]
    );
}

#[test]
fn a_limit_with_a_verdict_is_an_error_at_the_value() {
    let e = error_of("expect:\n  uri-limit: reproduced\n");
    assert_eq!(e.position(), Some((3, 14)), "{e}");
    assert_eq!(
        e.problem(),
        Some(&Problem::LimitNeedsBounds {
            family: "uri-limit".into()
        })
    );
    assert!(e.to_string().contains("{ at-least: SIZE }"), "{e}");
}

#[test]
fn a_limit_without_bounds_is_an_error() {
    let e = error_of("expect:\n  header-size: {}\n");
    assert!(
        matches!(e.problem(), Some(Problem::LimitNeedsBounds { .. })),
        "{e}"
    );
}

#[test]
fn crossed_bounds_are_an_error() {
    let e = error_of("expect:\n  header-size: { at-least: 64k, at-most: 8k }\n");
    assert_eq!(
        e.problem(),
        Some(&Problem::BoundsCrossed {
            at_least: 65536,
            at_most: 8192
        }),
        "{e}"
    );
}

#[test]
fn a_bad_size_points_at_the_size() {
    let e = error_of("expect:\n  uri-limit: { at-least: 16KB }\n");
    assert_eq!(e.position(), Some((3, 26)), "{e}");
    assert!(matches!(e.problem(), Some(Problem::BadSize { .. })), "{e}");
}

#[test]
fn an_unknown_bound_key_is_named() {
    let e = error_of("expect:\n  uri-limit: { atleast: 1 }\n");
    assert!(
        e.to_string()
            .contains("unknown key \"atleast\" (expected one of: at-least, at-most)"),
        "{e}"
    );
}

#[test]
fn a_cause_with_bounds_asks_for_a_verdict() {
    let e = error_of("expect:\n  405.trace-unsupported: { at-least: 1 }\n");
    assert_eq!(
        e.problem(),
        Some(&Problem::VerdictExpected {
            id: "405.trace-unsupported".into()
        }),
        "{e}"
    );
}

#[test]
fn a_limit_expected_twice_is_an_error() {
    let e = error_of("expect:\n  uri-limit: { at-least: 1 }\n  uri-limit: { at-most: 9 }\n");
    assert!(
        e.to_string().contains("is given twice") || e.to_string().contains("expected twice"),
        "{e}"
    );
}

fn expect(family: Family, at_least: Option<usize>, at_most: Option<usize>) -> Vec<Expect> {
    vec![Expect {
        cause: family.to_string(),
        expected: Expected::Limit {
            family,
            at_least,
            at_most,
        },
        location: "t.yaml:3:3".into(),
    }]
}

fn judge(
    family: Family,
    at_least: Option<usize>,
    at_most: Option<usize>,
    observations: &[lbprobe::probe::Observation],
) -> (bool, String) {
    let r = check_limit_expectations(
        &expect(family, at_least, at_most),
        observations,
        Role::Listener,
    );
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].location, "t.yaml:3:3");
    (r[0].met, r[0].why.clone())
}

#[test]
fn a_measured_limit_meets_or_misses_its_bounds() {
    // nginx's default URI limit: 8177 bytes pass, 8178 are refused with 414.
    let obs = numbered(vec![
        uri_limit(LISTENER, Some(8177), Some(8178), Some(414)),
        uri_limit(BACKEND, Some(65000), Some(65001), Some(414)),
    ]);
    let table: [(Option<usize>, Option<usize>, bool, &str); 6] = [
        (
            Some(8000),
            None,
            true,
            "accepts 8177 bytes and refuses 8178",
        ),
        (Some(8177), Some(8177), true, "accepts 8177"),
        (Some(16384), None, false, "below at-least 16384"),
        (None, Some(4096), false, "above at-most 4096"),
        (None, Some(8192), true, "refuses 8178"),
        (Some(16384), Some(4096 * 8), false, "below at-least 16384"),
    ];
    for (at_least, at_most, met, says) in table {
        let (got, why) = judge(Family::UriLimit, at_least, at_most, &obs);
        assert_eq!(got, met, "{at_least:?}..{at_most:?}: {why}");
        assert!(why.contains(says), "{at_least:?}..{at_most:?}: {why}");
        // The listener's limit is compared, never the backend's.
        assert!(!why.contains("65000"), "{why}");
    }
}

#[test]
fn an_unmeasured_limit_is_unmet_and_says_why() {
    let obs = numbered(vec![limit(LISTENER, Some(8190), Some(8191), Some(400))]);
    let (met, why) = judge(Family::UriLimit, Some(1), None, &obs);
    assert!(!met);
    assert_says(
        &why,
        &[
            "was not measured",
            "`uri-limit` among the scenario's probes",
        ],
    );
}

#[test]
fn a_search_that_refused_nothing_cannot_show_an_upper_bound_or_a_higher_floor() {
    let obs = numbered(vec![uri_limit(LISTENER, Some(131_072), None, None)]);
    let (met, why) = judge(Family::UriLimit, None, Some(65536), &obs);
    assert!(!met);
    assert!(
        why.contains("nothing up to the search's largest size was refused"),
        "{why}"
    );
    let (met, why) = judge(Family::UriLimit, Some(1 << 20), None, &obs);
    assert!(!met);
    assert!(why.contains("raise the probe's `max`"), "{why}");
    let (met, _) = judge(Family::UriLimit, Some(65536), None, &obs);
    assert!(met);
}

#[test]
fn a_side_that_refuses_everything_measured_no_limit() {
    let obs = numbered(vec![obs(Family::HeaderLimit, "limit", LISTENER).detail(
        Detail::Limit(LimitSearch {
            largest_accepted: None,
            smallest_rejected: Some(1024),
            rejected_status: Some(400),
            requests: 1,
            exact: false,
            refuses_everything: true,
        }),
    )]);
    let (met, why) = judge(Family::HeaderLimit, None, Some(1 << 20), &obs);
    assert!(!met);
    assert!(why.contains("refused even the smallest"), "{why}");
}
