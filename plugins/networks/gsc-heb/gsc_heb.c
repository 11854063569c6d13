/* gsc-heb - network plugin: nupic.research's GSCHeb (dynamic_sparse networks), the LeNet-like CNN
 * of "How Can We Be So Dense?" (Ahmad & Scheinkman 2019) for Google Speech Commands (1x32x32
 * log-mel spectrograms, 12 classes).
 *
 *     network = { plugin = "gsc-heb"; };
 *
 * Layers (names in brackets), as nupic's GSCHeb:
 *     conv 5x5, 64 channels [conv1] -> batch norm 2d, not affine [bn1] -> max pool 2x2 [pool1]
 *         -> k-winners 2d, percent_on 0.095 [kw1] (or ReLU [relu1])
 *     conv 5x5, 64 channels [conv2] -> batch norm 2d, not affine [bn2] -> max pool 2x2 [pool2]
 *         -> k-winners 2d, percent_on 0.125 [kw2] (or ReLU [relu2])
 *     flatten [flatten]
 *     linear 1600 -> 1000 [fc1] -> batch norm 1d, not affine [bn3] (batch_norm) -> k-winners,
 *         percent_on 0.1 [kw3] (or ReLU [relu3]) -> dropout [dropout3] (dropout > 0)
 *     linear 1000 -> n_classes [output]
 * For 1x32x32 inputs the feature maps are 64x28x28 -> 64x14x14 -> 64x10x10 -> 64x5x5 (1600).
 * k-winners defaults are nupic's (GSCHeb and nupic.torch's GSCSparseCNN): boost_strength 1.5,
 * boost_strength_factor 0.9, k_inference_factor 1.5, duty_cycle_period 1000; percent_on,
 * boost_strength and boost_strength_factor take one value or one per activation [kw1, kw2, kw3].
 * The boost strengths decay after every training epoch (the base model calls
 * dsnn_net_on_epoch_end).
 *
 * Parameters for 1x32x32 inputs and 12 classes (PyTorch counts): conv1 1,664 + conv2 102,464 +
 * fc1 1,601,000 + output 12,012 = 1,717,140 (the batch norms are not affine).
 * Linear layers are dense here (a sparse model may replace them: nupic's GSC runs make fc1
 * sparse); sparse_conv > 0 builds the convolutions as truly sparse layers of that density
 * (static topology: the prune / regrow models act on linear layers), e.g. sparse_conv = [0.0, 0.2]
 * keeps conv1 dense as nupic.torch's GSCSparseCNN. */
#include <dsnn/dsnn.h>

#include <stdio.h>

#define GSC_N_CONV 2
#define GSC_N_ACT 3

struct gsc_heb_params {
    int64_t fc, period;
    bool bias, batch_norm, kwinners;
    double dropout, k_inf;
};

#define GK_AT(f) DSNN_KEY_AT(struct gsc_heb_params, f)
static const struct dsnn_key_spec gsc_heb_keys[] = {
    DSNN_KEY_PLUGIN("gsc-heb"),
    {.name = "hidden_neurons_conv", .type = DSNN_KEY_INT_ARRAY, .default_value = "[64, 64]",
     DSNN_KEY_RANGE(1, 65536), .doc = "output channels of the two 5x5 convolutions"},
    {.name = "hidden_neurons_fc", .type = DSNN_KEY_INT, .def = 1000, DSNN_KEY_RANGE(1, 1e8),
     GK_AT(fc), .doc = "units of the hidden linear layer fc1"},
    {.name = "bias", .type = DSNN_KEY_BOOL, .def = true, GK_AT(bias),
     .doc = "convolutions and linear layers have a bias"},
    {.name = "batch_norm", .type = DSNN_KEY_BOOL, .def = true, GK_AT(batch_norm),
     .doc = "batch norm 1d (not affine) after fc1 (the convolutions always have one, as in nupic)"},
    {.name = "dropout", .type = DSNN_KEY_FLOAT, .def = 0, DSNN_KEY_RANGE(0, 0.999999), GK_AT(dropout),
     .doc = "dropout probability after fc1's activation, in [0, 1) (0: no dropout layer)"},
    {.name = "kwinners", .type = DSNN_KEY_BOOL, .def = true, GK_AT(kwinners),
     .doc = "k-winners (2d after the convolutions) instead of ReLU"},
    {.name = "percent_on", .type = DSNN_KEY_FLOAT_OR_ARRAY, .default_value = "[0.095, 0.125, 0.1]",
     .doc = "k-winners: fraction of active units, in (0, 1); one value or [kw1, kw2, kw3]"},
    DSNN_PERCENT_ON_K_WINNER_KEY,
    {.name = "boost_strength", .type = DSNN_KEY_FLOAT_OR_ARRAY, .def = 1.5,
     .doc = "k-winners: boost strength (>= 0); one value or [kw1, kw2, kw3]"},
    {.name = "boost_strength_factor", .type = DSNN_KEY_FLOAT_OR_ARRAY, .def = 0.9,
     .doc = "k-winners: boost strength decay per epoch, in [0, 1]; one value or [kw1, kw2, kw3]"},
    {.name = "k_inference_factor", .type = DSNN_KEY_FLOAT, .def = 1.5, GK_AT(k_inf),
     .doc = "k-winners: k at evaluation (percent_on * k_inference_factor must stay below 1)"},
    {.name = "duty_cycle_period", .type = DSNN_KEY_INT, .def = 1000, DSNN_KEY_RANGE(1, 1e9),
     GK_AT(period), .doc = "k-winners: period of the duty cycle average"},
    {.name = "sparse_conv", .type = DSNN_KEY_FLOAT_OR_ARRAY, .def = 0, DSNN_KEY_RANGE(0, 1),
     .doc = "density of truly sparse convolutions, in [0, 1] (0: dense); one value or [conv1, conv2]"},
};
#undef GK_AT
DSNN_KEY_TABLE_DEFINE(static, gsc_heb_table, gsc_heb_keys);

/* The two blocks conv 5x5 -> batch norm 2d -> 2x2 max pooling -> k-winners 2d (or ReLU). */
static enum dsnn_status add_conv_blocks(struct dsnn_net *net, const int64_t *conv_c, bool bias,
                                        const bool *use_kw, struct dsnn_kwinners_cfg *kc,
                                        const double *percent, const double *boost,
                                        const double *boost_f, const double *dens,
                                        struct dsnn_error *err)
{
    enum dsnn_status st;
    st = DSNN_OK;
    char name[DSNN_LAYER_NAME_MAX];
    for (int i = 0; st == DSNN_OK && i < GSC_N_CONV; i++) {
        snprintf(name, sizeof name, "conv%d", i + 1);
        if ((st = dsnn_net_add_conv2d(net, name, (int)conv_c[i], 5, 1, 0, bias, dens[i], err)))
            break;
        snprintf(name, sizeof name, "bn%d", i + 1);
        if ((st = dsnn_net_add(
                 net, dsnn_batchnorm2d_new(name, dsnn_net_last_shape(net), false, err), err)))
            break;
        snprintf(name, sizeof name, "pool%d", i + 1);
        if ((st = dsnn_net_add(
                 net, dsnn_maxpool2d_new(name, dsnn_net_last_shape(net), 2, 2, 0, err), err)))
            break;
        if (use_kw[i]) {
            kc->percent_on = percent[i];
            kc->boost_strength = boost[i];
            kc->boost_strength_factor = boost_f[i];
            snprintf(name, sizeof name, "kw%d", i + 1);
            st = dsnn_net_add(net, dsnn_kwinners2d_new(name, dsnn_net_last_shape(net), kc, err),
                              err);
        } else {
            snprintf(name, sizeof name, "relu%d", i + 1);
            st = dsnn_net_add(net, dsnn_relu_new(name, dsnn_net_last_shape(net), err), err);
        }
    }
    return st;
}

static enum dsnn_status gsc_heb_build(const struct dsnn_cfg *cfg, const struct dsnn_run_ctx *ctx,
                                      struct dsnn_shape input, int n_classes,
                                      struct dsnn_net **out, struct dsnn_error *err)
{
    (void)ctx;
    static const double def_percent[GSC_N_ACT] = {0.095, 0.125, 0.1};
    static const int64_t def_conv[GSC_N_CONV] = {64, 64}; /* the default of hidden_neurons_conv */
    static const struct dsnn_net_items per_act = {"", "activations", "one each"};
    static const struct dsnn_net_items per_conv = {"", "convolutions", "one each"};
    int64_t conv_c[8];
    size_t n_conv = 0;
    struct gsc_heb_params p;
    double percent[GSC_N_ACT], boost[GSC_N_ACT], boost_f[GSC_N_ACT], dens[GSC_N_CONV];
    bool use_kw[GSC_N_ACT];
    char where[300];
    enum dsnn_status st;
    *out = NULL;
    if ((st = dsnn_keys_read(&gsc_heb_table, cfg, &p, err)) ||
        (st = dsnn_net_read_sizes(cfg, "hidden_neurons_conv", def_conv, GSC_N_CONV, conv_c,
                                  DSNN_COUNT_OF(conv_c), &n_conv, err)))
        return st;
    if (n_conv != GSC_N_CONV)
        return dsnn_error_set(err, DSNN_ERR_CONFIG,
                              "%s: key '%s.hidden_neurons_conv': %zu values, the network has %d "
                              "convolutions",
                              dsnn_cfg_where(cfg, "hidden_neurons_conv", where, sizeof where),
                              dsnn_cfg_path(cfg), n_conv, GSC_N_CONV);
    if ((st = dsnn_net_read_activations(cfg, &gsc_heb_table, def_percent, p.kwinners, percent,
                                        use_kw, GSC_N_ACT, &per_act, err)) ||
        (st = dsnn_net_read_floats(cfg, &gsc_heb_table, "boost_strength", NULL, boost, GSC_N_ACT,
                                   &per_act, err)) ||
        (st = dsnn_net_read_floats(cfg, &gsc_heb_table, "boost_strength_factor", NULL, boost_f,
                                   GSC_N_ACT, &per_act, err)) ||
        (st = dsnn_net_read_floats(cfg, &gsc_heb_table, "sparse_conv", NULL, dens, GSC_N_CONV,
                                   &per_conv, err)))
        return st;
    const int64_t fc = p.fc, period = p.period;
    const bool bias = p.bias, batch_norm = p.batch_norm;
    const double dropout = p.dropout, k_inf = p.k_inf;
    /* conv 5x5, pool 2, conv 5x5, pool 2: conv2's output must be >= 2, i.e. the input >= 16. */
    if (input.h < 16 || input.w < 16)
        return dsnn_error_set(err, DSNN_ERR_CONFIG,
                              "%s: gsc-heb needs inputs of at least 16x16 (two 5x5 convolutions "
                              "and two 2x2 poolings; GSC spectrograms are 1x32x32), but the "
                              "dataset gives %dx%dx%d samples",
                              dsnn_cfg_where(cfg, NULL, where, sizeof where), input.c, input.h,
                              input.w);

    struct dsnn_kwinners_cfg kc = dsnn_kwinners_cfg_default();
    kc.k_inference_factor = k_inf;
    kc.duty_cycle_period = (int)period;
    struct dsnn_net *net = dsnn_net_new(input, n_classes, err);
    if (!net)
        return err ? err->status : DSNN_ERR_NOMEM;
    st = add_conv_blocks(net, conv_c, bias, use_kw, &kc, percent, boost, boost_f, dens, err);
    if (st == DSNN_OK)
        st = dsnn_net_add(net, dsnn_flatten_new("flatten", dsnn_net_last_shape(net), err), err);
    const struct dsnn_shape h = {(int)fc, 1, 1};
    if (st == DSNN_OK)
        st = dsnn_net_add_linear(net, "fc1", (int)fc, bias, err);
    if (st == DSNN_OK && batch_norm)
        st = dsnn_net_add(net, dsnn_batchnorm1d_new("bn3", (int)fc, false, err), err);
    if (st == DSNN_OK && use_kw[2]) {
        kc.percent_on = percent[2];
        kc.boost_strength = boost[2];
        kc.boost_strength_factor = boost_f[2];
        st = dsnn_net_add(net, dsnn_kwinners_new("kw3", (int)fc, &kc, err), err);
    } else if (st == DSNN_OK) {
        st = dsnn_net_add(net, dsnn_relu_new("relu3", h, err), err);
    }
    if (st == DSNN_OK && dropout > 0)
        st = dsnn_net_add(net, dsnn_dropout_new("dropout3", h, dropout, err), err);
    return dsnn_net_build_end(net, st, bias, cfg, NULL, out, err);
}

DSNN_NETWORK_PLUGIN("gsc-heb", "1.0.0",
                    "nupic GSCHeb: (conv 5x5 -> BN -> max pool -> k-winners 2d) x 2 -> fc 1000 -> "
                    "BN -> k-winners -> fc (Google Speech Commands CNN)",
                    gsc_heb_keys, .build = gsc_heb_build)
