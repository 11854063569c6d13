/* runner.c - runs an experiment (dsnn-host run) or continues one (dsnn-host resume).
 *
 * The configuration is validated against the plugins' documented keys, and every trial that a
 * scratch instance of the search strategy proposes up front is validated too, before anything
 * runs. Then up to experiment.parallel trials run at once, each in its own child process (a
 * crashing plugin fails one trial, not the experiment); the host multiplexes their pipes with
 * poll(), asks the search strategy for a decision on every reported epoch (on_result), and asks
 * it for the next trial (suggest) whenever a slot frees, until it says done.
 *
 * After each epoch (every experiment.checkpoint_freq epochs) the child writes an atomic
 * checkpoint of its model (checkpoint.h). The journal (journal.h) records every call made to the
 * search strategy, in order, with its arguments and answers; `resume` rebuilds the experiment
 * from it: the strategy by its restore op (search_state.bin) or by replaying the journal into a
 * fresh instance, each unfinished trial from its last checkpoint. A trial re-running epochs that
 * the strategy already saw (after a resume or a retry) writes their results again but does not
 * report them again: the strategy sees each epoch of a trial once, and its decision is reused.
 *
 * Trial life: PENDING -> RUNNING -> TERMINATED (all epochs) | STOPPED (the strategy said STOP)
 * | PAUSED (PAUSE: stopped right after a checkpoint, which is kept; otherwise treated as STOP:
 * final, the strategy is told on_complete, resume does not run it again) | ERROR
 * (retried from the last checkpoint up to experiment.max_failures times first) | INTERRUPTED
 * (SIGINT / SIGTERM; continued by resume). PERTURB (PBT) restarts the trial from the checkpoint
 * of the trial that exploit() names, with the new parameters. */
#define _XOPEN_SOURCE 700 /* nftw */
#include "runner.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include "checkpoint.h"
#include "dsnn/dsnn.h"
#include "journal.h"
#include "progress.h"
#include "results.h"

#define MAX_TRIALS 100000
#define MAX_PARALLEL 1024
#define SEARCH_STATE_FILE "search_state.bin"

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
};

enum trial_status {
    TRIAL_PENDING = 0, /* created, waiting for a slot (new, retried, resumed, perturbed) */
    TRIAL_RUNNING,
    TRIAL_TERMINATED,  /* ran all epochs */
    TRIAL_STOPPED,     /* the search strategy said STOP before the last epoch */
    TRIAL_PAUSED,      /* the search strategy said PAUSE: stopped after a checkpoint */
    TRIAL_ERROR,       /* failed (after its retries) */
    TRIAL_INTERRUPTED  /* SIGINT / SIGTERM: continued by `dsnn-host resume` */
};

static const char *status_str(enum trial_status s)
{
    switch (s) {
    case TRIAL_PENDING: return "PENDING";
    case TRIAL_RUNNING: return "RUNNING";
    case TRIAL_TERMINATED: return "TERMINATED";
    case TRIAL_STOPPED: return "STOPPED";
    case TRIAL_PAUSED: return "PAUSED";
    case TRIAL_ERROR: return "ERROR";
    case TRIAL_INTERRUPTED: return "INTERRUPTED";
    }
    return "?";
}

/* Finished for good: the search strategy was told (on_complete); never run again. */
static bool status_final(enum trial_status s)
{
    return s == TRIAL_TERMINATED || s == TRIAL_STOPPED || s == TRIAL_PAUSED || s == TRIAL_ERROR;
}

static const char *decision_str(int d)
{
    switch (d) {
    case DSNN_SEARCH_CONTINUE: return "CONTINUE";
    case DSNN_SEARCH_STOP: return "STOP";
    case DSNN_SEARCH_PAUSE: return "PAUSE";
    case DSNN_SEARCH_PERTURB: return "PERTURB";
    }
    return "CONTINUE";
}

static int decision_parse(const char *s)
{
    for (int d = DSNN_SEARCH_CONTINUE; d <= DSNN_SEARCH_PERTURB; d++)
        if (strcmp(s, decision_str(d)) == 0)
            return d;
    return DSNN_SEARCH_CONTINUE;
}

struct trial {
    int index;
    char id[32];
    char dir[1100];
    /* searched parameters: params' values point into pcf, parsed from params_cfg */
    struct dsnn_config_file *pcf;
    struct dsnn_param_set params;
    char *params_cfg;  /* libconfig text: p0 = { path = "..."; value = ...; }; ... */
    char *params_json; /* {"model.x": 1, ...} */
    char params_text[1024];
    uint64_t seed, cfg_hash;
    enum trial_status status;
    bool queued; /* waiting for a slot */
    int attempts, failures;
    bool no_retry; /* the failure would repeat (bad configuration, damaged checkpoint) */
    /* results: result.json lines written, and lines the search strategy has seen with the
     * decision it gave (a re-run of such a line reuses it) */
    size_t n_lines, n_reported, cap_reported;
    unsigned char *decisions;
    double *reported_metric;
    bool warned_nondeterministic;
    int epochs_done; /* epoch + 1 of the last result */
    double last_metric, best_metric;
    double seconds;
    char error[DSNN_ERROR_MSG_MAX];
    /* PBT: a PERTURB decision waiting for the child to stop, or (resume) for its copy */
    bool perturb_pending;
    int perturb_source;
    size_t perturb_line;
    char *perturb_cfg;
    /* the running child */
    pid_t pid;
    int rfd, wfd;
    double t_start;
    bool got_done, child_error;
    int last_decision; /* search decision of the last result */
    bool halted;       /* told to stop because the host was interrupted */
    struct dsnn_trial_files tf;
};

struct experiment {
    const char *cfg_path; /* the configuration read (resume: <dir>/experiment.cfg) */
    struct dsnn_config_file *cf;
    char *cfg_text;
    size_t cfg_len;
    uint64_t cfg_hash;
    const char *name;
    int64_t seed, epochs, num_samples, parallel, threads;
    int64_t checkpoint_freq, keep_checkpoints, max_failures;
    int trial_threads;
    const char *metric;
    bool maximize;
    bool allow_unknown;
    const struct dsnn_registry *reg;
    const struct dsnn_registry_entry *plugin[5]; /* by enum dsnn_kind */
    char dir[1024];
    struct dsnn_journal journal;
    int lock_fd;
    bool quiet;
    bool resumed;
    bool warned_no_checkpoint, warned_no_exploit;
    pid_t host_pid;
    /* search strategy */
    const struct dsnn_search_ops *sops;
    void *search;
    bool search_done;
    bool search_saves; /* save and restore ops: search_state.bin after each search event */
    int next_index;
    size_t n_known; /* trials the scratch instance proposed up front */
    /* trials (index == position) */
    struct trial **trials;
    size_t n_trials, cap_trials;
    int n_running;
    bool started_any;
    bool fatal; /* stop starting trials; exit with fatal_code */
    int fatal_code;
    struct dsnn_error fatal_err;
    struct dsnn_progress progress;
};

static volatile sig_atomic_t g_interrupted;
static volatile sig_atomic_t g_pids[MAX_PARALLEL]; /* running trial processes, 0 = free slot */

/* SIGINT / SIGTERM: no new trial is started, and the running trial processes get the signal
 * too (as a Ctrl-C in a terminal does, to the whole process group): a `kill` of the host alone
 * must stop them promptly, not after their epoch, and not never when one hangs. */
static void on_signal(int sig)
{
    g_interrupted = 1;
    for (int i = 0; i < MAX_PARALLEL; i++) {
        pid_t pid = (pid_t)g_pids[i];
        if (pid > 0)
            kill(pid, sig);
    }
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
    case DSNN_KEY_INCLUDE: return DSNN_OK;
    }
    return DSNN_OK;
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
        (st = dsnn_cfg_string(g, "mode", "max", &mode, err)) ||
        (st = dsnn_cfg_int(g, "checkpoint_freq", 1, &ex->checkpoint_freq, err)) ||
        (st = dsnn_cfg_int(g, "keep_checkpoints", 1, &ex->keep_checkpoints, err)) ||
        (st = dsnn_cfg_int(g, "max_failures", 0, &ex->max_failures, err)))
        return st;
    if ((st = dsnn_cfg_check_range(g, "epochs", (double)ex->epochs, 1, 1e6, err)) ||
        (st = dsnn_cfg_check_range(g, "num_samples", (double)ex->num_samples, 1, 1e5, err)) ||
        (st = dsnn_cfg_check_range(g, "parallel", (double)ex->parallel, 1, 1024, err)) ||
        (st = dsnn_cfg_check_range(g, "threads", (double)ex->threads, 0, 1024, err)) ||
        (st = dsnn_cfg_check_range(g, "checkpoint_freq", (double)ex->checkpoint_freq, 0, 1e6,
                                   err)) ||
        (st = dsnn_cfg_check_range(g, "keep_checkpoints", (double)ex->keep_checkpoints, 1, 1000,
                                   err)) ||
        (st = dsnn_cfg_check_range(g, "max_failures", (double)ex->max_failures, 0, 1000, err)))
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

/* Checks the groups of a (trial) configuration and looks up their plugins into plugin[]. */
static enum dsnn_status validate(const struct dsnn_config_file *cf, const struct dsnn_registry *reg,
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
        out_plugin[k] = e;
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

/* ---- pipes between the host and a trial process ---- */

/* Child -> host messages: a header, then size bytes. Host -> child: one decision byte after
 * each MSG_RESULT (enum child_decision). Host-internal: not part of any ABI. */
enum msg_type {
    MSG_RESULT = 1,     /* struct dsnn_metrics of an epoch */
    MSG_ERROR = 2,      /* struct dsnn_error: the trial failed */
    MSG_DONE = 3,       /* the trial ended normally */
    MSG_CHECKPOINT = 4, /* struct ckpt_msg: a checkpoint was written */
    MSG_WARNING = 5,    /* struct dsnn_error: printed by the host, the trial goes on */
    MSG_FATAL = 6       /* struct dsnn_error: failed in a way a retry would repeat */
};
struct msg_header {
    uint32_t type, size;
};
struct ckpt_msg {
    uint64_t epochs, n_results;
};
enum child_decision {
    CHILD_CONTINUE = 0,
    CHILD_STOP = 1,    /* end now */
    CHILD_PAUSE = 2,   /* checkpoint, then end */
    CHILD_PERTURB = 3, /* checkpoint, then end (the host restarts it with new parameters) */
    CHILD_HALT = 4     /* the host is interrupted: checkpoint, then end */
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

/* ---- trial child ---- */

/* What the child starts from: a checkpoint (epochs > 0 or not) or nothing. */
struct child_start {
    bool have_ckpt;
    struct dsnn_checkpoint_header hdr;
    const unsigned char *payload;
    char ckpt_path[1200];
};

static enum dsnn_status write_checkpoint(const struct experiment *ex, const struct trial *t,
                                         const struct dsnn_model_ops *mops, void *model,
                                         const char *model_name, int epochs, size_t n_results,
                                         double time_total, struct dsnn_error *err)
{
    char *buf = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&buf, &size);
    if (!f)
        return dsnn_error_set(err, DSNN_ERR_NOMEM, "checkpoint: cannot open a memory stream");
    enum dsnn_status st = mops->save(model, f, err);
    if (fclose(f) != 0 && st == DSNN_OK)
        st = dsnn_error_set(err, DSNN_ERR_NOMEM, "checkpoint: out of memory");
    if (st == DSNN_OK) {
        struct dsnn_checkpoint_header h = {
            .epochs = (uint64_t)epochs,
            .n_results = n_results,
            .trial_index = (uint64_t)t->index,
            .config_hash = t->cfg_hash,
            .time_total_s = time_total,
        };
        snprintf(h.trial_id, sizeof h.trial_id, "%s", t->id);
        snprintf(h.model, sizeof h.model, "%s", model_name);
        st = dsnn_checkpoint_write(t->dir, &h, buf, size, (int)ex->keep_checkpoints, err);
    } else {
        dsnn_error_prefix(err, "model '%s': save", model_name);
    }
    free(buf);
    return st;
}

static enum dsnn_status trial_body(struct experiment *ex, const struct dsnn_config_file *tcf,
                                   const struct trial *t,
                                   const struct dsnn_registry_entry *const plugin[5],
                                   const struct child_start *cs, int wfd, int rfd, FILE *log,
                                   bool *fatal, struct dsnn_error *err)
{
    const struct dsnn_cfg *root = dsnn_config_file_root(tcf);
    struct dsnn_run_ctx ctx = {
        .seed = t->seed,
        .trial_index = t->index,
        .epochs = (int)ex->epochs,
        .n_threads = ex->trial_threads,
        .trial_dir = t->dir,
        .log = log,
    };
    dsnn_set_num_threads(ctx.n_threads);
    ctx.n_threads = dsnn_get_num_threads();
    const struct dsnn_dataset_ops *dops = &plugin[DSNN_KIND_DATASET]->ops.dataset;
    const struct dsnn_network_ops *nops = &plugin[DSNN_KIND_NETWORK]->ops.network;
    const struct dsnn_model_ops *mops = &plugin[DSNN_KIND_MODEL]->ops.model;
    const char *model_name = plugin[DSNN_KIND_MODEL]->name;
    bool checkpoints = ex->checkpoint_freq > 0 && mops->save && mops->load;
    struct dsnn_data data = {.ops = dops};
    struct dsnn_net *net = NULL;
    void *model = NULL;
    enum dsnn_status st =
        dops->open(dsnn_cfg_group(root, "dataset"), &ctx, &data.state, &data.info, err);
    if (st != DSNN_OK) {
        dsnn_error_prefix(err, "dataset '%s'", plugin[DSNN_KIND_DATASET]->name);
        return st;
    }
    st = nops->build(dsnn_cfg_group(root, "network"), &ctx, data.info.shape, data.info.n_classes,
                     &net, err);
    if (st != DSNN_OK) {
        dsnn_error_prefix(err, "network '%s'", plugin[DSNN_KIND_NETWORK]->name);
        goto out;
    }
    st = mops->create(dsnn_cfg_group(root, "model"), &ctx, net, &data.info, &model, err);
    if (st == DSNN_OK && !dsnn_net_initialized(net))
        st = dsnn_error_set(err, DSNN_ERR_INTERNAL, "create() did not initialise the network");
    if (st != DSNN_OK) {
        dsnn_error_prefix(err, "model '%s'", model_name);
        goto out;
    }
    int start = 0;
    size_t lines = t->n_lines;
    double time_before = 0;
    if (cs->have_ckpt) {
        FILE *f = cs->hdr.payload_size
                      ? fmemopen((void *)cs->payload, (size_t)cs->hdr.payload_size, "rb")
                      : NULL;
        if (!f || !mops->load) {
            st = dsnn_error_set(err, DSNN_ERR_INTERNAL, "%s: cannot read the payload",
                                cs->ckpt_path);
        } else {
            st = mops->load(model, f, err);
            fclose(f);
        }
        if (st != DSNN_OK) {
            dsnn_error_prefix(err, "%s: model '%s' cannot load this checkpoint", cs->ckpt_path,
                              model_name);
            *fatal = true;
            goto out;
        }
        start = (int)cs->hdr.epochs;
        time_before = cs->hdr.time_total_s;
        fprintf(log, "%s: continuing from %s after epoch %d\n", t->id, cs->ckpt_path, start);
    }
    fprintf(log, "%s: attempt %d, %zu trainable parameters, %d threads\n", t->id, t->attempts,
            dsnn_net_param_count(net), ctx.n_threads);
    double t_start = now_s();
    for (int epoch = start; epoch < ex->epochs; epoch++) {
        static struct dsnn_metrics m; /* large: keep it off the stack */
        dsnn_metrics_clear(&m);
        dsnn_metrics_set(&m, "epoch", epoch);
        dsnn_metrics_set(&m, "training_iteration", epoch + 1);
        double t0 = now_s();
        if ((st = mops->train_epoch(model, &data, epoch, &m, err)) != DSNN_OK) {
            dsnn_error_prefix(err, "model '%s': epoch %d", model_name, epoch);
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
        dsnn_metrics_set(&m, "time_total_s", time_before + (t2 - t_start));
        dsnn_metrics_set(&m, "timestamp", (double)time(NULL));
        if (!send_msg(wfd, MSG_RESULT, &m, (uint32_t)sizeof m)) {
            st = dsnn_error_set(err, DSNN_ERR_IO, "lost the connection to the host");
            goto out;
        }
        uint8_t decision = CHILD_CONTINUE;
        if (read_full(rfd, &decision, 1) != 1) {
            st = dsnn_error_set(err, DSNN_ERR_IO, "lost the connection to the host");
            goto out;
        }
        lines++;
        bool due = decision == CHILD_PAUSE || decision == CHILD_PERTURB ||
                   decision == CHILD_HALT ||
                   (decision == CHILD_CONTINUE && checkpoints &&
                    (epoch + 1) % ex->checkpoint_freq == 0);
        if (checkpoints && due) {
            struct dsnn_error cerr = {0};
            if (write_checkpoint(ex, t, mops, model, model_name, epoch + 1, lines,
                                 time_before + (now_s() - t_start), &cerr) == DSNN_OK) {
                struct ckpt_msg cm = {(uint64_t)epoch + 1, lines};
                send_msg(wfd, MSG_CHECKPOINT, &cm, (uint32_t)sizeof cm);
            } else {
                fprintf(log, "warning: %s\n", cerr.msg);
                send_msg(wfd, MSG_WARNING, &cerr, (uint32_t)sizeof cerr);
            }
        }
        if (decision != CHILD_CONTINUE)
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
                      const struct trial *t, const struct dsnn_registry_entry *const plugin[5],
                      const struct child_start *cs, int wfd, int rfd)
{
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGPIPE, SIG_DFL);
    sigset_t stop_signals; /* blocked by the host around fork(): a signal sent since kills now */
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    sigprocmask(SIG_UNBLOCK, &stop_signals, NULL);
#ifdef __linux__
    /* A host killed with -9 takes its trials with it (they cannot report anyway, and must not
     * write checkpoints under a resumed experiment). */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != ex->host_pid)
        _exit(1);
#endif
    /* The other trials' pipe ends: their EOF must not wait for this process. */
    for (size_t i = 0; i < ex->n_trials; i++) {
        const struct trial *o = ex->trials[i];
        if (o != t && o->status == TRIAL_RUNNING) {
            close(o->rfd);
            close(o->wfd);
        }
    }
    if (ex->lock_fd >= 0)
        close(ex->lock_fd);
    char path[1200];
    snprintf(path, sizeof path, "%s/log.txt", t->dir);
    FILE *log = fopen(path, "a");
    if (!log)
        log = stderr;
    struct dsnn_error err = {0};
    bool fatal = false;
    enum dsnn_status st = trial_body(ex, tcf, t, plugin, cs, wfd, rfd, log, &fatal, &err);
    if (st != DSNN_OK) {
        if (!err.msg[0])
            dsnn_error_set(&err, st, "%s", dsnn_status_str(st));
        err.status = st;
        fprintf(log, "error: %s\n", err.msg);
        send_msg(wfd, fatal ? MSG_FATAL : MSG_ERROR, &err, (uint32_t)sizeof err);
    } else {
        send_msg(wfd, MSG_DONE, NULL, 0);
    }
    if (log != stderr)
        fclose(log);
    fflush(NULL);
    _exit(st == DSNN_OK ? 0 : 1);
}

/* ---- host side: messages, parameters, files ---- */

static void say_clear(struct experiment *ex)
{
    dsnn_progress_clear(&ex->progress);
    fflush(stdout);
}

static void warn(struct experiment *ex, const char *fmt, ...) DSNN_PRINTF(2, 3);
static void warn(struct experiment *ex, const char *fmt, ...)
{
    say_clear(ex);
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "warning: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
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

/* params as libconfig text that reads back to the same values:
 *     p0 = { path = "model.learning_rate"; value = 0.1; };  */
static char *params_to_cfg(const struct dsnn_param_set *ps)
{
    struct dsnn_sbuf b = {0};
    dsnn_sbuf_puts(&b, "");
    for (size_t i = 0; i < ps->n; i++) {
        size_t need = dsnn_value_to_text(&ps->items[i].value, NULL, 0);
        char *v = malloc(need + 1);
        if (!v) {
            dsnn_sbuf_free(&b);
            return NULL;
        }
        dsnn_value_to_text(&ps->items[i].value, v, need + 1);
        dsnn_sbuf_printf(&b, "p%zu = { path = ", i);
        dsnn_sbuf_json_string(&b, ps->items[i].path); /* a path is [A-Za-z0-9_.-]: same text */
        dsnn_sbuf_printf(&b, "; value = %s; };\n", v);
        free(v);
    }
    if (b.oom) {
        dsnn_sbuf_free(&b);
        return NULL;
    }
    return b.p;
}

static char *params_to_json(const struct dsnn_param_set *ps)
{
    struct dsnn_sbuf b = {0};
    dsnn_sbuf_puts(&b, "{");
    for (size_t i = 0; i < ps->n; i++) {
        size_t need = dsnn_value_to_json(&ps->items[i].value, NULL, 0);
        char *v = malloc(need + 1);
        if (!v) {
            dsnn_sbuf_free(&b);
            return NULL;
        }
        dsnn_value_to_json(&ps->items[i].value, v, need + 1);
        dsnn_sbuf_puts(&b, i ? ", " : "");
        dsnn_sbuf_json_string(&b, ps->items[i].path);
        dsnn_sbuf_printf(&b, ": %s", v);
        free(v);
    }
    dsnn_sbuf_puts(&b, "}");
    if (b.oom) {
        dsnn_sbuf_free(&b);
        return NULL;
    }
    return b.p;
}

/* Sets t's parameters from their libconfig text (params_to_cfg); t owns copies of all. */
static enum dsnn_status trial_set_params(const struct experiment *ex, struct trial *t,
                                         const char *params_cfg, struct dsnn_error *err)
{
    struct dsnn_config_file *pcf = NULL;
    char name[64];
    snprintf(name, sizeof name, "<parameters of %s>", t->id);
    enum dsnn_status st = dsnn_config_file_parse(params_cfg, name, &pcf, err);
    if (st != DSNN_OK)
        return st;
    struct dsnn_param_set ps;
    ps.n = 0;
    const struct dsnn_cfg *root = dsnn_config_file_root(pcf);
    for (size_t i = 0; i < dsnn_cfg_count(root) && st == DSNN_OK; i++) {
        const struct dsnn_cfg *g = dsnn_cfg_child(root, i);
        const char *path = NULL;
        const struct dsnn_cfg *value = NULL;
        for (size_t k = 0; k < dsnn_cfg_count(g); k++)
            if (strcmp(dsnn_cfg_child_name(g, k), "value") == 0)
                value = dsnn_cfg_child(g, k);
        if (dsnn_cfg_type(g) != DSNN_CFG_GROUP ||
            (st = dsnn_cfg_string(g, "path", NULL, &path, err)) != DSNN_OK || !path || !value) {
            st = dsnn_error_set(err, DSNN_ERR_FORMAT, "%s: malformed parameter %zu", name, i);
            break;
        }
        struct dsnn_value v = {.type = DSNN_VALUE_CFG};
        v.u.cfg = value;
        st = dsnn_param_set_put(&ps, path, &v, err);
    }
    char *json = st == DSNN_OK ? params_to_json(&ps) : NULL;
    char *text = st == DSNN_OK ? strdup(params_cfg) : NULL;
    if (st == DSNN_OK && (!json || !text))
        st = dsnn_error_set(err, DSNN_ERR_NOMEM, "out of memory");
    if (st != DSNN_OK) {
        free(json);
        free(text);
        dsnn_config_file_free(pcf);
        return st;
    }
    dsnn_config_file_free(t->pcf);
    free(t->params_cfg);
    free(t->params_json);
    t->pcf = pcf;
    t->params = ps;
    t->params_cfg = text;
    t->params_json = json;
    format_params(&t->params, t->params_text, sizeof t->params_text);
    t->cfg_hash = dsnn_fnv1a(dsnn_fnv1a(DSNN_FNV_INIT, ex->cfg_text, ex->cfg_len), text,
                             strlen(text));
    return DSNN_OK;
}

static enum dsnn_status write_params_json(const struct trial *t, struct dsnn_error *err)
{
    struct dsnn_sbuf b = {0};
    /* {"k": v, ..., "trial_seed": n} */
    dsnn_sbuf_printf(&b, "%.*s%s\"trial_seed\": %llu}\n", (int)strlen(t->params_json) - 1,
                     t->params_json, t->params.n ? ", " : "", (unsigned long long)t->seed);
    if (b.oom) {
        dsnn_sbuf_free(&b);
        return dsnn_error_set(err, DSNN_ERR_NOMEM, "out of memory");
    }
    char path[1200];
    snprintf(path, sizeof path, "%s/params.json", t->dir);
    enum dsnn_status st = dsnn_write_file_atomic(path, b.p, b.len, err);
    dsnn_sbuf_free(&b);
    return st;
}

/* The trial's full configuration: experiment.cfg with the searched values. */
static enum dsnn_status trial_config(const struct experiment *ex, const struct trial *t,
                                     struct dsnn_config_file **out, struct dsnn_error *err)
{
    struct dsnn_config_file *tcf = NULL;
    enum dsnn_status st = dsnn_config_file_load(ex->cfg_path, &tcf, err);
    for (size_t k = 0; k < t->params.n && st == DSNN_OK; k++)
        st = dsnn_config_file_set(tcf, t->params.items[k].path, &t->params.items[k].value, err);
    if (st != DSNN_OK) {
        dsnn_config_file_free(tcf);
        return st;
    }
    *out = tcf;
    return DSNN_OK;
}

/* Builds and validates the trial's configuration (plugin[] gets its plugins). */
static enum dsnn_status trial_config_checked(const struct experiment *ex, const struct trial *t,
                                             struct dsnn_config_file **out,
                                             const struct dsnn_registry_entry *plugin[5],
                                             int *code, struct dsnn_error *err)
{
    *code = DSNN_EXIT_CONFIG;
    struct dsnn_config_file *tcf = NULL;
    enum dsnn_status st = trial_config(ex, t, &tcf, err);
    if (st == DSNN_OK)
        st = validate(tcf, ex->reg, ex->allow_unknown, plugin, code, err);
    if (st != DSNN_OK) {
        dsnn_error_prefix(err, "%s (with the searched values of %s: %s)", ex->cfg_path, t->id,
                          t->params_text[0] ? t->params_text : "none");
        dsnn_config_file_free(tcf);
        return st;
    }
    if (out)
        *out = tcf;
    else
        dsnn_config_file_free(tcf);
    return DSNN_OK;
}

static struct trial *trial_by_index(const struct experiment *ex, int index)
{
    return index >= 0 && (size_t)index < ex->n_trials ? ex->trials[index] : NULL;
}

static struct trial *trial_by_id(const struct experiment *ex, const char *id)
{
    int index;
    char tail;
    if (sscanf(id, "trial_%d%c", &index, &tail) != 1)
        return NULL;
    struct trial *t = trial_by_index(ex, index);
    return t && strcmp(t->id, id) == 0 ? t : NULL;
}

/* A new trial record for index (== ex->n_trials), no parameters yet. */
static struct trial *trial_new(struct experiment *ex, int index, struct dsnn_error *err)
{
    if (index != (int)ex->n_trials || index >= MAX_TRIALS) {
        dsnn_error_set(err, DSNN_ERR_FORMAT, "trial index %d out of order (expected %zu)", index,
                       ex->n_trials);
        return NULL;
    }
    if (ex->n_trials == ex->cap_trials) {
        size_t cap = ex->cap_trials ? ex->cap_trials * 2 : 16;
        struct trial **nt = realloc(ex->trials, cap * sizeof *nt);
        if (!nt) {
            dsnn_error_set(err, DSNN_ERR_NOMEM, "out of memory");
            return NULL;
        }
        ex->trials = nt;
        ex->cap_trials = cap;
    }
    struct trial *t = calloc(1, sizeof *t);
    if (!t) {
        dsnn_error_set(err, DSNN_ERR_NOMEM, "out of memory");
        return NULL;
    }
    t->index = index;
    snprintf(t->id, sizeof t->id, "trial_%05d", index);
    snprintf(t->dir, sizeof t->dir, "%s/%s", ex->dir, t->id);
    t->seed = dsnn_seed_mix((uint64_t)ex->seed, (uint64_t)index);
    t->best_metric = t->last_metric = NAN;
    t->rfd = t->wfd = -1;
    ex->trials[ex->n_trials++] = t;
    return t;
}

static void trial_free(struct trial *t)
{
    if (!t)
        return;
    dsnn_config_file_free(t->pcf);
    free(t->params_cfg);
    free(t->params_json);
    free(t->decisions);
    free(t->reported_metric);
    free(t->perturb_cfg);
    free(t);
}

/* Records that the search strategy saw result line `line` with decision d (and metric v). */
static bool trial_note_reported(struct trial *t, size_t line, int d, double v)
{
    if (line >= t->cap_reported) {
        size_t cap = t->cap_reported ? t->cap_reported : 16;
        while (cap <= line)
            cap *= 2;
        unsigned char *nd = realloc(t->decisions, cap);
        if (!nd)
            return false;
        t->decisions = nd;
        double *nm = realloc(t->reported_metric, cap * sizeof *nm);
        if (!nm)
            return false;
        t->reported_metric = nm;
        for (size_t i = t->cap_reported; i < cap; i++) {
            t->decisions[i] = DSNN_SEARCH_CONTINUE;
            t->reported_metric[i] = NAN;
        }
        t->cap_reported = cap;
    }
    t->decisions[line] = (unsigned char)d;
    t->reported_metric[line] = v;
    if (line + 1 > t->n_reported)
        t->n_reported = line + 1;
    return true;
}

static void trial_note_metric(const struct experiment *ex, struct trial *t, double v)
{
    if (isnan(v))
        return;
    t->last_metric = v;
    if (isnan(t->best_metric) || (ex->maximize ? v > t->best_metric : v < t->best_metric))
        t->best_metric = v;
}

/* last / best metric and epochs from the lines of result.json (resume). */
static void trial_scan_results(const struct experiment *ex, struct trial *t)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/result.json", t->dir);
    t->best_metric = t->last_metric = NAN;
    t->epochs_done = 0;
    t->n_lines = 0;
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, f)) > 0) {
        if (line[len - 1] != '\n')
            break; /* cut short */
        t->n_lines++;
        struct dsnn_jnode *o = dsnn_jnode_parse(line);
        if (o) {
            trial_note_metric(ex, t, dsnn_jnode_num(o, ex->metric, NAN));
            t->epochs_done = (int)dsnn_jnode_num(o, "epoch", t->epochs_done - 1) + 1;
        }
        dsnn_jnode_free(o);
    }
    free(line);
    fclose(f);
}

/* ---- the search strategy's state file (strategies with save and restore) ---- */

static const char search_magic[8] = {'D', 'S', 'N', 'N', 'S', 'R', 'C', 'H'};

/* search_state.bin: magic, u64 seq (the journal's search events it reflects), the state. */
static void search_save(struct experiment *ex)
{
    if (!ex->search_saves)
        return;
    char *buf = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&buf, &size);
    struct dsnn_error err = {0};
    enum dsnn_status st = DSNN_ERR_NOMEM;
    if (f) {
        uint64_t seq = ex->journal.seq;
        fwrite(search_magic, 1, sizeof search_magic, f);
        fwrite(&seq, sizeof seq, 1, f);
        st = ex->sops->save(ex->search, f, &err);
        if (fclose(f) != 0 && st == DSNN_OK)
            st = dsnn_error_set(&err, DSNN_ERR_NOMEM, "out of memory");
    }
    if (st == DSNN_OK) {
        char path[1200];
        snprintf(path, sizeof path, "%s/" SEARCH_STATE_FILE, ex->dir);
        st = dsnn_write_file_atomic(path, buf, size, &err);
    }
    free(buf);
    if (st != DSNN_OK) {
        /* DSNN_ERR_UNSUPPORTED: this instance does not save (a quiet choice of the strategy) */
        if (st != DSNN_ERR_UNSUPPORTED)
            warn(ex, "search '%s': cannot save its state (%s); a resume will replay the journal",
                 ex->plugin[DSNN_KIND_SEARCH]->name, err.msg[0] ? err.msg : dsnn_status_str(st));
        ex->search_saves = false;
        char path[1200];
        snprintf(path, sizeof path, "%s/" SEARCH_STATE_FILE, ex->dir);
        unlink(path);
    }
}

/* Restores the strategy from search_state.bin; *seq gets the search events it reflects. */
static enum dsnn_status search_restore(struct experiment *ex, uint64_t *seq,
                                       struct dsnn_error *err)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/" SEARCH_STATE_FILE, ex->dir);
    unsigned char *data = NULL;
    size_t size = 0;
    enum dsnn_status st = dsnn_read_file(path, &data, &size, err);
    if (st != DSNN_OK)
        return st;
    if (size < 16 || memcmp(data, search_magic, 8) != 0) {
        free(data);
        return dsnn_error_set(err, DSNN_ERR_FORMAT, "%s: not a search state file", path);
    }
    memcpy(seq, data + 8, 8);
    FILE *f = fmemopen(data + 16, size - 16 ? size - 16 : 1, "rb");
    if (!f) {
        free(data);
        return dsnn_error_set(err, DSNN_ERR_NOMEM, "%s: cannot open a memory stream", path);
    }
    st = ex->sops->restore(ex->search, f, err);
    fclose(f);
    free(data);
    if (st != DSNN_OK)
        dsnn_error_prefix(err, "%s", path);
    return st;
}

/* ---- host side: trial events ---- */

/* The trial ended for good (or, INTERRUPTED, for this run): files, journal, on_complete. */
static void trial_finish(struct experiment *ex, struct trial *t, enum trial_status status)
{
    t->status = status;
    t->queued = false;
    struct dsnn_error err = {0};
    if (status == TRIAL_ERROR) {
        dsnn_trial_files_open(&t->tf, t->dir, &err);
        if (dsnn_trial_files_error(&t->tf, t->error, &err) != DSNN_OK)
            warn(ex, "%s", err.msg);
        say_clear(ex);
        fprintf(stderr, "%s: ERROR: %s\n", t->id, t->error);
    }
    struct dsnn_sbuf b = {0};
    bool final = status_final(status);
    dsnn_sbuf_puts(&b, "\"event\": \"trial_finished\", ");
    if (final)
        dsnn_sbuf_printf(&b, "\"seq\": %llu, ", (unsigned long long)++ex->journal.seq);
    dsnn_sbuf_printf(&b, "\"trial_id\": \"%s\", \"status\": \"%s\", \"epochs\": %d, \"error\": ",
                     t->id, status_str(status), t->epochs_done);
    dsnn_sbuf_json_string(&b, status == TRIAL_INTERRUPTED ? "interrupted" : t->error);
    if (!b.oom)
        dsnn_journal_add(&ex->journal, b.p);
    dsnn_sbuf_free(&b);
    if (final) {
        if (ex->sops->on_complete)
            ex->sops->on_complete(ex->search, t->index, status == TRIAL_ERROR);
        search_save(ex);
    }
}

/* A suggested trial: parameters owned, journal, folder, params.json. On a configuration error
 * it ends in ERROR at once (or, among the first `parallel` trials of a fresh run, stops the
 * experiment: *config_error). */
static struct trial *trial_create(struct experiment *ex, int index,
                                  const struct dsnn_param_set *ps, bool *config_error,
                                  struct dsnn_error *err)
{
    *config_error = false;
    struct trial *t = trial_new(ex, index, err);
    if (!t)
        return NULL;
    char *cfg = params_to_cfg(ps);
    if (!cfg) {
        dsnn_error_set(err, DSNN_ERR_NOMEM, "out of memory");
        return NULL;
    }
    enum dsnn_status st = trial_set_params(ex, t, cfg, err);
    free(cfg);
    if (st != DSNN_OK)
        return NULL;
    struct dsnn_sbuf b = {0};
    dsnn_sbuf_printf(&b,
                     "\"event\": \"trial_created\", \"seq\": %llu, \"trial_id\": \"%s\", "
                     "\"index\": %d, \"params\": %s, \"params_text\": ",
                     (unsigned long long)++ex->journal.seq, t->id, t->index, t->params_json);
    dsnn_sbuf_json_string(&b, t->params_text);
    dsnn_sbuf_puts(&b, ", \"params_cfg\": ");
    dsnn_sbuf_json_string(&b, t->params_cfg);
    if (b.oom) {
        dsnn_sbuf_free(&b);
        dsnn_error_set(err, DSNN_ERR_NOMEM, "out of memory");
        return NULL;
    }
    dsnn_journal_add(&ex->journal, b.p);
    dsnn_sbuf_free(&b);
    if ((st = dsnn_mkdirs(t->dir, err)) != DSNN_OK || (st = write_params_json(t, err)) != DSNN_OK)
        return NULL;
    search_save(ex);
    int code;
    struct dsnn_error cerr = {0};
    if (trial_config_checked(ex, t, NULL, (const struct dsnn_registry_entry *[5]){0}, &code,
                             &cerr) != DSNN_OK) {
        if (!ex->started_any && !ex->resumed && index < ex->parallel) {
            *err = cerr;
            *config_error = true;
            ex->fatal_code = code;
            return NULL;
        }
        snprintf(t->error, sizeof t->error, "%s", cerr.msg);
        t->no_retry = true;
        trial_finish(ex, t, TRIAL_ERROR);
        return t;
    }
    t->status = TRIAL_PENDING;
    t->queued = true;
    return t;
}

/* Asks the strategy for the next trial. false: none now (done, or a fatal error). */
static bool suggest_next(struct experiment *ex)
{
    if (ex->search_done || ex->fatal)
        return false;
    if (ex->n_trials >= MAX_TRIALS) {
        ex->search_done = true;
        return false;
    }
    struct dsnn_param_set ps;
    memset(&ps, 0, sizeof ps);
    bool done = false, config_error = false;
    struct dsnn_error err = {0};
    if (ex->sops->suggest(ex->search, ex->next_index, &ps, &done, &err) != DSNN_OK) {
        dsnn_error_prefix(&err, "search '%s': suggest(%d)", ex->plugin[DSNN_KIND_SEARCH]->name,
                          ex->next_index);
        ex->fatal = true;
        ex->fatal_code = DSNN_EXIT_CONFIG;
        ex->fatal_err = err;
        ex->search_done = true;
        return false;
    }
    if (done) {
        ex->search_done = true;
        return false;
    }
    struct trial *t = trial_create(ex, ex->next_index, &ps, &config_error, &err);
    if (!t) {
        ex->fatal = true;
        if (!config_error)
            ex->fatal_code = err.status == DSNN_ERR_IO ? DSNN_EXIT_IO : DSNN_EXIT_CONFIG;
        ex->fatal_err = err;
        return false;
    }
    ex->next_index++;
    return true;
}

static struct trial *next_queued(const struct experiment *ex)
{
    for (size_t i = 0; i < ex->n_trials; i++)
        if (ex->trials[i]->queued)
            return ex->trials[i];
    return NULL;
}

/* PBT: continues t from the latest checkpoint of its exploit() source, with its new
 * parameters (a copy of that checkpoint becomes t's, under t's name and configuration). */
static void trial_perturb(struct experiment *ex, struct trial *t)
{
    struct trial *src = trial_by_index(ex, t->perturb_source);
    char path[1300];
    char *old_json = strdup(t->params_json ? t->params_json : "{}");
    if (!old_json) {
        warn(ex, "PBT: %s: out of memory", t->id);
        return;
    }
    struct dsnn_error err = {0};
    struct dsnn_checkpoint_header hdr;
    unsigned char *payload = NULL;
    enum dsnn_status st = DSNN_ERR_NOT_FOUND;
    if (src) {
        snprintf(path, sizeof path, "%s/" DSNN_CHECKPOINT_FILE, src->dir);
        st = dsnn_checkpoint_read(path, &hdr, &payload, &err);
    }
    if (st != DSNN_OK && src != t) {
        warn(ex, "PBT: %s cannot exploit %s (%s); it keeps its own weights",
             t->id, src ? src->id : "an unknown trial", err.msg[0] ? err.msg : "no such trial");
        src = t;
        snprintf(path, sizeof path, "%s/" DSNN_CHECKPOINT_FILE, t->dir);
        st = dsnn_checkpoint_read(path, &hdr, &payload, &err);
    }
    if ((st = trial_set_params(ex, t, t->perturb_cfg, &err)) != DSNN_OK) {
        warn(ex, "PBT: %s: bad new parameters (%s); unchanged", t->id, err.msg);
        free(payload);
        free(old_json);
        t->perturb_pending = false;
        return;
    }
    if (payload) {
        hdr.trial_index = (uint64_t)t->index;
        hdr.config_hash = t->cfg_hash;
        hdr.n_results = t->perturb_line + 1;
        snprintf(hdr.trial_id, sizeof hdr.trial_id, "%s", t->id);
        if (dsnn_checkpoint_write(t->dir, &hdr, payload, (size_t)hdr.payload_size,
                                  (int)ex->keep_checkpoints, &err) != DSNN_OK)
            warn(ex, "PBT: %s: %s", t->id, err.msg);
    } else {
        /* nothing to continue from: restart with the new parameters */
        warn(ex, "PBT: %s: no checkpoint to continue from; it restarts with its new parameters",
             t->id);
        dsnn_checkpoint_remove_all(t->dir);
    }
    bool copied = payload != NULL;
    free(payload);
    if (write_params_json(t, &err) != DSNN_OK)
        warn(ex, "%s", err.msg);
    struct dsnn_sbuf h = {0};
    char ts[32];
    dsnn_sbuf_printf(&h,
                     "{\"time\": \"%s\", \"trial_id\": \"%s\", \"line\": %zu, \"source\": \"%s\", "
                     "\"from_epoch\": %llu, \"old_params\": %s, \"new_params\": %s}",
                     dsnn_iso_time(ts, sizeof ts), t->id, t->perturb_line,
                     src ? src->id : t->id, copied ? (unsigned long long)hdr.epochs : 0ULL,
                     old_json, t->params_json);
    snprintf(path, sizeof path, "%s/pbt_history.jsonl", t->dir);
    if (!h.oom && dsnn_append_line(path, h.p, &err) != DSNN_OK)
        warn(ex, "%s", err.msg);
    dsnn_sbuf_free(&h);
    struct dsnn_sbuf b = {0};
    dsnn_sbuf_printf(&b,
                     "\"event\": \"trial_perturbed\", \"trial_id\": \"%s\", \"source\": \"%s\", "
                     "\"line\": %zu, \"old_params\": %s, \"new_params\": %s, \"params_cfg\": ",
                     t->id, src ? src->id : t->id, t->perturb_line, old_json, t->params_json);
    dsnn_sbuf_json_string(&b, t->params_cfg);
    if (!b.oom)
        dsnn_journal_add(&ex->journal, b.p);
    dsnn_sbuf_free(&b);
    free(old_json);
    t->perturb_pending = false;
}

/* Starts (or continues) a queued trial in a child process. */
static void trial_start(struct experiment *ex, struct trial *t)
{
    t->queued = false;
    if (t->perturb_pending)
        trial_perturb(ex, t);
    struct dsnn_error err = {0};
    int code;
    struct dsnn_config_file *tcf = NULL;
    const struct dsnn_registry_entry *plugin[5] = {0};
    if (trial_config_checked(ex, t, &tcf, plugin, &code, &err) != DSNN_OK) {
        snprintf(t->error, sizeof t->error, "%s", err.msg);
        t->no_retry = true;
        trial_finish(ex, t, TRIAL_ERROR);
        return;
    }
    const struct dsnn_model_ops *mops = &plugin[DSNN_KIND_MODEL]->ops.model;
    bool checkpoints = ex->checkpoint_freq > 0 && mops->save && mops->load;
    if (ex->checkpoint_freq > 0 && !checkpoints && !ex->warned_no_checkpoint) {
        warn(ex, "model '%s' has no save/load: trials run without checkpoints (a resumed or "
                 "retried trial starts again from epoch 0)",
             plugin[DSNN_KIND_MODEL]->name);
        ex->warned_no_checkpoint = true;
    }
    struct child_start cs = {0};
    unsigned char *payload = NULL;
    snprintf(cs.ckpt_path, sizeof cs.ckpt_path, "%s/" DSNN_CHECKPOINT_FILE, t->dir);
    size_t have_lines = dsnn_trial_files_count(t->dir);
    dsnn_checkpoint_remove_temps(t->dir);
    if (checkpoints) {
        enum dsnn_status st = dsnn_checkpoint_read(cs.ckpt_path, &cs.hdr, &payload, &err);
        if (st == DSNN_OK) {
            if (cs.hdr.trial_index != (uint64_t)t->index || cs.hdr.config_hash != t->cfg_hash)
                st = dsnn_error_set(&err, DSNN_ERR_FORMAT,
                                    "%s: written by %s for another configuration (trial %llu, "
                                    "configuration hash %016llx, expected %016llx)",
                                    cs.ckpt_path, cs.hdr.trial_id,
                                    (unsigned long long)cs.hdr.trial_index,
                                    (unsigned long long)cs.hdr.config_hash,
                                    (unsigned long long)t->cfg_hash);
            else if (strcmp(cs.hdr.model, plugin[DSNN_KIND_MODEL]->name) != 0)
                st = dsnn_error_set(&err, DSNN_ERR_FORMAT,
                                    "%s: written by model '%s', the trial's model is '%s'",
                                    cs.ckpt_path, cs.hdr.model, plugin[DSNN_KIND_MODEL]->name);
        }
        if (st == DSNN_OK && cs.hdr.n_results > have_lines) {
            warn(ex, "%s: %s is ahead of result.json (%llu results, the file has %zu); the "
                     "trial starts again from epoch 0",
                 t->id, cs.ckpt_path, (unsigned long long)cs.hdr.n_results, have_lines);
            free(payload);
            payload = NULL;
        } else if (st == DSNN_OK) {
            cs.have_ckpt = true;
            cs.payload = payload;
        } else if (st != DSNN_ERR_NOT_FOUND) {
            snprintf(t->error, sizeof t->error, "cannot continue from its checkpoint: %.980s",
                     err.msg);
            t->no_retry = true;
            dsnn_config_file_free(tcf);
            trial_finish(ex, t, TRIAL_ERROR);
            return;
        }
    }
    size_t from_line = cs.have_ckpt ? (size_t)cs.hdr.n_results : 0;
    int from_epoch = cs.have_ckpt ? (int)cs.hdr.epochs : 0;
    if (!cs.have_ckpt)
        dsnn_checkpoint_remove_all(t->dir);
    if (dsnn_trial_files_resume(&t->tf, t->dir, from_line, &err) != DSNN_OK) {
        snprintf(t->error, sizeof t->error, "%s", err.msg);
        free(payload);
        dsnn_config_file_free(tcf);
        trial_finish(ex, t, TRIAL_ERROR);
        return;
    }
    trial_scan_results(ex, t);
    t->n_lines = from_line;
    t->attempts++;
    char path[1200];
    snprintf(path, sizeof path, "%s/trial.cfg", t->dir);
    if (dsnn_config_file_write(tcf, path, &err) != DSNN_OK)
        warn(ex, "%s", err.msg);
    dsnn_journal_addf(&ex->journal,
                      "\"event\": \"trial_started\", \"trial_id\": \"%s\", \"attempt\": %d, "
                      "\"from_epoch\": %d, \"from_line\": %zu, \"checkpoint\": %s",
                      t->id, t->attempts, from_epoch, from_line, cs.have_ckpt ? "true" : "false");
    int to_host[2], to_child[2];
    if (pipe(to_host) != 0) {
        snprintf(t->error, sizeof t->error, "cannot create a pipe: %s", strerror(errno));
        goto fail;
    }
    if (pipe(to_child) != 0) {
        snprintf(t->error, sizeof t->error, "cannot create a pipe: %s", strerror(errno));
        close(to_host[0]), close(to_host[1]);
        goto fail;
    }
    int slot = -1;
    for (int i = 0; i < MAX_PARALLEL && slot < 0; i++)
        if (g_pids[i] == 0)
            slot = i;
    fflush(NULL);
    /* SIGINT / SIGTERM stay blocked until g_pids names the child, so that on_signal forwards
     * them to it (the child unblocks them once their default action is back). */
    sigset_t stop_signals, old_mask;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    sigprocmask(SIG_BLOCK, &stop_signals, &old_mask);
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        sigprocmask(SIG_SETMASK, &old_mask, NULL);
        snprintf(t->error, sizeof t->error, "cannot fork: %s", strerror(e));
        close(to_host[0]), close(to_host[1]), close(to_child[0]), close(to_child[1]);
        goto fail;
    }
    if (pid == 0) {
        close(to_host[0]);
        close(to_child[1]);
        run_child(ex, tcf, t, plugin, &cs, to_host[1], to_child[0]);
    }
    if (slot >= 0)
        g_pids[slot] = (sig_atomic_t)pid;
    if (g_interrupted) /* signalled just before fork(): stop it too */
        kill(pid, SIGTERM);
    sigprocmask(SIG_SETMASK, &old_mask, NULL);
    close(to_host[1]);
    close(to_child[0]);
    free(payload);
    dsnn_config_file_free(tcf);
    t->pid = pid;
    t->rfd = to_host[0];
    t->wfd = to_child[1];
    t->status = TRIAL_RUNNING;
    t->got_done = t->child_error = t->halted = false;
    t->last_decision = DSNN_SEARCH_CONTINUE;
    t->t_start = now_s();
    ex->n_running++;
    ex->started_any = true;
    return;
fail:
    free(payload);
    dsnn_config_file_free(tcf);
    trial_finish(ex, t, TRIAL_ERROR);
}

static void metrics_to_json(struct dsnn_sbuf *b, const struct dsnn_metrics *m)
{
    dsnn_sbuf_puts(b, "{");
    for (size_t i = 0; i < m->n; i++) {
        dsnn_sbuf_puts(b, i ? ", " : "");
        dsnn_sbuf_json_string(b, m->items[i].name);
        dsnn_sbuf_puts(b, ": ");
        dsnn_sbuf_json_number(b, m->items[i].value);
    }
    dsnn_sbuf_puts(b, "}");
}

/* A trial reported an epoch: record it, get the strategy's decision, answer the child. */
static void trial_result(struct experiment *ex, struct trial *t, const struct dsnn_metrics *m)
{
    struct dsnn_error err = {0};
    size_t line = t->n_lines++;
    if (dsnn_trial_files_epoch(&t->tf, t->id, m, &err) != DSNN_OK)
        warn(ex, "%s", err.msg);
    double v = NAN, e;
    int epoch = dsnn_metrics_get(m, "epoch", &e) ? (int)e : t->epochs_done;
    t->epochs_done = epoch + 1;
    dsnn_metrics_get(m, ex->metric, &v);
    trial_note_metric(ex, t, v);
    dsnn_progress_epoch(&ex->progress, t->id, t->params_text, (long long)ex->epochs, m);
    int decision;
    bool perturb = false;
    if (line < t->n_reported) {
        /* seen before this resume / retry: same decision, not reported again */
        decision = t->decisions[line];
        double before = t->reported_metric[line];
        if (!t->warned_nondeterministic && !(isnan(before) && isnan(v)) &&
            memcmp(&before, &v, sizeof v) != 0) {
            warn(ex, "%s: epoch %d gives %s %.17g again, %.17g before: the trial is not "
                     "deterministic, a resumed experiment may differ from an uninterrupted one",
                 t->id, epoch, ex->metric, v, before);
            t->warned_nondeterministic = true;
        }
        if (decision == DSNN_SEARCH_PERTURB)
            decision = DSNN_SEARCH_CONTINUE; /* its copy was made: go on from there */
    } else {
        decision = ex->sops->on_result
                       ? (int)ex->sops->on_result(ex->search, t->index, epoch, m)
                       : DSNN_SEARCH_CONTINUE;
        if (decision < DSNN_SEARCH_CONTINUE || decision > DSNN_SEARCH_PERTURB)
            decision = DSNN_SEARCH_CONTINUE;
        struct dsnn_sbuf b = {0};
        dsnn_sbuf_printf(&b,
                         "\"event\": \"trial_result\", \"seq\": %llu, \"trial_id\": \"%s\", "
                         "\"epoch\": %d, \"line\": %zu, ",
                         (unsigned long long)++ex->journal.seq, t->id, epoch, line);
        dsnn_sbuf_json_string(&b, ex->metric);
        dsnn_sbuf_puts(&b, ": ");
        dsnn_sbuf_json_number(&b, v);
        dsnn_sbuf_printf(&b, ", \"decision\": \"%s\"", decision_str(decision));
        if (decision == DSNN_SEARCH_PERTURB) {
            int source = t->index;
            struct dsnn_param_set np;
            memset(&np, 0, sizeof np);
            char *cfg = NULL;
            const char *why = NULL;
            if (!ex->sops->exploit)
                why = "the strategy has no exploit op";
            else if (ex->checkpoint_freq <= 0 || ex->warned_no_checkpoint)
                why = "the trials have no checkpoints";
            else if (ex->sops->exploit(ex->search, t->index, &source, &np, &err) != DSNN_OK)
                why = err.msg;
            else if (!trial_by_index(ex, source))
                why = "exploit() named no existing trial";
            else if (!(cfg = params_to_cfg(&np)))
                why = "out of memory";
            if (why) {
                if (!ex->warned_no_exploit)
                    warn(ex, "search '%s' answered PERTURB for %s, which is ignored: %s",
                         ex->plugin[DSNN_KIND_SEARCH]->name, t->id, why);
                ex->warned_no_exploit = true;
                dsnn_sbuf_puts(&b, ", \"ignored\": ");
                dsnn_sbuf_json_string(&b, why);
                decision = DSNN_SEARCH_CONTINUE;
            } else {
                perturb = true;
                char *json = params_to_json(&np);
                dsnn_sbuf_printf(&b, ", \"exploit\": {\"source\": \"%s\", \"params\": %s, "
                                     "\"params_cfg\": ",
                                 trial_by_index(ex, source)->id, json ? json : "{}");
                dsnn_sbuf_json_string(&b, cfg);
                dsnn_sbuf_puts(&b, "}");
                free(json);
                free(t->perturb_cfg);
                t->perturb_cfg = cfg;
                t->perturb_source = source;
                t->perturb_line = line;
                t->perturb_pending = true;
                cfg = NULL;
            }
            free(cfg);
        }
        dsnn_sbuf_puts(&b, ", \"metrics\": ");
        metrics_to_json(&b, m);
        if (!b.oom)
            dsnn_journal_add(&ex->journal, b.p);
        dsnn_sbuf_free(&b);
        if (!trial_note_reported(t, line, perturb ? DSNN_SEARCH_PERTURB : decision, v))
            warn(ex, "out of memory");
        search_save(ex);
    }
    t->last_decision = perturb ? DSNN_SEARCH_PERTURB : decision;
    uint8_t to_child = perturb                          ? CHILD_PERTURB
                       : decision == DSNN_SEARCH_STOP  ? CHILD_STOP
                       : decision == DSNN_SEARCH_PAUSE ? CHILD_PAUSE
                                                       : CHILD_CONTINUE;
    if (g_interrupted && to_child == CHILD_CONTINUE) {
        to_child = CHILD_HALT;
        t->halted = true;
    }
    write_full(t->wfd, &to_child, 1); /* a child that died is noticed at EOF */
}

/* The child of t has exited (its pipe reached EOF): reap it and decide what comes next. */
static void trial_reap(struct experiment *ex, struct trial *t)
{
    close(t->rfd);
    close(t->wfd);
    t->rfd = t->wfd = -1;
    int status = 0;
    while (waitpid(t->pid, &status, 0) < 0 && errno == EINTR)
        ;
    for (int i = 0; i < MAX_PARALLEL; i++)
        if (g_pids[i] == (sig_atomic_t)t->pid)
            g_pids[i] = 0;
    t->pid = 0;
    ex->n_running--;
    t->seconds += now_s() - t->t_start;
    bool ok = t->got_done && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (ok && t->halted) {
        trial_finish(ex, t, TRIAL_INTERRUPTED);
    } else if (ok && t->perturb_pending) {
        t->status = TRIAL_PENDING;
        t->queued = true; /* trial_start copies the checkpoint and continues */
    } else if (ok) {
        enum trial_status s = TRIAL_TERMINATED;
        if (t->last_decision == DSNN_SEARCH_PAUSE)
            s = TRIAL_PAUSED;
        else if (t->last_decision == DSNN_SEARCH_STOP && t->epochs_done < ex->epochs)
            s = TRIAL_STOPPED;
        trial_finish(ex, t, s);
    } else if (g_interrupted && !t->child_error) {
        trial_finish(ex, t, TRIAL_INTERRUPTED);
    } else {
        if (!t->child_error) {
            if (WIFSIGNALED(status))
                snprintf(t->error, sizeof t->error,
                         "the trial process was killed by signal %d, %s, after %d epoch(s); see "
                         "%.600s/log.txt",
                         WTERMSIG(status), signal_name(WTERMSIG(status)), t->epochs_done,
                         t->dir);
            else if (!t->error[0] || !t->got_done)
                snprintf(t->error, sizeof t->error,
                         "the trial process exited with status %d after %d epoch(s)",
                         WIFEXITED(status) ? WEXITSTATUS(status) : -1, t->epochs_done);
        }
        if (!t->no_retry && !g_interrupted && t->failures < ex->max_failures) {
            t->failures++;
            char name[64];
            snprintf(name, sizeof name, "error.%d.txt", t->failures);
            char path[1200];
            snprintf(path, sizeof path, "%s/%s", t->dir, name);
            char text[DSNN_ERROR_MSG_MAX + 2];
            int n = snprintf(text, sizeof text, "%s\n", t->error);
            struct dsnn_error err = {0};
            if (dsnn_write_file_atomic(path, text, (size_t)n, &err) != DSNN_OK)
                warn(ex, "%s", err.msg);
            struct dsnn_sbuf b = {0};
            dsnn_sbuf_printf(&b,
                             "\"event\": \"trial_failed\", \"trial_id\": \"%s\", \"attempt\": %d, "
                             "\"epochs\": %d, \"retries_left\": %lld, \"error\": ",
                             t->id, t->attempts, t->epochs_done,
                             (long long)(ex->max_failures - t->failures));
            dsnn_sbuf_json_string(&b, t->error);
            if (!b.oom)
                dsnn_journal_add(&ex->journal, b.p);
            dsnn_sbuf_free(&b);
            say_clear(ex);
            fprintf(stderr, "%s: attempt %d failed: %s\n%s: retrying (%d of %lld) from its last "
                            "checkpoint (%s kept)\n",
                    t->id, t->attempts, t->error, t->id, t->failures,
                    (long long)ex->max_failures, name);
            t->error[0] = '\0';
            t->status = TRIAL_PENDING;
            t->queued = true;
        } else {
            trial_finish(ex, t, TRIAL_ERROR);
        }
    }
}

/* Reads one message of t's child (the whole of it: the child writes it at once). */
static void trial_read(struct experiment *ex, struct trial *t)
{
    static struct dsnn_metrics m; /* large */
    struct msg_header h;
    int r = read_full(t->rfd, &h, sizeof h);
    if (r <= 0) {
        trial_reap(ex, t);
        return;
    }
    if (h.type == MSG_RESULT && h.size == sizeof m) {
        if (read_full(t->rfd, &m, sizeof m) != 1 || m.n > DSNN_METRICS_MAX)
            goto protocol;
        for (size_t i = 0; i < m.n; i++)
            m.items[i].name[DSNN_METRIC_NAME_MAX - 1] = '\0';
        trial_result(ex, t, &m);
    } else if ((h.type == MSG_ERROR || h.type == MSG_FATAL || h.type == MSG_WARNING) &&
               h.size == sizeof(struct dsnn_error)) {
        struct dsnn_error cerr;
        if (read_full(t->rfd, &cerr, sizeof cerr) != 1)
            goto protocol;
        cerr.msg[sizeof cerr.msg - 1] = '\0';
        if (h.type == MSG_WARNING) {
            warn(ex, "%s: %s", t->id, cerr.msg);
            return;
        }
        snprintf(t->error, sizeof t->error, "%s", cerr.msg);
        t->child_error = true;
        t->no_retry = t->no_retry || h.type == MSG_FATAL;
    } else if (h.type == MSG_CHECKPOINT && h.size == sizeof(struct ckpt_msg)) {
        struct ckpt_msg cm;
        if (read_full(t->rfd, &cm, sizeof cm) != 1)
            goto protocol;
    } else if (h.type == MSG_DONE && h.size == 0) {
        t->got_done = true;
    } else {
        goto protocol;
    }
    return;
protocol:
    snprintf(t->error, sizeof t->error, "protocol error from the trial process");
    t->child_error = true;
    kill(t->pid, SIGKILL);
    trial_reap(ex, t);
}

/* ---- the scheduler ---- */

static void show_table(struct experiment *ex, bool force)
{
    if (!ex->progress.table)
        return;
    struct dsnn_progress_row *rows = calloc(ex->n_trials ? ex->n_trials : 1, sizeof *rows);
    if (!rows)
        return;
    size_t n = 0, running = 0, pending = 0, done = 0, failed = 0;
    double now = now_s();
    /* running first, then waiting ones, then finished ones */
    for (int pass = 0; pass < 3; pass++)
        for (size_t i = 0; i < ex->n_trials; i++) {
            const struct trial *t = ex->trials[i];
            int p = t->status == TRIAL_RUNNING ? 0 : t->status == TRIAL_PENDING ? 1 : 2;
            if (p != pass)
                continue;
            running += p == 0;
            pending += p == 1;
            done += p == 2;
            failed += t->status == TRIAL_ERROR;
            rows[n++] = (struct dsnn_progress_row){
                .trial_id = t->id,
                .status = status_str(t->status),
                .params = t->params_text,
                .epochs_done = t->epochs_done,
                .epochs = (int)ex->epochs,
                .last = t->last_metric,
                .best = t->best_metric,
                .seconds = t->seconds + (t->status == TRIAL_RUNNING ? now - t->t_start : 0),
            };
        }
    char footer[256];
    snprintf(footer, sizeof footer, "%zu running, %zu pending, %zu finished (%zu error)%s",
             running, pending, done, failed,
             g_interrupted ? "; interrupted, stopping" : ex->search_done ? "" : "; more to come");
    dsnn_progress_table(&ex->progress, rows, n, footer, force);
    free(rows);
}

/* Runs trials until none is left to run (or the host is interrupted / a fatal error). */
static void schedule(struct experiment *ex)
{
    for (;;) {
        while (!g_interrupted && !ex->fatal && ex->n_running < ex->parallel) {
            struct trial *t = next_queued(ex);
            if (t) {
                trial_start(ex, t);
                continue;
            }
            if (!suggest_next(ex))
                break;
        }
        show_table(ex, false);
        if (ex->n_running == 0)
            break;
        struct pollfd fds[MAX_PARALLEL];
        struct trial *who[MAX_PARALLEL];
        nfds_t n = 0;
        for (size_t i = 0; i < ex->n_trials && n < MAX_PARALLEL; i++)
            if (ex->trials[i]->status == TRIAL_RUNNING) {
                fds[n] = (struct pollfd){.fd = ex->trials[i]->rfd, .events = POLLIN};
                who[n++] = ex->trials[i];
            }
        int r = poll(fds, n, ex->progress.table ? 1000 : -1);
        if (r < 0 && errno != EINTR) {
            warn(ex, "poll: %s", strerror(errno));
            struct timespec ts = {0, 100 * 1000 * 1000};
            nanosleep(&ts, NULL);
            continue;
        }
        for (nfds_t i = 0; r > 0 && i < n; i++)
            if (fds[i].revents & (POLLIN | POLLHUP | POLLERR | POLLNVAL))
                trial_read(ex, who[i]);
    }
    show_table(ex, true);
    dsnn_progress_end(&ex->progress);
}

/* ---- experiment setup ---- */

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
    struct stat st;
    if (stat(ex->dir, &st) == 0) {
        if (!overwrite)
            return dsnn_error_set(err, DSNN_ERR_IO,
                                  "%s already exists: choose another experiment.name, remove it, "
                                  "pass --overwrite, or continue it with 'dsnn-host resume %s'",
                                  ex->dir, ex->dir);
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

/* One dsnn-host at a time per results directory (a lock that a killed host leaves free). */
static enum dsnn_status lock_dir(struct experiment *ex, struct dsnn_error *err)
{
    char path[1100];
    snprintf(path, sizeof path, "%s/.lock", ex->dir);
    int fd = open(path, O_RDWR | O_CREAT, 0644);
    if (fd < 0)
        return dsnn_error_set(err, DSNN_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    if (fcntl(fd, F_SETLK, &fl) != 0) {
        struct flock q = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
        long other = fcntl(fd, F_GETLK, &q) == 0 && q.l_type != F_UNLCK ? (long)q.l_pid : -1;
        close(fd);
        return dsnn_error_set(err, DSNN_ERR_IO,
                              "%s is in use by another dsnn-host (pid %ld); wait for it or stop it "
                              "first",
                              ex->dir, other);
    }
    ex->lock_fd = fd;
    return DSNN_OK;
}

static enum dsnn_status read_cfg_text(struct experiment *ex, struct dsnn_error *err)
{
    unsigned char *data = NULL;
    size_t size = 0;
    FILE *f = fopen(ex->cfg_path, "rb");
    if (!f)
        return dsnn_error_set(err, DSNN_ERR_IO, "%s: cannot open: %s", ex->cfg_path,
                              strerror(errno));
    size_t cap = 4096;
    data = malloc(cap);
    for (size_t r; data && (r = fread(data + size, 1, cap - size, f)) > 0;) {
        size += r;
        if (size == cap) {
            unsigned char *nd = realloc(data, cap * 2);
            if (!nd) {
                free(data);
                data = NULL;
                break;
            }
            data = nd;
            cap *= 2;
        }
    }
    fclose(f);
    if (!data)
        return dsnn_error_set(err, DSNN_ERR_NOMEM, "out of memory");
    ex->cfg_text = (char *)data;
    ex->cfg_len = size;
    ex->cfg_hash = dsnn_fnv1a(DSNN_FNV_INIT, data, size);
    return DSNN_OK;
}

/* Loads the configuration, reads the experiment group, validates it against the plugins. */
static enum dsnn_status setup(struct experiment *ex, const struct dsnn_registry *reg, int *code,
                              struct dsnn_error *err)
{
    *code = DSNN_EXIT_CONFIG;
    ex->reg = reg;
    ex->lock_fd = -1;
    ex->host_pid = getpid();
    enum dsnn_status st = dsnn_config_file_load(ex->cfg_path, &ex->cf, err);
    if (st != DSNN_OK) {
        *code = st == DSNN_ERR_IO ? DSNN_EXIT_IO : DSNN_EXIT_CONFIG;
        return st;
    }
    if ((st = read_experiment(ex, err)) != DSNN_OK ||
        (st = validate(ex->cf, reg, ex->allow_unknown, ex->plugin, code, err)) != DSNN_OK)
        return st;
    *code = DSNN_EXIT_IO;
    if ((st = read_cfg_text(ex, err)) != DSNN_OK)
        return st;
    ex->sops = &ex->plugin[DSNN_KIND_SEARCH]->ops.search;
    *code = DSNN_EXIT_CONFIG;
    return DSNN_OK;
}

static enum dsnn_status search_create(struct experiment *ex, void **state, struct dsnn_error *err)
{
    struct dsnn_search_ctx sctx = {
        .seed = (uint64_t)ex->seed,
        .num_samples = (int)ex->num_samples,
        .max_epochs = (int)ex->epochs,
        .metric = ex->metric,
        .maximize = ex->maximize,
    };
    const struct dsnn_cfg *root = dsnn_config_file_root(ex->cf);
    enum dsnn_status st = ex->sops->create(dsnn_cfg_group(root, "search"), &sctx, state, err);
    if (st != DSNN_OK)
        dsnn_error_prefix(err, "search '%s'", ex->plugin[DSNN_KIND_SEARCH]->name);
    return st;
}

/* Up front, before anything runs: asks a scratch instance of the strategy for every trial it
 * proposes without results (suggest 0, 1, ... until done) and validates each configuration, so
 * that a searched key that is not a key of its plugin, or a value of the wrong type, stops the
 * experiment at once instead of failing every trial. Strategies that decide as results arrive
 * get their later suggestions validated when they are made. */
static enum dsnn_status validate_upfront(struct experiment *ex, struct dsnn_error *err)
{
    void *scratch = NULL;
    enum dsnn_status st = search_create(ex, &scratch, err);
    if (st != DSNN_OK)
        return st;
    struct trial probe;
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
        memset(&probe, 0, sizeof probe);
        probe.index = i;
        snprintf(probe.id, sizeof probe.id, "trial_%05d", i);
        probe.params = ps;
        format_params(&probe.params, probe.params_text, sizeof probe.params_text);
        int code;
        if ((st = trial_config_checked(ex, &probe, NULL,
                                       (const struct dsnn_registry_entry *[5]){0}, &code, err)) !=
            DSNN_OK)
            break;
        n++;
    }
    ex->sops->destroy(scratch);
    if (st == DSNN_OK && n == 0)
        st = dsnn_error_set(err, DSNN_ERR_CONFIG, "the search strategy proposed no trial");
    ex->n_known = n;
    return st;
}

static int trial_threads(const struct experiment *ex, size_t n_trials)
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

static void print_summary(const struct experiment *ex)
{
    if (ex->quiet)
        return;
    printf("\n%-12s %-11s %6s %10s %10s %8s  %s\n", "trial", "status", "epochs", "last", "best",
           "time_s", "params");
    for (size_t i = 0; i < ex->n_trials; i++) {
        const struct trial *t = ex->trials[i];
        printf("%-12s %-11s %6d %10.4f %10.4f %8.1f  %s\n", t->id, status_str(t->status),
               t->epochs_done, t->last_metric, t->best_metric, t->seconds,
               t->params_text[0] ? t->params_text : "-");
    }
    printf("(last / best = %s, mode %s)  results: %s\n", ex->metric, ex->maximize ? "max" : "min",
           ex->dir);
}

static void print_banner(const struct experiment *ex, const char *verb)
{
    if (ex->quiet)
        return;
    printf("%s '%s': %zu trial(s) x %lld epoch(s), %lld at once, %d thread(s) each; dataset %s, "
           "network %s, model %s, search %s\nresults: %s\n",
           verb, ex->name, ex->n_known, (long long)ex->epochs, (long long)ex->parallel,
           ex->trial_threads, ex->plugin[DSNN_KIND_DATASET]->name,
           ex->plugin[DSNN_KIND_NETWORK]->name, ex->plugin[DSNN_KIND_MODEL]->name,
           ex->plugin[DSNN_KIND_SEARCH]->name, ex->dir);
    fflush(stdout);
}

/* Runs the scheduler with the signal handlers installed; then journal, summary, exit code. */
static int run_and_finish(struct experiment *ex, struct dsnn_error *err)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    struct sigaction old_int, old_term, old_pipe;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    struct sigaction ign;
    memset(&ign, 0, sizeof ign);
    ign.sa_handler = SIG_IGN;
    sigemptyset(&ign.sa_mask);
    sigaction(SIGPIPE, &ign, &old_pipe); /* a dead child's pipe: noticed at its EOF */
    schedule(ex);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    sigaction(SIGPIPE, &old_pipe, NULL);
    print_summary(ex);
    size_t n_failed = 0;
    for (size_t i = 0; i < ex->n_trials; i++)
        n_failed += ex->trials[i]->status == TRIAL_ERROR;
    if (g_interrupted) {
        dsnn_journal_add(&ex->journal, "\"event\": \"experiment_interrupted\"");
        dsnn_error_set(err, DSNN_ERR_INTERRUPTED,
                       "interrupted; partial results in %s (continue with: dsnn-host resume %s)",
                       ex->dir, ex->dir);
        return DSNN_EXIT_INTERRUPTED;
    }
    if (ex->fatal) {
        struct dsnn_sbuf b = {0};
        dsnn_sbuf_puts(&b, "\"event\": \"experiment_failed\", \"error\": ");
        dsnn_sbuf_json_string(&b, ex->fatal_err.msg);
        if (!b.oom)
            dsnn_journal_add(&ex->journal, b.p);
        dsnn_sbuf_free(&b);
        *err = ex->fatal_err;
        return ex->fatal_code ? ex->fatal_code : DSNN_EXIT_CONFIG;
    }
    dsnn_journal_addf(&ex->journal, "\"event\": \"experiment_finished\", \"failed_trials\": %zu",
                      n_failed);
    if (n_failed) {
        dsnn_error_set(err, DSNN_ERR_INTERNAL,
                       "%zu of %zu trial(s) ended in ERROR (see error.txt in their folders under "
                       "%s)",
                       n_failed, ex->n_trials, ex->dir);
        return DSNN_EXIT_TRIALS_FAILED;
    }
    return DSNN_EXIT_OK;
}

static void experiment_release(struct experiment *ex)
{
    if (ex->search)
        ex->sops->destroy(ex->search);
    for (size_t i = 0; i < ex->n_trials; i++)
        trial_free(ex->trials[i]);
    free(ex->trials);
    free(ex->cfg_text);
    dsnn_config_file_free(ex->cf);
    if (ex->lock_fd >= 0)
        close(ex->lock_fd);
}

int dsnn_run_experiment(struct dsnn_registry *reg, const char *cfg_path,
                        const struct dsnn_run_options *opt, struct dsnn_error *err)
{
    struct experiment ex = {.cfg_path = cfg_path, .quiet = opt && opt->quiet, .lock_fd = -1};
    int code = DSNN_EXIT_CONFIG;
    enum dsnn_status st = setup(&ex, reg, &code, err);
    if (st != DSNN_OK)
        goto out;
    code = DSNN_EXIT_CONFIG;
    if ((st = validate_upfront(&ex, err)) != DSNN_OK)
        goto out;
    const char *root_dir = opt && opt->results_root ? opt->results_root : NULL;
    if (!root_dir &&
        (st = dsnn_cfg_string(dsnn_cfg_group(dsnn_config_file_root(ex.cf), "experiment"),
                              "results_dir", "results", &root_dir, err)) != DSNN_OK)
        goto out;
    code = DSNN_EXIT_IO;
    if ((st = prepare_dir(&ex, root_dir, opt && opt->overwrite, err)) != DSNN_OK ||
        (st = lock_dir(&ex, err)) != DSNN_OK)
        goto out;
    snprintf(ex.journal.path, sizeof ex.journal.path, "%s/journal.jsonl", ex.dir);
    char path[1200];
    snprintf(path, sizeof path, "%s/experiment.cfg", ex.dir);
    if ((st = dsnn_write_file_atomic(path, ex.cfg_text, ex.cfg_len, err)) != DSNN_OK)
        goto out;
    ex.trial_threads = trial_threads(&ex, ex.n_known);
    code = DSNN_EXIT_CONFIG;
    if ((st = search_create(&ex, &ex.search, err)) != DSNN_OK)
        goto out;
    ex.search_saves = ex.sops->save && ex.sops->restore;
    struct dsnn_sbuf b = {0};
    dsnn_sbuf_puts(&b, "\"event\": \"experiment_started\", \"name\": ");
    dsnn_sbuf_json_string(&b, ex.name);
    dsnn_sbuf_printf(&b,
                     ", \"trials\": %zu, \"dsnn_version\": \"%s\", \"config_hash\": "
                     "\"%016llx\", \"parallel\": %lld, \"trial_threads\": %d",
                     ex.n_known, DSNN_VERSION_STRING, (unsigned long long)ex.cfg_hash,
                     (long long)ex.parallel, ex.trial_threads);
    if (!b.oom)
        dsnn_journal_add(&ex.journal, b.p);
    dsnn_sbuf_free(&b);
    dsnn_progress_init(&ex.progress, ex.quiet, -1, ex.metric);
    print_banner(&ex, "experiment");
    /* The first `parallel` trials are suggested (and validated) before any starts. */
    for (int64_t i = 0; i < ex.parallel && suggest_next(&ex);)
        i++;
    code = run_and_finish(&ex, err);
    st = DSNN_OK;
out:
    experiment_release(&ex);
    if (st != DSNN_OK && code == DSNN_EXIT_OK)
        code = DSNN_EXIT_CONFIG;
    return code;
}

/* ---- resume ---- */

static enum trial_status status_parse(const char *s)
{
    for (int k = TRIAL_PENDING; k <= TRIAL_INTERRUPTED; k++)
        if (strcmp(s, status_str((enum trial_status)k)) == 0)
            return (enum trial_status)k;
    return TRIAL_PENDING;
}

static void metrics_from_json(const struct dsnn_jnode *obj, struct dsnn_metrics *m)
{
    dsnn_metrics_clear(m);
    if (!obj || obj->type != DSNN_JOBJECT)
        return;
    for (const struct dsnn_jnode *k = obj->kids; k; k = k->next)
        dsnn_metrics_set(m, k->key, dsnn_jnode_num(obj, k->key, NAN));
}

/* Rebuilds the trials from the journal, and the search strategy's state by replaying every
 * search event after restored_seq into it (suggest, on_result (+ exploit), on_complete), in the
 * order they happened. */
static enum dsnn_status replay(struct experiment *ex, const struct dsnn_journal_log *log,
                               uint64_t restored_seq, struct dsnn_error *err)
{
    static struct dsnn_metrics m; /* large */
    bool warned = false;
    for (size_t i = 0; i < log->n; i++) {
        const struct dsnn_jnode *ev = log->events[i];
        const char *type = dsnn_jnode_str(ev, "event");
        uint64_t seq = (uint64_t)dsnn_jnode_num(ev, "seq", 0);
        if (seq > ex->journal.seq)
            ex->journal.seq = seq;
        bool call = seq > restored_seq;
        enum dsnn_status st;
        if (strcmp(type, "trial_created") == 0) {
            int index = (int)dsnn_jnode_num(ev, "index", -1);
            struct trial *t = trial_new(ex, index, err);
            if (!t || (st = trial_set_params(ex, t, dsnn_jnode_str(ev, "params_cfg"), err)))
                return dsnn_error_prefix(err, "%s: event %zu (trial_created)", ex->journal.path,
                                         i + 1);
            if (call) {
                struct dsnn_param_set ps;
                memset(&ps, 0, sizeof ps);
                bool done = false;
                struct dsnn_error serr = {0};
                if (ex->sops->suggest(ex->search, index, &ps, &done, &serr) != DSNN_OK || done) {
                    if (!warned)
                        warn(ex, "search '%s' does not suggest %s again when replayed (%s); its "
                                 "state may differ from the interrupted run's",
                             ex->plugin[DSNN_KIND_SEARCH]->name, t->id,
                             done ? "it says done" : serr.msg);
                    warned = true;
                } else {
                    char *cfg = params_to_cfg(&ps);
                    if (cfg && strcmp(cfg, t->params_cfg) != 0 && !warned) {
                        warn(ex, "search '%s' suggests other parameters for %s when replayed; "
                                 "the journal's are used",
                             ex->plugin[DSNN_KIND_SEARCH]->name, t->id);
                        warned = true;
                    }
                    free(cfg);
                }
            }
            ex->next_index = index + 1;
            continue;
        }
        struct trial *t = trial_by_id(ex, dsnn_jnode_str(ev, "trial_id"));
        if (!t)
            continue;
        if (strcmp(type, "trial_started") == 0) {
            t->attempts = (int)dsnn_jnode_num(ev, "attempt", t->attempts + 1);
        } else if (strcmp(type, "trial_result") == 0) {
            size_t line = (size_t)dsnn_jnode_num(ev, "line", (double)t->n_reported);
            int epoch = (int)dsnn_jnode_num(ev, "epoch", 0);
            int d = decision_parse(dsnn_jnode_str(ev, "decision"));
            const struct dsnn_jnode *xp = dsnn_jnode_get(ev, "exploit");
            if (d == DSNN_SEARCH_PERTURB && !xp)
                d = DSNN_SEARCH_CONTINUE; /* ignored */
            if (!trial_note_reported(t, line, d, dsnn_jnode_num(ev, ex->metric, NAN)))
                return dsnn_error_set(err, DSNN_ERR_NOMEM, "out of memory");
            if (xp) {
                struct trial *src = trial_by_id(ex, dsnn_jnode_str(xp, "source"));
                free(t->perturb_cfg);
                t->perturb_cfg = strdup(dsnn_jnode_str(xp, "params_cfg"));
                t->perturb_source = src ? src->index : t->index;
                t->perturb_line = line;
                t->perturb_pending = t->perturb_cfg != NULL;
            }
            if (call && ex->sops->on_result) {
                metrics_from_json(dsnn_jnode_get(ev, "metrics"), &m);
                int again = (int)ex->sops->on_result(ex->search, t->index, epoch, &m);
                if (again == DSNN_SEARCH_PERTURB && xp && ex->sops->exploit) {
                    int source;
                    struct dsnn_param_set np;
                    memset(&np, 0, sizeof np);
                    struct dsnn_error xerr = {0};
                    ex->sops->exploit(ex->search, t->index, &source, &np, &xerr);
                }
                if (again != d && !(again == DSNN_SEARCH_PERTURB && !xp) && !warned) {
                    warn(ex, "search '%s' decides %s for %s epoch %d when replayed, %s before; "
                             "the journal's decision is kept",
                         ex->plugin[DSNN_KIND_SEARCH]->name, decision_str(again), t->id, epoch,
                         decision_str(d));
                    warned = true;
                }
            }
        } else if (strcmp(type, "trial_perturbed") == 0) {
            if ((st = trial_set_params(ex, t, dsnn_jnode_str(ev, "params_cfg"), err)))
                return dsnn_error_prefix(err, "%s: event %zu (trial_perturbed)",
                                         ex->journal.path, i + 1);
            t->perturb_pending = false;
        } else if (strcmp(type, "trial_failed") == 0) {
            t->failures++;
        } else if (strcmp(type, "trial_finished") == 0) {
            enum trial_status s = status_parse(dsnn_jnode_str(ev, "status"));
            if (seq && status_final(s)) {
                t->status = s;
                snprintf(t->error, sizeof t->error, "%s", dsnn_jnode_str(ev, "error"));
                if (call && ex->sops->on_complete)
                    ex->sops->on_complete(ex->search, t->index, s == TRIAL_ERROR);
            } else {
                t->status = TRIAL_INTERRUPTED;
            }
        }
    }
    return DSNN_OK;
}

int dsnn_resume_experiment(struct dsnn_registry *reg, const char *results_dir,
                           const struct dsnn_run_options *opt, struct dsnn_error *err)
{
    struct experiment ex = {.quiet = opt && opt->quiet, .lock_fd = -1, .resumed = true};
    struct dsnn_journal_log log = {0};
    int code = DSNN_EXIT_IO;
    enum dsnn_status st = DSNN_OK;
    size_t len = strlen(results_dir);
    while (len > 1 && results_dir[len - 1] == '/')
        len--;
    if (len >= sizeof ex.dir - 32) {
        st = dsnn_error_set(err, DSNN_ERR_IO, "%s: path too long", results_dir);
        goto out;
    }
    snprintf(ex.dir, sizeof ex.dir, "%.*s", (int)len, results_dir);
    char cfg_path[1100];
    snprintf(cfg_path, sizeof cfg_path, "%s/experiment.cfg", ex.dir);
    snprintf(ex.journal.path, sizeof ex.journal.path, "%s/journal.jsonl", ex.dir);
    struct stat sb;
    if (stat(ex.dir, &sb) != 0 || !S_ISDIR(sb.st_mode) || stat(cfg_path, &sb) != 0 ||
        stat(ex.journal.path, &sb) != 0) {
        st = dsnn_error_set(err, DSNN_ERR_IO,
                            "%s is not a dsnn results directory (it needs experiment.cfg and "
                            "journal.jsonl, as 'dsnn-host run' writes them)",
                            ex.dir);
        goto out;
    }
    ex.cfg_path = cfg_path;
    if ((st = setup(&ex, reg, &code, err)) != DSNN_OK)
        goto out;
    code = DSNN_EXIT_IO;
    if ((st = lock_dir(&ex, err)) != DSNN_OK ||
        (st = dsnn_journal_load(ex.journal.path, &log, err)) != DSNN_OK)
        goto out;
    if (log.dropped_tail) {
        warn(&ex, "%s: its last line was cut short (the host was killed while writing it); it "
                  "is dropped",
             ex.journal.path);
        if ((st = dsnn_journal_repair(ex.journal.path, err)) != DSNN_OK)
            goto out;
    }
    /* the experiment as it started */
    const struct dsnn_jnode *started = NULL;
    bool finished = false;
    for (size_t i = 0; i < log.n; i++) {
        const char *type = dsnn_jnode_str(log.events[i], "event");
        if (!started && strcmp(type, "experiment_started") == 0)
            started = log.events[i];
        finished = strcmp(type, "experiment_finished") == 0 ? true
                   : strncmp(type, "experiment_", 11) == 0 ? false
                                                           : finished;
    }
    if (!started) {
        st = dsnn_error_set(err, DSNN_ERR_FORMAT, "%s: no experiment_started event",
                            ex.journal.path);
        goto out;
    }
    char hash[32];
    snprintf(hash, sizeof hash, "%016llx", (unsigned long long)ex.cfg_hash);
    const char *was = dsnn_jnode_str(started, "config_hash");
    if (*was && strcmp(was, hash) != 0) {
        code = DSNN_EXIT_CONFIG;
        st = dsnn_error_set(err, DSNN_ERR_CONFIG,
                            "%s was changed since the experiment started (hash %s, was %s); a "
                            "resume needs the configuration as run",
                            cfg_path, hash, was);
        goto out;
    }
    ex.n_known = (size_t)dsnn_jnode_num(started, "trials", 0);
    int threads = (int)dsnn_jnode_num(started, "trial_threads", 0);
    ex.trial_threads = threads > 0 ? threads : trial_threads(&ex, ex.n_known);
    /* the search strategy: restored, else replayed from the start */
    code = DSNN_EXIT_CONFIG;
    if ((st = search_create(&ex, &ex.search, err)) != DSNN_OK)
        goto out;
    ex.search_saves = ex.sops->save && ex.sops->restore;
    uint64_t restored = 0;
    if (ex.search_saves) {
        struct dsnn_error rerr = {0};
        char path[1200];
        snprintf(path, sizeof path, "%s/" SEARCH_STATE_FILE, ex.dir);
        if (stat(path, &sb) == 0 && search_restore(&ex, &restored, &rerr) != DSNN_OK) {
            warn(&ex, "%s; replaying the journal instead", rerr.msg);
            ex.sops->destroy(ex.search);
            ex.search = NULL;
            restored = 0;
            if ((st = search_create(&ex, &ex.search, err)) != DSNN_OK)
                goto out;
        }
    }
    code = DSNN_EXIT_IO;
    if ((st = replay(&ex, &log, restored, err)) != DSNN_OK)
        goto out;
    dsnn_progress_init(&ex.progress, ex.quiet, -1, ex.metric);
    size_t unfinished = 0;
    for (size_t i = 0; i < ex.n_trials; i++) {
        struct trial *t = ex.trials[i];
        trial_scan_results(&ex, t);
        unfinished += !status_final(t->status);
    }
    if (finished && unfinished == 0) {
        if (!ex.quiet)
            printf("%s: the experiment has finished; nothing to resume\n", ex.dir);
        print_summary(&ex);
        size_t n_failed = 0;
        for (size_t i = 0; i < ex.n_trials; i++)
            n_failed += ex.trials[i]->status == TRIAL_ERROR;
        code = n_failed ? DSNN_EXIT_TRIALS_FAILED : DSNN_EXIT_OK;
        if (n_failed)
            dsnn_error_set(err, DSNN_ERR_INTERNAL, "%zu of %zu trial(s) ended in ERROR", n_failed,
                           ex.n_trials);
        st = DSNN_OK;
        goto out;
    }
    dsnn_journal_addf(&ex.journal,
                      "\"event\": \"experiment_resumed\", \"dsnn_version\": \"%s\", "
                      "\"unfinished_trials\": %zu, \"search_state\": \"%s\"",
                      DSNN_VERSION_STRING, unfinished,
                      restored ? "restored" : "replayed");
    print_banner(&ex, "resuming experiment");
    for (size_t i = 0; i < ex.n_trials; i++) {
        struct trial *t = ex.trials[i];
        if (status_final(t->status))
            continue;
        /* results the search strategy never saw (the host died first) are run again */
        if (t->n_lines > t->n_reported) {
            struct dsnn_error ferr = {0};
            if (dsnn_trial_files_resume(&t->tf, t->dir, t->n_reported, &ferr) != DSNN_OK)
                warn(&ex, "%s", ferr.msg);
            trial_scan_results(&ex, t);
        }
        /* its last result said STOP / PAUSE, or it had run all its epochs, but the host died
         * before it was recorded as finished: finish it now */
        int last = t->n_reported ? t->decisions[t->n_reported - 1] : -1;
        bool complete = t->n_lines == t->n_reported && t->n_reported > 0 && !t->perturb_pending;
        if (complete && (last == DSNN_SEARCH_STOP || last == DSNN_SEARCH_PAUSE ||
                         (last == DSNN_SEARCH_CONTINUE && t->epochs_done >= ex.epochs))) {
            trial_finish(&ex, t,
                         last == DSNN_SEARCH_PAUSE ? TRIAL_PAUSED
                         : last == DSNN_SEARCH_STOP && t->epochs_done < ex.epochs
                             ? TRIAL_STOPPED
                             : TRIAL_TERMINATED);
            continue;
        }
        t->status = TRIAL_PENDING;
        t->queued = true;
    }
    code = run_and_finish(&ex, err);
    st = DSNN_OK;
out:
    dsnn_journal_log_free(&log);
    experiment_release(&ex);
    if (st != DSNN_OK && code == DSNN_EXIT_OK)
        code = DSNN_EXIT_IO;
    return code;
}
