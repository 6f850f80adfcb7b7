#!/usr/bin/env bash
# Load benchmark of the gateway against a fast fake upstream (fixed reply, no delay), so what
# is measured is Triage itself: classification (embedded MiniLM, Redis cache warm), policy,
# ledger reserve/commit, context and decision log in Redis, the provider adapter.
#
# Three paths at the same fixed rates (open loop), then without a rate limit (saturation):
#   grpc    Router.Route on the gateway's gRPC port      (triage-load, tonic, HDR histogram)
#   http    POST /v1/chat/completions on the HTTP port   (oha)
#   direct  the fake upstream itself, no gateway         (oha)
# Added latency = gateway minus direct at the same rate, per percentile. Peak RSS of the
# gateway process comes from VmHWM in /proc/PID/status.
#
# Usage: scripts/bench.sh [--split | --floor K] [--quick] [--duration S] [--rates "500 1000 2000"]
#                         [--concurrency N] [--workers N] [--out PREFIX] [--no-build] [--hold]
#                         [--triage PATH] [--log-filter F] [--redis-unix]
#   --split        every service in its own process (six, same Redis), at 1000 req/s unless
#                  --rates says otherwise
#   --floor K      measures triage-floor instead of Triage: the same serving code, K Redis
#                  round trips and the upstream call, nothing else (the machine's floor for a
#                  design with K round trips; default out docs/bench/floor-K)
#   --quick        2 s runs: a smoke test of the script (results go to a temp dir unless --out)
#   --workers N    tokio worker threads of each triage process (TOKIO_WORKER_THREADS,
#                  default 1: the load generators, Redis and the fake upstream need the
#                  other core; in Kubernetes the chart sets it from the CPU limit)
#   --out PREFIX   writes PREFIX.md and PREFIX.json (default docs/bench/latest[-split])
#   --no-build     uses the release binaries already in $CARGO_TARGET_DIR
#   --hold         starts and warms the stack, prints its addresses and PIDs, and waits
#                  (for perf, strace or a load generator of your own) until interrupted
#   --triage PATH  serves with this triage binary instead of the release build (A/B runs of
#                  two commits: scripts/bench-ab.sh)
#   --log-filter F RUST_LOG of the triage processes (default warn; `info` adds the gateway's
#                  line per Route, as the product's default config logs)
#   --redis-unix   Triage (or triage-floor) reaches Redis over a Unix socket instead of TCP
#                  loopback, as a Redis in the same pod or on the same host can be reached
#                  (`redis.url: unix:///path`)
# The Markdown table goes to stdout, progress to stderr. Every process started here is
# stopped on exit. Numbers only mean something on an otherwise idle machine.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

duration=10
rates=""
concurrency=50
workers=1
split=0
quick=0
build=1
hold=0
out=""
floor=""
triage_override=""
log_filter=warn
redis_unix=0
usage() { sed -n '13,37p' "$0" | sed 's/^# \{0,1\}//' >&2; }
while [[ $# -gt 0 ]]; do
  case "$1" in
    --duration) duration="${2:?--duration needs seconds}"; shift 2 ;;
    --rates) rates="${2:?--rates needs a list}"; shift 2 ;;
    --concurrency) concurrency="${2:?--concurrency needs a number}"; shift 2 ;;
    --workers) workers="${2:?--workers needs a number}"; shift 2 ;;
    --out) out="${2:?--out needs a path prefix}"; shift 2 ;;
    --split) split=1; shift ;;
    --floor) floor="${2:?--floor needs a number of Redis round trips}"; shift 2 ;;
    --quick) quick=1; shift ;;
    --no-build) build=0; shift ;;
    --hold) hold=1; shift ;;
    --triage) triage_override="${2:?--triage needs a binary}"; shift 2 ;;
    --log-filter) log_filter="${2:?--log-filter needs a filter}"; shift 2 ;;
    --redis-unix) redis_unix=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "bench: unknown argument $1" >&2; usage; exit 2 ;;
  esac
done
[[ $quick -eq 1 ]] && duration=2
if [[ -z "$rates" ]]; then
  if [[ $split -eq 1 ]]; then rates="1000"; else rates="500 1000 2000"; fi
fi
[[ "$duration" =~ ^[0-9]+$ && "$duration" -gt 0 ]] || { echo "bench: --duration must be whole seconds > 0" >&2; exit 2; }
[[ "$concurrency" =~ ^[0-9]+$ && "$concurrency" -gt 0 ]] || { echo "bench: --concurrency must be > 0" >&2; exit 2; }
[[ "$workers" =~ ^[0-9]+$ && "$workers" -gt 0 ]] || { echo "bench: --workers must be > 0" >&2; exit 2; }
for r in $rates; do
  [[ "$r" =~ ^[0-9]+$ && "$r" -gt 0 ]] || { echo "bench: rate '$r' is not a positive integer" >&2; exit 2; }
done
if [[ -n "$floor" ]]; then
  [[ "$floor" =~ ^[0-9]+$ ]] || { echo "bench: --floor takes a whole number of round trips" >&2; exit 2; }
  [[ $split -eq 0 ]] || { echo "bench: --floor and --split exclude each other" >&2; exit 2; }
fi
mode=$([[ $split -eq 1 ]] && echo split || echo all-in-one)
[[ -n "$floor" ]] && mode="floor, $floor Redis round trip(s)"
[[ $redis_unix -eq 1 ]] && mode="$mode, Redis over a Unix socket"

# fd 9: this script's stderr, whatever a command's stderr is redirected to when a message or
# the cleanup comes.
exec 9>&2
log() { echo "bench: $* ($(date +%T))" >&9; }
die() { echo "bench: error: $*" >&9; exit 1; }

# --- processes, cleanup -------------------------------------------------------------------
work="$(mktemp -d "${TMPDIR:-/tmp}/triage-bench.XXXXXX")"
pids=()
ok_exit=0
cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for _ in $(seq 50); do
    local alive=0
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [[ $alive -eq 0 ]] && break
    sleep 0.1
  done
  for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [[ $ok_exit -eq 1 ]]; then
    rm -rf "$work"
  else
    echo "bench: logs kept in $work" >&9
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Runs a command as a child the cleanup knows about, and waits for it: a signal to this script
# then stops it at once instead of after the command ends.
run_child() {
  "$@" &
  local pid=$! rc=0 p keep=()
  pids+=("$pid")
  wait "$pid" || rc=$?
  for p in "${pids[@]}"; do [[ $p == "$pid" ]] || keep+=("$p"); done
  pids=("${keep[@]}")
  return $rc
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

# Waits until 127.0.0.1:$1 accepts connections while process $2 lives ($3: name for errors).
wait_port() {
  local port=$1 pid=$2 name=$3 log=$4
  for _ in $(seq 1800); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -n 30 "$log" >&2 || true
      die "$name exited before listening on $port"
    fi
    sleep 0.1
  done
  tail -n 30 "$log" >&2 || true
  die "$name never listened on $port"
}

# --- build and tools ------------------------------------------------------------------------
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/triage/target}"
"$root/scripts/setup.sh" --demo >&2   # redis-server and the model files (idempotent)
if [[ $build -eq 1 ]]; then
  log "building release binaries"
  cargo build --release --locked -p triage -p triage-testkit --bins >&2
fi
bin="$CARGO_TARGET_DIR/release"
for b in triage-load triage-floor fake-upstream; do [[ -x "$bin/$b" ]] || die "$bin/$b missing after the build"; done
triage="${triage_override:-$bin/triage}"
[[ -x "$triage" ]] || die "$triage missing or not executable"

tools="$HOME/.cache/triage/tools"
oha="$tools/bin/oha"
if [[ ! -x "$oha" ]]; then
  if command -v oha >/dev/null 2>&1; then
    oha="$(command -v oha)"
  else
    log "installing oha into $tools"
    CARGO_TARGET_DIR="$HOME/.cache/triage/target-tools" cargo install oha --locked --root "$tools" >&2
  fi
fi
oha_version="$("$oha" --version | awk '{print $2}')"
if "$oha" --help | grep -q -- '--output-format'; then oha_json=(--output-format json); else oha_json=(--json); fi
oha_wait=()
"$oha" --help | grep -q -- '--wait-ongoing-requests-after-deadline' && oha_wait=(-w)
oha_lc=()
"$oha" --help | grep -q -- '--latency-correction' && oha_lc=(--latency-correction)

# --- Redis, fake upstream ---------------------------------------------------------------------
redis_port=$(free_port)
redis_socket=()
[[ $redis_unix -eq 1 ]] && redis_socket=(--unixsocket "$work/redis.sock" --unixsocketperm 700)
redis-server --port "$redis_port" --bind 127.0.0.1 "${redis_socket[@]}" --save '' --appendonly no --dir "$work" \
  --daemonize no >"$work/redis.log" 2>&1 &
pids+=($!)
wait_port "$redis_port" "${pids[-1]}" redis-server "$work/redis.log"
# The TCP port stays open either way, for redis-cli and the warm-up checks.
redis_url="redis://127.0.0.1:$redis_port"
[[ $redis_unix -eq 1 ]] && redis_url="unix://$work/redis.sock"

fake_port=$(free_port)
"$bin/fake-upstream" --listen "127.0.0.1:$fake_port" >"$work/fake.log" 2>&1 &
pids+=($!)
wait_port "$fake_port" "${pids[-1]}" fake-upstream "$work/fake.log"
log "redis-server on $redis_port, fake upstream on $fake_port"

# --- config: the embedded default's models (config/triage.yaml), every provider model on the
# fake upstream, a policy that sends every turn to the middle model (the local CPU model never
# answers), spend limits far above what a run spends, logs at warn. ----------------------------
http_port=$(free_port)
declare -A port
for s in gateway classifier policy backends context ledger; do port[$s]=$(free_port); done
upstream="http://127.0.0.1:$fake_port/v1"
cat >"$work/policy.yaml" <<EOF
version: 1
rules:
  - id: default
    when: 'true'
    model: groq-llama-70b
    reason: benchmark; every turn to the fake upstream
EOF
cat >"$work/triage.yaml" <<EOF
tiers:
  fast: local-smollm2
  middle: groq-llama-70b
  frontier: claude-sonnet
models:
  local-smollm2:
    tier: fast
    provider: { kind: local, gguf: models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf }
    version: smollm2-135m-instruct-q4_1
    context_window: 4096
    price: { input_per_mtok: 0, output_per_mtok: 0 }
  groq-llama-70b:
    tier: middle
    provider: { kind: openai, base_url: "$upstream", model_id: llama-3.3-70b-versatile, api_key: { env: TRIAGE_BENCH_UPSTREAM_KEY } }
    version: llama-3.3-70b-versatile
    context_window: 131072
    price: { input_per_mtok: 590000, output_per_mtok: 790000 }
    fallbacks: [openai-gpt-4o-mini, local-smollm2]
  openai-gpt-4o-mini:
    tier: middle
    provider: { kind: openai, base_url: "$upstream", model_id: gpt-4o-mini-2024-07-18, api_key: { env: TRIAGE_BENCH_UPSTREAM_KEY } }
    version: gpt-4o-mini-2024-07-18
    context_window: 128000
    price: { input_per_mtok: 150000, output_per_mtok: 600000 }
    fallbacks: [local-smollm2]
  claude-sonnet:
    tier: frontier
    provider: { kind: openai, base_url: "$upstream", model_id: claude-3-5-sonnet-20241022, api_key: { env: TRIAGE_BENCH_UPSTREAM_KEY } }
    version: claude-3-5-sonnet-20241022
    context_window: 200000
    price: { input_per_mtok: 3000000, output_per_mtok: 15000000 }
    fallbacks: [openai-gpt-4o, groq-llama-70b, local-smollm2]
  openai-gpt-4o:
    tier: frontier
    provider: { kind: openai, base_url: "$upstream", model_id: gpt-4o-2024-08-06, api_key: { env: TRIAGE_BENCH_UPSTREAM_KEY } }
    version: gpt-4o-2024-08-06
    context_window: 128000
    price: { input_per_mtok: 2500000, output_per_mtok: 10000000 }
    fallbacks: [groq-llama-70b, local-smollm2]
classifier:
  kind: embedded
  encoder_dir: models/all-minilm-l6-v2
  cache: { enabled: true }
policy:
  file: $work/policy.yaml
ledger:
  fail_mode: closed
  limits:
    - { scope: global, window: day, limit_micros: 1000000000000 }
redis:
  url: $redis_url
  key_prefix: bench
server:
  http_listen: 127.0.0.1:$http_port
  drain_delay: 100ms
  grace_period: 5s
telemetry:
  log_filter: warn
services:
EOF
for s in gateway classifier policy backends context ledger; do
  printf "  %s: { listen: '127.0.0.1:%s', connect: 'http://127.0.0.1:%s' }\n" "$s" "${port[$s]}" "${port[$s]}" >>"$work/triage.yaml"
done
"$triage" config check "$work/triage.yaml" >&2 || die "generated config rejected: $work/triage.yaml"

# --- the gateway ------------------------------------------------------------------------------
serve() { # $1: target
  env -u TRIAGE_REDIS_URL -u TRIAGE_CONFIG -u OTEL_EXPORTER_OTLP_ENDPOINT \
    TRIAGE_HOME="$root" RUST_LOG="$log_filter" TRIAGE_BENCH_UPSTREAM_KEY=bench-key TOKIO_WORKER_THREADS="$workers" \
    "$triage" --config "$work/triage.yaml" serve --target "$1" >"$work/serve-$1.log" 2>&1 &
  pids+=($!)
  serve_pid[$1]=$!
}
declare -A serve_pid
if [[ -n "$floor" ]]; then
  log "starting triage-floor ($floor Redis round trips per request)"
  env RUST_LOG="$log_filter" TOKIO_WORKER_THREADS="$workers" "$bin/triage-floor" --grpc-listen "127.0.0.1:${port[gateway]}" \
    --http-listen "127.0.0.1:$http_port" --redis "$redis_url" --upstream "$upstream" \
    --redis-trips "$floor" >"$work/serve-floor.log" 2>&1 &
  pids+=($!)
  serve_pid[floor]=$!
  gw_pid=$!
  gw_log="$work/serve-floor.log"
  wait_port "${port[gateway]}" "$gw_pid" "triage-floor" "$gw_log"
elif [[ $split -eq 1 ]]; then
  log "starting six services, one process each"
  for s in classifier policy backends context ledger gateway; do serve "$s"; done
  for s in classifier policy backends context ledger gateway; do
    wait_port "${port[$s]}" "${serve_pid[$s]}" "triage serve --target $s" "$work/serve-$s.log"
  done
  gw_pid=${serve_pid[gateway]}
  gw_log="$work/serve-gateway.log"
else
  log "starting triage serve --target all"
  serve all
  gw_pid=${serve_pid[all]}
  gw_log="$work/serve-all.log"
  wait_port "${port[gateway]}" "$gw_pid" "triage serve" "$gw_log"
fi
wait_port "$http_port" "$gw_pid" "triage HTTP endpoint" "$gw_log"
grpc_url="http://127.0.0.1:${port[gateway]}"
http_url="http://127.0.0.1:$http_port/v1/chat/completions"
direct_url="$upstream/chat/completions"

# --- warm-up: every distinct query once (classifier cache), both endpoints, the fake ----------
query="Where is my order?"
printf '{"model":"triage/auto","messages":[{"role":"user","content":"%s"}],"max_tokens":8,"temperature":0}\n' "$query" >"$work/body-http.json"
printf '{"model":"llama-3.3-70b-versatile","messages":[{"role":"system","content":"You are a concise assistant."},{"role":"user","content":"%s"}],"max_tokens":8,"temperature":0}\n' "$query" >"$work/body-direct.json"
log "warming up (each distinct query once)"
run_child "$bin/triage-load" --addr "$grpc_url" --warm --duration 0 --label warm >"$work/warm.json" 2>>"$work/load.log" \
  || { tail -n 30 "$gw_log" >&2; die "gRPC warm-up failed (see $work/load.log)"; }
for target in "$http_url|$work/body-http.json" "$direct_url|$work/body-direct.json"; do
  url="${target%%|*}"; body="${target##*|}"
  curl -sS --fail-with-body -o "$work/warm-http.out" -H 'content-type: application/json' --data-binary "@$body" "$url" \
    || { cat "$work/warm-http.out" >&2 2>/dev/null; die "warm-up request to $url failed"; }
done
grep -q '"content"' "$work/warm-http.out" || die "unexpected reply from $direct_url"
# What is measured is what was meant: the fake-upstream model answered, not a fallback, and
# the classifier labelled the turn (no degraded classification). The floor classifies nothing.
[[ -n "$floor" ]] || "$triage" route "$query" --json --addr "$grpc_url" >"$work/check.json" 2>>"$work/load.log" \
  || die "triage route failed (see $work/load.log)"
[[ -n "$floor" ]] || python3 - "$work/check.json" <<'PY' || die "the check Route did not go as configured: $work/check.json"
import json, sys
r = json.load(open(sys.argv[1]))
c = r.get("classification") or {}
problems = []
if r.get("model") != "groq-llama-70b" or r.get("downgraded"):
    problems.append(f"answered by {r.get('model')} (downgraded={r.get('downgraded')})")
if not c.get("complexity"):
    problems.append(f"no classification: {c}")
if r.get("warnings"):
    problems.append(f"warnings: {r['warnings']}")
if problems:
    sys.exit("bench: " + "; ".join(problems))
PY

if [[ $hold -eq 1 ]]; then
  cat >&9 <<EOF
bench: holding the warmed stack ($mode); Ctrl-C stops it
  gRPC Route    $grpc_url
  HTTP          $http_url
  direct        $direct_url   (body: $work/body-direct.json)
  redis         127.0.0.1:$redis_port (Triage uses $redis_url)
  triage PIDs   $(for n in "${!serve_pid[@]}"; do printf '%s=%s ' "$n" "${serve_pid[$n]}"; done)
  config        $work/triage.yaml
EOF
  wait
  exit 0
fi

# --- runs -------------------------------------------------------------------------------------
runs=()
run_oha() { # $1 name, $2 url, $3 body, $4 rate (0: unlimited)
  local name=$1 url=$2 body=$3 rate=$4 q=() file
  file="$work/run-$name-$rate.json"
  [[ $rate -gt 0 ]] && q=(-q "$rate" "${oha_lc[@]}")
  run_child timeout $((duration + 120)) "$oha" -z "${duration}s" "${q[@]}" -c "$concurrency" --no-tui "${oha_json[@]}" "${oha_wait[@]}" \
    -m POST -T application/json -D "$body" "$url" >"$file" 2>>"$work/oha.log" \
    || die "oha against $url failed (see $work/oha.log)"
  runs+=("oha|$name|$rate|$file")
}
run_grpc() { # $1 rate (0: unlimited)
  local rate=$1 file
  file="$work/run-grpc-$rate.json"
  run_child timeout $((duration + 120)) "$bin/triage-load" --addr "$grpc_url" --rate "$rate" --concurrency "$concurrency" \
    --duration "$duration" --label "grpc" >"$file" 2>>"$work/load.log" \
    || die "triage-load failed (see $work/load.log)"
  runs+=("load|grpc|$rate|$file")
}
for rate in $rates; do
  log "$rate req/s for ${duration}s: direct"
  run_oha direct "$direct_url" "$work/body-direct.json" "$rate"
  log "$rate req/s for ${duration}s: gRPC Route"
  run_grpc "$rate"
  log "$rate req/s for ${duration}s: HTTP /v1/chat/completions"
  run_oha http "$http_url" "$work/body-http.json" "$rate"
done
log "saturation (no rate limit) for ${duration}s: direct, gRPC, HTTP"
run_oha direct "$direct_url" "$work/body-direct.json" 0
run_grpc 0
run_oha http "$http_url" "$work/body-http.json" 0

# --- peak RSS ---------------------------------------------------------------------------------
rss_lines=()
for name in "${!serve_pid[@]}"; do
  pid=${serve_pid[$name]}
  kill -0 "$pid" 2>/dev/null || { tail -n 30 "$work/serve-$name.log" >&2; die "triage serve --target $name died during the run"; }
  hwm=$(awk '/^VmHWM:/{print $2}' "/proc/$pid/status")
  rss=$(awk '/^VmRSS:/{print $2}' "/proc/$pid/status")
  rss_lines+=("$name|$hwm|$rss")
done

# --- report -----------------------------------------------------------------------------------
if [[ -z "$out" ]]; then
  if [[ $quick -eq 1 ]]; then
    out="${TMPDIR:-/tmp}/triage-bench-quick"
  elif [[ -n "$floor" ]]; then
    out="$root/docs/bench/floor-$floor"
  elif [[ $split -eq 1 ]]; then
    out="$root/docs/bench/latest-split"
  else
    out="$root/docs/bench/latest"
  fi
fi
mkdir -p "$(dirname "$out")"
commit="$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)"
git -C "$root" diff --quiet HEAD 2>/dev/null || commit="$commit (with uncommitted changes)"
[[ -n "$triage_override" ]] && commit="$commit, triage binary $triage_override"
cpu="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
printf '%s\n' "${runs[@]}" >"$work/runs.txt"
printf '%s\n' "${rss_lines[@]}" >"$work/rss.txt"
B_MODE="$mode" B_DURATION="$duration" B_CONCURRENCY="$concurrency" B_WORKERS="$workers" B_COMMIT="$commit" B_CPU="$cpu" \
B_CORES="$(nproc)" B_OHA="$oha_version" B_QUICK="$quick" B_FLOOR="$floor" \
python3 - "$work/runs.txt" "$work/rss.txt" "$out" <<'PY'
import datetime, json, os, sys
runs_file, rss_file, out = sys.argv[1], sys.argv[2], sys.argv[3]
e = os.environ
meta = {
    "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    "mode": e["B_MODE"], "duration_s": int(e["B_DURATION"]), "concurrency": int(e["B_CONCURRENCY"]),
    "worker_threads": int(e["B_WORKERS"]),
    "commit": e["B_COMMIT"], "cpu": e["B_CPU"], "cores": int(e["B_CORES"]), "oha": e["B_OHA"],
    "quick": e["B_QUICK"] == "1",
}
rows = []
for line in open(runs_file).read().split("\n"):
    if not line.strip():
        continue
    tool, path, rate, f = line.split("|", 3)
    rate = int(rate)
    d = json.load(open(f))
    if tool == "oha":
        codes = d.get("statusCodeDistribution", {}) or {}
        ok = int(codes.get("200", 0))
        total = sum(int(v) for v in codes.values()) + sum(int(v) for v in (d.get("errorDistribution") or {}).values())
        pct = d.get("latencyPercentiles", {}) or {}
        sec = lambda k: None if pct.get(k) is None else pct[k] * 1000.0
        row = {"requests": total, "ok": ok, "errors": total - ok,
               "throughput_rps": ok / d["summary"]["total"] if d["summary"]["total"] else 0.0,
               "p50_ms": sec("p50"), "p99_ms": sec("p99"), "p999_ms": sec("p99.9"),
               "error_kinds": {**{k: v for k, v in codes.items() if k != "200"}, **(d.get("errorDistribution") or {})}}
    else:
        lat = d.get("latency_all_ms", d["latency_ms"])  # every call, as oha counts
        row = {"requests": d["requests"], "ok": d["ok"], "errors": d["errors"], "throughput_rps": d["throughput_rps"],
               "p50_ms": lat["p50"], "p99_ms": lat["p99"], "p999_ms": lat["p99.9"], "error_kinds": d["error_kinds"]}
    row.update({"path": path, "rate": rate or None})
    rows.append(row)
direct = {r["rate"]: r for r in rows if r["path"] == "direct" and r["rate"]}
for r in rows:
    base = direct.get(r["rate"]) if r["path"] != "direct" and r["rate"] else None
    r["added_ms"] = None
    if base and r["ok"] and base["ok"]:
        r["added_ms"] = {k: (r[k + "_ms"] - base[k + "_ms"]) for k in ("p50", "p99", "p999")
                         if r[k + "_ms"] is not None and base[k + "_ms"] is not None}
rss = []
for line in open(rss_file).read().split("\n"):
    if line.strip():
        name, hwm, cur = line.split("|")
        rss.append({"process": name, "peak_rss_mib": int(hwm) / 1024, "rss_mib_at_end": int(cur) / 1024})

label = {"grpc": "gRPC Route", "http": "HTTP /v1/chat/completions", "direct": "fake upstream, direct"}
f = lambda v: "–" if v is None else f"{v:.2f}"
lines = [
    f"# Triage benchmark ({meta['mode']})", "",
    f"{meta['date']}, commit {meta['commit']}, {meta['cores']} × {meta['cpu']}; "
    f"{meta['duration_s']} s per run, {meta['concurrency']} concurrent; {meta['worker_threads']} tokio worker "
    f"thread(s) per triage process; oha {meta['oha']}"
    + (" — **--quick smoke run, not a measurement**" if meta["quick"] else "") + ".", "",
    ("Fake upstream: fixed reply, no delay. " + (
        f"**Not Triage**: triage-floor, the gateway's serving code making {e['B_FLOOR']} sequential Redis round "
        "trip(s) (INCR) and the upstream call per request, nothing else; " if e["B_FLOOR"] else
        "Classification on (embedded MiniLM, Redis cache warm); every turn routed to the middle model on the "
        "fake upstream; ") +
     "rates are open loop (latency counted from when each request was due). Added = gateway minus direct at "
     "the same rate."), "",
    "| path | rate (req/s) | throughput (req/s) | p50 ms | p99 ms | p99.9 ms | errors | added p50 ms | added p99 ms | added p99.9 ms |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
]
order = {"grpc": 0, "http": 1, "direct": 2}
for r in sorted(rows, key=lambda r: (r["rate"] is None, r["rate"] or 0, order[r["path"]])):
    a = r["added_ms"] or {}
    lines.append(f"| {label[r['path']]} | {r['rate'] or 'max (saturation)'} | {r['throughput_rps']:.0f} | "
                 f"{f(r['p50_ms'])} | {f(r['p99_ms'])} | {f(r['p999_ms'])} | {r['errors']} | "
                 f"{f(a.get('p50'))} | {f(a.get('p99'))} | {f(a.get('p999'))} |")
lines += ["", "| process | peak RSS (MiB) | RSS at end (MiB) |", "|---|---:|---:|"]
for p in sorted(rss, key=lambda p: p["process"]):
    name = "triage-floor" if p["process"] == "floor" else f"triage serve --target {p['process']}"
    lines.append(f"| {name} | {p['peak_rss_mib']:.1f} | {p['rss_mib_at_end']:.1f} |")
if len(rss) > 1:
    lines.append(f"| total | {sum(p['peak_rss_mib'] for p in rss):.1f} | {sum(p['rss_mib_at_end'] for p in rss):.1f} |")
errs = [r for r in rows if r["error_kinds"]]
if errs:
    lines += ["", "Errors: " + "; ".join(f"{label[r['path']]} @ {r['rate'] or 'max'}: {r['error_kinds']}" for r in errs)]
md = "\n".join(lines) + "\n"
open(out + ".md", "w").write(md)
json.dump({"meta": meta, "results": rows, "rss": rss}, open(out + ".json", "w"), indent=2)
sys.stdout.write(md)
PY
log "wrote $out.md and $out.json"
ok_exit=1
