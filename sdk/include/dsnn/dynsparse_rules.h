/* dsnn/dynsparse_rules.h - the prune / regrow decisions of nupic.research's dynamic sparse models
 * (projects/dynamic_sparse: SET, DSNNWeightedMag, DSNNMixedHeb) and their schedule.
 *
 * The decisions are functions of plain arrays over the n active connections of a layer (weights,
 * coactivations, both aligned with the CSR weight block), so that the model plugins share them
 * and tests check them on fixed matrices (tests/unit/test_dynsparse.c reproduces nupic's
 * HebbianPruningTest). A decision is a keep mask; dsnn_dynsparse_apply then grows and prunes a
 * layer the way nupic does: new connections are drawn among those inactive BEFORE the round (a
 * connection pruned by a round is never regrown by the same round), and the layer ends with
 * exactly as many connections as it had (nupic's num_params).
 *
 * Percentages follow nupic's Python truthiness: a rule whose percentage is unset (nupic None,
 * DSNN_PERC_UNSET here) or 0 is switched off; with both rules off every connection is kept.
 * Counts follow nupic's int() (truncation; DSNN_PRUNE_ROUND_NUPIC of dsnn/sparse.h, whose
 * dsnn_signed_magnitude_mark is the one implementation of the rule, shared with `set`, which
 * states DSNN_PRUNE_ROUND_NEAREST instead): the magnitude rule prunes int(perc * n_pos) of the
 * weights >= 0 and n_neg - int((1 - perc) * n_neg) of the weights < 0, the Hebbian rule
 * int(perc * n) of all. Differences from nupic, on ties only: nupic prunes every connection
 * whose value equals the k-th one (thresholds), these functions prune exactly the count (ties:
 * lowest index first, as the sparse engine), so nnz stays exactly constant; and an active
 * connection whose weight is exactly 0 counts as a positive weight (nupic could not tell it from
 * an inactive one). */
#ifndef DSNN_DYNSPARSE_RULES_H
#define DSNN_DYNSPARSE_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "dsnn/config.h"
#include "dsnn/export.h"
#include "dsnn/layer.h"
#include "dsnn/optim.h"
#include "dsnn/plugin.h"
#include "dsnn/rng.h"
#include "dsnn/sparse.h"
#include "dsnn/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A prune percentage that was not given (nupic None). Any value <= 0 (or NaN) switches a rule
 * off. */
#define DSNN_PERC_UNSET (-1.0)

/* True if a percentage switches its rule on (nupic: `if perc:` with perc not None). */
DSNN_API bool dsnn_perc_on(double perc);

/* ---- Keep decisions (keep[k] = 1: connection k survives; *n_keep may be NULL) ----
 * All return DSNN_OK, DSNN_ERR_NOMEM, or DSNN_ERR_INVALID for a percentage above 1. */

/* Magnitude rule on a signed score (nupic's weight pruning): of the n_pos scores >= 0,
 * int(perc * n_pos) closest to zero are pruned; of the n_neg scores < 0,
 * n_neg - int((1 - perc) * n_neg) closest to zero. perc off: keeps everything. */
DSNN_API enum dsnn_status dsnn_rule_magnitude_keep(const float *score, size_t n, double perc,
                                                   uint8_t *keep, size_t *n_keep,
                                                   struct dsnn_error *err);
/* Hebbian rule: the int(perc * n) connections of lowest coactivation are pruned. perc off: keeps
 * everything. */
DSNN_API enum dsnn_status dsnn_rule_hebbian_keep(const float *coact, size_t n, double perc,
                                                 uint8_t *keep, size_t *n_keep,
                                                 struct dsnn_error *err);
/* DSNNMixedHeb: keep = hebbian_keep OR magnitude_keep (a connection is pruned only if both
 * rules prune it) when both percentages are on; the rule that is on when only one is; every
 * connection when neither is. coact may be NULL when hebbian_perc is off. */
DSNN_API enum dsnn_status dsnn_rule_mixed_heb_keep(const float *weight, const float *coact,
                                                   size_t n, double hebbian_perc,
                                                   double weight_perc, uint8_t *keep,
                                                   size_t *n_keep, struct dsnn_error *err);
/* DSNNWeightedMag: the magnitude rule on weight[k] * coact[k] (a connection whose endpoints
 * never fire together scores 0 and goes first). weight_perc off: keeps everything. */
DSNN_API enum dsnn_status dsnn_rule_weighted_mag_keep(const float *weight, const float *coact,
                                                      size_t n, double weight_perc, uint8_t *keep,
                                                      size_t *n_keep, struct dsnn_error *err);
/* Connections to grow so that the layer gets back to target: max(target - n_keep, 0), at most
 * n_inactive (the connections inactive before the round; nupic's p_add clamp). */
DSNN_API size_t dsnn_rule_grow_count(size_t target, size_t n_keep, size_t n_inactive);

/* ---- Applying a decision to a layer ---- */

/* Grows `grow` connections among the currently inactive ones - by highest score (fn, see
 * dsnn_sparse_grow_score) when fn != NULL, uniformly at random otherwise - then removes the
 * connections k with keep[k] == 0 (keep aligned with the weight block as it was at the call).
 * rng draws positions and new values (dsnn_sparse_init grow_init). O(nnz + grow) besides the
 * growth itself. */
DSNN_API enum dsnn_status dsnn_dynsparse_apply(struct dsnn_layer *l, const uint8_t *keep,
                                               size_t grow, dsnn_sparse_score_fn fn, void *user,
                                               struct dsnn_rng *rng, struct dsnn_error *err);

/* ---- Schedule (nupic BaseModel.pruning_interval, DSNNHeb.pruning_early_stop) ---- */

struct dsnn_prune_schedule {
    int interval;   /* a round after epochs interval - 1, 2 interval - 1, ... (0-based) */
    int early_stop; /* no round once this many lr_milestones have passed; 0: never stops */
    int milestones[DSNN_LR_MILESTONES_MAX];
    size_t n_milestones;
};

/* Key docs of dsnn_prune_schedule_read (lr_milestones is a DSNN_BASE_MODEL_KEYS key). */
DSNN_API extern const struct dsnn_key_table dsnn_prune_schedule_keys;
#define DSNN_PRUNE_SCHEDULE_KEYS DSNN_KEYS_FROM(dsnn_prune_schedule_keys)
/* Reads pruning_interval, pruning_early_stop and lr_milestones from a model group. A positive
 * pruning_early_stop without lr_milestones is a configuration error. */
DSNN_API enum dsnn_status dsnn_prune_schedule_read(const struct dsnn_cfg *cfg,
                                                   struct dsnn_prune_schedule *s,
                                                   struct dsnn_error *err);
/* Whether the round at the end of epoch (0-based) takes place: (epoch + 1) % interval == 0 and,
 * with early_stop > 0, fewer than early_stop milestones m satisfy m <= epoch (nupic counts a
 * milestone after the epoch whose 1-based number it is; the LR of epoch m is already decayed).
 * A pure function of the epoch, so checkpoints need no state for it. */
DSNN_API bool dsnn_prune_schedule_active(const struct dsnn_prune_schedule *s, int epoch);
/* Whether early stopping has ended the rounds for good at epoch (no round at epoch or later). */
DSNN_API bool dsnn_prune_schedule_stopped(const struct dsnn_prune_schedule *s, int epoch);

#ifdef __cplusplus
}
#endif
#endif
