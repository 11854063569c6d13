/* runner.c - runs an experiment: validates the configuration against the plugins' documented
 * keys, enumerates the trials of the search strategy, runs each trial in a child process
 * (a crashing plugin fails one trial, not the experiment) and writes the results directory. */
#define _XOPEN_SOURCE 700 /* nftw */
#include "runner.h"

#include <errno.h>
#include <ftw.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dsnn/dsnn.h"
#include "results.h"

#define MAX_TRIALS 100000

/* Keys of the `experiment` group (the host's own). */
static const struct dsnn_key_doc experiment_keys[] = {
    {"name", DSNN_KEY_STRING, "basename of the config file",
     "experiment name: results go to <results_dir>/<name>/ ([A-Za-z0-9_.-])"},
    {"seed", DSNN_KEY_INT, "42", "experiment seed; trial i uses a seed derived from (seed, i)"},
    {"epochs", DSNN_KEY_INT, "1", "epochs per trial"},
    {"num_samples", DSNN_KEY_INT, "1", "repetitions of the search space (different seeds)"},
    {"parallel", DSNN_KEY_INT, "1", "trials at once (this version runs them one at a time)"},
    {"threads", DSNN_KEY_INT, "0", "threads per trial (0: all cores)"},
    {"metric", DSNN_KEY_STRING, "\"val_acc\"", "metric the search strategy optimises"},
    {"mode", DSNN_KEY_STRING, "\"max\"", "\"max\" or \"min\" of metric"},
    {"results_dir", DSNN_KEY_STRING, "\"results\"", "root of the results directories"},
    {"allow_unknown_keys", DSNN_KEY_BOOL, "false",
     "report unknown configuration keys as warnings instead of errors"},
};

struct experiment {
    const char *cfg_path;
    struct dsnn_config_file *cf;
    const char *name;
    int64_t seed, epochs, num_samples, parallel, threads;
    const char *metric;
    bool maximize;
    bool allow_unknown;
    const struct dsnn_registry_entry *plugin[5]; /* by enum dsnn_kind */
    char dir[1024];
    char journal[1100];
    bool quiet;
};

struct trial {
    int index;
    char id[32];
    struct dsnn_param_set params;
    char params_text[2048];
    enum { TRIAL_PENDING, TRIAL_TERMINATED, TRIAL_ERROR, TRIAL_INTERRUPTED } status;
    int epochs_done;
    double last_metric, best_metric;
    char error[DSNN_ERROR_MSG_MAX];
    double seconds;
};

static volatile sig_atomic_t g_interrupted;
static volatile sig_atomic_t g_trial_pid; /* the running trial process, 0 if none */

/* SIGINT / SIGTERM: no new trial is started, and the running trial process gets the signal too
 * (as a Ctrl-C in a terminal does, to the whole process group): a `kill` of the host alone must
 * stop it promptly, not after the trial's epoch, and not never when the trial hangs. */
static void on_signal(int sig)
{
    g_interrupted = 1;
    pid_t pid = (pid_t)g_trial_pid;
    if (pid > 0)
        kill(pid, sig);
}

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

static const char *closest_key(const struct dsnn_key_doc *keys, size_t n, const char *name)
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
static enum dsnn_status check_key_type(const struct dsnn_cfg *group, const struct dsnn_key_doc *doc,
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
    case DSNN_KEY_ANY: return DSNN_OK;
    }
    return DSNN_OK;
}

/* Reports keys of group that keys[] does not document ("plugin" is always allowed), and values
 * of documented keys that do not have the documented type. */
static enum dsnn_status check_keys(const struct dsnn_cfg *group, const struct dsnn_key_doc *keys,
                                   size_t n_keys, const char *owner, bool warn_only,
                                   struct dsnn_error *err)
{
    for (size_t i = 0; i < dsnn_cfg_count(group); i++) {
        const char *name = dsnn_cfg_child_name(group, i);
        if (!name || strcmp(name, "plugin") == 0)
            continue;
        const struct dsnn_key_doc *doc = NULL;
        for (size_t k = 0; k < n_keys && !doc; k++)
            if (strcmp(keys[k].name, name) == 0)
                doc = &keys[k];
        if (doc) {
            enum dsnn_status st = check_key_type(group, doc, err);
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
            fprintf(stderr, "warning: %s: key '%s.%s' is not a key of %s%s; it is ignored\n", where,
                    dsnn_cfg_path(group), name, owner, hint);
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
        (st = dsnn_cfg_string(g, "mode", "max", &mode, err)))
        return st;
    if ((st = dsnn_cfg_check_range(g, "epochs", (double)ex->epochs, 1, 1e6, err)) ||
        (st = dsnn_cfg_check_range(g, "num_samples", (double)ex->num_samples, 1, 1e5, err)) ||
        (st = dsnn_cfg_check_range(g, "parallel", (double)ex->parallel, 1, 1024, err)) ||
        (st = dsnn_cfg_check_range(g, "threads", (double)ex->threads, 0, 1024, err)))
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

/* Checks the groups of a (trial) configuration and looks up their plugins. */
static enum dsnn_status validate(struct experiment *ex, const struct dsnn_config_file *cf,
                                 const struct dsnn_registry *reg, int *exit_code,
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
            return dsnn_error_set(err, DSNN_ERR_CONFIG, "%s: '%s' must be a group { plugin = ...; }",
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
        ex->plugin[k] = e;
        if (g) {
            char owner[200];
            snprintf(owner, sizeof owner, "%s plugin '%s' (see 'dsnn-host info %s')", gname,
                     plugin, plugin);
            if ((st = check_keys(g, e->component->keys, e->component->n_keys, owner,
                                 ex->allow_unknown, err)))
                return st;
        }
    }
    *exit_code = DSNN_EXIT_OK;
    return DSNN_OK;
}

/* ---- trial child ---- */

enum msg_type { MSG_RESULT = 1, MSG_ERROR = 2, MSG_DONE = 3 };
struct msg_header {
    uint32_t type, size;
};

static bool write_full(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t w = write(fd, c, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        c += w;
        n -= (size_t)w;
    }
    return true;
}

/* 1: ok, 0: EOF before anything, -1: error / short */
static int read_full(int fd, void *p, size_t n)
{
    char *c = p;
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, c + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return got == 0 && r == 0 ? 0 : -1;
        got += (size_t)r;
    }
    return 1;
}

static bool send_msg(int fd, uint32_t type, const void *payload, uint32_t size)
{
    struct msg_header h = {type, size};
    return write_full(fd, &h, sizeof h) && (!size || write_full(fd, payload, size));
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static enum dsnn_status trial_body(struct experiment *ex, const struct dsnn_config_file *tcf,
                                   const struct trial *t, const char *trial_dir, int wfd, int rfd,
                                   FILE *log, struct dsnn_error *err)
{
    const struct dsnn_cfg *root = dsnn_config_file_root(tcf);
    struct dsnn_run_ctx ctx = {
        .seed = dsnn_seed_mix((uint64_t)ex->seed, (uint64_t)t->index),
        .trial_index = t->index,
        .epochs = (int)ex->epochs,
        .n_threads = ex->threads > 0 ? (int)ex->threads : 0,
        .trial_dir = trial_dir,
        .log = log,
    };
    dsnn_set_num_threads(ctx.n_threads);
    ctx.n_threads = dsnn_get_num_threads();
    const struct dsnn_dataset_ops *dops = &ex->plugin[DSNN_KIND_DATASET]->ops.dataset;
    const struct dsnn_network_ops *nops = &ex->plugin[DSNN_KIND_NETWORK]->ops.network;
    const struct dsnn_model_ops *mops = &ex->plugin[DSNN_KIND_MODEL]->ops.model;
    struct dsnn_data data = {.ops = dops};
    struct dsnn_net *net = NULL;
    void *model = NULL;
    enum dsnn_status st =
        dops->open(dsnn_cfg_group(root, "dataset"), &ctx, &data.state, &data.info, err);
    if (st != DSNN_OK) {
        dsnn_error_prefix(err, "dataset '%s'", ex->plugin[DSNN_KIND_DATASET]->name);
        return st;
    }
    st = nops->build(dsnn_cfg_group(root, "network"), &ctx, data.info.shape, data.info.n_classes,
                     &net, err);
    if (st != DSNN_OK) {
        dsnn_error_prefix(err, "network '%s'", ex->plugin[DSNN_KIND_NETWORK]->name);
        goto out;
    }
    st = mops->create(dsnn_cfg_group(root, "model"), &ctx, net, &data.info, &model, err);
    if (st == DSNN_OK && !dsnn_net_initialized(net))
        st = dsnn_error_set(err, DSNN_ERR_INTERNAL, "create() did not initialise the network");
    if (st != DSNN_OK) {
        dsnn_error_prefix(err, "model '%s'", ex->plugin[DSNN_KIND_MODEL]->name);
        goto out;
    }
    fprintf(log, "%s: %zu trainable parameters, %d threads\n", t->id, dsnn_net_param_count(net),
            ctx.n_threads);
    double t_start = now_s();
    for (int epoch = 0; epoch < ex->epochs; epoch++) {
        static struct dsnn_metrics m; /* large: keep it off the stack */
        dsnn_metrics_clear(&m);
        dsnn_metrics_set(&m, "epoch", epoch);
        dsnn_metrics_set(&m, "training_iteration", epoch + 1);
        double t0 = now_s();
        if ((st = mops->train_epoch(model, &data, epoch, &m, err)) != DSNN_OK) {
            dsnn_error_prefix(err, "model '%s': epoch %d", ex->plugin[DSNN_KIND_MODEL]->name,
                              epoch);
            goto out;
        }
        double t1 = now_s();
        if ((st = mops->evaluate(model, &data, DSNN_SPLIT_TEST, &m, err)) != DSNN_OK)
            goto out;
        if (data.info.n_noise > 0 &&
            (st = mops->evaluate(model, &data, DSNN_SPLIT_NOISE, &m, err)) != DSNN_OK)
            goto out;
        double t2 = now_s();
        dsnn_metrics_set(&m, "time_train_s", t1 - t0);
        dsnn_metrics_set(&m, "time_this_epoch_s", t2 - t0);
        dsnn_metrics_set(&m, "time_total_s", t2 - t_start);
        dsnn_metrics_set(&m, "timestamp", (double)time(NULL));
        if (!send_msg(wfd, MSG_RESULT, &m, (uint32_t)sizeof m)) {
            st = dsnn_error_set(err, DSNN_ERR_IO, "lost the connection to the host");
            goto out;
        }
        uint8_t decision = DSNN_SEARCH_CONTINUE;
        if (read_full(rfd, &decision, 1) != 1) {
            st = dsnn_error_set(err, DSNN_ERR_IO, "lost the connection to the host");
            goto out;
        }
        if (decision == DSNN_SEARCH_STOP)
            break;
    }
out:
    if (model)
        mops->destroy(model);
    dsnn_net_free(net);
    if (data.state)
        dops->close(data.state);
    return st;
}

static void run_child(struct experiment *ex, const struct dsnn_config_file *tcf,
                      const struct trial *t, const char *trial_dir, int wfd, int rfd)
{
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    sigset_t stop_signals; /* blocked by the host around fork(): a signal sent since kills now */
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    sigprocmask(SIG_UNBLOCK, &stop_signals, NULL);
    char path[1200];
    snprintf(path, sizeof path, "%s/log.txt", trial_dir);
    FILE *log = fopen(path, "a");
    if (!log)
        log = stderr;
    struct dsnn_error err = {0};
    enum dsnn_status st = trial_body(ex, tcf, t, trial_dir, wfd, rfd, log, &err);
    if (st != DSNN_OK) {
        if (!err.msg[0])
            dsnn_error_set(&err, st, "%s", dsnn_status_str(st));
        err.status = st;
        fprintf(log, "error: %s\n", err.msg);
        send_msg(wfd, MSG_ERROR, &err, (uint32_t)sizeof err);
    } else {
        send_msg(wfd, MSG_DONE, NULL, 0);
    }
    if (log != stderr)
        fclose(log);
    fflush(NULL);
    _exit(st == DSNN_OK ? 0 : 1);
}

/* ---- parent ---- */

static void journal(struct experiment *ex, const char *fmt, ...) DSNN_PRINTF(2, 3);
static void journal(struct experiment *ex, const char *fmt, ...)
{
    char line[8192], ts[32];
    int len = snprintf(line, sizeof line, "{\"time\": \"%s\", ", dsnn_iso_time(ts, sizeof ts));
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line + len, sizeof line - (size_t)len, fmt, ap);
    va_end(ap);
    strncat(line, "}", sizeof line - strlen(line) - 1);
    struct dsnn_error err = {0};
    if (dsnn_append_line(ex->journal, line, &err) != DSNN_OK)
        fprintf(stderr, "warning: %s\n", err.msg);
}

static void print_progress(const struct experiment *ex, const struct trial *t,
                           const struct dsnn_metrics *m)
{
    if (ex->quiet)
        return;
    static const char *const shown[] = {"train_loss", "train_acc", "val_loss", "val_acc",
                                        "noise_acc", "learning_rate"};
    double v;
    int epoch = dsnn_metrics_get(m, "training_iteration", &v) ? (int)v : 0;
    printf("[%s %s] epoch %d/%lld", t->id, t->params_text[0] ? t->params_text : "-", epoch,
           (long long)ex->epochs);
    for (size_t i = 0; i < DSNN_COUNT_OF(shown); i++)
        if (dsnn_metrics_get(m, shown[i], &v))
            printf("  %s %.4g", shown[i], v);
    if (dsnn_metrics_get(m, "time_this_epoch_s", &v))
        printf("  (%.1f s)", v);
    printf("\n");
    fflush(stdout);
}

static const char *signal_name(int sig)
{
    switch (sig) {
    case SIGSEGV: return "SIGSEGV (segmentation fault)";
    case SIGABRT: return "SIGABRT (abort)";
    case SIGFPE: return "SIGFPE (arithmetic exception)";
    case SIGBUS: return "SIGBUS (bus error)";
    case SIGILL: return "SIGILL (illegal instruction)";
    case SIGKILL: return "SIGKILL (killed; out of memory?)";
    case SIGINT: return "SIGINT (interrupted)";
    case SIGTERM: return "SIGTERM (terminated)";
    default: return "a signal";
    }
}

static void run_trial(struct experiment *ex, const struct dsnn_registry *reg,
                      const struct dsnn_config_file *tcf, struct trial *t, void *search_state)
{
    (void)reg;
    const struct dsnn_search_ops *sops = &ex->plugin[DSNN_KIND_SEARCH]->ops.search;
    char trial_dir[1100];
    snprintf(trial_dir, sizeof trial_dir, "%s/%s", ex->dir, t->id);
    struct dsnn_trial_files tf;
    struct dsnn_error err = {0};
    double t0 = now_s();
    if (dsnn_trial_files_open(&tf, trial_dir, &err) != DSNN_OK) {
        t->status = TRIAL_ERROR;
        snprintf(t->error, sizeof t->error, "%s", err.msg);
        return;
    }
    char path[1200];
    snprintf(path, sizeof path, "%s/trial.cfg", trial_dir);
    if (dsnn_config_file_write(tcf, path, &err) != DSNN_OK)
        fprintf(stderr, "warning: %s\n", err.msg);
    journal(ex, "\"event\": \"trial_started\", \"trial_id\": \"%s\"", t->id);
    int to_host[2], to_child[2];
    if (pipe(to_host) != 0 || pipe(to_child) != 0) {
        t->status = TRIAL_ERROR;
        snprintf(t->error, sizeof t->error, "cannot create a pipe: %s", strerror(errno));
        return;
    }
    fflush(NULL);
    /* SIGINT / SIGTERM stay blocked until g_trial_pid names the child, so that on_signal
     * forwards them to it (the child unblocks them once their default action is back). */
    sigset_t stop_signals, old_mask;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, &old_mask);
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
        t->status = TRIAL_ERROR;
        snprintf(t->error, sizeof t->error, "cannot fork: %s", strerror(e));
        close(to_host[0]), close(to_host[1]), close(to_child[0]), close(to_child[1]);
        return;
    }
    if (pid == 0) {
        close(to_host[0]);
        close(to_child[1]);
        run_child(ex, tcf, t, trial_dir, to_host[1], to_child[0]);
    }
    g_trial_pid = (sig_atomic_t)pid;
    if (g_interrupted) /* signalled just before fork() (or on another thread): stop it too */
        kill(pid, SIGTERM);
    pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
    close(to_host[1]);
    close(to_child[0]);
    bool done = false, child_error = false;
    static struct dsnn_metrics m;
    for (;;) {
        struct msg_header h;
        int r = read_full(to_host[0], &h, sizeof h);
        if (r <= 0)
            break;
        if (h.type == MSG_RESULT && h.size == sizeof m) {
            if (read_full(to_host[0], &m, sizeof m) != 1)
                break;
            if (m.n > DSNN_METRICS_MAX)
                break;
            for (size_t i = 0; i < m.n; i++)
                m.items[i].name[DSNN_METRIC_NAME_MAX - 1] = '\0';
            t->epochs_done++;
            if (dsnn_trial_files_epoch(&tf, t->id, &m, &err) != DSNN_OK)
                fprintf(stderr, "warning: %s\n", err.msg);
            double v;
            if (dsnn_metrics_get(&m, ex->metric, &v)) {
                t->last_metric = v;
                if (isnan(t->best_metric) || (ex->maximize ? v > t->best_metric : v < t->best_metric))
                    t->best_metric = v;
            }
            journal(ex, "\"event\": \"trial_result\", \"trial_id\": \"%s\", \"epoch\": %d, "
                        "\"%s\": %.8g",
                    t->id, t->epochs_done - 1, ex->metric, t->last_metric);
            print_progress(ex, t, &m);
            uint8_t decision = (uint8_t)(sops->on_result ? sops->on_result(search_state, t->index,
                                                                           t->epochs_done - 1, &m)
                                                         : DSNN_SEARCH_CONTINUE);
            if (g_interrupted)
                decision = DSNN_SEARCH_STOP;
            if (!write_full(to_child[1], &decision, 1))
                break;
        } else if (h.type == MSG_ERROR && h.size == sizeof err) {
            struct dsnn_error cerr;
            if (read_full(to_host[0], &cerr, sizeof cerr) != 1)
                break;
            cerr.msg[sizeof cerr.msg - 1] = '\0';
            snprintf(t->error, sizeof t->error, "%s", cerr.msg);
            child_error = true;
        } else if (h.type == MSG_DONE && h.size == 0) {
            done = true;
        } else {
            snprintf(t->error, sizeof t->error, "protocol error from the trial process");
            kill(pid, SIGKILL);
            break;
        }
    }
    close(to_host[0]);
    close(to_child[1]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    g_trial_pid = 0;
    t->seconds = now_s() - t0;
    if (done && WIFEXITED(status) && WEXITSTATUS(status) == 0 && !g_interrupted) {
        t->status = TRIAL_TERMINATED;
    } else if (g_interrupted && !child_error) {
        t->status = TRIAL_INTERRUPTED;
        snprintf(t->error, sizeof t->error, "interrupted");
    } else {
        t->status = TRIAL_ERROR;
        if (!child_error) {
            if (WIFSIGNALED(status))
                snprintf(t->error, sizeof t->error,
                         "the trial process was killed by signal %d, %s, after %d epoch(s); see "
                         "%.600s/log.txt",
                         WTERMSIG(status), signal_name(WTERMSIG(status)), t->epochs_done,
                         trial_dir);
            else if (!t->error[0])
                snprintf(t->error, sizeof t->error,
                         "the trial process exited with status %d after %d epoch(s)",
                         WIFEXITED(status) ? WEXITSTATUS(status) : -1, t->epochs_done);
        }
    }
    if (t->status == TRIAL_ERROR) {
        if (dsnn_trial_files_error(&tf, t->error, &err) != DSNN_OK)
            fprintf(stderr, "warning: %s\n", err.msg);
        fprintf(stderr, "%s: ERROR: %s\n", t->id, t->error);
    }
    char msg[DSNN_ERROR_MSG_MAX * 2];
    dsnn_json_string(t->error, msg, sizeof msg);
    journal(ex, "\"event\": \"trial_finished\", \"trial_id\": \"%s\", \"status\": \"%s\", "
                "\"epochs\": %d, \"error\": %s",
            t->id,
            t->status == TRIAL_TERMINATED ? "TERMINATED"
            : t->status == TRIAL_ERROR    ? "ERROR"
                                          : "INTERRUPTED",
            t->epochs_done, msg);
    if (sops->on_complete)
        sops->on_complete(search_state, t->index, t->status == TRIAL_ERROR);
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

static enum dsnn_status prepare_dir(struct experiment *ex, const char *root, bool overwrite,
                                    struct dsnn_error *err)
{
    if (snprintf(ex->dir, sizeof ex->dir, "%s/%s", root, ex->name) >= (int)sizeof ex->dir)
        return dsnn_error_set(err, DSNN_ERR_IO, "results path too long");
    snprintf(ex->journal, sizeof ex->journal, "%s/journal.jsonl", ex->dir);
    struct stat st;
    if (stat(ex->dir, &st) == 0) {
        if (!overwrite)
            return dsnn_error_set(err, DSNN_ERR_IO,
                                  "%s already exists: choose another experiment.name, remove it, "
                                  "or pass --overwrite",
                                  ex->dir);
        /* Only a dsnn results directory is ever removed: never a plain file (or a link to
         * one) of that name, nor a directory without journal.jsonl and experiment.cfg. */
        char journal_path[1100], cfg_path[1100];
        snprintf(journal_path, sizeof journal_path, "%s/journal.jsonl", ex->dir);
        snprintf(cfg_path, sizeof cfg_path, "%s/experiment.cfg", ex->dir);
        if (!S_ISDIR(st.st_mode) || (stat(journal_path, &st) != 0 && stat(cfg_path, &st) != 0))
            return dsnn_error_set(err, DSNN_ERR_IO,
                                  "%s exists but is not a dsnn results directory; refusing "
                                  "to overwrite it",
                                  ex->dir);
        if (nftw(ex->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS) != 0)
            return dsnn_error_set(err, DSNN_ERR_IO, "%s: cannot remove: %s", ex->dir,
                                  strerror(errno));
    }
    return dsnn_mkdirs(ex->dir, err);
}

static void format_params(const struct dsnn_param_set *ps, char *buf, size_t size)
{
    size_t len = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < ps->n && len < size; i++) {
        char v[256];
        dsnn_value_to_json(&ps->items[i].value, v, sizeof v);
        const char *p = ps->items[i].path;
        int w = snprintf(buf + len, size - len, "%s%s=%s", i ? " " : "", p, v);
        if (w < 0)
            break;
        len += (size_t)w;
    }
}

static enum dsnn_status write_params_json(const char *dir, const struct dsnn_param_set *ps,
                                          uint64_t seed, struct dsnn_error *err)
{
    char buf[16384];
    size_t len = (size_t)snprintf(buf, sizeof buf, "{");
    for (size_t i = 0; i < ps->n && len < sizeof buf; i++) {
        char k[300], v[4096];
        dsnn_json_string(ps->items[i].path, k, sizeof k);
        dsnn_value_to_json(&ps->items[i].value, v, sizeof v);
        len += (size_t)snprintf(buf + len, sizeof buf - len, "%s%s: %s", i ? ", " : "", k, v);
    }
    if (len < sizeof buf)
        len += (size_t)snprintf(buf + len, sizeof buf - len, "%s\"trial_seed\": %llu}\n",
                                ps->n ? ", " : "", (unsigned long long)seed);
    if (len >= sizeof buf)
        return dsnn_error_set(err, DSNN_ERR_INVALID, "%s: parameters too long", dir);
    char path[1200];
    snprintf(path, sizeof path, "%s/params.json", dir);
    return dsnn_write_file_atomic(path, buf, len, err);
}

static void print_summary(const struct experiment *ex, const struct trial *trials, size_t n)
{
    if (ex->quiet)
        return;
    printf("\n%-12s %-11s %6s %10s %10s %8s  %s\n", "trial", "status", "epochs", "last", "best",
           "time_s", "params");
    for (size_t i = 0; i < n; i++) {
        const struct trial *t = &trials[i];
        const char *s = t->status == TRIAL_TERMINATED ? "TERMINATED"
                        : t->status == TRIAL_ERROR    ? "ERROR"
                        : t->status == TRIAL_PENDING  ? "PENDING"
                                                      : "INTERRUPTED";
        printf("%-12s %-11s %6d %10.4f %10.4f %8.1f  %s\n", t->id, s, t->epochs_done,
               t->last_metric, t->best_metric, t->seconds, t->params_text[0] ? t->params_text : "-");
    }
    printf("(last / best = %s, mode %s)  results: %s\n", ex->metric, ex->maximize ? "max" : "min",
           ex->dir);
}

int dsnn_run_experiment(struct dsnn_registry *reg, const char *cfg_path,
                        const struct dsnn_run_options *opt, struct dsnn_error *err)
{
    struct experiment ex = {.cfg_path = cfg_path, .quiet = opt && opt->quiet};
    struct trial *trials = NULL;
    struct dsnn_config_file *tcf = NULL;
    void *search_state = NULL;
    const struct dsnn_search_ops *sops = NULL;
    int code = DSNN_EXIT_CONFIG;
    enum dsnn_status st = dsnn_config_file_load(cfg_path, &ex.cf, err);
    if (st != DSNN_OK)
        return st == DSNN_ERR_IO ? DSNN_EXIT_IO : DSNN_EXIT_CONFIG;
    if ((st = read_experiment(&ex, err)) != DSNN_OK)
        goto out;
    if ((st = validate(&ex, ex.cf, reg, &code, err)) != DSNN_OK)
        goto out;
    code = DSNN_EXIT_CONFIG;
    if (ex.parallel > 1)
        fprintf(stderr, "note: experiment.parallel = %lld: this version runs trials one at a time\n",
                (long long)ex.parallel);

    /* Search strategy: enumerate and validate every trial before running any. */
    sops = &ex.plugin[DSNN_KIND_SEARCH]->ops.search;
    struct dsnn_search_ctx sctx = {
        .seed = (uint64_t)ex.seed,
        .num_samples = (int)ex.num_samples,
        .max_epochs = (int)ex.epochs,
        .metric = ex.metric,
        .maximize = ex.maximize,
    };
    const struct dsnn_cfg *root = dsnn_config_file_root(ex.cf);
    if ((st = sops->create(dsnn_cfg_group(root, "search"), &sctx, &search_state, err)) !=
        DSNN_OK) {
        dsnn_error_prefix(err, "search '%s'", ex.plugin[DSNN_KIND_SEARCH]->name);
        goto out;
    }
    size_t n_trials = 0, cap = 0;
    for (int i = 0;; i++) {
        if (i >= MAX_TRIALS) {
            st = dsnn_error_set(err, DSNN_ERR_CONFIG, "the search proposes more than %d trials",
                                MAX_TRIALS);
            goto out;
        }
        if (n_trials == cap) {
            cap = cap ? cap * 2 : 16;
            struct trial *nt = realloc(trials, cap * sizeof *nt);
            if (!nt) {
                st = dsnn_error_set(err, DSNN_ERR_NOMEM, "out of memory");
                goto out;
            }
            trials = nt;
        }
        struct trial *t = &trials[n_trials];
        memset(t, 0, sizeof *t);
        bool done = false;
        if ((st = sops->suggest(search_state, i, &t->params, &done, err)) != DSNN_OK) {
            dsnn_error_prefix(err, "search '%s'", ex.plugin[DSNN_KIND_SEARCH]->name);
            goto out;
        }
        if (done)
            break;
        t->index = i;
        t->best_metric = t->last_metric = NAN;
        snprintf(t->id, sizeof t->id, "trial_%05d", i);
        format_params(&t->params, t->params_text, sizeof t->params_text);
        n_trials++;
    }
    if (n_trials == 0) {
        st = dsnn_error_set(err, DSNN_ERR_CONFIG, "the search strategy proposed no trial");
        goto out;
    }
    /* Validate each trial's configuration (a searched key must be a key of its plugin). */
    for (size_t i = 0; i < n_trials; i++) {
        struct experiment check = ex;
        dsnn_config_file_free(tcf);
        tcf = NULL;
        if ((st = dsnn_config_file_load(cfg_path, &tcf, err)) != DSNN_OK)
            goto out;
        for (size_t k = 0; k < trials[i].params.n; k++)
            if ((st = dsnn_config_file_set(tcf, trials[i].params.items[k].path,
                                           &trials[i].params.items[k].value, err)) != DSNN_OK)
                goto out;
        if ((st = validate(&check, tcf, reg, &code, err)) != DSNN_OK) {
            dsnn_error_prefix(err, "%s (with the searched values of %s: %s)", cfg_path,
                              trials[i].id, trials[i].params_text);
            goto out;
        }
    }

    const char *root_dir = opt && opt->results_root ? opt->results_root : NULL;
    if (!root_dir && (st = dsnn_cfg_string(dsnn_cfg_group(root, "experiment"), "results_dir",
                                           "results", &root_dir, err)) != DSNN_OK)
        goto out;
    code = DSNN_EXIT_IO;
    if ((st = prepare_dir(&ex, root_dir, opt && opt->overwrite, err)) != DSNN_OK)
        goto out;
    char path[1200];
    snprintf(path, sizeof path, "%s/experiment.cfg", ex.dir);
    if ((st = dsnn_copy_file(cfg_path, path, err)) != DSNN_OK)
        goto out;
    char name_json[300];
    dsnn_json_string(ex.name, name_json, sizeof name_json);
    journal(&ex, "\"event\": \"experiment_started\", \"name\": %s, \"trials\": %zu, "
                 "\"dsnn_version\": \"%s\"",
            name_json, n_trials, DSNN_VERSION_STRING);
    for (size_t i = 0; i < n_trials; i++) {
        char dir[1100];
        snprintf(dir, sizeof dir, "%s/%s", ex.dir, trials[i].id);
        if ((st = dsnn_mkdirs(dir, err)) ||
            (st = write_params_json(dir, &trials[i].params,
                                    dsnn_seed_mix((uint64_t)ex.seed, (uint64_t)trials[i].index),
                                    err)))
            goto out;
        char pj[2200];
        dsnn_json_string(trials[i].params_text, pj, sizeof pj);
        journal(&ex, "\"event\": \"trial_created\", \"trial_id\": \"%s\", \"params\": %s",
                trials[i].id, pj);
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    struct sigaction old_int, old_term;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    if (!ex.quiet) {
        printf("experiment '%s': %zu trial(s) x %lld epoch(s); dataset %s, network %s, model %s, "
               "search %s\nresults: %s\n",
               ex.name, n_trials, (long long)ex.epochs, ex.plugin[DSNN_KIND_DATASET]->name,
               ex.plugin[DSNN_KIND_NETWORK]->name, ex.plugin[DSNN_KIND_MODEL]->name,
               ex.plugin[DSNN_KIND_SEARCH]->name, ex.dir);
        fflush(stdout);
    }
    size_t n_failed = 0;
    for (size_t i = 0; i < n_trials && !g_interrupted; i++) {
        dsnn_config_file_free(tcf);
        tcf = NULL;
        if ((st = dsnn_config_file_load(cfg_path, &tcf, err)) != DSNN_OK)
            break;
        for (size_t k = 0; k < trials[i].params.n && st == DSNN_OK; k++)
            st = dsnn_config_file_set(tcf, trials[i].params.items[k].path,
                                      &trials[i].params.items[k].value, err);
        if (st != DSNN_OK)
            break;
        run_trial(&ex, reg, tcf, &trials[i], search_state);
        n_failed += trials[i].status == TRIAL_ERROR;
    }
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    if (st != DSNN_OK)
        goto out;
    print_summary(&ex, trials, n_trials);
    if (g_interrupted) {
        journal(&ex, "\"event\": \"experiment_interrupted\"");
        st = dsnn_error_set(err, DSNN_ERR_INTERRUPTED, "interrupted; partial results in %s",
                            ex.dir);
        code = DSNN_EXIT_INTERRUPTED;
        goto out;
    }
    journal(&ex, "\"event\": \"experiment_finished\", \"failed_trials\": %zu", n_failed);
    if (n_failed) {
        dsnn_error_set(err, DSNN_ERR_INTERNAL, "%zu of %zu trial(s) ended in ERROR (see error.txt "
                                               "in their folders under %s)",
                       n_failed, n_trials, ex.dir);
        code = DSNN_EXIT_TRIALS_FAILED;
    } else {
        code = DSNN_EXIT_OK;
    }
    st = DSNN_OK;
out:
    if (search_state)
        sops->destroy(search_state);
    dsnn_config_file_free(tcf);
    dsnn_config_file_free(ex.cf);
    free(trials);
    if (st != DSNN_OK && code == DSNN_EXIT_OK)
        code = DSNN_EXIT_CONFIG;
    return code;
}
