/* template.c - a copy-and-rename starting point for a dsnn plugin (here: a model plugin).
 *
 * Steps:
 *   1. Copy this folder to plugins/<kind>s/<yourname>/ (e.g. plugins/models/mymodel/); adding a
 *      plugin touches only that folder.
 *   2. Rename this file, and in CMakeLists.txt replace `template` by your plugin name.
 *   3. Rename the `tmpl_` prefix and the component name "template" below.
 *   4. Document every configuration key you read in tmpl_keys[] (name, type, default, doc):
 *      `dsnn-host info <name>` prints them, and the host refuses keys that are not listed.
 *   5. Read keys only with the dsnn_cfg_* getters (dsnn/config.h): errors then name the file,
 *      the line and the key in the same style as every other plugin.
 *   6. Fill in the ops. Never exit(): return a status and describe the error with
 *      dsnn_error_set(err, ...). Random numbers come from dsnn_rng seeded with ctx->seed and a
 *      stream id, so that trials are reproducible.
 *   7. Build (cmake --build build) and check: dsnn-host --plugin-dir build/plugins info <name>.
 *   8. Add a blackbox test (tests/blackbox/) and an example config (configs/).
 *
 * The other kinds work the same way with struct dsnn_dataset_ops, dsnn_network_ops and
 * dsnn_search_ops (dsnn/plugin.h); see plugins/ for one real plugin of each kind. */
#include <dsnn/dsnn.h>

#include <stdlib.h>

struct tmpl_model {
    struct dsnn_base_model base; /* optimizer, LR schedule, epoch loop, checkpoint */
    double my_factor;
};

static const struct dsnn_key_spec tmpl_keys[] = {
    {.name = "plugin", .type = DSNN_KEY_STRING, .def_str = "template", .doc = "this plugin"},
    DSNN_BASE_MODEL_KEYS,
    {.name = "my_factor", .type = DSNN_KEY_FLOAT, .def = 1.0, .doc = "an example key of this plugin"},
};

static enum dsnn_status tmpl_create(const struct dsnn_cfg *cfg, const struct dsnn_run_ctx *ctx,
                                    struct dsnn_net *net, const struct dsnn_dataset_info *info,
                                    void **state, struct dsnn_error *err)
{
    struct tmpl_model *m = calloc(1, sizeof *m);
    if (!m)
        return dsnn_error_set(err, DSNN_ERR_NOMEM, "out of memory");
    enum dsnn_status st;
    if ((st = dsnn_cfg_float(cfg, "my_factor", 1.0, &m->my_factor, err)) ||
        (st = dsnn_cfg_check_range(cfg, "my_factor", m->my_factor, 0, 10, err)) ||
        (st = dsnn_base_model_configure(&m->base, cfg, ctx, net, err)) ||
        /* A sparse model would replace layers here (dsnn_net_replace) before init. */
        (st = dsnn_base_model_init_net(&m->base, info, err))) {
        dsnn_base_model_release(&m->base);
        free(m);
        return st;
    }
    *state = m;
    return DSNN_OK;
}

static enum dsnn_status tmpl_train_epoch(void *state, struct dsnn_data *data, int epoch,
                                         struct dsnn_metrics *metrics, struct dsnn_error *err)
{
    struct tmpl_model *m = state;
    enum dsnn_status st = dsnn_base_model_train_epoch(&m->base, data, epoch, NULL, metrics, err);
    if (st == DSNN_OK)
        dsnn_metrics_set(metrics, "my_factor", m->my_factor); /* any extra per-epoch metric */
    return st;
}

static enum dsnn_status tmpl_evaluate(void *state, struct dsnn_data *data, enum dsnn_split split,
                                      struct dsnn_metrics *metrics, struct dsnn_error *err)
{
    return dsnn_base_model_evaluate(&((struct tmpl_model *)state)->base, data, split, metrics,
                                    err);
}

static enum dsnn_status tmpl_save(void *state, FILE *f, struct dsnn_error *err)
{
    return dsnn_base_model_save(&((struct tmpl_model *)state)->base, f, err);
}

static enum dsnn_status tmpl_load(void *state, FILE *f, struct dsnn_error *err)
{
    return dsnn_base_model_load(&((struct tmpl_model *)state)->base, f, err);
}

static void tmpl_destroy(void *state)
{
    struct tmpl_model *m = state;
    if (!m)
        return;
    dsnn_base_model_release(&m->base);
    free(m);
}

static const struct dsnn_model_ops tmpl_ops = {
    .create = tmpl_create,
    .train_epoch = tmpl_train_epoch,
    .evaluate = tmpl_evaluate,
    .save = tmpl_save,
    .load = tmpl_load,
    .destroy = tmpl_destroy,
};

static const struct dsnn_component tmpl_components[] = {
    DSNN_COMPONENT(DSNN_KIND_MODEL, "template", "0.1.0", "A template model plugin", tmpl_ops,
                   tmpl_keys),
};

DSNN_PLUGIN_DEFINE("template", tmpl_components)
