/* dsr - model plugin: Dynamic Sparse Reparameterization (Mostafa & Wang 2019) on truly sparse
 * layers.
 *
 *     model = { plugin = "dsr"; on_perc = 0.1; update_interval = 200;
 *               target_fraction_to_prune = 0.01; initial_threshold = 0.001;
 *               learning_rate = 0.05; momentum = 0.9; };
 *
 * Every update_interval optimizer steps (after the step, from begin_step to end_step; end_step
 * -1: to the end of training):
 *  1. every sparse layer loses its weights with |w| < H, one global threshold; K = total pruned;
 *  2. H adapts to keep K near the target Np = round(target_fraction_to_prune x the network's
 *     trainable parameters at the start, as the authors' code counts them): H x 2 if
 *     K < (1 - tolerance) Np, H / 2 if K > (1 + tolerance) Np (dsnn_dsr_adjust_threshold);
 *  3. the K pruned weights are regrown at random inactive positions, distributed across layers
 *     in proportion to each layer's number of surviving weights (the paper's heuristic), each
 *     layer capped at its capacity (dsnn_allocate_capped, largest remainder, so the total number
 *     of connections is exactly constant). New weights start at 0 (grow_init) with zero
 *     optimizer state.
 *
 * Per epoch, besides the base metrics: update_rounds, threshold (H after the epoch's last round),
 * pruned_total (K summed over the epoch), prune_target (Np), pruned_<layer> / grown_<layer>
 * (summed over the rounds; per layer they differ: reallocation), surviving_synapses_<layer>,
 * density_<layer>, nnz_<layer>, density_total, n_params. Checkpoint: the sparse model's plus H and
 * Np.
 *
 * Differences from the authors' code (the `dst` pack, DSModel.reparameterize): regrowth counts
 * are rounded to integers by largest remainder and capped at each layer's capacity (the code
 * sets a target sparsity per tensor and rounds there); a pruned weight may be regrown at once
 * at the same position (random growth among all inactive positions, probability pruned /
 * inactive). */
#include <dsnn/dsnn.h>

#include <math.h>
#include <stdlib.h>

struct dsr_model {
    struct dsnn_sparse_model sm; /* first */
    double threshold, tolerance, target_fraction;
    int64_t interval, begin_step, end_step;
    uint64_t target; /* Np */
    /* per epoch */
    struct dsnn_sparse_update_tally tally;
    double pruned_total;
    struct dsnn_metrics scratch;
};

static const struct dsnn_key_spec dsr_keys[] = {
    {.name = "plugin", .type = DSNN_KEY_STRING, .def_str = "dsr", .doc = "this plugin"},
    DSNN_BASE_MODEL_KEYS,
    DSNN_SPARSE_MODEL_KEYS,
    {.name = "update_interval", .type = DSNN_KEY_INT, .def = 200, .doc = "optimizer steps between two reparameterizations"},
    {.name = "begin_step", .type = DSNN_KEY_INT, .def = 0, .doc = "first optimizer step (counted from 1) that may update"},
    {.name = "end_step", .type = DSNN_KEY_INT, .def = -1, .doc = "last optimizer step that may update (-1: no end)"},
    {.name = "initial_threshold", .type = DSNN_KEY_FLOAT, .def = 0.001,
     .doc = "initial global pruning threshold H on |w| (adapted every round)"},
    {.name = "target_fraction_to_prune", .type = DSNN_KEY_FLOAT, .def = 0.01,
     .doc = "target Np of weights pruned per round, as a fraction of the network's trainable "
     "parameters at the start"},
    {.name = "tolerance", .type = DSNN_KEY_FLOAT, .def = 0.1,
     .doc = "fractional tolerance around Np before H is doubled or halved"},
};

static void dsr_destroy(void *state)
{
    struct dsr_model *m = state;
    if (!m)
        return;
    dsnn_sparse_model_release(&m->sm);
    free(m);
}

static enum dsnn_status dsr_read(struct dsr_model *m, const struct dsnn_cfg *cfg,
                                 struct dsnn_error *err)
{
    enum dsnn_status st;
    if ((st = dsnn_cfg_int(cfg, "update_interval", 200, &m->interval, err)) ||
        (st = dsnn_cfg_check_range(cfg, "update_interval", (double)m->interval, 1, 1e12, err)) ||
        (st = dsnn_cfg_int(cfg, "begin_step", 0, &m->begin_step, err)) ||
        (st = dsnn_cfg_check_range(cfg, "begin_step", (double)m->begin_step, 0, 1e15, err)) ||
        (st = dsnn_cfg_int(cfg, "end_step", -1, &m->end_step, err)) ||
        (st = dsnn_cfg_check_range(cfg, "end_step", (double)m->end_step, -1, 1e15, err)) ||
        (st = dsnn_cfg_float(cfg, "initial_threshold", 0.001, &m->threshold, err)) ||
        (st = dsnn_cfg_check_range(cfg, "initial_threshold", m->threshold, 1e-30, 1e6, err)) ||
        (st = dsnn_cfg_float(cfg, "target_fraction_to_prune", 0.01, &m->target_fraction, err)) ||
        (st = dsnn_cfg_check_range(cfg, "target_fraction_to_prune", m->target_fraction, 0, 1,
                                   err)) ||
        (st = dsnn_cfg_float(cfg, "tolerance", 0.1, &m->tolerance, err)) ||
        (st = dsnn_cfg_check_range(cfg, "tolerance", m->tolerance, 0, 1, err)))
        return st;
    if (m->end_step >= 0 && m->end_step < m->begin_step) {
        char where[300];
        return dsnn_error_set(err, DSNN_ERR_CONFIG,
                              "%s: key '%s.end_step': %lld is before begin_step = %lld",
                              dsnn_cfg_where(cfg, "end_step", where, sizeof where),
                              dsnn_cfg_path(cfg), (long long)m->end_step,
                              (long long)m->begin_step);
    }
    return DSNN_OK;
}

static enum dsnn_status dsr_create(const struct dsnn_cfg *cfg, const struct dsnn_run_ctx *ctx,
                                   struct dsnn_net *net, const struct dsnn_dataset_info *info,
                                   void **state, struct dsnn_error *err)
{
    struct dsr_model *m = calloc(1, sizeof *m);
    if (!m)
        return dsnn_error_set(err, DSNN_ERR_NOMEM, "out of memory");
    enum dsnn_status st;
    if ((st = dsnn_sparse_model_configure(&m->sm, cfg, ctx, net, err)) ||
        (st = dsr_read(m, cfg, err)) || (st = dsnn_sparse_model_init_net(&m->sm, info, err))) {
        dsr_destroy(m);
        return st;
    }
    m->target = (uint64_t)llround(m->target_fraction * (double)dsnn_net_param_count(net));
    if (ctx && ctx->log)
        fprintf(ctx->log, "dsr: every %lld steps, H0 = %g, Np = %llu of %zu parameters\n",
                (long long)m->interval, m->threshold, (unsigned long long)m->target,
                dsnn_net_param_count(net));
    *state = m;
    return DSNN_OK;
}

/* One reparameterization: threshold prune, adapt H, reallocate and regrow at random. */
static enum dsnn_status dsr_round(struct dsr_model *m, struct dsnn_error *err)
{
    struct dsnn_sparse_model *sm = &m->sm;
    const size_t n = sm->n_layers;
    double surviving[DSNN_SPARSE_MODEL_MAX_LAYERS];
    size_t cap[DSNN_SPARSE_MODEL_MAX_LAYERS], grow[DSNN_SPARSE_MODEL_MAX_LAYERS];
    size_t pruned = 0;
    enum dsnn_status st = dsnn_sparse_model_update_begin(sm, err);
    for (size_t i = 0; st == DSNN_OK && i < n; i++) {
        size_t k = 0;
        st = dsnn_prune_threshold(dsnn_sparse_model_layer(sm, i), m->threshold, &k, err);
        pruned += k;
    }
    if (st != DSNN_OK)
        return st;
    dsnn_sparse_model_update_pruned(sm);
    dsnn_dsr_adjust_threshold(&m->threshold, pruned, (size_t)m->target, m->tolerance);
    for (size_t i = 0; i < n; i++) {
        struct dsnn_layer *l = dsnn_sparse_model_layer(sm, i);
        int n_in = 0, n_out = 0;
        dsnn_linear_dims(l, &n_in, &n_out, NULL);
        const size_t nnz = dsnn_sparse_nnz(l);
        surviving[i] = (double)nnz;
        cap[i] = (size_t)n_in * (size_t)n_out - nnz;
    }
    dsnn_allocate_capped(n, surviving, cap, pruned, grow);
    for (size_t i = 0; st == DSNN_OK && i < n; i++)
        st = dsnn_sparse_grow_random(dsnn_sparse_model_layer(sm, i), grow[i], &sm->topo_rng,
                                     err);
    if (st != DSNN_OK)
        return st;
    dsnn_metrics_clear(&m->scratch);
    if ((st = dsnn_sparse_model_update_end(sm, &m->scratch, err)))
        return st;
    dsnn_sparse_update_tally_add(&m->tally, sm, &m->scratch);
    m->pruned_total += (double)pruned;
    return DSNN_OK;
}

static enum dsnn_status dsr_after_step(void *user, struct dsnn_net *net, int64_t step,
                                       struct dsnn_error *err)
{
    (void)net;
    struct dsr_model *m = user;
    const int64_t t = step + 1;
    if (!dsnn_schedule_due(t, m->begin_step, m->end_step, m->interval))
        return DSNN_OK;
    enum dsnn_status st = dsr_round(m, err);
    if (st != DSNN_OK)
        dsnn_error_prefix(err, "dsr round at step %lld", (long long)t);
    return st;
}

static enum dsnn_status dsr_train_epoch(void *state, struct dsnn_data *data, int epoch,
                                        struct dsnn_metrics *metrics, struct dsnn_error *err)
{
    struct dsr_model *m = state;
    const struct dsnn_train_hooks hooks = {.user = m, .after_step = dsr_after_step};
    dsnn_sparse_update_tally_clear(&m->tally);
    m->pruned_total = 0;
    enum dsnn_status st =
        dsnn_base_model_train_epoch(&m->sm.base, data, epoch, &hooks, metrics, err);
    if (st != DSNN_OK)
        return st;
    dsnn_sparse_update_tally_log(&m->tally, &m->sm, metrics);
    dsnn_metrics_set(metrics, "threshold", m->threshold);
    dsnn_metrics_set(metrics, "pruned_total", m->pruned_total);
    dsnn_metrics_set(metrics, "prune_target", (double)m->target);
    dsnn_sparse_model_log_density(&m->sm, metrics);
    return DSNN_OK;
}

static enum dsnn_status dsr_evaluate(void *state, struct dsnn_data *data, enum dsnn_split split,
                                     struct dsnn_metrics *metrics, struct dsnn_error *err)
{
    return dsnn_base_model_evaluate(&((struct dsr_model *)state)->sm.base, data, split, metrics,
                                    err);
}

static enum dsnn_status dsr_save(void *state, FILE *f, struct dsnn_error *err)
{
    struct dsr_model *m = state;
    enum dsnn_status st;
    if ((st = dsnn_sparse_model_save(&m->sm, f, err)) ||
        (st = dsnn_io_write(f, "DSR ", 4, "dsr tag", err)) ||
        (st = dsnn_io_write(f, &m->threshold, sizeof m->threshold, "dsr threshold", err)) ||
        (st = dsnn_io_write_u64(f, m->target, "dsr target", err)))
        return st;
    return DSNN_OK;
}

static enum dsnn_status dsr_load(void *state, FILE *f, struct dsnn_error *err)
{
    struct dsr_model *m = state;
    enum dsnn_status st;
    if ((st = dsnn_sparse_model_load(&m->sm, f, err)) ||
        (st = dsnn_io_expect_tag(f, "DSR ", err)) ||
        (st = dsnn_io_read(f, &m->threshold, sizeof m->threshold, "dsr threshold", err)) ||
        (st = dsnn_io_read_u64(f, &m->target, "dsr target", err)))
        return st;
    if (!(m->threshold > 0) || !isfinite(m->threshold))
        return dsnn_error_set(err, DSNN_ERR_FORMAT, "checkpoint: bad dsr threshold %g",
                              m->threshold);
    return DSNN_OK;
}

static const struct dsnn_model_ops dsr_ops = {
    .create = dsr_create,
    .train_epoch = dsr_train_epoch,
    .evaluate = dsr_evaluate,
    .save = dsr_save,
    .load = dsr_load,
    .destroy = dsr_destroy,
};

static const struct dsnn_component dsr_components[] = {
    DSNN_COMPONENT(DSNN_KIND_MODEL, "dsr", "1.0.0",
                   "Dynamic sparse reparameterization (Mostafa & Wang 2019): adaptive global "
                   "threshold pruning, random regrowth reallocated across layers",
                   dsr_ops, dsr_keys),
};

DSNN_PLUGIN_DEFINE("dsr", dsr_components)
