#!/usr/bin/env bash
# Every test convoy has: the Swift test suite (engine, protocol, coordinator, end-to-end
# runs of the binary), the local multi-process cluster, the multi-host cluster in network
# namespaces (which skips itself where namespaces cannot be made), a coordinator killed
# mid-run and resumed from its checkpoint (and preempted with SIGTERM), workers killed and
# joining mid-run, the JSON logs of every process of a run and errors that name their
# process, all of those faults in one run (scripts/chaos.sh), another Unix user
# attacking `convoy local` (which skips itself where no second user can be made), the
# exports checked by NumPy and onnxruntime, TensorBoard event files read by tensorboard, the
# HTML run report in headless Chromium, the live /metrics endpoint scraped mid-run and
# checked by promtool, audit mode catching a worker that corrupts a slice on purpose,
# crafted checkpoints and model files through the binary, the decoders' fuzzers (bounded),
# every numeric flag of every command at its edges, training through sbatch on a one-node
# Slurm (which skips itself where the daemons cannot start), and the Kubernetes manifests'
# wiring.
#   scripts/test.sh
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

passed=0 failed=0 skipped=0
stage() {   # stage NAME COMMAND...: runs a stage, counts it, keeps going on failure
    local name=$1; shift
    echo "=== $name" >&2
    local log; log=$(mktemp)
    "$@" 2>&1 | tee "$log"
    local status=${PIPESTATUS[0]}
    if [[ $status -ne 0 ]]; then
        failed=$((failed + 1)); echo "=== $name: FAILED (exit $status)" >&2
    elif grep -q '^SKIP' "$log"; then
        skipped=$((skipped + 1)); echo "=== $name: skipped" >&2
    else
        passed=$((passed + 1)); echo "=== $name: ok" >&2
    fi
    rm -f "$log"
}

scripts/setup.sh || { echo "setup failed"; echo "tests: 0 passed, 1 failed"; exit 1; }
export CONVOY="$PWD/.build/release/convoy"

# Release mode with testing enabled: the engine's checks train real networks, which a
# debug build runs ~20x slower.
stage "style (format, file and line lengths, SPEC references)" scripts/lint.sh
stage "swift test" swift test -c release -Xswiftc -enable-testing
stage "local cluster (2 workers)" scripts/local-cluster.sh 2
stage "every numeric flag at its edges (a line or a normal run, never a signal or a hang)" scripts/flag-edges-test.sh
stage "multi-host cluster in network namespaces (2 workers)" scripts/netns-cluster.sh 2
stage "convoy train killed and resumed from its checkpoint" scripts/train-resume-test.sh
stage "coordinator killed and resumed from its checkpoint" scripts/resume-test.sh
stage "a worker killed and another joining mid-run" scripts/fault-test.sh
stage "logs: --log-format json from local, its coordinator and workers; errors name their process" scripts/log-format-test.sh
stage "chaos: workers killed, stopped and joining, an intruder, the coordinator preempted and killed, one run" scripts/chaos.sh
stage "Slurm: sbatch trains LeNet-5 on a one-node Slurm (coordinator + 2 workers, --from-env); preempted and requeued" scripts/slurm-test.sh
stage "Kubernetes manifests: endpoint, keys, ports, resources and flags wired together" scripts/k8s-manifest-test.sh
stage "export to .npz and ONNX, checked by NumPy and onnxruntime; predict on image files" scripts/export-test.sh
stage "another Unix user cannot join or disturb convoy local" scripts/local-private-test.sh
stage "--tensorboard event files, read back by the tensorboard package" scripts/tensorboard-test.sh
stage "live metrics: a mid-run scrape of convoy local --metrics-port passes promtool, 2 workers' series" scripts/metrics-test.sh
stage "run report: HTML from a local run loads in headless Chromium with its charts, no console output" scripts/report-test.sh
stage "audit mode: a worker corrupting a slice is named and dropped" scripts/audit-test.sh
stage "hang and straggler diagnosis: a slow worker named live, convoy status and SIGUSR1 name a stopped one" scripts/status-test.sh
stage "strangers streaming huge frames cost a CURVE coordinator no memory" scripts/admission-test.sh
stage "crafted checkpoints and model files through the binary" env BUDGET=300 scripts/file-mutation-test.sh 40
stage "fuzz: wire, checkpoint, model (20 s each)" scripts/fuzz.sh 20

echo "tests: $passed passed, $failed failed, $skipped skipped"
[[ $failed -eq 0 ]]
