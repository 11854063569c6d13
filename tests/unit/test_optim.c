/* tests/unit/test_optim.c - optimizers and learning-rate schedules (sdk/src/train/optim.c).
 *
 * SGD (plain, momentum, Nesterov, weight decay) and Adam are checked for several steps against
 * references written here in double from PyTorch's torch.optim.SGD / torch.optim.Adam update
 * rules (dampening 0, L2 weight decay added to the gradient, Adam's bias corrections with
 * eps added after dividing by sqrt(1 - beta2^t)). StepLR / MultiStepLR give PyTorch's values
 * per epoch. Configuration errors name FILE:LINE, the full key and the choices. */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dsnn/config.h"
#include "dsnn/layer.h"
#include "dsnn/net.h"
#include "dsnn/optim.h"
#include "dsnn/rng.h"
#include "dsnn/train.h"
#include "harness.h"

#define ASSERT_HAS(msg, sub)                                                                       \
    do {                                                                                           \
        const char *m_ = (msg), *s_ = (sub);                                                       \
        bool ok_ = m_ && strstr(m_, s_) != NULL;                                                   \
        if (!ok_)                                                                                  \
            fprintf(stderr, "\n    %s:%d: \"%s\" does not contain \"%s\"\n", __FILE__, __LINE__,   \
                    m_ ? m_ : "(null)", s_);                                                       \
        CU_ASSERT(ok_);                                                                            \
    } while (0)

/* |got - want| <= atol + rtol |want| for all n. */
static bool close_all(const float *got, const double *want, size_t n, double atol, double rtol)
{
    for (size_t i = 0; i < n; i++) {
        if (!(fabs((double)got[i] - want[i]) <= atol + rtol * fabs(want[i]))) {
            fprintf(stderr, "\n    [%zu] got %.9g want %.9g\n", i, (double)got[i], want[i]);
            return false;
        }
    }
    return true;
}

/* ---- SGD on one block ---- */

enum { N = 6, STEPS = 5 };

struct sgd_case {
    double lr, momentum, wd;
    bool nesterov, no_wd;
};

/* PyTorch SGD: d = g + wd w; buf = d (first step) or mu buf + d; d = d + mu buf (Nesterov) or buf;
 * w -= lr d. */
static void check_sgd(const struct sgd_case *c)
{
    struct dsnn_optim_cfg oc = {.alg = DSNN_OPTIM_SGD,
                                .learning_rate = c->lr,
                                .momentum = c->momentum,
                                .nesterov = c->nesterov,
                                .weight_decay = c->wd};
    struct dsnn_error err = {0};
    struct dsnn_optim *o = dsnn_optim_new(&oc, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    CU_ASSERT_EQUAL(dsnn_optim_lr(o), c->lr);
    struct dsnn_param_block b;
    CU_ASSERT_EQUAL_FATAL(dsnn_param_block_alloc(&b, "weight", N), DSNN_OK);
    b.no_weight_decay = c->no_wd;
    struct dsnn_rng r;
    dsnn_rng_seed(&r, 10, 20);
    double w[N], buf[N] = {0};
    for (int i = 0; i < N; i++)
        w[i] = b.value[i] = (float)(2 * dsnn_rng_uniform(&r) - 1);
    const double wd = c->no_wd ? 0 : c->wd;
    bool ok = true;
    for (int t = 0; t < STEPS; t++) {
        for (int i = 0; i < N; i++)
            b.grad[i] = (float)(2 * dsnn_rng_uniform(&r) - 1);
        CU_ASSERT_EQUAL(dsnn_optim_step_block(o, &b, &err), DSNN_OK);
        for (int i = 0; i < N; i++) {
            double d = b.grad[i] + wd * w[i];
            if (c->momentum != 0) {
                buf[i] = t == 0 ? d : c->momentum * buf[i] + d;
                d = c->nesterov ? d + c->momentum * buf[i] : buf[i];
            }
            w[i] -= c->lr * d;
        }
        ok &= close_all(b.value, w, N, 1e-6, 1e-5);
        /* The momentum buffer is state slot 0 (what a checkpoint saves). */
        if (c->momentum != 0) {
            CU_ASSERT_PTR_NOT_NULL_FATAL(b.state[0]);
            ok &= close_all(b.state[0], buf, N, 1e-6, 1e-5);
        }
    }
    CU_ASSERT_TRUE(ok);
    if (c->momentum == 0) /* plain SGD keeps no state */
        CU_ASSERT_PTR_NULL(b.state[0]);
    CU_ASSERT_PTR_NULL(b.state[1]);
    dsnn_param_block_release(&b);
    dsnn_optim_free(o);
}

static void test_sgd(void)
{
    static const struct sgd_case cases[] = {
        {0.1, 0, 0, false, false},      /* plain */
        {0.05, 0, 0.01, false, false},  /* weight decay */
        {0.05, 0, 0.01, false, true},   /* weight decay, block exempt */
        {0.1, 0.9, 0, false, false},    /* momentum */
        {0.1, 0.9, 0, true, false},     /* Nesterov */
        {0.02, 0.5, 0.1, false, false}, /* momentum + weight decay */
        {0.02, 0.5, 0.1, true, false},  /* Nesterov + weight decay */
        {0.02, 0.99, 1e-4, true, true}, /* Nesterov, exempt block */
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++)
        check_sgd(&cases[k]);
}

static void test_sgd_hand_values(void)
{
    /* Two steps worked by hand: w = 1, g = 0.5 then 0.25, lr 0.1, momentum 0.9, wd 0.1.
     * step 1: d = 0.5 + 0.1 = 0.6; buf = 0.6; w = 1 - 0.06 = 0.94
     * step 2: d = 0.25 + 0.094 = 0.344; buf = 0.54 + 0.344 = 0.884; w = 0.94 - 0.0884 = 0.8516
     * Nesterov: step 1: w = 1 - 0.1 (0.6 + 0.54) = 0.886
     *           step 2: d = 0.25 + 0.0886 = 0.3386; buf = 0.54 + 0.3386 = 0.8786;
     *                   w = 0.886 - 0.1 (0.3386 + 0.79074) = 0.773066 */
    for (int nesterov = 0; nesterov < 2; nesterov++) {
        struct dsnn_optim_cfg oc = {.alg = DSNN_OPTIM_SGD,
                                    .learning_rate = 0.1,
                                    .momentum = 0.9,
                                    .nesterov = nesterov,
                                    .weight_decay = 0.1};
        struct dsnn_error err = {0};
        struct dsnn_optim *o = dsnn_optim_new(&oc, &err);
        struct dsnn_param_block b;
        CU_ASSERT_EQUAL_FATAL(dsnn_param_block_alloc(&b, "w", 1), DSNN_OK);
        b.value[0] = 1.0f;
        b.grad[0] = 0.5f;
        dsnn_optim_step_block(o, &b, &err);
        CU_ASSERT_DOUBLE_EQUAL(b.value[0], nesterov ? 0.886 : 0.94, 1e-6);
        b.grad[0] = 0.25f;
        dsnn_optim_step_block(o, &b, &err);
        CU_ASSERT_DOUBLE_EQUAL(b.value[0], nesterov ? 0.773066 : 0.8516, 1e-6);
        CU_ASSERT_DOUBLE_EQUAL(b.state[0][0], nesterov ? 0.8786 : 0.884, 1e-6);
        dsnn_param_block_release(&b);
        dsnn_optim_free(o);
    }
}

/* ---- Adam through a network ---- */

static struct dsnn_net *one_layer_net(uint64_t seed)
{
    struct dsnn_error err = {0};
    struct dsnn_net *net = dsnn_net_new((struct dsnn_shape){3, 1, 1}, 2, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(net);
    CU_ASSERT_EQUAL_FATAL(dsnn_net_add(net, dsnn_linear_new("fc", 3, 2, true, &err), &err),
                          DSNN_OK);
    struct dsnn_rng r;
    dsnn_rng_seed(&r, seed, DSNN_RNG_STREAM_INIT);
    CU_ASSERT_EQUAL_FATAL(dsnn_net_init(net, &r, 1, &err), DSNN_OK);
    return net;
}

/* Fills the gradients of every block from r. */
static void random_grads(struct dsnn_net *net, struct dsnn_rng *r)
{
    struct dsnn_layer *l = dsnn_net_layer(net, 0);
    for (size_t k = 0; k < l->n_params; k++)
        for (size_t i = 0; i < l->params[k].n; i++)
            l->params[k].grad[i] = (float)(2 * dsnn_rng_uniform(r) - 1) * (k ? 3.0f : 0.01f);
}

static void check_adam(double lr, double b1, double b2, double eps, double wd)
{
    struct dsnn_optim_cfg oc = {.alg = DSNN_OPTIM_ADAM,
                                .learning_rate = lr,
                                .beta1 = b1,
                                .beta2 = b2,
                                .eps = eps,
                                .weight_decay = wd};
    struct dsnn_error err = {0};
    struct dsnn_optim *o = dsnn_optim_new(&oc, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    struct dsnn_net *net = one_layer_net(3);
    struct dsnn_layer *l = dsnn_net_layer(net, 0);
    struct dsnn_param_block *blocks = l->params;
    /* bias exempt from weight decay: it must not see wd. */
    blocks[1].no_weight_decay = true;
    double w[2][6], m[2][6] = {{0}}, v[2][6] = {{0}};
    for (int k = 0; k < 2; k++)
        for (size_t i = 0; i < blocks[k].n; i++)
            w[k][i] = blocks[k].value[i];
    struct dsnn_rng r;
    dsnn_rng_seed(&r, 4, 4);
    bool ok = true;
    for (int t = 1; t <= STEPS; t++) {
        random_grads(net, &r);
        if (t == 4) /* a schedule changing the learning rate between steps */
            dsnn_optim_set_lr(o, lr / 2);
        double lr_t = t >= 4 ? lr / 2 : lr;
        CU_ASSERT_EQUAL(dsnn_optim_step(o, net, &err), DSNN_OK);
        for (int k = 0; k < 2; k++) {
            double wdk = k == 1 ? 0 : wd;
            for (size_t i = 0; i < blocks[k].n; i++) {
                double g = blocks[k].grad[i] + wdk * w[k][i];
                m[k][i] = b1 * m[k][i] + (1 - b1) * g;
                v[k][i] = b2 * v[k][i] + (1 - b2) * g * g;
                double bc1 = 1 - pow(b1, t), bc2 = 1 - pow(b2, t);
                double denom = sqrt(v[k][i]) / sqrt(bc2) + eps;
                w[k][i] -= lr_t / bc1 * m[k][i] / denom;
            }
            ok &= close_all(blocks[k].value, w[k], blocks[k].n, 1e-6, 1e-5);
            CU_ASSERT_PTR_NOT_NULL_FATAL(blocks[k].state[0]);
            CU_ASSERT_PTR_NOT_NULL_FATAL(blocks[k].state[1]);
            ok &= close_all(blocks[k].state[0], m[k], blocks[k].n, 1e-7, 1e-5);
            ok &= close_all(blocks[k].state[1], v[k], blocks[k].n, 1e-9, 1e-5);
        }
    }
    CU_ASSERT_TRUE(ok);
    dsnn_net_free(net);
    dsnn_optim_free(o);
}

static void test_adam(void)
{
    check_adam(1e-3, 0.9, 0.999, 1e-8, 0);
    check_adam(0.01, 0.8, 0.99, 1e-3, 0); /* eps large enough to matter */
    check_adam(0.01, 0.9, 0.999, 1e-8, 0.1);
    check_adam(0.05, 0, 0.5, 1e-8, 0); /* beta1 = 0: RMSprop-like */
}

static void test_adam_first_step(void)
{
    /* The first Adam step moves every weight by lr * sign(g) (when |g| >> eps). */
    struct dsnn_optim_cfg oc = {
        .alg = DSNN_OPTIM_ADAM, .learning_rate = 0.01, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8};
    struct dsnn_error err = {0};
    struct dsnn_optim *o = dsnn_optim_new(&oc, &err);
    struct dsnn_net *net = one_layer_net(5);
    struct dsnn_param_block *b = &dsnn_net_layer(net, 0)->params[0];
    float before[6];
    memcpy(before, b->value, sizeof before);
    for (size_t i = 0; i < b->n; i++)
        b->grad[i] = i % 2 ? 0.3f : -7.0f;
    memset(dsnn_net_layer(net, 0)->params[1].grad, 0, 2 * sizeof(float));
    CU_ASSERT_EQUAL(dsnn_optim_step(o, net, &err), DSNN_OK);
    bool ok = true;
    for (size_t i = 0; i < b->n; i++)
        ok &= fabs((b->value[i] - before[i]) - (i % 2 ? -0.01 : 0.01)) < 1e-6;
    CU_ASSERT_TRUE(ok);
    dsnn_net_free(net);
    dsnn_optim_free(o);
}

static void test_optim_checkpoint(void)
{
    /* Steps 1-2, checkpoint (optimizer + net), steps 3-5 from the checkpoint == 5 steps straight.
     */
    struct dsnn_optim_cfg oc = {.alg = DSNN_OPTIM_ADAM,
                                .learning_rate = 0.01,
                                .beta1 = 0.9,
                                .beta2 = 0.999,
                                .eps = 1e-8,
                                .weight_decay = 0.01};
    for (int alg = 0; alg < 2; alg++) {
        if (alg == 1)
            oc = (struct dsnn_optim_cfg){
                .alg = DSNN_OPTIM_SGD, .learning_rate = 0.1, .momentum = 0.9, .nesterov = true};
        struct dsnn_error err = {0};
        struct dsnn_optim *a = dsnn_optim_new(&oc, &err), *b = dsnn_optim_new(&oc, &err);
        struct dsnn_net *na = one_layer_net(1), *nb = one_layer_net(1);
        struct dsnn_rng ra, rb;
        dsnn_rng_seed(&ra, 6, 6);
        dsnn_rng_seed(&rb, 6, 6);
        for (int t = 0; t < 2; t++) {
            random_grads(na, &ra);
            random_grads(nb, &rb);
            dsnn_optim_step(a, na, &err);
            dsnn_optim_step(b, nb, &err);
        }
        dsnn_optim_set_lr(b, 0.003);
        dsnn_optim_set_lr(a, 0.003);
        FILE *f = tmpfile();
        CU_ASSERT_PTR_NOT_NULL_FATAL(f);
        CU_ASSERT_EQUAL(dsnn_optim_save(b, f, &err), DSNN_OK);
        CU_ASSERT_EQUAL(dsnn_net_save(nb, f, &err), DSNN_OK);
        dsnn_optim_free(b);
        dsnn_net_free(nb);
        /* A fresh optimizer and network, restored. */
        struct dsnn_optim_cfg other = oc;
        other.learning_rate = 123;
        b = dsnn_optim_new(&other, &err);
        nb = one_layer_net(99);
        rewind(f);
        CU_ASSERT_EQUAL(dsnn_optim_load(b, f, &err), DSNN_OK);
        CU_ASSERT_EQUAL(dsnn_net_load(nb, f, &err), DSNN_OK);
        CU_ASSERT_EQUAL(dsnn_optim_lr(b), 0.003);
        for (int t = 0; t < 3; t++) {
            random_grads(na, &ra);
            random_grads(nb, &rb);
            dsnn_optim_step(a, na, &err);
            dsnn_optim_step(b, nb, &err);
        }
        struct dsnn_layer *la = dsnn_net_layer(na, 0), *lb = dsnn_net_layer(nb, 0);
        for (size_t k = 0; k < la->n_params; k++)
            CU_ASSERT_EQUAL(
                memcmp(la->params[k].value, lb->params[k].value, la->params[k].n * sizeof(float)),
                0);
        /* A wrong tag is refused. */
        rewind(f);
        fwrite("XXXX", 1, 4, f);
        rewind(f);
        CU_ASSERT_EQUAL(dsnn_optim_load(b, f, &err), DSNN_ERR_FORMAT);
        fclose(f);
        dsnn_net_free(na);
        dsnn_net_free(nb);
        dsnn_optim_free(a);
        dsnn_optim_free(b);
    }
    dsnn_optim_free(NULL);
}

/* ---- learning-rate schedules ---- */

static void test_lr_schedules(void)
{
    struct dsnn_lr_sched s = {.type = DSNN_LR_STEP, .base_lr = 0.1, .gamma = 0.5, .step_size = 3};
    static const double step_want[] = {0.1,  0.1,   0.1,   0.05,  0.05,
                                       0.05, 0.025, 0.025, 0.025, 0.0125};
    for (int e = 0; e < 10; e++)
        CU_ASSERT_DOUBLE_EQUAL(dsnn_lr_sched_at(&s, e), step_want[e], 1e-15);
    s.step_size = 1;
    s.gamma = 0.1;
    CU_ASSERT_DOUBLE_EQUAL(dsnn_lr_sched_at(&s, 0), 0.1, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(dsnn_lr_sched_at(&s, 1), 0.01, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(dsnn_lr_sched_at(&s, 4), 1e-5, 1e-18);

    struct dsnn_lr_sched m = {.type = DSNN_LR_MULTISTEP,
                              .base_lr = 0.1,
                              .gamma = 0.1,
                              .milestones = {2, 5},
                              .n_milestones = 2};
    static const double ms_want[] = {0.1, 0.1, 0.01, 0.01, 0.01, 0.001, 0.001, 0.001};
    for (int e = 0; e < 8; e++)
        CU_ASSERT_DOUBLE_EQUAL(dsnn_lr_sched_at(&m, e), ms_want[e], 1e-15);

    struct dsnn_lr_sched c = {
        .type = DSNN_LR_CONSTANT, .base_lr = 0.3, .gamma = 0.1, .step_size = 1};
    for (int e = 0; e < 5; e++)
        CU_ASSERT_EQUAL(dsnn_lr_sched_at(&c, e), 0.3);
}

/* ---- configuration ---- */

static struct dsnn_config_file *parse(const char *text)
{
    struct dsnn_config_file *f = NULL;
    struct dsnn_error err = {0};
    if (dsnn_config_file_parse(text, "exp.cfg", &f, &err) != DSNN_OK)
        fprintf(stderr, "\n    parse: %s\n", err.msg);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    return f;
}

static const struct dsnn_cfg *model_of(struct dsnn_config_file *f)
{
    return dsnn_cfg_group(dsnn_config_file_root(f), "model");
}

static void test_cfg_read_ok(void)
{
    struct dsnn_config_file *f = parse("model = { };\n");
    struct dsnn_optim_cfg oc;
    struct dsnn_lr_sched s;
    struct dsnn_error err = {0};
    CU_ASSERT_EQUAL(dsnn_optim_cfg_read(model_of(f), &oc, &err), DSNN_OK);
    CU_ASSERT_EQUAL(oc.alg, DSNN_OPTIM_SGD);
    CU_ASSERT_EQUAL(oc.learning_rate, 0.1);
    CU_ASSERT_EQUAL(oc.momentum, 0.0);
    CU_ASSERT_FALSE(oc.nesterov);
    CU_ASSERT_EQUAL(oc.weight_decay, 0.0);
    CU_ASSERT_EQUAL(oc.beta1, 0.9);
    CU_ASSERT_EQUAL(oc.beta2, 0.999);
    CU_ASSERT_EQUAL(oc.eps, 1e-8);
    CU_ASSERT_EQUAL(dsnn_lr_sched_read(model_of(f), 0.1, &s, &err), DSNN_OK);
    CU_ASSERT_EQUAL(s.type, DSNN_LR_CONSTANT);
    CU_ASSERT_EQUAL(dsnn_lr_sched_at(&s, 7), 0.1);
    /* A NULL group (no `model` at all): the defaults. */
    CU_ASSERT_EQUAL(dsnn_optim_cfg_read(NULL, &oc, &err), DSNN_OK);
    CU_ASSERT_EQUAL(oc.learning_rate, 0.1);
    dsnn_config_file_free(f);

    f = parse("model = {\n"
              "  optim_alg = \"adam\";\n" /* case-insensitive */
              "  learning_rate = 1;\n"    /* an integer where a float is expected */
              "  weight_decay = 0.0005;\n"
              "  adam_beta1 = 0.8;\n"
              "  adam_beta2 = 0.99;\n"
              "  adam_eps = 1e-6;\n"
              "  lr_scheduler = \"multisteplr\";\n"
              "  lr_milestones = [3, 6, 9];\n"
              "  lr_gamma = 0.5;\n"
              "};\n");
    CU_ASSERT_EQUAL(dsnn_optim_cfg_read(model_of(f), &oc, &err), DSNN_OK);
    CU_ASSERT_EQUAL(oc.alg, DSNN_OPTIM_ADAM);
    CU_ASSERT_EQUAL(oc.learning_rate, 1.0);
    CU_ASSERT_EQUAL(oc.weight_decay, 0.0005);
    CU_ASSERT_EQUAL(oc.beta1, 0.8);
    CU_ASSERT_EQUAL(oc.beta2, 0.99);
    CU_ASSERT_EQUAL(oc.eps, 1e-6);
    CU_ASSERT_EQUAL(dsnn_lr_sched_read(model_of(f), 0.2, &s, &err), DSNN_OK);
    CU_ASSERT_EQUAL(s.type, DSNN_LR_MULTISTEP);
    CU_ASSERT_EQUAL(s.n_milestones, 3);
    CU_ASSERT(s.milestones[0] == 3 && s.milestones[1] == 6 && s.milestones[2] == 9);
    CU_ASSERT_DOUBLE_EQUAL(dsnn_lr_sched_at(&s, 2), 0.2, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(dsnn_lr_sched_at(&s, 3), 0.1, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(dsnn_lr_sched_at(&s, 9), 0.025, 1e-15);
    dsnn_config_file_free(f);

    f = parse("model = { momentum = 0.9; nesterov_momentum = true; lr_scheduler = \"StepLR\";\n"
              "          lr_step_size = 2; lr_gamma = 0.1; };\n");
    CU_ASSERT_EQUAL(dsnn_optim_cfg_read(model_of(f), &oc, &err), DSNN_OK);
    CU_ASSERT_EQUAL(oc.alg, DSNN_OPTIM_SGD);
    CU_ASSERT_TRUE(oc.nesterov);
    CU_ASSERT_EQUAL(oc.momentum, 0.9);
    CU_ASSERT_EQUAL(dsnn_lr_sched_read(model_of(f), 0.1, &s, &err), DSNN_OK);
    CU_ASSERT_EQUAL(s.type, DSNN_LR_STEP);
    CU_ASSERT_EQUAL(s.step_size, 2);
    CU_ASSERT_DOUBLE_EQUAL(dsnn_lr_sched_at(&s, 3), 0.01, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(dsnn_lr_sched_at(&s, 4), 0.001, 1e-15);
    CU_ASSERT_EQUAL(err.status, DSNN_OK);

    /* The base model reads the same keys and makes the optimizer. */
    struct dsnn_net *net = one_layer_net(1);
    struct dsnn_base_model *bm = dsnn_base_model_new(model_of(f), NULL, net, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(bm);
    CU_ASSERT_PTR_NOT_NULL(dsnn_base_model_optim(bm));
    CU_ASSERT_PTR_EQUAL(dsnn_base_model_net(bm), net);
    CU_ASSERT_EQUAL(dsnn_base_model_step(bm), 0);
    CU_ASSERT_EQUAL(dsnn_base_model_lr_sched(bm)->type, DSNN_LR_STEP);
    CU_ASSERT_EQUAL(dsnn_optim_lr(dsnn_base_model_optim(bm)), 0.1);
    dsnn_base_model_free(bm); /* the optimizer with it (ASan: no leak) */
    dsnn_base_model_free(NULL);
    dsnn_net_free(net);
    dsnn_config_file_free(f);
}

struct cfg_error_case {
    const char *line;     /* the offending line inside `model = { ... }` */
    const char *key;      /* full key expected in the message */
    const char *parts[4]; /* other expected substrings */
    bool sched;           /* error from dsnn_lr_sched_read (else dsnn_optim_cfg_read) */
};

static void test_cfg_read_errors(void)
{
    static const struct cfg_error_case cases[] = {
        {"optim_alg = \"sgdd\";", "model.optim_alg", {"\"sgdd\"", "\"SGD\"", "\"Adam\""}, false},
        {"optim_alg = 1;", "model.optim_alg", {"expected a string"}, false},
        {"learning_rate = \"fast\";",
         "model.learning_rate",
         {"expected a number, got a string"},
         false},
        {"learning_rate = -0.1;", "model.learning_rate", {"-0.1", "out of range"}, false},
        {"momentum = 1.5;", "model.momentum", {"1.5", "[0, 1]"}, false},
        {"weight_decay = -1;", "model.weight_decay", {"out of range"}, false},
        {"adam_beta1 = 1.5;", "model.adam_beta1", {"[0, 1]"}, false},
        {"adam_beta2 = -0.5;", "model.adam_beta2", {"[0, 1]"}, false},
        {"nesterov_momentum = 1;", "model.nesterov_momentum", {"expected true or false"}, false},
        {"nesterov_momentum = true;", "model.nesterov_momentum", {"momentum > 0"}, false},
        {"lr_scheduler = \"cosine\";",
         "model.lr_scheduler",
         {"\"cosine\"", "\"none\"", "\"StepLR\"", "\"MultiStepLR\""},
         true},
        {"lr_scheduler = \"MultiStepLR\";", "model.lr_scheduler", {"lr_milestones"}, true},
        {"lr_milestones = [5, 2]; lr_scheduler = \"MultiStepLR\";",
         "model.lr_milestones",
         {"increasing"},
         true},
        {"lr_milestones = [1.5];", "model.lr_milestones", {"expected an integer"}, true},
        {"lr_step_size = 0; lr_scheduler = \"StepLR\";",
         "model.lr_step_size",
         {"out of range"},
         true},
        {"lr_step_size = 2.5;", "model.lr_step_size", {"expected an integer", "2.5"}, true},
        {"lr_gamma = \"x\";", "model.lr_gamma", {"expected a number"}, true},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        char text[512];
        /* The offending key is on line 3. */
        snprintf(text, sizeof text, "# experiment\nmodel = {\n  %s\n};\n", cases[k].line);
        struct dsnn_config_file *f = parse(text);
        struct dsnn_error err = {0};
        enum dsnn_status st;
        if (cases[k].sched) {
            struct dsnn_lr_sched s;
            st = dsnn_lr_sched_read(model_of(f), 0.1, &s, &err);
        } else {
            struct dsnn_optim_cfg oc;
            st = dsnn_optim_cfg_read(model_of(f), &oc, &err);
        }
        CU_ASSERT_EQUAL(st, DSNN_ERR_CONFIG);
        CU_ASSERT_EQUAL(err.status, DSNN_ERR_CONFIG);
        bool at_line = strncmp(err.msg, "exp.cfg:3: ", 11) == 0;
        if (!at_line)
            fprintf(stderr, "\n    %s: \"%s\" does not start with exp.cfg:3\n", cases[k].line,
                    err.msg);
        CU_ASSERT_TRUE(at_line);
        char key[128];
        snprintf(key, sizeof key, "'%s'", cases[k].key);
        ASSERT_HAS(err.msg, key);
        for (int i = 0; i < 4 && cases[k].parts[i]; i++)
            ASSERT_HAS(err.msg, cases[k].parts[i]);
        /* The base model reports the same error. */
        struct dsnn_error err2 = {0};
        CU_ASSERT_PTR_NULL(dsnn_base_model_new(model_of(f), NULL, NULL, &err2));
        CU_ASSERT_EQUAL(err2.status, DSNN_ERR_CONFIG);
        CU_ASSERT_STRING_EQUAL(err2.msg, err.msg);
        dsnn_config_file_free(f);
    }
}

/* dsnn_optim_step updates all parameter blocks of a net in one parallel region (each thread a
 * slice of every block) once they hold more than 16384 values: the result is the same for 1 and
 * 3 threads, and what dsnn_optim_step_block gives block by block. */
static void test_step_threads(void)
{
    struct dsnn_optim_cfg cfgs[2] = {
        {.alg = DSNN_OPTIM_SGD, .learning_rate = 0.05, .momentum = 0.9, .nesterov = true,
         .weight_decay = 1e-3},
        {.alg = DSNN_OPTIM_ADAM, .learning_rate = 1e-3, .beta1 = 0.9, .beta2 = 0.999,
         .eps = 1e-8, .weight_decay = 1e-4},
    };
    for (int a = 0; a < 2; a++) {
        struct dsnn_net *nets[3];
        struct dsnn_optim *opts[3];
        struct dsnn_error err = {0};
        for (int n = 0; n < 3; n++) {
            nets[n] = dsnn_net_new((struct dsnn_shape){150, 1, 1}, 10, &err);
            dsnn_net_add(nets[n], dsnn_linear_new("fc1", 150, 120, true, &err), &err);
            dsnn_net_add(nets[n], dsnn_linear_new("fc2", 120, 10, true, &err), &err);
            struct dsnn_rng r;
            dsnn_rng_seed(&r, 9, DSNN_RNG_STREAM_INIT);
            CU_ASSERT_EQUAL_FATAL(dsnn_net_init(nets[n], &r, 4, &err), DSNN_OK);
            opts[n] = dsnn_optim_new(&cfgs[a], &err);
            CU_ASSERT_PTR_NOT_NULL_FATAL(opts[n]);
        }
        for (int step = 0; step < 3; step++) {
            for (int n = 0; n < 3; n++) {
                struct dsnn_rng r;
                dsnn_rng_seed(&r, 77, (uint64_t)step);
                for (size_t i = 0; i < dsnn_net_n_layers(nets[n]); i++) {
                    struct dsnn_layer *l = dsnn_net_layer(nets[n], i);
                    for (size_t k = 0; k < l->n_params; k++)
                        for (size_t j = 0; j < l->params[k].n; j++)
                            l->params[k].grad[j] = (float)(dsnn_rng_uniform(&r) - 0.5);
                }
            }
            dsnn_set_num_threads(1);
            CU_ASSERT_EQUAL(dsnn_optim_step(opts[0], nets[0], &err), DSNN_OK);
            dsnn_set_num_threads(3);
            CU_ASSERT_EQUAL(dsnn_optim_step(opts[1], nets[1], &err), DSNN_OK);
            /* block by block (Adam's step count advances with dsnn_optim_step only) */
            struct dsnn_optim *o = opts[2];
            if (a == 1) { /* same step count as the others */
                CU_ASSERT_EQUAL(dsnn_optim_step(o, nets[2], &err), DSNN_OK);
            } else {
                for (size_t i = 0; i < dsnn_net_n_layers(nets[2]); i++) {
                    struct dsnn_layer *l = dsnn_net_layer(nets[2], i);
                    for (size_t k = 0; k < l->n_params; k++)
                        CU_ASSERT_EQUAL(dsnn_optim_step_block(o, &l->params[k], &err), DSNN_OK);
                }
            }
        }
        for (size_t i = 0; i < dsnn_net_n_layers(nets[0]); i++)
            for (size_t k = 0; k < dsnn_net_layer(nets[0], i)->n_params; k++) {
                const struct dsnn_param_block *b0 = &dsnn_net_layer(nets[0], i)->params[k];
                for (int n = 1; n < 3; n++) {
                    const struct dsnn_param_block *b = &dsnn_net_layer(nets[n], i)->params[k];
                    CU_ASSERT(memcmp(b0->value, b->value, sizeof(float) * b0->n) == 0);
                    CU_ASSERT(memcmp(b0->state[0], b->state[0], sizeof(float) * b0->n) == 0);
                }
            }
        for (int n = 0; n < 3; n++) {
            dsnn_optim_free(opts[n]);
            dsnn_net_free(nets[n]);
        }
    }
    dsnn_set_num_threads(0);
}

static CU_TestInfo tests[] = {
    {"SGD plain/momentum/nesterov/weight decay vs PyTorch", test_sgd},
    {"SGD two steps by hand", test_sgd_hand_values},
    {"Adam vs PyTorch", test_adam},
    {"Adam first step = lr * sign(g)", test_adam_first_step},
    {"one step over all blocks: same for any thread count", test_step_threads},
    {"optimizer checkpoint continues exactly", test_optim_checkpoint},
    {"StepLR / MultiStepLR", test_lr_schedules},
    {"config: defaults and values", test_cfg_read_ok},
    {"config: errors name FILE:LINE, key, choices", test_cfg_read_errors},
    CU_TEST_INFO_NULL,
};

DSNN_TEST_MAIN("optim", tests)
