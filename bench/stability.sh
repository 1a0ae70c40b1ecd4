#!/usr/bin/env bash
# Verdict stability: runs the same scan 10 times against the same lab setup, per family (rate,
# keepalive, timing, mtu), and prints per cause the verdicts seen and the flips between runs.
# Builds the release binary first; the driver is bench/stability.py (its --help lists setups).
#
#   bench/stability.sh                          # every family, 10 runs each (mtu needs root)
#   bench/stability.sh --families rate --runs 5
#   LBPROBE_BIN=/path/to/lbprobe bench/stability.sh   # an existing binary, no build
#
# Not a timed test: run it on an idle machine, where a verdict must not flip.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lbprobe-bin.sh
exec python3 bench/stability.py --bin "$LBPROBE_BIN" "$@"
