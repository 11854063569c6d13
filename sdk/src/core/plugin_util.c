/* core/plugin_util.c - names of ABI enums and search parameter sets. */
#include "dsnn/plugin.h"

#include <string.h>

const char *dsnn_kind_str(enum dsnn_kind k)
{
    switch (k) {
    case DSNN_KIND_DATASET: return "dataset";
    case DSNN_KIND_NETWORK: return "network";
    case DSNN_KIND_MODEL: return "model";
    case DSNN_KIND_SEARCH: return "search";
    }
    return "unknown";
}

const char *dsnn_key_type_str(enum dsnn_key_type t)
{
    switch (t) {
    case DSNN_KEY_INT: return "int";
    case DSNN_KEY_FLOAT: return "float";
    case DSNN_KEY_BOOL: return "bool";
    case DSNN_KEY_STRING: return "string";
    case DSNN_KEY_INT_ARRAY: return "int[]";
    case DSNN_KEY_FLOAT_ARRAY: return "float[]";
    case DSNN_KEY_FLOAT_OR_ARRAY: return "float|float[]";
    case DSNN_KEY_GROUP: return "group";
    case DSNN_KEY_ANY: return "any";
    case DSNN_KEY_INCLUDE: return "include";
    case DSNN_KEY_ALIAS: return "alias";
    }
    return "unknown";
}

enum dsnn_status dsnn_param_set_put(struct dsnn_param_set *s, const char *path,
                                    const struct dsnn_value *v, struct dsnn_error *err)
{
    if (strlen(path) >= DSNN_PARAM_PATH_MAX)
        return dsnn_error_set(err, DSNN_ERR_INVALID, "parameter path too long: %s", path);
    for (size_t i = 0; i < s->n; i++) {
        if (strcmp(s->items[i].path, path) == 0) {
            s->items[i].value = *v;
            return DSNN_OK;
        }
    }
    if (s->n >= DSNN_PARAMS_MAX)
        return dsnn_error_set(err, DSNN_ERR_INVALID,
                              "too many searched parameters (at most %d)", DSNN_PARAMS_MAX);
    strcpy(s->items[s->n].path, path);
    s->items[s->n].value = *v;
    s->n++;
    return DSNN_OK;
}
