/* tests/plugins/tiny_model.h - plain SGD/Adam training shared by the test models "okmodel" and
 * "crash" (compiled into each of the two plugins; nothing here is exported). */
#ifndef DSNN_TESTS_TINY_MODEL_H
#define DSNN_TESTS_TINY_MODEL_H

#include "dsnn/dsnn.h"

/* Key docs of what tiny_model_create reads (optimizer and LR schedule keys of dsnn/optim.h). */
#define TINY_MODEL_KEYS                                                                           \
    {"optim_alg", DSNN_KEY_STRING, "SGD", "optimizer: \"SGD\" or \"Adam\""},                      \
        {"learning_rate", DSNN_KEY_FLOAT, "0.1", "learning rate"},                                \
        {"momentum", DSNN_KEY_FLOAT, "0.0", "SGD momentum"},                                      \
        {"nesterov_momentum", DSNN_KEY_BOOL, "false", "Nesterov momentum"},                       \
        {"weight_decay", DSNN_KEY_FLOAT, "0.0", "L2 weight decay"},                               \
        {"adam_beta1", DSNN_KEY_FLOAT, "0.9", "Adam beta1"},                                      \
        {"adam_beta2", DSNN_KEY_FLOAT, "0.999", "Adam beta2"},                                    \
        {"adam_eps", DSNN_KEY_FLOAT, "1e-8", "Adam epsilon"},                                     \
        {"lr_scheduler", DSNN_KEY_STRING, "none", "\"StepLR\", \"MultiStepLR\" or none"},          \
        {"lr_step_size", DSNN_KEY_INT, "1", "StepLR period in epochs"},                           \
        {"lr_gamma", DSNN_KEY_FLOAT, "0.1", "LR decay factor"},                                   \
        {"lr_milestones", DSNN_KEY_INT_ARRAY, "[]", "MultiStepLR epochs"}

struct tiny_model {
    struct dsnn_net *net; /* not owned */
    struct dsnn_optim *opt;
    struct dsnn_lr_sched sched;
    int64_t step;
    int trial_index;
    void *extra; /* free()d by tiny_model_destroy */
};

enum dsnn_status tiny_model_create(const struct dsnn_cfg *cfg, const struct dsnn_run_ctx *ctx,
                                   struct dsnn_net *net, const struct dsnn_dataset_info *info,
                                   void **state, struct dsnn_error *err);
enum dsnn_status tiny_model_train_epoch(void *state, struct dsnn_data *data, int epoch,
                                        struct dsnn_metrics *m, struct dsnn_error *err);
enum dsnn_status tiny_model_evaluate(void *state, struct dsnn_data *data, enum dsnn_split split,
                                     struct dsnn_metrics *m, struct dsnn_error *err);
enum dsnn_status tiny_model_save(void *state, FILE *f, struct dsnn_error *err);
enum dsnn_status tiny_model_load(void *state, FILE *f, struct dsnn_error *err);
void tiny_model_destroy(void *state);

#endif
