#!/usr/bin/env bash
# The measurements behind docs/SCALING.md, repeated R times (default 3), as JSON lines:
#   {"run":"coordinator-per-worker",...}  bench-coordinator, N = 1..64, one micro-batch of 8 per worker,
#                                         varint gradients (what workers across a network send)
#   {"run":"coordinator-batch64",...}     bench-coordinator, N = 1..64, global batch 64
#   {"run":"coordinator-float",...}       as per-worker, Float32 gradients (--no-deterministic)
#   {"run":"coordinator-shm",...}         as per-worker, over shared memory with packed gradients
#                                         (--transport shm: one host)
#   {"run":"bench-deterministic",...}     convoy bench --model lenet5 --deterministic (one core)
#   {"run":"bench-float",...}             convoy bench --model lenet5
# Each line carries "load", the 1-minute load average when it started: on a shared machine,
# keep the runs taken at low load.
#   scripts/bench-scaling.sh [R] > out/scaling.jsonl
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
R=${1:-3}
[[ $R =~ ^[1-9][0-9]*$ ]] || { echo "usage: $0 [repeats]" >&2; exit 2; }
if [[ -z ${CONVOY:-} ]]; then
    (cd "$ROOT" && swift build -c release >&2)
    CONVOY="$(cd "$ROOT" && swift build -c release --show-bin-path)/convoy"
fi

# Prefixes each JSON line of a command's output with the run's name and the load average.
tag() {
    local name=$1; shift
    local load; load=$(cut -d' ' -f1 /proc/loadavg)
    "$@" | sed "s/^{/{\"run\":\"$name\",\"load\":$load,/"
}

for _ in $(seq "$R"); do
    tag coordinator-per-worker "$CONVOY" bench-coordinator --sweep --per-worker-batch 8 --gradient-encoding varint \
        --steps 200 --json
    tag coordinator-batch64 "$CONVOY" bench-coordinator --sweep --gradient-encoding varint --steps 200 --json
    tag coordinator-float "$CONVOY" bench-coordinator --sweep --per-worker-batch 8 --no-deterministic --steps 200 --json
    tag coordinator-shm "$CONVOY" bench-coordinator --sweep --per-worker-batch 8 --transport shm \
        --gradient-encoding packed --steps 200 --json
    tag bench-deterministic "$CONVOY" bench --model lenet5 --deterministic --json
    tag bench-float "$CONVOY" bench --model lenet5 --json
done
