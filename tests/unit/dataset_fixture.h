/* tests/unit/dataset_fixture.h - what the tests of the dataset plugins (test_idx, test_cifar,
 * test_gsc, test_synthetic) share: loading the plugin from $DSNN_BUILD_DIR/plugins/<name>.so,
 * a fresh temporary directory per test, a growable byte buffer and file writer, a gzip writer
 * (stored deflate blocks, so that no zlib is needed), opening the data set with a configuration
 * parsed from text, reading an epoch batch by batch, and checking error messages.
 *
 *     #define DATASET_FIXTURE_PLUGIN "idx"   (the plugin file and component name)
 *     #include "dataset_fixture.h"
 *
 * Include once per test executable, after harness.h. The format-specific writers (IDX, CIFAR
 * binary, .npz) stay in their tests. */
#ifndef DSNN_TEST_DATASET_FIXTURE_H
#define DSNN_TEST_DATASET_FIXTURE_H

#ifndef DATASET_FIXTURE_PLUGIN
#error "define DATASET_FIXTURE_PLUGIN (the dataset plugin's name) before including this header"
#endif

#include <dirent.h>
#include <dlfcn.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dsnn/config.h"
#include "dsnn/data.h"
#include "dsnn/plugin.h"
#include "dsnn/status.h"
#include "harness.h"

/* ---- the plugin ---- */

static const struct dsnn_component *g_comp; /* the dataset component, once loaded */
static const struct dsnn_dataset_ops *g_ops;
static FILE *g_log; /* /dev/null: the run log the plugin writes to */

/* Loads the plugin (once); false, with a message on stderr, when it or its component is missing. */
static inline bool load_plugin(void)
{
    static bool tried;
    if (!tried) {
        tried = true;
        char path[4096];
        snprintf(path, sizeof path, "%s/plugins/%s.so", dsnn_test_build_dir(),
                 DATASET_FIXTURE_PLUGIN);
        void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        if (!h) {
            fprintf(stderr, "cannot load %s: %s\n", path, dlerror());
            return false;
        }
        void *sym = dlsym(h, DSNN_PLUGIN_ENTRY_SYMBOL);
        if (!sym) {
            fprintf(stderr, "%s: no %s: %s\n", path, DSNN_PLUGIN_ENTRY_SYMBOL, dlerror());
            return false;
        }
        dsnn_plugin_entry_fn entry;
        memcpy(&entry, &sym, sizeof entry);
        const struct dsnn_plugin *p = entry();
        for (size_t i = 0; p && i < p->n_components; i++)
            if (p->components[i].kind == DSNN_KIND_DATASET &&
                strcmp(p->components[i].name, DATASET_FIXTURE_PLUGIN) == 0)
                g_comp = &p->components[i];
        if (g_comp)
            g_ops = g_comp->ops;
        g_log = fopen("/dev/null", "w");
    }
    return g_ops != NULL;
}

/* Checks that every one of keys[0..n) is in the component's key table (one assert each) and,
 * when with_doc, that its doc string is more than a few words (one more assert each). */
static inline void expect_keys_documented(const char *const *keys, size_t n, bool with_doc)
{
    for (size_t i = 0; i < n; i++) {
        /* shared tables (DSNN_NOISE_KEYS ...) are included by reference: search them too */
        const struct dsnn_key_spec *k = dsnn_keys_find(g_comp->keys, g_comp->n_keys, keys[i]);
        CU_ASSERT_PTR_NOT_NULL(k);
        if (!k)
            printf("\n    key %s is not documented ", keys[i]);
        else if (with_doc)
            CU_ASSERT(k->doc && strlen(k->doc) > 10);
    }
}

/* ---- the temporary directory ---- */

static char g_dir[256]; /* the test's directory ("" when the data set has no files) */

/* Creates a fresh g_dir and loads the plugin. */
static inline bool dir_setup(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(g_dir, sizeof g_dir, "%s/dsnn-%s-XXXXXX", tmp && *tmp ? tmp : "/tmp",
             DATASET_FIXTURE_PLUGIN);
    if (!mkdtemp(g_dir)) {
        perror("mkdtemp");
        return false;
    }
    return load_plugin();
}

/* Removes g_dir with its files and empty subdirectories. */
static inline void dir_cleanup(void)
{
    DIR *d = opendir(g_dir);
    if (!d)
        return;
    struct dirent *e;
    char path[512];
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", g_dir, e->d_name);
        if (rmdir(path) != 0)
            unlink(path);
    }
    closedir(d);
    rmdir(g_dir);
}

/* First statement of a test that writes files: a fresh g_dir and the plugin, or a failure. */
#define SETUP()                                                                                   \
    do {                                                                                          \
        if (!dir_setup()) {                                                                       \
            CU_FAIL("cannot create the temporary directory or load the plugin");                \
            return;                                                                               \
        }                                                                                         \
    } while (0)

/* g_dir/name in a rotating static buffer (four stay valid at once). */
static inline char *path_of(const char *name)
{
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", g_dir, name);
    return buf[k];
}

/* ---- bytes and files ---- */

/* A growable byte buffer; the owner frees p. */
struct bytes {
    uint8_t *p;
    size_t n;
};

static inline void put(struct bytes *b, const void *p, size_t n)
{
    b->p = realloc(b->p, b->n + n + 1);
    if (n)
        memcpy(b->p + b->n, p, n);
    b->n += n;
}
static inline void put_le16(struct bytes *b, uint32_t v)
{
    uint8_t q[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    put(b, q, 2);
}
static inline void put_le32(struct bytes *b, uint32_t v)
{
    uint8_t q[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    put(b, q, 4);
}
static inline void put_le64(struct bytes *b, uint64_t v)
{
    put_le32(b, (uint32_t)v);
    put_le32(b, (uint32_t)(v >> 32));
}
static inline void put_be32(struct bytes *b, uint32_t v)
{
    uint8_t q[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    put(b, q, 4);
}

static inline uint32_t crc32_of(const uint8_t *p, size_t n)
{
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
    }
    return ~c;
}

/* A valid gzip file of p[0..n) made of stored (uncompressed) deflate blocks (p may be NULL when
 * n is 0). The caller frees the result. */
static inline struct bytes gzip_stored(const uint8_t *p, size_t n)
{
    static const uint8_t header[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff};
    static const uint8_t empty[1];
    struct bytes b = {0};
    if (!p)
        p = empty;
    put(&b, header, sizeof header);
    size_t off = 0;
    do {
        size_t len = n - off > 65535 ? 65535 : n - off;
        uint8_t h[5] = {off + len == n ? 1 : 0, (uint8_t)len, (uint8_t)(len >> 8),
                        (uint8_t)~len, (uint8_t)(~len >> 8)};
        put(&b, h, 5);
        put(&b, p + off, len);
        off += len;
    } while (off < n);
    put_le32(&b, crc32_of(p, n));
    put_le32(&b, (uint32_t)n);
    return b;
}

/* Writes b (consumed) to g_dir/name; asserts that the file opens and takes every byte. */
static inline void write_bytes(const char *name, struct bytes b)
{
    FILE *f = fopen(path_of(name), "wb");
    CU_ASSERT_PTR_NOT_NULL(f);
    if (f) {
        CU_ASSERT_EQUAL(fwrite(b.p ? (void *)b.p : (void *)"", 1, b.n, f), b.n);
        fclose(f);
    }
    free(b.p);
}

/* ---- opening ---- */

struct ds {
    struct dsnn_config_file *cf;
    void *state;
    struct dsnn_dataset_info info;
    struct dsnn_error err;
    enum dsnn_status st;
};

/* Opens the data set with extra keys (libconfig text, e.g. "shuffle = false;"), and with
 * path = g_dir when the test made a directory. Stores and returns the status; a failure is
 * printed. Close with ds_close whatever the status. */
static inline enum dsnn_status ds_open(struct ds *d, uint64_t seed, const char *fmt, ...)
    DSNN_PRINTF(3, 4);
static inline enum dsnn_status ds_open(struct ds *d, uint64_t seed, const char *fmt, ...)
{
    memset(d, 0, sizeof *d);
    if (!load_plugin())
        return d->st = DSNN_ERR_NOT_FOUND;
    char keys[2048], path[512] = "", text[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(keys, sizeof keys, fmt, ap);
    va_end(ap);
    if (g_dir[0])
        snprintf(path, sizeof path, "  path = \"%s\";\n", g_dir);
    snprintf(text, sizeof text, "dataset = {\n  plugin = \"%s\";\n%s  %s\n};\n",
             DATASET_FIXTURE_PLUGIN, path, keys);
    d->st = dsnn_config_file_parse(text, "test.cfg", &d->cf, &d->err);
    if (d->st != DSNN_OK) {
        fprintf(stderr, "config does not parse: %s\n%s", d->err.msg, text);
        return d->st;
    }
    const struct dsnn_cfg *g = dsnn_cfg_group(dsnn_config_file_root(d->cf), "dataset");
    struct dsnn_run_ctx ctx = {.seed = seed, .epochs = 1, .n_threads = 1, .log = g_log};
    d->st = g_ops->open(g, &ctx, &d->state, &d->info, &d->err);
    if (d->st != DSNN_OK)
        printf("\n    [%s] %s ", dsnn_status_str(d->st), d->err.msg);
    return d->st;
}

static inline void ds_close(struct ds *d)
{
    if (d->state)
        g_ops->close(d->state);
    dsnn_config_file_free(d->cf);
    memset(d, 0, sizeof *d);
}

/* Opening with keys must fail with status, no state, and a message containing each of the
 * NULL-terminated needles (one assert each). */
static inline void expect_error(enum dsnn_status status, const char *keys, ...)
{
    struct ds d;
    ds_open(&d, 1, "%s", keys);
    CU_ASSERT_EQUAL(d.st, status);
    CU_ASSERT_PTR_NULL(d.state);
    va_list ap;
    va_start(ap, keys);
    for (const char *s = va_arg(ap, const char *); s; s = va_arg(ap, const char *)) {
        bool found = strstr(d.err.msg, s) != NULL;
        if (!found)
            printf("\n    message lacks \"%s\" ", s);
        CU_ASSERT(found);
    }
    va_end(ap);
    ds_close(&d);
}

/* ---- reading ---- */

#define DS_MAX_BATCHES 1000000 /* an epoch with more batches is an error (a plugin that loops) */

/* Called for sample n (counted from 0 over the epoch): its row x and its label y. */
typedef void (*ds_sample_fn)(void *arg, int64_t n, const float *x, int32_t y);

/* Runs one epoch of split: on_sample(arg, ...) for every sample (on_sample may be NULL), the
 * sizes of the first max_sizes batches into sizes (may be NULL), the number of batches into
 * *n_batches (may be NULL). Returns the number of samples; -1 when begin or next_batch fails
 * or the epoch does not end (then *n_batches is left alone). */
static inline int64_t ds_epoch(struct ds *d, enum dsnn_split split, int epoch,
                               ds_sample_fn on_sample, void *arg, int *sizes, int max_sizes,
                               int *n_batches)
{
    int64_t n = 0, size = dsnn_shape_size(d->info.shape);
    int nb = 0;
    if (g_ops->begin(d->state, split, epoch, &d->err) != DSNN_OK)
        return -1;
    for (;;) {
        struct dsnn_batch b = {0};
        if (g_ops->next_batch(d->state, &b, &d->err) != DSNN_OK)
            return -1;
        if (b.n == 0)
            break;
        if (sizes && nb < max_sizes)
            sizes[nb] = b.n;
        nb++;
        for (int k = 0; k < b.n; k++, n++)
            if (on_sample)
                on_sample(arg, n, b.x + (int64_t)k * size, b.y[k]);
        if (nb > DS_MAX_BATCHES)
            return -1;
    }
    if (n_batches)
        *n_batches = nb;
    return n;
}

struct ds_rows {
    float *xs;   /* [max][size], or NULL */
    int32_t *ys; /* [max], or NULL */
    int64_t max, size;
};

static inline void ds_rows_put(void *arg, int64_t n, const float *x, int32_t y)
{
    struct ds_rows *r = arg;
    if (n >= r->max)
        return;
    if (r->xs)
        memcpy(r->xs + n * r->size, x, (size_t)r->size * sizeof *r->xs);
    if (r->ys)
        r->ys[n] = y;
}

/* ds_epoch that copies the rows of the first max samples into xs [max][size] and their labels
 * into ys [max] (either may be NULL). */
static inline int64_t ds_collect(struct ds *d, enum dsnn_split split, int epoch, float *xs,
                                 int32_t *ys, int64_t max, int *sizes, int max_sizes,
                                 int *n_batches)
{
    struct ds_rows r = {xs, ys, max, dsnn_shape_size(d->info.shape)};
    return ds_epoch(d, split, epoch, ds_rows_put, &r, sizes, max_sizes, n_batches);
}

/* Sample id decoded from pixels 0 and 1 of an unnormalised row (x = p / 255): pixel 0 = id % 256,
 * pixel 1 = id / 256. */
static inline uint32_t sample_id(const float *x)
{
    return (uint32_t)lrintf(x[0] * 255.0f) + 256u * (uint32_t)lrintf(x[1] * 255.0f);
}

#endif
