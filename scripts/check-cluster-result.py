#!/usr/bin/env python3
"""Checks a cluster test run: the coordinator's last epoch JSON against the accuracy bar,
the worker count, and `convoy evaluate` on the saved model. Prints one "PASS ..." or
"FAIL ..." line. Used by local-cluster.sh and netns-cluster.sh.

usage: check-cluster-result.py COORDINATOR_JSON EVALUATE_JSON MIN_ACCURACY WORKERS
"""
import json, sys
epochs = []
for line in open(sys.argv[1]):
    line = line.strip()
    if not line.startswith("{"):
        continue
    try:
        obj = json.loads(line)
    except ValueError:
        continue
    if "test_accuracy" in obj:
        epochs.append(obj)
if not epochs:
    print("FAIL no epoch JSON on the coordinator's stdout"); sys.exit()
last = epochs[-1]
acc = float(last["test_accuracy"])
ev = json.loads(open(sys.argv[2]).read().strip().splitlines()[-1])
eacc = float(ev["accuracy"])
minimum = float(sys.argv[3])
info = (f"workers={sys.argv[4]} epochs={last['epoch']} test_accuracy={acc:.4f} "
        f"evaluate_accuracy={eacc:.4f} checksum={ev.get('parameter_checksum', '?')} "
        f"samples_per_sec={float(last.get('samples_per_sec', 0)):.0f}")
if int(last.get("workers", -1)) != int(sys.argv[4]):
    print(f"FAIL epoch JSON reports workers={last.get('workers')} ({info})")
elif acc < minimum:
    print(f"FAIL test_accuracy {acc:.4f} < {minimum} ({info})")
elif abs(acc - eacc) > 1e-6:
    print(f"FAIL evaluate accuracy differs from the coordinator's ({info})")
else:
    print(f"PASS {info}")
