/* layers/conv_geom.c - window geometry and the per-thread workspace of the convolution and pooling
 * layers (dense and sparse). */
#include "layers/layers_impl.h"
#include "dsnn/net.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

bool cv_geom_resolve(struct cv_geom *g)
{
    if (g->c <= 0 || g->h <= 0 || g->w <= 0 || g->kh <= 0 || g->kw <= 0 || g->sh <= 0 ||
        g->sw <= 0 || g->ph < 0 || g->pw < 0)
        return false;
    int64_t hh = (int64_t)g->h + 2 * (int64_t)g->ph - g->kh;
    int64_t ww = (int64_t)g->w + 2 * (int64_t)g->pw - g->kw;
    if (hh < 0 || ww < 0)
        return false;
    g->oh = (int)(hh / g->sh + 1);
    g->ow = (int)(ww / g->sw + 1);
    return true;
}

bool cv_conv_geom(const char *name, struct dsnn_shape in, int out_c, int kernel, int stride,
                       int padding, struct cv_geom *g, struct dsnn_error *err)
{
    memset(g, 0, sizeof *g);
    g->c = in.c;
    g->h = in.h;
    g->w = in.w;
    g->kh = g->kw = kernel;
    g->sh = g->sw = stride;
    g->ph = g->pw = padding;
    if (out_c <= 0 || !cv_geom_resolve(g)) {
        dsnn_error_set(err, DSNN_ERR_INVALID,
                       "layer '%s': invalid convolution of a %dx%dx%d input to %d channels with "
                       "kernel %d, stride %d, padding %d",
                       name, in.c, in.h, in.w, out_c, kernel, stride, padding);
        return false;
    }
    return true;
}

void *cv_pool_new(size_t size, const struct dsnn_layer_ops *ops, const char *name,
                  const char *kind, const char *kernel, struct cv_geom g, struct dsnn_error *err)
{
    if (!cv_geom_resolve(&g) || g.ph > g.kh / 2 || g.pw > g.kw / 2) {
        dsnn_error_set(err, DSNN_ERR_INVALID,
                       "layer '%s': invalid %s pooling of a %dx%dx%d input with kernel %s, "
                       "stride %d, padding %d (padding must be <= kernel / 2)",
                       name, kind, g.c, g.h, g.w, kernel, g.sh, g.ph);
        return NULL;
    }
    struct cv_pool *P = dsnn_layer_alloc(size, ops, name, (struct dsnn_shape){g.c, g.h, g.w},
                                         (struct dsnn_shape){g.c, g.oh, g.ow}, err);
    if (P)
        P->g = g;
    return P;
}

int ly_threads(void)
{
    int t = dsnn_get_num_threads();
    return t > 0 ? t : 1;
}

int ly_elem_threads(size_t n)
{
    return n >= ((size_t)1 << 16) && !omp_in_parallel() ? ly_threads() : 1;
}

void cv_pool_planes(const struct cv_pool *P, int batch, cv_pool_plane_fn fn, const float *in,
                    float *out, bool backward)
{
    const struct cv_geom *g = &P->g;
    const size_t HW = (size_t)g->h * g->w, OHW = (size_t)g->oh * g->ow;
    const size_t in_plane = backward ? OHW : HW, out_plane = backward ? HW : OHW;
    const int items = batch * g->c, nt = ly_threads();
    const bool par = nt > 1 && items > 1 && (size_t)items * g->h * g->w >= 32768;
#pragma omp parallel for schedule(static) num_threads(nt) if (par)
    for (int it = 0; it < items; it++)
        fn(P, it, in + (size_t)it * in_plane, out + (size_t)it * out_plane);
}

/* ---- workspace ---- */

static size_t g_ws_limit = (size_t)4 << 20; /* floats (16 MiB) */

void dsnn_conv_set_workspace_limit(size_t bytes)
{
    size_t f = bytes / sizeof(float);
    g_ws_limit = f < 1024 ? 1024 : f;
}

size_t ws_limit_floats(void)
{
    return g_ws_limit;
}

static _Thread_local struct {
    float *p;
    size_t n;
} g_ws[WS_SLOTS];

float *ws_get(int slot, size_t floats)
{
    if (slot < 0 || slot >= WS_SLOTS)
        return NULL;
    if (floats == 0)
        floats = 1;
    if (g_ws[slot].n < floats) {
        free(g_ws[slot].p);
        g_ws[slot].p = malloc(floats * sizeof(float));
        g_ws[slot].n = g_ws[slot].p ? floats : 0;
    }
    return g_ws[slot].p;
}

/* The main thread's buffers are freed at exit; the layer threads' buffers live as long as the
 * thread pool (until exit). */
__attribute__((destructor)) static void ws_release(void)
{
    for (int i = 0; i < WS_SLOTS; i++) {
        free(g_ws[i].p);
        g_ws[i].p = NULL;
        g_ws[i].n = 0;
    }
}
