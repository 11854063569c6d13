/* test_layers_net.c - the layers of dsnn/layers.h together in networks: a sparse CNN in the
 * style of nupic's GSC / dynamic-sparse CNNs (sparse conv, batch norm, max pool, k-winners 2d,
 * flatten, linear, k-winners, dropout) and a small ResNet (basic blocks, global average pool)
 * learn a synthetic task with SGD, checkpoint and resume bit for bit, and epoch hooks reach every
 * k-winners layer. */
#include "layer_check.h"

#define IMG 8
#define N_TRAIN 64
#define BATCH 16

/* Class 0: a bright top half; class 1: a bright bottom half (plus noise). */
static void make_data(float *x, int32_t *y, int n, uint64_t seed)
{
    struct dsnn_rng rng;
    dsnn_rng_seed(&rng, seed, DSNN_RNG_STREAM_DATA);
    for (int i = 0; i < n; i++) {
        y[i] = (int32_t)(i % 2);
        for (int r = 0; r < IMG; r++)
            for (int c = 0; c < IMG; c++) {
                const bool bright = (r < IMG / 2) == (y[i] == 0);
                x[(size_t)i * IMG * IMG + r * IMG + c] =
                    (float)((bright ? 1.0 : 0.0) + 0.5 * (dsnn_rng_uniform(&rng) - 0.5));
            }
    }
}

static struct dsnn_net *sparse_cnn(uint64_t seed)
{
    struct dsnn_error err = {0};
    const struct dsnn_shape in = {1, IMG, IMG};
    struct dsnn_net *net = dsnn_net_new(in, 2, &err);
    struct dsnn_sparse_init si = dsnn_sparse_init_default();
    si.density = 0.5;
    struct dsnn_kwinners_cfg kc = dsnn_kwinners_cfg_default();
    kc.percent_on = 0.3;
    kc.duty_cycle_period = 100;
    struct dsnn_layer *l;
#define ADD(expr)                                                                                 \
    do {                                                                                          \
        l = (expr);                                                                               \
        if (!l)                                                                                   \
            fprintf(stderr, "%s\n", err.msg);                                                     \
        CU_ASSERT_EQUAL_FATAL(dsnn_net_add(net, l, &err), DSNN_OK);                               \
    } while (0)
    ADD(dsnn_sparse_conv2d_new("cnn1", in, 8, 3, 1, 1, true, &si, &err));
    ADD(dsnn_batchnorm2d_new("cnn1_bn", l->out, false, &err));
    ADD(dsnn_maxpool2d_new("cnn1_maxpool", l->out, 2, 2, 0, &err));
    ADD(dsnn_kwinners2d_new("cnn1_kwinner", l->out, &kc, &err));
    ADD(dsnn_flatten_new("flatten", l->out, &err));
    ADD(dsnn_linear_new("linear1", (int)dsnn_shape_size(l->out), 32, true, &err));
    ADD(dsnn_batchnorm1d_new("linear1_bn", 32, false, &err));
    ADD(dsnn_kwinners_new("linear1_kwinners", 32, &kc, &err));
    ADD(dsnn_dropout_new("dropout", l->out, 0.1, &err));
    ADD(dsnn_linear_new("output", 32, 2, true, &err));
    struct dsnn_rng rng;
    dsnn_rng_seed(&rng, seed, DSNN_RNG_STREAM_INIT);
    CU_ASSERT_EQUAL_FATAL(dsnn_net_init(net, &rng, BATCH, &err), DSNN_OK);
    return net;
}

static struct dsnn_net *small_resnet(uint64_t seed)
{
    struct dsnn_error err = {0};
    const struct dsnn_shape in = {1, IMG, IMG};
    struct dsnn_net *net = dsnn_net_new(in, 2, &err);
    struct dsnn_layer *l;
    ADD(dsnn_conv2d_new("conv1", in, 4, 3, 1, 1, false, &err));
    ADD(dsnn_batchnorm2d_new("bn1", l->out, true, &err));
    ADD(dsnn_relu_new("relu1", l->out, &err));
    ADD(dsnn_resnet_basic_block_new("layer1", l->out, 4, 1, &err));
    ADD(dsnn_resnet_basic_block_new("layer2", l->out, 8, 2, &err));
    ADD(dsnn_global_avgpool2d_new("avgpool", l->out, &err));
    ADD(dsnn_flatten_new("flatten", l->out, &err));
    ADD(dsnn_linear_new("fc", 8, 2, true, &err));
#undef ADD
    struct dsnn_rng rng;
    dsnn_rng_seed(&rng, seed, DSNN_RNG_STREAM_INIT);
    CU_ASSERT_EQUAL_FATAL(dsnn_net_init(net, &rng, BATCH, &err), DSNN_OK);
    return net;
}

/* One epoch of SGD; returns the mean loss. */
static double epoch(struct dsnn_net *net, struct dsnn_optim *opt, const float *x,
                    const int32_t *y)
{
    struct dsnn_error err = {0};
    double loss = 0.0;
    int64_t correct = 0;
    float dl[BATCH * 2];
    for (int b0 = 0; b0 < N_TRAIN; b0 += BATCH) {
        const float *logits = dsnn_net_forward(net, x + (size_t)b0 * IMG * IMG, BATCH, true, &err);
        CU_ASSERT_PTR_NOT_NULL_FATAL(logits);
        CU_ASSERT_EQUAL_FATAL(dsnn_softmax_xent(logits, y + b0, BATCH, 2, dl, &loss, &correct,
                                                &err),
                              DSNN_OK);
        CU_ASSERT_EQUAL_FATAL(dsnn_net_backward(net, dl, BATCH, &err), DSNN_OK);
        CU_ASSERT_EQUAL_FATAL(dsnn_optim_step(opt, net, &err), DSNN_OK);
    }
    dsnn_net_on_epoch_end(net);
    return loss / N_TRAIN;
}

static double accuracy(struct dsnn_net *net, const float *x, const int32_t *y)
{
    struct dsnn_error err = {0};
    double loss = 0.0;
    int64_t correct = 0;
    for (int b0 = 0; b0 < N_TRAIN; b0 += BATCH) {
        const float *logits =
            dsnn_net_forward(net, x + (size_t)b0 * IMG * IMG, BATCH, false, &err);
        CU_ASSERT_PTR_NOT_NULL_FATAL(logits);
        dsnn_softmax_xent(logits, y + b0, BATCH, 2, NULL, &loss, &correct, &err);
    }
    return (double)correct / N_TRAIN;
}

static void learn_and_resume(struct dsnn_net *(*build)(uint64_t), double lr)
{
    struct dsnn_error err = {0};
    float *x = lc_alloc((size_t)N_TRAIN * IMG * IMG);
    int32_t y[N_TRAIN];
    make_data(x, y, N_TRAIN, 1);
    struct dsnn_optim_cfg oc = {.alg = DSNN_OPTIM_SGD, .learning_rate = lr, .momentum = 0.9};
    struct dsnn_optim *opt = dsnn_optim_new(&oc, &err);
    struct dsnn_net *net = build(1);
    const double first = epoch(net, opt, x, y);
    double last = first;
    for (int e = 1; e < 8; e++)
        last = epoch(net, opt, x, y);
    CU_ASSERT(last < 0.5 * first);
    CU_ASSERT(accuracy(net, x, y) >= 0.9);
    /* checkpoint, then two more epochs on both copies: identical logits */
    FILE *f = tmpfile();
    CU_ASSERT_EQUAL_FATAL(dsnn_net_save(net, f, &err), DSNN_OK);
    rewind(f);
    struct dsnn_net *copy = build(2);
    enum dsnn_status st = dsnn_net_load(copy, f, &err);
    if (st != DSNN_OK)
        fprintf(stderr, "%s\n", err.msg);
    CU_ASSERT_EQUAL_FATAL(st, DSNN_OK);
    fclose(f);
    const double la = epoch(net, opt, x, y), lb = epoch(copy, opt, x, y);
    CU_ASSERT_EQUAL(la, lb);
    float ya[BATCH * 2];
    memcpy(ya, dsnn_net_forward(net, x, BATCH, false, &err), sizeof ya);
    CU_ASSERT_EQUAL(memcmp(ya, dsnn_net_forward(copy, x, BATCH, false, &err), sizeof ya), 0);
    dsnn_net_free(net);
    dsnn_net_free(copy);
    dsnn_optim_free(opt);
    free(x);
}

static void test_sparse_cnn(void)
{
    learn_and_resume(sparse_cnn, 0.05);
    /* the epoch hook decayed both k-winners layers */
    struct dsnn_net *net = sparse_cnn(1);
    dsnn_net_on_epoch_end(net);
    dsnn_net_on_epoch_end(net);
    CU_ASSERT_DOUBLE_EQUAL(dsnn_kwinners_boost_strength(dsnn_net_layer(net, 3)), 0.81, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(dsnn_kwinners_boost_strength(dsnn_net_layer(net, 7)), 0.81, 1e-12);
    /* trainable values: sparse conv nnz + bias, linear layers */
    CU_ASSERT_EQUAL(dsnn_net_param_count(net),
                    36u + 8u + (size_t)(8 * 4 * 4) * 32 + 32 + 32 * 2 + 2);
    dsnn_net_free(net);
}

static void test_small_resnet(void)
{
    learn_and_resume(small_resnet, 0.05);
}

static CU_TestInfo tests[] = {
    {"sparse CNN learns and resumes", test_sparse_cnn},
    {"small ResNet learns and resumes", test_small_resnet},
    CU_TEST_INFO_NULL,
};

DSNN_TEST_MAIN("layers_net", tests)
