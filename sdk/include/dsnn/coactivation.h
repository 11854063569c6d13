/* dsnn/coactivation.h - Hebbian coactivation statistics of linear layers (nupic MLPHeb).
 *
 * For a tracked layer with input x [batch][n_in] and output y [batch][n_out], the coactivation of
 * connection (o, i) over an epoch is the number of training samples with y[o] > 0 and x[i] > 0:
 * the sum over the batches of the binary outer products (y > 0)(x > 0)^T. For a linear layer y
 * is the output of its block, as nupic's DSLinearBlock hook sees it: after the layers that
 * follow it keeping the shape and are a batch norm or parameter-free (ReLU, k-winners, dropout),
 * or the layer's raw output when none follows (the output layer); for a sparse convolution, the
 * output of a parameter-free layer of the same shape right after it, or its raw output. x is the
 * previous layer's output (the network input for the first layer).
 *
 * Activities are packed to bits per unit over the batch and counted with popcount, so a batch
 * costs O(batch (n_in + n_out)) to pack plus, per storage:
 *   - active (default): one value per ACTIVE connection, aligned with the CSR weight block;
 *     O(nnz * batch / 64) per batch, 4 bytes per connection (16 with a moving average: history
 *     and connection keys).
 *   - dense: one value per PAIR (n_out x n_in), for rules that need the coactivations of inactive
 *     connections (Hebbian growth); O(n_out * n_in_active * batch / 64) per batch and 4 bytes
 *     per pair (8 with a moving average): 4 MB for a 1000 x 1000 layer, 8 MB with an average.
 * Counts are kept as floats: exact up to 2^24 samples per epoch.
 *
 * Protocol, per epoch:
 *     dsnn_coact_begin_epoch   zero the counts, realign the history with the current topology
 *     dsnn_coact_accumulate    after every training forward (a dsnn_train_hooks.after_forward)
 *     dsnn_coact_end_epoch     counts -> values (moving average)
 *     dsnn_coact_values        read them (aligned with the CSR until the next topology edit)
 *     ... prune / regrow ...
 * Moving average (alpha in (0, 1]), per epoch (the default of dsnn_coact_new): value = alpha *
 * count + (1 - alpha) * previous value; alpha = 1 uses the last epoch only (nupic). A connection
 * without history (grown since, in the active storage; every pair in the first epoch) takes its
 * count. Per batch (nupic's moving_average_alpha): see struct dsnn_coact_options. */
#ifndef DSNN_COACTIVATION_H
#define DSNN_COACTIVATION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "dsnn/config.h"
#include "dsnn/export.h"
#include "dsnn/keys.h"
#include "dsnn/net.h"
#include "dsnn/dynsparse_rules.h"
#include "dsnn/sparse_model.h"
#include "dsnn/status.h"

#ifdef __cplusplus
extern "C" {
#endif

struct dsnn_coact; /* opaque */

/* Tracks the linear layers net[layer_index[i]], i < n_layers (sparse: "sparse_linear", or dense
 * "linear" with dense = true). dense selects the dense storage for every layer. net must be
 * initialised and must outlive the tracker. Caller owns the result (dsnn_coact_free). */
DSNN_API struct dsnn_coact *dsnn_coact_new(struct dsnn_net *net, const size_t *layer_index,
                                           size_t n_layers, bool dense, double alpha,
                                           struct dsnn_error *err);
DSNN_API void dsnn_coact_free(struct dsnn_coact *c);

DSNN_API enum dsnn_status dsnn_coact_begin_epoch(struct dsnn_coact *c, struct dsnn_error *err);
/* Adds the coactivations of the last forward of the network; x is that forward's input
 * ([batch][input size]; used only when a tracked layer is the first one). */
DSNN_API enum dsnn_status dsnn_coact_accumulate(struct dsnn_coact *c, const float *x, int batch,
                                                struct dsnn_error *err);
DSNN_API enum dsnn_status dsnn_coact_end_epoch(struct dsnn_coact *c, struct dsnn_error *err);

/* Values of tracked layer i at its active connections (CSR order), or NULL if there are none
 * yet or the layer's topology changed since dsnn_coact_end_epoch. Owned by the tracker. */
DSNN_API const float *dsnn_coact_values(const struct dsnn_coact *c, size_t i);
/* Values of every pair of tracked layer i, [n_out][n_in] row-major (dense storage only; NULL
 * otherwise or before the first dsnn_coact_end_epoch). Valid across topology edits. */
DSNN_API const float *dsnn_coact_dense(const struct dsnn_coact *c, size_t i);
/* Variants of nupic's DSLinear / MLPHeb coactivations (set before the first epoch):
 *   real_valued: value(o, i) = sum over samples of y[o] x[i] (activities after the activation
 *       function) instead of the count of samples with both > 0; linear layers only.
 *   update_interval: only every N-th training batch is counted, the first one included (nupic's
 *       update_nsteps; the clock runs over the batches passed to dsnn_coact_accumulate and is
 *       part of the checkpoint); 1: every batch.
 *   keep_across_epochs: begin_epoch does not reset the values, the epoch's counts are added to
 *       them (nupic's reset_coactivations = false); a connection grown since starts from 0.
 *       Excludes a moving average per epoch (alpha < 1, DSNN_COACT_AVERAGE_EPOCH).
 *   average: what a moving average (alpha < 1) averages over.
 *       DSNN_COACT_AVERAGE_EPOCH: the epochs' counts, value = alpha * count + (1 - alpha) *
 *           previous value, once per epoch (dsnn's own; the default of this struct).
 *       DSNN_COACT_AVERAGE_BATCH: the counted batches, as nupic's DSLinear / DSConv2d with
 *           moving_average_alpha: value = (1 - alpha) * value + alpha * (the batch's counts)
 *           after every counted batch, from 0 at the start of an epoch (or, with
 *           keep_across_epochs, from the value at the end of the last one; a connection grown
 *           since from 0). alpha = 1 is no average (plain sums: nupic's None). */
enum dsnn_coact_average {
    DSNN_COACT_AVERAGE_EPOCH = 0,
    DSNN_COACT_AVERAGE_BATCH = 1
};
struct dsnn_coact_options {
    bool real_valued;
    int64_t update_interval;
    bool keep_across_epochs;
    enum dsnn_coact_average average;
};
DSNN_API enum dsnn_status dsnn_coact_set_options(struct dsnn_coact *c,
                                                 const struct dsnn_coact_options *o,
                                                 struct dsnn_error *err);
/* The keys of the coactivations of a coactivation-driven model (its moving average and the
 * variants above) in its key table, read into a struct dsnn_coact_keys member M of the plugin's
 * parameter struct T; then dsnn_coact_keys_options gives the options, M.alpha the average's
 * alpha (dsnn_coact_new). */
struct dsnn_coact_keys {
    int values;            /* coactivations: 0 "binary", 1 "real" */
    int64_t update_nsteps; /* update_nsteps */
    bool reset;            /* reset_coactivations */
    int average;           /* moving_average: 0 "batch", 1 "epoch" */
    double alpha;          /* moving_average_alpha */
};
DSNN_API extern const char *const dsnn_coact_value_choices[];
DSNN_API extern const char *const dsnn_coact_average_choices[];
#define DSNN_COACT_KEYS(T, M)                                                              \
    {.name = "moving_average_alpha", .type = DSNN_KEY_FLOAT, .def = 1.0, DSNN_KEY_RANGE(1e-9, 1),  \
     DSNN_KEY_AT(T, M.alpha),                                                              \
     .doc = "moving average of the coactivations (see moving_average): with \"batch\" (nupic's "   \
            "moving_average_alpha) value = (1 - alpha) value + alpha (counts of the batch) after " \
            "every counted batch; with \"epoch\" value = alpha (this epoch's counts) + (1 - "      \
            "alpha) value; 1: no average, the epoch's sums (nupic's None)"},                       \
    {.name = "coactivations", .type = DSNN_KEY_STRING, .def_str = "binary",                        \
     .choices = dsnn_coact_value_choices, DSNN_KEY_AT(T, M.values),                        \
     .doc = "\"binary\": a connection's coactivation is the number of samples whose input and "    \
            "output are both > 0 (nupic's DSLinear); \"real\": the sum over samples of output * "   \
            "input (after the activation function; linear layers only)"},                          \
    {.name = "update_nsteps", .type = DSNN_KEY_INT, .def = 1, DSNN_KEY_RANGE(1, 1000000000),       \
     DSNN_KEY_AT(T, M.update_nsteps),                                                      \
     .doc = "count coactivations in every N-th training batch only, the first one included "       \
            "(nupic's update_nsteps)"},                                                            \
    {.name = "reset_coactivations", .type = DSNN_KEY_BOOL, .def = true,                            \
     DSNN_KEY_AT(T, M.reset),                                                              \
     .doc = "start each epoch's coactivations from 0 (false: carry them over the epochs, grown "   \
            "connections from 0; excludes moving_average = \"epoch\" with "                       \
            "moving_average_alpha < 1)"},                                                          \
    {.name = "moving_average", .type = DSNN_KEY_STRING, .def_str = "batch",                        \
     .choices = dsnn_coact_average_choices, DSNN_KEY_AT(T, M.average),                     \
     .doc = "what moving_average_alpha < 1 averages: \"batch\": after every counted batch, "        \
            "value = (1 - alpha) value + alpha (batch counts), from 0 each epoch (nupic's "       \
            "DSLinear); \"epoch\": once per epoch, value = alpha (epoch counts) + (1 - alpha) "     \
            "value"}
DSNN_API struct dsnn_coact_options dsnn_coact_keys_options(const struct dsnn_coact_keys *k);
/* The check across keys (for a configure callback): reset_coactivations = false excludes
 * moving_average = "epoch" with moving_average_alpha < 1 (DSNN_ERR_CONFIG naming the file and
 * line). */
DSNN_API enum dsnn_status dsnn_coact_keys_check(const struct dsnn_cfg *cfg,
                                                const struct dsnn_coact_keys *k,
                                                struct dsnn_error *err);

/* Whether values outlive an epoch (a moving average per epoch or kept counts): the
 * coactivations are then counted in every epoch before rewiring stops, not only in epochs
 * followed by a round. */
DSNN_API bool dsnn_coact_every_epoch(const struct dsnn_coact *c);
/* Whether the training pass of epoch counts coactivations: c tracks some (not NULL) and a round
 * follows the epoch (round_due), or values outlive an epoch and sched has not stopped the rounds
 * by then. */
DSNN_API bool dsnn_coact_tracks_epoch(const struct dsnn_coact *c,
                                      const struct dsnn_prune_schedule *sched, bool round_due,
                                      int epoch);

/* Samples accumulated since dsnn_coact_begin_epoch. */
DSNN_API long long dsnn_coact_samples(const struct dsnn_coact *c);

/* Checkpoint of the moving-average history (nothing else survives an epoch boundary). */
DSNN_API enum dsnn_status dsnn_coact_save(const struct dsnn_coact *c, FILE *f,
                                          struct dsnn_error *err);
DSNN_API enum dsnn_status dsnn_coact_load(struct dsnn_coact *c, FILE *f, struct dsnn_error *err);

/* ---- Shared by the coactivation-driven (DSNN) model plugins ---- */

/* One training epoch of a coactivation-driven scheme: counts coactivations while training when
 * a prune / regrow round follows this epoch (or every epoch before rewiring stops, when values
 * outlive an epoch: dsnn_coact_every_epoch), logs pruning_active, and sets *round_due when the caller must run its
 * round now; otherwise logs an idle round (dsnn_sparse_model_log_idle). coact may be NULL. */
DSNN_API enum dsnn_status dsnn_coact_train_epoch(struct dsnn_sparse_model *sm,
                                                 struct dsnn_coact *coact,
                                                 const struct dsnn_prune_schedule *sched,
                                                 struct dsnn_data *data, int epoch,
                                                 struct dsnn_metrics *m, bool *round_due,
                                                 struct dsnn_error *err);
/* Checkpoint of such a model: the sparse model, then the coactivations (if coact != NULL). */
DSNN_API enum dsnn_status dsnn_coact_model_save(struct dsnn_sparse_model *sm,
                                                const struct dsnn_coact *coact, FILE *f,
                                                struct dsnn_error *err);
DSNN_API enum dsnn_status dsnn_coact_model_load(struct dsnn_sparse_model *sm,
                                                struct dsnn_coact *coact, FILE *f,
                                                struct dsnn_error *err);

#ifdef __cplusplus
}
#endif
#endif
