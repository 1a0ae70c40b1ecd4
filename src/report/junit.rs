//! The JUnit XML report, for CI systems: one testcase per cause the run spoke to, one per
//! expectation, one per target that could not be reached.
//!
//! A confirmed fault or an unmet expectation is a `<failure>` (the setup is wrong); a target
//! that could not be reached is an `<error>` (the check could not run); an inconclusive
//! finding is `<skipped>` (nothing was decided). Ruled-out and reproduced causes pass, with
//! their evidence as `<system-out>` so that CI pages still show what was seen.

use std::fmt::Write;

use crate::classify::{Finding, Verdict};

use super::model::{ExpectationResult, LimitExpectationResult, Report};

/// One `<testcase>` before it is written.
struct Case {
    classname: String,
    name: String,
    /// Seconds the requests behind it took (the exchanges its evidence rests on).
    seconds: f64,
    outcome: Outcome,
    /// The body of a `<failure>`, or else `<system-out>`.
    out: String,
}

enum Outcome {
    Pass,
    Failure { message: String, kind: String },
    Error { message: String },
    Skipped { message: String },
}

pub fn render(report: &Report) -> String {
    let cases = cases(report);
    let count = |f: fn(&Outcome) -> bool| cases.iter().filter(|c| f(&c.outcome)).count();
    let failures = count(|o| matches!(o, Outcome::Failure { .. }));
    let errors = count(|o| matches!(o, Outcome::Error { .. }));
    let skipped = count(|o| matches!(o, Outcome::Skipped { .. }));
    let seconds = format!("{:.3}", report.duration_ms / 1000.0);
    let totals = format!(
        "tests=\"{}\" failures=\"{failures}\" errors=\"{errors}\"",
        cases.len()
    );

    let mut out = String::new();
    out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    // `<testsuites>` has no `skipped` in the schema Jenkins' xunit plugin validates with
    // (tests/junit.xsd); the suite below carries it.
    let _ = writeln!(
        out,
        "<testsuites name=\"lbprobe\" {totals} time=\"{seconds}\">"
    );
    let _ = writeln!(
        out,
        "  <testsuite name=\"{}\" {totals} skipped=\"{skipped}\" time=\"{seconds}\" timestamp=\"{}\" hostname=\"{}\">",
        attr(&format!("lbprobe {}", report.scenario)),
        timestamp(report.started_unix_ms),
        attr(if report.hostname.is_empty() {
            "localhost"
        } else {
            &report.hostname
        })
    );
    out.push_str("    <properties>\n");
    for (name, value) in properties(report) {
        let _ = writeln!(
            out,
            "      <property name=\"{}\" value=\"{}\"/>",
            attr(&name),
            attr(&value)
        );
    }
    out.push_str("    </properties>\n");
    for case in &cases {
        write_case(&mut out, case);
    }
    let suite_out = suite_out(report);
    if !suite_out.is_empty() {
        let _ = writeln!(out, "    <system-out>{}</system-out>", text(&suite_out));
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

fn properties(r: &Report) -> Vec<(String, String)> {
    let mut p = vec![
        ("scenario".to_string(), r.scenario.clone()),
        ("origin".to_string(), r.origin.clone()),
        ("profile".to_string(), r.profile.label()),
    ];
    for t in &r.targets {
        let tls = t.connection_note();
        p.push((t.role.to_string(), format!("{}{tls}", t.url())));
    }
    p.extend([
        ("requests_sent".to_string(), r.requests_sent.to_string()),
        ("partial".to_string(), r.partial.to_string()),
    ]);
    if let Some(cap) = &r.cut_short {
        p.push(("cut_short".to_string(), cap.clone()));
    }
    p.extend([
        ("exit_code".to_string(), r.exit_code.to_string()),
        ("exit_reason".to_string(), r.exit_reason.clone()),
    ]);
    p
}

/// Run-level facts no testcase carries: notes, and that the run was cut short.
fn suite_out(r: &Report) -> String {
    let mut lines = Vec::new();
    if let Some(cap) = &r.cut_short {
        lines.push(format!(
            "CUT SHORT: {cap}; the skipped (inconclusive) causes were not decided"
        ));
    } else if r.partial {
        lines.push(
            "PARTIAL: probes stopped before they finished; the report covers what ran".to_string(),
        );
    }
    lines.extend(r.notes.iter().map(|n| format!("note: {n}")));
    lines.join("\n")
}

fn cases(r: &Report) -> Vec<Case> {
    let mut cases: Vec<Case> = r
        .findings
        .iter()
        .map(|f| finding_case(f, evidence_seconds(r, f), expected_here(r, f)))
        .collect();
    cases.extend(r.expectations.iter().map(expectation_case));
    cases.extend(r.limit_expectations.iter().map(limit_case));
    cases.extend(r.unreachable.iter().map(|u| Case {
        classname: "reachability".into(),
        name: u.split(": ").next().unwrap_or(u).to_string(),
        outcome: Outcome::Error {
            message: format!("could not be reached at all: {u}"),
        },
        out: String::new(),
        seconds: 0.0,
    }));
    cases
}

/// How long the exchanges a finding's evidence rests on took, each counted once: the real time
/// of the testcase (deciding it costs nothing measurable; probing is the work). Families that
/// run at once overlap, so the cases' times add up to more than the run's.
fn evidence_seconds(r: &Report, f: &Finding) -> f64 {
    let ids: std::collections::BTreeSet<&str> = f
        .evidence
        .iter()
        .flat_map(|e| e.observations.iter().map(String::as_str))
        .collect();
    r.observations
        .iter()
        .filter(|o| ids.contains(o.id.as_str()))
        .filter_map(|o| o.exchange.as_ref())
        // A fold from +0.0: an empty float sum is -0.0, which would print as "-0.000".
        .fold(0.0, |total, ex| total + ex.timings.total_ms / 1000.0)
}

/// Where the scenario expects `f`'s verdict, when it does and the run agrees: a confirmed fault
/// the scenario pins is an expectation met, so its testcase passes (the exit code is 0 too), and
/// Jenkins does not mark the build unstable for it.
fn expected_here<'a>(r: &'a Report, f: &Finding) -> Option<&'a str> {
    r.expectations
        .iter()
        .find(|e| e.cause == f.cause && e.met && e.expected == f.verdict)
        .map(|e| e.location.as_str())
}

fn finding_case(f: &Finding, seconds: f64, expected_at: Option<&str>) -> Case {
    let evidence: Vec<String> = f
        .evidence
        .iter()
        .map(|e| {
            if e.observations.is_empty() {
                format!("- {}{}", e.basis_prefix(), e.text)
            } else {
                format!(
                    "- {}{} [{}]",
                    e.basis_prefix(),
                    e.text,
                    e.observations.join(" ")
                )
            }
        })
        .collect();
    let mut out = format!(
        "{} · {} · side {}\n{}",
        f.cause, f.verdict, f.side, f.reason
    );
    if !evidence.is_empty() {
        let _ = write!(out, "\nevidence:\n{}", evidence.join("\n"));
    }
    let outcome = match (f.verdict, expected_at) {
        (Verdict::Confirmed, Some(at)) => {
            let _ = write!(out, "\nconfirmed as expected ({at})");
            Outcome::Pass
        }
        (Verdict::Confirmed, None) => {
            if !f.remediation.is_empty() {
                let fixes: Vec<String> = f.remediation.iter().map(|m| format!("- {m}")).collect();
                let _ = write!(out, "\nfix:\n{}", fixes.join("\n"));
            }
            Outcome::Failure {
                message: f.reason.clone(),
                kind: "confirmed".into(),
            }
        }
        (Verdict::Inconclusive, _) => Outcome::Skipped {
            message: f.reason.clone(),
        },
        (Verdict::Reproduced | Verdict::RuledOut, _) => Outcome::Pass,
    };
    Case {
        classname: f.code.to_string(),
        name: f.cause.clone(),
        outcome,
        out,
        seconds,
    }
}

fn expectation_case(e: &ExpectationResult) -> Case {
    let actual = e.actual.map_or("no finding".to_string(), |v| v.to_string());
    let says = format!("expected {}, got {actual} ({})", e.expected, e.location);
    expect_case(format!("{}: {}", e.cause, e.expected), e.met, says)
}

fn limit_case(e: &LimitExpectationResult) -> Case {
    let says = format!("{} ({})", e.why, e.location);
    expect_case(format!("{}: {}", e.limit, e.bounds()), e.met, says)
}

/// One `expect:` line as a case: it passes when met, else fails saying what was expected.
fn expect_case(name: String, met: bool, says: String) -> Case {
    Case {
        classname: "expect".into(),
        name,
        outcome: if met {
            Outcome::Pass
        } else {
            Outcome::Failure {
                message: says.clone(),
                kind: "expectation".into(),
            }
        },
        out: says,
        seconds: 0.0,
    }
}

fn write_case(out: &mut String, c: &Case) {
    let _ = write!(
        out,
        "    <testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\"",
        attr(&c.classname),
        attr(&c.name),
        c.seconds
    );
    if matches!(c.outcome, Outcome::Pass) && c.out.is_empty() {
        out.push_str("/>\n");
        return;
    }
    out.push_str(">\n");
    match &c.outcome {
        Outcome::Pass => {}
        Outcome::Failure { message, kind } => {
            let _ = writeln!(
                out,
                "      <failure message=\"{}\" type=\"{}\">{}</failure>",
                attr(message),
                attr(kind),
                text(&c.out)
            );
        }
        Outcome::Error { message } => {
            let _ = writeln!(
                out,
                "      <error message=\"{}\" type=\"unreachable\"/>",
                attr(message)
            );
        }
        Outcome::Skipped { message } => {
            let _ = writeln!(out, "      <skipped message=\"{}\"/>", attr(message));
        }
    }
    // A failure carries the text in its body already.
    if !c.out.is_empty() && !matches!(c.outcome, Outcome::Failure { .. }) {
        let _ = writeln!(out, "      <system-out>{}</system-out>", text(&c.out));
    }
    out.push_str("    </testcase>\n");
}

/// Text content: markup characters escaped, characters XML 1.0 cannot carry replaced.
fn text(s: &str) -> String {
    escape(s, false)
}

/// An attribute value in double quotes; line breaks kept as character references so that
/// parsers do not normalise them to spaces.
fn attr(s: &str) -> String {
    escape(s, true)
}

fn escape(s: &str, attribute: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' if attribute => out.push_str("&quot;"),
            '\'' if attribute => out.push_str("&apos;"),
            '\n' if attribute => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' if attribute => out.push_str("&#9;"),
            '\t' | '\n' => out.push(c),
            // XML 1.0 has no way to write these, not even as references.
            c if (c as u32) < 0x20 || matches!(c, '\u{FFFE}' | '\u{FFFF}') => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// `2026-01-01T00:00:00Z` from milliseconds since the Unix epoch (UTC, whole seconds).
fn timestamp(unix_ms: u128) -> String {
    let secs = unix_ms / 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_utc_dates() {
        assert_eq!(timestamp(0), "1970-01-01T00:00:00Z");
        assert_eq!(timestamp(1_767_225_600_000), "2026-01-01T00:00:00Z");
        assert_eq!(
            timestamp(951_782_400_000 + 3_723_000),
            "2000-02-29T01:02:03Z"
        );
    }

    #[test]
    fn escapes_markup_and_characters_xml_cannot_hold() {
        assert_eq!(attr("a<b>&\"c'\n"), "a&lt;b&gt;&amp;&quot;c&apos;&#10;");
        assert_eq!(text("x\u{0}y\u{1b}z\tw\n"), "x\\x00y\\x1bz\tw\n");
        assert_eq!(text("]]>"), "]]&gt;");
    }
}
