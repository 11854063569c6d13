/* test_layers_kwinners.c - k-winners (1d, 2d global, 2d local) against a sort-based reference
 * of nupic.torch's KWinners / KWinners2d (boosting, duty cycles, k at inference), ties, the
 * gradient (winners only, finite differences), boost-strength decay through the network hook,
 * checkpoints and argument checks. */
#include "layer_check.h"

/* ---- reference (nupic.torch, written naively with a full sort) ---- */

struct ref {
    int C, S, n, k, k_inf;
    bool local, break_ties;
    double bs;
    int period;
    uint64_t li;
    float *duty;
};

static const float *g_keys;
static int cmp_desc(const void *a, const void *b)
{
    const int i = *(const int *)a, j = *(const int *)b;
    if (g_keys[i] != g_keys[j])
        return g_keys[i] > g_keys[j] ? -1 : 1;
    return i - j; /* ties: lowest index first */
}

/* Winners of m keys: mask[i] for i < m. */
static void ref_pick(const float *keys, int m, int k, bool break_ties, uint8_t *mask)
{
    int *idx = malloc(sizeof(int) * (size_t)m);
    for (int i = 0; i < m; i++)
        idx[i] = i;
    g_keys = keys;
    qsort(idx, (size_t)m, sizeof(int), cmp_desc);
    memset(mask, 0, (size_t)m);
    if (k > m)
        k = m;
    for (int r = 0; r < k; r++)
        mask[idx[r]] = 1;
    if (!break_ties && k > 0)
        for (int r = k; r < m; r++)
            if (keys[idx[r]] == keys[idx[k - 1]])
                mask[idx[r]] = 1;
    free(idx);
}

static void ref_forward(struct ref *R, const float *x, float *y, uint8_t *mask, int batch,
                        bool train)
{
    const int k = train ? R->k : R->k_inf;
    float *bf = malloc(sizeof(float) * (size_t)R->C);
    for (int c = 0; c < R->C; c++) {
        const float target = (float)((double)k / (R->local ? R->C : R->n));
        bf[c] = expf((target - R->duty[c]) * (float)R->bs);
    }
    float *keys = malloc(sizeof(float) * (size_t)R->n);
    uint8_t *m = malloc((size_t)R->n);
    for (int b = 0; b < batch; b++) {
        const float *xb = x + (size_t)b * R->n;
        uint8_t *mb = mask + (size_t)b * R->n;
        if (!R->local) {
            for (int i = 0; i < R->n; i++)
                keys[i] = R->bs > 0 ? xb[i] * bf[i / R->S] : xb[i];
            ref_pick(keys, R->n, k, R->break_ties, mb);
        } else {
            for (int s = 0; s < R->S; s++) {
                for (int c = 0; c < R->C; c++)
                    keys[c] = R->bs > 0 ? xb[c * R->S + s] * bf[c] : xb[c * R->S + s];
                ref_pick(keys, R->C, k, R->break_ties, m);
                for (int c = 0; c < R->C; c++)
                    mb[c * R->S + s] = m[c];
            }
        }
        for (int i = 0; i < R->n; i++)
            y[(size_t)b * R->n + i] = mb[i] ? xb[i] : 0.0f;
    }
    if (train) {
        R->li += (uint64_t)batch;
        const uint64_t period = R->li < (uint64_t)R->period ? R->li : (uint64_t)R->period;
        for (int c = 0; c < R->C; c++) {
            int active = 0;
            for (int b = 0; b < batch; b++)
                for (int s = 0; s < R->S; s++)
                    active += y[(size_t)b * R->n + c * R->S + s] > 0.0f;
            float d = R->duty[c] * (float)((double)period - batch);
            d = d + (float)active / (float)R->S;
            R->duty[c] = d / (float)period;
        }
    }
    free(bf);
    free(keys);
    free(m);
}

static struct dsnn_kwinners_cfg cfg_of(double p, double factor, double bs, int period, bool ties,
                                       bool local)
{
    struct dsnn_kwinners_cfg c = dsnn_kwinners_cfg_default();
    c.percent_on = p;
    c.k_inference_factor = factor;
    c.boost_strength = bs;
    c.duty_cycle_period = period;
    c.break_ties = ties;
    c.local = local;
    return c;
}

static struct dsnn_layer *make(struct dsnn_shape s, bool is2d, const struct dsnn_kwinners_cfg *c)
{
    struct dsnn_error err = {0};
    struct dsnn_layer *l = is2d ? dsnn_kwinners2d_new("kw", s, c, &err)
                                : dsnn_kwinners_new("kw", s.c, c, &err);
    if (!l)
        fprintf(stderr, "%s\n", err.msg);
    CU_ASSERT_PTR_NOT_NULL_FATAL(l);
    lc_init(l, 1);
    return l;
}

/* Distinct values: a random permutation of (i + 1) * spacing * sign, in [-range, range]. */
static void fill_distinct(float *x, size_t n, struct dsnn_rng *rng, double spacing)
{
    uint32_t *p = malloc(sizeof(uint32_t) * n);
    for (size_t i = 0; i < n; i++)
        p[i] = (uint32_t)i;
    dsnn_rng_shuffle_u32(rng, p, n);
    for (size_t i = 0; i < n; i++)
        x[i] = (float)(((double)p[i] - (double)n / 3.0) * spacing);
    free(p);
}

static void run_vs_reference(struct dsnn_shape shape, bool is2d, double p, double factor,
                             double bs, int period, bool ties, bool local, int batch,
                             bool distinct)
{
    struct dsnn_kwinners_cfg c = cfg_of(p, factor, bs, period, ties, local);
    struct dsnn_layer *l = make(shape, is2d, &c);
    struct ref R = {0};
    R.n = (int)dsnn_shape_size(shape);
    R.C = is2d ? shape.c : R.n;
    R.S = is2d ? shape.h * shape.w : 1;
    R.local = local;
    R.break_ties = ties;
    R.bs = bs;
    R.period = period;
    R.k = dsnn_kwinners_k(l, true);
    R.k_inf = dsnn_kwinners_k(l, false);
    R.duty = calloc((size_t)R.C, sizeof(float));
    const size_t total = (size_t)batch * R.n;
    float *x = lc_alloc(total), *y = lc_alloc(total), *yr = lc_alloc(total);
    float *dy = lc_alloc(total), *dx = lc_alloc(total);
    uint8_t *mask = malloc(total);
    struct dsnn_rng rng;
    dsnn_rng_seed(&rng, 7, 1);
    int bad_y = 0, bad_d = 0, bad_dx = 0;
    for (int step = 0; step < 8; step++) {
        const bool train = step < 6 || step == 7;
        if (distinct)
            fill_distinct(x, total, &rng, 0.01);
        else /* few distinct values: many ties, and -0 next to +0 */
            for (size_t i = 0; i < total; i++) {
                const int v = (int)dsnn_rng_below(&rng, 6) - 2;
                x[i] = v == -2 ? -0.0f : (float)v;
            }
        const uint64_t li = dsnn_kwinners_learning_iterations(l);
        CU_ASSERT_EQUAL_FATAL(l->ops->forward(l, x, y, batch, train, NULL), DSNN_OK);
        ref_forward(&R, x, yr, mask, batch, train);
        bad_y += memcmp(y, yr, sizeof(float) * total) != 0;
        size_t nd;
        const float *duty = dsnn_kwinners_duty_cycle(l, &nd);
        CU_ASSERT_EQUAL(nd, (size_t)R.C);
        for (int i = 0; i < R.C; i++)
            bad_d += duty[i] != R.duty[i];
        CU_ASSERT_EQUAL(dsnn_kwinners_learning_iterations(l), train ? li + batch : li);
        CU_ASSERT_EQUAL(dsnn_kwinners_learning_iterations(l), R.li);
        /* backward: dy through the winners only */
        lc_fill(dy, total, &rng, -1, 1);
        CU_ASSERT_EQUAL_FATAL(l->ops->backward(l, x, y, dy, dx, batch, NULL), DSNN_OK);
        for (size_t i = 0; i < total; i++)
            bad_dx += dx[i] != (mask[i] ? dy[i] : 0.0f);
        /* the number of winners per sample is k when ties are broken */
        if (ties && !local) {
            const int k = train ? R.k : R.k_inf;
            for (int b = 0; b < batch; b++) {
                int w = 0;
                for (int i = 0; i < R.n; i++)
                    w += mask[(size_t)b * R.n + i];
                CU_ASSERT_EQUAL(w, k < R.n ? k : R.n);
            }
        }
    }
    CU_ASSERT_EQUAL(bad_y, 0);
    CU_ASSERT_EQUAL(bad_d, 0);
    CU_ASSERT_EQUAL(bad_dx, 0);
    free(x), free(y), free(yr), free(dy), free(dx), free(mask), free(R.duty);
    dsnn_layer_free(l);
}

static void test_k_values(void)
{
    struct dsnn_kwinners_cfg c = cfg_of(0.1, 1.5, 1.0, 1000, true, false);
    struct dsnn_error err = {0};
    struct dsnn_layer *l = dsnn_kwinners_new("a", 100, &c, &err);
    CU_ASSERT_EQUAL(dsnn_kwinners_k(l, true), 10);
    CU_ASSERT_EQUAL(dsnn_kwinners_k(l, false), 15);
    dsnn_layer_free(l);
    /* round half to even (Python round): 50 * 0.05 = 2.5 -> 2; 1d: int(2 * 1.5) = 3 */
    c.percent_on = 0.05;
    l = dsnn_kwinners_new("b", 50, &c, &err);
    CU_ASSERT_EQUAL(dsnn_kwinners_k(l, true), 2);
    CU_ASSERT_EQUAL(dsnn_kwinners_k(l, false), 3);
    dsnn_layer_free(l);
    /* 1d truncates k * factor: int(7 * 1.5) = 10 */
    c.percent_on = 0.07;
    l = dsnn_kwinners_new("c", 100, &c, &err);
    CU_ASSERT_EQUAL(dsnn_kwinners_k(l, true), 7);
    CU_ASSERT_EQUAL(dsnn_kwinners_k(l, false), 10);
    dsnn_layer_free(l);
    /* 2d global rounds n p factor: 50 * 0.075 = 3.75 -> 4 */
    c.percent_on = 0.05;
    l = dsnn_kwinners2d_new("d", (struct dsnn_shape){2, 5, 5}, &c, &err);
    CU_ASSERT_EQUAL(dsnn_kwinners_k(l, true), 2);
    CU_ASSERT_EQUAL(dsnn_kwinners_k(l, false), 4);
    dsnn_layer_free(l);
    /* 2d local: over the channels, 10 * 0.25 = 2.5 -> 2, 10 * 0.375 = 3.75 -> 4 */
    c.percent_on = 0.25;
    c.local = true;
    l = dsnn_kwinners2d_new("e", (struct dsnn_shape){10, 2, 2}, &c, &err);
    CU_ASSERT_EQUAL(dsnn_kwinners_k(l, true), 2);
    CU_ASSERT_EQUAL(dsnn_kwinners_k(l, false), 4);
    dsnn_layer_free(l);
}

static void test_reference_1d(void)
{
    run_vs_reference((struct dsnn_shape){50, 1, 1}, false, 0.1, 1.5, 1.5, 7, true, false, 4,
                     true);
    run_vs_reference((struct dsnn_shape){50, 1, 1}, false, 0.2, 2.0, 0.0, 1000, true, false, 3,
                     true);
    run_vs_reference((struct dsnn_shape){64, 1, 1}, false, 0.25, 1.0, 1.0, 3, true, false, 5,
                     true); /* period < batch */
    /* n >= 256: radix selection */
    run_vs_reference((struct dsnn_shape){600, 1, 1}, false, 0.1, 1.5, 1.5, 7, true, false, 4,
                     true);
    run_vs_reference((struct dsnn_shape){1000, 1, 1}, false, 0.3, 1.5, 0.0, 7, true, false, 3,
                     true);
}

static void test_reference_2d(void)
{
    run_vs_reference((struct dsnn_shape){4, 3, 3}, true, 0.1, 1.5, 1.5, 10, true, false, 4, true);
    run_vs_reference((struct dsnn_shape){8, 2, 3}, true, 0.3, 1.5, 1.0, 10, true, true, 3, true);
    run_vs_reference((struct dsnn_shape){3, 4, 4}, true, 0.2, 1.0, 0.0, 5, true, false, 2, true);
    run_vs_reference((struct dsnn_shape){8, 6, 6}, true, 0.1, 1.5, 1.0, 10, true, false, 3, true);
    run_vs_reference((struct dsnn_shape){300, 2, 1}, true, 0.1, 1.5, 1.0, 10, true, true, 2,
                     true); /* local over 300 channels: radix */
}

static void test_ties(void)
{
    /* many equal values: exactly k winners (lowest index first) or every tie at the threshold */
    run_vs_reference((struct dsnn_shape){40, 1, 1}, false, 0.1, 1.5, 1.0, 10, true, false, 4,
                     false);
    run_vs_reference((struct dsnn_shape){40, 1, 1}, false, 0.1, 1.5, 1.0, 10, false, false, 4,
                     false);
    run_vs_reference((struct dsnn_shape){4, 3, 3}, true, 0.2, 1.5, 1.0, 10, false, false, 2,
                     false);
    run_vs_reference((struct dsnn_shape){6, 2, 2}, true, 0.3, 1.5, 1.0, 10, true, true, 2,
                     false);
    run_vs_reference((struct dsnn_shape){500, 1, 1}, false, 0.1, 1.5, 1.0, 10, true, false, 3,
                     false);
    run_vs_reference((struct dsnn_shape){500, 1, 1}, false, 0.1, 1.5, 0.0, 10, false, false, 3,
                     false);
    run_vs_reference((struct dsnn_shape){8, 6, 6}, true, 0.2, 1.5, 1.0, 10, false, false, 2,
                     false);
    /* constant input */
    struct dsnn_kwinners_cfg c = cfg_of(0.1, 1.5, 1.0, 1000, true, false);
    struct dsnn_layer *l = make((struct dsnn_shape){30, 1, 1}, false, &c);
    float x[30], y[30];
    for (int i = 0; i < 30; i++)
        x[i] = 2.0f;
    CU_ASSERT_EQUAL(l->ops->forward(l, x, y, 1, true, NULL), DSNN_OK);
    for (int i = 0; i < 30; i++)
        CU_ASSERT_EQUAL(y[i], i < 3 ? 2.0f : 0.0f);
    dsnn_layer_free(l);
    c.break_ties = false;
    l = make((struct dsnn_shape){30, 1, 1}, false, &c);
    CU_ASSERT_EQUAL(l->ops->forward(l, x, y, 1, true, NULL), DSNN_OK);
    for (int i = 0; i < 30; i++)
        CU_ASSERT_EQUAL(y[i], 2.0f);
    dsnn_layer_free(l);
}

static void test_nan_wins(void)
{
    struct dsnn_kwinners_cfg c = cfg_of(0.1, 1.5, 0.0, 1000, true, false);
    struct dsnn_layer *l = make((struct dsnn_shape){10, 1, 1}, false, &c);
    float x[10] = {1, 2, 3, NAN, 5, 6, 7, 8, 9, 0}, y[10];
    CU_ASSERT_EQUAL(l->ops->forward(l, x, y, 1, true, NULL), DSNN_OK);
    CU_ASSERT(isnan(y[3]));
    for (int i = 0; i < 10; i++)
        if (i != 3)
            CU_ASSERT_EQUAL(y[i], 0.0f);
    dsnn_layer_free(l);
}

static void test_gradient_fd(void)
{
    const struct dsnn_shape shapes[2] = {{40, 1, 1}, {3, 4, 4}};
    for (int t = 0; t < 3; t++) {
        struct dsnn_kwinners_cfg c = cfg_of(0.2, 1.5, 1.2, 100, true, t == 2);
        struct dsnn_layer *l = make(shapes[t > 0], t > 0, &c);
        size_t nd;
        float *duty = dsnn_kwinners_duty_cycle(l, &nd);
        struct dsnn_rng rng;
        dsnn_rng_seed(&rng, 11 + t, 1);
        for (size_t i = 0; i < nd; i++) /* distinct boost factors */
            duty[i] = (float)(0.3 * dsnn_rng_uniform(&rng));
        const int batch = 3;
        const size_t total = (size_t)batch * dsnn_shape_size(l->in);
        float *x = lc_alloc(total), *dy = lc_alloc(total);
        fill_distinct(x, total, &rng, 0.05);
        lc_fill(dy, total, &rng, -1, 1);
        /* evaluation mode keeps the duty cycles (and so the winners) fixed */
        CU_ASSERT_EQUAL(lc_check_grads(l, x, batch, false, dy, total, 1e-3, 1e-3, 1e-3, NULL,
                                       NULL),
                        0);
        free(x), free(dy);
        dsnn_layer_free(l);
    }
}

static void test_boost_decay_and_hook(void)
{
    struct dsnn_error err = {0};
    struct dsnn_kwinners_cfg c = cfg_of(0.1, 1.5, 2.0, 1000, true, false);
    c.boost_strength_factor = 0.5;
    struct dsnn_net *net = dsnn_net_new((struct dsnn_shape){20, 1, 1}, 5, &err);
    CU_ASSERT_EQUAL_FATAL(dsnn_net_add(net, dsnn_linear_new("fc1", 20, 30, true, &err), &err),
                          DSNN_OK);
    CU_ASSERT_EQUAL_FATAL(dsnn_net_add(net, dsnn_kwinners_new("kw1", 30, &c, &err), &err),
                          DSNN_OK);
    CU_ASSERT_EQUAL_FATAL(dsnn_net_add(net, dsnn_linear_new("fc2", 30, 5, true, &err), &err),
                          DSNN_OK);
    struct dsnn_rng rng;
    dsnn_rng_seed(&rng, 3, DSNN_RNG_STREAM_INIT);
    CU_ASSERT_EQUAL_FATAL(dsnn_net_init(net, &rng, 8, &err), DSNN_OK);
    struct dsnn_layer *kw = dsnn_net_layer(net, 1);
    CU_ASSERT(dsnn_kwinners_is(kw));
    CU_ASSERT(!dsnn_kwinners_is(dsnn_net_layer(net, 0)));
    CU_ASSERT_DOUBLE_EQUAL(dsnn_kwinners_boost_strength(kw), 2.0, 1e-15);
    dsnn_net_on_epoch_end(net);
    CU_ASSERT_DOUBLE_EQUAL(dsnn_kwinners_boost_strength(kw), 1.0, 1e-15);
    dsnn_net_on_epoch_end(net);
    CU_ASSERT_DOUBLE_EQUAL(dsnn_kwinners_boost_strength(kw), 0.5, 1e-15);
    dsnn_kwinners_update_boost_strength(kw);
    CU_ASSERT_DOUBLE_EQUAL(dsnn_kwinners_boost_strength(kw), 0.25, 1e-15);
    /* a training step through the net updates the duty cycles */
    float x[8 * 20];
    lc_fill(x, 8 * 20, &rng, -1, 1);
    CU_ASSERT_PTR_NOT_NULL(dsnn_net_forward(net, x, 8, true, &err));
    CU_ASSERT_EQUAL(dsnn_kwinners_learning_iterations(kw), 8u);
    dsnn_net_free(net);
}

static void test_save_load(void)
{
    for (int is2d = 0; is2d < 2; is2d++) {
        struct dsnn_shape s = is2d ? (struct dsnn_shape){4, 3, 3} : (struct dsnn_shape){36, 1, 1};
        struct dsnn_kwinners_cfg c = cfg_of(0.2, 1.5, 1.0, 20, true, false);
        struct dsnn_layer *a = make(s, is2d, &c), *b = make(s, is2d, &c);
        const int batch = 5;
        const size_t total = (size_t)batch * 36;
        float *x = lc_alloc(total), *ya = lc_alloc(total), *yb = lc_alloc(total);
        struct dsnn_rng rng;
        dsnn_rng_seed(&rng, 5, 1);
        for (int i = 0; i < 3; i++) {
            lc_fill(x, total, &rng, -1, 1);
            CU_ASSERT_EQUAL(a->ops->forward(a, x, ya, batch, true, NULL), DSNN_OK);
        }
        dsnn_kwinners_update_boost_strength(a);
        lc_save_load(a, b);
        size_t na, nb;
        const float *da = dsnn_kwinners_duty_cycle(a, &na), *db = dsnn_kwinners_duty_cycle(b, &nb);
        CU_ASSERT_EQUAL(na, nb);
        CU_ASSERT_EQUAL(memcmp(da, db, sizeof(float) * na), 0);
        CU_ASSERT_EQUAL(dsnn_kwinners_learning_iterations(b), 15u);
        CU_ASSERT_DOUBLE_EQUAL(dsnn_kwinners_boost_strength(b), 0.9, 1e-15);
        lc_fill(x, total, &rng, -1, 1);
        CU_ASSERT_EQUAL(a->ops->forward(a, x, ya, batch, true, NULL), DSNN_OK);
        CU_ASSERT_EQUAL(b->ops->forward(b, x, yb, batch, true, NULL), DSNN_OK);
        CU_ASSERT_EQUAL(memcmp(ya, yb, sizeof(float) * total), 0);
        CU_ASSERT_EQUAL(memcmp(da, db, sizeof(float) * na), 0);
        free(x), free(ya), free(yb);
        dsnn_layer_free(a);
        dsnn_layer_free(b);
    }
}

static void test_entropy(void)
{
    struct dsnn_kwinners_cfg c = cfg_of(0.25, 1.5, 1.0, 20, true, false);
    struct dsnn_layer *l = make((struct dsnn_shape){2, 2, 2}, true, &c);
    size_t n;
    float *d = dsnn_kwinners_duty_cycle(l, &n);
    CU_ASSERT_EQUAL_FATAL(n, 2u);
    d[0] = 0.5f;
    d[1] = 0.0f; /* contributes 0 */
    /* H(0.5) = 1 bit, times n / channels = 8 / 2 */
    CU_ASSERT_DOUBLE_EQUAL(dsnn_kwinners_entropy(l), 4.0, 1e-12);
    /* 8 H(2 / 8) */
    const double p = 0.25, h = -p * log2(p) - (1 - p) * log2(1 - p);
    CU_ASSERT_DOUBLE_EQUAL(dsnn_kwinners_max_entropy(l), 8 * h, 1e-12);
    dsnn_layer_free(l);
}

static void test_invalid(void)
{
    struct dsnn_error err = {0};
    struct dsnn_kwinners_cfg bad[6];
    for (int i = 0; i < 6; i++)
        bad[i] = cfg_of(0.1, 1.5, 1.0, 100, true, false);
    bad[0].percent_on = 0.0;
    bad[1].percent_on = 1.0;
    bad[2].k_inference_factor = 10.0; /* 0.1 * 10 = 1 */
    bad[3].boost_strength = -1.0;
    bad[4].boost_strength_factor = 1.5;
    bad[5].duty_cycle_period = 0;
    for (int i = 0; i < 6; i++) {
        err.status = DSNN_OK;
        CU_ASSERT_PTR_NULL(dsnn_kwinners_new("kw", 10, &bad[i], &err));
        CU_ASSERT_EQUAL(err.status, DSNN_ERR_INVALID);
    }
    struct dsnn_kwinners_cfg local = cfg_of(0.1, 1.5, 1.0, 100, true, true);
    CU_ASSERT_PTR_NULL(dsnn_kwinners_new("kw", 10, &local, &err));
    CU_ASSERT_PTR_NULL(dsnn_kwinners2d_new("kw", (struct dsnn_shape){0, 2, 2}, NULL, &err));
    /* defaults (NULL cfg) are valid */
    struct dsnn_layer *l = dsnn_kwinners2d_new(NULL, (struct dsnn_shape){4, 2, 2}, NULL, &err);
    CU_ASSERT_PTR_NOT_NULL(l);
    CU_ASSERT_STRING_EQUAL(l->name, "kwinners2d");
    dsnn_layer_free(l);
}

static CU_TestInfo tests[] = {
    {"k and k_inference as nupic", test_k_values},
    {"1d vs reference (boost, duty cycles, eval)", test_reference_1d},
    {"2d global / local vs reference", test_reference_2d},
    {"ties", test_ties},
    {"NaN counts as largest", test_nan_wins},
    {"gradient vs finite differences", test_gradient_fd},
    {"boost decay and net epoch hook", test_boost_decay_and_hook},
    {"save / load", test_save_load},
    {"entropy", test_entropy},
    {"invalid arguments", test_invalid},
    CU_TEST_INFO_NULL,
};

DSNN_TEST_MAIN("layers_kwinners", tests)
