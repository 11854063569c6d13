/* dsnn-weighted-mag - model plugin: Dynamically Sparse Neural Networks with weighted magnitude
 * pruning (nupic.research DSNNWeightedMag).
 *
 *     model = { plugin = "dsnn-weighted-mag"; on_perc = 0.04; weight_prune_perc = 0.3;
 *               learning_rate = 0.05; momentum = 0.9; };
 *
 * During the training pass the model counts, for every active connection of every sparse layer,
 * the samples in which its input and its output are both active (coactivations: the sum of
 * binary outer products (y > 0)(x > 0)^T, y after the ReLU, the raw output for the output layer;
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
 * and is left alone (nupic would prune it for a round).
 *
 * Differences from nupic: coactivations count the training pass only (nupic's forward hook also
 * counted the test pass that precedes its update); ties prune exactly the count (lowest index
 * first) where nupic's thresholds prune every tied value (e.g. all zero scores).
 *
 * Per epoch, besides the base metrics: pruned_<layer>, grown_<layer>, surviving_synapses_<layer>,
 * kept_<layer>, coact_mean_<layer> (mean coactivation of the active connections per sample),
 * pruning_active, density_<layer>, nnz_<layer>, density_total, n_params. Checkpoint: the sparse
 * model's, plus the coactivation history when averaged. */
#include <dsnn/dsnn.h>

#include <stdlib.h>
#include <string.h>

struct weighted_mag {
    struct dsnn_sparse_model sm; /* first */
    double weight_prune_perc, alpha;
    struct dsnn_prune_schedule sched;
    struct dsnn_coact *coact; /* NULL when pruning is off */
};

static const struct dsnn_key_spec weighted_mag_keys[] = {
    {.name = "plugin", .type = DSNN_KEY_STRING, .def_str = "dsnn-weighted-mag", .doc = "this plugin"},
    DSNN_BASE_MODEL_KEYS,
    DSNN_SPARSE_MODEL_KEYS,
    {.name = "weight_prune_perc", .type = DSNN_KEY_FLOAT, .def = 0.3,
     .doc = "fraction (zeta) of the positive and of the negative scores w * coactivation, those closest "
     "to zero, pruned each round (0: no pruning, nupic None)"},
    {.name = "moving_average_alpha", .type = DSNN_KEY_FLOAT, .def = 1.0,
     .doc = "coactivations used by a round: alpha * this epoch's + (1 - alpha) * the previous value "
     "(1: this epoch only, as nupic)"},
    DSNN_PRUNE_SCHEDULE_KEYS,
};

static void weighted_mag_destroy(void *state)
{
    struct weighted_mag *m = state;
    if (!m)
        return;
    dsnn_coact_free(m->coact);
    dsnn_sparse_model_release(&m->sm);
    free(m);
}

static enum dsnn_status weighted_mag_create(const struct dsnn_cfg *cfg,
                                            const struct dsnn_run_ctx *ctx, struct dsnn_net *net,
                                            const struct dsnn_dataset_info *info, void **state,
                                            struct dsnn_error *err)
{
    struct weighted_mag *m = calloc(1, sizeof *m);
    if (!m)
        return dsnn_error_set(err, DSNN_ERR_NOMEM, "out of memory");
    enum dsnn_status st;
    if ((st = dsnn_sparse_model_configure(&m->sm, cfg, ctx, net, err)) ||
        (st = dsnn_cfg_float(cfg, "weight_prune_perc", 0.3, &m->weight_prune_perc, err)) ||
        (st = dsnn_cfg_check_range(cfg, "weight_prune_perc", m->weight_prune_perc, 0, 1, err)) ||
        (st = dsnn_cfg_float(cfg, "moving_average_alpha", 1.0, &m->alpha, err)) ||
        (st = dsnn_cfg_check_range(cfg, "moving_average_alpha", m->alpha, 1e-9, 1, err)) ||
        (st = dsnn_prune_schedule_read(cfg, &m->sched, err)) ||
        (st = dsnn_sparse_model_init_net(&m->sm, info, err))) {
        weighted_mag_destroy(m);
        return st;
    }
    if (dsnn_perc_on(m->weight_prune_perc)) {
        m->coact = dsnn_coact_new(net, m->sm.layer_index, m->sm.n_layers, false, m->alpha, err);
        if (!m->coact) {
            weighted_mag_destroy(m);
            return err ? err->status : DSNN_ERR_NOMEM;
        }
    }
    *state = m;
    return DSNN_OK;
}

static enum dsnn_status weighted_mag_round(struct weighted_mag *m, struct dsnn_metrics *metrics,
                                           struct dsnn_error *err)
{
    struct dsnn_sparse_model *sm = &m->sm;
    enum dsnn_status st = dsnn_sparse_model_update_begin(sm, err);
    for (size_t i = 0; st == DSNN_OK && i < sm->n_layers; i++) {
        struct dsnn_layer *l = dsnn_sparse_model_layer(sm, i);
        struct dsnn_sparse_csr c;
        dsnn_sparse_get_csr(l, &c);
        if (c.nnz == (size_t)c.n_in * (size_t)c.n_out)
            continue; /* a full layer has nowhere to regrow: left alone */
        const float *coact = m->coact ? dsnn_coact_values(m->coact, i) : NULL;
        if (m->coact && !coact)
            return dsnn_error_set(err, DSNN_ERR_INTERNAL,
                                  "layer '%s': coactivations are not aligned with the topology",
                                  l->name);
        uint8_t *keep = malloc(c.nnz ? c.nnz : 1);
        if (!keep)
            return dsnn_error_set(err, DSNN_ERR_NOMEM, "out of memory");
        size_t n_keep = 0;
        st = dsnn_rule_weighted_mag_keep(c.value, coact, c.nnz, m->weight_prune_perc, keep, &n_keep,
                                         err);
        if (st == DSNN_OK) {
            double samples = (double)dsnn_coact_samples(m->coact);
            if (coact && c.nnz && samples > 0) {
                double sum = 0;
                for (size_t k = 0; k < c.nnz; k++)
                    sum += coact[k];
                dsnn_metrics_setf(metrics, sum / (double)c.nnz / samples, "coact_mean_%s", l->name);
            }
            dsnn_metrics_setf(metrics, (double)n_keep, "kept_%s", l->name);
            size_t inactive = (size_t)c.n_in * (size_t)c.n_out - c.nnz;
            size_t grow = dsnn_rule_grow_count(c.nnz, n_keep, inactive);
            st = dsnn_dynsparse_apply(l, keep, grow, NULL, NULL, &sm->topo_rng, err);
        }
        free(keep);
    }
    if (st != DSNN_OK)
        return st;
    dsnn_sparse_model_update_pruned(sm);
    return dsnn_sparse_model_update_end(sm, metrics, err);
}

static enum dsnn_status weighted_mag_train_epoch(void *state, struct dsnn_data *data, int epoch,
                                                 struct dsnn_metrics *metrics,
                                                 struct dsnn_error *err)
{
    struct weighted_mag *m = state;
    bool round_due;
    enum dsnn_status st = dsnn_coact_train_epoch(&m->sm, m->coact, &m->sched, m->alpha, data,
                                                 epoch, metrics, &round_due, err);
    if (st != DSNN_OK || !round_due)
        return st;
    return weighted_mag_round(m, metrics, err);
}

static enum dsnn_status weighted_mag_evaluate(void *state, struct dsnn_data *data,
                                              enum dsnn_split split, struct dsnn_metrics *metrics,
                                              struct dsnn_error *err)
{
    return dsnn_base_model_evaluate(&((struct weighted_mag *)state)->sm.base, data, split, metrics,
                                    err);
}

static enum dsnn_status weighted_mag_save(void *state, FILE *f, struct dsnn_error *err)
{
    struct weighted_mag *m = state;
    return dsnn_coact_model_save(&m->sm, m->coact, f, err);
}

static enum dsnn_status weighted_mag_load(void *state, FILE *f, struct dsnn_error *err)
{
    struct weighted_mag *m = state;
    return dsnn_coact_model_load(&m->sm, m->coact, f, err);
}

static const struct dsnn_model_ops weighted_mag_ops = {
    .create = weighted_mag_create,
    .train_epoch = weighted_mag_train_epoch,
    .evaluate = weighted_mag_evaluate,
    .save = weighted_mag_save,
    .load = weighted_mag_load,
    .destroy = weighted_mag_destroy,
};

static const struct dsnn_component weighted_mag_components[] = {
    DSNN_COMPONENT(DSNN_KIND_MODEL, "dsnn-weighted-mag", "1.0.0",
                   "DSNN (nupic DSNNWeightedMag): prune by |w * coactivation|, regrow at random",
                   weighted_mag_ops, weighted_mag_keys),
};

DSNN_PLUGIN_DEFINE("dsnn-weighted-mag", weighted_mag_components)
