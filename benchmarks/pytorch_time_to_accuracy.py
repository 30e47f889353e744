#!/usr/bin/env python3
"""Time to a target test accuracy for LeNet-5 in PyTorch, with convoy's default recipe, for
comparison with `convoy local --target-accuracy A --eval-every K --epochs E --json`
(`time_to_target_seconds` in its last object).

Recipe (as convoy's defaults): SGD, momentum 0.9, lr 0.05 × √(batch/64), weight decay 5e-4,
random shifts of up to 1 pixel (zero fill), cosine decay over the run (per step), batch 64,
PyTorch-default init, a seeded shuffle per epoch, evaluation on the whole test set at each
epoch's end and every K steps; the clock starts at the first step and includes evaluations.
Prints one JSON object.

  /work/torch-venv/bin/python benchmarks/pytorch_time_to_accuracy.py --threads 2 --epochs 4 \
      --target 0.99 --eval-every 100 --data data/mnist
"""
import argparse
import json
import math
import os
import sys
import time

import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pytorch_lenet import build_lenet5, _read_idx  # noqa: E402


def load(data_dir, split):
    prefix = "train" if split == "train" else "t10k"
    images = _read_idx(os.path.join(data_dir, f"{prefix}-images-idx3-ubyte.gz"))
    labels = _read_idx(os.path.join(data_dir, f"{prefix}-labels-idx1-ubyte.gz"))
    x = torch.from_numpy(images.astype("float32") / 255.0).reshape(-1, 1, 28, 28).contiguous()
    return x, torch.from_numpy(labels.astype("int64"))


def shifted(images, shift, generator):
    """Each image moved by (dy, dx) uniform in -shift..shift, zero fill (as convoy --augment)."""
    padded = torch.nn.functional.pad(images, (shift, shift, shift, shift))
    offsets = torch.randint(0, 2 * shift + 1, (len(images), 2), generator=generator)
    size = images.shape[-1]
    return torch.stack([padded[k, :, dy:dy + size, dx:dx + size] for k, (dy, dx) in enumerate(offsets.tolist())])


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--target", type=float, default=0.99)
    p.add_argument("--eval-every", type=int, default=100)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--weight-decay", type=float, default=5e-4)
    p.add_argument("--augment", type=int, default=1, help="max shift in pixels (0: off)")
    p.add_argument("--data", default=os.path.join(os.path.dirname(__file__), "..", "data", "mnist"))
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    xtrain, ytrain = load(args.data, "train")
    xtest, ytest = load(args.data, "test")
    model = build_lenet5()
    lr = 0.05 * math.sqrt(args.batch / 64)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=args.weight_decay)
    steps_per_epoch = math.ceil(len(xtrain) / args.batch)
    total = steps_per_epoch * args.epochs
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda t: 0.5 * (1 + math.cos(math.pi * min(t, total) / total)))
    loss_fn = nn.CrossEntropyLoss()

    def accuracy():
        model.eval()
        with torch.no_grad():
            correct = sum((model(xtest[i:i + 1000]).argmax(1) == ytest[i:i + 1000]).sum().item()
                          for i in range(0, len(xtest), 1000))
        model.train()
        return correct / len(xtest)

    started = time.perf_counter()
    step, reached, last = 0, None, 0.0
    generator = torch.Generator().manual_seed(args.seed)
    for epoch in range(args.epochs):
        order = torch.randperm(len(xtrain), generator=generator)
        for first in range(0, len(xtrain), args.batch):
            index = order[first:first + args.batch]
            batch = shifted(xtrain[index], args.augment, generator) if args.augment else xtrain[index]
            optimizer.zero_grad(set_to_none=True)
            loss_fn(model(batch), ytrain[index]).backward()
            optimizer.step()
            schedule.step()
            step += 1
            end_of_epoch = first + args.batch >= len(xtrain)
            if (args.eval_every and step % args.eval_every == 0) or end_of_epoch:
                last = accuracy()
                if last >= args.target:
                    reached = time.perf_counter() - started
                    break
        if reached is not None:
            break
    print(json.dumps({"framework": "pytorch", "torch_version": torch.__version__, "threads": args.threads,
                      "epochs": args.epochs, "batch": args.batch, "target": args.target, "steps": step,
                      "test_accuracy": last, "time_to_target_seconds": reached}))


if __name__ == "__main__":
    main()
