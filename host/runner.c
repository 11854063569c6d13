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
#include "runner_impl.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

volatile sig_atomic_t rn_interrupted;
volatile sig_atomic_t rn_pids[MAX_PARALLEL]; /* running trial processes, 0 = free slot */

/* SIGINT / SIGTERM: no new trial is started, and the running trial processes get the signal
 * too (as a Ctrl-C in a terminal does, to the whole process group): a `kill` of the host alone
 * must stop them promptly, not after their epoch, and not never when one hangs. */
static void on_signal(int sig)
{
    rn_interrupted = 1;
    for (int i = 0; i < MAX_PARALLEL; i++) {
        pid_t pid = (pid_t)rn_pids[i];
        if (pid > 0)
            kill(pid, sig);
    }
}

/* Sends sig to t's process, local or on its MPI rank. */
static void trial_signal(struct trial *t, int sig)
{
    if (t->mpi_slot >= 0)
        rn_mpi_kill(t, sig);
    else if (t->pid > 0)
        kill(t->pid, sig);
}

const char *rn_signal_name(int sig)
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

enum dsnn_status rn_checkpoint_open(const struct trial *t, const char *path,
                                    struct dsnn_checkpoint_header *hdr, unsigned char **payload,
                                    struct dsnn_error *err)
{
    const char *model = t->plugin[DSNN_KIND_MODEL]->name;
    enum dsnn_status st = dsnn_checkpoint_read(path, hdr, payload, err);
    if (st == DSNN_OK) {
        if (hdr->trial_index != (uint64_t)t->index || hdr->config_hash != t->cfg_hash)
            st = dsnn_error_set(err, DSNN_ERR_CONFIG,
                                "%s: written by %s for another configuration (trial %llu, "
                                "configuration hash %016llx, expected %016llx)",
                                path, hdr->trial_id, (unsigned long long)hdr->trial_index,
                                (unsigned long long)hdr->config_hash,
                                (unsigned long long)t->cfg_hash);
        else if (strcmp(hdr->model, model) != 0)
            st = dsnn_error_set(err, DSNN_ERR_CONFIG,
                                "%s: written by model '%s', the trial's model is '%s'", path,
                                hdr->model, model);
    }
    if (st != DSNN_OK && payload) {
        free(*payload);
        *payload = NULL;
    }
    return st;
}

/* The checkpoint t continues from, into cs (with checkpoints: the model can save and load):
 * none (a fresh start), or <dir>/checkpoint.bin if it is t's and not ahead of result.json;
 * *payload (owned by the caller) holds its payload. false: the checkpoint is damaged or of
 * another configuration, and t ended in ERROR. */
static bool trial_checkpoint(struct experiment *ex, struct trial *t, bool checkpoints,
                             struct child_start *cs, unsigned char **payload)
{
    struct dsnn_error err = {0};
    snprintf(cs->ckpt_path, sizeof cs->ckpt_path, "%s/" DSNN_CHECKPOINT_FILE, t->dir);
    size_t have_lines = dsnn_trial_files_count(t->dir);
    dsnn_checkpoint_remove_temps(t->dir);
    if (!checkpoints)
        return true;
    enum dsnn_status st = rn_checkpoint_open(t, cs->ckpt_path, &cs->hdr, payload, &err);
    if (st == DSNN_OK && cs->hdr.n_results > have_lines) {
        rn_warn(ex, "%s: %s is ahead of result.json (%llu results, the file has %zu); the "
                    "trial starts again from epoch 0",
                t->id, cs->ckpt_path, (unsigned long long)cs->hdr.n_results, have_lines);
        free(*payload);
        *payload = NULL;
    } else if (st == DSNN_OK) {
        cs->have_ckpt = true;
        cs->payload = *payload;
    } else if (st != DSNN_ERR_NOT_FOUND) {
        rn_trial_fail(ex, t, true, "cannot continue from its checkpoint: %.980s", err.msg);
        return false;
    }
    return true;
}

/* Starts (or continues) a queued trial in a child process. */
static void trial_start(struct experiment *ex, struct trial *t)
{
    t->queued = false;
    if (t->perturb_pending)
        rn_trial_perturb(ex, t);
    struct dsnn_error err = {0};
    int code;
    if (rn_trial_config(ex, t, &code, &err) != DSNN_OK) {
        rn_trial_fail(ex, t, true, "%s", err.msg);
        return;
    }
    const struct dsnn_model_ops *mops = &t->plugin[DSNN_KIND_MODEL]->ops.model;
    bool checkpoints = ex->checkpoint_freq > 0 && mops->save && mops->load;
    if (ex->checkpoint_freq > 0 && !checkpoints && !ex->warned_no_checkpoint) {
        rn_warn(ex, "model '%s' has no save/load: trials run without checkpoints (a resumed or "
                    "retried trial starts again from epoch 0)",
                t->plugin[DSNN_KIND_MODEL]->name);
        ex->warned_no_checkpoint = true;
    }
    struct child_start cs = {0};
    unsigned char *payload = NULL;
    if (!trial_checkpoint(ex, t, checkpoints, &cs, &payload))
        return;
    size_t from_line = cs.have_ckpt ? (size_t)cs.hdr.n_results : 0;
    int from_epoch = cs.have_ckpt ? (int)cs.hdr.epochs : 0;
    if (!cs.have_ckpt)
        dsnn_checkpoint_remove_all(t->dir);
    if (dsnn_trial_files_resume(&t->tf, t->dir, from_line, &err) != DSNN_OK) {
        free(payload);
        if (err.status == DSNN_ERR_IO)
            rn_io_failed(ex, &err);
        else
            rn_trial_fail(ex, t, false, "%s", err.msg);
        return;
    }
    rn_trial_scan_results(ex, t);
    t->n_lines = from_line;
    t->attempts++;
    char path[1200];
    snprintf(path, sizeof path, "%s/trial.cfg", t->dir);
    if (dsnn_config_file_write(t->tcf, path, &err) != DSNN_OK) {
        free(payload);
        rn_io_failed(ex, &err);
        return;
    }
    /* under MPI, the worker rank that runs it ("rank"; 0 is the host itself, locally) */
    t->rank = rn_mpi_active() ? rn_mpi_pick(ex, t) : 0;
    dsnn_journal_addf(&ex->journal,
                      "\"event\": \"trial_started\", \"trial_id\": \"%s\", \"attempt\": %d, "
                      "\"from_epoch\": %d, \"from_line\": %zu, \"checkpoint\": %s, \"rank\": %d",
                      t->id, t->attempts, from_epoch, from_line, cs.have_ckpt ? "true" : "false",
                      t->rank);
    bool started = rn_mpi_active() ? rn_mpi_spawn(ex, t, &cs) : rn_spawn_child(ex, t, &cs);
    free(payload);
    if (!started) {
        rn_trial_finish(ex, t, TRIAL_ERROR);
        return;
    }
    t->status = TRIAL_RUNNING;
    t->got_done = t->child_error = t->halted = false;
    t->last_decision = DSNN_SEARCH_CONTINUE;
    t->t_start = rn_now_s();
    t->term_sent = 0;
    ex->n_running++;
    ex->started_any = true;
}

/* The decision on result line `line` that the strategy saw before this resume / retry: the
 * same, not asked again (a PERTURB's copy was made: CONTINUE from there); a metric that differs
 * from the first time is warned about once. */
static int decision_again(struct experiment *ex, struct trial *t, size_t line, int epoch, double v)
{
    int decision = t->decisions[line];
    double before = t->reported_metric[line];
    /* the journal keeps a non-finite metric as null: after a resume, NaN stands for any */
    if (!t->warned_nondeterministic && !(isnan(before) && !isfinite(v)) &&
        memcmp(&before, &v, sizeof v) != 0) {
        rn_warn(ex, "%s: epoch %d gives %s %.17g again, %.17g before: the trial is not "
                    "deterministic, a resumed experiment may differ from an uninterrupted one",
                t->id, epoch, ex->metric, v, before);
        t->warned_nondeterministic = true;
    }
    return decision == DSNN_SEARCH_PERTURB ? DSNN_SEARCH_CONTINUE : decision;
}

/* A trial reported an epoch: record it, get the strategy's decision, answer the child. */
static void trial_result(struct experiment *ex, struct trial *t, const struct dsnn_metrics *m)
{
    struct dsnn_error err = {0};
    size_t line = t->n_lines++;
    if (dsnn_trial_files_epoch(&t->tf, t->id, m, &err) != DSNN_OK) {
        rn_io_failed(ex, &err); /* the child is stopped before it hears a decision */
        return;
    }
    double v = NAN, e;
    int epoch = dsnn_metrics_get(m, "epoch", &e) ? (int)e : t->epochs_done;
    t->epochs_done = epoch + 1;
    if (!dsnn_metrics_get(m, ex->metric, &v) && !ex->warned_metric) {
        /* a misspelt experiment.metric would make every decision of the strategy on NaN */
        static const char *const usual[] = {"val_", "train_", "test_", "noise_"};
        char names[512] = "";
        size_t at = 0, shown = 0;
        for (size_t i = 0; i < m->n; i++)
            for (size_t k = 0; k < DSNN_COUNT_OF(usual); k++)
                if (strncmp(m->items[i].name, usual[k], strlen(usual[k])) == 0 &&
                    at + strlen(m->items[i].name) + 3 < sizeof names) {
                    at += (size_t)snprintf(names + at, sizeof names - at, "%s%s",
                                           shown++ ? ", " : "", m->items[i].name);
                    break;
                }
        rn_warn(ex, "experiment.metric = \"%s\" is not among the metrics %s reports (%s%s%zu in "
                    "all); the search strategy sees NaN",
                ex->metric, t->id, names, shown ? "; " : "", m->n);
        ex->warned_metric = true;
    }
    rn_trial_note_metric(ex, t, v);
    dsnn_progress_epoch(&ex->progress, t->id, t->params_text, (long long)ex->epochs, m);
    bool perturb = false;
    int decision = line < t->n_reported ? decision_again(ex, t, line, epoch, v)
                                        : rn_search_decide(ex, t, line, epoch, m, v, &perturb);
    t->last_decision = perturb ? DSNN_SEARCH_PERTURB : decision;
    uint8_t to_child = perturb                          ? CHILD_PERTURB
                       : decision == DSNN_SEARCH_STOP  ? CHILD_STOP
                       : decision == DSNN_SEARCH_PAUSE ? CHILD_PAUSE
                                                       : CHILD_CONTINUE;
    if (ex->journal.failed) { /* the result is not in the journal: no decision, no checkpoint */
        rn_io_failed(ex, &ex->journal.error);
        return;
    }
    if (rn_interrupted && to_child == CHILD_CONTINUE) {
        to_child = CHILD_HALT;
        t->halted = true;
    }
    rn_write_full(t->wfd, &to_child, 1); /* a child that died is noticed at EOF */
}

/* The child of t has exited (its pipe reached EOF): reap it and decide what comes next. */
static void trial_reap(struct experiment *ex, struct trial *t)
{
    close(t->rfd);
    close(t->wfd);
    t->rfd = t->wfd = -1;
    int status = t->mpi_slot >= 0 ? rn_mpi_wait(t) : rn_reap_process(t->pid);
    t->pid = 0;
    ex->n_running--;
    t->seconds += rn_now_s() - t->t_start;
    bool ok = t->got_done && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (ok && t->halted) {
        rn_trial_finish(ex, t, TRIAL_INTERRUPTED);
    } else if (ok && t->perturb_pending) {
        t->status = TRIAL_PENDING;
        t->queued = true; /* trial_start copies the checkpoint and continues */
    } else if (ok) {
        enum trial_status s = TRIAL_TERMINATED;
        if (t->last_decision == DSNN_SEARCH_PAUSE)
            s = TRIAL_PAUSED;
        else if (t->last_decision == DSNN_SEARCH_STOP && t->epochs_done < ex->epochs)
            s = TRIAL_STOPPED;
        rn_trial_finish(ex, t, s);
    } else if (rn_interrupted && !t->child_error) {
        rn_trial_finish(ex, t, TRIAL_INTERRUPTED);
    } else {
        if (!t->child_error) {
            if (WIFSIGNALED(status))
                snprintf(t->error, sizeof t->error,
                         "the trial process was killed by signal %d, %s, after %d epoch(s); see "
                         "%.600s/log.txt",
                         WTERMSIG(status), rn_signal_name(WTERMSIG(status)), t->epochs_done,
                         t->dir);
            else if (!t->error[0] || !t->got_done)
                snprintf(t->error, sizeof t->error,
                         "the trial process exited with status %d after %d epoch(s)",
                         WIFEXITED(status) ? WEXITSTATUS(status) : -1, t->epochs_done);
        }
        if (!t->no_retry && !rn_interrupted && t->failures < ex->max_failures) {
            t->failures++;
            char name[64];
            snprintf(name, sizeof name, "error.%d.txt", t->failures);
            char path[1200];
            snprintf(path, sizeof path, "%s/%s", t->dir, name);
            char text[DSNN_ERROR_MSG_MAX + 2];
            int n = snprintf(text, sizeof text, "%s\n", t->error);
            struct dsnn_error err = {0};
            if (dsnn_write_file_atomic(path, text, (size_t)n, &err) != DSNN_OK)
                rn_io_failed(ex, &err);
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
            rn_say_clear(ex);
            fprintf(stderr, "%s: attempt %d failed: %s\n%s: retrying (%d of %lld) from its last "
                            "checkpoint (%s kept)\n",
                    t->id, t->attempts, t->error, t->id, t->failures,
                    (long long)ex->max_failures, name);
            t->error[0] = '\0';
            t->status = TRIAL_PENDING;
            t->queued = true;
        } else {
            rn_trial_finish(ex, t, TRIAL_ERROR);
        }
    }
}

/* Reads one message of t's child (the whole of it: the child writes it at once). */
static void trial_read(struct experiment *ex, struct trial *t)
{
    static struct dsnn_metrics m; /* large */
    struct msg_header h;
    int r = rn_read_full(t->rfd, &h, sizeof h);
    if (r <= 0) {
        trial_reap(ex, t);
        return;
    }
    if (h.type == MSG_RESULT && h.size == sizeof m) {
        if (rn_read_full(t->rfd, &m, sizeof m) != 1 || m.n > DSNN_METRICS_MAX)
            goto protocol;
        for (size_t i = 0; i < m.n; i++)
            m.items[i].name[DSNN_METRIC_NAME_MAX - 1] = '\0';
        trial_result(ex, t, &m);
    } else if ((h.type == MSG_ERROR || h.type == MSG_FATAL || h.type == MSG_WARNING) &&
               h.size == sizeof(struct dsnn_error)) {
        struct dsnn_error cerr;
        if (rn_read_full(t->rfd, &cerr, sizeof cerr) != 1)
            goto protocol;
        cerr.msg[sizeof cerr.msg - 1] = '\0';
        if (h.type == MSG_WARNING && cerr.status == DSNN_ERR_IO) { /* its checkpoint */
            dsnn_error_prefix(&cerr, "%s", t->id);
            rn_io_failed(ex, &cerr);
            return;
        }
        if (h.type == MSG_WARNING) {
            rn_warn(ex, "%s: %s", t->id, cerr.msg);
            return;
        }
        snprintf(t->error, sizeof t->error, "%s", cerr.msg);
        t->child_error = true;
        t->no_retry = t->no_retry || h.type == MSG_FATAL;
    } else if (h.type == MSG_CHECKPOINT && h.size == sizeof(struct ckpt_msg)) {
        struct ckpt_msg cm;
        if (rn_read_full(t->rfd, &cm, sizeof cm) != 1)
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
    trial_signal(t, SIGKILL);
    if (t->mpi_slot >= 0) /* its EOF comes once the worker reaped it */
        return;
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
    double now = rn_now_s();
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
                .status = rn_status_str(t->status),
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
             rn_interrupted ? "; interrupted, stopping" : ex->search_done ? "" : "; more to come");
    dsnn_progress_table(&ex->progress, rows, n, footer, force);
    free(rows);
}

/* experiment.trial_timeout_s: an attempt that runs past it gets SIGTERM, and SIGKILL 5 s later;
 * it fails with a message saying so (trial_reap keeps it: child_error). */
#define TIMEOUT_KILL_AFTER_S 5.0
static void check_timeouts(struct experiment *ex)
{
    if (!(ex->trial_timeout_s > 0))
        return;
    const double now = rn_now_s();
    for (size_t i = 0; i < ex->n_trials; i++) {
        struct trial *t = ex->trials[i];
        if (t->status != TRIAL_RUNNING || (t->pid <= 0 && t->mpi_slot < 0))
            continue;
        if (t->term_sent == 0 && now - t->t_start > ex->trial_timeout_s) {
            snprintf(t->error, sizeof t->error,
                     "the attempt ran past experiment.trial_timeout_s = %g s (after %d epoch(s)); "
                     "stopped; see %.600s/log.txt",
                     ex->trial_timeout_s, t->epochs_done, t->dir);
            t->child_error = true;
            t->term_sent = now;
            trial_signal(t, SIGTERM);
        } else if (t->term_sent > 0 && now - t->term_sent > TIMEOUT_KILL_AFTER_S) {
            t->term_sent = -1;
            trial_signal(t, SIGKILL);
        }
    }
}

/* Runs trials until none is left to run (or the host is interrupted / a fatal error). */
static void schedule(struct experiment *ex)
{
    bool mpi_signalled = false;
    for (;;) {
        if (ex->journal.failed)
            rn_io_failed(ex, &ex->journal.error);
        if (rn_interrupted && rn_mpi_active() && !mpi_signalled) {
            rn_mpi_kill_all(SIGTERM); /* as on_signal does for local trial processes */
            mpi_signalled = true;
        }
        while (!rn_interrupted && !ex->fatal && ex->n_running < ex->slots) {
            struct trial *t = rn_next_queued(ex);
            if (t) {
                trial_start(ex, t);
                continue;
            }
            if (!rn_suggest_next(ex))
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
        int r = poll(fds, n, ex->progress.table ? 1000 : ex->trial_timeout_s > 0 ? 250 : -1);
        if (r < 0 && errno != EINTR) {
            rn_warn(ex, "poll: %s", strerror(errno));
            struct timespec ts = {0, 100 * 1000 * 1000};
            nanosleep(&ts, NULL);
            continue;
        }
        for (nfds_t i = 0; r > 0 && i < n; i++)
            if (fds[i].revents & (POLLIN | POLLHUP | POLLERR | POLLNVAL))
                trial_read(ex, who[i]);
        check_timeouts(ex);
    }
    show_table(ex, true);
    dsnn_progress_end(&ex->progress);
}

/* ---- experiment setup ---- */

/* --overwrite removes everything below the results directory but the directory itself and its
 * lock file, which this host holds while it removes (nftw passes no user data). */
static const char *g_keep_root, *g_keep_lock;

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    if (strcmp(path, g_keep_root) == 0 || strcmp(path, g_keep_lock) == 0)
        return 0;
    return remove(path);
}

/* A directory that a run left before it wrote anything (it failed to write experiment.cfg):
 * nothing in it but the lock file and temporaries of experiment.cfg. */
static bool never_started(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return false;
    bool empty = true;
    for (struct dirent *e; empty && (e = readdir(d)) != NULL;)
        empty = strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 ||
                strcmp(e->d_name, ".lock") == 0 ||
                strncmp(e->d_name, "experiment.cfg.tmp.", 19) == 0;
    closedir(d);
    return empty;
}

static enum dsnn_status prepare_dir(struct experiment *ex, const char *root, bool overwrite,
                                    struct dsnn_error *err)
{
    if (snprintf(ex->dir, sizeof ex->dir, "%s/%s", root, ex->name) >= (int)sizeof ex->dir)
        return dsnn_error_set(err, DSNN_ERR_IO, "results path too long");
    struct stat st;
    if (stat(ex->dir, &st) == 0 && S_ISDIR(st.st_mode) && never_started(ex->dir))
        return rn_lock_dir(ex, err); /* it is used as if new */
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
        /* lock first: a live experiment (another dsnn-host running in it) is not deleted */
        enum dsnn_status lst = rn_lock_dir(ex, err);
        if (lst != DSNN_OK)
            return lst;
        char lock_path[1100];
        snprintf(lock_path, sizeof lock_path, "%s/.lock", ex->dir);
        g_keep_root = ex->dir;
        g_keep_lock = lock_path;
        const int rc = nftw(ex->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        g_keep_root = g_keep_lock = NULL;
        if (rc != 0)
            return dsnn_error_set(err, DSNN_ERR_IO, "%s: cannot remove: %s", ex->dir,
                                  strerror(errno));
    }
    return dsnn_mkdirs(ex->dir, err);
}

/* One dsnn-host at a time per results directory (a lock that a killed host leaves free). */
enum dsnn_status rn_lock_dir(struct experiment *ex, struct dsnn_error *err)
{
    if (ex->lock_fd >= 0) /* taken already (run --overwrite locks before it removes) */
        return DSNN_OK;
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

void rn_print_summary(const struct experiment *ex)
{
    if (ex->quiet)
        return;
    printf("\n%-12s %-11s %6s %10s %10s %8s  %s\n", "trial", "status", "epochs", "last", "best",
           "time_s", "params");
    for (size_t i = 0; i < ex->n_trials; i++) {
        const struct trial *t = ex->trials[i];
        printf("%-12s %-11s %6d %10.4f %10.4f %8.1f  %s\n", t->id, rn_status_str(t->status),
               t->epochs_done, t->last_metric, t->best_metric, t->seconds,
               t->params_text[0] ? t->params_text : "-");
    }
    printf("(last / best = %s, mode %s)  results: %s\n", ex->metric, ex->maximize ? "max" : "min",
           ex->dir);
}

void rn_print_banner(const struct experiment *ex, const char *verb)
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

int rn_start(struct experiment *ex, struct dsnn_error *err)
{
    ex->trial_threads = rn_trial_threads(ex, ex->n_known);
    enum dsnn_status st = rn_search_create(ex, &ex->search, err);
    if (st != DSNN_OK)
        return DSNN_EXIT_CONFIG;
    ex->search_saves = ex->sops->save && ex->sops->restore;
    struct dsnn_sbuf b = {0};
    dsnn_sbuf_puts(&b, "\"event\": \"experiment_started\", \"name\": ");
    dsnn_sbuf_json_string(&b, ex->name);
    dsnn_sbuf_printf(&b,
                     ", \"trials\": %zu, \"dsnn_version\": \"%s\", \"config_hash\": "
                     "\"%016llx\", \"parallel\": %lld, \"trial_threads\": %d",
                     ex->n_known, DSNN_VERSION_STRING, (unsigned long long)ex->cfg_hash,
                     (long long)ex->parallel, ex->trial_threads);
    if (!b.oom)
        dsnn_journal_add(&ex->journal, b.p);
    dsnn_sbuf_free(&b);
    dsnn_progress_init(&ex->progress, ex->quiet, -1, ex->metric);
    rn_print_banner(ex, "experiment");
    /* The first `parallel` trials are suggested (and validated) before any starts. */
    for (int64_t i = 0; i < ex->slots && !ex->journal.failed && rn_suggest_next(ex);)
        i++;
    return rn_run_and_finish(ex, err);
}

/* Runs the scheduler with the signal handlers installed; then journal, summary, exit code. */
int rn_run_and_finish(struct experiment *ex, struct dsnn_error *err)
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
    rn_print_summary(ex);
    size_t n_failed = 0;
    for (size_t i = 0; i < ex->n_trials; i++)
        n_failed += ex->trials[i]->status == TRIAL_ERROR;
    if (ex->journal.failed) /* failed while the last trials were reaped */
        rn_io_failed(ex, &ex->journal.error);
    if (ex->io_failed) {
        dsnn_error_set(err, DSNN_ERR_IO,
                       "%s; the experiment stopped there, with what it had written intact: make "
                       "room (or fix the cause), then continue it with: dsnn-host resume %s",
                       ex->io_err.msg, ex->dir);
        return DSNN_EXIT_IO;
    }
    if (rn_interrupted) {
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

void rn_experiment_release(struct experiment *ex)
{
    if (ex->search)
        ex->sops->destroy(ex->search);
    for (size_t i = 0; i < ex->n_trials; i++)
        rn_trial_free(ex->trials[i]);
    free(ex->trials);
    dsnn_config_file_free(ex->cf);
    if (ex->lock_fd >= 0)
        close(ex->lock_fd);
}

int dsnn_run_experiment(struct dsnn_registry *reg, const char *cfg_path,
                        const struct dsnn_run_options *opt, struct dsnn_error *err)
{
    struct experiment ex = {.cfg_path = cfg_path, .quiet = opt && opt->quiet, .lock_fd = -1};
    int code = DSNN_EXIT_CONFIG;
    enum dsnn_status st = rn_setup(&ex, reg, &code, err);
    if (st != DSNN_OK)
        goto out;
    rn_mpi_prepare(&ex);
    code = DSNN_EXIT_CONFIG;
    if ((st = rn_validate_upfront(&ex, err)) != DSNN_OK ||
        (st = rn_probe_data(&ex, &code, err)) != DSNN_OK)
        goto out;
    const char *root_dir = opt && opt->results_root ? opt->results_root : NULL;
    if (!root_dir &&
        (st = dsnn_cfg_string(dsnn_cfg_group(dsnn_config_file_root(ex.cf), "experiment"),
                              "results_dir", "results", &root_dir, err)) != DSNN_OK)
        goto out;
    code = DSNN_EXIT_IO;
    if ((st = prepare_dir(&ex, root_dir, opt && opt->overwrite, err)) != DSNN_OK ||
        (st = rn_lock_dir(&ex, err)) != DSNN_OK)
        goto out;
    snprintf(ex.journal.path, sizeof ex.journal.path, "%s/journal.jsonl", ex.dir);
    char path[1200];
    snprintf(path, sizeof path, "%s/experiment.cfg", ex.dir);
    if ((st = dsnn_write_file_atomic(path, ex.cfg_text, ex.cfg_len, err)) != DSNN_OK)
        goto out;
    code = rn_start(&ex, err);
    st = DSNN_OK;
out:
    rn_experiment_release(&ex);
    if (st != DSNN_OK && code == DSNN_EXIT_OK)
        code = DSNN_EXIT_CONFIG;
    return code;
}

/* ---- resume ---- */
