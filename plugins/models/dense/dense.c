/* dense - model plugin: plain supervised training of a dense network (nupic BaseModel).
 *
 *     model = { plugin = "dense"; optim_alg = "SGD"; learning_rate = 0.01; momentum = 0.9;
 *               lr_scheduler = "StepLR"; lr_step_size = 1; lr_gamma = 0.9; };
 *
 * Per epoch: train_loss, train_acc, learning_rate, val_loss, val_acc, n_params. */
#include <dsnn/dsnn.h>

#include <stdlib.h>

struct dense_model {
    struct dsnn_base_model base;
};

static const struct dsnn_key_spec dense_keys[] = {
    {.name = "plugin", .type = DSNN_KEY_STRING, .def_str = "dense", .doc = "this plugin"},
    DSNN_BASE_MODEL_KEYS,
};

static enum dsnn_status dense_create(const struct dsnn_cfg *cfg, const struct dsnn_run_ctx *ctx,
                                     struct dsnn_net *net, const struct dsnn_dataset_info *info,
                                     void **state, struct dsnn_error *err)
{
    struct dense_model *m = calloc(1, sizeof *m);
    if (!m)
        return dsnn_error_set(err, DSNN_ERR_NOMEM, "out of memory");
    enum dsnn_status st = dsnn_base_model_configure(&m->base, cfg, ctx, net, err);
    if (st == DSNN_OK)
        st = dsnn_base_model_init_net(&m->base, info, err);
    if (st != DSNN_OK) {
        dsnn_base_model_release(&m->base);
        free(m);
        return st;
    }
    *state = m;
    return DSNN_OK;
}

static enum dsnn_status dense_train_epoch(void *state, struct dsnn_data *data, int epoch,
                                          struct dsnn_metrics *metrics, struct dsnn_error *err)
{
    struct dense_model *m = state;
    enum dsnn_status st = dsnn_base_model_train_epoch(&m->base, data, epoch, NULL, metrics, err);
    if (st == DSNN_OK)
        dsnn_metrics_set(metrics, "n_params", (double)dsnn_net_param_count(m->base.net));
    return st;
}

static enum dsnn_status dense_evaluate(void *state, struct dsnn_data *data, enum dsnn_split split,
                                       struct dsnn_metrics *metrics, struct dsnn_error *err)
{
    return dsnn_base_model_evaluate(&((struct dense_model *)state)->base, data, split, metrics,
                                    err);
}

static enum dsnn_status dense_save(void *state, FILE *f, struct dsnn_error *err)
{
    return dsnn_base_model_save(&((struct dense_model *)state)->base, f, err);
}

static enum dsnn_status dense_load(void *state, FILE *f, struct dsnn_error *err)
{
    return dsnn_base_model_load(&((struct dense_model *)state)->base, f, err);
}

static void dense_destroy(void *state)
{
    struct dense_model *m = state;
    if (!m)
        return;
    dsnn_base_model_release(&m->base);
    free(m);
}

static const struct dsnn_model_ops dense_ops = {
    .create = dense_create,
    .train_epoch = dense_train_epoch,
    .evaluate = dense_evaluate,
    .save = dense_save,
    .load = dense_load,
    .destroy = dense_destroy,
};

static const struct dsnn_component dense_components[] = {
    DSNN_COMPONENT(DSNN_KIND_MODEL, "dense", "1.0.0",
                   "Dense supervised training (nupic BaseModel): SGD/Adam, StepLR/MultiStepLR",
                   dense_ops, dense_keys),
};

DSNN_PLUGIN_DEFINE("dense", dense_components)
