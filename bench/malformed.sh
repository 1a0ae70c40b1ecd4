#!/usr/bin/env bash
# Times the whole malformed-request catalogue against one target on loopback: the lab's nginx
# HTTPS listener (nginx-light). lbprobe sends the templates concurrently (8 at a time, the
# templates a server may sit on all at once, each waiting out its bound); the baseline is
# what a person would otherwise script: the same bytes, one connection after the other
# (bench/malformed-sequential.py). Both use the same per-request timeout, TIMEOUT (0.5 s by
# default: the templates nginx sits on, a body that never comes, are then "waited 0.5 s").
# Prints the median of RUNS runs (5 by default).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-5}
TIMEOUT=${TIMEOUT:-0.5}
cargo build --release --quiet
bin=target/release/lbprobe
info=$(mktemp); plan=$(mktemp)
trap 'kill $lab 2>/dev/null || true; rm -f "$info" "$plan"' EXIT
"$bin" lab --for 300 --format json >"$info" &
lab=$!
for _ in $(seq 1 100); do grep -q listener "$info" 2>/dev/null && break; sleep 0.05; done
L=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["listener"])' "$info")
[ "$L" != None ] || { echo "nginx is needed (apt-get install nginx-light)"; exit 1; }

# Loopback and a lab target: the production rate cap (50/s) is lifted, the timeout shortened.
scan=("$bin" scan --listener "$L" --insecure --probes malformed --max-rate 100000 --timeout "$TIMEOUT" -q --format json)
"${scan[@]}" --dry-run >"$plan"
templates=$(python3 -c 'import json,sys; print(sum(r["family"]=="malformed" for r in json.load(open(sys.argv[1]))["requests"]))' "$plan")

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
now() { date +%s.%N; }
time_it() { local t0 t1; t0=$(now); "$@" >/dev/null 2>&1 || true; t1=$(now); echo "$t1 - $t0" | bc -l; }

lb=(); seq_=()
for _ in $(seq 1 "$RUNS"); do
  lb+=("$(time_it "${scan[@]}")")
  seq_+=("$(time_it sh -c "bench/malformed-sequential.py '$L' '$TIMEOUT' < '$plan'")")
done
a=$(printf '%s\n' "${lb[@]}" | median)
b=$(printf '%s\n' "${seq_[@]}" | median)
printf '%d templates through nginx over TLS, per-request timeout %s s, median of %d runs\n' "$templates" "$TIMEOUT" "$RUNS"
printf '  %-44s %6.2f s\n' "lbprobe scan --probes malformed" "$a"
printf '  %-44s %6.2f s\n' "sequential script (bench/malformed-sequential.py)" "$b"
printf 'lbprobe is %.1fx faster\n' "$(echo "$b / $a" | bc -l)"
