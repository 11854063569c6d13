/* layers/layers_impl.h (private) - helpers shared by the layers of dsnn/layers.h: the window
 * geometry and workspace of convolution and pooling (conv_geom.c), the dense convolution engine
 * (conv_gemm.c) and the layer threads. */
#ifndef DSNN_LAYERS_IMPL_H
#define DSNN_LAYERS_IMPL_H

#include <stddef.h>
#include <stdint.h>
#include "dsnn/layers.h"

/* The fields of the ops table of a layer type whose functions are named P_init, P_forward,
 * P_backward, P_save, P_load and P_destroy (the common case of a layer with state):
 *     static const struct dsnn_layer_ops kw_ops = {LY_OPS_FIELDS("kwinners", kw),
 *                                                  .on_epoch_end = kw_epoch_end}; */
#define LY_OPS_FIELDS(type_name, P)                                                                \
    .type = (type_name), .init = P##_init, .forward = P##_forward, .backward = P##_backward,      \
    .save = P##_save, .load = P##_load, .destroy = P##_destroy

/* Geometry of a 2d window operation (convolution or pooling) over one sample. */
struct cv_geom {
    int c, h, w;    /* input */
    int kh, kw;     /* window */
    int sh, sw;     /* stride */
    int ph, pw;     /* padding */
    int oh, ow;     /* output size */
};

/* Fills oh / ow from the rest; false if the output would be empty or a value is invalid. */
bool cv_geom_resolve(struct cv_geom *g);

/* Convolution geometry from a constructor's arguments; false with err set if invalid. */
bool cv_conv_geom(const char *name, struct dsnn_shape in, int out_c, int kernel, int stride,
                       int padding, struct cv_geom *g, struct dsnn_error *err);
/* The first member of each pooling layer (avgpool2d.c, maxpool2d.c): the layer and its window. */
struct cv_pool {
    struct dsnn_layer base; /* first */
    struct cv_geom g;
};
/* Pooling layer of `size` bytes (a struct whose first member is struct cv_pool) over window g
 * (oh / ow are filled in), or NULL with err set; the message reads "invalid <kind> pooling of a
 * CxHxW input with kernel <kernel>, stride .., padding .. (padding must be <= kernel / 2)". */
void *cv_pool_new(size_t size, const struct dsnn_layer_ops *ops, const char *name,
                  const char *kind, const char *kernel, struct cv_geom g, struct dsnn_error *err);

/* dsnn_conv2d_geometry for sparse layers (sparse/conv2d.c). */
bool sp_conv2d_geometry(const struct dsnn_layer *l, struct dsnn_conv2d_geom *g);

/* Part p of `parts` of [0, n) for one thread: [*a, *b), cut at multiples of align (a power of
 * two, so that parts start on whole cache lines or vectors); the first part starts at 0, the
 * last ends at n, and a part may be empty. */
static inline void dsnn_part_range(int64_t n, int p, int parts, int64_t align, int64_t *a,
                                   int64_t *b)
{
    *a = p == 0 ? 0 : (n * p / parts) & ~(align - 1);
    *b = p + 1 == parts ? n : (n * (p + 1) / parts) & ~(align - 1);
}

/* Checkpoint of a chain of layers (a network, a residual block): each layer's name and type,
 * then its dsnn_layer_save. Load checks names and types; a mismatch reads "checkpoint layer
 * <i><of> is ..., the <owner> has ..." (of: "" or " of the block"). */
enum dsnn_status ly_save_chain(struct dsnn_layer *const *layers, size_t n, FILE *f,
                               struct dsnn_error *err);
enum dsnn_status ly_load_chain(struct dsnn_layer *const *layers, size_t n, const char *of,
                               const char *owner, FILE *f, struct dsnn_error *err);

/* Threads for the layer kernels (>= 1). */
int ly_threads(void);
/* Threads for an element-wise pass over n floats: the layer threads when n is large enough to
 * pay for them (and not already inside a parallel region), else 1. Element-wise results do not
 * depend on the count. */
int ly_elem_threads(size_t n);
/* dx[i] = y[i] > 0 ? dy[i] : 0 for i < n (the ReLU derivative; y the ReLU's output), on the
 * layer threads when n is large (relu.c; used by the residual block's fused ReLU too). */
void ly_relu_grad(const float *y, const float *dy, float *dx, size_t n);

/* Work on plane it (one (sample, channel) pair) of a pooling layer's batch: in and out point at
 * that plane of the operation's input and output. */
typedef void (*cv_pool_plane_fn)(const struct cv_pool *P, int it, const float *in, float *out);
/* Runs fn on each of the batch * c planes of a pooling layer, from in to out: the forward's x to
 * y, or with backward the backward's dy to dx; on the layer threads when the input planes hold
 * enough values to pay for them. */
void cv_pool_planes(const struct cv_pool *P, int batch, cv_pool_plane_fn fn, const float *in,
                    float *out, bool backward);

/* Products below this many FLOPs (2 M N K) run on the calling thread only. */
#define BLAS_MT_FLOP 4e6
/* cblas_sgemm (row-major) with OpenBLAS on one thread, large products split over the OpenMP
 * threads (see net.c: OpenBLAS's own thread pool would fight the OpenMP threads). */
void ly_sgemm(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float *A,
                int lda, const float *B, int ldb, float beta, float *C, int ldc);

/* Workspace: grow-only scratch buffers, one set per calling thread (the thread that runs the
 * network, and the layer threads of the dense convolution engine), shared by every layer (a
 * layer must not keep a pointer across calls). slot < WS_SLOTS. NULL if out of memory. */
#define WS_SLOTS 5
float *ws_get(int slot, size_t floats);
/* Limit (floats) on one workspace buffer, used to size sample chunks. */
size_t ws_limit_floats(void);

/* The dense convolution engine (layers/conv_gemm.c), on the calling thread's workspace slots
 * 0-3 and the layer threads. Forward with weights W [M][c kh kw] (bias NULL: none).
 * DSNN_ERR_NOMEM if the workspace cannot be allocated (no message). */
enum dsnn_status cv_forward(const struct cv_geom *g, int M, const float *W, const float *bias,
                            const float *x, float *y, int batch);
/* Backward with weights W [M][c kh kw]: dW = dY cols^T (overwritten), db[M] = sum dY and dx
 * (col2im of W^T dY, overwritten) unless NULL (without dx, W is not read). DSNN_ERR_NOMEM if
 * the workspace cannot be allocated (no message). */
enum dsnn_status cv_backward(const struct cv_geom *g, int M, const float *W, const float *x,
                             const float *dy, int batch, float *dW, float *db, float *dx);

#endif
