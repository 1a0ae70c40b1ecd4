#!/usr/bin/env bash
# Hostile and broken servers (issue 16): scans every `lbprobe lab --hostile` kind with the
# scan's defaults, as backend and as listener, and prints per scan the time to the report, the
# peak RSS, the requests sent, whether the JSON report is valid and the verdicts that name the
# problem. Goal: every report within 60 s, a silent server named silent within 15 s.
# Builds the release binary first; the driver is bench/hostile.py (its --help lists options).
#
#   bench/hostile.sh                                  # every kind, both roles, 4 scans at once
#   bench/hostile.sh --kinds silence,drip --roles backend --jobs 1
#   LBPROBE_BIN=/path/to/lbprobe bench/hostile.sh     # an existing binary, no build
#
# Exit 1 when a row misses its goal. Not a timed test: run it on an idle machine.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lbprobe-bin.sh
exec python3 bench/hostile.py --bin "$LBPROBE_BIN" "$@"
