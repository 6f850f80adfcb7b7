#!/usr/bin/env bash
# The main job in one command: installs what the demo needs (redis-server, model files),
# then plays the bundled conversations through the all-in-one stack.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
"$root/scripts/setup.sh" --demo
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/triage/target}"
export TRIAGE_HOME="$root"
exec cargo run --release --locked -p triage -- demo "$@"
