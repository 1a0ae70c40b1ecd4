//! `lbprobe logs` output: the summary of what an access log shows (which documented cause,
//! how often, where and since when, and the fix), and `--explain-line`, for people and JSON.
//! Pure: everything returns a value, the caller prints.

use std::fmt::Write as _;

use serde::Serialize;

use super::Style;
use crate::catalogue::Catalogue;
use crate::logs::errorlog::ErrorIndex;
use crate::logs::summary::{minute_label, BadLine, CauseStats, Summary};
use crate::logs::Explanation;
use crate::plural;
use crate::profile::{Cited, Profile};

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
    /// Lines whose fields could not tell several causes apart, with what would.
    pub undecided: Vec<UndecidedRow>,
    pub unexplained: Vec<StatusRow>,
    /// nginx's error.log, when one was joined.
    pub error_log: Option<ErrorLogRow>,
    /// Causes the SQL engine whose rows were read could not compute (`--from-sql-result`):
    /// their lines are counted under none, which is not 0.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_computed: Vec<String>,
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct UndecidedRow {
    /// The causes these lines may show: "X or Y".
    pub causes: Vec<String>,
    pub count: u64,
    /// Of all error lines.
    pub share: f64,
    pub by_status: Vec<StatusRow>,
    pub first_line: u64,
    pub first_time: Option<String>,
    /// What tells them apart: a field to add to the log format, or nginx's error.log.
    pub tell: String,
    pub top_uris: Vec<Top>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ErrorLogRow {
    pub input: String,
    pub lines: u64,
    /// Lines naming a reason lbprobe knows.
    pub reasons: u64,
    /// Of them, the client's side (nginx writes those at level info).
    pub client_side: u64,
    /// Reasons beyond the memory bound, counted but not joined.
    pub dropped: u64,
    /// Error lines of the access log its reasons decided.
    pub decided: u64,
    /// Of them, lines the access log alone could not tell.
    pub settled: u64,
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
    /// The last line's time, where the rows of an SQL engine say it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_time: Option<String>,
    pub bucket_minutes: u64,
    pub buckets: Vec<Bucket>,
    pub top_uris: Vec<Top>,
    pub top_clients: Vec<Top>,
    pub top_backends: Vec<Top>,
    /// Counts in the top lists are lower bounds once a list dropped rare keys.
    pub top_approximate: bool,
    /// The shortest and longest wait its lines logged, in seconds (upstream_response_time,
    /// else request_time).
    pub waited: Option<[f64; 2]>,
    /// For a timeout: what the wait says against the profile's number, in words.
    pub timeout: Option<String>,
    pub fix: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Bucket {
    pub start: String,
    pub count: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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
    pub fn new(
        s: &Summary,
        format: String,
        profile: &Profile,
        inputs: Vec<String>,
        errors: Option<&ErrorIndex>,
    ) -> LogsReport {
        let errors_n = s.errors();
        let cat = Catalogue::builtin();
        let row = |(status, count): (u16, u64)| StatusRow {
            status,
            count,
            share: share(count, errors_n),
        };
        let by_status = (400..s.status.len())
            .filter(|&c| s.status[c] > 0)
            .map(|c| row((c as u16, s.status[c])))
            .collect();
        let mut causes: Vec<CauseRow> = s
            .causes
            .iter()
            .map(|(id, st)| cause_row(id, st, errors_n, cat, profile))
            .collect();
        causes.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.cause.cmp(&b.cause)));
        let mut undecided: Vec<UndecidedRow> = s
            .undecided
            .values()
            .map(|u| UndecidedRow {
                causes: u.either.causes.iter().map(|c| c.to_string()).collect(),
                count: u.stats.count,
                share: share(u.stats.count, errors_n),
                by_status: status_rows(&u.stats),
                first_line: u.stats.first_line,
                first_time: u.stats.first_time.clone(),
                tell: u.either.tell.to_string(),
                top_uris: tops(u.stats.uris.top(TOP)),
            })
            .collect();
        undecided.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.causes.cmp(&b.causes)));
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
        let client_errors = s.status[400] + s.status[408] + s.status[414];
        match errors {
            Some(ix) if ix.client_side == 0 && client_errors > 0 => notes.push(format!(
                "{} has no client-side reason (\"client sent …\", \"client timed out\"): nginx writes those at level info, so the {client_errors} lines with 400, 408 or 414 were read from the access log alone; set `error_log … info` to settle them",
                ix.input
            )),
            None if !undecided.is_empty() && format.starts_with("nginx") => notes.push(format!(
                "{} error lines could not be told apart from the access log alone; nginx's error.log (--error-log FILE) says why for each request (client-side reasons need `error_log … info`)",
                undecided.iter().map(|u| u.count).sum::<u64>()
            )),
            _ => {}
        }
        LogsReport {
            format,
            profile: profile.label(),
            inputs,
            lines: s.lines,
            bytes: s.bytes,
            parsed: s.parsed(),
            blank: s.blank,
            bad: s.bad,
            bad_samples: s.bad_samples.clone(),
            errors: errors_n,
            by_status,
            causes,
            undecided,
            unexplained: s.unexplained.iter().map(|(k, v)| row((*k, *v))).collect(),
            error_log: errors.map(|ix| ErrorLogRow {
                input: ix.input.clone(),
                lines: ix.lines,
                reasons: ix.reasons,
                client_side: ix.client_side,
                dropped: ix.dropped,
                decided: s.from_error_log,
                settled: s.settled,
            }),
            not_computed: Vec::new(),
            notes,
        }
    }

    /// A report with nothing counted yet.
    pub fn empty(format: String, profile: &Profile, inputs: Vec<String>) -> LogsReport {
        LogsReport {
            format,
            profile: profile.label(),
            inputs,
            lines: 0,
            bytes: 0,
            parsed: 0,
            blank: 0,
            bad: 0,
            bad_samples: Vec::new(),
            errors: 0,
            by_status: Vec::new(),
            causes: Vec::new(),
            undecided: Vec::new(),
            unexplained: Vec::new(),
            error_log: None,
            not_computed: Vec::new(),
            notes: Vec::new(),
        }
    }
}

/// Where the first line was: its number and time, or only its time (the rows of an SQL engine
/// have no line numbers), and the last one's time when known.
fn first_seen(line: u64, first: Option<&str>, last: Option<&str>) -> String {
    let since = first.unwrap_or("(no time field)");
    let mut s = if line == 0 {
        format!("first: {since}")
    } else {
        format!("first: line {line} at {since}")
    };
    if let Some(last) = last {
        s.push_str(&format!(", last: {last}"));
    }
    s
}

fn status_rows(st: &CauseStats) -> Vec<StatusRow> {
    st.by_status
        .iter()
        .map(|(k, v)| StatusRow {
            status: *k,
            count: *v,
            share: share(*v, st.count),
        })
        .collect()
}

/// A timeout cause's wait against the profile's number: "this listener gave up after 1.0 s;
/// the nginx profile documents 60 s".
fn timeout_words(id: &str, waited: (f64, f64), profile: &Profile) -> Option<String> {
    let (number, what): (Option<Cited<std::time::Duration>>, &str) = match id {
        "504.connect-timeout" => (profile.connect_timeout(), "connect timeout"),
        "504.backend-slow" | "502.backend-slow" => (profile.response_timeout(), "response timeout"),
        "408.partial-request" => (profile.request_timeout(), "request timeout"),
        _ => return None,
    };
    let (lo, hi) = waited;
    let measured = if hi - lo < 0.05 * hi.max(0.001) {
        format!("this listener gave up after {hi:.1} s")
    } else {
        format!("this listener gave up after {lo:.1} to {hi:.1} s")
    };
    Some(match number {
        None => format!("{measured}; no profile documents its {what}"),
        Some(c) => {
            let doc = c.value.as_secs_f64();
            if (hi - doc).abs() <= 0.05 * doc {
                format!("{measured}, the {what} {}", c.says(&secs(doc)))
            } else {
                format!("{measured}; {}", c.says(&format!("{} ({what})", secs(doc))))
            }
        }
    })
}

fn secs(s: f64) -> String {
    if s.fract() == 0.0 {
        format!("{s:.0} s")
    } else {
        format!("{s} s")
    }
}

fn cause_row(
    id: &str,
    st: &CauseStats,
    errors: u64,
    cat: &Catalogue,
    profile: &Profile,
) -> CauseRow {
    let cause = cat.get(id);
    let approx = st.uris.dropped + st.clients.dropped + st.upstreams.dropped > 0;
    CauseRow {
        cause: id.to_string(),
        title: cause.map(|c| c.title.clone()).unwrap_or_default(),
        count: st.count,
        share: share(st.count, errors),
        by_status: status_rows(st),
        first_line: st.first_line,
        first_time: st.first_time.clone(),
        last_time: None,
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
        waited: st.waited.map(|(a, b)| [a, b]),
        timeout: st.waited.and_then(|w| timeout_words(id, w, profile)),
        fix: cause.map(|c| c.remediation.clone()).unwrap_or_default(),
    }
}

fn pct(x: f64) -> String {
    format!("{:.1} %", x * 100.0)
}

/// Counted values as both text formats write them: `a ×3, b ×1`.
fn counted<T: std::fmt::Display>(items: impl IntoIterator<Item = (T, u64)>) -> String {
    items
        .into_iter()
        .map(|(value, n)| format!("{value} ×{n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A top list (URIs, clients, backends) in text: `/a ×2, /b ×1`.
fn top_list(list: &[Top]) -> String {
    counted(list.iter().map(|t| (&t.value, t.count)))
}

/// The error statuses no cause explains: `500 ×2, 503 ×1`.
fn unexplained(r: &LogsReport) -> String {
    counted(r.unexplained.iter().map(|s| (s.status, s.count)))
}

/// The summary for a person at a terminal.
/// A logs report in `format`: JSON, Markdown, or the human text (the native and the SQL paths
/// alike).
pub fn render(r: &LogsReport, format: super::Format, style: Style) -> String {
    match format {
        super::Format::Json => super::schema::to_json(super::schema::Kind::Logs, r),
        super::Format::Markdown => markdown(r),
        _ => human(r, style),
    }
}

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
    if let Some(e) = &r.error_log {
        let dropped = if e.dropped > 0 {
            format!(" ({} more beyond the memory bound, not joined)", e.dropped)
        } else {
            String::new()
        };
        let _ = writeln!(
            o,
            "  error log: {}: {} lines, {} reasons ({} client-side){dropped}; they decided {} error lines, {} of which the access log alone could not",
            e.input, e.lines, e.reasons, e.client_side, e.decided, e.settled
        );
    }
    if !r.by_status.is_empty() {
        let codes: Vec<String> = r
            .by_status
            .iter()
            .map(|s| format!("{} ×{} ({})", s.status, s.count, pct(s.share)))
            .collect();
        let _ = writeln!(o, "  by status: {}", codes.join(", "));
    }
    if r.causes.is_empty() && r.undecided.is_empty() {
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
        let _ = writeln!(
            o,
            "  {}",
            first_seen(
                c.first_line,
                c.first_time.as_deref(),
                c.last_time.as_deref()
            )
        );
        if let Some(t) = &c.timeout {
            let _ = writeln!(o, "  timeout: {t}");
        }
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
                let _ = writeln!(o, "  top {label}: {}", top_list(list));
            }
        }
        if let Some(fix) = c.fix.first() {
            let _ = writeln!(o, "  fix: {fix}");
        }
    }
    for u in &r.undecided {
        let _ = writeln!(
            o,
            "\n{}  {} lines, {} of errors — cannot tell which from these lines",
            style.bold(&u.causes.join(" or ")),
            u.count,
            pct(u.share)
        );
        let _ = writeln!(
            o,
            "  {}",
            first_seen(u.first_line, u.first_time.as_deref(), None)
        );
        if !u.top_uris.is_empty() {
            let _ = writeln!(o, "  top URIs: {}", top_list(&u.top_uris));
        }
        let _ = writeln!(o, "  to tell: {}", u.tell);
    }
    if !r.unexplained.is_empty() {
        let _ = writeln!(
            o,
            "\n{} {}",
            style.dim("error lines no documented cause explains:"),
            unexplained(r)
        );
    }
    if !r.not_computed.is_empty() {
        let _ = writeln!(
            o,
            "\n{} {}",
            style.bold("not computed by the SQL engine:"),
            r.not_computed.join(", ")
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

/// The summary as Markdown (a pull-request comment, an issue): the same rows as [`human`].
pub fn markdown(r: &LogsReport) -> String {
    let cell = |s: &str| s.replace('|', "\\|").replace('\n', " ");
    let tops = |list: &[Top]| {
        counted(
            list.iter()
                .map(|t| (format!("`{}`", cell(&t.value)), t.count)),
        )
    };
    let mut o = String::new();
    let _ = writeln!(
        o,
        "## Access log: {}\n\n{} ({}; profile {}): {} error lines of {} parsed.\n",
        cell(&r.inputs.join(", ")),
        cell(&r.format),
        plural::count(r.lines, "line"),
        cell(&r.profile),
        r.errors,
        r.parsed
    );
    if !r.causes.is_empty() {
        let _ = writeln!(
            o,
            "| cause | lines | of errors | first | top URIs | top clients |\n|---|---:|---:|---|---|---|"
        );
        for c in &r.causes {
            let first = match (&c.first_time, &c.last_time) {
                (Some(f), Some(l)) => format!("{f} to {l}"),
                (Some(f), None) => f.clone(),
                _ => String::new(),
            };
            let _ = writeln!(
                o,
                "| `{}` {} | {} | {} | {} | {} | {} |",
                c.cause,
                cell(&c.title),
                c.count,
                pct(c.share),
                cell(&first),
                tops(&c.top_uris),
                tops(&c.top_clients)
            );
        }
        o.push('\n');
    }
    if !r.undecided.is_empty() {
        let _ = writeln!(
            o,
            "| may show any of | lines | of errors | to tell |\n|---|---:|---:|---|"
        );
        for u in &r.undecided {
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} |",
                u.causes
                    .iter()
                    .map(|c| format!("`{c}`"))
                    .collect::<Vec<_>>()
                    .join(" or "),
                u.count,
                pct(u.share),
                cell(&u.tell)
            );
        }
        o.push('\n');
    }
    if !r.unexplained.is_empty() {
        let _ = writeln!(
            o,
            "Error lines no documented cause explains: {}.\n",
            unexplained(r)
        );
    }
    if !r.not_computed.is_empty() {
        let _ = writeln!(
            o,
            "**Not computed by the SQL engine:** {}.\n",
            r.not_computed.join(", ")
        );
    }
    for n in &r.notes {
        let _ = writeln!(o, "- {}", cell(n));
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
    /// The causes the line may show when its fields cannot tell, and what would.
    pub either: Vec<String>,
    pub tell: Option<String>,
    pub rule: Option<String>,
    /// The reason joined from nginx's error.log, if any.
    pub error_log_reason: Option<String>,
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
            either: e
                .classification
                .and_then(|c| c.either)
                .map(|x| x.causes.iter().map(|c| c.to_string()).collect())
                .unwrap_or_default(),
            tell: e
                .classification
                .and_then(|c| c.either)
                .map(|x| x.tell.to_string()),
            rule: e.classification.map(|c| c.rule.to_string()),
            error_log_reason: e
                .facts
                .as_ref()
                .and_then(|f| f.reason)
                .map(|r| r.says().to_string()),
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
        if let Some(r) = f.reason {
            let _ = writeln!(o, "  error.log reason             {}", r.says());
        }
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
            None => match c.either {
                Some(e) => {
                    let _ = writeln!(
                        o,
                        "this line shows {}: its fields cannot tell which",
                        style.bold(&e.causes.join(" or "))
                    );
                    let _ = writeln!(o, "  to tell: {}", e.tell);
                }
                None => {
                    let _ = writeln!(o, "this line shows no documented cause");
                }
            },
        }
    }
    o
}
