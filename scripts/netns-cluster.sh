#!/usr/bin/env bash
# Multi-host test of convoy's data-parallel mode on one machine: the coordinator and each
# worker run in their own network namespace, joined by a bridge in a namespace of its own,
# so every connection crosses a (virtual) network link exactly as between hosts.
#
#   sudo scripts/netns-cluster.sh N [extra training flags...]
#
# Layout (X = NET_OCTET, default derived from this script's PID):
#   convoy-$$-br   bridge br0, one veth port per host
#   convoy-$$-c    eth0 10.231.X.1/24  `convoy coordinator --bind tcp://10.231.X.1:PORT`
#   convoy-$$-wI   eth0 10.231.X.(10+I)/24  `convoy worker --connect tcp://10.231.X.1:PORT`
# Nothing is added to the root namespace: no address, no route, no link. The EXIT trap kills
# every process it started by PID and deletes the namespaces (which removes their links).
#
# Checks: coordinator and every worker exit 0, last epoch test_accuracy >= MIN_ACCURACY
# (default 0.90), and `convoy evaluate` on the saved model reports the same accuracy. The
# workers authenticate with CURVE keys made by `convoy keygen`; an intruder with a key the
# coordinator does not know is refused (and logged) while the run goes on.
# Default training flags: --epochs 1 --train-samples 20000 --test-samples 500 (caller flags
# follow them and win: ArgumentParser keeps the last value of a repeated option).
#
# If namespaces cannot be made (not root, no iproute2, `ip netns add` or veth/bridge
# creation refused) it prints "SKIP: <reason>" and exits 0.
#
# Environment: CONVOY (binary; default: swift build -c release), MIN_ACCURACY, TIMEOUT
# (overall seconds, default 600), BIND_TIMEOUT (60), WORKER_EXIT_TIMEOUT (30), PORT (5555),
# NET_OCTET (X above), WORKER_FLAGS (extra worker flags), KEEP_TMP=1 (keep logs and model).
set -euo pipefail

usage() { echo "usage: $0 N [extra training flags...]" >&2; exit 2; }
[[ $# -ge 1 && $1 =~ ^[1-9][0-9]*$ ]] || usage
N=$1; shift
(( N <= 200 )) || { echo "netns-cluster: at most 200 workers" >&2; exit 2; }

MIN_ACCURACY=${MIN_ACCURACY:-0.90}
TIMEOUT=${TIMEOUT:-600}
BIND_TIMEOUT=${BIND_TIMEOUT:-60}
WORKER_EXIT_TIMEOUT=${WORKER_EXIT_TIMEOUT:-30}
PORT=${PORT:-5555}
X=${NET_OCTET:-$(( $$ % 250 + 1 ))}
read -r -a WORKER_FLAGS <<<"${WORKER_FLAGS:-}"
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

skip() { echo "SKIP: $*"; exit 0; }

# ---- can we make namespaces at all? -------------------------------------------------------
[[ $(id -u) -eq 0 ]] || skip "needs root to create network namespaces (run with sudo)"
command -v ip >/dev/null 2>&1 || skip "iproute2 ('ip') is not installed"
ip netns help >/dev/null 2>&1 || ip netns list >/dev/null 2>&1 || skip "'ip netns' is not supported"

source "$ROOT/scripts/lib.sh"
find_convoy
CONVOY=$(cd "$(dirname "$CONVOY")" && pwd)/$(basename "$CONVOY")

TMP=$(mktemp -d "${TMPDIR:-/tmp}/convoy-netns.XXXXXX")
PIDS=()           # every process we started, killed by PID on exit
NAMESPACES=()     # every namespace we created, deleted on exit
DEADLINE=$(( SECONDS + TIMEOUT ))
PREFIX="convoy-$$"
NS_BR="$PREFIX-br"
NS_C="$PREFIX-c"
SUBNET="10.231.$X"
COORD_ADDR="$SUBNET.1"

cleanup() {
    local rc=$? ns
    trap - EXIT INT TERM
    set +e
    stop_pids "${PIDS[@]}"
    # Deleting a namespace deletes the veth ends and the bridge inside it.
    for ns in "${NAMESPACES[@]}"; do
        ip netns del "$ns" 2>/dev/null || echo "netns-cluster: could not delete namespace $ns" >&2
    done
    if [[ ${KEEP_TMP:-0} == 1 ]]; then
        echo "netns-cluster: kept $TMP" >&2
    else
        rm -rf "$TMP"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Namespace setup failures before anything ran are environment limits: SKIP (cleaned up).
setup() { "$@" 2>>"$TMP/setup.log" || skip "'$*' failed: $(tail -n 1 "$TMP/setup.log")"; }

add_ns() { setup ip netns add "$1"; NAMESPACES+=("$1"); setup ip -n "$1" link set lo up; }

# add_host NS ADDR PORTNAME: a veth from the bridge namespace into NS, eth0 = ADDR/24 there.
add_host() {
    local ns=$1 addr=$2 port=$3
    add_ns "$ns"
    setup ip -n "$NS_BR" link add "$port" type veth peer name eth0 netns "$ns"
    setup ip -n "$NS_BR" link set "$port" master br0
    setup ip -n "$NS_BR" link set "$port" up
    setup ip -n "$ns" addr add "$addr/24" dev eth0
    setup ip -n "$ns" link set eth0 up
}

add_ns "$NS_BR"
setup ip -n "$NS_BR" link add br0 type bridge
setup ip -n "$NS_BR" link set br0 up
add_host "$NS_C" "$COORD_ADDR" vc
WORKER_NS=()
for i in $(seq 1 "$N"); do
    add_host "$PREFIX-w$i" "$SUBNET.$((10 + i))" "vw$i"
    WORKER_NS+=("$PREFIX-w$i")
done
echo "netns-cluster: namespaces ${NAMESPACES[*]} on $SUBNET.0/24" >&2

# Sanity: the subnet exists only inside the namespaces.
if ip -4 -o addr show | grep -qF " $SUBNET."; then
    fail "$SUBNET.0/24 is also configured in the root namespace; pick another NET_OCTET"
fi
if command -v ping >/dev/null 2>&1; then
    # Bridge ports may take a moment to forward; give ARP a few tries.
    reached=0
    for _ in 1 2 3 4 5; do
        if ip netns exec "${WORKER_NS[0]}" ping -c 1 -W 1 "$COORD_ADDR" >/dev/null 2>&1; then reached=1; break; fi
    done
    (( reached )) || fail "worker namespace cannot ping $COORD_ADDR over the bridge"
fi


TRAIN_FLAGS=(--epochs 1 --train-samples 20000 --test-samples 500 "$@")
# Across hosts the coordinator requires CURVE: a key pair for it and one per worker, the
# workers' public keys authorized. An intruder with a key of its own must be refused.
for name in coordinator intruder $(seq -f "worker%g" 1 "$N"); do
    "$CONVOY" keygen "$TMP/$name" >/dev/null || fail "convoy keygen failed"
done
for i in $(seq 1 "$N"); do grep -v '^#' "$TMP/worker$i.pub"; done >"$TMP/authorized"
SECURITY_FLAGS=(--curve-key "$TMP/coordinator.key" --authorized-keys "$TMP/authorized")
MODEL="$TMP/model.convoy"
BIND="tcp://$COORD_ADDR:$PORT"

echo "netns-cluster: coordinator in $NS_C at $BIND, flags: ${SECURITY_FLAGS[*]} ${TRAIN_FLAGS[*]}" >&2
# `ip netns exec` execs the command (no fork), so $! is convoy's own PID.
ip netns exec "$NS_C" "$CONVOY" coordinator --bind "$BIND" --workers "$N" --json --out "$MODEL" \
    "${SECURITY_FLAGS[@]}" "${TRAIN_FLAGS[@]}" >"$TMP/coordinator.json" 2>"$TMP/coordinator.log" &
COORD=$!
PIDS+=("$COORD")

ENDPOINT=""
bind_deadline=$(( SECONDS + BIND_TIMEOUT ))
while :; do
    ENDPOINT=$(sed -n 's/.*listening on \(tcp:\/\/[^ ]*\).*/\1/p' "$TMP/coordinator.log" | head -n 1)
    [[ -n $ENDPOINT ]] && break
    kill -0 "$COORD" 2>/dev/null || fail "coordinator exited before binding"
    (( SECONDS < bind_deadline )) || fail "coordinator did not bind within ${BIND_TIMEOUT}s"
    sleep 0.1
done
[[ $ENDPOINT == "$BIND" ]] || echo "netns-cluster: note: coordinator reports $ENDPOINT (bound $BIND)" >&2
echo "netns-cluster: coordinator pid $COORD listening on $ENDPOINT" >&2

WORKERS=()
for i in $(seq 1 "$N"); do
    ip netns exec "${WORKER_NS[$((i - 1))]}" "$CONVOY" worker --connect "$BIND" --threads 1 \
        --server-key "$TMP/coordinator.pub" --key "$TMP/worker$i.key" \
        --connect-timeout 60 "${WORKER_FLAGS[@]}" >"$TMP/worker$i.log" 2>&1 &
    WORKERS+=($!)
    PIDS+=($!)
done
ip netns exec "${WORKER_NS[0]}" "$CONVOY" worker --connect "$BIND" --server-key "$TMP/coordinator.pub" \
    --key "$TMP/intruder.key" --connect-timeout 5 >"$TMP/intruder.log" 2>&1 &
INTRUDER=$!
PIDS+=("$INTRUDER")
echo "netns-cluster: worker pids ${WORKERS[*]}, intruder $INTRUDER" >&2

wait_pid "$COORD" coordinator
(( WAIT_RC == 0 )) || fail "coordinator exited with $WAIT_RC"
grep -q "refused a connection from .*unknown key" "$TMP/coordinator.log" || fail "the intruder was not refused"
wait_pid "$INTRUDER" intruder
(( WAIT_RC != 0 )) || fail "the intruder's worker exited 0: it got in"

workers_deadline=$(( SECONDS + WORKER_EXIT_TIMEOUT ))
for i in "${!WORKERS[@]}"; do
    wait_pid "${WORKERS[$i]}" "worker $((i + 1))" "$workers_deadline" \
        "${WORKER_EXIT_TIMEOUT}s after the coordinator exited 0 (no shutdown message received?)"
    (( WAIT_RC == 0 )) || fail "worker $((i + 1)) (pid ${WORKERS[$i]}) exited with $WAIT_RC"
done

# Every worker must have joined over the namespace network, not some other route.
for i in $(seq 1 "$N"); do
    grep -q "joined run" "$TMP/worker$i.log" || fail "worker $i never joined the run"
done

[[ -s $MODEL ]] || fail "no model saved at $MODEL"

EVAL_FLAGS=()
ts=$(last_option --test-samples "${TRAIN_FLAGS[@]}"); [[ -n $ts ]] && EVAL_FLAGS+=(--test-samples "$ts")
dd=$(last_option --data "${TRAIN_FLAGS[@]}");         [[ -n $dd ]] && EVAL_FLAGS+=(--data "$dd")
"$CONVOY" evaluate --model-file "$MODEL" --json "${EVAL_FLAGS[@]}" >"$TMP/evaluate.json" 2>"$TMP/evaluate.log" \
    || fail "convoy evaluate exited with $?"

verdict=$(python3 "$ROOT/scripts/check-cluster-result.py" "$TMP/coordinator.json" "$TMP/evaluate.json" "$MIN_ACCURACY" "$N"
) || fail "could not check the results"

case $verdict in
    PASS*) echo "PASS: netns-cluster $SUBNET.0/24 ${verdict#PASS }"; exit 0 ;;
    *)     fail "netns-cluster ${verdict#FAIL }" ;;
esac
