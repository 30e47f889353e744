#!/usr/bin/env bash
# Installs the Debian packages convoy needs (if missing) and builds the release binary.
#   scripts/setup.sh            # then: .build/release/convoy --help
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# libdnnl2 (oneDNN) is loaded at run time where OpenBLAS's CPU table is older than the CPU
# (e.g. Intel Emerald Rapids gets OpenBLAS 0.3.21's SSE3 kernel): see docs/DESIGN.md, Kernels.
packages=(libzmq3-dev libopenblas-dev pkg-config zlib1g-dev iproute2 libdnnl2)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    echo "setup: installing ${missing[*]}" >&2
    sudo_cmd=()
    [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
    "${sudo_cmd[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
fi

command -v swift >/dev/null || { echo "setup: swift is not on PATH (Swift 6.0 or newer is needed)" >&2; exit 1; }
echo "setup: building release" >&2
swift build -c release 2>&1 | grep -vE '^\[[0-9]+/[0-9]+\]' >&2 || true
test -x .build/release/convoy || { echo "setup: build failed" >&2; exit 1; }
echo "setup: ready: $(pwd)/.build/release/convoy" >&2
