/* data/dataset_util.c - per-epoch batch sizes, the split cursor, named normalisation statistics and
 * messages shared by the dataset plugins (the noise is in noise.c). */
#include "dsnn/dataset_util.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *dsnn_dataset_key_where(const struct dsnn_cfg *cfg, const char *key, char *buf,
                                   size_t size)
{
    char where[512];
    const char *w =
        cfg && dsnn_cfg_has(cfg, key) ? dsnn_cfg_where(cfg, key, where, sizeof where) : NULL;
    const char *group = cfg ? dsnn_cfg_path(cfg) : NULL;
    snprintf(buf, size, "%s%skey '%s.%s'", w && *w ? w : "", w && *w ? ": " : "",
             group && *group ? group : "dataset", key);
    return buf;
}

/* The setting of key in cfg, or NULL. */
static const struct dsnn_cfg *setting_of(const struct dsnn_cfg *cfg, const char *key)
{
    size_t n = dsnn_cfg_count(cfg);
    for (size_t i = 0; i < n; i++) {
        const char *name = dsnn_cfg_child_name(cfg, i);
        if (name && strcmp(name, key) == 0)
            return dsnn_cfg_child(cfg, i);
    }
    return NULL;
}

enum dsnn_status dsnn_epoch_schedule_read(const struct dsnn_cfg *cfg, const char *key, int def,
                                          int lo, int hi, struct dsnn_batch_schedule *s,
                                          struct dsnn_error *err)
{
    char kw[700];
    int64_t v[DSNN_BATCH_SCHEDULE_MAX];
    size_t n = 0;
    enum dsnn_status st;
    memset(s, 0, sizeof *s);
    const struct dsnn_cfg *set = cfg ? setting_of(cfg, key) : NULL;
    enum dsnn_cfg_type t = set ? dsnn_cfg_type(set) : DSNN_CFG_NONE;
    if (t == DSNN_CFG_ARRAY || t == DSNN_CFG_LIST) {
        if ((st = dsnn_cfg_int_array(cfg, key, v, DSNN_BATCH_SCHEDULE_MAX, &n, err)) != DSNN_OK)
            return st;
        if (n == 0)
            return dsnn_error_set(err, DSNN_ERR_CONFIG,
                                  "%s: an empty array; give one value or one per epoch "
                                  "(e.g. [4, 16]: 4 in epoch 0, 16 from epoch 1 on)",
                                  dsnn_dataset_key_where(cfg, key, kw, sizeof kw));
    } else {
        if ((st = dsnn_cfg_int(cfg, key, def, &v[0], err)) != DSNN_OK)
            return st;
        n = 1;
    }
    s->max = lo;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < lo || v[i] > hi) {
            if (n == 1)
                return dsnn_error_set(err, DSNN_ERR_CONFIG,
                                      "%s: %lld is out of range: must be in [%d, %d]",
                                      dsnn_dataset_key_where(cfg, key, kw, sizeof kw),
                                      (long long)v[i], lo, hi);
            return dsnn_error_set(err, DSNN_ERR_CONFIG,
                                  "%s: element %zu (epoch %zu%s): %lld is out of range: must be "
                                  "in [%d, %d]",
                                  dsnn_dataset_key_where(cfg, key, kw, sizeof kw), i, i,
                                  i + 1 == n ? " and later" : "", (long long)v[i], lo, hi);
        }
        s->size[i] = (int)v[i];
        if (s->size[i] > s->max)
            s->max = s->size[i];
    }
    s->n = (int)n;
    return DSNN_OK;
}

enum dsnn_status dsnn_batch_schedule_read(const struct dsnn_cfg *cfg, const char *key, int def,
                                          struct dsnn_batch_schedule *s, struct dsnn_error *err)
{
    return dsnn_epoch_schedule_read(cfg, key, def, 1, DSNN_BATCH_SIZE_MAX, s, err);
}

struct dsnn_batch_schedule dsnn_batch_schedule_const(int value)
{
    return (struct dsnn_batch_schedule){.n = 1, .size = {value}, .max = value};
}

int dsnn_batch_schedule_at(const struct dsnn_batch_schedule *s, int epoch)
{
    if (!s || s->n < 1)
        return 1;
    int i = epoch < 0 ? 0 : epoch >= s->n ? s->n - 1 : epoch;
    return s->size[i];
}

int dsnn_batch_schedule_max(const struct dsnn_batch_schedule *s, int64_t n_samples)
{
    int64_t m = s && s->max > 0 ? s->max : 1;
    if (n_samples > 0 && m > n_samples)
        m = n_samples;
    return (int)(m > 0 ? m : 1);
}

void dsnn_noise_options_log(FILE *log, const char *name, const char *what,
                            const struct dsnn_noise_options *o)
{
    if (!log || !o || !o->enabled)
        return;
    fprintf(log, "%s: noise split: the test split with %g of the %s set to %g / %g (%s)\n", name,
            o->level, what, o->high, o->low,
            o->space == DSNN_NOISE_SPACE_PIXEL ? "pixels, before normalisation"
                                               : "after normalisation");
}

#define SK_AT(f) DSNN_KEY_AT(struct dsnn_split_options, f)
static const struct dsnn_key_spec split_keys[] = {
    {.name = "batch_size_test", .type = DSNN_KEY_FLOAT_OR_ARRAY, .def = 1000,
     DSNN_KEY_RANGE(1, DSNN_BATCH_SIZE_MAX),
     .doc = "samples per test (and noise) batch: an integer, or one per epoch (the last value "
            "repeats; nupic's per-epoch batch_size_test)"},
    {.name = "train_batches_per_epoch", .type = DSNN_KEY_FLOAT_OR_ARRAY, .def = 0,
     DSNN_KEY_RANGE(0, INT_MAX),
     .doc = "end a train epoch after this many batches (the first of the epoch's order); 0 = "
            "all; an integer, or one per epoch (the last value repeats, as nupic's)"},
    {.name = "shuffle", .type = DSNN_KEY_BOOL, .def = true, SK_AT(shuffle),
     .doc = "shuffle the train split every epoch; the order of epoch e depends only on "
            "(trial seed, e)"},
};
#undef SK_AT
DSNN_KEY_TABLE_DEFINE(, dsnn_split_keys, split_keys);

/* Whether t includes the table u. */
static bool includes(const struct dsnn_key_table *t, const struct dsnn_key_table *u)
{
    for (size_t i = 0; i < t->n; i++)
        if (t->keys[i].type == DSNN_KEY_INCLUDE && t->keys[i].include == u)
            return true;
    return false;
}

/* The default of key: its spec in t, or in DSNN_SPLIT_KEYS when t includes them; else def. */
static int key_default(const struct dsnn_key_table *t, const char *key, int def)
{
    const struct dsnn_key_spec *k = dsnn_keys_find(t->keys, t->n, key);
    if (!k && includes(t, &dsnn_split_keys))
        k = dsnn_keys_find(split_keys, sizeof split_keys / sizeof *split_keys, key);
    return k ? (int)k->def : def;
}

enum dsnn_status dsnn_dataset_keys_read(const struct dsnn_key_table *t, const struct dsnn_cfg *cfg,
                                        void *out, struct dsnn_split_options *split,
                                        struct dsnn_error *err)
{
    enum dsnn_status st;
    if ((st = dsnn_batch_schedule_read(cfg, "batch_size_train",
                                       key_default(t, "batch_size_train", 128),
                                       &split->train_batch, err)) != DSNN_OK ||
        (st = dsnn_batch_schedule_read(cfg, "batch_size_test",
                                       key_default(t, "batch_size_test", 1000),
                                       &split->test_batch, err)) != DSNN_OK ||
        (st = dsnn_epoch_schedule_read(cfg, "train_batches_per_epoch",
                                       key_default(t, "train_batches_per_epoch", 0), 0, INT_MAX,
                                       &split->batches_per_epoch, err)) != DSNN_OK ||
        (includes(t, &dsnn_split_keys) &&
         (st = dsnn_keys_read(&dsnn_split_keys, cfg, split, err)) != DSNN_OK))
        return st;
    return dsnn_keys_read(t, cfg, out, err);
}

void dsnn_split_cursor_setup(struct dsnn_split_cursor *c, const char *name,
                             const struct dsnn_split_options *o, uint64_t seed,
                             enum dsnn_noise_split noise)
{
    *c = (struct dsnn_split_cursor){
        .name = name,
        .train_batch = o->train_batch,
        .test_batch = o->test_batch,
        .batches_per_epoch = o->batches_per_epoch,
        .shuffle = o->shuffle,
        .seed = seed,
        .noise = noise,
        .split = -1,
    };
}

enum dsnn_status dsnn_split_cursor_init(struct dsnn_split_cursor *c, int64_t n_train,
                                        int64_t n_test, struct dsnn_error *err)
{
    c->order = NULL;
    c->split = -1;
    c->train_max = dsnn_batch_schedule_max(&c->train_batch, n_train);
    c->test_max = dsnn_batch_schedule_max(&c->test_batch, n_test);
    c->max_batch = c->train_max > c->test_max ? c->train_max : c->test_max;
    c->capacity = n_train > n_test ? n_train : n_test;
    if (c->capacity < 0)
        c->capacity = 0;
    c->order = malloc(c->capacity > 0 ? (size_t)c->capacity * sizeof *c->order : 1);
    if (!c->order) /* begin fills it */
        return dsnn_error_set(err, DSNN_ERR_NOMEM, "%s: out of memory for batch buffers",
                              c->name);
    return DSNN_OK;
}

void dsnn_split_cursor_describe(const struct dsnn_split_cursor *c, struct dsnn_shape shape,
                                int n_classes, int64_t n_train, int64_t n_test, int64_t n_noise,
                                struct dsnn_dataset_info *info)
{
    memset(info, 0, sizeof *info);
    info->shape = shape;
    info->n_classes = n_classes;
    info->n_train = n_train;
    info->n_test = n_test;
    info->n_noise = c->noise == DSNN_NOISE_SPLIT_ON ? n_noise : 0;
    info->batch_size_train = c->train_max;
    info->batch_size_test = c->test_max;
}

void dsnn_split_cursor_free(struct dsnn_split_cursor *c)
{
    if (!c)
        return;
    free(c->order);
    c->order = NULL;
    c->capacity = 0;
    c->split = -1;
}

enum dsnn_status dsnn_split_cursor_check(const struct dsnn_split_cursor *c,
                                         enum dsnn_split split, int epoch,
                                         struct dsnn_error *err)
{
    if (split == DSNN_SPLIT_NOISE && c->noise != DSNN_NOISE_SPLIT_ON)
        return c->noise == DSNN_NOISE_SPLIT_NONE
                   ? dsnn_error_set(err, DSNN_ERR_UNSUPPORTED, "%s: no noise split", c->name)
                   : dsnn_error_set(err, DSNN_ERR_UNSUPPORTED,
                                    "%s: no noise split (n_noise = 0); set test_noise = true",
                                    c->name);
    if (split != DSNN_SPLIT_TRAIN && split != DSNN_SPLIT_TEST && split != DSNN_SPLIT_NOISE)
        return dsnn_error_set(err, DSNN_ERR_INVALID, "%s: unknown split %d", c->name, (int)split);
    if (epoch < 0)
        return dsnn_error_set(err, DSNN_ERR_INVALID, "%s: epoch must be >= 0, got %d", c->name,
                              epoch);
    return DSNN_OK;
}

enum dsnn_status dsnn_split_cursor_begin(struct dsnn_split_cursor *c, enum dsnn_split split,
                                         int epoch, int64_t n, struct dsnn_error *err)
{
    enum dsnn_status st = dsnn_split_cursor_check(c, split, epoch, err);
    if (st != DSNN_OK)
        return st;
    if (n < 0 || n > c->capacity)
        return dsnn_error_set(err, DSNN_ERR_INTERNAL,
                              "%s: begin: %lld samples, more than the %lld of the cursor",
                              c->name, (long long)n, (long long)c->capacity);
    bool train = split == DSNN_SPLIT_TRAIN;
    c->split = (int)split;
    c->epoch = epoch;
    c->n = n;
    c->pos = 0;
    c->batches = 0;
    if (train) {
        c->batch = dsnn_batch_schedule_at(&c->train_batch, epoch);
        c->limit = c->batches_per_epoch.n > 0 ? dsnn_batch_schedule_at(&c->batches_per_epoch, epoch)
                                              : 0;
    } else {
        c->batch = dsnn_batch_schedule_at(&c->test_batch, epoch);
        if (c->batch > c->test_max)
            c->batch = c->test_max;
        c->limit = 0;
    }
    for (int64_t i = 0; i < n; i++)
        c->order[i] = (uint32_t)i;
    if (train && c->shuffle) {
        struct dsnn_rng r;
        dsnn_rng_seed(&r, dsnn_seed_mix(c->seed, (uint64_t)epoch), DSNN_RNG_STREAM_DATA);
        dsnn_rng_shuffle_u32(&r, c->order, (size_t)n);
    }
    return DSNN_OK;
}

enum dsnn_status dsnn_split_cursor_next(struct dsnn_split_cursor *c, int *n,
                                        const uint32_t **samples, struct dsnn_error *err)
{
    *n = 0;
    *samples = c->order;
    if (c->split < 0)
        return dsnn_error_set(err, DSNN_ERR_INVALID, "%s: next_batch called before begin",
                              c->name);
    int64_t left = c->n - c->pos;
    int k = left < c->batch ? (int)left : c->batch;
    if (c->limit > 0 && c->batches >= c->limit)
        k = 0;
    *samples = c->order + c->pos;
    c->pos += k;
    if (k > 0)
        c->batches++;
    *n = k;
    return DSNN_OK;
}

enum dsnn_status dsnn_batch_buffer_init(struct dsnn_batch_buffer *b,
                                        const struct dsnn_split_cursor *c, int64_t sample_size,
                                        struct dsnn_error *err)
{
    b->sample_size = sample_size;
    b->x = malloc((size_t)c->max_batch * (size_t)sample_size * sizeof *b->x);
    b->y = malloc((size_t)c->max_batch * sizeof *b->y);
    if (!b->x || !b->y) {
        dsnn_batch_buffer_free(b);
        return dsnn_error_set(err, DSNN_ERR_NOMEM, "%s: out of memory for batch buffers",
                              c->name);
    }
    return DSNN_OK;
}

void dsnn_batch_buffer_free(struct dsnn_batch_buffer *b)
{
    if (!b)
        return;
    free(b->x);
    free(b->y);
    b->x = NULL;
    b->y = NULL;
}

enum dsnn_status dsnn_split_cursor_fill(struct dsnn_split_cursor *c, struct dsnn_batch_buffer *buf,
                                        dsnn_sample_fn sample, void *state,
                                        struct dsnn_batch *out, struct dsnn_error *err)
{
    int n;
    const uint32_t *samples;
    enum dsnn_status st = dsnn_split_cursor_next(c, &n, &samples, err);
    if (st != DSNN_OK)
        return st;
    for (int k = 0; k < n; k++)
        buf->y[k] = sample(state, samples[k], buf->x + (int64_t)k * buf->sample_size);
    out->x = buf->x;
    out->y = buf->y;
    out->n = n;
    return DSNN_OK;
}

static const struct dsnn_norm_stats norm_stats[] = {
    {"mnist", 1, {0.1307, 0, 0}, {0.3081, 1, 1}},
    {"fashion-mnist", 1, {0.2860, 0, 0}, {0.3530, 1, 1}},
    {"cifar10", 3, {0.4914, 0.4822, 0.4465}, {0.2470, 0.2435, 0.2616}},
    {"cifar100", 3, {0.5071, 0.4865, 0.4409}, {0.2673, 0.2564, 0.2762}},
};

const struct dsnn_norm_stats *dsnn_norm_stats_find(const char *name)
{
    if (!name)
        return NULL;
    for (size_t i = 0; i < sizeof norm_stats / sizeof norm_stats[0]; i++)
        if (strcasecmp(norm_stats[i].name, name) == 0)
            return &norm_stats[i];
    return NULL;
}
