/* layers/im2col.c - window geometry, im2col / col2im and the per-thread workspace of the convolution
 * layers (dense and sparse). */
#include "layers/layers_impl.h"
#include "dsnn/net.h"

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

/* The main thread's buffers are freed at exit (other threads' at their exit are not: the layers
 * only call the workspace from the thread that runs the network). */
__attribute__((destructor)) static void ws_release(void)
{
    for (int i = 0; i < WS_SLOTS; i++) {
        free(g_ws[i].p);
        g_ws[i].p = NULL;
        g_ws[i].n = 0;
    }
}

int cv_chunk(const struct cv_geom *g, int rows_a, int rows_b, int batch)
{
    size_t P = (size_t)g->oh * (size_t)g->ow;
    size_t rows = (size_t)(rows_a > rows_b ? rows_a : rows_b);
    size_t per = rows * P;
    size_t nb = per ? g_ws_limit / per : (size_t)batch;
    if (nb < 1)
        nb = 1;
    if (nb > (size_t)batch)
        nb = (size_t)batch;
    return (int)nb;
}

/* ---- im2col / col2im ---- */

void cv_valid_range(int o, int s, int p, int j, int w, int *x0, int *x1)
{
    /* ox * s >= p - j  and  ox * s <= w - 1 + p - j */
    int lo = p - j, hi = w - 1 + p - j;
    int a = lo <= 0 ? 0 : (lo + s - 1) / s;
    int b = hi < 0 ? 0 : hi / s + 1;
    if (a > o)
        a = o;
    if (b > o)
        b = o;
    if (b < a)
        b = a;
    *x0 = a;
    *x1 = b;
}

/* Work on one (image b, channel c) plane of a batch whose column matrix has rows of N entries;
 * in and out are the batch's whole arrays. */
typedef void (*cv_plane_fn)(const struct cv_geom *g, size_t N, int b, int c, const float *in,
                            float *out);

/* Runs fn on every (image, channel) plane of a batch of nb images, one plane per loop item, on
 * the layer threads when the column matrix is large enough to pay for them. */
static void cv_each_plane(const struct cv_geom *g, int nb, cv_plane_fn fn, const float *in,
                          float *out)
{
    const int C = g->c;
    const size_t N = (size_t)g->oh * g->ow * (size_t)nb;
    const int nt = ly_threads();
    const int items = nb * C;
    const bool par = nt > 1 && items > 1 && N * g->kh * g->kw * C >= 32768;
#pragma omp parallel for schedule(static) num_threads(nt) if (par)
    for (int it = 0; it < items; it++)
        fn(g, N, it / C, it % C, in, out);
}

/* The window offset (i, j) of channel c: the offset of its row of the column matrix for image b,
 * and the output columns [*x0, *x1) that read inside the image. */
static size_t cv_tap(const struct cv_geom *g, size_t N, int b, int c, int i, int j, int *x0,
                     int *x1)
{
    cv_valid_range(g->ow, g->sw, g->pw, j, g->w, x0, x1);
    return (((size_t)c * g->kh + i) * g->kw + j) * N + (size_t)b * g->oh * g->ow;
}

static void im2col_plane(const struct cv_geom *g, size_t N, int b, int c, const float *x,
                         float *cols)
{
    const int H = g->h, W = g->w, SH = g->sh, SW = g->sw, PH = g->ph, PW = g->pw;
    const int OH = g->oh, OW = g->ow;
    const float *xc = x + ((size_t)b * g->c + c) * H * W;
    for (int i = 0; i < g->kh; i++) {
        for (int j = 0; j < g->kw; j++) {
            int x0, x1;
            float *dst = cols + cv_tap(g, N, b, c, i, j, &x0, &x1);
            const int off = j - PW; /* input column of ox is ox * SW + off */
            for (int oy = 0; oy < OH; oy++) {
                float *row = dst + (size_t)oy * OW;
                const int iy = oy * SH - PH + i;
                if (iy < 0 || iy >= H) {
                    memset(row, 0, sizeof(float) * (size_t)OW);
                    continue;
                }
                const float *src = xc + (size_t)iy * W;
                for (int ox = 0; ox < x0; ox++)
                    row[ox] = 0.0f;
                if (SW == 1) {
                    if (x1 > x0)
                        memcpy(row + x0, src + x0 + off, sizeof(float) * (size_t)(x1 - x0));
                } else {
                    for (int ox = x0; ox < x1; ox++)
                        row[ox] = src[ox * SW + off];
                }
                for (int ox = x1; ox < OW; ox++)
                    row[ox] = 0.0f;
            }
        }
    }
}

static void col2im_plane(const struct cv_geom *g, size_t N, int b, int c, const float *cols,
                         float *dx)
{
    const int H = g->h, W = g->w, SH = g->sh, SW = g->sw, PH = g->ph, PW = g->pw;
    const int OH = g->oh, OW = g->ow;
    float *dc = dx + ((size_t)b * g->c + c) * H * W;
    memset(dc, 0, sizeof(float) * (size_t)H * W);
    for (int i = 0; i < g->kh; i++) {
        for (int j = 0; j < g->kw; j++) {
            int x0, x1;
            const float *src = cols + cv_tap(g, N, b, c, i, j, &x0, &x1);
            const int off = j - PW;
            for (int oy = 0; oy < OH; oy++) {
                const int iy = oy * SH - PH + i;
                if (iy < 0 || iy >= H)
                    continue;
                const float *restrict row = src + (size_t)oy * OW;
                float *restrict d = dc + (size_t)iy * W;
                if (SW == 1) { /* contiguous: vectorised */
                    float *restrict dd = d + off;
                    for (int ox = x0; ox < x1; ox++)
                        dd[ox] += row[ox];
                } else {
                    for (int ox = x0; ox < x1; ox++)
                        d[ox * SW + off] += row[ox];
                }
            }
        }
    }
}

void cv_im2col(const struct cv_geom *g, const float *x, int nb, float *cols)
{
    cv_each_plane(g, nb, im2col_plane, x, cols);
}

void cv_col2im(const struct cv_geom *g, const float *cols, int nb, float *dx)
{
    cv_each_plane(g, nb, col2im_plane, cols, dx);
}

const float *cv_cols_of(const struct cv_geom *g, const float *x, int b0, int nb)
{
    const size_t K = (size_t)g->c * g->kh * g->kw, P = (size_t)g->oh * g->ow;
    float *cols = ws_get(0, K * P * (size_t)nb);
    if (cols)
        cv_im2col(g, x + (size_t)b0 * g->c * g->h * g->w, nb, cols);
    return cols;
}

/* Copies the (image b, row o) blocks of P values between the layout of a product, [rows][nb P],
 * and that of the images, [nb][rows][P], in the direction to_images says; bias[o] (if not NULL)
 * is added on the way. */
static void cv_relayout(const float *src, int rows, int P, int nb, const float *bias,
                        bool to_images, float *dst)
{
    const size_t N = (size_t)P * nb;
    const int nt = ly_threads();
    const int items = nb * rows;
    const bool par = nt > 1 && items > 1 && N * rows >= 65536;
#pragma omp parallel for schedule(static) num_threads(nt) if (par)
    for (int it = 0; it < items; it++) {
        const int b = it / rows, o = it % rows;
        const size_t in_product = (size_t)o * N + (size_t)b * P;
        const size_t in_images = ((size_t)b * rows + o) * P;
        const float *s = src + (to_images ? in_product : in_images);
        float *d = dst + (to_images ? in_images : in_product);
        if (bias) {
            const float bo = bias[o];
            for (int p = 0; p < P; p++)
                d[p] = s[p] + bo;
        } else {
            memcpy(d, s, sizeof(float) * (size_t)P);
        }
    }
}

void cv_scatter(const float *ybuf, int rows, int P, int nb, const float *bias, float *y)
{
    cv_relayout(ybuf, rows, P, nb, bias, true, y);
}

void cv_gather(const float *y, int rows, int P, int nb, float *ybuf)
{
    cv_relayout(y, rows, P, nb, NULL, false, ybuf);
}
