//! The backend host report (`lbprobe backend`): the host's facts, counter deltas, host findings,
//! then the local checks' report. JSON is the model as it stands.

use std::fmt::Write;

use crate::classify::{Finding, Verdict};
use crate::host::backend::BackendReport;
use crate::host::merge::{AnsweredBy, MergeReport};
use crate::host::ListenSocket;

use super::style::{look, Style};
use crate::plural;

pub fn render(r: &BackendReport, style: Style) -> String {
    let mut out = String::new();
    let _ = write_report(&mut out, r, style);
    out
}

pub fn to_json(r: &BackendReport) -> String {
    super::to_json(r)
}

fn socket_line(s: &ListenSocket) -> String {
    let limit = match s.backlog {
        Some(b) => format!("backlog {b}"),
        None => "backlog unknown".into(),
    };
    let state = match s.full() {
        Some(true) => " — FULL",
        _ => "",
    };
    format!(
        "{:<24} queue {} / {limit}{state}",
        s.addr.to_string(),
        s.queue
    )
}

fn write_report(out: &mut String, r: &BackendReport, s: Style) -> std::fmt::Result {
    let h = &r.host;
    writeln!(
        out,
        "{} · backend host · port {} · {} · {:.1} s",
        s.bold("lbprobe"),
        h.port,
        h.facts.platform,
        r.duration_ms / 1000.0
    )?;
    writeln!(out)?;
    writeln!(out, "{}", s.bold("Listening"))?;
    match &h.facts.listening {
        None => writeln!(out, "  could not be read")?,
        Some(v) if v.is_empty() => writeln!(out, "  nothing listens on port {}", h.port)?,
        Some(v) => {
            for sock in v {
                writeln!(out, "  before  {}", socket_line(sock))?;
            }
            for sock in h.listening_after.iter().flatten() {
                writeln!(out, "  after   {}", socket_line(sock))?;
            }
            if let Some(src) = &h.facts.listening_source {
                writeln!(out, "  {}", s.dim(&format!("from {src}")))?;
            }
        }
    }
    if !h.facts.sysctls.is_empty() {
        let list: Vec<String> = h
            .facts
            .sysctls
            .iter()
            .map(|(k, v)| format!("{k} = {v}"))
            .collect();
        writeln!(out, "  {}", list.join(" · "))?;
    }

    writeln!(out)?;
    writeln!(
        out,
        "{}",
        s.bold("Kernel counters (host-wide, grew while the checks ran)")
    )?;
    match (&h.counters_before, &h.counters_after) {
        (Some(_), Some(after)) => {
            for (name, value) in &after.values {
                let d = h.deltas.get(name).copied().unwrap_or(0);
                let delta = if d > 0 {
                    s.paint(look::ALARM, &format!("+{d}"))
                } else {
                    "+0".to_string()
                };
                writeln!(
                    out,
                    "  {name:<28} {delta:>6}  {}",
                    s.dim(&format!("({value} since boot)"))
                )?;
            }
        }
        _ => writeln!(out, "  could not be read")?,
    }

    writeln!(out)?;
    writeln!(out, "{}", s.bold("MTU"))?;
    match &h.facts.interfaces {
        Some(ifs) => {
            let list: Vec<String> = ifs
                .iter()
                .map(|i| format!("{} {}", i.name, i.mtu))
                .collect();
            writeln!(out, "  interfaces: {}", list.join(", "))?;
        }
        None => writeln!(out, "  interfaces: could not be read")?,
    }
    if let Some(route) = &h.facts.route {
        let via = route.via.map(|v| format!(" via {v}")).unwrap_or_default();
        let dev = route.dev.as_deref().unwrap_or("?");
        let mtu = route
            .effective_mtu()
            .map_or("unknown".to_string(), |m| m.to_string());
        writeln!(
            out,
            "  route to {}{via} dev {dev}: MTU {mtu}",
            route.destination
        )?;
    } else if h.client.is_none() {
        writeln!(
            out,
            "  {}",
            s.dim("route: give --client ADDRESS for the route MTU towards it")
        )?;
    }

    if let Some(sets) = &h.facts.firewall {
        writeln!(out)?;
        writeln!(out, "{}", s.bold("Firewall"))?;
        for set in sets {
            writeln!(
                out,
                "  {}: {} read",
                set.tool,
                plural::count(set.rules.len(), "rule")
            )?;
        }
    }
    if !h.facts.unsupported.is_empty() {
        writeln!(out)?;
        writeln!(out, "{}", s.bold("Not read"))?;
        for u in &h.facts.unsupported {
            writeln!(out, "  • {}: {}", u.what, u.why)?;
        }
    }

    writeln!(out)?;
    writeln!(out, "{}", s.bold("Host findings"))?;
    if r.findings.is_empty() {
        writeln!(out, "  none")?;
    }
    for f in &r.findings {
        write_finding(out, f, s)?;
    }

    if let Some(c) = &r.capture {
        writeln!(out)?;
        writeln!(
            out,
            "{}",
            s.bold(&format!(
                "Capture of port {} for {:.1} s",
                c.port, c.seconds
            ))
        )?;
        let mss: Vec<String> = c.syn_mss.iter().map(|(m, n)| format!("{m} ×{n}")).collect();
        writeln!(
            out,
            "  {}, {}; SYN MSS {}; resets from the service {}, to it {}; retransmissions {}",
            plural::count(c.connections, "connection"),
            plural::count(c.segments, "segment"),
            if mss.is_empty() {
                "none".to_string()
            } else {
                mss.join(", ")
            },
            c.resets_from_service,
            c.resets_to_service,
            c.retransmissions
        )?;
        writeln!(
            out,
            "  {} the service",
            plural::count_as(
                c.markers.len(),
                "marked request reached",
                "marked requests reached"
            )
        )?;
        for m in &c.markers {
            writeln!(out, "    {}  from {}  {} bytes", m.marker, m.from, m.bytes)?;
        }
        if c.truncated {
            writeln!(
                out,
                "  {}",
                s.dim("a bound cut the capture short (connections or bytes kept)")
            )?;
        }
    }
    if let Some(checks) = &r.checks {
        writeln!(out)?;
        writeln!(out, "{}", s.bold("Local checks against the service"))?;
        out.push_str(&super::human::render(checks, s));
    }
    writeln!(out)?;
    writeln!(
        out,
        "{}",
        s.dim(&format!("Exit {}: {}.", r.exit_code, r.exit_reason))
    )?;
    Ok(())
}

fn write_finding(out: &mut String, f: &Finding, s: Style) -> std::fmt::Result {
    writeln!(
        out,
        "  {}  {}  {}",
        f.cause,
        s.verdict(f.verdict, 0),
        f.reason
    )?;
    for e in &f.evidence {
        writeln!(out, "    • {}", e.text)?;
    }
    if f.verdict == Verdict::Confirmed {
        for m in &f.remediation {
            writeln!(out, "    fix: {m}")?;
        }
    }
    Ok(())
}

/// The merged client and capture reports: who answered each probe.
pub fn merge_human(m: &MergeReport, s: Style) -> String {
    let mut out = String::new();
    let _ = write_merge(&mut out, m, s);
    out
}

fn write_merge(out: &mut String, m: &MergeReport, s: Style) -> std::fmt::Result {
    let sum = &m.summary;
    writeln!(
        out,
        "{} · merge with the capture of port {} · {} forwarded, {} answered by the listener, {} direct, {} unmarked",
        s.bold("lbprobe"),
        m.capture_port,
        sum.forwarded,
        sum.answered_by_listener,
        sum.direct_to_backend,
        sum.unmarked
    )?;
    writeln!(out)?;
    writeln!(
        out,
        "{}",
        s.bold(&format!(
            "{:<6} {:<12} {:<36} {:<9} {:<7} {}",
            "OBS", "FAMILY", "VARIANT", "ROLE", "STATUS", "ANSWERED BY"
        ))
    )?;
    for p in &m.probes {
        let who = match p.answered_by {
            AnsweredBy::Backend => "backend (sent directly)".to_string(),
            AnsweredBy::Forwarded => format!(
                "backend: forwarded, {} bytes arrived",
                p.backend_bytes.unwrap_or(0)
            ),
            AnsweredBy::Listener => s.paint(look::WARN, "listener: never reached the backend"),
            AnsweredBy::Unknown => s.dim("unknown (no marker)"),
        };
        let status = p.status.map_or("-".to_string(), |c| c.to_string());
        writeln!(
            out,
            "{:<6} {:<12} {:<36} {:<9} {:<7} {who}",
            p.observation, p.family, p.variant, p.role, status
        )?;
    }
    if !m.findings.is_empty() {
        writeln!(out)?;
        if m.changes.is_empty() {
            writeln!(
                out,
                "re-classified with the capture: no verdict changed ({})",
                plural::count(m.findings.len(), "finding")
            )?;
        } else {
            writeln!(
                out,
                "{}",
                s.bold(&format!(
                    "re-classified with the capture: {} changed",
                    plural::count(m.changes.len(), "finding")
                ))
            )?;
            for c in &m.changes {
                let before = c.before.map_or("not reported", |v| v.as_str());
                writeln!(
                    out,
                    "  {}: {before} → {} — {}",
                    c.cause,
                    c.after.as_str(),
                    c.reason
                )?;
            }
        }
    }
    for n in &m.notes {
        writeln!(out)?;
        writeln!(out, "note: {n}")?;
    }
    Ok(())
}
