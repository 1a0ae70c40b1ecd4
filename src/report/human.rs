//! The terminal report: a compact table of findings, then the evidence and fix for each
//! confirmed or reproduced cause.

use std::fmt::Write;

use crate::classify::malformed_table::{MalformedTable, Strictness};
use crate::classify::{Finding, Verdict};
use crate::target::Role;

use crate::plural;

use super::fold;
use super::model::Report;
use super::style::{self, look, options, wrap, Style};

pub fn render(report: &Report, style: Style) -> String {
    let mut out = String::new();
    let _ = write_report(&mut out, report, style);
    out
}

fn write_report(out: &mut String, r: &Report, s: Style) -> std::fmt::Result {
    let header = format!(
        "{} · scenario {} · profile {} · {} in {:.1} s{}",
        s.bold("lbprobe"),
        r.scenario,
        r.profile.label(),
        plural::count(r.requests_sent, "request"),
        r.duration_ms / 1000.0,
        if r.partial { " · PARTIAL" } else { "" }
    );
    writeln!(out, "{}", wrap(&header, s.width, "", "  "))?;
    let under = " ".repeat(11);
    for t in &r.targets {
        let line = format!(
            "{:<8} {}{}",
            t.role.to_string(),
            t.url(),
            t.connection_note()
        );
        writeln!(out, "{}", wrap(&line, s.width, "  ", &under))?;
        if let Some(line) = connection_line(r, t.role) {
            writeln!(out, "{}", s.dim(&wrap(&line, s.width, &under, &under)))?;
        }
    }
    writeln!(out)?;

    write_findings(out, &r.findings, s)?;

    for f in leading(&r.findings) {
        write_detail(out, f, s)?;
    }

    let total = r.expectations.len() + r.limit_expectations.len();
    if total > 0 {
        writeln!(out)?;
        let unmet = r.expectations.iter().filter(|e| !e.met).count()
            + r.limit_expectations.iter().filter(|e| !e.met).count();
        writeln!(
            out,
            "{}",
            s.bold(&format!(
                "Expectations: {} met, {unmet} unmet",
                total - unmet
            ))
        )?;
        let mark = |met: bool| {
            if met {
                s.paint(look::GOOD, "ok  ")
            } else {
                s.paint(look::ALARM, "FAIL")
            }
        };
        for e in &r.expectations {
            let actual = e.actual.map_or("no finding".to_string(), |v| v.to_string());
            let line = format!(
                "{} {}: expected {}, got {actual}  {}",
                mark(e.met),
                e.cause,
                e.expected,
                s.dim(&e.location)
            );
            writeln!(out, "{}", wrap(&line, s.width, "  ", "       "))?;
        }
        for e in &r.limit_expectations {
            let line = format!(
                "{} {} ({}) {}: {}  {}",
                mark(e.met),
                e.limit,
                e.role,
                e.bounds(),
                e.why,
                s.dim(&e.location)
            );
            writeln!(out, "{}", wrap(&line, s.width, "  ", "       "))?;
        }
    }
    if let Some(m) = &r.malformed {
        write_malformed(out, m, s)?;
    }
    if !r.notes.is_empty() {
        writeln!(out)?;
        writeln!(out, "{}", s.bold("Notes"))?;
        for n in &r.notes {
            writeln!(out, "{}", wrap(n, s.width, "  • ", "    "))?;
        }
    }
    if !r.unreachable.is_empty() {
        writeln!(out)?;
        for u in &r.unreachable {
            let line = format!("{} {u}", s.paint(look::ALARM, "unreachable:"));
            writeln!(out, "{}", wrap(&line, s.width, "", "  "))?;
        }
    }
    writeln!(out)?;
    let not_covered = format!(
        "{} not covered by this run's probes (`lbprobe causes` lists all; `lbprobe explain ID` tells one).",
        plural::count(r.not_covered.len(), "cause")
    );
    writeln!(out, "{}", s.dim(&wrap(&not_covered, s.width, "", "")))?;
    writeln!(
        out,
        "{}",
        s.dim(&wrap(&super::timing::line(r), s.width, "", "  "))
    )?;
    // The last line is the answer: the exit code and, by name, what is wrong.
    let verdict = format!("Exit {}: {}.", r.exit_code, r.exit_reason);
    let verdict = wrap(&verdict, s.width, "", "  ");
    let look = if r.summary.confirmed > 0 || r.exit_code != crate::exit::OK {
        look::ALARM
    } else {
        look::BOLD
    };
    writeln!(out, "{}", s.paint(look, &verdict))?;
    Ok(())
}

/// Confirmed faults, then reproduced triggers: what the person came for, in that order.
fn leading(findings: &[Finding]) -> impl Iterator<Item = &Finding> {
    [Verdict::Confirmed, Verdict::Reproduced]
        .into_iter()
        .flat_map(move |v| findings.iter().filter(move |f| f.verdict == v))
}

/// The findings table: confirmed faults first, then reproduced triggers, each with its reason
/// wrapped to the width; the rest folded into one line per verdict (every row with `-v`).
fn write_findings(out: &mut String, findings: &[Finding], s: Style) -> std::fmt::Result {
    if findings.is_empty() {
        return writeln!(out, "No finding: the probes that ran speak to no cause.");
    }
    let folded = [Verdict::Inconclusive, Verdict::RuledOut];
    let rows: Vec<&Finding> = if s.verbose {
        leading(findings)
            .chain(
                folded
                    .into_iter()
                    .flat_map(|v| findings.iter().filter(move |f| f.verdict == v)),
            )
            .collect()
    } else {
        leading(findings).collect()
    };
    if rows.is_empty() {
        writeln!(out, "Nothing confirmed or reproduced.")?;
    } else {
        let cause_w = rows.iter().map(|f| f.cause.len()).max().unwrap_or(5).max(5);
        let verdict_w = rows
            .iter()
            .map(|f| f.verdict.as_str().len())
            .max()
            .unwrap_or(7)
            .max(7);
        let side_w = 8;
        let lead = cause_w + verdict_w + side_w + 6;
        // Too narrow for a WHY column worth reading: the reason goes under its row instead.
        let stacked = s.width.saturating_sub(lead) < 30;
        let (why_w, why_indent) = if stacked {
            (s.width.saturating_sub(4), 4)
        } else {
            (s.width - lead, lead)
        };
        let heading = format!(
            "{:<cause_w$}  {:<verdict_w$}  {:<side_w$}  {}",
            "CAUSE",
            "VERDICT",
            "SIDE",
            if stacked { "" } else { "WHY" }
        );
        writeln!(out, "{}", s.bold(heading.trim_end()))?;
        for f in &rows {
            let why = fold::reason(&f.reason, s.verbose);
            let lines = textwrap::wrap(&why, options(why_w, "", ""));
            let mut lines = lines.iter();
            let first = if stacked {
                ""
            } else {
                lines.next().map(|l| l.as_ref()).unwrap_or("")
            };
            let row = format!(
                "{:<cause_w$}  {}  {:<side_w$}  {first}",
                f.cause,
                s.verdict(f.verdict, verdict_w),
                f.side.to_string(),
            );
            writeln!(out, "{}", row.trim_end())?;
            for l in lines {
                writeln!(out, "{:why_indent$}{l}", "")?;
            }
        }
    }
    if !s.verbose {
        let mut any = false;
        for v in folded {
            let these: Vec<&Finding> = findings.iter().filter(|f| f.verdict == v).collect();
            if these.is_empty() {
                continue;
            }
            any = true;
            let label = format!("{} {}:", these.len(), v.as_str());
            let room = s.width.saturating_sub(label.len() + 1);
            let line = format!(
                "{} {}",
                s.paint(style::verdict_look(v), &label),
                fold::findings_line(&these, room)
            );
            writeln!(out, "{}", wrap(&line, s.width, "", "  "))?;
        }
        if any {
            writeln!(out, "{}", s.dim("(`-v` shows every row with its reason)"))?;
        }
    }
    Ok(())
}

/// The malformed-request kinds in a few lines: how strict each side is, then who refuses what.
fn write_malformed(out: &mut String, m: &MalformedTable, s: Style) -> std::fmt::Result {
    writeln!(out)?;
    writeln!(
        out,
        "{}",
        s.bold(&format!(
            "Malformed requests: {}",
            plural::count(m.rows.len(), "kind")
        ))
    )?;
    for role in [Role::Listener, Role::Backend] {
        let counts: Vec<String> = [
            Strictness::Strict,
            Strictness::Lenient,
            Strictness::OverStrict,
            Strictness::WrongCode,
            Strictness::KeptOpen,
            Strictness::Broken,
            Strictness::Waited,
        ]
        .into_iter()
        .map(|k| (k, m.count(role, k)))
        .filter(|(_, n)| *n > 0)
        .map(|(k, n)| format!("{n} {k}"))
        .collect();
        if !counts.is_empty() {
            writeln!(out, "  {:<8} {}", role.to_string(), counts.join(" · "))?;
        }
    }
    let g = &m.groups;
    for (what, ids) in [
        (
            "refused by the listener, accepted by the backend",
            &g.listener_rejects,
        ),
        (
            "refused by the backend, passed on by the listener",
            &g.backend_rejects_passed_on,
        ),
        ("refused by both", &g.rejected_by_both),
        (
            "accepted by the listener, refused by the backend",
            &g.listener_accepts_backend_rejects,
        ),
    ] {
        if !ids.is_empty() {
            let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
            let list = fold::template_list(&ids, s.verbose);
            // A list counted by kind carries its count; a whole one gets it in front.
            let line = if list.starts_with(&ids.len().to_string()) {
                format!("{what}: {list}")
            } else {
                format!("{what} ({}): {list}", ids.len())
            };
            writeln!(out, "{}", wrap(&line, s.width, "  ", "    "))?;
        }
    }
    if !g.accepted_by_both.is_empty() {
        writeln!(out, "  accepted by both: {}", g.accepted_by_both.len())?;
    }
    // RFC 9112 §6.1: after these the connection must close; one left open can carry a
    // smuggled request.
    for role in [Role::Listener, Role::Backend] {
        let ids: Vec<&str> = m
            .judged(role, Strictness::KeptOpen)
            .map(|r| r.variant.as_str())
            .collect();
        if !ids.is_empty() {
            let line = format!(
                "the {role} kept the connection open where the RFC says it MUST close ({}): {}",
                ids.len(),
                fold::template_list(&ids, s.verbose)
            );
            writeln!(out, "{}", wrap(&line, s.width, "  ", "    "))?;
        }
    }
    if !g.unlisted_codes.is_empty() {
        // One entry per side and code, its templates listed or counted by kind.
        let mut by_code: Vec<((String, u16), Vec<&str>)> = Vec::new();
        for u in &g.unlisted_codes {
            let key = (u.role.to_string(), u.status);
            match by_code.iter_mut().find(|(k, _)| *k == key) {
                Some((_, ids)) => ids.push(&u.variant),
                None => by_code.push((key, vec![&u.variant])),
            }
        }
        let seen: Vec<String> = by_code
            .iter()
            .map(|((role, status), ids)| {
                format!("{role} {status} to {}", fold::template_list(ids, s.verbose))
            })
            .collect();
        let line = format!(
            "codes outside the reference page (as seen, no cause): {}",
            seen.join("; ")
        );
        writeln!(out, "{}", wrap(&line, s.width, "  ", "    "))?;
    }
    if !s.verbose && m.rows.len() > fold::LIST_WHOLE {
        writeln!(
            out,
            "  {}",
            s.dim("(`-v` names every template; `lbprobe probes` tells what each sends)")
        )?;
    }
    Ok(())
}

pub(crate) fn write_detail(out: &mut String, f: &Finding, s: Style) -> std::fmt::Result {
    writeln!(out)?;
    let heading = format!(
        "{} {} · {} · {}",
        s.bold("──"),
        s.bold(&f.cause),
        s.verdict(f.verdict, 0),
        f.title
    );
    writeln!(out, "{}", wrap(&heading, s.width, "", "   "))?;
    writeln!(
        out,
        "{}",
        wrap(&fold::reason(&f.reason, s.verbose), s.width, "  ", "  ")
    )?;
    if !f.evidence.is_empty() {
        writeln!(
            out,
            "  {} {}",
            s.bold("evidence"),
            s.dim(&format!("(rests on: {})", f.rests_on_text()))
        )?;
        let shown = fold::evidence_shown(f, s.verbose);
        for e in shown {
            let refs = if e.observations.is_empty() {
                String::new()
            } else {
                format!(" {}", s.dim(&format!("[{}]", e.observations.join(" "))))
            };
            let line = format!("{}{}{refs}", s.dim(&e.basis_prefix()), e.text);
            writeln!(out, "{}", wrap(&line, s.width, "    • ", "      "))?;
        }
        if shown.len() < f.evidence.len() {
            let more = format!(
                "… {} more like these (`-v` shows them; `--format json` lists them with their observations)",
                f.evidence.len() - shown.len()
            );
            writeln!(out, "{}", s.dim(&wrap(&more, s.width, "    ", "      ")))?;
        }
    }
    if !f.remediation.is_empty() {
        writeln!(out, "  {}", s.bold("fix"))?;
        for m in &f.remediation {
            writeln!(out, "{}", wrap(m, s.width, "    • ", "      "))?;
        }
    }
    Ok(())
}

/// How the baseline reached a side: the address, what TLS settled on, what ALPN chose.
fn connection_line(r: &Report, role: Role) -> Option<String> {
    use crate::probe::{Detail, Family};
    let find = |variant: &str| {
        r.observations
            .iter()
            .find(|o| o.family == Family::Protocol && o.variant == variant && o.role == role)
    };
    let ex = find("baseline")?.exchange.as_ref()?;
    let mut parts = Vec::new();
    if let Some(peer) = &ex.peer {
        parts.push(format!("reached {peer}"));
    }
    if let Some(t) = &ex.tls_info {
        parts.push(format!("{} {}", t.version, t.cipher));
    }
    if let Some(Detail::Alpn(a)) = find("alpn").map(|o| &o.detail) {
        parts.push(match &a.chosen {
            Some(p) => format!("ALPN {p}"),
            None => "no ALPN protocol chosen".to_string(),
        });
    }
    (!parts.is_empty()).then(|| parts.join(" · "))
}
