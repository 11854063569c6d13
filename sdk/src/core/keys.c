/* core/keys.c - key specs (dsnn/keys.h): reading values through the spec, range and choice
 * checks, the default and range as text, and the expansion of included tables. */
#include "dsnn/keys.h"
#include "core/core_impl.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define KEYS_MAX_DEPTH 8

static size_t text_out(char *buf, size_t size, const char *fmt, ...) DSNN_PRINTF(3, 4);
static size_t text_out(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(size ? buf : NULL, size, fmt, ap);
    va_end(ap);
    return w < 0 ? 0 : (size_t)w;
}

size_t dsnn_key_default_text(const struct dsnn_key_spec *k, char *buf, size_t size)
{
    if (k->type == DSNN_KEY_ALIAS)
        return text_out(buf, size, "= %s", k->def_str ? k->def_str : "?");
    if (k->default_value)
        return text_out(buf, size, "%s", k->default_value);
    if (k->required)
        return text_out(buf, size, "(required)");
    switch (k->type) {
    case DSNN_KEY_INT: return text_out(buf, size, "%" PRId64, (int64_t)k->def);
    case DSNN_KEY_FLOAT:
    case DSNN_KEY_FLOAT_OR_ARRAY: return text_out(buf, size, "%g", k->def);
    case DSNN_KEY_BOOL: return text_out(buf, size, "%s", k->def != 0 ? "true" : "false");
    case DSNN_KEY_STRING:
        return k->def_str ? text_out(buf, size, "\"%s\"", k->def_str) : text_out(buf, size, "none");
    case DSNN_KEY_INT_ARRAY:
    case DSNN_KEY_FLOAT_ARRAY: return text_out(buf, size, "[]");
    default: return text_out(buf, size, "%s", "");
    }
}

size_t dsnn_key_range_text(const struct dsnn_key_spec *k, char *buf, size_t size)
{
    if (k->type == DSNN_KEY_STRING && k->choices) {
        size_t len = 0;
        for (size_t i = 0; k->choices[i]; i++)
            len += text_out(buf ? buf + (len < size ? len : size) : NULL, len < size ? size - len : 0,
                            "%s\"%s\"", i ? ", " : "one of ", k->choices[i]);
        return len;
    }
    if (k->has_range && (k->type == DSNN_KEY_INT || k->type == DSNN_KEY_INT_ARRAY) &&
        fabs(k->min) < 9.2e18 && fabs(k->max) < 9.2e18)
        return text_out(buf, size, "[%" PRId64 ", %" PRId64 "]", (int64_t)k->min,
                        (int64_t)k->max); /* integers in full: [1, 1000000000] */
    if (k->has_range)
        return text_out(buf, size, "[%g, %g]", k->min, k->max);
    if (size)
        buf[0] = '\0';
    return 0;
}

static enum dsnn_status range_error(const struct dsnn_cfg *cfg, const char *key, double v,
                                    const struct dsnn_key_spec *k, struct dsnn_error *err)
{
    return dsnn_cfg_check_range(cfg, key, v, k->min, k->max, err);
}

/* Every element of an array key (or the scalar of a FLOAT_OR_ARRAY key) within the range. */
static enum dsnn_status check_elements(const struct dsnn_key_spec *k, const struct dsnn_cfg *cfg,
                                       struct dsnn_error *err)
{
    size_t cap = cfg_key_count(cfg, k->name) + 1, n = 0;
    double *v = malloc(cap * sizeof *v);
    if (!v)
        return dsnn_error_set(err, DSNN_ERR_NOMEM, "out of memory");
    enum dsnn_status st = dsnn_cfg_float_or_array(cfg, k->name, k->def, v, cap, &n, err);
    for (size_t i = 0; st == DSNN_OK && i < n; i++)
        st = range_error(cfg, k->name, v[i], k, err);
    free(v);
    return st;
}

enum dsnn_status dsnn_key_check(const struct dsnn_key_spec *k, const struct dsnn_cfg *group,
                                struct dsnn_error *err)
{
    if (!group || !dsnn_cfg_has(group, k->name))
        return DSNN_OK;
    enum dsnn_status st = DSNN_OK;
    switch (k->type) {
    case DSNN_KEY_INT:
    case DSNN_KEY_FLOAT:
        if (k->has_range) {
            double v;
            if ((st = dsnn_cfg_float(group, k->name, 0, &v, err)) == DSNN_OK)
                st = range_error(group, k->name, v, k, err);
        }
        break;
    case DSNN_KEY_STRING:
        if (k->choices) {
            int idx;
            st = dsnn_cfg_enum(group, k->name, NULL, k->choices, &idx, err);
        }
        break;
    case DSNN_KEY_INT_ARRAY:
    case DSNN_KEY_FLOAT_ARRAY:
    case DSNN_KEY_FLOAT_OR_ARRAY:
        if (k->has_range)
            st = check_elements(k, group, err);
        break;
    default: break;
    }
    return st;
}

static void store_int(void *p, size_t size, int64_t v)
{
    switch (size) {
    case 1: { int8_t x = (int8_t)v; memcpy(p, &x, 1); break; }
    case 2: { int16_t x = (int16_t)v; memcpy(p, &x, 2); break; }
    case 4: { int32_t x = (int32_t)v; memcpy(p, &x, 4); break; }
    default: memcpy(p, &v, 8); break;
    }
}

static enum dsnn_status read_one(const struct dsnn_key_spec *k, const struct dsnn_cfg *cfg,
                                 char *out, struct dsnn_error *err)
{
    enum dsnn_status st;
    if (k->required && !dsnn_cfg_has(cfg, k->name))
        return cfg_key_error(cfg, k->name, err, "required (no default), missing");
    switch (k->type) {
    case DSNN_KEY_INT: {
        int64_t v;
        if ((st = dsnn_cfg_int(cfg, k->name, (int64_t)k->def, &v, err)) ||
            (k->has_range && (st = range_error(cfg, k->name, (double)v, k, err))))
            return st;
        store_int(out + k->offset, k->size, v);
        return DSNN_OK;
    }
    case DSNN_KEY_FLOAT: {
        double v;
        if ((st = dsnn_cfg_float(cfg, k->name, k->def, &v, err)) ||
            (k->has_range && (st = range_error(cfg, k->name, v, k, err))))
            return st;
        if (k->size == sizeof(float)) {
            float f = (float)v;
            memcpy(out + k->offset, &f, sizeof f);
        } else {
            memcpy(out + k->offset, &v, sizeof v);
        }
        return DSNN_OK;
    }
    case DSNN_KEY_BOOL: {
        bool v;
        if ((st = dsnn_cfg_bool(cfg, k->name, k->def != 0, &v, err)))
            return st;
        memcpy(out + k->offset, &v, sizeof v);
        return DSNN_OK;
    }
    case DSNN_KEY_STRING: {
        if (k->choices) {
            int idx = 0;
            if ((st = dsnn_cfg_enum(cfg, k->name, k->def_str, k->choices, &idx, err)))
                return st;
            memcpy(out + k->offset, &idx, sizeof idx);
        } else {
            const char *v;
            if ((st = dsnn_cfg_string(cfg, k->name, k->def_str, &v, err)))
                return st;
            memcpy(out + k->offset, &v, sizeof v);
        }
        return DSNN_OK;
    }
    default:
        return dsnn_error_set(err, DSNN_ERR_INVALID, "key '%s': a %s key cannot be read into a field",
                              k->name, dsnn_key_type_str(k->type));
    }
}

enum dsnn_status dsnn_keys_read(const struct dsnn_key_table *t, const struct dsnn_cfg *cfg,
                                void *out, struct dsnn_error *err)
{
    for (size_t i = 0; i < t->n; i++) {
        const struct dsnn_key_spec *k = &t->keys[i];
        enum dsnn_status st;
        if (k->type == DSNN_KEY_INCLUDE || k->type == DSNN_KEY_ALIAS)
            continue;
        if (k->size > 0)
            st = read_one(k, cfg, out, err);
        else
            st = dsnn_key_check(k, cfg, err);
        if (st != DSNN_OK)
            return st;
    }
    return DSNN_OK;
}

static size_t flatten(const struct dsnn_key_spec *keys, size_t n, const struct dsnn_key_spec **out,
                      size_t cap, size_t at, int depth)
{
    for (size_t i = 0; i < n; i++) {
        if (keys[i].type == DSNN_KEY_INCLUDE) {
            if (keys[i].include && depth < KEYS_MAX_DEPTH)
                at = flatten(keys[i].include->keys, keys[i].include->n, out, cap, at, depth + 1);
            continue;
        }
        if (at < cap)
            out[at] = &keys[i];
        at++;
    }
    return at;
}

size_t dsnn_keys_flatten(const struct dsnn_key_spec *keys, size_t n,
                         const struct dsnn_key_spec **out, size_t cap)
{
    return flatten(keys, n, out, cap, 0, 0);
}

static const struct dsnn_key_spec *find(const struct dsnn_key_spec *keys, size_t n,
                                        const char *name, int depth)
{
    for (size_t i = 0; i < n; i++) {
        if (keys[i].type == DSNN_KEY_INCLUDE) {
            const struct dsnn_key_spec *k =
                keys[i].include && depth < KEYS_MAX_DEPTH
                    ? find(keys[i].include->keys, keys[i].include->n, name, depth + 1)
                    : NULL;
            if (k)
                return k;
        } else if (keys[i].name && strcmp(keys[i].name, name) == 0) {
            return &keys[i];
        }
    }
    return NULL;
}

const struct dsnn_key_spec *dsnn_keys_find(const struct dsnn_key_spec *keys, size_t n,
                                           const char *name)
{
    return find(keys, n, name, 0);
}
