/* test_sparse_topology.c - initial masks, densities (ER / ERK), and the invariants of prune /
 * grow over thousands of random rounds checked against a dense shadow copy. */
#include "harness.h"

#include <dsnn/dsnn.h>
#include <dsnn/sparse.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static struct dsnn_layer *make(int n_in, int n_out, struct dsnn_sparse_init *init, uint64_t seed)
{
    struct dsnn_error err = {0};
    struct dsnn_layer *l = dsnn_sparse_linear_new("fc", n_in, n_out, true, init, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(l);
    struct dsnn_rng rng;
    dsnn_rng_seed(&rng, seed, DSNN_RNG_STREAM_INIT);
    enum dsnn_status st = l->ops->init(l, &rng, &err);
    if (st != DSNN_OK)
        fprintf(stderr, "init: %s\n", err.msg);
    CU_ASSERT_EQUAL_FATAL(st, DSNN_OK);
    return l;
}

static void test_masks(void)
{
    struct dsnn_error err = {0};
    struct dsnn_sparse_init init = dsnn_sparse_init_default();
    const double dens[] = {0.0, 0.001, 0.05, 0.3, 0.5, 0.51, 0.8, 1.0};
    for (size_t di = 0; di < sizeof dens / sizeof *dens; di++) {
        init.density = dens[di];
        init.mask = DSNN_SPARSE_MASK_PRECISE;
        struct dsnn_layer *l = make(97, 61, &init, di);
        CU_ASSERT_EQUAL(dsnn_sparse_check(l, &err), DSNN_OK);
        CU_ASSERT_EQUAL(dsnn_sparse_nnz(l), (size_t)nearbyint(dens[di] * 97 * 61));
        dsnn_layer_free(l);
        init.mask = DSNN_SPARSE_MASK_PRECISE_PER_OUTPUT;
        l = make(97, 61, &init, di);
        CU_ASSERT_EQUAL(dsnn_sparse_check(l, &err), DSNN_OK);
        struct dsnn_sparse_csr c;
        dsnn_sparse_get_csr(l, &c);
        int bad = 0;
        for (int r = 0; r < 61; r++)
            bad += c.row_ptr[r + 1] - c.row_ptr[r] != (int64_t)nearbyint(dens[di] * 97);
        CU_ASSERT_EQUAL(bad, 0);
        dsnn_layer_free(l);
        init.mask = DSNN_SPARSE_MASK_APPROXIMATE;
        l = make(300, 200, &init, di);
        CU_ASSERT_EQUAL(dsnn_sparse_check(l, &err), DSNN_OK);
        double expect = dens[di] * 60000, sd = sqrt(expect * (1 - dens[di])) + 1;
        CU_ASSERT(fabs((double)dsnn_sparse_nnz(l) - expect) < 6 * sd);
        dsnn_layer_free(l);
    }
    /* uniformity of PRECISE: each cell of a 10 x 10 layer at density 0.3 over many seeds */
    init.mask = DSNN_SPARSE_MASK_PRECISE;
    init.density = 0.3;
    int hits[100] = {0};
    for (int s = 0; s < 400; s++) {
        struct dsnn_layer *l = make(10, 10, &init, 1000 + s);
        struct dsnn_sparse_csr c;
        dsnn_sparse_get_csr(l, &c);
        for (int r = 0; r < 10; r++)
            for (int64_t k = c.row_ptr[r]; k < c.row_ptr[r + 1]; k++)
                hits[r * 10 + c.col[k]]++;
        dsnn_layer_free(l);
    }
    int bad = 0;
    for (int i = 0; i < 100; i++)
        bad += abs(hits[i] - 120) > 45; /* mean 120, sd ~9.2 */
    CU_ASSERT_EQUAL(bad, 0);
}

static void test_big_layer_init(void)
{
    /* 100000 x 100000 at ER epsilon 20: 4e6 connections, no dense mask */
    struct dsnn_sparse_init init = dsnn_sparse_init_default();
    init.epsilon = 20;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    struct dsnn_layer *l = make(100000, 100000, &init, 3);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double s = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    CU_ASSERT_EQUAL(dsnn_sparse_nnz(l), 4000000u);
    CU_ASSERT(fabs(dsnn_sparse_density(l) - 4e-4) < 1e-12);
    struct dsnn_error err = {0};
    CU_ASSERT_EQUAL(dsnn_sparse_check(l, &err), DSNN_OK);
    fprintf(stderr, " [100000x100000 eps=20 init: %.2f s] ", s);
    dsnn_layer_free(l);
}

static void test_densities(void)
{
    struct dsnn_error err = {0};
    CU_ASSERT(fabs(dsnn_sparse_er_density(784, 1000, 20) - 20.0 * 1784 / 784000) < 1e-15);
    CU_ASSERT_EQUAL(dsnn_sparse_er_density(1000, 10, 20), 1.0);
    int ni[] = {784, 1000, 1000, 1000}, no[] = {1000, 1000, 1000, 10};
    double d[4], eps;
    CU_ASSERT_EQUAL(dsnn_sparse_erk_densities(4, ni, no, NULL, 0.1, d, &eps, &err), DSNN_OK);
    double tot = 0, act = 0;
    for (int i = 0; i < 4; i++) {
        tot += (double)ni[i] * no[i];
        act += d[i] * ni[i] * no[i];
        CU_ASSERT(d[i] <= 1.0);
    }
    CU_ASSERT(fabs(act / tot - 0.1) < 1e-9);
    CU_ASSERT_EQUAL(d[3], 1.0); /* capped */
    CU_ASSERT(fabs(d[1] - eps * 2000.0 / 1e6) < 1e-12);
    /* forced dense layer and an impossible target */
    bool dense[4] = {true, false, false, false};
    CU_ASSERT_EQUAL(dsnn_sparse_erk_densities(4, ni, no, dense, 0.3, d, NULL, &err), DSNN_OK);
    CU_ASSERT_EQUAL(d[0], 1.0);
    CU_ASSERT_NOT_EQUAL(dsnn_sparse_erk_densities(4, ni, no, dense, 0.1, d, NULL, &err), DSNN_OK);
    /* on layers */
    struct dsnn_layer *ls[3] = {
        dsnn_linear_new("a", 784, 300, true, &err),
        dsnn_sparse_linear_new("b", 300, 300, true, NULL, &err),
        dsnn_sparse_linear_new("c", 300, 10, true, NULL, &err),
    };
    CU_ASSERT_EQUAL(dsnn_sparse_erk_apply(ls, 3, 0.8, &err), DSNN_OK);
    double db = dsnn_sparse_get_init(ls[1])->density, dc = dsnn_sparse_get_init(ls[2])->density;
    CU_ASSERT(fabs((784.0 * 300 + db * 90000 + dc * 3000) / (784.0 * 300 + 90000 + 3000) - 0.8) <
              1e-9);
    for (int i = 0; i < 3; i++)
        dsnn_layer_free(ls[i]);
}

/* Score growth picks the best inactive connections, ties by lowest position. */
struct tile_ctx {
    const float *s;
    int n_in;
    int calls;
};
static enum dsnn_status tile_score(void *user, struct dsnn_layer *l, int r0, int r1, float *out,
                                   struct dsnn_error *err)
{
    (void)l, (void)err;
    struct tile_ctx *c = user;
    memcpy(out, c->s + (size_t)r0 * c->n_in, sizeof(float) * (size_t)(r1 - r0) * c->n_in);
    c->calls++;
    return DSNN_OK;
}

/* ---- random rounds against a shadow copy ---- */

struct shadow {
    int n_in, n_out;
    uint8_t *on;
    float *val, *grad, *s0, *s1;
};

static void snap(struct dsnn_layer *l, struct shadow *sh)
{
    struct dsnn_sparse_csr c;
    dsnn_sparse_get_csr(l, &c);
    struct dsnn_param_block *w = dsnn_sparse_weight(l);
    size_t n = (size_t)c.n_in * c.n_out;
    memset(sh->on, 0, n);
    for (int r = 0; r < c.n_out; r++)
        for (int64_t k = c.row_ptr[r]; k < c.row_ptr[r + 1]; k++) {
            size_t p = (size_t)r * c.n_in + c.col[k];
            sh->on[p] = 1;
            sh->val[p] = w->value[k];
            sh->grad[p] = w->grad[k];
            sh->s0[p] = w->state[0][k];
            sh->s1[p] = w->state[1][k];
        }
}

static void test_random_rounds(void)
{
    struct dsnn_error err = {0};
    const int n_in = 37, n_out = 23;
    const size_t N = (size_t)n_in * n_out;
    struct dsnn_sparse_init init = dsnn_sparse_init_default();
    init.density = 0.2;
    struct dsnn_layer *l = make(n_in, n_out, &init, 42);
    struct dsnn_param_block *w = dsnn_sparse_weight(l);
    dsnn_param_block_state(w, 0);
    dsnn_param_block_state(w, 1);
    struct shadow a = {n_in, n_out, malloc(N), malloc(N * 4), malloc(N * 4), malloc(N * 4),
                       malloc(N * 4)};
    struct shadow b = {n_in, n_out, malloc(N), malloc(N * 4), malloc(N * 4), malloc(N * 4),
                       malloc(N * 4)};
    float *score = malloc(N * sizeof *score), *dense_score = malloc(N * sizeof *dense_score);
    uint8_t *mask = malloc(N);
    int32_t *rows = malloc(N * sizeof *rows), *cols = malloc(N * sizeof *cols);
    struct dsnn_rng rng, topo;
    dsnn_rng_seed(&rng, 7, 1);
    dsnn_rng_seed(&topo, 7, DSNN_RNG_STREAM_TOPOLOGY);
    int failures = 0;
    const int rounds = 3000;
    bool last_was_prune = false;
    struct dsnn_sparse_update_stats prev = {0, 0};
    for (int round = 0; round < rounds && failures < 5; round++) {
        /* fresh random values, grads and state everywhere (distinct per connection) */
        w = dsnn_sparse_weight(l);
        for (size_t k = 0; k < w->n; k++) {
            w->value[k] = (float)dsnn_rng_normal(&rng);
            if (dsnn_rng_below(&rng, 20) == 0)
                w->value[k] = 0.0f;
            w->grad[k] = (float)dsnn_rng_uniform(&rng) + 1.0f;
            w->state[0][k] = (float)dsnn_rng_uniform(&rng) + 1.0f;
            w->state[1][k] = (float)dsnn_rng_uniform(&rng) + 1.0f;
        }
        snap(l, &a);
        size_t nnz0 = dsnn_sparse_nnz(l);
        const int failures_before = failures;
        int op = (int)dsnn_rng_below(&rng, 8);
        size_t count = nnz0 ? (size_t)dsnn_rng_below(&rng, nnz0 / 2 + 1) : 0;
        size_t inactive = N - nnz0;
        size_t gcount = (size_t)dsnn_rng_below(&rng, inactive / 2 + 1);
        enum dsnn_sparse_grow_init gi = (enum dsnn_sparse_grow_init)dsnn_rng_below(&rng, 3);
        dsnn_sparse_set_grow_init(l, gi, 0.5);
        size_t expect_pruned = 0, expect_grown = 0;
        enum dsnn_status st = DSNN_OK;
        switch (op) {
        case 0:
            st = dsnn_sparse_prune_magnitude(l, count, &err);
            expect_pruned = count;
            break;
        case 1: {
            size_t r = 0, npos = 0;
            for (size_t k = 0; k < nnz0; k++)
                npos += !(w->value[k] < 0);
            double f = dsnn_rng_uniform(&rng);
            st = dsnn_sparse_prune_signed(l, f, &r, &err);
            expect_pruned = (size_t)nearbyint(f * npos) + (size_t)nearbyint(f * (nnz0 - npos));
            failures += r != expect_pruned;
            break;
        }
        case 2:
            for (size_t k = 0; k < nnz0; k++)
                score[k] = (float)dsnn_rng_below(&rng, 5); /* many ties */
            st = dsnn_sparse_prune_score(l, score, count, &err);
            expect_pruned = count;
            break;
        case 3:
            for (size_t k = 0; k < nnz0; k++)
                mask[k] = dsnn_rng_below(&rng, 3) == 0;
            for (size_t k = 0; k < nnz0; k++)
                expect_pruned += mask[k];
            st = dsnn_sparse_prune_mask(l, mask, &err);
            break;
        case 4:
            st = dsnn_sparse_grow_random(l, gcount, &topo, &err);
            expect_grown = gcount;
            break;
        case 5: {
            for (size_t p = 0; p < N; p++)
                dense_score[p] = (float)dsnn_rng_below(&rng, 7);
            struct tile_ctx cx = {dense_score, n_in, 0};
            st = dsnn_sparse_grow_score(l, gcount, tile_score, &cx, &topo, &err);
            expect_grown = gcount;
            break;
        }
        case 6: {
            size_t m = 0;
            for (size_t p = 0; p < N && m < gcount; p++)
                if (!a.on[p] && dsnn_rng_below(&rng, 2)) {
                    rows[m] = (int32_t)(p / n_in);
                    cols[m] = (int32_t)(p % n_in);
                    m++;
                }
            st = dsnn_sparse_grow_at(l, rows, cols, m, &topo, &err);
            expect_grown = m;
            break;
        }
        default: {
            size_t target = (size_t)dsnn_rng_below(&rng, N + 1);
            st = dsnn_sparse_set_nnz(l, target, &topo, &err);
            if (target < nnz0)
                expect_pruned = nnz0 - target;
            else
                expect_grown = target - nnz0;
            break;
        }
        }
        if (st != DSNN_OK) {
            fprintf(stderr, "round %d op %d: %s\n", round, op, err.msg);
            failures++;
            continue;
        }
        if (dsnn_sparse_check(l, &err) != DSNN_OK) {
            fprintf(stderr, "round %d op %d: %s\n", round, op, err.msg);
            failures++;
            continue;
        }
        w = dsnn_sparse_weight(l);
        failures += dsnn_sparse_nnz(l) != nnz0 - expect_pruned + expect_grown;
        failures += w->n != dsnn_sparse_nnz(l);
        snap(l, &b);
        size_t pruned = 0, grown = 0;
        float max_removed = -1, min_kept = INFINITY;
        for (size_t p = 0; p < N; p++) {
            if (a.on[p] && !b.on[p]) {
                pruned++;
                max_removed = fmaxf(max_removed, fabsf(a.val[p]));
            } else if (!a.on[p] && b.on[p]) {
                grown++;
                failures += b.grad[p] != 0 || b.s0[p] != 0 || b.s1[p] != 0;
                if (gi == DSNN_SPARSE_GROW_ZERO)
                    failures += b.val[p] != 0;
                else
                    failures += !isfinite(b.val[p]);
            } else if (a.on[p] && b.on[p]) {
                min_kept = fminf(min_kept, fabsf(a.val[p]));
                failures += a.val[p] != b.val[p] || a.grad[p] != b.grad[p] ||
                            a.s0[p] != b.s0[p] || a.s1[p] != b.s1[p];
            }
        }
        failures += pruned != expect_pruned || grown != expect_grown;
        if (op == 0 || (op == 7 && expect_pruned))
            failures += pruned && max_removed > min_kept;
        /* counters: a prune after a grow starts a new update; prunes and grows accumulate */
        struct dsnn_sparse_update_stats us = dsnn_sparse_last_update(l);
        const bool is_prune = op <= 3 || (op == 7 && expect_pruned);
        if (is_prune) {
            size_t base = last_was_prune ? prev.pruned : 0;
            failures += us.pruned != base + pruned || us.grown != 0;
        } else {
            size_t base = last_was_prune ? 0 : prev.grown;
            failures += us.grown != base + grown ||
                        us.pruned != (last_was_prune ? prev.pruned : prev.pruned);
        }
        last_was_prune = is_prune;
        prev = us;
        if (failures && failures_before != failures)
            fprintf(stderr, "round %d op %d: failures %d (pruned %zu/%zu grown %zu/%zu)\n", round,
                    op, failures, pruned, expect_pruned, grown, expect_grown);
    }
    CU_ASSERT_EQUAL(failures, 0);
    free(a.on), free(a.val), free(a.grad), free(a.s0), free(a.s1);
    free(b.on), free(b.val), free(b.grad), free(b.s0), free(b.s1);
    free(score), free(dense_score), free(mask), free(rows), free(cols);
    dsnn_layer_free(l);
}

static void test_grow_score(void)
{
    struct dsnn_error err = {0};
    struct dsnn_sparse_init init = dsnn_sparse_init_default();
    init.density = 0.1;
    const int n_in = 3000, n_out = 700; /* several tiles */
    struct dsnn_layer *l = make(n_in, n_out, &init, 5);
    float *s = malloc(sizeof(float) * n_in * n_out);
    struct dsnn_rng rng;
    dsnn_rng_seed(&rng, 5, 5);
    for (int i = 0; i < n_in * n_out; i++)
        s[i] = (float)dsnn_rng_below(&rng, 1000);
    s[5] = NAN;
    uint8_t *was = malloc((size_t)n_in * n_out);
    for (int r = 0; r < n_out; r++)
        for (int c = 0; c < n_in; c++)
            was[(size_t)r * n_in + c] = dsnn_sparse_find(l, r, c) >= 0;
    struct tile_ctx cx = {s, n_in, 0};
    size_t nnz0 = dsnn_sparse_nnz(l);
    CU_ASSERT_EQUAL(dsnn_sparse_grow_score(l, 5000, tile_score, &cx, NULL, &err), DSNN_OK);
    CU_ASSERT(cx.calls > 1);
    CU_ASSERT_EQUAL(dsnn_sparse_nnz(l), nnz0 + 5000);
    float min_g = INFINITY, max_left = -INFINITY;
    size_t first_left_at_min = (size_t)-1, last_grown_at_min = 0;
    for (size_t p = 0; p < (size_t)n_in * n_out; p++) {
        if (was[p] || p == 5)
            continue;
        bool on = dsnn_sparse_find(l, (int)(p / n_in), (int)(p % n_in)) >= 0;
        if (on)
            min_g = fminf(min_g, s[p]);
        else
            max_left = fmaxf(max_left, s[p]);
    }
    CU_ASSERT(min_g >= max_left);
    for (size_t p = 0; p < (size_t)n_in * n_out; p++) {
        if (was[p] || s[p] != min_g)
            continue;
        bool on = dsnn_sparse_find(l, (int)(p / n_in), (int)(p % n_in)) >= 0;
        if (on)
            last_grown_at_min = p;
        else if (first_left_at_min == (size_t)-1)
            first_left_at_min = p;
    }
    if (first_left_at_min != (size_t)-1)
        CU_ASSERT(last_grown_at_min < first_left_at_min);
    CU_ASSERT_EQUAL(dsnn_sparse_check(l, &err), DSNN_OK);
    free(s);
    free(was);
    dsnn_layer_free(l);
}

/* Same seeds, same edits: same topology; the update counters follow their documented rule. */
static void test_determinism_and_stats(void)
{
    struct dsnn_error err = {0};
    struct dsnn_sparse_init init = dsnn_sparse_init_default();
    init.density = 0.05;
    init.grow_init = DSNN_SPARSE_GROW_LIKE_INIT;
    struct dsnn_layer *l[2];
    for (int i = 0; i < 2; i++) {
        l[i] = make(500, 400, &init, 77);
        struct dsnn_rng topo;
        dsnn_rng_seed(&topo, 77, DSNN_RNG_STREAM_TOPOLOGY);
        for (int round = 0; round < 20; round++) {
            size_t r;
            dsnn_sparse_prune_signed(l[i], 0.3, &r, &err);
            dsnn_sparse_grow_random(l[i], r, &topo, &err);
        }
    }
    struct dsnn_sparse_csr a, b;
    dsnn_sparse_get_csr(l[0], &a);
    dsnn_sparse_get_csr(l[1], &b);
    CU_ASSERT_EQUAL_FATAL(a.nnz, b.nnz);
    CU_ASSERT_EQUAL(a.nnz, (size_t)(0.05 * 500 * 400));
    CU_ASSERT(memcmp(a.col, b.col, a.nnz * sizeof *a.col) == 0);
    CU_ASSERT(memcmp(a.row_ptr, b.row_ptr, 401 * sizeof *a.row_ptr) == 0);
    CU_ASSERT(memcmp(a.value, b.value, a.nnz * sizeof *a.value) == 0);
    struct dsnn_sparse_update_stats s = dsnn_sparse_last_update(l[0]);
    CU_ASSERT(s.pruned > 0 && s.pruned == s.grown);
    dsnn_sparse_prune_magnitude(l[0], 10, &err);
    dsnn_sparse_prune_magnitude(l[0], 5, &err);
    s = dsnn_sparse_last_update(l[0]);
    CU_ASSERT(s.pruned == 15 && s.grown == 0);
    struct dsnn_rng topo;
    dsnn_rng_seed(&topo, 1, 1);
    dsnn_sparse_grow_random(l[0], 4, &topo, &err);
    dsnn_sparse_grow_random(l[0], 11, &topo, &err);
    s = dsnn_sparse_last_update(l[0]);
    CU_ASSERT(s.pruned == 15 && s.grown == 15);
    /* errors */
    CU_ASSERT_EQUAL(dsnn_sparse_prune_magnitude(l[0], a.nnz + 1, &err), DSNN_ERR_INVALID);
    CU_ASSERT_EQUAL(dsnn_sparse_grow_random(l[0], 500 * 400, &topo, &err), DSNN_ERR_INVALID);
    int32_t rr[2] = {1, 1}, cc[2] = {2, 2};
    if (dsnn_sparse_find(l[0], 1, 2) < 0)
        CU_ASSERT_EQUAL(dsnn_sparse_grow_at(l[0], rr, cc, 2, &topo, &err), DSNN_ERR_INVALID);
    CU_ASSERT_EQUAL(dsnn_sparse_check(l[0], &err), DSNN_OK);
    /* grow to full and prune to empty */
    CU_ASSERT_EQUAL(dsnn_sparse_set_nnz(l[0], 500 * 400, &topo, &err), DSNN_OK);
    CU_ASSERT_EQUAL(dsnn_sparse_density(l[0]), 1.0);
    CU_ASSERT_EQUAL(dsnn_sparse_set_nnz(l[0], 0, &topo, &err), DSNN_OK);
    CU_ASSERT_EQUAL(dsnn_sparse_nnz(l[0]), 0u);
    CU_ASSERT_EQUAL(dsnn_sparse_check(l[0], &err), DSNN_OK);
    float x[3 * 500] = {0}, y[3 * 400];
    CU_ASSERT_EQUAL(l[0]->ops->forward(l[0], x, y, 3, true, NULL), DSNN_OK);
    dsnn_layer_free(l[0]);
    dsnn_layer_free(l[1]);
}

/* Random growth is uniform over the inactive positions in both regimes (rejection sampling when
 * at most half the matrix is taken, a partial Fisher-Yates shuffle of the enumerated inactive
 * positions otherwise): over many draws, every inactive position is chosen with probability
 * count / inactive. The layer is 12 x 10 at density 0.25; each of 3000 trials grows `count` of
 * the 90 inactive positions. Checked: no duplicates, and every position's frequency within 5
 * standard errors of count / 90 (a shuffle drawing from the wrong range favours positions early
 * or late in the enumeration by far more). */
static void test_grow_random_uniform(void)
{
    const int counts[2] = {20, 50}; /* 30 + 20 <= 120 / 2: rejection; 30 + 50 > 60: enumeration */
    for (int ci = 0; ci < 2; ci++) {
        const int count = counts[ci], trials = 3000;
        struct dsnn_sparse_init init = dsnn_sparse_init_default();
        init.density = 0.25;
        init.mask = DSNN_SPARSE_MASK_PRECISE;
        struct dsnn_layer *l = make(12, 10, &init, 3);
        CU_ASSERT_EQUAL_FATAL(dsnn_sparse_nnz(l), 30u);
        int inactive[120], n = 0;
        for (int r = 0; r < 10; r++)
            for (int c = 0; c < 12; c++)
                if (dsnn_sparse_find(l, r, c) < 0)
                    inactive[n++] = r * 12 + c;
        CU_ASSERT_EQUAL_FATAL(n, 90);
        FILE *f = tmpfile();
        struct dsnn_error err = {0};
        CU_ASSERT_EQUAL_FATAL(l->ops->save(l, f, &err), DSNN_OK);
        int freq[120] = {0};
        struct dsnn_rng rng;
        dsnn_rng_seed(&rng, 77, DSNN_RNG_STREAM_TOPOLOGY);
        for (int t = 0; t < trials; t++) {
            rewind(f);
            CU_ASSERT_EQUAL_FATAL(l->ops->load(l, f, &err), DSNN_OK);
            CU_ASSERT_EQUAL_FATAL(dsnn_sparse_grow_random(l, (size_t)count, &rng, &err), DSNN_OK);
            CU_ASSERT_EQUAL(dsnn_sparse_nnz(l), (size_t)(30 + count));
            if (t < 20)
                CU_ASSERT_EQUAL(dsnn_sparse_check(l, &err), DSNN_OK);
            for (int i = 0; i < n; i++)
                freq[inactive[i]] += dsnn_sparse_find(l, inactive[i] / 12, inactive[i] % 12) >= 0;
        }
        const double p = count / 90.0, se = sqrt(trials * p * (1 - p));
        int bad = 0;
        for (int i = 0; i < n; i++)
            bad += fabs(freq[inactive[i]] - trials * p) > 5 * se;
        if (bad)
            fprintf(stderr, "\n  grow %d of 90: %d positions off their frequency %.0f +- %.0f\n",
                    count, bad, trials * p, se);
        CU_ASSERT_EQUAL(bad, 0);
        fclose(f);
        dsnn_layer_free(l);
    }
}

/* dsnn_sparse_grow_at refuses a list with a connection listed twice, wherever the two copies
 * sort (first, middle, last), and a connection already active, and changes nothing then. */
static void test_grow_at_duplicates(void)
{
    struct dsnn_sparse_init init = dsnn_sparse_init_default();
    init.density = 0.3;
    struct dsnn_layer *l = make(9, 7, &init, 5);
    int32_t in_r[3], in_c[3], n = 0, act_r = -1, act_c = -1;
    for (int r = 0; r < 7 && n < 3; r++)
        for (int c = 0; c < 9 && n < 3; c++) {
            if (dsnn_sparse_find(l, r, c) < 0) {
                in_r[n] = r;
                in_c[n++] = c;
            } else if (act_r < 0) {
                act_r = r;
                act_c = c;
            }
        }
    CU_ASSERT_EQUAL_FATAL(n, 3); /* in_* ascending: a < b < c */
    CU_ASSERT_FATAL(act_r >= 0);
    const size_t nnz = dsnn_sparse_nnz(l);
    struct dsnn_rng rng;
    dsnn_rng_seed(&rng, 1, DSNN_RNG_STREAM_TOPOLOGY);
    struct dsnn_error err = {0};
    const int lists[4][3] = {{0, 0, 2}, {2, 1, 1}, {2, 0, 2}, {1, 0, 1}}; /* indices into in_* */
    for (int t = 0; t < 4; t++) {
        int32_t rr[3], cc[3];
        for (int i = 0; i < 3; i++) {
            rr[i] = in_r[lists[t][i]];
            cc[i] = in_c[lists[t][i]];
        }
        CU_ASSERT_EQUAL(dsnn_sparse_grow_at(l, rr, cc, 3, &rng, &err), DSNN_ERR_INVALID);
        CU_ASSERT_EQUAL(dsnn_sparse_nnz(l), nnz);
    }
    int32_t rr2[2] = {in_r[0], act_r}, cc2[2] = {in_c[0], act_c}; /* one already active */
    CU_ASSERT_EQUAL(dsnn_sparse_grow_at(l, rr2, cc2, 2, &rng, &err), DSNN_ERR_INVALID);
    CU_ASSERT_EQUAL(dsnn_sparse_nnz(l), nnz);
    CU_ASSERT_EQUAL(dsnn_sparse_grow_at(l, in_r, in_c, 3, &rng, &err), DSNN_OK);
    CU_ASSERT_EQUAL(dsnn_sparse_nnz(l), nnz + 3);
    CU_ASSERT_EQUAL(dsnn_sparse_check(l, &err), DSNN_OK);
    dsnn_layer_free(l);
}

/* The one signed magnitude rule and its two stated roundings: 5 positive weights at 0.3 give
 * round(1.5) = 2 (half to even) with NEAREST (set) and int(1.5) = 1 with NUPIC (dsnn-*); the
 * negatives with NUPIC prune n_neg - int(0.7 n_neg) (ceil-like: 3 of 7, where NEAREST prunes 2);
 * both select the weights closest to zero, ties lowest index, NaN first; the layer call and the
 * rule function agree. */
static void test_signed_rule_rounding(void)
{
    CU_ASSERT_EQUAL(dsnn_signed_prune_count(5, 0.3, false, DSNN_PRUNE_ROUND_NEAREST), 2);
    CU_ASSERT_EQUAL(dsnn_signed_prune_count(5, 0.3, false, DSNN_PRUNE_ROUND_NUPIC), 1);
    CU_ASSERT_EQUAL(dsnn_signed_prune_count(7, 0.3, true, DSNN_PRUNE_ROUND_NEAREST), 2);
    CU_ASSERT_EQUAL(dsnn_signed_prune_count(7, 0.3, true, DSNN_PRUNE_ROUND_NUPIC), 3);
    CU_ASSERT_EQUAL(dsnn_signed_prune_count(4, 0.625, false, DSNN_PRUNE_ROUND_NEAREST), 2);
    CU_ASSERT_EQUAL(dsnn_signed_prune_count(0, 0.5, true, DSNN_PRUNE_ROUND_NUPIC), 0);
    CU_ASSERT_EQUAL(dsnn_signed_prune_count(9, 1.0, true, DSNN_PRUNE_ROUND_NUPIC), 9);
    /* 5 positives, 2 negatives: NaN counts as positive and goes first; ties: lowest index */
    const float w[] = {0.5f, -0.2f, 0.1f, NAN, 0.1f, -0.9f, 0.3f};
    uint8_t rm[7] = {0};
    size_t n_rm = 99;
    struct dsnn_error err = {0};
    CU_ASSERT_EQUAL(dsnn_signed_magnitude_mark(w, 7, 0.3, DSNN_PRUNE_ROUND_NEAREST, rm, &n_rm, &err),
                    DSNN_OK);
    /* positives: round(1.5) = 2 (NaN, 0.1 at 2); negatives: round(0.6) = 1 (-0.2) */
    const uint8_t want_nearest[7] = {0, 1, 1, 1, 0, 0, 0};
    CU_ASSERT_EQUAL(memcmp(rm, want_nearest, 7), 0);
    CU_ASSERT_EQUAL(n_rm, 3);
    memset(rm, 0, sizeof rm);
    CU_ASSERT_EQUAL(dsnn_signed_magnitude_mark(w, 7, 0.5, DSNN_PRUNE_ROUND_NEAREST, rm, &n_rm, &err),
                    DSNN_OK);
    const uint8_t want_half[7] = {0, 1, 1, 1, 0, 0, 0}; /* round(2.5) = 2, round(1.0) = 1 */
    CU_ASSERT_EQUAL(memcmp(rm, want_half, 7), 0);
    memset(rm, 0, sizeof rm);
    CU_ASSERT_EQUAL(dsnn_signed_magnitude_mark(w, 7, 0.3, DSNN_PRUNE_ROUND_NUPIC, rm, &n_rm, &err),
                    DSNN_OK);
    const uint8_t want_nupic[7] = {0, 1, 0, 1, 0, 0, 0}; /* int(1.5) = 1; 2 - int(1.4) = 1 */
    CU_ASSERT_EQUAL(memcmp(rm, want_nupic, 7), 0);
    CU_ASSERT_EQUAL(dsnn_signed_magnitude_mark(w, 7, 1.5, DSNN_PRUNE_ROUND_NUPIC, rm, &n_rm, &err),
                    DSNN_ERR_INVALID);
    /* the magnitude keep rule of the dsnn-* models is the same rule with nupic's rounding */
    uint8_t keep[7];
    size_t n_keep = 0;
    const float w5[] = {0.4f, 0.1f, 0.3f, 0.2f, 0.5f};
    CU_ASSERT_EQUAL(dsnn_rule_magnitude_keep(w5, 5, 0.3, keep, &n_keep, &err), DSNN_OK);
    CU_ASSERT_EQUAL(n_keep, 4); /* 1 pruned: int(0.3 * 5) */
    CU_ASSERT_EQUAL(keep[1], 0);
    uint8_t rm5[5] = {0};
    CU_ASSERT_EQUAL(dsnn_signed_magnitude_mark(w5, 5, 0.3, DSNN_PRUNE_ROUND_NEAREST, rm5, &n_rm, &err),
                    DSNN_OK);
    CU_ASSERT_EQUAL(n_rm, 2); /* set prunes 2: 0.1 and 0.2 */
    CU_ASSERT(rm5[1] && rm5[3] && !rm5[0] && !rm5[2] && !rm5[4]);
}

static CU_TestInfo tests[] = {
    {"initial masks", test_masks},
    {"signed magnitude rule: nearest vs nupic rounding", test_signed_rule_rounding},
    {"100000x100000 initialisation", test_big_layer_init},
    {"ER and ERK densities", test_densities},
    {"thousands of random prune / grow rounds", test_random_rounds},
    {"growth by score tiles", test_grow_score},
    {"determinism and update counters", test_determinism_and_stats},
    {"random growth is uniform in both regimes", test_grow_random_uniform},
    {"grow_at refuses duplicates wherever they sort", test_grow_at_duplicates},
    CU_TEST_INFO_NULL,
};

DSNN_TEST_MAIN("sparse topology", tests)
