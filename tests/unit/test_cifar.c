/* tests/unit/test_cifar.c - the "cifar" dataset plugin, loaded from $DSNN_BUILD_DIR/plugins/cifar.so
 * and driven through its ops table, as the host drives it.
 *
 * Every test writes small files in the exact CIFAR binary layout (CIFAR-10: 1 label byte + 3072
 * pixel bytes per record, data_batch_1..5.bin and test_batch.bin; CIFAR-100: coarse + fine label
 * bytes + 3072 pixels, train.bin and test.bin) into a fresh temporary directory.
 *
 * Sample i of a fixture (i counts over the train files in order, and separately over the test
 * file) is recognisable from its pixels: pixel 0 = i % 256, pixel 1 = i / 256; the other pixels
 * are a hash of (i, position), so that a crop offset or a mirror is identifiable. */
#define DATASET_FIXTURE_PLUGIN "cifar"
#include "dataset_fixture.h"

#define PIX 3072
#define PLANE 1024

/* ---- fixtures ---- */

static uint32_t mix32(uint32_t x)
{
    x ^= x >> 16;
    x *= 0x7feb352du;
    x ^= x >> 15;
    x *= 0x846ca68bu;
    x ^= x >> 16;
    return x;
}

/* Pixel j (channel-major: c * 1024 + y * 32 + x) of sample i; test samples use another hash. */
static uint8_t pix(uint32_t i, uint32_t j, bool test)
{
    if (j == 0)
        return (uint8_t)(i & 255);
    if (j == 1)
        return (uint8_t)((i >> 8) & 255);
    return (uint8_t)(mix32(i * 4099u + j * 3u + (test ? 0x5555u : 0u)) & 255);
}

static int lab10(uint32_t i)
{
    return (int)((i * 7u + 1u) % 10u);
}
static int lab_fine(uint32_t i)
{
    return (int)((i * 7u + 1u) % 100u);
}
static int lab_coarse(uint32_t i)
{
    return (int)((i * 3u + 2u) % 20u);
}

/* Records of samples first..first+n. */
static struct bytes records(bool c100, uint32_t first, uint32_t n, bool test)
{
    struct bytes b = {0};
    uint8_t rec[2 + PIX];
    for (uint32_t i = first; i < first + n; i++) {
        size_t o = 0;
        if (c100) {
            rec[o++] = (uint8_t)lab_coarse(i);
            rec[o++] = (uint8_t)lab_fine(i);
        } else {
            rec[o++] = (uint8_t)lab10(i);
        }
        for (uint32_t j = 0; j < PIX; j++)
            rec[o + j] = pix(i, j, test);
        put(&b, rec, o + PIX);
    }
    return b;
}

/* CIFAR-10 train files hold 3, 4, 2, 5, 1 samples (15 in all, in this order). */
static const uint32_t c10_counts[5] = {3, 4, 2, 5, 1};
#define C10_TRAIN 15

/* The CIFAR-10 fixture: train_counts[k] samples in data_batch_<k+1>.bin, n_test in the test. */
static void make_cifar10(const uint32_t *counts, uint32_t n_test)
{
    uint32_t first = 0;
    for (int k = 0; k < 5; k++) {
        char name[64];
        snprintf(name, sizeof name, "data_batch_%d.bin", k + 1);
        write_bytes(name, records(false, first, counts[k], false));
        first += counts[k];
    }
    write_bytes("test_batch.bin", records(false, 0, n_test, true));
}

static void make_cifar100(uint32_t n_train, uint32_t n_test)
{
    write_bytes("train.bin", records(true, 0, n_train, false));
    write_bytes("test.bin", records(true, 0, n_test, true));
}

/* ---- reading ---- */

/* Reads one epoch of split into xs [n][3072] / ys [n] (either may be NULL), batch sizes into
 * sizes (may be NULL). Returns the sample count, -1 on error. */
static int64_t read_epoch(struct ds *d, enum dsnn_split split, int epoch, float *xs, int32_t *ys,
                          int64_t max, int *sizes, int *n_batches)
{
    return ds_collect(d, split, epoch, xs, ys, max, sizes, 64, n_batches);
}

/* x (normalize = "none") equals sample i exactly. */
static bool is_sample(const float *x, uint32_t i, bool test)
{
    for (uint32_t j = 0; j < PIX; j++)
        if (x[j] != (float)(pix(i, j, test) / 255.0))
            return false;
    return true;
}

/* ---- tests ---- */

static void test_descriptor(void)
{
    CU_ASSERT_FATAL(load_plugin());
    CU_ASSERT_EQUAL(g_comp->kind, DSNN_KIND_DATASET);
    CU_ASSERT_STRING_EQUAL(g_comp->name, "cifar");
    CU_ASSERT_EQUAL(g_comp->ops_size, sizeof(struct dsnn_dataset_ops));
    static const char *const keys[] = {
        "variant", "path", "label_mode", "batch_size_train", "batch_size_test",
        "train_batches_per_epoch", "shuffle", "augment", "augment_padding", "augment_flip",
        "normalize", "mean", "std", "train_size", "test_size", "val_fraction", "test_noise",
        "noise_level", "noise_high", "noise_low", "noise_space", "noise_seed"};
    expect_keys_documented(keys, DSNN_COUNT_OF(keys), true);
}

static void test_values_cifar10(void)
{
    SETUP();
    make_cifar10(c10_counts, 6);
    struct ds d;
    static float xs[C10_TRAIN * PIX];
    int32_t ys[C10_TRAIN];
    int sizes[64], nb;
    CU_ASSERT_EQUAL(ds_open(&d, 1, "normalize = \"none\"; shuffle = false; batch_size_train = 4; "
                                   "batch_size_test = 4;"),
                    DSNN_OK);
    if (d.st == DSNN_OK) {
        CU_ASSERT_EQUAL(d.info.shape.c, 3);
        CU_ASSERT_EQUAL(d.info.shape.h, 32);
        CU_ASSERT_EQUAL(d.info.shape.w, 32);
        CU_ASSERT_EQUAL(d.info.n_classes, 10);
        CU_ASSERT_EQUAL(d.info.n_train, C10_TRAIN);
        CU_ASSERT_EQUAL(d.info.n_test, 6);
        CU_ASSERT_EQUAL(d.info.n_noise, 0);
        CU_ASSERT_EQUAL(d.info.batch_size_train, 4);
        CU_ASSERT_EQUAL(d.info.batch_size_test, 4);
        /* the five files in order, each record's planes as stored */
        CU_ASSERT_EQUAL(read_epoch(&d, DSNN_SPLIT_TRAIN, 0, xs, ys, C10_TRAIN, sizes, &nb),
                        C10_TRAIN);
        CU_ASSERT_EQUAL(nb, 4);
        CU_ASSERT(sizes[0] == 4 && sizes[3] == 3);
        bool ok = true;
        for (uint32_t i = 0; i < C10_TRAIN; i++)
            ok = ok && is_sample(xs + i * PIX, i, false) && ys[i] == lab10(i);
        CU_ASSERT(ok);
        CU_ASSERT_EQUAL(read_epoch(&d, DSNN_SPLIT_TEST, 0, xs, ys, 6, sizes, &nb), 6);
        ok = true;
        for (uint32_t i = 0; i < 6; i++)
            ok = ok && is_sample(xs + i * PIX, i, true) && ys[i] == lab10(i);
        CU_ASSERT(ok);
        /* exhausted stays exhausted */
        struct dsnn_batch b = {0};
        CU_ASSERT_EQUAL(g_ops->next_batch(d.state, &b, &d.err), DSNN_OK);
        CU_ASSERT_EQUAL(b.n, 0);
    }
    ds_close(&d);

    /* gzip-compressed files read the same; "<name>.gz" is found for "<name>" */
    struct bytes raw = records(false, 3, 4, false);
    write_bytes("data_batch_2.bin.gz", gzip_stored(raw.p, raw.n));
    free(raw.p);
    unlink(path_of("data_batch_2.bin"));
    raw = records(false, 0, 6, true);
    write_bytes("test_batch.bin", gzip_stored(raw.p, raw.n));
    free(raw.p);
    CU_ASSERT_EQUAL(ds_open(&d, 1, "normalize = \"none\"; shuffle = false;"), DSNN_OK);
    if (d.st == DSNN_OK) {
        CU_ASSERT_EQUAL(read_epoch(&d, DSNN_SPLIT_TRAIN, 0, xs, ys, C10_TRAIN, NULL, NULL),
                        C10_TRAIN);
        bool ok = true;
        for (uint32_t i = 0; i < C10_TRAIN; i++)
            ok = ok && is_sample(xs + i * PIX, i, false) && ys[i] == lab10(i);
        CU_ASSERT(ok);
        CU_ASSERT_EQUAL(read_epoch(&d, DSNN_SPLIT_TEST, 0, xs, ys, 6, NULL, NULL), 6);
        CU_ASSERT(is_sample(xs + 5 * PIX, 5, true));
    }
    ds_close(&d);
    dir_cleanup();
}

static void test_values_cifar100(void)
{
    SETUP();
    make_cifar100(30, 7);
    struct ds d;
    static float xs[30 * PIX];
    int32_t ys[30];
    for (int coarse = 0; coarse < 2; coarse++) {
        CU_ASSERT_EQUAL(ds_open(&d, 1, "variant = \"cifar100\"; label_mode = \"%s\"; "
                                       "normalize = \"none\"; shuffle = false;",
                                coarse ? "coarse" : "fine"),
                        DSNN_OK);
        if (d.st != DSNN_OK)
            continue;
        CU_ASSERT_EQUAL(d.info.n_classes, coarse ? 20 : 100);
        CU_ASSERT_EQUAL(d.info.n_train, 30);
        CU_ASSERT_EQUAL(d.info.n_test, 7);
        CU_ASSERT_EQUAL(read_epoch(&d, DSNN_SPLIT_TRAIN, 0, xs, ys, 30, NULL, NULL), 30);
        bool ok = true;
        for (uint32_t i = 0; i < 30; i++)
            ok = ok && is_sample(xs + i * PIX, i, false) &&
                 ys[i] == (coarse ? lab_coarse(i) : lab_fine(i));
        CU_ASSERT(ok);
        CU_ASSERT_EQUAL(read_epoch(&d, DSNN_SPLIT_TEST, 0, xs, ys, 7, NULL, NULL), 7);
        ok = true;
        for (uint32_t i = 0; i < 7; i++)
            ok = ok && is_sample(xs + i * PIX, i, true) &&
                 ys[i] == (coarse ? lab_coarse(i) : lab_fine(i));
        CU_ASSERT(ok);
        ds_close(&d);
    }
    /* the default label_mode is fine */
    CU_ASSERT_EQUAL(ds_open(&d, 1, "variant = \"cifar100\";"), DSNN_OK);
    CU_ASSERT_EQUAL(d.info.n_classes, 100);
    ds_close(&d);
    dir_cleanup();
}

/* Per-channel mean and std of the pixels/255 of train samples 0..n-1. */
static void channel_stats(uint32_t n, double mean[3], double sd[3])
{
    for (int c = 0; c < 3; c++) {
        double s1 = 0, s2 = 0;
        for (uint32_t i = 0; i < n; i++)
            for (int j = c * PLANE; j < (c + 1) * PLANE; j++) {
                double v = pix(i, (uint32_t)j, false) / 255.0;
                s1 += v;
                s2 += v * v;
            }
        mean[c] = s1 / ((double)n * PLANE);
        sd[c] = sqrt(s2 / ((double)n * PLANE) - mean[c] * mean[c]);
    }
}

/* The first unshuffled train batch is x = (p/255 - mean[c]) / std[c]. */
static bool normalised_as(struct ds *d, uint32_t n, const double mean[3], const double sd[3])
{
    static float xs[C10_TRAIN * PIX];
    if (read_epoch(d, DSNN_SPLIT_TRAIN, 0, xs, NULL, C10_TRAIN, NULL, NULL) != n)
        return false;
    for (uint32_t i = 0; i < n; i++)
        for (int c = 0; c < 3; c++)
            for (int j = c * PLANE; j < (c + 1) * PLANE; j++) {
                double want = (pix(i, (uint32_t)j, false) / 255.0 - mean[c]) / sd[c];
                if (fabs(xs[i * PIX + j] - want) > 1e-5 * (1 + fabs(want)))
                    return false;
            }
    return true;
}

static void test_normalize(void)
{
    SETUP();
    make_cifar10(c10_counts, 4);
    struct ds d;
    double mean[3], sd[3];
    channel_stats(C10_TRAIN, mean, sd);
    CU_ASSERT_EQUAL(ds_open(&d, 1, "shuffle = false;"), DSNN_OK); /* default: "dataset" */
    if (d.st == DSNN_OK)
        CU_ASSERT(normalised_as(&d, C10_TRAIN, mean, sd));
    ds_close(&d);
    channel_stats(9, mean, sd); /* over the train split as used */
    CU_ASSERT_EQUAL(ds_open(&d, 1, "shuffle = false; train_size = 9;"), DSNN_OK);
    if (d.st == DSNN_OK)
        CU_ASSERT(normalised_as(&d, 9, mean, sd));
    ds_close(&d);

    static const double c10m[3] = {0.4914, 0.4822, 0.4465}, c10s[3] = {0.2470, 0.2435, 0.2616};
    static const double c100m[3] = {0.5071, 0.4865, 0.4409},
                        c100s[3] = {0.2673, 0.2564, 0.2762};
    CU_ASSERT_EQUAL(ds_open(&d, 1, "shuffle = false; normalize = \"cifar10\";"), DSNN_OK);
    if (d.st == DSNN_OK)
        CU_ASSERT(normalised_as(&d, C10_TRAIN, c10m, c10s));
    ds_close(&d);
    CU_ASSERT_EQUAL(ds_open(&d, 1, "shuffle = false; normalize = \"cifar100\";"), DSNN_OK);
    if (d.st == DSNN_OK)
        CU_ASSERT(normalised_as(&d, C10_TRAIN, c100m, c100s));
    ds_close(&d);
    /* overrides: one value for every channel, or three */
    static const double half[3] = {0.5, 0.5, 0.5}, quarter[3] = {0.25, 0.25, 0.25};
    CU_ASSERT_EQUAL(ds_open(&d, 1, "shuffle = false; mean = 0.5; std = 0.25;"), DSNN_OK);
    if (d.st == DSNN_OK)
        CU_ASSERT(normalised_as(&d, C10_TRAIN, half, quarter));
    ds_close(&d);
    static const double m3[3] = {0.1, 0.2, 0.3};
    CU_ASSERT_EQUAL(ds_open(&d, 1, "shuffle = false; normalize = \"cifar10\"; "
                                   "mean = [0.1, 0.2, 0.3];"),
                    DSNN_OK);
    if (d.st == DSNN_OK)
        CU_ASSERT(normalised_as(&d, C10_TRAIN, m3, c10s));
    ds_close(&d);
    static const double zero[3] = {0, 0, 0}, one[3] = {1, 1, 1};
    CU_ASSERT_EQUAL(ds_open(&d, 1, "shuffle = false; normalize = \"none\";"), DSNN_OK);
    if (d.st == DSNN_OK)
        CU_ASSERT(normalised_as(&d, C10_TRAIN, zero, one));
    ds_close(&d);

    expect_error(DSNN_ERR_CONFIG, "std = [0.2, 0.3];", "std", "three", NULL);
    expect_error(DSNN_ERR_CONFIG, "std = [0.2, 0.0, 0.3];", "std", "> 0", NULL);
    expect_error(DSNN_ERR_CONFIG, "normalize = \"none\"; mean = 0.5;", "mean", "none", NULL);
    expect_error(DSNN_ERR_CONFIG, "normalize = \"mnist\";", "normalize", "\"cifar100\"", NULL);
    dir_cleanup();
}

/* The crop offset and mirror of x, an augmentation of sample i (normalize = "none"), or -1. */
static int find_transform(const float *x, uint32_t i, int pad)
{
    int found = -1;
    for (int t = 0; t < (2 * pad + 1) * (2 * pad + 1) * 2; t++) {
        int top = t / ((2 * pad + 1) * 2), left = (t / 2) % (2 * pad + 1), mirror = t % 2;
        bool match = true;
        for (int c = 0; c < 3 && match; c++)
            for (int y = 0; y < 32 && match; y++)
                for (int xx = 0; xx < 32 && match; xx++) {
                    int sy = y + top - pad, sx = (mirror ? 31 - xx : xx) + left - pad;
                    uint8_t p = sy >= 0 && sy < 32 && sx >= 0 && sx < 32
                                    ? pix(i, (uint32_t)(c * PLANE + sy * 32 + sx), false)
                                    : 0;
                    match = x[c * PLANE + y * 32 + xx] == (float)(p / 255.0);
                }
        if (match) {
            if (found >= 0)
                return -2; /* ambiguous */
            found = t;
        }
    }
    return found;
}

static void test_augment(void)
{
    SETUP();
    static const uint32_t counts[5] = {40, 40, 40, 40, 40};
    enum { N = 200 };
    make_cifar10(counts, 5);
    static float a[N * PIX], b[N * PIX], c[N * PIX];
    struct ds d;
    CU_ASSERT_EQUAL(ds_open(&d, 4, "normalize = \"none\"; shuffle = false; augment = true; "
                                   "batch_size_train = 32;"),
                    DSNN_OK);
    if (d.st == DSNN_OK) {
        CU_ASSERT_EQUAL(read_epoch(&d, DSNN_SPLIT_TRAIN, 0, a, NULL, N, NULL, NULL), N);
        int tops[9] = {0}, lefts[9] = {0}, mirrors[2] = {0}, bad = 0;
        for (uint32_t i = 0; i < N; i++) {
            int t = find_transform(a + i * PIX, i, 4);
            if (t < 0) {
                bad++;
                continue;
            }
            tops[t / 18]++;
            lefts[(t / 2) % 9]++;
            mirrors[t % 2]++;
        }
        CU_ASSERT_EQUAL(bad, 0);
        bool all = mirrors[0] > 50 && mirrors[1] > 50;
        for (int k = 0; k < 9; k++)
            all = all && tops[k] > 5 && lefts[k] > 5;
        CU_ASSERT(all); /* every offset and both orientations occur */
        /* the same epoch again gives the same images; another epoch others */
        CU_ASSERT_EQUAL(read_epoch(&d, DSNN_SPLIT_TRAIN, 0, b, NULL, N, NULL, NULL), N);
        CU_ASSERT(memcmp(a, b, sizeof a) == 0);
        CU_ASSERT_EQUAL(read_epoch(&d, DSNN_SPLIT_TRAIN, 1, c, NULL, N, NULL, NULL), N);
        CU_ASSERT(memcmp(a, c, sizeof a) != 0);
        /* the test split is never augmented */
        CU_ASSERT_EQUAL(read_epoch(&d, DSNN_SPLIT_TEST, 0, c, NULL, 5, NULL, NULL), 5);
        CU_ASSERT(is_sample(c, 0, true) && is_sample(c + 4 * PIX, 4, true));
    }
    ds_close(&d);
    /* independent of the batch size and of the order: shuffled epochs hold the same images */
    CU_ASSERT_EQUAL(ds_open(&d, 4, "normalize = \"none\"; augment = true; batch_size_train = 7;"),
                    DSNN_OK);
    if (d.st == DSNN_OK) {
        CU_ASSERT_EQUAL(read_epoch(&d, DSNN_SPLIT_TRAIN, 0, b, NULL, N, NULL, NULL), N);
        /* find each shuffled image among the unshuffled ones of the same epoch */
        bool same = true;
        for (int k = 0; k < N && same; k++) {
            bool found = false;
            for (int i = 0; i < N && !found; i++)
                found = memcmp(b + k * PIX, a + i * PIX, PIX * sizeof *a) == 0;
            same = found;
        }
        CU_ASSERT(same);
    }
    ds_close(&d);
    /* another seed, other crops */
    CU_ASSERT_EQUAL(ds_open(&d, 5, "normalize = \"none\"; shuffle = false; augment = true;"),
                    DSNN_OK);
    if (d.st == DSNN_OK) {
        read_epoch(&d, DSNN_SPLIT_TRAIN, 0, b, NULL, N, NULL, NULL);
        CU_ASSERT(memcmp(a, b, sizeof a) != 0);
    }
    ds_close(&d);
    /* no flip; padding 1: offsets in [0, 2] */
    CU_ASSERT_EQUAL(ds_open(&d, 4, "normalize = \"none\"; shuffle = false; augment = true; "
                                   "augment_flip = false; augment_padding = 1;"),
                    DSNN_OK);
    if (d.st == DSNN_OK) {
        read_epoch(&d, DSNN_SPLIT_TRAIN, 0, b, NULL, N, NULL, NULL);
        bool ok = true;
        int identity = 0;
        for (uint32_t i = 0; i < N; i++) {
            int t = find_transform(b + i * PIX, i, 1);
            ok = ok && t >= 0 && t % 2 == 0;
            identity += t == 8; /* top 1, left 1, no mirror */
        }
        CU_ASSERT(ok);
        CU_ASSERT(identity > 5 && identity < 60);
    }
    ds_close(&d);
    /* padding 0, no flip: the images themselves; normalisation applies to the padding too */
    CU_ASSERT_EQUAL(ds_open(&d, 4, "normalize = \"none\"; shuffle = false; augment = true; "
                                   "augment_flip = false; augment_padding = 0;"),
                    DSNN_OK);
    if (d.st == DSNN_OK) {
        read_epoch(&d, DSNN_SPLIT_TRAIN, 0, b, NULL, N, NULL, NULL);
        bool ok = true;
        for (uint32_t i = 0; i < N; i++)
            ok = ok && is_sample(b + i * PIX, i, false);
        CU_ASSERT(ok);
    }
    ds_close(&d);
    CU_ASSERT_EQUAL(ds_open(&d, 4, "shuffle = false; augment = true; mean = 0.5; std = 0.25;"),
                    DSNN_OK);
    if (d.st == DSNN_OK) {
        read_epoch(&d, DSNN_SPLIT_TRAIN, 0, b, NULL, N, NULL, NULL);
        int pad = 0;
        for (int i = 0; i < N * PIX; i++)
            pad += b[i] == -2.0f; /* (0 - 0.5) / 0.25 */
        CU_ASSERT(pad > 1000);
    }
    ds_close(&d);
    expect_error(DSNN_ERR_CONFIG, "augment_padding = 17;", "augment_padding", NULL);
    dir_cleanup();
}

static void test_noise_split(void)
{
    SETUP();
    make_cifar10(c10_counts, 12);
    static float clean[12 * PIX], noisy[12 * PIX], again[12 * PIX];
    int32_t yc[12], yn[12];
    struct ds d;
    CU_ASSERT_EQUAL(ds_open(&d, 2, "normalize = \"cifar10\"; test_noise = true; "
                                   "noise_level = 0.1; batch_size_test = 5;"),
                    DSNN_OK);
    if (d.st == DSNN_OK) {
        CU_ASSERT_EQUAL(d.info.n_noise, 12);
        CU_ASSERT_EQUAL(read_epoch(&d, DSNN_SPLIT_TEST, 0, clean, yc, 12, NULL, NULL), 12);
        CU_ASSERT_EQUAL(read_epoch(&d, DSNN_SPLIT_NOISE, 0, noisy, yn, 12, NULL, NULL), 12);
        CU_ASSERT(memcmp(yc, yn, sizeof yc) == 0);
        /* floor(3072 * 0.1) = 307 values over all channels: 153 at 0.9, 154 at 0.1 (after
         * normalisation, as nupic) */
        bool ok = true;
        for (int i = 0; i < 12; i++) {
            int hi = 0, lo = 0, other = 0;
            for (int j = 0; j < PIX; j++) {
                float v = noisy[i * PIX + j];
                if (v == 0.9f)
                    hi++;
                else if (v == 0.1f)
                    lo++;
                else if (v != clean[i * PIX + j])
                    other++;
            }
            ok = ok && hi == 153 && lo == 154 && other == 0;
        }
        CU_ASSERT(ok);
        CU_ASSERT_EQUAL(read_epoch(&d, DSNN_SPLIT_NOISE, 3, again, yn, 12, NULL, NULL), 12);
        CU_ASSERT(memcmp(noisy, again, sizeof noisy) == 0);
    }
    ds_close(&d);
    /* noise_space = "pixel": the pixel values 0.9 / 0.1 normalised per channel */
    CU_ASSERT_EQUAL(ds_open(&d, 2, "normalize = \"cifar10\"; test_noise = true; "
                                   "noise_level = 0.1; noise_space = \"pixel\";"),
                    DSNN_OK);
    if (d.st == DSNN_OK) {
        CU_ASSERT_EQUAL(read_epoch(&d, DSNN_SPLIT_NOISE, 0, again, yn, 12, NULL, NULL), 12);
        static const double m[3] = {0.4914, 0.4822, 0.4465}, s[3] = {0.2470, 0.2435, 0.2616};
        bool ok = true;
        for (int i = 0; i < 12; i++) {
            int hi = 0, lo = 0;
            for (int j = 0; j < PIX; j++) {
                int c = j / PLANE;
                float h = (float)((0.9f - m[c]) / s[c]), l = (float)((0.1f - m[c]) / s[c]);
                hi += fabsf(again[i * PIX + j] - h) < 1e-5f;
                lo += fabsf(again[i * PIX + j] - l) < 1e-5f;
            }
            ok = ok && hi == 153 && lo == 154;
        }
        CU_ASSERT(ok);
        /* the same positions as in normalized space (same seed) */
        bool same = true;
        for (int j = 0; j < 12 * PIX; j++)
            same = same && ((noisy[j] != clean[j]) == (again[j] != clean[j]));
        CU_ASSERT(same);
    }
    ds_close(&d);
    CU_ASSERT_EQUAL(ds_open(&d, 2, "%s", ""), DSNN_OK);
    if (d.st == DSNN_OK) {
        CU_ASSERT_EQUAL(d.info.n_noise, 0);
        CU_ASSERT_EQUAL(g_ops->begin(d.state, DSNN_SPLIT_NOISE, 0, &d.err), DSNN_ERR_UNSUPPORTED);
    }
    ds_close(&d);
    expect_error(DSNN_ERR_CONFIG, "test_noise = true; noise_level = 2.0;", "noise_level", NULL);
    dir_cleanup();
}

static void test_batches(void)
{
    SETUP();
    make_cifar10(c10_counts, 6);
    struct ds d;
    int sizes[64], nb;
    CU_ASSERT_EQUAL(ds_open(&d, 1, "batch_size_train = [2, 4, 6]; batch_size_test = 5;"),
                    DSNN_OK);
    if (d.st == DSNN_OK) {
        CU_ASSERT_EQUAL(d.info.batch_size_train, 6);
        CU_ASSERT_EQUAL(d.info.batch_size_test, 5);
        static const int want_nb[] = {8, 4, 3, 3};
        for (int e = 0; e < 4; e++) {
            CU_ASSERT_EQUAL(read_epoch(&d, DSNN_SPLIT_TRAIN, e, NULL, NULL, 0, sizes, &nb),
                            C10_TRAIN);
            CU_ASSERT_EQUAL(nb, want_nb[e]);
        }
    }
    ds_close(&d);
    CU_ASSERT_EQUAL(ds_open(&d, 1, "batch_size_train = [2, 4]; train_batches_per_epoch = 2;"),
                    DSNN_OK);
    if (d.st == DSNN_OK) {
        CU_ASSERT_EQUAL(read_epoch(&d, DSNN_SPLIT_TRAIN, 0, NULL, NULL, 0, sizes, &nb), 4);
        CU_ASSERT_EQUAL(read_epoch(&d, DSNN_SPLIT_TRAIN, 1, NULL, NULL, 0, sizes, &nb), 8);
        CU_ASSERT_EQUAL(nb, 2);
        CU_ASSERT_EQUAL(read_epoch(&d, DSNN_SPLIT_TEST, 1, NULL, NULL, 0, sizes, &nb), 6);
    }
    ds_close(&d);
    /* batch sizes above the split size report the split size */
    CU_ASSERT_EQUAL(ds_open(&d, 1, "batch_size_train = 1000;"), DSNN_OK);
    CU_ASSERT_EQUAL(d.info.batch_size_train, C10_TRAIN);
    CU_ASSERT_EQUAL(d.info.batch_size_test, 6);
    ds_close(&d);
    expect_error(DSNN_ERR_CONFIG, "batch_size_train = [];", "batch_size_train", NULL);
    expect_error(DSNN_ERR_CONFIG, "batch_size_test = 0;", "batch_size_test", NULL);
    dir_cleanup();
}

static void test_shuffle_and_sizes(void)
{
    SETUP();
    make_cifar10(c10_counts, 6);
    struct ds d;
    static float xs[C10_TRAIN * PIX];
    uint32_t first[C10_TRAIN], second[C10_TRAIN];
    CU_ASSERT_EQUAL(ds_open(&d, 9, "normalize = \"none\"; batch_size_train = 4;"), DSNN_OK);
    if (d.st == DSNN_OK) {
        for (int e = 0; e < 3; e++) {
            int32_t ys[C10_TRAIN];
            CU_ASSERT_EQUAL(read_epoch(&d, DSNN_SPLIT_TRAIN, e, xs, ys, C10_TRAIN, NULL, NULL),
                            C10_TRAIN);
            uint32_t seen = 0;
            bool labels = true;
            for (int i = 0; i < C10_TRAIN; i++) {
                uint32_t id = sample_id(xs + i * PIX);
                seen |= id < C10_TRAIN ? 1u << id : 1u << 31;
                labels = labels && id < C10_TRAIN && ys[i] == lab10(id);
                (e == 0 ? first : second)[i] = id;
            }
            CU_ASSERT_EQUAL(seen, (1u << C10_TRAIN) - 1);
            CU_ASSERT(labels);
        }
        CU_ASSERT(memcmp(first, second, sizeof first) != 0);
    }
    ds_close(&d);

    /* train_size, test_size, val_fraction */
    CU_ASSERT_EQUAL(ds_open(&d, 9, "normalize = \"none\"; shuffle = false; train_size = 8; "
                                   "test_size = 2;"),
                    DSNN_OK);
    CU_ASSERT_EQUAL(d.info.n_train, 8);
    CU_ASSERT_EQUAL(d.info.n_test, 2);
    ds_close(&d);
    unlink(path_of("test_batch.bin"));
    CU_ASSERT_EQUAL(ds_open(&d, 9, "normalize = \"none\"; shuffle = false; val_fraction = 0.2; "
                                   "test_noise = true;"),
                    DSNN_OK);
    if (d.st == DSNN_OK) {
        CU_ASSERT_EQUAL(d.info.n_train, 12);
        CU_ASSERT_EQUAL(d.info.n_test, 3);
        CU_ASSERT_EQUAL(d.info.n_noise, 3);
        int32_t ys[3];
        CU_ASSERT_EQUAL(read_epoch(&d, DSNN_SPLIT_TEST, 0, xs, ys, 3, NULL, NULL), 3);
        CU_ASSERT(is_sample(xs, 12, false) && is_sample(xs + 2 * PIX, 14, false));
        CU_ASSERT_EQUAL(ys[0], lab10(12));
    }
    ds_close(&d);
    expect_error(DSNN_ERR_IO, "", path_of("test_batch.bin"), NULL);
    expect_error(DSNN_ERR_CONFIG, "val_fraction = 0.2; train_size = 13;", "train_size", "12",
                 NULL);
    expect_error(DSNN_ERR_CONFIG, "val_fraction = 1.0;", "val_fraction", NULL);
    dir_cleanup();
}

static void test_errors(void)
{
    SETUP();
    /* nothing there */
    expect_error(DSNN_ERR_IO, "", path_of("data_batch_1.bin"), "dataset.path", NULL);
    make_cifar10(c10_counts, 6);
    /* a missing file among the five */
    unlink(path_of("data_batch_4.bin"));
    expect_error(DSNN_ERR_IO, "", path_of("data_batch_4.bin"), "No such file", NULL);
    make_cifar10(c10_counts, 6);
    /* a size that is not a multiple of the record size */
    struct bytes b = records(false, 3, 4, false);
    b.n -= 100;
    write_bytes("data_batch_2.bin", b);
    expect_error(DSNN_ERR_FORMAT, "", path_of("data_batch_2.bin"), "12192 bytes",
                 "not a multiple of the record size 3073", "3 whole records", NULL);
    /* an empty file */
    write_bytes("data_batch_2.bin", (struct bytes){0});
    expect_error(DSNN_ERR_FORMAT, "", path_of("data_batch_2.bin"), "empty", NULL);
    make_cifar10(c10_counts, 6);
    /* a label out of range */
    b = records(false, 0, 6, true);
    b.p[3 * 3073] = 10;
    write_bytes("test_batch.bin", b);
    expect_error(DSNN_ERR_FORMAT, "", path_of("test_batch.bin"), "record 3", "label 10",
                 "[0, 10)", NULL);
    /* a CIFAR-100 file read as CIFAR-10 */
    make_cifar10(c10_counts, 6);
    b = records(true, 0, 3, false);
    write_bytes("data_batch_1.bin", b);
    expect_error(DSNN_ERR_FORMAT, "", path_of("data_batch_1.bin"), NULL);
    /* a directory */
    make_cifar10(c10_counts, 6);
    unlink(path_of("data_batch_5.bin"));
    mkdir(path_of("data_batch_5.bin"), 0700);
    expect_error(DSNN_ERR_IO, "", path_of("data_batch_5.bin"), "directory", NULL);
    rmdir(path_of("data_batch_5.bin"));
    /* configuration */
    make_cifar10(c10_counts, 6);
    expect_error(DSNN_ERR_CONFIG, "label_mode = \"coarse\";", "label_mode", "CIFAR-10", NULL);
    expect_error(DSNN_ERR_CONFIG, "label_mode = \"medium\";", "label_mode", NULL);
    expect_error(DSNN_ERR_CONFIG, "variant = \"cifar1000\";", "variant", NULL);
    expect_error(DSNN_ERR_CONFIG, "train_size = 16;", "train_size", "15", NULL);
    expect_error(DSNN_ERR_CONFIG, "augment = 1;", "augment", NULL);
    dir_cleanup();

    SETUP();
    make_cifar100(5, 3);
    expect_error(DSNN_ERR_IO, "", path_of("data_batch_1.bin"), "variant", NULL);
    b = records(true, 0, 5, false);
    b.p[2 * 3074 + 1] = 100; /* fine label of record 2 */
    write_bytes("train.bin", b);
    expect_error(DSNN_ERR_FORMAT, "variant = \"cifar100\";", path_of("train.bin"), "record 2",
                 "fine label 100", NULL);
    /* the coarse label is checked in both label modes */
    b = records(true, 0, 5, false);
    b.p[4 * 3074] = 20;
    write_bytes("train.bin", b);
    expect_error(DSNN_ERR_FORMAT, "variant = \"cifar100\";", path_of("train.bin"), "record 4",
                 "coarse label 20", NULL);
    /* a CIFAR-10 file read as CIFAR-100 */
    write_bytes("test.bin", records(false, 0, 2, true));
    make_cifar100(5, 3);
    write_bytes("test.bin", records(false, 0, 2, true));
    expect_error(DSNN_ERR_FORMAT, "variant = \"cifar100\";", path_of("test.bin"),
                 "6146 bytes", "3074", NULL);
    dir_cleanup();
}

static void test_split_misuse(void)
{
    SETUP();
    make_cifar10(c10_counts, 6);
    struct ds d;
    CU_ASSERT_EQUAL(ds_open(&d, 1, "%s", ""), DSNN_OK);
    if (d.st == DSNN_OK) {
        struct dsnn_batch b = {0};
        struct dsnn_error err = {0};
        CU_ASSERT_EQUAL(g_ops->next_batch(d.state, &b, &err), DSNN_ERR_INVALID);
        CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "begin"));
        CU_ASSERT_EQUAL(g_ops->begin(d.state, (enum dsnn_split)7, 0, &err), DSNN_ERR_INVALID);
        CU_ASSERT_EQUAL(g_ops->begin(d.state, DSNN_SPLIT_TRAIN, -1, &err), DSNN_ERR_INVALID);
        CU_ASSERT_EQUAL(g_ops->begin(d.state, DSNN_SPLIT_TRAIN, 0, NULL), DSNN_OK);
    }
    ds_close(&d);
    g_ops->close(NULL);
    dir_cleanup();
}

static CU_TestInfo tests[] = {
    {"descriptor and key table", test_descriptor},
    {"CIFAR-10 values, file order, gzip", test_values_cifar10},
    {"CIFAR-100 fine and coarse labels", test_values_cifar100},
    {"per-channel normalisation", test_normalize},
    {"augmentation: crop + flip", test_augment},
    {"noise split", test_noise_split},
    {"batch sizes per epoch, train_batches_per_epoch", test_batches},
    {"shuffle, train_size, val_fraction", test_shuffle_and_sizes},
    {"malformed files and configuration errors", test_errors},
    {"split misuse", test_split_misuse},
    CU_TEST_INFO_NULL,
};

DSNN_TEST_MAIN("cifar dataset plugin", tests)
