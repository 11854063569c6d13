/* dsnn/dataset_util.h - what dataset plugins share: nupic's RandomNoise (the noise split),
 * per-epoch batch sizes (nupic's VaryingDataLoader), named normalisation statistics, and the
 * reading of the keys that go with them, so that every image dataset offers them with the same
 * keys, defaults and messages.
 *
 * Typical use in a dataset plugin:
 *
 *     static const struct dsnn_key_spec keys[] = {
 *         {"plugin", ...}, ..., DSNN_NOISE_KEYS,
 *     };
 *     open:       dsnn_batch_schedule_read(cfg, "batch_size_train", 128, n_train, &sched, err);
 *                 dsnn_noise_options_read(cfg, ctx->seed, &noise, err);
 *     begin:      batch = dsnn_batch_schedule_at(&sched, epoch);
 *     next_batch: dsnn_noise_rng(&r, noise.seed, sample_index);
 *                 dsnn_noise_apply(x, n, noise.level, high, low, &r);
 */
#ifndef DSNN_DATASET_UTIL_H
#define DSNN_DATASET_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "dsnn/config.h"
#include "dsnn/data.h" /* enum dsnn_split */
#include "dsnn/export.h"
#include "dsnn/keys.h"
#include "dsnn/plugin.h" /* DSNN_KEY_* for DSNN_NOISE_KEYS */
#include "dsnn/rng.h"
#include "dsnn/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Random pixel noise (nupic.research RandomNoise) ----
 *
 * nupic.research (nupic/research/frameworks/pytorch/image_transforms.py, RandomNoise.__call__):
 *     a = image.view(-1)
 *     num_noise_bits = int(a.shape[0] * noise_level)
 *     permuted_indices = np.random.permutation(a.shape[0])
 *     a[permuted_indices[0 : num_noise_bits // 2]] = high_value
 *     a[permuted_indices[num_noise_bits // 2 : num_noise_bits]] = low_value
 * i.e. exactly k = floor(n * noise_level) distinct elements (of all channels together) are
 * replaced: floor(k / 2) by high_value and the rest by low_value. projects/dynamic_sparse
 * (common/utils.py, Dataset.load_from_torch_vision) builds its noise test set with
 * high_value = 0.5 + 2 * 0.2 = 0.9 and low_value = 0.5 - 2 * 0.2 = 0.1, and applies the transform
 * AFTER transforms.Normalize: the values 0.9 and 0.1 are normalised inputs, not pixels. */
#define DSNN_NOISE_HIGH 0.9
#define DSNN_NOISE_LOW 0.1

/* Replaces k = floor(n * noise_level) distinct elements of x[0..n), chosen uniformly at random
 * with rng, floor(k / 2) of them by high and the other k - floor(k / 2) by low: the same
 * distribution as nupic's RandomNoise (uniform over all such assignments), drawn in one pass with
 * one dsnn_rng_below per element until the k are placed, without extra memory. noise_level is
 * clamped to [0, 1]. Returns k. */
DSNN_API size_t dsnn_noise_apply(float *x, size_t n, double noise_level, float high, float low,
                                 struct dsnn_rng *rng);

/* Seeds r for the noise of sample `sample` (its index in the split): the noisy copy of a sample
 * depends on (seed, sample) only, not on batch sizes, epochs or the order of evaluation. */
DSNN_API void dsnn_noise_rng(struct dsnn_rng *r, uint64_t seed, uint64_t sample);

/* Where the noise values live. */
enum dsnn_noise_space {
    DSNN_NOISE_SPACE_NORMALIZED = 0, /* nupic: set after normalisation (the default) */
    DSNN_NOISE_SPACE_PIXEL = 1       /* set in the [0, 1] image, before normalisation */
};

/* The noise keys of an image dataset (DSNN_NOISE_KEYS). */
struct dsnn_noise_options {
    bool enabled;               /* test_noise */
    double level;               /* noise_level, in [0, 1] */
    double high, low;           /* noise_high, noise_low */
    enum dsnn_noise_space space; /* noise_space */
    uint64_t seed;              /* noise_seed if given, else the trial seed */
};

DSNN_API extern const struct dsnn_key_table dsnn_noise_keys;
#define DSNN_NOISE_KEYS DSNN_KEYS_FROM(dsnn_noise_keys)

/* Reads DSNN_NOISE_KEYS from cfg (trial_seed when noise_seed is absent). Noise keys given with
 * test_noise = false are accepted (a search may vary test_noise). */
DSNN_API enum dsnn_status dsnn_noise_options_read(const struct dsnn_cfg *cfg, uint64_t trial_seed,
                                                  struct dsnn_noise_options *o,
                                                  struct dsnn_error *err);

/* Writes the line that describes the noise split to log, when o->enabled (nothing otherwise):
 * "NAME: noise split: the test split with LEVEL of the WHAT set to HIGH / LOW (SPACE)". name is
 * the plugin ("idx"), what the values of a sample ("pixels", "values"). log may be NULL. */
DSNN_API void dsnn_noise_options_log(FILE *log, const char *name, const char *what,
                                     const struct dsnn_noise_options *o);

/* ---- Values per epoch: batch sizes (nupic VaryingDataLoader), batches per epoch ---- */

#define DSNN_BATCH_SCHEDULE_MAX 64
#define DSNN_BATCH_SIZE_MAX (1 << 24)

/* batch_size_train = 128 or [4, 16, 64]: the value of epoch e is size[min(e, n - 1)] (the last
 * value repeats), as nupic's VaryingDataLoader (batch sizes) and NumScheduler
 * (train_batches_per_epoch). */
struct dsnn_batch_schedule {
    int n;                             /* number of values, >= 1 */
    int size[DSNN_BATCH_SCHEDULE_MAX]; /* each in the range the reader was given */
    int max;                           /* largest value */
};

/* Reads key (an integer or an array of at most DSNN_BATCH_SCHEDULE_MAX integers, each in
 * [lo, hi]) into s; def when absent. An empty array, a float or a value outside [lo, hi] is
 * DSNN_ERR_CONFIG naming the key (and the element and its epoch). */
DSNN_API enum dsnn_status dsnn_epoch_schedule_read(const struct dsnn_cfg *cfg, const char *key,
                                                   int def, int lo, int hi,
                                                   struct dsnn_batch_schedule *s,
                                                   struct dsnn_error *err);
/* dsnn_epoch_schedule_read with the range of a batch size, [1, DSNN_BATCH_SIZE_MAX]. */
DSNN_API enum dsnn_status dsnn_batch_schedule_read(const struct dsnn_cfg *cfg, const char *key,
                                                   int def, struct dsnn_batch_schedule *s,
                                                   struct dsnn_error *err);
/* Value of epoch (0-based; negative reads as 0); 1 for an empty schedule. */
DSNN_API int dsnn_batch_schedule_at(const struct dsnn_batch_schedule *s, int epoch);
/* Largest batch size ever used, capped at n_samples (at least 1): what a dataset reports as
 * info->batch_size_train. */
DSNN_API int dsnn_batch_schedule_max(const struct dsnn_batch_schedule *s, int64_t n_samples);
/* One value: a schedule of n = 1. */
DSNN_API struct dsnn_batch_schedule dsnn_batch_schedule_const(int value);

/* ---- Split cursor: the split begun, the order of its samples, the next batch ----
 *
 * What begin and next_batch of every dataset share: checking the split and the epoch, the
 * batch size of the epoch (train_batch for train, test_batch for test and noise), the order of
 * the train samples (a Fisher-Yates permutation from
 * dsnn_rng_seed(dsnn_seed_mix(seed, epoch), DSNN_RNG_STREAM_DATA), started from the identity, so
 * that it depends on (seed, epoch) only; the identity when shuffle is off and for the test and
 * noise splits), train_batches_per_epoch, and the position in the split. The plugin keeps the
 * samples and turns the indices of a batch into its values.
 *
 *     options:    struct my_options { struct dsnn_split_options split; ... };
 *                 key specs: {"batch_size_train", .def = 128 ...}, DSNN_SPLIT_KEYS, ...
 *                 dsnn_dataset_keys_read(&my_table, cfg, &o, &o.split, err);
 *     open:       dsnn_split_cursor_setup(&s->cur, "idx", &o.split, ctx->seed,
 *                                         DSNN_NOISE_SPLIT_OFF or _ON);
 *                 dsnn_split_cursor_init(&s->cur, n_train, n_test, err);
 *                 dsnn_batch_buffer_init(&s->buf, &s->cur, sample_size, err);
 *     begin:      dsnn_split_cursor_begin(&s->cur, split, epoch, n_of_that_split, err);
 *     next_batch: dsnn_split_cursor_fill(&s->cur, &s->buf, my_sample, s, b, err);
 *                 (my_sample(s, i, x) writes sample i of split s->cur.split, returns its label)
 *     close:      dsnn_split_cursor_free(&s->cur); dsnn_batch_buffer_free(&s->buf);
 *
 * A dataset that keeps cursor and buffer in a struct dsnn_sample_store (below) gets begin,
 * next_batch and the freeing from libdsnn.
 */

/* Whether a dataset offers the noise split (DSNN_SPLIT_NOISE). */
enum dsnn_noise_split {
    DSNN_NOISE_SPLIT_OFF = 0, /* it can, but test_noise = false: begin says to set test_noise */
    DSNN_NOISE_SPLIT_ON = 1,  /* it does */
    DSNN_NOISE_SPLIT_NONE = 2 /* the dataset has no noise split at all */
};

struct dsnn_split_cursor {
    /* Set by the plugin before dsnn_split_cursor_init. */
    const char *name; /* the plugin, first word of every message ("idx"); static */
    struct dsnn_batch_schedule train_batch; /* batch size of each train epoch */
    struct dsnn_batch_schedule test_batch; /* batch size of each test (and noise) epoch */
    struct dsnn_batch_schedule batches_per_epoch; /* of each train epoch: > 0 ends it after that
                                                     many batches; 0 = all */
    bool shuffle;              /* shuffle the train split every epoch */
    uint64_t seed;             /* trial seed of the train order */
    enum dsnn_noise_split noise;
    /* Set by dsnn_split_cursor_init. */
    int train_max; /* largest train batch: dsnn_batch_schedule_max(train_batch, n_train) */
    int test_max;  /* largest test batch: dsnn_batch_schedule_max(test_batch, n_test) */
    int max_batch; /* largest batch of any split: the size of the plugin's batch buffers */
    uint32_t *order;   /* [capacity] sample order of the split begun; owned */
    int64_t capacity;  /* most samples a split may have: max(n_train, n_test) */
    /* Set by dsnn_split_cursor_begin and _next. */
    int split;       /* the split begun last (enum dsnn_split), -1 before the first begin */
    int epoch;       /* its epoch */
    int batch;       /* batch size of that epoch of that split */
    int64_t n;       /* samples of the split begun */
    int64_t pos;     /* samples served in this epoch */
    int64_t batches; /* batches served in this epoch */
    int64_t limit;   /* batches this epoch may serve (train: batches_per_epoch of the epoch),
                        0 = all */
};

/* The keys of a split cursor as read: a member of a dataset plugin's options. */
struct dsnn_split_options {
    struct dsnn_batch_schedule train_batch;       /* batch_size_train */
    struct dsnn_batch_schedule test_batch;        /* batch_size_test */
    struct dsnn_batch_schedule batches_per_epoch; /* train_batches_per_epoch, 0 = all */
    bool shuffle;                                 /* shuffle */
};

/* batch_size_test (default 1000, "samples per test (and noise) batch"), train_batches_per_epoch
 * (default 0 = all) and shuffle (default true), the cursor keys shared by the image datasets
 * (DSNN_SPLIT_KEYS, after the plugin's own batch_size_train, whose default and doc vary). The
 * first two take one value or one per epoch, as batch_size_train (the last value repeats;
 * epoch e of the test split is the evaluation after train epoch e). */
DSNN_API extern const struct dsnn_key_table dsnn_split_keys;
#define DSNN_SPLIT_KEYS DSNN_KEYS_FROM(dsnn_split_keys)

/* Reads the keys of a dataset plugin: its keys batch_size_train, batch_size_test and
 * train_batches_per_epoch (each an integer or one per epoch; the default the .def of that key in
 * t or in DSNN_SPLIT_KEYS when t includes them, else 1000 and 0) into split with
 * dsnn_epoch_schedule_read, shuffle (DSNN_SPLIT_KEYS; a plugin without them points its own
 * spec of shuffle into split), then every key of t into out with dsnn_keys_read. t must hold
 * the key batch_size_train. */
DSNN_API enum dsnn_status dsnn_dataset_keys_read(const struct dsnn_key_table *t,
                                                 const struct dsnn_cfg *cfg, void *out,
                                                 struct dsnn_split_options *split,
                                                 struct dsnn_error *err);

/* Sets every field of c for the options o: name (static), train_batch, test_batch,
 * batches_per_epoch and shuffle from o, seed, noise; split = -1, the rest zero. Then
 * dsnn_split_cursor_init. */
DSNN_API void dsnn_split_cursor_setup(struct dsnn_split_cursor *c, const char *name,
                                      const struct dsnn_split_options *o, uint64_t seed,
                                      enum dsnn_noise_split noise);

/* Prepares c, whose fields name ... noise are set, for splits of at most n_train (train) and
 * n_test (test and noise) samples: sets c->train_max, c->test_max (a test batch is at most
 * n_test) and c->max_batch, allocates c->order (freed by dsnn_split_cursor_free, also on failure) and sets
 * c->split = -1. Out of memory is DSNN_ERR_NOMEM, "NAME: out of memory for batch buffers". */
DSNN_API enum dsnn_status dsnn_split_cursor_init(struct dsnn_split_cursor *c, int64_t n_train,
                                                 int64_t n_test, struct dsnn_error *err);
/* What a dataset on cursor c (initialised) reports from open: info receives shape, n_classes,
 * n_train and n_test as given, n_noise when c offers the noise split (c->noise is
 * DSNN_NOISE_SPLIT_ON; 0 otherwise), and the largest batches of c (batch_size_train =
 * c->train_max, batch_size_test = c->test_max); every other field of info is zeroed. */
DSNN_API void dsnn_split_cursor_describe(const struct dsnn_split_cursor *c, struct dsnn_shape shape,
                                         int n_classes, int64_t n_train, int64_t n_test,
                                         int64_t n_noise, struct dsnn_dataset_info *info);
/* Frees what c owns (not c itself). Accepts NULL and a cursor never initialised but zeroed. */
DSNN_API void dsnn_split_cursor_free(struct dsnn_split_cursor *c);
/* Checks that split can be begun at epoch, in this order: the noise split when c->noise is not
 * DSNN_NOISE_SPLIT_ON (DSNN_ERR_UNSUPPORTED, "NAME: no noise split (n_noise = 0); set test_noise
 * = true", or "NAME: no noise split" for DSNN_NOISE_SPLIT_NONE), an unknown split, a negative
 * epoch (DSNN_ERR_INVALID). Changes nothing: for a plugin that must do some work (load a file)
 * between checking and beginning. */
DSNN_API enum dsnn_status dsnn_split_cursor_check(const struct dsnn_split_cursor *c,
                                                  enum dsnn_split split, int epoch,
                                                  struct dsnn_error *err);
/* Checks as dsnn_split_cursor_check, then begins epoch `epoch` of split, which has n samples
 * (at most c->capacity): position and batch count 0, batch size and batch limit of that epoch
 * from the schedules (train_batch and batches_per_epoch for train; test_batch, at most
 * c->test_max, for test and noise), order the identity, shuffled for the train split when c->shuffle (one
 * dsnn_rng_shuffle_u32 from dsnn_seed_mix(c->seed, epoch), DSNN_RNG_STREAM_DATA). On error
 * c is unchanged. */
DSNN_API enum dsnn_status dsnn_split_cursor_begin(struct dsnn_split_cursor *c,
                                                  enum dsnn_split split, int epoch, int64_t n,
                                                  struct dsnn_error *err);
/* Advances c by one batch: *n receives its number of samples (0 once the split is served, or
 * for train once the epoch's batches_per_epoch batches were), *samples their indices in the split
 * (pointing into c->order; valid until the next begin). Before the first begin it is
 * DSNN_ERR_INVALID, "NAME: next_batch called before begin". */
DSNN_API enum dsnn_status dsnn_split_cursor_next(struct dsnn_split_cursor *c, int *n,
                                                 const uint32_t **samples,
                                                 struct dsnn_error *err);

/* The values and labels of the batch a dataset serves, sized for the largest batch of its split
 * cursor. */
struct dsnn_batch_buffer {
    float *x;            /* [max_batch * sample_size]; owned */
    int32_t *y;          /* [max_batch]; owned */
    int64_t sample_size; /* values per sample */
};

/* Allocates b for c->max_batch samples (c initialised by dsnn_split_cursor_init) of sample_size
 * values each. Out of memory is DSNN_ERR_NOMEM, "NAME: out of memory for batch buffers", and
 * leaves b holding nothing. */
DSNN_API enum dsnn_status dsnn_batch_buffer_init(struct dsnn_batch_buffer *b,
                                                 const struct dsnn_split_cursor *c,
                                                 int64_t sample_size, struct dsnn_error *err);
/* Frees what b owns (not b itself). Accepts NULL and a zeroed buffer. */
DSNN_API void dsnn_batch_buffer_free(struct dsnn_batch_buffer *b);

/* Writes the sample_size values of sample i (its index in the split the cursor began) to x and
 * returns its label. */
typedef int32_t (*dsnn_sample_fn)(void *state, int64_t i, float *x);

/* What next_batch of a dataset on a split cursor does: advances c by one batch
 * (dsnn_split_cursor_next), fills row k of buf with sample(state, i, row) for the k-th sample i
 * of the batch, and points out at buf (out->n = 0 at the end of the split). On error out is
 * unchanged. */
DSNN_API enum dsnn_status dsnn_split_cursor_fill(struct dsnn_split_cursor *c,
                                                 struct dsnn_batch_buffer *buf,
                                                 dsnn_sample_fn sample, void *state,
                                                 struct dsnn_batch *out, struct dsnn_error *err);

/* ---- Sample store: begin and next_batch of a dataset that serves one sample at a time ----
 *
 * A dataset whose state starts with a struct dsnn_sample_store (its first member) and whose
 * samples are written one by one by a dsnn_sample_fn takes dsnn_sample_store_begin and
 * dsnn_sample_store_next_batch as its begin and next_batch:
 *
 *     struct my_state { struct dsnn_sample_store store; ... };
 *     open:       dsnn_split_cursor_setup(&s->store.cur, ...); dsnn_split_cursor_init(...);
 *                 dsnn_batch_buffer_init(&s->store.buf, &s->store.cur, sample_size, err);
 *                 s->store.sample = my_sample;
 *                 s->store.n[DSNN_SPLIT_TRAIN] = n_train; (and TEST, NOISE)
 *     close:      dsnn_sample_store_free(&s->store);
 *     ops:        .begin = dsnn_sample_store_begin, .next_batch = dsnn_sample_store_next_batch
 *
 * sample(state, i, x) receives the plugin's state (the store's address) and i, the index of the
 * sample in the split begun (store.cur.split). A dataset that must work at begin (gsc loads the
 * train file of the epoch) keeps its own begin and sets n before dsnn_split_cursor_begin. */
struct dsnn_sample_store {
    struct dsnn_split_cursor cur; /* split begun, order, batch sizes, position */
    struct dsnn_batch_buffer buf; /* the batch served */
    dsnn_sample_fn sample;        /* writes one sample of the split begun */
    int64_t n[3];                 /* samples of each split, by enum dsnn_split */
};

/* begin of a dataset whose state starts with a struct dsnn_sample_store:
 * dsnn_split_cursor_begin(&store->cur, split, epoch, store->n[split]) (an unknown split is
 * refused by its check); a NULL state is DSNN_ERR_INVALID. */
DSNN_API enum dsnn_status dsnn_sample_store_begin(void *state, enum dsnn_split split, int epoch,
                                                  struct dsnn_error *err);
/* next_batch of such a dataset: dsnn_split_cursor_fill(&store->cur, &store->buf,
 * store->sample, state, out); a NULL argument is DSNN_ERR_INVALID. */
DSNN_API enum dsnn_status dsnn_sample_store_next_batch(void *state, struct dsnn_batch *out,
                                                       struct dsnn_error *err);
/* Frees what the store owns (cursor and buffer; not the store). Accepts NULL. */
DSNN_API void dsnn_sample_store_free(struct dsnn_sample_store *store);

/* ---- Holdout: the parts of the train and test data a dataset uses ----
 *
 * train_size and test_size (use only the first N samples of a split, 0 = all) and val_fraction
 * (in [0, 1): when > 0 the test split is the last round(val_fraction * n) samples of the train
 * data, the train split the samples before them, and the test data is not read), the keys of a
 * dataset whose train and test data are read whole (idx, cifar): DSNN_HOLDOUT_KEYS, read by
 * dsnn_holdout_read (the table including them is read by dsnn_keys_read without them). */
struct dsnn_holdout_options {
    int64_t train_size, test_size; /* 0 = all */
    double val_fraction;           /* in [0, 1) */
};
DSNN_API extern const struct dsnn_key_table dsnn_holdout_keys;
#define DSNN_HOLDOUT_KEYS DSNN_KEYS_FROM(dsnn_holdout_keys)

/* Reads DSNN_HOLDOUT_KEYS from cfg into o; val_fraction = 1 is DSNN_ERR_CONFIG naming the key
 * (its spec's range is closed). */
DSNN_API enum dsnn_status dsnn_holdout_read(const struct dsnn_cfg *cfg,
                                            struct dsnn_holdout_options *o,
                                            struct dsnn_error *err);

/* The two splits a dataset serves out of its train data (n_train_data samples, described in
 * messages by train_what, e.g. its file's path) and its test data (n_test_data, test_what; not
 * used when val_fraction > 0). */
struct dsnn_holdout {
    int64_t n_train;   /* samples of the train split: the first of the train data */
    int64_t n_test;    /* samples of the test split */
    bool from_train;   /* the test split is in the train data (val_fraction > 0) ... */
    int64_t test_first; /* ... from this sample on (else from sample 0 of the test data) */
};
/* Cuts the splits for o: the validation part (val_fraction > 0: at least one sample in each
 * part, else DSNN_ERR_CONFIG naming val_fraction and the counts), then train_size and test_size
 * (more than the part has is DSNN_ERR_CONFIG naming the key, the part and train_what or
 * test_what). */
DSNN_API enum dsnn_status dsnn_holdout_cut(const struct dsnn_cfg *cfg,
                                           const struct dsnn_holdout_options *o,
                                           int64_t n_train_data, const char *train_what,
                                           int64_t n_test_data, const char *test_what,
                                           struct dsnn_holdout *h, struct dsnn_error *err);

/* ---- Named normalisation statistics ---- */

/* Mean and standard deviation of the [0, 1] pixels of a dataset's train set, per channel. */
struct dsnn_norm_stats {
    const char *name;
    int channels; /* 1 or 3 */
    double mean[3], std[3];
};
/* "mnist" (0.1307 / 0.3081), "fashion-mnist" (0.2860 / 0.3530), "cifar10"
 * (0.4914 0.4822 0.4465 / 0.2470 0.2435 0.2616), "cifar100" (0.5071 0.4865 0.4409 /
 * 0.2673 0.2564 0.2762); case-insensitive. NULL if unknown. The pointer is static. */
DSNN_API const struct dsnn_norm_stats *dsnn_norm_stats_find(const char *name);

/* ---- Messages ---- */

/* "FILE:LINE: key 'dataset.key'" into buf (just "key 'dataset.key'" when the key is absent),
 * for messages about a key's value. Returns buf. */
DSNN_API const char *dsnn_dataset_key_where(const struct dsnn_cfg *cfg, const char *key,
                                            char *buf, size_t size);

#ifdef __cplusplus
}
#endif
#endif
