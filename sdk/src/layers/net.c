/* layers/net.c - a sequential network and its activation buffers. */
#include "dsnn/io.h"
#include "dsnn/net.h"
#include "dsnn/sparse.h"
#include "layers/layers_impl.h"
#include "sparse/sparse_impl.h"

#include <cblas.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

struct dsnn_net {
    struct dsnn_layer **layers;
    size_t n_layers, cap;
    struct dsnn_shape input;
    int n_classes;
    int max_batch;
    bool initialized;
    float **act;      /* act[i]: output of layer i, [max_batch][out size] */
    bool *absorbed;   /* absorbed[i]: relu layer i is fused into the sparse layer i - 1 and
                       * passes its input through (act[i] == act[i - 1], not allocated) */
    struct dsnn_layer **run; /* the layers that run (not absorbed), in order */
    size_t n_run;
    float *grad[2];   /* ping-pong gradient buffers, [max_batch][largest size] */
    const float *x;   /* input of the last forward (owned by the caller) */
    int last_batch;
};

struct dsnn_net *dsnn_net_new(struct dsnn_shape input, int n_classes, struct dsnn_error *err)
{
    if (dsnn_shape_size(input) <= 0 || n_classes <= 0) {
        dsnn_error_set(err, DSNN_ERR_INVALID, "network: invalid input shape or class count");
        return NULL;
    }
    struct dsnn_net *net = calloc(1, sizeof *net);
    if (!net) {
        dsnn_error_set(err, DSNN_ERR_NOMEM, "out of memory");
        return NULL;
    }
    net->input = input;
    net->n_classes = n_classes;
    return net;
}

void dsnn_net_free(struct dsnn_net *net)
{
    if (!net)
        return;
    for (size_t i = 0; i < net->n_layers; i++)
        dsnn_layer_free(net->layers[i]);
    if (net->act)
        for (size_t i = 0; i < net->n_layers; i++)
            if (!(net->absorbed && net->absorbed[i]))
                free(net->act[i]);
    free(net->act);
    free(net->absorbed);
    free(net->run);
    free(net->grad[0]);
    free(net->grad[1]);
    free(net->layers);
    free(net);
}

static bool shape_eq(struct dsnn_shape a, struct dsnn_shape b)
{
    return a.c == b.c && a.h == b.h && a.w == b.w;
}

enum dsnn_status dsnn_net_add(struct dsnn_net *net, struct dsnn_layer *layer,
                              struct dsnn_error *err)
{
    if (!layer) /* a failed constructor passed straight in: keep its message */
        return err && err->status != DSNN_OK
                   ? err->status
                   : dsnn_error_set(err, DSNN_ERR_INVALID, "network: NULL layer");
    if (net->initialized) {
        enum dsnn_status st = dsnn_error_set(
            err, DSNN_ERR_INVALID, "network: cannot add layer '%s' after init", layer->name);
        dsnn_layer_free(layer); /* after the message: it names the layer */
        return st;
    }
    struct dsnn_shape prev = net->n_layers ? net->layers[net->n_layers - 1]->out : net->input;
    const char *prev_name = net->n_layers ? net->layers[net->n_layers - 1]->name : "input";
    if (!shape_eq(prev, layer->in)) {
        enum dsnn_status st = dsnn_error_set(
            err, DSNN_ERR_INVALID,
            "network: layer '%s' expects input %dx%dx%d but '%s' produces %dx%dx%d", layer->name,
            layer->in.c, layer->in.h, layer->in.w, prev_name, prev.c, prev.h, prev.w);
        dsnn_layer_free(layer);
        return st;
    }
    for (size_t i = 0; i < net->n_layers; i++) {
        if (strcmp(net->layers[i]->name, layer->name) == 0) {
            enum dsnn_status st = dsnn_error_set(
                err, DSNN_ERR_INVALID, "network: two layers are named '%s' (layers %zu and %zu)",
                layer->name, i, net->n_layers);
            dsnn_layer_free(layer);
            return st;
        }
    }
    if (net->n_layers == net->cap) {
        size_t cap = net->cap ? net->cap * 2 : 8;
        struct dsnn_layer **nl = realloc(net->layers, cap * sizeof *nl);
        if (!nl) {
            dsnn_layer_free(layer);
            return dsnn_error_set(err, DSNN_ERR_NOMEM, "out of memory");
        }
        net->layers = nl;
        net->cap = cap;
    }
    net->layers[net->n_layers++] = layer;
    return DSNN_OK;
}

enum dsnn_status dsnn_net_replace(struct dsnn_net *net, size_t i, struct dsnn_layer *layer,
                                  struct dsnn_error *err)
{
    if (!layer)
        return dsnn_error_set(err, DSNN_ERR_INVALID, "network: NULL layer");
    enum dsnn_status st = DSNN_OK;
    if (net->initialized)
        st = dsnn_error_set(err, DSNN_ERR_INVALID, "network: cannot replace a layer after init");
    else if (i >= net->n_layers)
        st = dsnn_error_set(err, DSNN_ERR_INVALID, "network: no layer %zu", i);
    else if (!shape_eq(net->layers[i]->in, layer->in) || !shape_eq(net->layers[i]->out, layer->out))
        st = dsnn_error_set(err, DSNN_ERR_INVALID,
                            "network: replacement for layer '%s' has different shapes",
                            net->layers[i]->name);
    if (st != DSNN_OK) {
        dsnn_layer_free(layer);
        return st;
    }
    dsnn_layer_free(net->layers[i]);
    net->layers[i] = layer;
    return DSNN_OK;
}

size_t dsnn_net_n_layers(const struct dsnn_net *net)
{
    return net->n_layers;
}
struct dsnn_layer *dsnn_net_layer(const struct dsnn_net *net, size_t i)
{
    return i < net->n_layers ? net->layers[i] : NULL;
}
struct dsnn_shape dsnn_net_input_shape(const struct dsnn_net *net)
{
    return net->input;
}
int dsnn_net_n_classes(const struct dsnn_net *net)
{
    return net->n_classes;
}
bool dsnn_net_initialized(const struct dsnn_net *net)
{
    return net->initialized;
}

enum dsnn_status dsnn_net_init(struct dsnn_net *net, struct dsnn_rng *rng, int max_batch,
                               struct dsnn_error *err)
{
    if (net->initialized)
        return dsnn_error_set(err, DSNN_ERR_INVALID, "network: already initialised");
    if (net->n_layers == 0)
        return dsnn_error_set(err, DSNN_ERR_INVALID, "network: has no layers");
    if (max_batch <= 0)
        return dsnn_error_set(err, DSNN_ERR_INVALID, "network: invalid batch size %d", max_batch);
    struct dsnn_shape out = net->layers[net->n_layers - 1]->out;
    if (dsnn_shape_size(out) != net->n_classes)
        return dsnn_error_set(err, DSNN_ERR_INVALID,
                              "network: last layer '%s' outputs %lld values, the dataset has %d "
                              "classes",
                              net->layers[net->n_layers - 1]->name,
                              (long long)dsnn_shape_size(out), net->n_classes);
    for (size_t i = 0; i < net->n_layers; i++) {
        struct dsnn_layer *l = net->layers[i];
        enum dsnn_status st = l->initialized ? DSNN_OK : dsnn_layer_init(l, rng, err);
        if (st != DSNN_OK)
            return st;
    }
    net->act = calloc(net->n_layers, sizeof *net->act);
    net->absorbed = calloc(net->n_layers, sizeof *net->absorbed);
    net->run = calloc(net->n_layers, sizeof *net->run);
    if (!net->act || !net->absorbed || !net->run)
        return dsnn_error_set(err, DSNN_ERR_NOMEM, "out of memory");
    /* A relu layer right after a sparse linear layer is fused into it: the sparse kernels apply
     * the ReLU (bit-identical results), the relu layer passes its input through, and sparse
     * layers separated only by a ReLU become adjacent for the panel hand-off. The sparse layer's
     * activation is then the ReLU output, the same values as the relu layer's. */
    for (size_t i = 1; i < net->n_layers; i++) {
        struct dsnn_layer *a = net->layers[i - 1], *r = net->layers[i];
        if (dsnn_sparse_is(a) && dsnn_layer_is(r, "relu") && shape_eq(a->out, r->in) &&
            dsnn_sparse_set_activation(a, DSNN_SPARSE_ACT_RELU, NULL) == DSNN_OK)
            net->absorbed[i] = true;
    }
    net->n_run = 0;
    for (size_t i = 0; i < net->n_layers; i++)
        if (!net->absorbed[i])
            net->run[net->n_run++] = net->layers[i];
    int64_t largest = dsnn_shape_size(net->input);
    for (size_t i = 0; i < net->n_layers; i++) {
        int64_t n = dsnn_shape_size(net->layers[i]->out);
        if (n > largest)
            largest = n;
        if (net->absorbed[i]) {
            net->act[i] = net->act[i - 1];
            continue;
        }
        net->act[i] = malloc(sizeof(float) * (size_t)n * (size_t)max_batch);
        if (!net->act[i])
            return dsnn_error_set(err, DSNN_ERR_NOMEM, "network: cannot allocate activations");
    }
    for (int k = 0; k < 2; k++) {
        net->grad[k] = malloc(sizeof(float) * (size_t)largest * (size_t)max_batch);
        if (!net->grad[k])
            return dsnn_error_set(err, DSNN_ERR_NOMEM, "network: cannot allocate gradients");
    }
    net->max_batch = max_batch;
    net->initialized = true;
    return DSNN_OK;
}

/* err emptied before a layer op, so that a layer that fails without a message is noticed. */
static struct dsnn_error *clear(struct dsnn_error *err)
{
    if (err) {
        err->status = DSNN_OK;
        err->msg[0] = '\0';
    }
    return err;
}

/* The layer's own message, or (a layer that gave none) a generic one naming it. */
static enum dsnn_status layer_failed(struct dsnn_error *err, enum dsnn_status st,
                                     const struct dsnn_layer *l, const char *op)
{
    if (err && err->msg[0])
        return err->status = st;
    return dsnn_error_set(err, st, "layer '%s': %s failed (%s)", l->name, op, dsnn_status_str(st));
}

const float *dsnn_net_forward(struct dsnn_net *net, const float *x, int batch, bool train,
                              struct dsnn_error *err)
{
    if (!net->initialized) {
        dsnn_error_set(err, DSNN_ERR_INVALID, "network: forward before init");
        return NULL;
    }
    if (batch <= 0 || batch > net->max_batch) {
        dsnn_error_set(err, DSNN_ERR_INVALID, "network: batch %d outside [1, %d]", batch,
                       net->max_batch);
        return NULL;
    }
    sp_link_net(net->run, net->n_run); /* panel hand-off between sparse layers */
    const float *in = x;
    for (size_t i = 0; i < net->n_layers; i++) {
        struct dsnn_layer *l = net->layers[i];
        if (net->absorbed[i]) /* act[i] is act[i - 1], already the ReLU output */
            continue;
        enum dsnn_status st = l->ops->forward(l, in, net->act[i], batch, train, clear(err));
        if (st != DSNN_OK) {
            layer_failed(err, st, l, "forward");
            return NULL;
        }
        in = net->act[i];
    }
    net->x = x;
    net->last_batch = batch;
    return net->act[net->n_layers - 1];
}

const float *dsnn_net_activation(const struct dsnn_net *net, size_t i)
{
    if (!net->act || i >= net->n_layers)
        return NULL;
    size_t j = i;
    while (j > 0 && net->absorbed[j])
        j--;
    sp_materialize(net->layers[j]); /* a sparse layer feeding a sparse layer defers it */
    return net->act[i];
}

enum dsnn_status dsnn_net_backward(struct dsnn_net *net, const float *dlogits, int batch,
                                   struct dsnn_error *err)
{
    if (!net->x || batch != net->last_batch)
        return dsnn_error_set(err, DSNN_ERR_INVALID,
                              "network: backward does not match the last forward");
    sp_link_net(net->run, net->n_run);
    const float *dy = dlogits;
    int g = 0; /* gradient buffers alternate between the layers that run */
    for (size_t k = net->n_layers; k-- > 0;) {
        struct dsnn_layer *l = net->layers[k];
        if (net->absorbed[k]) /* the fused sparse layer applies the ReLU derivative */
            continue;
        const float *x = k ? net->act[k - 1] : net->x;
        float *dx = k ? net->grad[g] : NULL;
        g ^= 1;
        enum dsnn_status st = l->ops->backward(l, x, net->act[k], dy, dx, batch, clear(err));
        if (st != DSNN_OK)
            return layer_failed(err, st, l, "backward");
        dy = dx;
    }
    return DSNN_OK;
}

void dsnn_net_on_epoch_end(struct dsnn_net *net)
{
    for (size_t i = 0; net && i < net->n_layers; i++) {
        struct dsnn_layer *l = net->layers[i];
        if (l->ops->on_epoch_end)
            l->ops->on_epoch_end(l);
    }
}

size_t dsnn_net_param_count(const struct dsnn_net *net)
{
    size_t n = 0;
    for (size_t i = 0; i < net->n_layers; i++)
        n += dsnn_layer_param_count(net->layers[i]);
    return n;
}

enum dsnn_status dsnn_net_save(struct dsnn_net *net, FILE *f, struct dsnn_error *err)
{
    enum dsnn_status st;
    if ((st = dsnn_io_write(f, "DNET", 4, "network tag", err)) ||
        (st = dsnn_io_write_u64(f, net->n_layers, "layer count", err)))
        return st;
    return ly_save_chain(net->layers, net->n_layers, f, err);
}

enum dsnn_status dsnn_net_load(struct dsnn_net *net, FILE *f, struct dsnn_error *err)
{
    enum dsnn_status st =
        dsnn_io_expect_count(f, "DNET", net->n_layers, "layers", "the network", err);
    if (st != DSNN_OK)
        return st;
    return ly_load_chain(net->layers, net->n_layers, "", "network", f, err);
}

enum dsnn_status ly_save_chain(struct dsnn_layer *const *layers, size_t n, FILE *f,
                               struct dsnn_error *err)
{
    enum dsnn_status st;
    for (size_t i = 0; i < n; i++) {
        struct dsnn_layer *l = layers[i];
        char type[DSNN_LAYER_NAME_MAX] = {0};
        snprintf(type, sizeof type, "%s", l->ops->type);
        if ((st = dsnn_io_write(f, l->name, sizeof l->name, "layer name", err)) ||
            (st = dsnn_io_write(f, type, sizeof type, "layer type", err)))
            return st;
        if ((st = dsnn_layer_save(l, f, err)) != DSNN_OK)
            return dsnn_error_prefix(err, "layer '%s'", l->name);
    }
    return DSNN_OK;
}

enum dsnn_status ly_load_chain(struct dsnn_layer *const *layers, size_t n, const char *of,
                               const char *owner, FILE *f, struct dsnn_error *err)
{
    enum dsnn_status st;
    for (size_t i = 0; i < n; i++) {
        struct dsnn_layer *l = layers[i];
        char name[DSNN_LAYER_NAME_MAX], type[DSNN_LAYER_NAME_MAX];
        if ((st = dsnn_io_read(f, name, sizeof name, "layer name", err)) ||
            (st = dsnn_io_read(f, type, sizeof type, "layer type", err)))
            return st;
        name[sizeof name - 1] = type[sizeof type - 1] = '\0';
        if (strcmp(name, l->name) != 0 || strcmp(type, l->ops->type) != 0)
            return dsnn_error_set(err, DSNN_ERR_FORMAT,
                                  "checkpoint layer %zu%s is '%s' (%s), the %s has '%s' (%s)", i,
                                  of, name, type, owner, l->name, l->ops->type);
        if ((st = dsnn_layer_load(l, f, err)) != DSNN_OK)
            return dsnn_error_prefix(err, "layer '%s'", l->name);
    }
    return DSNN_OK;
}

static int g_threads;
static bool g_blas_serial; /* OpenBLAS set to one thread (ly_sgemm splits the work itself) */

void dsnn_set_num_threads(int n)
{
    if (n <= 0)
        n = omp_get_num_procs();
    g_threads = n;
    openblas_set_num_threads(1);
    g_blas_serial = true;
    omp_set_num_threads(n);
}

/* All parallelism is OpenMP's: OpenBLAS runs on one thread and large products are split over
 * the OpenMP threads here (rows of C, or columns when there are fewer rows). OpenBLAS's own
 * pthread pool would compete with the OpenMP threads for the same cores (each side spin-waits
 * while the other works: a 784-300-100-10 MLP spent 60 % of its time spinning and yielding). */
void ly_sgemm(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float *A,
                int lda, const float *B, int ldb, float beta, float *C, int ldc)
{
    if (!g_blas_serial) {
        openblas_set_num_threads(1);
        g_blas_serial = true;
    }
    const enum CBLAS_TRANSPOSE ta = trans_a ? CblasTrans : CblasNoTrans;
    const enum CBLAS_TRANSPOSE tb = trans_b ? CblasTrans : CblasNoTrans;
    const int T = dsnn_get_num_threads();
    const bool split_m = M >= N;
    const int n = split_m ? M : N;
    if (T <= 1 || 2.0 * M * N * K < BLAS_MT_FLOP || n < 16 * T || omp_in_parallel()) {
        cblas_sgemm(CblasRowMajor, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
#pragma omp parallel num_threads(T)
    {
        int64_t a, b; /* rows / columns [a, b), whole cache lines of C */
        dsnn_part_range(n, omp_get_thread_num(), omp_get_num_threads(), 16, &a, &b);
        if (b > a) {
            if (split_m)
                cblas_sgemm(CblasRowMajor, ta, tb, (int)(b - a), N, K, alpha,
                            trans_a ? A + a : A + (size_t)a * lda, lda, B, ldb, beta,
                            C + (size_t)a * ldc, ldc);
            else
                cblas_sgemm(CblasRowMajor, ta, tb, M, (int)(b - a), K, alpha, A, lda,
                            trans_b ? B + (size_t)a * ldb : B + a, ldb, beta, C + a, ldc);
        }
    }
}

int dsnn_get_num_threads(void)
{
    return g_threads > 0 ? g_threads : omp_get_max_threads();
}
