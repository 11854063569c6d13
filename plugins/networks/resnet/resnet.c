/* resnet - network plugin: residual networks for 32x32 images (CIFAR): ResNet-18 / ResNet-34
 * (He et al. 2016, CIFAR form) and Wide ResNet (Zagoruyko & Komodakis 2016, as nupic.research's
 * dynamic_sparse networks/wideresnet.py).
 *
 *     network = { plugin = "resnet"; variant = "resnet18"; width = 0.5; };
 *     network = { plugin = "resnet"; variant = "wrn"; depth = 28; widen_factor = 2; };
 *
 * variant = "resnet18" / "resnet34" (torchvision's BasicBlock; the CIFAR stem: no 7x7 conv, no
 * max pool):
 *     conv 3x3, 64 channels, no bias [conv1] -> batch norm [bn1] -> ReLU [relu1]
 *     stages of [2, 2, 2, 2] (resnet18) or [3, 4, 6, 3] (resnet34) basic blocks with 64, 128,
 *         256, 512 channels, the first block of stages 2-4 with stride 2 [layer<s>_<b>]
 *         (dsnn_resnet_basic_block_new: conv3x3-bn-relu-conv3x3-bn + shortcut, ReLU after the
 *         sum; 1x1 conv + bn shortcut where the shape changes)
 *     global average pooling [avgpool] -> linear to n_classes [output]
 *   width multiplies the channel counts (rounded, at least 1).
 * variant = "wrn" (WRN-depth-widen_factor; nupic's pre-activation WideBasic, conv biases):
 *     conv 3x3, 16 channels [conv1]
 *     3 stages of (depth - 4) / 6 blocks with 16 k, 32 k, 64 k channels (k = widen_factor), the
 *         first block of stages 2-3 with stride 2 [layer<s>_<b>]; each block:
 *         bn1 -> relu1 -> conv1 3x3 -> dropout (dropout > 0) -> bn2 -> relu2 -> conv2 3x3
 *         (stride) + shortcut (identity, or 1x1 conv with stride where the shape changes), no
 *         ReLU after the sum
 *     batch norm [bn1] (momentum 0.9, nupic's value in PyTorch's convention) -> ReLU [relu1]
 *         -> global average pooling [avgpool] -> linear [output]
 *
 * Parameters for 3x32x32 inputs and 10 classes (PyTorch counts): resnet18 11,173,962;
 * resnet34 21,282,122; wrn 28-2 1,469,642 (with nupic's conv biases).
 *
 * sparse_conv > 0 (one density, or one per convolution in network order: the stem conv1, then
 * each block's conv1, conv2 and shortcut_conv) builds those convolutions as truly sparse layers
 * of that density (static topology), inside the residual blocks too; a sparse model with
 * sparse_linear_only = false makes the dense ones sparse and rewires them. */
#include <dsnn/dsnn.h>

#include <stdio.h>
#include <string.h>

#define RESNET_MAX_BLOCKS 64

struct resnet_params {
    int variant;
    double width, dropout;
    int64_t depth, widen;
};

static const char *const resnet_variants[] = {"resnet18", "resnet34", "wrn", NULL};

#define RK_AT(f) DSNN_KEY_AT(struct resnet_params, f)
static const struct dsnn_key_spec resnet_keys[] = {
    DSNN_KEY_PLUGIN("resnet"),
    {.name = "variant", .type = DSNN_KEY_STRING, .def_str = "resnet18",
     .choices = resnet_variants, RK_AT(variant), .doc = "\"resnet18\", \"resnet34\" or \"wrn\""},
    {.name = "width", .type = DSNN_KEY_FLOAT, .def = 1.0, DSNN_KEY_RANGE(1e-6, 16), RK_AT(width),
     .doc = "resnet18/34: channel multiplier (0.25: 16, 32, 64, 128 channels), in (0, 16]"},
    {.name = "depth", .type = DSNN_KEY_INT, .def = 28, DSNN_KEY_RANGE(10, 6 * 100 + 4),
     RK_AT(depth), .doc = "wrn: depth, 6 n + 4 (n blocks per stage)"},
    {.name = "widen_factor", .type = DSNN_KEY_INT, .def = 2, DSNN_KEY_RANGE(1, 64), RK_AT(widen),
     .doc = "wrn: widening factor k (16 k, 32 k, 64 k channels)"},
    {.name = "dropout", .type = DSNN_KEY_FLOAT, .def = 0.3, DSNN_KEY_RANGE(0, 0.999999),
     RK_AT(dropout),
     .doc = "wrn: dropout probability between the two convolutions of a block, in [0, 1) (0: none)"},
    DSNN_KEY_ALIAS_OF("dropout_rate", "dropout", "nupic WideResNet's"),
    {.name = "sparse_conv", .type = DSNN_KEY_FLOAT_OR_ARRAY, .def = 0, DSNN_KEY_RANGE(0, 1),
     .doc = "density of truly sparse convolutions (0: dense), one value or one per convolution "
     "(stem, then each block's conv1, conv2, shortcut_conv)"},
};
#undef RK_AT
DSNN_KEY_TABLE_DEFINE(static, resnet_table, resnet_keys);

/* A key that the chosen variant does not use. */
static enum dsnn_status not_for(const struct dsnn_cfg *cfg, const char *key, const char *variant,
                                const char *hint, struct dsnn_error *err)
{
    char where[300];
    if (!dsnn_cfg_has(cfg, key))
        return DSNN_OK;
    return dsnn_error_set(err, DSNN_ERR_CONFIG, "%s: key '%s.%s' does not apply to variant \"%s\" "
                          "(%s)",
                          dsnn_cfg_where(cfg, key, where, sizeof where), dsnn_cfg_path(cfg), key,
                          variant, hint);
}

/* Layer (shortcut, j) of residual block l, or l itself when it is not one (j = 0). */
static struct dsnn_layer *conv_at(struct dsnn_layer *l, int shortcut, size_t j)
{
    return dsnn_layer_is(l, "residual") ? dsnn_residual_layer(l, shortcut, j)
                                        : (shortcut || j) ? NULL : l;
}

/* sparse_conv: the convolutions, in network order (inside a block: inner chain, then shortcut),
 * with density dens[k] (one value: all) > 0 become truly sparse. Counts them first (n_conv) to
 * check the key. */
static enum dsnn_status sparsify_convs(struct dsnn_net *net, const double *dens, size_t n_dens,
                                       const struct dsnn_cfg *cfg, struct dsnn_error *err)
{
    size_t k = 0;
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1 && n_dens != 1 && n_dens != k)
            return dsnn_cfg_count_error(cfg, "sparse_conv", n_dens, "", k, "convolutions",
                                        "one value or one per convolution", err);
        k = 0;
        for (size_t i = 0; i < dsnn_net_n_layers(net); i++)
            for (int sc = 0; sc < 2; sc++)
                for (size_t j = 0;; j++) {
                    struct dsnn_layer *l = dsnn_net_layer(net, i), *c = conv_at(l, sc, j);
                    if (!c)
                        break;
                    if (!dsnn_layer_is(c, "conv2d"))
                        continue;
                    const size_t at = k++;
                    if (pass == 0 || dens[n_dens == 1 ? 0 : at] == 0)
                        continue;
                    const double d = dens[n_dens == 1 ? 0 : at];
                    struct dsnn_sparse_init init = dsnn_sparse_init_default();
                    init.density = d;
                    struct dsnn_layer *s = dsnn_sparse_conv2d_like(c, NULL, &init, err);
                    enum dsnn_status st =
                        !s ? (err ? err->status : DSNN_ERR_NOMEM)
                        : c == l ? dsnn_net_replace(net, i, s, err)
                                 : dsnn_residual_replace(l, sc, j, s, err);
                    if (st != DSNN_OK)
                        return st;
                }
    }
    return DSNN_OK;
}

/* nupic's WideBasic as a residual block. */
static struct dsnn_layer *wide_basic_new(const char *name, struct dsnn_shape in, int planes,
                                         int stride, double dropout, struct dsnn_error *err)
{
    struct dsnn_layer *inner[7] = {0}, *sc[1] = {0};
    size_t n = 0, n_sc = 0;
    const struct dsnn_shape mid = {planes, in.h, in.w};
    inner[n++] = dsnn_batchnorm2d_new("bn1", in, true, err);
    if (inner[n - 1])
        inner[n++] = dsnn_relu_new("relu1", in, err);
    if (inner[n - 1])
        inner[n++] = dsnn_conv2d_new("conv1", in, planes, 3, 1, 1, true, err);
    if (inner[n - 1] && dropout > 0)
        inner[n++] = dsnn_dropout_new("dropout", mid, dropout, err);
    if (inner[n - 1])
        inner[n++] = dsnn_batchnorm2d_new("bn2", mid, true, err);
    if (inner[n - 1])
        inner[n++] = dsnn_relu_new("relu2", mid, err);
    if (inner[n - 1])
        inner[n++] = dsnn_conv2d_new("conv2", mid, planes, 3, stride, 1, true, err);
    bool ok = inner[n - 1] != NULL;
    if (ok && (stride != 1 || in.c != planes)) {
        sc[n_sc++] = dsnn_conv2d_new("shortcut_conv", in, planes, 1, stride, 0, true, err);
        ok = sc[0] != NULL;
    }
    if (!ok) {
        for (size_t i = 0; i < n; i++)
            dsnn_layer_free(inner[i]);
        for (size_t i = 0; i < n_sc; i++)
            dsnn_layer_free(sc[i]);
        return NULL;
    }
    return dsnn_residual_new(name, inner, n, sc, n_sc, false, err);
}

/* The layers of a wide resnet up to the pooling: stem, 3 stages of (depth - 4) / 6 WideBasic
 * blocks, batch norm (nupic's momentum) and ReLU. */
static enum dsnn_status add_wrn_layers(struct dsnn_net *net, struct dsnn_shape input,
                                       const struct resnet_params *p, struct dsnn_error *err)
{
    char name[DSNN_LAYER_NAME_MAX];
    const int64_t depth = p->depth, widen = p->widen;
    const double dropout = p->dropout;
    enum dsnn_status st;
    const int n = (int)(depth - 4) / 6, k = (int)widen;
    const int planes[3] = {16 * k, 32 * k, 64 * k};
    st = dsnn_net_add(net, dsnn_conv2d_new("conv1", input, 16, 3, 1, 1, true, err), err);
    for (int s = 0; st == DSNN_OK && s < 3; s++)
        for (int b = 0; st == DSNN_OK && b < n; b++) {
            snprintf(name, sizeof name, "layer%d_%d", s + 1, b);
            st = dsnn_net_add(net,
                              wide_basic_new(name, dsnn_net_last_shape(net), planes[s],
                                             s > 0 && b == 0 ? 2 : 1, dropout, err),
                              err);
        }
    if (st == DSNN_OK) {
        struct dsnn_layer *bn = dsnn_batchnorm2d_new("bn1", dsnn_net_last_shape(net), true, err);
        if (bn && (st = dsnn_batchnorm_set_momentum_eps(bn, 0.9, 1e-5, err)) != DSNN_OK) {
            dsnn_layer_free(bn);
            bn = NULL;
        }
        st = dsnn_net_add(net, bn, err);
    }
    if (st == DSNN_OK)
        st = dsnn_net_add(net, dsnn_relu_new("relu1", dsnn_net_last_shape(net), err), err);
    return st;
}

/* The layers of resnet18/34 up to the pooling: stem conv, batch norm, ReLU, 4 stages of basic
 * blocks of width * 64, 128, 256, 512 channels. */
static enum dsnn_status add_resnet_layers(struct dsnn_net *net, struct dsnn_shape input,
                                          const struct resnet_params *p, struct dsnn_error *err)
{
    char name[DSNN_LAYER_NAME_MAX];
    const int variant = p->variant;
    const double width = p->width;
    enum dsnn_status st;
    static const int blocks[2][4] = {{2, 2, 2, 2}, {3, 4, 6, 3}};
    static const int base[4] = {64, 128, 256, 512};
    int ch[4];
    for (int s = 0; s < 4; s++) {
        const double c = base[s] * width + 0.5;
        ch[s] = c < 2 ? 1 : (int)c;
    }
    st = dsnn_net_add(net, dsnn_conv2d_new("conv1", input, ch[0], 3, 1, 1, false, err), err);
    if (st == DSNN_OK)
        st = dsnn_net_add(net, dsnn_batchnorm2d_new("bn1", dsnn_net_last_shape(net), true, err),
                          err);
    if (st == DSNN_OK)
        st = dsnn_net_add(net, dsnn_relu_new("relu1", dsnn_net_last_shape(net), err), err);
    for (int s = 0; st == DSNN_OK && s < 4; s++)
        for (int b = 0; st == DSNN_OK && b < blocks[variant][s]; b++) {
            snprintf(name, sizeof name, "layer%d_%d", s + 1, b);
            st = dsnn_net_add(net,
                              dsnn_resnet_basic_block_new(name, dsnn_net_last_shape(net), ch[s],
                                                          s > 0 && b == 0 ? 2 : 1, err),
                              err);
        }
    return st;
}

static enum dsnn_status resnet_build(const struct dsnn_cfg *cfg, const struct dsnn_run_ctx *ctx,
                                     struct dsnn_shape input, int n_classes,
                                     struct dsnn_net **out, struct dsnn_error *err)
{
    (void)ctx;
    struct resnet_params p;
    double dens[64];
    size_t n_dens = 0;
    char where[300];
    enum dsnn_status st;
    *out = NULL;
    if ((st = dsnn_keys_read(&resnet_table, cfg, &p, err)) ||
        (st = dsnn_cfg_float_or_array(cfg, "sparse_conv",
                                      dsnn_keys_find(resnet_keys, DSNN_COUNT_OF(resnet_keys),
                                                     "sparse_conv")->def,
                                      dens, DSNN_COUNT_OF(dens), &n_dens, err)))
        return st;
    const int variant = p.variant;
    const int64_t depth = p.depth;
    const char *vname = resnet_variants[variant];
    const bool wrn = variant == 2;
    if (wrn) {
        if ((st = not_for(cfg, "width", vname, "use widen_factor", err)))
            return st;
        if ((depth - 4) % 6 != 0)
            return dsnn_error_set(err, DSNN_ERR_CONFIG,
                                  "%s: key '%s.depth' = %lld: a wide resnet's depth is 6 n + 4 "
                                  "(10, 16, 22, 28, 40 ...)",
                                  dsnn_cfg_where(cfg, "depth", where, sizeof where),
                                  dsnn_cfg_path(cfg), (long long)depth);
    } else {
        const char *hint = "a wide resnet key: use variant = \"wrn\", or width";
        if ((st = not_for(cfg, "depth", vname, hint, err)) ||
            (st = not_for(cfg, "widen_factor", vname, hint, err)) ||
            (st = not_for(cfg, "dropout", vname, "the basic blocks have no dropout", err)))
            return st;
    }

    struct dsnn_net *net = dsnn_net_new(input, n_classes, err);
    if (!net)
        return err ? err->status : DSNN_ERR_NOMEM;
    st = wrn ? add_wrn_layers(net, input, &p, err) : add_resnet_layers(net, input, &p, err);
    if (st == DSNN_OK)
        st = sparsify_convs(net, dens, n_dens, cfg, err);
    if (st == DSNN_OK)
        st = dsnn_net_add(net, dsnn_global_avgpool2d_new("avgpool", dsnn_net_last_shape(net), err),
                          err);
    return dsnn_net_build_end(net, st, true, cfg, vname, out, err);
}

DSNN_NETWORK_PLUGIN("resnet", "1.0.0",
                    "ResNet-18/34 (CIFAR form, width multiplier) and Wide ResNet (WRN-28-2 ...) "
                    "for 32x32 images: residual blocks, global average pooling, linear",
                    resnet_keys, .build = resnet_build)
