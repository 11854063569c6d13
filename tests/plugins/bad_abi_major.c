/* tests/plugins/bad_abi_major.c - a plugin built for ABI major DSNN_ABI_MAJOR + 1 (descriptor
 * written by hand, not with DSNN_PLUGIN_DEFINE). The host must refuse it without calling it. */
#include "never_called.h"

static const struct dsnn_model_ops ops = {
    .create = never_create,
    .train_epoch = never_train_epoch,
    .evaluate = never_evaluate,
    .destroy = never_destroy,
};
static const struct dsnn_component components[] = {
    DSNN_COMPONENT(DSNN_KIND_MODEL, "badmajor", "1.0.0", "built for a future ABI major", ops,
                   never_keys),
};

DSNN_PLUGIN_EXPORT const struct dsnn_plugin *dsnn_plugin_entry(void);
DSNN_PLUGIN_EXPORT const struct dsnn_plugin *dsnn_plugin_entry(void)
{
    static const struct dsnn_plugin plugin = {
        DSNN_ABI_MAJOR + 1, 0, (uint32_t)sizeof(struct dsnn_plugin), "bad_abi_major", components,
        DSNN_COUNT_OF(components)};
    return &plugin;
}
