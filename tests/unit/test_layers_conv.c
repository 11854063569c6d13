/* test_layers_conv.c - dense and sparse conv2d against a naive double-precision convolution
 * (forward, weight / bias / input gradients) over several geometries and sample chunkings,
 * finite differences, sparse topology edits through the sparse engine, RigL's dense gradient,
 * thread-count independence, checkpoints, Hebbian coactivations and argument checks. */
#include "layer_check.h"

struct geo {
    int c, h, w, out_c, k, s, p;
};

static int od(int n, int k, int s, int p)
{
    return (n + 2 * p - k) / s + 1;
}

/* W [out_c][c][k][k] (double), bias may be NULL. */
static void ref_conv(const struct geo *g, const double *W, const float *bias, const float *x,
                     int batch, double *y)
{
    const int oh = od(g->h, g->k, g->s, g->p), ow = od(g->w, g->k, g->s, g->p);
    for (int b = 0; b < batch; b++)
        for (int o = 0; o < g->out_c; o++)
            for (int oy = 0; oy < oh; oy++)
                for (int ox = 0; ox < ow; ox++) {
                    double s = bias ? bias[o] : 0.0;
                    for (int c = 0; c < g->c; c++)
                        for (int i = 0; i < g->k; i++)
                            for (int j = 0; j < g->k; j++) {
                                int iy = oy * g->s - g->p + i, ix = ox * g->s - g->p + j;
                                if (iy < 0 || iy >= g->h || ix < 0 || ix >= g->w)
                                    continue;
                                s += W[((o * g->c + c) * g->k + i) * g->k + j] *
                                     x[((size_t)(b * g->c + c) * g->h + iy) * g->w + ix];
                            }
                    y[((size_t)(b * g->out_c + o) * oh + oy) * ow + ox] = s;
                }
}

/* dW [out_c][c k k], db [out_c], dx [batch][c][h][w] of L = sum dy * y. */
/* dWa: the sums of |terms| of dW (its float rounding grows with them: batches of many positions
 * cancel to small sums of large terms). */
static void ref_conv_grad(const struct geo *g, const double *W, const float *x, const float *dy,
                          int batch, double *dW, double *dWa, double *db, double *dx)
{
    const int oh = od(g->h, g->k, g->s, g->p), ow = od(g->w, g->k, g->s, g->p);
    const size_t K = (size_t)g->c * g->k * g->k;
    memset(dW, 0, sizeof(double) * K * g->out_c);
    memset(dWa, 0, sizeof(double) * K * g->out_c);
    memset(db, 0, sizeof(double) * g->out_c);
    memset(dx, 0, sizeof(double) * (size_t)batch * g->c * g->h * g->w);
    for (int b = 0; b < batch; b++)
        for (int o = 0; o < g->out_c; o++)
            for (int oy = 0; oy < oh; oy++)
                for (int ox = 0; ox < ow; ox++) {
                    const double d = dy[((size_t)(b * g->out_c + o) * oh + oy) * ow + ox];
                    db[o] += d;
                    for (int c = 0; c < g->c; c++)
                        for (int i = 0; i < g->k; i++)
                            for (int j = 0; j < g->k; j++) {
                                int iy = oy * g->s - g->p + i, ix = ox * g->s - g->p + j;
                                if (iy < 0 || iy >= g->h || ix < 0 || ix >= g->w)
                                    continue;
                                const size_t wi = ((size_t)(o * g->c + c) * g->k + i) * g->k + j;
                                const size_t xi = ((size_t)(b * g->c + c) * g->h + iy) * g->w + ix;
                                dW[wi] += d * x[xi];
                                dWa[wi] += fabs(d * x[xi]);
                                dx[xi] += d * W[wi];
                            }
                }
}

static double *dense_of_sparse(struct dsnn_layer *l, const struct geo *g)
{
    struct dsnn_sparse_csr c;
    CU_ASSERT_FATAL(dsnn_sparse_get_csr(dsnn_sparse_conv2d_weights(l), &c));
    CU_ASSERT_EQUAL(c.n_out, g->out_c);
    CU_ASSERT_EQUAL(c.n_in, g->c * g->k * g->k);
    double *W = calloc((size_t)c.n_in * c.n_out, sizeof(double));
    for (int r = 0; r < c.n_out; r++)
        for (int64_t k = c.row_ptr[r]; k < c.row_ptr[r + 1]; k++)
            W[(size_t)r * c.n_in + c.col[k]] = c.value[k];
    return W;
}

/* dense_above of the sparse layers make() builds (< 0: the layer's default). */
static double g_dense_above = -1.0;

static struct dsnn_layer *make(const struct geo *g, bool bias, bool sparse, double density,
                               uint64_t seed)
{
    struct dsnn_error err = {0};
    struct dsnn_shape in = {g->c, g->h, g->w};
    struct dsnn_layer *l;
    if (sparse) {
        struct dsnn_sparse_init init = dsnn_sparse_init_default();
        init.density = density;
        l = dsnn_sparse_conv2d_new("conv", in, g->out_c, g->k, g->s, g->p, bias, &init, &err);
    } else {
        l = dsnn_conv2d_new("conv", in, g->out_c, g->k, g->s, g->p, bias, &err);
    }
    if (!l)
        fprintf(stderr, "%s\n", err.msg);
    CU_ASSERT_PTR_NOT_NULL_FATAL(l);
    if (sparse && g_dense_above >= 0.0)
        dsnn_sparse_conv2d_set_dense_above(l, g_dense_above);
    lc_init(l, seed);
    return l;
}

static const float *bias_of(struct dsnn_layer *l, bool sparse)
{
    if (sparse) {
        struct dsnn_param_block *b = dsnn_sparse_bias(dsnn_sparse_conv2d_weights(l));
        return b ? b->value : NULL;
    }
    return dsnn_conv2d_bias(l);
}

/* Forward and backward of l against the reference; returns mismatches. */
static int compare(struct dsnn_layer *l, const struct geo *g, bool sparse, int batch,
                   uint64_t seed)
{
    const int oh = od(g->h, g->k, g->s, g->p), ow = od(g->w, g->k, g->s, g->p);
    const size_t K = (size_t)g->c * g->k * g->k;
    const size_t ni = (size_t)batch * g->c * g->h * g->w, no = (size_t)batch * g->out_c * oh * ow;
    float *x = lc_alloc(ni), *y = lc_alloc(no), *dy = lc_alloc(no), *dx = lc_alloc(ni);
    double *yr = malloc(sizeof(double) * no), *dWr = malloc(sizeof(double) * K * g->out_c),
           *dWa = malloc(sizeof(double) * K * g->out_c),
           *dbr = malloc(sizeof(double) * g->out_c), *dxr = malloc(sizeof(double) * ni);
    struct dsnn_rng rng;
    dsnn_rng_seed(&rng, seed, 1);
    lc_fill(x, ni, &rng, -1, 1);
    lc_fill(dy, no, &rng, -1, 1);
    double *W;
    if (sparse) {
        W = dense_of_sparse(l, g);
    } else {
        W = malloc(sizeof(double) * K * g->out_c);
        const float *w = dsnn_conv2d_weight(l);
        for (size_t i = 0; i < K * g->out_c; i++)
            W[i] = w[i];
    }
    const float *bias = bias_of(l, sparse);
    CU_ASSERT_EQUAL_FATAL(l->ops->forward(l, x, y, batch, true, NULL), DSNN_OK);
    CU_ASSERT_EQUAL_FATAL(l->ops->backward(l, x, y, dy, dx, batch, NULL), DSNN_OK);
    ref_conv(g, W, bias, x, batch, yr);
    ref_conv_grad(g, W, x, dy, batch, dWr, dWa, dbr, dxr);
    int bad = 0;
    for (size_t i = 0; i < no; i++)
        bad += !lc_close(y[i], yr[i], 1e-4, 1e-5);
    for (size_t i = 0; i < ni; i++)
        bad += !lc_close(dx[i], dxr[i], 1e-4, 1e-5);
    if (sparse) {
        struct dsnn_sparse_csr c;
        dsnn_sparse_get_csr(dsnn_sparse_conv2d_weights(l), &c);
        for (int r = 0; r < c.n_out; r++)
            for (int64_t k = c.row_ptr[r]; k < c.row_ptr[r + 1]; k++)
                bad += !lc_close(c.grad[k], dWr[(size_t)r * K + c.col[k]], 1e-4,
                                 1e-5 + 1e-6 * dWa[(size_t)r * K + c.col[k]]);
        /* the layer's params are the weight store's blocks */
        CU_ASSERT_PTR_EQUAL(l->params, dsnn_sparse_conv2d_weights(l)->params);
        CU_ASSERT_PTR_EQUAL(l->params[0].value, c.value);
        CU_ASSERT_EQUAL(l->params[0].n, c.nnz);
    } else {
        for (size_t i = 0; i < K * g->out_c; i++)
            bad += !lc_close(l->params[0].grad[i], dWr[i], 1e-4, 1e-5 + 1e-6 * dWa[i]);
    }
    if (bias) {
        const float *db = l->params[1].grad;
        for (int o = 0; o < g->out_c; o++)
            bad += !lc_close(db[o], dbr[o], 1e-4, 1e-5);
    }
    free(x), free(y), free(dy), free(dx), free(yr), free(dWr), free(dWa), free(dbr), free(dxr);
    free(W);
    return bad;
}

/* {c, h, w, out_c, k, s, p}: odd shapes, and those of the networks (VGG 3x3 s1 p1, ResNet's
 * 7x7 s2 p3 stem, 3x3 s2 p1 and 1x1 s2 p0 downsampling, channel counts that are multiples of
 * 16, LeNet's 5x5 p0). */
static const struct geo geos[] = {
    {3, 8, 8, 4, 3, 1, 1},    {2, 7, 9, 5, 3, 2, 1},  {3, 6, 5, 2, 1, 1, 0},
    {2, 9, 7, 3, 5, 2, 2},    {1, 5, 5, 2, 5, 1, 0},  {4, 6, 6, 6, 3, 3, 0},
    {16, 6, 6, 16, 3, 1, 1},  {3, 13, 11, 4, 7, 2, 3}, {16, 7, 7, 32, 3, 2, 1},
    {16, 8, 8, 32, 1, 2, 0},  {1, 12, 12, 6, 5, 1, 0},
};
#define N_GEOS (sizeof geos / sizeof geos[0])

static void run_all_batch(bool sparse, double density, int batch)
{
    for (size_t t = 0; t < N_GEOS; t++) {
        const struct geo *g = &geos[t];
        for (int bias = 0; bias < 2; bias++) {
            struct dsnn_layer *l = make(g, bias, sparse, density, 10 + t);
            CU_ASSERT_EQUAL(l->out.c, g->out_c);
            CU_ASSERT_EQUAL(l->out.h, od(g->h, g->k, g->s, g->p));
            CU_ASSERT_EQUAL(l->out.w, od(g->w, g->k, g->s, g->p));
            const int bad = compare(l, g, sparse, batch, 100 + t);
            if (bad)
                fprintf(stderr,
                        "geometry %zu bias %d sparse %d density %g dense_above %g batch %d: "
                        "%d mismatches\n",
                        t, bias, sparse, density, g_dense_above, batch, bad);
            CU_ASSERT_EQUAL(bad, 0);
            dsnn_layer_free(l);
        }
    }
}

static void run_all(bool sparse, double density)
{
    run_all_batch(sparse, density, 3);
}

static void test_dense_reference(void)
{
    run_all(false, 1.0);
}

static void test_sparse_reference(void)
{
    /* the sparse kernels (dense_above 2: never dense), the dense scratch path (0: always) and
     * the default choice; batches of one partial sample chunk and of several, with a tail */
    const double above[3] = {2.0, 0.0, -1.0};
    for (int a = 0; a < 3; a++) {
        g_dense_above = above[a];
        run_all(true, 1.0);
        run_all(true, 0.3);
        run_all(true, 0.0);
        run_all_batch(true, 0.5, 37);
    }
    g_dense_above = -1.0;
}

static void test_sparse_passes(void)
{
    /* batches over several passes of the sparse kernels (130 = 128 + 2), both paths */
    const struct geo g = {3, 6, 6, 5, 3, 2, 1};
    const double above[2] = {2.0, 0.0};
    for (int a = 0; a < 2; a++) {
        g_dense_above = above[a];
        struct dsnn_layer *l = make(&g, true, true, 0.4, 12);
        CU_ASSERT_EQUAL(compare(l, &g, true, 130, 13), 0);
        dsnn_layer_free(l);
    }
    g_dense_above = -1.0;
    /* defaults: a kernel of fewer than 100 taps (here 3 x 3 x 3) runs dense at any density */
    struct dsnn_layer *l = make(&g, true, true, 0.4, 12);
    CU_ASSERT_DOUBLE_EQUAL(dsnn_sparse_conv2d_dense_above(l), 0.0, 1e-12);
    CU_ASSERT_EQUAL(compare(l, &g, true, 20, 16), 0);
    dsnn_layer_free(l);
    const struct geo wide = {12, 16, 16, 5, 3, 1, 1}; /* 108 taps, outputs 16 wide */
    l = make(&wide, true, true, 0.4, 12);
    CU_ASSERT_DOUBLE_EQUAL(dsnn_sparse_conv2d_dense_above(l), 0.55, 1e-12);
    dsnn_sparse_conv2d_set_dense_above(l, 0.25);
    CU_ASSERT_DOUBLE_EQUAL(dsnn_sparse_conv2d_dense_above(l), 0.25, 1e-12);
    dsnn_layer_free(l);
    /* outputs at most 8 wide switch to the dense path earlier; both paths agree there */
    const struct geo narrow = {12, 8, 8, 8, 3, 1, 1}; /* 108 taps */
    l = make(&narrow, true, true, 0.5, 14);
    CU_ASSERT_DOUBLE_EQUAL(dsnn_sparse_conv2d_dense_above(l), 0.45, 1e-12);
    CU_ASSERT_EQUAL(compare(l, &narrow, true, 40, 15), 0);
    dsnn_layer_free(l);
}

static void test_chunking(void)
{
    /* workspace limits that force one sample per chunk and two samples per chunk (with a
     * partial last chunk): results must not change */
    const struct geo g = {3, 8, 8, 4, 3, 1, 1};
    const size_t K = 27, P = 64;
    const size_t limits[3] = {1, 2 * K * P * sizeof(float), (size_t)16 << 20};
    for (int sparse = 0; sparse < 2; sparse++)
        for (int i = 0; i < 3; i++) {
            dsnn_conv_set_workspace_limit(limits[i]);
            struct dsnn_layer *l = make(&g, true, sparse, 0.5, 3);
            CU_ASSERT_EQUAL(compare(l, &g, sparse, 5, 9), 0);
            dsnn_layer_free(l);
        }
    dsnn_conv_set_workspace_limit((size_t)16 << 20);
}

static void test_fd(void)
{
    const struct geo g = {2, 5, 6, 3, 3, 2, 1};
    for (int sparse = 0; sparse < 2; sparse++) {
        struct dsnn_layer *l = make(&g, true, sparse, 0.5, 4);
        const int batch = 2;
        const size_t ni = (size_t)batch * 60, no = (size_t)batch * dsnn_shape_size(l->out);
        float *x = lc_alloc(ni), *dy = lc_alloc(no);
        struct dsnn_rng rng;
        dsnn_rng_seed(&rng, 5, 1);
        lc_fill(x, ni, &rng, -1, 1);
        lc_fill(dy, no, &rng, -1, 1);
        CU_ASSERT_EQUAL(lc_check_grads(l, x, batch, true, dy, 40, 1e-2, 2e-3, 2e-3, NULL, NULL),
                        0);
        free(x), free(dy);
        dsnn_layer_free(l);
    }
}

static void test_sparse_topology(void)
{
    struct dsnn_error err = {0};
    const struct geo g = {4, 6, 6, 5, 3, 1, 1};
    struct dsnn_layer *l = make(&g, true, true, 0.25, 6);
    struct dsnn_layer *w = dsnn_sparse_conv2d_weights(l);
    CU_ASSERT(dsnn_sparse_conv2d_is(l));
    CU_ASSERT(dsnn_sparse_is(w));
    const size_t dense = 5 * 36;
    CU_ASSERT_EQUAL(dsnn_sparse_conv2d_nnz(l), 45u); /* PRECISE: round(0.25 * 180) */
    CU_ASSERT_DOUBLE_EQUAL(dsnn_sparse_conv2d_density(l), 45.0 / dense, 1e-12);
    CU_ASSERT_EQUAL(dsnn_layer_param_count(l), 45u + 5u);
    struct dsnn_rng rng;
    dsnn_rng_seed(&rng, 8, DSNN_RNG_STREAM_TOPOLOGY);
    for (int round = 0; round < 3; round++) {
        CU_ASSERT_EQUAL(dsnn_sparse_prune_magnitude(w, 10, &err), DSNN_OK);
        CU_ASSERT_EQUAL(dsnn_sparse_conv2d_nnz(l), 35u);
        CU_ASSERT_EQUAL(dsnn_sparse_grow_random(w, 10 + round, &rng, &err), DSNN_OK);
        CU_ASSERT_EQUAL(dsnn_sparse_check(w, &err), DSNN_OK);
        CU_ASSERT_EQUAL(compare(l, &g, true, 2, 50 + round), 0); /* params re-synced too */
        dsnn_sparse_set_nnz(w, 45, &rng, &err);
    }
    dsnn_layer_free(l);
}

static void test_rigl_dense_grad(void)
{
    struct dsnn_error err = {0};
    const struct geo g = {3, 5, 5, 4, 3, 1, 1};
    const size_t K = 27;
    struct dsnn_layer *l = make(&g, false, true, 0.2, 7);
    struct dsnn_layer *w = dsnn_sparse_conv2d_weights(l);
    const int batch = 3;
    const size_t ni = (size_t)batch * 75, no = (size_t)batch * 4 * 25;
    float *x = lc_alloc(ni), *y = lc_alloc(no), *dy = lc_alloc(no);
    double *dWr = malloc(sizeof(double) * K * 4), *dWa = malloc(sizeof(double) * K * 4), dbr[4],
           *dxr = malloc(sizeof(double) * ni);
    struct dsnn_rng rng;
    dsnn_rng_seed(&rng, 12, 1);
    lc_fill(x, ni, &rng, -1, 1);
    lc_fill(dy, no, &rng, -1, 1);
    /* without the dense gradient, growth by gradient is refused */
    CU_ASSERT_EQUAL(l->ops->forward(l, x, y, batch, true, NULL), DSNN_OK);
    CU_ASSERT_EQUAL(l->ops->backward(l, x, y, dy, NULL, batch, NULL), DSNN_OK);
    CU_ASSERT_EQUAL(dsnn_sparse_conv2d_grow_gradient(l, 5, &rng, &err), DSNN_ERR_INVALID);
    dsnn_sparse_conv2d_keep_dense_grad(l, true);
    dsnn_conv_set_workspace_limit(1); /* chunks: the dense gradient accumulates */
    CU_ASSERT_EQUAL(l->ops->forward(l, x, y, batch, true, NULL), DSNN_OK);
    CU_ASSERT_EQUAL(l->ops->backward(l, x, y, dy, NULL, batch, NULL), DSNN_OK);
    dsnn_conv_set_workspace_limit((size_t)16 << 20);
    double *W = dense_of_sparse(l, &g);
    ref_conv_grad(&g, W, x, dy, batch, dWr, dWa, dbr, dxr);
    /* expected: the 5 inactive positions of largest |dW| */
    uint8_t *active = calloc(K * 4, 1);
    struct dsnn_sparse_csr c;
    dsnn_sparse_get_csr(w, &c);
    for (int r = 0; r < 4; r++)
        for (int64_t k = c.row_ptr[r]; k < c.row_ptr[r + 1]; k++)
            active[(size_t)r * K + c.col[k]] = 1;
    const size_t before = c.nnz;
    int expect[5];
    for (int t = 0; t < 5; t++) {
        int best = -1;
        for (size_t i = 0; i < K * 4; i++)
            if (!active[i] && (best < 0 || fabs(dWr[i]) > fabs(dWr[best])))
                best = (int)i;
        expect[t] = best;
        active[best] = 1;
    }
    CU_ASSERT_EQUAL(dsnn_sparse_conv2d_grow_gradient(l, 5, &rng, &err), DSNN_OK);
    CU_ASSERT_EQUAL(dsnn_sparse_conv2d_nnz(l), before + 5);
    for (int t = 0; t < 5; t++)
        CU_ASSERT(dsnn_sparse_find(w, expect[t] / (int)K, expect[t] % (int)K) >= 0);
    CU_ASSERT_PTR_EQUAL(l->params[0].value, dsnn_sparse_weight(w)->value);
    free(x), free(y), free(dy), free(dWr), free(dWa), free(dxr), free(W), free(active);
    dsnn_layer_free(l);
}

/* l's forward and backward on one and on two threads (inputs from seed): outputs, input
 * gradients and every parameter gradient bit-identical. */
static void check_threads(struct dsnn_layer *l, int batch, uint64_t seed)
{
    const size_t ni = (size_t)batch * dsnn_shape_size(l->in);
    const size_t no = (size_t)batch * dsnn_shape_size(l->out);
    const size_t np = l->n_params < 2 ? l->n_params : 2;
    float *x = lc_alloc(ni), *dy = lc_alloc(no), *y[2], *dx[2], *gp[2][2] = {{NULL}};
    struct dsnn_rng rng;
    dsnn_rng_seed(&rng, seed, 1);
    lc_fill(x, ni, &rng, -1, 1);
    lc_fill(dy, no, &rng, -1, 1);
    for (int t = 0; t < 2; t++) {
        dsnn_set_num_threads(t + 1);
        y[t] = lc_alloc(no);
        dx[t] = lc_alloc(ni);
        CU_ASSERT_EQUAL(l->ops->forward(l, x, y[t], batch, true, NULL), DSNN_OK);
        CU_ASSERT_EQUAL(l->ops->backward(l, x, y[t], dy, dx[t], batch, NULL), DSNN_OK);
        for (size_t p = 0; p < np; p++) {
            gp[t][p] = lc_alloc(l->params[p].n);
            memcpy(gp[t][p], l->params[p].grad, sizeof(float) * l->params[p].n);
        }
    }
    dsnn_set_num_threads(0);
    CU_ASSERT_EQUAL(memcmp(y[0], y[1], sizeof(float) * no), 0);
    CU_ASSERT_EQUAL(memcmp(dx[0], dx[1], sizeof(float) * ni), 0);
    for (size_t p = 0; p < np; p++)
        CU_ASSERT_EQUAL(memcmp(gp[0][p], gp[1][p], sizeof(float) * l->params[p].n), 0);
    for (int t = 0; t < 2; t++) {
        free(y[t]), free(dx[t]);
        for (size_t p = 0; p < np; p++)
            free(gp[t][p]);
    }
    free(x), free(dy);
}

static void test_threads(void)
{
    const struct geo geo2[2] = {{6, 12, 12, 8, 3, 1, 1}, {6, 12, 12, 8, 3, 2, 1}};
    const int batch = 40; /* several sample chunks, a partial one */
    g_dense_above = 2.0; /* the sparse kernels at any density */
    for (int gi = 0; gi < 4; gi++) {
        const struct geo g = geo2[gi % 2];
        struct dsnn_layer *l = make(&g, true, true, gi < 2 ? 0.3 : 0.9, 2);
        CU_ASSERT_EQUAL(dsnn_sparse_conv2d_nnz(l), l->params[0].n);
        check_threads(l, batch, 1);
        CU_ASSERT_EQUAL(compare(l, &g, true, batch, 4), 0);
        dsnn_layer_free(l);
    }
    g_dense_above = -1.0;
}

/* The dense engine's blocking (layers/conv_gemm.c): more taps than one reduction block (K > 256),
 * more channels than one input-gradient block (M > 256, and not a multiple of the 6-row tile),
 * groups of positions that span images and end in a partial panel; every result against the
 * reference, and bit-identical on one and two threads (the threads' image ranges starting off
 * the tile width too). */
static void test_dense_blocks(void)
{
    /* the last two are large enough for two threads and put the second thread's first image
     * at a position that is no multiple of a tile's width (143 and 72 positions per image) */
    const struct geo gs[5] = {{40, 12, 12, 262, 3, 1, 1}, {30, 9, 9, 20, 1, 2, 0},
                              {7, 11, 13, 9, 3, 2, 1}, {24, 13, 11, 40, 3, 1, 1},
                              {16, 15, 17, 96, 3, 2, 1}};
    const int batch = 3;
    for (int gi = 0; gi < 5; gi++) {
        const struct geo *g = &gs[gi];
        struct dsnn_layer *l = make(g, true, false, 1.0, 30 + gi);
        const int bad = compare(l, g, false, batch, 60 + gi);
        if (bad)
            fprintf(stderr, "dense blocks geometry %d: %d mismatches\n", gi, bad);
        CU_ASSERT_EQUAL(bad, 0);
        /* the smallest workspace: groups of one tile of positions, with the reduction blocks
         * and the weight gradient's tap chunks */
        dsnn_conv_set_workspace_limit(1);
        const int bad1 = compare(l, g, false, batch, 70 + gi);
        dsnn_conv_set_workspace_limit((size_t)16 << 20);
        if (bad1)
            fprintf(stderr, "dense blocks geometry %d, smallest workspace: %d mismatches\n", gi,
                    bad1);
        CU_ASSERT_EQUAL(bad1, 0);
        check_threads(l, batch, 90 + gi);
        dsnn_layer_free(l);
    }
}

/* The dense engine's direct path (layers/conv_gemm.c: at least 16 reduction channels, batches
 * that fill the tile's panels of samples): forward and input gradient against the reference, in
 * one pass and in several (a workspace limit of 32 samples per pass, the last pass partial), and
 * bit-identical on one and two threads; the weight gradient's direct path (outputs of at most 16
 * positions: geometries 1, 2, 4, 5) likewise. The shapes: 3x3 s1 p1; stride 2 on odd sizes; 1x1 s2,
 * whose input gradient is 0 at the inputs no window reads; padding 2, where corner outputs read
 * one tap; more channels than one reduction block (128) in the forward and in the input
 * gradient. */
static void test_dense_direct(void)
{
    const struct geo gs[6] = {{16, 6, 6, 20, 3, 1, 1}, {24, 5, 7, 13, 3, 2, 1},
                              {32, 4, 4, 40, 1, 2, 0}, {20, 3, 3, 17, 3, 1, 2},
                              {136, 3, 3, 7, 3, 1, 1}, {20, 4, 4, 140, 3, 1, 1}};
    for (int gi = 0; gi < 6; gi++) {
        const struct geo *g = &gs[gi];
        struct dsnn_layer *l = make(g, gi % 2 == 0, false, 1.0, 80 + gi);
        const size_t oh = (size_t)od(g->h, g->k, g->s, g->p);
        const size_t ow = (size_t)od(g->w, g->k, g->s, g->p);
        const int bad = compare(l, g, false, 30, 81 + gi);
        /* 32 samples per pass: the largest plane (channels x positions; the written side's
         * channels rounded up to the tile's 6 rows, the weight gradient's input channels to
         * panels of 32) of the three passes, times 32 floats */
        const size_t in_pl = (size_t)g->c * g->h * g->w, out_pl = (size_t)g->out_c * oh * ow;
        const size_t sizes[5] = {in_pl, (size_t)(g->out_c + 5) / 6 * 6 * oh * ow, out_pl,
                                 (size_t)(g->c + 5) / 6 * 6 * g->h * g->w,
                                 (size_t)(g->c + 31) / 32 * 32 * g->h * g->w};
        size_t per = 0;
        for (int i = 0; i < 5; i++)
            per = sizes[i] > per ? sizes[i] : per;
        dsnn_conv_set_workspace_limit((per + 1) * 32 * sizeof(float));
        const int bad2 = compare(l, g, false, 60, 91 + gi);
        dsnn_conv_set_workspace_limit((size_t)16 << 20);
        if (bad || bad2)
            fprintf(stderr, "dense direct geometry %d: %d / %d mismatches\n", gi, bad, bad2);
        CU_ASSERT_EQUAL(bad, 0);
        CU_ASSERT_EQUAL(bad2, 0);
        check_threads(l, 64, 95 + gi);
        dsnn_layer_free(l);
    }
}

static void test_save_load(void)
{
    const struct geo g = {2, 5, 5, 3, 3, 1, 1};
    for (int sparse = 0; sparse < 2; sparse++) {
        struct dsnn_layer *a = make(&g, true, sparse, 0.4, 1), *b = make(&g, true, sparse, 0.4, 2);
        if (sparse) /* a different topology size too */
            CU_ASSERT_EQUAL(dsnn_sparse_prune_magnitude(dsnn_sparse_conv2d_weights(a), 3, NULL),
                            DSNN_OK);
        float x[2 * 50], ya[2 * 75], yb[2 * 75];
        struct dsnn_rng rng;
        dsnn_rng_seed(&rng, 3, 1);
        lc_fill(x, 100, &rng, -1, 1);
        /* b runs first, so that what it caches of its own topology must be dropped by the load */
        CU_ASSERT_EQUAL(b->ops->forward(b, x, yb, 2, false, NULL), DSNN_OK);
        lc_save_load(a, b);
        CU_ASSERT_EQUAL(a->ops->forward(a, x, ya, 2, false, NULL), DSNN_OK);
        CU_ASSERT_EQUAL(b->ops->forward(b, x, yb, 2, false, NULL), DSNN_OK);
        CU_ASSERT_EQUAL(memcmp(ya, yb, sizeof ya), 0);
        if (sparse)
            CU_ASSERT_EQUAL(dsnn_sparse_conv2d_nnz(a), dsnn_sparse_conv2d_nnz(b));
        dsnn_layer_free(a);
        dsnn_layer_free(b);
    }
}

static void test_geometry_and_invalid(void)
{
    struct dsnn_error err = {0};
    struct dsnn_shape in = {3, 32, 32};
    struct dsnn_layer *l = dsnn_conv2d_new("c1", in, 16, 3, 2, 1, true, &err);
    struct dsnn_conv2d_geom gm;
    CU_ASSERT_FATAL(dsnn_conv2d_geometry(l, &gm));
    CU_ASSERT(gm.in_c == 3 && gm.out_c == 16 && gm.out_h == 16 && gm.out_w == 16 &&
              gm.kernel == 3 && gm.stride == 2 && gm.padding == 1 && gm.bias);
    CU_ASSERT_PTR_NULL(dsnn_conv2d_weight(l)); /* before init */
    dsnn_layer_free(l);
    l = dsnn_sparse_conv2d_new("c2", in, 8, 5, 1, 0, false, NULL, &err);
    CU_ASSERT_FATAL(dsnn_conv2d_geometry(l, &gm));
    CU_ASSERT(gm.out_h == 28 && !gm.bias);
    CU_ASSERT_EQUAL(dsnn_sparse_conv2d_nnz(l), 0u); /* before init */
    dsnn_layer_free(l);
    CU_ASSERT(!dsnn_conv2d_geometry(NULL, &gm));
    /* the engine's fused activation is not supported by the convolution */
    const struct geo g = {2, 5, 5, 3, 3, 1, 1};
    l = make(&g, true, true, 0.5, 1);
    CU_ASSERT_EQUAL(dsnn_sparse_set_activation(dsnn_sparse_conv2d_weights(l),
                                               DSNN_SPARSE_ACT_RELU, &err),
                    DSNN_OK);
    float x[50], y[75];
    memset(x, 0, sizeof x);
    CU_ASSERT_EQUAL(l->ops->forward(l, x, y, 1, true, NULL), DSNN_ERR_UNSUPPORTED);
    dsnn_layer_free(l);
    CU_ASSERT_PTR_NULL(dsnn_conv2d_new("c", (struct dsnn_shape){1, 2, 2}, 4, 5, 1, 1, true, &err));
    CU_ASSERT_EQUAL(err.status, DSNN_ERR_INVALID);
    CU_ASSERT_PTR_NULL(dsnn_conv2d_new("c", in, 0, 3, 1, 1, true, &err));
    CU_ASSERT_PTR_NULL(dsnn_conv2d_new("c", in, 4, 3, 0, 1, true, &err));
    CU_ASSERT_PTR_NULL(dsnn_sparse_conv2d_new("c", in, 4, 3, 1, -1, true, NULL, &err));
    struct dsnn_sparse_init bad = dsnn_sparse_init_default();
    bad.density = 2.0;
    CU_ASSERT_PTR_NULL(dsnn_sparse_conv2d_new("c", in, 4, 3, 1, 1, true, &bad, &err));
}

/* Hebbian coactivations (nupic DSCNN) against a naive count: for every (o, c, i, j), the
 * (sample, output position) pairs with input element and output both > 0; at the active
 * connections and dense, over every geometry (batch 37: several panel chunks). */
static void test_coactivations(void)
{
    struct dsnn_error err = {0};
    for (size_t gi = 0; gi < N_GEOS; gi++) {
        const struct geo *g = &geos[gi];
        const int oh = od(g->h, g->k, g->s, g->p), ow = od(g->w, g->k, g->s, g->p), batch = 37;
        const size_t nx = (size_t)batch * g->c * g->h * g->w;
        const size_t ny = (size_t)batch * g->out_c * oh * ow;
        const size_t K = (size_t)g->c * g->k * g->k, pairs = K * (size_t)g->out_c;
        struct dsnn_layer *l = make(g, false, true, 0.4, 3 + gi);
        float *x = lc_alloc(nx), *y = lc_alloc(ny), *dense = lc_alloc(pairs);
        struct dsnn_rng rng;
        dsnn_rng_seed(&rng, 40 + gi, 1);
        lc_fill(x, nx, &rng, -1, 1);
        lc_fill(y, ny, &rng, -1, 1);
        for (size_t i = 0; i < nx; i += 7)
            x[i] = 0.0f; /* exact zeros are inactive */
        double *ref = calloc(pairs, sizeof *ref);
        for (int b = 0; b < batch; b++)
            for (int o = 0; o < g->out_c; o++)
                for (int oy = 0; oy < oh; oy++)
                    for (int ox = 0; ox < ow; ox++) {
                        if (!(y[(((size_t)b * g->out_c + o) * oh + oy) * ow + ox] > 0))
                            continue;
                        for (int c = 0; c < g->c; c++)
                            for (int i = 0; i < g->k; i++)
                                for (int j = 0; j < g->k; j++) {
                                    const int iy = oy * g->s - g->p + i, ix = ox * g->s - g->p + j;
                                    if (iy < 0 || iy >= g->h || ix < 0 || ix >= g->w)
                                        continue;
                                    if (x[(((size_t)b * g->c + c) * g->h + iy) * g->w + ix] > 0)
                                        ref[(size_t)o * K + ((size_t)c * g->k + i) * g->k + j] +=
                                            1;
                                }
                    }
        struct dsnn_layer *w = dsnn_sparse_conv2d_weights(l);
        struct dsnn_sparse_csr csr;
        CU_ASSERT_FATAL(dsnn_sparse_get_csr(w, &csr));
        float *acc = lc_alloc(csr.nnz ? csr.nnz : 1);
        for (size_t k = 0; k < csr.nnz; k++)
            acc[k] = 1.0f; /* incremented, not overwritten */
        memset(dense, 0, sizeof(float) * pairs);
        CU_ASSERT_EQUAL_FATAL(dsnn_sparse_conv2d_coactivations(l, x, y, batch, acc, dense, &err),
                              DSNN_OK);
        int bad = 0;
        for (size_t p = 0; p < pairs; p++)
            bad += dense[p] != (float)ref[p];
        for (int o = 0; o < csr.n_out; o++)
            for (int64_t k = csr.row_ptr[o]; k < csr.row_ptr[o + 1]; k++)
                bad += acc[k] != 1.0f + (float)ref[(size_t)o * K + (size_t)csr.col[k]];
        if (bad)
            fprintf(stderr, "\ngeometry %zu: %d coactivation counts differ\n", gi, bad);
        CU_ASSERT_EQUAL(bad, 0);
        /* forward and backward are still exact after the input panels were overwritten */
        CU_ASSERT_EQUAL(compare(l, g, true, batch, 99 + gi), 0);
        free(x), free(y), free(dense), free(acc), free(ref);
        dsnn_layer_free(l);
    }
    CU_ASSERT_EQUAL(dsnn_sparse_conv2d_coactivations(NULL, NULL, NULL, 1, NULL, NULL, &err),
                    DSNN_ERR_INVALID);
}

static CU_TestInfo tests[] = {
    {"dense conv2d vs reference", test_dense_reference},
    {"sparse conv2d vs reference (density 1, 0.3, 0; sparse and dense paths)",
     test_sparse_reference},
    {"sparse conv2d over several passes; dense_above", test_sparse_passes},
    {"chunked batches", test_chunking},
    {"gradients vs finite differences", test_fd},
    {"sparse topology edits through the engine", test_sparse_topology},
    {"RigL growth from the dense gradient", test_rigl_dense_grad},
    {"thread count independence (sparse)", test_threads},
    {"dense engine: reduction blocks, partial tiles, threads", test_dense_blocks},
    {"dense engine: the direct path, passes, threads", test_dense_direct},
    {"save / load", test_save_load},
    {"Hebbian coactivations vs a naive count", test_coactivations},
    {"geometry and invalid arguments", test_geometry_and_invalid},
    CU_TEST_INFO_NULL,
};

DSNN_TEST_MAIN("layers_conv", tests)
