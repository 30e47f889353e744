#!/usr/bin/env bash
# `convoy train --checkpoint-dir D`, killed with SIGKILL mid-run and restarted with
# `--resume D`, ends with the same weights as an uninterrupted run: the one training session
# checkpoints and resumes in one process exactly as it does in a cluster.
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
