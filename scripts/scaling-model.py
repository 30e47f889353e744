#!/usr/bin/env python3
"""The projection of docs/SCALING.md: measured constants in, step-time model out.

    scripts/scaling-model.py out/scaling.jsonl        (the output of scripts/bench-scaling.sh)

Reads the bench-coordinator and bench lines, fits the coordinator's cost per step
a + b * peers (least squares over N, each N's least-disturbed run: the minimum over repeats),
takes the per-core training speed c (median of `convoy bench --deterministic`), and prints
the constants and the projected tables as Markdown. The model and why it is a sum are in
docs/SCALING.md; the worker-side overhead and the pre-sum cost are flags because no
synthetic benchmark measures them.
"""
import argparse
import json
import math
import statistics

PARAMETERS = 61_706          # LeNet-5
SAMPLE_BYTES = 785           # 784 pixels + 1 label
STEP_HEADER = 40 + 20        # frame header + step payload fields
RESULT_HEADERS = 2 * 80      # two buckets (head, trunk), header + result fields each


def fit(points):
    """Least-squares line through (x, y) points: (intercept, slope)."""
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    slope = sum((x - mx) * (y - my) for x, y in points) / sum((x - mx) ** 2 for x in xs)
    return my - slope * mx, slope


def best_per_n(lines, run):
    per_n = {}
    for d in lines:
        if d["run"] == run:
            per_n.setdefault(d["workers"], []).append(d)
    return {n: min(runs, key=lambda d: d["coordinator_cpu_ms"]) for n, runs in per_n.items()}


def constants(lines, args):
    best = best_per_n(lines, "coordinator-per-worker")
    a, b = fit([(n, d["coordinator_cpu_ms"]) for n, d in best.items()])
    a_io, b_io = fit([(n, d["coordinator_io_cpu_ms"]) for n, d in best.items()])
    # One host runs over shared memory (convoy local): the coordinator's thread does all of
    # its I/O. Older measurement files have no such lines: ZeroMQ's constants stand in.
    shm = best_per_n(lines, "coordinator-shm")
    a_shm, b_shm = fit([(n, d["coordinator_cpu_ms"]) for n, d in shm.items()]) if len(shm) > 1 else (None, None)
    speeds = [d["train_samples_per_sec"] for d in lines if d["run"] == "bench-deterministic"]
    return {"a": max(a, 0.0), "b": b, "a_io": max(a_io, 0.0), "b_io": b_io,
            "a_shm": None if a_shm is None else max(a_shm, 0.0), "b_shm": b_shm, "c": statistics.median(speeds),
            "c_range": (min(speeds), max(speeds)), "t_w": args.worker_overhead_ms,
            "s_sum": args.presum_ms, "mb": args.micro_batch, "grad_bytes": args.gradient_bytes}


def step(k, hosts, batch, agg, gbit, m):
    """Terms of one step's critical path in ms, and the cores that have work."""
    units = math.ceil(batch / m["mb"])
    cores = k * hosts
    busy = min(cores, units)
    if agg:
        peers = min(hosts, units)
        slots = math.ceil(busy / peers)
        host_samples = batch / peers
    else:
        peers = busy
        slots = 1
        host_samples = batch / peers
    n = batch / busy
    s_out = STEP_HEADER + 4 * PARAMETERS + SAMPLE_BYTES * host_samples
    s_in = RESULT_HEADERS + m["grad_bytes"] * PARAMETERS
    terms = {
        "worker compute": n / m["c"] * 1000,
        # Its thread and its ZeroMQ I/O thread pipeline: the slower one sets the pace. On one
        # host (no link) the transport is shared memory: the thread alone.
        "coordinator CPU": m["a_shm"] + m["b_shm"] * peers if gbit is None and m["a_shm"] is not None
        else max(m["a"] + m["b"] * peers, m["a_io"] + m["b_io"] * peers),
        "worker messaging": m["t_w"],
        # One thread adds the slots' sums in turn (a tree would make it log2(slots)).
        "host pre-sum": slots * m["s_sum"] if agg else 0,
        # The coordinator's link, full duplex: sends pipeline behind earlier workers' compute,
        # but all gradients come back through it after the computations end (or, when the
        # step messages are the larger, the last worker starts after all of them went out).
        "coordinator link": 0 if gbit is None else
        max(s_out + peers * s_in, peers * s_out + s_in) / (gbit * 0.94e9 / 8) * 1000,
    }
    return terms, busy, cores


def cell(k, hosts, batch, agg, gbit, m):
    terms, busy, cores = step(k, hosts, batch, agg, gbit, m)
    total = sum(terms.values())
    rate = batch / total * 1000
    efficiency = rate / (cores * m["c"])
    overhead = {name: t for name, t in terms.items() if name != "worker compute"}
    worst = max(overhead, key=overhead.get)
    if busy < cores:
        limit = f"micro-batches: {busy} of {cores} cores have work"
    elif terms["worker compute"] >= 0.5 * total:
        limit = f"worker compute (then {worst})"
    else:
        limit = f"{worst} {overhead[worst]:.1f} ms of {total:.1f}"
    return f"{rate / 1000:.0f}k, {efficiency:.0%}, {limit}"


def tables(m, per_core):
    transport = "loopback" if m["a_shm"] is None else "shared memory"
    out = [f"### One host ({transport}; the coordinator runs on the same cores)", "",
           f"| cores | today: K workers, batch 64 | K workers, batch {per_core}×K | "
           f"1 worker × K slots (aggregation), batch {per_core}×K |", "|---|---|---|---|"]
    for k in (4, 8, 16, 64):
        out.append(f"| {k} | {cell(k, 1, 64, False, None, m)} | {cell(k, 1, per_core * k, False, None, m)} | "
                   f"{cell(k, 1, per_core * k, True, None, m)} |")
    for agg in (False, True):
        out += ["", f"### Across hosts, {'with' if agg else 'without'} per-host aggregation, "
                f"batch {per_core} per core", "",
                "| hosts × cores | 1 Gbit/s | 10 Gbit/s | 25 Gbit/s |", "|---|---|---|---|"]
        for hosts, k in ((2, 4), (4, 4), (4, 16), (8, 8), (16, 16)):
            row = [cell(k, hosts, per_core * k * hosts, agg, g, m) for g in (1, 10, 25)]
            out.append(f"| {hosts} × {k} = {hosts * k} | " + " | ".join(row) + " |")
    return "\n".join(out)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("measurements")
    parser.add_argument("--per-core-batch", type=int, default=32, help="samples per core per step")
    parser.add_argument("--worker-overhead-ms", type=float, default=0.5,
                        help="a worker's per-step messaging (convoy local, 1 worker: step - coordinator - compute)")
    parser.add_argument("--presum-ms", type=float, default=0.05, help="adding one slot's gradient into the host's sum")
    parser.add_argument("--gradient-bytes", type=int, default=8, help="bytes per gradient value on the wire")
    parser.add_argument("--micro-batch", type=int, default=8)
    args = parser.parse_args()
    lines = [json.loads(line) for line in open(args.measurements) if line.strip()]
    m = constants(lines, args)
    print(f"c = {m['c']:.0f} samples/s per core (range {m['c_range'][0]:.0f}-{m['c_range'][1]:.0f}); "
          f"coordinator thread {m['a']:.3f} + {m['b']:.3f} ms/peer, I/O thread {m['a_io']:.3f} + "
          f"{m['b_io']:.3f} ms/peer; shared memory "
          + ("not measured" if m["a_shm"] is None else f"{m['a_shm']:.3f} + {m['b_shm']:.3f} ms/peer")
          + f"; worker messaging {m['t_w']} ms; pre-sum {m['s_sum']} ms/slot; "
          f"gradient {m['grad_bytes']} B/value\n")
    check = [64 / sum(step(k, 1, 64, False, None, m)[0].values()) * 1000 for k in (1, 2)]
    print(f"model check, convoy local, batch 64: 1 worker {check[0]:.0f}, 2 workers {check[1]:.0f} samples/s\n")
    print(tables(m, args.per_core_batch))


if __name__ == "__main__":
    main()
