#!/usr/bin/env bash
# Local multi-process test of convoy's data-parallel mode, with every process started by
# this shell (unlike `convoy local`, which spawns its own children).
#
#   scripts/local-cluster.sh N [extra training flags...]
#
# Starts `convoy coordinator --bind tcp://127.0.0.1:* --workers N --json`, learns the
# endpoint from its "listening on" stderr line, starts N `convoy worker` processes, waits
# for all of them, then checks:
#   - the coordinator and every worker exit 0,
#   - the last epoch's test_accuracy >= MIN_ACCURACY (default 0.90),
#   - `convoy evaluate` on the saved model reports the same accuracy.
#
# Default training flags: --epochs 1 --train-samples 20000 --test-samples 1000. Caller flags
# come after them and win (ArgumentParser keeps the last value of a repeated option).
# (--train-samples 6000 reaches only ~0.78 after one epoch, below the 0.90 bar.)
#
# Environment:
#   CONVOY          convoy binary (default: `swift build -c release`, then its bin path)
#   MIN_ACCURACY    accuracy threshold (default 0.90)
#   TIMEOUT         overall time limit in seconds (default 600)
#   BIND_TIMEOUT    seconds to wait for the coordinator to bind (default 60)
#   WORKER_EXIT_TIMEOUT  seconds the workers get to exit after the coordinator (default 30)
#   WORKER_FLAGS    extra flags for every `convoy worker` (e.g. "--idle-timeout 20")
#   KEEP_TMP=1      keep the temporary directory (logs, model) after the run
#
# Prints one "PASS: ..." or "FAIL: ..." line at the end; exit 0 only on PASS.
set -euo pipefail

usage() { echo "usage: $0 N [extra training flags...]" >&2; exit 2; }
[[ $# -ge 1 && $1 =~ ^[1-9][0-9]*$ ]] || usage
N=$1; shift

MIN_ACCURACY=${MIN_ACCURACY:-0.90}
TIMEOUT=${TIMEOUT:-600}
BIND_TIMEOUT=${BIND_TIMEOUT:-60}
WORKER_EXIT_TIMEOUT=${WORKER_EXIT_TIMEOUT:-30}
read -r -a WORKER_FLAGS <<<"${WORKER_FLAGS:-}"
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

source "$ROOT/scripts/lib.sh"
find_convoy

TMP=$(mktemp -d "${TMPDIR:-/tmp}/convoy-local.XXXXXX")
PIDS=()          # every child we started, killed by PID on exit
DEADLINE=$(( SECONDS + TIMEOUT ))

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    stop_pids "${PIDS[@]}"
    if [[ ${KEEP_TMP:-0} == 1 ]]; then
        echo "local-cluster: kept $TMP" >&2
    else
        rm -rf "$TMP"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM


TRAIN_FLAGS=(--epochs 1 --train-samples 20000 --test-samples 1000 "$@")
MODEL="$TMP/model.convoy"

echo "local-cluster: $N worker(s), flags: ${TRAIN_FLAGS[*]}" >&2
# Made before the child opens it: the loop below may read it before the fork's redirection.
: > "$TMP/coordinator.log"
"$CONVOY" coordinator --bind 'tcp://127.0.0.1:*' --workers "$N" --json --out "$MODEL" \
    "${TRAIN_FLAGS[@]}" >"$TMP/coordinator.json" 2>"$TMP/coordinator.log" &
COORD=$!
PIDS+=("$COORD")

# Learn the endpoint from the "listening on" line.
ENDPOINT=""
bind_deadline=$(( SECONDS + BIND_TIMEOUT ))
while [[ -z $ENDPOINT ]]; do
    ENDPOINT=$(sed -n 's/.*listening on \(tcp:\/\/[^ ]*\).*/\1/p' "$TMP/coordinator.log" | head -n 1)
    [[ -n $ENDPOINT ]] && break
    kill -0 "$COORD" 2>/dev/null || fail "coordinator exited before binding"
    (( SECONDS < bind_deadline )) || fail "coordinator did not bind within ${BIND_TIMEOUT}s"
    sleep 0.1
done
echo "local-cluster: coordinator pid $COORD at $ENDPOINT" >&2

WORKERS=()
for i in $(seq 1 "$N"); do
    "$CONVOY" worker --connect "$ENDPOINT" --threads 1 --connect-timeout 60 "${WORKER_FLAGS[@]}" \
        >"$TMP/worker$i.log" 2>&1 &
    WORKERS+=($!)
    PIDS+=($!)
done
echo "local-cluster: worker pids ${WORKERS[*]}" >&2

wait_pid "$COORD" coordinator
COORD_RC=$WAIT_RC
(( COORD_RC == 0 )) || fail "coordinator exited with $COORD_RC"

# Workers exit on their own once the coordinator says the run is over.
workers_deadline=$(( SECONDS + WORKER_EXIT_TIMEOUT ))
for i in "${!WORKERS[@]}"; do
    wait_pid "${WORKERS[$i]}" "worker $((i + 1))" "$workers_deadline" \
        "${WORKER_EXIT_TIMEOUT}s after the coordinator exited 0 (no shutdown message received?)"
    (( WAIT_RC == 0 )) || fail "worker $((i + 1)) (pid ${WORKERS[$i]}) exited with $WAIT_RC"
done

[[ -s $MODEL ]] || fail "no model saved at $MODEL"

EVAL_FLAGS=()
ts=$(last_option --test-samples "${TRAIN_FLAGS[@]}"); [[ -n $ts ]] && EVAL_FLAGS+=(--test-samples "$ts")
dd=$(last_option --data "${TRAIN_FLAGS[@]}");         [[ -n $dd ]] && EVAL_FLAGS+=(--data "$dd")
"$CONVOY" evaluate --model-file "$MODEL" --json "${EVAL_FLAGS[@]}" >"$TMP/evaluate.json" 2>"$TMP/evaluate.log" \
    || fail "convoy evaluate exited with $?"

verdict=$(python3 "$ROOT/scripts/check-cluster-result.py" "$TMP/coordinator.json" "$TMP/evaluate.json" "$MIN_ACCURACY" "$N"
) || fail "could not check the results"

case $verdict in
    PASS*) echo "PASS: local-cluster ${verdict#PASS }"; exit 0 ;;
    *)     fail "local-cluster ${verdict#FAIL }" ;;
esac
