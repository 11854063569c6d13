/* core/isa.c - run-time choice of the sparse kernel set (dsnn/isa.h).
 *
 * The three kernel sets are compiled from sparse/kernels.inc by sparse/kernels_scalar.c,
 * sparse/kernels_avx2.c and sparse/kernels_avx512.c, each with its own instruction-set flags;
 * nothing else in libdsnn is built for more than baseline x86-64, so the library runs on any
 * x86-64 CPU. The choice is made once when the library is loaded (a constructor, so no kernel
 * call pays for a check) and can be changed by dsnn_isa_set. */
#include "dsnn/isa.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sparse/sparse_impl.h"

static const char *const isa_names[DSNN_ISA_COUNT] = {"scalar", "avx2", "avx512"};
#if defined(__x86_64__) || defined(__i386__)
static const struct sp_kernels *const isa_tables[DSNN_ISA_COUNT] = {
    &sp_kernels_scalar, &sp_kernels_avx2, &sp_kernels_avx512};
#else /* only the scalar set is built; the others are never supported */
static const struct sp_kernels *const isa_tables[DSNN_ISA_COUNT] = {
    &sp_kernels_scalar, &sp_kernels_scalar, &sp_kernels_scalar};
#endif

static bool isa_ok[DSNN_ISA_COUNT];
static enum dsnn_isa isa_cur = DSNN_ISA_SCALAR;
static const struct sp_kernels *k_cur = &sp_kernels_scalar;
static char cpu_list[64];

/* cpuid for the instructions, xgetbv for the OS saving the registers: __builtin_cpu_supports
 * checks both (XCR0 bits of the ymm / zmm state). */
static void isa_detect(void)
{
    isa_ok[DSNN_ISA_SCALAR] = true;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    isa_ok[DSNN_ISA_AVX2] = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#if defined(DSNN_AVX512_EMULATED) /* the avx512 set built through SIMDe (DSNN_EMULATE_AVX512) */
    isa_ok[DSNN_ISA_AVX512] = isa_ok[DSNN_ISA_AVX2];
#else
    isa_ok[DSNN_ISA_AVX512] = isa_ok[DSNN_ISA_AVX2] && __builtin_cpu_supports("avx512f");
#endif
#endif
    size_t pos = 0;
    for (int i = 0; i < DSNN_ISA_COUNT; i++)
        if (isa_ok[i])
            pos += (size_t)snprintf(cpu_list + pos, sizeof cpu_list - pos, "%s%s",
                                    pos ? " " : "", isa_names[i]);
}

static void isa_use(enum dsnn_isa isa)
{
    isa_cur = isa;
    k_cur = isa_tables[isa];
}

__attribute__((constructor)) static void isa_init(void)
{
    isa_detect();
    isa_use(dsnn_isa_best());
    enum dsnn_isa want;
    const char *e = getenv("DSNN_ISA");
    if (e && dsnn_isa_parse(e, &want) && isa_ok[want])
        isa_use(want); /* anything else is reported by dsnn_isa_init_env */
}

const struct sp_kernels *sp_kernels(void)
{
    return k_cur;
}

const char *dsnn_isa_str(enum dsnn_isa isa)
{
    return (unsigned)isa < DSNN_ISA_COUNT ? isa_names[isa] : "?";
}

bool dsnn_isa_parse(const char *word, enum dsnn_isa *isa)
{
    for (int i = 0; word && i < DSNN_ISA_COUNT; i++)
        if (strcmp(word, isa_names[i]) == 0) {
            *isa = (enum dsnn_isa)i;
            return true;
        }
    return false;
}

bool dsnn_isa_supported(enum dsnn_isa isa)
{
    return (unsigned)isa < DSNN_ISA_COUNT && isa_ok[isa];
}

enum dsnn_isa dsnn_isa_best(void)
{
    enum dsnn_isa best = DSNN_ISA_SCALAR;
    for (int i = 0; i < DSNN_ISA_COUNT; i++)
        if (isa_ok[i])
            best = (enum dsnn_isa)i;
    return best;
}

enum dsnn_isa dsnn_isa_active(void)
{
    return isa_cur;
}

const char *dsnn_isa_cpu_list(void)
{
    return cpu_list;
}

enum dsnn_status dsnn_isa_set(enum dsnn_isa isa, struct dsnn_error *err)
{
    if ((unsigned)isa >= DSNN_ISA_COUNT)
        return dsnn_error_set(err, DSNN_ERR_INVALID, "kernel set %d: no such kernel set",
                              (int)isa);
    if (!isa_ok[isa])
        return dsnn_error_set(err, DSNN_ERR_UNSUPPORTED,
                              "kernel set %s: this CPU cannot run it (it has: %s)",
                              isa_names[isa], cpu_list);
    isa_use(isa);
    return DSNN_OK;
}

enum dsnn_status dsnn_isa_init_env(struct dsnn_error *err)
{
    const char *e = getenv("DSNN_ISA");
    if (!e || !*e || strcmp(e, "auto") == 0)
        return DSNN_OK;
    enum dsnn_isa want;
    if (!dsnn_isa_parse(e, &want))
        return dsnn_error_set(err, DSNN_ERR_CONFIG,
                              "DSNN_ISA=%.64s: unknown kernel set (use scalar, avx2, avx512 or "
                              "auto); this CPU has: %s",
                              e, cpu_list);
    if (!isa_ok[want])
        return dsnn_error_set(err, DSNN_ERR_UNSUPPORTED,
                              "DSNN_ISA=%s: this CPU cannot run the %s kernels; it has: %s", e,
                              want == DSNN_ISA_AVX512 ? "AVX-512" : "AVX2+FMA", cpu_list);
    isa_use(want);
    return DSNN_OK;
}

const char *dsnn_blas_core(void)
{
    const char *c = openblas_get_corename();
    return c ? c : "unknown";
}
