/* core/core_impl.h (private) - what core/ shares with the rest of libdsnn: element-wise loops
 * built for several instruction sets, and configuration helpers for core/keys.c.
 *
 * MULTIVERSION before a function definition compiles it for baseline x86-64, AVX2 and
 * AVX-512 (GCC / clang target_clones); the dynamic loader picks the version for the CPU (ifunc).
 * Only for loops without reductions: ISO C mode (-std=c11) does not contract a * b + c into a
 * fused multiply-add, so every version computes bit-identical results, whatever the vector
 * width. The sparse engine's kernels, whose results differ in rounding between sets, are
 * dispatched explicitly instead (isa.c, DSNN_ISA). */
#ifndef DSNN_CORE_IMPL_H
#define DSNN_CORE_IMPL_H

#if defined(__x86_64__) && defined(__ELF__) && (defined(__GNUC__) || defined(__clang__)) &&       \
    !defined(DSNN_NO_MULTIVERSION)
#define MULTIVERSION __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define MULTIVERSION
#endif

#include <stddef.h>
#include "dsnn/config.h"

/* Number of elements of the array or list `key` of cfg (0 when absent or a scalar). */
size_t cfg_key_count(const struct dsnn_cfg *cfg, const char *key);
/* "FILE:LINE: key 'group.key': what" (DSNN_ERR_CONFIG), the style of every key error. */
enum dsnn_status cfg_key_error(const struct dsnn_cfg *cfg, const char *key,
                               struct dsnn_error *err, const char *what);

#endif
