#!/usr/bin/env bash
# Runs the libFuzzer harnesses of a -DDSNN_FUZZ=ON build (tests/fuzz/CMakeLists.txt):
#
#     tests/fuzz/run.sh BUILD_DIR [SECONDS_PER_HARNESS [HARNESS...]]
#
# For every harness (default: all of BUILD_DIR/fuzz/fuzz_*): writes its seed corpus of valid files
# (fuzz_corpus, into BUILD_DIR/fuzz-corpus/seeds/<harness>), runs it once over the seeds and over
# the committed inputs of tests/fuzz/regressions/<harness>/ (inputs that once found a bug), then,
# if SECONDS_PER_HARNESS > 0 (default 3), fuzzes it for that long, growing the corpus in
# BUILD_DIR/fuzz-corpus/work/<harness>. Under ASan/UBSan with leak detection; an input that
# crashes, leaks, exceeds -rss_limit_mb (2048) or runs past -timeout lands in
# BUILD_DIR/fuzz-artifacts/ and makes the script fail (exit 1) after the remaining harnesses ran.
# Extra libFuzzer flags: FUZZ_FLAGS="-max_len=65536 ...".
set -uo pipefail
if [ $# -lt 1 ]; then
    echo "usage: $0 BUILD_DIR [SECONDS_PER_HARNESS [HARNESS...]]" >&2
    exit 2
fi
BUILD="$(cd "$1" && pwd)"
SECS="${2:-3}"
shift $(( $# < 2 ? $# : 2 ))
SRC="$(cd "$(dirname "$0")/../.." && pwd)"
export OPENBLAS_CORETYPE="${OPENBLAS_CORETYPE:-Haswell}"
export OMP_NUM_THREADS=1
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}"
export LSAN_OPTIONS="${LSAN_OPTIONS:-suppressions=$SRC/tests/fuzz/lsan.supp:print_suppressions=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

if [ ! -x "$BUILD/fuzz/fuzz_corpus" ]; then
    echo "$0: $BUILD/fuzz/fuzz_corpus not found; build with:" >&2
    echo "  cmake -S . -B $1 -DDSNN_FUZZ=ON -DCMAKE_C_COMPILER=clang && cmake --build $1 --target fuzz" >&2
    exit 2
fi
if [ $# -gt 0 ]; then
    HARNESSES=("$@")
else
    HARNESSES=()
    for h in "$BUILD"/fuzz/fuzz_*; do
        h="$(basename "$h")"
        [ "$h" != fuzz_corpus ] && HARNESSES+=("$h")
    done
fi

SEEDS="$BUILD/fuzz-corpus/seeds"
rm -rf "$SEEDS"
mkdir -p "$BUILD/fuzz-corpus"
"$BUILD/fuzz/fuzz_corpus" "$SEEDS" "$SRC" || { echo "$0: fuzz_corpus failed" >&2; exit 1; }
mkdir -p "$BUILD/fuzz-artifacts"

failed=()
for h in "${HARNESSES[@]}"; do
    exe="$BUILD/fuzz/$h"
    work="$BUILD/fuzz-corpus/work/$h"
    log="$BUILD/fuzz-artifacts/$h.log"
    mkdir -p "$work" "$SEEDS/$h"
    dirs=("$SEEDS/$h")
    [ -d "$SRC/tests/fuzz/regressions/$h" ] && dirs+=("$SRC/tests/fuzz/regressions/$h")
    flags=(-artifact_prefix="$BUILD/fuzz-artifacts/$h-" -timeout=25 -rss_limit_mb=2048
           -print_final_stats=1 ${FUZZ_FLAGS:-})
    echo "== $h: $(find "${dirs[@]}" -type f | wc -l) seed and regression inputs"
    if ! "$exe" "${flags[@]}" -runs=0 "${dirs[@]}" >"$log" 2>&1; then
        echo "$h: FAILED on its seeds or regression inputs (log: $log)"
        grep -E "ERROR|SUMMARY|Test unit written" "$log" | head -5
        failed+=("$h")
        continue
    fi
    if [ "$SECS" -gt 0 ]; then
        if ! "$exe" "${flags[@]}" -max_total_time="$SECS" "$work" "${dirs[@]}" >"$log" 2>&1; then
            echo "$h: FAILED while fuzzing (log: $log)"
            grep -E "ERROR|SUMMARY|Test unit written" "$log" | head -5
            failed+=("$h")
            continue
        fi
    fi
    grep -E "^#[0-9]+.*(DONE|INITED)" "$log" | tail -1
    grep -E "^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)" "$log" | tr '\n' ' '
    echo
done

if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzzing failed: ${failed[*]} (inputs in $BUILD/fuzz-artifacts/)"
    exit 1
fi
echo "fuzzing: ${#HARNESSES[@]} harness(es) passed"
