#!/usr/bin/env bash
# `convoy train --checkpoint-dir D`, killed with SIGKILL mid-run and restarted with
# `--resume D`, ends with the same weights as an uninterrupted run: the one training session
# checkpoints and resumes in one process exactly as it does in a cluster. Then preemption:
# `convoy train --resume-if-present D` (a new run on an empty D), sent SIGTERM mid-epoch,
# writes a checkpoint of its step and exits 75; the same command line again continues to the
# same weights. A D holding only a corrupt checkpoint fails loudly instead of starting over.
#   scripts/train-resume-test.sh    prints PASS/FAIL, exit 0 only on PASS
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$ROOT/scripts/lib.sh"
find_convoy
TMP=$(mktemp -d "${TMPDIR:-/tmp}/convoy-train-resume.XXXXXX")
PIDS=()
cleanup() { stop_pids "${PIDS[@]}"; rm -rf "$TMP"; }
trap cleanup EXIT

FLAGS=(--epochs 2 --train-samples 6400 --test-samples 500 --seed 11 --json)
"$CONVOY" train "${FLAGS[@]}" --out "$TMP/reference.convoy" >/dev/null 2>"$TMP/reference.log" \
    || fail "train-resume-test: reference training failed"
reference=$(model_checksum "$TMP/reference.convoy")

# 100 steps an epoch, a checkpoint every 15: kill after the third (step 45 of 200).
"$CONVOY" train "${FLAGS[@]}" --checkpoint-dir "$TMP/checkpoints" --checkpoint-every 15 \
    --out "$TMP/resumed.convoy" >/dev/null 2>"$TMP/first.log" &
first=$!; PIDS+=("$first")
for _ in $(seq 600); do
    [[ -e "$TMP/checkpoints/checkpoint-0000000045.convoy-ckpt" ]] && break
    kill -0 "$first" 2>/dev/null || fail "train-resume-test: training ended before its step-45 checkpoint"
    sleep 0.05
done
kill -9 "$first"
wait "$first" 2>/dev/null || true

timeout 300 "$CONVOY" train "${FLAGS[@]}" --resume "$TMP/checkpoints" --checkpoint-every 15 \
    --out "$TMP/resumed.convoy" >/dev/null 2>"$TMP/second.log" \
    || fail "train-resume-test: the resumed run exited with $?"
grep -q "resuming at" "$TMP/second.log" || fail "train-resume-test: the run did not resume"
resumed=$(model_checksum "$TMP/resumed.convoy")
[[ $resumed == "$reference" ]] || fail "train-resume-test: weights differ: resumed $resumed, uninterrupted $reference"
echo "PASS: train-resume-test killed with SIGKILL, $(grep -o 'resuming at.*' "$TMP/second.log"), checksum $resumed equals the uninterrupted run"

# ---- preemption: SIGTERM, exit 75, the same command line continues ----------------------
PREEMPT=("$CONVOY" train "${FLAGS[@]}" --resume-if-present "$TMP/preempt" --checkpoint-every 15
    --out "$TMP/preempted.convoy")
"${PREEMPT[@]}" >/dev/null 2>"$TMP/preempt1.log" &
first=$!; PIDS+=("$first")
for _ in $(seq 600); do
    [[ -e "$TMP/preempt/checkpoint-0000000015.convoy-ckpt" ]] && break
    kill -0 "$first" 2>/dev/null || fail "train-resume-test: training ended before its step-15 checkpoint"
    sleep 0.05
done
sleep 0.3   # between periodic checkpoints: the stop writes its own
kill -TERM "$first"
rc=0; timeout 60 tail --pid="$first" -f /dev/null || fail "train-resume-test: SIGTERM did not stop training within 60 s"
wait "$first" || rc=$?
[[ $rc == 75 ]] || fail "train-resume-test: SIGTERM gave exit status $rc, expected 75"
grep -q "starting a new run" "$TMP/preempt1.log" || fail "train-resume-test: --resume-if-present on an empty directory did not start a new run"
stopped=$(grep -o 'stopped after step [0-9]*' "$TMP/preempt1.log" | grep -o '[0-9]*$') \
    || fail "train-resume-test: no 'stopped after step' line"
[[ -e $(printf '%s/checkpoint-%010d.convoy-ckpt' "$TMP/preempt" "$stopped") ]] \
    || fail "train-resume-test: no checkpoint of step $stopped, where SIGTERM stopped"
timeout 300 "${PREEMPT[@]}" >/dev/null 2>"$TMP/preempt2.log" || fail "train-resume-test: the restarted run exited with $?"
grep -q "resuming at .*(step $stopped of the run)" "$TMP/preempt2.log" || fail "train-resume-test: the restart did not resume at step $stopped"
preempted=$(model_checksum "$TMP/preempted.convoy")
[[ $preempted == "$reference" ]] || fail "train-resume-test: weights differ: preempted $preempted, uninterrupted $reference"

mkdir "$TMP/corrupt"
echo garbage >"$TMP/corrupt/checkpoint-0000000015.convoy-ckpt"
rc=0; timeout 60 "$CONVOY" train "${FLAGS[@]}" --resume-if-present "$TMP/corrupt" --out "$TMP/corrupt.convoy" \
    >/dev/null 2>"$TMP/corrupt.log" || rc=$?
[[ $rc == 1 ]] && grep -q "holds no usable checkpoint" "$TMP/corrupt.log" \
    || fail "train-resume-test: a corrupt-only checkpoint directory gave exit $rc instead of failing loudly"
echo "PASS: train-resume-test SIGTERM stopped at step $stopped with exit 75 and a checkpoint; the same command continued to checksum $preempted; a corrupt checkpoint fails loudly"
