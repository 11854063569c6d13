/* tests/unit/test_synthetic.c - the "synthetic" dataset plugin: seeded Gaussian clusters. */
#include <dlfcn.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dsnn/config.h"
#include "dsnn/data.h"
#include "dsnn/plugin.h"
#include "dsnn/status.h"
#include "harness.h"

static const struct dsnn_component *g_comp;
static const struct dsnn_dataset_ops *g_ops;
static FILE *g_log;

static bool load_plugin(void)
{
    static bool tried;
    if (!tried) {
        tried = true;
        char path[4096];
        snprintf(path, sizeof path, "%s/plugins/synthetic.so", dsnn_test_build_dir());
        void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        if (!h) {
            fprintf(stderr, "cannot load %s: %s\n", path, dlerror());
            return false;
        }
        void *sym = dlsym(h, DSNN_PLUGIN_ENTRY_SYMBOL);
        if (!sym)
            return false;
        dsnn_plugin_entry_fn entry;
        memcpy(&entry, &sym, sizeof entry);
        const struct dsnn_plugin *p = entry();
        for (size_t i = 0; p && i < p->n_components; i++)
            if (p->components[i].kind == DSNN_KIND_DATASET &&
                strcmp(p->components[i].name, "synthetic") == 0)
                g_comp = &p->components[i];
        if (g_comp)
            g_ops = g_comp->ops;
        g_log = fopen("/dev/null", "w");
    }
    return g_ops != NULL;
}

struct ds {
    struct dsnn_config_file *cf;
    void *state;
    struct dsnn_dataset_info info;
    struct dsnn_error err;
    enum dsnn_status st;
};

static enum dsnn_status ds_open(struct ds *d, uint64_t seed, const char *fmt, ...)
    DSNN_PRINTF(3, 4);
static enum dsnn_status ds_open(struct ds *d, uint64_t seed, const char *fmt, ...)
{
    memset(d, 0, sizeof *d);
    if (!load_plugin())
        return d->st = DSNN_ERR_NOT_FOUND;
    char keys[1024], text[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(keys, sizeof keys, fmt, ap);
    va_end(ap);
    snprintf(text, sizeof text, "dataset = {\n  plugin = \"synthetic\";\n  %s\n};\n", keys);
    d->st = dsnn_config_file_parse(text, "test.cfg", &d->cf, &d->err);
    if (d->st != DSNN_OK)
        return d->st;
    struct dsnn_run_ctx ctx = {.seed = seed, .epochs = 1, .n_threads = 1, .log = g_log};
    d->st = g_ops->open(dsnn_cfg_group(dsnn_config_file_root(d->cf), "dataset"), &ctx,
                        &d->state, &d->info, &d->err);
    if (d->st != DSNN_OK)
        printf("\n    [%s] %s ", dsnn_status_str(d->st), d->err.msg);
    return d->st;
}

static void ds_close(struct ds *d)
{
    if (d->state)
        g_ops->close(d->state);
    dsnn_config_file_free(d->cf);
    memset(d, 0, sizeof *d);
}

static void expect_error(const char *keys, const char *needle)
{
    struct ds d;
    ds_open(&d, 1, "%s", keys);
    CU_ASSERT_EQUAL(d.st, DSNN_ERR_CONFIG);
    CU_ASSERT_PTR_NULL(d.state);
    bool found = strstr(d.err.msg, needle) != NULL;
    if (!found)
        printf("\n    message lacks \"%s\" ", needle);
    CU_ASSERT(found);
    ds_close(&d);
}

/* Reads one epoch of split into xs / ys (either may be NULL). Returns the count. */
static int64_t read_epoch(struct ds *d, enum dsnn_split split, int epoch, float *xs, int32_t *ys,
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
        nb++;
        if (xs)
            memcpy(xs + n * size, b.x, (size_t)(b.n * size) * sizeof *xs);
        if (ys)
            memcpy(ys + n, b.y, (size_t)b.n * sizeof *ys);
        n += b.n;
    }
    if (n_batches)
        *n_batches = nb;
    return n;
}

static void test_descriptor(void)
{
    CU_ASSERT_FATAL(load_plugin());
    CU_ASSERT_STRING_EQUAL(g_comp->name, "synthetic");
    static const char *const keys[] = {"n_classes", "shape", "n_train", "n_test", "separation",
                                       "noise_std", "data_seed", "batch_size_train",
                                       "batch_size_test", "train_batches_per_epoch", "shuffle"};
    for (size_t i = 0; i < DSNN_COUNT_OF(keys); i++) {
        bool found = false;
        for (size_t j = 0; j < g_comp->n_keys; j++)
            found = found || strcmp(g_comp->keys[j].name, keys[i]) == 0;
        CU_ASSERT(found);
    }
}

static void test_shape_and_balance(void)
{
    struct ds d;
    CU_ASSERT_EQUAL(ds_open(&d, 1, "%s", ""), DSNN_OK); /* defaults */
    if (d.st == DSNN_OK) {
        CU_ASSERT_EQUAL(d.info.shape.c, 1);
        CU_ASSERT_EQUAL(d.info.shape.h, 8);
        CU_ASSERT_EQUAL(d.info.shape.w, 8);
        CU_ASSERT_EQUAL(d.info.n_classes, 10);
        CU_ASSERT_EQUAL(d.info.n_train, 1000);
        CU_ASSERT_EQUAL(d.info.n_test, 200);
        CU_ASSERT_EQUAL(d.info.n_noise, 0);
        CU_ASSERT_EQUAL(d.info.batch_size_train, 64);
        CU_ASSERT_EQUAL(d.info.batch_size_test, 200);
        static int32_t ys[1000];
        int nb;
        CU_ASSERT_EQUAL(read_epoch(&d, DSNN_SPLIT_TRAIN, 0, NULL, ys, &nb), 1000);
        CU_ASSERT_EQUAL(nb, 16);
        int counts[10] = {0};
        for (int i = 0; i < 1000; i++)
            if (ys[i] >= 0 && ys[i] < 10)
                counts[ys[i]]++;
        bool balanced = true;
        for (int k = 0; k < 10; k++)
            balanced = balanced && counts[k] == 100;
        CU_ASSERT(balanced);
        CU_ASSERT_EQUAL(g_ops->begin(d.state, DSNN_SPLIT_NOISE, 0, &d.err), DSNN_ERR_UNSUPPORTED);
    }
    ds_close(&d);
    CU_ASSERT_EQUAL(ds_open(&d, 1, "shape = [3, 5, 4]; n_classes = 3; n_train = 30; n_test = 9;"),
                    DSNN_OK);
    CU_ASSERT(d.info.shape.c == 3 && d.info.shape.h == 5 && d.info.shape.w == 4);
    ds_close(&d);
    CU_ASSERT_EQUAL(ds_open(&d, 1, "shape = [20];"), DSNN_OK);
    CU_ASSERT(d.info.shape.c == 20 && d.info.shape.h == 1 && d.info.shape.w == 1);
    ds_close(&d);
}

/* Same data_seed: the same data whatever the trial seed; another data_seed: other data. */
static void test_determinism(void)
{
    enum { N = 100, T = 40, DIM = 2 * 4 * 4 };
    static float a[T * DIM], b[T * DIM], tr1[N * DIM], tr2[N * DIM];
    const char *keys = "shape = [2, 4, 4]; n_train = 100; n_test = 40; shuffle = false; "
                       "data_seed = 5;";
    struct ds d;
    CU_ASSERT_EQUAL(ds_open(&d, 1, "%s", keys), DSNN_OK);
    if (d.st == DSNN_OK) {
        read_epoch(&d, DSNN_SPLIT_TEST, 0, a, NULL, NULL);
        read_epoch(&d, DSNN_SPLIT_TRAIN, 0, tr1, NULL, NULL);
    }
    ds_close(&d);
    CU_ASSERT_EQUAL(ds_open(&d, 999, "%s", keys), DSNN_OK);
    if (d.st == DSNN_OK) {
        read_epoch(&d, DSNN_SPLIT_TEST, 0, b, NULL, NULL);
        read_epoch(&d, DSNN_SPLIT_TRAIN, 3, tr2, NULL, NULL);
    }
    ds_close(&d);
    CU_ASSERT(memcmp(a, b, sizeof a) == 0);
    CU_ASSERT(memcmp(tr1, tr2, sizeof tr1) == 0);
    /* sample i does not depend on n_train / n_test */
    CU_ASSERT_EQUAL(ds_open(&d, 1, "shape = [2, 4, 4]; n_train = 60; n_test = 10; "
                                   "shuffle = false; data_seed = 5;"),
                    DSNN_OK);
    if (d.st == DSNN_OK) {
        read_epoch(&d, DSNN_SPLIT_TEST, 0, b, NULL, NULL);
        CU_ASSERT(memcmp(a, b, 10 * DIM * sizeof *a) == 0);
        read_epoch(&d, DSNN_SPLIT_TRAIN, 0, tr2, NULL, NULL);
        CU_ASSERT(memcmp(tr1, tr2, 60 * DIM * sizeof *tr1) == 0);
    }
    ds_close(&d);
    CU_ASSERT_EQUAL(ds_open(&d, 1, "shape = [2, 4, 4]; n_train = 100; n_test = 40; "
                                   "shuffle = false; data_seed = 6;"),
                    DSNN_OK);
    if (d.st == DSNN_OK) {
        read_epoch(&d, DSNN_SPLIT_TEST, 0, b, NULL, NULL);
        CU_ASSERT(memcmp(a, b, sizeof a) != 0);
    }
    ds_close(&d);
    /* the order of the train split comes from the trial seed and the epoch */
    static int32_t y1[N], y2[N], y3[N];
    CU_ASSERT_EQUAL(ds_open(&d, 1, "shape = [2, 4, 4]; n_train = 100; data_seed = 5;"), DSNN_OK);
    if (d.st == DSNN_OK) {
        read_epoch(&d, DSNN_SPLIT_TRAIN, 0, tr1, y1, NULL);
        read_epoch(&d, DSNN_SPLIT_TRAIN, 1, tr2, y2, NULL);
        CU_ASSERT(memcmp(tr1, tr2, sizeof tr1) != 0);
        read_epoch(&d, DSNN_SPLIT_TRAIN, 0, tr2, y3, NULL);
        CU_ASSERT(memcmp(tr1, tr2, sizeof tr1) == 0);
        CU_ASSERT(memcmp(y1, y3, sizeof y1) == 0);
    }
    ds_close(&d);
}

/* The train class means classify the test set well: the clusters are learnable. */
static void test_learnable(void)
{
    enum { N = 1000, T = 200, DIM = 64, K = 10 };
    static float tr[N * DIM], te[T * DIM];
    static int32_t ytr[N], yte[T];
    struct ds d;
    CU_ASSERT_EQUAL(ds_open(&d, 3, "%s", ""), DSNN_OK);
    if (d.st != DSNN_OK)
        return;
    read_epoch(&d, DSNN_SPLIT_TRAIN, 0, tr, ytr, NULL);
    read_epoch(&d, DSNN_SPLIT_TEST, 0, te, yte, NULL);
    ds_close(&d);
    static double mu[K][DIM];
    int cnt[K] = {0};
    double var = 0;
    for (int i = 0; i < N; i++) {
        cnt[ytr[i]]++;
        for (int j = 0; j < DIM; j++)
            mu[ytr[i]][j] += tr[i * DIM + j];
    }
    for (int k = 0; k < K; k++)
        for (int j = 0; j < DIM; j++)
            mu[k][j] /= cnt[k];
    for (int i = 0; i < N; i++)
        for (int j = 0; j < DIM; j++)
            var += (tr[i * DIM + j] - mu[ytr[i]][j]) * (tr[i * DIM + j] - mu[ytr[i]][j]);
    var /= (double)N * DIM;
    CU_ASSERT_DOUBLE_EQUAL(var, 1.0, 0.05); /* noise_std 1 */
    int correct = 0;
    for (int i = 0; i < T; i++) {
        int best = 0;
        double bd = INFINITY;
        for (int k = 0; k < K; k++) {
            double dist = 0;
            for (int j = 0; j < DIM; j++)
                dist += (te[i * DIM + j] - mu[k][j]) * (te[i * DIM + j] - mu[k][j]);
            if (dist < bd) {
                bd = dist;
                best = k;
            }
        }
        correct += best == yte[i];
    }
    printf("\n    nearest class mean: %d / %d correct ", correct, T);
    CU_ASSERT(correct > 0.9 * T);
}

static void test_batches(void)
{
    struct ds d;
    int nb;
    CU_ASSERT_EQUAL(ds_open(&d, 1, "n_train = 100; batch_size_train = [10, 25, 50]; "
                                   "train_batches_per_epoch = 3; batch_size_test = 64;"),
                    DSNN_OK);
    if (d.st == DSNN_OK) {
        CU_ASSERT_EQUAL(d.info.batch_size_train, 50);
        CU_ASSERT_EQUAL(d.info.batch_size_test, 64);
        CU_ASSERT_EQUAL(read_epoch(&d, DSNN_SPLIT_TRAIN, 0, NULL, NULL, &nb), 30);
        CU_ASSERT_EQUAL(read_epoch(&d, DSNN_SPLIT_TRAIN, 1, NULL, NULL, &nb), 75);
        CU_ASSERT_EQUAL(read_epoch(&d, DSNN_SPLIT_TRAIN, 2, NULL, NULL, &nb), 100);
        CU_ASSERT_EQUAL(nb, 2);
        CU_ASSERT_EQUAL(read_epoch(&d, DSNN_SPLIT_TEST, 2, NULL, NULL, &nb), 200);
        CU_ASSERT_EQUAL(nb, 4);
    }
    ds_close(&d);
}

static void test_errors(void)
{
    expect_error("shape = [1, 2];", "shape");
    expect_error("shape = [1, 2, 3, 4];", "shape");
    expect_error("shape = [1, 0, 3];", "shape");
    expect_error("n_classes = 1;", "n_classes");
    expect_error("noise_std = -1.0;", "noise_std");
    expect_error("n_train = 0;", "n_train");
    expect_error("batch_size_train = [];", "batch_size_train");
    expect_error("shape = [1000, 1000, 1000];", "too many");
    struct ds d;
    CU_ASSERT_EQUAL(ds_open(&d, 1, "%s", ""), DSNN_OK);
    if (d.st == DSNN_OK) {
        struct dsnn_batch b = {0};
        struct dsnn_error err = {0};
        CU_ASSERT_EQUAL(g_ops->next_batch(d.state, &b, &err), DSNN_ERR_INVALID);
        CU_ASSERT_EQUAL(g_ops->begin(d.state, DSNN_SPLIT_TRAIN, -1, &err), DSNN_ERR_INVALID);
    }
    ds_close(&d);
    g_ops->close(NULL);
}

static CU_TestInfo tests[] = {
    {"descriptor and key table", test_descriptor},
    {"shapes and balanced classes", test_shape_and_balance},
    {"determinism from data_seed", test_determinism},
    {"learnable clusters", test_learnable},
    {"batch sizes per epoch", test_batches},
    {"errors", test_errors},
    CU_TEST_INFO_NULL,
};

DSNN_TEST_MAIN("synthetic dataset plugin", tests)
