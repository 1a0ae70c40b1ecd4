//! What `lbprobe serve --check` says of a config that loads.

use crate::serve::ServeConfig;

/// One line per module: its name, what it probes, its caps.
pub fn checked(config: &ServeConfig) -> String {
    let mut out = format!(
        "{}: ok, {} on the allow list, {}\n",
        config.path.display(),
        crate::plural::count_as(config.allow.0.len(), "entry", "entries"),
        crate::plural::count(config.modules.len(), "module"),
    );
    for m in config.modules.values() {
        let families: Vec<&str> = m
            .job
            .plan
            .probes
            .iter()
            .map(|p| p.family().as_str())
            .collect();
        let l = &m.job.plan.limits;
        out.push_str(&format!(
            "  {}: {} (at most {} requests, {}/s, {} s)\n",
            m.name,
            families.join(", "),
            l.max_requests,
            l.max_rate,
            l.max_duration.as_secs_f64()
        ));
    }
    out
}
