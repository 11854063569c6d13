#!/bin/bash
# tests/bench/conv-bench-set.sh - the convolution benchmark set in one run, for same-run ratios:
# for each network, dsnn-bench-conv with OPENBLAS_CORETYPE=Haswell (the tests' and CI's
# setting), PyTorch (tests/bench/torch-bench-conv.py under /usr/bin/python3, when it imports
# torch) right after, then dsnn-bench-conv with OpenBLAS's own choice of core. One JSON line per
# configuration as the programs print them, each preceded by a '# ' line naming the run.
# --layers 1 adds, at the end, every convolution shape alone (dsnn-bench-conv --layers at the
# same densities, then torch-bench-conv.py --layers), both with the Haswell core.
# --repeat N runs each network configuration N times (interleaved) and keeps the fastest, in both
# programs: on a shared machine, where one run can be 25 % off the next, use 3 or more.
# --rounds N runs the whole per-network sequence (dsnn Haswell core, PyTorch, dsnn own core) N
# times, so that the two programs alternate, and ends with one '# ratios' line per network:
# PyTorch's step over dsnn's dense step (Haswell core) in each round, then over the fastest of
# each program across rounds (> 1: dsnn's dense path is faster). The machine's speed drifts over
# minutes; a ratio taken within one round compares the programs at nearly the same moment.
#
#   tests/bench/conv-bench-set.sh [--bin build/bin] [--nets resnet18,vgg16]
#                                 [--densities 1.0,0.5,0.1] [--steps 3] [--batch 128]
#                                 [--threads 2] [--layers 0|1] [--repeat 1] [--rounds 1]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=build/bin nets=resnet18,vgg16 densities=1.0,0.5,0.1 steps=3 batch=128 threads=2 layers=0
repeat=1 rounds=1
while [ $# -gt 0 ]; do
    [ $# -ge 2 ] || { echo "conv-bench-set.sh: option '$1' needs a value" >&2; exit 2; }
    case "$1" in
    --bin) bin=$2 ;;
    --nets) nets=$2 ;;
    --densities) densities=$2 ;;
    --steps) steps=$2 ;;
    --batch) batch=$2 ;;
    --threads) threads=$2 ;;
    --layers) layers=$2 ;;
    --repeat) repeat=$2 ;;
    --rounds) rounds=$2 ;;
    *) echo "conv-bench-set.sh: unknown option '$1'" >&2; exit 2 ;;
    esac
    shift 2
done
bench="$bin/dsnn-bench-conv"
[ -x "$bench" ] || { echo "conv-bench-set.sh: no $bench (build first)" >&2; exit 2; }
have_torch=0
/usr/bin/python3 -c 'import torch' 2>/dev/null && have_torch=1

echo "# $(date -u '+%Y-%m-%d %H:%M:%S UTC'), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(nproc) cpus, avx512f: $(grep -qw avx512f /proc/cpuinfo && echo yes || echo no), repeat $repeat"
IFS=, read -r -a list <<<"$nets"
# the seconds_per_step of the line of config "1.0" (dsnn) or of the PyTorch line
dense_s() { sed -n 's/.*"config":"1\.0".*"seconds_per_step":\([0-9.]*\).*/\1/p' | head -n 1; }
torch_s() { sed -n 's/.*"seconds_per_step": *\([0-9.]*\).*/\1/p' | head -n 1; }
declare -A ratios best_d best_t
for ((r = 1; r <= rounds; r++)); do
    for net in "${list[@]}"; do
        args=(--net "$net" --densities "$densities" --steps "$steps" --batch "$batch"
              --threads "$threads" --repeat "$repeat")
        [ "$rounds" = 1 ] && tag="" || tag=" (round $r of $rounds)"
        echo "# $net, OPENBLAS_CORETYPE=Haswell$tag"
        out=$(OPENBLAS_CORETYPE=Haswell "$bench" "${args[@]}")
        echo "$out"
        d=$(dense_s <<<"$out")
        if [ "$have_torch" = 1 ]; then
            echo "# $net, PyTorch$tag"
            tout=$(OPENBLAS_CORETYPE=Haswell /usr/bin/python3 "$here/torch-bench-conv.py" --net "$net" \
                --steps "$steps" --batch "$batch" --threads "$threads" --repeat "$repeat" | tail -n 1)
            echo "$tout"
            t=$(torch_s <<<"$tout")
            if [ -n "$d" ] && [ -n "$t" ]; then
                ratios[$net]+=" $(awk -v t="$t" -v d="$d" 'BEGIN { printf "%.3f", t / d }')"
                best_d[$net]=$(awk -v a="${best_d[$net]:-1e30}" -v b="$d" 'BEGIN { print (b < a ? b : a) }')
                best_t[$net]=$(awk -v a="${best_t[$net]:-1e30}" -v b="$t" 'BEGIN { print (b < a ? b : a) }')
            fi
        else
            echo "# $net, PyTorch: /usr/bin/python3 cannot import torch (apt-get install python3-torch)"
        fi
        echo "# $net, OpenBLAS's own core$tag"
        env -u OPENBLAS_CORETYPE "$bench" "${args[@]}"
    done
done
for net in "${list[@]}"; do
    [ -n "${ratios[$net]:-}" ] || continue
    echo "# ratios $net: PyTorch s/step over dsnn dense s/step per round:${ratios[$net]};" \
        "fastest of each: $(awk -v t="${best_t[$net]}" -v d="${best_d[$net]}" 'BEGIN { printf "%.3f (%s vs %s s)", t / d, t, d }')"
done
if [ "$layers" = 1 ]; then
    echo "# each convolution alone, OPENBLAS_CORETYPE=Haswell"
    OPENBLAS_CORETYPE=Haswell "$bench" --layers --densities "$densities" --steps "$steps" \
        --batch "$batch" --threads "$threads"
    if [ "$have_torch" = 1 ]; then
        echo "# each convolution alone, PyTorch"
        OPENBLAS_CORETYPE=Haswell /usr/bin/python3 "$here/torch-bench-conv.py" --layers \
            --steps "$steps" --batch "$batch" --threads "$threads"
    fi
fi
