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

struct dsr_model {
    double threshold, tolerance, target_fraction;
    int64_t interval, begin_step, end_step;
    uint64_t target;     /* Np */
    double pruned_total; /* this epoch's, reset by end_epoch */
};

#define DSR_AT(field) DSNN_KEY_AT(struct dsr_model, field)
static const struct dsnn_key_spec dsr_keys[] = {
    DSNN_SCHEME_KEYS("dsr"),
    {.name = "update_interval", .type = DSNN_KEY_INT, .def = 200, DSNN_KEY_RANGE(1, 1e12),
     DSR_AT(interval), .doc = "optimizer steps between two reparameterizations"},
    {.name = "begin_step", .type = DSNN_KEY_INT, .def = 0, DSNN_KEY_RANGE(0, 1e15),
     DSR_AT(begin_step), .doc = "first optimizer step (counted from 1) that may update"},
    {.name = "end_step", .type = DSNN_KEY_INT, .def = -1, DSNN_KEY_RANGE(-1, 1e15),
     DSR_AT(end_step), .doc = "last optimizer step that may update (-1: no end)"},
    {.name = "initial_threshold", .type = DSNN_KEY_FLOAT, .def = 0.001, DSNN_KEY_RANGE(1e-30, 1e6),
     DSR_AT(threshold), .doc = "initial global pruning threshold H on |w| (adapted every round)"},
    {.name = "target_fraction_to_prune", .type = DSNN_KEY_FLOAT, .def = 0.01,
     DSNN_KEY_RANGE(0, 1), DSR_AT(target_fraction),
     .doc = "target Np of weights pruned per round, as a fraction of the network's trainable "
     "parameters at the start"},
    {.name = "tolerance", .type = DSNN_KEY_FLOAT, .def = 0.1, DSNN_KEY_RANGE(0, 1),
     DSR_AT(tolerance), .doc = "fractional tolerance around Np before H is doubled or halved"},
};
#undef DSR_AT

static enum dsnn_status dsr_configure(struct dsnn_sparse_model *sm, void *params,
                                      const struct dsnn_cfg *cfg, const struct dsnn_run_ctx *ctx,
                                      const struct dsnn_dataset_info *info, struct dsnn_error *err)
{
    (void)sm;
    (void)ctx;
    (void)info;
    const struct dsr_model *m = params;
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

static enum dsnn_status dsr_init(struct dsnn_sparse_model *sm, void *params,
                                 const struct dsnn_run_ctx *ctx, struct dsnn_error *err)
{
    (void)err;
    struct dsr_model *m = params;
    const size_t n_params = dsnn_net_param_count(dsnn_sparse_model_net(sm));
    m->target = (uint64_t)llround(m->target_fraction * (double)n_params);
    if (ctx && ctx->log)
        fprintf(ctx->log, "dsr: every %lld steps, H0 = %g, Np = %llu of %zu parameters\n",
                (long long)m->interval, m->threshold, (unsigned long long)m->target, n_params);
    return DSNN_OK;
}

/* One reparameterization: threshold prune, adapt H, reallocate and regrow at random. */
static enum dsnn_status dsr_round(struct dsnn_sparse_model *sm, void *params, int64_t t,
                                  struct dsnn_error *err)
{
    (void)t;
    struct dsr_model *m = params;
    const size_t n = dsnn_sparse_model_n_layers(sm);
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
        const struct dsnn_layer *l = dsnn_sparse_model_layer(sm, i);
        const size_t nnz = dsnn_sparse_nnz(l);
        surviving[i] = (double)nnz;
        cap[i] = dsnn_sparse_capacity(l) - nnz;
    }
    dsnn_allocate_capped(n, surviving, cap, pruned, grow);
    for (size_t i = 0; st == DSNN_OK && i < n; i++)
        st = dsnn_sparse_grow_random(dsnn_sparse_model_layer(sm, i), grow[i],
                                     dsnn_sparse_model_topo_rng(sm), err);
    if (st != DSNN_OK || (st = dsnn_scheme_update_end(sm, err)))
        return st;
    m->pruned_total += (double)pruned;
    return DSNN_OK;
}

static enum dsnn_status dsr_after_step(struct dsnn_sparse_model *sm, void *params, int64_t step,
                                       struct dsnn_error *err)
{
    const struct dsr_model *m = params;
    return dsnn_scheme_step_round(sm, params, step, m->begin_step, m->end_step, m->interval,
                                  dsr_round, "dsr round", err);
}

static enum dsnn_status dsr_end_epoch(struct dsnn_sparse_model *sm, void *params, int epoch,
                                      struct dsnn_metrics *metrics, struct dsnn_error *err)
{
    (void)epoch;
    (void)err;
    struct dsr_model *m = params;
    dsnn_scheme_log_rounds(sm, metrics);
    dsnn_metrics_set(metrics, "threshold", m->threshold);
    dsnn_metrics_set(metrics, "pruned_total", m->pruned_total);
    dsnn_metrics_set(metrics, "prune_target", (double)m->target);
    m->pruned_total = 0; /* for the next epoch */
    return DSNN_OK;
}

/* The checkpoint's part of the scheme, after the tag "DSR ": H and Np. */
static const struct dsnn_scheme_state dsr_state[] = {
    DSNN_SCHEME_STATE(struct dsr_model, threshold, "dsr threshold"),
    DSNN_SCHEME_STATE(struct dsr_model, target, "dsr target"),
};

/* Checks the threshold read back from a checkpoint. */
static enum dsnn_status dsr_load(struct dsnn_sparse_model *sm, void *params, FILE *f,
                                 struct dsnn_error *err)
{
    (void)sm;
    (void)f;
    const struct dsr_model *m = params;
    if (!(m->threshold > 0) || !isfinite(m->threshold))
        return dsnn_error_set(err, DSNN_ERR_FORMAT, "checkpoint: bad dsr threshold %g",
                              m->threshold);
    return DSNN_OK;
}

DSNN_MODEL_PLUGIN("dsr", "1.0.0",
                  "Dynamic sparse reparameterization (Mostafa & Wang 2019): adaptive global "
                  "threshold pruning, random regrowth reallocated across layers",
                  dsr_keys, .params_size = sizeof(struct dsr_model), .configure = dsr_configure,
                  .init = dsr_init, .after_step = dsr_after_step, .end_epoch = dsr_end_epoch,
                  .load = dsr_load, .tag = "DSR ", .state = dsr_state,
                  .n_state = DSNN_COUNT_OF(dsr_state))
