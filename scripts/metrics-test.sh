#!/usr/bin/env bash
# Live Prometheus metrics (issue 11): `convoy local --workers 2 --metrics-port 0` is scraped
# with curl while it trains; the scrape passes `promtool check metrics` (Debian's
# `prometheus` package, installed here when missing; SKIP where it cannot be) and holds the
# key series with sane values (steps > 0, 2 live workers, a slice-time histogram for each
# worker); a worker killed shows as one drop with its reason and one live worker. Other
# paths are 404; a port in use and an address not of this host are one line
# and a non-zero exit before any training.
#   scripts/metrics-test.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/lib.sh"
find_convoy
TMP=$(mktemp -d)
TIMEOUT=300
DEADLINE=$((SECONDS + TIMEOUT))
PIDS=()
trap 'stop_pids "${PIDS[@]}"; rm -rf "$TMP"' EXIT

if ! command -v promtool > /dev/null; then
    echo "metrics-test: installing prometheus for promtool (apt-get)" >&2
    { apt-get install -y -q --no-install-recommends prometheus > "$TMP/apt.log" 2>&1 \
        && command -v promtool > /dev/null; } || { echo "SKIP: Debian's prometheus (promtool) cannot be installed here"; exit 0; }
fi
command -v curl > /dev/null || { echo "SKIP: curl is not installed"; exit 0; }

# Far more steps than the test needs (it ends the run itself): 30 epochs of 4000 samples.
EPOCHS=30
"$CONVOY" local --workers 2 --epochs $EPOCHS --train-samples 4000 --test-samples 500 --json \
    --out "$TMP/model.convoy" --metrics-port 0 > "$TMP/run.jsonl" 2> "$TMP/local.log" &
PIDS+=($!)
LOCAL=${PIDS[-1]}

# The coordinator logs the port it was given.
url=""
while [[ -z $url ]]; do
    kill -0 "$LOCAL" 2> /dev/null || fail "convoy local ended before serving metrics"
    (( SECONDS < DEADLINE )) || fail "no 'metrics at' line in ${TIMEOUT}s"
    url=$(grep -o 'metrics at http://127\.0\.0\.1:[0-9]*/metrics' "$TMP/local.log" | head -n 1 | sed 's/^metrics at //') || true
    [[ -n $url ]] || sleep 0.2
done
echo "metrics-test: scraping $url"

# value NAME [LABELS]: the sample's value in the last scrape ("" when absent).
value() {
    awk -v series="$1${2:-}" '$1 == series { print $2 }' "$TMP/scrape.txt"
}

# Scrape until the run has stepped with both workers (their slice histograms exist).
while :; do
    kill -0 "$LOCAL" 2> /dev/null || fail "convoy local ended before a scrape showed both workers' slices"
    (( SECONDS < DEADLINE )) || fail "no scrape with steps and both workers' slices in ${TIMEOUT}s"
    curl -sf --max-time 10 "$url" -o "$TMP/scrape.txt" || { sleep 0.5; continue; }
    steps=$(value convoy_steps_total)
    w0=$(value convoy_worker_slice_seconds_count '{worker="w0"}')
    w1=$(value convoy_worker_slice_seconds_count '{worker="w1"}')
    if [[ -n $steps && $steps != 0 && -n $w0 && $w0 != 0 && -n $w1 && $w1 != 0 ]]; then break; fi
    sleep 0.5
done
kill -0 "$LOCAL" 2> /dev/null || fail "the run ended before the scrape was checked: not mid-run"
cp "$TMP/scrape.txt" "$TMP/scrape.log"   # shown by fail

promtool check metrics < "$TMP/scrape.txt" > "$TMP/promtool.log" 2>&1 \
    || fail "promtool check metrics: $(cat "$TMP/promtool.log")"
echo "metrics-test: promtool check metrics passed on a mid-run scrape ($(wc -l < "$TMP/scrape.txt") lines)"

# The key series and their values; every family has HELP and TYPE.
python3 - "$TMP/scrape.txt" $EPOCHS <<'PY' || fail "the scrape's series or values are wrong"
import re, sys
samples, help_, types = {}, set(), {}
for line in open(sys.argv[1]):
    line = line.rstrip("\n")
    if line.startswith("# HELP "):
        help_.add(line.split()[2])
    elif line.startswith("# TYPE "):
        _, _, name, kind = line.split()
        types[name] = kind
    elif line:
        series, value = line.rsplit(" ", 1)
        samples[series] = float(value)

def get(series):
    assert series in samples, f"no {series} in the scrape"
    return samples[series]

total_steps = int(sys.argv[2]) * ((4000 + 63) // 64)
assert 0 < get("convoy_steps_total") < total_steps, get("convoy_steps_total")
assert get("convoy_samples_total") >= 64 * get("convoy_steps_total") - 64, "samples"
assert get("convoy_live_workers") == 2, get("convoy_live_workers")
assert get("convoy_worker_joins_total") == 2, get("convoy_worker_joins_total")
assert 1 <= get("convoy_epoch") <= int(sys.argv[2]), get("convoy_epoch")
assert 0 < get("convoy_train_loss") < 10, get("convoy_train_loss")
assert 0 <= get("convoy_test_accuracy_ratio") <= 1
assert get("convoy_samples_per_second") >= 0
assert get("convoy_sent_bytes_total") > 0 and get("convoy_received_bytes_total") > 0, "bytes"
assert get("convoy_step_seconds_count") > 0 and get("convoy_step_seconds_sum") > 0, "step histogram"
for w in ("w0", "w1"):
    count = get(f'convoy_worker_slice_seconds_count{{worker="{w}"}}')
    assert count > 0, (w, count)
    assert get(f'convoy_worker_slice_seconds_bucket{{worker="{w}",le="+Inf"}}') == count, w
expected = {"convoy_steps_total": "counter", "convoy_live_workers": "gauge",
            "convoy_worker_slice_seconds": "histogram", "convoy_step_seconds": "histogram",
            "convoy_samples_per_second": "gauge", "convoy_sent_bytes_total": "counter"}
for name, kind in expected.items():
    assert types.get(name) == kind, (name, types.get(name))
missing = sorted(set(types) - help_)
assert not missing, f"no HELP for {missing}"
slices = [get('convoy_worker_slice_seconds_count{worker="%s"}' % w) for w in ("w0", "w1")]
print(f"metrics-test: {len(types)} families; steps {get('convoy_steps_total'):.0f}, live workers 2, "
      f"slices w0 {slices[0]:.0f} w1 {slices[1]:.0f}")
PY

# Other paths: 404; a POST to /metrics: 405.
base=${url%/metrics}
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$base/") || true
[[ $code == 404 ]] || fail "GET / answered $code, expected 404"
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$base/metricsx") || true
[[ $code == 404 ]] || fail "GET /metricsx answered $code, expected 404"
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 -X POST "$base/metrics") || true
[[ $code == 405 ]] || fail "POST /metrics answered $code, expected 405"

# refused WHAT PATTERN ARGS...: convoy train ARGS exits non-zero at once with one line
# naming PATTERN on stderr, and trains nothing.
refused() {
    local what=$1 pattern=$2 rc=0; shift 2
    timeout 60 "$CONVOY" train --epochs 1 --train-samples 200 --test-samples 100 --out "$TMP/x.convoy" "$@" \
        > "$TMP/bad.out" 2> "$TMP/bad.err" || rc=$?
    [[ $rc -ne 0 && $rc -ne 124 ]] || fail "$what: exit $rc"
    [[ $(wc -l < "$TMP/bad.err") -eq 1 ]] || fail "$what: not one line: $(cat "$TMP/bad.err")"
    grep -q -- "$pattern" "$TMP/bad.err" || fail "$what: $(cat "$TMP/bad.err")"
    [[ ! -s $TMP/bad.out && ! -e $TMP/x.convoy ]] || fail "$what: it trained"
    echo "metrics-test: $what: $(cat "$TMP/bad.err")"
}
port=${base##*:}
refused "port in use" "in use" --metrics-port "$port"
refused "address not of this host" "not an address of this host" --metrics-port 0 --metrics-address 192.0.2.1
refused "not an IP address" "not a numeric IP address" --metrics-port 0 --metrics-address localhost.invalid
refused "port out of range" "metrics-port" --metrics-port 65536

# A worker killed: once the coordinator drops it (at the step deadline, 5 s), the scrape
# shows one drop with a reason label and one live worker.
victim=$(ps -o pid=,args= --ppid "$LOCAL" | awk '$3 == "worker" { print $1; exit }')
[[ -n $victim ]] || fail "no worker process under convoy local"
kill -KILL "$victim"
while :; do
    kill -0 "$LOCAL" 2> /dev/null || fail "convoy local ended before the killed worker was dropped"
    (( SECONDS < DEADLINE )) || fail "the killed worker was not counted as dropped in ${TIMEOUT}s"
    curl -sf --max-time 10 "$url" -o "$TMP/scrape.txt" || { sleep 0.5; continue; }
    drops=$(grep '^convoy_worker_drops_total{' "$TMP/scrape.txt" || true)
    [[ -n $drops ]] && break
    sleep 0.5
done
[[ $(wc -l <<< "$drops") -eq 1 ]] || fail "expected one drop series: $drops"
[[ $drops =~ ^convoy_worker_drops_total\{reason=\"(deadline|unreachable|send_queue_full)\"\}\ 1$ ]] \
    || fail "drop series: $drops"
[[ $(value convoy_live_workers) =~ ^1(\.0)?$ ]] || fail "live workers after the drop: $(value convoy_live_workers)"
promtool check metrics < "$TMP/scrape.txt" > "$TMP/promtool.log" 2>&1 \
    || fail "promtool check metrics after the drop: $(cat "$TMP/promtool.log")"
echo "metrics-test: worker $victim killed: $drops, 1 live worker"

stop_pids "$LOCAL"
echo "metrics-test: ok"
