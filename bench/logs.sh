#!/usr/bin/env bash
# Benchmark of `lbprobe logs` against an awk script that counts (status, upstream_status) pairs.
# Generates a seeded nginx log (LBPROBE_BENCH_MB, default 1024 MB) once under bench/data/ (git
# ignores it), warms the page cache, then prints MB/s side by side.
#   bench/logs.sh                    # 1 GB
#   LBPROBE_BENCH_MB=100 bench/logs.sh
#   LBPROBE_BENCH_BASELINE=/tmp/old/lbprobe bench/logs.sh   # the same rows for another build too
set -euo pipefail
cd "$(dirname "$0")/.."
mb=${LBPROBE_BENCH_MB:-1024}
data=bench/data/nginx-${mb}mb.log
mkdir -p bench/data
if [ ! -s "$data" ]; then
  echo "generating $data (seed 42)…" >&2
  python3 bench/gen_nginx_log.py $((mb * 1024 * 1024)) 42 > "$data.tmp"
  mv "$data.tmp" "$data"
fi
cargo build --release --quiet
bin=${CARGO_TARGET_DIR:-target}/release/lbprobe
bytes=$(stat -c %s "$data")
cat "$data" > /dev/null   # into the page cache, so every tool reads from memory

# Wall time, and CPU time (user + sys), which stays fair on a machine shared with other work.
measure() {
  local f; f=$(mktemp)
  /usr/bin/time -f "%e %U %S %M" -o "$f" "$@" > /dev/null
  awk -v b="$bytes" '{ cpu = $2 + $3; printf "%7.0f MB/s wall (%.2f s)  %7.0f MB/s cpu (%.2f s)  max RSS %3.0f MB", b / 1048576 / $1, $1, b / 1048576 / cpu, cpu, $4 / 1024 }' "$f"
  rm -f "$f"
}
row() { local label=$1; shift; printf '  %-38s %s\n' "$label" "$(measure "$@")"; }

# $9 is the status, $15 upstream_status (a retry's `502, 200` splits in two: counted as is).
script='{ n[$9 " " $15]++ } END { for (k in n) print k, n[k] }'
cores=$(nproc)
printf '%s: %d MB, %d cores\n' "$data" $((bytes / 1048576)) "$cores"
row "cat (page cache read)" cat "$data"
row "awk (status, upstream_status) pairs" awk "$script" "$data"
row "lbprobe logs, 1 thread" "$bin" logs --threads 1 --log-format upstream "$data"
row "lbprobe logs, $cores threads" "$bin" logs --threads "$cores" --log-format upstream "$data"
if [ -n "${LBPROBE_BENCH_BASELINE:-}" ]; then
  base=$LBPROBE_BENCH_BASELINE
  row "baseline logs, 1 thread" "$base" logs --threads 1 --log-format upstream "$data"
  row "baseline logs, $cores threads" "$base" logs --threads "$cores" --log-format upstream "$data"
fi
