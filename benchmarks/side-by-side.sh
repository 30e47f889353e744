#!/usr/bin/env bash
# convoy and PyTorch in alternating rounds of one run, one thread each, so both see the same
# load: peers on these shared 2-vCPU hosts vary ±15% from run to run, so quote ranges.
#
#   benchmarks/side-by-side.sh [ROUNDS] [MODEL] [extra convoy bench flags...]
#   ROUNDS (3), MODEL lenet5|conv1d; CONVOY=path/to/convoy, PYTHON=path/to/python override.
# Prints one JSON object per run (convoy, then PyTorch) and a summary line per round with the
# train and inference ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}; model=${2:-lenet5}; shift $(( $# >= 2 ? 2 : $# ))
convoy=${CONVOY:-.build/release/convoy}
python=${PYTHON:-/work/torch-venv/bin/python}
[ -x "$convoy" ] || { echo "side-by-side: $convoy not built (swift build -c release)" >&2; exit 1; }
export OPENBLAS_NUM_THREADS=1
echo "# $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); load $(cut -d' ' -f1-3 /proc/loadavg)"
for round in $(seq 1 "$rounds"); do
    c=$("$convoy" bench --model "$model" --batch 64 --threads 1 --json "$@" 2>/dev/null | tail -1)
    p=$("$python" benchmarks/pytorch_lenet.py --model "$model" --batch 64 --threads 1)
    echo "$c"; echo "$p"
    "$python" - "$c" "$p" "$round" <<'PY'
import json, sys
c, p = json.loads(sys.argv[1]), json.loads(sys.argv[2])
t = c["train_samples_per_sec"] / p["train_samples_per_sec"]
i = c["infer_samples_per_sec"] / p["infer_samples_per_sec"]
print(f"# round {sys.argv[3]}: train {c['train_samples_per_sec']:.0f} / {p['train_samples_per_sec']:.0f} = {t:.2f}x, "
      f"infer {c['infer_samples_per_sec']:.0f} / {p['infer_samples_per_sec']:.0f} = {i:.2f}x")
PY
done
