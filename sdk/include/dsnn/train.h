/* dsnn/train.h - building blocks of supervised training shared by model plugins. */
#ifndef DSNN_TRAIN_H
#define DSNN_TRAIN_H

#include <stdint.h>
#include "dsnn/data.h"
#include "dsnn/metrics.h"
#include "dsnn/net.h"
#include "dsnn/optim.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Mean softmax cross-entropy of logits [batch][n_classes] against labels.
 * Adds the summed loss to *loss_sum and the number of correct argmax predictions to *correct.
 * If dlogits != NULL, writes d(mean loss)/d(logits). Labels out of range: DSNN_ERR_INVALID. */
DSNN_API enum dsnn_status dsnn_softmax_xent(const float *logits, const int32_t *labels, int batch,
                                            int n_classes, float *dlogits, double *loss_sum,
                                            int64_t *correct, struct dsnn_error *err);

/* Hooks a model can plug into the standard epoch loop (any may be NULL). */
struct dsnn_train_hooks {
    void *user;
    /* After each forward in training (e.g. to accumulate coactivations). */
    enum dsnn_status (*after_forward)(void *user, struct dsnn_net *net, const struct dsnn_batch *b,
                                      struct dsnn_error *err);
    /* After backward, before the optimizer step (e.g. gradient-based growth). */
    enum dsnn_status (*after_backward)(void *user, struct dsnn_net *net, int64_t step,
                                       struct dsnn_error *err);
    /* After the optimizer step (e.g. re-applying masks, step-wise topology updates). */
    enum dsnn_status (*after_step)(void *user, struct dsnn_net *net, int64_t step,
                                   struct dsnn_error *err);
};

/* One epoch of minibatch training over the train split; sets train_loss and train_acc in m.
 * *step counts optimizer steps across epochs (may be NULL). Fails with DSNN_ERR_NUMERIC if the
 * loss becomes NaN/Inf. */
DSNN_API enum dsnn_status dsnn_train_epoch(struct dsnn_net *net, struct dsnn_optim *opt,
                                           struct dsnn_data *data, int epoch,
                                           const struct dsnn_train_hooks *hooks, int64_t *step,
                                           struct dsnn_metrics *m, struct dsnn_error *err);
/* Loss and accuracy over a split; sets <prefix>_loss and <prefix>_acc in m ("val" for test). */
DSNN_API enum dsnn_status dsnn_evaluate(struct dsnn_net *net, struct dsnn_data *data,
                                        enum dsnn_split split, const char *prefix,
                                        struct dsnn_metrics *m, struct dsnn_error *err);

#ifdef __cplusplus
}
#endif
#endif
