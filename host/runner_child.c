/* runner_child.c - the trial process: it builds dataset, network and model, trains epoch by
 * epoch, reports each epoch to the host over a pipe and writes checkpoints; and the pipe
 * protocol between the host and it (write_full / read_full / send_msg). */
#include "runner_impl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
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

static bool send_msg(int fd, uint32_t type, const void *payload, uint32_t size)
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
    double t_start = rn_now_s();
    for (int epoch = start; epoch < ex->epochs; epoch++) {
        static struct dsnn_metrics m; /* large: keep it off the stack */
        dsnn_metrics_clear(&m);
        dsnn_metrics_set(&m, "epoch", epoch);
        dsnn_metrics_set(&m, "training_iteration", epoch + 1);
        double t0 = rn_now_s();
        if ((st = mops->train_epoch(model, &data, epoch, &m, err)) != DSNN_OK) {
            dsnn_error_prefix(err, "model '%s': epoch %d", model_name, epoch);
            goto out;
        }
        double t1 = rn_now_s();
        if ((st = mops->evaluate(model, &data, DSNN_SPLIT_TEST, &m, err)) != DSNN_OK)
            goto out;
        if (data.info.n_noise > 0 &&
            (st = mops->evaluate(model, &data, DSNN_SPLIT_NOISE, &m, err)) != DSNN_OK)
            goto out;
        double t2 = rn_now_s();
        dsnn_metrics_set(&m, "time_train_s", t1 - t0);
        dsnn_metrics_set(&m, "time_this_epoch_s", t2 - t0);
        dsnn_metrics_set(&m, "time_total_s", time_before + (t2 - t_start));
        dsnn_metrics_set(&m, "timestamp", (double)time(NULL));
        if (!send_msg(wfd, MSG_RESULT, &m, (uint32_t)sizeof m)) {
            st = dsnn_error_set(err, DSNN_ERR_IO, "lost the connection to the host");
            goto out;
        }
        uint8_t decision = CHILD_CONTINUE;
        if (rn_read_full(rfd, &decision, 1) != 1) {
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
                                 time_before + (rn_now_s() - t_start), &cerr) == DSNN_OK) {
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

void rn_run_child(struct experiment *ex, const struct dsnn_config_file *tcf,
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
