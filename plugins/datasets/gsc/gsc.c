/* plugins/datasets/gsc/gsc.c - Google Speech Commands in nupic's preprocessed .npz format.
 *
 * nupic.research (projects/dynamic_sparse/common/dataloaders.py, PreprocessedSpeechDataset) and
 * nupic.torch (examples/gsc) train on log-mel spectrograms computed once and cached with
 *     np.savez(path, x.numpy(), y.numpy())
 * i.e. an .npz archive (a ZIP of .npy files) holding two arrays without names, "arr_0" and
 * "arr_1": x float32 of shape (N, 1, 32, 32) (32 mel bands x 32 frames) and y int64 of shape (N,)
 * with labels in [0, 12) ("unknown, silence, zero, one, ..., nine"). The files of a data
 * directory are
 *     gsc_train0.npz ... gsc_train29.npz   one differently augmented train set per epoch; the
 *                                          loader cycles through them (epoch e uses e mod K)
 *     gsc_valid.npz                        the validation set, which nupic's dynamic_sparse uses
 *                                          as its test loader
 *     gsc_test_noise00.npz ... 50.npz      the test set with 0 %, 5 %, ..., 50 % audio noise
 * and this plugin reads exactly that layout (keys train_file, test_file, noise_file, x_array,
 * y_array to read another one). The .npz reader (npz.c) handles stored and deflated members
 * (numpy.savez, numpy.savez_compressed), ZIP64 fields, checks every CRC-32, and the .npy reader
 * format versions 1.0 to 3.0 with plain number types in either byte order; see npz.h.
 *
 * Samples: x of shape (N, C, H, W) gives samples {C, H, W}; (N, H, W) gives {1, H, W}; (N, D)
 * gives {D, 1, 1}. Every file must have the same sample shape; y must be (N,) of integers in
 * [0, n_classes). Values are used as stored (nupic does not normalise the preprocessed GSC
 * data); normalize = "dataset" subtracts the mean and divides by the standard deviation of all
 * values of the epoch-0 train file as used (keys mean and std override them).
 *
 * Splits:
 *   train: the train file of the epoch (the first train_size samples, 0 = all), loaded when an
 *          epoch needs another file than the one in memory; its labels are checked at open.
 *          With shuffle, the order of epoch e is a Fisher-Yates permutation from
 *          dsnn_rng_seed(dsnn_seed_mix(seed, e), DSNN_RNG_STREAM_DATA).
 *   test:  test_file in file order (first test_size).
 *   noise: with test_noise = true, noise_file with "{}" replaced by the noise level in percent,
 *          two digits (noise_level = 0.1: gsc_test_noise10.npz), as nupic names them.
 * Batches: batch_size_train is one size or one per epoch (nupic's GSC runs use [4, 16]: 4 in the
 * first epoch, 16 after); train_batches_per_epoch > 0 ends a train epoch after that many. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
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
#include "npz.h"

#define GSC_DEFAULT_PATH "/usr/share/datasets/gsc"
#define GSC_MAX_TRAIN_FILES 1000

enum { GSC_NORM_NONE = 0, GSC_NORM_DATASET = 1 };
static const char *const gsc_norm_choices[] = {"none", "dataset", NULL};

/* The keys, as read (dsnn_keys_read fills the fields named in the specs). */
struct gsc_options {
    const char *dir, *train_file, *test_file, *noise_file, *x_array, *y_array;
    bool test_noise;
    double noise_level;
    int64_t n_classes, size[2];
    struct dsnn_split_options split; /* batch sizes, train_batches_per_epoch, shuffle */
    int normalize;
    bool has_mean, has_std;
    double mean, std;
};

#define GK_AT(f) DSNN_KEY_AT(struct gsc_options, f)
static const struct dsnn_key_spec gsc_keys[] = {
    DSNN_KEY_PLUGIN("gsc"),
    {.name = "path", .type = DSNN_KEY_STRING, .def_str = GSC_DEFAULT_PATH,
     GK_AT(dir),
     .doc = "directory of the .npz files (the file names below are relative to it unless absolute)"},
    {.name = "train_file", .type = DSNN_KEY_STRING, .def_str = "gsc_train{}.npz",
     GK_AT(train_file),
     .doc = "train set; \"{}\" stands for 0, 1, 2 ... (as many consecutive files as exist): epoch e "
     "reads file e mod K, as nupic cycles through its augmented copies; without \"{}\" one file "
     "for every epoch"},
    {.name = "test_file", .type = DSNN_KEY_STRING, .def_str = "gsc_valid.npz",
     GK_AT(test_file),
     .doc = "test split (nupic's dynamic_sparse tests on the validation set)"},
    {.name = "noise_file", .type = DSNN_KEY_STRING, .def_str = "gsc_test_noise{}.npz",
     GK_AT(noise_file),
     .doc = "noise split when test_noise = true; \"{}\" stands for the noise level in percent, two "
     "digits (00, 05, ..., 50)"},
    {.name = "test_noise", .type = DSNN_KEY_BOOL, .def = false, GK_AT(test_noise),
     .doc = "also provide the noise split (noise_file)"},
    {.name = "noise_level", .type = DSNN_KEY_FLOAT, .def = 0.1,
     DSNN_KEY_RANGE(0, 1), GK_AT(noise_level),
     .doc = "noise level of the noise split, in [0, 1): selects noise_file (0.1 -> \"10\")"},
    {.name = "x_array", .type = DSNN_KEY_STRING, .def_str = "arr_0",
     GK_AT(x_array),
     .doc = "name of the samples array in each .npz (np.savez(f, x, y) names them arr_0, arr_1; "
     "np.savez(f, x=x, y=y) names them x, y): shape (N, C, H, W), (N, H, W) or (N, D), numbers"},
    {.name = "y_array", .type = DSNN_KEY_STRING, .def_str = "arr_1",
     GK_AT(y_array),
     .doc = "name of the labels array: shape (N,), integers in [0, n_classes)"},
    {.name = "n_classes", .type = DSNN_KEY_INT, .def = 12,
     DSNN_KEY_RANGE(1, 1 << 20), GK_AT(n_classes),
     .doc = "number of classes (GSC: unknown, silence, zero ... nine); a label >= n_classes is an error"},
    {.name = "batch_size_train", .type = DSNN_KEY_FLOAT_OR_ARRAY, .def = 16,
     DSNN_KEY_RANGE(1, DSNN_BATCH_SIZE_MAX),
     .doc = "samples per training batch: an integer, or one per epoch such as [4, 16] (the last value "
     "repeats, as nupic's VaryingDataLoader)"},
    DSNN_SPLIT_KEYS, /* batch_size_test, train_batches_per_epoch, shuffle */
    {.name = "train_size", .type = DSNN_KEY_INT, .def = 0, DSNN_KEY_RANGE(0, UINT32_MAX), GK_AT(size[0]),
     .doc = "use only the first N samples of each train file (0 = all)"},
    {.name = "test_size", .type = DSNN_KEY_INT, .def = 0,
     DSNN_KEY_RANGE(0, UINT32_MAX), GK_AT(size[1]),
     .doc = "use only the first N samples of the test (and noise) file (0 = all)"},
    {.name = "normalize", .type = DSNN_KEY_STRING, .def_str = "none",
     .choices = gsc_norm_choices, GK_AT(normalize),
     .doc = "\"none\": values as stored (as nupic); \"dataset\": x = (v - mean) / std with mean and std "
     "over the epoch-0 train file as used (keys mean and std override them)"},
    {.name = "mean", .type = DSNN_KEY_FLOAT, .default_value = "(from normalize)", .doc = "overrides the mean of normalize = \"dataset\""},
    {.name = "std", .type = DSNN_KEY_FLOAT, .default_value = "(from normalize)",
     .doc = "overrides the standard deviation of normalize = \"dataset\", > 0"},
};
#undef GK_AT
DSNN_KEY_TABLE_DEFINE(static, gsc_table, gsc_keys);


/* One loaded .npz: samples and labels. */
struct gsc_set {
    char path[NPZ_PATH_MAX];
    float *x;   /* [n][d] */
    int32_t *y; /* [n] */
    int64_t n;
};

struct gsc_state {
    struct dsnn_sample_store store; /* first: next_batch is the store's (begin loads, then
                                       begins the cursor) */
    char (*train_paths)[NPZ_PATH_MAX];
    int64_t *train_counts; /* samples per train file (before train_size) */
    int n_train_files;
    int loaded; /* train file in s->train, -1 none */
    struct gsc_set train, test, noise;
    struct dsnn_shape shape;
    int64_t d; /* values per sample */
    int n_classes;
    char x_name[NPZ_NAME_MAX], y_name[NPZ_NAME_MAX];
    int64_t train_size, test_size;
    bool normalize;
    double mean, std;
};

static void gsc_set_free(struct gsc_set *t)
{
    free(t->x);
    free(t->y);
    t->x = NULL;
    t->y = NULL;
    t->n = 0;
}

static void gsc_close(void *state)
{
    struct gsc_state *s = state;
    if (!s)
        return;
    gsc_set_free(&s->train);
    gsc_set_free(&s->test);
    gsc_set_free(&s->noise);
    free(s->train_paths);
    free(s->train_counts);
    dsnn_sample_store_free(&s->store);
    free(s);
}

static enum dsnn_status gsc_read_options(const struct dsnn_cfg *cfg, struct gsc_options *o,
                                         struct dsnn_error *err)
{
    enum dsnn_status st;
    char kw[700];
    if ((st = dsnn_dataset_keys_read(&gsc_table, cfg, o, &o->split, err)) != DSNN_OK)
        return st;
    static const struct {
        const char *key;
        size_t off;
    } strings[] = {
        {"path", offsetof(struct gsc_options, dir)},
        {"train_file", offsetof(struct gsc_options, train_file)},
        {"test_file", offsetof(struct gsc_options, test_file)},
        {"noise_file", offsetof(struct gsc_options, noise_file)},
        {"x_array", offsetof(struct gsc_options, x_array)},
        {"y_array", offsetof(struct gsc_options, y_array)},
    };
    for (size_t i = 0; i < sizeof strings / sizeof strings[0]; i++) {
        const char *v = *(const char *const *)((const char *)o + strings[i].off);
        if (!v || !*v)
            return dsnn_error_set(err, DSNN_ERR_CONFIG, "%s: must not be empty",
                                  dsnn_dataset_key_where(cfg, strings[i].key, kw, sizeof kw));
        if (strlen(v) >= NPZ_NAME_MAX && i >= 4)
            return dsnn_error_set(err, DSNN_ERR_CONFIG, "%s: too long",
                                  dsnn_dataset_key_where(cfg, strings[i].key, kw, sizeof kw));
    }
    /* the spec's range is closed ([0, 1]); the level also names a file */
    if (!(o->noise_level < 1) ||
        fabs(o->noise_level * 100 - round(o->noise_level * 100)) > 1e-6)
        return dsnn_error_set(err, DSNN_ERR_CONFIG,
                              "%s: must be a whole percentage in [0, 1) (0.05, 0.1 ...; it names "
                              "the noise file), got %g",
                              dsnn_dataset_key_where(cfg, "noise_level", kw, sizeof kw),
                              o->noise_level);
    o->has_mean = dsnn_cfg_has(cfg, "mean");
    o->has_std = dsnn_cfg_has(cfg, "std");
    if ((st = dsnn_cfg_float(cfg, "mean", 0.0, &o->mean, err)) != DSNN_OK ||
        (st = dsnn_cfg_float(cfg, "std", 1.0, &o->std, err)) != DSNN_OK)
        return st;
    if (o->normalize == GSC_NORM_NONE && (o->has_mean || o->has_std))
        return dsnn_error_set(err, DSNN_ERR_CONFIG,
                              "%s: given with normalize = \"none\"; remove it, or use normalize "
                              "= \"dataset\"",
                              dsnn_dataset_key_where(cfg, o->has_mean ? "mean" : "std", kw,
                                                     sizeof kw));
    if (o->has_mean && !isfinite(o->mean))
        return dsnn_error_set(err, DSNN_ERR_CONFIG, "%s: must be a finite number",
                              dsnn_dataset_key_where(cfg, "mean", kw, sizeof kw));
    if (o->has_std && !(isfinite(o->std) && o->std > 0))
        return dsnn_error_set(err, DSNN_ERR_CONFIG, "%s: must be > 0, got %g",
                              dsnn_dataset_key_where(cfg, "std", kw, sizeof kw), o->std);
    return DSNN_OK;
}

/* dir/name (name alone if absolute) with "{}" replaced by `fill` (if not NULL) into out. */
static bool gsc_path(const struct gsc_options *o, const char *name, const char *fill, char *out,
                     size_t size)
{
    char expanded[NPZ_PATH_MAX];
    const char *brace = fill ? strstr(name, "{}") : NULL;
    int n = brace ? snprintf(expanded, sizeof expanded, "%.*s%s%s", (int)(brace - name), name,
                             fill, brace + 2)
                  : snprintf(expanded, sizeof expanded, "%s", name);
    if (n < 0 || (size_t)n >= sizeof expanded)
        return false;
    n = expanded[0] == '/' ? snprintf(out, size, "%s", expanded)
                           : snprintf(out, size, "%s/%s", o->dir, expanded);
    return n >= 0 && (size_t)n < size;
}

/* Opens path and checks its two arrays: x of a sample shape equal to *shape (set it if
 * shape->c == 0), y of shape (N,) integers. Returns N in *n; with y != NULL also reads the labels
 * (checked against n_classes), with x != NULL the samples. */
static enum dsnn_status gsc_check_file(struct gsc_state *s, const char *path,
                                       struct dsnn_shape *shape, int64_t *n, float **x,
                                       int32_t **y, struct dsnn_error *err)
{
    struct npz z;
    struct npy_header hx, hy;
    char names[512];
    int64_t *labels = NULL;
    enum dsnn_status st = npz_open(path, &z, err);
    if (st != DSNN_OK)
        return st;
    const struct npz_member *mx = npz_find(&z, s->x_name), *my = npz_find(&z, s->y_name);
    if (!mx || !my) {
        st = dsnn_error_set(err, DSNN_ERR_FORMAT,
                            "%s: no array named \"%s\" in the archive, which holds %s; set "
                            "dataset.x_array and dataset.y_array to the names of the samples and "
                            "labels arrays",
                            path, !mx ? s->x_name : s->y_name, npz_list(&z, names, sizeof names));
        goto out;
    }
    if ((st = npz_header(&z, mx, &hx, err)) != DSNN_OK ||
        (st = npz_header(&z, my, &hy, err)) != DSNN_OK)
        goto out;
    if (hx.ndim < 2 || hx.ndim > 4) {
        st = dsnn_error_set(err, DSNN_ERR_FORMAT,
                            "%s: array %s has %d dimension%s; samples must be (N, C, H, W), "
                            "(N, H, W) or (N, D)",
                            path, s->x_name, hx.ndim, hx.ndim == 1 ? "" : "s");
        goto out;
    }
    struct dsnn_shape sh = {1, 1, 1};
    if (hx.ndim == 4)
        sh = (struct dsnn_shape){(int)hx.shape[1], (int)hx.shape[2], (int)hx.shape[3]};
    else if (hx.ndim == 3)
        sh = (struct dsnn_shape){1, (int)hx.shape[1], (int)hx.shape[2]};
    else
        sh = (struct dsnn_shape){(int)hx.shape[1], 1, 1};
    for (int d = 1; d < hx.ndim; d++) {
        if (hx.shape[d] == 0 || hx.shape[d] > (1u << 20)) {
            st = dsnn_error_set(err, DSNN_ERR_FORMAT, "%s: array %s: dimension %d is %" PRIu64
                                ", must be in [1, 2^20]", path, s->x_name, d, hx.shape[d]);
            goto out;
        }
    }
    if (shape->c == 0) {
        *shape = sh;
    } else if (sh.c != shape->c || sh.h != shape->h || sh.w != shape->w) {
        st = dsnn_error_set(err, DSNN_ERR_FORMAT,
                            "%s: samples of shape %dx%dx%d, the other files have %dx%dx%d", path,
                            sh.c, sh.h, sh.w, shape->c, shape->h, shape->w);
        goto out;
    }
    if (hy.ndim != 1) {
        st = dsnn_error_set(err, DSNN_ERR_FORMAT, "%s: array %s has %d dimensions; labels must "
                            "be a vector (N,)", path, s->y_name, hy.ndim);
        goto out;
    }
    if (hy.kind == 'f') {
        st = dsnn_error_set(err, DSNN_ERR_FORMAT, "%s: array %s holds floats ('%s'); labels "
                            "must be integers", path, s->y_name, hy.descr);
        goto out;
    }
    if (hx.shape[0] != hy.shape[0]) {
        st = dsnn_error_set(err, DSNN_ERR_FORMAT,
                            "%s: %" PRIu64 " samples in %s but %" PRIu64 " labels in %s", path,
                            hx.shape[0], s->x_name, hy.shape[0], s->y_name);
        goto out;
    }
    if (hx.shape[0] == 0 || hx.shape[0] > UINT32_MAX) {
        st = dsnn_error_set(err, DSNN_ERR_FORMAT, "%s: %" PRIu64 " samples: must be in [1, 2^32)",
                            path, hx.shape[0]);
        goto out;
    }
    *n = (int64_t)hx.shape[0];
    if (y) {
        labels = malloc((size_t)*n * sizeof *labels);
        *y = malloc((size_t)*n * sizeof **y);
        if (!labels || !*y) {
            st = dsnn_error_set(err, DSNN_ERR_NOMEM, "%s: out of memory", path);
            goto out;
        }
        if ((st = npz_read_i64(&z, my, &hy, labels, err)) != DSNN_OK)
            goto out;
        for (int64_t i = 0; i < *n; i++) {
            if (labels[i] < 0 || labels[i] >= s->n_classes) {
                st = dsnn_error_set(err, DSNN_ERR_FORMAT,
                                    "%s: label %" PRId64 " of sample %" PRId64 " (array %s) is out "
                                    "of range [0, %d) (n_classes = %d)",
                                    path, labels[i], i, s->y_name, s->n_classes, s->n_classes);
                goto out;
            }
            (*y)[i] = (int32_t)labels[i];
        }
    }
    if (x) {
        size_t bytes;
        if (hx.count > SIZE_MAX || !dsnn_size_mul((size_t)hx.count, sizeof **x, &bytes)) {
            st = dsnn_error_set(err, DSNN_ERR_FORMAT,
                                "%s: array %s: %" PRIu64 " elements do not fit in memory as "
                                "floats",
                                path, s->x_name, hx.count);
            goto out;
        }
        *x = malloc(bytes ? bytes : 1);
        if (!*x) {
            st = dsnn_error_set(err, DSNN_ERR_NOMEM, "%s: out of memory (%zu bytes)", path,
                                bytes);
            goto out;
        }
        if ((st = npz_read_f32(&z, mx, &hx, *x, err)) != DSNN_OK)
            goto out;
        for (uint64_t i = 0; i < hx.count; i++)
            if (!isfinite((*x)[i])) {
                st = dsnn_error_set(err, DSNN_ERR_FORMAT,
                                    "%s: value %" PRIu64 " of sample %" PRIu64 " (array %s) is "
                                    "not finite",
                                    path, i % (hx.count / hx.shape[0]), i / (hx.count / hx.shape[0]),
                                    s->x_name);
                goto out;
            }
    }
out:
    free(labels);
    npz_close(&z);
    return st;
}

/* Loads path into t (samples and labels). */
static enum dsnn_status gsc_load(struct gsc_state *s, const char *path, struct gsc_set *t,
                                 struct dsnn_error *err)
{
    gsc_set_free(t);
    snprintf(t->path, sizeof t->path, "%s", path);
    struct dsnn_shape sh = s->shape;
    enum dsnn_status st = gsc_check_file(s, path, &sh, &t->n, &t->x, &t->y, err);
    if (st != DSNN_OK)
        gsc_set_free(t);
    return st;
}

/* Makes train file k the one in memory. */
static enum dsnn_status gsc_load_train(struct gsc_state *s, int k, struct dsnn_error *err)
{
    if (s->loaded == k)
        return DSNN_OK;
    s->loaded = -1;
    enum dsnn_status st = gsc_load(s, s->train_paths[k], &s->train, err);
    if (st != DSNN_OK)
        return st;
    if (s->train.n != s->train_counts[k])
        return dsnn_error_set(err, DSNN_ERR_FORMAT, "%s: changed since the dataset was opened",
                              s->train_paths[k]);
    if (s->normalize) {
        float m = (float)s->mean, inv = (float)(1.0 / s->std);
        for (int64_t i = 0; i < s->train.n * s->d; i++)
            s->train.x[i] = (s->train.x[i] - m) * inv;
    }
    s->loaded = k;
    return DSNN_OK;
}

/* Finds the train files ("{}" -> 0, 1, 2 ... while they exist) and checks each one: arrays,
 * shapes and labels (the samples are read when needed). *max_count: the largest file. */
static enum dsnn_status gsc_find_train(const struct dsnn_cfg *cfg, const struct gsc_options *o,
                                       struct gsc_state *s, int64_t *max_count,
                                       struct dsnn_error *e)
{
    enum dsnn_status st;
    char kw[700], path[NPZ_PATH_MAX];
    bool numbered = strstr(o->train_file, "{}") != NULL;
    s->train_paths = calloc(numbered ? GSC_MAX_TRAIN_FILES : 1, sizeof *s->train_paths);
    if (!s->train_paths)
        return dsnn_error_set(e, DSNN_ERR_NOMEM, "gsc: out of memory");
    for (int k = 0; k < (numbered ? GSC_MAX_TRAIN_FILES : 1); k++) {
        char num[16];
        snprintf(num, sizeof num, "%d", k);
        if (!gsc_path(o, o->train_file, numbered ? num : NULL, path, sizeof path))
            return dsnn_error_set(e, DSNN_ERR_CONFIG, "%s: path too long",
                                  dsnn_dataset_key_where(cfg, "train_file", kw, sizeof kw));
        struct stat sb;
        if (stat(path, &sb) != 0) {
            if (k > 0)
                break;
            return dsnn_error_set(e, DSNN_ERR_IO,
                                  "%s: cannot open: %s; set %s to the directory of the "
                                  "preprocessed GSC files (nupic's gsc_train<N>.npz, "
                                  "gsc_valid.npz, gsc_test_noise<NN>.npz), or %s",
                                  path, strerror(errno),
                                  dsnn_dataset_key_where(cfg, "path", kw, sizeof kw),
                                  numbered ? "train_file to their name with {} for the number"
                                           : "train_file to the file");
        }
        memcpy(s->train_paths[k], path, strlen(path) + 1);
        s->n_train_files = k + 1;
    }
    s->train_counts = calloc((size_t)s->n_train_files, sizeof *s->train_counts);
    if (!s->train_counts)
        return dsnn_error_set(e, DSNN_ERR_NOMEM, "gsc: out of memory");
    *max_count = 0;
    for (int k = 0; k < s->n_train_files; k++) {
        int32_t *labels = NULL;
        st = gsc_check_file(s, s->train_paths[k], &s->shape, &s->train_counts[k], NULL, &labels,
                            e);
        free(labels);
        if (st != DSNN_OK)
            return st;
        if (s->train_size > s->train_counts[k])
            return dsnn_error_set(e, DSNN_ERR_CONFIG,
                                  "%s: %" PRId64 " is more than the %" PRId64 " samples of %s",
                                  dsnn_dataset_key_where(cfg, "train_size", kw, sizeof kw),
                                  s->train_size, s->train_counts[k], s->train_paths[k]);
        if (s->train_counts[k] > *max_count)
            *max_count = s->train_counts[k];
    }
    s->d = dsnn_shape_size(s->shape);
    return DSNN_OK;
}

/* Loads the test file and, with test_noise, the noise file of noise_level; applies test_size. */
static enum dsnn_status gsc_load_eval(const struct dsnn_cfg *cfg, const struct gsc_options *o,
                                      struct gsc_state *s, struct dsnn_error *e)
{
    enum dsnn_status st;
    char kw[700], path[NPZ_PATH_MAX];
    if (!gsc_path(o, o->test_file, NULL, path, sizeof path))
        return dsnn_error_set(e, DSNN_ERR_CONFIG, "%s: path too long",
                              dsnn_dataset_key_where(cfg, "test_file", kw, sizeof kw));
    if ((st = gsc_load(s, path, &s->test, e)) != DSNN_OK)
        return st;
    if (o->test_noise) {
        char pct[16];
        snprintf(pct, sizeof pct, "%02d", (int)lround(o->noise_level * 100));
        if (!gsc_path(o, o->noise_file, pct, path, sizeof path))
            return dsnn_error_set(e, DSNN_ERR_CONFIG, "%s: path too long",
                                  dsnn_dataset_key_where(cfg, "noise_file", kw, sizeof kw));
        if ((st = gsc_load(s, path, &s->noise, e)) != DSNN_OK)
            return st;
    }
    for (int i = 0; i < 1 + o->test_noise; i++) {
        struct gsc_set *t = i ? &s->noise : &s->test;
        if (s->test_size > t->n)
            return dsnn_error_set(e, DSNN_ERR_CONFIG,
                                  "%s: %" PRId64 " is more than the %" PRId64 " samples of %s",
                                  dsnn_dataset_key_where(cfg, "test_size", kw, sizeof kw),
                                  s->test_size, t->n, t->path);
        if (s->test_size)
            t->n = s->test_size;
    }
    return DSNN_OK;
}

/* normalize = "dataset": mean and std over the first n_train samples of the epoch-0 train file
 * (or as given), applied to every loaded set. */
static void gsc_normalise(const struct gsc_options *o, struct gsc_state *s, int64_t n_train)
{
    s->mean = 0;
    s->std = 1;
    if (o->normalize != GSC_NORM_DATASET)
        return;
    double s1 = 0, s2 = 0, cnt = (double)n_train * (double)s->d;
    for (int64_t i = 0; i < n_train * s->d; i++) {
        s1 += s->train.x[i];
        s2 += (double)s->train.x[i] * s->train.x[i];
    }
    double mean = s1 / cnt, var = s2 / cnt - mean * mean;
    double sd = var > 0 ? sqrt(var) : 0;
    if (sd < 1e-12)
        sd = 1;
    s->mean = o->has_mean ? o->mean : mean;
    s->std = o->has_std ? o->std : sd;
    s->normalize = true;
    float m = (float)s->mean, inv = (float)(1.0 / s->std);
    struct gsc_set *sets[3] = {&s->train, &s->test, &s->noise};
    for (int i = 0; i < 3; i++)
        for (int64_t j = 0; sets[i]->x && j < sets[i]->n * s->d; j++)
            sets[i]->x[j] = (sets[i]->x[j] - m) * inv;
}

static void gsc_log(FILE *log, const struct gsc_options *o, const struct gsc_state *s)
{
    int64_t n_train = s->train_size ? s->train_size : s->train.n;
    fprintf(log, "gsc: train %" PRId64 " samples of %dx%dx%d from %s (%d file%s, one per "
                 "epoch, cycling)\n",
            n_train, s->shape.c, s->shape.h, s->shape.w, s->train_paths[0], s->n_train_files,
            s->n_train_files == 1 ? "" : "s");
    fprintf(log, "gsc: test %" PRId64 " samples from %s\n", s->test.n, s->test.path);
    if (o->test_noise)
        fprintf(log, "gsc: noise %" PRId64 " samples from %s\n", s->noise.n, s->noise.path);
    fprintf(log, "gsc: %d classes; normalize %s (mean %.4g std %.4g); shuffle %s\n",
            s->n_classes, gsc_norm_choices[o->normalize], s->mean, s->std,
            s->store.cur.shuffle ? "on" : "off");
}

/* Copies sample i of the split begun to dst (dsnn_sample_fn). */
static int32_t gsc_sample(void *state, int64_t i, float *dst)
{
    const struct gsc_state *s = state;
    const struct gsc_set *t = s->store.cur.split == DSNN_SPLIT_TRAIN  ? &s->train
                              : s->store.cur.split == DSNN_SPLIT_TEST ? &s->test
                                                                : &s->noise;
    memcpy(dst, t->x + i * s->d, (size_t)s->d * sizeof *dst);
    return t->y[i];
}

static enum dsnn_status gsc_open(const struct dsnn_cfg *cfg, const struct dsnn_run_ctx *ctx,
                                 void **state, struct dsnn_dataset_info *info,
                                 struct dsnn_error *err)
{
    struct dsnn_error e0 = {0};
    struct dsnn_error *e = err ? err : &e0;
    struct gsc_options o;
    enum dsnn_status st;
    if (!state || !info)
        return dsnn_error_set(e, DSNN_ERR_INVALID, "gsc: open: state and info must not be NULL");
    *state = NULL;
    memset(&o, 0, sizeof o);
    if ((st = gsc_read_options(cfg, &o, e)) != DSNN_OK)
        return st;
    struct gsc_state *s = calloc(1, sizeof *s);
    if (!s)
        return dsnn_error_set(e, DSNN_ERR_NOMEM, "gsc: out of memory");
    dsnn_split_cursor_setup(&s->store.cur, "gsc", &o.split, ctx ? ctx->seed : 0,
                            o.test_noise ? DSNN_NOISE_SPLIT_ON : DSNN_NOISE_SPLIT_OFF);
    s->loaded = -1;
    s->n_classes = (int)o.n_classes;
    snprintf(s->x_name, sizeof s->x_name, "%s", o.x_array);
    snprintf(s->y_name, sizeof s->y_name, "%s", o.y_array);
    s->train_size = o.size[0];
    s->test_size = o.size[1];

    int64_t max_count = 0;
    if ((st = gsc_find_train(cfg, &o, s, &max_count, e)) != DSNN_OK ||
        (st = gsc_load_eval(cfg, &o, s, e)) != DSNN_OK ||
        (st = gsc_load_train(s, 0, e)) != DSNN_OK) /* the epoch-0 train file */
        goto fail;
    int64_t n_train = s->train_size ? s->train_size : s->train.n;
    gsc_normalise(&o, s, n_train);

    /* Buffers. */
    int64_t n_test = s->test.n;
    int64_t n_eval = s->noise.n > n_test ? s->noise.n : n_test; /* largest test-like split */
    if ((st = dsnn_split_cursor_init(&s->store.cur, s->train_size ? s->train_size : max_count, n_eval,
                                     e)) != DSNN_OK ||
        (st = dsnn_batch_buffer_init(&s->store.buf, &s->store.cur, s->d, e)) != DSNN_OK)
        goto fail;
    s->store.sample = gsc_sample;

    dsnn_split_cursor_describe(&s->store.cur, s->shape, s->n_classes, n_train, n_test, s->noise.n, info);
    if (ctx && ctx->log)
        gsc_log(ctx->log, &o, s);
    *state = s;
    return DSNN_OK;

fail:
    gsc_close(s);
    return st;
}

static enum dsnn_status gsc_begin(void *state, enum dsnn_split split, int epoch,
                                  struct dsnn_error *err)
{
    struct gsc_state *s = state;
    if (!s)
        return dsnn_error_set(err, DSNN_ERR_INVALID, "gsc: begin on a NULL dataset");
    enum dsnn_status st = dsnn_split_cursor_check(&s->store.cur, split, epoch, err);
    if (st != DSNN_OK)
        return st;
    s->store.cur.split = -1; /* nothing begun if the train file of the epoch fails to load */
    int64_t n;
    if (split == DSNN_SPLIT_TRAIN) {
        if ((st = gsc_load_train(s, epoch % s->n_train_files, err)) != DSNN_OK)
            return st;
        n = s->train_size ? s->train_size : s->train.n;
    } else {
        n = split == DSNN_SPLIT_TEST ? s->test.n : s->noise.n;
    }
    return dsnn_split_cursor_begin(&s->store.cur, split, epoch, n, err);
}

DSNN_DATASET_PLUGIN("gsc", "1.0.0",
                    "Google Speech Commands, nupic's preprocessed .npz files (32x32 log-mel, 12 "
                    "classes)",
                    gsc_keys, .open = gsc_open, .begin = gsc_begin,
                    .next_batch = dsnn_sample_store_next_batch,
                    .close = gsc_close)
