/* lenet - network plugin: LeNet-300-100 and LeNet-5 (LeCun et al. 1998), with ReLU.
 *
 *     network = { plugin = "lenet"; variant = "lenet5"; };
 *
 * variant = "300-100" (the MLP of the pruning literature: Han et al. 2015, Frankle & Carbin
 * 2019), layers:
 *     flatten, fc1 (300), relu1, fc2 (100), relu2, output (n_classes)
 * variant = "lenet5", layers:
 *     conv1 (6 channels, 5x5, padding conv1_padding), relu1, pool1 (2x2),
 *     conv2 (16 channels, 5x5), relu2, pool2 (2x2), flatten,
 *     fc1 (120), relu3, fc2 (84), relu4, output (n_classes)
 * LeNet-5 was designed for 32x32 inputs (MNIST digits padded from 28x28); the usual way to run
 * it on 28x28 MNIST / Fashion-MNIST is padding 2 on the first convolution, which gives the same
 * 16x5x5 features before fc1. conv1_padding = -1 (the default) does exactly that: 2 for 28x28
 * inputs, 0 otherwise (e.g. 32x32 CIFAR: 16x5x5 as well). Pooling is max pooling (pool = "avg":
 * average pooling, closer to the original subsampling layers).
 *
 * Parameters for 1x28x28 inputs and 10 classes (PyTorch counts): 300-100: 266,610;
 * lenet5: 61,706. Linear layers are dense here (a sparse model may replace them);
 * sparse_conv > 0 builds the convolutions as truly sparse layers of that density (their
 * topology is static: the prune / regrow models act on linear layers). */
#include <dsnn/dsnn.h>

#include <stdio.h>
#include <string.h>

#define LENET_N_CONV 2

struct lenet_params {
    int variant, pool;
    bool bias;
    int64_t pad;
};

static const char *const lenet_variants[] = {"lenet5", "300-100", NULL};
static const char *const lenet_pools[] = {"max", "avg", NULL};

#define LK_AT(f) DSNN_KEY_AT(struct lenet_params, f)
static const struct dsnn_key_spec lenet_keys[] = {
    DSNN_KEY_PLUGIN("lenet"),
    {.name = "variant", .type = DSNN_KEY_STRING, .def_str = "lenet5", .choices = lenet_variants,
     LK_AT(variant),
     .doc = "\"lenet5\" (conv 6 - pool - conv 16 - pool - fc 120 - fc 84) or \"300-100\" (MLP with "
     "hidden layers of 300 and 100 units)"},
    {.name = "bias", .type = DSNN_KEY_BOOL, .def = true, LK_AT(bias),
     .doc = "convolutions and linear layers have a bias"},
    {.name = "conv1_padding", .type = DSNN_KEY_INT, .def = -1, DSNN_KEY_RANGE(-1, 64), LK_AT(pad),
     .doc = "lenet5: zero padding of conv1 (-1: 2 for 28x28 inputs as LeNet-5 on MNIST, else 0)"},
    {.name = "pool", .type = DSNN_KEY_STRING, .def_str = "max", .choices = lenet_pools,
     LK_AT(pool), .doc = "lenet5: \"max\" or \"avg\" pooling"},
    {.name = "sparse_conv", .type = DSNN_KEY_FLOAT_OR_ARRAY, .def = 0, DSNN_KEY_RANGE(0, 1),
     .doc = "lenet5: density of truly sparse convolutions, in [0, 1] (0: dense); one value or one per "
     "convolution [conv1, conv2]"},
};
#undef LK_AT
DSNN_KEY_TABLE_DEFINE(static, lenet_table, lenet_keys);

/* LeNet-5 up to its output layer: (conv 5x5 -> ReLU -> 2x2 pooling) x 2 with 6 and 16
 * channels, flatten, fc1 (120) -> relu3, fc2 (84) -> relu4. */
static enum dsnn_status add_lenet5_layers(struct dsnn_net *net, int pad, bool bias, int pool,
                                          const double *dens, struct dsnn_error *err)
{
    enum dsnn_status st;
    const int channels[LENET_N_CONV] = {6, 16};
    st = DSNN_OK;
    for (int i = 0; st == DSNN_OK && i < LENET_N_CONV; i++) {
        char name[DSNN_LAYER_NAME_MAX];
        snprintf(name, sizeof name, "conv%d", i + 1);
        st = dsnn_net_add_conv2d(net, name, channels[i], 5, 1, i == 0 ? pad : 0, bias, dens[i],
                                 err);
        if (st != DSNN_OK)
            break;
        snprintf(name, sizeof name, "relu%d", i + 1);
        st = dsnn_net_add(net, dsnn_relu_new(name, dsnn_net_last_shape(net), err), err);
        if (st != DSNN_OK)
            break;
        snprintf(name, sizeof name, "pool%d", i + 1);
        const struct dsnn_shape in = dsnn_net_last_shape(net);
        st = dsnn_net_add(net,
                          pool == 0 ? dsnn_maxpool2d_new(name, in, 2, 2, 0, err)
                                    : dsnn_avgpool2d_new(name, in, 2, 2, 0, true, err),
                          err);
    }
    if (st == DSNN_OK)
        st = dsnn_net_add(net, dsnn_flatten_new("flatten", dsnn_net_last_shape(net), err), err);
    if (st == DSNN_OK)
        st = dsnn_net_add_fc_relu(net, 1, 3, 120, bias, err);
    if (st == DSNN_OK)
        st = dsnn_net_add_fc_relu(net, 2, 4, 84, bias, err);
    return st;
}

static enum dsnn_status lenet_build(const struct dsnn_cfg *cfg, const struct dsnn_run_ctx *ctx,
                                    struct dsnn_shape input, int n_classes, struct dsnn_net **out,
                                    struct dsnn_error *err)
{
    (void)ctx;
    static const struct dsnn_net_items per_conv = {"the ", "convolutions of lenet5",
                                                   "one per convolution"};
    struct lenet_params p;
    double dens[LENET_N_CONV];
    char where[300];
    enum dsnn_status st;
    *out = NULL;
    if ((st = dsnn_keys_read(&lenet_table, cfg, &p, err)) ||
        (st = dsnn_net_read_floats(cfg, &lenet_table, "sparse_conv", NULL, dens, LENET_N_CONV,
                                   &per_conv, err)))
        return st;
    const int variant = p.variant, pool = p.pool;
    const bool bias = p.bias;
    int64_t pad = p.pad;
    const bool lenet5 = variant == 0;
    if (!lenet5 && (dens[0] > 0 || dens[1] > 0))
        return dsnn_error_set(err, DSNN_ERR_CONFIG,
                              "%s: key '%s.sparse_conv': variant \"300-100\" has no convolution "
                              "(use a sparse model to make its linear layers sparse)",
                              dsnn_cfg_where(cfg, "sparse_conv", where, sizeof where),
                              dsnn_cfg_path(cfg));
    if (pad < 0)
        pad = input.h == 28 && input.w == 28 ? 2 : 0;
    /* Two 5x5 convolutions and two 2x2 poolings: conv2's output must be >= 2, i.e. pool1's
     * >= 6, conv1's >= 12, the input + 2 padding >= 16. */
    const int min_side = 16 - 2 * (int)pad;
    if (lenet5 && (input.h < min_side || input.w < min_side))
        return dsnn_error_set(err, DSNN_ERR_CONFIG,
                              "%s: variant \"lenet5\" needs inputs of at least %dx%d with "
                              "conv1_padding = %d (two 5x5 convolutions and two 2x2 poolings), "
                              "but the dataset gives %dx%dx%d samples; use variant \"300-100\" "
                              "or a larger input",
                              dsnn_cfg_where(cfg, "variant", where, sizeof where),
                              min_side < 1 ? 1 : min_side, min_side < 1 ? 1 : min_side, (int)pad,
                              input.c, input.h, input.w);

    struct dsnn_net *net = dsnn_net_new(input, n_classes, err);
    if (!net)
        return err ? err->status : DSNN_ERR_NOMEM;
    if (lenet5) {
        st = add_lenet5_layers(net, (int)pad, bias, pool, dens, err);
    } else {
        st = dsnn_net_add(net, dsnn_flatten_new("flatten", input, err), err);
        if (st == DSNN_OK)
            st = dsnn_net_add_fc_relu(net, 1, 1, 300, bias, err);
        if (st == DSNN_OK)
            st = dsnn_net_add_fc_relu(net, 2, 2, 100, bias, err);
    }
    char what[64];
    snprintf(what, sizeof what, "variant \"%s\"", lenet_variants[variant]);
    return dsnn_net_build_end(net, st, bias, cfg, what, out, err);
}

DSNN_NETWORK_PLUGIN("lenet", "1.0.0",
                    "LeNet-5 (conv 6 - pool - conv 16 - pool - fc 120 - fc 84, ReLU) or "
                    "LeNet-300-100",
                    lenet_keys, .build = lenet_build)
