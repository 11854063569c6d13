/* layers/layer.c - parameter blocks, weight initialisation and helpers shared by all layers. */
#include "dsnn/io.h"
#include "dsnn/layer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum dsnn_status dsnn_param_block_alloc(struct dsnn_param_block *b, const char *name, size_t n)
{
    memset(b, 0, sizeof *b);
    snprintf(b->name, sizeof b->name, "%s", name);
    size_t cap = n ? n : 1;
    b->value = calloc(cap, sizeof(float));
    b->grad = calloc(cap, sizeof(float));
    if (!b->value || !b->grad) {
        dsnn_param_block_release(b);
        return DSNN_ERR_NOMEM;
    }
    b->n = n;
    b->capacity = cap;
    return DSNN_OK;
}

float *dsnn_param_block_state(struct dsnn_param_block *b, int slot)
{
    if (slot < 0 || slot >= DSNN_OPT_STATE_MAX)
        return NULL;
    if (!b->state[slot])
        b->state[slot] = calloc(b->capacity ? b->capacity : 1, sizeof(float));
    return b->state[slot];
}

void dsnn_param_block_release(struct dsnn_param_block *b)
{
    if (!b)
        return;
    free(b->value);
    free(b->grad);
    for (int i = 0; i < DSNN_OPT_STATE_MAX; i++)
        free(b->state[i]);
    b->value = b->grad = NULL;
    for (int i = 0; i < DSNN_OPT_STATE_MAX; i++)
        b->state[i] = NULL;
    b->n = b->capacity = 0;
}

float dsnn_weight_init_draw(enum dsnn_weight_init init, int fan_in, int fan_out, double std,
                            struct dsnn_rng *rng)
{
    double fi = fan_in > 0 ? fan_in : 1, fo = fan_out > 0 ? fan_out : 1;
    switch (init) {
    case DSNN_INIT_KAIMING_UNIFORM: {
        double bound = 1.0 / sqrt(fi);
        return (float)((2.0 * dsnn_rng_uniform(rng) - 1.0) * bound);
    }
    case DSNN_INIT_KAIMING_NORMAL: return (float)(dsnn_rng_normal(rng) * sqrt(2.0 / fi));
    case DSNN_INIT_XAVIER_UNIFORM: {
        double bound = sqrt(6.0 / (fi + fo));
        return (float)((2.0 * dsnn_rng_uniform(rng) - 1.0) * bound);
    }
    case DSNN_INIT_NORMAL: return (float)(dsnn_rng_normal(rng) * std);
    case DSNN_INIT_ZERO: return 0.0f;
    }
    return 0.0f;
}

bool dsnn_layer_is(const struct dsnn_layer *l, const char *type)
{
    return l && l->ops && l->ops->type && strcmp(l->ops->type, type) == 0;
}

size_t dsnn_layer_param_count(const struct dsnn_layer *l)
{
    size_t n = 0;
    for (size_t i = 0; l && i < l->n_params; i++)
        n += l->params[i].n;
    return n;
}

void dsnn_layer_release_params(struct dsnn_layer *l)
{
    for (size_t i = 0; i < l->n_params; i++)
        dsnn_param_block_release(&l->params[i]);
}

void dsnn_layer_free(struct dsnn_layer *l)
{
    if (!l || !l->ops)
        return;
    if (l->ops->destroy) {
        l->ops->destroy(l);
        return;
    }
    dsnn_layer_release_params(l);
    free(l);
}

enum dsnn_status dsnn_layer_init(struct dsnn_layer *l, struct dsnn_rng *rng,
                                 struct dsnn_error *err)
{
    enum dsnn_status st = l->ops->init ? l->ops->init(l, rng, err) : DSNN_OK;
    if (st == DSNN_OK)
        l->initialized = true;
    return st;
}

enum dsnn_status dsnn_layer_save(struct dsnn_layer *l, FILE *f, struct dsnn_error *err)
{
    if (l->ops->save)
        return l->ops->save(l, f, err);
    return l->n_params ? dsnn_layer_save_params(l, f, err) : DSNN_OK;
}

enum dsnn_status dsnn_layer_load(struct dsnn_layer *l, FILE *f, struct dsnn_error *err)
{
    if (l->ops->load)
        return l->ops->load(l, f, err);
    return l->n_params ? dsnn_layer_load_params(l, f, err) : DSNN_OK;
}

enum dsnn_status dsnn_layer_alloc_params(struct dsnn_layer *l, struct dsnn_param_block *blocks,
                                         size_t n_weight, size_t n_bias)
{
    dsnn_param_block_release(&blocks[0]);
    dsnn_param_block_release(&blocks[1]);
    if (dsnn_param_block_alloc(&blocks[0], "weight", n_weight) != DSNN_OK ||
        (n_bias && dsnn_param_block_alloc(&blocks[1], "bias", n_bias) != DSNN_OK)) {
        dsnn_param_block_release(&blocks[0]);
        return DSNN_ERR_NOMEM;
    }
    l->params = blocks;
    l->n_params = n_bias ? 2 : 1;
    return DSNN_OK;
}

enum dsnn_status dsnn_layer_save_params(struct dsnn_layer *l, FILE *f,
                                        struct dsnn_error *err)
{
    enum dsnn_status st = dsnn_io_write_u64(f, l->n_params, "parameter block count", err);
    for (size_t i = 0; st == DSNN_OK && i < l->n_params; i++) {
        const struct dsnn_param_block *b = &l->params[i];
        uint64_t mask = 0;
        for (int s = 0; s < DSNN_OPT_STATE_MAX; s++)
            if (b->state[s])
                mask |= 1u << s;
        if ((st = dsnn_io_write(f, b->name, sizeof b->name, "block name", err)) ||
            (st = dsnn_io_write_u64(f, b->n, "block size", err)) ||
            (st = dsnn_io_write_u64(f, mask, "state mask", err)) ||
            (st = dsnn_io_write(f, b->value, b->n * sizeof(float), "parameters", err)))
            break;
        for (int s = 0; st == DSNN_OK && s < DSNN_OPT_STATE_MAX; s++)
            if (b->state[s])
                st = dsnn_io_write(f, b->state[s], b->n * sizeof(float), "optimizer state", err);
    }
    return st;
}

enum dsnn_status dsnn_layer_load_params(struct dsnn_layer *l, FILE *f, struct dsnn_error *err)
{
    uint64_t n;
    enum dsnn_status st = dsnn_io_read_u64(f, &n, "parameter block count", err);
    if (st != DSNN_OK)
        return st;
    if (n != l->n_params)
        return dsnn_error_set(err, DSNN_ERR_FORMAT,
                              "layer '%s': checkpoint has %llu parameter blocks, layer has %zu",
                              l->name, (unsigned long long)n, l->n_params);
    for (size_t i = 0; i < l->n_params; i++) {
        struct dsnn_param_block *b = &l->params[i];
        char name[DSNN_LAYER_NAME_MAX];
        uint64_t bn, mask;
        if ((st = dsnn_io_read(f, name, sizeof name, "block name", err)) ||
            (st = dsnn_io_read_u64(f, &bn, "block size", err)) ||
            (st = dsnn_io_read_u64(f, &mask, "state mask", err)))
            return st;
        name[sizeof name - 1] = '\0';
        if (strcmp(name, b->name) != 0 || bn != b->n)
            return dsnn_error_set(err, DSNN_ERR_FORMAT,
                                  "layer '%s': checkpoint block '%s' (%llu values) does not match "
                                  "'%s' (%zu values)",
                                  l->name, name, (unsigned long long)bn, b->name, b->n);
        if ((st = dsnn_io_read(f, b->value, b->n * sizeof(float), "parameters", err)))
            return st;
        for (int s = 0; s < DSNN_OPT_STATE_MAX; s++) {
            if (!(mask & (1u << s))) {
                /* Not in the checkpoint (no optimizer step yet): a slot this layer has from
                 * earlier training must not survive the load. Zeroed state is fresh state. */
                if (b->state[s])
                    memset(b->state[s], 0, (b->capacity ? b->capacity : 1) * sizeof(float));
                continue;
            }
            float *state = dsnn_param_block_state(b, s);
            if (!state)
                return dsnn_error_set(err, DSNN_ERR_NOMEM, "out of memory");
            if ((st = dsnn_io_read(f, state, b->n * sizeof(float), "optimizer state", err)))
                return st;
        }
    }
    return DSNN_OK;
}

void *dsnn_layer_alloc(size_t size, const struct dsnn_layer_ops *ops, const char *name,
                       struct dsnn_shape in, struct dsnn_shape out, struct dsnn_error *err)
{
    struct dsnn_layer *l = size >= sizeof *l ? calloc(1, size) : NULL;
    if (!l) {
        dsnn_error_set(err, DSNN_ERR_NOMEM, "layer '%s': out of memory", name ? name : "?");
        return NULL;
    }
    l->ops = ops;
    snprintf(l->name, sizeof l->name, "%s", name ? name : "");
    l->in = in;
    l->out = out;
    return l;
}
