/* tests/plugins/duplicate.c - built twice (dup_a.so, dup_b.so) into one directory: both provide
 * model "dupmodel", so the second must be refused with a message naming both files. DUP_NAME is
 * the plugin name (set by CMake). */
#include "never_called.h"

#ifndef DUP_NAME
#define DUP_NAME "dup"
#endif

static const struct dsnn_model_ops ops = {
    .create = never_create,
    .train_epoch = never_train_epoch,
    .evaluate = never_evaluate,
    .destroy = never_destroy,
};
static const struct dsnn_component components[] = {
    DSNN_COMPONENT(DSNN_KIND_MODEL, "dupmodel", "1.0.0", "provided by " DUP_NAME, ops, never_keys),
};
DSNN_PLUGIN_DEFINE(DUP_NAME, components)
