/* tests/unit/test_layers.c - dense layers and the network (sdk/src/layers/linear.c, relu.c, flatten.c,
 * net.c, layer.c).
 *
 * Every op is checked against a naive loop in double (forward and the analytic gradients) and its
 * backward against central finite differences of a scalar loss evaluated with the layer's own
 * float forward. The finite differences use the perturbation actually representable in float
 * ((float)(w + h) - w), so that only the rounding of the forward pass limits their accuracy.
 * The network is checked end to end: an MLP's gradients against finite differences of the mean
 * softmax cross-entropy, the build-time shape checks, checkpoints. */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dsnn/layer.h"
#include "dsnn/net.h"
#include "dsnn/rng.h"
#include "dsnn/status.h"
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

/* ---- helpers ---- */

static void fill(float *p, size_t n, struct dsnn_rng *r, float scale)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (float)((2 * dsnn_rng_uniform(r) - 1) * scale);
}

/* Largest violation of |got - want| <= atol + rtol |want| over n values (0 when all pass);
 * reports the worst index. */
static double worst(const float *got, const double *want, size_t n, double atol, double rtol,
                    size_t *at)
{
    double w = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)got[i] - want[i]) - (atol + rtol * fabs(want[i]));
        if (!(e <= w)) { /* also catches NaN */
            w = isnan(e) ? INFINITY : e;
            if (at)
                *at = i;
        }
    }
    return w;
}

#define ASSERT_CLOSE(got, want, n, atol, rtol, what)                                               \
    do {                                                                                           \
        size_t at_ = 0;                                                                            \
        double w_ = worst((got), (want), (n), (atol), (rtol), &at_);                               \
        if (w_ > 0)                                                                                \
            fprintf(stderr, "\n    %s:%d: %s[%zu] = %.9g, want %.9g\n", __FILE__, __LINE__,        \
                    (what), at_, (double)(got)[at_], (want)[at_]);                                 \
        CU_ASSERT(w_ == 0);                                                                        \
    } while (0)

static struct dsnn_layer *new_linear(const char *name, int n_in, int n_out, bool bias,
                                     uint64_t seed)
{
    struct dsnn_error err = {0};
    struct dsnn_layer *l = dsnn_linear_new(name, n_in, n_out, bias, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(l);
    struct dsnn_rng r;
    dsnn_rng_seed(&r, seed, DSNN_RNG_STREAM_INIT);
    CU_ASSERT_EQUAL_FATAL(l->ops->init(l, &r, &err), DSNN_OK);
    l->initialized = true;
    return l;
}

/* L = sum c .* f(x) in double, with the layer's float forward. */
static double weighted_output(struct dsnn_layer *l, const float *x, float *y, const float *c,
                              int batch)
{
    CU_ASSERT_EQUAL(l->ops->forward(l, x, y, batch, true, NULL), DSNN_OK);
    size_t n = (size_t)batch * (size_t)dsnn_shape_size(l->out);
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += (double)c[i] * (double)y[i];
    return s;
}

/* Central difference of weighted_output with respect to *p. */
static double fd(struct dsnn_layer *l, float *p, const float *x, float *y, const float *c,
                 int batch, double h)
{
    float orig = *p;
    float up = (float)(orig + h), dn = (float)(orig - h);
    *p = up;
    double lu = weighted_output(l, x, y, c, batch);
    *p = dn;
    double ld = weighted_output(l, x, y, c, batch);
    *p = orig;
    return (lu - ld) / ((double)up - (double)dn);
}

/* ---- linear ---- */

static void naive_linear(const float *x, const float *w, const float *b, int batch, int n_in,
                         int n_out, double *y)
{
    for (int s = 0; s < batch; s++)
        for (int o = 0; o < n_out; o++) {
            double acc = b ? b[o] : 0;
            for (int i = 0; i < n_in; i++)
                acc += (double)x[s * n_in + i] * w[o * n_in + i];
            y[s * n_out + o] = acc;
        }
}

static void check_linear_forward(int batch, int n_in, int n_out, bool bias)
{
    struct dsnn_layer *l = new_linear("fc", n_in, n_out, bias, 11 + (uint64_t)n_in);
    struct dsnn_rng r;
    dsnn_rng_seed(&r, 5, 99);
    float *x = malloc(sizeof(float) * (size_t)(batch * n_in));
    float *y = malloc(sizeof(float) * (size_t)(batch * n_out));
    double *want = malloc(sizeof(double) * (size_t)(batch * n_out));
    fill(x, (size_t)(batch * n_in), &r, 1);
    CU_ASSERT_EQUAL(l->ops->forward(l, x, y, batch, false, NULL), DSNN_OK);
    naive_linear(x, dsnn_linear_weight(l), bias ? dsnn_linear_bias(l) : NULL, batch, n_in, n_out,
                 want);
    ASSERT_CLOSE(y, want, (size_t)(batch * n_out), 1e-5, 1e-5, "linear y");
    free(x);
    free(y);
    free(want);
    dsnn_layer_free(l);
}

static void test_linear_forward(void)
{
    check_linear_forward(5, 7, 4, true);
    check_linear_forward(5, 7, 4, false);
    check_linear_forward(1, 1, 1, true);
    check_linear_forward(1, 300, 2, true);
    check_linear_forward(33, 70, 17, true);
    check_linear_forward(64, 128, 96, false);
}

static void check_linear_backward_fd(int batch, int n_in, int n_out, bool bias, bool fd_check)
{
    struct dsnn_layer *l = new_linear("fc", n_in, n_out, bias, 3);
    struct dsnn_rng r;
    dsnn_rng_seed(&r, 8, 1);
    size_t nx = (size_t)(batch * n_in), ny = (size_t)(batch * n_out), nw = (size_t)(n_in * n_out);
    float *x = malloc(sizeof(float) * nx), *dx = malloc(sizeof(float) * nx);
    float *y = malloc(sizeof(float) * ny), *dy = malloc(sizeof(float) * ny);
    double *want = malloc(sizeof(double) * (nx > nw ? nx : nw));
    fill(x, nx, &r, 1);
    fill(dy, ny, &r, 1);
    float *w = dsnn_linear_weight(l), *b = dsnn_linear_bias(l);
    CU_ASSERT_EQUAL(l->n_params, bias ? 2u : 1u);
    float *dw = l->params[0].grad, *db = bias ? l->params[1].grad : NULL;
    /* Stale values in the gradients must be overwritten, not accumulated. */
    for (size_t i = 0; i < nw; i++)
        dw[i] = 1e3f;
    for (int o = 0; bias && o < n_out; o++)
        db[o] = -1e3f;
    CU_ASSERT_EQUAL(l->ops->forward(l, x, y, batch, true, NULL), DSNN_OK);
    CU_ASSERT_EQUAL(l->ops->backward(l, x, y, dy, dx, batch, NULL), DSNN_OK);

    /* Against the formulas: dW = dy^T x, db = sum dy, dx = dy W. */
    for (int o = 0; o < n_out; o++)
        for (int i = 0; i < n_in; i++) {
            double acc = 0;
            for (int s = 0; s < batch; s++)
                acc += (double)dy[s * n_out + o] * x[s * n_in + i];
            want[o * n_in + i] = acc;
        }
    ASSERT_CLOSE(dw, want, nw, 1e-5, 1e-5, "dW");
    if (bias) {
        for (int o = 0; o < n_out; o++) {
            double acc = 0;
            for (int s = 0; s < batch; s++)
                acc += dy[s * n_out + o];
            want[o] = acc;
        }
        ASSERT_CLOSE(db, want, (size_t)n_out, 1e-5, 1e-5, "db");
    }
    for (int s = 0; s < batch; s++)
        for (int i = 0; i < n_in; i++) {
            double acc = 0;
            for (int o = 0; o < n_out; o++)
                acc += (double)dy[s * n_out + o] * w[o * n_in + i];
            want[s * n_in + i] = acc;
        }
    ASSERT_CLOSE(dx, want, nx, 1e-5, 1e-5, "dx");

    /* Against finite differences of L = sum dy .* y (checked in double). */
    const double h = 1e-2, atol = 2e-3, rtol = 2e-3;
    for (size_t k = 0; fd_check && k < nw; k++)
        want[k] = fd(l, &w[k], x, y, dy, batch, h);
    if (fd_check)
        ASSERT_CLOSE(dw, want, nw, atol, rtol, "dW (fd)");
    if (fd_check && bias) {
        for (int o = 0; o < n_out; o++)
            want[o] = fd(l, &b[o], x, y, dy, batch, h);
        ASSERT_CLOSE(db, want, (size_t)n_out, atol, rtol, "db (fd)");
    }
    for (size_t k = 0; fd_check && k < nx; k++)
        want[k] = fd(l, &x[k], x, y, dy, batch, h);
    if (fd_check)
        ASSERT_CLOSE(dx, want, nx, atol, rtol, "dx (fd)");

    /* dx may be NULL (first layer): parameter gradients only. */
    memset(dw, 0, sizeof(float) * nw);
    CU_ASSERT_EQUAL(l->ops->forward(l, x, y, batch, true, NULL), DSNN_OK);
    CU_ASSERT_EQUAL(l->ops->backward(l, x, y, dy, NULL, batch, NULL), DSNN_OK);
    for (int o = 0; o < n_out; o++)
        for (int i = 0; i < n_in; i++) {
            double acc = 0;
            for (int s = 0; s < batch; s++)
                acc += (double)dy[s * n_out + o] * x[s * n_in + i];
            want[o * n_in + i] = acc;
        }
    ASSERT_CLOSE(dw, want, nw, 1e-5, 1e-5, "dW (dx NULL)");
    free(x);
    free(dx);
    free(y);
    free(dy);
    free(want);
    dsnn_layer_free(l);
}

static void check_linear_backward(int batch, int n_in, int n_out, bool bias)
{
    check_linear_backward_fd(batch, n_in, n_out, bias, true);
}

/* Products of 4 MFLOP and more are split over the OpenMP threads (rows of the result, or
 * columns when it has fewer rows): every shape of the three products, for 1 to 3 threads. */
static void test_linear_split_products(void)
{
    for (int t = 1; t <= 3; t++) {
        dsnn_set_num_threads(t);
        check_linear_forward(512, 128, 64, true); /* y: split rows */
        check_linear_forward(100, 300, 200, true); /* y: split columns */
        check_linear_backward_fd(512, 128, 64, true, false); /* dW columns, dx rows */
        check_linear_backward_fd(100, 300, 200, false, false); /* dW, dx columns */
        check_linear_backward_fd(40, 999, 61, true, false); /* uneven slices */
    }
    dsnn_set_num_threads(0);
}

static void test_linear_backward(void)
{
    check_linear_backward(4, 6, 3, true);
    check_linear_backward(4, 6, 3, false);
    check_linear_backward(1, 5, 1, true);
    check_linear_backward(9, 13, 11, true);
}

static void test_linear_api(void)
{
    struct dsnn_error err = {0};
    CU_ASSERT_PTR_NULL(dsnn_linear_new("bad", 0, 3, true, &err));
    CU_ASSERT_EQUAL(err.status, DSNN_ERR_INVALID);
    ASSERT_HAS(err.msg, "bad");
    CU_ASSERT_PTR_NULL(dsnn_linear_new("bad", 3, -1, true, &err));

    struct dsnn_layer *l = dsnn_linear_new("fc1", 10, 4, true, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(l);
    CU_ASSERT_STRING_EQUAL(l->name, "fc1");
    CU_ASSERT_TRUE(dsnn_layer_is(l, "linear"));
    CU_ASSERT_FALSE(dsnn_layer_is(l, "relu"));
    CU_ASSERT(l->in.c == 10 && l->in.h == 1 && l->in.w == 1);
    CU_ASSERT(l->out.c == 4 && l->out.h == 1 && l->out.w == 1);
    int n_in = 0, n_out = 0;
    bool bias = false;
    CU_ASSERT_TRUE(dsnn_linear_dims(l, &n_in, &n_out, &bias));
    CU_ASSERT(n_in == 10 && n_out == 4 && bias);
    CU_ASSERT_TRUE(dsnn_linear_dims(l, NULL, NULL, NULL));
    /* No parameter memory before init. */
    CU_ASSERT_PTR_NULL(dsnn_linear_weight(l));
    CU_ASSERT_PTR_NULL(dsnn_linear_bias(l));
    CU_ASSERT_EQUAL(dsnn_layer_param_count(l), 0);

    struct dsnn_rng r;
    dsnn_rng_seed(&r, 1, DSNN_RNG_STREAM_INIT);
    CU_ASSERT_EQUAL(l->ops->init(l, &r, &err), DSNN_OK);
    l->initialized = true;
    CU_ASSERT_EQUAL(dsnn_layer_param_count(l), 44);
    CU_ASSERT_STRING_EQUAL(l->params[0].name, "weight");
    CU_ASSERT_STRING_EQUAL(l->params[1].name, "bias");
    CU_ASSERT_EQUAL(l->params[0].n, 40);
    CU_ASSERT_EQUAL(l->params[1].n, 4);
    CU_ASSERT(l->params[0].capacity >= 40);
    CU_ASSERT_PTR_EQUAL(dsnn_linear_weight(l), l->params[0].value);
    CU_ASSERT_PTR_EQUAL(dsnn_linear_bias(l), l->params[1].value);
    /* Kaiming uniform (PyTorch's nn.Linear): weights and biases within 1/sqrt(fan_in). */
    float bound = 1.0f / sqrtf(10.0f);
    bool in_bound = true, nonzero = false;
    for (int i = 0; i < 40; i++) {
        in_bound &= fabsf(l->params[0].value[i]) <= bound;
        nonzero |= l->params[0].value[i] != 0;
    }
    for (int i = 0; i < 4; i++)
        in_bound &= fabsf(l->params[1].value[i]) <= bound;
    CU_ASSERT_TRUE(in_bound);
    CU_ASSERT_TRUE(nonzero);
    dsnn_layer_free(l);

    /* No bias: one block. Zero init. Other layers are not linear. */
    l = dsnn_linear_new(NULL, 3, 2, false, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(l);
    CU_ASSERT_STRING_EQUAL(l->name, "linear");
    dsnn_linear_set_init(l, DSNN_INIT_ZERO, 0);
    CU_ASSERT_EQUAL(l->ops->init(l, &r, &err), DSNN_OK);
    l->initialized = true;
    CU_ASSERT_EQUAL(l->n_params, 1);
    CU_ASSERT_PTR_NULL(dsnn_linear_bias(l));
    bool zero = true;
    for (int i = 0; i < 6; i++)
        zero &= dsnn_linear_weight(l)[i] == 0.0f;
    CU_ASSERT_TRUE(zero);
    dsnn_layer_free(l);

    struct dsnn_layer *relu = dsnn_relu_new("r", (struct dsnn_shape){3, 1, 1}, &err);
    CU_ASSERT_PTR_NULL(dsnn_linear_weight(relu));
    CU_ASSERT_FALSE(dsnn_linear_dims(relu, &n_in, &n_out, &bias));
    dsnn_linear_set_init(relu, DSNN_INIT_ZERO, 0); /* ignored */
    dsnn_layer_free(relu);
    dsnn_layer_free(NULL);
    CU_ASSERT_FALSE(dsnn_layer_is(NULL, "linear"));
    CU_ASSERT_EQUAL(dsnn_layer_param_count(NULL), 0);

    /* The same init stream gives the same weights. */
    struct dsnn_layer *a = new_linear("a", 20, 7, true, 77), *b = new_linear("b", 20, 7, true, 77);
    struct dsnn_layer *c = new_linear("c", 20, 7, true, 78);
    CU_ASSERT_EQUAL(memcmp(dsnn_linear_weight(a), dsnn_linear_weight(b), 140 * sizeof(float)), 0);
    CU_ASSERT_EQUAL(memcmp(dsnn_linear_bias(a), dsnn_linear_bias(b), 7 * sizeof(float)), 0);
    CU_ASSERT_NOT_EQUAL(memcmp(dsnn_linear_weight(a), dsnn_linear_weight(c), 140 * sizeof(float)),
                        0);
    dsnn_layer_free(a);
    dsnn_layer_free(b);
    dsnn_layer_free(c);
}

/* ---- relu, flatten ---- */

static void test_relu(void)
{
    struct dsnn_error err = {0};
    struct dsnn_shape sh = {2, 3, 2};
    struct dsnn_layer *l = dsnn_relu_new("relu1", sh, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(l);
    CU_ASSERT_TRUE(dsnn_layer_is(l, "relu"));
    CU_ASSERT(l->out.c == 2 && l->out.h == 3 && l->out.w == 2);
    struct dsnn_rng r;
    dsnn_rng_seed(&r, 4, 4);
    CU_ASSERT_EQUAL(dsnn_layer_init(l, &r, &err), DSNN_OK);
    CU_ASSERT_EQUAL(dsnn_layer_param_count(l), 0);
    enum { B = 3, N = B * 12 };
    float x[N], y[N], dy[N], dx[N];
    double want[N];
    /* Values away from the kink at 0, so that finite differences do not cross it; plus exact
     * zeros, whose gradient is 0 (PyTorch's convention). */
    for (int i = 0; i < N; i++) {
        float v = (float)(0.05 + 0.95 * dsnn_rng_uniform(&r));
        x[i] = i % 2 ? v : -v;
    }
    x[4] = 0.0f;
    x[7] = -0.0f;
    fill(dy, N, &r, 1);
    CU_ASSERT_EQUAL(l->ops->forward(l, x, y, B, true, NULL), DSNN_OK);
    for (int i = 0; i < N; i++)
        want[i] = x[i] > 0 ? x[i] : 0;
    ASSERT_CLOSE(y, want, N, 0, 0, "relu y");
    CU_ASSERT_EQUAL(l->ops->backward(l, x, y, dy, dx, B, NULL), DSNN_OK);
    for (int i = 0; i < N; i++)
        want[i] = x[i] > 0 ? dy[i] : 0;
    ASSERT_CLOSE(dx, want, N, 0, 0, "relu dx");
    for (int i = 0; i < N; i++)
        want[i] = i == 4 || i == 7 ? 0 : fd(l, &x[i], x, y, dy, B, 1e-3);
    ASSERT_CLOSE(dx, want, N, 1e-3, 1e-3, "relu dx (fd)");
    CU_ASSERT_EQUAL(l->ops->backward(l, x, y, dy, NULL, B, NULL), DSNN_OK);
    /* In place (y == x) works for the forward. */
    memcpy(y, x, sizeof x);
    CU_ASSERT_EQUAL(l->ops->forward(l, y, y, B, false, NULL), DSNN_OK);
    for (int i = 0; i < N; i++)
        want[i] = x[i] > 0 ? x[i] : 0;
    ASSERT_CLOSE(y, want, N, 0, 0, "relu in place");
    dsnn_layer_free(l);
    l = dsnn_relu_new(NULL, sh, &err);
    CU_ASSERT_STRING_EQUAL(l->name, "relu");
    dsnn_layer_free(l);
}

static void test_flatten(void)
{
    struct dsnn_error err = {0};
    struct dsnn_shape sh = {2, 3, 4};
    struct dsnn_layer *l = dsnn_flatten_new("flat", sh, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(l);
    CU_ASSERT_TRUE(dsnn_layer_is(l, "flatten"));
    CU_ASSERT(l->in.c == 2 && l->in.h == 3 && l->in.w == 4);
    CU_ASSERT(l->out.c == 24 && l->out.h == 1 && l->out.w == 1);
    struct dsnn_rng r;
    dsnn_rng_seed(&r, 4, 5);
    CU_ASSERT_EQUAL(dsnn_layer_init(l, &r, &err), DSNN_OK);
    enum { B = 3, N = B * 24 };
    float x[N], y[N], dy[N], dx[N];
    double want[N];
    fill(x, N, &r, 2);
    fill(dy, N, &r, 2);
    CU_ASSERT_EQUAL(l->ops->forward(l, x, y, B, true, NULL), DSNN_OK);
    CU_ASSERT_EQUAL(memcmp(x, y, sizeof x), 0);
    CU_ASSERT_EQUAL(l->ops->backward(l, x, y, dy, dx, B, NULL), DSNN_OK);
    CU_ASSERT_EQUAL(memcmp(dx, dy, sizeof dx), 0);
    for (int i = 0; i < N; i++)
        want[i] = fd(l, &x[i], x, y, dy, B, 1e-2);
    ASSERT_CLOSE(dx, want, N, 1e-3, 1e-3, "flatten dx (fd)");
    CU_ASSERT_EQUAL(l->ops->backward(l, x, y, dy, NULL, B, NULL), DSNN_OK);
    dsnn_layer_free(l);
}

/* ---- the network ---- */

#define IN_C 2
#define IN_H 2
#define IN_W 3
#define N_IN (IN_C * IN_H * IN_W)
#define H1 8
#define H2 6
#define N_CLASSES 4

/* flatten -> fc1 -> relu1 -> fc2 -> relu2 -> output */
static struct dsnn_net *build_mlp(uint64_t seed, int max_batch)
{
    struct dsnn_error err = {0};
    struct dsnn_shape in = {IN_C, IN_H, IN_W};
    struct dsnn_net *net = dsnn_net_new(in, N_CLASSES, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(net);
    enum dsnn_status st = DSNN_OK;
    st = st ? st : dsnn_net_add(net, dsnn_flatten_new("flatten", in, &err), &err);
    st = st ? st : dsnn_net_add(net, dsnn_linear_new("fc1", N_IN, H1, true, &err), &err);
    st = st ? st
            : dsnn_net_add(net, dsnn_relu_new("relu1", (struct dsnn_shape){H1, 1, 1}, &err), &err);
    st = st ? st : dsnn_net_add(net, dsnn_linear_new("fc2", H1, H2, true, &err), &err);
    st = st ? st
            : dsnn_net_add(net, dsnn_relu_new("relu2", (struct dsnn_shape){H2, 1, 1}, &err), &err);
    st = st ? st : dsnn_net_add(net, dsnn_linear_new("output", H2, N_CLASSES, true, &err), &err);
    if (st != DSNN_OK)
        fprintf(stderr, "\n    build: %s\n", err.msg);
    CU_ASSERT_EQUAL_FATAL(st, DSNN_OK);
    if (max_batch > 0) {
        struct dsnn_rng r;
        dsnn_rng_seed(&r, seed, DSNN_RNG_STREAM_INIT);
        st = dsnn_net_init(net, &r, max_batch, &err);
        if (st != DSNN_OK)
            fprintf(stderr, "\n    init: %s\n", err.msg);
        CU_ASSERT_EQUAL_FATAL(st, DSNN_OK);
    }
    return net;
}

/* Naive forward of build_mlp in double; h1, h2 (post-ReLU) and logits. */
static void naive_mlp(struct dsnn_net *net, const float *x, int batch, double *h1, double *h2,
                      double *logits)
{
    float *w1 = dsnn_linear_weight(dsnn_net_layer(net, 1)),
          *b1 = dsnn_linear_bias(dsnn_net_layer(net, 1));
    float *w2 = dsnn_linear_weight(dsnn_net_layer(net, 3)),
          *b2 = dsnn_linear_bias(dsnn_net_layer(net, 3));
    float *w3 = dsnn_linear_weight(dsnn_net_layer(net, 5)),
          *b3 = dsnn_linear_bias(dsnn_net_layer(net, 5));
    for (int s = 0; s < batch; s++) {
        for (int o = 0; o < H1; o++) {
            double a = b1[o];
            for (int i = 0; i < N_IN; i++)
                a += (double)w1[o * N_IN + i] * x[s * N_IN + i];
            h1[s * H1 + o] = a > 0 ? a : 0;
        }
        for (int o = 0; o < H2; o++) {
            double a = b2[o];
            for (int i = 0; i < H1; i++)
                a += w2[o * H1 + i] * h1[s * H1 + i];
            h2[s * H2 + o] = a > 0 ? a : 0;
        }
        for (int o = 0; o < N_CLASSES; o++) {
            double a = b3[o];
            for (int i = 0; i < H2; i++)
                a += w3[o * H2 + i] * h2[s * H2 + i];
            logits[s * N_CLASSES + o] = a;
        }
    }
}

static void test_net_forward(void)
{
    enum { B = 7 };
    struct dsnn_net *net = build_mlp(21, 16);
    CU_ASSERT_EQUAL(dsnn_net_n_layers(net), 6);
    CU_ASSERT_TRUE(dsnn_net_initialized(net));
    CU_ASSERT_EQUAL(dsnn_net_n_classes(net), N_CLASSES);
    struct dsnn_shape in = dsnn_net_input_shape(net);
    CU_ASSERT(in.c == IN_C && in.h == IN_H && in.w == IN_W);
    CU_ASSERT_EQUAL(dsnn_net_param_count(net),
                    N_IN * H1 + H1 + H1 * H2 + H2 + H2 * N_CLASSES + N_CLASSES);
    CU_ASSERT_STRING_EQUAL(dsnn_net_layer(net, 3)->name, "fc2");
    CU_ASSERT_PTR_NULL(dsnn_net_layer(net, 6));
    struct dsnn_rng r;
    dsnn_rng_seed(&r, 2, 2);
    float x[B * N_IN];
    fill(x, B * N_IN, &r, 2);
    struct dsnn_error err = {0};
    const float *logits = dsnn_net_forward(net, x, B, false, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(logits);
    double h1[B * H1], h2[B * H2], want[B * N_CLASSES];
    naive_mlp(net, x, B, h1, h2, want);
    ASSERT_CLOSE(logits, want, B * N_CLASSES, 1e-5, 1e-5, "logits");
    /* Activations of every layer. */
    CU_ASSERT_EQUAL(memcmp(dsnn_net_activation(net, 0), x, sizeof x), 0);
    ASSERT_CLOSE(dsnn_net_activation(net, 2), h1, B * H1, 1e-5, 1e-5, "relu1");
    ASSERT_CLOSE(dsnn_net_activation(net, 4), h2, B * H2, 1e-5, 1e-5, "relu2");
    CU_ASSERT_PTR_EQUAL(dsnn_net_activation(net, 5), logits);
    CU_ASSERT_PTR_NULL(dsnn_net_activation(net, 6));
    /* Some units are active and some are not (the check means something). */
    int active = 0;
    for (int i = 0; i < B * H1; i++)
        active += h1[i] > 0;
    CU_ASSERT(active > 0 && active < B * H1);
    /* A batch of one gives the same row. */
    const float *one = dsnn_net_forward(net, x + 3 * N_IN, 1, false, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(one);
    ASSERT_CLOSE(one, want + 3 * N_CLASSES, N_CLASSES, 1e-5, 1e-5, "logits (batch 1)");

    /* Refused batches. */
    CU_ASSERT_PTR_NULL(dsnn_net_forward(net, x, 17, false, &err));
    CU_ASSERT_EQUAL(err.status, DSNN_ERR_INVALID);
    ASSERT_HAS(err.msg, "17");
    CU_ASSERT_PTR_NULL(dsnn_net_forward(net, x, 0, false, &err));
    dsnn_net_free(net);
    dsnn_net_free(NULL);
}

/* Mean softmax cross-entropy of the net on (x, y), in double. */
static double net_loss(struct dsnn_net *net, const float *x, const int32_t *y, int batch)
{
    struct dsnn_error err = {0};
    const float *logits = dsnn_net_forward(net, x, batch, true, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(logits);
    double loss = 0;
    CU_ASSERT_EQUAL(dsnn_softmax_xent(logits, y, batch, N_CLASSES, NULL, &loss, NULL, &err),
                    DSNN_OK);
    return loss / batch;
}

static void test_net_backward_fd(void)
{
    enum { B = 6 };
    struct dsnn_net *net = build_mlp(5, B);
    struct dsnn_rng r;
    dsnn_rng_seed(&r, 3, 3);
    float x[B * N_IN];
    int32_t y[B];
    fill(x, B * N_IN, &r, 2);
    for (int i = 0; i < B; i++)
        y[i] = (int32_t)dsnn_rng_below(&r, N_CLASSES);
    struct dsnn_error err = {0};
    const float *logits = dsnn_net_forward(net, x, B, true, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(logits);
    float dlogits[B * N_CLASSES];
    double loss = 0;
    CU_ASSERT_EQUAL(dsnn_softmax_xent(logits, y, B, N_CLASSES, dlogits, &loss, NULL, &err),
                    DSNN_OK);
    CU_ASSERT_EQUAL_FATAL(dsnn_net_backward(net, dlogits, B, &err), DSNN_OK);
    /* Keep the gradients: finite differences run more forwards (not backwards). */
    float *grads[6][2] = {{NULL}};
    for (size_t li = 0; li < dsnn_net_n_layers(net); li++) {
        struct dsnn_layer *l = dsnn_net_layer(net, li);
        for (size_t k = 0; k < l->n_params; k++) {
            grads[li][k] = malloc(sizeof(float) * l->params[k].n);
            memcpy(grads[li][k], l->params[k].grad, sizeof(float) * l->params[k].n);
        }
    }
    const double h = 1e-3;
    size_t checked = 0;
    double max_grad = 0;
    for (size_t li = 0; li < dsnn_net_n_layers(net); li++) {
        struct dsnn_layer *l = dsnn_net_layer(net, li);
        for (size_t k = 0; k < l->n_params; k++) {
            struct dsnn_param_block *b = &l->params[k];
            double *want = malloc(sizeof(double) * b->n);
            for (size_t i = 0; i < b->n; i++) {
                float orig = b->value[i];
                float up = (float)(orig + h), dn = (float)(orig - h);
                b->value[i] = up;
                double lu = net_loss(net, x, y, B);
                b->value[i] = dn;
                double ld = net_loss(net, x, y, B);
                b->value[i] = orig;
                want[i] = (lu - ld) / ((double)up - (double)dn);
                max_grad = fmax(max_grad, fabs(want[i]));
            }
            char what[2 * DSNN_LAYER_NAME_MAX + 8];
            snprintf(what, sizeof what, "%s.%s grad", l->name, b->name);
            ASSERT_CLOSE(grads[li][k], want, b->n, 2e-4, 1e-2, what);
            checked += b->n;
            free(want);
            free(grads[li][k]);
        }
    }
    CU_ASSERT_EQUAL(checked, dsnn_net_param_count(net));
    CU_ASSERT(max_grad > 1e-2); /* the gradients are not trivially zero */

    /* Backward must match the last forward. */
    CU_ASSERT_PTR_NOT_NULL(dsnn_net_forward(net, x, B, true, &err));
    CU_ASSERT_EQUAL(dsnn_net_backward(net, dlogits, B - 1, &err), DSNN_ERR_INVALID);
    dsnn_net_free(net);
}

static void test_net_shape_checks(void)
{
    struct dsnn_error err = {0};
    struct dsnn_net *net = dsnn_net_new((struct dsnn_shape){12, 1, 1}, 3, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(net);

    /* The first layer must take the input shape: the message names the layer and "input". */
    CU_ASSERT_EQUAL(dsnn_net_add(net, dsnn_linear_new("fc0", 10, 8, true, &err), &err),
                    DSNN_ERR_INVALID);
    ASSERT_HAS(err.msg, "'fc0'");
    ASSERT_HAS(err.msg, "'input'");
    ASSERT_HAS(err.msg, "10x1x1");
    ASSERT_HAS(err.msg, "12x1x1");
    CU_ASSERT_EQUAL(dsnn_net_n_layers(net), 0);

    CU_ASSERT_EQUAL(dsnn_net_add(net, dsnn_linear_new("fc1", 12, 8, true, &err), &err), DSNN_OK);
    /* A mismatch between two layers names both. */
    memset(&err, 0, sizeof err);
    CU_ASSERT_EQUAL(dsnn_net_add(net, dsnn_linear_new("fc2", 10, 3, true, &err), &err),
                    DSNN_ERR_INVALID);
    CU_ASSERT_EQUAL(err.status, DSNN_ERR_INVALID);
    ASSERT_HAS(err.msg, "'fc2'");
    ASSERT_HAS(err.msg, "'fc1'");
    ASSERT_HAS(err.msg, "10x1x1");
    ASSERT_HAS(err.msg, "8x1x1");
    memset(&err, 0, sizeof err);
    CU_ASSERT_EQUAL(
        dsnn_net_add(net, dsnn_relu_new("act", (struct dsnn_shape){2, 2, 2}, &err), &err),
        DSNN_ERR_INVALID);
    ASSERT_HAS(err.msg, "2x2x2");
    /* A duplicate name. */
    memset(&err, 0, sizeof err);
    CU_ASSERT_EQUAL(
        dsnn_net_add(net, dsnn_relu_new("fc1", (struct dsnn_shape){8, 1, 1}, &err), &err),
        DSNN_ERR_INVALID);
    ASSERT_HAS(err.msg, "'fc1'");
    CU_ASSERT_EQUAL(dsnn_net_n_layers(net), 1);
    /* A NULL layer (a failed constructor). */
    CU_ASSERT_EQUAL(dsnn_net_add(net, NULL, &err), DSNN_ERR_INVALID);

    /* The net is still fine: finish it. */
    CU_ASSERT_EQUAL(
        dsnn_net_add(net, dsnn_relu_new("relu1", (struct dsnn_shape){8, 1, 1}, &err), &err),
        DSNN_OK);
    /* Wrong number of outputs is found at init. */
    CU_ASSERT_EQUAL(dsnn_net_add(net, dsnn_linear_new("out", 8, 5, true, &err), &err), DSNN_OK);
    struct dsnn_rng r;
    dsnn_rng_seed(&r, 1, 1);
    memset(&err, 0, sizeof err);
    CU_ASSERT_EQUAL(dsnn_net_init(net, &r, 4, &err), DSNN_ERR_INVALID);
    ASSERT_HAS(err.msg, "'out'");
    ASSERT_HAS(err.msg, "5");
    ASSERT_HAS(err.msg, "3 classes");
    CU_ASSERT_FALSE(dsnn_net_initialized(net));

    /* Replace before init: same shapes only. */
    memset(&err, 0, sizeof err);
    CU_ASSERT_EQUAL(dsnn_net_replace(net, 2, dsnn_linear_new("out", 8, 4, true, &err), &err),
                    DSNN_ERR_INVALID);
    ASSERT_HAS(err.msg, "'out'");
    CU_ASSERT_EQUAL(dsnn_net_replace(net, 7, dsnn_linear_new("x", 8, 5, true, &err), &err),
                    DSNN_ERR_INVALID);
    CU_ASSERT_EQUAL(dsnn_net_replace(net, 0, NULL, &err), DSNN_ERR_INVALID);
    CU_ASSERT_EQUAL(dsnn_net_replace(net, 2, dsnn_linear_new("out", 8, 5, false, &err), &err),
                    DSNN_OK);
    CU_ASSERT_EQUAL(dsnn_net_n_layers(net), 3);
    dsnn_net_free(net);

    /* Invalid networks, init errors. */
    CU_ASSERT_PTR_NULL(dsnn_net_new((struct dsnn_shape){0, 1, 1}, 3, &err));
    CU_ASSERT_PTR_NULL(dsnn_net_new((struct dsnn_shape){3, 1, 1}, 0, &err));
    net = dsnn_net_new((struct dsnn_shape){4, 1, 1}, 2, &err);
    CU_ASSERT_EQUAL(dsnn_net_init(net, &r, 4, &err), DSNN_ERR_INVALID); /* no layers */
    CU_ASSERT_PTR_NULL(dsnn_net_forward(net, NULL, 1, false, &err));    /* before init */
    CU_ASSERT_EQUAL(dsnn_net_backward(net, NULL, 1, &err), DSNN_ERR_INVALID);
    CU_ASSERT_EQUAL(dsnn_net_add(net, dsnn_linear_new("fc", 4, 2, true, &err), &err), DSNN_OK);
    CU_ASSERT_EQUAL(dsnn_net_init(net, &r, 0, &err), DSNN_ERR_INVALID); /* batch 0 */
    CU_ASSERT_EQUAL(dsnn_net_init(net, &r, 2, &err), DSNN_OK);
    CU_ASSERT_EQUAL(dsnn_net_init(net, &r, 2, &err), DSNN_ERR_INVALID); /* twice */
    /* Nothing can be added or replaced after init (and the layer is freed). */
    CU_ASSERT_EQUAL(dsnn_net_add(net, dsnn_relu_new("r", (struct dsnn_shape){2, 1, 1}, &err), &err),
                    DSNN_ERR_INVALID);
    ASSERT_HAS(err.msg, "after init");
    CU_ASSERT_EQUAL(dsnn_net_replace(net, 0, dsnn_linear_new("fc", 4, 2, true, &err), &err),
                    DSNN_ERR_INVALID);
    CU_ASSERT_EQUAL(dsnn_net_n_layers(net), 1);
    float x[8] = {1, 2, 3, 4, 5, 6, 7, 8}, d[4] = {0};
    /* Backward before any forward. */
    CU_ASSERT_EQUAL(dsnn_net_backward(net, d, 2, &err), DSNN_ERR_INVALID);
    CU_ASSERT_PTR_NOT_NULL(dsnn_net_forward(net, x, 2, true, &err));
    CU_ASSERT_EQUAL(dsnn_net_backward(net, d, 2, &err), DSNN_OK);
    dsnn_net_free(net);
}

static void test_net_init_deterministic(void)
{
    struct dsnn_net *a = build_mlp(42, 4), *b = build_mlp(42, 4), *c = build_mlp(43, 4);
    bool same_ab = true, same_ac = true;
    for (size_t li = 0; li < dsnn_net_n_layers(a); li++) {
        struct dsnn_layer *la = dsnn_net_layer(a, li), *lb = dsnn_net_layer(b, li),
                          *lc = dsnn_net_layer(c, li);
        for (size_t k = 0; k < la->n_params; k++) {
            size_t n = la->params[k].n * sizeof(float);
            same_ab &= memcmp(la->params[k].value, lb->params[k].value, n) == 0;
            same_ac &= memcmp(la->params[k].value, lc->params[k].value, n) == 0;
        }
    }
    CU_ASSERT_TRUE(same_ab);
    CU_ASSERT_FALSE(same_ac);
    dsnn_net_free(a);
    dsnn_net_free(b);
    dsnn_net_free(c);
}

static void test_net_checkpoint(void)
{
    enum { B = 3 };
    struct dsnn_net *a = build_mlp(1, B), *b = build_mlp(2, B);
    struct dsnn_error err = {0};
    /* Optimizer state in a block is saved with it. */
    struct dsnn_param_block *blk = &dsnn_net_layer(a, 3)->params[0];
    float *st = dsnn_param_block_state(blk, 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    for (size_t i = 0; i < blk->n; i++)
        st[i] = (float)i * 0.5f;
    CU_ASSERT_PTR_EQUAL(dsnn_param_block_state(blk, 1), st); /* allocated once */
    CU_ASSERT_PTR_NULL(dsnn_param_block_state(blk, DSNN_OPT_STATE_MAX));
    CU_ASSERT_PTR_NULL(dsnn_param_block_state(blk, -1));

    FILE *f = tmpfile();
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_EQUAL(dsnn_net_save(a, f, &err), DSNN_OK);
    long size = ftell(f);
    rewind(f);
    CU_ASSERT_EQUAL(dsnn_net_load(b, f, &err), DSNN_OK);
    CU_ASSERT_EQUAL(ftell(f), size);
    bool same = true;
    for (size_t li = 0; li < dsnn_net_n_layers(a); li++) {
        struct dsnn_layer *la = dsnn_net_layer(a, li), *lb = dsnn_net_layer(b, li);
        for (size_t k = 0; k < la->n_params; k++)
            same &= memcmp(la->params[k].value, lb->params[k].value,
                           la->params[k].n * sizeof(float)) == 0;
    }
    CU_ASSERT_TRUE(same);
    struct dsnn_param_block *blb = &dsnn_net_layer(b, 3)->params[0];
    CU_ASSERT_PTR_NOT_NULL_FATAL(blb->state[1]);
    CU_ASSERT_PTR_NULL(blb->state[0]);
    CU_ASSERT_EQUAL(memcmp(blb->state[1], st, blk->n * sizeof(float)), 0);
    /* Same outputs. */
    float x[B * N_IN];
    struct dsnn_rng r;
    dsnn_rng_seed(&r, 9, 9);
    fill(x, B * N_IN, &r, 1);
    float ya[B * N_CLASSES];
    memcpy(ya, dsnn_net_forward(a, x, B, false, &err), sizeof ya);
    CU_ASSERT_EQUAL(memcmp(ya, dsnn_net_forward(b, x, B, false, &err), sizeof ya), 0);

    /* Truncated checkpoints are format errors. */
    for (long cut = 0; cut < size; cut += size / 7 + 1) {
        FILE *t = tmpfile();
        rewind(f);
        char *buf = malloc((size_t)size);
        CU_ASSERT_EQUAL((long)fread(buf, 1, (size_t)size, f), size);
        fwrite(buf, 1, (size_t)cut, t);
        rewind(t);
        memset(&err, 0, sizeof err);
        CU_ASSERT_EQUAL(dsnn_net_load(b, t, &err), DSNN_ERR_FORMAT);
        fclose(t);
        free(buf);
    }

    /* A network with other layers is refused, naming them. */
    struct dsnn_net *c = dsnn_net_new((struct dsnn_shape){IN_C, IN_H, IN_W}, N_CLASSES, &err);
    dsnn_net_add(c, dsnn_flatten_new("flatten", (struct dsnn_shape){IN_C, IN_H, IN_W}, &err), &err);
    dsnn_net_add(c, dsnn_linear_new("fc_other", N_IN, H1, true, &err), &err);
    dsnn_net_add(c, dsnn_relu_new("relu1", (struct dsnn_shape){H1, 1, 1}, &err), &err);
    dsnn_net_add(c, dsnn_linear_new("fc2", H1, H2, true, &err), &err);
    dsnn_net_add(c, dsnn_relu_new("relu2", (struct dsnn_shape){H2, 1, 1}, &err), &err);
    dsnn_net_add(c, dsnn_linear_new("output", H2, N_CLASSES, true, &err), &err);
    CU_ASSERT_EQUAL_FATAL(dsnn_net_n_layers(c), 6);
    dsnn_rng_seed(&r, 1, 1);
    CU_ASSERT_EQUAL_FATAL(dsnn_net_init(c, &r, B, &err), DSNN_OK);
    rewind(f);
    memset(&err, 0, sizeof err);
    CU_ASSERT_EQUAL(dsnn_net_load(c, f, &err), DSNN_ERR_FORMAT);
    ASSERT_HAS(err.msg, "'fc1'");
    ASSERT_HAS(err.msg, "'fc_other'");
    dsnn_net_free(c);
    /* A layer with other sizes: the block sizes are checked. */
    c = dsnn_net_new((struct dsnn_shape){IN_C, IN_H, IN_W}, N_CLASSES, &err);
    dsnn_net_add(c, dsnn_flatten_new("flatten", (struct dsnn_shape){IN_C, IN_H, IN_W}, &err), &err);
    dsnn_net_add(c, dsnn_linear_new("fc1", N_IN, H1 + 1, true, &err), &err);
    dsnn_net_add(c, dsnn_relu_new("relu1", (struct dsnn_shape){H1 + 1, 1, 1}, &err), &err);
    dsnn_net_add(c, dsnn_linear_new("fc2", H1 + 1, H2, true, &err), &err);
    dsnn_net_add(c, dsnn_relu_new("relu2", (struct dsnn_shape){H2, 1, 1}, &err), &err);
    dsnn_net_add(c, dsnn_linear_new("output", H2, N_CLASSES, true, &err), &err);
    CU_ASSERT_EQUAL_FATAL(dsnn_net_init(c, &r, B, &err), DSNN_OK);
    rewind(f);
    memset(&err, 0, sizeof err);
    CU_ASSERT_EQUAL(dsnn_net_load(c, f, &err), DSNN_ERR_FORMAT);
    ASSERT_HAS(err.msg, "fc1");
    ASSERT_HAS(err.msg, "weight");
    dsnn_net_free(c);
    fclose(f);
    dsnn_net_free(a);
    dsnn_net_free(b);
}

static void test_checkpoint_replaces_state(void)
{
    /* Loading a checkpoint into a network that has trained already (e.g. a population-based
     * search copying a better trial): state slots the checkpoint does not have must not survive,
     * so that training continues exactly as from the checkpoint. */
    enum { B = 2 };
    struct dsnn_net *a = build_mlp(1, B), *b = build_mlp(2, B);
    struct dsnn_error err = {0};
    /* b has momentum buffers full of history. */
    for (size_t li = 0; li < dsnn_net_n_layers(b); li++) {
        struct dsnn_layer *l = dsnn_net_layer(b, li);
        for (size_t k = 0; k < l->n_params; k++) {
            float *st = dsnn_param_block_state(&l->params[k], 0);
            CU_ASSERT_PTR_NOT_NULL_FATAL(st);
            for (size_t i = 0; i < l->params[k].n; i++)
                st[i] = 1.0f;
        }
    }
    FILE *f = tmpfile();
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_EQUAL(dsnn_net_save(a, f, &err), DSNN_OK); /* a has no optimizer state yet */
    rewind(f);
    CU_ASSERT_EQUAL(dsnn_net_load(b, f, &err), DSNN_OK);
    fclose(f);
    /* The same momentum step on both: the same result. */
    for (size_t li = 0; li < dsnn_net_n_layers(a); li++) {
        struct dsnn_layer *la = dsnn_net_layer(a, li), *lb = dsnn_net_layer(b, li);
        for (size_t k = 0; k < la->n_params; k++) {
            struct dsnn_param_block *pa = &la->params[k], *pb = &lb->params[k];
            for (size_t i = 0; i < pa->n; i++)
                pa->grad[i] = pb->grad[i] = 0.25f;
            /* v = mu v + g; w -= lr v, with mu = 0.9, lr = 0.1 */
            float *va = dsnn_param_block_state(pa, 0), *vb = dsnn_param_block_state(pb, 0);
            CU_ASSERT_PTR_NOT_NULL_FATAL(va);
            CU_ASSERT_PTR_NOT_NULL_FATAL(vb);
            for (size_t i = 0; i < pa->n; i++) {
                va[i] = 0.9f * va[i] + pa->grad[i];
                vb[i] = 0.9f * vb[i] + pb->grad[i];
                pa->value[i] -= 0.1f * va[i];
                pb->value[i] -= 0.1f * vb[i];
            }
            CU_ASSERT_EQUAL(memcmp(pa->value, pb->value, pa->n * sizeof(float)), 0);
        }
    }
    dsnn_net_free(a);
    dsnn_net_free(b);
}

static CU_TestInfo tests[] = {
    {"linear forward vs naive", test_linear_forward},
    {"linear backward vs naive and finite differences", test_linear_backward},
    {"linear products split over threads", test_linear_split_products},
    {"linear API, init", test_linear_api},
    {"relu forward/backward", test_relu},
    {"flatten forward/backward", test_flatten},
    {"net forward vs naive MLP", test_net_forward},
    {"net backward vs finite differences of xent", test_net_backward_fd},
    {"net shape checks, names, init errors", test_net_shape_checks},
    {"net init deterministic", test_net_init_deterministic},
    {"net checkpoint", test_net_checkpoint},
    {"checkpoint replaces optimizer state", test_checkpoint_replaces_state},
    CU_TEST_INFO_NULL,
};

DSNN_TEST_MAIN("layers", tests)
