/* dsnn/layer.h - the layer interface (ops table + base struct) and parameter blocks.
 *
 * A layer implementation embeds struct dsnn_layer as its FIRST member and points `ops` at a
 * static table. Activations are sample-major: x is [batch][dsnn_shape_size(in)], y is
 * [batch][dsnn_shape_size(out)]. Layers are created cheaply (no parameter memory) and allocate
 * their parameters in ops->init, so that a model can still swap a dense layer for a sparse one
 * between building the network and initialising it. Shapes are checked when a layer is added to
 * a network (dsnn_net_add), not when it runs. */
#ifndef DSNN_LAYER_H
#define DSNN_LAYER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include "dsnn/data.h"
#include "dsnn/export.h"
#include "dsnn/rng.h"
#include "dsnn/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define DSNN_OPT_STATE_MAX 2
#define DSNN_LAYER_NAME_MAX 32

/* A contiguous run of trainable values with their gradients and optimizer state.
 * The layer owns all arrays. Optimizer state slots are allocated on first use by the optimizer
 * (dsnn_param_block_state); a layer that edits its topology (sparse layers) permutes value, grad
 * and every non-NULL state slot together, and zeroes the state of new entries. */
struct dsnn_param_block {
    char name[DSNN_LAYER_NAME_MAX]; /* "weight", "bias" */
    float *value;
    float *grad; /* written (not accumulated) by backward */
    size_t n;
    size_t capacity; /* allocated length of value/grad/state (>= n) */
    float *state[DSNN_OPT_STATE_MAX];
    bool no_weight_decay; /* e.g. biases or BN parameters, if so configured */
};

/* Zeroed state slot i (0 <= i < DSNN_OPT_STATE_MAX) of b, allocated on first call with the block's
 * capacity. NULL if out of memory. */
DSNN_API float *dsnn_param_block_state(struct dsnn_param_block *b, int slot);
/* Frees value, grad and state arrays (not the block itself). */
DSNN_API void dsnn_param_block_release(struct dsnn_param_block *b);
/* Allocates value/grad (zeroed) with capacity n. */
DSNN_API enum dsnn_status dsnn_param_block_alloc(struct dsnn_param_block *b, const char *name,
                                                 size_t n);

struct dsnn_layer;

/* Ops table of a layer type. Fields are only ever appended.
 *
 * The layer kit: forward and backward are required; every other member may be NULL, with the
 * default written next to it, so a trivial layer is its type, forward and backward. The
 * defaults are applied by dsnn_layer_init, dsnn_layer_save, dsnn_layer_load and dsnn_layer_free,
 * which is how libdsnn (dsnn_net, residual blocks, sparse conv2d) runs a layer: code outside
 * libdsnn that drives layers itself (a network plugin's composite layer, a test) must call
 * these too, or check the member for NULL, rather than call ops->init / save / load / destroy
 * of a built-in layer directly (several of them are NULL). */
struct dsnn_layer_ops {
    const char *type; /* "linear", "sparse_linear", "relu" ... */
    /* Allocates and initialises parameters; rng is the trial's init stream.
     * Optional: NULL = nothing to initialise. */
    enum dsnn_status (*init)(struct dsnn_layer *l, struct dsnn_rng *rng, struct dsnn_error *err);
    /* y = f(x) for a batch; train selects training behaviour (dropout, BN statistics). On
     * failure returns the status and sets err (may be NULL) with a message naming the layer. */
    enum dsnn_status (*forward)(struct dsnn_layer *l, const float *x, float *y, int batch,
                                bool train, struct dsnn_error *err);
    /* Given x, y of the last forward and dy, writes parameter gradients and, if dx != NULL, dx;
     * errors as forward. */
    enum dsnn_status (*backward)(struct dsnn_layer *l, const float *x, const float *y,
                                 const float *dy, float *dx, int batch, struct dsnn_error *err);
    /* Checkpoint: writes / reads everything the layer needs to continue training exactly
     * (parameters, topology, optimizer state slots, running statistics). Optional (set both or
     * neither): NULL = the layer's state is its parameter blocks, written / read by
     * dsnn_layer_save_params / dsnn_layer_load_params when it has any (n_params > 0), nothing
     * otherwise (stateless layers). */
    enum dsnn_status (*save)(struct dsnn_layer *l, FILE *f, struct dsnn_error *err);
    enum dsnn_status (*load)(struct dsnn_layer *l, FILE *f, struct dsnn_error *err);
    /* Frees the layer (which was allocated by its constructor). Optional: NULL = the layer is
     * one allocation (dsnn_layer_alloc) that owns its parameter blocks: the blocks are released
     * (dsnn_layer_release_params) and the allocation freed. */
    void (*destroy)(struct dsnn_layer *l);
    /* Optional (may be NULL): called once at the end of every training epoch by
     * dsnn_net_on_epoch_end, e.g. k-winners decay their boost strength here (nupic's
     * update_boost_strength). Composite layers forward it to their inner layers. */
    void (*on_epoch_end)(struct dsnn_layer *l);
};

struct dsnn_layer {
    const struct dsnn_layer_ops *ops;
    char name[DSNN_LAYER_NAME_MAX]; /* unique in a network, e.g. "fc1" */
    struct dsnn_shape in, out;
    struct dsnn_param_block *params; /* n_params blocks, owned by the layer */
    size_t n_params;
    bool initialized;
};

/* Checkpoint helpers for layers whose whole state is their parameter blocks (dense layers):
 * write / read each block's values and allocated optimizer state slots, checking names and
 * sizes. */
DSNN_API enum dsnn_status dsnn_layer_save_params(struct dsnn_layer *l, FILE *f,
                                                 struct dsnn_error *err);
DSNN_API enum dsnn_status dsnn_layer_load_params(struct dsnn_layer *l, FILE *f,
                                                 struct dsnn_error *err);

/* Allocates a layer of `size` bytes (the implementation's struct, which embeds struct dsnn_layer
 * first), zeroed, with ops, name (truncated to DSNN_LAYER_NAME_MAX - 1) and shapes set: the
 * start of every layer constructor. NULL with err set when out of memory. Free it with free()
 * (in ops->destroy; the default destroy does). */
DSNN_API void *dsnn_layer_alloc(size_t size, const struct dsnn_layer_ops *ops, const char *name,
                                struct dsnn_shape in, struct dsnn_shape out,
                                struct dsnn_error *err);

/* ops->init (nothing when NULL); on success marks the layer initialised. */
DSNN_API enum dsnn_status dsnn_layer_init(struct dsnn_layer *l, struct dsnn_rng *rng,
                                          struct dsnn_error *err);
/* ops->save / ops->load, or their default (see struct dsnn_layer_ops). */
DSNN_API enum dsnn_status dsnn_layer_save(struct dsnn_layer *l, FILE *f, struct dsnn_error *err);
DSNN_API enum dsnn_status dsnn_layer_load(struct dsnn_layer *l, FILE *f, struct dsnn_error *err);

/* Parameter blocks of a dense layer in blocks[] (the layer's own array, 2 entries): "weight"
 * with n_weight values (zeroed) and, if n_bias > 0, "bias" with n_bias values. What blocks[]
 * held before is released first. On success l->params = blocks and l->n_params = 1 or 2; on
 * DSNN_ERR_NOMEM both blocks are released and l is unchanged (the caller writes the message). */
DSNN_API enum dsnn_status dsnn_layer_alloc_params(struct dsnn_layer *l,
                                                  struct dsnn_param_block *blocks,
                                                  size_t n_weight, size_t n_bias);
/* Releases the layer's parameter blocks l->params[0 .. n_params) (dsnn_param_block_release);
 * the default destroy does this before freeing the layer. */
DSNN_API void dsnn_layer_release_params(struct dsnn_layer *l);

/* Type checks. */
DSNN_API bool dsnn_layer_is(const struct dsnn_layer *l, const char *type);
/* Number of trainable scalars (active connections for sparse layers). */
DSNN_API size_t dsnn_layer_param_count(const struct dsnn_layer *l);
/* NULL-safe destructor: ops->destroy, or its default (see struct dsnn_layer_ops). */
DSNN_API void dsnn_layer_free(struct dsnn_layer *l);

/* ---- Built-in layers (constructors return a layer the caller owns, or NULL with err set) ---- */

/* Initialisation of dense weights. */
enum dsnn_weight_init {
    DSNN_INIT_KAIMING_UNIFORM = 0, /* PyTorch nn.Linear default: U(-1/sqrt(fan_in), +) */
    DSNN_INIT_KAIMING_NORMAL,      /* N(0, 2/fan_in) */
    DSNN_INIT_XAVIER_UNIFORM,      /* U(-sqrt(6/(fan_in+fan_out)), +) */
    DSNN_INIT_NORMAL,              /* N(0, init_std^2) */
    DSNN_INIT_ZERO
};
/* Draws one initial weight of a fan_in x fan_out layer (shared with sparse layers). */
DSNN_API float dsnn_weight_init_draw(enum dsnn_weight_init init, int fan_in, int fan_out,
                                     double std, struct dsnn_rng *rng);

/* Dense fully connected layer y = x W^T + b, W is [n_out][n_in] (OpenBLAS sgemm). */
DSNN_API struct dsnn_layer *dsnn_linear_new(const char *name, int n_in, int n_out, bool bias,
                                            struct dsnn_error *err);
/* Weight matrix [n_out][n_in] row-major of an initialised dense linear layer (NULL otherwise). */
DSNN_API float *dsnn_linear_weight(struct dsnn_layer *l);
DSNN_API float *dsnn_linear_bias(struct dsnn_layer *l);
/* Initialisation to use (before init). Default: kaiming uniform. */
DSNN_API void dsnn_linear_set_init(struct dsnn_layer *l, enum dsnn_weight_init init, double std);
/* Dimensions of a linear layer (dense or sparse). */
DSNN_API bool dsnn_linear_dims(const struct dsnn_layer *l, int *n_in, int *n_out, bool *bias);

/* Element-wise ReLU over a shape. */
DSNN_API struct dsnn_layer *dsnn_relu_new(const char *name, struct dsnn_shape shape,
                                          struct dsnn_error *err);

/* Reshapes any input shape to a flat vector {size, 1, 1} (a copy). */
DSNN_API struct dsnn_layer *dsnn_flatten_new(const char *name, struct dsnn_shape in,
                                             struct dsnn_error *err);

#ifdef __cplusplus
}
#endif
#endif
