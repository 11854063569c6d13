/* mlp - network plugin: multi-layer perceptron.
 *
 *     network = { plugin = "mlp"; hidden_sizes = [1000, 1000, 1000]; bias = true; };
 *
 * Layers: flatten, then per hidden size fc<i> -> relu<i>, then "output" (linear to n_classes).
 * Linear layers are dense here; a sparse model plugin may replace them by sparse ones. */
#include <dsnn/dsnn.h>

#define MLP_MAX_HIDDEN 64

struct mlp_params {
    bool bias;
};

static const struct dsnn_key_spec mlp_keys[] = {
    {.name = "plugin", .type = DSNN_KEY_STRING, .def_str = "mlp", .doc = "this plugin"},
    {.name = "hidden_sizes", .type = DSNN_KEY_INT_ARRAY, .default_value = "[1000, 1000, 1000]",
     DSNN_KEY_RANGE(1, 100000000),
     .doc = "width of each hidden layer, input to output (empty: softmax regression)"},
    {.name = "bias", .type = DSNN_KEY_BOOL, .def = true, DSNN_KEY_AT(struct mlp_params, bias),
     .doc = "linear layers have a bias"},
};
DSNN_KEY_TABLE_DEFINE(static, mlp_table, mlp_keys);

static enum dsnn_status mlp_build(const struct dsnn_cfg *cfg, const struct dsnn_run_ctx *ctx,
                                  struct dsnn_shape input, int n_classes, struct dsnn_net **out,
                                  struct dsnn_error *err)
{
    (void)ctx;
    static const int64_t def_hidden[] = {1000, 1000, 1000}; /* the default of hidden_sizes */
    int64_t hidden[MLP_MAX_HIDDEN];
    size_t n_hidden = 0;
    struct mlp_params p;
    enum dsnn_status st;
    *out = NULL;
    if ((st = dsnn_keys_read(&mlp_table, cfg, &p, err)) ||
        (st = dsnn_net_read_sizes(cfg, "hidden_sizes", def_hidden, DSNN_COUNT_OF(def_hidden),
                                  hidden, MLP_MAX_HIDDEN, &n_hidden, err)))
        return st;
    struct dsnn_net *net = dsnn_net_new(input, n_classes, err);
    if (!net)
        return err ? err->status : DSNN_ERR_NOMEM;
    st = dsnn_net_add(net, dsnn_flatten_new("flatten", input, err), err);
    for (int i = 0; st == DSNN_OK && i < (int)n_hidden; i++)
        st = dsnn_net_add_fc_relu(net, i + 1, i + 1, (int)hidden[i], p.bias, err);
    return dsnn_net_build_end(net, st, p.bias, NULL, NULL, out, err);
}

DSNN_NETWORK_PLUGIN("mlp", "1.0.0",
                    "Multi-layer perceptron: [flatten] -> (linear -> ReLU) x N -> linear", mlp_keys,
                    .build = mlp_build)
