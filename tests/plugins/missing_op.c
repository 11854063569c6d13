/* tests/plugins/missing_op.c - a model whose required train_epoch is NULL. */
#include "never_called.h"

static const struct dsnn_model_ops ops = {
    .create = never_create,
    .evaluate = never_evaluate,
    .destroy = never_destroy,
};
static const struct dsnn_component components[] = {
    DSNN_COMPONENT(DSNN_KIND_MODEL, "missingop", "1.0.0", "lacks train_epoch", ops, never_keys),
};
DSNN_PLUGIN_DEFINE("missing_op", components)
