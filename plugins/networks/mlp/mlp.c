/* mlp - network plugin: multi-layer perceptron.
 *
 *     network = { plugin = "mlp"; hidden_sizes = [1000, 1000, 1000]; bias = true; };
 *     network = { plugin = "mlp"; variant = "nupic"; hidden_sizes = [400, 400]; };
 *
 * Layers (names): [flatten], then per hidden size i (1-based) linear [fc<i>] -> ReLU [relu<i>]
 * -> batch norm 1d [bn<i>] (batch_norm = true, affine) -> dropout [dropout<i>] (dropout > 0),
 * then linear to n_classes [output]. The order of the hidden block is nupic's MLP's
 * (networks/main.py linear_block: Linear, ReLU, BatchNorm1d, Dropout), not MLPHeb's (batch norm
 * before the activation: plugin mlp-heb).
 * variant = "nupic" takes nupic's MLP defaults for the keys the configuration does not set:
 * bias = false, batch_norm = true, dropout = 0.3, weight_init = "xavier_uniform" (its
 * init_weights). "dsnn" (the default): bias, no batch norm,
 * no dropout, PyTorch's nn.Linear initialisation (kaiming uniform).
 * Linear layers are dense here; a sparse model plugin may replace them by sparse ones (they then
 * take the model's weight_init). */
#include <dsnn/dsnn.h>

#include <stdio.h>
#include <string.h>

#define MLP_MAX_HIDDEN 64

struct mlp_params {
    bool bias, batch_norm;
    double dropout;
    int variant, weight_init;
};

static const char *const mlp_variants[] = {"dsnn", "nupic", NULL};
static const char *const mlp_inits[] = {"kaiming_uniform", "kaiming_normal", "xavier_uniform",
                                        NULL};
static const enum dsnn_weight_init mlp_init_values[] = {
    DSNN_INIT_KAIMING_UNIFORM, DSNN_INIT_KAIMING_NORMAL, DSNN_INIT_XAVIER_UNIFORM};

#define MP_AT(f) DSNN_KEY_AT(struct mlp_params, f)
static const struct dsnn_key_spec mlp_keys[] = {
    DSNN_KEY_PLUGIN("mlp"),
    {.name = "variant", .type = DSNN_KEY_STRING, .def_str = "dsnn", .choices = mlp_variants,
     MP_AT(variant),
     .doc = "defaults of the keys below: \"dsnn\" (as listed) or \"nupic\" (nupic's MLP: bias = "
     "false, batch_norm = true, dropout = 0.3, weight_init = \"xavier_uniform\")"},
    {.name = "hidden_sizes", .type = DSNN_KEY_INT_ARRAY, .default_value = "[1000, 1000, 1000]",
     DSNN_KEY_RANGE(1, 100000000),
     .doc = "width of each hidden layer, input to output (empty: softmax regression)"},
    {.name = "bias", .type = DSNN_KEY_BOOL, .def = true, MP_AT(bias),
     .doc = "linear layers have a bias (variant nupic: false)"},
    {.name = "batch_norm", .type = DSNN_KEY_BOOL, .def = false, MP_AT(batch_norm),
     .doc = "batch norm 1d (affine) after each hidden ReLU (variant nupic: true)"},
    {.name = "dropout", .type = DSNN_KEY_FLOAT, .def = 0, DSNN_KEY_RANGE(0, 0.999999),
     MP_AT(dropout),
     .doc = "dropout probability at the end of each hidden block, in [0, 1) (0: none; variant "
     "nupic: 0.3)"},
    {.name = "weight_init", .type = DSNN_KEY_STRING, .def_str = "kaiming_uniform",
     .choices = mlp_inits, MP_AT(weight_init),
     .doc = "initial weights of the dense linear layers (biases keep PyTorch's uniform "
     "initialisation); variant nupic: \"xavier_uniform\""},
};
DSNN_KEY_TABLE_DEFINE(static, mlp_table, mlp_keys);

/* variant = "nupic": nupic's defaults for the keys cfg does not set. */
static void nupic_defaults(const struct dsnn_cfg *cfg, struct mlp_params *p)
{
    if (!dsnn_cfg_has(cfg, "bias"))
        p->bias = false;
    if (!dsnn_cfg_has(cfg, "batch_norm"))
        p->batch_norm = true;
    if (!dsnn_cfg_has(cfg, "dropout"))
        p->dropout = 0.3;
    if (!dsnn_cfg_has(cfg, "weight_init"))
        p->weight_init = 2; /* xavier_uniform */
}

/* Hidden block i (1-based) of n units: fc, relu, [bn], [dropout]. */
static enum dsnn_status add_block(struct dsnn_net *net, int i, int n,
                                  const struct mlp_params *p, struct dsnn_error *err)
{
    char name[32];
    enum dsnn_status st = dsnn_net_add_fc_relu(net, i, i, n, p->bias, err);
    if (st == DSNN_OK && p->batch_norm) {
        snprintf(name, sizeof name, "bn%d", i);
        st = dsnn_net_add(net, dsnn_batchnorm1d_new(name, n, true, err), err);
    }
    if (st == DSNN_OK && p->dropout > 0) {
        snprintf(name, sizeof name, "dropout%d", i);
        st = dsnn_net_add(net, dsnn_dropout_new(name, dsnn_net_last_shape(net), p->dropout, err),
                          err);
    }
    return st;
}

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
    if (p.variant == 1)
        nupic_defaults(cfg, &p);
    struct dsnn_net *net = dsnn_net_new(input, n_classes, err);
    if (!net)
        return err ? err->status : DSNN_ERR_NOMEM;
    st = dsnn_net_add(net, dsnn_flatten_new("flatten", input, err), err);
    for (int i = 0; st == DSNN_OK && i < (int)n_hidden; i++)
        st = add_block(net, i + 1, (int)hidden[i], &p, err);
    if ((st = dsnn_net_build_end(net, st, p.bias, NULL, NULL, out, err)) != DSNN_OK)
        return st;
    for (size_t i = 0; i < dsnn_net_n_layers(*out); i++) {
        struct dsnn_layer *l = dsnn_net_layer(*out, i);
        if (strcmp(l->ops->type, "linear") == 0)
            dsnn_linear_set_init(l, mlp_init_values[p.weight_init], 0);
    }
    return DSNN_OK;
}

DSNN_NETWORK_PLUGIN("mlp", "1.1.0",
                    "Multi-layer perceptron: [flatten] -> (linear -> ReLU [-> BN] [-> dropout]) x N "
                    "-> linear; variant \"nupic\": nupic's MLP",
                    mlp_keys, .build = mlp_build)
