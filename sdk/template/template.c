/* template.c - a copy-and-rename starting point for a dsnn plugin (here: a model plugin, a
 * pruning scheme written with the scheme kit of dsnn/scheme.h).
 *
 * Steps:
 *   1. Copy this folder to plugins/<kind>s/<yourname>/ (e.g. plugins/models/mymodel/); adding a
 *      plugin touches only that folder (this file and CMakeLists.txt).
 *   2. Rename this file, and in CMakeLists.txt replace `template` by your plugin name.
 *   3. Rename the `tmpl_` prefix and the component name "template" below.
 *   4. Declare every configuration key once in tmpl_keys[] (dsnn/keys.h): type, default, range
 *      or choices, doc, and DSNN_KEY_AT(struct, field) for the keys the kit reads into your
 *      parameter struct. `dsnn-host info <name>` prints them, the host checks every trial's
 *      values against them before any trial starts, and refuses keys that are not listed.
 *      Checks across keys (e.g. against experiment.epochs) go in a configure callback.
 *   5. Fill in the callbacks of struct dsnn_scheme you need (every one may be NULL): the kit
 *      supplies create / train_epoch / evaluate / save / load / destroy. Never exit(): return a
 *      status and describe the error with dsnn_error_set(err, ...). Random draws of topology
 *      edits come from dsnn_sparse_model_topo_rng(sm) (the trial's topology stream, part of the
 *      checkpoint), so that trials are reproducible and resume bit for bit.
 *   6. Build (cmake --build build) and check: dsnn-host --plugin-dir build/plugins info <name>.
 *   7. Add a blackbox test (tests/blackbox/) and an example config (configs/).
 *
 * A dense model: .flags = DSNN_SCHEME_DENSE (no sparse layers; see plugins/models/dense). Step-
 * wise schemes use after_backward / after_step (plugins/models/rigl, dsr), start-of-epoch ones
 * begin_epoch (pruning), coactivation-driven ones dsnn_scheme_track_coact (dsnn-mixed-heb).
 * The other kinds of plugin fill struct dsnn_dataset_ops, dsnn_network_ops or dsnn_search_ops
 * (dsnn/plugin.h) and list them with DSNN_COMPONENT; see plugins/ for one of each kind. */
#include <dsnn/dsnn.h>

struct tmpl_params {
    double my_fraction; /* read from the key of the same name */
};

static const struct dsnn_key_spec tmpl_keys[] = {
    DSNN_SCHEME_KEYS("template"), /* plugin; optimizer and lr schedule; sparse layers, density */
    DSNN_PRUNE_SCHEDULE_KEYS, /* pruning_interval, pruning_early_stop */
    {.name = "my_fraction", .type = DSNN_KEY_FLOAT, .def = 0.1, DSNN_KEY_RANGE(0, 1),
     DSNN_KEY_AT(struct tmpl_params, my_fraction),
     .doc = "fraction of each sparse layer's connections (smallest |w|) replaced each round"},
};

/* The prune rule of a round: removes my_fraction of a sparse layer's connections, those of
 * smallest |w|, and says how many. */
static enum dsnn_status tmpl_prune(const void *params, struct dsnn_layer *l, size_t *removed,
                                   struct dsnn_error *err)
{
    const struct tmpl_params *p = params;
    *removed = (size_t)(p->my_fraction * (double)dsnn_sparse_nnz(l));
    return dsnn_sparse_prune_magnitude(l, *removed, err);
}

/* The round, after the training pass of every epoch the prune schedule says: in one update
 * bracket (which logs pruned_<layer>, grown_<layer>, surviving_synapses_<layer> and the
 * density), prune every sparse layer that is not full by tmpl_prune and regrow as many
 * connections at random (dsnn_scheme_random_round; write the bracket yourself for other growth:
 * dsnn_sparse_model_update_begin / _pruned / _end, see dsnn/sparse_model.h). */
static enum dsnn_status tmpl_round(struct dsnn_sparse_model *sm, void *params, int epoch,
                                   struct dsnn_metrics *metrics, struct dsnn_error *err)
{
    (void)epoch;
    const struct tmpl_params *p = params;
    dsnn_metrics_set(metrics, "my_fraction", p->my_fraction); /* any extra per-epoch metric */
    return dsnn_scheme_random_round(sm, params, tmpl_prune, metrics, err);
}

/* The plugin: the scheme's members in place (every callback may be left out: .configure, .init,
 * .begin_epoch, .after_backward, .end_epoch, .tag / .state (a checkpoint section of members of
 * your parameter struct, after the model's), .save / .load (any other state), .destroy; see
 * dsnn/scheme.h). */
DSNN_MODEL_PLUGIN("template", "0.1.0", "A template model plugin: magnitude prune, random regrow",
                  tmpl_keys, .params_size = sizeof(struct tmpl_params),
                  .flags = DSNN_SCHEME_PRUNE_SCHEDULE, .round = tmpl_round)
