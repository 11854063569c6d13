/* host/registry.h - the plugin registry: loads plugin shared objects, checks their ABI and
 * descriptors, and indexes their components by (kind, name).
 *
 *     struct dsnn_registry *reg = NULL;
 *     struct dsnn_error err = {0};
 *     if (dsnn_registry_new(&reg, &err) != DSNN_OK) ...
 *     dsnn_registry_load_dir(reg, "build/plugins", &err);   // every *.so, sorted by name
 *     for (size_t i = 0; i < dsnn_registry_n_errors(reg); i++)
 *         fprintf(stderr, "%s\n", dsnn_registry_error_at(reg, i)->msg);
 *     const struct dsnn_registry_entry *e;
 *     if (dsnn_registry_lookup(reg, DSNN_KIND_MODEL, "set", &e, &err) == DSNN_OK)
 *         e->ops.model.create(...);
 *     dsnn_registry_free(reg);                               // dlcloses every plugin
 *
 * A plugin file is accepted or refused as a whole: nothing of a refused file is registered and
 * the file is unloaded again. Checks, in order (the first failure refuses the file):
 *   0. safe path: the file is opened (following symbolic links) and what was opened is checked
 *      with fstat: a regular file, owned by this (effective) user or root, not writable by group
 *      or others (DSNN_ERR_INVALID; message names the path and why). A directory given to
 *      dsnn_registry_load_dir is opened once and checked the same way, and its files are opened
 *      relative to that open directory (openat), so a directory swapped after the check is not
 *      read. Parent directories are not checked. With dsnn_registry_set_allow_unsafe(reg,
 *      true) such a file or directory is loaded anyway and a warning is recorded instead;
 *   0b. the file is read whole (at most 1 GiB) and dsnn_elf_check (elf_check.h) validates it, so
 *      that a truncated or corrupt .so is refused (DSNN_ERR_FORMAT, message names the file and
 *      what is wrong) instead of killing the process with SIGBUS inside dlopen;
 *   1. dlopen(RTLD_NOW | RTLD_LOCAL) of the very file that was checked: through
 *      "/proc/self/fd/N" where /proc is mounted (the descriptor stays open until
 *      dsnn_registry_free). Without /proc the path is opened again by dlopen, and a file
 *      replaced between the checks and dlopen (by its owner: nobody else may write it) is not
 *      noticed. Message carries dlerror();
 *   2. the file exports DSNN_PLUGIN_ENTRY_SYMBOL (message carries dlerror());
 *   3. the entry function returns a descriptor whose abi_major == DSNN_ABI_MAJOR and
 *      abi_minor <= DSNN_ABI_MINOR (DSNN_ERR_ABI; message names the file and both versions).
 *      The entry function is the only plugin code called before this check;
 *   4. struct_size covers the descriptor fields this host reads; name non-NULL; at least one
 *      component;
 *   5. every component: known kind, non-empty name made of [A-Za-z0-9_.-], ops non-NULL,
 *      ops_size a whole number of function pointers, key docs well-formed, and the operations
 *      required for its kind non-NULL (after padding an older, smaller ops table with NULLs);
 *   6. no (kind, name) is already registered (DSNN_ERR_INVALID; message names both files).
 * Loading the same file twice (same dlopen handle) is a no-op.
 *
 * Functions return an enum dsnn_status and describe failures in err (may be NULL); none exits.
 * Not thread-safe: load everything first, then share the registry read-only (also across
 * fork()). */
#ifndef DSNN_HOST_REGISTRY_H
#define DSNN_HOST_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include "dsnn/plugin.h"
#include "dsnn/status.h"

#ifdef __cplusplus
extern "C" {
#endif

struct dsnn_registry; /* opaque */

/* One registered component. Owned by the registry; valid (at a stable address) until
 * dsnn_registry_free. */
struct dsnn_registry_entry {
    enum dsnn_kind kind;
    const char *name;                     /* == component->name */
    /* The component as the plugin declared it, but for its key table: DSNN_KEY_INCLUDE entries
     * (shared tables such as the base model's keys) are expanded into `keys` below, so that
     * component->keys lists every key once. */
    const struct dsnn_component *component;
    const struct dsnn_plugin *plugin;     /* descriptor of the file that provides it */
    const char *path;                     /* file it was loaded from (or the origin given to
                                           * dsnn_registry_add) */
    struct dsnn_component flat;           /* what component points to */
    struct dsnn_key_spec *keys;           /* flat.keys (owned) */
    /* Full-size copy of the component's ops table, member selected by kind. Functions that an
     * older plugin's smaller table lacks read as NULL here; always call through this copy,
     * never through component->ops. */
    union {
        struct dsnn_dataset_ops dataset;
        struct dsnn_network_ops network;
        struct dsnn_model_ops model;
        struct dsnn_search_ops search;
    } ops;
};

/* Creates an empty registry. The caller owns *out (free with dsnn_registry_free). */
enum dsnn_status dsnn_registry_new(struct dsnn_registry **out, struct dsnn_error *err);
/* Unregisters everything and dlcloses the plugins. NULL is accepted. Every entry, descriptor and
 * ops pointer obtained from reg is invalid afterwards. */
void dsnn_registry_free(struct dsnn_registry *reg);

/* Loads one plugin file (see the checks above). On failure nothing of the file is registered,
 * the error is also appended to the registry's error list, and its status is returned:
 * DSNN_ERR_IO (cannot be opened / read / dlopen failed), DSNN_ERR_NOT_FOUND (no such file, no
 * entry symbol), DSNN_ERR_FORMAT (not a valid shared object: dsnn_elf_check), DSNN_ERR_ABI
 * (version or descriptor layout), DSNN_ERR_INVALID (unsafe path, bad component, duplicate). */
enum dsnn_status dsnn_registry_load_file(struct dsnn_registry *reg, const char *path,
                                         struct dsnn_error *err);

/* Loads every "*.so" regular file (names starting with '.' skipped) of dir, in strcmp order of
 * file names, so that results (and which of two duplicates wins) are deterministic. Files that
 * fail are skipped and their errors appended to the error list; the others are still loaded.
 * Returns DSNN_OK if every file loaded; otherwise the status of the first failure, with err
 * holding its message (plus "(and N more plugin errors)"). A directory that cannot be read is
 * DSNN_ERR_NOT_FOUND / DSNN_ERR_IO, an unsafe one (check 0) DSNN_ERR_INVALID: then no file of
 * it is loaded (also appended to the error list). A broken file among good ones (check 0b)
 * is refused like any other failing file: its error is recorded and the others still load.
 * dir is remembered for "not found" messages. */
enum dsnn_status dsnn_registry_load_dir(struct dsnn_registry *reg, const char *dir,
                                        struct dsnn_error *err);

/* Registers a descriptor that is already in memory (components linked into the host, tests).
 * Performs checks 3 to 6; origin (copied) stands for the file name in messages and entries. */
enum dsnn_status dsnn_registry_add(struct dsnn_registry *reg, const struct dsnn_plugin *plugin,
                                   const char *origin, struct dsnn_error *err);

/* With allow true, plugin files and directories that fail the safe-path check (0 above) are
 * loaded anyway, each with a warning (dsnn_registry_warning_at); default false: refused. */
void dsnn_registry_set_allow_unsafe(struct dsnn_registry *reg, bool allow);
/* Warnings recorded so far (unsafe paths loaded anyway), in order; owned by the registry. */
size_t dsnn_registry_n_warnings(const struct dsnn_registry *reg);
const char *dsnn_registry_warning_at(const struct dsnn_registry *reg, size_t i);

/* Errors of every failed load so far, in order (owned by the registry). */
size_t dsnn_registry_n_errors(const struct dsnn_registry *reg);
const struct dsnn_error *dsnn_registry_error_at(const struct dsnn_registry *reg, size_t i);

/* Directories given to dsnn_registry_load_dir, in order (owned by the registry). */
size_t dsnn_registry_n_dirs(const struct dsnn_registry *reg);
const char *dsnn_registry_dir_at(const struct dsnn_registry *reg, size_t i);

/* Registered components, sorted by (kind, name) (the order is stable between loads only in
 * that sense: indices shift when a load adds components). */
size_t dsnn_registry_count(const struct dsnn_registry *reg);
const struct dsnn_registry_entry *dsnn_registry_at(const struct dsnn_registry *reg, size_t i);

/* The component (kind, name), or NULL. */
const struct dsnn_registry_entry *dsnn_registry_find(const struct dsnn_registry *reg,
                                                     enum dsnn_kind kind, const char *name);
/* Like find, but a missing component is DSNN_ERR_NOT_FOUND with a message that suggests the
 * closest name, lists the available names of that kind, notes other kinds with that name and
 * names the plugin directories, e.g.
 *   no model plugin named 'sett' (did you mean 'set'?; available models: rigl, set;
 *   plugin directories: build/plugins) */
enum dsnn_status dsnn_registry_lookup(const struct dsnn_registry *reg, enum dsnn_kind kind,
                                      const char *name, const struct dsnn_registry_entry **out,
                                      struct dsnn_error *err);

/* The registered name closest to name (case-insensitive edit distance, at most max(2, len/3)),
 * among components of kind, or of any kind when kind is 0; NULL if none is close. The result
 * is owned by the registry. */
const char *dsnn_registry_suggest(const struct dsnn_registry *reg, enum dsnn_kind kind,
                                  const char *name);

/* Writes the names of the registered components of kind, comma-separated in name order, into
 * buf (always NUL-terminated when size > 0). Returns the number of names. */
size_t dsnn_registry_names(const struct dsnn_registry *reg, enum dsnn_kind kind, char *buf,
                           size_t size);

/* The documented key `key` of an entry's component, or NULL (for unknown-key reports). */
const struct dsnn_key_spec *dsnn_registry_entry_key(const struct dsnn_registry_entry *e,
                                                   const char *key);
/* The entry's full-size ops copy (&e->ops.<kind>) as an untyped pointer. */
const void *dsnn_registry_entry_ops(const struct dsnn_registry_entry *e);

/* Copies a component's ops table into dst (dst_size bytes: the host's sizeof the ops struct):
 * min(c->ops_size, dst_size) bytes are copied and the rest zeroed, so that functions missing
 * from an older plugin's smaller table read as NULL and extra functions of a larger table are
 * ignored. */
void dsnn_registry_copy_ops(const struct dsnn_component *c, void *dst, size_t dst_size);

/* sizeof the host's ops struct of kind, 0 for an unknown kind. */
size_t dsnn_registry_ops_size(enum dsnn_kind kind);

/* Parses "dataset" | "network" | "model" | "search" (also the plurals). */
bool dsnn_registry_kind_parse(const char *s, enum dsnn_kind *out);

#ifdef __cplusplus
}
#endif
#endif
