/* data/data.c - dataset handles (thin, checked wrappers over a dataset plugin's ops). */
#include "dsnn/plugin.h"

enum dsnn_status dsnn_data_begin(struct dsnn_data *d, enum dsnn_split split, int epoch,
                                 struct dsnn_error *err)
{
    enum dsnn_status st = d->ops->begin(d->state, split, epoch, err);
    if (st == DSNN_OK && split == DSNN_SPLIT_TRAIN)
        d->epoch = epoch;
    return st;
}

enum dsnn_status dsnn_data_next(struct dsnn_data *d, struct dsnn_batch *b, struct dsnn_error *err)
{
    b->n = 0;
    b->x = NULL;
    b->y = NULL;
    return d->ops->next_batch(d->state, b, err);
}
