/* tests/plugins/no_entry_symbol.c - a shared object that exports a misspelt entry point only. */
#include "never_called.h"

static const struct dsnn_model_ops ops = {
    .create = never_create,
    .train_epoch = never_train_epoch,
    .evaluate = never_evaluate,
    .destroy = never_destroy,
};
static const struct dsnn_component components[] = {
    DSNN_COMPONENT(DSNN_KIND_MODEL, "noentry", "1.0.0", "exports the wrong symbol", ops,
                   never_keys),
};

DSNN_PLUGIN_EXPORT const struct dsnn_plugin *dsnn_plugin_entry_v1(void);
DSNN_PLUGIN_EXPORT const struct dsnn_plugin *dsnn_plugin_entry_v1(void)
{
    static const struct dsnn_plugin plugin = {DSNN_ABI_MAJOR, DSNN_ABI_MINOR,
                                              (uint32_t)sizeof(struct dsnn_plugin), "noentry",
                                              components, DSNN_COUNT_OF(components)};
    return &plugin;
}
