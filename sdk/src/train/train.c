/* train/train.c - softmax cross-entropy, the standard epoch loop and evaluation. */
#include "dsnn/train.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* Loss and gradient of one sample; returns the loss, *ok = argmax is the label. */
static double xent_one(const float *z, int32_t y, int n_classes, float inv, float *d, int *ok)
{
    float mx = z[0];
    int arg = 0;
    for (int c = 1; c < n_classes; c++)
        if (z[c] > mx) {
            mx = z[c];
            arg = c;
        }
    double sum = 0;
    for (int c = 0; c < n_classes; c++)
        sum += exp((double)(z[c] - mx));
    const double lse = log(sum) + mx;
    *ok = arg == y;
    if (d) {
        for (int c = 0; c < n_classes; c++)
            d[c] = (float)(exp((double)z[c] - lse)) * inv;
        d[y] -= inv;
    }
    return lse - z[y];
}

/* Batches from this many logits on are split over the threads; per-sample results are summed
 * in sample order afterwards, so the numbers do not depend on the thread count. */
#define XENT_PARALLEL_MIN 512
#define XENT_BLOCK 256 /* samples per parallel block (their results live on the stack) */

enum dsnn_status dsnn_softmax_xent(const float *logits, const int32_t *labels, int batch,
                                   int n_classes, float *dlogits, double *loss_sum,
                                   int64_t *correct, struct dsnn_error *err)
{
    for (int i = 0; i < batch; i++)
        if (labels[i] < 0 || labels[i] >= n_classes)
            return dsnn_error_set(err, DSNN_ERR_INVALID, "label %d outside [0, %d)", labels[i],
                                  n_classes);
    const float inv = 1.0f / (float)batch;
    const bool par = (int64_t)batch * n_classes >= XENT_PARALLEL_MIN;
    double loss = 0;
    int64_t ok = 0;
    for (int i0 = 0; i0 < batch; i0 += XENT_BLOCK) {
        const int m = batch - i0 < XENT_BLOCK ? batch - i0 : XENT_BLOCK;
        double l[XENT_BLOCK];
        int h[XENT_BLOCK];
#pragma omp parallel for schedule(static) if (par)
        for (int k = 0; k < m; k++) {
            const size_t o = (size_t)(i0 + k) * n_classes;
            l[k] = xent_one(logits + o, labels[i0 + k], n_classes, inv,
                            dlogits ? dlogits + o : NULL, &h[k]);
        }
        for (int k = 0; k < m; k++) {
            loss += l[k];
            ok += h[k];
        }
    }
    if (loss_sum)
        *loss_sum += loss;
    if (correct)
        *correct += ok;
    return DSNN_OK;
}

enum dsnn_status dsnn_train_epoch(struct dsnn_net *net, struct dsnn_optim *opt,
                                  struct dsnn_data *data, int epoch,
                                  const struct dsnn_train_hooks *hooks, int64_t *step,
                                  struct dsnn_metrics *m, struct dsnn_error *err)
{
    int n_classes = dsnn_net_n_classes(net);
    float *dlogits = malloc(sizeof(float) * (size_t)n_classes *
                            (size_t)(data->info.batch_size_train > 0 ? data->info.batch_size_train : 1));
    if (!dlogits)
        return dsnn_error_set(err, DSNN_ERR_NOMEM, "out of memory");
    double loss = 0;
    int64_t correct = 0, seen = 0, local_step = 0;
    if (!step)
        step = &local_step;
    enum dsnn_status st = dsnn_data_begin(data, DSNN_SPLIT_TRAIN, epoch, err);
    while (st == DSNN_OK) {
        struct dsnn_batch b;
        if ((st = dsnn_data_next(data, &b, err)) != DSNN_OK || b.n == 0)
            break;
        if (b.n > data->info.batch_size_train) {
            st = dsnn_error_set(err, DSNN_ERR_INTERNAL,
                                "dataset returned a batch of %d > batch_size_train %d", b.n,
                                data->info.batch_size_train);
            break;
        }
        const float *logits = dsnn_net_forward(net, b.x, b.n, true, err);
        if (!logits) {
            st = err ? err->status : DSNN_ERR_INTERNAL;
            break;
        }
        double bl = 0;
        if ((st = dsnn_softmax_xent(logits, b.y, b.n, n_classes, dlogits, &bl, &correct, err)))
            break;
        if (!isfinite(bl)) {
            st = dsnn_error_set(err, DSNN_ERR_NUMERIC,
                                "epoch %d step %lld: loss is %g (diverged; lower the learning "
                                "rate?)",
                                epoch, (long long)*step, bl);
            break;
        }
        loss += bl;
        seen += b.n;
        if (hooks && hooks->after_forward &&
            (st = hooks->after_forward(hooks->user, net, &b, err)))
            break;
        if ((st = dsnn_net_backward(net, dlogits, b.n, err)))
            break;
        if (hooks && hooks->after_backward &&
            (st = hooks->after_backward(hooks->user, net, *step, err)))
            break;
        if ((st = dsnn_optim_step(opt, net, err)))
            break;
        if (hooks && hooks->after_step && (st = hooks->after_step(hooks->user, net, *step, err)))
            break;
        (*step)++;
    }
    free(dlogits);
    if (st != DSNN_OK)
        return st;
    if (seen == 0)
        return dsnn_error_set(err, DSNN_ERR_INVALID, "the train split yielded no samples");
    dsnn_metrics_set(m, "train_loss", loss / (double)seen);
    dsnn_metrics_set(m, "train_acc", (double)correct / (double)seen);
    return DSNN_OK;
}

enum dsnn_status dsnn_evaluate(struct dsnn_net *net, struct dsnn_data *data,
                               enum dsnn_split split, const char *prefix, struct dsnn_metrics *m,
                               struct dsnn_error *err)
{
    int n_classes = dsnn_net_n_classes(net);
    double loss = 0;
    int64_t correct = 0, seen = 0;
    /* test and noise: the epoch of the last training epoch (its batch_size_test) */
    enum dsnn_status st =
        dsnn_data_begin(data, split, split == DSNN_SPLIT_TRAIN ? 0 : data->epoch, err);
    while (st == DSNN_OK) {
        struct dsnn_batch b;
        if ((st = dsnn_data_next(data, &b, err)) != DSNN_OK || b.n == 0)
            break;
        const float *logits = dsnn_net_forward(net, b.x, b.n, false, err);
        if (!logits)
            return err ? err->status : DSNN_ERR_INTERNAL;
        if ((st = dsnn_softmax_xent(logits, b.y, b.n, n_classes, NULL, &loss, &correct, err)))
            return st;
        seen += b.n;
    }
    if (st != DSNN_OK)
        return st;
    if (seen == 0)
        return dsnn_error_set(err, DSNN_ERR_INVALID, "split %d yielded no samples", (int)split);
    dsnn_metrics_setf(m, loss / (double)seen, "%s_loss", prefix);
    dsnn_metrics_setf(m, (double)correct / (double)seen, "%s_acc", prefix);
    return DSNN_OK;
}
