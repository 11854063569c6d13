/* tests/unit/test_synthetic.c - the "synthetic" dataset plugin: seeded Gaussian clusters. */
#define DATASET_FIXTURE_PLUGIN "synthetic"
#include "dataset_fixture.h"

/* Reads one epoch of split into xs / ys (either may be NULL). Returns the count. */
static int64_t read_epoch(struct ds *d, enum dsnn_split split, int epoch, float *xs, int32_t *ys,
                          int *n_batches)
{
    return ds_collect(d, split, epoch, xs, ys, INT64_MAX, NULL, 0, n_batches);
}

static void test_descriptor(void)
{
    CU_ASSERT_FATAL(load_plugin());
    CU_ASSERT_STRING_EQUAL(g_comp->name, "synthetic");
    static const char *const keys[] = {"n_classes", "shape", "n_train", "n_test", "separation",
                                       "noise_std", "data_seed", "batch_size_train",
                                       "batch_size_test", "train_batches_per_epoch", "shuffle"};
    expect_keys_documented(keys, DSNN_COUNT_OF(keys), false);
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
    expect_error(DSNN_ERR_CONFIG, "shape = [1, 2];", "shape", NULL);
    expect_error(DSNN_ERR_CONFIG, "shape = [1, 2, 3, 4];", "shape", NULL);
    expect_error(DSNN_ERR_CONFIG, "shape = [1, 0, 3];", "shape", NULL);
    expect_error(DSNN_ERR_CONFIG, "n_classes = 1;", "n_classes", NULL);
    expect_error(DSNN_ERR_CONFIG, "noise_std = -1.0;", "noise_std", NULL);
    expect_error(DSNN_ERR_CONFIG, "n_train = 0;", "n_train", NULL);
    expect_error(DSNN_ERR_CONFIG, "batch_size_train = [];", "batch_size_train", NULL);
    expect_error(DSNN_ERR_CONFIG, "shape = [1000, 1000, 1000];", "too many", NULL);
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
