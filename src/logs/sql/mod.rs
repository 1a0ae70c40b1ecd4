//! The log classifier as SQL: `lbprobe logs --emit-sql ENGINE` compiles the rules
//! ([`super::rules::RULES`], the list the native classifier reads) into one query over a table
//! of log lines, for the engines that hold the logs (DuckDB, ClickHouse, Trino/Athena,
//! PostgreSQL); `--sql-load ENGINE FILE…` prints the statements that load a log file into such
//! a table. Each engine's quirks (quoting, regular expressions, casts, time parsing, ordered
//! arrays) live in its own file behind [`Quirks`]; [`generate`] writes the query once for all.

mod clickhouse;
mod duckdb;
mod generate;
mod load;
mod postgres;
mod trino;

pub use generate::{emit, Columns};
pub use load::load;

use super::LogFormat;

/// The engines a query is written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    DuckDb,
    ClickHouse,
    /// Trino, and Amazon Athena (engine version 3 is Trino).
    Trino,
    Postgres,
}

/// The names `--emit-sql` and `--sql-load` take.
pub const ENGINE_NAMES: &[(&str, Engine)] = &[
    ("duckdb", Engine::DuckDb),
    ("clickhouse", Engine::ClickHouse),
    ("trino", Engine::Trino),
    ("athena", Engine::Trino),
    ("postgres", Engine::Postgres),
    ("postgresql", Engine::Postgres),
];

impl Engine {
    pub fn parse(name: &str) -> Result<Engine, SqlError> {
        let lower = name.to_ascii_lowercase();
        ENGINE_NAMES
            .iter()
            .find(|(n, _)| *n == lower)
            .map(|(_, e)| *e)
            .ok_or_else(|| SqlError::UnknownEngine(name.to_string()))
    }

    pub fn name(self) -> &'static str {
        match self {
            Engine::DuckDb => "DuckDB",
            Engine::ClickHouse => "ClickHouse",
            Engine::Trino => "Trino (Athena)",
            Engine::Postgres => "PostgreSQL",
        }
    }

    pub(crate) fn quirks(self) -> &'static dyn Quirks {
        match self {
            Engine::DuckDb => &duckdb::DuckDb,
            Engine::ClickHouse => &clickhouse::ClickHouse,
            Engine::Trino => &trino::Trino,
            Engine::Postgres => &postgres::Postgres,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SqlError {
    #[error("unknown SQL engine {0:?}: duckdb, clickhouse, trino (or athena), postgres")]
    UnknownEngine(String),
    #[error("--emit-sql and --sql-load read nginx log_format lines and the JSON export; {0}: HAProxy's log keeps its fields in one positional string with its own timers, not in columns")]
    Format(String),
    #[error("--table {0:?}: a table name is letters, digits, `_` and `.` (schema.table)")]
    Table(String),
    #[error("{engine} cannot load {what} with a statement of its own; {hint}")]
    CannotLoad {
        engine: &'static str,
        what: String,
        hint: &'static str,
    },
}

/// How an engine writes what the query needs. Every method returns SQL text.
pub(crate) trait Quirks: Sync {
    fn engine(&self) -> Engine;
    /// A quoted identifier (the standard's double quotes, doubled inside).
    fn ident(&self, name: &str) -> String {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
    /// A string literal.
    fn string(&self, s: &str) -> String {
        format!("'{}'", s.replace('\'', "''"))
    }
    /// Whether `re` matches anywhere in `x` (NULL for NULL).
    fn matches(&self, x: &str, re: &str) -> String;
    /// The first group of `re` in `x`, NULL where it does not match.
    fn extract(&self, x: &str, re: &str) -> String;
    /// `x` (text that passed a number's regex) as a double.
    fn double(&self, x: &str) -> String;
    /// `x` (three digits) as an integer.
    fn int(&self, x: &str) -> String;
    /// A double literal, exactly this value.
    fn double_lit(&self, v: f64) -> String;
    /// A value as text.
    fn text(&self, x: &str) -> String;
    fn concat(&self, a: &str, b: &str) -> String {
        format!("({a} || {b})")
    }
    /// `x` up to its first `?` (the whole of it without one).
    fn before_query(&self, x: &str) -> String {
        format!("split_part({x}, '?', 1)")
    }
    /// The first `n` characters.
    fn left(&self, x: &str, n: usize) -> String {
        format!("substr({x}, 1, {n})")
    }
    /// nginx's `$time_local` (`24/Nov/2025:19:29:01 +0000`) as a timestamp, NULL if not one.
    fn time_local(&self, x: &str) -> String;
    /// ISO 8601 (`2025-11-24T19:29:01+08:00`, the export's `time`, `$time_iso8601`).
    fn time_iso(&self, x: &str) -> String;
    /// nginx's `$msec` (`1764012541.123`, seconds since 1970).
    fn time_epoch(&self, x: &str) -> String;
    /// The values of `value` ordered by `order`, as an array, in an aggregate.
    fn ordered_array(&self, value: &str, order: &str) -> String;
    /// What makes a CTE read four times computed once (`MATERIALIZED `), where the engine
    /// has it.
    fn materialized(&self) -> &'static str {
        ""
    }
    /// A NULL of the text type, for a field the format does not have.
    fn null_text(&self) -> String {
        "CAST(NULL AS VARCHAR)".into()
    }
    /// A condition, FALSE where it is NULL.
    fn coalesce_false(&self, x: &str) -> String {
        format!("COALESCE({x}, FALSE)")
    }
    /// A double rounded to 4 places.
    fn round4(&self, x: &str) -> String {
        format!("round({x}, 4)")
    }
    /// A row count as a double, for the share.
    fn count_double(&self, x: &str) -> String {
        format!("CAST({x} AS DOUBLE)")
    }
    /// Why an atom cannot be written for this engine, if it cannot: the rules that need it are
    /// then marked not computed. Every atom can be written for the four engines today; the
    /// answer is here so that an engine that cannot is honest about it.
    fn cannot(&self, _atom: super::rules::Atom) -> Option<&'static str> {
        None
    }
    /// Notes for the query's header: what this engine does differently.
    fn notes(&self) -> &'static [&'static str];
}

/// The formats a query can be written for.
pub(crate) fn check_format(format: &LogFormat) -> Result<(), SqlError> {
    match format {
        LogFormat::Haproxy => Err(SqlError::Format(format.name())),
        _ => Ok(()),
    }
}

/// A table name as given: plain words, maybe schema-qualified.
pub(crate) fn check_table(table: &str) -> Result<(), SqlError> {
    let ok = !table.is_empty()
        && table.split('.').all(|p| {
            !p.is_empty()
                && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !p.starts_with(|c: char| c.is_ascii_digit())
        });
    if ok {
        Ok(())
    } else {
        Err(SqlError::Table(table.to_string()))
    }
}

/// The table name, each part quoted for the engine.
pub(crate) fn table_ident(q: &dyn Quirks, table: &str) -> String {
    table
        .split('.')
        .map(|p| q.ident(p))
        .collect::<Vec<_>>()
        .join(".")
}
