#!/usr/bin/env bash
# Strangers cost a CURVE coordinator no memory: peers without keys open raw TCP connections,
# send a ZMTP 3.0 greeting asking for CURVE, then a frame header claiming 512 MiB and
# stream bytes at it (four at once, again and again while the run lasts). libzmq reads
# them with the run's ZMQ_MAXMSGSIZE (docs/PROTOCOL.md, "Admission"), so each connection is
# closed at the header. The bar: the attacked coordinator's peak memory (VmHWM) is less
# than 64 MiB above an unattacked run's, and both save the same weights.
#   scripts/admission-test.sh       prints PASS/FAIL, exit 0 only on PASS
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$ROOT/scripts/lib.sh"
find_convoy
TMP=$(mktemp -d "${TMPDIR:-/tmp}/convoy-admission.XXXXXX")
PIDS=()
cleanup() { stop_pids "${PIDS[@]}"; rm -rf "$TMP"; }
trap cleanup EXIT
TIMEOUT=240
DEADLINE=$((SECONDS + TIMEOUT))

for name in coordinator worker1 worker2; do "$CONVOY" keygen "$TMP/$name" >/dev/null; done
grep -hv '^#' "$TMP/worker1.pub" "$TMP/worker2.pub" >"$TMP/authorized"
FLAGS=(--epochs 1 --train-samples 3200 --test-samples 200 --seed 5 --step-timeout 20)

# run NAME ATTACKERS: a CURVE coordinator with 2 workers; sets HWM_KB (its peak memory)
# and SUM (the saved model's checksum).
run() {
    local name=$1 attackers=$2 port coordinator hwm=0 kb attack=() pid
    port=$(free_port)
    "$CONVOY" coordinator --bind "tcp://127.0.0.1:$port" --workers 2 "${FLAGS[@]}" \
        --curve-key "$TMP/coordinator.key" --authorized-keys "$TMP/authorized" \
        --out "$TMP/$name.convoy" >/dev/null 2>"$TMP/$name-coordinator.log" &
    coordinator=$!; PIDS+=("$coordinator")
    for _ in $(seq 200); do grep -q "listening on" "$TMP/$name-coordinator.log" && break; sleep 0.05; done
    for i in $(seq "$attackers"); do
        python3 "$ROOT/scripts/zmtp-flood.py" 127.0.0.1 "$port" 536870912 2>"$TMP/$name-attacker$i.log" &
        attack+=($!); PIDS+=($!)
    done
    # Let the attackers start before the workers, so the whole run is under attack.
    if (( attackers > 0 )); then sleep 2; fi
    for i in 1 2; do
        "$CONVOY" worker --connect "tcp://127.0.0.1:$port" --server-key "$TMP/coordinator.pub" \
            --key "$TMP/worker$i.key" --idle-timeout 60 2>"$TMP/$name-worker$i.log" &
        PIDS+=($!)
    done
    while kill -0 "$coordinator" 2>/dev/null; do
        (( SECONDS < DEADLINE )) || fail "timed out after ${TIMEOUT}s waiting for the $name coordinator"
        kb=$(awk '/^VmHWM/ { print $2 }' "/proc/$coordinator/status" 2>/dev/null || true)
        if [[ -n $kb ]] && (( kb > hwm )); then hwm=$kb; fi
        sleep 0.1
    done
    wait "$coordinator" || fail "the $name coordinator exited with $?"
    for pid in "${attack[@]}"; do
        kill -0 "$pid" 2>/dev/null || fail "attacker $pid stopped early: $(cat "$TMP/$name"-attacker*.log)"
    done
    stop_pids "${attack[@]}"
    HWM_KB=$hwm
    SUM=$(model_checksum "$TMP/$name.convoy")
}

run calm 0
calm_kb=$HWM_KB calm_sum=$SUM
# Each key is its own ZAP user id: logged when admitted, and named when its worker joins.
key1=$(grep -v '^#' "$TMP/worker1.pub")
# (Fixed strings: Z85 keys hold regex characters.)
grep -qF "as key $key1" "$TMP/calm-coordinator.log" || fail "worker 1's key was not logged"
grep -F "joined (" "$TMP/calm-coordinator.log" | grep -qF "live), key $key1" || fail "worker 1's join does not name its key"
run attacked 4
attacked_kb=$HWM_KB attacked_sum=$SUM
connections=$(cat "$TMP"/attacked-attacker*.log | awk '{ n += $1 } END { print n + 0 }')
(( connections >= 4 )) || fail "the attackers made only $connections connections"
growth=$(( (attacked_kb - calm_kb) / 1024 ))
(( attacked_kb - calm_kb < 64 * 1024 )) \
    || fail "peak memory grew by $growth MiB under attack ($calm_kb kB calm, $attacked_kb kB attacked)"
[[ $attacked_sum == "$calm_sum" ]] || fail "weights differ under attack: $attacked_sum, calm $calm_sum"
echo "PASS: admission-test: 4 keyless peers made $connections connections claiming 512 MiB frames;" \
    "peak memory $((attacked_kb / 1024)) MiB vs $((calm_kb / 1024)) MiB calm (+$growth MiB);" \
    "checksum $attacked_sum unchanged"
