/* layers/flatten.c - reshape to a flat vector (data is already contiguous: a copy). */
#include "dsnn/layer.h"

#include <string.h>

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

static const struct dsnn_layer_ops flatten_ops = {
    .type = "flatten",
    .forward = flatten_forward,
    .backward = flatten_backward,
};

struct dsnn_layer *dsnn_flatten_new(const char *name, struct dsnn_shape in,
                                    struct dsnn_error *err)
{
    return dsnn_layer_alloc(sizeof(struct dsnn_layer), &flatten_ops, name ? name : "flatten", in,
                            (struct dsnn_shape){(int)dsnn_shape_size(in), 1, 1}, err);
}
