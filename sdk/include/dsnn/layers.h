/* dsnn/layers.h - the layers of nupic.torch / nupic.research dynamic_sparse networks:
 * k-winners (1d, 2d) with boosting, batch norm (1d, 2d), dropout, conv2d (dense and truly
 * sparse), max / average pooling and residual blocks.
 *
 * Every constructor returns a layer the caller owns (or the network it is added to), or NULL
 * with err set; parameters and state are allocated in ops->init (dsnn_net_init). Activations are
 * sample-major and channels-first: [batch][c][h][w]. Shapes are fixed at construction and checked
 * by dsnn_net_add. Layer-specific state (running statistics, duty cycles, RNG streams, sparse
 * topology) is part of the layer's save / load, so dsnn_net_save / dsnn_net_load resume exactly.
 *
 * Kernels use OpenMP with dsnn_get_num_threads() threads; results do not depend on the number of
 * threads (except through OpenBLAS's own sgemm blocking in the dense convolution). */
#ifndef DSNN_LAYERS_H
#define DSNN_LAYERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "dsnn/data.h"
#include "dsnn/export.h"
#include "dsnn/layer.h"
#include "dsnn/rng.h"
#include "dsnn/sparse.h"
#include "dsnn/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ======================================================================================
 * k-winners (nupic.torch KWinners / KWinners2d)
 *
 * Training: every sample keeps its k units of largest boosted value x * b, with the boost
 * factor b = exp((k / n_sel - duty) * boost_strength) of the unit's duty cycle (per unit for
 * the 1d layer, per channel for the 2d layer; n_sel is the number of units competing: n, or
 * the channel count when local); the output is the UNBOOSTED x at the winners and 0 elsewhere.
 * Then the duty cycles are updated exactly as nupic.torch's update_duty_cycle (float32):
 *     learning_iterations += batch;  period = min(duty_cycle_period, learning_iterations)
 *     duty = (duty * (period - batch) + active / (h * w)) / period
 * where active counts, per unit / channel, the outputs > 0 over the batch (and positions).
 * Evaluation: k_inference winners, no duty-cycle update. Backward: dy flows through the
 * winners of the last forward only. boost_strength decays by boost_strength_factor each time
 * dsnn_kwinners_update_boost_strength is called (dsnn_net_on_epoch_end calls it).
 *
 * k (Python round(), i.e. half to even, as nupic):
 *     1d:        k = round(n p),  k_inference = int(k * k_inference_factor)   (truncation)
 *     2d global: k = round(c h w p),  k_inference = round(c h w (p k_inference_factor))
 *     2d local:  k = round(c p),      k_inference = round(c (p k_inference_factor))
 * ====================================================================================== */

struct dsnn_kwinners_cfg {
    double percent_on;            /* in (0, 1) */
    double k_inference_factor;    /* > 0, percent_on * factor in (0, 1) */
    double boost_strength;        /* >= 0 (0: no boosting) */
    double boost_strength_factor; /* in [0, 1]: decay applied per epoch */
    int duty_cycle_period;        /* > 0 */
    bool break_ties;  /* true: exactly k winners, equal boosted values won by the lowest index
                         (nupic.torch topk); false: every unit whose boosted value equals the
                         k-th largest also wins (later nupic.torch kthvalue threshold) */
    bool local;       /* 2d only: pick the top k channels at each position (KWinners2dLocal) */
};

/* percent_on 0.1, k_inference_factor 1.5, boost_strength 1.0, boost_strength_factor 0.9,
 * duty_cycle_period 1000, break_ties true, local false (nupic.torch KWinners2d defaults). */
DSNN_API struct dsnn_kwinners_cfg dsnn_kwinners_cfg_default(void);

/* k-winners over n units, shape {n, 1, 1}; one duty cycle per unit. type "kwinners". */
DSNN_API struct dsnn_layer *dsnn_kwinners_new(const char *name, int n,
                                              const struct dsnn_kwinners_cfg *cfg,
                                              struct dsnn_error *err);
/* k-winners over a {c, h, w} feature map (in shape = out shape); one duty cycle per channel.
 * type "kwinners2d". */
DSNN_API struct dsnn_layer *dsnn_kwinners2d_new(const char *name, struct dsnn_shape shape,
                                                const struct dsnn_kwinners_cfg *cfg,
                                                struct dsnn_error *err);
/* True for "kwinners" and "kwinners2d" layers. The accessors below return 0 / NULL otherwise. */
DSNN_API bool dsnn_kwinners_is(const struct dsnn_layer *l);
/* boost_strength *= boost_strength_factor (nupic update_boost_strength). */
DSNN_API void dsnn_kwinners_update_boost_strength(struct dsnn_layer *l);
DSNN_API double dsnn_kwinners_boost_strength(const struct dsnn_layer *l);
/* k used in training (train) or evaluation (!train). */
DSNN_API int dsnn_kwinners_k(const struct dsnn_layer *l, bool train);
/* Duty cycles (owned by the layer; writable, e.g. for tests): *n gets their count (units for the
 * 1d layer, channels for the 2d layer). */
DSNN_API float *dsnn_kwinners_duty_cycle(struct dsnn_layer *l, size_t *n);
/* Samples seen in training (nupic learning_iterations). */
DSNN_API uint64_t dsnn_kwinners_learning_iterations(const struct dsnn_layer *l);
/* nupic entropy(): sum of the binary entropies of the duty cycles (bits), times h w for 2d;
 * and max_entropy(): n H(int(n p) / n). */
DSNN_API double dsnn_kwinners_entropy(const struct dsnn_layer *l);
DSNN_API double dsnn_kwinners_max_entropy(const struct dsnn_layer *l);

/* ======================================================================================
 * Batch norm (PyTorch BatchNorm1d / BatchNorm2d, track_running_stats = True)
 *
 * Training normalises with the batch mean and biased variance (over the batch, and the h w
 * positions for 2d) and updates running_mean / running_var with momentum (default 0.1), the
 * running variance using the unbiased batch variance; evaluation uses the running statistics.
 * eps defaults to 1e-5. Affine: params "weight" (gamma, init 1) and "bias" (beta, init 0), one
 * per channel. Training with a single value per channel is refused (DSNN_ERR_INVALID), as
 * PyTorch does. Backward uses the statistics of the last forward (batch or running).
 * ====================================================================================== */

/* Over n features, shape {n, 1, 1}. type "batchnorm1d". */
DSNN_API struct dsnn_layer *dsnn_batchnorm1d_new(const char *name, int n_features, bool affine,
                                                 struct dsnn_error *err);
/* Per channel of a {c, h, w} feature map. type "batchnorm2d". */
DSNN_API struct dsnn_layer *dsnn_batchnorm2d_new(const char *name, struct dsnn_shape shape,
                                                 bool affine, struct dsnn_error *err);
DSNN_API bool dsnn_batchnorm_is(const struct dsnn_layer *l);
/* Changes momentum (in [0, 1]) and eps (> 0); any time. DSNN_ERR_INVALID otherwise. */
DSNN_API enum dsnn_status dsnn_batchnorm_set_momentum_eps(struct dsnn_layer *l, double momentum,
                                                          double eps, struct dsnn_error *err);
/* Running statistics [channels] (owned by the layer; NULL if l is not a batch norm layer). */
DSNN_API float *dsnn_batchnorm_running_mean(struct dsnn_layer *l);
DSNN_API float *dsnn_batchnorm_running_var(struct dsnn_layer *l);
DSNN_API uint64_t dsnn_batchnorm_num_batches_tracked(const struct dsnn_layer *l);

/* ======================================================================================
 * Dropout (inverted, PyTorch nn.Dropout)
 *
 * Training: each value is zeroed with probability p, the others are scaled by 1 / (1 - p)
 * (p = 1: all zero). Evaluation: identity. The masks come from the layer's own RNG stream,
 * seeded in init from one draw of the init stream (stream id DSNN_RNG_STREAM_DROPOUT), and saved
 * in checkpoints, so runs and resumes are reproducible.
 * ====================================================================================== */

/* type "dropout"; shape in = out. p in [0, 1]. */
DSNN_API struct dsnn_layer *dsnn_dropout_new(const char *name, struct dsnn_shape shape, double p,
                                             struct dsnn_error *err);
/* Replaces the mask stream (after init; e.g. to derive it from a trial's dropout stream). */
DSNN_API void dsnn_dropout_set_rng(struct dsnn_layer *l, const struct dsnn_rng *rng);

/* ======================================================================================
 * Convolution (PyTorch nn.Conv2d, dilation 1, groups 1, square kernel / stride / padding)
 *
 * Output size: out_h = (h + 2 padding - kernel) / stride + 1 (floor), same for w. Weights
 * [out_c][in_c][kernel][kernel] (PyTorch layout), initialised U(+-1/sqrt(fan_in)) with fan_in =
 * in_c kernel^2 (PyTorch's default), bias likewise.
 *
 * The dense layer is an implicit GEMM over groups of output positions (up to 128): each group's
 * window columns are packed straight from the images and multiplied with the weights by the
 * kernel set's register tiles (forward, weight and input gradients; no im2col matrix of the
 * batch). A group is cut smaller when its largest buffer would pass the workspace limit
 * (dsnn_conv_set_workspace_limit). Layers of at least 16 input channels (16 output channels for
 * the input gradient) and batches that fill the tile's panels of samples (at most a fifth of a
 * panel empty: batches of 32, 64, 128, ... on AVX-512) run the forward and the input gradient,
 * and for outputs of at most 16 positions the weight gradient, directly instead: the images are
 * transposed once into planes with the samples innermost, the taps read them in place (taps that
 * read padding are skipped) and no window columns are packed; passes over samples are cut so
 * that a plane stays under the same limit. The workspace is per thread and shared by all
 * convolution layers.
 *
 * The sparse layer stores W as a [out_c][in_c k k] CSR matrix: it keeps a "sparse_linear" layer
 * (dsnn/sparse.h) with n_in = in_c k k and n_out = out_c as its weight store, so every
 * dsnn_sparse_* accessor and topology edit (prune_magnitude / _signed / _score / _mask,
 * grow_random / _score / _at, set_nnz, get_csr, find, check ...) works on
 * dsnn_sparse_conv2d_weights(l). Forward, weight and input gradients run on the active
 * connections only (direct sparse convolution with the batch as the vector dimension, no
 * im2col buffer): time O(nnz out_h out_w batch), memory O(nnz) plus padded copies of the
 * activations of up to 128 samples; at high density a dense path can take over
 * (dsnn_sparse_conv2d_set_dense_above). Exceptions: dsnn_sparse_grow_gradient and
 * dsnn_sparse_dense_grad_rows work on the weight store only after a backward run with
 * dsnn_sparse_conv2d_keep_dense_grad on (until the next forward); the fused activation
 * (dsnn_sparse_set_activation) is not supported (forward returns DSNN_ERR_UNSUPPORTED; add a
 * relu layer); the epsilon (Erdős–Rényi) option of struct dsnn_sparse_init uses the matrix
 * formula (in_c k k + out_c) / (in_c k k out_c); dsnn_sparse_erk_apply uses RigL's kernel-aware
 * ERK.
 * ====================================================================================== */

/* Dense convolution; type "conv2d". */
DSNN_API struct dsnn_layer *dsnn_conv2d_new(const char *name, struct dsnn_shape in,
                                            int out_channels, int kernel, int stride,
                                            int padding, bool bias, struct dsnn_error *err);
/* Initialisation to use (before init; fan_in = in_c kernel^2). Default: kaiming uniform. */
DSNN_API void dsnn_conv2d_set_init(struct dsnn_layer *l, enum dsnn_weight_init init, double std);
/* Weights [out_c][in_c][k][k] / bias [out_c] of an initialised dense conv2d (NULL otherwise). */
DSNN_API float *dsnn_conv2d_weight(struct dsnn_layer *l);
DSNN_API float *dsnn_conv2d_bias(struct dsnn_layer *l);

struct dsnn_conv2d_geom {
    int in_c, in_h, in_w;
    int out_c, out_h, out_w;
    int kernel, stride, padding;
    bool bias;
};
/* Geometry of a dense or sparse conv2d layer; false for other layers. */
DSNN_API bool dsnn_conv2d_geometry(const struct dsnn_layer *l, struct dsnn_conv2d_geom *g);
/* Limit (bytes) on the workspace buffers that scale with the positions of a group or the
 * samples of a direct pass (default 16 MiB): groups of output positions are cut so that their
 * buffers stay under it, down to one register tile of positions; direct passes down to one panel
 * of samples, below which the layer takes the grouped path (the packed weights of a layer are
 * not limited). */
DSNN_API void dsnn_conv_set_workspace_limit(size_t bytes);

/* Truly sparse convolution; type "sparse_conv2d". init as for dsnn_sparse_linear_new (NULL:
 * defaults, density 1). */
DSNN_API struct dsnn_layer *dsnn_sparse_conv2d_new(const char *name, struct dsnn_shape in,
                                                   int out_channels, int kernel, int stride,
                                                   int padding, bool bias,
                                                   const struct dsnn_sparse_init *init,
                                                   struct dsnn_error *err);
DSNN_API bool dsnn_sparse_conv2d_is(const struct dsnn_layer *l);
/* A new truly sparse conv2d with the geometry (input, channels, kernel, stride, padding, bias) of
 * `conv`, a dense or sparse conv2d layer, named `name` (NULL: conv's name); init as for
 * dsnn_sparse_conv2d_new. For replacing a network's convolutions (dsnn_net_replace,
 * dsnn_residual_replace) before init. */
DSNN_API struct dsnn_layer *dsnn_sparse_conv2d_like(const struct dsnn_layer *conv,
                                                    const char *name,
                                                    const struct dsnn_sparse_init *init,
                                                    struct dsnn_error *err);
/* Density (nnz / (out_c in_c k k)) from which forward and backward run the dense convolution
 * engine (the one conv2d uses) over a scratch copy of the weights instead of the sparse kernels
 * (the weight gradient is gathered back at the active connections; storage, gradients and
 * optimizer state stay sparse). Default 0.55, or 0.45 for outputs at most 8 positions wide (where
 * the sparse kernels fill fewer of their registers), or 0 (always dense) for kernels of fewer
 * than 100 taps in_c k k (a first layer's 3 x 3 x 3, a 1 x 1 convolution of 64 channels: there
 * copying the activations for the sparse kernels costs more than the dense products); > 1: never;
 * <= 0: always. Results of the two paths agree to rounding. */
DSNN_API void dsnn_sparse_conv2d_set_dense_above(struct dsnn_layer *l, double density);
DSNN_API double dsnn_sparse_conv2d_dense_above(const struct dsnn_layer *l);
/* The weight store: a "sparse_linear" layer [out_c][in_c k k] owned by l (row o, column
 * (c k + i) k + j). Valid for l's lifetime; NULL if l is not a sparse conv2d. Use it with the
 * dsnn_sparse_* functions to read and edit the topology (before init: dsnn_sparse_set_init). */
DSNN_API struct dsnn_layer *dsnn_sparse_conv2d_weights(struct dsnn_layer *l);
/* Active connections and nnz / (out_c in_c k k) (0 before init). */
DSNN_API size_t dsnn_sparse_conv2d_nnz(const struct dsnn_layer *l);
DSNN_API double dsnn_sparse_conv2d_density(const struct dsnn_layer *l);
/* When on, every backward also computes the dense weight gradient [out_c][in_c k k] (one extra
 * sgemm: dense cost), which dsnn_sparse_conv2d_grow_gradient needs. Turn it on for the backward
 * before a RigL update only. */
DSNN_API void dsnn_sparse_conv2d_keep_dense_grad(struct dsnn_layer *l, bool on);
/* Hebbian coactivations of a sparse conv2d (nupic's DSConv2d / DSCNN): for the batch x (the
 * layer's input) and y (its output, or the output after an activation function), the number of
 * (sample, output position) pairs at which both the input element a connection reads and the
 * output it feeds are > 0. acc[k] (CSR order of the weight store, nnz entries) is incremented at
 * the active connections (cost of a sparse weight gradient), dense[o (in_c k k) + col] for every
 * pair when not NULL (cost of a dense one). Either may be NULL. Overwrites the layer's input
 * panels (the next backward packs them again). */
DSNN_API enum dsnn_status dsnn_sparse_conv2d_coactivations(struct dsnn_layer *l, const float *x,
                                                           const float *y, int batch, float *acc,
                                                           float *dense, struct dsnn_error *err);
/* RigL growth: activates the count inactive connections of largest |dL/dW| of the last backward
 * (run with keep_dense_grad on), like dsnn_sparse_grow_gradient. */
DSNN_API enum dsnn_status dsnn_sparse_conv2d_grow_gradient(struct dsnn_layer *l, size_t count,
                                                           struct dsnn_rng *rng,
                                                           struct dsnn_error *err);

/* ======================================================================================
 * Pooling (PyTorch MaxPool2d / AvgPool2d, ceil_mode False, dilation 1)
 *
 * out = (h + 2 padding - kernel) / stride + 1; padding <= kernel / 2. stride <= 0 means stride
 * = kernel (PyTorch's default). Max pooling ignores padding (-inf) and routes the gradient to the
 * first maximum of each window (NaN counts as a maximum, as PyTorch). Average pooling divides by
 * kernel^2 (count_include_pad, PyTorch's default) or by the in-bounds count.
 * ====================================================================================== */

DSNN_API struct dsnn_layer *dsnn_maxpool2d_new(const char *name, struct dsnn_shape in, int kernel,
                                               int stride, int padding, struct dsnn_error *err);
DSNN_API struct dsnn_layer *dsnn_avgpool2d_new(const char *name, struct dsnn_shape in, int kernel,
                                               int stride, int padding, bool count_include_pad,
                                               struct dsnn_error *err);
/* Average over all positions: {c, h, w} -> {c, 1, 1} (AdaptiveAvgPool2d(1)). type "avgpool2d". */
DSNN_API struct dsnn_layer *dsnn_global_avgpool2d_new(const char *name, struct dsnn_shape in,
                                                      struct dsnn_error *err);

/* ======================================================================================
 * Residual block: y = relu?(inner(x) + shortcut(x))
 *
 * inner is a chain of layers (e.g. conv-bn-relu-conv-bn); shortcut is an empty chain (identity)
 * or a chain such as 1x1 conv (stride s) + batch norm for downsampling. The block takes ownership
 * of the given layers (also on failure), initialises them in order (inner, then shortcut) from the
 * init stream, forwards train / eval to them and owns their activation buffers. Its params array
 * holds every inner and shortcut parameter block in that order, so optimizers see them; the
 * inner layers' own params pointers are redirected to it, so their save / load (which recurse
 * from the block's) see the optimizer state too. on_epoch_end is forwarded to the inner layers.
 *
 * Inner layers may be sparse ("sparse_linear", "sparse_conv2d"): their topology edits work on
 * the block's moved parameter blocks (optimizer state included). Nested residual blocks are
 * refused. Layer names must be unique within the block.
 * ====================================================================================== */

/* type "residual". inner: n_inner >= 1 layers, chained shapes; shortcut: n_shortcut >= 0
 * layers from the block input to the inner output shape (0: identity, then the inner output
 * shape must equal the input shape). relu: apply ReLU after the sum. */
DSNN_API struct dsnn_layer *dsnn_residual_new(const char *name, struct dsnn_layer *const *inner,
                                              size_t n_inner, struct dsnn_layer *const *shortcut,
                                              size_t n_shortcut, bool relu,
                                              struct dsnn_error *err);
/* Layers of the block (shortcut: the shortcut chain). Owned by the block; NULL out of range. */
DSNN_API size_t dsnn_residual_n_layers(const struct dsnn_layer *l, bool shortcut);
DSNN_API struct dsnn_layer *dsnn_residual_layer(struct dsnn_layer *l, bool shortcut, size_t i);
/* Replaces layer i of the inner (or shortcut) chain by `layer` (same input and output shapes, a
 * name unique within the block; not a residual block) before the block is initialised, and frees
 * the old one. Takes ownership of `layer` (freed on failure). Used to make a block's convolutions
 * sparse (dsnn/sparse_model.h). */
DSNN_API enum dsnn_status dsnn_residual_replace(struct dsnn_layer *l, bool shortcut, size_t i,
                                                struct dsnn_layer *layer,
                                                struct dsnn_error *err);
/* ResNet BasicBlock (torchvision): conv3x3(stride)-bn-relu-conv3x3-bn, no conv biases, and a
 * 1x1 conv(stride)-bn shortcut when stride != 1 or in.c != out_channels; ReLU after the sum.
 * Inner names: conv1 bn1 relu1 conv2 bn2; shortcut: shortcut_conv shortcut_bn. */
DSNN_API struct dsnn_layer *dsnn_resnet_basic_block_new(const char *name, struct dsnn_shape in,
                                                        int out_channels, int stride,
                                                        struct dsnn_error *err);

#ifdef __cplusplus
}
#endif
#endif
