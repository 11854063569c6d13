/* dsnn/keys.h - configuration keys declared once: type, default, range, doc, and where the value
 * goes (in the spirit of GStreamer's GParamSpec).
 *
 * A component lists its keys in one table of struct dsnn_key_spec. The same table is what
 * `dsnn-host info` prints, what the host checks every trial's configuration against before any
 * trial starts (unknown keys, types, ranges and choices: exit 3 naming file:line and key), and
 * what the component reads its values through:
 *
 *     struct my_params { double weight_prune_perc; int64_t interval; const char *mode; };
 *     static const char *const modes[] = {"a", "b", NULL};
 *     static const struct dsnn_key_spec my_keys[] = {
 *         {.name = "plugin", .type = DSNN_KEY_STRING, .def_str = "mymodel", .doc = "this plugin"},
 *         DSNN_KEYS_FROM(dsnn_base_model_keys),       // the keys a shared reader owns
 *         {.name = "weight_prune_perc", .type = DSNN_KEY_FLOAT, .def = 0.3,
 *          DSNN_KEY_RANGE(0, 1), DSNN_KEY_AT(struct my_params, weight_prune_perc),
 *          .doc = "fraction pruned each round"},
 *     };
 *     DSNN_KEY_TABLE_DEFINE(static, my_table, my_keys);
 *     ...
 *     struct my_params p;
 *     if ((st = dsnn_keys_read(&my_table, cfg, &p, err))) return st;
 *
 * Where the value goes (DSNN_KEY_AT): an INT key into a signed or unsigned integer field of 1,
 * 2, 4 or 8 bytes (the range should exclude values the field cannot hold), FLOAT into a double
 * or a float, BOOL into a bool, STRING with choices into an int (the index of the choice, matched
 * case-insensitively), STRING without choices into a const char * (valid as long as the
 * configuration is). Keys without DSNN_KEY_AT (arrays, keys whose default depends on another
 * key, sub-groups) are read by the component itself; their range, if any, is still checked by
 * the host and by dsnn_keys_read. A range is closed: [min, max]; for arrays it applies to every
 * element. default_value overrides the text `info` prints for the default (e.g. "(the trial
 * seed)"); without it the text is written from def / def_str. */
#ifndef DSNN_KEYS_H
#define DSNN_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include "dsnn/config.h"
#include "dsnn/export.h"
#include "dsnn/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Values are part of the ABI: append only. */
enum dsnn_key_type {
    DSNN_KEY_INT = 0,
    DSNN_KEY_FLOAT,
    DSNN_KEY_BOOL,
    DSNN_KEY_STRING,
    DSNN_KEY_INT_ARRAY,
    DSNN_KEY_FLOAT_ARRAY,
    DSNN_KEY_FLOAT_OR_ARRAY,
    DSNN_KEY_GROUP, /* a sub-group whose content the plugin checks itself */
    DSNN_KEY_ANY,
    DSNN_KEY_INCLUDE, /* not a key: the keys of another table (.include), e.g. the base model's */
    DSNN_KEY_ALIAS    /* not a key: another name (.name) of the key .def_str, e.g. nupic's
                         (DSNN_KEY_ALIAS_OF); the host renames it before anything reads the
                         group, so the plugin reads the key by its own name only */
};
DSNN_API const char *dsnn_key_type_str(enum dsnn_key_type t);

struct dsnn_key_table;

/* One configuration key. Fields are only ever appended. */
struct dsnn_key_spec {
    const char *name;
    enum dsnn_key_type type;
    const char *default_value; /* printed default; NULL: from def / def_str, or "required" */
    const char *doc;
    double def;               /* default of INT, FLOAT, BOOL (0 / 1) and FLOAT_OR_ARRAY */
    const char *def_str;      /* default of STRING (NULL: none) */
    const char *const *choices; /* STRING: the allowed values, NULL-terminated; NULL: any */
    bool required;            /* no default: the key must be given */
    bool has_range;           /* INT, FLOAT, arrays (each element): value in [min, max] */
    double min, max;
    size_t offset, size;      /* size > 0: dsnn_keys_read stores the value at offset */
    const struct dsnn_key_table *include; /* DSNN_KEY_INCLUDE */
};

struct dsnn_key_table {
    const struct dsnn_key_spec *keys;
    size_t n;
};

#define DSNN_KEY_AT(T, field) .offset = offsetof(T, field), .size = sizeof(((T *)0)->field)
#define DSNN_KEY_RANGE(lo, hi) .has_range = true, .min = (lo), .max = (hi)
/* The key every component's table starts with: `plugin`, the component's name (a string
 * literal), which selects it. */
#define DSNN_KEY_PLUGIN(plugin_name)                                                              \
    {.name = "plugin", .type = DSNN_KEY_STRING, .def_str = (plugin_name), .doc = "this plugin"}
#define DSNN_KEYS_FROM(table) {.name = #table, .type = DSNN_KEY_INCLUDE, .include = &(table)}
/* alias (a string literal) is accepted for the key `key` of the same table (or of a table it
 * includes); why says where the name comes from, e.g. "nupic". Giving both is an error. */
#define DSNN_KEY_ALIAS_OF(alias, key, why)                                                        \
    {.name = (alias), .type = DSNN_KEY_ALIAS, .def_str = (key), .doc = why " name of '" key "'"}
#define DSNN_KEY_TABLE_DEFINE(storage, name, array)                                               \
    storage const struct dsnn_key_table name = {(array), sizeof(array) / sizeof((array)[0])}

/* Reads every key of t that has DSNN_KEY_AT into the struct at out (defaults for absent keys),
 * checking types, ranges and choices; a required key that is absent is an error. Keys of
 * included tables are not read (their owner reads them). Errors name file:line and the key. */
DSNN_API enum dsnn_status dsnn_keys_read(const struct dsnn_key_table *t,
                                         const struct dsnn_cfg *cfg, void *out,
                                         struct dsnn_error *err);
/* Checks the value of key k in group (if present) against its range and choices (not its
 * type: numbers of either kind are accepted here). DSNN_OK when absent. */
DSNN_API enum dsnn_status dsnn_key_check(const struct dsnn_key_spec *k,
                                         const struct dsnn_cfg *group, struct dsnn_error *err);
/* The default as `info` prints it ("0.3", "\"SGD\"", "true", "(required)" ...), like snprintf. */
DSNN_API size_t dsnn_key_default_text(const struct dsnn_key_spec *k, char *buf, size_t size);
/* The range as text ("[0, 1]", "one of \"SGD\", \"Adam\"", "" when none), like snprintf. */
DSNN_API size_t dsnn_key_range_text(const struct dsnn_key_spec *k, char *buf, size_t size);
/* Expands DSNN_KEY_INCLUDE entries (recursively, depth <= 8) into out (up to cap pointers);
 * returns the number of keys (may exceed cap: call again with more room). */
DSNN_API size_t dsnn_keys_flatten(const struct dsnn_key_spec *keys, size_t n,
                                  const struct dsnn_key_spec **out, size_t cap);
/* The key named name among keys (includes expanded), or NULL. */
DSNN_API const struct dsnn_key_spec *dsnn_keys_find(const struct dsnn_key_spec *keys, size_t n,
                                                    const char *name);

#ifdef __cplusplus
}
#endif
#endif
