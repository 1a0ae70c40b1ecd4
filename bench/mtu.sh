#!/usr/bin/env bash
# Time to the path MTU verdict: `lbprobe scan --probes mtu` with the scan's default flags, run
# from inside three network namespaces (client, router, backend; the router's link to the
# backend 1280 bytes while every interface says 1500, what src/lab/netns.rs builds for
# tests/mtu.rs), nginx in the client namespace proxying to an nginx backend in the backend
# namespace. Prints per run the wall time and the verdict of 502.mtu-mismatch, with how many
# of the family's POSTs went out.
#
#   bench/mtu.sh                      # the black hole (ICMP "fragmentation needed" dropped), 3 runs
#   bench/mtu.sh icmp-allowed 1       # the same path, ICMP allowed: PMTUD works, no black hole
#   bench/mtu.sh wide 1               # no narrow link at all
#   bench/mtu.sh all 1                # the three setups in turn
#   LBPROBE_BIN=/path/to/lbprobe bench/mtu.sh   # an existing binary, no build
#   KEEP=DIR bench/mtu.sh             # keep each scan's JSON report in DIR (SETUP-RUN.json)
#
# Needs root (namespaces, iptables, raw ICMP). Issue 17's goal: the black hole named within
# 5 s. Not a timed test: run it on an idle machine. Traffic stays inside the namespaces.
set -euo pipefail
cd "$(dirname "$0")/.."
SETUP=${1:-black-hole}
RUNS=${2:-3}
case "$SETUP" in
  black-hole | icmp-allowed | wide) SETUPS=("$SETUP") ;;
  all) SETUPS=(black-hole icmp-allowed wide) ;;
  *) echo "usage: $0 [black-hole|icmp-allowed|wide|all] [RUNS]" >&2; exit 2 ;;
esac
if [ "$(id -u)" != 0 ]; then
  echo "bench/mtu.sh builds network namespaces: run it as root" >&2
  exit 2
fi
. bench/lbprobe-bin.sh
LBPROBE_BIN=$(realpath "$LBPROBE_BIN")
NGINX=${LBPROBE_NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}

BASE="lbp-benchmtu-$$"
C="${BASE}c" R="${BASE}r" B="${BASE}b"
WORK=$(mktemp -d /tmp/lbprobe-bench-mtu.XXXXXX)
PIDS=()

cleanup() {
  # Only the nginx masters this script started (each stops its workers on SIGTERM).
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
  done
  PIDS=()
  for ns in "$C" "$R" "$B"; do ip netns del "$ns" 2>/dev/null || true; done
}
trap 'cleanup; rm -rf "$WORK"' EXIT

# build NARROW_MTU DROP_FRAG_NEEDED
build() {
  local narrow=$1 drop=$2
  for ns in "$C" "$R" "$B"; do
    ip netns add "$ns"
    ip -n "$ns" link set lo up
  done
  ip -n "$C" link add c0 type veth peer name r0 netns "$R"
  ip -n "$R" link add r1 type veth peer name b0 netns "$B"
  ip -n "$C" addr add 10.77.1.1/24 dev c0
  ip -n "$R" addr add 10.77.1.2/24 dev r0
  ip -n "$R" addr add 10.77.2.1/24 dev r1
  ip -n "$B" addr add 10.77.2.2/24 dev b0
  ip -n "$R" link set r1 mtu "$narrow"
  ip -n "$C" link set c0 up
  ip -n "$R" link set r0 up
  ip -n "$R" link set r1 up
  ip -n "$B" link set b0 up
  ip -n "$C" route add default via 10.77.1.2
  ip -n "$B" route add default via 10.77.2.1
  ip netns exec "$R" sh -c 'echo 1 > /proc/sys/net/ipv4/ip_forward'
  if [ "$drop" = 1 ]; then
    # The router sends the ICMP itself (OUTPUT); a router in between would forward it.
    for chain in OUTPUT FORWARD; do
      ip netns exec "$R" iptables -A "$chain" -p icmp --icmp-type fragmentation-needed -j DROP
    done
  fi
}

# nginx NAME NETNS LISTEN BODY: an nginx of its own, in the foreground of a background job.
nginx_in() {
  local name=$1 ns=$2 listen=$3 body=$4 dir="$WORK/$1"
  mkdir -p "$dir/tmp"
  cat >"$dir/nginx.conf" <<EOF
user root;
daemon off;
worker_processes 1;
error_log $dir/error.log warn;
pid $dir/nginx.pid;
events { worker_connections 256; }
http {
    access_log off;
    client_body_temp_path $dir/tmp;
    proxy_temp_path $dir/tmp;
    client_max_body_size 1m;
    server { listen $listen; $body }
}
EOF
  ip netns exec "$ns" "$NGINX" -p "$dir/" -c "$dir/nginx.conf" -e "$dir/error.log" </dev/null &
  PIDS+=($!)
  local host=${listen%:*} port=${listen##*:}
  for _ in $(seq 100); do
    if ip netns exec "$ns" bash -c "exec 3<>/dev/tcp/$host/$port" 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  echo "nginx $name did not start on $listen" >&2
  return 1
}

run_setup() {
  local setup=$1 narrow=1280 drop=0
  case "$setup" in
    black-hole) drop=1 ;;
    icmp-allowed) ;;
    wide) narrow=1500 ;;
  esac
  build "$narrow" "$drop"
  nginx_in backend "$B" 10.77.2.2:8080 "location / { return 200 'ok\n'; }"
  nginx_in listener "$C" 127.0.0.1:8081 "proxy_connect_timeout 2s; proxy_send_timeout 2s;
        proxy_read_timeout 2s;
        location / { proxy_pass http://10.77.2.2:8080; proxy_http_version 1.1; }"
  for run in $(seq "$RUNS"); do
    local out="$WORK/$setup-$run.json" start end
    start=$(date +%s.%N)
    ip netns exec "$C" "$LBPROBE_BIN" scan --listener http://127.0.0.1:8081/ \
      --backend http://10.77.2.2:8080/ --probes mtu --format json -q -o "$out" </dev/null || true
    end=$(date +%s.%N)
    jq -r --arg setup "$setup" --arg run "$run" \
      --arg secs "$(echo "$end - $start" | bc)" '
      ([.observations[] | select(.family == "mtu" and (.variant | startswith("post-")))] | length) as $posts
      | (.findings[] | select(.cause == "502.mtu-mismatch")) as $f
      | "\($setup) run \($run): \($secs | tonumber * 10 | round / 10) s, 502.mtu-mismatch \($f.verdict), \($posts) POSTs sent\n  \($f.reason)"' "$out"
  done
  if [ -n "${KEEP:-}" ]; then mkdir -p "$KEEP" && cp "$WORK"/"$setup"-*.json "$KEEP"/; fi
  cleanup
}

for setup in "${SETUPS[@]}"; do
  run_setup "$setup"
done
