/* dsnn/sparse_model.h - nupic's SparseModel: the base of every sparse training scheme.
 *
 * It embeds the dense base model (optimizer, LR schedule, epoch loop, checkpoint), replaces the
 * network's linear layers by truly sparse ones before initialisation, and logs their density.
 * Model plugins (sparse, set, dsnn, rigl ...) get one from the scheme kit (dsnn/scheme.h) and add
 * their prune / regrow rule. */
#ifndef DSNN_SPARSE_MODEL_H
#define DSNN_SPARSE_MODEL_H

#include "dsnn/sparse.h"
#include "dsnn/train.h"

#ifdef __cplusplus
extern "C" {
#endif

#define DSNN_SPARSE_MODEL_MAX_LAYERS 64

/* Opaque: plugins reach it through the scheme kit (dsnn/scheme.h), which creates it, and the
 * accessors below. */
struct dsnn_sparse_model;

/* Keys read by the sparse model (the scheme kit configures it) besides the base model's (on_perc, epsilon,
 * density_distribution, sparse_type, start_sparse, end_sparse, sparse_linear_only, weight_init,
 * weight_std, sparse_fan_in, grow_init, grow_std), as one entry of a plugin's key table. */
DSNN_API extern const struct dsnn_key_table dsnn_sparse_model_keys;
#define DSNN_SPARSE_MODEL_KEYS DSNN_KEYS_FROM(dsnn_sparse_model_keys)

/* Sparse layer i (0 <= i < n_layers), or NULL. */
DSNN_API struct dsnn_layer *dsnn_sparse_model_layer(const struct dsnn_sparse_model *sm, size_t i);
/* The number of sparse layers (0 for a dense scheme), at most DSNN_SPARSE_MODEL_MAX_LAYERS. */
DSNN_API size_t dsnn_sparse_model_n_layers(const struct dsnn_sparse_model *sm);
/* The index in the network of sparse layer i (i < n_layers). */
DSNN_API size_t dsnn_sparse_model_layer_index(const struct dsnn_sparse_model *sm, size_t i);
/* Gradient-based growth (dsnn_prune_grow_gradient, dsnn_sparse_grow_gradient) needs the dense
 * gradient dL/dW of the last backward. Sparse linear layers compute it on demand; sparse conv2d
 * layers only for a backward run with this on (it costs a dense weight-gradient convolution), so
 * a scheme turns it on from its after_forward hook for the steps whose gradients it will use,
 * and off for the others. No effect without sparse convolutions. */
DSNN_API void dsnn_sparse_model_keep_dense_grad(struct dsnn_sparse_model *sm, bool on);
/* The random stream of prune / regrow draws (DSNN_RNG_STREAM_TOPOLOGY of the trial; part of the
 * checkpoint). */
DSNN_API struct dsnn_rng *dsnn_sparse_model_topo_rng(struct dsnn_sparse_model *sm);
/* The network (not owned) and the base model (optimizer, LR schedule, step: dsnn/train.h). */
DSNN_API struct dsnn_net *dsnn_sparse_model_net(const struct dsnn_sparse_model *sm);
DSNN_API struct dsnn_base_model *dsnn_sparse_model_base(struct dsnn_sparse_model *sm);

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

/* Checkpoint: the base model plus the topology random stream and the last round's regrown
 * connections (the scheme kit writes it, then the scheme's own part). */
DSNN_API enum dsnn_status dsnn_sparse_model_save(struct dsnn_sparse_model *sm, FILE *f,
                                                 struct dsnn_error *err);
DSNN_API enum dsnn_status dsnn_sparse_model_load(struct dsnn_sparse_model *sm, FILE *f,
                                                 struct dsnn_error *err);

/* Sets the initial density of every sparse layer (from a scheme's configure callback, before the network is initialised), whatever
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
 * and surviving_synapses_<layer> averaged over the rounds that had it (absent if none did).
 * dsnn_sparse_model_update_end_tally(sm, &t, err) ends a bracket that way (with a scratch
 * struct dsnn_metrics of the model's own). */
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
DSNN_API enum dsnn_status dsnn_sparse_model_update_end_tally(struct dsnn_sparse_model *sm,
                                                             struct dsnn_sparse_update_tally *t,
                                                             struct dsnn_error *err);
DSNN_API void dsnn_sparse_update_tally_log(const struct dsnn_sparse_update_tally *t,
                                           const struct dsnn_sparse_model *sm,
                                           struct dsnn_metrics *m);

#ifdef __cplusplus
}
#endif
#endif
