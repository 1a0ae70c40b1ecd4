#!/usr/bin/env bash
# Installs what the tests need (nginx, haproxy and apache2 from Debian's packages, iproute2 and
# iptables for the mtu tests, curl for the replay's byte-for-byte comparison with curl, xmllint
# for the JUnit schema check, prometheus and its promtool for the serve mode's tests and the
# shipped examples under deploy/) and runs
# every test. The tests start their own nginx, haproxy and
# apache httpd instances and lab backends on free loopback ports; the mtu tests (root) build network
# namespaces with iproute2 and drop ICMP in them with iptables. The SQL tests (tests/logs_sql.rs,
# tests/logs_real.rs) run the emitted query on DuckDB and ClickHouse's engine (chdb) from a Python
# venv at target/pyenv (LBPROBE_PYTHON overrides), parse the Trino query with sqlglot, and start
# a throwaway PostgreSQL cluster with Debian's postgresql.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
[ -x /usr/sbin/nginx ] || command -v nginx >/dev/null 2>&1 || need+=(nginx-light)
[ -x /usr/sbin/haproxy ] || command -v haproxy >/dev/null 2>&1 || need+=(haproxy)
[ -x /usr/sbin/apache2 ] || command -v apache2 >/dev/null 2>&1 || need+=(apache2)
command -v iptables >/dev/null 2>&1 || [ -x /usr/sbin/iptables ] || need+=(iptables)
command -v ip >/dev/null 2>&1 || [ -x /usr/sbin/ip ] || need+=(iproute2)
command -v python3 >/dev/null 2>&1 || need+=(python3)
command -v curl >/dev/null 2>&1 || need+=(curl)
# xmllint validates the JUnit reports against tests/junit.xsd (tests/junit_schema.rs).
command -v xmllint >/dev/null 2>&1 || need+=(libxml2-utils)
{ [ -x /usr/bin/prometheus ] && [ -x /usr/bin/promtool ]; } || need+=(prometheus)
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || need+=(python3-venv)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing: ${need[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

py=${LBPROBE_PYTHON:-target/pyenv/bin/python}
if ! "$py" -c 'import duckdb, chdb, sqlglot' >/dev/null 2>&1; then
  python3 -m venv target/pyenv
  # Pinned: the versions the tests were written against (a new release changes SQL quirks).
  target/pyenv/bin/pip install --quiet duckdb==2.0.1 chdb==4.4.0 sqlglot==30.31.0
fi

cargo fmt --all -- --check
# Every cause a test confirms has a neighbouring setup that a test asserts does not confirm it.
python3 scripts/neighbours.py --check >/dev/null
cargo clippy --all-targets --locked -- -D warnings
cargo test --all-targets --locked
# The fuzz targets, briefly, each from its seed corpus (fuzz/seeds/): the access-log parsers
# (fast paths checked against the field-by-field parse), the HTTP response parser, the scenario
# loader, the target URL parser and replay's request reader (raw, curl, HAR). cargo-fuzz needs nightly flags (sanitizers); RUSTC_BOOTSTRAP
# lets the stable toolchain, the only one this machine has, accept them. New inputs go to a
# scratch corpus, never into the tree.
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked --quiet
corpus=$(mktemp -d)
trap 'rm -rf "$corpus"' EXIT
for target in log_line http_response scenario target_url replay_request; do
  mkdir -p "$corpus/$target"
  (cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run "$target" "$corpus/$target" "seeds/$target" -- \
    -max_total_time="${LBPROBE_FUZZ_SECONDS:-20}")
done
