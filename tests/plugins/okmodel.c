/* tests/plugins/okmodel.c - test-only model "okmodel": plain SGD/Adam training of the network
 * (no sparsity), with checkpointing. */
#include "tiny_model.h"

static const struct dsnn_key_spec okmodel_keys[] = {TINY_MODEL_KEYS};

static const struct dsnn_model_ops okmodel_ops = {
    .create = tiny_model_create,
    .train_epoch = tiny_model_train_epoch,
    .evaluate = tiny_model_evaluate,
    .save = tiny_model_save,
    .load = tiny_model_load,
    .destroy = tiny_model_destroy,
};

static const struct dsnn_component components[] = {
    DSNN_COMPONENT(DSNN_KIND_MODEL, "okmodel", "1.0.0",
                   "test-only: dense training with dsnn_train_epoch, checkpointable", okmodel_ops,
                   okmodel_keys),
};
DSNN_PLUGIN_DEFINE("okmodel", components)
