/* runner_child.c - the trial process: it builds dataset, network and model, trains epoch by
 * epoch, reports each epoch to the host over a pipe and writes checkpoints; and the pipe
 * protocol between the host and it (write_full / read_full / send_msg). */
#include "runner_impl.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#include <sys/wait.h>
#endif

bool rn_write_full(int fd, const void *p, size_t n)
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
int rn_read_full(int fd, void *p, size_t n)
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

bool rn_send_msg(int fd, uint32_t type, const void *payload, uint32_t size)
{
    struct msg_header h = {type, size};
    return rn_write_full(fd, &h, sizeof h) && (!size || rn_write_full(fd, payload, size));
}

double rn_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ---- trial child ---- */


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

enum dsnn_status rn_child_build(struct child_run *r, const struct dsnn_config_file *tcf,
                                const struct dsnn_registry_entry *const plugin[5],
                                struct dsnn_run_ctx *ctx, struct dsnn_error *err)
{
    const struct dsnn_cfg *root = dsnn_config_file_root(tcf);
    const struct dsnn_network_ops *nops = &plugin[DSNN_KIND_NETWORK]->ops.network;
    r->data.ops = &plugin[DSNN_KIND_DATASET]->ops.dataset;
    r->mops = &plugin[DSNN_KIND_MODEL]->ops.model;
    r->model_name = plugin[DSNN_KIND_MODEL]->name;
    enum dsnn_status st = r->data.ops->open(dsnn_cfg_group(root, "dataset"), ctx, &r->data.state,
                                            &r->data.info, err);
    if (st != DSNN_OK) {
        r->data.state = NULL; /* not closed */
        dsnn_error_prefix(err, "dataset '%s'", plugin[DSNN_KIND_DATASET]->name);
        return st;
    }
    st = nops->build(dsnn_cfg_group(root, "network"), ctx, r->data.info.shape,
                     r->data.info.n_classes, &r->net, err);
    if (st != DSNN_OK) {
        dsnn_error_prefix(err, "network '%s'", plugin[DSNN_KIND_NETWORK]->name);
        return st;
    }
    st = r->mops->create(dsnn_cfg_group(root, "model"), ctx, r->net, &r->data.info, &r->model,
                         err);
    if (st == DSNN_OK && !dsnn_net_initialized(r->net))
        st = dsnn_error_set(err, DSNN_ERR_INTERNAL, "create() did not initialise the network");
    if (st != DSNN_OK)
        dsnn_error_prefix(err, "model '%s'", r->model_name);
    return st;
}

enum dsnn_status rn_child_load_model(struct child_run *r, const struct child_start *cs,
                                     struct dsnn_error *err)
{
    enum dsnn_status st;
    FILE *f = cs->hdr.payload_size
                  ? fmemopen((void *)cs->payload, (size_t)cs->hdr.payload_size, "rb")
                  : NULL;
    if (!f || !r->mops->load) {
        st = dsnn_error_set(err, DSNN_ERR_INTERNAL, "%s: cannot read the payload", cs->ckpt_path);
    } else {
        st = r->mops->load(r->model, f, err);
        fclose(f);
    }
    if (st != DSNN_OK)
        dsnn_error_prefix(err, "%s: model '%s' cannot load this checkpoint", cs->ckpt_path,
                          r->model_name);
    return st;
}

/* Loads the checkpoint cs into the model; *start gets the epoch to continue with. A model
 * that cannot load it is *fatal (a retry would fail the same way). */
static enum dsnn_status child_load(struct child_run *r, const struct child_start *cs, int *start,
                                   bool *fatal, struct dsnn_error *err)
{
    enum dsnn_status st = rn_child_load_model(r, cs, err);
    if (st != DSNN_OK) {
        *fatal = true;
        return st;
    }
    *start = (int)cs->hdr.epochs;
    r->time_before = cs->hdr.time_total_s;
    fprintf(r->log, "%s: continuing from %s after epoch %d\n", r->t->id, cs->ckpt_path, *start);
    return DSNN_OK;
}

/* The checkpoint after an epoch, when the host's decision or checkpoint_freq asks for one;
 * a failure is a warning (the host prints it), not an error of the trial. */
static void child_checkpoint(struct child_run *r, int epoch, uint8_t decision)
{
    bool due = decision == CHILD_PAUSE || decision == CHILD_PERTURB || decision == CHILD_HALT ||
               (decision == CHILD_CONTINUE && r->checkpoints &&
                (epoch + 1) % r->ex->checkpoint_freq == 0);
    if (!r->checkpoints || !due)
        return;
    struct dsnn_error cerr = {0};
    if (write_checkpoint(r->ex, r->t, r->mops, r->model, r->model_name, epoch + 1, r->lines,
                         r->time_before + (rn_now_s() - r->t_start), &cerr) == DSNN_OK) {
        struct ckpt_msg cm = {(uint64_t)epoch + 1, r->lines};
        rn_send_msg(r->wfd, MSG_CHECKPOINT, &cm, (uint32_t)sizeof cm);
    } else {
        fprintf(r->log, "warning: %s\n", cerr.msg);
        rn_send_msg(r->wfd, MSG_WARNING, &cerr, (uint32_t)sizeof cerr);
    }
}

static enum dsnn_status epoch_error(const struct child_run *r, int epoch, struct dsnn_error *err)
{
    return dsnn_error_prefix(err, "model '%s': epoch %d", r->model_name, epoch);
}

/* The test split again after the epoch's round: val_loss / val_acc as *_after_rewire in m. */
static enum dsnn_status evaluate_after_rewire(struct child_run *r, struct dsnn_metrics *m,
                                              struct dsnn_error *err)
{
    static struct dsnn_metrics after; /* large: keep it off the stack */
    dsnn_metrics_clear(&after);
    enum dsnn_status st = r->mops->evaluate(r->model, &r->data, DSNN_SPLIT_TEST, &after, err);
    double v;
    if (st == DSNN_OK && dsnn_metrics_get(&after, "val_acc", &v))
        dsnn_metrics_set(m, "val_acc_after_rewire", v);
    if (st == DSNN_OK && dsnn_metrics_get(&after, "val_loss", &v))
        dsnn_metrics_set(m, "val_loss_after_rewire", v);
    return st;
}

/* One epoch: train, evaluate, the model's end of epoch (its round; with
 * experiment.rewire_before_eval before the evaluation), report to the host, get its decision
 * (*go_on: CONTINUE), checkpoint. */
static enum dsnn_status child_epoch(struct child_run *r, int epoch, bool *go_on,
                                    struct dsnn_error *err)
{
    static struct dsnn_metrics m; /* large: keep it off the stack */
    dsnn_metrics_clear(&m);
    dsnn_metrics_set(&m, "epoch", epoch);
    dsnn_metrics_set(&m, "training_iteration", epoch + 1);
    double t0 = rn_now_s();
    enum dsnn_status st = r->mops->train_epoch(r->model, &r->data, epoch, &m, err);
    if (st != DSNN_OK)
        return epoch_error(r, epoch, err);
    double t1 = rn_now_s();
    bool rewired = false;
    if (r->mops->end_epoch && r->ex->rewire_before_eval &&
        (st = r->mops->end_epoch(r->model, &r->data, epoch, &m, &rewired, err)) != DSNN_OK)
        return epoch_error(r, epoch, err);
    if ((st = r->mops->evaluate(r->model, &r->data, DSNN_SPLIT_TEST, &m, err)) != DSNN_OK)
        return st;
    if (r->data.info.n_noise > 0 &&
        (st = r->mops->evaluate(r->model, &r->data, DSNN_SPLIT_NOISE, &m, err)) != DSNN_OK)
        return st;
    if (r->mops->end_epoch && !r->ex->rewire_before_eval) {
        if ((st = r->mops->end_epoch(r->model, &r->data, epoch, &m, &rewired, err)) != DSNN_OK)
            return epoch_error(r, epoch, err);
        if (rewired && (st = evaluate_after_rewire(r, &m, err)) != DSNN_OK)
            return st;
    }
    double t2 = rn_now_s();
    dsnn_metrics_set(&m, "time_train_s", t1 - t0);
    dsnn_metrics_set(&m, "time_this_epoch_s", t2 - t0);
    dsnn_metrics_set(&m, "time_total_s", r->time_before + (t2 - r->t_start));
    dsnn_metrics_set(&m, "timestamp", (double)time(NULL));
    uint8_t decision = CHILD_CONTINUE;
    if (!rn_send_msg(r->wfd, MSG_RESULT, &m, (uint32_t)sizeof m) ||
        rn_read_full(r->rfd, &decision, 1) != 1)
        return dsnn_error_set(err, DSNN_ERR_IO, "lost the connection to the host");
    r->lines++;
    child_checkpoint(r, epoch, decision);
    *go_on = decision == CHILD_CONTINUE;
    return DSNN_OK;
}

void rn_child_ctx(const struct experiment *ex, const struct trial *t, FILE *log,
                  struct dsnn_run_ctx *ctx)
{
    *ctx = (struct dsnn_run_ctx){
        .seed = t->seed,
        .trial_index = t->index,
        .epochs = (int)ex->epochs,
        .n_threads = ex->trial_threads,
        .trial_dir = t->dir,
        .log = log,
    };
    dsnn_set_num_threads(ctx->n_threads);
    ctx->n_threads = dsnn_get_num_threads();
}

void rn_child_release(struct child_run *r)
{
    if (r->model)
        r->mops->destroy(r->model);
    dsnn_net_free(r->net);
    if (r->data.state)
        r->data.ops->close(r->data.state);
    r->model = NULL;
    r->net = NULL;
    r->data.state = NULL;
}

static enum dsnn_status trial_body(struct experiment *ex, const struct trial *t,
                                   const struct child_start *cs, int wfd, int rfd, FILE *log,
                                   bool *fatal, struct dsnn_error *err)
{
    struct dsnn_run_ctx ctx;
    rn_child_ctx(ex, t, log, &ctx);
    struct child_run r = {
        .ex = ex,
        .t = t,
        .wfd = wfd,
        .rfd = rfd,
        .log = log,
        .lines = t->n_lines,
    };
    enum dsnn_status st = rn_child_build(&r, t->tcf, t->plugin, &ctx, err);
    r.checkpoints = ex->checkpoint_freq > 0 && r.mops->save && r.mops->load;
    int start = 0;
    if (st == DSNN_OK && cs->have_ckpt)
        st = child_load(&r, cs, &start, fatal, err);
    if (st == DSNN_OK) {
        fprintf(log, "%s: attempt %d, %zu trainable parameters, %d threads\n", t->id,
                t->attempts, dsnn_net_param_count(r.net), ctx.n_threads);
        r.t_start = rn_now_s();
        bool go_on = true;
        for (int epoch = start; epoch < ex->epochs && go_on && st == DSNN_OK; epoch++)
            st = child_epoch(&r, epoch, &go_on, err);
    }
    rn_child_release(&r);
    return st;
}

FILE *rn_child_log(const char *dir, const char *name)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *log = fopen(path, "ae"); /* close-on-exec */
    if (!log)
        return stderr;
    setvbuf(log, NULL, _IOLBF, 0); /* a process that crashes keeps the lines it wrote */
    return log;
}

/* What every process forked for a trial does first: default signal actions, death with the
 * host, none of the host's other descriptors. */
static void child_enter(struct experiment *ex, const struct trial *t)
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
}

static void run_child(struct experiment *ex, const struct trial *t, const struct child_start *cs,
                      int wfd, int rfd, void *arg)
{
    (void)arg;
    FILE *log = rn_child_log(t->dir, "log.txt");
    struct dsnn_error err = {0};
    bool fatal = false;
    enum dsnn_status st = trial_body(ex, t, cs, wfd, rfd, log, &fatal, &err);
    rn_child_exit(wfd, log, st, &err, fatal);
}

void rn_child_exit(int wfd, FILE *log, enum dsnn_status st, struct dsnn_error *err, bool fatal)
{
    if (st != DSNN_OK) {
        if (!err->msg[0])
            dsnn_error_set(err, st, "%s", dsnn_status_str(st));
        err->status = st;
        fprintf(log, "error: %s\n", err->msg);
        rn_send_msg(wfd, fatal ? MSG_FATAL : MSG_ERROR, err, (uint32_t)sizeof *err);
    } else {
        rn_send_msg(wfd, MSG_DONE, NULL, 0);
    }
    if (log != stderr)
        fclose(log);
    fflush(NULL);
    _exit(st == DSNN_OK ? 0 : 1);
}

bool rn_spawn_child(struct experiment *ex, struct trial *t, const struct child_start *cs)
{
    return rn_spawn_process(ex, t, cs, run_child, NULL);
}

bool rn_spawn_process(struct experiment *ex, struct trial *t, const struct child_start *cs,
                      rn_child_body body, void *arg)
{
    int to_host[2], to_child[2];
    if (pipe(to_host) != 0) {
        snprintf(t->error, sizeof t->error, "cannot create a pipe: %s", strerror(errno));
        return false;
    }
    if (pipe(to_child) != 0) {
        snprintf(t->error, sizeof t->error, "cannot create a pipe: %s", strerror(errno));
        close(to_host[0]), close(to_host[1]);
        return false;
    }
    int slot = -1;
    for (int i = 0; i < MAX_PARALLEL && slot < 0; i++)
        if (rn_pids[i] == 0)
            slot = i;
    fflush(NULL);
    /* SIGINT / SIGTERM stay blocked until rn_pids names the child, so that the host's handler
     * forwards them to it (the child unblocks them once their default action is back). */
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
        return false;
    }
    if (pid == 0) {
        close(to_host[0]);
        close(to_child[1]);
        child_enter(ex, t);
        body(ex, t, cs, to_host[1], to_child[0], arg);
        _exit(1); /* not reached: body exits */
    }
    if (slot >= 0)
        rn_pids[slot] = (sig_atomic_t)pid;
    if (rn_interrupted) /* signalled just before fork(): stop it too */
        kill(pid, SIGTERM);
    sigprocmask(SIG_SETMASK, &old_mask, NULL);
    close(to_host[1]);
    close(to_child[0]);
    t->pid = pid;
    t->rfd = to_host[0];
    t->wfd = to_child[1];
    return true;
}

int rn_reap_process(pid_t pid)
{
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    for (int i = 0; i < MAX_PARALLEL; i++)
        if (rn_pids[i] == (sig_atomic_t)pid)
            rn_pids[i] = 0;
    return status;
}
