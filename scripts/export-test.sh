#!/usr/bin/env bash
# Weights usable elsewhere: trains LeNet-5 briefly, exports it as .npz and ONNX, and checks
# with NumPy and onnxruntime (a test-only venv this script makes) that both reproduce
# `convoy predict`'s 10,000 test-set predictions and `convoy evaluate`'s accuracy exactly;
# conv1d and simplecnn through ONNX give convoy's confusion matrix; a PNG and a PGM of test
# images (written by Pillow) are classified as the IDX copies are.
#   scripts/export-test.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/lib.sh"
find_convoy
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
DATA="$ROOT/data/mnist"
IMAGES="$DATA/t10k-images-idx3-ubyte.gz" LABELS="$DATA/t10k-labels-idx1-ubyte.gz"

# The venv lives in .build (ignored, kept between runs); only tests need these packages.
VENV="$ROOT/.build/test-venv"
if ! "$VENV/bin/python" -c 'import numpy, onnx, onnxruntime, PIL' 2>/dev/null; then
    echo "export-test: making the test venv ($VENV: numpy, onnx, onnxruntime, pillow)" >&2
    python3 -m venv "$VENV" >&2 || { echo "SKIP: python3 -m venv is not available"; exit 0; }
    "$VENV/bin/pip" install -q numpy onnx onnxruntime pillow >&2 \
        || { echo "SKIP: could not install numpy/onnx/onnxruntime from PyPI"; exit 0; }
fi
PY="$VENV/bin/python"

"$CONVOY" train --epochs 1 --train-samples 6000 --out "$TMP/lenet5.convoy" > "$TMP/train.log" 2>&1 \
    || fail "training LeNet-5"
"$CONVOY" export "$TMP/lenet5.convoy" "$TMP/lenet5.npz" > /dev/null || fail "export npz"
"$CONVOY" export --format onnx "$TMP/lenet5.convoy" "$TMP/lenet5.onnx" > /dev/null || fail "export onnx"
"$CONVOY" predict --json --invert no --model-file "$TMP/lenet5.convoy" "$IMAGES" > "$TMP/predictions.jsonl" \
    2> "$TMP/predict.log" || fail "predict on the IDX test images"
accuracy=$("$CONVOY" evaluate --model-file "$TMP/lenet5.convoy" --json 2> /dev/null \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["accuracy"])')
"$PY" "$ROOT/scripts/check-export.py" "$TMP/lenet5.npz" "$TMP/lenet5.onnx" "$IMAGES" "$LABELS" \
    "$TMP/predictions.jsonl" "$accuracy" || fail "NumPy / onnxruntime disagree with convoy"

for model in conv1d simplecnn; do
    "$CONVOY" train --model "$model" --epochs 1 --train-samples 3000 --out "$TMP/$model.convoy" \
        > "$TMP/train-$model.log" 2>&1 || fail "training $model"
    "$CONVOY" export "$TMP/$model.convoy" "$TMP/$model.onnx" > /dev/null || fail "export $model"
    "$CONVOY" evaluate --model-file "$TMP/$model.convoy" --json > "$TMP/$model.json" 2> /dev/null
    "$PY" "$ROOT/scripts/check-export.py" --confusion "$TMP/$model.onnx" "$IMAGES" "$LABELS" "$TMP/$model.json" \
        || fail "$model: onnxruntime disagrees with convoy"
done

# Image files: test images 0-2 as PNG (one enlarged to 56x56, one dark-on-light) and PGM.
"$PY" - "$IMAGES" "$TMP" <<'PY'
import gzip, sys
import numpy as np
from PIL import Image
data = gzip.open(sys.argv[1]).read()
images = np.frombuffer(data, np.uint8, offset=16).reshape(-1, 28, 28)
out = sys.argv[2]
Image.fromarray(images[0]).save(f"{out}/zero.png")
Image.fromarray(images[1]).resize((56, 56), Image.NEAREST).save(f"{out}/one-large.png")
Image.fromarray(255 - images[2]).convert("RGB").save(f"{out}/two-paper.png")
Image.fromarray(images[0]).save(f"{out}/zero.pgm")
PY
"$CONVOY" predict --json --model-file "$TMP/lenet5.convoy" "$TMP/zero.png" "$TMP/one-large.png" \
    "$TMP/two-paper.png" "$TMP/zero.pgm" > "$TMP/files.jsonl" 2> "$TMP/predict-files.log" \
    || fail "predict on PNG/PGM files"
python3 - "$TMP/files.jsonl" "$TMP/predictions.jsonl" <<'PY' || fail "image files classified differently"
import json, sys
files = [json.loads(l) for l in open(sys.argv[1])]
idx = [json.loads(l) for l in open(sys.argv[2])]
expect = [(0, False), (1, False), (2, True), (0, False)]
for got, (i, inverted) in zip(files, expect):
    assert got["inverted"] == inverted, f"{got['file']}: inverted {got['inverted']}, expected {inverted}"
    assert got["predicted"] == idx[i]["predicted"], f"{got['file']}: {got['predicted']} vs IDX {idx[i]['predicted']}"
    if not inverted and "large" not in got["file"]:
        assert got["probabilities"] == idx[i]["probabilities"], f"{got['file']}: probabilities differ"
print(f"{len(files)} image files classified as their IDX copies")
PY
# Data beyond MNIST's directory: the same samples as a Keras-style .npz train the same model.
"$PY" - "$DATA" "$TMP/mnist.npz" <<'PY'
import gzip, sys
import numpy as np
def idx(name, offset):
    return np.frombuffer(gzip.open(f"{sys.argv[1]}/{name}").read(), np.uint8, offset=offset)
x_train = idx("train-images-idx3-ubyte.gz", 16).reshape(-1, 28, 28)[:2000]
y_train = idx("train-labels-idx1-ubyte.gz", 8)[:2000].astype(np.int64)
x_test = idx("t10k-images-idx3-ubyte.gz", 16).reshape(-1, 28, 28)[:500]
y_test = idx("t10k-labels-idx1-ubyte.gz", 8)[:500].astype(np.int64)
np.savez_compressed(sys.argv[2], x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
PY
for source in "$DATA" "$TMP/mnist.npz"; do
    "$CONVOY" train --data "$source" --epochs 1 --train-samples 2000 --test-samples 500 \
        --out "$TMP/from-${source##*/}.convoy" > "$TMP/train-${source##*/}.log" 2>&1 || fail "train --data $source"
done
[[ $(model_checksum "$TMP/from-mnist.convoy") == $(model_checksum "$TMP/from-mnist.npz.convoy") ]] \
    || fail "training from the .npz copy gave different weights than from the IDX files"
echo "export-test: ok"
