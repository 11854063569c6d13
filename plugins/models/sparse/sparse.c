/* sparse - model plugin: static sparse training (nupic SparseModel).
 *
 *     model = { plugin = "sparse"; on_perc = 0.1; sparse_type = "precise"; learning_rate = 0.01;
 *               momentum = 0.9; };
 *
 * The chosen linear layers become truly sparse layers with a fixed random topology (on_perc per
 * layer, or Erdos-Renyi with epsilon when on_perc is unset); the topology never changes. The
 * baseline every dynamic scheme is compared with. Logs density_<layer>, nnz_<layer>,
 * density_total and n_params each epoch. */
#include <dsnn/dsnn.h>

#include <stdlib.h>

static const struct dsnn_key_spec sparse_keys[] = {
    {.name = "plugin", .type = DSNN_KEY_STRING, .def_str = "sparse", .doc = "this plugin"},
    DSNN_BASE_MODEL_KEYS,
    DSNN_SPARSE_MODEL_KEYS,
};

static enum dsnn_status sparse_create(const struct dsnn_cfg *cfg, const struct dsnn_run_ctx *ctx,
                                      struct dsnn_net *net, const struct dsnn_dataset_info *info,
                                      void **state, struct dsnn_error *err)
{
    struct dsnn_sparse_model *m = calloc(1, sizeof *m);
    if (!m)
        return dsnn_error_set(err, DSNN_ERR_NOMEM, "out of memory");
    enum dsnn_status st = dsnn_sparse_model_configure(m, cfg, ctx, net, err);
    if (st == DSNN_OK)
        st = dsnn_sparse_model_init_net(m, info, err);
    if (st != DSNN_OK) {
        dsnn_sparse_model_release(m);
        free(m);
        return st;
    }
    *state = m;
    return DSNN_OK;
}

static enum dsnn_status sparse_train_epoch(void *state, struct dsnn_data *data, int epoch,
                                           struct dsnn_metrics *metrics, struct dsnn_error *err)
{
    struct dsnn_sparse_model *m = state;
    enum dsnn_status st = dsnn_base_model_train_epoch(&m->base, data, epoch, NULL, metrics, err);
    if (st == DSNN_OK)
        dsnn_sparse_model_log_density(m, metrics);
    return st;
}

static enum dsnn_status sparse_evaluate(void *state, struct dsnn_data *data,
                                        enum dsnn_split split, struct dsnn_metrics *metrics,
                                        struct dsnn_error *err)
{
    return dsnn_base_model_evaluate(&((struct dsnn_sparse_model *)state)->base, data, split,
                                    metrics, err);
}

static enum dsnn_status sparse_save(void *state, FILE *f, struct dsnn_error *err)
{
    return dsnn_sparse_model_save(state, f, err);
}

static enum dsnn_status sparse_load(void *state, FILE *f, struct dsnn_error *err)
{
    return dsnn_sparse_model_load(state, f, err);
}

static void sparse_destroy(void *state)
{
    dsnn_sparse_model_release(state);
    free(state);
}

static const struct dsnn_model_ops sparse_ops = {
    .create = sparse_create,
    .train_epoch = sparse_train_epoch,
    .evaluate = sparse_evaluate,
    .save = sparse_save,
    .load = sparse_load,
    .destroy = sparse_destroy,
};

static const struct dsnn_component sparse_components[] = {
    DSNN_COMPONENT(DSNN_KIND_MODEL, "sparse", "1.0.0",
                   "Static sparse training (nupic SparseModel): truly sparse layers with a fixed "
                   "random topology",
                   sparse_ops, sparse_keys),
};

DSNN_PLUGIN_DEFINE("sparse", sparse_components)
