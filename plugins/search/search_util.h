/* plugins/search/search_util.h - what the shipped search plugins share (compiled into each of
 * them from search_util.c; private, not part of the SDK): drawing a trial from a space, reading
 * the metric and mode keys, and the callbacks of strategies that take no decision. */
#ifndef SEARCH_UTIL_H
#define SEARCH_UTIL_H

#include <dsnn/dsnn.h>

/* {"max", "min", NULL}: the choices of the `mode` key; index 0 is "max". */
extern const char *const su_modes[];

/* The key specs of the objective read by su_read_objective: metric (doc says what it is used
 * for) and mode. */
#define SU_OBJECTIVE_KEYS(metric_doc)                                                             \
    {.name = "metric", .type = DSNN_KEY_STRING, .default_value = "experiment.metric",            \
     .doc = (metric_doc)},                                                                        \
    {.name = "mode", .type = DSNN_KEY_STRING, .default_value = "experiment.mode",                \
     .choices = su_modes, .doc = "\"max\" or \"min\" of metric"}

/* The key spec of the `space` of a strategy that draws as the random plugin does (doc_more:
 * what else it serves for, "" or "; ..."). */
#define SU_DRAWN_SPACE_KEY(doc_more)                                                              \
    {.name = "space", .type = DSNN_KEY_GROUP, .default_value = "{}",                             \
     .doc = "tree mirroring the configuration whose leaves are distributions (as the random "     \
            "plugin's)" doc_more}

/* What a strategy whose trials are draws from a space keeps: the first member of its state, so
 * that su_draw_suggest can serve as its suggest. */
struct su_draw {
    struct dsnn_search_space space; /* the `space` key */
    uint64_t seed;                  /* experiment seed */
    int num_samples;                /* trials, at least 1 */
};

/* Parses the `space` key of cfg into d->space and sets d->seed = ctx->seed and d->num_samples =
 * ctx->num_samples (1 when not positive). */
enum dsnn_status su_draw_init(struct su_draw *d, const struct dsnn_cfg *cfg,
                              const struct dsnn_search_ctx *ctx, struct dsnn_error *err);

/* suggest of a strategy whose state begins with a struct su_draw d: *done (and out->n = 0) when
 * trial_index is outside [0, d.num_samples), else out receives the point drawn from the trial's
 * own stream (dsnn_search_trial_rng(d.seed, trial_index)). */
enum dsnn_status su_draw_suggest(void *state, int trial_index, struct dsnn_param_set *out,
                                 bool *done, struct dsnn_error *err);

/* Reads the keys `metric` (default ctx->metric, else "val_acc") and `mode` (default from
 * ctx->maximize) of cfg: *metric points into cfg, not checked (see su_metric_copy). */
enum dsnn_status su_read_objective(const struct dsnn_cfg *cfg, const struct dsnn_search_ctx *ctx,
                                   const char **metric, bool *maximize, struct dsnn_error *err);

/* Copies the metric name read by su_read_objective into dst[DSNN_METRIC_NAME_MAX]; an empty or
 * too long name is DSNN_ERR_CONFIG naming the key. */
enum dsnn_status su_metric_copy(const struct dsnn_cfg *cfg, const char *metric, char *dst,
                                struct dsnn_error *err);

/* Writes the head of a strategy's saved state: the 4-byte tag, then version as a u64; label
 * names them in messages ("ASHA": "ASHA tag", "ASHA version"). */
enum dsnn_status su_state_write_head(FILE *f, const char tag[4], uint64_t version,
                                     const char *label, struct dsnn_error *err);

/* Reads the head written by su_state_write_head and checks it: a wrong tag or a short read is
 * prefixed "NAME state" (name = "asha"), a version other than `version` is DSNN_ERR_FORMAT
 * "NAME state: version V, expected VERSION". */
enum dsnn_status su_state_read_head(FILE *f, const char tag[4], uint64_t version,
                                    const char *label, const char *name, struct dsnn_error *err);

/* Makes room for one more element in the growable array items of n elements of size bytes and
 * capacity *cap (16, then doubling): returns the array, moved or not (items when there was room),
 * with *cap updated; NULL when out of memory (items is then unchanged and still owned by the
 * caller). */
void *su_reserve_one(void *items, size_t *cap, size_t n, size_t size);

/* The score of a result, larger is better: the value of metric in m (negated when not
 * maximize; -infinity when NaN) into *score. False, *score untouched, when m lacks metric. */
bool su_score(const struct dsnn_metrics *m, const char *metric, bool maximize, double *score);

/* qsort comparison of doubles, ascending. */
int su_cmp_double(const void *x, const void *y);

/* The ops fields of a strategy that takes no decision on the trials it suggested: each runs to
 * its end (su_on_result_continue) and what it reported stays (su_on_complete_keep). */
#define SU_NO_DECISIONS .on_result = su_on_result_continue, .on_complete = su_on_complete_keep

/* on_result of a strategy that never stops a trial: DSNN_SEARCH_CONTINUE. */
enum dsnn_search_decision su_on_result_continue(void *state, int trial_index, int epoch,
                                                const struct dsnn_metrics *m);
/* on_complete of a strategy that keeps what a finished trial reported (or has no state). */
void su_on_complete_keep(void *state, int trial_index, bool error);

#endif
