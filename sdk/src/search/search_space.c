/* search/search_space.c - search spaces of distributions (see dsnn/search_space.h). */
#include "dsnn/search_space.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static const char *const k_dist_names[] = {"fixed",  "choice",  "uniform", "loguniform",
                                           "randint", "normal", NULL};

const char *dsnn_dist_str(enum dsnn_dist d)
{
    if ((int)d < 0 || (size_t)d >= sizeof k_dist_names / sizeof k_dist_names[0] - 1)
        return "unknown";
    return k_dist_names[d];
}

/* The keys a distribution group may hold besides `dist`. */
static const char *const *dist_keys(enum dsnn_dist d)
{
    static const char *const choice[] = {"values", NULL};
    static const char *const bounds[] = {"low", "high", NULL};
    static const char *const normal[] = {"mean", "std", NULL};
    switch (d) {
    case DSNN_DIST_CHOICE: return choice;
    case DSNN_DIST_NORMAL: return normal;
    default: return bounds;
    }
}

static bool is_list(const struct dsnn_cfg *c)
{
    enum dsnn_cfg_type t = dsnn_cfg_type(c);
    return t == DSNN_CFG_ARRAY || t == DSNN_CFG_LIST;
}

/* Reads a `{ dist = ...; ... }` group into d. */
/* dist = "choice": values, a non-empty array or list. */
static enum dsnn_status parse_choice(const struct dsnn_cfg *g, const char *path,
                                     struct dsnn_search_dim *d, struct dsnn_error *err)
{
    char where[300];
    const struct dsnn_cfg *v = NULL;
    for (size_t i = 0; i < dsnn_cfg_count(g) && !v; i++)
        if (strcmp(dsnn_cfg_child_name(g, i), "values") == 0)
            v = dsnn_cfg_child(g, i);
    if (!is_list(v))
        return dsnn_error_set(err, DSNN_ERR_CONFIG,
                              "%s: key '%s.values': expected an array or list of choices",
                              dsnn_cfg_where(g, "values", where, sizeof where), path);
    if (dsnn_cfg_count(v) == 0)
        return dsnn_error_set(err, DSNN_ERR_CONFIG,
                              "%s: key '%s.values': empty list of choices",
                              dsnn_cfg_where(g, "values", where, sizeof where), path);
    d->values = v;
    d->n_values = dsnn_cfg_count(v);
    return DSNN_OK;
}

/* dist = "randint": low <= x < high, integers within +-2^52. */
static enum dsnn_status parse_randint(const struct dsnn_cfg *g, const char *path,
                                      struct dsnn_search_dim *d, struct dsnn_error *err)
{
    char where[300];
    enum dsnn_status st;
    int64_t lo = 0, hi = 0;
    if ((st = dsnn_cfg_int(g, "low", 0, &lo, err)) != DSNN_OK ||
        (st = dsnn_cfg_int(g, "high", 0, &hi, err)) != DSNN_OK)
        return st;
    if (hi <= lo)
        return dsnn_error_set(err, DSNN_ERR_CONFIG,
                              "%s: key '%s.high': %lld must be greater than low = %lld "
                              "(randint draws low <= x < high)",
                              dsnn_cfg_where(g, "high", where, sizeof where), path,
                              (long long)hi, (long long)lo);
    if (lo < -(INT64_C(1) << 52) || hi > (INT64_C(1) << 52))
        return dsnn_error_set(err, DSNN_ERR_CONFIG,
                              "%s: key '%s': bounds must lie within +-2^52",
                              dsnn_cfg_where(g, NULL, where, sizeof where), path);
    d->a = (double)lo;
    d->b = (double)hi;
    return DSNN_OK;
}

/* dist = "normal": finite mean (d->a), finite std > 0 (d->b). */
static enum dsnn_status check_normal(const struct dsnn_cfg *g, const char *path,
                                     const struct dsnn_search_dim *d, struct dsnn_error *err)
{
    char where[300];
    if (!isfinite(d->a))
        return dsnn_error_set(err, DSNN_ERR_CONFIG, "%s: key '%s.mean': must be finite",
                              dsnn_cfg_where(g, "mean", where, sizeof where), path);
    if (!(d->b > 0) || !isfinite(d->b))
        return dsnn_error_set(err, DSNN_ERR_CONFIG,
                              "%s: key '%s.std': %g must be a finite number > 0",
                              dsnn_cfg_where(g, "std", where, sizeof where), path, d->b);
    return DSNN_OK;
}

/* dist = "uniform" / "loguniform": finite low (d->a) < high (d->b), low > 0 for loguniform. */
static enum dsnn_status check_uniform(const struct dsnn_cfg *g, const char *path,
                                      const struct dsnn_search_dim *d, struct dsnn_error *err)
{
    char where[300];
    if (!isfinite(d->a) || !isfinite(d->b) || !(d->b > d->a))
        return dsnn_error_set(err, DSNN_ERR_CONFIG,
                              "%s: key '%s.high': %g must be greater than low = %g",
                              dsnn_cfg_where(g, "high", where, sizeof where), path, d->b,
                              d->a);
    if (d->dist == DSNN_DIST_LOGUNIFORM && !(d->a > 0))
        return dsnn_error_set(err, DSNN_ERR_CONFIG,
                              "%s: key '%s.low': %g must be > 0 for dist \"loguniform\"",
                              dsnn_cfg_where(g, "low", where, sizeof where), path, d->a);
    return DSNN_OK;
}

static enum dsnn_status parse_dist(const struct dsnn_cfg *g, struct dsnn_search_dim *d,
                                   struct dsnn_error *err)
{
    /* dsnn_cfg_enum's choices: the names users may write (not "fixed"). */
    static const char *const names[] = {"choice", "uniform", "loguniform", "randint", "normal",
                                        NULL};
    char where[300], path[256];
    snprintf(path, sizeof path, "%s", dsnn_cfg_path(g));
    int idx = 0;
    enum dsnn_status st = dsnn_cfg_enum(g, "dist", NULL, names, &idx, err);
    if (st != DSNN_OK)
        return st;
    d->dist = (enum dsnn_dist)(idx + 1);
    const char *const *allowed = dist_keys(d->dist);
    for (size_t i = 0; i < dsnn_cfg_count(g); i++) {
        const char *name = dsnn_cfg_child_name(g, i);
        bool ok = strcmp(name, "dist") == 0;
        for (size_t k = 0; allowed[k] && !ok; k++)
            ok = strcmp(name, allowed[k]) == 0;
        if (!ok)
            return dsnn_error_set(err, DSNN_ERR_CONFIG,
                                  "%s: key '%s.%s' is not a key of dist \"%s\" (keys: dist, %s%s%s)",
                                  dsnn_cfg_where(g, name, where, sizeof where), path, name,
                                  dsnn_dist_str(d->dist), allowed[0], allowed[1] ? ", " : "",
                                  allowed[1] ? allowed[1] : "");
    }
    for (size_t k = 0; allowed[k]; k++)
        if (!dsnn_cfg_has(g, allowed[k]))
            return dsnn_error_set(err, DSNN_ERR_CONFIG,
                                  "%s: key '%s.%s' is required for dist \"%s\"",
                                  dsnn_cfg_where(g, NULL, where, sizeof where), path, allowed[k],
                                  dsnn_dist_str(d->dist));
    d->n_values = 1;
    if (d->dist == DSNN_DIST_CHOICE)
        return parse_choice(g, path, d, err);
    if (d->dist == DSNN_DIST_RANDINT)
        return parse_randint(g, path, d, err);
    /* the others have two float keys, in d->a and d->b */
    if ((st = dsnn_cfg_float(g, allowed[0], 0, &d->a, err)) != DSNN_OK ||
        (st = dsnn_cfg_float(g, allowed[1], 0, &d->b, err)) != DSNN_OK)
        return st;
    return d->dist == DSNN_DIST_NORMAL ? check_normal(g, path, d, err)
                                       : check_uniform(g, path, d, err);
}

static enum dsnn_status collect(struct dsnn_search_space *s, const struct dsnn_cfg *node,
                                const char *prefix, struct dsnn_error *err)
{
    char where[300];
    for (size_t i = 0; i < dsnn_cfg_count(node); i++) {
        const struct dsnn_cfg *c = dsnn_cfg_child(node, i);
        char path[DSNN_PARAM_PATH_MAX];
        int w = snprintf(path, sizeof path, "%s%s%s", prefix, *prefix ? "." : "", dsnn_cfg_name(c));
        if (w < 0 || (size_t)w >= sizeof path)
            return dsnn_error_set(err, DSNN_ERR_CONFIG, "%s: key '%s': path too long",
                                  dsnn_cfg_where(c, NULL, where, sizeof where), dsnn_cfg_path(c));
        enum dsnn_cfg_type t = dsnn_cfg_type(c);
        if (t == DSNN_CFG_GROUP && !dsnn_cfg_has(c, "dist")) {
            enum dsnn_status st = collect(s, c, path, err);
            if (st != DSNN_OK)
                return st;
            continue;
        }
        if (strncmp(path, "experiment.", 11) == 0 || strncmp(path, "search.", 7) == 0)
            return dsnn_error_set(err, DSNN_ERR_CONFIG,
                                  "%s: key '%s': the experiment and search groups cannot be "
                                  "searched",
                                  dsnn_cfg_where(c, NULL, where, sizeof where), dsnn_cfg_path(c));
        if (s->n >= DSNN_PARAMS_MAX)
            return dsnn_error_set(err, DSNN_ERR_CONFIG, "%s: key '%s': more than %d searched keys",
                                  dsnn_cfg_where(c, NULL, where, sizeof where), dsnn_cfg_path(c),
                                  DSNN_PARAMS_MAX);
        struct dsnn_search_dim *d = &s->dims[s->n];
        memset(d, 0, sizeof *d);
        memcpy(d->path, path, (size_t)w + 1);
        d->n_values = 1;
        if (t == DSNN_CFG_GROUP) {
            enum dsnn_status st = parse_dist(c, d, err);
            if (st != DSNN_OK)
                return st;
        } else if (is_list(c)) {
            if (dsnn_cfg_count(c) == 0)
                return dsnn_error_set(err, DSNN_ERR_CONFIG, "%s: key '%s': empty list of choices",
                                      dsnn_cfg_where(c, NULL, where, sizeof where),
                                      dsnn_cfg_path(c));
            d->dist = DSNN_DIST_CHOICE;
            d->values = c;
            d->n_values = dsnn_cfg_count(c);
        } else {
            d->dist = DSNN_DIST_FIXED;
            d->values = c;
        }
        s->n++;
    }
    return DSNN_OK;
}

enum dsnn_status dsnn_search_space_parse(const struct dsnn_cfg *search, const char *key,
                                         struct dsnn_search_space *out, struct dsnn_error *err)
{
    memset(out, 0, sizeof *out);
    if (!dsnn_cfg_has(search, key))
        return DSNN_OK;
    const struct dsnn_cfg *tree = dsnn_cfg_group(search, key);
    if (!tree) {
        char where[300];
        return dsnn_error_set(err, DSNN_ERR_CONFIG,
                              "%s: key '%s%s%s': expected a group mirroring the configuration, "
                              "like { model = { learning_rate = { dist = \"loguniform\"; "
                              "low = 1e-4; high = 1e-1; }; }; }",
                              dsnn_cfg_where(search, key, where, sizeof where),
                              dsnn_cfg_path(search), *dsnn_cfg_path(search) ? "." : "", key);
    }
    enum dsnn_status st = collect(out, tree, "", err);
    if (st != DSNN_OK)
        out->n = 0;
    return st;
}

void dsnn_search_trial_rng(struct dsnn_rng *r, uint64_t seed, int trial_index)
{
    dsnn_rng_seed(r, dsnn_seed_mix(seed, (uint64_t)(int64_t)trial_index), DSNN_RNG_STREAM_SEARCH);
}

double dsnn_search_dim_sample(const struct dsnn_search_dim *d, struct dsnn_rng *r)
{
    switch (d->dist) {
    case DSNN_DIST_CHOICE: return (double)dsnn_rng_below(r, (uint64_t)d->n_values);
    case DSNN_DIST_UNIFORM: {
        double x = d->a + (d->b - d->a) * dsnn_rng_uniform(r);
        return x < d->b ? x : d->a; /* rounding could reach high */
    }
    case DSNN_DIST_LOGUNIFORM: {
        double la = log(d->a), lb = log(d->b);
        double x = exp(la + (lb - la) * dsnn_rng_uniform(r));
        return x < d->a ? d->a : x < d->b ? x : d->a;
    }
    case DSNN_DIST_RANDINT: return d->a + (double)dsnn_rng_below(r, (uint64_t)(d->b - d->a));
    case DSNN_DIST_NORMAL: return d->a + d->b * dsnn_rng_normal(r);
    case DSNN_DIST_FIXED:
    default: return 0;
    }
}

void dsnn_search_space_sample(const struct dsnn_search_space *s, struct dsnn_rng *r,
                              struct dsnn_search_point *out)
{
    memset(out, 0, sizeof *out);
    for (size_t i = 0; i < s->n; i++)
        out->x[i] = dsnn_search_dim_sample(&s->dims[i], r);
}

bool dsnn_search_space_contains(const struct dsnn_search_space *s,
                                const struct dsnn_search_point *p)
{
    for (size_t i = 0; i < s->n; i++) {
        const struct dsnn_search_dim *d = &s->dims[i];
        double x = p->x[i];
        if (!isfinite(x))
            return false;
        switch (d->dist) {
        case DSNN_DIST_FIXED:
            if (x != 0)
                return false;
            break;
        case DSNN_DIST_CHOICE:
            if (x < 0 || x >= (double)d->n_values || x != floor(x))
                return false;
            break;
        case DSNN_DIST_RANDINT:
            if (x != floor(x) || x < d->a || x >= d->b)
                return false;
            break;
        case DSNN_DIST_UNIFORM:
        case DSNN_DIST_LOGUNIFORM:
            if (x < d->a || x >= d->b)
                return false;
            break;
        case DSNN_DIST_NORMAL: break;
        default: return false;
        }
    }
    return true;
}

enum dsnn_status dsnn_search_space_params(const struct dsnn_search_space *s,
                                          const struct dsnn_search_point *p,
                                          struct dsnn_param_set *out, struct dsnn_error *err)
{
    out->n = 0;
    for (size_t i = 0; i < s->n; i++) {
        const struct dsnn_search_dim *d = &s->dims[i];
        struct dsnn_value v;
        memset(&v, 0, sizeof v);
        switch (d->dist) {
        case DSNN_DIST_FIXED:
            v.type = DSNN_VALUE_CFG;
            v.u.cfg = d->values;
            break;
        case DSNN_DIST_CHOICE: {
            double k = p->x[i];
            if (!(k >= 0 && k < (double)d->n_values))
                return dsnn_error_set(err, DSNN_ERR_INTERNAL,
                                      "search space: choice index %g of '%s' out of range [0, %zu)",
                                      k, d->path, d->n_values);
            v.type = DSNN_VALUE_CFG;
            v.u.cfg = dsnn_cfg_child(d->values, (size_t)k);
            break;
        }
        case DSNN_DIST_RANDINT:
            v.type = DSNN_VALUE_INT;
            v.u.i = (int64_t)llround(p->x[i]);
            break;
        default:
            v.type = DSNN_VALUE_FLOAT;
            v.u.f = p->x[i];
            break;
        }
        enum dsnn_status st = dsnn_param_set_put(out, d->path, &v, err);
        if (st != DSNN_OK)
            return st;
    }
    return DSNN_OK;
}
