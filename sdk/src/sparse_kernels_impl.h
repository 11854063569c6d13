/* sparse_kernels_impl.h (private) - the sparse engine's compute kernels on feature-major panels,
 * written once and compiled once per instruction set: sparse_kernels_scalar.c,
 * sparse_kernels_avx2.c and sparse_kernels_avx512.c define exactly one of SP_KSET_SCALAR,
 * SP_KSET_AVX2, SP_KSET_AVX512 and SP_KSET_TABLE (the name of the table to define), then include
 * this file; each is built with the flags of its ISA only, and isa.c picks a table at run time.
 * The choice is made by SP_KSET_*, never by the compiler's predefined macros, so a -march=native
 * build still holds three distinct kernel sets.
 *
 * Panels are [n][ld] with ld a multiple of DSNN_SP_PAD and 64-byte aligned rows; a kernel call
 * covers batch columns [j0, j0 + w) with w a multiple of DSNN_SP_PAD and at most DSNN_SP_CHUNK,
 * so a row's slice of the output (w floats) lives in vector registers: 8 ymm with AVX2, 4 zmm
 * with AVX-512. Each connection costs w/VW fused multiply-adds with a memory operand.
 * The scalar set is plain loops (what the compiler makes of them for baseline x86-64). */
#include "sparse_internal.h"

#include <string.h>

#if (defined(SP_KSET_SCALAR) + defined(SP_KSET_AVX2) + defined(SP_KSET_AVX512)) != 1 ||            \
    !defined(SP_KSET_TABLE)
#error "define exactly one of SP_KSET_SCALAR, SP_KSET_AVX2, SP_KSET_AVX512, and SP_KSET_TABLE"
#endif

#if defined(SP_KSET_AVX2) || defined(SP_KSET_AVX512)
#if !defined(__AVX2__) || !defined(__FMA__) || (defined(SP_KSET_AVX512) && !defined(__AVX512F__))
#error "this kernel set must be compiled with its instruction set enabled (see sdk/CMakeLists.txt)"
#endif
#include <immintrin.h>
#endif

#define SP_INLINE static inline __attribute__((always_inline))
/* Connections ahead whose panel rows are prefetched (hides L2 latency: ~18% on Zen). */
#define SP_PREFETCH 6
/* Floats between software prefetches within a row slice: one per 256 bytes. Prefetches take
 * load-port slots, the bottleneck of these kernels (one load per FMA); the hardware's
 * adjacent-line prefetch brings the rest (measured on Zen: 10% faster than one per line). */
#define SP_PREFETCH_STRIDE 64
/* Hides a pointer's provenance from the optimiser so that loads use base + displacement. */
#define SP_OPAQUE(p) __asm__("" : "+r"(p))

#if defined(SP_KSET_AVX512)
#define SP_ISA "avx512"
#define SP_VW 16
typedef __m512 spv;
#define SPV_LOAD(p) _mm512_load_ps(p)
#define SPV_STORE(p, v) _mm512_store_ps((p), (v))
#define SPV_SET1(x) _mm512_set1_ps(x)
#define SPV_FMA(a, b, c) _mm512_fmadd_ps((a), (b), (c))
#define SPV_MUL(a, b) _mm512_mul_ps((a), (b))
#define SPV_ADD(a, b) _mm512_add_ps((a), (b))
#define SPV_MAX(a, b) _mm512_max_ps((a), (b))
/* a where m > 0, else 0 */
#define SPV_KEEP_POS(a, m)                                                                        \
    _mm512_maskz_mov_ps(_mm512_cmp_ps_mask((m), _mm512_setzero_ps(), _CMP_GT_OQ), (a))
SP_INLINE __m256 sp_fold(__m512 a)
{
    return _mm256_add_ps(_mm512_castps512_ps256(a),
                         _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(a), 1)));
}
#elif defined(SP_KSET_AVX2)
#define SP_ISA "avx2"
#define SP_VW 8
typedef __m256 spv;
#define SPV_LOAD(p) _mm256_load_ps(p)
#define SPV_STORE(p, v) _mm256_store_ps((p), (v))
#define SPV_SET1(x) _mm256_set1_ps(x)
#define SPV_FMA(a, b, c) _mm256_fmadd_ps((a), (b), (c))
#define SPV_MUL(a, b) _mm256_mul_ps((a), (b))
#define SPV_ADD(a, b) _mm256_add_ps((a), (b))
#define SPV_MAX(a, b) _mm256_max_ps((a), (b))
#define SPV_KEEP_POS(a, m) _mm256_and_ps((a), _mm256_cmp_ps((m), _mm256_setzero_ps(), _CMP_GT_OQ))
SP_INLINE __m256 sp_fold(__m256 a)
{
    return a;
}
#else
#define SP_ISA "scalar"
#endif

#ifdef SP_VW
#define SP_NVMAX (DSNN_SP_CHUNK / SP_VW)

SP_INLINE float sp_hsum256(__m256 a)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* Horizontal sums of four vectors, in order. */
SP_INLINE __m128 sp_hsum4_256(__m256 a0, __m256 a1, __m256 a2, __m256 a3)
{
    __m256 t0 = _mm256_hadd_ps(a0, a1);
    __m256 t1 = _mm256_hadd_ps(a2, a3);
    __m256 t2 = _mm256_hadd_ps(t0, t1);
    return _mm_add_ps(_mm256_castps256_ps128(t2), _mm256_extractf128_ps(t2, 1));
}

/* ---- y panel rows = sparse rows times x panel (CSR forward; CSC input gradient) ---- */

SP_INLINE void sp_prefetch_row(const float *p, const int NV)
{
    /* the NV vectors of a row slice */
    for (int v = 0; v < NV * SP_VW; v += SP_PREFETCH_STRIDE)
        _mm_prefetch((const char *)(p + v), _MM_HINT_T0);
}

SP_INLINE void spmm_nv(const int NV, const int64_t *ptr, const int32_t *idx, const float *val,
                       const uint32_t *vk, const float *bias, const float *in, size_t ld,
                       float *out, int r0, int r1, bool relu, const float *mask)
{
    const spv zero = SPV_SET1(0.0f);
    if (r0 >= r1)
        return;
    SP_OPAQUE(in); /* loads use base + displacement */
    const int64_t klast = ptr[r1] - 1; /* prefetches stay inside this call's connections */
    for (int r = r0; r < r1; r++) {
        spv acc[SP_NVMAX];
        const spv b = SPV_SET1(bias ? bias[r] : 0.0f);
        for (int v = 0; v < NV; v++)
            acc[v] = b;
        const int64_t k1 = ptr[r + 1];
        int64_t k = ptr[r];
        /* four connections per iteration: fewer loop and address instructions per FMA (the
         * loads are the bottleneck: 12% faster than two per iteration on Zen) */
        for (; k + 4 <= k1; k += 4) {
            for (int q = 0; q < 4; q++) {
                const int64_t kp = k + q + SP_PREFETCH < klast ? k + q + SP_PREFETCH : klast;
                sp_prefetch_row(in + (size_t)idx[kp] * ld, NV);
            }
            const spv w0 = SPV_SET1(val[vk ? vk[k] : (uint64_t)k]);
            const spv w1 = SPV_SET1(val[vk ? vk[k + 1] : (uint64_t)k + 1]);
            const spv w2 = SPV_SET1(val[vk ? vk[k + 2] : (uint64_t)k + 2]);
            const spv w3 = SPV_SET1(val[vk ? vk[k + 3] : (uint64_t)k + 3]);
            const float *p0 = in + (size_t)idx[k] * ld;
            const float *p1 = in + (size_t)idx[k + 1] * ld;
            const float *p2 = in + (size_t)idx[k + 2] * ld;
            const float *p3 = in + (size_t)idx[k + 3] * ld;
            for (int v = 0; v < NV; v++) {
                spv t = SPV_FMA(w0, SPV_LOAD(p0 + v * SP_VW), acc[v]);
                t = SPV_FMA(w1, SPV_LOAD(p1 + v * SP_VW), t);
                t = SPV_FMA(w2, SPV_LOAD(p2 + v * SP_VW), t);
                acc[v] = SPV_FMA(w3, SPV_LOAD(p3 + v * SP_VW), t);
            }
        }
        for (; k < k1; k++) {
            const spv w = SPV_SET1(val[vk ? vk[k] : (uint64_t)k]);
            const float *p = in + (size_t)idx[k] * ld;
            for (int v = 0; v < NV; v++)
                acc[v] = SPV_FMA(w, SPV_LOAD(p + v * SP_VW), acc[v]);
        }
        float *o = out + (size_t)r * ld;
        if (relu)
            for (int v = 0; v < NV; v++)
                acc[v] = SPV_MAX(acc[v], zero);
        if (mask) {
            const float *m = mask + (size_t)r * ld;
            for (int v = 0; v < NV; v++)
                acc[v] = SPV_KEEP_POS(acc[v], SPV_LOAD(m + v * SP_VW));
        }
        for (int v = 0; v < NV; v++)
            SPV_STORE(o + v * SP_VW, acc[v]);
    }
}

#define SPMM_CASE(NV)                                                                             \
    case NV:                                                                                      \
        if (vk)                                                                                   \
            spmm_nv(NV, ptr, idx, val, vk, bias, in, ld, out, r0, r1, relu, mask);                \
        else                                                                                      \
            spmm_nv(NV, ptr, idx, val, NULL, bias, in, ld, out, r0, r1, relu, mask);              \
        break;

static void k_spmm(const int64_t *ptr, const int32_t *idx, const float *val, const uint32_t *vk,
                  const float *bias, const float *in, size_t ld, float *out, int r0, int r1, int w,
                  bool relu, const float *mask)
{
    switch (w / SP_VW) {
#if SP_VW == 8
        SPMM_CASE(1)
        SPMM_CASE(2)
        SPMM_CASE(3)
        SPMM_CASE(4)
        SPMM_CASE(5)
        SPMM_CASE(6)
        SPMM_CASE(7)
        SPMM_CASE(8)
#else
        SPMM_CASE(1)
        SPMM_CASE(2)
        SPMM_CASE(3)
        SPMM_CASE(4)
#endif
    default: break;
    }
}

/* ---- sampled dense-dense product: weight gradient at active connections ---- */

SP_INLINE void sddmm_nv(const int NV, const int64_t *ptr, const int32_t *idx, const float *dyT,
                        const float *xT, size_t ld, float *out, float *db, int r0, int r1)
{
    if (r0 >= r1)
        return;
    SP_OPAQUE(xT);
    const int64_t klast = ptr[r1] - 1;
    for (int r = r0; r < r1; r++) {
        spv d[SP_NVMAX];
        const float *dr = dyT + (size_t)r * ld;
        for (int v = 0; v < NV; v++)
            d[v] = SPV_LOAD(dr + v * SP_VW);
        if (db) {
            spv s = d[0];
            for (int v = 1; v < NV; v++)
                s = SPV_ADD(s, d[v]);
            db[r] = sp_hsum256(sp_fold(s));
        }
        const int64_t k1 = ptr[r + 1];
        int64_t k = ptr[r];
        for (; k + 4 <= k1; k += 4) {
            for (int q = 0; q < 4; q++) {
                const int64_t kp = k + q + SP_PREFETCH < klast ? k + q + SP_PREFETCH : klast;
                sp_prefetch_row(xT + (size_t)idx[kp] * ld, NV);
            }
            const float *p0 = xT + (size_t)idx[k] * ld;
            const float *p1 = xT + (size_t)idx[k + 1] * ld;
            const float *p2 = xT + (size_t)idx[k + 2] * ld;
            const float *p3 = xT + (size_t)idx[k + 3] * ld;
            spv a0 = SPV_MUL(d[0], SPV_LOAD(p0));
            spv a1 = SPV_MUL(d[0], SPV_LOAD(p1));
            spv a2 = SPV_MUL(d[0], SPV_LOAD(p2));
            spv a3 = SPV_MUL(d[0], SPV_LOAD(p3));
            for (int v = 1; v < NV; v++) {
                a0 = SPV_FMA(d[v], SPV_LOAD(p0 + v * SP_VW), a0);
                a1 = SPV_FMA(d[v], SPV_LOAD(p1 + v * SP_VW), a1);
                a2 = SPV_FMA(d[v], SPV_LOAD(p2 + v * SP_VW), a2);
                a3 = SPV_FMA(d[v], SPV_LOAD(p3 + v * SP_VW), a3);
            }
            _mm_storeu_ps(out + k, sp_hsum4_256(sp_fold(a0), sp_fold(a1), sp_fold(a2),
                                                sp_fold(a3)));
        }
        for (; k < k1; k++) {
            const float *p0 = xT + (size_t)idx[k] * ld;
            spv a0 = SPV_MUL(d[0], SPV_LOAD(p0));
            for (int v = 1; v < NV; v++)
                a0 = SPV_FMA(d[v], SPV_LOAD(p0 + v * SP_VW), a0);
            out[k] = sp_hsum256(sp_fold(a0));
        }
    }
}

#define SDDMM_CASE(NV)                                                                            \
    case NV: sddmm_nv(NV, ptr, idx, dyT, xT, ld, out, db, r0, r1); break;

static void k_sddmm(const int64_t *ptr, const int32_t *idx, const float *dyT, const float *xT,
                   size_t ld, float *out, float *db, int r0, int r1, int w)
{
    switch (w / SP_VW) {
#if SP_VW == 8
        SDDMM_CASE(1)
        SDDMM_CASE(2)
        SDDMM_CASE(3)
        SDDMM_CASE(4)
        SDDMM_CASE(5)
        SDDMM_CASE(6)
        SDDMM_CASE(7)
        SDDMM_CASE(8)
#else
        SDDMM_CASE(1)
        SDDMM_CASE(2)
        SDDMM_CASE(3)
        SDDMM_CASE(4)
#endif
    default: break;
    }
}

/* ---- 8x8 transposes ---- */

/* 8x8 transpose without cross-lane permutes (vperm2f128 is slow on Zen): rows r and r + 4 are
 * loaded into the two 128-bit lanes, then in-lane 4x4 transposes give the output rows. */
SP_INLINE void tr4x4_lanes(__m256 r0, __m256 r1, __m256 r2, __m256 r3, float *dst, size_t ds)
{
    __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
    __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
    _mm256_storeu_ps(dst + 0 * ds, _mm256_shuffle_ps(t0, t2, 0x44));
    _mm256_storeu_ps(dst + 1 * ds, _mm256_shuffle_ps(t0, t2, 0xEE));
    _mm256_storeu_ps(dst + 2 * ds, _mm256_shuffle_ps(t1, t3, 0x44));
    _mm256_storeu_ps(dst + 3 * ds, _mm256_shuffle_ps(t1, t3, 0xEE));
}

SP_INLINE __m256 sp_load2x4(const float *lo, const float *hi)
{
    return _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_loadu_ps(lo)), _mm_loadu_ps(hi), 1);
}

SP_INLINE void tr8x8(const float *src, size_t ss, float *dst, size_t ds)
{
    for (int h = 0; h < 8; h += 4) /* source columns h..h+3 -> destination rows h..h+3 */
        tr4x4_lanes(sp_load2x4(src + 0 * ss + h, src + 4 * ss + h),
                    sp_load2x4(src + 1 * ss + h, src + 5 * ss + h),
                    sp_load2x4(src + 2 * ss + h, src + 6 * ss + h),
                    sp_load2x4(src + 3 * ss + h, src + 7 * ss + h), dst + (size_t)h * ds, ds);
}

/* src masked by m > 0 (same layout as src), transposed. */
SP_INLINE __m256 sp_load2x4_relu(const float *lo, const float *hi, const float *mlo,
                                 const float *mhi)
{
    const __m256 m = _mm256_cmp_ps(sp_load2x4(mlo, mhi), _mm256_setzero_ps(), _CMP_GT_OQ);
    return _mm256_and_ps(sp_load2x4(lo, hi), m);
}

SP_INLINE void tr8x8_relu(const float *src, const float *msk, size_t ss, float *dst, size_t ds)
{
    for (int h = 0; h < 8; h += 4)
        tr4x4_lanes(sp_load2x4_relu(src + 0 * ss + h, src + 4 * ss + h, msk + 0 * ss + h,
                                    msk + 4 * ss + h),
                    sp_load2x4_relu(src + 1 * ss + h, src + 5 * ss + h, msk + 1 * ss + h,
                                    msk + 5 * ss + h),
                    sp_load2x4_relu(src + 2 * ss + h, src + 6 * ss + h, msk + 2 * ss + h,
                                    msk + 6 * ss + h),
                    sp_load2x4_relu(src + 3 * ss + h, src + 7 * ss + h, msk + 3 * ss + h,
                                    msk + 7 * ss + h),
                    dst + (size_t)h * ds, ds);
}
#define SP_HAVE_TR8 1

#else /* scalar */

static void k_spmm(const int64_t *ptr, const int32_t *idx, const float *val, const uint32_t *vk,
                  const float *bias, const float *in, size_t ld, float *out, int r0, int r1, int w,
                  bool relu, const float *mask)
{
    float acc[DSNN_SP_CHUNK];
    for (int r = r0; r < r1; r++) {
        const float b = bias ? bias[r] : 0.0f;
        for (int j = 0; j < w; j++)
            acc[j] = b;
        for (int64_t k = ptr[r]; k < ptr[r + 1]; k++) {
            const float v = val[vk ? vk[k] : (uint64_t)k];
            const float *p = in + (size_t)idx[k] * ld;
            for (int j = 0; j < w; j++)
                acc[j] += v * p[j];
        }
        if (relu)
            for (int j = 0; j < w; j++)
                acc[j] = acc[j] > 0.0f ? acc[j] : 0.0f;
        if (mask)
            for (int j = 0; j < w; j++)
                acc[j] = mask[(size_t)r * ld + j] > 0.0f ? acc[j] : 0.0f;
        memcpy(out + (size_t)r * ld, acc, sizeof(float) * (size_t)w);
    }
}

static void k_sddmm(const int64_t *ptr, const int32_t *idx, const float *dyT, const float *xT,
                   size_t ld, float *out, float *db, int r0, int r1, int w)
{
    for (int r = r0; r < r1; r++) {
        const float *d = dyT + (size_t)r * ld;
        if (db) {
            float s = 0;
            for (int j = 0; j < w; j++)
                s += d[j];
            db[r] = s;
        }
        for (int64_t k = ptr[r]; k < ptr[r + 1]; k++) {
            const float *p = xT + (size_t)idx[k] * ld;
            float s = 0;
            for (int j = 0; j < w; j++)
                s += d[j] * p[j];
            out[k] = s;
        }
    }
}
#endif

/* ---- transposes between sample-major activations and feature-major panels ---- */

/* Loop order: a block of 8 features outer, the chunk's samples inner, so a panel row (the chunk
 * of one feature, a few cache lines) is completed while in L1 and the source lines touched
 * (8 features of each sample) are reused by the next block while still in L1. */
SP_INLINE void transpose_in(const float *x, const float *m, int n, int batch, float *xT,
                            size_t ld, int i0, int i1, int j0, int j1)
{
    for (int i = i0; i < i1; i += 8) {
        const int iw = i1 - i < 8 ? i1 - i : 8;
        float *di = xT + (size_t)i * ld;
        for (int j = j0; j < j1; j += 8) {
            int jv = batch - j;
            jv = jv < 0 ? 0 : jv > 8 ? 8 : jv;
#ifdef SP_HAVE_TR8
            if (jv == 8 && iw == 8) {
                const size_t o = (size_t)j * n + i;
                if (m)
                    tr8x8_relu(x + o, m + o, (size_t)n, di + (j - j0), ld);
                else
                    tr8x8(x + o, (size_t)n, di + (j - j0), ld);
                continue;
            }
#endif
            for (int c = 0; c < iw; c++) {
                float *d = di + (size_t)c * ld + (j - j0);
                for (int r = 0; r < 8; r++) {
                    const size_t o = (size_t)(j + r) * n + i + c;
                    d[r] = r < jv && (!m || m[o] > 0.0f) ? x[o] : 0.0f;
                }
            }
        }
    }
}

/* Loop order: a block of 8 features outer, the chunk's samples inner, so a panel row (the chunk
 * of one feature, a few cache lines) is completed while in L1 and the source lines touched
 * (8 features of each sample) are reused by the next block while still in L1. */
static void k_transpose_in(const float *x, int n, int batch, float *xT, size_t ld, int i0, int i1,
                          int j0, int j1)
{
    transpose_in(x, NULL, n, batch, xT, ld, i0, i1, j0, j1);
}

static void k_transpose_in_relu(const float *x, const float *y, int n, int batch, float *xT,
                               size_t ld, int i0, int i1, int j0, int j1)
{
    transpose_in(x, y, n, batch, xT, ld, i0, i1, j0, j1);
}

static void k_transpose_out(const float *yT, size_t ld, int n, float *y, int batch, int i0, int i1,
                           int j0, int j1)
{
    const int jend = j1 < batch ? j1 : batch;
    for (int i = i0; i < i1; i += 8) {
        const int iw = i1 - i < 8 ? i1 - i : 8;
        const float *si = yT + (size_t)i * ld;
        for (int j = j0; j < jend; j += 8) {
            const int jv = jend - j < 8 ? jend - j : 8;
#ifdef SP_HAVE_TR8
            if (jv == 8 && iw == 8) {
                tr8x8(si + (j - j0), ld, y + (size_t)j * n + i, (size_t)n);
                continue;
            }
#endif
            for (int r = 0; r < jv; r++)
                for (int c = 0; c < iw; c++)
                    y[(size_t)(j + r) * n + i + c] = si[(size_t)c * ld + (j - j0) + r];
        }
    }
}

const struct dsnn_sp_kernels SP_KSET_TABLE = {
    .isa = SP_ISA,
    .spmm = k_spmm,
    .sddmm = k_sddmm,
    .transpose_in = k_transpose_in,
    .transpose_in_relu = k_transpose_in_relu,
    .transpose_out = k_transpose_out,
};
