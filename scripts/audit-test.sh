#!/usr/bin/env bash
# Audit mode catches bad hardware: a coordinator with --audit 1 and 3 workers, one of which
# corrupts one value of one slice on purpose (--inject-fault step:N). The faulty worker is
# named and dropped, and the saved weights equal an undisturbed single-process run's, as do
# those of `convoy local --workers 2 --audit 1`. Also:
# the flag is refused without CONVOY_ALLOW_FAULT_INJECTION=1, and --audit without the
# deterministic mode or outside [0, 1] is refused with one line.
#   scripts/audit-test.sh          prints PASS/FAIL, exit 0 only on PASS
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$ROOT/scripts/lib.sh"
find_convoy
TMP=$(mktemp -d "${TMPDIR:-/tmp}/convoy-audit.XXXXXX")
PIDS=()
cleanup() { stop_pids "${PIDS[@]}"; rm -rf "$TMP"; }
trap cleanup EXIT

# refused "WHAT" "EXPECTED TEXT" COMMAND...: exits 1 with one line on stderr containing the text.
refused() {
    local what=$1 text=$2 status=0; shift 2
    timeout 20 "$@" >/dev/null 2>"$TMP/refused.err" || status=$?
    [[ $status -eq 1 ]] || fail "audit-test: $what: exit $status, expected 1"
    [[ $(wc -l <"$TMP/refused.err") -eq 1 ]] || fail "audit-test: $what: not one line: $(cat "$TMP/refused.err")"
    grep -qF -- "$text" "$TMP/refused.err" || fail "audit-test: $what: $(cat "$TMP/refused.err")"
}
refused "--inject-fault without the variable" "set CONVOY_ALLOW_FAULT_INJECTION=1" \
    env -u CONVOY_ALLOW_FAULT_INJECTION "$CONVOY" worker --connect tcp://127.0.0.1:9 --inject-fault step:3
refused "--inject-fault with a bad spec" "use step:N" \
    env CONVOY_ALLOW_FAULT_INJECTION=1 "$CONVOY" worker --connect tcp://127.0.0.1:9 --inject-fault sometimes
refused "--audit with --no-deterministic" "--audit needs --deterministic" \
    "$CONVOY" coordinator --workers 2 --audit 0.5 --no-deterministic
refused "--audit 1.5" "--audit must be in [0, 1]" "$CONVOY" local --workers 2 --audit 1.5

FLAGS=(--epochs 1 --train-samples 3200 --test-samples 500 --seed 11)
"$CONVOY" train "${FLAGS[@]}" --out "$TMP/reference.convoy" --json >/dev/null 2>"$TMP/train.log" \
    || fail "audit-test: reference training failed"
reference=$(model_checksum "$TMP/reference.convoy")

PORT=$(free_port)
ENDPOINT=tcp://127.0.0.1:$PORT
"$CONVOY" coordinator --bind "$ENDPOINT" --workers 3 --audit 1 "${FLAGS[@]}" --out "$TMP/audited.convoy" \
    >/dev/null 2>"$TMP/coordinator.log" &
coordinator=$!; PIDS+=("$coordinator")
for i in 1 2 3; do
    if [[ $i == 2 ]]; then
        CONVOY_ALLOW_FAULT_INJECTION=1 "$CONVOY" worker --connect "$ENDPOINT" --idle-timeout 60 \
            --inject-fault step:20 2>"$TMP/worker$i.log" &
        faulty=$!
    else
        "$CONVOY" worker --connect "$ENDPOINT" --idle-timeout 60 2>"$TMP/worker$i.log" &
    fi
    PIDS+=($!)
done
timeout 180 tail --pid="$coordinator" -f /dev/null || fail "audit-test: the coordinator did not finish in 180 s"
wait "$coordinator" || fail "audit-test: the coordinator exited with $?"
grep -q "injected a fault" "$TMP/worker2.log" || fail "audit-test: the faulty worker injected nothing"
drop=$(grep -o "dropped w[0-9]*@[^ ]*:$faulty: it computed slice [0-9]* of step [0-9]* wrong (audit: .*returned another result)" \
    "$TMP/coordinator.log") || fail "audit-test: the faulty worker (pid $faulty) was not named and dropped"
if grep "dropped" "$TMP/coordinator.log" | grep -v "dropped w[0-9]*@[^ ]*:$faulty: "; then fail "audit-test: a healthy worker was dropped"; fi
grep -q "audit: [1-9][0-9]* slice(s) checked on a second worker this epoch, 1 worker(s) outvoted" \
    "$TMP/coordinator.log" || fail "audit-test: no epoch line with the audit's counts"
audited=$(model_checksum "$TMP/audited.convoy")
[[ $audited == "$reference" ]] || fail "audit-test: weights differ: audited $audited, undisturbed $reference"

# convoy local passes --audit on: two healthy workers, every slice checked, the same weights.
timeout 180 "$CONVOY" local --workers 2 --audit 1 "${FLAGS[@]}" --out "$TMP/local.convoy" >/dev/null \
    2>"$TMP/local.log" || fail "audit-test: convoy local --audit 1 failed"
grep -q "audit: [1-9][0-9]* slice(s) checked on a second worker this epoch, 0 worker(s) outvoted" "$TMP/local.log" \
    || fail "audit-test: convoy local --audit 1 checked nothing"
local_sum=$(model_checksum "$TMP/local.convoy")
[[ $local_sum == "$reference" ]] || fail "audit-test: local --audit 1 weights $local_sum, undisturbed $reference"
echo "PASS: audit-test: $drop; checksum $audited equals the undisturbed run (and local --workers 2 --audit 1's)"
