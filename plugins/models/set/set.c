/* set - model plugin: Sparse Evolutionary Training (Mocanu et al. 2018; nupic.research SET).
 *
 *     model = { plugin = "set"; epsilon = 20.0; weight_prune_perc = 0.3; learning_rate = 0.05;
 *               momentum = 0.9; lr_scheduler = "MultiStepLR"; lr_milestones = [10, 20];
 *               pruning_early_stop = 2; };
 *
 * The chosen linear layers become truly sparse (on_perc, or Erdos-Renyi with epsilon as the
 * static `sparse` model). After the training pass of every pruning_interval-th epoch (nupic's
 * order: train, then prune / regrow, then the host evaluates), each sparse layer loses the
 * round(weight_prune_perc * n) weights closest to zero among its n positive weights, and as many
 * among its negative ones (dsnn_sparse_prune_signed), then regrows as many connections at random
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
 * Per epoch, besides the base metrics: pruned_<layer>, grown_<layer> (0 on epochs without a
 * round), surviving_synapses_<layer> (fraction of the previous round's regrown connections that
 * this round kept), pruning_active, density_<layer>, nnz_<layer>, density_total, n_params. The
 * checkpoint is the sparse model's (weights, topology, optimizer state, topology stream, last
 * round's regrown connections); the schedule is a function of the epoch. */
#include <dsnn/dsnn.h>

#include <stdlib.h>

struct set_model {
    struct dsnn_sparse_model sm; /* first */
    double weight_prune_perc;
    struct dsnn_prune_schedule sched;
};

static const struct dsnn_key_spec set_keys[] = {
    {.name = "plugin", .type = DSNN_KEY_STRING, .def_str = "set", .doc = "this plugin"},
    DSNN_BASE_MODEL_KEYS,
    DSNN_SPARSE_MODEL_KEYS,
    {.name = "weight_prune_perc", .type = DSNN_KEY_FLOAT, .def = 0.3,
     .doc = "fraction (zeta) of the positive and of the negative weights, those closest to zero, pruned "
     "and regrown at random each round"},
    DSNN_PRUNE_SCHEDULE_KEYS,
};

static void set_destroy(void *state)
{
    struct set_model *m = state;
    if (!m)
        return;
    dsnn_sparse_model_release(&m->sm);
    free(m);
}

static enum dsnn_status set_create(const struct dsnn_cfg *cfg, const struct dsnn_run_ctx *ctx,
                                   struct dsnn_net *net, const struct dsnn_dataset_info *info,
                                   void **state, struct dsnn_error *err)
{
    struct set_model *m = calloc(1, sizeof *m);
    if (!m)
        return dsnn_error_set(err, DSNN_ERR_NOMEM, "out of memory");
    enum dsnn_status st;
    if ((st = dsnn_sparse_model_configure(&m->sm, cfg, ctx, net, err)) ||
        (st = dsnn_cfg_float(cfg, "weight_prune_perc", 0.3, &m->weight_prune_perc, err)) ||
        (st = dsnn_cfg_check_range(cfg, "weight_prune_perc", m->weight_prune_perc, 0, 1, err)) ||
        (st = dsnn_prune_schedule_read(cfg, &m->sched, err)) ||
        (st = dsnn_sparse_model_init_net(&m->sm, info, err))) {
        set_destroy(m);
        return st;
    }
    *state = m;
    return DSNN_OK;
}

/* One SET round over every sparse layer, logged by the sparse model's update bracket. */
static enum dsnn_status set_round(struct set_model *m, struct dsnn_metrics *metrics,
                                  struct dsnn_error *err)
{
    struct dsnn_sparse_model *sm = &m->sm;
    size_t removed[DSNN_SPARSE_MODEL_MAX_LAYERS] = {0};
    enum dsnn_status st = dsnn_sparse_model_update_begin(sm, err);
    for (size_t i = 0; st == DSNN_OK && i < sm->n_layers; i++) {
        struct dsnn_layer *l = dsnn_sparse_model_layer(sm, i);
        if (dsnn_sparse_density(l) < 1.0) /* a full layer has nowhere to regrow: left alone */
            st = dsnn_sparse_prune_signed(l, m->weight_prune_perc, &removed[i], err);
    }
    if (st != DSNN_OK)
        return st;
    dsnn_sparse_model_update_pruned(sm);
    for (size_t i = 0; st == DSNN_OK && i < sm->n_layers; i++)
        st =
            dsnn_sparse_grow_random(dsnn_sparse_model_layer(sm, i), removed[i], &sm->topo_rng, err);
    if (st != DSNN_OK)
        return st;
    return dsnn_sparse_model_update_end(sm, metrics, err);
}

static enum dsnn_status set_train_epoch(void *state, struct dsnn_data *data, int epoch,
                                        struct dsnn_metrics *metrics, struct dsnn_error *err)
{
    struct set_model *m = state;
    enum dsnn_status st = dsnn_base_model_train_epoch(&m->sm.base, data, epoch, NULL, metrics, err);
    if (st != DSNN_OK)
        return st;
    bool active = dsnn_prune_schedule_active(&m->sched, epoch);
    dsnn_metrics_set(metrics, "pruning_active", active);
    if (!active) {
        dsnn_sparse_model_log_idle(&m->sm, metrics);
        return DSNN_OK;
    }
    return set_round(m, metrics, err);
}

static enum dsnn_status set_evaluate(void *state, struct dsnn_data *data, enum dsnn_split split,
                                     struct dsnn_metrics *metrics, struct dsnn_error *err)
{
    return dsnn_base_model_evaluate(&((struct set_model *)state)->sm.base, data, split, metrics,
                                    err);
}

static enum dsnn_status set_save(void *state, FILE *f, struct dsnn_error *err)
{
    return dsnn_sparse_model_save(&((struct set_model *)state)->sm, f, err);
}

static enum dsnn_status set_load(void *state, FILE *f, struct dsnn_error *err)
{
    return dsnn_sparse_model_load(&((struct set_model *)state)->sm, f, err);
}

static const struct dsnn_model_ops set_ops = {
    .create = set_create,
    .train_epoch = set_train_epoch,
    .evaluate = set_evaluate,
    .save = set_save,
    .load = set_load,
    .destroy = set_destroy,
};

static const struct dsnn_component set_components[] = {
    DSNN_COMPONENT(DSNN_KIND_MODEL, "set", "1.0.0",
                   "Sparse Evolutionary Training (nupic SET): signed magnitude pruning and random "
                   "regrowth of truly sparse layers after each epoch",
                   set_ops, set_keys),
};

DSNN_PLUGIN_DEFINE("set", set_components)
