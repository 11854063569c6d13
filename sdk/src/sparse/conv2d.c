/* sparse/conv2d.c - truly sparse 2d convolution (direct sparse convolution, after Park et al.,
 * "Faster CNNs with direct sparse convolutions", 2017, with the batch as the vector dimension).
 * W [out_c][in_c kh kw] is a CSR matrix kept in a "sparse_linear" layer (the sparse engine's
 * storage and topology API); every kernel runs over the active connections only, so time and
 * memory scale with nnz and no dense weight tensor exists.
 *
 * Panels. Activations are copied into panels of SC_NB = SP_PAD samples (one vector per element):
 * chunk b of the x panel is [c][hp][wp] elements (the input zero-padded, one plane per channel,
 * planes xps elements apart), the y panel [out_c][oh][ow] (planes yps apart), the dy panel
 * [out_c][dhp][dwp] (dy framed by ty = (kh-1)/sh rows and tx = (kw-1)/sw columns of zeros; planes
 * dps apart), the dx panel [c][h][w] (planes dxps apart). A plane stride is the plane's size, one
 * element more when that is a multiple of 4 KiB (so that planes do not alias in the caches).
 * Channel-major planes keep the copies between layouts sequential (a row of an image is a run of
 * consecutive elements) and the positions a kernel walks adjacent. A connection (o, c, i, j)
 * reads element fbase = c xps + i wp + j from the position of its output:
 *     forward  y[p][o]  = b[o] + sum_{k in row o} w[k] x[base(p) + fbase[k]]   (conv_spmm)
 *     weight   dW[k]   += sum_p <dy[p][o], x[base(p) + fbase[k]]>                (conv_sddmm)
 *     input    dx[q][c] = sum_{k in channel c} w[k] dy[base(q) + cbase[k]]     (conv_spmm)
 * with the samples of a chunk as the vector lanes. The input gradient is a convolution of the
 * framed dy with the transposed kernel: for stride s, an input position of residue class
 * (Y mod sh, X mod sw) is reached by the kernel offsets of the same class only, so the
 * connections are indexed by (class, input channel) (CSC per class, rebuilt every backward:
 * O(nnz)) and each class is a stride-1 product.
 *
 * Work items: (chunk, output row) for the forward, (chunk, input row) for dx, and nnz-balanced
 * groups of output channels for dW (each group walks every chunk and row in the same order, so
 * weight gradients do not depend on the thread count). Batches are processed SC_PASS samples at
 * a time, so panel memory is bounded whatever the batch.
 *
 * Dense path. At densities >= dense_above (dsnn_sparse_conv2d_set_dense_above) the layer
 * scatters its weights into a dense scratch copy and runs the dense convolution engine
 * (layers/conv_gemm.c); the weight gradient is gathered back at the active connections.
 * Storage, gradients and optimizer state stay sparse. The dense gradient RigL needs
 * (keep_dense_grad) comes from that engine too. */
#include "dsnn/io.h"
#include "dsnn/layers.h"
#include "layers/layers_impl.h"
#include "sparse/sparse_impl.h"

#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define SC_NB SP_PAD  /* samples per panel chunk: the vector dimension */
#define SC_PASS 128   /* samples per pass (a multiple of SC_NB) */
/* Density from which the dense scratch path runs by default: the sparse kernels are faster up
 * to about this density. Measured per layer against the dense engine's direct path (Intel Xeon
 * AVX-512, 2 threads, batch 128, VGG-16 shapes, forward + backward ms, sparse kernels vs dense
 * scratch): at density 0.5, 64x32x32 138 vs 155, 128x16x16 174 vs 187 and 64x16x16 77 vs 70
 * (outputs 16 or more wide: about even at 0.5), 128x8x8 76 vs 56, 256x4x4 105 vs 87, 512x4x4 189
 * vs 156, 512x2x2 59 vs 44 (narrower: dense from below 0.5); at 0.3 the sparse kernels were
 * faster or even on every shape. */
#define SC_DENSE_ABOVE_DEFAULT 0.55
#define SC_DENSE_ABOVE_NARROW 0.45 /* out_w <= 8 */
/* Kernels of fewer taps (K = in_c kh kw: a first layer's 3 x 3 x 3, a 1 x 1 convolution of 64
 * channels) run the dense path at any density by default: their products are few next to the
 * copies of the activations into and out of the panels. Measured per layer (Intel Xeon AVX-512,
 * 2 threads, batch 128): 3x32x32->64 (K 27) forward 7.0 ms dense, 10.7 ms sparse at density 0.1;
 * 64x32x32->64 (K 576) 76.6 ms dense, 26.2 ms at 0.1. */
#define SC_DENSE_TAPS 100

struct sparse_conv2d {
    struct dsnn_layer base; /* first */
    struct cv_geom g;
    int out_c;
    bool bias;
    struct dsnn_layer *w; /* sparse_linear: n_in = in_c kh kw, n_out = out_c */
    bool keep_dense;
    bool dense_valid;
    float *dense_grad; /* [out_c][K] of the last backward when keep_dense */
    double dense_above;
    /* panel geometry (elements of SC_NB floats) */
    size_t xps, yps, dps, dxps; /* plane strides of the x, y, dy and dx panels */
    int hp, wp;           /* padded input */
    int ty, tx, dhp, dwp; /* dy panel: dy at rows [ty, ty + oh), columns [tx, tx + ow) */
    size_t xel, yel, del, dxel; /* floats per chunk of the x, y, dy and dx panels */
    int32_t *fbase; /* [nnz] forward offset of each connection (floats) */
    size_t fcap;
    /* fbase, and the structure of the input gradient index (cptr, cbase, ck), hold the
     * topology of generation fbase_gen / cidx_gen of the weight store when fbase_ok / cidx_ok:
     * rebuilt only after a topology change (cval is gathered every backward) */
    bool fbase_ok, cidx_ok;
    uint64_t fbase_gen, cidx_gen;
    /* input gradient index: class cl's channel c holds connections [cptr[cl (C+1) + c],
     * cptr[cl (C+1) + c + 1]) of cbase (offset in the dy panel), ck (CSR index), cval */
    int64_t *cptr;
    int32_t *cbase;
    uint32_t *ck;
    float *cval;
    size_t ccap;
    float *xP; /* x panels of the current pass */
    size_t xP_cap;
    const float *xP_src; /* xP holds all of this x (batch xP_batch <= SC_PASS) */
    int xP_batch;
    float *oP;  /* y or dx panels (workspace slot SC_WS_OUT, during one call only) */
    float *dyP; /* dy panels (workspace slot SC_WS_DY, during one backward only) */
    float *wd; /* dense path: scratch weights [out_c][K] */
    float *dwd; /* dense path: weight gradient [out_c][K] */
    int64_t *grp; /* [threads + 1] first row of each weight-gradient group */
    int grp_cap;
};

static const struct dsnn_layer_ops sparse_conv2d_ops;

static struct sparse_conv2d *sc_cast(const struct dsnn_layer *l)
{
    return l && l->ops == &sparse_conv2d_ops ? (struct sparse_conv2d *)l : NULL;
}

/* The parameter blocks are the conv layer's (base.params), which a residual block may have moved
 * into its own array: the weight store works on whatever base.params points to. sc_w pushes the
 * layer's blocks to the store before each use; sc_pull takes the store's after it allocated
 * them (init, load into an uninitialised layer). */
static struct dsnn_layer *sc_w(struct sparse_conv2d *S)
{
    if (S->base.params) {
        S->w->params = S->base.params;
        S->w->n_params = S->base.n_params;
    }
    return S->w;
}

static void sc_pull(struct sparse_conv2d *S)
{
    S->base.params = S->w->params;
    S->base.n_params = S->w->n_params;
}

/* The dense weight gradient (keep_dense) no longer matches the weights: not valid, not the
 * engine's gradient target. */
static void sc_dense_stale(struct sparse_conv2d *S)
{
    S->dense_valid = false;
    sp_set_ext_grad(S->w, NULL);
}

/* The start of a forward or backward pass (pass names it in the error): the weights' CSR into
 * *W (an uninitialised layer is DSNN_ERR_INVALID) and the dense gradient stale. */
static enum dsnn_status sc_pass_begin(struct sparse_conv2d *S, struct dsnn_sparse_csr *W,
                                      const char *pass, struct dsnn_error *err)
{
    if (!dsnn_sparse_get_csr(sc_w(S), W))
        return dsnn_error_set(err, DSNN_ERR_INVALID, "layer '%s': %s before init", S->base.name,
                              pass);
    sc_dense_stale(S);
    return DSNN_OK;
}

static enum dsnn_status sc_init(struct dsnn_layer *l, struct dsnn_rng *rng,
                                struct dsnn_error *err)
{
    struct sparse_conv2d *S = sc_cast(l);
    enum dsnn_status st = dsnn_layer_init(S->w, rng, err);
    sc_pull(S);
    if (st != DSNN_OK)
        return st;
    sc_dense_stale(S);
    S->xP_src = NULL;
    return DSNN_OK;
}

/* Kernel position of connection column `col`. */
static inline void sc_decode(const struct cv_geom *g, int col, int *c, int *i, int *j)
{
    const int kk = g->kh * g->kw;
    *c = col / kk;
    const int r = col - *c * kk;
    *i = r / g->kw;
    *j = r - *i * g->kw;
}

/* *p holds at least n floats (64-byte aligned, grow-only). */
static bool sc_need(float **p, size_t *cap, size_t n)
{
    if (*p && n <= *cap)
        return true;
    free(*p);
    void *q = NULL;
    if (posix_memalign(&q, 64, sizeof(float) * (n ? n : SC_NB)) != 0)
        q = NULL;
    *p = q;
    *cap = q ? n : 0;
    return q != NULL;
}

/* Workspace slots of the transient panels (shared by every layer of the thread; the dense
 * helpers cv_forward / cv_backward use slots 0-4, but never while these are live). */
#define SC_WS_OUT 3
#define SC_WS_DY 2

/* A 64-byte aligned workspace buffer of n floats, or NULL. */
static float *sc_ws(int slot, size_t n)
{
    float *p = ws_get(slot, n + 16);
    return p ? (float *)(((uintptr_t)p + 63) & ~(uintptr_t)63) : NULL;
}

static inline int sc_chunks(int nb)
{
    return (nb + SC_NB - 1) / SC_NB;
}

/* Whether `items` work items of `work` multiply-adds in all are worth nt threads. */
static inline bool sc_par(int nt, int items, double work)
{
    return nt > 1 && items > 1 && work >= 65536.0;
}

/* ---- panels ---- */

/* in samples [b0, b0 + nb) of [nf][rows][cols] -> dst chunks (el floats each) of nf planes
 * (pps elements apart) of [prows][pcols] elements: sample position (r, q) at (r + top, q + left),
 * the frame around them zero. The inverse of sc_unpack, but for the frame. */
static void sc_pack(const float *in, int nf, int rows, int cols, size_t pps, size_t el, int prows,
                    int pcols, int top, int left, float *dst, int b0, int nb)
{
    const size_t n = (size_t)nf * rows * cols;
    const int items = sc_chunks(nb) * nf, nt = ly_threads();
    const int right = pcols - left - cols;
#pragma omp parallel for schedule(static) num_threads(nt) if (sc_par(nt, items, (double)n * nb))
    for (int it = 0; it < items; it++) {
        const int ch = it / nf, f = it % nf;
        float *P = dst + (size_t)ch * el + (size_t)f * pps * SC_NB;
        const float *src = in + (size_t)b0 * n + (size_t)f * rows * cols;
        const int j0 = ch * SC_NB, j1 = (ch + 1) * SC_NB, bottom = prows - top - rows;
        if (top > 0)
            memset(P, 0, sizeof(float) * SC_NB * (size_t)top * pcols);
        if (left == 0 && right == 0) { /* the rows are one run of the plane */
            dsnn_sp_transpose_in(src, (int)n, nb, P + (size_t)top * pcols * SC_NB, SC_NB, 0,
                                 rows * cols, j0, j1);
        } else {
            for (int r = 0; r < rows; r++) {
                float *row = P + (size_t)(r + top) * pcols * SC_NB;
                if (left > 0)
                    memset(row, 0, sizeof(float) * SC_NB * (size_t)left);
                dsnn_sp_transpose_in(src + (size_t)r * cols, (int)n, nb,
                                     row + (size_t)left * SC_NB, SC_NB, 0, cols, j0, j1);
                if (right > 0)
                    memset(row + (size_t)(left + cols) * SC_NB, 0,
                           sizeof(float) * SC_NB * (size_t)right);
            }
        }
        if (bottom > 0)
            memset(P + (size_t)(top + rows) * pcols * SC_NB, 0,
                   sizeof(float) * SC_NB * (size_t)bottom * pcols);
    }
}

/* x samples [b0, b0 + nb) -> xP chunks, padding zero. */
static void sc_pack_x(struct sparse_conv2d *S, const float *x, int b0, int nb)
{
    const struct cv_geom *g = &S->g;
    sc_pack(x, g->c, g->h, g->w, S->xps, S->xel, S->hp, S->wp, g->ph, g->pw, S->xP, b0, nb);
}

/* dy samples [b0, b0 + nb) -> dyP chunks, framed by zeros. */
static void sc_pack_dy(struct sparse_conv2d *S, const float *dy, int b0, int nb)
{
    const struct cv_geom *g = &S->g;
    sc_pack(dy, S->out_c, g->oh, g->ow, S->dps, S->del, S->dhp, S->dwp, S->ty, S->tx, S->dyP, b0,
            nb);
}

/* oP chunks of nf planes (pps elements apart) of [rows][cols] elements -> out samples
 * [b0, b0 + nb) of [nf][rows][cols]: one transpose per plane. */
static void sc_unpack(const float *oP, size_t el, int nf, int rows, int cols, size_t pps,
                      float *out, int b0, int nb)
{
    const size_t n = (size_t)nf * rows * cols;
    const int items = sc_chunks(nb) * nf, nt = ly_threads();
#pragma omp parallel for schedule(static) num_threads(nt) if (sc_par(nt, items, (double)n * nb))
    for (int it = 0; it < items; it++) {
        const int ch = it / nf, f = it % nf;
        dsnn_sp_transpose_out(oP + (size_t)ch * el + (size_t)f * pps * SC_NB, SC_NB, (int)n,
                              out + (size_t)b0 * n + (size_t)f * rows * cols, nb, 0, rows * cols,
                              ch * SC_NB, (ch + 1) * SC_NB);
    }
}

/* ---- connection offsets ---- */

static bool sc_build_fbase(struct sparse_conv2d *S, const struct dsnn_sparse_csr *W)
{
    const uint64_t gen = sp_topology_gen(S->w);
    if (S->fbase_ok && S->fbase_gen == gen)
        return true;
    S->fbase_ok = false;
    if (W->nnz > S->fcap || !S->fbase) {
        free(S->fbase);
        S->fbase = malloc(sizeof(int32_t) * (W->nnz ? W->nnz : 1));
        S->fcap = S->fbase ? W->nnz : 0;
        if (!S->fbase)
            return false;
    }
    for (size_t k = 0; k < W->nnz; k++) {
        int c, i, j;
        sc_decode(&S->g, W->col[k], &c, &i, &j);
        S->fbase[k] = (int32_t)(((size_t)c * S->xps + (size_t)i * S->wp + j) * SC_NB);
    }
    S->fbase_ok = true;
    S->fbase_gen = gen;
    return true;
}

/* cval[q] = the value of connection ck[q]: the index's values, gathered (every backward). */
static void sc_gather_cval(struct sparse_conv2d *S, const struct dsnn_sparse_csr *W)
{
    const int64_t n = (int64_t)W->nnz;
    const int nt = ly_threads();
    const uint32_t *ck = S->ck;
    float *cv = S->cval;
    const float *v = W->value;
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1 && n >= 65536)
    for (int64_t q = 0; q < n; q++)
        cv[q] = v[ck[q]];
}

/* The per-class CSC of the input gradient (rebuilt when the topology changed), values
 * gathered. */
static bool sc_build_cindex(struct sparse_conv2d *S, const struct dsnn_sparse_csr *W)
{
    const uint64_t gen = sp_topology_gen(S->w);
    if (S->cidx_ok && S->cidx_gen == gen) {
        sc_gather_cval(S, W);
        return true;
    }
    S->cidx_ok = false;
    const struct cv_geom *g = &S->g;
    const int C = g->c, ncls = g->sh * g->sw;
    const size_t np = (size_t)ncls * (C + 1);
    if (!S->cptr && !(S->cptr = malloc(sizeof(int64_t) * np)))
        return false;
    if (W->nnz > S->ccap || !S->cbase) {
        const size_t cap = W->nnz ? W->nnz : 1;
        free(S->cbase);
        free(S->ck);
        free(S->cval);
        S->cbase = malloc(sizeof(int32_t) * cap);
        S->ck = malloc(sizeof(uint32_t) * cap);
        S->cval = malloc(sizeof(float) * cap);
        S->ccap = S->cbase && S->ck && S->cval ? cap : 0;
        if (!S->ccap)
            return false;
    }
    int64_t *cp = S->cptr;
    memset(cp, 0, sizeof(int64_t) * np);
    for (size_t k = 0; k < W->nnz; k++) {
        int c, i, j;
        sc_decode(g, W->col[k], &c, &i, &j);
        cp[(size_t)((i % g->sh) * g->sw + j % g->sw) * (C + 1) + c]++;
    }
    /* exclusive prefix sums over (class, channel): slot C of a class counts nothing, so it
     * ends up at the class's end */
    int64_t run = 0;
    for (size_t q = 0; q < np; q++) {
        const int64_t n = cp[q];
        cp[q] = run;
        run += n;
    }
    int64_t *next = malloc(sizeof(int64_t) * np);
    if (!next)
        return false;
    memcpy(next, cp, sizeof(int64_t) * np);
    for (int o = 0; o < W->n_out; o++)
        for (int64_t k = W->row_ptr[o]; k < W->row_ptr[o + 1]; k++) {
            int c, i, j;
            sc_decode(g, W->col[k], &c, &i, &j);
            const int64_t q = next[(size_t)((i % g->sh) * g->sw + j % g->sw) * (C + 1) + c]++;
            S->cbase[q] = (int32_t)(((size_t)o * S->dps + (size_t)(S->ty - i / g->sh) * S->dwp +
                                     (size_t)(S->tx - j / g->sw)) * SC_NB);
            S->ck[q] = (uint32_t)k;
        }
    free(next);
    S->cidx_ok = true;
    S->cidx_gen = gen;
    sc_gather_cval(S, W);
    return true;
}

/* ---- sparse kernels over one pass ---- */

static void sc_forward_pass(struct sparse_conv2d *S, const struct dsnn_sparse_csr *W,
                            const float *bias, int nb)
{
    const struct cv_geom *g = &S->g;
    const struct sp_kernels *K = sp_kernels();
    const int OH = g->oh, items = sc_chunks(nb) * OH, nt = ly_threads();
    const double work = ((double)W->nnz + W->n_out) * OH * g->ow * nb;
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt) if (sc_par(nt, items, work))
    for (int it = 0; it < items; it++) {
        const int ch = it / OH, oy = it % OH;
        K->conv_spmm(W->row_ptr, S->fbase, W->value, bias,
                     S->xP + (size_t)ch * S->xel + (size_t)oy * g->sh * S->wp * SC_NB,
                     (size_t)g->sw * SC_NB,
                     S->oP + (size_t)ch * S->yel + (size_t)oy * g->ow * SC_NB, SC_NB,
                     S->yps * SC_NB, 0, W->n_out, g->ow);
    }
}

/* Row groups of about equal nnz, one per thread. */
static int sc_groups(struct sparse_conv2d *S, const struct dsnn_sparse_csr *W, int nt)
{
    if (nt + 1 > S->grp_cap) {
        free(S->grp);
        S->grp = malloc(sizeof(int64_t) * (size_t)(nt + 1));
        S->grp_cap = S->grp ? nt + 1 : 0;
        if (!S->grp)
            return 0;
    }
    int r = 0;
    S->grp[0] = 0;
    for (int t = 1; t < nt; t++) {
        const int64_t target = (int64_t)(W->nnz * (size_t)t / (size_t)nt);
        while (r < W->n_out && W->row_ptr[r] < target)
            r++;
        S->grp[t] = r;
    }
    S->grp[nt] = W->n_out;
    return nt;
}

static void sc_weight_grad_pass(struct sparse_conv2d *S, const struct dsnn_sparse_csr *W,
                                int ngroups, int nb)
{
    const struct cv_geom *g = &S->g;
    const struct sp_kernels *K = sp_kernels();
    const int nch = sc_chunks(nb);
    const double work = (double)W->nnz * g->oh * g->ow * nb;
#pragma omp parallel for schedule(static, 1) num_threads(ngroups) if (sc_par(ngroups, ngroups, work))
    for (int t = 0; t < ngroups; t++) {
        const int r0 = (int)S->grp[t], r1 = (int)S->grp[t + 1];
        if (r0 >= r1)
            continue;
        for (int ch = 0; ch < nch; ch++)
            for (int oy = 0; oy < g->oh; oy++)
                K->conv_sddmm(W->row_ptr, S->fbase,
                              S->dyP + (size_t)ch * S->del +
                                  ((size_t)(oy + S->ty) * S->dwp + S->tx) * SC_NB,
                              SC_NB, S->dps * SC_NB,
                              S->xP + (size_t)ch * S->xel + (size_t)oy * g->sh * S->wp * SC_NB,
                              (size_t)g->sw * SC_NB, W->grad, r0, r1, g->ow);
    }
}

/* dx rows: every input row y takes, for each column class rx, the stride-1 product of the
 * connections of its class (Y mod sh, rx) with the framed dy panel. */
static void sc_input_grad_pass(struct sparse_conv2d *S, int nb)
{
    const struct cv_geom *g = &S->g;
    const struct sp_kernels *K = sp_kernels();
    const int H = g->h, C = g->c, sh = g->sh, sw = g->sw, items = sc_chunks(nb) * H;
    const int nt = ly_threads();
    const double work = ((double)S->cptr[(size_t)sh * sw * (C + 1) - 1] + C) * H * g->w * nb;
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt) if (sc_par(nt, items, work))
    for (int it = 0; it < items; it++) {
        const int ch = it / H, y = it % H, Y = y + g->ph, qy = Y / sh;
        for (int rx = 0; rx < sw; rx++) {
            /* columns X = qx sw + rx of the unpadded input: pw <= X < pw + w */
            const int qx0 = g->pw > rx ? (g->pw - rx + sw - 1) / sw : 0;
            const int qx1 = (g->pw + g->w - rx + sw - 1) / sw;
            if (qx1 <= qx0)
                continue;
            const int64_t *ptr = S->cptr + (size_t)((Y % sh) * sw + rx) * (C + 1);
            K->conv_spmm(ptr, S->cbase, S->cval, NULL,
                         S->dyP + (size_t)ch * S->del + ((size_t)qy * S->dwp + qx0) * SC_NB,
                         SC_NB,
                         S->oP + (size_t)ch * S->dxel +
                             ((size_t)y * g->w + (size_t)(qx0 * sw + rx - g->pw)) * SC_NB,
                         (size_t)sw * SC_NB, S->dxps * SC_NB, 0, C, qx1 - qx0);
        }
    }
}

/* ---- dense scratch path ---- */

static bool sc_dense_path(const struct sparse_conv2d *S, const struct dsnn_sparse_csr *W)
{
    const double dens = (double)W->nnz / ((double)W->n_out * W->n_in);
    return dens >= S->dense_above;
}

/* wd = the dense weights (zero at inactive connections). */
static bool sc_scatter_dense(struct sparse_conv2d *S, const struct dsnn_sparse_csr *W)
{
    const size_t n = (size_t)W->n_out * W->n_in;
    if (!S->wd && !(S->wd = malloc(sizeof(float) * n)))
        return false;
    memset(S->wd, 0, sizeof(float) * n);
    for (int o = 0; o < W->n_out; o++)
        for (int64_t k = W->row_ptr[o]; k < W->row_ptr[o + 1]; k++)
            S->wd[(size_t)o * W->n_in + W->col[k]] = W->value[k];
    return true;
}

/* ---- layer ops ---- */

static enum dsnn_status sc_nomem(struct dsnn_layer *l, const char *pass, struct dsnn_error *err)
{
    return dsnn_error_set(err, DSNN_ERR_NOMEM, "layer '%s': out of memory in %s", l->name, pass);
}

static enum dsnn_status sc_forward(struct dsnn_layer *l, const float *x, float *y, int batch,
                                   bool train, struct dsnn_error *err)
{
    (void)train;
    struct sparse_conv2d *S = sc_cast(l);
    struct dsnn_sparse_csr W;
    enum dsnn_status st0 = sc_pass_begin(S, &W, "forward", err);
    if (st0 != DSNN_OK)
        return st0;
    S->xP_src = NULL;
    if (dsnn_sparse_get_activation(sc_w(S)) != DSNN_SPARSE_ACT_NONE)
        return dsnn_error_set(err, DSNN_ERR_UNSUPPORTED, "layer '%s': a fused activation is not supported by sparse_conv2d (add a relu layer)", l->name);
    const struct dsnn_param_block *bb = dsnn_sparse_bias(sc_w(S));
    const float *bias = bb ? bb->value : NULL;
    if (sc_dense_path(S, &W)) {
        if (!sc_scatter_dense(S, &W) ||
            cv_forward(&S->g, S->out_c, S->wd, bias, x, y, batch) != DSNN_OK)
            return sc_nomem(l, "forward", err);
        return DSNN_OK;
    }
    const int pass = batch < SC_PASS ? batch : SC_PASS, nch = sc_chunks(pass);
    if (!sc_build_fbase(S, &W) || !sc_need(&S->xP, &S->xP_cap, nch * S->xel) ||
        !(S->oP = sc_ws(SC_WS_OUT, nch * S->yel)))
        return sc_nomem(l, "forward", err);
    for (int b0 = 0; b0 < batch; b0 += SC_PASS) {
        const int nb = batch - b0 < SC_PASS ? batch - b0 : SC_PASS;
        sc_pack_x(S, x, b0, nb);
        sc_forward_pass(S, &W, bias, nb);
        sc_unpack(S->oP, S->yel, S->out_c, S->g.oh, S->g.ow, S->yps, y, b0, nb);
    }
    if (batch <= SC_PASS) { /* the panel of x serves the backward */
        S->xP_src = x;
        S->xP_batch = batch;
    }
    return DSNN_OK;
}

/* RigL: dense dW [out_c][K] from the dense engine (layers/conv_gemm.c). */
static enum dsnn_status sc_dense_grad(struct sparse_conv2d *S, const float *x, const float *dy,
                                      int batch)
{
    const size_t K = (size_t)S->g.c * S->g.kh * S->g.kw;
    if (!S->dense_grad && !(S->dense_grad = malloc(sizeof(float) * (size_t)S->out_c * K)))
        return DSNN_ERR_NOMEM;
    return cv_backward(&S->g, S->out_c, NULL, x, dy, batch, S->dense_grad, NULL, NULL);
}

/* The dense path's backward: dense gradients over the scratch weights, gathered at the active
 * connections. */
static enum dsnn_status sc_backward_dense(struct sparse_conv2d *S, const struct dsnn_sparse_csr *W,
                                          const float *x, const float *dy, float *dx, int batch,
                                          float *db)
{
    const size_t n = (size_t)W->n_out * W->n_in;
    float *dwd = S->keep_dense ? S->dense_grad : S->dwd;
    if (!dwd) {
        dwd = malloc(sizeof(float) * n);
        if (!dwd)
            return DSNN_ERR_NOMEM;
        if (S->keep_dense)
            S->dense_grad = dwd;
        else
            S->dwd = dwd;
    }
    if (!sc_scatter_dense(S, W) ||
        cv_backward(&S->g, S->out_c, S->wd, x, dy, batch, dwd, db, dx) != DSNN_OK)
        return DSNN_ERR_NOMEM;
    for (int o = 0; o < W->n_out; o++)
        for (int64_t k = W->row_ptr[o]; k < W->row_ptr[o + 1]; k++)
            W->grad[k] = dwd[(size_t)o * W->n_in + W->col[k]];
    S->dense_valid = S->keep_dense;
    sp_set_ext_grad(S->w, S->dense_valid ? S->dense_grad : NULL);
    return DSNN_OK;
}

/* db[o] = sum of dy over samples and positions (in sample order: deterministic). */
static void sc_bias_grad(const struct sparse_conv2d *S, const float *dy, int batch, float *db)
{
    const int M = S->out_c, nt = ly_threads();
    const size_t P = (size_t)S->g.oh * S->g.ow;
#pragma omp parallel for schedule(static) num_threads(nt) if (sc_par(nt, M, (double)P * M * batch))
    for (int o = 0; o < M; o++) {
        double sb = 0.0;
        for (int b = 0; b < batch; b++) {
            const float *d = dy + ((size_t)b * M + o) * P;
            float s = 0.0f;
            for (size_t q = 0; q < P; q++)
                s += d[q];
            sb += s;
        }
        db[o] = (float)sb;
    }
}

static enum dsnn_status sc_backward(struct dsnn_layer *l, const float *x, const float *y,
                                    const float *dy, float *dx, int batch, struct dsnn_error *err)
{
    (void)y;
    struct sparse_conv2d *S = sc_cast(l);
    struct dsnn_sparse_csr W;
    enum dsnn_status st0 = sc_pass_begin(S, &W, "backward", err);
    if (st0 != DSNN_OK)
        return st0;
    struct dsnn_param_block *bb = dsnn_sparse_bias(sc_w(S));
    float *db = bb ? bb->grad : NULL;
    if (sc_dense_path(S, &W)) {
        if (sc_backward_dense(S, &W, x, dy, dx, batch, db) != DSNN_OK)
            return sc_nomem(l, "backward", err);
        return DSNN_OK;
    }
    const int pass = batch < SC_PASS ? batch : SC_PASS, nch = sc_chunks(pass);
    const int ngroups = sc_groups(S, &W, ly_threads());
    if (!ngroups || !sc_build_fbase(S, &W) || (dx && !sc_build_cindex(S, &W)) ||
        !sc_need(&S->xP, &S->xP_cap, nch * S->xel) ||
        !(S->dyP = sc_ws(SC_WS_DY, nch * S->del)) ||
        (dx && !(S->oP = sc_ws(SC_WS_OUT, nch * S->dxel))))
        return sc_nomem(l, "backward", err);
    if (W.nnz)
        memset(W.grad, 0, sizeof(float) * W.nnz);
    if (db)
        sc_bias_grad(S, dy, batch, db);
    const bool have_x = S->xP_src == x && S->xP_batch == batch;
    for (int b0 = 0; b0 < batch; b0 += SC_PASS) {
        const int nb = batch - b0 < SC_PASS ? batch - b0 : SC_PASS;
        if (!have_x)
            sc_pack_x(S, x, b0, nb);
        sc_pack_dy(S, dy, b0, nb);
        sc_weight_grad_pass(S, &W, ngroups, nb);
        if (dx) {
            sc_input_grad_pass(S, nb);
            sc_unpack(S->oP, S->dxel, S->g.c, S->g.h, S->g.w, S->dxps, dx, b0, nb);
        }
    }
    if (S->keep_dense) {
        if (sc_dense_grad(S, x, dy, batch) != DSNN_OK)
            return sc_nomem(l, "backward", err);
        S->dense_valid = true;
        sp_set_ext_grad(S->w, S->dense_grad);
    }
    return DSNN_OK;
}

/* 1 where a > 0, else 0: n floats. */
static void sc_binarize(const float *a, size_t n, float *out)
{
    for (size_t i = 0; i < n; i++)
        out[i] = a[i] > 0.0f ? 1.0f : 0.0f;
}

enum dsnn_status dsnn_sparse_conv2d_coactivations(struct dsnn_layer *l, const float *x,
                                                  const float *y, int batch, float *acc,
                                                  float *dense, struct dsnn_error *err)
{
    struct sparse_conv2d *S = sc_cast(l);
    struct dsnn_sparse_csr W;
    if (!S || !dsnn_sparse_get_csr(sc_w(S), &W))
        return dsnn_error_set(err, DSNN_ERR_INVALID, "layer '%s': not an initialised sparse "
                              "conv2d layer", l ? l->name : "(null)");
    if (batch <= 0 || (!acc && !dense))
        return DSNN_OK;
    const struct cv_geom *g = &S->g;
    const size_t nx = (size_t)batch * g->c * g->h * g->w;
    const size_t ny = (size_t)batch * S->out_c * g->oh * g->ow, K = (size_t)W.n_in;
    float *xb = malloc(sizeof(float) * nx), *yb = malloc(sizeof(float) * ny);
    float *tmp = malloc(sizeof(float) * (dense ? K * (size_t)W.n_out : (W.nnz ? W.nnz : 1)));
    enum dsnn_status st = xb && yb && tmp ? DSNN_OK : DSNN_ERR_NOMEM;
    if (st == DSNN_OK) {
        sc_binarize(x, nx, xb);
        sc_binarize(y, ny, yb);
    }
    if (st == DSNN_OK && dense) {
        /* every pair: the dense weight gradient of the binary activities */
        st = cv_backward(g, S->out_c, NULL, xb, yb, batch, tmp, NULL, NULL);
        for (size_t i = 0; st == DSNN_OK && i < K * (size_t)W.n_out; i++)
            dense[i] += tmp[i];
    }
    if (st == DSNN_OK && acc && W.nnz) {
        /* the active connections: the sparse weight gradient of the binary activities */
        const int pass = batch < SC_PASS ? batch : SC_PASS, nch = sc_chunks(pass);
        const int ngroups = sc_groups(S, &W, ly_threads());
        if (!ngroups || !sc_build_fbase(S, &W) || !sc_need(&S->xP, &S->xP_cap, nch * S->xel) ||
            !(S->dyP = sc_ws(SC_WS_DY, nch * S->del)))
            st = DSNN_ERR_NOMEM;
        S->xP_src = NULL; /* the x panels are overwritten: the next backward repacks */
        struct dsnn_sparse_csr Wc = W;
        Wc.grad = tmp;
        if (st == DSNN_OK)
            memset(tmp, 0, sizeof(float) * W.nnz);
        for (int b0 = 0; st == DSNN_OK && b0 < batch; b0 += SC_PASS) {
            const int nb = batch - b0 < SC_PASS ? batch - b0 : SC_PASS;
            sc_pack_x(S, xb, b0, nb);
            sc_pack_dy(S, yb, b0, nb);
            sc_weight_grad_pass(S, &Wc, ngroups, nb);
        }
        for (size_t k = 0; st == DSNN_OK && k < W.nnz; k++)
            acc[k] += tmp[k];
    }
    free(xb);
    free(yb);
    free(tmp);
    return st == DSNN_OK ? DSNN_OK : sc_nomem(l, "coactivations", err);
}

static enum dsnn_status sc_save(struct dsnn_layer *l, FILE *f, struct dsnn_error *err)
{
    struct sparse_conv2d *S = sc_cast(l);
    enum dsnn_status st = dsnn_io_write(f, "SPCV", 4, "sparse conv2d tag", err);
    return st != DSNN_OK ? st : dsnn_layer_save(sc_w(S), f, err);
}

static enum dsnn_status sc_load(struct dsnn_layer *l, FILE *f, struct dsnn_error *err)
{
    struct sparse_conv2d *S = sc_cast(l);
    enum dsnn_status st = dsnn_io_expect_tag(f, "SPCV", err);
    if (st == DSNN_OK)
        st = dsnn_layer_load(sc_w(S), f, err);
    sc_pull(S);
    sc_dense_stale(S);
    return st;
}

static void sc_destroy(struct dsnn_layer *l)
{
    struct sparse_conv2d *S = (struct sparse_conv2d *)l;
    dsnn_layer_free(sc_w(S));
    free(S->dense_grad);
    free(S->fbase);
    free(S->cptr);
    free(S->cbase);
    free(S->ck);
    free(S->cval);
    free(S->xP);
    free(S->wd);
    free(S->dwd);
    free(S->grp);
    free(S);
}

/* The stride of a plane of e elements: e, or e + 1 when e elements are a multiple of 4 KiB. */
static size_t sc_plane(size_t e)
{
    return e * SC_NB * sizeof(float) % 4096 == 0 ? e + 1 : e;
}

/* Panel strides and sizes; false if an offset within a chunk would not fit int32. */
static bool sc_panel_geom(struct sparse_conv2d *S)
{
    const struct cv_geom *g = &S->g;
    S->hp = g->h + 2 * g->ph;
    S->wp = g->w + 2 * g->pw;
    S->ty = (g->kh - 1) / g->sh;
    S->tx = (g->kw - 1) / g->sw;
    S->dhp = (S->hp - 1) / g->sh + S->ty + 1;
    S->dwp = (S->wp - 1) / g->sw + S->tx + 1;
    S->xps = sc_plane((size_t)S->hp * S->wp);
    S->yps = sc_plane((size_t)g->oh * g->ow);
    S->dps = sc_plane((size_t)S->dhp * S->dwp);
    S->dxps = sc_plane((size_t)g->h * g->w);
    S->xel = (size_t)g->c * S->xps * SC_NB;
    S->yel = (size_t)S->out_c * S->yps * SC_NB;
    S->del = (size_t)S->out_c * S->dps * SC_NB;
    S->dxel = (size_t)g->c * S->dxps * SC_NB;
    return S->xel < INT32_MAX && S->del < INT32_MAX;
}

static const struct dsnn_layer_ops sparse_conv2d_ops = {LY_OPS_FIELDS("sparse_conv2d", sc)};

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
    S->dense_above = K < SC_DENSE_TAPS ? 0.0
                     : g.ow <= 8       ? SC_DENSE_ABOVE_NARROW
                                       : SC_DENSE_ABOVE_DEFAULT;
    if (!sc_panel_geom(S)) {
        dsnn_error_set(err, DSNN_ERR_INVALID, "layer '%s': activations too large for the sparse convolution's panels", name);
        sc_destroy(&S->base);
        return NULL;
    }
    return &S->base;
}

void dsnn_sparse_conv2d_set_dense_above(struct dsnn_layer *l, double density)
{
    struct sparse_conv2d *S = sc_cast(l);
    if (S)
        S->dense_above = density;
}

double dsnn_sparse_conv2d_dense_above(const struct dsnn_layer *l)
{
    const struct sparse_conv2d *S = sc_cast(l);
    return S ? S->dense_above : 0.0;
}

struct dsnn_layer *dsnn_sparse_conv2d_like(const struct dsnn_layer *conv, const char *name,
                                           const struct dsnn_sparse_init *init,
                                           struct dsnn_error *err)
{
    struct dsnn_conv2d_geom g;
    if (!conv || !dsnn_conv2d_geometry(conv, &g)) {
        dsnn_error_set(err, DSNN_ERR_INVALID, "layer '%s' is not a conv2d layer",
                       conv ? conv->name : "(null)");
        return NULL;
    }
    return dsnn_sparse_conv2d_new(name ? name : conv->name, conv->in, g.out_c, g.kernel, g.stride,
                                  g.padding, g.bias, init, err);
}

bool dsnn_sparse_conv2d_is(const struct dsnn_layer *l)
{
    return sc_cast(l) != NULL;
}

struct dsnn_layer *dsnn_sparse_conv2d_weights(struct dsnn_layer *l)
{
    struct sparse_conv2d *S = sc_cast(l);
    return S ? sc_w(S) : NULL;
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
            sc_dense_stale(S);
        }
    }
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
    return dsnn_sparse_grow_gradient(sc_w(S), count, rng, err); /* the store serves it */
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
