/* tests/unit/test_noise.c - libdsnn's dataset helpers (dsnn/dataset_util.h): nupic's RandomNoise
 * (dsnn_noise_apply), the noise keys, per-epoch batch sizes, batch buffers filled from a split
 * cursor and named normalisation statistics. */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <limits.h>
#include <string.h>

#include "dsnn/config.h"
#include "dsnn/dataset_util.h"
#include "dsnn/rng.h"
#include "harness.h"

/* Counts of high, low and untouched elements after noise on a buffer of `fill`. */
static void count(const float *x, size_t n, float high, float low, size_t *nh, size_t *nl,
                  size_t *nu)
{
    *nh = *nl = *nu = 0;
    for (size_t i = 0; i < n; i++) {
        if (x[i] == high)
            (*nh)++;
        else if (x[i] == low)
            (*nl)++;
        else
            (*nu)++;
    }
}

static void test_counts(void)
{
    /* k = int(n * noise_level) as Python computes it, floor(k/2) high, the rest low */
    static const struct {
        size_t n;
        double level;
        size_t k;
    } cases[] = {
        {784, 0.1, 78},  {784, 0.05, 39}, {3072, 0.1, 307}, {1024, 0.5, 512}, {10, 0.3, 3},
        {10, 0.7, 7},    {3, 0.5, 1},     {1, 0.99, 0},     {1, 1.0, 1},      {100, 0.0, 0},
        {100, 1.0, 100}, {7, 2.0, 7},     {7, -1.0, 0},
    };
    float x[4096];
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        for (size_t i = 0; i < cases[c].n; i++)
            x[i] = 0.5f;
        struct dsnn_rng r;
        dsnn_noise_rng(&r, 42, c);
        size_t k = dsnn_noise_apply(x, cases[c].n, cases[c].level, 0.9f, 0.1f, &r);
        size_t nh, nl, nu;
        count(x, cases[c].n, 0.9f, 0.1f, &nh, &nl, &nu);
        bool ok = k == cases[c].k && nh == cases[c].k / 2 && nl == cases[c].k - cases[c].k / 2 &&
                  nu == cases[c].n - cases[c].k;
        if (!ok)
            printf("\n    n %zu level %g: k %zu (want %zu), high %zu, low %zu ", cases[c].n,
                   cases[c].level, k, cases[c].k, nh, nl);
        CU_ASSERT(ok);
    }
    /* NULL and empty inputs are no-ops */
    struct dsnn_rng r;
    dsnn_rng_seed(&r, 1, 1);
    CU_ASSERT_EQUAL(dsnn_noise_apply(NULL, 10, 0.5, 1, 0, &r), 0);
    CU_ASSERT_EQUAL(dsnn_noise_apply(x, 0, 0.5, 1, 0, &r), 0);
    CU_ASSERT_EQUAL(dsnn_noise_apply(x, 10, 0.5, 1, 0, NULL), 0);
    CU_ASSERT_EQUAL(dsnn_noise_apply(x, 10, NAN, 1, 0, &r), 0);
}

/* Every element equally likely to be chosen, and equally likely high or low. */
static void test_uniform(void)
{
    enum { N = 50, REPS = 20000 };
    static int high[N], low[N];
    float x[N];
    struct dsnn_rng r;
    dsnn_rng_seed(&r, 7, 7);
    for (int rep = 0; rep < REPS; rep++) {
        for (int i = 0; i < N; i++)
            x[i] = 0;
        dsnn_noise_apply(x, N, 0.2, 1.0f, -1.0f, &r); /* k = 10: 5 high, 5 low */
        for (int i = 0; i < N; i++) {
            high[i] += x[i] == 1.0f;
            low[i] += x[i] == -1.0f;
        }
    }
    /* expected 2000 each; binomial sd ~ 42 */
    bool ok = true;
    double chi2 = 0;
    for (int i = 0; i < N; i++) {
        ok = ok && abs(high[i] - 2000) < 250 && abs(low[i] - 2000) < 250;
        chi2 += (high[i] - 2000.0) * (high[i] - 2000.0) / 2000.0;
    }
    CU_ASSERT(ok);
    CU_ASSERT(chi2 < 100); /* 49 degrees of freedom */
    /* pairs: the events "i chosen" and "j chosen" are exchangeable (first vs last pair) */
    int both_first = 0, both_last = 0;
    for (int rep = 0; rep < REPS; rep++) {
        for (int i = 0; i < N; i++)
            x[i] = 0;
        dsnn_noise_apply(x, N, 0.2, 1.0f, -1.0f, &r);
        both_first += x[0] != 0 && x[1] != 0;
        both_last += x[N - 2] != 0 && x[N - 1] != 0;
    }
    /* P = 10/50 * 9/49 = 0.0367: ~735 of 20000 */
    CU_ASSERT(both_first > 600 && both_first < 870);
    CU_ASSERT(both_last > 600 && both_last < 870);
}

static void test_determinism(void)
{
    float a[784], b[784], c[784];
    for (int i = 0; i < 784; i++)
        a[i] = b[i] = c[i] = 0.25f;
    struct dsnn_rng r;
    dsnn_noise_rng(&r, 5, 17);
    dsnn_noise_apply(a, 784, 0.3, 0.9f, 0.1f, &r);
    dsnn_noise_rng(&r, 5, 17);
    dsnn_noise_apply(b, 784, 0.3, 0.9f, 0.1f, &r);
    CU_ASSERT(memcmp(a, b, sizeof a) == 0);
    dsnn_noise_rng(&r, 5, 18); /* another sample */
    dsnn_noise_apply(c, 784, 0.3, 0.9f, 0.1f, &r);
    CU_ASSERT(memcmp(a, c, sizeof a) != 0);
    for (int i = 0; i < 784; i++)
        c[i] = 0.25f;
    dsnn_noise_rng(&r, 6, 17); /* another seed */
    dsnn_noise_apply(c, 784, 0.3, 0.9f, 0.1f, &r);
    CU_ASSERT(memcmp(a, c, sizeof a) != 0);
}

/* ---- configuration helpers ---- */

static struct dsnn_config_file *g_cf;

static const struct dsnn_cfg *parse(const char *keys)
{
    char text[1024];
    dsnn_config_file_free(g_cf);
    g_cf = NULL;
    snprintf(text, sizeof text, "dataset = {\n  %s\n};\n", keys);
    struct dsnn_error err = {0};
    if (dsnn_config_file_parse(text, "t.cfg", &g_cf, &err) != DSNN_OK) {
        printf("\n    does not parse: %s ", err.msg);
        return NULL;
    }
    return dsnn_cfg_group(dsnn_config_file_root(g_cf), "dataset");
}

static void test_noise_options(void)
{
    struct dsnn_noise_options o;
    struct dsnn_error err = {0};
    CU_ASSERT_EQUAL(dsnn_noise_options_read(parse(""), 99, &o, &err), DSNN_OK);
    CU_ASSERT(!o.enabled);
    CU_ASSERT_DOUBLE_EQUAL(o.level, 0.1, 0);
    CU_ASSERT_DOUBLE_EQUAL(o.high, 0.9, 0);
    CU_ASSERT_DOUBLE_EQUAL(o.low, 0.1, 0);
    CU_ASSERT_EQUAL(o.space, DSNN_NOISE_SPACE_NORMALIZED);
    CU_ASSERT_EQUAL(o.seed, 99);
    CU_ASSERT_EQUAL(dsnn_noise_options_read(parse("test_noise = true; noise_level = 0.35; "
                                                  "noise_high = 1; noise_low = -0.5; "
                                                  "noise_space = \"pixel\"; noise_seed = 3;"),
                                            99, &o, &err),
                    DSNN_OK);
    CU_ASSERT(o.enabled);
    CU_ASSERT_DOUBLE_EQUAL(o.level, 0.35, 0);
    CU_ASSERT_DOUBLE_EQUAL(o.high, 1.0, 0);
    CU_ASSERT_DOUBLE_EQUAL(o.low, -0.5, 0);
    CU_ASSERT_EQUAL(o.space, DSNN_NOISE_SPACE_PIXEL);
    CU_ASSERT_EQUAL(o.seed, 3);
    CU_ASSERT_EQUAL(dsnn_noise_options_read(parse("noise_level = 1.01;"), 1, &o, &err),
                    DSNN_ERR_CONFIG);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "t.cfg:2: key 'dataset.noise_level'"));
    CU_ASSERT_EQUAL(dsnn_noise_options_read(parse("noise_space = \"raw\";"), 1, &o, &err),
                    DSNN_ERR_CONFIG);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "noise_space"));
    CU_ASSERT_EQUAL(dsnn_noise_options_read(parse("noise_seed = 1.5;"), 1, &o, &err),
                    DSNN_ERR_CONFIG);
    CU_ASSERT_EQUAL(dsnn_noise_options_read(parse("test_noise = \"yes\";"), 1, &o, &err),
                    DSNN_ERR_CONFIG);
}

static void test_batch_schedule(void)
{
    struct dsnn_batch_schedule s;
    struct dsnn_error err = {0};
    CU_ASSERT_EQUAL(dsnn_batch_schedule_read(parse(""), "batch_size_train", 128, &s, &err),
                    DSNN_OK);
    CU_ASSERT_EQUAL(s.n, 1);
    CU_ASSERT_EQUAL(s.max, 128);
    CU_ASSERT_EQUAL(dsnn_batch_schedule_at(&s, 0), 128);
    CU_ASSERT_EQUAL(dsnn_batch_schedule_at(&s, 1000), 128);
    CU_ASSERT_EQUAL(dsnn_batch_schedule_read(parse("batch_size_train = 16;"), "batch_size_train",
                                             128, &s, &err),
                    DSNN_OK);
    CU_ASSERT_EQUAL(dsnn_batch_schedule_at(&s, 3), 16);
    CU_ASSERT_EQUAL(dsnn_batch_schedule_read(parse("batch_size_train = [4, 64, 16];"),
                                             "batch_size_train", 128, &s, &err),
                    DSNN_OK);
    CU_ASSERT_EQUAL(s.n, 3);
    CU_ASSERT_EQUAL(s.max, 64);
    CU_ASSERT_EQUAL(dsnn_batch_schedule_at(&s, -1), 4);
    CU_ASSERT_EQUAL(dsnn_batch_schedule_at(&s, 0), 4);
    CU_ASSERT_EQUAL(dsnn_batch_schedule_at(&s, 1), 64);
    CU_ASSERT_EQUAL(dsnn_batch_schedule_at(&s, 2), 16);
    CU_ASSERT_EQUAL(dsnn_batch_schedule_at(&s, 50), 16);
    CU_ASSERT_EQUAL(dsnn_batch_schedule_max(&s, 1000), 64);
    CU_ASSERT_EQUAL(dsnn_batch_schedule_max(&s, 10), 10);
    CU_ASSERT_EQUAL(dsnn_batch_schedule_read(parse("b = (4, 8);"), "b", 1, &s, &err), DSNN_OK);
    CU_ASSERT_EQUAL(s.max, 8);

    static const char *const bad[] = {"b = [];", "b = 0;", "b = [4, -1];", "b = 2.5;",
                                      "b = \"64\";", "b = (4, 2.5);", "b = 20000000;", NULL};
    for (int i = 0; bad[i]; i++) {
        err.msg[0] = '\0';
        CU_ASSERT_EQUAL(dsnn_batch_schedule_read(parse(bad[i]), "b", 1, &s, &err),
                        DSNN_ERR_CONFIG);
        bool named = strstr(err.msg, "'dataset.b'") != NULL;
        if (!named)
            printf("\n    %s: %s ", bad[i], err.msg);
        CU_ASSERT(named);
    }
    /* more values than the schedule holds */
    char many[1024] = "b = [";
    for (int i = 0; i < DSNN_BATCH_SCHEDULE_MAX + 1; i++)
        strcat(many, i ? ", 2" : "2");
    strcat(many, "];");
    CU_ASSERT_EQUAL(dsnn_batch_schedule_read(parse(many), "b", 1, &s, &err), DSNN_ERR_CONFIG);
}

/* The cursor keys of a dataset, read with dsnn_dataset_keys_read and set up as a cursor. */
struct fake_options {
    int64_t other;
    struct dsnn_split_options split;
};
#define FK_AT(f) DSNN_KEY_AT(struct fake_options, f)
static const struct dsnn_key_spec fake_keys[] = {
    {.name = "other", .type = DSNN_KEY_INT, .def = 3, FK_AT(other), .doc = "a key of the plugin"},
    {.name = "batch_size_train", .type = DSNN_KEY_FLOAT_OR_ARRAY, .def = 32,
     DSNN_KEY_RANGE(1, DSNN_BATCH_SIZE_MAX), .doc = "train batch"},
    {.name = "batch_size_test", .type = DSNN_KEY_FLOAT_OR_ARRAY, .def = 500,
     DSNN_KEY_RANGE(1, DSNN_BATCH_SIZE_MAX), .doc = "test batch"},
    {.name = "train_batches_per_epoch", .type = DSNN_KEY_FLOAT_OR_ARRAY, .def = 0,
     DSNN_KEY_RANGE(0, INT_MAX), .doc = "per epoch"},
    {.name = "shuffle", .type = DSNN_KEY_BOOL, .def = true, FK_AT(split.shuffle),
     .doc = "shuffle"},
};
/* the same keys, the cursor's shared */
static const struct dsnn_key_spec fake_shared_keys[] = {
    {.name = "other", .type = DSNN_KEY_INT, .def = 3, FK_AT(other), .doc = "a key of the plugin"},
    {.name = "batch_size_train", .type = DSNN_KEY_FLOAT_OR_ARRAY, .def = 16,
     DSNN_KEY_RANGE(1, DSNN_BATCH_SIZE_MAX), .doc = "train batch"},
    DSNN_SPLIT_KEYS,
};
#undef FK_AT
DSNN_KEY_TABLE_DEFINE(static, fake_table, fake_keys);
DSNN_KEY_TABLE_DEFINE(static, fake_shared_table, fake_shared_keys);

static void test_split_options(void)
{
    struct dsnn_error err = {0};
    struct fake_options o;
    memset(&o, 0, sizeof o);
    CU_ASSERT_EQUAL(dsnn_dataset_keys_read(&fake_table, parse(""), &o, &o.split, &err),
                    DSNN_OK);
    CU_ASSERT_EQUAL(o.other, 3);
    CU_ASSERT_EQUAL(o.split.train_batch.n, 1);
    CU_ASSERT_EQUAL(o.split.train_batch.size[0], 32); /* the default of the spec */
    CU_ASSERT(o.split.test_batch.n == 1 && o.split.test_batch.size[0] == 500); /* the spec's */
    CU_ASSERT(o.split.batches_per_epoch.n == 1 && o.split.batches_per_epoch.size[0] == 0);
    CU_ASSERT_TRUE(o.split.shuffle);
    CU_ASSERT_EQUAL(dsnn_dataset_keys_read(&fake_table,
                                           parse("batch_size_train = [4, 8]; batch_size_test = 7; "
                                                 "train_batches_per_epoch = 2; shuffle = false;"),
                                           &o, &o.split, &err),
                    DSNN_OK);
    CU_ASSERT_EQUAL(o.split.train_batch.n, 2);
    CU_ASSERT_EQUAL(o.split.train_batch.max, 8);
    CU_ASSERT(o.split.test_batch.n == 1 && o.split.test_batch.size[0] == 7);
    CU_ASSERT(o.split.batches_per_epoch.n == 1 && o.split.batches_per_epoch.size[0] == 2);
    CU_ASSERT_FALSE(o.split.shuffle);
    /* one per epoch (nupic's per-epoch batch_size_test, train_batches_per_epoch) */
    CU_ASSERT_EQUAL(dsnn_dataset_keys_read(&fake_table,
                                           parse("batch_size_test = [7, 3, 9]; "
                                                 "train_batches_per_epoch = [2, 0];"),
                                           &o, &o.split, &err),
                    DSNN_OK);
    CU_ASSERT(o.split.test_batch.n == 3 && o.split.test_batch.size[1] == 3 &&
              o.split.test_batch.max == 9);
    CU_ASSERT(o.split.batches_per_epoch.n == 2 && o.split.batches_per_epoch.size[0] == 2 &&
              o.split.batches_per_epoch.size[1] == 0 && o.split.batches_per_epoch.max == 2);
    CU_ASSERT_EQUAL(dsnn_dataset_keys_read(&fake_table, parse("train_batches_per_epoch = [2, -1];"),
                                           &o, &o.split, &err),
                    DSNN_ERR_CONFIG);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "'dataset.train_batches_per_epoch': element 1 (epoch 1 "
                                           "and later): -1 is out of range: must be in [0, "));
    CU_ASSERT_EQUAL(dsnn_dataset_keys_read(&fake_table, parse("batch_size_test = [];"), &o,
                                           &o.split, &err),
                    DSNN_ERR_CONFIG);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "batch_size_test"));
    CU_ASSERT_EQUAL(dsnn_dataset_keys_read(&fake_table, parse("batch_size_test = (4, 2.5);"), &o,
                                           &o.split, &err),
                    DSNN_ERR_CONFIG);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "batch_size_test"));
    /* batch_size_train is read (and its error reported) before the other keys */
    CU_ASSERT_EQUAL(dsnn_dataset_keys_read(&fake_table,
                                           parse("batch_size_train = 0; batch_size_test = 0;"),
                                           &o, &o.split, &err),
                    DSNN_ERR_CONFIG);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "'dataset.batch_size_train'"));
    CU_ASSERT_EQUAL(dsnn_dataset_keys_read(&fake_table, parse("batch_size_test = 0;"), &o,
                                           &o.split, &err),
                    DSNN_ERR_CONFIG);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "batch_size_test"));

    /* DSNN_SPLIT_KEYS: the same keys, read into o.split */
    memset(&o, 0, sizeof o);
    CU_ASSERT_EQUAL(dsnn_dataset_keys_read(&fake_shared_table, parse(""), &o, &o.split, &err),
                    DSNN_OK);
    CU_ASSERT_EQUAL(o.other, 3);
    CU_ASSERT_EQUAL(o.split.train_batch.size[0], 16);
    CU_ASSERT(o.split.test_batch.n == 1 && o.split.test_batch.size[0] == 1000);
    CU_ASSERT(o.split.batches_per_epoch.n == 1 && o.split.batches_per_epoch.size[0] == 0);
    CU_ASSERT_TRUE(o.split.shuffle);
    CU_ASSERT_EQUAL(dsnn_dataset_keys_read(&fake_shared_table,
                                           parse("other = 5; batch_size_test = 7; "
                                                 "train_batches_per_epoch = 2; shuffle = false;"),
                                           &o, &o.split, &err),
                    DSNN_OK);
    CU_ASSERT_EQUAL(o.other, 5);
    CU_ASSERT(o.split.test_batch.n == 1 && o.split.test_batch.size[0] == 7);
    CU_ASSERT(o.split.batches_per_epoch.n == 1 && o.split.batches_per_epoch.size[0] == 2);
    CU_ASSERT_FALSE(o.split.shuffle);
    CU_ASSERT_EQUAL(dsnn_dataset_keys_read(&fake_shared_table, parse("batch_size_test = 0;"), &o,
                                           &o.split, &err),
                    DSNN_ERR_CONFIG);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "'dataset.batch_size_test'"));
    CU_ASSERT_EQUAL(dsnn_split_keys.n, 3);

    /* the cursor of those options */
    struct dsnn_split_cursor c;
    memset(&c, 0x5a, sizeof c);
    o.split = (struct dsnn_split_options){.train_batch = dsnn_batch_schedule_const(5),
                                          .test_batch = dsnn_batch_schedule_const(9),
                                          .batches_per_epoch = dsnn_batch_schedule_const(4),
                                          .shuffle = true};
    dsnn_split_cursor_setup(&c, "fake", &o.split, 77, DSNN_NOISE_SPLIT_OFF);
    CU_ASSERT_STRING_EQUAL(c.name, "fake");
    CU_ASSERT_EQUAL(c.train_batch.size[0], 5);
    CU_ASSERT(c.test_batch.n == 1 && c.test_batch.size[0] == 9);
    CU_ASSERT(c.batches_per_epoch.n == 1 && c.batches_per_epoch.size[0] == 4);
    CU_ASSERT_TRUE(c.shuffle);
    CU_ASSERT_EQUAL(c.seed, 77);
    CU_ASSERT_EQUAL(c.noise, DSNN_NOISE_SPLIT_OFF);
    CU_ASSERT_EQUAL(c.split, -1);
    CU_ASSERT_PTR_NULL(c.order);
    CU_ASSERT_EQUAL(c.capacity, 0);
    CU_ASSERT_EQUAL_FATAL(dsnn_split_cursor_init(&c, 20, 6, &err), DSNN_OK);
    CU_ASSERT_EQUAL(c.test_max, 6); /* at most n_test */
    CU_ASSERT_EQUAL(c.max_batch, 6);

    /* what open reports: n_noise only when the noise split is on */
    struct dsnn_dataset_info info;
    memset(&info, 0x5a, sizeof info);
    dsnn_split_cursor_describe(&c, (struct dsnn_shape){3, 4, 5}, 10, 20, 6, 6, &info);
    CU_ASSERT_EQUAL(info.shape.c, 3);
    CU_ASSERT_EQUAL(info.shape.h, 4);
    CU_ASSERT_EQUAL(info.shape.w, 5);
    CU_ASSERT_EQUAL(info.n_classes, 10);
    CU_ASSERT_EQUAL(info.n_train, 20);
    CU_ASSERT_EQUAL(info.n_test, 6);
    CU_ASSERT_EQUAL(info.n_noise, 0); /* DSNN_NOISE_SPLIT_OFF */
    CU_ASSERT_EQUAL(info.batch_size_train, 5);
    CU_ASSERT_EQUAL(info.batch_size_test, 6);
    c.noise = DSNN_NOISE_SPLIT_ON;
    dsnn_split_cursor_describe(&c, (struct dsnn_shape){3, 4, 5}, 10, 20, 6, 6, &info);
    CU_ASSERT_EQUAL(info.n_noise, 6);
    dsnn_split_cursor_free(&c);
}

/* dsnn_sample_fn of test_batch_buffer: sample i is {i, -i}, its label 10 i; counts its calls. */
static int32_t fake_sample(void *state, int64_t i, float *x)
{
    (*(int *)state)++;
    x[0] = (float)i;
    x[1] = (float)-i;
    return (int32_t)(10 * i);
}

static void test_batch_buffer(void)
{
    struct dsnn_error err = {0};
    struct dsnn_split_cursor c = {.name = "t", .train_batch = dsnn_batch_schedule_const(3),
                                  .test_batch = dsnn_batch_schedule_const(2),
                                  .noise = DSNN_NOISE_SPLIT_NONE};
    struct dsnn_batch_buffer buf = {0};
    CU_ASSERT_EQUAL_FATAL(dsnn_split_cursor_init(&c, 7, 4, &err), DSNN_OK);
    CU_ASSERT_EQUAL_FATAL(dsnn_batch_buffer_init(&buf, &c, 2, &err), DSNN_OK);
    CU_ASSERT_PTR_NOT_NULL_FATAL(buf.x);
    CU_ASSERT_PTR_NOT_NULL_FATAL(buf.y);
    CU_ASSERT_EQUAL(buf.sample_size, 2);

    /* before begin: an error, the batch untouched, no sample written */
    int calls = 0;
    struct dsnn_batch b = {.n = -5};
    CU_ASSERT_EQUAL(dsnn_split_cursor_fill(&c, &buf, fake_sample, &calls, &b, &err),
                    DSNN_ERR_INVALID);
    CU_ASSERT_STRING_EQUAL(err.msg, "t: next_batch called before begin");
    CU_ASSERT_EQUAL(b.n, -5);
    CU_ASSERT_EQUAL(calls, 0);

    /* train, in order: batches of 3, 3, 1, then the end */
    CU_ASSERT_EQUAL_FATAL(dsnn_split_cursor_begin(&c, DSNN_SPLIT_TRAIN, 0, 7, &err), DSNN_OK);
    static const int sizes[] = {3, 3, 1, 0};
    int64_t next = 0;
    for (int k = 0; k < 4; k++) {
        CU_ASSERT_EQUAL_FATAL(dsnn_split_cursor_fill(&c, &buf, fake_sample, &calls, &b, &err),
                              DSNN_OK);
        CU_ASSERT_EQUAL(b.n, sizes[k]);
        CU_ASSERT_PTR_EQUAL(b.x, buf.x);
        CU_ASSERT_PTR_EQUAL(b.y, buf.y);
        for (int j = 0; j < b.n; j++, next++) {
            CU_ASSERT_EQUAL(b.x[2 * j], (float)next);
            CU_ASSERT_EQUAL(b.x[2 * j + 1], (float)-next);
            CU_ASSERT_EQUAL(b.y[j], 10 * next);
        }
    }
    CU_ASSERT_EQUAL(next, 7);
    CU_ASSERT_EQUAL(calls, 7);

    /* test: batches of test_batch = 2 */
    CU_ASSERT_EQUAL_FATAL(dsnn_split_cursor_begin(&c, DSNN_SPLIT_TEST, 0, 4, &err), DSNN_OK);
    CU_ASSERT_EQUAL(dsnn_split_cursor_fill(&c, &buf, fake_sample, &calls, &b, &err), DSNN_OK);
    CU_ASSERT_EQUAL(b.n, 2);
    CU_ASSERT_EQUAL(b.y[1], 10);

    dsnn_batch_buffer_free(&buf);
    CU_ASSERT_PTR_NULL(buf.x);
    CU_ASSERT_PTR_NULL(buf.y);
    dsnn_batch_buffer_free(&buf); /* twice, and NULL */
    dsnn_batch_buffer_free(NULL);
    dsnn_split_cursor_free(&c);
}

/* Batches the cursor serves for (split, epoch) of n samples, into sizes (at most 16). */
static int served(struct dsnn_split_cursor *c, enum dsnn_split split, int epoch, int64_t n,
                  int *sizes)
{
    struct dsnn_error err = {0};
    int k = 0, b;
    const uint32_t *idx;
    CU_ASSERT_EQUAL_FATAL(dsnn_split_cursor_begin(c, split, epoch, n, &err), DSNN_OK);
    while (k < 16 && dsnn_split_cursor_next(c, &b, &idx, &err) == DSNN_OK && b > 0)
        sizes[k++] = b;
    return k;
}

/* Per-epoch batch_size_test and train_batches_per_epoch (last value repeats, test batches at
 * most n_test, 0 = every batch), nupic's VaryingDataLoader / NumScheduler. */
static void test_cursor_per_epoch(void)
{
    struct dsnn_error err = {0};
    struct dsnn_split_options o;
    struct fake_options f;
    memset(&f, 0, sizeof f);
    CU_ASSERT_EQUAL_FATAL(dsnn_dataset_keys_read(&fake_table,
                                                 parse("batch_size_train = [2, 3]; "
                                                       "batch_size_test = [4, 20, 1]; "
                                                       "train_batches_per_epoch = [2, 0, 1];"),
                                                 &f, &f.split, &err),
                          DSNN_OK);
    o = f.split;
    struct dsnn_split_cursor c;
    dsnn_split_cursor_setup(&c, "fake", &o, 5, DSNN_NOISE_SPLIT_ON);
    CU_ASSERT_EQUAL_FATAL(dsnn_split_cursor_init(&c, 7, 6, &err), DSNN_OK);
    CU_ASSERT_EQUAL(c.test_max, 6); /* 20 capped at n_test */
    CU_ASSERT_EQUAL(c.max_batch, 6);
    int sz[16];
    /* train: epoch 0 two batches of 2; epoch 1 all of them (3 3 1); epoch 2 and later: one */
    CU_ASSERT_EQUAL(served(&c, DSNN_SPLIT_TRAIN, 0, 7, sz), 2);
    CU_ASSERT(sz[0] == 2 && sz[1] == 2);
    CU_ASSERT_EQUAL(served(&c, DSNN_SPLIT_TRAIN, 1, 7, sz), 3);
    CU_ASSERT(sz[0] == 3 && sz[1] == 3 && sz[2] == 1);
    CU_ASSERT_EQUAL(served(&c, DSNN_SPLIT_TRAIN, 2, 7, sz), 1);
    CU_ASSERT_EQUAL(served(&c, DSNN_SPLIT_TRAIN, 9, 7, sz), 1);
    CU_ASSERT_EQUAL(sz[0], 3);
    /* test and noise: 4 2; then all 6 at once (20 capped); then batches of 1; never limited */
    CU_ASSERT_EQUAL(served(&c, DSNN_SPLIT_TEST, 0, 6, sz), 2);
    CU_ASSERT(sz[0] == 4 && sz[1] == 2);
    CU_ASSERT_EQUAL(served(&c, DSNN_SPLIT_NOISE, 1, 6, sz), 1);
    CU_ASSERT_EQUAL(sz[0], 6);
    CU_ASSERT_EQUAL(served(&c, DSNN_SPLIT_TEST, 4, 6, sz), 6);
    CU_ASSERT_EQUAL(sz[5], 1);
    struct dsnn_dataset_info info;
    dsnn_split_cursor_describe(&c, (struct dsnn_shape){1, 1, 1}, 2, 7, 6, 6, &info);
    CU_ASSERT_EQUAL(info.batch_size_train, 3);
    CU_ASSERT_EQUAL(info.batch_size_test, 6);
    dsnn_split_cursor_free(&c);
}

static void test_norm_stats(void)
{
    const struct dsnn_norm_stats *s = dsnn_norm_stats_find("mnist");
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_EQUAL(s->channels, 1);
    CU_ASSERT_DOUBLE_EQUAL(s->mean[0], 0.1307, 0);
    CU_ASSERT_DOUBLE_EQUAL(s->std[0], 0.3081, 0);
    s = dsnn_norm_stats_find("Fashion-MNIST");
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_DOUBLE_EQUAL(s->mean[0], 0.2860, 0);
    CU_ASSERT_DOUBLE_EQUAL(s->std[0], 0.3530, 0);
    s = dsnn_norm_stats_find("cifar10");
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_EQUAL(s->channels, 3);
    CU_ASSERT_DOUBLE_EQUAL(s->mean[2], 0.4465, 0);
    CU_ASSERT_DOUBLE_EQUAL(s->std[1], 0.2435, 0);
    s = dsnn_norm_stats_find("cifar100");
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_DOUBLE_EQUAL(s->mean[0], 0.5071, 0);
    CU_ASSERT_DOUBLE_EQUAL(s->std[2], 0.2762, 0);
    CU_ASSERT_PTR_NULL(dsnn_norm_stats_find("imagenet"));
    CU_ASSERT_PTR_NULL(dsnn_norm_stats_find(NULL));
}

static void test_key_where(void)
{
    char buf[256];
    const struct dsnn_cfg *g = parse("a = 1;");
    CU_ASSERT_STRING_EQUAL(dsnn_dataset_key_where(g, "a", buf, sizeof buf),
                           "t.cfg:2: key 'dataset.a'");
    CU_ASSERT_STRING_EQUAL(dsnn_dataset_key_where(g, "b", buf, sizeof buf), "key 'dataset.b'");
    CU_ASSERT_STRING_EQUAL(dsnn_dataset_key_where(NULL, "c", buf, sizeof buf), "key 'dataset.c'");
    dsnn_config_file_free(g_cf);
    g_cf = NULL;
}

/* A dataset state on a sample store: samples {i, -i} labelled 10 i + 100 split. */
struct store_state {
    struct dsnn_sample_store store;
    int calls;
};

static int32_t store_sample(void *state, int64_t i, float *x)
{
    struct store_state *s = state;
    s->calls++;
    x[0] = (float)i;
    x[1] = (float)-i;
    return (int32_t)(10 * i + 100 * s->store.cur.split);
}

static void test_sample_store(void)
{
    struct dsnn_error err = {0};
    struct store_state s = {.store.cur = {.name = "st", .train_batch = dsnn_batch_schedule_const(4),
                                          .test_batch = dsnn_batch_schedule_const(3),
                                          .noise = DSNN_NOISE_SPLIT_ON}};
    CU_ASSERT_EQUAL_FATAL(dsnn_split_cursor_init(&s.store.cur, 5, 3, &err), DSNN_OK);
    CU_ASSERT_EQUAL_FATAL(dsnn_batch_buffer_init(&s.store.buf, &s.store.cur, 2, &err), DSNN_OK);
    s.store.sample = store_sample;
    s.store.n[DSNN_SPLIT_TRAIN] = 5;
    s.store.n[DSNN_SPLIT_TEST] = 3;
    s.store.n[DSNN_SPLIT_NOISE] = 2;
    struct dsnn_batch b = {0};
    /* before begin, and NULL arguments */
    CU_ASSERT_EQUAL(dsnn_sample_store_next_batch(&s, &b, &err), DSNN_ERR_INVALID);
    CU_ASSERT_STRING_EQUAL(err.msg, "st: next_batch called before begin");
    CU_ASSERT_EQUAL(dsnn_sample_store_next_batch(&s, NULL, &err), DSNN_ERR_INVALID);
    CU_ASSERT_STRING_EQUAL(err.msg, "st: next_batch: NULL argument");
    CU_ASSERT_EQUAL(dsnn_sample_store_begin(NULL, DSNN_SPLIT_TRAIN, 0, &err), DSNN_ERR_INVALID);
    /* an unknown split is refused before its n is read */
    CU_ASSERT_EQUAL(dsnn_sample_store_begin(&s, (enum dsnn_split)7, 0, &err), DSNN_ERR_INVALID);
    CU_ASSERT_EQUAL(s.store.cur.split, -1);
    /* each split serves its own n samples, from the plugin's sample function */
    static const int64_t want_n[3] = {5, 3, 2};
    for (int sp = 0; sp < 3; sp++) {
        CU_ASSERT_EQUAL_FATAL(dsnn_sample_store_begin(&s, (enum dsnn_split)sp, 1, &err), DSNN_OK);
        int64_t got = 0;
        for (int k = 0; k < 8; k++) {
            CU_ASSERT_EQUAL_FATAL(dsnn_sample_store_next_batch(&s, &b, &err), DSNN_OK);
            if (b.n == 0)
                break;
            CU_ASSERT(b.n <= (sp == 0 ? 4 : 3));
            for (int j = 0; j < b.n; j++) {
                const int64_t i = (int64_t)b.x[2 * j];
                CU_ASSERT_EQUAL(b.x[2 * j + 1], (float)-i);
                CU_ASSERT_EQUAL(b.y[j], 10 * i + 100 * sp);
                CU_ASSERT(i >= 0 && i < want_n[sp]);
            }
            got += b.n;
        }
        CU_ASSERT_EQUAL(got, want_n[sp]);
    }
    CU_ASSERT_EQUAL(s.calls, 10);
    dsnn_sample_store_free(&s.store);
    CU_ASSERT_PTR_NULL(s.store.buf.x);
    dsnn_sample_store_free(&s.store); /* twice, and NULL */
    dsnn_sample_store_free(NULL);
}

static void test_holdout(void)
{
    struct dsnn_error err = {0};
    struct dsnn_holdout_options o;
    struct dsnn_holdout h;
    /* the defaults: everything, no validation */
    const struct dsnn_cfg *g = parse("a = 1;");
    CU_ASSERT_EQUAL_FATAL(dsnn_holdout_read(g, &o, &err), DSNN_OK);
    CU_ASSERT_EQUAL(o.train_size, 0);
    CU_ASSERT_EQUAL(o.test_size, 0);
    CU_ASSERT_EQUAL(o.val_fraction, 0);
    CU_ASSERT_EQUAL_FATAL(dsnn_holdout_cut(g, &o, 50, "tr", 20, "te", &h, &err), DSNN_OK);
    CU_ASSERT(h.n_train == 50 && h.n_test == 20 && !h.from_train && h.test_first == 0);
    /* sizes limit the splits */
    g = parse("train_size = 7; test_size = 3;");
    CU_ASSERT_EQUAL_FATAL(dsnn_holdout_read(g, &o, &err), DSNN_OK);
    CU_ASSERT_EQUAL_FATAL(dsnn_holdout_cut(g, &o, 50, "tr", 20, "te", &h, &err), DSNN_OK);
    CU_ASSERT(h.n_train == 7 && h.n_test == 3 && !h.from_train);
    CU_ASSERT_EQUAL(dsnn_holdout_cut(g, &o, 50, "tr", 2, "te", &h, &err), DSNN_ERR_CONFIG);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "t.cfg:2: key 'dataset.test_size': 3 is more than "
                                           "the 2 samples of the test split (te)"));
    /* validation: the last round(0.25 * 50) = 13 train samples, then the sizes on the parts */
    g = parse("val_fraction = 0.25; test_size = 5;");
    CU_ASSERT_EQUAL_FATAL(dsnn_holdout_read(g, &o, &err), DSNN_OK);
    CU_ASSERT_EQUAL_FATAL(dsnn_holdout_cut(g, &o, 50, "tr", 0, "te", &h, &err), DSNN_OK);
    CU_ASSERT(h.n_train == 37 && h.n_test == 5 && h.from_train && h.test_first == 37);
    CU_ASSERT_EQUAL(dsnn_holdout_cut(g, &o, 16, "tr", 0, "te", &h, &err), DSNN_ERR_CONFIG);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "5 is more than the 4 samples of the test split (the "
                                           "validation part of tr)"));
    CU_ASSERT_EQUAL(dsnn_holdout_cut(g, &o, 1, "tr", 0, "te", &h, &err), DSNN_ERR_CONFIG);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "key 'dataset.val_fraction': 0.25 of the 1 samples "
                                           "of tr gives 0 validation and 1 training samples"));
    /* val_fraction = 1 is in the spec's closed range but refused */
    g = parse("val_fraction = 1.0;");
    CU_ASSERT_EQUAL(dsnn_holdout_read(g, &o, &err), DSNN_ERR_CONFIG);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "must be in [0, 1), got 1"));
    dsnn_config_file_free(g_cf);
    g_cf = NULL;
}

static CU_TestInfo tests[] = {
    {"noise: counts as nupic's RandomNoise", test_counts},
    {"noise: uniform over positions", test_uniform},
    {"noise: deterministic per (seed, sample)", test_determinism},
    {"noise keys", test_noise_options},
    {"batch size per epoch", test_batch_schedule},
    {"cursor keys, cursor setup and dataset info", test_split_options},
    {"batch buffers filled from a split cursor", test_batch_buffer},
    {"cursor: per-epoch test batch sizes and batches per epoch", test_cursor_per_epoch},
    {"named normalisation statistics", test_norm_stats},
    {"key locations in messages", test_key_where},
    {"sample store: begin and next_batch of a dataset", test_sample_store},
    {"holdout keys: train_size, test_size, val_fraction", test_holdout},
    CU_TEST_INFO_NULL,
};

DSNN_TEST_MAIN("dataset helpers: noise, batch schedule, statistics", tests)
