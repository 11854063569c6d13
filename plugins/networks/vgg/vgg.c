/* vgg - network plugin: VGG for 32x32 images (CIFAR), as nupic.research's VGG19
 * (dynamic_sparse networks) and the usual CIFAR VGG-11/13/16/19 (Simonyan & Zisserman 2015 with
 * batch norm and a single linear classifier).
 *
 *     network = { plugin = "vgg"; cfg = "vgg11"; width = 0.5; };
 *
 * Layers: for every entry of the configuration, either a 3x3 convolution (padding 1) [conv<i>]
 * -> batch norm 2d [bn<i>] (batch_norm) -> ReLU [relu<i>] (or k-winners 2d [kw<i>]), or a 2x2
 * pooling [pool<j>] (max; average with kwinners = true, as nupic's VGG19); then flatten
 * [flatten] and one linear layer to n_classes [output]. Channels (before width):
 *     vgg11  64 M 128 M 256 256 M 512 512 M 512 512 M
 *     vgg13  64 64 M 128 128 M 256 256 M 512 512 M 512 512 M
 *     vgg16  64 64 M 128 128 M 256 256 256 M 512 512 512 M 512 512 512 M
 *     vgg19  64 64 M 128 128 M 256 256 256 256 M 512 512 512 512 M 512 512 512 512 M
 * width multiplies every channel count (rounded, at least 1). Five poolings take 32x32 inputs to
 * 1x1 (inputs must be at least 32x32; larger ones give a larger flattened feature map).
 * Initialisation is PyTorch's default (nupic's VGG19 init_weights is not reproduced).
 *
 * Parameters for 3x32x32 inputs and 10 classes, width 1, batch norm, conv biases (PyTorch
 * counts): vgg11 9,231,114; vgg13 9,416,010; vgg16 14,728,266; vgg19 20,040,522.
 * sparse_conv > 0 builds the convolutions as truly sparse layers of that density (static
 * topology: the prune / regrow models act on linear layers); one value or one per convolution
 * (e.g. 0 for the first one, as RigL and nupic keep it dense). */
#include <dsnn/dsnn.h>

#include <stdio.h>
#include <string.h>

#define VGG_POOL 0
#define VGG_MAX_CONV 16

struct vgg_params {
    int which;
    double width, boost, boost_f, k_inf;
    bool batch_norm, bias, kwinners;
    int64_t period;
};

static const char *const vgg_names[] = {"vgg11", "vgg13", "vgg16", "vgg19", NULL};

#define VK_AT(f) DSNN_KEY_AT(struct vgg_params, f)
static const struct dsnn_key_spec vgg_keys[] = {
    DSNN_KEY_PLUGIN("vgg"),
    {.name = "cfg", .type = DSNN_KEY_STRING, .def_str = "vgg19", .choices = vgg_names,
     VK_AT(which), .doc = "\"vgg11\", \"vgg13\", \"vgg16\" or \"vgg19\""},
    {.name = "width", .type = DSNN_KEY_FLOAT, .def = 1.0, DSNN_KEY_RANGE(1e-6, 16), VK_AT(width),
     .doc = "channel multiplier (e.g. 0.25: 16 ... 128 channels), in (0, 16]"},
    {.name = "batch_norm", .type = DSNN_KEY_BOOL, .def = true, VK_AT(batch_norm),
     .doc = "batch norm 2d after every convolution"},
    {.name = "bias", .type = DSNN_KEY_BOOL, .def = true, VK_AT(bias),
     .doc = "convolutions and the linear layer have a bias"},
    {.name = "kwinners", .type = DSNN_KEY_BOOL, .def = false, VK_AT(kwinners),
     .doc = "k-winners 2d instead of ReLU, and average instead of max pooling (nupic VGG19)"},
    {.name = "percent_on", .type = DSNN_KEY_FLOAT_OR_ARRAY, .def = 0.3,
     .doc = "k-winners: fraction of active units, in (0, 1); one value or one per convolution"},
    {.name = "boost_strength", .type = DSNN_KEY_FLOAT, .def = 1.4, VK_AT(boost),
     .doc = "k-winners: boost strength (>= 0)"},
    {.name = "boost_strength_factor", .type = DSNN_KEY_FLOAT, .def = 0.7, VK_AT(boost_f),
     .doc = "k-winners: boost strength decay per epoch, in [0, 1]"},
    {.name = "k_inference_factor", .type = DSNN_KEY_FLOAT, .def = 1.5, VK_AT(k_inf),
     .doc = "k-winners: k at evaluation"},
    {.name = "duty_cycle_period", .type = DSNN_KEY_INT, .def = 1000, DSNN_KEY_RANGE(1, 1e9),
     VK_AT(period), .doc = "k-winners: period of the duty cycle average"},
    {.name = "sparse_conv", .type = DSNN_KEY_FLOAT_OR_ARRAY, .def = 0, DSNN_KEY_RANGE(0, 1),
     .doc = "density of truly sparse convolutions, in [0, 1] (0: dense); one value or one per "
     "convolution"},
};
#undef VK_AT
DSNN_KEY_TABLE_DEFINE(static, vgg_table, vgg_keys);

/* Channels per layer, VGG_POOL for a pooling, -1 ends. */
static const int vgg_cfgs[4][22] = {
    {64, 0, 128, 0, 256, 256, 0, 512, 512, 0, 512, 512, 0, -1},
    {64, 64, 0, 128, 128, 0, 256, 256, 0, 512, 512, 0, 512, 512, 0, -1},
    {64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0, 512, 512, 512, 0, -1},
    {64, 64, 0, 128, 128, 0, 256, 256, 256, 256, 0, 512, 512, 512, 512, 0, 512, 512, 512, 512, 0,
     -1},
};

/* conv<ci> 3x3 (truly sparse of density d when d > 0) -> bn<ci> (batch_norm) -> kw<ci>
 * (kwinners, with kc) or relu<ci>. */
static enum dsnn_status add_conv_block(struct dsnn_net *net, int ci, int channels, double d,
                                       const struct dsnn_kwinners_cfg *kc,
                                       const struct vgg_params *kp, struct dsnn_error *err)
{
    char name[DSNN_LAYER_NAME_MAX];
    snprintf(name, sizeof name, "conv%d", ci);
    enum dsnn_status st = dsnn_net_add_conv2d(net, name, channels, 3, 1, 1, kp->bias, d, err);
    if (st == DSNN_OK && kp->batch_norm) {
        snprintf(name, sizeof name, "bn%d", ci);
        st = dsnn_net_add(net, dsnn_batchnorm2d_new(name, dsnn_net_last_shape(net), true, err),
                          err);
    }
    if (st == DSNN_OK && kp->kwinners) {
        snprintf(name, sizeof name, "kw%d", ci);
        st = dsnn_net_add(net, dsnn_kwinners2d_new(name, dsnn_net_last_shape(net), kc, err), err);
    } else if (st == DSNN_OK) {
        snprintf(name, sizeof name, "relu%d", ci);
        st = dsnn_net_add(net, dsnn_relu_new(name, dsnn_net_last_shape(net), err), err);
    }
    return st;
}

static enum dsnn_status vgg_build(const struct dsnn_cfg *cfg, const struct dsnn_run_ctx *ctx,
                                  struct dsnn_shape input, int n_classes, struct dsnn_net **out,
                                  struct dsnn_error *err)
{
    (void)ctx;
    static const struct dsnn_net_items per_conv = {"the ", "convolutions of this configuration",
                                                   "one per convolution"};
    struct vgg_params kp;
    double percent[VGG_MAX_CONV], dens[VGG_MAX_CONV];
    char where[300];
    enum dsnn_status st;
    *out = NULL;
    if ((st = dsnn_keys_read(&vgg_table, cfg, &kp, err)))
        return st;
    const int which = kp.which;
    const double width = kp.width, boost = kp.boost, boost_f = kp.boost_f, k_inf = kp.k_inf;
    const int64_t period = kp.period;
    const bool bias = kp.bias, kwinners = kp.kwinners;
    const int *spec = vgg_cfgs[which];
    size_t n_conv = 0, n_pool = 0;
    for (const int *q = spec; *q >= 0; q++) {
        if (*q == VGG_POOL)
            n_pool++;
        else
            n_conv++;
    }
    if ((st = dsnn_net_read_floats(cfg, &vgg_table, "percent_on", NULL, percent, n_conv,
                                   &per_conv, err)) ||
        (st = dsnn_net_read_floats(cfg, &vgg_table, "sparse_conv", NULL, dens, n_conv, &per_conv,
                                   err)))
        return st;
    const int min_side = 1 << n_pool;
    if (input.h < min_side || input.w < min_side)
        return dsnn_error_set(err, DSNN_ERR_CONFIG,
                              "%s: %s needs inputs of at least %dx%d (it halves them with %zu "
                              "poolings), but the dataset gives %dx%dx%d samples",
                              dsnn_cfg_where(cfg, "cfg", where, sizeof where), vgg_names[which],
                              min_side, min_side, n_pool, input.c, input.h, input.w);

    struct dsnn_kwinners_cfg kc = dsnn_kwinners_cfg_default();
    kc.boost_strength = boost;
    kc.boost_strength_factor = boost_f;
    kc.k_inference_factor = k_inf;
    kc.duty_cycle_period = (int)period;
    struct dsnn_net *net = dsnn_net_new(input, n_classes, err);
    if (!net)
        return err ? err->status : DSNN_ERR_NOMEM;
    st = DSNN_OK;
    int ci = 0, pi = 0;
    for (const int *p = spec; st == DSNN_OK && *p >= 0; p++) {
        char name[DSNN_LAYER_NAME_MAX];
        const struct dsnn_shape in = dsnn_net_last_shape(net);
        if (*p == VGG_POOL) {
            snprintf(name, sizeof name, "pool%d", ++pi);
            st = dsnn_net_add(net,
                              kwinners ? dsnn_avgpool2d_new(name, in, 2, 2, 0, true, err)
                                       : dsnn_maxpool2d_new(name, in, 2, 2, 0, err),
                              err);
            continue;
        }
        const double c = *p * width + 0.5; /* rounded */
        const int channels = c < 2 ? 1 : (int)c;
        const double d = dens[ci];
        const double pct = percent[ci];
        ci++;
        kc.percent_on = pct;
        st = add_conv_block(net, ci, channels, d, &kc, &kp, err);
    }
    if (st == DSNN_OK)
        st = dsnn_net_add(net, dsnn_flatten_new("flatten", dsnn_net_last_shape(net), err), err);
    return dsnn_net_build_end(net, st, bias, cfg, vgg_names[which], out, err);
}

DSNN_NETWORK_PLUGIN("vgg", "1.0.0",
                    "VGG-11/13/16/19 for 32x32 images: (conv 3x3 -> BN -> ReLU or k-winners, "
                    "pooling) -> linear; width multiplier, optional sparse convolutions",
                    vgg_keys, .build = vgg_build)
