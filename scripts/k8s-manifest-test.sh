#!/usr/bin/env bash
# Runs scripts/k8s-manifest-test.py on deploy/k8s/ with the built convoy. PyYAML is a
# test-only tool: the python3 on PATH if it has it, else Debian's python3-yaml (installed here
# with apt-get when missing, never by scripts/setup.sh) with /usr/bin/python3.
#   scripts/k8s-manifest-test.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/lib.sh"
find_convoy
python=python3
if ! python3 -c 'import yaml' 2>/dev/null; then
    python=/usr/bin/python3
    if ! $python -c 'import yaml' 2>/dev/null; then
        command -v apt-get >/dev/null || { echo "FAIL: PyYAML is missing and there is no apt-get"; exit 1; }
        echo "installing python3-yaml (test-only)..." >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-yaml >/dev/null 2>&1 \
            || { apt-get update -qq >/dev/null 2>&1 \
                && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-yaml >/dev/null 2>&1; } \
            || { echo "FAIL: apt-get could not install python3-yaml"; exit 1; }
    fi
fi
exec "$python" "$ROOT/scripts/k8s-manifest-test.py" "$ROOT/deploy/k8s" "$CONVOY"
