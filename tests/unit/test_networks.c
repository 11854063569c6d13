/* tests/unit/test_networks.c - the network plugins mlp-heb, lenet, gsc-heb, vgg and resnet:
 * each builds the expected layer list and parameter count for known configurations, runs a
 * forward / backward pass on a batch, and refuses bad configurations with a clear message. The
 * expected parameter counts are what PyTorch's sum(p.numel() for p in net.parameters()) gives
 * for the same network (worked out by hand in the comments); the k-winners' boost strength
 * decays once per training epoch through the base model (dsnn_net_on_epoch_end). */
#include <dlfcn.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dsnn/dsnn.h"
#include "harness.h"

static FILE *g_log;

/* The component `name` of build/plugins/<file>.so (NULL if it cannot be loaded). */
static const struct dsnn_component *component(const char *file, enum dsnn_kind kind,
                                              const char *name)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/plugins/%s.so", dsnn_test_build_dir(), file);
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL); /* stays loaded: the tests use its tables */
    if (!h) {
        fprintf(stderr, "cannot load %s: %s\n", path, dlerror());
        return NULL;
    }
    void *sym = dlsym(h, DSNN_PLUGIN_ENTRY_SYMBOL);
    if (!sym)
        return NULL;
    dsnn_plugin_entry_fn entry;
    memcpy(&entry, &sym, sizeof entry);
    const struct dsnn_plugin *p = entry();
    for (size_t i = 0; p && i < p->n_components; i++)
        if (p->components[i].kind == kind && strcmp(p->components[i].name, name) == 0)
            return &p->components[i];
    return NULL;
}

struct built {
    struct dsnn_config_file *cf;
    struct dsnn_net *net;
    struct dsnn_error err;
    enum dsnn_status st;
};

/* Builds network plugin `plugin` with the keys of fmt for samples of shape in. */
static enum dsnn_status build(struct built *b, const char *plugin, struct dsnn_shape in,
                              int n_classes, const char *fmt, ...) DSNN_PRINTF(5, 6);
static enum dsnn_status build(struct built *b, const char *plugin, struct dsnn_shape in,
                              int n_classes, const char *fmt, ...)
{
    memset(b, 0, sizeof *b);
    if (!g_log)
        g_log = fopen("/dev/null", "w");
    const struct dsnn_component *c = component(plugin, DSNN_KIND_NETWORK, plugin);
    CU_ASSERT_PTR_NOT_NULL(c);
    if (!c)
        return b->st = DSNN_ERR_NOT_FOUND;
    char keys[1024], text[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(keys, sizeof keys, fmt, ap);
    va_end(ap);
    snprintf(text, sizeof text, "network = {\n  plugin = \"%s\";\n  %s\n};\n", plugin, keys);
    b->st = dsnn_config_file_parse(text, "test.cfg", &b->cf, &b->err);
    CU_ASSERT_EQUAL(b->st, DSNN_OK);
    if (b->st != DSNN_OK)
        return b->st;
    struct dsnn_run_ctx ctx = {.seed = 1, .epochs = 1, .n_threads = 1, .log = g_log};
    const struct dsnn_network_ops *ops = c->ops;
    b->st = ops->build(dsnn_cfg_group(dsnn_config_file_root(b->cf), "network"), &ctx, in,
                       n_classes, &b->net, &b->err);
    if (b->st != DSNN_OK) {
        printf("\n    [%s] %s ", dsnn_status_str(b->st), b->err.msg);
        CU_ASSERT_PTR_NULL(b->net);
    }
    return b->st;
}

static void built_free(struct built *b)
{
    dsnn_net_free(b->net);
    dsnn_config_file_free(b->cf);
    memset(b, 0, sizeof *b);
}

/* "name:type name:type ..." of the network's layers. */
static void layer_list(const struct dsnn_net *net, char *buf, size_t size)
{
    size_t len = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < dsnn_net_n_layers(net) && len < size; i++) {
        const struct dsnn_layer *l = dsnn_net_layer(net, i);
        len += (size_t)snprintf(buf + len, size - len, "%s%s:%s", i ? " " : "", l->name,
                                l->ops->type);
    }
}

static void check_layers(const struct dsnn_net *net, const char *expected)
{
    char got[4096];
    layer_list(net, got, sizeof got);
    if (strcmp(got, expected) != 0)
        printf("\n    layers:   %s\n    expected: %s\n", got, expected);
    CU_ASSERT_STRING_EQUAL(got, expected);
}

/* Initialises the network and checks its parameter count. */
static void init_count(struct dsnn_net *net, size_t expected)
{
    struct dsnn_rng rng;
    struct dsnn_error err = {0};
    dsnn_rng_seed(&rng, 42, DSNN_RNG_STREAM_INIT);
    enum dsnn_status st = dsnn_net_init(net, &rng, 4, &err);
    if (st != DSNN_OK)
        printf("\n    init: %s ", err.msg);
    CU_ASSERT_EQUAL_FATAL(st, DSNN_OK);
    size_t got = dsnn_net_param_count(net);
    if (got != expected)
        printf("\n    parameters: %zu, expected %zu ", got, expected);
    CU_ASSERT_EQUAL(got, expected);
}

/* Forward (training, then evaluation) and backward on a random batch of 3: finite logits of the
 * right count. */
static void run_batch(struct dsnn_net *net)
{
    const int batch = 3;
    const struct dsnn_shape in = dsnn_net_input_shape(net);
    const size_t n_in = (size_t)dsnn_shape_size(in) * batch;
    const int nc = dsnn_net_n_classes(net);
    float *x = malloc(sizeof(float) * n_in), *dl = malloc(sizeof(float) * (size_t)(batch * nc));
    CU_ASSERT_PTR_NOT_NULL_FATAL(x);
    CU_ASSERT_PTR_NOT_NULL_FATAL(dl);
    struct dsnn_rng rng;
    dsnn_rng_seed(&rng, 7, DSNN_RNG_STREAM_DATA);
    for (size_t i = 0; i < n_in; i++)
        x[i] = (float)dsnn_rng_normal(&rng);
    for (int pass = 0; pass < 2; pass++) {
        struct dsnn_error err = {0};
        const float *y = dsnn_net_forward(net, x, batch, pass == 0, &err);
        if (!y)
            printf("\n    forward: %s ", err.msg);
        CU_ASSERT_PTR_NOT_NULL_FATAL(y);
        bool finite = true, nonzero = false;
        for (int i = 0; i < batch * nc; i++) {
            finite = finite && isfinite(y[i]);
            nonzero = nonzero || y[i] != 0.0f;
            dl[i] = 0.01f * (float)(i % 3) - 0.01f;
        }
        CU_ASSERT(finite);
        CU_ASSERT(nonzero);
        if (pass == 0) {
            enum dsnn_status st = dsnn_net_backward(net, dl, batch, &err);
            if (st != DSNN_OK)
                printf("\n    backward: %s ", err.msg);
            CU_ASSERT_EQUAL(st, DSNN_OK);
        }
    }
    free(x);
    free(dl);
}

static struct dsnn_layer *find(struct dsnn_net *net, const char *name)
{
    for (size_t i = 0; i < dsnn_net_n_layers(net); i++)
        if (strcmp(dsnn_net_layer(net, i)->name, name) == 0)
            return dsnn_net_layer(net, i);
    return NULL;
}

static void check_error(const struct built *b, enum dsnn_status st, const char *text)
{
    CU_ASSERT_EQUAL(b->st, st);
    CU_ASSERT_PTR_NULL(b->net);
    CU_ASSERT_PTR_NOT_NULL(strstr(b->err.msg, text));
    if (!strstr(b->err.msg, text))
        printf("\n    message '%s' lacks '%s' ", b->err.msg, text);
}

static const struct dsnn_shape MNIST = {1, 28, 28}, CIFAR = {3, 32, 32}, GSC = {1, 32, 32};

/* ---- mlp-heb ---- */

static void test_mlp_heb_default(void)
{
    struct built b;
    if (build(&b, "mlp-heb", MNIST, 10, " ") != DSNN_OK)
        return;
    check_layers(b.net, "flatten:flatten fc1:linear relu1:relu fc2:linear relu2:relu "
                        "fc3:linear relu3:relu output:linear");
    /* nn.Linear(784, 100) 78,500 + 2 x nn.Linear(100, 100) 10,100 + nn.Linear(100, 10) 1,010 */
    init_count(b.net, 99710);
    run_batch(b.net);
    built_free(&b);
}

static void test_mlp_heb_kwinners(void)
{
    struct built b;
    if (build(&b, "mlp-heb", MNIST, 10,
              "hidden_sizes = [300, 100]; batch_norm = true; dropout = 0.5; kwinners = true; "
              "percent_on = [0.1, 0.2];") != DSNN_OK)
        return;
    check_layers(b.net, "flatten:flatten fc1:linear bn1:batchnorm1d kw1:kwinners "
                        "dropout1:dropout fc2:linear bn2:batchnorm1d kw2:kwinners "
                        "dropout2:dropout output:linear");
    /* Linear(784, 300) 235,500 + BatchNorm1d(300) 600 + Linear(300, 100) 30,100 +
     * BatchNorm1d(100) 200 + Linear(100, 10) 1,010 */
    init_count(b.net, 267410);
    struct dsnn_layer *kw1 = find(b.net, "kw1"), *kw2 = find(b.net, "kw2");
    CU_ASSERT_EQUAL(dsnn_kwinners_k(kw1, true), 30);
    CU_ASSERT_EQUAL(dsnn_kwinners_k(kw1, false), 30); /* k_inference_factor 1.0 */
    CU_ASSERT_EQUAL(dsnn_kwinners_k(kw2, true), 20);
    CU_ASSERT_DOUBLE_EQUAL(dsnn_kwinners_boost_strength(kw1), 1.4, 1e-12);
    run_batch(b.net);
    dsnn_net_on_epoch_end(b.net); /* boost_strength_factor 0.7 */
    CU_ASSERT_DOUBLE_EQUAL(dsnn_kwinners_boost_strength(kw1), 1.4 * 0.7, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(dsnn_kwinners_boost_strength(kw2), 1.4 * 0.7, 1e-12);
    built_free(&b);
}

static void test_mlp_heb_errors(void)
{
    struct built b;
    build(&b, "mlp-heb", MNIST, 10, "hidden_sizes = [300, 100]; percent_on = [0.1, 0.2, 0.3];");
    check_error(&b, DSNN_ERR_CONFIG, "3 values for 2 hidden layers");
    built_free(&b);
    build(&b, "mlp-heb", MNIST, 10, "kwinners = true; percent_on = 1.5;");
    check_error(&b, DSNN_ERR_INVALID, "percent_on must be in (0, 1)");
    CU_ASSERT_PTR_NOT_NULL(strstr(b.err.msg, "test.cfg:"));
    built_free(&b);
    build(&b, "mlp-heb", MNIST, 10, "dropout = 1.0;");
    check_error(&b, DSNN_ERR_CONFIG, "network.dropout");
    built_free(&b);
}

/* The base model calls dsnn_net_on_epoch_end after every training epoch: the k-winners' boost
 * strength decays once per epoch (nupic's update_boost_strength). Data: the synthetic plugin. */
/* Trains the network of b (built on 1 x 8 x 8 inputs, 4 classes) for `epochs` epochs of
 * generated data; after each, check(b, epoch) (also after an evaluation, which must not change
 * what it checks). */
static void train_synthetic(struct built *b, int epochs, void (*check)(struct built *, int))
{
    const struct dsnn_component *syn =
        component("synthetic", DSNN_KIND_DATASET, "synthetic");
    CU_ASSERT_PTR_NOT_NULL_FATAL(syn);
    struct dsnn_config_file *cf = NULL;
    struct dsnn_error err = {0};
    CU_ASSERT_EQUAL_FATAL(
        dsnn_config_file_parse("dataset = { plugin = \"synthetic\"; n_classes = 4; "
                               "shape = [1, 8, 8]; n_train = 64; n_test = 16; "
                               "batch_size_train = 16; };\n"
                               "model = { learning_rate = 0.01; };\n",
                               "test.cfg", &cf, &err),
        DSNN_OK);
    const struct dsnn_cfg *root = dsnn_config_file_root(cf);
    struct dsnn_run_ctx ctx = {.seed = 3, .epochs = epochs, .n_threads = 1, .log = g_log};
    struct dsnn_data data = {.ops = syn->ops};
    CU_ASSERT_EQUAL_FATAL(data.ops->open(dsnn_cfg_group(root, "dataset"), &ctx, &data.state,
                                         &data.info, &err),
                          DSNN_OK);
    struct dsnn_base_model *bm = dsnn_base_model_new(dsnn_cfg_group(root, "model"), &ctx, b->net, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(bm);
    CU_ASSERT_EQUAL_FATAL(dsnn_base_model_init_net(bm, &data.info, &err), DSNN_OK);
    static struct dsnn_metrics m;
    for (int epoch = 0; epoch < epochs; epoch++) {
        dsnn_metrics_clear(&m);
        CU_ASSERT_EQUAL_FATAL(dsnn_base_model_train_epoch(bm, &data, epoch, NULL, &m, &err),
                              DSNN_OK);
        check(b, epoch);
        CU_ASSERT_EQUAL_FATAL(dsnn_base_model_evaluate(bm, &data, DSNN_SPLIT_TEST, &m, &err),
                              DSNN_OK);
        check(b, epoch);
    }
    dsnn_base_model_free(bm);
    data.ops->close(data.state);
    dsnn_config_file_free(cf);
}

static void check_boost_halves(struct built *b, int epoch)
{
    CU_ASSERT_DOUBLE_EQUAL(dsnn_kwinners_boost_strength(find(b->net, "kw1")),
                           2.0 * pow(0.5, epoch + 1), 1e-12);
}

static void test_boost_decays_per_epoch(void)
{
    struct built b;
    if (build(&b, "mlp-heb", (struct dsnn_shape){1, 8, 8}, 4,
              "hidden_sizes = [32]; kwinners = true; percent_on = 0.25; boost_strength = 2.0; "
              "boost_strength_factor = 0.5;") != DSNN_OK)
        return;
    train_synthetic(&b, 2, check_boost_halves);
    CU_ASSERT_EQUAL(dsnn_kwinners_learning_iterations(find(b.net, "kw1")), 128u);
    built_free(&b);
}

/* nupic's base_model_test: percent_on_k_winner [0.2, 1.0, 0.1] (k-winners where below 0.5,
 * ReLU otherwise), boost strengths [1.4, 1.5, 1.6] with factors [0.7, 0.8, 0.9]: after one
 * epoch 1.4 * 0.7 and 1.6 * 0.9; the second activation is a ReLU. */
static void check_nupic_boosts(struct built *b, int epoch)
{
    (void)epoch;
    CU_ASSERT_DOUBLE_EQUAL(dsnn_kwinners_boost_strength(find(b->net, "kw1")), 1.4 * 0.7, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(dsnn_kwinners_boost_strength(find(b->net, "kw3")), 1.6 * 0.9, 1e-12);
}

static void test_nupic_per_layer_boost(void)
{
    struct built b;
    CU_ASSERT_EQUAL_FATAL(
        build(&b, "mlp-heb", (struct dsnn_shape){1, 8, 8}, 4,
              "hidden_sizes = [40, 30, 20]; percent_on_k_winner = [0.2, 1.0, 0.1]; "
              "boost_strength = [1.4, 1.5, 1.6]; boost_strength_factor = [0.7, 0.8, 0.9];"),
        DSNN_OK);
    CU_ASSERT_PTR_NOT_NULL(find(b.net, "kw1"));
    CU_ASSERT_PTR_NULL(find(b.net, "kw2"));
    CU_ASSERT_PTR_NOT_NULL(find(b.net, "relu2"));
    CU_ASSERT_PTR_NOT_NULL(find(b.net, "kw3"));
    train_synthetic(&b, 1, check_nupic_boosts);
    built_free(&b);
    /* one form or the other */
    CU_ASSERT_NOT_EQUAL(build(&b, "mlp-heb", (struct dsnn_shape){1, 8, 8}, 4,
                              "percent_on_k_winner = 0.2; kwinners = true;"),
                        DSNN_OK);
    built_free(&b);
    CU_ASSERT_NOT_EQUAL(build(&b, "gsc-heb", (struct dsnn_shape){1, 32, 32}, 12,
                              "percent_on_k_winner = [0.1, 0.1, 0.1]; percent_on = 0.1;"),
                        DSNN_OK);
    built_free(&b);
    CU_ASSERT_EQUAL_FATAL(build(&b, "gsc-heb", (struct dsnn_shape){1, 32, 32}, 12,
                                "percent_on_k_winner = [0.1, 0.6, 0.1];"),
                          DSNN_OK);
    CU_ASSERT_PTR_NOT_NULL(find(b.net, "kw1"));
    CU_ASSERT_PTR_NOT_NULL(find(b.net, "relu2"));
    CU_ASSERT_PTR_NOT_NULL(find(b.net, "kw3"));
    built_free(&b);
}

/* ---- lenet ---- */

static void test_lenet5_mnist(void)
{
    struct built b;
    if (build(&b, "lenet", MNIST, 10, " ") != DSNN_OK)
        return;
    check_layers(b.net, "conv1:conv2d relu1:relu pool1:maxpool2d conv2:conv2d relu2:relu "
                        "pool2:maxpool2d flatten:flatten fc1:linear relu3:relu fc2:linear "
                        "relu4:relu output:linear");
    struct dsnn_conv2d_geom g;
    CU_ASSERT_FATAL(dsnn_conv2d_geometry(find(b.net, "conv1"), &g));
    CU_ASSERT_EQUAL(g.padding, 2); /* 28x28: padded as LeNet-5 on MNIST */
    CU_ASSERT_EQUAL(g.out_h, 28);
    CU_ASSERT_EQUAL(find(b.net, "flatten")->out.c, 400);
    /* Conv2d(1, 6, 5) 156 + Conv2d(6, 16, 5) 2,416 + Linear(400, 120) 48,120 +
     * Linear(120, 84) 10,164 + Linear(84, 10) 850 */
    init_count(b.net, 61706);
    run_batch(b.net);
    built_free(&b);
}

static void test_lenet5_cifar_avg(void)
{
    struct built b;
    if (build(&b, "lenet", CIFAR, 10, "pool = \"avg\";") != DSNN_OK)
        return;
    struct dsnn_conv2d_geom g;
    CU_ASSERT_FATAL(dsnn_conv2d_geometry(find(b.net, "conv1"), &g));
    CU_ASSERT_EQUAL(g.padding, 0); /* 32x32: no padding, 16x5x5 features as well */
    CU_ASSERT_STRING_EQUAL(find(b.net, "pool1")->ops->type, "avgpool2d");
    /* Conv2d(3, 6, 5) 456 + the rest as above (2,416 + 48,120 + 10,164 + 850) */
    init_count(b.net, 62006);
    run_batch(b.net);
    built_free(&b);
}

static void test_lenet_300_100(void)
{
    struct built b;
    if (build(&b, "lenet", MNIST, 10, "variant = \"300-100\";") != DSNN_OK)
        return;
    check_layers(b.net, "flatten:flatten fc1:linear relu1:relu fc2:linear relu2:relu "
                        "output:linear");
    /* Linear(784, 300) 235,500 + Linear(300, 100) 30,100 + Linear(100, 10) 1,010 */
    init_count(b.net, 266610);
    run_batch(b.net);
    built_free(&b);
}

/* Largest |w| of dense linear layer `name` (initialised). */
static float max_abs_weight(struct dsnn_net *net, const char *name)
{
    struct dsnn_layer *l = find(net, name);
    int n_in = 0, n_out = 0;
    bool bias;
    CU_ASSERT_FATAL(l && dsnn_linear_dims(l, &n_in, &n_out, &bias));
    const float *w = dsnn_linear_weight(l);
    float m = 0;
    for (size_t i = 0; i < (size_t)n_in * (size_t)n_out; i++)
        m = fabsf(w[i]) > m ? fabsf(w[i]) : m;
    return m;
}

/* nupic's MLP (networks/main.py): Linear (no bias) -> ReLU -> BatchNorm1d -> Dropout(0.3) per
 * hidden layer, xavier uniform weights; its keys override the preset. */
static void test_mlp_nupic(void)
{
    struct built b;
    if (build(&b, "mlp", MNIST, 10, "variant = \"nupic\"; hidden_sizes = [400, 400];") != DSNN_OK)
        return;
    check_layers(b.net, "flatten:flatten fc1:linear relu1:relu bn1:batchnorm1d dropout1:dropout "
                        "fc2:linear relu2:relu bn2:batchnorm1d dropout2:dropout output:linear");
    /* 784 x 400 + 400 x 400 + 400 x 10 weights, no biases; 2 x (400 + 400) batch norm affine */
    init_count(b.net, 313600 + 160000 + 4000 + 1600);
    /* xavier uniform: |w| <= sqrt(6 / (784 + 400)) = 0.0712; kaiming uniform (PyTorch's
     * nn.Linear default) would stay below 1 / sqrt(784) = 0.0357 */
    float m = max_abs_weight(b.net, "fc1");
    CU_ASSERT(m <= 0.07119f + 1e-6f);
    CU_ASSERT(m > 0.06f);
    run_batch(b.net);
    built_free(&b);
    /* the preset is only defaults: explicit keys win */
    if (build(&b, "mlp", MNIST, 10,
              "variant = \"nupic\"; hidden_sizes = [50]; bias = true; dropout = 0.0; "
              "weight_init = \"kaiming_uniform\";") != DSNN_OK)
        return;
    check_layers(b.net, "flatten:flatten fc1:linear relu1:relu bn1:batchnorm1d output:linear");
    init_count(b.net, 784 * 50 + 50 + 50 * 10 + 10 + 100);
    CU_ASSERT(max_abs_weight(b.net, "fc1") <= 1.0f / 28.0f + 1e-6f);
    built_free(&b);
    /* the dsnn variant is unchanged: bias, no batch norm, no dropout */
    if (build(&b, "mlp", MNIST, 10, "hidden_sizes = [50];") != DSNN_OK)
        return;
    check_layers(b.net, "flatten:flatten fc1:linear relu1:relu output:linear");
    init_count(b.net, 784 * 50 + 50 + 50 * 10 + 10);
    built_free(&b);
    CU_ASSERT_NOT_EQUAL(build(&b, "mlp", MNIST, 10, "variant = \"keras\";"), DSNN_OK);
    built_free(&b);
}

static void test_lenet5_sparse_conv(void)
{
    struct built b;
    if (build(&b, "lenet", MNIST, 10, "sparse_conv = [0.0, 0.5];") != DSNN_OK)
        return;
    CU_ASSERT_STRING_EQUAL(find(b.net, "conv1")->ops->type, "conv2d");
    struct dsnn_layer *c2 = find(b.net, "conv2");
    CU_ASSERT_STRING_EQUAL(c2->ops->type, "sparse_conv2d");
    /* conv2 keeps 1,200 of its 2,400 weights (precise mask) */
    init_count(b.net, 61706 - 1200);
    CU_ASSERT_EQUAL(dsnn_sparse_conv2d_nnz(c2), 1200u);
    run_batch(b.net);
    built_free(&b);
}

static void test_lenet_errors(void)
{
    struct built b;
    build(&b, "lenet", (struct dsnn_shape){3, 8, 8}, 10, "variant = \"lenet5\";");
    check_error(&b, DSNN_ERR_CONFIG, "needs inputs of at least 16x16");
    CU_ASSERT_PTR_NOT_NULL(strstr(b.err.msg, "3x8x8"));
    built_free(&b);
    build(&b, "lenet", (struct dsnn_shape){1, 12, 12}, 10, "conv1_padding = 1;");
    check_error(&b, DSNN_ERR_CONFIG, "at least 14x14 with conv1_padding = 1");
    built_free(&b);
    /* with padding 2 a 12x12 input fits: 12 -> 12 -> 6 -> 2 -> 1 */
    CU_ASSERT_EQUAL(build(&b, "lenet", (struct dsnn_shape){1, 12, 12}, 10, "conv1_padding = 2;"),
                    DSNN_OK);
    built_free(&b);
    build(&b, "lenet", MNIST, 10, "variant = \"lenet7\";");
    check_error(&b, DSNN_ERR_CONFIG, "lenet5");
    built_free(&b);
    build(&b, "lenet", MNIST, 10, "sparse_conv = [0.1, 0.2, 0.3];");
    check_error(&b, DSNN_ERR_CONFIG, "3 values for the 2 convolutions");
    built_free(&b);
    build(&b, "lenet", MNIST, 10, "variant = \"300-100\"; sparse_conv = 0.5;");
    check_error(&b, DSNN_ERR_CONFIG, "no convolution");
    built_free(&b);
}

/* ---- gsc-heb ---- */

static void test_gsc_heb_default(void)
{
    struct built b;
    if (build(&b, "gsc-heb", GSC, 12, " ") != DSNN_OK)
        return;
    check_layers(b.net, "conv1:conv2d bn1:batchnorm2d pool1:maxpool2d kw1:kwinners2d "
                        "conv2:conv2d bn2:batchnorm2d pool2:maxpool2d kw2:kwinners2d "
                        "flatten:flatten fc1:linear bn3:batchnorm1d kw3:kwinners output:linear");
    CU_ASSERT_EQUAL(find(b.net, "flatten")->out.c, 1600); /* 64 x 5 x 5 */
    /* Conv2d(1, 64, 5) 1,664 + Conv2d(64, 64, 5) 102,464 + Linear(1600, 1000) 1,601,000 +
     * Linear(1000, 12) 12,012; BatchNorm2d / 1d(affine=False) have no parameters */
    init_count(b.net, 1717140);
    /* k = round(64 * 14 * 14 * 0.095) = round(1191.68); round(64 * 5 * 5 * 0.125);
     * round(1000 * 0.1); evaluation: round(12544 * 0.095 * 1.5) = round(1787.52) */
    CU_ASSERT_EQUAL(dsnn_kwinners_k(find(b.net, "kw1"), true), 1192);
    CU_ASSERT_EQUAL(dsnn_kwinners_k(find(b.net, "kw2"), true), 200);
    CU_ASSERT_EQUAL(dsnn_kwinners_k(find(b.net, "kw3"), true), 100);
    CU_ASSERT_EQUAL(dsnn_kwinners_k(find(b.net, "kw1"), false), 1788);
    CU_ASSERT_DOUBLE_EQUAL(dsnn_kwinners_boost_strength(find(b.net, "kw3")), 1.5, 1e-12);
    run_batch(b.net);
    dsnn_net_on_epoch_end(b.net);
    CU_ASSERT_DOUBLE_EQUAL(dsnn_kwinners_boost_strength(find(b.net, "kw1")), 1.5 * 0.9, 1e-12);
    built_free(&b);
}

static void test_gsc_heb_relu_small(void)
{
    struct built b;
    if (build(&b, "gsc-heb", GSC, 12,
              "kwinners = false; hidden_neurons_conv = [12, 12]; hidden_neurons_fc = 207; "
              "batch_norm = false; dropout = 0.5; sparse_conv = [0.0, 0.5];") != DSNN_OK)
        return;
    check_layers(b.net, "conv1:conv2d bn1:batchnorm2d pool1:maxpool2d relu1:relu "
                        "conv2:sparse_conv2d bn2:batchnorm2d pool2:maxpool2d relu2:relu "
                        "flatten:flatten fc1:linear relu3:relu dropout3:dropout output:linear");
    /* nupic's gsc_heb_small: Conv2d(1, 12, 5) 312 + Conv2d(12, 12, 5) 3,612 (sparse: half of
     * its 3,600 weights, 1,800 + 12) + Linear(300, 207) 62,307 + Linear(207, 12) 2,496 */
    init_count(b.net, 312 + 1812 + 62307 + 2496);
    run_batch(b.net);
    built_free(&b);
}

static void test_gsc_heb_errors(void)
{
    struct built b;
    build(&b, "gsc-heb", (struct dsnn_shape){1, 12, 12}, 12, " ");
    check_error(&b, DSNN_ERR_CONFIG, "at least 16x16");
    built_free(&b);
    build(&b, "gsc-heb", GSC, 12, "percent_on = [0.1, 0.2];");
    check_error(&b, DSNN_ERR_CONFIG, "2 values for 3 activations");
    built_free(&b);
    build(&b, "gsc-heb", GSC, 12, "hidden_neurons_conv = [64, 64, 64];");
    check_error(&b, DSNN_ERR_CONFIG, "2 convolutions");
    built_free(&b);
    build(&b, "gsc-heb", GSC, 12, "percent_on = 0.7;"); /* 0.7 * 1.5 >= 1 */
    check_error(&b, DSNN_ERR_INVALID, "percent_on * k_inference_factor must be in (0, 1)");
    built_free(&b);
}

/* ---- vgg ---- */

static void test_vgg_counts(void)
{
    /* CIFAR VGG with batch norm, conv biases and Linear(512, 10) (kuangliu/pytorch-cifar):
     * vgg11 9,231,114; vgg16 14,728,266; e.g. vgg11 = sum of Conv2d(i, o, 3) 9 i o + o and
     * BatchNorm2d(o) 2 o over 3-64, 64-128, 128-256, 256-256, 256-512, 512-512 x 3, + 5,130 */
    static const struct {
        const char *cfg;
        size_t params, n_layers;
    } cases[] = {{"vgg11", 9231114, 8 * 3 + 5 + 2}, {"vgg16", 14728266, 13 * 3 + 5 + 2}};
    for (size_t i = 0; i < DSNN_COUNT_OF(cases); i++) {
        struct built b;
        if (build(&b, "vgg", CIFAR, 10, "cfg = \"%s\";", cases[i].cfg) != DSNN_OK)
            return;
        CU_ASSERT_EQUAL(dsnn_net_n_layers(b.net), cases[i].n_layers);
        init_count(b.net, cases[i].params);
        built_free(&b);
    }
}

static void test_vgg_small(void)
{
    struct built b;
    if (build(&b, "vgg", CIFAR, 10, "cfg = \"vgg11\"; width = 0.125;") != DSNN_OK)
        return;
    check_layers(b.net, "conv1:conv2d bn1:batchnorm2d relu1:relu pool1:maxpool2d "
                        "conv2:conv2d bn2:batchnorm2d relu2:relu pool2:maxpool2d "
                        "conv3:conv2d bn3:batchnorm2d relu3:relu conv4:conv2d bn4:batchnorm2d "
                        "relu4:relu pool3:maxpool2d conv5:conv2d bn5:batchnorm2d relu5:relu "
                        "conv6:conv2d bn6:batchnorm2d relu6:relu pool4:maxpool2d "
                        "conv7:conv2d bn7:batchnorm2d relu7:relu conv8:conv2d bn8:batchnorm2d "
                        "relu8:relu pool5:maxpool2d flatten:flatten output:linear");
    /* channels 8 16 32 32 64 64 64 64: Conv2d 224 + 1,168 + 4,640 + 9,248 + 18,496 + 3 x 36,928
     * + BatchNorm2d 2 (8 + 16 + 32 + 32 + 64 x 4) = 688 + Linear(64, 10) 650 */
    init_count(b.net, 145898);
    run_batch(b.net);
    built_free(&b);
}

static void test_vgg_kwinners_sparse(void)
{
    struct built b;
    if (build(&b, "vgg", CIFAR, 10,
              "cfg = \"vgg11\"; width = 0.125; kwinners = true; percent_on = 0.25; "
              "sparse_conv = [0.0, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5];") != DSNN_OK)
        return;
    CU_ASSERT_STRING_EQUAL(find(b.net, "conv1")->ops->type, "conv2d");
    CU_ASSERT_STRING_EQUAL(find(b.net, "conv2")->ops->type, "sparse_conv2d");
    CU_ASSERT_STRING_EQUAL(find(b.net, "kw1")->ops->type, "kwinners2d");
    CU_ASSERT_STRING_EQUAL(find(b.net, "pool1")->ops->type, "avgpool2d");
    /* half of the conv2..conv8 weights: 145,898 - (1,152 + 4,608 + 9,216 + 18,432 + 3 x 36,864)
     * / 2 */
    init_count(b.net, 145898 - (1152 + 4608 + 9216 + 18432 + 3 * 36864) / 2);
    run_batch(b.net);
    built_free(&b);
}

static void test_vgg_errors(void)
{
    struct built b;
    build(&b, "vgg", (struct dsnn_shape){3, 16, 16}, 10, "cfg = \"vgg11\";");
    check_error(&b, DSNN_ERR_CONFIG, "vgg11 needs inputs of at least 32x32");
    built_free(&b);
    build(&b, "vgg", CIFAR, 10, "cfg = \"vgg11\"; sparse_conv = [0.5, 0.5];");
    check_error(&b, DSNN_ERR_CONFIG, "2 values for the 8 convolutions");
    built_free(&b);
    build(&b, "vgg", CIFAR, 10, "cfg = \"vgg12\";");
    check_error(&b, DSNN_ERR_CONFIG, "vgg16");
    built_free(&b);
}

/* ---- resnet ---- */

static void test_resnet18(void)
{
    struct built b;
    if (build(&b, "resnet", CIFAR, 10, " ") != DSNN_OK)
        return;
    check_layers(b.net, "conv1:conv2d bn1:batchnorm2d relu1:relu layer1_0:residual "
                        "layer1_1:residual layer2_0:residual layer2_1:residual "
                        "layer3_0:residual layer3_1:residual layer4_0:residual "
                        "layer4_1:residual avgpool:avgpool2d output:linear");
    CU_ASSERT_EQUAL(find(b.net, "layer4_1")->out.c, 512);
    CU_ASSERT_EQUAL(find(b.net, "layer4_1")->out.h, 4);
    /* torchvision BasicBlocks with the CIFAR stem (kuangliu/pytorch-cifar ResNet18): stem
     * Conv2d(3, 64, 3, bias=False) 1,728 + BN 128; each block 2 convs 9 i o + 9 o o and 2 BNs;
     * shortcuts 1x1 conv + BN in layer2_0 .. layer4_0; Linear(512, 10) 5,130: 11,173,962 */
    init_count(b.net, 11173962);
    built_free(&b);
}

static void test_resnet_small_and_34(void)
{
    struct built b;
    if (build(&b, "resnet", CIFAR, 10, "width = 0.125;") != DSNN_OK)
        return;
    /* channels 8, 16, 32, 64: the same sums (e.g. stem 216 + 16, fc 650) give 176,402 */
    init_count(b.net, 176402);
    run_batch(b.net);
    built_free(&b);
    if (build(&b, "resnet", CIFAR, 10, "variant = \"resnet34\";") != DSNN_OK)
        return;
    CU_ASSERT_EQUAL(dsnn_net_n_layers(b.net), 3u + 16u + 2u); /* blocks 3 + 4 + 6 + 3 */
    init_count(b.net, 21282122);
    built_free(&b);
}

static void test_wrn(void)
{
    struct built b;
    if (build(&b, "resnet", CIFAR, 10, "variant = \"wrn\";") != DSNN_OK)
        return;
    CU_ASSERT_EQUAL(dsnn_net_n_layers(b.net), 1u + 12u + 4u); /* 3 stages x (28 - 4) / 6 */
    struct dsnn_layer *blk = find(b.net, "layer1_0");
    CU_ASSERT_EQUAL(dsnn_residual_n_layers(blk, false), 7u); /* bn relu conv dropout bn relu conv */
    CU_ASSERT_EQUAL(dsnn_residual_n_layers(blk, true), 1u);  /* 16 -> 32 channels */
    CU_ASSERT_EQUAL(dsnn_residual_n_layers(find(b.net, "layer1_1"), true), 0u);
    CU_ASSERT_EQUAL(find(b.net, "layer3_3")->out.c, 128);
    CU_ASSERT_EQUAL(find(b.net, "layer3_3")->out.h, 8);
    /* nupic WideResNet(depth 28, widen_factor 2), conv biases: stem Conv2d(3, 16, 3) 448;
     * WideBasic(i, o): BN(i) 2 i + Conv2d(i, o, 3) 9 i o + o + BN(o) 2 o + Conv2d(o, o, 3)
     * 9 o o + o (+ 1x1 Conv2d(i, o) i o + o); final BN(128) 256 + Linear(128, 10) 1,290:
     * 1,469,642 (1,467,610 without the biases, the paper's WRN-28-2) */
    init_count(b.net, 1469642);
    run_batch(b.net);
    built_free(&b);
}

/* sparse_conv: truly sparse convolutions, inside the residual blocks too */
static void test_resnet_sparse_conv(void)
{
    struct built b;
    /* one density per convolution: the stem stays dense (0), the 19 others are sparse */
    char keys[256] = "width = 0.125; sparse_conv = [0.0";
    for (int i = 0; i < 19; i++)
        strcat(keys, ", 0.5");
    strcat(keys, "];");
    if (build(&b, "resnet", CIFAR, 10, keys) != DSNN_OK)
        return;
    CU_ASSERT_STRING_EQUAL(find(b.net, "conv1")->ops->type, "conv2d");
    struct dsnn_layer *blk = find(b.net, "layer2_0");
    struct dsnn_layer *c1 = dsnn_residual_layer(blk, false, 0);
    struct dsnn_layer *sc = dsnn_residual_layer(blk, true, 0);
    CU_ASSERT_STRING_EQUAL(c1->ops->type, "sparse_conv2d");
    CU_ASSERT_STRING_EQUAL(c1->name, "conv1");
    CU_ASSERT_STRING_EQUAL(sc->ops->type, "sparse_conv2d");
    struct dsnn_conv2d_geom g;
    CU_ASSERT_FATAL(dsnn_conv2d_geometry(sc, &g));
    CU_ASSERT_EQUAL(g.kernel, 1);
    CU_ASSERT_EQUAL(g.stride, 2);
    /* half of every block convolution's weights: 176,402 less half of them */
    const size_t conv_w = 2 * (9 * 8 * 8 * 2) + (9 * 8 * 16 + 9 * 16 * 16 + 8 * 16) +
                          (9 * 16 * 16 * 2) + (9 * 16 * 32 + 9 * 32 * 32 + 16 * 32) +
                          (9 * 32 * 32 * 2) + (9 * 32 * 64 + 9 * 64 * 64 + 32 * 64) +
                          (9 * 64 * 64 * 2);
    init_count(b.net, 176402 - conv_w / 2);
    CU_ASSERT_EQUAL(dsnn_sparse_conv2d_nnz(c1), 9u * 8 * 16 / 2);
    run_batch(b.net);
    built_free(&b);
}

static void test_resnet_errors(void)
{
    struct built b;
    build(&b, "resnet", CIFAR, 10, "width = 0.125; sparse_conv = [0.5, 0.5];");
    check_error(&b, DSNN_ERR_CONFIG, "2 values for 20 convolutions");
    built_free(&b);
    build(&b, "resnet", CIFAR, 10, "width = 0.125; sparse_conv = 1.5;");
    check_error(&b, DSNN_ERR_CONFIG, "sparse_conv");
    built_free(&b);
    CU_ASSERT_EQUAL(build(&b, "resnet", CIFAR, 10, "width = 0.125; sparse_conv = 0;"), DSNN_OK);
    built_free(&b);
    build(&b, "resnet", CIFAR, 10, "variant = \"wrn\"; depth = 27;");
    check_error(&b, DSNN_ERR_CONFIG, "6 n + 4");
    built_free(&b);
    build(&b, "resnet", CIFAR, 10, "variant = \"wrn\"; width = 2.0;");
    check_error(&b, DSNN_ERR_CONFIG, "does not apply to variant \"wrn\"");
    built_free(&b);
    build(&b, "resnet", CIFAR, 10, "depth = 28;");
    check_error(&b, DSNN_ERR_CONFIG, "does not apply to variant \"resnet18\"");
    built_free(&b);
}

/* ---- checkpoints ---- */

/* Logits of a fixed batch in evaluation mode (after one training step, so that running
 * statistics, duty cycles and boost strengths are not at their initial values). */
static float *eval_logits(struct dsnn_net *net, const float *x, int batch)
{
    struct dsnn_error err = {0};
    const float *y = dsnn_net_forward(net, x, batch, false, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(y);
    const size_t n = (size_t)batch * (size_t)dsnn_net_n_classes(net);
    float *copy = malloc(sizeof(float) * n);
    CU_ASSERT_PTR_NOT_NULL_FATAL(copy);
    memcpy(copy, y, sizeof(float) * n);
    return copy;
}

/* dsnn_net_save of a trained network, dsnn_net_load into a freshly built one (other init seed):
 * the same logits. Covers the layers' save / load inside residual blocks and sparse
 * convolutions. */
static void roundtrip(const char *plugin, struct dsnn_shape in, const char *keys)
{
    struct built a, b;
    if (build(&a, plugin, in, 10, "%s", keys) != DSNN_OK ||
        build(&b, plugin, in, 10, "%s", keys) != DSNN_OK)
        return;
    struct dsnn_rng rng;
    struct dsnn_error err = {0};
    dsnn_rng_seed(&rng, 1, DSNN_RNG_STREAM_INIT);
    CU_ASSERT_EQUAL_FATAL(dsnn_net_init(a.net, &rng, 4, &err), DSNN_OK);
    dsnn_rng_seed(&rng, 2, DSNN_RNG_STREAM_INIT);
    CU_ASSERT_EQUAL_FATAL(dsnn_net_init(b.net, &rng, 4, &err), DSNN_OK);
    run_batch(a.net); /* training forward: BN statistics, duty cycles */
    dsnn_net_on_epoch_end(a.net);
    const int batch = 2;
    const size_t n_in = (size_t)dsnn_shape_size(in) * batch;
    float *x = malloc(sizeof(float) * n_in);
    CU_ASSERT_PTR_NOT_NULL_FATAL(x);
    dsnn_rng_seed(&rng, 9, DSNN_RNG_STREAM_DATA);
    for (size_t i = 0; i < n_in; i++)
        x[i] = (float)dsnn_rng_normal(&rng);
    float *ya = eval_logits(a.net, x, batch);
    FILE *f = tmpfile();
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_EQUAL(dsnn_net_save(a.net, f, &err), DSNN_OK);
    rewind(f);
    enum dsnn_status st = dsnn_net_load(b.net, f, &err);
    if (st != DSNN_OK)
        printf("\n    load: %s ", err.msg);
    CU_ASSERT_EQUAL(st, DSNN_OK);
    fclose(f);
    float *yb = eval_logits(b.net, x, batch);
    CU_ASSERT_EQUAL(memcmp(ya, yb, sizeof(float) * (size_t)batch * 10), 0);
    free(ya);
    free(yb);
    free(x);
    built_free(&a);
    built_free(&b);
}

static void test_checkpoint_roundtrip(void)
{
    roundtrip("mlp-heb", MNIST, "kwinners = true; batch_norm = true; dropout = 0.2;");
    roundtrip("lenet", MNIST, "sparse_conv = [0.5, 0.5];");
    roundtrip("gsc-heb", GSC, "hidden_neurons_conv = [8, 8]; hidden_neurons_fc = 50;");
    roundtrip("vgg", CIFAR,
              "cfg = \"vgg11\"; width = 0.125; kwinners = true; sparse_conv = 0.5;");
    roundtrip("resnet", CIFAR, "variant = \"wrn\"; depth = 10; widen_factor = 1;");
}

/* The building helpers of dsnn/net.h (layers/net_build.c) on their own. */
static void test_net_build_helpers(void)
{
    static const struct dsnn_key_spec keys[] = {
        {.name = "percent_on", .type = DSNN_KEY_FLOAT_OR_ARRAY, .def = 0.25, .doc = "per layer"},
        {.name = "sizes", .type = DSNN_KEY_INT_ARRAY, .doc = "layer sizes"},
    };
    static const struct dsnn_key_table table = {keys, DSNN_COUNT_OF(keys)};
    static const struct dsnn_net_items items = {"the ", "layers of this test", "one per layer"};
    struct dsnn_config_file *cf = NULL;
    struct dsnn_error err = {0};
    CU_ASSERT_EQUAL_FATAL(dsnn_config_file_parse("a = { percent_on = [0.1, 0.2]; sizes = [3]; };\n"
                                                 "b = { percent_on = 0.5; };\n"
                                                 "c = { percent_on = [0.1, 0.2, 0.3]; };\n",
                                                 "helpers.cfg", &cf, &err),
                          DSNN_OK);
    const struct dsnn_cfg *root = dsnn_config_file_root(cf);
    const struct dsnn_cfg *a = dsnn_cfg_group(root, "a"), *b = dsnn_cfg_group(root, "b");
    double v[2];
    const double defs[2] = {7, 8};
    CU_ASSERT_EQUAL(dsnn_net_read_floats(a, &table, "percent_on", NULL, v, 2, &items, &err),
                    DSNN_OK);
    CU_ASSERT(v[0] == 0.1 && v[1] == 0.2);
    CU_ASSERT_EQUAL(dsnn_net_read_floats(b, &table, "percent_on", defs, v, 2, &items, &err),
                    DSNN_OK);
    CU_ASSERT(v[0] == 0.5 && v[1] == 0.5); /* one value for all; defs only when absent */
    CU_ASSERT_EQUAL(dsnn_net_read_floats(root, &table, "percent_on", NULL, v, 2, &items, &err),
                    DSNN_OK);
    CU_ASSERT(v[0] == 0.25 && v[1] == 0.25); /* absent: the spec's default */
    CU_ASSERT_EQUAL(dsnn_net_read_floats(root, &table, "percent_on", defs, v, 2, &items, &err),
                    DSNN_OK);
    CU_ASSERT(v[0] == 7 && v[1] == 8);
    CU_ASSERT_EQUAL(dsnn_net_read_floats(dsnn_cfg_group(root, "c"), &table, "percent_on", NULL,
                                         v, 2, &items, &err),
                    DSNN_ERR_CONFIG);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "key 'c.percent_on': 3 values for the 2 layers of "
                                           "this test (give one value or one per layer)"));
    int64_t sizes[4];
    const int64_t def_sizes[2] = {5, 6};
    size_t n = 0;
    CU_ASSERT_EQUAL(dsnn_net_read_sizes(a, "sizes", def_sizes, 2, sizes, 4, &n, &err), DSNN_OK);
    CU_ASSERT(n == 1 && sizes[0] == 3);
    CU_ASSERT_EQUAL(dsnn_net_read_sizes(b, "sizes", def_sizes, 2, sizes, 4, &n, &err), DSNN_OK);
    CU_ASSERT(n == 2 && sizes[0] == 5 && sizes[1] == 6);

    /* last shape, linear from it, the output layer at the end */
    const struct dsnn_shape in = {2, 3, 3};
    struct dsnn_net *net = dsnn_net_new(in, 4, &err), *out = NULL;
    CU_ASSERT_PTR_NOT_NULL_FATAL(net);
    CU_ASSERT_EQUAL(dsnn_net_last_shape(net).c, 2);
    CU_ASSERT_EQUAL(dsnn_net_last_shape(net).h, 3);
    CU_ASSERT_EQUAL(dsnn_net_add(net, dsnn_flatten_new("flatten", in, &err), &err), DSNN_OK);
    CU_ASSERT_EQUAL(dsnn_net_last_shape(net).c, 18);
    CU_ASSERT_EQUAL(dsnn_net_add_linear(net, "fc1", 5, true, &err), DSNN_OK);
    CU_ASSERT_EQUAL(dsnn_net_last_shape(net).c, 5);
    CU_ASSERT_EQUAL(dsnn_net_build_end(net, DSNN_OK, false, a, NULL, &out, &err), DSNN_OK);
    CU_ASSERT_PTR_EQUAL_FATAL(out, net);
    check_layers(out, "flatten:flatten fc1:linear output:linear");
    dsnn_net_free(out);
    /* a failed build: the net is freed, the error gets the context */
    out = NULL;
    net = dsnn_net_new(in, 4, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(net);
    enum dsnn_status st = dsnn_error_set(&err, DSNN_ERR_CONFIG, "bad layer");
    CU_ASSERT_EQUAL(dsnn_net_build_end(net, st, true, a, "variant x", &out, &err),
                    DSNN_ERR_CONFIG);
    CU_ASSERT_PTR_NULL(out);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, ": variant x: cannot build the network for 2x3x3 "
                                           "inputs: bad layer"));
    dsnn_config_file_free(cf);
}

static CU_TestInfo tests[] = {
    {"mlp-heb: defaults (nupic MLPHeb)", test_mlp_heb_default},
    {"mlp-heb: batch norm, k-winners, dropout", test_mlp_heb_kwinners},
    {"mlp-heb: refused configurations", test_mlp_heb_errors},
    {"nupic base_model_test: per-layer percent_on and boosting", test_nupic_per_layer_boost},
    {"base model decays the boost strength once per epoch", test_boost_decays_per_epoch},
    {"lenet: lenet5 on 28x28 (padding 2)", test_lenet5_mnist},
    {"lenet: lenet5 on 32x32, average pooling", test_lenet5_cifar_avg},
    {"lenet: 300-100", test_lenet_300_100},
    {"mlp: variant nupic (nupic's MLP), its keys override", test_mlp_nupic},
    {"lenet: sparse conv2", test_lenet5_sparse_conv},
    {"lenet: refused configurations and inputs", test_lenet_errors},
    {"gsc-heb: defaults (nupic GSCHeb)", test_gsc_heb_default},
    {"gsc-heb: ReLU, small, sparse conv2, dropout", test_gsc_heb_relu_small},
    {"gsc-heb: refused configurations", test_gsc_heb_errors},
    {"vgg: vgg11 / vgg16 parameter counts", test_vgg_counts},
    {"vgg: vgg11 width 0.125", test_vgg_small},
    {"vgg: k-winners, average pooling, sparse convolutions", test_vgg_kwinners_sparse},
    {"vgg: refused configurations", test_vgg_errors},
    {"resnet: resnet18", test_resnet18},
    {"resnet: resnet18 width 0.125, resnet34", test_resnet_small_and_34},
    {"resnet: wide resnet 28-2", test_wrn},
    {"resnet: truly sparse convolutions in the blocks", test_resnet_sparse_conv},
    {"resnet: refused configurations", test_resnet_errors},
    {"checkpoint round trip of every plugin", test_checkpoint_roundtrip},
    {"network building helpers (dsnn/net.h)", test_net_build_helpers},
    CU_TEST_INFO_NULL,
};

DSNN_TEST_MAIN("network plugins", tests)
