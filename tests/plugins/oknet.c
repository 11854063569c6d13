/* tests/plugins/oknet.c - test-only network "oknet": linear, or linear-relu-linear. */
#include "dsnn/dsnn.h"

static const struct dsnn_key_spec oknet_keys[] = {
    {.name = "hidden", .type = DSNN_KEY_INT, .def = 0, .doc = "hidden units (0: a single linear layer)"},
};

static enum dsnn_status oknet_build(const struct dsnn_cfg *cfg, const struct dsnn_run_ctx *ctx,
                                    struct dsnn_shape input, int n_classes, struct dsnn_net **out,
                                    struct dsnn_error *err)
{
    (void)ctx;
    int64_t hidden;
    enum dsnn_status st = dsnn_cfg_int(cfg, "hidden", 0, &hidden, err);
    if (st == DSNN_OK)
        st = dsnn_cfg_check_range(cfg, "hidden", (double)hidden, 0, 1 << 20, err);
    if (st != DSNN_OK)
        return st;
    struct dsnn_net *net = dsnn_net_new(input, n_classes, err);
    if (!net)
        return err ? err->status : DSNN_ERR_NOMEM;
    int n_in = (int)dsnn_shape_size(input);
    struct dsnn_layer *l;
    if (hidden > 0) {
        if (!(l = dsnn_linear_new("fc1", n_in, (int)hidden, true, err)) ||
            (st = dsnn_net_add(net, l, err)) != DSNN_OK)
            goto fail;
        if (!(l = dsnn_relu_new("relu1", (struct dsnn_shape){(int)hidden, 1, 1}, err)) ||
            (st = dsnn_net_add(net, l, err)) != DSNN_OK)
            goto fail;
        n_in = (int)hidden;
    }
    if (!(l = dsnn_linear_new("out", n_in, n_classes, true, err)) ||
        (st = dsnn_net_add(net, l, err)) != DSNN_OK)
        goto fail;
    *out = net;
    return DSNN_OK;
fail:
    dsnn_net_free(net);
    return err && err->status != DSNN_OK ? err->status : DSNN_ERR_INTERNAL;
}

static const struct dsnn_network_ops oknet_ops = {.build = oknet_build};

static const struct dsnn_component components[] = {
    DSNN_COMPONENT(DSNN_KIND_NETWORK, "oknet", "1.0.0",
                   "test-only: linear classifier with an optional hidden layer", oknet_ops,
                   oknet_keys),
};
DSNN_PLUGIN_DEFINE("oknet", components)
