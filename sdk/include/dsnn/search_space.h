/* dsnn/search_space.h - search spaces of distributions, shared by the search plugins (random,
 * asha, median-stop, pbt).
 *
 * A space is a group of the `search` configuration that mirrors the configuration tree; each
 * leaf says how the key at that path is drawn:
 *
 *     space = {
 *       model = {
 *         learning_rate = { dist = "loguniform"; low = 1e-4; high = 1e-1; };
 *         on_perc = { dist = "choice"; values = [0.02, 0.05]; };
 *         momentum = [0.8, 0.9];                 # an array or list: shorthand for choice
 *         weight_decay = { dist = "uniform"; low = 0.0; high = 1e-3; };
 *         seed_offset = { dist = "randint"; low = 0; high = 10; };   # low <= x < high
 *         init_scale = { dist = "normal"; mean = 1.0; std = 0.1; };
 *         optim_alg = "SGD";                     # a scalar: a fixed override
 *       };
 *       network = { hidden_sizes = ([300, 100], [1000, 1000]); };  # array-valued choices
 *     };
 *
 * A point of the space holds one number per dimension (the index of the choice for `choice`),
 * so that strategies can save, compare and perturb points; dsnn_search_space_params turns it
 * into the parameter set a strategy's suggest returns. */
#ifndef DSNN_SEARCH_SPACE_H
#define DSNN_SEARCH_SPACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "dsnn/config.h"
#include "dsnn/export.h"
#include "dsnn/plugin.h"
#include "dsnn/rng.h"
#include "dsnn/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Values are stored in strategies' saved states: append only. */
enum dsnn_dist {
    DSNN_DIST_FIXED = 0,      /* a scalar of the space: always that value */
    DSNN_DIST_CHOICE = 1,     /* one of `values` (uniformly) */
    DSNN_DIST_UNIFORM = 2,    /* low <= x < high */
    DSNN_DIST_LOGUNIFORM = 3, /* log x uniform in [log low, log high); 0 < low < high */
    DSNN_DIST_RANDINT = 4,    /* integer, low <= x < high */
    DSNN_DIST_NORMAL = 5      /* mean + std * N(0, 1); std > 0 */
};
/* "fixed", "choice", "uniform", "loguniform", "randint", "normal"; "unknown" otherwise. */
DSNN_API const char *dsnn_dist_str(enum dsnn_dist d);

struct dsnn_search_dim {
    char path[DSNN_PARAM_PATH_MAX]; /* dotted configuration path, e.g. "model.learning_rate" */
    enum dsnn_dist dist;
    double a, b; /* uniform, loguniform, randint: low, high; normal: mean, std */
    /* choice: the array/list of choices; fixed: the scalar (owned by the configuration) */
    const struct dsnn_cfg *values;
    size_t n_values; /* choice: number of choices; 1 otherwise */
};

struct dsnn_search_space {
    size_t n;
    struct dsnn_search_dim dims[DSNN_PARAMS_MAX];
};

/* A point: x[i] is the value of dims[i] (the choice index for choice, 0 for fixed). */
struct dsnn_search_point {
    double x[DSNN_PARAMS_MAX];
};

/* Reads the group `key` of the search group (e.g. "space") into out. A missing key gives an
 * empty space (trials without overrides). Errors are DSNN_ERR_CONFIG naming FILE:LINE and the
 * key, e.g. "exp.cfg:4: key 'search.space.model.lr.dist': \"logunif\" is not one of
 * \"choice\", \"uniform\", \"loguniform\", \"randint\", \"normal\"".
 * The space refers to the configuration (choices, fixed values): it must outlive the space. */
DSNN_API enum dsnn_status dsnn_search_space_parse(const struct dsnn_cfg *search, const char *key,
                                                  struct dsnn_search_space *out,
                                                  struct dsnn_error *err);

/* The random stream of trial trial_index: derived from (seed, trial_index), stream
 * DSNN_RNG_STREAM_SEARCH, so that a trial's sample does not depend on the order in which trials
 * are suggested. */
DSNN_API void dsnn_search_trial_rng(struct dsnn_rng *r, uint64_t seed, int trial_index);

/* One draw of a dimension's distribution. */
DSNN_API double dsnn_search_dim_sample(const struct dsnn_search_dim *d, struct dsnn_rng *r);
/* Draws every dimension in order. */
DSNN_API void dsnn_search_space_sample(const struct dsnn_search_space *s, struct dsnn_rng *r,
                                       struct dsnn_search_point *out);
/* Whether p is a possible draw (choice index and randint integer in range, bounds respected,
 * finite); for validating restored states. */
DSNN_API bool dsnn_search_space_contains(const struct dsnn_search_space *s,
                                         const struct dsnn_search_point *p);

/* The parameter set of a point, in the space's order: choice and fixed values refer to the
 * configuration's settings (DSNN_VALUE_CFG), randint gives DSNN_VALUE_INT, the others
 * DSNN_VALUE_FLOAT. */
DSNN_API enum dsnn_status dsnn_search_space_params(const struct dsnn_search_space *s,
                                                   const struct dsnn_search_point *p,
                                                   struct dsnn_param_set *out,
                                                   struct dsnn_error *err);

#ifdef __cplusplus
}
#endif
#endif
