#!/usr/bin/env python3
"""PyTorch LeNet-5 CPU speed benchmark, for comparison with `convoy bench --model lenet5 --json`.

Prints one JSON object on stdout with keys:
  framework, torch_version, threads, batch,
  train_samples_per_sec, train_epoch_samples_per_sec, infer_samples_per_sec

See benchmarks/README.md for how to set up the environment.
"""

import argparse
import gzip
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn

LENET5_PARAMS = 61706


def build_lenet5() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2),  # 6x28x28
        nn.ReLU(),
        nn.MaxPool2d(2),  # 6x14x14
        nn.Conv2d(6, 16, 5),  # 16x10x10
        nn.ReLU(),
        nn.MaxPool2d(2),  # 16x5x5
        nn.Flatten(),  # 400
        nn.Linear(400, 120),
        nn.ReLU(),
        nn.Linear(120, 84),
        nn.ReLU(),
        nn.Linear(84, 10),
    )


def build_conv1d() -> nn.Module:
    """convoy's conv1d model: MNIST as 784-long one-channel signals; 39,210 parameters."""
    return nn.Sequential(
        nn.Unflatten(1, (1, 784)),
        nn.Conv1d(1, 16, 5, stride=2, padding=2),  # 16x392
        nn.ReLU(),
        nn.Conv1d(16, 32, 5, stride=2, padding=2),  # 32x196
        nn.ReLU(),
        nn.Conv1d(32, 32, 5, stride=2, padding=2),  # 32x98
        nn.ReLU(),
        nn.Flatten(),  # 3136
        nn.Linear(3136, 10),
    )


MODELS = {"lenet5": (build_lenet5, LENET5_PARAMS), "conv1d": (build_conv1d, 39210)}


def _read_idx(path: str) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        data = f.read()
    if data[0] != 0 or data[1] != 0:
        raise ValueError(f"{path}: bad IDX magic")
    dtype_code, ndim = data[2], data[3]
    if dtype_code != 0x08:
        raise ValueError(f"{path}: expected unsigned byte data, got type 0x{dtype_code:02x}")
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    offset = 4 + 4 * ndim
    arr = np.frombuffer(data, dtype=np.uint8, offset=offset)
    if arr.size != int(np.prod(dims)):
        raise ValueError(f"{path}: size mismatch ({arr.size} vs {dims})")
    return arr.reshape(dims)


def load_mnist(data_dir: str):
    images = _read_idx(os.path.join(data_dir, "train-images-idx3-ubyte.gz"))
    labels = _read_idx(os.path.join(data_dir, "train-labels-idx1-ubyte.gz"))
    x = torch.from_numpy(images.astype(np.float32) / 255.0).reshape(-1, 1, 28, 28)
    y = torch.from_numpy(labels.astype(np.int64))
    return x.contiguous(), y


def synthetic_mnist(n: int = 60000, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, 28, 28, generator=g)
    y = torch.randint(0, 10, (n,), generator=g)
    return x, y


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    p.add_argument("--batch", type=int, default=64, help="training batch size (default 64)")
    p.add_argument("--steps", type=int, default=200, help="timed steady-state training steps (default 200)")
    p.add_argument("--warmup", type=int, default=20, help="untimed warm-up training steps (default 20)")
    p.add_argument("--full-epoch", action="store_true", help="also time one full epoch over the training set")
    p.add_argument("--data", metavar="DIR", default=None,
                   help="directory with gzipped IDX MNIST files (train-images-idx3-ubyte.gz, ...); "
                        "default: random synthetic data of MNIST shape")
    p.add_argument("--infer-batch", type=int, default=1000, help="inference batch size (default 1000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--model", choices=sorted(MODELS), default="lenet5", help="network (default lenet5)")
    args = p.parse_args()

    torch.set_num_threads(args.threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    torch.manual_seed(args.seed)

    if args.data:
        x_all, y_all = load_mnist(args.data)
    else:
        x_all, y_all = synthetic_mnist(60000, args.seed)
    n = x_all.shape[0]

    build, expected = MODELS[args.model]
    model = build()
    if args.model == "conv1d":
        x_all = x_all.reshape(n, 784)
    nparams = sum(p.numel() for p in model.parameters())
    assert nparams == expected, f"{args.model} has {nparams} parameters, expected {expected}"

    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    bs = args.batch

    def train_step(i: int) -> None:
        start = (i * bs) % (n - bs + 1)
        xb = x_all[start:start + bs]
        yb = y_all[start:start + bs]
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(xb), yb)
        loss.backward()
        opt.step()

    # (a) steady-state training throughput
    model.train()
    for i in range(args.warmup):
        train_step(i)
    t0 = time.perf_counter()
    for i in range(args.warmup, args.warmup + args.steps):
        train_step(i)
    dt = time.perf_counter() - t0
    train_sps = args.steps * bs / dt

    # (b) one full epoch (shuffled, includes the final partial batch)
    epoch_sps = None
    if args.full_epoch:
        g = torch.Generator().manual_seed(args.seed + 1)
        t0 = time.perf_counter()
        perm = torch.randperm(n, generator=g)
        for s in range(0, n, bs):
            idx = perm[s:s + bs]
            xb = x_all[idx]
            yb = y_all[idx]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
        dt = time.perf_counter() - t0
        epoch_sps = n / dt

    # (c) inference throughput
    model.eval()
    ib = args.infer_batch
    nb = max(1, n // ib)
    with torch.no_grad():
        for j in range(2):
            model(x_all[(j % nb) * ib:(j % nb) * ib + ib])
        timed = 10
        t0 = time.perf_counter()
        for j in range(2, 2 + timed):
            model(x_all[(j % nb) * ib:(j % nb) * ib + ib])
        dt = time.perf_counter() - t0
    infer_sps = timed * min(ib, n) / dt

    result = {
        "framework": "pytorch",
        "model": args.model,
        "torch_version": torch.__version__,
        "threads": args.threads,
        "batch": bs,
        "train_samples_per_sec": round(train_sps, 1),
        "train_epoch_samples_per_sec": None if epoch_sps is None else round(epoch_sps, 1),
        "infer_samples_per_sec": round(infer_sps, 1),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
