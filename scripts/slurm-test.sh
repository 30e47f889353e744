#!/usr/bin/env bash
# The Slurm bar of issue 11 ("Schedulers"): a one-node Slurm started here (munged, slurmctld
# and slurmd in the foreground under a temporary directory, a generated slurm.conf), then
# `sbatch --wait deploy/slurm/convoy.sbatch` with 3 tasks (the coordinator and 2 workers,
# `--from-env`, CURVE keys made per job) trains LeNet-5 on the bundled MNIST for one epoch,
# and the job's output must show a test accuracy of at least 95%. Installs slurm-wlm and
# munge with apt-get when missing (test-only tools: never scripts/setup.sh). Prints SKIP and
# exits 0 where the daemons cannot start (no apt, no root, a sandbox that forbids them).
#   scripts/slurm-test.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/lib.sh"
TIMEOUT=${TIMEOUT:-220}   # the whole test stays under 4 minutes
DEADLINE=$((SECONDS + TIMEOUT))
fail() { echo "FAIL: $*"; exit 1; }
skip() { echo "SKIP: $*"; exit 0; }

[[ $(id -u) -eq 0 ]] || skip "starting slurmctld and slurmd here needs root"
if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null || ! command -v sbatch >/dev/null; then
    command -v apt-get >/dev/null || skip "slurm-wlm and munge are missing and there is no apt-get"
    echo "installing slurm-wlm and munge (test-only)..." >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null 2>&1 \
        || { apt-get update -qq >/dev/null 2>&1 \
            && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null 2>&1; } \
        || skip "apt-get could not install slurm-wlm and munge"
fi
find_convoy

work=$(mktemp -d /tmp/convoy-slurm.XXXXXX)
chmod 0755 "$work"
pids=()
cleanup() {
    # Jobs first (their steps are children of slurmd), then the daemons, each by its PID.
    [[ -n ${job:-} ]] && SLURM_CONF="$work/slurm.conf" scancel "$job" 2>/dev/null || true
    stop_pids "${pids[@]}"
    rm -rf "$work"
}
trap cleanup EXIT

# munged with its own socket and key, so a munged already on this host is left alone.
mkdir -p "$work/munge" "$work/state" "$work/spool" "$work/out"
chmod 0700 "$work/munge"
head -c 1024 /dev/urandom >"$work/munge/munge.key"
chmod 0400 "$work/munge/munge.key"
munged -F -f --socket="$work/munge/munge.sock" --key-file="$work/munge/munge.key" \
    --pid-file="$work/munge/munged.pid" --log-file="$work/munge/munged.log" \
    --seed-file="$work/munge/munged.seed" 2>"$work/munge/stderr" &
pids+=($!)
for _ in $(seq 50); do [[ -S $work/munge/munge.sock ]] && break; sleep 0.1; done
[[ -S $work/munge/munge.sock ]] || skip "munged did not start: $(tail -n 2 "$work/munge/stderr" "$work/munge/munged.log" 2>/dev/null | tr '\n' ' ')"

node=$(hostname -s)
getent hosts "$node" >/dev/null || skip "this host's name $node does not resolve; the workers could not reach the coordinator"
ctld_port=$(free_port) slurmd_port=$(free_port)
# 4 CPUs declared on a host that may have fewer (config_overrides): the coordinator and two
# single-threaded workers each get a task slot, as on a real cluster with 3 cores free.
cat >"$work/slurm.conf" <<CONF
ClusterName=convoytest
SlurmctldHost=$node
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$work/munge/munge.sock
StateSaveLocation=$work/state
SlurmdSpoolDir=$work/spool
SlurmctldPidFile=$work/slurmctld.pid
SlurmdPidFile=$work/slurmd.pid
SlurmctldLogFile=$work/slurmctld.log
SlurmdLogFile=$work/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SlurmdParameters=config_overrides
ReturnToService=2
NodeName=$node CPUs=4 State=UNKNOWN
PartitionName=convoy Nodes=$node Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
CONF
export SLURM_CONF="$work/slurm.conf"

slurmctld -D -i -f "$SLURM_CONF" >"$work/slurmctld.stderr" 2>&1 &
pids+=($!)
slurmd -D -f "$SLURM_CONF" >"$work/slurmd.stderr" 2>&1 &
pids+=($!)
ready=""
for _ in $(seq 100); do
    state=$(sinfo -h -n "$node" -o %t 2>/dev/null || true)
    [[ $state == idle* ]] && { ready=1; break; }
    kill -0 "${pids[1]}" 2>/dev/null && kill -0 "${pids[2]}" 2>/dev/null || break
    sleep 0.2
done
[[ -n $ready ]] || skip "slurmctld/slurmd did not bring node $node up (state '${state:-none}'): \
$(tail -n 3 "$work/slurmctld.log" "$work/slurmd.log" "$work/slurmctld.stderr" "$work/slurmd.stderr" 2>/dev/null | tr '\n' ' ' | cut -c1-600)"
echo "slurm: node $node up (slurmctld pid ${pids[1]}, slurmd pid ${pids[2]})" >&2

# The job's shared directory is $work/out (every "node" is this host); the binary and data
# come from the checkout. Trailing arguments go to the coordinator.
export CONVOY CONVOY_JOB_DIR="$work/out"
budget=$((DEADLINE - SECONDS - 10))
job=$(sbatch --parsable --chdir="$work/out" --output="$work/out/job-%j.out" --time=10 \
    "$ROOT/deploy/slurm/convoy.sbatch" --data "$ROOT/data/mnist" --epochs 1 --json) \
    || fail "sbatch refused the job"
echo "slurm: submitted job $job; waiting at most ${budget}s" >&2
while (( SECONDS < DEADLINE - 10 )); do
    state=$(squeue -h -j "$job" -o %T 2>/dev/null || true)
    [[ -z $state ]] && break
    sleep 1
done
out="$work/out/job-$job.out"
[[ -z ${state:-} ]] || { cat "$out" 2>/dev/null | tail -n 20; fail "job $job still $state after ${TIMEOUT}s"; }
job_done=$job; job=""
[[ -f $out ]] || fail "job $job_done wrote no output file"
grep -q "SLURM_PROCID\|listening on tcp://0.0.0.0" "$out" || { tail -n 30 "$out"; fail "no coordinator in job $job_done's output"; }
accuracy=$(grep -oE '"test_accuracy": ?[0-9.]+' "$out" | tail -n 1 | cut -d: -f2 | tr -d ' ')
[[ -n $accuracy ]] || { tail -n 30 "$out"; fail "job $job_done reported no test accuracy"; }
workers=$(grep -c "joined" "$out" || true)
python3 -c "import sys; sys.exit(0 if float('$accuracy') >= 0.95 else 1)" \
    || { tail -n 30 "$out"; fail "test accuracy $accuracy < 0.95 after 1 epoch"; }
grep -q "exit status 0" "$out" || { tail -n 30 "$out"; fail "the job did not end with status 0"; }
grep -E '^convoy:|listening on|joined|waiting for' "$out" | head -n 12 | sed 's/^/  job: /'
echo "slurm: job $job_done trained LeNet-5 through sbatch (3 tasks: coordinator + 2 workers, CURVE keys per job):"
echo "  test accuracy $accuracy after 1 epoch (>= 0.95); worker join lines: $workers"
echo "PASS"
