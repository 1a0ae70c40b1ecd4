//! Rules on what the backend host itself says (`lbprobe backend`): accept-queue overflows, a
//! service that does not listen, a firewall that drops the health checker. Pure: reads a
//! [`HostReport`], never the host.

use crate::catalogue::Catalogue;
use crate::host::{HostReport, ListenSocket};

use super::{Basis, Draft, Evidence, Finding, Verdict};

/// Findings from one backend host report, ordered like [`super::classify`]'s.
pub fn host_findings(report: &HostReport, catalogue: &Catalogue) -> Vec<Finding> {
    let mut drafts = Vec::new();
    drafts.extend(backlog_full(report));
    drafts.extend(not_listening(report));
    drafts.extend(health_check_firewall(report));
    super::findings(drafts, catalogue)
}

fn fact(mut d: Draft, text: impl Into<String>) -> Draft {
    d.evidence.push(Evidence {
        text: text.into(),
        basis: Basis::Measured,
        observations: Vec::new(),
    });
    d
}

fn describe_socket(s: &ListenSocket) -> String {
    match s.backlog {
        Some(b) => format!(
            "{} holds {} waiting, backlog {b}",
            s.addr,
            crate::plural::count(s.queue, "connection")
        ),
        None => format!(
            "{} holds {} waiting (backlog unknown)",
            s.addr,
            crate::plural::count(s.queue, "connection")
        ),
    }
}

/// Confirmed when the overflow counters grew while the checks ran or a queue is full now;
/// ruled out when they stayed flat and every queue has room.
fn backlog_full(r: &HostReport) -> Option<Draft> {
    const ID: &str = "502.backend-backlog-full";
    let port = r.port;
    let sockets: Vec<&ListenSocket> = r
        .facts
        .listening
        .iter()
        .chain(r.listening_after.iter())
        .flatten()
        .collect();
    if r.facts.listening.as_ref().is_some_and(Vec::is_empty)
        && r.listening_after.as_ref().is_none_or(Vec::is_empty)
    {
        return Some(Draft::new(
            ID,
            Verdict::Inconclusive,
            format!("nothing listens on port {port}: there is no accept queue to overflow"),
        ));
    }
    let full: Vec<&&ListenSocket> = sockets.iter().filter(|s| s.full() == Some(true)).collect();
    let delta = |name: &str| r.deltas.get(name).copied();
    let overflows = delta("TcpExt.ListenOverflows");
    let drops = delta("TcpExt.ListenDrops");
    let reqq = delta("TcpExt.TCPReqQFullDrop");
    let counted = overflows.unwrap_or(0) + reqq.unwrap_or(0);
    let counters_read = overflows.is_some();

    let counter_text = || {
        format!(
            "while the checks ran, TcpExt ListenOverflows grew by {}, ListenDrops by {}, \
             TCPReqQFullDrop by {} (host-wide counters: every listening socket of this host)",
            overflows.unwrap_or(0),
            drops.unwrap_or(0),
            reqq.unwrap_or(0)
        )
    };
    let since_boot = r
        .counters_after
        .as_ref()
        .and_then(|c| c.get("TcpExt.ListenOverflows"))
        .filter(|n| *n > 0)
        .map(|n| {
            format!(
                "since boot this host counted {}: it has happened before",
                crate::plural::count(n, "accept-queue overflow")
            )
        });
    let list = |v: &Option<Vec<ListenSocket>>| -> Option<String> {
        let v = v.as_ref().filter(|v| !v.is_empty())?;
        Some(v.iter().map(describe_socket).collect::<Vec<_>>().join("; "))
    };
    let queues = match (list(&r.facts.listening), list(&r.listening_after)) {
        (Some(b), Some(a)) => format!("before the checks {b}; after them {a}"),
        (Some(one), None) | (None, Some(one)) => one,
        (None, None) => "not read".to_string(),
    };
    let mut d = if !full.is_empty() || counted > 0 {
        let reason = if !full.is_empty() {
            format!("the accept queue of port {port} is full: new handshakes are dropped")
        } else {
            format!(
                "the kernel dropped {} on a full listen queue while the checks ran",
                crate::plural::count(counted, "handshake")
            )
        };
        let mut d = Draft::new(ID, Verdict::Confirmed, reason);
        if !full.is_empty() {
            d = fact(
                d,
                format!("accept queue full (more waiting than the backlog): {queues}"),
            );
        } else {
            d = fact(d, format!("accept queue of port {port}: {queues}"));
        }
        if counters_read {
            d = fact(d, counter_text());
        }
        d
    } else if !counters_read {
        Draft::new(
            ID,
            Verdict::Inconclusive,
            "the kernel's overflow counters could not be read, and no queue is full now",
        )
    } else if sockets
        .iter()
        .all(|s| s.full() == Some(false) || s.queue == 0)
    {
        fact(
            fact(
                Draft::new(
                    ID,
                    Verdict::RuledOut,
                    format!(
                        "no overflow counted while the checks ran, and port {port}'s accept queue has room"
                    ),
                ),
                counter_text(),
            ),
            format!("accept queue: {queues}"),
        )
    } else {
        fact(
            Draft::new(
                ID,
                Verdict::Inconclusive,
                "no overflow counted, but the backlog limit is unknown (no netlink sock_diag) and connections are waiting",
            ),
            format!("accept queue: {queues}"),
        )
    };
    if let (Some(b), Some(m)) = (
        sockets.iter().find_map(|s| s.backlog),
        r.facts.sysctls.get("net.core.somaxconn"),
    ) {
        if u64::from(b) >= *m {
            d = fact(
                d,
                format!("the backlog {b} is net.core.somaxconn ({m}): the application may ask for more and be capped"),
            );
        }
    }
    if let Some(s) = since_boot {
        d = fact(d, s);
    }
    Some(d)
}

/// The reference's first quick check on the host: the service listens on the configured port.
fn not_listening(r: &HostReport) -> Option<Draft> {
    const ID: &str = "502.backend-unreachable";
    let port = r.port;
    let sockets = r.facts.listening.as_ref()?;
    if sockets.is_empty() {
        let src = r.facts.listening_source.as_deref().unwrap_or("the kernel");
        return Some(fact(
            Draft::new(
                ID,
                Verdict::Confirmed,
                format!("nothing listens on port {port} on this host"),
            ),
            format!("{src} lists no listening TCP socket on port {port}"),
        ));
    }
    if sockets.iter().all(|s| s.loopback_only()) {
        let addrs: Vec<String> = sockets.iter().map(|s| s.addr.to_string()).collect();
        return Some(fact(
            Draft::new(
                ID,
                Verdict::Inconclusive,
                format!(
                    "port {port} listens on loopback only: reachable from a listener on this host, not from another"
                ),
            ),
            format!("listening on {}", addrs.join(", ")),
        ));
    }
    None
}

/// A firewall rule that drops or rejects the health checker's source range to the port makes
/// every health check fail while real traffic may pass.
fn health_check_firewall(r: &HostReport) -> Option<Draft> {
    const ID: &str = "502.all-backends-unhealthy";
    let port = r.port;
    if r.health_check_ranges.is_empty() {
        return None;
    }
    let ranges = r
        .health_check_ranges
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    let Some(sets) = &r.facts.firewall else {
        let why = r
            .facts
            .unsupported
            .iter()
            .filter(|u| u.what == "firewall rules")
            .map(|u| u.why.as_str())
            .collect::<Vec<_>>()
            .join("; ");
        return Some(Draft::new(
            ID,
            Verdict::Inconclusive,
            format!("the firewall rules could not be read to check the health-check range {ranges}: {why}"),
        ));
    };
    let mut blocking = Vec::new();
    for range in &r.health_check_ranges {
        for set in sets {
            for rule in set.rules.iter().filter(|rule| rule.blocks(range, port)) {
                blocking.push(format!(
                    "{range} is dropped by `{}` in {} (from {})",
                    rule.text, rule.chain, set.tool
                ));
            }
        }
    }
    let tools: Vec<&str> = sets.iter().map(|s| s.tool.as_str()).collect();
    if blocking.is_empty() {
        return Some(fact(
            Draft::new(
                ID,
                Verdict::Inconclusive,
                format!(
                    "no firewall rule drops the health-check range {ranges} to port {port}; the health check itself may still fail"
                ),
            ),
            format!("read with {}", tools.join(", ")),
        ));
    }
    let mut d = Draft::new(
        ID,
        Verdict::Confirmed,
        format!("a firewall rule drops the health checker's range {ranges} to port {port}"),
    );
    for b in blocking {
        d = fact(d, b);
    }
    Some(fact(
        d,
        "rules are matched one by one; an earlier ACCEPT for the same range would win (rule order is not evaluated here)",
    ))
}
