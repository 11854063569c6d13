/* dsnn/net.h - a network: an ordered list of layers with its activation buffers.
 *
 * Lifecycle: dsnn_net_new -> dsnn_net_add (shapes checked here) -> optional edits by the model
 * (dsnn_net_replace, e.g. dense linear -> sparse linear) -> dsnn_net_init (parameters and
 * buffers allocated) -> forward/backward. */
#ifndef DSNN_NET_H
#define DSNN_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "dsnn/layer.h"

#ifdef __cplusplus
extern "C" {
#endif

struct dsnn_net; /* opaque */

/* New empty network for samples of shape input and n_classes outputs. Caller owns it. */
DSNN_API struct dsnn_net *dsnn_net_new(struct dsnn_shape input, int n_classes,
                                       struct dsnn_error *err);
DSNN_API void dsnn_net_free(struct dsnn_net *net);

/* Appends a layer (the net takes ownership, also on failure). Refuses a layer whose input shape
 * differs from the previous output, or a duplicate name, with a message naming both. */
DSNN_API enum dsnn_status dsnn_net_add(struct dsnn_net *net, struct dsnn_layer *layer,
                                       struct dsnn_error *err);
/* Replaces layer i before init (same shapes required); frees the old layer. */
DSNN_API enum dsnn_status dsnn_net_replace(struct dsnn_net *net, size_t i,
                                           struct dsnn_layer *layer, struct dsnn_error *err);

DSNN_API size_t dsnn_net_n_layers(const struct dsnn_net *net);
DSNN_API struct dsnn_layer *dsnn_net_layer(const struct dsnn_net *net, size_t i);
DSNN_API struct dsnn_shape dsnn_net_input_shape(const struct dsnn_net *net);
DSNN_API int dsnn_net_n_classes(const struct dsnn_net *net);
DSNN_API bool dsnn_net_initialized(const struct dsnn_net *net);

/* Initialises every layer's parameters from rng and allocates activation buffers for batches of
 * up to max_batch. Checks that the last layer outputs n_classes values.
 * A "relu" layer right after a sparse linear layer is fused into it here (the sparse layer's
 * activation becomes DSNN_SPARSE_ACT_RELU; the relu layer then passes its input through, and
 * both report the ReLU output as their activation): results are bit-identical, and sparse
 * layers separated only by a ReLU then exchange feature-major panels instead of transposing
 * activations and gradients between them (see dsnn/sparse.h). */
DSNN_API enum dsnn_status dsnn_net_init(struct dsnn_net *net, struct dsnn_rng *rng, int max_batch,
                                        struct dsnn_error *err);

/* Forward pass; returns the logits [batch][n_classes] (owned by the net, valid until the next
 * forward) or NULL on error. */
DSNN_API const float *dsnn_net_forward(struct dsnn_net *net, const float *x, int batch, bool train,
                                       struct dsnn_error *err);
/* Activation after layer i of the last forward ([batch][size of layer i's output]), valid until
 * the next forward. Call it after each forward rather than keeping the pointer's contents: the
 * output of a sparse layer that feeds another sparse layer is written only when asked for (the
 * two exchange feature-major panels instead). */
DSNN_API const float *dsnn_net_activation(const struct dsnn_net *net, size_t i);
/* Backward pass from dlogits; fills every layer's parameter gradients. */
DSNN_API enum dsnn_status dsnn_net_backward(struct dsnn_net *net, const float *dlogits, int batch,
                                            struct dsnn_error *err);

/* End-of-epoch hook: calls ops->on_epoch_end of every layer that has one, in order (k-winners
 * decay their boost strength: nupic's network.apply(update_boost_strength) after each training
 * epoch). Models call it once after each training epoch. */
DSNN_API void dsnn_net_on_epoch_end(struct dsnn_net *net);

/* Number of trainable scalars in the net (active connections for sparse layers). */
DSNN_API size_t dsnn_net_param_count(const struct dsnn_net *net);

/* Checkpoint of all layers (calls each layer's save/load; checks layer names and types). */
DSNN_API enum dsnn_status dsnn_net_save(struct dsnn_net *net, FILE *f, struct dsnn_error *err);
DSNN_API enum dsnn_status dsnn_net_load(struct dsnn_net *net, FILE *f, struct dsnn_error *err);

/* ---- Helpers of network plugins' build functions (layers/net_build.c) ---- */

struct dsnn_cfg;
struct dsnn_key_table;

/* The output shape of the last layer, or the input shape of an empty net: the input of the next
 * layer to add. */
DSNN_API struct dsnn_shape dsnn_net_last_shape(const struct dsnn_net *net);

/* Appends the dense linear layer `name` from the flattened last shape (dsnn_net_last_shape) to
 * n_out units, with a bias if bias. */
DSNN_API enum dsnn_status dsnn_net_add_linear(struct dsnn_net *net, const char *name, int n_out,
                                              bool bias, struct dsnn_error *err);
/* Appends the dense linear layer "fc<fc_idx>" (dsnn_net_add_linear) and the ReLU "relu<relu_idx>"
 * after it. */
DSNN_API enum dsnn_status dsnn_net_add_fc_relu(struct dsnn_net *net, int fc_idx, int relu_idx,
                                               int n_out, bool bias, struct dsnn_error *err);
/* Appends the 2d convolution `name` from the last shape to out_c channels (dsnn_conv2d_new), or,
 * when density > 0, a truly sparse one of that density (dsnn_sparse_conv2d_new, the other
 * settings of dsnn_sparse_init_default). */
DSNN_API enum dsnn_status dsnn_net_add_conv2d(struct dsnn_net *net, const char *name, int out_c,
                                              int kernel, int stride, int padding, bool bias,
                                              double density, struct dsnn_error *err);

/* The end of a network plugin's build function, given the status st of the layers added so far.
 * When st is DSNN_OK, appends the linear layer "output" (dsnn_net_add_linear to the net's
 * n_classes, with a bias if bias) and hands net to *out. Otherwise, or when that fails, frees
 * net, leaves *out alone and returns the error; with cfg (the network group) its message gets
 * the context "<file:line of cfg>: [<what>: ]cannot build the network for CxHxW inputs" (what
 * may be NULL, e.g. "vgg19"); with cfg NULL it is returned as it is. */
DSNN_API enum dsnn_status dsnn_net_build_end(struct dsnn_net *net, enum dsnn_status st, bool bias,
                                             const struct dsnn_cfg *cfg, const char *what,
                                             struct dsnn_net **out, struct dsnn_error *err);

/* How dsnn_net_read_floats words the error for a wrong number of values of a per-layer key:
 *     "<file:line>: key '<group>.<key>': <got> values for <lead><n> <items> (give one value or
 *     <hint>)"
 * e.g. {"the ", "convolutions of lenet5", "one per convolution"} or {"", "hidden layers",
 * "one per hidden layer"}. */
struct dsnn_net_items {
    const char *lead;  /* before the count ("" or "the ") */
    const char *items; /* after the count */
    const char *hint;  /* what else may be given besides one value */
};

/* Reads the per-layer key `key` of cfg, one float or an array of n floats, into out[n] (one
 * value is used for all n). When the key is absent: defs[0..n) if defs is not NULL, else the
 * default (def) of its spec in keys (the component's key table, which must list it). Another
 * number of values than 1 or n is a DSNN_ERR_CONFIG error worded by what; at most 64 values. */
DSNN_API enum dsnn_status dsnn_net_read_floats(const struct dsnn_cfg *cfg,
                                               const struct dsnn_key_table *keys, const char *key,
                                               const double *defs, double *out, size_t n,
                                               const struct dsnn_net_items *what,
                                               struct dsnn_error *err);

/* The activations of n layers that are k-winners or ReLU. With the key percent_on_k_winner
 * (nupic MLPHeb / GSCHeb: one value or one per layer) layer i is k-winners with percent_on[i] =
 * that value where it is below 0.5, ReLU otherwise (use_kw[i]); giving percent_on or kwinners
 * with it is an error. Without it: percent_on as dsnn_net_read_floats reads it (defs), and
 * use_kw[i] = kwinners for every layer. keys must list percent_on and percent_on_k_winner. */
DSNN_API enum dsnn_status dsnn_net_read_activations(const struct dsnn_cfg *cfg,
                                                    const struct dsnn_key_table *keys,
                                                    const double *defs, bool kwinners,
                                                    double *percent_on, bool *use_kw, size_t n,
                                                    const struct dsnn_net_items *what,
                                                    struct dsnn_error *err);
/* The key spec of percent_on_k_winner for a table that uses dsnn_net_read_activations. */
#define DSNN_PERCENT_ON_K_WINNER_KEY                                                              \
    {.name = "percent_on_k_winner", .type = DSNN_KEY_FLOAT_OR_ARRAY, .def = 1.0,                  \
     .default_value = "(not set)", DSNN_KEY_RANGE(0, 1),                                          \
     .doc = "nupic's form: per hidden activation, k-winners with this percent_on where it is "    \
            "below 0.5, ReLU otherwise (one value or one per activation; instead of kwinners "    \
            "and percent_on)"}

/* Reads the array of layer sizes `key` of cfg into out[0..*n) (at most max values; an empty
 * array gives *n = 0); when the key is absent, the n_defs values of defs (the default that its
 * spec names). */
DSNN_API enum dsnn_status dsnn_net_read_sizes(const struct dsnn_cfg *cfg, const char *key,
                                              const int64_t *defs, size_t n_defs, int64_t *out,
                                              size_t max, size_t *n, struct dsnn_error *err);

/* Threads used by libdsnn kernels and OpenBLAS (0: all cores). */
DSNN_API void dsnn_set_num_threads(int n);
DSNN_API int dsnn_get_num_threads(void);

#ifdef __cplusplus
}
#endif
#endif
