/* host/registry.c - plugin loading, ABI and descriptor checks, (kind, name) index. */
#define _XOPEN_SOURCE 700 /* strdup */
#include "registry.h"
#include "elf_check.h"
#include "json.h"

#include <ctype.h>
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

/* A loaded plugin file (or an in-memory descriptor added with dsnn_registry_add). */
struct plugin_file {
    void *handle; /* dlopen handle; NULL for dsnn_registry_add */
    char *path;   /* owned */
    const struct dsnn_plugin *desc;
};

struct dsnn_registry {
    struct plugin_file *files;
    size_t n_files, cap_files;
    struct dsnn_registry_entry **entries; /* each malloc'd: stable addresses; sorted */
    size_t n_entries, cap_entries;
    struct dsnn_error *errors;
    size_t n_errors, cap_errors;
    char **dirs;
    size_t n_dirs, cap_dirs;
    struct dsnn_error *warnings; /* unsafe files loaded anyway (allow_unsafe) */
    size_t n_warnings, cap_warnings;
    int *fds; /* files dlopen mapped through /proc/self/fd/N: open until free (see hold_fd) */
    size_t n_fds, cap_fds;
    bool allow_unsafe;
};

/* Largest plugin file read (whole, to check its ELF structure before dlopen). */
#define DSNN_PLUGIN_MAX_BYTES (1ull << 30)

/* ---- small helpers ---- */

/* Grows an array p of *cap elements (elem bytes each) to hold at least need elements. Returns
 * the (possibly moved) array, or NULL when out of memory (p is then unchanged). */
static void *grow(void *p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap && p)
        return p;
    size_t ncap = *cap ? *cap * 2 : 8;
    while (ncap < need)
        ncap *= 2;
    void *q = realloc(p, ncap * elem);
    if (q)
        *cap = ncap;
    return q;
}


static const char *kind_plural(enum dsnn_kind k)
{
    switch (k) {
    case DSNN_KIND_DATASET: return "datasets";
    case DSNN_KIND_NETWORK: return "networks";
    case DSNN_KIND_MODEL: return "models";
    case DSNN_KIND_SEARCH: return "search strategies";
    }
    return "components";
}

static bool kind_known(int k)
{
    return k == DSNN_KIND_DATASET || k == DSNN_KIND_NETWORK || k == DSNN_KIND_MODEL ||
           k == DSNN_KIND_SEARCH;
}

size_t dsnn_registry_ops_size(enum dsnn_kind kind)
{
    switch (kind) {
    case DSNN_KIND_DATASET: return sizeof(struct dsnn_dataset_ops);
    case DSNN_KIND_NETWORK: return sizeof(struct dsnn_network_ops);
    case DSNN_KIND_MODEL: return sizeof(struct dsnn_model_ops);
    case DSNN_KIND_SEARCH: return sizeof(struct dsnn_search_ops);
    }
    return 0;
}

bool dsnn_registry_kind_parse(const char *s, enum dsnn_kind *out)
{
    /* a kind's name (dsnn_kind_str) or its plural: "datasets" ... "searches" */
    if (!s)
        return false;
    for (int k = DSNN_KIND_DATASET; k <= DSNN_KIND_SEARCH; k++) {
        const char *name = dsnn_kind_str((enum dsnn_kind)k);
        const size_t n = strlen(name);
        if (strncmp(s, name, n) != 0)
            continue;
        if (s[n] == '\0' || strcmp(s + n, k == DSNN_KIND_SEARCH ? "es" : "s") == 0) {
            if (out)
                *out = (enum dsnn_kind)k;
            return true;
        }
    }
    return false;
}

void dsnn_registry_copy_ops(const struct dsnn_component *c, void *dst, size_t dst_size)
{
    memset(dst, 0, dst_size);
    if (!c || !c->ops)
        return;
    size_t n = c->ops_size < dst_size ? c->ops_size : dst_size;
    memcpy(dst, c->ops, n);
}

const void *dsnn_registry_entry_ops(const struct dsnn_registry_entry *e)
{
    return e ? (const void *)&e->ops : NULL;
}

const struct dsnn_key_spec *dsnn_registry_entry_key(const struct dsnn_registry_entry *e,
                                                   const char *key)
{
    if (!e || !key)
        return NULL;
    const struct dsnn_component *c = e->component;
    for (size_t i = 0; i < c->n_keys; i++)
        if (strcmp(c->keys[i].name, key) == 0)
            return &c->keys[i];
    return NULL;
}

/* ---- life cycle ---- */

enum dsnn_status dsnn_registry_new(struct dsnn_registry **out, struct dsnn_error *err)
{
    *out = calloc(1, sizeof(**out));
    if (!*out)
        return dsnn_error_set(err, DSNN_ERR_NOMEM, "plugin registry: out of memory");
    return DSNN_OK;
}

void dsnn_registry_free(struct dsnn_registry *reg)
{
    if (!reg)
        return;
    for (size_t i = 0; i < reg->n_entries; i++) {
        free(reg->entries[i]->keys);
        free(reg->entries[i]);
    }
    free(reg->entries);
    /* Unload in reverse order of loading. */
    for (size_t i = reg->n_files; i-- > 0;) {
        if (reg->files[i].handle)
            dlclose(reg->files[i].handle);
        free(reg->files[i].path);
    }
    free(reg->files);
    for (size_t i = 0; i < reg->n_fds; i++)
        close(reg->fds[i]);
    free(reg->fds);
    free(reg->errors);
    free(reg->warnings);
    for (size_t i = 0; i < reg->n_dirs; i++)
        free(reg->dirs[i]);
    free(reg->dirs);
    free(reg);
}

/* Records a failed load in the error list (best effort: out of memory drops it). */
static void record_error(struct dsnn_registry *reg, enum dsnn_status status, const char *msg)
{
    struct dsnn_error *errors =
        grow(reg->errors, &reg->cap_errors, reg->n_errors + 1, sizeof(*reg->errors));
    if (!errors)
        return;
    reg->errors = errors;
    struct dsnn_error *e = &reg->errors[reg->n_errors++];
    e->status = status;
    snprintf(e->msg, sizeof(e->msg), "%s", msg);
}

/* Sets err and records the error; returns status. */
static enum dsnn_status fail(struct dsnn_registry *reg, struct dsnn_error *err,
                             enum dsnn_status status, const char *fmt, ...) DSNN_PRINTF(4, 5);
static enum dsnn_status fail(struct dsnn_registry *reg, struct dsnn_error *err,
                             enum dsnn_status status, const char *fmt, ...)
{
    struct dsnn_error e = {0};
    va_list ap;
    va_start(ap, fmt);
    e.status = status;
    vsnprintf(e.msg, sizeof(e.msg), fmt, ap);
    va_end(ap);
    record_error(reg, status, e.msg);
    if (err) {
        err->status = status;
        memcpy(err->msg, e.msg, sizeof(err->msg));
    }
    return status;
}

size_t dsnn_registry_n_errors(const struct dsnn_registry *reg)
{
    return reg ? reg->n_errors : 0;
}

const struct dsnn_error *dsnn_registry_error_at(const struct dsnn_registry *reg, size_t i)
{
    return reg && i < reg->n_errors ? &reg->errors[i] : NULL;
}

size_t dsnn_registry_n_dirs(const struct dsnn_registry *reg)
{
    return reg ? reg->n_dirs : 0;
}

const char *dsnn_registry_dir_at(const struct dsnn_registry *reg, size_t i)
{
    return reg && i < reg->n_dirs ? reg->dirs[i] : NULL;
}

size_t dsnn_registry_count(const struct dsnn_registry *reg)
{
    return reg ? reg->n_entries : 0;
}

const struct dsnn_registry_entry *dsnn_registry_at(const struct dsnn_registry *reg, size_t i)
{
    return reg && i < reg->n_entries ? reg->entries[i] : NULL;
}

/* ---- descriptor checks ---- */

static bool name_ok(const char *s)
{
    if (!s || !*s)
        return false;
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (!isalnum(ch) && ch != '_' && ch != '-' && ch != '.')
            return false;
    }
    return true;
}

/* A required operation of an ops table and whether the plugin set it. */
struct required_op {
    const char *name;
    bool set;
};

static const char *first_unset(const struct required_op *r, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!r[i].set)
            return r[i].name;
    return NULL;
}
#define FIRST_UNSET(...)                                                                          \
    first_unset((const struct required_op[]){__VA_ARGS__},                                        \
                sizeof((const struct required_op[]){__VA_ARGS__}) / sizeof(struct required_op))

/* The operation of ops (full-size copy of kind) that is required but NULL, or NULL if none. */
static const char *missing_required_op(enum dsnn_kind kind, const void *ops)
{
    const struct dsnn_dataset_ops *d = ops;
    const struct dsnn_network_ops *n = ops;
    const struct dsnn_model_ops *m = ops;
    const struct dsnn_search_ops *s = ops;
    switch (kind) {
    case DSNN_KIND_DATASET:
        return FIRST_UNSET({"open", d->open}, {"begin", d->begin},
                           {"next_batch", d->next_batch}, {"close", d->close});
    case DSNN_KIND_NETWORK:
        return FIRST_UNSET({"build", n->build});
    case DSNN_KIND_MODEL:
        return FIRST_UNSET({"create", m->create}, {"train_epoch", m->train_epoch},
                           {"evaluate", m->evaluate}, {"destroy", m->destroy});
    case DSNN_KIND_SEARCH:
        return FIRST_UNSET({"create", s->create}, {"suggest", s->suggest},
                           {"destroy", s->destroy});
    }
    return NULL;
}

static const struct dsnn_registry_entry *find_entry(const struct dsnn_registry *reg,
                                                    enum dsnn_kind kind, const char *name)
{
    for (size_t i = 0; i < reg->n_entries; i++) {
        const struct dsnn_registry_entry *e = reg->entries[i];
        if (e->kind == kind && strcmp(e->name, name) == 0)
            return e;
    }
    return NULL;
}

/* Checks 3 to 6 of registry.h on a descriptor; records and returns the first failure. */
/* The keys of a component's table, and of the tables it includes (DSNN_KEY_INCLUDE, at most 8
 * deep), have names and known types. */
static enum dsnn_status check_key_table(struct dsnn_registry *reg, const struct dsnn_key_spec *keys,
                                        size_t n, const char *origin, const char *ks,
                                        const char *cname, int depth, struct dsnn_error *err)
{
    for (size_t k = 0; k < n; k++) {
        const struct dsnn_key_spec *kd = &keys[k];
        if (!kd->name || !*kd->name)
            return fail(reg, err, DSNN_ERR_INVALID, "%s: %s '%s': key %zu has no name", origin, ks,
                        cname, k);
        if (kd->type == DSNN_KEY_INCLUDE) {
            enum dsnn_status st;
            if (!kd->include || (kd->include->n > 0 && !kd->include->keys) || depth >= 8)
                return fail(reg, err, DSNN_ERR_INVALID,
                            "%s: %s '%s': key entry '%s' includes no table (or nests too deep)",
                            origin, ks, cname, kd->name);
            if ((st = check_key_table(reg, kd->include->keys, kd->include->n, origin, ks, cname,
                                      depth + 1, err)))
                return st;
            continue;
        }
        if (kd->type == DSNN_KEY_ALIAS && (!kd->def_str || !*kd->def_str))
            return fail(reg, err, DSNN_ERR_INVALID,
                        "%s: %s '%s': alias '%s' names no key (.def_str)", origin, ks, cname,
                        kd->name);
        if (((int)kd->type < (int)DSNN_KEY_INT || (int)kd->type > (int)DSNN_KEY_ANY) &&
            kd->type != DSNN_KEY_ALIAS)
            return fail(reg, err, DSNN_ERR_INVALID, "%s: %s '%s': key '%s' has unknown type %d",
                        origin, ks, cname, kd->name, (int)kd->type);
    }
    return DSNN_OK;
}

/* 5. and 6.: component i of p (kind, name, ops table, keys, required operations) and its
 * duplicates within the file and against what is registered. */
static enum dsnn_status check_component(struct dsnn_registry *reg, const struct dsnn_plugin *p,
                                        size_t i, const char *origin, struct dsnn_error *err)
{
    const struct dsnn_component *c = &p->components[i];
    if (!kind_known((int)c->kind))
        return fail(reg, err, DSNN_ERR_INVALID,
                    "%s: component %zu ('%s') has unknown kind %d (known: 1 = dataset, "
                    "2 = network, 3 = model, 4 = search)",
                    origin, i, c->name ? c->name : "(null)", (int)c->kind);
    const char *ks = dsnn_kind_str(c->kind);
    if (!c->name)
        return fail(reg, err, DSNN_ERR_INVALID, "%s: %s component %zu has no name", origin,
                    ks, i);
    if (!name_ok(c->name))
        return fail(reg, err, DSNN_ERR_INVALID,
                    "%s: %s name '%s' is invalid (use letters, digits, '_', '-', '.')",
                    origin, ks, c->name);
    if (!c->ops)
        return fail(reg, err, DSNN_ERR_INVALID, "%s: %s '%s' has no ops table", origin, ks,
                    c->name);
    if (c->ops_size == 0 || c->ops_size % sizeof(void (*)(void)) != 0)
        return fail(reg, err, DSNN_ERR_ABI,
                    "%s: %s '%s' declares an ops table of %zu bytes, not a whole number of "
                    "function pointers (use DSNN_COMPONENT)",
                    origin, ks, c->name, c->ops_size);
    if (c->n_keys > 0 && !c->keys)
        return fail(reg, err, DSNN_ERR_INVALID, "%s: %s '%s' declares %zu keys but no table",
                    origin, ks, c->name, c->n_keys);
    enum dsnn_status kst = check_key_table(reg, c->keys, c->n_keys, origin, ks, c->name, 0, err);
    if (kst != DSNN_OK)
        return kst;
    union {
        struct dsnn_dataset_ops dataset;
        struct dsnn_network_ops network;
        struct dsnn_model_ops model;
        struct dsnn_search_ops search;
    } full;
    dsnn_registry_copy_ops(c, &full, dsnn_registry_ops_size(c->kind));
    const char *missing = missing_required_op(c->kind, &full);
    if (missing)
        return fail(reg, err, DSNN_ERR_INVALID,
                    "%s: %s '%s': required operation '%s' is NULL%s", origin, ks, c->name,
                    missing,
                    c->ops_size < dsnn_registry_ops_size(c->kind)
                        ? " (or missing from its older, smaller ops table)"
                        : "");
    /* 6. Duplicates, within the file and against what is registered. */
    for (size_t j = 0; j < i; j++)
        if (p->components[j].kind == c->kind && strcmp(p->components[j].name, c->name) == 0)
            return fail(reg, err, DSNN_ERR_INVALID, "%s: declares %s '%s' twice", origin, ks,
                        c->name);
    const struct dsnn_registry_entry *dup = find_entry(reg, c->kind, c->name);
    if (dup)
        return fail(reg, err, DSNN_ERR_INVALID,
                    "duplicate %s '%s': provided by %s and by %s (keeping the first; remove "
                    "or rename one of them)",
                    ks, c->name, dup->path, origin);
    return DSNN_OK;
}

static enum dsnn_status check_descriptor(struct dsnn_registry *reg, const struct dsnn_plugin *p,
                                         const char *origin, struct dsnn_error *err)
{
    if (!p)
        return fail(reg, err, DSNN_ERR_INVALID,
                    "%s: %s() returned NULL instead of a plugin descriptor", origin,
                    DSNN_PLUGIN_ENTRY_SYMBOL);
    /* 3. ABI version: the first two fields, read before anything else. */
    if (p->abi_major != DSNN_ABI_MAJOR || p->abi_minor > DSNN_ABI_MINOR)
        return fail(reg, err, DSNN_ERR_ABI,
                    "%s: plugin built for dsnn ABI %u.%u, this host supports %d.%d (%s)", origin,
                    (unsigned)p->abi_major, (unsigned)p->abi_minor, DSNN_ABI_MAJOR,
                    DSNN_ABI_MINOR,
                    p->abi_major == DSNN_ABI_MAJOR
                        ? "update dsnn-host, or rebuild the plugin against this SDK"
                        : "rebuild the plugin against this SDK");
    /* 4. Descriptor layout. A larger struct_size (a same-ABI plugin with appended fields this
     * host does not know) is accepted; the fields it reads must be there. */
    size_t need = offsetof(struct dsnn_plugin, n_components) + sizeof(p->n_components);
    if (p->struct_size < need)
        return fail(reg, err, DSNN_ERR_ABI,
                    "%s: plugin descriptor is %u bytes, this host needs at least %zu (descriptor "
                    "not made with DSNN_PLUGIN_DEFINE? rebuild the plugin against this SDK)",
                    origin, (unsigned)p->struct_size, need);
    if (!p->name)
        return fail(reg, err, DSNN_ERR_INVALID, "%s: plugin descriptor has no name", origin);
    if (p->n_components == 0 || !p->components)
        return fail(reg, err, DSNN_ERR_INVALID, "%s: plugin '%s' declares no components", origin,
                    p->name);
    /* 5. Components. */
    for (size_t i = 0; i < p->n_components; i++) {
        enum dsnn_status st = check_component(reg, p, i, origin, err);
        if (st != DSNN_OK)
            return st;
    }
    return DSNN_OK;
}

/* e->flat: c with its key table expanded (DSNN_KEY_INCLUDE entries replaced by the keys of the
 * tables they name) into e->keys. */
static bool flatten_keys(const struct dsnn_component *c, struct dsnn_registry_entry *e)
{
    size_t n = dsnn_keys_flatten(c->keys, c->n_keys, NULL, 0);
    const struct dsnn_key_spec **ptrs = calloc(n ? n : 1, sizeof *ptrs);
    e->keys = calloc(n ? n : 1, sizeof *e->keys);
    if (!ptrs || !e->keys) {
        free(ptrs);
        return false;
    }
    dsnn_keys_flatten(c->keys, c->n_keys, ptrs, n);
    for (size_t k = 0; k < n; k++)
        e->keys[k] = *ptrs[k];
    free(ptrs);
    e->flat = *c;
    e->flat.keys = e->keys;
    e->flat.n_keys = n;
    return true;
}

/* Registers the (checked) components of p; takes ownership of handle (dlclosed on failure). */
static enum dsnn_status register_plugin(struct dsnn_registry *reg, void *handle,
                                        const struct dsnn_plugin *p, const char *origin,
                                        struct dsnn_error *err)
{
    char *path = strdup(origin);
    struct dsnn_registry_entry **made = calloc(p->n_components, sizeof(*made));
    bool ok = path && made;
    if (ok) {
        struct plugin_file *files =
            grow(reg->files, &reg->cap_files, reg->n_files + 1, sizeof(*reg->files));
        ok = files != NULL;
        if (ok)
            reg->files = files;
    }
    if (ok) {
        struct dsnn_registry_entry **entries = grow(
            reg->entries, &reg->cap_entries, reg->n_entries + p->n_components, sizeof(*entries));
        ok = entries != NULL;
        if (ok)
            reg->entries = entries;
    }
    for (size_t i = 0; ok && i < p->n_components; i++) {
        const struct dsnn_component *c = &p->components[i];
        made[i] = calloc(1, sizeof(**made));
        ok = made[i] != NULL && flatten_keys(c, made[i]);
    }
    if (!ok) {
        if (made)
            for (size_t i = 0; i < p->n_components; i++) {
                if (made[i])
                    free(made[i]->keys);
                free(made[i]);
            }
        free(made);
        free(path);
        if (handle)
            dlclose(handle);
        return fail(reg, err, DSNN_ERR_NOMEM, "%s: out of memory while registering the plugin",
                    origin);
    }
    reg->files[reg->n_files++] = (struct plugin_file){handle, path, p};
    for (size_t i = 0; i < p->n_components; i++) {
        const struct dsnn_component *c = &p->components[i];
        struct dsnn_registry_entry *e = made[i];
        e->kind = c->kind;
        e->name = c->name;
        e->component = &e->flat;
        e->plugin = p;
        e->path = path;
        dsnn_registry_copy_ops(c, &e->ops, dsnn_registry_ops_size(c->kind));
        /* Insert sorted by (kind, name). */
        size_t pos = reg->n_entries;
        while (pos > 0) {
            const struct dsnn_registry_entry *prev = reg->entries[pos - 1];
            if (prev->kind < e->kind || (prev->kind == e->kind && strcmp(prev->name, e->name) < 0))
                break;
            reg->entries[pos] = reg->entries[pos - 1];
            pos--;
        }
        reg->entries[pos] = e;
        reg->n_entries++;
    }
    free(made);
    return DSNN_OK;
}

enum dsnn_status dsnn_registry_add(struct dsnn_registry *reg, const struct dsnn_plugin *plugin,
                                   const char *origin, struct dsnn_error *err)
{
    if (!origin)
        origin = "(built-in)";
    enum dsnn_status st = check_descriptor(reg, plugin, origin, err);
    if (st != DSNN_OK)
        return st;
    return register_plugin(reg, NULL, plugin, origin, err);
}

/* ---- loading ---- */

/* Why a plugin file or directory with status st is unsafe to load code from, into buf (empty
 * when safe): owned by someone other than this (effective) user or root, or writable by group
 * or others. */
static void unsafe_reason(const struct stat *st, char *buf, size_t size)
{
    buf[0] = '\0';
    uid_t me = geteuid();
    bool wg = (st->st_mode & S_IWGRP) != 0, wo = (st->st_mode & S_IWOTH) != 0;
    if (st->st_uid != me && st->st_uid != 0)
        snprintf(buf, size, "owned by uid %u, neither you (uid %u) nor root", (unsigned)st->st_uid,
                 (unsigned)me);
    else if (wg || wo)
        snprintf(buf, size, "writable by %s (mode %04o)",
                 wg && wo ? "group and others" : wg ? "group" : "others",
                 (unsigned)(st->st_mode & 07777));
}

/* Applies the safe-path policy to path (a plugin file or directory, status st): DSNN_OK when
 * safe, or unsafe but allowed (then with a warning); else refused (DSNN_ERR_INVALID). */
static enum dsnn_status check_safe(struct dsnn_registry *reg, const struct stat *st,
                                   const char *path, const char *what, struct dsnn_error *err)
{
    char why[128];
    unsafe_reason(st, why, sizeof why);
    if (!why[0])
        return DSNN_OK;
    const char *fix = st->st_uid != geteuid() && st->st_uid != 0 ? "chown it" : "chmod go-w it";
    if (reg->allow_unsafe) {
        char msg[DSNN_ERROR_MSG_MAX];
        snprintf(msg, sizeof msg, "%s: loading the unsafe plugin %s anyway (allowed by "
                 "--allow-unsafe-plugins): it is %s", path, what, why);
        struct dsnn_error *w =
            grow(reg->warnings, &reg->cap_warnings, reg->n_warnings + 1, sizeof(*reg->warnings));
        if (w) {
            reg->warnings = w;
            reg->warnings[reg->n_warnings] = (struct dsnn_error){.status = DSNN_ERR_INVALID};
            snprintf(reg->warnings[reg->n_warnings++].msg, DSNN_ERROR_MSG_MAX, "%s", msg);
        }
        return DSNN_OK;
    }
    return fail(reg, err, DSNN_ERR_INVALID,
                "%s: refusing to load the plugin %s: it is %s, so another user could make "
                "dsnn-host run their code (%s, or pass --allow-unsafe-plugins)",
                path, what, why, fix);
}

/* Reads the whole file fd (size bytes by fstat) into *out (caller frees). */
static enum dsnn_status read_all(struct dsnn_registry *reg, int fd, off_t size, const char *path,
                                 unsigned char **out, size_t *len, struct dsnn_error *err)
{
    *out = NULL;
    *len = 0;
    if (size < 0 || (uint64_t)size > DSNN_PLUGIN_MAX_BYTES)
        return fail(reg, err, DSNN_ERR_FORMAT,
                    "%s: cannot load plugin: %lld bytes, more than the %llu bytes a plugin may "
                    "have",
                    path, (long long)size, (unsigned long long)DSNN_PLUGIN_MAX_BYTES);
    unsigned char *buf = malloc(size > 0 ? (size_t)size : 1);
    if (!buf)
        return fail(reg, err, DSNN_ERR_NOMEM, "%s: out of memory reading the plugin", path);
    size_t n = 0;
    while (n < (size_t)size) {
        ssize_t r = pread(fd, buf + n, (size_t)size - n, (off_t)n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            free(buf);
            return fail(reg, err, DSNN_ERR_IO, "%s: cannot read plugin: %s", path, strerror(e));
        }
        if (r == 0)
            break; /* shrank meanwhile: check what is there */
        n += (size_t)r;
    }
    *out = buf;
    *len = n;
    return DSNN_OK;
}

/* The name dlopen is given for the opened file fd: "/proc/self/fd/N" when that names the same
 * file (Linux), so that what is mapped is what was checked; else path itself (then a file
 * replaced between the checks and dlopen goes unnoticed: see registry.h). */
static const char *dlopen_name(int fd, const struct stat *st, const char *path, char *buf,
                               size_t size)
{
    struct stat ps;
    snprintf(buf, size, "/proc/self/fd/%d", fd);
    if (stat(buf, &ps) == 0 && ps.st_dev == st->st_dev && ps.st_ino == st->st_ino)
        return buf;
    /* A name without '/' would make dlopen search the library path instead of the file. */
    if (!strchr(path, '/'))
        snprintf(buf, size, "./%s", path);
    else
        snprintf(buf, size, "%s", path);
    return buf;
}

/* Keeps fd open until dsnn_registry_free: a file that dlopen mapped under "/proc/self/fd/N"
 * keeps that name in the loader (even after dlclose when the object cannot be unloaded), and a
 * later file opened as the same N must not be mistaken for it. Closes fd when out of memory. */
static void hold_fd(struct dsnn_registry *reg, int fd)
{
    int *fds = grow(reg->fds, &reg->cap_fds, reg->n_fds + 1, sizeof(*reg->fds));
    if (!fds) {
        close(fd);
        return;
    }
    reg->fds = fds;
    reg->fds[reg->n_fds++] = fd;
}

/* Loads the plugin file open as fd (status st; path for messages); takes ownership of fd. */
static enum dsnn_status load_fd(struct dsnn_registry *reg, int fd, const struct stat *st,
                                const char *path, struct dsnn_error *err)
{
    if (!S_ISREG(st->st_mode)) {
        close(fd);
        return fail(reg, err, DSNN_ERR_IO, "%s: cannot load plugin: not a regular file", path);
    }
    enum dsnn_status s = check_safe(reg, st, path, "file", err);
    unsigned char *bytes = NULL;
    size_t len = 0;
    if (s == DSNN_OK)
        s = read_all(reg, fd, st->st_size, path, &bytes, &len, err);
    if (s == DSNN_OK) {
        struct dsnn_error e = {0};
        if (dsnn_elf_check(bytes, len, &e) != DSNN_OK)
            s = fail(reg, err, DSNN_ERR_FORMAT, "%s: cannot load plugin: %s", path, e.msg);
    }
    free(bytes);
    if (s != DSNN_OK) {
        close(fd);
        return s;
    }

    char name[4096];
    const char *open_path = dlopen_name(fd, st, path, name, sizeof name);
    dlerror();
    void *handle = dlopen(open_path, RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
        close(fd);
        const char *why = dlerror();
        if (!why)
            why = "dlopen failed";
        /* glibc says "<file>: <reason>"; the message names the file already. */
        size_t ol = strlen(open_path);
        if (strncmp(why, open_path, ol) == 0 && strncmp(why + ol, ": ", 2) == 0)
            why += ol + 2;
        return fail(reg, err, DSNN_ERR_IO, "%s: cannot load plugin: %s", path, why);
    }
    hold_fd(reg, fd);
    for (size_t i = 0; i < reg->n_files; i++) {
        if (reg->files[i].handle == handle) { /* same file loaded before: nothing to do */
            dlclose(handle);
            return DSNN_OK;
        }
    }
    dlerror();
    void *sym = dlsym(handle, DSNN_PLUGIN_ENTRY_SYMBOL);
    if (!sym) {
        const char *why = dlerror();
        s = fail(reg, err, DSNN_ERR_NOT_FOUND,
                 "%s: not a dsnn plugin: it does not export '%s' (%s); define the plugin with "
                 "DSNN_PLUGIN_DEFINE from dsnn/plugin.h",
                 path, DSNN_PLUGIN_ENTRY_SYMBOL, why ? why : "symbol is NULL");
        dlclose(handle);
        return s;
    }
    dsnn_plugin_entry_fn entry;
    memcpy(&entry, &sym, sizeof(entry)); /* POSIX: object pointer -> function pointer */
    const struct dsnn_plugin *p = entry();
    s = check_descriptor(reg, p, path, err);
    if (s != DSNN_OK) {
        dlclose(handle);
        return s;
    }
    return register_plugin(reg, handle, p, path, err);
}

#define OPEN_FLAGS (O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK) /* a FIFO must not block */

enum dsnn_status dsnn_registry_load_file(struct dsnn_registry *reg, const char *path,
                                         struct dsnn_error *err)
{
    int fd = open(path, OPEN_FLAGS);
    if (fd < 0)
        return fail(reg, err, errno == ENOENT ? DSNN_ERR_NOT_FOUND : DSNN_ERR_IO,
                    "%s: cannot load plugin: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return fail(reg, err, DSNN_ERR_IO, "%s: cannot load plugin: %s", path, strerror(e));
    }
    return load_fd(reg, fd, &st, path, err);
}

static bool so_name(const char *n)
{
    size_t len = strlen(n);
    return n[0] != '.' && len > 3 && strcmp(n + len - 3, ".so") == 0;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The sorted "*.so" names of the open directory d into *out (n_out; caller frees each and the
 * array). */
static enum dsnn_status dir_names(struct dsnn_registry *reg, DIR *d, const char *dir,
                                  char ***out, size_t *n_out, struct dsnn_error *err)
{
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    errno = 0;
    while ((de = readdir(d)) != NULL) {
        if (!so_name(de->d_name))
            continue;
        char **g = grow(names, &cap, n + 1, sizeof(*names));
        char *copy = g ? strdup(de->d_name) : NULL;
        if (g)
            names = g;
        if (!copy) {
            for (size_t i = 0; i < n; i++)
                free(names[i]);
            free(names);
            return fail(reg, err, DSNN_ERR_NOMEM, "%s: out of memory", dir);
        }
        names[n++] = copy;
    }
    if (n > 0)
        qsort(names, n, sizeof(*names), name_cmp);
    *out = names;
    *n_out = n;
    return DSNN_OK;
}

enum dsnn_status dsnn_registry_load_dir(struct dsnn_registry *reg, const char *dir,
                                        struct dsnn_error *err)
{
    char *copy = strdup(dir);
    char **dirs = copy ? grow(reg->dirs, &reg->cap_dirs, reg->n_dirs + 1, sizeof(*dirs)) : NULL;
    if (!dirs) {
        free(copy);
        return fail(reg, err, DSNN_ERR_NOMEM, "%s: out of memory", dir);
    }
    reg->dirs = dirs;
    reg->dirs[reg->n_dirs++] = copy;

    /* Opened once: the directory checked is the one whose files are opened (openat). */
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    struct stat dst;
    if (dfd < 0 || fstat(dfd, &dst) != 0) {
        int e = errno;
        if (dfd >= 0)
            close(dfd);
        return fail(reg, err, e == ENOENT ? DSNN_ERR_NOT_FOUND : DSNN_ERR_IO,
                    "%s: cannot read plugin directory: %s", dir, strerror(e));
    }
    enum dsnn_status s = check_safe(reg, &dst, dir, "directory", err);
    DIR *d = s == DSNN_OK ? fdopendir(dfd) : NULL;
    if (!d) {
        int e = errno;
        close(dfd);
        return s != DSNN_OK ? s
                            : fail(reg, err, DSNN_ERR_IO, "%s: cannot read plugin directory: %s",
                                   dir, strerror(e));
    }
    char **names = NULL;
    size_t n = 0;
    s = dir_names(reg, d, dir, &names, &n, err);
    if (s != DSNN_OK) {
        closedir(d);
        return s;
    }
    size_t errors_before = reg->n_errors;
    enum dsnn_status first = DSNN_OK;
    struct dsnn_error first_err = {0};
    size_t dlen = strlen(dir);
    bool slash = dlen > 0 && dir[dlen - 1] == '/';
    for (size_t i = 0; i < n; i++) {
        char path[4096];
        int len = snprintf(path, sizeof(path), "%s%s%s", dir, slash ? "" : "/", names[i]);
        struct dsnn_error e = {0};
        enum dsnn_status fs = DSNN_OK;
        int fd = -1;
        struct stat st;
        if (len < 0 || (size_t)len >= sizeof(path))
            fs = fail(reg, &e, DSNN_ERR_IO, "%s/...: path too long", dir);
        else if ((fd = openat(dirfd(d), names[i], OPEN_FLAGS)) < 0 || fstat(fd, &st) != 0 ||
                 !S_ISREG(st.st_mode)) {
            /* A directory, FIFO or dangling link named *.so: not a plugin. */
            if (fd >= 0)
                close(fd);
        } else {
            fs = load_fd(reg, fd, &st, path, &e);
        }
        free(names[i]);
        if (fs != DSNN_OK && first == DSNN_OK) {
            first = fs;
            first_err = e;
        }
    }
    free(names);
    closedir(d);
    if (first == DSNN_OK)
        return DSNN_OK;
    size_t more = reg->n_errors - errors_before - 1;
    if (more == 0)
        return dsnn_error_set(err, first, "%s", first_err.msg);
    return dsnn_error_set(err, first, "%s (and %zu more plugin error%s)", first_err.msg, more,
                          more == 1 ? "" : "s");
}

void dsnn_registry_set_allow_unsafe(struct dsnn_registry *reg, bool allow)
{
    if (reg)
        reg->allow_unsafe = allow;
}

size_t dsnn_registry_n_warnings(const struct dsnn_registry *reg)
{
    return reg ? reg->n_warnings : 0;
}

const char *dsnn_registry_warning_at(const struct dsnn_registry *reg, size_t i)
{
    return reg && i < reg->n_warnings ? reg->warnings[i].msg : NULL;
}

/* ---- lookup ---- */

const struct dsnn_registry_entry *dsnn_registry_find(const struct dsnn_registry *reg,
                                                     enum dsnn_kind kind, const char *name)
{
    if (!reg || !name)
        return NULL;
    return find_entry(reg, kind, name);
}

size_t dsnn_registry_names(const struct dsnn_registry *reg, enum dsnn_kind kind, char *buf,
                           size_t size)
{
    struct dsnn_sbuf sb = {0};
    size_t count = 0;
    for (size_t i = 0; reg && i < reg->n_entries; i++) {
        const struct dsnn_registry_entry *e = reg->entries[i];
        if (e->kind != kind)
            continue;
        dsnn_sbuf_printf(&sb, "%s%s", count ? ", " : "", e->name);
        count++;
    }
    if (size > 0)
        snprintf(buf, size, "%s", sb.p ? sb.p : "");
    dsnn_sbuf_free(&sb);
    return count;
}

/* Case-insensitive Levenshtein distance (names are short: capped at 63 characters). */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63)
        return SIZE_MAX;
    size_t row[64];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t cost = tolower((unsigned char)a[i - 1]) == tolower((unsigned char)b[j - 1]) ? 0 : 1;
            size_t best = diag + cost;
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

const char *dsnn_registry_suggest(const struct dsnn_registry *reg, enum dsnn_kind kind,
                                  const char *name)
{
    if (!reg || !name)
        return NULL;
    const char *best = NULL;
    size_t len = strlen(name);
    size_t best_d = SIZE_MAX, limit = len / 3 > 2 ? len / 3 : 2;
    for (size_t i = 0; i < reg->n_entries; i++) {
        const struct dsnn_registry_entry *c = reg->entries[i];
        if ((int)kind != 0 && c->kind != kind)
            continue;
        size_t d = edit_distance(name, c->name);
        if (d <= limit && d < best_d) {
            best = c->name;
            best_d = d;
        }
    }
    return best;
}

enum dsnn_status dsnn_registry_lookup(const struct dsnn_registry *reg, enum dsnn_kind kind,
                                      const char *name, const struct dsnn_registry_entry **out,
                                      struct dsnn_error *err)
{
    if (out)
        *out = NULL;
    if (!name || !*name)
        return dsnn_error_set(err, DSNN_ERR_INVALID, "no %s plugin name given",
                              dsnn_kind_str(kind));
    const struct dsnn_registry_entry *e = dsnn_registry_find(reg, kind, name);
    if (e) {
        if (out)
            *out = e;
        return DSNN_OK;
    }
    struct dsnn_sbuf sb = {0};
    dsnn_sbuf_printf(&sb, "no %s plugin named '%s' (", dsnn_kind_str(kind), name);

    const char *best = dsnn_registry_suggest(reg, kind, name);
    if (best)
        dsnn_sbuf_printf(&sb, "did you mean '%s'?; ", best);
    char names[DSNN_ERROR_MSG_MAX / 2];
    if (dsnn_registry_names(reg, kind, names, sizeof(names)) > 0)
        dsnn_sbuf_printf(&sb, "available %s: %s", kind_plural(kind), names);
    else
        dsnn_sbuf_printf(&sb, "no %s are loaded", kind_plural(kind));
    for (size_t i = 0; reg && i < reg->n_entries; i++) {
        const struct dsnn_registry_entry *c = reg->entries[i];
        if (c->kind != kind && strcmp(c->name, name) == 0)
            dsnn_sbuf_printf(&sb, "; note: '%s' is a %s", name, dsnn_kind_str(c->kind));
    }
    if (reg && reg->n_dirs > 0) {
        dsnn_sbuf_printf(&sb, "; plugin director%s: ", reg->n_dirs == 1 ? "y" : "ies");
        for (size_t i = 0; i < reg->n_dirs; i++)
            dsnn_sbuf_printf(&sb, "%s%s", i ? ":" : "", reg->dirs[i]);
    } else {
        dsnn_sbuf_puts(&sb, "; no plugin directory was searched");
    }
    dsnn_sbuf_puts(&sb, ")");
    enum dsnn_status st =
        dsnn_error_set(err, DSNN_ERR_NOT_FOUND, "%s", sb.p ? sb.p : "out of memory");
    dsnn_sbuf_free(&sb);
    return st;
}
