//! `lbprobe logs` output: the summary of what an access log shows (which documented cause,
//! how often, where and since when, and the fix), and `--explain-line`, for people and JSON.
//! Pure: everything returns a value, the caller prints.

use std::fmt::Write as _;

use serde::Serialize;

use super::Style;
use crate::catalogue::Catalogue;
use crate::logs::summary::{minute_label, BadLine, CauseStats, Summary};
use crate::logs::Explanation;
use crate::plural;

/// How many top URIs, clients and backends are shown per cause.
pub const TOP: usize = 5;

/// The model both renderings read.
#[derive(Debug, Clone, Serialize)]
pub struct LogsReport {
    pub format: String,
    pub profile: String,
    pub inputs: Vec<String>,
    pub lines: u64,
    pub bytes: u64,
    pub parsed: u64,
    pub blank: u64,
    pub bad: u64,
    pub bad_samples: Vec<BadLine>,
    /// Parsed lines with a status of 400 or above.
    pub errors: u64,
    pub by_status: Vec<StatusRow>,
    pub causes: Vec<CauseRow>,
    pub unexplained: Vec<StatusRow>,
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StatusRow {
    pub status: u16,
    pub count: u64,
    /// Of all error lines.
    pub share: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct CauseRow {
    /// "These lines show this cause": a count, never a verdict.
    pub cause: String,
    pub title: String,
    pub count: u64,
    /// Of all error lines.
    pub share: f64,
    pub by_status: Vec<StatusRow>,
    pub first_line: u64,
    pub first_time: Option<String>,
    pub bucket_minutes: u64,
    pub buckets: Vec<Bucket>,
    pub top_uris: Vec<Top>,
    pub top_clients: Vec<Top>,
    pub top_backends: Vec<Top>,
    /// Counts in the top lists are lower bounds once a list dropped rare keys.
    pub top_approximate: bool,
    pub fix: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Bucket {
    pub start: String,
    pub count: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Top {
    pub value: String,
    pub count: u64,
}

fn share(n: u64, of: u64) -> f64 {
    if of == 0 {
        0.0
    } else {
        (n as f64 / of as f64 * 10_000.0).round() / 10_000.0
    }
}

fn tops(list: Vec<(String, u64)>) -> Vec<Top> {
    list.into_iter()
        .map(|(value, count)| Top { value, count })
        .collect()
}

impl LogsReport {
    pub fn new(s: &Summary, format: String, profile: String, inputs: Vec<String>) -> LogsReport {
        let errors = s.errors();
        let cat = Catalogue::builtin();
        let row = |(status, count): (u16, u64)| StatusRow {
            status,
            count,
            share: share(count, errors),
        };
        let by_status = (400..s.status.len())
            .filter(|&c| s.status[c] > 0)
            .map(|c| row((c as u16, s.status[c])))
            .collect();
        let mut causes: Vec<CauseRow> = s
            .causes
            .iter()
            .map(|(id, st)| cause_row(id, st, errors, cat))
            .collect();
        causes.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.cause.cmp(&b.cause)));
        let mut notes = Vec::new();
        if let Some((secs, part)) = s.fixed_499_timeout() {
            notes.push(format!(
                "{:.0} % of the 499 lines have request_time {secs:.1} s: one fixed value is a client-side timeout; see 499.client-timeout-short",
                part * 100.0
            ));
        }
        if s.causes.contains_key("400.passthrough") {
            notes.push("400 passed through from a backend: when every request to one backend gets 400, even a plain GET, the listener speaks HTTP to a TLS port (400.backend-expects-https); otherwise the backend validates (400.backend-validation)".into());
        }
        if s.causes.contains_key("503.no-backends") {
            notes.push("no line reached any backend, so the 503s without upstream_status are read as 503.no-backends rather than a rate limit".into());
        }
        LogsReport {
            format,
            profile,
            inputs,
            lines: s.lines,
            bytes: s.bytes,
            parsed: s.parsed(),
            blank: s.blank,
            bad: s.bad,
            bad_samples: s.bad_samples.clone(),
            errors,
            by_status,
            causes,
            unexplained: s.unexplained.iter().map(|(k, v)| row((*k, *v))).collect(),
            notes,
        }
    }
}

fn cause_row(id: &str, st: &CauseStats, errors: u64, cat: &Catalogue) -> CauseRow {
    let cause = cat.get(id);
    let approx = st.uris.dropped + st.clients.dropped + st.upstreams.dropped > 0;
    CauseRow {
        cause: id.to_string(),
        title: cause.map(|c| c.title.clone()).unwrap_or_default(),
        count: st.count,
        share: share(st.count, errors),
        by_status: st
            .by_status
            .iter()
            .map(|(k, v)| StatusRow {
                status: *k,
                count: *v,
                share: share(*v, st.count),
            })
            .collect(),
        first_line: st.first_line,
        first_time: st.first_time.clone(),
        bucket_minutes: st.buckets.width,
        buckets: st
            .buckets
            .counts
            .iter()
            .map(|(m, n)| Bucket {
                start: minute_label(*m),
                count: *n,
            })
            .collect(),
        top_uris: tops(st.uris.top(TOP)),
        top_clients: tops(st.clients.top(TOP)),
        top_backends: tops(st.upstreams.top(TOP)),
        top_approximate: approx,
        fix: cause.map(|c| c.remediation.clone()).unwrap_or_default(),
    }
}

fn pct(x: f64) -> String {
    format!("{:.1} %", x * 100.0)
}

/// The summary for a person at a terminal.
pub fn human(r: &LogsReport, style: Style) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "{} {} ({}; profile {})",
        style.bold("access log:"),
        r.inputs.join(", "),
        r.format,
        r.profile
    );
    let _ = writeln!(
        o,
        "  {}, {} parsed, {} (status ≥ 400), {} bad, {} blank",
        plural::count(r.lines, "line"),
        r.parsed,
        plural::count(r.errors, "error line"),
        r.bad,
        r.blank
    );
    if !r.by_status.is_empty() {
        let codes: Vec<String> = r
            .by_status
            .iter()
            .map(|s| format!("{} ×{} ({})", s.status, s.count, pct(s.share)))
            .collect();
        let _ = writeln!(o, "  by status: {}", codes.join(", "));
    }
    if r.causes.is_empty() {
        let _ = writeln!(o, "\nNo error line shows a documented cause.");
    }
    for c in &r.causes {
        let _ = writeln!(
            o,
            "\n{}  {}, {} of errors — {}",
            style.bold(&c.cause),
            plural::count(c.count, "line"),
            pct(c.share),
            c.title
        );
        let since = c.first_time.as_deref().unwrap_or("(no time field)");
        let _ = writeln!(o, "  first: line {} at {since}", c.first_line);
        if let Some(peak) = c.buckets.iter().max_by_key(|b| b.count) {
            let _ = writeln!(
                o,
                "  over time: {} of {} min, from {} to {}, busiest {} ({})",
                plural::count(c.buckets.len(), "bucket"),
                c.bucket_minutes,
                c.buckets.first().map_or("", |b| b.start.as_str()),
                c.buckets.last().map_or("", |b| b.start.as_str()),
                peak.start,
                plural::count(peak.count, "line")
            );
        }
        for (label, list) in [
            ("URIs", &c.top_uris),
            ("clients", &c.top_clients),
            ("backends", &c.top_backends),
        ] {
            if !list.is_empty() {
                let items: Vec<String> = list
                    .iter()
                    .map(|t| format!("{} ×{}", t.value, t.count))
                    .collect();
                let _ = writeln!(o, "  top {label}: {}", items.join(", "));
            }
        }
        if let Some(fix) = c.fix.first() {
            let _ = writeln!(o, "  fix: {fix}");
        }
    }
    if !r.unexplained.is_empty() {
        let rows: Vec<String> = r
            .unexplained
            .iter()
            .map(|s| format!("{} ×{}", s.status, s.count))
            .collect();
        let _ = writeln!(
            o,
            "\n{} {}",
            style.dim("error lines no documented cause explains:"),
            rows.join(", ")
        );
    }
    if r.bad > 0 {
        let _ = writeln!(
            o,
            "\n{} not parse; the first:",
            plural::count_as(r.bad, "line did", "lines did")
        );
        for b in &r.bad_samples {
            let _ = writeln!(
                o,
                "  {}:{}:{}: {}\n    {}",
                b.input, b.line, b.column, b.reason, b.text
            );
        }
    }
    for n in &r.notes {
        let _ = writeln!(o, "\nnote: {n}");
    }
    o
}

/// `--explain-line` as JSON.
#[derive(Debug, Clone, Serialize)]
pub struct ExplanationJson {
    pub input: String,
    pub line: u64,
    pub text: String,
    pub format: String,
    pub parsed: bool,
    pub error: Option<String>,
    pub fields: Vec<(String, String)>,
    pub status: Option<u16>,
    pub upstream_statuses: Vec<u16>,
    pub cause: Option<String>,
    pub rule: Option<String>,
}

impl ExplanationJson {
    pub fn new(e: &Explanation) -> ExplanationJson {
        let (fields, error) = match &e.fields {
            Ok(f) => (f.clone(), None),
            Err(err) => (
                Vec::new(),
                Some(format!("column {}: {}", err.column + 1, err.message)),
            ),
        };
        ExplanationJson {
            input: e.input.clone(),
            line: e.line,
            text: e.text.clone(),
            format: e.format.clone(),
            parsed: e.facts.is_some(),
            error,
            fields,
            status: e.facts.as_ref().map(|f| f.status),
            upstream_statuses: e
                .facts
                .as_ref()
                .map(|f| f.upstream.clone())
                .unwrap_or_default(),
            cause: e.classification.and_then(|c| c.cause).map(str::to_string),
            rule: e.classification.map(|c| c.rule.to_string()),
        }
    }
}

/// `--explain-line` for a person.
pub fn explanation_human(e: &Explanation, style: Style) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "{} {}:{} ({})",
        style.bold("line"),
        e.input,
        e.line,
        e.format
    );
    let _ = writeln!(o, "  {}", e.text);
    match &e.fields {
        Err(err) => {
            let _ = writeln!(
                o,
                "does not parse at column {}: {}",
                err.column + 1,
                err.message
            );
            return o;
        }
        Ok(fields) => {
            let _ = writeln!(o, "fields:");
            for (k, v) in fields {
                let _ = writeln!(o, "  {k:<28} {v}");
            }
        }
    }
    if let Some(f) = &e.facts {
        let _ = writeln!(o, "read as:");
        let _ = writeln!(o, "  status                       {}", f.status);
        let upstream = if !f.upstream_logged {
            "(not in this format)".to_string()
        } else if f.upstream.is_empty() {
            "- (no backend answered)".to_string()
        } else {
            let v: Vec<String> = f.upstream.iter().map(u16::to_string).collect();
            let tries = if v.len() > 1 { " (one per try)" } else { "" };
            format!("{}{tries}", v.join(", "))
        };
        let _ = writeln!(o, "  upstream_status              {upstream}");
        let secs = |v: Option<f64>| v.map_or("-".to_string(), |s| format!("{s:.3} s"));
        let _ = writeln!(o, "  request_time                 {}", secs(f.request_time));
        let _ = writeln!(
            o,
            "  upstream_response_time       {}",
            secs(f.upstream_response_time)
        );
        let _ = writeln!(
            o,
            "  upstream_connect_time        {}",
            if f.connect_failed {
                "- (no connection)".to_string()
            } else {
                secs(f.upstream_connect_time)
            }
        );
        if let Some(t) = f.termination {
            let _ = writeln!(
                o,
                "  termination state            {}",
                String::from_utf8_lossy(&t)
            );
        }
    }
    if let Some(c) = e.classification {
        let _ = writeln!(o, "reasoning: {}", c.rule);
        match c.cause {
            Some(id) => {
                let _ = writeln!(o, "this line shows {}", style.bold(id));
                if let Some(cause) = Catalogue::builtin().get(id) {
                    let _ = writeln!(o, "  {}", cause.title);
                    if let Some(fix) = cause.remediation.first() {
                        let _ = writeln!(o, "  fix: {fix}");
                    }
                }
            }
            None => {
                let _ = writeln!(o, "this line shows no documented cause");
            }
        }
    }
    o
}
