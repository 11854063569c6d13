/* dataset_util.c - per-epoch batch sizes, named normalisation statistics and messages shared by
 * the dataset plugins (the noise is in noise.c). */
#include "dsnn/dataset_util.h"

#include <stdio.h>
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

enum dsnn_status dsnn_batch_schedule_read(const struct dsnn_cfg *cfg, const char *key, int def,
                                          struct dsnn_batch_schedule *s, struct dsnn_error *err)
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
                                  "%s: an empty array; give a batch size or one per epoch "
                                  "(e.g. [4, 16]: 4 in epoch 0, 16 from epoch 1 on)",
                                  dsnn_dataset_key_where(cfg, key, kw, sizeof kw));
    } else {
        if ((st = dsnn_cfg_int(cfg, key, def, &v[0], err)) != DSNN_OK)
            return st;
        n = 1;
    }
    for (size_t i = 0; i < n; i++) {
        if (v[i] < 1 || v[i] > DSNN_BATCH_SIZE_MAX) {
            if (n == 1)
                return dsnn_error_set(err, DSNN_ERR_CONFIG,
                                      "%s: %lld is out of range: must be in [1, %d]",
                                      dsnn_dataset_key_where(cfg, key, kw, sizeof kw),
                                      (long long)v[i], DSNN_BATCH_SIZE_MAX);
            return dsnn_error_set(err, DSNN_ERR_CONFIG,
                                  "%s: element %zu (epoch %zu%s): %lld is out of range: must be "
                                  "in [1, %d]",
                                  dsnn_dataset_key_where(cfg, key, kw, sizeof kw), i, i,
                                  i + 1 == n ? " and later" : "", (long long)v[i],
                                  DSNN_BATCH_SIZE_MAX);
        }
        s->size[i] = (int)v[i];
        if (s->size[i] > s->max)
            s->max = s->size[i];
    }
    s->n = (int)n;
    return DSNN_OK;
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
