#!/usr/bin/env bash
# The Slurm bar of issue 11 ("Schedulers"): a one-node Slurm started here (munged, slurmctld
# and slurmd in the foreground under a temporary directory, a generated slurm.conf), then
# `sbatch deploy/slurm/convoy.sbatch` (waited on with squeue) with 3 tasks (the coordinator and 2 workers,
# `--from-env`, CURVE keys made per job) trains LeNet-5 on the bundled MNIST for one epoch,
# and the job's output must show a test accuracy of at least 95%. Then a second job is sent
# SIGTERM mid-run (as --signal=B:TERM@120 does): it checkpoints, exits 75, requeues itself
# and continues to the same accuracy. Installs slurm-wlm and
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

# Jobs run in $work/out, the "shared storage" every node (this host) sees; each keeps its keys
# and checkpoints in its default convoy-job-ID directory there. Trailing arguments go to
# the coordinator.
export CONVOY
# submit ARGS...: sets job and out.
submit() {
    # From $work/out: SLURM_SUBMIT_DIR, where the job's directory goes by default.
    job=$(cd "$work/out" && sbatch --parsable --chdir="$work/out" --output="$work/out/job-%j.out" --time=10 \
        "$ROOT/deploy/slurm/convoy.sbatch" --data "$ROOT/data/mnist" --json "$@") || fail "sbatch refused the job"
    out="$work/out/job-$job.out"
    echo "slurm: $(date +%T) submitted job $job ($*)" >&2
}
# wait_job: until the job has left the queue (a requeued job comes back as PENDING).
wait_job() {
    while (( SECONDS < DEADLINE )); do
        state=$(squeue -h -j "$job" -o %T 2>/dev/null || true)
        [[ -z $state ]] && break
        sleep 0.5
    done
    [[ -z ${state:-} ]] || { tail -n 20 "$out" 2>/dev/null; fail "job $job still $state after ${TIMEOUT}s"; }
    [[ -f $out ]] || fail "job $job wrote no output file"
}
# check_trained WHAT: the job's last epoch reached 95% and the job ended with status 0.
check_trained() {
    accuracy=$(grep -oE '"test_accuracy": ?[0-9.]+' "$out" | tail -n 1 | cut -d: -f2 | tr -d ' ')
    [[ -n $accuracy ]] || { tail -n 30 "$out"; fail "$1: job $job reported no test accuracy"; }
    python3 -c "import sys; sys.exit(0 if float('$accuracy') >= 0.95 else 1)" \
        || { tail -n 30 "$out"; fail "$1: test accuracy $accuracy < 0.95"; }
    grep -q "job step ended with exit status 0" "$out" || { tail -n 30 "$out"; fail "$1: job $job did not end with status 0"; }
}

# 1. One epoch through sbatch: the bar.
submit --epochs 1
wait_job
grep -q "listening on tcp://0.0.0.0:" "$out" || { tail -n 30 "$out"; fail "no coordinator bound in job $job's output"; }
[[ $(grep -c "joined (" "$out") -eq 2 ]] || { tail -n 30 "$out"; fail "job $job: not 2 workers joined"; }
check_trained "1 epoch"
grep -E '^convoy:|listening on|joined \(|waiting for' "$out" | head -n 8 | sed 's/^/  job: /'
echo "slurm: job $job trained LeNet-5 through sbatch (coordinator + 2 workers, --from-env, CURVE keys per job):"
echo "  test accuracy $accuracy after 1 epoch (>= 0.95)"
first_accuracy=$accuracy
[[ ! -e $work/out/convoy-job-$job/keys/worker.key ]] || fail "job $job left its secret keys behind"

# 2. Preemption: SIGTERM to the batch shell (what --signal=B:TERM@120 sends before the time
# limit) mid-run: the coordinator checkpoints and exits 75, the script requeues the job, and
# the requeued job continues from the checkpoint to a trained model.
submit --epochs 1 --checkpoint-every 100
checkpoints=$work/out/convoy-job-$job/checkpoints
for _ in $(seq 300); do compgen -G "$checkpoints/*" >/dev/null && break; sleep 0.2; done
compgen -G "$checkpoints/*" >/dev/null || { tail -n 20 "$out"; fail "job $job wrote no checkpoint"; }
scancel --signal=TERM --batch "$job" || fail "scancel --signal=TERM --batch $job failed"
# Slurm holds a requeued job back for a while (its begin time); the test need not wait for it.
for _ in $(seq 300); do grep -q "requeueing job" "$out" && break; sleep 0.2; done
for _ in $(seq 50); do
    [[ $(squeue -h -j "$job" -o %T 2>/dev/null) == PENDING ]] && { scontrol update JobId="$job" StartTime=now; break; }
    sleep 0.2
done
echo "slurm: $(date +%T) job $job requeued" >&2
wait_job
grep -q "requeueing job $job" "$out" || { tail -n 30 "$out"; fail "job $job was not requeued after SIGTERM"; }
grep -q "job $job (restart 1)" "$out" || { tail -n 30 "$out"; fail "requeued job $job did not run again"; }
grep -q "resuming at epoch" "$out" || { tail -n 30 "$out"; fail "requeued job $job did not resume from its checkpoint"; }
check_trained "preempted and requeued"
# Deterministic sums: the continued run is the uninterrupted one, to the last digit.
[[ $accuracy == "$first_accuracy" ]] || fail "the requeued run reached $accuracy, the uninterrupted one $first_accuracy"
grep -E 'SIGTERM|requeueing|restart 1|resuming at|exit status' "$out" | head -n 8 | sed 's/^/  job: /'
echo "slurm: job $job preempted (SIGTERM, exit 75), requeued and continued: test accuracy $accuracy, as uninterrupted"
job=""
echo "PASS"
