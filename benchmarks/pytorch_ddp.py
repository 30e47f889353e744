#!/usr/bin/env python3
"""PyTorch DistributedDataParallel LeNet-5 CPU benchmark (gloo backend, localhost).

Spawns --world-size processes with torch.multiprocessing; each rank uses one
intra-op thread and trains on its 1/N share of a GLOBAL batch (--batch must be
divisible by --world-size). Gradients are averaged with DDP's all-reduce over
gloo on 127.0.0.1. SGD lr 0.05 momentum 0.9, same LeNet-5 as pytorch_lenet.py.

Rank 0 prints one JSON object on stdout with keys:
  framework, backend, world_size, global_batch, threads_per_rank,
  train_samples_per_sec, step_ms

Run with --world-size 1 as well to compute scaling efficiency:
  efficiency = sps(N ranks) / (N * sps(1 rank)).

See benchmarks/README.md for how to set up the environment.
"""

import argparse
import json
import os
import socket
import sys
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn as nn
from torch.nn.parallel import DistributedDataParallel as DDP

# Same model and data loaders as the single-process benchmark (same directory).
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pytorch_lenet import LENET5_PARAMS, build_lenet5, load_mnist, synthetic_mnist  # noqa: E402

MASTER_ADDR = "127.0.0.1"


def free_port() -> int:
    """Ask the OS for an unused TCP port on the loopback interface."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((MASTER_ADDR, 0))
        return s.getsockname()[1]


def worker(rank: int, args: argparse.Namespace, port: int) -> None:
    os.environ["MASTER_ADDR"] = MASTER_ADDR
    os.environ["MASTER_PORT"] = str(port)
    torch.set_num_threads(1)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass

    world = args.world_size
    dist.init_process_group("gloo", init_method=f"tcp://{MASTER_ADDR}:{port}",
                            rank=rank, world_size=world)
    try:
        # Identical initial weights on every rank (DDP also broadcasts rank 0's at construction).
        torch.manual_seed(args.seed)
        if args.data:
            x_all, y_all = load_mnist(args.data)
        else:
            x_all, y_all = synthetic_mnist(60000, args.seed)
        n = x_all.shape[0]

        model = build_lenet5()
        nparams = sum(p.numel() for p in model.parameters())
        assert nparams == LENET5_PARAMS, f"LeNet-5 has {nparams} parameters, expected {LENET5_PARAMS}"
        ddp = DDP(model)

        opt = torch.optim.SGD(ddp.parameters(), lr=0.05, momentum=0.9)
        loss_fn = nn.CrossEntropyLoss()
        gbs = args.batch
        lbs = gbs // world

        def train_step(i: int) -> None:
            # Global batch i covers [start, start+gbs); rank r takes its contiguous 1/N slice.
            start = (i * gbs) % (n - gbs + 1) + rank * lbs
            xb = x_all[start:start + lbs]
            yb = y_all[start:start + lbs]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(ddp(xb), yb)
            loss.backward()  # DDP all-reduces (averages) gradients here
            opt.step()

        ddp.train()
        for i in range(args.warmup):
            train_step(i)
        dist.barrier()
        t0 = time.perf_counter()
        for i in range(args.warmup, args.warmup + args.steps):
            train_step(i)
        dist.barrier()
        dt = time.perf_counter() - t0

        if rank == 0:
            result = {
                "framework": "pytorch-ddp",
                "backend": "gloo",
                "world_size": world,
                "global_batch": gbs,
                "threads_per_rank": 1,
                "train_samples_per_sec": round(args.steps * gbs / dt, 1),
                "step_ms": round(1000.0 * dt / args.steps, 3),
            }
            print(json.dumps(result), flush=True)
    finally:
        dist.destroy_process_group()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--world-size", type=int, default=2, help="number of DDP processes (default 2)")
    p.add_argument("--batch", type=int, default=64,
                   help="GLOBAL training batch, split evenly across ranks (default 64)")
    p.add_argument("--steps", type=int, default=300, help="timed steady-state training steps (default 300)")
    p.add_argument("--warmup", type=int, default=20, help="untimed warm-up training steps (default 20)")
    p.add_argument("--data", metavar="DIR", default=None,
                   help="directory with gzipped IDX MNIST files (train-images-idx3-ubyte.gz, ...); "
                        "default: random synthetic data of MNIST shape")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()

    if args.world_size < 1:
        p.error("--world-size must be >= 1")
    if args.batch < args.world_size or args.batch % args.world_size != 0:
        p.error(f"--batch {args.batch} must be a positive multiple of --world-size {args.world_size}")
    if args.steps < 1 or args.warmup < 0:
        p.error("--steps must be >= 1 and --warmup >= 0")

    # Keep every rank (and any OpenMP/MKL pool it creates) to one thread, and keep gloo on loopback.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("MKL_NUM_THREADS", "1")
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")

    port = free_port()
    mp.spawn(worker, args=(args, port), nprocs=args.world_size, join=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
