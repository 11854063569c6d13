/* mlp - network plugin: multi-layer perceptron.
 *
 *     network = { plugin = "mlp"; hidden_sizes = [1000, 1000, 1000]; bias = true; };
 *
 * Layers: flatten, then per hidden size fc<i> -> relu<i>, then "output" (linear to n_classes).
 * Linear layers are dense here; a sparse model plugin may replace them by sparse ones. */
#include <dsnn/dsnn.h>

#include <stdio.h>

#define MLP_MAX_HIDDEN 64

static const struct dsnn_key_spec mlp_keys[] = {
    {.name = "plugin", .type = DSNN_KEY_STRING, .def_str = "mlp", .doc = "this plugin"},
    {.name = "hidden_sizes", .type = DSNN_KEY_INT_ARRAY, .default_value = "[1000, 1000, 1000]",
     .doc = "width of each hidden layer, input to output (empty: softmax regression)"},
    {.name = "bias", .type = DSNN_KEY_BOOL, .def = true, .doc = "linear layers have a bias"},
};

static enum dsnn_status mlp_build(const struct dsnn_cfg *cfg, const struct dsnn_run_ctx *ctx,
                                  struct dsnn_shape input, int n_classes, struct dsnn_net **out,
                                  struct dsnn_error *err)
{
    (void)ctx;
    int64_t hidden[MLP_MAX_HIDDEN];
    size_t n_hidden = 0;
    bool bias = true;
    enum dsnn_status st;
    *out = NULL;
    if ((st = dsnn_cfg_bool(cfg, "bias", true, &bias, err)))
        return st;
    if (dsnn_cfg_has(cfg, "hidden_sizes")) {
        if ((st = dsnn_cfg_int_array(cfg, "hidden_sizes", hidden, MLP_MAX_HIDDEN, &n_hidden, err)))
            return st;
    } else {
        hidden[0] = hidden[1] = hidden[2] = 1000;
        n_hidden = 3;
    }
    for (size_t i = 0; i < n_hidden; i++) {
        if (hidden[i] < 1 || hidden[i] > 100000000) {
            char where[300];
            return dsnn_error_set(err, DSNN_ERR_CONFIG,
                                  "%s: key '%s.hidden_sizes': element %zu is %lld, must be in "
                                  "[1, 100000000]",
                                  dsnn_cfg_where(cfg, "hidden_sizes", where, sizeof where),
                                  dsnn_cfg_path(cfg), i, (long long)hidden[i]);
        }
    }
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
