/* mlp - network plugin: multi-layer perceptron.
 *
 *     network = { plugin = "mlp"; hidden_sizes = [1000, 1000, 1000]; bias = true; };
 *
 * Layers: flatten, then per hidden size fc<i> -> relu<i>, then "output" (linear to n_classes).
 * Linear layers are dense here; a sparse model plugin may replace them by sparse ones. */
#include <dsnn/dsnn.h>

#include <stdio.h>

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
    int64_t hidden[MLP_MAX_HIDDEN] = {1000, 1000, 1000}; /* the default of hidden_sizes */
    size_t n_hidden = 3;
    struct mlp_params p;
    enum dsnn_status st;
    *out = NULL;
    if ((st = dsnn_keys_read(&mlp_table, cfg, &p, err)))
        return st;
    const bool bias = p.bias;
    if (dsnn_cfg_has(cfg, "hidden_sizes") &&
        (st = dsnn_cfg_int_array(cfg, "hidden_sizes", hidden, MLP_MAX_HIDDEN, &n_hidden, err)))
        return st;
    struct dsnn_net *net = dsnn_net_new(input, n_classes, err);
    if (!net)
        return err ? err->status : DSNN_ERR_NOMEM;
    st = dsnn_net_add(net, dsnn_flatten_new("flatten", input, err), err);
    int n_in = (int)dsnn_shape_size(input);
    for (size_t i = 0; st == DSNN_OK && i < n_hidden; i++) {
        char name[DSNN_LAYER_NAME_MAX];
        snprintf(name, sizeof name, "fc%zu", i + 1);
        st = dsnn_net_add(net, dsnn_linear_new(name, n_in, (int)hidden[i], bias, err), err);
        if (st == DSNN_OK) {
            snprintf(name, sizeof name, "relu%zu", i + 1);
            st = dsnn_net_add(net, dsnn_relu_new(name, (struct dsnn_shape){(int)hidden[i], 1, 1},
                                                 err),
                              err);
        }
        n_in = (int)hidden[i];
    }
    if (st == DSNN_OK)
        st = dsnn_net_add(net, dsnn_linear_new("output", n_in, n_classes, bias, err), err);
    if (st != DSNN_OK) {
        dsnn_net_free(net);
        return st;
    }
    *out = net;
    return DSNN_OK;
}

static const struct dsnn_network_ops mlp_ops = {.build = mlp_build};

static const struct dsnn_component mlp_components[] = {
    DSNN_COMPONENT(DSNN_KIND_NETWORK, "mlp", "1.0.0",
                   "Multi-layer perceptron: [flatten] -> (linear -> ReLU) x N -> linear",
                   mlp_ops, mlp_keys),
};

DSNN_PLUGIN_DEFINE("mlp", mlp_components)
