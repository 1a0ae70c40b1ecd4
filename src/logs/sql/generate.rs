//! The one query: the table's columns → each line's facts (as the native [`Facts::fill`] reads
//! them) → the first rule of [`RULES`] that holds → per cause: lines, share of error lines,
//! first and last time, top URIs and clients.
//!
//! [`Facts::fill`]: crate::logs::classify::Facts::fill

use std::fmt::Write as _;

use super::{check_format, check_table, table_ident, Quirks, SqlError};
use crate::logs::classify::{Timeouts, AT_TIMEOUT, HIGH_RTT_US};
use crate::logs::format::Field;
use crate::logs::record::Dialect;
use crate::logs::rules::{Atom, Limit, Rule, Timing, RULES};
use crate::logs::LogFormat;

/// How many top URIs and clients a cause's row carries (as the native report).
pub const TOP: usize = crate::report::logs::TOP;

/// A number as [`crate::logs::record::parse_number`] reads it: optional sign, digits with an
/// optional fraction, blanks around.
const NUMBER_RE: &str = r"^[ \t]*([+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+))[ \t]*$";
/// The last value of an upstream list (`502, 504 : 200` → `200`), as `last_upstream` finds it.
const LAST_RE: &str = r"([^,: \t](?:[^,:]*[^,: \t])?)[,: \t]*$";
/// Some try of an upstream list has a three-digit status.
const TRIED_RE: &str = r"(^|[,:])[ \t]*[0-9]{3}[ \t]*($|[,:])";
const LOCAL_RE: &str = r"^[0-9]{2}/[A-Z][a-z]{2}/[0-9]{4}:[0-9]{2}:[0-9]{2}:[0-9]{2} [+-][0-9]{4}$";
const ISO_RE: &str = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}";
const EPOCH_RE: &str = r"^[0-9]{9,11}(\.[0-9]+)?$";

/// The table's columns for the classifier's fields, for one log format: the nginx variables'
/// names for a `log_format`, the export's field names for `json`.
#[derive(Debug, Clone)]
pub struct Columns {
    dialect: Dialect,
    /// Per field: the column(s) it is read from (the first that is not NULL).
    fields: Vec<(Field, Vec<String>)>,
    /// Every column, in order, for the loaders.
    pub all: Vec<String>,
    /// The formats's fields are per line (a JSON key may be missing), not per format.
    per_line: bool,
}

/// The export's fields the classifier reads, and which.
pub(crate) const JSON_FIELDS: &[(&str, Field)] = &[
    ("time", Field::Time),
    ("client_ip", Field::Client),
    ("remote_addr", Field::Client),
    ("request", Field::Request),
    ("request_method", Field::Method),
    ("request_uri", Field::Uri),
    ("status", Field::Status),
    ("upstream_status", Field::UpstreamStatus),
    ("request_time", Field::RequestTime),
    ("upstream_response_time", Field::UpstreamResponseTime),
    ("upstream_connect_time", Field::UpstreamConnectTime),
    ("upstream_header_time", Field::UpstreamHeaderTime),
    ("body_bytes_sent", Field::BytesSent),
    ("request_length", Field::RequestLength),
    ("tcpinfo_rtt", Field::TcpinfoRtt),
    ("upstream_addr", Field::UpstreamAddr),
    ("upstream_bytes_received", Field::UpstreamBytesReceived),
    ("scheme", Field::Scheme),
    ("ssl_protocol", Field::SslProtocol),
];

impl Columns {
    pub fn of(format: &LogFormat) -> Result<Columns, SqlError> {
        check_format(format)?;
        let mut fields: Vec<(Field, Vec<String>)> = Vec::new();
        let mut add = |field: Field, col: &str, first_only: bool| {
            if field == Field::Other {
                return;
            }
            match fields.iter_mut().find(|(f, _)| *f == field) {
                Some((_, cols)) if !first_only => cols.push(col.to_string()),
                Some(_) => {}
                None => fields.push((field, vec![col.to_string()])),
            }
        };
        let (dialect, all, per_line) = match format {
            LogFormat::Nginx { format, .. } => {
                let mut all: Vec<String> = Vec::new();
                for (name, field, _, _) in format.variables() {
                    // A variable logged twice is one column; the parser keeps the last value,
                    // the same value nginx wrote twice.
                    if !all.iter().any(|a| a == name) {
                        all.push(name.to_string());
                    }
                    add(field, name, true);
                }
                (Dialect::Nginx, all, false)
            }
            LogFormat::Json => {
                for (name, field) in JSON_FIELDS {
                    add(*field, name, false);
                }
                let all = JSON_FIELDS.iter().map(|(n, _)| n.to_string()).collect();
                (Dialect::Export, all, true)
            }
            LogFormat::Haproxy => unreachable!("check_format refuses it"),
        };
        Ok(Columns {
            dialect,
            fields,
            all,
            per_line,
        })
    }

    fn cols(&self, field: Field) -> Option<&[String]> {
        self.fields
            .iter()
            .find(|(f, _)| *f == field)
            .map(|(_, c)| c.as_slice())
    }
}

/// A condition: constant where the format decides it, else SQL.
#[derive(Debug, Clone, PartialEq)]
enum B {
    T,
    F,
    E(String),
}

impl B {
    fn and(parts: impl IntoIterator<Item = B>) -> B {
        let mut sql = Vec::new();
        for p in parts {
            match p {
                B::F => return B::F,
                B::T => {}
                B::E(s) => sql.push(s),
            }
        }
        if sql.is_empty() {
            B::T
        } else {
            B::E(sql.join(" AND "))
        }
    }

    fn not(self) -> B {
        match self {
            B::T => B::F,
            B::F => B::T,
            B::E(s) => B::E(format!("NOT {s}")),
        }
    }

    fn sql(&self) -> String {
        match self {
            B::T => "TRUE".into(),
            B::F => "FALSE".into(),
            B::E(s) => s.clone(),
        }
    }
}

/// The query for `engine` over `table` of lines in `format`, with the profile's timeouts.
pub fn emit(
    engine: super::Engine,
    format: &LogFormat,
    table: &str,
    timeouts: &Timeouts,
    profile: &str,
) -> Result<String, SqlError> {
    emit_with(engine.quirks(), format, table, timeouts, profile)
}

/// [`emit`] with an engine's quirks given: a test's engine that cannot write an atom proves
/// the rules that need it come out as not computed.
pub(crate) fn emit_with(
    q: &dyn Quirks,
    format: &LogFormat,
    table: &str,
    timeouts: &Timeouts,
    profile: &str,
) -> Result<String, SqlError> {
    check_table(table)?;
    let cols = Columns::of(format)?;
    let g = Gen {
        q,
        cols: &cols,
        t: timeouts,
    };
    let mut o = String::new();
    let _ = writeln!(
        o,
        "-- lbprobe logs --emit-sql: the access-log classifier for {}, over {} lines ({}),",
        q.engine().name(),
        format.name(),
        if cols.per_line {
            "the export's field names as columns"
        } else {
            "the log_format variables as columns"
        }
    );
    let _ = writeln!(
        o,
        "-- compared with the timeouts of {profile}; generated from the same rules as the native classifier."
    );
    let _ = writeln!(o, "-- One row per cause: a cause id, `A or B` (the line's fields cannot tell them apart), or unexplained.STATUS.");
    let _ = writeln!(o, "-- Not here: nginx's error.log (the native --error-log), which no table of access-log lines holds.");
    for n in q.notes() {
        let _ = writeln!(o, "-- {n}");
    }
    let mut not_computed = Vec::new();
    let mut whens = Vec::new();
    for rule in &RULES.list {
        match g.rule(rule) {
            Ok(B::F) => {}
            Ok(cond) => whens.push(format!(
                "    WHEN {} THEN {}",
                cond.sql(),
                q.string(rule.then.id().unwrap_or("-"))
            )),
            Err(why) => {
                let id = rule.then.id().unwrap_or("-");
                not_computed.push(format!(
                    "-- NOT COMPUTED on {}: {id} ({}): {why}",
                    q.engine().name(),
                    rule.text
                ));
                // Whether the rule holds cannot be told: every line that comes this far is
                // counted as not computed, never as another cause.
                let statuses = B::and(rule.when.iter().filter_map(|l| match l.atom {
                    Atom::Status(_) => Some(g.lit(l.atom, l.holds).unwrap_or(B::T)),
                    _ => None,
                }));
                whens.push(format!(
                    "    WHEN {} THEN {}",
                    statuses.sql(),
                    q.string(&format!("not computed: {id}"))
                ));
            }
        }
    }
    for n in &not_computed {
        let _ = writeln!(o, "{n}");
    }
    let table = table_ident(q, table);
    let _ = writeln!(o, "WITH");
    let _ = writeln!(o, "src AS (\n  SELECT\n{}\n  FROM {table}\n),", g.src());
    // Only error lines are classified: the filter comes first, so the rest of the work is
    // theirs alone (as natively).
    let _ = writeln!(
        o,
        "toks AS (\n  SELECT\n{}\n  FROM src\n  WHERE {}\n),",
        g.toks(),
        q.matches("r_status", &q.string("^[4-9][0-9]{2}$"))
    );
    let _ = writeln!(o, "facts AS (\n  SELECT\n{}\n  FROM toks\n),", g.facts());
    let _ = writeln!(
        o,
        "errors AS (\n  SELECT * FROM facts WHERE f_status >= 400\n),"
    );
    let _ = writeln!(
        o,
        "classified AS (\n  SELECT f_status, f_uri, f_client, f_ts, f_no_tries,\n  CASE\n{}\n  END AS f_rule\n  FROM errors\n),",
        whens.join("\n")
    );
    // The whole input's conclusion (Summary::finish): 503s without an upstream in a log where
    // no line reached any backend are the listener having none, not a limit; never nginx's,
    // which answers 502 when it has no server to try.
    let no_backends = if cols.dialect == Dialect::Nginx {
        String::new()
    } else {
        "    WHEN f_rule = '503.rate-limited' AND (SELECT count(*) FROM classified WHERE NOT f_no_tries) = 0 THEN '503.no-backends'\n".to_string()
    };
    let _ = writeln!(
        o,
        "named AS {}(\n  SELECT f_uri, f_client, f_ts,\n  CASE\n    WHEN f_rule = '-' THEN {}\n{no_backends}    ELSE f_rule\n  END AS cause\n  FROM classified\n),",
        q.materialized(),
        q.concat(&q.string("unexplained."), &q.text("f_status"))
    );
    for (name, col) in [("uri", "f_uri"), ("client", "f_client")] {
        let _ = writeln!(
            o,
            "{name}_counts AS (\n  SELECT cause, {col} AS value, count(*) AS n FROM named WHERE {col} IS NOT NULL GROUP BY cause, {col}\n),"
        );
        let _ = writeln!(
            o,
            "{name}_ranks AS (\n  SELECT cause, value, n, row_number() OVER (PARTITION BY cause ORDER BY n DESC, value) AS rn FROM {name}_counts\n),"
        );
        let _ = writeln!(
            o,
            "{name}_tops AS (\n  SELECT cause, {} AS top_{name}s, {} AS top_{name}_counts FROM {name}_ranks WHERE rn <= {TOP} GROUP BY cause\n),",
            q.ordered_array("value", "rn"),
            q.ordered_array("n", "rn")
        );
    }
    let _ = writeln!(
        o,
        "totals AS (\n  SELECT cause, count(*) AS lines, min(f_ts) AS first_ts, max(f_ts) AS last_ts FROM named GROUP BY cause\n)"
    );
    let _ = writeln!(
        o,
        "SELECT\n  t.cause AS cause,\n  t.lines AS lines,\n  {} AS share,\n  {} AS first_time,\n  {} AS last_time,\n  u.top_uris AS top_uris,\n  u.top_uri_counts AS top_uri_counts,\n  c.top_clients AS top_clients,\n  c.top_client_counts AS top_client_counts\nFROM totals t\nLEFT JOIN uri_tops u ON u.cause = t.cause\nLEFT JOIN client_tops c ON c.cause = t.cause\nORDER BY t.lines DESC, t.cause;",
        q.round4(&format!(
            "{} / {}",
            q.count_double("t.lines"),
            q.count_double("(SELECT count(*) FROM named)")
        )),
        q.text("t.first_ts"),
        q.text("t.last_ts"),
    );
    Ok(o)
}

struct Gen<'a> {
    q: &'a dyn Quirks,
    cols: &'a Columns,
    t: &'a Timeouts,
}

impl Gen<'_> {
    /// The raw column of a field (the first of several that is not NULL), or NULL.
    fn raw(&self, field: Field) -> Option<String> {
        let cols = self.cols.cols(field)?;
        let quoted: Vec<String> = cols.iter().map(|c| self.q.ident(c)).collect();
        Some(if quoted.len() == 1 {
            quoted[0].clone()
        } else {
            format!("COALESCE({})", quoted.join(", "))
        })
    }

    /// Whether the format logs the field: a constant for a log_format, per line for JSON.
    fn logged(&self, field: Field) -> B {
        match self.raw(field) {
            None => B::F,
            Some(_) if !self.cols.per_line => B::T,
            Some(c) => B::E(format!("({c} IS NOT NULL)")),
        }
    }

    fn src(&self) -> String {
        let mut out = Vec::new();
        for (field, name) in [
            (Field::Status, "r_status"),
            (Field::UpstreamStatus, "r_us"),
            (Field::RequestTime, "r_rt"),
            (Field::UpstreamResponseTime, "r_urt"),
            (Field::UpstreamConnectTime, "r_uct"),
            (Field::UpstreamHeaderTime, "r_uht"),
            (Field::Request, "r_request"),
            (Field::Method, "r_method"),
            (Field::Uri, "r_uri"),
            (Field::Client, "r_client"),
            (Field::Time, "r_time"),
            (Field::BytesSent, "r_bs"),
            (Field::RequestLength, "r_rl"),
            (Field::TcpinfoRtt, "r_rtt"),
            (Field::UpstreamAddr, "r_addr"),
            (Field::UpstreamBytesReceived, "r_ubr"),
            (Field::Scheme, "r_scheme"),
            (Field::SslProtocol, "r_ssl"),
        ] {
            let v = self.raw(field).unwrap_or_else(|| self.q.null_text());
            out.push(format!("    {v} AS {name}"));
        }
        for (field, name) in [
            (Field::UpstreamStatus, "l_us"),
            (Field::UpstreamConnectTime, "l_uct"),
            (Field::UpstreamHeaderTime, "l_uht"),
            (Field::UpstreamAddr, "l_addr"),
        ] {
            out.push(format!("    {} AS {name}", self.logged(field).sql()));
        }
        out.join(",\n")
    }

    fn last(&self, col: &str) -> String {
        self.q.extract(col, &self.q.string(LAST_RE))
    }

    fn toks(&self) -> String {
        let q = self.q;
        let re = |s: &str| q.string(s);
        let method = match (self.raw(Field::Method), self.raw(Field::Request)) {
            (Some(_), _) => "r_method".to_string(),
            (None, Some(_)) => q.extract("r_request", &re("^([^ ]*) ")),
            (None, None) => "r_method".to_string(),
        };
        let uri = match (self.raw(Field::Uri), self.raw(Field::Request)) {
            (Some(_), _) => "r_uri".to_string(),
            (None, Some(_)) => q.extract("r_request", &re("^[^ ]* ([^ ]+)")),
            (None, None) => "r_uri".to_string(),
        };
        let time = format!(
            "CASE WHEN {} THEN {} WHEN {} THEN {} WHEN {} THEN {} END",
            q.matches("r_time", &re(LOCAL_RE)),
            q.time_local("r_time"),
            q.matches("r_time", &re(ISO_RE)),
            q.time_iso("r_time"),
            q.matches("r_time", &re(EPOCH_RE)),
            q.time_epoch("r_time"),
        );
        let mut v = vec![
            format!(
                "    CASE WHEN {} THEN {} END AS f_status",
                q.matches("r_status", &re("^[0-9]{3}$")),
                q.int("r_status")
            ),
            format!("    {} AS t_us", self.last("r_us")),
            format!(
                "    {} AS f_tried",
                q.coalesce_false(&q.matches("r_us", &re(TRIED_RE)))
            ),
            format!("    {} AS t_urt", self.last("r_urt")),
            format!("    {} AS t_uct", self.last("r_uct")),
            format!("    {} AS t_uht", self.last("r_uht")),
            format!("    {} AS t_ubr", self.last("r_ubr")),
            format!(
                "    {} AS t_addr",
                q.extract("r_addr", &re(r"([^ \t]+)[ \t]*$"))
            ),
            format!("    {method} AS t_method"),
            format!(
                "    {} AS f_uri",
                q.left(&q.before_query(&uri), crate::logs::summary::MAX_KEY)
            ),
            format!(
                "    {} AS f_client",
                q.left("r_client", crate::logs::summary::MAX_KEY)
            ),
            format!("    {time} AS f_ts"),
            "    r_rt, r_bs, r_rl, r_rtt, r_scheme, r_ssl, r_uct, r_uht, r_addr, r_us".to_string(),
        ];
        v.push("    l_us, l_uct, l_uht, l_addr".to_string());
        v.join(",\n")
    }

    /// A number as the native parse reads it, NULL for `-` and anything else.
    fn num(&self, x: &str) -> String {
        let q = self.q;
        format!(
            "CASE WHEN {} THEN {} END",
            q.matches(x, &q.string(NUMBER_RE)),
            q.double(&q.extract(x, &q.string(NUMBER_RE)))
        )
    }

    fn facts(&self) -> String {
        let q = self.q;
        let s = |x: &str| q.string(x);
        let dash = |x: &str| format!("({x} IS NULL OR {x} = '-')");
        let nginx = self.cols.dialect == Dialect::Nginx;
        let v = [
            "    f_status, f_uri, f_client, f_ts, l_us, l_uct, l_uht, l_addr".to_string(),
            "    NOT f_tried AS f_no_tries".to_string(),
            format!("    {} AS f_last_dash", q.coalesce_false("t_us = '-'")),
            format!(
                "    CASE WHEN {} THEN {} END AS f_up_last",
                q.matches("t_us", &s("^[0-9]{3}$")),
                q.int("t_us")
            ),
            format!(
                "    {} AS f_trace",
                q.coalesce_false(&format!("t_method = {}", s("TRACE")))
            ),
            format!("    {} AS f_rt", self.num("r_rt")),
            format!("    {} AS f_urt", self.num("t_urt")),
            format!("    {} AS f_uct", self.num("t_uct")),
            format!("    {} AS f_bs", self.num("r_bs")),
            format!("    {} AS f_rl", self.num("r_rl")),
            format!("    {} AS f_rtt", self.num("r_rtt")),
            format!("    {} AS f_ubr", self.num("t_ubr")),
            format!(
                "    {} AS f_connect_failed",
                q.coalesce_false(&format!("r_uct IS NOT NULL AND {}", dash("t_uct")))
            ),
            format!(
                "    {} AS f_no_header",
                q.coalesce_false(&format!("r_uht IS NOT NULL AND {}", dash("t_uht")))
            ),
            format!(
                "    {} AS f_plain_tls",
                q.coalesce_false(
                    "r_scheme = 'https' AND r_ssl IS NOT NULL AND (r_ssl = '-' OR r_ssl = '')"
                )
            ),
            // Read for nginx's 502s only, the one status it decides.
            if nginx {
                format!(
                    "    {} AS f_no_live",
                    q.coalesce_false(&format!(
                        "{} = 502 AND r_addr IS NOT NULL AND NOT {} AND NOT {}",
                        "f_status",
                        dash("t_addr"),
                        q.coalesce_false(&q.matches("t_addr", &s(":")))
                    ))
                )
            } else {
                "    FALSE AS f_no_live".to_string()
            },
        ];
        v.join(",\n")
    }

    /// A rule's condition, or why this engine cannot write it.
    fn rule(&self, rule: &Rule) -> Result<B, &'static str> {
        let mut parts = Vec::new();
        for l in &rule.when {
            parts.push(self.lit(l.atom, l.holds)?);
        }
        Ok(B::and(parts))
    }

    fn lit(&self, atom: Atom, holds: bool) -> Result<B, &'static str> {
        if let Some(why) = self.q.cannot(atom) {
            return Err(why);
        }
        let b = self.atom(atom);
        Ok(if holds { b } else { b.not() })
    }

    fn at(&self, col: &str, timeout: f64) -> B {
        if timeout > 0.0 && timeout.is_finite() {
            B::E(self.q.coalesce_false(&format!(
                "{col} >= {}",
                self.q.double_lit(timeout * AT_TIMEOUT)
            )))
        } else {
            B::F
        }
    }

    fn atom(&self, a: Atom) -> B {
        let q = self.q;
        let e = |s: &str| B::E(s.to_string());
        match a {
            Atom::Status(c) => B::E(format!("f_status = {c}")),
            Atom::Dialect(d) => {
                if d == self.cols.dialect {
                    B::T
                } else {
                    B::F
                }
            }
            Atom::UpstreamLogged => self.logged_col(Field::UpstreamStatus, "l_us"),
            Atom::HeaderLogged => self.logged_col(Field::UpstreamHeaderTime, "l_uht"),
            Atom::ConnectLogged => self.logged_col(Field::UpstreamConnectTime, "l_uct"),
            Atom::AddrLogged => self.logged_col(Field::UpstreamAddr, "l_addr"),
            Atom::NoTries => e("f_no_tries"),
            Atom::LastTryDash => e("f_last_dash"),
            Atom::LastIs(c) => e(&q.coalesce_false(&format!("f_up_last = {c}"))),
            Atom::LastIsStatus => e(&q.coalesce_false("f_up_last = f_status")),
            Atom::MethodTrace => e("f_trace"),
            Atom::RequestLengthAboveLimit => {
                if self.t.max_header_bytes == u64::MAX {
                    B::F
                } else {
                    // `n as u64 > max`: the integer part above the limit.
                    e(&q.coalesce_false(&format!(
                        "f_rl >= {}",
                        q.double_lit(self.t.max_header_bytes as f64 + 1.0)
                    )))
                }
            }
            // `n as u64 == 0`: below 1 (negative numbers saturate to 0).
            Atom::RequestLengthZero => e(&q.coalesce_false("f_rl < 1")),
            Atom::PlainOnTls => e("f_plain_tls"),
            Atom::BytesSentZero => e(&q.coalesce_false("f_bs < 1")),
            Atom::HighRtt => {
                e(&q.coalesce_false(&format!("f_rtt >= {}", q.double_lit(HIGH_RTT_US))))
            }
            Atom::WaitedForBackend => e(&q.coalesce_false(&format!(
                "f_rt > 0 AND f_urt >= f_rt * {}",
                q.double_lit(0.9)
            ))),
            Atom::At(timing, limit) => {
                let col = match timing {
                    Timing::Request => "f_rt",
                    Timing::UpstreamResponse => "f_urt",
                    Timing::UpstreamConnect => "f_uct",
                };
                let t = match limit {
                    Limit::Connect => self.t.connect,
                    Limit::Response => self.t.response,
                };
                self.at(col, t)
            }
            Atom::UrtBelowResponse => {
                if self.t.response.is_finite() {
                    e(&q.coalesce_false(&format!(
                        "f_urt < {}",
                        q.double_lit(self.t.response * AT_TIMEOUT)
                    )))
                } else {
                    e("(f_urt IS NOT NULL)")
                }
            }
            Atom::UctMissing => e("(f_uct IS NULL)"),
            Atom::UrtMissing => e("(f_urt IS NULL)"),
            Atom::ConnectFailed => e("f_connect_failed"),
            Atom::NoResponseHeader => e("f_no_header"),
            Atom::NoLiveUpstream => e("f_no_live"),
            Atom::BytesReceivedZero => e(&q.coalesce_false("f_ubr < 1")),
            Atom::BytesReceivedMissing => e("(f_ubr IS NULL)"),
            // HAProxy's own fields: no table format here has them.
            Atom::HasTermination | Atom::Termination(_) | Atom::NoServer => B::F,
        }
    }

    fn logged_col(&self, field: Field, col: &str) -> B {
        match self.logged(field) {
            B::E(_) => B::E(col.to_string()),
            b => b,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::sql::{duckdb::DuckDb, Engine};

    /// DuckDB, but unable to write one atom: the round-trip time.
    struct NoRtt;

    impl Quirks for NoRtt {
        fn engine(&self) -> Engine {
            Engine::DuckDb
        }
        fn ident(&self, n: &str) -> String {
            DuckDb.ident(n)
        }
        fn matches(&self, x: &str, re: &str) -> String {
            DuckDb.matches(x, re)
        }
        fn extract(&self, x: &str, re: &str) -> String {
            DuckDb.extract(x, re)
        }
        fn double(&self, x: &str) -> String {
            DuckDb.double(x)
        }
        fn int(&self, x: &str) -> String {
            DuckDb.int(x)
        }
        fn double_lit(&self, v: f64) -> String {
            DuckDb.double_lit(v)
        }
        fn text(&self, x: &str) -> String {
            DuckDb.text(x)
        }
        fn before_query(&self, x: &str) -> String {
            DuckDb.before_query(x)
        }
        fn time_local(&self, x: &str) -> String {
            DuckDb.time_local(x)
        }
        fn time_iso(&self, x: &str) -> String {
            DuckDb.time_iso(x)
        }
        fn time_epoch(&self, x: &str) -> String {
            DuckDb.time_epoch(x)
        }
        fn ordered_array(&self, v: &str, o: &str) -> String {
            DuckDb.ordered_array(v, o)
        }
        fn cannot(&self, atom: Atom) -> Option<&'static str> {
            (atom == Atom::HighRtt).then_some("this engine has no way to read tcpinfo_rtt")
        }
        fn notes(&self) -> &'static [&'static str] {
            &[]
        }
    }

    fn timeouts() -> Timeouts {
        Timeouts {
            connect: 5.0,
            response: 60.0,
            request: 60.0,
            max_header_bytes: 32768,
        }
    }

    /// A rule an engine cannot write says so in a comment, and the lines that reach it are
    /// counted as not computed, never as the causes after it.
    #[test]
    fn a_rule_an_engine_cannot_write_is_not_computed() {
        let sql = emit_with(&NoRtt, &LogFormat::Json, "t", &timeouts(), "clb").unwrap();
        assert!(
            sql.contains("-- NOT COMPUTED on DuckDB: 408.network-rtt-loss (408 with a tcpinfo_rtt above 200 ms: the client's network is slow or lossy): this engine has no way to read tcpinfo_rtt"),
            "{sql}"
        );
        assert!(
            sql.contains("WHEN f_status = 408 THEN 'not computed: 408.network-rtt-loss'"),
            "{sql}"
        );
        // The 408s go no further: the partial-request rule after it is never their answer.
        let at = sql.find("'not computed: 408.network-rtt-loss'").unwrap();
        assert!(sql[at..].contains("'408.partial-request'"));
        let full = emit_with(&DuckDb, &LogFormat::Json, "t", &timeouts(), "clb").unwrap();
        assert!(!full.contains("not computed"), "{full}");
    }

    /// What a format does not log is a constant: no rule reads a column that is not there.
    #[test]
    fn fields_a_format_lacks_fold_away() {
        let combined = LogFormat::parse("combined").unwrap();
        let sql = emit_with(&DuckDb, &combined, "logs.access", &timeouts(), "nginx").unwrap();
        assert!(sql.contains("FROM \"logs\".\"access\""), "{sql}");
        assert!(!sql.contains("\"upstream_status\""), "{sql}");
        // Every 502 of combined is undecided: its rule is the first 502 rule left.
        assert!(
            sql.contains("WHEN f_status = 502 THEN '502.passthrough or 502.backend-unreachable"),
            "{sql}"
        );
    }
}
