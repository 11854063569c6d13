/* dsnn-mixed-heb - model plugin: Dynamically Sparse Neural Networks with mixed Hebbian and
 * magnitude pruning (nupic.research DSNNMixedHeb).
 *
 *     model = { plugin = "dsnn-mixed-heb"; on_perc = 0.04; hebbian_prune_perc = 0.3;
 *               weight_prune_perc = 0.3; hebbian_grow = false; learning_rate = 0.05;
 *               momentum = 0.9; };
 *
 * During the training pass the model counts, for every connection of every sparse layer, the
 * samples in which its input and its output are both active (coactivations: the sum of binary
 * outer products (y > 0)(x > 0)^T, y after the ReLU, the raw output for the output layer; see
 * dsnn/coactivation.h). After the training pass of every pruning_interval-th epoch (then the
 * host evaluates), each sparse layer:
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
 * no inactive connection to regrow into and is left alone (nupic would prune it for a round).
 *
 * Cost: coactivations are counted only at active connections, O(nnz * batch / 64) per batch
 * and 4 bytes per connection, unless hebbian_grow = true, which needs those of EVERY pair: a
 * dense n_out x n_in count matrix per sparse layer, 4 bytes per pair (8 with
 * moving_average_alpha < 1: 4 MB / 8 MB for a 1000 x 1000 layer) and O(n_out * n_in * batch / 64)
 * popcounts per batch. Coactivations are not tracked at all when neither the Hebbian rule nor
 * Hebbian growth is on (the model then is nupic's SET variant of DSNNMixedHeb).
 *
 * Differences from nupic: coactivations count the training pass only (nupic's forward hook also
 * counted the test pass that precedes its update); ties prune / grow exactly the count (lowest
 * index first) where nupic's thresholds prune all tied values; nupic's default hebbian_grow is
 * true and both percentages default to None.
 *
 * Per epoch, besides the base metrics: pruned_<layer>, grown_<layer>, surviving_synapses_<layer>,
 * kept_<layer> (connections kept by the rule), coact_mean_<layer> (mean coactivation of the
 * active connections per sample), pruning_active, density_<layer>, nnz_<layer>, density_total,
 * n_params. Checkpoint: the sparse model's, plus the coactivation history when averaged. */
#include <dsnn/dsnn.h>

#include <stdlib.h>
#include <string.h>

struct mixed_heb {
    struct dsnn_sparse_model sm; /* first */
    double hebbian_prune_perc, weight_prune_perc, alpha;
    bool hebbian_grow;
    struct dsnn_prune_schedule sched;
    struct dsnn_coact *coact; /* NULL when neither rule needs coactivations */
};

static const struct dsnn_key_spec mixed_heb_keys[] = {
    {.name = "plugin", .type = DSNN_KEY_STRING, .def_str = "dsnn-mixed-heb", .doc = "this plugin"},
    DSNN_BASE_MODEL_KEYS,
    DSNN_SPARSE_MODEL_KEYS,
    {.name = "hebbian_prune_perc", .type = DSNN_KEY_FLOAT, .def = 0.3,
     .doc = "fraction (tau) of each layer's connections, those of lowest coactivation, pruned by the "
     "Hebbian rule (0: rule off, nupic None)"},
    {.name = "weight_prune_perc", .type = DSNN_KEY_FLOAT, .def = 0.3,
     .doc = "fraction (zeta) of the positive and of the negative weights, those closest to zero, "
     "pruned by the magnitude rule (0: rule off, nupic None); a connection goes only if both "
     "rules prune it"},
    {.name = "hebbian_grow", .type = DSNN_KEY_BOOL, .def = false,
     .doc = "regrow the inactive connections of highest coactivation (needs a dense n_out x n_in "
     "count matrix per layer) instead of random ones"},
    {.name = "moving_average_alpha", .type = DSNN_KEY_FLOAT, .def = 1.0,
     .doc = "coactivations used by a round: alpha * this epoch's + (1 - alpha) * the previous value "
     "(1: this epoch only, as nupic)"},
    DSNN_PRUNE_SCHEDULE_KEYS,
};

static void mixed_heb_destroy(void *state)
{
    struct mixed_heb *m = state;
    if (!m)
        return;
    dsnn_coact_free(m->coact);
    dsnn_sparse_model_release(&m->sm);
    free(m);
}

static enum dsnn_status mixed_heb_create(const struct dsnn_cfg *cfg, const struct dsnn_run_ctx *ctx,
                                         struct dsnn_net *net, const struct dsnn_dataset_info *info,
                                         void **state, struct dsnn_error *err)
{
    struct mixed_heb *m = calloc(1, sizeof *m);
    if (!m)
        return dsnn_error_set(err, DSNN_ERR_NOMEM, "out of memory");
    enum dsnn_status st;
    if ((st = dsnn_sparse_model_configure(&m->sm, cfg, ctx, net, err)) ||
        (st = dsnn_cfg_float(cfg, "hebbian_prune_perc", 0.3, &m->hebbian_prune_perc, err)) ||
        (st = dsnn_cfg_check_range(cfg, "hebbian_prune_perc", m->hebbian_prune_perc, 0, 1, err)) ||
        (st = dsnn_cfg_float(cfg, "weight_prune_perc", 0.3, &m->weight_prune_perc, err)) ||
        (st = dsnn_cfg_check_range(cfg, "weight_prune_perc", m->weight_prune_perc, 0, 1, err)) ||
        (st = dsnn_cfg_bool(cfg, "hebbian_grow", false, &m->hebbian_grow, err)) ||
        (st = dsnn_cfg_float(cfg, "moving_average_alpha", 1.0, &m->alpha, err)) ||
        (st = dsnn_cfg_check_range(cfg, "moving_average_alpha", m->alpha, 1e-9, 1, err)) ||
        (st = dsnn_prune_schedule_read(cfg, &m->sched, err)) ||
        (st = dsnn_sparse_model_init_net(&m->sm, info, err))) {
        mixed_heb_destroy(m);
        return st;
    }
    if (dsnn_perc_on(m->hebbian_prune_perc) || m->hebbian_grow) {
        m->coact =
            dsnn_coact_new(net, m->sm.layer_index, m->sm.n_layers, m->hebbian_grow, m->alpha, err);
        if (!m->coact) {
            mixed_heb_destroy(m);
            return err ? err->status : DSNN_ERR_NOMEM;
        }
    }
    *state = m;
    return DSNN_OK;
}

/* Hebbian growth: the score of an inactive connection is its coactivation. */
struct heb_score {
    const float *dense; /* [n_out][n_in] */
    int n_in;
};

static enum dsnn_status heb_score(void *user, struct dsnn_layer *l, int row0, int row1, float *out,
                                  struct dsnn_error *err)
{
    (void)l;
    (void)err;
    const struct heb_score *h = user;
    memcpy(out, h->dense + (size_t)row0 * (size_t)h->n_in,
           (size_t)(row1 - row0) * (size_t)h->n_in * sizeof *out);
    return DSNN_OK;
}

static enum dsnn_status mixed_heb_round(struct mixed_heb *m, struct dsnn_metrics *metrics,
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
        st = dsnn_rule_mixed_heb_keep(c.value, coact, c.nnz, m->hebbian_prune_perc,
                                      m->weight_prune_perc, keep, &n_keep, err);
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
            struct heb_score hs = {m->hebbian_grow ? dsnn_coact_dense(m->coact, i) : NULL, c.n_in};
            if (m->hebbian_grow && !hs.dense)
                st = dsnn_error_set(err, DSNN_ERR_INTERNAL,
                                    "layer '%s': no dense coactivations for Hebbian growth",
                                    l->name);
            else
                st = dsnn_dynsparse_apply(l, keep, grow, m->hebbian_grow ? heb_score : NULL, &hs,
                                          &sm->topo_rng, err);
        }
        free(keep);
    }
    if (st != DSNN_OK)
        return st;
    dsnn_sparse_model_update_pruned(sm);
    return dsnn_sparse_model_update_end(sm, metrics, err);
}

static enum dsnn_status mixed_heb_train_epoch(void *state, struct dsnn_data *data, int epoch,
                                              struct dsnn_metrics *metrics, struct dsnn_error *err)
{
    struct mixed_heb *m = state;
    bool round_due;
    enum dsnn_status st = dsnn_coact_train_epoch(&m->sm, m->coact, &m->sched, m->alpha, data,
                                                 epoch, metrics, &round_due, err);
    if (st != DSNN_OK || !round_due)
        return st;
    return mixed_heb_round(m, metrics, err);
}

static enum dsnn_status mixed_heb_evaluate(void *state, struct dsnn_data *data,
                                           enum dsnn_split split, struct dsnn_metrics *metrics,
                                           struct dsnn_error *err)
{
    return dsnn_base_model_evaluate(&((struct mixed_heb *)state)->sm.base, data, split, metrics,
                                    err);
}

static enum dsnn_status mixed_heb_save(void *state, FILE *f, struct dsnn_error *err)
{
    struct mixed_heb *m = state;
    return dsnn_coact_model_save(&m->sm, m->coact, f, err);
}

static enum dsnn_status mixed_heb_load(void *state, FILE *f, struct dsnn_error *err)
{
    struct mixed_heb *m = state;
    return dsnn_coact_model_load(&m->sm, m->coact, f, err);
}

static const struct dsnn_model_ops mixed_heb_ops = {
    .create = mixed_heb_create,
    .train_epoch = mixed_heb_train_epoch,
    .evaluate = mixed_heb_evaluate,
    .save = mixed_heb_save,
    .load = mixed_heb_load,
    .destroy = mixed_heb_destroy,
};

static const struct dsnn_component mixed_heb_components[] = {
    DSNN_COMPONENT(DSNN_KIND_MODEL, "dsnn-mixed-heb", "1.0.0",
                   "DSNN (nupic DSNNMixedHeb): prune connections that are both weak and rarely "
                   "coactive, regrow at random or by coactivation",
                   mixed_heb_ops, mixed_heb_keys),
};

DSNN_PLUGIN_DEFINE("dsnn-mixed-heb", mixed_heb_components)
