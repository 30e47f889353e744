#!/usr/bin/env bash
# Hang and straggler diagnosis on a live CURVE cluster (coordinator + 2 workers on loopback):
# a worker slowed by fault injection (slow:MS) is named a straggler live in the coordinator's
# log and in the epoch's events; `convoy status` (text and --json, with an authorized key)
# names both workers; with the other worker SIGSTOPped, it says the round waits on that one,
# and so does SIGUSR1 on the coordinator's stderr; an unauthorized key and a dead endpoint get
# one error line and status 1; after SIGCONT the run finishes. SIGUSR1 to `convoy local` is passed
# on to its coordinator.
#   scripts/status-test.sh          prints PASS/FAIL, exit 0 only on PASS
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$ROOT/scripts/lib.sh"
find_convoy
TMP=$(mktemp -d "${TMPDIR:-/tmp}/convoy-status.XXXXXX")
PIDS=()
cleanup() {
    # A stopped process must run again to act on SIGTERM.
    for pid in "${PIDS[@]}"; do kill -CONT "$pid" 2>/dev/null || true; done
    stop_pids "${PIDS[@]}"
    rm -rf "$TMP"
}
trap cleanup EXIT
TIMEOUT=240
DEADLINE=$((SECONDS + TIMEOUT))

for name in coordinator worker observer intruder; do "$CONVOY" keygen "$TMP/$name" >/dev/null; done
grep -hv '^#' "$TMP/worker.pub" "$TMP/observer.pub" >"$TMP/authorized"
PORT=$(free_port)
ENDPOINT=tcp://127.0.0.1:$PORT
# A step deadline far longer than the stop below: the stopped worker is waited on, not dropped.
"$CONVOY" coordinator --bind "$ENDPOINT" --workers 2 --epochs 1 --train-samples 6400 --test-samples 500 \
    --step-timeout 60 --join-timeout 60 --json --out "$TMP/model.convoy" \
    --curve-key "$TMP/coordinator.key" --authorized-keys "$TMP/authorized" >"$TMP/epochs.jsonl" 2>"$TMP/coordinator.log" &
coordinator=$!; PIDS+=("$coordinator")
KEYS=(--server-key "$TMP/coordinator.pub" --key "$TMP/worker.key")
"$CONVOY" worker --connect "$ENDPOINT" "${KEYS[@]}" --idle-timeout 120 2>"$TMP/fast.log" &
fast=$!; PIDS+=("$fast")
CONVOY_ALLOW_FAULT_INJECTION=1 "$CONVOY" worker --connect "$ENDPOINT" "${KEYS[@]}" --idle-timeout 120 \
    --inject-fault slow:60 2>"$TMP/slow.log" &
slow=$!; PIDS+=("$slow")

# 1. The slow worker is named live, by number, host and pid.
until grep -q "is a straggler" "$TMP/coordinator.log"; do
    (( SECONDS < DEADLINE )) || fail "status-test: no straggler named"
    kill -0 "$coordinator" 2>/dev/null || fail "status-test: the coordinator exited early"
    sleep 0.2
done
line=$(grep -m1 "is a straggler" "$TMP/coordinator.log")
[[ $line =~ coordinator:\ w[0-9]+@[^:]+:$slow\ is\ a\ straggler:\ slice\ time\ [0-9.]+\ ms,\ median\ of\ others\ [0-9.]+\ ms\ \([0-9.]+×\) ]] \
    || fail "status-test: the straggler line does not name the slow worker (pid $slow): $line"

# 2. convoy status, as text and JSON, with a key of its own that the coordinator authorizes.
ASK=("$CONVOY" status "$ENDPOINT" --server-key "$TMP/coordinator.pub" --key "$TMP/observer.key" --timeout 10)
"${ASK[@]}" >"$TMP/status.txt" 2>"$TMP/status.log" || fail "status-test: convoy status failed"
grep -q ":$fast " "$TMP/status.txt" && grep -q ":$slow " "$TMP/status.txt" \
    || fail "status-test: the status does not name both workers: $(cat "$TMP/status.txt")"
grep -q "2 live worker(s) of 2 known" "$TMP/status.txt" || fail "status-test: not 2 live workers: $(cat "$TMP/status.txt")"
grep -q "joined (3 live)" "$TMP/coordinator.log" && fail "status-test: convoy status was admitted as a worker"

# 3. The fast worker stopped: the round waits on it, and says so (JSON, then SIGUSR1).
kill -STOP "$fast"
sleep 2
"${ASK[@]}" --json >"$TMP/status.json" 2>>"$TMP/status.log" || fail "status-test: convoy status --json failed"
python3 - "$TMP/status.json" "$fast" "$slow" <<'EOF' || fail "status-test: the JSON status is wrong: $(cat "$TMP/status.json")"
import json, sys
status = json.load(open(sys.argv[1]))
fast, slow = int(sys.argv[2]), int(sys.argv[3])
workers = {w["pid"]: w for w in status["workers"]}
assert set(workers) == {fast, slow}, workers
assert status["phase"] == "training", status["phase"]
assert workers[fast]["state"] == "computing" and workers[fast]["seconds"] >= 1.5, workers[fast]
assert [n.endswith(f":{fast}") for n in status["waiting_on"]] == [True], status["waiting_on"]
assert status["waiting_seconds"] >= 1.5 and workers[slow]["state"] == "idle", status
EOF
kill -USR1 "$coordinator"
until grep -q "coordinator: status: waiting .* on w[0-9]*@[^:]*:$fast\$" "$TMP/coordinator.log"; do
    (( SECONDS < DEADLINE )) || fail "status-test: SIGUSR1 printed no status naming the stopped worker"
    sleep 0.2
done

# 4. One line and status 1 for a key the coordinator does not know, and for nobody there.
rc=0; "$CONVOY" status "$ENDPOINT" --server-key "$TMP/coordinator.pub" --key "$TMP/intruder.key" --timeout 2 \
    >/dev/null 2>"$TMP/intruder.log" || rc=$?
[[ $rc == 1 && $(wc -l <"$TMP/intruder.log") == 1 ]] && grep -q "no coordinator answered" "$TMP/intruder.log" \
    || fail "status-test: an unauthorized key: rc $rc, $(cat "$TMP/intruder.log")"
rc=0; "$CONVOY" status "tcp://127.0.0.1:$(free_port)" --timeout 1 >/dev/null 2>"$TMP/nobody.log" || rc=$?
[[ $rc == 1 && $(wc -l <"$TMP/nobody.log") == 1 ]] || fail "status-test: no coordinator: rc $rc, $(cat "$TMP/nobody.log")"

# 5. Continued, the run finishes, and its epoch records the straggler.
kill -CONT "$fast"
wait_pid "$coordinator" "the coordinator"
[[ $WAIT_RC == 0 ]] || fail "status-test: the coordinator exited with $WAIT_RC"
python3 -c '
import json, sys
events = [e for line in open(sys.argv[1]) for e in json.loads(line).get("events", [])]
assert any(e["event"] == "straggler" and "median of others" in e["reason"] for e in events), events
' "$TMP/epochs.jsonl" || fail "status-test: no straggler event in the epoch JSON: $(cat "$TMP/epochs.jsonl")"

# 6. convoy local passes SIGUSR1 on to its coordinator; the report comes out on local's stderr.
"$CONVOY" local --workers 2 --epochs 1 --train-samples 30000 --test-samples 500 --out "$TMP/local.convoy" \
    >/dev/null 2>"$TMP/local.log" &
local_pid=$!; PIDS+=("$local_pid")
until grep -q "joined (2 live)" "$TMP/local.log"; do
    (( SECONDS < DEADLINE )) || fail "status-test: convoy local's workers did not join"
    sleep 0.1
done
kill -USR1 "$local_pid"
until grep -q "coordinator: status: 2 live worker(s) of 2 known" "$TMP/local.log"; do
    (( SECONDS < DEADLINE )) && kill -0 "$local_pid" 2>/dev/null || fail "status-test: SIGUSR1 to convoy local printed no status"
    sleep 0.1
done
# Stopped like any preempted run (status 75), so no child of it outlives the test.
kill -TERM "$local_pid"
wait_pid "$local_pid" "convoy local"
[[ $WAIT_RC == 75 ]] || fail "status-test: convoy local stopped with $WAIT_RC, not 75"
echo "PASS: status-test: ${line#coordinator: }; convoy status named both workers and the stopped one waited on; SIGUSR1 too (coordinator and local)"
