/* plugins/datasets/synthetic/synthetic.c - a seeded synthetic dataset for fast tests.
 *
 * n_classes Gaussian clusters in samples of any shape {c, h, w}: class k has a centre mu_k whose
 * c*h*w values are drawn from N(0, separation^2); sample i of a split has the label i mod
 * n_classes (balanced classes) and the values mu_label + noise_std * N(0, 1). Two centres lie
 * about separation * sqrt(2 c h w) apart: with the defaults (separation 1, noise_std 1, 1x8x8)
 * that is 11 noise standard deviations and a linear model reaches about 100 % within an epoch (a
 * smoke test); separation 0.1 to 0.3 makes the classes overlap (a harder task). Everything is
 * generated at open and depends only on data_seed (never on
 * the trial seed), so that every trial of an experiment sees the same data:
 *     centres:         dsnn_rng_seed(data_seed, SYN_STREAM_CENTRES)
 *     train sample i:  dsnn_rng_seed(dsnn_seed_mix(data_seed, i), SYN_STREAM_TRAIN)
 *     test sample i:   dsnn_rng_seed(dsnn_seed_mix(data_seed, i), SYN_STREAM_TEST)
 * so that sample i does not change with n_train or n_test.
 *
 * Splits: train (shuffled per epoch from the trial seed, as the other datasets:
 * dsnn_rng_seed(dsnn_seed_mix(seed, e), DSNN_RNG_STREAM_DATA)), test in order; no noise split.
 * Batches: batch_size_train is one size or one per epoch (the last value repeats);
 * train_batches_per_epoch > 0 ends a train epoch after that many batches. */
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dsnn/config.h"
#include "dsnn/data.h"
#include "dsnn/dataset_util.h"
#include "dsnn/plugin.h"
#include "dsnn/rng.h"
#include "dsnn/status.h"

#define SYN_STREAM_CENTRES 0x73796e3163ull /* "syn1c" */
#define SYN_STREAM_TRAIN 0x73796e3274ull
#define SYN_STREAM_TEST 0x73796e3365ull
#define SYN_MAX_VALUES (INT64_C(1) << 31) /* floats held in all (about 8 GiB) */

/* The keys, as read (shape is read by syn_read_params itself, batch_size_train by
 * dsnn_dataset_keys_read). */
struct syn_params {
    int64_t n_classes, n[2], data_seed; /* n: n_train, n_test */
    double separation, noise_std;
    struct dsnn_shape shape;
    struct dsnn_split_options split; /* batch sizes, train_batches_per_epoch, shuffle */
};

#define SK_AT(f) DSNN_KEY_AT(struct syn_params, f)
static const struct dsnn_key_spec syn_keys[] = {
    DSNN_KEY_PLUGIN("synthetic"),
    {.name = "n_classes", .type = DSNN_KEY_INT, .def = 10, DSNN_KEY_RANGE(2, 65536),
     SK_AT(n_classes), .doc = "number of classes (Gaussian clusters), in [2, 65536]"},
    {.name = "shape", .type = DSNN_KEY_INT_ARRAY, .default_value = "[1, 8, 8]",
     DSNN_KEY_RANGE(1, 1 << 20),
     .doc = "shape of a sample [c, h, w] (or [n] for a flat vector of n values), each in [1, 2^20]"},
    {.name = "n_train", .type = DSNN_KEY_INT, .def = 1000, DSNN_KEY_RANGE(1, UINT32_MAX),
     SK_AT(n[0]), .doc = "samples in the train split"},
    {.name = "n_test", .type = DSNN_KEY_INT, .def = 200, DSNN_KEY_RANGE(1, UINT32_MAX),
     SK_AT(n[1]), .doc = "samples in the test split"},
    {.name = "separation", .type = DSNN_KEY_FLOAT, .def = 1.0, DSNN_KEY_RANGE(0, 1e6),
     SK_AT(separation),
     .doc = "standard deviation of the values of the class centres; centres lie about separation * "
     "sqrt(2 c h w) apart (defaults: nearly separable; 0.1 to 0.3: overlapping classes)"},
    {.name = "noise_std", .type = DSNN_KEY_FLOAT, .def = 1.0, DSNN_KEY_RANGE(0, 1e6),
     SK_AT(noise_std), .doc = "standard deviation of the samples around their centre"},
    {.name = "data_seed", .type = DSNN_KEY_INT, .def = 0, SK_AT(data_seed),
     .doc = "seed of the data (independent of the trial seed: every trial sees the same data)"},
    {.name = "batch_size_train", .type = DSNN_KEY_FLOAT_OR_ARRAY, .def = 64,
     DSNN_KEY_RANGE(1, DSNN_BATCH_SIZE_MAX),
     .doc = "samples per training batch: an integer, or one per epoch (the last value repeats)"},
    {.name = "batch_size_test", .type = DSNN_KEY_FLOAT_OR_ARRAY, .def = 1000,
     DSNN_KEY_RANGE(1, DSNN_BATCH_SIZE_MAX),
     .doc = "samples per test batch: an integer, or one per epoch (the last value repeats)"},
    {.name = "train_batches_per_epoch", .type = DSNN_KEY_FLOAT_OR_ARRAY, .def = 0,
     DSNN_KEY_RANGE(0, INT_MAX),
     .doc = "end a train epoch after this many batches; 0 = all; an integer, or one per epoch"},
    {.name = "shuffle", .type = DSNN_KEY_BOOL, .def = true, SK_AT(split.shuffle),
     .doc = "shuffle the train split every epoch (order from the trial seed and the epoch)"},
};
#undef SK_AT
DSNN_KEY_TABLE_DEFINE(static, syn_table, syn_keys);

struct syn_state {
    struct dsnn_sample_store store; /* first: begin and next_batch are the store's; n: train, test */
    struct dsnn_shape shape;
    int64_t d;
    float *x[2];
    int32_t *y[2];
};

static void syn_close(void *state)
{
    struct syn_state *s = state;
    if (!s)
        return;
    for (int i = 0; i < 2; i++) {
        free(s->x[i]);
        free(s->y[i]);
    }
    dsnn_sample_store_free(&s->store);
    free(s);
}

/* Reads every key into p and checks what the specs cannot: the number of dimensions of shape,
 * and the total size. */
static enum dsnn_status syn_read_params(const struct dsnn_cfg *cfg, struct syn_params *p,
                                        struct dsnn_error *e)
{
    enum dsnn_status st;
    char kw[700];
    int64_t dims[4];
    size_t n_dims = 0;
    if ((st = dsnn_dataset_keys_read(&syn_table, cfg, p, &p->split, e)) != DSNN_OK ||
        (st = dsnn_cfg_int_array(cfg, "shape", dims, 3, &n_dims, e)) != DSNN_OK)
        return st;
    p->shape = (struct dsnn_shape){1, 8, 8}; /* the default of shape */
    if (dsnn_cfg_has(cfg, "shape")) {
        if (n_dims != 1 && n_dims != 3)
            return dsnn_error_set(e, DSNN_ERR_CONFIG,
                                  "%s: give [c, h, w] or [n] (a flat vector), not %zu values",
                                  dsnn_dataset_key_where(cfg, "shape", kw, sizeof kw), n_dims);
        p->shape = n_dims == 1 ? (struct dsnn_shape){(int)dims[0], 1, 1}
                               : (struct dsnn_shape){(int)dims[0], (int)dims[1], (int)dims[2]};
    }
    int64_t d = dsnn_shape_size(p->shape);
    if (d > SYN_MAX_VALUES || (p->n[0] + p->n[1] + p->n_classes) > SYN_MAX_VALUES / d)
        return dsnn_error_set(e, DSNN_ERR_CONFIG,
                              "%s: %" PRId64 " + %" PRId64 " samples of %" PRId64
                              " values are too many (at most 2^31 values in all)",
                              dsnn_dataset_key_where(cfg, "n_train", kw, sizeof kw), p->n[0],
                              p->n[1], d);
    return DSNN_OK;
}

/* Draws the class centres, then every sample of both splits (see the top of the file). */
static void syn_generate(struct syn_state *s, const struct syn_params *p, float *centres)
{
    const int64_t d = s->d;
    struct dsnn_rng r;
    dsnn_rng_seed(&r, (uint64_t)p->data_seed, SYN_STREAM_CENTRES);
    for (int64_t j = 0; j < p->n_classes * d; j++)
        centres[j] = (float)(p->separation * dsnn_rng_normal(&r));
    static const uint64_t streams[2] = {SYN_STREAM_TRAIN, SYN_STREAM_TEST};
    for (int sp = 0; sp < 2; sp++) {
        for (int64_t i = 0; i < p->n[sp]; i++) {
            int32_t label = (int32_t)(i % p->n_classes);
            dsnn_rng_seed(&r, dsnn_seed_mix((uint64_t)p->data_seed, (uint64_t)i), streams[sp]);
            const float *mu = centres + label * d;
            float *x = s->x[sp] + i * d;
            for (int64_t j = 0; j < d; j++)
                x[j] = mu[j] + (float)(p->noise_std * dsnn_rng_normal(&r));
            s->y[sp][i] = label;
        }
    }
}

/* Copies sample i of the split begun to dst (dsnn_sample_fn). */
static int32_t syn_sample(void *state, int64_t i, float *dst)
{
    const struct syn_state *s = state;
    const int sp = s->store.cur.split; /* DSNN_SPLIT_TRAIN (0) or DSNN_SPLIT_TEST (1) */
    memcpy(dst, s->x[sp] + i * s->d, (size_t)s->d * sizeof *dst);
    return s->y[sp][i];
}

static enum dsnn_status syn_open(const struct dsnn_cfg *cfg, const struct dsnn_run_ctx *ctx,
                                 void **state, struct dsnn_dataset_info *info,
                                 struct dsnn_error *err)
{
    struct dsnn_error e0 = {0};
    struct dsnn_error *e = err ? err : &e0;
    enum dsnn_status st;
    if (!state || !info)
        return dsnn_error_set(e, DSNN_ERR_INVALID,
                              "synthetic: open: state and info must not be NULL");
    *state = NULL;
    struct syn_params p;
    if ((st = syn_read_params(cfg, &p, e)) != DSNN_OK)
        return st;
    const int64_t d = dsnn_shape_size(p.shape), *n = p.n;

    struct syn_state *s = calloc(1, sizeof *s);
    if (!s)
        return dsnn_error_set(e, DSNN_ERR_NOMEM, "synthetic: out of memory");
    dsnn_split_cursor_setup(&s->store.cur, "synthetic", &p.split, ctx ? ctx->seed : 0,
                            DSNN_NOISE_SPLIT_NONE);
    s->shape = p.shape;
    s->d = d;
    s->store.n[0] = n[0];
    s->store.n[1] = n[1];
    s->store.sample = syn_sample;
    float *centres = malloc((size_t)(p.n_classes * d) * sizeof *centres);
    for (int i = 0; i < 2; i++) {
        s->x[i] = malloc((size_t)(n[i] * d) * sizeof *s->x[i]);
        s->y[i] = malloc((size_t)n[i] * sizeof *s->y[i]);
    }
    /* n[1] >= 1: a test batch is at most n[1] (init sets cur.test_max) */
    bool cur_ok = dsnn_split_cursor_init(&s->store.cur, n[0], n[1], NULL) == DSNN_OK;
    bool buf_ok = dsnn_batch_buffer_init(&s->store.buf, &s->store.cur, d, NULL) == DSNN_OK;
    if (!centres || !s->x[0] || !s->x[1] || !s->y[0] || !s->y[1] || !cur_ok || !buf_ok) {
        free(centres);
        syn_close(s);
        return dsnn_error_set(e, DSNN_ERR_NOMEM, "synthetic: out of memory for %" PRId64
                              " samples of %" PRId64 " values", n[0] + n[1], d);
    }
    syn_generate(s, &p, centres);
    free(centres);

    dsnn_split_cursor_describe(&s->store.cur, p.shape, (int)p.n_classes, n[0], n[1], 0, info);
    if (ctx && ctx->log)
        fprintf(ctx->log, "synthetic: %d Gaussian classes of %dx%dx%d (separation %g, noise %g, "
                          "data_seed %" PRId64 "): train %" PRId64 ", test %" PRId64 "\n",
                info->n_classes, p.shape.c, p.shape.h, p.shape.w, p.separation, p.noise_std,
                p.data_seed, n[0], n[1]);
    *state = s;
    return DSNN_OK;
}

DSNN_DATASET_PLUGIN("synthetic", "1.0.0", "seeded Gaussian clusters of any shape, for fast tests",
                    syn_keys,
                    .open = syn_open, .begin = dsnn_sample_store_begin,
                    .next_batch = dsnn_sample_store_next_batch,
                    .close = syn_close)
