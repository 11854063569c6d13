/* layers/flatten.c - reshape to a flat vector (data is already contiguous: a copy). */
#include "dsnn/layer.h"

#include <stdlib.h>
#include <string.h>

static enum dsnn_status flatten_init(struct dsnn_layer *l, struct dsnn_rng *rng,
                                     struct dsnn_error *err)
{
    (void)l, (void)rng, (void)err;
    return DSNN_OK;
}

static enum dsnn_status flatten_forward(struct dsnn_layer *l, const float *x, float *y, int batch,
                                        bool train, struct dsnn_error *err)
{
    (void)train, (void)err;
    memcpy(y, x, sizeof(float) * (size_t)batch * (size_t)dsnn_shape_size(l->in));
    return DSNN_OK;
}

static enum dsnn_status flatten_backward(struct dsnn_layer *l, const float *x, const float *y,
                                         const float *dy, float *dx, int batch, struct dsnn_error *err)
{
    (void)x, (void)y, (void)err;
    if (dx)
        memcpy(dx, dy, sizeof(float) * (size_t)batch * (size_t)dsnn_shape_size(l->in));
    return DSNN_OK;
}

static void flatten_destroy(struct dsnn_layer *l)
{
    free(l);
}

static const struct dsnn_layer_ops flatten_ops = {
    .type = "flatten",
    .init = flatten_init,
    .forward = flatten_forward,
    .backward = flatten_backward,
    .destroy = flatten_destroy,
};

struct dsnn_layer *dsnn_flatten_new(const char *name, struct dsnn_shape in,
                                    struct dsnn_error *err)
{
    struct dsnn_layer *l = calloc(1, sizeof *l);
    if (!l) {
        dsnn_error_set(err, DSNN_ERR_NOMEM, "out of memory");
        return NULL;
    }
    l->ops = &flatten_ops;
    snprintf(l->name, sizeof l->name, "%s", name ? name : "flatten");
    l->in = in;
    l->out = (struct dsnn_shape){(int)dsnn_shape_size(in), 1, 1};
    return l;
}
