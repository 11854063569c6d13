/* tests/plugins/okdata.c - test-only dataset "okdata": Gaussian blobs generated in memory.
 *
 * Sample i of a split belongs to class i % n_classes and is that class's centre plus N(0, 1)
 * noise; the centres are drawn from data_seed, so every trial sees the same data, and the train
 * order is shuffled from (trial seed, epoch). Small and fast: a linear model learns it in an
 * epoch or two. The noise split (n_noise > 0) is the test split with extra N(0, noise_std^2). */
#include <stdlib.h>
#include <string.h>

#include "dsnn/dsnn.h"

struct okdata {
    int nf, n_classes;
    int64_t n[3];       /* per split */
    float *x[3];        /* [n][nf] */
    int32_t *y[3];
    uint32_t *order;    /* current order of the active split */
    int bs[3];
    float *bx;
    int32_t *by;
    int split;
    int64_t pos;
    uint64_t seed;
};

static const struct dsnn_key_spec okdata_keys[] = {
    {.name = "n_train", .type = DSNN_KEY_INT, .def = 256, .doc = "number of training samples"},
    {.name = "n_test", .type = DSNN_KEY_INT, .def = 64, .doc = "number of test samples"},
    {.name = "n_noise", .type = DSNN_KEY_INT, .def = 0, .doc = "number of samples of the noise split (0: no noise split)"},
    {.name = "n_features", .type = DSNN_KEY_INT, .def = 8, .doc = "features per sample (shape {n_features, 1, 1})"},
    {.name = "n_classes", .type = DSNN_KEY_INT, .def = 3, .doc = "number of classes"},
    {.name = "separation", .type = DSNN_KEY_FLOAT, .def = 3.0, .doc = "scale of the class centres (larger: easier)"},
    {.name = "noise_std", .type = DSNN_KEY_FLOAT, .def = 1.0, .doc = "extra noise of the noise split"},
    {.name = "data_seed", .type = DSNN_KEY_INT, .def = 1, .doc = "seed of the generated data (not of the train order)"},
    {.name = "batch_size_train", .type = DSNN_KEY_INT, .def = 32, .doc = "training batch size"},
    {.name = "batch_size_test", .type = DSNN_KEY_INT, .def = 64, .doc = "evaluation batch size"},
};

static void okdata_close(void *state)
{
    struct okdata *d = state;
    if (!d)
        return;
    for (int s = 0; s < 3; s++) {
        free(d->x[s]);
        free(d->y[s]);
    }
    free(d->order);
    free(d->bx);
    free(d->by);
    free(d);
}

static enum dsnn_status read_int(const struct dsnn_cfg *cfg, const char *key, int64_t def,
                                 int64_t lo, int64_t hi, int64_t *out, struct dsnn_error *err)
{
    enum dsnn_status st = dsnn_cfg_int(cfg, key, def, out, err);
    if (st != DSNN_OK)
        return st;
    return dsnn_cfg_check_range(cfg, key, (double)*out, (double)lo, (double)hi, err);
}

static enum dsnn_status okdata_open(const struct dsnn_cfg *cfg, const struct dsnn_run_ctx *ctx,
                                    void **state, struct dsnn_dataset_info *info,
                                    struct dsnn_error *err)
{
    int64_t n_train, n_test, n_noise, nf, nc, seed, bst, bse;
    double sep, noise_std;
    enum dsnn_status st;
    if ((st = read_int(cfg, "n_train", 256, 1, 1 << 24, &n_train, err)) ||
        (st = read_int(cfg, "n_test", 64, 1, 1 << 24, &n_test, err)) ||
        (st = read_int(cfg, "n_noise", 0, 0, 1 << 24, &n_noise, err)) ||
        (st = read_int(cfg, "n_features", 8, 1, 1 << 16, &nf, err)) ||
        (st = read_int(cfg, "n_classes", 3, 2, 1000, &nc, err)) ||
        (st = read_int(cfg, "data_seed", 1, 0, INT64_MAX, &seed, err)) ||
        (st = read_int(cfg, "batch_size_train", 32, 1, 1 << 20, &bst, err)) ||
        (st = read_int(cfg, "batch_size_test", 64, 1, 1 << 20, &bse, err)) ||
        (st = dsnn_cfg_float(cfg, "separation", 3.0, &sep, err)) ||
        (st = dsnn_cfg_float(cfg, "noise_std", 1.0, &noise_std, err)))
        return st;

    struct okdata *d = calloc(1, sizeof(*d));
    if (!d)
        return dsnn_error_set(err, DSNN_ERR_NOMEM, "okdata: out of memory");
    d->nf = (int)nf;
    d->n_classes = (int)nc;
    d->n[DSNN_SPLIT_TRAIN] = n_train;
    d->n[DSNN_SPLIT_TEST] = n_test;
    d->n[DSNN_SPLIT_NOISE] = n_noise;
    d->bs[DSNN_SPLIT_TRAIN] = (int)bst;
    d->bs[DSNN_SPLIT_TEST] = d->bs[DSNN_SPLIT_NOISE] = (int)bse;
    d->seed = ctx ? ctx->seed : 0;
    d->split = -1;
    int64_t max_n = n_train > n_test ? n_train : n_test;
    max_n = n_noise > max_n ? n_noise : max_n;
    int max_bs = bst > bse ? (int)bst : (int)bse;
    float *centres = malloc((size_t)(nc * nf) * sizeof(float));
    d->order = malloc((size_t)max_n * sizeof(uint32_t));
    d->bx = malloc((size_t)max_bs * (size_t)nf * sizeof(float));
    d->by = malloc((size_t)max_bs * sizeof(int32_t));
    bool ok = centres && d->order && d->bx && d->by;
    for (int s = 0; ok && s < 3; s++) {
        if (d->n[s] == 0)
            continue;
        d->x[s] = malloc((size_t)(d->n[s] * nf) * sizeof(float));
        d->y[s] = malloc((size_t)d->n[s] * sizeof(int32_t));
        ok = d->x[s] && d->y[s];
    }
    if (!ok) {
        free(centres);
        okdata_close(d);
        return dsnn_error_set(err, DSNN_ERR_NOMEM, "okdata: out of memory");
    }
    struct dsnn_rng r;
    dsnn_rng_seed(&r, (uint64_t)seed, DSNN_RNG_STREAM_DATA);
    for (int64_t i = 0; i < nc * nf; i++)
        centres[i] = (float)(dsnn_rng_normal(&r) * sep / 2.0);
    for (int s = 0; s < 3; s++) {
        for (int64_t i = 0; i < d->n[s]; i++) {
            int32_t c = (int32_t)(i % nc);
            d->y[s][i] = c;
            double extra = s == DSNN_SPLIT_NOISE ? noise_std : 0.0;
            for (int64_t f = 0; f < nf; f++)
                d->x[s][i * nf + f] = centres[c * nf + f] + (float)dsnn_rng_normal(&r) +
                                      (float)(extra * dsnn_rng_normal(&r));
        }
    }
    free(centres);
    info->shape = (struct dsnn_shape){(int)nf, 1, 1};
    info->n_classes = (int)nc;
    info->n_train = n_train;
    info->n_test = n_test;
    info->n_noise = n_noise;
    info->batch_size_train = (int)bst;
    info->batch_size_test = (int)bse;
    *state = d;
    return DSNN_OK;
}

static enum dsnn_status okdata_begin(void *state, enum dsnn_split split, int epoch,
                                     struct dsnn_error *err)
{
    struct okdata *d = state;
    if ((int)split < 0 || (int)split > 2)
        return dsnn_error_set(err, DSNN_ERR_INVALID, "okdata: unknown split %d", (int)split);
    d->split = (int)split;
    d->pos = 0;
    for (int64_t i = 0; i < d->n[split]; i++)
        d->order[i] = (uint32_t)i;
    if (split == DSNN_SPLIT_TRAIN) {
        struct dsnn_rng r;
        dsnn_rng_seed(&r, dsnn_seed_mix(d->seed, (uint64_t)epoch), DSNN_RNG_STREAM_DATA);
        dsnn_rng_shuffle_u32(&r, d->order, (size_t)d->n[split]);
    }
    return DSNN_OK;
}

static enum dsnn_status okdata_next_batch(void *state, struct dsnn_batch *b,
                                          struct dsnn_error *err)
{
    struct okdata *d = state;
    if (d->split < 0)
        return dsnn_error_set(err, DSNN_ERR_INVALID, "okdata: next_batch before begin");
    int64_t left = d->n[d->split] - d->pos;
    int n = left < d->bs[d->split] ? (int)left : d->bs[d->split];
    for (int i = 0; i < n; i++) {
        uint32_t k = d->order[d->pos + i];
        memcpy(d->bx + (size_t)i * (size_t)d->nf, d->x[d->split] + (size_t)k * (size_t)d->nf,
               (size_t)d->nf * sizeof(float));
        d->by[i] = d->y[d->split][k];
    }
    d->pos += n;
    b->x = d->bx;
    b->y = d->by;
    b->n = n;
    return DSNN_OK;
}

static const struct dsnn_dataset_ops okdata_ops = {
    .open = okdata_open,
    .begin = okdata_begin,
    .next_batch = okdata_next_batch,
    .close = okdata_close,
};

static const struct dsnn_component components[] = {
    DSNN_COMPONENT(DSNN_KIND_DATASET, "okdata", "1.0.0",
                   "test-only: Gaussian blobs generated in memory", okdata_ops, okdata_keys),
};
DSNN_PLUGIN_DEFINE("okdata", components)
