/* snfs - model plugin: Sparse Networks From Scratch, sparse momentum (Dettmers & Zettlemoyer
 * 2019) on truly sparse layers.
 *
 *     model = { plugin = "snfs"; on_perc = 0.05; prune_rate = 0.5; prune_rate_decay = "cosine";
 *               learning_rate = 0.05; momentum = 0.9; };
 *
 * At the end of every epoch but the last (or every update_frequency optimizer steps when > 0):
 *  1. prune rate p = prune_rate annealed over the whole training (prune_rate_decay: "cosine"
 *     as the paper, "linear" or "constant", the decays of the reference code; x = steps done /
 *     (epochs x steps per epoch));
 *  2. each sparse layer i gets its momentum contribution m_i = mean |momentum| of its active
 *     weights (optimizer state slot 0 of the weight block: SGD's momentum buffer, Adam's first
 *     moment), measured before pruning;
 *  3. each layer removes its ceil(p nnz_i) active weights of smallest |w|;
 *  4. the total removed is regrown across layers in proportion to m_i / sum m, each layer capped
 *     at its capacity (inactive connections after the prune); the excess of a capped layer goes
 *     to the others in proportion to their m_i (dsnn_allocate_capped; the reference caps at 99 %
 *     and spreads the residual evenly);
 *  5. within a layer, the new connections are the inactive ones of largest |dense gradient|
 *     (dsnn_prune_grow_gradient), start at 0 with zero optimizer state; a weight pruned and
 *     regrown by the same round keeps its value and state.
 *
 * Deviation from the paper (honest proxy): sparse momentum grows at the inactive weights of
 * largest |momentum|, which the masked-dense reference has because it keeps a dense momentum
 * buffer. A truly sparse layer has no momentum for inactive connections (holding one would cost
 * dense memory), so the gradient of the last batch, dL/dW computed densely tile by tile, is used
 * instead: it is the newest term of the momentum sum, not its average over past batches, so
 * growth is noisier than with true momentum. Active weights use their true momentum for the
 * redistribution (step 2).
 *
 * Per epoch, besides the base metrics: update_rounds, prune_rate (of the epoch's last round, 0
 * without one), momentum_share_<layer> (m_i / sum m of the last round), pruned_<layer>,
 * grown_<layer> (summed over the epoch's rounds; they differ per layer: redistribution),
 * surviving_synapses_<layer>, density_<layer>, nnz_<layer>, density_total, n_params.
 * Checkpoint: the sparse model's; the schedule is a function of the step. */
#include <dsnn/dsnn.h>

#include <math.h>

struct snfs_model {
    double prune_rate;
    int decay_key;
    int64_t frequency;   /* 0: end of epoch */
    enum dsnn_anneal decay;
    int64_t total_steps; /* decay horizon */
    int epochs;
    /* this epoch's, reset by end_epoch */
    double last_rate;
    double share[DSNN_SPARSE_MODEL_MAX_LAYERS];
};

static const char *const decay_names[] = {"constant", "cosine", "linear", NULL};
static const enum dsnn_anneal decay_values[] = {DSNN_ANNEAL_CONSTANT, DSNN_ANNEAL_COSINE,
                                                DSNN_ANNEAL_LINEAR};

static const struct dsnn_key_spec snfs_keys[] = {
    DSNN_SCHEME_KEYS("snfs"),
    {.name = "prune_rate", .type = DSNN_KEY_FLOAT, .def = 0.5, DSNN_KEY_RANGE(0, 1),
     DSNN_KEY_AT(struct snfs_model, prune_rate),
     .doc = "initial fraction of each sparse layer's active weights pruned (smallest |w|) per round"},
    {.name = "prune_rate_decay", .type = DSNN_KEY_STRING, .def_str = "cosine",
     .choices = decay_names, DSNN_KEY_AT(struct snfs_model, decay_key),
     .doc = "decay of prune_rate over the training steps: \"cosine\", \"linear\" or \"constant\""},
    {.name = "update_frequency", .type = DSNN_KEY_INT, .def = 0, DSNN_KEY_RANGE(0, 1e12),
     DSNN_KEY_AT(struct snfs_model, frequency),
     .doc = "0: a round at the end of every epoch but the last (the paper); N > 0: every N optimizer "
     "steps instead"},
};

static enum dsnn_status snfs_configure(struct dsnn_sparse_model *sm, void *params,
                                       const struct dsnn_cfg *cfg, const struct dsnn_run_ctx *ctx,
                                       const struct dsnn_dataset_info *info,
                                       struct dsnn_error *err)
{
    struct snfs_model *m = params;
    m->decay = decay_values[m->decay_key];
    const struct dsnn_optim_cfg *oc = dsnn_base_model_optim_cfg(dsnn_sparse_model_base(sm));
    if (oc->alg == DSNN_OPTIM_SGD && oc->momentum <= 0) {
        char where[300];
        return dsnn_error_set(err, DSNN_ERR_CONFIG,
                              "%s: key '%s.momentum': snfs redistributes by the momentum of the "
                              "optimizer: set momentum > 0 (SGD) or optim_alg = \"Adam\"",
                              dsnn_cfg_where(cfg, "momentum", where, sizeof where),
                              dsnn_cfg_path(cfg));
    }
    const int64_t bs = info->batch_size_train > 0 ? info->batch_size_train : 1;
    m->epochs = ctx ? ctx->epochs : 1;
    m->total_steps = (int64_t)m->epochs * ((info->n_train + bs - 1) / bs);
    return DSNN_OK;
}

/* One sparse-momentum round at t optimizer steps. Needs the gradients of the last backward. */
static enum dsnn_status snfs_round(struct dsnn_sparse_model *sm, void *params, int64_t t,
                                   struct dsnn_error *err)
{
    struct snfs_model *m = params;
    const size_t n = dsnn_sparse_model_n_layers(sm);
    const double p = dsnn_anneal_at(m->decay, m->prune_rate, t, 0, m->total_steps, 1.0);
    if (!(p > 0) || n == 0)
        return DSNN_OK;
    double mom[DSNN_SPARSE_MODEL_MAX_LAYERS], msum = 0;
    size_t drop[DSNN_SPARSE_MODEL_MAX_LAYERS], cap[DSNN_SPARSE_MODEL_MAX_LAYERS];
    size_t grow[DSNN_SPARSE_MODEL_MAX_LAYERS], total = 0;
    for (size_t i = 0; i < n; i++) {
        struct dsnn_layer *l = dsnn_sparse_model_layer(sm, i);
        const size_t nnz = dsnn_sparse_nnz(l);
        const struct dsnn_param_block *w = dsnn_sparse_weight(l);
        double s = 0;
        if (w->state[0])
            for (size_t k = 0; k < nnz; k++)
                s += fabs((double)w->state[0][k]);
        mom[i] = nnz ? s / (double)nnz : 0.0;
        msum += mom[i];
        double want = ceil(p * (double)nnz - 1e-9);
        drop[i] = want >= (double)nnz ? nnz : (size_t)want;
        cap[i] = dsnn_sparse_capacity(l) - (nnz - drop[i]);
        total += drop[i];
    }
    dsnn_allocate_capped(n, mom, cap, total, grow);
    enum dsnn_status st = dsnn_sparse_model_update_begin(sm, err);
    for (size_t i = 0; st == DSNN_OK && i < n; i++)
        st = dsnn_prune_grow_gradient(dsnn_sparse_model_layer(sm, i), drop[i], grow[i],
                                      dsnn_sparse_model_topo_rng(sm), NULL, err);
    if (st != DSNN_OK)
        return st;
    dsnn_sparse_model_update_pruned(sm); /* regrown weights were restored: see rigl.c */
    if ((st = dsnn_scheme_update_end(sm, err)))
        return st;
    m->last_rate = p;
    for (size_t i = 0; i < n; i++)
        m->share[i] = msum > 0 ? mom[i] / msum : 1.0 / (double)n;
    return DSNN_OK;
}

/* Sparse convolutions compute the dense gradient only for the backward whose gradients a round
 * uses (every backward when rounds run at epoch ends, update_frequency = 0). */
static enum dsnn_status snfs_after_forward(struct dsnn_sparse_model *sm, void *params,
                                           const struct dsnn_batch *b, struct dsnn_error *err)
{
    (void)b, (void)err;
    const struct snfs_model *m = params;
    dsnn_scheme_dense_grad_when_due(sm, 0, m->total_steps - 1, m->frequency);
    return DSNN_OK;
}

static enum dsnn_status snfs_after_step(struct dsnn_sparse_model *sm, void *params, int64_t step,
                                        struct dsnn_error *err)
{
    const struct snfs_model *m = params;
    if (m->frequency <= 0)
        return DSNN_OK;
    return dsnn_scheme_step_round(sm, params, step, 0, m->total_steps - 1, m->frequency,
                                  snfs_round, "snfs round", err);
}

static enum dsnn_status snfs_end_epoch(struct dsnn_sparse_model *sm, void *params, int epoch,
                                       struct dsnn_metrics *metrics, struct dsnn_error *err)
{
    struct snfs_model *m = params;
    enum dsnn_status st;
    if (m->frequency == 0 && epoch < m->epochs - 1) {
        /* the gradients of the epoch's last batch are still there (no forward since) */
        const int64_t t = dsnn_base_model_step(dsnn_sparse_model_base(sm));
        if ((st = snfs_round(sm, m, t, err)) != DSNN_OK)
            return dsnn_error_prefix(err, "snfs round after epoch %d", epoch);
    }
    const size_t rounds = dsnn_scheme_log_rounds(sm, metrics);
    dsnn_metrics_set(metrics, "prune_rate", m->last_rate);
    if (rounds)
        for (size_t i = 0; i < dsnn_sparse_model_n_layers(sm); i++)
            dsnn_metrics_setf(metrics, m->share[i], "momentum_share_%s",
                              dsnn_sparse_model_layer(sm, i)->name);
    m->last_rate = 0; /* for the next epoch */
    return DSNN_OK;
}

DSNN_MODEL_PLUGIN("snfs", "1.0.0",
                  "Sparse momentum (Dettmers & Zettlemoyer 2019): magnitude pruning, regrowth "
                  "redistributed across layers by mean momentum, grown at the largest gradients",
                  snfs_keys, .params_size = sizeof(struct snfs_model), .configure = snfs_configure,
                  .after_forward = snfs_after_forward, .after_step = snfs_after_step,
                  .end_epoch = snfs_end_epoch, .tag = "SNFS")
