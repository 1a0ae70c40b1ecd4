# Sourced by the bench scripts, from the repository's root: sets LBPROBE_BIN, the lbprobe they
# run: the one the variable already names, else the release build, built now.
if [ -z "${LBPROBE_BIN:-}" ]; then
  cargo build --release --quiet
  LBPROBE_BIN=${CARGO_TARGET_DIR:-target}/release/lbprobe
fi
