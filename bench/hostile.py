#!/usr/bin/env python3
"""Hostile and broken servers (issue 16): every kind of `lbprobe lab --hostile list` scanned with
the scan's defaults, as the backend target and as the listener target, and per scan the time
to the report, the peak memory (`/usr/bin/time -v`), the requests sent, whether the report is
valid JSON and the verdicts that name the problem.

The goal: a report within 60 s for every kind, and a silent server (silence, tls-silence)
named silent within 15 s. A row misses it when the time column is marked `!`.

TLS kinds are scanned with --insecure: the lab's certificate is self-signed, and without it
every request after the sniff would stop at the certificate instead of meeting the kind.

For the kinds that put control bytes on the wire (escape sequences, NUL bytes, invalid UTF-8,
garbage) a second scan in the human format checks that none reaches the terminal raw.

Run through bench/hostile.sh, which builds the release binary first. Options:
  --bin PATH        the lbprobe binary (target/release/lbprobe)
  --kinds LIST      comma-separated subset of the kinds (default: all)
  --roles LIST      backend,listener (default: both)
  --jobs N          scans at once (default 4): the scans wait on timeouts, not on the CPU, so
                    running several at once changes their times little; use 1 on a busy machine
  --keep DIR        keep every JSON report in DIR (KIND-ROLE.json)
  --json FILE       the table's rows as JSON, for comparing runs
  --scan-arg ARG    an extra argument for every scan (repeatable), e.g. --scan-arg=--timeout=5
Not a timed test: the numbers depend on the machine; the goal columns say whether each row
meets the issue's bounds.
"""

import argparse
import concurrent.futures
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TIME = "/usr/bin/time"
# Kinds that must be named silent within 15 s; every other kind has 60 s.
SILENT_KINDS = {"silence", "tls-silence"}
GOAL_S = 60.0
SILENT_GOAL_S = 15.0
# Kinds whose bytes would do harm on a terminal: their human report is checked for them.
CONTROL_BYTE_KINDS = {"escape-sequences", "nul-bytes", "invalid-utf8", "garbage", "tls-garbage"}
RAW_CONTROL = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1a\x1c-\x1f\x7f]|\x1b(?!\[[0-9;]*m)")
# Longer than any scan may take (the run's time cap is 300 s).
LAB_SECONDS = 420


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def start_lab(binary, kind):
    """`lbprobe lab --hostile KIND` in the background; returns (process, URL)."""
    proc = subprocess.Popen(
        [binary, "--format", "json", "lab", "--hostile", kind, "--for", str(LAB_SECONDS)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    text = ""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        text += line.decode()
        try:
            return proc, json.loads(text)["backend"]
        except ValueError:
            continue
    stop(proc)
    raise RuntimeError(f"lab --hostile {kind} printed no URL: {text!r} {proc.stderr.read()!r}")


def stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def time_v(stderr_text, field):
    m = re.search(rf"{re.escape(field)}: (.+)", stderr_text)
    return m.group(1).strip() if m else None


def summarise(report):
    """Requests, and the verdicts and notes that name the problem."""
    findings = report.get("findings", [])
    named = [f"{f['cause']} ({f['verdict']})" for f in findings
             if f.get("verdict") in ("confirmed", "reproduced")]
    inconclusive = [f["cause"] for f in findings if f.get("verdict") == "inconclusive"]
    notes = " ".join(report.get("notes", []))
    flags = []
    if "declared silent" in notes:
        flags.append("declared silent")
    if "stopped early" in notes:
        flags.append("stopped early: " + re.search(r"stopped early: ([^;]*)", notes).group(1))
    return {
        "requests": report.get("requests_sent"),
        "confirmed": named,
        "inconclusive": inconclusive,
        "flags": flags,
        "exit_code": report.get("exit_code"),
    }


def scan(binary, kind, role, keep, extra):
    proc, url = start_lab(binary, kind)
    try:
        with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as out:
            path = out.name
        if url.startswith("https:"):
            extra = ["--insecure", *extra]
        args = [TIME, "-v", binary, "scan", f"--{role}", url, "--format", "json", "-q",
                "-o", path, *extra]
        started = time.monotonic()
        run = subprocess.run(args, capture_output=True, timeout=LAB_SECONDS)
        seconds = time.monotonic() - started
        stderr = run.stderr.decode(errors="replace")
        rss_kb = time_v(stderr, "Maximum resident set size (kbytes)")
        row = {"kind": kind, "role": role, "seconds": round(seconds, 1),
               "rss_mb": round(int(rss_kb) / 1024, 1) if rss_kb else None,
               "exit": run.returncode}
        try:
            with open(path, "rb") as f:
                raw = f.read()
            report = json.loads(raw)
            row["json"] = "valid"
            row.update(summarise(report))
            if keep:
                with open(os.path.join(keep, f"{kind}-{role}.json"), "wb") as f:
                    f.write(raw)
        except (OSError, ValueError) as e:
            row["json"] = f"INVALID ({e})"
        finally:
            if os.path.exists(path):
                os.unlink(path)
        if kind in CONTROL_BYTE_KINDS:
            human = subprocess.run([binary, "scan", f"--{role}", url, "-q", "--color", "never",
                                    "--probes", "protocol,response,methods", *extra],
                                   capture_output=True, timeout=LAB_SECONDS)
            dirty = RAW_CONTROL.search(human.stdout) or RAW_CONTROL.search(human.stderr)
            row["terminal"] = "RAW BYTES" if dirty else "clean"
        return row
    finally:
        stop(proc)


def goal(row):
    limit = SILENT_GOAL_S if row["kind"] in SILENT_KINDS else GOAL_S
    return row["seconds"] <= limit, limit


def table(rows):
    out = ["| kind | role | time s | peak RSS MB | requests | JSON | terminal | named |",
           "|---|---|---:|---:|---:|---|---|---|"]
    for r in rows:
        ok, limit = goal(r)
        mark = "" if ok else f" ! (>{limit:.0f})"
        named = "; ".join(r.get("flags", []) + r.get("confirmed", []))
        if not r.get("confirmed"):
            inc = r.get("inconclusive", [])
            if inc:
                named += ("; " if named else "") + f"inconclusive: {', '.join(inc[:4])}"
                if len(inc) > 4:
                    named += f" +{len(inc) - 4}"
        out.append(f"| {r['kind']} | {r['role']} | {r['seconds']}{mark} | {r['rss_mb']} | "
                   f"{r.get('requests', '-')} | {r['json']} | {r.get('terminal', '-')} | "
                   f"{named or '-'} |")
    missed = [r for r in rows if not goal(r)[0]]
    slowest = max(rows, key=lambda r: r["seconds"]) if rows else None
    out.append("")
    out.append(f"{len(rows) - len(missed)} of {len(rows)} scans within the goal"
               + (f"; slowest {slowest['kind']} as {slowest['role']}: {slowest['seconds']} s"
                  if slowest else ""))
    biggest = max((r for r in rows if r["rss_mb"]), key=lambda r: r["rss_mb"], default=None)
    if biggest:
        out.append(f"peak RSS at most {biggest['rss_mb']} MB ({biggest['kind']} as {biggest['role']})")
    return "\n".join(out)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--bin", default=os.path.join(ROOT, "target/release/lbprobe"))
    p.add_argument("--kinds", default="")
    p.add_argument("--roles", default="backend,listener")
    p.add_argument("--jobs", type=int, default=4)
    p.add_argument("--keep")
    p.add_argument("--json")
    p.add_argument("--scan-arg", action="append", default=[])
    a = p.parse_args()
    if not os.path.exists(TIME):
        sys.exit(f"{TIME} is needed for the peak memory (apt-get install time)")
    listed = json.loads(subprocess.run([a.bin, "--format", "json", "lab", "--hostile", "list"],
                                       capture_output=True, check=True).stdout)
    kinds = [k["name"] for k in listed["kinds"]]
    if a.kinds:
        wanted = a.kinds.split(",")
        unknown = [k for k in wanted if k not in kinds]
        if unknown:
            sys.exit(f"unknown kinds: {', '.join(unknown)}")
        kinds = wanted
    roles = [r for r in a.roles.split(",") if r]
    if a.keep:
        os.makedirs(a.keep, exist_ok=True)
    work = [(k, r) for k in kinds for r in roles]
    rows = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, a.jobs)) as pool:
        futures = {pool.submit(scan, a.bin, k, r, a.keep, a.scan_arg): (k, r) for k, r in work}
        for fut in concurrent.futures.as_completed(futures):
            k, r = futures[fut]
            try:
                row = fut.result()
            except Exception as e:  # one broken scan must not hide the others' rows
                row = {"kind": k, "role": r, "seconds": float("inf"), "rss_mb": None,
                       "json": f"NOT RUN ({e})"}
            log(f"{k} as {r}: {row['seconds']} s, {row.get('requests', '-')} requests")
            rows.append(row)
    order = {(k, r): i for i, (k, r) in enumerate(work)}
    rows.sort(key=lambda r: order[(r["kind"], r["role"])])
    print(table(rows))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=1)
    sys.exit(0 if all(goal(r)[0] for r in rows) else 1)


if __name__ == "__main__":
    main()
