//! `lbprobe logs --from-sql-result FILE`: the rows of the `--emit-sql` query, as an engine wrote
//! them (CSV with a header, a JSON array of objects, or JSON lines), read back into the
//! report the native classifier makes, so a person reads the same thing whichever engine ran
//! it. What the rows do not carry (line numbers, statuses, buckets, bad lines) is left out,
//! never made up; causes an engine could not compute are listed as not computed.

use serde_json::Value;

use super::logs::{LogsReport, Top, UndecidedRow};
use crate::logs::rules::either_named;

#[derive(Debug, thiserror::Error)]
pub enum SqlResultError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: not the rows of lbprobe's --emit-sql query: {why}")]
    Shape { path: String, why: String },
    #[error("{path}, row {row}: {why}")]
    Row {
        path: String,
        row: usize,
        why: String,
    },
}

/// One row of the query.
#[derive(Debug, Clone, PartialEq)]
pub struct SqlRow {
    pub cause: String,
    pub lines: u64,
    pub first_time: Option<String>,
    pub last_time: Option<String>,
    pub top_uris: Vec<Top>,
    pub top_clients: Vec<Top>,
}

/// The prefix of a row whose cause the engine could not compute.
pub const NOT_COMPUTED: &str = "not computed: ";

/// Read the rows of `text` (from `path`, for messages): JSON when it starts with `[` or `{`,
/// else CSV with a header.
pub fn read_rows(path: &str, text: &str) -> Result<Vec<SqlRow>, SqlResultError> {
    let trimmed = text.trim_start();
    let objects: Vec<serde_json::Map<String, Value>> = if trimmed.starts_with('[') {
        serde_json::from_str(trimmed).map_err(|e| SqlResultError::Shape {
            path: path.into(),
            why: format!("a JSON array of objects was expected: {e}"),
        })?
    } else if trimmed.starts_with('{') {
        trimmed
            .lines()
            .filter(|l| !l.trim().is_empty())
            .enumerate()
            .map(|(i, l)| {
                serde_json::from_str(l).map_err(|e| SqlResultError::Row {
                    path: path.into(),
                    row: i + 1,
                    why: format!("not a JSON object: {e}"),
                })
            })
            .collect::<Result<_, _>>()?
    } else {
        csv_objects(path, text)?
    };
    objects
        .into_iter()
        .enumerate()
        .map(|(i, o)| {
            row(&o).map_err(|why| SqlResultError::Row {
                path: path.into(),
                row: i + 1,
                why,
            })
        })
        .collect()
}

fn csv_objects(
    path: &str,
    text: &str,
) -> Result<Vec<serde_json::Map<String, Value>>, SqlResultError> {
    let shape = |why: String| SqlResultError::Shape {
        path: path.into(),
        why,
    };
    let mut r = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(text.as_bytes());
    let headers: Vec<String> = r
        .headers()
        .map_err(|e| shape(format!("no CSV header: {e}")))?
        .iter()
        .map(|h| h.trim().to_string())
        .collect();
    if !headers.iter().any(|h| h == "cause") {
        return Err(shape(format!(
            "the header has no `cause` column (it has {})",
            headers.join(", ")
        )));
    }
    let mut out = Vec::new();
    for (i, rec) in r.records().enumerate() {
        let rec = rec.map_err(|e| SqlResultError::Row {
            path: path.into(),
            row: i + 1,
            why: format!("not a CSV row: {e}"),
        })?;
        let mut o = serde_json::Map::new();
        for (h, v) in headers.iter().zip(rec.iter()) {
            let v = if v.is_empty() || v.eq_ignore_ascii_case("null") {
                Value::Null
            } else {
                Value::String(v.to_string())
            };
            o.insert(h.clone(), v);
        }
        out.push(o);
    }
    Ok(out)
}

fn text_of(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

fn count_of(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn row(o: &serde_json::Map<String, Value>) -> Result<SqlRow, String> {
    let cause = text_of(o.get("cause")).ok_or("no cause")?;
    let lines = match o.get("lines") {
        None | Some(Value::Null) => return Err(format!("{cause}: no `lines`")),
        Some(v) => count_of(v).ok_or_else(|| format!("{cause}: `lines` is not a count"))?,
    };
    let tops = |values: &str, counts: &str| -> Result<Vec<Top>, String> {
        let v = list(o.get(values));
        let n = list(o.get(counts));
        if !n.is_empty() && n.len() != v.len() {
            return Err(format!(
                "{cause}: {values} has {} values and {counts} {}",
                v.len(),
                n.len()
            ));
        }
        Ok(v.into_iter()
            .enumerate()
            .map(|(i, value)| Top {
                value,
                count: n.get(i).and_then(|c| c.trim().parse().ok()).unwrap_or(0),
            })
            .collect())
    };
    Ok(SqlRow {
        lines,
        first_time: text_of(o.get("first_time")),
        last_time: text_of(o.get("last_time")),
        top_uris: tops("top_uris", "top_uri_counts")?,
        top_clients: tops("top_clients", "top_client_counts")?,
        cause,
    })
}

/// An array as an engine writes it: JSON (`["a","b"]`), DuckDB's CSV (`[a, b]`), ClickHouse's
/// (`['a','b']`), PostgreSQL's (`{a,"b c"}`). Values with commas survive JSON and
/// PostgreSQL's quoting only.
fn list(v: Option<&Value>) -> Vec<String> {
    match v {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| text_of(Some(x)).unwrap_or_default())
            .collect(),
        Some(Value::String(s)) => {
            let s = s.trim();
            if let Ok(Value::Array(a)) = serde_json::from_str::<Value>(s) {
                return list(Some(&Value::Array(a)));
            }
            let inner = match (s.chars().next(), s.chars().last()) {
                (Some('['), Some(']')) | (Some('{'), Some('}')) => &s[1..s.len() - 1],
                _ => s,
            };
            if inner.trim().is_empty() {
                return Vec::new();
            }
            split_items(inner)
        }
        Some(other) => vec![other.to_string()],
    }
}

/// Items separated by commas, each maybe in single or double quotes (with `\` escapes).
fn split_items(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(_), '\\') => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            (Some(q), c) if c == q => quote = None,
            (None, '"' | '\'') if cur.trim().is_empty() => {
                cur.clear();
                quote = Some(c);
            }
            (None, ',') => out.push(std::mem::take(&mut cur).trim().to_string()),
            (_, c) => cur.push(c),
        }
    }
    out.push(cur.trim().to_string());
    out
}

impl LogsReport {
    /// The report of the query's rows: `source` says which file (and so which engine) they
    /// came from.
    pub fn from_sql(
        rows: &[SqlRow],
        source: String,
        format: String,
        profile: &crate::profile::Profile,
    ) -> LogsReport {
        let errors: u64 = rows.iter().map(|r| r.lines).sum();
        let share = |n: u64| {
            if errors == 0 {
                0.0
            } else {
                (n as f64 / errors as f64 * 10_000.0).round() / 10_000.0
            }
        };
        let cat = crate::catalogue::Catalogue::builtin();
        let mut r = LogsReport::empty(format, profile, vec![source]);
        r.errors = errors;
        for row in rows {
            if let Some(id) = row.cause.strip_prefix(NOT_COMPUTED) {
                r.not_computed.push(id.to_string());
                continue;
            }
            if let Some(status) = row.cause.strip_prefix("unexplained.") {
                if let Ok(status) = status.parse() {
                    r.unexplained.push(super::logs::StatusRow {
                        status,
                        count: row.lines,
                        share: share(row.lines),
                    });
                    continue;
                }
            }
            if let Some(e) = either_named(&row.cause) {
                r.undecided.push(UndecidedRow {
                    causes: e.causes.iter().map(|c| c.to_string()).collect(),
                    count: row.lines,
                    share: share(row.lines),
                    by_status: Vec::new(),
                    first_line: 0,
                    first_time: row.first_time.clone(),
                    tell: e.tell.to_string(),
                    top_uris: row.top_uris.clone(),
                });
                continue;
            }
            let cause = cat.get(&row.cause);
            r.causes.push(super::logs::CauseRow {
                cause: row.cause.clone(),
                title: cause.map(|c| c.title.clone()).unwrap_or_default(),
                count: row.lines,
                share: share(row.lines),
                by_status: Vec::new(),
                first_line: 0,
                first_time: row.first_time.clone(),
                last_time: row.last_time.clone(),
                bucket_minutes: 0,
                buckets: Vec::new(),
                top_uris: row.top_uris.clone(),
                top_clients: row.top_clients.clone(),
                top_backends: Vec::new(),
                top_approximate: false,
                waited: None,
                timeout: None,
                fix: cause.map(|c| c.remediation.clone()).unwrap_or_default(),
            });
        }
        r.causes
            .sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.cause.cmp(&b.cause)));
        r.undecided
            .sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.causes.cmp(&b.causes)));
        r.unexplained.sort_by_key(|s| s.status);
        if !r.not_computed.is_empty() {
            r.notes.push(format!(
                "the engine could not compute {}: the query says why in its comments; those lines are not counted under any cause",
                r.not_computed.join(", ")
            ));
        }
        r.notes.push("read from the rows of the --emit-sql query: line numbers, statuses, time buckets and bad lines are not in them".into());
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrays_of_every_engine_read_alike() {
        let want = vec!["/a".to_string(), "/b c".to_string()];
        for s in [
            r#"["/a","/b c"]"#,
            "[/a, /b c]",
            "['/a','/b c']",
            r#"{/a,"/b c"}"#,
        ] {
            assert_eq!(list(Some(&Value::String(s.into()))), want, "{s}");
        }
        assert!(list(Some(&Value::String("[]".into()))).is_empty());
        assert!(list(Some(&Value::String("{}".into()))).is_empty());
    }

    #[test]
    fn csv_and_json_rows_read_alike() {
        let csv = "cause,lines,share,first_time,last_time,top_uris,top_uri_counts,top_clients,top_client_counts\n\
                   504.backend-slow,3,0.75,2025-11-24 19:29:01+00,2025-11-24 19:30:01+00,\"[/a, /b]\",\"[2, 1]\",[10.0.0.1],[3]\n\
                   not computed: 499.network-rtt-loss,1,0.25,,,[],[],[],[]\n";
        let json = r#"[{"cause":"504.backend-slow","lines":3,"share":0.75,"first_time":"2025-11-24 19:29:01+00","last_time":"2025-11-24 19:30:01+00","top_uris":["/a","/b"],"top_uri_counts":[2,1],"top_clients":["10.0.0.1"],"top_client_counts":["3"]},
                       {"cause":"not computed: 499.network-rtt-loss","lines":"1","share":0.25,"first_time":null,"last_time":null,"top_uris":[],"top_uri_counts":[],"top_clients":[],"top_client_counts":[]}]"#;
        let a = read_rows("a.csv", csv).unwrap();
        let b = read_rows("b.json", json).unwrap();
        assert_eq!(a, b);
        assert_eq!(a[0].top_uris[0].count, 2);
        let r = LogsReport::from_sql(
            &a,
            "a.csv".into(),
            "nginx upstream".into(),
            &crate::profile::Profile::none(),
        );
        assert_eq!(r.errors, 4);
        assert_eq!(r.causes.len(), 1);
        assert_eq!(r.not_computed, vec!["499.network-rtt-loss".to_string()]);
    }

    #[test]
    fn rows_without_counts_are_refused() {
        let e = read_rows("x.csv", "cause,share\n504.backend-slow,1\n").unwrap_err();
        assert_eq!(e.to_string(), "x.csv, row 1: 504.backend-slow: no `lines`");
        let e = read_rows("x.csv", "a,b\n1,2\n").unwrap_err();
        assert!(e.to_string().contains("no `cause` column"), "{e}");
    }
}
