/* core/core_impl.h (private) - element-wise loops built for several instruction sets.
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

#endif
