# Shared helpers of convoy's test scripts; `source "$ROOT/scripts/lib.sh"` after setting ROOT.

# Sets CONVOY to the convoy binary, building it (release) if CONVOY is not set already.
find_convoy() {
    if [[ -z ${CONVOY:-} ]]; then
        echo "$(basename "$0"): building convoy (swift build -c release)..." >&2
        (cd "$ROOT" && swift build -c release >&2)
        CONVOY="$(cd "$ROOT" && swift build -c release --show-bin-path)/convoy"
    fi
    [[ -x $CONVOY ]] || { echo "FAIL: convoy binary not executable: $CONVOY"; exit 1; }
}

# wait_pid PID WHAT [UNTIL [WHY]]: waits for PID, at most until UNTIL (in $SECONDS; default
# and cap: the caller's DEADLINE); sets WAIT_RC. Needs the caller's fail and TIMEOUT.
wait_pid() {
    local pid=$1 what=$2 until=${3:-$DEADLINE}
    (( until <= DEADLINE )) || until=$DEADLINE
    while kill -0 "$pid" 2>/dev/null; do
        if (( SECONDS >= until )); then
            (( until < DEADLINE )) && fail "$what (pid $pid) still running ${4:-}"
            fail "timed out after ${TIMEOUT}s waiting for $what (pid $pid)"
        fi
        sleep 0.2
    done
    WAIT_RC=0
    wait "$pid" || WAIT_RC=$?
}

# last_option NAME ARGS...: the effective value of an option in a flag list (the last one
# wins, as in ArgumentParser), or "".
last_option() {
    local name=$1 value="" prev="" arg; shift
    for arg in "$@"; do
        if [[ $prev == "$name" ]]; then value=$arg; fi
        case $arg in "$name="*) value=${arg#"$name="} ;; esac
        prev=$arg
    done
    printf '%s' "$value"
}

# model_checksum FILE: the parameter checksum `convoy evaluate` reports (equal = identical weights).
model_checksum() {
    "$CONVOY" evaluate --model-file "$1" --test-samples 500 --json \
        | python3 -c 'import json,sys; print(json.load(sys.stdin)["parameter_checksum"])'
}

# free_port: a TCP port on 127.0.0.1 that nothing listens on right now.
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# stop_pids PID...: SIGTERM to each that still runs, SIGKILL to any left 2 s later, then reaps.
stop_pids() {
    local pid
    # Every status is ignored: callers run this from EXIT traps under `set -e`.
    for pid in "$@"; do kill -0 "$pid" 2>/dev/null && kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "$@"; do
        for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    return 0
}

# fail MESSAGE: prints the tail of every log in $TMP, then "FAIL: MESSAGE", and exits 1.
fail() {
    local f
    echo "---- logs ----" >&2
    for f in "$TMP"/*.log; do
        [[ -f $f ]] || continue
        echo "== ${f##*/} (last 20 lines)" >&2
        tail -n 20 "$f" >&2 || true
    done
    echo "FAIL: $*"
    exit 1
}
