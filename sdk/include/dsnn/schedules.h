/* dsnn/schedules.h - the arithmetic of the dynamic sparse training schemes, as pure functions
 * (no state, no allocation) so that each can be tested on its own:
 *   - annealing of a drop fraction / prune rate over steps (RigL, SNFS);
 *   - when a step-wise update is due (every n steps within [begin, end]);
 *   - the cubic density schedule of gradual magnitude pruning (Zhu & Gupta 2017);
 *   - the adaptive global pruning threshold of DSR (Mostafa & Wang 2019);
 *   - the allocation of a count of connections over layers proportionally to weights, with a
 *     per-layer cap (SNFS momentum redistribution, DSR regrowth).
 * The model plugins rigl, snfs, dsr, pruning and iterative-pruning are built on them. */
#ifndef DSNN_SCHEDULES_H
#define DSNN_SCHEDULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "dsnn/export.h"

#ifdef __cplusplus
extern "C" {
#endif

/* How a value decays over [begin, end]. Values are part of the ABI and of checkpoints: append
 * only. */
enum dsnn_anneal {
    DSNN_ANNEAL_CONSTANT = 0,
    DSNN_ANNEAL_COSINE,      /* v0 (1 + cos(pi x)) / 2                                   */
    DSNN_ANNEAL_EXPONENTIAL, /* v0 (1 - x)^exponent: RigL's "exponential_<k>" anneal     */
    DSNN_ANNEAL_LINEAR       /* v0 (1 - x)                                               */
};

/* The names of enum dsnn_anneal in order, NULL-terminated ("constant", "cosine", "exponential",
 * "linear"): the choices of a config key read with dsnn_cfg_enum. */
DSNN_API const char *const *dsnn_anneal_names(void);

/* value0 annealed at step t: x = (t - begin) / (end - begin) clamped to [0, 1] (x = 1 when
 * end <= begin and t >= begin, x = 0 when t < begin); see enum dsnn_anneal. */
DSNN_API double dsnn_anneal_at(enum dsnn_anneal a, double value0, int64_t t, int64_t begin,
                               int64_t end, double exponent);

/* Whether t is an update time of a schedule that updates every `every` (> 0) units from begin to
 * end inclusive: t >= begin, (end < 0 or t <= end), and (t - begin) % every == 0. With t = the
 * number of optimizer steps completed, begin = 0 gives the first update after `every` steps
 * only if t = 0 is excluded by the caller (RigL counts steps from 1). */
DSNN_API bool dsnn_schedule_due(int64_t t, int64_t begin, int64_t end, int64_t every);

/* Gradual magnitude pruning (Zhu & Gupta 2017), written for density d = 1 - sparsity:
 *     d(t) = d_final + (d_initial - d_final) (1 - (t - t0) / (t1 - t0))^3   for t0 <= t < t1,
 * d_initial for t < t0 and d_final for t >= t1 (so t1 <= t0 is a one-shot prune at t1). Never
 * above d_initial: a schedule that would raise the density (d_final > d_initial) returns
 * d_initial. */
DSNN_API double dsnn_gmp_density(double d_initial, double d_final, double t, double t0,
                                 double t1);

/* DSR's threshold adaptation (Mostafa & Wang 2019, Algorithm 1): after a round that pruned
 * `pruned` weights with threshold *h, for a target of `target` per round and a fractional
 * tolerance tol:
 *     pruned < (1 - tol) target  ->  *h = 2 *h   (returns +1)
 *     pruned > (1 + tol) target  ->  *h = *h / 2 (returns -1)
 *     otherwise                  ->  unchanged   (returns 0) */
DSNN_API int dsnn_dsr_adjust_threshold(double *h, size_t pruned, size_t target, double tol);

/* Distributes `total` units over n bins proportionally to weight[i] (>= 0; NaN counts as 0)
 * with out[i] <= cap[i] (water-filling: a bin whose share exceeds its cap gets the cap and the
 * excess is shared by the others in proportion to their weights). If every bin that still has
 * room has weight 0, the rest is shared equally among them. Real shares are rounded by largest
 * remainder (ties: lowest index), so that sum out[i] = min(total, sum cap[i]), which is
 * returned. */
DSNN_API size_t dsnn_allocate_capped(size_t n, const double *weight, const size_t *cap,
                                     size_t total, size_t *out);

#ifdef __cplusplus
}
#endif
#endif
