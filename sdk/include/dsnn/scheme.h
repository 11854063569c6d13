/* dsnn/scheme.h - the scheme kit: a model plugin described by one const struct.
 *
 * A training / pruning scheme names the size of its parameter struct (its keys and its own
 * state), a few callbacks, and its key table; libdsnn supplies the model plugin around them
 * (struct dsnn_model_ops: create, train_epoch, evaluate, save, load, destroy):
 *
 *     struct my_params { double weight_prune_perc; };
 *     static const struct dsnn_key_spec my_keys[] = {
 *         DSNN_SCHEME_KEYS("mine"), DSNN_PRUNE_SCHEDULE_KEYS,
 *         {.name = "weight_prune_perc", .type = DSNN_KEY_FLOAT, .def = 0.3, DSNN_KEY_RANGE(0, 1),
 *          DSNN_KEY_AT(struct my_params, weight_prune_perc), .doc = "..."},
 *     };
 *     static enum dsnn_status my_round(struct dsnn_sparse_model *sm, void *params, int epoch,
 *                                      struct dsnn_metrics *m, struct dsnn_error *err)
 *     { ... dsnn_sparse_model_update_begin / _pruned / _end ... }
 *     DSNN_MODEL_PLUGIN("mine", "1.0.0", "one line", my_keys,
 *                       .params_size = sizeof(struct my_params),
 *                       .flags = DSNN_SCHEME_PRUNE_SCHEDULE, .round = my_round)
 *
 * (DSNN_MODEL_PLUGIN is the scheme object and DSNN_SCHEME_PLUGIN: DSNN_SCHEME_DEFINE, a
 * component array of one DSNN_SCHEME_COMPONENT and DSNN_PLUGIN_DEFINE; use those for a plugin of
 * several components.)
 *
 * create: the base model and (unless DSNN_SCHEME_DENSE) the sparse model read their keys and
 * replace the chosen linear layers of the network by sparse ones; the parameter struct (zeroed)
 * gets every key of the table that has DSNN_KEY_AT (dsnn_keys_read: defaults, types, ranges and
 * choices; the ranges of the keys without DSNN_KEY_AT are checked too); with
 * DSNN_SCHEME_PRUNE_SCHEDULE the prune schedule is read (pruning_interval, pruning_early_stop);
 * then configure, the network's initialisation, and init.
 *
 * train_epoch (epoch e, 0-based), in this order:
 *     begin_epoch(e, &train_epoch)          train_epoch = e unless the callback changes it
 *     the training pass of the base model at train_epoch (learning rate, train_loss, train_acc),
 *       calling after_forward / after_backward / after_step and counting coactivations
 *     DSNN_SCHEME_PRUNE_SCHEDULE: pruning_active = dsnn_prune_schedule_active(e); round(e) when
 *       it is, else the idle counts (dsnn_sparse_model_log_idle)
 *     end_epoch(e)
 *     DSNN_SCHEME_LOG_IDLE: the idle counts, when no update bracket ended during this epoch
 *     the density (dsnn_sparse_model_log_density: density_<layer>, nnz_<layer>, density_total,
 *       n_params; a dense scheme logs n_params only)
 *
 * The checkpoint is the base model's (dense) or the sparse model's (dsnn_sparse_model_save), then
 * the coactivation history (if tracked), then the scheme's tag and state members (declared in
 * struct dsnn_scheme: the kit writes and reads them), then what the scheme's save writes. Every
 * callback may be NULL. A callback's params is the scheme's parameter struct. */
#ifndef DSNN_SCHEME_H
#define DSNN_SCHEME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "dsnn/export.h"
#include "dsnn/keys.h"
#include "dsnn/plugin.h"
#include "dsnn/sparse_model.h"
#include "dsnn/train.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The head of a sparse scheme's key table: `plugin` (name), the base model's keys (optimizer,
 * learning-rate schedule) and the sparse model's (which layers are sparse, initial density and
 * weights). */
#define DSNN_SCHEME_KEYS(plugin_name)                                                             \
    DSNN_KEY_PLUGIN(plugin_name), DSNN_BASE_MODEL_KEYS, DSNN_SPARSE_MODEL_KEYS

/* struct dsnn_scheme.flags */
enum {
    DSNN_SCHEME_DENSE = 1u << 0,          /* the base model alone: no sparse layers, no SMOD part */
    DSNN_SCHEME_PRUNE_SCHEDULE = 1u << 1, /* round() after the training pass of the epochs of the
                                           * prune schedule (DSNN_PRUNE_SCHEDULE_KEYS) */
    DSNN_SCHEME_LOG_IDLE = 1u << 2,       /* after end_epoch of an epoch in which no update
                                           * bracket ended (e.g. start-of-epoch rounds not due),
                                           * the idle counts (dsnn_sparse_model_log_idle) */
};

/* A member of the scheme's parameter struct that is part of the checkpoint (struct
 * dsnn_scheme.state): size bytes at offset, or with per_layer an array of which the first
 * n_layers elements of size bytes (one per sparse layer) are. Written and read as raw bytes;
 * what names it in I/O errors. Values are part of the ABI: fields are only ever appended. */
struct dsnn_scheme_state {
    const char *what;
    size_t offset, size;
    bool per_layer;
};
/* The state entry of member of the parameter struct type (a scalar or a struct). */
#define DSNN_SCHEME_STATE(type, member, what)                                                     \
    {(what), offsetof(type, member), sizeof(((type *)0)->member), false}
/* The state entry of the per-sparse-layer array member (DSNN_SPARSE_MODEL_MAX_LAYERS elements)
 * of type: its first n_layers elements. */
#define DSNN_SCHEME_STATE_PER_LAYER(type, member, what)                                           \
    {(what), offsetof(type, member), sizeof(((type *)0)->member[0]), true}

/* Values are part of the ABI: fields are only ever appended. */
struct dsnn_scheme {
    size_t params_size; /* the parameter struct: the keys read into it and the scheme's state */
    unsigned flags;     /* DSNN_SCHEME_* */
    /* After the keys are read, before the network is initialised: checks across keys, keys
     * without DSNN_KEY_AT (arrays, defaults that depend on other keys), the initial density
     * (dsnn_sparse_model_set_density). ctx may be NULL. */
    enum dsnn_status (*configure)(struct dsnn_sparse_model *sm, void *params,
                                  const struct dsnn_cfg *cfg, const struct dsnn_run_ctx *ctx,
                                  const struct dsnn_dataset_info *info, struct dsnn_error *err);
    /* After the network is initialised: state that needs it (coactivations through
     * dsnn_scheme_track_coact, copies of initial values, counts of parameters). */
    enum dsnn_status (*init)(struct dsnn_sparse_model *sm, void *params,
                             const struct dsnn_run_ctx *ctx, struct dsnn_error *err);
    /* Before the training pass: per-epoch resets, start-of-epoch rounds; *train_epoch is the
     * epoch the base model trains (learning rate, data order), epoch unless changed. */
    enum dsnn_status (*begin_epoch)(struct dsnn_sparse_model *sm, void *params, int epoch,
                                    int *train_epoch, struct dsnn_metrics *m,
                                    struct dsnn_error *err);
    /* Hooks of the training pass (struct dsnn_train_hooks); step counts optimizer steps. */
    enum dsnn_status (*after_forward)(struct dsnn_sparse_model *sm, void *params,
                                      const struct dsnn_batch *b, struct dsnn_error *err);
    enum dsnn_status (*after_backward)(struct dsnn_sparse_model *sm, void *params, int64_t step,
                                       struct dsnn_error *err);
    enum dsnn_status (*after_step)(struct dsnn_sparse_model *sm, void *params, int64_t step,
                                   struct dsnn_error *err);
    /* DSNN_SCHEME_PRUNE_SCHEDULE: the prune / regrow round after the training pass. */
    enum dsnn_status (*round)(struct dsnn_sparse_model *sm, void *params, int epoch,
                              struct dsnn_metrics *m, struct dsnn_error *err);
    /* After the training pass (and the round): end-of-epoch rounds, the scheme's metrics. */
    enum dsnn_status (*end_epoch)(struct dsnn_sparse_model *sm, void *params, int epoch,
                                  struct dsnn_metrics *m, struct dsnn_error *err);
    /* The rest of the scheme's part of the checkpoint, after its tag and state members (load:
     * once they are read back, so it may check them). */
    enum dsnn_status (*save)(struct dsnn_sparse_model *sm, void *params, FILE *f,
                             struct dsnn_error *err);
    enum dsnn_status (*load)(struct dsnn_sparse_model *sm, void *params, FILE *f,
                             struct dsnn_error *err);
    /* Frees what the scheme allocated in params (not params itself). */
    void (*destroy)(void *params);
    /* The scheme's checkpoint section: 4 characters written after the model's part and checked
     * on load (dsnn_io_expect_tag); NULL: none. */
    const char *tag;
    /* Members of params written after the tag and read back, in this order (the state that is
     * not a function of the configuration and the step). */
    const struct dsnn_scheme_state *state;
    size_t n_state;
};

/* The model plugin around a scheme (used by DSNN_SCHEME_DEFINE). keys: the component's table. */
DSNN_API enum dsnn_status dsnn_scheme_create(const struct dsnn_scheme *s,
                                             const struct dsnn_key_spec *keys, size_t n_keys,
                                             const struct dsnn_cfg *cfg,
                                             const struct dsnn_run_ctx *ctx, struct dsnn_net *net,
                                             const struct dsnn_dataset_info *info, void **state,
                                             struct dsnn_error *err);
/* The training pass of an epoch (begin_epoch, the hooks); then, after the evaluation,
 * dsnn_scheme_end_epoch: the round (DSNN_SCHEME_PRUNE_SCHEDULE), end_epoch, the density metrics
 * (*rewired: a round ended). dsnn_scheme_train_epoch is both at once (ABI 2.0's model ops). */
DSNN_API enum dsnn_status dsnn_scheme_train_pass(void *state, struct dsnn_data *data, int epoch,
                                                 struct dsnn_metrics *m, struct dsnn_error *err);
DSNN_API enum dsnn_status dsnn_scheme_end_epoch(void *state, struct dsnn_data *data, int epoch,
                                                struct dsnn_metrics *m, bool *rewired,
                                                struct dsnn_error *err);
DSNN_API enum dsnn_status dsnn_scheme_train_epoch(void *state, struct dsnn_data *data, int epoch,
                                                  struct dsnn_metrics *m, struct dsnn_error *err);
DSNN_API enum dsnn_status dsnn_scheme_evaluate(void *state, struct dsnn_data *data,
                                               enum dsnn_split split, struct dsnn_metrics *m,
                                               struct dsnn_error *err);
DSNN_API enum dsnn_status dsnn_scheme_save(void *state, FILE *f, struct dsnn_error *err);
DSNN_API enum dsnn_status dsnn_scheme_load(void *state, FILE *f, struct dsnn_error *err);
DSNN_API void dsnn_scheme_destroy(void *state);

/* Defines <scheme>_ops, the struct dsnn_model_ops of the scheme object `scheme` with key table
 * `keys` (an array of struct dsnn_key_spec). */
#define DSNN_SCHEME_DEFINE(scheme, keys)                                                          \
    static enum dsnn_status scheme##_create(                                                      \
        const struct dsnn_cfg *cfg, const struct dsnn_run_ctx *ctx, struct dsnn_net *net,        \
        const struct dsnn_dataset_info *info, void **state, struct dsnn_error *err)               \
    {                                                                                             \
        return dsnn_scheme_create(&(scheme), (keys), DSNN_COUNT_OF(keys), cfg, ctx, net, info,    \
                                  state, err);                                                    \
    }                                                                                             \
    static const struct dsnn_model_ops scheme##_ops = {                                           \
        scheme##_create,  dsnn_scheme_train_pass, dsnn_scheme_evaluate, dsnn_scheme_save,         \
        dsnn_scheme_load, dsnn_scheme_destroy,    dsnn_scheme_end_epoch};

/* The component entry (struct dsnn_component) of a scheme defined by DSNN_SCHEME_DEFINE. */
#define DSNN_SCHEME_COMPONENT(name, version, description, scheme, keys)                           \
    DSNN_COMPONENT(DSNN_KIND_MODEL, (name), (version), (description), scheme##_ops, keys)

/* A whole plugin of one scheme component, named like the component:
 *     DSNN_SCHEME_PLUGIN("set", "1.0.0", "one line", set_scheme, set_keys) */
#define DSNN_SCHEME_PLUGIN(name, version, description, scheme, keys)                              \
    DSNN_SCHEME_DEFINE(scheme, keys)                                                              \
    static const struct dsnn_component scheme##_components[] = {                                  \
        DSNN_SCHEME_COMPONENT(name, version, description, scheme, keys)};                         \
    DSNN_PLUGIN_DEFINE(name, scheme##_components)

/* A whole plugin of one scheme component whose struct dsnn_scheme members are given in place
 * (the one-component model plugin, as DSNN_NETWORK_PLUGIN in dsnn/plugin.h for networks):
 *     DSNN_MODEL_PLUGIN("set", "1.0.0", "one line", set_keys,
 *                       .params_size = sizeof(struct set_params), .round = set_round)
 * defines the scheme, its model ops, the component array and dsnn_plugin_entry. Members left
 * out are 0 / NULL. */
#define DSNN_MODEL_PLUGIN(name, version, description, keys, ...)                                  \
    static const struct dsnn_scheme dsnn_plugin_one_scheme = {__VA_ARGS__};                        \
    DSNN_SCHEME_PLUGIN(name, version, description, dsnn_plugin_one_scheme, keys)

/* ---- Coactivation-driven schemes (DSNN; see dsnn/coactivation.h) ---- */

/* From init, with DSNN_SCHEME_PRUNE_SCHEDULE: the kit counts the coactivations of every sparse
 * layer during the training pass of each epoch that ends with a round (and, for a moving average
 * alpha < 1, of every epoch until the schedule stops for good), in the active storage or, with
 * dense, for every pair; the history is part of the checkpoint. */
DSNN_API enum dsnn_status dsnn_scheme_track_coact(struct dsnn_sparse_model *sm, bool dense,
                                                  double alpha, struct dsnn_error *err);
struct dsnn_coact_options; /* dsnn/coactivation.h */
/* As dsnn_scheme_track_coact with the variants of o (dsnn/coactivation.h; NULL: defaults). */
DSNN_API enum dsnn_status dsnn_scheme_track_coact_opts(struct dsnn_sparse_model *sm, bool dense,
                                                       double alpha,
                                                       const struct dsnn_coact_options *o,
                                                       struct dsnn_error *err);

/* Keep rule of a coactivation round: keep[k] = 1 for the connections k < nnz of a layer that
 * stay (w: weights, coact: coactivations in CSR order, NULL when not tracked), *n_keep their
 * number. */
typedef enum dsnn_status (*dsnn_scheme_keep_fn)(const void *params, const float *w,
                                                const float *coact, size_t nnz, uint8_t *keep,
                                                size_t *n_keep, struct dsnn_error *err);
/* A round of a coactivation-driven scheme over every sparse layer that is not full (a full
 * layer has nowhere to regrow and is left alone), in one update bracket: keep by the rule, log
 * kept_<layer> and coact_mean_<layer> (mean coactivation of the active connections per sample,
 * when tracked), regrow as many connections as were removed among those inactive before the
 * round: those of highest coactivation with hebbian_grow (dense tracking needed), else at random
 * (dsnn_dynsparse_apply). */
DSNN_API enum dsnn_status dsnn_scheme_coact_round(struct dsnn_sparse_model *sm, const void *params,
                                                  dsnn_scheme_keep_fn keep, bool hebbian_grow,
                                                  struct dsnn_metrics *m, struct dsnn_error *err);
/* The same with a rule that is told the index of its layer among the sparse layers (per-layer
 * parameters: dsnn_scheme_read_per_layer). */
typedef enum dsnn_status (*dsnn_scheme_keep_layer_fn)(const void *params, size_t layer,
                                                      const float *w, const float *coact,
                                                      size_t nnz, uint8_t *keep, size_t *n_keep,
                                                      struct dsnn_error *err);
DSNN_API enum dsnn_status dsnn_scheme_coact_round_layers(struct dsnn_sparse_model *sm,
                                                         const void *params,
                                                         dsnn_scheme_keep_layer_fn keep,
                                                         bool hebbian_grow, struct dsnn_metrics *m,
                                                         struct dsnn_error *err);

/* ---- Rounds within the epoch (every few optimizer steps: RigL, DSR, SNFS) ---- */

/* A round at t optimizer steps (counted from 1: the steps completed once the current one is
 * applied). */
typedef enum dsnn_status (*dsnn_scheme_step_fn)(struct dsnn_sparse_model *sm, void *params,
                                                int64_t t, struct dsnn_error *err);
/* For an after_backward / after_step callback (step: its argument): runs round at t = step + 1
 * when dsnn_schedule_due(t, begin, end, every) (end < 0: no end), else does nothing; an error of
 * the round is prefixed with "<name> at step <t>". */
DSNN_API enum dsnn_status dsnn_scheme_step_round(struct dsnn_sparse_model *sm, void *params,
                                                 int64_t step, int64_t begin, int64_t end,
                                                 int64_t every, dsnn_scheme_step_fn round,
                                                 const char *name, struct dsnn_error *err);
/* For an after_forward callback of a scheme whose rounds grow by gradient: the sparse
 * convolutions compute the dense gradient in this step's backward (dsnn_sparse_model_keep_dense_
 * grad) only when a round is due at t = the step's number counted from 1 (every <= 0: always),
 * so the other steps stay sparse. */
DSNN_API void dsnn_scheme_dense_grad_when_due(struct dsnn_sparse_model *sm, int64_t begin,
                                              int64_t end, int64_t every);
/* Ends the update bracket of a round within the epoch (instead of dsnn_sparse_model_update_end):
 * its counts go to the epoch's tally (struct dsnn_sparse_update_tally) that the kit keeps and
 * clears before each begin_epoch. */
DSNN_API enum dsnn_status dsnn_scheme_update_end(struct dsnn_sparse_model *sm,
                                                 struct dsnn_error *err);
/* Logs the epoch's tally so far (dsnn_sparse_update_tally_log: update_rounds, and per sparse
 * layer pruned_, grown_ and surviving_synapses_<layer>), typically from end_epoch, and returns
 * its number of rounds. */
DSNN_API size_t dsnn_scheme_log_rounds(const struct dsnn_sparse_model *sm,
                                       struct dsnn_metrics *m);

/* ---- Prune and regrow at random ---- */

/* Prune rule of dsnn_scheme_random_round: removes connections of sparse layer l (not full) and
 * says how many in *removed. */
typedef enum dsnn_status (*dsnn_scheme_prune_fn)(const void *params, struct dsnn_layer *l,
                                                 size_t *removed, struct dsnn_error *err);
/* A round in one update bracket (SET and the like): every sparse layer that is not full
 * (density < 1; a full layer has nowhere to regrow and is left alone) is pruned by the rule,
 * then each layer regrows as many connections as it lost at random positions
 * (dsnn_sparse_grow_random with the topology stream), so nnz stays constant. Logs what the
 * bracket logs (dsnn_sparse_model_update_end). */
DSNN_API enum dsnn_status dsnn_scheme_random_round(struct dsnn_sparse_model *sm, const void *params,
                                                   dsnn_scheme_prune_fn prune,
                                                   struct dsnn_metrics *m, struct dsnn_error *err);
/* The same with a rule that is told the index of its layer among the sparse layers. */
typedef enum dsnn_status (*dsnn_scheme_prune_layer_fn)(const void *params, size_t layer,
                                                       struct dsnn_layer *l, size_t *removed,
                                                       struct dsnn_error *err);
DSNN_API enum dsnn_status dsnn_scheme_random_round_layers(struct dsnn_sparse_model *sm,
                                                          const void *params,
                                                          dsnn_scheme_prune_layer_fn prune,
                                                          struct dsnn_metrics *m,
                                                          struct dsnn_error *err);

/* ---- Per-layer parameters ---- */

/* Reads the float key of cfg, one value or one per sparse layer of sm (nupic's per-module lists
 * of weight_prune_perc / hebbian_prune_perc), into out[0 .. n_layers) (def when absent; call it
 * from the scheme's configure, once the sparse layers are chosen). Another number of values is
 * DSNN_ERR_CONFIG naming the key and the layer count. */
DSNN_API enum dsnn_status dsnn_scheme_read_per_layer(const struct dsnn_sparse_model *sm,
                                                     const struct dsnn_cfg *cfg, const char *key,
                                                     double def, double *out,
                                                     struct dsnn_error *err);

#ifdef __cplusplus
}
#endif
#endif
