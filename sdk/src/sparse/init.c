/* sparse/init.c - densities (ER, ERK) and sampling of initial topologies without a dense mask.
 *
 * precise:            Floyd's algorithm over the n_in*n_out positions (a hash set of the chosen
 *                     ones), then a radix sort; the complement is sampled when density > 1/2.
 * precise_per_output: Floyd's algorithm per row with a reusable bitmap of n_in bits.
 * approximate:        geometric skips between successive connections (Bernoulli process).
 * Time and memory are O(nnz) (O(n_in*n_out) only when density > 1/2, i.e. O(nnz) too). */
#include "dsnn/layers.h"
#include "sparse/sparse_impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

double dsnn_sparse_er_density(int n_in, int n_out, double epsilon)
{
    if (n_in <= 0 || n_out <= 0 || !(epsilon > 0))
        return 0.0;
    double d = epsilon * ((double)n_in + n_out) / ((double)n_in * n_out);
    return d > 1.0 ? 1.0 : d;
}

/* ERK over n layers of size[i] weights whose dimensions add up to sum[i] (RigL: the raw density
 * of a layer is sum / size: (n_in + n_out) / (n_in n_out) for a matrix, (c_in + c_out + kh + kw)
 * / (c_in c_out kh kw) for a kernel). */
static enum dsnn_status erk_solve(size_t n, const double *size, const double *sum,
                                  const bool *dense, double density, double *densities,
                                  double *epsilon, struct dsnn_error *err)
{
    if (!(density >= 0.0 && density <= 1.0))
        return dsnn_error_set(err, DSNN_ERR_INVALID, "ERK: density %g outside [0, 1]", density);
    bool *is_dense = calloc(n ? n : 1, sizeof *is_dense);
    if (!is_dense)
        return dsnn_error_set(err, DSNN_ERR_NOMEM, "out of memory");
    double total = 0;
    for (size_t i = 0; i < n; i++) {
        total += size[i];
        is_dense[i] = dense && dense[i];
    }
    double eps = 0;
    for (;;) {
        double budget = density * total, denom = 0;
        for (size_t i = 0; i < n; i++) {
            if (is_dense[i])
                budget -= size[i];
            else
                denom += sum[i]; /* raw probability times size */
        }
        if (budget < -1e-9 * total) {
            free(is_dense);
            return dsnn_error_set(err, DSNN_ERR_INVALID,
                                  "ERK: the dense layers alone exceed the density %g", density);
        }
        if (budget < 0)
            budget = 0;
        eps = denom > 0 ? budget / denom : 0;
        /* The layer with the largest raw probability is made dense if it exceeds 1. */
        size_t worst = n;
        double worst_raw = 0;
        for (size_t i = 0; i < n; i++) {
            if (is_dense[i])
                continue;
            double raw = sum[i] / size[i];
            if (raw > worst_raw) {
                worst_raw = raw;
                worst = i;
            }
        }
        if (worst == n || eps * worst_raw <= 1.0)
            break;
        is_dense[worst] = true;
    }
    for (size_t i = 0; i < n; i++) {
        double raw = sum[i] / size[i];
        densities[i] = is_dense[i] ? 1.0 : fmin(1.0, eps * raw);
    }
    if (epsilon)
        *epsilon = eps;
    free(is_dense);
    return DSNN_OK;
}

enum dsnn_status dsnn_sparse_erk_densities(size_t n, const int *n_in, const int *n_out,
                                           const bool *dense, double density, double *densities,
                                           double *epsilon, struct dsnn_error *err)
{
    double *size = malloc((n ? n : 1) * sizeof *size), *sum = malloc((n ? n : 1) * sizeof *sum);
    enum dsnn_status st = DSNN_OK;
    if (!size || !sum)
        st = dsnn_error_set(err, DSNN_ERR_NOMEM, "out of memory");
    for (size_t i = 0; st == DSNN_OK && i < n; i++) {
        if (n_in[i] <= 0 || n_out[i] <= 0)
            st = dsnn_error_set(err, DSNN_ERR_INVALID, "ERK: layer %zu has size %d x %d", i,
                                n_out[i], n_in[i]);
        size[i] = (double)n_in[i] * n_out[i];
        sum[i] = (double)n_in[i] + n_out[i];
    }
    if (st == DSNN_OK)
        st = erk_solve(n, size, sum, dense, density, densities, epsilon, err);
    free(size);
    free(sum);
    return st;
}

/* ERK size and dimension sum of layer l (linear, sparse_linear, conv2d or sparse_conv2d); *store:
 * the sparse_linear whose init the density goes to (NULL for a dense layer). false: another
 * layer type. */
static bool erk_layer(struct dsnn_layer *l, double *size, double *sum, struct dsnn_layer **store)
{
    int ni, no;
    bool b;
    struct dsnn_conv2d_geom g;
    if (dsnn_sparse_linear_dims_(l, &ni, &no, &b) ||
        (dsnn_layer_is(l, "linear") && dsnn_linear_dims(l, &ni, &no, &b))) {
        *size = (double)ni * no;
        *sum = (double)ni + no;
        *store = dsnn_sparse_is(l) ? l : NULL;
        return true;
    }
    if (dsnn_conv2d_geometry(l, &g)) {
        *size = (double)g.in_c * g.out_c * g.kernel * g.kernel;
        *sum = (double)g.in_c + g.out_c + 2.0 * g.kernel;
        *store = dsnn_sparse_conv2d_weights(l);
        return true;
    }
    return false;
}

enum dsnn_status dsnn_sparse_erk_apply(struct dsnn_layer *const *layers, size_t n, double density,
                                       struct dsnn_error *err)
{
    double *size = malloc((n ? n : 1) * sizeof *size), *sum = malloc((n ? n : 1) * sizeof *sum);
    struct dsnn_layer **store = malloc((n ? n : 1) * sizeof *store);
    bool *dense = malloc((n ? n : 1) * sizeof *dense);
    double *d = malloc((n ? n : 1) * sizeof *d);
    enum dsnn_status st = DSNN_OK;
    if (!size || !sum || !store || !dense || !d) {
        st = dsnn_error_set(err, DSNN_ERR_NOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        if (!layers[i] || !erk_layer(layers[i], &size[i], &sum[i], &store[i])) {
            st = dsnn_error_set(err, DSNN_ERR_INVALID,
                                "ERK: layer '%s' is not a linear or conv2d layer (dense or sparse)",
                                layers[i] ? layers[i]->name : "(null)");
            goto done;
        }
        dense[i] = store[i] == NULL;
        if (!dense[i] && layers[i]->initialized) {
            st = dsnn_error_set(err, DSNN_ERR_INVALID, "ERK: layer '%s' is already initialised",
                                layers[i]->name);
            goto done;
        }
    }
    if ((st = erk_solve(n, size, sum, dense, density, d, NULL, err)))
        goto done;
    for (size_t i = 0; i < n; i++) {
        if (dense[i])
            continue;
        struct dsnn_sparse_init init = *dsnn_sparse_get_init(store[i]);
        init.epsilon = 0;
        init.density = d[i];
        if ((st = dsnn_sparse_set_init(store[i], &init, err)))
            goto done;
    }
done:
    free(size);
    free(sum);
    free(store);
    free(dense);
    free(d);
    return st;
}

/* ---- sampling ---- */

/* CSR from sorted unique position keys (row * n_in + col). */
static void csr_from_keys(const uint64_t *keys, size_t nnz, int n_in, int n_out, int64_t *row_ptr,
                          int32_t *col)
{
    memset(row_ptr, 0, sizeof(int64_t) * ((size_t)n_out + 1));
    for (size_t k = 0; k < nnz; k++) {
        uint64_t r = keys[k] / (uint64_t)n_in;
        row_ptr[r + 1]++;
        col[k] = (int32_t)(keys[k] - r * (uint64_t)n_in);
    }
    for (int r = 0; r < n_out; r++)
        row_ptr[r + 1] += row_ptr[r];
}

/* Floyd's algorithm: m distinct values of [0, n) into out (unsorted); h is an empty set. */
static void floyd(struct dsnn_rng *rng, uint64_t n, uint64_t m, struct sp_hashset *h,
                  uint64_t *out)
{
    size_t i = 0;
    for (uint64_t j = n - m; j < n; j++) {
        uint64_t t = dsnn_rng_below(rng, j + 1);
        if (sp_hashset_insert(h, t))
            out[i++] = t;
        else {
            sp_hashset_insert(h, j);
            out[i++] = j;
        }
    }
}

static enum dsnn_status sample_precise(int n_in, int n_out, double density, struct dsnn_rng *rng,
                                       int64_t *row_ptr, int32_t **col_out, size_t *nnz_out,
                                       struct dsnn_error *err)
{
    const uint64_t N = (uint64_t)n_in * (uint64_t)n_out;
    double kd = nearbyint(density * (double)N);
    uint64_t K = kd <= 0 ? 0 : kd >= (double)N ? N : (uint64_t)kd;
    const bool complement = K > N / 2;
    const uint64_t M = complement ? N - K : K; /* how many to draw */
    uint64_t *keys = malloc((M ? M : 1) * sizeof *keys);
    int32_t *col = malloc((K ? K : 1) * sizeof *col);
    struct sp_hashset h = {0};
    if (!keys || !col || !sp_hashset_init(&h, M))
        goto nomem;
    floyd(rng, N, M, &h, keys);
    sp_hashset_free(&h);
    if (!sp_sort_u64(keys, M, N))
        goto nomem;
    if (!complement) {
        csr_from_keys(keys, K, n_in, n_out, row_ptr, col);
    } else { /* every position not among the M sorted keys */
        size_t q = 0, k = 0;
        row_ptr[0] = 0;
        for (int r = 0; r < n_out; r++) {
            uint64_t base = (uint64_t)r * (uint64_t)n_in;
            for (int c = 0; c < n_in; c++) {
                if (q < M && keys[q] == base + (uint64_t)c) {
                    q++;
                    continue;
                }
                col[k++] = c;
            }
            row_ptr[r + 1] = (int64_t)k;
        }
    }
    free(keys);
    *col_out = col;
    *nnz_out = (size_t)K;
    return DSNN_OK;
nomem:
    sp_hashset_free(&h);
    free(keys);
    free(col);
    return dsnn_error_set(err, DSNN_ERR_NOMEM, "cannot sample %llu connections",
                          (unsigned long long)K);
}

static enum dsnn_status sample_per_output(int n_in, int n_out, double density,
                                          struct dsnn_rng *rng, int64_t *row_ptr,
                                          int32_t **col_out, size_t *nnz_out,
                                          struct dsnn_error *err)
{
    double md = nearbyint(density * n_in);
    const int m = md <= 0 ? 0 : md >= n_in ? n_in : (int)md;
    const bool complement = m > n_in / 2;
    const int draw = complement ? n_in - m : m;
    const size_t nnz = (size_t)m * (size_t)n_out;
    int32_t *col = malloc((nnz ? nnz : 1) * sizeof *col);
    uint64_t *bits = calloc(((size_t)n_in + 63) / 64, sizeof *bits);
    uint32_t *pick = malloc(((size_t)draw + 1) * sizeof *pick);
    if (!col || !bits || !pick) {
        free(col);
        free(bits);
        free(pick);
        return dsnn_error_set(err, DSNN_ERR_NOMEM, "cannot sample %zu connections", nnz);
    }
    size_t k = 0;
    row_ptr[0] = 0;
    for (int r = 0; r < n_out; r++) {
        /* Floyd over [0, n_in) with the bitmap as the set */
        for (int j = n_in - draw, i = 0; j < n_in; j++, i++) {
            uint32_t t = (uint32_t)dsnn_rng_below(rng, (uint64_t)j + 1);
            if (bits[t >> 6] & (1ULL << (t & 63)))
                t = (uint32_t)j;
            bits[t >> 6] |= 1ULL << (t & 63);
            pick[i] = t;
        }
        if (!complement) {
            if (!sp_sort_u32(pick, (size_t)draw)) {
                free(col);
                free(bits);
                free(pick);
                return dsnn_error_set(err, DSNN_ERR_NOMEM, "out of memory");
            }
            for (int i = 0; i < draw; i++)
                col[k++] = (int32_t)pick[i];
        } else {
            for (int c = 0; c < n_in; c++)
                if (!(bits[c >> 6] & (1ULL << (c & 63))))
                    col[k++] = c;
        }
        for (int i = 0; i < draw; i++)
            bits[pick[i] >> 6] &= ~(1ULL << (pick[i] & 63));
        row_ptr[r + 1] = (int64_t)k;
    }
    free(bits);
    free(pick);
    *col_out = col;
    *nnz_out = nnz;
    return DSNN_OK;
}

static enum dsnn_status sample_approximate(int n_in, int n_out, double p, struct dsnn_rng *rng,
                                           int64_t *row_ptr, int32_t **col_out, size_t *nnz_out,
                                           struct dsnn_error *err)
{
    const uint64_t N = (uint64_t)n_in * (uint64_t)n_out;
    double mean = p * (double)N;
    size_t cap = (size_t)(mean + 6.0 * sqrt(mean) + 16.0);
    if (p >= 1.0)
        cap = (size_t)N;
    uint64_t *keys = malloc(cap * sizeof *keys);
    if (!keys)
        return dsnn_error_set(err, DSNN_ERR_NOMEM, "cannot sample connections");
    size_t k = 0;
    if (p >= 1.0) {
        for (uint64_t i = 0; i < N; i++)
            keys[k++] = i;
    } else if (p > 0.0) {
        const double log1mp = log1p(-p);
        uint64_t next = 0;
        for (;;) {
            double u = dsnn_rng_uniform(rng);
            double skip = floor(log1p(-u) / log1mp);
            if (!(skip < (double)(N - next)))
                break;
            uint64_t pos = next + (uint64_t)skip;
            if (k == cap) {
                size_t nc = cap + cap / 2 + 16;
                uint64_t *nk = realloc(keys, nc * sizeof *nk);
                if (!nk) {
                    free(keys);
                    return dsnn_error_set(err, DSNN_ERR_NOMEM, "cannot sample connections");
                }
                keys = nk;
                cap = nc;
            }
            keys[k++] = pos;
            next = pos + 1;
            if (next >= N)
                break;
        }
    }
    int32_t *col = malloc((k ? k : 1) * sizeof *col);
    if (!col) {
        free(keys);
        return dsnn_error_set(err, DSNN_ERR_NOMEM, "cannot sample connections");
    }
    csr_from_keys(keys, k, n_in, n_out, row_ptr, col);
    free(keys);
    *col_out = col;
    *nnz_out = k;
    return DSNN_OK;
}

enum dsnn_status sp_sample_topology(int n_in, int n_out, double density,
                                         enum dsnn_sparse_mask mask, struct dsnn_rng *rng,
                                         int64_t *row_ptr, int32_t **col, size_t *nnz,
                                         struct dsnn_error *err)
{
    switch (mask) {
    case DSNN_SPARSE_MASK_PRECISE:
        return sample_precise(n_in, n_out, density, rng, row_ptr, col, nnz, err);
    case DSNN_SPARSE_MASK_PRECISE_PER_OUTPUT:
        return sample_per_output(n_in, n_out, density, rng, row_ptr, col, nnz, err);
    case DSNN_SPARSE_MASK_APPROXIMATE:
        return sample_approximate(n_in, n_out, density, rng, row_ptr, col, nnz, err);
    }
    return dsnn_error_set(err, DSNN_ERR_INVALID, "unknown mask type %d", (int)mask);
}
