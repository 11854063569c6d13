/* sparse/conv2d.c - truly sparse 2d convolution. W [out_c][in_c kh kw] is a CSR matrix kept in a
 * "sparse_linear" layer (the sparse engine's storage and topology API); the kernels work on the
 * active connections directly, one shifted plane per connection, with no im2col buffer, so time
 * and memory scale with nnz:
 *     forward  y[b][o]  = b[o] + sum_{k in row o} w[k] x[b][c(k)] shifted by (i(k), j(k))
 *     weight   dW[k]    = sum_b <dy[b][o], x[b][c(k)] shifted>              (active only)
 *     input    dx[b][c] = sum_{k in channel c} w[k] dy[b][o(k)] shifted back
 * Work items are (sample, output channel), output channels, and (sample, input channel): each
 * writes its own outputs with a fixed summation order, so results do not depend on the thread
 * count. The dense gradient RigL needs (keep_dense_grad) uses im2col + sgemm. */
#include "dsnn/io.h"
#include "dsnn/layers.h"
#include "layers/layers_impl.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

struct sparse_conv2d {
    struct dsnn_layer base; /* first */
    struct cv_geom g;
    int out_c;
    bool bias;
    struct dsnn_layer *w; /* sparse_linear: n_in = in_c kh kw, n_out = out_c */
    bool keep_dense;
    bool dense_valid;
    float *dense_grad; /* [out_c][K] of the last backward when keep_dense */
    /* valid output ranges per kernel row i / column j: [oy0[i], oy1[i]), [ox0[j], ox1[j]) */
    int *oy0, *oy1, *ox0, *ox1;
    /* column index of the connections (input gradient), rebuilt every backward */
    int64_t *cptr; /* [in_c + 1] connections of input channel c: cidx[cptr[c] .. cptr[c + 1]) */
    uint32_t *cidx;
    int32_t *crow;
    size_t ccap;
    /* stride 1: zero-padded copies, so that a connection is one contiguous axpy / dot over the
     * flattened plane (row stride wp = w + 2 pw) */
    float *xpad;  /* [batch][in_c][hp][wp] of the last forward's x */
    size_t xpad_cap;
    const float *xpad_src;
    int xpad_batch;
    float *dypad; /* [batch][out_c][oh][wp], zero beyond ow */
    size_t dypad_cap;
    float *scratch; /* [threads][hp wp] */
    int scratch_threads;
    float *wg_part; /* partial weight / bias gradients of sample chunks */
    size_t wg_part_cap;
};

static const struct dsnn_layer_ops sparse_conv2d_ops;

static struct sparse_conv2d *sc_cast(const struct dsnn_layer *l)
{
    return l && l->ops == &sparse_conv2d_ops ? (struct sparse_conv2d *)l : NULL;
}

static void sc_sync(struct sparse_conv2d *S)
{
    S->base.params = S->w->params;
    S->base.n_params = S->w->n_params;
}

static enum dsnn_status sc_init(struct dsnn_layer *l, struct dsnn_rng *rng,
                                struct dsnn_error *err)
{
    struct sparse_conv2d *S = sc_cast(l);
    enum dsnn_status st = dsnn_layer_init(S->w, rng, err);
    if (st != DSNN_OK)
        return st;
    S->dense_valid = false;
    sc_sync(S);
    return DSNN_OK;
}

/* Input row / column of output row / column o for kernel offset t: o * s - p + t. */

/* Kernel position of connection column `col`. */
static inline void sc_decode(const struct cv_geom *g, int col, int *c, int *i, int *j)
{
    const int kk = g->kh * g->kw;
    *c = col / kk;
    const int r = col - *c * kk;
    *i = r / g->kw;
    *j = r - *i * g->kw;
}

/* y[b][o] planes: bias + sum over the row's connections of w * shifted x[b][c] planes. */
static void sc_forward_kernel(const struct sparse_conv2d *S, const struct dsnn_sparse_csr *W,
                              const float *bias, const float *x, int batch, float *y)
{
    const struct cv_geom *g = &S->g;
    const int M = W->n_out, H = g->h, Wd = g->w, OW = g->ow, SH = g->sh, SW = g->sw;
    const size_t HW = (size_t)H * Wd, P = (size_t)g->oh * OW;
    const int items = batch * M;
    const int nt = ly_threads();
    const bool par = nt > 1 && items > 1 && (W->nnz + (size_t)M) * P * batch >= 65536;
#pragma omp parallel for schedule(static) num_threads(nt) if (par)
    for (int it = 0; it < items; it++) {
        const int b = it / M, o = it % M;
        float *restrict yp = y + (size_t)it * P;
        const float bo = bias ? bias[o] : 0.0f;
        for (size_t q = 0; q < P; q++)
            yp[q] = bo;
        for (int64_t k = W->row_ptr[o]; k < W->row_ptr[o + 1]; k++) {
            int c, i, j;
            sc_decode(g, W->col[k], &c, &i, &j);
            const float w = W->value[k];
            const float *restrict xp = x + ((size_t)b * g->c + c) * HW;
            const int x0 = S->ox0[j], x1 = S->ox1[j], off = j - g->pw;
            for (int oy = S->oy0[i]; oy < S->oy1[i]; oy++) {
                const float *restrict xr = xp + (size_t)(oy * SH - g->ph + i) * Wd;
                float *restrict yr = yp + (size_t)oy * OW;
                if (SW == 1)
                    for (int ox = x0; ox < x1; ox++)
                        yr[ox] += w * xr[ox + off];
                else
                    for (int ox = x0; ox < x1; ox++)
                        yr[ox] += w * xr[ox * SW + off];
            }
        }
    }
}

/* grad[k] = sum_b <dy[b][o], shifted x[b][c]>; db[o] = sum dy[b][o]. */
static void sc_weight_grad_kernel(const struct sparse_conv2d *S, const struct dsnn_sparse_csr *W,
                                  const float *x, const float *dy, int batch, float *db)
{
    const struct cv_geom *g = &S->g;
    const int M = W->n_out, H = g->h, Wd = g->w, OW = g->ow, SH = g->sh, SW = g->sw;
    const size_t HW = (size_t)H * Wd, P = (size_t)g->oh * OW;
    const int nt = ly_threads();
    const bool par = nt > 1 && M > 1 && (W->nnz + (size_t)M) * P * batch >= 65536;
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt) if (par)
    for (int o = 0; o < M; o++) {
        const int64_t k0 = W->row_ptr[o], k1 = W->row_ptr[o + 1];
        for (int64_t k = k0; k < k1; k++)
            W->grad[k] = 0.0f;
        double sb = 0.0;
        for (int b = 0; b < batch; b++) { /* in sample order: deterministic sums */
            const float *restrict dp = dy + ((size_t)b * M + o) * P;
            if (db) {
                float s = 0.0f;
#pragma omp simd reduction(+ : s)
                for (size_t q = 0; q < P; q++)
                    s += dp[q];
                sb += s;
            }
            for (int64_t k = k0; k < k1; k++) {
                int c, i, j;
                sc_decode(g, W->col[k], &c, &i, &j);
                const float *restrict xp = x + ((size_t)b * g->c + c) * HW;
                const int x0 = S->ox0[j], x1 = S->ox1[j], off = j - g->pw;
                float s = 0.0f;
                for (int oy = S->oy0[i]; oy < S->oy1[i]; oy++) {
                    const float *restrict xr = xp + (size_t)(oy * SH - g->ph + i) * Wd;
                    const float *restrict dr = dp + (size_t)oy * OW;
                    if (SW == 1) {
#pragma omp simd reduction(+ : s)
                        for (int ox = x0; ox < x1; ox++)
                            s += dr[ox] * xr[ox + off];
                    } else {
#pragma omp simd reduction(+ : s)
                        for (int ox = x0; ox < x1; ox++)
                            s += dr[ox] * xr[ox * SW + off];
                    }
                }
                W->grad[k] += s;
            }
        }
        if (db)
            db[o] = (float)sb;
    }
}

/* Column index: the connections of each input channel, in CSR order. */
static enum dsnn_status sc_build_cindex(struct sparse_conv2d *S, const struct dsnn_sparse_csr *W)
{
    const int C = S->g.c, kk = S->g.kh * S->g.kw;
    if (!S->cptr && !(S->cptr = malloc(sizeof(int64_t) * ((size_t)C + 1))))
        return DSNN_ERR_NOMEM;
    if (W->nnz > S->ccap || !S->cidx) {
        size_t cap = W->nnz > 0 ? W->nnz : 1;
        free(S->cidx);
        free(S->crow);
        S->cidx = malloc(sizeof(uint32_t) * cap);
        S->crow = malloc(sizeof(int32_t) * cap);
        S->ccap = S->cidx && S->crow ? cap : 0;
        if (!S->ccap)
            return DSNN_ERR_NOMEM;
    }
    int64_t *cp = S->cptr;
    memset(cp, 0, sizeof(int64_t) * ((size_t)C + 1));
    for (size_t k = 0; k < W->nnz; k++)
        cp[W->col[k] / kk + 1]++;
    for (int c = 0; c < C; c++)
        cp[c + 1] += cp[c];
    int64_t *next = malloc(sizeof(int64_t) * ((size_t)C + 1));
    if (!next)
        return DSNN_ERR_NOMEM;
    memcpy(next, cp, sizeof(int64_t) * ((size_t)C + 1));
    for (int r = 0; r < W->n_out; r++)
        for (int64_t k = W->row_ptr[r]; k < W->row_ptr[r + 1]; k++) {
            const int64_t q = next[W->col[k] / kk]++;
            S->cidx[q] = (uint32_t)k;
            S->crow[q] = r;
        }
    free(next);
    return DSNN_OK;
}

/* dx[b][c] planes = sum over the connections of channel c of w * dy[b][o] shifted back. */
static void sc_input_grad_kernel(const struct sparse_conv2d *S, const struct dsnn_sparse_csr *W,
                                 const float *dy, int batch, float *dx)
{
    const struct cv_geom *g = &S->g;
    const int M = W->n_out, C = g->c, Wd = g->w, OW = g->ow, SH = g->sh, SW = g->sw;
    const size_t HW = (size_t)g->h * Wd, P = (size_t)g->oh * OW;
    const int items = batch * C;
    const int nt = ly_threads();
    const bool par = nt > 1 && items > 1 && (W->nnz + (size_t)C) * P * batch >= 65536;
#pragma omp parallel for schedule(static) num_threads(nt) if (par)
    for (int it = 0; it < items; it++) {
        const int b = it / C, c = it % C;
        float *restrict xp = dx + (size_t)it * HW;
        memset(xp, 0, sizeof(float) * HW);
        for (int64_t q = S->cptr[c]; q < S->cptr[c + 1]; q++) {
            const uint32_t k = S->cidx[q];
            const int o = S->crow[q];
            int cc, i, j;
            sc_decode(g, W->col[k], &cc, &i, &j);
            const float w = W->value[k];
            const float *restrict dp = dy + ((size_t)b * M + o) * P;
            const int x0 = S->ox0[j], x1 = S->ox1[j], off = j - g->pw;
            for (int oy = S->oy0[i]; oy < S->oy1[i]; oy++) {
                float *restrict xr = xp + (size_t)(oy * SH - g->ph + i) * Wd;
                const float *restrict dr = dp + (size_t)oy * OW;
                if (SW == 1)
                    for (int ox = x0; ox < x1; ox++)
                        xr[ox + off] += w * dr[ox];
                else
                    for (int ox = x0; ox < x1; ox++)
                        xr[ox * SW + off] += w * dr[ox];
            }
        }
    }
}

/* ---- stride 1: flattened planes ---- */

static enum dsnn_status sc_grow(float **p, size_t *cap, size_t n)
{
    if (n <= *cap && *p)
        return DSNN_OK;
    free(*p);
    *p = malloc(sizeof(float) * (n ? n : 1));
    *cap = *p ? n : 0;
    return *p ? DSNN_OK : DSNN_ERR_NOMEM;
}

static enum dsnn_status sc_scratch(struct sparse_conv2d *S, int nt)
{
    if (nt <= S->scratch_threads && S->scratch)
        return DSNN_OK;
    const size_t per = (size_t)(S->g.h + 2 * S->g.ph) * (size_t)(S->g.w + 2 * S->g.pw);
    free(S->scratch);
    S->scratch = malloc(sizeof(float) * per * (size_t)nt);
    S->scratch_threads = S->scratch ? nt : 0;
    return S->scratch ? DSNN_OK : DSNN_ERR_NOMEM;
}

/* xpad = x with ph / pw zeros around every plane. */
static enum dsnn_status sc_pad_input(struct sparse_conv2d *S, const float *x, int batch)
{
    const struct cv_geom *g = &S->g;
    const int H = g->h, Wd = g->w, Hp = H + 2 * g->ph, Wp = Wd + 2 * g->pw;
    const size_t HWp = (size_t)Hp * Wp, items = (size_t)batch * g->c;
    if (sc_grow(&S->xpad, &S->xpad_cap, items * HWp) != DSNN_OK)
        return DSNN_ERR_NOMEM;
    float *xpad = S->xpad;
    const int nt = ly_threads();
    const bool par = nt > 1 && items * HWp >= 65536;
#pragma omp parallel for schedule(static) num_threads(nt) if (par)
    for (size_t it = 0; it < items; it++) {
        float *d = xpad + it * HWp;
        const float *src = x + it * (size_t)H * Wd;
        memset(d, 0, sizeof(float) * (size_t)g->ph * Wp);
        for (int iy = 0; iy < H; iy++) {
            float *r = d + (size_t)(iy + g->ph) * Wp;
            for (int t = 0; t < g->pw; t++)
                r[t] = r[g->pw + Wd + t] = 0.0f;
            memcpy(r + g->pw, src + (size_t)iy * Wd, sizeof(float) * (size_t)Wd);
        }
        memset(d + (size_t)(H + g->ph) * Wp, 0, sizeof(float) * (size_t)g->ph * Wp);
    }
    S->xpad_src = x;
    S->xpad_batch = batch;
    return DSNN_OK;
}

static void sc_forward_s1(struct sparse_conv2d *S, const struct dsnn_sparse_csr *W,
                          const float *bias, int batch, float *y, int nt)
{
    const struct cv_geom *g = &S->g;
    const int M = W->n_out, OH = g->oh, OW = g->ow, Wp = g->w + 2 * g->pw;
    const size_t HWp = (size_t)(g->h + 2 * g->ph) * Wp, P = (size_t)OH * OW;
    const size_t L = (size_t)(OH - 1) * Wp + OW, per = HWp;
    const int items = batch * M;
    const bool par = nt > 1 && items > 1 && (W->nnz + (size_t)M) * L * batch >= 65536;
#pragma omp parallel num_threads(nt) if (par)
    {
        float *restrict yb = S->scratch + per * (size_t)omp_get_thread_num();
#pragma omp for schedule(static)
        for (int it = 0; it < items; it++) {
            const int b = it / M, o = it % M;
            const float bo = bias ? bias[o] : 0.0f;
            for (size_t q = 0; q < L; q++)
                yb[q] = bo;
            for (int64_t k = W->row_ptr[o]; k < W->row_ptr[o + 1]; k++) {
                int c, i, j;
                sc_decode(g, W->col[k], &c, &i, &j);
                const float w = W->value[k];
                const float *restrict xs =
                    S->xpad + ((size_t)b * g->c + c) * HWp + (size_t)i * Wp + j;
                for (size_t q = 0; q < L; q++)
                    yb[q] += w * xs[q];
            }
            float *yp = y + (size_t)it * P;
            for (int oy = 0; oy < OH; oy++)
                memcpy(yp + (size_t)oy * OW, yb + (size_t)oy * Wp, sizeof(float) * (size_t)OW);
        }
    }
}

/* dypad rows of width wp, zero beyond ow. */
static enum dsnn_status sc_pad_dy(struct sparse_conv2d *S, const float *dy, int batch)
{
    const struct cv_geom *g = &S->g;
    const int OH = g->oh, OW = g->ow, Wp = g->w + 2 * g->pw;
    const size_t items = (size_t)batch * S->out_c, Pp = (size_t)OH * Wp;
    if (sc_grow(&S->dypad, &S->dypad_cap, items * Pp) != DSNN_OK)
        return DSNN_ERR_NOMEM;
    float *dypad = S->dypad;
    const int nt = ly_threads();
    const bool par = nt > 1 && items * Pp >= 65536;
#pragma omp parallel for schedule(static) num_threads(nt) if (par)
    for (size_t it = 0; it < items; it++)
        for (int oy = 0; oy < OH; oy++) {
            float *r = dypad + it * Pp + (size_t)oy * Wp;
            memcpy(r, dy + (it * OH + oy) * OW, sizeof(float) * (size_t)OW);
            for (int t = OW; t < Wp; t++)
                r[t] = 0.0f;
        }
    return DSNN_OK;
}

/* Samples per partial weight gradient: fixed, so the sums do not depend on the thread count. */
#define SC_WG_CHUNK 4

static enum dsnn_status sc_weight_grad_s1(struct sparse_conv2d *S,
                                          const struct dsnn_sparse_csr *W, int batch, float *db)
{
    const struct cv_geom *g = &S->g;
    const int M = W->n_out, OH = g->oh, OW = g->ow, Wp = g->w + 2 * g->pw;
    const size_t HWp = (size_t)(g->h + 2 * g->ph) * Wp, Pp = (size_t)OH * Wp;
    const size_t L = (size_t)(OH - 1) * Wp + OW, nnz = W->nnz;
    const int chunks = (batch + SC_WG_CHUNK - 1) / SC_WG_CHUNK;
    /* partial sums of chunk > 0: [chunks - 1][nnz + M] (chunk 0 writes grad / db directly) */
    const size_t stride = nnz + (size_t)M;
    if (chunks > 1 &&
        sc_grow(&S->wg_part, &S->wg_part_cap, (size_t)(chunks - 1) * stride) != DSNN_OK)
        return DSNN_ERR_NOMEM;
    float *tmp_db0 = NULL;
    if (!db && !(tmp_db0 = malloc(sizeof(float) * (size_t)M)))
        return DSNN_ERR_NOMEM;
    const int nt = ly_threads();
    const bool par = nt > 1 && chunks > 1 && (nnz + (size_t)M) * L * batch >= 65536;
#pragma omp parallel num_threads(nt) if (par)
    {
#pragma omp for schedule(dynamic, 1)
        for (int ch = 0; ch < chunks; ch++) {
            float *gp = ch == 0 ? W->grad : S->wg_part + (size_t)(ch - 1) * stride;
            float *dbp = ch == 0 ? (db ? db : tmp_db0) : gp + nnz;
            memset(gp, 0, sizeof(float) * nnz);
            memset(dbp, 0, sizeof(float) * (size_t)M);
            const int b1 = (ch + 1) * SC_WG_CHUNK < batch ? (ch + 1) * SC_WG_CHUNK : batch;
            for (int b = ch * SC_WG_CHUNK; b < b1; b++)
                for (int o = 0; o < M; o++) {
                    const float *restrict dp = S->dypad + ((size_t)b * M + o) * Pp;
                    float sd = 0.0f;
#pragma omp simd reduction(+ : sd)
                    for (size_t q = 0; q < L; q++)
                        sd += dp[q];
                    dbp[o] += sd;
                    for (int64_t k = W->row_ptr[o]; k < W->row_ptr[o + 1]; k++) {
                        int c, i, j;
                        sc_decode(g, W->col[k], &c, &i, &j);
                        const float *restrict xs =
                            S->xpad + ((size_t)b * g->c + c) * HWp + (size_t)i * Wp + j;
                        float s = 0.0f;
#pragma omp simd reduction(+ : s)
                        for (size_t q = 0; q < L; q++)
                            s += dp[q] * xs[q];
                        gp[k] += s;
                    }
                }
        }
        if (chunks > 1) {
#pragma omp for schedule(static)
            for (size_t k = 0; k < nnz; k++) {
                float s = W->grad[k];
                for (int ch = 1; ch < chunks; ch++)
                    s += S->wg_part[(size_t)(ch - 1) * stride + k];
                W->grad[k] = s;
            }
            if (db) {
#pragma omp for schedule(static)
                for (int o = 0; o < M; o++) {
                    float s = db[o];
                    for (int ch = 1; ch < chunks; ch++)
                        s += S->wg_part[(size_t)(ch - 1) * stride + nnz + (size_t)o];
                    db[o] = s;
                }
            }
        }
    }
    free(tmp_db0);
    return DSNN_OK;
}

static void sc_input_grad_s1(struct sparse_conv2d *S, const struct dsnn_sparse_csr *W,
                             int batch, float *dx, int nt)
{
    const struct cv_geom *g = &S->g;
    const int M = W->n_out, C = g->c, H = g->h, Wd = g->w, OH = g->oh, OW = g->ow;
    const int Wp = Wd + 2 * g->pw;
    const size_t HWp = (size_t)(H + 2 * g->ph) * Wp, Pp = (size_t)OH * Wp;
    const size_t L = (size_t)(OH - 1) * Wp + OW;
    const int items = batch * C;
    const bool par = nt > 1 && items > 1 && (W->nnz + (size_t)C) * L * batch >= 65536;
#pragma omp parallel num_threads(nt) if (par)
    {
        float *restrict xb = S->scratch + HWp * (size_t)omp_get_thread_num();
#pragma omp for schedule(static)
        for (int it = 0; it < items; it++) {
            const int b = it / C, c = it % C;
            memset(xb, 0, sizeof(float) * HWp);
            for (int64_t q = S->cptr[c]; q < S->cptr[c + 1]; q++) {
                const uint32_t k = S->cidx[q];
                int cc, i, j;
                sc_decode(g, W->col[k], &cc, &i, &j);
                const float w = W->value[k];
                const float *restrict dp = S->dypad + ((size_t)b * M + S->crow[q]) * Pp;
                float *restrict xs = xb + (size_t)i * Wp + j;
                for (size_t t = 0; t < L; t++)
                    xs[t] += w * dp[t];
            }
            float *dxp = dx + (size_t)it * H * Wd;
            for (int iy = 0; iy < H; iy++)
                memcpy(dxp + (size_t)iy * Wd, xb + (size_t)(iy + g->ph) * Wp + g->pw,
                       sizeof(float) * (size_t)Wd);
        }
    }
}

static enum dsnn_status sc_forward(struct dsnn_layer *l, const float *x, float *y, int batch,
                                   bool train, struct dsnn_error *err)
{
    (void)train;
    struct sparse_conv2d *S = sc_cast(l);
    struct dsnn_sparse_csr W;
    if (!dsnn_sparse_get_csr(S->w, &W))
        return dsnn_error_set(err, DSNN_ERR_INVALID, "layer '%s': forward called with a batch larger than the buffers or without its forward state (batch %d)", l->name, batch);
    sc_sync(S);
    S->dense_valid = false;
    if (dsnn_sparse_get_activation(S->w) != DSNN_SPARSE_ACT_NONE)
        return dsnn_error_set(err, DSNN_ERR_UNSUPPORTED, "layer '%s': a fused activation is not supported by sparse_conv2d", l->name); /* the fused activation is a sparse_linear feature */
    const struct dsnn_param_block *bb = dsnn_sparse_bias(S->w);
    if (S->g.sh == 1 && S->g.sw == 1) {
        const int nt = ly_threads();
        if (sc_pad_input(S, x, batch) != DSNN_OK || sc_scratch(S, nt) != DSNN_OK)
            return dsnn_error_set(err, DSNN_ERR_NOMEM, "layer '%s': out of memory in forward", l->name);
        sc_forward_s1(S, &W, bb ? bb->value : NULL, batch, y, nt);
    } else {
        sc_forward_kernel(S, &W, bb ? bb->value : NULL, x, batch, y);
    }
    return DSNN_OK;
}

/* RigL: dense dW [out_c][K] = dY cols^T over chunks of samples (im2col + sgemm). */
static enum dsnn_status sc_dense_grad(struct sparse_conv2d *S, const float *x, const float *dy,
                                      int batch)
{
    const size_t K = (size_t)S->g.c * S->g.kh * S->g.kw;
    if (!S->dense_grad && !(S->dense_grad = malloc(sizeof(float) * (size_t)S->out_c * K)))
        return DSNN_ERR_NOMEM;
    return cv_backward(&S->g, S->out_c, NULL, x, dy, batch, S->dense_grad, NULL, NULL);
}

static enum dsnn_status sc_backward(struct dsnn_layer *l, const float *x, const float *y,
                                    const float *dy, float *dx, int batch, struct dsnn_error *err)
{
    (void)y;
    struct sparse_conv2d *S = sc_cast(l);
    struct dsnn_sparse_csr W;
    if (!dsnn_sparse_get_csr(S->w, &W))
        return dsnn_error_set(err, DSNN_ERR_INVALID, "layer '%s': backward called with a batch larger than the buffers or without its forward state (batch %d)", l->name, batch);
    sc_sync(S);
    struct dsnn_param_block *bb = dsnn_sparse_bias(S->w);
    if (dx && sc_build_cindex(S, &W) != DSNN_OK)
        return dsnn_error_set(err, DSNN_ERR_NOMEM, "layer '%s': out of memory in backward", l->name);
    if (S->g.sh == 1 && S->g.sw == 1) {
        const int nt = ly_threads();
        /* the padded input of the forward is reused when x is the same */
        if ((!(S->xpad && S->xpad_src == x && S->xpad_batch == batch) &&
             sc_pad_input(S, x, batch) != DSNN_OK) ||
            sc_pad_dy(S, dy, batch) != DSNN_OK || sc_scratch(S, nt) != DSNN_OK)
            return dsnn_error_set(err, DSNN_ERR_NOMEM, "layer '%s': out of memory in backward", l->name);
        if (sc_weight_grad_s1(S, &W, batch, bb ? bb->grad : NULL) != DSNN_OK)
            return dsnn_error_set(err, DSNN_ERR_NOMEM, "layer '%s': out of memory in backward", l->name);
        if (dx)
            sc_input_grad_s1(S, &W, batch, dx, nt);
    } else {
        sc_weight_grad_kernel(S, &W, x, dy, batch, bb ? bb->grad : NULL);
        if (dx)
            sc_input_grad_kernel(S, &W, dy, batch, dx);
    }
    S->dense_valid = false;
    if (S->keep_dense) {
        enum dsnn_status st = sc_dense_grad(S, x, dy, batch);
        if (st != DSNN_OK)
            return st;
        S->dense_valid = true;
    }
    return DSNN_OK;
}

static enum dsnn_status sc_save(struct dsnn_layer *l, FILE *f, struct dsnn_error *err)
{
    struct sparse_conv2d *S = sc_cast(l);
    enum dsnn_status st = dsnn_io_write(f, "SPCV", 4, "sparse conv2d tag", err);
    return st != DSNN_OK ? st : dsnn_layer_save(S->w, f, err);
}

static enum dsnn_status sc_load(struct dsnn_layer *l, FILE *f, struct dsnn_error *err)
{
    struct sparse_conv2d *S = sc_cast(l);
    enum dsnn_status st = dsnn_io_expect_tag(f, "SPCV", err);
    if (st == DSNN_OK)
        st = dsnn_layer_load(S->w, f, err);
    sc_sync(S);
    S->dense_valid = false;
    return st;
}

static void sc_destroy(struct dsnn_layer *l)
{
    struct sparse_conv2d *S = (struct sparse_conv2d *)l;
    dsnn_layer_free(S->w);
    free(S->dense_grad);
    free(S->oy0);
    free(S->oy1);
    free(S->ox0);
    free(S->ox1);
    free(S->cptr);
    free(S->cidx);
    free(S->crow);
    free(S->xpad);
    free(S->dypad);
    free(S->scratch);
    free(S->wg_part);
    free(S);
}

static const struct dsnn_layer_ops sparse_conv2d_ops = {
    .type = "sparse_conv2d",
    .init = sc_init,
    .forward = sc_forward,
    .backward = sc_backward,
    .save = sc_save,
    .load = sc_load,
    .destroy = sc_destroy,
};

struct dsnn_layer *dsnn_sparse_conv2d_new(const char *name, struct dsnn_shape in,
                                          int out_channels, int kernel, int stride, int padding,
                                          bool bias, const struct dsnn_sparse_init *init,
                                          struct dsnn_error *err)
{
    if (!name)
        name = "sparse_conv2d";
    struct cv_geom g;
    if (!cv_conv_geom(name, in, out_channels, kernel, stride, padding, &g, err))
        return NULL;
    const int64_t K = (int64_t)g.c * g.kh * g.kw;
    if (K > INT32_MAX) {
        dsnn_error_set(err, DSNN_ERR_INVALID, "layer '%s': kernel too large", name);
        return NULL;
    }
    struct sparse_conv2d *S = dsnn_layer_alloc(sizeof *S, &sparse_conv2d_ops, name, in,
                                               (struct dsnn_shape){out_channels, g.oh, g.ow}, err);
    if (!S)
        return NULL;
    S->w = dsnn_sparse_linear_new(name, (int)K, out_channels, bias, init, err);
    if (!S->w) {
        free(S);
        return NULL;
    }
    S->g = g;
    S->out_c = out_channels;
    S->bias = bias;
    S->oy0 = malloc(sizeof(int) * (size_t)g.kh);
    S->oy1 = malloc(sizeof(int) * (size_t)g.kh);
    S->ox0 = malloc(sizeof(int) * (size_t)g.kw);
    S->ox1 = malloc(sizeof(int) * (size_t)g.kw);
    if (!S->oy0 || !S->oy1 || !S->ox0 || !S->ox1) {
        sc_destroy(&S->base);
        dsnn_error_set(err, DSNN_ERR_NOMEM, "out of memory");
        return NULL;
    }
    for (int i = 0; i < g.kh; i++)
        cv_valid_range(g.oh, g.sh, g.ph, i, g.h, &S->oy0[i], &S->oy1[i]);
    for (int j = 0; j < g.kw; j++)
        cv_valid_range(g.ow, g.sw, g.pw, j, g.w, &S->ox0[j], &S->ox1[j]);
    return &S->base;
}

bool dsnn_sparse_conv2d_is(const struct dsnn_layer *l)
{
    return sc_cast(l) != NULL;
}

struct dsnn_layer *dsnn_sparse_conv2d_weights(struct dsnn_layer *l)
{
    struct sparse_conv2d *S = sc_cast(l);
    return S ? S->w : NULL;
}

size_t dsnn_sparse_conv2d_nnz(const struct dsnn_layer *l)
{
    const struct sparse_conv2d *S = sc_cast(l);
    return S ? dsnn_sparse_nnz(S->w) : 0;
}

double dsnn_sparse_conv2d_density(const struct dsnn_layer *l)
{
    const struct sparse_conv2d *S = sc_cast(l);
    return S ? dsnn_sparse_density(S->w) : 0.0;
}

void dsnn_sparse_conv2d_keep_dense_grad(struct dsnn_layer *l, bool on)
{
    struct sparse_conv2d *S = sc_cast(l);
    if (S) {
        S->keep_dense = on;
        if (!on) {
            free(S->dense_grad);
            S->dense_grad = NULL;
            S->dense_valid = false;
        }
    }
}

static enum dsnn_status sc_grad_score(void *user, struct dsnn_layer *w, int row0, int row1,
                                      float *out, struct dsnn_error *err)
{
    (void)w, (void)err;
    const struct sparse_conv2d *S = user;
    const size_t K = (size_t)S->g.c * S->g.kh * S->g.kw;
    const float *src = S->dense_grad + (size_t)row0 * K;
    const size_t n = (size_t)(row1 - row0) * K;
    for (size_t i = 0; i < n; i++)
        out[i] = fabsf(src[i]);
    return DSNN_OK;
}

enum dsnn_status dsnn_sparse_conv2d_grow_gradient(struct dsnn_layer *l, size_t count,
                                                  struct dsnn_rng *rng, struct dsnn_error *err)
{
    struct sparse_conv2d *S = sc_cast(l);
    if (!S || !l->initialized)
        return dsnn_error_set(err, DSNN_ERR_INVALID, "not an initialised sparse conv2d layer");
    if (!S->dense_valid)
        return dsnn_error_set(err, DSNN_ERR_INVALID,
                              "layer '%s': no dense gradient: turn dsnn_sparse_conv2d_keep_dense_"
                              "grad on before the backward that precedes the growth",
                              l->name);
    enum dsnn_status st = dsnn_sparse_grow_score(S->w, count, sc_grad_score, S, rng, err);
    sc_sync(S);
    return st;
}

bool sp_conv2d_geometry(const struct dsnn_layer *l, struct dsnn_conv2d_geom *g)
{
    const struct sparse_conv2d *S = sc_cast(l);
    if (!S)
        return false;
    if (g)
        *g = (struct dsnn_conv2d_geom){S->g.c, S->g.h, S->g.w, S->out_c, S->g.oh, S->g.ow,
                                       S->g.kh, S->g.sh, S->g.ph, S->bias};
    return true;
}
