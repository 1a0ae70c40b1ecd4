#!/usr/bin/env bash
# Benchmark of `lbprobe logs` against an awk script that counts (status, upstream_status) pairs.
# Generates a seeded nginx log (LBPROBE_BENCH_MB, default 1024 MB) once under bench/data/ (git
# ignores it), warms the page cache, then prints MB/s side by side.
#   bench/logs.sh                    # 1 GB
#   LBPROBE_BENCH_MB=100 bench/logs.sh
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

now() { date +%s.%N; }
rate() { awk -v b="$bytes" -v s="$1" 'BEGIN { printf "%8.0f MB/s  (%.2f s)", b / 1048576 / s, s }'; }
run() {
  local t0 t1
  t0=$(now); "$@" > /dev/null; t1=$(now)
  awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }'
}

# $9 is the status; upstream_status is field 15 (its retries `502, 200` split in two: counted as is).
awk_count() { awk '{ n[$9 " " $15]++ } END { for (k in n) print k, n[k] }' "$data"; }
cat_only() { cat "$data"; }

cores=$(nproc)
printf '%s: %d MB, %d cores\n' "$data" $((bytes / 1048576)) "$cores"
printf '  %-34s %s\n' "cat (page cache read)" "$(rate "$(run cat_only)")"
printf '  %-34s %s\n' "awk (status, upstream_status) pairs" "$(rate "$(run awk_count)")"
if command -v mawk >/dev/null; then
  printf '  %-34s %s\n' "mawk, same script" "$(rate "$(run mawk '{ n[$9 " " $15]++ } END { for (k in n) print k, n[k] }' "$data")")"
fi
printf '  %-34s %s\n' "lbprobe logs, 1 thread" "$(rate "$(run "$bin" logs --threads 1 --log-format upstream "$data")")"
printf '  %-34s %s\n' "lbprobe logs, $cores threads" "$(rate "$(run "$bin" logs --threads "$cores" --log-format upstream "$data")")"
