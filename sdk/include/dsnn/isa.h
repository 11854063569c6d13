/* dsnn/isa.h - the instruction set of the sparse engine's kernels, chosen at run time.
 *
 * One libdsnn holds every kernel set (scalar, AVX2+FMA, AVX-512); when the library is loaded it
 * picks the best one that the CPU and the operating system support (cpuid / xgetbv), unless the
 * environment variable DSNN_ISA names one:
 *
 *     DSNN_ISA=scalar|avx2|avx512   force that kernel set
 *     DSNN_ISA unset, empty, "auto" the best the CPU has
 *
 * A DSNN_ISA that the CPU cannot run, or an unknown word, is not applied; dsnn_isa_init_env
 * reports it (dsnn-host, the tests and the benchmarks call it first and exit with status 2).
 * All kernel sets compute the same sums in the same order; they differ only in rounding (fused
 * multiply-add, order of horizontal sums), so results agree to float tolerance, not bit for bit.
 * Within one kernel set, results do not depend on the number of threads. */
#ifndef DSNN_ISA_H
#define DSNN_ISA_H

#include <stdbool.h>
#include "dsnn/export.h"
#include "dsnn/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Values are part of the ABI: append only. */
enum dsnn_isa {
    DSNN_ISA_SCALAR = 0, /* portable C (baseline x86-64 or any other CPU) */
    DSNN_ISA_AVX2 = 1,   /* AVX2 + FMA, 8-wide */
    DSNN_ISA_AVX512 = 2  /* AVX-512F, 16-wide */
};
#define DSNN_ISA_COUNT 3

/* "scalar", "avx2", "avx512"; "?" for a value out of range. Never NULL. */
DSNN_API const char *dsnn_isa_str(enum dsnn_isa isa);
/* Parses one of the names above (exact, lower case). false if word is none of them. */
DSNN_API bool dsnn_isa_parse(const char *word, enum dsnn_isa *isa);
/* Whether this CPU and OS can run the kernel set (and the build holds it). */
DSNN_API bool dsnn_isa_supported(enum dsnn_isa isa);
/* The best supported kernel set. */
DSNN_API enum dsnn_isa dsnn_isa_best(void);
/* The kernel set in use. */
DSNN_API enum dsnn_isa dsnn_isa_active(void);
/* The supported kernel sets, best last, e.g. "scalar avx2 avx512" (static storage). */
DSNN_API const char *dsnn_isa_cpu_list(void);
/* Switches the kernel set. DSNN_ERR_UNSUPPORTED (message names what the CPU has) if the CPU
 * cannot run it. Not thread-safe: call it while no kernel runs (at start, or between passes). */
DSNN_API enum dsnn_status dsnn_isa_set(enum dsnn_isa isa, struct dsnn_error *err);
/* Applies DSNN_ISA from the environment (see the file comment). DSNN_ERR_CONFIG for an unknown
 * word, DSNN_ERR_UNSUPPORTED for a kernel set the CPU lacks; the message says
 * "DSNN_ISA=<word>: ..." and names what the CPU has. DSNN_OK (and no change) when unset. */
DSNN_API enum dsnn_status dsnn_isa_init_env(struct dsnn_error *err);
/* The core OpenBLAS runs its dense kernels for (openblas_get_corename(), e.g. "Haswell",
 * "SkylakeX", "Zen"); set by OPENBLAS_CORETYPE if given. Static storage, never NULL. */
DSNN_API const char *dsnn_blas_core(void);

#ifdef __cplusplus
}
#endif
#endif
