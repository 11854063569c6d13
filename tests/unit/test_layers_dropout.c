/* test_layers_dropout.c - inverted dropout: values are 0 or x / (1 - p) with the right drop
 * rate, backward uses the same mask (and matches finite differences with the mask stream held
 * fixed), evaluation and p = 0 are the identity, p = 1 zeroes, masks are deterministic from the
 * init stream and resume exactly from a checkpoint. */
#include "layer_check.h"

static struct dsnn_layer *make(struct dsnn_shape s, double p, uint64_t seed)
{
    struct dsnn_error err = {0};
    struct dsnn_layer *l = dsnn_dropout_new("drop", s, p, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(l);
    lc_init(l, seed);
    return l;
}

static void test_train_mask(void)
{
    const double p = 0.3;
    const struct dsnn_shape s = {50, 4, 5};
    const int batch = 20, n = 50 * 20 * batch;
    struct dsnn_layer *l = make(s, p, 1);
    struct dsnn_rng rng;
    dsnn_rng_seed(&rng, 2, 1);
    float *x = lc_alloc((size_t)n), *y = lc_alloc((size_t)n), *dy = lc_alloc((size_t)n),
          *dx = lc_alloc((size_t)n);
    lc_fill(x, (size_t)n, &rng, 0.5, 1.5); /* never 0 */
    lc_fill(dy, (size_t)n, &rng, -1, 1);
    CU_ASSERT_EQUAL_FATAL(l->ops->forward(l, x, y, batch, true, NULL), DSNN_OK);
    CU_ASSERT_EQUAL_FATAL(l->ops->backward(l, x, y, dy, dx, batch, NULL), DSNN_OK);
    const float scale = (float)(1.0 / (1.0 - p));
    int dropped = 0, bad = 0;
    for (int i = 0; i < n; i++) {
        if (y[i] == 0.0f) {
            dropped++;
            bad += dx[i] != 0.0f;
        } else {
            bad += y[i] != x[i] * scale;
            bad += dx[i] != dy[i] * scale;
        }
    }
    CU_ASSERT_EQUAL(bad, 0);
    const double sd = sqrt(n * p * (1 - p));
    CU_ASSERT(fabs(dropped - n * p) < 5 * sd);
    /* a second call draws a new mask */
    float *y2 = lc_alloc((size_t)n);
    CU_ASSERT_EQUAL(l->ops->forward(l, x, y2, batch, true, NULL), DSNN_OK);
    CU_ASSERT(memcmp(y, y2, sizeof(float) * n) != 0);
    free(x), free(y), free(y2), free(dy), free(dx);
    dsnn_layer_free(l);
}

static void test_eval_and_extremes(void)
{
    const struct dsnn_shape s = {10, 1, 1};
    float x[30], y[30], dy[30], dx[30];
    struct dsnn_rng rng;
    dsnn_rng_seed(&rng, 3, 1);
    lc_fill(x, 30, &rng, -1, 1);
    lc_fill(dy, 30, &rng, -1, 1);
    struct dsnn_layer *l = make(s, 0.5, 1);
    CU_ASSERT_EQUAL(l->ops->forward(l, x, y, 3, false, NULL), DSNN_OK);
    CU_ASSERT_EQUAL(memcmp(x, y, sizeof x), 0);
    CU_ASSERT_EQUAL(l->ops->backward(l, x, y, dy, dx, 3, NULL), DSNN_OK);
    CU_ASSERT_EQUAL(memcmp(dx, dy, sizeof dx), 0);
    dsnn_layer_free(l);
    l = make(s, 0.0, 1);
    CU_ASSERT_EQUAL(l->ops->forward(l, x, y, 3, true, NULL), DSNN_OK);
    CU_ASSERT_EQUAL(memcmp(x, y, sizeof x), 0);
    CU_ASSERT_EQUAL(l->ops->backward(l, x, y, dy, dx, 3, NULL), DSNN_OK);
    CU_ASSERT_EQUAL(memcmp(dx, dy, sizeof dx), 0);
    dsnn_layer_free(l);
    l = make(s, 1.0, 1);
    CU_ASSERT_EQUAL(l->ops->forward(l, x, y, 3, true, NULL), DSNN_OK);
    CU_ASSERT_EQUAL(l->ops->backward(l, x, y, dy, dx, 3, NULL), DSNN_OK);
    for (int i = 0; i < 30; i++) {
        CU_ASSERT_EQUAL(y[i], 0.0f);
        CU_ASSERT_EQUAL(dx[i], 0.0f);
    }
    dsnn_layer_free(l);
    struct dsnn_error err = {0};
    CU_ASSERT_PTR_NULL(dsnn_dropout_new("d", s, -0.1, &err));
    CU_ASSERT_EQUAL(err.status, DSNN_ERR_INVALID);
    CU_ASSERT_PTR_NULL(dsnn_dropout_new("d", s, 1.5, &err));
    CU_ASSERT_PTR_NULL(dsnn_dropout_new("d", s, NAN, &err));
}

static void test_determinism(void)
{
    const struct dsnn_shape s = {64, 1, 1};
    float x[256], ya[256], yb[256];
    for (int i = 0; i < 256; i++)
        x[i] = 1.0f;
    struct dsnn_layer *a = make(s, 0.5, 42), *b = make(s, 0.5, 42), *c = make(s, 0.5, 43);
    for (int step = 0; step < 3; step++) {
        CU_ASSERT_EQUAL(a->ops->forward(a, x, ya, 4, true, NULL), DSNN_OK);
        CU_ASSERT_EQUAL(b->ops->forward(b, x, yb, 4, true, NULL), DSNN_OK);
        CU_ASSERT_EQUAL(memcmp(ya, yb, sizeof ya), 0);
    }
    CU_ASSERT_EQUAL(c->ops->forward(c, x, yb, 4, true, NULL), DSNN_OK);
    CU_ASSERT(memcmp(ya, yb, sizeof ya) != 0);
    /* an explicit stream */
    struct dsnn_rng r;
    dsnn_rng_seed(&r, 7, DSNN_RNG_STREAM_DROPOUT);
    dsnn_dropout_set_rng(a, &r);
    dsnn_dropout_set_rng(c, &r);
    CU_ASSERT_EQUAL(a->ops->forward(a, x, ya, 4, true, NULL), DSNN_OK);
    CU_ASSERT_EQUAL(c->ops->forward(c, x, yb, 4, true, NULL), DSNN_OK);
    CU_ASSERT_EQUAL(memcmp(ya, yb, sizeof ya), 0);
    /* checkpoint: b resumes a's stream */
    lc_save_load(a, b);
    CU_ASSERT_EQUAL(a->ops->forward(a, x, ya, 4, true, NULL), DSNN_OK);
    CU_ASSERT_EQUAL(b->ops->forward(b, x, yb, 4, true, NULL), DSNN_OK);
    CU_ASSERT_EQUAL(memcmp(ya, yb, sizeof ya), 0);
    dsnn_layer_free(a);
    dsnn_layer_free(b);
    dsnn_layer_free(c);
}

static struct dsnn_rng g_saved;
static void reset_rng(struct dsnn_layer *l, void *user)
{
    (void)user;
    dsnn_dropout_set_rng(l, &g_saved);
}

static void test_fd(void)
{
    struct dsnn_layer *l = make((struct dsnn_shape){3, 2, 2}, 0.4, 5);
    dsnn_rng_seed(&g_saved, 99, DSNN_RNG_STREAM_DROPOUT);
    float x[36], dy[36];
    struct dsnn_rng rng;
    dsnn_rng_seed(&rng, 8, 1);
    lc_fill(x, 36, &rng, -1, 1);
    lc_fill(dy, 36, &rng, -1, 1);
    CU_ASSERT_EQUAL(lc_check_grads(l, x, 3, true, dy, 36, 1e-2, 1e-3, 1e-4, reset_rng, NULL), 0);
    dsnn_layer_free(l);
}

static CU_TestInfo tests[] = {
    {"training mask, scale and drop rate", test_train_mask},
    {"evaluation, p = 0, p = 1, invalid p", test_eval_and_extremes},
    {"deterministic streams and checkpoint", test_determinism},
    {"gradient vs finite differences", test_fd},
    CU_TEST_INFO_NULL,
};

DSNN_TEST_MAIN("layers_dropout", tests)
