/* random - search plugin: experiment.num_samples trials drawn from a space of distributions.
 *
 *     search = { plugin = "random";
 *                space = { model = {
 *                    learning_rate = { dist = "loguniform"; low = 1e-4; high = 1e-1; };
 *                    on_perc = { dist = "choice"; values = [0.02, 0.05]; };
 *                    momentum = [0.8, 0.9];            # shorthand for choice
 *                }; }; };
 *
 * The `space` group mirrors the configuration tree (see dsnn/search_space.h): a leaf is a
 * distribution group { dist = "choice" | "uniform" | "loguniform" | "randint" | "normal"; ... },
 * an array/list (choice) or a scalar (fixed override). Trial i's values are drawn from its own
 * stream, derived from (experiment.seed, i): trial i is a pure function of i, whatever order
 * the host asks in, so the strategy has no state to save. */
#include <dsnn/dsnn.h>

#include <stdlib.h>

#include "../search_util.h"

static const struct dsnn_key_spec random_keys[] = {
    DSNN_KEY_PLUGIN("random"),
    {.name = "space", .type = DSNN_KEY_GROUP, .default_value = "{}",
     .doc = "tree mirroring the configuration; leaves: { dist = \"choice\" (values) | \"uniform\" | "
     "\"loguniform\" | \"randint\" (low, high; high excluded) | \"normal\" (mean, std) }, an "
     "array/list (choice) or a scalar (fixed)"},
};

static enum dsnn_status random_create(const struct dsnn_cfg *cfg,
                                      const struct dsnn_search_ctx *ctx, void **state,
                                      struct dsnn_error *err)
{
    struct su_draw *r = calloc(1, sizeof *r); /* the state: su_draw_suggest serves as suggest */
    if (!r)
        return dsnn_error_set(err, DSNN_ERR_NOMEM, "out of memory");
    enum dsnn_status st = su_draw_init(r, cfg, ctx, err);
    if (st != DSNN_OK) {
        free(r);
        return st;
    }
    *state = r;
    return DSNN_OK;
}

DSNN_SEARCH_PLUGIN("random", "1.0.0", "Random search: num_samples trials drawn from distributions "
                   "over any config key",
                   random_keys,
                   .create = random_create, .suggest = su_draw_suggest,
                   SU_NO_DECISIONS,
                   .destroy = free)
