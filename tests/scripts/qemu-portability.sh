#!/usr/bin/env bash
# qemu-portability.sh BUILD_DIR [QEMU] - the default (portable) build runs on older x86-64 CPUs
# and picks their kernel set: under qemu-x86_64 (Debian qemu-user) with
#   -cpu Haswell  (AVX2 + FMA, no AVX-512): the host says "sparse kernels avx2", refuses
#                 DSNN_ISA=avx512 with exit 2, and trains a SET model (no SIGILL) to results
#                 bit-identical to a native run with DSNN_ISA=avx2;
#   -cpu Nehalem  (SSE4.2, no AVX): "sparse kernels scalar", and the same training equals a native
#                 run with DSNN_ISA=scalar.
# OpenBLAS is given the emulated CPU's core (OPENBLAS_CORETYPE) in both the emulated and the
# native run, so the dense output layer computes the same in both. Timings are left out of the
# comparison. Exit 0 on success, 1 on a failed check.
set -uo pipefail
BUILD="${1:?usage: qemu-portability.sh BUILD_DIR [QEMU]}"
QEMU="${2:-qemu-x86_64}"
HERE="$(cd "$(dirname "$0")" && pwd)"
CFG="$HERE/qemu_set_synthetic.cfg"
HOST="$BUILD/bin/dsnn-host"
PLUG="$BUILD/plugins"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
fails=0
passes=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
pass() { echo "   ok: $*"; passes=$((passes + 1)); }
NATIVE_ISAS="$("$HOST" --version | sed -n 's/.*this CPU has: \(.*\))/\1/p')"

# result.json without the wall-clock fields
results() { sed -E 's/"(time_[a-z_]+|timestamp)": [-0-9.e+]+(, )?//g' "$1/qemu_set/trial_00000/result.json"; }

check_cpu() { # qemu cpu model, OpenBLAS core, expected kernel set
    local cpu="$1" core="$2" isa="$3"
    echo "== qemu -cpu $cpu (OPENBLAS_CORETYPE=$core): expecting the $isa kernels"
    local v
    v="$(OPENBLAS_CORETYPE=$core "$QEMU" -cpu "$cpu" "$HOST" --version 2>/dev/null)"
    echo "$v" | sed 's/^/   /'
    if echo "$v" | grep -q "sparse kernels $isa "; then pass "$cpu: $isa kernels chosen"
    else fail "$cpu: --version does not say 'sparse kernels $isa'"; fi
    OPENBLAS_CORETYPE=$core DSNN_ISA=avx512 "$QEMU" -cpu "$cpu" "$HOST" --version >/dev/null 2>"$WORK/err"
    local rc=$?
    if [ "$rc" -eq 2 ] && grep -q "DSNN_ISA=avx512" "$WORK/err"; then pass "$cpu: DSNN_ISA=avx512 refused (exit 2)"
    else fail "$cpu: DSNN_ISA=avx512 exited $rc (want 2 and a message)"; fi
    OPENBLAS_CORETYPE=$core "$QEMU" -cpu "$cpu" "$HOST" --plugin-dir "$PLUG" run "$CFG" \
        --results "$WORK/emu-$cpu" --overwrite --quiet 2>"$WORK/emu.err"
    rc=$?
    if [ "$rc" -ne 0 ]; then
        fail "$cpu: training under qemu exited $rc"; grep -v "TCG doesn't support" "$WORK/emu.err" | tail -5
        return
    fi
    pass "$cpu: a SET model trained under qemu (exit 0)"
    case " $NATIVE_ISAS " in *" $isa "*) ;; *) echo "   (this CPU lacks $isa: no native comparison)"; return ;; esac
    OPENBLAS_CORETYPE=$core DSNN_ISA=$isa "$HOST" --plugin-dir "$PLUG" run "$CFG" \
        --results "$WORK/native-$isa" --overwrite --quiet || { fail "native DSNN_ISA=$isa run failed"; return; }
    if results "$WORK/emu-$cpu" | cmp -s - <(results "$WORK/native-$isa"); then
        pass "$cpu: $(results "$WORK/emu-$cpu" | wc -l) epochs bit-identical to the native DSNN_ISA=$isa run"
    else
        fail "$cpu: results differ from the native DSNN_ISA=$isa run"
    fi
}

command -v "$QEMU" >/dev/null || { echo "FAIL: $QEMU not found (Debian package qemu-user)"; exit 1; }
check_cpu Haswell Haswell avx2
check_cpu Nehalem Nehalem scalar
# the kernel sets really differ on this config (otherwise the comparisons above prove nothing)
if [ -d "$WORK/native-avx2" ]; then
    OPENBLAS_CORETYPE=Haswell DSNN_ISA=scalar "$HOST" --plugin-dir "$PLUG" run "$CFG" \
        --results "$WORK/native-scalar-h" --overwrite --quiet
    if results "$WORK/native-scalar-h" | cmp -s - <(results "$WORK/native-avx2"); then
        fail "scalar and avx2 gave identical results: the config does not tell the sets apart"
    else
        pass "scalar and avx2 results differ on this config (the comparisons are meaningful)"
    fi
fi
echo "$passes passed, $fails failed"
[ "$fails" -eq 0 ]
