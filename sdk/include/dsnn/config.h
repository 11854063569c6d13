/* dsnn/config.h - typed access to the experiment configuration (libconfig underneath).
 *
 * A struct dsnn_cfg is an opaque handle on one group of the configuration tree (e.g. the
 * `model` group). Getters return DSNN_OK and the value, the default when the key is absent,
 * or DSNN_ERR_CONFIG with a message "FILE:LINE: key 'model.learning_rate': expected a number,
 * got a string" in err. Every plugin thus reports configuration errors in one style.
 * Strings returned are owned by the configuration and live as long as it. */
#ifndef DSNN_CONFIG_H
#define DSNN_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "dsnn/export.h"
#include "dsnn/status.h"

#ifdef __cplusplus
extern "C" {
#endif

struct dsnn_cfg; /* opaque: a group of the configuration */

/* Sub-group `key` of group, or NULL if absent (also NULL when cfg is NULL). */
DSNN_API const struct dsnn_cfg *dsnn_cfg_group(const struct dsnn_cfg *cfg, const char *key);
DSNN_API bool dsnn_cfg_has(const struct dsnn_cfg *cfg, const char *key);
/* Dotted path of the group ("model"), and "FILE:LINE" of a key (or of the group if key is NULL)
 * into buf; for messages. */
DSNN_API const char *dsnn_cfg_path(const struct dsnn_cfg *cfg);
DSNN_API const char *dsnn_cfg_where(const struct dsnn_cfg *cfg, const char *key, char *buf,
                                    size_t size);

/* Scalars. A missing key (or NULL cfg) yields the default. Integers are accepted where a float
 * is asked for; floats are refused where an integer is asked for. */
DSNN_API enum dsnn_status dsnn_cfg_int(const struct dsnn_cfg *cfg, const char *key, int64_t def,
                                       int64_t *out, struct dsnn_error *err);
DSNN_API enum dsnn_status dsnn_cfg_float(const struct dsnn_cfg *cfg, const char *key, double def,
                                         double *out, struct dsnn_error *err);
DSNN_API enum dsnn_status dsnn_cfg_bool(const struct dsnn_cfg *cfg, const char *key, bool def,
                                        bool *out, struct dsnn_error *err);
DSNN_API enum dsnn_status dsnn_cfg_string(const struct dsnn_cfg *cfg, const char *key,
                                          const char *def, const char **out,
                                          struct dsnn_error *err);
/* Checks that out is one of the NULL-terminated choices; error lists them. */
DSNN_API enum dsnn_status dsnn_cfg_enum(const struct dsnn_cfg *cfg, const char *key,
                                        const char *def, const char *const *choices,
                                        int *out_index, struct dsnn_error *err);

/* Arrays or lists of numbers: [1, 2] or (1, 2). *n receives the length; at most max values are
 * stored (more is an error naming the key). A missing key yields *n = 0 and DSNN_OK. */
DSNN_API enum dsnn_status dsnn_cfg_int_array(const struct dsnn_cfg *cfg, const char *key,
                                             int64_t *out, size_t max, size_t *n,
                                             struct dsnn_error *err);
DSNN_API enum dsnn_status dsnn_cfg_float_array(const struct dsnn_cfg *cfg, const char *key,
                                               double *out, size_t max, size_t *n,
                                               struct dsnn_error *err);
/* A float or an array of floats (e.g. on_perc per layer). A scalar yields n = 1. */
DSNN_API enum dsnn_status dsnn_cfg_float_or_array(const struct dsnn_cfg *cfg, const char *key,
                                                  double def, double *out, size_t max, size_t *n,
                                                  struct dsnn_error *err);

/* The error of a key that takes one value or one per item, given `got` values for n items:
 * DSNN_ERR_CONFIG "FILE:LINE: key 'PATH.KEY': GOT values for LEADN ITEMS (give GIVE)", e.g.
 * lead "the ", items "convolutions", give "one value or one per convolution". */
DSNN_API enum dsnn_status dsnn_cfg_count_error(const struct dsnn_cfg *cfg, const char *key,
                                               size_t got, const char *lead, size_t n,
                                               const char *items, const char *give,
                                               struct dsnn_error *err);

/* Range checks with the same message style ("must be in [lo, hi]"). */
DSNN_API enum dsnn_status dsnn_cfg_check_range(const struct dsnn_cfg *cfg, const char *key,
                                               double value, double lo, double hi,
                                               struct dsnn_error *err);

/* ---- Used by the host (not usually needed by plugins) ---- */

/* A parsed configuration file. Its @includes are expanded once, when it is loaded, into one
 * self-contained text, its snapshot (dsnn_config_file_text), which is what is parsed; messages
 * still name the file and line each setting came from. */
struct dsnn_config_file;
/* Reads and parses path; on syntax error returns DSNN_ERR_CONFIG with "FILE:LINE: message"; an
 * unreadable path is DSNN_ERR_IO. */
DSNN_API enum dsnn_status dsnn_config_file_load(const char *path, struct dsnn_config_file **out,
                                                struct dsnn_error *err);
/* Parses text (name is used in messages). */
DSNN_API enum dsnn_status dsnn_config_file_parse(const char *text, const char *name,
                                                 struct dsnn_config_file **out,
                                                 struct dsnn_error *err);
/* A new configuration parsed from f's snapshot (f as loaded, without later edits), reading no
 * file; messages name the same files and lines as f's. The caller frees *out. */
DSNN_API enum dsnn_status dsnn_config_file_clone(const struct dsnn_config_file *f,
                                                 struct dsnn_config_file **out,
                                                 struct dsnn_error *err);
/* f's snapshot: the text parsed, with @includes expanded (owned by f; *len its length). A text
 * without @include is its own snapshot, byte for byte. */
DSNN_API const char *dsnn_config_file_text(const struct dsnn_config_file *f, size_t *len);
DSNN_API void dsnn_config_file_free(struct dsnn_config_file *f);
DSNN_API const struct dsnn_cfg *dsnn_config_file_root(const struct dsnn_config_file *f);
DSNN_API enum dsnn_status dsnn_config_file_write(const struct dsnn_config_file *f,
                                                 const char *path, struct dsnn_error *err);

/* Number of direct children of a group, and the name of child i (NULL if out of range). */
DSNN_API size_t dsnn_cfg_count(const struct dsnn_cfg *cfg);
DSNN_API const char *dsnn_cfg_child_name(const struct dsnn_cfg *cfg, size_t i);
DSNN_API const struct dsnn_cfg *dsnn_cfg_child(const struct dsnn_cfg *cfg, size_t i);
/* Kind of a setting (group/array/list/scalar). */
enum dsnn_cfg_type {
    DSNN_CFG_NONE = 0,
    DSNN_CFG_GROUP,
    DSNN_CFG_ARRAY,
    DSNN_CFG_LIST,
    DSNN_CFG_INT,
    DSNN_CFG_FLOAT,
    DSNN_CFG_STRING,
    DSNN_CFG_BOOL
};
DSNN_API enum dsnn_cfg_type dsnn_cfg_type(const struct dsnn_cfg *setting);
DSNN_API const char *dsnn_cfg_name(const struct dsnn_cfg *setting);
/* A value proposed by a search strategy: a scalar, or a reference to any setting (e.g. an
 * array element of a grid, itself an array such as hidden_sizes = [100, 100]). */
enum dsnn_value_type {
    DSNN_VALUE_INT = 0,
    DSNN_VALUE_FLOAT,
    DSNN_VALUE_BOOL,
    DSNN_VALUE_STRING, /* u.s is owned by whoever made the value */
    DSNN_VALUE_CFG     /* u.cfg is owned by the configuration it belongs to */
};
struct dsnn_value {
    enum dsnn_value_type type;
    union {
        int64_t i;
        double f;
        bool b;
        const char *s;
        const struct dsnn_cfg *cfg;
    } u;
};
/* Sets (creating groups and the key as needed) the setting at dotted path in f to value
 * (deep copy). Used to apply search overrides. */
DSNN_API enum dsnn_status dsnn_config_file_set(struct dsnn_config_file *f, const char *path,
                                               const struct dsnn_value *value,
                                               struct dsnn_error *err);
/* Renames the setting `from` of the group at dotted path group ("" or NULL: the root) to `to`,
 * keeping its value and the file and line it came from. Absent: nothing. DSNN_ERR_CONFIG when
 * `to` is given too ("FILE:LINE: key 'g.to' and 'g.from' are both given ..."). */
DSNN_API enum dsnn_status dsnn_config_file_rename(struct dsnn_config_file *f, const char *group,
                                                  const char *from, const char *to,
                                                  struct dsnn_error *err);
/* Writes a value as JSON / libconfig text into buf (like snprintf). */
DSNN_API size_t dsnn_value_to_json(const struct dsnn_value *v, char *buf, size_t size);
DSNN_API size_t dsnn_value_to_text(const struct dsnn_value *v, char *buf, size_t size);
/* Setting at dotted path from the root, or NULL. */
DSNN_API const struct dsnn_cfg *dsnn_config_file_lookup(const struct dsnn_config_file *f,
                                                        const char *path);
/* Writes a setting's value as JSON (numbers, strings, booleans, arrays, objects) to buf.
 * Returns the number of characters needed (like snprintf). */
DSNN_API size_t dsnn_cfg_to_json(const struct dsnn_cfg *setting, char *buf, size_t size);
/* Writes a setting's value in libconfig syntax ("0.02", "[1, 2]", "\"x\"") to buf. */
DSNN_API size_t dsnn_cfg_to_text(const struct dsnn_cfg *setting, char *buf, size_t size);

#ifdef __cplusplus
}
#endif
#endif
