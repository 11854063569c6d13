/* tests/unit/test_report.c - `dsnn-host report` (host/report.c) and its JSON reader
 * (host/json.c) on a results directory written by hand: the numbers of the trial and group
 * tables, the statuses from the journal, the HTML page (SVG polylines per trial, density
 * plots, self-contained), malformed lines (error naming file and line, exit code) and bad
 * options. */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "json.h"
#include "report.h"

#define ASSERT_HAS(msg, sub)                                                                       \
    do {                                                                                           \
        const char *m_ = (msg), *s_ = (sub);                                                       \
        bool ok_ = m_ && strstr(m_, s_) != NULL;                                                   \
        if (!ok_)                                                                                  \
            fprintf(stderr, "\n    %s:%d: \"%s\" does not contain \"%s\"\n", __FILE__, __LINE__,   \
                    m_ ? m_ : "(null)", s_);                                                       \
        CU_ASSERT(ok_);                                                                            \
    } while (0)

#define ASSERT_LACKS(msg, sub)                                                                     \
    do {                                                                                           \
        const char *m_ = (msg), *s_ = (sub);                                                       \
        bool ok_ = m_ && strstr(m_, s_) == NULL;                                                   \
        if (!ok_)                                                                                  \
            fprintf(stderr, "\n    %s:%d: text contains \"%s\"\n", __FILE__, __LINE__, s_);        \
        CU_ASSERT(ok_);                                                                            \
    } while (0)

/* ---- a results directory written by hand ---- */

static char g_root[256]; /* mkdtemp'd */

static void write_file(const char *dir, const char *rel, const char *text)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    char *slash = strrchr(path, '/');
    *slash = '\0';
    mkdir(path, 0755);
    *slash = '/';
    FILE *f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs(text, f);
    fclose(f);
}

static char *read_all(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) == (size_t)n)
        buf[n] = '\0';
    fclose(f);
    return buf;
}

static void rm_rf(const char *dir)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "\n    cannot remove %s\n", dir);
}

static void cleanup(void)
{
    if (g_root[0])
        rm_rf(g_root);
}

static const char *root(void)
{
    if (!g_root[0]) {
        snprintf(g_root, sizeof g_root, "/tmp/dsnn-test-report-XXXXXX");
        if (!mkdtemp(g_root))
            g_root[0] = '\0';
        atexit(cleanup);
    }
    return g_root;
}

/* One epoch line of result.json (density only when dens1 >= 0). */
static void epoch_line(char *buf, size_t size, const char *id, int e, double acc, double t,
                       double dens1)
{
    size_t len = (size_t)snprintf(buf, size,
                                  "{\"trial_id\": \"%s\", \"epoch\": %d, \"training_iteration\": "
                                  "%d, \"train_loss\": 0.5, \"val_acc\": %g, \"val_loss\": %g",
                                  id, e, e + 1, acc, 1 - acc);
    if (dens1 >= 0)
        len += (size_t)snprintf(buf + len, size - len,
                                ", \"density_fc1\": %g, \"density_fc2\": 0.25", dens1);
    snprintf(buf + len, size - len, ", \"time_this_epoch_s\": 1, \"time_total_s\": %g}\n", t);
}

struct htrial {
    const char *id;
    const char *params;
    int n;
    double acc[3], time[3];
    bool density;
};

/* T0, T1, T5: on_perc 0.02; T2, T3, T4: 0.05; T6: 0.1 (pending, no result.json). */
static const struct htrial k_trials[] = {
    {"trial_00000", "{\"model.on_perc\": 0.02, \"model.lr\": 0.1, \"trial_seed\": 11}", 3,
     {0.5, 0.7, 0.6}, {1.1, 2.2, 3.3}, true},
    {"trial_00001", "{\"model.on_perc\": 0.02, \"model.lr\": 0.01, \"trial_seed\": 12}", 3,
     {0.6, 0.8, 0.9}, {2, 4, 6.1}, true},
    {"trial_00002", "{\"model.on_perc\": 0.05, \"model.lr\": 0.1, \"trial_seed\": 13}", 3,
     {0.4, 0.5, 0.55}, {1, 2, 3}, true},
    {"trial_00003", "{\"model.on_perc\": 0.05, \"model.lr\": 0.01, \"trial_seed\": 14}", 3,
     {0.45, 0.65, 0.6}, {1, 2, 4}, true},
    {"trial_00004", "{\"model.on_perc\": 0.05, \"model.lr\": 0.1, \"trial_seed\": 15}", 1,
     {0.3}, {1}, false},
    {"trial_00005", "{\"model.on_perc\": 0.02, \"model.lr\": 0.1, \"trial_seed\": "
                    "18446744073709551615}",
     2, {0.2, 0.4}, {1, 2}, false},
    {"trial_00006", "{\"model.on_perc\": 0.1, \"model.lr\": 0.1, \"trial_seed\": 17}", 0,
     {0}, {0}, false},
};
#define N_TRIALS (sizeof k_trials / sizeof k_trials[0])

static const char *const k_journal =
    "{\"time\": \"t\", \"event\": \"experiment_started\", \"name\": \"hand\", \"trials\": 7}\n"
    "{\"time\": \"t\", \"event\": \"trial_created\", \"trial_id\": \"trial_00000\", \"params\": \"\"}\n"
    "{\"time\": \"t\", \"event\": \"trial_created\", \"trial_id\": \"trial_00001\", \"params\": \"\"}\n"
    "{\"time\": \"t\", \"event\": \"trial_created\", \"trial_id\": \"trial_00002\", \"params\": \"\"}\n"
    "{\"time\": \"t\", \"event\": \"trial_created\", \"trial_id\": \"trial_00003\", \"params\": \"\"}\n"
    "{\"time\": \"t\", \"event\": \"trial_created\", \"trial_id\": \"trial_00004\", \"params\": \"\"}\n"
    "\n"
    "{\"time\": \"t\", \"event\": \"trial_created\", \"trial_id\": \"trial_00005\", \"params\": \"\"}\n"
    "{\"time\": \"t\", \"event\": \"trial_created\", \"trial_id\": \"trial_00006\", \"params\": \"\"}\n"
    "{\"time\": \"t\", \"event\": \"trial_started\", \"trial_id\": \"trial_00000\"}\n"
    "{\"time\": \"t\", \"event\": \"trial_finished\", \"trial_id\": \"trial_00000\", \"status\": "
    "\"TERMINATED\", \"epochs\": 3, \"error\": \"\"}\n"
    "{\"time\": \"t\", \"event\": \"trial_finished\", \"trial_id\": \"trial_00001\", \"status\": "
    "\"TERMINATED\", \"epochs\": 3, \"error\": \"\"}\n"
    "{\"time\": \"t\", \"event\": \"trial_finished\", \"trial_id\": \"trial_00002\", \"status\": "
    "\"TERMINATED\", \"epochs\": 3, \"error\": \"\"}\n"
    "{\"time\": \"t\", \"event\": \"trial_finished\", \"trial_id\": \"trial_00003\", \"status\": "
    "\"TERMINATED\", \"epochs\": 3, \"error\": \"\"}\n"
    "{\"time\": \"t\", \"event\": \"trial_started\", \"trial_id\": \"trial_00004\"}\n"
    "{\"time\": \"t\", \"event\": \"trial_finished\", \"trial_id\": \"trial_00004\", \"status\": "
    "\"ERROR\", \"epochs\": 1, \"error\": \"killed by signal 11\"}\n"
    "{\"time\": \"t\", \"event\": \"trial_started\", \"trial_id\": \"trial_00005\"}\n"
    "{\"time\": \"t\", \"event\": \"trial_result\", \"trial_id\": \"trial_00005\", \"epoch\": 1, "
    "\"val_acc\": 0.4}\n";

/* Writes <root>/<name>/ with the 7 trials (and experiment.cfg if cfg); its path into dir. */
static void make_results(const char *name, char *dir, size_t size, const char *cfg)
{
    snprintf(dir, size, "%s/%s", root(), name);
    mkdir(dir, 0755);
    if (cfg)
        write_file(dir, "experiment.cfg", cfg);
    write_file(dir, "journal.jsonl", k_journal);
    write_file(dir, "notes/readme.txt", "not a trial folder\n");
    for (size_t i = 0; i < N_TRIALS; i++) {
        const struct htrial *t = &k_trials[i];
        char rel[256], text[4096];
        snprintf(rel, sizeof rel, "%s/params.json", t->id);
        snprintf(text, sizeof text, "%s\n", t->params);
        write_file(dir, rel, text);
        if (t->n == 0)
            continue;
        size_t len = 0;
        for (int e = 0; e < t->n; e++) {
            epoch_line(text + len, sizeof text - len, t->id, e, t->acc[e], t->time[e],
                       t->density ? 1.0 - 0.1 * e - 0.01 * (double)i : -1);
            len += strlen(text + len);
        }
        snprintf(rel, sizeof rel, "%s/result.json", t->id);
        write_file(dir, rel, text);
    }
}

/* The report printed into a string (caller frees). Not inlined: GCC 12 then takes the
 * returned buffer for the address of the local open_memstream writes (-Wdangling-pointer). */
__attribute__((noinline)) static char *print_report(const char *dir, const char *const *group_by, size_t n_group_by,
                          enum dsnn_status *st, struct dsnn_error *err, const char *html)
{
    char *buf = NULL;
    size_t size = 0;
    FILE *out = open_memstream(&buf, &size);
    CU_ASSERT_PTR_NOT_NULL_FATAL(out);
    struct dsnn_report_options opt = {
        .group_by = group_by, .n_group_by = n_group_by, .html_path = html};
    *st = dsnn_report_run(dir, &opt, out, NULL, err);
    fclose(out);
    return buf;
}

/* The line of text that starts with prefix, as a string (static). */
static const char *line_starting(const char *text, const char *prefix)
{
    static char line[1024];
    for (const char *p = text; p && *p;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        if (strncmp(p, prefix, strlen(prefix)) == 0) {
            snprintf(line, sizeof line, "%.*s", (int)len, p);
            return line;
        }
        p = nl ? nl + 1 : NULL;
    }
    return "";
}

/* Whitespace-separated fields of a line into f (at most max); returns the count. */
static int fields(const char *line, char f[][64], int max)
{
    int n = 0;
    char copy[1024];
    snprintf(copy, sizeof copy, "%s", line);
    for (char *save = NULL, *tok = strtok_r(copy, " ", &save); tok && n < max;
         tok = strtok_r(NULL, " ", &save))
        snprintf(f[n++], 64, "%s", tok);
    return n;
}

/* ---- tests: JSON reader ---- */

static void test_json_reader(void)
{
    struct dsnn_json_object o;
    struct dsnn_error err = {0};
    const char *text = "  {\"a\": 1, \"b\": -2.5e-3, \"s\": \"x\\\"y\\\\z\\n\\u00e9\\ud83d\\ude00\","
                       " \"arr\": [300, 100], \"obj\": {\"k\": [true, null]}, \"t\": true,"
                       " \"f\": false, \"n\": null, \"big\": 18446744073709551615, \"a\": 3}  ";
    CU_ASSERT_EQUAL_FATAL(dsnn_json_parse_object(text, strlen(text), &o, &err), DSNN_OK);
    CU_ASSERT_EQUAL(o.n, 10);
    double v = 0;
    CU_ASSERT_TRUE(dsnn_json_number(&o, "a", &v));
    CU_ASSERT_EQUAL(v, 3); /* duplicates: the last wins */
    CU_ASSERT_TRUE(dsnn_json_number(&o, "b", &v));
    CU_ASSERT_EQUAL(v, -2.5e-3);
    CU_ASSERT_STRING_EQUAL(dsnn_json_find(&o, "b")->text, "-2.5e-3");
    CU_ASSERT_STRING_EQUAL(dsnn_json_string_at(&o, "s"), "x\"y\\z\n\xc3\xa9\xf0\x9f\x98\x80");
    CU_ASSERT_EQUAL(dsnn_json_find(&o, "arr")->type, DSNN_JSON_ARRAY);
    CU_ASSERT_STRING_EQUAL(dsnn_json_find(&o, "arr")->text, "[300, 100]");
    CU_ASSERT_EQUAL(dsnn_json_find(&o, "obj")->type, DSNN_JSON_OBJECT);
    CU_ASSERT_STRING_EQUAL(dsnn_json_find(&o, "obj")->text, "{\"k\": [true, null]}");
    CU_ASSERT_EQUAL(dsnn_json_find(&o, "t")->type, DSNN_JSON_BOOL);
    CU_ASSERT_EQUAL(dsnn_json_find(&o, "t")->number, 1);
    CU_ASSERT_EQUAL(dsnn_json_find(&o, "n")->type, DSNN_JSON_NULL);
    CU_ASSERT_FALSE(dsnn_json_number(&o, "n", &v)); /* null is not a number (NaN in result.json) */
    CU_ASSERT_FALSE(dsnn_json_number(&o, "s", &v));
    CU_ASSERT_FALSE(dsnn_json_number(&o, "missing", &v));
    CU_ASSERT_PTR_NULL(dsnn_json_string_at(&o, "a"));
    CU_ASSERT_STRING_EQUAL(dsnn_json_find(&o, "big")->text, "18446744073709551615"); /* exact */
    dsnn_json_object_free(&o);
    dsnn_json_object_free(&o); /* twice is harmless */
    CU_ASSERT_EQUAL(dsnn_json_parse_object("{}", 2, &o, &err), DSNN_OK);
    CU_ASSERT_EQUAL(o.n, 0);
    dsnn_json_object_free(&o);

    static const struct {
        const char *text, *want;
    } bad[] = {
        {"", "column 1: expected '{'"},
        {"[1, 2]", "column 1: expected '{'"},
        {"{\"a\" 1}", "column 6: expected ':'"},
        {"{\"a\": 1,, \"b\": 2}", "column 9: expected a string"},
        {"{\"a\": 1", "column 8: expected ',' or '}', found the end"},
        {"{\"a\": 01}", "column 8: expected ',' or '}'"},
        {"{\"a\": 1.}", "column 9: expected a digit after '.'"},
        {"{\"a\": -}", "column 8: expected a digit"},
        {"{\"a\": tru}", "column 7: expected a value"},
        {"{\"a\": NaN}", "column 7: expected a value"},
        {"{\"a\": \"x}", "unterminated string"},
        {"{\"a\": \"\\x\"}", "invalid escape"},
        {"{\"a\": \"\\u12g4\"}", "4 hex digits"},
        {"{\"a\": \"\\ud800x\"}", "low surrogate"},
        {"{\"a\": \"tab\there\"}", "control character"},
        {"{\"a\": [1, 2}", "expected ',' or ']'"},
        {"{\"a\": 1} x", "column 10: expected the end of the line"},
        {"{a: 1}", "column 2: expected a string"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memset(&err, 0, sizeof err);
        CU_ASSERT_EQUAL(dsnn_json_parse_object(bad[i].text, strlen(bad[i].text), &o, &err),
                        DSNN_ERR_FORMAT);
        ASSERT_HAS(err.msg, bad[i].want);
        CU_ASSERT_EQUAL(o.n, 0);
    }
    /* nesting is bounded */
    char deep[300] = "{\"a\": ";
    for (int i = 0; i < 100; i++)
        strcat(deep, "[");
    memset(&err, 0, sizeof err);
    CU_ASSERT_EQUAL(dsnn_json_parse_object(deep, strlen(deep), &o, &err), DSNN_ERR_FORMAT);
    ASSERT_HAS(err.msg, "64 levels");
}

/* ---- tests: report ---- */

static void test_trial_table(void)
{
    char dir[512];
    make_results("hand", dir, sizeof dir,
                 "experiment = { name = \"hand-made\"; metric = \"val_acc\"; mode = \"max\"; "
                 "epochs = 3; };\n");
    enum dsnn_status st;
    struct dsnn_error err = {0};
    char *out = print_report(dir, NULL, 0, &st, &err, NULL);
    if (st != DSNN_OK)
        fprintf(stderr, "\n    report: %s\n", err.msg);
    CU_ASSERT_EQUAL_FATAL(st, DSNN_OK);
    ASSERT_HAS(out, "experiment 'hand-made': 7 trials, metric val_acc (mode max)");
    /* header: trial status epochs "val_acc max" "val_acc last" time_s model.on_perc model.lr */
    const char *header = line_starting(out, "trial ");
    ASSERT_HAS(header, "val_acc max");
    ASSERT_HAS(header, "val_acc last");
    ASSERT_HAS(header, "model.on_perc");
    ASSERT_LACKS(header, "trial_seed");
    static const struct {
        const char *id, *status, *epochs, *max, *last, *time, *on_perc, *lr;
    } want[] = {
        {"trial_00000", "TERMINATED", "3", "0.7000", "0.6000", "3.3", "0.02", "0.1"},
        {"trial_00001", "TERMINATED", "3", "0.9000", "0.9000", "6.1", "0.02", "0.01"},
        {"trial_00002", "TERMINATED", "3", "0.5500", "0.5500", "3.0", "0.05", "0.1"},
        {"trial_00003", "TERMINATED", "3", "0.6500", "0.6000", "4.0", "0.05", "0.01"},
        {"trial_00004", "ERROR", "1", "0.3000", "0.3000", "1.0", "0.05", "0.1"},
        {"trial_00005", "RUNNING", "2", "0.4000", "0.4000", "2.0", "0.02", "0.1"},
        {"trial_00006", "PENDING", "0", "-", "-", "-", "0.1", "0.1"},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        char f[16][64];
        int n = fields(line_starting(out, want[i].id), f, 16);
        CU_ASSERT_EQUAL_FATAL(n, 8);
        CU_ASSERT_STRING_EQUAL(f[1], want[i].status);
        CU_ASSERT_STRING_EQUAL(f[2], want[i].epochs);
        CU_ASSERT_STRING_EQUAL(f[3], want[i].max);
        CU_ASSERT_STRING_EQUAL(f[4], want[i].last);
        CU_ASSERT_STRING_EQUAL(f[5], want[i].time);
        CU_ASSERT_STRING_EQUAL(f[6], want[i].on_perc);
        CU_ASSERT_STRING_EQUAL(f[7], want[i].lr);
    }
    ASSERT_LACKS(out, "notes"); /* a folder without params.json / result.json is no trial */
    ASSERT_HAS(out, "HTML report: ");
    free(out);
    /* the default HTML path */
    char html[600];
    snprintf(html, sizeof html, "%s/report.html", dir);
    struct stat sb;
    CU_ASSERT_EQUAL(stat(html, &sb), 0);
}

static void test_groups(void)
{
    char dir[512];
    make_results("groups", dir, sizeof dir, "experiment = { name = \"g\"; };\n");
    enum dsnn_status st;
    struct dsnn_error err = {0};
    const char *by[] = {"model.on_perc"};
    char *out = print_report(dir, by, 1, &st, &err, NULL);
    CU_ASSERT_EQUAL_FATAL(st, DSNN_OK);
    ASSERT_HAS(out, "grouped by model.on_perc: 3 groups");
    /* 0.02: T0, T1, T5: max .7 .9 .4, last .6 .9 .4, epochs 3 3 2, time 3.3 6.1 2.0 */
    const char *g1 = strstr(out, "grouped by");
    CU_ASSERT_PTR_NOT_NULL_FATAL(g1);
    char f[24][64];
    int n = fields(line_starting(g1, "0.02 "), f, 24);
    CU_ASSERT_EQUAL_FATAL(n, 14);
    CU_ASSERT_STRING_EQUAL(f[1], "3");
    CU_ASSERT_STRING_EQUAL(f[2], "0.6667");
    CU_ASSERT_STRING_EQUAL(f[4], "0.2517");
    CU_ASSERT_STRING_EQUAL(f[5], "0.6333");
    CU_ASSERT_STRING_EQUAL(f[7], "0.2517");
    CU_ASSERT_STRING_EQUAL(f[8], "2.7");
    CU_ASSERT_STRING_EQUAL(f[10], "0.6");
    CU_ASSERT_STRING_EQUAL(f[11], "3.8");
    CU_ASSERT_STRING_EQUAL(f[13], "2.1");
    /* 0.05: T2, T3, T4: max .55 .65 .3 -> .5 +- .1803; last .55 .6 .3 -> .4833 +- .1607 */
    n = fields(line_starting(g1, "0.05 "), f, 24);
    CU_ASSERT_EQUAL_FATAL(n, 14);
    CU_ASSERT_STRING_EQUAL(f[2], "0.5000");
    CU_ASSERT_STRING_EQUAL(f[4], "0.1803");
    CU_ASSERT_STRING_EQUAL(f[5], "0.4833");
    CU_ASSERT_STRING_EQUAL(f[7], "0.1607");
    CU_ASSERT_STRING_EQUAL(f[8], "2.3");
    CU_ASSERT_STRING_EQUAL(f[10], "1.2");
    CU_ASSERT_STRING_EQUAL(f[11], "2.7");
    CU_ASSERT_STRING_EQUAL(f[13], "1.5");
    /* 0.1: one trial without results */
    n = fields(line_starting(g1, "0.1 "), f, 24);
    CU_ASSERT_EQUAL_FATAL(n, 14);
    CU_ASSERT_STRING_EQUAL(f[1], "1");
    CU_ASSERT_STRING_EQUAL(f[2], "-");
    CU_ASSERT_STRING_EQUAL(f[8], "0.0");
    free(out);

    /* "all": every parameter but the seed -> (on_perc, lr) pairs: (0.02, 0.1) T0 T5,
     * (0.02, 0.01) T1, (0.05, 0.1) T2 T4, (0.05, 0.01) T3, (0.1, 0.1) T6 */
    const char *all[] = {"all"};
    char *out_all = print_report(dir, all, 1, &st, &err, NULL);
    CU_ASSERT_EQUAL_FATAL(st, DSNN_OK);
    ASSERT_HAS(out_all, "grouped by model.on_perc, model.lr: 5 groups");
    const char *g2 = strstr(out_all, "grouped by");
    CU_ASSERT_PTR_NOT_NULL_FATAL(g2);
    n = fields(line_starting(g2, "0.02  "), f, 24);
    CU_ASSERT_EQUAL_FATAL(n, 15);
    CU_ASSERT_STRING_EQUAL(f[1], "0.1");
    CU_ASSERT_STRING_EQUAL(f[2], "2");
    CU_ASSERT_STRING_EQUAL(f[3], "0.5500"); /* max .7, .4 */
    free(out_all);

    /* two keys given, one repeated: grouped once by each */
    const char *two[] = {"model.lr", "model.lr", "model.on_perc"};
    char *out_two = print_report(dir, two, 3, &st, &err, NULL);
    CU_ASSERT_EQUAL(st, DSNN_OK);
    ASSERT_HAS(out_two, "grouped by model.lr, model.on_perc: 5 groups");
    free(out_two);

    /* an unknown key */
    const char *bad[] = {"model.on_perk"};
    char *out_bad = print_report(dir, bad, 1, &st, &err, NULL);
    CU_ASSERT_EQUAL(st, DSNN_ERR_INVALID);
    ASSERT_HAS(err.msg, "--group-by 'model.on_perk'");
    ASSERT_HAS(err.msg, "model.on_perc, model.lr");
    free(out_bad);
}

/* The text between the n-th (0-based) "<svg class=\"chart <kind>" and its "</svg>". */
static char *svg_of(const char *html, const char *kind, int nth)
{
    char tag[64];
    snprintf(tag, sizeof tag, "<svg class=\"chart %s\"", kind);
    const char *p = html;
    for (int i = 0; p && i <= nth; i++) {
        p = strstr(p, tag);
        if (p && i < nth)
            p += strlen(tag);
    }
    if (!p)
        return NULL;
    const char *end = strstr(p, "</svg>");
    if (!end)
        return NULL;
    size_t n = (size_t)(end - p);
    char *s = malloc(n + 1);
    memcpy(s, p, n);
    s[n] = '\0';
    return s;
}

static int count(const char *text, const char *needle)
{
    int n = 0;
    for (const char *p = text; p && (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

static void test_html(void)
{
    char dir[512], html_path[600];
    make_results("html", dir, sizeof dir, "experiment = { name = \"h<&>\"; };\n");
    snprintf(html_path, sizeof html_path, "%s/elsewhere.html", root());
    enum dsnn_status st;
    struct dsnn_error err = {0};
    const char *by[] = {"model.on_perc"};
    char *out = print_report(dir, by, 1, &st, &err, html_path);
    CU_ASSERT_EQUAL_FATAL(st, DSNN_OK);
    ASSERT_HAS(out, html_path);
    free(out);
    char *html = read_all(html_path);
    CU_ASSERT_PTR_NOT_NULL_FATAL(html);
    ASSERT_HAS(html, "<!DOCTYPE html>");
    ASSERT_HAS(html, "<title>dsnn report: h&lt;&amp;&gt;</title>"); /* escaped */
    /* self-contained: no script, no external resource */
    ASSERT_LACKS(html, "<script");
    ASSERT_LACKS(html, "src=");
    ASSERT_LACKS(html, "href=");
    ASSERT_LACKS(html, "@import");
    CU_ASSERT_EQUAL(count(html, "http"), count(html, "xmlns=\"http://www.w3.org/2000/svg\""));
    /* tables */
    CU_ASSERT_EQUAL(count(html, "<table>"), 2);
    ASSERT_HAS(html, "<td class=\"num\">0.6667 ± 0.2517</td>");
    /* the metric plot: one polyline per trial with values (T6 has none) */
    CU_ASSERT_EQUAL(count(html, "<svg class=\"chart metric\""), 1);
    char *svg = svg_of(html, "metric", 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(svg);
    CU_ASSERT_EQUAL(count(svg, "<polyline"), 6);
    ASSERT_HAS(svg, "data-trial=\"trial_00000\"");
    ASSERT_LACKS(svg, "data-trial=\"trial_00006\"");
    /* grouped colours: T0, T1 and T5 (0.02) share the first colour, T2..T4 the second */
    CU_ASSERT_EQUAL(count(svg, "stroke=\"#1f77b4\""), 3);
    CU_ASSERT_EQUAL(count(svg, "stroke=\"#ff7f0e\""), 3);
    /* T0's points: x = epochs 1..3, three points */
    const char *pl = strstr(svg, "data-trial=\"trial_00000\"");
    const char *pts = pl ? strstr(pl, "points=\"") : NULL;
    CU_ASSERT_PTR_NOT_NULL_FATAL(pts);
    const char *endq = strchr(pts + 8, '"');
    int commas = 0;
    for (const char *q = pts + 8; q < endq; q++)
        commas += *q == ',';
    CU_ASSERT_EQUAL(commas, 3);
    free(svg);
    /* density per layer: density_fc1 and density_fc2, each with T0..T3 */
    CU_ASSERT_EQUAL(count(html, "<svg class=\"chart density\""), 2);
    for (int k = 0; k < 2; k++) {
        svg = svg_of(html, "density", k);
        CU_ASSERT_PTR_NOT_NULL_FATAL(svg);
        CU_ASSERT_EQUAL(count(svg, "<polyline"), 4);
        ASSERT_HAS(svg, k == 0 ? "data-metric=\"density_fc1\"" : "data-metric=\"density_fc2\"");
        free(svg);
    }
    /* legend per group */
    ASSERT_HAS(html, "model.on_perc=0.02 (3 trials)");
    free(html);
}

static void test_html_pbt_jumps(void)
{
    /* A PBT trial that went on from the checkpoint of a source behind it: its epochs go
     * 1, 2, 3, 4, then 3, 4 again. Its curve is two polylines joined by a dashed jump. */
    char dir[512];
    snprintf(dir, sizeof dir, "%s/pbtjump", root());
    mkdir(dir, 0755);
    static const int it[] = {1, 2, 3, 4, 3, 4};
    char text[4096], line[512];
    size_t len = 0;
    for (int k = 0; k < 6; k++) {
        epoch_line(line, sizeof line, "trial_00000", it[k] - 1, 0.1 * (k + 1), k + 1, -1);
        len += (size_t)snprintf(text + len, sizeof text - len, "%s", line);
    }
    write_file(dir, "trial_00000/result.json", text);
    epoch_line(line, sizeof line, "trial_00001", 0, 0.5, 1, -1);
    write_file(dir, "trial_00001/result.json", line);
    enum dsnn_status st;
    struct dsnn_error err = {0};
    char *out = print_report(dir, NULL, 0, &st, &err, NULL);
    CU_ASSERT_EQUAL_FATAL(st, DSNN_OK);
    char f[16][64];
    CU_ASSERT_EQUAL_FATAL(fields(line_starting(out, "trial_00000"), f, 16), 6);
    CU_ASSERT_STRING_EQUAL(f[2], "4"); /* epochs: training_iteration of the last result */
    free(out);
    char path[600];
    snprintf(path, sizeof path, "%s/report.html", dir);
    char *html = read_all(path);
    char *svg = svg_of(html, "metric", 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(svg);
    CU_ASSERT_EQUAL(count(svg, "<polyline"), 3);
    CU_ASSERT_EQUAL(count(svg, "data-trial=\"trial_00000\" data-segment=\"1\""), 1);
    CU_ASSERT_EQUAL(count(svg, "<path class=\"jump\""), 1);
    free(svg);
    free(html);
}

static void test_mode_min_and_missing(void)
{
    /* mode min on val_loss: best = min; without journal.jsonl the status is unknown ("-") */
    char dir[512];
    make_results("minmode", dir, sizeof dir,
                 "experiment = { metric = \"val_loss\"; mode = \"min\"; };\n");
    char jpath[600];
    snprintf(jpath, sizeof jpath, "%s/journal.jsonl", dir);
    unlink(jpath);
    enum dsnn_status st;
    struct dsnn_error err = {0};
    char *out = print_report(dir, NULL, 0, &st, &err, NULL);
    CU_ASSERT_EQUAL_FATAL(st, DSNN_OK);
    ASSERT_HAS(out, "experiment 'minmode'"); /* no experiment.name: the folder's name */
    ASSERT_HAS(line_starting(out, "trial "), "val_loss min");
    char f[16][64];
    CU_ASSERT_EQUAL_FATAL(fields(line_starting(out, "trial_00001"), f, 16), 8);
    CU_ASSERT_STRING_EQUAL(f[1], "-");
    CU_ASSERT_STRING_EQUAL(f[3], "0.1000"); /* min of 0.4, 0.2, 0.1 */
    CU_ASSERT_STRING_EQUAL(f[4], "0.1000");
    free(out);
    /* no experiment.cfg: val_acc, max */
    snprintf(jpath, sizeof jpath, "%s/experiment.cfg", dir);
    unlink(jpath);
    out = print_report(dir, NULL, 0, &st, &err, NULL);
    CU_ASSERT_EQUAL(st, DSNN_OK);
    ASSERT_HAS(out, "metric val_acc (mode max)");
    free(out);
    /* an interrupted experiment: the running trial is INTERRUPTED */
    char text[4096];
    snprintf(text, sizeof text, "%s{\"event\": \"experiment_interrupted\"}\n", k_journal);
    write_file(dir, "journal.jsonl", text);
    out = print_report(dir, NULL, 0, &st, &err, NULL);
    CU_ASSERT_EQUAL(st, DSNN_OK);
    CU_ASSERT_EQUAL_FATAL(fields(line_starting(out, "trial_00005"), f, 16), 8);
    CU_ASSERT_STRING_EQUAL(f[1], "INTERRUPTED");
    free(out);
}

static void test_malformed(void)
{
    char dir[512];
    make_results("bad", dir, sizeof dir, NULL);
    /* line 2 of trial_00002/result.json is broken */
    char text[4096], l1[1024], l3[1024];
    epoch_line(l1, sizeof l1, "trial_00002", 0, 0.4, 1, -1);
    epoch_line(l3, sizeof l3, "trial_00002", 2, 0.5, 3, -1);
    snprintf(text, sizeof text, "%s{\"trial_id\": \"trial_00002\", \"val_acc\": 0.5,, }\n%s", l1,
             l3);
    write_file(dir, "trial_00002/result.json", text);
    enum dsnn_status st;
    struct dsnn_error err = {0};
    char *out = print_report(dir, NULL, 0, &st, &err, NULL);
    CU_ASSERT_EQUAL(st, DSNN_ERR_FORMAT);
    ASSERT_HAS(err.msg, "bad/trial_00002/result.json:2: malformed JSON: column 44: expected a "
                        "string, found ','");
    free(out);
    char html[600];
    snprintf(html, sizeof html, "%s/report.html", dir);
    struct stat sb;
    CU_ASSERT_NOT_EQUAL(stat(html, &sb), 0); /* nothing written */

    /* through dsnn-host: the message on stderr, exit code 5 */
    char cmd[2048], errfile[600];
    snprintf(errfile, sizeof errfile, "%s/stderr.txt", root());
    snprintf(cmd, sizeof cmd, "'%s/bin/dsnn-host' report '%s' > /dev/null 2> '%s'",
             dsnn_test_build_dir(), dir, errfile);
    int rc = system(cmd);
    CU_ASSERT_TRUE(WIFEXITED(rc));
    CU_ASSERT_EQUAL(WEXITSTATUS(rc), 5);
    char *msg = read_all(errfile);
    ASSERT_HAS(msg, "dsnn-host: report: ");
    ASSERT_HAS(msg, "trial_00002/result.json:2: malformed JSON");
    free(msg);

    /* a malformed journal line */
    make_results("badjournal", dir, sizeof dir, NULL);
    snprintf(text, sizeof text, "%s{\"event\": \"trial_finished\", \"trial_id\": \"trial_00005\"\n",
             k_journal);
    write_file(dir, "journal.jsonl", text);
    out = print_report(dir, NULL, 0, &st, &err, NULL);
    CU_ASSERT_EQUAL(st, DSNN_ERR_FORMAT);
    ASSERT_HAS(err.msg, "badjournal/journal.jsonl:19: malformed JSON: column 54: expected ',' or "
                        "'}', found the end of the line");
    free(out);

    /* a last line cut short by a crash (no newline) is ignored; with its newline it is an
     * error */
    make_results("torn", dir, sizeof dir, NULL);
    epoch_line(l1, sizeof l1, "trial_00001", 0, 0.6, 1, -1);
    snprintf(text, sizeof text, "%s{\"trial_id\": \"trial_00001\", \"epoch\": 1, \"val_a", l1);
    write_file(dir, "trial_00001/result.json", text);
    out = print_report(dir, NULL, 0, &st, &err, NULL);
    CU_ASSERT_EQUAL(st, DSNN_OK);
    char f[16][64];
    CU_ASSERT_EQUAL_FATAL(fields(line_starting(out, "trial_00001"), f, 16), 8);
    CU_ASSERT_STRING_EQUAL(f[2], "1"); /* one epoch */
    CU_ASSERT_STRING_EQUAL(f[3], "0.6000");
    free(out);
    strcat(text, "\n");
    write_file(dir, "trial_00001/result.json", text);
    out = print_report(dir, NULL, 0, &st, &err, NULL);
    CU_ASSERT_EQUAL(st, DSNN_ERR_FORMAT);
    ASSERT_HAS(err.msg, "torn/trial_00001/result.json:2: malformed JSON");
    free(out);

    /* a params.json with two objects */
    make_results("badparams", dir, sizeof dir, NULL);
    write_file(dir, "trial_00001/params.json", "{\"a\": 1}\n{\"b\": 2}\n");
    out = print_report(dir, NULL, 0, &st, &err, NULL);
    CU_ASSERT_EQUAL(st, DSNN_ERR_FORMAT);
    ASSERT_HAS(err.msg, "trial_00001/params.json:2:");
    free(out);
}

static void test_command_line(void)
{
    char dir[512];
    make_results("cli", dir, sizeof dir, "experiment = { name = \"cli\"; };\n");
    char cmd[2048], outfile[600];
    snprintf(outfile, sizeof outfile, "%s/stdout.txt", root());
    struct {
        const char *args;
        int code;
        const char *has;
    } cases[] = {
        {"report '%s' --group-by model.on_perc --html '%s/cli.html'", 0, "grouped by"},
        {"report '%s' --group-by=all", 0, "model.on_perc, model.lr: 5 groups"},
        {"report '%s' --group-by nope", 2, "--group-by 'nope'"},
        {"report '%s/missing'", 5, "No such file"},
        {"report", 2, "missing the results directory"},
        {"run x.cfg --group-by model.lr", 2, "apply to 'report' only"},
        {"report '%s' --quiet", 2, "apply to 'run' only"},
        {"report '%s' --html", 2, "needs a value"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char args[1200];
        snprintf(args, sizeof args, cases[i].args, dir, root());
        snprintf(cmd, sizeof cmd, "'%s/bin/dsnn-host' %s > '%s' 2>&1", dsnn_test_build_dir(),
                 args, outfile);
        int rc = system(cmd);
        CU_ASSERT_TRUE(WIFEXITED(rc));
        if (WEXITSTATUS(rc) != cases[i].code)
            fprintf(stderr, "\n    %s: exit %d, want %d\n", args, WEXITSTATUS(rc), cases[i].code);
        CU_ASSERT_EQUAL(WEXITSTATUS(rc), cases[i].code);
        char *text = read_all(outfile);
        ASSERT_HAS(text, cases[i].has);
        free(text);
    }
    char html[600];
    snprintf(html, sizeof html, "%s/cli.html", root());
    char *text = read_all(html);
    ASSERT_HAS(text, "<svg class=\"chart metric\"");
    free(text);
}

static CU_TestInfo tests[] = {
    {"JSON reader", test_json_reader},
    {"trial table", test_trial_table},
    {"groups: mean +- std", test_groups},
    {"HTML page and SVG plots", test_html},
    {"HTML: PBT jumps back in epochs", test_html_pbt_jumps},
    {"mode min, missing journal / cfg, interrupted", test_mode_min_and_missing},
    {"malformed lines: file:line, exit code", test_malformed},
    {"command line", test_command_line},
    CU_TEST_INFO_NULL,
};

DSNN_TEST_MAIN("report", tests)
