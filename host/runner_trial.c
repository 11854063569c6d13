/* runner_trial.c - trial bookkeeping on the host side: records (new, free, lookup), searched
 * parameters (libconfig and JSON forms, params.json), results seen, and the trial events that
 * the journal records (created, perturbed, finished). */
#include "runner_impl.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <signal.h>
#include <unistd.h>

const char *rn_status_str(enum trial_status s)
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
bool rn_status_final(enum trial_status s)
{
    return s == TRIAL_TERMINATED || s == TRIAL_STOPPED || s == TRIAL_PAUSED || s == TRIAL_ERROR;
}

const char *rn_decision_str(int d)
{
    switch (d) {
    case DSNN_SEARCH_CONTINUE: return "CONTINUE";
    case DSNN_SEARCH_STOP: return "STOP";
    case DSNN_SEARCH_PAUSE: return "PAUSE";
    case DSNN_SEARCH_PERTURB: return "PERTURB";
    }
    return "CONTINUE";
}

int rn_decision_parse(const char *s)
{
    for (int d = DSNN_SEARCH_CONTINUE; d <= DSNN_SEARCH_PERTURB; d++)
        if (strcmp(s, rn_decision_str(d)) == 0)
            return d;
    return DSNN_SEARCH_CONTINUE;
}

void rn_say_clear(struct experiment *ex)
{
    dsnn_progress_clear(&ex->progress);
    fflush(stdout);
}

void rn_warn(struct experiment *ex, const char *fmt, ...)
{
    rn_say_clear(ex);
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "warning: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
}

void rn_io_failed(struct experiment *ex, const struct dsnn_error *e)
{
    if (ex->io_failed)
        return;
    ex->io_failed = true;
    ex->io_err = *e;
    if (!ex->journal.failed) {
        ex->journal.failed = true;
        ex->journal.error = *e;
    }
    rn_interrupted = 1;
    for (int i = 0; i < MAX_PARALLEL; i++)
        if (rn_pids[i] > 0)
            kill((pid_t)rn_pids[i], SIGTERM);
    if (rn_mpi_active())
        rn_mpi_kill_all(SIGTERM);
    rn_say_clear(ex);
    fprintf(stderr, "error: %s; stopping\n", e->msg);
}

void rn_format_params(const struct dsnn_param_set *ps, char *buf, size_t size)
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

/* Appends v as format writes it (dsnn_value_to_text or dsnn_value_to_json); out of memory
 * marks b->oom. */
static void put_value(struct dsnn_sbuf *b, const struct dsnn_value *v,
                      size_t (*format)(const struct dsnn_value *, char *, size_t))
{
    size_t need = format(v, NULL, 0);
    char *text = malloc(need + 1);
    if (!text) {
        b->oom = true;
        return;
    }
    format(v, text, need + 1);
    dsnn_sbuf_puts(b, text);
    free(text);
}

/* b's text, or NULL (b freed) when an allocation failed. */
static char *take_text(struct dsnn_sbuf *b)
{
    if (b->oom) {
        dsnn_sbuf_free(b);
        return NULL;
    }
    return b->p;
}

/* params as libconfig text that reads back to the same values:
 *     p0 = { path = "model.learning_rate"; value = 0.1; };  */
char *rn_params_to_cfg(const struct dsnn_param_set *ps)
{
    struct dsnn_sbuf b = {0};
    dsnn_sbuf_puts(&b, "");
    for (size_t i = 0; i < ps->n; i++) {
        dsnn_sbuf_printf(&b, "p%zu = { path = ", i);
        dsnn_sbuf_json_string(&b, ps->items[i].path); /* a path is [A-Za-z0-9_.-]: same text */
        dsnn_sbuf_puts(&b, "; value = ");
        put_value(&b, &ps->items[i].value, dsnn_value_to_text);
        dsnn_sbuf_puts(&b, "; };\n");
    }
    return take_text(&b);
}

char *rn_params_to_json(const struct dsnn_param_set *ps)
{
    struct dsnn_sbuf b = {0};
    dsnn_sbuf_puts(&b, "{");
    for (size_t i = 0; i < ps->n; i++) {
        dsnn_sbuf_puts(&b, i ? ", " : "");
        dsnn_sbuf_json_string(&b, ps->items[i].path);
        dsnn_sbuf_puts(&b, ": ");
        put_value(&b, &ps->items[i].value, dsnn_value_to_json);
    }
    dsnn_sbuf_puts(&b, "}");
    return take_text(&b);
}

/* Frees t's parameters (their config file and texts) and the config built from them. */
static void trial_params_free(struct trial *t)
{
    rn_trial_config_drop(t);
    dsnn_config_file_free(t->pcf);
    free(t->params_cfg);
    free(t->params_json);
}

/* Sets t's parameters from their libconfig text (params_to_cfg); t owns copies of all. */
enum dsnn_status rn_trial_set_params(const struct experiment *ex, struct trial *t,
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
    char *json = st == DSNN_OK ? rn_params_to_json(&ps) : NULL;
    char *text = st == DSNN_OK ? strdup(params_cfg) : NULL;
    if (st == DSNN_OK && (!json || !text))
        st = dsnn_error_set(err, DSNN_ERR_NOMEM, "out of memory");
    if (st != DSNN_OK) {
        free(json);
        free(text);
        dsnn_config_file_free(pcf);
        return st;
    }
    trial_params_free(t); /* the old ones */
    t->pcf = pcf;
    t->params = ps;
    t->params_cfg = text;
    t->params_json = json;
    rn_format_params(&t->params, t->params_text, sizeof t->params_text);
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


struct trial *rn_trial_by_index(const struct experiment *ex, int index)
{
    return index >= 0 && (size_t)index < ex->n_trials ? ex->trials[index] : NULL;
}

struct trial *rn_trial_by_id(const struct experiment *ex, const char *id)
{
    int index;
    char tail;
    if (sscanf(id, "trial_%d%c", &index, &tail) != 1)
        return NULL;
    struct trial *t = rn_trial_by_index(ex, index);
    return t && strcmp(t->id, id) == 0 ? t : NULL;
}

/* A new trial record for index (== ex->n_trials), no parameters yet. */
struct trial *rn_trial_new(struct experiment *ex, int index, struct dsnn_error *err)
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
    t->mpi_slot = -1;
    ex->trials[ex->n_trials++] = t;
    return t;
}

void rn_trial_free(struct trial *t)
{
    if (!t)
        return;
    trial_params_free(t);
    free(t->decisions);
    free(t->reported_metric);
    free(t->perturb_cfg);
    free(t);
}

/* Records that the search strategy saw result line `line` with decision d (and metric v). */
bool rn_trial_note_reported(struct trial *t, size_t line, int d, double v)
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

void rn_trial_note_metric(const struct experiment *ex, struct trial *t, double v)
{
    if (isnan(v))
        return;
    t->last_metric = v;
    if (isnan(t->best_metric) || (ex->maximize ? v > t->best_metric : v < t->best_metric))
        t->best_metric = v;
}

/* last / best metric and epochs from the lines of result.json (resume). */
void rn_trial_scan_results(const struct experiment *ex, struct trial *t)
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
        struct dsnn_json_value o;
        if (dsnn_json_parse(line, (size_t)len, &o, NULL) == DSNN_OK) {
            rn_trial_note_metric(ex, t, dsnn_json_num(&o, ex->metric, NAN));
            t->epochs_done = (int)dsnn_json_num(&o, "epoch", t->epochs_done - 1) + 1;
            dsnn_json_free(&o);
        }
    }
    free(line);
    fclose(f);
}


/* The trial ended for good (or, INTERRUPTED, for this run): files, journal, on_complete. */
void rn_trial_finish(struct experiment *ex, struct trial *t, enum trial_status status)
{
    t->status = status;
    t->queued = false;
    struct dsnn_error err = {0};
    if (status == TRIAL_ERROR) {
        dsnn_trial_files_open(&t->tf, t->dir, &err);
        if (dsnn_trial_files_error(&t->tf, t->error, &err) != DSNN_OK)
            rn_io_failed(ex, &err);
        rn_say_clear(ex);
        fprintf(stderr, "%s: ERROR: %s\n", t->id, t->error);
    }
    struct dsnn_sbuf b = {0};
    bool final = rn_status_final(status);
    dsnn_sbuf_puts(&b, "\"event\": \"trial_finished\", ");
    if (final)
        dsnn_sbuf_printf(&b, "\"seq\": %llu, ", (unsigned long long)++ex->journal.seq);
    dsnn_sbuf_printf(&b, "\"trial_id\": \"%s\", \"status\": \"%s\", \"epochs\": %d, \"error\": ",
                     t->id, rn_status_str(status), t->epochs_done);
    dsnn_sbuf_json_string(&b, status == TRIAL_INTERRUPTED ? "interrupted" : t->error);
    if (!b.oom)
        dsnn_journal_add(&ex->journal, b.p);
    dsnn_sbuf_free(&b);
    if (final) {
        rn_trial_config_drop(t); /* never run again */
        if (ex->sops->on_complete)
            ex->sops->on_complete(ex->search, t->index, status == TRIAL_ERROR);
        rn_search_save(ex);
    }
}

void rn_trial_fail(struct experiment *ex, struct trial *t, bool no_retry, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->error, sizeof t->error, fmt, ap);
    va_end(ap);
    t->no_retry = t->no_retry || no_retry;
    rn_trial_finish(ex, t, TRIAL_ERROR);
}

/* A suggested trial: parameters owned, journal, folder, params.json. On a configuration error
 * it ends in ERROR at once (or, among the first `parallel` trials of a fresh run, stops the
 * experiment: *config_error). */
struct trial *rn_trial_create(struct experiment *ex, int index,
                              const struct dsnn_param_set *ps, bool *config_error,
                              struct dsnn_error *err)
{
    *config_error = false;
    struct trial *t = rn_trial_new(ex, index, err);
    if (!t)
        return NULL;
    char *cfg = rn_params_to_cfg(ps);
    if (!cfg) {
        dsnn_error_set(err, DSNN_ERR_NOMEM, "out of memory");
        return NULL;
    }
    enum dsnn_status st = rn_trial_set_params(ex, t, cfg, err);
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
    rn_search_save(ex);
    int code;
    struct dsnn_error cerr = {0};
    if (rn_trial_config(ex, t, &code, &cerr) != DSNN_OK) {
        if (!ex->started_any && !ex->resumed && index < ex->slots) {
            *err = cerr;
            *config_error = true;
            ex->fatal_code = code;
            return NULL;
        }
        rn_trial_fail(ex, t, true, "%s", cerr.msg);
        return t;
    }
    t->status = TRIAL_PENDING;
    t->queued = true;
    return t;
}


struct trial *rn_next_queued(const struct experiment *ex)
{
    for (size_t i = 0; i < ex->n_trials; i++)
        if (ex->trials[i]->queued)
            return ex->trials[i];
    return NULL;
}

/* PBT: continues t from the latest checkpoint of its exploit() source, with its new
 * parameters (a copy of that checkpoint becomes t's, under t's name and configuration). */
void rn_trial_perturb(struct experiment *ex, struct trial *t)
{
    struct trial *src = rn_trial_by_index(ex, t->perturb_source);
    char path[1300];
    char *old_json = strdup(t->params_json ? t->params_json : "{}");
    if (!old_json) {
        rn_warn(ex, "PBT: %s: out of memory", t->id);
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
        rn_warn(ex, "PBT: %s cannot exploit %s (%s); it keeps its own weights",
                t->id, src ? src->id : "an unknown trial", err.msg[0] ? err.msg : "no such trial");
        src = t;
        snprintf(path, sizeof path, "%s/" DSNN_CHECKPOINT_FILE, t->dir);
        st = dsnn_checkpoint_read(path, &hdr, &payload, &err);
    }
    if ((st = rn_trial_set_params(ex, t, t->perturb_cfg, &err)) != DSNN_OK) {
        rn_warn(ex, "PBT: %s: bad new parameters (%s); unchanged", t->id, err.msg);
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
            rn_warn(ex, "PBT: %s: %s", t->id, err.msg);
    } else {
        /* nothing to continue from: restart with the new parameters */
        rn_warn(ex, "PBT: %s: no checkpoint to continue from; it restarts with its new parameters",
                t->id);
        dsnn_checkpoint_remove_all(t->dir);
    }
    bool copied = payload != NULL;
    free(payload);
    if (write_params_json(t, &err) != DSNN_OK)
        rn_io_failed(ex, &err);
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
        rn_io_failed(ex, &err);
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

