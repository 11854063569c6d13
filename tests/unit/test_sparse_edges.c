/* test_sparse_edges.c - the sparse kernels at their edges, on every kernel set (ctest runs it once
 * per DSNN_ISA): layer sizes that are not multiples of any vector width (1, 3, 17, 65 ...),
 * batches around the 16-float padding and the 64-sample chunks (1, 15, 16, 17, 63, 64, 65, 129),
 * empty rows, rows and columns with exactly one connection, and the fused ReLU at its boundary:
 * inputs, weights and biases are small multiples of 1/2, so sums are exact in float and many
 * pre-activations are exactly 0 (ReLU output 0, no gradient through it), others tiny or negative.
 * Forward output, input gradient, weight gradient at the active connections and bias gradient
 * are compared with a double-precision reference, for a single layer with a fused ReLU and for
 * two sparse layers adjacent in a net (the panel hand-off: the first layer's ReLU mask is applied
 * inside the second's input-gradient kernel). With these values every kernel set must agree
 * with the reference to 1e-6 relative: a dropped connection, a lane off by one or a >= for a >
 * at the ReLU changes results by at least 1/4. */
#include "harness.h"

#include <dsnn/dsnn.h>
#include <dsnn/sparse.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A value in {-1, -1/2, 0, 1/2, 1} (zero allowed when zero_ok). */
static float half_step(struct dsnn_rng *r, bool zero_ok)
{
    for (;;) {
        const int v = (int)dsnn_rng_below(r, 5) - 2;
        if (v || zero_ok)
            return 0.5f * (float)v;
    }
}

/* Replaces the topology of l by a crafted one: rows o = 0 mod 4 are empty, rows o = 1 mod 4 have
 * exactly one connection, the others a random subset of about 5 columns; column 0 is used by
 * row 1 only (when n_in > 1). Values and biases are half steps. */
static void craft(struct dsnn_layer *l, struct dsnn_rng *r)
{
    struct dsnn_error err = {0};
    int n_in = 0, n_out = 0;
    CU_ASSERT_FATAL(dsnn_linear_dims(l, &n_in, &n_out, NULL));
    CU_ASSERT_EQUAL_FATAL(dsnn_sparse_set_nnz(l, 0, r, &err), DSNN_OK);
    int32_t *rows = malloc(sizeof(int32_t) * (size_t)n_in * n_out);
    int32_t *cols = malloc(sizeof(int32_t) * (size_t)n_in * n_out);
    size_t n = 0;
    for (int o = 0; o < n_out; o++) {
        if (o % 4 == 0)
            continue;
        if (o % 4 == 1) {
            rows[n] = o;
            cols[n++] = o == 1 || n_in == 1 ? 0 : 1 + o % (n_in - 1);
            continue;
        }
        for (int i = n_in > 1 ? 1 : 0; i < n_in; i++)
            if (dsnn_rng_below(r, (uint64_t)n_in) < 5) {
                rows[n] = o;
                cols[n++] = i;
            }
    }
    CU_ASSERT_EQUAL_FATAL(dsnn_sparse_grow_at(l, rows, cols, n, r, &err), DSNN_OK);
    free(rows);
    free(cols);
    struct dsnn_sparse_csr c;
    CU_ASSERT_FATAL(dsnn_sparse_get_csr(l, &c));
    for (size_t k = 0; k < c.nnz; k++)
        c.value[k] = half_step(r, false);
    float *b = dsnn_sparse_bias(l)->value;
    for (int o = 0; o < n_out; o++)
        b[o] = half_step(r, true);
}

/* Reference of a layer: pre[s][o] = b[o] + sum W x. */
static void ref_forward(struct dsnn_layer *l, const float *x, int batch, double *pre)
{
    struct dsnn_sparse_csr c;
    dsnn_sparse_get_csr(l, &c);
    const float *b = dsnn_sparse_bias(l)->value;
    for (int s = 0; s < batch; s++)
        for (int o = 0; o < c.n_out; o++) {
            double v = b[o];
            for (int64_t k = c.row_ptr[o]; k < c.row_ptr[o + 1]; k++)
                v += (double)c.value[k] * x[(size_t)s * c.n_in + c.col[k]];
            pre[(size_t)s * c.n_out + o] = v;
        }
}

static bool near(double got, double want)
{
    return fabs(got - want) <= 1e-6 * (1.0 + fabs(want));
}

/* Reference gradients of a layer given g = dL/d(pre) [batch][n_out]: dx, dW at active, db;
 * counts mismatches against the layer's. */
static int check_grads(struct dsnn_layer *l, const float *x, const double *g, const float *dx,
                       int batch)
{
    struct dsnn_sparse_csr c;
    dsnn_sparse_get_csr(l, &c);
    int bad = 0;
    for (int o = 0; o < c.n_out; o++) {
        for (int64_t k = c.row_ptr[o]; k < c.row_ptr[o + 1]; k++) {
            double w = 0;
            for (int s = 0; s < batch; s++)
                w += g[(size_t)s * c.n_out + o] * x[(size_t)s * c.n_in + c.col[k]];
            bad += !near(c.grad[k], w);
        }
        double db = 0;
        for (int s = 0; s < batch; s++)
            db += g[(size_t)s * c.n_out + o];
        bad += !near(dsnn_sparse_bias(l)->grad[o], db);
    }
    if (dx)
        for (int s = 0; s < batch; s++)
            for (int i = 0; i < c.n_in; i++) {
                double v = 0;
                for (int o = 0; o < c.n_out; o++)
                    for (int64_t k = c.row_ptr[o]; k < c.row_ptr[o + 1]; k++)
                        if (c.col[k] == i)
                            v += (double)c.value[k] * g[(size_t)s * c.n_out + o];
                bad += !near(dx[(size_t)s * c.n_in + i], v);
            }
    return bad;
}

static const int k_batches[] = {1, 15, 16, 17, 63, 64, 65, 129};

static void test_single_layer(void)
{
    const int sizes[][2] = {{1, 5}, {3, 1}, {17, 63}, {65, 17}, {64, 3}};
    struct dsnn_error err = {0};
    long zeros_all = 0;
    for (size_t si = 0; si < DSNN_COUNT_OF(sizes); si++) {
        const int n_in = sizes[si][0], n_out = sizes[si][1];
        struct dsnn_sparse_init init = dsnn_sparse_init_default();
        init.density = 0.5;
        struct dsnn_layer *l = dsnn_sparse_linear_new("fc", n_in, n_out, true, &init, &err);
        CU_ASSERT_PTR_NOT_NULL_FATAL(l);
        struct dsnn_rng r;
        dsnn_rng_seed(&r, 100 + si, DSNN_RNG_STREAM_INIT);
        CU_ASSERT_EQUAL_FATAL(l->ops->init(l, &r, &err), DSNN_OK);
        CU_ASSERT_EQUAL_FATAL(dsnn_sparse_set_activation(l, DSNN_SPARSE_ACT_RELU, &err), DSNN_OK);
        craft(l, &r);
        for (size_t bi = 0; bi < DSNN_COUNT_OF(k_batches); bi++) {
            const int B = k_batches[bi];
            float *x = malloc(sizeof(float) * (size_t)B * n_in);
            float *y = malloc(sizeof(float) * (size_t)B * n_out);
            float *dy = malloc(sizeof(float) * (size_t)B * n_out);
            float *dx = malloc(sizeof(float) * (size_t)B * n_in);
            double *pre = malloc(sizeof(double) * (size_t)B * n_out);
            double *g = malloc(sizeof(double) * (size_t)B * n_out);
            for (size_t k = 0; k < (size_t)B * n_in; k++)
                x[k] = half_step(&r, true);
            for (size_t k = 0; k < (size_t)B * n_out; k++)
                dy[k] = half_step(&r, false);
            CU_ASSERT_EQUAL_FATAL(l->ops->forward(l, x, y, B, true, NULL), DSNN_OK);
            ref_forward(l, x, B, pre);
            int bad_y = 0, zeros = 0;
            for (size_t k = 0; k < (size_t)B * n_out; k++) {
                bad_y += !near(y[k], fmax(pre[k], 0.0));
                zeros += pre[k] == 0.0;
                g[k] = pre[k] > 0.0 ? dy[k] : 0.0; /* ReLU'(0) = 0 */
            }
            CU_ASSERT_EQUAL_FATAL(l->ops->backward(l, x, y, dy, dx, B, NULL), DSNN_OK);
            const int bad_g = check_grads(l, x, g, dx, B);
            if (bad_y || bad_g)
                fprintf(stderr, "\n  %dx%d batch %d: %d bad outputs, %d bad gradients\n", n_out,
                        n_in, B, bad_y, bad_g);
            CU_ASSERT_EQUAL(bad_y, 0);
            CU_ASSERT_EQUAL(bad_g, 0);
            zeros_all += zeros;
            free(x), free(y), free(dy), free(dx), free(pre), free(g);
        }
        dsnn_layer_free(l);
    }
    printf("\n    %ld pre-activations exactly 0 ", zeros_all);
    CU_ASSERT(zeros_all > 100); /* the ReLU boundary is exercised */
}

static void test_adjacent_pair(void)
{
    const int sizes[][3] = {{17, 65, 3}, {3, 17, 63}, {65, 1, 5}};
    struct dsnn_error err = {0};
    long zeros_all = 0;
    for (size_t si = 0; si < DSNN_COUNT_OF(sizes); si++) {
        const int n0 = sizes[si][0], n1 = sizes[si][1], n2 = sizes[si][2];
        struct dsnn_net *net = dsnn_net_new((struct dsnn_shape){n0, 1, 1}, n2, &err);
        CU_ASSERT_PTR_NOT_NULL_FATAL(net);
        struct dsnn_sparse_init init = dsnn_sparse_init_default();
        init.density = 0.5;
        struct dsnn_layer *a = dsnn_sparse_linear_new("fc1", n0, n1, true, &init, &err);
        struct dsnn_layer *b = dsnn_sparse_linear_new("fc2", n1, n2, true, &init, &err);
        CU_ASSERT_FATAL(a && b);
        CU_ASSERT_EQUAL_FATAL(dsnn_net_add(net, a, &err), DSNN_OK);
        CU_ASSERT_EQUAL_FATAL(dsnn_net_add(net, dsnn_relu_new("relu1", (struct dsnn_shape){n1, 1, 1},
                                                              &err), &err),
                              DSNN_OK);
        CU_ASSERT_EQUAL_FATAL(dsnn_net_add(net, b, &err), DSNN_OK);
        struct dsnn_rng r;
        dsnn_rng_seed(&r, 200 + si, DSNN_RNG_STREAM_INIT);
        CU_ASSERT_EQUAL_FATAL(dsnn_net_init(net, &r, 129, &err), DSNN_OK);
        struct dsnn_layer *la = dsnn_net_layer(net, 0), *lb = dsnn_net_layer(net, 2);
        CU_ASSERT_FATAL(dsnn_sparse_is(la) && dsnn_sparse_is(lb));
        CU_ASSERT_EQUAL(dsnn_sparse_get_activation(la), DSNN_SPARSE_ACT_RELU); /* fused */
        craft(la, &r);
        craft(lb, &r);
        for (size_t bi = 0; bi < DSNN_COUNT_OF(k_batches); bi++) {
            const int B = k_batches[bi];
            float *x = malloc(sizeof(float) * (size_t)B * n0);
            float *h = malloc(sizeof(float) * (size_t)B * n1);
            float *dl = malloc(sizeof(float) * (size_t)B * n2);
            double *pa = malloc(sizeof(double) * (size_t)B * n1);
            double *pb = malloc(sizeof(double) * (size_t)B * n2);
            double *ga = malloc(sizeof(double) * (size_t)B * n1);
            double *gb = malloc(sizeof(double) * (size_t)B * n2);
            for (size_t k = 0; k < (size_t)B * n0; k++)
                x[k] = half_step(&r, true);
            for (size_t k = 0; k < (size_t)B * n2; k++)
                dl[k] = half_step(&r, false);
            const float *z = dsnn_net_forward(net, x, B, true, &err);
            CU_ASSERT_PTR_NOT_NULL_FATAL(z);
            ref_forward(la, x, B, pa);
            int zeros = 0;
            for (size_t k = 0; k < (size_t)B * n1; k++) {
                h[k] = (float)fmax(pa[k], 0.0);
                zeros += pa[k] == 0.0;
            }
            ref_forward(lb, h, B, pb);
            int bad = 0;
            for (size_t k = 0; k < (size_t)B * n2; k++) {
                bad += !near(z[k], pb[k]);
                gb[k] = dl[k];
            }
            CU_ASSERT_EQUAL_FATAL(dsnn_net_backward(net, dl, B, &err), DSNN_OK);
            /* dL/dh through fc2, masked by fc1's ReLU (0 where the pre-activation is <= 0) */
            struct dsnn_sparse_csr c;
            dsnn_sparse_get_csr(lb, &c);
            for (int s = 0; s < B; s++)
                for (int i = 0; i < n1; i++) {
                    double v = 0;
                    for (int o = 0; o < n2; o++)
                        for (int64_t k = c.row_ptr[o]; k < c.row_ptr[o + 1]; k++)
                            if (c.col[k] == i)
                                v += (double)c.value[k] * gb[(size_t)s * n2 + o];
                    ga[(size_t)s * n1 + i] = pa[(size_t)s * n1 + i] > 0.0 ? v : 0.0;
                }
            bad += check_grads(lb, h, gb, NULL, B);
            bad += check_grads(la, x, ga, NULL, B);
            if (bad)
                fprintf(stderr, "\n  %d-%d-%d batch %d: %d mismatches\n", n0, n1, n2, B, bad);
            CU_ASSERT_EQUAL(bad, 0);
            zeros_all += zeros;
            free(x), free(h), free(dl), free(pa), free(pb), free(ga), free(gb);
        }
        dsnn_net_free(net);
    }
    printf("\n    %ld pre-activations exactly 0 ", zeros_all);
    CU_ASSERT(zeros_all > 100);
}

static CU_TestInfo tests[] = {
    {"odd sizes, one-connection rows, exact ReLU zeros: one layer", test_single_layer},
    {"the same through the panel hand-off of two adjacent layers", test_adjacent_pair},
    CU_TEST_INFO_NULL,
};

DSNN_TEST_MAIN("sparse kernel edges", tests)
