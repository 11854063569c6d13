/* dsnn/data.h - dataset handles: what a dataset plugin yields and how models consume it. */
#ifndef DSNN_DATA_H
#define DSNN_DATA_H

#include <stdint.h>
#include "dsnn/export.h"
#include "dsnn/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Values are part of the ABI: append only. */
enum dsnn_split {
    DSNN_SPLIT_TRAIN = 0,
    DSNN_SPLIT_TEST = 1,
    DSNN_SPLIT_NOISE = 2 /* test set with noise (optional; n_noise == 0 if unsupported) */
};

/* Shape of one sample, channels-first. A flat vector is {n, 1, 1}. */
struct dsnn_shape {
    int c, h, w;
};
static inline int64_t dsnn_shape_size(struct dsnn_shape s)
{
    return (int64_t)s.c * s.h * s.w;
}

struct dsnn_dataset_info {
    struct dsnn_shape shape; /* per sample */
    int n_classes;
    int64_t n_train, n_test, n_noise;
    int batch_size_train, batch_size_test; /* largest batch next_batch yields per split */
};

/* One batch; the memory belongs to the dataset and is valid until its next call. */
struct dsnn_batch {
    const float *x;   /* [n][c*h*w], normalised */
    const int32_t *y; /* [n] class labels in [0, n_classes) */
    int n;            /* 0: end of the epoch */
};

struct dsnn_dataset_ops; /* in dsnn/plugin.h */

/* An opened dataset: what the host passes to models. */
struct dsnn_data {
    const struct dsnn_dataset_ops *ops;
    void *state;
    struct dsnn_dataset_info info;
    int epoch; /* the train epoch begun last (0 before any): the epoch of an evaluation, which
                  picks its per-epoch batch size (batch_size_test) */
};

/* Starts an epoch of a split (reshuffles the train split deterministically from the epoch);
 * for the train split it also sets d->epoch. */
DSNN_API enum dsnn_status dsnn_data_begin(struct dsnn_data *d, enum dsnn_split split, int epoch,
                                          struct dsnn_error *err);
/* Next batch of the split begun last; b->n == 0 at the end. */
DSNN_API enum dsnn_status dsnn_data_next(struct dsnn_data *d, struct dsnn_batch *b,
                                         struct dsnn_error *err);

#ifdef __cplusplus
}
#endif
#endif
