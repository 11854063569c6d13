/* asha - search plugin: asynchronous successive halving (Li et al. 2020, "A System for Massively
 * Parallel Hyperparameter Tuning"; the rules of Ray Tune's ASHAScheduler).
 *
 *     search = { plugin = "asha";
 *                grace_period = 1; reduction_factor = 3; max_t = 9;
 *                space = { model = { learning_rate = { dist = "loguniform"; low = 1e-3;
 *                                                      high = 1e-1; }; }; }; };
 *
 * Trials are proposed like the `random` plugin's: experiment.num_samples draws from `space`.
 * Time is counted in epochs done (training_iteration = epoch + 1). Bracket s has the rungs
 * r_k = grace_period * eta^(k + s) <= max_t (k = 0, 1, ...). When a trial's time first reaches a
 * rung (the highest one it has reached and has not been recorded at), its metric is compared
 * with the metrics recorded at that rung so far: if it is below their (1 - 1/eta) quantile
 * (linear interpolation, as numpy.percentile), i.e. not in the top 1/eta, the trial is STOPPED;
 * either way its metric is then recorded there. The first trial at a rung always continues.
 * A trial that reaches max_t is stopped. mode "min" compares -metric; a NaN metric counts as
 * the worst value; a result without the metric is ignored (CONTINUE).
 *
 * With brackets > 1 each trial is assigned to bracket s with probability proportional to
 * e^(n_rungs(s) - max n_rungs), drawn from its own stream (deterministic per trial).
 * save/restore keep the recorded rung results. */
#include <dsnn/dsnn.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../search_util.h"

#define ASHA_MAX_RUNGS 64
#define ASHA_STATE_VERSION 1

struct asha_record {
    int64_t trial;
    double score; /* metric, negated for mode "min" */
};

struct asha_rung {
    double milestone;
    struct asha_record *rec;
    size_t n, cap;
};

struct asha_bracket {
    struct asha_rung rungs[ASHA_MAX_RUNGS]; /* descending milestones, as Ray's */
    size_t n_rungs;
};

struct asha {
    struct su_draw draw; /* first: su_draw_suggest serves as suggest */
    char metric[DSNN_METRIC_NAME_MAX];
    bool maximize;
    int64_t grace_period, max_t, n_brackets;
    double eta;
    struct asha_bracket *brackets;
};

#define AK_AT(f) DSNN_KEY_AT(struct asha, f)
static const struct dsnn_key_spec asha_keys[] = {
    DSNN_KEY_PLUGIN("asha"),
    SU_DRAWN_SPACE_KEY(""),
    {.name = "grace_period", .type = DSNN_KEY_INT, .def = 1, DSNN_KEY_RANGE(1, 1e9),
     AK_AT(grace_period), .doc = "epochs before the first rung (r_0)"},
    {.name = "reduction_factor", .type = DSNN_KEY_FLOAT, .def = 4, DSNN_KEY_RANGE(1 + 1e-9, 1e6),
     AK_AT(eta),
     .doc = "eta > 1: rungs at grace_period * eta^k; a trial continues if in the top 1/eta of a rung"},
    {.name = "max_t", .type = DSNN_KEY_INT, .default_value = "experiment.epochs",
     DSNN_KEY_RANGE(1, 1e9), .doc = "epochs after which a trial is stopped"},
    SU_OBJECTIVE_KEYS("metric compared at the rungs"),
    {.name = "brackets", .type = DSNN_KEY_INT, .def = 1, DSNN_KEY_RANGE(1, ASHA_MAX_RUNGS),
     AK_AT(n_brackets),
     .doc = "number of brackets (bracket s starts at grace_period * eta^s; at most the number of "
     "rungs of bracket 0)"},
};
#undef AK_AT
DSNN_KEY_TABLE_DEFINE(static, asha_table, asha_keys);

/* ---- configuration ---- */

static void asha_destroy(void *state)
{
    struct asha *a = state;
    if (!a)
        return;
    for (int64_t b = 0; a->brackets && b < a->n_brackets; b++)
        for (size_t r = 0; r < a->brackets[b].n_rungs; r++)
            free(a->brackets[b].rungs[r].rec);
    free(a->brackets);
    free(a);
}

/* Number of k >= 0 with grace * eta^(k + s) <= max_t. */
static size_t rung_count(int64_t grace, double eta, int64_t max_t, int64_t s)
{
    size_t n = 0;
    for (double m = (double)grace * pow(eta, (double)s);
         m <= (double)max_t * (1 + 1e-12) && n < ASHA_MAX_RUNGS; m *= eta)
        n++;
    return n;
}

static enum dsnn_status asha_create(const struct dsnn_cfg *cfg, const struct dsnn_search_ctx *ctx,
                                    void **state, struct dsnn_error *err)
{
    struct asha *a = calloc(1, sizeof *a);
    if (!a)
        return dsnn_error_set(err, DSNN_ERR_NOMEM, "out of memory");
    const char *metric = NULL;
    char where[300];
    enum dsnn_status st;
    if ((st = su_draw_init(&a->draw, cfg, ctx, err)) ||
        (st = dsnn_keys_read(&asha_table, cfg, a, err)) ||
        (st = dsnn_cfg_int(cfg, "max_t", ctx->max_epochs > 0 ? ctx->max_epochs : 1, &a->max_t,
                           err)) ||
        (st = su_read_objective(cfg, ctx, &metric, &a->maximize, err)) ||
        (st = su_metric_copy(cfg, metric, a->metric, err)))
        goto fail;
    if (a->max_t < a->grace_period) {
        st = dsnn_error_set(err, DSNN_ERR_CONFIG,
                            "%s: key '%s.max_t': %lld is less than grace_period = %lld",
                            dsnn_cfg_where(cfg, dsnn_cfg_has(cfg, "max_t") ? "max_t" : NULL,
                                           where, sizeof where),
                            dsnn_cfg_path(cfg), (long long)a->max_t, (long long)a->grace_period);
        goto fail;
    }
    size_t max_rungs = rung_count(a->grace_period, a->eta, a->max_t, 0);
    if ((st = dsnn_cfg_check_range(cfg, "brackets", (double)a->n_brackets, 1, (double)max_rungs,
                                   err)))
        goto fail;
    a->brackets = calloc((size_t)a->n_brackets, sizeof *a->brackets);
    if (!a->brackets) {
        st = dsnn_error_set(err, DSNN_ERR_NOMEM, "out of memory");
        goto fail;
    }
    for (int64_t s = 0; s < a->n_brackets; s++) {
        struct asha_bracket *b = &a->brackets[s];
        b->n_rungs = rung_count(a->grace_period, a->eta, a->max_t, s);
        for (size_t k = 0; k < b->n_rungs; k++) /* descending */
            b->rungs[k].milestone =
                (double)a->grace_period * pow(a->eta, (double)(b->n_rungs - 1 - k + (size_t)s));
    }
    *state = a;
    return DSNN_OK;
fail:
    asha_destroy(a);
    return st;
}

/* ---- trials ---- */

/* Bracket of a trial: a pure function of (seed, trial). */
static size_t bracket_of(const struct asha *a, int trial)
{
    if (a->n_brackets == 1)
        return 0;
    struct dsnn_rng rng;
    dsnn_rng_seed(&rng,
                  dsnn_seed_mix(dsnn_seed_mix(a->draw.seed, (uint64_t)(int64_t)trial), 0xA5A),
                  DSNN_RNG_STREAM_SEARCH);
    double w[ASHA_MAX_RUNGS], total = 0;
    double top = (double)a->brackets[0].n_rungs;
    for (int64_t s = 0; s < a->n_brackets; s++)
        total += w[s] = exp((double)a->brackets[s].n_rungs - top);
    double u = dsnn_rng_uniform(&rng) * total;
    for (int64_t s = 0; s < a->n_brackets; s++) {
        if (u < w[s])
            return (size_t)s;
        u -= w[s];
    }
    return (size_t)a->n_brackets - 1;
}

/* numpy.percentile(values, q) with linear interpolation; n > 0. Sorts v. */
static double percentile(double *v, size_t n, double q)
{
    qsort(v, n, sizeof *v, su_cmp_double);
    double pos = q / 100.0 * (double)(n - 1);
    size_t lo = (size_t)floor(pos), hi = lo + 1 < n ? lo + 1 : lo;
    double frac = pos - (double)lo;
    if (frac == 0 || v[lo] == v[hi] || isinf(v[lo]))
        return v[lo];
    return v[lo] + (v[hi] - v[lo]) * frac;
}

static bool recorded(const struct asha_rung *r, int64_t trial)
{
    for (size_t i = 0; i < r->n; i++)
        if (r->rec[i].trial == trial)
            return true;
    return false;
}

static bool record(struct asha_rung *r, int64_t trial, double score)
{
    struct asha_record *rec = su_reserve_one(r->rec, &r->cap, r->n, sizeof *rec);
    if (!rec)
        return false;
    r->rec = rec;
    r->rec[r->n].trial = trial;
    r->rec[r->n].score = score;
    r->n++;
    return true;
}

static enum dsnn_search_decision asha_on_result(void *state, int trial_index, int epoch,
                                                const struct dsnn_metrics *m)
{
    struct asha *a = state;
    double score;
    if (trial_index < 0 || !su_score(m, a->metric, a->maximize, &score))
        return DSNN_SEARCH_CONTINUE;
    double t = (double)epoch + 1;
    struct asha_bracket *b = &a->brackets[bracket_of(a, trial_index)];
    enum dsnn_search_decision action = DSNN_SEARCH_CONTINUE;
    for (size_t k = 0; k < b->n_rungs; k++) {
        struct asha_rung *r = &b->rungs[k];
        if (t < r->milestone || recorded(r, trial_index))
            continue;
        if (r->n > 0) {
            double *tmp = malloc(r->n * sizeof *tmp);
            if (tmp) {
                for (size_t i = 0; i < r->n; i++)
                    tmp[i] = r->rec[i].score;
                double cutoff = percentile(tmp, r->n, (1 - 1 / a->eta) * 100);
                free(tmp);
                if (score < cutoff)
                    action = DSNN_SEARCH_STOP;
            }
        }
        record(r, trial_index, score); /* out of memory: the trial is simply not recorded */
        break;
    }
    if (t >= (double)a->max_t)
        action = DSNN_SEARCH_STOP;
    return action;
}

/* ---- save / restore: "ASHA", version, brackets, and per rung its milestone and records ---- */

static enum dsnn_status asha_save(void *state, FILE *f, struct dsnn_error *err)
{
    struct asha *a = state;
    enum dsnn_status st;
    if ((st = su_state_write_head(f, "ASHA", ASHA_STATE_VERSION, "ASHA", err)) ||
        (st = dsnn_io_write_u64(f, (uint64_t)a->n_brackets, "ASHA brackets", err)))
        return st;
    for (int64_t s = 0; s < a->n_brackets; s++) {
        const struct asha_bracket *b = &a->brackets[s];
        if ((st = dsnn_io_write_u64(f, b->n_rungs, "ASHA rungs", err)))
            return st;
        for (size_t k = 0; k < b->n_rungs; k++) {
            const struct asha_rung *r = &b->rungs[k];
            if ((st = dsnn_io_write(f, &r->milestone, sizeof r->milestone, "ASHA milestone",
                                    err)) ||
                (st = dsnn_io_write_u64(f, r->n, "ASHA records", err)))
                return st;
            for (size_t i = 0; i < r->n; i++)
                if ((st = dsnn_io_write(f, &r->rec[i].trial, sizeof r->rec[i].trial,
                                        "ASHA record", err)) ||
                    (st = dsnn_io_write(f, &r->rec[i].score, sizeof r->rec[i].score,
                                        "ASHA record", err)))
                    return st;
        }
    }
    return DSNN_OK;
}

static enum dsnn_status asha_restore(void *state, FILE *f, struct dsnn_error *err)
{
    struct asha *a = state;
    uint64_t nb = 0, nr = 0, n = 0;
    enum dsnn_status st;
    if ((st = su_state_read_head(f, "ASHA", ASHA_STATE_VERSION, "ASHA", "asha", err)))
        return st;
    if ((st = dsnn_io_read_u64(f, &nb, "ASHA brackets", err)))
        return dsnn_error_prefix(err, "asha state");
    if (nb != (uint64_t)a->n_brackets)
        return dsnn_error_set(err, DSNN_ERR_FORMAT,
                              "asha state: saved with %llu bracket(s), configured %lld: the "
                              "configuration changed",
                              (unsigned long long)nb, (long long)a->n_brackets);
    for (int64_t s = 0; s < a->n_brackets; s++) {
        struct asha_bracket *b = &a->brackets[s];
        if ((st = dsnn_io_read_u64(f, &nr, "ASHA rungs", err)))
            return dsnn_error_prefix(err, "asha state");
        if (nr != b->n_rungs)
            return dsnn_error_set(err, DSNN_ERR_FORMAT,
                                  "asha state: bracket %lld saved with %llu rung(s), configured "
                                  "%zu: the configuration changed",
                                  (long long)s, (unsigned long long)nr, b->n_rungs);
        for (size_t k = 0; k < b->n_rungs; k++) {
            struct asha_rung *r = &b->rungs[k];
            double milestone = 0;
            if ((st = dsnn_io_read(f, &milestone, sizeof milestone, "ASHA milestone", err)) ||
                (st = dsnn_io_read_u64(f, &n, "ASHA records", err)))
                return dsnn_error_prefix(err, "asha state");
            if (fabs(milestone - r->milestone) > 1e-9 * r->milestone)
                return dsnn_error_set(err, DSNN_ERR_FORMAT,
                                      "asha state: rung at %g, configured %g: the configuration "
                                      "changed",
                                      milestone, r->milestone);
            if (n > (uint64_t)1 << 32)
                return dsnn_error_set(err, DSNN_ERR_FORMAT, "asha state: %llu records: corrupt",
                                      (unsigned long long)n);
            r->n = 0;
            for (uint64_t i = 0; i < n; i++) {
                struct asha_record rec;
                if ((st = dsnn_io_read(f, &rec.trial, sizeof rec.trial, "ASHA record", err)) ||
                    (st = dsnn_io_read(f, &rec.score, sizeof rec.score, "ASHA record", err)))
                    return dsnn_error_prefix(err, "asha state");
                if (!record(r, rec.trial, rec.score))
                    return dsnn_error_set(err, DSNN_ERR_NOMEM, "out of memory");
            }
        }
    }
    return DSNN_OK;
}

/* A finished trial's rung results stay (su_on_complete_keep), as in Ray. */
DSNN_SEARCH_PLUGIN("asha", "1.0.0", "ASHA: random trials, stopped at rungs grace_period*eta^k "
                   "unless in the top 1/eta",
                   asha_keys,
                   .create = asha_create, .suggest = su_draw_suggest, .on_result = asha_on_result,
                   .on_complete = su_on_complete_keep, .save = asha_save,
                   .restore = asha_restore, .destroy = asha_destroy)
