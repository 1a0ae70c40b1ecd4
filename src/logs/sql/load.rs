//! `lbprobe logs --sql-load ENGINE FILE…`: the statements that load log files into a table of
//! the columns the query reads, for trying it locally. Every column is text, as the native
//! parser keeps every value raw. An nginx line is split by one regular expression made from its
//! `log_format` (a variable's value runs to the first occurrence of the literal after it; an
//! upstream list's `, ` and ` : ` separators do not end it); a JSON line is read by the
//! engine's JSON reader.

use std::fmt::Write as _;
use std::path::Path;

use super::generate::Columns;
use super::{check_table, table_ident, Engine, Quirks, SqlError};
use crate::logs::LogFormat;

/// The regex of a whole line of an nginx `log_format`: one group per variable.
pub fn line_regex(format: &LogFormat) -> Option<String> {
    let LogFormat::Nginx { format, .. } = format else {
        return None;
    };
    let mut re = String::from("^");
    re.push_str(&escape(format.prefix()));
    for (_, _, delim, list) in format.variables() {
        let value = if delim.is_empty() {
            ".*"
        } else if list {
            // Values without blanks, joined by nginx's separators.
            r#"[^ ,"]*(?:(?:, | : )[^ ,"]*)*"#
        } else {
            ".*?"
        };
        let _ = write!(re, "({value}){}", escape(delim));
    }
    re.push('$');
    Some(re)
}

fn escape(literal: &[u8]) -> String {
    let mut out = String::new();
    for c in String::from_utf8_lossy(literal).chars() {
        if r"\.^$|?*+()[]{}".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The statements that create `table` and load `files` into it.
pub fn load(
    engine: Engine,
    format: &LogFormat,
    table: &str,
    files: &[String],
) -> Result<String, SqlError> {
    check_table(table)?;
    let cols = Columns::of(format)?;
    let q = engine.quirks();
    let t = table_ident(q, table);
    let re = line_regex(format);
    let mut o = String::new();
    let _ = writeln!(
        o,
        "-- lbprobe logs --sql-load: {} lines into {t} for {}; every column is text.",
        format.name(),
        engine.name()
    );
    match engine {
        Engine::DuckDb => duckdb(q, &mut o, &t, &cols, re.as_deref(), files),
        Engine::ClickHouse => clickhouse(q, &mut o, &t, &cols, re.as_deref(), files),
        Engine::Postgres => postgres(q, &mut o, &t, &cols, re.as_deref(), files)?,
        Engine::Trino => trino(q, &mut o, &t, &cols, re.as_deref(), files),
    }
    Ok(o)
}

fn list(q: &dyn Quirks, files: &[String]) -> String {
    format!("[{}]", joined(files, |f| q.string(f)))
}

/// Each item as `each` writes it, joined by commas: a SELECT list, a column list.
fn joined(items: &[String], each: impl Fn(&str) -> String) -> String {
    items.iter().map(|i| each(i)).collect::<Vec<_>>().join(", ")
}

fn duckdb(
    q: &dyn Quirks,
    o: &mut String,
    t: &str,
    cols: &Columns,
    re: Option<&str>,
    files: &[String],
) {
    match re {
        Some(re) => {
            let names = joined(&cols.all, |c| q.string(c));
            let select = joined(&cols.all, |c| {
                format!("m[{}] AS {}", q.string(c), q.ident(c))
            });
            // A tab never occurs in an nginx line (nginx writes control bytes as \xHH): the
            // whole line is one column.
            let _ = writeln!(
                o,
                "CREATE OR REPLACE TABLE {t} AS\nSELECT {}\nFROM (\n  SELECT regexp_extract(line, {re}, [{}]) AS m\n  FROM read_csv({}, columns = {{'line': 'VARCHAR'}}, header = false, delim = '\\t', quote = '', escape = '', auto_detect = false)\n  WHERE regexp_full_match(line, {re})\n);",
                select,
                names,
                list(q, files),
                re = q.string(re),
            );
        }
        None => {
            let columns = joined(&cols.all, |c| format!("{}: 'VARCHAR'", q.string(c)));
            let _ = writeln!(
                o,
                "CREATE OR REPLACE TABLE {t} AS\nSELECT * FROM read_json({}, format = 'newline_delimited', ignore_errors = true, columns = {{{}}});",
                list(q, files),
                columns
            );
        }
    }
}

fn clickhouse(
    q: &dyn Quirks,
    o: &mut String,
    t: &str,
    cols: &Columns,
    re: Option<&str>,
    files: &[String],
) {
    let structure = joined(&cols.all, |c| format!("{} Nullable(String)", q.ident(c)));
    let _ = writeln!(o, "DROP TABLE IF EXISTS {t};");
    let _ = writeln!(o, "CREATE TABLE {t} ({structure}) ENGINE = Memory;");
    for f in files {
        let _ = match re {
            Some(re) => writeln!(
                o,
                "INSERT INTO {t} SELECT * FROM file({}, 'Regexp', {}) SETTINGS format_regexp = {}, format_regexp_escaping_rule = 'Raw', format_regexp_skip_unmatched = 1;",
                q.string(f),
                q.string(&structure),
                q.string(re)
            ),
            None => writeln!(
                o,
                "INSERT INTO {t} SELECT * FROM file({}, 'JSONEachRow', {}) SETTINGS input_format_json_read_numbers_as_strings = 1, input_format_skip_unknown_fields = 1, input_format_allow_errors_ratio = 1;",
                q.string(f),
                q.string(&structure)
            ),
        };
    }
}

fn postgres(
    q: &dyn Quirks,
    o: &mut String,
    t: &str,
    cols: &Columns,
    re: Option<&str>,
    files: &[String],
) -> Result<(), SqlError> {
    let _ = writeln!(o, "DROP TABLE IF EXISTS lbprobe_lines;");
    let _ = writeln!(o, "CREATE TABLE lbprobe_lines (line text);");
    // COPY's text format would read nginx's `\x22` as a quote: CSV with a delimiter and a
    // quote that never occur keeps each line as written. COPY reads on the server, as a
    // superuser or a member of pg_read_server_files; psql's \copy takes the same options.
    for f in files {
        let abs = std::fs::canonicalize(f).unwrap_or_else(|_| Path::new(f).to_path_buf());
        let abs = abs.display().to_string();
        let from = if abs.ends_with(".gz") {
            format!("PROGRAM {}", q.string(&format!("gzip -dc '{abs}'")))
        } else {
            q.string(&abs)
        };
        let _ = writeln!(
            o,
            "COPY lbprobe_lines FROM {from} WITH (FORMAT csv, DELIMITER E'\\x01', QUOTE E'\\x02');"
        );
    }
    let _ = writeln!(o, "DROP TABLE IF EXISTS {t};");
    match re {
        Some(re) => {
            let select: Vec<String> = cols
                .all
                .iter()
                .enumerate()
                .map(|(i, c)| format!("m[{}] AS {}", i + 1, q.ident(c)))
                .collect();
            let _ = writeln!(
                o,
                "CREATE TABLE {t} AS SELECT {} FROM (SELECT regexp_match(line, {}) AS m FROM lbprobe_lines) s WHERE m IS NOT NULL;",
                select.join(", "),
                q.string(re)
            );
        }
        None => {
            let select = joined(&cols.all, |c| {
                format!("j->>{} AS {}", q.string(c), q.ident(c))
            });
            // A line that is not JSON is a bad line, as natively: skipped, not fatal
            // (pg_input_is_valid is PostgreSQL 16's; this works before it too).
            let _ = writeln!(
                o,
                "CREATE OR REPLACE FUNCTION pg_temp.lbprobe_json(t text) RETURNS json LANGUAGE plpgsql AS $$ BEGIN RETURN CAST(t AS json); EXCEPTION WHEN others THEN RETURN NULL; END $$;"
            );
            let _ = writeln!(
                o,
                "CREATE TABLE {t} AS SELECT {} FROM (SELECT pg_temp.lbprobe_json(line) AS j FROM lbprobe_lines) s WHERE j IS NOT NULL;",
                select
            );
        }
    }
    let _ = writeln!(o, "DROP TABLE lbprobe_lines;");
    Ok(())
}

fn trino(
    _q: &dyn Quirks,
    o: &mut String,
    t: &str,
    cols: &Columns,
    re: Option<&str>,
    files: &[String],
) {
    // Athena's DDL is Hive's: backquoted names, a SerDe, the files' S3 folder.
    let columns = joined(&cols.all, |c| format!("`{c}` string"));
    let _ = writeln!(
        o,
        "-- Trino and Athena read tables from object storage, not local files: upload {} to one folder and set LOCATION to it.",
        files.join(", ")
    );
    // Hive's string literals read backslash escapes (Trino's do not): the regex's backslashes
    // are doubled, as ClickHouse's are.
    let hive_string = |v: &str| format!("'{}'", v.replace('\\', "\\\\").replace('\'', "\\'"));
    let serde = match re {
        Some(re) => format!(
            "ROW FORMAT SERDE 'org.apache.hadoop.hive.serde2.RegexSerDe'\nWITH SERDEPROPERTIES ('input.regex' = {})",
            hive_string(re)
        ),
        None => "ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe'".to_string(),
    };
    let _ = writeln!(
        o,
        "CREATE EXTERNAL TABLE {} ({})\n{serde}\nLOCATION 's3://YOUR-BUCKET/access-logs/';",
        t.replace('"', "`"),
        columns
    );
}
