/* host/runner_probe.c - before any trial of `run` starts: the dataset of the first trial is
 * opened once, in a child process, so that a missing, unreadable or corrupt data file stops the
 * run at once with exit code 5 naming the file, instead of ending every trial in ERROR. */
#include "runner_impl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* In the child: opens and closes the dataset of tcf; writes status and message to fd. */
static void probe_child(const struct experiment *ex, const struct trial *t, int fd)
{
    FILE *null_log = fopen("/dev/null", "we");
    struct dsnn_run_ctx ctx = {
        .seed = t->seed,
        .trial_index = t->index,
        .epochs = (int)ex->epochs,
        .n_threads = 1,
        .trial_dir = NULL,
        .log = null_log,
    };
    const struct dsnn_registry_entry *d = t->plugin[DSNN_KIND_DATASET];
    struct dsnn_error err = {0};
    void *state = NULL;
    struct dsnn_dataset_info info;
    memset(&info, 0, sizeof info);
    enum dsnn_status st = d->ops.dataset.open(
        dsnn_cfg_group(dsnn_config_file_root(t->tcf), "dataset"), &ctx, &state, &info, &err);
    if (st == DSNN_OK)
        d->ops.dataset.close(state);
    else
        dsnn_error_prefix(&err, "dataset '%s'", d->name);
    int s = (int)st;
    bool ok = rn_write_full(fd, &s, sizeof s) && rn_write_full(fd, err.msg, sizeof err.msg);
    _exit(ok ? 0 : 1);
}

/* Runs probe_child and reads its answer: DSNN_OK also when the child could not answer (it
 * crashed: the trials will say so), else the dataset's status with its message in err. */
static enum dsnn_status probe_fork(const struct experiment *ex, const struct trial *t,
                                   struct dsnn_error *err)
{
    int p[2];
    if (pipe(p) != 0)
        return DSNN_OK; /* cannot check: the trials will */
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        close(p[0]);
        close(p[1]);
        return DSNN_OK;
    }
    if (pid == 0) {
        close(p[0]);
        probe_child(ex, t, p[1]);
    }
    close(p[1]);
    int s = DSNN_OK;
    static struct dsnn_error e; /* large */
    memset(&e, 0, sizeof e);
    bool got = rn_read_full(p[0], &s, sizeof s) == 1 && rn_read_full(p[0], e.msg, sizeof e.msg) == 1;
    close(p[0]);
    int wst = 0;
    while (waitpid(pid, &wst, 0) < 0 && errno == EINTR) {
    }
    if (!got || s == DSNN_OK)
        return DSNN_OK;
    e.msg[sizeof e.msg - 1] = '\0';
    return dsnn_error_set(err, (enum dsnn_status)s, "%s", e.msg);
}

enum dsnn_status rn_probe_data(struct experiment *ex, int *code, struct dsnn_error *err)
{
    void *scratch = NULL;
    if (rn_search_create(ex, &scratch, err) != DSNN_OK)
        return DSNN_OK; /* rn_validate_upfront made one: not expected; the run will say */
    struct trial *t = calloc(1, sizeof *t);
    bool have_trial = false;
    enum dsnn_status st = DSNN_OK;
    bool done = false;
    struct dsnn_error e = {0};
    if (t && ex->sops->suggest(scratch, 0, &t->params, &done, &e) == DSNN_OK && !done) {
        t->index = 0;
        snprintf(t->id, sizeof t->id, "trial_%05d", 0);
        t->seed = dsnn_seed_mix((uint64_t)ex->seed, 0);
        rn_format_params(&t->params, t->params_text, sizeof t->params_text);
        int cfg_code = 0;
        have_trial = true;
        if (rn_trial_config(ex, t, &cfg_code, &e) == DSNN_OK)
            st = probe_fork(ex, t, err);
        rn_trial_config_drop(t);
    }
    free(t);
    ex->sops->destroy(scratch);
    switch (st) {
    case DSNN_OK:
        return DSNN_OK;
    case DSNN_ERR_IO:
    case DSNN_ERR_FORMAT:
    case DSNN_ERR_NOT_FOUND:
        *code = DSNN_EXIT_IO;
        break;
    case DSNN_ERR_CONFIG:
    case DSNN_ERR_INVALID:
        *code = DSNN_EXIT_CONFIG;
        break;
    default:
        return DSNN_OK; /* out of memory and the like: not the data's fault; the trials go on */
    }
    dsnn_error_prefix(err, "%s (data checked before any trial starts)",
                      have_trial ? "trial_00000" : "experiment");
    return st;
}
