/* dsnn/prune_grow.h - prune / grow steps of the published dynamic sparse schemes, built on the
 * truly sparse layer of dsnn/sparse.h (so they cost O(nnz), plus the tiled dense gradient for
 * gradient growth):
 *   - a RigL round: drop by magnitude, grow by |dense gradient|, dropped-and-regrown connections
 *     keep their state (RigL, SNFS with the gradient as momentum proxy);
 *   - threshold pruning (DSR);
 *   - selection of the smallest scores over several layers at once (global magnitude pruning);
 *   - a copy of a network's initial parameters kept aligned with the sparse layers while they are
 *     pruned, for lottery-ticket rewinding (iterative pruning). */
#ifndef DSNN_PRUNE_GROW_H
#define DSNN_PRUNE_GROW_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "dsnn/net.h"
#include "dsnn/sparse.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One gradient round on a sparse layer (RigL, Evci et al. 2020): removes the n_drop active
 * connections of smallest |w|, then activates the n_grow connections of largest |dL/dW| (dense
 * gradient of the last backward, computed tile by tile) among those inactive after the drop.
 * As in RigL's reference code, a connection dropped and regrown in the same round is not new:
 * it keeps its value, gradient and optimizer state. Truly new connections get the layer's grow
 * value (zero unless configured otherwise), zero gradient and zero optimizer state. Call between
 * a backward and the next forward. *n_new (may be NULL) gets the number of truly new
 * connections. Costs O(nnz) time and memory for the snapshot plus the tiled dense gradient. */
DSNN_API enum dsnn_status dsnn_prune_grow_gradient(struct dsnn_layer *l, size_t n_drop,
                                                   size_t n_grow, struct dsnn_rng *rng,
                                                   size_t *n_new, struct dsnn_error *err);

/* Removes the connections with |w| < threshold (and NaN weights); *removed (may be NULL) gets
 * how many (DSR). */
DSNN_API enum dsnn_status dsnn_prune_threshold(struct dsnn_layer *l, double threshold,
                                               size_t *removed, struct dsnn_error *err);

/* Marks the `count` smallest scores over n_arrays arrays taken together: mark[a][k] = 1 for the
 * chosen, 0 for the others. NaN counts as the smallest; ties go to the earlier array, then the
 * lower index. DSNN_ERR_INVALID if count exceeds the total length. O(total length) time, 5
 * bytes per score of scratch. */
DSNN_API enum dsnn_status dsnn_select_smallest(size_t n_arrays, const float *const *score,
                                               const size_t *n, size_t count,
                                               uint8_t *const *mark, struct dsnn_error *err);

/* ---- Rewinding (lottery ticket, Frankle & Carbin 2019) ---- */

/* A copy of every parameter block of an initialised network (weights and biases, dense and
 * sparse). The copy of a sparse layer's weight block is aligned with its connections and stays
 * aligned as long as the layer is pruned only through dsnn_rewind_prune_mask. */
struct dsnn_rewind;

/* Copies the current parameters of net. Caller frees with dsnn_rewind_free. */
DSNN_API struct dsnn_rewind *dsnn_rewind_new(struct dsnn_net *net, struct dsnn_error *err);
DSNN_API void dsnn_rewind_free(struct dsnn_rewind *r);
/* Prunes the connections k with remove[k] != 0 of sparse layer `layer` (its index in net) and
 * the same entries of the copy. */
DSNN_API enum dsnn_status dsnn_rewind_prune_mask(struct dsnn_rewind *r, struct dsnn_net *net,
                                                 size_t layer, const uint8_t *remove,
                                                 struct dsnn_error *err);
/* The same for a "sparse_linear" layer `l` anywhere in net: a layer of the net, one inside a
 * residual block, or the weight store of a sparse conv2d (dsnn_sparse_conv2d_weights). */
DSNN_API enum dsnn_status dsnn_rewind_prune_mask_layer(struct dsnn_rewind *r, struct dsnn_net *net,
                                                       struct dsnn_layer *l,
                                                       const uint8_t *remove,
                                                       struct dsnn_error *err);
/* Sets every parameter back to its copied value (surviving connections to their initial
 * values), zeroes gradients and every allocated optimizer state slot. DSNN_ERR_INVALID if a
 * block's size no longer matches its copy (the topology was edited behind the copy's back). The
 * optimizer's own scalars (Adam's step count) are the caller's: recreate the optimizer. */
DSNN_API enum dsnn_status dsnn_rewind_apply(const struct dsnn_rewind *r, struct dsnn_net *net,
                                            struct dsnn_error *err);
/* Checkpoint of the copy; load checks it against net (already loaded). */
DSNN_API enum dsnn_status dsnn_rewind_save(const struct dsnn_rewind *r, FILE *f,
                                           struct dsnn_error *err);
DSNN_API enum dsnn_status dsnn_rewind_load(struct dsnn_rewind *r, struct dsnn_net *net, FILE *f,
                                           struct dsnn_error *err);

#ifdef __cplusplus
}
#endif
#endif
