#!/usr/bin/env bash
# Times a full lbprobe scan of the lab (nginx + lab backend on loopback) against the same checks
# written as a curl shell script (bench/checks-curl.sh). Prints the median of RUNS runs of each.
# Usage: bench/scan-vs-curl.sh   (RUNS=5 by default; needs nginx for the listener half)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-5}
cargo build --release --quiet
bin=target/release/lbprobe
info=$(mktemp)
trap 'kill $lab 2>/dev/null || true; rm -f "$info"' EXIT
"$bin" lab --for 300 --format json >"$info" &
lab=$!
for _ in $(seq 1 100); do grep -q listener "$info" 2>/dev/null && break; sleep 0.05; done
L=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["listener"])' "$info")
B=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["backend"])' "$info")
[ "$L" != None ] || { echo "nginx is needed for the listener half (apt-get install nginx-light)"; exit 1; }

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
now() { date +%s.%N; }
time_it() { local t0 t1; t0=$(now); "$@" >/dev/null 2>&1 || true; t1=$(now); echo "$t1 - $t0" | bc -l; }

scan_times=(); curl_times=()
for _ in $(seq 1 "$RUNS"); do
  scan_times+=("$(time_it "$bin" run bench/scan.yaml -q --format json --var LAB_LISTENER="$L" --var LAB_BACKEND="$B")")
  curl_times+=("$(time_it bench/checks-curl.sh "$L" "$B")")
done
requests=$("$bin" run bench/scan.yaml -q --format json --var LAB_LISTENER="$L" --var LAB_BACKEND="$B" | python3 -c 'import json,sys; print(json.load(sys.stdin)["requests_sent"])' || true)
s=$(printf '%s\n' "${scan_times[@]}" | median)
c=$(printf '%s\n' "${curl_times[@]}" | median)
printf '%-32s %8s\n' "tool" "median s"
printf '%-32s %8.2f   (%s requests, all families but the timeout waits)\n' "lbprobe run bench/scan.yaml" "$s" "$requests"
printf '%-32s %8.2f   (the subset curl can send)\n' "bench/checks-curl.sh" "$c"
printf 'lbprobe is %.1fx faster\n' "$(echo "$c / $s" | bc -l)"
