#!/usr/bin/env bash
# Fuzzes convoy's decoders of hostile bytes: the wire protocol (`wire`), checkpoints
# (`checkpoint`) and model files (`model`). With libFuzzer (coverage-guided, address
# sanitizer), from a corpus of valid inputs: every message type, and a real checkpoint and
# model file of a small run. Where the toolchain has no libFuzzer, or with FUZZ_MODE=mutate,
# the plain ConvoyFuzz binary checks seeded crafted mutations of the same seeds instead
# (`ConvoyFuzz --mutate`), for the same time. Each target gets SECONDS.
#   scripts/fuzz.sh [SECONDS] [TARGET...]     (default 60; all three targets)
#   FUZZ_MODE=auto|libfuzzer|mutate           (default auto: libFuzzer if it builds)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
SECONDS_TO_RUN=${1:-60}
shift || true
TARGETS=("$@")
[[ ${#TARGETS[@]} -gt 0 ]] || TARGETS=(wire checkpoint model)
MODE=${FUZZ_MODE:-auto}
source "$ROOT/scripts/lib.sh"
find_convoy
PLAIN=$(dirname "$CONVOY")/ConvoyFuzz
[[ -x $PLAIN ]] || (swift build -c release --product ConvoyFuzz >&2)
TMP=$(mktemp -d "${TMPDIR:-/tmp}/convoy-fuzz.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

if [[ $MODE != mutate ]]; then
    if swift build -c release --product ConvoyFuzz --scratch-path .build-fuzz \
        -Xswiftc -sanitize=fuzzer,address -Xswiftc -Xclang-linker -Xswiftc -fuse-ld=lld -Xswiftc -DFUZZING \
        >"$TMP/build.log" 2>&1; then
        MODE=libfuzzer
    elif [[ $MODE == libfuzzer ]]; then
        tail -n 20 "$TMP/build.log" >&2
        echo "FAIL: the libFuzzer build failed"
        exit 1
    else
        echo "fuzz: libFuzzer is not available here ($(grep -m1 -i error "$TMP/build.log" || echo 'build failed'));" \
            "running the mutation mode instead" >&2
        MODE=mutate
    fi
fi

# Seeds: one valid frame of each message type, and a real checkpoint and model file.
mkdir -p "$TMP/wire" "$TMP/checkpoint" "$TMP/model"
python3 - "$TMP/wire" <<'PY'
import struct, sys, os
out = sys.argv[1]
def frame(mtype, payload, run=7, step=3, worker=1):
    return b"CNVY" + struct.pack("<HHQQII", 4, mtype, run, step, worker, len(payload)) + b"\0" * 8 + payload
seeds = {
    "hello": frame(1, struct.pack("<H", 1) + b"h" + struct.pack("<iI", 1, 1), run=0),
    # The welcome of Tests/ConvoyClusterTests/WireGoldenTests.swift: every layer kind.
    "welcome": frame(2, bytes.fromhex(
        "03000000 01 01 08000000 24000000 0100 67 03 01000000 06000000 06000000 01 000000000000e03f 0800"
        "03 02000000 03000000 02000000 01000000 02000000 01 01000000 01 00000000 01 08"
        "04 02000000 02000000 02000000 02000000 05 01000000 01000000 01000000 01000000 09 06 07 03000000 0a")),
    "step": frame(3, struct.pack("<IIIII", 0, 2, 2, 4, 3) + struct.pack("<3f", 1, 2, 3) + bytes(8) + bytes([1, 2])),
    "result-fixed": frame(4, struct.pack("<IIIddHIII", 0, 2, 1, 0.5, 0.01, 0, 0, 2, 2) + struct.pack("<2q", 5, -5)),
    "result-float": frame(4, struct.pack("<IIIddHIII", 0, 2, 1, 0.5, 0.01, 0, 4, 1, 2) + struct.pack("<2f", 1, -1)),
    "result-eval": frame(4, struct.pack("<IIIddHIII", 0, 9, 3, 2.5, 0.01, 0, 0, 0, 0)),
    # An evaluation result with a timeline appendix: forward 0..4000 ns, sent at +5000 ns.
    "result-spans": frame(4, struct.pack("<IIIddHBBqqBqqIII", 0, 9, 3, 2.5, 0.01, 35, 1, 1, 1000, 6000, 1, 0, 4000,
                                         0, 0, 0)),
    "shutdown": frame(5, b""),
    "refuse": frame(6, b"\x02no"),
    "stop": frame(7, b"go"),
    "status-request": frame(8, b"", run=0),
    # The status of Tests/ConvoyClusterTests/StatusTests.swift: a computing and a dropped worker.
    "status": frame(9, bytes.fromhex(
        "02 0500000000000000 02000000 03000000 0000000000000040 000000000000e03f 000000000000f03f 00000000 0200"
        "01000000 0100 68 2a000000 01 01 0500000000000000 000000000000e03f 0000000000000040"
        "02000000 0000 07000000 03 00 0000000000000000 000000000000f03f 000000000000f0bf"), worker=0),
}
for name, data in seeds.items():
    open(os.path.join(out, name), "wb").write(data)
PY
# simplecnn keeps the files small (libFuzzer's -max_len); 2 epochs of 4 steps, Adam (the
# largest optimizer state), a checkpoint mid-way through the second epoch.
"$CONVOY" train --model simplecnn --epochs 2 --batch 16 --train-samples 64 --test-samples 16 --optimizer adam \
    --checkpoint-dir "$TMP/run" --checkpoint-every 2 --keep-checkpoints 10 --out "$TMP/model/simplecnn.convoy" \
    >/dev/null 2>"$TMP/train.log" || { cat "$TMP/train.log" >&2; echo "FAIL: the seed run failed"; exit 1; }
cp "$TMP/run/checkpoint-0000000006.convoy-ckpt" "$TMP/checkpoint/adam-step6"

status=0
for target in "${TARGETS[@]}"; do
    seeds=("$TMP/$target"/*)
    echo "=== fuzz $target ($MODE, ${SECONDS_TO_RUN}s)" >&2
    if [[ $MODE == libfuzzer ]]; then
        for f in "${seeds[@]}"; do
            CONVOY_FUZZ_TARGET=$target .build-fuzz/release/ConvoyFuzz -runs=1 "$f" >/dev/null 2>&1 \
                || { echo "FAIL: seed $f fails" >&2; exit 1; }
        done
        mkdir -p .build-fuzz/artifacts
        max_len=$(( $(stat -c %s "${seeds[0]}") * 2 + 4096 ))
        CONVOY_FUZZ_TARGET=$target .build-fuzz/release/ConvoyFuzz "$TMP/$target" \
            -max_total_time="$SECONDS_TO_RUN" -max_len="$max_len" -print_final_stats=1 \
            -artifact_prefix=".build-fuzz/artifacts/$target-" >"$TMP/$target.log" 2>&1 || status=1
        tail -n 12 "$TMP/$target.log"
    else
        # Seeded batches until the time is up; a crash or an accepted invalid file stops it.
        deadline=$(( SECONDS + SECONDS_TO_RUN )) seed=1 runs=0
        while (( SECONDS < deadline )); do
            for f in "${seeds[@]}"; do
                if [[ $target == wire ]]; then
                    "$PLAIN" --target wire "$f" >/dev/null || status=1
                else
                    "$PLAIN" --mutate "$target" --count 400 --seed "$seed" "$f" >"$TMP/$target.log" 2>&1 || {
                        cat "$TMP/$target.log"; status=1; break 2; }
                    runs=$(( runs + $(grep -o '^[0-9]* mutations' "$TMP/$target.log" | grep -o '^[0-9]*') ))
                fi
            done
            [[ $target == wire ]] && { echo "wire: seeds replayed (the wire decoder's random and mutated frames run" \
                "in ProtocolTests)"; break; }
            seed=$(( seed + 1 ))
        done
        [[ $target == wire ]] || echo "$target: $runs crafted files checked, none crashed or was wrongly accepted"
    fi
done
(( status == 0 )) || { echo "FAIL: fuzzing found a problem (see above; libFuzzer keeps inputs in .build-fuzz/artifacts)"; exit 1; }
echo "PASS: fuzz ${TARGETS[*]} ($MODE, ${SECONDS_TO_RUN}s each)"
