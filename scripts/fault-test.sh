#!/usr/bin/env bash
# Workers come and go, the result does not change: 3 workers start, one is killed with
# SIGKILL mid-run (its slice goes to the others), a new one joins mid-run (it takes part
# from the next step), and the saved weights equal an uninterrupted single-process run's.
#   scripts/fault-test.sh          prints PASS/FAIL, exit 0 only on PASS
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$ROOT/scripts/lib.sh"
find_convoy
TMP=$(mktemp -d "${TMPDIR:-/tmp}/convoy-fault.XXXXXX")
PIDS=()
cleanup() { stop_pids "${PIDS[@]}"; rm -rf "$TMP"; }
trap cleanup EXIT

FLAGS=(--epochs 2 --train-samples 9600 --test-samples 500 --seed 7)
"$CONVOY" train "${FLAGS[@]}" --out "$TMP/reference.convoy" --json >/dev/null 2>"$TMP/train.log" || fail "fault-test: reference training failed"
reference=$(model_checksum "$TMP/reference.convoy")

PORT=$(free_port)
ENDPOINT=tcp://127.0.0.1:$PORT
"$CONVOY" coordinator --bind "$ENDPOINT" --workers 3 "${FLAGS[@]}" --out "$TMP/faults.convoy" >/dev/null 2>"$TMP/coordinator.log" &
coordinator=$!; PIDS+=("$coordinator")
workers=()
for i in 1 2 3; do
    "$CONVOY" worker --connect "$ENDPOINT" --idle-timeout 60 2>"$TMP/worker$i.log" &
    PIDS+=($!); workers+=($!)
done
# Wait until training is under way, then kill one worker and start another.
for _ in $(seq 300); do grep -q "joined (3 live)" "$TMP/coordinator.log" && break; sleep 0.05; done
sleep 1
killed=${workers[1]}
kill -9 "$killed"
"$CONVOY" worker --connect "$ENDPOINT" --idle-timeout 60 2>"$TMP/worker4.log" &
late=$!; PIDS+=("$late"); workers+=("$late")

timeout 120 tail --pid="$coordinator" -f /dev/null || fail "fault-test: the coordinator did not finish"
wait "$coordinator" || fail "fault-test: the coordinator exited with $?"
grep -q "dropped w[0-9]*@[^ ]*:$killed: " "$TMP/coordinator.log" || fail "fault-test: the killed worker (pid $killed) was not dropped"
# The late worker may take the number of the killed one: numbers are bounded by live workers.
grep -q "w[0-9]*@[^ ]*:$late joined" "$TMP/coordinator.log" || fail "fault-test: the late worker did not join"
faulty=$(model_checksum "$TMP/faults.convoy")
[[ $faulty == "$reference" ]] || fail "fault-test: weights differ: with faults $faulty, uninterrupted $reference"
echo "PASS: fault-test: $(grep -o "dropped w[0-9]*@[^ ]*:$killed: [^;]*" "$TMP/coordinator.log"); a late worker joined; checksum $faulty equals the uninterrupted run"
