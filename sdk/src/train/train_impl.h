/* train/train_impl.h - private to libdsnn: the sparse model's state (opaque to plugins: they use
 * the accessors of dsnn/sparse_model.h) and the scheme kit's part of it (train/scheme.c). */
#ifndef DSNN_TRAIN_IMPL_H
#define DSNN_TRAIN_IMPL_H

#include "dsnn/coactivation.h"
#include "dsnn/dynsparse_rules.h"
#include "dsnn/scheme.h"
#include "dsnn/sparse_model.h"

/* The base model (dsnn/train.h; opaque to plugins), embedded by the sparse model. */
struct dsnn_base_model {
    struct dsnn_net *net; /* not owned */
    struct dsnn_optim *opt;
    struct dsnn_optim_cfg optim_cfg;
    struct dsnn_lr_sched sched;
    int64_t step; /* optimizer steps so far */
    uint64_t seed;
    bool debug_weights; /* key debug_weights: bm_log_weights at the end of each epoch */
};

/* dsnn_base_model_new / _free on a caller's struct (zeroed first; bm_release leaves it reusable). */
enum dsnn_status bm_configure(struct dsnn_base_model *bm, const struct dsnn_cfg *cfg,
                              const struct dsnn_run_ctx *ctx, struct dsnn_net *net,
                              struct dsnn_error *err);
void bm_release(struct dsnn_base_model *bm);
/* weight_mean_<layer>, weight_std_<layer> (population std) of every "weight" parameter block of
 * the top-level layers (a second one of a layer: _1, ...). */
void bm_log_weights(const struct dsnn_base_model *bm, struct dsnn_metrics *m);

struct dsnn_sparse_model {
    struct dsnn_base_model base;
    size_t n_layers;                                 /* sparse layers */
    struct dsnn_layer *layer[DSNN_SPARSE_MODEL_MAX_LAYERS]; /* sparse_linear or sparse_conv2d */
    size_t layer_index[DSNN_SPARSE_MODEL_MAX_LAYERS]; /* their index in the network (of the
                                                          residual block holding them) */
    struct dsnn_rng topo_rng; /* DSNN_RNG_STREAM_TOPOLOGY of the trial: prune / regrow draws */
    /* Update bookkeeping (see dsnn_sparse_model_update_begin), per sparse layer: connection keys
     * (row * n_in + col, ascending) before the round and grown by the last round. */
    uint64_t *before[DSNN_SPARSE_MODEL_MAX_LAYERS];
    size_t n_before[DSNN_SPARSE_MODEL_MAX_LAYERS];
    uint64_t *grown[DSNN_SPARSE_MODEL_MAX_LAYERS];
    size_t n_grown[DSNN_SPARSE_MODEL_MAX_LAYERS];
    size_t grown_survived[DSNN_SPARSE_MODEL_MAX_LAYERS];
    bool have_grown;
    uint64_t rounds_ended; /* update brackets ended (dsnn_sparse_model_update_end) */
    uint64_t epoch_rounds_before; /* rounds_ended when the epoch's training pass began */
    bool log_surviving; /* key log_surviving_synapses: surviving_synapses_avg */
    struct dsnn_metrics scratch; /* one round's counts (dsnn_sparse_model_update_end_tally) */

    /* The scheme kit (train/scheme.c). */
    const struct dsnn_scheme *scheme;
    void *params;    /* scheme->params_size bytes */
    bool dense;      /* DSNN_SCHEME_DENSE: the base model alone, no sparse layers */
    struct dsnn_prune_schedule sched; /* DSNN_SCHEME_PRUNE_SCHEDULE */
    struct dsnn_coact *coact;         /* dsnn_scheme_track_coact; NULL: none */
    double coact_alpha;
    bool coact_tracking; /* counting during this epoch's training pass */
    struct dsnn_sparse_update_tally tally; /* this epoch's rounds ended by dsnn_scheme_update_end */
};

/* Reads DSNN_BASE_MODEL_KEYS and DSNN_SPARSE_MODEL_KEYS from cfg, creates the optimizer and
 * replaces the chosen linear layers of net (not yet initialised) by sparse ones. */
enum dsnn_status sm_configure(struct dsnn_sparse_model *sm, const struct dsnn_cfg *cfg,
                              const struct dsnn_run_ctx *ctx, struct dsnn_net *net,
                              struct dsnn_error *err);
/* Initialises the network (parameters, initial topology) and reserves sparse buffers. */
enum dsnn_status sm_init_net(struct dsnn_sparse_model *sm, const struct dsnn_dataset_info *info,
                             struct dsnn_error *err);
/* Frees what sm holds (not sm itself). */
void sm_release(struct dsnn_sparse_model *sm);

#endif
