/* layers/conv2d.c - dense 2d convolution (PyTorch nn.Conv2d, dilation 1, groups 1) on the dense
 * convolution engine (layers/conv_gemm.c). */
#include "dsnn/layers.h"
#include "layers/layers_impl.h"

#include <string.h>

struct conv2d {
    struct dsnn_layer base; /* first */
    struct cv_geom g;
    int out_c;
    bool bias;
    enum dsnn_weight_init init;
    double init_std;
    struct dsnn_param_block blocks[2]; /* weight [out_c][in_c kh kw], bias [out_c] */
};

static const struct dsnn_layer_ops conv2d_ops;

static struct conv2d *conv_cast(const struct dsnn_layer *l)
{
    return l && l->ops == &conv2d_ops ? (struct conv2d *)l : NULL;
}

static enum dsnn_status conv_init(struct dsnn_layer *l, struct dsnn_rng *rng,
                                  struct dsnn_error *err)
{
    struct conv2d *C = conv_cast(l);
    const int K = C->g.c * C->g.kh * C->g.kw;
    const size_t nw = (size_t)C->out_c * (size_t)K;
    if (dsnn_layer_alloc_params(l, C->blocks, nw, C->bias ? (size_t)C->out_c : 0) != DSNN_OK)
        return dsnn_error_set(err, DSNN_ERR_NOMEM, "layer '%s': cannot allocate %zu weights",
                              l->name, nw);
    /* PyTorch: kaiming_uniform(a = sqrt(5)) = U(+-1/sqrt(fan_in)), fan_in = in_c kh kw;
     * fan_out = out_c kh kw. */
    const int fan_out = C->out_c * C->g.kh * C->g.kw;
    float *w = C->blocks[0].value;
    for (size_t i = 0; i < nw; i++)
        w[i] = dsnn_weight_init_draw(C->init, K, fan_out, C->init_std, rng);
    if (C->bias)
        for (int o = 0; o < C->out_c; o++)
            C->blocks[1].value[o] =
                dsnn_weight_init_draw(DSNN_INIT_KAIMING_UNIFORM, K, fan_out, 0, rng);
    return DSNN_OK;
}

static enum dsnn_status conv_forward(struct dsnn_layer *l, const float *x, float *y, int batch,
                                     bool train, struct dsnn_error *err)
{
    (void)train;
    struct conv2d *C = conv_cast(l);
    if (cv_forward(&C->g, C->out_c, C->blocks[0].value, C->bias ? C->blocks[1].value : NULL, x,
                   y, batch) != DSNN_OK)
        return dsnn_error_set(err, DSNN_ERR_NOMEM, "layer '%s': out of memory in forward", l->name);
    return DSNN_OK;
}

static enum dsnn_status conv_backward(struct dsnn_layer *l, const float *x, const float *y,
                                      const float *dy, float *dx, int batch, struct dsnn_error *err)
{
    (void)y;
    struct conv2d *C = conv_cast(l);
    if (cv_backward(&C->g, C->out_c, C->blocks[0].value, x, dy, batch, C->blocks[0].grad,
                    C->bias ? C->blocks[1].grad : NULL, dx) != DSNN_OK)
        return dsnn_error_set(err, DSNN_ERR_NOMEM, "layer '%s': out of memory in backward", l->name);
    return DSNN_OK;
}

static const struct dsnn_layer_ops conv2d_ops = {
    .type = "conv2d",
    .init = conv_init,
    .forward = conv_forward,
    .backward = conv_backward,
};

struct dsnn_layer *dsnn_conv2d_new(const char *name, struct dsnn_shape in, int out_channels,
                                   int kernel, int stride, int padding, bool bias,
                                   struct dsnn_error *err)
{
    if (!name)
        name = "conv2d";
    struct cv_geom g;
    if (!cv_conv_geom(name, in, out_channels, kernel, stride, padding, &g, err))
        return NULL;
    struct conv2d *C =
        dsnn_layer_alloc(sizeof *C, &conv2d_ops, name, in, (struct dsnn_shape){out_channels, g.oh, g.ow}, err);
    if (!C)
        return NULL;
    C->g = g;
    C->out_c = out_channels;
    C->bias = bias;
    C->init = DSNN_INIT_KAIMING_UNIFORM;
    return &C->base;
}

void dsnn_conv2d_set_init(struct dsnn_layer *l, enum dsnn_weight_init init, double std)
{
    struct conv2d *C = conv_cast(l);
    if (C) {
        C->init = init;
        C->init_std = std;
    }
}

float *dsnn_conv2d_weight(struct dsnn_layer *l)
{
    struct conv2d *C = conv_cast(l);
    return C && l->n_params ? C->blocks[0].value : NULL;
}

float *dsnn_conv2d_bias(struct dsnn_layer *l)
{
    struct conv2d *C = conv_cast(l);
    return C && C->bias && l->n_params > 1 ? C->blocks[1].value : NULL;
}

bool dsnn_conv2d_geometry(const struct dsnn_layer *l, struct dsnn_conv2d_geom *g)
{
    const struct conv2d *C = conv_cast(l);
    if (!C)
        return sp_conv2d_geometry(l, g);
    if (g)
        *g = (struct dsnn_conv2d_geom){C->g.c, C->g.h, C->g.w, C->out_c, C->g.oh, C->g.ow,
                                       C->g.kh, C->g.sh, C->g.ph, C->bias};
    return true;
}
