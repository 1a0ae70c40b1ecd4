#!/usr/bin/env python3
"""Verdict stability: the same `lbprobe scan` run N times (10 by default) against the same lab
setup, and per family and cause the verdicts seen and how often they flipped.

Families and setups (all on loopback, or in network namespaces this script creates):
  rate       nginx `limit_req rate=50r/s` (nodelay, no burst) in front of the lab backend, under
             the scan's default max-rate of 50 (issue 14, item 10); nginx without limit_req
  keepalive  nginx (keepalive_timeout 3s, upstream keep-alive) in front of an nginx backend that
             closes idle connections after 1 s
  timing     latency and connect: nginx in front of the lab backend; nginx with
             proxy_read_timeout 0.5s in front of a backend that answers after 1.5 s
  mtu        three namespaces, the middle link 1280 bytes, ICMP "fragmentation needed" dropped
             (a black hole) or allowed; needs root (skipped with a message otherwise)

Run through bench/stability.sh, which builds the release binary first. Options:
  --runs N         scans per setup (10)
  --families LIST  comma-separated subset of rate,keepalive,timing,mtu
  --bin PATH       the lbprobe binary (target/release/lbprobe)
  --show all       every cause in the table, not only those whose verdict changed or that the
                   family is about (the default prints the family's causes and any flip)
  --keep DIR       keep each scan's JSON report in DIR (FAMILY-SETUP-RUN.json), to see why a
                   verdict flipped
"""

import argparse
import collections
import http.server
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NGINX = os.environ.get("LBPROBE_NGINX") or shutil.which("nginx") or "/usr/sbin/nginx"

# The causes each family is about: always listed in the table, flips or not.
FAMILY_CAUSES = {
    "rate": ("503.rate-limited", "503.no-backends", "502.all-backends-unhealthy"),
    "keepalive": ("502.keepalive-race",),
    "timing": ("504.", "502.backend-slow", "499.", "408."),
    "mtu": ("502.mtu-mismatch",),
}


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(host, port, netns=None, timeout=5.0):
    """Bounded wait until host:port accepts (inside `netns` when given)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if netns:
            probe = f"import socket; socket.create_connection(('{host}', {port}), 0.2)"
            ok = subprocess.run(["ip", "netns", "exec", netns, sys.executable, "-c", probe],
                                capture_output=True).returncode == 0
        else:
            try:
                socket.create_connection((host, port), 0.2).close()
                ok = True
            except OSError:
                ok = False
        if ok:
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing accepts on {host}:{port} after {timeout} s")


class Nginx:
    """An nginx of its own in a temp dir: `http_body` is the inside of `http {}`."""

    def __init__(self, http_body, host="127.0.0.1", port=None, netns=None):
        self.dir = tempfile.mkdtemp(prefix="lbprobe-stability-nginx-")
        os.makedirs(os.path.join(self.dir, "tmp"))
        self.host, self.port, self.netns = host, port or free_port(), netns
        user = "user root;\n" if os.geteuid() == 0 else ""
        conf = f"""{user}daemon off;
worker_processes 1;
error_log {self.dir}/error.log warn;
pid {self.dir}/nginx.pid;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {self.dir}/tmp;
    proxy_temp_path {self.dir}/tmp;
    {http_body.replace("LISTEN", f"listen {self.host}:{self.port}")}
}}
"""
        path = os.path.join(self.dir, "nginx.conf")
        with open(path, "w") as f:
            f.write(conf)
        cmd = [NGINX, "-p", self.dir + "/", "-c", path, "-e", f"{self.dir}/error.log"]
        if netns:
            cmd = ["ip", "netns", "exec", netns] + cmd
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            wait_for_port(self.host, self.port, netns)
        except RuntimeError:
            self.stop()
            raise

    def url(self):
        return f"http://{self.host}:{self.port}/"

    def stop(self):
        # The master stops its workers on SIGTERM; the session is ours, started above.
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        shutil.rmtree(self.dir, ignore_errors=True)


class Lab:
    """`lbprobe lab`: the project's lab backend on loopback (its nginx is not used here)."""

    def __init__(self, binary):
        self.out = tempfile.NamedTemporaryFile(prefix="lbprobe-stability-lab-", delete=False)
        self.proc = subprocess.Popen([binary, "lab", "--for", "7200", "--format", "json"],
                                     stdout=self.out, stderr=subprocess.DEVNULL,
                                     stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with open(self.out.name) as f:
                    info = json.load(f)
                self.backend = info["backend"]
                return
            except (ValueError, KeyError):
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("`lbprobe lab` printed no backend")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        os.unlink(self.out.name)


class SlowBackend:
    """A backend that answers every request 200 after `delay` seconds (one thread each)."""

    def __init__(self, delay):
        class Handler(http.server.BaseHTTPRequestHandler):
            def answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                time.sleep(delay)
                body = b"slow ok\n"
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_HEAD = answer

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        # A listener that gave up on the answer closes first: expected, not worth a traceback.
        self.server.handle_error = lambda request, address: None
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class NarrowPath:
    """Client, router and backend namespaces, the router's link to the backend 1280 bytes while
    every interface says 1500 (what src/lab/netns.rs builds for tests/mtu.rs)."""

    CLIENT, BACKEND = "10.77.1.1", "10.77.2.2"

    def __init__(self, tag, drop_frag_needed):
        base = f"lbp-stab{tag}-{os.getpid()}"
        self.c, self.r, self.b = base + "c", base + "r", base + "b"
        self.names = []
        try:
            for ns in (self.c, self.r, self.b):
                self.sh("ip", "netns", "add", ns)
                self.names.append(ns)
                self.sh("ip", "-n", ns, "link", "set", "lo", "up")
            c, r, b = self.c, self.r, self.b
            self.sh("ip", "-n", c, "link", "add", "c0", "type", "veth", "peer", "name", "r0", "netns", r)
            self.sh("ip", "-n", r, "link", "add", "r1", "type", "veth", "peer", "name", "b0", "netns", b)
            self.sh("ip", "-n", c, "addr", "add", "10.77.1.1/24", "dev", "c0")
            self.sh("ip", "-n", r, "addr", "add", "10.77.1.2/24", "dev", "r0")
            self.sh("ip", "-n", r, "addr", "add", "10.77.2.1/24", "dev", "r1")
            self.sh("ip", "-n", b, "addr", "add", "10.77.2.2/24", "dev", "b0")
            self.sh("ip", "-n", r, "link", "set", "r1", "mtu", "1280")
            for ns, dev in ((c, "c0"), (r, "r0"), (r, "r1"), (b, "b0")):
                self.sh("ip", "-n", ns, "link", "set", dev, "up")
            self.sh("ip", "-n", c, "route", "add", "default", "via", "10.77.1.2")
            self.sh("ip", "-n", b, "route", "add", "default", "via", "10.77.2.1")
            self.sh("ip", "netns", "exec", r, "sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward")
            if drop_frag_needed:
                for chain in ("OUTPUT", "FORWARD"):
                    self.sh("ip", "netns", "exec", r, "iptables", "-A", chain, "-p", "icmp",
                            "--icmp-type", "fragmentation-needed", "-j", "DROP")
        except Exception:
            self.stop()
            raise

    @staticmethod
    def sh(*cmd):
        subprocess.run(cmd, check=True, capture_output=True, stdin=subprocess.DEVNULL)

    def stop(self):
        for ns in reversed(self.names):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def scan(binary, args, netns=None):
    """One scan; its findings as {cause: verdict}, or an error text."""
    cmd = [binary, "scan"] + args + ["--format", "json", "-q"]
    if netns:
        cmd = ["ip", "netns", "exec", netns] + cmd
    out = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if out.returncode not in (0, 1):
        return None, f"exit {out.returncode}: {out.stderr.strip()[-300:]}"
    report = json.loads(out.stdout)
    return {f["cause"]: f["verdict"] for f in report["findings"]}, report


# Setups: (family, name, start) where start(ctx) returns (scan arguments, [things to stop], netns).

def rate_limited(ctx):
    ngx = Nginx(f"""limit_req_zone $binary_remote_addr zone=z:1m rate=50r/s;
    server {{ LISTEN; limit_req zone=z nodelay; limit_req_status 503;
        location / {{ proxy_pass {ctx.lab.backend}; proxy_http_version 1.1; }} }}""")
    return ["--listener", ngx.url(), "--backend", ctx.lab.backend, "--probes", "rate"], [ngx], None


def rate_unlimited(ctx):
    ngx = Nginx(f"""server {{ LISTEN;
        location / {{ proxy_pass {ctx.lab.backend}; proxy_http_version 1.1; }} }}""")
    return ["--listener", ngx.url(), "--backend", ctx.lab.backend, "--probes", "rate"], [ngx], None


def keepalive(ctx):
    backend = Nginx("""keepalive_timeout 1s;
    server { LISTEN; location / { return 200 'ok\\n'; } }""")
    listener = Nginx(f"""keepalive_timeout 3s;
    upstream be {{ server 127.0.0.1:{backend.port}; keepalive 4; }}
    server {{ LISTEN; location / {{ proxy_pass http://be; proxy_http_version 1.1;
        proxy_set_header Connection ""; }} }}""")
    return (["--listener", listener.url(), "--backend", backend.url(), "--probes", "keepalive"],
            [listener, backend], None)


def timing_healthy(ctx):
    ngx = Nginx(f"""server {{ LISTEN; proxy_connect_timeout 1s; proxy_read_timeout 2s;
        location / {{ proxy_pass {ctx.lab.backend}; proxy_http_version 1.1; }} }}""")
    return (["--listener", ngx.url(), "--backend", ctx.lab.backend, "--probes", "latency,connect"],
            [ngx], None)


def timing_slow_backend(ctx):
    slow = SlowBackend(1.5)
    ngx = Nginx(f"""server {{ LISTEN; proxy_connect_timeout 1s; proxy_read_timeout 500ms;
        location / {{ proxy_pass {slow.url}; proxy_http_version 1.1; }} }}""")
    return (["--listener", ngx.url(), "--backend", slow.url, "--probes", "latency,connect"],
            [ngx, slow], None)


def mtu(drop):
    def start(ctx):
        path = NarrowPath("bh" if drop else "ok", drop)
        stops = [path]
        try:
            backend = Nginx("""client_max_body_size 1m;
    server { LISTEN; location / { return 200 'ok\\n'; } }""",
                            host=NarrowPath.BACKEND, port=8080, netns=path.b)
            stops.insert(0, backend)
            listener = Nginx(f"""proxy_connect_timeout 2s; proxy_send_timeout 2s;
    proxy_read_timeout 2s;
    server {{ LISTEN; location / {{ proxy_pass {backend.url()}; proxy_http_version 1.1; }} }}""",
                             netns=path.c)
            stops.insert(0, listener)
        except Exception:
            for s in stops:
                s.stop()
            raise
        return (["--listener", listener.url(), "--backend", backend.url(), "--probes", "mtu",
                 "--timeout", "4"], stops, path.c)
    return start


SETUPS = [
    ("rate", "nginx limit_req 50r/s nodelay, no burst", rate_limited),
    ("rate", "nginx without limit_req", rate_unlimited),
    ("keepalive", "nginx 3s in front of an nginx backend closing idle after 1s", keepalive),
    ("timing", "nginx in front of the lab backend", timing_healthy),
    ("timing", "nginx read timeout 0.5s, backend answers after 1.5s", timing_slow_backend),
    ("mtu", "narrow path, ICMP frag-needed dropped", mtu(True)),
    ("mtu", "narrow path, ICMP allowed", mtu(False)),
]


def flips(seq):
    return sum(1 for a, b in zip(seq, seq[1:]) if a != b)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--families", default="rate,keepalive,timing,mtu")
    ap.add_argument("--bin", default=os.path.join(ROOT, "target", "release", "lbprobe"))
    ap.add_argument("--show", choices=("family", "all"), default="family")
    ap.add_argument("--keep", metavar="DIR")
    opts = ap.parse_args()
    families = [f.strip() for f in opts.families.split(",") if f.strip()]
    unknown = [f for f in families if f not in FAMILY_CAUSES]
    if unknown or opts.runs < 2:
        ap.error(f"unknown families {unknown} (rate, keepalive, timing, mtu) or --runs below 2")
    if not os.access(opts.bin, os.X_OK):
        ap.error(f"{opts.bin} is not an executable lbprobe (bench/stability.sh builds it)")
    if not os.access(NGINX, os.X_OK):
        sys.exit("nginx not found: apt-get install nginx-light, or set LBPROBE_NGINX")

    class Ctx:
        pass

    ctx = Ctx()
    ctx.lab = Lab(opts.bin)
    rows, skipped, errors = [], [], []
    try:
        for family, name, start in SETUPS:
            if family not in families:
                continue
            if family == "mtu" and os.geteuid() != 0:
                skipped.append(f"{family}: {name}: skipped, network namespaces need root")
                continue
            try:
                args, stops, netns = start(ctx)
            except Exception as e:
                skipped.append(f"{family}: {name}: skipped, the setup failed: {e}")
                continue
            seen = collections.defaultdict(list)
            t0 = time.monotonic()
            try:
                for i in range(opts.runs):
                    verdicts, report = scan(opts.bin, args, netns)
                    if opts.keep and verdicts is not None:
                        os.makedirs(opts.keep, exist_ok=True)
                        slug = "".join(c if c.isalnum() else "-" for c in name)[:40]
                        path = os.path.join(opts.keep, f"{family}-{slug}-{i + 1}.json")
                        with open(path, "w") as f:
                            json.dump(report, f, indent=1)
                    if verdicts is None:
                        errors.append(f"{family}: {name}: run {i + 1}: {report}")
                        verdicts = {}
                    for cause in set(seen) | set(verdicts):
                        seen[cause].append(verdicts.get(cause, "(none)"))
                    log(f"{family}: {name}: run {i + 1}/{opts.runs} done "
                        f"({time.monotonic() - t0:.0f} s)")
            finally:
                for s in stops:
                    s.stop()
            for cause, seq in sorted(seen.items()):
                # A cause first seen in a later run had no finding before it.
                seq = ["(none)"] * (opts.runs - len(seq)) + seq
                rows.append((family, name, cause, seq))
    finally:
        ctx.lab.stop()

    print(f"Verdicts over {opts.runs} scans per setup (release build: {opts.bin})\n")
    header = ("family", "setup", "cause", "verdicts seen (counts)", "flips")
    table = []
    for family, name, cause, seq in rows:
        n = flips(seq)
        if opts.show == "family" and n == 0 and not cause.startswith(FAMILY_CAUSES[family]):
            continue
        counts = collections.Counter(seq)
        seen = ", ".join(f"{v} ×{c}" for v, c in counts.most_common())
        table.append((family, name, cause, seen, str(n)))
    if table:
        widths = [max(len(r[i]) for r in table + [header]) for i in range(5)]
        for r in [header, tuple("-" * w for w in widths)] + table:
            print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
        print()
    for family in families:
        fam = [(name, cause, seq) for f, name, cause, seq in rows if f == family]
        if not fam:
            continue
        flipped = [f"{cause} ({name})" for name, cause, seq in fam if flips(seq)]
        print(f"{family}: {len(fam)} findings, "
              + (f"{len(flipped)} flipped: {'; '.join(flipped)}" if flipped else "no flips"))
    for line in skipped + errors:
        print(line)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
