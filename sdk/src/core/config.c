/* core/config.c - typed access to libconfig settings, with one error style for every plugin:
 * "FILE:LINE: key 'model.learning_rate': expected a number, got a string". */
#include "dsnn/config.h"
#include "dsnn/io.h"
#include "core/core_impl.h"

#include <errno.h>
#include <libconfig.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct dsnn_config_file {
    config_t cfg; /* first: a setting's config is its file */
    char *name;
    struct cfg_source src; /* the text parsed (@includes expanded) and its lines' origins */
};

/* A struct dsnn_cfg is a config_setting_t in disguise. */
static const config_setting_t *S(const struct dsnn_cfg *c)
{
    return (const config_setting_t *)c;
}
static const struct dsnn_cfg *C(const config_setting_t *s)
{
    return (const struct dsnn_cfg *)s;
}

static config_setting_t *member(const struct dsnn_cfg *cfg, const char *key)
{
    if (!cfg || !key || !config_setting_is_group(S(cfg)))
        return NULL;
    return config_setting_get_member(S(cfg), key);
}

/* Dotted path of a setting into buf ("model.hidden_sizes"); an element of a list or array is
 * "[i]" after its parent ("model.layers[0].size"). Returns the length written (or needed). */
static size_t path_into(const config_setting_t *s, char *buf, size_t size)
{
    const config_setting_t *parent = s ? config_setting_parent(s) : NULL;
    if (!parent) { /* the root */
        if (size)
            buf[0] = '\0';
        return 0;
    }
    size_t len = path_into(parent, buf, size);
    char *p = len < size ? buf + len : NULL;
    size_t room = len < size ? size - len : 0;
    const char *nm = config_setting_name(s);
    int w = nm ? snprintf(p, room, "%s%s", len ? "." : "", nm)
               : snprintf(p, room, "[%d]", config_setting_index(s));
    return len + (w > 0 ? (size_t)w : 0);
}

static void setting_path(const config_setting_t *s, char *buf, size_t size)
{
    if (size)
        path_into(s, buf, size);
}

const char *dsnn_cfg_path(const struct dsnn_cfg *cfg)
{
    static _Thread_local char buf[256];
    if (!cfg)
        return "";
    setting_path(S(cfg), buf, sizeof buf);
    return buf;
}

static void where_of(const config_setting_t *s, char *buf, size_t size)
{
    const char *file = s ? config_setting_source_file(s) : NULL;
    /* Parsed from text (or set by an override): fall back to the name given at load time.
     * struct dsnn_config_file starts with its config_t, so the setting's config is the file. */
    if (!file && s && s->config)
        file = ((const struct dsnn_config_file *)(const void *)s->config)->name;
    int line = s ? config_setting_source_line(s) : 0;
    if (s && s->config && !config_setting_source_file(s)) { /* parsed from its snapshot */
        const char *origin = cfg_source_origin(
            &((const struct dsnn_config_file *)(const void *)s->config)->src, line, &line);
        if (origin)
            file = origin;
    }
    if (file && line > 0)
        snprintf(buf, size, "%s:%d", file, line);
    else if (file)
        snprintf(buf, size, "%s", file);
    else if (line > 0)
        snprintf(buf, size, "line %d", line);
    else
        snprintf(buf, size, "<config>");
}

const char *dsnn_cfg_where(const struct dsnn_cfg *cfg, const char *key, char *buf, size_t size)
{
    const config_setting_t *s = key ? member(cfg, key) : NULL;
    where_of(s ? s : S(cfg), buf, size);
    return buf;
}

/* Full key name for messages: group path + key. */
static void key_name(const struct dsnn_cfg *cfg, const char *key, char *buf, size_t size)
{
    char path[256];
    if (cfg)
        setting_path(S(cfg), path, sizeof path);
    else
        path[0] = '\0';
    snprintf(buf, size, "%s%s%s", path, path[0] ? "." : "", key);
}

static const char *type_word(const config_setting_t *s)
{
    switch (config_setting_type(s)) {
    case CONFIG_TYPE_GROUP: return "a group";
    case CONFIG_TYPE_ARRAY: return "an array";
    case CONFIG_TYPE_LIST: return "a list";
    case CONFIG_TYPE_INT:
    case CONFIG_TYPE_INT64: return "an integer";
    case CONFIG_TYPE_FLOAT: return "a float";
    case CONFIG_TYPE_STRING: return "a string";
    case CONFIG_TYPE_BOOL: return "a boolean";
    default: return "an unknown type";
    }
}

static enum dsnn_status key_error(const struct dsnn_cfg *cfg, const char *key,
                                  struct dsnn_error *err, const char *fmt, ...)
    DSNN_PRINTF(4, 5);
static enum dsnn_status key_error(const struct dsnn_cfg *cfg, const char *key,
                                  struct dsnn_error *err, const char *fmt, ...)
{
    char where[300], name[300], what[600];
    dsnn_cfg_where(cfg, key, where, sizeof where);
    key_name(cfg, key, name, sizeof name);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return dsnn_error_set(err, DSNN_ERR_CONFIG, "%s: key '%s': %s", where, name, what);
}

static bool is_int(const config_setting_t *s)
{
    int t = config_setting_type(s);
    return t == CONFIG_TYPE_INT || t == CONFIG_TYPE_INT64;
}
static bool is_number(const config_setting_t *s)
{
    return is_int(s) || config_setting_type(s) == CONFIG_TYPE_FLOAT;
}
static double number_of(const config_setting_t *s)
{
    return is_int(s) ? (double)config_setting_get_int64(s) : config_setting_get_float(s);
}

const struct dsnn_cfg *dsnn_cfg_group(const struct dsnn_cfg *cfg, const char *key)
{
    config_setting_t *s = member(cfg, key);
    return s && config_setting_is_group(s) ? C(s) : NULL;
}

size_t cfg_key_count(const struct dsnn_cfg *cfg, const char *key)
{
    config_setting_t *s = member(cfg, key);
    return s && (config_setting_is_array(s) || config_setting_is_list(s))
               ? (size_t)config_setting_length(s)
               : 0;
}

enum dsnn_status cfg_key_error(const struct dsnn_cfg *cfg, const char *key,
                               struct dsnn_error *err, const char *what)
{
    return key_error(cfg, key, err, "%s", what);
}

bool dsnn_cfg_has(const struct dsnn_cfg *cfg, const char *key)
{
    return member(cfg, key) != NULL;
}

enum dsnn_status dsnn_cfg_int(const struct dsnn_cfg *cfg, const char *key, int64_t def,
                              int64_t *out, struct dsnn_error *err)
{
    config_setting_t *s = member(cfg, key);
    if (!s) {
        *out = def;
        return DSNN_OK;
    }
    if (!is_int(s)) {
        if (config_setting_type(s) == CONFIG_TYPE_FLOAT)
            return key_error(cfg, key, err, "expected an integer, got the float %g",
                             config_setting_get_float(s));
        return key_error(cfg, key, err, "expected an integer, got %s", type_word(s));
    }
    *out = config_setting_get_int64(s);
    return DSNN_OK;
}

enum dsnn_status dsnn_cfg_float(const struct dsnn_cfg *cfg, const char *key, double def,
                                double *out, struct dsnn_error *err)
{
    config_setting_t *s = member(cfg, key);
    if (!s) {
        *out = def;
        return DSNN_OK;
    }
    if (!is_number(s))
        return key_error(cfg, key, err, "expected a number, got %s", type_word(s));
    *out = number_of(s);
    return DSNN_OK;
}

/* The setting at key in *s, NULL when there is none (the caller's default applies); a setting of
 * another type than `type` is an error "expected <expected>, got ...". */
static enum dsnn_status member_of_type(const struct dsnn_cfg *cfg, const char *key, int type,
                                       const char *expected, config_setting_t **s,
                                       struct dsnn_error *err)
{
    *s = member(cfg, key);
    if (*s && config_setting_type(*s) != type)
        return key_error(cfg, key, err, "expected %s, got %s", expected, type_word(*s));
    return DSNN_OK;
}

enum dsnn_status dsnn_cfg_bool(const struct dsnn_cfg *cfg, const char *key, bool def, bool *out,
                               struct dsnn_error *err)
{
    config_setting_t *s;
    enum dsnn_status st = member_of_type(cfg, key, CONFIG_TYPE_BOOL, "true or false", &s, err);
    if (st == DSNN_OK)
        *out = s ? config_setting_get_bool(s) != 0 : def;
    return st;
}

enum dsnn_status dsnn_cfg_string(const struct dsnn_cfg *cfg, const char *key, const char *def,
                                 const char **out, struct dsnn_error *err)
{
    config_setting_t *s;
    enum dsnn_status st = member_of_type(cfg, key, CONFIG_TYPE_STRING, "a string", &s, err);
    if (st == DSNN_OK)
        *out = s ? config_setting_get_string(s) : def;
    return st;
}

enum dsnn_status dsnn_cfg_enum(const struct dsnn_cfg *cfg, const char *key, const char *def,
                               const char *const *choices, int *out_index,
                               struct dsnn_error *err)
{
    const char *v;
    enum dsnn_status st = dsnn_cfg_string(cfg, key, def, &v, err);
    if (st != DSNN_OK)
        return st;
    for (int i = 0; choices[i]; i++) {
        if (v && strcasecmp(v, choices[i]) == 0) {
            *out_index = i;
            return DSNN_OK;
        }
    }
    char list[512];
    size_t len = 0;
    list[0] = '\0';
    for (int i = 0; choices[i] && len < sizeof list; i++) {
        int w = snprintf(list + len, sizeof list - len, "%s\"%s\"", i ? ", " : "", choices[i]);
        if (w < 0)
            break;
        len += (size_t)w;
    }
    return key_error(cfg, key, err, "\"%s\" is not one of %s", v ? v : "(none)", list);
}

static enum dsnn_status number_array(const struct dsnn_cfg *cfg, const char *key, bool ints,
                                     int64_t *iout, double *fout, size_t max, size_t *n,
                                     struct dsnn_error *err)
{
    config_setting_t *s = member(cfg, key);
    *n = 0;
    if (!s)
        return DSNN_OK;
    if (!config_setting_is_aggregate(s) || config_setting_is_group(s))
        return key_error(cfg, key, err, "expected an array like [1, 2], got %s", type_word(s));
    int len = config_setting_length(s);
    if ((size_t)len > max)
        return key_error(cfg, key, err, "has %d values, at most %zu are supported", len, max);
    for (int i = 0; i < len; i++) {
        config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
        if (ints ? !is_int(e) : !is_number(e))
            return key_error(cfg, key, err, "element %d: expected %s, got %s", i,
                             ints ? "an integer" : "a number", type_word(e));
        if (ints)
            iout[i] = config_setting_get_int64(e);
        else
            fout[i] = number_of(e);
    }
    *n = (size_t)len;
    return DSNN_OK;
}

enum dsnn_status dsnn_cfg_int_array(const struct dsnn_cfg *cfg, const char *key, int64_t *out,
                                    size_t max, size_t *n, struct dsnn_error *err)
{
    return number_array(cfg, key, true, out, NULL, max, n, err);
}

enum dsnn_status dsnn_cfg_float_array(const struct dsnn_cfg *cfg, const char *key, double *out,
                                      size_t max, size_t *n, struct dsnn_error *err)
{
    return number_array(cfg, key, false, NULL, out, max, n, err);
}

enum dsnn_status dsnn_cfg_float_or_array(const struct dsnn_cfg *cfg, const char *key, double def,
                                         double *out, size_t max, size_t *n,
                                         struct dsnn_error *err)
{
    config_setting_t *s = member(cfg, key);
    if (!s || is_number(s)) {
        if (max < 1)
            return key_error(cfg, key, err, "no room for a value");
        out[0] = s ? number_of(s) : def;
        *n = 1;
        return DSNN_OK;
    }
    return number_array(cfg, key, false, NULL, out, max, n, err);
}

enum dsnn_status dsnn_cfg_check_range(const struct dsnn_cfg *cfg, const char *key, double value,
                                      double lo, double hi, struct dsnn_error *err)
{
    if (!(value >= lo && value <= hi))
        return key_error(cfg, key, err, "%g is out of range: must be in [%g, %g]", value, lo, hi);
    return DSNN_OK;
}

enum dsnn_status dsnn_cfg_count_error(const struct dsnn_cfg *cfg, const char *key, size_t got,
                                      const char *lead, size_t n, const char *items,
                                      const char *give, struct dsnn_error *err)
{
    return key_error(cfg, key, err, "%zu values for %s%zu %s (give %s)", got, lead ? lead : "", n,
                     items, give);
}

/* ---- files ---- */

static enum dsnn_status parse_error(struct dsnn_config_file *f, const char *name,
                                    struct dsnn_error *err)
{
    const char *file = config_error_file(&f->cfg);
    int line = config_error_line(&f->cfg);
    const char *text = config_error_text(&f->cfg);
    if (!file)
        file = cfg_source_origin(&f->src, line, &line);
    if (config_error_type(&f->cfg) == CONFIG_ERR_FILE_IO)
        return dsnn_error_set(err, DSNN_ERR_IO, "%s: cannot read the configuration file: %s",
                              name, text ? text : "I/O error");
    return dsnn_error_set(err, DSNN_ERR_CONFIG, "%s:%d: %s", file ? file : name, line,
                          text ? text : "syntax error");
}

/* libconfig 1.5 (Debian 12) keeps an integer literal without the L suffix in 32 bits: 4294967298
 * silently becomes 2. Before parsing, the snapshot (the text with its @includes expanded) is
 * scanned for integer literals outside strings and comments that do not fit 32 bits
 * (decimal beyond [-2^31, 2^31 - 1], hexadecimal beyond 0xffffffff) without the suffix: an error
 * naming the file, the line and the literal, and what to write. */
static bool lit_is_ident(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '.';
}

static enum dsnn_status scan_ints(const struct cfg_source *src, struct dsnn_error *err)
{
    const char *text = src->text;
    int line = 1;
    const char *p = text;
    while (*p) {
        const char c = *p;
        if (c == '\n') {
            line++, p++;
        } else if (c == '"') { /* string, with escapes */
            for (p++; *p && *p != '"'; p++) {
                if (*p == '\\' && p[1])
                    p++;
                if (*p == '\n')
                    line++;
            }
            if (*p)
                p++;
        } else if (c == '#' || (c == '/' && p[1] == '/')) {
            while (*p && *p != '\n')
                p++;
        } else if (c == '/' && p[1] == '*') {
            for (p += 2; *p && !(*p == '*' && p[1] == '/'); p++)
                if (*p == '\n')
                    line++;
            if (*p)
                p += 2;
        } else if ((c >= '0' && c <= '9') && (p == text || !lit_is_ident(p[-1]))) {
            const char *start = p > text && (p[-1] == '-' || p[-1] == '+') ? p - 1 : p;
            const bool hex = c == '0' && (p[1] == 'x' || p[1] == 'X');
            const char *q = hex ? p + 2 : p;
            while ((*q >= '0' && *q <= '9') ||
                   (hex && ((*q >= 'a' && *q <= 'f') || (*q >= 'A' && *q <= 'F'))))
                q++;
            const bool is_float = !hex && (*q == '.' || *q == 'e' || *q == 'E');
            if (!is_float && *q != 'L' && *q != 'l') {
                errno = 0;
                const unsigned long long v = strtoull(hex ? p + 2 : p, NULL, hex ? 16 : 10);
                const bool neg = *start == '-';
                const bool fits = errno == 0 && (hex ? v <= 0xffffffffull
                                                     : v <= (neg ? 2147483648ull : 2147483647ull));
                int at = line;
                const char *name = cfg_source_origin(src, line, &at);
                if (!fits)
                    return dsnn_error_set(err, DSNN_ERR_CONFIG,
                                          "%s:%d: integer %.*s does not fit 32 bits: write it "
                                          "with the L suffix (%.*sL) for a 64-bit value",
                                          name ? name : "<config>", at, (int)(q - start), start,
                                          (int)(q - start), start);
            }
            p = q;
            while (lit_is_ident(*p) || ((*p == '+' || *p == '-') && (p[-1] == 'e' || p[-1] == 'E')))
                p++;
        } else {
            p++;
        }
    }
    return DSNN_OK;
}

static struct dsnn_config_file *file_new(const char *name)
{
    struct dsnn_config_file *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    f->name = strdup(name ? name : "<config>");
    if (!f->name) {
        free(f);
        return NULL;
    }
    config_init(&f->cfg);
    config_set_options(&f->cfg, CONFIG_OPTION_SEMICOLON_SEPARATORS |
                                    CONFIG_OPTION_COLON_ASSIGNMENT_FOR_GROUPS |
                                    CONFIG_OPTION_OPEN_BRACE_ON_SEPARATE_LINE);
    return f;
}

/* Ends a load or parse of f: on success (read_result is CONFIG_TRUE) *out owns f; otherwise f
 * is freed and the error names name and the line. */
static enum dsnn_status file_finish(struct dsnn_config_file *f, int read_result, const char *name,
                                  struct dsnn_config_file **out, struct dsnn_error *err)
{
    if (read_result != CONFIG_TRUE) {
        enum dsnn_status st = parse_error(f, name, err);
        dsnn_config_file_free(f);
        return st;
    }
    *out = f;
    return DSNN_OK;
}

/* Parses f->src (the snapshot) into f; on failure f is freed. */
static enum dsnn_status file_parse_source(struct dsnn_config_file *f, bool scan,
                                          struct dsnn_config_file **out, struct dsnn_error *err)
{
    enum dsnn_status st = scan ? scan_ints(&f->src, err) : DSNN_OK;
    if (st != DSNN_OK) {
        dsnn_config_file_free(f);
        return st;
    }
    return file_finish(f, config_read_string(&f->cfg, f->src.text), f->name, out, err);
}

enum dsnn_status dsnn_config_file_load(const char *path, struct dsnn_config_file **out,
                                       struct dsnn_error *err)
{
    *out = NULL;
    struct dsnn_config_file *f = file_new(path);
    if (!f)
        return dsnn_error_set(err, DSNN_ERR_NOMEM, "out of memory");
    enum dsnn_status st = cfg_source_from_file(&f->src, path, err);
    if (st != DSNN_OK) {
        dsnn_config_file_free(f);
        return st;
    }
    return file_parse_source(f, true, out, err);
}

enum dsnn_status dsnn_config_file_parse(const char *text, const char *name,
                                        struct dsnn_config_file **out, struct dsnn_error *err)
{
    *out = NULL;
    struct dsnn_config_file *f = file_new(name);
    if (!f)
        return dsnn_error_set(err, DSNN_ERR_NOMEM, "out of memory");
    enum dsnn_status st = cfg_source_from_text(&f->src, text, strlen(text), f->name, err);
    if (st != DSNN_OK) {
        dsnn_config_file_free(f);
        return st;
    }
    return file_parse_source(f, true, out, err);
}

enum dsnn_status dsnn_config_file_clone(const struct dsnn_config_file *f,
                                        struct dsnn_config_file **out, struct dsnn_error *err)
{
    *out = NULL;
    struct dsnn_config_file *g = file_new(f->name);
    if (!g || cfg_source_copy(&g->src, &f->src) != DSNN_OK) {
        dsnn_config_file_free(g);
        return dsnn_error_set(err, DSNN_ERR_NOMEM, "out of memory");
    }
    return file_parse_source(g, false, out, err);
}

const char *dsnn_config_file_text(const struct dsnn_config_file *f, size_t *len)
{
    if (len)
        *len = f ? f->src.len : 0;
    return f ? f->src.text : NULL;
}

void dsnn_config_file_free(struct dsnn_config_file *f)
{
    if (!f)
        return;
    config_destroy(&f->cfg);
    cfg_source_free(&f->src);
    free(f->name);
    free(f);
}

const struct dsnn_cfg *dsnn_config_file_root(const struct dsnn_config_file *f)
{
    return f ? C(config_root_setting(&f->cfg)) : NULL;
}

enum dsnn_status dsnn_config_file_write(const struct dsnn_config_file *f, const char *path,
                                        struct dsnn_error *err)
{
    if (config_write_file((config_t *)&f->cfg, path) != CONFIG_TRUE)
        return dsnn_error_set(err, DSNN_ERR_IO, "%s: cannot write the configuration", path);
    return DSNN_OK;
}

size_t dsnn_cfg_count(const struct dsnn_cfg *cfg)
{
    if (!cfg || !config_setting_is_aggregate(S(cfg)))
        return 0;
    return (size_t)config_setting_length(S(cfg));
}

const struct dsnn_cfg *dsnn_cfg_child(const struct dsnn_cfg *cfg, size_t i)
{
    if (i >= dsnn_cfg_count(cfg))
        return NULL;
    return C(config_setting_get_elem(S(cfg), (unsigned)i));
}

const char *dsnn_cfg_child_name(const struct dsnn_cfg *cfg, size_t i)
{
    const struct dsnn_cfg *c = dsnn_cfg_child(cfg, i);
    return c ? config_setting_name(S(c)) : NULL;
}

enum dsnn_cfg_type dsnn_cfg_type(const struct dsnn_cfg *setting)
{
    if (!setting)
        return DSNN_CFG_NONE;
    switch (config_setting_type(S(setting))) {
    case CONFIG_TYPE_GROUP: return DSNN_CFG_GROUP;
    case CONFIG_TYPE_ARRAY: return DSNN_CFG_ARRAY;
    case CONFIG_TYPE_LIST: return DSNN_CFG_LIST;
    case CONFIG_TYPE_INT:
    case CONFIG_TYPE_INT64: return DSNN_CFG_INT;
    case CONFIG_TYPE_FLOAT: return DSNN_CFG_FLOAT;
    case CONFIG_TYPE_STRING: return DSNN_CFG_STRING;
    case CONFIG_TYPE_BOOL: return DSNN_CFG_BOOL;
    default: return DSNN_CFG_NONE;
    }
}

const char *dsnn_cfg_name(const struct dsnn_cfg *setting)
{
    return setting ? config_setting_name(S(setting)) : NULL;
}

const struct dsnn_cfg *dsnn_config_file_lookup(const struct dsnn_config_file *f, const char *path)
{
    return f ? C(config_lookup(&f->cfg, path)) : NULL;
}

/* ---- setting values (search overrides) ---- */

/* Integers keep their libconfig type (INT or INT64): the elements of an array must all have
 * the same type, and only INT64 is written with the "L" that makes libconfig read values beyond
 * 32 bits back unchanged. */
static bool fits_int32(int64_t v)
{
    return v >= INT32_MIN && v <= INT32_MAX;
}

static bool copy_into(config_setting_t *dst, const config_setting_t *src)
{
    switch (config_setting_type(src)) {
    case CONFIG_TYPE_INT: return config_setting_set_int(dst, config_setting_get_int(src));
    case CONFIG_TYPE_INT64: return config_setting_set_int64(dst, config_setting_get_int64(src));
    case CONFIG_TYPE_FLOAT: return config_setting_set_float(dst, config_setting_get_float(src));
    case CONFIG_TYPE_BOOL: return config_setting_set_bool(dst, config_setting_get_bool(src));
    case CONFIG_TYPE_STRING: return config_setting_set_string(dst, config_setting_get_string(src));
    case CONFIG_TYPE_GROUP:
    case CONFIG_TYPE_ARRAY:
    case CONFIG_TYPE_LIST: {
        int n = config_setting_length(src);
        bool group = config_setting_is_group(src);
        for (int i = 0; i < n; i++) {
            const config_setting_t *e = config_setting_get_elem(src, (unsigned)i);
            config_setting_t *d = config_setting_add(dst, group ? config_setting_name(e) : NULL,
                                                     config_setting_type(e));
            if (!d || !copy_into(d, e))
                return false;
        }
        return true;
    }
    default: return false;
    }
}

enum dsnn_status dsnn_config_file_rename(struct dsnn_config_file *f, const char *group,
                                         const char *from, const char *to,
                                         struct dsnn_error *err)
{
    config_setting_t *g = group && *group ? config_lookup(&f->cfg, group)
                                          : config_root_setting(&f->cfg);
    config_setting_t *src = g && config_setting_is_group(g) ? config_setting_get_member(g, from)
                                                            : NULL;
    if (!src)
        return DSNN_OK;
    char where[300], name[300];
    if (config_setting_get_member(g, to)) {
        where_of(src, where, sizeof where);
        key_name(C(g), to, name, sizeof name);
        return dsnn_error_set(err, DSNN_ERR_CONFIG,
                              "%s: key '%s' and its other name '%s' are both given: keep one",
                              where, name, from);
    }
    config_setting_t *dst = config_setting_add(g, to, config_setting_type(src));
    if (!dst || !copy_into(dst, src))
        return dsnn_error_set(err, DSNN_ERR_NOMEM, "out of memory");
    dst->line = src->line;
    dst->file = src->file;
    config_setting_remove(g, from);
    return DSNN_OK;
}

enum dsnn_status dsnn_config_file_set(struct dsnn_config_file *f, const char *path,
                                      const struct dsnn_value *value, struct dsnn_error *err)
{
    char buf[DSNN_ERROR_MSG_MAX];
    if (!path || !*path || strlen(path) >= sizeof buf)
        return dsnn_error_set(err, DSNN_ERR_INVALID, "invalid configuration path");
    strcpy(buf, path);
    config_setting_t *parent = config_root_setting(&f->cfg);
    char *save = NULL;
    char *tok = strtok_r(buf, ".", &save);
    while (tok) {
        char *next = strtok_r(NULL, ".", &save);
        if (!config_setting_is_group(parent))
            return dsnn_error_set(err, DSNN_ERR_CONFIG,
                                  "cannot set '%s': '%s' is not inside a group", path, tok);
        config_setting_t *s = config_setting_get_member(parent, tok);
        if (next) {
            if (!s)
                s = config_setting_add(parent, tok, CONFIG_TYPE_GROUP);
            if (!s)
                return dsnn_error_set(err, DSNN_ERR_CONFIG, "cannot set '%s': bad name '%s'",
                                      path, tok);
            parent = s;
        } else {
            int type;
            switch (value->type) {
            case DSNN_VALUE_INT:
                type = fits_int32(value->u.i) ? CONFIG_TYPE_INT : CONFIG_TYPE_INT64;
                break;
            case DSNN_VALUE_FLOAT: type = CONFIG_TYPE_FLOAT; break;
            case DSNN_VALUE_BOOL: type = CONFIG_TYPE_BOOL; break;
            case DSNN_VALUE_STRING: type = CONFIG_TYPE_STRING; break;
            case DSNN_VALUE_CFG: type = config_setting_type(S(value->u.cfg)); break;
            default: return dsnn_error_set(err, DSNN_ERR_INVALID, "bad value type for '%s'", path);
            }
            /* A value taken from this same configuration may lie inside the setting about to be
             * replaced, or contain the new setting's place: copy it aside first. */
            const config_setting_t *src = value->type == DSNN_VALUE_CFG ? S(value->u.cfg) : NULL;
            bool aside = src && src->config == &f->cfg;
            config_t tmp;
            if (aside) {
                config_init(&tmp);
                config_setting_t *t = config_setting_add(config_root_setting(&tmp), "v", type);
                if (!t || !copy_into(t, src)) {
                    config_destroy(&tmp);
                    return dsnn_error_set(err, DSNN_ERR_CONFIG, "cannot set '%s'", path);
                }
                src = t;
            }
            if (s && config_setting_remove(parent, tok) != CONFIG_TRUE) {
                if (aside)
                    config_destroy(&tmp);
                return dsnn_error_set(err, DSNN_ERR_INTERNAL, "cannot replace '%s'", path);
            }
            config_setting_t *d = config_setting_add(parent, tok, type);
            if (!d) {
                if (aside)
                    config_destroy(&tmp);
                return dsnn_error_set(err, DSNN_ERR_CONFIG, "cannot set '%s': bad name '%s'",
                                      path, tok);
            }
            bool ok = false;
            switch (value->type) {
            case DSNN_VALUE_INT:
                ok = type == CONFIG_TYPE_INT ? config_setting_set_int(d, (int)value->u.i)
                                             : config_setting_set_int64(d, value->u.i);
                break;
            case DSNN_VALUE_FLOAT: ok = config_setting_set_float(d, value->u.f); break;
            case DSNN_VALUE_BOOL: ok = config_setting_set_bool(d, value->u.b); break;
            case DSNN_VALUE_STRING: ok = config_setting_set_string(d, value->u.s); break;
            case DSNN_VALUE_CFG: ok = copy_into(d, src); break;
            }
            if (aside)
                config_destroy(&tmp);
            if (!ok)
                return dsnn_error_set(err, DSNN_ERR_CONFIG, "cannot set '%s'", path);
        }
        tok = next;
    }
    return DSNN_OK;
}

/* ---- text / JSON rendering ---- */

struct out {
    char *buf;
    size_t size, len;
};

static void put(struct out *o, const char *fmt, ...) DSNN_PRINTF(2, 3);
static void put(struct out *o, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(o->len < o->size ? o->buf + o->len : NULL,
                      o->len < o->size ? o->size - o->len : 0, fmt, ap);
    va_end(ap);
    if (w > 0)
        o->len += (size_t)w;
}

static void put_double(struct out *o, double v, bool json)
{
    char tmp[64];
    if (!isfinite(v)) {
        put(o, json ? "null" : "%g", v);
        return;
    }
    snprintf(tmp, sizeof tmp, "%.15g", v);
    if (strtod(tmp, NULL) != v)
        snprintf(tmp, sizeof tmp, "%.17g", v);
    /* libconfig needs a '.' or exponent to read a float back as a float. */
    if (!json && !strpbrk(tmp, ".eEn"))
        strcat(tmp, ".0");
    put(o, "%s", tmp);
}

/* JSON escapes other control characters as \u00XX, libconfig as \xXX. */
static void put_string(struct out *o, const char *s, bool json)
{
    put(o, "\"");
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            put(o, "\\%c", c);
        else if (c == '\n')
            put(o, "\\n");
        else if (c == '\t')
            put(o, "\\t");
        else if (c < 0x20)
            put(o, json ? "\\u%04x" : "\\x%02x", c);
        else
            put(o, "%c", c);
    }
    put(o, "\"");
}

static void render(struct out *o, const config_setting_t *s, bool json)
{
    switch (config_setting_type(s)) {
    case CONFIG_TYPE_INT: put(o, "%d", config_setting_get_int(s)); break;
    /* "L": libconfig reads a plain integer beyond 32 bits back truncated, and an array's
     * elements must keep one type. */
    case CONFIG_TYPE_INT64:
        put(o, json ? "%lld" : "%lldL", (long long)config_setting_get_int64(s));
        break;
    case CONFIG_TYPE_FLOAT: put_double(o, config_setting_get_float(s), json); break;
    case CONFIG_TYPE_BOOL: put(o, "%s", config_setting_get_bool(s) ? "true" : "false"); break;
    case CONFIG_TYPE_STRING: put_string(o, config_setting_get_string(s), json); break;
    case CONFIG_TYPE_ARRAY:
    case CONFIG_TYPE_LIST: {
        bool arr = config_setting_type(s) == CONFIG_TYPE_ARRAY;
        put(o, json || arr ? "[" : "(");
        int n = config_setting_length(s);
        for (int i = 0; i < n; i++) {
            if (i)
                put(o, ", ");
            render(o, config_setting_get_elem(s, (unsigned)i), json);
        }
        put(o, json || arr ? "]" : ")");
        break;
    }
    case CONFIG_TYPE_GROUP: {
        put(o, "{");
        int n = config_setting_length(s);
        for (int i = 0; i < n; i++) {
            const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
            if (json) {
                put(o, "%s", i ? ", " : "");
                put_string(o, config_setting_name(e), json);
                put(o, ": ");
            } else {
                put(o, " %s = ", config_setting_name(e));
            }
            render(o, e, json);
            if (!json)
                put(o, ";");
        }
        put(o, json ? "}" : " }");
        break;
    }
    default: put(o, json ? "null" : "0"); break;
    }
}

/* Renders setting (NULL: nothing) into buf as render does; the length it needs. */
static size_t render_into(const struct dsnn_cfg *setting, char *buf, size_t size, bool json)
{
    struct out o = {buf, size, 0};
    if (size)
        buf[0] = '\0';
    if (setting)
        render(&o, S(setting), json);
    return o.len;
}

size_t dsnn_cfg_to_json(const struct dsnn_cfg *setting, char *buf, size_t size)
{
    return render_into(setting, buf, size, true);
}

size_t dsnn_cfg_to_text(const struct dsnn_cfg *setting, char *buf, size_t size)
{
    return render_into(setting, buf, size, false);
}

static size_t value_render(const struct dsnn_value *v, char *buf, size_t size, bool json)
{
    struct out o = {buf, size, 0};
    if (size)
        buf[0] = '\0';
    switch (v->type) {
    case DSNN_VALUE_INT:
        put(&o, json || fits_int32(v->u.i) ? "%lld" : "%lldL", (long long)v->u.i);
        break;
    case DSNN_VALUE_FLOAT: put_double(&o, v->u.f, json); break;
    case DSNN_VALUE_BOOL: put(&o, "%s", v->u.b ? "true" : "false"); break;
    case DSNN_VALUE_STRING: put_string(&o, v->u.s, json); break;
    case DSNN_VALUE_CFG:
        if (v->u.cfg)
            render(&o, S(v->u.cfg), json);
        break;
    }
    return o.len;
}

size_t dsnn_value_to_json(const struct dsnn_value *v, char *buf, size_t size)
{
    return value_render(v, buf, size, true);
}

size_t dsnn_value_to_text(const struct dsnn_value *v, char *buf, size_t size)
{
    return value_render(v, buf, size, false);
}
