/* dsnn/optim.h - optimizers (SGD with momentum / Nesterov and weight decay, Adam) and learning-
 * rate schedules (StepLR, MultiStepLR), configured with nupic's key names. */
#ifndef DSNN_OPTIM_H
#define DSNN_OPTIM_H

#include <stdbool.h>
#include <stdio.h>
#include "dsnn/config.h"
#include "dsnn/keys.h"
#include "dsnn/net.h"

#ifdef __cplusplus
extern "C" {
#endif

enum dsnn_optim_alg { DSNN_OPTIM_SGD = 0, DSNN_OPTIM_ADAM = 1 };

struct dsnn_optim_cfg {
    enum dsnn_optim_alg alg;
    double learning_rate;
    double momentum;     /* SGD */
    bool nesterov;       /* SGD */
    double weight_decay; /* L2, added to the gradient (PyTorch semantics) */
    double beta1, beta2, eps; /* Adam */
};

/* Reads optim_alg ("SGD" | "Adam"), learning_rate, momentum, nesterov_momentum, weight_decay,
 * adam_beta1, adam_beta2, adam_eps from a model group. */
/* Their key specs (dsnn/keys.h), included by dsnn_base_model_keys. */
DSNN_API extern const struct dsnn_key_table dsnn_optim_keys;
DSNN_API enum dsnn_status dsnn_optim_cfg_read(const struct dsnn_cfg *cfg,
                                              struct dsnn_optim_cfg *out,
                                              struct dsnn_error *err);

struct dsnn_optim; /* opaque */
DSNN_API struct dsnn_optim *dsnn_optim_new(const struct dsnn_optim_cfg *cfg,
                                           struct dsnn_error *err);
DSNN_API void dsnn_optim_free(struct dsnn_optim *o);
DSNN_API void dsnn_optim_set_lr(struct dsnn_optim *o, double lr);
DSNN_API double dsnn_optim_lr(const struct dsnn_optim *o);
/* One update of every parameter block of every layer of net, from the gradients of the last
 * backward. State slots are allocated in the blocks on first use. */
DSNN_API enum dsnn_status dsnn_optim_step(struct dsnn_optim *o, struct dsnn_net *net,
                                          struct dsnn_error *err);
/* One update of a single block (used by dsnn_optim_step and by tests). */
DSNN_API enum dsnn_status dsnn_optim_step_block(struct dsnn_optim *o,
                                                struct dsnn_param_block *b,
                                                struct dsnn_error *err);
/* Checkpoint of the optimizer's own scalars (step count, lr). */
DSNN_API enum dsnn_status dsnn_optim_save(const struct dsnn_optim *o, FILE *f,
                                          struct dsnn_error *err);
DSNN_API enum dsnn_status dsnn_optim_load(struct dsnn_optim *o, FILE *f, struct dsnn_error *err);

/* Learning-rate schedules, applied per epoch. */
enum dsnn_lr_sched_type { DSNN_LR_CONSTANT = 0, DSNN_LR_STEP, DSNN_LR_MULTISTEP };
#define DSNN_LR_MILESTONES_MAX 32
struct dsnn_lr_sched {
    enum dsnn_lr_sched_type type;
    double base_lr;
    double gamma;
    int step_size;                          /* StepLR */
    int milestones[DSNN_LR_MILESTONES_MAX]; /* MultiStepLR, ascending */
    size_t n_milestones;
};
/* Reads lr_scheduler ("StepLR" | "MultiStepLR" | none), lr_step_size, lr_gamma, lr_milestones. */
DSNN_API extern const struct dsnn_key_table dsnn_lr_sched_keys;
DSNN_API enum dsnn_status dsnn_lr_sched_read(const struct dsnn_cfg *cfg, double base_lr,
                                             struct dsnn_lr_sched *out, struct dsnn_error *err);
/* Learning rate during epoch (0-based), as PyTorch's schedulers stepped once per epoch. */
DSNN_API double dsnn_lr_sched_at(const struct dsnn_lr_sched *s, int epoch);

#ifdef __cplusplus
}
#endif
#endif
