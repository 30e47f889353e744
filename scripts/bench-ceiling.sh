#!/usr/bin/env bash
# How far N processes can scale on this machine with no communication at all, doing the
# work of N cluster workers: runs one `convoy bench --deterministic --batch B` (one worker's
# step of a global batch B), then N of `--batch B/N` at once (each worker's slice), and prints
# one JSON object
#   {"processes":N,"batch":B,"single_train_samples_per_sec":..,"aggregate_train_samples_per_sec":..,"scaling":..}
# The cluster's speedup (scripts/bench-cluster.sh, N workers over 1) cannot exceed this
# `scaling`: it is the same arithmetic with no coordinator and no messages.
#   scripts/bench-ceiling.sh [N]     (default: the number of cores)
# Environment: CONVOY (binary), BATCH (global batch B, default 64, a multiple of 8·N).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
N=${1:-$(nproc)}
[[ $N =~ ^[1-9][0-9]*$ ]] || { echo "usage: $0 [N]" >&2; exit 2; }
BATCH=${BATCH:-64}
[[ $BATCH =~ ^[1-9][0-9]*$ ]] && (( BATCH % (8 * N) == 0 )) || { echo "BATCH must be a multiple of 8·N" >&2; exit 2; }
if [[ -z ${CONVOY:-} ]]; then
    (cd "$ROOT" && swift build -c release >&2)
    CONVOY="$(cd "$ROOT" && swift build -c release --show-bin-path)/convoy"
fi
TMP=$(mktemp -d "${TMPDIR:-/tmp}/convoy-ceiling.XXXXXX")
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$TMP"; }
trap cleanup EXIT

"$CONVOY" bench --json --deterministic --batch "$BATCH" --steps 300 >"$TMP/single.json"
for i in $(seq "$N"); do
    "$CONVOY" bench --json --deterministic --batch $(( BATCH / N )) --steps $(( 300 * N )) >"$TMP/many-$i.json" &
    PIDS+=($!)
done
for p in "${PIDS[@]}"; do wait "$p"; done
PIDS=()
python3 - "$TMP" "$N" "$BATCH" <<'PY'
import json, sys
tmp, n, batch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
single = json.load(open(f"{tmp}/single.json"))["train_samples_per_sec"]
total = sum(json.load(open(f"{tmp}/many-{i}.json"))["train_samples_per_sec"] for i in range(1, n + 1))
print(json.dumps({"processes": n, "batch": batch, "single_train_samples_per_sec": round(single, 1),
                  "aggregate_train_samples_per_sec": round(total, 1), "scaling": round(total / single, 3)}))
PY
