//! `lbprobe logs --emit-sql` run by real engines on the fixtures (the LB's JSON export and an
//! nginx `upstream` log with a line per rule): DuckDB, ClickHouse's engine (chdb) and
//! PostgreSQL give exactly the native classifier's counts per cause, read back through
//! `--from-sql-result`; the Trino query parses with sqlglot's Trino dialect (Trino itself is not
//! run here). The logs real nginx wrote are checked the same way in tests/logs_real.rs.

#[path = "support/says.rs"]
mod says;
use says::assert_says;

#[path = "support/sql.rs"]
mod sql_engines;

use std::path::{Path, PathBuf};

use sql_engines::{lbprobe, native, sql, trino_parses, Engine};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/logs")
        .join(name)
}

const FIXTURES: &[(&str, &str)] = &[
    ("upstream", "nginx-upstream.log"),
    ("json", "clb-export.jsonl"),
];

#[test]
fn every_engine_counts_what_the_native_classifier_counts() {
    for (format, file) in FIXTURES {
        let path = fixture(file);
        let want = native(format, &[&path]);
        assert!(want.len() >= 8, "{file}: {want:#?}");
        for engine in [Engine::DuckDb, Engine::Chdb, Engine::Postgres] {
            let got = sql(engine, format, &[&path]);
            assert_eq!(got, want, "{engine:?} on {file}");
        }
    }
}

#[test]
fn the_trino_query_parses_with_sqlglot() {
    for format in ["upstream", "json", "combined"] {
        trino_parses(format);
    }
}

/// Two files load into one table: the counts are the sum.
#[test]
fn two_files_load_into_one_table() {
    let path = fixture("nginx-upstream.log");
    let want: std::collections::BTreeMap<String, u64> = native("upstream", &[&path, &path]);
    assert_eq!(sql(Engine::DuckDb, "upstream", &[&path, &path]), want);
}

#[test]
fn haproxy_logs_and_bad_names_are_refused_in_words() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_lbprobe"))
        .args(["logs", "--emit-sql", "duckdb", "--log-format", "haproxy"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("HAProxy's log keeps its fields"), "{err}");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_lbprobe"))
        .args(["logs", "--emit-sql", "oracle"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown SQL engine \"oracle\""), "{err}");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_lbprobe"))
        .args(["logs", "--emit-sql", "duckdb", "--table", "x; drop"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// The report read from an engine's rows is the native one's, less what rows do not carry.
#[test]
fn from_sql_result_renders_the_usual_report() {
    let dir = tempfile::tempdir().unwrap();
    let rows = dir.path().join("rows.csv");
    std::fs::write(
        &rows,
        "cause,lines,share,first_time,last_time,top_uris,top_uri_counts,top_clients,top_client_counts\n\
         504.backend-slow,3,0.75,2025-11-24 19:29:01+00,2025-11-24 19:31:01+00,\"[/a, /b]\",\"[2, 1]\",[10.0.0.1],[3]\n\
         not computed: 499.network-rtt-loss,1,0.25,,,[],[],[],[]\n",
    )
    .unwrap();
    let text = lbprobe(&[
        "logs",
        "--from-sql-result",
        &rows.display().to_string(),
        "--log-format",
        "upstream",
    ]);
    assert_says(
        &text,
        &[
            "504.backend-slow  3 lines, 75.0 % of errors",
            "first: 2025-11-24 19:29:01+00, last: 2025-11-24 19:31:01+00",
            "top URIs: /a ×2, /b ×1",
            "not computed by the SQL engine: 499.network-rtt-loss",
        ],
    );
    let md = lbprobe(&[
        "logs",
        "--from-sql-result",
        &rows.display().to_string(),
        "--format",
        "markdown",
    ]);
    assert_says(
        &md,
        &[
            "| 3 | 75.0 % | 2025-11-24 19:29:01+00 to 2025-11-24 19:31:01+00 | `/a` ×2, `/b` ×1 | `10.0.0.1` ×3 |",
            "**Not computed by the SQL engine:** 499.network-rtt-loss.",
        ],
    );
}
