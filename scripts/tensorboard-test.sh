#!/usr/bin/env bash
# --tensorboard DIR, read back by the `tensorboard` Python package (installed into the
# test-only venv .build/test-venv, never by setup.sh): `convoy train` writes every scalar
# tag at each epoch's global step with the values of its --json lines (Float32); `convoy
# local` passes the flag on to its coordinator; a DIR that cannot be made is one line.
#   scripts/tensorboard-test.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/lib.sh"
find_convoy
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

# Shared with scripts/export-test.sh, which adds its own packages to it.
VENV="$ROOT/.build/test-venv"
if ! "$VENV/bin/python" -c 'import tensorboard' 2>/dev/null; then
    echo "tensorboard-test: adding tensorboard to the test venv ($VENV)" >&2
    [[ -x $VENV/bin/python ]] || python3 -m venv "$VENV" >&2 \
        || { echo "SKIP: python3 -m venv is not available"; exit 0; }
    "$VENV/bin/pip" install -q tensorboard >&2 || { echo "SKIP: could not install tensorboard from PyPI"; exit 0; }
fi
PY="$VENV/bin/python"

# 2000 samples at batch 64: 32 steps an epoch, so the epochs end at global steps 32 and 64.
"$CONVOY" train --epochs 2 --train-samples 2000 --test-samples 1000 --json --out "$TMP/m.convoy" \
    --tensorboard "$TMP/tb/train" > "$TMP/train.jsonl" 2> "$TMP/train.log" || fail "train: $(tail -1 "$TMP/train.log")"
"$PY" - "$TMP/tb/train" "$TMP/train.jsonl" 32 <<'PY' || fail "train: the event file disagrees with --json"
import glob, json, os, sys
import numpy as np
from tensorboard.backend.event_processing import event_accumulator, event_file_loader

directory, lines, steps_per_epoch = sys.argv[1], sys.argv[2], int(sys.argv[3])
files = glob.glob(os.path.join(directory, "events.out.tfevents.*.convoy"))
assert len(files) == 1, f"expected one event file, found {files}"
first = next(iter(event_file_loader.LegacyEventFileLoader(files[0]).Load()))
assert first.file_version == "brain.Event:2", f"first event: {first}"

reports = [json.loads(line) for line in open(lines)]
assert len(reports) == 2, f"expected 2 --json lines, got {len(reports)}"
accumulator = event_accumulator.EventAccumulator(directory, size_guidance={event_accumulator.SCALARS: 0})
accumulator.Reload()
keys = {"loss/train": "loss", "accuracy/train": "train_accuracy", "accuracy/test": "test_accuracy",
        "loss/test": "test_loss", "throughput/samples_per_sec": "samples_per_sec", "learning_rate": "learning_rate"}
tags = sorted(accumulator.Tags()["scalars"])
assert tags == sorted(keys), f"scalar tags {tags}"
for tag, key in keys.items():
    events = accumulator.Scalars(tag)
    assert [e.step for e in events] == [r["epoch"] * steps_per_epoch for r in reports], (tag, events)
    for event, report in zip(events, reports):
        # TensorBoard keeps simple_value as a float32: the --json double rounded once.
        assert np.float32(event.value) == np.float32(report[key]), (tag, event.value, report[key])
print(f"tensorboard: {len(keys)} tags x {len(reports)} epochs match --json; steps",
      [e.step for e in accumulator.Scalars("loss/train")])
PY

# local: its coordinator writes the file (a relative DIR, from local's working directory).
(cd "$TMP" && "$CONVOY" local --workers 2 --epochs 1 --train-samples 1000 --test-samples 500 --json \
    --out "$TMP/l.convoy" --tensorboard tb/local > "$TMP/local.jsonl" 2> "$TMP/local.log") \
    || fail "local: $(tail -1 "$TMP/local.log")"
"$PY" - "$TMP/tb/local" "$TMP/local.jsonl" <<'PY' || fail "local: the coordinator's event file is wrong"
import json, sys
from tensorboard.backend.event_processing import event_accumulator
accumulator = event_accumulator.EventAccumulator(sys.argv[1])
accumulator.Reload()
report = json.loads(open(sys.argv[2]).readline())
events = accumulator.Scalars("accuracy/test")
# 1000 samples at batch 64: 16 steps.
assert [e.step for e in events] == [16], events
assert abs(events[0].value - report["test_accuracy"]) < 1e-6, (events, report)
print("tensorboard: convoy local passed --tensorboard to its coordinator")
PY

# A DIR that is a file: one line naming the flag, a non-zero exit, no training.
touch "$TMP/file"
if "$CONVOY" train --epochs 1 --train-samples 100 --out "$TMP/x.convoy" --tensorboard "$TMP/file" \
    > "$TMP/bad.out" 2> "$TMP/bad.err"; then
    fail "--tensorboard naming a file was accepted"
fi
[[ $(wc -l < "$TMP/bad.err") -eq 1 ]] && grep -q -- '--tensorboard' "$TMP/bad.err" \
    || fail "--tensorboard naming a file: expected one line, got: $(cat "$TMP/bad.err")"
echo "tensorboard: a bad DIR is one line: $(cat "$TMP/bad.err")"
echo "PASS: tensorboard event files"
