#!/usr/bin/env bash
# A/B of two triage binaries on this machine. The machine's speed drifts by tens of percent
# within minutes, so one run of each says little: this alternates the two, round after
# round, so that the drift falls on both. Each run starts and warms a stack with one binary
# (scripts/bench.sh --hold), drives gRPC Route with triage-load at each rate, and reads
# from /proc the CPU each process spent per Route: Triage, Redis, the fake upstream and the
# load generator. With --syscalls, perf stat also counts the gateway's and Redis's syscalls
# per Route (socket writes and reads, epoll waits, context switches), which unlike CPU time
# do not depend on how fast the machine is that minute. The summary also gives Triage's and
# Redis's CPU per Route relative to that of the fake upstream and the load generator in the
# same run: those two are the same binaries in A and B, so the machine's speed of the minute
# cancels out of the ratio (in 2026-12-06's runs the fixed processes' CPU per Route swung by
# up to 40 % between rounds, and throughput with it).
#
# Usage: scripts/bench-ab.sh BASE NEW [--rounds N] [--rates "2000 0"] [--duration S]
#                            [--concurrency N] [--syscalls] [--a-args "..."] [--b-args "..."]
#   BASE, NEW       triage binaries; e.g. the previous commit built in a git worktree that
#                   shares $CARGO_TARGET_DIR, copied aside, against the current release build
#   --rounds N      alternations (default 4)
#   --rates "..."   requests per second, 0 for saturation (default "2000 0")
#   --duration S    seconds per rate (default 10)
#   --syscalls      count syscalls per Route with perf stat (needs perf and tracepoints)
#   --a-args, --b-args  more scripts/bench.sh options for A's or B's stacks, e.g. the same
#                   binary twice with --b-args --redis-unix
# One line per run goes to stdout as it ends, then per binary and rate the mean and median
# of each figure and how many rounds each binary was faster in. Progress goes to stderr.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

usage() { sed -n '15,26p' "$0" | sed 's/^# \{0,1\}//' >&2; }
[[ $# -ge 2 ]] || { usage; exit 2; }
base="$1" new="$2"; shift 2
rounds=4 rates="2000 0" duration=10 concurrency=50 syscalls=0
declare -A side_args=([A]="" [B]="")
while [[ $# -gt 0 ]]; do
  case "$1" in
    --rounds) rounds="${2:?--rounds needs a number}"; shift 2 ;;
    --rates) rates="${2:?--rates needs a list}"; shift 2 ;;
    --duration) duration="${2:?--duration needs seconds}"; shift 2 ;;
    --concurrency) concurrency="${2:?--concurrency needs a number}"; shift 2 ;;
    --syscalls) syscalls=1; shift ;;
    --a-args) side_args[A]="${2?--a-args needs options}"; shift 2 ;;
    --b-args) side_args[B]="${2?--b-args needs options}"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "bench-ab: unknown argument $1" >&2; usage; exit 2 ;;
  esac
done
for b in "$base" "$new"; do [[ -x "$b" ]] || { echo "bench-ab: $b is not an executable" >&2; exit 2; }; done
[[ "$rounds" =~ ^[0-9]+$ && "$rounds" -gt 0 ]] || { echo "bench-ab: --rounds must be > 0" >&2; exit 2; }
for r in $rates; do [[ "$r" =~ ^[0-9]+$ ]] || { echo "bench-ab: rate '$r' is not a whole number" >&2; exit 2; }; done
if [[ $syscalls -eq 1 ]] && ! command -v perf >/dev/null; then
  echo "bench-ab: --syscalls needs perf" >&2; exit 2
fi

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/triage/target}"
load="$CARGO_TARGET_DIR/release/triage-load"
[[ -x "$load" ]] || { echo "bench-ab: $load missing: run scripts/bench.sh once (it builds it)" >&2; exit 2; }
work="$(mktemp -d "${TMPDIR:-/tmp}/triage-ab.XXXXXX")"
hold_pid=""
stop_stack() {
  [[ -n "$hold_pid" ]] || return 0
  # TERM: a background job of a non-interactive shell ignores INT.
  kill -TERM "$hold_pid" 2>/dev/null || true
  wait "$hold_pid" 2>/dev/null || true
  hold_pid=""
}
trap 'stop_stack; rm -rf "$work"' EXIT
trap 'exit 130' INT TERM

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
syscall_events='syscalls:sys_enter_writev,syscalls:sys_enter_sendto,syscalls:sys_enter_write,syscalls:sys_enter_recvfrom,syscalls:sys_enter_read,syscalls:sys_enter_epoll_wait,context-switches'

# One run: binary $1 labelled $2 in round $3; appends a JSON line per rate to $work/runs.jsonl.
run() {
  local binary=$1 label=$2 round=$3 log="$work/hold-$2-$3.log"
  local extra=()
  read -r -a extra <<<"${side_args[$label]}"
  scripts/bench.sh --hold --no-build --triage "$binary" --concurrency "$concurrency" "${extra[@]}" >/dev/null 2>"$log" &
  hold_pid=$!
  for _ in $(seq 600); do grep -q "holding" "$log" && break; kill -0 "$hold_pid" 2>/dev/null || break; sleep 0.5; done
  grep -q "holding" "$log" || { cat "$log" >&2; echo "bench-ab: the stack did not start" >&2; exit 1; }
  local grpc triage redis_port redis upstream
  grpc=$(awk '/gRPC Route/ {print $3}' "$log")
  triage=$(sed -n 's/.*triage PIDs *all=\([0-9]*\).*/\1/p' "$log")
  redis_port=$(sed -n 's/.* redis *127.0.0.1:\([0-9]*\).*/\1/p' "$log")
  redis=$(pgrep -f "redis-server 127.0.0.1:$redis_port" | head -1)
  upstream=$(pgrep -f "fake-upstream --listen" | head -1)
  for rate in $rates; do
    local t0 r0 u0 t1 r1 u1 stat_pids=()
    t0=$(ticks "$triage"); r0=$(ticks "$redis"); u0=$(ticks "$upstream")
    /usr/bin/time -f "%U %S" -o "$work/load-time" "$load" --addr "$grpc" --rate "$rate" \
      --concurrency "$concurrency" --duration "$duration" >"$work/load.json" 2>/dev/null &
    local load_pid=$!
    if [[ $syscalls -eq 1 ]]; then
      # The middle of the run: the load generator's start and end stay out of the counts.
      sleep 1
      local window=$((duration > 3 ? duration - 2 : 1))
      perf stat -x, -e "$syscall_events" -p "$triage" -o "$work/sys-triage" -- sleep "$window" &
      stat_pids+=($!)
      perf stat -x, -e "$syscall_events" -p "$redis" -o "$work/sys-redis" -- sleep "$window" &
      stat_pids+=($!)
      wait "${stat_pids[@]}"
      echo "$window" >"$work/sys-window"
    fi
    wait "$load_pid"
    t1=$(ticks "$triage"); r1=$(ticks "$redis"); u1=$(ticks "$upstream")
    python3 - "$label" "$round" "$rate" "$hz" "$((t1 - t0))" "$((r1 - r0))" "$((u1 - u0))" "$work" "$syscalls" \
      >>"$work/runs.jsonl" <<'PY'
import json, sys, os
label, rnd, rate, hz, t, r, u, work, sysc = sys.argv[1:]
out = json.load(open(f"{work}/load.json"))
n = max(out["ok"], 1)
user, system = map(float, open(f"{work}/load-time").read().split())
us = lambda ticks: int(ticks) * 1e6 / int(hz) / n
row = {"binary": label, "round": int(rnd), "rate": int(rate), "throughput": round(out["throughput_rps"]),
       "p50_ms": out["latency_ms"]["p50"], "p99_ms": out["latency_ms"]["p99"], "errors": out["errors"],
       "cpu_us_per_route": {"triage": round(us(t), 1), "redis": round(us(r), 1), "upstream": round(us(u), 1),
                            "load": round((user + system) * 1e6 / n, 1)}}
if sysc == "1":
    window = float(open(f"{work}/sys-window").read())
    routes = out["throughput_rps"] * window
    for proc in ("triage", "redis"):
        counts = {}
        for line in open(f"{work}/sys-{proc}"):
            f = line.strip().split(",")
            if len(f) > 2 and f[0].replace(".", "").isdigit():
                counts[f[2].replace("syscalls:sys_enter_", "")] = round(float(f[0]) / routes, 2)
        row[f"syscalls_per_route_{proc}"] = counts
print(json.dumps(row))
PY
    tail -n 1 "$work/runs.jsonl" | python3 "$work/line.py"
  done
  stop_stack
}

cat >"$work/line.py" <<'PY'
import json, sys
r = json.loads(sys.stdin.read())
c = r["cpu_us_per_route"]
rate = "max" if r["rate"] == 0 else r["rate"]
line = "{:4} round {} rate {:>5}: {:6} req/s  p50 {:.2f} p99 {:.2f} ms  CPU us/Route triage {} redis {} upstream {} load {}".format(
    r["binary"], r["round"], rate, r["throughput"], r["p50_ms"], r["p99_ms"], c["triage"], c["redis"], c["upstream"], c["load"])
for p in ("triage", "redis"):
    s = r.get("syscalls_per_route_" + p)
    if s:
        line += "\n      {} syscalls/Route: ".format(p) + " ".join("{}={}".format(k, v) for k, v in s.items())
print(line)
PY
echo "bench-ab: $rounds round(s), rates $rates, ${duration}s each; A = $base ${side_args[A]}, B = $new ${side_args[B]}" >&2
for round in $(seq "$rounds"); do
  echo "bench-ab: round $round of $rounds ($(date +%T))" >&2
  run "$base" A "$round"
  run "$new" B "$round"
done

python3 - "$work/runs.jsonl" <<'PY'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1])]


def relative(r, proc):
    c = r["cpu_us_per_route"]
    return c[proc] / max(c["upstream"] + c["load"], 1e-9)


def stat3(vals):
    return f"{statistics.mean(vals):.3f} / {statistics.median(vals):.3f}"


print("\nper binary and rate: mean / median over the rounds")
for rate in sorted({r["rate"] for r in runs}, key=lambda x: (x == 0, x)):
    name = "saturation" if rate == 0 else f"{rate} req/s"
    for b in ("A", "B"):
        rs = [r for r in runs if r["rate"] == rate and r["binary"] == b]
        def stat(vals):
            return f"{statistics.mean(vals):.1f} / {statistics.median(vals):.1f}"
        print(f"  {name:12} {b}: throughput {stat([r['throughput'] for r in rs])}  "
              f"p99 ms {stat([r['p99_ms'] for r in rs])}  "
              f"triage us {stat([r['cpu_us_per_route']['triage'] for r in rs])}  "
              f"redis us {stat([r['cpu_us_per_route']['redis'] for r in rs])}")
        print(f"  {'':12} {b}: relative to upstream + load CPU: "
              f"triage {stat3([relative(r, 'triage') for r in rs])}  redis {stat3([relative(r, 'redis') for r in rs])}  "
              f"both {stat3([relative(r, 'triage') + relative(r, 'redis') for r in rs])}")
    pairs = {}
    for r in runs:
        if r["rate"] == rate:
            pairs.setdefault(r["round"], {})[r["binary"]] = r
    key = (lambda r: r["throughput"]) if rate == 0 else (lambda r: -(r["cpu_us_per_route"]["triage"] + r["cpu_us_per_route"]["redis"]))
    won = sum(1 for p in pairs.values() if len(p) == 2 and key(p["B"]) > key(p["A"]))
    what = "higher throughput" if rate == 0 else "less Triage + Redis CPU per Route"
    print(f"  {name:12} B had {what} in {won} of {len(pairs)} rounds")
    both = lambda r: relative(r, "triage") + relative(r, "redis")
    less = sum(1 for p in pairs.values() if len(p) == 2 and both(p["B"]) < both(p["A"]))
    print(f"  {name:12} B had less Triage + Redis CPU relative to upstream + load in {less} of {len(pairs)} rounds")
PY
