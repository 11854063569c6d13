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
 * value for all), percent_on 0.25 (nupic's hebbian_v0 MLP; the later MLPHeb's
 * percent_on_k_winner default [1.0, 1.0, 1.0] means ReLU), k_inference_factor 1.0, duty cycle
 * period 1000. percent_on_k_winner (nupic's form) chooses per layer: k-winners below 0.5, else
 * ReLU. Every linear layer is dense here: a sparse model (sparse, set, dsnn-mixed-heb ...)
 * replaces the ones it selects by truly sparse layers. The k-winners' boost strength decays by
 * boost_strength_factor after every training epoch (the base model calls dsnn_net_on_epoch_end).
 *
 * Note for Hebbian models: libdsnn's coactivation tracker counts a linear layer's output at the
 * end of its block (batch norm, k-winners or ReLU, dropout), as nupic's DSLinearBlock hook. */
#include <dsnn/dsnn.h>

#include <stdio.h>

#define MLPHEB_MAX_HIDDEN 64

struct mlp_heb_params {
    bool bias, batch_norm, kwinners;
    double dropout, k_inf;
    int64_t period;
};

#define MK_AT(f) DSNN_KEY_AT(struct mlp_heb_params, f)
static const struct dsnn_key_spec mlp_heb_keys[] = {
    DSNN_KEY_PLUGIN("mlp-heb"),
    {.name = "hidden_sizes", .type = DSNN_KEY_INT_ARRAY, .default_value = "[100, 100, 100]",
     DSNN_KEY_RANGE(1, 100000000),
     .doc = "width of each hidden layer, input to output (empty: softmax regression)"},
    {.name = "bias", .type = DSNN_KEY_BOOL, .def = true, MK_AT(bias), .doc = "linear layers have a bias"},
    {.name = "batch_norm", .type = DSNN_KEY_BOOL, .def = false, MK_AT(batch_norm),
     .doc = "batch norm 1d (affine) between each hidden linear layer and its activation"},
    {.name = "dropout", .type = DSNN_KEY_FLOAT, .def = 0, DSNN_KEY_RANGE(0, 0.999999), MK_AT(dropout),
     .doc = "dropout probability after each hidden activation, in [0, 1) (0: no dropout layer)"},
    {.name = "kwinners", .type = DSNN_KEY_BOOL, .def = false, MK_AT(kwinners),
     .doc = "k-winners instead of ReLU in the hidden layers"},
    {.name = "percent_on", .type = DSNN_KEY_FLOAT_OR_ARRAY, .def = 0.25,
     .doc = "k-winners: fraction of active units, in (0, 1); one value or one per hidden layer"},
    DSNN_PERCENT_ON_K_WINNER_KEY,
    {.name = "boost_strength", .type = DSNN_KEY_FLOAT_OR_ARRAY, .def = 1.4,
     .doc = "k-winners: boost strength (>= 0; 0: no boosting); one value or one per hidden layer"},
    {.name = "boost_strength_factor", .type = DSNN_KEY_FLOAT_OR_ARRAY, .def = 0.7,
     .doc = "k-winners: boost strength decay per epoch, in [0, 1]; one value or one per hidden layer"},
    {.name = "k_inference_factor", .type = DSNN_KEY_FLOAT, .def = 1.0, MK_AT(k_inf),
     .doc = "k-winners: k at evaluation is int(k * k_inference_factor)"},
    {.name = "duty_cycle_period", .type = DSNN_KEY_INT, .def = 1000, DSNN_KEY_RANGE(1, 1e9),
     MK_AT(period), .doc = "k-winners: period of the duty cycle average"},
};
#undef MK_AT
DSNN_KEY_TABLE_DEFINE(static, mlp_heb_table, mlp_heb_keys);

static enum dsnn_status mlp_heb_build(const struct dsnn_cfg *cfg, const struct dsnn_run_ctx *ctx,
                                      struct dsnn_shape input, int n_classes,
                                      struct dsnn_net **out, struct dsnn_error *err)
{
    (void)ctx;
    static const int64_t def_hidden[] = {100, 100, 100}; /* the default of hidden_sizes */
    static const struct dsnn_net_items per_hidden = {"", "hidden layers", "one per hidden layer"};
    int64_t hidden[MLPHEB_MAX_HIDDEN];
    size_t n_hidden = 0;
    struct mlp_heb_params p;
    double percent_on[MLPHEB_MAX_HIDDEN], boost[MLPHEB_MAX_HIDDEN], boost_f[MLPHEB_MAX_HIDDEN];
    bool use_kw[MLPHEB_MAX_HIDDEN];
    enum dsnn_status st;
    *out = NULL;
    if ((st = dsnn_keys_read(&mlp_heb_table, cfg, &p, err)) ||
        (st = dsnn_net_read_sizes(cfg, "hidden_sizes", def_hidden, DSNN_COUNT_OF(def_hidden),
                                  hidden, MLPHEB_MAX_HIDDEN, &n_hidden, err)) ||
        (st = dsnn_net_read_activations(cfg, &mlp_heb_table, NULL, p.kwinners, percent_on,
                                        use_kw, n_hidden, &per_hidden, err)) ||
        (st = dsnn_net_read_floats(cfg, &mlp_heb_table, "boost_strength", NULL, boost, n_hidden,
                                   &per_hidden, err)) ||
        (st = dsnn_net_read_floats(cfg, &mlp_heb_table, "boost_strength_factor", NULL, boost_f,
                                   n_hidden, &per_hidden, err)))
        return st;

    struct dsnn_net *net = dsnn_net_new(input, n_classes, err);
    if (!net)
        return err ? err->status : DSNN_ERR_NOMEM;
    st = dsnn_net_add(net, dsnn_flatten_new("flatten", input, err), err);
    for (size_t i = 0; st == DSNN_OK && i < n_hidden; i++) {
        const int n = (int)hidden[i];
        const struct dsnn_shape s = {n, 1, 1};
        char name[DSNN_LAYER_NAME_MAX];
        snprintf(name, sizeof name, "fc%zu", i + 1);
        st = dsnn_net_add_linear(net, name, n, p.bias, err);
        if (st == DSNN_OK && p.batch_norm) {
            snprintf(name, sizeof name, "bn%zu", i + 1);
            st = dsnn_net_add(net, dsnn_batchnorm1d_new(name, n, true, err), err);
        }
        if (st == DSNN_OK && use_kw[i]) {
            struct dsnn_kwinners_cfg kc = dsnn_kwinners_cfg_default();
            kc.percent_on = percent_on[i];
            kc.k_inference_factor = p.k_inf;
            kc.boost_strength = boost[i];
            kc.boost_strength_factor = boost_f[i];
            kc.duty_cycle_period = (int)p.period;
            snprintf(name, sizeof name, "kw%zu", i + 1);
            st = dsnn_net_add(net, dsnn_kwinners_new(name, n, &kc, err), err);
        } else if (st == DSNN_OK) {
            snprintf(name, sizeof name, "relu%zu", i + 1);
            st = dsnn_net_add(net, dsnn_relu_new(name, s, err), err);
        }
        if (st == DSNN_OK && p.dropout > 0) {
            snprintf(name, sizeof name, "dropout%zu", i + 1);
            st = dsnn_net_add(net, dsnn_dropout_new(name, s, p.dropout, err), err);
        }
    }
    return dsnn_net_build_end(net, st, p.bias, cfg, NULL, out, err);
}

DSNN_NETWORK_PLUGIN("mlp-heb", "1.0.0",
                    "nupic MLPHeb: [flatten] -> (linear -> [batch norm] -> k-winners or ReLU -> "
                    "[dropout]) x N -> linear",
                    mlp_heb_keys, .build = mlp_heb_build)
