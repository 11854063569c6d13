/* tests/plugins/crash.c - test-only model "crash": trains like "okmodel", but at the start of
 * epoch crash_epoch (0-based; -1: never) of trial crash_trial (-1: every trial) it fails in the
 * way crash_mode says:
 *   "segv"  - writes through a NULL pointer (the process dies of SIGSEGV, also under ASan/UBSan:
 *             the default SIGSEGV action is restored and this function is not instrumented)
 *   "abort" - calls abort() (SIGABRT)
 *   "exit"  - calls _exit(crash_exit_code) without a word (a plugin that exits the process)
 *   "error" - returns DSNN_ERR_INTERNAL with a message (a clean, reported failure)
 *   "hang"  - sleeps forever (for timeout / interrupt tests)
 *   "pause" - waits until crash_once_file is removed (at most 120 s), then trains on (for tests
 *             that change something while a run is under way)
 * With crash_once_file = "PATH" it fails only while PATH does not exist, and creates PATH as it
 * fails: the first attempt crashes, a retried or resumed one goes on (max_failures / resume
 * tests).
 * Used by the runner's crash-isolation tests: one trial crashes, the experiment goes on. */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tiny_model.h"

enum crash_mode { CRASH_SEGV = 0, CRASH_ABORT, CRASH_EXIT, CRASH_ERROR, CRASH_HANG, CRASH_PAUSE };
static const char *const crash_modes[] = {"segv", "abort", "exit", "error", "hang", "pause", NULL};

struct crash_cfg {
    int64_t epoch, trial, exit_code;
    int mode;
    bool on_noise;
    char once_file[1024]; /* "" : always */
};

static const struct dsnn_key_spec crash_keys[] = {
    {.name = "crash_epoch", .type = DSNN_KEY_INT, .def = 0, .doc = "epoch (0-based) at whose start to crash; -1: never"},
    {.name = "crash_trial", .type = DSNN_KEY_INT, .def = -1, .doc = "trial index that crashes; -1: every trial"},
    {.name = "crash_mode", .type = DSNN_KEY_STRING, .default_value = "segv", .doc = "\"segv\", \"abort\", \"exit\", \"error\", \"hang\" or \"pause\""},
    {.name = "crash_exit_code", .type = DSNN_KEY_INT, .def = 3, .doc = "exit status for crash_mode = \"exit\""},
    {.name = "crash_once_file", .type = DSNN_KEY_STRING, .def_str = "",
     .doc = "crash only if this file does not exist, creating it (\"\": every time)"},
    {.name = "crash_on_noise", .type = DSNN_KEY_BOOL, .def = false,
     .doc = "crash (crash_mode) when evaluating the noise split instead"},
    TINY_MODEL_KEYS,
};

static enum dsnn_status crash_create(const struct dsnn_cfg *cfg, const struct dsnn_run_ctx *ctx,
                                     struct dsnn_net *net, const struct dsnn_dataset_info *info,
                                     void **state, struct dsnn_error *err)
{
    struct crash_cfg c;
    const char *once = "";
    enum dsnn_status st;
    if ((st = dsnn_cfg_int(cfg, "crash_epoch", 0, &c.epoch, err)) ||
        (st = dsnn_cfg_int(cfg, "crash_trial", -1, &c.trial, err)) ||
        (st = dsnn_cfg_int(cfg, "crash_exit_code", 3, &c.exit_code, err)) ||
        (st = dsnn_cfg_check_range(cfg, "crash_exit_code", (double)c.exit_code, 0, 255, err)) ||
        (st = dsnn_cfg_enum(cfg, "crash_mode", "segv", crash_modes, &c.mode, err)) ||
        (st = dsnn_cfg_string(cfg, "crash_once_file", "", &once, err)) ||
        (st = dsnn_cfg_bool(cfg, "crash_on_noise", false, &c.on_noise, err)))
        return st;
    if (strlen(once) >= sizeof c.once_file)
        return dsnn_error_set(err, DSNN_ERR_CONFIG, "crash: crash_once_file too long");
    strcpy(c.once_file, once);
    struct crash_cfg *copy = malloc(sizeof(*copy));
    if (!copy)
        return dsnn_error_set(err, DSNN_ERR_NOMEM, "crash: out of memory");
    *copy = c;
    if ((st = tiny_model_create(cfg, ctx, net, info, state, err)) != DSNN_OK) {
        free(copy);
        return st;
    }
    ((struct tiny_model *)*state)->extra = copy;
    return DSNN_OK;
}

#if defined(__GNUC__)
__attribute__((noinline, no_sanitize("address", "undefined")))
#endif
static void crash_segv(void)
{
    signal(SIGSEGV, SIG_DFL); /* no sanitizer report: die of the signal itself */
    volatile int *volatile p = NULL;
    *p = 42;
    raise(SIGSEGV); /* not reached */
}

/* Fails as c->mode says; DSNN_OK when it goes on (pause). */
static enum dsnn_status crash_now(const struct crash_cfg *c, int epoch, int trial,
                                  struct dsnn_error *err)
{
    switch ((enum crash_mode)c->mode) {
    case CRASH_SEGV:
        crash_segv();
        break;
    case CRASH_ABORT:
        abort();
    case CRASH_EXIT:
        _exit((int)c->exit_code);
    case CRASH_ERROR:
        return dsnn_error_set(err, DSNN_ERR_INTERNAL,
                              "crash: deliberate failure at epoch %d of trial %d", epoch, trial);
    case CRASH_HANG:
        for (;;) {
            struct timespec ts = {3600, 0};
            nanosleep(&ts, NULL);
        }
    case CRASH_PAUSE:
        for (int i = 0; i < 12000 && c->once_file[0] && access(c->once_file, F_OK) == 0; i++) {
            struct timespec ts = {0, 10000000L};
            nanosleep(&ts, NULL);
        }
        break;
    }
    return DSNN_OK;
}

static enum dsnn_status crash_train_epoch(void *state, struct dsnn_data *data, int epoch,
                                          struct dsnn_metrics *m, struct dsnn_error *err)
{
    struct tiny_model *t = state;
    const struct crash_cfg *c = t->extra;
    if (!c->on_noise && c->epoch >= 0 && epoch == c->epoch &&
        (c->trial < 0 || c->trial == t->trial_index)) {
        if (c->once_file[0]) {
            int fd = open(c->once_file, O_WRONLY | O_CREAT | O_EXCL, 0644);
            if (fd < 0) /* exists: crashed before */
                return tiny_model_train_epoch(state, data, epoch, m, err);
            close(fd);
        }
        enum dsnn_status st = crash_now(c, epoch, t->trial_index, err);
        if (st != DSNN_OK)
            return st;
    }
    return tiny_model_train_epoch(state, data, epoch, m, err);
}

static enum dsnn_status crash_evaluate(void *state, struct dsnn_data *data, enum dsnn_split split,
                                       struct dsnn_metrics *m, struct dsnn_error *err)
{
    struct tiny_model *t = state;
    const struct crash_cfg *c = t->extra;
    if (c->on_noise && split == DSNN_SPLIT_NOISE) {
        enum dsnn_status st = crash_now(c, -1, t->trial_index, err);
        if (st != DSNN_OK)
            return st;
    }
    return tiny_model_evaluate(state, data, split, m, err);
}

static const struct dsnn_model_ops crash_ops = {
    .create = crash_create,
    .train_epoch = crash_train_epoch,
    .evaluate = crash_evaluate,
    .save = tiny_model_save,
    .load = tiny_model_load,
    .destroy = tiny_model_destroy,
};

static const struct dsnn_component components[] = {
    DSNN_COMPONENT(DSNN_KIND_MODEL, "crash", "1.0.0",
                   "test-only: crashes (segv/abort/exit/error/hang) at crash_epoch", crash_ops,
                   crash_keys),
};
DSNN_PLUGIN_DEFINE("crash", components)
