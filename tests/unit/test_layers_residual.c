/* test_layers_residual.c - the residual block: equal to the same layers composed by hand
 * (forward, backward, ReLU after the sum), finite differences with a downsampling shortcut,
 * parameter blocks exposed to the optimizer (and their state seen by the inner layers' save),
 * network checkpoints, the epoch hook, accessors, sparse inner layers (topology edits, optimizer
 * state, checkpoints) and refused constructions. */
#include "layer_check.h"

static const struct dsnn_shape IN = {4, 6, 6};

/* conv1 bn1 relu1 conv2 bn2 of a basic block, standalone */
static void make_chain(struct dsnn_layer **c, struct dsnn_shape in, int out_c, int stride)
{
    struct dsnn_error err = {0};
    c[0] = dsnn_conv2d_new("conv1", in, out_c, 3, stride, 1, false, &err);
    c[1] = dsnn_batchnorm2d_new("bn1", c[0]->out, true, &err);
    c[2] = dsnn_relu_new("relu1", c[0]->out, &err);
    c[3] = dsnn_conv2d_new("conv2", c[0]->out, out_c, 3, 1, 1, false, &err);
    c[4] = dsnn_batchnorm2d_new("bn2", c[3]->out, true, &err);
    for (int i = 0; i < 5; i++)
        CU_ASSERT_PTR_NOT_NULL_FATAL(c[i]);
}

static void test_equals_manual(void)
{
    struct dsnn_error err = {0};
    struct dsnn_layer *blk = dsnn_resnet_basic_block_new("block1", IN, 4, 1, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(blk);
    CU_ASSERT_EQUAL(dsnn_residual_n_layers(blk, false), 5u);
    CU_ASSERT_EQUAL(dsnn_residual_n_layers(blk, true), 0u);
    CU_ASSERT_STRING_EQUAL(dsnn_residual_layer(blk, false, 3)->name, "conv2");
    CU_ASSERT_PTR_NULL(dsnn_residual_layer(blk, false, 5));
    CU_ASSERT_PTR_NULL(dsnn_residual_layer(blk, true, 0));
    lc_init(blk, 77);
    struct dsnn_layer *c[5];
    make_chain(c, IN, 4, 1);
    struct dsnn_rng rng;
    dsnn_rng_seed(&rng, 77, DSNN_RNG_STREAM_INIT);
    for (int i = 0; i < 5; i++) { /* same init stream, same order: same weights */
        CU_ASSERT_EQUAL_FATAL(dsnn_layer_init(c[i], &rng, &err), DSNN_OK);
        c[i]->initialized = true;
    }
    CU_ASSERT_EQUAL(memcmp(dsnn_conv2d_weight(c[3]),
                           dsnn_conv2d_weight(dsnn_residual_layer(blk, false, 3)),
                           sizeof(float) * 4 * 36), 0);
    const int batch = 3;
    const size_t n = (size_t)batch * 144;
    float *x = lc_alloc(n), *y = lc_alloc(n), *dy = lc_alloc(n), *dx = lc_alloc(n);
    float *a[5], *g[5], *ym = lc_alloc(n), *ds = lc_alloc(n), *dxm = lc_alloc(n);
    for (int i = 0; i < 5; i++) {
        a[i] = lc_alloc(n);
        g[i] = lc_alloc(n);
    }
    dsnn_rng_seed(&rng, 5, 1);
    lc_fill(x, n, &rng, -1, 1);
    lc_fill(dy, n, &rng, -1, 1);
    for (int pass = 0; pass < 2; pass++) { /* training, then evaluation */
        const bool train = pass == 0;
        CU_ASSERT_EQUAL_FATAL(blk->ops->forward(blk, x, y, batch, train, NULL), DSNN_OK);
        CU_ASSERT_EQUAL_FATAL(blk->ops->backward(blk, x, y, dy, dx, batch, NULL), DSNN_OK);
        const float *in = x;
        for (int i = 0; i < 5; i++) {
            CU_ASSERT_EQUAL_FATAL(c[i]->ops->forward(c[i], in, a[i], batch, train, NULL), DSNN_OK);
            in = a[i];
        }
        for (size_t i = 0; i < n; i++) {
            const float s = a[4][i] + x[i];
            ym[i] = s > 0 ? s : 0;
            ds[i] = ym[i] > 0 ? dy[i] : 0;
        }
        const float *d = ds;
        for (int i = 4; i >= 0; i--) {
            CU_ASSERT_EQUAL_FATAL(c[i]->ops->backward(c[i], i ? a[i - 1] : x, a[i], d, g[i],
                                                      batch, NULL),
                                  DSNN_OK);
            d = g[i];
        }
        for (size_t i = 0; i < n; i++)
            dxm[i] = g[0][i] + ds[i];
        CU_ASSERT_EQUAL(memcmp(y, ym, sizeof(float) * n), 0);
        CU_ASSERT_EQUAL(memcmp(dx, dxm, sizeof(float) * n), 0);
        /* every parameter gradient, through the block's params array */
        size_t b = 0;
        for (int i = 0; i < 5; i++)
            for (size_t j = 0; j < c[i]->n_params; j++, b++) {
                CU_ASSERT_FATAL(b < blk->n_params);
                CU_ASSERT_EQUAL(blk->params[b].n, c[i]->params[j].n);
                CU_ASSERT_EQUAL(memcmp(blk->params[b].grad, c[i]->params[j].grad,
                                       sizeof(float) * c[i]->params[j].n), 0);
            }
        CU_ASSERT_EQUAL(b, blk->n_params);
    }
    for (int i = 0; i < 5; i++) {
        free(a[i]), free(g[i]);
        dsnn_layer_free(c[i]);
    }
    free(x), free(y), free(dy), free(dx), free(ym), free(ds), free(dxm);
    dsnn_layer_free(blk);
}

static void test_fd_downsample(void)
{
    /* smooth block (no ReLU) with a 1x1 conv + BN shortcut, stride 2, 4 -> 6 channels */
    struct dsnn_error err = {0};
    struct dsnn_layer *inner[3], *sc[2];
    inner[0] = dsnn_conv2d_new("c1", IN, 6, 3, 2, 1, true, &err);
    inner[1] = dsnn_batchnorm2d_new("b1", inner[0]->out, true, &err);
    inner[2] = dsnn_conv2d_new("c2", inner[0]->out, 6, 3, 1, 1, false, &err);
    sc[0] = dsnn_conv2d_new("sc", IN, 6, 1, 2, 0, false, &err);
    sc[1] = dsnn_batchnorm2d_new("sbn", sc[0]->out, true, &err);
    struct dsnn_layer *blk = dsnn_residual_new("res", inner, 3, sc, 2, false, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(blk);
    CU_ASSERT(blk->out.c == 6 && blk->out.h == 3 && blk->out.w == 3);
    lc_init(blk, 3);
    CU_ASSERT_EQUAL(blk->n_params, 2u + 2u + 1u + 1u + 2u);
    struct dsnn_rng rng;
    dsnn_rng_seed(&rng, 6, 1);
    for (size_t b = 0; b < blk->n_params; b++) /* non-trivial BN affine parameters */
        if (!strcmp(blk->params[b].name, "weight") && blk->params[b].n == 6)
            lc_fill(blk->params[b].value, 6, &rng, 0.5, 1.5);
    const int batch = 3;
    const size_t ni = (size_t)batch * 144, no = (size_t)batch * 54;
    float *x = lc_alloc(ni), *dy = lc_alloc(no);
    lc_fill(x, ni, &rng, -1, 1);
    lc_fill(dy, no, &rng, -1, 1);
    CU_ASSERT_EQUAL(lc_check_grads(blk, x, batch, true, dy, 30, 1e-2, 2e-2, 2e-3, NULL, NULL), 0);
    CU_ASSERT_EQUAL(lc_check_grads(blk, x, batch, false, dy, 30, 1e-2, 2e-2, 2e-3, NULL, NULL),
                    0);
    free(x), free(dy);
    dsnn_layer_free(blk);
}

/* A sparse conv named `name` in place of layer (shortcut, i) of block blk. */
static void sparsify(struct dsnn_layer *blk, bool shortcut, size_t i, double density)
{
    struct dsnn_error err = {0};
    struct dsnn_layer *old = dsnn_residual_layer(blk, shortcut, i);
    struct dsnn_conv2d_geom g;
    CU_ASSERT_FATAL(dsnn_conv2d_geometry(old, &g));
    struct dsnn_sparse_init init = dsnn_sparse_init_default();
    init.density = density;
    struct dsnn_layer *sc = dsnn_sparse_conv2d_new(old->name, old->in, g.out_c, g.kernel, g.stride,
                                                   g.padding, g.bias, &init, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(sc);
    CU_ASSERT_EQUAL_FATAL(dsnn_residual_replace(blk, shortcut, i, sc, &err), DSNN_OK);
}

static struct dsnn_net *make_net_ex(uint64_t seed, bool sparse)
{
    struct dsnn_error err = {0};
    struct dsnn_net *net = dsnn_net_new(IN, 3, &err);
    struct dsnn_kwinners_cfg kc = dsnn_kwinners_cfg_default();
    kc.boost_strength_factor = 0.5;
    struct dsnn_layer *inner[3], *sc[2];
    inner[0] = dsnn_conv2d_new("conv1", IN, 8, 3, 2, 1, false, &err);
    inner[1] = dsnn_batchnorm2d_new("bn1", inner[0]->out, true, &err);
    inner[2] = dsnn_kwinners2d_new("kw1", inner[0]->out, &kc, &err);
    sc[0] = dsnn_conv2d_new("shortcut_conv", IN, 8, 1, 2, 0, false, &err);
    sc[1] = dsnn_batchnorm2d_new("shortcut_bn", sc[0]->out, true, &err);
    CU_ASSERT_EQUAL_FATAL(dsnn_net_add(net, dsnn_residual_new("block1", inner, 3, sc, 2, true,
                                                              &err), &err),
                          DSNN_OK);
    CU_ASSERT_EQUAL_FATAL(dsnn_net_add(net, dsnn_resnet_basic_block_new("block2",
                                                                        (struct dsnn_shape){8, 3,
                                                                                            3},
                                                                        8, 1, &err),
                                       &err),
                          DSNN_OK);
    struct dsnn_shape s = {8, 3, 3};
    CU_ASSERT_EQUAL_FATAL(dsnn_net_add(net, dsnn_global_avgpool2d_new("pool", s, &err), &err),
                          DSNN_OK);
    CU_ASSERT_EQUAL_FATAL(dsnn_net_add(net, dsnn_flatten_new("flat", (struct dsnn_shape){8, 1, 1},
                                                             &err), &err),
                          DSNN_OK);
    CU_ASSERT_EQUAL_FATAL(dsnn_net_add(net, dsnn_linear_new("fc", 8, 3, true, &err), &err),
                          DSNN_OK);
    if (sparse) { /* block1: conv1 and the shortcut conv; block2: conv2 */
        sparsify(dsnn_net_layer(net, 0), false, 0, 0.4);
        sparsify(dsnn_net_layer(net, 0), true, 0, 0.5);
        sparsify(dsnn_net_layer(net, 1), false, 3, 0.3);
    }
    struct dsnn_rng rng;
    dsnn_rng_seed(&rng, seed, DSNN_RNG_STREAM_INIT);
    CU_ASSERT_EQUAL_FATAL(dsnn_net_init(net, &rng, 4, &err), DSNN_OK);
    return net;
}

static struct dsnn_net *make_net(uint64_t seed)
{
    return make_net_ex(seed, false);
}

static void train_steps(struct dsnn_net *net, struct dsnn_optim *opt, int steps)
{
    struct dsnn_error err = {0};
    struct dsnn_rng rng;
    dsnn_rng_seed(&rng, 31, 1);
    float x[4 * 144], dl[4 * 3];
    for (int s = 0; s < steps; s++) {
        lc_fill(x, 4 * 144, &rng, -1, 1);
        lc_fill(dl, 12, &rng, -1, 1);
        CU_ASSERT_PTR_NOT_NULL_FATAL(dsnn_net_forward(net, x, 4, true, &err));
        CU_ASSERT_EQUAL_FATAL(dsnn_net_backward(net, dl, 4, &err), DSNN_OK);
        CU_ASSERT_EQUAL_FATAL(dsnn_optim_step(opt, net, &err), DSNN_OK);
    }
}

/* Saves net a to a memory file and loads it into b (same construction). */
static void copy_net(struct dsnn_net *a, struct dsnn_net *b)
{
    struct dsnn_error err = {0};
    FILE *f = tmpfile();
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_EQUAL_FATAL(dsnn_net_save(a, f, &err), DSNN_OK);
    rewind(f);
    enum dsnn_status st = dsnn_net_load(b, f, &err);
    if (st != DSNN_OK)
        fprintf(stderr, "%s\n", err.msg);
    CU_ASSERT_EQUAL_FATAL(st, DSNN_OK);
    fclose(f);
}

/* The evaluation outputs of a and b on one fixed batch are bit-identical. */
static void same_outputs(struct dsnn_net *a, struct dsnn_net *b)
{
    struct dsnn_error err = {0};
    float x[4 * 144];
    struct dsnn_rng rng;
    dsnn_rng_seed(&rng, 8, 1);
    lc_fill(x, 4 * 144, &rng, -1, 1);
    const float *la = dsnn_net_forward(a, x, 4, false, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(la);
    float ya[12];
    memcpy(ya, la, sizeof ya);
    const float *lb = dsnn_net_forward(b, x, 4, false, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(lb);
    CU_ASSERT_EQUAL(memcmp(ya, lb, sizeof ya), 0);
}

static void test_optimizer_sees_params(void)
{
    struct dsnn_error err = {0};
    struct dsnn_net *net = make_net(1);
    struct dsnn_layer *blk = dsnn_net_layer(net, 0);
    struct dsnn_layer *conv1 = dsnn_residual_layer(blk, false, 0);
    struct dsnn_layer *scbn = dsnn_residual_layer(blk, true, 1);
    /* the block's params are the inner layers' blocks, in order */
    CU_ASSERT_EQUAL(blk->n_params, 1u + 2u + 1u + 2u);
    CU_ASSERT_PTR_EQUAL(blk->params[0].value, dsnn_conv2d_weight(conv1));
    CU_ASSERT_PTR_EQUAL(conv1->params, &blk->params[0]);
    CU_ASSERT_PTR_EQUAL(scbn->params, &blk->params[4]);
    CU_ASSERT_EQUAL(dsnn_net_param_count(net),
                    8 * 4 * 9 + 16 + 8 * 4 + 16 + (8 * 8 * 9 * 2 + 32) + 8 * 3 + 3);
    struct dsnn_optim_cfg oc = {.alg = DSNN_OPTIM_SGD, .learning_rate = 0.1, .momentum = 0.9};
    struct dsnn_optim *opt = dsnn_optim_new(&oc, &err);
    const size_t nw = 8 * 4 * 9;
    float *w0 = lc_alloc(nw);
    memcpy(w0, dsnn_conv2d_weight(conv1), sizeof(float) * nw);
    train_steps(net, opt, 1);
    /* first SGD step: w = w0 - lr g, and the momentum slot lives in the shared block */
    const float *w = dsnn_conv2d_weight(conv1), *g = blk->params[0].grad;
    int bad = 0, moved = 0;
    for (size_t i = 0; i < nw; i++) {
        bad += w[i] != w0[i] - 0.1f * g[i];
        moved += w[i] != w0[i];
    }
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT(moved > 0);
    CU_ASSERT_PTR_NOT_NULL(conv1->params[0].state[0]);
    CU_ASSERT_PTR_EQUAL(conv1->params[0].state[0], blk->params[0].state[0]);
    /* the epoch hook reaches the k-winners inside the block */
    struct dsnn_layer *kw = dsnn_residual_layer(blk, false, 2);
    CU_ASSERT_DOUBLE_EQUAL(dsnn_kwinners_boost_strength(kw), 1.0, 1e-15);
    dsnn_net_on_epoch_end(net);
    CU_ASSERT_DOUBLE_EQUAL(dsnn_kwinners_boost_strength(kw), 0.5, 1e-15);
    CU_ASSERT_EQUAL(dsnn_kwinners_learning_iterations(kw), 4u);
    free(w0);
    dsnn_optim_free(opt);
    dsnn_net_free(net); /* frees the state slots once (ASan) */
}

static void test_checkpoint(void)
{
    struct dsnn_error err = {0};
    struct dsnn_optim_cfg oc = {.alg = DSNN_OPTIM_SGD, .learning_rate = 0.05, .momentum = 0.9};
    struct dsnn_optim *opt = dsnn_optim_new(&oc, &err);
    struct dsnn_net *a = make_net(1), *b = make_net(2);
    train_steps(a, opt, 3);
    dsnn_net_on_epoch_end(a);
    copy_net(a, b);
    /* parameters, optimizer state, running statistics and duty cycles all match */
    struct dsnn_layer *ba = dsnn_net_layer(a, 0), *bb = dsnn_net_layer(b, 0);
    for (size_t i = 0; i < ba->n_params; i++) {
        CU_ASSERT_EQUAL(memcmp(ba->params[i].value, bb->params[i].value,
                               sizeof(float) * ba->params[i].n), 0);
        CU_ASSERT_PTR_NOT_NULL_FATAL(bb->params[i].state[0]);
        CU_ASSERT_EQUAL(memcmp(ba->params[i].state[0], bb->params[i].state[0],
                               sizeof(float) * ba->params[i].n), 0);
    }
    CU_ASSERT_EQUAL(memcmp(dsnn_batchnorm_running_var(dsnn_residual_layer(ba, true, 1)),
                           dsnn_batchnorm_running_var(dsnn_residual_layer(bb, true, 1)),
                           8 * sizeof(float)), 0);
    CU_ASSERT_DOUBLE_EQUAL(dsnn_kwinners_boost_strength(dsnn_residual_layer(bb, false, 2)), 0.5,
                           1e-15);
    /* and training continues identically */
    train_steps(a, opt, 2);
    train_steps(b, opt, 2);
    same_outputs(a, b);
    dsnn_optim_free(opt);
    dsnn_net_free(a);
    dsnn_net_free(b);
}

struct conn_rec {
    int n_in;
    float w[8 * 8 * 9], m[8 * 8 * 9];
    bool on[8 * 8 * 9];
};

static void rec_visit(void *user, int row, int col, size_t k, float value)
{
    (void)k;
    struct conn_rec *r = user;
    r->on[row * r->n_in + col] = true;
    r->w[row * r->n_in + col] = value;
}

/* Sparse convolutions inside residual blocks: their blocks are the block's (so the optimizer
 * and checkpoints see them), topology edits move weights and optimizer state together, and a
 * checkpoint after edits resumes identically. */
static void test_sparse_inner(void)
{
    struct dsnn_error err = {0};
    struct dsnn_optim_cfg oc = {.alg = DSNN_OPTIM_SGD, .learning_rate = 0.05, .momentum = 0.9};
    struct dsnn_optim *opt = dsnn_optim_new(&oc, &err);
    struct dsnn_net *a = make_net_ex(1, true), *b = make_net_ex(2, true);
    struct dsnn_layer *blk2 = dsnn_net_layer(a, 1);
    struct dsnn_layer *conv2 = dsnn_residual_layer(blk2, false, 3);
    CU_ASSERT_FATAL(dsnn_sparse_conv2d_is(conv2));
    struct dsnn_layer *w = dsnn_sparse_conv2d_weights(conv2);
    const size_t nnz = dsnn_sparse_conv2d_nnz(conv2);
    CU_ASSERT_EQUAL(nnz, (size_t)llround(0.3 * 8 * 8 * 9));
    /* conv2 is blocks [3] (bn1 2, relu, conv1 1 before it: conv1 bn1(2) conv2) of block2 */
    CU_ASSERT_PTR_EQUAL(conv2->params, &blk2->params[3]);
    CU_ASSERT_PTR_EQUAL(dsnn_sparse_weight(w), &blk2->params[3]);
    CU_ASSERT_EQUAL(blk2->params[3].n, nnz);
    train_steps(a, opt, 3);
    CU_ASSERT_PTR_NOT_NULL_FATAL(blk2->params[3].state[0]);
    /* prune the 10 smallest, grow 10 at random: survivors keep weight and momentum */
    static struct conn_rec before, after;
    memset(&before, 0, sizeof before);
    memset(&after, 0, sizeof after);
    before.n_in = after.n_in = 8 * 9;
    dsnn_sparse_foreach(w, rec_visit, &before);
    struct dsnn_sparse_csr c;
    CU_ASSERT_FATAL(dsnn_sparse_get_csr(w, &c));
    for (int o = 0; o < c.n_out; o++)
        for (int64_t k = c.row_ptr[o]; k < c.row_ptr[o + 1]; k++)
            before.m[o * before.n_in + c.col[k]] = blk2->params[3].state[0][k];
    CU_ASSERT_EQUAL_FATAL(dsnn_sparse_prune_magnitude(w, 10, &err), DSNN_OK);
    struct dsnn_rng rng;
    dsnn_rng_seed(&rng, 4, DSNN_RNG_STREAM_TOPOLOGY);
    CU_ASSERT_EQUAL_FATAL(dsnn_sparse_grow_random(w, 10, &rng, &err), DSNN_OK);
    CU_ASSERT_EQUAL(dsnn_sparse_conv2d_nnz(conv2), nnz);
    CU_ASSERT_EQUAL(blk2->params[3].n, nnz);
    CU_ASSERT_FATAL(dsnn_sparse_get_csr(w, &c));
    CU_ASSERT_PTR_EQUAL(c.value, blk2->params[3].value);
    dsnn_sparse_foreach(w, rec_visit, &after);
    int kept = 0, bad = 0;
    for (int o = 0; o < c.n_out; o++)
        for (int64_t k = c.row_ptr[o]; k < c.row_ptr[o + 1]; k++) {
            const int key = o * after.n_in + c.col[k];
            const float m = blk2->params[3].state[0][k];
            if (before.on[key]) {
                kept++;
                bad += after.w[key] != before.w[key] || m != before.m[key];
            } else {
                bad += m != 0.0f;
            }
        }
    CU_ASSERT_EQUAL(kept, (int)nnz - 10);
    CU_ASSERT_EQUAL(bad, 0);
    /* training goes on through the edited blocks; a checkpoint resumes it exactly */
    train_steps(a, opt, 2);
    copy_net(a, b);
    struct dsnn_layer *bb2 = dsnn_net_layer(b, 1);
    CU_ASSERT_EQUAL(bb2->params[3].n, nnz);
    CU_ASSERT_PTR_EQUAL(dsnn_residual_layer(bb2, false, 3)->params, &bb2->params[3]);
    train_steps(a, opt, 2);
    train_steps(b, opt, 2);
    same_outputs(a, b);
    /* replacing needs an uninitialised block, equal shapes and a free name */
    struct dsnn_layer *blk = dsnn_resnet_basic_block_new("blk", IN, 4, 1, &err);
    struct dsnn_layer *bad_shape = dsnn_conv2d_new("x", IN, 8, 3, 1, 1, false, &err);
    CU_ASSERT_EQUAL(dsnn_residual_replace(blk, false, 0, bad_shape, &err), DSNN_ERR_INVALID);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "shapes"));
    struct dsnn_layer *dup = dsnn_conv2d_new("bn1", IN, 4, 3, 1, 1, false, &err);
    CU_ASSERT_EQUAL(dsnn_residual_replace(blk, false, 0, dup, &err), DSNN_ERR_INVALID);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "name"));
    struct dsnn_layer *none = dsnn_conv2d_new("c", IN, 4, 3, 1, 1, false, &err);
    CU_ASSERT_EQUAL(dsnn_residual_replace(blk, true, 0, none, &err), DSNN_ERR_INVALID);
    lc_init(blk, 3);
    struct dsnn_layer *late = dsnn_conv2d_new("c", IN, 4, 3, 1, 1, false, &err);
    CU_ASSERT_EQUAL(dsnn_residual_replace(blk, false, 0, late, &err), DSNN_ERR_INVALID);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "initialised"));
    dsnn_layer_free(blk);
    dsnn_optim_free(opt);
    dsnn_net_free(a);
    dsnn_net_free(b);
}

static void test_refused(void)
{
    struct dsnn_error err = {0};
    struct dsnn_layer *inner[2];
    /* identity shortcut with a channel change */
    inner[0] = dsnn_conv2d_new("c1", IN, 8, 3, 1, 1, false, &err);
    CU_ASSERT_PTR_NULL(dsnn_residual_new("r", inner, 1, NULL, 0, true, &err));
    CU_ASSERT_EQUAL(err.status, DSNN_ERR_INVALID);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "identity shortcut"));
    /* chained shapes */
    inner[0] = dsnn_conv2d_new("c1", IN, 8, 3, 1, 1, false, &err);
    inner[1] = dsnn_batchnorm2d_new("b1", IN, true, &err);
    CU_ASSERT_PTR_NULL(dsnn_residual_new("r", inner, 2, NULL, 0, true, &err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "expects input"));
    /* duplicate names */
    inner[0] = dsnn_conv2d_new("same", IN, 4, 3, 1, 1, false, &err);
    inner[1] = dsnn_batchnorm2d_new("same", IN, true, &err);
    CU_ASSERT_PTR_NULL(dsnn_residual_new("r", inner, 2, NULL, 0, true, &err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "named"));
    /* nested blocks */
    inner[0] = dsnn_resnet_basic_block_new("b", IN, 4, 1, &err);
    CU_ASSERT_PTR_NULL(dsnn_residual_new("r", inner, 1, NULL, 0, true, &err));
    /* nothing */
    CU_ASSERT_PTR_NULL(dsnn_residual_new("r", NULL, 0, NULL, 0, true, &err));
    /* basic block with a bad geometry */
    CU_ASSERT_PTR_NULL(dsnn_resnet_basic_block_new("b", IN, 0, 1, &err));
    /* basic block shapes */
    struct dsnn_layer *blk = dsnn_resnet_basic_block_new("b", IN, 8, 2, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(blk);
    CU_ASSERT(blk->out.c == 8 && blk->out.h == 3 && blk->out.w == 3);
    CU_ASSERT_EQUAL(dsnn_residual_n_layers(blk, true), 2u);
    CU_ASSERT(dsnn_layer_is(blk, "residual"));
    dsnn_layer_free(blk);
}

static CU_TestInfo tests[] = {
    {"basic block equals the layers composed by hand", test_equals_manual},
    {"downsampling block vs finite differences", test_fd_downsample},
    {"optimizer and epoch hook see the inner layers", test_optimizer_sees_params},
    {"network checkpoint through the block", test_checkpoint},
    {"sparse convolutions inside blocks: edits, optimizer state, checkpoint", test_sparse_inner},
    {"refused constructions and shapes", test_refused},
    CU_TEST_INFO_NULL,
};

DSNN_TEST_MAIN("layers_residual", tests)
