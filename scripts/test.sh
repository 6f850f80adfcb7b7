#!/usr/bin/env bash
# Runs every check CI runs: setup, formatting, clippy with warnings denied, every test.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
"$root/scripts/setup.sh"

# A target dir outside the clone, so CI and fresh clones reuse earlier builds.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/triage/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
export TRIAGE_HOME="$root"

step() { echo; echo "== $* ($(date +%T))"; }
step "cargo fmt --check"
cargo fmt --all --check
step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings
step "cargo test"
cargo test --workspace --locked --no-fail-fast
