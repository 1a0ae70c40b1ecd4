#!/usr/bin/env python3
"""Records tests/fixtures/replay/chromium-h1.har and chromium-h2.har: a real headless Chromium (Debian's
`chromium`, driven by Playwright's HAR recorder) loads a page of the demo lab (`lbprobe lab`:
nginx in front of the lab backend, on loopback) twice, once as a new visitor and once with a
three tracking cookies of 3 000 bytes each, which nginx refuses with 400 ("Request Header Or Cookie Too
Large") over HTTP/1.1 (Chromium started with --disable-http2) and passes over HTTP/2, whose
header limits nginx sets apart. The HAR is what Chromium put on the wire, as recorded by the
browser itself.

Not run by the tests (Chromium is large; CI does not install it): run it by hand to record the
fixture again.

    python3 -m venv /tmp/pw && /tmp/pw/bin/pip install playwright
    apt-get install chromium
    /tmp/pw/bin/python scripts/record-har.py target/debug/lbprobe tests/fixtures/replay
"""
import json
import subprocess
import sys
import time

from playwright.sync_api import sync_playwright


def main() -> None:
    lbprobe, folder = sys.argv[1], sys.argv[2]
    lab = subprocess.Popen([lbprobe, "lab", "--format", "json"], stdout=subprocess.PIPE, text=True)
    try:
        # The lab prints its addresses once it is up; it runs until killed.
        text = ""
        deadline = time.time() + 30
        while time.time() < deadline and not text.rstrip().endswith("}"):
            text += lab.stdout.readline()
        urls = json.loads(text)
        listener = urls["listener"].rstrip("/")
        host = listener.split("://", 1)[1].split(":")[0]
        with sync_playwright() as p:
            for name, args in [("chromium-h1.har", ["--disable-http2"]), ("chromium-h2.har", [])]:
                record(p, listener, host, f"{folder}/{name}", args)
    finally:
        lab.kill()
        lab.wait()


def record(p, listener: str, host: str, out: str, args: list) -> None:
    """One HAR: the page as a new visitor, then with the cookies."""
    browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=args)
    context = browser.new_context(
        record_har_path=out,
        record_har_content="embed",
        ignore_https_errors=True,  # the lab's certificate is its own
    )
    page = context.new_page()
    page.goto(f"{listener}/shop/cart?item=42")
    context.add_cookies(
        [
            {"name": "session", "value": "s3cr3t-session-id", "domain": host, "path": "/"},
            # Chromium stores at most 4 096 bytes a cookie: three trackers make the 9 000.
            *(
                {"name": f"trk{i}", "value": "x" * 3000, "domain": host, "path": "/"}
                for i in range(1, 4)
            ),
        ]
    )
    response = page.goto(f"{listener}/shop/cart?item=42")
    print(f"{out}: second load {response.status}", file=sys.stderr)
    context.close()
    browser.close()


if __name__ == "__main__":
    main()
