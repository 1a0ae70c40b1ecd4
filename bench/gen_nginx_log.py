#!/usr/bin/env python3
"""Writes a seeded, realistic nginx access log in lbprobe's `upstream` format to stdout.

Usage: gen_nginx_log.py SIZE_BYTES [SEED]. About 5 % of the lines are errors, mixed as the
causes the classifier knows (502 mapped from 504, 504 timeouts, 499s, TRACE 405s, 503s without
an upstream, retries logged as `502, 200`).
"""
import random
import sys

size = int(sys.argv[1])
rng = random.Random(int(sys.argv[2]) if len(sys.argv) > 2 else 42)
paths = ["/", "/api/v1/orders", "/api/v1/cart", "/static/app.js", "/login", "/search", "/health"]
agents = ["Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0", "curl/8.5.0", "okhttp/4.12.0"]
ok = [
    ("200", "{u}", "0.0{a}", "0.0{a}", "0.001", "0.0{a}"),
]
errors = [
    ("502", "504", "0.{a}", "0.{a}", "0.001", "0.{a}"),
    ("504", "504", "60.00{b}", "60.00{b}", "0.001", "-"),
    ("499", "-", "1.{a}", "-", "-", "-"),
    ("503", "-", "0.000", "-", "-", "-"),
    ("502", "502, 502", "0.0{a}", "0.001, 0.0{a}", "0.001, 0.001", "-, -"),
    ("500", "500", "0.0{a}", "0.0{a}", "0.001", "0.0{a}"),
    ("405", "405", "0.00{b}", "0.00{b}", "0.001", "0.00{b}"),
    ("400", "-", "0.000", "-", "-", "-"),
]


def one():
    a = rng.randrange(10, 99)
    b = rng.randrange(1, 9)
    if rng.random() < 0.05:
        st, ups, rt, urt, uct, uht = rng.choice(errors)
    else:
        st, ups, rt, urt, uct, uht = ok[0]
        ups = "200" if rng.random() < 0.9 else "304"
        st = ups
        if rng.random() < 0.01:
            ups = "502, " + ups  # a retry that worked: not an error line
    addr = "-" if ups == "-" else "10.0.0.%d:8080" % rng.randrange(1, 9)
    head = "10.%d.%d.%d - - [" % (rng.randrange(256), rng.randrange(256), rng.randrange(256))
    tail = '] "%s %s?id=%d HTTP/1.1" %s %d "-" "%s" %d %s %s %s %s %s %s\n' % (
        "GET" if rng.random() < 0.9 else "POST", rng.choice(paths), rng.randrange(100000), st,
        rng.randrange(100, 50000), rng.choice(agents), rng.randrange(200, 900),
        rt.format(a=a, b=b), addr, ups, urt.format(a=a, b=b), uct, uht.format(a=a, b=b))
    return head, tail


# A pool of random lines, stamped with a clock that moves one second per 500 lines: writing
# 1 GB line by line from scratch would take Python minutes.
pool = [one() for _ in range(100_000)]
out = sys.stdout
written = 0
second = 0
while written < size:
    ts = "24/Nov/2025:%02d:%02d:%02d +0000" % ((second // 3600) % 24, (second // 60) % 60, second % 60)
    second += 1
    chunk = "".join(h + ts + t for h, t in rng.choices(pool, k=500))
    out.write(chunk)
    written += len(chunk)
