#!/usr/bin/env python3
"""Neighbour audit: for every cause an integration test asserts as `confirmed`, the tests that
assert it is NOT confirmed in another setup (its neighbours).

Reads tests/*.rs (not classify_table.rs and report_snapshots.rs, whose observations are built by
hand) and prints a markdown table: cause, the tests confirming it, the tests asserting it is not
confirmed, and whether those tests start a real server (nginx, HAProxy, Apache httpd, a lab
backend) or classify fixtures. `--check` exits 1 when a confirmed cause has no neighbour against a
real server; `--write` puts the table into docs/testing.md, between its two markers.

It reads the source, so it knows the shapes of assertion the suite uses:
- a statement naming a cause (a literal "504.backend-slow", a `const` holding one, or a variable
  bound earlier to an expression naming one) together with `Confirmed`/"confirmed" asserts it
  confirmed, unless the statement negates (`assert_ne!`, `!=`, `.all(`, `!(`);
- with `RuledOut`/`Inconclusive`/`Reproduced` (or their JSON words), `not_confirmed(`, or a
  negated `Confirmed`, it asserts the cause not confirmed (a trigger reproduced at a listener's
  documented limit is the healthy neighbour of one confirmed below it);
- a statement with no cause of its own speaks of the file's one cause (`const ID`, or the one
  cause its helpers look up with `f.cause == "..."`);
- positional helpers are listed in POSITIONAL (tests/response.rs's `assert_verdicts`);
- a test inherits the assertions of the same file's helper functions it calls.
"""

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SKIP = {"classify_table.rs", "report_snapshots.rs", "scenario.rs"}
CAUSE = re.compile(r'"(\d{3}\.[a-z0-9-]+)"')
CONST = re.compile(r'const\s+(\w+)\s*:\s*&str\s*=\s*"(\d{3}\.[a-z0-9-]+)"\s*;')
FN = re.compile(r"\bfn\s+(\w+)\s*(?:<[^>]*>)?\s*\(")
TEST_ATTR = re.compile(r"#\[(?:tokio::)?test\b[^\]]*\]")
# What starts a real server or backend in a test (directly or through a helper).
REAL = re.compile(
    r"Nginx::start|Haproxy::start|Apache::start|LabBackend::start|start_backend|"
    r"UnacceptingListener::start|start_nginx|start_haproxy|start_apache|lbprobe_bin|"
    r"Command::new\(.*lbprobe|\blbprobe(?:_async)?\(|\.listen\(\d|Namespace"
)
# tests/response.rs: assert_verdicts(malformed, closed_early, mapped).
POSITIONAL = {
    "response.rs": (
        "assert_verdicts",
        [
            "502.malformed-backend-response",
            "500.backend-closed-early",
            "502.backend-error-mapped",
        ],
    )
}
NEGATED = re.compile(r"assert_ne!|!=|\.all\(|(?<![A-Za-z_])!\(")
POSITIVE = re.compile(r'Verdict::Confirmed|"confirmed"|\bConfirmed\b')
NEGATIVE = re.compile(
    r'Verdict::RuledOut|Verdict::Inconclusive|Verdict::Reproduced|"ruled_out"|"inconclusive"|'
    r'"reproduced"|\bRuledOut\b|\bInconclusive\b|\bReproduced\b|not_confirmed\('
)


def strip_comments(text):
    return "\n".join(
        line for line in text.splitlines() if not line.lstrip().startswith("//")
    )


def functions(text):
    """(name, is_test, body) for every fn, the body found by matching braces."""
    out = []
    for m in FN.finditer(text):
        start = text.find("{", m.end())
        semi = text.find(";", m.end())
        if start < 0 or (0 <= semi < start):
            continue  # a declaration without a body
        depth, i = 0, start
        while i < len(text):
            c = text[i]
            if c == '"':
                # Skip a string literal (escapes included).
                i += 1
                while i < len(text) and text[i] != '"':
                    i += 2 if text[i] == "\\" else 1
            elif c == "{":
                depth += 1
            elif c == "}":
                depth -= 1
                if depth == 0:
                    break
            i += 1
        before = text[max(0, m.start() - 200) : m.start()]
        attrs = before.split("}")[-1]
        out.append((m.group(1), bool(TEST_ATTR.search(attrs)), text[start : i + 1]))
    return out


def file_default(text, consts):
    if "ID" in consts:
        return consts["ID"]
    looked_up = set(re.findall(r'f\.cause\s*==\s*"(\d{3}\.[a-z0-9-]+)"', text))
    return looked_up.pop() if len(looked_up) == 1 else None


def assertions(name, body, consts, default, positional):
    """(confirmed causes, not-confirmed causes) asserted directly in one function body."""
    yes, no = set(), set()
    bound = {}
    for stmt in body.split(";"):
        causes = set(CAUSE.findall(stmt))
        causes |= {v for k, v in consts.items() if re.search(rf"\b{k}\b", stmt)}
        let = re.search(r"\blet\s+(?:mut\s+)?(\w+)", stmt)
        for var, vcauses in bound.items():
            if re.search(rf"\b{var}\b", stmt) and not (let and let.group(1) == var):
                causes |= vcauses
        if let and causes:
            bound[let.group(1)] = set(causes)
        if positional and positional[0] + "(" in stmt:
            args = stmt.split(positional[0] + "(", 1)[1].split(")")[0].split(",")
            for cause, arg in zip(positional[1], args):
                (yes if "Confirmed" in arg else no).add(cause)
            continue
        if not causes and default and (
            "finding" in stmt or ".verdict" in stmt
        ):
            causes = {default}
        if not causes:
            continue
        positive = POSITIVE.search(stmt)
        negated = NEGATED.search(stmt)
        if positive and not negated and not NEGATIVE.search(stmt):
            if not re.search(r"\bfilter\(|\bmatches!\(", stmt):
                yes |= causes
        elif NEGATIVE.search(stmt) or (positive and negated):
            no |= causes
    return yes, no


def audit():
    confirmed, neighbours, real_of = {}, {}, {}
    for path in sorted((ROOT / "tests").glob("*.rs")):
        if path.name in SKIP:
            continue
        text = strip_comments(path.read_text())
        consts = dict(CONST.findall(text))
        default = file_default(text, consts)
        fns = functions(text)
        direct = {
            n: assertions(n, b, consts, default, POSITIONAL.get(path.name))
            for n, _, b in fns
        }
        bodies = {n: b for n, _, b in fns}
        # Same-file calls, transitively: assertions and real servers come along.
        calls = {
            n: {m for m in bodies if m != n and re.search(rf"\b{m}\s*\(", b)}
            for n, b in bodies.items()
        }

        def reach(n, seen):
            for m in calls[n]:
                if m not in seen:
                    seen.add(m)
                    reach(m, seen)
            return seen

        for n, is_test, body in fns:
            if not is_test:
                continue
            scope = {n} | reach(n, set())
            yes = set().union(*(direct[m][0] for m in scope))
            no = set().union(*(direct[m][1] for m in scope))
            real = any(REAL.search(bodies[m]) for m in scope)
            test = f"{path.stem}::{n}"
            real_of[test] = real
            for c in yes:
                confirmed.setdefault(c, []).append(test)
            for c in no - yes:
                neighbours.setdefault(c, []).append(test)
    return confirmed, neighbours, real_of


START = "<!-- neighbours:start -->"
END = "<!-- neighbours:end -->"
DOC = ROOT / "docs" / "testing.md"


def table():
    """The markdown table, and the causes without a neighbour against a real server."""
    confirmed, neighbours, real_of = audit()
    mark = lambda t: f"`{t}`" if real_of[t] else f"`{t}` (fixture)"
    lines = [
        "| cause | confirmed by | not confirmed by (neighbours) |",
        "|---|---|---|",
    ]
    missing = []
    for cause in sorted(confirmed):
        near = [t for t in neighbours.get(cause, []) if t not in confirmed[cause]]
        if not any(real_of[t] for t in near):
            missing.append(cause)
        lines.append(
            f"| `{cause}` | {'<br>'.join(mark(t) for t in confirmed[cause])} | "
            f"{'<br>'.join(mark(t) for t in near) or '**none**'} |"
        )
    return "\n".join(lines) + "\n", missing


def main():
    text, missing = table()
    if "--write" in sys.argv:
        doc = DOC.read_text()
        head, rest = doc.split(START, 1)
        _, tail = rest.split(END, 1)
        DOC.write_text(f"{head}{START}\n{text}{END}{tail}")
    else:
        print(text, end="")
    if missing:
        print(
            f"without a neighbour against a real server: {', '.join(missing)}",
            file=sys.stderr,
        )
        if "--check" in sys.argv:
            sys.exit(1)


if __name__ == "__main__":
    main()
