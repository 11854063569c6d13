/* dsnn/train.h - building blocks of supervised training shared by model plugins. */
#ifndef DSNN_TRAIN_H
#define DSNN_TRAIN_H

#include <stdint.h>
#include "dsnn/data.h"
#include "dsnn/metrics.h"
#include "dsnn/net.h"
#include "dsnn/optim.h"
#include "dsnn/plugin.h"

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

/* ---- The base model (nupic BaseModel): optimizer + LR schedule + epoch loop ----
 * The sparse model (dsnn/sparse_model.h) is built on it; schemes reach it through
 * dsnn_sparse_model_base and the accessors below. */
struct dsnn_base_model; /* opaque: the accessors below */

/* The keys dsnn_base_model_new reads, as one entry of a plugin's key table:
 *     static const struct dsnn_key_spec keys[] = { {"plugin", ...}, DSNN_BASE_MODEL_KEYS, ... }; */
#define DSNN_BASE_MODEL_KEYS DSNN_KEYS_FROM(dsnn_base_model_keys)
/* The keys of the base model: dsnn_optim_keys (optim_alg, learning_rate, momentum,
 * nesterov_momentum, weight_decay, adam_beta1, adam_beta2, adam_eps) then dsnn_lr_sched_keys
 * (lr_scheduler, lr_gamma, lr_step_size, lr_milestones); `dsnn-host info dense` prints them. */
DSNN_API extern const struct dsnn_key_table dsnn_base_model_keys;

/* Reads the DSNN_BASE_MODEL_KEYS from cfg and creates the optimizer for net (not owned; not
 * initialised here). NULL on error (err says why: a key's problem is DSNN_ERR_CONFIG naming it).
 * ctx may be NULL (seed 0). Free with dsnn_base_model_free. */
DSNN_API struct dsnn_base_model *dsnn_base_model_new(const struct dsnn_cfg *cfg,
                                                    const struct dsnn_run_ctx *ctx,
                                                    struct dsnn_net *net, struct dsnn_error *err);
DSNN_API void dsnn_base_model_free(struct dsnn_base_model *bm); /* not the net; NULL is a no-op */
/* Initialises net's parameters from the trial's init stream, with buffers for the dataset's
 * largest batch. */
DSNN_API enum dsnn_status dsnn_base_model_init_net(struct dsnn_base_model *bm,
                                                   const struct dsnn_dataset_info *info,
                                                   struct dsnn_error *err);
/* Sets the epoch's learning rate, trains one epoch; metrics train_loss, train_acc, learning_rate. */
DSNN_API enum dsnn_status dsnn_base_model_train_epoch(struct dsnn_base_model *bm,
                                                      struct dsnn_data *data, int epoch,
                                                      const struct dsnn_train_hooks *hooks,
                                                      struct dsnn_metrics *m,
                                                      struct dsnn_error *err);
/* val_* for the test split, noise_* for the noise split, train_eval_* for the train split. */
DSNN_API enum dsnn_status dsnn_base_model_evaluate(struct dsnn_base_model *bm,
                                                   struct dsnn_data *data, enum dsnn_split split,
                                                   struct dsnn_metrics *m, struct dsnn_error *err);
/* Checkpoint: network (weights, topology, optimizer state slots), optimizer scalars, step. */
DSNN_API enum dsnn_status dsnn_base_model_save(struct dsnn_base_model *bm, FILE *f,
                                               struct dsnn_error *err);
DSNN_API enum dsnn_status dsnn_base_model_load(struct dsnn_base_model *bm, FILE *f,
                                               struct dsnn_error *err);

/* Accessors, for schemes (dsnn/scheme.h) that look into their base model. */
DSNN_API struct dsnn_net *dsnn_base_model_net(const struct dsnn_base_model *bm);
DSNN_API int64_t dsnn_base_model_step(const struct dsnn_base_model *bm); /* optimizer steps so far */
DSNN_API const struct dsnn_optim_cfg *dsnn_base_model_optim_cfg(const struct dsnn_base_model *bm);
DSNN_API struct dsnn_optim *dsnn_base_model_optim(const struct dsnn_base_model *bm);
DSNN_API const struct dsnn_lr_sched *dsnn_base_model_lr_sched(const struct dsnn_base_model *bm);
/* Replaces the optimizer by a fresh one of the same configuration (state and step count of the
 * optimizer reset; the parameters' state slots are the network's and are left alone). */
DSNN_API enum dsnn_status dsnn_base_model_reset_optim(struct dsnn_base_model *bm,
                                                      struct dsnn_error *err);

#ifdef __cplusplus
}
#endif
#endif
