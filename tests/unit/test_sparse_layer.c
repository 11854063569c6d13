/* test_sparse_layer.c - the sparse linear layer's kernels against a naive dense reference,
 * finite differences, thread-count independence, dense-gradient tiles and checkpoints. */
#include "harness.h"

#include <dsnn/dsnn.h>
#include <dsnn/sparse.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct dsnn_layer *make_layer(int n_in, int n_out, bool bias, double density,
                                     enum dsnn_sparse_mask mask, uint64_t seed)
{
    struct dsnn_error err = {0};
    struct dsnn_sparse_init init = dsnn_sparse_init_default();
    init.density = density;
    init.mask = mask;
    struct dsnn_layer *l = dsnn_sparse_linear_new("fc", n_in, n_out, bias, &init, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(l);
    struct dsnn_rng rng;
    dsnn_rng_seed(&rng, seed, DSNN_RNG_STREAM_INIT);
    CU_ASSERT_EQUAL_FATAL(l->ops->init(l, &rng, &err), DSNN_OK);
    return l;
}

static void fill(float *p, size_t n, struct dsnn_rng *rng)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (float)(2.0 * dsnn_rng_uniform(rng) - 1.0);
}

/* Dense W [n_out][n_in] of a sparse layer (tests only). */
static double *dense_of(struct dsnn_layer *l)
{
    struct dsnn_sparse_csr c;
    CU_ASSERT_FATAL(dsnn_sparse_get_csr(l, &c));
    double *W = calloc((size_t)c.n_in * c.n_out, sizeof *W);
    for (int r = 0; r < c.n_out; r++)
        for (int64_t k = c.row_ptr[r]; k < c.row_ptr[r + 1]; k++)
            W[(size_t)r * c.n_in + c.col[k]] = c.value[k];
    return W;
}

static bool close_to(double a, double b, double tol)
{
    return fabs(a - b) <= tol * (1.0 + fabs(b));
}

/* Forward, weight/bias gradient and input gradient against double-precision references. */
static void check_against_reference(int n_in, int n_out, int batch, double density,
                                    enum dsnn_sparse_mask mask, bool bias, uint64_t seed)
{
    struct dsnn_layer *l = make_layer(n_in, n_out, bias, density, mask, seed);
    const bool train = seed % 3 != 0;  /* eval-mode forward: backward gathers CSC values itself */
    const bool edit = seed % 5 == 0;   /* topology edit between forward and backward */
    struct dsnn_rng rng;
    dsnn_rng_seed(&rng, seed, 77);
    float *x = malloc(sizeof(float) * (size_t)batch * n_in);
    float *y = malloc(sizeof(float) * (size_t)batch * n_out);
    float *dy = malloc(sizeof(float) * (size_t)batch * n_out);
    float *dx = malloc(sizeof(float) * (size_t)batch * n_in);
    fill(x, (size_t)batch * n_in, &rng);
    fill(dy, (size_t)batch * n_out, &rng);
    /* random bias so that it matters */
    if (bias)
        fill(dsnn_sparse_bias(l)->value, (size_t)n_out, &rng);
    double *W = dense_of(l);
    CU_ASSERT_EQUAL_FATAL(l->ops->forward(l, x, y, batch, train, NULL), DSNN_OK);
    if (edit) { /* the gradients then follow the new topology; y is checked against the old W */
        double *W_old = W;
        float *y_keep = malloc(sizeof(float) * (size_t)batch * n_out);
        memcpy(y_keep, y, sizeof(float) * (size_t)batch * n_out);
        struct dsnn_error e = {0};
        size_t nnz = dsnn_sparse_nnz(l), total = (size_t)n_in * n_out;
        CU_ASSERT_EQUAL(dsnn_sparse_prune_magnitude(l, nnz / 3, &e), DSNN_OK);
        size_t g = (total - dsnn_sparse_nnz(l)) / 2;
        CU_ASSERT_EQUAL(dsnn_sparse_grow_random(l, g, &rng, &e), DSNN_OK);
        dsnn_sparse_set_grow_init(l, DSNN_SPARSE_GROW_NORMAL, 0.3);
        CU_ASSERT_EQUAL(dsnn_sparse_grow_random(l, (total - dsnn_sparse_nnz(l)) / 3, &rng, &e),
                        DSNN_OK);
        W = dense_of(l);
        /* y of the forward against the old weights */
        int bad = 0;
        const float *bb = bias ? dsnn_sparse_bias(l)->value : NULL;
        for (int s2 = 0; s2 < batch; s2++)
            for (int o = 0; o < n_out; o++) {
                double ref = bb ? bb[o] : 0.0;
                for (int i = 0; i < n_in; i++)
                    ref += W_old[(size_t)o * n_in + i] * x[(size_t)s2 * n_in + i];
                bad += !close_to(y_keep[(size_t)s2 * n_out + o], ref, 1e-5);
            }
        CU_ASSERT_EQUAL(bad, 0);
        free(W_old);
        free(y_keep);
        /* recompute y with the new weights for the checks below */
        CU_ASSERT_EQUAL_FATAL(l->ops->forward(l, x, y, batch, train, NULL), DSNN_OK);
    }
    CU_ASSERT_EQUAL_FATAL(l->ops->backward(l, x, y, dy, dx, batch, NULL), DSNN_OK);
    const float *b = bias ? dsnn_sparse_bias(l)->value : NULL;
    int bad_y = 0, bad_dx = 0, bad_dw = 0, bad_db = 0;
    for (int s = 0; s < batch; s++)
        for (int o = 0; o < n_out; o++) {
            double ref = b ? b[o] : 0.0;
            for (int i = 0; i < n_in; i++)
                ref += W[(size_t)o * n_in + i] * x[(size_t)s * n_in + i];
            bad_y += !close_to(y[(size_t)s * n_out + o], ref, 1e-5);
        }
    for (int s = 0; s < batch; s++)
        for (int i = 0; i < n_in; i++) {
            double ref = 0;
            for (int o = 0; o < n_out; o++)
                ref += W[(size_t)o * n_in + i] * dy[(size_t)s * n_out + o];
            bad_dx += !close_to(dx[(size_t)s * n_in + i], ref, 1e-5);
        }
    struct dsnn_sparse_csr c;
    dsnn_sparse_get_csr(l, &c);
    for (int o = 0; o < n_out; o++) {
        for (int64_t k = c.row_ptr[o]; k < c.row_ptr[o + 1]; k++) {
            double ref = 0;
            for (int s = 0; s < batch; s++)
                ref += dy[(size_t)s * n_out + o] * x[(size_t)s * n_in + c.col[k]];
            bad_dw += !close_to(c.grad[k], ref, 1e-5 * (1 + sqrt(batch)));
        }
        if (bias) {
            double ref = 0;
            for (int s = 0; s < batch; s++)
                ref += dy[(size_t)s * n_out + o];
            bad_db += !close_to(dsnn_sparse_bias(l)->grad[o], ref, 1e-5 * (1 + sqrt(batch)));
        }
    }
    if (bad_y || bad_dx || bad_dw || bad_db)
        fprintf(stderr, "\n  %dx%d batch %d density %g mask %d: bad y %d dx %d dw %d db %d\n",
                n_out, n_in, batch, density, (int)mask, bad_y, bad_dx, bad_dw, bad_db);
    CU_ASSERT_EQUAL(bad_y + bad_dx + bad_dw + bad_db, 0);
    free(W);
    free(x);
    free(y);
    free(dy);
    free(dx);
    dsnn_layer_free(l);
}

static void test_reference_shapes(void)
{
    static const int batches[] = {1, 3, 8, 15, 16, 17, 33, 63, 64, 65, 100, 128, 129, 200};
    struct dsnn_rng rng;
    dsnn_rng_seed(&rng, 1234, 1);
    int threads[] = {1, 2, 3};
    for (int ti = 0; ti < 3; ti++) {
        dsnn_set_num_threads(threads[ti]);
        for (int t = 0; t < 24; t++) {
            int n_in = 1 + (int)dsnn_rng_below(&rng, 70);
            int n_out = 1 + (int)dsnn_rng_below(&rng, 70);
            int batch = batches[dsnn_rng_below(&rng, sizeof batches / sizeof *batches)];
            double dens[] = {0.0, 0.02, 0.1, 0.5, 1.0};
            double d = dens[dsnn_rng_below(&rng, 5)];
            enum dsnn_sparse_mask m = (enum dsnn_sparse_mask)dsnn_rng_below(&rng, 3);
            check_against_reference(n_in, n_out, batch, d, m, dsnn_rng_below(&rng, 2), 100 + t);
        }
    }
    /* wide layers (multi-block transposes), empty rows and columns at low density */
    check_against_reference(300, 200, 130, 0.01, DSNN_SPARSE_MASK_PRECISE, true, 5);
    check_against_reference(257, 129, 64, 0.2, DSNN_SPARSE_MASK_PRECISE_PER_OUTPUT, true, 6);
    dsnn_set_num_threads(0);
}

/* Every output bit-identical for 1..4 threads. */
static void test_thread_independence(void)
{
    const int n_in = 150, n_out = 90, batch = 130;
    float *y[4], *dx[4], *dw[4], *db[4];
    struct dsnn_rng rng;
    dsnn_rng_seed(&rng, 9, 9);
    float *x = malloc(sizeof(float) * batch * n_in), *dy = malloc(sizeof(float) * batch * n_out);
    fill(x, (size_t)batch * n_in, &rng);
    fill(dy, (size_t)batch * n_out, &rng);
    for (int t = 0; t < 4; t++) {
        dsnn_set_num_threads(t + 1);
        struct dsnn_layer *l = make_layer(n_in, n_out, true, 0.1, DSNN_SPARSE_MASK_PRECISE, 3);
        y[t] = malloc(sizeof(float) * batch * n_out);
        dx[t] = malloc(sizeof(float) * batch * n_in);
        CU_ASSERT_EQUAL(l->ops->forward(l, x, y[t], batch, true, NULL), DSNN_OK);
        CU_ASSERT_EQUAL(l->ops->backward(l, x, y[t], dy, dx[t], batch, NULL), DSNN_OK);
        size_t nnz = dsnn_sparse_nnz(l);
        dw[t] = malloc(sizeof(float) * nnz);
        db[t] = malloc(sizeof(float) * n_out);
        memcpy(dw[t], dsnn_sparse_weight(l)->grad, sizeof(float) * nnz);
        memcpy(db[t], dsnn_sparse_bias(l)->grad, sizeof(float) * n_out);
        if (t > 0) {
            CU_ASSERT(memcmp(y[t], y[0], sizeof(float) * batch * n_out) == 0);
            CU_ASSERT(memcmp(dx[t], dx[0], sizeof(float) * batch * n_in) == 0);
            CU_ASSERT(memcmp(dw[t], dw[0], sizeof(float) * nnz) == 0);
            CU_ASSERT(memcmp(db[t], db[0], sizeof(float) * n_out) == 0);
        }
        dsnn_layer_free(l);
    }
    for (int t = 0; t < 4; t++) {
        free(y[t]);
        free(dx[t]);
        free(dw[t]);
        free(db[t]);
    }
    free(x);
    free(dy);
    dsnn_set_num_threads(0);
}

/* Finite differences of L = sum(y * R) with respect to weights, biases and inputs. */
static void test_finite_differences(void)
{
    const int n_in = 23, n_out = 17, batch = 5;
    struct dsnn_layer *l = make_layer(n_in, n_out, true, 0.3, DSNN_SPARSE_MASK_PRECISE, 11);
    struct dsnn_rng rng;
    dsnn_rng_seed(&rng, 4, 4);
    float x[5 * 23], y[5 * 17], R[5 * 17], dx[5 * 23];
    fill(x, sizeof x / sizeof *x, &rng);
    fill(R, sizeof R / sizeof *R, &rng);
#define LOSS(out)                                                                                 \
    do {                                                                                          \
        l->ops->forward(l, x, y, batch, true, NULL);                                                    \
        double s_ = 0;                                                                            \
        for (int i_ = 0; i_ < batch * n_out; i_++)                                                \
            s_ += (double)y[i_] * R[i_];                                                          \
        (out) = s_;                                                                               \
    } while (0)
    double L0;
    LOSS(L0);
    CU_ASSERT_EQUAL(l->ops->backward(l, x, y, R, dx, batch, NULL), DSNN_OK);
    struct dsnn_param_block *w = dsnn_sparse_weight(l), *b = dsnn_sparse_bias(l);
    float *gw = malloc(sizeof(float) * w->n), gb[17];
    memcpy(gw, w->grad, sizeof(float) * w->n);
    memcpy(gb, b->grad, sizeof gb);
    const float h = 1e-2f;
    int bad = 0;
    for (size_t k = 0; k < w->n; k++) {
        double lp, lm;
        float v = w->value[k];
        w->value[k] = v + h;
        LOSS(lp);
        w->value[k] = v - h;
        LOSS(lm);
        w->value[k] = v;
        bad += !close_to((lp - lm) / (2 * h), gw[k], 1e-3);
    }
    for (int o = 0; o < n_out; o++) {
        double lp, lm;
        float v = b->value[o];
        b->value[o] = v + h;
        LOSS(lp);
        b->value[o] = v - h;
        LOSS(lm);
        b->value[o] = v;
        bad += !close_to((lp - lm) / (2 * h), gb[o], 1e-3);
    }
    for (int i = 0; i < batch * n_in; i++) {
        double lp, lm;
        float v = x[i];
        x[i] = v + h;
        LOSS(lp);
        x[i] = v - h;
        LOSS(lm);
        x[i] = v;
        bad += !close_to((lp - lm) / (2 * h), dx[i], 1e-3);
    }
#undef LOSS
    CU_ASSERT_EQUAL(bad, 0);
    (void)L0;
    free(gw);
    dsnn_layer_free(l);
}

/* Density 1 with the dense layer's init reproduces the dense linear layer. */
static void test_density_one_matches_dense(void)
{
    struct dsnn_error err = {0};
    const int n_in = 40, n_out = 24, batch = 19;
    struct dsnn_layer *d = dsnn_linear_new("d", n_in, n_out, true, &err);
    struct dsnn_layer *s = make_layer(n_in, n_out, true, 1.0, DSNN_SPARSE_MASK_PRECISE, 21);
    struct dsnn_rng rng;
    dsnn_rng_seed(&rng, 21, DSNN_RNG_STREAM_INIT);
    CU_ASSERT_EQUAL_FATAL(d->ops->init(d, &rng, &err), DSNN_OK);
    CU_ASSERT_EQUAL(dsnn_sparse_nnz(s), (size_t)n_in * n_out);
    CU_ASSERT(memcmp(dsnn_linear_weight(d), dsnn_sparse_weight(s)->value,
                     sizeof(float) * n_in * n_out) == 0);
    CU_ASSERT(memcmp(dsnn_linear_bias(d), dsnn_sparse_bias(s)->value, sizeof(float) * n_out) ==
              0);
    float x[19 * 40], yd[19 * 24], ys[19 * 24];
    dsnn_rng_seed(&rng, 1, 1);
    fill(x, sizeof x / sizeof *x, &rng);
    d->ops->forward(d, x, yd, batch, true, NULL);
    s->ops->forward(s, x, ys, batch, true, NULL);
    int bad = 0;
    for (int i = 0; i < batch * n_out; i++)
        bad += !close_to(ys[i], yd[i], 1e-5);
    CU_ASSERT_EQUAL(bad, 0);
    int ni, no;
    bool bias;
    CU_ASSERT(dsnn_sparse_linear_dims_(s, &ni, &no, &bias));
    CU_ASSERT(ni == n_in && no == n_out && bias);
    CU_ASSERT(dsnn_linear_dims(s, &ni, &no, &bias));
    CU_ASSERT(!dsnn_sparse_linear_dims_(d, &ni, &no, &bias));
    dsnn_layer_free(d);
    dsnn_layer_free(s);
}

/* The dense gradient tile equals the sparse gradient at active connections and dy^T x elsewhere;
 * RigL growth picks the largest |grad| among inactive ones. */
static void test_dense_gradient(void)
{
    struct dsnn_error err = {0};
    const int n_in = 37, n_out = 29, batch = 21;
    struct dsnn_layer *l = make_layer(n_in, n_out, false, 0.15, DSNN_SPARSE_MASK_PRECISE, 8);
    struct dsnn_rng rng;
    dsnn_rng_seed(&rng, 8, 8);
    float x[21 * 37], y[21 * 29], dy[21 * 29];
    fill(x, sizeof x / sizeof *x, &rng);
    fill(dy, sizeof dy / sizeof *dy, &rng);
    CU_ASSERT_EQUAL(dsnn_sparse_dense_grad_rows(l, 0, 1, y, &err), DSNN_ERR_INVALID);
    l->ops->forward(l, x, y, batch, true, NULL);
    l->ops->backward(l, x, y, dy, NULL, batch, NULL);
    float *G = malloc(sizeof(float) * n_in * n_out);
    CU_ASSERT_EQUAL(dsnn_sparse_dense_grad_rows(l, 3, 20, G + 3 * n_in, &err), DSNN_OK);
    CU_ASSERT_EQUAL(dsnn_sparse_dense_grad_rows(l, 0, 3, G, &err), DSNN_OK);
    CU_ASSERT_EQUAL(dsnn_sparse_dense_grad_rows(l, 20, n_out, G + 20 * n_in, &err), DSNN_OK);
    int bad = 0;
    for (int o = 0; o < n_out; o++)
        for (int i = 0; i < n_in; i++) {
            double ref = 0;
            for (int s = 0; s < batch; s++)
                ref += (double)dy[s * n_out + o] * x[s * n_in + i];
            bad += !close_to(G[o * n_in + i], ref, 1e-5);
            int64_t k = dsnn_sparse_find(l, o, i);
            if (k >= 0)
                bad += !close_to(dsnn_sparse_weight(l)->grad[k], ref, 1e-5);
        }
    CU_ASSERT_EQUAL(bad, 0);
    /* RigL growth */
    size_t nnz0 = dsnn_sparse_nnz(l);
    uint8_t *was = calloc((size_t)n_in * n_out, 1);
    for (int o = 0; o < n_out; o++)
        for (int i = 0; i < n_in; i++)
            was[o * n_in + i] = dsnn_sparse_find(l, o, i) >= 0;
    CU_ASSERT_EQUAL(dsnn_sparse_grow_gradient(l, 50, NULL, &err), DSNN_OK);
    CU_ASSERT_EQUAL(dsnn_sparse_nnz(l), nnz0 + 50);
    float min_grown = INFINITY, max_left = 0;
    for (int o = 0; o < n_out; o++)
        for (int i = 0; i < n_in; i++) {
            if (was[o * n_in + i])
                continue;
            float g = fabsf(G[o * n_in + i]);
            if (dsnn_sparse_find(l, o, i) >= 0) {
                min_grown = fminf(min_grown, g);
                CU_ASSERT_EQUAL(dsnn_sparse_weight(l)->value[dsnn_sparse_find(l, o, i)], 0.0f);
            } else
                max_left = fmaxf(max_left, g);
        }
    CU_ASSERT(min_grown >= max_left);
    CU_ASSERT_EQUAL(dsnn_sparse_check(l, &err), DSNN_OK);
    free(was);
    free(G);
    dsnn_layer_free(l);
}

/* Fused ReLU is bit-identical to a sparse layer followed by a relu layer. */
static void test_fused_relu(void)
{
    struct dsnn_error err = {0};
    const int shapes[][3] = {{37, 29, 1}, {100, 64, 130}, {13, 200, 64}, {250, 9, 17}};
    for (int t = 0; t < 2; t++) {
        dsnn_set_num_threads(t + 1);
        for (size_t si = 0; si < sizeof shapes / sizeof *shapes; si++) {
            const int n_in = shapes[si][0], n_out = shapes[si][1], batch = shapes[si][2];
            struct dsnn_layer *a = make_layer(n_in, n_out, true, 0.3, DSNN_SPARSE_MASK_PRECISE, 3);
            struct dsnn_layer *b = make_layer(n_in, n_out, true, 0.3, DSNN_SPARSE_MASK_PRECISE, 3);
            struct dsnn_layer *r = dsnn_relu_new("r", (struct dsnn_shape){n_out, 1, 1}, &err);
            CU_ASSERT_EQUAL(dsnn_sparse_set_activation(a, DSNN_SPARSE_ACT_RELU, &err), DSNN_OK);
            CU_ASSERT_EQUAL(dsnn_sparse_get_activation(a), DSNN_SPARSE_ACT_RELU);
            size_t nx = (size_t)batch * n_in, ny = (size_t)batch * n_out;
            float *x = malloc(sizeof(float) * nx), *dy = malloc(sizeof(float) * ny);
            float *ya = malloc(sizeof(float) * ny), *yb = malloc(sizeof(float) * ny);
            float *yr = malloc(sizeof(float) * ny), *dyr = malloc(sizeof(float) * ny);
            float *dxa = malloc(sizeof(float) * nx), *dxb = malloc(sizeof(float) * nx);
            struct dsnn_rng rng;
            dsnn_rng_seed(&rng, si, 3);
            fill(x, nx, &rng);
            fill(dy, ny, &rng);
            a->ops->forward(a, x, ya, batch, true, NULL);
            b->ops->forward(b, x, yb, batch, true, NULL);
            r->ops->forward(r, yb, yr, batch, true, NULL);
            CU_ASSERT(memcmp(ya, yr, sizeof(float) * ny) == 0);
            CU_ASSERT_EQUAL(a->ops->backward(a, x, ya, dy, dxa, batch, NULL), DSNN_OK);
            r->ops->backward(r, yb, yr, dy, dyr, batch, NULL);
            b->ops->backward(b, x, yb, dyr, dxb, batch, NULL);
            CU_ASSERT(memcmp(dxa, dxb, sizeof(float) * nx) == 0);
            size_t nnz = dsnn_sparse_nnz(a);
            CU_ASSERT(memcmp(dsnn_sparse_weight(a)->grad, dsnn_sparse_weight(b)->grad,
                             sizeof(float) * nnz) == 0);
            CU_ASSERT(memcmp(dsnn_sparse_bias(a)->grad, dsnn_sparse_bias(b)->grad,
                             sizeof(float) * n_out) == 0);
            CU_ASSERT_EQUAL(a->ops->backward(a, x, NULL, dy, dxa, batch, NULL), DSNN_ERR_INVALID);
            free(x), free(dy), free(ya), free(yb), free(yr), free(dyr), free(dxa), free(dxb);
            dsnn_layer_free(a);
            dsnn_layer_free(b);
            dsnn_layer_free(r);
        }
    }
    dsnn_set_num_threads(0);
}

/* a and b (same shape, same topology) hold bit-identical weight, bias and dense gradients. */
static void expect_same_gradients(struct dsnn_layer *a, struct dsnn_layer *b)
{
    struct dsnn_error err = {0};
    int n_in, n_out;
    bool bias;
    CU_ASSERT_FATAL(dsnn_sparse_linear_dims_(a, &n_in, &n_out, &bias));
    const size_t nnz = dsnn_sparse_nnz(a);
    CU_ASSERT_EQUAL(nnz, dsnn_sparse_nnz(b));
    CU_ASSERT(memcmp(dsnn_sparse_weight(a)->grad, dsnn_sparse_weight(b)->grad,
                     sizeof(float) * nnz) == 0);
    if (bias)
        CU_ASSERT(memcmp(dsnn_sparse_bias(a)->grad, dsnn_sparse_bias(b)->grad,
                         sizeof(float) * (size_t)n_out) == 0);
    /* dense gradients (read from the panels of the last backward) */
    const size_t gn = (size_t)n_in * n_out;
    float *ga = malloc(sizeof(float) * gn), *gb = malloc(sizeof(float) * gn);
    CU_ASSERT_EQUAL(dsnn_sparse_dense_grad_rows(a, 0, n_out, ga, &err), DSNN_OK);
    CU_ASSERT_EQUAL(dsnn_sparse_dense_grad_rows(b, 0, n_out, gb, &err), DSNN_OK);
    CU_ASSERT(memcmp(ga, gb, sizeof(float) * gn) == 0);
    free(ga);
    free(gb);
}

/* Adjacent sparse layers of a net exchange feature-major panels (no sample-major activations or
 * gradients in between; ReLU mask fused into the input gradient). Everything must be
 * bit-identical to the same layers called one by one outside a net: logits, every activation
 * (written on demand), parameter gradients and dense gradients, for several batch sizes (one
 * chunk, partial chunks, several chunks) and thread counts (including row-split work items). */
static void test_panel_handoff(void)
{
    struct dsnn_error err = {0};
    const int sizes[] = {45, 70, 33, 6};
    const int batches[] = {1, 70, 128, 200};
    for (int variant = 0; variant < 2; variant++) {
        for (int threads = 1; threads <= 3; threads++) {
            dsnn_set_num_threads(threads);
            struct dsnn_layer *ref[3];
            struct dsnn_net *net =
                dsnn_net_new((struct dsnn_shape){sizes[0], 1, 1}, sizes[3], &err);
            CU_ASSERT_PTR_NOT_NULL_FATAL(net);
            for (int i = 0; i < 3; i++) {
                /* variant 1: the middle layer has no activation (a linear pair) */
                bool relu = i < 2 && !(variant == 1 && i == 1);
                struct dsnn_layer *a = make_layer(sizes[i], sizes[i + 1], true, 0.3,
                                                  DSNN_SPARSE_MASK_PRECISE, 40 + (uint64_t)i);
                ref[i] = make_layer(sizes[i], sizes[i + 1], true, 0.3, DSNN_SPARSE_MASK_PRECISE,
                                    40 + (uint64_t)i);
                snprintf(a->name, sizeof a->name, "fc%d", i + 1);
                if (relu) {
                    CU_ASSERT_EQUAL(dsnn_sparse_set_activation(a, DSNN_SPARSE_ACT_RELU, &err),
                                    DSNN_OK);
                    CU_ASSERT_EQUAL(dsnn_sparse_set_activation(ref[i], DSNN_SPARSE_ACT_RELU, &err),
                                    DSNN_OK);
                }
                CU_ASSERT_EQUAL_FATAL(dsnn_net_add(net, a, &err), DSNN_OK);
            }
            struct dsnn_rng rng;
            dsnn_rng_seed(&rng, 5, DSNN_RNG_STREAM_INIT);
            CU_ASSERT_EQUAL_FATAL(dsnn_net_init(net, &rng, 200, &err), DSNN_OK);
            for (size_t bi = 0; bi < sizeof batches / sizeof *batches; bi++) {
                const int B = batches[bi];
                float *x = malloc(sizeof(float) * (size_t)B * sizes[0]);
                float *dl = malloc(sizeof(float) * (size_t)B * sizes[3]);
                float *y[3], *dy[3];
                for (int i = 0; i < 3; i++) {
                    y[i] = malloc(sizeof(float) * (size_t)B * sizes[i + 1]);
                    dy[i] = malloc(sizeof(float) * (size_t)B * sizes[i + 1]);
                }
                dsnn_rng_seed(&rng, 100 + bi, 1);
                fill(x, (size_t)B * sizes[0], &rng);
                fill(dl, (size_t)B * sizes[3], &rng);
                /* reference: layer by layer, sample-major in between */
                for (int i = 0; i < 3; i++)
                    CU_ASSERT_EQUAL(ref[i]->ops->forward(ref[i], i ? y[i - 1] : x, y[i], B, true, NULL),
                                    DSNN_OK);
                memcpy(dy[2], dl, sizeof(float) * (size_t)B * sizes[3]);
                for (int i = 2; i >= 0; i--)
                    CU_ASSERT_EQUAL(ref[i]->ops->backward(ref[i], i ? y[i - 1] : x, y[i], dy[i],
                                                          i ? dy[i - 1] : NULL, B, NULL),
                                    DSNN_OK);
                const float *z = dsnn_net_forward(net, x, B, true, &err);
                CU_ASSERT_PTR_NOT_NULL_FATAL(z);
                CU_ASSERT(memcmp(z, y[2], sizeof(float) * (size_t)B * sizes[3]) == 0);
                CU_ASSERT_EQUAL(dsnn_net_backward(net, dl, B, &err), DSNN_OK);
                for (int i = 0; i < 3; i++) /* dense gradients read the exchanged panels */
                    expect_same_gradients(dsnn_net_layer(net, (size_t)i), ref[i]);
                /* activations written on demand, after the backward too */
                for (int i = 0; i < 3; i++)
                    CU_ASSERT(memcmp(dsnn_net_activation(net, (size_t)i), y[i],
                                     sizeof(float) * (size_t)B * sizes[i + 1]) == 0);
                /* an evaluation forward in between ends the dense-gradient window */
                CU_ASSERT_PTR_NOT_NULL(dsnn_net_forward(net, x, B > 1 ? B - 1 : 1, false, &err));
                float g1[70];
                CU_ASSERT_EQUAL(dsnn_sparse_dense_grad_rows(dsnn_net_layer(net, 1), 0, 1, g1, &err),
                                DSNN_ERR_INVALID);
                free(x);
                free(dl);
                for (int i = 0; i < 3; i++) {
                    free(y[i]);
                    free(dy[i]);
                }
            }
            for (int i = 0; i < 3; i++)
                dsnn_layer_free(ref[i]);
            dsnn_net_free(net);
        }
    }
    dsnn_set_num_threads(0);
}

/* A relu layer after a sparse layer is fused into it by the net (sparse layers separated by a
 * ReLU then exchange panels): logits, every activation, parameter and dense gradients are
 * bit-identical to the same layers (sparse, relu, sparse, relu, sparse) called one by one. */
static void test_relu_fusion(void)
{
    struct dsnn_error err = {0};
    const int sizes[] = {30, 80, 41, 5};
    for (int threads = 1; threads <= 2; threads++) {
        dsnn_set_num_threads(threads);
        struct dsnn_net *net = dsnn_net_new((struct dsnn_shape){sizes[0], 1, 1}, sizes[3], &err);
        struct dsnn_layer *ref[5];
        for (int i = 0; i < 5; i++) {
            struct dsnn_layer *a;
            char name[16];
            if (i % 2 == 0) {
                const int j = i / 2;
                a = make_layer(sizes[j], sizes[j + 1], true, 0.25, DSNN_SPARSE_MASK_PRECISE,
                               60 + (uint64_t)j);
                ref[i] = make_layer(sizes[j], sizes[j + 1], true, 0.25, DSNN_SPARSE_MASK_PRECISE,
                                    60 + (uint64_t)j);
                snprintf(name, sizeof name, "fc%d", j + 1);
                snprintf(a->name, sizeof a->name, "%s", name);
            } else {
                snprintf(name, sizeof name, "relu%d", i / 2 + 1);
                struct dsnn_shape sh = {sizes[i / 2 + 1], 1, 1};
                a = dsnn_relu_new(name, sh, &err);
                ref[i] = dsnn_relu_new(name, sh, &err);
            }
            CU_ASSERT_PTR_NOT_NULL_FATAL(ref[i]);
            CU_ASSERT_EQUAL_FATAL(dsnn_net_add(net, a, &err), DSNN_OK);
        }
        struct dsnn_rng rng;
        dsnn_rng_seed(&rng, 6, DSNN_RNG_STREAM_INIT);
        CU_ASSERT_EQUAL_FATAL(dsnn_net_init(net, &rng, 130, &err), DSNN_OK);
        CU_ASSERT_EQUAL(dsnn_sparse_get_activation(dsnn_net_layer(net, 0)), DSNN_SPARSE_ACT_RELU);
        CU_ASSERT_EQUAL(dsnn_sparse_get_activation(dsnn_net_layer(net, 4)), DSNN_SPARSE_ACT_NONE);
        const int B = 130;
        const int width[5] = {sizes[1], sizes[1], sizes[2], sizes[2], sizes[3]};
        float *x = malloc(sizeof(float) * B * sizes[0]), *dl = malloc(sizeof(float) * B * sizes[3]);
        float *y[5], *dy[5];
        for (int i = 0; i < 5; i++) {
            y[i] = malloc(sizeof(float) * B * width[i]);
            dy[i] = malloc(sizeof(float) * B * width[i]);
        }
        for (int step = 0; step < 2; step++) {
            dsnn_rng_seed(&rng, 200 + (uint64_t)step, 1);
            fill(x, (size_t)B * sizes[0], &rng);
            fill(dl, (size_t)B * sizes[3], &rng);
            for (int i = 0; i < 5; i++)
                CU_ASSERT_EQUAL(ref[i]->ops->forward(ref[i], i ? y[i - 1] : x, y[i], B, true, NULL),
                                DSNN_OK);
            memcpy(dy[4], dl, sizeof(float) * B * sizes[3]);
            for (int i = 4; i >= 0; i--)
                CU_ASSERT_EQUAL(ref[i]->ops->backward(ref[i], i ? y[i - 1] : x, y[i], dy[i],
                                                      i ? dy[i - 1] : NULL, B, NULL),
                                DSNN_OK);
            const float *z = dsnn_net_forward(net, x, B, true, &err);
            CU_ASSERT_PTR_NOT_NULL_FATAL(z);
            CU_ASSERT(memcmp(z, y[4], sizeof(float) * B * sizes[3]) == 0);
            CU_ASSERT_EQUAL(dsnn_net_backward(net, dl, B, &err), DSNN_OK);
            for (int i = 0; i < 5; i += 2)
                expect_same_gradients(dsnn_net_layer(net, (size_t)i), ref[i]);
            /* the relu layers' activations are the ReLU outputs; a fused sparse layer's too */
            for (int i = 0; i < 5; i++) {
                const float *want = i % 2 == 0 && i < 4 ? y[i + 1] : y[i];
                CU_ASSERT(memcmp(dsnn_net_activation(net, (size_t)i), want,
                                 sizeof(float) * B * width[i]) == 0);
            }
            /* one SGD step on both, so that the second step runs on changed weights */
            for (int i = 0; i < 5; i += 2) {
                struct dsnn_param_block *wa = dsnn_sparse_weight(dsnn_net_layer(net, (size_t)i));
                struct dsnn_param_block *wb = dsnn_sparse_weight(ref[i]);
                for (size_t k = 0; k < wa->n; k++) {
                    wa->value[k] -= 0.1f * wa->grad[k];
                    wb->value[k] -= 0.1f * wb->grad[k];
                }
            }
        }
        free(x);
        free(dl);
        for (int i = 0; i < 5; i++) {
            free(y[i]);
            free(dy[i]);
            dsnn_layer_free(ref[i]);
        }
        dsnn_net_free(net);
    }
    dsnn_set_num_threads(0);
}

/* Train a few steps, checkpoint, restore into a fresh layer, continue: bit-identical. */
static void test_save_load(void)
{
    struct dsnn_error err = {0};
    const int n_in = 45, n_out = 33, batch = 20;
    struct dsnn_optim_cfg oc = {.alg = DSNN_OPTIM_ADAM, .learning_rate = 0.01, .beta1 = 0.9,
                                .beta2 = 0.999, .eps = 1e-8};
    struct dsnn_optim *opt = dsnn_optim_new(&oc, &err);
    struct dsnn_layer *a = make_layer(n_in, n_out, true, 0.2, DSNN_SPARSE_MASK_APPROXIMATE, 31);
    dsnn_sparse_set_grow_init(a, DSNN_SPARSE_GROW_NORMAL, 0.05);
    struct dsnn_rng rng, topo;
    dsnn_rng_seed(&rng, 5, 5);
    dsnn_rng_seed(&topo, 5, DSNN_RNG_STREAM_TOPOLOGY);
    float x[20 * 45], y[20 * 33], dy[20 * 33];
    for (int step = 0; step < 6; step++) {
        fill(x, sizeof x / sizeof *x, &rng);
        fill(dy, sizeof dy / sizeof *dy, &rng);
        a->ops->forward(a, x, y, batch, true, NULL);
        a->ops->backward(a, x, y, dy, NULL, batch, NULL);
        for (size_t p = 0; p < a->n_params; p++)
            dsnn_optim_step_block(opt, &a->params[p], &err);
        if (step == 2) {
            size_t r;
            dsnn_sparse_prune_signed(a, 0.3, &r, &err);
            dsnn_sparse_grow_random(a, r + 7, &topo, &err);
        }
    }
    FILE *f = tmpfile();
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_EQUAL(a->ops->save(a, f, &err), DSNN_OK);
    rewind(f);
    /* fresh layer, never initialised */
    struct dsnn_sparse_init init = dsnn_sparse_init_default();
    init.density = 0.9;
    struct dsnn_layer *b = dsnn_sparse_linear_new("fc", n_in, n_out, true, &init, &err);
    CU_ASSERT_EQUAL_FATAL(b->ops->load(b, f, &err), DSNN_OK);
    CU_ASSERT_EQUAL(dsnn_sparse_check(b, &err), DSNN_OK);
    CU_ASSERT_EQUAL(dsnn_sparse_nnz(a), dsnn_sparse_nnz(b));
    CU_ASSERT_EQUAL(dsnn_sparse_last_update(a).pruned, dsnn_sparse_last_update(b).pruned);
    CU_ASSERT_EQUAL(dsnn_sparse_last_update(a).grown, dsnn_sparse_last_update(b).grown);
    struct dsnn_param_block *wa = dsnn_sparse_weight(a), *wb = dsnn_sparse_weight(b);
    CU_ASSERT(memcmp(wa->value, wb->value, sizeof(float) * wa->n) == 0);
    CU_ASSERT(memcmp(wa->state[0], wb->state[0], sizeof(float) * wa->n) == 0);
    CU_ASSERT(memcmp(wa->state[1], wb->state[1], sizeof(float) * wa->n) == 0);
    /* into an initialised layer of another density (capacity grows), after reserve */
    rewind(f);
    struct dsnn_layer *d = make_layer(n_in, n_out, true, 0.01, DSNN_SPARSE_MASK_PRECISE, 99);
    CU_ASSERT_EQUAL(dsnn_sparse_reserve(d, 300, &err), DSNN_OK);
    dsnn_param_block_state(dsnn_sparse_weight(d), 0);
    CU_ASSERT_EQUAL_FATAL(d->ops->load(d, f, &err), DSNN_OK);
    CU_ASSERT_EQUAL(dsnn_sparse_check(d, &err), DSNN_OK);
    CU_ASSERT_EQUAL(dsnn_sparse_nnz(d), dsnn_sparse_nnz(a));
    CU_ASSERT(memcmp(dsnn_sparse_weight(d)->value, dsnn_sparse_weight(a)->value,
                     sizeof(float) * dsnn_sparse_nnz(a)) == 0);
    CU_ASSERT(memcmp(dsnn_sparse_weight(d)->state[1], dsnn_sparse_weight(a)->state[1],
                     sizeof(float) * dsnn_sparse_nnz(a)) == 0);
    dsnn_layer_free(d);
    /* a layer of other dimensions is refused */
    rewind(f);
    d = make_layer(n_in + 1, n_out, true, 0.1, DSNN_SPARSE_MASK_PRECISE, 99);
    CU_ASSERT_EQUAL(d->ops->load(d, f, &err), DSNN_ERR_FORMAT);
    dsnn_layer_free(d);
    /* truncated checkpoint is refused */
    rewind(f);
    struct dsnn_layer *c = dsnn_sparse_linear_new("fc", n_in, n_out, true, NULL, &err);
    FILE *g = tmpfile();
    char buf[256];
    size_t got = fread(buf, 1, sizeof buf, f);
    fwrite(buf, 1, got, g);
    rewind(g);
    CU_ASSERT_NOT_EQUAL(c->ops->load(c, g, &err), DSNN_OK);
    fclose(g);
    dsnn_layer_free(c);
    fclose(f);
    /* continue both identically (with another topology edit) */
    struct dsnn_optim *opt_b = dsnn_optim_new(&oc, &err);
    FILE *of = tmpfile();
    dsnn_optim_save(opt, of, &err);
    rewind(of);
    dsnn_optim_load(opt_b, of, &err);
    fclose(of);
    struct dsnn_rng topo_b = topo, rng_b = rng;
    float yb[20 * 33];
    for (int step = 0; step < 4; step++) {
        fill(x, sizeof x / sizeof *x, &rng);
        fill(dy, sizeof dy / sizeof *dy, &rng);
        float xb[20 * 45], dyb[20 * 33];
        fill(xb, sizeof xb / sizeof *xb, &rng_b);
        fill(dyb, sizeof dyb / sizeof *dyb, &rng_b);
        a->ops->forward(a, x, y, batch, true, NULL);
        b->ops->forward(b, xb, yb, batch, true, NULL);
        CU_ASSERT(memcmp(y, yb, sizeof y) == 0);
        a->ops->backward(a, x, y, dy, NULL, batch, NULL);
        b->ops->backward(b, xb, yb, dyb, NULL, batch, NULL);
        for (size_t p = 0; p < a->n_params; p++) {
            dsnn_optim_step_block(opt, &a->params[p], &err);
            dsnn_optim_step_block(opt_b, &b->params[p], &err);
        }
        dsnn_sparse_prune_magnitude(a, 10, &err);
        dsnn_sparse_prune_magnitude(b, 10, &err);
        dsnn_sparse_grow_random(a, 10, &topo, &err);
        dsnn_sparse_grow_random(b, 10, &topo_b, &err);
    }
    wa = dsnn_sparse_weight(a);
    wb = dsnn_sparse_weight(b);
    CU_ASSERT_EQUAL_FATAL(wa->n, wb->n);
    CU_ASSERT(memcmp(wa->value, wb->value, sizeof(float) * wa->n) == 0);
    CU_ASSERT(memcmp(wa->state[1], wb->state[1], sizeof(float) * wa->n) == 0);
    dsnn_optim_free(opt);
    dsnn_optim_free(opt_b);
    dsnn_layer_free(a);
    dsnn_layer_free(b);
}

/* The layer in a network: training reduces the loss; net save/load round trip. */
static void test_in_network(void)
{
    struct dsnn_error err = {0};
    struct dsnn_net *net = dsnn_net_new((struct dsnn_shape){20, 1, 1}, 4, &err);
    struct dsnn_sparse_init init = dsnn_sparse_init_default();
    init.epsilon = 5;
    dsnn_net_add(net, dsnn_sparse_linear_new("fc1", 20, 64, true, &init, &err), &err);
    dsnn_net_add(net, dsnn_relu_new("relu1", (struct dsnn_shape){64, 1, 1}, &err), &err);
    dsnn_net_add(net, dsnn_sparse_linear_new("fc2", 64, 4, true, &init, &err), &err);
    struct dsnn_rng rng;
    dsnn_rng_seed(&rng, 1, DSNN_RNG_STREAM_INIT);
    CU_ASSERT_EQUAL_FATAL(dsnn_net_init(net, &rng, 32, &err), DSNN_OK);
    struct dsnn_optim_cfg oc = {.alg = DSNN_OPTIM_SGD, .learning_rate = 0.1, .momentum = 0.9};
    struct dsnn_optim *opt = dsnn_optim_new(&oc, &err);
    float x[32 * 20], dl[32 * 4];
    int32_t lab[32];
    double first = 0, last = 0;
    for (int step = 0; step < 200; step++) {
        for (int s = 0; s < 32; s++) {
            lab[s] = (int32_t)dsnn_rng_below(&rng, 4);
            for (int i = 0; i < 20; i++)
                x[s * 20 + i] = (float)(dsnn_rng_normal(&rng) * 0.5 + (i % 4 == lab[s]));
        }
        const float *z = dsnn_net_forward(net, x, 32, true, &err);
        double loss = 0;
        int64_t ok = 0;
        dsnn_softmax_xent(z, lab, 32, 4, dl, &loss, &ok, &err);
        if (step < 10)
            first += loss;
        if (step >= 190)
            last += loss;
        CU_ASSERT_EQUAL(dsnn_net_backward(net, dl, 32, &err), DSNN_OK);
        CU_ASSERT_EQUAL(dsnn_optim_step(opt, net, &err), DSNN_OK);
    }
    CU_ASSERT(last < 0.5 * first);
    FILE *f = tmpfile();
    CU_ASSERT_EQUAL(dsnn_net_save(net, f, &err), DSNN_OK);
    rewind(f);
    CU_ASSERT_EQUAL(dsnn_net_load(net, f, &err), DSNN_OK);
    fclose(f);
    dsnn_optim_free(opt);
    dsnn_net_free(net);
}

/* The initial weights of non-square layers: kaiming uniform over the fan-in, which is the input
 * side: n_in, or density * n_in with sparse_fan_in. Checked: max |w| at the bound (1200+
 * samples: within 5 %) and never above it, sample variance bound^2 / 3 within 5 standard
 * errors; a fan-in taken from n_out misses by a factor sqrt(n_in / n_out). */
static void test_init_scale_non_square(void)
{
    const int shapes[2][2] = {{300, 40}, {40, 300}};
    for (int si = 0; si < 2; si++)
        for (int sparse_fan_in = 0; sparse_fan_in < 2; sparse_fan_in++) {
            const int n_in = shapes[si][0], n_out = shapes[si][1];
            struct dsnn_error err = {0};
            struct dsnn_sparse_init init = dsnn_sparse_init_default();
            init.density = 0.1;
            init.mask = DSNN_SPARSE_MASK_PRECISE;
            init.sparse_fan_in = sparse_fan_in;
            struct dsnn_layer *l = dsnn_sparse_linear_new("fc", n_in, n_out, true, &init, &err);
            CU_ASSERT_PTR_NOT_NULL_FATAL(l);
            struct dsnn_rng rng;
            dsnn_rng_seed(&rng, 9, DSNN_RNG_STREAM_INIT);
            CU_ASSERT_EQUAL_FATAL(l->ops->init(l, &rng, &err), DSNN_OK);
            const double fan_in = sparse_fan_in ? lround(0.1 * n_in) : n_in;
            const double bound = 1.0 / sqrt(fan_in);
            struct dsnn_sparse_csr c;
            CU_ASSERT_FATAL(dsnn_sparse_get_csr(l, &c));
            double mx = 0, sq = 0;
            for (size_t k = 0; k < c.nnz; k++) {
                mx = fmax(mx, fabs(c.value[k]));
                sq += (double)c.value[k] * c.value[k];
            }
            const double var = sq / (double)c.nnz, want = bound * bound / 3.0;
            /* variance of u^2 for u ~ U(-b, b): b^4 (1/5 - 1/9) */
            const double se = bound * bound * sqrt((1.0 / 5 - 1.0 / 9) / (double)c.nnz);
            if (!(mx <= bound * (1 + 1e-6) && mx >= 0.95 * bound && fabs(var - want) < 5 * se))
                fprintf(stderr, "\n  %dx%d sparse_fan_in %d: max %.4f var %.5f, bound %.4f var %.5f\n",
                        n_out, n_in, sparse_fan_in, mx, var, bound, want);
            CU_ASSERT(c.nnz >= 1200);
            CU_ASSERT(mx <= bound * (1 + 1e-6));
            CU_ASSERT(mx >= 0.95 * bound);
            CU_ASSERT(fabs(var - want) < 5 * se);
            dsnn_layer_free(l);
        }
}

/* A checkpoint holds only the optimizer state slots that existed when it was written: loading it
 * zeroes (or leaves unallocated) every other slot of the layer loaded into, whatever it held, and
 * restores the saved slots exactly. */
static void test_load_optimizer_state(void)
{
    struct dsnn_error err = {0};
    for (int saved_slots = 0; saved_slots <= DSNN_OPT_STATE_MAX; saved_slots++) {
        struct dsnn_layer *a = make_layer(37, 23, true, 0.3, DSNN_SPARSE_MASK_PRECISE, 4);
        for (size_t bi = 0; bi < a->n_params; bi++)
            for (int s = 0; s < saved_slots; s++) {
                float *p = dsnn_param_block_state(&a->params[bi], s);
                CU_ASSERT_PTR_NOT_NULL_FATAL(p);
                for (size_t k = 0; k < a->params[bi].n; k++)
                    p[k] = 0.25f + (float)k * 1e-3f + (float)s;
            }
        FILE *f = tmpfile();
        CU_ASSERT_PTR_NOT_NULL_FATAL(f);
        CU_ASSERT_EQUAL_FATAL(a->ops->save(a, f, &err), DSNN_OK);
        /* the layer loaded into has stale state in every slot */
        struct dsnn_layer *b = make_layer(37, 23, true, 0.3, DSNN_SPARSE_MASK_PRECISE, 4);
        for (size_t bi = 0; bi < b->n_params; bi++)
            for (int s = 0; s < DSNN_OPT_STATE_MAX; s++) {
                float *p = dsnn_param_block_state(&b->params[bi], s);
                CU_ASSERT_PTR_NOT_NULL_FATAL(p);
                for (size_t k = 0; k < b->params[bi].capacity; k++)
                    p[k] = -9.0f;
            }
        rewind(f);
        CU_ASSERT_EQUAL_FATAL(b->ops->load(b, f, &err), DSNN_OK);
        size_t stale = 0, wrong = 0;
        for (size_t bi = 0; bi < b->n_params; bi++)
            for (int s = 0; s < DSNN_OPT_STATE_MAX; s++) {
                const float *p = b->params[bi].state[s];
                for (size_t k = 0; p && k < b->params[bi].n; k++) {
                    if (s >= saved_slots)
                        stale += p[k] != 0.0f;
                    else
                        wrong += p[k] != a->params[bi].state[s][k];
                }
                if (s < saved_slots)
                    CU_ASSERT_PTR_NOT_NULL(p);
            }
        if (stale || wrong)
            fprintf(stderr, "\n  %d slots saved: %zu stale, %zu wrong state values\n", saved_slots,
                    stale, wrong);
        CU_ASSERT_EQUAL(stale, 0);
        CU_ASSERT_EQUAL(wrong, 0);
        fclose(f);
        dsnn_layer_free(a);
        dsnn_layer_free(b);
    }
}

static CU_TestInfo tests[] = {
    {"forward / backward against a dense reference", test_reference_shapes},
    {"results independent of the thread count", test_thread_independence},
    {"finite differences", test_finite_differences},
    {"density 1 reproduces the dense layer", test_density_one_matches_dense},
    {"dense gradient tiles and RigL growth", test_dense_gradient},
    {"fused ReLU equals sparse layer + relu layer", test_fused_relu},
    {"panel hand-off in a net equals layer-by-layer calls", test_panel_handoff},
    {"sparse + relu fused by the net equals layer-by-layer calls", test_relu_fusion},
    {"checkpoint round trip and exact resume", test_save_load},
    {"sparse layers train in a network", test_in_network},
    {"init scale of non-square layers (fan-in from the input side)", test_init_scale_non_square},
    {"loading a checkpoint zeroes the optimizer state it does not hold", test_load_optimizer_state},
    CU_TEST_INFO_NULL,
};

DSNN_TEST_MAIN("sparse layer", tests)
