/* dsnn-weighted-mag - model plugin: Dynamically Sparse Neural Networks with weighted magnitude
 * pruning (nupic.research DSNNWeightedMag).
 *
 *     model = { plugin = "dsnn-weighted-mag"; on_perc = 0.04; weight_prune_perc = 0.3;
 *               learning_rate = 0.05; momentum = 0.9; };
 *
 * During the training pass the model counts, for every active connection of every sparse layer,
 * the samples in which its input and its output are both active (coactivations: the sum of
 * binary outer products (y > 0)(x > 0)^T, y at the end of the layer's block (after batch norm,
 * ReLU / k-winners, dropout), the raw output for the output layer;
 * see dsnn/coactivation.h), at a cost of O(nnz * batch / 64) per batch and 4 bytes per
 * connection. After the training pass of every pruning_interval-th epoch (then the host
 * evaluates), each sparse layer scores its connections by w * coactivation (the weighted
 * magnitude: a connection whose endpoints never fire together scores 0) and prunes, as nupic,
 * int(weight_prune_perc * n_pos) of the n_pos scores >= 0 and n_neg - int((1 - zeta) n_neg) of
 * the n_neg negative scores, those closest to zero (dsnn_rule_weighted_mag_keep); then it grows
 * back to its connection count at random among the connections inactive before the round.
 * weight_prune_perc = 0 switches pruning off (nupic None). Regrown weights start at grow_init
 * ("zero"). pruning_early_stop = N stops the rounds once N lr_milestones have passed. A layer at
 * density 1 (e.g. the output layer under Erdos-Renyi) has no inactive connection to regrow into
 * and is left alone (nupic, which never masks a module of on_perc >= 1, does not prune it either).
 *
 * Differences from nupic: ties prune exactly the count (lowest index first) where nupic's
 * thresholds prune every tied value (e.g. all zero scores). The fraction is weight_prune_perc, the
 * key nupic read in 2019 (run_blackbox.py); its later name hebbian_prune_perc is accepted too.
 *
 * Per epoch, besides the base metrics: pruned_<layer>, grown_<layer>, surviving_synapses_<layer>,
 * kept_<layer>, coact_mean_<layer> (mean coactivation of the active connections per sample),
 * pruning_active, density_<layer>, nnz_<layer>, density_total, n_params. Checkpoint: the sparse
 * model's, plus the coactivation history when averaged. */
#include <dsnn/dsnn.h>

struct weighted_mag {
    double weight_prune_perc[DSNN_SPARSE_MODEL_MAX_LAYERS]; /* per sparse layer */
    struct dsnn_coact_keys ck; /* moving_average_alpha, coactivations, update_nsteps ... */
};

static const struct dsnn_key_spec weighted_mag_keys[] = {
    DSNN_SCHEME_KEYS("dsnn-weighted-mag"),
    {.name = "weight_prune_perc", .type = DSNN_KEY_FLOAT_OR_ARRAY, .def = 0.3, DSNN_KEY_RANGE(0, 1),
     .doc = "fraction (zeta) of the positive and of the negative scores w * coactivation, those closest "
     "to zero, pruned each round: one value, or one per sparse layer (0: no pruning there, nupic "
     "None)"},
    /* nupic read weight_prune_perc for this rule in 2019 (run_blackbox.py), hebbian_prune_perc
     * since: either name works, not both */
    DSNN_KEY_ALIAS_OF("hebbian_prune_perc", "weight_prune_perc", "nupic's later"),
    DSNN_COACT_KEYS(struct weighted_mag, ck),
    DSNN_PRUNE_SCHEDULE_KEYS,
};

static enum dsnn_status weighted_mag_configure(struct dsnn_sparse_model *sm, void *params,
                                               const struct dsnn_cfg *cfg,
                                               const struct dsnn_run_ctx *ctx,
                                               const struct dsnn_dataset_info *info,
                                               struct dsnn_error *err)
{
    (void)ctx, (void)info;
    struct weighted_mag *p = params;
    enum dsnn_status st = dsnn_coact_keys_check(cfg, &p->ck, err);
    return st != DSNN_OK ? st
                         : dsnn_scheme_read_per_layer(sm, cfg, "weight_prune_perc", 0.3,
                                                      p->weight_prune_perc, err);
}

static enum dsnn_status weighted_mag_init(struct dsnn_sparse_model *sm, void *params,
                                          const struct dsnn_run_ctx *ctx, struct dsnn_error *err)
{
    (void)ctx;
    const struct weighted_mag *p = params;
    bool any = false;
    for (size_t i = 0; i < dsnn_sparse_model_n_layers(sm); i++)
        any = any || dsnn_perc_on(p->weight_prune_perc[i]);
    if (!any)
        return DSNN_OK; /* pruning off: no coactivations */
    const struct dsnn_coact_options o = dsnn_coact_keys_options(&p->ck);
    return dsnn_scheme_track_coact_opts(sm, false, p->ck.alpha, &o, err);
}

static enum dsnn_status weighted_mag_keep(const void *params, size_t layer, const float *w,
                                          const float *coact, size_t nnz, uint8_t *keep,
                                          size_t *n_keep, struct dsnn_error *err)
{
    const struct weighted_mag *p = params;
    return dsnn_rule_weighted_mag_keep(w, coact, nnz, p->weight_prune_perc[layer], keep, n_keep,
                                       err);
}

static enum dsnn_status weighted_mag_round(struct dsnn_sparse_model *sm, void *params, int epoch,
                                           struct dsnn_metrics *metrics, struct dsnn_error *err)
{
    (void)epoch;
    return dsnn_scheme_coact_round_layers(sm, params, weighted_mag_keep, false, metrics, err);
}

DSNN_MODEL_PLUGIN("dsnn-weighted-mag", "1.0.0",
                  "DSNN (nupic DSNNWeightedMag): prune by |w * coactivation|, regrow at random",
                  weighted_mag_keys, .params_size = sizeof(struct weighted_mag),
                  .flags = DSNN_SCHEME_PRUNE_SCHEDULE, .configure = weighted_mag_configure,
                  .init = weighted_mag_init, .round = weighted_mag_round)
