#!/usr/bin/env bash
# The run report in a real browser (issue 11): a short `convoy local --workers 2 --json
# --report` run and `convoy report` on its JSON lines (with the saved model's confusion
# matrix) are loaded in headless Chromium (Debian's `chromium`, installed here when missing;
# SKIP where it cannot be). Fails on any console message or a chart missing from the DOM,
# and when a page built from hostile strings (a <script> in a drop reason) runs it.
# REPORT_SCREENSHOT=FILE keeps a screenshot of the run's page for a person to look at.
#   scripts/report-test.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/lib.sh"
find_convoy
TMP=$(mktemp -d)
TIMEOUT=120
DEADLINE=$((SECONDS + TIMEOUT))
PIDS=()
trap 'stop_pids "${PIDS[@]}"; rm -rf "$TMP"' EXIT

"$CONVOY" local --workers 2 --epochs 2 --train-samples 2000 --test-samples 2000 --json \
    --out "$TMP/model.convoy" --report "$TMP/run.html" > "$TMP/run.jsonl" 2> "$TMP/local.log" &
PIDS+=($!)
wait_pid "${PIDS[-1]}" "convoy local"
[[ $WAIT_RC -eq 0 ]] || fail "convoy local exited $WAIT_RC"
[[ $(wc -l < "$TMP/run.jsonl") -eq 2 ]] || fail "expected 2 epoch lines in run.jsonl"
grep -q '"event":"joined"' "$TMP/run.jsonl" || fail "the epoch objects do not record the workers joining"
[[ -s $TMP/run.html ]] || fail "--report wrote nothing"

"$CONVOY" report "$TMP/run.jsonl" --model-file "$TMP/model.convoy" --test-samples 2000 -o "$TMP/cli.html" \
    2> "$TMP/report.log" || fail "convoy report"

# One process: no worker charts, the rest as a cluster's (and the report without --json).
"$CONVOY" train --epochs 1 --train-samples 1000 --test-samples 1000 --out "$TMP/train.convoy" \
    --report "$TMP/train.html" > "$TMP/train.log" 2>&1 || fail "convoy train --report"

# Bad input: one line on stderr and exit 1, never a crash.
echo 'not json' > "$TMP/bad.jsonl"
for bad in "$TMP/missing.jsonl" "$TMP/bad.jsonl"; do
    rc=0
    "$CONVOY" report "$bad" -o "$TMP/bad.html" 2> "$TMP/bad.err" || rc=$?
    [[ $rc -eq 1 && $(wc -l < "$TMP/bad.err") -eq 1 ]] || fail "convoy report $bad: exit $rc, $(cat "$TMP/bad.err")"
done

# Hostile strings: a drop reason that would run a script if it were not escaped.
head -n 1 "$TMP/run.jsonl" | sed 's|"events":\[|"events":[{"t":1,"event":"dropped","worker":1,"reason":"<script>console.error(\\"injected\\")</script>"},|' \
    > "$TMP/hostile.jsonl"
grep -q injected "$TMP/hostile.jsonl" || fail "could not make the hostile run file"
"$CONVOY" report "$TMP/hostile.jsonl" -o "$TMP/hostile.html" 2>> "$TMP/report.log" || fail "report of hostile.jsonl"

if ! command -v chromium > /dev/null; then
    echo "report-test: installing chromium (apt-get)" >&2
    { apt-get install -y -q chromium > "$TMP/apt.log" 2>&1 && command -v chromium > /dev/null; } \
        || { echo "SKIP: Debian's chromium cannot be installed here"; exit 0; }
fi

# load PAGE: the page's DOM after loading in $TMP/PAGE.dom, the browser's log in $TMP/PAGE.chromium.
load() {
    local page=$1
    timeout 60 chromium --headless --no-sandbox --disable-gpu --enable-logging=stderr --v=0 \
        --user-data-dir="$TMP/profile" --dump-dom "file://$TMP/$page.html" \
        > "$TMP/$page.dom" 2> "$TMP/$page.chromium" || fail "chromium could not load $page.html"
    if grep -E 'CONSOLE|Uncaught' "$TMP/$page.chromium"; then fail "$page.html: console output in chromium"; fi
}

for page in run cli; do
    load "$page"
    svgs=$(grep -o '<svg ' "$TMP/$page.dom" | wc -l)
    ids="chart-loss chart-accuracy chart-throughput chart-workers chart-events chart-confusion"
    for id in $ids; do grep -q "<svg id=\"$id\"" "$TMP/$page.dom" || fail "$page.html: no $id in the DOM"; done
    [[ $svgs -eq 6 ]] || fail "$page.html: $svgs svg elements in the DOM, expected 6"
    cells=$(grep -o 'class="cell"' "$TMP/$page.dom" | wc -l)
    [[ $cells -eq 100 ]] || fail "$page.html: $cells confusion cells, expected 100"
    echo "report-test: $page.html: 6 charts, 100 confusion cells, no console output"
done
load train
for id in chart-loss chart-accuracy chart-throughput chart-confusion; do
    grep -q "<svg id=\"$id\"" "$TMP/train.dom" || fail "train.html: no $id in the DOM"
done
[[ $(grep -o '<svg ' "$TMP/train.dom" | wc -l) -eq 4 ]] || fail "train.html: expected 4 charts (no worker charts)"
load hostile
grep -q '&lt;script&gt;console.error' "$TMP/hostile.dom" || fail "hostile.html: the reason is not shown escaped"

timeout 60 chromium --headless --no-sandbox --disable-gpu --user-data-dir="$TMP/profile" \
    --window-size=700,2600 --screenshot="$TMP/run.png" "file://$TMP/run.html" > /dev/null 2>&1 \
    || fail "chromium could not take a screenshot"
[[ -s $TMP/run.png ]] || fail "no screenshot"
if [[ -n ${REPORT_SCREENSHOT:-} ]]; then cp "$TMP/run.png" "$REPORT_SCREENSHOT"; fi
echo "report-test: ok"
