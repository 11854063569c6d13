/* data/sample_store.c - what the datasets that serve one sample at a time share: begin and
 * next_batch over a struct dsnn_sample_store (the first member of their state), and the holdout
 * keys train_size, test_size and val_fraction with the cut of the splits they select. */
#include "dsnn/dataset_util.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>

enum dsnn_status dsnn_sample_store_begin(void *state, enum dsnn_split split, int epoch,
                                         struct dsnn_error *err)
{
    struct dsnn_sample_store *s = state;
    if (!s)
        return dsnn_error_set(err, DSNN_ERR_INVALID, "dataset: begin on a NULL dataset");
    /* n is read only for a known split; the cursor refuses any other (its one check) */
    const bool known = (unsigned)split <= (unsigned)DSNN_SPLIT_NOISE;
    return dsnn_split_cursor_begin(&s->cur, split, epoch, known ? s->n[split] : 0, err);
}

enum dsnn_status dsnn_sample_store_next_batch(void *state, struct dsnn_batch *out,
                                              struct dsnn_error *err)
{
    struct dsnn_sample_store *s = state;
    if (!s || !out)
        return dsnn_error_set(err, DSNN_ERR_INVALID, "%s: next_batch: NULL argument",
                              s && s->cur.name ? s->cur.name : "dataset");
    return dsnn_split_cursor_fill(&s->cur, &s->buf, s->sample, state, out, err);
}

void dsnn_sample_store_free(struct dsnn_sample_store *store)
{
    if (!store)
        return;
    dsnn_split_cursor_free(&store->cur);
    dsnn_batch_buffer_free(&store->buf);
}

#define HK_AT(f) DSNN_KEY_AT(struct dsnn_holdout_options, f)
static const struct dsnn_key_spec holdout_keys[] = {
    {.name = "train_size", .type = DSNN_KEY_INT, .def = 0, DSNN_KEY_RANGE(0, UINT32_MAX),
     HK_AT(train_size), .doc = "use only the first N samples of the train split (0 = all)"},
    {.name = "test_size", .type = DSNN_KEY_INT, .def = 0, DSNN_KEY_RANGE(0, UINT32_MAX),
     HK_AT(test_size), .doc = "use only the first N samples of the test split (0 = all)"},
    {.name = "val_fraction", .type = DSNN_KEY_FLOAT, .def = 0, DSNN_KEY_RANGE(0, 1),
     HK_AT(val_fraction),
     .doc = "in [0, 1): if > 0, the test split is the last round(val_fraction * n) samples of the "
            "train data (validation), the train split the samples before them, and the test "
            "data is not read; train_size and test_size then limit these two parts"},
};
#undef HK_AT
DSNN_KEY_TABLE_DEFINE(, dsnn_holdout_keys, holdout_keys);

enum dsnn_status dsnn_holdout_read(const struct dsnn_cfg *cfg, struct dsnn_holdout_options *o,
                                   struct dsnn_error *err)
{
    enum dsnn_status st = dsnn_keys_read(&dsnn_holdout_keys, cfg, o, err);
    if (st != DSNN_OK)
        return st;
    char kw[700];
    if (!(o->val_fraction < 1)) /* the spec's range is closed: [0, 1] */
        return dsnn_error_set(err, DSNN_ERR_CONFIG, "%s: must be in [0, 1), got %g",
                              dsnn_dataset_key_where(cfg, "val_fraction", kw, sizeof kw),
                              o->val_fraction);
    return DSNN_OK;
}

enum dsnn_status dsnn_holdout_cut(const struct dsnn_cfg *cfg, const struct dsnn_holdout_options *o,
                                  int64_t n_train_data, const char *train_what,
                                  int64_t n_test_data, const char *test_what,
                                  struct dsnn_holdout *h, struct dsnn_error *err)
{
    char kw[700];
    *h = (struct dsnn_holdout){.n_train = n_train_data, .n_test = n_test_data};
    if (o->val_fraction > 0) {
        const int64_t n_val = (int64_t)llround(o->val_fraction * (double)n_train_data);
        if (n_val < 1 || n_val >= n_train_data)
            return dsnn_error_set(err, DSNN_ERR_CONFIG,
                                  "%s: %g of the %" PRId64 " samples of %s gives %" PRId64
                                  " validation and %" PRId64 " training samples; both must be >= 1",
                                  dsnn_dataset_key_where(cfg, "val_fraction", kw, sizeof kw),
                                  o->val_fraction, n_train_data, train_what, n_val,
                                  n_train_data - n_val);
        h->n_train = n_train_data - n_val;
        h->n_test = n_val;
        h->from_train = true;
        h->test_first = h->n_train;
    }
    const int64_t size[2] = {o->train_size, o->test_size};
    int64_t *n[2] = {&h->n_train, &h->n_test};
    static const char *const keys[2] = {"train_size", "test_size"};
    for (int i = 0; i < 2; i++) {
        if (size[i] == 0)
            continue;
        if (size[i] > *n[i])
            return dsnn_error_set(err, DSNN_ERR_CONFIG,
                                  "%s: %" PRId64 " is more than the %" PRId64
                                  " samples of the %s split (%s%s)",
                                  dsnn_dataset_key_where(cfg, keys[i], kw, sizeof kw), size[i],
                                  *n[i], i == 0 ? "train" : "test",
                                  !h->from_train   ? ""
                                  : i == 0 ? "the training part of "
                                           : "the validation part of ",
                                  i == 0 || h->from_train ? train_what : test_what);
        *n[i] = size[i];
    }
    return DSNN_OK;
}
