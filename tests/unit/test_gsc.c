/* tests/unit/test_gsc.c - the "gsc" dataset plugin (nupic's preprocessed Google Speech Commands
 * .npz files), loaded from $DSNN_BUILD_DIR/plugins/gsc.so and driven through its ops table.
 *
 * The test writes its own .npz archives: .npy members (format 1.0, or 2.0) built here, put in a
 * ZIP archive built here too, stored (numpy.savez) or deflated with zlib (numpy.savez_compressed),
 * optionally with the ZIP64 fields numpy writes (force_zip64 local headers) or ZIP64 end records,
 * and then damaged in the ways the reader must catch.
 *
 * Sample i of train file f: x[i][0] = i, x[i][1] = f, x[i][j] = (i * 31 + j * 7 + f) % 97 / 8
 * (exact in float); label (i * 7 + f) % 12. The test set uses f = 100, the noise sets f = 200 +
 * the percentage. */
#define DATASET_FIXTURE_PLUGIN "gsc"
#include "dataset_fixture.h"

#include <zlib.h>

#define SIDE 32
#define D (SIDE * SIDE)

/* ---- .npy ---- */

/* An .npy file: header dict text (descr, fortran, shape) padded to 64 bytes, then data. */
static struct bytes npy_raw(int version, const char *dict, const void *data, size_t nbytes)
{
    struct bytes b = {0};
    size_t pre = version == 1 ? 10 : 12;
    size_t len = strlen(dict) + 1; /* + '\n' */
    size_t total = (pre + len + 63) / 64 * 64;
    put(&b, "\x93NUMPY", 6);
    uint8_t ver[2] = {(uint8_t)version, 0};
    put(&b, ver, 2);
    if (version == 1)
        put_le16(&b, (uint32_t)(total - pre));
    else
        put_le32(&b, (uint32_t)(total - pre));
    put(&b, dict, strlen(dict));
    for (size_t i = pre + len; i < total; i++)
        put(&b, " ", 1);
    put(&b, "\n", 1);
    put(&b, data, nbytes);
    return b;
}

static struct bytes npy(const char *descr, const uint64_t *shape, int ndim, const void *data,
                        size_t nbytes)
{
    char dict[256], sh[128] = "";
    size_t at = 0;
    for (int i = 0; i < ndim; i++)
        at += (size_t)snprintf(sh + at, sizeof sh - at, "%s%llu", i ? ", " : "",
                               (unsigned long long)shape[i]);
    if (ndim == 1)
        snprintf(sh + at, sizeof sh - at, ",");
    snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }",
             descr, sh);
    return npy_raw(1, dict, data, nbytes);
}

/* ---- .zip ---- */

struct member {
    const char *name;
    struct bytes data; /* consumed by zip_build */
};

struct zip_opts {
    bool deflate;     /* numpy.savez_compressed */
    bool zip64_local; /* numpy's force_zip64: sizes in a ZIP64 extra field of the local header */
    bool zip64_end;   /* ZIP64 end of central directory record and locator */
    const char *comment;
    uint16_t method_override; /* != 0: the method written in both headers */
    uint16_t flags;
    uint64_t cd_usize; /* != 0: a forged uncompressed size of the first member in the central
                        * directory (ZIP64 extra field) */
};

static struct bytes deflate_raw(const struct bytes *in)
{
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    deflateInit2(&zs, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY);
    struct bytes out = {0};
    out.p = malloc(deflateBound(&zs, (uLong)in->n) + 16);
    zs.next_in = in->p;
    zs.avail_in = (uInt)in->n;
    zs.next_out = out.p;
    zs.avail_out = (uInt)deflateBound(&zs, (uLong)in->n) + 16;
    deflate(&zs, Z_FINISH);
    out.n = zs.total_out;
    deflateEnd(&zs);
    return out;
}

static struct bytes zip_build(struct member *m, int n, struct zip_opts o)
{
    struct bytes z = {0}, cd = {0};
    for (int i = 0; i < n; i++) {
        uint32_t crc = (uint32_t)crc32(crc32(0L, Z_NULL, 0), m[i].data.p, (uInt)m[i].data.n);
        struct bytes payload = o.deflate ? deflate_raw(&m[i].data) : m[i].data;
        uint16_t method = o.method_override ? o.method_override : (o.deflate ? 8 : 0);
        uint64_t offset = z.n, usize = m[i].data.n, csize = payload.n;
        uint16_t name_len = (uint16_t)strlen(m[i].name);
        /* local header */
        put_le32(&z, 0x04034b50u);
        put_le16(&z, o.zip64_local ? 45 : 20);
        put_le16(&z, o.flags);
        put_le16(&z, method);
        put_le16(&z, 0);
        put_le16(&z, 0x21);
        put_le32(&z, crc);
        put_le32(&z, o.zip64_local ? 0xFFFFFFFFu : (uint32_t)csize);
        put_le32(&z, o.zip64_local ? 0xFFFFFFFFu : (uint32_t)usize);
        put_le16(&z, name_len);
        put_le16(&z, o.zip64_local ? 20 : 0);
        put(&z, m[i].name, name_len);
        if (o.zip64_local) {
            put_le16(&z, 1);
            put_le16(&z, 16);
            put_le64(&z, usize);
            put_le64(&z, csize);
        }
        put(&z, payload.p, payload.n);
        /* central directory entry */
        put_le32(&cd, 0x02014b50u);
        put_le16(&cd, 0x031e);
        put_le16(&cd, o.zip64_local ? 45 : 20);
        put_le16(&cd, o.flags);
        put_le16(&cd, method);
        put_le16(&cd, 0);
        put_le16(&cd, 0x21);
        put_le32(&cd, crc);
        const bool forged = o.cd_usize && i == 0;
        const uint16_t xlen = (uint16_t)((forged ? 8 : 0) + (o.zip64_end ? 8 : 0));
        put_le32(&cd, (uint32_t)csize);
        put_le32(&cd, forged ? 0xFFFFFFFFu : (uint32_t)usize);
        put_le16(&cd, name_len);
        put_le16(&cd, xlen ? (uint16_t)(xlen + 4) : 0);
        put_le16(&cd, 0);
        put_le16(&cd, 0);
        put_le16(&cd, 0);
        put_le32(&cd, 0x01800000u);
        put_le32(&cd, o.zip64_end ? 0xFFFFFFFFu : (uint32_t)offset);
        put(&cd, m[i].name, name_len);
        if (xlen) { /* the forged size and / or the offset in a ZIP64 extra field */
            put_le16(&cd, 1);
            put_le16(&cd, xlen);
            if (forged)
                put_le64(&cd, o.cd_usize);
            if (o.zip64_end)
                put_le64(&cd, offset);
        }
        if (o.deflate)
            free(payload.p);
        free(m[i].data.p);
    }
    uint64_t cd_offset = z.n;
    put(&z, cd.p, cd.n);
    if (o.zip64_end) {
        uint64_t rec = z.n;
        put_le32(&z, 0x06064b50u);
        put_le64(&z, 44);
        put_le16(&z, 45);
        put_le16(&z, 45);
        put_le32(&z, 0);
        put_le32(&z, 0);
        put_le64(&z, (uint64_t)n);
        put_le64(&z, (uint64_t)n);
        put_le64(&z, cd.n);
        put_le64(&z, cd_offset);
        put_le32(&z, 0x07064b50u);
        put_le32(&z, 0);
        put_le64(&z, rec);
        put_le32(&z, 1);
    }
    put_le32(&z, 0x06054b50u);
    put_le16(&z, 0);
    put_le16(&z, 0);
    put_le16(&z, o.zip64_end ? 0xFFFF : (uint32_t)n);
    put_le16(&z, o.zip64_end ? 0xFFFF : (uint32_t)n);
    put_le32(&z, o.zip64_end ? 0xFFFFFFFFu : (uint32_t)cd.n);
    put_le32(&z, o.zip64_end ? 0xFFFFFFFFu : (uint32_t)cd_offset);
    put_le16(&z, o.comment ? (uint32_t)strlen(o.comment) : 0);
    if (o.comment)
        put(&z, o.comment, strlen(o.comment));
    free(cd.p);
    return z;
}

/* ---- GSC fixtures ---- */

static float xval(uint32_t i, uint32_t j, uint32_t f)
{
    if (j == 0)
        return (float)i;
    if (j == 1)
        return (float)f;
    return (float)((i * 31u + j * 7u + f) % 97u) / 8.0f;
}

static int yval(uint32_t i, uint32_t f)
{
    return (int)((i * 7u + f) % 12u);
}

/* x (N, 1, 32, 32) float32 and y (N,) int64 of set f, as np.savez(path, x, y) writes them. */
static struct bytes gsc_npz(uint32_t n, uint32_t f, struct zip_opts o)
{
    float *x = malloc((size_t)n * D * sizeof *x);
    int64_t *y = malloc((size_t)n * sizeof *y);
    for (uint32_t i = 0; i < n; i++) {
        for (uint32_t j = 0; j < D; j++)
            x[(size_t)i * D + j] = xval(i, j, f);
        y[i] = yval(i, f);
    }
    uint64_t xs[4] = {n, 1, SIDE, SIDE}, ys[1] = {n};
    struct member m[2] = {{"arr_0.npy", npy("<f4", xs, 4, x, (size_t)n * D * sizeof *x)},
                          {"arr_1.npy", npy("<i8", ys, 1, y, (size_t)n * sizeof *y)}};
    free(x);
    free(y);
    return zip_build(m, 2, o);
}

/* K train files of n samples, gsc_valid.npz of n_test, noise files for the given percentages. */
static void make_gsc(int K, uint32_t n, uint32_t n_test, const int *noise_pcts, int n_noise,
                     struct zip_opts o)
{
    char name[64];
    for (int f = 0; f < K; f++) {
        snprintf(name, sizeof name, "gsc_train%d.npz", f);
        write_bytes(name, gsc_npz(n, (uint32_t)f, o));
    }
    write_bytes("gsc_valid.npz", gsc_npz(n_test, 100, o));
    for (int k = 0; k < n_noise; k++) {
        snprintf(name, sizeof name, "gsc_test_noise%02d.npz", noise_pcts[k]);
        write_bytes(name, gsc_npz(n_test + 1, 200u + (uint32_t)noise_pcts[k], o));
    }
}

/* ---- reading ---- */

/* What read_epoch checks the samples against, and whether all matched so far. */
struct gsc_check {
    uint32_t f, *ids;
    int64_t max, size;
    bool ok;
};

static void gsc_check_sample(void *arg, int64_t n, const float *x, int32_t y)
{
    struct gsc_check *c = arg;
    uint32_t i = (uint32_t)x[0];
    if (c->ids && n < c->max)
        c->ids[n] = i;
    if (x[1] != (float)c->f || y != yval(i, c->f))
        c->ok = false;
    for (uint32_t j = 2; j < (uint32_t)c->size && c->ok; j++)
        c->ok = x[j] == xval(i, j, c->f);
}

/* Reads an epoch; checks every sample is (i, f) with its label; ids[] gets the sample indices.
 * Returns the count, -1 on error or a wrong value. */
static int64_t read_epoch(struct ds *d, enum dsnn_split split, int epoch, uint32_t f,
                          uint32_t *ids, int64_t max, int *sizes, int *n_batches)
{
    struct gsc_check c = {f, ids, max, dsnn_shape_size(d->info.shape), true};
    int64_t n = ds_epoch(d, split, epoch, gsc_check_sample, &c, sizes, 64, n_batches);
    if (n < 0)
        return -1;
    if (!c.ok)
        printf("\n    wrong values in split %d epoch %d ", (int)split, epoch);
    return c.ok ? n : -1;
}

/* ---- tests ---- */

static void test_descriptor(void)
{
    CU_ASSERT_FATAL(load_plugin());
    CU_ASSERT_STRING_EQUAL(g_comp->name, "gsc");
    CU_ASSERT_EQUAL(g_comp->ops_size, sizeof(struct dsnn_dataset_ops));
    static const char *const keys[] = {
        "path", "train_file", "test_file", "noise_file", "test_noise", "noise_level", "x_array",
        "y_array", "n_classes", "batch_size_train", "batch_size_test", "train_batches_per_epoch",
        "shuffle", "train_size", "test_size", "normalize", "mean", "std"};
    expect_keys_documented(keys, DSNN_COUNT_OF(keys), false);
}

/* nupic's layout: a train file per epoch (cycling), the validation set as test split. */
static void layout_case(struct zip_opts o)
{
    SETUP();
    static const int pcts[] = {0, 5, 10};
    make_gsc(3, 20, 9, pcts, 3, o);
    struct ds d;
    uint32_t ids[64];
    int sizes[64], nb;
    CU_ASSERT_EQUAL(ds_open(&d, 1, "shuffle = false; batch_size_train = 8; batch_size_test = 4; "
                                   "test_noise = true; noise_level = 0.05;"),
                    DSNN_OK);
    if (d.st == DSNN_OK) {
        CU_ASSERT_EQUAL(d.info.shape.c, 1);
        CU_ASSERT_EQUAL(d.info.shape.h, 32);
        CU_ASSERT_EQUAL(d.info.shape.w, 32);
        CU_ASSERT_EQUAL(d.info.n_classes, 12);
        CU_ASSERT_EQUAL(d.info.n_train, 20);
        CU_ASSERT_EQUAL(d.info.n_test, 9);
        CU_ASSERT_EQUAL(d.info.n_noise, 10);
        CU_ASSERT_EQUAL(d.info.batch_size_train, 8);
        CU_ASSERT_EQUAL(d.info.batch_size_test, 4);
        for (int e = 0; e < 7; e++) { /* epoch e reads gsc_train<e mod 3> */
            CU_ASSERT_EQUAL(read_epoch(&d, DSNN_SPLIT_TRAIN, e, (uint32_t)(e % 3), ids, 64,
                                       sizes, &nb),
                            20);
            CU_ASSERT_EQUAL(nb, 3);
            bool order = true;
            for (uint32_t i = 0; i < 20; i++)
                order = order && ids[i] == i;
            CU_ASSERT(order);
        }
        CU_ASSERT_EQUAL(read_epoch(&d, DSNN_SPLIT_TEST, 0, 100, ids, 64, sizes, &nb), 9);
        CU_ASSERT_EQUAL(nb, 3);
        CU_ASSERT_EQUAL(read_epoch(&d, DSNN_SPLIT_NOISE, 0, 205, ids, 64, NULL, NULL), 10);
        /* back to epoch 0 after others: reloads file 0 */
        CU_ASSERT_EQUAL(read_epoch(&d, DSNN_SPLIT_TRAIN, 0, 0, ids, 64, NULL, NULL), 20);
    }
    ds_close(&d);
    dir_cleanup();
}

static void test_stored(void)
{
    layout_case((struct zip_opts){0});
}

static void test_deflated(void)
{
    layout_case((struct zip_opts){.deflate = true});
}

static void test_zip64(void)
{
    layout_case((struct zip_opts){.zip64_local = true});
    layout_case((struct zip_opts){.deflate = true, .zip64_local = true, .zip64_end = true,
                                  .comment = "written by test_gsc"});
}

/* Other array names, shapes and element types. */
static void test_arrays(void)
{
    SETUP();
    struct ds d;
    uint32_t ids[16];
    /* np.savez(f, x=x, y=y) with x (N, 32, 32) float64 and y int32: keys x_array / y_array */
    double xd[5 * D];
    int32_t y32[5];
    for (uint32_t i = 0; i < 5; i++) {
        for (uint32_t j = 0; j < D; j++)
            xd[i * D + j] = xval(i, j, 0);
        y32[i] = yval(i, 0);
    }
    uint64_t s3[3] = {5, 32, 32}, s1[1] = {5};
    struct member m[2] = {{"y.npy", npy("<i4", s1, 1, y32, sizeof y32)},
                          {"x.npy", npy("<f8", s3, 3, xd, sizeof xd)}};
    write_bytes("train.npz", zip_build(m, 2, (struct zip_opts){0}));
    CU_ASSERT_EQUAL(ds_open(&d, 1, "train_file = \"train.npz\"; test_file = \"train.npz\"; "
                                   "x_array = \"x\"; y_array = \"y\"; shuffle = false;"),
                    DSNN_OK);
    if (d.st == DSNN_OK) {
        CU_ASSERT_EQUAL(d.info.shape.c, 1);
        CU_ASSERT_EQUAL(d.info.shape.h, 32);
        CU_ASSERT_EQUAL(d.info.shape.w, 32);
        /* without "{}" the one file serves every epoch */
        CU_ASSERT_EQUAL(read_epoch(&d, DSNN_SPLIT_TRAIN, 0, 0, ids, 16, NULL, NULL), 5);
        CU_ASSERT_EQUAL(read_epoch(&d, DSNN_SPLIT_TRAIN, 4, 0, ids, 16, NULL, NULL), 5);
        CU_ASSERT_EQUAL(read_epoch(&d, DSNN_SPLIT_TEST, 0, 0, ids, 16, NULL, NULL), 5);
    }
    ds_close(&d);
    /* the default names: arrays missing -> the error lists what the archive holds */
    expect_error(DSNN_ERR_FORMAT, "train_file = \"train.npz\";", path_of("train.npz"),
                 "\"arr_0\"", "\"y\", \"x\"", "x_array", NULL);

    /* big-endian float32 (N, D) samples, unsigned byte labels; a format 2.0 header */
    float xf[4 * 6];
    uint8_t yu[4];
    for (uint32_t i = 0; i < 4; i++) {
        for (uint32_t j = 0; j < 6; j++) {
            float v = xval(i, j, 0);
            uint8_t *p = (uint8_t *)&xf[i * 6 + j], q[4];
            memcpy(q, &v, 4);
            for (int k = 0; k < 4; k++)
                p[k] = q[3 - k];
        }
        yu[i] = (uint8_t)yval(i, 0);
    }
    struct member m2[2] = {{"arr_0.npy", npy_raw(2, "{'descr': '>f4', 'fortran_order': False, "
                                                    "'shape': (4, 6), }",
                                                 xf, sizeof xf)},
                           {"arr_1.npy", npy_raw(1, "{'shape': (4,), 'descr': '|u1', "
                                                    "'fortran_order': True}",
                                                 yu, sizeof yu)}};
    write_bytes("flat.npz", zip_build(m2, 2, (struct zip_opts){.deflate = true}));
    CU_ASSERT_EQUAL(ds_open(&d, 1, "train_file = \"flat.npz\"; test_file = \"flat.npz\"; "
                                   "shuffle = false;"),
                    DSNN_OK);
    if (d.st == DSNN_OK) {
        CU_ASSERT_EQUAL(d.info.shape.c, 6);
        CU_ASSERT_EQUAL(d.info.shape.h, 1);
        CU_ASSERT_EQUAL(d.info.shape.w, 1);
        CU_ASSERT_EQUAL(read_epoch(&d, DSNN_SPLIT_TRAIN, 0, 0, ids, 16, NULL, NULL), 4);
    }
    ds_close(&d);
    /* n_classes */
    CU_ASSERT_EQUAL(ds_open(&d, 1, "train_file = \"flat.npz\"; test_file = \"flat.npz\"; "
                                   "n_classes = 35;"),
                    DSNN_OK);
    CU_ASSERT_EQUAL(d.info.n_classes, 35);
    ds_close(&d);
    expect_error(DSNN_ERR_FORMAT, "train_file = \"flat.npz\"; test_file = \"flat.npz\"; "
                                  "n_classes = 3;",
                 path_of("flat.npz"), "label", "out of range", NULL);
    dir_cleanup();
}

static void test_batches_and_shuffle(void)
{
    SETUP();
    make_gsc(2, 50, 5, NULL, 0, (struct zip_opts){0});
    struct ds d;
    uint32_t a[64], b[64];
    int sizes[64], nb;
    CU_ASSERT_EQUAL(ds_open(&d, 3, "batch_size_train = [4, 16];"), DSNN_OK);
    if (d.st == DSNN_OK) {
        CU_ASSERT_EQUAL(d.info.batch_size_train, 16);
        CU_ASSERT_EQUAL(d.info.batch_size_test, 5);
        CU_ASSERT_EQUAL(read_epoch(&d, DSNN_SPLIT_TRAIN, 0, 0, a, 64, sizes, &nb), 50);
        CU_ASSERT_EQUAL(nb, 13);
        CU_ASSERT_EQUAL(read_epoch(&d, DSNN_SPLIT_TRAIN, 1, 1, a, 64, sizes, &nb), 50);
        CU_ASSERT_EQUAL(nb, 4);
        /* each sample once, shuffled, the same order for the same (seed, epoch) */
        uint64_t seen = 0;
        bool identity = true;
        for (int i = 0; i < 50; i++) {
            seen |= 1ull << a[i];
            identity = identity && a[i] == (uint32_t)i;
        }
        CU_ASSERT_EQUAL(seen, (1ull << 50) - 1);
        CU_ASSERT(!identity);
        read_epoch(&d, DSNN_SPLIT_TRAIN, 0, 0, b, 64, NULL, NULL);
        CU_ASSERT_EQUAL(read_epoch(&d, DSNN_SPLIT_TRAIN, 1, 1, b, 64, NULL, NULL), 50);
        CU_ASSERT(memcmp(a, b, 50 * sizeof *a) == 0);
    }
    ds_close(&d);
    CU_ASSERT_EQUAL(ds_open(&d, 3, "batch_size_train = [4, 16]; train_batches_per_epoch = 2; "
                                   "train_size = 30; test_size = 3;"),
                    DSNN_OK);
    if (d.st == DSNN_OK) {
        CU_ASSERT_EQUAL(d.info.n_train, 30);
        CU_ASSERT_EQUAL(d.info.n_test, 3);
        CU_ASSERT_EQUAL(read_epoch(&d, DSNN_SPLIT_TRAIN, 0, 0, a, 64, NULL, &nb), 8);
        /* 2 batches of 16 would be 32: the 30 samples of train_size */
        CU_ASSERT_EQUAL(read_epoch(&d, DSNN_SPLIT_TRAIN, 1, 1, a, 64, NULL, &nb), 30);
        CU_ASSERT_EQUAL(nb, 2);
        bool small = true;
        for (int i = 0; i < 30; i++)
            small = small && a[i] < 30;
        CU_ASSERT(small);
        CU_ASSERT_EQUAL(read_epoch(&d, DSNN_SPLIT_TEST, 1, 100, a, 64, NULL, &nb), 3);
    }
    ds_close(&d);
    expect_error(DSNN_ERR_CONFIG, "train_size = 51;", "train_size", "50", NULL);
    expect_error(DSNN_ERR_CONFIG, "test_size = 6;", "test_size", NULL);
    expect_error(DSNN_ERR_CONFIG, "batch_size_train = [4, 0];", "batch_size_train", NULL);
    dir_cleanup();
}

static void test_normalize(void)
{
    SETUP();
    make_gsc(2, 10, 4, NULL, 0, (struct zip_opts){0});
    double s1 = 0, s2 = 0;
    for (uint32_t i = 0; i < 10; i++)
        for (uint32_t j = 0; j < D; j++) {
            double v = xval(i, j, 0);
            s1 += v;
            s2 += v * v;
        }
    double mean = s1 / (10.0 * D), sd = sqrt(s2 / (10.0 * D) - mean * mean);
    struct ds d;
    CU_ASSERT_EQUAL(ds_open(&d, 1, "normalize = \"dataset\"; shuffle = false; "
                                   "batch_size_train = 10;"),
                    DSNN_OK);
    if (d.st == DSNN_OK) {
        for (int e = 0; e < 3; e++) { /* the statistics of file 0 apply to every file */
            struct dsnn_batch b = {0};
            g_ops->begin(d.state, DSNN_SPLIT_TRAIN, e, &d.err);
            CU_ASSERT_EQUAL(g_ops->next_batch(d.state, &b, &d.err), DSNN_OK);
            bool ok = b.n == 10;
            for (int i = 0; ok && i < 10; i++)
                for (uint32_t j = 0; j < D; j++) {
                    double want = (xval((uint32_t)i, j, (uint32_t)(e % 2)) - mean) / sd;
                    ok = ok && fabs(b.x[i * D + j] - want) < 1e-4 * (1 + fabs(want));
                }
            CU_ASSERT(ok);
        }
        struct dsnn_batch b = {0};
        g_ops->begin(d.state, DSNN_SPLIT_TEST, 0, &d.err);
        g_ops->next_batch(d.state, &b, &d.err);
        CU_ASSERT(fabs(b.x[5] - (xval(0, 5, 100) - mean) / sd) < 1e-4);
    }
    ds_close(&d);
    CU_ASSERT_EQUAL(ds_open(&d, 1, "normalize = \"dataset\"; mean = 1; std = 2; shuffle = false;"),
                    DSNN_OK);
    if (d.st == DSNN_OK) {
        struct dsnn_batch b = {0};
        g_ops->begin(d.state, DSNN_SPLIT_TRAIN, 0, &d.err);
        g_ops->next_batch(d.state, &b, &d.err);
        CU_ASSERT(fabs(b.x[D + 7] - (xval(1, 7, 0) - 1) / 2) < 1e-6);
    }
    ds_close(&d);
    expect_error(DSNN_ERR_CONFIG, "mean = 1;", "mean", "none", NULL);
    expect_error(DSNN_ERR_CONFIG, "normalize = \"dataset\"; std = 0;", "std", NULL);
    dir_cleanup();
}

static void test_noise_files(void)
{
    SETUP();
    static const int pcts[] = {0, 10, 50};
    make_gsc(1, 6, 4, pcts, 3, (struct zip_opts){0});
    struct ds d;
    uint32_t ids[16];
    for (int k = 0; k < 3; k++) {
        CU_ASSERT_EQUAL(ds_open(&d, 1, "test_noise = true; noise_level = %g;", pcts[k] / 100.0),
                        DSNN_OK);
        if (d.st == DSNN_OK) {
            CU_ASSERT_EQUAL(d.info.n_noise, 5);
            CU_ASSERT_EQUAL(read_epoch(&d, DSNN_SPLIT_NOISE, 0, 200u + (uint32_t)pcts[k], ids,
                                       16, NULL, NULL),
                            5);
        }
        ds_close(&d);
    }
    CU_ASSERT_EQUAL(ds_open(&d, 1, "noise_level = 0.1;"), DSNN_OK);
    if (d.st == DSNN_OK) {
        CU_ASSERT_EQUAL(d.info.n_noise, 0);
        CU_ASSERT_EQUAL(g_ops->begin(d.state, DSNN_SPLIT_NOISE, 0, &d.err), DSNN_ERR_UNSUPPORTED);
    }
    ds_close(&d);
    expect_error(DSNN_ERR_IO, "test_noise = true; noise_level = 0.2;",
                 path_of("gsc_test_noise20.npz"), NULL);
    expect_error(DSNN_ERR_CONFIG, "test_noise = true; noise_level = 0.123;", "noise_level",
                 NULL);
    CU_ASSERT_EQUAL(ds_open(&d, 1, "test_noise = true; noise_file = \"gsc_test_noise50.npz\";"),
                    DSNN_OK);
    ds_close(&d);
    dir_cleanup();
}

/* One damaged train file per case: the error names the file and what is wrong. */
static void test_damaged(void)
{
    SETUP();
    const char *name = "gsc_train0.npz";
    expect_error(DSNN_ERR_IO, "", path_of(name), "dataset.path", NULL);
    make_gsc(1, 6, 3, NULL, 0, (struct zip_opts){0});
    struct bytes z = gsc_npz(6, 0, (struct zip_opts){0});

    /* not a ZIP archive */
    write_bytes(name, (struct bytes){(uint8_t *)strdup("just some text, no archive"), 26});
    expect_error(DSNN_ERR_FORMAT, "", path_of(name), "ZIP", NULL);
    write_bytes(name, (struct bytes){0});
    expect_error(DSNN_ERR_FORMAT, "", path_of(name), "empty", NULL);
    /* cut short: the end record is gone */
    struct bytes c = {0};
    put(&c, z.p, z.n / 2);
    write_bytes(name, c);
    expect_error(DSNN_ERR_FORMAT, "", path_of(name), "cut short", NULL);
    /* a flipped data byte: CRC */
    c = (struct bytes){0};
    put(&c, z.p, z.n);
    c.p[30 + 9 + 128 + 4 * 500] ^= 0x10; /* inside arr_0's data */
    write_bytes(name, c);
    /* the labels (checked at open) are fine; the samples are read at open for epoch 0 */
    expect_error(DSNN_ERR_FORMAT, "", path_of(name), "arr_0", "CRC", NULL);
    /* an unsupported compression method, encryption */
    write_bytes(name, gsc_npz(6, 0, (struct zip_opts){.method_override = 12}));
    expect_error(DSNN_ERR_UNSUPPORTED, "", path_of(name), "method 12", NULL);
    write_bytes(name, gsc_npz(6, 0, (struct zip_opts){.flags = 1}));
    expect_error(DSNN_ERR_UNSUPPORTED, "", path_of(name), "encrypted", NULL);
    /* corrupt deflate data */
    c = gsc_npz(6, 0, (struct zip_opts){.deflate = true});
    c.p[30 + 9 + 10] ^= 0xFF;
    c.p[30 + 9 + 11] ^= 0xFF;
    write_bytes(name, c);
    expect_error(DSNN_ERR_FORMAT, "", path_of(name), NULL);
    free(z.p);

    /* .npy problems */
    uint64_t xs[4] = {6, 1, 32, 32}, ys[1] = {6}, ys5[1] = {5};
    static float x[6 * D];
    int64_t y[6] = {0, 1, 2, 3, 4, 5};
    struct {
        struct bytes xa, ya;
        enum dsnn_status st;
        const char *needle;
    } cases[] = {
        {npy_raw(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (6, 1, 32, 32), }", x,
                 sizeof x),
         npy("<i8", ys5, 1, y, 5 * sizeof *y), DSNN_ERR_FORMAT, "6 samples"},
        {npy("<c8", xs, 4, x, sizeof x), npy("<i8", ys, 1, y, sizeof y), DSNN_ERR_UNSUPPORTED,
         "'<c8'"},
        {npy_raw(1, "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (6,), }", x, 24),
         npy("<i8", ys, 1, y, sizeof y), DSNN_ERR_FORMAT, "structured"},
        {npy_raw(1, "{'descr': '<f4', 'fortran_order': True, 'shape': (6, 1, 32, 32), }", x,
                 sizeof x),
         npy("<i8", ys, 1, y, sizeof y), DSNN_ERR_UNSUPPORTED, "Fortran"},
        {npy("<f4", xs, 4, x, sizeof x - 8), npy("<i8", ys, 1, y, sizeof y), DSNN_ERR_FORMAT,
         "truncated"},
        {npy("<f4", xs, 4, x, sizeof x), npy("<i8", ys, 1, y, sizeof y + 0), DSNN_OK, NULL},
        {npy_raw(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (6, 1, 32, 32), "
                    "'extra': 1}",
                 x, sizeof x),
         npy("<i8", ys, 1, y, sizeof y), DSNN_ERR_FORMAT, "'extra'"},
        {npy_raw(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (6, 1, 32, 32)", x,
                 sizeof x),
         npy("<i8", ys, 1, y, sizeof y), DSNN_ERR_FORMAT, "bad .npy header"},
        {npy("<f4", xs, 1, x, 6 * 4), npy("<i8", ys, 1, y, sizeof y), DSNN_ERR_FORMAT,
         "1 dimension"},
        {npy("<f4", xs, 4, x, sizeof x), npy("<f4", ys, 1, x, 24), DSNN_ERR_FORMAT, "floats"},
        {npy("<f4", xs, 4, x, sizeof x), npy("<i8", xs, 2, y, 6 * 8), DSNN_ERR_FORMAT,
         "vector"},
    };
    for (size_t i = 0; i < DSNN_COUNT_OF(cases); i++) {
        struct member m[2] = {{"arr_0.npy", cases[i].xa}, {"arr_1.npy", cases[i].ya}};
        write_bytes(name, zip_build(m, 2, (struct zip_opts){0}));
        if (cases[i].st == DSNN_OK) {
            struct ds d;
            CU_ASSERT_EQUAL(ds_open(&d, 1, "%s", ""), DSNN_OK);
            ds_close(&d);
        } else {
            expect_error(cases[i].st, "", path_of(name), cases[i].needle, NULL);
        }
    }
    /* trailing bytes after the array data */
    struct bytes xa = npy("<f4", xs, 4, x, sizeof x);
    put(&xa, "junk", 4);
    struct member m[2] = {{"arr_0.npy", xa}, {"arr_1.npy", npy("<i8", ys, 1, y, sizeof y)}};
    write_bytes(name, zip_build(m, 2, (struct zip_opts){0}));
    expect_error(DSNN_ERR_FORMAT, "", path_of(name), "trailing", NULL);
    /* bad magic, unknown version */
    xa = npy("<f4", xs, 4, x, sizeof x);
    xa.p[1] = 'X';
    struct member m2[2] = {{"arr_0.npy", xa}, {"arr_1.npy", npy("<i8", ys, 1, y, sizeof y)}};
    write_bytes(name, zip_build(m2, 2, (struct zip_opts){0}));
    expect_error(DSNN_ERR_FORMAT, "", path_of(name), "magic", NULL);
    xa = npy("<f4", xs, 4, x, sizeof x);
    xa.p[6] = 9;
    struct member m3[2] = {{"arr_0.npy", xa}, {"arr_1.npy", npy("<i8", ys, 1, y, sizeof y)}};
    write_bytes(name, zip_build(m3, 2, (struct zip_opts){0}));
    expect_error(DSNN_ERR_UNSUPPORTED, "", path_of(name), "version 9.0", NULL);
    /* labels out of range, a non-finite sample value */
    int64_t ybad[6] = {0, 1, 12, 3, 4, 5};
    struct member m4[2] = {{"arr_0.npy", npy("<f4", xs, 4, x, sizeof x)},
                           {"arr_1.npy", npy("<i8", ys, 1, ybad, sizeof ybad)}};
    write_bytes(name, zip_build(m4, 2, (struct zip_opts){0}));
    expect_error(DSNN_ERR_FORMAT, "", path_of(name), "label 12 of sample 2", "[0, 12)", NULL);
    ybad[2] = -1;
    struct member m5[2] = {{"arr_0.npy", npy("<f4", xs, 4, x, sizeof x)},
                           {"arr_1.npy", npy("<i8", ys, 1, ybad, sizeof ybad)}};
    write_bytes(name, zip_build(m5, 2, (struct zip_opts){0}));
    expect_error(DSNN_ERR_FORMAT, "", path_of(name), "label -1", NULL);
    x[3 * D + 17] = NAN;
    struct member m6[2] = {{"arr_0.npy", npy("<f4", xs, 4, x, sizeof x)},
                           {"arr_1.npy", npy("<i8", ys, 1, y, sizeof y)}};
    write_bytes(name, zip_build(m6, 2, (struct zip_opts){0}));
    expect_error(DSNN_ERR_FORMAT, "", path_of(name), "sample 3", "not finite", NULL);
    x[3 * D + 17] = 0;
    /* files of different sample shapes */
    make_gsc(2, 6, 3, NULL, 0, (struct zip_opts){0});
    uint64_t xs2[4] = {6, 1, 32, 16};
    struct member m7[2] = {{"arr_0.npy", npy("<f4", xs2, 4, x, sizeof x / 2)},
                           {"arr_1.npy", npy("<i8", ys, 1, y, sizeof y)}};
    write_bytes("gsc_train1.npz", zip_build(m7, 2, (struct zip_opts){0}));
    expect_error(DSNN_ERR_FORMAT, "", path_of("gsc_train1.npz"), "1x32x16", "1x32x32", NULL);
    /* a '|u1' sample array of 2^63 elements (2^23 x 1 x 2^20 x 2^20) in a member whose central
     * directory entry claims exactly those bytes: its float copy, 2^65 bytes, used to wrap to 0
     * and be overflowed; the 2^23 labels are real (64 MiB of zeros, deflated) so that the
     * samples are reached */
    make_gsc(1, 6, 3, NULL, 0, (struct zip_opts){0});
    unlink(path_of("gsc_train1.npz"));
    const size_t nl = (size_t)1 << 23;
    int64_t *zeros = calloc(nl, sizeof *zeros);
    CU_ASSERT_PTR_NOT_NULL_FATAL(zeros);
    uint64_t xs_big[4] = {nl, 1, 1u << 20, 1u << 20}, ys_big[1] = {nl};
    uint8_t pix[64] = {0};
    struct member m8[2] = {{"arr_0.npy", npy("|u1", xs_big, 4, pix, sizeof pix)},
                           {"arr_1.npy", npy("<i8", ys_big, 1, zeros, nl * sizeof *zeros)}};
    free(zeros);
    const uint64_t x_header = m8[0].data.n - sizeof pix;
    write_bytes("big.npz", zip_build(m8, 2, (struct zip_opts){.deflate = true,
                                                               .cd_usize = x_header + (nl << 40)}));
    /* (the claim is refused before that: more than deflate can expand, see below) */
    expect_error(DSNN_ERR_FORMAT, "train_file = \"big.npz\"; test_file = \"big.npz\";",
                 path_of("big.npz"), "arr_0.npy", "more than deflate can expand", NULL);
    /* a deflated member whose directory claims an uncompressed size deflate cannot reach (here
     * 2^33 labels, the header agreeing): refused naming the member before its header sizes
     * anything (fuzz_npz: with as many samples claimed the same way, a 410-byte file had the
     * labels allocated from the claim, 8 GB) */
    make_gsc(1, 6, 3, NULL, 0, (struct zip_opts){0});
    uint64_t ys_claim[1] = {(uint64_t)1 << 33};
    struct bytes ya = npy("|u1", ys_claim, 1, y, 6);
    const uint64_t y_header = ya.n - 6;
    struct member m9[2] = {{"arr_1.npy", ya}, {"arr_0.npy", npy("<f4", xs, 4, x, sizeof x)}};
    write_bytes("claim.npz", zip_build(m9, 2, (struct zip_opts){.deflate = true,
                                                                 .cd_usize = y_header +
                                                                             ys_claim[0]}));
    expect_error(DSNN_ERR_FORMAT, "train_file = \"claim.npz\"; test_file = \"claim.npz\";",
                 path_of("claim.npz"), "arr_1.npy", "bytes uncompressed",
                 "more than deflate can expand", NULL);
    dir_cleanup();
}

static CU_TestInfo tests[] = {
    {"descriptor and key table", test_descriptor},
    {"nupic layout, stored members (numpy.savez)", test_stored},
    {"deflated members (numpy.savez_compressed)", test_deflated},
    {"ZIP64 fields and end records", test_zip64},
    {"array names, shapes, element types", test_arrays},
    {"batch sizes, train_batches_per_epoch, shuffle, sizes", test_batches_and_shuffle},
    {"normalize", test_normalize},
    {"noise files", test_noise_files},
    {"damaged archives and arrays", test_damaged},
    CU_TEST_INFO_NULL,
};

DSNN_TEST_MAIN("gsc dataset plugin", tests)
