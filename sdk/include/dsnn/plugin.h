/* dsnn/plugin.h - the plugin ABI.
 *
 * A plugin is a shared object that exports exactly one symbol, dsnn_plugin_entry, returning a
 * pointer to a static const struct dsnn_plugin. Write it with DSNN_PLUGIN_DEFINE:
 *
 *     static const struct dsnn_component components[] = {
 *         DSNN_COMPONENT(DSNN_KIND_MODEL, "mymodel", "1.0", "What it does", my_ops, my_keys),
 *     };
 *     DSNN_PLUGIN_DEFINE("mymodel", components)
 *
 * The host reads abi_major / abi_minor first and refuses the plugin, naming the file and both
 * versions, when the major differs or the minor is newer than the host's, before it calls
 * anything else. Ops tables and this header's structs are append-only; each component carries
 * the size of its ops table so that an older plugin (smaller table) still loads and a missing
 * trailing function reads as NULL. sdk/template/template.c is a copy-and-rename plugin with
 * numbered steps. */
#ifndef DSNN_PLUGIN_H
#define DSNN_PLUGIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "dsnn/config.h"
#include "dsnn/data.h"
#include "dsnn/export.h"
#include "dsnn/keys.h"
#include "dsnn/metrics.h"
#include "dsnn/net.h"
#include "dsnn/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ABI 3.0 (SDK 0.3.0): per-epoch batch_size_test and train_batches_per_epoch (struct
 * dsnn_split_options / dsnn_split_cursor hold schedules; struct dsnn_data records the epoch of
 * an evaluation), nupic's per-batch coactivation average (struct dsnn_coact_options.average,
 * struct dsnn_coact_keys.average and .alpha: moving_average_alpha is one of DSNN_COACT_KEYS;
 * dsnn_coact_keys_check and dsnn_coact_train_epoch lost their alpha). A plugin built for ABI 2
 * must be rebuilt.
 * ABI 3.1 (SDK 0.3.1) adds, compatibly: struct dsnn_sample_store with dsnn_sample_store_begin /
 * _next_batch / _free (begin and next_batch of a dataset that serves one sample at a time), the
 * holdout keys (DSNN_HOLDOUT_KEYS, dsnn_holdout_read, dsnn_holdout_cut) and
 * dsnn_cfg_count_error. */
#define DSNN_ABI_MAJOR 3
#define DSNN_ABI_MINOR 1
#define DSNN_PLUGIN_ENTRY_SYMBOL "dsnn_plugin_entry"

/* Values are part of the ABI: append only. */
enum dsnn_kind {
    DSNN_KIND_DATASET = 1,
    DSNN_KIND_NETWORK = 2,
    DSNN_KIND_MODEL = 3,
    DSNN_KIND_SEARCH = 4
};
DSNN_API const char *dsnn_kind_str(enum dsnn_kind k); /* "dataset", ... or "unknown" */

/* Configuration keys (type, default, range, doc, where the value goes): dsnn/keys.h. Until ABI
 * 2.0 a component listed struct dsnn_key_doc {name, type, default text, doc}; struct
 * dsnn_key_spec starts with the same four fields, so such positional tables still compile. */

/* Context of the trial a component runs in. */
struct dsnn_run_ctx {
    uint64_t seed;          /* trial seed: derive streams with dsnn_rng_seed(&r, seed, stream) */
    int trial_index;
    int epochs;             /* experiment.epochs */
    int n_threads;
    const char *trial_dir;  /* where the component may write files (may be NULL in tests) */
    FILE *log;              /* human-readable log of the trial (never NULL) */
};

/* ---- dataset ---- */
struct dsnn_dataset_ops {
    /* Opens the dataset described by cfg (the `dataset` group) and fills info. */
    enum dsnn_status (*open)(const struct dsnn_cfg *cfg, const struct dsnn_run_ctx *ctx,
                             void **state, struct dsnn_dataset_info *info,
                             struct dsnn_error *err);
    /* Starts an epoch of a split. The train order is a deterministic function of
     * (ctx->seed, epoch). */
    enum dsnn_status (*begin)(void *state, enum dsnn_split split, int epoch,
                              struct dsnn_error *err);
    /* Next batch of the current split; b->n == 0 when the split is exhausted. */
    enum dsnn_status (*next_batch)(void *state, struct dsnn_batch *b, struct dsnn_error *err);
    void (*close)(void *state);
};

/* ---- network ---- */
struct dsnn_network_ops {
    /* Builds (not initialises) the layers for samples of `input` shape and n_classes outputs. */
    enum dsnn_status (*build)(const struct dsnn_cfg *cfg, const struct dsnn_run_ctx *ctx,
                              struct dsnn_shape input, int n_classes, struct dsnn_net **out,
                              struct dsnn_error *err);
};

/* ---- model (training scheme) ---- */
struct dsnn_model_ops {
    /* Takes the built network (not owned: the host frees it after destroy), may replace layers
     * (e.g. by sparse ones), and must initialise it with dsnn_net_init. */
    enum dsnn_status (*create)(const struct dsnn_cfg *cfg, const struct dsnn_run_ctx *ctx,
                               struct dsnn_net *net, const struct dsnn_dataset_info *info,
                               void **state, struct dsnn_error *err);
    /* Trains one epoch (0-based); fills train_loss, train_acc, learning_rate and its own metrics
     * (density per layer, pruned/grown counts ...). */
    enum dsnn_status (*train_epoch)(void *state, struct dsnn_data *data, int epoch,
                                    struct dsnn_metrics *m, struct dsnn_error *err);
    /* Evaluates a split: val_loss / val_acc for DSNN_SPLIT_TEST, noise_* for the noise split. */
    enum dsnn_status (*evaluate)(void *state, struct dsnn_data *data, enum dsnn_split split,
                                 struct dsnn_metrics *m, struct dsnn_error *err);
    /* Checkpoint of everything needed to continue training exactly (may be NULL). */
    enum dsnn_status (*save)(void *state, FILE *f, struct dsnn_error *err);
    enum dsnn_status (*load)(void *state, FILE *f, struct dsnn_error *err);
    void (*destroy)(void *state);
    /* Optional (ABI 2.1): the end of the epoch, after its evaluation, as nupic's post-epoch
     * updates: the prune / regrow round and the metrics that follow it. *rewired: the
     * topology or the weights changed (the host evaluates again: val_acc_after_rewire /
     * val_loss_after_rewire). NULL: train_epoch does everything before the evaluation. */
    enum dsnn_status (*end_epoch)(void *state, struct dsnn_data *data, int epoch,
                                  struct dsnn_metrics *m, bool *rewired, struct dsnn_error *err);
};

/* ---- search strategy ---- */
#define DSNN_PARAM_PATH_MAX 128
#define DSNN_PARAMS_MAX 32

/* One override of the configuration: dotted path (e.g. "model.on_perc") and value. */
struct dsnn_param {
    char path[DSNN_PARAM_PATH_MAX];
    struct dsnn_value value;
};
struct dsnn_param_set {
    size_t n;
    struct dsnn_param items[DSNN_PARAMS_MAX];
};
/* Adds or replaces path in s; DSNN_ERR_INVALID when full or the path is too long. */
DSNN_API enum dsnn_status dsnn_param_set_put(struct dsnn_param_set *s, const char *path,
                                             const struct dsnn_value *v, struct dsnn_error *err);

struct dsnn_search_ctx {
    uint64_t seed;       /* experiment seed */
    int num_samples;     /* experiment.num_samples */
    int max_epochs;      /* experiment.epochs */
    const char *metric;  /* experiment.metric, e.g. "val_acc" */
    bool maximize;       /* experiment.mode == "max" */
};

enum dsnn_search_decision {
    DSNN_SEARCH_CONTINUE = 0,
    DSNN_SEARCH_STOP = 1,   /* stop this trial early (ASHA, median stop) */
    DSNN_SEARCH_PAUSE = 2,
    DSNN_SEARCH_PERTURB = 3 /* PBT: exploit/explore */
};

struct dsnn_search_ops {
    /* cfg is the `search` group; the root of the configuration is reachable for validation. */
    enum dsnn_status (*create)(const struct dsnn_cfg *cfg, const struct dsnn_search_ctx *ctx,
                               void **state, struct dsnn_error *err);
    /* Proposes trial `trial_index` (0, 1, 2 ...). Sets *done when there is no further trial. */
    enum dsnn_status (*suggest)(void *state, int trial_index, struct dsnn_param_set *out,
                                bool *done, struct dsnn_error *err);
    /* A trial reported an epoch (0-based). */
    enum dsnn_search_decision (*on_result)(void *state, int trial_index, int epoch,
                                           const struct dsnn_metrics *m);
    /* A trial ended (error = true if it failed). */
    void (*on_complete)(void *state, int trial_index, bool error);
    /* Saves / restores the strategy's state (may be NULL: the host then replays the journal). */
    enum dsnn_status (*save)(void *state, FILE *f, struct dsnn_error *err);
    enum dsnn_status (*restore)(void *state, FILE *f, struct dsnn_error *err);
    void (*destroy)(void *state);
    /* PBT: after on_result returned DSNN_SEARCH_PERTURB for trial_index, the host asks which
     * trial's latest checkpoint to continue from (*source_trial; may be trial_index itself) and
     * with which parameters (new_params: the complete searched set for the trial from now on).
     * May be NULL for strategies that never perturb. */
    enum dsnn_status (*exploit)(void *state, int trial_index, int *source_trial,
                                struct dsnn_param_set *new_params, struct dsnn_error *err);
};

/* ---- descriptor ---- */
struct dsnn_component {
    enum dsnn_kind kind;
    const char *name;        /* registry key with kind, e.g. "idx" */
    const char *version;     /* the component's own version, e.g. "1.0.0" */
    const char *description; /* one line */
    const void *ops;         /* struct dsnn_<kind>_ops */
    size_t ops_size;         /* sizeof the ops table the plugin was built with */
    const struct dsnn_key_spec *keys; /* dsnn/keys.h; DSNN_KEY_INCLUDE entries are expanded */
    size_t n_keys;
};

struct dsnn_plugin {
    uint32_t abi_major; /* first: read before anything else */
    uint32_t abi_minor;
    uint32_t struct_size; /* sizeof(struct dsnn_plugin) at build time */
    const char *name;
    const struct dsnn_component *components;
    size_t n_components;
};

typedef const struct dsnn_plugin *(*dsnn_plugin_entry_fn)(void);

#define DSNN_COUNT_OF(a) (sizeof(a) / sizeof((a)[0]))

/* A component entry: ops is an object (not a pointer) of type struct dsnn_<kind>_ops,
 * keys an array of struct dsnn_key_spec. */
#define DSNN_COMPONENT(kind, name, version, description, ops, keys)                              \
    { (kind), (name), (version), (description), &(ops), sizeof(ops), (keys), DSNN_COUNT_OF(keys) }

#define DSNN_PLUGIN_DEFINE(plugin_name, components_array)                                         \
    DSNN_PLUGIN_EXPORT const struct dsnn_plugin *dsnn_plugin_entry(void);                         \
    DSNN_PLUGIN_EXPORT const struct dsnn_plugin *dsnn_plugin_entry(void)                          \
    {                                                                                             \
        static const struct dsnn_plugin plugin = {                                                \
            DSNN_ABI_MAJOR, DSNN_ABI_MINOR, (uint32_t)sizeof(struct dsnn_plugin), (plugin_name),  \
            (components_array), DSNN_COUNT_OF(components_array)};                                 \
        return &plugin;                                                                           \
    }

/* A plugin of one component, its ops table given by designated initializers:
 *
 *     DSNN_DATASET_PLUGIN("gsc", "1.0.0", "Google Speech Commands ...", gsc_keys,
 *                         .open = gsc_open, .begin = gsc_begin, .next_batch = gsc_next_batch,
 *                         .close = gsc_close)
 *
 * defines the ops table, the component array and dsnn_plugin_entry (use DSNN_COMPONENT and
 * DSNN_PLUGIN_DEFINE for a plugin of several components). Members left out are NULL. */
#define DSNN_PLUGIN_ONE(kind, ops_type, name, version, description, keys, ...)                    \
    static const ops_type dsnn_plugin_one_ops = {__VA_ARGS__};                                  \
    static const struct dsnn_component dsnn_plugin_one_components[] = {                          \
        DSNN_COMPONENT(kind, name, version, description, dsnn_plugin_one_ops, keys)};           \
    DSNN_PLUGIN_DEFINE(name, dsnn_plugin_one_components)

#define DSNN_DATASET_PLUGIN(name, version, description, keys, ...)                                \
    DSNN_PLUGIN_ONE(DSNN_KIND_DATASET, struct dsnn_dataset_ops, name, version, description, keys, \
                    __VA_ARGS__)
#define DSNN_NETWORK_PLUGIN(name, version, description, keys, ...)                                \
    DSNN_PLUGIN_ONE(DSNN_KIND_NETWORK, struct dsnn_network_ops, name, version, description, keys, \
                    __VA_ARGS__)
#define DSNN_SEARCH_PLUGIN(name, version, description, keys, ...)                                 \
    DSNN_PLUGIN_ONE(DSNN_KIND_SEARCH, struct dsnn_search_ops, name, version, description, keys,   \
                    __VA_ARGS__)

#ifdef __cplusplus
}
#endif
#endif
