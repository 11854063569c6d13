/* layers/linear.c - dense fully connected layer: y = x W^T + b with OpenBLAS. */
#include "dsnn/layer.h"
#include "dsnn/sparse.h"

#include "layers/layers_impl.h"
#include <string.h>

struct linear {
    struct dsnn_layer base; /* first */
    int n_in, n_out;
    bool bias;
    enum dsnn_weight_init init;
    double init_std;
    struct dsnn_param_block blocks[2]; /* weight [n_out][n_in], bias [n_out] */
};

static enum dsnn_status linear_init(struct dsnn_layer *l, struct dsnn_rng *rng,
                                    struct dsnn_error *err)
{
    struct linear *L = (struct linear *)l;
    size_t nw = (size_t)L->n_in * (size_t)L->n_out;
    if (dsnn_layer_alloc_params(l, L->blocks, nw, L->bias ? (size_t)L->n_out : 0) != DSNN_OK)
        return dsnn_error_set(err, DSNN_ERR_NOMEM, "layer '%s': cannot allocate %d x %d weights",
                              l->name, L->n_out, L->n_in);
    float *w = L->blocks[0].value;
    for (size_t i = 0; i < nw; i++)
        w[i] = dsnn_weight_init_draw(L->init, L->n_in, L->n_out, L->init_std, rng);
    if (L->bias) {
        /* PyTorch: bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)) */
        for (int i = 0; i < L->n_out; i++)
            L->blocks[1].value[i] =
                dsnn_weight_init_draw(DSNN_INIT_KAIMING_UNIFORM, L->n_in, L->n_out, 0, rng);
    }
    return DSNN_OK;
}

static enum dsnn_status linear_forward(struct dsnn_layer *l, const float *x, float *y, int batch,
                                       bool train, struct dsnn_error *err)
{
    (void)train, (void)err;
    struct linear *L = (struct linear *)l;
    ly_sgemm(false, true, batch, L->n_out, L->n_in, 1.0f, x, L->n_in, L->blocks[0].value, L->n_in,
               0.0f, y, L->n_out);
    if (L->bias) {
        const float *b = L->blocks[1].value;
        for (int i = 0; i < batch; i++) {
            float *row = y + (size_t)i * L->n_out;
            for (int o = 0; o < L->n_out; o++)
                row[o] += b[o];
        }
    }
    return DSNN_OK;
}

static enum dsnn_status linear_backward(struct dsnn_layer *l, const float *x, const float *y,
                                        const float *dy, float *dx, int batch, struct dsnn_error *err)
{
    (void)y, (void)err;
    struct linear *L = (struct linear *)l;
    /* dW[out][in] = dy^T x */
    ly_sgemm(true, false, L->n_out, L->n_in, batch, 1.0f, dy, L->n_out, x, L->n_in, 0.0f,
               L->blocks[0].grad, L->n_in);
    if (L->bias) {
        float *db = L->blocks[1].grad;
        memset(db, 0, sizeof(float) * (size_t)L->n_out);
        for (int i = 0; i < batch; i++) {
            const float *row = dy + (size_t)i * L->n_out;
            for (int o = 0; o < L->n_out; o++)
                db[o] += row[o];
        }
    }
    if (dx)
        ly_sgemm(false, false, batch, L->n_in, L->n_out, 1.0f, dy, L->n_out, L->blocks[0].value,
                   L->n_in, 0.0f, dx, L->n_in);
    return DSNN_OK;
}

static const struct dsnn_layer_ops linear_ops = {
    .type = "linear",
    .init = linear_init,
    .forward = linear_forward,
    .backward = linear_backward,
};

struct dsnn_layer *dsnn_linear_new(const char *name, int n_in, int n_out, bool bias,
                                   struct dsnn_error *err)
{
    if (n_in <= 0 || n_out <= 0) {
        dsnn_error_set(err, DSNN_ERR_INVALID, "layer '%s': invalid size %d -> %d",
                       name ? name : "linear", n_in, n_out);
        return NULL;
    }
    struct linear *L =
        dsnn_layer_alloc(sizeof *L, &linear_ops, name ? name : "linear", (struct dsnn_shape){n_in, 1, 1}, (struct dsnn_shape){n_out, 1, 1}, err);
    if (!L)
        return NULL;
    L->n_in = n_in;
    L->n_out = n_out;
    L->bias = bias;
    L->init = DSNN_INIT_KAIMING_UNIFORM;
    return &L->base;
}

float *dsnn_linear_weight(struct dsnn_layer *l)
{
    if (!dsnn_layer_is(l, "linear") || !l->n_params)
        return NULL;
    return ((struct linear *)l)->blocks[0].value;
}

float *dsnn_linear_bias(struct dsnn_layer *l)
{
    if (!dsnn_layer_is(l, "linear") || l->n_params < 2)
        return NULL;
    return ((struct linear *)l)->blocks[1].value;
}

void dsnn_linear_set_init(struct dsnn_layer *l, enum dsnn_weight_init init, double std)
{
    if (!dsnn_layer_is(l, "linear"))
        return;
    ((struct linear *)l)->init = init;
    ((struct linear *)l)->init_std = std;
}

bool dsnn_linear_dims(const struct dsnn_layer *l, int *n_in, int *n_out, bool *bias)
{
    if (dsnn_layer_is(l, "linear")) {
        const struct linear *L = (const struct linear *)l;
        if (n_in)
            *n_in = L->n_in;
        if (n_out)
            *n_out = L->n_out;
        if (bias)
            *bias = L->bias;
        return true;
    }
    return dsnn_sparse_linear_dims_(l, n_in, n_out, bias);
}
