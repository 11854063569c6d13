#!/usr/bin/env bash
# tests/scripts/check-exports.sh LIB - libdsnn exports its public API only: every defined dynamic
# symbol is dsnn_* (declared DSNN_API in sdk/include/dsnn/*.h) and every dsnn_* symbol of the
# headers' DSNN_API functions is exported. Internal functions (sp_*, cv_*, ly_* ...) stay hidden.
# (A sanitizer build adds its own __odr_asan / __asan symbols: those are not ours.)
set -euo pipefail
lib=$1
src=$(cd "$(dirname "$0")/../.." && pwd)
exported=$(nm -D --defined-only "$lib" | awk '{print $3}' | grep -v -E '^(__bss_start|_edata|_end|_init|_fini|__odr_asan[._].*|__asan_.*|__ubsan_.*)$' | sort)
bad=$(printf '%s\n' "$exported" | grep -v '^dsnn_' || true)
if [ -n "$bad" ]; then
    echo "FAIL: $lib exports symbols outside the public dsnn_ API:"; echo "$bad"; exit 1
fi
# Every DSNN_API function declared in the public headers must be exported.
declared=$(grep -h -o -E 'DSNN_API [^;(]*[^a-z0-9_](dsnn_[a-z0-9_]+) *\(' "$src"/sdk/include/dsnn/*.h |
           sed -E 's/.*(dsnn_[a-z0-9_]+) *\($/\1/' | sort -u)
missing=$(comm -23 <(printf '%s\n' "$declared") <(printf '%s\n' "$exported") || true)
if [ -n "$missing" ]; then
    echo "FAIL: declared DSNN_API but not exported by $lib:"; echo "$missing"; exit 1
fi
echo "ok: $(printf '%s\n' "$exported" | wc -l) exported symbols, all dsnn_*; $(printf '%s\n' "$declared" | wc -l) declared functions all exported"
