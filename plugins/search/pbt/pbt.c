/* pbt - search plugin: population based training (Jaderberg et al. 2017; the rules of Ray Tune's
 * PopulationBasedTraining).
 *
 *     search = { plugin = "pbt"; perturbation_interval = 2; quantile_fraction = 0.25;
 *                resample_probability = 0.25;
 *                space = { model = {
 *                    learning_rate = { dist = "loguniform"; low = 1e-3; high = 1e-1; };
 *                    momentum = [0.8, 0.9, 0.95];
 *                }; }; };
 *
 * The population is experiment.num_samples trials, drawn from `space` like the `random`
 * plugin's (suggest(i) always returns trial i's initial draw). Time is counted in epochs done
 * (t = epoch + 1). Every result updates the trial's latest metric. When t - (time of the
 * trial's last perturbation) >= perturbation_interval, t >= burn_in_period and t < the last
 * epoch, the unfinished trials that have reported (and not yet reached the last epoch) are
 * ranked by their latest metric; with q = ceil(n * quantile_fraction) (at most n / 2), a trial
 * among the q worst gets PERTURB.
 *
 * exploit(trial) then picks a random trial among the q best as the source (the host continues
 * the trial from the source's latest checkpoint) and explores the source's parameters: each
 * numeric one (uniform, loguniform, normal, randint) is resampled with probability
 * resample_probability, else multiplied by a factor drawn from perturbation_factors
 * (default [1.2, 0.8]; randint values are truncated to integers, as Ray does); a choice is
 * resampled with probability resample_probability, else moves to the neighbouring choice below
 * or above (clamped at the ends) with equal probability; fixed values stay. The result is the
 * trial's complete parameter set from then on; the trial also takes over the source's time of
 * last perturbation (it continues from the source's checkpoint, as in Ray). Random draws of
 * exploit come from a stream of (seed, trial, number of the trial's perturbations), so they do
 * not depend on the order of events of other trials. save/restore keep the population's state. */
#include <dsnn/dsnn.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../search_util.h"

#define PBT_STATE_VERSION 1
#define PBT_MAX_FACTORS 16

struct pbt_rank {
    double score;
    int trial;
};

struct pbt_trial {
    struct dsnn_search_point x; /* current parameters */
    bool initialised;           /* x holds the initial draw or an exploit's result */
    bool has_score;
    bool finished;
    double last_score; /* metric, negated for mode "min" */
    double last_perturb_t;
    double last_t; /* time of the latest result */
    uint64_t n_perturb;
};

struct pbt {
    struct su_draw draw; /* space, seed, trials (su_draw_init) */
    int64_t max_t;
    char metric[DSNN_METRIC_NAME_MAX];
    bool maximize;
    int64_t interval, burn_in;
    double quantile, resample_p;
    double factors[PBT_MAX_FACTORS];
    size_t n_factors;
    struct pbt_trial *trials; /* num_samples */
    struct pbt_rank *order;   /* scratch for ranking */
};

#define PK_AT(f) DSNN_KEY_AT(struct pbt, f)
static const struct dsnn_key_spec pbt_keys[] = {
    DSNN_KEY_PLUGIN("pbt"),
    SU_DRAWN_SPACE_KEY("; initial draws and the mutations of exploit"),
    {.name = "perturbation_interval", .type = DSNN_KEY_INT, .def = 2, DSNN_KEY_RANGE(1, 1e9),
     PK_AT(interval), .doc = "epochs between two perturbations of a trial"},
    {.name = "burn_in_period", .type = DSNN_KEY_INT, .def = 0, DSNN_KEY_RANGE(0, 1e9),
     PK_AT(burn_in), .doc = "no perturbation before this many epochs"},
    {.name = "quantile_fraction", .type = DSNN_KEY_FLOAT, .def = 0.25, DSNN_KEY_RANGE(0, 0.5),
     PK_AT(quantile),
     .doc = "in [0, 0.5]: the bottom fraction is perturbed, cloning one of the top fraction"},
    {.name = "resample_probability", .type = DSNN_KEY_FLOAT, .def = 0.25, DSNN_KEY_RANGE(0, 1),
     PK_AT(resample_p),
     .doc = "probability that exploit resamples a parameter from the space instead of perturbing it"},
    {.name = "perturbation_factors", .type = DSNN_KEY_FLOAT_ARRAY, .default_value = "[1.2, 0.8]",
     .doc = "factors a numeric parameter is multiplied by (one drawn at random)"},
    SU_OBJECTIVE_KEYS("metric the population is ranked by"),
};
#undef PK_AT
DSNN_KEY_TABLE_DEFINE(static, pbt_table, pbt_keys);

static void pbt_destroy(void *state)
{
    struct pbt *p = state;
    if (!p)
        return;
    free(p->trials);
    free(p->order);
    free(p);
}

static enum dsnn_status pbt_create(const struct dsnn_cfg *cfg, const struct dsnn_search_ctx *ctx,
                                   void **state, struct dsnn_error *err)
{
    struct pbt *p = calloc(1, sizeof *p);
    if (!p)
        return dsnn_error_set(err, DSNN_ERR_NOMEM, "out of memory");
    p->max_t = ctx->max_epochs > 0 ? ctx->max_epochs : INT64_MAX;
    const char *metric = NULL;
    char where[300];
    enum dsnn_status st;
    if ((st = su_draw_init(&p->draw, cfg, ctx, err)) ||
        (st = dsnn_keys_read(&pbt_table, cfg, p, err)) ||
        (st = dsnn_cfg_float_array(cfg, "perturbation_factors", p->factors, PBT_MAX_FACTORS,
                                   &p->n_factors, err)) ||
        (st = su_read_objective(cfg, ctx, &metric, &p->maximize, err)))
        goto fail;
    if (dsnn_cfg_has(cfg, "perturbation_factors") && p->n_factors == 0) {
        st = dsnn_error_set(err, DSNN_ERR_CONFIG,
                            "%s: key '%s.perturbation_factors': empty list of factors",
                            dsnn_cfg_where(cfg, "perturbation_factors", where, sizeof where),
                            dsnn_cfg_path(cfg));
        goto fail;
    }
    if (p->n_factors == 0) {
        p->factors[0] = 1.2;
        p->factors[1] = 0.8;
        p->n_factors = 2;
    }
    for (size_t i = 0; i < p->n_factors; i++)
        if (!isfinite(p->factors[i])) {
            st = dsnn_error_set(err, DSNN_ERR_CONFIG,
                                "%s: key '%s.perturbation_factors': factors must be finite",
                                dsnn_cfg_where(cfg, "perturbation_factors", where, sizeof where),
                                dsnn_cfg_path(cfg));
            goto fail;
        }
    if ((st = su_metric_copy(cfg, metric, p->metric, err)))
        goto fail;
    p->trials = calloc((size_t)p->draw.num_samples, sizeof *p->trials);
    p->order = calloc((size_t)p->draw.num_samples, sizeof *p->order);
    if (!p->trials || !p->order) {
        st = dsnn_error_set(err, DSNN_ERR_NOMEM, "out of memory");
        goto fail;
    }
    *state = p;
    return DSNN_OK;
fail:
    pbt_destroy(p);
    return st;
}

static void initial_point(const struct pbt *p, int trial, struct dsnn_search_point *x)
{
    struct dsnn_rng rng;
    dsnn_search_trial_rng(&rng, p->draw.seed, trial);
    dsnn_search_space_sample(&p->draw.space, &rng, x);
}

static enum dsnn_status pbt_suggest(void *state, int trial_index, struct dsnn_param_set *out,
                                    bool *done, struct dsnn_error *err)
{
    struct pbt *p = state;
    out->n = 0;
    *done = trial_index < 0 || trial_index >= p->draw.num_samples;
    if (*done)
        return DSNN_OK;
    struct dsnn_search_point x;
    initial_point(p, trial_index, &x);
    struct pbt_trial *tr = &p->trials[trial_index];
    if (!tr->initialised) {
        tr->x = x;
        tr->initialised = true;
    }
    return dsnn_search_space_params(&p->draw.space, &x, out, err);
}

/* ---- ranking ---- */

static int cmp_rank(const void *a, const void *b)
{
    const struct pbt_rank *x = a, *y = b;
    if (x->score != y->score)
        return x->score < y->score ? -1 : 1;
    return x->trial < y->trial ? -1 : x->trial > y->trial; /* ties: creation order, as Ray */
}

/* Ranks the unfinished trials that have a score, worst first, into p->order; returns how many
 * and sets *q, the size of each quantile (0 when fewer than two trials). A trial whose latest
 * result is its last epoch counts as finished (its checkpoint has nothing left to train). */
static size_t rank(struct pbt *p, size_t *q)
{
    size_t n = 0;
    for (int i = 0; i < p->draw.num_samples; i++)
        if (p->trials[i].has_score && !p->trials[i].finished &&
            p->trials[i].last_t < (double)p->max_t) {
            p->order[n].score = p->trials[i].last_score;
            p->order[n++].trial = i;
        }
    qsort(p->order, n, sizeof *p->order, cmp_rank);
    *q = 0;
    if (n > 1) {
        *q = (size_t)ceil((double)n * p->quantile - 1e-12);
        if ((double)*q > (double)n / 2)
            *q = n / 2;
    }
    return n;
}

static enum dsnn_search_decision pbt_on_result(void *state, int trial_index, int epoch,
                                               const struct dsnn_metrics *m)
{
    struct pbt *p = state;
    double score;
    if (trial_index < 0 || trial_index >= p->draw.num_samples ||
        !su_score(m, p->metric, p->maximize, &score))
        return DSNN_SEARCH_CONTINUE;
    struct pbt_trial *tr = &p->trials[trial_index];
    if (!tr->initialised) {
        initial_point(p, trial_index, &tr->x);
        tr->initialised = true;
    }
    double t = (double)epoch + 1;
    tr->last_score = score;
    tr->has_score = true;
    tr->finished = false;
    tr->last_t = t;
    if (t < (double)p->burn_in || t - tr->last_perturb_t < (double)p->interval ||
        t >= (double)p->max_t)
        return DSNN_SEARCH_CONTINUE;
    tr->last_perturb_t = t;
    size_t q = 0;
    rank(p, &q);
    for (size_t k = 0; k < q; k++)
        if (p->order[k].trial == trial_index)
            return DSNN_SEARCH_PERTURB;
    return DSNN_SEARCH_CONTINUE;
}

static void pbt_on_complete(void *state, int trial_index, bool error)
{
    struct pbt *p = state;
    (void)error;
    if (trial_index >= 0 && trial_index < p->draw.num_samples)
        p->trials[trial_index].finished = true; /* out of the ranking, as in Ray */
}

/* ---- exploit / explore ---- */

static double explore_dim(const struct pbt *p, const struct dsnn_search_dim *d, double x,
                          struct dsnn_rng *rng)
{
    switch (d->dist) {
    case DSNN_DIST_FIXED: return x;
    case DSNN_DIST_CHOICE:
        if (dsnn_rng_uniform(rng) < p->resample_p)
            return dsnn_search_dim_sample(d, rng);
        if (dsnn_rng_uniform(rng) > 0.5)
            return x > 0 ? x - 1 : 0;
        return x + 1 < (double)d->n_values ? x + 1 : (double)d->n_values - 1;
    default: {
        if (dsnn_rng_uniform(rng) < p->resample_p)
            return dsnn_search_dim_sample(d, rng);
        double y = x * p->factors[dsnn_rng_below(rng, p->n_factors)];
        return d->dist == DSNN_DIST_RANDINT ? trunc(y) : y;
    }
    }
}

static enum dsnn_status pbt_exploit(void *state, int trial_index, int *source_trial,
                                    struct dsnn_param_set *new_params, struct dsnn_error *err)
{
    struct pbt *p = state;
    new_params->n = 0;
    if (trial_index < 0 || trial_index >= p->draw.num_samples)
        return dsnn_error_set(err, DSNN_ERR_INVALID, "pbt: exploit of trial %d: no such trial "
                                                     "(population of %d)",
                              trial_index, p->draw.num_samples);
    struct pbt_trial *tr = &p->trials[trial_index];
    if (!tr->initialised) {
        initial_point(p, trial_index, &tr->x);
        tr->initialised = true;
    }
    size_t q = 0, n = rank(p, &q);
    *source_trial = trial_index;
    if (q > 0) {
        struct dsnn_rng rng;
        dsnn_rng_seed(&rng,
                      dsnn_seed_mix(dsnn_seed_mix(p->draw.seed, (uint64_t)(int64_t)trial_index),
                                    tr->n_perturb + 1),
                      DSNN_RNG_STREAM_SEARCH);
        int src = p->order[n - q + dsnn_rng_below(&rng, q)].trial;
        const struct pbt_trial *s = &p->trials[src];
        struct dsnn_search_point y;
        memset(&y, 0, sizeof y);
        for (size_t i = 0; i < p->draw.space.n; i++)
            y.x[i] = explore_dim(p, &p->draw.space.dims[i], s->x.x[i], &rng);
        *source_trial = src;
        tr->x = y;
        /* it goes on from the source's checkpoint, hence on the source's perturbation
         * schedule (as Ray's PBT transfers last_perturbation_time) */
        tr->last_perturb_t = s->last_perturb_t;
        tr->n_perturb++;
    }
    return dsnn_search_space_params(&p->draw.space, &tr->x, new_params, err);
}

/* ---- save / restore: "PBT_", version, trials, dims, and per trial its state ---- */

static enum dsnn_status pbt_save(void *state, FILE *f, struct dsnn_error *err)
{
    struct pbt *p = state;
    enum dsnn_status st;
    if ((st = su_state_write_head(f, "PBT_", PBT_STATE_VERSION, "pbt", err)) ||
        (st = dsnn_io_write_u64(f, (uint64_t)p->draw.num_samples, "pbt trials", err)) ||
        (st = dsnn_io_write_u64(f, p->draw.space.n, "pbt dimensions", err)))
        return st;
    for (int i = 0; i < p->draw.num_samples; i++) {
        const struct pbt_trial *tr = &p->trials[i];
        uint8_t flags = (uint8_t)(tr->initialised | tr->has_score << 1 | tr->finished << 2);
        if ((st = dsnn_io_write(f, &flags, 1, "pbt trial", err)) ||
            (st = dsnn_io_write(f, &tr->last_score, sizeof(double), "pbt trial", err)) ||
            (st = dsnn_io_write(f, &tr->last_perturb_t, sizeof(double), "pbt trial", err)) ||
            (st = dsnn_io_write(f, &tr->last_t, sizeof(double), "pbt trial", err)) ||
            (st = dsnn_io_write_u64(f, tr->n_perturb, "pbt trial", err)) ||
            (st = dsnn_io_write(f, tr->x.x, p->draw.space.n * sizeof(double), "pbt trial", err)))
            return st;
    }
    return DSNN_OK;
}

static enum dsnn_status pbt_restore(void *state, FILE *f, struct dsnn_error *err)
{
    struct pbt *p = state;
    uint64_t n_trials = 0, n_dims = 0;
    enum dsnn_status st;
    if ((st = su_state_read_head(f, "PBT_", PBT_STATE_VERSION, "pbt", "pbt", err)))
        return st;
    if ((st = dsnn_io_read_u64(f, &n_trials, "pbt trials", err)) ||
        (st = dsnn_io_read_u64(f, &n_dims, "pbt dimensions", err)))
        return dsnn_error_prefix(err, "pbt state");
    if (n_trials != (uint64_t)p->draw.num_samples || n_dims != p->draw.space.n)
        return dsnn_error_set(err, DSNN_ERR_FORMAT,
                              "pbt state: saved for %llu trials x %llu parameters, configured "
                              "%d x %zu: the configuration changed",
                              (unsigned long long)n_trials, (unsigned long long)n_dims,
                              p->draw.num_samples, p->draw.space.n);
    struct pbt_trial *trials = calloc((size_t)p->draw.num_samples, sizeof *trials);
    if (!trials)
        return dsnn_error_set(err, DSNN_ERR_NOMEM, "out of memory");
    for (int i = 0; i < p->draw.num_samples; i++) {
        struct pbt_trial *tr = &trials[i];
        uint8_t flags = 0;
        if ((st = dsnn_io_read(f, &flags, 1, "pbt trial", err)) ||
            (st = dsnn_io_read(f, &tr->last_score, sizeof(double), "pbt trial", err)) ||
            (st = dsnn_io_read(f, &tr->last_perturb_t, sizeof(double), "pbt trial", err)) ||
            (st = dsnn_io_read(f, &tr->last_t, sizeof(double), "pbt trial", err)) ||
            (st = dsnn_io_read_u64(f, &tr->n_perturb, "pbt trial", err)) ||
            (st = dsnn_io_read(f, tr->x.x, p->draw.space.n * sizeof(double), "pbt trial", err))) {
            free(trials);
            return dsnn_error_prefix(err, "pbt state");
        }
        tr->initialised = flags & 1;
        tr->has_score = flags >> 1 & 1;
        tr->finished = flags >> 2 & 1;
        bool ok = flags < 8;
        for (size_t d = 0; d < p->draw.space.n && ok; d++) {
            const struct dsnn_search_dim *dim = &p->draw.space.dims[d];
            double x = tr->x.x[d];
            ok = isfinite(x) && (dim->dist != DSNN_DIST_CHOICE ||
                                 (x >= 0 && x < (double)dim->n_values && x == floor(x)));
        }
        if (!ok) {
            free(trials);
            return dsnn_error_set(err, DSNN_ERR_FORMAT, "pbt state: trial %d corrupt", i);
        }
    }
    free(p->trials);
    p->trials = trials;
    return DSNN_OK;
}

DSNN_SEARCH_PLUGIN("pbt", "1.0.0", "Population based training: the bottom quantile clones a top "
                   "trial and perturbs its parameters",
                   pbt_keys,
                   .create = pbt_create, .suggest = pbt_suggest, .on_result = pbt_on_result,
                   .on_complete = pbt_on_complete, .save = pbt_save, .restore = pbt_restore,
                   .destroy = pbt_destroy, .exploit = pbt_exploit)
