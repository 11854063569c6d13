/* median-stop - search plugin: the median stopping rule (Golovin et al. 2017, "Google Vizier";
 * the rules of Ray Tune's MedianStoppingRule).
 *
 *     search = { plugin = "median-stop"; grace_period = 2; min_samples_required = 3;
 *                space = { model = { learning_rate = [0.1, 0.01, 0.001]; }; }; };
 *
 * Trials are proposed like the `random` plugin's: experiment.num_samples draws from `space`.
 * Time is counted in epochs done (t = epoch + 1). When a trial reports at time t > grace_period,
 * the other trials that have reached t are collected; if there are at least
 * min_samples_required of them, the median of their running averages (mean of their metric over
 * grace_period <= t' <= t) is computed, and the trial is STOPPED when the best metric it has
 * reported so far is worse than that median. A stopped trial answers STOP to every later result.
 * mode "min" compares -metric; a NaN metric counts as the worst value; a result without the
 * metric is ignored (CONTINUE). save/restore keep every trial's reported metrics. */
#include <dsnn/dsnn.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../search_util.h"

#define MEDIAN_STATE_VERSION 1

struct median_point {
    double t, score; /* score: metric, negated for mode "min" */
};

struct median_trial {
    struct median_point *pts;
    size_t n, cap;
    bool stopped;
};

struct median_stop {
    struct su_draw draw; /* first: su_draw_suggest serves as suggest */
    char metric[DSNN_METRIC_NAME_MAX];
    bool maximize;
    int64_t grace_period, min_samples;
    struct median_trial *trials; /* num_samples */
};

#define MK_AT(f) DSNN_KEY_AT(struct median_stop, f)
static const struct dsnn_key_spec median_keys[] = {
    DSNN_KEY_PLUGIN("median-stop"),
    SU_DRAWN_SPACE_KEY(""),
    {.name = "grace_period", .type = DSNN_KEY_INT, .def = 1, DSNN_KEY_RANGE(0, 1e9),
     MK_AT(grace_period),
     .doc = "epochs before a trial can be stopped; earlier results are left out of running averages"},
    {.name = "min_samples_required", .type = DSNN_KEY_INT, .def = 3, DSNN_KEY_RANGE(1, 1e9),
     MK_AT(min_samples),
     .doc = "other trials that must have reached the epoch before the rule applies"},
    SU_OBJECTIVE_KEYS("metric compared"),
};
#undef MK_AT
DSNN_KEY_TABLE_DEFINE(static, median_table, median_keys);

static void median_destroy(void *state)
{
    struct median_stop *ms = state;
    if (!ms)
        return;
    for (int i = 0; ms->trials && i < ms->draw.num_samples; i++)
        free(ms->trials[i].pts);
    free(ms->trials);
    free(ms);
}

static enum dsnn_status median_create(const struct dsnn_cfg *cfg,
                                      const struct dsnn_search_ctx *ctx, void **state,
                                      struct dsnn_error *err)
{
    struct median_stop *ms = calloc(1, sizeof *ms);
    if (!ms)
        return dsnn_error_set(err, DSNN_ERR_NOMEM, "out of memory");
    const char *metric = NULL;
    enum dsnn_status st;
    if ((st = su_draw_init(&ms->draw, cfg, ctx, err)) ||
        (st = dsnn_keys_read(&median_table, cfg, ms, err)) ||
        (st = su_read_objective(cfg, ctx, &metric, &ms->maximize, err)) ||
        (st = su_metric_copy(cfg, metric, ms->metric, err)))
        goto fail;
    ms->trials = calloc((size_t)ms->draw.num_samples, sizeof *ms->trials);
    if (!ms->trials) {
        st = dsnn_error_set(err, DSNN_ERR_NOMEM, "out of memory");
        goto fail;
    }
    *state = ms;
    return DSNN_OK;
fail:
    median_destroy(ms);
    return st;
}

static bool append(struct median_trial *tr, double t, double score)
{
    struct median_point *pts = su_reserve_one(tr->pts, &tr->cap, tr->n, sizeof *pts);
    if (!pts)
        return false;
    tr->pts = pts;
    tr->pts[tr->n].t = t;
    tr->pts[tr->n].score = score;
    tr->n++;
    return true;
}

/* Mean score of tr over grace <= t' <= t; NAN when none. */
static double running_mean(const struct median_trial *tr, double grace, double t)
{
    double sum = 0;
    size_t n = 0;
    for (size_t i = 0; i < tr->n; i++)
        if (tr->pts[i].t >= grace && tr->pts[i].t <= t) {
            sum += tr->pts[i].score;
            n++;
        }
    return n ? sum / (double)n : NAN;
}

static enum dsnn_search_decision median_on_result(void *state, int trial_index, int epoch,
                                                  const struct dsnn_metrics *m)
{
    struct median_stop *ms = state;
    double score;
    if (trial_index < 0 || trial_index >= ms->draw.num_samples ||
        !su_score(m, ms->metric, ms->maximize, &score))
        return DSNN_SEARCH_CONTINUE;
    struct median_trial *tr = &ms->trials[trial_index];
    if (tr->stopped)
        return DSNN_SEARCH_STOP;
    double t = (double)epoch + 1, grace = (double)ms->grace_period;
    if (!append(tr, t, score) || t <= grace)
        return DSNN_SEARCH_CONTINUE;
    double *means = malloc((size_t)ms->draw.num_samples * sizeof *means);
    if (!means)
        return DSNN_SEARCH_CONTINUE;
    size_t n = 0;
    for (int j = 0; j < ms->draw.num_samples; j++) {
        const struct median_trial *o = &ms->trials[j];
        if (j == trial_index || o->n == 0 || o->pts[o->n - 1].t < t)
            continue;
        double mean = running_mean(o, grace, t);
        if (!isnan(mean))
            means[n++] = mean;
    }
    enum dsnn_search_decision action = DSNN_SEARCH_CONTINUE;
    if (n >= (size_t)ms->min_samples) {
        qsort(means, n, sizeof *means, su_cmp_double);
        double median = n % 2 ? means[n / 2] : (means[n / 2 - 1] + means[n / 2]) / 2;
        double best = -INFINITY;
        for (size_t i = 0; i < tr->n; i++)
            best = tr->pts[i].score > best ? tr->pts[i].score : best;
        if (best < median) {
            tr->stopped = true;
            action = DSNN_SEARCH_STOP;
        }
    }
    free(means);
    return action;
}

/* ---- save / restore: "MEDS", version, trials, and per trial stopped + its points ---- */

static enum dsnn_status median_save(void *state, FILE *f, struct dsnn_error *err)
{
    struct median_stop *ms = state;
    enum dsnn_status st;
    if ((st = su_state_write_head(f, "MEDS", MEDIAN_STATE_VERSION, "median-stop", err)) ||
        (st = dsnn_io_write_u64(f, (uint64_t)ms->draw.num_samples, "median-stop trials", err)))
        return st;
    for (int i = 0; i < ms->draw.num_samples; i++) {
        const struct median_trial *tr = &ms->trials[i];
        uint8_t stopped = tr->stopped;
        if ((st = dsnn_io_write(f, &stopped, 1, "median-stop trial", err)) ||
            (st = dsnn_io_write_u64(f, tr->n, "median-stop trial", err)))
            return st;
        for (size_t k = 0; k < tr->n; k++)
            if ((st = dsnn_io_write(f, &tr->pts[k], sizeof tr->pts[k], "median-stop result",
                                    err)))
                return st;
    }
    return DSNN_OK;
}

static enum dsnn_status median_restore(void *state, FILE *f, struct dsnn_error *err)
{
    struct median_stop *ms = state;
    uint64_t n_trials = 0, n = 0;
    enum dsnn_status st;
    if ((st = su_state_read_head(f, "MEDS", MEDIAN_STATE_VERSION, "median-stop", "median-stop",
                                 err)))
        return st;
    if ((st = dsnn_io_read_u64(f, &n_trials, "median-stop trials", err)))
        return dsnn_error_prefix(err, "median-stop state");
    if (n_trials != (uint64_t)ms->draw.num_samples)
        return dsnn_error_set(err, DSNN_ERR_FORMAT,
                              "median-stop state: saved with %llu trials, configured %d "
                              "(experiment.num_samples changed)",
                              (unsigned long long)n_trials, ms->draw.num_samples);
    for (int i = 0; i < ms->draw.num_samples; i++) {
        struct median_trial *tr = &ms->trials[i];
        uint8_t stopped = 0;
        if ((st = dsnn_io_read(f, &stopped, 1, "median-stop trial", err)) ||
            (st = dsnn_io_read_u64(f, &n, "median-stop trial", err)))
            return dsnn_error_prefix(err, "median-stop state");
        if (n > (uint64_t)1 << 32 || stopped > 1)
            return dsnn_error_set(err, DSNN_ERR_FORMAT, "median-stop state: trial %d corrupt", i);
        tr->stopped = stopped;
        tr->n = 0;
        for (uint64_t k = 0; k < n; k++) {
            struct median_point p;
            if ((st = dsnn_io_read(f, &p, sizeof p, "median-stop result", err)))
                return dsnn_error_prefix(err, "median-stop state");
            if (!append(tr, p.t, p.score))
                return dsnn_error_set(err, DSNN_ERR_NOMEM, "out of memory");
        }
    }
    return DSNN_OK;
}

/* A finished trial's results stay (su_on_complete_keep), as in Ray. */
DSNN_SEARCH_PLUGIN("median-stop", "1.0.0", "Median stopping rule: random trials, stopped when "
                   "their best result is below the median of the others' running averages",
                   median_keys,
                   .create = median_create, .suggest = su_draw_suggest,
                   .on_result = median_on_result, .on_complete = su_on_complete_keep,
                   .save = median_save, .restore = median_restore, .destroy = median_destroy)
