#!/usr/bin/env bash
# Every numeric flag of every subcommand at its edges: a normal run or one clear line naming
# the flag, within LIMIT seconds, never a signal or a hang (issue 14, docs/SECURITY.md "Flags").
#
#   scripts/flag-edges-test.sh
#
# The flags are discovered, not listed: `convoy --experimental-dump-help` names every option
# of every subcommand, and an option is numeric when `CMD --NAME=x` is refused as an invalid
# value (a string option takes "x"). So a new flag is covered the day it is added. Each
# numeric flag is then run with each of EDGES, on top of BASE flags that keep a normal run
# short (one tiny epoch, 1 s join/connect timeouts, a few bench steps); a new subcommand
# whose defaults run long needs a line in base_args, else its cases show up as hangs.
#
# Numbers inside string flags (bench-coordinator's --workers list, --init gaussian:SIGMA,
# summary's --input and --layers) are listed in EXTRA_CASES below.
#
# A case passes when the command
#   - exits 0 (a normal run), or
#   - exits 1..127 with one stderr line, which names the flag (refused), or
#   - exits like its baseline (the BASE flags alone: a coordinator nobody joins, a worker
#     nobody answers) with the same last line up to digits (a normal run of a server).
# It fails on a signal (exit >= 128), on still running after LIMIT s (timeout's 124/137),
# or on any other error line. Every case runs under `ulimit -v` (VMEM_KB) so a flag that
# escapes the memory bounds aborts here instead of swapping the host.
#
# Environment: CONVOY (binary; default: build it), LIMIT (s per case, default 30),
# JOBS (cases at once, default 4), VMEM_KB (default 8 GiB), KEEP_TMP=1 (keep the logs).
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$ROOT/scripts/lib.sh"
LIMIT=${LIMIT:-30}
JOBS=${JOBS:-4}
VMEM_KB=${VMEM_KB:-8388608}
EDGES=(inf -inf nan -1 0 9223372036854775807 2147483648 1e-300 1e300)

# base_args CMD: flags that keep a normal run of CMD short, one per line, as --NAME=VALUE.
base_args() {
    # simplecnn: the cheapest trainable model, for the edges that ask for all 60,000 samples.
    local tiny=(--model=simplecnn --epochs=1 --train-samples=128 --test-samples=100 --out=m.convoy
        "--data=$ROOT/data/mnist" --target-accuracy=0.999)
    case $1 in
        train) printf '%s\n' "${tiny[@]}" --checkpoint-dir=checkpoints ;;
        local) printf '%s\n' --workers=1 --slots=1 "${tiny[@]}" ;;
        coordinator) printf '%s\n' --workers=1 '--bind=tcp://127.0.0.1:*' --join-timeout=1 "${tiny[@]}" \
            --checkpoint-dir=checkpoints ;;
        worker) printf '%s\n' --connect=tcp://127.0.0.1:1 --connect-timeout=1 --idle-timeout=1 ;;
        evaluate) printf '%s\n' "--model-file=$TMP/model.convoy" --test-samples=100 "--data=$ROOT/data/mnist" ;;
        report) printf '%s\n' "$TMP/run.jsonl" "--model-file=$TMP/model.convoy" --test-samples=100 \
            "--data=$ROOT/data/mnist" --output=report.html ;;
        bench) printf '%s\n' --steps=2 --infer-batch=64 ;;
        bench-transport) printf '%s\n' --rounds=5 --request=1000 --reply=1000 ;;
        bench-coordinator) printf '%s\n' --steps=2 --warmup=0 ;;
        summary) printf '%s\n' --input=1x28x28 --layers=relu ;;
        status) printf '%s\n' tcp://127.0.0.1:1 --timeout=1 ;;
    esac
}

# Servers (and status, asking one): their baseline is a clean failure (nobody joins, nobody
# answers); every other command's baseline must succeed.
SERVERS=" coordinator worker status "

# Numbers inside string flags: "CMD NAME VALUE" per line.
EXTRA_CASES=$(cat <<'EOF'
bench-coordinator workers 2147483648
bench-coordinator workers 0
bench-coordinator workers 1,-1
bench-coordinator workers 9223372036854775807
bench-coordinator workers 99999999999999999999
train init gaussian:inf
train init gaussian:nan
train init gaussian:-1
train init gaussian:1e-300
summary input 9223372036854775807x2x2
summary input 2147483648x2147483648x2147483648
summary input 0x28x28
summary layers dense(9223372036854775807)
summary layers conv2d(2147483648,3)
summary layers conv2d(6,2147483648)
summary layers conv2d(6,3,stride=0)
summary layers maxpool(0)
EOF
)

# run_one CMD NAME VALUE OUTFILE: runs one case in its own directory; writes
# "rc<TAB>seconds<TAB>stderr lines<TAB>last stderr line" to OUTFILE.
run_one() {
    local cmd=$1 name=$2 value=$3 out=$4 dir arg args=()
    dir=$(mktemp -d "$TMP/case.XXXXXX")
    while IFS= read -r arg; do
        [[ -n $arg && $arg != "--$name="* ]] && args+=("$arg")
    done < <(base_args "$cmd")
    [[ -n $name ]] && args+=("--$name=$value")
    local started=$SECONDS rc
    (cd "$dir" && ulimit -v "$VMEM_KB" && exec timeout -k 5 "$LIMIT" "$CONVOY" "$cmd" "${args[@]}") \
        >"$dir/stdout" 2>"$dir/stderr" </dev/null
    rc=$?
    # The line to judge: a crash's "Fatal error" line, else the last line.
    local last; last=$(grep -m 1 -E 'Fatal error|fatal error|Program crashed|terminate called' "$dir/stderr" \
        || grep -v '^[[:space:]]*$' "$dir/stderr" | tail -n 1)
    last=$(printf '%s' "$last" | head -n 1 | cut -c1-300)
    local lines; lines=$(grep -c -v '^[[:space:]]*$' "$dir/stderr")
    printf '%s\t%s\t%s\t%s\n' "$rc" "$((SECONDS - started))" "$lines" "$last" >"$out"
    rm -rf "$dir"
}

# One case, when this script runs itself from xargs: --case CMD NAME VALUE.
if [[ ${1:-} == --case ]]; then
    exec 2>/dev/null  # bash's own "Illegal instruction" notices: the result file says it
    run_one "$2" "$3" "$4" "$TMP/results/$2.$3.$(printf '%s' "$4" | tr -c 'A-Za-z0-9' _)"
    exit 0
fi

find_convoy
TMP=$(mktemp -d)
cleanup() { [[ ${KEEP_TMP:-0} == 1 ]] && echo "kept $TMP" >&2 || rm -rf "$TMP"; }
trap cleanup EXIT
export TMP CONVOY LIMIT VMEM_KB
mkdir -p "$TMP/results" "$TMP/baseline"

# A model for evaluate and report, and its epoch line for report.
"$CONVOY" train --epochs 1 --train-samples 128 --test-samples 100 --out "$TMP/model.convoy" --json \
    >"$TMP/run.jsonl" 2>"$TMP/train.log" || fail "could not train the model evaluate and report need"

# Discovery: every option of every subcommand, then the numeric ones.
"$CONVOY" --experimental-dump-help >"$TMP/help.json" || fail "convoy --experimental-dump-help failed"
mapfile -t options < <(python3 - "$TMP/help.json" <<'PY'
import json, sys
root = json.load(open(sys.argv[1]))["command"]
for sub in root.get("subcommands", []):
    if sub["commandName"] == "help":
        continue
    for arg in sub.get("arguments", []):
        names = [n["name"] for n in arg.get("names", []) if n.get("kind") == "long"]
        if arg["kind"] == "option" and names:
            print(sub["commandName"], names[0])
PY
)
[[ ${#options[@]} -gt 0 ]] || fail "no options discovered"
# The probe never runs a command: the unknown flag stops a string option's case at parsing.
probe() { "$CONVOY" "$1" "--$2=x" --no-such-flag-zz 2>&1 >/dev/null | grep -q "invalid for '--$2" && echo "$1 $2"; }
export -f probe
mapfile -t numeric < <(printf '%s\n' "${options[@]}" | xargs -P "$JOBS" -L 1 bash -c 'probe "$0" "$1"' | sort -s -k1,1)
commands=$(printf '%s\n' "${numeric[@]}" | cut -d' ' -f1 | sort -u | tr '\n' ' ')
echo "discovered ${#options[@]} options, ${#numeric[@]} numeric, in: $commands"
for entry in "${numeric[@]}"; do echo "  ${entry/ / --}"; done

# Baselines: each command with its BASE flags alone, the "normal run" of a server.
for cmd in $commands; do run_one "$cmd" "" "" "$TMP/baseline/$cmd" & done
wait

cases=()
for entry in "${numeric[@]}"; do
    read -r cmd name <<<"$entry"
    for value in "${EDGES[@]}"; do cases+=("$cmd" "$name" "$value"); done
done
while read -r cmd name value; do cases+=("$cmd" "$name" "$value"); done <<<"$EXTRA_CASES"
echo "running $((${#cases[@]} / 3)) cases (${#EDGES[@]} edges: ${EDGES[*]}; and $(wc -l <<<"$EXTRA_CASES") numbers" \
    "inside string flags), $JOBS at a time, ${LIMIT}s each at most"
started=$SECONDS
printf '%s\0' "${cases[@]}" | xargs -0 -n 3 -P "$JOBS" "$0" --case
echo "ran them in $((SECONDS - started)) s"

normalize() { sed -E 's/[0-9]+/N/g' <<<"$1"; }
failures=() tried=0
for cmd in $commands summary; do
    [[ -f $TMP/baseline/$cmd ]] || run_one "$cmd" "" "" "$TMP/baseline/$cmd"
    IFS=$'\t' read -r rc _ _ last <"$TMP/baseline/$cmd"
    if [[ $SERVERS == *" $cmd "* ]]; then
        ((rc >= 1 && rc < 128)) || failures+=("$cmd|(base flags only)|exit $rc, expected a clean failure: $last")
    elif ((rc != 0)); then failures+=("$cmd|(base flags only)|exit $rc: $last")
    fi
done
extra_flags=$(cut -d' ' -f1,2 <<<"$EXTRA_CASES" | sort -u)
for entry in "${numeric[@]}" $(tr ' ' '@' <<<"$extra_flags"); do
    read -r cmd name <<<"${entry/@/ }"
    IFS=$'\t' read -r base_rc _ _ base_line <"$TMP/baseline/$cmd"
    values=("${EDGES[@]}")
    if [[ $entry == *@* ]]; then
        mapfile -t values < <(awk -v c="$cmd" -v n="$name" '$1 == c && $2 == n { print $3 }' <<<"$EXTRA_CASES")
    fi
    line_out=""
    for value in "${values[@]}"; do
        file="$TMP/results/$cmd.$name.$(printf '%s' "$value" | tr -c 'A-Za-z0-9' _)"
        tried=$((tried + 1))
        [[ -f $file ]] || { failures+=("$cmd|--$name=$value|no result"); continue; }
        IFS=$'\t' read -r rc secs lines last <"$file"
        verdict=""
        if ((rc == 124 || rc == 137)); then verdict="hang: still running after ${LIMIT}s"
        elif ((rc >= 128)); then verdict="signal $((rc - 128)) after ${secs}s: $last"
        elif ((rc == 0)); then line_out+=" $value:ran"
        elif [[ $last == *"--$name"* && $lines == 1 ]]; then line_out+=" $value:refused"
        elif [[ $last == *"--$name"* ]]; then verdict="refused, but in $lines lines, not one: $last"
        elif [[ $rc == "$base_rc" && $(normalize "$last") == "$(normalize "$base_line")" ]]; then
            line_out+=" $value:as-baseline"
        else verdict="exit $rc, the error does not name --$name: $last"
        fi
        [[ -n $verdict ]] && { failures+=("$cmd|--$name=$value|$verdict"); line_out+=" $value:FAIL"; }
    done
    echo "$cmd --$name:$line_out"
done

echo "tried $tried cases over ${#numeric[@]} numeric flags and $(wc -l <<<"$extra_flags") string flags"
if [[ ${#failures[@]} -gt 0 ]]; then
    echo "failures (${#failures[@]}):"
    printf '%-18s  %-40s  %s\n' command case problem
    for f in "${failures[@]}"; do
        IFS='|' read -r c k p <<<"$f"
        printf '%-18s  %-40s  %s\n' "$c" "$k" "$p"
    done
    echo "FAIL: ${#failures[@]} of $tried flag edge cases crashed, hung or gave no clear line"
    exit 1
fi
echo "PASS: $tried flag edge cases: each ran normally or gave one line naming the flag"
