#!/usr/bin/env bash
# The same checks as bench/scan.yaml, the way a person writes them with curl: one process per
# request, the header and URI limits found by the same bisection in shell. Only what curl can
# send is covered (no bare-LF, obs-fold or NUL bytes), so this is a lower bound on the work.
# Usage: checks-curl.sh LISTENER_URL BACKEND_URL
set -u
L=$1 B=$2
c() { curl -sk -o /dev/null --max-time 5 -w '%{http_code} %{time_connect} %{time_starttransfer} %{time_total}\n' "$@"; }

# protocol: plain HTTP to the HTTPS port, baseline on both sides
c "${L/https:/http:}"; c "$L"; c "$B"
# malformed (what curl can send): lowercase method, duplicate differing Content-Length
for u in "$L" "$B"; do
  c -X get "$u"
  c -X POST -H 'Content-Length: 5' -H 'Content-Length: 6' --data hello "$u"
  c -X POST -H 'Transfer-Encoding: chunked' -H 'Content-Length: 5' --data hello "$u"
done
# methods, side by side
for m in GET HEAD POST PUT DELETE PATCH OPTIONS TRACE; do
  for u in "$L" "$B"; do
    if [ "$m" = HEAD ]; then c -I "$u"; else c -X "$m" "$u"; fi
  done
done
# limits by bisection: header line and URI, 1 KiB .. 128 KiB, on both sides
bisect() { # $1 kind (header|uri) $2 url
  local lo=1024 hi=131072 mid code
  while [ $((hi - lo)) -gt 1 ]; do
    mid=$(( (lo + hi) / 2 ))
    if [ "$1" = header ]; then
      code=$(curl -sk -o /dev/null -w '%{http_code}' --max-time 5 -H "X-Pad: $(head -c $((mid - 7)) /dev/zero | tr '\0' a)" "$2")
    else
      code=$(curl -sk -o /dev/null -w '%{http_code}' --max-time 5 "$2?p=$(head -c $((mid - 4)) /dev/zero | tr '\0' a)")
    fi
    case $code in 400|413|414|431|494|000) hi=$mid ;; *) lo=$mid ;; esac
  done
  echo "$1 limit $2: $lo"
}
for u in "$L" "$B"; do bisect header "$u"; bisect uri "$u"; done
# latency: 10 timed requests per side
for u in "$L" "$B"; do for _ in 1 2 3 4 5 6 7 8 9 10; do c "$u"; done; done
# connect: 3 handshakes per side
for u in "$L" "$B"; do for _ in 1 2 3; do curl -sk -o /dev/null --max-time 5 --connect-only "$u"; done; done
# response: a strict look at the backend's answer
curl -sv -o /dev/null "$B" 2>&1 | grep -c '^<' >/dev/null
