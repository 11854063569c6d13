/* layers/avgpool2d.c - 2d average pooling (PyTorch AvgPool2d, ceil_mode False) and global average
 * pooling (AdaptiveAvgPool2d(1)). */
#include "dsnn/layers.h"
#include "layers/layers_impl.h"

#include <stdio.h>
#include <string.h>

struct avgpool2d {
    struct cv_pool pool; /* first */
    bool count_include_pad;
};

/* Window of output (oy, ox): in-bounds rows [*y0, *y1), columns [*x0, *x1), and the divisor. */
static inline float ap_window(const struct avgpool2d *A, int oy, int ox, int *y0, int *y1,
                              int *x0, int *x1)
{
    const struct cv_geom *g = &A->pool.g;
    int hs = oy * g->sh - g->ph, ws = ox * g->sw - g->pw;
    int he = hs + g->kh, we = ws + g->kw;
    if (he > g->h + g->ph)
        he = g->h + g->ph;
    if (we > g->w + g->pw)
        we = g->w + g->pw;
    const int pool = (he - hs) * (we - ws);
    hs = hs < 0 ? 0 : hs;
    ws = ws < 0 ? 0 : ws;
    he = he > g->h ? g->h : he;
    we = we > g->w ? g->w : we;
    *y0 = hs;
    *y1 = he;
    *x0 = ws;
    *x1 = we;
    const int div = A->count_include_pad ? pool : (he - hs) * (we - ws);
    return div > 0 ? 1.0f / (float)div : 0.0f;
}

static void ap_forward_plane(const struct cv_pool *P, int it, const float *xc, float *yc)
{
    (void)it;
    const struct avgpool2d *A = (const struct avgpool2d *)P;
    const int W = P->g.w, OH = P->g.oh, OW = P->g.ow;
    for (int oy = 0; oy < OH; oy++)
        for (int ox = 0; ox < OW; ox++) {
            int y0, y1, x0, x1;
            const float inv = ap_window(A, oy, ox, &y0, &y1, &x0, &x1);
            float s = 0.0f;
            for (int iy = y0; iy < y1; iy++)
                for (int ix = x0; ix < x1; ix++)
                    s += xc[iy * W + ix];
            yc[oy * OW + ox] = s * inv;
        }
}

static enum dsnn_status ap_forward(struct dsnn_layer *l, const float *x, float *y, int batch,
                                   bool train, struct dsnn_error *err)
{
    (void)train, (void)err;
    cv_pool_planes((const struct cv_pool *)l, batch, ap_forward_plane, x, y, false);
    return DSNN_OK;
}

static void ap_backward_plane(const struct cv_pool *P, int it, const float *dyc, float *dc)
{
    (void)it;
    const struct avgpool2d *A = (const struct avgpool2d *)P;
    const int H = P->g.h, W = P->g.w, OH = P->g.oh, OW = P->g.ow;
    memset(dc, 0, sizeof(float) * (size_t)H * W);
    for (int oy = 0; oy < OH; oy++)
        for (int ox = 0; ox < OW; ox++) {
            int y0, y1, x0, x1;
            const float v = dyc[oy * OW + ox] * ap_window(A, oy, ox, &y0, &y1, &x0, &x1);
            for (int iy = y0; iy < y1; iy++)
                for (int ix = x0; ix < x1; ix++)
                    dc[iy * W + ix] += v;
        }
}

static enum dsnn_status ap_backward(struct dsnn_layer *l, const float *x, const float *y,
                                    const float *dy, float *dx, int batch, struct dsnn_error *err)
{
    (void)x, (void)y, (void)err;
    if (dx)
        cv_pool_planes((const struct cv_pool *)l, batch, ap_backward_plane, dy, dx, true);
    return DSNN_OK;
}

static const struct dsnn_layer_ops avgpool2d_ops = {
    .type = "avgpool2d",
    .forward = ap_forward,
    .backward = ap_backward,
};

static struct dsnn_layer *ap_new(const char *name, struct dsnn_shape in, int kh, int kw,
                                 int stride, int padding, bool count_include_pad,
                                 struct dsnn_error *err)
{
    char k[32];
    snprintf(k, sizeof k, "%dx%d", kh, kw);
    const struct cv_geom g = {in.c, in.h, in.w, kh, kw, stride, stride, padding, padding, 0, 0};
    struct avgpool2d *A = cv_pool_new(sizeof *A, &avgpool2d_ops, name, "average", k, g, err);
    if (!A)
        return NULL;
    A->count_include_pad = count_include_pad;
    return &A->pool.base;
}

struct dsnn_layer *dsnn_avgpool2d_new(const char *name, struct dsnn_shape in, int kernel,
                                      int stride, int padding, bool count_include_pad,
                                      struct dsnn_error *err)
{
    return ap_new(name ? name : "avgpool2d", in, kernel, kernel, stride <= 0 ? kernel : stride,
                  padding, count_include_pad, err);
}

struct dsnn_layer *dsnn_global_avgpool2d_new(const char *name, struct dsnn_shape in,
                                             struct dsnn_error *err)
{
    return ap_new(name ? name : "avgpool2d", in, in.h, in.w, 1, 0, true, err);
}
