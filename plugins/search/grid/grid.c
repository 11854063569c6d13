/* grid - search plugin: Cartesian product over any configuration key, x num_samples.
 *
 *     search = { plugin = "grid";
 *                grid = { model = { on_perc = [0.02, 0.04]; learning_rate = [0.1, 0.01]; };
 *                         network = { hidden_sizes = ( [100, 100], [1000, 1000] ); }; }; };
 *
 * The `grid` group mirrors the configuration tree. Every array or list in it is a list of
 * choices for the key at that path (a list of arrays gives array-valued choices); a scalar is a
 * fixed override. Trials enumerate the product with the last key varying fastest, and the whole
 * grid is repeated experiment.num_samples times (sample s of combination c is trial
 * s * n_combinations + c), as Ray Tune's grid_search does. */
#include <dsnn/dsnn.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../search_util.h"

struct grid_axis {
    char path[DSNN_PARAM_PATH_MAX];
    const struct dsnn_cfg *choices; /* array/list setting, or a scalar (one fixed choice) */
    size_t n;
};

struct grid {
    struct grid_axis axes[DSNN_PARAMS_MAX];
    size_t n_axes;
    long long n_combinations;
    int num_samples;
};

static const struct dsnn_key_spec grid_keys[] = {
    DSNN_KEY_PLUGIN("grid"),
    {.name = "grid", .type = DSNN_KEY_GROUP, .default_value = "{}",
     .doc = "tree mirroring the configuration; arrays/lists are the choices of each key"},
};

static enum dsnn_status collect(struct grid *g, const struct dsnn_cfg *node, const char *prefix,
                                struct dsnn_error *err)
{
    for (size_t i = 0; i < dsnn_cfg_count(node); i++) {
        const struct dsnn_cfg *c = dsnn_cfg_child(node, i);
        char path[DSNN_PARAM_PATH_MAX];
        int w = snprintf(path, sizeof path, "%s%s%s", prefix, *prefix ? "." : "", dsnn_cfg_name(c));
        char where[300];
        if (w < 0 || (size_t)w >= sizeof path)
            return dsnn_error_set(err, DSNN_ERR_CONFIG, "%s: search.grid: path too long",
                                  dsnn_cfg_where(c, NULL, where, sizeof where));
        enum dsnn_cfg_type t = dsnn_cfg_type(c);
        if (t == DSNN_CFG_GROUP) {
            enum dsnn_status st = collect(g, c, path, err);
            if (st != DSNN_OK)
                return st;
            continue;
        }
        if (g->n_axes >= DSNN_PARAMS_MAX)
            return dsnn_error_set(err, DSNN_ERR_CONFIG,
                                  "%s: search.grid: more than %d searched keys",
                                  dsnn_cfg_where(c, NULL, where, sizeof where), DSNN_PARAMS_MAX);
        struct grid_axis *a = &g->axes[g->n_axes++];
        strcpy(a->path, path);
        a->choices = c;
        a->n = (t == DSNN_CFG_ARRAY || t == DSNN_CFG_LIST) ? dsnn_cfg_count(c) : 1;
        if (a->n == 0)
            return dsnn_error_set(err, DSNN_ERR_CONFIG,
                                  "%s: key 'search.grid.%s': empty list of choices",
                                  dsnn_cfg_where(c, NULL, where, sizeof where), path);
        if (strncmp(path, "experiment.", 11) == 0 || strncmp(path, "search.", 7) == 0)
            return dsnn_error_set(err, DSNN_ERR_CONFIG,
                                  "%s: key 'search.grid.%s': the experiment and search groups "
                                  "cannot be searched",
                                  dsnn_cfg_where(c, NULL, where, sizeof where), path);
    }
    return DSNN_OK;
}

static enum dsnn_status grid_create(const struct dsnn_cfg *cfg, const struct dsnn_search_ctx *ctx,
                                    void **state, struct dsnn_error *err)
{
    struct grid *g = calloc(1, sizeof *g);
    if (!g)
        return dsnn_error_set(err, DSNN_ERR_NOMEM, "out of memory");
    g->num_samples = ctx->num_samples > 0 ? ctx->num_samples : 1;
    const struct dsnn_cfg *tree = dsnn_cfg_group(cfg, "grid");
    if (dsnn_cfg_has(cfg, "grid") && !tree) {
        char where[300];
        free(g);
        return dsnn_error_set(err, DSNN_ERR_CONFIG,
                              "%s: key 'search.grid': expected a group like { model = { ... }; }",
                              dsnn_cfg_where(cfg, "grid", where, sizeof where));
    }
    enum dsnn_status st = tree ? collect(g, tree, "", err) : DSNN_OK;
    if (st != DSNN_OK) {
        free(g);
        return st;
    }
    g->n_combinations = 1;
    for (size_t i = 0; i < g->n_axes; i++) {
        g->n_combinations *= (long long)g->axes[i].n;
        if (g->n_combinations > 1000000) {
            free(g);
            return dsnn_error_set(err, DSNN_ERR_CONFIG,
                                  "search.grid: more than 1000000 combinations");
        }
    }
    *state = g;
    return DSNN_OK;
}

static struct dsnn_value choice_value(const struct grid_axis *a, size_t k)
{
    const struct dsnn_cfg *c = a->n == 1 && dsnn_cfg_type(a->choices) != DSNN_CFG_ARRAY &&
                                       dsnn_cfg_type(a->choices) != DSNN_CFG_LIST
                                   ? a->choices
                                   : dsnn_cfg_child(a->choices, k);
    struct dsnn_value v = {.type = DSNN_VALUE_CFG};
    v.u.cfg = c;
    return v;
}

static enum dsnn_status grid_suggest(void *state, int trial_index, struct dsnn_param_set *out,
                                     bool *done, struct dsnn_error *err)
{
    struct grid *g = state;
    out->n = 0;
    long long total = g->n_combinations * g->num_samples;
    if (trial_index < 0 || trial_index >= total) {
        *done = true;
        return DSNN_OK;
    }
    *done = false;
    long long combo = trial_index % g->n_combinations;
    for (size_t i = g->n_axes; i-- > 0;) {
        const struct grid_axis *a = &g->axes[i];
        size_t k = (size_t)(combo % (long long)a->n);
        combo /= (long long)a->n;
        struct dsnn_value v = choice_value(a, k);
        enum dsnn_status st = dsnn_param_set_put(out, a->path, &v, err);
        if (st != DSNN_OK)
            return st;
    }
    /* dsnn_param_set_put appended in reverse axis order: restore the configuration's order. */
    for (size_t i = 0; i < out->n / 2; i++) {
        struct dsnn_param t = out->items[i];
        out->items[i] = out->items[out->n - 1 - i];
        out->items[out->n - 1 - i] = t;
    }
    return DSNN_OK;
}

/* No save / restore: stateless, trial i is a pure function of i. */
DSNN_SEARCH_PLUGIN("grid", "1.0.0", "Grid search: Cartesian product over any config key, repeated "
                   "num_samples times",
                   grid_keys,
                   .create = grid_create, .suggest = grid_suggest,
                   SU_NO_DECISIONS,
                   .destroy = free)
