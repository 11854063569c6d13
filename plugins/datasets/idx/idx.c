/* plugins/datasets/idx/idx.c - dataset plugin for IDX files (MNIST, Fashion-MNIST, KMNIST ...).
 *
 * Reads the four files of the classic LeCun IDX layout, raw or gzip-compressed (detected by the
 * gzip magic, decompressed while reading by dsnn/gzin.h: several gzip members are one stream,
 * bytes after the gzip data that are not another member are an error naming the file):
 *
 *     images: magic 0x00000803 (unsigned bytes, 3 dimensions), u32 n, u32 rows, u32 cols,
 *             then n*rows*cols pixels
 *     labels: magic 0x00000801 (unsigned bytes, 1 dimension), u32 n, then n labels
 *
 * all integers big-endian. Every file is read and checked in full at open (bad magic, zero or
 * huge dimensions, truncated data, trailing garbage, corrupt gzip, image/label counts, labels
 * against n_classes); every error names the file and says what is wrong.
 *
 * Pixels are kept as uint8 (70000 Fashion-MNIST images are 55 MB) and converted in next_batch
 * through a 256-entry table: x = (p/255 - mean) / std, channels-first, shape {1, rows, cols}.
 *
 * Splits:
 *   train: the train files (the first train_size samples of them, 0 = all). With shuffle, the
 *          order of epoch e is a Fisher-Yates permutation drawn from
 *          dsnn_rng_seed(dsnn_seed_mix(ctx->seed, e), DSNN_RNG_STREAM_DATA), always started from
 *          the identity: it depends on (trial seed, epoch) only, not on what ran before.
 *   test:  the test files in file order (the first test_size of them, 0 = all). When
 *          val_fraction > 0, the test files are not read; the last round(val_fraction * n) samples
 *          of the train files form the test split (validation) and the train split is what
 *          remains before them. train_size and test_size then limit these two parts, so the
 *          validation samples do not change with train_size.
 *   noise: with test_noise = true, the test split (same samples, same order, batch_size_test)
 *          with nupic.research's RandomNoise applied to every sample: floor(noise_level * n) of
 *          its n pixels set to noise_high (half of them) or noise_low (the rest); by default
 *          after normalisation, as nupic does (noise_space). Test sample i gets the same noise at
 *          every epoch: dsnn_noise_rng(noise_seed or trial seed, i). See dsnn/dataset_util.h.
 *          Without test_noise, n_noise = 0 and begin answers DSNN_ERR_UNSUPPORTED.
 *
 * Batches: batch_size_train is one size or one per epoch ([4, 16]: 4 in epoch 0, 16 from epoch 1
 * on; the last value repeats, as nupic's VaryingDataLoader); info->batch_size_train is the
 * largest. train_batches_per_epoch > 0 ends a train epoch after that many batches (the first
 * batches of the epoch's order; 0 = all).
 *
 * normalize = "dataset" computes mean and std over all pixels of the train split as used (after
 * train_size and val_fraction, so that no validation or test pixel leaks into them); "mnist" and
 * "fashion-mnist" use the conventional values 0.1307 / 0.3081 and 0.2860 / 0.3530 (the latter is
 * what "dataset" computes on the full Fashion-MNIST train set); the keys mean and std override
 * either value of any of these. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dsnn/config.h"
#include "dsnn/data.h"
#include "dsnn/dataset_util.h"
#include "dsnn/gzin.h"
#include "dsnn/plugin.h"
#include "dsnn/rng.h"
#include "dsnn/status.h"

#define IDX_DEFAULT_PATH "/usr/share/datasets/fashion-mnist"
#define IDX_PATH_MAX 4096
#define IDX_MAGIC_IMAGES 0x00000803u
#define IDX_MAGIC_LABELS 0x00000801u
#define IDX_TYPE_UBYTE 0x08u
#define IDX_READ_CHUNK (1u << 20) /* first allocation and largest single read */

/* ------------------------------------------------------------------------------------------ */
/* Reading one IDX file                                                                       */
/* ------------------------------------------------------------------------------------------ */

/* One IDX file of unsigned bytes, read whole. */
struct idx_file {
    char path[IDX_PATH_MAX]; /* as opened; for messages */
    bool gzip;               /* the file was gzip-compressed */
    unsigned ndim;
    uint32_t dims[3];
    uint64_t count;     /* dims[0]: number of items */
    uint64_t item_size; /* bytes per item: product of dims[1..ndim) (1 for labels) */
    uint8_t *data;      /* count * item_size bytes; owned */
};

static void idx_file_free(struct idx_file *f)
{
    if (f) {
        free(f->data);
        f->data = NULL;
    }
}

static const char *idx_type_name(unsigned code)
{
    switch (code) {
    case 0x08: return "unsigned byte";
    case 0x09: return "signed byte";
    case 0x0B: return "short";
    case 0x0C: return "int";
    case 0x0D: return "float";
    case 0x0E: return "double";
    default: return "unknown type";
    }
}

/* Reads up to n bytes (less only at the end of the data); *got receives the count. */
static enum dsnn_status idx_gz_read(struct dsnn_gzin *gz, const struct idx_file *f, void *buf,
                                    uint64_t n, uint64_t *got, struct dsnn_error *err)
{
    (void)f; /* the reader's messages name the file */
    size_t k = 0;
    enum dsnn_status st = dsnn_gzin_read(gz, buf, (size_t)n, &k, err);
    *got = k;
    return st;
}

static uint32_t idx_be32(const uint8_t *b)
{
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | (uint32_t)b[3];
}

/* Opens path (a regular file) for reading, gzip-compressed or raw (dsnn/gzin.h: several gzip
 * members are read as one stream, other bytes after the gzip data are an error). */
static enum dsnn_status idx_gz_open(const char *path, const char *what, struct dsnn_gzin **gz,
                                    struct dsnn_error *e)
{
    char w[64];
    snprintf(w, sizeof w, "%s file", what);
    return dsnn_gzin_open(path, w, gz, e);
}

/* The magic number (0, 0, type, number of dimensions) must announce unsigned bytes in ndim
 * dimensions; otherwise the message says what the file seems to be. */
static enum dsnn_status idx_check_magic(const uint8_t head[4], unsigned ndim, const char *what,
                                        const struct idx_file *f, struct dsnn_error *e)
{
    uint32_t magic = idx_be32(head);
    uint32_t expected = (IDX_TYPE_UBYTE << 8) | ndim;
    if (magic == expected)
        return DSNN_OK;
    char hint[160] = "";
    if (head[0] == 0 && head[1] == 0 && head[3] >= 1 && head[3] <= 4 &&
        head[2] == IDX_TYPE_UBYTE)
        snprintf(hint, sizeof hint, " (an IDX file with %u dimension%s: %s)", head[3],
                 head[3] == 1 ? "" : "s", head[3] == 1 ? "a labels file?"
                                         : head[3] == 3 ? "an images file?"
                                                        : "not supported");
    else if (head[0] == 0 && head[1] == 0)
        snprintf(hint, sizeof hint, " (an IDX file of %s, %u dimensions: only unsigned "
                                    "bytes are supported)", idx_type_name(head[2]), head[3]);
    else
        snprintf(hint, sizeof hint, " (not an IDX file)");
    return dsnn_error_set(e, DSNN_ERR_FORMAT,
                          "%s: bad magic number for an IDX %s file: expected 0x%08" PRIX32
                          " (unsigned bytes, %u dimension%s), found 0x%08" PRIX32 "%s",
                          f->path, what, expected, ndim, ndim == 1 ? "" : "s", magic, hint);
}

/* Reads and checks the header: magic number, then the ndim dimensions into f (count, item
 * size); shape receives their description for messages. */
static enum dsnn_status idx_read_header(struct dsnn_gzin *gz, struct idx_file *f, unsigned ndim,
                                        const char *what, char *shape, size_t shape_size,
                                        struct dsnn_error *e)
{
    enum dsnn_status st;
    uint8_t head[4 + 4 * 3];
    uint64_t got = 0;
    const char *path = f->path;
    if ((st = idx_gz_read(gz, f, head, 4, &got, e)) != DSNN_OK)
        return st;
    f->gzip = dsnn_gzin_compressed(gz);
    const char *bytes = f->gzip ? "bytes after decompression" : "bytes";
    if (got < 4)
        return dsnn_error_set(e, DSNN_ERR_FORMAT,
                              "%s: truncated: %" PRIu64 " %s, an IDX header needs at least 4%s",
                              path, got, bytes, got == 0 ? " (the file is empty)" : "");
    if ((st = idx_check_magic(head, ndim, what, f, e)) != DSNN_OK)
        return st;
    f->ndim = ndim;
    if ((st = idx_gz_read(gz, f, head + 4, 4ull * ndim, &got, e)) != DSNN_OK)
        return st;
    if (got < 4ull * ndim)
        return dsnn_error_set(e, DSNN_ERR_FORMAT,
                              "%s: truncated header: expected %u %s, found %" PRIu64, path,
                              4 + 4 * ndim, bytes, 4 + got);
    for (unsigned d = 0; d < ndim; d++)
        f->dims[d] = idx_be32(head + 4 + 4 * d);
    f->count = f->dims[0];
    f->item_size = 1;
    for (unsigned d = 1; d < ndim; d++)
        f->item_size *= f->dims[d]; /* < 2^64: at most two factors below 2^32 */
    if (ndim == 3)
        snprintf(shape, shape_size, "%" PRIu32 " images of %" PRIu32 "x%" PRIu32, f->dims[0],
                 f->dims[1], f->dims[2]);
    else
        snprintf(shape, shape_size, "%" PRIu32 " labels", f->dims[0]);
    if (f->count == 0)
        return dsnn_error_set(e, DSNN_ERR_FORMAT, "%s: the header announces no %s (%s)", path,
                              what, shape);
    for (unsigned d = 1; d < ndim; d++)
        if (f->dims[d] == 0 || f->dims[d] > (1u << 16))
            return dsnn_error_set(e, DSNN_ERR_FORMAT,
                                  "%s: wrong dimensions in the header (%s): each of rows and "
                                  "columns must be in [1, 65536]",
                                  path, shape);
    if (f->item_size > SIZE_MAX / f->count)
        return dsnn_error_set(e, DSNN_ERR_FORMAT, "%s: wrong dimensions in the header (%s): too "
                              "large", path, shape);
    return DSNN_OK;
}

/* Reads the count * item_size payload bytes into *out (caller frees, also on failure), growing
 * the buffer as data arrives, so that a header announcing far more than the file holds gives
 * "truncated", not an allocation failure. Then nothing may follow (reading on to the end also
 * makes the reader verify the gzip checksum and what follows the gzip data). */
static enum dsnn_status idx_read_payload(struct dsnn_gzin *gz, const struct idx_file *f, const char *shape,
                                         uint8_t **out, struct dsnn_error *e)
{
    enum dsnn_status st;
    const char *path = f->path, *bytes = f->gzip ? "bytes after decompression" : "bytes";
    uint64_t total = f->count * f->item_size, got = 0;
    uint64_t cap = total < IDX_READ_CHUNK ? total : IDX_READ_CHUNK, have = 0;
    uint8_t *data = *out = malloc((size_t)cap);
    if (!data)
        return dsnn_error_set(e, DSNN_ERR_NOMEM, "%s: out of memory (%" PRIu64 " bytes)", path,
                              cap);
    for (;;) {
        if ((st = idx_gz_read(gz, f, data + have, cap - have, &got, e)) != DSNN_OK)
            return st;
        have += got;
        if (have < cap || cap == total)
            break;
        uint64_t ncap = cap * 2 < total ? cap * 2 : total;
        uint8_t *p = realloc(data, (size_t)ncap);
        if (!p)
            return dsnn_error_set(e, DSNN_ERR_NOMEM, "%s: out of memory (%" PRIu64 " bytes)",
                                  path, ncap);
        data = *out = p;
        cap = ncap;
    }
    if (have < total)
        return dsnn_error_set(e, DSNN_ERR_FORMAT,
                              "%s: truncated: the header announces %s, i.e. %" PRIu64
                              " data bytes, but the file holds %" PRIu64 " data %s (%" PRIu64
                              " missing)",
                              path, shape, total, have, bytes, total - have);
    uint64_t extra = 0;
    for (;;) {
        uint8_t scratch[4096];
        if ((st = idx_gz_read(gz, f, scratch, sizeof scratch, &got, e)) != DSNN_OK)
            return st;
        extra += got;
        if (got < sizeof scratch)
            break;
    }
    if (extra)
        return dsnn_error_set(e, DSNN_ERR_FORMAT,
                              "%s: trailing garbage: %" PRIu64 " %s%s the %" PRIu64
                              " data bytes that the header announces (%s)",
                              path, extra, extra == 1 ? "byte follows" : "bytes follow",
                              f->gzip ? " (after decompression)" : "", total, shape);
    return DSNN_OK;
}

/* Reads the IDX file at path, which must hold unsigned bytes with `ndim` dimensions (1: labels,
 * 3: images). `what` ("images", "labels") is used in messages. On success f->data holds the
 * payload (caller frees with idx_file_free); on failure f->data is NULL. */
static enum dsnn_status idx_file_read(const char *path, unsigned ndim, const char *what,
                                      struct idx_file *f, struct dsnn_error *err)
{
    /* A local error so that err->status is valid whichever branch fails. */
    struct dsnn_error e0 = {0};
    struct dsnn_error *e = err ? err : &e0;
    enum dsnn_status st;
    struct dsnn_gzin *gz = NULL;
    uint8_t *data = NULL;
    char shape[96];

    memset(f, 0, sizeof *f);
    if (strlen(path) >= sizeof f->path)
        return dsnn_error_set(e, DSNN_ERR_CONFIG, "%s: path too long", path);
    memcpy(f->path, path, strlen(path) + 1);
    if ((st = idx_gz_open(path, what, &gz, e)) != DSNN_OK)
        return st;
    if ((st = idx_read_header(gz, f, ndim, what, shape, sizeof shape, e)) == DSNN_OK)
        st = idx_read_payload(gz, f, shape, &data, e);
    dsnn_gzin_close(gz);
    if (st != DSNN_OK) {
        free(data);
        f->data = NULL;
        return st;
    }
    f->data = data;
    return DSNN_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* Configuration                                                                              */
/* ------------------------------------------------------------------------------------------ */

enum { IDX_NORM_DATASET = 0, IDX_NORM_NONE = 1 }; /* 2, 3: named statistics */
static const char *const idx_norm_choices[] = {"dataset", "none", "mnist", "fashion-mnist", NULL};

/* The keys, as read (dsnn_keys_read fills the fields named in the specs). */
struct idx_options {
    const char *dir;
    const char *names[4]; /* train images, train labels, test images, test labels */
    struct dsnn_split_options split; /* batch sizes, train_batches_per_epoch, shuffle */
    struct dsnn_noise_options noise;
    int normalize;
    bool has_mean, has_std;
    double mean, std;
    struct dsnn_holdout_options holdout; /* train_size, test_size, val_fraction */
    int64_t n_classes;
};

#define IK_AT(f) DSNN_KEY_AT(struct idx_options, f)
static const struct dsnn_key_spec idx_keys[] = {
    DSNN_KEY_PLUGIN("idx"),
    {.name = "path", .type = DSNN_KEY_STRING, .def_str = IDX_DEFAULT_PATH,
     .default_value = IDX_DEFAULT_PATH, /* unquoted: test_idx and `info` show the bare path */
     IK_AT(dir),
     .doc = "directory of the IDX files (the file names below are relative to it unless absolute)"},
    {.name = "train_images", .type = DSNN_KEY_STRING, .def_str = "train-images-idx3-ubyte.gz",
     IK_AT(names[0]),
     .doc = "training images: IDX, unsigned bytes [n][rows][cols], raw or gzip; if the file is missing "
     "but the name with (or without) \".gz\" exists, that one is read"},
    {.name = "train_labels", .type = DSNN_KEY_STRING, .def_str = "train-labels-idx1-ubyte.gz",
     IK_AT(names[1]),
     .doc = "training labels: IDX, unsigned bytes [n], raw or gzip (same \".gz\" fallback)"},
    {.name = "test_images", .type = DSNN_KEY_STRING, .def_str = "t10k-images-idx3-ubyte.gz",
     IK_AT(names[2]),
     .doc = "test images, same format as train_images (not read when val_fraction > 0)"},
    {.name = "test_labels", .type = DSNN_KEY_STRING, .def_str = "t10k-labels-idx1-ubyte.gz",
     IK_AT(names[3]),
     .doc = "test labels, same format as train_labels (not read when val_fraction > 0)"},
    {.name = "batch_size_train", .type = DSNN_KEY_FLOAT_OR_ARRAY, .def = 128,
     DSNN_KEY_RANGE(1, DSNN_BATCH_SIZE_MAX),
     .doc = "samples per training batch (the last batch of an epoch may be smaller): an integer, or "
     "one per epoch such as [4, 16] (the last value repeats, as nupic's VaryingDataLoader)"},
    DSNN_SPLIT_KEYS, /* batch_size_test, train_batches_per_epoch, shuffle */
    {.name = "normalize", .type = DSNN_KEY_STRING, .def_str = "dataset",
     .choices = idx_norm_choices, IK_AT(normalize),
     .doc = "x = (pixel/255 - mean) / std with: \"dataset\": mean and std over all pixels of the train "
     "split as used; \"mnist\": 0.1307 / 0.3081; \"fashion-mnist\": 0.2860 / 0.3530 (keys mean "
     "and std override either value); \"none\": x = pixel/255"},
    {.name = "mean", .type = DSNN_KEY_FLOAT, .default_value = "(from normalize)",
     .doc = "overrides the mean of normalize (MNIST 0.1307, Fashion-MNIST 0.2860)"},
    {.name = "std", .type = DSNN_KEY_FLOAT, .default_value = "(from normalize)",
     .doc = "overrides the standard deviation of normalize, > 0 (MNIST 0.3081, Fashion-MNIST 0.3530)"},
    DSNN_KEY_ALIAS_OF("stats_mean", "mean", "nupic's"),
    DSNN_KEY_ALIAS_OF("stats_std", "std", "nupic's"),
    DSNN_HOLDOUT_KEYS,
    {.name = "n_classes", .type = DSNN_KEY_INT, .def = 0,
     DSNN_KEY_RANGE(0, 256), IK_AT(n_classes),
     .doc = "number of classes, in [1, 256]; 0 = largest label + 1 over the label files read; a label "
     ">= n_classes is an error"},
    DSNN_NOISE_KEYS,
};
#undef IK_AT
DSNN_KEY_TABLE_DEFINE(static, idx_table, idx_keys);



static const char *const idx_name_keys[4] = {"train_images", "train_labels", "test_images",
                                             "test_labels"};
static enum dsnn_status idx_read_options(const struct dsnn_cfg *cfg, uint64_t seed,
                                         struct idx_options *o, struct dsnn_error *err)
{
    enum dsnn_status st;
    char kw[700];
    if ((st = dsnn_dataset_keys_read(&idx_table, cfg, o, &o->split, err)) != DSNN_OK)
        return st;
    for (int i = 0; i < 4; i++)
        if (!o->names[i] || !o->names[i][0])
            return dsnn_error_set(err, DSNN_ERR_CONFIG, "%s: must name a file",
                                  dsnn_dataset_key_where(cfg, idx_name_keys[i], kw, sizeof kw));
    if ((st = dsnn_noise_options_read(cfg, seed, &o->noise, err)) != DSNN_OK)
        return st;
    o->has_mean = dsnn_cfg_has(cfg, "mean");
    o->has_std = dsnn_cfg_has(cfg, "std");
    if ((st = dsnn_cfg_float(cfg, "mean", 0.0, &o->mean, err)) != DSNN_OK)
        return st;
    if ((st = dsnn_cfg_float(cfg, "std", 1.0, &o->std, err)) != DSNN_OK)
        return st;
    if (o->normalize == IDX_NORM_NONE && (o->has_mean || o->has_std))
        return dsnn_error_set(err, DSNN_ERR_CONFIG,
                              "%s: given with normalize = \"none\"; remove it, or use normalize "
                              "= \"dataset\" (or a named statistics) to normalise with it",
                              dsnn_dataset_key_where(cfg, o->has_mean ? "mean" : "std", kw,
                                                     sizeof kw));
    if (o->has_mean && !isfinite(o->mean))
        return dsnn_error_set(err, DSNN_ERR_CONFIG, "%s: must be a finite number, got %g",
                              dsnn_dataset_key_where(cfg, "mean", kw, sizeof kw), o->mean);
    if (o->has_std && !(isfinite(o->std) && o->std > 0))
        return dsnn_error_set(err, DSNN_ERR_CONFIG, "%s: must be > 0, got %g",
                              dsnn_dataset_key_where(cfg, "std", kw, sizeof kw), o->std);
    return dsnn_holdout_read(cfg, &o->holdout, err);
}

static bool idx_exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

/* Resolves the file of key i into out: dir/name (name alone if absolute), else the same name
 * with ".gz" added or removed if only that exists. A missing file is DSNN_ERR_IO. */
static enum dsnn_status idx_resolve(const struct dsnn_cfg *cfg, const struct idx_options *o,
                                    int i, char *out, size_t size, struct dsnn_error *err)
{
    char kw[700];
    const char *name = o->names[i];
    int n = (name[0] == '/' || !o->dir[0]) ? snprintf(out, size, "%s", name)
                                           : snprintf(out, size, "%s/%s", o->dir, name);
    if (n < 0 || (size_t)n >= size - 3)
        return dsnn_error_set(err, DSNN_ERR_CONFIG, "%s: path too long: %s/%s",
                              dsnn_dataset_key_where(cfg, idx_name_keys[i], kw, sizeof kw), o->dir, name);
    if (idx_exists(out))
        return DSNN_OK;
    int saved = errno;
    char alt[IDX_PATH_MAX + 4];
    size_t len = (size_t)n;
    memcpy(alt, out, len + 1);
    if (len > 3 && strcmp(alt + len - 3, ".gz") == 0)
        alt[len - 3] = '\0';
    else
        memcpy(alt + len, ".gz", 4);
    if (idx_exists(alt)) {
        memcpy(out, alt, strlen(alt) + 1);
        return DSNN_OK;
    }
    const char *group = cfg ? dsnn_cfg_path(cfg) : NULL;
    group = group && *group ? group : "dataset";
    if (cfg && dsnn_cfg_has(cfg, idx_name_keys[i]))
        return dsnn_error_set(err, DSNN_ERR_IO,
                              "%s: cannot open: %s (also tried %s); check %s and %s.path (the "
                              "directory of the IDX files)",
                              out, strerror(saved), alt,
                              dsnn_dataset_key_where(cfg, idx_name_keys[i], kw, sizeof kw), group);
    return dsnn_error_set(err, DSNN_ERR_IO,
                          "%s: cannot open: %s (also tried %s); set %s.path to the directory of "
                          "the IDX files, or %s.%s to the file",
                          out, strerror(saved), alt, group, group, idx_name_keys[i]);
}

/* ------------------------------------------------------------------------------------------ */
/* The dataset                                                                                */
/* ------------------------------------------------------------------------------------------ */

enum { IDX_TRAIN_IMAGES = 0, IDX_TRAIN_LABELS, IDX_TEST_IMAGES, IDX_TEST_LABELS };

struct idx_split {
    const uint8_t *x; /* [n][sample_size] pixels */
    const uint8_t *y; /* [n] labels */
    int64_t n;
};

struct idx_state {
    struct dsnn_sample_store store; /* first: begin and next_batch are the store's */
    struct idx_file files[4];
    struct idx_split splits[2]; /* DSNN_SPLIT_TRAIN, DSNN_SPLIT_TEST */
    int64_t sample_size;        /* rows * cols */
    struct dsnn_noise_options noise;
    float noise_high, noise_low; /* normalised values the noise sets */
    double mean, std;
    float lut[256]; /* pixel value -> normalised input */
};

static void idx_close(void *state)
{
    struct idx_state *s = state;
    if (!s)
        return;
    for (int i = 0; i < 4; i++)
        idx_file_free(&s->files[i]);
    dsnn_sample_store_free(&s->store);
    free(s);
}

/* Reads an images file and its labels file and checks that they pair. */
static enum dsnn_status idx_load_pair(const struct dsnn_cfg *cfg, const struct idx_options *o,
                                      struct idx_state *s, int images, struct dsnn_error *err)
{
    char path[IDX_PATH_MAX];
    enum dsnn_status st;
    if ((st = idx_resolve(cfg, o, images, path, sizeof path, err)) != DSNN_OK)
        return st;
    if ((st = idx_file_read(path, 3, "images", &s->files[images], err)) != DSNN_OK)
        return st;
    if ((st = idx_resolve(cfg, o, images + 1, path, sizeof path, err)) != DSNN_OK)
        return st;
    if ((st = idx_file_read(path, 1, "labels", &s->files[images + 1], err)) != DSNN_OK)
        return st;
    const struct idx_file *im = &s->files[images], *lb = &s->files[images + 1];
    if (im->count != lb->count)
        return dsnn_error_set(err, DSNN_ERR_FORMAT,
                              "image and label counts differ: %s holds %" PRIu64
                              " images, %s holds %" PRIu64 " labels",
                              im->path, im->count, lb->path, lb->count);
    return DSNN_OK;
}

/* Largest label of a labels file. */
static unsigned idx_max_label(const struct idx_file *f)
{
    unsigned m = 0;
    for (uint64_t i = 0; i < f->count; i++)
        if (f->data[i] > m)
            m = f->data[i];
    return m;
}

static enum dsnn_status idx_check_labels(const struct idx_file *f, int n_classes,
                                         const char *where, struct dsnn_error *err)
{
    for (uint64_t i = 0; i < f->count; i++)
        if (f->data[i] >= n_classes)
            return dsnn_error_set(err, DSNN_ERR_FORMAT,
                                  "%s: label %u of sample %" PRIu64 " is out of range: "
                                  "n_classes = %d (%s), labels must be in [0, %d)",
                                  f->path, f->data[i], i, n_classes, where, n_classes);
    return DSNN_OK;
}

/* Reads the train files (and the test files unless val_fraction > 0) and checks that their
 * images have one size. */
static enum dsnn_status idx_load(const struct dsnn_cfg *cfg, const struct idx_options *o,
                                 struct idx_state *s, struct dsnn_error *e)
{
    enum dsnn_status st;
    if ((st = idx_load_pair(cfg, o, s, IDX_TRAIN_IMAGES, e)) != DSNN_OK)
        return st;
    const struct idx_file *tri = &s->files[IDX_TRAIN_IMAGES];
    s->sample_size = (int64_t)tri->item_size;
    if (o->holdout.val_fraction > 0)
        return DSNN_OK;
    if ((st = idx_load_pair(cfg, o, s, IDX_TEST_IMAGES, e)) != DSNN_OK)
        return st;
    const struct idx_file *tei = &s->files[IDX_TEST_IMAGES];
    if (tei->dims[1] != tri->dims[1] || tei->dims[2] != tri->dims[2])
        return dsnn_error_set(e, DSNN_ERR_FORMAT,
                              "image sizes differ: %s holds %" PRIu32 "x%" PRIu32
                              " images, %s holds %" PRIu32 "x%" PRIu32 " images",
                              tri->path, tri->dims[1], tri->dims[2], tei->path, tei->dims[1],
                              tei->dims[2]);
    return DSNN_OK;
}

/* n_classes as given (every label checked against it), or the largest label + 1. */
static enum dsnn_status idx_classes(const struct dsnn_cfg *cfg, const struct idx_options *o,
                                    const struct idx_state *s, int *n_classes,
                                    struct dsnn_error *e)
{
    char kw[700];
    enum dsnn_status st;
    const bool use_val = o->holdout.val_fraction > 0;
    const struct idx_file *trl = &s->files[IDX_TRAIN_LABELS], *tel = &s->files[IDX_TEST_LABELS];
    *n_classes = (int)o->n_classes;
    if (*n_classes == 0) {
        unsigned m = idx_max_label(trl);
        if (!use_val && idx_max_label(tel) > m)
            m = idx_max_label(tel);
        *n_classes = (int)m + 1;
        return DSNN_OK;
    }
    dsnn_dataset_key_where(cfg, "n_classes", kw, sizeof kw);
    if ((st = idx_check_labels(trl, *n_classes, kw, e)) != DSNN_OK)
        return st;
    return use_val ? DSNN_OK : idx_check_labels(tel, *n_classes, kw, e);
}

/* Cuts the splits: the validation part of the train files (val_fraction > 0), then train_size
 * and test_size. */
static enum dsnn_status idx_split(const struct dsnn_cfg *cfg, const struct idx_options *o,
                                  struct idx_state *s, struct dsnn_error *e)
{
    const struct idx_file *tri = &s->files[IDX_TRAIN_IMAGES];
    const struct idx_file *trl = &s->files[IDX_TRAIN_LABELS];
    /* the test files (not read, count 0, with val_fraction > 0) */
    const struct idx_file *test_im = &s->files[IDX_TEST_IMAGES];
    const struct idx_file *test_lb = &s->files[IDX_TEST_LABELS];
    struct dsnn_holdout h;
    enum dsnn_status st = dsnn_holdout_cut(cfg, &o->holdout, (int64_t)tri->count, tri->path,
                                           (int64_t)test_im->count, test_im->path, &h, e);
    if (st != DSNN_OK)
        return st;
    if (h.from_train) { /* validation: the test split is the end of the train files */
        test_im = tri;
        test_lb = trl;
    }
    const int64_t n_train = h.n_train, n_test = h.n_test, test_first = h.test_first;
    s->splits[DSNN_SPLIT_TRAIN] = (struct idx_split){tri->data, trl->data, n_train};
    s->splits[DSNN_SPLIT_TEST] = (struct idx_split){
        test_im->data + test_first * s->sample_size, test_lb->data + test_first, n_test};
    return DSNN_OK;
}

/* Mean and std of the pixels of the train split as used, exactly from a histogram (std 1 when
 * the pixels are constant). */
static void idx_train_stats(const struct idx_state *s, bool warn, FILE *log, double *mean_out,
                            double *std_out)
{
    uint64_t hist[256] = {0};
    const uint8_t *p = s->splits[DSNN_SPLIT_TRAIN].x;
    uint64_t npix = (uint64_t)s->splits[DSNN_SPLIT_TRAIN].n * (uint64_t)s->sample_size;
    for (uint64_t i = 0; i < npix; i++)
        hist[p[i]]++;
    double s1 = 0, s2 = 0;
    for (int v = 0; v < 256; v++) {
        s1 += (double)hist[v] * v;
        s2 += (double)hist[v] * v * v;
    }
    double mean = s1 / (double)npix / 255.0;
    double var = s2 / (double)npix / (255.0 * 255.0) - mean * mean;
    double std = var > 0 ? sqrt(var) : 0.0;
    if (std < 1e-6) {
        if (warn && log)
            fprintf(log, "idx: warning: the train pixels are constant (std = 0); using std = 1\n");
        std = 1.0;
    }
    *mean_out = mean;
    *std_out = std;
}

/* Normalisation (named statistics, those of the train split, or given), the pixel table and the
 * noise values as normalised inputs (given so, as nupic, or as pixels). */
static enum dsnn_status idx_normalise(const struct idx_options *o, struct idx_state *s, FILE *log,
                                      struct dsnn_error *e)
{
    s->mean = 0.0;
    s->std = 1.0;
    if (o->normalize > IDX_NORM_NONE) {
        const struct dsnn_norm_stats *preset = dsnn_norm_stats_find(idx_norm_choices[o->normalize]);
        if (!preset)
            return dsnn_error_set(e, DSNN_ERR_INTERNAL, "idx: no statistics named \"%s\"",
                                  idx_norm_choices[o->normalize]);
        s->mean = o->has_mean ? o->mean : preset->mean[0];
        s->std = o->has_std ? o->std : preset->std[0];
    } else if (o->normalize == IDX_NORM_DATASET) {
        if (!o->has_mean || !o->has_std)
            idx_train_stats(s, !o->has_std, log, &s->mean, &s->std);
        if (o->has_mean)
            s->mean = o->mean;
        if (o->has_std)
            s->std = o->std;
    }
    for (int v = 0; v < 256; v++)
        s->lut[v] = (float)(((double)v / 255.0 - s->mean) / s->std);
    if (s->noise.space == DSNN_NOISE_SPACE_PIXEL) {
        s->noise_high = (float)((s->noise.high - s->mean) / s->std);
        s->noise_low = (float)((s->noise.low - s->mean) / s->std);
    } else {
        s->noise_high = (float)s->noise.high;
        s->noise_low = (float)s->noise.low;
    }
    return DSNN_OK;
}

static void idx_log(FILE *log, const struct idx_options *o, const struct idx_state *s,
                    const struct dsnn_dataset_info *info)
{
    const struct idx_file *tri = &s->files[IDX_TRAIN_IMAGES], *tei = &s->files[IDX_TEST_IMAGES];
    fprintf(log, "idx: train %" PRId64 " samples of 1x%dx%d from %s%s\n", info->n_train,
            info->shape.h, info->shape.w, tri->path, tri->gzip ? " (gzip)" : "");
    if (o->holdout.val_fraction > 0)
        fprintf(log, "idx: test (validation) %" PRId64 " samples: the last %g of %s\n",
                info->n_test, o->holdout.val_fraction, tri->path);
    else
        fprintf(log, "idx: test %" PRId64 " samples from %s%s\n", info->n_test, tei->path,
                tei->gzip ? " (gzip)" : "");
    fprintf(log, "idx: %d classes; normalize %s: mean %.4f std %.4f; shuffle %s\n",
            info->n_classes, idx_norm_choices[o->normalize], s->mean, s->std,
            o->split.shuffle ? "on" : "off");
    const struct dsnn_split_cursor *c = &s->store.cur;
    if (c->train_batch.n > 1 || c->test_batch.n > 1 || c->batches_per_epoch.max > 0)
        fprintf(log, "idx: per epoch: batch_size_train %d value(s) (largest %d), batch_size_test "
                     "%d (largest %d), train_batches_per_epoch %d (largest %d, 0 = all)\n",
                c->train_batch.n, c->train_max, c->test_batch.n, c->test_max,
                c->batches_per_epoch.n, c->batches_per_epoch.max);
    dsnn_noise_options_log(log, "idx", "pixels", &s->noise);
}

/* Writes sample i of the split begun, normalised (and noisy for the noise split), to dst
 * (dsnn_sample_fn). */
static int32_t idx_sample(void *state, int64_t i, float *dst)
{
    const struct idx_state *s = state;
    /* The noise split is the test split with noise. */
    const struct idx_split *sp =
        &s->splits[s->store.cur.split == DSNN_SPLIT_TRAIN ? DSNN_SPLIT_TRAIN : DSNN_SPLIT_TEST];
    const int64_t d = s->sample_size;
    const uint8_t *src = sp->x + i * d;
    for (int64_t j = 0; j < d; j++)
        dst[j] = s->lut[src[j]];
    if (s->store.cur.split == DSNN_SPLIT_NOISE) {
        struct dsnn_rng r;
        dsnn_noise_rng(&r, s->noise.seed, (uint64_t)i);
        dsnn_noise_apply(dst, (size_t)d, s->noise.level, s->noise_high, s->noise_low, &r);
    }
    return sp->y[i];
}

static enum dsnn_status idx_open(const struct dsnn_cfg *cfg, const struct dsnn_run_ctx *ctx,
                                 void **state, struct dsnn_dataset_info *info,
                                 struct dsnn_error *err)
{
    struct dsnn_error e0 = {0};
    struct dsnn_error *e = err ? err : &e0;
    struct idx_options o;
    enum dsnn_status st;
    FILE *log = ctx ? ctx->log : NULL;

    if (!state || !info)
        return dsnn_error_set(e, DSNN_ERR_INVALID, "idx: open: state and info must not be NULL");
    *state = NULL;
    memset(&o, 0, sizeof o);
    if ((st = idx_read_options(cfg, ctx ? ctx->seed : 0, &o, e)) != DSNN_OK)
        return st;

    struct idx_state *s = calloc(1, sizeof *s);
    if (!s)
        return dsnn_error_set(e, DSNN_ERR_NOMEM, "idx: out of memory");
    dsnn_split_cursor_setup(&s->store.cur, "idx", &o.split, ctx ? ctx->seed : 0,
                            o.noise.enabled ? DSNN_NOISE_SPLIT_ON : DSNN_NOISE_SPLIT_OFF);
    s->noise = o.noise;
    int n_classes;
    if ((st = idx_load(cfg, &o, s, e)) != DSNN_OK ||
        (st = idx_classes(cfg, &o, s, &n_classes, e)) != DSNN_OK ||
        (st = idx_split(cfg, &o, s, e)) != DSNN_OK || (st = idx_normalise(&o, s, log, e)) != DSNN_OK)
        goto fail;
    const int64_t n_train = s->splits[DSNN_SPLIT_TRAIN].n, n_test = s->splits[DSNN_SPLIT_TEST].n;

    /* Buffers. */
    if ((st = dsnn_split_cursor_init(&s->store.cur, n_train, n_test, e)) != DSNN_OK ||
        (st = dsnn_batch_buffer_init(&s->store.buf, &s->store.cur, s->sample_size, e)) != DSNN_OK)
        goto fail;
    s->store.sample = idx_sample;
    s->store.n[DSNN_SPLIT_TRAIN] = n_train;
    s->store.n[DSNN_SPLIT_TEST] = s->store.n[DSNN_SPLIT_NOISE] = n_test; /* noise: test + noise */

    const struct idx_file *tri = &s->files[IDX_TRAIN_IMAGES];
    /* the noise split (when on) is the test split with noise */
    const struct dsnn_shape shape = {1, (int)tri->dims[1], (int)tri->dims[2]};
    dsnn_split_cursor_describe(&s->store.cur, shape, n_classes, n_train, n_test, n_test, info);
    if (log)
        idx_log(log, &o, s, info);
    *state = s;
    return DSNN_OK;

fail:
    idx_close(s);
    return st;
}

DSNN_DATASET_PLUGIN("idx", "1.0.0", "IDX image classification files (MNIST, Fashion-MNIST), raw "
                    "or gzip",
                    idx_keys,
                    .open = idx_open, .begin = dsnn_sample_store_begin,
                    .next_batch = dsnn_sample_store_next_batch,
                    .close = idx_close)
