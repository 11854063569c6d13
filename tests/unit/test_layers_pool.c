/* test_layers_pool.c - max / average / global average pooling against naive references
 * (padding, stride, overlapping windows, count_include_pad), gradients against references and
 * finite differences, shapes and argument checks. */
#include "layer_check.h"

struct geo {
    int c, h, w, k, s, p;
};

static int out_dim(int n, int k, int s, int p)
{
    return (n + 2 * p - k) / s + 1;
}

/* Naive max pooling: y and the first argmax (input index h * w) per output. */
static void ref_max(const struct geo *g, const float *x, int batch, float *y, int *arg)
{
    const int oh = out_dim(g->h, g->k, g->s, g->p), ow = out_dim(g->w, g->k, g->s, g->p);
    for (int bc = 0; bc < batch * g->c; bc++)
        for (int oy = 0; oy < oh; oy++)
            for (int ox = 0; ox < ow; ox++) {
                float m = -INFINITY;
                int a = -1;
                for (int i = 0; i < g->k; i++)
                    for (int j = 0; j < g->k; j++) {
                        int iy = oy * g->s - g->p + i, ix = ox * g->s - g->p + j;
                        if (iy < 0 || iy >= g->h || ix < 0 || ix >= g->w)
                            continue;
                        float v = x[(size_t)bc * g->h * g->w + iy * g->w + ix];
                        if (a < 0 || v > m) {
                            m = v;
                            a = iy * g->w + ix;
                        }
                    }
                y[((size_t)bc * oh + oy) * ow + ox] = m;
                arg[((size_t)bc * oh + oy) * ow + ox] = a;
            }
}

/* Naive average pooling (ceil_mode False). */
static void ref_avg(const struct geo *g, bool include_pad, const float *x, int batch, double *y)
{
    const int oh = out_dim(g->h, g->k, g->s, g->p), ow = out_dim(g->w, g->k, g->s, g->p);
    for (int bc = 0; bc < batch * g->c; bc++)
        for (int oy = 0; oy < oh; oy++)
            for (int ox = 0; ox < ow; ox++) {
                double s = 0;
                int cnt = 0;
                for (int i = 0; i < g->k; i++)
                    for (int j = 0; j < g->k; j++) {
                        int iy = oy * g->s - g->p + i, ix = ox * g->s - g->p + j;
                        if (iy < 0 || iy >= g->h || ix < 0 || ix >= g->w)
                            continue;
                        s += x[(size_t)bc * g->h * g->w + iy * g->w + ix];
                        cnt++;
                    }
                y[((size_t)bc * oh + oy) * ow + ox] = s / (include_pad ? g->k * g->k : cnt);
            }
}

static void fill_distinct(float *x, size_t n, struct dsnn_rng *rng)
{
    uint32_t *p = malloc(sizeof(uint32_t) * n);
    for (size_t i = 0; i < n; i++)
        p[i] = (uint32_t)i;
    dsnn_rng_shuffle_u32(rng, p, n);
    for (size_t i = 0; i < n; i++)
        x[i] = (float)((double)p[i] * 0.01 - 1.0);
    free(p);
}

static void check_max(struct geo g, int batch)
{
    struct dsnn_error err = {0};
    struct dsnn_shape in = {g.c, g.h, g.w};
    struct dsnn_layer *l = dsnn_maxpool2d_new("pool", in, g.k, g.s, g.p, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(l);
    lc_init(l, 1);
    const int oh = out_dim(g.h, g.k, g.s, g.p), ow = out_dim(g.w, g.k, g.s, g.p);
    CU_ASSERT_EQUAL(l->out.c, g.c);
    CU_ASSERT_EQUAL(l->out.h, oh);
    CU_ASSERT_EQUAL(l->out.w, ow);
    const size_t ni = (size_t)batch * g.c * g.h * g.w, no = (size_t)batch * g.c * oh * ow;
    float *x = lc_alloc(ni), *y = lc_alloc(no), *yr = lc_alloc(no), *dy = lc_alloc(no),
          *dx = lc_alloc(ni), *dxr = lc_alloc(ni);
    int *arg = malloc(sizeof(int) * no);
    struct dsnn_rng rng;
    dsnn_rng_seed(&rng, (uint64_t)(g.k * 100 + g.s * 10 + g.p), 1);
    fill_distinct(x, ni, &rng);
    lc_fill(dy, no, &rng, -1, 1);
    CU_ASSERT_EQUAL_FATAL(l->ops->forward(l, x, y, batch, true, NULL), DSNN_OK);
    ref_max(&g, x, batch, yr, arg);
    CU_ASSERT_EQUAL(memcmp(y, yr, sizeof(float) * no), 0);
    CU_ASSERT_EQUAL_FATAL(l->ops->backward(l, x, y, dy, dx, batch, NULL), DSNN_OK);
    for (size_t o = 0; o < no; o++) {
        const size_t bc = o / ((size_t)oh * ow);
        dxr[bc * g.h * g.w + arg[o]] += dy[o];
    }
    int bad = 0;
    for (size_t i = 0; i < ni; i++)
        bad += !lc_close(dx[i], dxr[i], 1e-6, 1e-7);
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_EQUAL(lc_check_grads(l, x, batch, true, dy, ni, 1e-3, 1e-3, 1e-3, NULL, NULL), 0);
    free(x), free(y), free(yr), free(dy), free(dx), free(dxr), free(arg);
    dsnn_layer_free(l);
}

static void check_avg(struct geo g, bool include_pad, int batch)
{
    struct dsnn_error err = {0};
    struct dsnn_shape in = {g.c, g.h, g.w};
    struct dsnn_layer *l = dsnn_avgpool2d_new("pool", in, g.k, g.s, g.p, include_pad, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(l);
    lc_init(l, 1);
    const int oh = out_dim(g.h, g.k, g.s, g.p), ow = out_dim(g.w, g.k, g.s, g.p);
    CU_ASSERT_EQUAL(l->out.h, oh);
    CU_ASSERT_EQUAL(l->out.w, ow);
    const size_t ni = (size_t)batch * g.c * g.h * g.w, no = (size_t)batch * g.c * oh * ow;
    float *x = lc_alloc(ni), *y = lc_alloc(no), *dy = lc_alloc(no);
    double *yr = malloc(sizeof(double) * no);
    struct dsnn_rng rng;
    dsnn_rng_seed(&rng, 77, 1);
    lc_fill(x, ni, &rng, -1, 1);
    lc_fill(dy, no, &rng, -1, 1);
    CU_ASSERT_EQUAL_FATAL(l->ops->forward(l, x, y, batch, true, NULL), DSNN_OK);
    ref_avg(&g, include_pad, x, batch, yr);
    int bad = 0;
    for (size_t i = 0; i < no; i++)
        bad += !lc_close(y[i], yr[i], 1e-5, 1e-6);
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_EQUAL(lc_check_grads(l, x, batch, true, dy, ni, 1e-2, 1e-3, 1e-4, NULL, NULL), 0);
    free(x), free(y), free(dy), free(yr);
    dsnn_layer_free(l);
}

static void test_max(void)
{
    check_max((struct geo){3, 8, 8, 2, 2, 0}, 2);
    check_max((struct geo){2, 7, 9, 3, 2, 1}, 3); /* overlapping windows, padding */
    check_max((struct geo){1, 5, 6, 3, 1, 1}, 1);
    check_max((struct geo){2, 6, 5, 4, 3, 2}, 2);
}

static void test_avg(void)
{
    check_avg((struct geo){3, 8, 8, 2, 2, 0}, true, 2);
    check_avg((struct geo){2, 7, 9, 3, 2, 1}, true, 3);
    check_avg((struct geo){2, 7, 9, 3, 2, 1}, false, 3);
    check_avg((struct geo){1, 5, 6, 3, 1, 1}, false, 2);
}

static void test_global_and_defaults(void)
{
    struct dsnn_error err = {0};
    struct dsnn_layer *l = dsnn_global_avgpool2d_new("gap", (struct dsnn_shape){3, 4, 5}, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(l);
    lc_init(l, 1);
    CU_ASSERT(l->out.c == 3 && l->out.h == 1 && l->out.w == 1);
    float x[2 * 60], y[6];
    for (int i = 0; i < 120; i++)
        x[i] = (float)i;
    CU_ASSERT_EQUAL(l->ops->forward(l, x, y, 2, false, NULL), DSNN_OK);
    for (int bc = 0; bc < 6; bc++)
        CU_ASSERT(lc_close(y[bc], bc * 20 + 9.5, 1e-6, 0));
    dsnn_layer_free(l);
    /* stride 0: stride = kernel */
    l = dsnn_maxpool2d_new("mp", (struct dsnn_shape){1, 6, 6}, 3, 0, 0, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(l);
    CU_ASSERT(l->out.h == 2 && l->out.w == 2);
    dsnn_layer_free(l);
    l = dsnn_avgpool2d_new("ap", (struct dsnn_shape){1, 6, 6}, 2, 0, 0, true, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(l);
    CU_ASSERT(l->out.h == 3 && l->out.w == 3);
    dsnn_layer_free(l);
    /* invalid: padding > kernel / 2, window larger than the padded input */
    CU_ASSERT_PTR_NULL(dsnn_maxpool2d_new("mp", (struct dsnn_shape){1, 6, 6}, 2, 2, 2, &err));
    CU_ASSERT_EQUAL(err.status, DSNN_ERR_INVALID);
    CU_ASSERT_PTR_NULL(dsnn_maxpool2d_new("mp", (struct dsnn_shape){1, 2, 2}, 5, 1, 0, &err));
    CU_ASSERT_PTR_NULL(dsnn_avgpool2d_new("ap", (struct dsnn_shape){1, 2, 2}, 3, 1, 2, true,
                                          &err));
}

static void test_max_nan_and_inf(void)
{
    struct dsnn_error err = {0};
    struct dsnn_layer *l = dsnn_maxpool2d_new("mp", (struct dsnn_shape){1, 2, 2}, 2, 2, 0, &err);
    lc_init(l, 1);
    float x[4] = {1, NAN, 3, 2}, y[1], dy[1] = {1}, dx[4];
    CU_ASSERT_EQUAL(l->ops->forward(l, x, y, 1, true, NULL), DSNN_OK);
    CU_ASSERT(isnan(y[0]));
    CU_ASSERT_EQUAL(l->ops->backward(l, x, y, dy, dx, 1, NULL), DSNN_OK);
    CU_ASSERT_EQUAL(dx[1], 1.0f);
    float z[4] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY};
    CU_ASSERT_EQUAL(l->ops->forward(l, z, y, 1, true, NULL), DSNN_OK);
    CU_ASSERT_EQUAL(y[0], -INFINITY);
    CU_ASSERT_EQUAL(l->ops->backward(l, z, y, dy, dx, 1, NULL), DSNN_OK);
    CU_ASSERT_EQUAL(dx[0], 1.0f); /* the first in-bounds index, as PyTorch */
    dsnn_layer_free(l);
}

/* The 2x2 / stride 2 window (the layer's branch-free path) on an odd-sized input of few
 * distinct values and some NaNs: the same maxima and the same chosen inputs as PyTorch's rule
 * (first index of the window, replaced by a larger value or a NaN), written here as a scan. */
static void test_max_2x2_ties(void)
{
    struct dsnn_error err = {0};
    const int C = 3, H = 7, W = 9, OH = 3, OW = 4, batch = 2;
    struct dsnn_layer *l = dsnn_maxpool2d_new("mp", (struct dsnn_shape){C, H, W}, 2, 2, 0, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(l);
    lc_init(l, 1);
    const size_t ni = (size_t)batch * C * H * W, no = (size_t)batch * C * OH * OW;
    float *x = lc_alloc(ni), *y = lc_alloc(no), *dy = lc_alloc(no), *dx = lc_alloc(ni);
    struct dsnn_rng rng;
    dsnn_rng_seed(&rng, 41, 1);
    for (size_t i = 0; i < ni; i++) {
        const uint64_t r = dsnn_rng_u64(&rng) % 16;
        x[i] = r == 0 ? NAN : r == 1 ? -INFINITY : (float)(r % 3);
    }
    for (size_t o = 0; o < no; o++)
        dy[o] = (float)(o + 1);
    CU_ASSERT_EQUAL_FATAL(l->ops->forward(l, x, y, batch, true, NULL), DSNN_OK);
    CU_ASSERT_EQUAL_FATAL(l->ops->backward(l, x, y, dy, dx, batch, NULL), DSNN_OK);
    int bad = 0, nans = 0;
    for (int bc = 0; bc < batch * C; bc++)
        for (int oy = 0; oy < OH; oy++)
            for (int ox = 0; ox < OW; ox++) {
                const float *xc = x + (size_t)bc * H * W;
                float m = -INFINITY;
                int a = 2 * oy * W + 2 * ox;
                for (int i = 0; i < 2; i++)
                    for (int j = 0; j < 2; j++) {
                        const int q = (2 * oy + i) * W + 2 * ox + j;
                        if (xc[q] > m || isnan(xc[q])) {
                            m = xc[q];
                            a = q;
                        }
                    }
                const size_t o = ((size_t)bc * OH + oy) * OW + ox;
                nans += isnan(m);
                bad += isnan(m) ? !isnan(y[o]) : y[o] != m;
                /* the chosen input receives this output's gradient, o + 1 (windows do not
                 * overlap) */
                bad += dx[(size_t)bc * H * W + a] != (float)(o + 1);
            }
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT(nans > 0); /* the data exercise the NaN rule */
    free(x), free(y), free(dy), free(dx);
    dsnn_layer_free(l);
}

static CU_TestInfo tests[] = {
    {"max pooling vs reference and finite differences", test_max},
    {"average pooling vs reference and finite differences", test_avg},
    {"global average pooling, default stride, invalid arguments", test_global_and_defaults},
    {"max pooling with NaN and -inf", test_max_nan_and_inf},
    {"max pooling 2x2 / 2: ties and NaNs as PyTorch", test_max_2x2_ties},
    CU_TEST_INFO_NULL,
};

DSNN_TEST_MAIN("layers_pool", tests)
