/* pruning - model plugin: gradual magnitude pruning (Zhu & Gupta 2017, "To prune, or not to
 * prune") on truly sparse layers.
 *
 *     model = { plugin = "pruning"; target_final_density = 0.1; start_epoch = 0; end_epoch = 6;
 *               pruning_interval = 1; learning_rate = 0.05; momentum = 0.9; };
 *
 * The chosen linear layers become sparse layers that start at density d_i = on_perc (one value or
 * one per layer) or, when on_perc is unset, 1.0 (dense, stored sparse; epsilon is not used). At
 * the start of epoch e (0-based) for e = start_epoch, start_epoch + pruning_interval, ... and
 * e = end_epoch, every sparse layer is pruned by magnitude (smallest |w| first) down to
 *     d(e) = d_f + (d_i - d_f) (1 - (e - start_epoch) / (end_epoch - start_epoch))^3
 * connections per weight (dsnn_gmp_density; d_f = target_final_density), so the final density
 * is reached at the start of epoch end_epoch and the remaining epochs fine-tune. Pruned
 * connections are removed from the layer (memory and time shrink with them); nothing regrows.
 *
 * Per epoch, besides the base metrics: pruning_active (1 on an epoch that began with a pruning
 * step), target_density_<layer>, pruned_<layer>, grown_<layer> (always 0), density_<layer>,
 * nnz_<layer>, density_total, n_params. Checkpoint: the sparse model's plus each layer's initial
 * density; the schedule is a function of the epoch.
 *
 * Differences from the paper: pruning steps are whole epochs (the paper prunes every Delta t
 * training steps, typically 100 to 1000), and pruned weights are removed rather than masked
 * (the same function: a masked weight never comes back in the paper either).
 *
 * schedule = "linear" is nupic's PruningModel (models/pruning.py; its keys start_pruning_epoch
 * and end_pruning_epoch are accepted as they are): a step at the start of every epoch e with
 * start_epoch <= e <= end_epoch and e % pruning_interval == 0 (after the evaluation of nupic's
 * 1-based epoch e, as its _post_epoch_updates), the j-th step lowering the target density to
 *     d_j = 1 - j (1 - d_f) / ((end_epoch - start_epoch + 1) / pruning_interval)
 * (from 1.0 whatever the initial density, as nupic), and each step pruning signed, as nupic's
 * PrunableModule: with to_prune = nnz - int(d_j n_in n_out) > 1, the int(to_prune / 2)
 * smallest weights >= 0 and as many (at most) weights < 0 closest to zero. Defaults there are
 * nupic's: start_epoch 1, end_epoch experiment.epochs (whose step would follow the last epoch
 * and does not happen). Ties prune exactly the count (nupic's thresholds prune every tie). */
#include <dsnn/dsnn.h>

#include <math.h>
#include <stdlib.h>

struct pruning_model {
    int64_t start_epoch, end_epoch, interval;
    int schedule; /* 0 cubic (Zhu & Gupta), 1 linear (nupic PruningModel) */
    double d_final[DSNN_SPARSE_MODEL_MAX_LAYERS];
    double d_initial[DSNN_SPARSE_MODEL_MAX_LAYERS];
};

#define FINAL_DENSITY_DEF 0.1 /* target_final_density, also when given as [] */
static const char *const schedule_names[] = {"cubic", "linear", NULL};
static const struct dsnn_key_spec pruning_keys[] = {
    DSNN_SCHEME_KEYS("pruning"),
    {.name = "target_final_density", .type = DSNN_KEY_FLOAT_OR_ARRAY, .def = FINAL_DENSITY_DEF,
     DSNN_KEY_RANGE(0, 1),
     .doc = "density each sparse layer is pruned to (one value or one per sparse layer); the initial "
     "density is on_perc, or 1.0 (dense) when on_perc is unset"},
    {.name = "schedule", .type = DSNN_KEY_STRING, .def_str = "cubic", .choices = schedule_names,
     DSNN_KEY_AT(struct pruning_model, schedule),
     .doc = "\"cubic\": Zhu & Gupta's density schedule, magnitude pruning; \"linear\": nupic's "
     "PruningModel, a linear density decay from 1.0 and signed pruning (half the count from the "
     "smallest positive weights, as many negative ones)"},
    {.name = "start_epoch", .type = DSNN_KEY_INT, .def = 0, DSNN_KEY_RANGE(0, 1e9),
     DSNN_KEY_AT(struct pruning_model, start_epoch), .default_value = "0 (linear: 1)",
     .doc = "epoch t0 at whose start the schedule starts (density d_i; linear: the first step); "
     "must be < experiment.epochs"},
    DSNN_KEY_ALIAS_OF("start_pruning_epoch", "start_epoch", "nupic PruningModel's"),
    {.name = "end_epoch", .type = DSNN_KEY_INT, .def = -1, DSNN_KEY_RANGE(-1, 1e9),
     DSNN_KEY_AT(struct pruning_model, end_epoch), .default_value = "-1 (linear: epochs)",
     .doc = "epoch at whose start the final density is reached (-1: the last epoch; linear: "
     "experiment.epochs, nupic's); must be < experiment.epochs (linear: <= experiment.epochs)"},
    DSNN_KEY_ALIAS_OF("end_pruning_epoch", "end_epoch", "nupic PruningModel's"),
    {.name = "pruning_interval", .type = DSNN_KEY_INT, .def = 1, DSNN_KEY_RANGE(1, 1e9),
     DSNN_KEY_AT(struct pruning_model, interval), .doc = "epochs between two pruning steps"},
};

static enum dsnn_status pruning_configure(struct dsnn_sparse_model *sm, void *params,
                                          const struct dsnn_cfg *cfg,
                                          const struct dsnn_run_ctx *ctx,
                                          const struct dsnn_dataset_info *info,
                                          struct dsnn_error *err)
{
    (void)info;
    struct pruning_model *m = params;
    enum dsnn_status st;
    double df[DSNN_SPARSE_MODEL_MAX_LAYERS];
    size_t n_df = 0;
    const size_t n = dsnn_sparse_model_n_layers(sm);
    const int epochs = ctx ? ctx->epochs : 1;
    if ((st = dsnn_cfg_float_or_array(cfg, "target_final_density", FINAL_DENSITY_DEF, df,
                                      DSNN_SPARSE_MODEL_MAX_LAYERS, &n_df, err)) ||
        (st = dsnn_cfg_check_range(cfg, "start_epoch", (double)m->start_epoch, 0, epochs - 1,
                                   err)))
        return st;
    char where[300];
    if (n_df == 0) { /* [] : the default */
        df[0] = FINAL_DENSITY_DEF;
        n_df = 1;
    }
    if (n_df != 1 && n_df != n)
        return dsnn_cfg_count_error(cfg, "target_final_density", n_df, "", n, "sparse layers",
                                    "one value or one per sparse layer", err);
    for (size_t i = 0; i < n; i++)
        m->d_final[i] = df[n_df == 1 ? 0 : i];
    const bool linear = m->schedule == 1;
    if (linear && !dsnn_cfg_has(cfg, "start_epoch"))
        m->start_epoch = 1 < epochs ? 1 : 0; /* nupic's default */
    if (m->end_epoch == -1)
        m->end_epoch = linear ? epochs : epochs - 1;
    if (m->end_epoch < m->start_epoch || m->end_epoch >= epochs + linear)
        return dsnn_error_set(err, DSNN_ERR_CONFIG,
                              "%s: key '%s.end_epoch': %lld must be in [start_epoch = %lld, %s = "
                              "%d] (the final density is reached at the start of epoch "
                              "end_epoch, 0-based)",
                              dsnn_cfg_where(cfg, "end_epoch", where, sizeof where),
                              dsnn_cfg_path(cfg), (long long)m->end_epoch,
                              (long long)m->start_epoch,
                              linear ? "experiment.epochs" : "experiment.epochs - 1",
                              epochs - 1 + linear);
    /* start dense unless on_perc says otherwise */
    if (!dsnn_cfg_has(cfg, "on_perc") && (st = dsnn_sparse_model_set_density(sm, 1.0, err)))
        return st;
    return DSNN_OK;
}

static enum dsnn_status pruning_init(struct dsnn_sparse_model *sm, void *params,
                                     const struct dsnn_run_ctx *ctx, struct dsnn_error *err)
{
    (void)ctx;
    (void)err;
    struct pruning_model *m = params;
    for (size_t i = 0; i < dsnn_sparse_model_n_layers(sm); i++)
        m->d_initial[i] = dsnn_sparse_density(dsnn_sparse_model_layer(sm, i));
    return DSNN_OK;
}

static bool pruning_due(const struct pruning_model *m, int epoch)
{
    if (m->schedule == 1) /* nupic: current_epoch % pruning_interval == 0 */
        return epoch >= m->start_epoch && epoch <= m->end_epoch && epoch % m->interval == 0;
    return epoch >= m->start_epoch && epoch <= m->end_epoch &&
           ((epoch - m->start_epoch) % m->interval == 0 || epoch == m->end_epoch);
}

/* Linear schedule: the target density after the step at the start of epoch (the j-th step,
 * counting the multiples of the interval in [start_epoch, epoch]). */
static double linear_density(const struct pruning_model *m, double d_final, int epoch)
{
    const int64_t iv = m->interval;
    const int64_t first = (m->start_epoch + iv - 1) / iv; /* multiples k * iv >= start */
    const int64_t j = epoch / iv - first + 1;
    const double steps = (double)(m->end_epoch - m->start_epoch + 1) / (double)iv;
    return 1.0 - (double)j * (1.0 - d_final) / steps;
}

/* nupic PrunableModule.update_mask: of to_prune, int(to_prune / 2) of the smallest weights >= 0
 * and at most as many of the weights < 0 closest to zero. */
static enum dsnn_status prune_signed_count(struct dsnn_layer *l, size_t to_prune,
                                           struct dsnn_error *err)
{
    struct dsnn_sparse_csr c;
    if (!dsnn_sparse_get_csr(l, &c))
        return dsnn_error_set(err, DSNN_ERR_INTERNAL, "layer '%s' is not sparse", l->name);
    size_t n_pos = 0;
    for (size_t k = 0; k < c.nnz; k++)
        n_pos += !(c.value[k] < 0.0f);
    const size_t half = to_prune / 2;
    const size_t k_pos = half < n_pos ? half : n_pos;
    uint8_t *rm = calloc(c.nnz ? c.nnz : 1, 1);
    if (!rm)
        return dsnn_error_set(err, DSNN_ERR_NOMEM, "out of memory");
    enum dsnn_status st = dsnn_signed_magnitude_mark_counts(c.value, c.nnz, k_pos, k_pos, rm,
                                                            NULL, err);
    if (st == DSNN_OK)
        st = dsnn_sparse_prune_mask(l, rm, err);
    free(rm);
    return st;
}

/* Prunes every sparse layer to the schedule's density at the start of epoch. */
static enum dsnn_status pruning_step(struct dsnn_sparse_model *sm, const struct pruning_model *m,
                                     int epoch, struct dsnn_metrics *metrics,
                                     struct dsnn_error *err)
{
    enum dsnn_status st = dsnn_sparse_model_update_begin(sm, err);
    for (size_t i = 0; st == DSNN_OK && i < dsnn_sparse_model_n_layers(sm); i++) {
        struct dsnn_layer *l = dsnn_sparse_model_layer(sm, i);
        int n_in = 0, n_out = 0;
        dsnn_linear_dims(l, &n_in, &n_out, NULL);
        const size_t nnz = dsnn_sparse_nnz(l);
        if (m->schedule == 1) { /* nupic PruningModel */
            const double d = linear_density(m, m->d_final[i], epoch);
            dsnn_metrics_setf(metrics, d, "target_density_%s", l->name);
            const double t = floor(d * (double)n_in * (double)n_out); /* nupic's int() */
            const size_t target = t > 0 ? (size_t)t : 0;
            if (target + 1 < nnz) /* num_params_to_prune > 1 */
                st = prune_signed_count(l, nnz - target, err);
            continue;
        }
        const double d = dsnn_gmp_density(m->d_initial[i], m->d_final[i], epoch,
                                          (double)m->start_epoch, (double)m->end_epoch);
        dsnn_metrics_setf(metrics, d, "target_density_%s", l->name);
        const size_t target = (size_t)llround(d * (double)n_in * (double)n_out);
        if (target < nnz)
            st = dsnn_sparse_prune_magnitude(l, nnz - target, err);
    }
    if (st != DSNN_OK)
        return st;
    dsnn_sparse_model_update_pruned(sm);
    return dsnn_sparse_model_update_end(sm, metrics, err);
}

static enum dsnn_status pruning_begin_epoch(struct dsnn_sparse_model *sm, void *params,
                                            int epoch, int *train_epoch,
                                            struct dsnn_metrics *metrics, struct dsnn_error *err)
{
    (void)train_epoch;
    const struct pruning_model *m = params;
    const bool due = pruning_due(m, epoch);
    dsnn_metrics_set(metrics, "pruning_active", due);
    if (due && pruning_step(sm, m, epoch, metrics, err) != DSNN_OK)
        return dsnn_error_prefix(err, "pruning at the start of epoch %d", epoch);
    return DSNN_OK;
}

/* The checkpoint's part of the scheme, after the tag "GMP ": each layer's initial density. */
static const struct dsnn_scheme_state pruning_state[] = {
    DSNN_SCHEME_STATE_PER_LAYER(struct pruning_model, d_initial, "initial densities"),
};

DSNN_MODEL_PLUGIN("pruning", "1.1.0",
                  "Gradual magnitude pruning (Zhu & Gupta 2017; nupic PruningModel with schedule = "
                  "\"linear\"): density schedule over epochs, magnitude pruning of truly sparse "
                  "layers, no regrowth",
                  pruning_keys, .params_size = sizeof(struct pruning_model),
                  .flags = DSNN_SCHEME_LOG_IDLE, .configure = pruning_configure,
                  .init = pruning_init, .begin_epoch = pruning_begin_epoch, .tag = "GMP ",
                  .state = pruning_state, .n_state = DSNN_COUNT_OF(pruning_state))
