//! `--format curl`: the requests of a run or of a dry run as a shell script of curl commands,
//! one per request, in the order the report lists them; a request curl cannot send byte for
//! byte is a comment that says why, never a command that sends something else.

use std::fmt::Write;

use crate::probe::dry_run::DryRun;
use crate::replay::share::AsCurl;

use super::model::Report;

/// The script for what a dry run plans.
pub fn render_planned(plan: &DryRun) -> String {
    let mut out = header(
        plan.requests.len(),
        "planned by a dry run (nothing was sent)",
    );
    for r in &plan.requests {
        let heading = format!("{}/{} → {} {}", r.family, r.variant, r.role, r.endpoint);
        one(&mut out, &heading, r.curl.as_ref());
    }
    out
}

/// The script for what a run sent, each with what came back.
pub fn render_run(report: &Report) -> String {
    let sent: Vec<_> = report
        .observations
        .iter()
        .filter(|o| o.request.curl.is_some())
        .collect();
    let mut out = header(sent.len(), "sent by the run");
    for o in sent {
        let answer = match o.exchange.as_ref().and_then(|e| e.response.as_ref()) {
            Some(r) => format!("answered {}", r.status),
            None => "no answer".to_string(),
        };
        let heading = format!(
            "{} {}/{} → {} ({answer})",
            o.id, o.family, o.variant, o.role
        );
        one(&mut out, &heading, o.request.curl.as_ref());
    }
    out
}

fn header(n: usize, what: &str) -> String {
    format!(
        "#!/bin/sh\n# {}, {what}, as curl commands.\n# Secrets appear as ***: put them back before running a command.\n",
        crate::plural::count(n, "request")
    )
}

fn one(out: &mut String, heading: &str, curl: Option<&AsCurl>) {
    // A heading comes from variant names and endpoints: keep it on one comment line.
    let heading: String = heading
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let _ = writeln!(out, "\n# {heading}");
    let _ = match curl {
        Some(AsCurl::Command(line)) => writeln!(out, "{line}"),
        Some(AsCurl::Cannot(why)) => writeln!(out, "# curl cannot send these exact bytes: {why}"),
        None => writeln!(out, "# not a request of its own (a summary of several)"),
    };
}
