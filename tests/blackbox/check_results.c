/* tests/blackbox/check_results.c - runs a blackbox experiment and checks its accuracy.
 *
 *   check_results [--require-dataset DIR]
 *                 [--run HOST --plugin-dir DIR [--plugin-dir DIR ...] --config CFG]
 *                 --results ROOT --name NAME
 *                 [--trials N] [--epochs N] [--metric KEY]
 *                 [--min-mean X] [--min-mean-where PARAM=VALUE X]
 *                 [--better PARAM=HI,LO] [--margin M] [--finite KEY ...]
 *                 [--expect-exit N] [--expect-error TEXT]
 *
 * 1. --require-dataset DIR: the four IDX files of DIR (train-images-idx3-ubyte, train-labels-
 *    idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte, each raw or .gz) must exist;
 *    otherwise the check FAILS with a message saying how to install the dataset (a blackbox
 *    test never skips silently).
 * 2. --run HOST ...: runs `HOST --plugin-dir DIR... run CFG --results ROOT --overwrite`;
 *    its exit status must be 0 (every trial TERMINATED).
 * 3. Reads ROOT/NAME/trial_NNNNN/: params.json (the searched values; trial_seed is left out) and
 *    result.json (one JSON object per epoch). Trials with the same searched values form a group
 *    (the seeds of num_samples); the score of a trial is KEY (default val_acc) of its last epoch.
 *    Prints every trial and the mean of every group, then checks:
 *      --trials N          N trial folders
 *      --epochs N          N lines in every result.json
 *      --min-mean X        every group's mean >= X
 *      --min-mean-where P=V X   the mean of the group whose parameter P is V >= X
 *      --better P=HI,LO    mean of the group P=HI > mean of the group P=LO + M (--margin M, 0)
 *      --finite KEY        every epoch of every trial has KEY as a finite number (repeatable;
 *                          e.g. train_loss, val_loss of a smoke test)
 * 4. Runs that must fail: --expect-exit N makes N the exit status dsnn-host must return (instead
 *    of 0), and --expect-error TEXT checks that every trial ended in ERROR with TEXT in its
 *    error.txt (a configuration that a plugin refuses at build time, say); the scores are then
 *    not read.
 * Exit status 0 if every check passes, 1 if one fails, 2 on bad usage.
 * Plain C and POSIX: no Python or shell needed. */
#ifndef _XOPEN_SOURCE
#define _XOPEN_SOURCE 700
#endif
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "json.h" /* host/: the JSON module (dsnn_json) */

extern char **environ;

#define MAX_TRIALS 256
#define MAX_GROUPS 64
#define MAX_FIELDS 256 /* a sparse ResNet-18 logs about 120 metrics an epoch */
#define MAX_DIRS 8
#define MAX_WHERE 8
#define MAX_FINITE 8

static int g_failures;
static const char *g_finite[MAX_FINITE]; /* --finite keys */
static int g_n_finite;

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("FAIL: ");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    g_failures++;
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 8192, n = 0;
    char *buf = malloc(cap);
    for (size_t r; buf && (r = fread(buf + n, 1, cap - n - 1, f)) > 0;) {
        n += r;
        if (n + 1 == cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb)
                free(buf);
            buf = nb;
            cap *= 2;
        }
    }
    fclose(f);
    if (buf)
        buf[n] = '\0';
    return buf;
}

/* ---- flat JSON objects: {"key": value, ...}; values kept as text (strings unquoted) ---- */

struct field {
    char key[128];
    char val[512];
    bool is_string;
};
struct object {
    struct field f[MAX_FIELDS];
    int n;
};

/* Parses one line with the host's JSON module (host/json.h). */
static bool parse_object(const char *s, struct object *o)
{
    struct dsnn_json_object j;
    struct dsnn_error err = {0};
    o->n = 0;
    if (dsnn_json_parse_object(s, strlen(s), &j, &err) != DSNN_OK) {
        fprintf(stderr, "check_results: %s\n", err.msg);
        return false;
    }
    bool ok = j.n <= MAX_FIELDS;
    for (size_t i = 0; ok && i < j.n; i++) {
        struct field *f = &o->f[o->n++];
        snprintf(f->key, sizeof f->key, "%s", j.items[i].key);
        snprintf(f->val, sizeof f->val, "%s", j.items[i].text);
        f->is_string = j.items[i].type == DSNN_JSON_STRING;
    }
    dsnn_json_object_free(&j);
    return ok;
}

static const struct field *get(const struct object *o, const char *key)
{
    for (int i = 0; i < o->n; i++)
        if (strcmp(o->f[i].key, key) == 0)
            return &o->f[i];
    return NULL;
}

/* Two parameter values are equal if both are numbers of equal value, else if equal as text. */
static bool same_value(const char *a, const char *b)
{
    char *ea, *eb;
    double x = strtod(a, &ea), y = strtod(b, &eb);
    if (ea != a && !*ea && eb != b && !*eb)
        return x == y;
    return strcmp(a, b) == 0;
}

/* ---- the experiment's trials ---- */

struct trial {
    char id[64];
    char params[1024]; /* "k=v k=v" without trial_seed */
    struct object p;   /* params.json */
    int epochs;
    double score;
    bool error;
};

struct group {
    char params[1024];
    int members[MAX_TRIALS];
    int n;
    double mean;
};

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool read_trial(const char *dir, const char *id, const char *metric, struct trial *t)
{
    char path[4400];
    memset(t, 0, sizeof *t);
    snprintf(t->id, sizeof t->id, "%s", id);
    t->score = NAN;
    snprintf(path, sizeof path, "%s/%s/params.json", dir, id);
    char *text = read_file(path);
    if (!text || !parse_object(text, &t->p)) {
        fail("%s: missing or not a JSON object", path);
        free(text);
        return false;
    }
    free(text);
    size_t len = 0;
    for (int i = 0; i < t->p.n; i++) {
        if (strcmp(t->p.f[i].key, "trial_seed") == 0)
            continue;
        int w = snprintf(t->params + len, sizeof t->params - len, "%s%s=%s", len ? " " : "",
                         t->p.f[i].key, t->p.f[i].val);
        if (w < 0 || (size_t)w >= sizeof t->params - len) {
            fail("%s: parameters too long", path);
            return false;
        }
        len += (size_t)w;
    }
    snprintf(path, sizeof path, "%s/%s/error.txt", dir, id);
    struct stat st;
    if (stat(path, &st) == 0) {
        char *e = read_file(path);
        fail("%s ended in ERROR: %s", id, e ? e : "(unreadable error.txt)");
        free(e);
        t->error = true;
    }
    snprintf(path, sizeof path, "%s/%s/result.json", dir, id);
    text = read_file(path);
    if (!text) {
        fail("%s: missing", path);
        return false;
    }
    static struct object o;
    bool ok = true;
    for (char *line = text, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        if (!parse_object(line, &o)) {
            fail("%s: line %d is not a JSON object: %s", path, t->epochs + 1, line);
            ok = false;
            break;
        }
        t->epochs++;
        for (int k = 0; k < g_n_finite; k++) {
            const struct field *g = get(&o, g_finite[k]);
            char *e = NULL;
            double v = g && !g->is_string ? strtod(g->val, &e) : NAN;
            if (!g || g->is_string || e == g->val || *e || !isfinite(v))
                fail("%s: line %d: \"%s\" is not a finite number (%s)", path, t->epochs,
                     g_finite[k], g ? g->val : "missing");
        }
        const struct field *f = get(&o, metric);
        char *end = NULL;
        t->score = f && !f->is_string ? strtod(f->val, &end) : NAN;
        if (!f || f->is_string || end == f->val || *end) {
            fail("%s: line %d has no number \"%s\"", path, t->epochs, metric);
            t->score = NAN;
            ok = false;
        }
    }
    free(text);
    return ok;
}

/* ---- running dsnn-host ---- */

static int run_host(const char *host, const char *const *dirs, int n_dirs, const char *cfg,
                    const char *root)
{
    const char *argv[32];
    int n = 0;
    argv[n++] = host;
    for (int i = 0; i < n_dirs; i++) {
        argv[n++] = "--plugin-dir";
        argv[n++] = dirs[i];
    }
    argv[n++] = "run";
    argv[n++] = cfg;
    argv[n++] = "--results";
    argv[n++] = root;
    argv[n++] = "--overwrite";
    argv[n] = NULL;
    printf("$");
    for (int i = 0; i < n; i++)
        printf(" %s", argv[i]);
    printf("\n");
    fflush(stdout);
    pid_t pid;
    int e = posix_spawn(&pid, host, NULL, NULL, (char *const *)argv, environ);
    if (e != 0) {
        fail("cannot run %s: %s", host, strerror(e));
        return -1;
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) {
            fail("waitpid: %s", strerror(errno));
            return -1;
        }
    if (WIFSIGNALED(status)) {
        fail("%s was killed by signal %d", host, WTERMSIG(status));
        return -1;
    }
    return WEXITSTATUS(status);
}

/* ---- main ---- */

static int usage(const char *msg)
{
    fprintf(stderr,
            "check_results: %s\n"
            "usage: check_results [--require-dataset DIR] [--run HOST --plugin-dir DIR... "
            "--config CFG]\n"
            "                     --results ROOT --name NAME [--trials N] [--epochs N] "
            "[--metric KEY]\n"
            "                     [--min-mean X] [--min-mean-where PARAM=VALUE X]\n"
            "                     [--better PARAM=HI,LO] [--margin M] [--finite KEY ...]\n"
            "                     [--expect-exit N] [--expect-error TEXT]\n",
            msg);
    return 2;
}

static bool parse_double(const char *s, double *out)
{
    char *end;
    errno = 0;
    *out = strtod(s, &end);
    return s && *s && !*end && !errno && isfinite(*out);
}

static bool dataset_ok(const char *dir)
{
    static const char *const files[] = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                        "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"};
    bool ok = true;
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        char raw[4096], gz[4100];
        snprintf(raw, sizeof raw, "%s/%s", dir, files[i]);
        snprintf(gz, sizeof gz, "%s.gz", raw);
        struct stat st;
        if (stat(gz, &st) != 0 && stat(raw, &st) != 0) {
            printf("FAIL: dataset file %s(.gz) not found\n", raw);
            ok = false;
        }
    }
    if (!ok) {
        g_failures++;
        printf("FAIL: the blackbox tests need Fashion-MNIST in %s: install the Debian package "
               "dataset-fashion-mnist (apt-get install dataset-fashion-mnist; .ci/run does). "
               "This test fails rather than skips so that a missing dataset is never mistaken "
               "for a pass.\n",
               dir);
    }
    return ok;
}

int main(int argc, char **argv)
{
    const char *dataset = NULL, *host = NULL, *cfg = NULL, *root = NULL, *name = NULL;
    const char *metric = "val_acc", *better = NULL, *expect_error = NULL;
    int expect_exit = 0;
    const char *dirs[MAX_DIRS];
    int n_dirs = 0, want_trials = -1, want_epochs = -1, n_where = 0;
    double min_mean = NAN, margin = 0;
    const char *where_param[MAX_WHERE];
    double where_min[MAX_WHERE];
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        double d;
        if (!v)
            return usage("every option needs a value");
        i++;
        if (!strcmp(a, "--require-dataset"))
            dataset = v;
        else if (!strcmp(a, "--run"))
            host = v;
        else if (!strcmp(a, "--plugin-dir") && n_dirs < MAX_DIRS)
            dirs[n_dirs++] = v;
        else if (!strcmp(a, "--config"))
            cfg = v;
        else if (!strcmp(a, "--results"))
            root = v;
        else if (!strcmp(a, "--name"))
            name = v;
        else if (!strcmp(a, "--metric"))
            metric = v;
        else if (!strcmp(a, "--trials"))
            want_trials = atoi(v);
        else if (!strcmp(a, "--epochs"))
            want_epochs = atoi(v);
        else if (!strcmp(a, "--min-mean") && parse_double(v, &d))
            min_mean = d;
        else if (!strcmp(a, "--min-mean-where") && n_where < MAX_WHERE && i + 1 < argc &&
                 strchr(v, '=') && parse_double(argv[i + 1], &d)) {
            where_param[n_where] = v;
            where_min[n_where++] = d;
            i++;
        } else if (!strcmp(a, "--better") && strchr(v, '=') && strchr(v, ','))
            better = v;
        else if (!strcmp(a, "--margin") && parse_double(v, &d))
            margin = d;
        else if (!strcmp(a, "--finite") && g_n_finite < MAX_FINITE)
            g_finite[g_n_finite++] = v;
        else if (!strcmp(a, "--expect-exit"))
            expect_exit = atoi(v);
        else if (!strcmp(a, "--expect-error"))
            expect_error = v;
        else {
            char msg[512];
            snprintf(msg, sizeof msg, "bad option or value: %s %s", a, v);
            return usage(msg);
        }
    }
    if (!root || !name)
        return usage("--results and --name are required");
    if (host && (!cfg || n_dirs == 0))
        return usage("--run needs --config and --plugin-dir");

    if (dataset && !dataset_ok(dataset))
        return 1;
    if (host) {
        int code = run_host(host, dirs, n_dirs, cfg, root);
        if (code != expect_exit) {
            if (code >= 0)
                fail("dsnn-host exited with status %d (%d expected%s)", code, expect_exit,
                     expect_exit ? "" : ": every trial TERMINATED");
            return 1;
        }
        if (expect_exit)
            printf("ok: dsnn-host exited with status %d, as expected\n", code);
    }

    /* the trials */
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/%s", root, name);
    DIR *d = opendir(dir);
    if (!d) {
        fail("%s: cannot open the results directory: %s", dir, strerror(errno));
        return 1;
    }
    char *ids[MAX_TRIALS];
    int n_ids = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        if (strncmp(e->d_name, "trial_", 6) == 0 && n_ids < MAX_TRIALS)
            ids[n_ids++] = strdup(e->d_name);
    closedir(d);
    qsort(ids, (size_t)n_ids, sizeof *ids, cmp_str);
    static struct trial trials[MAX_TRIALS];
    static struct group groups[MAX_GROUPS];
    int n_groups = 0;
    if (want_trials >= 0 && n_ids != want_trials)
        fail("%s: %d trial folders, expected %d", dir, n_ids, want_trials);
    if (n_ids == 0)
        fail("%s: no trial folder", dir);
    if (expect_error) { /* every trial must have failed, saying expect_error */
        for (int i = 0; i < n_ids; i++) {
            char path[4400];
            snprintf(path, sizeof path, "%s/%s/error.txt", dir, ids[i]);
            char *e = read_file(path);
            if (!e)
                fail("%s: missing: the trial was expected to end in ERROR", path);
            else if (!strstr(e, expect_error))
                fail("%s does not say \"%s\": %s", path, expect_error, e);
            else
                printf("ok: %s ended in ERROR: %s", ids[i], e);
            free(e);
            free(ids[i]);
        }
        printf("%s\n", g_failures ? "blackbox check FAILED" : "blackbox check passed");
        return g_failures ? 1 : 0;
    }
    printf("\n%-12s %6s %10s  %s\n", "trial", "epochs", metric, "params");
    for (int i = 0; i < n_ids; i++) {
        struct trial *t = &trials[i];
        read_trial(dir, ids[i], metric, t);
        printf("%-12s %6d %10.4f  %s\n", t->id, t->epochs, t->score,
               t->params[0] ? t->params : "-");
        if (want_epochs >= 0 && t->epochs != want_epochs)
            fail("%s: %d epoch(s) in result.json, expected %d", t->id, t->epochs, want_epochs);
        if (!isfinite(t->score))
            fail("%s: final %s is not a number", t->id, metric);
        int g = 0;
        while (g < n_groups && strcmp(groups[g].params, t->params) != 0)
            g++;
        if (g == n_groups) {
            if (n_groups == MAX_GROUPS) {
                fail("more than %d parameter combinations", MAX_GROUPS);
                continue;
            }
            snprintf(groups[n_groups++].params, sizeof groups[0].params, "%s", t->params);
        }
        groups[g].members[groups[g].n++] = i;
    }
    printf("\n%6s %10s %8s  %-24s %s\n", "seeds", "mean", "sd", "per seed", "params");
    for (int g = 0; g < n_groups; g++) {
        struct group *gr = &groups[g];
        double sum = 0, sq = 0;
        char per[256] = "";
        size_t len = 0;
        for (int k = 0; k < gr->n; k++) {
            double s = trials[gr->members[k]].score;
            sum += s;
            if (len < sizeof per)
                len += (size_t)snprintf(per + len, sizeof per - len, "%s%.4f", k ? " " : "", s);
        }
        gr->mean = sum / gr->n;
        for (int k = 0; k < gr->n; k++) {
            double dv = trials[gr->members[k]].score - gr->mean;
            sq += dv * dv;
        }
        double sd = gr->n > 1 ? sqrt(sq / (gr->n - 1)) : 0;
        printf("%6d %10.4f %8.4f  %-24s %s\n", gr->n, gr->mean, sd, per,
               gr->params[0] ? gr->params : "-");
        if (!isnan(min_mean)) {
            if (!(gr->mean >= min_mean))
                fail("mean final %s %.4f of [%s] is below the threshold %.4f", metric, gr->mean,
                     gr->params[0] ? gr->params : "-", min_mean);
            else
                printf("ok: mean final %s %.4f >= %.4f\n", metric, gr->mean, min_mean);
        }
    }

    /* the group whose parameter P has value V (-1 if none) */
#define FIND_GROUP(out, P, V)                                                                     \
    do {                                                                                          \
        out = -1;                                                                                 \
        for (int g_ = 0; g_ < n_groups && out < 0; g_++) {                                        \
            const struct field *f_ = get(&trials[groups[g_].members[0]].p, P);                    \
            if (f_ && same_value(f_->val, V))                                                     \
                out = g_;                                                                         \
        }                                                                                         \
    } while (0)

    for (int w = 0; w < n_where; w++) {
        char p[256];
        snprintf(p, sizeof p, "%s", where_param[w]);
        char *eq = strchr(p, '=');
        *eq = '\0';
        int g;
        FIND_GROUP(g, p, eq + 1);
        if (g < 0)
            fail("no trial with %s = %s", p, eq + 1);
        else if (!(groups[g].mean >= where_min[w]))
            fail("mean final %s %.4f of %s = %s is below the threshold %.4f", metric,
                 groups[g].mean, p, eq + 1, where_min[w]);
        else
            printf("ok: %s = %s: mean final %s %.4f >= %.4f\n", p, eq + 1, metric,
                   groups[g].mean, where_min[w]);
    }
    if (better) {
        char p[256];
        snprintf(p, sizeof p, "%s", better);
        char *eq = strchr(p, '='), *comma = strchr(p, ',');
        *eq = '\0';
        *comma = '\0';
        const char *hi = eq + 1, *lo = comma + 1;
        int gh, gl;
        FIND_GROUP(gh, p, hi);
        FIND_GROUP(gl, p, lo);
        if (gh < 0 || gl < 0)
            fail("no trial with %s = %s", p, gh < 0 ? hi : lo);
        else if (!(groups[gh].mean > groups[gl].mean + margin))
            fail("%s = %s (mean %s %.4f) does not beat %s = %s (mean %.4f) by more than %.4f", p,
                 hi, metric, groups[gh].mean, p, lo, groups[gl].mean, margin);
        else
            printf("ok: %s = %s (mean %s %.4f) beats %s = %s (mean %.4f) by %.4f > %.4f\n", p, hi,
                   metric, groups[gh].mean, p, lo, groups[gl].mean,
                   groups[gh].mean - groups[gl].mean, margin);
    }
    for (int i = 0; i < n_ids; i++)
        free(ids[i]);
    printf("%s\n", g_failures ? "blackbox check FAILED" : "blackbox check passed");
    return g_failures ? 1 : 0;
}
