/* layers/relu.c - element-wise ReLU. */
#include "dsnn/layer.h"
#include "core/core_impl.h"
#include "layers/layers_impl.h"

MULTIVERSION static enum dsnn_status relu_forward(struct dsnn_layer *l, const float *restrict x,
                                     float *restrict y, int batch, bool train, struct dsnn_error *err)
{
    (void)train, (void)err;
    const size_t n = (size_t)batch * (size_t)dsnn_shape_size(l->in);
    const int nt = ly_elem_threads(n);
#pragma omp parallel for simd schedule(static) num_threads(nt) if (nt > 1)
    for (size_t i = 0; i < n; i++)
        y[i] = x[i] > 0.0f ? x[i] : 0.0f;
    return DSNN_OK;
}

/* Not MULTIVERSION: target_clones on a function that is not static exports its resolver from
 * libdsnn (check-exports.sh); the loop is memory-bound and baseline SSE2 serves it. */
void ly_relu_grad(const float *restrict y, const float *restrict dy, float *restrict dx,
                  size_t n)
{
    const int nt = ly_elem_threads(n);
#pragma omp parallel for simd schedule(static) num_threads(nt) if (nt > 1)
    for (size_t i = 0; i < n; i++) { /* both loads unconditional: a vector select */
        const float d = dy[i];
        dx[i] = y[i] > 0.0f ? d : 0.0f;
    }
}

static enum dsnn_status relu_backward(struct dsnn_layer *l, const float *x, const float *y,
                                      const float *dy, float *dx, int batch,
                                      struct dsnn_error *err)
{
    (void)x, (void)err;
    if (dx)
        ly_relu_grad(y, dy, dx, (size_t)batch * (size_t)dsnn_shape_size(l->in));
    return DSNN_OK;
}

static const struct dsnn_layer_ops relu_ops = {
    .type = "relu",
    .forward = relu_forward,
    .backward = relu_backward,
};

struct dsnn_layer *dsnn_relu_new(const char *name, struct dsnn_shape shape, struct dsnn_error *err)
{
    return dsnn_layer_alloc(sizeof(struct dsnn_layer), &relu_ops, name ? name : "relu", shape,
                            shape, err);
}
