#!/usr/bin/env python3
"""Checks `convoy export` against convoy itself, with tools convoy does not control.

    check-export.py MODEL.npz MODEL.onnx TEST_IMAGES TEST_LABELS CONVOY_PREDICTIONS.jsonl ACCURACY
    check-export.py --confusion MODEL.onnx TEST_IMAGES TEST_LABELS EVALUATE.json

- NumPy loads the .npz; a LeNet-5 forward pass written here in NumPy (PyTorch's layouts:
  conv weights (out, in, kh, kw), Linear weights (out, in)) predicts the test set;
- onnxruntime runs the .onnx on the same images, after `onnx.checker` accepts the model;
- both must give exactly convoy's per-image predictions (`convoy predict --json`), and the
  accuracy `convoy evaluate` printed.
With --confusion (any model, e.g. conv1d, whose input is not an image): onnxruntime's
confusion matrix on the test set must equal `convoy evaluate --json`'s.
Exits non-zero with the first disagreement.
"""
import gzip
import json
import sys

import numpy as np


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    rank = data[3]
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(rank)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * rank).reshape(dims)


def conv2d(x, w, b, padding):
    """x (N, C, H, W), w (O, C, kh, kw): a plain im2col convolution, stride 1, zero padding."""
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    x = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    oh, ow = h + 2 * padding - kh + 1, wd + 2 * padding - kw + 1
    cols = np.empty((n, c, kh, kw, oh, ow), dtype=np.float32)
    for i in range(kh):
        for j in range(kw):
            cols[:, :, i, j] = x[:, :, i : i + oh, j : j + ow]
    y = np.einsum("ncijhw,ocij->nohw", cols, w, optimize=True)
    return y + b[None, :, None, None]


def maxpool2(x):
    n, c, h, w = x.shape
    return x.reshape(n, c, h // 2, 2, w // 2, 2).max(axis=(3, 5))


def lenet5(p, x):
    relu = lambda v: np.maximum(v, 0)
    x = maxpool2(relu(conv2d(x, p["0.weight"], p["0.bias"], 2)))
    x = maxpool2(relu(conv2d(x, p["3.weight"], p["3.bias"], 0)))
    x = x.reshape(x.shape[0], -1)
    x = relu(x @ p["7.weight"].T + p["7.bias"])
    x = relu(x @ p["9.weight"].T + p["9.bias"])
    return x @ p["11.weight"].T + p["11.bias"]


def onnx_logits(onnx_path, images):
    import onnx
    import onnxruntime

    onnx.checker.check_model(onnx.load(onnx_path), full_check=True)
    session = onnxruntime.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
    shape = [d if isinstance(d, int) else -1 for d in session.get_inputs()[0].shape]
    return session.run(["logits"], {"input": images.reshape(shape)})[0]


def check_confusion(onnx_path, images_path, labels_path, evaluate_path):
    images = read_idx(images_path).astype(np.float32) * np.float32(1 / 255)
    labels = read_idx(labels_path).astype(np.int64)
    with open(evaluate_path) as f:
        expected = np.array(json.load(f)["confusion"])
    predicted = onnx_logits(onnx_path, images).argmax(1)
    confusion = np.zeros_like(expected)
    np.add.at(confusion, (labels, predicted), 1)
    if not np.array_equal(confusion, expected):
        sys.exit(f"{onnx_path}: onnxruntime's confusion matrix differs from convoy evaluate's")
    print(f"{onnx_path}: onnxruntime's confusion matrix equals convoy's ({np.trace(confusion)} correct)")


def main():
    if sys.argv[1] == "--confusion":
        return check_confusion(*sys.argv[2:6])
    npz, onnx_path, images_path, labels_path, predictions_path, accuracy = sys.argv[1:7]
    params = dict(np.load(npz))
    expected = {"0.weight": (6, 1, 5, 5), "3.weight": (16, 6, 5, 5), "7.weight": (120, 400), "11.bias": (10,)}
    for name, shape in expected.items():
        if params[name].shape != shape or params[name].dtype != np.float32:
            sys.exit(f"{npz}: {name} is {params[name].dtype}{params[name].shape}, expected float32{shape}")
    # Scaled exactly as convoy scales pixels: Float32(p) * Float32(1/255).
    images = read_idx(images_path).astype(np.float32)[:, None, :, :] * np.float32(1 / 255)
    labels = read_idx(labels_path).astype(np.int64)
    with open(predictions_path) as f:
        convoy = np.array([json.loads(line)["predicted"] for line in f if line.strip()])
    if len(convoy) != len(labels):
        sys.exit(f"convoy predicted {len(convoy)} images, the test set has {len(labels)}")

    numpy_pred = np.concatenate([lenet5(params, images[i : i + 1000]).argmax(1) for i in range(0, len(images), 1000)])

    onnx_pred = onnx_logits(onnx_path, images).argmax(1)

    failures = []
    for name, pred in (("numpy", numpy_pred), ("onnxruntime", onnx_pred)):
        differ = np.flatnonzero(pred != convoy)
        acc = float((pred == labels).mean())
        print(f"{name}: accuracy {acc:.4f}, {len(differ)} predictions differ from convoy's")
        if len(differ) or abs(acc - float(accuracy)) > 1e-9:
            failures.append(f"{name} disagrees with convoy (images {differ[:10].tolist()}, accuracy {acc})")
    if failures:
        sys.exit("; ".join(failures))
    print(f"npz and onnx reproduce convoy's {len(labels)} predictions and accuracy {accuracy} exactly")


if __name__ == "__main__":
    main()
