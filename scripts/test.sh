#!/usr/bin/env bash
# Installs what the tests need (nginx, haproxy and apache2 from Debian's packages, iproute2 and
# iptables for the mtu tests) and runs every test. The tests start their own nginx, haproxy and
# apache httpd instances and lab backends on free loopback ports; the mtu tests (root) build network
# namespaces with iproute2 and drop ICMP in them with iptables.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
[ -x /usr/sbin/nginx ] || command -v nginx >/dev/null 2>&1 || need+=(nginx-light)
[ -x /usr/sbin/haproxy ] || command -v haproxy >/dev/null 2>&1 || need+=(haproxy)
[ -x /usr/sbin/apache2 ] || command -v apache2 >/dev/null 2>&1 || need+=(apache2)
command -v iptables >/dev/null 2>&1 || [ -x /usr/sbin/iptables ] || need+=(iptables)
command -v ip >/dev/null 2>&1 || [ -x /usr/sbin/ip ] || need+=(iproute2)
command -v python3 >/dev/null 2>&1 || need+=(python3)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing: ${need[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

cargo fmt --all -- --check
# Every cause a test confirms has a neighbouring setup that a test asserts does not confirm it.
python3 scripts/neighbours.py --check >/dev/null
cargo clippy --all-targets --locked -- -D warnings
cargo test --all-targets --locked
# The log-line fuzz target, briefly: every parser on arbitrary bytes, and the fast paths checked
# against the field-by-field parse. cargo-fuzz needs nightly flags (sanitizers); RUSTC_BOOTSTRAP
# lets the stable toolchain, the only one this machine has, accept them.
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked --quiet
(cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run log_line -- -max_total_time="${LBPROBE_FUZZ_SECONDS:-30}")
