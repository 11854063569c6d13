/* plugins/datasets/cifar/cifar.c - dataset plugin for CIFAR-10 and CIFAR-100 (binary version).
 *
 * Files (https://www.cs.toronto.edu/~kriz/cifar.html, "binary version"), raw or gzip-compressed
 * (detected by the gzip magic), all in the directory `path`:
 *
 *     CIFAR-10:  data_batch_1.bin ... data_batch_5.bin (train, read in this order), test_batch.bin
 *                record = 1 label byte (0..9) + 3072 pixel bytes                     (3073 bytes)
 *     CIFAR-100: train.bin, test.bin
 *                record = 1 coarse label byte (0..19) + 1 fine label byte (0..99) + 3072 pixels
 *                                                                                     (3074 bytes)
 *
 * The 3072 pixel bytes are the red, then the green, then the blue plane of a 32x32 image, each
 * row-major: already channels-first, so a sample is {3, 32, 32} as it is stored. A file whose
 * size is not a multiple of the record size, an empty file or a label out of range is
 * DSNN_ERR_FORMAT naming the file (and the record); a missing file DSNN_ERR_IO naming the file and
 * the keys to check.
 *
 * Splits:
 *   train: the train files concatenated (the first train_size samples, 0 = all). With shuffle,
 *          epoch e is a Fisher-Yates permutation from dsnn_rng_seed(dsnn_seed_mix(seed, e),
 *          DSNN_RNG_STREAM_DATA), started from the identity (depends on (trial seed, e) only).
 *          With augment = true (nupic's augment_images: RandomCrop(32, padding=4) then
 *          RandomHorizontalFlip()), each train sample is cropped from the image zero-padded by
 *          augment_padding pixels on every side (offsets uniform in [0, 2 * padding]) and then
 *          mirrored with probability 1/2, as torchvision does on the uint8 image before ToTensor
 *          and Normalize (the padding is black: pixel 0, normalised like any pixel). The draw for
 *          sample i (its index in the train files) at epoch e comes from
 *          dsnn_rng_seed(dsnn_seed_mix(dsnn_seed_mix(seed, e), i), CIFAR_AUGMENT_STREAM): it does
 *          not depend on the batch size, the order or what ran before.
 *   test:  the test file in file order (first test_size, 0 = all), never augmented. With
 *          val_fraction > 0 the test file is not read: the last round(val_fraction * n) train
 *          samples are the test split (validation) and the train split is what precedes them.
 *   noise: with test_noise = true, the test split with nupic's RandomNoise (dsnn/dataset_util.h):
 *          floor(noise_level * 3072) of the 3072 values of each sample (all channels together)
 *          set to noise_high / noise_low, after normalisation by default as nupic does.
 *
 * Normalisation per channel c: x = (pixel/255 - mean[c]) / std[c] with normalize = "dataset"
 * (mean and std of each channel over the train split as used, computed exactly from histograms),
 * "cifar10" or "cifar100" (the published statistics of the full train sets) or "none"
 * (x = pixel/255). The keys mean and std (one value for all channels, or three) override them.
 *
 * Batches: batch_size_train is one size or one per epoch ([64, 128]: the last value repeats, as
 * nupic's VaryingDataLoader); info->batch_size_train is the largest. train_batches_per_epoch > 0
 * ends a train epoch after that many batches. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dsnn/config.h"
#include "dsnn/data.h"
#include "dsnn/dataset_util.h"
#include "dsnn/io.h"
#include "dsnn/plugin.h"
#include "dsnn/rng.h"
#include "dsnn/status.h"

#define CIFAR_SIDE 32
#define CIFAR_CHANNELS 3
#define CIFAR_PIXELS (CIFAR_CHANNELS * CIFAR_SIDE * CIFAR_SIDE) /* 3072 */
#define CIFAR_PATH_MAX 4096
#define CIFAR_MAX_FILES 5
#define CIFAR_AUGMENT_STREAM 0x6175676d656e74ull /* "augment" */
#define CIFAR10_DEFAULT_PATH "/usr/share/datasets/cifar-10-batches-bin"
#define CIFAR100_DEFAULT_PATH "/usr/share/datasets/cifar-100-binary"

enum { CIFAR_NORM_DATASET = 0, CIFAR_NORM_NONE = 1 }; /* 2, 3: named statistics */
static const char *const cifar_norm_choices[] = {"dataset", "none", "cifar10", "cifar100", NULL};
static const char *const cifar_variants[] = {"cifar10", "cifar100", NULL};
static const char *const cifar_label_modes[] = {"fine", "coarse", NULL};

static const char *const cifar10_train_names[] = {"data_batch_1.bin", "data_batch_2.bin",
                                                  "data_batch_3.bin", "data_batch_4.bin",
                                                  "data_batch_5.bin"};

/* The keys, as read (dsnn_keys_read fills the fields named in the specs). */
struct cifar_options {
    int variant; /* 0: CIFAR-10, 1: CIFAR-100 */
    const char *dir;
    int label_mode; /* 0: fine, 1: coarse */
    struct dsnn_split_options split; /* batch sizes, train_batches_per_epoch, shuffle */
    bool augment, flip;
    int64_t padding;
    int normalize;
    size_t n_mean, n_std;
    double mean[CIFAR_CHANNELS], std[CIFAR_CHANNELS];
    struct dsnn_holdout_options holdout; /* train_size, test_size, val_fraction */
    struct dsnn_noise_options noise;
};

#define CK_AT(f) DSNN_KEY_AT(struct cifar_options, f)
static const struct dsnn_key_spec cifar_keys[] = {
    DSNN_KEY_PLUGIN("cifar"),
    {.name = "variant", .type = DSNN_KEY_STRING, .def_str = "cifar10",
     .choices = cifar_variants, CK_AT(variant),
     .doc = "\"cifar10\" (data_batch_1.bin ... data_batch_5.bin, test_batch.bin; records of 1 label "
     "byte + 3072 pixels) or \"cifar100\" (train.bin, test.bin; records of a coarse and a fine "
     "label byte + 3072 pixels)"},
    {.name = "path", .type = DSNN_KEY_STRING,
     .default_value = CIFAR10_DEFAULT_PATH " (cifar100: " CIFAR100_DEFAULT_PATH ")",
     .doc = "directory of the binary files (raw or gzip-compressed)"},
    {.name = "label_mode", .type = DSNN_KEY_STRING, .def_str = "fine",
     .choices = cifar_label_modes, CK_AT(label_mode),
     .doc = "CIFAR-100 labels: \"fine\" (100 classes) or \"coarse\" (20 superclasses); CIFAR-10 has "
     "only \"fine\""},
    {.name = "batch_size_train", .type = DSNN_KEY_FLOAT_OR_ARRAY, .def = 128,
     DSNN_KEY_RANGE(1, DSNN_BATCH_SIZE_MAX),
     .doc = "samples per training batch: an integer, or one per epoch such as [64, 128] (the last "
     "value repeats, as nupic's VaryingDataLoader)"},
    DSNN_SPLIT_KEYS, /* batch_size_test, train_batches_per_epoch, shuffle */
    {.name = "augment", .type = DSNN_KEY_BOOL, .def = false,
     CK_AT(augment),
     .doc = "augment the train split (nupic augment_images): random crop of the zero-padded image, "
     "then random horizontal flip; deterministic from (trial seed, epoch, sample)"},
    DSNN_KEY_ALIAS_OF("augment_images", "augment", "nupic's"),
    {.name = "augment_padding", .type = DSNN_KEY_INT, .def = 4, DSNN_KEY_RANGE(0, 16), CK_AT(padding),
     .doc = "zero padding of the random crop, in [0, 16]"},
    {.name = "augment_flip", .type = DSNN_KEY_BOOL, .def = true, CK_AT(flip),
     .doc = "mirror with probability 1/2 when augmenting"},
    {.name = "normalize", .type = DSNN_KEY_STRING, .def_str = "dataset",
     .choices = cifar_norm_choices, CK_AT(normalize),
     .doc = "per channel x = (pixel/255 - mean[c]) / std[c] with \"dataset\" (statistics of the train "
     "split as used), \"cifar10\" (0.4914 0.4822 0.4465 / 0.2470 0.2435 0.2616) or \"cifar100\" "
     "(0.5071 0.4865 0.4409 / 0.2673 0.2564 0.2762); \"none\": x = pixel/255"},
    {.name = "mean", .type = DSNN_KEY_FLOAT_OR_ARRAY, .default_value = "(from normalize)",
     .doc = "overrides the means of normalize: one value for all channels or [r, g, b]"},
    {.name = "std", .type = DSNN_KEY_FLOAT_OR_ARRAY, .default_value = "(from normalize)",
     .doc = "overrides the standard deviations of normalize (> 0): one value or [r, g, b]"},
    DSNN_KEY_ALIAS_OF("stats_mean", "mean", "nupic's"),
    DSNN_KEY_ALIAS_OF("stats_std", "std", "nupic's"),
    DSNN_HOLDOUT_KEYS,
    DSNN_NOISE_KEYS,
};
#undef CK_AT
DSNN_KEY_TABLE_DEFINE(static, cifar_table, cifar_keys);



/* Reads mean or std: absent (n = 0), one value (copied to the three channels) or three. */
static enum dsnn_status cifar_read_stats(const struct dsnn_cfg *cfg, const char *key,
                                         double *out, size_t *n, bool positive,
                                         struct dsnn_error *err)
{
    char kw[700];
    enum dsnn_status st;
    *n = 0;
    if (!dsnn_cfg_has(cfg, key))
        return DSNN_OK;
    double v[CIFAR_CHANNELS + 1];
    size_t got = 0;
    if ((st = dsnn_cfg_float_or_array(cfg, key, 0, v, CIFAR_CHANNELS + 1, &got, err)) != DSNN_OK)
        return st;
    if (got != 1 && got != CIFAR_CHANNELS)
        return dsnn_error_set(err, DSNN_ERR_CONFIG,
                              "%s: give one value or three (red, green, blue), not %zu",
                              dsnn_dataset_key_where(cfg, key, kw, sizeof kw), got);
    for (size_t c = 0; c < CIFAR_CHANNELS; c++) {
        out[c] = v[got == 1 ? 0 : c];
        if (!isfinite(out[c]) || (positive && !(out[c] > 0)))
            return dsnn_error_set(err, DSNN_ERR_CONFIG, "%s: %s, got %g",
                                  dsnn_dataset_key_where(cfg, key, kw, sizeof kw),
                                  positive ? "each value must be > 0" : "must be finite",
                                  out[c]);
    }
    *n = got;
    return DSNN_OK;
}

static enum dsnn_status cifar_read_options(const struct dsnn_cfg *cfg, uint64_t seed,
                                           struct cifar_options *o, struct dsnn_error *err)
{
    enum dsnn_status st;
    char kw[700];
    if ((st = dsnn_dataset_keys_read(&cifar_table, cfg, o, &o->split, err)) != DSNN_OK)
        return st;
    if ((st = dsnn_cfg_string(cfg, "path",
                              o->variant ? CIFAR100_DEFAULT_PATH : CIFAR10_DEFAULT_PATH, &o->dir,
                              err)) != DSNN_OK)
        return st;
    if (!o->dir || !o->dir[0])
        return dsnn_error_set(err, DSNN_ERR_CONFIG, "%s: must name a directory",
                              dsnn_dataset_key_where(cfg, "path", kw, sizeof kw));
    if (o->variant == 0 && o->label_mode == 1)
        return dsnn_error_set(err, DSNN_ERR_CONFIG,
                              "%s: CIFAR-10 has no coarse labels; use variant = \"cifar100\" or "
                              "remove label_mode",
                              dsnn_dataset_key_where(cfg, "label_mode", kw, sizeof kw));
    if ((st = cifar_read_stats(cfg, "mean", o->mean, &o->n_mean, false, err)) != DSNN_OK ||
        (st = cifar_read_stats(cfg, "std", o->std, &o->n_std, true, err)) != DSNN_OK)
        return st;
    if (o->normalize == CIFAR_NORM_NONE && (o->n_mean || o->n_std))
        return dsnn_error_set(err, DSNN_ERR_CONFIG,
                              "%s: given with normalize = \"none\"; remove it, or use normalize "
                              "= \"dataset\" (or named statistics) to normalise with it",
                              dsnn_dataset_key_where(cfg, o->n_mean ? "mean" : "std", kw,
                                                     sizeof kw));
    if ((st = dsnn_holdout_read(cfg, &o->holdout, err)) != DSNN_OK)
        return st;
    return dsnn_noise_options_read(cfg, seed, &o->noise, err);
}

/* ------------------------------------------------------------------------------------------ */
/* The dataset                                                                                */
/* ------------------------------------------------------------------------------------------ */

struct cifar_file {
    char path[CIFAR_PATH_MAX];
    unsigned char *data; /* whole file, decompressed; owned */
    size_t n;            /* records */
};

struct cifar_split {
    const uint8_t **x; /* [n] -> CIFAR_PIXELS pixels; owned array, pixels in the files */
    int32_t *y;        /* [n]; owned */
    int64_t n;
};

struct cifar_state {
    struct dsnn_sample_store store; /* first: begin and next_batch are the store's */
    struct cifar_file files[CIFAR_MAX_FILES + 1];
    int n_files;
    struct cifar_split train, test;
    bool augment, flip;
    int padding;
    uint64_t seed;
    double mean[CIFAR_CHANNELS], std[CIFAR_CHANNELS];
    float lut[CIFAR_CHANNELS][256];
    struct dsnn_noise_options noise;
};

static void cifar_close(void *state)
{
    struct cifar_state *s = state;
    if (!s)
        return;
    for (int i = 0; i < s->n_files; i++)
        free(s->files[i].data);
    free(s->train.x);
    free(s->train.y);
    free(s->test.x);
    free(s->test.y);
    dsnn_sample_store_free(&s->store);
    free(s);
}

/* Reads dir/name into f and checks its size against the record size. */
static enum dsnn_status cifar_file_read(const struct dsnn_cfg *cfg, const struct cifar_options *o,
                                        const char *name, size_t record, struct cifar_file *f,
                                        struct dsnn_error *err)
{
    char kw[700];
    int len = snprintf(f->path, sizeof f->path, "%s/%s", o->dir, name);
    if (len < 0 || (size_t)len + 4 > sizeof f->path)
        return dsnn_error_set(err, DSNN_ERR_CONFIG, "%s: path too long",
                              dsnn_dataset_key_where(cfg, "path", kw, sizeof kw));
    struct stat sb;
    if (stat(f->path, &sb) != 0) {
        int saved = errno;
        /* the same name with .gz */
        memcpy(f->path + len, ".gz", 4);
        if (stat(f->path, &sb) != 0) {
            f->path[len] = '\0';
            return dsnn_error_set(err, DSNN_ERR_IO,
                                  "%s: cannot open the %s file: %s; set %s to the directory of "
                                  "the CIFAR-%s binary files (variant = \"%s\")",
                                  f->path, o->variant ? "CIFAR-100" : "CIFAR-10",
                                  strerror(saved),
                                  dsnn_dataset_key_where(cfg, "path", kw, sizeof kw),
                                  o->variant ? "100" : "10", cifar_variants[o->variant]);
        }
    }
    if (S_ISDIR(sb.st_mode))
        return dsnn_error_set(err, DSNN_ERR_IO, "%s: is a directory, expected a CIFAR file",
                              f->path);
    size_t size = 0;
    enum dsnn_status st = dsnn_read_file(f->path, &f->data, &size, err);
    if (st != DSNN_OK)
        return st;
    if (size == 0)
        return dsnn_error_set(err, DSNN_ERR_FORMAT, "%s: empty file, expected records of %zu "
                              "bytes", f->path, record);
    if (size % record != 0)
        return dsnn_error_set(err, DSNN_ERR_FORMAT,
                              "%s: %zu bytes is not a multiple of the record size %zu (%s: %s "
                              "label byte%s + %d pixel bytes): %zu whole records and %zu bytes "
                              "left over; the file is cut short or not a %s file",
                              f->path, size, record, o->variant ? "CIFAR-100" : "CIFAR-10",
                              o->variant ? "2" : "1", o->variant ? "s" : "", CIFAR_PIXELS,
                              size / record, size % record,
                              o->variant ? "CIFAR-100 (variant = \"cifar100\")"
                                         : "CIFAR-10 (variant = \"cifar10\")");
    f->n = size / record;
    return DSNN_OK;
}

/* Fills sp with the records of files[first..first+count): pointers to pixels and labels. */
static enum dsnn_status cifar_index(struct cifar_state *s, const struct cifar_options *o,
                                    int first, int count, struct cifar_split *sp,
                                    struct dsnn_error *err)
{
    size_t record = o->variant ? 3074 : 3073;
    int n_classes = o->variant ? (o->label_mode ? 20 : 100) : 10;
    size_t label_at = o->variant && !o->label_mode ? 1 : 0;
    size_t total = 0;
    for (int i = first; i < first + count; i++)
        total += s->files[i].n;
    sp->x = malloc(total * sizeof *sp->x);
    sp->y = malloc(total * sizeof *sp->y);
    if (!sp->x || !sp->y)
        return dsnn_error_set(err, DSNN_ERR_NOMEM, "cifar: out of memory");
    size_t k = 0;
    for (int i = first; i < first + count; i++) {
        const struct cifar_file *f = &s->files[i];
        for (size_t r = 0; r < f->n; r++, k++) {
            const unsigned char *rec = f->data + r * record;
            if (o->variant && rec[0] >= 20)
                return dsnn_error_set(err, DSNN_ERR_FORMAT,
                                      "%s: record %zu (byte offset %zu): coarse label %u is out "
                                      "of range [0, 20)",
                                      f->path, r, r * record, rec[0]);
            if (rec[label_at] >= n_classes)
                return dsnn_error_set(err, DSNN_ERR_FORMAT,
                                      "%s: record %zu (byte offset %zu): %slabel %u is out of "
                                      "range [0, %d)%s",
                                      f->path, r, r * record + label_at,
                                      o->variant ? "fine " : "", rec[label_at], n_classes,
                                      o->variant ? ""
                                                 : " (a CIFAR-100 file? set variant = "
                                                   "\"cifar100\")");
            sp->x[k] = rec + (o->variant ? 2 : 1);
            sp->y[k] = rec[label_at];
        }
    }
    sp->n = (int64_t)total;
    return DSNN_OK;
}

/* Reads the train files (and the test file unless val_fraction > 0) and indexes them. */
static enum dsnn_status cifar_load(const struct dsnn_cfg *cfg, const struct cifar_options *o,
                                   struct cifar_state *s, struct dsnn_error *e)
{
    enum dsnn_status st;
    size_t record = o->variant ? 3074 : 3073;
    int n_train_files = o->variant ? 1 : CIFAR_MAX_FILES;
    for (int i = 0; i < n_train_files; i++) {
        s->n_files++;
        if ((st = cifar_file_read(cfg, o, o->variant ? "train.bin" : cifar10_train_names[i],
                                  record, &s->files[i], e)) != DSNN_OK)
            return st;
    }
    if ((st = cifar_index(s, o, 0, n_train_files, &s->train, e)) != DSNN_OK)
        return st;
    if (o->holdout.val_fraction > 0)
        return DSNN_OK;
    s->n_files++;
    if ((st = cifar_file_read(cfg, o, o->variant ? "test.bin" : "test_batch.bin", record,
                              &s->files[n_train_files], e)) != DSNN_OK)
        return st;
    return cifar_index(s, o, n_train_files, 1, &s->test, e);
}

/* Cuts the splits: the validation part of the train files (val_fraction > 0), then train_size
 * and test_size. */
static enum dsnn_status cifar_split(const struct dsnn_cfg *cfg, const struct cifar_options *o,
                                    struct cifar_state *s, struct dsnn_error *e)
{
    struct dsnn_holdout h;
    enum dsnn_status st = dsnn_holdout_cut(cfg, &o->holdout, s->train.n, "the train files",
                                           s->test.n, "the test file", &h, e);
    if (st != DSNN_OK)
        return st;
    const int64_t n_train = h.n_train, n_test = h.n_test;
    if (h.from_train) {
        /* the test split points into the train index (not owned twice) */
        s->test.x = malloc((size_t)n_test * sizeof *s->test.x);
        s->test.y = malloc((size_t)n_test * sizeof *s->test.y);
        if (!s->test.x || !s->test.y)
            return dsnn_error_set(e, DSNN_ERR_NOMEM, "cifar: out of memory");
        memcpy(s->test.x, s->train.x + h.test_first, (size_t)n_test * sizeof *s->test.x);
        memcpy(s->test.y, s->train.y + h.test_first, (size_t)n_test * sizeof *s->test.y);
    }
    s->train.n = n_train;
    s->test.n = n_test;
    return DSNN_OK;
}

/* Mean and std of channel c over the train split as used, exactly from a histogram (std 1 when
 * the channel is constant). */
static void cifar_channel_stats(const struct cifar_state *s, int c, bool warn, FILE *log,
                                double *mean_out, double *std_out)
{
    uint64_t hist[256] = {0};
    for (int64_t i = 0; i < s->train.n; i++) {
        const uint8_t *p = s->train.x[i] + c * CIFAR_SIDE * CIFAR_SIDE;
        for (int j = 0; j < CIFAR_SIDE * CIFAR_SIDE; j++)
            hist[p[j]]++;
    }
    double s1 = 0, s2 = 0, npix = (double)s->train.n * CIFAR_SIDE * CIFAR_SIDE;
    for (int v = 0; v < 256; v++) {
        s1 += (double)hist[v] * v;
        s2 += (double)hist[v] * v * v;
    }
    double mean = s1 / npix / 255.0;
    double var = s2 / npix / (255.0 * 255.0) - mean * mean;
    double sd = var > 0 ? sqrt(var) : 0.0;
    if (sd < 1e-6) {
        if (warn && log)
            fprintf(log, "cifar: warning: channel %d of the train pixels is constant (std = 0); "
                         "using std = 1\n", c);
        sd = 1.0;
    }
    *mean_out = mean;
    *std_out = sd;
}

/* Per-channel statistics (named, of the train split, or given) and the pixel tables. */
static void cifar_normalise(const struct cifar_options *o, struct cifar_state *s, FILE *log)
{
    for (int c = 0; c < CIFAR_CHANNELS; c++) {
        s->mean[c] = 0.0;
        s->std[c] = 1.0;
    }
    if (o->normalize > CIFAR_NORM_NONE) {
        const struct dsnn_norm_stats *p = dsnn_norm_stats_find(cifar_norm_choices[o->normalize]);
        for (int c = 0; p && c < CIFAR_CHANNELS; c++) {
            s->mean[c] = p->mean[c];
            s->std[c] = p->std[c];
        }
    } else if (o->normalize == CIFAR_NORM_DATASET && (!o->n_mean || !o->n_std)) {
        for (int c = 0; c < CIFAR_CHANNELS; c++)
            cifar_channel_stats(s, c, !o->n_std, log, &s->mean[c], &s->std[c]);
    }
    for (int c = 0; c < CIFAR_CHANNELS; c++) {
        if (o->n_mean)
            s->mean[c] = o->mean[c];
        if (o->n_std)
            s->std[c] = o->std[c];
        for (int v = 0; v < 256; v++)
            s->lut[c][v] = (float)(((double)v / 255.0 - s->mean[c]) / s->std[c]);
    }
}

static void cifar_log(FILE *log, const struct cifar_options *o, const struct cifar_state *s,
                      const struct dsnn_dataset_info *info)
{
    fprintf(log, "cifar: %s (%s labels, %d classes): train %" PRId64
                 " samples from %s%s, test %" PRId64 " samples%s\n",
            o->variant ? "CIFAR-100" : "CIFAR-10", cifar_label_modes[o->label_mode],
            info->n_classes, info->n_train, o->dir, o->variant ? "/train.bin" : "/data_batch_*.bin",
            info->n_test, o->holdout.val_fraction > 0 ? " (validation: the last train samples)" : "");
    fprintf(log, "cifar: normalize %s: mean %.4f %.4f %.4f std %.4f %.4f %.4f; "
                 "shuffle %s; augment %s\n",
            cifar_norm_choices[o->normalize], s->mean[0], s->mean[1], s->mean[2], s->std[0],
            s->std[1], s->std[2], o->split.shuffle ? "on" : "off",
            o->augment ? (o->flip ? "crop + flip" : "crop") : "off");
    dsnn_noise_options_log(log, "cifar", "values", &s->noise);
}

/* Writes the augmented, normalised train sample i to dst. */
static void cifar_augment(const struct cifar_state *s, const uint8_t *src, int64_t i, float *dst)
{
    struct dsnn_rng r;
    dsnn_rng_seed(&r,
                  dsnn_seed_mix(dsnn_seed_mix(s->seed, (uint64_t)s->store.cur.epoch), (uint64_t)i),
                  CIFAR_AUGMENT_STREAM);
    const int p = s->padding, side = CIFAR_SIDE;
    /* RandomCrop(32, padding): top-left corner of the crop in the padded image. */
    int top = (int)dsnn_rng_below(&r, (uint64_t)(2 * p + 1));
    int left = (int)dsnn_rng_below(&r, (uint64_t)(2 * p + 1));
    /* RandomHorizontalFlip(): of the cropped image. */
    bool mirror = s->flip && dsnn_rng_below(&r, 2) == 1;
    for (int c = 0; c < CIFAR_CHANNELS; c++) {
        const uint8_t *plane = src + c * side * side;
        const float *lut = s->lut[c];
        float *out = dst + c * side * side;
        for (int y = 0; y < side; y++) {
            int sy = y + top - p;
            for (int x = 0; x < side; x++) {
                int sx = (mirror ? side - 1 - x : x) + left - p;
                bool inside = sy >= 0 && sy < side && sx >= 0 && sx < side;
                out[y * side + x] = lut[inside ? plane[sy * side + sx] : 0];
            }
        }
    }
}

/* Writes sample i of the split begun to dst (dsnn_sample_fn): augmented (train, augment on),
 * noisy (noise split) or as is, normalised. */
static int32_t cifar_sample(void *state, int64_t i, float *dst)
{
    const struct cifar_state *s = state;
    bool train = s->store.cur.split == DSNN_SPLIT_TRAIN, noise = s->store.cur.split == DSNN_SPLIT_NOISE;
    const struct cifar_split *sp = train ? &s->train : &s->test;
    const int plane = CIFAR_SIDE * CIFAR_SIDE;
    const uint8_t *src = sp->x[i];
    if (train && s->augment) {
        cifar_augment(s, src, i, dst);
    } else if (noise && s->noise.space == DSNN_NOISE_SPACE_PIXEL) {
        /* noise in the [0, 1] image, then normalisation */
        for (int j = 0; j < CIFAR_PIXELS; j++)
            dst[j] = (float)(src[j] / 255.0);
        struct dsnn_rng r;
        dsnn_noise_rng(&r, s->noise.seed, (uint64_t)i);
        dsnn_noise_apply(dst, CIFAR_PIXELS, s->noise.level, (float)s->noise.high,
                         (float)s->noise.low, &r);
        for (int c = 0; c < CIFAR_CHANNELS; c++)
            for (int j = c * plane; j < (c + 1) * plane; j++)
                dst[j] = dst[j] == (float)(src[j] / 255.0)
                             ? s->lut[c][src[j]] /* untouched: exactly as the test split */
                             : (float)((dst[j] - s->mean[c]) / s->std[c]);
    } else {
        for (int c = 0; c < CIFAR_CHANNELS; c++)
            for (int j = c * plane; j < (c + 1) * plane; j++)
                dst[j] = s->lut[c][src[j]];
        if (noise) { /* nupic: noise values set after normalisation */
            struct dsnn_rng r;
            dsnn_noise_rng(&r, s->noise.seed, (uint64_t)i);
            dsnn_noise_apply(dst, CIFAR_PIXELS, s->noise.level, (float)s->noise.high,
                             (float)s->noise.low, &r);
        }
    }
    return sp->y[i];
}

static enum dsnn_status cifar_open(const struct dsnn_cfg *cfg, const struct dsnn_run_ctx *ctx,
                                   void **state, struct dsnn_dataset_info *info,
                                   struct dsnn_error *err)
{
    struct dsnn_error e0 = {0};
    struct dsnn_error *e = err ? err : &e0;
    struct cifar_options o;
    enum dsnn_status st;
    if (!state || !info)
        return dsnn_error_set(e, DSNN_ERR_INVALID, "cifar: open: state and info must not be NULL");
    *state = NULL;
    memset(&o, 0, sizeof o);
    uint64_t seed = ctx ? ctx->seed : 0;
    FILE *log = ctx ? ctx->log : NULL;
    if ((st = cifar_read_options(cfg, seed, &o, e)) != DSNN_OK)
        return st;
    struct cifar_state *s = calloc(1, sizeof *s);
    if (!s)
        return dsnn_error_set(e, DSNN_ERR_NOMEM, "cifar: out of memory");
    dsnn_split_cursor_setup(&s->store.cur, "cifar", &o.split, seed,
                            o.noise.enabled ? DSNN_NOISE_SPLIT_ON : DSNN_NOISE_SPLIT_OFF);
    s->seed = seed;
    s->augment = o.augment;
    s->flip = o.flip;
    s->padding = (int)o.padding;
    s->noise = o.noise;
    if ((st = cifar_load(cfg, &o, s, e)) != DSNN_OK || (st = cifar_split(cfg, &o, s, e)) != DSNN_OK)
        goto fail;
    cifar_normalise(&o, s, log);

    /* Buffers. */
    if ((st = dsnn_split_cursor_init(&s->store.cur, s->train.n, s->test.n, e)) != DSNN_OK ||
        (st = dsnn_batch_buffer_init(&s->store.buf, &s->store.cur, CIFAR_PIXELS, e)) != DSNN_OK)
        goto fail;
    s->store.sample = cifar_sample;
    s->store.n[DSNN_SPLIT_TRAIN] = s->train.n;
    s->store.n[DSNN_SPLIT_TEST] = s->store.n[DSNN_SPLIT_NOISE] = s->test.n; /* noise: test + noise */

    /* the noise split (when on) is the test split with noise */
    dsnn_split_cursor_describe(&s->store.cur, (struct dsnn_shape){CIFAR_CHANNELS, CIFAR_SIDE, CIFAR_SIDE},
                               o.variant ? (o.label_mode ? 20 : 100) : 10, s->train.n, s->test.n,
                               s->test.n, info);
    if (log)
        cifar_log(log, &o, s, info);
    *state = s;
    return DSNN_OK;

fail:
    cifar_close(s);
    return st;
}

DSNN_DATASET_PLUGIN("cifar", "1.0.0", "CIFAR-10 / CIFAR-100 binary files: per-channel "
                    "normalisation, crop + flip augmentation, noise split",
                    cifar_keys,
                    .open = cifar_open, .begin = dsnn_sample_store_begin,
                    .next_batch = dsnn_sample_store_next_batch,
                    .close = cifar_close)
