/* sparse/sparse_impl.h (private) - the sparse linear layer's struct and the engine's kernels.
 *
 * Layout. Connections are CSR over W [n_out][n_in]: row_ptr[n_out + 1], col[cap] sorted within a
 * row, values in params[0] (same order). A CSC index (col_ptr, csc_row, csc_k = index of the
 * connection in CSR order) is rebuilt lazily after a topology change, for the input gradient.
 *
 * Activations are transposed to feature-major panels, so the batch is the vector dimension. The
 * padded batch ld (batch rounded up to SP_PAD, padding zero) is cut into chunks of
 * SP_CHUNK columns, stored chunk-major: chunk c of xT is a contiguous [n_in][cs] block,
 * cs = min(ld, SP_CHUNK) (contiguous chunks: fewer pages, fewer TLB misses). Per chunk:
 *   forward   yT[o][:] = b[o] + sum_k v[k] xT[col[k]][:]           (CSR, row in registers)
 *   weight    dW[k]    = dot(dyT[o][:], xT[col[k]][:])              (sampled dense-dense product)
 *   input     dxT[i][:] = sum_{k in column i} v[k] dyT[row[k]][:]  (CSC, race-free)
 * The batch is cut into chunks of SP_CHUNK columns; a work item is (chunk, part of the rows),
 * so with batch 128 on 2 threads each thread owns one chunk end to end (its panels stay in its
 * own L2). Weight gradients of chunk c > 0 go to a partial buffer and are summed in chunk order,
 * so results do not depend on the thread count.
 *
 * Panel hand-off. Inside a dsnn_net, adjacent sparse layers are linked (sp_link_net, before
 * every pass): a layer whose input is its predecessor's output reads the predecessor's output
 * panel yT as its x panel instead of transposing x again, and its backward writes the input
 * gradient panel already masked by the predecessor's fused ReLU and hands it over as the
 * predecessor's dy panel; the sample-major gradient between the two is then never written (the
 * net does not expose it). The sample-major output y of a layer followed by a sparse layer is
 * written on demand only (sp_materialize: dsnn_net_activation, or a reader of y).
 * Borrowed panels are checked by generation counters, so a stale borrow is never used. */
#ifndef DSNN_SPARSE_IMPL_H
#define DSNN_SPARSE_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "dsnn/sparse.h"

#define SP_PAD 16   /* ld is a multiple of this (floats; 64 bytes) */
#define SP_CHUNK 64 /* batch columns per work item (multiple of SP_PAD) */
/* The weight and bias parameter blocks of a struct sp_linear *. */
#define SP_WB(S) ((S)->base.params[0])
#define SP_BB(S) ((S)->base.params[1])

struct sp_linear {
    struct dsnn_layer base; /* first */
    int n_in, n_out;
    bool bias;
    struct dsnn_sparse_init init;
    double density; /* resolved at init */
    /* The parameter blocks, weight [cap] and bias [n_out], are base.params[0] and [1]: own[]
     * until a container (a residual block) moves them into its own array and points
     * base.params there; every access goes through base.params (SP_WB / SP_BB). */
    struct dsnn_param_block own[2];

    /* Dense gradient [n_out][n_in] of the last backward, supplied by the layer that owns this one
     * as its weight store (a sparse conv2d with keep_dense_grad on; NULL: none). When the store
     * has an owner (ext_owned), dsnn_sparse_dense_grad_rows and dsnn_sparse_grow_gradient read it
     * instead of the layer's own panels. */
    bool ext_owned;
    const float *ext_grad;

    /* CSR (SP_WB(S).n == nnz, SP_WB(S).capacity == cap) */
    size_t nnz, cap;
    int64_t *row_ptr; /* [n_out + 1] */
    int32_t *col;     /* [cap] */

    uint64_t topo_gen; /* bumped whenever the CSR topology may have changed (with csc_valid) */

    /* CSC index, valid when csc_valid */
    bool csc_valid;
    int64_t *col_ptr; /* [n_in + 1] */
    int32_t *csc_row; /* [cap] */
    uint32_t *csc_k;  /* [cap] */
    float *csc_val;   /* [cap] values in CSC order, gathered by a training forward */
    bool csc_val_valid;
    bool want_dx;     /* the last backward computed dx (so a training forward gathers csc_val) */
    enum dsnn_sparse_activation act;

    /* activation panels, for batches up to ld_max (padded) */
    int ld_max;
    float *xT;  /* [n_in][ld] own x panel (when not borrowed) */
    float *yT;  /* [n_out][ld] forward output (after the fused activation) */
    float *dyT; /* [n_out][ld] own dy panel (allocated when a backward needs it) */
    float *dxT; /* [n_in][ld] input gradient (allocated on first backward with dx) */
    const float *xTp;  /* x panel of the last pass: xT or prev->yT (borrowed) */
    const float *dyTp; /* dy panel of the last backward: dyT or next->dxT (borrowed) */

    /* panel hand-off between adjacent sparse layers of a net (NULL outside a net) */
    struct sp_linear *prev, *next;
    uint64_t fwd_gen, bwd_gen; /* bumped when yT / dxT are rewritten or freed */
    float *y_out;              /* y of the last forward, which yT holds (NULL: none) */
    int y_batch;
    bool y_pending;            /* y_out not written yet (yT holds it) */
    const struct sp_linear *x_src; /* xTp is x_src->yT at generation x_src_gen */
    uint64_t x_src_gen;
    const struct sp_linear *dy_src; /* dyTp is dy_src->dxT at generation dy_src_gen */
    uint64_t dy_src_gen;
    /* dy promised by next's backward as a panel: next->dxT for the dy buffer dy_for */
    const float *dy_for;
    int dy_for_batch;
    uint64_t dy_for_gen;
    float *db_part; /* [n_chunks][n_out] bias gradient per chunk */
    float *dw_part; /* [n_chunks - 1][dw_part_cap] weight gradient of chunks > 0 */
    size_t dw_part_cap;
    int dw_part_chunks;

    const float *cache_x; /* x of the last forward (xT holds it) */
    int cache_batch;
    bool xT_valid;   /* xT holds cache_x */
    bool dyT_valid;  /* yT holds dyT of the last backward (for dense gradients) */

    struct dsnn_sparse_update_stats stats;
    int last_edit; /* 0 none, 1 prune, 2 grow */
};

/* The layer behind l if it is an initialised sparse linear layer, else NULL. */
struct sp_linear *sp_get(const struct dsnn_layer *l);

/* Capacity >= need for col / values / grads / state slots; CSC and partial buffers dropped. */
enum dsnn_status sp_reserve_nnz(struct sp_linear *S, size_t need,
                                     struct dsnn_error *err);
/* Index of connection (row, col) in CSR order, or -1 if it is inactive (row and col in range). */
int64_t sp_find(const struct sp_linear *S, int row, int col);
/* Marks caches that depend on the topology stale (and bumps topo_gen). */
void sp_topology_changed(struct sp_linear *S);
/* The topology generation of l (a "sparse_linear" layer): equal values mean the same row_ptr
 * and col (a cache built from them is still valid). */
uint64_t sp_topology_gen(const struct dsnn_layer *l);
/* Marks l (a "sparse_linear" layer) as the weight store of another layer and sets the dense
 * gradient it supplies (g: [n_out][n_in], valid until the next call; NULL: none). */
void sp_set_ext_grad(struct dsnn_layer *l, const float *g);
/* Whether the dense gradient of the last backward is available (own panels or the owner's). */
bool sp_dense_grad_valid(const struct sp_linear *S);
/* Links adjacent sparse linear layers of a sequential net for the panel hand-off (any layer may
 * be of another type: only sparse linear pairs are linked). */
void sp_link_net(struct dsnn_layer *const *layers, size_t n);
/* Writes the pending sample-major output of l (no-op if l is not sparse or nothing is pending). */
void sp_materialize(struct dsnn_layer *l);
/* The x and dy panels of the last backward are intact (dense gradients can be formed). */
bool sp_grad_panels_valid(const struct sp_linear *S);
/* Draws one value of a grown connection. */
float sp_grow_value(const struct sp_linear *S, struct dsnn_rng *rng);
/* Draws one initial weight / bias value. */
float sp_init_value(const struct sp_linear *S, struct dsnn_rng *rng);
int sp_fan_in(const struct sp_linear *S);

/* ---- Topology sampling (sparse/init.c) ---- */

/* Samples the initial topology: row_ptr [n_out + 1] (caller-allocated) and *col (malloc'd, nnz
 * entries, sorted within rows). */
enum dsnn_status sp_sample_topology(int n_in, int n_out, double density,
                                         enum dsnn_sparse_mask mask, struct dsnn_rng *rng,
                                         int64_t *row_ptr, int32_t **col, size_t *nnz,
                                         struct dsnn_error *err);

/* ---- Helpers (sparse/util.c) ---- */

/* Sorts keys ascending (LSD radix; tmp may be NULL: allocated). false on out of memory. */
bool sp_sort_u64(uint64_t *keys, size_t n, uint64_t max_key);
bool sp_sort_u32(uint32_t *keys, size_t n);
/* Order-preserving map of a float to uint32: NaN -> 0 (lowest), -0 and +0 the same key. The
 * one float key of libdsnn's selections (sparse topology, the prune rules, global selection). */
static inline uint32_t sp_float_key(float f)
{
    union {
        float f;
        uint32_t u;
    } v = {f};
    if (f != f)
        return 0;
    if (f == 0.0f)
        v.u = 0; /* -0 == +0 */
    return (v.u & 0x80000000u) ? ~v.u : (v.u | 0x80000000u);
}
/* Marks remove[k] = 1 for the count entries of smallest key (ties: lowest index). Keys of entries
 * that must not be chosen are UINT32_MAX; count must not exceed the number of other entries. */
void sp_mark_smallest(const uint32_t *keys, size_t n, size_t count, uint8_t *remove);
/* Finds the count-th smallest key (count >= 1, count <= n): *thr, and *n_equal_take = how many
 * keys equal to *thr belong to the count smallest (the rest are < *thr). */
void sp_radix_select(const uint32_t *keys, size_t n, size_t count, uint32_t *thr,
                          size_t *n_equal_take);

/* Open-addressing set of uint64 keys. */
struct sp_hashset {
    uint64_t *slots; /* UINT64_MAX = empty */
    size_t mask;
};
bool sp_hashset_init(struct sp_hashset *h, size_t expected);
/* true if inserted, false if already present. */
bool sp_hashset_insert(struct sp_hashset *h, uint64_t key);
bool sp_hashset_contains(const struct sp_hashset *h, uint64_t key);
void sp_hashset_free(struct sp_hashset *h);

/* ---- Kernels (sparse/kernels.inc, one set per ISA; chosen at run time in isa.c) ----
 * A chunk's panel is [n][ld] (ld = its row stride, a multiple of SP_PAD, 64-byte aligned)
 * holding batch columns [j0, j0 + w); ranges are half-open.
 *
 * transpose_in:      xT[i][j - j0] = x[j][i] for features i in [i0, i1), samples j in [j0, j1);
 *                    0 for j >= batch.
 * transpose_in_relu: the same with x masked by the ReLU derivative: y[j][i] > 0 ? x[j][i] : 0.
 * transpose_out:     y[j][i] = yT[i][j - j0] for i in [i0, i1), j in [j0, min(j1, batch)).
 * spmm:  out[r][0:w] = (bias ? bias[r] : 0) + sum_{k in ptr[r]..ptr[r+1]} v(k) in[idx[k]][0:w]
 *        for r in [r0, r1), where v(k) = val[vk ? vk[k] : k]; then max(., 0) if relu; then, if
 *        mask, out[r][j] = 0 where mask[r][j] <= 0 (mask: a panel like out, the ReLU derivative).
 * sddmm: out[k] = dot(dyT[r][0:w], xT[idx[k]][0:w]) for the connections k of rows [r0, r1);
 *        db[r] = sum dyT[r][0:w] if db != NULL.
 * Every set computes the same sums in the same connection order; they differ only in rounding
 * (FMA vs separate multiply and add, and the order of the horizontal sums of sddmm).
 *
 * Convolution kernels (sparse/conv2d.c) work on panels of SP_PAD samples: one "vector" is the
 * SP_PAD floats of one (position, channel) element of a chunk, 64-byte aligned; offsets and
 * steps are in floats (multiples of SP_PAD). For npos positions q:
 * conv_spmm:  out[q out_step + r out_rs + s] = (bias ? bias[r] : 0)
 *                 + sum_{k in ptr[r]..ptr[r+1]} val[k] in[q in_step + off[k] + s]
 *             for rows r in [r0, r1), samples s < SP_PAD (forward: rows are output channels, off
 *             the input element of a connection; input gradient: rows are input channels).
 * conv_sddmm: grad[k] += sum_q sum_s dy[q dy_step + r dy_rs + s] x[q x_step + off[k] + s]
 *             for the connections k of rows [r0, r1) (weight gradient of one output row).
 *
 * The dense convolution engine (layers/conv_gemm.c) multiplies packed blocks with one tile:
 * gemm_tile:  C[i][j] = (acc ? C[i][j] : 0) + sum_{q < k} A[q SP_GMR + i] B[q ldb + j]
 *             for i < SP_GMR, j < gemm_nr; C rows ldc apart (no alignment needed). */
#define SP_GMR 6 /* rows of a gemm tile */
struct sp_kernels {
    const char *isa; /* "scalar", "avx2", "avx512" */
    void (*spmm)(const int64_t *ptr, const int32_t *idx, const float *val, const uint32_t *vk,
                 const float *bias, const float *in, size_t ld, float *out, int r0, int r1, int w,
                 bool relu, const float *mask);
    void (*sddmm)(const int64_t *ptr, const int32_t *idx, const float *dyT, const float *xT,
                  size_t ld, float *out, float *db, int r0, int r1, int w);
    void (*transpose_in)(const float *x, int n, int batch, float *xT, size_t ld, int i0, int i1,
                         int j0, int j1);
    void (*transpose_in_relu)(const float *x, const float *y, int n, int batch, float *xT,
                              size_t ld, int i0, int i1, int j0, int j1);
    void (*transpose_out)(const float *yT, size_t ld, int n, float *y, int batch, int i0, int i1,
                          int j0, int j1);
    void (*conv_spmm)(const int64_t *ptr, const int32_t *off, const float *val, const float *bias,
                      const float *in, size_t in_step, float *out, size_t out_step,
                      size_t out_rs, int r0, int r1, int npos);
    void (*conv_sddmm)(const int64_t *ptr, const int32_t *off, const float *dy, size_t dy_step,
                       size_t dy_rs, const float *x, size_t x_step, float *grad, int r0, int r1,
                       int npos);
    void (*gemm_tile)(int k, const float *A, const float *B, size_t ldb, float *C, size_t ldc,
                      bool acc);
    int gemm_nr; /* columns of a gemm tile: 16 (avx2), 32 (avx512; scalar mirrors it) */
};

extern const struct sp_kernels sp_kernels_scalar, sp_kernels_avx2,
    sp_kernels_avx512;

/* The kernel set in use (isa.c): the best the CPU has, or DSNN_ISA's, or dsnn_isa_set's. */
const struct sp_kernels *sp_kernels(void);

static inline void dsnn_sp_transpose_in(const float *x, int n, int batch, float *xT, size_t ld,
                                        int i0, int i1, int j0, int j1)
{
    sp_kernels()->transpose_in(x, n, batch, xT, ld, i0, i1, j0, j1);
}
static inline void dsnn_sp_transpose_in_relu(const float *x, const float *y, int n, int batch,
                                             float *xT, size_t ld, int i0, int i1, int j0, int j1)
{
    sp_kernels()->transpose_in_relu(x, y, n, batch, xT, ld, i0, i1, j0, j1);
}
static inline void dsnn_sp_transpose_out(const float *yT, size_t ld, int n, float *y, int batch,
                                         int i0, int i1, int j0, int j1)
{
    sp_kernels()->transpose_out(yT, ld, n, y, batch, i0, i1, j0, j1);
}
static inline void dsnn_sp_spmm(const int64_t *ptr, const int32_t *idx, const float *val,
                                const uint32_t *vk, const float *bias, const float *in, size_t ld,
                                float *out, int r0, int r1, int w, bool relu, const float *mask)
{
    sp_kernels()->spmm(ptr, idx, val, vk, bias, in, ld, out, r0, r1, w, relu, mask);
}
static inline void dsnn_sp_sddmm(const int64_t *ptr, const int32_t *idx, const float *dyT,
                                 const float *xT, size_t ld, float *out, float *db, int r0, int r1,
                                 int w)
{
    sp_kernels()->sddmm(ptr, idx, dyT, xT, ld, out, db, r0, r1, w);
}

#endif
