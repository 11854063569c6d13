/* mlp-heb - network plugin: nupic.research's MLPHeb (dynamic_sparse networks), an MLP whose hidden
 * units can be k-winners instead of ReLU.
 *
 *     network = { plugin = "mlp-heb"; hidden_sizes = [100, 100, 100]; kwinners = true;
 *                 percent_on = 0.3; };
 *
 * Layers (names in brackets), as nupic's DSLinearBlock orders them:
 *     [flatten]
 *     per hidden size i (1-based): linear [fc<i>] -> batch norm 1d [bn<i>] (batch_norm = true,
 *         affine) -> k-winners [kw<i>] (kwinners = true) or ReLU [relu<i>] -> dropout
 *         [dropout<i>] (dropout > 0)
 *     linear to n_classes [output]
 * Defaults are nupic's MLPHeb ones: hidden_sizes [100, 100, 100], bias, no batch norm, no
 * dropout, k-winners with boost_strength 1.4 and boost_strength_factor 0.7 (per layer or one
 * value for all), percent_on 0.25 (MLPHeb's k-winners), k_inference_factor 1.0, duty cycle
 * period 1000. Every linear layer is dense here: a sparse model (sparse, set, dsnn-mixed-heb ...)
 * replaces the ones it selects by truly sparse layers. The k-winners' boost strength decays by
 * boost_strength_factor after every training epoch (the base model calls dsnn_net_on_epoch_end).
 *
 * Note for Hebbian models: libdsnn's coactivation tracker takes a linear layer's activation from
 * the parameter-free layer right after it (the k-winners or ReLU); with batch_norm = true the
 * batch norm (affine, so it has parameters) sits in between and the tracker then counts the
 * linear layer's raw output. */
#include <dsnn/dsnn.h>

#include <stdio.h>

#define MLPHEB_MAX_HIDDEN 64

static const struct dsnn_key_spec mlp_heb_keys[] = {
    {.name = "plugin", .type = DSNN_KEY_STRING, .def_str = "mlp-heb", .doc = "this plugin"},
    {.name = "hidden_sizes", .type = DSNN_KEY_INT_ARRAY, .default_value = "[100, 100, 100]",
     .doc = "width of each hidden layer, input to output (empty: softmax regression)"},
    {.name = "bias", .type = DSNN_KEY_BOOL, .def = true, .doc = "linear layers have a bias"},
    {.name = "batch_norm", .type = DSNN_KEY_BOOL, .def = false,
     .doc = "batch norm 1d (affine) between each hidden linear layer and its activation"},
    {.name = "dropout", .type = DSNN_KEY_FLOAT, .def = 0,
     .doc = "dropout probability after each hidden activation, in [0, 1) (0: no dropout layer)"},
    {.name = "kwinners", .type = DSNN_KEY_BOOL, .def = false, .doc = "k-winners instead of ReLU in the hidden layers"},
    {.name = "percent_on", .type = DSNN_KEY_FLOAT_OR_ARRAY, .def = 0.25,
     .doc = "k-winners: fraction of active units, in (0, 1); one value or one per hidden layer"},
    {.name = "boost_strength", .type = DSNN_KEY_FLOAT_OR_ARRAY, .def = 1.4,
     .doc = "k-winners: boost strength (>= 0; 0: no boosting); one value or one per hidden layer"},
    {.name = "boost_strength_factor", .type = DSNN_KEY_FLOAT_OR_ARRAY, .def = 0.7,
     .doc = "k-winners: boost strength decay per epoch, in [0, 1]; one value or one per hidden layer"},
    {.name = "k_inference_factor", .type = DSNN_KEY_FLOAT, .def = 1.0,
     .doc = "k-winners: k at evaluation is int(k * k_inference_factor)"},
    {.name = "duty_cycle_period", .type = DSNN_KEY_INT, .def = 1000, .doc = "k-winners: period of the duty cycle average"},
};

/* Reads a float or an array of n_layers floats of key into out[n_layers] (one value is used for
 * every layer). */
static enum dsnn_status per_layer(const struct dsnn_cfg *cfg, const char *key, double def,
                                  double *out, size_t n_layers, struct dsnn_error *err)
{
    double v[MLPHEB_MAX_HIDDEN];
    size_t n = 0;
    enum dsnn_status st = dsnn_cfg_float_or_array(cfg, key, def, v, MLPHEB_MAX_HIDDEN, &n, err);
    if (st != DSNN_OK)
        return st;
    if (n != 1 && n != n_layers) {
        char where[300];
        return dsnn_error_set(err, DSNN_ERR_CONFIG,
                              "%s: key '%s.%s': %zu values for %zu hidden layers (give one value "
                              "or one per hidden layer)",
                              dsnn_cfg_where(cfg, key, where, sizeof where), dsnn_cfg_path(cfg),
                              key, n, n_layers);
    }
    for (size_t i = 0; i < n_layers; i++)
        out[i] = v[n == 1 ? 0 : i];
    return DSNN_OK;
}

static enum dsnn_status mlp_heb_build(const struct dsnn_cfg *cfg, const struct dsnn_run_ctx *ctx,
                                      struct dsnn_shape input, int n_classes,
                                      struct dsnn_net **out, struct dsnn_error *err)
{
    (void)ctx;
    int64_t hidden[MLPHEB_MAX_HIDDEN];
    size_t n_hidden = 0;
    bool bias = true, batch_norm = false, kwinners = false;
    double dropout = 0, k_inf = 1.0;
    int64_t period = 1000;
    double percent_on[MLPHEB_MAX_HIDDEN], boost[MLPHEB_MAX_HIDDEN], boost_f[MLPHEB_MAX_HIDDEN];
    enum dsnn_status st;
    char where[300];
    *out = NULL;
    if (dsnn_cfg_has(cfg, "hidden_sizes")) {
        if ((st = dsnn_cfg_int_array(cfg, "hidden_sizes", hidden, MLPHEB_MAX_HIDDEN, &n_hidden,
                                     err)))
            return st;
    } else {
        hidden[0] = hidden[1] = hidden[2] = 100;
        n_hidden = 3;
    }
    for (size_t i = 0; i < n_hidden; i++)
        if (hidden[i] < 1 || hidden[i] > 100000000)
            return dsnn_error_set(err, DSNN_ERR_CONFIG,
                                  "%s: key '%s.hidden_sizes': element %zu is %lld, must be in "
                                  "[1, 100000000]",
                                  dsnn_cfg_where(cfg, "hidden_sizes", where, sizeof where),
                                  dsnn_cfg_path(cfg), i, (long long)hidden[i]);
    if ((st = dsnn_cfg_bool(cfg, "bias", true, &bias, err)) ||
        (st = dsnn_cfg_bool(cfg, "batch_norm", false, &batch_norm, err)) ||
        (st = dsnn_cfg_float(cfg, "dropout", 0, &dropout, err)) ||
        (st = dsnn_cfg_check_range(cfg, "dropout", dropout, 0, 0.999999, err)) ||
        (st = dsnn_cfg_bool(cfg, "kwinners", false, &kwinners, err)) ||
        (st = dsnn_cfg_float(cfg, "k_inference_factor", 1.0, &k_inf, err)) ||
        (st = dsnn_cfg_int(cfg, "duty_cycle_period", 1000, &period, err)) ||
        (st = dsnn_cfg_check_range(cfg, "duty_cycle_period", (double)period, 1, 1e9, err)) ||
        (st = per_layer(cfg, "percent_on", 0.25, percent_on, n_hidden, err)) ||
        (st = per_layer(cfg, "boost_strength", 1.4, boost, n_hidden, err)) ||
        (st = per_layer(cfg, "boost_strength_factor", 0.7, boost_f, n_hidden, err)))
        return st;

    struct dsnn_net *net = dsnn_net_new(input, n_classes, err);
    if (!net)
        return err ? err->status : DSNN_ERR_NOMEM;
    st = dsnn_net_add(net, dsnn_flatten_new("flatten", input, err), err);
    int n_in = (int)dsnn_shape_size(input);
    for (size_t i = 0; st == DSNN_OK && i < n_hidden; i++) {
        const int n = (int)hidden[i];
        const struct dsnn_shape s = {n, 1, 1};
        char name[DSNN_LAYER_NAME_MAX];
        snprintf(name, sizeof name, "fc%zu", i + 1);
        st = dsnn_net_add(net, dsnn_linear_new(name, n_in, n, bias, err), err);
        if (st == DSNN_OK && batch_norm) {
            snprintf(name, sizeof name, "bn%zu", i + 1);
            st = dsnn_net_add(net, dsnn_batchnorm1d_new(name, n, true, err), err);
        }
        if (st == DSNN_OK && kwinners) {
            struct dsnn_kwinners_cfg kc = dsnn_kwinners_cfg_default();
            kc.percent_on = percent_on[i];
            kc.k_inference_factor = k_inf;
            kc.boost_strength = boost[i];
            kc.boost_strength_factor = boost_f[i];
            kc.duty_cycle_period = (int)period;
            snprintf(name, sizeof name, "kw%zu", i + 1);
            st = dsnn_net_add(net, dsnn_kwinners_new(name, n, &kc, err), err);
        } else if (st == DSNN_OK) {
            snprintf(name, sizeof name, "relu%zu", i + 1);
            st = dsnn_net_add(net, dsnn_relu_new(name, s, err), err);
        }
        if (st == DSNN_OK && dropout > 0) {
            snprintf(name, sizeof name, "dropout%zu", i + 1);
            st = dsnn_net_add(net, dsnn_dropout_new(name, s, dropout, err), err);
        }
        n_in = n;
    }
    if (st == DSNN_OK)
        st = dsnn_net_add(net, dsnn_linear_new("output", n_in, n_classes, bias, err), err);
    if (st != DSNN_OK) {
        dsnn_net_free(net);
        return dsnn_error_prefix(err, "%s: cannot build the network for %dx%dx%d inputs",
                                 dsnn_cfg_where(cfg, NULL, where, sizeof where), input.c, input.h,
                                 input.w);
    }
    *out = net;
    return DSNN_OK;
}

static const struct dsnn_network_ops mlp_heb_ops = {.build = mlp_heb_build};

static const struct dsnn_component mlp_heb_components[] = {
    DSNN_COMPONENT(DSNN_KIND_NETWORK, "mlp-heb", "1.0.0",
                   "nupic MLPHeb: [flatten] -> (linear -> [batch norm] -> k-winners or ReLU -> "
                   "[dropout]) x N -> linear",
                   mlp_heb_ops, mlp_heb_keys),
};

DSNN_PLUGIN_DEFINE("mlp-heb", mlp_heb_components)
