#!/usr/bin/env python3
"""A default scan's wall time against its floor: max(requests / max-rate, the longest single
wait it made), as the report states it (JSON `timing`). Issue 17's goal is a ratio within 1.25.

Two setups, both on loopback:
  lab   `lbprobe lab`: nginx (HTTPS, h2) in front of the lab backend, as `lbprobe demo` runs it
  slow  real nginx (its own default timeouts, plain HTTP) in front of a lab backend that waits
        DELAY seconds before every refusal (400 and above) while its healthy answers stay quick
        (examples/lab_backend.rs)

Usage: bench/floor.py [--runs N] [--delay SECONDS] [--no-build] [--bin PATH]
Prints one line per run and the median ratio per setup; exits 1 when a median is above 1.25.
"""

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GOAL = 1.25
# Every scan and every lab is bounded: a default scan caps itself at 300 s.
SCAN_TIMEOUT = 330


def target_dir():
    return os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))


def build():
    subprocess.run(
        ["cargo", "build", "--release", "--quiet", "--bin", "lbprobe", "--example", "lab_backend"],
        cwd=ROOT,
        check=True,
    )


def first_json_line(proc, what):
    """The first line a lab prints (its URLs), within 30 s."""
    deadline = time.monotonic() + 30
    buf = ""
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        buf += line
        try:
            return json.loads(buf)
        except json.JSONDecodeError:
            continue
    proc.kill()
    sys.exit(f"{what} did not print its URLs: {buf!r}")


def scan(lbprobe, listener, backend, insecure):
    args = [lbprobe, "scan", "--listener", listener, "--backend", backend, "--format", "json", "-q"]
    if insecure:
        args.append("--insecure")
    started = time.monotonic()
    done = subprocess.run(args, capture_output=True, text=True, timeout=SCAN_TIMEOUT)
    outside = time.monotonic() - started
    try:
        report = json.loads(done.stdout)
    except json.JSONDecodeError:
        sys.exit(f"scan gave no JSON report (exit {done.returncode}): {done.stderr[-2000:]}")
    report.setdefault("timing", timing_of(report))
    return report, outside


def timing_of(report):
    """The report's `timing` as lbprobe computes it, for a binary from before it had one
    (`--bin` an older build): the bound of the longest wait is not known there."""
    rate = report["requests_sent"] / report["limits"]["max_rate"]
    longest = max(
        (o for o in report["observations"] if o.get("exchange")),
        key=lambda o: o["exchange"]["timings"]["total_ms"],
        default=None,
    )
    wait = (
        {
            "family": longest["family"],
            "variant": longest["variant"],
            "role": longest["role"],
            "seconds": longest["exchange"]["timings"]["total_ms"] / 1000,
        }
        if longest
        else None
    )
    floor = max(rate, wait["seconds"] if wait else 0)
    wall = report["duration_ms"] / 1000
    return {
        "wall_seconds": wall,
        "floor_seconds": floor,
        "ratio": wall / floor if floor else 0,
        "floor_set_by": "wait" if wait and wait["seconds"] > rate else "rate",
        "rate_seconds": rate,
        "longest_wait": wait,
    }


def describe(report):
    t = report["timing"]
    w = t.get("longest_wait")
    wait = (
        f"longest wait {w['seconds']:.1f} s ({w['family']} {w['variant']} at the {w['role']})"
        if w
        else "no wait"
    )
    return (
        f"wall {t['wall_seconds']:5.1f} s  floor {t['floor_seconds']:5.1f} s  "
        f"ratio {t['ratio']:.2f}  ({report['requests_sent']} requests: "
        f"{t['rate_seconds']:.1f} s at the max rate; {wait}; floor set by {t['floor_set_by']})"
    )


def run_setup(name, lbprobe, lab_cmd, insecure, runs):
    lab = subprocess.Popen(lab_cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        urls = first_json_line(lab, name)
        if not urls.get("listener"):
            sys.exit(f"{name}: nginx is needed (apt-get install nginx-light)")
        ratios = []
        for n in range(runs):
            report, outside = scan(lbprobe, urls["listener"], urls["backend"], insecure)
            ratios.append(report["timing"]["ratio"])
            print(f"{name:5} run {n + 1}: {describe(report)}; {outside:.1f} s as timed outside")
        return statistics.median(ratios)
    finally:
        stop(lab)


def stop(lab):
    """Stop a lab so that it stops its nginx: the example ends when its stdin closes, `lbprobe
    lab` on Ctrl-C (a kill would leave nginx behind)."""
    lab.stdin.close()
    for sig in (signal.SIGINT, signal.SIGKILL):
        try:
            lab.wait(timeout=5)
            return
        except subprocess.TimeoutExpired:
            lab.send_signal(sig)
    lab.wait(timeout=5)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--delay", type=float, default=2.5, help="the slow backend's refusal delay")
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument(
        "--bin", help="the lbprobe binary to time (default: the release build; an older one works)"
    )
    a = ap.parse_args()
    if not a.no_build:
        build()
    release = os.path.join(target_dir(), "release")
    lbprobe = a.bin or os.path.join(release, "lbprobe")
    example = os.path.join(release, "examples", "lab_backend")
    medians = {
        "lab": run_setup("lab", lbprobe, [lbprobe, "lab", "--for", "600", "--format", "json"], True, a.runs),
        "slow": run_setup("slow", lbprobe, [example, str(a.delay), "--nginx"], False, a.runs),
    }
    worst = max(medians.values())
    for name, ratio in medians.items():
        print(f"{name}: median ratio {ratio:.2f} (goal {GOAL})")
    sys.exit(0 if worst <= GOAL else 1)


if __name__ == "__main__":
    main()
