/* report.c - summary tables and an HTML page with SVG plots of a results directory
 * (see report.h). */
#define _XOPEN_SOURCE 700 /* strdup */
#include "report.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dsnn/dsnn.h"
#include "json.h"

#define SEED_KEY "trial_seed"

struct rtrial {
    char *id;
    struct dsnn_json_object params;
    struct dsnn_json_object *rows; /* result.json, one per epoch */
    size_t n_rows;
    char status[32];
    double best, last, time_s; /* NAN when unknown */
    double epochs;             /* training_iteration of the last result (PBT may skip some) */
    size_t group;
    struct dsnn_json_value noise; /* noise_eval.json of dsnn-host evaluate (NULL type: none) */
};

struct dsnn_report {
    char *dir;
    char name[256];
    char metric[128];
    bool maximize;
    struct rtrial *t;
    size_t n;
    char **pkeys; /* parameters in order of first appearance (trial_seed left out) */
    size_t n_pkeys;
    char **dkeys; /* density_* metrics in order of first appearance */
    size_t n_dkeys;
    size_t n_noise; /* trials with a noise_eval.json */
};

/* ---- small helpers ---- */

/* s with & < > " escaped, for HTML text and attribute values. */
static void sb_html(struct dsnn_sbuf *b, const char *s)
{
    for (; s && *s; s++) {
        switch (*s) {
        case '&': dsnn_sbuf_printf(b, "&amp;"); break;
        case '<': dsnn_sbuf_printf(b, "&lt;"); break;
        case '>': dsnn_sbuf_printf(b, "&gt;"); break;
        case '"': dsnn_sbuf_printf(b, "&quot;"); break;
        default: dsnn_sbuf_printf(b, "%c", *s);
        }
    }
}

/* Adds s to the list (if not there yet); false when out of memory. */
static bool add_key(char ***list, size_t *n, const char *s)
{
    for (size_t i = 0; i < *n; i++)
        if (strcmp((*list)[i], s) == 0)
            return true;
    char **nl = realloc(*list, (*n + 1) * sizeof *nl);
    if (!nl)
        return false;
    *list = nl;
    if (!(nl[*n] = strdup(s)))
        return false;
    (*n)++;
    return true;
}

static bool is_blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
            return false;
    return true;
}

/* Parses every non-blank line of path as one JSON object o (a failure names path:line) and calls
 * fn(&o, path, line_number, ctx), which owns o (keeps or frees it); a missing file is
 * DSNN_ERR_NOT_FOUND. A failure stops the loop. With torn_tail, a malformed last line without
 * its '\n' (an append cut short by a crash: the journal and result.json are appended one line at
 * a time) is dropped with a note on warn, as the runner's journal reader does. */
typedef enum dsnn_status (*object_fn)(struct dsnn_json_object *o, const char *path, int line_no,
                                      void *ctx, struct dsnn_error *err);

static enum dsnn_status for_lines(const char *path, object_fn fn, void *ctx, bool torn_tail,
                                  FILE *warn, struct dsnn_error *err)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return dsnn_error_set(err, errno == ENOENT ? DSNN_ERR_NOT_FOUND : DSNN_ERR_IO,
                              "%s: cannot read: %s", path, strerror(errno));
    unsigned char *data = NULL;
    size_t size = 0;
    enum dsnn_status s = dsnn_read_file(path, &data, &size, err);
    if (s != DSNN_OK)
        return s;
    const char *p = (const char *)data, *end = p + size;
    int line_no = 0;
    while (p < end && s == DSNN_OK) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
        line_no++;
        if (!is_blank(p, len)) {
            struct dsnn_json_object o;
            s = dsnn_json_parse_object(p, len, &o, err);
            if (s == DSNN_OK)
                s = fn(&o, path, line_no, ctx, err);
            else if (s != DSNN_ERR_NOMEM)
                dsnn_error_prefix(err, "%s:%d: malformed JSON", path, line_no);
            if (s == DSNN_ERR_FORMAT && !nl && torn_tail) {
                if (warn)
                    fprintf(warn, "note: %s:%d: last line cut short (no newline): ignored\n",
                            path, line_no);
                s = DSNN_OK;
            }
        }
        p += len + (nl ? 1 : 0);
    }
    free(data);
    return s;
}

/* ---- loading ---- */

static enum dsnn_status result_line(struct dsnn_json_object *o, const char *path, int line_no,
                                    void *ctx, struct dsnn_error *err)
{
    (void)path, (void)line_no;
    struct rtrial *t = ctx;
    struct dsnn_json_object *nr = realloc(t->rows, (t->n_rows + 1) * sizeof *nr);
    if (!nr) {
        dsnn_json_object_free(o);
        return dsnn_error_set(err, DSNN_ERR_NOMEM, "out of memory");
    }
    t->rows = nr;
    t->rows[t->n_rows++] = *o;
    return DSNN_OK;
}

static enum dsnn_status params_line(struct dsnn_json_object *o, const char *path, int line_no,
                                    void *ctx, struct dsnn_error *err)
{
    struct rtrial *t = ctx;
    if (t->params.n || t->params.items) {
        dsnn_json_object_free(o);
        return dsnn_error_set(err, DSNN_ERR_FORMAT,
                              "%s:%d: malformed JSON: expected one object on one line", path,
                              line_no);
    }
    t->params = *o;
    return DSNN_OK;
}

struct journal_ctx {
    struct dsnn_report *r;
    char last_event[64]; /* of the experiment (events without trial_id) */
};

static struct rtrial *find_trial(struct dsnn_report *r, const char *id)
{
    for (size_t i = 0; i < r->n; i++)
        if (strcmp(r->t[i].id, id) == 0)
            return &r->t[i];
    return NULL;
}

static enum dsnn_status journal_line(struct dsnn_json_object *o, const char *path, int line_no,
                                     void *ctx, struct dsnn_error *err)
{
    (void)path, (void)line_no, (void)err;
    struct journal_ctx *j = ctx;
    const char *id = dsnn_json_string_at(o, "trial_id");
    const char *event = dsnn_json_string_at(o, "event");
    const char *status = dsnn_json_string_at(o, "status");
    if (!id) {
        if (event)
            snprintf(j->last_event, sizeof j->last_event, "%s", event);
    } else {
        struct rtrial *t = find_trial(j->r, id);
        if (t) {
            if (status && *status)
                snprintf(t->status, sizeof t->status, "%s", status);
            else if (event && strcmp(event, "trial_created") == 0 && !t->status[0])
                snprintf(t->status, sizeof t->status, "PENDING");
            else if (event && strcmp(event, "trial_created") != 0 &&
                     (!t->status[0] || strcmp(t->status, "PENDING") == 0))
                snprintf(t->status, sizeof t->status, "RUNNING");
            else if (event && strcmp(event, "trial_started") == 0)
                snprintf(t->status, sizeof t->status, "RUNNING");
        }
    }
    dsnn_json_object_free(o);
    return DSNN_OK;
}

static int cmp_trial(const void *a, const void *b)
{
    return strcmp(((const struct rtrial *)a)->id, ((const struct rtrial *)b)->id);
}

static double row_x(const struct dsnn_json_object *row, size_t k);

/* Best / last value of the metric, time, epochs from the rows. */
static void summarise(const struct dsnn_report *r, struct rtrial *t)
{
    t->best = t->last = t->time_s = NAN;
    double sum_epoch_time = 0;
    bool have_epoch_time = false;
    for (size_t k = 0; k < t->n_rows; k++) {
        double v;
        if (dsnn_json_number(&t->rows[k], r->metric, &v) && isfinite(v)) {
            if (isnan(t->best) || (r->maximize ? v > t->best : v < t->best))
                t->best = v;
        }
        if (dsnn_json_number(&t->rows[k], "time_this_epoch_s", &v) && isfinite(v)) {
            sum_epoch_time += v;
            have_epoch_time = true;
        }
    }
    t->epochs = 0;
    if (t->n_rows) {
        double v;
        const struct dsnn_json_object *lastrow = &t->rows[t->n_rows - 1];
        t->epochs = row_x(lastrow, t->n_rows - 1);
        if (dsnn_json_number(lastrow, r->metric, &v))
            t->last = v;
        if (dsnn_json_number(lastrow, "time_total_s", &v))
            t->time_s = v;
        else if (have_epoch_time)
            t->time_s = sum_epoch_time;
    }
}

static void read_experiment_cfg(struct dsnn_report *r, FILE *warn)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/experiment.cfg", r->dir);
    const char *base = strrchr(r->dir, '/');
    snprintf(r->name, sizeof r->name, "%s", base && base[1] ? base + 1 : r->dir);
    snprintf(r->metric, sizeof r->metric, "val_acc");
    r->maximize = true;
    struct stat st;
    if (stat(path, &st) != 0) {
        if (warn)
            fprintf(warn, "note: %s not found: metric val_acc, mode max\n", path);
        return;
    }
    struct dsnn_config_file *f = NULL;
    struct dsnn_error err = {0};
    if (dsnn_config_file_load(path, &f, &err) != DSNN_OK) {
        if (warn)
            fprintf(warn, "note: %s (metric val_acc, mode max assumed)\n", err.msg);
        return;
    }
    const struct dsnn_cfg *g = dsnn_cfg_group(dsnn_config_file_root(f), "experiment");
    const char *s = NULL;
    if (dsnn_cfg_string(g, "name", NULL, &s, &err) == DSNN_OK && s && *s)
        snprintf(r->name, sizeof r->name, "%s", s);
    if (dsnn_cfg_string(g, "metric", "val_acc", &s, &err) == DSNN_OK && s && *s)
        snprintf(r->metric, sizeof r->metric, "%s", s);
    if (dsnn_cfg_string(g, "mode", "max", &s, &err) == DSNN_OK && s)
        r->maximize = strcmp(s, "min") != 0;
    dsnn_config_file_free(f);
}

static bool is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* The trial folders of r->dir (directories with params.json or result.json), sorted. */
static enum dsnn_status list_trials(struct dsnn_report *r, struct dsnn_error *err)
{
    DIR *d = opendir(r->dir);
    if (!d)
        return dsnn_error_set(err, DSNN_ERR_IO, "%s: cannot list: %s", r->dir, strerror(errno));
    size_t cap = 0;
    struct dirent *e;
    struct stat st;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char sub[4200], p1[4300], p2[4300];
        snprintf(sub, sizeof sub, "%s/%s", r->dir, e->d_name);
        snprintf(p1, sizeof p1, "%s/params.json", sub);
        snprintf(p2, sizeof p2, "%s/result.json", sub);
        if (stat(sub, &st) != 0 || !S_ISDIR(st.st_mode) || (!is_file(p1) && !is_file(p2)))
            continue;
        if (r->n == cap) {
            cap = cap ? cap * 2 : 16;
            struct rtrial *nt = realloc(r->t, cap * sizeof *nt);
            if (!nt) {
                closedir(d);
                return dsnn_error_set(err, DSNN_ERR_NOMEM, "out of memory");
            }
            r->t = nt;
        }
        struct rtrial *t = &r->t[r->n];
        memset(t, 0, sizeof *t);
        if (!(t->id = strdup(e->d_name))) {
            closedir(d);
            return dsnn_error_set(err, DSNN_ERR_NOMEM, "out of memory");
        }
        r->n++;
    }
    closedir(d);
    if (r->n == 0)
        return dsnn_error_set(err, DSNN_ERR_NOT_FOUND,
                              "%s: no trial folders (directories with params.json or "
                              "result.json); is it a results directory results/<experiment>?",
                              r->dir);
    qsort(r->t, r->n, sizeof *r->t, cmp_trial);
    return DSNN_OK;
}

/* <trial>/noise_eval.json (dsnn-host evaluate), if there is one: an object with an array
 * "levels". */
static enum dsnn_status load_noise(struct dsnn_report *r, struct rtrial *t, struct dsnn_error *err)
{
    char path[4300];
    snprintf(path, sizeof path, "%s/%s/noise_eval.json", r->dir, t->id);
    size_t len = 0;
    unsigned char *text = NULL;
    enum dsnn_status s = dsnn_read_file_raw(path, &text, &len, err);
    if (s == DSNN_ERR_NOT_FOUND)
        return DSNN_OK;
    if (s == DSNN_OK && (s = dsnn_json_parse((const char *)text, len, &t->noise, err)) != DSNN_OK)
        dsnn_error_prefix(err, "%s", path);
    free(text);
    if (s != DSNN_OK)
        return s;
    const struct dsnn_json_value *levels = dsnn_json_get(&t->noise, "levels");
    if (!levels || levels->type != DSNN_JSON_ARRAY) {
        dsnn_json_free(&t->noise);
        memset(&t->noise, 0, sizeof t->noise);
        return dsnn_error_set(err, DSNN_ERR_FORMAT,
                              "%s: not a noise evaluation (no array \"levels\")", path);
    }
    r->n_noise++;
    return DSNN_OK;
}

/* A trial's params.json and result.json (either may be missing), the parameter and density keys
 * it adds to the report, and its summary. */
static enum dsnn_status load_trial(struct dsnn_report *r, struct rtrial *t, FILE *warn,
                                   struct dsnn_error *err)
{
    char path[4300];
    snprintf(path, sizeof path, "%s/%s/params.json", r->dir, t->id);
    enum dsnn_status s = for_lines(path, params_line, t, false, warn, err);
    if (s == DSNN_ERR_NOT_FOUND)
        s = DSNN_OK; /* no parameters */
    if (s != DSNN_OK)
        return s;
    snprintf(path, sizeof path, "%s/%s/result.json", r->dir, t->id);
    s = for_lines(path, result_line, t, true, warn, err);
    if (s == DSNN_ERR_NOT_FOUND)
        s = DSNN_OK; /* not started */
    if (s != DSNN_OK)
        return s;
    for (size_t k = 0; k < t->params.n; k++)
        if (strcmp(t->params.items[k].key, SEED_KEY) != 0 &&
            !add_key(&r->pkeys, &r->n_pkeys, t->params.items[k].key))
            return dsnn_error_set(err, DSNN_ERR_NOMEM, "out of memory");
    for (size_t k = 0; k < t->n_rows; k++)
        for (size_t m = 0; m < t->rows[k].n; m++) {
            const struct dsnn_json_value *mm = &t->rows[k].items[m];
            if (strncmp(mm->key, "density_", 8) == 0 && mm->type == DSNN_JSON_NUMBER &&
                !add_key(&r->dkeys, &r->n_dkeys, mm->key))
                return dsnn_error_set(err, DSNN_ERR_NOMEM, "out of memory");
        }
    summarise(r, t);
    return load_noise(r, t, err);
}

/* Trial statuses from journal.jsonl (unknown without it). */
static enum dsnn_status load_statuses(struct dsnn_report *r, FILE *warn, struct dsnn_error *err)
{
    char jpath[4300];
    snprintf(jpath, sizeof jpath, "%s/journal.jsonl", r->dir);
    struct journal_ctx jc = {.r = r};
    enum dsnn_status s = for_lines(jpath, journal_line, &jc, true, warn, err);
    if (s == DSNN_ERR_NOT_FOUND) {
        if (warn)
            fprintf(warn, "note: %s not found: trial status unknown\n", jpath);
        s = DSNN_OK;
    }
    if (s != DSNN_OK)
        return s;
    for (size_t i = 0; i < r->n; i++) {
        struct rtrial *t = &r->t[i];
        if (!t->status[0])
            snprintf(t->status, sizeof t->status, "-");
        else if (strcmp(t->status, "RUNNING") == 0 &&
                 strcmp(jc.last_event, "experiment_interrupted") == 0)
            snprintf(t->status, sizeof t->status, "INTERRUPTED");
    }
    return DSNN_OK;
}

enum dsnn_status dsnn_report_load(const char *dir, FILE *warn, struct dsnn_report **out,
                                  struct dsnn_error *err)
{
    *out = NULL;
    struct stat st;
    if (stat(dir, &st) != 0)
        return dsnn_error_set(err, errno == ENOENT ? DSNN_ERR_NOT_FOUND : DSNN_ERR_IO,
                              "%s: %s (expected a results directory, e.g. results/<experiment>)",
                              dir, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return dsnn_error_set(err, DSNN_ERR_IO, "%s: not a directory (expected a results "
                                                "directory, e.g. results/<experiment>)",
                              dir);
    struct dsnn_report *r = calloc(1, sizeof *r);
    if (!r || !(r->dir = strdup(dir))) {
        free(r);
        return dsnn_error_set(err, DSNN_ERR_NOMEM, "out of memory");
    }
    size_t dl = strlen(r->dir);
    while (dl > 1 && r->dir[dl - 1] == '/')
        r->dir[--dl] = '\0';
    read_experiment_cfg(r, warn);
    enum dsnn_status s = list_trials(r, err);
    for (size_t i = 0; s == DSNN_OK && i < r->n; i++)
        s = load_trial(r, &r->t[i], warn, err);
    if (s == DSNN_OK)
        s = load_statuses(r, warn, err);
    if (s != DSNN_OK) {
        dsnn_report_free(r);
        return s;
    }
    *out = r;
    return DSNN_OK;
}

void dsnn_report_free(struct dsnn_report *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++) {
        free(r->t[i].id);
        dsnn_json_object_free(&r->t[i].params);
        for (size_t k = 0; k < r->t[i].n_rows; k++)
            dsnn_json_object_free(&r->t[i].rows[k]);
        free(r->t[i].rows);
        dsnn_json_free(&r->t[i].noise);
    }
    free(r->t);
    for (size_t i = 0; i < r->n_pkeys; i++)
        free(r->pkeys[i]);
    free(r->pkeys);
    for (size_t i = 0; i < r->n_dkeys; i++)
        free(r->dkeys[i]);
    free(r->dkeys);
    free(r->dir);
    free(r);
}

/* ---- groups ---- */

/* The group keys of opt ("all" expanded); *n receives their number. Owned by the caller. */
static const char **group_keys(const struct dsnn_report *r, const struct dsnn_report_options *opt,
                               size_t *n)
{
    *n = 0;
    size_t cap = r->n_pkeys + (opt ? opt->n_group_by : 0) + 1;
    const char **keys = malloc(cap * sizeof *keys);
    if (!keys)
        return NULL;
    for (size_t g = 0; opt && g < opt->n_group_by; g++) {
        bool all = strcmp(opt->group_by[g], "all") == 0;
        for (size_t k = 0; k < (all ? r->n_pkeys : 1); k++) {
            const char *key = all ? r->pkeys[k] : opt->group_by[g];
            bool dup = false;
            for (size_t i = 0; i < *n && !dup; i++)
                dup = strcmp(keys[i], key) == 0;
            if (!dup && *n < cap)
                keys[(*n)++] = key;
        }
    }
    return keys;
}

static const char *param_text(const struct rtrial *t, const char *key)
{
    const struct dsnn_json_value *m = dsnn_json_find(&t->params, key);
    return m ? m->text : "-";
}

/* A parameter for display: fractional numbers with 6 significant digits (0.0921144200089669
 * -> 0.0921144), anything else as written. */
static const char *param_display(const struct rtrial *t, const char *key, char *buf, size_t size)
{
    const struct dsnn_json_value *m = dsnn_json_find(&t->params, key);
    if (!m)
        return "-";
    if (m->type == DSNN_JSON_NUMBER && strpbrk(m->text, ".eE") && isfinite(m->number)) {
        snprintf(buf, size, "%.6g", m->number);
        return buf;
    }
    return m->text;
}

enum dsnn_status dsnn_report_check_options(const struct dsnn_report *r,
                                           const struct dsnn_report_options *opt,
                                           struct dsnn_error *err)
{
    for (size_t g = 0; opt && g < opt->n_group_by; g++) {
        const char *key = opt->group_by[g];
        if (strcmp(key, "all") == 0)
            continue;
        bool found = false;
        for (size_t i = 0; i < r->n && !found; i++)
            found = dsnn_json_find(&r->t[i].params, key) != NULL;
        if (found)
            continue;
        char list[2048];
        size_t len = 0;
        list[0] = '\0';
        for (size_t k = 0; k < r->n_pkeys && len < sizeof list; k++)
            len += (size_t)snprintf(list + len, sizeof list - len, "%s%s", k ? ", " : "",
                                    r->pkeys[k]);
        return dsnn_error_set(err, DSNN_ERR_INVALID,
                              "--group-by '%s': no trial of %s has this parameter (parameters: "
                              "%s%s\"all\")",
                              key, r->dir, list, r->n_pkeys ? ", " : "");
    }
    return DSNN_OK;
}

/* Assigns t->group; returns the number of groups (0 without group keys). */
static size_t assign_groups(struct dsnn_report *r, const char **keys, size_t n_keys)
{
    size_t n_groups = 0;
    for (size_t i = 0; i < r->n; i++) {
        r->t[i].group = i;
        if (n_keys == 0)
            continue;
        size_t g = SIZE_MAX;
        for (size_t j = 0; j < i && g == SIZE_MAX; j++) {
            bool same = true;
            for (size_t k = 0; k < n_keys && same; k++)
                same = strcmp(param_text(&r->t[i], keys[k]), param_text(&r->t[j], keys[k])) == 0;
            if (same)
                g = r->t[j].group;
        }
        r->t[i].group = g == SIZE_MAX ? n_groups++ : g;
    }
    return n_keys ? n_groups : r->n;
}

struct stat_acc {
    double sum, sum2;
    size_t n;
};

static void acc_add(struct stat_acc *a, double v)
{
    if (!isfinite(v))
        return;
    a->sum += v;
    a->sum2 += v * v;
    a->n++;
}

static double acc_mean(const struct stat_acc *a)
{
    return a->n ? a->sum / (double)a->n : NAN;
}

/* Sample standard deviation (n - 1), NAN for fewer than 2 values. */
static double acc_std(const struct stat_acc *a)
{
    if (a->n < 2)
        return NAN;
    double m = a->sum / (double)a->n;
    double var = (a->sum2 - (double)a->n * m * m) / (double)(a->n - 1);
    return var > 0 ? sqrt(var) : 0;
}

/* ---- tables ---- */

struct table {
    size_t n_cols, n_rows; /* row 0: header */
    char **cells;          /* n_rows * n_cols, owned */
    bool *right;           /* per column */
    bool oom;
};

static void table_init(struct table *tb, size_t n_cols)
{
    memset(tb, 0, sizeof *tb);
    tb->n_cols = n_cols;
    tb->right = calloc(n_cols ? n_cols : 1, sizeof *tb->right);
    tb->oom = !tb->right;
}

static void table_add_row(struct table *tb)
{
    if (tb->oom)
        return;
    char **nc = realloc(tb->cells, (tb->n_rows + 1) * tb->n_cols * sizeof *nc);
    if (!nc) {
        tb->oom = true;
        return;
    }
    tb->cells = nc;
    memset(&nc[tb->n_rows * tb->n_cols], 0, tb->n_cols * sizeof *nc);
    tb->n_rows++;
}

static void table_set(struct table *tb, size_t col, const char *fmt, ...) DSNN_PRINTF(3, 4);
static void table_set(struct table *tb, size_t col, const char *fmt, ...)
{
    if (tb->oom || tb->n_rows == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    char *s = dsnn_strdup_vprintf(fmt, ap);
    va_end(ap);
    if (!s) {
        tb->oom = true;
        return;
    }
    char **cell = &tb->cells[(tb->n_rows - 1) * tb->n_cols + col];
    free(*cell);
    *cell = s;
}

static const char *table_cell(const struct table *tb, size_t row, size_t col)
{
    const char *c = tb->cells[row * tb->n_cols + col];
    return c ? c : "";
}

static void table_free(struct table *tb)
{
    for (size_t i = 0; tb->cells && i < tb->n_rows * tb->n_cols; i++)
        free(tb->cells[i]);
    free(tb->cells);
    free(tb->right);
}

/* Columns a string takes in a terminal (UTF-8 continuation bytes take none). */
static size_t display_width(const char *s)
{
    size_t w = 0;
    for (; *s; s++)
        w += ((unsigned char)*s & 0xc0) != 0x80;
    return w;
}

static void table_print(const struct table *tb, FILE *out)
{
    if (tb->oom) {
        fprintf(out, "(out of memory)\n");
        return;
    }
    size_t *w = calloc(tb->n_cols ? tb->n_cols : 1, sizeof *w);
    if (!w)
        return;
    for (size_t r = 0; r < tb->n_rows; r++)
        for (size_t c = 0; c < tb->n_cols; c++) {
            size_t l = display_width(table_cell(tb, r, c));
            w[c] = l > w[c] ? l : w[c];
        }
    for (size_t r = 0; r < tb->n_rows; r++) {
        for (size_t c = 0; c < tb->n_cols; c++) {
            const char *s = table_cell(tb, r, c);
            size_t pad = w[c] - display_width(s);
            bool last = c + 1 == tb->n_cols;
            if (tb->right[c] && r > 0)
                fprintf(out, "%*s%s", (int)pad, "", s);
            else
                fprintf(out, "%s%*s", s, last ? 0 : (int)pad, "");
            if (!last)
                fprintf(out, "  ");
        }
        fprintf(out, "\n");
    }
    free(w);
}

static void fmt_num(char *buf, size_t size, double v, const char *fmt)
{
    if (isnan(v))
        snprintf(buf, size, "-");
    else
        snprintf(buf, size, fmt, v);
}

/* Trial table: trial, status, epochs, <metric> max|min, <metric> last, time_s, parameters. */
static void trial_table(const struct dsnn_report *r, struct table *tb)
{
    size_t base = 6;
    table_init(tb, base + r->n_pkeys);
    tb->right[2] = tb->right[3] = tb->right[4] = tb->right[5] = true;
    table_add_row(tb);
    table_set(tb, 0, "trial");
    table_set(tb, 1, "status");
    table_set(tb, 2, "epochs");
    table_set(tb, 3, "%s %s", r->metric, r->maximize ? "max" : "min");
    table_set(tb, 4, "%s last", r->metric);
    table_set(tb, 5, "time_s");
    for (size_t k = 0; k < r->n_pkeys; k++)
        table_set(tb, base + k, "%s", r->pkeys[k]);
    for (size_t i = 0; i < r->n; i++) {
        const struct rtrial *t = &r->t[i];
        char b1[64], b2[64], b3[64];
        fmt_num(b1, sizeof b1, t->best, "%.4f");
        fmt_num(b2, sizeof b2, t->last, "%.4f");
        fmt_num(b3, sizeof b3, t->time_s, "%.1f");
        table_add_row(tb);
        table_set(tb, 0, "%s", t->id);
        table_set(tb, 1, "%s", t->status);
        table_set(tb, 2, "%.0f", t->epochs);
        table_set(tb, 3, "%s", b1);
        table_set(tb, 4, "%s", b2);
        table_set(tb, 5, "%s", b3);
        for (size_t k = 0; k < r->n_pkeys; k++)
            table_set(tb, base + k, "%s", param_display(t, r->pkeys[k], b1, sizeof b1));
    }
}

static void mean_std(char *buf, size_t size, const struct stat_acc *a, const char *fmt)
{
    char m[64], s[64];
    fmt_num(m, sizeof m, acc_mean(a), fmt);
    fmt_num(s, sizeof s, acc_std(a), fmt);
    snprintf(buf, size, "%s ± %s", m, s);
}

/* Group table: keys..., trials, <metric> max|min, <metric> last, epochs, time_s (mean ± std). */
static void group_table(struct dsnn_report *r, const char **keys, size_t n_keys, size_t n_groups,
                        struct table *tb)
{
    table_init(tb, n_keys + 5);
    for (size_t c = n_keys; c < n_keys + 5; c++)
        tb->right[c] = true;
    table_add_row(tb);
    for (size_t k = 0; k < n_keys; k++)
        table_set(tb, k, "%s", keys[k]);
    table_set(tb, n_keys, "trials");
    table_set(tb, n_keys + 1, "%s %s", r->metric, r->maximize ? "max" : "min");
    table_set(tb, n_keys + 2, "%s last", r->metric);
    table_set(tb, n_keys + 3, "epochs");
    table_set(tb, n_keys + 4, "time_s");
    for (size_t g = 0; g < n_groups; g++) {
        struct stat_acc best = {0}, last = {0}, ep = {0}, tm = {0};
        size_t n = 0;
        const struct rtrial *first = NULL;
        for (size_t i = 0; i < r->n; i++) {
            const struct rtrial *t = &r->t[i];
            if (t->group != g)
                continue;
            first = first ? first : t;
            n++;
            acc_add(&best, t->best);
            acc_add(&last, t->last);
            acc_add(&ep, t->epochs);
            acc_add(&tm, t->time_s);
        }
        if (!first)
            continue;
        char b1[160], b2[160], b3[160], b4[160], pb[64];
        mean_std(b1, sizeof b1, &best, "%.4f");
        mean_std(b2, sizeof b2, &last, "%.4f");
        mean_std(b3, sizeof b3, &ep, "%.1f");
        mean_std(b4, sizeof b4, &tm, "%.1f");
        table_add_row(tb);
        for (size_t k = 0; k < n_keys; k++)
            table_set(tb, k, "%s", param_display(first, keys[k], pb, sizeof pb));
        table_set(tb, n_keys, "%zu", n);
        table_set(tb, n_keys + 1, "%s", b1);
        table_set(tb, n_keys + 2, "%s", b2);
        table_set(tb, n_keys + 3, "%s", b3);
        table_set(tb, n_keys + 4, "%s", b4);
    }
}

/* Noise table: a row per trial and level of its noise_eval.json (dsnn-host evaluate). */
static void noise_table(const struct dsnn_report *r, struct table *tb)
{
    static const char *const head[] = {"trial", "checkpoint epochs", "repeats", "noise_level",
                                       "acc (mean ± std)", "loss (mean ± std)"};
    table_init(tb, DSNN_COUNT_OF(head));
    table_add_row(tb);
    for (size_t c = 0; c < DSNN_COUNT_OF(head); c++) {
        table_set(tb, c, "%s", head[c]);
        tb->right[c] = c > 0;
    }
    for (size_t i = 0; i < r->n; i++) {
        const struct rtrial *t = &r->t[i];
        const struct dsnn_json_value *levels = dsnn_json_get(&t->noise, "levels");
        for (size_t k = 0; levels && k < levels->n; k++) {
            const struct dsnn_json_value *l = &levels->items[k];
            table_add_row(tb);
            table_set(tb, 0, "%s", t->id);
            table_set(tb, 1, "%.0f", dsnn_json_num(&t->noise, "checkpoint_epochs", NAN));
            table_set(tb, 2, "%.0f", dsnn_json_num(&t->noise, "repeats", NAN));
            table_set(tb, 3, "%g", dsnn_json_num(l, "noise_level", NAN));
            table_set(tb, 4, "%.4f ± %.4f", dsnn_json_num(l, "acc_mean", NAN),
                      dsnn_json_num(l, "acc_std", NAN));
            table_set(tb, 5, "%.4g ± %.4g", dsnn_json_num(l, "loss_mean", NAN),
                      dsnn_json_num(l, "loss_std", NAN));
        }
    }
}

static void keys_text(char *buf, size_t size, const char **keys, size_t n)
{
    size_t len = 0;
    buf[0] = '\0';
    for (size_t k = 0; k < n && len < size; k++)
        len += (size_t)snprintf(buf + len, size - len, "%s%s", k ? ", " : "", keys[k]);
}

void dsnn_report_print(const struct dsnn_report *rc, const struct dsnn_report_options *opt,
                       FILE *out)
{
    struct dsnn_report *r = (struct dsnn_report *)rc; /* groups are scratch state */
    fprintf(out, "experiment '%s': %zu trial%s, metric %s (mode %s); results: %s\n\n", r->name,
            r->n, r->n == 1 ? "" : "s", r->metric, r->maximize ? "max" : "min", r->dir);
    struct table tb;
    trial_table(r, &tb);
    table_print(&tb, out);
    table_free(&tb);
    size_t n_keys = 0;
    const char **keys = group_keys(r, opt, &n_keys);
    if (keys && n_keys > 0) {
        size_t n_groups = assign_groups(r, keys, n_keys);
        char kt[2048];
        keys_text(kt, sizeof kt, keys, n_keys);
        fprintf(out, "\ngrouped by %s: %zu group%s (mean ± std over the trials of a group)\n\n",
                kt, n_groups, n_groups == 1 ? "" : "s");
        group_table(r, keys, n_keys, n_groups, &tb);
        table_print(&tb, out);
        table_free(&tb);
    } else if (opt && opt->n_group_by > 0) {
        fprintf(out, "\n(no parameters to group by)\n");
    }
    free(keys);
    if (r->n_noise > 0) {
        fprintf(out, "\nnoise robustness (dsnn-host evaluate, noise_eval.json of %zu trial%s):\n\n",
                r->n_noise, r->n_noise == 1 ? "" : "s");
        noise_table(r, &tb);
        table_print(&tb, out);
        table_free(&tb);
    }
}

/* ---- HTML and SVG ---- */

static const char *const k_palette[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                        "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
#define N_PALETTE (sizeof k_palette / sizeof k_palette[0])

/* A step of 1, 2 or 5 times a power of ten giving about n ticks over span. */
static double nice_step(double span, int n)
{
    double raw = span / n, p = pow(10, floor(log10(raw))), f = raw / p;
    return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * p;
}

/* x of a row: training_iteration, else epoch + 1, else its position + 1. */
static double row_x(const struct dsnn_json_object *row, size_t k)
{
    double v;
    if (dsnn_json_number(row, "training_iteration", &v) && isfinite(v))
        return v;
    if (dsnn_json_number(row, "epoch", &v) && isfinite(v))
        return v + 1;
    return (double)k + 1;
}

/* What a chart plots: metric per epoch (the rows of result.json) or, noise, metric (acc_mean)
 * per noise level (the levels of noise_eval.json). */
struct series {
    const char *metric;
    bool noise;
};

static size_t series_len(const struct rtrial *t, const struct series *s)
{
    const struct dsnn_json_value *l = s->noise ? dsnn_json_get(&t->noise, "levels") : NULL;
    return !s->noise ? t->n_rows : l ? l->n : 0;
}

/* Point k of t's series: false when it has no finite value. */
static bool series_point(const struct rtrial *t, const struct series *s, size_t k, double *x,
                         double *y)
{
    if (!s->noise) {
        *x = row_x(&t->rows[k], k);
        return dsnn_json_number(&t->rows[k], s->metric, y) && isfinite(*y);
    }
    const struct dsnn_json_value *p = &dsnn_json_get(&t->noise, "levels")->items[k];
    *x = dsnn_json_num(p, "noise_level", NAN);
    *y = dsnn_json_num(p, s->metric, NAN);
    return isfinite(*x) && isfinite(*y);
}

static void trial_label(const struct dsnn_report *r, const struct rtrial *t, struct dsnn_sbuf *b)
{
    sb_html(b, t->id);
    for (size_t k = 0; k < r->n_pkeys; k++) {
        const struct dsnn_json_value *m = dsnn_json_find(&t->params, r->pkeys[k]);
        if (!m)
            continue;
        dsnn_sbuf_printf(b, "%s", k ? ", " : " (");
        sb_html(b, r->pkeys[k]);
        char buf[64];
        dsnn_sbuf_printf(b, "=");
        sb_html(b, param_display(t, r->pkeys[k], buf, sizeof buf));
    }
    if (r->n_pkeys)
        dsnn_sbuf_printf(b, ")");
}

/* One SVG line chart of metric per epoch: a polyline per trial with at least one value. */
/* Plot area and data range of a chart: data (x, y) to SVG coordinates. */
struct chart {
    double ml, mt, pw, ph; /* left and top margins, plot width and height */
    double x0, x1, y0, y1;
};
static double chart_x(const struct chart *c, double x)
{
    return c->ml + (x - c->x0) / (c->x1 - c->x0) * c->pw;
}
static double chart_y(const struct chart *c, double y)
{
    return c->mt + (1 - (y - c->y0) / (c->y1 - c->y0)) * c->ph;
}

/* Frame, grid and ticks (paths and text only: polylines are the data). */
static void svg_axes(struct dsnn_sbuf *b, const struct chart *c, int width, int height,
                     bool noise)
{
    double ys = nice_step(c->y1 - c->y0, height >= 300 ? 6 : 4);
    double xs = nice_step(c->x1 - c->x0, width >= 600 ? 10 : 5);
    if (!noise)
        xs = fmax(1, round(xs)); /* whole epochs */
    dsnn_sbuf_printf(b, "<rect x=\"%g\" y=\"%g\" width=\"%g\" height=\"%g\" class=\"frame\"/>\n", c->ml,
              c->mt, c->pw, c->ph);
    for (double y = ceil(c->y0 / ys) * ys; y <= c->y1 + 1e-9 * ys; y += ys) {
        double yy = chart_y(c, y);
        dsnn_sbuf_printf(b, "<path d=\"M%.1f %.1fH%.1f\" class=\"grid\"/>", c->ml, yy, c->ml + c->pw);
        dsnn_sbuf_printf(b, "<text x=\"%.1f\" y=\"%.1f\" class=\"tick\" text-anchor=\"end\">%.4g</text>\n",
                  c->ml - 5, yy + 4, fabs(y) < 1e-12 * ys ? 0.0 : y);
    }
    for (double x = ceil(c->x0 / xs) * xs; x <= c->x1 + 1e-9 * xs; x += xs) {
        double xx = chart_x(c, x);
        dsnn_sbuf_printf(b, "<path d=\"M%.1f %.1fV%.1f\" class=\"grid\"/>", xx, c->mt, c->mt + c->ph);
        dsnn_sbuf_printf(b,
                  "<text x=\"%.1f\" y=\"%.1f\" class=\"tick\" text-anchor=\"middle\">%g</text>\n",
                  xx, c->mt + c->ph + 15, fabs(x) < 1e-12 * xs ? 0.0 : x);
    }
    dsnn_sbuf_printf(b, "<text x=\"%.1f\" y=\"%d\" class=\"lbl\" text-anchor=\"middle\">%s</text>\n",
              c->ml + c->pw / 2, height - 6, noise ? "noise level" : "epoch");
}

/* One polyline for trial t; where its epochs go back (a PBT trial that went on from the
 * checkpoint of a source behind it) a new polyline starts, joined by a dashed jump. */
static void svg_trial(struct dsnn_sbuf *b, const struct chart *c, const struct dsnn_report *r,
                      const struct rtrial *t, const struct series *s)
{
    const char *colour = k_palette[t->group % N_PALETTE];
    /* colours cycle; the second round of them is dashed, and so on */
    const char *dash = t->group / N_PALETTE % 2 ? " stroke-dasharray=\"5 3\"" : "";
    size_t n_pts = 0, seg = 0;
    bool open = false;
    double lx = 0, ly = 0, prev_x = 0;
    for (size_t k = 0; k < series_len(t, s); k++) {
        double x, v;
        if (!series_point(t, s, k, &x, &v))
            continue;
        double px = chart_x(c, x), py = chart_y(c, v);
        if (open && x <= prev_x) {
            dsnn_sbuf_printf(b, "\"><title>");
            trial_label(r, t, b);
            dsnn_sbuf_printf(b, "</title></polyline>\n<path class=\"jump\" d=\"M%.1f %.1fL%.1f %.1f\" "
                         "stroke=\"%s\" stroke-dasharray=\"2 3\" fill=\"none\"/>\n",
                      lx, ly, px, py, colour);
            open = false;
        }
        if (!open) {
            dsnn_sbuf_printf(b, "<polyline class=\"trial\" data-trial=\"");
            sb_html(b, t->id);
            dsnn_sbuf_printf(b, "\" data-segment=\"%zu\" fill=\"none\" stroke=\"%s\" "
                         "stroke-width=\"1.6\"%s points=\"%.1f,%.1f",
                      seg++, colour, dash, px, py);
            open = true;
        } else {
            dsnn_sbuf_printf(b, " %.1f,%.1f", px, py);
        }
        lx = px, ly = py, prev_x = x;
        n_pts++;
    }
    if (n_pts == 0)
        return;
    dsnn_sbuf_printf(b, "\"><title>");
    trial_label(r, t, b);
    dsnn_sbuf_printf(b, "</title></polyline>");
    dsnn_sbuf_printf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\" fill=\"%s\"/>\n", lx, ly, colour);
}

static void svg_chart(struct dsnn_sbuf *b, const struct dsnn_report *r, const struct series *s,
                      const char *css_class, int width, int height)
{
    const char *metric = s->metric;
    struct chart c = {.ml = 58, .mt = 26, .x0 = INFINITY, .x1 = -INFINITY, .y0 = INFINITY,
                      .y1 = -INFINITY};
    const double mr = 16, mb = 40;
    for (size_t i = 0; i < r->n; i++)
        for (size_t k = 0; k < series_len(&r->t[i], s); k++) {
            double x, v;
            if (!series_point(&r->t[i], s, k, &x, &v))
                continue;
            c.x0 = fmin(c.x0, x), c.x1 = fmax(c.x1, x), c.y0 = fmin(c.y0, v), c.y1 = fmax(c.y1, v);
        }
    dsnn_sbuf_printf(b, "<svg class=\"%s\" data-metric=\"", css_class);
    sb_html(b, metric);
    dsnn_sbuf_printf(b,
              "\" xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
              "viewBox=\"0 0 %d %d\" role=\"img\">\n<title>",
              width, height, width, height);
    sb_html(b, metric);
    dsnn_sbuf_printf(b, " per %s</title>\n", s->noise ? "noise level" : "epoch");
    dsnn_sbuf_printf(b, "<text x=\"%g\" y=\"16\" class=\"ttl\">", c.ml);
    sb_html(b, metric);
    dsnn_sbuf_printf(b, "</text>\n");
    if (!isfinite(c.x0)) {
        dsnn_sbuf_printf(b, "<text x=\"%g\" y=\"%g\" class=\"lbl\">no values</text>\n</svg>\n", c.ml,
                  (double)height / 2);
        return;
    }
    if (c.x1 - c.x0 < (s->noise ? 1e-9 : 1))
        c.x0 -= s->noise ? 0.05 : 0.5, c.x1 += s->noise ? 0.05 : 0.5;
    if (c.y1 - c.y0 < 1e-12 * fmax(1, fabs(c.y1)))
        c.y0 -= fmax(0.5 * fabs(c.y0), 0.05), c.y1 += fmax(0.5 * fabs(c.y1), 0.05);
    double pad = (c.y1 - c.y0) * 0.05;
    c.y0 -= pad, c.y1 += pad;
    c.pw = width - c.ml - mr, c.ph = height - c.mt - mb;
    svg_axes(b, &c, width, height, s->noise);
    for (size_t i = 0; i < r->n; i++)
        svg_trial(b, &c, r, &r->t[i], s);
    dsnn_sbuf_printf(b, "</svg>\n");
}

static void html_table(struct dsnn_sbuf *b, const struct table *tb)
{
    dsnn_sbuf_printf(b, "<table>\n<thead><tr>");
    for (size_t c = 0; c < tb->n_cols; c++) {
        dsnn_sbuf_printf(b, "<th>");
        sb_html(b, table_cell(tb, 0, c));
        dsnn_sbuf_printf(b, "</th>");
    }
    dsnn_sbuf_printf(b, "</tr></thead>\n<tbody>\n");
    for (size_t r = 1; r < tb->n_rows; r++) {
        dsnn_sbuf_printf(b, "<tr>");
        for (size_t c = 0; c < tb->n_cols; c++) {
            dsnn_sbuf_printf(b, tb->right[c] ? "<td class=\"num\">" : "<td>");
            sb_html(b, table_cell(tb, r, c));
            dsnn_sbuf_printf(b, "</td>");
        }
        dsnn_sbuf_printf(b, "</tr>\n");
    }
    dsnn_sbuf_printf(b, "</tbody></table>\n");
}

/* Legend: one entry per group (or trial), with its colour. */
static void html_legend(struct dsnn_sbuf *b, const struct dsnn_report *r, const char **keys,
                        size_t n_keys, size_t n_groups)
{
    dsnn_sbuf_printf(b, "<ul class=\"legend\">\n");
    for (size_t g = 0; g < n_groups; g++) {
        const struct rtrial *first = NULL;
        size_t n = 0;
        for (size_t i = 0; i < r->n; i++)
            if (r->t[i].group == g) {
                first = first ? first : &r->t[i];
                n++;
            }
        if (!first)
            continue;
        if (g / N_PALETTE % 2)
            dsnn_sbuf_printf(b,
                      "<li><span class=\"sw\" style=\"background:repeating-linear-gradient(90deg,"
                      "%s 0 5px,transparent 5px 8px)\"></span>",
                      k_palette[g % N_PALETTE]);
        else
            dsnn_sbuf_printf(b, "<li><span class=\"sw\" style=\"background:%s\"></span>",
                      k_palette[g % N_PALETTE]);
        if (n_keys == 0) {
            trial_label(r, first, b);
        } else {
            for (size_t k = 0; k < n_keys; k++) {
                dsnn_sbuf_printf(b, "%s", k ? ", " : "");
                sb_html(b, keys[k]);
                char buf[64];
                dsnn_sbuf_printf(b, "=");
                sb_html(b, param_display(first, keys[k], buf, sizeof buf));
            }
            dsnn_sbuf_printf(b, " (%zu trial%s)", n, n == 1 ? "" : "s");
        }
        dsnn_sbuf_printf(b, "</li>\n");
    }
    dsnn_sbuf_printf(b, "</ul>\n");
}

static const char k_css[] =
    "body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:24px;"
    "color:#222;max-width:1200px}\n"
    "h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}\n"
    ".meta{color:#555;font-size:13px}\n"
    "table{border-collapse:collapse;font-size:13px}th,td{padding:3px 10px;"
    "border-bottom:1px solid #ddd;text-align:left;white-space:nowrap}\n"
    "th{background:#f3f3f3}td.num{text-align:right;font-variant-numeric:tabular-nums}\n"
    ".tablewrap{overflow-x:auto}\n"
    "svg{background:#fff;font-size:11px}.frame{fill:none;stroke:#999}"
    ".grid{stroke:#e6e6e6;stroke-width:1}\n"
    ".tick{fill:#555}.lbl{fill:#333;font-size:12px}.ttl{fill:#222;font-size:13px;"
    "font-weight:600}\n"
    ".legend{list-style:none;padding:0;margin:4px 0 8px;font-size:12px;display:flex;"
    "flex-wrap:wrap;gap:3px 20px;max-width:1100px}\n"
    ".sw{display:inline-block;width:18px;height:4px;margin:0 6px 3px 0;vertical-align:middle}\n"
    ".charts{display:flex;flex-wrap:wrap;gap:12px}\n";

enum dsnn_status dsnn_report_write_html(const struct dsnn_report *rc,
                                        const struct dsnn_report_options *opt, const char *path,
                                        struct dsnn_error *err)
{
    struct dsnn_report *r = (struct dsnn_report *)rc;
    struct dsnn_sbuf b = {0};
    size_t n_keys = 0;
    const char **keys = group_keys(r, opt, &n_keys);
    if (!keys)
        return dsnn_error_set(err, DSNN_ERR_NOMEM, "out of memory");
    size_t n_groups = assign_groups(r, keys, n_keys);
    dsnn_sbuf_printf(&b, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                  "<title>dsnn report: ");
    sb_html(&b, r->name);
    dsnn_sbuf_printf(&b, "</title>\n<style>\n%s</style>\n</head>\n<body>\n<h1>Experiment ", k_css);
    sb_html(&b, r->name);
    dsnn_sbuf_printf(&b, "</h1>\n<p class=\"meta\">");
    sb_html(&b, r->dir);
    dsnn_sbuf_printf(&b, " &middot; %zu trial%s &middot; metric ", r->n, r->n == 1 ? "" : "s");
    sb_html(&b, r->metric);
    dsnn_sbuf_printf(&b, " (mode %s) &middot; dsnn-host report, dsnn %s</p>\n",
              r->maximize ? "max" : "min", DSNN_VERSION_STRING);

    struct table tb;
    dsnn_sbuf_printf(&b, "<h2>Trials</h2>\n<div class=\"tablewrap\">\n");
    trial_table(r, &tb);
    html_table(&b, &tb);
    bool oom = tb.oom;
    table_free(&tb);
    dsnn_sbuf_printf(&b, "</div>\n");
    if (n_keys > 0) {
        char kt[2048];
        keys_text(kt, sizeof kt, keys, n_keys);
        dsnn_sbuf_printf(&b, "<h2>Groups by ");
        sb_html(&b, kt);
        dsnn_sbuf_printf(&b, " (mean &plusmn; std over trials)</h2>\n<div class=\"tablewrap\">\n");
        group_table(r, keys, n_keys, n_groups, &tb);
        html_table(&b, &tb);
        oom |= tb.oom;
        table_free(&tb);
        dsnn_sbuf_printf(&b, "</div>\n");
    }

    dsnn_sbuf_printf(&b, "<h2>");
    sb_html(&b, r->metric);
    dsnn_sbuf_printf(&b, " per epoch</h2>\n");
    if (n_keys > 0 || r->n <= 40)
        html_legend(&b, r, keys, n_keys, n_groups);
    svg_chart(&b, r, &(struct series){r->metric, false}, "chart metric", 760, 380);

    if (r->n_dkeys > 0) {
        dsnn_sbuf_printf(&b, "<h2>Density per layer</h2>\n<div class=\"charts\">\n");
        for (size_t k = 0; k < r->n_dkeys; k++)
            svg_chart(&b, r, &(struct series){r->dkeys[k], false}, "chart density", 372, 250);
        dsnn_sbuf_printf(&b, "</div>\n");
    }
    if (r->n_noise > 0) {
        dsnn_sbuf_printf(&b, "<h2>Accuracy against noise level (dsnn-host evaluate, mean over "
                             "repeats)</h2>\n<div class=\"tablewrap\">\n");
        noise_table(r, &tb);
        html_table(&b, &tb);
        oom |= tb.oom;
        table_free(&tb);
        dsnn_sbuf_printf(&b, "</div>\n");
        svg_chart(&b, r, &(struct series){"acc_mean", true}, "chart noise", 760, 380);
    }
    dsnn_sbuf_printf(&b, "</body>\n</html>\n");
    free(keys);
    enum dsnn_status s;
    if (b.oom || oom)
        s = dsnn_error_set(err, DSNN_ERR_NOMEM, "out of memory");
    else
        s = dsnn_write_file_atomic(path, b.p, b.len, err);
    dsnn_sbuf_free(&b);
    return s;
}

enum dsnn_status dsnn_report_run(const char *dir, const struct dsnn_report_options *opt,
                                 FILE *out, FILE *warn, struct dsnn_error *err)
{
    struct dsnn_report *r = NULL;
    enum dsnn_status s = dsnn_report_load(dir, warn, &r, err);
    if (s != DSNN_OK)
        return s;
    if ((s = dsnn_report_check_options(r, opt, err)) == DSNN_OK) {
        dsnn_report_print(r, opt, out);
        char def[4300];
        const char *path = opt && opt->html_path ? opt->html_path : NULL;
        if (!path) {
            snprintf(def, sizeof def, "%s/report.html", r->dir);
            path = def;
        }
        if ((s = dsnn_report_write_html(r, opt, path, err)) == DSNN_OK)
            fprintf(out, "\nHTML report: %s\n", path);
    }
    dsnn_report_free(r);
    return s;
}
