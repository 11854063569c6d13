/* test_dynsparse.c - the dynamic sparse models of nupic.research (SET, DSNNWeightedMag,
 * DSNNMixedHeb): their prune / regrow rules (sdk/src/rules/dynsparse.c), coactivation counting
 * (sdk/src/rules/coactivation.c) and the model plugins set, dsnn-weighted-mag and dsnn-mixed-heb.
 *
 *   - nupic's HebbianPruningTest (nupic.research, frameworks/dynamic_sparse tests): a 5 x 5 weight
 *     matrix with 12 connections and fixed coactivations; magnitude 0.5 prunes exactly the 6
 *     weights closest to zero per sign and regrows 6, Hebbian 0.25 prunes the 3 least coactive,
 *     both prune only their intersection, 1 keeps nothing and regrows 12, 0 keeps all; the same
 *     cases for the weighted magnitude (w * coactivation), computed by hand below;
 *   - nupic's int() truncation of the counts, the prune schedule (interval, early stop);
 *   - the rules applied to a real sparse layer: exact counts, regrowth only among connections
 *     inactive before the round, Hebbian growth picks the highest coactivations;
 *   - coactivations (active and dense storage, moving average, realignment after topology
 *     edits, checkpoint) against a naive count of binary outer products;
 *   - invariants over many rounds: nnz constant, CSR valid;
 *   - the plugins (dlopen'ed from the build tree): nnz constant over epochs, and training
 *     continued from a checkpoint saved mid-run is bit-identical to uninterrupted training. */
#include <dlfcn.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dsnn/dsnn.h>

#include "harness.h"

/* ---- nupic's 5 x 5 fixture ---- */

/* weight [out][in]; the 12 non-zeros are the active connections. */
static const float W5[5][5] = {{19, 2, -12, 0, 0},
                               {0, 0, 0, 0, 0},
                               {-10, 25, -8, 0, 0},
                               {21, -11, 7, 0, 0},
                               {-14, 18, -6, 0, 0}};
/* nupic's corr is [in][out] and used transposed: C5[o][i] = corr[i][o]. */
static const float CORR5[5][5] = {{0.3201f, 0.8318f, 0.3382f, 0.9734f, 0.0985f},
                                  {0.0401f, 0.8620f, 0.0845f, 0.3778f, 0.3996f},
                                  {0.4954f, 0.0092f, 0.6713f, 0.8594f, 0.9487f},
                                  {0.8101f, 0.0922f, 0.2033f, 0.7185f, 0.4588f},
                                  {0.3897f, 0.6865f, 0.5072f, 0.9749f, 0.0597f}};

struct fixture {
    size_t n; /* 12 */
    int row[25], col[25];
    float w[25], c[25]; /* active connections, row-major (CSR) order */
};

static struct fixture fixture5(void)
{
    struct fixture f = {0};
    for (int o = 0; o < 5; o++)
        for (int i = 0; i < 5; i++)
            if (W5[o][i] != 0) {
                f.row[f.n] = o;
                f.col[f.n] = i;
                f.w[f.n] = W5[o][i];
                f.c[f.n] = CORR5[i][o];
                f.n++;
            }
    return f;
}

struct rc {
    int r, c;
};

/* keep[] must be 0 exactly at the listed connections and 1 elsewhere. */
static void expect_pruned(const struct fixture *f, const uint8_t *keep, const struct rc *pruned,
                          size_t n_pruned)
{
    int wrong = 0;
    for (size_t k = 0; k < f->n; k++) {
        bool listed = false;
        for (size_t j = 0; j < n_pruned; j++)
            listed |= pruned[j].r == f->row[k] && pruned[j].c == f->col[k];
        if ((keep[k] != 0) == listed) {
            fprintf(stderr, "\n    connection (%d, %d): keep %d, expected %d", f->row[k], f->col[k],
                    keep[k], !listed);
            wrong++;
        }
    }
    CU_ASSERT_EQUAL(wrong, 0);
}

/* nupic: lowest 25 % correlations, lowest 50 % magnitudes per sign, and their intersection. */
static const struct rc LOWEST_25_HEBB[] = {{4, 0}, {2, 1}, {0, 1}};
static const struct rc LOWEST_50_MAG[] = {{2, 0}, {2, 2}, {4, 2}, {0, 1}, {3, 2}, {4, 1}};
static const struct rc MAG_HEBB_INTERSECTION[] = {{0, 1}};
/* w * c: positives 6.08 (0,0), 0.080 (0,1), 2.11 (2,1), 20.4 (3,0), 6.02 (3,2), 7.19 (4,1);
 * negatives -5.94 (0,2), -3.38 (2,0), -5.37 (2,2), -4.16 (3,1), -1.38 (4,0), -5.69 (4,2).
 * 0.5: 3 positives and 3 negatives closest to zero; 0.25: int(1.5) = 1 positive and
 * 6 - int(4.5) = 2 negatives. */
static const struct rc LOWEST_50_WMAG[] = {{0, 1}, {2, 1}, {3, 2}, {4, 0}, {2, 0}, {3, 1}};
static const struct rc LOWEST_25_WMAG[] = {{0, 1}, {4, 0}, {2, 0}};

#define N_INACTIVE5 13

static void mixed(double tau, double zeta, const struct rc *pruned, size_t n_pruned,
                  size_t expect_add)
{
    struct fixture f = fixture5();
    uint8_t keep[25];
    size_t n_keep = 99;
    struct dsnn_error err = {0};
    CU_ASSERT_EQUAL_FATAL(dsnn_rule_mixed_heb_keep(f.w, f.c, f.n, tau, zeta, keep, &n_keep, &err),
                          DSNN_OK);
    expect_pruned(&f, keep, pruned, n_pruned);
    CU_ASSERT_EQUAL(n_keep, f.n - n_pruned);
    CU_ASSERT_EQUAL(dsnn_rule_grow_count(f.n, n_keep, N_INACTIVE5), expect_add);
}

static void weighted(double zeta, const struct rc *pruned, size_t n_pruned, size_t expect_add)
{
    struct fixture f = fixture5();
    uint8_t keep[25];
    size_t n_keep = 99;
    struct dsnn_error err = {0};
    CU_ASSERT_EQUAL_FATAL(dsnn_rule_weighted_mag_keep(f.w, f.c, f.n, zeta, keep, &n_keep, &err),
                          DSNN_OK);
    expect_pruned(&f, keep, pruned, n_pruned);
    CU_ASSERT_EQUAL(n_keep, f.n - n_pruned);
    CU_ASSERT_EQUAL(dsnn_rule_grow_count(f.n, n_keep, N_INACTIVE5), expect_add);
}

static void test_nupic_partial_magnitude(void)
{
    mixed(0, 0.5, LOWEST_50_MAG, 6, 6);
    mixed(DSNN_PERC_UNSET, 0.5, LOWEST_50_MAG, 6, 6); /* None == 0 */
}

static void test_nupic_partial_hebbian(void)
{
    mixed(0.25, 0, LOWEST_25_HEBB, 3, 3);
    mixed(0.25, DSNN_PERC_UNSET, LOWEST_25_HEBB, 3, 3);
}

static void test_nupic_partial_magnitude_and_hebbian(void)
{
    mixed(0.25, 0.5, MAG_HEBB_INTERSECTION, 1, 1);
}

static void test_nupic_full(void)
{
    struct fixture f = fixture5();
    struct rc all[12];
    for (size_t k = 0; k < f.n; k++)
        all[k] = (struct rc){f.row[k], f.col[k]};
    mixed(1, 0, all, 12, 12); /* full Hebbian */
    mixed(0, 1, all, 12, 12); /* full magnitude */
    mixed(1, 1, all, 12, 12); /* both */
    mixed(0, 0, NULL, 0, 0);  /* nothing on: keep all, add 0 */
    mixed(DSNN_PERC_UNSET, DSNN_PERC_UNSET, NULL, 0, 0);
    weighted(1, all, 12, 12);
    weighted(0, NULL, 0, 0);
    weighted(DSNN_PERC_UNSET, NULL, 0, 0);
}

static void test_weighted_magnitude(void)
{
    weighted(0.5, LOWEST_50_WMAG, 6, 6);
    weighted(0.25, LOWEST_25_WMAG, 3, 3);
    /* plain magnitude rule on the same weights, as a cross-check of the building block */
    struct fixture f = fixture5();
    uint8_t keep[25];
    size_t n_keep;
    struct dsnn_error err = {0};
    CU_ASSERT_EQUAL(dsnn_rule_magnitude_keep(f.w, f.n, 0.5, keep, &n_keep, &err), DSNN_OK);
    expect_pruned(&f, keep, LOWEST_50_MAG, 6);
    CU_ASSERT_EQUAL(dsnn_rule_hebbian_keep(f.c, f.n, 0.25, keep, &n_keep, &err), DSNN_OK);
    expect_pruned(&f, keep, LOWEST_25_HEBB, 3);
    CU_ASSERT_EQUAL(dsnn_rule_mixed_heb_keep(f.w, f.c, f.n, 1.5, 0.5, keep, NULL, &err),
                    DSNN_ERR_INVALID);
}

/* nupic's counts: int(zeta * n_pos) positives, n_neg - int((1 - zeta) n_neg) negatives, with
 * Python's float products (0.29 * 100 = 28.999999999999996 -> 28; (1 - 0.29) * 100 = 71.0). */
static void test_counts_truncate_like_nupic(void)
{
    enum { N = 200 };
    float w[N];
    for (int k = 0; k < N; k++) /* 100 positives, 100 negatives, distinct magnitudes */
        w[k] = (k % 2 ? -1.0f : 1.0f) * (float)(k + 1);
    uint8_t keep[N];
    struct dsnn_error err = {0};
    size_t n_keep;
    CU_ASSERT_EQUAL_FATAL(dsnn_rule_magnitude_keep(w, N, 0.29, keep, &n_keep, &err), DSNN_OK);
    int pos_pruned = 0, neg_pruned = 0;
    for (int k = 0; k < N; k++) {
        pos_pruned += !keep[k] && w[k] > 0;
        neg_pruned += !keep[k] && w[k] < 0;
    }
    CU_ASSERT_EQUAL(pos_pruned, 28);
    CU_ASSERT_EQUAL(neg_pruned, 29);
    /* the pruned ones are those closest to zero on each side */
    for (int k = 0; k < N; k++)
        if (!keep[k])
            CU_ASSERT(fabsf(w[k]) <= (w[k] > 0 ? 55.0f : 58.0f));
    float c[N];
    for (int k = 0; k < N; k++)
        c[k] = (float)((k * 37) % N); /* a permutation: distinct */
    CU_ASSERT_EQUAL(dsnn_rule_hebbian_keep(c, N, 0.29, keep, &n_keep, &err), DSNN_OK);
    CU_ASSERT_EQUAL(n_keep, (size_t)(N - 57)); /* int(0.29 * 200) = int(57.99999999999999) */
    for (int k = 0; k < N; k++)
        CU_ASSERT_EQUAL(keep[k], c[k] >= 57.0f);
    /* ties: exactly the count, lowest index first */
    float z[10] = {0};
    CU_ASSERT_EQUAL(dsnn_rule_hebbian_keep(z, 10, 0.3, keep, &n_keep, &err), DSNN_OK);
    CU_ASSERT_EQUAL(n_keep, 7);
    CU_ASSERT(!keep[0] && !keep[1] && !keep[2] && keep[3]);
}

static void test_schedule(void)
{
    struct dsnn_config_file *cf = NULL;
    struct dsnn_error err = {0};
    struct dsnn_prune_schedule s;
    CU_ASSERT_EQUAL_FATAL(dsnn_config_file_parse("model = { lr_milestones = [2, 4]; "
                                                 "pruning_early_stop = 2; };",
                                                 "t.cfg", &cf, &err),
                          DSNN_OK);
    const struct dsnn_cfg *g = dsnn_cfg_group(dsnn_config_file_root(cf), "model");
    CU_ASSERT_EQUAL_FATAL(dsnn_prune_schedule_read(g, &s, &err), DSNN_OK);
    /* milestones 2 and 4 (0-based epochs whose LR is decayed): rounds after epochs 0 .. 3 */
    bool expect[6] = {true, true, true, true, false, false};
    for (int e = 0; e < 6; e++) {
        CU_ASSERT_EQUAL(dsnn_prune_schedule_active(&s, e), expect[e]);
        CU_ASSERT_EQUAL(dsnn_prune_schedule_stopped(&s, e), !expect[e]);
    }
    s.early_stop = 1;
    CU_ASSERT(dsnn_prune_schedule_active(&s, 1) && !dsnn_prune_schedule_active(&s, 2));
    s.early_stop = 0;
    s.interval = 3;
    for (int e = 0; e < 9; e++)
        CU_ASSERT_EQUAL(dsnn_prune_schedule_active(&s, e), e % 3 == 2);
    dsnn_config_file_free(cf);
    /* early stop without milestones is refused, naming the key */
    CU_ASSERT_EQUAL_FATAL(
        dsnn_config_file_parse("model = { pruning_early_stop = 1; };", "t.cfg", &cf, &err),
        DSNN_OK);
    g = dsnn_cfg_group(dsnn_config_file_root(cf), "model");
    CU_ASSERT_EQUAL(dsnn_prune_schedule_read(g, &s, &err), DSNN_ERR_CONFIG);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "pruning_early_stop"));
    dsnn_config_file_free(cf);
}

/* ---- the rules on a real sparse layer ---- */

/* A 5 x 5 sparse layer holding the fixture (grow_init zero). */
static struct dsnn_layer *layer5(void)
{
    struct dsnn_error err = {0};
    struct dsnn_sparse_init init = dsnn_sparse_init_default();
    init.density = 1.0;
    struct dsnn_layer *l = dsnn_sparse_linear_new("fc", 5, 5, false, &init, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(l);
    struct dsnn_rng rng;
    dsnn_rng_seed(&rng, 1, DSNN_RNG_STREAM_INIT);
    CU_ASSERT_EQUAL_FATAL(l->ops->init(l, &rng, &err), DSNN_OK);
    uint8_t remove[25];
    for (int k = 0; k < 25; k++)
        remove[k] = W5[k / 5][k % 5] == 0;
    CU_ASSERT_EQUAL_FATAL(dsnn_sparse_prune_mask(l, remove, &err), DSNN_OK);
    struct dsnn_sparse_csr c;
    dsnn_sparse_get_csr(l, &c);
    CU_ASSERT_EQUAL_FATAL(c.nnz, 12);
    for (int r = 0; r < 5; r++)
        for (int64_t k = c.row_ptr[r]; k < c.row_ptr[r + 1]; k++)
            c.value[k] = W5[r][c.col[k]];
    return l;
}

static enum dsnn_status corr_score(void *user, struct dsnn_layer *l, int row0, int row1, float *out,
                                   struct dsnn_error *err)
{
    (void)user, (void)l, (void)err;
    for (int r = row0; r < row1; r++)
        for (int i = 0; i < 5; i++)
            out[(r - row0) * 5 + i] = CORR5[i][r];
    return DSNN_OK;
}

/* Applies the mixed rule (tau, zeta) to the 5 x 5 layer and checks the result. */
static void apply5(double tau, double zeta, bool hebbian_grow, const struct rc *expect_grown,
                   size_t n_expect_grown)
{
    struct dsnn_error err = {0};
    struct dsnn_layer *l = layer5();
    struct fixture f = fixture5();
    uint8_t keep[25];
    size_t n_keep;
    CU_ASSERT_EQUAL_FATAL(dsnn_rule_mixed_heb_keep(f.w, f.c, f.n, tau, zeta, keep, &n_keep, &err),
                          DSNN_OK);
    size_t grow = dsnn_rule_grow_count(f.n, n_keep, N_INACTIVE5);
    struct dsnn_rng rng;
    dsnn_rng_seed(&rng, 7, DSNN_RNG_STREAM_TOPOLOGY);
    CU_ASSERT_EQUAL_FATAL(
        dsnn_dynsparse_apply(l, keep, grow, hebbian_grow ? corr_score : NULL, NULL, &rng, &err),
        DSNN_OK);
    CU_ASSERT_EQUAL(dsnn_sparse_check(l, &err), DSNN_OK);
    CU_ASSERT_EQUAL(dsnn_sparse_nnz(l), 12);
    /* kept: present with their value; pruned: absent; grown: inactive before, value 0 */
    for (size_t k = 0; k < f.n; k++) {
        int64_t j = dsnn_sparse_find(l, f.row[k], f.col[k]);
        CU_ASSERT_EQUAL(j >= 0, keep[k] != 0);
        if (j >= 0)
            CU_ASSERT_EQUAL(dsnn_sparse_weight(l)->value[j], f.w[k]);
    }
    struct dsnn_sparse_csr c;
    dsnn_sparse_get_csr(l, &c);
    size_t grown = 0;
    for (int r = 0; r < 5; r++)
        for (int64_t k = c.row_ptr[r]; k < c.row_ptr[r + 1]; k++)
            if (W5[r][c.col[k]] == 0) {
                grown++;
                CU_ASSERT_EQUAL(c.value[k], 0.0f);
                bool listed = expect_grown == NULL;
                for (size_t j = 0; j < n_expect_grown; j++)
                    listed |= expect_grown[j].r == r && expect_grown[j].c == c.col[k];
                CU_ASSERT(listed);
            }
    CU_ASSERT_EQUAL(grown, grow);
    dsnn_layer_free(l);
}

static void test_apply_to_layer(void)
{
    /* inactive pairs by coactivation: (3,4) .9749, (1,1) .8620, (1,0) .8318, (0,3) .8101,
     * (3,3) .7185, (1,4) .6865, ... */
    static const struct rc top1[] = {{3, 4}};
    static const struct rc top3[] = {{3, 4}, {1, 1}, {1, 0}};
    static const struct rc top6[] = {{3, 4}, {1, 1}, {1, 0}, {0, 3}, {3, 3}, {1, 4}};
    apply5(0.25, 0.5, true, top1, 1);
    apply5(0.25, 0, true, top3, 3);
    apply5(0, 0.5, true, top6, 6);
    apply5(0, 0.5, false, NULL, 0); /* random: 6 among the 13 inactive */
    apply5(1, 1, false, NULL, 0);   /* all 12 regrown among the 13 inactive */
    apply5(0, 0, false, NULL, 0);   /* nothing */
}

/* nnz constant and CSR valid over many rounds of SET and of the mixed rule on a real layer. */
static void test_many_rounds(void)
{
    struct dsnn_error err = {0};
    struct dsnn_sparse_init init = dsnn_sparse_init_default();
    init.density = 0.05;
    for (int scheme = 0; scheme < 2; scheme++) {
        struct dsnn_layer *l = dsnn_sparse_linear_new("fc", 300, 200, true, &init, &err);
        CU_ASSERT_PTR_NOT_NULL_FATAL(l);
        struct dsnn_rng rng, topo;
        dsnn_rng_seed(&rng, 3, DSNN_RNG_STREAM_INIT);
        dsnn_rng_seed(&topo, 3, DSNN_RNG_STREAM_TOPOLOGY);
        CU_ASSERT_EQUAL_FATAL(l->ops->init(l, &rng, &err), DSNN_OK);
        const size_t nnz0 = dsnn_sparse_nnz(l);
        CU_ASSERT_EQUAL(nnz0, 3000);
        int bad = 0;
        for (int round = 0; round < 60; round++) {
            struct dsnn_sparse_csr c;
            dsnn_sparse_get_csr(l, &c);
            for (size_t k = 0; k < c.nnz; k++) /* "training" */
                c.value[k] += (float)(0.05 * dsnn_rng_normal(&rng));
            if (scheme == 0) {
                size_t removed = 0;
                bad += dsnn_sparse_prune_signed(l, 0.3, &removed, &err) != DSNN_OK;
                bad += labs((long)removed - 900) > 1; /* rounded per sign */
                bad += dsnn_sparse_grow_random(l, removed, &topo, &err) != DSNN_OK;
            } else {
                float *co = malloc(c.nnz * sizeof *co);
                uint8_t *keep = malloc(c.nnz);
                for (size_t k = 0; k < c.nnz; k++)
                    co[k] = (float)dsnn_rng_below(&rng, 50);
                size_t n_keep;
                bad += dsnn_rule_mixed_heb_keep(c.value, co, c.nnz, 0.3, 0.3, keep, &n_keep,
                                                &err) != DSNN_OK;
                size_t grow = dsnn_rule_grow_count(nnz0, n_keep, 60000 - c.nnz);
                bad += dsnn_dynsparse_apply(l, keep, grow, NULL, NULL, &topo, &err) != DSNN_OK;
                free(co);
                free(keep);
            }
            bad += dsnn_sparse_nnz(l) != nnz0;
            bad += dsnn_sparse_check(l, &err) != DSNN_OK;
        }
        CU_ASSERT_EQUAL(bad, 0);
        dsnn_layer_free(l);
    }
}

/* ---- coactivations ---- */

enum { CIN = 37, CHID = 23, COUT = 5, CBATCH = 70 };

/* input 37 -> fc1 (sparse 0.3) -> relu -> output (sparse 0.5, no activation after it). */
static struct dsnn_net *coact_net(void)
{
    struct dsnn_error err = {0};
    struct dsnn_net *net = dsnn_net_new((struct dsnn_shape){CIN, 1, 1}, COUT, &err);
    struct dsnn_sparse_init init = dsnn_sparse_init_default();
    init.density = 0.3;
    CU_ASSERT_EQUAL_FATAL(
        dsnn_net_add(net, dsnn_sparse_linear_new("fc1", CIN, CHID, true, &init, &err), &err),
        DSNN_OK);
    CU_ASSERT_EQUAL_FATAL(
        dsnn_net_add(net, dsnn_relu_new("relu1", (struct dsnn_shape){CHID, 1, 1}, &err), &err),
        DSNN_OK);
    init.density = 0.5;
    CU_ASSERT_EQUAL_FATAL(
        dsnn_net_add(net, dsnn_sparse_linear_new("output", CHID, COUT, true, &init, &err), &err),
        DSNN_OK);
    struct dsnn_rng rng;
    dsnn_rng_seed(&rng, 11, DSNN_RNG_STREAM_INIT);
    CU_ASSERT_EQUAL_FATAL(dsnn_net_init(net, &rng, CBATCH, &err), DSNN_OK);
    return net;
}

/* naive[o][i] += #samples with y[o] > 0 and x[i] > 0 for the tracked layer li (0 or 2). */
static void naive_count(struct dsnn_net *net, const float *x, int batch, size_t li, double *naive)
{
    const float *in = li == 0 ? x : dsnn_net_activation(net, li - 1);
    const float *out = dsnn_net_activation(net, li == 0 ? 1 : 2);
    int n_in = li == 0 ? CIN : CHID, n_out = li == 0 ? CHID : COUT;
    for (int s = 0; s < batch; s++)
        for (int o = 0; o < n_out; o++)
            for (int i = 0; i < n_in; i++)
                naive[o * n_in + i] += out[s * n_out + o] > 0 && in[s * n_in + i] > 0;
}

static void test_coactivations(void)
{
    struct dsnn_error err = {0};
    for (int dense = 0; dense < 2; dense++) {
        struct dsnn_net *net = coact_net();
        const size_t idx[2] = {0, 2};
        struct dsnn_coact *c = dsnn_coact_new(net, idx, 2, dense, 1.0, &err);
        CU_ASSERT_PTR_NOT_NULL_FATAL(c);
        static double naive0[CHID * CIN], naive2[COUT * CHID];
        memset(naive0, 0, sizeof naive0);
        memset(naive2, 0, sizeof naive2);
        struct dsnn_rng r;
        dsnn_rng_seed(&r, 5, 1);
        static float x[CBATCH * CIN];
        CU_ASSERT_EQUAL_FATAL(dsnn_coact_begin_epoch(c, &err), DSNN_OK);
        const int batches[3] = {CBATCH, 64, 13}; /* two words, one full word, a partial one */
        for (int b = 0; b < 3; b++) {
            for (int k = 0; k < batches[b] * CIN; k++)
                x[k] = (float)dsnn_rng_normal(&r);
            CU_ASSERT_PTR_NOT_NULL_FATAL(dsnn_net_forward(net, x, batches[b], true, &err));
            CU_ASSERT_EQUAL(dsnn_coact_accumulate(c, x, batches[b], &err), DSNN_OK);
            naive_count(net, x, batches[b], 0, naive0);
            naive_count(net, x, batches[b], 2, naive2);
        }
        CU_ASSERT_EQUAL(dsnn_coact_samples(c), CBATCH + 64 + 13);
        CU_ASSERT_EQUAL_FATAL(dsnn_coact_end_epoch(c, &err), DSNN_OK);
        for (size_t t = 0; t < 2; t++) {
            struct dsnn_layer *l = dsnn_net_layer(net, idx[t]);
            const double *naive = t == 0 ? naive0 : naive2;
            struct dsnn_sparse_csr s;
            dsnn_sparse_get_csr(l, &s);
            const float *v = dsnn_coact_values(c, t);
            CU_ASSERT_PTR_NOT_NULL_FATAL(v);
            int bad = 0;
            double total = 0;
            for (int o = 0; o < s.n_out; o++)
                for (int64_t k = s.row_ptr[o]; k < s.row_ptr[o + 1]; k++) {
                    bad += v[k] != (float)naive[o * s.n_in + s.col[k]];
                    total += v[k];
                }
            CU_ASSERT_EQUAL(bad, 0);
            CU_ASSERT(total > 0);
            const float *d = dsnn_coact_dense(c, t);
            CU_ASSERT_EQUAL(d != NULL, dense != 0);
            if (d) {
                bad = 0;
                for (int p = 0; p < s.n_out * s.n_in; p++)
                    bad += d[p] != (float)naive[p];
                CU_ASSERT_EQUAL(bad, 0);
            }
        }
        /* a topology edit invalidates the aligned values (not the dense ones) */
        CU_ASSERT_EQUAL(dsnn_sparse_prune_magnitude(dsnn_net_layer(net, 0), 5, &err), DSNN_OK);
        CU_ASSERT_PTR_NULL(dsnn_coact_values(c, 0));
        CU_ASSERT_PTR_NOT_NULL(dsnn_coact_values(c, 1));
        CU_ASSERT_EQUAL(dsnn_coact_dense(c, 0) != NULL, dense != 0);
        dsnn_coact_free(c);
        dsnn_net_free(net);
    }
    /* bad arguments */
    struct dsnn_net *net = coact_net();
    const size_t relu_idx = 1;
    CU_ASSERT_PTR_NULL(dsnn_coact_new(net, &relu_idx, 1, false, 1.0, &err));
    CU_ASSERT_PTR_NULL(dsnn_coact_new(net, &relu_idx, 0, false, 0.0, &err));
    dsnn_net_free(net);
}

/* Moving average over two epochs with a topology edit in between, in both storages, and its
 * checkpoint. */
static void test_coactivation_average(void)
{
    struct dsnn_error err = {0};
    for (int dense = 0; dense < 2; dense++) {
        struct dsnn_net *net = coact_net();
        const size_t idx[1] = {0};
        struct dsnn_coact *c = dsnn_coact_new(net, idx, 1, dense, 0.25, &err);
        CU_ASSERT_PTR_NOT_NULL_FATAL(c);
        struct dsnn_layer *l = dsnn_net_layer(net, 0);
        struct dsnn_rng r, topo;
        dsnn_rng_seed(&r, 9, 1);
        dsnn_rng_seed(&topo, 9, DSNN_RNG_STREAM_TOPOLOGY);
        static float x[CBATCH * CIN];
        static double n1[CHID * CIN], n2[CHID * CIN];
        memset(n1, 0, sizeof n1);
        memset(n2, 0, sizeof n2);
        uint64_t *before = NULL;
        size_t n_before = 0;
        for (int epoch = 0; epoch < 2; epoch++) {
            CU_ASSERT_EQUAL_FATAL(dsnn_coact_begin_epoch(c, &err), DSNN_OK);
            for (int b = 0; b < 2; b++) {
                for (int k = 0; k < CBATCH * CIN; k++)
                    x[k] = (float)dsnn_rng_normal(&r);
                CU_ASSERT_PTR_NOT_NULL_FATAL(dsnn_net_forward(net, x, CBATCH, true, &err));
                CU_ASSERT_EQUAL(dsnn_coact_accumulate(c, x, CBATCH, &err), DSNN_OK);
                naive_count(net, x, CBATCH, 0, epoch ? n2 : n1);
            }
            CU_ASSERT_EQUAL_FATAL(dsnn_coact_end_epoch(c, &err), DSNN_OK);
            if (epoch == 0) { /* replace 40 connections; checkpoint round trip of the history */
                struct dsnn_sparse_csr s0;
                dsnn_sparse_get_csr(l, &s0);
                n_before = s0.nnz;
                before = malloc(n_before * sizeof *before);
                for (int o = 0; o < CHID; o++)
                    for (int64_t k = s0.row_ptr[o]; k < s0.row_ptr[o + 1]; k++)
                        before[k] = (uint64_t)o * CIN + (uint64_t)s0.col[k];
                CU_ASSERT_EQUAL(dsnn_sparse_prune_magnitude(l, 40, &err), DSNN_OK);
                CU_ASSERT_EQUAL(dsnn_sparse_grow_random(l, 40, &topo, &err), DSNN_OK);
                FILE *f = tmpfile();
                CU_ASSERT_EQUAL_FATAL(dsnn_coact_save(c, f, &err), DSNN_OK);
                struct dsnn_coact *c2 = dsnn_coact_new(net, idx, 1, dense, 0.25, &err);
                rewind(f);
                CU_ASSERT_EQUAL_FATAL(dsnn_coact_load(c2, f, &err), DSNN_OK);
                fclose(f);
                dsnn_coact_free(c);
                c = c2;
                struct dsnn_coact *c3 = dsnn_coact_new(net, idx, 1, !dense, 0.25, &err);
                f = tmpfile();
                CU_ASSERT_EQUAL(dsnn_coact_save(c, f, &err), DSNN_OK);
                rewind(f);
                CU_ASSERT_EQUAL(dsnn_coact_load(c3, f, &err), DSNN_ERR_FORMAT);
                fclose(f);
                dsnn_coact_free(c3);
            }
        }
        /* connections that survived the edit (and, dense, every pair) have both epochs; the
         * grown ones (active storage) have only the second */
        struct dsnn_sparse_csr s;
        dsnn_sparse_get_csr(l, &s);
        const float *v = dsnn_coact_values(c, 0);
        CU_ASSERT_PTR_NOT_NULL_FATAL(v);
        int bad = 0, fresh = 0;
        for (int o = 0; o < CHID; o++)
            for (int64_t k = s.row_ptr[o]; k < s.row_ptr[o + 1]; k++) {
                int p = o * CIN + s.col[k];
                bool survivor = false;
                for (size_t j = 0; j < n_before; j++)
                    survivor |= before[j] == (uint64_t)p;
                double expect = survivor || dense ? 0.25 * n2[p] + 0.75 * n1[p] : n2[p];
                bad += fabs(v[k] - expect) > 1e-4;
                fresh += !survivor;
            }
        CU_ASSERT_EQUAL(bad, 0);
        CU_ASSERT(fresh > 0 && fresh <= 40); /* a pruned connection may be redrawn */
        free(before);
        dsnn_coact_free(c);
        dsnn_net_free(net);
    }
}

/* nupic's mlp_coactivations_test network 3 -> 4 -> 5 -> 2: fc1 -> relu1 -> fc2 -> relu2 -> output
 * (sparse at density 1: every connection active), weights set by hand so that the hand
 * calculation below is easy to follow. */
static struct dsnn_net *coact_net_3452(void)
{
    struct dsnn_error err = {0};
    struct dsnn_net *net = dsnn_net_new((struct dsnn_shape){3, 1, 1}, 2, &err);
    struct dsnn_sparse_init init = dsnn_sparse_init_default();
    init.density = 1.0;
    const int dims[4] = {3, 4, 5, 2};
    for (int k = 0; k < 3; k++) {
        char name[16];
        snprintf(name, sizeof name, k == 2 ? "output" : "fc%d", k + 1);
        CU_ASSERT_EQUAL_FATAL(dsnn_net_add(net, dsnn_sparse_linear_new(name, dims[k], dims[k + 1],
                                                                       false, &init, &err),
                                           &err),
                              DSNN_OK);
        if (k < 2) {
            snprintf(name, sizeof name, "relu%d", k + 1);
            CU_ASSERT_EQUAL_FATAL(
                dsnn_net_add(net, dsnn_relu_new(name, (struct dsnn_shape){dims[k + 1], 1, 1}, &err),
                             &err),
                DSNN_OK);
        }
    }
    struct dsnn_rng rng;
    dsnn_rng_seed(&rng, 3, DSNN_RNG_STREAM_INIT);
    CU_ASSERT_EQUAL_FATAL(dsnn_net_init(net, &rng, 128, &err), DSNN_OK);
    /* weights w[o][i] = +1 or -1 in a fixed pattern ((o + i) % 3 == 0 negative) */
    for (int li = 0; li < 5; li += 2) {
        struct dsnn_sparse_csr c;
        CU_ASSERT_FATAL(dsnn_sparse_get_csr(dsnn_net_layer(net, (size_t)li), &c));
        CU_ASSERT_EQUAL_FATAL(c.nnz, (size_t)c.n_in * (size_t)c.n_out);
        for (int o = 0; o < c.n_out; o++)
            for (int64_t k = c.row_ptr[o]; k < c.row_ptr[o + 1]; k++)
                c.value[k] = (o + c.col[k]) % 3 == 0 ? -1.0f : 1.0f;
    }
    return net;
}

/* Reference coactivations of net layer li (0, 2, 4) for a forward of x: binary counts or real
 * sums, added to ref[o][i]. */
static void ref_coact(struct dsnn_net *net, const float *x, int batch, int li, bool real,
                      double *ref)
{
    const float *in = li == 0 ? x : dsnn_net_activation(net, (size_t)li - 1);
    const float *out = dsnn_net_activation(net, li == 4 ? 4 : (size_t)li + 1);
    const int n_in = li == 0 ? 3 : li == 2 ? 4 : 5, n_out = li == 0 ? 4 : li == 2 ? 5 : 2;
    for (int s = 0; s < batch; s++)
        for (int o = 0; o < n_out; o++)
            for (int i = 0; i < n_in; i++) {
                float y = out[s * n_out + o], v = in[s * n_in + i];
                ref[o * n_in + i] += real ? (double)y * v : (y > 0 && v > 0);
            }
}

/* Compares tracked layer t (net layer li) with ref (CSR order and, dense, every pair). */
static int coact_mismatches(struct dsnn_coact *c, struct dsnn_net *net, size_t t, int li,
                            const double *ref, double tol)
{
    struct dsnn_sparse_csr s;
    dsnn_sparse_get_csr(dsnn_net_layer(net, (size_t)li), &s);
    const float *v = dsnn_coact_values(c, t);
    if (!v)
        return -1;
    int bad = 0;
    for (int o = 0; o < s.n_out; o++)
        for (int64_t k = s.row_ptr[o]; k < s.row_ptr[o + 1]; k++)
            bad += fabs(v[k] - ref[o * s.n_in + s.col[k]]) > tol;
    const float *d = dsnn_coact_dense(c, t);
    for (int p = 0; d && p < s.n_out * s.n_in; p++)
        bad += fabs(d[p] - ref[p]) > tol;
    return bad;
}

/* nupic's mlp_coactivations_test: after one sample, then after 100 samples, the coactivations
 * of the three layers of 3 -> 4 -> 5 -> 2; the sample of the first check is worked out by hand.
 * Binary (nupic) and real-valued, both storages. */
static void test_coactivations_3452(void)
{
    struct dsnn_error err = {0};
    for (int real = 0; real < 2; real++)
        for (int dense = 0; dense < 2; dense++) {
            struct dsnn_net *net = coact_net_3452();
            const size_t idx[3] = {0, 2, 4};
            struct dsnn_coact *c = dsnn_coact_new(net, idx, 3, dense, 1.0, &err);
            CU_ASSERT_PTR_NOT_NULL_FATAL(c);
            const struct dsnn_coact_options o = {.real_valued = real, .update_interval = 1};
            CU_ASSERT_EQUAL_FATAL(dsnn_coact_set_options(c, &o, &err), DSNN_OK);
            /* one sample x = (1, 2, 0):
             *   fc1 row o: sum_i w[o][i] x[i], w = -1 where (o + i) % 3 == 0:
             *     o0: -1 + 2 + 0 = 1; o1: 1 + 2 + 0 = 3; o2: 1 - 2 + 0 = -1; o3: -1 + 2 + 0 = 1
             *   relu1 = (1, 3, 0, 1): inputs 0, 1 active (x2 = 0), outputs 0, 1, 3 active, so
             *   binary counts of fc1: rows 0, 1, 3 have 1 at columns 0, 1; row 2 and column 2 0 */
            const float x1[3] = {1, 2, 0};
            CU_ASSERT_EQUAL_FATAL(dsnn_coact_begin_epoch(c, &err), DSNN_OK);
            CU_ASSERT_PTR_NOT_NULL_FATAL(dsnn_net_forward(net, x1, 1, true, &err));
            const float *h1 = dsnn_net_activation(net, 1);
            CU_ASSERT(h1[0] == 1 && h1[1] == 3 && h1[2] == 0 && h1[3] == 1);
            CU_ASSERT_EQUAL(dsnn_coact_accumulate(c, x1, 1, &err), DSNN_OK);
            CU_ASSERT_EQUAL_FATAL(dsnn_coact_end_epoch(c, &err), DSNN_OK);
            const double hand_bin[12] = {1, 1, 0, 1, 1, 0, 0, 0, 0, 1, 1, 0};
            /* real: y[o] x[i] = (1, 2, 0), (3, 6, 0), 0, (1, 2, 0) */
            const double hand_real[12] = {1, 2, 0, 3, 6, 0, 0, 0, 0, 1, 2, 0};
            CU_ASSERT_EQUAL(coact_mismatches(c, net, 0, 0, real ? hand_real : hand_bin, 1e-6), 0);
            double r2[20] = {0}, r4[10] = {0};
            ref_coact(net, x1, 1, 2, real, r2);
            ref_coact(net, x1, 1, 4, real, r4);
            CU_ASSERT_EQUAL(coact_mismatches(c, net, 1, 2, r2, 1e-5), 0);
            CU_ASSERT_EQUAL(coact_mismatches(c, net, 2, 4, r4, 1e-5), 0);
            /* 100 samples (batches of 64 and 36): the sums of their counts */
            double ref[3][20];
            memset(ref, 0, sizeof ref);
            struct dsnn_rng r;
            dsnn_rng_seed(&r, 17, 1);
            static float x[64 * 3];
            CU_ASSERT_EQUAL_FATAL(dsnn_coact_begin_epoch(c, &err), DSNN_OK);
            for (int b = 0; b < 2; b++) {
                const int n = b ? 36 : 64;
                for (int k = 0; k < n * 3; k++)
                    x[k] = (float)dsnn_rng_normal(&r);
                CU_ASSERT_PTR_NOT_NULL_FATAL(dsnn_net_forward(net, x, n, true, &err));
                CU_ASSERT_EQUAL(dsnn_coact_accumulate(c, x, n, &err), DSNN_OK);
                for (int t = 0; t < 3; t++)
                    ref_coact(net, x, n, 2 * t, real, ref[t]);
            }
            CU_ASSERT_EQUAL(dsnn_coact_samples(c), 100);
            CU_ASSERT_EQUAL_FATAL(dsnn_coact_end_epoch(c, &err), DSNN_OK);
            double total = 0;
            for (int t = 0; t < 3; t++) {
                CU_ASSERT_EQUAL(coact_mismatches(c, net, (size_t)t, 2 * t, ref[t], 1e-3), 0);
                for (int p = 0; p < 20; p++)
                    total += ref[t][p];
            }
            CU_ASSERT(total > 100); /* the samples did coactivate */
            dsnn_coact_free(c);
            dsnn_net_free(net);
        }
}

/* update_interval (nupic's update_nsteps): batches 0, 3, 6, 9 of 10 are counted; the clock is
 * part of the checkpoint. keep_across_epochs (reset_coactivations = false): the counts of two
 * epochs add up, a connection grown in between starts from 0; bad option combinations. */
static void test_coactivation_options(void)
{
    struct dsnn_error err = {0};
    for (int dense = 0; dense < 2; dense++) {
        struct dsnn_net *net = coact_net();
        const size_t idx[1] = {0};
        struct dsnn_coact *c = dsnn_coact_new(net, idx, 1, dense, 1.0, &err);
        const struct dsnn_coact_options every3 = {.update_interval = 3};
        CU_ASSERT_EQUAL_FATAL(dsnn_coact_set_options(c, &every3, &err), DSNN_OK);
        static double ref[CHID * CIN];
        memset(ref, 0, sizeof ref);
        struct dsnn_rng r;
        dsnn_rng_seed(&r, 23, 1);
        static float x[CBATCH * CIN];
        CU_ASSERT_EQUAL_FATAL(dsnn_coact_begin_epoch(c, &err), DSNN_OK);
        for (int b = 0; b < 10; b++) {
            if (b == 5) { /* a checkpoint in the middle: the clock goes on where it was */
                CU_ASSERT_EQUAL_FATAL(dsnn_coact_end_epoch(c, &err), DSNN_OK);
                FILE *f = tmpfile();
                CU_ASSERT_EQUAL_FATAL(dsnn_coact_save(c, f, &err), DSNN_OK);
                struct dsnn_coact *c2 = dsnn_coact_new(net, idx, 1, dense, 1.0, &err);
                CU_ASSERT_EQUAL_FATAL(dsnn_coact_set_options(c2, &every3, &err), DSNN_OK);
                rewind(f);
                CU_ASSERT_EQUAL_FATAL(dsnn_coact_load(c2, f, &err), DSNN_OK);
                struct dsnn_coact *c3 = dsnn_coact_new(net, idx, 1, dense, 1.0, &err);
                rewind(f);
                CU_ASSERT_EQUAL(dsnn_coact_load(c3, f, &err), DSNN_ERR_FORMAT); /* interval 1 */
                fclose(f);
                dsnn_coact_free(c3);
                dsnn_coact_free(c);
                c = c2;
                CU_ASSERT_EQUAL_FATAL(dsnn_coact_begin_epoch(c, &err), DSNN_OK);
                memset(ref, 0, sizeof ref);
            }
            for (int k = 0; k < CBATCH * CIN; k++)
                x[k] = (float)dsnn_rng_normal(&r);
            CU_ASSERT_PTR_NOT_NULL_FATAL(dsnn_net_forward(net, x, CBATCH, true, &err));
            CU_ASSERT_EQUAL(dsnn_coact_accumulate(c, x, CBATCH, &err), DSNN_OK);
            if (b % 3 == 0)
                naive_count(net, x, CBATCH, 0, ref);
        }
        CU_ASSERT_EQUAL(dsnn_coact_samples(c), 2 * CBATCH); /* batches 6 and 9 since the load */
        CU_ASSERT_EQUAL_FATAL(dsnn_coact_end_epoch(c, &err), DSNN_OK);
        struct dsnn_sparse_csr s;
        dsnn_sparse_get_csr(dsnn_net_layer(net, 0), &s);
        const float *v = dsnn_coact_values(c, 0);
        CU_ASSERT_PTR_NOT_NULL_FATAL(v);
        int bad = 0;
        for (int o = 0; o < s.n_out; o++)
            for (int64_t k = s.row_ptr[o]; k < s.row_ptr[o + 1]; k++)
                bad += v[k] != (float)ref[o * s.n_in + s.col[k]];
        CU_ASSERT_EQUAL(bad, 0);
        dsnn_coact_free(c);

        /* kept across epochs, with a topology edit in between */
        c = dsnn_coact_new(net, idx, 1, dense, 1.0, &err);
        const struct dsnn_coact_options keep = {.update_interval = 1, .keep_across_epochs = true};
        CU_ASSERT_EQUAL_FATAL(dsnn_coact_set_options(c, &keep, &err), DSNN_OK);
        CU_ASSERT(dsnn_coact_every_epoch(c));
        static double e1[CHID * CIN], e2[CHID * CIN];
        memset(e1, 0, sizeof e1);
        memset(e2, 0, sizeof e2);
        struct dsnn_layer *l = dsnn_net_layer(net, 0);
        uint64_t before[CHID * CIN];
        size_t n_before = 0;
        struct dsnn_rng topo;
        dsnn_rng_seed(&topo, 4, DSNN_RNG_STREAM_TOPOLOGY);
        for (int epoch = 0; epoch < 2; epoch++) {
            CU_ASSERT_EQUAL_FATAL(dsnn_coact_begin_epoch(c, &err), DSNN_OK);
            for (int k = 0; k < CBATCH * CIN; k++)
                x[k] = (float)dsnn_rng_normal(&r);
            CU_ASSERT_PTR_NOT_NULL_FATAL(dsnn_net_forward(net, x, CBATCH, true, &err));
            CU_ASSERT_EQUAL(dsnn_coact_accumulate(c, x, CBATCH, &err), DSNN_OK);
            naive_count(net, x, CBATCH, 0, epoch ? e2 : e1);
            CU_ASSERT_EQUAL_FATAL(dsnn_coact_end_epoch(c, &err), DSNN_OK);
            if (epoch == 0) {
                dsnn_sparse_get_csr(l, &s);
                n_before = s.nnz;
                for (int o = 0; o < CHID; o++)
                    for (int64_t k = s.row_ptr[o]; k < s.row_ptr[o + 1]; k++)
                        before[k] = (uint64_t)o * CIN + (uint64_t)s.col[k];
                CU_ASSERT_EQUAL(dsnn_sparse_prune_magnitude(l, 30, &err), DSNN_OK);
                CU_ASSERT_EQUAL(dsnn_sparse_grow_random(l, 30, &topo, &err), DSNN_OK);
            }
        }
        dsnn_sparse_get_csr(l, &s);
        v = dsnn_coact_values(c, 0);
        CU_ASSERT_PTR_NOT_NULL_FATAL(v);
        bad = 0;
        int fresh = 0;
        for (int o = 0; o < CHID; o++)
            for (int64_t k = s.row_ptr[o]; k < s.row_ptr[o + 1]; k++) {
                int p = o * CIN + s.col[k];
                bool survivor = false;
                for (size_t j = 0; j < n_before; j++)
                    survivor |= before[j] == (uint64_t)p;
                double expect = survivor || dense ? e1[p] + e2[p] : e2[p];
                bad += fabs(v[k] - expect) > 1e-4;
                fresh += !survivor;
            }
        CU_ASSERT_EQUAL(bad, 0);
        CU_ASSERT(fresh > 0);
        dsnn_coact_free(c);
        /* refused: interval 0; kept counts with a moving average */
        c = dsnn_coact_new(net, idx, 1, dense, 0.5, &err);
        const struct dsnn_coact_options zero = {.update_interval = 0};
        CU_ASSERT_EQUAL(dsnn_coact_set_options(c, &zero, &err), DSNN_ERR_INVALID);
        CU_ASSERT_EQUAL(dsnn_coact_set_options(c, &keep, &err), DSNN_ERR_INVALID);
        dsnn_coact_free(c);
        dsnn_net_free(net);
    }
}

/* nupic's DSLinearBlock: the coactivations of a linear layer count the output of its block,
 * linear -> batch norm (affine) -> ReLU -> dropout, here fc1's; the output layer's input is the
 * block's output too. */
static void test_coactivation_block(void)
{
    struct dsnn_error err = {0};
    const struct dsnn_shape h = {CHID, 1, 1};
    for (int dense = 0; dense < 2; dense++) {
        struct dsnn_net *net = dsnn_net_new((struct dsnn_shape){CIN, 1, 1}, COUT, &err);
        struct dsnn_sparse_init init = dsnn_sparse_init_default();
        init.density = 0.4;
        CU_ASSERT_EQUAL_FATAL(
            dsnn_net_add(net, dsnn_sparse_linear_new("fc1", CIN, CHID, true, &init, &err), &err),
            DSNN_OK);
        CU_ASSERT_EQUAL_FATAL(dsnn_net_add(net, dsnn_batchnorm1d_new("bn1", CHID, true, &err),
                                           &err),
                              DSNN_OK);
        CU_ASSERT_EQUAL_FATAL(dsnn_net_add(net, dsnn_relu_new("relu1", h, &err), &err), DSNN_OK);
        CU_ASSERT_EQUAL_FATAL(dsnn_net_add(net, dsnn_dropout_new("drop1", h, 0.3, &err), &err),
                              DSNN_OK);
        CU_ASSERT_EQUAL_FATAL(
            dsnn_net_add(net, dsnn_sparse_linear_new("output", CHID, COUT, true, &init, &err),
                         &err),
            DSNN_OK);
        struct dsnn_rng rng;
        dsnn_rng_seed(&rng, 5, DSNN_RNG_STREAM_INIT);
        CU_ASSERT_EQUAL_FATAL(dsnn_net_init(net, &rng, CBATCH, &err), DSNN_OK);
        const size_t idx[2] = {0, 4};
        struct dsnn_coact *c = dsnn_coact_new(net, idx, 2, dense, 1.0, &err);
        CU_ASSERT_PTR_NOT_NULL_FATAL(c);
        static float x[CBATCH * CIN];
        static double n0[CHID * CIN], n4[COUT * CHID];
        memset(n0, 0, sizeof n0);
        memset(n4, 0, sizeof n4);
        struct dsnn_rng r;
        dsnn_rng_seed(&r, 6, 1);
        CU_ASSERT_EQUAL_FATAL(dsnn_coact_begin_epoch(c, &err), DSNN_OK);
        long long raw_differs = 0;
        for (int b = 0; b < 3; b++) {
            for (int k = 0; k < CBATCH * CIN; k++)
                x[k] = (float)dsnn_rng_normal(&r);
            CU_ASSERT_PTR_NOT_NULL_FATAL(dsnn_net_forward(net, x, CBATCH, true, &err));
            CU_ASSERT_EQUAL(dsnn_coact_accumulate(c, x, CBATCH, &err), DSNN_OK);
            const float *raw = dsnn_net_activation(net, 0), *blk = dsnn_net_activation(net, 3);
            const float *out = dsnn_net_activation(net, 4);
            for (int s = 0; s < CBATCH; s++)
                for (int o = 0; o < CHID; o++) {
                    raw_differs += (raw[s * CHID + o] > 0) != (blk[s * CHID + o] > 0);
                    for (int i = 0; i < CIN; i++)
                        n0[o * CIN + i] += blk[s * CHID + o] > 0 && x[s * CIN + i] > 0;
                    for (int q = 0; q < COUT; q++)
                        n4[q * CHID + o] += out[s * COUT + q] > 0 && blk[s * CHID + o] > 0;
                }
        }
        CU_ASSERT(raw_differs > 100); /* the raw linear output would count otherwise */
        CU_ASSERT_EQUAL_FATAL(dsnn_coact_end_epoch(c, &err), DSNN_OK);
        for (size_t t = 0; t < 2; t++) {
            struct dsnn_sparse_csr s;
            dsnn_sparse_get_csr(dsnn_net_layer(net, idx[t]), &s);
            const float *v = dsnn_coact_values(c, t);
            CU_ASSERT_PTR_NOT_NULL_FATAL(v);
            const double *ref = t ? n4 : n0;
            int bad = 0;
            for (int o = 0; o < s.n_out; o++)
                for (int64_t k = s.row_ptr[o]; k < s.row_ptr[o + 1]; k++)
                    bad += v[k] != (float)ref[o * s.n_in + s.col[k]];
            CU_ASSERT_EQUAL(bad, 0);
        }
        dsnn_coact_free(c);
        dsnn_net_free(net);
    }
}

/* Per-batch moving average, nupic DSLinear's moving_average_alpha: after every counted batch
 * value = (1 - alpha) value + alpha (the batch's counts), from 0 each epoch or, kept across
 * epochs, from the last value (a connection grown since from 0); with update_nsteps 2, a topology
 * edit and a checkpoint round trip between the epochs; both storages; against a reference in
 * double precision. */
static void test_coactivation_batch_average(void)
{
    struct dsnn_error err = {0};
    const double alpha = 0.3;
    for (int dense = 0; dense < 2; dense++)
        for (int keep = 0; keep < 2; keep++) {
            struct dsnn_net *net = coact_net();
            const size_t idx[1] = {0};
            struct dsnn_coact *c = dsnn_coact_new(net, idx, 1, dense, alpha, &err);
            CU_ASSERT_PTR_NOT_NULL_FATAL(c);
            const struct dsnn_coact_options o = {.update_interval = 2,
                                                 .keep_across_epochs = keep,
                                                 .average = DSNN_COACT_AVERAGE_BATCH};
            CU_ASSERT_EQUAL_FATAL(dsnn_coact_set_options(c, &o, &err), DSNN_OK);
            /* values outlive an epoch only when kept */
            CU_ASSERT_EQUAL(dsnn_coact_every_epoch(c), (bool)keep);
            struct dsnn_layer *l = dsnn_net_layer(net, 0);
            struct dsnn_rng r, topo;
            dsnn_rng_seed(&r, 21, 1);
            dsnn_rng_seed(&topo, 21, DSNN_RNG_STREAM_TOPOLOGY);
            static float x[CBATCH * CIN];
            static double ref[CHID * CIN], cnt[CHID * CIN];
            static bool grown[CHID * CIN];
            memset(ref, 0, sizeof ref);
            memset(grown, 0, sizeof grown);
            int call = 0;
            for (int epoch = 0; epoch < 2; epoch++) {
                CU_ASSERT_EQUAL_FATAL(dsnn_coact_begin_epoch(c, &err), DSNN_OK);
                for (int p = 0; p < CHID * CIN; p++)
                    if (!keep || (grown[p] && !dense))
                        ref[p] = 0;
                for (int b = 0; b < 5; b++, call++) {
                    for (int k = 0; k < CBATCH * CIN; k++)
                        x[k] = (float)dsnn_rng_normal(&r);
                    CU_ASSERT_PTR_NOT_NULL_FATAL(dsnn_net_forward(net, x, CBATCH, true, &err));
                    CU_ASSERT_EQUAL(dsnn_coact_accumulate(c, x, CBATCH, &err), DSNN_OK);
                    if (call % 2)
                        continue; /* update_nsteps 2: calls 0, 2, 4, 6, 8 */
                    memset(cnt, 0, sizeof cnt);
                    naive_count(net, x, CBATCH, 0, cnt);
                    for (int p = 0; p < CHID * CIN; p++)
                        ref[p] = (1 - alpha) * ref[p] + alpha * cnt[p];
                }
                CU_ASSERT_EQUAL_FATAL(dsnn_coact_end_epoch(c, &err), DSNN_OK);
                if (epoch == 1)
                    break;
                /* replace 30 connections, then a checkpoint round trip */
                struct dsnn_sparse_csr s0;
                dsnn_sparse_get_csr(l, &s0);
                bool was[CHID * CIN];
                memset(was, 0, sizeof was);
                for (int q = 0; q < CHID; q++)
                    for (int64_t k = s0.row_ptr[q]; k < s0.row_ptr[q + 1]; k++)
                        was[q * CIN + s0.col[k]] = true;
                CU_ASSERT_EQUAL(dsnn_sparse_prune_magnitude(l, 30, &err), DSNN_OK);
                CU_ASSERT_EQUAL(dsnn_sparse_grow_random(l, 30, &topo, &err), DSNN_OK);
                dsnn_sparse_get_csr(l, &s0);
                for (int q = 0; q < CHID; q++)
                    for (int64_t k = s0.row_ptr[q]; k < s0.row_ptr[q + 1]; k++)
                        grown[q * CIN + s0.col[k]] = !was[q * CIN + s0.col[k]];
                FILE *f = tmpfile();
                CU_ASSERT_EQUAL_FATAL(dsnn_coact_save(c, f, &err), DSNN_OK);
                struct dsnn_coact *c2 = dsnn_coact_new(net, idx, 1, dense, alpha, &err);
                CU_ASSERT_EQUAL_FATAL(dsnn_coact_set_options(c2, &o, &err), DSNN_OK);
                rewind(f);
                CU_ASSERT_EQUAL_FATAL(dsnn_coact_load(c2, f, &err), DSNN_OK);
                /* a tracker averaging per epoch does not take it */
                struct dsnn_coact *c3 = dsnn_coact_new(net, idx, 1, dense, alpha, &err);
                struct dsnn_coact_options o3 = o;
                o3.average = DSNN_COACT_AVERAGE_EPOCH;
                o3.keep_across_epochs = false;
                CU_ASSERT_EQUAL_FATAL(dsnn_coact_set_options(c3, &o3, &err), DSNN_OK);
                rewind(f);
                CU_ASSERT_EQUAL(dsnn_coact_load(c3, f, &err), DSNN_ERR_FORMAT);
                dsnn_coact_free(c3);
                fclose(f);
                dsnn_coact_free(c);
                c = c2;
            }
            struct dsnn_sparse_csr s;
            dsnn_sparse_get_csr(l, &s);
            const float *v = dsnn_coact_values(c, 0);
            CU_ASSERT_PTR_NOT_NULL_FATAL(v);
            int bad = 0, fresh = 0;
            double biggest = 0;
            for (int q = 0; q < CHID; q++)
                for (int64_t k = s.row_ptr[q]; k < s.row_ptr[q + 1]; k++) {
                    int p = q * CIN + s.col[k];
                    bad += fabs(v[k] - ref[p]) > 1e-4 * (1 + ref[p]);
                    fresh += grown[p];
                    biggest = fmax(biggest, ref[p]);
                }
            CU_ASSERT_EQUAL(bad, 0);
            CU_ASSERT(fresh > 0);
            /* an average of counts of 70-sample batches, not their sum */
            CU_ASSERT(biggest > 5 && biggest <= CBATCH);
            if (dense) { /* every pair */
                const float *d = dsnn_coact_dense(c, 0);
                CU_ASSERT_PTR_NOT_NULL_FATAL(d);
                bad = 0;
                for (int p = 0; p < CHID * CIN; p++)
                    bad += fabs(d[p] - ref[p]) > 1e-4 * (1 + ref[p]);
                CU_ASSERT_EQUAL(bad, 0);
            }
            dsnn_coact_free(c);
            dsnn_net_free(net);
        }
}

/* ---- the plugins ---- */

enum { DDIM = 20, DCLASSES = 4, DTRAIN = 384, DTEST = 128, DBATCH = 32 };

struct blobs {
    float x[2][DTRAIN * DDIM];
    int32_t y[2][DTRAIN];
    int n[2];
    uint32_t order[DTRAIN];
    float bx[DBATCH * DDIM];
    int32_t by[DBATCH];
    int split, pos;
};

static enum dsnn_status blobs_begin(void *state, enum dsnn_split split, int epoch,
                                    struct dsnn_error *err)
{
    struct blobs *d = state;
    if (split != DSNN_SPLIT_TRAIN && split != DSNN_SPLIT_TEST)
        return dsnn_error_set(err, DSNN_ERR_INVALID, "no such split");
    d->split = (int)split;
    d->pos = 0;
    for (int i = 0; i < d->n[split]; i++)
        d->order[i] = (uint32_t)i;
    if (split == DSNN_SPLIT_TRAIN) {
        struct dsnn_rng r;
        dsnn_rng_seed(&r, (uint64_t)epoch + 100, DSNN_RNG_STREAM_DATA);
        dsnn_rng_shuffle_u32(&r, d->order, (size_t)d->n[split]);
    }
    return DSNN_OK;
}

static enum dsnn_status blobs_next(void *state, struct dsnn_batch *b, struct dsnn_error *err)
{
    (void)err;
    struct blobs *d = state;
    int k = d->n[d->split] - d->pos;
    if (k > DBATCH)
        k = DBATCH;
    for (int i = 0; i < k; i++) {
        uint32_t j = d->order[d->pos + i];
        memcpy(d->bx + i * DDIM, d->x[d->split] + j * DDIM, sizeof(float) * DDIM);
        d->by[i] = d->y[d->split][j];
    }
    d->pos += k;
    b->x = d->bx;
    b->y = d->by;
    b->n = k;
    return DSNN_OK;
}

static const struct dsnn_dataset_ops blobs_ops = {.begin = blobs_begin, .next_batch = blobs_next};

/* Gaussian blobs around 4 random centres. */
static struct dsnn_data blobs_open(struct blobs *d)
{
    struct dsnn_rng r;
    dsnn_rng_seed(&r, 77, 1);
    float centre[DCLASSES][DDIM];
    for (int c = 0; c < DCLASSES; c++)
        for (int i = 0; i < DDIM; i++)
            centre[c][i] = 2.0f * (float)dsnn_rng_normal(&r);
    d->n[0] = DTRAIN;
    d->n[1] = DTEST;
    for (int s = 0; s < 2; s++)
        for (int k = 0; k < d->n[s]; k++) {
            int c = (int)dsnn_rng_below(&r, DCLASSES);
            d->y[s][k] = c;
            for (int i = 0; i < DDIM; i++)
                d->x[s][k * DDIM + i] = centre[c][i] + 0.8f * (float)dsnn_rng_normal(&r);
        }
    struct dsnn_data data = {.ops = &blobs_ops,
                             .state = d,
                             .info = {.shape = {DDIM, 1, 1},
                                      .n_classes = DCLASSES,
                                      .n_train = DTRAIN,
                                      .n_test = DTEST,
                                      .batch_size_train = DBATCH,
                                      .batch_size_test = DBATCH}};
    return data;
}

static const struct dsnn_model_ops *load_model(const char *name)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/plugins/%s.so", dsnn_test_build_dir(), name);
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        fprintf(stderr, "\n    cannot load %s: %s (build the plugins first)\n", path, dlerror());
        return NULL;
    }
    dsnn_plugin_entry_fn entry = (dsnn_plugin_entry_fn)dlsym(h, DSNN_PLUGIN_ENTRY_SYMBOL);
    if (!entry)
        return NULL;
    const struct dsnn_plugin *p = entry();
    for (size_t i = 0; i < p->n_components; i++)
        if (p->components[i].kind == DSNN_KIND_MODEL && strcmp(p->components[i].name, name) == 0)
            return p->components[i].ops;
    return NULL;
}

/* 20 -> 64 -> 32 -> 4 MLP of dense linear layers (the model makes them sparse). */
static struct dsnn_net *mlp(void)
{
    struct dsnn_error err = {0};
    struct dsnn_net *net = dsnn_net_new((struct dsnn_shape){DDIM, 1, 1}, DCLASSES, &err);
    const int sizes[] = {DDIM, 64, 32, DCLASSES};
    for (int i = 0; i < 3; i++) {
        char name[16];
        if (i == 2)
            snprintf(name, sizeof name, "output");
        else
            snprintf(name, sizeof name, "fc%d", i + 1);
        CU_ASSERT_EQUAL(
            dsnn_net_add(net, dsnn_linear_new(name, sizes[i], sizes[i + 1], true, &err), &err),
            DSNN_OK);
        if (i < 2) {
            snprintf(name, sizeof name, "relu%d", i + 1);
            CU_ASSERT_EQUAL(
                dsnn_net_add(
                    net, dsnn_relu_new(name, (struct dsnn_shape){sizes[i + 1], 1, 1}, &err), &err),
                DSNN_OK);
        }
    }
    return net;
}

struct run {
    const struct dsnn_model_ops *ops;
    struct dsnn_config_file *cf;
    struct dsnn_net *net;
    void *state;
};

static bool run_open(struct run *r, const char *plugin, const char *model_cfg,
                     struct dsnn_data *data)
{
    struct dsnn_error err = {0};
    memset(r, 0, sizeof *r);
    r->ops = load_model(plugin);
    CU_ASSERT_PTR_NOT_NULL(r->ops);
    if (!r->ops)
        return false;
    char text[2048];
    snprintf(text, sizeof text, "model = { plugin = \"%s\"; %s };", plugin, model_cfg);
    if (dsnn_config_file_parse(text, "test.cfg", &r->cf, &err) != DSNN_OK) {
        fprintf(stderr, "\n    %s\n", err.msg);
        CU_FAIL("config");
        return false;
    }
    r->net = mlp();
    struct dsnn_run_ctx ctx = {.seed = 1234, .epochs = 4, .n_threads = 1, .log = stderr};
    enum dsnn_status st = r->ops->create(dsnn_cfg_group(dsnn_config_file_root(r->cf), "model"),
                                         &ctx, r->net, &data->info, &r->state, &err);
    if (st != DSNN_OK)
        fprintf(stderr, "\n    create %s: %s\n", plugin, err.msg);
    CU_ASSERT_EQUAL(st, DSNN_OK);
    return st == DSNN_OK;
}

static void run_close(struct run *r)
{
    if (r->state)
        r->ops->destroy(r->state);
    dsnn_net_free(r->net);
    dsnn_config_file_free(r->cf);
}

static bool epoch(struct run *r, struct dsnn_data *data, int e, struct dsnn_metrics *m)
{
    struct dsnn_error err = {0};
    dsnn_metrics_clear(m);
    bool rewired = false; /* the round before the evaluation (experiment.rewire_before_eval) */
    enum dsnn_status st = r->ops->train_epoch(r->state, data, e, m, &err);
    if (st == DSNN_OK && r->ops->end_epoch)
        st = r->ops->end_epoch(r->state, data, e, m, &rewired, &err);
    if (st == DSNN_OK)
        st = r->ops->evaluate(r->state, data, DSNN_SPLIT_TEST, m, &err);
    if (st != DSNN_OK)
        fprintf(stderr, "\n    epoch %d: %s\n", e, err.msg);
    CU_ASSERT_EQUAL(st, DSNN_OK);
    return st == DSNN_OK;
}

/* The bytes of a network's checkpoint (weights, topology, optimizer state). */
static char *net_bytes(struct dsnn_net *net, size_t *n)
{
    struct dsnn_error err = {0};
    char *buf = NULL;
    FILE *f = open_memstream(&buf, n);
    CU_ASSERT_EQUAL(dsnn_net_save(net, f, &err), DSNN_OK);
    fclose(f);
    return buf;
}

/* Train 3 epochs in one go, and 2 + checkpoint + a fresh model loading it + 1: the third epoch's
 * metrics and the final networks must be identical. nnz of each layer is constant. */
static void checkpoint_case(const char *plugin, const char *model_cfg, bool every_epoch)
{
    static struct blobs d;
    struct dsnn_data data = blobs_open(&d);
    struct run a, b;
    struct dsnn_metrics ma, mb;
    struct dsnn_error err = {0};
    if (!run_open(&a, plugin, model_cfg, &data))
        return;
    double nnz0 = -1;
    FILE *ck = tmpfile();
    for (int e = 0; e < 3; e++) {
        if (!epoch(&a, &data, e, &ma))
            break;
        double nnz = 0, v;
        CU_ASSERT(dsnn_metrics_get(&ma, "nnz_fc1", &v));
        nnz += v;
        CU_ASSERT(dsnn_metrics_get(&ma, "nnz_fc2", &v));
        nnz += v;
        if (nnz0 < 0)
            nnz0 = nnz;
        CU_ASSERT_EQUAL(nnz, nnz0);
        CU_ASSERT(dsnn_metrics_get(&ma, "pruned_fc1", &v));
        CU_ASSERT(dsnn_metrics_get(&ma, "grown_fc1", &v));
        if (e == 1)
            CU_ASSERT_EQUAL_FATAL(a.ops->save(a.state, ck, &err), DSNN_OK);
    }
    double v;
    /* The column is always there (NaN when no previous round to survive from): it holds a
     * value exactly when the last epoch's round followed another round. */
    CU_ASSERT(dsnn_metrics_get(&ma, "surviving_synapses_fc1", &v));
    CU_ASSERT_EQUAL(!isnan(v), every_epoch);
    CU_ASSERT(dsnn_metrics_get(&ma, "val_acc", &v));
    if (!(v > 0.6))
        fprintf(stderr, "\n    %s: val_acc %.3f after 3 epochs\n", plugin, v);
    CU_ASSERT(v > 0.6);
    if (run_open(&b, plugin, model_cfg, &data)) {
        rewind(ck);
        enum dsnn_status st = b.ops->load(b.state, ck, &err);
        if (st != DSNN_OK)
            fprintf(stderr, "\n    load: %s\n", err.msg);
        CU_ASSERT_EQUAL_FATAL(st, DSNN_OK);
        CU_ASSERT(epoch(&b, &data, 2, &mb));
        CU_ASSERT_EQUAL(ma.n, mb.n);
        int diff = 0;
        for (size_t i = 0; i < ma.n && i < mb.n; i++)
            if (strcmp(ma.items[i].name, mb.items[i].name) != 0 ||
                (ma.items[i].value != mb.items[i].value &&
                 !(isnan(ma.items[i].value) && isnan(mb.items[i].value)))) {
                fprintf(stderr, "\n    %s: %s %.9g vs %s %.9g", plugin, ma.items[i].name,
                        ma.items[i].value, mb.items[i].name, mb.items[i].value);
                diff++;
            }
        CU_ASSERT_EQUAL(diff, 0);
        size_t na, nb;
        char *ba = net_bytes(a.net, &na), *bb = net_bytes(b.net, &nb);
        CU_ASSERT(na == nb && memcmp(ba, bb, na) == 0);
        free(ba);
        free(bb);
        run_close(&b);
    }
    fclose(ck);
    run_close(&a);
}

static void test_plugin_set(void)
{
    checkpoint_case("set",
                    "on_perc = 0.3; weight_prune_perc = 0.3; learning_rate = 0.05; "
                    "momentum = 0.9;",
                    true);
    /* early stop: rounds after epochs 0 only (milestone 1 passed at epoch 1) */
    static struct blobs d;
    struct dsnn_data data = blobs_open(&d);
    struct run r;
    struct dsnn_metrics m;
    if (!run_open(&r, "set",
                  "on_perc = 0.3; learning_rate = 0.05; lr_scheduler = \"MultiStepLR\"; "
                  "lr_milestones = [1]; pruning_early_stop = 1;",
                  &data))
        return;
    for (int e = 0; e < 3; e++) {
        double v = -1;
        CU_ASSERT(epoch(&r, &data, e, &m));
        CU_ASSERT(dsnn_metrics_get(&m, "pruning_active", &v));
        CU_ASSERT_EQUAL(v, e == 0);
        CU_ASSERT(dsnn_metrics_get(&m, "pruned_fc1", &v));
        CU_ASSERT_EQUAL(v > 0, e == 0);
    }
    run_close(&r);
}

/* Per-layer fractions (nupic's per-module lists): one value per sparse layer, 0 keeps that layer
 * static; another count is a configuration error naming the key. For set, dsnn-weighted-mag
 * (weight_prune_perc) and dsnn-mixed-heb (hebbian_prune_perc and weight_prune_perc). */
static void per_layer_case(const char *plugin, const char *fractions)
{
    static struct blobs d;
    struct dsnn_data data = blobs_open(&d);
    struct run r;
    struct dsnn_metrics m;
    char cfg[512];
    snprintf(cfg, sizeof cfg, "on_perc = 0.3; learning_rate = 0.05; %s", fractions);
    if (!run_open(&r, plugin, cfg, &data))
        return;
    double fc1 = -1, fc2 = -1, out = -1;
    CU_ASSERT(epoch(&r, &data, 0, &m));
    CU_ASSERT(dsnn_metrics_get(&m, "pruned_fc1", &fc1) && fc1 > 0);
    CU_ASSERT(dsnn_metrics_get(&m, "pruned_fc2", &fc2) && fc2 == 0);
    CU_ASSERT(dsnn_metrics_get(&m, "pruned_output", &out) && out > 0);
    run_close(&r);
}

static void test_per_layer_fractions(void)
{
    per_layer_case("set", "weight_prune_perc = [0.3, 0.0, 0.2];");
    per_layer_case("dsnn-weighted-mag", "weight_prune_perc = [0.3, 0.0, 0.2];");
    per_layer_case("dsnn-mixed-heb",
                   "hebbian_prune_perc = [0.3, 0.0, 0.3]; weight_prune_perc = [0.3, 0.0, 0.3];");
    /* 2 values for 3 sparse layers */
    static struct blobs d;
    struct dsnn_data data = blobs_open(&d);
    const struct dsnn_model_ops *ops = load_model("set");
    struct dsnn_config_file *cf = NULL;
    struct dsnn_error err = {0};
    CU_ASSERT_EQUAL_FATAL(dsnn_config_file_parse("model = { plugin = \"set\"; on_perc = 0.3; "
                                                 "weight_prune_perc = [0.3, 0.1]; };",
                                                 "pl.cfg", &cf, &err),
                          DSNN_OK);
    struct dsnn_net *net = mlp();
    struct dsnn_run_ctx ctx = {.seed = 1, .epochs = 1, .n_threads = 1, .log = stderr};
    void *state = NULL;
    CU_ASSERT_EQUAL(ops->create(dsnn_cfg_group(dsnn_config_file_root(cf), "model"), &ctx, net,
                                &data.info, &state, &err),
                    DSNN_ERR_CONFIG);
    CU_ASSERT(strstr(err.msg, "pl.cfg:1: key 'model.weight_prune_perc': 2 values for 3 sparse "
                              "layers") != NULL);
    dsnn_net_free(net);
    dsnn_config_file_free(cf);
}

/* nupic's debug metrics, opt-in: debug_weights (mean and std of each layer's weights, a sparse
 * layer's over its active connections) and log_surviving_synapses (their mean over layers). */
static void test_debug_metrics(void)
{
    static struct blobs d;
    struct dsnn_data data = blobs_open(&d);
    struct run r;
    struct dsnn_metrics m;
    if (!run_open(&r, "set",
                  "on_perc = 0.3; learning_rate = 0.05; debug_weights = true; "
                  "log_surviving_synapses = true;",
                  &data))
        return;
    for (int e = 0; e < 2; e++) {
        CU_ASSERT(epoch(&r, &data, e, &m));
        const struct dsnn_layer *l = dsnn_net_layer(r.net, 0); /* fc1, sparse */
        const struct dsnn_param_block *w = NULL;
        for (size_t b = 0; b < l->n_params; b++)
            if (strcmp(l->params[b].name, "weight") == 0)
                w = &l->params[b];
        CU_ASSERT_PTR_NOT_NULL_FATAL(w);
        CU_ASSERT_EQUAL(w->n, dsnn_sparse_nnz(l));
        double sum = 0, sq = 0, mean = 0, std = 0;
        for (size_t j = 0; j < w->n; j++)
            sum += w->value[j];
        for (size_t j = 0; j < w->n; j++)
            sq += (w->value[j] - sum / (double)w->n) * (w->value[j] - sum / (double)w->n);
        CU_ASSERT(dsnn_metrics_get(&m, "weight_mean_fc1", &mean));
        CU_ASSERT(dsnn_metrics_get(&m, "weight_std_fc1", &std));
        CU_ASSERT_DOUBLE_EQUAL(mean, sum / (double)w->n, 1e-12);
        CU_ASSERT_DOUBLE_EQUAL(std, sqrt(sq / (double)w->n), 1e-12);
        double avg = 0, s1 = 0, s2 = 0, s3 = 0;
        CU_ASSERT(dsnn_metrics_get(&m, "surviving_synapses_avg", &avg));
        if (e == 0) {
            CU_ASSERT(isnan(avg)); /* no round before the first to survive from */
        } else {
            CU_ASSERT(dsnn_metrics_get(&m, "surviving_synapses_fc1", &s1));
            CU_ASSERT(dsnn_metrics_get(&m, "surviving_synapses_fc2", &s2));
            CU_ASSERT(dsnn_metrics_get(&m, "surviving_synapses_output", &s3));
            CU_ASSERT_DOUBLE_EQUAL(avg, (s1 + s2 + s3) / 3, 1e-12);
        }
    }
    run_close(&r);
    /* off by default */
    CU_ASSERT_FATAL(run_open(&r, "set", "on_perc = 0.3;", &data));
    CU_ASSERT(epoch(&r, &data, 0, &m));
    double v;
    CU_ASSERT(!dsnn_metrics_get(&m, "weight_mean_fc1", &v));
    CU_ASSERT(!dsnn_metrics_get(&m, "surviving_synapses_avg", &v));
    run_close(&r);
}

static void test_plugin_mixed_heb(void)
{
    /* Hebbian growth: dense coactivations with a moving average */
    checkpoint_case("dsnn-mixed-heb",
                    "on_perc = 0.3; hebbian_prune_perc = 0.3; "
                    "weight_prune_perc = 0.3; hebbian_grow = true; "
                    "moving_average_alpha = 0.5; learning_rate = 0.05; "
                    "momentum = 0.9;",
                    true);
    /* random growth, active coactivations with a moving average over epochs (also counted in
     * the epochs without a round), a round every other epoch: after epoch 1 only */
    checkpoint_case("dsnn-mixed-heb",
                    "on_perc = 0.3; hebbian_prune_perc = 0.5; "
                    "weight_prune_perc = 0.2; moving_average_alpha = 0.5; "
                    "moving_average = \"epoch\"; "
                    "pruning_interval = 2; learning_rate = 0.05; "
                                      "momentum = 0.9;",
                    false);
    /* nupic's SET variant: no Hebbian rule, no coactivations */
    checkpoint_case("dsnn-mixed-heb",
                    "on_perc = 0.3; hebbian_prune_perc = 0; "
                    "weight_prune_perc = 0.3; learning_rate = 0.05; "
                                      "momentum = 0.9;",
                    true);
}

static void test_plugin_weighted_mag(void)
{
    checkpoint_case("dsnn-weighted-mag",
                    "on_perc = 0.3; weight_prune_perc = 0.3; "
                    "moving_average_alpha = 0.5; learning_rate = 0.05; "
                    "momentum = 0.9;",
                    true);
    checkpoint_case("dsnn-weighted-mag",
                    "on_perc = 0.3; weight_prune_perc = 0.5; "
                    "learning_rate = 0.05; momentum = 0.9;",
                    true);
    /* nupic's per-batch moving average carried over the epochs, every other batch counted */
    checkpoint_case("dsnn-weighted-mag",
                    "on_perc = 0.3; weight_prune_perc = 0.3; moving_average_alpha = 0.5; "
                    "reset_coactivations = false; update_nsteps = 2; "
                    "learning_rate = 0.05; momentum = 0.9;",
                    true);
}

/* The coactivation keys across each other: kept counts exclude an average over epochs (the
 * error names the file, line and key), not nupic's average over batches. */
static void test_plugin_coact_keys(void)
{
    static struct blobs d;
    struct dsnn_data data = blobs_open(&d);
    static const char *const plugins[] = {"dsnn-weighted-mag", "dsnn-mixed-heb"};
    for (int i = 0; i < 2; i++) {
        const struct dsnn_model_ops *ops = load_model(plugins[i]);
        CU_ASSERT_PTR_NOT_NULL_FATAL(ops);
        for (int avg = 0; avg < 2; avg++) {
            char text[512];
            snprintf(text, sizeof text,
                     "model = { plugin = \"%s\"; on_perc = 0.3;\n"
                     "  reset_coactivations = false; moving_average_alpha = 0.5;\n"
                     "  moving_average = \"%s\"; };",
                     plugins[i], avg ? "epoch" : "batch");
            struct dsnn_error err = {0};
            struct dsnn_config_file *cf = NULL;
            CU_ASSERT_EQUAL_FATAL(dsnn_config_file_parse(text, "keys.cfg", &cf, &err), DSNN_OK);
            struct dsnn_net *net = mlp();
            struct dsnn_run_ctx ctx = {.seed = 1, .epochs = 2, .n_threads = 1, .log = stderr};
            void *state = NULL;
            enum dsnn_status st = ops->create(dsnn_cfg_group(dsnn_config_file_root(cf), "model"),
                                              &ctx, net, &data.info, &state, &err);
            if (avg) {
                CU_ASSERT_EQUAL(st, DSNN_ERR_CONFIG);
                CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "keys.cfg:2"));
                CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "'model.reset_coactivations'"));
                CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "moving_average = \"epoch\""));
            } else {
                CU_ASSERT_EQUAL(st, DSNN_OK);
            }
            if (state)
                ops->destroy(state);
            dsnn_net_free(net);
            dsnn_config_file_free(cf);
        }
    }
}

/* nupic's sparse_model_test: input 300, hidden [100] x 3, no bias, on_perc 0.1: the network has
 * 4 sparse modules and int(0.1 * 51000) non-zero weights (nupic checks it within +-25 %, its masks
 * being random; dsnn keeps the count of every layer exact: int(0.1 * n) each). */
static void test_nupic_sparse_model(void)
{
    struct dsnn_error err = {0};
    struct dsnn_net *net = dsnn_net_new((struct dsnn_shape){300, 1, 1}, 10, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(net);
    const int sizes[] = {300, 100, 100, 100, 10};
    for (int i = 0; i < 4; i++) {
        char name[16];
        snprintf(name, sizeof name, "fc%d", i + 1);
        CU_ASSERT_EQUAL_FATAL(
            dsnn_net_add(net, dsnn_linear_new(name, sizes[i], sizes[i + 1], false, &err), &err),
            DSNN_OK);
        if (i < 3) {
            snprintf(name, sizeof name, "relu%d", i + 1);
            CU_ASSERT_EQUAL_FATAL(
                dsnn_net_add(net, dsnn_relu_new(name, (struct dsnn_shape){sizes[i + 1], 1, 1}, &err),
                             &err),
                DSNN_OK);
        }
    }
    const struct dsnn_model_ops *ops = load_model("sparse");
    CU_ASSERT_PTR_NOT_NULL_FATAL(ops);
    struct dsnn_config_file *cf = NULL;
    CU_ASSERT_EQUAL_FATAL(dsnn_config_file_parse("model = { plugin = \"sparse\"; on_perc = 0.1; };",
                                                 "t.cfg", &cf, &err),
                          DSNN_OK);
    struct dsnn_dataset_info info = {.shape = {300, 1, 1}, .n_classes = 10, .n_train = 64,
                                     .n_test = 64, .batch_size_train = 32, .batch_size_test = 32};
    struct dsnn_run_ctx ctx = {.seed = 1234, .epochs = 1, .n_threads = 1, .log = stderr};
    void *state = NULL;
    enum dsnn_status st = ops->create(dsnn_cfg_group(dsnn_config_file_root(cf), "model"), &ctx,
                                      net, &info, &state, &err);
    if (st != DSNN_OK)
        fprintf(stderr, "\n    %s\n", err.msg);
    CU_ASSERT_EQUAL_FATAL(st, DSNN_OK);
    const struct dsnn_sparse_model *sm = state; /* the scheme kit's state */
    CU_ASSERT_EQUAL(dsnn_sparse_model_n_layers(sm), 4);
    size_t total = 0;
    for (size_t i = 0; i < dsnn_sparse_model_n_layers(sm); i++) {
        const struct dsnn_layer *l = dsnn_sparse_model_layer(sm, i);
        const size_t n = (size_t)sizes[i] * (size_t)sizes[i + 1];
        CU_ASSERT_EQUAL(dsnn_sparse_nnz(l), (size_t)(0.1 * (double)n));
        total += dsnn_sparse_nnz(l);
    }
    const double want = (double)(size_t)(0.1 * 51000);
    CU_ASSERT(fabs((double)total - want) <= 0.25 * want);
    CU_ASSERT_EQUAL(total, 5100);
    ops->destroy(state);
    dsnn_net_free(net);
    dsnn_config_file_free(cf);
}

static CU_TestInfo tests[] = {
    {"nupic: partial magnitude", test_nupic_partial_magnitude},
    {"nupic: partial hebbian", test_nupic_partial_hebbian},
    {"nupic: partial magnitude and hebbian", test_nupic_partial_magnitude_and_hebbian},
    {"nupic: full and none", test_nupic_full},
    {"weighted magnitude", test_weighted_magnitude},
    {"counts truncate like nupic", test_counts_truncate_like_nupic},
    {"prune schedule", test_schedule},
    {"rules applied to a layer", test_apply_to_layer},
    {"nnz constant over many rounds", test_many_rounds},
    {"coactivations vs naive", test_coactivations},
    {"coactivation moving average", test_coactivation_average},
    {"coactivation moving average per batch (nupic)", test_coactivation_batch_average},
    {"coactivations of a linear block (bn, relu, dropout)", test_coactivation_block},
    {"coactivation keys across each other", test_plugin_coact_keys},
    {"coactivations of nupic's 3-4-5-2 test: one sample, 100 samples; binary, real",
     test_coactivations_3452},
    {"coactivation options: update interval (and its checkpoint), kept across epochs",
     test_coactivation_options},
    {"plugin set", test_plugin_set},
    {"plugin dsnn-mixed-heb", test_plugin_mixed_heb},
    {"plugin dsnn-weighted-mag", test_plugin_weighted_mag},
    {"per-layer prune fractions", test_per_layer_fractions},
    {"debug metrics: debug_weights, log_surviving_synapses", test_debug_metrics},
    {"nupic sparse_model_test: 300 -> [100] x 3 -> 10, on_perc 0.1", test_nupic_sparse_model},
    CU_TEST_INFO_NULL,
};

DSNN_TEST_MAIN("dynsparse", tests)
