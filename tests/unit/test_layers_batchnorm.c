/* test_layers_batchnorm.c - batch norm 1d / 2d against a double-precision reference of
 * PyTorch's semantics (batch statistics in training, running statistics with the unbiased
 * variance and momentum, evaluation), gradients against finite differences (training and
 * evaluation, affine or not), the single-value refusal and checkpoints. */
#include "layer_check.h"

static struct dsnn_layer *make(bool is2d, struct dsnn_shape s, bool affine)
{
    struct dsnn_error err = {0};
    struct dsnn_layer *l = is2d ? dsnn_batchnorm2d_new("bn", s, affine, &err)
                                : dsnn_batchnorm1d_new("bn", s.c, affine, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(l);
    lc_init(l, 1);
    return l;
}

/* Reference forward over [batch][C][S]; updates rm / rv (double) like PyTorch. */
static void ref_forward(const float *x, double *y, int batch, int C, int S, const float *gamma,
                        const float *beta, bool train, double *rm, double *rv, double momentum,
                        double eps)
{
    for (int c = 0; c < C; c++) {
        double mean, var;
        if (train) {
            double s = 0, q = 0;
            const double cnt = (double)batch * S;
            for (int b = 0; b < batch; b++)
                for (int i = 0; i < S; i++)
                    s += x[((size_t)b * C + c) * S + i];
            mean = s / cnt;
            for (int b = 0; b < batch; b++)
                for (int i = 0; i < S; i++) {
                    double d = x[((size_t)b * C + c) * S + i] - mean;
                    q += d * d;
                }
            var = q / cnt;
            rm[c] = (1 - momentum) * rm[c] + momentum * mean;
            rv[c] = (1 - momentum) * rv[c] + momentum * q / (cnt - 1);
        } else {
            mean = rm[c];
            var = rv[c];
        }
        for (int b = 0; b < batch; b++)
            for (int i = 0; i < S; i++) {
                const size_t j = ((size_t)b * C + c) * S + i;
                y[j] = (x[j] - mean) / sqrt(var + eps) * (gamma ? gamma[c] : 1.0) +
                       (beta ? beta[c] : 0.0);
            }
    }
}

static void check_forward(bool is2d, struct dsnn_shape s, bool affine, int batch)
{
    struct dsnn_layer *l = make(is2d, s, affine);
    const int C = s.c, S = s.h * s.w;
    const size_t total = (size_t)batch * C * S;
    struct dsnn_rng rng;
    dsnn_rng_seed(&rng, 9, 1);
    const float *gamma = NULL, *beta = NULL;
    if (affine) {
        CU_ASSERT_EQUAL_FATAL(l->n_params, 2u);
        CU_ASSERT_STRING_EQUAL(l->params[0].name, "weight");
        CU_ASSERT_STRING_EQUAL(l->params[1].name, "bias");
        for (int c = 0; c < C; c++) { /* PyTorch init: gamma 1, beta 0 */
            CU_ASSERT_EQUAL(l->params[0].value[c], 1.0f);
            CU_ASSERT_EQUAL(l->params[1].value[c], 0.0f);
        }
        lc_fill(l->params[0].value, (size_t)C, &rng, 0.5, 1.5);
        lc_fill(l->params[1].value, (size_t)C, &rng, -0.5, 0.5);
        gamma = l->params[0].value;
        beta = l->params[1].value;
    } else {
        CU_ASSERT_EQUAL(l->n_params, 0u);
    }
    double *rm = calloc((size_t)C, sizeof(double)), *rv = malloc(sizeof(double) * C);
    for (int c = 0; c < C; c++)
        rv[c] = 1.0;
    float *x = lc_alloc(total), *y = lc_alloc(total);
    double *yr = malloc(sizeof(double) * total);
    int bad = 0;
    for (int step = 0; step < 4; step++) {
        const bool train = step != 2;
        lc_fill(x, total, &rng, -2.0 + step, 3.0 + step); /* shifting statistics */
        CU_ASSERT_EQUAL_FATAL(l->ops->forward(l, x, y, batch, train, NULL), DSNN_OK);
        ref_forward(x, yr, batch, C, S, gamma, beta, train, rm, rv, 0.1, 1e-5);
        for (size_t i = 0; i < total; i++)
            bad += !lc_close(y[i], yr[i], 1e-5, 1e-5);
        const float *frm = dsnn_batchnorm_running_mean(l), *frv = dsnn_batchnorm_running_var(l);
        for (int c = 0; c < C; c++) {
            bad += !lc_close(frm[c], rm[c], 1e-5, 1e-6);
            bad += !lc_close(frv[c], rv[c], 1e-5, 1e-6);
        }
    }
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_EQUAL(dsnn_batchnorm_num_batches_tracked(l), 3u);
    free(rm), free(rv), free(x), free(y), free(yr);
    dsnn_layer_free(l);
}

static void test_forward_1d(void)
{
    check_forward(false, (struct dsnn_shape){7, 1, 1}, true, 6);
    check_forward(false, (struct dsnn_shape){5, 1, 1}, false, 2);
}

static void test_forward_2d(void)
{
    check_forward(true, (struct dsnn_shape){3, 4, 5}, true, 4);
    check_forward(true, (struct dsnn_shape){2, 3, 3}, false, 1);
    check_forward(true, (struct dsnn_shape){40, 2, 2}, true, 3); /* several threads' worth */
    check_forward(true, (struct dsnn_shape){4, 6, 6}, true, 5);  /* planes in float lanes */
}

static void check_grads(bool is2d, struct dsnn_shape s, bool affine, int batch, bool train)
{
    struct dsnn_layer *l = make(is2d, s, affine);
    const size_t total = (size_t)batch * (size_t)dsnn_shape_size(s);
    struct dsnn_rng rng;
    dsnn_rng_seed(&rng, 21, 1);
    if (affine) {
        lc_fill(l->params[0].value, (size_t)s.c, &rng, 0.5, 1.5);
        lc_fill(l->params[1].value, (size_t)s.c, &rng, -0.5, 0.5);
    }
    float *x = lc_alloc(total), *y = lc_alloc(total), *dy = lc_alloc(total);
    if (!train) { /* give the running statistics some values first */
        lc_fill(x, total, &rng, -1, 2);
        CU_ASSERT_EQUAL(l->ops->forward(l, x, y, batch, true, NULL), DSNN_OK);
    }
    lc_fill(x, total, &rng, -1, 1);
    lc_fill(dy, total, &rng, -1, 1);
    CU_ASSERT_EQUAL(lc_check_grads(l, x, batch, train, dy, total, 1e-2, 2e-2, 2e-3, NULL, NULL),
                    0);
    free(x), free(y), free(dy);
    dsnn_layer_free(l);
}

static void test_gradients(void)
{
    check_grads(false, (struct dsnn_shape){5, 1, 1}, true, 6, true);
    check_grads(false, (struct dsnn_shape){5, 1, 1}, false, 4, true);
    check_grads(false, (struct dsnn_shape){5, 1, 1}, true, 4, false);
    check_grads(true, (struct dsnn_shape){3, 3, 4}, true, 3, true);
    check_grads(true, (struct dsnn_shape){3, 3, 4}, false, 2, true);
    check_grads(true, (struct dsnn_shape){2, 2, 3}, true, 2, false);
    check_grads(true, (struct dsnn_shape){2, 5, 7}, true, 3, true); /* 4 lane blocks + 3 */
    check_grads(true, (struct dsnn_shape){2, 5, 7}, false, 2, true);
}

static void test_single_value_refused(void)
{
    struct dsnn_layer *l = make(false, (struct dsnn_shape){4, 1, 1}, true);
    float x[4] = {1, 2, 3, 4}, y[4];
    CU_ASSERT_EQUAL(l->ops->forward(l, x, y, 1, true, NULL), DSNN_ERR_INVALID);
    /* the layer op says why, naming the layer */
    struct dsnn_error err = {0};
    CU_ASSERT_EQUAL(l->ops->forward(l, x, y, 1, true, &err), DSNN_ERR_INVALID);
    CU_ASSERT_EQUAL(err.status, DSNN_ERR_INVALID);
    CU_ASSERT(strstr(err.msg, l->name) != NULL);
    CU_ASSERT(strstr(err.msg, "more than 1 value per channel") != NULL);
    CU_ASSERT_EQUAL(l->ops->forward(l, x, y, 1, false, NULL), DSNN_OK); /* evaluation is fine */
    /* running stats untouched: y = x / sqrt(1 + eps) */
    CU_ASSERT(lc_close(y[2], 3.0 / sqrt(1.0 + 1e-5), 1e-6, 0));
    dsnn_layer_free(l);
    /* 2d with one sample but several positions is fine */
    l = make(true, (struct dsnn_shape){2, 1, 2}, true);
    CU_ASSERT_EQUAL(l->ops->forward(l, x, y, 1, true, NULL), DSNN_OK);
    dsnn_layer_free(l);
}

static void test_momentum_eps(void)
{
    struct dsnn_layer *l = make(false, (struct dsnn_shape){1, 1, 1}, false);
    struct dsnn_error err = {0};
    CU_ASSERT_EQUAL(dsnn_batchnorm_set_momentum_eps(l, 1.5, 1e-3, &err), DSNN_ERR_INVALID);
    CU_ASSERT_EQUAL(dsnn_batchnorm_set_momentum_eps(l, 0.5, 0.0, &err), DSNN_ERR_INVALID);
    CU_ASSERT_EQUAL(dsnn_batchnorm_set_momentum_eps(l, 0.5, 1e-3, &err), DSNN_OK);
    float x[4] = {1, 2, 3, 6}, y[4];
    CU_ASSERT_EQUAL(l->ops->forward(l, x, y, 4, true, NULL), DSNN_OK);
    /* mean 3, biased var 3.5, unbiased 14/3 */
    CU_ASSERT(lc_close(dsnn_batchnorm_running_mean(l)[0], 1.5, 1e-6, 0));
    CU_ASSERT(lc_close(dsnn_batchnorm_running_var(l)[0], 0.5 + 0.5 * 14.0 / 3.0, 1e-6, 0));
    CU_ASSERT(lc_close(y[3], 3.0 / sqrt(3.5 + 1e-3), 1e-6, 0));
    CU_ASSERT(dsnn_batchnorm_is(l));
    dsnn_layer_free(l);
}

static void test_save_load(void)
{
    const struct dsnn_shape s = {3, 2, 2};
    struct dsnn_layer *a = make(true, s, true), *b = make(true, s, true);
    const int batch = 4;
    const size_t total = (size_t)batch * 12;
    struct dsnn_rng rng;
    dsnn_rng_seed(&rng, 4, 1);
    float *x = lc_alloc(total), *ya = lc_alloc(total), *yb = lc_alloc(total);
    lc_fill(a->params[0].value, 3, &rng, 0.5, 1.5);
    lc_fill(a->params[1].value, 3, &rng, -1, 1);
    float *mom = dsnn_param_block_state(&a->params[0], 0); /* optimizer state travels too */
    mom[1] = 0.25f;
    for (int i = 0; i < 3; i++) {
        lc_fill(x, total, &rng, -1, 2);
        CU_ASSERT_EQUAL(a->ops->forward(a, x, ya, batch, true, NULL), DSNN_OK);
    }
    lc_save_load(a, b);
    CU_ASSERT_EQUAL(dsnn_batchnorm_num_batches_tracked(b), 3u);
    CU_ASSERT_EQUAL(memcmp(dsnn_batchnorm_running_mean(a), dsnn_batchnorm_running_mean(b),
                           3 * sizeof(float)), 0);
    CU_ASSERT_EQUAL(memcmp(dsnn_batchnorm_running_var(a), dsnn_batchnorm_running_var(b),
                           3 * sizeof(float)), 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b->params[0].state[0]);
    CU_ASSERT_EQUAL(b->params[0].state[0][1], 0.25f);
    CU_ASSERT_EQUAL(a->ops->forward(a, x, ya, batch, false, NULL), DSNN_OK);
    CU_ASSERT_EQUAL(b->ops->forward(b, x, yb, batch, false, NULL), DSNN_OK);
    CU_ASSERT_EQUAL(memcmp(ya, yb, sizeof(float) * total), 0);
    free(x), free(ya), free(yb);
    dsnn_layer_free(a);
    dsnn_layer_free(b);
    /* channel mismatch is a format error */
    struct dsnn_error err = {0};
    struct dsnn_layer *c = make(false, (struct dsnn_shape){3, 1, 1}, false);
    struct dsnn_layer *d = make(false, (struct dsnn_shape){4, 1, 1}, false);
    FILE *f = tmpfile();
    CU_ASSERT_EQUAL(c->ops->save(c, f, &err), DSNN_OK);
    rewind(f);
    CU_ASSERT_EQUAL(d->ops->load(d, f, &err), DSNN_ERR_FORMAT);
    fclose(f);
    dsnn_layer_free(c);
    dsnn_layer_free(d);
}

static CU_TestInfo tests[] = {
    {"1d forward and running statistics vs reference", test_forward_1d},
    {"2d forward and running statistics vs reference", test_forward_2d},
    {"gradients vs finite differences", test_gradients},
    {"single value per channel refused in training", test_single_value_refused},
    {"momentum and eps", test_momentum_eps},
    {"save / load", test_save_load},
    CU_TEST_INFO_NULL,
};

DSNN_TEST_MAIN("layers_batchnorm", tests)
