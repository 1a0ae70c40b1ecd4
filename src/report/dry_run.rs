//! The `--dry-run` listing: the plan, then each request's exact bytes.

use std::fmt::Write;

use crate::probe::dry_run::DryRun;

use super::style::Style;

pub fn render(plan: &DryRun, s: Style) -> String {
    let mut out = String::new();
    let _ = write(&mut out, plan, s);
    out
}

fn write(out: &mut String, p: &DryRun, s: Style) -> std::fmt::Result {
    writeln!(out, "{} nothing is sent", s.bold("lbprobe --dry-run:"))?;
    for t in &p.targets {
        writeln!(out, "  {:<8} {}", t.role.to_string(), t.url())?;
    }
    writeln!(
        out,
        "  profile {} · caps: {}, {} per second, {:.0} s in all, {:.0} s per request",
        p.profile.label(),
        crate::plural::count(p.limits.max_requests, "request"),
        p.limits.max_rate,
        p.limits.max_duration.as_secs_f64(),
        p.limits.request_timeout.as_secs_f64()
    )?;
    let families: Vec<&str> = p.families.iter().map(|f| f.as_str()).collect();
    writeln!(out, "  probe families: {}", families.join(", "))?;
    writeln!(out)?;
    for r in &p.requests {
        let how = if r.exact {
            ""
        } else {
            " (sent by the HTTP client library; shown as the equivalent bytes)"
        };
        writeln!(
            out,
            "{} → {} {} · {} bytes{how}",
            s.bold(&format!("{}/{}", r.family, r.variant)),
            r.role,
            r.endpoint,
            r.bytes
        )?;
        writeln!(out, "    {}", r.text)?;
    }
    for n in &p.notes {
        writeln!(out)?;
        writeln!(out, "• {n}")?;
    }
    Ok(())
}
