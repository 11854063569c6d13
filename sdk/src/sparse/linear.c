/* sparse/linear.c - the "sparse_linear" layer: ops table, buffers, parallel drivers, checkpoint.
 * See sparse/sparse_impl.h for the layout and the work decomposition. */
#include "dsnn/io.h"
#include "dsnn/net.h"
#include "sparse/sparse_impl.h"

#include "layers/layers_impl.h"
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

static const struct dsnn_layer_ops sparse_linear_ops;

struct sp_linear *sp_get(const struct dsnn_layer *l)
{
    if (!l || l->ops != &sparse_linear_ops)
        return NULL;
    struct sp_linear *S = (struct sp_linear *)l;
    return S->row_ptr ? S : NULL;
}

static struct sp_linear *sp_cast(const struct dsnn_layer *l)
{
    return l && l->ops == &sparse_linear_ops ? (struct sp_linear *)l : NULL;
}

bool dsnn_sparse_is(const struct dsnn_layer *l)
{
    return sp_cast(l) != NULL;
}

static void *sp_aligned(size_t floats)
{
    size_t bytes = (floats * sizeof(float) + 63) & ~(size_t)63;
    return aligned_alloc(64, bytes ? bytes : 64);
}

static int sp_round_up(int x, int m)
{
    return (x + m - 1) / m * m;
}

static int sp_gcd(int a, int b)
{
    while (b) {
        int t = a % b;
        a = b;
        b = t;
    }
    return a;
}

static int sp_threads(void)
{
    int t = dsnn_get_num_threads();
    return t > 0 ? t : 1;
}

int sp_fan_in(const struct sp_linear *S)
{
    if (!S->init.sparse_fan_in)
        return S->n_in;
    long f = lround(S->density * S->n_in);
    return f < 1 ? 1 : (int)f;
}

float sp_init_value(const struct sp_linear *S, struct dsnn_rng *rng)
{
    return dsnn_weight_init_draw(S->init.weight_init, sp_fan_in(S), S->n_out,
                                 S->init.weight_std, rng);
}

float sp_grow_value(const struct sp_linear *S, struct dsnn_rng *rng)
{
    switch (S->init.grow_init) {
    case DSNN_SPARSE_GROW_ZERO: return 0.0f;
    case DSNN_SPARSE_GROW_NORMAL: return rng ? (float)(dsnn_rng_normal(rng) * S->init.grow_std) : 0;
    case DSNN_SPARSE_GROW_LIKE_INIT: return rng ? sp_init_value(S, rng) : 0.0f;
    }
    return 0.0f;
}

/* Frees the CSC arrays sized by the capacity; the index is rebuilt when next needed. */
static void sp_free_csc(struct sp_linear *S)
{
    free(S->csc_row);
    free(S->csc_k);
    free(S->csc_val);
    S->csc_row = NULL;
    S->csc_k = NULL;
    S->csc_val = NULL;
    S->csc_valid = false;
    S->csc_val_valid = false;
    S->topo_gen++;
}

void sp_topology_changed(struct sp_linear *S)
{
    S->topo_gen++;
    S->csc_valid = false;
    S->csc_val_valid = false;
    SP_WB(S).n = S->nnz;
}

uint64_t sp_topology_gen(const struct dsnn_layer *l)
{
    return ((const struct sp_linear *)l)->topo_gen;
}

enum dsnn_status sp_reserve_nnz(struct sp_linear *S, size_t need,
                                     struct dsnn_error *err)
{
    if (need <= S->cap)
        return DSNN_OK;
    if (need > UINT32_MAX)
        return dsnn_error_set(err, DSNN_ERR_INVALID,
                              "layer '%s': %zu connections exceed the limit of 2^32 - 1",
                              S->base.name, need);
    size_t cap = S->cap + S->cap / 2;
    if (cap < need)
        cap = need;
    if (cap > UINT32_MAX)
        cap = UINT32_MAX;
    struct dsnn_param_block *b = &SP_WB(S);
    float **arrays[2 + DSNN_OPT_STATE_MAX] = {&b->value, &b->grad};
    int na = 2;
    for (int s = 0; s < DSNN_OPT_STATE_MAX; s++)
        if (b->state[s])
            arrays[na++] = &b->state[s];
    for (int i = 0; i < na; i++) {
        float *p = realloc(*arrays[i], cap * sizeof(float));
        if (!p)
            return dsnn_error_set(err, DSNN_ERR_NOMEM, "layer '%s': cannot grow to %zu connections",
                                  S->base.name, cap);
        *arrays[i] = p;
    }
    int32_t *c = realloc(S->col, cap * sizeof *c);
    if (!c)
        return dsnn_error_set(err, DSNN_ERR_NOMEM, "layer '%s': cannot grow to %zu connections",
                              S->base.name, cap);
    S->col = c;
    S->cap = cap;
    b->capacity = cap;
    sp_free_csc(S);
    free(S->dw_part);
    S->dw_part = NULL;
    S->dw_part_cap = 0;
    S->dw_part_chunks = 0;
    return DSNN_OK;
}

/* ---- construction ---- */

struct dsnn_sparse_init dsnn_sparse_init_default(void)
{
    struct dsnn_sparse_init i;
    memset(&i, 0, sizeof i);
    i.density = 1.0;
    i.epsilon = 0.0;
    i.mask = DSNN_SPARSE_MASK_PRECISE;
    i.weight_init = DSNN_INIT_KAIMING_UNIFORM;
    i.weight_std = 0.0;
    i.sparse_fan_in = false;
    i.grow_init = DSNN_SPARSE_GROW_ZERO;
    i.grow_std = 0.0;
    return i;
}

static enum dsnn_status sp_check_init(const char *name, const struct dsnn_sparse_init *init,
                                      struct dsnn_error *err)
{
    if (!(init->density >= 0.0 && init->density <= 1.0) && !(init->epsilon > 0))
        return dsnn_error_set(err, DSNN_ERR_INVALID, "layer '%s': density %g outside [0, 1]",
                              name, init->density);
    if (!(init->epsilon >= 0.0) || isinf(init->epsilon))
        return dsnn_error_set(err, DSNN_ERR_INVALID, "layer '%s': epsilon %g must be >= 0", name,
                              init->epsilon);
    if ((unsigned)init->mask > DSNN_SPARSE_MASK_APPROXIMATE)
        return dsnn_error_set(err, DSNN_ERR_INVALID, "layer '%s': unknown mask type %d", name,
                              (int)init->mask);
    if ((unsigned)init->grow_init > DSNN_SPARSE_GROW_LIKE_INIT)
        return dsnn_error_set(err, DSNN_ERR_INVALID, "layer '%s': unknown grow init %d", name,
                              (int)init->grow_init);
    if ((unsigned)init->weight_init > DSNN_INIT_ZERO)
        return dsnn_error_set(err, DSNN_ERR_INVALID, "layer '%s': unknown weight init %d", name,
                              (int)init->weight_init);
    return DSNN_OK;
}

struct dsnn_layer *dsnn_sparse_linear_new(const char *name, int n_in, int n_out, bool bias,
                                          const struct dsnn_sparse_init *init,
                                          struct dsnn_error *err)
{
    if (!name)
        name = "sparse_linear";
    if (n_in <= 0 || n_out <= 0) {
        dsnn_error_set(err, DSNN_ERR_INVALID, "layer '%s': invalid size %d -> %d", name, n_in,
                       n_out);
        return NULL;
    }
    struct dsnn_sparse_init def = dsnn_sparse_init_default();
    if (!init)
        init = &def;
    if (sp_check_init(name, init, err) != DSNN_OK)
        return NULL;
    struct sp_linear *S = dsnn_layer_alloc(sizeof *S, &sparse_linear_ops, name,
                                           (struct dsnn_shape){n_in, 1, 1},
                                           (struct dsnn_shape){n_out, 1, 1}, err);
    if (!S)
        return NULL;
    S->want_dx = true;
    S->n_in = n_in;
    S->n_out = n_out;
    S->bias = bias;
    S->init = *init;
    return &S->base;
}

bool dsnn_sparse_linear_dims_(const struct dsnn_layer *l, int *n_in, int *n_out, bool *bias)
{
    const struct sp_linear *S = sp_cast(l);
    if (!S)
        return false;
    if (n_in)
        *n_in = S->n_in;
    if (n_out)
        *n_out = S->n_out;
    if (bias)
        *bias = S->bias;
    return true;
}

enum dsnn_status dsnn_sparse_set_init(struct dsnn_layer *l, const struct dsnn_sparse_init *init,
                                      struct dsnn_error *err)
{
    struct sp_linear *S = sp_cast(l);
    if (!S || !init)
        return dsnn_error_set(err, DSNN_ERR_INVALID, "not a sparse linear layer");
    if (S->row_ptr)
        return dsnn_error_set(err, DSNN_ERR_INVALID,
                              "layer '%s': the sparse configuration can only change before init",
                              l->name);
    enum dsnn_status st = sp_check_init(l->name, init, err);
    if (st == DSNN_OK)
        S->init = *init;
    return st;
}

const struct dsnn_sparse_init *dsnn_sparse_get_init(const struct dsnn_layer *l)
{
    const struct sp_linear *S = sp_cast(l);
    return S ? &S->init : NULL;
}

enum dsnn_status dsnn_sparse_set_activation(struct dsnn_layer *l, enum dsnn_sparse_activation a,
                                            struct dsnn_error *err)
{
    struct sp_linear *S = sp_cast(l);
    if (!S || (unsigned)a > DSNN_SPARSE_ACT_RELU)
        return dsnn_error_set(err, DSNN_ERR_INVALID,
                              "dsnn_sparse_set_activation: not a sparse linear layer or unknown "
                              "activation %d",
                              (int)a);
    S->act = a;
    S->xT_valid = S->dyT_valid = false;
    S->y_out = NULL; /* yT no longer matches the activation */
    S->fwd_gen++;
    return DSNN_OK;
}

enum dsnn_sparse_activation dsnn_sparse_get_activation(const struct dsnn_layer *l)
{
    const struct sp_linear *S = sp_cast(l);
    return S ? S->act : DSNN_SPARSE_ACT_NONE;
}

void dsnn_sparse_set_grow_init(struct dsnn_layer *l, enum dsnn_sparse_grow_init g, double std)
{
    struct sp_linear *S = sp_cast(l);
    if (!S || (unsigned)g > DSNN_SPARSE_GROW_LIKE_INIT)
        return;
    S->init.grow_init = g;
    S->init.grow_std = std;
}

static void sp_free_buffers(struct sp_linear *S)
{
    free(S->xT);
    free(S->yT);
    free(S->dyT);
    free(S->dxT);
    free(S->db_part);
    free(S->dw_part);
    S->xT = S->yT = S->dyT = S->dxT = S->db_part = S->dw_part = NULL;
    S->xTp = S->dyTp = NULL;
    S->ld_max = 0;
    S->dw_part_cap = 0;
    S->dw_part_chunks = 0;
    S->xT_valid = S->dyT_valid = false;
    /* panels lent to neighbours are gone */
    S->y_out = NULL;
    S->y_pending = false;
    S->fwd_gen++;
    S->bwd_gen++;
    S->x_src = S->dy_src = NULL;
    S->dy_for = NULL;
}

static void sp_release(struct sp_linear *S)
{
    sp_free_buffers(S);
    sp_free_csc(S);
    for (size_t i = 0; i < S->base.n_params; i++)
        dsnn_param_block_release(&S->base.params[i]);
    free(S->row_ptr);
    free(S->col);
    free(S->col_ptr);
    S->row_ptr = S->col_ptr = NULL;
    S->col = NULL;
    S->nnz = S->cap = 0;
    S->base.params = NULL;
    S->base.n_params = 0;
}

double dsnn_sparse_init_density(const struct dsnn_sparse_init *init, int n_in, int n_out)
{
    double d = init->epsilon > 0 ? dsnn_sparse_er_density(n_in, n_out, init->epsilon)
                                 : init->density;
    return d < 0 ? 0 : d > 1 ? 1 : d;
}

/* Allocates the weight block for cap connections (values uninitialised, grads zero). */
static enum dsnn_status sp_alloc_blocks(struct sp_linear *S, size_t cap,
                                        struct dsnn_error *err)
{
    struct dsnn_param_block *w = &S->own[0];
    memset(w, 0, sizeof *w);
    S->base.params = S->own;
    S->base.n_params = 1;
    snprintf(w->name, sizeof w->name, "weight");
    if (cap < 1)
        cap = 1;
    w->value = malloc(cap * sizeof(float));
    w->grad = calloc(cap, sizeof(float));
    w->capacity = cap;
    S->cap = cap;
    if (!w->value || !w->grad)
        return dsnn_error_set(err, DSNN_ERR_NOMEM, "layer '%s': cannot allocate %zu connections",
                              S->base.name, cap);
    if (S->bias && dsnn_param_block_alloc(&S->own[1], "bias", (size_t)S->n_out) != DSNN_OK)
        return dsnn_error_set(err, DSNN_ERR_NOMEM, "out of memory");
    S->base.n_params = S->bias ? 2 : 1;
    return DSNN_OK;
}

static enum dsnn_status sp_init(struct dsnn_layer *l, struct dsnn_rng *rng,
                                struct dsnn_error *err)
{
    struct sp_linear *S = sp_cast(l);
    sp_release(S);
    S->density = dsnn_sparse_init_density(&S->init, S->n_in, S->n_out);
    if (S->density * (double)S->n_in * (double)S->n_out > 0.999 * (double)UINT32_MAX)
        return dsnn_error_set(err, DSNN_ERR_INVALID,
                              "layer '%s': %d x %d at density %g exceeds the limit of 2^32 - 1 "
                              "connections",
                              l->name, S->n_out, S->n_in, S->density);
    S->row_ptr = malloc(sizeof(int64_t) * ((size_t)S->n_out + 1));
    if (!S->row_ptr)
        return dsnn_error_set(err, DSNN_ERR_NOMEM, "out of memory");
    size_t nnz = 0;
    int32_t *col = NULL;
    enum dsnn_status st = sp_sample_topology(S->n_in, S->n_out, S->density, S->init.mask,
                                                  rng, S->row_ptr, &col, &nnz, err);
    if (st != DSNN_OK) {
        sp_release(S);
        return dsnn_error_prefix(err, "layer '%s'", l->name);
    }
    if (nnz > UINT32_MAX) {
        free(col);
        sp_release(S);
        return dsnn_error_set(err, DSNN_ERR_INVALID,
                              "layer '%s': %zu connections exceed the limit of 2^32 - 1", l->name,
                              nnz);
    }
    if ((st = sp_alloc_blocks(S, nnz, err)) != DSNN_OK) {
        free(col);
        sp_release(S);
        return st;
    }
    if (nnz == 0) {
        free(col);
        col = malloc(sizeof *col);
    } else {
        int32_t *c = realloc(col, S->cap * sizeof *col);
        if (c)
            col = c;
    }
    if (!col) {
        sp_release(S);
        return dsnn_error_set(err, DSNN_ERR_NOMEM, "out of memory");
    }
    S->col = col;
    S->nnz = nnz;
    SP_WB(S).n = nnz;
    float *v = SP_WB(S).value;
    for (size_t k = 0; k < nnz; k++)
        v[k] = sp_init_value(S, rng);
    if (S->bias) /* PyTorch nn.Linear: U(-1/sqrt(fan_in), 1/sqrt(fan_in)), as the dense layer */
        for (int o = 0; o < S->n_out; o++)
            SP_BB(S).value[o] = dsnn_weight_init_draw(DSNN_INIT_KAIMING_UNIFORM,
                                                          sp_fan_in(S), S->n_out, 0, rng);
    S->stats = (struct dsnn_sparse_update_stats){0, 0};
    S->last_edit = 0;
    S->csc_valid = false;
    S->topo_gen++;
    l->initialized = true;
    return DSNN_OK;
}

static void sp_destroy(struct dsnn_layer *l)
{
    sp_release((struct sp_linear *)l);
    free(l);
}

/* ---- buffers ---- */

static int sp_chunks(int ld)
{
    return (ld + SP_CHUNK - 1) / SP_CHUNK;
}

/* Columns a panel of padded batch ld occupies (chunks are stored with stride SP_CHUNK). */
static size_t sp_panel_cols(int ld)
{
    return ld <= SP_CHUNK ? (size_t)ld : (size_t)sp_chunks(ld) * SP_CHUNK;
}

static enum dsnn_status sp_ensure_panels(struct sp_linear *S, int ld, bool need_dx)
{
    if (ld > S->ld_max) {
        sp_free_buffers(S);
        S->xT = sp_aligned((size_t)S->n_in * sp_panel_cols(ld));
        S->yT = sp_aligned((size_t)S->n_out * sp_panel_cols(ld));
        S->db_part = malloc(sizeof(float) * (size_t)S->n_out * (size_t)sp_chunks(ld));
        if (!S->xT || !S->yT || !S->db_part) {
            sp_free_buffers(S);
            return DSNN_ERR_NOMEM;
        }
        S->ld_max = ld;
    }
    if (need_dx && !S->dxT) {
        S->dxT = sp_aligned((size_t)S->n_in * sp_panel_cols(S->ld_max));
        if (!S->dxT)
            return DSNN_ERR_NOMEM;
    }
    return DSNN_OK;
}

static enum dsnn_status sp_ensure_dyT(struct sp_linear *S)
{
    if (!S->dyT)
        S->dyT = sp_aligned((size_t)S->n_out * sp_panel_cols(S->ld_max));
    return S->dyT ? DSNN_OK : DSNN_ERR_NOMEM;
}

/* ---- panel hand-off (see sparse/sparse_impl.h) ---- */

void sp_link_net(struct dsnn_layer *const *layers, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct sp_linear *S = sp_cast(layers[i]);
        if (!S)
            continue;
        S->prev = i > 0 ? sp_cast(layers[i - 1]) : NULL;
        S->next = i + 1 < n ? sp_cast(layers[i + 1]) : NULL;
    }
}

/* P's yT holds its forward output y for this batch. */
static bool sp_y_panel_is(const struct sp_linear *P, const float *y, int batch)
{
    return P && P->y_out && P->y_out == y && P->y_batch == batch;
}

/* xTp holds x of this batch (own panel, or a borrowed one that has not been rewritten). */
static bool sp_x_panel_valid(const struct sp_linear *S, const float *x, int batch)
{
    if (!S->xT_valid || !S->xTp || S->cache_x != x || S->cache_batch != batch)
        return false;
    return !S->x_src || (S->x_src == S->prev && S->x_src->fwd_gen == S->x_src_gen);
}

/* From now on panel xTp holds x of this batch: the layer's own xT (src NULL) or src->yT as src's
 * forward wrote it last. */
static void sp_keep_x_panel(struct sp_linear *S, const float *x, int batch, const float *xTp,
                            const struct sp_linear *src)
{
    S->cache_x = x;
    S->cache_batch = batch;
    S->xTp = xTp;
    S->x_src = src;
    S->x_src_gen = src ? src->fwd_gen : 0;
    S->xT_valid = true;
}

bool sp_grad_panels_valid(const struct sp_linear *S)
{
    if (!S->dyT_valid || !S->dyTp || !sp_x_panel_valid(S, S->cache_x, S->cache_batch))
        return false;
    return !S->dy_src || (S->dy_src == S->next && S->dy_src->bwd_gen == S->dy_src_gen);
}

static enum dsnn_status sp_ensure_dw_part(struct sp_linear *S, int chunks)
{
    if (chunks <= 1 || (S->dw_part_chunks >= chunks - 1 && S->dw_part_cap >= S->cap))
        return DSNN_OK;
    free(S->dw_part);
    S->dw_part = malloc(sizeof(float) * S->cap * (size_t)(chunks - 1));
    if (!S->dw_part) {
        S->dw_part_cap = 0;
        S->dw_part_chunks = 0;
        return DSNN_ERR_NOMEM;
    }
    S->dw_part_cap = S->cap;
    S->dw_part_chunks = chunks - 1;
    return DSNN_OK;
}

enum dsnn_status dsnn_sparse_reserve(struct dsnn_layer *l, int max_batch, struct dsnn_error *err)
{
    struct sp_linear *S = sp_get(l);
    if (!S || max_batch <= 0)
        return dsnn_error_set(err, DSNN_ERR_INVALID,
                              "dsnn_sparse_reserve: not an initialised sparse layer or bad batch");
    int ld = sp_round_up(max_batch, SP_PAD);
    if (sp_ensure_panels(S, ld, true) != DSNN_OK || sp_ensure_dw_part(S, sp_chunks(ld)) != DSNN_OK)
        return dsnn_error_set(err, DSNN_ERR_NOMEM,
                              "layer '%s': cannot allocate buffers for batch %d", l->name,
                              max_batch);
    return DSNN_OK;
}

static enum dsnn_status sp_build_csc(struct sp_linear *S)
{
    if (!S->col_ptr)
        S->col_ptr = malloc(sizeof(int64_t) * ((size_t)S->n_in + 1));
    if (!S->csc_row)
        S->csc_row = malloc(sizeof(int32_t) * S->cap);
    if (!S->csc_k)
        S->csc_k = malloc(sizeof(uint32_t) * S->cap);
    if (!S->csc_val)
        S->csc_val = malloc(sizeof(float) * S->cap);
    int64_t *next = malloc(sizeof(int64_t) * ((size_t)S->n_in + 1));
    if (!S->col_ptr || !S->csc_row || !S->csc_k || !S->csc_val || !next) {
        free(next);
        return DSNN_ERR_NOMEM;
    }
    int64_t *cp = S->col_ptr;
    memset(cp, 0, sizeof(int64_t) * ((size_t)S->n_in + 1));
    const size_t nnz = S->nnz;
    for (size_t k = 0; k < nnz; k++)
        cp[S->col[k] + 1]++;
    for (int i = 0; i < S->n_in; i++)
        cp[i + 1] += cp[i];
    memcpy(next, cp, sizeof(int64_t) * (size_t)S->n_in);
    for (int r = 0; r < S->n_out; r++)
        for (int64_t k = S->row_ptr[r]; k < S->row_ptr[r + 1]; k++) {
            int64_t p = next[S->col[k]]++;
            S->csc_row[p] = r;
            S->csc_k[p] = (uint32_t)k;
        }
    free(next);
    S->csc_valid = true;
    S->csc_val_valid = false;
    return DSNN_OK;
}

/* csc_val[p] = value[csc_k[p]] for p in [p0, p1). */
static void sp_gather_csc(struct sp_linear *S, size_t p0, size_t p1)
{
    const float *v = SP_WB(S).value;
    const uint32_t *ck = S->csc_k;
    float *cv = S->csc_val;
    for (size_t p = p0; p < p1; p++)
        cv[p] = v[ck[p]];
}

/* ---- work decomposition ---- */

/* Rows [*r0, *r1) of part p of R, balancing connections + rows (ptr[r] + r is increasing). */
static void sp_row_part(const int64_t *ptr, int n, int R, int p, int *r0, int *r1)
{
    if (R <= 1) {
        *r0 = 0;
        *r1 = n;
        return;
    }
    const double total = (double)(ptr[n] + n);
    int bounds[2];
    for (int e = 0; e < 2; e++) {
        int q = p + e;
        if (q == 0) {
            bounds[e] = 0;
            continue;
        }
        if (q == R) {
            bounds[e] = n;
            continue;
        }
        const double target = total * q / R;
        int lo = 0, hi = n; /* first r with ptr[r] + r >= target */
        while (lo < hi) {
            int mid = lo + (hi - lo) / 2;
            if ((double)(ptr[mid] + mid) >= target)
                hi = mid;
            else
                lo = mid + 1;
        }
        bounds[e] = lo;
    }
    *r0 = bounds[0];
    *r1 = bounds[1];
}

/* Features [*i0, *i1) of part p of R, in multiples of 8. */
static void sp_feat_part(int n, int R, int p, int *i0, int *i1)
{
    int64_t a, b;
    dsnn_part_range(n, p, R, 8, &a, &b);
    *i0 = (int)a;
    *i1 = (int)b;
}

struct sp_plan {
    int ld, chunks, cs, parts, items, threads;
};

static struct sp_plan sp_make_plan(int batch)
{
    struct sp_plan P;
    P.ld = sp_round_up(batch, SP_PAD);
    P.chunks = sp_chunks(P.ld);
    P.cs = P.ld < SP_CHUNK ? P.ld : SP_CHUNK;
    P.threads = sp_threads();
    P.parts = P.threads / sp_gcd(P.chunks, P.threads);
    if (P.parts < 1)
        P.parts = 1;
    P.items = P.chunks * P.parts;
    return P;
}

/* Loops over this thread's work items: chunk c (samples [j0, j1), width w), row part p. */
#define SP_ITEMS_BEGIN(P)                                                                         \
    for (int it_ = it0; it_ < it1; it_++) {                                                       \
        const int c = it_ / (P).parts, p = it_ % (P).parts;                                       \
        const int j0 = c * (P).cs;                                                                \
        const int j1 = j0 + (P).cs < (P).ld ? j0 + (P).cs : (P).ld;                               \
        const int w = j1 - j0;                                                                    \
        (void)w;
#define SP_ITEMS_END }

/* Barrier between the phases of a pass (inside its parallel region) when the threads share
 * chunks, i.e. a chunk is cut into row parts (an orphaned barrier: it binds to that region). */
static inline void sp_parts_barrier(const struct sp_plan *P)
{
    if (P->parts > 1) {
#pragma omp barrier
    }
}

/* This thread's items [it0, it1) of a panel of n features from sample-major src [batch][n]
 * (zero where mask <= 0 when mask, a ReLU derivative of the same shape). */
static void sp_items_in(const struct sp_plan *P, int it0, int it1, const float *src,
                        const float *mask, int n, int batch, float *panel)
{
    const size_t cs = (size_t)P->cs;
    SP_ITEMS_BEGIN(*P)
    int i0, i1;
    sp_feat_part(n, P->parts, p, &i0, &i1);
    if (mask)
        dsnn_sp_transpose_in_relu(src, mask, n, batch, panel + (size_t)c * n * cs, cs, i0, i1, j0,
                                  j1);
    else
        dsnn_sp_transpose_in(src, n, batch, panel + (size_t)c * n * cs, cs, i0, i1, j0, j1);
    SP_ITEMS_END
}

/* This thread's items [it0, it1) of sample-major dst [batch][n] from a panel of n features. */
static void sp_items_out(const struct sp_plan *P, int it0, int it1, const float *panel, int n,
                         int batch, float *dst)
{
    const size_t cs = (size_t)P->cs;
    SP_ITEMS_BEGIN(*P)
    int i0, i1;
    sp_feat_part(n, P->parts, p, &i0, &i1);
    dsnn_sp_transpose_out(panel + (size_t)c * n * cs, cs, n, dst, batch, i0, i1, j0, j1);
    SP_ITEMS_END
}

void sp_materialize(struct dsnn_layer *l)
{
    struct sp_linear *S = sp_cast(l);
    if (!S || !S->y_pending || !S->y_out)
        return;
    const struct sp_plan P = sp_make_plan(S->y_batch);
#pragma omp parallel num_threads(P.threads) if (P.threads > 1)
    {
        const int t = omp_get_thread_num(), nt = omp_get_num_threads();
        sp_items_out(&P, P.items * t / nt, P.items * (t + 1) / nt, S->yT, S->n_out, S->y_batch,
                     S->y_out);
    }
    S->y_pending = false;
}

/* ---- forward / backward ---- */

static enum dsnn_status sp_forward(struct dsnn_layer *l, const float *x, float *y, int batch,
                                   bool train, struct dsnn_error *err)
{
    struct sp_linear *S = sp_get(l);
    if (!S || batch <= 0)
        return dsnn_error_set(err, DSNN_ERR_INVALID, "layer '%s': not a sparse_linear layer, or batch %d <= 0", l ? l->name : "?", batch);
    const struct sp_plan P = sp_make_plan(batch);
    /* y_out is cleared first: if the buffers move, no neighbour keeps a stale borrow */
    S->y_out = NULL;
    S->y_pending = false;
    S->fwd_gen++;
    if (sp_ensure_panels(S, P.ld, false) != DSNN_OK)
        return dsnn_error_set(err, DSNN_ERR_NOMEM, "layer '%s': out of memory in forward", l->name);
    const size_t cs = (size_t)P.cs;
    const int n_in = S->n_in, n_out = S->n_out;
    const int64_t *rp = S->row_ptr;
    const int32_t *col = S->col;
    const float *val = SP_WB(S).value;
    const float *bias = S->bias ? SP_BB(S).value : NULL;
    /* the predecessor's output panel is this layer's x panel when x is its output */
    const struct sp_linear *Pv = S->prev;
    const bool borrow = sp_y_panel_is(Pv, x, batch);
    if (!borrow && Pv && Pv->y_out == x)
        sp_materialize(&S->prev->base);
    /* the sample-major y is written on demand when a sparse successor reads the panel */
    const bool defer_y = S->next != NULL;
    float *xT = S->xT, *yT = S->yT;
    const float *xTp = borrow ? Pv->yT : xT;
    const bool relu = S->act == DSNN_SPARSE_ACT_RELU;
    S->xT_valid = S->dyT_valid = false;
    /* A training forward also gathers the values in CSC order for the input gradient of the
     * backward that follows (the values do not change in between). */
    const bool gather = train && S->want_dx && (S->csc_valid || sp_build_csc(S) == DSNN_OK);
    S->csc_val_valid = false;
#pragma omp parallel num_threads(P.threads) if (P.threads > 1)
    {
        const int t = omp_get_thread_num(), nt = omp_get_num_threads();
        const int it0 = P.items * t / nt, it1 = P.items * (t + 1) / nt;
        if (gather)
            sp_gather_csc(S, S->nnz * (size_t)t / (size_t)nt,
                          S->nnz * (size_t)(t + 1) / (size_t)nt);
        if (!borrow) {
            sp_items_in(&P, it0, it1, x, NULL, n_in, batch, xT);
            sp_parts_barrier(&P);
        }
        SP_ITEMS_BEGIN(P)
        int r0, r1;
        sp_row_part(rp, n_out, P.parts, p, &r0, &r1);
        dsnn_sp_spmm(rp, col, val, NULL, bias, xTp + (size_t)c * n_in * cs, cs,
                     yT + (size_t)c * n_out * cs, r0, r1, w, relu, NULL);
        SP_ITEMS_END
        if (!defer_y) {
            sp_parts_barrier(&P);
            sp_items_out(&P, it0, it1, yT, n_out, batch, y);
        }
    }
    sp_keep_x_panel(S, x, batch, xTp, borrow ? Pv : NULL);
    S->csc_val_valid = gather;
    S->y_out = y;
    S->y_batch = batch;
    S->y_pending = defer_y;
    return DSNN_OK;
}

static enum dsnn_status sp_backward(struct dsnn_layer *l, const float *x, const float *y,
                                    const float *dy, float *dx, int batch, struct dsnn_error *err)
{
    struct sp_linear *S = sp_get(l);
    const bool relu = S && S->act == DSNN_SPARSE_ACT_RELU;
    if (!S || batch <= 0)
        return dsnn_error_set(err, DSNN_ERR_INVALID, "layer '%s': backward called with a batch larger than the buffers or without its forward state (batch %d)", l->name, batch);
    const struct sp_plan P = sp_make_plan(batch);
    /* dy as a panel handed over by the successor's backward (already ReLU-masked) */
    const struct sp_linear *Nx = S->next;
    const bool dy_panel = Nx && S->dy_for == dy && S->dy_for_batch == batch &&
                          Nx->bwd_gen == S->dy_for_gen;
    S->dy_for = NULL;
    if (relu && !y && !dy_panel)
        return dsnn_error_set(err, DSNN_ERR_INVALID, "layer '%s': backward called with a batch larger than the buffers or without its forward state (batch %d)", l->name, batch);
    S->bwd_gen++; /* dxT is rewritten */
    if (sp_ensure_panels(S, P.ld, dx != NULL) != DSNN_OK ||
        sp_ensure_dw_part(S, P.chunks) != DSNN_OK || (!dy_panel && sp_ensure_dyT(S) != DSNN_OK))
        return dsnn_error_set(err, DSNN_ERR_NOMEM, "layer '%s': out of memory in backward", l->name);
    S->want_dx = dx != NULL;
    if (dx && !S->csc_valid && sp_build_csc(S) != DSNN_OK)
        return dsnn_error_set(err, DSNN_ERR_NOMEM, "layer '%s': out of memory in backward", l->name);
    if (dx && !S->csc_val_valid) {
        sp_gather_csc(S, 0, S->nnz);
        S->csc_val_valid = true;
    }
    const bool need_x = !sp_x_panel_valid(S, x, batch);
    if (relu && !dy_panel && y == S->y_out)
        sp_materialize(l); /* the ReLU mask is read from y */
    if (need_x && S->prev && S->prev->y_out == x)
        sp_materialize(&S->prev->base);
    /* dx as a panel for the predecessor when x is its output: masked by its ReLU here, and the
     * sample-major dx is not written (the net passes it to the predecessor only) */
    struct sp_linear *Pv = S->prev;
    const bool give = dx && sp_y_panel_is(Pv, x, batch);
    const float *mask = give && Pv->act == DSNN_SPARSE_ACT_RELU ? Pv->yT : NULL;
    const size_t cs = (size_t)P.cs;
    const int n_in = S->n_in, n_out = S->n_out;
    const int64_t *rp = S->row_ptr, *cp = S->col_ptr;
    const int32_t *col = S->col, *crow = S->csc_row;
    const float *cval = S->csc_val;
    float *grad = SP_WB(S).grad;
    float *dbias = S->bias ? SP_BB(S).grad : NULL;
    float *xT = S->xT, *dxT = S->dxT, *dwp = S->dw_part, *dbp = S->db_part;
    float *dyT_own = S->dyT;
    const float *dyT = dy_panel ? Nx->dxT : dyT_own;
    const float *xTp = need_x ? xT : S->xTp;
    const size_t dwcap = S->dw_part_cap, nnz = S->nnz;
    S->dyT_valid = false;
#pragma omp parallel num_threads(P.threads) if (P.threads > 1)
    {
        const int t = omp_get_thread_num(), nt = omp_get_num_threads();
        const int it0 = P.items * t / nt, it1 = P.items * (t + 1) / nt;
        if (!dy_panel || need_x) {
            if (!dy_panel) /* dL/d(pre-activation) = dy where y > 0 with the ReLU */
                sp_items_in(&P, it0, it1, dy, relu ? y : NULL, n_out, batch, dyT_own);
            if (need_x)
                sp_items_in(&P, it0, it1, x, NULL, n_in, batch, xT);
            sp_parts_barrier(&P);
        }
        SP_ITEMS_BEGIN(P)
        int r0, r1;
        sp_row_part(rp, n_out, P.parts, p, &r0, &r1);
        float *out = c == 0 ? grad : dwp + (size_t)(c - 1) * dwcap;
        float *db = dbias ? (c == 0 ? dbias : dbp + (size_t)(c - 1) * n_out) : NULL;
        const float *dyc = dyT + (size_t)c * n_out * cs;
        dsnn_sp_sddmm(rp, col, dyc, xTp + (size_t)c * n_in * cs, cs, out, db, r0, r1, w);
        if (dx) {
            sp_row_part(cp, n_in, P.parts, p, &r0, &r1);
            dsnn_sp_spmm(cp, crow, cval, NULL, NULL, dyc, cs, dxT + (size_t)c * n_in * cs, r0,
                         r1, w, false, mask ? mask + (size_t)c * n_in * cs : NULL);
        }
        SP_ITEMS_END
        if (dx && !give) {
            sp_parts_barrier(&P);
            sp_items_out(&P, it0, it1, dxT, n_in, batch, dx);
        }
        if (P.chunks > 1) {
#pragma omp barrier
            /* in chunk order for every k (results independent of the thread count) */
            const size_t k0 = nnz * (size_t)t / (size_t)nt, k1 = nnz * (size_t)(t + 1) / (size_t)nt;
            for (int c = 1; c < P.chunks; c++) {
                const float *restrict src = dwp + (size_t)(c - 1) * dwcap;
                float *restrict dst = grad;
                for (size_t k = k0; k < k1; k++)
                    dst[k] += src[k];
            }
            if (dbias) {
#pragma omp for schedule(static) nowait
                for (int o = 0; o < n_out; o++) {
                    float s = dbias[o];
                    for (int c = 1; c < P.chunks; c++)
                        s += dbp[(size_t)(c - 1) * n_out + o];
                    dbias[o] = s;
                }
            }
        }
    }
    if (need_x) /* otherwise the panel already holds x */
        sp_keep_x_panel(S, x, batch, xT, NULL);
    S->dyTp = dyT;
    S->dy_src = dy_panel ? Nx : NULL;
    S->dy_src_gen = dy_panel ? Nx->bwd_gen : 0;
    S->dyT_valid = true;
    if (give) {
        Pv->dy_for = dx;
        Pv->dy_for_batch = batch;
        Pv->dy_for_gen = S->bwd_gen;
    }
    return DSNN_OK;
}

void sp_set_ext_grad(struct dsnn_layer *l, const float *g)
{
    struct sp_linear *S = sp_get(l);
    if (S) {
        S->ext_owned = true;
        S->ext_grad = g;
    }
}

bool sp_dense_grad_valid(const struct sp_linear *S)
{
    return S->ext_owned ? S->ext_grad != NULL : sp_grad_panels_valid(S);
}

enum dsnn_status dsnn_sparse_dense_grad_rows(struct dsnn_layer *l, int row0, int row1, float *out,
                                             struct dsnn_error *err)
{
    struct sp_linear *S = sp_get(l);
    if (!S)
        return dsnn_error_set(err, DSNN_ERR_INVALID, "not an initialised sparse linear layer");
    if (row0 < 0 || row1 > S->n_out || row0 > row1)
        return dsnn_error_set(err, DSNN_ERR_INVALID, "layer '%s': rows [%d, %d) outside [0, %d)",
                              l->name, row0, row1, S->n_out);
    if (S->ext_owned) {
        if (!S->ext_grad)
            return dsnn_error_set(err, DSNN_ERR_INVALID,
                                  "layer '%s': the dense gradient of a sparse convolution is kept "
                                  "only for a backward run with keep_dense_grad on "
                                  "(dsnn_sparse_conv2d_keep_dense_grad), until the next forward",
                                  l->name);
        if (row1 > row0)
            memcpy(out, S->ext_grad + (size_t)row0 * S->n_in,
                   sizeof(float) * (size_t)(row1 - row0) * S->n_in);
        return DSNN_OK;
    }
    if (!sp_grad_panels_valid(S))
        return dsnn_error_set(err, DSNN_ERR_INVALID,
                              "layer '%s': the dense gradient is available between a backward "
                              "and the next forward only",
                              l->name);
    if (row1 == row0)
        return DSNN_OK;
    /* dW = sum over chunks of dyT_c xT_c^T (padding columns are zero) */
    const struct sp_plan P = sp_make_plan(S->cache_batch);
    for (int c = 0; c < P.chunks; c++) {
        const int w = c + 1 < P.chunks ? P.cs : P.ld - c * P.cs;
        ly_sgemm(false, true, row1 - row0, S->n_in, w, 1.0f,
                   S->dyTp + ((size_t)c * S->n_out + (size_t)row0) * P.cs, P.cs,
                   S->xTp + (size_t)c * S->n_in * P.cs, P.cs, c ? 1.0f : 0.0f, out, S->n_in);
    }
    return DSNN_OK;
}

/* ---- accessors ---- */

size_t dsnn_sparse_nnz(const struct dsnn_layer *l)
{
    const struct sp_linear *S = sp_get(l);
    return S ? S->nnz : 0;
}

double dsnn_sparse_density(const struct dsnn_layer *l)
{
    const struct sp_linear *S = sp_get(l);
    return S ? (double)S->nnz / ((double)S->n_in * (double)S->n_out) : 0.0;
}

size_t dsnn_sparse_capacity(const struct dsnn_layer *l)
{
    const struct sp_linear *S = sp_get(l);
    return S ? (size_t)S->n_in * (size_t)S->n_out : 0;
}

struct dsnn_param_block *dsnn_sparse_weight(struct dsnn_layer *l)
{
    struct sp_linear *S = sp_get(l);
    return S ? &SP_WB(S) : NULL;
}

struct dsnn_param_block *dsnn_sparse_bias(struct dsnn_layer *l)
{
    struct sp_linear *S = sp_get(l);
    return S && S->bias ? &SP_BB(S) : NULL;
}

bool dsnn_sparse_get_csr(struct dsnn_layer *l, struct dsnn_sparse_csr *out)
{
    struct sp_linear *S = sp_get(l);
    if (!S)
        return false;
    out->n_out = S->n_out;
    out->n_in = S->n_in;
    out->nnz = S->nnz;
    out->row_ptr = S->row_ptr;
    out->col = S->col;
    out->value = SP_WB(S).value;
    out->grad = SP_WB(S).grad;
    return true;
}

void dsnn_sparse_foreach(const struct dsnn_layer *l, dsnn_sparse_visit_fn fn, void *user)
{
    const struct sp_linear *S = sp_get(l);
    if (!S || !fn)
        return;
    for (int r = 0; r < S->n_out; r++)
        for (int64_t k = S->row_ptr[r]; k < S->row_ptr[r + 1]; k++)
            fn(user, r, S->col[k], (size_t)k, SP_WB(S).value[k]);
}

int64_t dsnn_sparse_find(const struct dsnn_layer *l, int row, int col)
{
    const struct sp_linear *S = sp_get(l);
    if (!S || row < 0 || row >= S->n_out || col < 0 || col >= S->n_in)
        return -1;
    return sp_find(S, row, col);
}

int64_t sp_find(const struct sp_linear *S, int row, int col)
{
    int64_t lo = S->row_ptr[row], hi = S->row_ptr[row + 1];
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (S->col[mid] < col)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < S->row_ptr[row + 1] && S->col[lo] == col ? lo : -1;
}

struct dsnn_sparse_update_stats dsnn_sparse_last_update(const struct dsnn_layer *l)
{
    const struct sp_linear *S = sp_get(l);
    return S ? S->stats : (struct dsnn_sparse_update_stats){0, 0};
}

enum dsnn_status dsnn_sparse_check(const struct dsnn_layer *l, struct dsnn_error *err)
{
    const struct sp_linear *S = sp_get(l);
    if (!S)
        return dsnn_error_set(err, DSNN_ERR_INVALID, "not an initialised sparse linear layer");
    if (S->row_ptr[0] != 0 || (size_t)S->row_ptr[S->n_out] != S->nnz)
        return dsnn_error_set(err, DSNN_ERR_INTERNAL, "layer '%s': row_ptr ends %lld, nnz %zu",
                              l->name, (long long)S->row_ptr[S->n_out], S->nnz);
    if (SP_WB(S).n != S->nnz || SP_WB(S).capacity != S->cap || S->cap < S->nnz)
        return dsnn_error_set(err, DSNN_ERR_INTERNAL,
                              "layer '%s': weight block n %zu cap %zu, nnz %zu cap %zu", l->name,
                              SP_WB(S).n, SP_WB(S).capacity, S->nnz, S->cap);
    for (int r = 0; r < S->n_out; r++) {
        if (S->row_ptr[r + 1] < S->row_ptr[r])
            return dsnn_error_set(err, DSNN_ERR_INTERNAL, "layer '%s': row_ptr decreases at %d",
                                  l->name, r);
        for (int64_t k = S->row_ptr[r]; k < S->row_ptr[r + 1]; k++) {
            if (S->col[k] < 0 || S->col[k] >= S->n_in)
                return dsnn_error_set(err, DSNN_ERR_INTERNAL,
                                      "layer '%s': column %d out of range in row %d", l->name,
                                      S->col[k], r);
            if (k > S->row_ptr[r] && S->col[k] <= S->col[k - 1])
                return dsnn_error_set(err, DSNN_ERR_INTERNAL,
                                      "layer '%s': row %d columns not strictly increasing at %lld",
                                      l->name, r, (long long)k);
        }
    }
    return DSNN_OK;
}

/* ---- checkpoint ---- */

#define SP_CKPT_VERSION 1

static enum dsnn_status sp_write_block(FILE *f, const struct dsnn_param_block *b,
                                       struct dsnn_error *err)
{
    uint64_t mask = 0;
    for (int s = 0; s < DSNN_OPT_STATE_MAX; s++)
        if (b->state[s])
            mask |= 1u << s;
    enum dsnn_status st;
    if ((st = dsnn_io_write_u64(f, b->n, "block size", err)) ||
        (st = dsnn_io_write(f, b->value, b->n * sizeof(float), "values", err)) ||
        (st = dsnn_io_write(f, b->grad, b->n * sizeof(float), "gradients", err)) ||
        (st = dsnn_io_write_u64(f, mask, "state mask", err)))
        return st;
    for (int s = 0; s < DSNN_OPT_STATE_MAX; s++)
        if (b->state[s] && (st = dsnn_io_write(f, b->state[s], b->n * sizeof(float),
                                               "optimizer state", err)))
            return st;
    return DSNN_OK;
}

static enum dsnn_status sp_read_block(FILE *f, struct dsnn_param_block *b, struct dsnn_error *err)
{
    uint64_t n, mask;
    enum dsnn_status st;
    if ((st = dsnn_io_read_u64(f, &n, "block size", err)))
        return st;
    if (n != b->n)
        return dsnn_error_set(err, DSNN_ERR_FORMAT, "block '%s': checkpoint has %llu values, "
                              "expected %zu", b->name, (unsigned long long)n, b->n);
    if ((st = dsnn_io_read(f, b->value, b->n * sizeof(float), "values", err)) ||
        (st = dsnn_io_read(f, b->grad, b->n * sizeof(float), "gradients", err)) ||
        (st = dsnn_io_read_u64(f, &mask, "state mask", err)))
        return st;
    for (int s = 0; s < DSNN_OPT_STATE_MAX; s++) {
        if (mask & (1u << s)) {
            float *p = dsnn_param_block_state(b, s);
            if (!p)
                return dsnn_error_set(err, DSNN_ERR_NOMEM, "out of memory");
            if ((st = dsnn_io_read(f, p, b->n * sizeof(float), "optimizer state", err)))
                return st;
        } else if (b->state[s]) {
            memset(b->state[s], 0, b->capacity * sizeof(float));
        }
    }
    return DSNN_OK;
}

static enum dsnn_status sp_save(struct dsnn_layer *l, FILE *f, struct dsnn_error *err)
{
    struct sp_linear *S = sp_get(l);
    if (!S)
        return dsnn_error_set(err, DSNN_ERR_INVALID, "layer '%s': save before init", l->name);
    enum dsnn_status st;
    double d[2] = {S->density, S->init.grow_std};
    if ((st = dsnn_io_write(f, "SPLN", 4, "sparse layer tag", err)) ||
        (st = dsnn_io_write_u64(f, SP_CKPT_VERSION, "sparse layer version", err)) ||
        (st = dsnn_io_write_u64(f, (uint64_t)S->n_in, "n_in", err)) ||
        (st = dsnn_io_write_u64(f, (uint64_t)S->n_out, "n_out", err)) ||
        (st = dsnn_io_write_u64(f, S->bias, "bias flag", err)) ||
        (st = dsnn_io_write_u64(f, S->nnz, "nnz", err)) ||
        (st = dsnn_io_write(f, S->row_ptr, sizeof(int64_t) * ((size_t)S->n_out + 1), "row_ptr",
                            err)) ||
        (st = dsnn_io_write(f, S->col, sizeof(int32_t) * S->nnz, "columns", err)) ||
        (st = sp_write_block(f, &SP_WB(S), err)) ||
        (S->bias && (st = sp_write_block(f, &SP_BB(S), err))) ||
        (st = dsnn_io_write(f, d, sizeof d, "density", err)) ||
        (st = dsnn_io_write_u64(f, (uint64_t)S->init.grow_init, "grow init", err)) ||
        (st = dsnn_io_write_u64(f, S->stats.pruned, "pruned", err)) ||
        (st = dsnn_io_write_u64(f, S->stats.grown, "grown", err)) ||
        (st = dsnn_io_write_u64(f, (uint64_t)S->last_edit, "last edit", err)))
        return st;
    return DSNN_OK;
}

static enum dsnn_status sp_load(struct dsnn_layer *l, FILE *f, struct dsnn_error *err)
{
    struct sp_linear *S = sp_cast(l);
    enum dsnn_status st;
    uint64_t ver, n_in, n_out, bias, nnz;
    if ((st = dsnn_io_expect_tag(f, "SPLN", err)) ||
        (st = dsnn_io_read_u64(f, &ver, "sparse layer version", err)) ||
        (st = dsnn_io_read_u64(f, &n_in, "n_in", err)) ||
        (st = dsnn_io_read_u64(f, &n_out, "n_out", err)) ||
        (st = dsnn_io_read_u64(f, &bias, "bias flag", err)) ||
        (st = dsnn_io_read_u64(f, &nnz, "nnz", err)))
        return st;
    if (ver != SP_CKPT_VERSION)
        return dsnn_error_set(err, DSNN_ERR_FORMAT,
                              "sparse layer checkpoint version %llu, this build reads %d",
                              (unsigned long long)ver, SP_CKPT_VERSION);
    if (n_in != (uint64_t)S->n_in || n_out != (uint64_t)S->n_out || (bias != 0) != S->bias)
        return dsnn_error_set(err, DSNN_ERR_FORMAT,
                              "checkpoint layer is %llu -> %llu (bias %d), this layer %d -> %d "
                              "(bias %d)",
                              (unsigned long long)n_in, (unsigned long long)n_out, (int)bias,
                              S->n_in, S->n_out, (int)S->bias);
    if (nnz > n_in * n_out || nnz > UINT32_MAX)
        return dsnn_error_set(err, DSNN_ERR_FORMAT, "checkpoint has an impossible nnz %llu",
                              (unsigned long long)nnz);
    if (!S->row_ptr) { /* not initialised: allocate an empty layer */
        S->row_ptr = calloc((size_t)S->n_out + 1, sizeof(int64_t));
        S->col = malloc(sizeof(int32_t));
        if (!S->row_ptr || !S->col || (st = sp_alloc_blocks(S, 1, err)) != DSNN_OK) {
            sp_release(S);
            return dsnn_error_set(err, DSNN_ERR_NOMEM, "out of memory");
        }
        S->density = dsnn_sparse_init_density(&S->init, S->n_in, S->n_out);
        l->initialized = true;
    }
    if ((st = sp_reserve_nnz(S, (size_t)nnz, err)))
        return st;
    /* Read the topology into the layer; on a format error the layer is left empty. */
    S->nnz = (size_t)nnz;
    SP_WB(S).n = S->nnz;
    S->csc_valid = false;
    S->csc_val_valid = false;
    S->topo_gen++;
    S->xT_valid = S->dyT_valid = false;
    if ((st = dsnn_io_read(f, S->row_ptr, sizeof(int64_t) * ((size_t)S->n_out + 1), "row_ptr",
                           err)) ||
        (st = dsnn_io_read(f, S->col, sizeof(int32_t) * S->nnz, "columns", err)))
        goto bad;
    if ((st = dsnn_sparse_check(l, err)) != DSNN_OK) {
        st = dsnn_error_set(err, DSNN_ERR_FORMAT, "corrupt sparse topology in checkpoint");
        goto bad;
    }
    double d[2];
    uint64_t grow_init, pruned, grown, last_edit;
    if ((st = sp_read_block(f, &SP_WB(S), err)) ||
        (S->bias && (st = sp_read_block(f, &SP_BB(S), err))) ||
        (st = dsnn_io_read(f, d, sizeof d, "density", err)) ||
        (st = dsnn_io_read_u64(f, &grow_init, "grow init", err)) ||
        (st = dsnn_io_read_u64(f, &pruned, "pruned", err)) ||
        (st = dsnn_io_read_u64(f, &grown, "grown", err)) ||
        (st = dsnn_io_read_u64(f, &last_edit, "last edit", err)))
        goto bad;
    if (grow_init > DSNN_SPARSE_GROW_LIKE_INIT || last_edit > 2) {
        st = dsnn_error_set(err, DSNN_ERR_FORMAT, "corrupt sparse layer settings in checkpoint");
        goto bad;
    }
    S->density = d[0];
    S->init.grow_std = d[1];
    S->init.grow_init = (enum dsnn_sparse_grow_init)grow_init;
    S->stats.pruned = (size_t)pruned;
    S->stats.grown = (size_t)grown;
    S->last_edit = (int)last_edit;
    return DSNN_OK;
bad:
    memset(S->row_ptr, 0, sizeof(int64_t) * ((size_t)S->n_out + 1));
    S->nnz = 0;
    SP_WB(S).n = 0;
    return st;
}

static const struct dsnn_layer_ops sparse_linear_ops = {LY_OPS_FIELDS("sparse_linear", sp)};
