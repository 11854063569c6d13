/* layers/conv_gemm.c - the dense convolution engine (conv2d, and the dense path of sparse_conv2d):
 * implicit GEMM over groups of output positions with the kernel set's gemm tile
 * (sparse/kernels.inc, SP_GMR x gemm_nr):
 *   forward          Y[m][n]     = sum_k W[m][k] cols[k][n]   tiles of 6 channels x nr positions
 *   input gradient   dcols[k][n] = sum_m W[m][k] dY[m][n]     tiles of 6 taps x nr positions,
 *                                                             then col2im of the group
 *   weight gradient  dW[m][k]    = sum_n dY[m][n] cols[k][n]  tiles of 6 channels x nr taps
 * where n runs over the batch's output positions (n = b P + p) and k over the window taps
 * (k = (c kh + i) kw + j). A group's window columns are packed straight from the images into
 * panels of nr positions (no im2col matrix of the batch; for the weight gradient into rows, then
 * transposed into panels of nr taps) and its products are written straight into the image
 * layout (no copy of the batch between layouts). The reductions over k and m run in blocks of
 * CG_KC, so that the packed block of a group stays in L2; a tile sweeps one sliver of the other
 * operand (in L1) over the block's panels.
 *
 * Layers of at least CG_DIRECT_C channels with batches that fill the tile's panels of samples
 * take the direct path below for the forward and the input gradient instead (no packing per
 * group, padding taps skipped), and for the weight gradient when the output has at most
 * CG_DW_DIRECT_P positions.
 *
 * Threads: the forward and the input gradient split the batch's images, the weight gradient the
 * taps (panels of nr). Every output has one owner and a fixed order of summation (groups start
 * at multiples of the group size, col2im's runs are cut by rows only), so results do not depend
 * on the number of threads. */
#include "layers/layers_impl.h"
#include "sparse/sparse_impl.h"

#include <limits.h>
#include <omp.h>
#include <stdint.h>
#include <string.h>

#define CG_G 128  /* output positions per group (at most) */
#define CG_KC 256 /* reduction block of the forward and of the input gradient */

/* A run of consecutive output positions of a group inside one panel and one image (and one
 * output row when cut by rows): group columns [col, col + len), image b, position p = oy ow + ox
 * of the first. */
struct cg_seg {
    int col, len, b, p, oy, ox;
};

/* Cuts positions [n0, n0 + cnt) of the batch into runs; by_row: a run also stays in one output
 * row (the windows of a row are one stretch of input rows). Returns the number of runs (at most
 * cnt). */
static int cg_runs(const struct cv_geom *g, int64_t n0, int cnt, int nr, bool by_row,
                   struct cg_seg *s)
{
    const int P = g->oh * g->ow;
    int ns = 0;
    for (int t = 0; t < cnt;) {
        const int64_t n = n0 + t;
        const int b = (int)(n / P), p = (int)(n % P), oy = p / g->ow, ox = p % g->ow;
        int len = by_row ? g->ow - ox : P - p;
        if (len > nr - t % nr)
            len = nr - t % nr;
        if (len > cnt - t)
            len = cnt - t;
        s[ns++] = (struct cg_seg){t, len, b, p, oy, ox};
        t += len;
    }
    return ns;
}

/* Tap (i, j) of a run cut by rows: the run's positions t in [*t0, *t1) read input row *iy at
 * column *ix + t sw; the others read padding. */
static void cg_tap(const struct cv_geom *g, const struct cg_seg *s, int i, int j, int *iy,
                   int *ix, int *t0, int *t1)
{
    *iy = s->oy * g->sh - g->ph + i;
    *ix = s->ox * g->sw - g->pw + j;
    int a = 0, b = 0;
    if (*iy >= 0 && *iy < g->h) {
        if (g->sw == 1) { /* no divisions on the common path */
            a = *ix >= 0 ? 0 : -*ix;
            b = g->w - *ix;
        } else {
            a = *ix >= 0 ? 0 : (-*ix + g->sw - 1) / g->sw;
            b = *ix > g->w - 1 ? 0 : (g->w - 1 - *ix) / g->sw + 1;
        }
        if (a > s->len)
            a = s->len;
        if (b > s->len)
            b = s->len;
        if (b < a)
            b = a;
    }
    *t0 = a;
    *t1 = b;
}

/* The window columns of taps [k0, k0 + kc) at a group's positions, from the runs sg (cut by
 * rows, and by panels of pw columns): dst[(col / pw) ps + kk ks + col % pw] = cols[k0 + kk][col]
 * (0 on padding). Runs and taps outside, channels inside: a run's border arithmetic is done once
 * per tap, not once per row of the block, and the inner loop is a copy of the run. */
/* The runs are short (a row of the group: 32 floats or fewer, 1 or 2 of padding at the ends):
 * copied and zeroed by inline loops, not calls of memcpy / memset (GCC would turn the loops into
 * those calls; the calls cost more than the copies). Other compilers keep their choice. */
#if defined(__GNUC__) && !defined(__clang__)
#define CG_INLINE_COPIES __attribute__((optimize("no-tree-loop-distribute-patterns")))
#else
#define CG_INLINE_COPIES
#endif
CG_INLINE_COPIES static void
cg_pack_cols(const struct cv_geom *g, const float *x, const struct cg_seg *sg, int ns, int k0,
             int kc, float *dst, int pw, size_t ps, size_t ks)
{
    const int taps = g->kh * g->kw;
    const size_t HW = (size_t)g->h * g->w, img = (size_t)g->c * HW;
    const int c0 = k0 / taps, c1 = (k0 + kc - 1) / taps + 1;
    for (int q = 0; q < ns; q++) {
        const struct cg_seg *s = &sg[q];
        float *ds = dst + (size_t)(s->col / pw) * ps + s->col % pw;
        const float *xb = x + (size_t)s->b * img;
        const int len = s->len;
        for (int i = 0; i < g->kh; i++)
            for (int j = 0; j < g->kw; j++) {
                const int tap = i * g->kw + j;
                int iy, ix, t0, t1;
                cg_tap(g, s, i, j, &iy, &ix, &t0, &t1);
                /* channels whose tap k = c taps + tap lies in [k0, k0 + kc) */
                const int ca = c0 * taps + tap < k0 ? c0 + 1 : c0;
                const int cb = (c1 - 1) * taps + tap >= k0 + kc ? c1 - 1 : c1;
                if (ca >= cb)
                    continue;
                float *d = ds + (size_t)(ca * taps + tap - k0) * ks;
                const size_t dstep = (size_t)taps * ks;
                if (t1 <= t0) { /* the run reads padding only */
                    for (int c = ca; c < cb; c++, d += dstep)
                        for (int u = 0; u < len; u++)
                            d[u] = 0.0f;
                    continue;
                }
                /* the run's first input read, at t0 */
                const float *src = xb + (size_t)ca * HW + (size_t)iy * g->w +
                                   (size_t)(ix + t0 * g->sw);
                if (g->sw == 1 && t0 == 0 && t1 == len) { /* the common case: a plain copy */
                    for (int c = ca; c < cb; c++, d += dstep, src += HW) {
                        float *restrict dd = d;
                        const float *restrict ss = src;
                        for (int u = 0; u < len; u++)
                            dd[u] = ss[u];
                    }
                    continue;
                }
                const int n = t1 - t0, sw = g->sw;
                for (int c = ca; c < cb; c++, d += dstep, src += HW) {
                    float *restrict dd = d + t0;
                    const float *restrict ss = src;
                    for (int u = 0; u < t0; u++)
                        d[u] = 0.0f;
                    if (sw == 1)
                        for (int u = 0; u < n; u++)
                            dd[u] = ss[u];
                    else
                        for (int u = 0; u < n; u++)
                            dd[u] = ss[u * sw];
                    for (int u = t1; u < len; u++)
                        d[u] = 0.0f;
                }
            }
    }
}

/* The workspace of a pass: 64-byte aligned buffers of the calling thread. */
static float *cg_ws(int slot, size_t floats)
{
    float *p = ws_get(slot, floats + 16);
    return p ? (float *)(((uintptr_t)p + 63) & ~(uintptr_t)63) : NULL;
}

static size_t cg_round(size_t n, size_t to)
{
    return (n + to - 1) / to * to;
}

/* Positions per group: at most CG_G, fewer when a group's largest buffer (rows x positions)
 * would pass the workspace limit, at least one panel. */
static int cg_group(size_t rows, int nr)
{
    size_t g = ws_limit_floats() / (rows ? rows : 1);
    g = g / (size_t)nr * (size_t)nr;
    if (g > CG_G)
        g = CG_G;
    return g < (size_t)nr ? nr : (int)g;
}

/* Threads for a pass of `flop` FLOPs over `items` independent parts. */
static int cg_threads(double flop, int64_t items)
{
    int nt = ly_threads();
    if (flop < BLAS_MT_FLOP || omp_in_parallel())
        nt = 1;
    return items < nt ? (items > 0 ? (int)items : 1) : nt;
}

/* The weights as the A operands of the tiles, one set per tap, in workspace slot 3 of the
 * calling thread: out[((t nsl + sliver) cols + q) SP_GMR + r] = src[row rs + q cs + t] with
 * row = 6 sliver + r, for t < taps and q < cols (0 for rows >= rows: rounded up to the tile).
 * The grouped path packs one set (taps 1: out[sliver][q][r], k = q); the direct path one per
 * tap (forward: rows M, rs = K, cols c, cs = taps; input gradient: rows c, rs = taps, cols M,
 * cs = K). NULL if out of memory. */
static const float *cg_pack_slivers(const float *src, int rows, int cols, int taps, size_t rs,
                                    size_t cs)
{
    const size_t nsl = cg_round((size_t)rows, SP_GMR) / SP_GMR;
    float *out = cg_ws(3, (size_t)taps * nsl * SP_GMR * (size_t)cols);
    if (!out)
        return NULL;
    const int64_t items = (int64_t)taps * (int64_t)nsl;
    const int nt = cg_threads((double)items * SP_GMR * cols * 64.0, items);
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
    for (int64_t it = 0; it < items; it++) {
        const int t = (int)(it / (int64_t)nsl);
        const size_t sl = (size_t)(it % (int64_t)nsl);
        float *o = out + (size_t)it * cols * SP_GMR;
        for (int r = 0; r < SP_GMR; r++) {
            const size_t row = sl * SP_GMR + (size_t)r;
            if (row >= (size_t)rows) {
                for (int q = 0; q < cols; q++)
                    o[(size_t)q * SP_GMR + r] = 0.0f;
                continue;
            }
            const float *w = src + row * rs + (size_t)t;
            for (int q = 0; q < cols; q++)
                o[(size_t)q * SP_GMR + r] = w[(size_t)q * cs];
        }
    }
    return out;
}

/* Groups of positions [n_begin, n_end): [*n0, *n0 + *cnt), starting at multiples of G. */
static bool cg_next_group(int64_t n_end, int G, int64_t *n0, int *cnt)
{
    *n0 += *cnt;
    if (*n0 >= n_end)
        return false;
    const int64_t stop = (*n0 / G + 1) * G;
    *cnt = (int)((stop < n_end ? stop : n_end) - *n0);
    return true;
}

/* ---- the direct path: sample-innermost planes, no window columns ----
 * For layers of at least CG_DIRECT_C reduction channels and batches that fill the tile's width,
 * the forward and the input gradient run over planes with the samples innermost, cut into
 * panels of nr samples,
 *   Xt[s / nr][pos][c][s % nr] = x[b0 + s][c][pos]  (s < nb, nb a multiple of nr; 0 past the
 *                                                    batch),
 * as one small GEMM per (output position, panel, tap): the tap's input position is fixed for the
 * whole panel, so its B operand is read in place from Xt (rows: the channels, nr floats apart)
 * and a tap that reads padding is skipped (no multiplications by padding: at 8 x 8 a sixth of
 * the taps, at 2 x 2 more than half). Nothing is packed per position; the copies are one
 * transpose of the input and one of the output per pass.
 *   forward          Yt[p][m][s]  = sum_{taps t valid at p} sum_c W[m][c, t] Xt[src(p, t)][c][s]
 *   input gradient   dXt[q][c][s] = sum_{(t, p) with src(p, t) = q} sum_m W[m][c, t] dYt[p][m][s]
 * (panel index left out). The input gradient of position q gathers, per tap, the one output
 * position whose window put tap t on q (none when the strides skip q), so it needs no col2im
 * either. Each position (with all its panels) is one thread's, summed in a fixed order (taps,
 * then channel blocks of CG_DC), so results do not depend on the number of threads. The weight
 * gradient's direct path (cg_dw_direct) is described there. */
#define CG_DIRECT_C 16 /* fewer reduction channels: the blocks of the tile would be too short */
#define CG_DC 64       /* channels per reduction block: a position's B panels stay in L1 */

/* Tap (i, j) from position pos of the pass: the source position, or -1 when it reads padding
 * (forward: the input position the window of output pos reads; input gradient (dx): the output
 * position whose window reads input pos with tap (i, j)). */
static int cg_src(const struct cv_geom *g, bool dx, int pos, int i, int j)
{
    if (!dx) {
        const int oy = pos / g->ow, ox = pos % g->ow;
        const int iy = oy * g->sh - g->ph + i, ix = ox * g->sw - g->pw + j;
        return iy < 0 || iy >= g->h || ix < 0 || ix >= g->w ? -1 : iy * g->w + ix;
    }
    const int iy = pos / g->w, ix = pos % g->w;
    const int ty = iy + g->ph - i, tx = ix + g->pw - j;
    if (ty < 0 || tx < 0 || ty % g->sh || tx % g->sw)
        return -1;
    const int oy = ty / g->sh, ox = tx / g->sw;
    return oy >= g->oh || ox >= g->ow ? -1 : oy * g->ow + ox;
}

/* Samples per pass of the direct path (a multiple of nr, the passes as even as the limit
 * allows), or 0 when it does not apply: fewer
 * than CG_DIRECT_C reduction channels, a batch that would leave more than a fifth of the
 * panels' columns empty, or planes of nr samples past the workspace limit. */
static int cg_direct_nb(int red, size_t src_pos, int rows, size_t dst_pos, int batch, int nr)
{
    if (red < CG_DIRECT_C || batch <= 0)
        return 0;
    const size_t full = cg_round((size_t)batch, (size_t)nr);
    if ((full - (size_t)batch) * 5 > full)
        return 0;
    const size_t per = (size_t)red * src_pos > cg_round((size_t)rows, SP_GMR) * dst_pos
                           ? (size_t)red * src_pos
                           : cg_round((size_t)rows, SP_GMR) * dst_pos;
    const size_t most = (ws_limit_floats() / (per + 1)) / (size_t)nr * (size_t)nr;
    if (most < (size_t)nr || per > (size_t)INT_MAX) /* the transposes take int row lengths */
        return 0;
    if (most >= full)
        return (int)full;
    /* passes of equal width (a pass of a single panel would reuse each sliver of A once) */
    const size_t passes = (full + most - 1) / most;
    return (int)cg_round((full + passes - 1) / passes, (size_t)nr);
}

/* One pass of the direct path over samples [b0, b0 + bn) (bn <= nb): in (the input of the
 * forward or dY of the input gradient, sample-major: [b][red][src_pos]) to out ([b][rows]
 * [dst_pos], overwritten; + bias[row] if bias). Ap from cg_pack_slivers (one set per tap).
 * The planes are cut into panels of nr samples, Xt[panel][pos][c][nr] and
 * Yt[panel][pos][row][nr], so that a tile's B rows and C rows are nr floats apart. A thread
 * takes a position with all its panels: a sliver of A (in L1) serves every panel. False if out
 * of memory. */
static bool cg_direct_pass(const struct cv_geom *g, bool dx, int rows, int red, const float *Ap,
                           const float *bias, const float *in, float *out, int b0, int bn,
                           int nb)
{
    const struct sp_kernels *kt = sp_kernels();
    const int nr = kt->gemm_nr, taps = g->kh * g->kw, npan = nb / nr;
    const size_t src_pos = dx ? (size_t)g->oh * g->ow : (size_t)g->h * g->w;
    const size_t dst_pos = dx ? (size_t)g->h * g->w : (size_t)g->oh * g->ow;
    const size_t Mp = cg_round((size_t)rows, SP_GMR), nsl = Mp / SP_GMR;
    const size_t xs = (size_t)red * nr, ys = Mp * (size_t)nr; /* floats per position */
    const size_t xp = src_pos * xs, yp = dst_pos * ys;       /* floats per panel */
    float *Xt = cg_ws(0, (size_t)npan * xp), *Yt = cg_ws(1, (size_t)npan * yp);
    if (!Xt || !Yt)
        return false;
    const size_t in_img = (size_t)red * src_pos, out_img = (size_t)rows * dst_pos;
    const float *inb = in + (size_t)b0 * in_img;
    float *outb = out + (size_t)b0 * out_img;
    const int64_t nin = (int64_t)red * npan;
    const int nt0 = cg_threads((double)in_img * bn * 16.0, nin);
#pragma omp parallel for schedule(static) num_threads(nt0) if (nt0 > 1)
    for (int64_t it = 0; it < nin; it++) {
        const int c = (int)(it % red), jp = (int)(it / red);
        kt->transpose_in(inb + (size_t)c * src_pos, (int)in_img, bn,
                         Xt + (size_t)jp * xp + (size_t)c * nr, xs, 0, (int)src_pos, jp * nr,
                         jp * nr + nr);
    }
    const int nt = cg_threads(2.0 * (double)Mp * red * taps * dst_pos * nb, (int64_t)dst_pos);
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt) if (nt > 1)
    for (int64_t pos = 0; pos < (int64_t)dst_pos; pos++) {
        float *C = Yt + (size_t)pos * ys;
        bool started = false;
        for (int i = 0; i < g->kh; i++)
            for (int j = 0; j < g->kw; j++) {
                const int src = cg_src(g, dx, (int)pos, i, j);
                if (src < 0)
                    continue;
                const int t = i * g->kw + j;
                const float *B = Xt + (size_t)src * xs;
                for (int c0 = 0; c0 < red; c0 += CG_DC) {
                    const int kc = red - c0 < CG_DC ? red - c0 : CG_DC;
                    const float *A = Ap + ((size_t)t * nsl * red + (size_t)c0) * SP_GMR;
                    for (size_t sl = 0; sl < nsl; sl++)
                        for (int jp = 0; jp < npan; jp++)
                            kt->gemm_tile(kc, A + sl * red * SP_GMR,
                                          B + (size_t)jp * xp + (size_t)c0 * nr, (size_t)nr,
                                          C + (size_t)jp * yp + sl * SP_GMR * nr, (size_t)nr,
                                          started);
                    started = true;
                }
            }
        if (!started) /* every tap reads padding */
            for (int jp = 0; jp < npan; jp++)
                memset(C + (size_t)jp * yp, 0, sizeof(float) * ys);
    }
    const int64_t nout = (int64_t)rows * npan;
    const int nt1 = cg_threads((double)out_img * bn * 16.0, nout);
#pragma omp parallel for schedule(static) num_threads(nt1) if (nt1 > 1)
    for (int64_t it = 0; it < nout; it++) {
        const int m = (int)(it % rows), jp = (int)(it / rows);
        if (jp * nr >= bn)
            continue;
        float *o = outb + (size_t)m * dst_pos;
        kt->transpose_out(Yt + (size_t)jp * yp + (size_t)m * nr, ys, (int)out_img, o, bn, 0,
                          (int)dst_pos, jp * nr, jp * nr + nr);
        if (bias) {
            const float bm = bias[m];
            const int bend = jp * nr + nr < bn ? jp * nr + nr : bn;
            for (int b = jp * nr; b < bend; b++)
                for (size_t q = 0; q < dst_pos; q++)
                    o[(size_t)b * out_img + q] += bm;
        }
    }
    return true;
}

/* The direct path over the whole batch; DSNN_ERR_NOMEM if out of memory. */
static enum dsnn_status cg_direct(const struct cv_geom *g, bool dx, int rows, int red,
                                  const float *W, const float *bias, const float *in,
                                  float *out, int batch, int nb)
{
    const int taps = g->kh * g->kw, K = g->c * taps;
    const float *Ap = dx ? cg_pack_slivers(W, rows, red, taps, (size_t)taps, (size_t)K)
                         : cg_pack_slivers(W, rows, red, taps, (size_t)K, (size_t)taps);
    if (!Ap)
        return DSNN_ERR_NOMEM;
    for (int b0 = 0; b0 < batch; b0 += nb) {
        const int bn = batch - b0 < nb ? batch - b0 : nb;
        if (!cg_direct_pass(g, dx, rows, red, Ap, bias, in, out, b0, bn, nb))
            return DSNN_ERR_NOMEM;
    }
    return DSNN_OK;
}

/* ---- forward ---- */

/* Bp[panel][kk][nr] = cols[k0 + kk][group column] for kk < kc (0 past the group's columns). */
static void cg_pack_windows(const struct cv_geom *g, const float *x, const struct cg_seg *sg,
                            int ns, int cnt, int nr, int k0, int kc, float *Bp)
{
    cg_pack_cols(g, x, sg, ns, k0, kc, Bp, nr, (size_t)kc * nr, (size_t)nr);
    const int tail = cnt % nr;
    if (tail) {
        float *d = Bp + (size_t)(cnt / nr) * kc * nr + tail;
        for (int kk = 0; kk < kc; kk++, d += nr)
            memset(d, 0, sizeof(float) * (size_t)(nr - tail));
    }
}

/* Output positions [n_begin, n_end) of the forward; false if out of memory. */
static bool cg_forward_part(const struct cv_geom *g, int M, const float *Ap, const float *bias,
                            const float *x, float *y, int64_t n_begin, int64_t n_end, int G)
{
    const struct sp_kernels *kt = sp_kernels();
    const int nr = kt->gemm_nr, K = g->c * g->kh * g->kw, P = g->oh * g->ow;
    const size_t Mp = cg_round((size_t)M, SP_GMR), Gp = cg_round((size_t)G, (size_t)nr);
    float *Bp = cg_ws(0, (size_t)(K < CG_KC ? K : CG_KC) * Gp);
    float *Cg = cg_ws(1, Mp * Gp);
    struct cg_seg *sg = (struct cg_seg *)(void *)cg_ws(2, sizeof(struct cg_seg) / sizeof(float) * (size_t)G);
    if (!Bp || !Cg || !sg)
        return false;
    int64_t n0 = n_begin;
    int cnt = 0;
    while (cg_next_group(n_end, G, &n0, &cnt)) {
        const int ns = cg_runs(g, n0, cnt, nr, true, sg), npan = (cnt + nr - 1) / nr;
        const size_t ldc = (size_t)npan * nr;
        for (int pc = 0; pc < K; pc += CG_KC) {
            const int kc = K - pc < CG_KC ? K - pc : CG_KC;
            cg_pack_windows(g, x, sg, ns, cnt, nr, pc, kc, Bp);
            for (size_t ir = 0; ir < Mp; ir += SP_GMR) /* a sliver in L1, the block in L2 */
                for (int jp = 0; jp < npan; jp++)
                    kt->gemm_tile(kc, Ap + ir * K + (size_t)pc * SP_GMR,
                                  Bp + (size_t)jp * kc * nr, (size_t)nr,
                                  Cg + ir * ldc + (size_t)jp * nr, ldc, pc > 0);
        }
        for (int q = 0; q < ns; q++) {
            const struct cg_seg *s = &sg[q];
            for (int m = 0; m < M; m++) {
                const float *src = Cg + (size_t)m * ldc + s->col;
                float *d = y + ((size_t)s->b * M + m) * P + s->p;
                if (bias) {
                    const float bm = bias[m];
                    for (int t = 0; t < s->len; t++)
                        d[t] = src[t] + bm;
                } else {
                    memcpy(d, src, sizeof(float) * (size_t)s->len);
                }
            }
        }
    }
    return true;
}

enum dsnn_status cv_forward(const struct cv_geom *g, int M, const float *W, const float *bias,
                            const float *x, float *y, int batch)
{
    const int K = g->c * g->kh * g->kw, P = g->oh * g->ow;
    const size_t Mp = cg_round((size_t)M, SP_GMR);
    if (batch <= 0)
        return DSNN_OK;
    const int nb = cg_direct_nb(g->c, (size_t)g->h * g->w, M, (size_t)P, batch,
                                sp_kernels()->gemm_nr);
    if (nb > 0)
        return cg_direct(g, false, M, g->c, W, bias, x, y, batch, nb);
    /* Ap[sliver][k][r] = W[6 sliver + r][k] (0 past M) */
    const float *Ap = cg_pack_slivers(W, M, K, 1, (size_t)K, 1);
    if (!Ap)
        return DSNN_ERR_NOMEM;
    const int G = cg_group(Mp > CG_KC ? Mp : CG_KC, sp_kernels()->gemm_nr);
    const int nt = cg_threads(2.0 * M * K * P * (double)batch, batch);
    bool ok = true;
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        int64_t b0, b1;
        dsnn_part_range(batch, omp_get_thread_num(), omp_get_num_threads(), 1, &b0, &b1);
        if (b1 > b0 && !cg_forward_part(g, M, Ap, bias, x, y, b0 * P, b1 * P, G)) {
#pragma omp atomic write
            ok = false;
        }
    }
    return ok ? DSNN_OK : DSNN_ERR_NOMEM;
}

/* ---- input gradient ---- */

/* Bd[panel][mm][nr] = dY[m0 + mm][group column] for mm < mc (runs cut by images). */
static void cg_pack_dy(const float *dy, int M, int P, const struct cg_seg *sg, int ns, int cnt,
                       int nr, int m0, int mc, float *Bd)
{
    const int tail = cnt % nr, last = cnt / nr;
    for (int mm = 0; mm < mc; mm++) {
        for (int q = 0; q < ns; q++) {
            const struct cg_seg *s = &sg[q];
            memcpy(Bd + ((size_t)(s->col / nr) * mc + mm) * nr + s->col % nr,
                   dy + ((size_t)s->b * M + m0 + mm) * P + s->p, sizeof(float) * (size_t)s->len);
        }
        if (tail)
            memset(Bd + ((size_t)last * mc + mm) * nr + tail, 0,
                   sizeof(float) * (size_t)(nr - tail));
    }
}

/* dx += the group's columns Dc [k][ldc] at the inputs their windows read (runs cut by rows).
 * Runs and taps outside, channels inside, as in cg_pack_cols. */
static void cg_col2im(const struct cv_geom *g, const float *Dc, size_t ldc,
                      const struct cg_seg *sg, int ns, float *dx)
{
    const int taps = g->kh * g->kw;
    const size_t HW = (size_t)g->h * g->w, img = (size_t)g->c * HW;
    for (int q = 0; q < ns; q++) {
        const struct cg_seg *s = &sg[q];
        for (int i = 0; i < g->kh; i++)
            for (int j = 0; j < g->kw; j++) {
                int iy, ix, t0, t1;
                cg_tap(g, s, i, j, &iy, &ix, &t0, &t1);
                if (t1 <= t0)
                    continue;
                const int n = t1 - t0, sw = g->sw;
                const float *src = Dc + (size_t)(i * g->kw + j) * ldc + (size_t)(s->col + t0);
                float *row = dx + (size_t)s->b * img + (size_t)iy * g->w + (size_t)(ix + t0 * sw);
                const size_t sstep = (size_t)taps * ldc;
                for (int c = 0; c < g->c; c++, src += sstep, row += HW) {
                    const float *restrict ss = src;
                    float *restrict d = row;
                    if (sw == 1)
                        for (int u = 0; u < n; u++)
                            d[u] += ss[u];
                    else
                        for (int u = 0; u < n; u++)
                            d[u * sw] += ss[u];
                }
            }
    }
}

/* dx of images [b0, b1); false if out of memory. */
static bool cg_dx_part(const struct cv_geom *g, int M, const float *At, const float *dy,
                       float *dx, int64_t b0, int64_t b1, int G)
{
    const struct sp_kernels *kt = sp_kernels();
    const int nr = kt->gemm_nr, K = g->c * g->kh * g->kw, P = g->oh * g->ow;
    const size_t Kp = cg_round((size_t)K, SP_GMR), Gp = cg_round((size_t)G, (size_t)nr);
    float *Bd = cg_ws(0, (size_t)(M < CG_KC ? M : CG_KC) * Gp);
    float *Dc = cg_ws(1, Kp * Gp);
    struct cg_seg *sg = (struct cg_seg *)(void *)cg_ws(2, 2 * sizeof(struct cg_seg) / sizeof(float) * (size_t)G);
    if (!Bd || !Dc || !sg)
        return false;
    struct cg_seg *rows = sg + G;
    const size_t img = (size_t)g->c * g->h * g->w;
    memset(dx + (size_t)b0 * img, 0, sizeof(float) * img * (size_t)(b1 - b0));
    int64_t n0 = b0 * P;
    int cnt = 0;
    while (cg_next_group(b1 * P, G, &n0, &cnt)) {
        const int ns = cg_runs(g, n0, cnt, nr, false, sg), npan = (cnt + nr - 1) / nr;
        /* col2im's runs are cut by rows only, not by panels: the order of the additions into
         * an input then depends on the rows and the groups (multiples of G, image starts),
         * not on where a thread's images begin */
        const int nrow = cg_runs(g, n0, cnt, G, true, rows);
        const size_t ldc = (size_t)npan * nr;
        for (int pc = 0; pc < M; pc += CG_KC) {
            const int mc = M - pc < CG_KC ? M - pc : CG_KC;
            cg_pack_dy(dy, M, P, sg, ns, cnt, nr, pc, mc, Bd);
            for (size_t ir = 0; ir < Kp; ir += SP_GMR)
                for (int jp = 0; jp < npan; jp++)
                    kt->gemm_tile(mc, At + ir * M + (size_t)pc * SP_GMR,
                                  Bd + (size_t)jp * mc * nr, (size_t)nr,
                                  Dc + ir * ldc + (size_t)jp * nr, ldc, pc > 0);
        }
        cg_col2im(g, Dc, ldc, rows, nrow, dx);
    }
    return true;
}

static enum dsnn_status cg_dx(const struct cv_geom *g, int M, const float *W, const float *dy,
                              int batch, float *dx)
{
    const int K = g->c * g->kh * g->kw, P = g->oh * g->ow;
    const size_t Kp = cg_round((size_t)K, SP_GMR);
    const int nb = cg_direct_nb(M, (size_t)P, g->c, (size_t)g->h * g->w, batch,
                                sp_kernels()->gemm_nr);
    if (nb > 0)
        return cg_direct(g, true, g->c, M, W, NULL, dy, dx, batch, nb);
    /* At[sliver][m][r] = W[m][6 sliver + r] (0 past K) */
    const float *At = cg_pack_slivers(W, K, M, 1, 1, (size_t)K);
    if (!At)
        return DSNN_ERR_NOMEM;
    const int G = cg_group(Kp > CG_KC ? Kp : CG_KC, sp_kernels()->gemm_nr);
    const int nt = cg_threads(2.0 * M * K * P * (double)batch, batch);
    bool ok = true;
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        int64_t b0, b1;
        dsnn_part_range(batch, omp_get_thread_num(), omp_get_num_threads(), 1, &b0, &b1);
        if (b1 > b0 && !cg_dx_part(g, M, At, dy, dx, b0, b1, G)) {
#pragma omp atomic write
            ok = false;
        }
    }
    return ok ? DSNN_OK : DSNN_ERR_NOMEM;
}

/* ---- weight gradient ---- */

/* dW[m][k] for the taps k of panels [p0, p1) (k = nr panel + q): tiles of 6 channels x nr
 * taps, reduced over a group's positions, with dY as the broadcast operand (6 channels
 * interleaved per position) and the window columns as the vector operand (nr taps interleaved
 * per position: packed in the image layout's row order, then transposed in 8 x 8 blocks). The
 * taps run in chunks of CG_KC so that a chunk's columns stay in L2. False if out of memory. */
static bool cg_dw_part(const struct cv_geom *g, int M, const float *x, const float *dy,
                       int batch, float *dW, int64_t p0, int64_t p1, int G)
{
    const struct sp_kernels *kt = sp_kernels();
    const int nr = kt->gemm_nr, K = g->c * g->kh * g->kw, P = g->oh * g->ow;
    const int k0 = (int)p0 * nr, k1 = (int)p1 * nr < K ? (int)p1 * nr : K;
    const int chunk = CG_KC / nr > 0 ? CG_KC / nr * nr : nr; /* taps per chunk */
    const size_t Mp = cg_round((size_t)M, SP_GMR), ldw = (size_t)(p1 - p0) * nr;
    float *Cn = cg_ws(0, (size_t)chunk * G);
    float *Bt = cg_ws(1, (size_t)chunk * G);
    float *Ad = cg_ws(2, Mp * (size_t)G);
    float *dWp = cg_ws(3, Mp * ldw);
    struct cg_seg *sg = (struct cg_seg *)(void *)cg_ws(4, 2 * sizeof(struct cg_seg) / sizeof(float) * (size_t)G);
    if (!Cn || !Bt || !Ad || !dWp || !sg)
        return false;
    struct cg_seg *rows = sg + G;
    memset(dWp, 0, sizeof(float) * Mp * ldw);
    int64_t n0 = 0;
    int cnt = 0;
    while (cg_next_group((int64_t)batch * P, G, &n0, &cnt)) {
        const int ns = cg_runs(g, n0, cnt, G, false, sg);
        const int nrow = cg_runs(g, n0, cnt, G, true, rows);
        /* Ad[sliver][t][r] = dY[6 sliver + r][n0 + t] (0 past M) */
        for (size_t m = 0; m < Mp; m++) {
            float *d = Ad + m / SP_GMR * SP_GMR * (size_t)cnt + m % SP_GMR;
            if (m >= (size_t)M) {
                for (int t = 0; t < cnt; t++)
                    d[(size_t)t * SP_GMR] = 0.0f;
                continue;
            }
            for (int q = 0; q < ns; q++) {
                const struct cg_seg *s = &sg[q];
                const float *src = dy + ((size_t)s->b * M + m) * P + s->p;
                float *dd = d + (size_t)s->col * SP_GMR;
                for (int t = 0; t < s->len; t++)
                    dd[(size_t)t * SP_GMR] = src[t];
            }
        }
        for (int kc0 = k0; kc0 < k1; kc0 += chunk) {
            const int kc = k1 - kc0 < chunk ? k1 - kc0 : chunk, npan = (kc + nr - 1) / nr;
            /* Cn[kk][t] = cols[kc0 + kk][n0 + t], then Bt[panel][t][q] = Cn[nr panel + q][t] */
            cg_pack_cols(g, x, rows, nrow, kc0, kc, Cn, G, 0, (size_t)cnt);
            for (int jp = 0; jp < npan; jp++) {
                const int valid = kc - jp * nr < nr ? kc - jp * nr : nr;
                dsnn_sp_transpose_in(Cn + (size_t)jp * nr * cnt, cnt, valid,
                                     Bt + (size_t)jp * cnt * nr, (size_t)nr, 0, cnt, 0, nr);
            }
            for (size_t sl = 0; sl < Mp; sl += SP_GMR)
                for (int jp = 0; jp < npan; jp++)
                    kt->gemm_tile(cnt, Ad + sl * (size_t)cnt, Bt + (size_t)jp * cnt * nr,
                                  (size_t)nr, dWp + sl * ldw + (size_t)(kc0 - k0 + jp * nr), ldw,
                                  true);
        }
    }
    for (int m = 0; m < M; m++)
        memcpy(dW + (size_t)m * K + k0, dWp + (size_t)m * ldw, sizeof(float) * (size_t)(k1 - k0));
    return true;
}

/* The weight gradient by the direct path (the conditions of cg_direct_nb with the input's
 * channels as the reduction side): per pass of nb samples the images are transposed to
 * Xc[pos][s][c] (channels innermost, padded to panels of nr) and dY packed into slivers
 * Ad[sliver][p][s][r] = dY[b0 + s][6 sliver + r][p]; then, per tap t and panel of nr channels,
 *   dWt[t][m][c] += sum_{p with src(p, t) valid} sum_s Ad[m][p][s] Xc[src(p, t)][s][c]
 * one tile per (position, sliver) with the samples as the reduction (B read in place: its rows,
 * the samples, are one position's, Cp floats apart; taps that read padding skipped). Each
 * (tap, channel panel) is one thread's, summed over passes and positions in a fixed order. */
/* Output positions up to which the weight gradient takes the direct path. Measured (Intel Xeon
 * AVX-512, 2 threads, batch 128, backward ms, direct vs grouped): 512x4x4 60 vs 68, 512x2x2 13
 * vs 19; at 8 x 8 and wider even or slower (256x8x8 71 vs 69, 128x16x16 87 vs 81): there the
 * grouped path's packing is cheap next to its products and its B block stays in L2. */
#define CG_DW_DIRECT_P 16

static enum dsnn_status cg_dw_direct(const struct cv_geom *g, int M, const float *x,
                                     const float *dy, int batch, float *dW, int nb)
{
    const struct sp_kernels *kt = sp_kernels();
    const int nr = kt->gemm_nr, taps = g->kh * g->kw, C = g->c, K = C * taps;
    const size_t HW = (size_t)g->h * g->w, P = (size_t)g->oh * g->ow;
    const size_t Mp = cg_round((size_t)M, SP_GMR), nsl = Mp / SP_GMR;
    const int cpan = (C + nr - 1) / nr;
    const size_t Cp = (size_t)cpan * nr;
    float *Xc = cg_ws(0, HW * nb * Cp), *Ad = cg_ws(1, Mp * P * nb);
    float *dWt = cg_ws(3, (size_t)taps * Mp * Cp);
    if (!Xc || !Ad || !dWt)
        return DSNN_ERR_NOMEM;
    memset(dWt, 0, sizeof(float) * (size_t)taps * Mp * Cp);
    const size_t in_img = (size_t)C * HW, out_img = (size_t)M * P;
    for (int b0 = 0; b0 < batch; b0 += nb) {
        const int bn = batch - b0 < nb ? batch - b0 : nb;
        const int nt0 = cg_threads((double)in_img * bn * 16.0, nb);
#pragma omp parallel for schedule(static) num_threads(nt0) if (nt0 > 1)
        for (int sm = 0; sm < nb; sm++) {
            float *d = Xc + (size_t)sm * Cp;
            if (sm >= bn) {
                for (size_t q = 0; q < HW; q++)
                    memset(d + q * nb * Cp, 0, sizeof(float) * Cp);
                continue;
            }
            kt->transpose_in(x + (size_t)(b0 + sm) * in_img, (int)HW, C, d, (size_t)nb * Cp, 0,
                             (int)HW, 0, (int)Cp);
        }
        const int nt1 = cg_threads((double)out_img * bn * 16.0, (int64_t)nsl);
#pragma omp parallel for schedule(static) num_threads(nt1) if (nt1 > 1)
        for (int64_t sl = 0; sl < (int64_t)nsl; sl++)
            for (int r = 0; r < SP_GMR; r++) {
                const size_t m = (size_t)sl * SP_GMR + (size_t)r;
                float *d = Ad + (size_t)sl * P * nb * SP_GMR + (size_t)r;
                for (int sm = 0; sm < nb; sm++) {
                    float *ds = d + (size_t)sm * SP_GMR;
                    const size_t step = (size_t)nb * SP_GMR;
                    if (m >= (size_t)M || sm >= bn) {
                        for (size_t q = 0; q < P; q++)
                            ds[q * step] = 0.0f;
                        continue;
                    }
                    const float *src = dy + (size_t)(b0 + sm) * out_img + m * P;
                    for (size_t q = 0; q < P; q++)
                        ds[q * step] = src[q];
                }
            }
        /* items: a panel of channels and a range of taps (the taps cut only as far as needed
         * to give every thread two items); positions outer, so that a position's slivers of
         * Ad serve all the item's taps from L2 */
        const int nt = cg_threads(2.0 * (double)Mp * K * P * bn, (int64_t)taps * cpan);
        int ntg = (2 * nt + cpan - 1) / cpan;
        ntg = ntg < 1 ? 1 : ntg > taps ? taps : ntg;
        const int64_t items = (int64_t)cpan * ntg;
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt) if (nt > 1)
        for (int64_t it = 0; it < items; it++) {
            const int cp = (int)(it / ntg), tg = (int)(it % ntg);
            const int t0 = taps * tg / ntg, t1 = taps * (tg + 1) / ntg;
            for (size_t pos = 0; pos < P; pos++) {
                const float *A = Ad + pos * nb * SP_GMR;
                for (int t = t0; t < t1; t++) {
                    const int src = cg_src(g, false, (int)pos, t / g->kw, t % g->kw);
                    if (src < 0)
                        continue;
                    const float *B = Xc + (size_t)src * nb * Cp + (size_t)cp * nr;
                    float *Ct = dWt + (size_t)t * Mp * Cp + (size_t)cp * nr;
                    for (size_t sl = 0; sl < nsl; sl++)
                        kt->gemm_tile(bn, A + sl * P * nb * SP_GMR, B, Cp, Ct + sl * SP_GMR * Cp,
                                      Cp, true);
                }
            }
        }
    }
    const int nt2 = cg_threads((double)M * K * 8.0, M);
#pragma omp parallel for schedule(static) num_threads(nt2) if (nt2 > 1)
    for (int m = 0; m < M; m++)
        for (int c = 0; c < C; c++)
            for (int t = 0; t < taps; t++)
                dW[(size_t)m * K + (size_t)c * taps + (size_t)t] =
                    dWt[((size_t)t * Mp + (size_t)m) * Cp + (size_t)c];
    return DSNN_OK;
}

static enum dsnn_status cg_dw(const struct cv_geom *g, int M, const float *x, const float *dy,
                              int batch, float *dW)
{
    const int K = g->c * g->kh * g->kw, P = g->oh * g->ow;
    const int nr = sp_kernels()->gemm_nr;
    /* the direct path's input planes hold the channels in whole panels of nr */
    const int nbd = g->c >= CG_DIRECT_C && P <= CG_DW_DIRECT_P
                        ? cg_direct_nb((int)cg_round((size_t)g->c, (size_t)nr),
                                       (size_t)g->h * g->w, M, (size_t)P, batch, nr)
                        : 0;
    if (nbd > 0)
        return cg_dw_direct(g, M, x, dy, batch, dW, nbd);
    const int64_t panels = (K + nr - 1) / nr;
    const size_t Mp = cg_round((size_t)M, SP_GMR);
    const int G = cg_group(Mp > CG_KC ? Mp : CG_KC, nr);
    const int nt = cg_threads(2.0 * M * K * P * (double)batch, panels);
    bool ok = true;
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        int64_t a, b;
        dsnn_part_range(panels, omp_get_thread_num(), omp_get_num_threads(), 1, &a, &b);
        if (b > a && !cg_dw_part(g, M, x, dy, batch, dW, a, b, G)) {
#pragma omp atomic write
            ok = false;
        }
    }
    return ok ? DSNN_OK : DSNN_ERR_NOMEM;
}

enum dsnn_status cv_backward(const struct cv_geom *g, int M, const float *W, const float *x,
                             const float *dy, int batch, float *dW, float *db, float *dx)
{
    const int K = g->c * g->kh * g->kw, P = g->oh * g->ow;
    if (db) {
        const int nt = cg_threads(2.0 * M * P * (double)batch, M);
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
        for (int m = 0; m < M; m++) {
            float s = 0.0f;
            for (int b = 0; b < batch; b++) {
                const float *r = dy + ((size_t)b * M + m) * P;
                for (int p = 0; p < P; p++)
                    s += r[p];
            }
            db[m] = s;
        }
    }
    if (batch <= 0) {
        if (dW)
            memset(dW, 0, sizeof(float) * (size_t)M * K);
        return DSNN_OK;
    }
    enum dsnn_status st = dW ? cg_dw(g, M, x, dy, batch, dW) : DSNN_OK;
    if (st == DSNN_OK && dx)
        st = cg_dx(g, M, W, dy, batch, dx);
    return st;
}
