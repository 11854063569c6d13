/* tests/unit/test_runner.c - the experiment runner, black-box through the command line: runs
 * $DSNN_BUILD_DIR/bin/dsnn-host as a child process on small generated IDX datasets (a few hundred
 * 28x28 images of 3 separable classes, so that every run takes well under 2 s) and checks exit
 * codes, messages and the results directory:
 *   - a plain run: experiment.cfg (verbatim), journal.jsonl (event sequence), the trial folder
 *     (params.json, trial.cfg, result.json one JSON line per epoch, progress.csv);
 *   - grid search over model.learning_rate x num_samples;
 *   - crash isolation with the test-only "crash" model (build/test-plugins/ok/): a crashing
 *     trial ends in ERROR with error.txt, the others go on, exit code 1;
 *   - configuration errors (syntax, unknown key, wrong type, unknown plugin, missing group,
 *     grid over an unknown key) are reported with FILE:LINE and the key, before any trial runs;
 *   - an existing results directory is kept without --overwrite, replaced with it;
 *   - missing dataset files fail the trial with a message naming the path;
 *   - the same configuration run twice gives the same numbers.
 * Everything is written under one mkdtemp directory, removed at exit (kept when
 * DSNN_KEEP_TEST_DIR is set, for a look after a failure). */
#ifndef _XOPEN_SOURCE
#define _XOPEN_SOURCE 700 /* nftw, mkdtemp */
#endif
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <math.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dsnn/dsnn.h" /* DSNN_PRINTF */
#include "harness.h"

extern char **environ;

#define RUN_TIMEOUT_S 120 /* a dsnn-host run that takes longer is killed (and fails the test) */

/* ------------------------------------------------------------------------------------------ */
/* Small helpers                                                                              */
/* ------------------------------------------------------------------------------------------ */

static char g_tmp[1024]; /* the mkdtemp directory of this test run ("" until created) */

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

static void remove_tree(const char *dir)
{
    struct stat st;
    if (lstat(dir, &st) == 0)
        nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void cleanup_tmp(void)
{
    if (!g_tmp[0])
        return;
    if (getenv("DSNN_KEEP_TEST_DIR")) {
        fprintf(stderr, "test_runner: kept %s\n", g_tmp);
        return;
    }
    remove_tree(g_tmp);
}

/* The test's temporary directory, created on first use. */
static const char *tmp_root(void)
{
    if (!g_tmp[0]) {
        const char *base = getenv("TMPDIR");
        snprintf(g_tmp, sizeof g_tmp, "%s/dsnn_test_runner.XXXXXX", base && *base ? base : "/tmp");
        if (!mkdtemp(g_tmp)) {
            fprintf(stderr, "mkdtemp %s: %s\n", g_tmp, strerror(errno));
            exit(2);
        }
        atexit(cleanup_tmp);
    }
    return g_tmp;
}

/* <tmp>/<printf(fmt, ...)> into a rotating static buffer (several stay valid at once). */
static const char *tpath(const char *fmt, ...) DSNN_PRINTF(1, 2);
static const char *tpath(const char *fmt, ...)
{
    static char bufs[16][4096];
    static unsigned next;
    char *b = bufs[next++ % 16];
    int n = snprintf(b, sizeof bufs[0], "%s/", tmp_root());
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b + n, sizeof bufs[0] - (size_t)n, fmt, ap);
    va_end(ap);
    return b;
}

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static bool write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f) {
        fprintf(stderr, "\n  cannot write %s: %s\n", path, strerror(errno));
        return false;
    }
    bool ok = fwrite(data, 1, len, f) == len;
    ok = fclose(f) == 0 && ok;
    return ok;
}

static bool write_text(const char *path, const char *text)
{
    return write_file(path, text, strlen(text));
}

/* Whole file, NUL-terminated (malloc'd; NULL if unreadable). *len (if not NULL) gets its size. */
static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    for (size_t r; buf && (r = fread(buf + n, 1, cap - n - 1, f)) > 0;) {
        n += r;
        if (n + 1 == cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
            }
            buf = nb;
            cap *= 2;
        }
    }
    fclose(f);
    if (buf) {
        buf[n] = '\0';
        if (len)
            *len = n;
    }
    return buf;
}

static bool contains(const char *hay, const char *needle)
{
    bool ok = hay && strstr(hay, needle) != NULL;
    if (!ok)
        fprintf(stderr, "\n  expected \"%s\" in: %s\n", needle, hay ? hay : "(null)");
    return ok;
}

/* Lines of text (no '\n'), in a malloc'd array of pointers into text (modified in place). */
static size_t split_lines(char *text, char **lines, size_t max)
{
    size_t n = 0;
    for (char *p = text; p && *p && n < max;) {
        char *nl = strchr(p, '\n');
        if (nl)
            *nl = '\0';
        lines[n++] = p;
        p = nl ? nl + 1 : NULL;
    }
    return n;
}

/* ------------------------------------------------------------------------------------------ */
/* A tiny JSON reader for flat objects ({"key": number | string | true | false | null, ...});  */
/* arrays and objects as values are kept as raw text. Enough for result.json, journal.jsonl    */
/* and params.json, and strict enough to catch malformed lines.                                */
/* ------------------------------------------------------------------------------------------ */

#define JSON_MAX_FIELDS 64
struct jfield {
    char key[128];
    char val[1024]; /* unescaped string, or the literal / raw text */
    bool is_string;
};
struct jobj {
    struct jfield f[JSON_MAX_FIELDS];
    int n;
};

static const char *json_ws(const char *p)
{
    while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
        p++;
    return p;
}

/* Parses a string at p (at '"'); returns the position after it or NULL. */
static const char *json_string(const char *p, char *out, size_t size)
{
    if (*p != '"')
        return NULL;
    size_t n = 0;
    for (p++; *p && *p != '"'; p++) {
        char c = *p;
        if ((unsigned char)c < 0x20)
            return NULL;
        if (c == '\\') {
            p++;
            switch (*p) {
            case '"': c = '"'; break;
            case '\\': c = '\\'; break;
            case '/': c = '/'; break;
            case 'n': c = '\n'; break;
            case 't': c = '\t'; break;
            case 'r': c = '\r'; break;
            case 'b': c = '\b'; break;
            case 'f': c = '\f'; break;
            case 'u':
                for (int i = 1; i <= 4; i++)
                    if (!isxdigit((unsigned char)p[i]))
                        return NULL;
                c = '?';
                p += 4;
                break;
            default: return NULL;
            }
        }
        if (n + 1 < size)
            out[n++] = c;
    }
    if (*p != '"')
        return NULL;
    out[n] = '\0';
    return p + 1;
}

static bool json_parse_flat(const char *s, struct jobj *o)
{
    o->n = 0;
    const char *p = json_ws(s);
    if (*p++ != '{')
        return false;
    p = json_ws(p);
    if (*p == '}')
        return *json_ws(p + 1) == '\0';
    for (;;) {
        if (o->n == JSON_MAX_FIELDS)
            return false;
        struct jfield *f = &o->f[o->n];
        if (!(p = json_string(p, f->key, sizeof f->key)))
            return false;
        p = json_ws(p);
        if (*p++ != ':')
            return false;
        p = json_ws(p);
        f->is_string = *p == '"';
        if (f->is_string) {
            if (!(p = json_string(p, f->val, sizeof f->val)))
                return false;
        } else if (*p == '[' || *p == '{') {
            const char *start = p;
            int depth = 0;
            bool in_str = false;
            for (; *p; p++) {
                if (in_str) {
                    if (*p == '\\' && p[1])
                        p++;
                    else if (*p == '"')
                        in_str = false;
                } else if (*p == '"') {
                    in_str = true;
                } else if (*p == '[' || *p == '{') {
                    depth++;
                } else if ((*p == ']' || *p == '}') && --depth == 0) {
                    p++;
                    break;
                }
            }
            if (depth != 0)
                return false;
            snprintf(f->val, sizeof f->val, "%.*s", (int)(p - start), start);
        } else {
            const char *start = p;
            while (*p && *p != ',' && *p != '}' && *p != ' ')
                p++;
            snprintf(f->val, sizeof f->val, "%.*s", (int)(p - start), start);
            if (strcmp(f->val, "true") != 0 && strcmp(f->val, "false") != 0 &&
                strcmp(f->val, "null") != 0) {
                char *end;
                errno = 0;
                strtod(f->val, &end);
                if (!f->val[0] || *end || errno)
                    return false;
            }
        }
        o->n++;
        p = json_ws(p);
        if (*p == '}')
            return *json_ws(p + 1) == '\0';
        if (*p++ != ',')
            return false;
        p = json_ws(p);
    }
}

static const struct jfield *jget(const struct jobj *o, const char *key)
{
    for (int i = 0; i < o->n; i++)
        if (strcmp(o->f[i].key, key) == 0)
            return &o->f[i];
    return NULL;
}

/* Number at key; NAN (and a message) if absent or not a number. */
static double jnum(const struct jobj *o, const char *key)
{
    const struct jfield *f = jget(o, key);
    if (!f || f->is_string || !strcmp(f->val, "null") || !strcmp(f->val, "true") ||
        !strcmp(f->val, "false")) {
        fprintf(stderr, "\n  JSON: no number at key \"%s\"\n", key);
        return NAN;
    }
    return strtod(f->val, NULL);
}

/* String at key; "" if absent or not a string. */
static const char *jstr(const struct jobj *o, const char *key)
{
    const struct jfield *f = jget(o, key);
    return f && f->is_string ? f->val : "";
}

/* ------------------------------------------------------------------------------------------ */
/* Generated IDX dataset                                                                      */
/* ------------------------------------------------------------------------------------------ */

#define N_TRAIN 240
#define N_TEST 120
#define N_CLASSES 3
#define IMG 28

static void be32(uint8_t *b, uint32_t v)
{
    b[0] = (uint8_t)(v >> 24), b[1] = (uint8_t)(v >> 16), b[2] = (uint8_t)(v >> 8),
    b[3] = (uint8_t)v;
}

/* Image i of label y: noise everywhere, plus a bright horizontal band whose position is the
 * class (rows 2+8y .. 2+8y+6), so the classes are easy to separate. */
static bool write_idx_pair(const char *images, const char *labels, uint32_t n, uint32_t seed)
{
    size_t isize = 16 + (size_t)n * IMG * IMG, lsize = 8 + n;
    uint8_t *im = malloc(isize), *lb = malloc(lsize);
    if (!im || !lb) {
        free(im), free(lb);
        return false;
    }
    be32(im, 0x00000803u), be32(im + 4, n), be32(im + 8, IMG), be32(im + 12, IMG);
    be32(lb, 0x00000801u), be32(lb + 4, n);
    uint32_t s = seed * 2654435761u + 1;
    for (uint32_t i = 0; i < n; i++) {
        uint8_t y = (uint8_t)((i * 7 + seed) % N_CLASSES);
        lb[8 + i] = y;
        uint8_t *px = im + 16 + (size_t)i * IMG * IMG;
        for (int r = 0; r < IMG; r++)
            for (int c = 0; c < IMG; c++) {
                s = s * 1664525u + 1013904223u;
                uint8_t noise = (uint8_t)(s >> 26); /* 0..63 */
                bool band = r >= 2 + 8 * y && r < 2 + 8 * y + 7;
                px[r * IMG + c] = (uint8_t)(band ? 160 + (noise & 63) + (noise >> 1) : noise);
            }
    }
    bool ok = write_file(images, im, isize) && write_file(labels, lb, lsize);
    free(im), free(lb);
    return ok;
}

/* <tmp>/data with train-images.idx, train-labels.idx, test-images.idx, test-labels.idx. */
static const char *data_dir(void)
{
    static bool made;
    static char dir[4096];
    if (!made) {
        snprintf(dir, sizeof dir, "%s/data", tmp_root());
        if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
            fprintf(stderr, "mkdir %s: %s\n", dir, strerror(errno));
            exit(2);
        }
        char a[4200], b[4200];
        snprintf(a, sizeof a, "%s/train-images.idx", dir);
        snprintf(b, sizeof b, "%s/train-labels.idx", dir);
        bool ok = write_idx_pair(a, b, N_TRAIN, 1);
        snprintf(a, sizeof a, "%s/test-images.idx", dir);
        snprintf(b, sizeof b, "%s/test-labels.idx", dir);
        ok = ok && write_idx_pair(a, b, N_TEST, 2);
        if (!ok) {
            fprintf(stderr, "cannot write the IDX test data under %s\n", dir);
            exit(2);
        }
        made = true;
    }
    return dir;
}

/* ------------------------------------------------------------------------------------------ */
/* Configurations                                                                             */
/* ------------------------------------------------------------------------------------------ */

/* A configuration of the generated dataset, one key per line. Line numbers (1-based) matter
 * for the messages checked below: the `model` group's content starts at MODEL_LINE. */
#define MODEL_LINE 24
struct cfg_spec {
    const char *name;
    int epochs, num_samples;
    const char *data;   /* dataset.path (default: data_dir()) */
    const char *model;  /* content of the model group, one key per line (default: dense) */
    const char *search; /* content of the search group after plugin = "grid"; (default: none) */
    int threads;        /* experiment.threads (default 1) */
    const char *experiment_extra; /* more keys of the experiment group, on the threads line */
};

static const char *default_model = "  plugin = \"dense\";\n"
                                   "  learning_rate = 0.1;\n"
                                   "  momentum = 0.9;\n";

static void make_cfg(char *buf, size_t size, const struct cfg_spec *s)
{
    int w = snprintf(buf, size,
                     "# generated by test_runner\n"                       /* 1 */
                     "experiment = {\n"                                   /* 2 */
                     "  name = \"%s\";\n"                                 /* 3 */
                     "  seed = 7;\n"                                      /* 4 */
                     "  epochs = %d;\n"                                   /* 5 */
                     "  num_samples = %d;\n"                              /* 6 */
                     "  threads = %d;%s\n"                                /* 7 */
                     "};\n"                                               /* 8 */
                     "dataset = {\n"                                      /* 9 */
                     "  plugin = \"idx\";\n"                              /* 10 */
                     "  path = \"%s\";\n"                                 /* 11 */
                     "  train_images = \"train-images.idx\";\n"           /* 12 */
                     "  train_labels = \"train-labels.idx\";\n"           /* 13 */
                     "  test_images = \"test-images.idx\";\n"             /* 14 */
                     "  test_labels = \"test-labels.idx\";\n"             /* 15 */
                     "  batch_size_train = 20;\n"                         /* 16 */
                     "  batch_size_test = 50;\n"                          /* 17 */
                     "};\n"                                               /* 18 */
                     "network = {\n"                                      /* 19 */
                     "  plugin = \"mlp\";\n"                              /* 20 */
                     "  hidden_sizes = [16];\n"                           /* 21 */
                     "};\n"                                               /* 22 */
                     "model = {\n"                                        /* 23 */
                     "%s"                                                 /* 24.. */
                     "};\n"
                     "search = {\n"
                     "  plugin = \"grid\";\n"
                     "%s"
                     "};\n",
                     s->name, s->epochs > 0 ? s->epochs : 1,
                     s->num_samples > 0 ? s->num_samples : 1, s->threads > 0 ? s->threads : 1,
                     s->experiment_extra ? s->experiment_extra : "", s->data ? s->data : data_dir(), s->model ? s->model : default_model,
                     s->search ? s->search : "");
    if (w < 0 || (size_t)w >= size) {
        fprintf(stderr, "configuration too long\n");
        exit(2);
    }
}

/* Writes <tmp>/<file> from spec; returns its path (static buffer of tpath). */
static const char *write_cfg(const char *file, const struct cfg_spec *s)
{
    static char text[16384];
    make_cfg(text, sizeof text, s);
    const char *path = tpath("%s", file);
    CU_ASSERT_FATAL(write_text(path, text));
    return path;
}

/* ------------------------------------------------------------------------------------------ */
/* Running dsnn-host                                                                          */
/* ------------------------------------------------------------------------------------------ */

struct run {
    int code;  /* exit status; 128 + signal if killed; -1 if it could not run / timed out */
    char *out; /* stdout, stderr (malloc'd, NUL-terminated) */
    char *err;
};

static void run_free(struct run *r)
{
    free(r->out);
    free(r->err);
    r->out = r->err = NULL;
}

/* A started dsnn-host. It runs in its own process group (with its trial processes), so that a
 * run past its time limit is killed with everything it started. */
struct proc {
    pid_t pid;
    char out_path[4200], err_path[4200];
};

/* Starts dsnn-host --plugin-dir <build>/plugins --plugin-dir <build>/test-plugins/ok ARGS...
 * (args NULL-terminated) with stdout/stderr going to files of the temp dir. */
static void host_start(struct proc *p, const char *const *args)
{
    static unsigned counter;
    char exe[4096], plugins[4096], test_plugins[4096];
    snprintf(exe, sizeof exe, "%s/bin/dsnn-host", dsnn_test_build_dir());
    snprintf(plugins, sizeof plugins, "%s/plugins", dsnn_test_build_dir());
    snprintf(test_plugins, sizeof test_plugins, "%s/test-plugins/ok", dsnn_test_build_dir());
    const char *argv[40] = {exe, "--plugin-dir", plugins, "--plugin-dir", test_plugins};
    size_t n = 5;
    for (const char *const *a = args; *a && n < 39; a++)
        argv[n++] = *a;
    argv[n] = NULL;

    unsigned id = counter++;
    snprintf(p->out_path, sizeof p->out_path, "%s/host.%u.out", tmp_root(), id);
    snprintf(p->err_path, sizeof p->err_path, "%s/host.%u.err", tmp_root(), id);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, p->out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&fa, 2, p->err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
    posix_spawnattr_setpgroup(&attr, 0);
    int e = posix_spawn(&p->pid, exe, &fa, &attr, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    if (e != 0) {
        fprintf(stderr, "\n  cannot run %s: %s\n", exe, strerror(e));
        CU_FAIL_FATAL("posix_spawn dsnn-host");
    }
}

/* Waits for p (at most timeout_s; then kills its process group) and collects its output. */
static struct run host_wait(struct proc *p, int timeout_s)
{
    struct run r = {.code = -1};
    int status = 0;
    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        pid_t w = waitpid(p->pid, &status, WNOHANG);
        if (w == p->pid)
            break;
        if (w < 0 && errno != EINTR) {
            fprintf(stderr, "\n  waitpid: %s\n", strerror(errno));
            status = -1;
            break;
        }
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - t0.tv_sec >= timeout_s) {
            fprintf(stderr, "\n  dsnn-host ran longer than %d s: killed\n", timeout_s);
            kill(-p->pid, SIGKILL);
            waitpid(p->pid, &status, 0);
            status = -1;
            break;
        }
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    kill(-p->pid, SIGKILL); /* trial processes left behind, if any (there should be none) */
    if (status != -1)
        r.code = WIFEXITED(status)     ? WEXITSTATUS(status)
                 : WIFSIGNALED(status) ? 128 + WTERMSIG(status)
                                       : -1;
    r.out = read_file(p->out_path, NULL);
    r.err = read_file(p->err_path, NULL);
    if (!r.out)
        r.out = calloc(1, 1);
    if (!r.err)
        r.err = calloc(1, 1);
    return r;
}

/* Runs dsnn-host with ARGS... (NULL-terminated) to its end. */
static struct run host(const char *arg0, ...)
{
    const char *args[40];
    size_t n = 0;
    va_list ap;
    va_start(ap, arg0);
    for (const char *a = arg0; a && n < 39; a = va_arg(ap, const char *))
        args[n++] = a;
    va_end(ap);
    args[n] = NULL;
    struct proc p;
    host_start(&p, args);
    return host_wait(&p, RUN_TIMEOUT_S);
}

/* Asserts the exit code; prints the output when it differs. */
#define CHECK_CODE(r, expected)                                                                   \
    do {                                                                                          \
        if ((r).code != (expected))                                                               \
            fprintf(stderr, "\n  dsnn-host exit code %d, expected %d\n  stdout: %s\n"            \
                            "  stderr: %s\n",                                                    \
                    (r).code, (expected), (r).out, (r).err);                                      \
        CU_ASSERT_EQUAL((r).code, (expected));                                                    \
    } while (0)

/* ------------------------------------------------------------------------------------------ */
/* Reading the results directory                                                              */
/* ------------------------------------------------------------------------------------------ */

#define MAX_LINES 256

/* Parses every line of a JSON-lines file into objs (at most max); returns the count, -1 if the
 * file is missing or a line is not a flat JSON object. */
static int read_jsonl(const char *path, struct jobj *objs, int max)
{
    char *text = read_file(path, NULL);
    if (!text) {
        fprintf(stderr, "\n  cannot read %s\n", path);
        return -1;
    }
    size_t len = strlen(text);
    bool ends_nl = len > 0 && text[len - 1] == '\n';
    char *lines[MAX_LINES];
    size_t n = split_lines(text, lines, MAX_LINES);
    int count = 0;
    for (size_t i = 0; i < n; i++) {
        if (count == max || !json_parse_flat(lines[i], &objs[count])) {
            fprintf(stderr, "\n  %s: line %zu is not a flat JSON object: %s\n", path, i + 1,
                    lines[i]);
            free(text);
            return -1;
        }
        count++;
    }
    free(text);
    if (n > 0 && !ends_nl) {
        fprintf(stderr, "\n  %s: last line has no newline\n", path);
        return -1;
    }
    return count;
}

static struct jobj g_objs[MAX_LINES]; /* scratch for read_jsonl (big: keep off the stack) */
static struct jobj g_objs2[MAX_LINES];

/* Number of journal lines with "event": ev (and, if trial is not NULL, "trial_id": trial). */
static int count_events(const struct jobj *j, int n, const char *ev, const char *trial)
{
    int c = 0;
    for (int i = 0; i < n; i++)
        c += strcmp(jstr(&j[i], "event"), ev) == 0 &&
             (!trial || strcmp(jstr(&j[i], "trial_id"), trial) == 0);
    return c;
}

/* The trial_finished line of trial in the journal, or NULL. */
static const struct jobj *finished_event(const struct jobj *j, int n, const char *trial)
{
    for (int i = 0; i < n; i++)
        if (strcmp(jstr(&j[i], "event"), "trial_finished") == 0 &&
            strcmp(jstr(&j[i], "trial_id"), trial) == 0)
            return &j[i];
    return NULL;
}

static const char *const per_epoch_keys[] = {"epoch",   "train_loss",    "train_acc",
                                             "val_loss", "val_acc",      "learning_rate",
                                             "time_this_epoch_s"};

/* Checks <dir>/result.json: exactly `epochs` lines, epoch 0..epochs-1, the per-epoch keys as
 * numbers in sane ranges, trial_id. Returns the final val_acc (NAN on failure). */
static double check_result_json(const char *dir, const char *trial, int epochs)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s/result.json", dir, trial);
    int n = read_jsonl(path, g_objs2, MAX_LINES);
    CU_ASSERT_EQUAL(n, epochs);
    if (n != epochs)
        return NAN;
    for (int e = 0; e < n; e++) {
        const struct jobj *o = &g_objs2[e];
        CU_ASSERT_STRING_EQUAL(jstr(o, "trial_id"), trial);
        for (size_t k = 0; k < sizeof per_epoch_keys / sizeof *per_epoch_keys; k++)
            CU_ASSERT(isfinite(jnum(o, per_epoch_keys[k])));
        CU_ASSERT_EQUAL(jnum(o, "epoch"), e);
        double acc = jnum(o, "train_acc"), vacc = jnum(o, "val_acc");
        CU_ASSERT(acc >= 0 && acc <= 1);
        CU_ASSERT(vacc >= 0 && vacc <= 1);
        CU_ASSERT(jnum(o, "train_loss") >= 0);
        CU_ASSERT(jnum(o, "val_loss") >= 0);
        CU_ASSERT(jnum(o, "time_this_epoch_s") >= 0);
        CU_ASSERT(jnum(o, "learning_rate") > 0);
    }
    return jnum(&g_objs2[n - 1], "val_acc");
}

/* Checks <dir>/<trial>/progress.csv: a header naming the per-epoch keys and trial_id, then one
 * row per epoch with as many cells as the header, matching result.json's epoch and val_acc. */
static void check_progress_csv(const char *dir, const char *trial, int epochs)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s/progress.csv", dir, trial);
    char *text = read_file(path, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    CU_ASSERT(strlen(text) > 0 && text[strlen(text) - 1] == '\n');
    char *lines[MAX_LINES];
    size_t n = split_lines(text, lines, MAX_LINES);
    CU_ASSERT_EQUAL(n, (size_t)epochs + 1);
    if (n != (size_t)epochs + 1) {
        free(text);
        return;
    }
    char *cols[64];
    size_t nc = 0;
    for (char *save = NULL, *c = strtok_r(lines[0], ",", &save); c && nc < 64;
         c = strtok_r(NULL, ",", &save))
        cols[nc++] = c;
    int i_epoch = -1, i_vacc = -1, i_trial = -1;
    for (size_t k = 0; k < sizeof per_epoch_keys / sizeof *per_epoch_keys; k++) {
        bool found = false;
        for (size_t c = 0; c < nc; c++)
            found |= strcmp(cols[c], per_epoch_keys[k]) == 0;
        if (!found)
            fprintf(stderr, "\n  %s: no column %s\n", path, per_epoch_keys[k]);
        CU_ASSERT(found);
    }
    for (size_t c = 0; c < nc; c++) {
        if (!strcmp(cols[c], "epoch"))
            i_epoch = (int)c;
        if (!strcmp(cols[c], "val_acc"))
            i_vacc = (int)c;
        if (!strcmp(cols[c], "trial_id"))
            i_trial = (int)c;
    }
    CU_ASSERT(i_epoch >= 0 && i_vacc >= 0 && i_trial >= 0);
    for (size_t r = 1; r < n && i_epoch >= 0 && i_vacc >= 0 && i_trial >= 0; r++) {
        /* cells may be empty: split by hand, not with strtok */
        char *cells[64];
        size_t ncell = 0;
        for (char *p = lines[r]; p && ncell < 64;) {
            char *comma = strchr(p, ',');
            if (comma)
                *comma = '\0';
            cells[ncell++] = p;
            p = comma ? comma + 1 : NULL;
        }
        CU_ASSERT_EQUAL(ncell, nc);
        if (ncell != nc)
            continue;
        CU_ASSERT_EQUAL(strtod(cells[i_epoch], NULL), (double)(r - 1));
        CU_ASSERT_STRING_EQUAL(cells[i_trial], trial);
        /* the same number as result.json (g_objs2 holds it after check_result_json) */
        CU_ASSERT_DOUBLE_EQUAL(strtod(cells[i_vacc], NULL), jnum(&g_objs2[r - 1], "val_acc"),
                               1e-7);
    }
    free(text);
}

/* ------------------------------------------------------------------------------------------ */
/* (1) A plain run                                                                            */
/* ------------------------------------------------------------------------------------------ */

static void test_plain_run(void)
{
    struct cfg_spec s = {.name = "plain", .epochs = 2};
    const char *cfg = write_cfg("plain.cfg", &s);
    const char *res = tpath("res_plain");
    struct run r = host("run", cfg, "--results", res, NULL);
    CHECK_CODE(r, 0);
    CU_ASSERT(contains(r.out, "TERMINATED"));
    run_free(&r);

    const char *dir = tpath("res_plain/plain");
    /* experiment.cfg: byte-identical to the input */
    size_t la = 0, lb = 0;
    char *a = read_file(cfg, &la), *b = read_file(tpath("res_plain/plain/experiment.cfg"), &lb);
    CU_ASSERT_PTR_NOT_NULL(b);
    CU_ASSERT(a && b && la == lb && memcmp(a, b, la) == 0);
    free(a), free(b);

    /* journal: the full event sequence, each line with a time */
    static const char *const events[] = {"experiment_started", "trial_created", "trial_started",
                                         "trial_result",       "trial_result",  "trial_finished",
                                         "experiment_finished"};
    char path[4200];
    snprintf(path, sizeof path, "%s/journal.jsonl", dir);
    int n = read_jsonl(path, g_objs, MAX_LINES);
    CU_ASSERT_EQUAL_FATAL(n, (int)(sizeof events / sizeof *events));
    for (int i = 0; i < n; i++) {
        CU_ASSERT_STRING_EQUAL(jstr(&g_objs[i], "event"), events[i]);
        CU_ASSERT(strlen(jstr(&g_objs[i], "time")) >= 20);
        if (i >= 1 && i <= 5)
            CU_ASSERT_STRING_EQUAL(jstr(&g_objs[i], "trial_id"), "trial_00000");
    }
    CU_ASSERT_STRING_EQUAL(jstr(&g_objs[0], "name"), "plain");
    CU_ASSERT_EQUAL(jnum(&g_objs[0], "trials"), 1);
    CU_ASSERT_EQUAL(jnum(&g_objs[3], "epoch"), 0);
    CU_ASSERT_EQUAL(jnum(&g_objs[4], "epoch"), 1);
    CU_ASSERT(isfinite(jnum(&g_objs[4], "val_acc")));
    CU_ASSERT_STRING_EQUAL(jstr(&g_objs[5], "status"), "TERMINATED");
    CU_ASSERT_EQUAL(jnum(&g_objs[5], "epochs"), 2);
    CU_ASSERT_EQUAL(jnum(&g_objs[6], "failed_trials"), 0);

    /* the trial folder */
    snprintf(path, sizeof path, "%s/trial_00000/params.json", dir);
    CU_ASSERT_EQUAL(read_jsonl(path, g_objs, 1), 1);
    CU_ASSERT(jnum(&g_objs[0], "trial_seed") >= 0);
    snprintf(path, sizeof path, "%s/trial_00000/trial.cfg", dir);
    char *tcfg = read_file(path, NULL);
    CU_ASSERT(contains(tcfg, "learning_rate"));
    CU_ASSERT(contains(tcfg, "hidden_sizes"));
    free(tcfg);
    snprintf(path, sizeof path, "%s/trial_00000/error.txt", dir);
    CU_ASSERT(!exists(path));
    double vacc = check_result_json(dir, "trial_00000", 2);
    /* 3 well-separated classes: the network must learn them (a broken training loop would not) */
    if (!(vacc >= 0.9))
        fprintf(stderr, "\n  final val_acc %g < 0.9 on separable data\n", vacc);
    CU_ASSERT(vacc >= 0.9);
    check_progress_csv(dir, "trial_00000", 2);
    CU_ASSERT(!exists(tpath("res_plain/plain/trial_00001")));
}

/* ------------------------------------------------------------------------------------------ */
/* (2) Grid search                                                                            */
/* ------------------------------------------------------------------------------------------ */

static void test_grid(void)
{
    struct cfg_spec s = {
        .name = "grid",
        .epochs = 1,
        .num_samples = 2,
        .search = "  grid = { model = { learning_rate = [0.1, 0.01]; }; };\n",
    };
    const char *cfg = write_cfg("grid.cfg", &s);
    struct run r = host("run", cfg, "--results", tpath("res_grid"), "--quiet", NULL);
    CHECK_CODE(r, 0);
    run_free(&r);
    const char *dir = tpath("res_grid/grid");
    /* sample s of combination c is trial s * 2 + c */
    static const double lrs[4] = {0.1, 0.01, 0.1, 0.01};
    double seeds[4];
    for (int t = 0; t < 4; t++) {
        char trial[32], path[4200];
        snprintf(trial, sizeof trial, "trial_%05d", t);
        snprintf(path, sizeof path, "%s/%s/params.json", dir, trial);
        CU_ASSERT_EQUAL_FATAL(read_jsonl(path, g_objs, 1), 1);
        CU_ASSERT_EQUAL(g_objs[0].n, 2); /* model.learning_rate and trial_seed */
        CU_ASSERT_DOUBLE_EQUAL(jnum(&g_objs[0], "model.learning_rate"), lrs[t], 1e-12);
        seeds[t] = jnum(&g_objs[0], "trial_seed");
        /* the trial ran with that value */
        check_result_json(dir, trial, 1);
        CU_ASSERT_DOUBLE_EQUAL(jnum(&g_objs2[0], "learning_rate"), lrs[t], 1e-12);
        snprintf(path, sizeof path, "%s/%s/trial.cfg", dir, trial);
        char *tcfg = read_file(path, NULL);
        CU_ASSERT(contains(tcfg, t % 2 ? "learning_rate = 0.01;" : "learning_rate = 0.1;"));
        free(tcfg);
    }
    /* every trial has its own seed */
    for (int i = 0; i < 4; i++)
        for (int j = i + 1; j < 4; j++)
            CU_ASSERT(seeds[i] != seeds[j]);
    CU_ASSERT(!exists(tpath("res_grid/grid/trial_00004")));
    char path[4200];
    snprintf(path, sizeof path, "%s/journal.jsonl", dir);
    int n = read_jsonl(path, g_objs, MAX_LINES);
    CU_ASSERT_FATAL(n > 0);
    CU_ASSERT_EQUAL(jnum(&g_objs[0], "trials"), 4);
    CU_ASSERT_EQUAL(count_events(g_objs, n, "trial_created", NULL), 4);
    CU_ASSERT_EQUAL(count_events(g_objs, n, "trial_started", NULL), 4);
    CU_ASSERT_EQUAL(count_events(g_objs, n, "trial_result", NULL), 4);
    CU_ASSERT_EQUAL(count_events(g_objs, n, "trial_finished", NULL), 4);
    for (int t = 0; t < 4; t++) {
        char trial[32];
        snprintf(trial, sizeof trial, "trial_%05d", t);
        const struct jobj *f = finished_event(g_objs, n, trial);
        CU_ASSERT_PTR_NOT_NULL(f);
        if (f)
            CU_ASSERT_STRING_EQUAL(jstr(f, "status"), "TERMINATED");
    }
    CU_ASSERT_STRING_EQUAL(jstr(&g_objs[n - 1], "event"), "experiment_finished");
}

/* ------------------------------------------------------------------------------------------ */
/* (3) Crash isolation                                                                        */
/* ------------------------------------------------------------------------------------------ */

static void test_crash_isolation(void)
{
    /* trial 0 never crashes, trial 1 dies of SIGSEGV at the start of its second epoch */
    struct cfg_spec s = {
        .name = "crash",
        .epochs = 2,
        .model = "  plugin = \"crash\";\n"
                 "  learning_rate = 0.1;\n"
                 "  crash_mode = \"segv\";\n",
        .search = "  grid = { model = { crash_epoch = [-1, 1]; }; };\n",
    };
    const char *cfg = write_cfg("crash.cfg", &s);
    struct run r = host("run", cfg, "--results", tpath("res_crash"), NULL);
    CHECK_CODE(r, 1);
    CU_ASSERT(contains(r.err, "trial_00001"));
    CU_ASSERT(contains(r.err, "SIGSEGV"));
    CU_ASSERT(contains(r.out, "TERMINATED"));
    CU_ASSERT(contains(r.out, "ERROR"));
    run_free(&r);
    const char *dir = tpath("res_crash/crash");
    char path[4200];
    /* the good trial ran to the end, untouched by the crash */
    check_result_json(dir, "trial_00000", 2);
    snprintf(path, sizeof path, "%s/trial_00000/error.txt", dir);
    CU_ASSERT(!exists(path));
    /* the crashing one kept its first epoch and says what killed it */
    check_result_json(dir, "trial_00001", 1);
    snprintf(path, sizeof path, "%s/trial_00001/error.txt", dir);
    char *etxt = read_file(path, NULL);
    CU_ASSERT_PTR_NOT_NULL(etxt);
    CU_ASSERT(contains(etxt, "signal 11"));
    CU_ASSERT(contains(etxt, "SIGSEGV"));
    CU_ASSERT(contains(etxt, "after 1 epoch"));
    free(etxt);

    snprintf(path, sizeof path, "%s/journal.jsonl", dir);
    int n = read_jsonl(path, g_objs, MAX_LINES);
    CU_ASSERT_FATAL(n > 0);
    const struct jobj *f0 = finished_event(g_objs, n, "trial_00000");
    const struct jobj *f1 = finished_event(g_objs, n, "trial_00001");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f1);
    CU_ASSERT_STRING_EQUAL(jstr(f0, "status"), "TERMINATED");
    CU_ASSERT_EQUAL(jnum(f0, "epochs"), 2);
    CU_ASSERT_STRING_EQUAL(jstr(f1, "status"), "ERROR");
    CU_ASSERT_EQUAL(jnum(f1, "epochs"), 1);
    CU_ASSERT(contains(jstr(f1, "error"), "SIGSEGV"));
    CU_ASSERT_EQUAL(count_events(g_objs, n, "trial_result", "trial_00000"), 2);
    CU_ASSERT_EQUAL(count_events(g_objs, n, "trial_result", "trial_00001"), 1);
    CU_ASSERT_STRING_EQUAL(jstr(&g_objs[n - 1], "event"), "experiment_finished");
    CU_ASSERT_EQUAL(jnum(&g_objs[n - 1], "failed_trials"), 1);
}

/* The other ways a trial can die: abort(), _exit() without a word, a reported error. */
static void test_crash_modes(void)
{
    struct cfg_spec s = {
        .name = "modes",
        .epochs = 1,
        .model = "  plugin = \"crash\";\n"
                 "  crash_epoch = 0;\n"
                 "  crash_exit_code = 7;\n",
        .search = "  grid = { model = { crash_mode = [\"abort\", \"exit\", \"error\"]; }; };\n",
    };
    const char *cfg = write_cfg("modes.cfg", &s);
    struct run r = host("run", cfg, "--results", tpath("res_modes"), "--quiet", NULL);
    CHECK_CODE(r, 1);
    CU_ASSERT(contains(r.err, "3 of 3 trial(s) ended in ERROR"));
    run_free(&r);
    static const char *const expect[3][2] = {
        {"signal 6", "SIGABRT"},
        {"exited with status 7", "after 0 epoch"},
        {"crash: deliberate failure at epoch 0 of trial 2", "crash: deliberate failure"},
    };
    for (int t = 0; t < 3; t++) {
        char *etxt = read_file(tpath("res_modes/modes/trial_%05d/error.txt", t), NULL);
        CU_ASSERT_PTR_NOT_NULL(etxt);
        CU_ASSERT(contains(etxt, expect[t][0]));
        CU_ASSERT(contains(etxt, expect[t][1]));
        free(etxt);
        CU_ASSERT(!exists(tpath("res_modes/modes/trial_%05d/result.json", t)));
    }
    int n = read_jsonl(tpath("res_modes/modes/journal.jsonl"), g_objs, MAX_LINES);
    CU_ASSERT_FATAL(n > 0);
    CU_ASSERT_EQUAL(count_events(g_objs, n, "trial_finished", NULL), 3);
    for (int t = 0; t < 3; t++) {
        char trial[32];
        snprintf(trial, sizeof trial, "trial_%05d", t);
        const struct jobj *f = finished_event(g_objs, n, trial);
        CU_ASSERT_PTR_NOT_NULL_FATAL(f);
        CU_ASSERT_STRING_EQUAL(jstr(f, "status"), "ERROR");
        CU_ASSERT(contains(jstr(f, "error"), expect[t][1]));
    }
    CU_ASSERT_EQUAL(jnum(&g_objs[n - 1], "failed_trials"), 3);
}

/* ------------------------------------------------------------------------------------------ */
/* (4) Configuration errors: exit 3 (4 for a missing plugin), FILE:LINE, the key, nothing run */
/* ------------------------------------------------------------------------------------------ */

/* Runs cfg (already written) and checks: exit code, every needle in stderr, no results. */
static void expect_config_error(const char *cfg, int code, const char *const *needles)
{
    char res[4096];
    snprintf(res, sizeof res, "%s.results", cfg);
    struct run r = host("run", cfg, "--results", res, NULL);
    CHECK_CODE(r, code);
    for (const char *const *nd = needles; *nd; nd++)
        CU_ASSERT(contains(r.err, *nd));
    CU_ASSERT(!strstr(r.out, "epoch 1/"));
    if (exists(res))
        fprintf(stderr, "\n  %s: results directory created for a bad configuration\n", res);
    CU_ASSERT(!exists(res));
    run_free(&r);
}

static void test_syntax_error(void)
{
    const char *cfg = tpath("syntax.cfg");
    CU_ASSERT_FATAL(write_text(cfg, "experiment = {\n"
                                    "  name = \"syntax\";\n"
                                    "  seed = 1;\n"
                                    "  epochs = = 2;\n" /* line 4 */
                                    "};\n"));
    char where[4200];
    snprintf(where, sizeof where, "%s:4", cfg);
    const char *needles[] = {where, NULL};
    expect_config_error(cfg, 3, needles);

    const char *cfg2 = tpath("syntax2.cfg");
    CU_ASSERT_FATAL(write_text(cfg2, "experiment = { name = \"s2\"; };\n"
                                     "\n"
                                     "model = { learning_rate = 0.1.2; };\n"));
    snprintf(where, sizeof where, "%s:3", cfg2);
    const char *needles2[] = {where, NULL};
    expect_config_error(cfg2, 3, needles2);
}

static void test_unknown_key(void)
{
    struct cfg_spec s = {.name = "typo",
                         .model = "  plugin = \"dense\";\n"
                                  "  momentum = 0.9;\n"
                                  "  learnig_rate = 0.1;\n"}; /* MODEL_LINE + 2 */
    const char *cfg = write_cfg("typo.cfg", &s);
    char where[4200];
    snprintf(where, sizeof where, "%s:%d", cfg, MODEL_LINE + 2);
    const char *needles[] = {where, "model.learnig_rate", "did you mean 'learning_rate'", NULL};
    expect_config_error(cfg, 3, needles);

    /* a typo in the host's own group too */
    const char *cfg2 = tpath("typo2.cfg");
    CU_ASSERT_FATAL(write_text(cfg2, "experiment = {\n  name = \"t2\";\n  epocs = 2;\n};\n"));
    snprintf(where, sizeof where, "%s:3", cfg2);
    const char *needles2[] = {where, "experiment.epocs", "did you mean 'epochs'", NULL};
    expect_config_error(cfg2, 3, needles2);
}

static void test_wrong_type(void)
{
    struct cfg_spec s = {.name = "type",
                         .model = "  plugin = \"dense\";\n"
                                  "  learning_rate = \"x\";\n"}; /* MODEL_LINE + 1 */
    const char *cfg = write_cfg("type.cfg", &s);
    char where[4200];
    snprintf(where, sizeof where, "%s:%d", cfg, MODEL_LINE + 1);
    const char *needles[] = {where, "model.learning_rate", NULL};
    expect_config_error(cfg, 3, needles);

    /* an integer key given a float, in another plugin's group */
    struct cfg_spec s2 = {.name = "type2", .model = "  plugin = \"dense\";\n"
                                                    "  lr_step_size = 1.5;\n"};
    const char *cfg2 = write_cfg("type2.cfg", &s2);
    snprintf(where, sizeof where, "%s:%d", cfg2, MODEL_LINE + 1);
    const char *needles2[] = {where, "model.lr_step_size", NULL};
    expect_config_error(cfg2, 3, needles2);

    /* the host's own keys */
    const char *cfg3 = tpath("type3.cfg");
    CU_ASSERT_FATAL(
        write_text(cfg3, "experiment = {\n  name = \"t3\";\n  epochs = \"two\";\n};\n"));
    snprintf(where, sizeof where, "%s:3", cfg3);
    const char *needles3[] = {where, "experiment.epochs", NULL};
    expect_config_error(cfg3, 3, needles3);
}

static void test_unknown_plugin(void)
{
    struct cfg_spec s = {.name = "noplugin", .model = "  plugin = \"dens\";\n"};
    const char *cfg = write_cfg("noplugin.cfg", &s);
    char where[4200];
    snprintf(where, sizeof where, "%s:%d", cfg, MODEL_LINE);
    const char *needles[] = {where, "dens", "did you mean 'dense'", NULL};
    expect_config_error(cfg, 4, needles);
}

static void test_missing_group(void)
{
    const char *cfg = tpath("nodata.cfg");
    CU_ASSERT_FATAL(write_text(cfg, "experiment = { name = \"nodata\"; };\n"
                                    "network = { plugin = \"mlp\"; };\n"
                                    "model = { plugin = \"dense\"; };\n"));
    const char *needles[] = {cfg, "dataset", NULL};
    expect_config_error(cfg, 3, needles);
}

static void test_grid_unknown_key(void)
{
    struct cfg_spec s = {
        .name = "gridkey",
        .search = "  grid = { model = { learning_rat = [0.1, 0.01]; }; };\n",
    };
    const char *cfg = write_cfg("gridkey.cfg", &s);
    const char *needles[] = {"model.learning_rat", "did you mean 'learning_rate'",
                             "searched values of trial_00000", NULL};
    expect_config_error(cfg, 3, needles);

    /* searched values of the wrong type (found before any trial runs, not by every trial) */
    struct cfg_spec s3 = {
        .name = "gridtype",
        .search = "  grid = { model = { learning_rate = (0.1, \"fast\"); }; };\n",
    };
    const char *cfg3 = write_cfg("gridtype.cfg", &s3);
    const char *needles3[] = {"model.learning_rate", "trial_00001", "expected a number", NULL};
    expect_config_error(cfg3, 3, needles3);

    /* a searched group that does not exist at all */
    struct cfg_spec s2 = {
        .name = "gridgroup",
        .search = "  grid = { modle = { learning_rate = [0.1, 0.01]; }; };\n",
    };
    const char *cfg2 = write_cfg("gridgroup.cfg", &s2);
    const char *needles2[] = {"modle", NULL};
    expect_config_error(cfg2, 3, needles2);
}

/* ------------------------------------------------------------------------------------------ */
/* (5) An existing results directory                                                          */
/* ------------------------------------------------------------------------------------------ */

static void test_existing_results(void)
{
    struct cfg_spec s = {.name = "again", .epochs = 1};
    const char *cfg = write_cfg("again.cfg", &s);
    const char *res = tpath("res_again");
    struct run r = host("run", cfg, "--results", res, "--quiet", NULL);
    CHECK_CODE(r, 0);
    run_free(&r);
    const char *journal = tpath("res_again/again/journal.jsonl");
    const char *result = tpath("res_again/again/trial_00000/result.json");
    const char *marker = tpath("res_again/again/notes.txt");
    CU_ASSERT_FATAL(write_text(marker, "my notes\n"));
    size_t lj = 0, lr = 0;
    char *j0 = read_file(journal, &lj), *r0 = read_file(result, &lr);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r0);

    /* without --overwrite: refused, nothing touched */
    r = host("run", cfg, "--results", res, NULL);
    CHECK_CODE(r, 5);
    CU_ASSERT(contains(r.err, "already exists"));
    CU_ASSERT(contains(r.err, "--overwrite"));
    run_free(&r);
    size_t lj1 = 0, lr1 = 0;
    char *j1 = read_file(journal, &lj1), *r1 = read_file(result, &lr1);
    CU_ASSERT(j1 && lj1 == lj && memcmp(j0, j1, lj) == 0);
    CU_ASSERT(r1 && lr1 == lr && memcmp(r0, r1, lr) == 0);
    CU_ASSERT(exists(marker));
    free(j1), free(r1);

    /* with --overwrite: replaced by a fresh run */
    r = host("run", cfg, "--results", res, "--overwrite", "--quiet", NULL);
    CHECK_CODE(r, 0);
    run_free(&r);
    CU_ASSERT(!exists(marker));
    int n = read_jsonl(journal, g_objs, MAX_LINES);
    CU_ASSERT_EQUAL(count_events(g_objs, n, "experiment_started", NULL), 1);
    CU_ASSERT_EQUAL(count_events(g_objs, n, "experiment_finished", NULL), 1);
    check_result_json(tpath("res_again/again"), "trial_00000", 1);
    free(j0), free(r0);

    /* --overwrite never deletes a directory that is not a dsnn results directory */
    const char *other = tpath("res_other/again");
    CU_ASSERT_FATAL(mkdir(tpath("res_other"), 0755) == 0 && mkdir(other, 0755) == 0);
    CU_ASSERT_FATAL(write_text(tpath("res_other/again/thesis.tex"), "precious\n"));
    r = host("run", cfg, "--results", tpath("res_other"), "--overwrite", NULL);
    CHECK_CODE(r, 5);
    CU_ASSERT(contains(r.err, "not a dsnn results directory"));
    run_free(&r);
    CU_ASSERT(exists(tpath("res_other/again/thesis.tex")));

    /* ... nor a plain file of that name */
    CU_ASSERT_FATAL(mkdir(tpath("res_file"), 0755) == 0);
    CU_ASSERT_FATAL(write_text(tpath("res_file/again"), "precious\n"));
    r = host("run", cfg, "--results", tpath("res_file"), "--overwrite", NULL);
    CHECK_CODE(r, 5);
    CU_ASSERT(contains(r.err, "not a dsnn results directory"));
    run_free(&r);
    char *kept = read_file(tpath("res_file/again"), NULL);
    CU_ASSERT(kept && strcmp(kept, "precious\n") == 0);
    free(kept);
}

/* experiment.results_dir is the results root unless --results overrides it; a root that cannot
 * be created is an I/O error (exit 5). */
static void test_results_root(void)
{
    char extra[4200];
    snprintf(extra, sizeof extra, " results_dir = \"%s\";", tpath("res_cfgdir"));
    struct cfg_spec s = {.name = "rootdir", .experiment_extra = extra};
    const char *cfg = write_cfg("rootdir.cfg", &s);
    struct run r = host("run", cfg, "--quiet", NULL);
    CHECK_CODE(r, 0);
    run_free(&r);
    check_result_json(tpath("res_cfgdir/rootdir"), "trial_00000", 1);

    r = host("run", cfg, "--quiet", "--results", tpath("res_cli"), NULL);
    CHECK_CODE(r, 0);
    run_free(&r);
    check_result_json(tpath("res_cli/rootdir"), "trial_00000", 1);

    /* a results root below a regular file */
    const char *bad = tpath("rootdir.cfg/results");
    r = host("run", cfg, "--results", bad, NULL);
    CHECK_CODE(r, 5);
    CU_ASSERT(contains(r.err, "rootdir.cfg"));
    run_free(&r);
}

/* SIGTERM to dsnn-host while a trial hangs: the trial is stopped, the host records it as
 * INTERRUPTED, runs no further trial, and exits with 130 - promptly, not after the trial. */
static void test_interrupt(void)
{
    struct cfg_spec s = {
        .name = "intr",
        .epochs = 2,
        .model = "  plugin = \"crash\";\n"
                 "  crash_epoch = 1;\n"
                 "  crash_mode = \"hang\";\n",
        .search = "  grid = { model = { learning_rate = [0.1, 0.05]; }; };\n",
    };
    const char *cfg = write_cfg("intr.cfg", &s);
    const char *args[] = {"run", cfg, "--results", tpath("res_intr"), NULL};
    struct proc p;
    host_start(&p, args);
    /* wait for the first epoch of trial 0 (then it hangs at the start of the second) */
    const char *result = tpath("res_intr/intr/trial_00000/result.json");
    bool started = false;
    for (int i = 0; i < 6000 && !started; i++) {
        char *text = read_file(result, NULL);
        started = text && strchr(text, '\n');
        free(text);
        if (!started) {
            struct timespec ts = {0, 5 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
    }
    CU_ASSERT(started);
    struct timespec ts = {0, 200 * 1000 * 1000}; /* let it reach the hang */
    nanosleep(&ts, NULL);
    kill(p.pid, SIGTERM);
    struct run r = host_wait(&p, 20);
    CHECK_CODE(r, 130);
    CU_ASSERT(contains(r.err, "interrupted"));
    run_free(&r);
    int n = read_jsonl(tpath("res_intr/intr/journal.jsonl"), g_objs, MAX_LINES);
    CU_ASSERT_FATAL(n > 0);
    const struct jobj *f = finished_event(g_objs, n, "trial_00000");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_STRING_EQUAL(jstr(f, "status"), "INTERRUPTED");
    CU_ASSERT_EQUAL(jnum(f, "epochs"), 1);
    CU_ASSERT_EQUAL(count_events(g_objs, n, "trial_started", "trial_00001"), 0);
    CU_ASSERT_STRING_EQUAL(jstr(&g_objs[n - 1], "event"), "experiment_interrupted");
    CU_ASSERT(!exists(tpath("res_intr/intr/trial_00000/error.txt")));
}

/* ------------------------------------------------------------------------------------------ */
/* (6) Missing dataset files                                                                  */
/* ------------------------------------------------------------------------------------------ */

static void test_missing_dataset(void)
{
    const char *nodir = tpath("no_such_data");
    struct cfg_spec s = {.name = "nofiles", .data = nodir};
    const char *cfg = write_cfg("nofiles.cfg", &s);
    struct run r = host("run", cfg, "--results", tpath("res_nofiles"), NULL);
    CHECK_CODE(r, 1);
    CU_ASSERT(contains(r.err, nodir));
    run_free(&r);
    char *etxt = read_file(tpath("res_nofiles/nofiles/trial_00000/error.txt"), NULL);
    CU_ASSERT_PTR_NOT_NULL(etxt);
    char file[4200];
    snprintf(file, sizeof file, "%s/train-images.idx", nodir);
    CU_ASSERT(contains(etxt, file));
    free(etxt);
    int n = read_jsonl(tpath("res_nofiles/nofiles/journal.jsonl"), g_objs, MAX_LINES);
    CU_ASSERT_FATAL(n > 0);
    const struct jobj *f = finished_event(g_objs, n, "trial_00000");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_STRING_EQUAL(jstr(f, "status"), "ERROR");
    CU_ASSERT_EQUAL(jnum(f, "epochs"), 0);
    CU_ASSERT(contains(jstr(f, "error"), nodir));
}

/* ------------------------------------------------------------------------------------------ */
/* (7) Determinism                                                                            */
/* ------------------------------------------------------------------------------------------ */

static bool is_time_key(const char *k)
{
    return strncmp(k, "time", 4) == 0; /* time_train_s, time_this_epoch_s, timestamp ... */
}

static void test_determinism(void)
{
    struct cfg_spec s = {
        .name = "det",
        .epochs = 2,
        .threads = 2,
        .search = "  grid = { model = { learning_rate = [0.1, 0.05]; }; };\n",
    };
    const char *cfg = write_cfg("det.cfg", &s);
    struct run r = host("run", cfg, "--results", tpath("res_det1"), "--quiet", NULL);
    CHECK_CODE(r, 0);
    run_free(&r);
    r = host("run", cfg, "--results", tpath("res_det2"), "--quiet", NULL);
    CHECK_CODE(r, 0);
    run_free(&r);
    for (int t = 0; t < 2; t++) {
        int n1 = read_jsonl(tpath("res_det1/det/trial_%05d/result.json", t), g_objs, MAX_LINES);
        int n2 = read_jsonl(tpath("res_det2/det/trial_%05d/result.json", t), g_objs2, MAX_LINES);
        CU_ASSERT_EQUAL(n1, 2);
        CU_ASSERT_EQUAL_FATAL(n1, n2);
        for (int e = 0; e < n1; e++) {
            CU_ASSERT_EQUAL(g_objs[e].n, g_objs2[e].n);
            int compared = 0;
            for (int k = 0; k < g_objs[e].n; k++) {
                const struct jfield *a = &g_objs[e].f[k];
                if (is_time_key(a->key))
                    continue;
                const struct jfield *b = jget(&g_objs2[e], a->key);
                CU_ASSERT_PTR_NOT_NULL(b);
                if (b && strcmp(a->val, b->val) != 0) {
                    fprintf(stderr, "\n  trial %d epoch %d: %s differs: %s vs %s\n", t, e,
                            a->key, a->val, b->val);
                    CU_FAIL("result.json differs between two identical runs");
                }
                compared++;
            }
            CU_ASSERT(compared >= 6);
        }
        /* params.json too (seeds included) */
        char *p1 = read_file(tpath("res_det1/det/trial_%05d/params.json", t), NULL);
        char *p2 = read_file(tpath("res_det2/det/trial_%05d/params.json", t), NULL);
        CU_ASSERT(p1 && p2 && strcmp(p1, p2) == 0);
        free(p1), free(p2);
    }
    /* and the two trials of one run differ (different learning rates and seeds) */
    int n1 = read_jsonl(tpath("res_det1/det/trial_00000/result.json"), g_objs, MAX_LINES);
    int n2 = read_jsonl(tpath("res_det1/det/trial_00001/result.json"), g_objs2, MAX_LINES);
    CU_ASSERT_FATAL(n1 == 2 && n2 == 2);
    CU_ASSERT(jnum(&g_objs[0], "train_loss") != jnum(&g_objs2[0], "train_loss"));
}

static CU_TestInfo tests[] = {
    {"plain run: results directory", test_plain_run},
    {"grid search over learning_rate x num_samples", test_grid},
    {"crash isolation (SIGSEGV in one trial)", test_crash_isolation},
    {"crash modes abort / exit / error", test_crash_modes},
    {"config: syntax error", test_syntax_error},
    {"config: unknown key", test_unknown_key},
    {"config: wrong type", test_wrong_type},
    {"config: unknown plugin", test_unknown_plugin},
    {"config: missing dataset group", test_missing_group},
    {"config: grid over an unknown key", test_grid_unknown_key},
    {"existing results directory / --overwrite", test_existing_results},
    {"results root: experiment.results_dir, --results, unwritable", test_results_root},
    {"SIGTERM during a hanging trial", test_interrupt},
    {"missing dataset files", test_missing_dataset},
    {"determinism", test_determinism},
    CU_TEST_INFO_NULL,
};

DSNN_TEST_MAIN("runner (dsnn-host run)", tests)
