/* layers/maxpool2d.c - 2d max pooling (PyTorch MaxPool2d, ceil_mode False, dilation 1). */
#include "dsnn/layers.h"
#include "layers/layers_impl.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct maxpool2d {
    struct cv_pool pool; /* first */
    int32_t *argmax; /* [cap][c][oh][ow]: index h * w of the input of each output */
    int cap;
};

static const struct dsnn_layer_ops maxpool2d_ops;

/* The 2x2 window of stride 2 without padding (VGG's and LeNet's pooling): every window in
 * bounds, scanned in the same order with the same rule as the general case, without branches. */
static void mp_forward_plane_2x2(const struct cv_geom *g, const float *xc, float *yc, int32_t *ac)
{
    const int W = g->w, OH = g->oh, OW = g->ow;
    for (int oy = 0; oy < OH; oy++) {
        const float *r0 = xc + (size_t)(2 * oy) * W, *r1 = r0 + W;
        const int32_t i0 = 2 * oy * W;
        float *yr = yc + (size_t)oy * OW;
        int32_t *ar = ac + (size_t)oy * OW;
        for (int ox = 0; ox < OW; ox++) {
            const float a = r0[2 * ox], b = r0[2 * ox + 1], c = r1[2 * ox], d = r1[2 * ox + 1];
            const int32_t ia = i0 + 2 * ox;
            /* from -inf at the first index, replaced by a larger value or a NaN (PyTorch) */
            float m = a;
            int32_t best = ia;
            bool t = b > m || isnan(b);
            m = t ? b : m;
            best = t ? ia + 1 : best;
            t = c > m || isnan(c);
            m = t ? c : m;
            best = t ? ia + W : best;
            t = d > m || isnan(d);
            m = t ? d : m;
            best = t ? ia + W + 1 : best;
            yr[ox] = m;
            ar[ox] = best;
        }
    }
}

static void mp_forward_plane(const struct cv_pool *P, int it, const float *xc, float *yc)
{
    const struct cv_geom *g = &P->g;
    const int H = g->h, W = g->w, OH = g->oh, OW = g->ow;
    int32_t *ac = ((const struct maxpool2d *)P)->argmax + (size_t)it * OH * OW;
    if (g->kh == 2 && g->kw == 2 && g->sh == 2 && g->sw == 2 && g->ph == 0 && g->pw == 0) {
        mp_forward_plane_2x2(g, xc, yc, ac);
        return;
    }
    for (int oy = 0; oy < OH; oy++) {
        int y0 = oy * g->sh - g->ph, y1 = y0 + g->kh;
        y0 = y0 < 0 ? 0 : y0;
        y1 = y1 > H ? H : y1;
        for (int ox = 0; ox < OW; ox++) {
            int x0 = ox * g->sw - g->pw, x1 = x0 + g->kw;
            x0 = x0 < 0 ? 0 : x0;
            x1 = x1 > W ? W : x1;
            /* PyTorch: first in-bounds index, replaced by a larger value or a NaN */
            int best = y0 * W + x0;
            float m = -INFINITY;
            for (int iy = y0; iy < y1; iy++)
                for (int ix = x0; ix < x1; ix++) {
                    const float v = xc[iy * W + ix];
                    if (v > m || isnan(v)) {
                        m = v;
                        best = iy * W + ix;
                    }
                }
            yc[oy * OW + ox] = m;
            ac[oy * OW + ox] = best;
        }
    }
}

static enum dsnn_status mp_forward(struct dsnn_layer *l, const float *x, float *y, int batch,
                                   bool train, struct dsnn_error *err)
{
    (void)train;
    struct maxpool2d *M = (struct maxpool2d *)l;
    if (batch > M->cap) {
        int32_t *a = realloc(M->argmax, sizeof(int32_t) * (size_t)batch *
                                            (size_t)dsnn_shape_size(l->out));
        if (!a)
            return dsnn_error_set(err, DSNN_ERR_NOMEM, "layer '%s': out of memory in forward", l->name);
        M->argmax = a;
        M->cap = batch;
    }
    cv_pool_planes(&M->pool, batch, mp_forward_plane, x, y, false);
    return DSNN_OK;
}

static void mp_backward_plane(const struct cv_pool *P, int it, const float *dyc, float *dc)
{
    const size_t HW = (size_t)P->g.h * P->g.w, OHW = (size_t)P->g.oh * P->g.ow;
    const int32_t *ac = ((const struct maxpool2d *)P)->argmax + (size_t)it * OHW;
    memset(dc, 0, sizeof(float) * HW);
    for (size_t p = 0; p < OHW; p++)
        dc[ac[p]] += dyc[p];
}

static enum dsnn_status mp_backward(struct dsnn_layer *l, const float *x, const float *y,
                                    const float *dy, float *dx, int batch, struct dsnn_error *err)
{
    (void)x, (void)y;
    struct maxpool2d *M = (struct maxpool2d *)l;
    if (!dx)
        return DSNN_OK;
    if (batch > M->cap)
        return dsnn_error_set(err, DSNN_ERR_INVALID, "layer '%s': backward called with a batch larger than the buffers or without its forward state (batch %d)", l->name, batch);
    cv_pool_planes(&M->pool, batch, mp_backward_plane, dy, dx, true);
    return DSNN_OK;
}

static void mp_destroy(struct dsnn_layer *l)
{
    free(((struct maxpool2d *)l)->argmax);
    free(l);
}

static const struct dsnn_layer_ops maxpool2d_ops = {
    .type = "maxpool2d",
    .forward = mp_forward,
    .backward = mp_backward,
    .destroy = mp_destroy,
};

struct dsnn_layer *dsnn_maxpool2d_new(const char *name, struct dsnn_shape in, int kernel,
                                      int stride, int padding, struct dsnn_error *err)
{
    if (!name)
        name = "maxpool2d";
    if (stride <= 0)
        stride = kernel;
    char k[16];
    snprintf(k, sizeof k, "%d", kernel);
    const struct cv_geom g = {in.c, in.h, in.w, kernel, kernel, stride, stride, padding, padding,
                              0, 0};
    struct maxpool2d *M = cv_pool_new(sizeof *M, &maxpool2d_ops, name, "max", k, g, err);
    return M ? &M->pool.base : NULL;
}
