#!/usr/bin/env bash
# The Node SDK worker before and after a change, beside raw child_process.fork, in one run:
# the rows of `bench/peers/run --systems fork,offload-node`, plus "offload-node-before", the same
# pool bench binary with OFFLOAD_SDK_DIR pointing at an older copy of sdks/ (the supervisor starts
# `node $OFFLOAD_SDK_DIR/node/runner.js`), interleaved run by run.
#
#   git archive <commit> sdks/node | tar -x -C /tmp/base      # the SDK before
#   BASE_SDK=/tmp/base/sdks bench/peers/node/sdk-ab.sh [--runs N] [--workloads abc] [--quick]
#
# Needs the release builds `bench/peers/run` makes (run it once, or `--no-build` after it):
# the pool bench binary and the Rust bench worker in $CARGO_TARGET_DIR/release. Prints the
# medians and writes the raw lines to bench/peers/results/sdk-ab-<time>.jsonl.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
RUNS=3
WORKLOADS=abc
QUICK=0
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS="$2"; shift ;;
    --workloads) WORKLOADS="$2"; shift ;;
    --quick) QUICK=1 ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "sdk-ab: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
[ -f "${BASE_SDK:-}/node/runner.js" ] || { echo "sdk-ab: BASE_SDK=<a folder with node/runner.js> is needed" >&2; exit 2; }
T="${CARGO_TARGET_DIR:-$ROOT/target}/release"
BENCH=$(ls -t "$T"/deps/pool-* 2>/dev/null | grep -v '\.d$' | head -1 || true)
WORKER="$T/offload-bench-worker"
[ -x "$BENCH" ] && [ -x "$WORKER" ] || { echo "sdk-ab: build with bench/peers/run first (no pool bench or worker in $T)" >&2; exit 1; }
if [ "$QUICK" = 1 ]; then TASKS=(10000 10000 500); LIMIT_B=2; else TASKS=(100000 100000 5000); LIMIT_B=10; fi

mkdir -p "$HERE/results"
OUT="$HERE/results/sdk-ab-$(date +%Y%m%d-%H%M%S).jsonl"
: > "$OUT"
one() {
  local system=$1 w=$2 n limit=60 load line
  case "$w" in a) n=${TASKS[0]} ;; b) n=${TASKS[1]}; limit=$LIMIT_B ;; c) n=${TASKS[2]} ;; esac
  local cmd
  case "$system" in
    fork) cmd=(node "$HERE/node/peers.js" --system fork) ;;
    offload-node) cmd=(env -u OFFLOAD_SDK_DIR "$BENCH" --kind node --worker "$WORKER" --jobs "$HERE/jobs") ;;
    offload-node-before) cmd=(env OFFLOAD_SDK_DIR="$BASE_SDK" "$BENCH" --kind node --worker "$WORKER" --jobs "$HERE/jobs") ;;
  esac
  load=$(cut -d' ' -f1 /proc/loadavg)
  line=$(cd "$HERE" && timeout -k 5 $((limit + 90)) "${cmd[@]}" --workload "$w" --tasks "$n" --time-limit "$limit" 2>>"$OUT.stderr" | tail -1) || true
  [ -n "$line" ] || line='{"error":"no result"}'
  python3 -c 'import json,sys; r=json.loads(sys.argv[1]); r["system"]=sys.argv[2]; r["workload"]=sys.argv[3]; r["load1_before"]=float(sys.argv[4]); print(json.dumps(r))' \
    "$line" "$system" "$w" "$load" | tee -a "$OUT" | cut -c1-160 >&2
}
echo "uptime before: $(uptime)"
for ((run = 1; run <= RUNS; run++)); do
  for ((k = 0; k < ${#WORKLOADS}; k++)); do
    for s in fork offload-node-before offload-node; do one "$s" "${WORKLOADS:$k:1}"; done
  done
done
echo "uptime after: $(uptime)"
echo "raw: $OUT"
python3 - "$OUT" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
med = lambda xs: statistics.median(xs) if xs else float("nan")
def pick(system, w, key):
    return [r[key] for r in rows if r.get("system") == system and r.get("workload") == w and r.get(key) is not None and not r.get("error")]
loads = [r["load1_before"] for r in rows]
print(f"load average before each run: {min(loads):.1f}-{max(loads):.1f}, median {med(loads):.1f}")
print("| system | (a) tasks/s (runs) | (a) sup + workers µs/task | (b) p50 µs (runs) | (b) sup + workers µs/round trip | (c) tasks/s |")
print("|---|---:|---:|---:|---:|---:|")
for s in ["fork", "offload-node-before", "offload-node"]:
    a = pick(s, "a", "per_sec"); b = pick(s, "b", "p50_us"); c = pick(s, "c", "per_sec")
    f = lambda xs, d=1: f"{med(xs):,.{d}f} ({', '.join(f'{x:,.{d}f}' for x in xs)})" if xs else "—"
    cpu = lambda w: f"{med(pick(s, w, 'sup_cpu_us_per_task')):.1f} + {med(pick(s, w, 'workers_cpu_us_per_task')):.1f}"
    print(f"| {s} | {f(a, 0)} | {cpu('a')} | {f(b)} | {cpu('b')} | {f(c, 0)} |")
# Ratios run by run (same run index, interleaved): offload-node / fork.
for w, key, inv in [("a", "per_sec", False), ("b", "p50_us", True), ("c", "per_sec", False)]:
    for s in ["offload-node-before", "offload-node"]:
        xs, fs = pick(s, w, key), pick("fork", w, key)
        rs = [(f / x if inv else x / f) for x, f in zip(xs, fs)]
        if rs:
            label = "fork p50 / its p50" if inv else "its rate / fork's"
            print(f"({w}) {s}: {label} run by run {', '.join(f'{r:.2f}' for r in rs)}; median {med(rs):.2f}")
EOF
