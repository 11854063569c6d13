/* tests/unit/test_io.c - checked binary I/O, atomic writes, whole-file reads (sdk/src/core/io.c).
 *
 * Every test works in a fresh temporary directory. Gzip files are written here with zlib
 * (single and multi-member, compressible and incompressible data) and then truncated or corrupted
 * to check that dsnn_read_file refuses them with DSNN_ERR_FORMAT. */
#include <dirent.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "dsnn/gzin.h"
#include "dsnn/io.h"
#include "dsnn/rng.h"
#include "dsnn/status.h"
#include "harness.h"

#define ASSERT_HAS(msg, sub)                                                                       \
    do {                                                                                           \
        const char *m_ = (msg), *s_ = (sub);                                                       \
        bool ok_ = m_ && strstr(m_, s_) != NULL;                                                   \
        if (!ok_)                                                                                  \
            fprintf(stderr, "\n    %s:%d: \"%s\" does not contain \"%s\"\n", __FILE__, __LINE__,   \
                    m_ ? m_ : "(null)", s_);                                                       \
        CU_ASSERT(ok_);                                                                            \
    } while (0)

/* ---- temporary directory ---- */

static char g_dir[512];

static bool dir_setup(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(g_dir, sizeof g_dir, "%s/dsnn-io-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    return mkdtemp(g_dir) != NULL;
}

static void dir_teardown(void)
{
    DIR *d = opendir(g_dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            char p[1024];
            snprintf(p, sizeof p, "%s/%s", g_dir, e->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(g_dir);
}

static void path_in_dir(char *buf, size_t size, const char *name)
{
    snprintf(buf, size, "%s/%s", g_dir, name);
}

/* Names of the files in the directory, comma separated, sorted by readdir order. */
static int dir_entries(char *buf, size_t size)
{
    int n = 0;
    buf[0] = '\0';
    DIR *d = opendir(g_dir);
    if (!d)
        return -1;
    struct dirent *e;
    size_t len = 0;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        int w = snprintf(buf + len, size > len ? size - len : 0, "%s%s", n ? "," : "", e->d_name);
        if (w > 0)
            len += (size_t)w;
        n++;
    }
    closedir(d);
    return n;
}

static bool write_bytes(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return false;
    bool ok = fwrite(p, 1, n, f) == n;
    return fclose(f) == 0 && ok;
}

/* Gzip of data (one member) into a malloc'ed buffer. */
static unsigned char *gzip(const void *data, size_t n, size_t *out_n)
{
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (deflateInit2(&zs, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return NULL;
    size_t cap = deflateBound(&zs, (uLong)n) + 64;
    unsigned char *out = malloc(cap);
    if (!out) {
        deflateEnd(&zs);
        return NULL;
    }
    zs.next_in = (Bytef *)(uintptr_t)data;
    zs.avail_in = (uInt)n;
    zs.next_out = out;
    zs.avail_out = (uInt)cap;
    int r = deflate(&zs, Z_FINISH);
    *out_n = zs.total_out;
    deflateEnd(&zs);
    if (r != Z_STREAM_END) {
        free(out);
        return NULL;
    }
    return out;
}

/* n bytes: compressible text-like (pattern) or random. */
static unsigned char *make_data(size_t n, bool random)
{
    unsigned char *p = malloc(n ? n : 1);
    if (!p)
        return NULL;
    struct dsnn_rng r;
    dsnn_rng_seed(&r, n, 17);
    for (size_t i = 0; i < n; i++)
        p[i] =
            random ? (unsigned char)dsnn_rng_u64(&r) : (unsigned char)("dsnn sparse nets "[i % 17]);
    return p;
}

/* ---- dsnn_io_* ---- */

static void test_io_round_trip(void)
{
    CU_ASSERT_FATAL(dir_setup());
    char path[1024];
    path_in_dir(path, sizeof path, "ck.bin");
    struct dsnn_error err = {0};
    FILE *f = fopen(path, "wb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    const float w[5] = {1.5f, -2.0f, 0.0f, 3.25f, -0.125f};
    CU_ASSERT_EQUAL(dsnn_io_write(f, "TAG1", 4, "tag", &err), DSNN_OK);
    CU_ASSERT_EQUAL(dsnn_io_write_u64(f, 0x0123456789abcdefULL, "count", &err), DSNN_OK);
    CU_ASSERT_EQUAL(dsnn_io_write(f, w, sizeof w, "weights", &err), DSNN_OK);
    CU_ASSERT_EQUAL(dsnn_io_write(f, NULL, 0, "nothing", &err), DSNN_OK);
    CU_ASSERT_EQUAL(dsnn_io_write(f, "TAG2", 4, "tag", &err), DSNN_OK);
    CU_ASSERT_EQUAL(fclose(f), 0);

    f = fopen(path, "rb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    uint64_t v = 0;
    float r[5];
    CU_ASSERT_EQUAL(dsnn_io_expect_tag(f, "TAG1", &err), DSNN_OK);
    CU_ASSERT_EQUAL(dsnn_io_read_u64(f, &v, "count", &err), DSNN_OK);
    CU_ASSERT_EQUAL(v, 0x0123456789abcdefULL);
    CU_ASSERT_EQUAL(dsnn_io_read(f, r, sizeof r, "weights", &err), DSNN_OK);
    CU_ASSERT_EQUAL(memcmp(r, w, sizeof w), 0);
    CU_ASSERT_EQUAL(dsnn_io_read(f, NULL, 0, "nothing", &err), DSNN_OK);
    CU_ASSERT_EQUAL(err.status, DSNN_OK);
    /* A wrong tag names both. */
    CU_ASSERT_EQUAL(dsnn_io_expect_tag(f, "TAGX", &err), DSNN_ERR_FORMAT);
    ASSERT_HAS(err.msg, "'TAGX'");
    ASSERT_HAS(err.msg, "'TAG2'");
    /* At the end: truncated. */
    memset(&err, 0, sizeof err);
    CU_ASSERT_EQUAL(dsnn_io_expect_tag(f, "TAG3", &err), DSNN_ERR_FORMAT);
    ASSERT_HAS(err.msg, "truncated");
    fclose(f);
    dir_teardown();
}

/* A counted section: the right count passes, another count names both, a wrong tag and a short
 * count fail as expect_tag and read_u64 do. */
static void test_io_expect_count(void)
{
    CU_ASSERT_FATAL(dir_setup());
    char path[1024];
    path_in_dir(path, sizeof path, "count.bin");
    struct dsnn_error err = {0};
    FILE *f = fopen(path, "wb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    for (int i = 0; i < 3; i++) {
        CU_ASSERT_EQUAL(dsnn_io_write(f, i == 2 ? "CNT2" : "CNT1", 4, "tag", &err), DSNN_OK);
        CU_ASSERT_EQUAL(dsnn_io_write_u64(f, 7, "count", &err), DSNN_OK);
    }
    CU_ASSERT_EQUAL(dsnn_io_write(f, "CNT1", 4, "tag", &err), DSNN_OK);
    CU_ASSERT_EQUAL(dsnn_io_write(f, "abc", 3, "short count", &err), DSNN_OK);
    CU_ASSERT_EQUAL(fclose(f), 0);

    f = fopen(path, "rb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_EQUAL(dsnn_io_expect_count(f, "CNT1", 7, "layers", "the network", &err), DSNN_OK);
    CU_ASSERT_EQUAL(err.status, DSNN_OK);
    CU_ASSERT_EQUAL(dsnn_io_expect_count(f, "CNT1", 5, "channels", "the layer", &err),
                    DSNN_ERR_FORMAT);
    ASSERT_HAS(err.msg, "checkpoint has 7 channels, the layer has 5");
    memset(&err, 0, sizeof err);
    CU_ASSERT_EQUAL(dsnn_io_expect_count(f, "CNTX", 7, "layers", "the network", &err),
                    DSNN_ERR_FORMAT);
    ASSERT_HAS(err.msg, "'CNTX'");
    uint64_t v = 0;
    CU_ASSERT_EQUAL(dsnn_io_read_u64(f, &v, "count", &err), DSNN_OK); /* skip the count */
    memset(&err, 0, sizeof err);
    CU_ASSERT_EQUAL(dsnn_io_expect_count(f, "CNT1", 7, "layers", "the network", &err),
                    DSNN_ERR_FORMAT);
    ASSERT_HAS(err.msg, "number of layers");
    ASSERT_HAS(err.msg, "truncated");
    fclose(f);
    dir_teardown();
}

static void test_io_read_short(void)
{
    CU_ASSERT_FATAL(dir_setup());
    char path[1024];
    path_in_dir(path, sizeof path, "short.bin");
    CU_ASSERT_FATAL(write_bytes(path, "abcdef", 6));
    FILE *f = fopen(path, "rb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    struct dsnn_error err = {0};
    uint64_t v = 0;
    /* 6 bytes where 8 are needed. */
    CU_ASSERT_EQUAL(dsnn_io_read_u64(f, &v, "layer count", &err), DSNN_ERR_FORMAT);
    CU_ASSERT_EQUAL(err.status, DSNN_ERR_FORMAT);
    ASSERT_HAS(err.msg, "layer count");
    ASSERT_HAS(err.msg, "truncated");
    fclose(f);

    /* An empty file. */
    CU_ASSERT_FATAL(write_bytes(path, "", 0));
    f = fopen(path, "rb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    char buf[4];
    memset(&err, 0, sizeof err);
    CU_ASSERT_EQUAL(dsnn_io_read(f, buf, 1, "byte", &err), DSNN_ERR_FORMAT);
    ASSERT_HAS(err.msg, "truncated");
    fclose(f);

    /* Reading from a write-only stream is an I/O error, not "truncated". */
    f = fopen(path, "wb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    memset(&err, 0, sizeof err);
    CU_ASSERT_EQUAL(dsnn_io_read(f, buf, 4, "byte", &err), DSNN_ERR_IO);
    fclose(f);
    /* Writing to a read-only stream is an I/O error. */
    f = fopen(path, "rb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    memset(&err, 0, sizeof err);
    CU_ASSERT_EQUAL(dsnn_io_write(f, "abcd", 4, "weights", &err), DSNN_ERR_IO);
    ASSERT_HAS(err.msg, "weights");
    fclose(f);
    dir_teardown();
}

/* ---- dsnn_write_file_atomic ---- */

static void test_atomic_write(void)
{
    CU_ASSERT_FATAL(dir_setup());
    char path[1024], names[1024];
    path_in_dir(path, sizeof path, "result.json");
    struct dsnn_error err = {0};
    const char *a = "{\"a\": 1}\n";
    CU_ASSERT_EQUAL(dsnn_write_file_atomic(path, a, strlen(a), &err), DSNN_OK);
    /* Only the file itself: no temporary left behind. */
    CU_ASSERT_EQUAL(dir_entries(names, sizeof names), 1);
    CU_ASSERT_STRING_EQUAL(names, "result.json");
    unsigned char *data = NULL;
    size_t n = 0;
    CU_ASSERT_EQUAL_FATAL(dsnn_read_file(path, &data, &n, &err), DSNN_OK);
    CU_ASSERT_EQUAL(n, strlen(a));
    CU_ASSERT_EQUAL(memcmp(data, a, n), 0);
    free(data);

    /* Replacing: the new content, still one file. A shorter content leaves nothing of the old. */
    const char *b = "{}";
    CU_ASSERT_EQUAL(dsnn_write_file_atomic(path, b, strlen(b), &err), DSNN_OK);
    CU_ASSERT_EQUAL(dir_entries(names, sizeof names), 1);
    CU_ASSERT_EQUAL_FATAL(dsnn_read_file(path, &data, &n, &err), DSNN_OK);
    CU_ASSERT_EQUAL(n, 2);
    CU_ASSERT_EQUAL(memcmp(data, b, n), 0);
    free(data);

    /* Empty and large contents. */
    CU_ASSERT_EQUAL(dsnn_write_file_atomic(path, "", 0, &err), DSNN_OK);
    struct stat st;
    CU_ASSERT_EQUAL(stat(path, &st), 0);
    CU_ASSERT_EQUAL(st.st_size, 0);
    size_t big_n = 3u << 20;
    unsigned char *big = make_data(big_n, true);
    CU_ASSERT_PTR_NOT_NULL_FATAL(big);
    CU_ASSERT_EQUAL(dsnn_write_file_atomic(path, big, big_n, &err), DSNN_OK);
    CU_ASSERT_EQUAL_FATAL(dsnn_read_file(path, &data, &n, &err), DSNN_OK);
    CU_ASSERT_EQUAL(n, big_n);
    CU_ASSERT(n == big_n && memcmp(data, big, n) == 0);
    free(data);
    free(big);
    CU_ASSERT_EQUAL(dir_entries(names, sizeof names), 1);
    CU_ASSERT_EQUAL(err.status, DSNN_OK);

    /* A directory that does not exist: I/O error naming the path; nothing created. */
    char bad[1100];
    snprintf(bad, sizeof bad, "%s/no/such/dir/x.json", g_dir);
    CU_ASSERT_EQUAL(dsnn_write_file_atomic(bad, a, strlen(a), &err), DSNN_ERR_IO);
    ASSERT_HAS(err.msg, "/no/such/dir/x.json");
    /* The target is a directory: rename fails, the temporary is removed. */
    char sub[1100];
    path_in_dir(sub, sizeof sub, "subdir");
    CU_ASSERT_EQUAL_FATAL(mkdir(sub, 0755), 0);
    char inner[1200];
    snprintf(inner, sizeof inner, "%s/keep", sub);
    CU_ASSERT_FATAL(write_bytes(inner, "x", 1)); /* a non-empty directory cannot be replaced */
    memset(&err, 0, sizeof err);
    CU_ASSERT_EQUAL(dsnn_write_file_atomic(sub, a, strlen(a), &err), DSNN_ERR_IO);
    ASSERT_HAS(err.msg, "subdir");
    CU_ASSERT_EQUAL(dir_entries(names, sizeof names), 2);
    bool no_tmp = strstr(names, ".tmp") == NULL;
    if (!no_tmp)
        fprintf(stderr, "\n    temporary left behind: %s\n", names);
    CU_ASSERT_TRUE(no_tmp);
    unlink(inner);
    rmdir(sub);
    dir_teardown();
}

/* ---- dsnn_read_file ---- */

/* The temporary file of an atomic write is never opened through a symbolic link planted at its
 * name (a stale one is removed): the file the link points to stays as it was. */
static void test_atomic_write_no_follow(void)
{
    CU_ASSERT_FATAL(dir_setup());
    char path[1024], tmp[1100], outside[1024];
    path_in_dir(path, sizeof path, "params.json");
    path_in_dir(outside, sizeof outside, "outside.txt");
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    struct dsnn_error err = {0};
    CU_ASSERT_EQUAL_FATAL(dsnn_write_file_atomic(outside, "keep", 4, &err), DSNN_OK);
    CU_ASSERT_EQUAL_FATAL(symlink(outside, tmp), 0);
    CU_ASSERT_EQUAL(dsnn_write_file_atomic(path, "{}", 2, &err), DSNN_OK);
    unsigned char *data = NULL;
    size_t n = 0;
    CU_ASSERT_EQUAL_FATAL(dsnn_read_file(outside, &data, &n, &err), DSNN_OK);
    CU_ASSERT(n == 4 && memcmp(data, "keep", 4) == 0);
    free(data);
    CU_ASSERT_EQUAL_FATAL(dsnn_read_file(path, &data, &n, &err), DSNN_OK);
    CU_ASSERT(n == 2 && memcmp(data, "{}", 2) == 0);
    free(data);
    struct stat st;
    CU_ASSERT(lstat(tmp, &st) != 0); /* no temporary, no link left */
    CU_ASSERT_EQUAL(dsnn_fsync_parent(path, &err), DSNN_OK);
    unlink(path);
    unlink(outside);
    dir_teardown();
}

static void test_read_raw(void)
{
    CU_ASSERT_FATAL(dir_setup());
    char path[1024];
    path_in_dir(path, sizeof path, "raw.bin");
    struct dsnn_error err = {0};
    /* Sizes around the reader's 64 KiB growth steps, and one- and zero-byte files (including a
     * lone 0x1f, the first byte of the gzip magic). */
    static const size_t sizes[] = {0, 1, 2, 100, 65535, 65536, 65537, 300000};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        unsigned char *d = make_data(sizes[k], true);
        CU_ASSERT_PTR_NOT_NULL_FATAL(d);
        if (sizes[k] >= 1)
            d[0] = 0x1f;
        CU_ASSERT_FATAL(write_bytes(path, d, sizes[k]));
        unsigned char *data = NULL;
        size_t n = 12345;
        CU_ASSERT_EQUAL(dsnn_read_file(path, &data, &n, &err), DSNN_OK);
        CU_ASSERT_EQUAL(n, sizes[k]);
        CU_ASSERT(n == sizes[k] && (n == 0 || memcmp(data, d, n) == 0));
        free(data);
        free(d);
    }
    /* Missing file. */
    char missing[1100];
    path_in_dir(missing, sizeof missing, "missing.bin");
    unsigned char *data = (unsigned char *)1;
    size_t n = 7;
    CU_ASSERT_EQUAL(dsnn_read_file(missing, &data, &n, &err), DSNN_ERR_IO);
    CU_ASSERT_PTR_NULL(data);
    CU_ASSERT_EQUAL(n, 0);
    ASSERT_HAS(err.msg, "missing.bin");
    /* A directory. */
    memset(&err, 0, sizeof err);
    CU_ASSERT_NOT_EQUAL(dsnn_read_file(g_dir, &data, &n, &err), DSNN_OK);
    CU_ASSERT_PTR_NULL(data);
    dir_teardown();
}

static void check_gzip_round_trip(const char *path, size_t size, bool random)
{
    unsigned char *d = make_data(size, random);
    size_t gz_n = 0;
    unsigned char *gz = gzip(d, size, &gz_n);
    CU_ASSERT_PTR_NOT_NULL_FATAL(gz);
    CU_ASSERT_FATAL(write_bytes(path, gz, gz_n));
    struct dsnn_error err = {0};
    unsigned char *data = NULL;
    size_t n = 0;
    enum dsnn_status st = dsnn_read_file(path, &data, &n, &err);
    if (st != DSNN_OK)
        fprintf(stderr, "\n    %zu bytes: %s\n", size, err.msg);
    CU_ASSERT_EQUAL(st, DSNN_OK);
    CU_ASSERT_EQUAL(n, size);
    CU_ASSERT(n == size && (n == 0 || memcmp(data, d, n) == 0));
    free(data);
    free(gz);
    free(d);
}

static void test_read_gzip(void)
{
    CU_ASSERT_FATAL(dir_setup());
    char path[1024];
    path_in_dir(path, sizeof path, "data.gz");
    /* Empty, small, incompressible, and highly compressible (the output buffer must grow many
     * times past its initial 4x guess). */
    check_gzip_round_trip(path, 0, false);
    check_gzip_round_trip(path, 1, false);
    check_gzip_round_trip(path, 1000, true);
    check_gzip_round_trip(path, 200000, true);
    check_gzip_round_trip(path, 5u << 20, false);

    /* Two members concatenated (as `cat a.gz b.gz`) read as the concatenation. */
    unsigned char *a = make_data(70000, false), *b = make_data(1234, true);
    size_t an = 0, bn = 0;
    unsigned char *ga = gzip(a, 70000, &an), *gb = gzip(b, 1234, &bn);
    CU_ASSERT_FATAL(ga && gb);
    unsigned char *both = malloc(an + bn);
    CU_ASSERT_PTR_NOT_NULL_FATAL(both);
    memcpy(both, ga, an);
    memcpy(both + an, gb, bn);
    CU_ASSERT_FATAL(write_bytes(path, both, an + bn));
    struct dsnn_error err = {0};
    unsigned char *data = NULL;
    size_t n = 0;
    CU_ASSERT_EQUAL(dsnn_read_file(path, &data, &n, &err), DSNN_OK);
    CU_ASSERT_EQUAL(n, 70000 + 1234);
    CU_ASSERT(n == 71234 && memcmp(data, a, 70000) == 0 && memcmp(data + 70000, b, 1234) == 0);
    free(data);
    free(both);
    free(ga);
    free(gb);
    free(a);
    free(b);
    dir_teardown();
}

static void test_read_gzip_truncated(void)
{
    CU_ASSERT_FATAL(dir_setup());
    char path[1024];
    path_in_dir(path, sizeof path, "cut.gz");
    size_t size = 100000;
    unsigned char *d = make_data(size, true);
    size_t gz_n = 0;
    unsigned char *gz = gzip(d, size, &gz_n);
    CU_ASSERT_PTR_NOT_NULL_FATAL(gz);
    /* Cut in the header, in the deflate data, in the 8-byte trailer, one byte short. */
    const size_t cuts[] = {2, 5, 10, 11, 100, gz_n / 2, gz_n - 8, gz_n - 4, gz_n - 1};
    for (size_t k = 0; k < sizeof cuts / sizeof cuts[0]; k++) {
        CU_ASSERT_FATAL(write_bytes(path, gz, cuts[k]));
        struct dsnn_error err = {0};
        unsigned char *data = (unsigned char *)1;
        size_t n = 99;
        enum dsnn_status st = dsnn_read_file(path, &data, &n, &err);
        if (st != DSNN_ERR_FORMAT)
            fprintf(stderr, "\n    cut at %zu of %zu: status %d (%s)\n", cuts[k], gz_n, st,
                    err.msg);
        CU_ASSERT_EQUAL(st, DSNN_ERR_FORMAT);
        CU_ASSERT_PTR_NULL(data);
        CU_ASSERT_EQUAL(n, 0);
        ASSERT_HAS(err.msg, "cut.gz");
        ASSERT_HAS(err.msg, "truncated");
    }
    /* A truncated compressible stream (the output grows while the input runs out). */
    unsigned char *c = make_data(1u << 20, false);
    size_t cn = 0;
    unsigned char *gc = gzip(c, 1u << 20, &cn);
    CU_ASSERT_PTR_NOT_NULL_FATAL(gc);
    CU_ASSERT_FATAL(write_bytes(path, gc, cn - 10));
    struct dsnn_error err = {0};
    unsigned char *data = NULL;
    size_t n = 0;
    CU_ASSERT_EQUAL(dsnn_read_file(path, &data, &n, &err), DSNN_ERR_FORMAT);
    ASSERT_HAS(err.msg, "truncated");
    free(gc);
    free(c);

    /* Corrupted deflate data and a corrupted CRC: format errors (not "truncated"). */
    unsigned char *bad = malloc(gz_n);
    CU_ASSERT_PTR_NOT_NULL_FATAL(bad);
    memcpy(bad, gz, gz_n);
    bad[gz_n - 6] ^= 0xff; /* CRC32 of the trailer */
    CU_ASSERT_FATAL(write_bytes(path, bad, gz_n));
    memset(&err, 0, sizeof err);
    CU_ASSERT_EQUAL(dsnn_read_file(path, &data, &n, &err), DSNN_ERR_FORMAT);
    ASSERT_HAS(err.msg, "corrupt");
    memcpy(bad, gz, gz_n);
    bad[3] = 0xff; /* reserved header flags */
    CU_ASSERT_FATAL(write_bytes(path, bad, gz_n));
    memset(&err, 0, sizeof err);
    CU_ASSERT_EQUAL(dsnn_read_file(path, &data, &n, &err), DSNN_ERR_FORMAT);
    ASSERT_HAS(err.msg, "corrupt");
    free(bad);
    free(gz);
    free(d);
    dir_teardown();
}


/* After the gzip data: another gzip member is read on (as gzip -d does); any other bytes (junk,
 * zero padding, a zlib stream) are an error naming the file, not silently dropped. The same for
 * the streaming reader (dsnn/gzin.h). */
static void test_read_gzip_trailing(void)
{
    CU_ASSERT_FATAL(dir_setup());
    char path[1024];
    path_in_dir(path, sizeof path, "tail.gz");
    size_t na = 5000, nb = 70000, za = 0, zb = 0;
    unsigned char *a = make_data(na, false), *b = make_data(nb, true);
    unsigned char *ga = gzip(a, na, &za), *gb = gzip(b, nb, &zb);
    CU_ASSERT_FATAL(a && b && ga && gb);
    unsigned char *cat = malloc(za + zb + 1024);
    CU_ASSERT_PTR_NOT_NULL_FATAL(cat);
    /* two members: one stream a || b */
    memcpy(cat, ga, za);
    memcpy(cat + za, gb, zb);
    CU_ASSERT_FATAL(write_bytes(path, cat, za + zb));
    struct dsnn_error err = {0};
    unsigned char *data = NULL;
    size_t n = 0;
    CU_ASSERT_EQUAL_FATAL(dsnn_read_file(path, &data, &n, &err), DSNN_OK);
    CU_ASSERT_EQUAL(n, na + nb);
    CU_ASSERT(n == na + nb && memcmp(data, a, na) == 0 && memcmp(data + na, b, nb) == 0);
    free(data);
    /* the second member cut short: truncated */
    CU_ASSERT_FATAL(write_bytes(path, cat, za + zb - 3));
    CU_ASSERT_EQUAL(dsnn_read_file(path, &data, &n, &err), DSNN_ERR_FORMAT);
    ASSERT_HAS(err.msg, "truncated");

    /* junk, one byte, zero padding, a lone 0x1f, a zlib stream after the gzip data */
    unsigned char zl[64];
    uLongf zl_n = sizeof zl;
    CU_ASSERT_EQUAL_FATAL(compress(zl, &zl_n, (const Bytef *)"abc", 3), Z_OK);
    struct { const void *p; size_t n; const char *count; } tails[] = {
        {"junk!", 5, "5 bytes"}, {"x", 1, "1 byte "}, {NULL, 512, "512 bytes"},
        {"\x1f", 1, "1 byte "}, {zl, (size_t)zl_n, "bytes"}};
    for (size_t k = 0; k < sizeof tails / sizeof tails[0]; k++) {
        memcpy(cat, ga, za);
        if (tails[k].p)
            memcpy(cat + za, tails[k].p, tails[k].n);
        else
            memset(cat + za, 0, tails[k].n);
        CU_ASSERT_FATAL(write_bytes(path, cat, za + tails[k].n));
        memset(&err, 0, sizeof err);
        data = (unsigned char *)1;
        CU_ASSERT_EQUAL(dsnn_read_file(path, &data, &n, &err), DSNN_ERR_FORMAT);
        CU_ASSERT_PTR_NULL(data);
        ASSERT_HAS(err.msg, "tail.gz");
        ASSERT_HAS(err.msg, "trailing bytes after the gzip data");
        ASSERT_HAS(err.msg, tails[k].count);
        char off[64];
        snprintf(off, sizeof off, "offset %zu", za);
        ASSERT_HAS(err.msg, off);
        /* the streaming reader from the file says the same */
        struct dsnn_gzin *in = NULL;
        CU_ASSERT_EQUAL_FATAL(dsnn_gzin_open(path, NULL, &in, &err), DSNN_OK);
        CU_ASSERT(dsnn_gzin_compressed(in));
        unsigned char buf[8192];
        size_t got = 0, total = 0;
        enum dsnn_status st;
        while ((st = dsnn_gzin_read(in, buf, sizeof buf, &got, &err)) == DSNN_OK && got > 0)
            total += got;
        CU_ASSERT_EQUAL(st, DSNN_ERR_FORMAT);
        ASSERT_HAS(err.msg, "trailing bytes after the gzip data");
        ASSERT_HAS(err.msg, tails[k].count);
        CU_ASSERT(total <= na);
        dsnn_gzin_close(in);
    }
    /* raw input through the streaming reader: as it is */
    CU_ASSERT_FATAL(write_bytes(path, b, nb));
    struct dsnn_gzin *in = NULL;
    CU_ASSERT_EQUAL_FATAL(dsnn_gzin_open(path, "test file", &in, &err), DSNN_OK);
    CU_ASSERT(!dsnn_gzin_compressed(in));
    unsigned char *back = malloc(nb + 1);
    size_t got = 0;
    CU_ASSERT_EQUAL(dsnn_gzin_read(in, back, nb + 1, &got, &err), DSNN_OK);
    CU_ASSERT(got == nb && memcmp(back, b, nb) == 0);
    dsnn_gzin_close(in);
    dsnn_gzin_close(NULL);
    free(back);
    free(cat);
    free(ga);
    free(gb);
    free(a);
    free(b);
    dir_teardown();
}

static CU_TestInfo tests[] = {
    {"io write/read round trip, tags", test_io_round_trip},
    {"io read of a short file: truncated", test_io_read_short},
    {"io counted section: count checked", test_io_expect_count},
    {"atomic write leaves no temporary", test_atomic_write},
    {"atomic write never follows a link at its temporary", test_atomic_write_no_follow},
    {"read_file raw", test_read_raw},
    {"read_file gzip", test_read_gzip},
    {"read_file truncated / corrupt gzip", test_read_gzip_truncated},
    {"gzip: more members read on, other trailing bytes refused", test_read_gzip_trailing},
    CU_TEST_INFO_NULL,
};

DSNN_TEST_MAIN("io", tests)
