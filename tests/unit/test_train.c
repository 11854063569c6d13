/* tests/unit/test_train.c - loss, epoch loop, evaluation and the base model (sdk/src/train/train.c,
 * base_model.c).
 *
 * dsnn_softmax_xent against a naive double implementation (also for huge logits) and finite
 * differences; dsnn_train_epoch on an in-memory, linearly separable data set implemented here as a
 * struct dsnn_dataset_ops (loss goes down, accuracy goes up; hooks, step counter, error paths);
 * dsnn_base_model checkpoints: training continued from a checkpoint is bit-identical to
 * uninterrupted training. */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dsnn/config.h"
#include "dsnn/data.h"
#include "dsnn/layer.h"
#include "dsnn/metrics.h"
#include "dsnn/net.h"
#include "dsnn/optim.h"
#include "dsnn/plugin.h"
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

/* ---- softmax cross-entropy ---- */

/* Naive, in long double: loss of row z with label y, and softmax into p. */
static double naive_xent(const float *z, int n, int y, double *p)
{
    long double mx = z[0], s = 0;
    for (int c = 1; c < n; c++)
        if (z[c] > mx)
            mx = z[c];
    for (int c = 0; c < n; c++)
        s += expl((long double)z[c] - mx);
    for (int c = 0; p && c < n; c++)
        p[c] = (double)(expl((long double)z[c] - mx) / s);
    return (double)(logl(s) + mx - z[y]);
}

/* Batches of 512+ logits are split over the threads (sample-order sums): the same numbers for
 * 1 and 3 threads, on the stack (<= 256 samples) and heap paths, and the naive values. */
static void test_xent_threads(void)
{
    const int batches[] = {40, 100, 300};
    enum { C = 10 };
    for (size_t bi = 0; bi < sizeof batches / sizeof *batches; bi++) {
        const int B = batches[bi];
        float *z = malloc(sizeof(float) * B * C), *d1 = malloc(sizeof(float) * B * C);
        float *d3 = malloc(sizeof(float) * B * C);
        int32_t *y = malloc(sizeof(int32_t) * B);
        struct dsnn_rng r;
        dsnn_rng_seed(&r, 3, (uint64_t)B);
        for (int i = 0; i < B * C; i++)
            z[i] = (float)(8 * dsnn_rng_uniform(&r) - 4);
        for (int i = 0; i < B; i++)
            y[i] = (int32_t)dsnn_rng_below(&r, C);
        struct dsnn_error err = {0};
        double l1 = 0.25, l3 = 0.25;
        int64_t c1 = 1, c3 = 1;
        dsnn_set_num_threads(1);
        CU_ASSERT_EQUAL(dsnn_softmax_xent(z, y, B, C, d1, &l1, &c1, &err), DSNN_OK);
        dsnn_set_num_threads(3);
        CU_ASSERT_EQUAL(dsnn_softmax_xent(z, y, B, C, d3, &l3, &c3, &err), DSNN_OK);
        CU_ASSERT(l1 == l3);
        CU_ASSERT_EQUAL(c1, c3);
        CU_ASSERT(memcmp(d1, d3, sizeof(float) * B * C) == 0);
        double want = 0.25, p[C];
        int64_t want_c = 1;
        bool ok = true;
        for (int i = 0; i < B; i++) {
            want += naive_xent(z + i * C, C, y[i], p);
            int arg = 0;
            for (int c = 1; c < C; c++)
                if (z[i * C + c] > z[i * C + arg])
                    arg = c;
            want_c += arg == y[i];
            for (int c = 0; c < C; c++) {
                double g = (p[c] - (c == y[i])) / B;
                ok &= fabs(d3[i * C + c] - g) <= 1e-7 + 1e-6 * fabs(g);
            }
        }
        CU_ASSERT(ok);
        CU_ASSERT_DOUBLE_EQUAL(l3, want, 1e-6 * B);
        CU_ASSERT_EQUAL(c3, want_c);
        /* a bad label anywhere is refused before any output is written */
        y[B - 1] = C;
        d3[0] = 12345.0f;
        CU_ASSERT_EQUAL(dsnn_softmax_xent(z, y, B, C, d3, &l3, &c3, &err), DSNN_ERR_INVALID);
        CU_ASSERT_EQUAL(d3[0], 12345.0f);
        free(z);
        free(d1);
        free(d3);
        free(y);
    }
    dsnn_set_num_threads(0);
}

static void test_xent_vs_naive(void)
{
    enum { B = 5, C = 7 };
    struct dsnn_rng r;
    dsnn_rng_seed(&r, 1, 1);
    float z[B * C], d[B * C];
    int32_t y[B];
    for (int i = 0; i < B * C; i++)
        z[i] = (float)(6 * dsnn_rng_uniform(&r) - 3);
    for (int i = 0; i < B; i++)
        y[i] = (int32_t)dsnn_rng_below(&r, C);
    /* Make sample 0 correctly classified, sample 1 not. */
    z[0 * C + y[0]] = 10;
    z[1 * C + (y[1] + 1) % C] = 10;
    double loss = 1.5; /* accumulates */
    int64_t correct = 2;
    struct dsnn_error err = {0};
    CU_ASSERT_EQUAL(dsnn_softmax_xent(z, y, B, C, d, &loss, &correct, &err), DSNN_OK);
    double want_loss = 1.5, p[C];
    int64_t want_correct = 2;
    bool grads_ok = true;
    for (int i = 0; i < B; i++) {
        want_loss += naive_xent(z + i * C, C, y[i], p);
        int arg = 0;
        for (int c = 1; c < C; c++)
            if (z[i * C + c] > z[i * C + arg])
                arg = c;
        want_correct += arg == y[i];
        double row_sum = 0;
        for (int c = 0; c < C; c++) {
            double want = (p[c] - (c == y[i])) / B;
            grads_ok &= fabs(d[i * C + c] - want) <= 1e-7 + 1e-6 * fabs(want);
            row_sum += d[i * C + c];
        }
        grads_ok &= fabs(row_sum) < 1e-7;
    }
    CU_ASSERT_TRUE(grads_ok);
    CU_ASSERT_DOUBLE_EQUAL(loss, want_loss, 1e-6);
    CU_ASSERT_EQUAL(correct, want_correct);
    CU_ASSERT(want_correct >= 3 && want_correct <= 2 + B - 1);

    /* NULL outputs are allowed. */
    CU_ASSERT_EQUAL(dsnn_softmax_xent(z, y, B, C, NULL, NULL, NULL, &err), DSNN_OK);
    CU_ASSERT_EQUAL(err.status, DSNN_OK);

    /* Ties count the first maximum as the prediction. */
    float t[3] = {1, 1, 1};
    int32_t l0 = 0, l1 = 1;
    correct = 0;
    dsnn_softmax_xent(t, &l0, 1, 3, NULL, NULL, &correct, &err);
    dsnn_softmax_xent(t, &l1, 1, 3, NULL, NULL, &correct, &err);
    CU_ASSERT_EQUAL(correct, 1);
    /* Uniform logits: loss log(C). */
    loss = 0;
    dsnn_softmax_xent(t, &l1, 1, 3, NULL, &loss, NULL, &err);
    CU_ASSERT_DOUBLE_EQUAL(loss, log(3.0), 1e-12);
}

static void test_xent_large_logits(void)
{
    struct dsnn_error err = {0};
    static const struct {
        float z[3];
        int32_t y;
        double loss;
    } cases[] = {
        {{1000, 0, -1000}, 0, 0},
        {{1000, 0, -1000}, 1, 1000},
        {{1000, 0, -1000}, 2, 2000},
        {{1e4f, 1e4f, -1e4f}, 0, 0.69314718055994531},
        {{-1000, -1000, -1000}, 2, 1.0986122886681098},
        {{3e38f, 0, 0}, 1, 3e38},
        {{88.0f, 89.0f, 90.0f}, 2, 0.40760596444438034},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        float d[3];
        double loss = 0;
        int64_t correct = 0;
        CU_ASSERT_EQUAL(dsnn_softmax_xent(cases[k].z, &cases[k].y, 1, 3, d, &loss, &correct, &err),
                        DSNN_OK);
        bool finite = isfinite(loss) && isfinite(d[0]) && isfinite(d[1]) && isfinite(d[2]);
        CU_ASSERT_TRUE(finite);
        double tol = 1e-9 + 1e-7 * fabs(cases[k].loss);
        if (!(fabs(loss - cases[k].loss) <= tol))
            fprintf(stderr, "\n    case %zu: loss %.17g want %.17g\n", k, loss, cases[k].loss);
        CU_ASSERT(fabs(loss - cases[k].loss) <= tol);
        double p[3];
        naive_xent(cases[k].z, 3, cases[k].y, p);
        for (int c = 0; c < 3; c++)
            CU_ASSERT_DOUBLE_EQUAL(d[c], p[c] - (c == cases[k].y), 1e-7);
    }
}

static void test_xent_fd(void)
{
    enum { B = 4, C = 5 };
    struct dsnn_rng r;
    dsnn_rng_seed(&r, 2, 2);
    float z[B * C], d[B * C];
    int32_t y[B];
    for (int i = 0; i < B * C; i++)
        z[i] = (float)(8 * dsnn_rng_uniform(&r) - 4);
    for (int i = 0; i < B; i++)
        y[i] = (int32_t)dsnn_rng_below(&r, C);
    struct dsnn_error err = {0};
    CU_ASSERT_EQUAL(dsnn_softmax_xent(z, y, B, C, d, NULL, NULL, &err), DSNN_OK);
    bool ok = true;
    for (int i = 0; i < B * C; i++) {
        const double h = 1e-2;
        float orig = z[i], up = (float)(orig + h), dn = (float)(orig - h);
        double lu = 0, ld = 0;
        z[i] = up;
        dsnn_softmax_xent(z, y, B, C, NULL, &lu, NULL, &err);
        z[i] = dn;
        dsnn_softmax_xent(z, y, B, C, NULL, &ld, NULL, &err);
        z[i] = orig;
        double fd = (lu - ld) / B / ((double)up - (double)dn);
        if (!(fabs(d[i] - fd) <= 1e-5 + 1e-3 * fabs(fd))) {
            fprintf(stderr, "\n    dlogits[%d] = %.9g, finite difference %.9g\n", i, d[i], fd);
            ok = false;
        }
    }
    CU_ASSERT_TRUE(ok);
}

static void test_xent_bad_label(void)
{
    float z[6] = {1, 2, 3, 4, 5, 6};
    static const int32_t bad[] = {-1, 3, 100, INT32_MIN};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        int32_t y[2] = {0, bad[k]};
        struct dsnn_error err = {0};
        double loss = 7;
        int64_t correct = 5;
        CU_ASSERT_EQUAL(dsnn_softmax_xent(z, y, 2, 3, NULL, &loss, &correct, &err),
                        DSNN_ERR_INVALID);
        CU_ASSERT_EQUAL(err.status, DSNN_ERR_INVALID);
        char want[64];
        snprintf(want, sizeof want, "label %d", (int)bad[k]);
        ASSERT_HAS(err.msg, want);
        ASSERT_HAS(err.msg, "[0, 3)");
        /* Nothing was added. */
        CU_ASSERT_EQUAL(loss, 7);
        CU_ASSERT_EQUAL(correct, 5);
    }
}

/* ---- an in-memory dataset ---- */

enum { DIM = 4, CLASSES = 3 };

struct mem_ds {
    int n[3];    /* per split */
    float *x[3]; /* [n][DIM] */
    int32_t *y[3];
    int batch[3]; /* batch size per split */
    uint64_t seed;
    /* iteration */
    int split, pos;
    uint32_t *order;
    float *bx;
    int32_t *by;
    int oversize;   /* yield batches this much larger than announced (error test) */
    int fail_begin; /* begin returns an error */
    int begins;
    int begin_epoch[3]; /* epoch of the last begin, per split */
};

static enum dsnn_status mem_begin(void *state, enum dsnn_split split, int epoch,
                                  struct dsnn_error *err)
{
    struct mem_ds *d = state;
    d->begins++;
    d->begin_epoch[split] = epoch;
    if (d->fail_begin)
        return dsnn_error_set(err, DSNN_ERR_IO, "mem: cannot begin split %d", (int)split);
    d->split = (int)split;
    d->pos = 0;
    for (int i = 0; i < d->n[split]; i++)
        d->order[i] = (uint32_t)i;
    if (split == DSNN_SPLIT_TRAIN) { /* a deterministic function of (seed, epoch) */
        struct dsnn_rng r;
        dsnn_rng_seed(&r, dsnn_seed_mix(d->seed, (uint64_t)epoch), DSNN_RNG_STREAM_DATA);
        dsnn_rng_shuffle_u32(&r, d->order, (size_t)d->n[split]);
    }
    return DSNN_OK;
}

static enum dsnn_status mem_next(void *state, struct dsnn_batch *b, struct dsnn_error *err)
{
    (void)err;
    struct mem_ds *d = state;
    int s = d->split, k = d->n[s] - d->pos;
    int max = d->batch[s] + d->oversize;
    if (k > max)
        k = max;
    for (int i = 0; i < k; i++) {
        uint32_t j = d->order[d->pos + i];
        memcpy(d->bx + (size_t)i * DIM, d->x[s] + (size_t)j * DIM, sizeof(float) * DIM);
        d->by[i] = d->y[s][j];
    }
    d->pos += k;
    b->x = d->bx;
    b->y = d->by;
    b->n = k;
    return DSNN_OK;
}

static const struct dsnn_dataset_ops mem_ops = {
    .open = NULL, .begin = mem_begin, .next_batch = mem_next, .close = NULL};

/* Linearly separable: label = argmax W* x, with a margin of at least 0.2. */
static void mem_fill(struct mem_ds *d, int split, int n, struct dsnn_rng *r)
{
    static const float wstar[CLASSES][DIM] = {
        {1, -1, 0.5f, 0}, {-1, 0.5f, 1, 0.5f}, {0, 1, -1, -1}};
    d->n[split] = n;
    d->x[split] = malloc(sizeof(float) * DIM * (size_t)(n ? n : 1));
    d->y[split] = malloc(sizeof(int32_t) * (size_t)(n ? n : 1));
    for (int i = 0; i < n;) {
        float *x = d->x[split] + (size_t)i * DIM;
        for (int j = 0; j < DIM; j++)
            x[j] = (float)(2 * dsnn_rng_uniform(r) - 1);
        float s[CLASSES];
        int arg = 0;
        for (int c = 0; c < CLASSES; c++) {
            s[c] = 0;
            for (int j = 0; j < DIM; j++)
                s[c] += wstar[c][j] * x[j];
            if (s[c] > s[arg])
                arg = c;
        }
        bool margin = true;
        for (int c = 0; c < CLASSES; c++)
            margin &= c == arg || s[arg] - s[c] >= 0.2f;
        if (!margin)
            continue;
        d->y[split][i] = arg;
        i++;
    }
}

static struct dsnn_data mem_open(struct mem_ds *d, int n_train, int n_test, int batch,
                                 uint64_t seed)
{
    memset(d, 0, sizeof *d);
    struct dsnn_rng r;
    dsnn_rng_seed(&r, 1234, 1);
    mem_fill(d, DSNN_SPLIT_TRAIN, n_train, &r);
    mem_fill(d, DSNN_SPLIT_TEST, n_test, &r);
    mem_fill(d, DSNN_SPLIT_NOISE, 0, &r);
    d->batch[0] = d->batch[1] = d->batch[2] = batch;
    d->seed = seed;
    int most = n_train > n_test ? n_train : n_test;
    d->order = malloc(sizeof(uint32_t) * (size_t)(most ? most : 1));
    d->bx = malloc(sizeof(float) * DIM * (size_t)(batch + 8));
    d->by = malloc(sizeof(int32_t) * (size_t)(batch + 8));
    struct dsnn_data data = {.ops = &mem_ops, .state = d};
    data.info.shape = (struct dsnn_shape){DIM, 1, 1};
    data.info.n_classes = CLASSES;
    data.info.n_train = n_train;
    data.info.n_test = n_test;
    data.info.n_noise = 0;
    data.info.batch_size_train = batch;
    data.info.batch_size_test = batch;
    return data;
}

static void mem_close(struct mem_ds *d)
{
    for (int s = 0; s < 3; s++) {
        free(d->x[s]);
        free(d->y[s]);
    }
    free(d->order);
    free(d->bx);
    free(d->by);
}

/* DIM -> hidden -> relu -> CLASSES (hidden 0: softmax regression). */
static struct dsnn_net *small_net(int hidden, int max_batch, uint64_t seed)
{
    struct dsnn_error err = {0};
    struct dsnn_net *net = dsnn_net_new((struct dsnn_shape){DIM, 1, 1}, CLASSES, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(net);
    enum dsnn_status st;
    if (hidden > 0) {
        st = dsnn_net_add(net, dsnn_linear_new("fc1", DIM, hidden, true, &err), &err);
        st = st ? st
                : dsnn_net_add(net, dsnn_relu_new("relu1", (struct dsnn_shape){hidden, 1, 1}, &err),
                               &err);
        st = st ? st
                : dsnn_net_add(net, dsnn_linear_new("output", hidden, CLASSES, true, &err), &err);
    } else {
        st = dsnn_net_add(net, dsnn_linear_new("output", DIM, CLASSES, true, &err), &err);
    }
    CU_ASSERT_EQUAL_FATAL(st, DSNN_OK);
    if (max_batch > 0) {
        struct dsnn_rng r;
        dsnn_rng_seed(&r, seed, DSNN_RNG_STREAM_INIT);
        CU_ASSERT_EQUAL_FATAL(dsnn_net_init(net, &r, max_batch, &err), DSNN_OK);
    }
    return net;
}

static double metric(const struct dsnn_metrics *m, const char *name)
{
    double v = NAN;
    CU_ASSERT_TRUE(dsnn_metrics_get(m, name, &v));
    return v;
}

/* ---- hooks ---- */

struct hook_log {
    int forwards, backwards, steps;
    int64_t last_step;
    bool order_ok;
    int fail_at; /* after_step fails at this call (0: never) */
    int nan_at;  /* after_step poisons the weights at this call (0: never) */
};

static enum dsnn_status h_forward(void *user, struct dsnn_net *net, const struct dsnn_batch *b,
                                  struct dsnn_error *err)
{
    (void)err;
    struct hook_log *h = user;
    h->order_ok &= h->forwards == h->steps && b->n > 0 && dsnn_net_activation(net, 0) != NULL;
    h->forwards++;
    return DSNN_OK;
}

static enum dsnn_status h_backward(void *user, struct dsnn_net *net, int64_t step,
                                   struct dsnn_error *err)
{
    (void)net, (void)err;
    struct hook_log *h = user;
    h->order_ok &= h->backwards + 1 == h->forwards && step == h->last_step + 1;
    h->backwards++;
    return DSNN_OK;
}

static enum dsnn_status h_step(void *user, struct dsnn_net *net, int64_t step,
                               struct dsnn_error *err)
{
    struct hook_log *h = user;
    h->order_ok &= h->steps + 1 == h->backwards && step == h->last_step + 1;
    h->steps++;
    h->last_step = step;
    if (h->fail_at && h->steps == h->fail_at)
        return dsnn_error_set(err, DSNN_ERR_INTERNAL, "hook says no at step %lld", (long long)step);
    if (h->nan_at && h->steps == h->nan_at)
        dsnn_linear_weight(dsnn_net_layer(net, 0))[0] = NAN;
    return DSNN_OK;
}

/* ---- dsnn_train_epoch ---- */

static void test_train_epoch_learns(void)
{
    struct mem_ds ds;
    struct dsnn_data data = mem_open(&ds, 240, 120, 16, 7);
    struct dsnn_net *net = small_net(0, 16, 3);
    struct dsnn_optim_cfg oc = {.alg = DSNN_OPTIM_SGD, .learning_rate = 0.5, .momentum = 0.9};
    struct dsnn_error err = {0};
    struct dsnn_optim *opt = dsnn_optim_new(&oc, &err);
    struct hook_log log = {.order_ok = true, .last_step = -1};
    struct dsnn_train_hooks hooks = {&log, h_forward, h_backward, h_step};
    int64_t step = 0;
    double first_loss = 0, last_loss = 0, last_acc = 0;
    struct dsnn_metrics m;
    for (int epoch = 0; epoch < 12; epoch++) {
        dsnn_metrics_clear(&m);
        enum dsnn_status st = dsnn_train_epoch(net, opt, &data, epoch, &hooks, &step, &m, &err);
        if (st != DSNN_OK)
            fprintf(stderr, "\n    epoch %d: %s\n", epoch, err.msg);
        CU_ASSERT_EQUAL_FATAL(st, DSNN_OK);
        CU_ASSERT_EQUAL(step, (int64_t)(epoch + 1) * 15);
        if (epoch == 0)
            first_loss = metric(&m, "train_loss");
        last_loss = metric(&m, "train_loss");
        last_acc = metric(&m, "train_acc");
    }
    CU_ASSERT_TRUE(log.order_ok);
    CU_ASSERT_EQUAL(log.forwards, 12 * 15);
    CU_ASSERT_EQUAL(log.backwards, 12 * 15);
    CU_ASSERT_EQUAL(log.steps, 12 * 15);
    CU_ASSERT_EQUAL(ds.begins, 12);
    CU_ASSERT(last_loss < 0.5 * first_loss);
    CU_ASSERT(last_acc >= 0.95);
    /* The test split: evaluation metrics with the prefix. */
    dsnn_metrics_clear(&m);
    CU_ASSERT_EQUAL(dsnn_evaluate(net, &data, DSNN_SPLIT_TEST, "val", &m, &err), DSNN_OK);
    double val_acc = metric(&m, "val_acc"), val_loss = metric(&m, "val_loss");
    if (!(last_acc >= 0.95 && val_acc >= 0.9))
        fprintf(stderr, "\n    loss %.4f -> %.4f, train acc %.3f, val acc %.3f\n", first_loss,
                last_loss, last_acc, val_acc);
    CU_ASSERT(val_acc >= 0.9);
    CU_ASSERT(val_loss > 0 && val_loss < first_loss);
    CU_ASSERT_EQUAL(m.n, 2);
    /* the evaluation is of the last train epoch begun (its per-epoch batch_size_test) */
    CU_ASSERT_EQUAL(data.epoch, 11);
    CU_ASSERT_EQUAL(ds.begin_epoch[DSNN_SPLIT_TEST], 11);
    /* Evaluating twice gives the same (no training side effect). */
    struct dsnn_metrics m2;
    dsnn_metrics_clear(&m2);
    CU_ASSERT_EQUAL(dsnn_evaluate(net, &data, DSNN_SPLIT_TEST, "val", &m2, &err), DSNN_OK);
    CU_ASSERT_EQUAL(metric(&m2, "val_loss"), val_loss);
    /* An empty split is an error. */
    CU_ASSERT_EQUAL(dsnn_evaluate(net, &data, DSNN_SPLIT_NOISE, "noise", &m2, &err),
                    DSNN_ERR_INVALID);
    /* A NULL step counter and no hooks are fine. */
    CU_ASSERT_EQUAL(dsnn_train_epoch(net, opt, &data, 12, NULL, NULL, &m, &err), DSNN_OK);
    dsnn_optim_free(opt);
    dsnn_net_free(net);
    mem_close(&ds);
}

static void test_train_epoch_mlp(void)
{
    /* The same with a hidden layer and Adam. */
    struct mem_ds ds;
    struct dsnn_data data = mem_open(&ds, 240, 120, 20, 8);
    struct dsnn_net *net = small_net(16, 20, 4);
    struct dsnn_optim_cfg oc = {
        .alg = DSNN_OPTIM_ADAM, .learning_rate = 0.02, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8};
    struct dsnn_error err = {0};
    struct dsnn_optim *opt = dsnn_optim_new(&oc, &err);
    struct dsnn_metrics m;
    double first = 0, last = 0, acc = 0;
    for (int epoch = 0; epoch < 15; epoch++) {
        dsnn_metrics_clear(&m);
        CU_ASSERT_EQUAL_FATAL(dsnn_train_epoch(net, opt, &data, epoch, NULL, NULL, &m, &err),
                              DSNN_OK);
        if (epoch == 0)
            first = metric(&m, "train_loss");
        last = metric(&m, "train_loss");
        acc = metric(&m, "train_acc");
    }
    CU_ASSERT(last < 0.5 * first);
    CU_ASSERT(acc >= 0.95);
    dsnn_metrics_clear(&m);
    CU_ASSERT_EQUAL(dsnn_evaluate(net, &data, DSNN_SPLIT_TEST, "val", &m, &err), DSNN_OK);
    CU_ASSERT(metric(&m, "val_acc") >= 0.9);
    dsnn_optim_free(opt);
    dsnn_net_free(net);
    mem_close(&ds);
}

static void test_train_epoch_errors(void)
{
    struct mem_ds ds;
    struct dsnn_data data = mem_open(&ds, 64, 16, 8, 1);
    struct dsnn_net *net = small_net(0, 16, 1);
    struct dsnn_optim_cfg oc = {.alg = DSNN_OPTIM_SGD, .learning_rate = 0.1};
    struct dsnn_error err = {0};
    struct dsnn_optim *opt = dsnn_optim_new(&oc, &err);
    struct dsnn_metrics m;
    dsnn_metrics_clear(&m);

    /* A hook's error stops the epoch with its status and message. */
    struct hook_log log = {.order_ok = true, .last_step = -1, .fail_at = 3};
    struct dsnn_train_hooks hooks = {&log, NULL, NULL, h_step};
    int64_t step = 0;
    CU_ASSERT_EQUAL(dsnn_train_epoch(net, opt, &data, 0, &hooks, &step, &m, &err),
                    DSNN_ERR_INTERNAL);
    ASSERT_HAS(err.msg, "hook says no at step 2");
    CU_ASSERT_EQUAL(log.steps, 3);
    CU_ASSERT_FALSE(dsnn_metrics_get(&m, "train_loss", NULL));

    /* NaN weights: the loss is not finite -> DSNN_ERR_NUMERIC naming the epoch and step. */
    struct hook_log nan_log = {.order_ok = true, .last_step = -1, .nan_at = 2};
    hooks.user = &nan_log;
    step = 10;
    nan_log.last_step = 9;
    memset(&err, 0, sizeof err);
    CU_ASSERT_EQUAL(dsnn_train_epoch(net, opt, &data, 4, &hooks, &step, &m, &err),
                    DSNN_ERR_NUMERIC);
    ASSERT_HAS(err.msg, "epoch 4");
    ASSERT_HAS(err.msg, "step 12");
    CU_ASSERT_EQUAL(step, 12);
    dsnn_net_free(net);
    net = small_net(0, 16, 1);

    /* A batch larger than announced. */
    ds.oversize = 1;
    memset(&err, 0, sizeof err);
    CU_ASSERT_EQUAL(dsnn_train_epoch(net, opt, &data, 0, NULL, NULL, &m, &err), DSNN_ERR_INTERNAL);
    ASSERT_HAS(err.msg, "batch of 9");
    ds.oversize = 0;
    /* The dataset cannot begin. */
    ds.fail_begin = 1;
    memset(&err, 0, sizeof err);
    CU_ASSERT_EQUAL(dsnn_train_epoch(net, opt, &data, 0, NULL, NULL, &m, &err), DSNN_ERR_IO);
    ASSERT_HAS(err.msg, "mem: cannot begin");
    memset(&err, 0, sizeof err);
    CU_ASSERT_EQUAL(dsnn_evaluate(net, &data, DSNN_SPLIT_TEST, "val", &m, &err), DSNN_ERR_IO);
    ds.fail_begin = 0;
    /* A label out of range in the data. */
    ds.y[DSNN_SPLIT_TRAIN][5] = CLASSES;
    memset(&err, 0, sizeof err);
    CU_ASSERT_EQUAL(dsnn_train_epoch(net, opt, &data, 0, NULL, NULL, &m, &err), DSNN_ERR_INVALID);
    ASSERT_HAS(err.msg, "label 3");
    ds.y[DSNN_SPLIT_TRAIN][5] = 0;
    /* An empty train split. */
    ds.n[DSNN_SPLIT_TRAIN] = 0;
    memset(&err, 0, sizeof err);
    CU_ASSERT_EQUAL(dsnn_train_epoch(net, opt, &data, 0, NULL, NULL, &m, &err), DSNN_ERR_INVALID);
    ASSERT_HAS(err.msg, "no samples");
    ds.n[DSNN_SPLIT_TRAIN] = 64;
    /* A net whose max batch is smaller than the data's batches. */
    dsnn_net_free(net);
    net = small_net(0, 4, 1);
    memset(&err, 0, sizeof err);
    CU_ASSERT_EQUAL(dsnn_train_epoch(net, opt, &data, 0, NULL, NULL, &m, &err), DSNN_ERR_INVALID);
    ASSERT_HAS(err.msg, "batch 8");
    dsnn_optim_free(opt);
    dsnn_net_free(net);
    mem_close(&ds);
}

static void test_train_order_deterministic(void)
{
    /* Same seeds: the same losses bit for bit; another data seed: other losses. */
    double loss[3];
    for (int run = 0; run < 3; run++) {
        struct mem_ds ds;
        struct dsnn_data data = mem_open(&ds, 96, 16, 8, run == 2 ? 99 : 5);
        struct dsnn_net *net = small_net(8, 8, 2);
        struct dsnn_optim_cfg oc = {.alg = DSNN_OPTIM_SGD, .learning_rate = 0.1, .momentum = 0.5};
        struct dsnn_error err = {0};
        struct dsnn_optim *opt = dsnn_optim_new(&oc, &err);
        struct dsnn_metrics m;
        dsnn_metrics_clear(&m);
        for (int e = 0; e < 3; e++)
            CU_ASSERT_EQUAL(dsnn_train_epoch(net, opt, &data, e, NULL, NULL, &m, &err), DSNN_OK);
        loss[run] = metric(&m, "train_loss");
        dsnn_optim_free(opt);
        dsnn_net_free(net);
        mem_close(&ds);
    }
    CU_ASSERT_EQUAL(memcmp(&loss[0], &loss[1], sizeof loss[0]), 0);
    CU_ASSERT_NOT_EQUAL(loss[0], loss[2]);
}

/* ---- the base model and its checkpoint ---- */

static struct dsnn_config_file *parse(const char *text)
{
    struct dsnn_config_file *f = NULL;
    struct dsnn_error err = {0};
    if (dsnn_config_file_parse(text, "model.cfg", &f, &err) != DSNN_OK)
        fprintf(stderr, "\n    parse: %s\n", err.msg);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    return f;
}

static struct dsnn_base_model *base_model_new(const struct dsnn_cfg *cfg, uint64_t seed,
                                              const struct dsnn_dataset_info *info)
{
    struct dsnn_error err = {0};
    struct dsnn_run_ctx ctx = {.seed = seed, .trial_index = 0, .epochs = 4, .log = stderr};
    struct dsnn_net *net = small_net(12, 0, 0);
    struct dsnn_base_model *bm = dsnn_base_model_new(cfg, &ctx, net, &err);
    if (!bm)
        fprintf(stderr, "\n    configure: %s\n", err.msg);
    CU_ASSERT_PTR_NOT_NULL_FATAL(bm);
    CU_ASSERT_EQUAL_FATAL(dsnn_base_model_init_net(bm, info, &err), DSNN_OK);
    return bm;
}

static void base_model_free(struct dsnn_base_model *bm)
{
    struct dsnn_net *net = dsnn_base_model_net(bm);
    dsnn_base_model_free(bm);
    dsnn_net_free(net);
}

static bool same_params(struct dsnn_net *a, struct dsnn_net *b, bool with_state)
{
    bool same = dsnn_net_n_layers(a) == dsnn_net_n_layers(b);
    for (size_t li = 0; same && li < dsnn_net_n_layers(a); li++) {
        struct dsnn_layer *la = dsnn_net_layer(a, li), *lb = dsnn_net_layer(b, li);
        for (size_t k = 0; same && k < la->n_params; k++) {
            size_t n = la->params[k].n * sizeof(float);
            same &= memcmp(la->params[k].value, lb->params[k].value, n) == 0;
            for (int s = 0; with_state && s < DSNN_OPT_STATE_MAX; s++) {
                same &= (la->params[k].state[s] == NULL) == (lb->params[k].state[s] == NULL);
                if (same && la->params[k].state[s])
                    same &= memcmp(la->params[k].state[s], lb->params[k].state[s], n) == 0;
            }
        }
    }
    return same;
}

static void check_resume(const char *cfg_text)
{
    struct dsnn_config_file *f = parse(cfg_text);
    const struct dsnn_cfg *cfg = dsnn_cfg_group(dsnn_config_file_root(f), "model");
    struct mem_ds ds;
    struct dsnn_data data = mem_open(&ds, 96, 32, 16, 3);
    struct dsnn_error err = {0};
    struct dsnn_metrics ma, mb;

    /* A: epochs 0, 1, checkpoint, epochs 2, 3. */
    struct dsnn_base_model *a = base_model_new(cfg, 42, &data.info);
    for (int e = 0; e < 2; e++) {
        dsnn_metrics_clear(&ma);
        CU_ASSERT_EQUAL_FATAL(dsnn_base_model_train_epoch(a, &data, e, NULL, &ma, &err), DSNN_OK);
    }
    FILE *f_ck = tmpfile();
    CU_ASSERT_PTR_NOT_NULL_FATAL(f_ck);
    CU_ASSERT_EQUAL_FATAL(dsnn_base_model_save(a, f_ck, &err), DSNN_OK);
    int64_t step_at_ck = dsnn_base_model_step(a);
    CU_ASSERT_EQUAL(step_at_ck, 2 * 6);
    for (int e = 2; e < 4; e++) {
        dsnn_metrics_clear(&ma);
        CU_ASSERT_EQUAL_FATAL(dsnn_base_model_train_epoch(a, &data, e, NULL, &ma, &err), DSNN_OK);
    }

    /* B: another seed (other initial weights), restored from the checkpoint, epochs 2, 3. */
    struct dsnn_base_model *b = base_model_new(cfg, 7, &data.info);
    CU_ASSERT_FALSE(same_params(dsnn_base_model_net(a), dsnn_base_model_net(b), false));
    rewind(f_ck);
    enum dsnn_status st = dsnn_base_model_load(b, f_ck, &err);
    if (st != DSNN_OK)
        fprintf(stderr, "\n    load: %s\n", err.msg);
    CU_ASSERT_EQUAL_FATAL(st, DSNN_OK);
    CU_ASSERT_EQUAL(dsnn_base_model_step(b), step_at_ck);
    for (int e = 2; e < 4; e++) {
        dsnn_metrics_clear(&mb);
        CU_ASSERT_EQUAL_FATAL(dsnn_base_model_train_epoch(b, &data, e, NULL, &mb, &err), DSNN_OK);
    }
    /* Bit-identical weights, optimizer state, metrics and step count. */
    CU_ASSERT_TRUE(same_params(dsnn_base_model_net(a), dsnn_base_model_net(b), true));
    CU_ASSERT_EQUAL(dsnn_base_model_step(a), dsnn_base_model_step(b));
    CU_ASSERT_EQUAL(dsnn_base_model_step(a), 4 * 6);
    CU_ASSERT_EQUAL(ma.n, mb.n);
    for (size_t i = 0; i < ma.n && i < mb.n; i++) {
        CU_ASSERT_STRING_EQUAL(ma.items[i].name, mb.items[i].name);
        CU_ASSERT_EQUAL(memcmp(&ma.items[i].value, &mb.items[i].value, sizeof(double)), 0);
    }
    CU_ASSERT_EQUAL(dsnn_optim_lr(dsnn_base_model_optim(a)), dsnn_optim_lr(dsnn_base_model_optim(b)));
    /* Evaluation agrees too. */
    dsnn_metrics_clear(&ma);
    dsnn_metrics_clear(&mb);
    CU_ASSERT_EQUAL(dsnn_base_model_evaluate(a, &data, DSNN_SPLIT_TEST, &ma, &err), DSNN_OK);
    CU_ASSERT_EQUAL(dsnn_base_model_evaluate(b, &data, DSNN_SPLIT_TEST, &mb, &err), DSNN_OK);
    CU_ASSERT_EQUAL(metric(&ma, "val_loss"), metric(&mb, "val_loss"));

    /* A truncated or foreign checkpoint is refused. */
    fseek(f_ck, 0, SEEK_END);
    long full = ftell(f_ck);
    char *buf = malloc((size_t)full);
    rewind(f_ck);
    CU_ASSERT_EQUAL((long)fread(buf, 1, (size_t)full, f_ck), full);
    FILE *t = tmpfile();
    fwrite(buf, 1, (size_t)full - 3, t);
    rewind(t);
    memset(&err, 0, sizeof err);
    CU_ASSERT_EQUAL(dsnn_base_model_load(b, t, &err), DSNN_ERR_FORMAT);
    ASSERT_HAS(err.msg, "truncated");
    fclose(t);
    t = tmpfile();
    buf[0] = 'X';
    fwrite(buf, 1, (size_t)full, t);
    rewind(t);
    memset(&err, 0, sizeof err);
    CU_ASSERT_EQUAL(dsnn_base_model_load(b, t, &err), DSNN_ERR_FORMAT);
    ASSERT_HAS(err.msg, "BMOD");
    fclose(t);
    free(buf);
    fclose(f_ck);
    base_model_free(a);
    base_model_free(b);
    mem_close(&ds);
    dsnn_config_file_free(f);
}

static void test_base_model_resume_sgd(void)
{
    check_resume("model = { optim_alg = \"SGD\"; learning_rate = 0.1; momentum = 0.9;\n"
                 "          nesterov_momentum = true; weight_decay = 0.0005;\n"
                 "          lr_scheduler = \"StepLR\"; lr_step_size = 1; lr_gamma = 0.5; };\n");
}

static void test_base_model_resume_adam(void)
{
    check_resume("model = { optim_alg = \"Adam\"; learning_rate = 0.01; weight_decay = 0.001;\n"
                 "          lr_scheduler = \"MultiStepLR\"; lr_milestones = [1, 3]; };\n");
}

static void test_base_model_metrics(void)
{
    struct dsnn_config_file *f = parse("model = { learning_rate = 0.2; lr_scheduler = \"StepLR\";"
                                       " lr_step_size = 2; lr_gamma = 0.1; };\n");
    const struct dsnn_cfg *cfg = dsnn_cfg_group(dsnn_config_file_root(f), "model");
    struct mem_ds ds;
    struct dsnn_data data = mem_open(&ds, 64, 32, 16, 3);
    struct dsnn_base_model *bm = base_model_new(cfg, 1, &data.info);
    struct dsnn_error err = {0};
    static const double lr[] = {0.2, 0.2, 0.02, 0.02, 0.002};
    for (int e = 0; e < 5; e++) {
        struct dsnn_metrics m;
        dsnn_metrics_clear(&m);
        CU_ASSERT_EQUAL(dsnn_base_model_train_epoch(bm, &data, e, NULL, &m, &err), DSNN_OK);
        CU_ASSERT_DOUBLE_EQUAL(metric(&m, "learning_rate"), lr[e], 1e-15);
        CU_ASSERT_DOUBLE_EQUAL(dsnn_optim_lr(dsnn_base_model_optim(bm)), lr[e], 1e-15);
        CU_ASSERT_TRUE(dsnn_metrics_get(&m, "train_loss", NULL));
        CU_ASSERT_TRUE(dsnn_metrics_get(&m, "train_acc", NULL));
    }
    CU_ASSERT_EQUAL(dsnn_base_model_step(bm), 5 * 4);
    struct dsnn_metrics m;
    dsnn_metrics_clear(&m);
    CU_ASSERT_EQUAL(dsnn_base_model_evaluate(bm, &data, DSNN_SPLIT_TEST, &m, &err), DSNN_OK);
    CU_ASSERT_EQUAL(dsnn_base_model_evaluate(bm, &data, DSNN_SPLIT_TRAIN, &m, &err), DSNN_OK);
    CU_ASSERT_TRUE(dsnn_metrics_get(&m, "val_acc", NULL));
    CU_ASSERT_TRUE(dsnn_metrics_get(&m, "val_loss", NULL));
    CU_ASSERT_TRUE(dsnn_metrics_get(&m, "train_eval_acc", NULL));
    CU_ASSERT_TRUE(dsnn_metrics_get(&m, "train_eval_loss", NULL));
    CU_ASSERT_EQUAL(dsnn_base_model_evaluate(bm, &data, DSNN_SPLIT_NOISE, &m, &err),
                    DSNN_ERR_INVALID); /* no noise split here */
    base_model_free(bm);
    mem_close(&ds);
    dsnn_config_file_free(f);
}

/* ---- metrics ---- */

static void test_metrics(void)
{
    static struct dsnn_metrics m; /* large: not on the stack twice */
    dsnn_metrics_clear(&m);
    CU_ASSERT_EQUAL(m.n, 0);
    CU_ASSERT_FALSE(dsnn_metrics_get(&m, "x", NULL));
    CU_ASSERT_EQUAL(dsnn_metrics_set(&m, "train_loss", 1.5), DSNN_OK);
    CU_ASSERT_EQUAL(dsnn_metrics_set(&m, "val_acc", 0.25), DSNN_OK);
    CU_ASSERT_EQUAL(dsnn_metrics_set(&m, "train_loss", 0.5), DSNN_OK); /* overwrite in place */
    CU_ASSERT_EQUAL(m.n, 2);
    CU_ASSERT_STRING_EQUAL(m.items[0].name, "train_loss");
    CU_ASSERT_EQUAL(m.items[0].value, 0.5);
    double v = 0;
    CU_ASSERT_TRUE(dsnn_metrics_get(&m, "val_acc", &v));
    CU_ASSERT_EQUAL(v, 0.25);
    CU_ASSERT_EQUAL(dsnn_metrics_setf(&m, 0.1, "density_%s", "fc1"), DSNN_OK);
    CU_ASSERT_TRUE(dsnn_metrics_get(&m, "density_fc1", &v));
    CU_ASSERT_EQUAL(v, 0.1);
    /* Names up to DSNN_METRIC_NAME_MAX - 1 characters. */
    char name[DSNN_METRIC_NAME_MAX + 8];
    memset(name, 'n', sizeof name);
    name[DSNN_METRIC_NAME_MAX - 1] = '\0';
    CU_ASSERT_EQUAL(dsnn_metrics_set(&m, name, 1), DSNN_OK);
    CU_ASSERT_EQUAL(dsnn_metrics_setf(&m, 2, "%s", name), DSNN_OK);
    CU_ASSERT_TRUE(dsnn_metrics_get(&m, name, &v));
    CU_ASSERT_EQUAL(v, 2);
    name[DSNN_METRIC_NAME_MAX - 1] = 'n';
    name[DSNN_METRIC_NAME_MAX] = '\0';
    CU_ASSERT_EQUAL(dsnn_metrics_set(&m, name, 1), DSNN_ERR_INVALID);
    CU_ASSERT_EQUAL(dsnn_metrics_setf(&m, 1, "%s", name), DSNN_ERR_INVALID);
    CU_ASSERT_EQUAL(dsnn_metrics_set(&m, NULL, 1), DSNN_ERR_INVALID);
    /* A full table refuses new names but still updates existing ones. */
    dsnn_metrics_clear(&m);
    for (int i = 0; i < DSNN_METRICS_MAX; i++)
        CU_ASSERT_EQUAL(dsnn_metrics_setf(&m, i, "m%d", i), DSNN_OK);
    CU_ASSERT_EQUAL(m.n, DSNN_METRICS_MAX);
    CU_ASSERT_EQUAL(dsnn_metrics_set(&m, "one_more", 1), DSNN_ERR_INVALID);
    CU_ASSERT_EQUAL(dsnn_metrics_set(&m, "m7", -7), DSNN_OK);
    CU_ASSERT_TRUE(dsnn_metrics_get(&m, "m7", &v));
    CU_ASSERT_EQUAL(v, -7);
    /* Plain data: a copy is independent. */
    static struct dsnn_metrics c;
    c = m;
    dsnn_metrics_set(&c, "m0", 100);
    CU_ASSERT_TRUE(dsnn_metrics_get(&m, "m0", &v));
    CU_ASSERT_EQUAL(v, 0);
}

static CU_TestInfo tests[] = {
    {"softmax xent vs naive", test_xent_vs_naive},
    {"softmax xent split over threads", test_xent_threads},
    {"softmax xent with large logits", test_xent_large_logits},
    {"softmax xent gradient vs finite differences", test_xent_fd},
    {"softmax xent label out of range", test_xent_bad_label},
    {"train epoch: softmax regression learns", test_train_epoch_learns},
    {"train epoch: MLP + Adam learns", test_train_epoch_mlp},
    {"train epoch: errors", test_train_epoch_errors},
    {"train epoch: deterministic", test_train_order_deterministic},
    {"base model: checkpoint resume is exact (SGD)", test_base_model_resume_sgd},
    {"base model: checkpoint resume is exact (Adam)", test_base_model_resume_adam},
    {"base model: LR schedule and metrics", test_base_model_metrics},
    {"metrics table", test_metrics},
    CU_TEST_INFO_NULL,
};

DSNN_TEST_MAIN("train", tests)
