/* tests/plugins/oksearch.c - test-only search strategy "oksearch".
 *
 * Without `path`: experiment.num_samples trials with no overrides. With path = "model.x" and
 * values = [a, b, ...]: len(values) * num_samples trials, trial i setting path to
 * values[i % len(values)] (integral values as integers). stop_epoch >= 0 stops every trial after
 * that epoch (for early-stop tests). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dsnn/dsnn.h"

#define OKSEARCH_VALUES_MAX 64

struct oksearch {
    char path[DSNN_PARAM_PATH_MAX];
    double values[OKSEARCH_VALUES_MAX];
    size_t n_values;
    int num_samples;
    int64_t stop_epoch;
};

static const struct dsnn_key_doc oksearch_keys[] = {
    {"path", DSNN_KEY_STRING, "\"\"", "dotted config path to vary, e.g. \"model.crash_epoch\""},
    {"values", DSNN_KEY_FLOAT_ARRAY, "[]", "values of path, one trial each (times num_samples)"},
    {"stop_epoch", DSNN_KEY_INT, "-1", "answer STOP after this epoch (-1: never)"},
};

static enum dsnn_status oksearch_create(const struct dsnn_cfg *cfg,
                                        const struct dsnn_search_ctx *ctx, void **state,
                                        struct dsnn_error *err)
{
    struct oksearch *s = calloc(1, sizeof(*s));
    if (!s)
        return dsnn_error_set(err, DSNN_ERR_NOMEM, "oksearch: out of memory");
    const char *path;
    enum dsnn_status st;
    if ((st = dsnn_cfg_string(cfg, "path", "", &path, err)) ||
        (st = dsnn_cfg_float_array(cfg, "values", s->values, OKSEARCH_VALUES_MAX, &s->n_values,
                                   err)) ||
        (st = dsnn_cfg_int(cfg, "stop_epoch", -1, &s->stop_epoch, err))) {
        free(s);
        return st;
    }
    if (strlen(path) >= sizeof(s->path)) {
        free(s);
        return dsnn_error_set(err, DSNN_ERR_CONFIG, "oksearch: path '%s' is too long", path);
    }
    strcpy(s->path, path);
    if (s->path[0] && s->n_values == 0) {
        free(s);
        return dsnn_error_set(err, DSNN_ERR_CONFIG, "oksearch: path needs values = [...]");
    }
    s->num_samples = ctx && ctx->num_samples > 0 ? ctx->num_samples : 1;
    *state = s;
    return DSNN_OK;
}

static enum dsnn_status oksearch_suggest(void *state, int trial_index, struct dsnn_param_set *out,
                                         bool *done, struct dsnn_error *err)
{
    struct oksearch *s = state;
    size_t per = s->path[0] ? s->n_values : 1;
    if (trial_index < 0 || (size_t)trial_index >= per * (size_t)s->num_samples) {
        *done = true;
        return DSNN_OK;
    }
    *done = false;
    if (!s->path[0])
        return DSNN_OK;
    double v = s->values[(size_t)trial_index % s->n_values];
    struct dsnn_value val;
    if (v == floor(v) && fabs(v) < 9e15) {
        val.type = DSNN_VALUE_INT;
        val.u.i = (int64_t)v;
    } else {
        val.type = DSNN_VALUE_FLOAT;
        val.u.f = v;
    }
    return dsnn_param_set_put(out, s->path, &val, err);
}

static enum dsnn_search_decision oksearch_on_result(void *state, int trial_index, int epoch,
                                                    const struct dsnn_metrics *m)
{
    (void)trial_index;
    (void)m;
    struct oksearch *s = state;
    return s->stop_epoch >= 0 && epoch >= s->stop_epoch ? DSNN_SEARCH_STOP : DSNN_SEARCH_CONTINUE;
}

static void oksearch_destroy(void *state)
{
    free(state);
}

static const struct dsnn_search_ops oksearch_ops = {
    .create = oksearch_create,
    .suggest = oksearch_suggest,
    .on_result = oksearch_on_result,
    .destroy = oksearch_destroy,
};

static const struct dsnn_component components[] = {
    DSNN_COMPONENT(DSNN_KIND_SEARCH, "oksearch", "1.0.0",
                   "test-only: num_samples trials, optionally varying one path", oksearch_ops,
                   oksearch_keys),
};
DSNN_PLUGIN_DEFINE("oksearch", components)
