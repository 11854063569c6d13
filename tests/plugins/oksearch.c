/* tests/plugins/oksearch.c - test-only search strategy "oksearch".
 *
 * Without `path`: experiment.num_samples trials with no overrides. With path = "model.x" and
 * values = [a, b, ...]: len(values) * num_samples trials, trial i setting path to
 * values[i % len(values)] (integral values as integers). stop_epoch >= 0 stops every trial after
 * that epoch (for early-stop tests). For the runner's search-decision tests:
 *   stop_after_results = N  answers STOP to every result from the N-th one on (counted over all
 *                           trials): a decision that depends on the strategy's state, which
 *                           save / restore (or the host's replay of the journal) must carry
 *                           over a resume; no_save = true makes save answer
 *                           DSNN_ERR_UNSUPPORTED (the host then replays the journal);
 *   pause_epoch = E         answers PAUSE after epoch E;
 *   perturb_epoch = E       answers PERTURB after epoch E (of trial perturb_trial, -1: every
 *                           trial); exploit names trial perturb_source (-1: the trial itself)
 *                           and sets path to perturb_value. */
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
    int64_t stop_after_results, pause_epoch, perturb_epoch, perturb_trial, perturb_source;
    double perturb_value;
    bool no_save;
    uint64_t n_results, n_completed; /* state */
};

static const struct dsnn_key_spec oksearch_keys[] = {
    {.name = "path", .type = DSNN_KEY_STRING, .def_str = "", .doc = "dotted config path to vary, e.g. \"model.crash_epoch\""},
    {.name = "values", .type = DSNN_KEY_FLOAT_ARRAY, .doc = "values of path, one trial each (times num_samples)"},
    {.name = "stop_epoch", .type = DSNN_KEY_INT, .def = -1, .doc = "answer STOP after this epoch (-1: never)"},
    {.name = "stop_after_results", .type = DSNN_KEY_INT, .def = -1,
     .doc = "answer STOP from the N-th result on, over all trials (-1: never)"},
    {.name = "no_save", .type = DSNN_KEY_BOOL, .def = false, .doc = "save answers DSNN_ERR_UNSUPPORTED"},
    {.name = "pause_epoch", .type = DSNN_KEY_INT, .def = -1, .doc = "answer PAUSE after this epoch (-1: never)"},
    {.name = "perturb_epoch", .type = DSNN_KEY_INT, .def = -1, .doc = "answer PERTURB after this epoch (-1: never)"},
    {.name = "perturb_trial", .type = DSNN_KEY_INT, .def = -1, .doc = "trial that is perturbed (-1: every trial)"},
    {.name = "perturb_source", .type = DSNN_KEY_INT, .def = -1, .doc = "trial exploit() copies (-1: the trial itself)"},
    {.name = "perturb_value", .type = DSNN_KEY_FLOAT, .def = 0, .doc = "new value of path after a perturbation"},
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
        (st = dsnn_cfg_int(cfg, "stop_epoch", -1, &s->stop_epoch, err)) ||
        (st = dsnn_cfg_int(cfg, "stop_after_results", -1, &s->stop_after_results, err)) ||
        (st = dsnn_cfg_bool(cfg, "no_save", false, &s->no_save, err)) ||
        (st = dsnn_cfg_int(cfg, "pause_epoch", -1, &s->pause_epoch, err)) ||
        (st = dsnn_cfg_int(cfg, "perturb_epoch", -1, &s->perturb_epoch, err)) ||
        (st = dsnn_cfg_int(cfg, "perturb_trial", -1, &s->perturb_trial, err)) ||
        (st = dsnn_cfg_int(cfg, "perturb_source", -1, &s->perturb_source, err)) ||
        (st = dsnn_cfg_float(cfg, "perturb_value", 0, &s->perturb_value, err))) {
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

static enum dsnn_status put_value(const struct oksearch *s, double v, struct dsnn_param_set *out,
                                  struct dsnn_error *err)
{
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
    return put_value(s, s->values[(size_t)trial_index % s->n_values], out, err);
}

static enum dsnn_search_decision oksearch_on_result(void *state, int trial_index, int epoch,
                                                    const struct dsnn_metrics *m)
{
    (void)m;
    struct oksearch *s = state;
    s->n_results++;
    if (s->stop_after_results > 0 && s->n_results >= (uint64_t)s->stop_after_results)
        return DSNN_SEARCH_STOP;
    if (s->perturb_epoch >= 0 && epoch == s->perturb_epoch &&
        (s->perturb_trial < 0 || s->perturb_trial == trial_index))
        return DSNN_SEARCH_PERTURB;
    if (s->pause_epoch >= 0 && epoch == s->pause_epoch)
        return DSNN_SEARCH_PAUSE;
    return s->stop_epoch >= 0 && epoch >= s->stop_epoch ? DSNN_SEARCH_STOP : DSNN_SEARCH_CONTINUE;
}

static void oksearch_on_complete(void *state, int trial_index, bool error)
{
    (void)trial_index, (void)error;
    ((struct oksearch *)state)->n_completed++;
}

static enum dsnn_status oksearch_save(void *state, FILE *f, struct dsnn_error *err)
{
    struct oksearch *s = state;
    if (s->no_save)
        return dsnn_error_set(err, DSNN_ERR_UNSUPPORTED, "oksearch: no_save");
    enum dsnn_status st;
    if ((st = dsnn_io_write_u64(f, s->n_results, "oksearch results", err)) ||
        (st = dsnn_io_write_u64(f, s->n_completed, "oksearch completed", err)))
        return st;
    return DSNN_OK;
}

static enum dsnn_status oksearch_restore(void *state, FILE *f, struct dsnn_error *err)
{
    struct oksearch *s = state;
    enum dsnn_status st;
    if ((st = dsnn_io_read_u64(f, &s->n_results, "oksearch results", err)) ||
        (st = dsnn_io_read_u64(f, &s->n_completed, "oksearch completed", err)))
        return st;
    return DSNN_OK;
}

static enum dsnn_status oksearch_exploit(void *state, int trial_index, int *source_trial,
                                         struct dsnn_param_set *new_params,
                                         struct dsnn_error *err)
{
    struct oksearch *s = state;
    *source_trial = s->perturb_source >= 0 ? (int)s->perturb_source : trial_index;
    new_params->n = 0;
    if (!s->path[0])
        return DSNN_OK;
    return put_value(s, s->perturb_value, new_params, err);
}

static void oksearch_destroy(void *state)
{
    free(state);
}

static const struct dsnn_search_ops oksearch_ops = {
    .create = oksearch_create,
    .suggest = oksearch_suggest,
    .on_result = oksearch_on_result,
    .on_complete = oksearch_on_complete,
    .save = oksearch_save,
    .restore = oksearch_restore,
    .destroy = oksearch_destroy,
    .exploit = oksearch_exploit,
};

static const struct dsnn_component components[] = {
    DSNN_COMPONENT(DSNN_KIND_SEARCH, "oksearch", "1.0.0",
                   "test-only: num_samples trials, optionally varying one path", oksearch_ops,
                   oksearch_keys),
};
DSNN_PLUGIN_DEFINE("oksearch", components)
