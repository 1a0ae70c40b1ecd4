//! The classifier as SQL, run by real engines: DuckDB and ClickHouse's engine (chdb) in
//! process through Python, PostgreSQL as a throwaway cluster, and Trino's dialect parsed by
//! sqlglot. Each gives the query's rows, which `lbprobe logs --from-sql-result` reads back; the
//! counts per cause are compared with the native `lbprobe logs` report.
//!
//! Python comes from `LBPROBE_PYTHON` (default: the venv scripts/test.sh makes at
//! target/pyenv); PostgreSQL from `LBPROBE_PG_BIN` (default: Debian's /usr/lib/postgresql/N/bin).
//! A missing tool fails the test, naming it: never a skip.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The engines the query is run on here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    DuckDb,
    Chdb,
    Postgres,
}

impl Engine {
    fn name(self) -> &'static str {
        match self {
            Engine::DuckDb => "duckdb",
            Engine::Chdb => "clickhouse",
            Engine::Postgres => "postgres",
        }
    }
}

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_lbprobe"))
}

/// The Python that has duckdb, chdb and sqlglot.
pub fn python() -> PathBuf {
    let p = std::env::var_os("LBPROBE_PYTHON").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("target/pyenv/bin/python"),
        PathBuf::from,
    );
    assert!(
        p.exists(),
        "{} is missing: these tests need Python with duckdb, chdb and sqlglot (scripts/test.sh makes the venv: python3 -m venv target/pyenv && target/pyenv/bin/pip install duckdb chdb sqlglot), or set LBPROBE_PYTHON",
        p.display()
    );
    p
}

/// tests/support/run_sql.py doing `what` (an engine, or a sqlglot dialect), its files to add.
fn run_sql(what: &str) -> Command {
    let mut cmd = Command::new(python());
    cmd.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/run_sql.py"))
        .arg(what);
    cmd
}

fn run(cmd: &mut Command, what: &str) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot start: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `lbprobe logs` with these arguments, its stdout.
pub fn lbprobe(args: &[&str]) -> String {
    run(bin().args(args), &format!("lbprobe {}", args.join(" ")))
}

/// Counts per cause of a `lbprobe logs --format json` report: causes by id, undecided lines by
/// `A or B`, unexplained ones as `unexplained.STATUS`, not computed ones as `not computed: ID`.
pub fn counts(report_json: &str) -> BTreeMap<String, u64> {
    let v: serde_json::Value = serde_json::from_str(report_json).unwrap();
    let mut m = BTreeMap::new();
    for c in v["causes"].as_array().unwrap() {
        m.insert(
            c["cause"].as_str().unwrap().to_string(),
            c["count"].as_u64().unwrap(),
        );
    }
    for u in v["undecided"].as_array().unwrap() {
        let id: Vec<&str> = u["causes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap())
            .collect();
        m.insert(id.join(" or "), u["count"].as_u64().unwrap());
    }
    for s in v["unexplained"].as_array().unwrap() {
        m.insert(
            format!("unexplained.{}", s["status"]),
            s["count"].as_u64().unwrap(),
        );
    }
    if let Some(n) = v["not_computed"].as_array() {
        for id in n {
            m.insert(format!("not computed: {}", id.as_str().unwrap()), 0);
        }
    }
    m
}

/// The native classifier's counts for `files` in `format`.
pub fn native(format: &str, files: &[&Path]) -> BTreeMap<String, u64> {
    let mut args = vec!["logs", "--format", "json", "--log-format", format];
    let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    args.extend(names.iter().map(String::as_str));
    counts(&lbprobe(&args))
}

/// The statements that load `files` and the query, for `engine`.
fn statements(engine: &str, format: &str, files: &[&Path], dir: &Path) -> PathBuf {
    let mut args = vec!["logs", "--sql-load", engine, "--log-format", format];
    let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    args.extend(names.iter().map(String::as_str));
    let mut sql = lbprobe(&args);
    sql.push_str(&lbprobe(&[
        "logs",
        "--emit-sql",
        engine,
        "--log-format",
        format,
    ]));
    let path = dir.join(format!("{engine}.sql"));
    std::fs::write(&path, sql).unwrap();
    path
}

/// The counts the query gives on `engine`, read back through `--from-sql-result`.
pub fn sql(engine: Engine, format: &str, files: &[&Path]) -> BTreeMap<String, u64> {
    let dir = tempfile::tempdir().unwrap();
    let result = match engine {
        Engine::DuckDb | Engine::Chdb => {
            let stmts = statements(engine.name(), format, files, dir.path());
            let out = dir.path().join("rows.jsonl");
            let py = if engine == Engine::DuckDb {
                "duckdb"
            } else {
                "chdb"
            };
            run(
                run_sql(py).arg(&stmts).arg(&out),
                &format!("{py} running the emitted query"),
            );
            out
        }
        Engine::Postgres => {
            let pg = Postgres::start();
            // The server reads the files itself (COPY): copies it may read.
            let copies: Vec<PathBuf> = files
                .iter()
                .enumerate()
                .map(|(i, f)| {
                    let to = pg.dir.path().join(format!(
                        "log{i}-{}",
                        f.file_name().unwrap().to_string_lossy()
                    ));
                    std::fs::copy(f, &to).unwrap();
                    pg.give(&to);
                    to
                })
                .collect();
            let refs: Vec<&Path> = copies.iter().map(PathBuf::as_path).collect();
            let mut args = vec!["logs", "--sql-load", "postgres", "--log-format", format];
            let names: Vec<String> = refs.iter().map(|f| f.display().to_string()).collect();
            args.extend(names.iter().map(String::as_str));
            let load = dir.path().join("load.sql");
            std::fs::write(&load, lbprobe(&args)).unwrap();
            let query = dir.path().join("query.sql");
            std::fs::write(
                &query,
                lbprobe(&["logs", "--emit-sql", "postgres", "--log-format", format]),
            )
            .unwrap();
            for f in [&load, &query] {
                pg.give(f);
            }
            pg.psql(&["-q", "-f", &load.display().to_string()]);
            let csv = pg.psql(&["-q", "--csv", "-f", &query.display().to_string()]);
            let out = dir.path().join("rows.csv");
            std::fs::write(&out, csv).unwrap();
            out
        }
    };
    counts(&lbprobe(&[
        "logs",
        "--format",
        "json",
        "--log-format",
        format,
        "--from-sql-result",
        &result.display().to_string(),
    ]))
}

/// The emitted Trino query parses with sqlglot's Trino dialect, and the table --sql-load
/// athena makes with its Athena dialect (Hive's DDL).
pub fn trino_parses(format: &str) {
    let dir = tempfile::tempdir().unwrap();
    let query = dir.path().join("trino.sql");
    std::fs::write(
        &query,
        lbprobe(&["logs", "--emit-sql", "trino", "--log-format", format]),
    )
    .unwrap();
    let said = run(
        run_sql("sqlglot-trino").arg(&query),
        "sqlglot parsing the Trino query",
    );
    assert!(said.contains("parsed 1 statements"), "{said}");
    let ddl = dir.path().join("athena.sql");
    std::fs::write(
        &ddl,
        lbprobe(&[
            "logs",
            "--sql-load",
            "athena",
            "--log-format",
            format,
            "access.log",
        ]),
    )
    .unwrap();
    let said = run(
        run_sql("sqlglot-athena").arg(&ddl),
        "sqlglot parsing the Athena table",
    );
    assert!(said.contains("parsed 1 statements"), "{said}");
}

/// A PostgreSQL cluster of its own in a temporary directory, reached by a Unix socket there;
/// run as the `postgres` user when this is root (PostgreSQL refuses root). Stopped on drop.
pub struct Postgres {
    pub dir: tempfile::TempDir,
    bin: PathBuf,
    as_user: Option<&'static str>,
}

fn pg_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("LBPROBE_PG_BIN") {
        return PathBuf::from(p);
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.path().join("bin"))
                .filter(|b| b.join("initdb").exists())
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found.pop().expect(
        "PostgreSQL's initdb is missing: these tests need Debian's `postgresql` (scripts/test.sh installs it), or set LBPROBE_PG_BIN",
    )
}

impl Postgres {
    pub fn start() -> Postgres {
        let bin = pg_bin();
        let dir = tempfile::tempdir().unwrap();
        let as_user = (euid() == 0).then_some("postgres");
        let pg = Postgres { dir, bin, as_user };
        pg.give(pg.dir.path());
        let data = pg.dir.path().join("data");
        pg.cmd(
            "initdb",
            &[
                "-D",
                &data.display().to_string(),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
            ],
        );
        let opts = format!(
            "-k {} -c listen_addresses='' -p 5432 -c fsync=off -c TimeZone=UTC",
            pg.dir.path().display()
        );
        pg.cmd(
            "pg_ctl",
            &[
                "-D",
                &data.display().to_string(),
                "-o",
                &opts,
                "-l",
                &pg.dir.path().join("server.log").display().to_string(),
                "-w",
                "-t",
                "30",
                "start",
            ],
        );
        pg
    }

    fn command(&self, tool: &str) -> Command {
        let exe = self.bin.join(tool);
        match self.as_user {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(exe);
                c
            }
            None => Command::new(exe),
        }
    }

    fn cmd(&self, tool: &str, args: &[&str]) -> String {
        run(
            self.command(tool).args(args),
            &format!("PostgreSQL's {tool}"),
        )
    }

    /// Let the server's user read (and own) `path`.
    pub fn give(&self, path: &Path) {
        if let Some(user) = self.as_user {
            run(
                Command::new("chown").args(["-R", user]).arg(path),
                "chown for PostgreSQL",
            );
        }
    }

    pub fn psql(&self, args: &[&str]) -> String {
        let host = self.dir.path().display().to_string();
        let mut all = vec![
            "-X",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            &host,
            "-p",
            "5432",
            "-U",
            "postgres",
            "-d",
            "postgres",
        ];
        all.extend_from_slice(args);
        self.cmd("psql", &all)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        let _ = self
            .command("pg_ctl")
            .args(["-D", &data.display().to_string(), "-m", "immediate", "stop"])
            .output();
    }
}

/// The effective user id, read from /proc (no unsafe code in the tests).
fn euid() -> u32 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|u| u.parse().ok())
        .unwrap_or(u32::MAX)
}
