//! The terminal report: a compact table of findings, then the evidence and fix for each
//! confirmed or reproduced cause.

use std::fmt::Write;

use crate::classify::malformed_table::{MalformedTable, Strictness};
use crate::classify::{Finding, Verdict};
use crate::target::Role;

use super::model::Report;
use super::style::Style;

pub fn render(report: &Report, style: Style) -> String {
    let mut out = String::new();
    let _ = write_report(&mut out, report, style);
    out
}

fn write_report(out: &mut String, r: &Report, s: Style) -> std::fmt::Result {
    writeln!(
        out,
        "{} · scenario {} · profile {} · {} requests in {:.1} s{}",
        s.bold("lbprobe"),
        r.scenario,
        r.profile.label(),
        r.requests_sent,
        r.duration_ms / 1000.0,
        if r.partial { " · PARTIAL" } else { "" }
    )?;
    for t in &r.targets {
        let tls = t.connection_note();
        writeln!(out, "  {:<8} {}{tls}", t.role.to_string(), t.url())?;
        if let Some(line) = connection_line(r, t.role) {
            writeln!(out, "  {:<8} {}", "", s.dim(&line))?;
        }
    }
    writeln!(out)?;

    if r.findings.is_empty() {
        writeln!(out, "No finding: the probes that ran speak to no cause.")?;
    } else {
        let w = r
            .findings
            .iter()
            .map(|f| f.cause.len())
            .max()
            .unwrap_or(5)
            .max(5);
        writeln!(
            out,
            "{}",
            s.bold(&format!(
                "{:<w$}  {:<12}  {:<8}  {}",
                "CAUSE", "VERDICT", "SIDE", "WHY"
            ))
        )?;
        for f in &r.findings {
            writeln!(
                out,
                "{:<w$}  {}  {:<8}  {}",
                f.cause,
                s.verdict(f.verdict, 12),
                f.side.to_string(),
                f.reason
            )?;
        }
    }

    for f in r
        .findings
        .iter()
        .filter(|f| matches!(f.verdict, Verdict::Confirmed | Verdict::Reproduced))
    {
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
                s.paint("32", "ok  ")
            } else {
                s.paint("1;31", "FAIL")
            }
        };
        for e in &r.expectations {
            let actual = e.actual.map_or("no finding".to_string(), |v| v.to_string());
            writeln!(
                out,
                "  {} {}: expected {}, got {actual}  {}",
                mark(e.met),
                e.cause,
                e.expected,
                s.dim(&e.location)
            )?;
        }
        for e in &r.limit_expectations {
            writeln!(
                out,
                "  {} {} ({}) {}: {}  {}",
                mark(e.met),
                e.limit,
                e.role,
                e.bounds(),
                e.why,
                s.dim(&e.location)
            )?;
        }
    }
    if let Some(m) = &r.malformed {
        write_malformed(out, m, s)?;
    }
    if !r.notes.is_empty() {
        writeln!(out)?;
        writeln!(out, "{}", s.bold("Notes"))?;
        for n in &r.notes {
            writeln!(out, "  • {n}")?;
        }
    }
    if !r.unreachable.is_empty() {
        writeln!(out)?;
        for u in &r.unreachable {
            writeln!(out, "{} {u}", s.paint("1;31", "unreachable:"))?;
        }
    }
    writeln!(out)?;
    writeln!(
        out,
        "{}",
        s.dim(&format!(
            "{} causes not covered by this run's probes (`lbprobe causes` lists all; `lbprobe explain ID` tells one). Exit {}: {}.",
            r.not_covered.len(),
            r.exit_code,
            r.exit_reason
        ))
    )?;
    Ok(())
}

/// The malformed-request kinds in a few lines: how strict each side is, then who refuses what.
fn write_malformed(out: &mut String, m: &MalformedTable, s: Style) -> std::fmt::Result {
    writeln!(out)?;
    writeln!(
        out,
        "{}",
        s.bold(&format!(
            "Malformed requests: {} kind{}",
            m.rows.len(),
            if m.rows.len() == 1 { "" } else { "s" }
        ))
    )?;
    for role in [Role::Listener, Role::Backend] {
        let counts: Vec<String> = [
            Strictness::Strict,
            Strictness::Lenient,
            Strictness::OverStrict,
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
            writeln!(out, "  {what} ({}): {}", ids.len(), ids.join(", "))?;
        }
    }
    if !g.accepted_by_both.is_empty() {
        writeln!(out, "  accepted by both: {}", g.accepted_by_both.len())?;
    }
    if !g.unlisted_codes.is_empty() {
        let seen: Vec<String> = g
            .unlisted_codes
            .iter()
            .map(|u| format!("{} {} {}", u.variant, u.role, u.status))
            .collect();
        writeln!(
            out,
            "  codes outside the reference page (as seen, no cause): {}",
            seen.join(", ")
        )?;
    }
    Ok(())
}

fn write_detail(out: &mut String, f: &Finding, s: Style) -> std::fmt::Result {
    writeln!(out)?;
    writeln!(
        out,
        "{} {} · {} · {}",
        s.bold("──"),
        s.bold(&f.cause),
        s.verdict(f.verdict, 0),
        f.title
    )?;
    writeln!(out, "  {}", f.reason)?;
    if !f.evidence.is_empty() {
        writeln!(
            out,
            "  {} {}",
            s.bold("evidence"),
            s.dim(&format!("(rests on: {})", f.rests_on_text()))
        )?;
        for e in &f.evidence {
            let refs = if e.observations.is_empty() {
                String::new()
            } else {
                format!(" {}", s.dim(&format!("[{}]", e.observations.join(" "))))
            };
            writeln!(out, "    • {}{}{refs}", s.dim(&e.basis_prefix()), e.text)?;
        }
    }
    if !f.remediation.is_empty() {
        writeln!(out, "  {}", s.bold("fix"))?;
        for m in &f.remediation {
            writeln!(out, "    • {m}")?;
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
