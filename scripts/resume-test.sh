#!/usr/bin/env bash
# A coordinator killed with SIGKILL mid-run and restarted with --resume ends with the same
# weights as an uninterrupted run; its workers (the same processes) rejoin by themselves.
# Then a second SIGTERM exits at once: a coordinator stuck in a step (its only worker
# SIGSTOPped) asked to stop once keeps waiting for the step; asked twice it exits 143 at once.
# Last, `convoy local --resume-if-present D` sent SIGTERM passes it to its coordinator, which
# checkpoints and tells the workers; local exits 75, and the same command continues to the
# uninterrupted run's weights.
#   scripts/resume-test.sh          prints PASS/FAIL, exit 0 only on PASS
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$ROOT/scripts/lib.sh"
find_convoy
TMP=$(mktemp -d "${TMPDIR:-/tmp}/convoy-resume.XXXXXX")
PIDS=()
cleanup() { stop_pids "${PIDS[@]}"; rm -rf "$TMP"; }
trap cleanup EXIT

FLAGS=(--epochs 2 --train-samples 3200 --test-samples 500 --seed 5)
"$CONVOY" train "${FLAGS[@]}" --out "$TMP/reference.convoy" --json >/dev/null 2>"$TMP/train.log" || fail "resume-test: reference training failed"
reference=$(model_checksum "$TMP/reference.convoy")

PORT=$(free_port)
ENDPOINT=tcp://127.0.0.1:$PORT
COMMON=(--bind "$ENDPOINT" --workers 2 "${FLAGS[@]}" --checkpoint-every 10 --out "$TMP/resumed.convoy")
"$CONVOY" coordinator "${COMMON[@]}" --checkpoint-dir "$TMP/checkpoints" >/dev/null 2>"$TMP/coordinator1.log" &
first=$!; PIDS+=("$first")
for i in 1 2; do
    "$CONVOY" worker --connect "$ENDPOINT" --idle-timeout 60 2>"$TMP/worker$i.log" &
    PIDS+=($!)
done
workers=("${PIDS[@]:1}")
# Kill the coordinator once it has written two checkpoints (steps 10 and 20 of 100).
for _ in $(seq 300); do
    (( $(ls "$TMP/checkpoints" 2>/dev/null | wc -l) >= 2 )) && break
    kill -0 "$first" 2>/dev/null || fail "resume-test: the coordinator ended before its second checkpoint"
    sleep 0.1
done
kill -9 "$first"
wait "$first" 2>/dev/null || true

timeout 120 "$CONVOY" coordinator "${COMMON[@]}" --resume "$TMP/checkpoints" >/dev/null 2>"$TMP/coordinator2.log" \
    || fail "resume-test: the resumed coordinator exited with $?"
grep -q "resuming at" "$TMP/coordinator2.log" || fail "resume-test: the coordinator did not resume"
for p in "${workers[@]}"; do
    timeout 30 tail --pid="$p" -f /dev/null || fail "resume-test: worker $p did not finish"
    wait "$p" || fail "resume-test: worker $p exited with $?"
done
resumed=$(model_checksum "$TMP/resumed.convoy")
[[ $resumed == "$reference" ]] || fail "resume-test: weights differ: resumed $resumed, uninterrupted $reference"

# ---- a second signal exits at once ----------------------------------------------------------
"$CONVOY" coordinator "${COMMON[@]}" --workers 1 --step-timeout 120 --checkpoint-dir "$TMP/twice" --out "$TMP/twice.convoy" \
    >/dev/null 2>"$TMP/twice.log" &
twice=$!; PIDS+=("$twice")
"$CONVOY" worker --connect "$ENDPOINT" --idle-timeout 60 2>"$TMP/worker-twice.log" &
stuck=$!; PIDS+=("$stuck")
for _ in $(seq 300); do
    (( $(ls "$TMP/twice" 2>/dev/null | wc -l) >= 1 )) && break
    kill -0 "$twice" 2>/dev/null || fail "resume-test: the coordinator ended before its first checkpoint"
    sleep 0.1
done
kill -STOP "$stuck"
sleep 0.5
kill -TERM "$twice"
sleep 1
kill -0 "$twice" 2>/dev/null || fail "resume-test: one SIGTERM did not wait for the step in flight"
grep -q "SIGTERM: stopping after the current step" "$TMP/twice.log" || fail "resume-test: the first SIGTERM was not acknowledged"
kill -TERM "$twice"
rc=0; timeout 5 tail --pid="$twice" -f /dev/null || fail "resume-test: a second SIGTERM did not exit at once"
wait "$twice" || rc=$?
[[ $rc == 143 ]] || fail "resume-test: a second SIGTERM gave exit status $rc, expected 143"
kill -CONT "$stuck"

echo "PASS: resume-test a second SIGTERM exits at once (status 143)"

# ---- convoy local: SIGTERM passed on, exit 75, the same command continues --------------------
LOCAL=("$CONVOY" local --workers 2 "${FLAGS[@]}" --resume-if-present "$TMP/local" --checkpoint-every 10
    --out "$TMP/local.convoy")
"${LOCAL[@]}" >/dev/null 2>"$TMP/local1.log" &
local_pid=$!; PIDS+=("$local_pid")
for _ in $(seq 300); do
    (( $(ls "$TMP/local" 2>/dev/null | wc -l) >= 1 )) && break
    kill -0 "$local_pid" 2>/dev/null || fail "resume-test: convoy local ended before its first checkpoint"
    sleep 0.05
done
kill -TERM "$local_pid"
rc=0; timeout 30 tail --pid="$local_pid" -f /dev/null || fail "resume-test: convoy local did not stop within 30 s"
wait "$local_pid" || rc=$?
[[ $rc == 75 ]] || fail "resume-test: SIGTERM gave convoy local exit status $rc, expected 75"
(( $(grep -c "coordinator stopped the run early" "$TMP/local1.log") == 2 )) \
    || fail "resume-test: local's 2 workers were not told why the run stopped"
stopped=$(grep -o 'stopped after step [0-9]* of the run' "$TMP/local1.log" | grep -o '[0-9][0-9]*') \
    || fail "resume-test: local's coordinator did not say where it stopped"
timeout 120 "${LOCAL[@]}" >/dev/null 2>"$TMP/local2.log" || fail "resume-test: the continued convoy local exited with $?"
grep -q "resuming at .*(step $stopped of the run)" "$TMP/local2.log" || fail "resume-test: convoy local did not resume at step $stopped"
continued=$(model_checksum "$TMP/local.convoy")
[[ $continued == "$reference" ]] || fail "resume-test: weights differ: local preempted $continued, uninterrupted $reference"
echo "PASS: resume-test convoy local SIGTERMed at step $stopped exited 75, its workers told; the same command continued to checksum $continued"
echo "PASS: resume-test killed at $(grep -o 'step [0-9]* of the run' "$TMP/coordinator2.log"), resumed, checksum $resumed equals the uninterrupted run"
