/* rules/prune_grow.c - RigL-style gradient rounds, threshold pruning, global selection of the smallest
 * scores and lottery-ticket rewinding on truly sparse layers (see dsnn/prune_grow.h). Only the
 * public API of dsnn/sparse.h is used. */
#include "dsnn/io.h"
#include "dsnn/prune_grow.h"
#include "sparse/sparse_impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- RigL round ---- */

/* The connections of a layer before a round: keys row * n_in + col (ascending, CSR order) with
 * their value, gradient and optimizer state. */
struct conn_snapshot {
    size_t n;
    uint64_t *key;
    float *value, *grad;
    float *state[DSNN_OPT_STATE_MAX];
};

static void snapshot_free(struct conn_snapshot *s)
{
    free(s->key);
    free(s->value);
    free(s->grad);
    for (int i = 0; i < DSNN_OPT_STATE_MAX; i++)
        free(s->state[i]);
    memset(s, 0, sizeof *s);
}

static enum dsnn_status snapshot_take(struct conn_snapshot *s, struct dsnn_layer *l,
                                      struct dsnn_error *err)
{
    struct dsnn_sparse_csr c;
    memset(s, 0, sizeof *s);
    if (!dsnn_sparse_get_csr(l, &c))
        return dsnn_error_set(err, DSNN_ERR_INVALID,
                              "layer '%s': not an initialised sparse linear layer",
                              l ? l->name : "(null)");
    const struct dsnn_param_block *b = dsnn_sparse_weight(l);
    const size_t n = c.nnz, m = n ? n : 1;
    s->n = n;
    s->key = malloc(m * sizeof *s->key);
    s->value = malloc(m * sizeof(float));
    s->grad = malloc(m * sizeof(float));
    bool ok = s->key && s->value && s->grad;
    for (int i = 0; ok && i < DSNN_OPT_STATE_MAX; i++)
        if (b->state[i])
            ok = (s->state[i] = malloc(m * sizeof(float))) != NULL;
    if (!ok) {
        snapshot_free(s);
        return dsnn_error_set(err, DSNN_ERR_NOMEM, "out of memory");
    }
    for (int r = 0; r < c.n_out; r++)
        for (int64_t k = c.row_ptr[r]; k < c.row_ptr[r + 1]; k++)
            s->key[k] = (uint64_t)r * (uint64_t)c.n_in + (uint64_t)c.col[k];
    memcpy(s->value, c.value, n * sizeof(float));
    memcpy(s->grad, c.grad, n * sizeof(float));
    for (int i = 0; i < DSNN_OPT_STATE_MAX; i++)
        if (s->state[i])
            memcpy(s->state[i], b->state[i], n * sizeof(float));
    return DSNN_OK;
}

/* Gives every connection that is in the snapshot its snapshot value, gradient and state (a no-op
 * for survivors, a restore for dropped-and-regrown ones). Returns the number of connections not
 * in the snapshot (truly new). */
static size_t snapshot_restore(const struct conn_snapshot *s, struct dsnn_layer *l)
{
    struct dsnn_sparse_csr c;
    dsnn_sparse_get_csr(l, &c);
    struct dsnn_param_block *b = dsnn_sparse_weight(l);
    size_t j = 0, fresh = 0;
    for (int r = 0; r < c.n_out; r++)
        for (int64_t k = c.row_ptr[r]; k < c.row_ptr[r + 1]; k++) {
            const uint64_t key = (uint64_t)r * (uint64_t)c.n_in + (uint64_t)c.col[k];
            while (j < s->n && s->key[j] < key)
                j++;
            if (j == s->n || s->key[j] != key) {
                fresh++;
                continue;
            }
            c.value[k] = s->value[j];
            c.grad[k] = s->grad[j];
            for (int i = 0; i < DSNN_OPT_STATE_MAX; i++)
                if (s->state[i] && b->state[i])
                    b->state[i][k] = s->state[i][j];
        }
    return fresh;
}

enum dsnn_status dsnn_prune_grow_gradient(struct dsnn_layer *l, size_t n_drop, size_t n_grow,
                                          struct dsnn_rng *rng, size_t *n_new,
                                          struct dsnn_error *err)
{
    if (n_new)
        *n_new = 0;
    /* Fail before touching the layer: the dense gradient must be available (a zero-row request
     * checks just that), and the drop must be possible. */
    enum dsnn_status st;
    if (n_grow > 0 && (st = dsnn_sparse_dense_grad_rows(l, 0, 0, NULL, err)) != DSNN_OK)
        return st;
    if (n_drop > dsnn_sparse_nnz(l))
        return dsnn_error_set(err, DSNN_ERR_INVALID,
                              "layer '%s': cannot drop %zu of %zu connections", l->name, n_drop,
                              dsnn_sparse_nnz(l));
    struct conn_snapshot s;
    if ((st = snapshot_take(&s, l, err)) != DSNN_OK)
        return st;
    if ((st = dsnn_sparse_prune_magnitude(l, n_drop, err)) == DSNN_OK &&
        (st = dsnn_sparse_grow_gradient(l, n_grow, rng, err)) == DSNN_OK) {
        size_t fresh = snapshot_restore(&s, l);
        if (n_new)
            *n_new = fresh;
    }
    snapshot_free(&s);
    return st;
}

/* ---- threshold pruning ---- */

enum dsnn_status dsnn_prune_threshold(struct dsnn_layer *l, double threshold, size_t *removed,
                                      struct dsnn_error *err)
{
    struct dsnn_sparse_csr c;
    if (removed)
        *removed = 0;
    if (!dsnn_sparse_get_csr(l, &c))
        return dsnn_error_set(err, DSNN_ERR_INVALID,
                              "layer '%s': not an initialised sparse linear layer",
                              l ? l->name : "(null)");
    uint8_t *remove = malloc(c.nnz ? c.nnz : 1);
    if (!remove)
        return dsnn_error_set(err, DSNN_ERR_NOMEM, "out of memory");
    size_t n = 0;
    for (size_t k = 0; k < c.nnz; k++) {
        const float a = fabsf(c.value[k]);
        remove[k] = !((double)a >= threshold); /* NaN: removed */
        n += remove[k];
    }
    enum dsnn_status st = n ? dsnn_sparse_prune_mask(l, remove, err) : DSNN_OK;
    free(remove);
    if (st == DSNN_OK && removed)
        *removed = n;
    return st;
}

/* ---- global selection ---- */

enum dsnn_status dsnn_select_smallest(size_t n_arrays, const float *const *score, const size_t *n,
                                      size_t count, uint8_t *const *mark, struct dsnn_error *err)
{
    size_t total = 0;
    for (size_t a = 0; a < n_arrays; a++) {
        total += n[a];
        memset(mark[a], 0, n[a]);
    }
    if (count > total)
        return dsnn_error_set(err, DSNN_ERR_INVALID, "cannot select %zu of %zu values", count,
                              total);
    if (count == 0)
        return DSNN_OK;
    /* The arrays end to end as one list of keys: the engine's one selection (sp_mark_smallest,
     * ties to the lower position, i.e. the earlier array, then the lower index). */
    uint32_t *keys = malloc(total * sizeof *keys);
    uint8_t *chosen = calloc(total, 1);
    if (!keys || !chosen) {
        free(keys);
        free(chosen);
        return dsnn_error_set(err, DSNN_ERR_NOMEM, "out of memory");
    }
    for (size_t a = 0, at = 0; a < n_arrays; at += n[a], a++)
        for (size_t k = 0; k < n[a]; k++)
            keys[at + k] = sp_float_key(score[a][k]);
    sp_mark_smallest(keys, total, count, chosen);
    for (size_t a = 0, at = 0; a < n_arrays; at += n[a], a++)
        memcpy(mark[a], chosen + at, n[a]);
    free(keys);
    free(chosen);
    return DSNN_OK;
}

/* ---- rewinding ---- */

struct rewind_block {
    size_t layer, block, n;
    float *v;
};

struct dsnn_rewind {
    size_t n;
    struct rewind_block *b;
};

void dsnn_rewind_free(struct dsnn_rewind *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++)
        free(r->b[i].v);
    free(r->b);
    free(r);
}

struct dsnn_rewind *dsnn_rewind_new(struct dsnn_net *net, struct dsnn_error *err)
{
    if (!net || !dsnn_net_initialized(net)) {
        dsnn_error_set(err, DSNN_ERR_INVALID, "rewind: the network is not initialised");
        return NULL;
    }
    struct dsnn_rewind *r = calloc(1, sizeof *r);
    size_t n = 0;
    for (size_t i = 0; i < dsnn_net_n_layers(net); i++)
        n += dsnn_net_layer(net, i)->n_params;
    if (r && n)
        r->b = calloc(n, sizeof *r->b);
    if (!r || (n && !r->b)) {
        dsnn_rewind_free(r);
        dsnn_error_set(err, DSNN_ERR_NOMEM, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < dsnn_net_n_layers(net); i++) {
        struct dsnn_layer *l = dsnn_net_layer(net, i);
        for (size_t k = 0; k < l->n_params; k++) {
            struct rewind_block *b = &r->b[r->n++];
            b->layer = i;
            b->block = k;
            b->n = l->params[k].n;
            b->v = malloc((b->n ? b->n : 1) * sizeof(float));
            if (!b->v) {
                dsnn_rewind_free(r);
                dsnn_error_set(err, DSNN_ERR_NOMEM, "out of memory");
                return NULL;
            }
            memcpy(b->v, l->params[k].value, b->n * sizeof(float));
        }
    }
    return r;
}

/* The copy of the block whose struct is *p (a block of a network layer's params array: the
 * layer's own, a residual block's moved ones, or those a sparse conv shares with its store). */
static struct rewind_block *find_block_at(const struct dsnn_rewind *r, struct dsnn_net *net,
                                          const struct dsnn_param_block *p)
{
    for (size_t i = 0; i < r->n; i++) {
        struct dsnn_layer *l =
            r->b[i].layer < dsnn_net_n_layers(net) ? dsnn_net_layer(net, r->b[i].layer) : NULL;
        if (l && r->b[i].block < l->n_params && &l->params[r->b[i].block] == p)
            return &r->b[i];
    }
    return NULL;
}

enum dsnn_status dsnn_rewind_prune_mask_layer(struct dsnn_rewind *r, struct dsnn_net *net,
                                              struct dsnn_layer *l, const uint8_t *remove,
                                              struct dsnn_error *err)
{
    if (!l || !dsnn_sparse_is(l) || !l->params)
        return dsnn_error_set(err, DSNN_ERR_INVALID, "rewind: layer '%s' is not a sparse layer",
                              l ? l->name : "(null)");
    struct rewind_block *b = find_block_at(r, net, &l->params[0]);
    const size_t nnz = dsnn_sparse_nnz(l);
    if (!b || b->n != nnz)
        return dsnn_error_set(err, DSNN_ERR_INVALID,
                              "rewind: layer '%s' has %zu connections, its copy %zu (the topology "
                              "changed behind the copy)",
                              l->name, nnz, b ? b->n : 0);
    enum dsnn_status st = dsnn_sparse_prune_mask(l, remove, err);
    if (st != DSNN_OK)
        return st;
    size_t w = 0;
    for (size_t k = 0; k < b->n; k++)
        if (!remove[k])
            b->v[w++] = b->v[k];
    b->n = w;
    return DSNN_OK;
}

enum dsnn_status dsnn_rewind_prune_mask(struct dsnn_rewind *r, struct dsnn_net *net, size_t layer,
                                        const uint8_t *remove, struct dsnn_error *err)
{
    struct dsnn_layer *l = layer < dsnn_net_n_layers(net) ? dsnn_net_layer(net, layer) : NULL;
    if (!l || !dsnn_sparse_is(l))
        return dsnn_error_set(err, DSNN_ERR_INVALID, "rewind: layer %zu is not a sparse layer",
                              layer);
    return dsnn_rewind_prune_mask_layer(r, net, l, remove, err);
}

enum dsnn_status dsnn_rewind_apply(const struct dsnn_rewind *r, struct dsnn_net *net,
                                   struct dsnn_error *err)
{
    /* check everything first, so that a failure leaves the network untouched */
    for (size_t i = 0; i < r->n; i++) {
        const struct rewind_block *b = &r->b[i];
        struct dsnn_layer *l =
            b->layer < dsnn_net_n_layers(net) ? dsnn_net_layer(net, b->layer) : NULL;
        if (!l || b->block >= l->n_params || l->params[b->block].n != b->n)
            return dsnn_error_set(err, DSNN_ERR_INVALID,
                                  "rewind: layer %zu block %zu no longer matches its copy (%zu "
                                  "values; was the topology edited behind the copy?)",
                                  b->layer, b->block, b->n);
    }
    for (size_t i = 0; i < r->n; i++) {
        const struct rewind_block *b = &r->b[i];
        struct dsnn_param_block *p = &dsnn_net_layer(net, b->layer)->params[b->block];
        memcpy(p->value, b->v, b->n * sizeof(float));
        memset(p->grad, 0, p->n * sizeof(float));
        for (int s = 0; s < DSNN_OPT_STATE_MAX; s++)
            if (p->state[s])
                memset(p->state[s], 0, (p->capacity > p->n ? p->capacity : p->n) * sizeof(float));
    }
    return DSNN_OK;
}

enum dsnn_status dsnn_rewind_save(const struct dsnn_rewind *r, FILE *f, struct dsnn_error *err)
{
    enum dsnn_status st;
    if ((st = dsnn_io_write(f, "RWND", 4, "rewind tag", err)) ||
        (st = dsnn_io_write_u64(f, r->n, "rewind block count", err)))
        return st;
    for (size_t i = 0; i < r->n; i++) {
        const struct rewind_block *b = &r->b[i];
        if ((st = dsnn_io_write_u64(f, b->layer, "rewind layer", err)) ||
            (st = dsnn_io_write_u64(f, b->block, "rewind block", err)) ||
            (st = dsnn_io_write_u64(f, b->n, "rewind size", err)) ||
            (st = dsnn_io_write(f, b->v, b->n * sizeof(float), "rewind values", err)))
            return st;
    }
    return DSNN_OK;
}

enum dsnn_status dsnn_rewind_load(struct dsnn_rewind *r, struct dsnn_net *net, FILE *f,
                                  struct dsnn_error *err)
{
    enum dsnn_status st =
        dsnn_io_expect_count(f, "RWND", r->n, "rewind blocks", "the network", err);
    if (st != DSNN_OK)
        return st;
    for (size_t i = 0; i < r->n; i++) {
        struct rewind_block *b = &r->b[i];
        uint64_t layer, block, size;
        if ((st = dsnn_io_read_u64(f, &layer, "rewind layer", err)) ||
            (st = dsnn_io_read_u64(f, &block, "rewind block", err)) ||
            (st = dsnn_io_read_u64(f, &size, "rewind size", err)))
            return st;
        struct dsnn_layer *l = layer < dsnn_net_n_layers(net) ? dsnn_net_layer(net, layer) : NULL;
        if (layer != b->layer || block != b->block || !l || block >= l->n_params ||
            size != l->params[block].n)
            return dsnn_error_set(err, DSNN_ERR_FORMAT,
                                  "checkpoint: rewind block %zu (layer %llu block %llu, %llu "
                                  "values) does not match the network",
                                  i, (unsigned long long)layer, (unsigned long long)block,
                                  (unsigned long long)size);
        float *v = realloc(b->v, (size ? size : 1) * sizeof(float));
        if (!v)
            return dsnn_error_set(err, DSNN_ERR_NOMEM, "out of memory");
        b->v = v;
        b->n = size;
        if ((st = dsnn_io_read(f, b->v, size * sizeof(float), "rewind values", err)))
            return st;
    }
    return DSNN_OK;
}
