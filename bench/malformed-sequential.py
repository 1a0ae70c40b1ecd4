#!/usr/bin/env python3
"""What a person does without lbprobe: send each malformed request of a list, one after the
other, on its own connection (TLS when the URL says https), and read the answer until the
server closes or the timeout passes. Reads `lbprobe scan --dry-run --format json` from stdin
for the exact bytes, so both tools send the same requests.
Usage: lbprobe scan --dry-run ... | bench/malformed-sequential.py URL TIMEOUT"""
import json
import socket
import ssl
import sys
import urllib.parse

ESC = {"r": b"\r", "n": b"\n", "t": b"\t", "\\": b"\\", "0": b"\0"}


def unescape(text):
    out, i = bytearray(), 0
    while i < len(text):
        c = text[i]
        if c != "\\":
            out += c.encode()
            i += 1
        elif text[i + 1] == "x":
            out.append(int(text[i + 2 : i + 4], 16))
            i += 4
        else:
            out += ESC[text[i + 1]]
            i += 2
    return bytes(out)


def send(host, port, tls, data, timeout):
    with socket.create_connection((host, port), timeout=timeout) as raw:
        sock = raw
        if tls:
            ctx = ssl.create_default_context()
            ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
            sock = ctx.wrap_socket(raw, server_hostname=host)
        sock.sendall(data)
        got = b""
        try:
            while len(got) < 1 << 20:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                got += chunk
        except (socket.timeout, ssl.SSLError, ConnectionResetError):
            pass
        return got[:12]


def main():
    url, timeout = sys.argv[1], float(sys.argv[2])
    u = urllib.parse.urlsplit(url)
    plan = json.load(sys.stdin)
    sent = 0
    for r in plan["requests"]:
        if r["family"] != "malformed":
            continue
        try:
            send(u.hostname, u.port, u.scheme == "https", unescape(r["text"]), timeout)
        except OSError:
            pass
        sent += 1
    print(sent, file=sys.stderr)


main()
