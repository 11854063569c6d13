/* dsnn/sparse_model.h - nupic's SparseModel: the base of every sparse training scheme.
 *
 * It embeds the dense base model (optimizer, LR schedule, epoch loop, checkpoint), replaces the
 * network's linear layers by truly sparse ones before initialisation, and logs their density.
 * Model plugins (sparse, set, dsnn, rigl ...) embed it and add their prune / regrow rule. */
#ifndef DSNN_SPARSE_MODEL_H
#define DSNN_SPARSE_MODEL_H

#include "dsnn/sparse.h"
#include "dsnn/train.h"

#ifdef __cplusplus
extern "C" {
#endif

#define DSNN_SPARSE_MODEL_MAX_LAYERS 64

struct dsnn_sparse_model {
    struct dsnn_base_model base;
    size_t n_layers;                                 /* sparse layers */
    size_t layer_index[DSNN_SPARSE_MODEL_MAX_LAYERS]; /* their index in the network */
    struct dsnn_rng topo_rng; /* DSNN_RNG_STREAM_TOPOLOGY of the trial: prune / regrow draws */
    /* Update bookkeeping (see dsnn_sparse_model_update_begin), per sparse layer: connection keys
     * (row * n_in + col, ascending) before the round and grown by the last round. */
    uint64_t *before[DSNN_SPARSE_MODEL_MAX_LAYERS];
    size_t n_before[DSNN_SPARSE_MODEL_MAX_LAYERS];
    uint64_t *grown[DSNN_SPARSE_MODEL_MAX_LAYERS];
    size_t n_grown[DSNN_SPARSE_MODEL_MAX_LAYERS];
    size_t grown_survived[DSNN_SPARSE_MODEL_MAX_LAYERS];
    bool have_grown;
};

/* Keys read by dsnn_sparse_model_configure besides the base model's (on_perc, epsilon,
 * density_distribution, sparse_type, start_sparse, end_sparse, sparse_linear_only, weight_init,
 * weight_std, sparse_fan_in, grow_init, grow_std), as one entry of a plugin's key table. */
DSNN_API extern const struct dsnn_key_table dsnn_sparse_model_keys;
#define DSNN_SPARSE_MODEL_KEYS DSNN_KEYS_FROM(dsnn_sparse_model_keys)

/* Reads DSNN_BASE_MODEL_KEYS and DSNN_SPARSE_MODEL_KEYS from cfg, creates the optimizer and
 * replaces the chosen linear layers of net (not yet initialised) by sparse ones. */
DSNN_API enum dsnn_status dsnn_sparse_model_configure(struct dsnn_sparse_model *sm,
                                                      const struct dsnn_cfg *cfg,
                                                      const struct dsnn_run_ctx *ctx,
                                                      struct dsnn_net *net,
                                                      struct dsnn_error *err);
/* Initialises the network (parameters, initial topology) and reserves sparse buffers. */
DSNN_API enum dsnn_status dsnn_sparse_model_init_net(struct dsnn_sparse_model *sm,
                                                     const struct dsnn_dataset_info *info,
                                                     struct dsnn_error *err);
/* Sparse layer i (0 <= i < n_layers). */
DSNN_API struct dsnn_layer *dsnn_sparse_model_layer(const struct dsnn_sparse_model *sm, size_t i);

/* Adds density_<layer>, nnz_<layer> for each sparse layer, density_total (active / dense
 * connections over the sparse layers) and n_params (all trainable values). */
DSNN_API void dsnn_sparse_model_log_density(const struct dsnn_sparse_model *sm,
                                            struct dsnn_metrics *m);
/* A prune / regrow round over the sparse layers, bracketed so that the counts are logged the
 * same way by every scheme:
 *     dsnn_sparse_model_update_begin(sm, err);     snapshot of every layer's connections
 *     ... prune ...
 *     dsnn_sparse_model_update_pruned(sm);        which connections of the last round survived
 *     ... grow ...
 *     dsnn_sparse_model_update_end(sm, m, err);   logs the round
 * Logged per sparse layer: pruned_<layer>, grown_<layer>, and surviving_synapses_<layer> =
 * fraction of the connections grown by the previous round that this round did not prune
 * (nupic's SET metric; absent after the first round). Costs O(nnz) time and 8 bytes per
 * connection during the round. */
DSNN_API enum dsnn_status dsnn_sparse_model_update_begin(struct dsnn_sparse_model *sm,
                                                         struct dsnn_error *err);
DSNN_API void dsnn_sparse_model_update_pruned(struct dsnn_sparse_model *sm);
DSNN_API enum dsnn_status dsnn_sparse_model_update_end(struct dsnn_sparse_model *sm,
                                                       struct dsnn_metrics *m,
                                                       struct dsnn_error *err);

/* Round observer, for tests and tools that watch topology changes (mask logging, invariant
 * checks): fn is called by every update bracket of every sparse model in the process, with phase
 * DSNN_SPARSE_ROUND_BEGIN at the end of dsnn_sparse_model_update_begin (before the round's first
 * edit: the weights and connections the rule sees) and DSNN_SPARSE_ROUND_END at the end of
 * dsnn_sparse_model_update_end (round holds the round's logged counts). NULL removes it. Process
 * wide and not thread-safe: set it before training starts. Append only. */
enum dsnn_sparse_round_phase { DSNN_SPARSE_ROUND_BEGIN = 0, DSNN_SPARSE_ROUND_END = 1 };
typedef void (*dsnn_sparse_round_observer)(void *user, const struct dsnn_sparse_model *sm,
                                           enum dsnn_sparse_round_phase phase,
                                           const struct dsnn_metrics *round);
DSNN_API void dsnn_sparse_model_set_round_observer(dsnn_sparse_round_observer fn, void *user);

/* For an epoch without a prune / regrow round: logs pruned_<layer> = grown_<layer> = 0 and the
 * density (dsnn_sparse_model_log_density), so that every epoch has the same columns. */
DSNN_API void dsnn_sparse_model_log_idle(const struct dsnn_sparse_model *sm,
                                         struct dsnn_metrics *m);

/* Checkpoint: the base model plus the topology random stream. */
DSNN_API enum dsnn_status dsnn_sparse_model_save(struct dsnn_sparse_model *sm, FILE *f,
                                                 struct dsnn_error *err);
DSNN_API enum dsnn_status dsnn_sparse_model_load(struct dsnn_sparse_model *sm, FILE *f,
                                                 struct dsnn_error *err);
DSNN_API void dsnn_sparse_model_release(struct dsnn_sparse_model *sm);

/* Sets the initial density of every sparse layer (after configure, before init_net), whatever
 * on_perc / epsilon said: e.g. 1.0 for schemes that start dense and prune (gradual magnitude
 * pruning, lottery ticket). density in [0, 1]. */
DSNN_API enum dsnn_status dsnn_sparse_model_set_density(struct dsnn_sparse_model *sm,
                                                        double density, struct dsnn_error *err);

/* Schemes that update every few optimizer steps (RigL, DSR ...) run several update rounds per
 * epoch. Run each round's bracket with a scratch struct dsnn_metrics, add it to a tally, and log
 * the tally with the epoch's metrics:
 *     dsnn_sparse_update_tally_clear(&t);                  at the start of the epoch
 *     update_begin / update_pruned / update_end(sm, &scratch, err); dsnn_sparse_update_tally_add(
 *         &t, sm, &scratch);                               each round
 *     dsnn_sparse_update_tally_log(&t, sm, m);             at the end of the epoch
 * Logged: update_rounds; per sparse layer pruned_<layer> and grown_<layer> summed over the rounds
 * and surviving_synapses_<layer> averaged over the rounds that had it (absent if none did). */
struct dsnn_sparse_update_tally {
    size_t rounds;
    double pruned[DSNN_SPARSE_MODEL_MAX_LAYERS];
    double grown[DSNN_SPARSE_MODEL_MAX_LAYERS];
    double surviving_sum[DSNN_SPARSE_MODEL_MAX_LAYERS];
    size_t surviving_n[DSNN_SPARSE_MODEL_MAX_LAYERS];
};
DSNN_API void dsnn_sparse_update_tally_clear(struct dsnn_sparse_update_tally *t);
DSNN_API void dsnn_sparse_update_tally_add(struct dsnn_sparse_update_tally *t,
                                           const struct dsnn_sparse_model *sm,
                                           const struct dsnn_metrics *round);
DSNN_API void dsnn_sparse_update_tally_log(const struct dsnn_sparse_update_tally *t,
                                           const struct dsnn_sparse_model *sm,
                                           struct dsnn_metrics *m);

#ifdef __cplusplus
}
#endif
#endif
