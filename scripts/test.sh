#!/usr/bin/env bash
# Installs what the tests need (nginx from Debian's packages) and runs every test.
# The tests start their own nginx instances and lab backends on free loopback ports.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
[ -x /usr/sbin/nginx ] || command -v nginx >/dev/null 2>&1 || need+=(nginx-light)
[ -x /usr/sbin/ip ] || command -v ip >/dev/null 2>&1 || need+=(iproute2)
[ -x /usr/sbin/iptables ] || command -v iptables >/dev/null 2>&1 || need+=(iptables)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing: ${need[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
cargo test --all-targets --locked
