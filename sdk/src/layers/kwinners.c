/* layers/kwinners.c - k-winners-take-all with boosting (nupic.torch KWinners, KWinners2d global and
 * local). Winners are found per sample (or per position, local) by a three-way quickselect of
 * the k-th largest boosted value, O(n) on average, then one pass to mark them. */
#include "dsnn/io.h"
#include "dsnn/layers.h"
#include "layers/layers_impl.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

struct kwinners {
    struct dsnn_layer base; /* first */
    struct dsnn_kwinners_cfg cfg;
    bool is2d;
    int C, S;      /* duty-cycle units (channels) and positions per unit: n = C S */
    int n;
    int k, k_inf;
    double boost_strength;
    uint64_t learning_iterations;
    float *duty;   /* [C] */
    float *boost;  /* [C] boost factors of the current forward */
    uint8_t *mask; /* [mask_cap][n] winners of the last forward */
    int mask_cap;
    float *scratch; /* [scratch_threads][3 n]: keys, selection buffer, local winners */
    int scratch_threads;
};

static const struct dsnn_layer_ops kwinners_ops, kwinners2d_ops;

static struct kwinners *kw_cast(const struct dsnn_layer *l)
{
    return l && (l->ops == &kwinners_ops || l->ops == &kwinners2d_ops) ? (struct kwinners *)l
                                                                         : NULL;
}

struct dsnn_kwinners_cfg dsnn_kwinners_cfg_default(void)
{
    struct dsnn_kwinners_cfg c;
    memset(&c, 0, sizeof c);
    c.percent_on = 0.1;
    c.k_inference_factor = 1.5;
    c.boost_strength = 1.0;
    c.boost_strength_factor = 0.9;
    c.duty_cycle_period = 1000;
    c.break_ties = true;
    c.local = false;
    return c;
}

/* ---- selection ---- */

/* NaN sorts above everything (torch.topk); -0 becomes +0 so that equal values have equal
 * radix keys. */
static inline float kw_key(float v)
{
    return isnan(v) ? INFINITY : v + 0.0f;
}

/* Order-preserving map of (non-NaN) floats to unsigned integers, and back. */
static inline uint32_t f2u(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

static inline float u2f(uint32_t u)
{
    u = (u & 0x80000000u) ? (u & 0x7fffffffu) : ~u;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* The k-th largest (1 <= k <= m) of keys[0..m) by radix selection on the order-preserving
 * integer keys: 11 + 11 + 10 bits, the last two passes over the values sharing the prefix only
 * (compacted into tmp). O(m), no data-dependent branches in the long passes. */
static float kth_largest_radix(const float *keys, int m, int k, uint32_t *tmp)
{
    uint32_t hist[2048];
    memset(hist, 0, sizeof hist);
    for (int i = 0; i < m; i++)
        hist[f2u(keys[i]) >> 21]++;
    int b = 2047;
    while ((uint32_t)k > hist[b])
        k -= (int)hist[b--];
    uint32_t prefix = (uint32_t)b;
    int cnt = 0;
    for (int i = 0; i < m; i++) {
        const uint32_t u = f2u(keys[i]);
        tmp[cnt] = u;
        cnt += (u >> 21) == prefix;
    }
    memset(hist, 0, sizeof hist);
    for (int i = 0; i < cnt; i++)
        hist[(tmp[i] >> 10) & 2047u]++;
    b = 2047;
    while ((uint32_t)k > hist[b])
        k -= (int)hist[b--];
    prefix = (prefix << 11) | (uint32_t)b;
    memset(hist, 0, 1024 * sizeof hist[0]);
    for (int i = 0; i < cnt; i++)
        hist[tmp[i] & 1023u] += (tmp[i] >> 10) == prefix;
    b = 1023;
    while ((uint32_t)k > hist[b])
        k -= (int)hist[b--];
    return u2f((prefix << 10) | (uint32_t)b);
}

static inline void swapf(float *a, float *b)
{
    float t = *a;
    *a = *b;
    *b = t;
}

/* The k-th largest (1 <= k <= n) of a[0..n) (no NaN); a is permuted. Three-way partition
 * quickselect with a median-of-three pivot, so runs of equal values cost O(n). */
static float kth_largest(float *a, int n, int k)
{
    int lo = 0, hi = n; /* the answer is the (k)-th largest of a[lo..hi) */
    for (;;) {
        if (hi - lo <= 16) { /* insertion sort, descending */
            for (int i = lo + 1; i < hi; i++) {
                float v = a[i];
                int j = i - 1;
                while (j >= lo && a[j] < v) {
                    a[j + 1] = a[j];
                    j--;
                }
                a[j + 1] = v;
            }
            return a[lo + k - 1];
        }
        int mid = lo + (hi - lo) / 2;
        float p0 = a[lo], p1 = a[mid], p2 = a[hi - 1];
        float pivot = p0 < p1 ? (p1 < p2 ? p1 : (p0 < p2 ? p2 : p0))
                              : (p0 < p2 ? p0 : (p1 < p2 ? p2 : p1));
        /* [lo, gt) > pivot, [gt, i) == pivot, [lt, hi) < pivot */
        int gt = lo, i = lo, lt = hi;
        while (i < lt) {
            if (a[i] > pivot)
                swapf(&a[i++], &a[gt++]);
            else if (a[i] < pivot)
                swapf(&a[i], &a[--lt]);
            else
                i++;
        }
        int n_gt = gt - lo, n_eq = lt - gt;
        if (k <= n_gt) {
            hi = gt;
        } else if (k <= n_gt + n_eq) {
            return pivot;
        } else {
            k -= n_gt + n_eq;
            lo = lt;
        }
    }
}

/* Winners among the m keys: win[i] = 1 for the k largest (ties at the threshold: the lowest
 * indices when break_ties, else all of them). tmp has room for m values. */
static void kw_select(const float *keys, float *tmp, int m, int k, bool break_ties,
                      uint8_t *win)
{
    if (k <= 0 || k >= m) {
        memset(win, k > 0, (size_t)m);
        return;
    }
    float t;
    if (m >= 256) {
        t = kth_largest_radix(keys, m, k, (uint32_t *)(void *)tmp);
    } else {
        memcpy(tmp, keys, sizeof(float) * (size_t)m);
        t = kth_largest(tmp, m, k);
    }
    int ties = m; /* how many values equal to t may still win */
    if (break_ties) {
        int above = 0;
        for (int i = 0; i < m; i++)
            above += keys[i] > t;
        ties = k - above;
    }
    for (int i = 0; i < m; i++) {
        bool w = keys[i] > t;
        if (!w && keys[i] == t && ties > 0) {
            w = true;
            ties--;
        }
        win[i] = w;
    }
}

/* ---- ops ---- */

static enum dsnn_status kw_init(struct dsnn_layer *l, struct dsnn_rng *rng,
                                struct dsnn_error *err)
{
    (void)rng, (void)err;
    struct kwinners *K = kw_cast(l);
    memset(K->duty, 0, sizeof(float) * (size_t)K->C);
    K->learning_iterations = 0;
    K->boost_strength = K->cfg.boost_strength;
    return DSNN_OK;
}

static enum dsnn_status kw_reserve(struct kwinners *K, int batch)
{
    if (batch > K->mask_cap) {
        uint8_t *m = realloc(K->mask, (size_t)batch * (size_t)K->n);
        if (!m)
            return DSNN_ERR_NOMEM;
        K->mask = m;
        K->mask_cap = batch;
    }
    int nt = ly_threads();
    if (nt > K->scratch_threads) {
        size_t per = 3 * (size_t)K->n;
        float *s = realloc(K->scratch, sizeof(float) * per * (size_t)nt);
        if (!s)
            return DSNN_ERR_NOMEM;
        K->scratch = s;
        K->scratch_threads = nt;
    }
    return DSNN_OK;
}

static enum dsnn_status kw_forward(struct dsnn_layer *l, const float *x, float *y, int batch,
                                   bool train, struct dsnn_error *err)
{
    struct kwinners *K = kw_cast(l);
    if (kw_reserve(K, batch) != DSNN_OK)
        return dsnn_error_set(err, DSNN_ERR_NOMEM, "layer '%s': out of memory in forward", l->name);
    const int n = K->n, C = K->C, S = K->S;
    const int k = train ? K->k : K->k_inf;
    const bool local = K->cfg.local, break_ties = K->cfg.break_ties;
    const bool boosting = K->boost_strength > 0.0;
    if (boosting) {
        /* target density k / (units competing), as nupic: k / n, or k / channels when local */
        const double target = (double)k / (double)(local ? C : n);
        const float bs = (float)K->boost_strength;
        for (int c = 0; c < C; c++)
            K->boost[c] = expf(((float)target - K->duty[c]) * bs);
    }
    const float *bf = K->boost;
    const size_t per = 3 * (size_t)n;
    const int nt = K->scratch_threads < ly_threads() ? K->scratch_threads
                                                          : ly_threads();
    const bool par = nt > 1 && batch > 1 && (size_t)batch * n >= 16384;
#pragma omp parallel num_threads(nt) if (par)
    {
        float *keys = K->scratch + per * (size_t)omp_get_thread_num();
        float *tmp = keys + n;
        uint8_t *win = (uint8_t *)(void *)(tmp + n);
#pragma omp for schedule(static)
        for (int b = 0; b < batch; b++) {
            const float *xb = x + (size_t)b * n;
            float *yb = y + (size_t)b * n;
            uint8_t *mb = K->mask + (size_t)b * n;
            if (!local) {
                for (int c = 0; c < C; c++) {
                    const float f = boosting ? bf[c] : 1.0f;
                    for (int s = 0; s < S; s++) {
                        const int i = c * S + s;
                        keys[i] = kw_key(boosting ? xb[i] * f : xb[i]);
                    }
                }
                kw_select(keys, tmp, n, k, break_ties, mb);
            } else {
                /* position-major keys [s][c], so each selection reads a contiguous run */
                for (int c = 0; c < C; c++) {
                    const float f = boosting ? bf[c] : 1.0f;
                    for (int s = 0; s < S; s++) {
                        const float v = xb[(size_t)c * S + s];
                        keys[(size_t)s * C + c] = kw_key(boosting ? v * f : v);
                    }
                }
                for (int s = 0; s < S; s++)
                    kw_select(keys + (size_t)s * C, tmp, C, k, break_ties, win + (size_t)s * C);
                for (int c = 0; c < C; c++)
                    for (int s = 0; s < S; s++)
                        mb[(size_t)c * S + s] = win[(size_t)s * C + c];
            }
            for (int i = 0; i < n; i++) { /* unconditional load: a vector select */
                const float v = xb[i];
                yb[i] = mb[i] ? v : 0.0f;
            }
        }
    }
    if (train) {
        /* nupic update_duty_cycle, in float32 as torch */
        K->learning_iterations += (uint64_t)batch;
        const uint64_t period = K->learning_iterations < (uint64_t)K->cfg.duty_cycle_period
                                    ? K->learning_iterations
                                    : (uint64_t)K->cfg.duty_cycle_period;
        const float keep = (float)((double)period - (double)batch), fp = (float)period;
        const float scale = (float)S;
    const bool par = nt > 1 && C > 1 && (size_t)batch * n >= 65536;
#pragma omp parallel for schedule(static) num_threads(nt) if (par)
        for (int c = 0; c < C; c++) {
            int64_t active = 0;
            for (int b = 0; b < batch; b++) {
                const float *yc = y + (size_t)b * n + (size_t)c * S;
                for (int s = 0; s < S; s++)
                    active += yc[s] > 0.0f;
            }
            float d = K->duty[c] * keep;
            d = d + (float)active / scale;
            K->duty[c] = d / fp;
        }
    }
    return DSNN_OK;
}

static enum dsnn_status kw_backward(struct dsnn_layer *l, const float *x, const float *y,
                                    const float *dy, float *dx, int batch, struct dsnn_error *err)
{
    (void)x, (void)y;
    struct kwinners *K = kw_cast(l);
    if (!dx)
        return DSNN_OK;
    if (batch > K->mask_cap)
        return dsnn_error_set(err, DSNN_ERR_INVALID, "layer '%s': backward called with a batch larger than the buffers or without its forward state (batch %d)", l->name, batch);
    const size_t total = (size_t)batch * (size_t)K->n;
    const uint8_t *m = K->mask;
    for (size_t i = 0; i < total; i++) { /* unconditional load: a vector select */
        const float d = dy[i];
        dx[i] = m[i] ? d : 0.0f;
    }
    return DSNN_OK;
}

static enum dsnn_status kw_save(struct dsnn_layer *l, FILE *f, struct dsnn_error *err)
{
    struct kwinners *K = kw_cast(l);
    enum dsnn_status st;
    if ((st = dsnn_io_write(f, "KWIN", 4, "k-winners tag", err)) ||
        (st = dsnn_io_write_u64(f, (uint64_t)K->C, "duty cycle count", err)) ||
        (st = dsnn_io_write(f, K->duty, sizeof(float) * (size_t)K->C, "duty cycles", err)) ||
        (st = dsnn_io_write_u64(f, K->learning_iterations, "learning iterations", err)) ||
        (st = dsnn_io_write(f, &K->boost_strength, sizeof(double), "boost strength", err)))
        return st;
    return DSNN_OK;
}

static enum dsnn_status kw_load(struct dsnn_layer *l, FILE *f, struct dsnn_error *err)
{
    struct kwinners *K = kw_cast(l);
    enum dsnn_status st;
    double bs;
    uint64_t li;
    if ((st = dsnn_io_expect_count(f, "KWIN", (uint64_t)K->C, "duty cycles", "the layer", err)) ||
        (st = dsnn_io_read(f, K->duty, sizeof(float) * (size_t)K->C, "duty cycles", err)) ||
        (st = dsnn_io_read_u64(f, &li, "learning iterations", err)) ||
        (st = dsnn_io_read(f, &bs, sizeof bs, "boost strength", err)))
        return st;
    if (!(bs >= 0.0))
        return dsnn_error_set(err, DSNN_ERR_FORMAT, "checkpoint has boost strength %g", bs);
    K->learning_iterations = li;
    K->boost_strength = bs;
    return DSNN_OK;
}

static void kw_epoch_end(struct dsnn_layer *l)
{
    dsnn_kwinners_update_boost_strength(l);
}

static void kw_destroy(struct dsnn_layer *l)
{
    struct kwinners *K = (struct kwinners *)l;
    free(K->duty);
    free(K->boost);
    free(K->mask);
    free(K->scratch);
    free(K);
}

/* The 1d and 2d layers share every operation; only the type name differs. */
static const struct dsnn_layer_ops kwinners_ops =
    {LY_OPS_FIELDS("kwinners", kw), .on_epoch_end = kw_epoch_end};
static const struct dsnn_layer_ops kwinners2d_ops =
    {LY_OPS_FIELDS("kwinners2d", kw), .on_epoch_end = kw_epoch_end};

/* ---- construction ---- */

static struct dsnn_layer *kw_new(const char *name, struct dsnn_shape shape, bool is2d,
                                 const struct dsnn_kwinners_cfg *cfg, struct dsnn_error *err)
{
    struct dsnn_kwinners_cfg def = dsnn_kwinners_cfg_default();
    if (!cfg)
        cfg = &def;
    const int64_t n64 = dsnn_shape_size(shape);
    if (shape.c <= 0 || shape.h <= 0 || shape.w <= 0 || n64 > INT32_MAX) {
        dsnn_error_set(err, DSNN_ERR_INVALID, "layer '%s': invalid shape %dx%dx%d", name,
                       shape.c, shape.h, shape.w);
        return NULL;
    }
    const double p = cfg->percent_on, pi = cfg->percent_on * cfg->k_inference_factor;
    const char *bad = NULL;
    if (!(p > 0.0 && p < 1.0))
        bad = "percent_on must be in (0, 1)";
    else if (!(cfg->k_inference_factor > 0.0) || !(pi > 0.0 && pi < 1.0))
        bad = "percent_on * k_inference_factor must be in (0, 1)";
    else if (!(cfg->boost_strength >= 0.0) || isinf(cfg->boost_strength))
        bad = "boost_strength must be >= 0";
    else if (!(cfg->boost_strength_factor >= 0.0 && cfg->boost_strength_factor <= 1.0))
        bad = "boost_strength_factor must be in [0, 1]";
    else if (cfg->duty_cycle_period <= 0)
        bad = "duty_cycle_period must be > 0";
    else if (cfg->local && !is2d)
        bad = "local applies to kwinners2d only";
    if (bad) {
        dsnn_error_set(err, DSNN_ERR_INVALID, "layer '%s': %s (percent_on %g, k_inference_factor "
                       "%g, boost_strength %g, boost_strength_factor %g, duty_cycle_period %d)",
                       name, bad, p, cfg->k_inference_factor, cfg->boost_strength,
                       cfg->boost_strength_factor, cfg->duty_cycle_period);
        return NULL;
    }
    struct kwinners *K =
        dsnn_layer_alloc(sizeof *K, is2d ? &kwinners2d_ops : &kwinners_ops, name, shape, shape, err);
    if (!K)
        return NULL;
    K->cfg = *cfg;
    K->is2d = is2d;
    K->n = (int)n64;
    if (is2d) {
        K->C = shape.c;
        K->S = shape.h * shape.w;
    } else {
        K->C = K->n;
        K->S = 1;
    }
    /* nupic: rint = Python round (half to even in the default rounding mode) */
    if (!is2d) {
        K->k = (int)rint(K->n * p);
        K->k_inf = (int)(K->k * cfg->k_inference_factor);
    } else if (cfg->local) {
        K->k = (int)rint(K->C * p);
        K->k_inf = (int)rint(K->C * pi);
    } else {
        K->k = (int)rint(K->n * p);
        K->k_inf = (int)rint(K->n * pi);
    }
    K->boost_strength = cfg->boost_strength;
    K->duty = calloc((size_t)K->C, sizeof(float));
    K->boost = calloc((size_t)K->C, sizeof(float));
    if (!K->duty || !K->boost) {
        kw_destroy(&K->base);
        dsnn_error_set(err, DSNN_ERR_NOMEM, "out of memory");
        return NULL;
    }
    return &K->base;
}

struct dsnn_layer *dsnn_kwinners_new(const char *name, int n,
                                     const struct dsnn_kwinners_cfg *cfg,
                                     struct dsnn_error *err)
{
    return kw_new(name ? name : "kwinners", (struct dsnn_shape){n, 1, 1}, false, cfg, err);
}

struct dsnn_layer *dsnn_kwinners2d_new(const char *name, struct dsnn_shape shape,
                                       const struct dsnn_kwinners_cfg *cfg,
                                       struct dsnn_error *err)
{
    return kw_new(name ? name : "kwinners2d", shape, true, cfg, err);
}

/* ---- accessors ---- */

bool dsnn_kwinners_is(const struct dsnn_layer *l)
{
    return kw_cast(l) != NULL;
}

void dsnn_kwinners_update_boost_strength(struct dsnn_layer *l)
{
    struct kwinners *K = kw_cast(l);
    if (K)
        K->boost_strength *= K->cfg.boost_strength_factor;
}

double dsnn_kwinners_boost_strength(const struct dsnn_layer *l)
{
    const struct kwinners *K = kw_cast(l);
    return K ? K->boost_strength : 0.0;
}

int dsnn_kwinners_k(const struct dsnn_layer *l, bool train)
{
    const struct kwinners *K = kw_cast(l);
    return K ? (train ? K->k : K->k_inf) : 0;
}

float *dsnn_kwinners_duty_cycle(struct dsnn_layer *l, size_t *n)
{
    struct kwinners *K = kw_cast(l);
    if (n)
        *n = K ? (size_t)K->C : 0;
    return K ? K->duty : NULL;
}

uint64_t dsnn_kwinners_learning_iterations(const struct dsnn_layer *l)
{
    const struct kwinners *K = kw_cast(l);
    return K ? K->learning_iterations : 0;
}

double dsnn_kwinners_entropy(const struct dsnn_layer *l)
{
    const struct kwinners *K = kw_cast(l);
    if (!K)
        return 0.0;
    double e = 0.0;
    for (int c = 0; c < K->C; c++) {
        const double d = K->duty[c];
        if (d * (1.0 - d) != 0.0)
            e += -d * log2(d) - (1.0 - d) * log2(1.0 - d);
    }
    return K->is2d ? e * K->n / K->C : e;
}

double dsnn_kwinners_max_entropy(const struct dsnn_layer *l)
{
    const struct kwinners *K = kw_cast(l);
    if (!K)
        return 0.0;
    const int w = (int)(K->n * K->cfg.percent_on);
    const double p = (double)w / K->n;
    if (!(p > 0.0 && p < 1.0))
        return 0.0;
    return -K->n * (p * log2(p) + (1.0 - p) * log2(1.0 - p));
}
