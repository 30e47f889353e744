#!/usr/bin/env bash
# Structured logs end to end (docs/OBSERVABILITY.md, "Logs"):
# 1. `convoy local --workers 2 --log-format json`: every stderr line of every process (local,
#    its coordinator, both workers) is one JSON object with time, level, component, process
#    and message; each worker names itself w<id>@host:pid as the coordinator names it.
# 2. Errors name their process: a worker given a missing --server-key says
#    `worker@host:pid: error: …` (text) or the same in JSON; with a coordinator killed under
#    them, a joined worker's error names it `w<id>@host:pid`, and the coordinator names a
#    killed worker `w<id>@host:pid` in its drop line.
#   scripts/log-format-test.sh          prints PASS/FAIL, exit 0 only on PASS
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$ROOT/scripts/lib.sh"
find_convoy
TMP=$(mktemp -d "${TMPDIR:-/tmp}/convoy-logs.XXXXXX")
PIDS=()
cleanup() { stop_pids "${PIDS[@]}"; rm -rf "$TMP"; }
trap cleanup EXIT

# check_json FILE [EXPECT]: every line of FILE is a log object; prints "PROCESS\tWORKER\tLEVEL\tMESSAGE" per line.
check_json() {
    python3 - "$1" <<'PY'
import json, re, sys
path = sys.argv[1]
lines = open(path, encoding="utf-8").read().split("\n")
if lines and lines[-1] == "":
    lines.pop()
if not lines:
    sys.exit(f"{path}: no log lines")
for number, line in enumerate(lines, 1):
    try:
        obj = json.loads(line)
    except ValueError as error:
        sys.exit(f"{path}:{number}: not JSON ({error}): {line[:200]}")
    if not isinstance(obj, dict) or list(obj)[:4] != ["time", "level", "component", "process"] or list(obj)[-1] != "message":
        sys.exit(f"{path}:{number}: not the fields in order: {line[:200]}")
    if not re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", obj["time"]):
        sys.exit(f"{path}:{number}: time {obj['time']!r} is not RFC 3339 UTC with ms")
    if obj["level"] not in {"trace", "debug", "info", "notice", "warning", "error", "critical"}:
        sys.exit(f"{path}:{number}: level {obj['level']!r}")
    if not re.fullmatch(r"(coordinator|worker|local|w\d+)@[^:\s]+:\d+", obj["process"]):
        sys.exit(f"{path}:{number}: process {obj['process']!r}")
    if set(obj) - {"time", "level", "component", "process", "worker", "message"}:
        sys.exit(f"{path}:{number}: unexpected fields {sorted(obj)}")
    if "worker" in obj and not isinstance(obj["worker"], int):
        sys.exit(f"{path}:{number}: worker {obj['worker']!r} is not a number")
    if not isinstance(obj["message"], str) or not obj["message"]:
        sys.exit(f"{path}:{number}: no message")
    print(f"{obj['process']}\t{obj.get('worker', '')}\t{obj['level']}\t{obj['message']}")
PY
}

FLAGS=(--epochs 1 --train-samples 1024 --test-samples 200 --seed 3)

# 1. convoy local: its stderr carries its coordinator's lines and its workers' (they inherit it).
timeout 300 "$CONVOY" local --workers 2 --log-format json "${FLAGS[@]}" --out "$TMP/local.convoy" \
    >"$TMP/local.out" 2>"$TMP/local.log" || fail "convoy local --log-format json failed"
check_json "$TMP/local.log" >"$TMP/local.tsv" || fail "convoy local: $(check_json "$TMP/local.log" 2>&1 | tail -n 1)"
# Each numbered worker process said it joined; the coordinator named the same process when it joined.
workers=$(grep -P '^w\d+@[^\t]+\t\d+\tinfo\tjoined run ' "$TMP/local.tsv" | cut -f1 | sort -u)
[[ $(wc -l <<<"$workers") -eq 2 ]] || fail "expected 2 numbered worker processes, got: $workers"
for w in $workers; do
    id=${w%%@*}; id=${id#w}
    grep -qP "^coordinator@[^\t]+\t$id\tinfo\t\Q$w\E joined \(" "$TMP/local.tsv" \
        || fail "the coordinator's join line does not name $w with worker $id"
done
grep -qP '^coordinator@[^\t]+\t\tinfo\tlistening on (ipc|shm)://' "$TMP/local.tsv" || fail "no coordinator listening line"

# 2a. A worker whose --server-key is missing: one error line naming it, in each format.
PORT=$(free_port)
ENDPOINT=tcp://127.0.0.1:$PORT
for format in text json; do
    rc=0
    "$CONVOY" worker --connect "$ENDPOINT" --server-key "$TMP/none.pub" --key "$TMP/none.key" --log-format $format \
        2>"$TMP/badkey-$format.log" & pid=$!
    wait $pid || rc=$?
    (( rc == 1 )) || fail "worker with a missing --server-key exited $rc, expected 1"
    [[ $(wc -l <"$TMP/badkey-$format.log") -eq 1 ]] || fail "worker with a missing --server-key: not one line"
    if [[ $format == text ]]; then
        grep -qE "^worker@[^: ]+:$pid: error: .*--server-key" "$TMP/badkey-text.log" \
            || fail "text error does not name worker@host:$pid"
    else
        check_json "$TMP/badkey-json.log" | grep -qP "^worker@[^:\s]+:$pid\t\terror\t.*--server-key" \
            || fail "JSON error does not name worker@host:$pid: $(cat "$TMP/badkey-json.log")"
    fi
done

# 2b. Workers killed and a coordinator killed mid-run.
"$CONVOY" coordinator --bind "$ENDPOINT" --workers 2 --epochs 5 --step-timeout 3 --seed 3 --out "$TMP/killed.convoy" \
    >/dev/null 2>"$TMP/coordinator.log" & coordinator=$!; PIDS+=("$coordinator")
for i in 1 2; do
    "$CONVOY" worker --connect "$ENDPOINT" --idle-timeout 8 --log-format json 2>"$TMP/worker$i.log" &
    PIDS+=($!); eval "worker$i=$!"
done
for _ in $(seq 600); do grep -q "joined (2 live)" "$TMP/coordinator.log" && break; sleep 0.1; done
grep -q "joined (2 live)" "$TMP/coordinator.log" || fail "the workers did not join"
sleep 1
{ kill -9 "$worker1"; wait "$worker1"; } 2>/dev/null || true  # quiet: no "Killed" notice from bash
for _ in $(seq 600); do grep -q "dropped w[0-9]*@[^ ]*:$worker1: " "$TMP/coordinator.log" && break; sleep 0.1; done
grep -qE "^coordinator: dropped w[0-9]+@[^ ]+:$worker1: it " "$TMP/coordinator.log" \
    || fail "the coordinator did not name the killed worker w<id>@host:$worker1"
{ kill -9 "$coordinator"; wait "$coordinator"; } 2>/dev/null || true
rc=0; timeout 60 tail --pid="$worker2" -f /dev/null || fail "worker 2 did not give up on a silent coordinator"
wait "$worker2" || rc=$?
(( rc == 1 )) || fail "worker 2 exited $rc after its coordinator was killed, expected 1"
check_json "$TMP/worker2.log" >"$TMP/worker2.tsv" || fail "worker 2: $(check_json "$TMP/worker2.log" 2>&1 | tail -n 1)"
error=$(grep -P '\terror\t' "$TMP/worker2.tsv") || fail "worker 2 logged no error"
name=$(cut -f1 <<<"$error")
[[ $name =~ ^w([0-9]+)@[^:]+:$worker2$ ]] || fail "worker 2's error names $name, not w<id>@host:$worker2"
[[ $(cut -f2 <<<"$error") == "${BASH_REMATCH[1]}" ]] || fail "worker 2's error has no worker ${BASH_REMATCH[1]}"
grep -qF "$name joined (" "$TMP/coordinator.log" || fail "the coordinator never named worker 2 $name"
grep -q "silent" <<<"$error" || fail "worker 2's error does not say why: $error"
echo "PASS: log-format-test: JSON lines from local, its coordinator and 2 workers; errors name" \
    "worker@host:pid, $(cut -f1,4 <<<"$error" | tr '\t' ' ')"
