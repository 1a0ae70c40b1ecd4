//! The Markdown report, for a pull-request comment or an issue: a summary line, the confirmed
//! faults and reproduced triggers, the rest folded in a `<details>` block, then the evidence and
//! fixes of every confirmed or reproduced cause.

use std::fmt::Write;

use crate::classify::{Finding, Verdict};

use super::fold;
use super::model::Report;

/// `verbose` (`-v`) keeps long lists whole instead of counting them.
pub fn render(report: &Report, verbose: bool) -> String {
    let mut out = String::new();
    let _ = write_report(&mut out, report, verbose);
    out
}

fn write_report(out: &mut String, r: &Report, verbose: bool) -> std::fmt::Result {
    let mark = if r.exit_code == crate::exit::OK {
        "✅"
    } else {
        "❌"
    };
    writeln!(
        out,
        "## {mark} lbprobe · scenario `{}` · exit {}: {}",
        code(&r.scenario),
        r.exit_code,
        md(&r.exit_reason)
    )?;
    writeln!(out)?;
    let s = &r.summary;
    let unmet = s.expectations_unmet;
    let expectations = r.expectations.len() + r.limit_expectations.len();
    let mut summary = format!(
        "**{} confirmed** · {} reproduced · {} ruled out · {} inconclusive",
        s.confirmed, s.reproduced, s.ruled_out, s.inconclusive
    );
    if expectations > 0 {
        let _ = write!(
            summary,
            " · expectations: {} met, **{unmet} unmet**",
            expectations.saturating_sub(unmet)
        );
    }
    let _ = write!(
        summary,
        " · profile `{}` · {} in {:.1} s",
        code(&r.profile.label()),
        crate::plural::count(r.requests_sent, "request"),
        r.duration_ms / 1000.0
    );
    writeln!(out, "{summary}")?;
    writeln!(out)?;
    if r.partial {
        writeln!(
            out,
            "> **Partial run**: probes stopped before they finished; this report covers what ran (see the notes)."
        )?;
        writeln!(out)?;
    }
    for t in &r.targets {
        let tls = t.connection_note();
        writeln!(out, "- {}: `{}`{tls}", t.role, code(&t.url()))?;
    }
    if !r.targets.is_empty() {
        writeln!(out)?;
    }

    // What is wrong first; what was ruled out or left open folded below it.
    let by = |v: Verdict| r.findings.iter().filter(move |f| f.verdict == v);
    let detailed: Vec<&Finding> = by(Verdict::Confirmed)
        .chain(by(Verdict::Reproduced))
        .collect();
    let rest: Vec<&Finding> = by(Verdict::Inconclusive)
        .chain(by(Verdict::RuledOut))
        .collect();
    if r.findings.is_empty() {
        writeln!(out, "No finding: the probes that ran speak to no cause.")?;
    } else if detailed.is_empty() {
        writeln!(out, "Nothing confirmed or reproduced.")?;
    } else {
        write_table(out, &detailed, verbose)?;
    }
    if !rest.is_empty() {
        let counts: Vec<String> = [Verdict::Inconclusive, Verdict::RuledOut]
            .into_iter()
            .map(|v| (v, rest.iter().filter(|f| f.verdict == v).count()))
            .filter(|(_, n)| *n > 0)
            .map(|(v, n)| format!("{n} {}", v.as_str().replace('_', " ")))
            .collect();
        writeln!(out)?;
        writeln!(out, "<details><summary>{}</summary>", counts.join(", "))?;
        writeln!(out)?;
        write_table(out, &rest, verbose)?;
        writeln!(out)?;
        writeln!(out, "</details>")?;
    }

    if !detailed.is_empty() {
        writeln!(out)?;
        writeln!(out, "### Details")?;
        for f in detailed {
            write_detail(out, f, verbose)?;
        }
    }

    if expectations > 0 {
        writeln!(out)?;
        writeln!(out, "### Expectations")?;
        writeln!(out)?;
        writeln!(out, "| | expectation | result | where |")?;
        writeln!(out, "|---|---|---|---|")?;
        for e in &r.expectations {
            let actual = e.actual.map_or("no finding".to_string(), |v| v.to_string());
            writeln!(
                out,
                "| {} | `{}`: {} | got {} | `{}` |",
                if e.met { "✅" } else { "❌" },
                code(&e.cause),
                e.expected,
                cell(&actual),
                code(&e.location)
            )?;
        }
        for e in &r.limit_expectations {
            writeln!(
                out,
                "| {} | `{}` {} {} | {} | `{}` |",
                if e.met { "✅" } else { "❌" },
                e.limit,
                e.role,
                cell(&e.bounds()),
                cell(&e.why),
                code(&e.location)
            )?;
        }
    }

    if !r.notes.is_empty() {
        writeln!(out)?;
        writeln!(out, "### Notes")?;
        writeln!(out)?;
        for n in &r.notes {
            writeln!(out, "- {}", md(n))?;
        }
    }
    if !r.unreachable.is_empty() {
        writeln!(out)?;
        writeln!(out, "### Unreachable")?;
        writeln!(out)?;
        for u in &r.unreachable {
            writeln!(out, "- {}", md(u))?;
        }
    }
    writeln!(out)?;
    writeln!(
        out,
        "<sub>{} · {} not covered by this run's probes (`lbprobe explain ID` tells one cause).</sub>",
        md(&r.tool),
        crate::plural::count(r.not_covered.len(), "cause")
    )?;
    Ok(())
}

fn write_table(out: &mut String, rows: &[&Finding], verbose: bool) -> std::fmt::Result {
    writeln!(out, "| cause | verdict | side | why |")?;
    writeln!(out, "|---|---|---|---|")?;
    for f in rows {
        writeln!(
            out,
            "| `{}` | {} | {} | {} |",
            code(&f.cause),
            verdict(f.verdict),
            f.side,
            cell(&fold::reason(&f.reason, verbose))
        )?;
    }
    Ok(())
}

fn write_detail(out: &mut String, f: &Finding, verbose: bool) -> std::fmt::Result {
    writeln!(out)?;
    writeln!(
        out,
        "#### `{}` · {} · {}",
        code(&f.cause),
        verdict(f.verdict),
        catalogue_text(&f.title)
    )?;
    writeln!(out)?;
    writeln!(out, "{}", md(&fold::reason(&f.reason, verbose)))?;
    if !f.evidence.is_empty() {
        writeln!(out)?;
        writeln!(out, "**Evidence** (rests on: {})", f.rests_on_text())?;
        writeln!(out)?;
        let shown = fold::evidence_shown(f, verbose);
        for e in shown {
            let refs = if e.observations.is_empty() {
                String::new()
            } else {
                format!(" `[{}]`", e.observations.join(" "))
            };
            let basis = e.basis_prefix();
            let basis = if basis.is_empty() {
                basis
            } else {
                format!("_{}_ ", basis.trim_end())
            };
            writeln!(out, "- {basis}{}{refs}", md(&e.text))?;
        }
        if shown.len() < f.evidence.len() {
            writeln!(
                out,
                "- … {} more like these (`-v` shows them; `--format json` lists them with their observations)",
                f.evidence.len() - shown.len()
            )?;
        }
    }
    if !f.remediation.is_empty() {
        writeln!(out)?;
        writeln!(out, "**Fix**")?;
        writeln!(out)?;
        for m in &f.remediation {
            writeln!(out, "- {}", catalogue_text(m))?;
        }
    }
    Ok(())
}

fn verdict(v: Verdict) -> String {
    match v {
        Verdict::Confirmed => "**confirmed**".into(),
        v => v.to_string().replace('_', "\\_"),
    }
}

/// Text shown as written: Markdown's punctuation escaped, so that a body prefix such as
/// `<html>` or a `*` in a header value neither formats nor vanishes, and on one line.
fn md(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '~' | '#' | '!' => {
                out.push('\\');
                out.push(c);
            }
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// Text of the embedded causes catalogue, written with Markdown in mind (`code` spans):
/// kept as is, on one line.
fn catalogue_text(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
}

/// A table cell: one line, no bare `|`.
fn cell(s: &str) -> String {
    md(s)
}

/// Text inside a code span: it cannot hold a backtick or a line break.
fn code(s: &str) -> String {
    s.replace('`', "'").replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_what_markdown_would_format() {
        assert_eq!(
            md("<html> a|b *x* \\r\\n\nnext"),
            "\\<html\\> a\\|b \\*x\\* \\\\r\\\\n next"
        );
        assert_eq!(code("a`b\nc"), "a'b c");
    }
}
