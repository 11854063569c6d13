/* dsnn/sparse.h - truly sparse linear layers and their topology (prune / grow).
 *
 * A "sparse_linear" layer computes y = x W^T + b like a dense "linear" layer (same sample-major
 * activations x [batch][n_in], y [batch][n_out]) but stores only the active connections of
 * W [n_out][n_in]: compressed sparse rows (CSR) with column indices sorted within each row, and
 * never allocates an n_out x n_in matrix. Forward, input gradient and weight gradient cost
 * O(nnz * batch); the weight gradient is computed only at active connections.
 *
 * Parameter blocks: params[0] "weight" holds the nnz values in CSR order (row by row, columns
 * ascending); params[1] "bias" (if any) n_out values. Optimizer state slots of the weight block
 * are per connection: topology edits move value, grad and every allocated state slot together
 * and zero the state of new connections. Pointers into the blocks and CSR arrays are valid until
 * the next topology edit or load.
 *
 * Topology edits (prune / grow) keep these invariants: nnz exactly as requested, no duplicate
 * connections, columns sorted within each row, new connections have zero gradient and zero
 * optimizer state and a value drawn as configured (enum dsnn_sparse_grow_init), surviving
 * connections keep value, gradient and state. All randomness comes from the struct dsnn_rng passed
 * in, so edits are deterministic. The layer's buffers of the last forward / backward are kept,
 * so a topology edit between steps costs O(nnz + changes), not O(n_in * n_out), except for growth
 * by a dense score (RigL), which streams tiles of rows.
 *
 * Forward / backward: backward uses the input of the last forward (kept transposed) and, for the
 * input gradient, the weights as they were in the last training forward (forward with
 * train = true gathers them in column order), as autograd does; a topology edit in between is
 * allowed (gradients then follow the new topology).
 *
 * Inside a dsnn_net, consecutive sparse layers (or sparse layers separated by a relu layer,
 * which dsnn_net_init fuses) hand feature-major panels to each other: the second reads the
 * first's output panel as its input and returns the input gradient as a panel already masked by
 * the first's ReLU, so neither the activation nor the gradient between them is transposed. The
 * first's sample-major output is then written only on demand (dsnn_net_activation). Results are
 * bit-identical to running the layers one by one.
 *
 * Limits: nnz < 2^32 per layer; n_in, n_out < 2^31. Kernels use OpenMP with
 * dsnn_get_num_threads() threads and the best kernel set of the CPU, scalar, AVX2+FMA or
 * AVX-512, chosen at run time (dsnn/isa.h, DSNN_ISA); results do not depend on the number of
 * threads. Performance
 * note: on cores shared with other processes (e.g. parallel trials), OMP_WAIT_POLICY=passive
 * avoids threads spinning against each other. */
#ifndef DSNN_SPARSE_H
#define DSNN_SPARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "dsnn/export.h"
#include "dsnn/layer.h"
#include "dsnn/rng.h"
#include "dsnn/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Initial topology ---- */

/* How the initial connections are placed (nupic.research's mask types). Values are part of the
 * ABI and of checkpoints: append only. */
enum dsnn_sparse_mask {
    DSNN_SPARSE_MASK_PRECISE = 0,        /* exactly round(density * n_in * n_out) connections,
                                            uniformly at random over the whole matrix */
    DSNN_SPARSE_MASK_PRECISE_PER_OUTPUT, /* each output row gets exactly round(density * n_in) */
    DSNN_SPARSE_MASK_APPROXIMATE         /* each connection independently with prob. density */
};

/* Value of a connection created by a grow. Append only. */
enum dsnn_sparse_grow_init {
    DSNN_SPARSE_GROW_ZERO = 0,  /* 0 (RigL) */
    DSNN_SPARSE_GROW_NORMAL,    /* N(0, grow_std^2) */
    DSNN_SPARSE_GROW_LIKE_INIT  /* drawn like the layer's initial weights (SET) */
};

/* Configuration of a sparse linear layer. Start from dsnn_sparse_init_default(). */
struct dsnn_sparse_init {
    double density; /* fraction of active connections in [0, 1]; used when epsilon <= 0 */
    double epsilon; /* > 0: Erdős–Rényi, density = min(1, epsilon (n_in + n_out) / (n_in n_out)) */
    enum dsnn_sparse_mask mask;
    enum dsnn_weight_init weight_init; /* distribution of initial values (and of the bias:
                                          U(+-1/sqrt(fan_in)) as PyTorch, unless ZERO) */
    double weight_std;                 /* for DSNN_INIT_NORMAL */
    bool sparse_fan_in; /* false: weight_init sees fan_in = n_in (dense init then masked, as
                           nupic / RigL); true: fan_in = max(1, round(density * n_in)) */
    enum dsnn_sparse_grow_init grow_init;
    double grow_std; /* for DSNN_SPARSE_GROW_NORMAL */
};

/* density 1, epsilon 0, PRECISE, kaiming uniform, dense fan-in, grow ZERO. */
DSNN_API struct dsnn_sparse_init dsnn_sparse_init_default(void);

/* Erdős–Rényi density min(1, epsilon (n_in + n_out) / (n_in n_out)). */
DSNN_API double dsnn_sparse_er_density(int n_in, int n_out, double epsilon);
/* Density a layer gets from init (ER when epsilon > 0), clamped to [0, 1]. */
DSNN_API double dsnn_sparse_init_density(const struct dsnn_sparse_init *init, int n_in,
                                         int n_out);

/* Erdős–Rényi-Kernel (RigL): distributes a global density over n layers so that
 * sum_i d_i n_in_i n_out_i = density * sum_i n_in_i n_out_i with d_i = min(1, eps (n_in_i +
 * n_out_i) / (n_in_i n_out_i)); layers that would exceed 1 (and those with dense[i] set; dense may
 * be NULL) are dense and eps is renormalised over the rest. Writes densities[n] and, if not NULL,
 * *epsilon. DSNN_ERR_INVALID if density is outside [0, 1] or the dense layers alone exceed it. */
DSNN_API enum dsnn_status dsnn_sparse_erk_densities(size_t n, const int *n_in, const int *n_out,
                                                    const bool *dense, double density,
                                                    double *densities, double *epsilon,
                                                    struct dsnn_error *err);
/* ERK over a list of layers before init: dense "linear" and "conv2d" layers count as dense, each
 * "sparse_linear" and "sparse_conv2d" layer's density is set (its epsilon cleared). A matrix's
 * raw density is (n_in + n_out) / (n_in n_out), a kernel's (c_in + c_out + kh + kw) /
 * (c_in c_out kh kw), as RigL's ERK. Other layer types are refused. */
DSNN_API enum dsnn_status dsnn_sparse_erk_apply(struct dsnn_layer *const *layers, size_t n,
                                                double density, struct dsnn_error *err);

/* ---- The layer ---- */

/* New sparse linear layer (no parameter memory until init). init may be NULL (defaults).
 * Caller owns the layer (or the net it is added to). */
DSNN_API struct dsnn_layer *dsnn_sparse_linear_new(const char *name, int n_in, int n_out,
                                                   bool bias,
                                                   const struct dsnn_sparse_init *init,
                                                   struct dsnn_error *err);
/* True for a "sparse_linear" layer. */
DSNN_API bool dsnn_sparse_is(const struct dsnn_layer *l);
/* Dimensions (for dsnn_linear_dims); false if l is not a sparse linear layer. */
DSNN_API bool dsnn_sparse_linear_dims_(const struct dsnn_layer *l, int *n_in, int *n_out,
                                       bool *bias);
/* Replaces the configuration; before init only (DSNN_ERR_INVALID after). */
DSNN_API enum dsnn_status dsnn_sparse_set_init(struct dsnn_layer *l,
                                               const struct dsnn_sparse_init *init,
                                               struct dsnn_error *err);
/* The configuration (read-only view; NULL if not sparse). */
DSNN_API const struct dsnn_sparse_init *dsnn_sparse_get_init(const struct dsnn_layer *l);
/* Changes how grown connections are initialised (any time). */
DSNN_API void dsnn_sparse_set_grow_init(struct dsnn_layer *l, enum dsnn_sparse_grow_init g,
                                        double std);
/* Optional activation fused into the layer (epilogue of the forward kernel; its derivative is
 * applied while the backward transposes dy, using the layer's output y, or by the next sparse
 * layer's input-gradient kernel when the two are adjacent in a net): y = relu(x W^T + b).
 * Replaces a separate "relu" layer after this one at no cost; dsnn_net_init sets it for a sparse
 * layer followed by a relu layer. Configuration, not state: it is not part of checkpoints.
 * Append only. */
enum dsnn_sparse_activation { DSNN_SPARSE_ACT_NONE = 0, DSNN_SPARSE_ACT_RELU = 1 };
DSNN_API enum dsnn_status dsnn_sparse_set_activation(struct dsnn_layer *l,
                                                     enum dsnn_sparse_activation a,
                                                     struct dsnn_error *err);
DSNN_API enum dsnn_sparse_activation dsnn_sparse_get_activation(const struct dsnn_layer *l);
/* Pre-allocates the activation buffers for batches up to max_batch (otherwise done on the first
 * forward with a larger batch). After init only. */
DSNN_API enum dsnn_status dsnn_sparse_reserve(struct dsnn_layer *l, int max_batch,
                                              struct dsnn_error *err);

/* ---- Accessors (l must be an initialised sparse linear layer; 0 / NULL otherwise) ---- */

DSNN_API size_t dsnn_sparse_nnz(const struct dsnn_layer *l);
/* nnz / (n_in n_out). */
DSNN_API double dsnn_sparse_density(const struct dsnn_layer *l);
/* n_in n_out: the connections the layer can hold (0 if l is not a sparse linear layer). */
DSNN_API size_t dsnn_sparse_capacity(const struct dsnn_layer *l);
DSNN_API struct dsnn_param_block *dsnn_sparse_weight(struct dsnn_layer *l);
DSNN_API struct dsnn_param_block *dsnn_sparse_bias(struct dsnn_layer *l); /* NULL: no bias */

/* A view of the connections; valid until the next topology edit. Connection k of row r is
 * k in [row_ptr[r], row_ptr[r + 1]), at column col[k], with value[k] (the weight block). */
struct dsnn_sparse_csr {
    int n_out, n_in;
    size_t nnz;
    const int64_t *row_ptr; /* [n_out + 1] */
    const int32_t *col;     /* [nnz] */
    float *value;           /* [nnz] */
    float *grad;            /* [nnz] */
};
DSNN_API bool dsnn_sparse_get_csr(struct dsnn_layer *l, struct dsnn_sparse_csr *out);
/* Calls fn for every connection in CSR order (k = its index in the weight block). */
typedef void (*dsnn_sparse_visit_fn)(void *user, int row, int col, size_t k, float value);
DSNN_API void dsnn_sparse_foreach(const struct dsnn_layer *l, dsnn_sparse_visit_fn fn,
                                  void *user);
/* Index of connection (row, col) in the weight block, or -1 if inactive. O(log row nnz). */
DSNN_API int64_t dsnn_sparse_find(const struct dsnn_layer *l, int row, int col);

/* Counts of the last topology update. An update is a run of prune calls followed by a run of
 * grow calls: a prune after a grow (or the first edit) starts a new update. */
struct dsnn_sparse_update_stats {
    size_t pruned, grown;
};
DSNN_API struct dsnn_sparse_update_stats dsnn_sparse_last_update(const struct dsnn_layer *l);

/* Checks the invariants (sizes, sorted unique columns in range, block sizes); DSNN_ERR_INTERNAL
 * with a message on a violation. O(nnz). For tests and debugging. */
DSNN_API enum dsnn_status dsnn_sparse_check(const struct dsnn_layer *l, struct dsnn_error *err);

/* ---- Prune (remove active connections) ---- */

/* Removes the count connections of smallest |w| (ties: lowest index first; NaN first). */
DSNN_API enum dsnn_status dsnn_sparse_prune_magnitude(struct dsnn_layer *l, size_t count,
                                                      struct dsnn_error *err);
/* The signed magnitude rule (SET, DSNN): of the weights >= 0 (NaN counts as >= 0, pruned
 * first) and of the weights < 0, those closest to zero are pruned, separately; how many is the
 * rounding, a stated choice of each scheme:
 *   DSNN_PRUNE_ROUND_NEAREST  round(f n_pos) and round(f n_neg), half to even (Python's round):
 *                             the `set` model, whose counts are symmetric in the two signs;
 *   DSNN_PRUNE_ROUND_NUPIC    int(f n_pos) and n_neg - int((1 - f) n_neg), nupic's thresholds
 *                             (truncation): the dsnn-* models, as nupic's DSNN.
 * Ties: lowest index first. This is the one implementation of the rule; both the `set` layer
 * call below and dsnn_rule_magnitude_keep (dynsparse_rules.h) use it. */
enum dsnn_prune_rounding {
    DSNN_PRUNE_ROUND_NEAREST = 0,
    DSNN_PRUNE_ROUND_NUPIC = 1
};
/* How many of `size` weights of one sign the rule prunes (fraction in [0, 1]). */
DSNN_API size_t dsnn_signed_prune_count(size_t size, double fraction, bool negative,
                                        enum dsnn_prune_rounding rounding);
/* Sets remove[k] = 1 (and leaves the other entries as they are) for the weights w[0..n) that
 * the rule prunes; *n_removed (may be NULL) gets their number. */
DSNN_API enum dsnn_status dsnn_signed_magnitude_mark(const float *w, size_t n, double fraction,
                                                     enum dsnn_prune_rounding rounding,
                                                     uint8_t *remove, size_t *n_removed,
                                                     struct dsnn_error *err);
/* The same rule with the counts given: count_pos of the weights >= 0 and count_neg of the weights
 * < 0, each at most the size of its group (nupic PruningModel's half-and-half counts). */
DSNN_API enum dsnn_status dsnn_signed_magnitude_mark_counts(const float *w, size_t n,
                                                            size_t count_pos, size_t count_neg,
                                                            uint8_t *remove, size_t *n_removed,
                                                            struct dsnn_error *err);
/* SET on a sparse layer: the signed magnitude rule with DSNN_PRUNE_ROUND_NEAREST, fraction in
 * [0, 1]. *removed (may be NULL) gets the total count. */
DSNN_API enum dsnn_status dsnn_sparse_prune_signed(struct dsnn_layer *l, double fraction,
                                                   size_t *removed, struct dsnn_error *err);
/* Removes the count connections of lowest score; score[nnz] is aligned with the weight block
 * (ties: lowest index first; NaN counts as lowest). */
DSNN_API enum dsnn_status dsnn_sparse_prune_score(struct dsnn_layer *l, const float *score,
                                                  size_t count, struct dsnn_error *err);
/* Removes the connections k with remove[k] != 0 (remove[nnz] aligned with the weight block). */
DSNN_API enum dsnn_status dsnn_sparse_prune_mask(struct dsnn_layer *l, const uint8_t *remove,
                                                 struct dsnn_error *err);

/* ---- Grow (activate inactive connections) ---- */

/* Activates count inactive connections uniformly at random without duplicates. rng also draws
 * the new values. DSNN_ERR_INVALID if fewer than count connections are inactive. */
DSNN_API enum dsnn_status dsnn_sparse_grow_random(struct dsnn_layer *l, size_t count,
                                                  struct dsnn_rng *rng, struct dsnn_error *err);
/* Score of every connection of rows [row0, row1): out[(r - row0) * n_in + c]. Scores at active
 * connections are ignored. */
typedef enum dsnn_status (*dsnn_sparse_score_fn)(void *user, struct dsnn_layer *l, int row0,
                                                 int row1, float *out, struct dsnn_error *err);
/* Activates the count inactive connections of highest score (ties: lowest row*n_in+col first;
 * NaN counts as -inf). fn is called on tiles of rows (about 4 MiB of scores each), so no dense
 * n_out x n_in matrix is held. rng draws the new values (may be NULL for GROW_ZERO). */
DSNN_API enum dsnn_status dsnn_sparse_grow_score(struct dsnn_layer *l, size_t count,
                                                 dsnn_sparse_score_fn fn, void *user,
                                                 struct dsnn_rng *rng, struct dsnn_error *err);
/* RigL: grows the count inactive connections of largest |dL/dW| of the last backward (dense
 * gradient computed tile by tile; valid between a backward and the next forward). */
DSNN_API enum dsnn_status dsnn_sparse_grow_gradient(struct dsnn_layer *l, size_t count,
                                                    struct dsnn_rng *rng,
                                                    struct dsnn_error *err);
/* Dense gradient dL/dW of rows [row0, row1) from the last backward (dy^T x for those rows):
 * out[(r - row0) * n_in + c], for active and inactive connections alike. */
DSNN_API enum dsnn_status dsnn_sparse_dense_grad_rows(struct dsnn_layer *l, int row0, int row1,
                                                      float *out, struct dsnn_error *err);
/* Activates the given connections (rows[i], cols[i]), i < count; each must be inactive and
 * appear once. For plugins that choose connections themselves (e.g. Hebbian growth). */
DSNN_API enum dsnn_status dsnn_sparse_grow_at(struct dsnn_layer *l, const int32_t *rows,
                                              const int32_t *cols, size_t count,
                                              struct dsnn_rng *rng, struct dsnn_error *err);

/* Sets nnz exactly: prunes by magnitude or grows at random. */
DSNN_API enum dsnn_status dsnn_sparse_set_nnz(struct dsnn_layer *l, size_t nnz,
                                              struct dsnn_rng *rng, struct dsnn_error *err);

#ifdef __cplusplus
}
#endif
#endif
