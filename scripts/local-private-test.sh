#!/usr/bin/env bash
# Another Unix user of this host cannot join or disturb a running `convoy local` (issue 14,
# row 9). As root this script makes a second user (useradd; a spare numeric uid where
# useradd is refused), runs `convoy local` undisturbed once, then again while that user
# attacks it the way an attacker would: it reads the endpoint from the command lines of the
# run's processes (/proc/PID/cmdline, what `ps` shows), opens a raw connection to it, and
# runs its own `convoy worker` against it (a hello, then gradients if welcomed). Checks:
#   - the attacker found the run's endpoint (else the test proves nothing),
#   - its raw connection and its worker were refused (no "joined run"),
#   - no TCP port was open by the run's processes (ss, as root),
#   - the attacked run ends 0 with the undisturbed run's parameter checksum; the runs use
#     --no-deterministic, whose result changes with the number of workers, so a worker that
#     got in would show in the checksum,
#   - the run's socket directory is gone afterwards.
# Prints "SKIP: reason" and exits 0 when not root or no second user can be made.
#   scripts/local-private-test.sh        prints PASS/FAIL, exit 0 only on PASS
# Environment: CONVOY (binary), TIMEOUT (overall seconds, default 400), KEEP_TMP=1.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
skip() { echo "SKIP: $*"; exit 0; }
[[ $(id -u) -eq 0 ]] || skip "needs root to make a second user"
command -v setpriv >/dev/null 2>&1 || skip "setpriv (util-linux) is not installed"
command -v ss >/dev/null 2>&1 || skip "ss (iproute2) is not installed"
source "$ROOT/scripts/lib.sh"
find_convoy
CONVOY=$(cd "$(dirname "$CONVOY")" && pwd)/$(basename "$CONVOY")

TIMEOUT=${TIMEOUT:-400}
DEADLINE=$(( SECONDS + TIMEOUT ))
TMP=$(mktemp -d "${TMPDIR:-/tmp}/convoy-private.XXXXXX")
PIDS=()
USER_MADE=""
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    stop_pids "${PIDS[@]}"
    [[ -n $USER_MADE ]] && { userdel "$USER_MADE" 2>/dev/null || echo "could not delete user $USER_MADE" >&2; }
    if [[ ${KEEP_TMP:-0} == 1 ]]; then echo "local-private-test: kept $TMP" >&2; else rm -rf "$TMP"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- the second user ----------------------------------------------------------------------
NAME="cvyatk$$"
if useradd --system --no-create-home --shell /usr/sbin/nologin --user-group "$NAME" 2>"$TMP/useradd.log"; then
    USER_MADE=$NAME
    ATTACKER_UID=$(id -u "$NAME") ATTACKER_GID=$(id -g "$NAME")
else
    ATTACKER_UID=$(( 61000 + $$ % 4000 ))
    getent passwd "$ATTACKER_UID" >/dev/null && skip "useradd failed ($(tail -n 1 "$TMP/useradd.log")), uid taken"
    ATTACKER_GID=$ATTACKER_UID
fi
as_attacker() { setpriv --reuid="$ATTACKER_UID" --regid="$ATTACKER_GID" --clear-groups "$@"; }
as_attacker "$CONVOY" --version >/dev/null 2>&1 || skip "the second user cannot run $CONVOY"
ATK=$TMP/attacker
mkdir "$ATK" && chown "$ATTACKER_UID:$ATTACKER_GID" "$ATK" && chmod 0755 "$TMP"

FLAGS=(--workers 1 --epochs 1 --train-samples 19200 --test-samples 200 --seed 5 --no-deterministic)
"$CONVOY" local "${FLAGS[@]}" --out "$TMP/reference.convoy" --json >/dev/null 2>"$TMP/reference.log" \
    || fail "the undisturbed run failed"
reference=$(model_checksum "$TMP/reference.convoy")

# ---- the attacker -------------------------------------------------------------------------
# Runs as the other user: every endpoint on the command lines of the run's processes gets a
# raw connection and a `convoy worker`. Only this run's processes (children of LOCAL) are
# looked at, so no other convoy on the host is disturbed.
cat >"$ATK/attack.sh" <<'ATTACK'
#!/usr/bin/env bash
set -u
LOCAL=$1 CONVOY=$2 OUT=$3 UNTIL=$4
insecure=(); "$CONVOY" worker --help 2>/dev/null | grep -q -- --insecure && insecure=(--insecure)
declare -A tried=()
workers=()
# (kill -0 would fail: another user may not signal the run, but /proc shows it.)
while [[ -d /proc/$LOCAL ]] && (( SECONDS < UNTIL )); do
    for pid in $(pgrep -P "$LOCAL"); do
        args=$(tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null) || continue
        endpoint=$(grep -A1 -x -e --connect -e --bind <<<"$args" | grep -v -e '^--' | head -n 1)
        [[ -n $endpoint && -z ${tried[$endpoint]:-} ]] || continue
        tried[$endpoint]=1
        echo "found $endpoint on the command line of pid $pid"
        python3 - "$endpoint" <<'PY'
import socket, sys
endpoint = sys.argv[1]
try:
    if endpoint.startswith("ipc://"):
        s = socket.socket(socket.AF_UNIX); s.settimeout(3); s.connect(endpoint[len("ipc://"):])
    elif endpoint.startswith("shm://"):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET); s.settimeout(3); s.connect(endpoint[len("shm://"):])
    else:
        host, port = endpoint[len("tcp://"):].rsplit(":", 1)  # a wildcard port fails as ValueError
        s = socket.create_connection((host.strip("[]"), int(port)), timeout=3)
    print(f"raw connection to {endpoint}: CONNECTED")
    s.close()
except (OSError, ValueError) as error:
    print(f"raw connection to {endpoint}: refused ({error.__class__.__name__}: {error})")
PY
        "$CONVOY" worker --connect "$endpoint" "${insecure[@]}" --connect-timeout 10 --idle-timeout 30 \
            >>"$OUT/worker.log" 2>&1 &
        workers+=($!)
    done
    sleep 0.02
done
for pid in "${workers[@]}"; do
    for _ in $(seq 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$pid" 2>/dev/null; wait "$pid"
done
echo "attacker done"
ATTACK
chmod 0755 "$ATK/attack.sh"

"$CONVOY" local "${FLAGS[@]}" --out "$TMP/attacked.convoy" --json >/dev/null 2>"$TMP/attacked.log" &
LOCAL=$!
PIDS+=("$LOCAL")
as_attacker bash "$ATK/attack.sh" "$LOCAL" "$CONVOY" "$ATK" $(( TIMEOUT / 2 )) >"$TMP/attacker.log" 2>&1 &
ATTACKER=$!
PIDS+=("$ATTACKER")

# As root: which TCP ports do the run's processes listen on? (None: it uses a socket file.)
while kill -0 "$LOCAL" 2>/dev/null; do
    for pid in $(pgrep -P "$LOCAL"); do
        ss -ltnpH 2>/dev/null | grep "pid=$pid," >>"$TMP/tcp-listeners.txt" || true
    done
    (( SECONDS < DEADLINE )) || fail "timed out after ${TIMEOUT}s waiting for the attacked run"
    sleep 0.2
done
wait_pid "$LOCAL" "convoy local"
(( WAIT_RC == 0 )) || fail "the attacked run exited with $WAIT_RC"
wait_pid "$ATTACKER" attacker
cat "$TMP/attacker.log" >&2
[[ -f $ATK/worker.log ]] && sed 's/^/attacker worker: /' "$ATK/worker.log" >&2

grep -q "^found " "$TMP/attacker.log" || fail "the attacker found no endpoint: the test proves nothing"
attacked=$(model_checksum "$TMP/attacked.convoy")
[[ $attacked == "$reference" ]] || fail "checksum $attacked after the attack, $reference undisturbed"
grep -q "joined run" "$ATK/worker.log" 2>/dev/null && fail "the other user's worker joined the run"
grep -q "CONNECTED" "$TMP/attacker.log" && fail "the other user opened a connection to the run"
[[ ! -s $TMP/tcp-listeners.txt ]] || fail "the run listened on TCP: $(sort -u "$TMP/tcp-listeners.txt")"
socket=$(sed -n 's/.*listening on \(ipc\|shm\):\/\/\(.*\)$/\2/p' "$TMP/attacked.log" | head -n 1)
[[ -n $socket && ! -e $(dirname "$socket") ]] || fail "the run's socket directory ($socket) was left behind"
echo "PASS: local-private-test: another user found $(grep -c '^found ' "$TMP/attacker.log") endpoint(s)," \
    "was refused, and the run ended with the undisturbed checksum $reference"
