/* tests/plugins/tiny_model.h - plain SGD/Adam training shared by the test models "okmodel" and
 * "crash" (compiled into each of the two plugins; nothing here is exported). */
#ifndef DSNN_TESTS_TINY_MODEL_H
#define DSNN_TESTS_TINY_MODEL_H

#include "dsnn/dsnn.h"

/* Key docs of what tiny_model_create reads (optimizer and LR schedule keys of dsnn/optim.h). */
#define TINY_MODEL_KEYS                                                                           \
    {.name = "optim_alg", .type = DSNN_KEY_STRING, .default_value = "SGD", .doc = "optimizer: \"SGD\" or \"Adam\""},                      \
        {.name = "learning_rate", .type = DSNN_KEY_FLOAT, .def = 0.1, .doc = "learning rate"},                                \
        {.name = "momentum", .type = DSNN_KEY_FLOAT, .def = 0.0, .doc = "SGD momentum"},                                      \
        {.name = "nesterov_momentum", .type = DSNN_KEY_BOOL, .def = false, .doc = "Nesterov momentum"},                       \
        {.name = "weight_decay", .type = DSNN_KEY_FLOAT, .def = 0.0, .doc = "L2 weight decay"},                               \
        {.name = "adam_beta1", .type = DSNN_KEY_FLOAT, .def = 0.9, .doc = "Adam beta1"},                                      \
        {.name = "adam_beta2", .type = DSNN_KEY_FLOAT, .def = 0.999, .doc = "Adam beta2"},                                    \
        {.name = "adam_eps", .type = DSNN_KEY_FLOAT, .def = 1e-8, .doc = "Adam epsilon"},                                     \
        {.name = "lr_scheduler", .type = DSNN_KEY_STRING, .default_value = "none", .doc = "\"StepLR\", \"MultiStepLR\" or none"},          \
        {.name = "lr_step_size", .type = DSNN_KEY_INT, .def = 1, .doc = "StepLR period in epochs"},                           \
        {.name = "lr_gamma", .type = DSNN_KEY_FLOAT, .def = 0.1, .doc = "LR decay factor"},                                   \
        {.name = "lr_milestones", .type = DSNN_KEY_INT_ARRAY, .doc = "MultiStepLR epochs"}

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
