#!/usr/bin/env bash
# check-mpi.sh BUILD_DIR - dsnn-host over Open MPI ranks (runner_mpi.c) against local runs:
#   1. a 6-trial grid over 3 ranks (rank 0 + 2 workers) equals the local run, bit for bit
#      (every result line but its times; statuses); the journal names the rank of each trial;
#   2. the same for a random search;
#   3. kill -9 of a worker rank in the middle of a run ends the MPI job; `mpirun ... resume`
#      continues it; a second kill, then a local `resume`, finishes it: the final results equal
#      the uninterrupted run's, nothing lost or duplicated;
#   4. a trial process that crashes on a worker is one ERROR trial (exit 1), as locally;
#   5. the timing of a 12-trial grid, local and over 3 ranks (printed, not checked).
# Needs a build with MPI (libopenmpi-dev found) and mpirun; as root, --allow-run-as-root is
# added; --oversubscribe lets 3 ranks share 2 cores. Exit 0 if every check passed.
set -euo pipefail
BUILD="$(cd "${1:?usage: check-mpi.sh BUILD_DIR}" && pwd)"
HOST="$BUILD/bin/dsnn-host"
P="$BUILD/plugins"
T="$(mktemp -d "${TMPDIR:-/tmp}/dsnn-mpi-XXXXXX")"
trap 'rm -rf "$T"' EXIT
export OPENBLAS_CORETYPE="${OPENBLAS_CORETYPE:-Haswell}"
fail() { echo "check-mpi: FAILED: $*" >&2; exit 1; }
step() { echo "== check-mpi: $*"; }
command -v mpirun >/dev/null || fail "no mpirun (apt-get install openmpi-bin)"
MPIRUN=(mpirun --oversubscribe -np 3)
[ "$(id -u)" -ne 0 ] || MPIRUN=(mpirun --allow-run-as-root --oversubscribe -np 3)
export OMPI_MCA_rmaps_base_oversubscribe=1

cfg() { # cfg FILE NAME EPOCHS SEARCH: 6 trials of a SET MLP on generated data, 1 thread each
    cat >"$1" <<EOF
experiment = { name = "$2"; epochs = $3; parallel = 1; threads = 1; seed = 11;
               checkpoint_freq = 1; num_samples = ${NUM_SAMPLES:-1}; };
dataset = { plugin = "synthetic"; n_classes = 5; shape = [48]; n_train = ${N_TRAIN:-600};
            n_test = 150; separation = 0.3; };
network = { plugin = "mlp"; hidden_sizes = [${HIDDEN:-96}, 48]; };
model = { plugin = "set"; on_perc = 0.3; learning_rate = 0.1; momentum = 0.9; };
search = $4;
EOF
}
GRID='{ plugin = "grid"; grid = { model = { learning_rate = [0.1, 0.05, 0.02];
                                              on_perc = [0.2, 0.4]; }; }; }'
RANDOM_S='{ plugin = "random";
            space = { model = { learning_rate = { dist = "loguniform"; low = 0.01; high = 0.2; };
                                on_perc = [0.1, 0.2, 0.4]; }; }; }'

# same DIR_A DIR_B: the same trials with the same result lines (times aside) and statuses
same() {
    local a="$1" b="$2" n=0
    for ta in "$a"/trial_*; do
        local tb="$b/$(basename "$ta")"
        [ -f "$tb/result.json" ] || fail "$tb/result.json missing"
        diff <(sed -E 's/"(time_[a-z_]+|timestamp)": [^,}]+//g' "$ta/result.json") \
             <(sed -E 's/"(time_[a-z_]+|timestamp)": [^,}]+//g' "$tb/result.json") >/dev/null ||
            fail "$(basename "$ta"): results differ between $a and $b"
        n=$((n + 1))
    done
    [ "$(ls -d "$b"/trial_* | wc -l)" -eq "$n" ] || fail "$b has another number of trials than $a"
    diff <(grep -o '"event": "trial_finished", "trial_id": "[^"]*", "status": "[A-Z]*"' "$a/journal.jsonl" | sort) \
         <(grep -o '"event": "trial_finished", "trial_id": "[^"]*", "status": "[A-Z]*"' "$b/journal.jsonl" | sort) ||
        fail "trial statuses differ between $a and $b"
}

step "6-trial grid: 3 ranks = local"
cfg "$T/grid.cfg" grid 3 "$GRID"
"$HOST" --plugin-dir "$P" run "$T/grid.cfg" --results "$T/local" --quiet
"${MPIRUN[@]}" "$HOST" --plugin-dir "$P" run "$T/grid.cfg" --results "$T/mpi" --quiet
same "$T/local/grid" "$T/mpi/grid"
ranks="$(grep -o '"event": "trial_started".*"rank": [0-9]*' "$T/mpi/grid/journal.jsonl" |
         sed 's/.*"rank": //' | sort -u | tr '\n' ' ')"
[ "$ranks" = "1 2 " ] || fail "the trials did not run on ranks 1 and 2 (journal ranks: $ranks)"
grep -q '"rank": 0' "$T/local/grid/journal.jsonl" || fail "a local run's journal does not say rank 0"

step "random search: 3 ranks = local"
NUM_SAMPLES=6 cfg "$T/random.cfg" random 2 "$RANDOM_S"
"$HOST" --plugin-dir "$P" run "$T/random.cfg" --results "$T/local" --quiet
"${MPIRUN[@]}" "$HOST" --plugin-dir "$P" run "$T/random.cfg" --results "$T/mpi" --quiet
same "$T/local/random" "$T/mpi/random"

step "kill -9 of a worker rank, mpirun resume, kill again, local resume = uninterrupted"
N_TRAIN=3000 HIDDEN=256 cfg "$T/kill.cfg" kill 6 "$GRID"
"$HOST" --plugin-dir "$P" run "$T/kill.cfg" --results "$T/local" --quiet
# rank_pid RANK: the pid of that rank of the running job (from its environment)
rank_pid() {
    for pid in $(pgrep -f "dsnn-host --plugin-dir $P (run|resume)" || true); do
        if tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$1"; then
            echo "$pid"
            return
        fi
    done
}
# kill_worker_after JOURNAL N: waits for N trial_result events, then kill -9 of rank 2
kill_worker_after() {
    for _ in $(seq 1 600); do
        local n
        n="$(grep -c '"event": "trial_result"' "$1" 2>/dev/null || true)"
        if [ "${n:-0}" -ge "$2" ]; then
            local pid
            pid="$(rank_pid 2)"
            if [ -n "$pid" ]; then
                kill -9 "$pid"
                echo "   killed rank 2 (pid $pid) after $(grep -c '"event": "trial_result"' "$1") results"
                return 0
            fi
        fi
        sleep 0.05
    done
    return 1
}
set +e
"${MPIRUN[@]}" "$HOST" --plugin-dir "$P" run "$T/kill.cfg" --results "$T/mpi" --quiet \
    >"$T/kill1.log" 2>&1 &
job=$!
kill_worker_after "$T/mpi/kill/journal.jsonl" 4
killed=$?
wait $job
rc=$?
set -e
[ "$killed" -eq 0 ] || fail "no worker rank to kill (the run: $(tail -5 "$T/kill1.log"))"
[ "$rc" -ne 0 ] || fail "the MPI job went on after a worker rank was killed"
before="$(grep -c '"event": "trial_result"' "$T/mpi/kill/journal.jsonl")"
set +e
"${MPIRUN[@]}" "$HOST" --plugin-dir "$P" resume "$T/mpi/kill" --quiet >"$T/kill2.log" 2>&1 &
job=$!
kill_worker_after "$T/mpi/kill/journal.jsonl" $((before + 6))
wait $job
set -e
"$HOST" --plugin-dir "$P" resume "$T/mpi/kill" --quiet ||
    fail "the local resume failed: $(tail -5 "$T/kill2.log")"
same "$T/local/kill" "$T/mpi/kill"
for t in "$T/mpi/kill"/trial_*; do
    [ "$(wc -l <"$t/result.json")" -eq 6 ] || fail "$(basename "$t"): not 6 result lines"
done

step "a crashing trial process on a worker: one ERROR trial, exit 1"
set +e
"${MPIRUN[@]}" "$HOST" --plugin-dir "$BUILD/test-plugins/ok" run "$(dirname "$0")/../plugins/crash.cfg" \
    --results "$T/crash" --quiet >"$T/crash.log" 2>&1
rc=$?
set -e
[ "$rc" -eq 1 ] || fail "exit $rc, not 1: $(tail -5 "$T/crash.log")"
[ "$(grep -c '"status": "ERROR"' "$T/crash/crash-isolation/journal.jsonl")" -eq 1 ] ||
    fail "not one ERROR trial"
[ "$(grep -c '"status": "TERMINATED"' "$T/crash/crash-isolation/journal.jsonl")" -eq 2 ] ||
    fail "the other two trials did not terminate"
grep -q 'SIGSEGV' "$T/crash/crash-isolation/trial_00001/error.txt" ||
    fail "trial_00001's error does not name the signal"

step "overhead: a 12-trial grid, local (parallel 2) vs 3 ranks (2 workers, parallel 1)"
N_TRAIN=${DSNN_MPI_TIME_TRAIN:-4000} HIDDEN=256 cfg "$T/time.cfg" time 3 '{ plugin = "grid"; grid = { model = {
    learning_rate = [0.1, 0.05, 0.02, 0.01]; on_perc = [0.1, 0.2, 0.4]; }; }; }'
sed 's/parallel = 1;/parallel = 2;/' "$T/time.cfg" >"$T/time2.cfg"
s0=$(date +%s.%N)
"$HOST" --plugin-dir "$P" run "$T/time2.cfg" --results "$T/tl" --quiet
s1=$(date +%s.%N)
"${MPIRUN[@]}" "$HOST" --plugin-dir "$P" run "$T/time.cfg" --results "$T/tm" --quiet
s2=$(date +%s.%N)
same "$T/tl/time" "$T/tm/time"
awk -v a="$s0" -v b="$s1" -v c="$s2" 'BEGIN { printf "   local %.2f s, mpirun -np 3 %.2f s: ratio %.2f\n", b - a, c - b, (c - b) / (b - a) }'
echo "check-mpi: all passed"
