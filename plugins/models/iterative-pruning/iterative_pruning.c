/* iterative-pruning - model plugin: iterative magnitude pruning with rewinding, the lottery
 * ticket procedure (Frankle & Carbin 2019), on truly sparse layers.
 *
 *     experiment = { epochs = 10; ... };
 *     model = { plugin = "iterative-pruning"; n_iterations = 5; iteration_epochs = 2;
 *               prune_perc = 0.2; prune_scope = "layer"; learning_rate = 0.05; momentum = 0.9; };
 *
 * The chosen linear layers become sparse layers that start at on_perc or, when on_perc is unset,
 * 1.0 (dense, stored sparse). Every parameter's initial value is kept (dsnn_rewind: one copy per
 * parameter block, the copy of a sparse weight block aligned with its connections). The training
 * is n_iterations rounds of iteration_epochs epochs (experiment.epochs must equal their product).
 * At the start of every round but the first:
 *  1. prune prune_perc of the remaining connections by magnitude (smallest |w| after the previous
 *     round's training): per sparse layer (prune_scope = "layer", prune_perc one value or one
 *     per layer) or over all sparse layers at once (prune_scope = "global");
 *  2. with rewind = true (the lottery ticket), set every surviving weight, and every bias and
 *     dense parameter, back to its initial value, zero the optimizer state and restart the
 *     optimizer (Adam's step count);
 *  3. train again: with rewind, each round replays the learning-rate schedule and the data order
 *     of the first (the epoch passed to the base model is the epoch within the round, as
 *     open_lth's levels); without, training simply goes on (schedule of the global epoch).
 * The density after round r (0-based) is d0 (1 - prune_perc)^r; the last round's accuracy is
 * the ticket's. Pruned connections are removed from the layers (memory and time shrink).
 *
 * Per epoch, besides the base metrics: iteration (0-based round), iteration_epoch (epoch within
 * the round), pruning_active (1 on the first epoch of a round that began by pruning),
 * pruned_<layer>, grown_<layer> (0), density_<layer>, nnz_<layer>, density_total, n_params.
 * Checkpoint: the sparse model's plus the initial-value copy.
 *
 * Differences from the paper: the weights are pruned at the end of a round's training, not at
 * the early-stopping iteration; the output layer is pruned at the same rate unless prune_perc
 * gives one value per layer (the paper halves it for fully connected nets: [0.2, 0.2, 0.1]). */
#include <dsnn/dsnn.h>

#include <math.h>
#include <stdlib.h>

struct itp_model {
    int64_t n_iterations, iteration_epochs; /* -1: from the other and experiment.epochs */
    int scope;
    bool rewind;
    bool global;
    double perc[DSNN_SPARSE_MODEL_MAX_LAYERS];
    struct dsnn_rewind *initial;
};

#define ITP_AT(field) DSNN_KEY_AT(struct itp_model, field)
#define PRUNE_PERC_DEF 0.2 /* prune_perc, also when given as [] */
static const char *const scope_names[] = {"layer", "global", NULL};

static const struct dsnn_key_spec itp_keys[] = {
    DSNN_SCHEME_KEYS("iterative-pruning"),
    {.name = "n_iterations", .type = DSNN_KEY_INT, .def = -1, DSNN_KEY_RANGE(-1, 1e6),
     ITP_AT(n_iterations),
     .doc = "prune / rewind / retrain rounds (-1: experiment.epochs / iteration_epochs); n_iterations "
     "x iteration_epochs must equal experiment.epochs"},
    {.name = "iteration_epochs", .type = DSNN_KEY_INT, .def = -1, DSNN_KEY_RANGE(-1, 1e6),
     ITP_AT(iteration_epochs),
     .doc = "training epochs per round (-1: experiment.epochs / n_iterations)"},
    {.name = "prune_perc", .type = DSNN_KEY_FLOAT_OR_ARRAY, .def = PRUNE_PERC_DEF,
     DSNN_KEY_RANGE(0, 1),
     .doc = "fraction of the remaining connections pruned (smallest |w|) before each round but the "
     "first; one value, or one per sparse layer with prune_scope = \"layer\""},
    {.name = "prune_scope", .type = DSNN_KEY_STRING, .def_str = "layer", .choices = scope_names,
     ITP_AT(scope),
     .doc = "\"layer\": each sparse layer loses prune_perc of its connections; \"global\": prune_perc "
     "of all sparse connections, by one magnitude ranking over the layers"},
    {.name = "rewind", .type = DSNN_KEY_BOOL, .def = true, ITP_AT(rewind),
     .doc = "rewind the surviving weights (and biases, dense layers) to their initial values and reset "
     "the optimizer before each round (false: keep training the pruned weights)"},
};
#undef ITP_AT

/* n_iterations x iteration_epochs = experiment.epochs, one of them possibly derived. */
static enum dsnn_status itp_rounds(struct itp_model *m, const struct dsnn_cfg *cfg, int epochs,
                                   struct dsnn_error *err)
{
    enum dsnn_status st;
    char where[300];
    if (m->n_iterations != -1 &&
        (st = dsnn_cfg_check_range(cfg, "n_iterations", (double)m->n_iterations, 1, 1e6, err)))
        return st;
    if (m->iteration_epochs != -1 &&
        (st = dsnn_cfg_check_range(cfg, "iteration_epochs", (double)m->iteration_epochs, 1, 1e6,
                                   err)))
        return st;
    if (m->n_iterations == -1 && m->iteration_epochs == -1)
        return dsnn_error_set(err, DSNN_ERR_CONFIG,
                              "%s: set n_iterations or iteration_epochs (n_iterations x "
                              "iteration_epochs = experiment.epochs = %d)",
                              dsnn_cfg_where(cfg, NULL, where, sizeof where), epochs);
    if (m->n_iterations == -1)
        m->n_iterations = epochs / m->iteration_epochs;
    if (m->iteration_epochs == -1)
        m->iteration_epochs = epochs / m->n_iterations;
    if (m->n_iterations * m->iteration_epochs != epochs || m->iteration_epochs < 1)
        return dsnn_error_set(err, DSNN_ERR_CONFIG,
                              "%s: n_iterations (%lld) x iteration_epochs (%lld) must equal "
                              "experiment.epochs = %d: set experiment.epochs = %lld or change "
                              "them",
                              dsnn_cfg_where(cfg, dsnn_cfg_has(cfg, "n_iterations")
                                                      ? "n_iterations"
                                                      : "iteration_epochs",
                                             where, sizeof where),
                              (long long)m->n_iterations, (long long)m->iteration_epochs, epochs,
                              (long long)(m->n_iterations * m->iteration_epochs));
    return DSNN_OK;
}

static enum dsnn_status itp_configure(struct dsnn_sparse_model *sm, void *params,
                                      const struct dsnn_cfg *cfg, const struct dsnn_run_ctx *ctx,
                                      const struct dsnn_dataset_info *info, struct dsnn_error *err)
{
    (void)info;
    struct itp_model *m = params;
    enum dsnn_status st;
    const size_t n = dsnn_sparse_model_n_layers(sm);
    double perc[DSNN_SPARSE_MODEL_MAX_LAYERS];
    size_t n_perc = 0;
    if ((st = dsnn_cfg_float_or_array(cfg, "prune_perc", PRUNE_PERC_DEF, perc,
                                      DSNN_SPARSE_MODEL_MAX_LAYERS, &n_perc, err)) ||
        (st = itp_rounds(m, cfg, ctx ? ctx->epochs : 1, err)))
        return st;
    m->global = m->scope == 1;
    if (n_perc == 0) {
        perc[0] = PRUNE_PERC_DEF;
        n_perc = 1;
    }
    if (n_perc != 1 && (m->global || n_perc != n))
        return dsnn_cfg_count_error(cfg, "prune_perc", n_perc, "", n, "sparse layers",
                                    m->global ? "one value: prune_scope = \"global\""
                                              : "one value, or one per layer",
                                    err);
    for (size_t i = 0; i < n; i++)
        m->perc[i] = perc[n_perc == 1 ? 0 : i];
    if (!dsnn_cfg_has(cfg, "on_perc") && (st = dsnn_sparse_model_set_density(sm, 1.0, err)))
        return st;
    return DSNN_OK;
}

static enum dsnn_status itp_init(struct dsnn_sparse_model *sm, void *params,
                                 const struct dsnn_run_ctx *ctx, struct dsnn_error *err)
{
    struct itp_model *m = params;
    if (!(m->initial = dsnn_rewind_new(dsnn_sparse_model_net(sm), err)))
        return err ? err->status : DSNN_ERR_NOMEM;
    if (ctx && ctx->log)
        fprintf(ctx->log, "iterative-pruning: %lld rounds of %lld epochs, %s scope, rewind %s\n",
                (long long)m->n_iterations, (long long)m->iteration_epochs,
                m->global ? "global" : "per-layer", m->rewind ? "on" : "off");
    return DSNN_OK;
}

/* Prunes by magnitude (per layer or globally), keeping the initial-value copy aligned. */
static enum dsnn_status itp_prune(struct dsnn_sparse_model *sm, const struct itp_model *m,
                                  struct dsnn_metrics *metrics, struct dsnn_error *err)
{
    const size_t n = dsnn_sparse_model_n_layers(sm);
    float *score[DSNN_SPARSE_MODEL_MAX_LAYERS] = {0};
    uint8_t *mark[DSNN_SPARSE_MODEL_MAX_LAYERS] = {0};
    size_t len[DSNN_SPARSE_MODEL_MAX_LAYERS], total = 0;
    enum dsnn_status st = DSNN_OK;
    for (size_t i = 0; i < n && st == DSNN_OK; i++) {
        struct dsnn_sparse_csr c;
        dsnn_sparse_get_csr(dsnn_sparse_model_layer(sm, i), &c);
        len[i] = c.nnz;
        total += c.nnz;
        score[i] = malloc((c.nnz ? c.nnz : 1) * sizeof(float));
        mark[i] = malloc(c.nnz ? c.nnz : 1);
        if (!score[i] || !mark[i]) {
            st = dsnn_error_set(err, DSNN_ERR_NOMEM, "out of memory");
            break;
        }
        for (size_t k = 0; k < c.nnz; k++)
            score[i][k] = fabsf(c.value[k]);
    }
    if (st == DSNN_OK && m->global) {
        const size_t count = (size_t)llround(m->perc[0] * (double)total);
        st = dsnn_select_smallest(n, (const float *const *)score, len, count, mark, err);
    }
    for (size_t i = 0; st == DSNN_OK && !m->global && i < n; i++) {
        const size_t count = (size_t)llround(m->perc[i] * (double)len[i]);
        st = dsnn_select_smallest(1, (const float *const *)&score[i], &len[i], count, &mark[i],
                                  err);
    }
    if (st == DSNN_OK)
        st = dsnn_sparse_model_update_begin(sm, err);
    for (size_t i = 0; st == DSNN_OK && i < n; i++)
        st = dsnn_rewind_prune_mask_layer(m->initial, dsnn_sparse_model_net(sm),
                                          dsnn_sparse_model_layer(sm, i), mark[i], err);
    for (size_t i = 0; i < n; i++) {
        free(score[i]);
        free(mark[i]);
    }
    if (st != DSNN_OK)
        return st;
    dsnn_sparse_model_update_pruned(sm);
    return dsnn_sparse_model_update_end(sm, metrics, err);
}

static bool itp_due(const struct itp_model *m, int epoch)
{
    return epoch > 0 && epoch % m->iteration_epochs == 0;
}

static enum dsnn_status itp_begin_epoch(struct dsnn_sparse_model *sm, void *params, int epoch,
                                        int *train_epoch, struct dsnn_metrics *metrics,
                                        struct dsnn_error *err)
{
    struct itp_model *m = params;
    enum dsnn_status st;
    const int64_t iteration = epoch / m->iteration_epochs;
    const int local = (int)(epoch % m->iteration_epochs);
    const bool due = itp_due(m, epoch);
    dsnn_metrics_set(metrics, "iteration", (double)iteration);
    dsnn_metrics_set(metrics, "iteration_epoch", local);
    dsnn_metrics_set(metrics, "pruning_active", due);
    if (due) {
        /* lottery-ticket rewind: initial values, zero optimizer state, a fresh optimizer */
        struct dsnn_base_model *bm = dsnn_sparse_model_base(sm);
        if ((st = itp_prune(sm, m, metrics, err)) != DSNN_OK ||
            (m->rewind && ((st = dsnn_rewind_apply(m->initial, dsnn_base_model_net(bm), err)) ||
                           (st = dsnn_base_model_reset_optim(bm, err)))))
            return dsnn_error_prefix(err, "iterative pruning before round %lld",
                                     (long long)iteration);
    }
    /* each round replays the first one's LR schedule and data order */
    *train_epoch = m->rewind ? local : epoch;
    return DSNN_OK;
}

static enum dsnn_status itp_save(struct dsnn_sparse_model *sm, void *params, FILE *f,
                                 struct dsnn_error *err)
{
    (void)sm;
    const struct itp_model *m = params;
    return dsnn_rewind_save(m->initial, f, err);
}

static enum dsnn_status itp_load(struct dsnn_sparse_model *sm, void *params, FILE *f,
                                 struct dsnn_error *err)
{
    struct itp_model *m = params;
    return dsnn_rewind_load(m->initial, dsnn_sparse_model_net(sm), f, err);
}

static void itp_destroy(void *params)
{
    dsnn_rewind_free(((struct itp_model *)params)->initial);
}

DSNN_MODEL_PLUGIN("iterative-pruning", "1.0.0",
                  "Iterative magnitude pruning with rewinding to the initial weights (lottery "
                  "ticket, Frankle & Carbin 2019) on truly sparse layers",
                  itp_keys, .params_size = sizeof(struct itp_model),
                  .flags = DSNN_SCHEME_LOG_IDLE, .configure = itp_configure, .init = itp_init,
                  .begin_epoch = itp_begin_epoch, .save = itp_save, .load = itp_load,
                  .destroy = itp_destroy, .tag = "ITPR")
