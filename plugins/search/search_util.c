/* plugins/search/search_util.c - see search_util.h. */
#include "search_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const su_modes[] = {"max", "min", NULL};

enum dsnn_status su_draw_init(struct su_draw *d, const struct dsnn_cfg *cfg,
                              const struct dsnn_search_ctx *ctx, struct dsnn_error *err)
{
    d->seed = ctx->seed;
    d->num_samples = ctx->num_samples > 0 ? ctx->num_samples : 1;
    return dsnn_search_space_parse(cfg, "space", &d->space, err);
}

enum dsnn_status su_draw_suggest(void *state, int trial_index, struct dsnn_param_set *out,
                                 bool *done, struct dsnn_error *err)
{
    const struct su_draw *d = state;
    out->n = 0;
    *done = trial_index < 0 || trial_index >= d->num_samples;
    if (*done)
        return DSNN_OK;
    struct dsnn_rng rng;
    struct dsnn_search_point p;
    dsnn_search_trial_rng(&rng, d->seed, trial_index);
    dsnn_search_space_sample(&d->space, &rng, &p);
    return dsnn_search_space_params(&d->space, &p, out, err);
}

enum dsnn_status su_read_objective(const struct dsnn_cfg *cfg, const struct dsnn_search_ctx *ctx,
                                   const char **metric, bool *maximize, struct dsnn_error *err)
{
    int mode = 0;
    enum dsnn_status st;
    if ((st = dsnn_cfg_string(cfg, "metric", ctx->metric ? ctx->metric : "val_acc", metric,
                              err)) ||
        (st = dsnn_cfg_enum(cfg, "mode", su_modes[ctx->maximize ? 0 : 1], su_modes, &mode, err)))
        return st;
    *maximize = mode == 0;
    return DSNN_OK;
}

enum dsnn_status su_metric_copy(const struct dsnn_cfg *cfg, const char *metric, char *dst,
                                struct dsnn_error *err)
{
    char where[300];
    if (strlen(metric) >= DSNN_METRIC_NAME_MAX || !*metric)
        return dsnn_error_set(err, DSNN_ERR_CONFIG,
                              "%s: key '%s.metric': \"%s\" is not a metric name",
                              dsnn_cfg_where(cfg, "metric", where, sizeof where),
                              dsnn_cfg_path(cfg), metric);
    memcpy(dst, metric, strlen(metric) + 1);
    return DSNN_OK;
}

enum dsnn_status su_state_write_head(FILE *f, const char tag[4], uint64_t version,
                                     const char *label, struct dsnn_error *err)
{
    char what[64];
    enum dsnn_status st;
    snprintf(what, sizeof what, "%s tag", label);
    if ((st = dsnn_io_write(f, tag, 4, what, err)))
        return st;
    snprintf(what, sizeof what, "%s version", label);
    return dsnn_io_write_u64(f, version, what, err);
}

enum dsnn_status su_state_read_head(FILE *f, const char tag[4], uint64_t version,
                                    const char *label, const char *name, struct dsnn_error *err)
{
    char what[64];
    uint64_t saved = 0;
    snprintf(what, sizeof what, "%s version", label);
    if (dsnn_io_expect_tag(f, tag, err) || dsnn_io_read_u64(f, &saved, what, err))
        return dsnn_error_prefix(err, "%s state", name);
    if (saved != version)
        return dsnn_error_set(err, DSNN_ERR_FORMAT, "%s state: version %llu, expected %llu", name,
                              (unsigned long long)saved, (unsigned long long)version);
    return DSNN_OK;
}

void *su_reserve_one(void *items, size_t *cap, size_t n, size_t size)
{
    if (n < *cap)
        return items;
    size_t c = *cap ? *cap * 2 : 16;
    void *p = realloc(items, c * size);
    if (p)
        *cap = c;
    return p;
}

bool su_score(const struct dsnn_metrics *m, const char *metric, bool maximize, double *score)
{
    double v;
    if (!dsnn_metrics_get(m, metric, &v))
        return false;
    *score = isnan(v) ? -INFINITY : maximize ? v : -v;
    return true;
}

int su_cmp_double(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return a < b ? -1 : a > b;
}

enum dsnn_search_decision su_on_result_continue(void *state, int trial_index, int epoch,
                                                const struct dsnn_metrics *m)
{
    (void)state, (void)trial_index, (void)epoch, (void)m;
    return DSNN_SEARCH_CONTINUE;
}

void su_on_complete_keep(void *state, int trial_index, bool error)
{
    (void)state, (void)trial_index, (void)error;
}
