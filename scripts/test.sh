#!/usr/bin/env bash
# Every test convoy has: the Swift test suite (engine, protocol, coordinator, end-to-end
# runs of the binary), the local multi-process cluster, the multi-host cluster in network
# namespaces (which skips itself where namespaces cannot be made), a coordinator killed
# mid-run and resumed from its checkpoint, workers killed and joining mid-run, and every
# numeric flag of every command at its edges.
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

echo "tests: $passed passed, $failed failed, $skipped skipped"
[[ $failed -eq 0 ]]
