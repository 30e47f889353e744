#!/usr/bin/env bash
# Throughput of convoy's data-parallel mode for several worker counts.
#
#   scripts/bench-cluster.sh [N...]        (default: 1 2)
#
# For each N runs
#   convoy local --workers N --epochs 1 --train-samples $TRAIN_SAMPLES --test-samples 1000 \
#       --batch 64 --json $BENCH_FLAGS
# and prints one JSON object per run on stdout:
#   {"workers":N,"train_samples_per_sec":..,"step_ms":..,"coordinator_ms":..,
#    "bytes_per_step":..,"worker_wait_fraction":..,"worker_step_ms":[..],
#    "test_accuracy":..,"seconds":..}
# taken from the (last) epoch's JSON, then {"speedup_2_over_1":..} when both 1 and 2 ran.
# An argument NxK runs N workers of K compute threads each (`--slots K`, per-host
# aggregation); with 1 and 2 given, 1x2 runs too (the layout `convoy local` picks on 2 cores)
# and {"speedup_1x2_over_1":..} follows.
# Progress and the children's logs go to stderr only.
#
# When a PyTorch is available (TORCH_PYTHON, default /work/torch-venv/bin/python), the same
# run also prints PyTorch's figures on this machine for the comparison:
#   {"framework":"pytorch","threads":2,...}   benchmarks/pytorch_lenet.py --threads 2
#   {"framework":"pytorch-ddp","world_size":2,...}   benchmarks/pytorch_ddp.py --world-size 2
# and {"convoy_2_workers_over_pytorch_2_threads":..,"convoy_2_workers_over_ddp_2_ranks":..}.
#
# Environment: CONVOY (binary; default: swift build -c release), TRAIN_SAMPLES (20000),
# BENCH_FLAGS (extra `convoy local` flags, appended last so they win), BENCH_TIMEOUT
# (seconds per run, default 600), TORCH_PYTHON (a python with torch; NO_TORCH=1 skips it).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TRAIN_SAMPLES=${TRAIN_SAMPLES:-20000}
BENCH_TIMEOUT=${BENCH_TIMEOUT:-600}
read -r -a EXTRA <<<"${BENCH_FLAGS:-}"
COUNTS=("$@")
(( ${#COUNTS[@]} )) || COUNTS=(1 2)
for n in "${COUNTS[@]}"; do
    [[ $n =~ ^[1-9][0-9]*(x[1-9][0-9]*)?$ ]] || { echo "usage: $0 [N|NxK...] (worker counts, got '$n')" >&2; exit 2; }
done
if [[ " ${COUNTS[*]} " == *" 1 "* && " ${COUNTS[*]} " == *" 2 "* && " ${COUNTS[*]} " != *" 1x2 "* ]]; then
    COUNTS+=(1x2)
fi

if [[ -z ${CONVOY:-} ]]; then
    echo "bench-cluster: building convoy (swift build -c release)..." >&2
    (cd "$ROOT" && swift build -c release >&2)
    CONVOY="$(cd "$ROOT" && swift build -c release --show-bin-path)/convoy"
fi
[[ -x $CONVOY ]] || { echo "bench-cluster: convoy binary not executable: $CONVOY" >&2; exit 1; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/convoy-bench.XXXXXX")
RUN_PID=""
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    # `timeout` forwards the signal to `convoy local`, which ends its own children by PID.
    if [[ -n $RUN_PID ]] && kill -0 "$RUN_PID" 2>/dev/null; then
        kill -TERM "$RUN_PID" 2>/dev/null || true
        wait "$RUN_PID" 2>/dev/null || true
    fi
    rm -rf "$TMP"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

for n in "${COUNTS[@]}"; do
    echo "bench-cluster: $n worker(s), $TRAIN_SAMPLES samples..." >&2
    workers=${n%x*}
    slots=1
    [[ $n == *x* ]] && slots=${n#*x}
    timeout "$BENCH_TIMEOUT" "$CONVOY" local --workers "$workers" --slots "$slots" --epochs 1 --train-samples "$TRAIN_SAMPLES" \
        --test-samples 1000 --batch 64 --json --out "$TMP/model-$n.convoy" "${EXTRA[@]}" \
        >"$TMP/run-$n.json" 2>"$TMP/run-$n.log" &
    RUN_PID=$!
    rc=0; wait "$RUN_PID" || rc=$?
    RUN_PID=""
    if (( rc != 0 )); then
        tail -n 20 "$TMP/run-$n.log" >&2
        (( rc == 124 )) && echo "bench-cluster: $n worker(s) timed out after ${BENCH_TIMEOUT}s" >&2
        echo "bench-cluster: convoy local --workers $n exited with $rc" >&2
        exit 1
    fi
done

TORCH_PYTHON=${TORCH_PYTHON:-/work/torch-venv/bin/python}
if [[ -z ${NO_TORCH:-} ]] && [[ -x $TORCH_PYTHON ]] && "$TORCH_PYTHON" -c 'import torch' 2>/dev/null; then
    echo "bench-cluster: PyTorch, 2 threads, and DDP, 2 ranks..." >&2
    OMP_NUM_THREADS=2 timeout "$BENCH_TIMEOUT" "$TORCH_PYTHON" "$ROOT/benchmarks/pytorch_lenet.py" --threads 2 \
        >"$TMP/torch.json" 2>>"$TMP/torch.log" || echo "bench-cluster: pytorch_lenet.py failed" >&2
    timeout "$BENCH_TIMEOUT" "$TORCH_PYTHON" "$ROOT/benchmarks/pytorch_ddp.py" --world-size 2 \
        >"$TMP/ddp.json" 2>>"$TMP/torch.log" || echo "bench-cluster: pytorch_ddp.py failed" >&2
fi

python3 - "$TMP" "${COUNTS[@]}" <<'EOF'
import json, os, sys
tmp, counts = sys.argv[1], sys.argv[2:]
rate = {}
def key(n):
    return int(n) if "x" not in n else n
for n in counts:
    last = None
    for line in open(f"{tmp}/run-{n}.json"):
        line = line.strip()
        if line.startswith("{"):
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            if "samples_per_sec" in obj:
                last = obj
    if last is None:
        sys.exit(f"bench-cluster: no epoch JSON from the {n}-worker run")
    row = {
        "workers": int(n.split("x")[0]),
        "slots": int(n.split("x")[1]) if "x" in n else 1,
        "train_samples_per_sec": last["samples_per_sec"],
        "step_ms": last.get("step_ms"),
        "coordinator_ms": last.get("coordinator_ms"),
        "bytes_per_step": last.get("bytes_per_step"),
        "worker_wait_fraction": last.get("worker_wait_fraction"),
        "worker_step_ms": last.get("worker_step_ms"),
        "test_accuracy": last.get("test_accuracy"),
        "seconds": last.get("seconds"),
    }
    if int(last.get("workers", row["workers"])) != row["workers"]:
        print(f"bench-cluster: warning: {n}-worker run reports workers={last.get('workers')}", file=sys.stderr)
    rate[key(n)] = float(last["samples_per_sec"])
    print(json.dumps(row), flush=True)
if 1 in rate and 2 in rate and rate[1] > 0:
    print(json.dumps({"speedup_2_over_1": round(rate[2] / rate[1], 4)}))
if 1 in rate and "1x2" in rate and rate[1] > 0:
    print(json.dumps({"speedup_1x2_over_1": round(rate["1x2"] / rate[1], 4)}))
def last_json(path):
    if not os.path.exists(path):
        return None
    objects = [json.loads(l) for l in open(path) if l.strip().startswith("{")]
    return objects[-1] if objects else None
torch, ddp = last_json(f"{tmp}/torch.json"), last_json(f"{tmp}/ddp.json")
for obj in (torch, ddp):
    if obj:
        print(json.dumps(obj), flush=True)
if 2 in rate and (torch or ddp):
    ratios = {}
    if torch and torch.get("train_samples_per_sec"):
        ratios["convoy_2_workers_over_pytorch_2_threads"] = round(rate[2] / torch["train_samples_per_sec"], 3)
    if ddp and ddp.get("train_samples_per_sec"):
        ratios["convoy_2_workers_over_ddp_2_ranks"] = round(rate[2] / ddp["train_samples_per_sec"], 3)
    if "1x2" in rate and torch and torch.get("train_samples_per_sec"):
        ratios["convoy_1x2_over_pytorch_2_threads"] = round(rate["1x2"] / torch["train_samples_per_sec"], 3)
    if "1x2" in rate and ddp and ddp.get("train_samples_per_sec"):
        ratios["convoy_1x2_over_ddp_2_ranks"] = round(rate["1x2"] / ddp["train_samples_per_sec"], 3)
    print(json.dumps(ratios))
EOF
