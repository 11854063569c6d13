/* sparse/topology.c - prune and grow connections of a sparse linear layer in place.
 *
 * Prune compacts the CSR arrays (columns, values, gradients, every allocated optimizer state
 * slot) left to right in O(nnz). Grow sorts the new positions and merges them into the rows from
 * the back in O(nnz + m), so surviving connections keep their value, gradient and state, and new
 * ones get zero gradient / state and a value drawn as configured. Selections use a radix select
 * (exact counts, ties broken by index) so results are deterministic. */
#include "sparse/sparse_impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static struct sp_linear *get(struct dsnn_layer *l, struct dsnn_error *err)
{
    struct sp_linear *S = sp_get(l);
    if (!S)
        dsnn_error_set(err, DSNN_ERR_INVALID, "layer '%s': not an initialised sparse linear layer",
                       l ? l->name : "(null)");
    return S;
}

static void note_prune(struct sp_linear *S, size_t n)
{
    if (S->last_edit != 1)
        S->stats = (struct dsnn_sparse_update_stats){0, 0};
    S->last_edit = 1;
    S->stats.pruned += n;
}

static void note_grow(struct sp_linear *S, size_t n)
{
    if (S->last_edit == 0)
        S->stats = (struct dsnn_sparse_update_stats){0, 0};
    S->last_edit = 2;
    S->stats.grown += n;
}

/* ---- prune ---- */

/* The per-connection arrays of a layer's CSR weights: column, value, gradient and the optimizer
 * state slots that are allocated (st[0 .. ns)). */
struct entries {
    int32_t *col;
    float *val, *grad;
    float *st[DSNN_OPT_STATE_MAX];
    int ns;
};

static void entries_of(struct sp_linear *S, struct entries *e)
{
    const struct dsnn_param_block *b = &SP_WB(S);
    e->col = S->col;
    e->val = b->value;
    e->grad = b->grad;
    e->ns = 0;
    for (int s = 0; s < DSNN_OPT_STATE_MAX; s++)
        if (b->state[s])
            e->st[e->ns++] = b->state[s];
}

/* Connection src moves to slot dst. */
static inline void entry_move(const struct entries *e, int64_t dst, int64_t src)
{
    e->col[dst] = e->col[src];
    e->val[dst] = e->val[src];
    e->grad[dst] = e->grad[src];
    for (int s = 0; s < e->ns; s++)
        e->st[s][dst] = e->st[s][src];
}

/* Removes the connections with remove[k] set; returns how many. */
static size_t compact(struct sp_linear *S, const uint8_t *remove)
{
    struct entries e;
    entries_of(S, &e);
    int64_t *rp = S->row_ptr;
    int64_t w = 0;
    for (int r = 0; r < S->n_out; r++) {
        const int64_t k0 = rp[r], k1 = rp[r + 1];
        rp[r] = w;
        for (int64_t k = k0; k < k1; k++) {
            if (remove[k])
                continue;
            if (w != k)
                entry_move(&e, w, k);
            w++;
        }
    }
    rp[S->n_out] = w;
    size_t removed = S->nnz - (size_t)w;
    S->nnz = (size_t)w;
    sp_topology_changed(S);
    return removed;
}

void sp_mark_smallest(const uint32_t *keys, size_t n, size_t count, uint8_t *remove)
{
    if (count == 0)
        return;
    uint32_t thr;
    size_t take_eq;
    sp_radix_select(keys, n, count, &thr, &take_eq);
    for (size_t k = 0; k < n; k++) {
        if (keys[k] < thr)
            remove[k] = 1;
        else if (keys[k] == thr && take_eq) {
            remove[k] = 1;
            take_eq--;
        }
    }
}

static enum dsnn_status prune_by_keys(struct sp_linear *S, uint32_t *keys, size_t count,
                                      struct dsnn_error *err)
{
    uint8_t *remove = calloc(S->nnz ? S->nnz : 1, 1);
    if (!remove) {
        free(keys);
        return dsnn_error_set(err, DSNN_ERR_NOMEM, "out of memory");
    }
    sp_mark_smallest(keys, S->nnz, count, remove);
    free(keys);
    note_prune(S, compact(S, remove));
    free(remove);
    return DSNN_OK;
}

/* Prunes the count connections of smallest key: |w| (score NULL and by_magnitude), else score. */
static enum dsnn_status prune_smallest(struct dsnn_layer *l, const float *score, bool by_magnitude,
                                       size_t count, struct dsnn_error *err)
{
    struct sp_linear *S = get(l, err);
    if (!S)
        return DSNN_ERR_INVALID;
    if (count > S->nnz || (!by_magnitude && !score && S->nnz))
        return dsnn_error_set(err, DSNN_ERR_INVALID,
                              "layer '%s': cannot prune %zu of %zu connections", l->name, count,
                              S->nnz);
    uint32_t *keys = malloc((S->nnz ? S->nnz : 1) * sizeof *keys);
    if (!keys)
        return dsnn_error_set(err, DSNN_ERR_NOMEM, "out of memory");
    const float *v = SP_WB(S).value;
    for (size_t k = 0; k < S->nnz; k++)
        keys[k] = sp_float_key(by_magnitude ? fabsf(v[k]) : score[k]);
    return prune_by_keys(S, keys, count, err);
}

enum dsnn_status dsnn_sparse_prune_magnitude(struct dsnn_layer *l, size_t count,
                                             struct dsnn_error *err)
{
    return prune_smallest(l, NULL, true, count, err);
}

enum dsnn_status dsnn_sparse_prune_score(struct dsnn_layer *l, const float *score, size_t count,
                                         struct dsnn_error *err)
{
    return prune_smallest(l, score, false, count, err);
}

size_t dsnn_signed_prune_count(size_t size, double fraction, bool negative,
                               enum dsnn_prune_rounding rounding)
{
    if (rounding == DSNN_PRUNE_ROUND_NUPIC)
        return negative ? size - (size_t)((1.0 - fraction) * (double)size)
                        : (size_t)(fraction * (double)size);
    return (size_t)nearbyint(fraction * (double)size);
}

/* The rule's marking, counts given: count[0] of the weights >= 0 and count[1] of the weights < 0
 * (n_neg of them), each clamped to its group. */
static enum dsnn_status mark_signed(const float *w, size_t n, size_t n_neg, const size_t count[2],
                                    uint8_t *remove, size_t *n_removed, struct dsnn_error *err)
{
    uint32_t *keys = malloc((n ? n : 1) * sizeof *keys);
    if (!keys)
        return dsnn_error_set(err, DSNN_ERR_NOMEM, "out of memory");
    const size_t n_pos = n - n_neg; /* w >= 0 (and NaN, pruned first) */
    size_t total = 0;
    for (int group = 0; group < 2; group++) {
        const size_t size = group ? n_neg : n_pos;
        const size_t k_group = count[group] < size ? count[group] : size;
        if (k_group == 0)
            continue;
        for (size_t k = 0; k < n; k++) {
            const bool neg = w[k] < 0.0f;
            keys[k] = neg == (group == 1) ? sp_float_key(fabsf(w[k])) : UINT32_MAX;
        }
        sp_mark_smallest(keys, n, k_group, remove);
        total += k_group;
    }
    free(keys);
    if (n_removed)
        *n_removed = total;
    return DSNN_OK;
}

static size_t count_negative(const float *w, size_t n)
{
    size_t n_neg = 0;
    for (size_t k = 0; k < n; k++)
        n_neg += w[k] < 0.0f;
    return n_neg;
}

enum dsnn_status dsnn_signed_magnitude_mark(const float *w, size_t n, double fraction,
                                            enum dsnn_prune_rounding rounding, uint8_t *remove,
                                            size_t *n_removed, struct dsnn_error *err)
{
    if (!(fraction >= 0.0 && fraction <= 1.0))
        return dsnn_error_set(err, DSNN_ERR_INVALID, "prune fraction %g outside [0, 1]", fraction);
    const size_t n_neg = count_negative(w, n);
    const size_t count[2] = {dsnn_signed_prune_count(n - n_neg, fraction, false, rounding),
                             dsnn_signed_prune_count(n_neg, fraction, true, rounding)};
    return mark_signed(w, n, n_neg, count, remove, n_removed, err);
}

enum dsnn_status dsnn_signed_magnitude_mark_counts(const float *w, size_t n, size_t count_pos,
                                                   size_t count_neg, uint8_t *remove,
                                                   size_t *n_removed, struct dsnn_error *err)
{
    const size_t count[2] = {count_pos, count_neg};
    return mark_signed(w, n, count_negative(w, n), count, remove, n_removed, err);
}

enum dsnn_status dsnn_sparse_prune_signed(struct dsnn_layer *l, double fraction, size_t *removed,
                                          struct dsnn_error *err)
{
    struct sp_linear *S = get(l, err);
    if (!S)
        return DSNN_ERR_INVALID;
    if (!(fraction >= 0.0 && fraction <= 1.0))
        return dsnn_error_set(err, DSNN_ERR_INVALID, "layer '%s': prune fraction %g outside [0, 1]",
                              l->name, fraction);
    uint8_t *remove = calloc(S->nnz ? S->nnz : 1, 1);
    if (!remove)
        return dsnn_error_set(err, DSNN_ERR_NOMEM, "out of memory");
    enum dsnn_status st = dsnn_signed_magnitude_mark(SP_WB(S).value, S->nnz, fraction,
                                                     DSNN_PRUNE_ROUND_NEAREST, remove, NULL, err);
    if (st != DSNN_OK) {
        free(remove);
        return st;
    }
    size_t r = compact(S, remove);
    free(remove);
    note_prune(S, r);
    if (removed)
        *removed = r;
    return DSNN_OK;
}

enum dsnn_status dsnn_sparse_prune_mask(struct dsnn_layer *l, const uint8_t *remove,
                                        struct dsnn_error *err)
{
    struct sp_linear *S = get(l, err);
    if (!S)
        return DSNN_ERR_INVALID;
    if (!remove && S->nnz)
        return dsnn_error_set(err, DSNN_ERR_INVALID, "layer '%s': NULL prune mask", l->name);
    note_prune(S, S->nnz ? compact(S, remove) : 0);
    return DSNN_OK;
}

/* ---- grow ---- */

/* Merges m new connections at sorted unique inactive positions pos[] (row * n_in + col). */
static enum dsnn_status grow_apply(struct sp_linear *S, const uint64_t *pos, size_t m,
                                   struct dsnn_rng *rng, struct dsnn_error *err)
{
    if (m == 0) {
        note_grow(S, 0);
        return DSNN_OK;
    }
    float *newval = malloc(m * sizeof *newval);
    if (!newval)
        return dsnn_error_set(err, DSNN_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < m; i++)
        newval[i] = sp_grow_value(S, rng);
    enum dsnn_status st = sp_reserve_nnz(S, S->nnz + m, err);
    if (st != DSNN_OK) {
        free(newval);
        return st;
    }
    struct entries e;
    entries_of(S, &e);
    int64_t *rp = S->row_ptr;
    const uint64_t n_in = (uint64_t)S->n_in;
    int64_t dst = (int64_t)(S->nnz + m); /* one past the next slot to fill, moving left */
    int64_t old_next = rp[S->n_out];
    size_t q = m; /* new entries left: pos[0 .. q) */
    for (int r = S->n_out - 1; r >= 0 && q > 0; r--) {
        const int64_t k0 = rp[r];
        int64_t k = old_next - 1;
        rp[r + 1] = dst;
        while (q > 0 && pos[q - 1] / n_in == (uint64_t)r) {
            const int32_t c = (int32_t)(pos[q - 1] - (uint64_t)r * n_in);
            while (k >= k0 && e.col[k] > c) { /* old entries right of the new one */
                dst--;
                entry_move(&e, dst, k);
                k--;
            }
            dst--;
            q--;
            e.col[dst] = c;
            e.val[dst] = newval[q];
            e.grad[dst] = 0.0f;
            for (int s = 0; s < e.ns; s++)
                e.st[s][dst] = 0.0f;
        }
        if (dst != k + 1) { /* shift the rest of the row */
            for (; k >= k0; k--) {
                dst--;
                entry_move(&e, dst, k);
            }
        } else {
            dst = k0;
        }
        old_next = k0;
    }
    free(newval);
    S->nnz += m;
    sp_topology_changed(S);
    note_grow(S, m);
    return DSNN_OK;
}

static bool is_active(const struct sp_linear *S, int r, int c)
{
    return sp_find(S, r, c) >= 0;
}

static enum dsnn_status check_growable(struct sp_linear *S, size_t count,
                                       struct dsnn_error *err)
{
    const uint64_t total = (uint64_t)S->n_in * (uint64_t)S->n_out;
    if ((uint64_t)count > total - S->nnz)
        return dsnn_error_set(err, DSNN_ERR_INVALID,
                              "layer '%s': cannot grow %zu connections, only %llu are inactive",
                              S->base.name, count, (unsigned long long)(total - S->nnz));
    if (S->nnz + count > UINT32_MAX)
        return dsnn_error_set(err, DSNN_ERR_INVALID,
                              "layer '%s': %zu connections exceed the limit of 2^32 - 1",
                              S->base.name, S->nnz + count);
    return DSNN_OK;
}

/* The layer behind l if count connections can be grown into it, else NULL with *st set. A
 * growth of 0 is done here (recorded as an empty growth: *st DSNN_OK, NULL returned). */
static struct sp_linear *grow_target(struct dsnn_layer *l, size_t count, struct dsnn_rng *rng,
                                     enum dsnn_status *st, struct dsnn_error *err)
{
    struct sp_linear *S = get(l, err);
    *st = S ? check_growable(S, count, err) : DSNN_ERR_INVALID;
    if (*st == DSNN_OK && count == 0)
        *st = grow_apply(S, NULL, 0, rng, err);
    return *st == DSNN_OK && count > 0 ? S : NULL;
}

/* Sorts the m positions, merges them into the layer and frees pos; with check_twice, a position
 * listed twice is an error (the smallest such is named). */
static enum dsnn_status grow_positions(struct sp_linear *S, uint64_t *pos, size_t m,
                                       bool check_twice, struct dsnn_rng *rng,
                                       struct dsnn_error *err)
{
    const uint64_t n_in = (uint64_t)S->n_in;
    if (!sp_sort_u64(pos, m, n_in * (uint64_t)S->n_out)) {
        free(pos);
        return dsnn_error_set(err, DSNN_ERR_NOMEM, "out of memory");
    }
    for (size_t i = 1; check_twice && i < m; i++)
        if (pos[i] == pos[i - 1]) {
            const uint64_t dup = pos[i];
            free(pos);
            return dsnn_error_set(err, DSNN_ERR_INVALID,
                                  "layer '%s': connection (%d, %d) is listed twice", S->base.name,
                                  (int)(dup / n_in), (int)(dup % n_in));
        }
    enum dsnn_status st = grow_apply(S, pos, m, rng, err);
    free(pos);
    return st;
}

enum dsnn_status dsnn_sparse_grow_random(struct dsnn_layer *l, size_t count, struct dsnn_rng *rng,
                                         struct dsnn_error *err)
{
    enum dsnn_status st;
    struct sp_linear *S = grow_target(l, count, rng, &st, err);
    if (!S)
        return st;
    if (!rng)
        return dsnn_error_set(err, DSNN_ERR_INVALID, "layer '%s': random growth needs an rng",
                              l->name);
    const uint64_t total = (uint64_t)S->n_in * (uint64_t)S->n_out;
    const uint64_t n_in = (uint64_t)S->n_in;
    uint64_t *pos = NULL;
    if ((uint64_t)(S->nnz + count) <= total / 2) {
        /* rejection: at most half the matrix is taken, so < 2 draws per accepted one */
        struct sp_hashset h;
        pos = malloc(count * sizeof *pos);
        if (!pos || !sp_hashset_init(&h, count)) {
            free(pos);
            return dsnn_error_set(err, DSNN_ERR_NOMEM, "out of memory");
        }
        size_t m = 0;
        while (m < count) {
            uint64_t p = dsnn_rng_below(rng, total);
            uint64_t r = p / n_in;
            if (is_active(S, (int)r, (int)(p - r * n_in)))
                continue;
            if (sp_hashset_insert(&h, p))
                pos[m++] = p;
        }
        sp_hashset_free(&h);
    } else {
        /* dense regime: enumerate the inactive positions (fewer than 2 (nnz + count) cells)
         * and take a uniform subset with a partial Fisher-Yates shuffle */
        const uint64_t inactive = total - S->nnz;
        pos = malloc((size_t)inactive * sizeof *pos);
        if (!pos)
            return dsnn_error_set(err, DSNN_ERR_NOMEM, "out of memory");
        size_t n = 0;
        for (int r = 0; r < S->n_out; r++) {
            int64_t k = S->row_ptr[r];
            for (int c = 0; c < S->n_in; c++) {
                if (k < S->row_ptr[r + 1] && S->col[k] == c) {
                    k++;
                    continue;
                }
                pos[n++] = (uint64_t)r * n_in + (uint64_t)c;
            }
        }
        for (size_t i = 0; i < count; i++) {
            size_t j = i + (size_t)dsnn_rng_below(rng, inactive - i);
            uint64_t t = pos[i];
            pos[i] = pos[j];
            pos[j] = t;
        }
    }
    return grow_positions(S, pos, count, false, rng, err);
}

enum dsnn_status dsnn_sparse_grow_at(struct dsnn_layer *l, const int32_t *rows,
                                     const int32_t *cols, size_t count, struct dsnn_rng *rng,
                                     struct dsnn_error *err)
{
    enum dsnn_status st;
    struct sp_linear *S = grow_target(l, count, rng, &st, err);
    if (!S)
        return st;
    uint64_t *pos = malloc(count * sizeof *pos);
    if (!pos)
        return dsnn_error_set(err, DSNN_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < count; i++) {
        if (rows[i] < 0 || rows[i] >= S->n_out || cols[i] < 0 || cols[i] >= S->n_in) {
            free(pos);
            return dsnn_error_set(err, DSNN_ERR_INVALID,
                                  "layer '%s': connection (%d, %d) outside %d x %d", l->name,
                                  rows[i], cols[i], S->n_out, S->n_in);
        }
        if (is_active(S, rows[i], cols[i])) {
            free(pos);
            return dsnn_error_set(err, DSNN_ERR_INVALID,
                                  "layer '%s': connection (%d, %d) is already active", l->name,
                                  rows[i], cols[i]);
        }
        pos[i] = (uint64_t)rows[i] * (uint64_t)S->n_in + (uint64_t)cols[i];
    }
    return grow_positions(S, pos, count, true, rng, err);
}

/* Min-heap of the best candidates so far; the root is the worst (lowest score, then highest
 * position). */
struct cand {
    float s;
    uint64_t p;
};

static inline bool worse(struct cand a, struct cand b)
{
    return a.s < b.s || (a.s == b.s && a.p > b.p);
}

static void heap_sift_down(struct cand *h, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, m = i;
        if (l < n && worse(h[l], h[m]))
            m = l;
        if (l + 1 < n && worse(h[l + 1], h[m]))
            m = l + 1;
        if (m == i)
            return;
        struct cand t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

static void heap_push(struct cand *h, size_t *n, struct cand c)
{
    size_t i = (*n)++;
    h[i] = c;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!worse(h[i], h[p]))
            break;
        struct cand t = h[i];
        h[i] = h[p];
        h[p] = t;
        i = p;
    }
}

enum dsnn_status dsnn_sparse_grow_score(struct dsnn_layer *l, size_t count,
                                        dsnn_sparse_score_fn fn, void *user,
                                        struct dsnn_rng *rng, struct dsnn_error *err)
{
    enum dsnn_status st;
    struct sp_linear *S = grow_target(l, count, rng, &st, err);
    if (!S)
        return st;
    if (!fn)
        return dsnn_error_set(err, DSNN_ERR_INVALID, "layer '%s': NULL score function", l->name);
    const int n_in = S->n_in, n_out = S->n_out;
    int tile = (int)((1u << 20) / (unsigned)n_in);
    if (tile < 1)
        tile = 1;
    if (tile > n_out)
        tile = n_out;
    float *buf = malloc(sizeof(float) * (size_t)tile * (size_t)n_in);
    struct cand *heap = malloc(count * sizeof *heap);
    if (!buf || !heap) {
        free(buf);
        free(heap);
        return dsnn_error_set(err, DSNN_ERR_NOMEM, "out of memory");
    }
    size_t hn = 0;
    for (int r0 = 0; r0 < n_out && st == DSNN_OK; r0 += tile) {
        const int r1 = r0 + tile < n_out ? r0 + tile : n_out;
        if ((st = fn(user, l, r0, r1, buf, err)) != DSNN_OK)
            break;
        for (int r = r0; r < r1; r++) {
            const float *s = buf + (size_t)(r - r0) * n_in;
            int64_t k = S->row_ptr[r];
            const int64_t k1 = S->row_ptr[r + 1];
            for (int c = 0; c < n_in; c++) {
                if (k < k1 && S->col[k] == c) {
                    k++;
                    continue;
                }
                float v = s[c];
                if (v != v)
                    v = -INFINITY;
                if (hn < count) {
                    heap_push(heap, &hn, (struct cand){v, (uint64_t)r * (uint64_t)n_in + c});
                } else if (v > heap[0].s) {
                    heap[0] = (struct cand){v, (uint64_t)r * (uint64_t)n_in + c};
                    heap_sift_down(heap, hn, 0);
                }
            }
        }
    }
    free(buf);
    if (st != DSNN_OK) {
        free(heap);
        return st;
    }
    uint64_t *pos = malloc(hn * sizeof *pos);
    if (!pos) {
        free(heap);
        return dsnn_error_set(err, DSNN_ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < hn; i++)
        pos[i] = heap[i].p;
    free(heap);
    return grow_positions(S, pos, hn, false, rng, err);
}

static enum dsnn_status abs_grad_score(void *user, struct dsnn_layer *l, int row0, int row1,
                                       float *out, struct dsnn_error *err)
{
    (void)user;
    enum dsnn_status st = dsnn_sparse_dense_grad_rows(l, row0, row1, out, err);
    if (st != DSNN_OK)
        return st;
    const size_t n = (size_t)(row1 - row0) * (size_t)((struct sp_linear *)l)->n_in;
    for (size_t i = 0; i < n; i++)
        out[i] = fabsf(out[i]);
    return DSNN_OK;
}

enum dsnn_status dsnn_sparse_grow_gradient(struct dsnn_layer *l, size_t count,
                                           struct dsnn_rng *rng, struct dsnn_error *err)
{
    struct sp_linear *S = get(l, err);
    if (!S)
        return DSNN_ERR_INVALID;
    if (count > 0 && !sp_dense_grad_valid(S))
        return dsnn_error_set(err, DSNN_ERR_INVALID,
                              "layer '%s': gradient growth needs the gradients of a backward "
                              "(call it between backward and the next forward%s)",
                              l->name,
                              S->ext_owned ? "; for a sparse convolution, a backward with "
                                             "keep_dense_grad on"
                                           : "");
    return dsnn_sparse_grow_score(l, count, abs_grad_score, NULL, rng, err);
}

enum dsnn_status dsnn_sparse_set_nnz(struct dsnn_layer *l, size_t nnz, struct dsnn_rng *rng,
                                     struct dsnn_error *err)
{
    struct sp_linear *S = get(l, err);
    if (!S)
        return DSNN_ERR_INVALID;
    if (nnz < S->nnz)
        return dsnn_sparse_prune_magnitude(l, S->nnz - nnz, err);
    return dsnn_sparse_grow_random(l, nnz - S->nnz, rng, err);
}
