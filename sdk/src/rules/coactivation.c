/* rules/coactivation.c - Hebbian coactivation counts of linear layers with bit-packed activities and
 * popcount (nupic MLPHeb's sum of binary outer products), and of truly sparse convolutions (nupic
 * DSCNN: binary input element x binary output, summed over samples and output positions, by the
 * layer's own sparse / dense weight-gradient kernels). See dsnn/coactivation.h. */
#include "dsnn/coactivation.h"
#include "dsnn/io.h"
#include "dsnn/layers.h"
#include "dsnn/sparse.h"
#include "layers/layers_impl.h"
#include "sparse/sparse_impl.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define NO_INPUT_LAYER SIZE_MAX
/* Popcounts per batch below which a layer is counted by one thread (a parallel region costs more
 * than it saves, especially on a loaded machine). */
#define PAR_MIN_WORK ((size_t)1 << 21)

struct coact_layer {
    struct dsnn_layer *l; /* the linear layer, or a sparse convolution's weight store */
    struct dsnn_layer *conv; /* the "sparse_conv2d" layer, or NULL */
    bool sparse; /* "sparse_linear" (else dense "linear": dense storage) */
    bool dense;  /* dense storage */
    int n_in, n_out;
    size_t in_act;       /* activation index of the input, NO_INPUT_LAYER: the network input */
    size_t out_act;      /* activation index of the output (after the activation function) */
    uint64_t epoch_hash; /* topology at dsnn_coact_begin_epoch */
    uint64_t values_hash;
    bool values_valid;

    /* active storage, aligned with the CSR at begin_epoch */
    float *acc; /* counts of this epoch [nnz] (per-batch average: the average) */
    size_t acc_n, acc_cap;
    float *bacc; /* per-batch average: the counts of one batch [acc_cap] */
    float *hist;    /* moving average [hist_n] (alpha < 1) */
    uint64_t *keys; /* row * n_in + col of hist's entries, ascending */
    size_t hist_n;
    bool have_hist;

    /* dense storage [n_out * n_in] */
    float *dacc;
    float *dhist; /* moving average (alpha < 1) */
    float *dbacc; /* per-batch average: the counts of one batch [n_out * n_in] */
    bool dhave;
    float *gather; /* sparse layer: values at the active connections [gather_n] */
    size_t gather_cap;

    /* bit-packed activities [units][words] of the current batch */
    uint64_t *xb, *yb;
    uint64_t *tmp;  /* packing buffer [words][units] */
    int32_t *xcols; /* inputs active somewhere in the batch */
    int words_cap;

    /* real-valued, active storage: activities as [unit][ld] panels of the current batch */
    float *xt, *yt;
    size_t ld_cap;
};

struct dsnn_coact {
    struct dsnn_net *net;
    bool dense;
    double alpha;
    struct dsnn_coact_options opt; /* real-valued, update interval, kept across epochs */
    uint64_t calls;                /* accumulate calls so far (the update interval's clock) */
    size_t n;
    struct coact_layer *L;
    long long samples;
    bool in_epoch;
};

/* A moving average over the counted batches (nupic's moving_average_alpha). */
static bool per_batch(const struct dsnn_coact *c)
{
    return c->alpha < 1.0 && c->opt.average == DSNN_COACT_AVERAGE_BATCH;
}

/* Values outlive an epoch: a moving average over epochs (alpha < 1) or values kept across
 * epochs. */
static bool uses_hist(const struct dsnn_coact *c)
{
    return (c->alpha < 1.0 && c->opt.average == DSNN_COACT_AVERAGE_EPOCH) ||
           c->opt.keep_across_epochs;
}

/* The value after an epoch from its count and the previous value (NaN: none). Per batch, the
 * epoch's value already went on from the previous one (begin_epoch started it there). */
static inline float combine(const struct dsnn_coact *c, float count, float prev)
{
    if (prev != prev || per_batch(c))
        return count;
    if (c->opt.keep_across_epochs)
        return prev + count;
    return (float)(c->alpha * count + (1.0 - c->alpha) * prev);
}

static uint64_t topo_hash(struct dsnn_layer *l)
{
    struct dsnn_sparse_csr c;
    if (!dsnn_sparse_get_csr(l, &c))
        return 0;
    uint64_t h = 1469598103934665603ull ^ (uint64_t)c.nnz;
    for (int r = 0; r <= c.n_out; r++)
        h = (h ^ (uint64_t)c.row_ptr[r]) * 1099511628211ull;
    for (size_t k = 0; k < c.nnz; k++)
        h = (h ^ (uint64_t)(uint32_t)c.col[k]) * 1099511628211ull;
    return h;
}

static bool shape_eq(struct dsnn_shape a, struct dsnn_shape b)
{
    return a.c == b.c && a.h == b.h && a.w == b.w;
}

/* The activation index whose positive entries count as the output of layer idx. A linear layer:
 * the end of its block, as nupic's DSLinearBlock hook sees it: the layers after it that keep
 * the shape and are a batch norm or parameter-free (ReLU, k-winners, dropout), in one run. A
 * sparse convolution: the parameter-free layer of the same shape right after it, if any. */
static size_t block_output(struct dsnn_net *net, size_t idx, bool conv)
{
    const size_t n_net = dsnn_net_n_layers(net);
    size_t out = idx;
    for (size_t j = idx + 1; j < n_net; j++) {
        struct dsnn_layer *next = dsnn_net_layer(net, j);
        const bool bn = !conv && dsnn_batchnorm_is(next);
        if (!shape_eq(next->in, next->out) || !(next->n_params == 0 || bn))
            break;
        out = j;
        if (conv)
            break;
    }
    return out;
}

struct dsnn_coact *dsnn_coact_new(struct dsnn_net *net, const size_t *layer_index, size_t n_layers,
                                  bool dense, double alpha, struct dsnn_error *err)
{
    if (!(alpha > 0.0 && alpha <= 1.0)) {
        dsnn_error_set(err, DSNN_ERR_INVALID,
                       "coactivations: moving average alpha %g outside "
                       "(0, 1]",
                       alpha);
        return NULL;
    }
    if (!net || !dsnn_net_initialized(net)) {
        dsnn_error_set(err, DSNN_ERR_INVALID, "coactivations: the network is not initialised");
        return NULL;
    }
    struct dsnn_coact *c = calloc(1, sizeof *c);
    if (c)
        c->L = calloc(n_layers ? n_layers : 1, sizeof *c->L);
    if (!c || !c->L) {
        free(c);
        dsnn_error_set(err, DSNN_ERR_NOMEM, "out of memory");
        return NULL;
    }
    c->net = net;
    c->dense = dense;
    c->alpha = alpha;
    c->opt = (struct dsnn_coact_options){.update_interval = 1};
    c->n = n_layers;
    const size_t n_net = dsnn_net_n_layers(net);
    for (size_t i = 0; i < n_layers; i++) {
        struct coact_layer *t = &c->L[i];
        size_t idx = layer_index[i];
        struct dsnn_layer *l = idx < n_net ? dsnn_net_layer(net, idx) : NULL;
        if (l && dsnn_sparse_conv2d_is(l)) { /* counted at its weight store's connections */
            t->conv = l;
            l = dsnn_sparse_conv2d_weights(l);
        }
        if (!l || !dsnn_linear_dims(l, &t->n_in, &t->n_out, NULL)) {
            dsnn_error_set(err, DSNN_ERR_INVALID,
                           "coactivations: layer %zu of the network is not a linear layer or a "
                           "sparse convolution%s",
                           idx, l && dsnn_layer_is(l, "residual")
                                    ? " (the layers of residual blocks are not tracked)"
                                    : "");
            dsnn_coact_free(c);
            return NULL;
        }
        t->l = l;
        t->sparse = dsnn_sparse_is(l);
        t->dense = dense || !t->sparse;
        t->in_act = idx == 0 ? NO_INPUT_LAYER : idx - 1;
        t->out_act = block_output(net, idx, t->conv != NULL);
        if (t->dense) {
            size_t pairs = (size_t)t->n_in * (size_t)t->n_out;
            t->dacc = calloc(pairs ? pairs : 1, sizeof *t->dacc);
            if (!t->dacc) {
                dsnn_error_set(err, DSNN_ERR_NOMEM,
                               "coactivations: cannot allocate %d x %d counts of layer '%s'",
                               t->n_out, t->n_in, l->name);
                dsnn_coact_free(c);
                return NULL;
            }
        }
    }
    return c;
}

void dsnn_coact_free(struct dsnn_coact *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n; i++) {
        struct coact_layer *t = &c->L[i];
        free(t->acc);
        free(t->bacc);
        free(t->dbacc);
        free(t->hist);
        free(t->keys);
        free(t->dacc);
        free(t->dhist);
        free(t->gather);
        free(t->xb);
        free(t->yb);
        free(t->tmp);
        free(t->xcols);
        free(t->xt);
        free(t->yt);
    }
    free(c->L);
    free(c);
}

/* Keys (row * n_in + col) of the layer's connections in CSR order into a new array. */
static uint64_t *csr_keys(struct dsnn_layer *l, size_t *n)
{
    struct dsnn_sparse_csr s;
    dsnn_sparse_get_csr(l, &s);
    uint64_t *k = malloc((s.nnz ? s.nnz : 1) * sizeof *k);
    if (!k)
        return NULL;
    for (int r = 0; r < s.n_out; r++)
        for (int64_t j = s.row_ptr[r]; j < s.row_ptr[r + 1]; j++)
            k[j] = (uint64_t)r * (uint64_t)s.n_in + (uint64_t)s.col[j];
    *n = s.nnz;
    return k;
}

enum dsnn_status dsnn_coact_begin_epoch(struct dsnn_coact *c, struct dsnn_error *err)
{
    for (size_t i = 0; i < c->n; i++) {
        struct coact_layer *t = &c->L[i];
        t->values_valid = false;
        if (t->dense) {
            const size_t pairs = (size_t)t->n_in * (size_t)t->n_out;
            if (per_batch(c) && !t->dbacc &&
                !(t->dbacc = malloc((pairs ? pairs : 1) * sizeof *t->dbacc)))
                return dsnn_error_set(err, DSNN_ERR_NOMEM, "out of memory");
            if (per_batch(c) && c->opt.keep_across_epochs && t->dhave)
                memcpy(t->dacc, t->dhist, pairs * sizeof *t->dacc); /* go on from there */
            else
                memset(t->dacc, 0, pairs * sizeof *t->dacc);
            t->epoch_hash = topo_hash(t->l);
            continue;
        }
        size_t nnz = dsnn_sparse_nnz(t->l);
        if (nnz > t->acc_cap) {
            float *a = realloc(t->acc, nnz * sizeof *a);
            if (!a)
                return dsnn_error_set(err, DSNN_ERR_NOMEM, "out of memory");
            t->acc = a;
            free(t->bacc);
            t->bacc = NULL;
            t->acc_cap = nnz;
        }
        if (per_batch(c) && !t->bacc &&
            !(t->bacc = malloc((t->acc_cap ? t->acc_cap : 1) * sizeof *t->bacc)))
            return dsnn_error_set(err, DSNN_ERR_NOMEM, "out of memory");
        if (nnz)
            memset(t->acc, 0, nnz * sizeof *t->acc);
        t->acc_n = nnz;
        t->epoch_hash = topo_hash(t->l);
        if (uses_hist(c)) {
            /* realign the history with the current connections; new ones have none (NaN) */
            size_t n_new = 0;
            uint64_t *keys = csr_keys(t->l, &n_new);
            float *hist = malloc((n_new ? n_new : 1) * sizeof *hist);
            if (!keys || !hist) {
                free(keys);
                free(hist);
                return dsnn_error_set(err, DSNN_ERR_NOMEM, "out of memory");
            }
            size_t a = 0;
            for (size_t k = 0; k < n_new; k++) {
                while (t->have_hist && a < t->hist_n && t->keys[a] < keys[k])
                    a++;
                hist[k] = t->have_hist && a < t->hist_n && t->keys[a] == keys[k] ? t->hist[a] : NAN;
            }
            free(t->keys);
            free(t->hist);
            t->keys = keys;
            t->hist = hist;
            t->hist_n = n_new;
            t->have_hist = true;
            if (per_batch(c)) /* kept values: the average goes on from them, grown from 0 */
                for (size_t k = 0; k < n_new; k++)
                    t->acc[k] = hist[k] == hist[k] ? hist[k] : 0.0f;
        }
    }
    c->samples = 0;
    c->in_epoch = true;
    return DSNN_OK;
}

/* bits[u][w] bit s%64 of word s/64 = (a[s][u] > 0), for units u < n, samples s < batch. Packed
 * word-major first (tmp[w][u]: a branch-free loop over the units of a sample, which the compiler
 * vectorises), then transposed when a batch needs more than one word. */
static void pack(const float *a, int n, int batch, int words, uint64_t *tmp, uint64_t *bits)
{
    uint64_t *wm = words == 1 ? bits : tmp;
    memset(wm, 0, (size_t)n * (size_t)words * sizeof *wm);
    for (int s = 0; s < batch; s++) {
        const float *row = a + (size_t)s * (size_t)n;
        uint64_t *dst = wm + (size_t)(s >> 6) * (size_t)n;
        const int b = s & 63;
        for (int u = 0; u < n; u++)
            dst[u] |= (uint64_t)(row[u] > 0.0f) << b;
    }
    if (words > 1)
        for (int u = 0; u < n; u++)
            for (int w = 0; w < words; w++)
                bits[(size_t)u * (size_t)words + (size_t)w] = wm[(size_t)w * (size_t)n + (size_t)u];
}

static inline unsigned popc_and(const uint64_t *a, const uint64_t *b, int words)
{
    unsigned s = 0;
    for (int w = 0; w < words; w++)
        s += (unsigned)__builtin_popcountll(a[w] & b[w]);
    return s;
}

static bool any_bit(const uint64_t *a, int words)
{
    for (int w = 0; w < words; w++)
        if (a[w])
            return true;
    return false;
}

/* Real-valued coactivations of a linear layer: value(o, i) += sum over the batch of y[o] x[i]
 * (activities after the activation function, as for the counts). Dense storage: one sgemm,
 * d += y^T x; active storage: a dot product over the batch per connection, on activities
 * transposed to [unit][batch] panels by the engine's transpose. */
static enum dsnn_status accumulate_real(struct coact_layer *t, const float *in, const float *out,
                                        int batch, struct dsnn_error *err)
{
    if (t->dense) {
        ly_sgemm(true, false, t->n_out, t->n_in, batch, 1.0f, out, t->n_out, in, t->n_in, 1.0f,
                 t->dacc, t->n_in);
        return DSNN_OK;
    }
    struct dsnn_sparse_csr s;
    dsnn_sparse_get_csr(t->l, &s);
    if (s.nnz != t->acc_n)
        return dsnn_error_set(err, DSNN_ERR_INVALID,
                              "coactivations of layer '%s': the topology changed during the epoch",
                              t->l->name);
    /* panels [unit][ld] (ld: batch rounded up to SP_PAD, as the engine's), kept across batches */
    const size_t ld = ((size_t)batch + SP_PAD - 1) / SP_PAD * SP_PAD;
    if (ld > t->ld_cap) {
        free(t->xt);
        free(t->yt);
        t->xt = malloc((size_t)t->n_in * ld * sizeof *t->xt);
        t->yt = malloc((size_t)t->n_out * ld * sizeof *t->yt);
        t->ld_cap = t->xt && t->yt ? ld : 0;
        if (!t->ld_cap)
            return dsnn_error_set(err, DSNN_ERR_NOMEM, "out of memory");
    }
    float *xt = t->xt, *yt = t->yt;
    dsnn_sp_transpose_in(in, t->n_in, batch, xt, ld, 0, t->n_in, 0, batch);
    dsnn_sp_transpose_in(out, t->n_out, batch, yt, ld, 0, t->n_out, 0, batch);
    int nt = dsnn_get_num_threads();
    const bool par = nt > 1 && s.nnz * (size_t)batch > PAR_MIN_WORK;
    float *acc = t->acc;
#pragma omp parallel for schedule(dynamic, 32) num_threads(nt > 1 ? nt : 1) if (par)
    for (int o = 0; o < s.n_out; o++) {
        const float *yo = yt + (size_t)o * ld;
        for (int64_t k = s.row_ptr[o]; k < s.row_ptr[o + 1]; k++) {
            const float *xi = xt + (size_t)s.col[k] * ld;
            double sum = 0;
            for (int b = 0; b < batch; b++)
                sum += (double)yo[b] * xi[b];
            acc[k] += (float)sum;
        }
    }
    return DSNN_OK;
}

static enum dsnn_status accumulate_layer(struct dsnn_coact *c, struct coact_layer *t,
                                         const float *x, int batch, struct dsnn_error *err)
{
    const float *in = t->in_act == NO_INPUT_LAYER ? x : dsnn_net_activation(c->net, t->in_act);
    const float *out = dsnn_net_activation(c->net, t->out_act);
    if (!in || !out)
        return dsnn_error_set(err, DSNN_ERR_INVALID,
                              "coactivations of layer '%s': no "
                              "activations (call after a forward)",
                              t->l->name);
    if (t->conv) {
        if (!t->dense && dsnn_sparse_nnz(t->l) != t->acc_n)
            return dsnn_error_set(err, DSNN_ERR_INVALID,
                                  "coactivations of layer '%s': the "
                                  "topology changed during the epoch",
                                  t->l->name);
        return dsnn_sparse_conv2d_coactivations(t->conv, in, out, batch, t->dense ? NULL : t->acc,
                                                t->dense ? t->dacc : NULL, err);
    }
    if (c->opt.real_valued)
        return accumulate_real(t, in, out, batch, err);
    const int words = (batch + 63) / 64;
    if (words > t->words_cap) {
        free(t->xb);
        free(t->yb);
        free(t->tmp);
        free(t->xcols);
        size_t units = (size_t)(t->n_in > t->n_out ? t->n_in : t->n_out);
        t->xb = malloc((size_t)t->n_in * (size_t)words * sizeof *t->xb);
        t->yb = malloc((size_t)t->n_out * (size_t)words * sizeof *t->yb);
        t->tmp = malloc(units * (size_t)words * sizeof *t->tmp);
        t->xcols = malloc((size_t)t->n_in * sizeof *t->xcols);
        t->words_cap = t->xb && t->yb && t->tmp && t->xcols ? words : 0;
        if (!t->words_cap)
            return dsnn_error_set(err, DSNN_ERR_NOMEM, "out of memory");
    }
    pack(in, t->n_in, batch, words, t->tmp, t->xb);
    pack(out, t->n_out, batch, words, t->tmp, t->yb);
    const uint64_t *xb = t->xb, *yb = t->yb;
    int nt = dsnn_get_num_threads();
    if (nt < 1)
        nt = 1;
    if (t->dense) {
        int n_cols = 0;
        for (int i = 0; i < t->n_in; i++)
            if (any_bit(xb + (size_t)i * words, words))
                t->xcols[n_cols++] = i;
        const int32_t *cols = t->xcols;
        float *d = t->dacc;
        const int n_in = t->n_in, n_out = t->n_out;
        const bool par = nt > 1 && (size_t)n_out * (size_t)n_cols * (size_t)words > PAR_MIN_WORK;
#pragma omp parallel for schedule(dynamic, 16) num_threads(nt) if (par)
        for (int o = 0; o < n_out; o++) {
            const uint64_t *yo = yb + (size_t)o * words;
            if (!any_bit(yo, words))
                continue;
            float *row = d + (size_t)o * (size_t)n_in;
            for (int j = 0; j < n_cols; j++)
                row[cols[j]] += (float)popc_and(yo, xb + (size_t)cols[j] * words, words);
        }
    } else {
        struct dsnn_sparse_csr s;
        dsnn_sparse_get_csr(t->l, &s);
        if (s.nnz != t->acc_n)
            return dsnn_error_set(err, DSNN_ERR_INVALID,
                                  "coactivations of layer '%s': the "
                                  "topology changed during the epoch",
                                  t->l->name);
        float *acc = t->acc;
        const int n_out = s.n_out;
        const bool par = nt > 1 && s.nnz * (size_t)words > PAR_MIN_WORK;
#pragma omp parallel for schedule(dynamic, 32) num_threads(nt) if (par)
        for (int o = 0; o < n_out; o++) {
            const uint64_t *yo = yb + (size_t)o * words;
            if (!any_bit(yo, words))
                continue;
            for (int64_t k = s.row_ptr[o]; k < s.row_ptr[o + 1]; k++)
                acc[k] += (float)popc_and(yo, xb + (size_t)s.col[k] * words, words);
        }
    }
    return DSNN_OK;
}

/* Per-batch moving average (nupic's moving_average_alpha): the batch is counted into the
 * layer's scratch counts (swapped in for the accumulator), then value = (1 - alpha) value +
 * alpha count. */
static enum dsnn_status accumulate_average(struct dsnn_coact *c, struct coact_layer *t,
                                           const float *x, int batch, struct dsnn_error *err)
{
    float **acc = t->dense ? &t->dacc : &t->acc;
    float **scratch = t->dense ? &t->dbacc : &t->bacc;
    const size_t n = t->dense ? (size_t)t->n_in * (size_t)t->n_out : t->acc_n;
    float *value = *acc;
    memset(*scratch, 0, n * sizeof **scratch);
    *acc = *scratch;
    enum dsnn_status st = accumulate_layer(c, t, x, batch, err);
    *acc = value;
    if (st != DSNN_OK)
        return st;
    const float a = (float)c->alpha, keep = (float)(1.0 - c->alpha);
    const float *b = *scratch;
    for (size_t k = 0; k < n; k++)
        value[k] = keep * value[k] + a * b[k];
    return DSNN_OK;
}

enum dsnn_status dsnn_coact_accumulate(struct dsnn_coact *c, const float *x, int batch,
                                       struct dsnn_error *err)
{
    if (!c->in_epoch)
        return dsnn_error_set(err, DSNN_ERR_INVALID,
                              "coactivations: accumulate outside begin_epoch / end_epoch");
    if (batch <= 0)
        return DSNN_OK;
    /* every update_interval-th batch, starting with the first (nupic's update_nsteps) */
    if ((c->calls++ % (uint64_t)c->opt.update_interval) != 0)
        return DSNN_OK;
    for (size_t i = 0; i < c->n; i++) {
        enum dsnn_status st = per_batch(c) ? accumulate_average(c, &c->L[i], x, batch, err)
                                           : accumulate_layer(c, &c->L[i], x, batch, err);
        if (st != DSNN_OK)
            return st;
    }
    c->samples += batch;
    return DSNN_OK;
}

enum dsnn_status dsnn_coact_end_epoch(struct dsnn_coact *c, struct dsnn_error *err)
{
    if (!c->in_epoch)
        return dsnn_error_set(err, DSNN_ERR_INVALID,
                              "coactivations: end_epoch without "
                              "begin_epoch");
    c->in_epoch = false;
    for (size_t i = 0; i < c->n; i++) {
        struct coact_layer *t = &c->L[i];
        uint64_t h = topo_hash(t->l);
        if (h != t->epoch_hash && !t->dense)
            return dsnn_error_set(err, DSNN_ERR_INVALID,
                                  "coactivations of layer '%s': the "
                                  "topology changed during the epoch",
                                  t->l->name);
        const float *dval = t->dacc;
        if (t->dense) {
            size_t pairs = (size_t)t->n_in * (size_t)t->n_out;
            if (uses_hist(c)) {
                if (!t->dhist) {
                    t->dhist = malloc((pairs ? pairs : 1) * sizeof *t->dhist);
                    if (!t->dhist)
                        return dsnn_error_set(err, DSNN_ERR_NOMEM, "out of memory");
                }
                for (size_t p = 0; p < pairs; p++)
                    t->dhist[p] = t->dhave ? combine(c, t->dacc[p], t->dhist[p]) : t->dacc[p];
                t->dhave = true;
                dval = t->dhist;
            }
            if (t->sparse) {
                struct dsnn_sparse_csr s;
                dsnn_sparse_get_csr(t->l, &s);
                if (s.nnz > t->gather_cap) {
                    float *g = realloc(t->gather, s.nnz * sizeof *g);
                    if (!g)
                        return dsnn_error_set(err, DSNN_ERR_NOMEM, "out of memory");
                    t->gather = g;
                    t->gather_cap = s.nnz;
                }
                for (int r = 0; r < s.n_out; r++)
                    for (int64_t k = s.row_ptr[r]; k < s.row_ptr[r + 1]; k++)
                        t->gather[k] = dval[(size_t)r * (size_t)s.n_in + (size_t)s.col[k]];
            }
        } else if (uses_hist(c)) {
            for (size_t k = 0; k < t->hist_n; k++)
                t->hist[k] = combine(c, t->acc[k], t->hist[k]);
        }
        t->values_hash = h;
        t->values_valid = true;
    }
    return DSNN_OK;
}

const float *dsnn_coact_values(const struct dsnn_coact *c, size_t i)
{
    if (!c || i >= c->n)
        return NULL;
    const struct coact_layer *t = &c->L[i];
    if (!t->values_valid || (t->sparse && topo_hash(t->l) != t->values_hash))
        return NULL;
    if (!t->sparse)
        return uses_hist(c) ? t->dhist : t->dacc;
    if (t->dense)
        return t->gather;
    return uses_hist(c) ? t->hist : t->acc;
}

const float *dsnn_coact_dense(const struct dsnn_coact *c, size_t i)
{
    if (!c || i >= c->n || !c->L[i].dense)
        return NULL;
    const struct coact_layer *t = &c->L[i];
    if (uses_hist(c))
        return t->dhave ? t->dhist : NULL;
    return t->values_valid || c->in_epoch ? t->dacc : NULL;
}

enum dsnn_status dsnn_coact_set_options(struct dsnn_coact *c, const struct dsnn_coact_options *o,
                                        struct dsnn_error *err)
{
    if (o->update_interval < 1)
        return dsnn_error_set(err, DSNN_ERR_INVALID,
                              "coactivations: update interval %lld (must be >= 1)",
                              (long long)o->update_interval);
    if (o->average != DSNN_COACT_AVERAGE_EPOCH && o->average != DSNN_COACT_AVERAGE_BATCH)
        return dsnn_error_set(err, DSNN_ERR_INVALID, "coactivations: unknown average %d",
                              (int)o->average);
    if (o->keep_across_epochs && c->alpha < 1.0 && o->average == DSNN_COACT_AVERAGE_EPOCH)
        return dsnn_error_set(err, DSNN_ERR_INVALID,
                              "coactivations: counts kept across epochs (reset_coactivations = "
                              "false) and a moving average over epochs (alpha %g < 1) exclude "
                              "each other",
                              c->alpha);
    for (size_t i = 0; i < c->n && o->real_valued; i++)
        if (c->L[i].conv)
            return dsnn_error_set(err, DSNN_ERR_INVALID,
                                  "coactivations of layer '%s': real-valued coactivations of "
                                  "convolutions are not supported (binary ones are)",
                                  c->L[i].conv->name);
    if (c->in_epoch)
        return dsnn_error_set(err, DSNN_ERR_INVALID,
                              "coactivations: options changed during an epoch");
    c->opt = *o;
    return DSNN_OK;
}

const char *const dsnn_coact_value_choices[] = {"binary", "real", NULL};
const char *const dsnn_coact_average_choices[] = {"batch", "epoch", NULL};

struct dsnn_coact_options dsnn_coact_keys_options(const struct dsnn_coact_keys *k)
{
    return (struct dsnn_coact_options){.real_valued = k->values == 1,
                                       .update_interval = k->update_nsteps > 0 ? k->update_nsteps : 1,
                                       .keep_across_epochs = !k->reset,
                                       .average = k->average == 1 ? DSNN_COACT_AVERAGE_EPOCH
                                                                  : DSNN_COACT_AVERAGE_BATCH};
}

enum dsnn_status dsnn_coact_keys_check(const struct dsnn_cfg *cfg, const struct dsnn_coact_keys *k,
                                       struct dsnn_error *err)
{
    const double alpha = k->alpha;
    if (k->reset || !(alpha < 1.0) || k->average != 1)
        return DSNN_OK;
    char where[300];
    return dsnn_error_set(err, DSNN_ERR_CONFIG,
                          "%s: key '%s.reset_coactivations' = false (coactivations added up over "
                          "the epochs) and moving_average = \"epoch\" with moving_average_alpha "
                          "= %g (an average over them) exclude each other; keep one (or "
                          "moving_average = \"batch\", nupic's)",
                          dsnn_cfg_where(cfg, "reset_coactivations", where, sizeof where),
                          dsnn_cfg_path(cfg), alpha);
}

bool dsnn_coact_every_epoch(const struct dsnn_coact *c)
{
    return c && uses_hist(c);
}

bool dsnn_coact_tracks_epoch(const struct dsnn_coact *c, const struct dsnn_prune_schedule *sched,
                             bool round_due, int epoch)
{
    return c && (round_due || (dsnn_coact_every_epoch(c) &&
                               !dsnn_prune_schedule_stopped(sched, epoch)));
}

long long dsnn_coact_samples(const struct dsnn_coact *c)
{
    return c ? c->samples : 0;
}

/* The options as checkpointed: bit 0 real-valued, 1 kept across epochs, 2 average per batch. */
static uint64_t option_flags(const struct dsnn_coact *c)
{
    return (uint64_t)c->opt.real_valued | (uint64_t)c->opt.keep_across_epochs << 1 |
           (uint64_t)(c->opt.average == DSNN_COACT_AVERAGE_BATCH) << 2;
}

enum dsnn_status dsnn_coact_save(const struct dsnn_coact *c, FILE *f, struct dsnn_error *err)
{
    enum dsnn_status st;
    if ((st = dsnn_io_write(f, "COA2", 4, "coactivation tag", err)) ||
        (st = dsnn_io_write_u64(f, c->n, "coactivation layer count", err)) ||
        (st = dsnn_io_write_u64(f, c->dense, "coactivation storage", err)) ||
        (st = dsnn_io_write(f, &c->alpha, sizeof c->alpha, "coactivation alpha", err)) ||
        (st = dsnn_io_write_u64(f, option_flags(c), "coactivation options", err)) ||
        (st = dsnn_io_write_u64(f, (uint64_t)c->opt.update_interval, "coactivation interval", err)) ||
        (st = dsnn_io_write_u64(f, c->calls, "coactivation batches", err)))
        return st;
    if (!uses_hist(c))
        return DSNN_OK; /* nothing else outlives an epoch */
    for (size_t i = 0; i < c->n; i++) {
        const struct coact_layer *t = &c->L[i];
        if (t->dense) {
            size_t pairs = (size_t)t->n_in * (size_t)t->n_out;
            if ((st = dsnn_io_write_u64(f, t->dhave, "coactivation history flag", err)) ||
                (t->dhave && (st = dsnn_io_write(f, t->dhist, pairs * sizeof *t->dhist,
                                                 "coactivation history", err))))
                return st;
        } else {
            size_t n = t->have_hist ? t->hist_n : 0;
            if ((st = dsnn_io_write_u64(f, t->have_hist, "coactivation history flag", err)) ||
                (st = dsnn_io_write_u64(f, n, "coactivation history size", err)) ||
                (st = dsnn_io_write(f, t->keys, n * sizeof *t->keys, "coactivation keys", err)) ||
                (st = dsnn_io_write(f, t->hist, n * sizeof *t->hist, "coactivation history", err)))
                return st;
        }
    }
    return DSNN_OK;
}

enum dsnn_status dsnn_coact_load(struct dsnn_coact *c, FILE *f, struct dsnn_error *err)
{
    enum dsnn_status st;
    uint64_t n, dense, flags, interval, calls;
    double alpha;
    if ((st = dsnn_io_expect_tag(f, "COA2", err)) ||
        (st = dsnn_io_read_u64(f, &n, "coactivation layer count", err)) ||
        (st = dsnn_io_read_u64(f, &dense, "coactivation storage", err)) ||
        (st = dsnn_io_read(f, &alpha, sizeof alpha, "coactivation alpha", err)) ||
        (st = dsnn_io_read_u64(f, &flags, "coactivation options", err)) ||
        (st = dsnn_io_read_u64(f, &interval, "coactivation interval", err)) ||
        (st = dsnn_io_read_u64(f, &calls, "coactivation batches", err)))
        return st;
    const uint64_t want_flags = option_flags(c);
    if (n != c->n || (dense != 0) != c->dense || alpha != c->alpha || flags != want_flags ||
        interval != (uint64_t)c->opt.update_interval)
        return dsnn_error_set(err, DSNN_ERR_FORMAT,
                              "checkpoint: coactivations of %llu layers (%s, alpha %g, options "
                              "%llu, interval %llu), the model tracks %zu (%s, alpha %g, options "
                              "%llu, interval %lld)",
                              (unsigned long long)n, dense ? "dense" : "active", alpha,
                              (unsigned long long)flags, (unsigned long long)interval, c->n,
                              c->dense ? "dense" : "active", c->alpha,
                              (unsigned long long)want_flags, (long long)c->opt.update_interval);
    c->calls = calls;
    c->in_epoch = false;
    for (size_t i = 0; i < c->n; i++)
        c->L[i].values_valid = false;
    if (!uses_hist(c))
        return DSNN_OK;
    for (size_t i = 0; i < c->n; i++) {
        struct coact_layer *t = &c->L[i];
        uint64_t have, m;
        if ((st = dsnn_io_read_u64(f, &have, "coactivation history flag", err)))
            return st;
        if (t->dense) {
            size_t pairs = (size_t)t->n_in * (size_t)t->n_out;
            t->dhave = have != 0;
            if (!t->dhave)
                continue;
            if (!t->dhist && !(t->dhist = malloc((pairs ? pairs : 1) * sizeof *t->dhist)))
                return dsnn_error_set(err, DSNN_ERR_NOMEM, "out of memory");
            if ((st = dsnn_io_read(f, t->dhist, pairs * sizeof *t->dhist, "coactivation history",
                                   err)))
                return st;
        } else {
            if ((st = dsnn_io_read_u64(f, &m, "coactivation history size", err)))
                return st;
            if (m > (uint64_t)t->n_in * (uint64_t)t->n_out)
                return dsnn_error_set(err, DSNN_ERR_FORMAT,
                                      "checkpoint: bad coactivation "
                                      "history size %llu",
                                      (unsigned long long)m);
            free(t->keys);
            free(t->hist);
            t->keys = malloc((m ? m : 1) * sizeof *t->keys);
            t->hist = malloc((m ? m : 1) * sizeof *t->hist);
            t->hist_n = 0;
            t->have_hist = false;
            if (!t->keys || !t->hist)
                return dsnn_error_set(err, DSNN_ERR_NOMEM, "out of memory");
            if ((st = dsnn_io_read(f, t->keys, m * sizeof *t->keys, "coactivation keys", err)) ||
                (st = dsnn_io_read(f, t->hist, m * sizeof *t->hist, "coactivation history", err)))
                return st;
            t->hist_n = m;
            t->have_hist = have != 0;
        }
    }
    return DSNN_OK;
}

/* ---- Shared by the coactivation-driven model plugins ---- */

static enum dsnn_status coact_after_forward(void *user, struct dsnn_net *net,
                                            const struct dsnn_batch *b, struct dsnn_error *err)
{
    (void)net;
    return dsnn_coact_accumulate(user, b->x, b->n, err);
}

enum dsnn_status dsnn_coact_train_epoch(struct dsnn_sparse_model *sm, struct dsnn_coact *coact,
                                        const struct dsnn_prune_schedule *sched,
                                        struct dsnn_data *data, int epoch, struct dsnn_metrics *m,
                                        bool *round_due, struct dsnn_error *err)
{
    const bool active = dsnn_prune_schedule_active(sched, epoch);
    const bool track = dsnn_coact_tracks_epoch(coact, sched, active, epoch);
    struct dsnn_train_hooks hooks = {.user = coact, .after_forward = coact_after_forward};
    enum dsnn_status st;
    *round_due = false;
    if (track && (st = dsnn_coact_begin_epoch(coact, err)))
        return st;
    if ((st = dsnn_base_model_train_epoch(dsnn_sparse_model_base(sm), data, epoch, track ? &hooks : NULL, m, err)))
        return st;
    if (track && (st = dsnn_coact_end_epoch(coact, err)))
        return st;
    dsnn_metrics_set(m, "pruning_active", active);
    if (active)
        *round_due = true;
    else
        dsnn_sparse_model_log_idle(sm, m);
    return DSNN_OK;
}

enum dsnn_status dsnn_coact_model_save(struct dsnn_sparse_model *sm, const struct dsnn_coact *coact,
                                       FILE *f, struct dsnn_error *err)
{
    enum dsnn_status st = dsnn_sparse_model_save(sm, f, err);
    if (st == DSNN_OK && coact)
        st = dsnn_coact_save(coact, f, err);
    return st;
}

enum dsnn_status dsnn_coact_model_load(struct dsnn_sparse_model *sm, struct dsnn_coact *coact,
                                       FILE *f, struct dsnn_error *err)
{
    enum dsnn_status st = dsnn_sparse_model_load(sm, f, err);
    if (st == DSNN_OK && coact)
        st = dsnn_coact_load(coact, f, err);
    return st;
}
