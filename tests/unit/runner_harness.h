/* tests/unit/runner_harness.h - what the tests of dsnn-host (test_runner, test_resume) share:
 * a temporary directory, file helpers, flat JSON objects (read with host/json.h), a generated
 * IDX dataset, a
 * configuration generator, and running dsnn-host as a child process (in its own process
 * group) with its output captured. Include once per test executable, after the system
 * headers listed in test_runner.c. */
#ifndef DSNN_TEST_RUNNER_HARNESS_H
#define DSNN_TEST_RUNNER_HARNESS_H

#include "json.h" /* host/: the JSON module (dsnn_json) */

#define RUN_TIMEOUT_S 120 /* a dsnn-host run that takes longer is killed (and fails the test) */

/* ------------------------------------------------------------------------------------------ */
/* Small helpers                                                                              */
/* ------------------------------------------------------------------------------------------ */

static char g_tmp[1024]; /* the mkdtemp directory of this test run ("" until created) */

static inline int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

static inline void remove_tree(const char *dir)
{
    struct stat st;
    if (lstat(dir, &st) == 0)
        nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static inline void cleanup_tmp(void)
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
static inline const char *tmp_root(void)
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
static inline const char *tpath(const char *fmt, ...) DSNN_PRINTF(1, 2);
static inline const char *tpath(const char *fmt, ...)
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

static inline bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static inline bool write_file(const char *path, const void *data, size_t len)
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

static inline bool write_text(const char *path, const char *text)
{
    return write_file(path, text, strlen(text));
}

/* Whole file, NUL-terminated (malloc'd; NULL if unreadable). *len (if not NULL) gets its size. */
static inline char *read_file(const char *path, size_t *len)
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

static inline bool contains(const char *hay, const char *needle)
{
    bool ok = hay && strstr(hay, needle) != NULL;
    if (!ok)
        fprintf(stderr, "\n  expected \"%s\" in: %s\n", needle, hay ? hay : "(null)");
    return ok;
}

/* Lines of text (no '\n'), in a malloc'd array of pointers into text (modified in place). */
static inline size_t split_lines(char *text, char **lines, size_t max)
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
/* Flat JSON objects ({"key": value, ...}) read with the host's JSON module (host/json.h):   */
/* each member as its decoded string, or the JSON text it was written as (numbers, literals,  */
/* arrays, objects). Enough for result.json, journal.jsonl and params.json.                   */
/* ------------------------------------------------------------------------------------------ */

#define JSON_MAX_FIELDS 256 /* a sparse ResNet-18 logs about 120 metrics an epoch */
struct jfield {
    char key[128];
    char val[1024]; /* unescaped string, or the literal / raw text */
    bool is_string;
};
struct jobj {
    struct jfield f[JSON_MAX_FIELDS];
    int n;
};

static inline bool json_parse_flat(const char *s, struct jobj *o)
{
    struct dsnn_json_object j;
    struct dsnn_error err = {0};
    o->n = 0;
    if (dsnn_json_parse_object(s, strlen(s), &j, &err) != DSNN_OK) {
        fprintf(stderr, "\n  JSON: %s\n", err.msg);
        return false;
    }
    bool ok = j.n <= JSON_MAX_FIELDS;
    for (size_t i = 0; ok && i < j.n; i++) {
        struct jfield *f = &o->f[o->n++];
        snprintf(f->key, sizeof f->key, "%s", j.items[i].key);
        snprintf(f->val, sizeof f->val, "%s", j.items[i].text);
        f->is_string = j.items[i].type == DSNN_JSON_STRING;
    }
    dsnn_json_object_free(&j);
    return ok;
}

static inline const struct jfield *jget(const struct jobj *o, const char *key)
{
    for (int i = 0; i < o->n; i++)
        if (strcmp(o->f[i].key, key) == 0)
            return &o->f[i];
    return NULL;
}

/* Number at key; NAN (and a message) if absent or not a number. */
static inline double jnum(const struct jobj *o, const char *key)
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
static inline const char *jstr(const struct jobj *o, const char *key)
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

static inline void be32(uint8_t *b, uint32_t v)
{
    b[0] = (uint8_t)(v >> 24), b[1] = (uint8_t)(v >> 16), b[2] = (uint8_t)(v >> 8),
    b[3] = (uint8_t)v;
}

/* Image i of label y: noise everywhere, plus a bright horizontal band whose position is the
 * class (rows 2+8y .. 2+8y+6), so the classes are easy to separate. */
static inline bool write_idx_pair(const char *images, const char *labels, uint32_t n, uint32_t seed)
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
static inline const char *data_dir(void)
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
    const char *search; /* content of the search group after its plugin line (default: none) */
    int threads;        /* experiment.threads (default 1; -1 for 0, "cores / parallel") */
    const char *experiment_extra; /* more keys of the experiment group, on the threads line */
    const char *search_plugin;    /* search.plugin (default "grid") */
    const char *network; /* content of the network group, two lines (default: mlp [16]) */
};

static const char *const default_model = "  plugin = \"dense\";\n"
                                   "  learning_rate = 0.1;\n"
                                   "  momentum = 0.9;\n";

static inline void make_cfg(char *buf, size_t size, const struct cfg_spec *s)
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
                     "%s"                                                 /* 20, 21 */
                     "};\n"                                               /* 22 */
                     "model = {\n"                                        /* 23 */
                     "%s"                                                 /* 24.. */
                     "};\n"
                     "search = {\n"
                     "  plugin = \"%s\";\n"
                     "%s"
                     "};\n",
                     s->name, s->epochs > 0 ? s->epochs : 1,
                     s->num_samples > 0 ? s->num_samples : 1, s->threads > 0 ? s->threads : s->threads < 0 ? 0 : 1,
                     s->experiment_extra ? s->experiment_extra : "", s->data ? s->data : data_dir(),
                     s->network ? s->network : "  plugin = \"mlp\";\n  hidden_sizes = [16];\n",
                     s->model ? s->model : default_model,
                     s->search_plugin ? s->search_plugin : "grid", s->search ? s->search : "");
    if (w < 0 || (size_t)w >= size) {
        fprintf(stderr, "configuration too long\n");
        exit(2);
    }
}

/* Writes <tmp>/<file> from spec; returns its path (static buffer of tpath). */
static inline const char *write_cfg(const char *file, const struct cfg_spec *s)
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

static inline void run_free(struct run *r)
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
static inline void host_start(struct proc *p, const char *const *args)
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
static inline struct run host_wait(struct proc *p, int timeout_s)
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
static inline struct run host(const char *arg0, ...)
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
static inline int read_jsonl(const char *path, struct jobj *objs, int max)
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
static inline int count_events(const struct jobj *j, int n, const char *ev, const char *trial)
{
    int c = 0;
    for (int i = 0; i < n; i++)
        c += strcmp(jstr(&j[i], "event"), ev) == 0 &&
             (!trial || strcmp(jstr(&j[i], "trial_id"), trial) == 0);
    return c;
}

/* The trial_finished line of trial in the journal, or NULL. */
static inline const struct jobj *finished_event(const struct jobj *j, int n, const char *trial)
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
static inline double check_result_json(const char *dir, const char *trial, int epochs)
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
static inline void check_progress_csv(const char *dir, const char *trial, int epochs)
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


static inline bool is_time_key(const char *k)
{
    return strncmp(k, "time", 4) == 0; /* time_train_s, time_this_epoch_s, timestamp ... */
}

/* ------------------------------------------------------------------------------------------ */
/* Runs compared, journals read (test_resume, test_crash)                                     */
/* ------------------------------------------------------------------------------------------ */

static inline void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Waits (at most 60 s) for path to exist. */
static inline bool wait_for_file(const char *path)
{
    for (int i = 0; i < 12000; i++) {
        if (exists(path))
            return true;
        sleep_ms(5);
    }
    fprintf(stderr, "\n  %s did not appear\n", path);
    return false;
}

/* Compares result.json of trial in two results directories field by field, but the time
 * fields: same lines, same keys, same text of every value. */
static inline void same_results(const char *a, const char *b, const char *trial, int epochs)
{
    char pa[4200], pb[4200];
    snprintf(pa, sizeof pa, "%s/%s/result.json", a, trial);
    snprintf(pb, sizeof pb, "%s/%s/result.json", b, trial);
    int na = read_jsonl(pa, g_objs, MAX_LINES), nb = read_jsonl(pb, g_objs2, MAX_LINES);
    if (na != nb || (epochs >= 0 && na != epochs))
        fprintf(stderr, "\n  %s: %d lines, %s: %d lines (expected %d)\n", pa, na, pb, nb, epochs);
    CU_ASSERT_EQUAL(na, nb);
    if (epochs >= 0)
        CU_ASSERT_EQUAL(na, epochs);
    for (int e = 0; e < na && e < nb; e++) {
        CU_ASSERT_EQUAL(g_objs[e].n, g_objs2[e].n);
        int compared = 0;
        for (int k = 0; k < g_objs[e].n; k++) {
            const struct jfield *x = &g_objs[e].f[k];
            if (is_time_key(x->key))
                continue;
            const struct jfield *y = jget(&g_objs2[e], x->key);
            if (!y || strcmp(x->val, y->val) != 0) {
                fprintf(stderr, "\n  %s line %d: %s = %s, in %s: %s\n", pa, e + 1, x->key, x->val,
                        pb, y ? y->val : "(missing)");
                CU_FAIL("result.json differs from the uninterrupted run's");
            }
            compared++;
        }
        CU_ASSERT(compared >= 7);
    }
    /* progress.csv: same rows but the time columns */
    snprintf(pa, sizeof pa, "%s/%s/progress.csv", a, trial);
    snprintf(pb, sizeof pb, "%s/%s/progress.csv", b, trial);
    char *ta = read_file(pa, NULL), *tb = read_file(pb, NULL);
    CU_ASSERT_PTR_NOT_NULL(ta);
    CU_ASSERT_PTR_NOT_NULL(tb);
    if (ta && tb) {
        char *la[MAX_LINES], *lb[MAX_LINES];
        size_t n1 = split_lines(ta, la, MAX_LINES), n2 = split_lines(tb, lb, MAX_LINES);
        CU_ASSERT_EQUAL(n1, n2);
        if (epochs >= 0)
            CU_ASSERT_EQUAL(n1, (size_t)epochs + 1);
        CU_ASSERT(n1 > 0 && strcmp(la[0], lb[0]) == 0);
        bool is_time[128] = {false};
        char header[4096];
        snprintf(header, sizeof header, "%s", n1 ? la[0] : "");
        int c = 0;
        for (char *save = NULL, *col = strtok_r(header, ",", &save); col && c < 128;
             col = strtok_r(NULL, ",", &save))
            is_time[c++] = is_time_key(col);
        for (size_t i = 1; i < n1 && i < n2; i++) {
            /* cells may be empty (a metric missing in that epoch): split by hand */
            char *ca = la[i], *cb = lb[i];
            for (int k = 0; ca && cb; k++) {
                char *ea = strchr(ca, ','), *eb = strchr(cb, ',');
                if (ea)
                    *ea = '\0';
                if (eb)
                    *eb = '\0';
                if (!(k < 128 && is_time[k]) && strcmp(ca, cb) != 0) {
                    fprintf(stderr, "\n  %s row %zu column %d: %s vs %s\n", pa, i, k, ca, cb);
                    CU_FAIL("progress.csv differs from the uninterrupted run's");
                }
                ca = ea ? ea + 1 : NULL;
                cb = eb ? eb + 1 : NULL;
            }
            CU_ASSERT(!ca && !cb);
        }
    }
    free(ta);
    free(tb);
}

static inline int read_journal(const char *dir)
{
    char path[4400];
    snprintf(path, sizeof path, "%s/journal.jsonl", dir);
    int n = read_jsonl(path, g_objs, MAX_LINES);
    CU_ASSERT(n > 0);
    return n;
}

/* The k-th (0-based) journal line with event ev of trial, or NULL. */
static inline const struct jobj *nth_event(int n, const char *ev, const char *trial, int k)
{
    for (int i = 0; i < n; i++)
        if (strcmp(jstr(&g_objs[i], "event"), ev) == 0 &&
            (!trial || strcmp(jstr(&g_objs[i], "trial_id"), trial) == 0) && k-- == 0)
            return &g_objs[i];
    return NULL;
}

static inline const char *final_status(int n, const char *trial)
{
    const char *s = "";
    for (int i = 0; i < n; i++)
        if (strcmp(jstr(&g_objs[i], "event"), "trial_finished") == 0 &&
            strcmp(jstr(&g_objs[i], "trial_id"), trial) == 0)
            s = jstr(&g_objs[i], "status");
    return s;
}

#endif
