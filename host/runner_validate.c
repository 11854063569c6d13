/* runner_validate.c - checking configurations before anything runs: the experiment group,
 * every group's keys against its plugin's documented keys (types included), a trial's full
 * configuration (experiment.cfg with its searched values), and every trial the search strategy
 * proposes up front. */
#include "runner_impl.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* Keys of the `experiment` group (the host's own). */
static const struct dsnn_key_spec experiment_keys[] = {
    {.name = "name", .type = DSNN_KEY_STRING, .default_value = "basename of the config file",
     .doc = "experiment name: results go to <results_dir>/<name>/ ([A-Za-z0-9_.-])"},
    {.name = "seed", .type = DSNN_KEY_INT, .def = 42, .doc = "experiment seed; trial i uses a seed derived from (seed, i)"},
    {.name = "epochs", .type = DSNN_KEY_INT, .def = 1, .doc = "epochs per trial"},
    {.name = "num_samples", .type = DSNN_KEY_INT, .def = 1, .doc = "repetitions of the search space (different seeds)"},
    {.name = "parallel", .type = DSNN_KEY_INT, .def = 1, .doc = "trials at once, each in its own process"},
    {.name = "threads", .type = DSNN_KEY_INT, .def = 0,
     .doc = "threads per trial (0: the cores divided among the trials that run at once, at least 1)"},
    {.name = "metric", .type = DSNN_KEY_STRING, .def_str = "val_acc", .doc = "metric the search strategy optimises"},
    {.name = "mode", .type = DSNN_KEY_STRING, .def_str = "max", .doc = "\"max\" or \"min\" of metric"},
    {.name = "results_dir", .type = DSNN_KEY_STRING, .def_str = "results", .doc = "root of the results directories"},
    {.name = "allow_unknown_keys", .type = DSNN_KEY_BOOL, .def = false,
     .doc = "report unknown configuration keys as warnings instead of errors"},
    {.name = "checkpoint_freq", .type = DSNN_KEY_INT, .def = 1,
     .doc = "write <trial>/checkpoint.bin every this many epochs (0: no checkpoints)"},
    {.name = "keep_checkpoints", .type = DSNN_KEY_INT, .def = 1,
     .doc = "checkpoints kept per trial (older ones as checkpoint.<epochs>.bin)"},
    {.name = "max_failures", .type = DSNN_KEY_INT, .def = 0,
     .doc = "retries of a trial that ends in ERROR, each from its last checkpoint"},
    {.name = "trial_timeout_s", .type = DSNN_KEY_FLOAT, .def = 0,
     .doc = "wall-clock seconds an attempt of a trial may run (0: no limit); then SIGTERM, and "
            "SIGKILL 5 s later: the attempt fails (retried as max_failures says)"},
    {.name = "rewire_before_eval", .type = DSNN_KEY_BOOL, .def = false,
     .doc = "evaluate each epoch after its prune / regrow round (false: before it, as nupic, and "
            "again after a round: val_acc_after_rewire, val_loss_after_rewire)"},
};

static const char *kind_group(enum dsnn_kind k)
{
    return dsnn_kind_str(k);
}

/* ---- validation ---- */

static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63)
        return 99;
    size_t d[64][64];
    for (size_t i = 0; i <= la; i++)
        d[i][0] = i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = j;
    for (size_t i = 1; i <= la; i++)
        for (size_t j = 1; j <= lb; j++) {
            size_t c = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
            if (d[i - 1][j] + 1 < c)
                c = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < c)
                c = d[i][j - 1] + 1;
            d[i][j] = c;
        }
    return d[la][lb];
}

static const char *closest_key(const struct dsnn_key_spec *keys, size_t n, const char *name)
{
    const char *best = NULL;
    size_t best_d = strlen(name) / 3 > 2 ? strlen(name) / 3 : 2;
    for (size_t i = 0; i < n; i++) {
        size_t d = edit_distance(keys[i].name, name);
        if (d <= best_d) {
            best = keys[i].name;
            best_d = d;
        }
    }
    return best;
}

/* Checks that the value of the documented key doc->name of group has the documented type, with
 * the getter a plugin uses for that type (same acceptance, same "FILE:LINE: key 'g.k': expected
 * ..." message), so that a type error stops the experiment before any trial runs instead of
 * failing every trial. */
static enum dsnn_status check_key_type(const struct dsnn_cfg *group, const struct dsnn_key_spec *doc,
                                       struct dsnn_error *err)
{
    int64_t i;
    double f;
    bool b;
    const char *s;
    char where[300];
    switch (doc->type) {
    case DSNN_KEY_INT: return dsnn_cfg_int(group, doc->name, 0, &i, err);
    case DSNN_KEY_FLOAT: return dsnn_cfg_float(group, doc->name, 0, &f, err);
    case DSNN_KEY_BOOL: return dsnn_cfg_bool(group, doc->name, false, &b, err);
    case DSNN_KEY_STRING: return dsnn_cfg_string(group, doc->name, NULL, &s, err);
    case DSNN_KEY_INT_ARRAY:
    case DSNN_KEY_FLOAT_ARRAY:
    case DSNN_KEY_FLOAT_OR_ARRAY: {
        const struct dsnn_cfg *v = NULL;
        for (size_t k = 0; k < dsnn_cfg_count(group) && !v; k++)
            if (strcmp(dsnn_cfg_child_name(group, k), doc->name) == 0)
                v = dsnn_cfg_child(group, k);
        size_t n = dsnn_cfg_count(v) + 1, got;
        void *buf = malloc(n * sizeof(double) + sizeof(int64_t));
        if (!buf)
            return dsnn_error_set(err, DSNN_ERR_NOMEM, "out of memory");
        enum dsnn_status st =
            doc->type == DSNN_KEY_INT_ARRAY
                ? dsnn_cfg_int_array(group, doc->name, buf, n, &got, err)
            : doc->type == DSNN_KEY_FLOAT_ARRAY
                ? dsnn_cfg_float_array(group, doc->name, buf, n, &got, err)
                : dsnn_cfg_float_or_array(group, doc->name, 0, buf, n, &got, err);
        free(buf);
        return st;
    }
    case DSNN_KEY_GROUP:
        if (dsnn_cfg_has(group, doc->name) && !dsnn_cfg_group(group, doc->name))
            return dsnn_error_set(err, DSNN_ERR_CONFIG,
                                  "%s: key '%s.%s': expected a group { ... }",
                                  dsnn_cfg_where(group, doc->name, where, sizeof where),
                                  dsnn_cfg_path(group), doc->name);
        return DSNN_OK;
    case DSNN_KEY_ANY:
    case DSNN_KEY_INCLUDE:
    case DSNN_KEY_ALIAS: return DSNN_OK;
    }
    return DSNN_OK;
}

/* Prints a configuration warning on stderr unless the same text was printed before: every trial's
 * configuration is checked (up front, then again when it starts), and a trial configuration is
 * the experiment's with the searched values, so the same ignored key would be reported once per
 * check. Up-front validation says each one before any trial starts, and a trial's child (a fork)
 * inherits what was said. */
static void warn_once(const char *msg)
{
    enum { MAX_SAID = 512 };
    static uint64_t said[MAX_SAID];
    static size_t n_said;
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)msg; *p; p++)
        h = (h ^ *p) * 1099511628211ull;
    for (size_t i = 0; i < n_said; i++)
        if (said[i] == h)
            return;
    if (n_said < MAX_SAID)
        said[n_said++] = h;
    fprintf(stderr, "warning: %s\n", msg);
}

/* Reports keys of group that keys[] does not document ("plugin" is always allowed), and values
 * of documented keys that do not have the documented type. */
static enum dsnn_status check_keys(const struct dsnn_cfg *group, const struct dsnn_key_spec *keys,
                                   size_t n_keys, const char *owner, bool warn_only,
                                   struct dsnn_error *err)
{
    for (size_t i = 0; i < dsnn_cfg_count(group); i++) {
        const char *name = dsnn_cfg_child_name(group, i);
        if (!name || strcmp(name, "plugin") == 0)
            continue;
        const struct dsnn_key_spec *doc = NULL;
        for (size_t k = 0; k < n_keys && !doc; k++)
            if (strcmp(keys[k].name, name) == 0)
                doc = &keys[k];
        if (doc) {
            /* type, then the range / choices of the key's spec: before any trial starts */
            enum dsnn_status st = check_key_type(group, doc, err);
            if (st == DSNN_OK)
                st = dsnn_key_check(doc, group, err);
            if (st != DSNN_OK)
                return st;
            continue;
        }
        char where[300], hint[200] = "";
        const char *near = closest_key(keys, n_keys, name);
        if (near)
            snprintf(hint, sizeof hint, " (did you mean '%s'?)", near);
        dsnn_cfg_where(group, name, where, sizeof where);
        if (warn_only) {
            char msg[1024];
            snprintf(msg, sizeof msg, "%s: key '%s.%s' is not a key of %s%s; it is ignored",
                     where, dsnn_cfg_path(group), name, owner, hint);
            warn_once(msg);
            continue;
        }
        return dsnn_error_set(err, DSNN_ERR_CONFIG,
                              "%s: key '%s.%s' is not a key of %s%s (set "
                              "experiment.allow_unknown_keys = true to ignore it)",
                              where, dsnn_cfg_path(group), name, owner, hint);
    }
    return DSNN_OK;
}

static enum dsnn_status read_experiment(struct experiment *ex, struct dsnn_error *err)
{
    const struct dsnn_cfg *root = dsnn_config_file_root(ex->cf);
    const struct dsnn_cfg *g = dsnn_cfg_group(root, "experiment");
    char where[300];
    if (dsnn_cfg_has(root, "experiment") && !g)
        return dsnn_error_set(err, DSNN_ERR_CONFIG, "%s: 'experiment' must be a group { ... }",
                              dsnn_cfg_where(root, "experiment", where, sizeof where));
    enum dsnn_status st;
    if ((st = dsnn_cfg_bool(g, "allow_unknown_keys", false, &ex->allow_unknown, err)) ||
        (st = check_keys(g, experiment_keys, DSNN_COUNT_OF(experiment_keys), "the host",
                         ex->allow_unknown, err)))
        return st;
    static char default_name[256];
    const char *base = strrchr(ex->cfg_path, '/');
    snprintf(default_name, sizeof default_name, "%s", base ? base + 1 : ex->cfg_path);
    char *dot = strrchr(default_name, '.');
    if (dot && dot != default_name)
        *dot = '\0';
    const char *mode = NULL;
    if ((st = dsnn_cfg_string(g, "name", default_name, &ex->name, err)) ||
        (st = dsnn_cfg_int(g, "seed", 42, &ex->seed, err)) ||
        (st = dsnn_cfg_int(g, "epochs", 1, &ex->epochs, err)) ||
        (st = dsnn_cfg_int(g, "num_samples", 1, &ex->num_samples, err)) ||
        (st = dsnn_cfg_int(g, "parallel", 1, &ex->parallel, err)) ||
        (st = dsnn_cfg_int(g, "threads", 0, &ex->threads, err)) ||
        (st = dsnn_cfg_string(g, "metric", "val_acc", &ex->metric, err)) ||
        (st = dsnn_cfg_string(g, "mode", "max", &mode, err)) ||
        (st = dsnn_cfg_int(g, "checkpoint_freq", 1, &ex->checkpoint_freq, err)) ||
        (st = dsnn_cfg_int(g, "keep_checkpoints", 1, &ex->keep_checkpoints, err)) ||
        (st = dsnn_cfg_int(g, "max_failures", 0, &ex->max_failures, err)) ||
        (st = dsnn_cfg_float(g, "trial_timeout_s", 0, &ex->trial_timeout_s, err)) ||
        (st = dsnn_cfg_bool(g, "rewire_before_eval", false, &ex->rewire_before_eval, err)))
        return st;
    if ((st = dsnn_cfg_check_range(g, "epochs", (double)ex->epochs, 1, 1e6, err)) ||
        (st = dsnn_cfg_check_range(g, "num_samples", (double)ex->num_samples, 1, 1e5, err)) ||
        (st = dsnn_cfg_check_range(g, "parallel", (double)ex->parallel, 1, 1024, err)) ||
        (st = dsnn_cfg_check_range(g, "threads", (double)ex->threads, 0, 1024, err)) ||
        (st = dsnn_cfg_check_range(g, "checkpoint_freq", (double)ex->checkpoint_freq, 0, 1e6,
                                   err)) ||
        (st = dsnn_cfg_check_range(g, "keep_checkpoints", (double)ex->keep_checkpoints, 1, 1000,
                                   err)) ||
        (st = dsnn_cfg_check_range(g, "max_failures", (double)ex->max_failures, 0, 1000, err)) ||
        (st = dsnn_cfg_check_range(g, "trial_timeout_s", ex->trial_timeout_s, 0, 1e9, err)))
        return st;
    if (strcasecmp(mode, "max") != 0 && strcasecmp(mode, "min") != 0)
        return dsnn_error_set(err, DSNN_ERR_CONFIG,
                              "%s: key 'experiment.mode': \"%s\" is not \"max\" or \"min\"",
                              dsnn_cfg_where(g, "mode", where, sizeof where), mode);
    ex->maximize = strcasecmp(mode, "max") == 0;
    if (!*ex->name || strspn(ex->name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                       "0123456789_.-") != strlen(ex->name) ||
        ex->name[0] == '.')
        return dsnn_error_set(err, DSNN_ERR_CONFIG,
                              "%s: key 'experiment.name': \"%s\" must be made of letters, digits, "
                              "'_', '.', '-' (it names a directory)",
                              dsnn_cfg_where(g, "name", where, sizeof where), ex->name);
    return DSNN_OK;
}

/* The other names of keys (DSNN_KEY_ALIAS, e.g. nupic's) given in group gname of cf are
 * renamed to the keys' own names, so that the plugin and every check see those only. */
static enum dsnn_status rename_aliases(struct dsnn_config_file *cf, const char *gname,
                                       const struct dsnn_key_spec *keys, size_t n,
                                       struct dsnn_error *err)
{
    const struct dsnn_key_spec *flat[512];
    size_t nf = dsnn_keys_flatten(keys, n, flat, DSNN_COUNT_OF(flat));
    if (nf > DSNN_COUNT_OF(flat))
        nf = DSNN_COUNT_OF(flat);
    enum dsnn_status st = DSNN_OK;
    for (size_t i = 0; i < nf && st == DSNN_OK; i++)
        if (flat[i]->type == DSNN_KEY_ALIAS)
            st = dsnn_config_file_rename(cf, gname, flat[i]->name, flat[i]->def_str, err);
    return st;
}

/* Checks the groups of a (trial) configuration and looks up their plugins into plugin[]; the
 * other names of keys are renamed (rename_aliases). */
static enum dsnn_status validate(struct dsnn_config_file *cf, const struct dsnn_registry *reg,
                                 bool allow_unknown,
                                 const struct dsnn_registry_entry *out_plugin[5], int *exit_code,
                                 struct dsnn_error *err)
{
    const struct dsnn_cfg *root = dsnn_config_file_root(cf);
    static const char *const groups[] = {"experiment", "dataset", "network", "model", "search"};
    char where[300];
    *exit_code = DSNN_EXIT_CONFIG;
    for (size_t i = 0; i < dsnn_cfg_count(root); i++) {
        const char *name = dsnn_cfg_child_name(root, i);
        bool known = false;
        for (size_t k = 0; k < DSNN_COUNT_OF(groups) && !known; k++)
            known = strcmp(groups[k], name) == 0;
        if (!known)
            return dsnn_error_set(err, DSNN_ERR_CONFIG,
                                  "%s: unknown top-level setting '%s' (expected the groups "
                                  "experiment, dataset, network, model, search)",
                                  dsnn_cfg_where(root, name, where, sizeof where), name);
    }
    for (enum dsnn_kind k = DSNN_KIND_DATASET; k <= DSNN_KIND_SEARCH; k++) {
        const char *gname = kind_group(k);
        const struct dsnn_cfg *g = dsnn_cfg_group(root, gname);
        if (!g && dsnn_cfg_has(root, gname))
            return dsnn_error_set(err, DSNN_ERR_CONFIG,
                                  "%s: '%s' must be a group { plugin = ...; }",
                                  dsnn_cfg_where(root, gname, where, sizeof where), gname);
        const char *plugin = NULL;
        enum dsnn_status st = dsnn_cfg_string(g, "plugin", k == DSNN_KIND_SEARCH ? "grid" : NULL,
                                              &plugin, err);
        if (st != DSNN_OK)
            return st;
        if (!plugin)
            return dsnn_error_set(err, DSNN_ERR_CONFIG,
                                  "%s: the configuration needs a group '%s = { plugin = \"...\"; "
                                  "... };' (see 'dsnn-host list')",
                                  dsnn_cfg_where(g ? g : root, NULL, where, sizeof where), gname);
        const struct dsnn_registry_entry *e = NULL;
        if ((st = dsnn_registry_lookup(reg, k, plugin, &e, err)) != DSNN_OK) {
            *exit_code = DSNN_EXIT_PLUGIN;
            return dsnn_error_prefix(err, "%s: key '%s.plugin'",
                                     dsnn_cfg_where(g ? g : root, "plugin", where, sizeof where),
                                     gname);
        }
        out_plugin[k] = e;
        if (g && (st = rename_aliases(cf, gname, e->component->keys, e->component->n_keys,
                                      err)) != DSNN_OK)
            return st;
        if (g) {
            char owner[200];
            snprintf(owner, sizeof owner, "%s plugin '%s' (see 'dsnn-host info %s')", gname,
                     plugin, plugin);
            if ((st = check_keys(g, e->component->keys, e->component->n_keys, owner,
                                 allow_unknown, err)))
                return st;
        }
    }
    *exit_code = DSNN_EXIT_OK;
    return DSNN_OK;
}

enum dsnn_status rn_config_build(const struct experiment *ex, const struct dsnn_param_set *ps,
                                     const char *id, const char *params_text,
                                     struct dsnn_config_file **out,
                                     const struct dsnn_registry_entry *plugin[5], int *code,
                                     struct dsnn_error *err)
{
    *code = DSNN_EXIT_CONFIG;
    struct dsnn_config_file *tcf = NULL;
    enum dsnn_status st = dsnn_config_file_clone(ex->cf, &tcf, err);
    for (size_t k = 0; k < ps->n && st == DSNN_OK; k++)
        st = dsnn_config_file_set(tcf, ps->items[k].path, &ps->items[k].value, err);
    if (st == DSNN_OK)
        st = validate(tcf, ex->reg, ex->allow_unknown, plugin, code, err);
    if (st != DSNN_OK) {
        dsnn_error_prefix(err, "%s (with the searched values of %s: %s)", ex->cfg_path, id,
                          params_text[0] ? params_text : "none");
        dsnn_config_file_free(tcf);
        return st;
    }
    *out = tcf;
    return DSNN_OK;
}

enum dsnn_status rn_trial_config(const struct experiment *ex, struct trial *t, int *code,
                                 struct dsnn_error *err)
{
    if (!t->cfg_built) {
        struct dsnn_error e = {0};
        t->cfg_status = rn_config_build(ex, &t->params, t->id, t->params_text, &t->tcf, t->plugin,
                                     &t->cfg_code, &e);
        if (t->cfg_status != DSNN_OK)
            t->cfg_error = strdup(e.msg);
        t->cfg_built = true;
    }
    *code = t->cfg_code;
    if (t->cfg_status != DSNN_OK)
        return dsnn_error_set(err, t->cfg_status, "%s",
                              t->cfg_error ? t->cfg_error : "out of memory");
    return DSNN_OK;
}

void rn_trial_config_drop(struct trial *t)
{
    dsnn_config_file_free(t->tcf);
    free(t->cfg_error);
    t->tcf = NULL;
    t->cfg_error = NULL;
    memset(t->plugin, 0, sizeof t->plugin);
    t->cfg_built = false;
}

/* The start of rn_setup and rn_setup_text: the fields every later failure path reads. */
static void setup_begin(struct experiment *ex, const struct dsnn_registry *reg, int *code)
{
    *code = DSNN_EXIT_CONFIG;
    ex->reg = reg;
    ex->lock_fd = -1;
    ex->host_pid = getpid();
}

/* The common part of rn_setup and rn_setup_text: ex->cf loaded. */
static enum dsnn_status setup_loaded(struct experiment *ex, const struct dsnn_registry *reg,
                                     int *code, struct dsnn_error *err)
{
    ex->cfg_text = dsnn_config_file_text(ex->cf, &ex->cfg_len);
    ex->cfg_hash = dsnn_fnv1a(DSNN_FNV_INIT, ex->cfg_text, ex->cfg_len);
    enum dsnn_status st;
    if ((st = read_experiment(ex, err)) != DSNN_OK ||
        (st = validate(ex->cf, reg, ex->allow_unknown, ex->plugin, code, err)) != DSNN_OK)
        return st;
    ex->sops = &ex->plugin[DSNN_KIND_SEARCH]->ops.search;
    ex->slots = ex->parallel; /* rn_mpi_prepare: parallel per worker rank */
    *code = DSNN_EXIT_CONFIG;
    return DSNN_OK;
}

/* Loads the configuration (once: its snapshot, @includes expanded, is what every trial is built
 * from, what is hashed and what is saved as experiment.cfg), reads the experiment group,
 * validates it against the plugins. */
enum dsnn_status rn_setup(struct experiment *ex, const struct dsnn_registry *reg, int *code,
                          struct dsnn_error *err)
{
    setup_begin(ex, reg, code);
    enum dsnn_status st = dsnn_config_file_load(ex->cfg_path, &ex->cf, err);
    if (st != DSNN_OK) {
        *code = st == DSNN_ERR_IO ? DSNN_EXIT_IO : DSNN_EXIT_CONFIG;
        return st;
    }
    return setup_loaded(ex, reg, code, err);
}

enum dsnn_status rn_setup_text(struct experiment *ex, const struct dsnn_registry *reg,
                               const char *name, const char *text, size_t len, int *code,
                               struct dsnn_error *err)
{
    setup_begin(ex, reg, code);
    ex->cfg_path = name;
    char *copy = malloc(len + 1); /* NUL-terminated for the parser */
    if (!copy)
        return dsnn_error_set(err, DSNN_ERR_NOMEM, "out of memory");
    memcpy(copy, text, len);
    copy[len] = '\0';
    enum dsnn_status st = dsnn_config_file_parse(copy, name, &ex->cf, err);
    free(copy);
    return st != DSNN_OK ? st : setup_loaded(ex, reg, code, err);
}

/* Up front, before anything runs: asks a scratch instance of the strategy for every trial it
 * proposes without results (suggest 0, 1, ... until done) and validates each configuration, so
 * that a searched key that is not a key of its plugin, or a value of the wrong type, stops the
 * experiment at once instead of failing every trial. Strategies that decide as results arrive
 * get their later suggestions validated when they are made. */
enum dsnn_status rn_validate_upfront(struct experiment *ex, struct dsnn_error *err)
{
    void *scratch = NULL;
    enum dsnn_status st = rn_search_create(ex, &scratch, err);
    if (st != DSNN_OK)
        return st;
    size_t n = 0;
    for (int i = 0;; i++) {
        if (i >= MAX_TRIALS) {
            st = dsnn_error_set(err, DSNN_ERR_CONFIG, "the search proposes more than %d trials",
                                MAX_TRIALS);
            break;
        }
        struct dsnn_param_set ps;
        memset(&ps, 0, sizeof ps);
        bool done = false;
        if ((st = ex->sops->suggest(scratch, i, &ps, &done, err)) != DSNN_OK) {
            dsnn_error_prefix(err, "search '%s'", ex->plugin[DSNN_KIND_SEARCH]->name);
            break;
        }
        if (done)
            break;
        char id[32], text[1024];
        snprintf(id, sizeof id, "trial_%05d", i);
        rn_format_params(&ps, text, sizeof text);
        struct dsnn_config_file *tcf = NULL;
        const struct dsnn_registry_entry *plugin[5] = {0};
        int code;
        if ((st = rn_config_build(ex, &ps, id, text, &tcf, plugin, &code, err)) != DSNN_OK)
            break;
        dsnn_config_file_free(tcf);
        n++;
    }
    ex->sops->destroy(scratch);
    if (st == DSNN_OK && n == 0)
        st = dsnn_error_set(err, DSNN_ERR_CONFIG, "the search strategy proposed no trial");
    ex->n_known = n;
    return st;
}

int rn_trial_threads(const struct experiment *ex, size_t n_trials)
{
    if (ex->threads > 0)
        return (int)ex->threads;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    long at_once = ex->parallel;
    if (n_trials > 0 && (long)n_trials < at_once)
        at_once = (long)n_trials;
    long t = cores > 0 ? cores / (at_once > 0 ? at_once : 1) : 1;
    return t >= 1 ? (int)t : 1;
}
