/* layers/conv2d.c - dense 2d convolution (PyTorch nn.Conv2d, dilation 1, groups 1): im2col over a
 * chunk of samples and one OpenBLAS sgemm per chunk. */
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

/* Steps through a batch in chunks of samples whose column matrices fit the workspace (cv_chunk
 * with M output rows): from *b0 = *nb = 0, each call moves on to the next chunk, samples
 * [*b0, *b0 + *nb), and returns its column matrix; NULL after the last chunk (*b0 == batch) or
 * when out of memory (*b0 < batch). */
static const float *cv_next_chunk(const struct cv_geom *g, int M, const float *x, int batch,
                                  int *b0, int *nb)
{
    const int chunk = cv_chunk(g, g->c * g->kh * g->kw, M, batch);
    *b0 += *nb;
    if (*b0 >= batch)
        return NULL;
    *nb = batch - *b0 < chunk ? batch - *b0 : chunk;
    return cv_cols_of(g, x, *b0, *nb);
}

enum dsnn_status cv_forward(const struct cv_geom *g, int M, const float *W, const float *bias,
                            const float *x, float *y, int batch)
{
    const int K = g->c * g->kh * g->kw, P = g->oh * g->ow;
    const size_t out_size = (size_t)M * P;
    int b0 = 0, nb = 0;
    const float *cols;
    while ((cols = cv_next_chunk(g, M, x, batch, &b0, &nb))) {
        const int N = nb * P;
        if (nb == 1) { /* the product is already in the output layout */
            float *yb = y + (size_t)b0 * out_size;
            ly_sgemm(false, false, M, N, K, 1.0f, W, K, cols, N, 0.0f, yb, N);
            if (bias)
                for (int o = 0; o < M; o++)
                    for (int p = 0; p < P; p++)
                        yb[(size_t)o * P + p] += bias[o];
            continue;
        }
        float *ybuf = ws_get(1, (size_t)M * N);
        if (!ybuf)
            return DSNN_ERR_NOMEM;
        ly_sgemm(false, false, M, N, K, 1.0f, W, K, cols, N, 0.0f, ybuf, N);
        cv_scatter(ybuf, M, P, nb, bias, y + (size_t)b0 * out_size);
    }
    return b0 < batch ? DSNN_ERR_NOMEM : DSNN_OK;
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

enum dsnn_status cv_backward(const struct cv_geom *g, int M, const float *W, const float *x,
                             const float *dy, int batch, float *dW, float *db, float *dx)
{
    const int K = g->c * g->kh * g->kw, P = g->oh * g->ow;
    const size_t in_size = (size_t)g->c * g->h * g->w, out_size = (size_t)M * P;
    if (db)
        memset(db, 0, sizeof(float) * (size_t)M);
    int b0 = 0, nb = 0;
    const float *cols;
    while ((cols = cv_next_chunk(g, M, x, batch, &b0, &nb))) {
        const int N = nb * P;
        const float *dyc = dy + (size_t)b0 * out_size;
        if (nb > 1) {
            float *buf = ws_get(1, (size_t)M * N);
            if (!buf)
                return DSNN_ERR_NOMEM;
            cv_gather(dyc, M, P, nb, buf);
            dyc = buf;
        }
        /* dW (+)= dY cols^T */
        ly_sgemm(false, true, M, K, N, 1.0f, dyc, N, cols, N, b0 == 0 ? 0.0f : 1.0f, dW, K);
        if (db)
            for (int o = 0; o < M; o++) {
                const float *r = dyc + (size_t)o * N;
                float s = 0.0f;
                for (int n = 0; n < N; n++)
                    s += r[n];
                db[o] += s;
            }
        if (dx) {
            float *dcols = ws_get(2, (size_t)K * N);
            if (!dcols)
                return DSNN_ERR_NOMEM;
            /* dcols = W^T dY */
            ly_sgemm(true, false, K, N, M, 1.0f, W, K, dyc, N, 0.0f, dcols, N);
            cv_col2im(g, dcols, nb, dx + (size_t)b0 * in_size);
        }
    }
    return b0 < batch ? DSNN_ERR_NOMEM : DSNN_OK;
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
