/* tests/plugins/never_called.h - a model ops table whose functions abort(): the plugins of the
 * refusal tests use it, so that a host that called into a refused plugin would crash the test. */
#ifndef DSNN_TESTS_NEVER_CALLED_H
#define DSNN_TESTS_NEVER_CALLED_H

#include <stdlib.h>
#include "dsnn/dsnn.h"

static inline enum dsnn_status never_create(const struct dsnn_cfg *cfg,
                                            const struct dsnn_run_ctx *ctx, struct dsnn_net *net,
                                            const struct dsnn_dataset_info *info, void **state,
                                            struct dsnn_error *err)
{
    (void)cfg, (void)ctx, (void)net, (void)info, (void)state, (void)err;
    abort();
}
static inline enum dsnn_status never_train_epoch(void *state, struct dsnn_data *data,
                                                 int epoch, struct dsnn_metrics *m,
                                                 struct dsnn_error *err)
{
    (void)state, (void)data, (void)epoch, (void)m, (void)err;
    abort();
}
static inline enum dsnn_status never_evaluate(void *state, struct dsnn_data *data,
                                              enum dsnn_split split, struct dsnn_metrics *m,
                                              struct dsnn_error *err)
{
    (void)state, (void)data, (void)split, (void)m, (void)err;
    abort();
}
static inline void never_destroy(void *state)
{
    (void)state;
    abort();
}

static const struct dsnn_key_spec never_keys[] = {
    {.name = "some_key", .type = DSNN_KEY_INT, .def = 1, .doc = "a documented key"},
};

#endif
