/* runner_resume.c - dsnn-host resume: the trials and the search strategy rebuilt from the
 * journal, then the unfinished trials continued from their checkpoints. */
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

static enum trial_status status_parse(const char *s)
{
    for (int k = TRIAL_PENDING; k <= TRIAL_INTERRUPTED; k++)
        if (strcmp(s, rn_status_str((enum trial_status)k)) == 0)
            return (enum trial_status)k;
    return TRIAL_PENDING;
}

static void metrics_from_json(const struct dsnn_json_value *obj, struct dsnn_metrics *m)
{
    dsnn_metrics_clear(m);
    if (!obj || obj->type != DSNN_JSON_OBJECT)
        return;
    for (size_t i = 0; i < obj->n; i++)
        dsnn_metrics_set(m, obj->items[i].key, dsnn_json_num(obj, obj->items[i].key, NAN));
}

/* Journal fields that index or size anything are range-checked: a damaged or forged journal is
 * an error naming the file, the event and the field, never a huge allocation or a hang. */
#define JOURNAL_MAX_TRIALS 1000000
#define JOURNAL_MAX_LINES 100000000

static enum dsnn_status ev_int(const struct experiment *ex, const struct dsnn_json_value *ev,
                               const char *key, int64_t lo, int64_t hi, int64_t def,
                               int64_t *out, struct dsnn_error *err)
{
    if (dsnn_json_int(ev, key, lo, hi, def, out))
        return DSNN_OK;
    return dsnn_error_set(err, DSNN_ERR_FORMAT,
                          "%s: event \"%s\": field '%s' is not an integer in [%lld, %lld]",
                          ex->journal.path, dsnn_json_str(ev, "event"), key, (long long)lo,
                          (long long)hi);
}

/* trial_created: the trial with the journal's parameters; with call, the strategy is asked to
 * suggest it again (a differing answer is warned about once: the journal's is used). */
static enum dsnn_status replay_created(struct experiment *ex, const struct dsnn_json_value *ev,
                                       bool call, bool *warned, struct dsnn_error *err)
{
    int64_t i64;
    enum dsnn_status st = ev_int(ex, ev, "index", 0, JOURNAL_MAX_TRIALS, -1, &i64, err);
    if (st != DSNN_OK)
        return st;
    const int index = (int)i64;
    struct trial *t = rn_trial_new(ex, index, err);
    st = DSNN_ERR_FORMAT;
    if (!t || (st = rn_trial_set_params(ex, t, dsnn_json_str(ev, "params_cfg"), err)))
        return st;
    ex->next_index = index + 1;
    if (!call)
        return DSNN_OK;
    struct dsnn_param_set ps;
    memset(&ps, 0, sizeof ps);
    bool done = false;
    struct dsnn_error serr = {0};
    const char *name = ex->plugin[DSNN_KIND_SEARCH]->name;
    if (ex->sops->suggest(ex->search, index, &ps, &done, &serr) != DSNN_OK || done) {
        if (!*warned)
            rn_warn(ex, "search '%s' does not suggest %s again when replayed (%s); its state may "
                        "differ from the interrupted run's",
                    name, t->id, done ? "it says done" : serr.msg);
        *warned = true;
        return DSNN_OK;
    }
    char *cfg = rn_params_to_cfg(&ps);
    if (cfg && strcmp(cfg, t->params_cfg) != 0 && !*warned) {
        rn_warn(ex, "search '%s' suggests other parameters for %s when replayed; the journal's "
                    "are used",
                name, t->id);
        *warned = true;
    }
    free(cfg);
    return DSNN_OK;
}

/* trial_result: the decision the strategy gave (and a PERTURB's exploit); with call, the
 * strategy sees the result again (a differing decision is warned about once: the journal's is
 * kept). false: out of memory. */
static enum dsnn_status replay_result(struct experiment *ex, struct trial *t,
                                      const struct dsnn_json_value *ev, bool call, bool *warned,
                                      struct dsnn_error *err)
{
    static struct dsnn_metrics m; /* large */
    int64_t line, epoch;
    /* a trial's results come in order: a line beyond the next one would leave a gap */
    enum dsnn_status st = ev_int(ex, ev, "line", 0, (int64_t)t->n_reported, (int64_t)t->n_reported,
                                 &line, err);
    if (st == DSNN_OK)
        st = ev_int(ex, ev, "epoch", 0, JOURNAL_MAX_LINES, 0, &epoch, err);
    if (st != DSNN_OK)
        return dsnn_error_prefix(err, "trial %s", t->id);
    int d = rn_decision_parse(dsnn_json_str(ev, "decision"));
    const struct dsnn_json_value *xp = dsnn_json_get(ev, "exploit");
    if (d == DSNN_SEARCH_PERTURB && !xp)
        d = DSNN_SEARCH_CONTINUE; /* ignored */
    if (!rn_trial_note_reported(t, (size_t)line, d, dsnn_json_num(ev, ex->metric, NAN)))
        return dsnn_error_set(err, DSNN_ERR_NOMEM, "out of memory");
    if (xp) {
        struct trial *src = rn_trial_by_id(ex, dsnn_json_str(xp, "source"));
        free(t->perturb_cfg);
        t->perturb_cfg = strdup(dsnn_json_str(xp, "params_cfg"));
        t->perturb_source = src ? src->index : t->index;
        t->perturb_line = (size_t)line;
        t->perturb_pending = t->perturb_cfg != NULL;
    }
    if (!call || !ex->sops->on_result)
        return DSNN_OK;
    metrics_from_json(dsnn_json_get(ev, "metrics"), &m);
    int again = (int)ex->sops->on_result(ex->search, t->index, (int)epoch, &m);
    if (again == DSNN_SEARCH_PERTURB && xp && ex->sops->exploit) {
        int source;
        struct dsnn_param_set np;
        memset(&np, 0, sizeof np);
        struct dsnn_error xerr = {0};
        ex->sops->exploit(ex->search, t->index, &source, &np, &xerr);
    }
    if (again != d && !(again == DSNN_SEARCH_PERTURB && !xp) && !*warned) {
        rn_warn(ex, "search '%s' decides %s for %s epoch %d when replayed, %s before; the "
                    "journal's decision is kept",
                ex->plugin[DSNN_KIND_SEARCH]->name, rn_decision_str(again), t->id, (int)epoch,
                rn_decision_str(d));
        *warned = true;
    }
    return DSNN_OK;
}

/* trial_finished: final (with seq: the strategy was told, with call it is told again), else
 * INTERRUPTED. */
static void replay_finished(struct experiment *ex, struct trial *t, const struct dsnn_json_value *ev,
                            uint64_t seq, bool call)
{
    enum trial_status s = status_parse(dsnn_json_str(ev, "status"));
    if (!seq || !rn_status_final(s)) {
        t->status = TRIAL_INTERRUPTED;
        return;
    }
    t->status = s;
    snprintf(t->error, sizeof t->error, "%s", dsnn_json_str(ev, "error"));
    if (call && ex->sops->on_complete)
        ex->sops->on_complete(ex->search, t->index, s == TRIAL_ERROR);
}

/* Rebuilds the trials from the journal, and the search strategy's state by replaying every
 * search event after restored_seq into it (suggest, on_result (+ exploit), on_complete), in the
 * order they happened. */
static enum dsnn_status replay(struct experiment *ex, const struct dsnn_journal_log *log,
                               uint64_t restored_seq, struct dsnn_error *err)
{
    bool warned = false;
    for (size_t i = 0; i < log->n; i++) {
        const struct dsnn_json_value *ev = &log->events[i];
        const char *type = dsnn_json_str(ev, "event");
        int64_t seq64, attempt;
        if (ev_int(ex, ev, "seq", 0, (int64_t)1 << 53, 0, &seq64, err) != DSNN_OK)
            return dsnn_error_prefix(err, "event %zu", i + 1);
        const uint64_t seq = (uint64_t)seq64;
        if (seq > ex->journal.seq)
            ex->journal.seq = seq;
        bool call = seq > restored_seq;
        if (strcmp(type, "trial_created") == 0) {
            if (replay_created(ex, ev, call, &warned, err) != DSNN_OK)
                return dsnn_error_prefix(err, "%s: event %zu (trial_created)", ex->journal.path,
                                         i + 1);
            continue;
        }
        struct trial *t = rn_trial_by_id(ex, dsnn_json_str(ev, "trial_id"));
        if (!t)
            continue;
        if (strcmp(type, "trial_started") == 0) {
            if (ev_int(ex, ev, "attempt", 0, 1000000, t->attempts + 1, &attempt, err) != DSNN_OK)
                return dsnn_error_prefix(err, "event %zu", i + 1);
            t->attempts = (int)attempt;
        } else if (strcmp(type, "trial_result") == 0) {
            if (replay_result(ex, t, ev, call, &warned, err) != DSNN_OK)
                return dsnn_error_prefix(err, "event %zu (trial_result)", i + 1);
        } else if (strcmp(type, "trial_perturbed") == 0) {
            if (rn_trial_set_params(ex, t, dsnn_json_str(ev, "params_cfg"), err) != DSNN_OK)
                return dsnn_error_prefix(err, "%s: event %zu (trial_perturbed)",
                                         ex->journal.path, i + 1);
            t->perturb_pending = false;
        } else if (strcmp(type, "trial_failed") == 0) {
            t->failures++;
        } else if (strcmp(type, "trial_finished") == 0) {
            replay_finished(ex, t, ev, seq, call);
        }
    }
    return DSNN_OK;
}

enum dsnn_status rn_results_paths(struct experiment *ex, const char *results_dir,
                                     char *cfg_path, size_t size, struct dsnn_error *err)
{
    size_t len = strlen(results_dir);
    while (len > 1 && results_dir[len - 1] == '/')
        len--;
    if (len >= sizeof ex->dir - 32)
        return dsnn_error_set(err, DSNN_ERR_IO, "%s: path too long", results_dir);
    snprintf(ex->dir, sizeof ex->dir, "%.*s", (int)len, results_dir);
    snprintf(cfg_path, size, "%s/experiment.cfg", ex->dir);
    snprintf(ex->journal.path, sizeof ex->journal.path, "%s/journal.jsonl", ex->dir);
    struct stat sb;
    if (stat(ex->dir, &sb) != 0 || !S_ISDIR(sb.st_mode) || stat(cfg_path, &sb) != 0)
        return dsnn_error_set(err, DSNN_ERR_IO,
                              "%s is not a dsnn results directory (it needs experiment.cfg and "
                              "journal.jsonl, as 'dsnn-host run' writes them)",
                              ex->dir);
    ex->cfg_path = cfg_path;
    return DSNN_OK;
}

/* Reads the journal; a last line cut short is dropped (with a warning) and cut off the file. */
static enum dsnn_status resume_journal(struct experiment *ex, struct dsnn_journal_log *log,
                                       struct dsnn_error *err)
{
    struct stat sb;
    if (stat(ex->journal.path, &sb) != 0 && errno == ENOENT) { /* killed before its first event */
        memset(log, 0, sizeof *log);
        return DSNN_OK;
    }
    enum dsnn_status st = dsnn_journal_load(ex->journal.path, log, err);
    if (st != DSNN_OK || !log->dropped_tail)
        return st;
    if (log->nul_tail)
        rn_warn(ex, "%s: it ends in %zu NUL bytes (left by a power loss while it was written); "
                    "they and the line they cut are dropped",
                ex->journal.path, log->nul_tail);
    else
        rn_warn(ex, "%s: its last line was cut short (the host was killed while writing it); it "
                    "is dropped",
                ex->journal.path);
    return dsnn_journal_repair(ex->journal.path, err);
}

/* The experiment as it started (experiment_started: the configuration must be unchanged, the
 * trials known up front, the threads per trial); *finished: its last experiment event is
 * experiment_finished. */
static enum dsnn_status resume_started(struct experiment *ex, const struct dsnn_journal_log *log,
                                       bool *finished, int *code, struct dsnn_error *err)
{
    const struct dsnn_json_value *started = NULL;
    for (size_t i = 0; i < log->n; i++) {
        const char *type = dsnn_json_str(&log->events[i], "event");
        if (!started && strcmp(type, "experiment_started") == 0)
            started = &log->events[i];
        *finished = strcmp(type, "experiment_finished") == 0 ? true
                    : strncmp(type, "experiment_", 11) == 0  ? false
                                                             : *finished;
    }
    if (!started)
        return dsnn_error_set(err, DSNN_ERR_FORMAT, "%s: no experiment_started event",
                              ex->journal.path);
    char hash[32];
    snprintf(hash, sizeof hash, "%016llx", (unsigned long long)ex->cfg_hash);
    const char *was = dsnn_json_str(started, "config_hash");
    if (*was && strcmp(was, hash) != 0) {
        *code = DSNN_EXIT_CONFIG;
        return dsnn_error_set(err, DSNN_ERR_CONFIG,
                              "%s was changed since the experiment started (hash %s, was %s); a "
                              "resume needs the configuration as run",
                              ex->cfg_path, hash, was);
    }
    int64_t trials, threads;
    enum dsnn_status st = ev_int(ex, started, "trials", 0, JOURNAL_MAX_TRIALS, 0, &trials, err);
    if (st == DSNN_OK)
        st = ev_int(ex, started, "trial_threads", 0, 4096, 0, &threads, err);
    if (st != DSNN_OK) {
        *code = DSNN_EXIT_IO;
        return st;
    }
    ex->n_known = (size_t)trials;
    ex->trial_threads = threads > 0 ? (int)threads : rn_trial_threads(ex, ex->n_known);
    return DSNN_OK;
}

/* The search strategy: restored from search_state.bin (*restored: the search events it
 * reflects), else a fresh instance that the journal is replayed into from the start. */
static enum dsnn_status resume_search(struct experiment *ex, uint64_t *restored,
                                      struct dsnn_error *err)
{
    enum dsnn_status st = rn_search_create(ex, &ex->search, err);
    if (st != DSNN_OK)
        return st;
    ex->search_saves = ex->sops->save && ex->sops->restore;
    *restored = 0;
    if (!ex->search_saves)
        return DSNN_OK;
    struct dsnn_error rerr = {0};
    char path[1200];
    struct stat sb;
    snprintf(path, sizeof path, "%s/" SEARCH_STATE_FILE, ex->dir);
    if (stat(path, &sb) != 0 || rn_search_restore(ex, restored, &rerr) == DSNN_OK)
        return DSNN_OK;
    rn_warn(ex, "%s; replaying the journal instead", rerr.msg);
    ex->sops->destroy(ex->search);
    ex->search = NULL;
    *restored = 0;
    return rn_search_create(ex, &ex->search, err);
}

enum dsnn_status rn_trials_from_journal(struct experiment *ex, struct dsnn_error *err)
{
    struct dsnn_journal_log log = {0};
    enum dsnn_status st = dsnn_journal_load(ex->journal.path, &log, err);
    if (st == DSNN_OK)
        st = replay(ex, &log, UINT64_MAX, err); /* every event as seen: no search call */
    dsnn_journal_log_free(&log);
    return st;
}

/* Every trial had finished: the summary, and the exit code of the run. */
static int resume_nothing_left(struct experiment *ex, struct dsnn_error *err)
{
    if (!ex->quiet)
        printf("%s: the experiment has finished; nothing to resume\n", ex->dir);
    rn_print_summary(ex);
    size_t n_failed = 0;
    for (size_t i = 0; i < ex->n_trials; i++)
        n_failed += ex->trials[i]->status == TRIAL_ERROR;
    if (n_failed)
        dsnn_error_set(err, DSNN_ERR_INTERNAL, "%zu of %zu trial(s) ended in ERROR", n_failed,
                       ex->n_trials);
    return n_failed ? DSNN_EXIT_TRIALS_FAILED : DSNN_EXIT_OK;
}

/* An unfinished trial t is queued again, or finished now if it had completed before the host
 * died (its last result said STOP / PAUSE, or it had run all its epochs). */
static void resume_requeue(struct experiment *ex, struct trial *t)
{
    if (rn_status_final(t->status))
        return;
    /* results the search strategy never saw (the host died first) are run again */
    if (t->n_lines > t->n_reported) {
        struct dsnn_error ferr = {0};
        if (dsnn_trial_files_resume(&t->tf, t->dir, t->n_reported, &ferr) != DSNN_OK)
            rn_io_failed(ex, &ferr);
        rn_trial_scan_results(ex, t);
    }
    int last = t->n_reported ? t->decisions[t->n_reported - 1] : -1;
    bool complete = t->n_lines == t->n_reported && t->n_reported > 0 && !t->perturb_pending;
    if (complete && (last == DSNN_SEARCH_STOP || last == DSNN_SEARCH_PAUSE ||
                     (last == DSNN_SEARCH_CONTINUE && t->epochs_done >= ex->epochs))) {
        rn_trial_finish(ex, t,
                        last == DSNN_SEARCH_PAUSE ? TRIAL_PAUSED
                        : last == DSNN_SEARCH_STOP && t->epochs_done < ex->epochs
                            ? TRIAL_STOPPED
                            : TRIAL_TERMINATED);
        return;
    }
    t->status = TRIAL_PENDING;
    t->queued = true;
}

int dsnn_resume_experiment(struct dsnn_registry *reg, const char *results_dir,
                           const struct dsnn_run_options *opt, struct dsnn_error *err)
{
    struct experiment ex = {.quiet = opt && opt->quiet, .lock_fd = -1, .resumed = true};
    struct dsnn_journal_log log = {0};
    char cfg_path[1100];
    int code = DSNN_EXIT_IO;
    bool finished = false;
    uint64_t restored = 0;
    enum dsnn_status st = rn_results_paths(&ex, results_dir, cfg_path, sizeof cfg_path, err);
    if (st == DSNN_OK && (st = rn_setup(&ex, reg, &code, err)) == DSNN_OK)
        rn_mpi_prepare(&ex);
    if (st != DSNN_OK)
        goto out;
    code = DSNN_EXIT_IO;
    if ((st = rn_lock_dir(&ex, err)) != DSNN_OK || (st = resume_journal(&ex, &log, err)) != DSNN_OK)
        goto out;
    if (log.n == 0) { /* stopped (disk full, kill -9) before its first event: start it now */
        code = DSNN_EXIT_CONFIG;
        if ((st = rn_validate_upfront(&ex, err)) == DSNN_OK)
            code = rn_start(&ex, err);
        st = DSNN_OK;
        goto out;
    }
    if ((st = resume_started(&ex, &log, &finished, &code, err)) != DSNN_OK)
        goto out;
    code = DSNN_EXIT_CONFIG;
    if ((st = resume_search(&ex, &restored, err)) != DSNN_OK)
        goto out;
    code = DSNN_EXIT_IO;
    if ((st = replay(&ex, &log, restored, err)) != DSNN_OK)
        goto out;
    dsnn_progress_init(&ex.progress, ex.quiet, -1, ex.metric);
    size_t unfinished = 0;
    for (size_t i = 0; i < ex.n_trials; i++) {
        struct trial *t = ex.trials[i];
        rn_trial_scan_results(&ex, t);
        unfinished += !rn_status_final(t->status);
    }
    if (finished && unfinished == 0) {
        code = resume_nothing_left(&ex, err);
        goto out;
    }
    dsnn_journal_addf(&ex.journal,
                      "\"event\": \"experiment_resumed\", \"dsnn_version\": \"%s\", "
                      "\"unfinished_trials\": %zu, \"search_state\": \"%s\"",
                      DSNN_VERSION_STRING, unfinished, restored ? "restored" : "replayed");
    rn_print_banner(&ex, "resuming experiment");
    for (size_t i = 0; i < ex.n_trials; i++)
        resume_requeue(&ex, ex.trials[i]);
    code = rn_run_and_finish(&ex, err);
out:
    dsnn_journal_log_free(&log);
    rn_experiment_release(&ex);
    if (st != DSNN_OK && code == DSNN_EXIT_OK)
        code = DSNN_EXIT_IO;
    return code;
}
