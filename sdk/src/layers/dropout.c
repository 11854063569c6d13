/* layers/dropout.c - inverted dropout (PyTorch nn.Dropout) with a deterministic mask stream. */
#include "dsnn/io.h"
#include "dsnn/layers.h"
#include "layers/layers_impl.h"

#include <stdlib.h>
#include <string.h>

struct dropout {
    struct dsnn_layer base; /* first */
    double p;
    struct dsnn_rng rng;
    uint8_t *mask; /* [cap] kept values of the last training forward */
    size_t cap;
    bool last_train;
};

static const struct dsnn_layer_ops dropout_ops;

static struct dropout *do_cast(const struct dsnn_layer *l)
{
    return l && l->ops == &dropout_ops ? (struct dropout *)l : NULL;
}

static enum dsnn_status do_init(struct dsnn_layer *l, struct dsnn_rng *rng,
                                struct dsnn_error *err)
{
    (void)err;
    struct dropout *D = do_cast(l);
    dsnn_rng_seed(&D->rng, dsnn_rng_u64(rng), DSNN_RNG_STREAM_DROPOUT);
    return DSNN_OK;
}

static enum dsnn_status do_forward(struct dsnn_layer *l, const float *x, float *y, int batch,
                                   bool train, struct dsnn_error *err)
{
    struct dropout *D = do_cast(l);
    const size_t n = (size_t)batch * (size_t)dsnn_shape_size(l->in);
    D->last_train = train;
    if (!train || D->p <= 0.0) {
        if (y != x)
            memcpy(y, x, sizeof(float) * n);
        D->last_train = false; /* identity */
        return DSNN_OK;
    }
    if (n > D->cap) {
        uint8_t *m = realloc(D->mask, n);
        if (!m)
            return dsnn_error_set(err, DSNN_ERR_NOMEM, "layer '%s': out of memory in forward", l->name);
        D->mask = m;
        D->cap = n;
    }
    if (D->p >= 1.0) {
        memset(D->mask, 0, n);
        memset(y, 0, sizeof(float) * n);
        return DSNN_OK;
    }
    /* keep a value when its 32 random bits are >= p 2^32; two values per 64-bit draw */
    const uint64_t thr = (uint64_t)(D->p * 4294967296.0);
    const float scale = (float)(1.0 / (1.0 - D->p));
    uint8_t *m = D->mask;
    for (size_t i = 0; i < n; i += 2) {
        const uint64_t r = dsnn_rng_u64(&D->rng);
        m[i] = (r & 0xffffffffu) >= thr;
        if (i + 1 < n)
            m[i + 1] = (r >> 32) >= thr;
    }
    for (size_t i = 0; i < n; i++)
        y[i] = m[i] ? x[i] * scale : 0.0f;
    return DSNN_OK;
}

static enum dsnn_status do_backward(struct dsnn_layer *l, const float *x, const float *y,
                                    const float *dy, float *dx, int batch, struct dsnn_error *err)
{
    (void)x, (void)y;
    struct dropout *D = do_cast(l);
    if (!dx)
        return DSNN_OK;
    const size_t n = (size_t)batch * (size_t)dsnn_shape_size(l->in);
    if (!D->last_train) {
        if (dx != dy)
            memcpy(dx, dy, sizeof(float) * n);
        return DSNN_OK;
    }
    if (n > D->cap)
        return dsnn_error_set(err, DSNN_ERR_INVALID, "layer '%s': backward called with a batch larger than the buffers or without its forward state (batch %d)", l->name, batch);
    if (D->p >= 1.0) {
        memset(dx, 0, sizeof(float) * n);
        return DSNN_OK;
    }
    const float scale = (float)(1.0 / (1.0 - D->p));
    for (size_t i = 0; i < n; i++)
        dx[i] = D->mask[i] ? dy[i] * scale : 0.0f;
    return DSNN_OK;
}

static enum dsnn_status do_save(struct dsnn_layer *l, FILE *f, struct dsnn_error *err)
{
    struct dropout *D = do_cast(l);
    enum dsnn_status st;
    if ((st = dsnn_io_write(f, "DROP", 4, "dropout tag", err)))
        return st;
    for (int i = 0; i < 4; i++)
        if ((st = dsnn_io_write_u64(f, D->rng.s[i], "dropout rng", err)))
            return st;
    return DSNN_OK;
}

static enum dsnn_status do_load(struct dsnn_layer *l, FILE *f, struct dsnn_error *err)
{
    struct dropout *D = do_cast(l);
    enum dsnn_status st;
    struct dsnn_rng r;
    if ((st = dsnn_io_expect_tag(f, "DROP", err)))
        return st;
    for (int i = 0; i < 4; i++)
        if ((st = dsnn_io_read_u64(f, &r.s[i], "dropout rng", err)))
            return st;
    D->rng = r;
    return DSNN_OK;
}

static void do_destroy(struct dsnn_layer *l)
{
    free(((struct dropout *)l)->mask);
    free(l);
}

static const struct dsnn_layer_ops dropout_ops = {LY_OPS_FIELDS("dropout", do)};

struct dsnn_layer *dsnn_dropout_new(const char *name, struct dsnn_shape shape, double p,
                                    struct dsnn_error *err)
{
    if (!name)
        name = "dropout";
    if (!(p >= 0.0 && p <= 1.0)) {
        dsnn_error_set(err, DSNN_ERR_INVALID, "layer '%s': dropout probability %g outside [0, 1]",
                       name, p);
        return NULL;
    }
    if (shape.c <= 0 || shape.h <= 0 || shape.w <= 0) {
        dsnn_error_set(err, DSNN_ERR_INVALID, "layer '%s': invalid shape %dx%dx%d", name,
                       shape.c, shape.h, shape.w);
        return NULL;
    }
    struct dropout *D = dsnn_layer_alloc(sizeof *D, &dropout_ops, name, shape, shape, err);
    if (!D)
        return NULL;
    D->p = p;
    dsnn_rng_seed(&D->rng, 0, DSNN_RNG_STREAM_DROPOUT); /* replaced in init */
    return &D->base;
}

void dsnn_dropout_set_rng(struct dsnn_layer *l, const struct dsnn_rng *rng)
{
    struct dropout *D = do_cast(l);
    if (D && rng)
        D->rng = *rng;
}
