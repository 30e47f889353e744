#!/usr/bin/env bash
# Fuzzes the wire decoder with libFuzzer (coverage-guided), starting from a corpus of valid
# frames of every message type.
#   scripts/fuzz.sh [SECONDS]      (default 60)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
SECONDS_TO_RUN=${1:-60}
swift build -c release --product ConvoyFuzz --scratch-path .build-fuzz \
    -Xswiftc -sanitize=fuzzer,address -Xswiftc -Xclang-linker -Xswiftc -fuse-ld=lld -Xswiftc -DFUZZING >&2
CORPUS=$(mktemp -d "${TMPDIR:-/tmp}/convoy-fuzz-corpus.XXXXXX")
trap 'rm -rf "$CORPUS"' EXIT
# Seeds: one valid frame of each message type, written by the test helper below.
python3 - "$CORPUS" <<'PY'
import struct, sys, os
out = sys.argv[1]
def frame(mtype, payload, run=7, step=3, worker=1):
    return b"CNVY" + struct.pack("<HHQQII", 2, mtype, run, step, worker, len(payload)) + b"\0" * 8 + payload
seeds = {
    "hello": frame(1, struct.pack("<H", 1) + b"h" + struct.pack("<iI", 1, 1), run=0),
    # The welcome of Tests/ConvoyClusterTests/WireGoldenTests.swift: every layer kind.
    "welcome": frame(2, bytes.fromhex(
        "03000000 01 08000000 24000000 0100 67 03 01000000 06000000 06000000 01 000000000000e03f 0800"
        "03 02000000 03000000 02000000 01000000 02000000 01 01000000 01 00000000 01 08"
        "04 02000000 02000000 02000000 02000000 05 01000000 01000000 01000000 01000000 09 06 07 03000000 0a")),
    "step": frame(3, struct.pack("<IIIII", 0, 2, 2, 4, 3) + struct.pack("<3f", 1, 2, 3) + bytes(8) + bytes([1, 2])),
    "result-fixed": frame(4, struct.pack("<IIIddIII", 0, 2, 1, 0.5, 0.01, 0, 2, 2) + struct.pack("<2q", 5, -5)),
    "result-float": frame(4, struct.pack("<IIIddIII", 0, 2, 1, 0.5, 0.01, 4, 1, 2) + struct.pack("<2f", 1, -1)),
    "result-eval": frame(4, struct.pack("<IIIddIII", 0, 9, 3, 2.5, 0.01, 0, 0, 0)),
    "shutdown": frame(5, b""),
    "refuse": frame(6, b"no"),
}
for name, data in seeds.items():
    open(os.path.join(out, name), "wb").write(data)
PY
for f in "$CORPUS"/*; do .build-fuzz/release/ConvoyFuzz -runs=1 "$f" >/dev/null 2>&1 || { echo "seed $f fails" >&2; exit 1; }; done
mkdir -p .build-fuzz/artifacts
.build-fuzz/release/ConvoyFuzz "$CORPUS" -max_total_time="$SECONDS_TO_RUN" -max_len=4096 -print_final_stats=1 \
    -artifact_prefix=.build-fuzz/artifacts/ 2>&1 | tail -n 25
