/* plugins/search/search_util.h - what the shipped search plugins share (compiled into each of
 * them from search_util.c; private, not part of the SDK): drawing a trial from a space, reading
 * the metric and mode keys, and the callbacks of strategies that take no decision. */
#ifndef SEARCH_UTIL_H
#define SEARCH_UTIL_H

#include <dsnn/dsnn.h>

/* {"max", "min", NULL}: the choices of the `mode` key; index 0 is "max". */
extern const char *const su_modes[];

/* suggest of a strategy whose trial i is a draw from space: *done (and out->n = 0) when
 * trial_index is outside [0, num_samples), else out receives the point drawn from the trial's
 * own stream (dsnn_search_trial_rng(seed, trial_index)). */
enum dsnn_status su_suggest_draw(const struct dsnn_search_space *space, uint64_t seed,
                                 int num_samples, int trial_index, struct dsnn_param_set *out,
                                 bool *done, struct dsnn_error *err);

/* Reads the keys `metric` (default ctx->metric, else "val_acc") and `mode` (default from
 * ctx->maximize) of cfg: *metric points into cfg, not checked (see su_metric_copy). */
enum dsnn_status su_read_objective(const struct dsnn_cfg *cfg, const struct dsnn_search_ctx *ctx,
                                   const char **metric, bool *maximize, struct dsnn_error *err);

/* Copies the metric name read by su_read_objective into dst[DSNN_METRIC_NAME_MAX]; an empty or
 * too long name is DSNN_ERR_CONFIG naming the key. */
enum dsnn_status su_metric_copy(const struct dsnn_cfg *cfg, const char *metric, char *dst,
                                struct dsnn_error *err);

/* qsort comparison of doubles, ascending. */
int su_cmp_double(const void *x, const void *y);

/* on_result of a strategy that never stops a trial: DSNN_SEARCH_CONTINUE. */
enum dsnn_search_decision su_on_result_continue(void *state, int trial_index, int epoch,
                                                const struct dsnn_metrics *m);
/* on_complete of a strategy that keeps what a finished trial reported (or has no state). */
void su_on_complete_keep(void *state, int trial_index, bool error);

#endif
