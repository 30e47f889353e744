#!/usr/bin/env bash
# Crafted checkpoints and model files, loaded by the real binary: `convoy train --resume` and
# `convoy evaluate` on mutations of real files (fields at edge values, counts and lengths
# changed, sections swapped, optimizer states relabelled; CRC recomputed, so they are crafted
# files, not disk damage), written by `ConvoyFuzz --write-mutations`. Each must finish or
# fail with exit 1 and one clear line; none may end by a signal (exit >= 128), run past its
# time limit, or be accepted when it must be refused. The in-process test
# (Tests/ConvoyClusterTests/FileMutationTests.swift) runs hundreds more; this stage proves
# the same of the command line, bounded in time.
#   scripts/file-mutation-test.sh [COUNT]    mutations per format (default 40); PASS/FAIL, exit 0 on PASS
# Environment: CONVOY (binary), FUZZ (ConvoyFuzz binary; default next to CONVOY), BUDGET
# (seconds for the whole stage, default 600: mutations left when it runs out are skipped
# and counted), KEEP_GOING=1 (count every failure instead of stopping at the first).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$ROOT/scripts/lib.sh"
find_convoy
FUZZ=${FUZZ:-$(dirname "$CONVOY")/ConvoyFuzz}
[[ -x $FUZZ ]] || { echo "FAIL: ConvoyFuzz not built at $FUZZ (swift build -c release --product ConvoyFuzz)"; exit 1; }
COUNT=${1:-40}
BUDGET=${BUDGET:-600}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/convoy-mutation.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
DEADLINE=$(( SECONDS + BUDGET ))

# 256 samples, batch 64: 4 steps an epoch; checkpoints at steps 2, 4, 6 (kept) and 8.
FLAGS=(--epochs 2 --batch 64 --train-samples 256 --test-samples 64 --optimizer momentum --seed 5)
"$CONVOY" train "${FLAGS[@]}" --checkpoint-dir "$TMP/run" --checkpoint-every 2 --keep-checkpoints 10 \
    --out "$TMP/model.convoy" >/dev/null 2>"$TMP/train.log" || fail "the original run failed"
ORIGINAL_CKPT="$TMP/run/checkpoint-0000000006.convoy-ckpt"
[[ -f $ORIGINAL_CKPT ]] || fail "no step-6 checkpoint"
mkdir -p "$TMP/ckpt" "$TMP/model"
"$FUZZ" --write-mutations checkpoint --count "$COUNT" --seed 21 "$ORIGINAL_CKPT" "$TMP/ckpt" >/dev/null \
    || fail "ConvoyFuzz could not write the checkpoint mutations"
"$FUZZ" --write-mutations model --count "$COUNT" --seed 22 "$TMP/model.convoy" "$TMP/model" >/dev/null \
    || fail "ConvoyFuzz could not write the model file mutations"

checked=0 refused=0 accepted=0 skipped=0 failures=0
bad() {
    if [[ ${KEEP_GOING:-0} == 1 ]]; then
        failures=$((failures + 1)); echo "bad: $*" >&2
    else
        fail "$@"
    fi
}
# judge NAME EXPECT STATUS STDERR-FILE: the outcome of one mutation against the rules above.
judge() {
    local name=$1 expect=$2 status=$3 log=$4
    checked=$((checked + 1))
    (( status == 124 )) && { bad "$name: ran past its time limit"; return; }
    (( status >= 128 )) && { bad "$name: ended by signal $((status - 128)): $(tail -n 1 "$log")"; return; }
    if (( status == 0 )); then
        accepted=$((accepted + 1))
        [[ $expect == either ]] || bad "$name: accepted although it must be refused"
        return
    fi
    refused=$((refused + 1))
    (( status == 1 )) || bad "$name: exit $status (expected 0 or 1)"
    grep -qiE 'fatal error|stack dump|backtrace' "$log" && bad "$name: crashed: $(tail -n 3 "$log")"
    [[ $(tail -n 1 "$log" | wc -c) -lt 2000 ]] || bad "$name: error line longer than 2000 bytes"
    return 0
}

for file in "$TMP"/ckpt/*; do
    (( SECONDS < DEADLINE )) || { skipped=$((skipped + 1)); continue; }
    name=${file##*/}; expect=${name#*-}; expect=${expect%%-*}
    [[ $expect == resume ]] && expect=resume-refuse
    rm -rf "$TMP/resume" && mkdir "$TMP/resume"
    cp "$file" "$TMP/resume/checkpoint-0000000006.convoy-ckpt"
    status=0
    timeout 120 "$CONVOY" train "${FLAGS[@]}" --resume "$TMP/resume" --out "$TMP/resumed.convoy" \
        >/dev/null 2>"$TMP/one.log" || status=$?
    judge "checkpoint $name" "$expect" "$status" "$TMP/one.log"
done
for file in "$TMP"/model/*; do
    (( SECONDS < DEADLINE )) || { skipped=$((skipped + 1)); continue; }
    name=${file##*/}; expect=${name#*-}; expect=${expect%%-*}
    status=0
    timeout 120 "$CONVOY" evaluate --model-file "$file" --test-samples 64 >/dev/null 2>"$TMP/one.log" || status=$?
    judge "model file $name" "$expect" "$status" "$TMP/one.log"
done
(( checked > 0 )) || fail "no mutation was checked within ${BUDGET}s"
(( failures == 0 )) || fail "$failures of $checked crafted files crashed, hung or were wrongly accepted"
echo "PASS: file-mutation-test: $checked crafted files ($refused refused with one line, $accepted valid and used," \
    "$skipped skipped for time); no signal, no hang, nothing invalid accepted"
