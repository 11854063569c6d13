/* tests/plugins/ambiguous.c - one plugin with two components of different kinds that share the
 * name "twin" (allowed: the registry key is (kind, name)); for `dsnn-host info twin`. */
#include "never_called.h"

static enum dsnn_status twin_build(const struct dsnn_cfg *cfg, const struct dsnn_run_ctx *ctx,
                                   struct dsnn_shape input, int n_classes, struct dsnn_net **out,
                                   struct dsnn_error *err)
{
    (void)cfg, (void)ctx, (void)input, (void)n_classes, (void)out;
    return dsnn_error_set(err, DSNN_ERR_UNSUPPORTED, "twin: not a real network");
}

static const struct dsnn_network_ops net_ops = {.build = twin_build};
static const struct dsnn_model_ops model_ops = {
    .create = never_create,
    .train_epoch = never_train_epoch,
    .evaluate = never_evaluate,
    .destroy = never_destroy,
};
static const struct dsnn_key_spec net_keys[] = {
    {.name = "width", .type = DSNN_KEY_INT, .required = true, .doc = "a required key"},
};

static const struct dsnn_component components[] = {
    DSNN_COMPONENT(DSNN_KIND_NETWORK, "twin", "0.1.0", "network half of the twins", net_ops,
                   net_keys),
    DSNN_COMPONENT(DSNN_KIND_MODEL, "twin", "0.2.0", "model half of the twins", model_ops,
                   never_keys),
};
DSNN_PLUGIN_DEFINE("ambiguous", components)
