/* set - model plugin: Sparse Evolutionary Training (Mocanu et al. 2018; nupic.research SET).
 *
 *     model = { plugin = "set"; epsilon = 20.0; weight_prune_perc = 0.3; learning_rate = 0.05;
 *               momentum = 0.9; lr_scheduler = "MultiStepLR"; lr_milestones = [10, 20];
 *               pruning_early_stop = 2; };
 *
 * The chosen linear layers become truly sparse (on_perc, or Erdos-Renyi with epsilon as the
 * static `sparse` model). At the end of every pruning_interval-th epoch, after its evaluation
 * (nupic's order: train, test, then prune / regrow in _post_epoch_updates), each sparse layer
 * loses the round(weight_prune_perc * n) weights closest to zero among its n positive weights,
 * and as many among its negative ones (dsnn_sparse_prune_signed), then regrows as many connections at random
 * positions (dsnn_sparse_grow_random with the trial's topology stream), so nnz stays constant.
 * Regrown weights start at grow_init ("zero" by default, as nupic). pruning_early_stop = N stops
 * the rounds once N lr_milestones have passed (nupic DSNNHeb). A layer at density 1 (e.g. the
 * output layer under Erdos-Renyi) has no inactive connection to regrow into and is left alone
 * (nupic would prune it and regrow elsewhere in the next round only).
 *
 * Differences from nupic's SET.prune: counts are rounded (nupic: int(zeta * n_pos) - 1 positive
 * and n_neg - int((1 - zeta) n_neg) negative weights, via thresholds) and a connection pruned by a
 * round may be redrawn by the same round (probability pruned / inactive, about 1 % at 4 %
 * density; nupic draws among the connections inactive before the round).
 *
 * Per epoch, besides the base metrics: pruned_<layer>, grown_<layer> (0 without a round),
 * surviving_synapses_<layer> (fraction of the previous round's regrown connections this round
 * kept), pruning_active, density_<layer>, nnz_<layer>, density_total, n_params. Checkpoint: the
 * sparse model's (dsnn/scheme.h); the schedule is a function of the epoch. */
#include <dsnn/dsnn.h>

struct set_params {
    double weight_prune_perc[DSNN_SPARSE_MODEL_MAX_LAYERS]; /* per sparse layer */
};

static const struct dsnn_key_spec set_keys[] = {
    DSNN_SCHEME_KEYS("set"),
    {.name = "weight_prune_perc", .type = DSNN_KEY_FLOAT_OR_ARRAY, .def = 0.3, DSNN_KEY_RANGE(0, 1),
     .doc = "fraction (zeta) of the positive and of the negative weights, those closest to zero, pruned "
     "and regrown at random each round: one value, or one per sparse layer (0: that layer static)"},
    DSNN_PRUNE_SCHEDULE_KEYS,
};

static enum dsnn_status set_configure(struct dsnn_sparse_model *sm, void *params,
                                      const struct dsnn_cfg *cfg, const struct dsnn_run_ctx *ctx,
                                      const struct dsnn_dataset_info *info, struct dsnn_error *err)
{
    (void)ctx, (void)info;
    struct set_params *p = params;
    return dsnn_scheme_read_per_layer(sm, cfg, "weight_prune_perc", 0.3, p->weight_prune_perc,
                                      err);
}

/* SET's prune rule: the weight_prune_perc positive and negative weights closest to zero. */
static enum dsnn_status set_prune(const void *params, size_t layer, struct dsnn_layer *l,
                                  size_t *removed, struct dsnn_error *err)
{
    const struct set_params *p = params;
    return dsnn_sparse_prune_signed(l, p->weight_prune_perc[layer], removed, err);
}

/* One SET round over every sparse layer, logged by the sparse model's update bracket. */
static enum dsnn_status set_round(struct dsnn_sparse_model *sm, void *params, int epoch,
                                  struct dsnn_metrics *metrics, struct dsnn_error *err)
{
    (void)epoch;
    return dsnn_scheme_random_round_layers(sm, params, set_prune, metrics, err);
}

DSNN_MODEL_PLUGIN("set", "1.0.0",
                  "Sparse Evolutionary Training (nupic SET): signed magnitude pruning and random "
                  "regrowth of truly sparse layers after each epoch",
                  set_keys, .params_size = sizeof(struct set_params),
                  .flags = DSNN_SCHEME_PRUNE_SCHEDULE, .configure = set_configure,
                  .round = set_round)
