#!/usr/bin/env bash
# Compares the rate family's load generator with wrk against the same nginx on loopback.
# Starts nginx (fixed 200 answer, access log off) in a temp dir on a free port, runs
# `wrk -t2 -c32 -d10s`, then the generator (examples/rate_bench.rs) with 32 keep-alive
# connections for 10 s, and prints both rates side by side.
#
#   bench/rate-vs-wrk.sh                 # release build of the example (the fair comparison)
#   PROFILE=dev bench/rate-vs-wrk.sh     # debug build, e.g. where release builds are not wanted
#   SECONDS_EACH=5 CONNECTIONS=16 bench/rate-vs-wrk.sh
set -euo pipefail
cd "$(dirname "$0")/.."

PROFILE=${PROFILE:-release}
SECONDS_EACH=${SECONDS_EACH:-10}
CONNECTIONS=${CONNECTIONS:-32}
NGINX=${LBPROBE_NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}

command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 2; }
[ -x "$NGINX" ] || { echo "nginx not found (apt-get install nginx-light)" >&2; exit 2; }

if [ "$PROFILE" = release ]; then
  cargo build --quiet --release --example rate_bench
  bench_bin=target/release/examples/rate_bench
else
  cargo build --quiet --example rate_bench
  bench_bin=target/debug/examples/rate_bench
fi

dir=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
user_line=""
[ "$(id -u)" -eq 0 ] && user_line="user root;"
mkdir -p "$dir/tmp"
cat >"$dir/nginx.conf" <<CONF
$user_line
daemon off;
worker_processes 1;
error_log $dir/error.log warn;
pid $dir/nginx.pid;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $dir/tmp;
    proxy_temp_path $dir/tmp;
    keepalive_requests 100000;
    server {
        listen 127.0.0.1:$port;
        location / { return 200 'ok\n'; }
    }
}
CONF
"$NGINX" -p "$dir/" -c "$dir/nginx.conf" -e "$dir/error.log" &
nginx_pid=$!
cleanup() { kill "$nginx_pid" 2>/dev/null || true; wait "$nginx_pid" 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT

# Wait (bounded) for nginx to accept.
for _ in $(seq 1 100); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
  sleep 0.05
done

url="http://127.0.0.1:$port/"
echo "nginx (1 worker) on $url; ${SECONDS_EACH}s each, $CONNECTIONS connections; $(nproc) CPUs; lbprobe built with profile $PROFILE"
wrk_out=$(wrk -t2 -c"$CONNECTIONS" -d"${SECONDS_EACH}s" "$url")
wrk_rps=$(awk '/Requests\/sec/ {print $2}' <<<"$wrk_out")
lb_out=$("$bench_bin" "$url" "$CONNECTIONS" "$SECONDS_EACH")
lb_rps=$(awk '{print $2}' <<<"$lb_out")
printf 'wrk      %10.0f requests/s  (wrk -t2 -c%s -d%ss)\n' "$wrk_rps" "$CONNECTIONS" "$SECONDS_EACH"
echo "$lb_out"
awk -v a="$lb_rps" -v b="$wrk_rps" 'BEGIN { printf "ratio    %10.0f%% of wrk\n", 100 * a / b }'
