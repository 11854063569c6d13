/* tests/plugins/newer_minor.c - a plugin built against a newer minor (DSNN_ABI_MINOR + 1) of
 * this ABI: it may rely on ops this host lacks, so the host must refuse it. */
#include "never_called.h"

static const struct dsnn_model_ops ops = {
    .create = never_create,
    .train_epoch = never_train_epoch,
    .evaluate = never_evaluate,
    .destroy = never_destroy,
};
static const struct dsnn_component components[] = {
    DSNN_COMPONENT(DSNN_KIND_MODEL, "newminor", "1.0.0", "built for a newer ABI minor", ops,
                   never_keys),
};

DSNN_PLUGIN_EXPORT const struct dsnn_plugin *dsnn_plugin_entry(void);
DSNN_PLUGIN_EXPORT const struct dsnn_plugin *dsnn_plugin_entry(void)
{
    static const struct dsnn_plugin plugin = {
        DSNN_ABI_MAJOR, DSNN_ABI_MINOR + 1, (uint32_t)sizeof(struct dsnn_plugin), "newer_minor",
        components, DSNN_COUNT_OF(components)};
    return &plugin;
}
