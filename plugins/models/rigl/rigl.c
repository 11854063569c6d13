/* rigl - model plugin: Rigging the Lottery (Evci, Gale, Menick, Castro & Elsen 2020) on truly
 * sparse layers.
 *
 *     model = { plugin = "rigl"; on_perc = 0.1; density_distribution = "erk";
 *               drop_fraction = 0.3; drop_fraction_anneal = "cosine"; update_frequency = 100;
 *               learning_rate = 0.05; momentum = 0.9; };
 *
 * The chosen linear layers become truly sparse (keys of the sparse model; RigL's paper uses
 * density_distribution = "erk"). Every update_frequency optimizer steps t (counted from 1) with
 * begin_step <= t <= end_step, between the backward and the optimizer step (the after_backward
 * hook), every sparse layer drops the k = floor(drop_fraction(t) * nnz) active connections of
 * smallest |w| and grows the k connections of largest |dL/dW| among those inactive after the drop
 * (dsnn_prune_grow_gradient: the dense gradient of the batch is computed tile by tile, no dense
 * matrix is held). New connections start at 0 (grow_init) with zero optimizer state; one that is
 * dropped and regrown by the same update keeps its weight and state (as RigL's code). nnz per
 * layer never changes. Layers that are dense (density 1, e.g. made so by ERK) are left alone.
 *
 * drop_fraction(t): drop_fraction_anneal = "constant"; "cosine": drop_fraction (1 + cos(pi x)) / 2;
 * "exponential": drop_fraction (1 - x)^drop_fraction_exponent (RigL's "exponential_<k>");
 * "linear": drop_fraction (1 - x); x = (t - begin_step) / (end_step - begin_step).
 * Defaults as the paper: 0.3, cosine, every 100 steps, end_step = 75 % of training (epochs x
 * steps per epoch, steps per epoch = ceil(n_train / batch_size_train)).
 *
 * Per epoch, besides the base metrics: update_rounds, drop_fraction (of the epoch's last update;
 * 0 without one), pruned_<layer> / grown_<layer> (connections removed / truly new, summed over
 * the epoch's updates), surviving_synapses_<layer> (fraction of the previous update's new
 * connections that the next update kept, averaged over the epoch), density_<layer>, nnz_<layer>,
 * density_total, n_params. Checkpoint: the sparse model's (weights, topology, optimizer state,
 * step, topology stream); the schedule is a function of the step.
 *
 * Differences from the reference implementation (google-research/rigl):
 *  - The reference skips the optimizer step of an update iteration; here the update runs in
 *    the after_backward hook (same weights, same batch gradient) and the step is then applied
 *    as usual: one extra step per update_frequency for the surviving weights. New weights stay
 *    exactly 0 through it (zero gradient, zero state, weight decay of 0 is 0).
 *  - Ties in |w| or |grad| are broken by position (lowest first), not by noise of std 1e-5.
 *  - x uses (t - begin_step) for every anneal (the reference's cosine uses t alone). */
#include <dsnn/dsnn.h>

#include <math.h>

struct rigl_model {
    double drop_fraction, exponent;
    int anneal;
    int64_t frequency, begin_step, end_key;
    int64_t end_step; /* end_key resolved (>= 0) */
    double last_drop_fraction; /* this epoch's, reset by end_epoch */
};

#define RIGL_AT(field) DSNN_KEY_AT(struct rigl_model, field)
static const char *const anneal_names[] = {"constant", "cosine", "exponential", "linear",
                                           NULL}; /* enum dsnn_anneal, dsnn_anneal_names() */
static const struct dsnn_key_spec rigl_keys[] = {
    DSNN_SCHEME_KEYS("rigl"),
    {.name = "drop_fraction", .type = DSNN_KEY_FLOAT, .def = 0.3, DSNN_KEY_RANGE(0, 1),
     RIGL_AT(drop_fraction),
     .doc = "fraction of each sparse layer's active connections dropped (smallest |w|) and regrown "
     "(largest |gradient|) at an update, before annealing"},
    {.name = "drop_fraction_anneal", .type = DSNN_KEY_STRING, .def_str = "cosine",
     .choices = anneal_names, RIGL_AT(anneal),
     .doc = "decay of drop_fraction from begin_step to end_step: \"constant\", \"cosine\", "
     "\"exponential\" ((1 - x)^drop_fraction_exponent) or \"linear\""},
    {.name = "drop_fraction_exponent", .type = DSNN_KEY_FLOAT, .def = 1.0, DSNN_KEY_RANGE(0, 1e3),
     RIGL_AT(exponent), .doc = "exponent of drop_fraction_anneal = \"exponential\""},
    {.name = "update_frequency", .type = DSNN_KEY_INT, .def = 100, DSNN_KEY_RANGE(1, 1e12),
     RIGL_AT(frequency), .doc = "optimizer steps between two topology updates"},
    {.name = "begin_step", .type = DSNN_KEY_INT, .def = 0, DSNN_KEY_RANGE(0, 1e15),
     RIGL_AT(begin_step), .doc = "first optimizer step (counted from 1) that may update"},
    {.name = "end_step", .type = DSNN_KEY_INT, .def = -1, DSNN_KEY_RANGE(-1, 1e15),
     RIGL_AT(end_key),
     .doc = "last optimizer step that may update (-1: 75 % of training, epochs x ceil(n_train / "
     "batch_size_train) x 0.75)"},
};
#undef RIGL_AT

static enum dsnn_status rigl_configure(struct dsnn_sparse_model *sm, void *params,
                                       const struct dsnn_cfg *cfg, const struct dsnn_run_ctx *ctx,
                                       const struct dsnn_dataset_info *info,
                                       struct dsnn_error *err)
{
    (void)sm;
    struct rigl_model *m = params;
    const int64_t end = m->end_key;
    const int64_t bs = info->batch_size_train > 0 ? info->batch_size_train : 1;
    const int64_t steps_per_epoch = (info->n_train + bs - 1) / bs;
    const int epochs = ctx ? ctx->epochs : 1;
    m->end_step = end >= 0 ? end : (int64_t)(0.75 * (double)epochs * (double)steps_per_epoch);
    if (m->end_step < m->begin_step) {
        char where[300];
        return dsnn_error_set(err, DSNN_ERR_CONFIG,
                              "%s: key '%s.end_step': %lld is before begin_step = %lld%s",
                              dsnn_cfg_where(cfg, end >= 0 ? "end_step" : "begin_step", where,
                                             sizeof where),
                              dsnn_cfg_path(cfg), (long long)m->end_step,
                              (long long)m->begin_step,
                              end >= 0 ? "" : " (end_step = -1: 75 % of the training steps)");
    }
    if (ctx && ctx->log)
        fprintf(ctx->log,
                "rigl: updates every %lld steps in [%lld, %lld] (%lld steps per epoch), "
                "drop_fraction %g %s\n",
                (long long)m->frequency, (long long)m->begin_step, (long long)m->end_step,
                (long long)steps_per_epoch, m->drop_fraction, anneal_names[m->anneal]);
    return DSNN_OK;
}

/* One RigL update of every sparse layer at t optimizer steps, logged by the update bracket. */
static enum dsnn_status rigl_update(struct dsnn_sparse_model *sm, void *params, int64_t t,
                                    struct dsnn_error *err)
{
    struct rigl_model *m = params;
    const double df = dsnn_anneal_at((enum dsnn_anneal)m->anneal, m->drop_fraction, t,
                                     m->begin_step, m->end_step, m->exponent);
    enum dsnn_status st = dsnn_sparse_model_update_begin(sm, err);
    for (size_t i = 0; st == DSNN_OK && i < dsnn_sparse_model_n_layers(sm); i++) {
        struct dsnn_layer *l = dsnn_sparse_model_layer(sm, i);
        const size_t nnz = dsnn_sparse_nnz(l);
        if (nnz == 0 || nnz >= dsnn_sparse_capacity(l))
            continue; /* nothing to explore */
        const size_t k = (size_t)floor(df * (double)nnz);
        if (k > 0)
            st = dsnn_prune_grow_gradient(l, k, k, dsnn_sparse_model_topo_rng(sm), NULL, err);
    }
    if (st != DSNN_OK)
        return st;
    /* A connection dropped and regrown is restored, so calling this after the grow counts
     * exactly the previous update's new connections that this one did not remove. */
    dsnn_sparse_model_update_pruned(sm);
    if ((st = dsnn_scheme_update_end(sm, err)))
        return st;
    m->last_drop_fraction = df;
    return DSNN_OK;
}

/* Sparse convolutions compute the dense gradient only for the backward of an update step. */
static enum dsnn_status rigl_after_forward(struct dsnn_sparse_model *sm, void *params,
                                           const struct dsnn_batch *b, struct dsnn_error *err)
{
    (void)b, (void)err;
    const struct rigl_model *m = params;
    dsnn_scheme_dense_grad_when_due(sm, m->begin_step, m->end_step, m->frequency);
    return DSNN_OK;
}

static enum dsnn_status rigl_after_backward(struct dsnn_sparse_model *sm, void *params,
                                            int64_t step, struct dsnn_error *err)
{
    const struct rigl_model *m = params;
    return dsnn_scheme_step_round(sm, params, step, m->begin_step, m->end_step, m->frequency,
                                  rigl_update, "rigl update", err);
}

static enum dsnn_status rigl_end_epoch(struct dsnn_sparse_model *sm, void *params, int epoch,
                                       struct dsnn_metrics *metrics, struct dsnn_error *err)
{
    (void)epoch;
    (void)err;
    struct rigl_model *m = params;
    dsnn_scheme_log_rounds(sm, metrics);
    dsnn_metrics_set(metrics, "drop_fraction", m->last_drop_fraction);
    m->last_drop_fraction = 0; /* for the next epoch */
    return DSNN_OK;
}

static enum dsnn_status rigl_save(struct dsnn_sparse_model *sm, void *params, FILE *f,
                                  struct dsnn_error *err)
{
    (void)sm;
    const struct rigl_model *m = params;
    return dsnn_io_write_u64(f, (uint64_t)m->end_step, "rigl end_step", err);
}

static enum dsnn_status rigl_load(struct dsnn_sparse_model *sm, void *params, FILE *f,
                                  struct dsnn_error *err)
{
    (void)sm;
    const struct rigl_model *m = params;
    uint64_t end = 0;
    enum dsnn_status st = dsnn_io_read_u64(f, &end, "rigl end_step", err);
    if (st == DSNN_OK && end != (uint64_t)m->end_step)
        st = dsnn_error_set(err, DSNN_ERR_FORMAT,
                            "checkpoint: rigl end_step %llu, the configuration gives %lld",
                            (unsigned long long)end, (long long)m->end_step);
    return st;
}

DSNN_MODEL_PLUGIN("rigl", "1.0.0",
                  "RigL (Evci et al. 2020): every few steps drop the smallest weights and grow "
                  "the connections of largest dense gradient, on truly sparse layers",
                  rigl_keys, .params_size = sizeof(struct rigl_model), .configure = rigl_configure,
                  .after_forward = rigl_after_forward, .after_backward = rigl_after_backward,
                  .end_epoch = rigl_end_epoch, .save = rigl_save, .load = rigl_load,
                  .tag = "RIGL")
