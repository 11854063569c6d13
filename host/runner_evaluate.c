/* runner_evaluate.c - dsnn-host evaluate (see evaluate.h): a trial rebuilt from its results
 * directory as resume rebuilds it, its checkpoint evaluated on the noise split at several noise
 * levels in a child process, the table and noise_eval.json. */
#include "runner_impl.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "evaluate.h"
#include "json.h"

/* nupic's noise_tests.py: noise_levels = [0, 0.025, 0.05, ..., 0.20] */
static const double nupic_levels[] = {0, 0.025, 0.05, 0.075, 0.1, 0.125, 0.15, 0.175, 0.2};

enum dsnn_status dsnn_eval_parse_levels(const char *text, double *levels, size_t cap, size_t *n,
                                        struct dsnn_error *err)
{
    *n = 0;
    const char *p = text;
    for (;;) {
        char *end = NULL;
        errno = 0;
        double v = strtod(p, &end);
        size_t len = strcspn(p, ",");
        if (end == p || (size_t)(end - p) != len || errno || !isfinite(v) || v < 0 || v > 1)
            return dsnn_error_set(err, DSNN_ERR_INVALID,
                                  "--noise-levels '%s': item %zu '%.*s' is not a number in "
                                  "[0, 1]",
                                  text, *n + 1, (int)len, p);
        if (*n == cap)
            return dsnn_error_set(err, DSNN_ERR_INVALID,
                                  "--noise-levels '%s': more than %zu levels", text, cap);
        if (*n > 0 && !(v > levels[*n - 1]))
            return dsnn_error_set(err, DSNN_ERR_INVALID,
                                  "--noise-levels '%s': %g after %g: the levels must be "
                                  "increasing (--repeats evaluates a level again)",
                                  text, v, levels[*n - 1]);
        levels[(*n)++] = v;
        if (*end == '\0')
            return DSNN_OK;
        p = end + 1;
    }
}

enum dsnn_status dsnn_eval_parse_repeats(const char *text, int *out, struct dsnn_error *err)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (end == text || *end || errno || v < 1 || v > DSNN_EVAL_MAX_REPEATS)
        return dsnn_error_set(err, DSNN_ERR_INVALID,
                              "--repeats '%s': expected an integer in [1, %d]", text,
                              DSNN_EVAL_MAX_REPEATS);
    *out = (int)v;
    return DSNN_OK;
}

/* What the evaluation process is given (it sees the host's memory as it was at fork). */
struct eval_job {
    const double *levels;
    size_t n_levels;
    int repeats;
    uint64_t noise_seed;          /* S: repeat r uses eval_seed(S, r) */
    struct dsnn_config_file *ncf; /* the trial's configuration with test_noise = true */
    const char *dataset;          /* plugin name */
};

/* One evaluation: MSG_RESULT payload. */
struct eval_value {
    uint32_t level, repeat;
    double acc, loss;
};

static uint64_t eval_seed(uint64_t base, int repeat)
{
    return repeat == 0 ? base : dsnn_seed_mix(base, (uint64_t)repeat);
}

/* results_dir and trial id of trial_dir (".../trial_NNNNN", a directory). */
static enum dsnn_status trial_locate(const char *trial_dir, char *results, size_t size,
                                     char *id, size_t id_size, struct dsnn_error *err)
{
    size_t len = strlen(trial_dir);
    while (len > 1 && trial_dir[len - 1] == '/')
        len--;
    const char *base = trial_dir + len;
    while (base > trial_dir && base[-1] != '/')
        base--;
    size_t blen = (size_t)(trial_dir + len - base);
    struct stat sb;
    bool named = blen == 11 && strncmp(base, "trial_", 6) == 0 &&
                 strspn(base + 6, "0123456789") >= 5;
    if (!named || stat(trial_dir, &sb) != 0 || !S_ISDIR(sb.st_mode) || len >= size)
        return dsnn_error_set(err, DSNN_ERR_IO,
                              "%s is not a trial folder (expected a directory "
                              "results/<experiment>/trial_NNNNN, as 'dsnn-host run' writes it)",
                              trial_dir);
    snprintf(id, id_size, "%.*s", (int)blen, base);
    if (base == trial_dir)
        snprintf(results, size, ".");
    else
        snprintf(results, size, "%.*s", (int)(base - trial_dir - 1 > 0 ? base - trial_dir - 1 : 1),
                 trial_dir);
    return DSNN_OK;
}

/* The experiment of trial_dir set up (experiment.cfg validated), its trials from the journal,
 * *out the trial of trial_dir with its configuration built. */
static enum dsnn_status eval_setup(struct experiment *ex, const struct dsnn_registry *reg,
                                   const char *trial_dir, char *cfg_path, size_t size,
                                   struct trial **out, int *code, struct dsnn_error *err)
{
    char results[1024], id[32];
    *code = DSNN_EXIT_IO;
    enum dsnn_status st = trial_locate(trial_dir, results, sizeof results, id, sizeof id, err);
    if (st == DSNN_OK && (st = rn_results_paths(ex, results, cfg_path, size, err)) != DSNN_OK)
        dsnn_error_prefix(err, "%s is not a trial folder", trial_dir);
    if (st != DSNN_OK || (st = rn_setup(ex, reg, code, err)) != DSNN_OK)
        return st;
    *code = DSNN_EXIT_IO;
    if ((st = rn_trials_from_journal(ex, err)) != DSNN_OK)
        return st;
    *out = rn_trial_by_id(ex, id);
    if (!*out)
        return dsnn_error_set(err, DSNN_ERR_NOT_FOUND,
                              "%s: %s has no trial_created event for %s: not a trial of this "
                              "experiment",
                              trial_dir, ex->journal.path, id);
    ex->trial_threads = rn_trial_threads(ex, 1);
    return rn_trial_config(ex, *out, code, err);
}

/* The trial's configuration with the noise split on (dataset.test_noise = true, noise_level
 * and noise_seed set: the evaluation process changes their values), validated; job->noise_seed
 * the trial's noise seed. A dataset without the noise keys is DSNN_ERR_CONFIG. */
static enum dsnn_status eval_noise_config(const struct experiment *ex, const struct trial *t,
                                          struct eval_job *job, int *code, struct dsnn_error *err)
{
    const struct dsnn_registry_entry *d = t->plugin[DSNN_KIND_DATASET];
    job->dataset = d->name;
    *code = DSNN_EXIT_CONFIG;
    if (!dsnn_keys_find(d->component->keys, d->component->n_keys, "test_noise"))
        return dsnn_error_set(err, DSNN_ERR_CONFIG,
                              "%s: dataset plugin '%s' has no noise split (no key test_noise; "
                              "see 'dsnn-host info %s'): nothing to evaluate",
                              t->dir, d->name, d->name);
    const struct dsnn_cfg *g = dsnn_cfg_group(dsnn_config_file_root(t->tcf), "dataset");
    int64_t seed = 0;
    enum dsnn_status st = dsnn_cfg_int(g, "noise_seed", 0, &seed, err);
    if (st != DSNN_OK)
        return st;
    job->noise_seed = dsnn_cfg_has(g, "noise_seed") ? (uint64_t)seed : t->seed;
    struct dsnn_param_set ps = t->params;
    struct dsnn_value on = {.type = DSNN_VALUE_BOOL, .u.b = true};
    struct dsnn_value level = {.type = DSNN_VALUE_FLOAT, .u.f = job->levels[0]};
    struct dsnn_value s = {.type = DSNN_VALUE_INT, .u.i = (int64_t)job->noise_seed};
    const struct dsnn_registry_entry *plugin[5] = {0};
    if ((st = dsnn_param_set_put(&ps, "dataset.test_noise", &on, err)) ||
        (st = dsnn_param_set_put(&ps, "dataset.noise_level", &level, err)) ||
        (st = dsnn_param_set_put(&ps, "dataset.noise_seed", &s, err)))
        return st;
    return rn_config_build(ex, &ps, t->id, t->params_text, &job->ncf, plugin, code, err);
}

/* The checkpoint to evaluate (opt's or <trial>/checkpoint.bin), checked as trial_checkpoint
 * checks it, into cs (*payload owned by the caller). */
static enum dsnn_status eval_checkpoint(const struct trial *t, const char *path,
                                        struct child_start *cs, unsigned char **payload,
                                        int *code, struct dsnn_error *err)
{
    const struct dsnn_registry_entry *m = t->plugin[DSNN_KIND_MODEL];
    *code = DSNN_EXIT_CONFIG;
    if (!m->ops.model.load)
        return dsnn_error_set(err, DSNN_ERR_CONFIG,
                              "model '%s' has no load op: it cannot be evaluated from a "
                              "checkpoint",
                              m->name);
    if (path)
        snprintf(cs->ckpt_path, sizeof cs->ckpt_path, "%s", path);
    else
        snprintf(cs->ckpt_path, sizeof cs->ckpt_path, "%s/" DSNN_CHECKPOINT_FILE, t->dir);
    enum dsnn_status st = rn_checkpoint_open(t, cs->ckpt_path, &cs->hdr, payload, err);
    if (st == DSNN_ERR_NOT_FOUND)
        dsnn_error_prefix(err, "no checkpoint to evaluate (the trial wrote none: "
                               "experiment.checkpoint_freq = 0, or no epoch ended)");
    if (st != DSNN_OK) {
        *code = st == DSNN_ERR_CONFIG ? DSNN_EXIT_CONFIG : DSNN_EXIT_IO;
        return st;
    }
    cs->have_ckpt = true;
    cs->payload = *payload;
    return DSNN_OK;
}

/* ---- the evaluation process ---- */

/* The model of r on the noise split at level `level`, repeat `repeat`: a dataset opened for it
 * (job->ncf with that level and seed), evaluated, closed. */
static enum dsnn_status eval_one(struct child_run *r, const struct eval_job *job, size_t level,
                                 int repeat, struct dsnn_run_ctx *ctx, struct eval_value *v,
                                 struct dsnn_error *err)
{
    static struct dsnn_metrics m; /* large: keep it off the stack */
    struct dsnn_value lv = {.type = DSNN_VALUE_FLOAT, .u.f = job->levels[level]};
    struct dsnn_value sv = {.type = DSNN_VALUE_INT,
                            .u.i = (int64_t)eval_seed(job->noise_seed, repeat)};
    enum dsnn_status st;
    if ((st = dsnn_config_file_set(job->ncf, "dataset.noise_level", &lv, err)) ||
        (st = dsnn_config_file_set(job->ncf, "dataset.noise_seed", &sv, err)))
        return st;
    struct dsnn_data d = {.ops = r->data.ops};
    const struct dsnn_cfg *g = dsnn_cfg_group(dsnn_config_file_root(job->ncf), "dataset");
    if ((st = d.ops->open(g, ctx, &d.state, &d.info, err)) != DSNN_OK)
        return dsnn_error_prefix(err, "dataset '%s' (noise level %g)", job->dataset, lv.u.f);
    dsnn_metrics_clear(&m);
    if (d.info.n_noise <= 0)
        st = dsnn_error_set(err, DSNN_ERR_CONFIG, "dataset '%s': no noise split (n_noise = 0)",
                            job->dataset);
    else if ((st = r->mops->evaluate(r->model, &d, DSNN_SPLIT_NOISE, &m, err)) != DSNN_OK)
        dsnn_error_prefix(err, "model '%s': evaluate (noise level %g)", r->model_name, lv.u.f);
    else if (!dsnn_metrics_get(&m, "noise_acc", &v->acc) ||
             !dsnn_metrics_get(&m, "noise_loss", &v->loss))
        st = dsnn_error_set(err, DSNN_ERR_INTERNAL,
                            "model '%s': evaluate of the noise split reported no noise_acc / "
                            "noise_loss",
                            r->model_name);
    d.ops->close(d.state);
    v->level = (uint32_t)level;
    v->repeat = (uint32_t)repeat;
    return st;
}

static enum dsnn_status eval_body(struct experiment *ex, const struct trial *t,
                                  const struct child_start *cs, const struct eval_job *job,
                                  int wfd, FILE *log, struct dsnn_error *err)
{
    struct dsnn_run_ctx ctx;
    rn_child_ctx(ex, t, log, &ctx);
    struct child_run r = {.ex = ex, .t = t, .wfd = wfd, .rfd = -1, .log = log};
    enum dsnn_status st = rn_child_build(&r, t->tcf, t->plugin, &ctx, err);
    if (st == DSNN_OK)
        st = rn_child_load_model(&r, cs, err);
    if (st == DSNN_OK)
        fprintf(log, "%s: evaluating %s (after epoch %llu) on the noise split: %zu level(s) x %d "
                     "repeat(s)\n",
                t->id, cs->ckpt_path, (unsigned long long)cs->hdr.epochs, job->n_levels,
                job->repeats);
    for (size_t i = 0; i < job->n_levels && st == DSNN_OK; i++)
        for (int k = 0; k < job->repeats && st == DSNN_OK; k++) {
            struct eval_value v;
            st = eval_one(&r, job, i, k, &ctx, &v, err);
            if (st == DSNN_OK && !rn_send_msg(wfd, MSG_RESULT, &v, (uint32_t)sizeof v))
                st = dsnn_error_set(err, DSNN_ERR_IO, "lost the connection to the host");
        }
    rn_child_release(&r);
    return st;
}

static void eval_child(struct experiment *ex, const struct trial *t, const struct child_start *cs,
                       int wfd, int rfd, void *arg)
{
    (void)rfd;
    FILE *log = rn_child_log(t->dir, DSNN_EVAL_LOG);
    struct dsnn_error err = {0};
    enum dsnn_status st = eval_body(ex, t, cs, arg, wfd, log, &err);
    rn_child_exit(wfd, log, st, &err, false);
}

/* ---- the host side ---- */

/* The messages of the evaluation process into acc / loss ([level * repeats + repeat]); then
 * it is reaped. An error it reported, or its death, is returned (*code). */
static enum dsnn_status eval_collect(struct trial *t, const struct eval_job *job, double *acc,
                                     double *loss, int *code, struct dsnn_error *err)
{
    bool done = false, child_error = false;
    size_t got = 0, total = job->n_levels * (size_t)job->repeats;
    struct msg_header h;
    while (!done && rn_read_full(t->rfd, &h, sizeof h) == 1) {
        struct eval_value v;
        if (h.type == MSG_RESULT && h.size == sizeof v && rn_read_full(t->rfd, &v, sizeof v) == 1 &&
            v.level < job->n_levels && v.repeat < (uint32_t)job->repeats) {
            acc[v.level * (size_t)job->repeats + v.repeat] = v.acc;
            loss[v.level * (size_t)job->repeats + v.repeat] = v.loss;
            got++;
        } else if (h.type == MSG_ERROR && h.size == sizeof *err &&
                   rn_read_full(t->rfd, err, sizeof *err) == 1) {
            err->msg[sizeof err->msg - 1] = '\0';
            child_error = true;
            break;
        } else {
            done = h.type == MSG_DONE && h.size == 0 && got == total;
            if (!done)
                break; /* protocol error */
        }
    }
    close(t->rfd);
    close(t->wfd);
    int status = 0;
    while (waitpid(t->pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (done && WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return DSNN_OK;
    enum dsnn_status st = child_error ? err->status : DSNN_ERR_INTERNAL;
    *code = st == DSNN_ERR_IO || st == DSNN_ERR_FORMAT || st == DSNN_ERR_NOT_FOUND
                ? DSNN_EXIT_IO
                : DSNN_EXIT_TRIALS_FAILED;
    if (child_error)
        return dsnn_error_prefix(err, "%s: evaluation failed (see %s/%s)", t->id, t->dir,
                                 DSNN_EVAL_LOG);
    if (WIFSIGNALED(status))
        return dsnn_error_set(err, DSNN_ERR_INTERNAL,
                              "%s: the evaluation process was killed by signal %d, %s, after %zu "
                              "of %zu evaluations; see %s/%s",
                              t->id, WTERMSIG(status), rn_signal_name(WTERMSIG(status)), got,
                              total, t->dir, DSNN_EVAL_LOG);
    return dsnn_error_set(err, DSNN_ERR_INTERNAL,
                          "%s: the evaluation process exited with status %d after %zu of %zu "
                          "evaluations; see %s/%s",
                          t->id, WIFEXITED(status) ? WEXITSTATUS(status) : -1, got, total, t->dir,
                          DSNN_EVAL_LOG);
}

/* Mean and sample standard deviation (0 for one value) of x[0..n). */
static void mean_std(const double *x, int n, double *mean, double *std)
{
    double s = 0, q = 0;
    for (int i = 0; i < n; i++)
        s += x[i];
    *mean = s / n;
    for (int i = 0; i < n; i++)
        q += (x[i] - *mean) * (x[i] - *mean);
    *std = n > 1 ? sqrt(q / (n - 1)) : 0;
}

/* "name": [x0, x1, ...] with the digits of result.json */
static void json_array(struct dsnn_sbuf *b, const char *name, const double *x, int n)
{
    dsnn_sbuf_printf(b, "\"%s\": [", name);
    for (int i = 0; i < n; i++) {
        dsnn_sbuf_puts(b, i ? ", " : "");
        dsnn_sbuf_json_number_digits(b, x[i], 8);
    }
    dsnn_sbuf_puts(b, "]");
}

static void json_level(struct dsnn_sbuf *b, double level, const double *acc, const double *loss,
                       int n)
{
    double am, as, lm, ls;
    mean_std(acc, n, &am, &as);
    mean_std(loss, n, &lm, &ls);
    dsnn_sbuf_puts(b, "    {\"noise_level\": ");
    dsnn_sbuf_json_number_digits(b, level, 15);
    dsnn_sbuf_puts(b, ", \"acc_mean\": ");
    dsnn_sbuf_json_number_digits(b, am, 8);
    dsnn_sbuf_puts(b, ", \"acc_std\": ");
    dsnn_sbuf_json_number_digits(b, as, 8);
    dsnn_sbuf_puts(b, ", \"loss_mean\": ");
    dsnn_sbuf_json_number_digits(b, lm, 8);
    dsnn_sbuf_puts(b, ", \"loss_std\": ");
    dsnn_sbuf_json_number_digits(b, ls, 8);
    dsnn_sbuf_puts(b, ", ");
    json_array(b, "acc", acc, n);
    dsnn_sbuf_puts(b, ", ");
    json_array(b, "loss", loss, n);
    dsnn_sbuf_puts(b, "}");
}

/* <trial>/noise_eval.json, atomically. */
static enum dsnn_status eval_write(const struct experiment *ex, const struct trial *t,
                                   const struct eval_job *job, const struct child_start *cs,
                                   const double *acc, const double *loss, struct dsnn_error *err)
{
    struct dsnn_sbuf b = {0};
    char ts[32];
    dsnn_sbuf_puts(&b, "{\"trial_id\": ");
    dsnn_sbuf_json_string(&b, t->id);
    dsnn_sbuf_puts(&b, ", \"experiment\": ");
    dsnn_sbuf_json_string(&b, ex->name);
    dsnn_sbuf_puts(&b, ", \"checkpoint\": ");
    dsnn_sbuf_json_string(&b, cs->ckpt_path);
    dsnn_sbuf_printf(&b, ", \"checkpoint_epochs\": %llu, \"model\": ",
                     (unsigned long long)cs->hdr.epochs);
    dsnn_sbuf_json_string(&b, t->plugin[DSNN_KIND_MODEL]->name);
    dsnn_sbuf_puts(&b, ", \"dataset\": ");
    dsnn_sbuf_json_string(&b, job->dataset);
    dsnn_sbuf_printf(&b, ", \"split\": \"noise\", \"repeats\": %d, \"noise_seeds\": [",
                     job->repeats);
    for (int k = 0; k < job->repeats; k++)
        dsnn_sbuf_printf(&b, "%s%llu", k ? ", " : "",
                         (unsigned long long)eval_seed(job->noise_seed, k));
    dsnn_sbuf_printf(&b, "], \"time\": \"%s\", \"dsnn_version\": \"%s\",\n  \"levels\": [\n",
                     dsnn_iso_time(ts, sizeof ts), DSNN_VERSION_STRING);
    for (size_t i = 0; i < job->n_levels; i++) {
        size_t at = i * (size_t)job->repeats;
        json_level(&b, job->levels[i], acc + at, loss + at, job->repeats);
        dsnn_sbuf_puts(&b, i + 1 < job->n_levels ? ",\n" : "\n");
    }
    dsnn_sbuf_puts(&b, "  ]}\n");
    char path[1200];
    snprintf(path, sizeof path, "%s/" DSNN_EVAL_FILE, t->dir);
    enum dsnn_status st = b.oom ? dsnn_error_set(err, DSNN_ERR_NOMEM, "out of memory")
                                : dsnn_write_file_atomic(path, b.p, b.len, err);
    dsnn_sbuf_free(&b);
    return st;
}

static void eval_print(const struct trial *t, const struct eval_job *job,
                       const struct child_start *cs, const double *acc, const double *loss)
{
    printf("%s: %s (after epoch %llu), noise split of dataset '%s', %d repeat(s)\n", t->id,
           cs->ckpt_path, (unsigned long long)cs->hdr.epochs, job->dataset, job->repeats);
    printf("%11s %10s %10s %10s %10s\n", "noise_level", "acc_mean", "acc_std", "loss_mean",
           "loss_std");
    for (size_t i = 0; i < job->n_levels; i++) {
        double am, as, lm, ls;
        size_t at = i * (size_t)job->repeats;
        mean_std(acc + at, job->repeats, &am, &as);
        mean_std(loss + at, job->repeats, &lm, &ls);
        printf("%11g %10.6f %10.6f %10.6g %10.6g\n", job->levels[i], am, as, lm, ls);
    }
    printf("written: %s/" DSNN_EVAL_FILE "\n", t->dir);
}

/* Forks the evaluation process of t, collects its values, prints and writes them. */
static int eval_run(struct experiment *ex, struct trial *t, struct eval_job *job,
                    const struct child_start *cs, bool quiet, struct dsnn_error *err)
{
    size_t total = job->n_levels * (size_t)job->repeats;
    double *acc = calloc(total, sizeof *acc), *loss = calloc(total, sizeof *loss);
    int code = DSNN_EXIT_OK;
    if (!acc || !loss) {
        dsnn_error_set(err, DSNN_ERR_NOMEM, "out of memory");
        code = DSNN_EXIT_IO;
    } else if (!rn_spawn_process(ex, t, cs, eval_child, job)) {
        dsnn_error_set(err, DSNN_ERR_IO, "%s: %s", t->id, t->error);
        code = DSNN_EXIT_IO;
    } else if (eval_collect(t, job, acc, loss, &code, err) == DSNN_OK) {
        code = DSNN_EXIT_OK;
        if (eval_write(ex, t, job, cs, acc, loss, err) != DSNN_OK)
            code = DSNN_EXIT_IO;
        else if (!quiet)
            eval_print(t, job, cs, acc, loss);
    }
    free(acc);
    free(loss);
    return code;
}

int dsnn_evaluate_trial(struct dsnn_registry *reg, const char *trial_dir,
                        const struct dsnn_eval_options *opt, struct dsnn_error *err)
{
    struct experiment ex = {.quiet = true, .lock_fd = -1, .resumed = true};
    struct eval_job job = {
        .levels = opt && opt->levels ? opt->levels : nupic_levels,
        .n_levels = opt && opt->levels ? opt->n_levels : DSNN_COUNT_OF(nupic_levels),
        .repeats = opt && opt->repeats > 0 ? opt->repeats : 1,
    };
    char cfg_path[1100];
    struct trial *t = NULL;
    struct child_start cs = {0};
    unsigned char *payload = NULL;
    int code = DSNN_EXIT_IO;
    if (eval_setup(&ex, reg, trial_dir, cfg_path, sizeof cfg_path, &t, &code, err) == DSNN_OK &&
        eval_noise_config(&ex, t, &job, &code, err) == DSNN_OK &&
        eval_checkpoint(t, opt ? opt->checkpoint : NULL, &cs, &payload, &code, err) == DSNN_OK)
        code = eval_run(&ex, t, &job, &cs, opt && opt->quiet, err);
    else if (code == DSNN_EXIT_OK)
        code = DSNN_EXIT_CONFIG;
    free(payload);
    dsnn_config_file_free(job.ncf);
    rn_experiment_release(&ex);
    return code;
}
