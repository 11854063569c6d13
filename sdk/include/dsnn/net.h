/* dsnn/net.h - a network: an ordered list of layers with its activation buffers.
 *
 * Lifecycle: dsnn_net_new -> dsnn_net_add (shapes checked here) -> optional edits by the model
 * (dsnn_net_replace, e.g. dense linear -> sparse linear) -> dsnn_net_init (parameters and
 * buffers allocated) -> forward/backward. */
#ifndef DSNN_NET_H
#define DSNN_NET_H

#include <stdbool.h>
#include <stddef.h>
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

/* Threads used by libdsnn kernels and OpenBLAS (0: all cores). */
DSNN_API void dsnn_set_num_threads(int n);
DSNN_API int dsnn_get_num_threads(void);

#ifdef __cplusplus
}
#endif
#endif
