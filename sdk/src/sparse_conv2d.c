/* sparse_conv2d.c - truly sparse 2d convolution: W [out_c][in_c kh kw] is a CSR matrix kept in a
 * "sparse_linear" layer (the sparse engine's storage and topology API), multiplied with im2col
 * columns of a chunk of samples:
 *     forward   Y[o][:]     = b[o] + sum_k w[k] cols[col[k]][:]      (tiles of columns)
 *     weight    dW[k]       = dot(dY[o][:], cols[col[k]][:])          (active connections only)
 *     input     dcols[c][:] = sum_{k in column c} w[k] dY[row[k]][:]  (tiles of columns)
 * All loops are race-free and keep a fixed summation order, so results do not depend on the
 * thread count. */
#include "dsnn/io.h"
#include "dsnn/layers.h"
#include "layers_internal.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define SC_TILE 512 /* columns per work item */

struct sparse_conv2d {
    struct dsnn_layer base; /* first */
    struct dsnn_cv_geom g;
    int out_c;
    bool bias;
    struct dsnn_layer *w; /* sparse_linear: n_in = in_c kh kw, n_out = out_c */
    bool keep_dense;
    bool dense_valid;
    float *dense_grad; /* [out_c][K] of the last backward when keep_dense */
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
    enum dsnn_status st = S->w->ops->init(S->w, rng, err);
    if (st != DSNN_OK)
        return st;
    S->w->initialized = true;
    S->dense_valid = false;
    sc_sync(S);
    return DSNN_OK;
}

static inline void axpy(float a, const float *restrict x, float *restrict y, int n)
{
    for (int i = 0; i < n; i++)
        y[i] += a * x[i];
}

static inline float dot(const float *restrict a, const float *restrict b, int n)
{
    float acc[8] = {0};
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++)
            acc[j] += a[i + j] * b[i + j];
    double s = 0.0;
    for (int j = 0; j < 8; j++)
        s += acc[j];
    for (; i < n; i++)
        s += (double)a[i] * b[i];
    return (float)s;
}

/* out[M][N] = bias + W cols, W in CSR. */
static void sc_spmm(const struct dsnn_sparse_csr *W, const float *bias, const float *cols,
                    int N, float *out)
{
    const int M = W->n_out;
    const int tiles = (N + SC_TILE - 1) / SC_TILE;
    const int nt = dsnn_ly_threads();
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1 && tiles > 1)
    for (int t = 0; t < tiles; t++) {
        const int n0 = t * SC_TILE, len = N - n0 < SC_TILE ? N - n0 : SC_TILE;
        for (int o = 0; o < M; o++) {
            float *yr = out + (size_t)o * N + n0;
            const float bo = bias ? bias[o] : 0.0f;
            for (int n = 0; n < len; n++)
                yr[n] = bo;
            for (int64_t k = W->row_ptr[o]; k < W->row_ptr[o + 1]; k++)
                axpy(W->value[k], cols + (size_t)W->col[k] * N + n0, yr, len);
        }
    }
}

/* dcols[K][N] = W^T dy. */
static void sc_spmm_t(const struct dsnn_sparse_csr *W, const float *dy, int N, float *dcols)
{
    const int M = W->n_out, K = W->n_in;
    const int tiles = (N + SC_TILE - 1) / SC_TILE;
    const int nt = dsnn_ly_threads();
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1 && tiles > 1)
    for (int t = 0; t < tiles; t++) {
        const int n0 = t * SC_TILE, len = N - n0 < SC_TILE ? N - n0 : SC_TILE;
        for (int c = 0; c < K; c++)
            memset(dcols + (size_t)c * N + n0, 0, sizeof(float) * (size_t)len);
        for (int o = 0; o < M; o++) {
            const float *dr = dy + (size_t)o * N + n0;
            for (int64_t k = W->row_ptr[o]; k < W->row_ptr[o + 1]; k++)
                axpy(W->value[k], dr, dcols + (size_t)W->col[k] * N + n0, len);
        }
    }
}

/* grad[k] (+)= dot(dy[row k], cols[col k]); db[o] += sum dy[o]. */
static void sc_sddmm(const struct dsnn_sparse_csr *W, const float *dy, const float *cols, int N,
                     bool accumulate, float *db)
{
    const int M = W->n_out;
    const int nt = dsnn_ly_threads();
#pragma omp parallel for schedule(dynamic, 4) num_threads(nt) if (nt > 1 && M > 1)
    for (int o = 0; o < M; o++) {
        const float *dr = dy + (size_t)o * N;
        for (int64_t k = W->row_ptr[o]; k < W->row_ptr[o + 1]; k++) {
            float s = dot(dr, cols + (size_t)W->col[k] * N, N);
            W->grad[k] = accumulate ? W->grad[k] + s : s;
        }
        if (db) {
            double s = 0.0;
            for (int n = 0; n < N; n++)
                s += dr[n];
            db[o] += (float)s;
        }
    }
}

static enum dsnn_status sc_forward(struct dsnn_layer *l, const float *x, float *y, int batch,
                                   bool train)
{
    (void)train;
    struct sparse_conv2d *S = sc_cast(l);
    struct dsnn_sparse_csr W;
    if (!dsnn_sparse_get_csr(S->w, &W))
        return DSNN_ERR_INVALID;
    sc_sync(S);
    S->dense_valid = false;
    const struct dsnn_cv_geom *g = &S->g;
    const int K = W.n_in, M = W.n_out, P = g->oh * g->ow;
    const size_t in_size = (size_t)g->c * g->h * g->w, out_size = (size_t)M * P;
    const struct dsnn_param_block *bb = dsnn_sparse_bias(S->w);
    const float *bias = bb ? bb->value : NULL;
    const int chunk = dsnn_cv_chunk(g, K, M, batch);
    for (int b0 = 0; b0 < batch; b0 += chunk) {
        const int nb = batch - b0 < chunk ? batch - b0 : chunk;
        const int N = nb * P;
        float *cols = dsnn_ws_get(0, (size_t)K * N);
        float *out = nb == 1 ? y + (size_t)b0 * out_size : dsnn_ws_get(1, (size_t)M * N);
        if (!cols || !out)
            return DSNN_ERR_NOMEM;
        dsnn_cv_im2col(g, x + (size_t)b0 * in_size, nb, cols);
        sc_spmm(&W, bias, cols, N, out);
        if (nb > 1)
            dsnn_cv_scatter(out, M, P, nb, NULL, y + (size_t)b0 * out_size);
    }
    return DSNN_OK;
}

static enum dsnn_status sc_backward(struct dsnn_layer *l, const float *x, const float *y,
                                    const float *dy, float *dx, int batch)
{
    (void)y;
    struct sparse_conv2d *S = sc_cast(l);
    struct dsnn_sparse_csr W;
    if (!dsnn_sparse_get_csr(S->w, &W))
        return DSNN_ERR_INVALID;
    sc_sync(S);
    const struct dsnn_cv_geom *g = &S->g;
    const int K = W.n_in, M = W.n_out, P = g->oh * g->ow;
    const size_t in_size = (size_t)g->c * g->h * g->w, out_size = (size_t)M * P;
    struct dsnn_param_block *bb = dsnn_sparse_bias(S->w);
    float *db = bb ? bb->grad : NULL;
    if (db)
        memset(db, 0, sizeof(float) * (size_t)M);
    if (S->keep_dense && !S->dense_grad) {
        S->dense_grad = malloc(sizeof(float) * (size_t)M * (size_t)K);
        if (!S->dense_grad)
            return DSNN_ERR_NOMEM;
    }
    if (W.nnz == 0 && !db && !dx && !S->keep_dense)
        return DSNN_OK;
    const int chunk = dsnn_cv_chunk(g, K, M, batch);
    for (int b0 = 0; b0 < batch; b0 += chunk) {
        const int nb = batch - b0 < chunk ? batch - b0 : chunk;
        const int N = nb * P;
        float *cols = dsnn_ws_get(0, (size_t)K * N);
        if (!cols)
            return DSNN_ERR_NOMEM;
        dsnn_cv_im2col(g, x + (size_t)b0 * in_size, nb, cols);
        const float *dyc = dy + (size_t)b0 * out_size;
        if (nb > 1) {
            float *buf = dsnn_ws_get(1, (size_t)M * N);
            if (!buf)
                return DSNN_ERR_NOMEM;
            dsnn_cv_gather(dyc, M, P, nb, buf);
            dyc = buf;
        }
        sc_sddmm(&W, dyc, cols, N, b0 > 0, db);
        if (S->keep_dense)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, K, N, 1.0f, dyc, N, cols, N,
                        b0 == 0 ? 0.0f : 1.0f, S->dense_grad, K);
        if (dx) {
            float *dcols = dsnn_ws_get(2, (size_t)K * N);
            if (!dcols)
                return DSNN_ERR_NOMEM;
            sc_spmm_t(&W, dyc, N, dcols);
            dsnn_cv_col2im(g, dcols, nb, dx + (size_t)b0 * in_size);
        }
    }
    S->dense_valid = S->keep_dense;
    return DSNN_OK;
}

static enum dsnn_status sc_save(struct dsnn_layer *l, FILE *f, struct dsnn_error *err)
{
    struct sparse_conv2d *S = sc_cast(l);
    enum dsnn_status st = dsnn_io_write(f, "SPCV", 4, "sparse conv2d tag", err);
    return st != DSNN_OK ? st : S->w->ops->save(S->w, f, err);
}

static enum dsnn_status sc_load(struct dsnn_layer *l, FILE *f, struct dsnn_error *err)
{
    struct sparse_conv2d *S = sc_cast(l);
    enum dsnn_status st = dsnn_io_expect_tag(f, "SPCV", err);
    if (st == DSNN_OK)
        st = S->w->ops->load(S->w, f, err);
    sc_sync(S);
    S->dense_valid = false;
    return st;
}

static void sc_destroy(struct dsnn_layer *l)
{
    struct sparse_conv2d *S = sc_cast(l);
    if (!S)
        return;
    dsnn_layer_free(S->w);
    free(S->dense_grad);
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
    struct dsnn_cv_geom g;
    if (!dsnn_cv_conv_geom(name, in, out_channels, kernel, stride, padding, &g, err))
        return NULL;
    const int64_t K = (int64_t)g.c * g.kh * g.kw;
    if (K > INT32_MAX) {
        dsnn_error_set(err, DSNN_ERR_INVALID, "layer '%s': kernel too large", name);
        return NULL;
    }
    struct sparse_conv2d *S = calloc(1, sizeof *S);
    if (!S) {
        dsnn_error_set(err, DSNN_ERR_NOMEM, "out of memory");
        return NULL;
    }
    S->w = dsnn_sparse_linear_new(name, (int)K, out_channels, bias, init, err);
    if (!S->w) {
        free(S);
        return NULL;
    }
    S->base.ops = &sparse_conv2d_ops;
    snprintf(S->base.name, sizeof S->base.name, "%s", name);
    S->base.in = in;
    S->base.out = (struct dsnn_shape){out_channels, g.oh, g.ow};
    S->g = g;
    S->out_c = out_channels;
    S->bias = bias;
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

bool dsnn_sparse_conv2d_geometry_(const struct dsnn_layer *l, struct dsnn_conv2d_geom *g)
{
    const struct sparse_conv2d *S = sc_cast(l);
    if (!S)
        return false;
    if (g)
        *g = (struct dsnn_conv2d_geom){S->g.c, S->g.h, S->g.w, S->out_c, S->g.oh, S->g.ow,
                                       S->g.kh, S->g.sh, S->g.ph, S->bias};
    return true;
}
