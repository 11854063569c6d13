/* layers/residual.c - residual block y = relu?(inner(x) + shortcut(x)), a composite layer that owns a
 * chain of inner layers and an optional shortcut chain.
 *
 * Parameters: after the inner layers are initialised, their parameter blocks are moved into
 * one array (the block's params, which optimizers walk) and each inner layer's params pointer
 * is redirected to its slice of that array, so the moved blocks are the only ones that get
 * optimizer state slots, and the inner layers' own save / load (dsnn_layer_save_params reads
 * l->params) see them. Dense layers keep using the value / grad arrays through their own blocks
 * (shared, never reallocated); sparse layers ("sparse_linear", "sparse_conv2d") work on
 * l->params only, so their topology edits (which reallocate value, grad and state) happen in the
 * moved blocks. Before a re-init and on destroy the blocks move back and the params pointers are
 * restored, so each layer frees its own memory exactly once. */
#include "dsnn/io.h"
#include "dsnn/layers.h"
#include "layers/layers_impl.h"

#include <stdlib.h>
#include <string.h>

struct residual {
    struct dsnn_layer base;      /* first */
    struct dsnn_layer **layers;  /* inner [0, n_inner), then shortcut [n_inner, n) */
    size_t n_inner, n;
    bool relu;
    struct dsnn_param_block *blocks; /* all parameter blocks (base.params) */
    size_t n_blocks;
    struct dsnn_param_block **orig;  /* [n] each layer's own params pointer while bound */
    bool bound;
    float **act; /* [n] outputs, [cap][out size of the layer] */
    float *ds;   /* [cap][out size] gradient of the sum */
    float *g[2]; /* [cap][max_size] ping-pong gradients */
    int cap;
    size_t max_size;
};

static const struct dsnn_layer_ops residual_ops;

static struct residual *res_cast(const struct dsnn_layer *l)
{
    return l && l->ops == &residual_ops ? (struct residual *)l : NULL;
}

static bool shape_eq(struct dsnn_shape a, struct dsnn_shape b)
{
    return a.c == b.c && a.h == b.h && a.w == b.w;
}

/* Moves the parameter blocks back into the layers' own arrays and restores their params
 * pointers. The whole block moves (value, grad, size, capacity, state slots): a sparse layer may
 * have reallocated its arrays while bound. */
static void res_unbind(struct residual *R)
{
    if (!R->bound)
        return;
    size_t off = 0;
    for (size_t j = 0; j < R->n; j++) {
        struct dsnn_layer *l = R->layers[j];
        struct dsnn_param_block *own = R->orig[j];
        for (size_t i = 0; i < l->n_params; i++) {
            for (int s = 0; s < DSNN_OPT_STATE_MAX; s++)
                if (own[i].state[s] != R->blocks[off + i].state[s])
                    free(own[i].state[s]);
            own[i] = R->blocks[off + i];
        }
        off += l->n_params;
        l->params = own;
    }
    free(R->blocks);
    R->blocks = NULL;
    R->n_blocks = 0;
    R->base.params = NULL;
    R->base.n_params = 0;
    R->bound = false;
}

/* Moves every inner and shortcut parameter block into one array (the block's params) and points
 * each layer's params at its slice. Dense layers keep reading their value / grad arrays through
 * their own blocks (the arrays are shared and never reallocated); sparse layers reach all of
 * their block through l->params. */
static enum dsnn_status res_bind(struct residual *R, struct dsnn_error *err)
{
    size_t total = 0;
    for (size_t j = 0; j < R->n; j++)
        total += R->layers[j]->n_params;
    R->blocks = calloc(total ? total : 1, sizeof *R->blocks);
    if (!R->blocks)
        return dsnn_error_set(err, DSNN_ERR_NOMEM, "out of memory");
    size_t off = 0;
    for (size_t j = 0; j < R->n; j++) {
        struct dsnn_layer *l = R->layers[j];
        R->orig[j] = l->params;
        for (size_t i = 0; i < l->n_params; i++) {
            R->blocks[off + i] = l->params[i];
            /* the moved block owns the state slots from now on */
            for (int s = 0; s < DSNN_OPT_STATE_MAX; s++)
                l->params[i].state[s] = NULL;
        }
        if (l->n_params)
            l->params = &R->blocks[off];
        off += l->n_params;
    }
    R->n_blocks = total;
    R->base.params = total ? R->blocks : NULL;
    R->base.n_params = total;
    R->bound = true;
    return DSNN_OK;
}

static enum dsnn_status res_init(struct dsnn_layer *l, struct dsnn_rng *rng,
                                 struct dsnn_error *err)
{
    struct residual *R = res_cast(l);
    res_unbind(R);
    for (size_t j = 0; j < R->n; j++) {
        struct dsnn_layer *in = R->layers[j];
        if (!in->initialized && dsnn_layer_init(in, rng, err) != DSNN_OK)
            return dsnn_error_prefix(err, "layer '%s'", l->name);
    }
    return res_bind(R, err);
}

static enum dsnn_status res_reserve(struct residual *R, int batch)
{
    if (batch <= R->cap)
        return DSNN_OK;
    const size_t b = (size_t)batch;
    for (size_t j = 0; j < R->n; j++) {
        float *p = realloc(R->act[j],
                           sizeof(float) * b * (size_t)dsnn_shape_size(R->layers[j]->out));
        if (!p)
            return DSNN_ERR_NOMEM;
        R->act[j] = p;
    }
    float *p = realloc(R->ds, sizeof(float) * b * (size_t)dsnn_shape_size(R->base.out));
    if (!p)
        return DSNN_ERR_NOMEM;
    R->ds = p;
    for (int k = 0; k < 2; k++) {
        p = realloc(R->g[k], sizeof(float) * b * R->max_size);
        if (!p)
            return DSNN_ERR_NOMEM;
        R->g[k] = p;
    }
    R->cap = batch;
    return DSNN_OK;
}

static enum dsnn_status res_forward(struct dsnn_layer *l, const float *x, float *y, int batch,
                                    bool train, struct dsnn_error *err)
{
    struct residual *R = res_cast(l);
    enum dsnn_status st = res_reserve(R, batch);
    if (st != DSNN_OK)
        return st;
    const float *in = x;
    for (size_t j = 0; j < R->n_inner; j++) {
        struct dsnn_layer *c = R->layers[j];
        if ((st = c->ops->forward(c, in, R->act[j], batch, train, err)) != DSNN_OK)
            return st;
        in = R->act[j];
    }
    const float *res = in, *sc = x;
    for (size_t j = R->n_inner; j < R->n; j++) {
        struct dsnn_layer *c = R->layers[j];
        if ((st = c->ops->forward(c, sc, R->act[j], batch, train, err)) != DSNN_OK)
            return st;
        sc = R->act[j];
    }
    const size_t total = (size_t)batch * (size_t)dsnn_shape_size(l->out);
    const int nt = ly_elem_threads(total);
    if (R->relu) {
#pragma omp parallel for simd schedule(static) num_threads(nt) if (nt > 1)
        for (size_t i = 0; i < total; i++) {
            const float s = res[i] + sc[i];
            y[i] = s > 0.0f ? s : 0.0f;
        }
    } else {
#pragma omp parallel for simd schedule(static) num_threads(nt) if (nt > 1)
        for (size_t i = 0; i < total; i++)
            y[i] = res[i] + sc[i];
    }
    return DSNN_OK;
}

/* Backward through layers [first, last) given the gradient of the last one's output;
 * the first layer's input gradient goes to dx0 (may be NULL). */
static enum dsnn_status res_chain_backward(struct residual *R, size_t first, size_t last,
                                           const float *x, const float *dtop, float *dx0,
                                           int batch, struct dsnn_error *err)
{
    const float *dy = dtop;
    for (size_t k = last; k-- > first;) {
        struct dsnn_layer *c = R->layers[k];
        const size_t rel = k - first;
        const float *in = rel ? R->act[k - 1] : x;
        float *dx = rel ? R->g[rel & 1] : dx0;
        enum dsnn_status st = c->ops->backward(c, in, R->act[k], dy, dx, batch, err);
        if (st != DSNN_OK)
            return st;
        dy = dx;
    }
    return DSNN_OK;
}

/* dx[i] += a[i] for i < n */
static void res_add(float *restrict dx, const float *restrict a, size_t n)
{
    const int nt = ly_elem_threads(n);
#pragma omp parallel for simd schedule(static) num_threads(nt) if (nt > 1)
    for (size_t i = 0; i < n; i++)
        dx[i] += a[i];
}

static enum dsnn_status res_backward(struct dsnn_layer *l, const float *x, const float *y,
                                     const float *dy, float *dx, int batch, struct dsnn_error *err)
{
    struct residual *R = res_cast(l);
    if (batch > R->cap)
        return dsnn_error_set(err, DSNN_ERR_INVALID, "layer '%s': backward called with a batch larger than the buffers or without its forward state (batch %d)", l->name, batch);
    const size_t total = (size_t)batch * (size_t)dsnn_shape_size(l->out);
    const float *ds = dy;
    if (R->relu) {
        ly_relu_grad(y, dy, R->ds, total);
        ds = R->ds;
    }
    enum dsnn_status st = res_chain_backward(R, 0, R->n_inner, x, ds, dx, batch, err);
    if (st != DSNN_OK)
        return st;
    const size_t n_in = (size_t)batch * (size_t)dsnn_shape_size(l->in);
    if (R->n > R->n_inner) {
        /* the shortcut's input gradient lands in g[0] (never its own top gradient) */
        float *dsc = dx ? R->g[0] : NULL;
        if ((st = res_chain_backward(R, R->n_inner, R->n, x, ds, dsc, batch, err)) != DSNN_OK)
            return st;
        if (dx)
            res_add(dx, dsc, n_in);
    } else if (dx) {
        res_add(dx, ds, n_in);
    }
    return DSNN_OK;
}

static enum dsnn_status res_save(struct dsnn_layer *l, FILE *f, struct dsnn_error *err)
{
    struct residual *R = res_cast(l);
    enum dsnn_status st;
    if ((st = dsnn_io_write(f, "RESB", 4, "residual tag", err)) ||
        (st = dsnn_io_write_u64(f, R->n_inner, "inner layer count", err)) ||
        (st = dsnn_io_write_u64(f, R->n - R->n_inner, "shortcut layer count", err)))
        return st;
    return ly_save_chain(R->layers, R->n, f, err);
}

static enum dsnn_status res_load(struct dsnn_layer *l, FILE *f, struct dsnn_error *err)
{
    struct residual *R = res_cast(l);
    enum dsnn_status st;
    uint64_t ni, ns;
    if ((st = dsnn_io_expect_tag(f, "RESB", err)) ||
        (st = dsnn_io_read_u64(f, &ni, "inner layer count", err)) ||
        (st = dsnn_io_read_u64(f, &ns, "shortcut layer count", err)))
        return st;
    if (ni != R->n_inner || ns != R->n - R->n_inner)
        return dsnn_error_set(err, DSNN_ERR_FORMAT,
                              "checkpoint block has %llu + %llu layers, this block %zu + %zu",
                              (unsigned long long)ni, (unsigned long long)ns, R->n_inner,
                              R->n - R->n_inner);
    return ly_load_chain(R->layers, R->n, " of the block", "block", f, err);
}

static void res_epoch_end(struct dsnn_layer *l)
{
    struct residual *R = res_cast(l);
    for (size_t j = 0; j < R->n; j++)
        if (R->layers[j]->ops->on_epoch_end)
            R->layers[j]->ops->on_epoch_end(R->layers[j]);
}

static void res_destroy(struct dsnn_layer *l)
{
    struct residual *R = res_cast(l);
    if (!R)
        return;
    if (R->orig)
        res_unbind(R);
    for (size_t j = 0; j < R->n; j++) {
        dsnn_layer_free(R->layers[j]);
        if (R->act)
            free(R->act[j]);
    }
    free(R->act);
    free(R->orig);
    free(R->layers);
    free(R->ds);
    free(R->g[0]);
    free(R->g[1]);
    free(R);
}

static const struct dsnn_layer_ops residual_ops =
    {LY_OPS_FIELDS("residual", res), .on_epoch_end = res_epoch_end};

static void free_all(struct dsnn_layer *const *a, size_t n)
{
    for (size_t i = 0; a && i < n; i++)
        dsnn_layer_free(a[i]);
}

/* Checks a chain starting at shape `in`; returns its output shape in *out. */
static bool check_chain(const char *name, const char *what, struct dsnn_layer *const *a,
                        size_t n, struct dsnn_shape in, struct dsnn_shape *out,
                        struct dsnn_error *err)
{
    struct dsnn_shape prev = in;
    const char *prev_name = "block input";
    for (size_t i = 0; i < n; i++) {
        struct dsnn_layer *c = a[i];
        if (!c) {
            dsnn_error_set(err, DSNN_ERR_INVALID, "residual block '%s': %s layer %zu is NULL",
                           name, what, i);
            return false;
        }
        if (dsnn_layer_is(c, "residual")) {
            dsnn_error_set(err, DSNN_ERR_INVALID,
                           "residual block '%s': %s layer '%s' is a residual block; nested "
                           "residual blocks cannot be inner layers (add them to the network "
                           "directly)",
                           name, what, c->name);
            return false;
        }
        if (c->initialized) {
            dsnn_error_set(err, DSNN_ERR_INVALID,
                           "residual block '%s': %s layer '%s' is already initialised", name,
                           what, c->name);
            return false;
        }
        if (!shape_eq(prev, c->in)) {
            dsnn_error_set(err, DSNN_ERR_INVALID,
                           "residual block '%s': %s layer '%s' expects input %dx%dx%d but '%s' "
                           "produces %dx%dx%d",
                           name, what, c->name, c->in.c, c->in.h, c->in.w, prev_name, prev.c,
                           prev.h, prev.w);
            return false;
        }
        prev = c->out;
        prev_name = c->name;
    }
    *out = prev;
    return true;
}

struct dsnn_layer *dsnn_residual_new(const char *name, struct dsnn_layer *const *inner,
                                     size_t n_inner, struct dsnn_layer *const *shortcut,
                                     size_t n_shortcut, bool relu, struct dsnn_error *err)
{
    if (!name)
        name = "residual";
    if (!inner || n_inner == 0 || !inner[0] || (n_shortcut && !shortcut)) {
        free_all(inner, n_inner);
        free_all(shortcut, n_shortcut);
        dsnn_error_set(err, DSNN_ERR_INVALID, "residual block '%s': needs at least one inner "
                       "layer", name);
        return NULL;
    }
    struct dsnn_shape in = inner[0]->in, out, sc_out;
    bool ok = check_chain(name, "inner", inner, n_inner, in, &out, err) &&
              check_chain(name, "shortcut", shortcut, n_shortcut, in, &sc_out, err);
    if (ok && !shape_eq(out, sc_out)) {
        dsnn_error_set(err, DSNN_ERR_INVALID,
                       "residual block '%s': the inner layers produce %dx%dx%d but the %s "
                       "produces %dx%dx%d",
                       name, out.c, out.h, out.w, n_shortcut ? "shortcut" : "identity shortcut",
                       sc_out.c, sc_out.h, sc_out.w);
        ok = false;
    }
    const size_t n = n_inner + n_shortcut;
    for (size_t i = 0; ok && i < n; i++)
        for (size_t j = 0; ok && j < i; j++) {
            const struct dsnn_layer *a = i < n_inner ? inner[i] : shortcut[i - n_inner];
            const struct dsnn_layer *b = j < n_inner ? inner[j] : shortcut[j - n_inner];
            if (strcmp(a->name, b->name) == 0) {
                dsnn_error_set(err, DSNN_ERR_INVALID,
                               "residual block '%s': two layers are named '%s'", name, a->name);
                ok = false;
            }
        }
    struct residual *R = ok ? calloc(1, sizeof *R) : NULL;
    if (R) {
        R->layers = calloc(n, sizeof *R->layers);
        R->orig = calloc(n, sizeof *R->orig);
        R->act = calloc(n, sizeof *R->act);
    }
    if (!R || !R->layers || !R->orig || !R->act) {
        if (ok)
            dsnn_error_set(err, DSNN_ERR_NOMEM, "out of memory");
        if (R) {
            free(R->layers);
            free(R->orig);
            free(R->act);
            free(R);
        }
        free_all(inner, n_inner);
        free_all(shortcut, n_shortcut);
        return NULL;
    }
    R->base.ops = &residual_ops;
    snprintf(R->base.name, sizeof R->base.name, "%s", name);
    R->base.in = in;
    R->base.out = out;
    R->relu = relu;
    R->n_inner = n_inner;
    R->n = n;
    size_t max_size = (size_t)dsnn_shape_size(in);
    for (size_t i = 0; i < n; i++) {
        R->layers[i] = i < n_inner ? inner[i] : shortcut[i - n_inner];
        const size_t s = (size_t)dsnn_shape_size(R->layers[i]->out);
        if (s > max_size)
            max_size = s;
    }
    R->max_size = max_size;
    return &R->base;
}

size_t dsnn_residual_n_layers(const struct dsnn_layer *l, bool shortcut)
{
    const struct residual *R = res_cast(l);
    if (!R)
        return 0;
    return shortcut ? R->n - R->n_inner : R->n_inner;
}

struct dsnn_layer *dsnn_residual_layer(struct dsnn_layer *l, bool shortcut, size_t i)
{
    struct residual *R = res_cast(l);
    if (!R)
        return NULL;
    if (shortcut)
        return i < R->n - R->n_inner ? R->layers[R->n_inner + i] : NULL;
    return i < R->n_inner ? R->layers[i] : NULL;
}

enum dsnn_status dsnn_residual_replace(struct dsnn_layer *l, bool shortcut, size_t i,
                                       struct dsnn_layer *layer, struct dsnn_error *err)
{
    struct residual *R = res_cast(l);
    struct dsnn_layer *old = R ? dsnn_residual_layer(l, shortcut, i) : NULL;
    const char *why = !R       ? "not a residual block"
                      : !old   ? "no such layer"
                      : !layer ? "no new layer"
                      : l->initialized ? "the block is initialised"
                      : dsnn_layer_is(layer, "residual") ? "nested residual blocks are not allowed"
                      : !shape_eq(old->in, layer->in) || !shape_eq(old->out, layer->out)
                          ? "the new layer's shapes differ"
                          : NULL;
    for (size_t j = 0; !why && j < R->n; j++)
        if (R->layers[j] != old && strcmp(R->layers[j]->name, layer->name) == 0)
            why = "a layer of that name exists";
    if (why) {
        dsnn_layer_free(layer);
        return dsnn_error_set(err, DSNN_ERR_INVALID, "residual block '%s': cannot replace %s "
                              "layer %zu: %s", l ? l->name : "(null)",
                              shortcut ? "shortcut" : "inner", i, why);
    }
    R->layers[shortcut ? R->n_inner + i : i] = layer;
    dsnn_layer_free(old);
    return DSNN_OK;
}

struct dsnn_layer *dsnn_resnet_basic_block_new(const char *name, struct dsnn_shape in,
                                               int out_channels, int stride,
                                               struct dsnn_error *err)
{
    if (!name)
        name = "block";
    struct dsnn_layer *inner[5] = {0}, *sc[2] = {0};
    size_t n_sc = 0;
    inner[0] = dsnn_conv2d_new("conv1", in, out_channels, 3, stride, 1, false, err);
    if (!inner[0])
        return NULL;
    struct dsnn_shape mid = inner[0]->out;
    if (!(inner[1] = dsnn_batchnorm2d_new("bn1", mid, true, err)) ||
        !(inner[2] = dsnn_relu_new("relu1", mid, err)) ||
        !(inner[3] = dsnn_conv2d_new("conv2", mid, out_channels, 3, 1, 1, false, err)) ||
        !(inner[4] = dsnn_batchnorm2d_new("bn2", inner[3]->out, true, err)))
        goto fail;
    if (stride != 1 || in.c != out_channels) {
        n_sc = 2;
        if (!(sc[0] = dsnn_conv2d_new("shortcut_conv", in, out_channels, 1, stride, 0, false,
                                      err)) ||
            !(sc[1] = dsnn_batchnorm2d_new("shortcut_bn", sc[0]->out, true, err)))
            goto fail;
    }
    return dsnn_residual_new(name, inner, 5, sc, n_sc, true, err);
fail:
    for (int i = 0; i < 5; i++)
        dsnn_layer_free(inner[i]);
    for (int i = 0; i < 2; i++)
        dsnn_layer_free(sc[i]);
    dsnn_error_prefix(err, "residual block '%s'", name);
    return NULL;
}
