/* test_schedules.c - the arithmetic and layer steps of the rigl / snfs / dsr / pruning /
 * iterative-pruning models (sdk/src/train/schedules.c, sdk/src/rules/prune_grow.c): drop-fraction anneals,
 * update timing, the GMP cubic schedule, DSR's threshold adaptation, capped proportional
 * allocation (SNFS / DSR redistribution), global selection, a RigL update on a small layer checked
 * against a brute-force reference, threshold pruning, and lottery-ticket rewinding. */
#include "harness.h"

#include <dsnn/dsnn.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define NEAR(a, b, tol) (fabs((double)(a) - (double)(b)) <= (tol))

/* ---- anneals and timing ---- */

static void test_anneal(void)
{
    const char *const *names = dsnn_anneal_names();
    CU_ASSERT_STRING_EQUAL(names[DSNN_ANNEAL_CONSTANT], "constant");
    CU_ASSERT_STRING_EQUAL(names[DSNN_ANNEAL_COSINE], "cosine");
    CU_ASSERT_STRING_EQUAL(names[DSNN_ANNEAL_EXPONENTIAL], "exponential");
    CU_ASSERT_STRING_EQUAL(names[DSNN_ANNEAL_LINEAR], "linear");
    CU_ASSERT_PTR_NULL(names[4]);
    /* constant */
    CU_ASSERT_EQUAL(dsnn_anneal_at(DSNN_ANNEAL_CONSTANT, 0.3, 0, 0, 100, 1), 0.3);
    CU_ASSERT_EQUAL(dsnn_anneal_at(DSNN_ANNEAL_CONSTANT, 0.3, 500, 0, 100, 1), 0.3);
    /* cosine: RigL's drop_fraction (1 + cos(pi t / T)) / 2 */
    CU_ASSERT(NEAR(dsnn_anneal_at(DSNN_ANNEAL_COSINE, 0.3, 0, 0, 100, 1), 0.3, 1e-15));
    CU_ASSERT(NEAR(dsnn_anneal_at(DSNN_ANNEAL_COSINE, 0.3, 50, 0, 100, 1), 0.15, 1e-15));
    CU_ASSERT(NEAR(dsnn_anneal_at(DSNN_ANNEAL_COSINE, 0.3, 25, 0, 100, 1),
                   0.3 * (1 + sqrt(0.5)) / 2, 1e-15));
    CU_ASSERT(NEAR(dsnn_anneal_at(DSNN_ANNEAL_COSINE, 0.3, 100, 0, 100, 1), 0.0, 1e-15));
    CU_ASSERT(NEAR(dsnn_anneal_at(DSNN_ANNEAL_COSINE, 0.3, 900, 0, 100, 1), 0.0, 1e-15));
    /* with an offset begin: x = (t - begin) / (end - begin); before begin x = 0 */
    CU_ASSERT(NEAR(dsnn_anneal_at(DSNN_ANNEAL_COSINE, 0.5, 150, 100, 200, 1), 0.25, 1e-15));
    CU_ASSERT(NEAR(dsnn_anneal_at(DSNN_ANNEAL_COSINE, 0.5, 10, 100, 200, 1), 0.5, 1e-15));
    /* exponential (RigL's exponential_k: (1 - x)^k) and linear */
    CU_ASSERT(NEAR(dsnn_anneal_at(DSNN_ANNEAL_EXPONENTIAL, 0.4, 50, 0, 100, 3), 0.05, 1e-15));
    CU_ASSERT(NEAR(dsnn_anneal_at(DSNN_ANNEAL_EXPONENTIAL, 0.4, 75, 0, 100, 1), 0.1, 1e-15));
    CU_ASSERT(NEAR(dsnn_anneal_at(DSNN_ANNEAL_LINEAR, 0.4, 75, 0, 100, 7), 0.1, 1e-15));
    CU_ASSERT(NEAR(dsnn_anneal_at(DSNN_ANNEAL_LINEAR, 0.4, 175, 0, 100, 7), 0.0, 1e-15));
    /* an empty interval: fully decayed from begin on */
    CU_ASSERT(NEAR(dsnn_anneal_at(DSNN_ANNEAL_LINEAR, 0.4, 10, 10, 10, 1), 0.0, 1e-15));
    CU_ASSERT(NEAR(dsnn_anneal_at(DSNN_ANNEAL_LINEAR, 0.4, 9, 10, 10, 1), 0.4, 1e-15));
    /* monotone non-increasing over the interval */
    for (int a = DSNN_ANNEAL_CONSTANT; a <= DSNN_ANNEAL_LINEAR; a++) {
        double prev = INFINITY;
        int bad = 0;
        for (int t = 0; t <= 1000; t++) {
            double v = dsnn_anneal_at((enum dsnn_anneal)a, 0.3, t, 0, 1000, 2);
            bad += v > prev + 1e-15 || v < 0 || v > 0.3 + 1e-15;
            prev = v;
        }
        CU_ASSERT_EQUAL(bad, 0);
    }
}

static void test_schedule_due(void)
{
    /* RigL: every 100 steps counted from 1, begin 0, end 750 */
    int n = 0;
    for (int64_t t = 1; t <= 1000; t++)
        n += dsnn_schedule_due(t, 0, 750, 100);
    CU_ASSERT_EQUAL(n, 7); /* 100 .. 700 */
    CU_ASSERT(dsnn_schedule_due(700, 0, 750, 100));
    CU_ASSERT(!dsnn_schedule_due(800, 0, 750, 100));
    CU_ASSERT(dsnn_schedule_due(750, 750, 750, 100)); /* begin == end: one update */
    CU_ASSERT(dsnn_schedule_due(150, 50, -1, 100));
    CU_ASSERT(dsnn_schedule_due(100050, 50, -1, 100)); /* end < 0: no end */
    CU_ASSERT(!dsnn_schedule_due(40, 50, -1, 10));
    CU_ASSERT(!dsnn_schedule_due(100, 0, -1, 0)); /* every <= 0: never */
    CU_ASSERT(!dsnn_schedule_due(101, 0, -1, 100));
}

/* ---- GMP cubic schedule ---- */

static void test_gmp(void)
{
    /* dense to 10 % between epochs 0 and 6 */
    CU_ASSERT_EQUAL(dsnn_gmp_density(1.0, 0.1, 0, 0, 6), 1.0);
    CU_ASSERT(NEAR(dsnn_gmp_density(1.0, 0.1, 3, 0, 6), 0.1 + 0.9 * 0.125, 1e-15));
    CU_ASSERT(NEAR(dsnn_gmp_density(1.0, 0.1, 1, 0, 6), 0.1 + 0.9 * pow(5.0 / 6, 3), 1e-15));
    CU_ASSERT(NEAR(dsnn_gmp_density(1.0, 0.1, 5, 0, 6), 0.1 + 0.9 / 216, 1e-15));
    CU_ASSERT_EQUAL(dsnn_gmp_density(1.0, 0.1, 6, 0, 6), 0.1);
    CU_ASSERT_EQUAL(dsnn_gmp_density(1.0, 0.1, 9, 0, 6), 0.1);
    CU_ASSERT_EQUAL(dsnn_gmp_density(1.0, 0.1, -1, 0, 6), 1.0);
    /* Zhu & Gupta in sparsity: s_t = s_f + (s_i - s_f)(1 - (t - t0)/(n dt))^3, s_i = 0.5,
     * s_f = 0.9, t0 = 2, n dt = 8, t = 4: 0.9 - 0.4 * 0.421875 */
    CU_ASSERT(NEAR(1 - dsnn_gmp_density(0.5, 0.1, 4, 2, 10), 0.9 - 0.4 * 0.421875, 1e-15));
    /* the schedule only prunes: a final density above the initial one keeps the initial */
    CU_ASSERT_EQUAL(dsnn_gmp_density(0.2, 0.5, 3, 0, 6), 0.2);
    /* one-shot: t0 == t1 */
    CU_ASSERT_EQUAL(dsnn_gmp_density(1.0, 0.3, 4, 4, 4), 0.3);
    CU_ASSERT_EQUAL(dsnn_gmp_density(1.0, 0.3, 3, 4, 4), 1.0);
    /* monotone, fastest at the start (cubic) */
    double prev = 1.0, prev_drop = INFINITY;
    for (int t = 1; t <= 6; t++) {
        double d = dsnn_gmp_density(1.0, 0.1, t, 0, 6);
        CU_ASSERT(d < prev);
        CU_ASSERT(prev - d < prev_drop);
        prev_drop = prev - d;
        prev = d;
    }
}

/* ---- DSR threshold ---- */

static void test_dsr_threshold(void)
{
    double h = 0.001;
    CU_ASSERT_EQUAL(dsnn_dsr_adjust_threshold(&h, 50, 100, 0.1), 1);
    CU_ASSERT_EQUAL(h, 0.002);
    CU_ASSERT_EQUAL(dsnn_dsr_adjust_threshold(&h, 111, 100, 0.1), -1);
    CU_ASSERT_EQUAL(h, 0.001);
    CU_ASSERT_EQUAL(dsnn_dsr_adjust_threshold(&h, 90, 100, 0.1), 0); /* band edges inclusive */
    CU_ASSERT_EQUAL(dsnn_dsr_adjust_threshold(&h, 110, 100, 0.1), 0);
    CU_ASSERT_EQUAL(dsnn_dsr_adjust_threshold(&h, 100, 100, 0.1), 0);
    CU_ASSERT_EQUAL(h, 0.001);
    CU_ASSERT_EQUAL(dsnn_dsr_adjust_threshold(&h, 89, 100, 0.1), 1);
    CU_ASSERT_EQUAL(h, 0.002);
    CU_ASSERT_EQUAL(dsnn_dsr_adjust_threshold(&h, 0, 0, 0.1), 0);

    /* Closed loop on |w| uniform in [0, 1): 10000 weights, target 500 per round (threshold 0.05
     * would hit it). From H0 = 0.001, H doubles up to 0.064, then stays within a factor 2 of the
     * ideal: it oscillates between 0.032 and 0.064, the two powers of 2 around 0.05. */
    h = 0.001;
    int ups = 0;
    for (int round = 0; round < 40; round++) {
        size_t pruned = (size_t)floor(h * 10000); /* count of |w| < h */
        int d = dsnn_dsr_adjust_threshold(&h, pruned, 500, 0.1);
        if (round < 6)
            CU_ASSERT_EQUAL(d, 1);
        ups += d > 0;
        if (round >= 6)
            CU_ASSERT(h >= 0.032 - 1e-12 && h <= 0.064 + 1e-12);
    }
    CU_ASSERT(ups >= 6);
    /* with a wide tolerance it settles: 0.032 prunes 320, inside [250, 750] */
    h = 0.001;
    for (int round = 0; round < 20; round++)
        dsnn_dsr_adjust_threshold(&h, (size_t)floor(h * 10000), 500, 0.5);
    CU_ASSERT(NEAR(h, 0.032, 1e-12));
}

/* ---- capped proportional allocation (SNFS / DSR redistribution) ---- */

static size_t sum(const size_t *v, size_t n)
{
    size_t s = 0;
    for (size_t i = 0; i < n; i++)
        s += v[i];
    return s;
}

static void test_allocate(void)
{
    size_t out[8];
    const size_t big[4] = {1000, 1000, 1000, 1000};
    /* plain proportional */
    const double w1[3] = {1, 1, 2};
    CU_ASSERT_EQUAL(dsnn_allocate_capped(3, w1, big, 8, out), 8);
    CU_ASSERT(out[0] == 2 && out[1] == 2 && out[2] == 4);
    /* largest remainder, ties to the lowest index */
    const double w2[3] = {1, 1, 1};
    CU_ASSERT_EQUAL(dsnn_allocate_capped(3, w2, big, 10, out), 10);
    CU_ASSERT(out[0] == 4 && out[1] == 3 && out[2] == 3);
    const double w3[3] = {1, 2, 4}; /* 10/7: 1.43, 2.86, 5.71 -> 1, 3, 6 */
    CU_ASSERT_EQUAL(dsnn_allocate_capped(3, w3, big, 10, out), 10);
    CU_ASSERT(out[0] == 1 && out[1] == 3 && out[2] == 6);
    /* SNFS capping: the layer with most momentum is almost full; its excess goes to the others
     * in proportion to their momentum */
    const double w4[3] = {10, 1, 3};
    const size_t c4[3] = {3, 100, 100};
    CU_ASSERT_EQUAL(dsnn_allocate_capped(3, w4, c4, 23, out), 23);
    CU_ASSERT(out[0] == 3 && out[1] == 5 && out[2] == 15);
    /* cascade: capping one bin pushes another over its cap */
    const double w5[4] = {4, 2, 1, 1};
    const size_t c5[4] = {1, 3, 100, 100};
    /* 10 over weights 8: bin 0 (5) capped at 1; 9 over 4: bin 1 (4.5) capped at 3; 6 over 2 */
    CU_ASSERT_EQUAL(dsnn_allocate_capped(4, w5, c5, 10, out), 10);
    CU_ASSERT(out[0] == 1 && out[1] == 3 && out[2] == 3 && out[3] == 3);
    /* more than the total room: everybody full, the room is returned */
    const size_t c6[3] = {2, 3, 4};
    CU_ASSERT_EQUAL(dsnn_allocate_capped(3, w1, c6, 50, out), 9);
    CU_ASSERT(out[0] == 2 && out[1] == 3 && out[2] == 4);
    /* weight 0 gets nothing while others have room; the rest equally once they are full */
    const double w7[3] = {1, 0, 0};
    const size_t c7[3] = {2, 10, 10};
    CU_ASSERT_EQUAL(dsnn_allocate_capped(3, w7, c7, 2, out), 2);
    CU_ASSERT(out[0] == 2 && out[1] == 0 && out[2] == 0);
    CU_ASSERT_EQUAL(dsnn_allocate_capped(3, w7, c7, 6, out), 6);
    CU_ASSERT(out[0] == 2 && out[1] == 2 && out[2] == 2);
    /* no information at all (no momentum yet): equal shares; NaN counts as 0 */
    const double w8[3] = {0, NAN, -1};
    CU_ASSERT_EQUAL(dsnn_allocate_capped(3, w8, big, 7, out), 7);
    CU_ASSERT(out[0] == 3 && out[1] == 2 && out[2] == 2);
    /* nothing to allocate, or no bins */
    CU_ASSERT_EQUAL(dsnn_allocate_capped(3, w1, big, 0, out), 0);
    CU_ASSERT(out[0] == 0 && out[1] == 0 && out[2] == 0);
    CU_ASSERT_EQUAL(dsnn_allocate_capped(0, w1, big, 5, out), 0);
    /* a full layer (cap 0) never gets any */
    const size_t c9[3] = {0, 50, 50};
    CU_ASSERT_EQUAL(dsnn_allocate_capped(3, w1, c9, 30, out), 30);
    CU_ASSERT(out[0] == 0 && out[1] == 10 && out[2] == 20);

    /* properties on random instances: exact total, caps respected, uncapped bins within one
     * unit of the proportional water level */
    struct dsnn_rng rng;
    dsnn_rng_seed(&rng, 7, 1);
    int bad = 0;
    for (int it = 0; it < 2000; it++) {
        const size_t n = 1 + dsnn_rng_below(&rng, 8);
        double w[8];
        size_t cap[8];
        for (size_t i = 0; i < n; i++) {
            w[i] = dsnn_rng_below(&rng, 5) == 0 ? 0.0 : dsnn_rng_uniform(&rng) * 10;
            cap[i] = dsnn_rng_below(&rng, 4) == 0 ? 0 : dsnn_rng_below(&rng, 100000);
        }
        const size_t total = dsnn_rng_below(&rng, 300000);
        const size_t room = sum(cap, n);
        const size_t got = dsnn_allocate_capped(n, w, cap, total, out);
        const size_t want = total < room ? total : room;
        bad += got != want || sum(out, n) != want;
        for (size_t i = 0; i < n; i++)
            bad += out[i] > cap[i];
        /* among bins below their cap with positive weight, out/w is the same level +- 1/w */
        double lo = INFINITY, hi = -INFINITY;
        for (size_t i = 0; i < n; i++)
            if (w[i] > 0 && out[i] < cap[i]) {
                lo = fmin(lo, ((double)out[i] + 1) / w[i]);
                hi = fmax(hi, ((double)out[i] - 1) / w[i]);
            }
        bad += hi > lo + 1e-9;
        /* a capped bin is capped because its share would exceed its cap: its level is at most
         * that of the uncapped ones */
        for (size_t i = 0; i < n; i++)
            if (w[i] > 0 && out[i] == cap[i] && cap[i] > 0 && isfinite(lo))
                bad += ((double)cap[i] - 1) / w[i] > lo + 1e-9;
    }
    CU_ASSERT_EQUAL(bad, 0);
}

/* ---- global selection ---- */

static void test_select_smallest(void)
{
    struct dsnn_error err = {0};
    const float a0[3] = {3, 1, 2}, a1[4] = {1, 0.5f, NAN, -4};
    const float *sc[2] = {a0, a1};
    const size_t n[2] = {3, 4};
    uint8_t m0[3], m1[4];
    uint8_t *mk[2] = {m0, m1};
    /* |.| is the caller's: here raw scores. -4, NaN (lowest), 0.5, then the first of the 1s */
    CU_ASSERT_EQUAL(dsnn_select_smallest(2, sc, n, 4, mk, &err), DSNN_OK);
    CU_ASSERT(m0[0] == 0 && m0[1] == 1 && m0[2] == 0);
    CU_ASSERT(m1[0] == 0 && m1[1] == 1 && m1[2] == 1 && m1[3] == 1);
    CU_ASSERT_EQUAL(dsnn_select_smallest(2, sc, n, 5, mk, &err), DSNN_OK);
    CU_ASSERT(m0[1] == 1 && m1[0] == 1 && m0[2] == 0);
    CU_ASSERT_EQUAL(dsnn_select_smallest(2, sc, n, 0, mk, &err), DSNN_OK);
    CU_ASSERT_EQUAL(m0[0] + m0[1] + m0[2] + m1[0] + m1[1] + m1[2] + m1[3], 0);
    CU_ASSERT_EQUAL(dsnn_select_smallest(2, sc, n, 7, mk, &err), DSNN_OK);
    CU_ASSERT_EQUAL(m0[0] + m0[1] + m0[2] + m1[0] + m1[1] + m1[2] + m1[3], 7);
    CU_ASSERT_EQUAL(dsnn_select_smallest(2, sc, n, 8, mk, &err), DSNN_ERR_INVALID);
    /* random: the marked ones are exactly the count smallest (distinct values) */
    struct dsnn_rng rng;
    dsnn_rng_seed(&rng, 3, 1);
    enum { N = 5000 };
    float *v = malloc(N * sizeof *v), *sorted = malloc(N * sizeof *sorted);
    uint8_t *mark = malloc(N);
    for (int i = 0; i < N; i++)
        sorted[i] = v[i] = (float)dsnn_rng_normal(&rng);
    int bad = 0;
    for (size_t count = 1; count < N; count += 611) {
        const float *s1[1] = {v};
        const size_t n1[1] = {N};
        uint8_t *mk1[1] = {mark};
        CU_ASSERT_EQUAL(dsnn_select_smallest(1, s1, n1, count, mk1, &err), DSNN_OK);
        size_t nm = 0, below = 0;
        float thr = -INFINITY;
        for (int i = 0; i < N; i++)
            if (mark[i]) {
                nm++;
                thr = fmaxf(thr, v[i]);
            }
        for (int i = 0; i < N; i++)
            below += v[i] <= thr;
        bad += nm != count || below != count;
    }
    CU_ASSERT_EQUAL(bad, 0);
    free(v);
    free(sorted);
    free(mark);
}

/* ---- layer steps ---- */

static struct dsnn_layer *make_layer(int n_in, int n_out, double density, uint64_t seed)
{
    struct dsnn_error err = {0};
    struct dsnn_sparse_init init = dsnn_sparse_init_default();
    init.density = density;
    struct dsnn_layer *l = dsnn_sparse_linear_new("fc", n_in, n_out, true, &init, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(l);
    struct dsnn_rng rng;
    dsnn_rng_seed(&rng, seed, DSNN_RNG_STREAM_INIT);
    CU_ASSERT_EQUAL_FATAL(l->ops->init(l, &rng, &err), DSNN_OK);
    return l;
}

/* Connection (r, c) of l before an edit: index in the weight block, or -1. */
struct conn {
    float value, state;
};

static void test_rigl_update(void)
{
    enum { NI = 20, NO = 10, B = 5, K = 6 };
    struct dsnn_error err = {0};
    int regrown_total = 0;
    for (uint64_t seed = 1; seed <= 12; seed++) {
        struct dsnn_layer *l = make_layer(NI, NO, 0.3, seed);
        struct dsnn_rng rng;
        dsnn_rng_seed(&rng, seed, 99);
        float x[B * NI], dy[B * NO], y[B * NO];
        for (int i = 0; i < B * NI; i++)
            x[i] = (float)dsnn_rng_normal(&rng);
        for (int i = 0; i < B * NO; i++)
            dy[i] = (float)dsnn_rng_normal(&rng);
        CU_ASSERT_EQUAL_FATAL(l->ops->forward(l, x, y, B, true, NULL), DSNN_OK);
        CU_ASSERT_EQUAL_FATAL(l->ops->backward(l, x, y, dy, NULL, B, NULL), DSNN_OK);
        /* SGD momentum of the active connections: nonzero */
        struct dsnn_param_block *w = dsnn_sparse_weight(l);
        float *mom = dsnn_param_block_state(w, 0);
        CU_ASSERT_PTR_NOT_NULL_FATAL(mom);
        for (size_t k = 0; k < w->n; k++)
            mom[k] = 1.0f + (float)k;
        /* dense matrices of the state before the update */
        bool active0[NO][NI] = {{false}};
        struct conn old[NO][NI];
        memset(old, 0, sizeof old);
        struct dsnn_sparse_csr c;
        dsnn_sparse_get_csr(l, &c);
        const size_t nnz0 = c.nnz;
        float absw[NO * NI];
        int pos[NO * NI], na = 0;
        for (int r = 0; r < NO; r++)
            for (int64_t k = c.row_ptr[r]; k < c.row_ptr[r + 1]; k++) {
                active0[r][c.col[k]] = true;
                old[r][c.col[k]] = (struct conn){c.value[k], mom[k]};
                absw[na] = fabsf(c.value[k]);
                pos[na++] = r * NI + c.col[k];
            }
        /* the dense gradient: engine vs naive */
        float g[NO * NI];
        CU_ASSERT_EQUAL(dsnn_sparse_dense_grad_rows(l, 0, NO, g, &err), DSNN_OK);
        int gbad = 0;
        for (int r = 0; r < NO; r++)
            for (int i = 0; i < NI; i++) {
                double s = 0;
                for (int b = 0; b < B; b++)
                    s += (double)dy[b * NO + r] * x[b * NI + i];
                gbad += !NEAR(g[r * NI + i], s, 1e-4);
            }
        CU_ASSERT_EQUAL(gbad, 0);
        /* expected: drop the K smallest |w| (ties: lowest CSR index), then the K largest |g|
         * among the positions inactive after the drop (ties: lowest position) */
        bool active1[NO][NI];
        memcpy(active1, active0, sizeof active1);
        bool dropped[NO * NI] = {false};
        for (int d = 0; d < K; d++) {
            int best = -1;
            for (int i = 0; i < na; i++)
                if (!dropped[pos[i]] && (best < 0 || absw[i] < absw[best]))
                    best = i;
            dropped[pos[best]] = true;
            active1[pos[best] / NI][pos[best] % NI] = false;
        }
        bool grown[NO * NI] = {false};
        for (int gi = 0; gi < K; gi++) {
            int best = -1;
            for (int p = 0; p < NO * NI; p++)
                if (!active1[p / NI][p % NI] && !grown[p] &&
                    (best < 0 || fabsf(g[p]) > fabsf(g[best])))
                    best = p;
            grown[best] = true;
        }
        size_t n_new = 99;
        CU_ASSERT_EQUAL_FATAL(dsnn_prune_grow_gradient(l, K, K, &rng, &n_new, &err), DSNN_OK);
        CU_ASSERT_EQUAL(dsnn_sparse_check(l, &err), DSNN_OK);
        CU_ASSERT_EQUAL(dsnn_sparse_nnz(l), nnz0); /* nnz unchanged */
        dsnn_sparse_get_csr(l, &c);
        w = dsnn_sparse_weight(l);
        mom = w->state[0];
        int bad_set = 0, bad_new = 0, bad_kept = 0, fresh = 0, regrown = 0;
        bool now[NO][NI] = {{false}};
        for (int r = 0; r < NO; r++)
            for (int64_t k = c.row_ptr[r]; k < c.row_ptr[r + 1]; k++) {
                const int i = c.col[k], p = r * NI + i;
                now[r][i] = true;
                if (!active1[r][i] && !grown[p])
                    bad_set++;
                if (grown[p] && !active0[r][i]) { /* truly new: 0, zero state and gradient */
                    fresh++;
                    bad_new += c.value[k] != 0.0f || mom[k] != 0.0f || c.grad[k] != 0.0f;
                } else { /* survivor, or dropped and regrown: as before */
                    regrown += grown[p];
                    bad_kept += c.value[k] != old[r][i].value || mom[k] != old[r][i].state;
                }
            }
        for (int p = 0; p < NO * NI; p++) /* every expected connection is there */
            bad_set += (active1[p / NI][p % NI] || grown[p]) && !now[p / NI][p % NI];
        CU_ASSERT_EQUAL(bad_set, 0);
        CU_ASSERT_EQUAL(bad_new, 0);
        CU_ASSERT_EQUAL(bad_kept, 0);
        CU_ASSERT_EQUAL((size_t)fresh, n_new);
        CU_ASSERT_EQUAL(fresh + regrown, K);
        regrown_total += regrown;
        /* an SGD step with momentum leaves the new weights at exactly 0 */
        struct dsnn_optim_cfg oc = {.alg = DSNN_OPTIM_SGD, .learning_rate = 0.1, .momentum = 0.9};
        struct dsnn_optim *o = dsnn_optim_new(&oc, &err);
        CU_ASSERT_EQUAL(dsnn_optim_step_block(o, w, &err), DSNN_OK);
        dsnn_optim_free(o);
        int moved = 0;
        for (int r = 0; r < NO; r++)
            for (int64_t k = c.row_ptr[r]; k < c.row_ptr[r + 1]; k++)
                if (grown[r * NI + c.col[k]] && !active0[r][c.col[k]])
                    moved += w->value[k] != 0.0f || w->state[0][k] != 0.0f;
        CU_ASSERT_EQUAL(moved, 0);
        dsnn_layer_free(l);
    }
    CU_ASSERT(regrown_total > 0); /* the dropped-and-regrown path was exercised */

    /* no gradient available: a clear error; n_drop > nnz: refused */
    struct dsnn_layer *l = make_layer(NI, NO, 0.3, 77);
    struct dsnn_rng rng;
    dsnn_rng_seed(&rng, 1, 1);
    CU_ASSERT_EQUAL(dsnn_prune_grow_gradient(l, 2, 2, &rng, NULL, &err), DSNN_ERR_INVALID);
    CU_ASSERT_EQUAL(dsnn_sparse_nnz(l), 60u);
    CU_ASSERT_EQUAL(dsnn_prune_grow_gradient(l, 61, 0, &rng, NULL, &err), DSNN_ERR_INVALID);
    dsnn_layer_free(l);
}

static void test_prune_threshold(void)
{
    struct dsnn_error err = {0};
    struct dsnn_layer *l = make_layer(50, 40, 0.5, 5);
    struct dsnn_sparse_csr c;
    dsnn_sparse_get_csr(l, &c);
    const size_t nnz0 = c.nnz;
    const double thr = 0.05;
    size_t expect = 0;
    for (size_t k = 0; k < c.nnz; k++)
        expect += fabsf(c.value[k]) < thr;
    CU_ASSERT(expect > 0 && expect < nnz0);
    size_t removed = 0;
    CU_ASSERT_EQUAL(dsnn_prune_threshold(l, thr, &removed, &err), DSNN_OK);
    CU_ASSERT_EQUAL(removed, expect);
    CU_ASSERT_EQUAL(dsnn_sparse_nnz(l), nnz0 - expect);
    dsnn_sparse_get_csr(l, &c);
    int bad = 0;
    for (size_t k = 0; k < c.nnz; k++)
        bad += fabsf(c.value[k]) < thr;
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_EQUAL(dsnn_prune_threshold(l, thr, &removed, &err), DSNN_OK);
    CU_ASSERT_EQUAL(removed, 0u);
    CU_ASSERT_EQUAL(dsnn_sparse_check(l, &err), DSNN_OK);
    dsnn_layer_free(l);
}

/* ---- lottery-ticket rewinding ---- */

struct key_value {
    int n_in;
    float *dense; /* [n_out][n_in], NAN = inactive */
};

static void record(void *user, int row, int col, size_t k, float value)
{
    (void)k;
    struct key_value *kv = user;
    kv->dense[row * kv->n_in + col] = value;
}

static void test_rewind(void)
{
    enum { NI = 12, NH = 16, NC = 4, B = 8 };
    struct dsnn_error err = {0};
    struct dsnn_net *net = dsnn_net_new((struct dsnn_shape){NI, 1, 1}, NC, &err);
    struct dsnn_sparse_init init = dsnn_sparse_init_default();
    init.density = 0.6;
    CU_ASSERT_EQUAL_FATAL(dsnn_net_add(net, dsnn_sparse_linear_new("fc1", NI, NH, true, &init,
                                                                   &err), &err), DSNN_OK);
    CU_ASSERT_EQUAL_FATAL(dsnn_net_add(net, dsnn_relu_new("relu1", (struct dsnn_shape){NH, 1, 1},
                                                          &err), &err), DSNN_OK);
    CU_ASSERT_EQUAL_FATAL(dsnn_net_add(net, dsnn_linear_new("out", NH, NC, true, &err), &err),
                          DSNN_OK);
    struct dsnn_rng rng;
    dsnn_rng_seed(&rng, 11, DSNN_RNG_STREAM_INIT);
    CU_ASSERT_EQUAL_FATAL(dsnn_net_init(net, &rng, B, &err), DSNN_OK);
    struct dsnn_layer *fc1 = dsnn_net_layer(net, 0), *out = dsnn_net_layer(net, 2);

    /* initial values: fc1 by position, the dense layer and the biases by index */
    float init_fc1[NH * NI], init_out[NC * NH], init_b1[NH], init_b2[NC];
    for (int i = 0; i < NH * NI; i++)
        init_fc1[i] = NAN;
    struct key_value kv = {NI, init_fc1};
    dsnn_sparse_foreach(fc1, record, &kv);
    memcpy(init_out, dsnn_linear_weight(out), sizeof init_out);
    memcpy(init_b1, dsnn_sparse_bias(fc1)->value, sizeof init_b1);
    memcpy(init_b2, dsnn_linear_bias(out), sizeof init_b2);

    struct dsnn_rewind *rw = dsnn_rewind_new(net, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(rw);

    /* train a few steps with momentum: values and optimizer state change */
    struct dsnn_optim_cfg oc = {.alg = DSNN_OPTIM_SGD, .learning_rate = 0.1, .momentum = 0.9};
    struct dsnn_optim *o = dsnn_optim_new(&oc, &err);
    float x[B * NI], dl[B * NC];
    for (int step = 0; step < 5; step++) {
        for (int i = 0; i < B * NI; i++)
            x[i] = (float)dsnn_rng_normal(&rng);
        CU_ASSERT_PTR_NOT_NULL_FATAL(dsnn_net_forward(net, x, B, true, &err));
        for (int i = 0; i < B * NC; i++)
            dl[i] = (float)dsnn_rng_normal(&rng) * 0.1f;
        CU_ASSERT_EQUAL(dsnn_net_backward(net, dl, B, &err), DSNN_OK);
        CU_ASSERT_EQUAL(dsnn_optim_step(o, net, &err), DSNN_OK);
    }
    dsnn_optim_free(o);

    /* prune half of fc1 by magnitude through the rewind copy, twice */
    for (int round = 0; round < 2; round++) {
        struct dsnn_sparse_csr c;
        dsnn_sparse_get_csr(fc1, &c);
        float *score = malloc(c.nnz * sizeof *score);
        uint8_t *mark = malloc(c.nnz);
        for (size_t k = 0; k < c.nnz; k++)
            score[k] = fabsf(c.value[k]);
        const float *sc[1] = {score};
        const size_t n[1] = {c.nnz};
        uint8_t *mk[1] = {mark};
        const size_t nnz0 = c.nnz;
        CU_ASSERT_EQUAL(dsnn_select_smallest(1, sc, n, nnz0 / 2, mk, &err), DSNN_OK);
        CU_ASSERT_EQUAL(dsnn_rewind_prune_mask(rw, net, 0, mark, &err), DSNN_OK);
        CU_ASSERT_EQUAL(dsnn_sparse_nnz(fc1), nnz0 - nnz0 / 2);
        free(score);
        free(mark);
        CU_ASSERT_EQUAL(dsnn_rewind_apply(rw, net, &err), DSNN_OK);
        /* every survivor has exactly its initial value; everything else too; state zero */
        dsnn_sparse_get_csr(fc1, &c);
        int bad = 0;
        for (int r = 0; r < NH; r++)
            for (int64_t k = c.row_ptr[r]; k < c.row_ptr[r + 1]; k++)
                bad += !(c.value[k] == init_fc1[r * NI + c.col[k]]); /* NaN (inactive) fails */
        bad += memcmp(dsnn_linear_weight(out), init_out, sizeof init_out) != 0;
        bad += memcmp(dsnn_sparse_bias(fc1)->value, init_b1, sizeof init_b1) != 0;
        bad += memcmp(dsnn_linear_bias(out), init_b2, sizeof init_b2) != 0;
        for (size_t li = 0; li < dsnn_net_n_layers(net); li++) {
            struct dsnn_layer *l = dsnn_net_layer(net, li);
            for (size_t bi = 0; bi < l->n_params; bi++)
                for (int s = 0; s < DSNN_OPT_STATE_MAX; s++)
                    for (size_t k = 0; l->params[bi].state[s] && k < l->params[bi].n; k++)
                        bad += l->params[bi].state[s][k] != 0.0f;
        }
        CU_ASSERT_EQUAL(bad, 0);
        CU_ASSERT_EQUAL(dsnn_sparse_check(fc1, &err), DSNN_OK);
        /* perturb again for the next round */
        for (size_t k = 0; k < c.nnz; k++)
            c.value[k] += 0.01f * (float)(k % 7);
    }

    /* checkpoint round trip of the copy */
    FILE *f = tmpfile();
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_EQUAL(dsnn_rewind_save(rw, f, &err), DSNN_OK);
    rewind(f);
    struct dsnn_rewind *rw2 = dsnn_rewind_new(net, &err); /* current (perturbed) values */
    CU_ASSERT_EQUAL(dsnn_rewind_load(rw2, net, f, &err), DSNN_OK);
    fclose(f);
    CU_ASSERT_EQUAL(dsnn_rewind_apply(rw2, net, &err), DSNN_OK);
    struct dsnn_sparse_csr c;
    dsnn_sparse_get_csr(fc1, &c);
    int bad = 0;
    for (int r = 0; r < NH; r++)
        for (int64_t k = c.row_ptr[r]; k < c.row_ptr[r + 1]; k++)
            bad += !(c.value[k] == init_fc1[r * NI + c.col[k]]);
    CU_ASSERT_EQUAL(bad, 0);
    dsnn_rewind_free(rw2);

    /* a topology edit behind the copy's back is detected, and nothing is touched */
    CU_ASSERT_EQUAL(dsnn_sparse_prune_magnitude(fc1, 3, &err), DSNN_OK);
    dsnn_sparse_get_csr(fc1, &c);
    c.value[0] = 42.0f;
    CU_ASSERT_EQUAL(dsnn_rewind_apply(rw, net, &err), DSNN_ERR_INVALID);
    CU_ASSERT_EQUAL(c.value[0], 42.0f);
    CU_ASSERT_EQUAL(dsnn_rewind_prune_mask(rw, net, 2, NULL, &err), DSNN_ERR_INVALID);
    dsnn_rewind_free(rw);
    dsnn_rewind_free(NULL);
    dsnn_net_free(net);
}

static CU_TestInfo tests[] = {
    {"drop fraction anneals", test_anneal},
    {"update timing", test_schedule_due},
    {"GMP cubic schedule", test_gmp},
    {"DSR threshold adaptation", test_dsr_threshold},
    {"capped proportional allocation", test_allocate},
    {"global selection of the smallest", test_select_smallest},
    {"RigL update on a small layer", test_rigl_update},
    {"threshold pruning", test_prune_threshold},
    {"lottery-ticket rewinding", test_rewind},
    CU_TEST_INFO_NULL,
};

DSNN_TEST_MAIN("schedules", tests)
