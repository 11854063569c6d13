/* dsnn-mixed-heb - model plugin: Dynamically Sparse Neural Networks with mixed Hebbian and
 * magnitude pruning (nupic.research DSNNMixedHeb).
 *
 *     model = { plugin = "dsnn-mixed-heb"; on_perc = 0.04; hebbian_prune_perc = 0.3;
 *               weight_prune_perc = 0.3; hebbian_grow = false; learning_rate = 0.05;
 *               momentum = 0.9; };
 *
 * During the training pass the model counts, for every connection of every sparse layer, the
 * samples in which its input and its output are both active (coactivations: the sum of binary
 * outer products (y > 0)(x > 0)^T, y at the end of the layer's block (after batch norm,
 * ReLU / k-winners, dropout), the raw output for the output layer; see
 * dsnn/coactivation.h; the training pass only, as nupic's hook). At the end of every
 * pruning_interval-th epoch, after its evaluation (nupic's _post_epoch_updates), each sparse
 * layer:
 *   - keeps a connection if the Hebbian rule keeps it (its coactivation is not among the
 *     int(hebbian_prune_perc * nnz) lowest) OR the magnitude rule keeps it (its weight is not
 *     among the int(weight_prune_perc * n_pos) positive, nor the n_neg - int((1 - zeta) n_neg)
 *     negative weights closest to zero): a connection is pruned only if both rules prune it.
 *     A percentage of 0 switches its rule off (nupic: None or 0); with both off nothing is
 *     pruned; with one off, the other rule decides alone (dsnn_rule_mixed_heb_keep);
 *   - grows back to its connection count among the connections inactive before the round:
 *     those of highest coactivation with hebbian_grow = true, else uniformly at random.
 * Regrown weights start at grow_init ("zero"). pruning_early_stop = N stops the rounds once N
 * lr_milestones have passed. A layer at density 1 (e.g. the output layer under Erdos-Renyi) has
 * no inactive connection to regrow into and is left alone (nupic, which never masks a module of on_perc >= 1, does not prune it either).
 *
 * Cost: coactivations are counted only at active connections, O(nnz * batch / 64) per batch
 * and 4 bytes per connection, unless hebbian_grow = true, which needs those of EVERY pair: a
 * dense n_out x n_in count matrix per sparse layer, 4 bytes per pair (8 with
 * moving_average_alpha < 1: 4 MB / 8 MB for a 1000 x 1000 layer) and O(n_out * n_in * batch / 64)
 * popcounts per batch. Coactivations are not tracked at all when neither the Hebbian rule nor
 * Hebbian growth is on (the model then is nupic's SET variant of DSNNMixedHeb).
 *
 * Differences from nupic: ties prune / grow exactly the count (lowest index first) where nupic's
 * thresholds prune all tied values; nupic's default hebbian_grow is true and both percentages
 * default to None.
 *
 * Per epoch, besides the base metrics: pruned_<layer>, grown_<layer>, surviving_synapses_<layer>,
 * kept_<layer> (connections kept by the rule), coact_mean_<layer> (mean coactivation of the
 * active connections per sample), pruning_active, density_<layer>, nnz_<layer>, density_total,
 * n_params. Checkpoint: the sparse model's, plus the coactivation history when averaged. */
#include <dsnn/dsnn.h>

struct mixed_heb {
    double hebbian_prune_perc[DSNN_SPARSE_MODEL_MAX_LAYERS]; /* per sparse layer */
    double weight_prune_perc[DSNN_SPARSE_MODEL_MAX_LAYERS];
    struct dsnn_coact_keys ck; /* moving_average_alpha, coactivations, update_nsteps ... */
    bool hebbian_grow;
};

static const struct dsnn_key_spec mixed_heb_keys[] = {
    DSNN_SCHEME_KEYS("dsnn-mixed-heb"),
    {.name = "hebbian_prune_perc", .type = DSNN_KEY_FLOAT_OR_ARRAY, .def = 0.3, DSNN_KEY_RANGE(0, 1),
     .doc = "fraction (tau) of each layer's connections, those of lowest coactivation, pruned by the "
     "Hebbian rule: one value or one per sparse layer (0: rule off there, nupic None)"},
    {.name = "weight_prune_perc", .type = DSNN_KEY_FLOAT_OR_ARRAY, .def = 0.3, DSNN_KEY_RANGE(0, 1),
     .doc = "fraction (zeta) of the positive and of the negative weights, those closest to zero, "
     "pruned by the magnitude rule: one value or one per sparse layer (0: rule off there, nupic "
     "None); a connection goes only if both rules prune it"},
    {.name = "hebbian_grow", .type = DSNN_KEY_BOOL, .def = false,
     DSNN_KEY_AT(struct mixed_heb, hebbian_grow),
     .doc = "regrow the inactive connections of highest coactivation (needs a dense n_out x n_in "
     "count matrix per layer) instead of random ones"},
    DSNN_COACT_KEYS(struct mixed_heb, ck),
    DSNN_PRUNE_SCHEDULE_KEYS,
};

static enum dsnn_status mixed_heb_configure(struct dsnn_sparse_model *sm, void *params,
                                            const struct dsnn_cfg *cfg,
                                            const struct dsnn_run_ctx *ctx,
                                            const struct dsnn_dataset_info *info,
                                            struct dsnn_error *err)
{
    (void)ctx, (void)info;
    struct mixed_heb *p = params;
    enum dsnn_status st = dsnn_coact_keys_check(cfg, &p->ck, err);
    if (st == DSNN_OK)
        st = dsnn_scheme_read_per_layer(sm, cfg, "hebbian_prune_perc", 0.3, p->hebbian_prune_perc,
                                        err);
    return st != DSNN_OK ? st
                         : dsnn_scheme_read_per_layer(sm, cfg, "weight_prune_perc", 0.3,
                                                      p->weight_prune_perc, err);
}

static enum dsnn_status mixed_heb_init(struct dsnn_sparse_model *sm, void *params,
                                       const struct dsnn_run_ctx *ctx, struct dsnn_error *err)
{
    (void)ctx;
    const struct mixed_heb *p = params;
    bool hebbian = false;
    for (size_t i = 0; i < dsnn_sparse_model_n_layers(sm); i++)
        hebbian = hebbian || dsnn_perc_on(p->hebbian_prune_perc[i]);
    if (!hebbian && !p->hebbian_grow)
        return DSNN_OK; /* neither rule needs coactivations */
    const struct dsnn_coact_options o = dsnn_coact_keys_options(&p->ck);
    return dsnn_scheme_track_coact_opts(sm, p->hebbian_grow, p->ck.alpha, &o, err);
}

static enum dsnn_status mixed_heb_keep(const void *params, size_t layer, const float *w,
                                       const float *coact, size_t nnz, uint8_t *keep,
                                       size_t *n_keep, struct dsnn_error *err)
{
    const struct mixed_heb *p = params;
    return dsnn_rule_mixed_heb_keep(w, coact, nnz, p->hebbian_prune_perc[layer],
                                    p->weight_prune_perc[layer], keep, n_keep, err);
}

static enum dsnn_status mixed_heb_round(struct dsnn_sparse_model *sm, void *params, int epoch,
                                        struct dsnn_metrics *metrics, struct dsnn_error *err)
{
    (void)epoch;
    const struct mixed_heb *p = params;
    return dsnn_scheme_coact_round_layers(sm, p, mixed_heb_keep, p->hebbian_grow, metrics, err);
}

DSNN_MODEL_PLUGIN("dsnn-mixed-heb", "1.0.0",
                  "DSNN (nupic DSNNMixedHeb): prune connections that are both weak and rarely "
                  "coactive, regrow at random or by coactivation",
                  mixed_heb_keys, .params_size = sizeof(struct mixed_heb),
                  .flags = DSNN_SCHEME_PRUNE_SCHEDULE, .configure = mixed_heb_configure,
                  .init = mixed_heb_init, .round = mixed_heb_round)
