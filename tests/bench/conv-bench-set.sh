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
#
#   tests/bench/conv-bench-set.sh [--bin build/bin] [--nets resnet18,vgg16]
#                                 [--densities 1.0,0.5,0.1] [--steps 3] [--batch 128]
#                                 [--threads 2] [--layers 0|1] [--repeat 1]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=build/bin nets=resnet18,vgg16 densities=1.0,0.5,0.1 steps=3 batch=128 threads=2 layers=0
repeat=1
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
for net in "${list[@]}"; do
    args=(--net "$net" --densities "$densities" --steps "$steps" --batch "$batch" --threads "$threads"
          --repeat "$repeat")
    echo "# $net, OPENBLAS_CORETYPE=Haswell"
    OPENBLAS_CORETYPE=Haswell "$bench" "${args[@]}"
    if [ "$have_torch" = 1 ]; then
        echo "# $net, PyTorch"
        OPENBLAS_CORETYPE=Haswell /usr/bin/python3 "$here/torch-bench-conv.py" --net "$net" \
            --steps "$steps" --batch "$batch" --threads "$threads" --repeat "$repeat" | tail -n 1
    else
        echo "# $net, PyTorch: /usr/bin/python3 cannot import torch (apt-get install python3-torch)"
    fi
    echo "# $net, OpenBLAS's own core"
    env -u OPENBLAS_CORETYPE "$bench" "${args[@]}"
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
