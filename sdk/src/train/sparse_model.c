/* train/sparse_model.c - nupic's SparseModel: sparsify the network's linear layers, log density and
 * prune / regrow rounds, checkpoint. With sparse_linear_only = false the conv2d layers, those of
 * residual blocks included, become truly sparse too; rules see a sparse conv through its weight
 * store (a "sparse_linear" [out_c][in_c k k] matrix), so every rule works on both. */
#include "dsnn/io.h"
#include "dsnn/layers.h"
#include "dsnn/sparse_model.h"
#include "train/train_impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const mask_names[] = {"precise", "precise_per_output", "approximate", NULL};
static const char *const init_names[] = {"kaiming_uniform", "kaiming_normal", "xavier_uniform",
                                         "normal", "zero", NULL};
static const enum dsnn_weight_init init_values[] = {
    DSNN_INIT_KAIMING_UNIFORM, DSNN_INIT_KAIMING_NORMAL, DSNN_INIT_XAVIER_UNIFORM,
    DSNN_INIT_NORMAL, DSNN_INIT_ZERO};
static const char *const grow_names[] = {"zero", "normal", "like_init", NULL};
static const enum dsnn_sparse_grow_init grow_values[] = {
    DSNN_SPARSE_GROW_ZERO, DSNN_SPARSE_GROW_NORMAL, DSNN_SPARSE_GROW_LIKE_INIT};
static const char *const dist_names[] = {"uniform", "erk", NULL};

struct sparse_keys {
    double epsilon, weight_std, grow_std;
    int dist, mask, winit, ginit;
    int64_t start, end;
    bool linear_only, sparse_fan_in, log_surviving;
};
#define SK_AT(f) DSNN_KEY_AT(struct sparse_keys, f)
static const struct dsnn_key_spec sparse_model_keys[] = {
    {.name = "on_perc", .type = DSNN_KEY_FLOAT_OR_ARRAY, .default_value = "(unset: ER with epsilon)",
     DSNN_KEY_RANGE(0, 1),
     .doc = "fraction of active weights of each sparse layer (one value, or one per sparse "
            "layer); with density_distribution = \"erk\" the global fraction"},
    {.name = "epsilon", .type = DSNN_KEY_FLOAT, .def = 20, DSNN_KEY_RANGE(0, 1e9), SK_AT(epsilon),
     .doc = "Erdos-Renyi: density = epsilon (n_in + n_out) / (n_in n_out), used when on_perc is "
            "unset"},
    {.name = "density_distribution", .type = DSNN_KEY_STRING, .def_str = "uniform",
     .choices = dist_names, SK_AT(dist),
     .doc = "\"uniform\" (on_perc per layer) or \"erk\" (Erdos-Renyi-Kernel: global on_perc "
            "distributed over the sparse layers as RigL does)"},
    {.name = "sparse_type", .type = DSNN_KEY_STRING, .def_str = "precise", .choices = mask_names,
     SK_AT(mask),
     .doc = "initial mask: \"precise\" (exact count over the layer), \"precise_per_output\" "
            "(exact count per output unit) or \"approximate\" (each weight with probability "
            "on_perc)"},
    {.name = "start_sparse", .type = DSNN_KEY_INT, .def = 0, SK_AT(start),
     .doc = "first layer (0-based, input side) made sparse, counting linear layers and, with "
            "sparse_linear_only = false, conv2d layers (those of residual blocks included, in "
            "network order)"},
    {.name = "end_sparse", .type = DSNN_KEY_INT, .def = -1, SK_AT(end),
     .doc = "layers from start_sparse up to, not including, this index are sparse (-1: "
            "all, output layer included; -2: all but the output layer)"},
    {.name = "sparse_linear_only", .type = DSNN_KEY_BOOL, .def = true, SK_AT(linear_only),
     .doc = "only linear layers are made sparse (convolutions stay dense); false: conv2d layers "
            "too, truly sparse (kernel weights pruned and grown like connections)"},
    {.name = "weight_init", .type = DSNN_KEY_STRING, .def_str = "kaiming_uniform",
     .choices = init_names, SK_AT(winit),
     .doc = "initial weights: kaiming_uniform (PyTorch default), kaiming_normal, xavier_uniform, "
            "normal (weight_std), zero"},
    {.name = "weight_std", .type = DSNN_KEY_FLOAT, .def = 0.01, DSNN_KEY_RANGE(0, 1e3),
     SK_AT(weight_std), .doc = "std of weight_init = \"normal\""},
    {.name = "sparse_fan_in", .type = DSNN_KEY_BOOL, .def = false, SK_AT(sparse_fan_in),
     .doc = "scale weight_init by the sparse fan-in (density n_in) instead of n_in"},
    {.name = "log_surviving_synapses", .type = DSNN_KEY_BOOL, .def = false, SK_AT(log_surviving),
     .doc = "also log surviving_synapses_avg: the mean of the layers' surviving_synapses_<layer> "
            "(nupic log_surviving_synapses)"},
    {.name = "grow_init", .type = DSNN_KEY_STRING, .def_str = "zero", .choices = grow_names,
     SK_AT(ginit),
     .doc = "value of regrown weights: \"zero\", \"normal\" (grow_std) or \"like_init\""},
    {.name = "grow_std", .type = DSNN_KEY_FLOAT, .def = 0.01, DSNN_KEY_RANGE(0, 1e3),
     SK_AT(grow_std), .doc = "std of grow_init = \"normal\""},
};
#undef SK_AT
DSNN_KEY_TABLE_DEFINE(, dsnn_sparse_model_keys, sparse_model_keys);

/* A layer that a sparse model may make sparse: a linear layer of the network or, with
 * sparse_linear_only = false, a conv2d layer, also inside a residual block (inner chain, then
 * shortcut: the order of PyTorch's named_modules). */
struct sm_cand {
    size_t top;             /* index in the network */
    struct dsnn_layer *res; /* the residual block holding it, or NULL */
    bool shortcut;
    size_t j; /* index in the block's chain */
};

static struct dsnn_layer *sm_cand_layer(struct dsnn_net *net, const struct sm_cand *c)
{
    return c->res ? dsnn_residual_layer(c->res, c->shortcut, c->j) : dsnn_net_layer(net, c->top);
}

static bool sm_is_cand(const struct dsnn_layer *l, bool linear_only)
{
    return dsnn_layer_is(l, "linear") || (!linear_only && dsnn_layer_is(l, "conv2d"));
}

static size_t sm_candidates(struct dsnn_net *net, bool linear_only, struct sm_cand *c, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < dsnn_net_n_layers(net) && n < max; i++) {
        struct dsnn_layer *l = dsnn_net_layer(net, i);
        if (sm_is_cand(l, linear_only))
            c[n++] = (struct sm_cand){.top = i};
        if (linear_only || !dsnn_layer_is(l, "residual"))
            continue;
        for (int sc = 0; sc < 2; sc++)
            for (size_t j = 0; j < dsnn_residual_n_layers(l, sc) && n < max; j++)
                if (sm_is_cand(dsnn_residual_layer(l, sc, j), false))
                    c[n++] = (struct sm_cand){.top = i, .res = l, .shortcut = sc, .j = j};
    }
    return n;
}

/* Replaces candidate c by its truly sparse version (*out). Layers of a residual block are named
 * "<block>.<layer>", so that their metrics are unique in the network. */
static enum dsnn_status sm_sparsify(struct dsnn_net *net, const struct sm_cand *c,
                                    const struct dsnn_sparse_init *init, struct dsnn_layer **out,
                                    struct dsnn_error *err)
{
    struct dsnn_layer *old = sm_cand_layer(net, c);
    char name[DSNN_LAYER_NAME_MAX];
    const size_t nb = c->res ? strlen(c->res->name) : 0, nl = strlen(old->name);
    if (c->res && nb + 1 + nl >= sizeof name)
        return dsnn_error_set(err, DSNN_ERR_INVALID,
                              "sparse model: the name '%s.%s' of a sparse layer is longer than "
                              "%d characters",
                              c->res->name, old->name, DSNN_LAYER_NAME_MAX - 1);
    if (c->res) {
        memcpy(name, c->res->name, nb);
        name[nb] = '.';
        memcpy(name + nb + 1, old->name, nl + 1);
    } else {
        memcpy(name, old->name, nl + 1);
    }
    struct dsnn_layer *sl;
    if (dsnn_layer_is(old, "conv2d")) {
        sl = dsnn_sparse_conv2d_like(old, name, init, err);
    } else {
        int n_in, n_out;
        bool bias;
        dsnn_linear_dims(old, &n_in, &n_out, &bias);
        sl = dsnn_sparse_linear_new(name, n_in, n_out, bias, init, err);
    }
    if (!sl)
        return err ? err->status : DSNN_ERR_NOMEM;
    *out = sl;
    return c->res ? dsnn_residual_replace(c->res, c->shortcut, c->j, sl, err)
                  : dsnn_net_replace(net, c->top, sl, err);
}

enum dsnn_status sm_configure(struct dsnn_sparse_model *sm, const struct dsnn_cfg *cfg,
                              const struct dsnn_run_ctx *ctx, struct dsnn_net *net,
                              struct dsnn_error *err)
{
    enum dsnn_status st = bm_configure(&sm->base, cfg, ctx, net, err);
    if (st != DSNN_OK)
        return st;
    dsnn_rng_seed(&sm->topo_rng, sm->base.seed, DSNN_RNG_STREAM_TOPOLOGY);

    double on_perc[DSNN_SPARSE_MODEL_MAX_LAYERS];
    size_t n_on = 0;
    struct sparse_keys k = {0};
    bool have_on = dsnn_cfg_has(cfg, "on_perc");
    if ((have_on && (st = dsnn_cfg_float_or_array(cfg, "on_perc", 1.0, on_perc,
                                                  DSNN_SPARSE_MODEL_MAX_LAYERS, &n_on, err))) ||
        (st = dsnn_keys_read(&dsnn_sparse_model_keys, cfg, &k, err)))
        return st;
    const double epsilon = k.epsilon, weight_std = k.weight_std, grow_std = k.grow_std;
    const int mask = k.mask, winit = k.winit, ginit = k.ginit, dist = k.dist;
    const int64_t start = k.start, end = k.end;
    const bool linear_only = k.linear_only, sparse_fan_in = k.sparse_fan_in;
    sm->log_surviving = k.log_surviving;
    if (dist == 1 && (!have_on || n_on != 1))
        return dsnn_error_set(err, DSNN_ERR_CONFIG,
                              "%s: density_distribution = \"erk\" needs one global on_perc value",
                              dsnn_cfg_path(cfg));

    /* The candidate layers, input side first; choose [start, end). */
    struct sm_cand cand[DSNN_SPARSE_MODEL_MAX_LAYERS * 4];
    const size_t n_lin = sm_candidates(net, linear_only, cand, DSNN_COUNT_OF(cand));
    int64_t e = end == -1 ? (int64_t)n_lin : end == -2 ? (int64_t)n_lin - 1 : end;
    if (start < 0 || start > (int64_t)n_lin || e < start || e > (int64_t)n_lin) {
        char where[300];
        return dsnn_error_set(err, DSNN_ERR_CONFIG,
                              "%s: start_sparse = %lld, end_sparse = %lld do not select %s "
                              "layers of a network that has %zu",
                              dsnn_cfg_where(cfg, "start_sparse", where, sizeof where),
                              (long long)start, (long long)end,
                              linear_only ? "linear" : "linear or conv2d", n_lin);
    }
    size_t n_sparse = (size_t)(e - start);
    if (n_sparse > DSNN_SPARSE_MODEL_MAX_LAYERS)
        return dsnn_error_set(err, DSNN_ERR_CONFIG, "%s: more than %d sparse layers",
                              dsnn_cfg_path(cfg), DSNN_SPARSE_MODEL_MAX_LAYERS);
    if (have_on && dist == 0 && n_on != 1 && n_on != n_sparse)
        return dsnn_cfg_count_error(cfg, "on_perc", n_on, "", n_sparse, "sparse layers",
                                    "one value or one per sparse layer", err);
    for (size_t k = 0; k < n_sparse; k++) {
        struct dsnn_sparse_init init = dsnn_sparse_init_default();
        init.mask = (enum dsnn_sparse_mask)mask;
        init.weight_init = init_values[winit];
        init.weight_std = weight_std;
        init.sparse_fan_in = sparse_fan_in;
        init.grow_init = grow_values[ginit];
        init.grow_std = grow_std;
        if (have_on) {
            init.density = on_perc[n_on == 1 ? 0 : k];
            init.epsilon = 0;
        } else {
            init.epsilon = epsilon;
        }
        struct dsnn_layer *sl = NULL;
        if ((st = sm_sparsify(net, &cand[(size_t)start + k], &init, &sl, err)))
            return st;
        sm->layer[sm->n_layers] = sl;
        sm->layer_index[sm->n_layers++] = cand[(size_t)start + k].top;
    }
    if (dist == 1) {
        /* ERK over every candidate layer of the net: dense ones count as dense. */
        struct dsnn_layer *all[DSNN_SPARSE_MODEL_MAX_LAYERS * 4];
        for (size_t i = 0; i < n_lin; i++)
            all[i] = sm_cand_layer(net, &cand[i]);
        if ((st = dsnn_sparse_erk_apply(all, n_lin, on_perc[0], err)))
            return dsnn_error_prefix(err, "%s: density_distribution = \"erk\"", dsnn_cfg_path(cfg));
    }
    return DSNN_OK;
}

enum dsnn_status sm_init_net(struct dsnn_sparse_model *sm, const struct dsnn_dataset_info *info,
                             struct dsnn_error *err)
{
    enum dsnn_status st = dsnn_base_model_init_net(&sm->base, info, err);
    int max_batch = info->batch_size_train > info->batch_size_test ? info->batch_size_train
                                                                   : info->batch_size_test;
    for (size_t i = 0; st == DSNN_OK && i < sm->n_layers; i++)
        if (dsnn_sparse_is(sm->layer[i])) /* a conv's weight store needs no panels */
            st = dsnn_sparse_reserve(sm->layer[i], max_batch, err);
    return st;
}

struct dsnn_layer *dsnn_sparse_model_layer(const struct dsnn_sparse_model *sm, size_t i)
{
    if (i >= sm->n_layers)
        return NULL;
    struct dsnn_layer *l = sm->layer[i];
    return dsnn_sparse_conv2d_is(l) ? dsnn_sparse_conv2d_weights(l) : l;
}

size_t dsnn_sparse_model_n_layers(const struct dsnn_sparse_model *sm)
{
    return sm->n_layers;
}

size_t dsnn_sparse_model_layer_index(const struct dsnn_sparse_model *sm, size_t i)
{
    return i < sm->n_layers ? sm->layer_index[i] : (size_t)-1;
}

void dsnn_sparse_model_keep_dense_grad(struct dsnn_sparse_model *sm, bool on)
{
    for (size_t i = 0; i < sm->n_layers; i++)
        if (dsnn_sparse_conv2d_is(sm->layer[i]))
            dsnn_sparse_conv2d_keep_dense_grad(sm->layer[i], on);
}

struct dsnn_rng *dsnn_sparse_model_topo_rng(struct dsnn_sparse_model *sm)
{
    return &sm->topo_rng;
}

struct dsnn_net *dsnn_sparse_model_net(const struct dsnn_sparse_model *sm)
{
    return sm->base.net;
}

struct dsnn_base_model *dsnn_sparse_model_base(struct dsnn_sparse_model *sm)
{
    return &sm->base;
}

void dsnn_sparse_model_log_density(const struct dsnn_sparse_model *sm, struct dsnn_metrics *m)
{
    double active = 0, total = 0;
    for (size_t i = 0; i < sm->n_layers; i++) {
        struct dsnn_layer *l = dsnn_sparse_model_layer(sm, i);
        int n_in = 0, n_out = 0;
        dsnn_linear_dims(l, &n_in, &n_out, NULL);
        size_t nnz = dsnn_sparse_nnz(l);
        dsnn_metrics_setf(m, dsnn_sparse_density(l), "density_%s", l->name);
        dsnn_metrics_setf(m, (double)nnz, "nnz_%s", l->name);
        active += (double)nnz;
        total += (double)n_in * (double)n_out;
    }
    if (total > 0)
        dsnn_metrics_set(m, "density_total", active / total);
    dsnn_metrics_set(m, "n_params", (double)dsnn_net_param_count(sm->base.net));
}

void dsnn_sparse_model_log_idle(const struct dsnn_sparse_model *sm, struct dsnn_metrics *m)
{
    for (size_t i = 0; i < sm->n_layers; i++) {
        const struct dsnn_layer *l = dsnn_sparse_model_layer(sm, i);
        dsnn_metrics_setf(m, 0.0, "pruned_%s", l->name);
        dsnn_metrics_setf(m, 0.0, "grown_%s", l->name);
        dsnn_metrics_setf(m, NAN, "surviving_synapses_%s", l->name);
    }
    dsnn_sparse_model_log_density(sm, m);
}

/* Keys of a layer's connections, ascending (CSR order). */
static enum dsnn_status snapshot(struct dsnn_layer *l, uint64_t **keys, size_t *n,
                                 struct dsnn_error *err)
{
    struct dsnn_sparse_csr csr;
    free(*keys);
    *keys = NULL;
    *n = 0;
    if (!dsnn_sparse_get_csr(l, &csr))
        return dsnn_error_set(err, DSNN_ERR_INVALID, "layer '%s' is not sparse", l->name);
    *keys = malloc(sizeof(uint64_t) * (csr.nnz ? csr.nnz : 1));
    if (!*keys)
        return dsnn_error_set(err, DSNN_ERR_NOMEM, "out of memory");
    for (int r = 0; r < csr.n_out; r++)
        for (int64_t k = csr.row_ptr[r]; k < csr.row_ptr[r + 1]; k++)
            (*keys)[k] = (uint64_t)r * (uint64_t)csr.n_in + (uint64_t)csr.col[k];
    *n = csr.nnz;
    return DSNN_OK;
}

static dsnn_sparse_round_observer g_observer;
static void *g_observer_user;

void dsnn_sparse_model_set_round_observer(dsnn_sparse_round_observer fn, void *user)
{
    g_observer = fn;
    g_observer_user = user;
}

enum dsnn_status dsnn_sparse_model_update_begin(struct dsnn_sparse_model *sm,
                                                struct dsnn_error *err)
{
    for (size_t i = 0; i < sm->n_layers; i++) {
        enum dsnn_status st =
            snapshot(dsnn_sparse_model_layer(sm, i), &sm->before[i], &sm->n_before[i], err);
        if (st != DSNN_OK)
            return st;
        sm->grown_survived[i] = 0;
    }
    if (g_observer)
        g_observer(g_observer_user, sm, DSNN_SPARSE_ROUND_BEGIN, NULL);
    return DSNN_OK;
}

void dsnn_sparse_model_update_pruned(struct dsnn_sparse_model *sm)
{
    for (size_t i = 0; i < sm->n_layers; i++) {
        struct dsnn_layer *l = dsnn_sparse_model_layer(sm, i);
        int n_in = 0;
        dsnn_linear_dims(l, &n_in, NULL, NULL);
        size_t alive = 0;
        for (size_t k = 0; k < sm->n_grown[i]; k++) {
            uint64_t key = sm->grown[i][k];
            alive += dsnn_sparse_find(l, (int)(key / (uint64_t)n_in),
                                      (int)(key % (uint64_t)n_in)) >= 0;
        }
        sm->grown_survived[i] = alive;
    }
}

enum dsnn_status dsnn_sparse_model_update_end(struct dsnn_sparse_model *sm,
                                              struct dsnn_metrics *m, struct dsnn_error *err)
{
    for (size_t i = 0; i < sm->n_layers; i++) {
        struct dsnn_layer *l = dsnn_sparse_model_layer(sm, i);
        uint64_t *now = NULL;
        size_t n_now = 0;
        enum dsnn_status st = snapshot(l, &now, &n_now, err);
        if (st != DSNN_OK)
            return st;
        /* grown = now \ before; pruned = before \ now (merge of two ascending lists). */
        size_t a = 0, b = 0, n_new = 0, pruned = 0;
        const uint64_t *before = sm->before[i];
        size_t n_before = sm->n_before[i];
        while (a < n_now || b < n_before) {
            if (b == n_before || (a < n_now && now[a] < before[b]))
                now[n_new++] = now[a++]; /* in place: n_new <= a */
            else if (a == n_now || before[b] < now[a])
                pruned++, b++;
            else
                a++, b++;
        }
        /* NaN (null in result.json, empty-ish in progress.csv) when there is no previous round
         * to survive from, so that the column exists from the first epoch on. */
        dsnn_metrics_setf(m,
                          sm->have_grown && sm->n_grown[i] > 0
                              ? (double)sm->grown_survived[i] / (double)sm->n_grown[i]
                              : NAN,
                          "surviving_synapses_%s", l->name);
        dsnn_metrics_setf(m, (double)pruned, "pruned_%s", l->name);
        dsnn_metrics_setf(m, (double)n_new, "grown_%s", l->name);
        free(sm->grown[i]);
        sm->grown[i] = now;
        sm->n_grown[i] = n_new;
        free(sm->before[i]);
        sm->before[i] = NULL;
        sm->n_before[i] = 0;
    }
    sm->have_grown = true;
    sm->rounds_ended++;
    dsnn_sparse_model_log_density(sm, m);
    if (g_observer)
        g_observer(g_observer_user, sm, DSNN_SPARSE_ROUND_END, m);
    return DSNN_OK;
}

enum dsnn_status dsnn_sparse_model_save(struct dsnn_sparse_model *sm, FILE *f,
                                        struct dsnn_error *err)
{
    enum dsnn_status st;
    uint64_t have = sm->have_grown;
    if ((st = dsnn_base_model_save(&sm->base, f, err)) ||
        (st = dsnn_io_write(f, "SMOD", 4, "sparse model tag", err)) ||
        (st = dsnn_io_write(f, &sm->topo_rng, sizeof sm->topo_rng, "topology rng", err)) ||
        (st = dsnn_io_write_u64(f, sm->n_layers, "sparse layer count", err)) ||
        (st = dsnn_io_write_u64(f, have, "grown flag", err)))
        return st;
    for (size_t i = 0; i < sm->n_layers; i++)
        if ((st = dsnn_io_write_u64(f, sm->n_grown[i], "grown count", err)) ||
            (st = dsnn_io_write(f, sm->grown[i], sm->n_grown[i] * sizeof(uint64_t),
                                "grown connections", err)))
            return st;
    return DSNN_OK;
}

enum dsnn_status dsnn_sparse_model_load(struct dsnn_sparse_model *sm, FILE *f,
                                        struct dsnn_error *err)
{
    enum dsnn_status st;
    uint64_t n, have;
    if ((st = dsnn_base_model_load(&sm->base, f, err)) ||
        (st = dsnn_io_expect_tag(f, "SMOD", err)) ||
        (st = dsnn_io_read(f, &sm->topo_rng, sizeof sm->topo_rng, "topology rng", err)) ||
        (st = dsnn_io_read_u64(f, &n, "sparse layer count", err)) ||
        (st = dsnn_io_read_u64(f, &have, "grown flag", err)))
        return st;
    if (n != sm->n_layers)
        return dsnn_error_set(err, DSNN_ERR_FORMAT,
                              "checkpoint has %llu sparse layers, the model has %zu",
                              (unsigned long long)n, sm->n_layers);
    sm->have_grown = have != 0;
    for (size_t i = 0; i < sm->n_layers; i++) {
        uint64_t g;
        if ((st = dsnn_io_read_u64(f, &g, "grown count", err)))
            return st;
        if (g > dsnn_sparse_nnz(dsnn_sparse_model_layer(sm, i)))
            return dsnn_error_set(err, DSNN_ERR_FORMAT, "checkpoint: bad grown count");
        free(sm->grown[i]);
        sm->grown[i] = malloc(sizeof(uint64_t) * (g ? g : 1));
        if (!sm->grown[i])
            return dsnn_error_set(err, DSNN_ERR_NOMEM, "out of memory");
        sm->n_grown[i] = g;
        if ((st = dsnn_io_read(f, sm->grown[i], g * sizeof(uint64_t), "grown connections", err)))
            return st;
    }
    return DSNN_OK;
}

void sm_release(struct dsnn_sparse_model *sm)
{
    if (!sm)
        return;
    bm_release(&sm->base);
    dsnn_coact_free(sm->coact);
    sm->coact = NULL;
    for (size_t i = 0; i < DSNN_SPARSE_MODEL_MAX_LAYERS; i++) {
        free(sm->before[i]);
        free(sm->grown[i]);
        sm->before[i] = sm->grown[i] = NULL;
        sm->n_before[i] = sm->n_grown[i] = 0;
    }
}

enum dsnn_status dsnn_sparse_model_set_density(struct dsnn_sparse_model *sm, double density,
                                               struct dsnn_error *err)
{
    if (!(density >= 0.0 && density <= 1.0))
        return dsnn_error_set(err, DSNN_ERR_INVALID, "density %g outside [0, 1]", density);
    for (size_t i = 0; i < sm->n_layers; i++) {
        struct dsnn_layer *l = dsnn_sparse_model_layer(sm, i);
        const struct dsnn_sparse_init *cur = dsnn_sparse_get_init(l);
        if (!cur)
            return dsnn_error_set(err, DSNN_ERR_INVALID, "layer '%s' is not sparse", l->name);
        struct dsnn_sparse_init init = *cur;
        init.density = density;
        init.epsilon = 0;
        enum dsnn_status st = dsnn_sparse_set_init(l, &init, err);
        if (st != DSNN_OK)
            return st;
    }
    return DSNN_OK;
}

void dsnn_sparse_update_tally_clear(struct dsnn_sparse_update_tally *t)
{
    memset(t, 0, sizeof *t);
}

void dsnn_sparse_update_tally_add(struct dsnn_sparse_update_tally *t,
                                  const struct dsnn_sparse_model *sm,
                                  const struct dsnn_metrics *round)
{
    char name[DSNN_METRIC_NAME_MAX + DSNN_LAYER_NAME_MAX];
    double v;
    t->rounds++;
    for (size_t i = 0; i < sm->n_layers && i < DSNN_SPARSE_MODEL_MAX_LAYERS; i++) {
        const char *ln = dsnn_sparse_model_layer(sm, i)->name;
        snprintf(name, sizeof name, "pruned_%s", ln);
        if (dsnn_metrics_get(round, name, &v))
            t->pruned[i] += v;
        snprintf(name, sizeof name, "grown_%s", ln);
        if (dsnn_metrics_get(round, name, &v))
            t->grown[i] += v;
        snprintf(name, sizeof name, "surviving_synapses_%s", ln);
        if (dsnn_metrics_get(round, name, &v) && !isnan(v)) {
            t->surviving_sum[i] += v;
            t->surviving_n[i]++;
        }
    }
}

enum dsnn_status dsnn_sparse_model_update_end_tally(struct dsnn_sparse_model *sm,
                                                    struct dsnn_sparse_update_tally *t,
                                                    struct dsnn_error *err)
{
    dsnn_metrics_clear(&sm->scratch);
    enum dsnn_status st = dsnn_sparse_model_update_end(sm, &sm->scratch, err);
    if (st == DSNN_OK)
        dsnn_sparse_update_tally_add(t, sm, &sm->scratch);
    return st;
}

void dsnn_sparse_update_tally_log(const struct dsnn_sparse_update_tally *t,
                                  const struct dsnn_sparse_model *sm, struct dsnn_metrics *m)
{
    dsnn_metrics_set(m, "update_rounds", (double)t->rounds);
    for (size_t i = 0; i < sm->n_layers && i < DSNN_SPARSE_MODEL_MAX_LAYERS; i++) {
        const char *ln = dsnn_sparse_model_layer(sm, i)->name;
        dsnn_metrics_setf(m, t->pruned[i], "pruned_%s", ln);
        dsnn_metrics_setf(m, t->grown[i], "grown_%s", ln);
        dsnn_metrics_setf(m,
                          t->surviving_n[i] ? t->surviving_sum[i] / (double)t->surviving_n[i]
                                            : NAN,
                          "surviving_synapses_%s", ln);
    }
}
