#!/usr/bin/env python3
"""Runs the statements of lbprobe's --sql-load and --emit-sql in an in-process engine and writes
the query's rows as JSON lines (the last statement is the query).

Usage: run_sql.py duckdb|chdb|sqlglot-trino|sqlglot-athena STATEMENTS.sql [OUT.jsonl]
  duckdb: the `duckdb` package, 2 threads;  chdb: ClickHouse's engine in process (`chdb`);
  sqlglot-trino, sqlglot-athena: parses every statement with sqlglot's Trino (the query) or
  Athena (the table's Hive DDL) dialect; nothing runs, nothing is written, a parse error fails.
"""
import json
import sys


def statements(text):
    out, cur = [], []
    for line in text.splitlines():
        if line.startswith("--") and not cur:
            continue
        cur.append(line)
        if line.rstrip().endswith(";"):
            out.append("\n".join(cur).rstrip().rstrip(";"))
            cur = []
    if "".join(cur).strip():
        out.append("\n".join(cur))
    return out


def main():
    engine, path, out = sys.argv[1], sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else None
    stmts = statements(open(path).read())
    rows = []
    if engine == "duckdb":
        import duckdb

        con = duckdb.connect()
        con.execute("SET threads = 2")
        con.execute("SET TimeZone = 'UTC'")
        for s in stmts[:-1]:
            con.execute(s)
        cur = con.execute(stmts[-1])
        names = [d[0] for d in cur.description]
        rows = [dict(zip(names, r)) for r in cur.fetchall()]
    elif engine == "chdb":
        from chdb import session

        s = session.Session()
        for st in stmts[:-1]:
            s.query(st)
        res = s.query(stmts[-1], "JSONEachRow")
        text = res.data() if hasattr(res, "data") else str(res)
        rows = [json.loads(l) for l in text.splitlines() if l.strip()]
    elif engine in ("sqlglot-trino", "sqlglot-athena"):
        import sqlglot

        dialect = engine.split("-")[1]
        for st in stmts:
            sqlglot.parse_one(st, read=dialect, error_level=sqlglot.ErrorLevel.RAISE)
        print("parsed %d statements with sqlglot %s (%s)" % (len(stmts), sqlglot.__version__, dialect))
        return
    else:
        sys.exit("unknown engine " + engine)
    with open(out, "w") as f:
        for r in rows:
            f.write(json.dumps(r, default=str) + "\n")


main()
