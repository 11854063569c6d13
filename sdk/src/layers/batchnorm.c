/* layers/batchnorm.c - batch normalisation (PyTorch BatchNorm1d / BatchNorm2d with running
 * statistics). Channel statistics are accumulated in double, one channel per work item; over a
 * plane of at least PLANE_MIN positions (BatchNorm2d) each plane's partial sums are taken in
 * float with independent accumulators (vectorised), then added in double. */
#include "dsnn/io.h"
#include "dsnn/layers.h"
#include "layers/layers_impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct batchnorm {
    struct dsnn_layer base; /* first */
    int C, S;               /* channels, positions per channel */
    bool affine;
    double momentum, eps;
    struct dsnn_param_block blocks[2]; /* weight (gamma) [C], bias (beta) [C] */
    float *running_mean, *running_var; /* [C] */
    uint64_t num_batches_tracked;
    double *mean, *invstd; /* [C] statistics used by the last forward */
    bool last_train;
};

static const struct dsnn_layer_ops bn1d_ops, bn2d_ops;

/* Positions per channel and sample from which a plane is reduced in float lanes. */
#define PLANE_MIN 8
#define LANES 8

/* Sum of x[0..S). */
static double plane_sum(const float *x, int S)
{
    float a[LANES] = {0};
    int i = 0;
    for (; i + LANES <= S; i += LANES)
        for (int k = 0; k < LANES; k++)
            a[k] += x[i + k];
    double s = 0.0;
    for (int k = 0; k < LANES; k++)
        s += a[k];
    for (; i < S; i++)
        s += x[i];
    return s;
}

/* Sum of (x[i] - m)^2 over x[0..S). */
static double plane_sq_dev(const float *x, int S, float m)
{
    float a[LANES] = {0};
    int i = 0;
    for (; i + LANES <= S; i += LANES)
        for (int k = 0; k < LANES; k++) {
            const float d = x[i + k] - m;
            a[k] += d * d;
        }
    double s = 0.0;
    for (int k = 0; k < LANES; k++)
        s += a[k];
    for (; i < S; i++) {
        const double d = (double)x[i] - m;
        s += d * d;
    }
    return s;
}

/* *sdy += sum of dy, *sdxm += sum of dy (x - m), over [0..S). */
static void plane_dy_sums(const float *x, const float *dy, int S, float m, double *sdy,
                          double *sdxm)
{
    float a[LANES] = {0}, b[LANES] = {0};
    int i = 0;
    for (; i + LANES <= S; i += LANES)
        for (int k = 0; k < LANES; k++) {
            a[k] += dy[i + k];
            b[k] += dy[i + k] * (x[i + k] - m);
        }
    double s = 0.0, t = 0.0;
    for (int k = 0; k < LANES; k++) {
        s += a[k];
        t += b[k];
    }
    for (; i < S; i++) {
        s += dy[i];
        t += (double)dy[i] * ((double)x[i] - m);
    }
    *sdy += s;
    *sdxm += t;
}

static struct batchnorm *bn_cast(const struct dsnn_layer *l)
{
    return l && (l->ops == &bn1d_ops || l->ops == &bn2d_ops) ? (struct batchnorm *)l : NULL;
}

static enum dsnn_status bn_init(struct dsnn_layer *l, struct dsnn_rng *rng,
                                struct dsnn_error *err)
{
    (void)rng;
    struct batchnorm *B = bn_cast(l);
    for (int c = 0; c < B->C; c++) {
        B->running_mean[c] = 0.0f;
        B->running_var[c] = 1.0f;
    }
    B->num_batches_tracked = 0;
    if (B->affine) {
        if (dsnn_layer_alloc_params(l, B->blocks, (size_t)B->C, (size_t)B->C) != DSNN_OK)
            return dsnn_error_set(err, DSNN_ERR_NOMEM, "out of memory");
        for (int c = 0; c < B->C; c++)
            B->blocks[0].value[c] = 1.0f; /* bias stays 0 */
    }
    return DSNN_OK;
}

static enum dsnn_status bn_forward(struct dsnn_layer *l, const float *x, float *y, int batch,
                                   bool train, struct dsnn_error *err)
{
    struct batchnorm *B = bn_cast(l);
    const int C = B->C, S = B->S;
    const size_t n = (size_t)C * S;
    const int64_t cnt = (int64_t)batch * S;
    if (train && cnt <= 1)
        return dsnn_error_set(err, DSNN_ERR_INVALID, "layer '%s': training batch norm needs more than 1 value per channel (batch %d)", l->name, batch); /* PyTorch: "Expected more than 1 value per channel" */
    const float *gamma = B->affine ? B->blocks[0].value : NULL;
    const float *beta = B->affine ? B->blocks[1].value : NULL;
    const double m = B->momentum, eps = B->eps;
    const int nt = ly_threads();
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1 && (size_t)batch * n > 16384)
    for (int c = 0; c < C; c++) {
        double mean, invstd;
        if (train) {
            double s = 0.0;
            for (int b = 0; b < batch; b++) {
                const float *xc = x + (size_t)b * n + (size_t)c * S;
                if (S >= PLANE_MIN)
                    s += plane_sum(xc, S);
                else
                    for (int i = 0; i < S; i++)
                        s += xc[i];
            }
            mean = s / (double)cnt;
            double q = 0.0;
            for (int b = 0; b < batch; b++) {
                const float *xc = x + (size_t)b * n + (size_t)c * S;
                if (S >= PLANE_MIN) {
                    q += plane_sq_dev(xc, S, (float)mean);
                    continue;
                }
                for (int i = 0; i < S; i++) {
                    const double d = xc[i] - mean;
                    q += d * d;
                }
            }
            const double var = q / (double)cnt;
            invstd = 1.0 / sqrt(var + eps);
            const double unbiased = q / (double)(cnt - 1);
            B->running_mean[c] = (float)((1.0 - m) * B->running_mean[c] + m * mean);
            B->running_var[c] = (float)((1.0 - m) * B->running_var[c] + m * unbiased);
        } else {
            mean = B->running_mean[c];
            invstd = 1.0 / sqrt((double)B->running_var[c] + eps);
        }
        B->mean[c] = mean;
        B->invstd[c] = invstd;
        /* y = x a + b' with a = invstd gamma, b' = beta - mean a (as PyTorch's CPU kernel) */
        const double a = invstd * (gamma ? gamma[c] : 1.0);
        const float fa = (float)a, fb = (float)((beta ? beta[c] : 0.0) - mean * a);
        for (int b = 0; b < batch; b++) {
            const float *xc = x + (size_t)b * n + (size_t)c * S;
            float *yc = y + (size_t)b * n + (size_t)c * S;
            for (int i = 0; i < S; i++)
                yc[i] = xc[i] * fa + fb;
        }
    }
    if (train)
        B->num_batches_tracked++;
    B->last_train = train;
    return DSNN_OK;
}

static enum dsnn_status bn_backward(struct dsnn_layer *l, const float *x, const float *y,
                                    const float *dy, float *dx, int batch, struct dsnn_error *err)
{
    (void)y, (void)err;
    struct batchnorm *B = bn_cast(l);
    const int C = B->C, S = B->S;
    const size_t n = (size_t)C * S;
    const double cnt = (double)batch * S;
    const float *gamma = B->affine ? B->blocks[0].value : NULL;
    float *dgamma = B->affine ? B->blocks[0].grad : NULL;
    float *dbeta = B->affine ? B->blocks[1].grad : NULL;
    const bool train = B->last_train;
    const int nt = ly_threads();
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1 && (size_t)batch * n > 16384)
    for (int c = 0; c < C; c++) {
        const double mean = B->mean[c], invstd = B->invstd[c];
        double sdy = 0.0, sdyx = 0.0; /* sum dy, sum dy xhat */
        const bool planes = S >= PLANE_MIN;
        double sdxm = 0.0; /* planes: sum dy (x - mean) */
        for (int b = 0; b < batch; b++) {
            const float *xc = x + (size_t)b * n + (size_t)c * S;
            const float *dc = dy + (size_t)b * n + (size_t)c * S;
            if (planes) {
                plane_dy_sums(xc, dc, S, (float)mean, &sdy, &sdxm);
                continue;
            }
            for (int i = 0; i < S; i++) {
                sdy += dc[i];
                sdyx += dc[i] * ((xc[i] - mean) * invstd);
            }
        }
        if (planes)
            sdyx = sdxm * invstd;
        if (dgamma) {
            dgamma[c] = (float)sdyx;
            dbeta[c] = (float)sdy;
        }
        if (!dx)
            continue;
        const double g = gamma ? gamma[c] : 1.0;
        if (train) {
            /* dx = g invstd (dy - mean(dy) - xhat mean(dy xhat)) */
            const double k = g * invstd, mdy = sdy / cnt, mdyx = sdyx / cnt;
            if (planes) { /* dx = k dy + c1 x + c0, in float lanes */
                const double c1 = -k * invstd * mdyx;
                const float fk = (float)k, fc1 = (float)c1, fc0 = (float)(-k * mdy - c1 * mean);
                for (int b = 0; b < batch; b++) {
                    const float *xc = x + (size_t)b * n + (size_t)c * S;
                    const float *dc = dy + (size_t)b * n + (size_t)c * S;
                    float *o = dx + (size_t)b * n + (size_t)c * S;
                    for (int i = 0; i < S; i++)
                        o[i] = fk * dc[i] + fc1 * xc[i] + fc0;
                }
                continue;
            }
            for (int b = 0; b < batch; b++) {
                const float *xc = x + (size_t)b * n + (size_t)c * S;
                const float *dc = dy + (size_t)b * n + (size_t)c * S;
                float *o = dx + (size_t)b * n + (size_t)c * S;
                for (int i = 0; i < S; i++) {
                    const double xh = (xc[i] - mean) * invstd;
                    o[i] = (float)(k * (dc[i] - mdy - xh * mdyx));
                }
            }
        } else {
            const float k = (float)(g * invstd);
            for (int b = 0; b < batch; b++) {
                const float *dc = dy + (size_t)b * n + (size_t)c * S;
                float *o = dx + (size_t)b * n + (size_t)c * S;
                for (int i = 0; i < S; i++)
                    o[i] = dc[i] * k;
            }
        }
    }
    return DSNN_OK;
}

static enum dsnn_status bn_save(struct dsnn_layer *l, FILE *f, struct dsnn_error *err)
{
    struct batchnorm *B = bn_cast(l);
    enum dsnn_status st;
    const size_t bytes = sizeof(float) * (size_t)B->C;
    if ((st = dsnn_layer_save_params(l, f, err)) ||
        (st = dsnn_io_write(f, "BNRS", 4, "batch norm tag", err)) ||
        (st = dsnn_io_write_u64(f, (uint64_t)B->C, "channel count", err)) ||
        (st = dsnn_io_write(f, B->running_mean, bytes, "running mean", err)) ||
        (st = dsnn_io_write(f, B->running_var, bytes, "running variance", err)) ||
        (st = dsnn_io_write_u64(f, B->num_batches_tracked, "num_batches_tracked", err)))
        return st;
    return DSNN_OK;
}

static enum dsnn_status bn_load(struct dsnn_layer *l, FILE *f, struct dsnn_error *err)
{
    struct batchnorm *B = bn_cast(l);
    enum dsnn_status st;
    const size_t bytes = sizeof(float) * (size_t)B->C;
    uint64_t nbt;
    if ((st = dsnn_layer_load_params(l, f, err)) ||
        (st = dsnn_io_expect_count(f, "BNRS", (uint64_t)B->C, "channels", "the layer", err)) ||
        (st = dsnn_io_read(f, B->running_mean, bytes, "running mean", err)) ||
        (st = dsnn_io_read(f, B->running_var, bytes, "running variance", err)) ||
        (st = dsnn_io_read_u64(f, &nbt, "num_batches_tracked", err)))
        return st;
    B->num_batches_tracked = nbt;
    return DSNN_OK;
}

static void bn_destroy(struct dsnn_layer *l)
{
    struct batchnorm *B = (struct batchnorm *)l;
    dsnn_layer_release_params(l);
    free(B->running_mean);
    free(B->running_var);
    free(B->mean);
    free(B->invstd);
    free(B);
}

/* The 1d and 2d layers share every operation; only the type name differs. */
static const struct dsnn_layer_ops bn1d_ops = {LY_OPS_FIELDS("batchnorm1d", bn)};
static const struct dsnn_layer_ops bn2d_ops = {LY_OPS_FIELDS("batchnorm2d", bn)};

static struct dsnn_layer *bn_new(const char *name, struct dsnn_shape shape, bool is2d,
                                 bool affine, struct dsnn_error *err)
{
    if (shape.c <= 0 || shape.h <= 0 || shape.w <= 0 || dsnn_shape_size(shape) > INT32_MAX) {
        dsnn_error_set(err, DSNN_ERR_INVALID, "layer '%s': invalid shape %dx%dx%d", name,
                       shape.c, shape.h, shape.w);
        return NULL;
    }
    struct batchnorm *B =
        dsnn_layer_alloc(sizeof *B, is2d ? &bn2d_ops : &bn1d_ops, name, shape, shape, err);
    if (!B)
        return NULL;
    B->C = shape.c;
    B->S = shape.h * shape.w;
    B->affine = affine;
    B->momentum = 0.1;
    B->eps = 1e-5;
    B->running_mean = calloc((size_t)B->C, sizeof(float));
    B->running_var = malloc(sizeof(float) * (size_t)B->C);
    B->mean = calloc((size_t)B->C, sizeof(double));
    B->invstd = calloc((size_t)B->C, sizeof(double));
    if (!B->running_mean || !B->running_var || !B->mean || !B->invstd) {
        bn_destroy(&B->base);
        dsnn_error_set(err, DSNN_ERR_NOMEM, "out of memory");
        return NULL;
    }
    for (int c = 0; c < B->C; c++)
        B->running_var[c] = 1.0f;
    return &B->base;
}

struct dsnn_layer *dsnn_batchnorm1d_new(const char *name, int n_features, bool affine,
                                        struct dsnn_error *err)
{
    return bn_new(name ? name : "batchnorm1d", (struct dsnn_shape){n_features, 1, 1}, false,
                  affine, err);
}

struct dsnn_layer *dsnn_batchnorm2d_new(const char *name, struct dsnn_shape shape, bool affine,
                                        struct dsnn_error *err)
{
    return bn_new(name ? name : "batchnorm2d", shape, true, affine, err);
}

bool dsnn_batchnorm_is(const struct dsnn_layer *l)
{
    return bn_cast(l) != NULL;
}

enum dsnn_status dsnn_batchnorm_set_momentum_eps(struct dsnn_layer *l, double momentum,
                                                 double eps, struct dsnn_error *err)
{
    struct batchnorm *B = bn_cast(l);
    if (!B)
        return dsnn_error_set(err, DSNN_ERR_INVALID, "not a batch norm layer");
    if (!(momentum >= 0.0 && momentum <= 1.0) || !(eps > 0.0) || isinf(eps))
        return dsnn_error_set(err, DSNN_ERR_INVALID,
                              "layer '%s': momentum %g must be in [0, 1] and eps %g > 0", l->name,
                              momentum, eps);
    B->momentum = momentum;
    B->eps = eps;
    return DSNN_OK;
}

float *dsnn_batchnorm_running_mean(struct dsnn_layer *l)
{
    struct batchnorm *B = bn_cast(l);
    return B ? B->running_mean : NULL;
}

float *dsnn_batchnorm_running_var(struct dsnn_layer *l)
{
    struct batchnorm *B = bn_cast(l);
    return B ? B->running_var : NULL;
}

uint64_t dsnn_batchnorm_num_batches_tracked(const struct dsnn_layer *l)
{
    const struct batchnorm *B = bn_cast(l);
    return B ? B->num_batches_tracked : 0;
}
