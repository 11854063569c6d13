/* test_sparse_schemes.c - the model plugins that edit topology (set, dsnn-weighted-mag,
 * dsnn-mixed-heb, rigl, snfs, dsr, pruning, iterative-pruning), loaded from the build's plugin
 * folder and trained on a small in-memory dataset:
 *   - one table (test_scheme_table) runs every scheme through the same per-round invariants:
 *     counts and sets the rule implies, no duplicates, survivors untouched, new connections as
 *     grow_init says with zero optimizer state, nnz kept, checkpoint round trip;
 *     the same table on a CNN whose convolutions (one in a residual block) are truly sparse;
 *   - per-scheme invariants of the logged metrics (constant nnz for the dynamic schemes, the GMP
 *     density schedule, the lottery-ticket density per round);
 *   - checkpoints: a model saved after 2 epochs and loaded into a fresh one continues exactly
 *     (bit for bit) as the original;
 *   - configuration errors name the key (inconsistent epochs, end_epoch out of range ...).
 *   - the scheme kit with a scheme of the test's own: rounds every few steps and their tally
 *     (dsnn_scheme_step_round, _update_end, _log_rounds), the tag and state members in the
 *     checkpoint.
 * Needs the plugins built (DSNN_BUILD_DIR/plugins, set by ctest). */
#include "harness.h"
#include "registry.h"

#include <dsnn/dsnn.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- a small dataset: 4 Gaussian blobs in 20 dimensions ---- */

/* The convolutional variants: the same samples as 1x4x5 images, through a CNN (make_net): 1 with
 * a residual block, 2 without (the coactivation schemes track top-level layers only). */
static int g_conv;

enum { NF = 20, NC = 4, NTRAIN = 256, NTEST = 64, BS = 16 };

struct blobs {
    float x[2][NTRAIN * NF];
    int32_t y[2][NTRAIN];
    int64_t n[2];
    uint32_t order[NTRAIN];
    int split;
    int64_t pos;
    float bx[BS * NF];
    int32_t by[BS];
};

static enum dsnn_status blobs_begin(void *state, enum dsnn_split split, int epoch,
                                    struct dsnn_error *err)
{
    struct blobs *d = state;
    if (split == DSNN_SPLIT_NOISE)
        return dsnn_error_set(err, DSNN_ERR_INVALID, "no noise split");
    d->split = split == DSNN_SPLIT_TRAIN ? 0 : 1;
    d->pos = 0;
    for (uint32_t i = 0; i < NTRAIN; i++)
        d->order[i] = i;
    if (d->split == 0) {
        struct dsnn_rng r;
        dsnn_rng_seed(&r, 1000 + (uint64_t)epoch, DSNN_RNG_STREAM_DATA);
        dsnn_rng_shuffle_u32(&r, d->order, NTRAIN);
    }
    return DSNN_OK;
}

static enum dsnn_status blobs_next(void *state, struct dsnn_batch *b, struct dsnn_error *err)
{
    (void)err;
    struct blobs *d = state;
    int n = 0;
    while (n < BS && d->pos < d->n[d->split]) {
        const uint32_t i = d->order[d->pos++];
        memcpy(d->bx + n * NF, d->x[d->split] + (size_t)i * NF, NF * sizeof(float));
        d->by[n++] = d->y[d->split][i];
    }
    *b = (struct dsnn_batch){d->bx, d->by, n};
    return DSNN_OK;
}

static const struct dsnn_dataset_ops blobs_ops = {.begin = blobs_begin, .next_batch = blobs_next};

static struct blobs *blobs_new(struct dsnn_data *data)
{
    struct blobs *d = calloc(1, sizeof *d);
    struct dsnn_rng r;
    dsnn_rng_seed(&r, 5, 1);
    float centre[NC][NF];
    for (int c = 0; c < NC; c++)
        for (int f = 0; f < NF; f++)
            centre[c][f] = (float)dsnn_rng_normal(&r);
    d->n[0] = NTRAIN;
    d->n[1] = NTEST;
    for (int s = 0; s < 2; s++)
        for (int64_t i = 0; i < d->n[s]; i++) {
            d->y[s][i] = (int32_t)(i % NC);
            for (int f = 0; f < NF; f++)
                d->x[s][i * NF + f] = centre[i % NC][f] + (float)dsnn_rng_normal(&r);
        }
    *data = (struct dsnn_data){
        .ops = &blobs_ops,
        .state = d,
        .info = {g_conv ? (struct dsnn_shape){1, 4, 5} : (struct dsnn_shape){NF, 1, 1}, NC,
                 NTRAIN, NTEST, 0, BS, BS},
    };
    return d;
}

/* ---- plugins and models ---- */

static struct dsnn_registry *g_reg;

static const struct dsnn_model_ops *model_ops(const char *name)
{
    if (!g_reg) {
        struct dsnn_error err = {0};
        CU_ASSERT_EQUAL_FATAL(dsnn_registry_new(&g_reg, &err), DSNN_OK);
        const char *so[] = {"rigl", "snfs", "dsr", "pruning", "iterative-pruning", "set",
                            "dsnn-weighted-mag", "dsnn-mixed-heb"};
        for (size_t i = 0; i < DSNN_COUNT_OF(so); i++) {
            char path[1024];
            snprintf(path, sizeof path, "%s/plugins/%s.so", dsnn_test_build_dir(), so[i]);
            if (dsnn_registry_load_file(g_reg, path, &err) != DSNN_OK)
                fprintf(stderr, "\n%s (build the plugins; DSNN_BUILD_DIR=%s)\n", err.msg,
                        dsnn_test_build_dir());
        }
    }
    const struct dsnn_registry_entry *e = dsnn_registry_find(g_reg, DSNN_KIND_MODEL, name);
    CU_ASSERT_PTR_NOT_NULL(e);
    return e ? &e->ops.model : NULL;
}

/* MLP 20 -> 48 -> 32 -> 4 with dense linear layers (the model makes them sparse); with g_conv
 * a CNN on 1x4x5 inputs: conv1 3x3 8 -> relu1 -> basic block (conv1 bn1 relu1 conv2 bn2, ReLU
 * after the sum) -> flatten -> linear output 160 -> 4 (sparse_linear_only = false makes the three
 * convolutions and the output layer sparse). */
static struct dsnn_net *make_net(void)
{
    struct dsnn_error err = {0};
    if (g_conv) {
        const struct dsnn_shape in = {1, 4, 5}, mid = {8, 4, 5};
        struct dsnn_net *net = dsnn_net_new(in, NC, &err);
        dsnn_net_add(net, dsnn_conv2d_new("conv1", in, 8, 3, 1, 1, true, &err), &err);
        dsnn_net_add(net, dsnn_relu_new("relu1", mid, &err), &err);
        if (g_conv == 2) {
            dsnn_net_add(net, dsnn_conv2d_new("conv2", mid, 8, 3, 1, 1, true, &err), &err);
            dsnn_net_add(net, dsnn_relu_new("relu2", mid, &err), &err);
        } else {
            dsnn_net_add(net, dsnn_resnet_basic_block_new("block", mid, 8, 1, &err), &err);
        }
        dsnn_net_add(net, dsnn_flatten_new("flat", mid, &err), &err);
        dsnn_net_add(net, dsnn_linear_new("output", 160, NC, true, &err), &err);
        CU_ASSERT_EQUAL(dsnn_net_n_layers(net), g_conv == 2 ? 6u : 5u);
        return net;
    }
    struct dsnn_net *net = dsnn_net_new((struct dsnn_shape){NF, 1, 1}, NC, &err);
    dsnn_net_add(net, dsnn_linear_new("fc1", NF, 48, true, &err), &err);
    dsnn_net_add(net, dsnn_relu_new("relu1", (struct dsnn_shape){48, 1, 1}, &err), &err);
    dsnn_net_add(net, dsnn_linear_new("fc2", 48, 32, true, &err), &err);
    dsnn_net_add(net, dsnn_relu_new("relu2", (struct dsnn_shape){32, 1, 1}, &err), &err);
    dsnn_net_add(net, dsnn_linear_new("output", 32, NC, true, &err), &err);
    CU_ASSERT_EQUAL(dsnn_net_n_layers(net), 5u);
    return net;
}

struct run {
    struct dsnn_config_file *cf;
    struct dsnn_net *net;
    void *model;
    const struct dsnn_model_ops *ops;
    struct dsnn_run_ctx ctx;
};

static enum dsnn_status run_open(struct run *r, const char *plugin, const char *model_cfg,
                                 int epochs, struct dsnn_data *data, struct dsnn_error *err)
{
    memset(r, 0, sizeof *r);
    char text[2048];
    snprintf(text, sizeof text, "model = { plugin = \"%s\"; %s };", plugin, model_cfg);
    enum dsnn_status st = dsnn_config_file_parse(text, "test.cfg", &r->cf, err);
    CU_ASSERT_EQUAL_FATAL(st, DSNN_OK);
    r->ops = model_ops(plugin);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r->ops);
    r->net = make_net();
    r->ctx = (struct dsnn_run_ctx){.seed = 42, .epochs = epochs, .n_threads = 1, .log = stderr};
    FILE *devnull = fopen("/dev/null", "w");
    r->ctx.log = devnull ? devnull : stderr;
    return r->ops->create(dsnn_cfg_group(dsnn_config_file_root(r->cf), "model"), &r->ctx, r->net,
                          &data->info, &r->model, err);
}

static void run_close(struct run *r)
{
    if (r->model)
        r->ops->destroy(r->model);
    dsnn_net_free(r->net);
    dsnn_config_file_free(r->cf);
    if (r->ctx.log && r->ctx.log != stderr)
        fclose(r->ctx.log);
    memset(r, 0, sizeof *r);
}

static double metric(const struct dsnn_metrics *m, const char *name)
{
    double v = NAN;
    CU_ASSERT(dsnn_metrics_get(m, name, &v));
    if (!dsnn_metrics_get(m, name, &v))
        fprintf(stderr, "\nmissing metric %s\n", name);
    return v;
}

/* Trains epochs [from, to) checking each; returns the last epoch's metrics in *last. */
typedef void (*check_fn)(int epoch, const struct dsnn_metrics *m, void *user);

static void train(struct run *r, struct dsnn_data *data, int from, int to, check_fn check,
                  void *user, struct dsnn_metrics *last)
{
    struct dsnn_error err = {0};
    for (int e = from; e < to; e++) {
        dsnn_metrics_clear(last);
        bool rewired = false; /* the round before the evaluation (rewire_before_eval) */
        enum dsnn_status st = r->ops->train_epoch(r->model, data, e, last, &err);
        if (st == DSNN_OK && r->ops->end_epoch)
            st = r->ops->end_epoch(r->model, data, e, last, &rewired, &err);
        if (st != DSNN_OK)
            fprintf(stderr, "\nepoch %d: %s\n", e, err.msg);
        CU_ASSERT_EQUAL_FATAL(st, DSNN_OK);
        CU_ASSERT_EQUAL_FATAL(r->ops->evaluate(r->model, data, DSNN_SPLIT_TEST, last, &err),
                              DSNN_OK);
        if (check)
            check(e, last, user);
    }
}

/* All parameters of a net, flattened, with the topology (for bitwise comparison). */
static float *snapshot(struct dsnn_net *net, size_t *n)
{
    size_t cap = 0, len = 0;
    float *v = NULL;
    for (size_t i = 0; i < dsnn_net_n_layers(net); i++) {
        struct dsnn_layer *l = dsnn_net_layer(net, i);
        for (size_t b = 0; b < l->n_params; b++) {
            const struct dsnn_param_block *p = &l->params[b];
            size_t need = len + p->n * 2 + 1;
            if (need > cap) {
                cap = need * 2;
                v = realloc(v, cap * sizeof *v);
            }
            v[len++] = (float)p->n;
            memcpy(v + len, p->value, p->n * sizeof(float));
            len += p->n;
            if (b == 0 && dsnn_sparse_is(l)) {
                struct dsnn_sparse_csr c;
                dsnn_sparse_get_csr(l, &c);
                for (size_t k = 0; k < c.nnz; k++)
                    v[len++] = (float)c.col[k];
            }
        }
    }
    *n = len;
    return v;
}

/* Trains 2 epochs, saves, trains 2 more; a fresh model loaded from the checkpoint trains the same
 * 2 epochs: both must end bit for bit equal, with the same val_acc. */
static void check_resume(const char *plugin, const char *cfg, int epochs)
{
    struct dsnn_data data;
    struct blobs *b = blobs_new(&data);
    struct dsnn_error err = {0};
    struct dsnn_metrics *m = malloc(sizeof *m);
    struct run a, c;
    CU_ASSERT_EQUAL_FATAL(run_open(&a, plugin, cfg, epochs, &data, &err), DSNN_OK);
    train(&a, &data, 0, 2, NULL, NULL, m);
    FILE *f = tmpfile();
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_EQUAL_FATAL(a.ops->save(a.model, f, &err), DSNN_OK);
    train(&a, &data, 2, epochs, NULL, NULL, m);
    const double acc_a = metric(m, "val_acc");
    size_t na, nc;
    float *va = snapshot(a.net, &na);

    CU_ASSERT_EQUAL_FATAL(run_open(&c, plugin, cfg, epochs, &data, &err), DSNN_OK);
    rewind(f);
    enum dsnn_status st = c.ops->load(c.model, f, &err);
    if (st != DSNN_OK)
        fprintf(stderr, "\nload: %s\n", err.msg);
    CU_ASSERT_EQUAL_FATAL(st, DSNN_OK);
    CU_ASSERT_EQUAL(fgetc(f), EOF); /* everything written was read */
    fclose(f);
    train(&c, &data, 2, epochs, NULL, NULL, m);
    const double acc_c = metric(m, "val_acc");
    float *vc = snapshot(c.net, &nc);
    CU_ASSERT_EQUAL(na, nc);
    CU_ASSERT(na == nc && memcmp(va, vc, na * sizeof *va) == 0);
    CU_ASSERT_EQUAL(acc_a, acc_c);
    free(va);
    free(vc);
    run_close(&a);
    run_close(&c);
    free(m);
    free(b);
}

/* ---- per scheme ---- */

struct nnz_track {
    double nnz[3];
    bool set;
    int epochs_with_updates;
};

static void check_constant_nnz(int epoch, const struct dsnn_metrics *m, void *user)
{
    struct nnz_track *t = user;
    const char *names[3] = {"nnz_fc1", "nnz_fc2", "nnz_output"};
    double total = 0, total0 = 0;
    for (int i = 0; i < 3; i++) {
        double v = metric(m, names[i]);
        total += v;
        total0 += t->nnz[i];
        if (!t->set)
            t->nnz[i] = v;
    }
    if (t->set)
        CU_ASSERT_EQUAL(total, total0);
    t->set = true;
    double rounds = 0;
    if (dsnn_metrics_get(m, "update_rounds", &rounds) && rounds > 0)
        t->epochs_with_updates++;
    (void)epoch;
}

static void check_rigl_epoch(int epoch, const struct dsnn_metrics *m, void *user)
{
    check_constant_nnz(epoch, m, user);
    struct nnz_track *t = user;
    /* per layer: constant nnz, pruned == grown */
    const char *layers[2] = {"fc1", "fc2"};
    for (int i = 0; i < 2; i++) {
        char a[64], b[64], c[64];
        snprintf(a, sizeof a, "pruned_%s", layers[i]);
        snprintf(b, sizeof b, "grown_%s", layers[i]);
        snprintf(c, sizeof c, "nnz_%s", layers[i]);
        CU_ASSERT_EQUAL(metric(m, a), metric(m, b));
        CU_ASSERT_EQUAL(metric(m, c), t->nnz[i]);
    }
}

static void test_rigl(void)
{
    /* 16 steps per epoch, updates every 4 steps up to 75 % of 4 epochs = step 48 */
    const char *cfg = "on_perc = 0.3; drop_fraction = 0.3; update_frequency = 4; "
                      "learning_rate = 0.05; momentum = 0.9;";
    struct dsnn_data data;
    struct blobs *b = blobs_new(&data);
    struct dsnn_error err = {0};
    struct dsnn_metrics *m = malloc(sizeof *m);
    struct run r;
    CU_ASSERT_EQUAL_FATAL(run_open(&r, "rigl", cfg, 4, &data, &err), DSNN_OK);
    struct nnz_track t = {{0}, false, 0};
    train(&r, &data, 0, 4, check_rigl_epoch, &t, m);
    /* 12 updates at steps 4 .. 48, all in epochs 0 .. 2 */
    CU_ASSERT_EQUAL(t.epochs_with_updates, 3);
    CU_ASSERT_EQUAL(metric(m, "update_rounds"), 0);
    CU_ASSERT(metric(m, "val_acc") > 0.9);
    run_close(&r);
    free(m);
    free(b);
    check_resume("rigl", cfg, 4);
    /* ERK and the exponential anneal; a bad anneal name is refused with the key */
    check_resume("rigl", "on_perc = 0.2; density_distribution = \"erk\"; update_frequency = 3; "
                         "drop_fraction_anneal = \"exponential\"; drop_fraction_exponent = 2.0; "
                         "learning_rate = 0.05; momentum = 0.9;",
                 4);
    b = blobs_new(&data);
    CU_ASSERT_EQUAL(run_open(&r, "rigl", "drop_fraction_anneal = \"sine\";", 4, &data, &err),
                    DSNN_ERR_CONFIG);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "drop_fraction_anneal"));
    run_close(&r);
    CU_ASSERT_EQUAL(run_open(&r, "rigl", "begin_step = 100; end_step = 50;", 4, &data, &err),
                    DSNN_ERR_CONFIG);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "end_step"));
    run_close(&r);
    free(b);
}

static void test_snfs(void)
{
    const char *cfg = "on_perc = 0.3; prune_rate = 0.5; learning_rate = 0.05; momentum = 0.9;";
    struct dsnn_data data;
    struct blobs *b = blobs_new(&data);
    struct dsnn_error err = {0};
    struct dsnn_metrics *m = malloc(sizeof *m);
    struct run r;
    CU_ASSERT_EQUAL_FATAL(run_open(&r, "snfs", cfg, 4, &data, &err), DSNN_OK);
    struct nnz_track t = {{0}, false, 0};
    train(&r, &data, 0, 4, check_constant_nnz, &t, m);
    CU_ASSERT_EQUAL(t.epochs_with_updates, 3); /* every epoch but the last */
    CU_ASSERT(metric(m, "val_acc") > 0.9);
    run_close(&r);
    /* momentum shares sum to 1 on an update epoch */
    CU_ASSERT_EQUAL_FATAL(run_open(&r, "snfs", cfg, 4, &data, &err), DSNN_OK);
    train(&r, &data, 0, 1, NULL, NULL, m);
    const double s = metric(m, "momentum_share_fc1") + metric(m, "momentum_share_fc2") +
                     metric(m, "momentum_share_output");
    CU_ASSERT(fabs(s - 1) < 1e-9);
    CU_ASSERT(metric(m, "prune_rate") > 0.4 && metric(m, "prune_rate") < 0.5);
    run_close(&r);
    /* no momentum: a clear error naming the key */
    CU_ASSERT_EQUAL(run_open(&r, "snfs", "on_perc = 0.3;", 4, &data, &err), DSNN_ERR_CONFIG);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "momentum"));
    run_close(&r);
    free(m);
    free(b);
    check_resume("snfs", cfg, 4);
    check_resume("snfs", "on_perc = 0.3; update_frequency = 5; optim_alg = \"Adam\"; "
                         "learning_rate = 0.01;",
                 4);
}

static void test_dsr(void)
{
    const char *cfg = "on_perc = 0.3; update_interval = 4; target_fraction_to_prune = 0.02; "
                      "learning_rate = 0.05; momentum = 0.9;";
    struct dsnn_data data;
    struct blobs *b = blobs_new(&data);
    struct dsnn_error err = {0};
    struct dsnn_metrics *m = malloc(sizeof *m);
    struct run r;
    CU_ASSERT_EQUAL_FATAL(run_open(&r, "dsr", cfg, 4, &data, &err), DSNN_OK);
    struct nnz_track t = {{0}, false, 0};
    train(&r, &data, 0, 4, check_constant_nnz, &t, m);
    CU_ASSERT_EQUAL(t.epochs_with_updates, 4);
    CU_ASSERT_EQUAL(metric(m, "update_rounds"), 4); /* 16 steps / 4 */
    CU_ASSERT(metric(m, "threshold") > 0);
    /* a connection pruned and redrawn at the same position does not count as pruned_<layer> */
    CU_ASSERT(metric(m, "pruned_total") >=
              metric(m, "pruned_fc1") + metric(m, "pruned_fc2") + metric(m, "pruned_output"));
    CU_ASSERT(metric(m, "pruned_total") > 0);
    CU_ASSERT(metric(m, "val_acc") > 0.9);
    run_close(&r);
    free(m);
    free(b);
    check_resume("dsr", cfg, 4);
}

struct gmp_track {
    double d_final, n_in_out[3];
};

static void check_gmp(int epoch, const struct dsnn_metrics *m, void *user)
{
    (void)user;
    /* pruning steps at the start of epochs 0 (d_i: nothing to do), 2 (cubic) and 3 (end) */
    const double want[5] = {1.0, 1.0, 0.2 + 0.8 / 27, 0.2, 0.2};
    const double d = metric(m, "density_fc1");
    CU_ASSERT(fabs(d - want[epoch]) < 1.0 / (20 * 48));
    CU_ASSERT_EQUAL(metric(m, "pruning_active"), epoch == 0 || epoch == 2 || epoch == 3);
    CU_ASSERT_EQUAL(metric(m, "grown_fc1"), 0);
}

static void test_pruning(void)
{
    const char *cfg = "target_final_density = 0.2; start_epoch = 0; end_epoch = 3; "
                      "pruning_interval = 2; learning_rate = 0.05; momentum = 0.9;";
    struct dsnn_data data;
    struct blobs *b = blobs_new(&data);
    struct dsnn_error err = {0};
    struct dsnn_metrics *m = malloc(sizeof *m);
    struct run r;
    CU_ASSERT_EQUAL_FATAL(run_open(&r, "pruning", cfg, 5, &data, &err), DSNN_OK);
    train(&r, &data, 0, 5, check_gmp, NULL, m);
    CU_ASSERT(metric(m, "val_acc") > 0.9);
    run_close(&r);
    CU_ASSERT_EQUAL(run_open(&r, "pruning", "end_epoch = 5;", 5, &data, &err), DSNN_ERR_CONFIG);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "end_epoch"));
    run_close(&r);
    CU_ASSERT_EQUAL(run_open(&r, "pruning", "target_final_density = [0.1, 0.2];", 5, &data,
                             &err),
                    DSNN_ERR_CONFIG);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "target_final_density"));
    run_close(&r);
    free(m);
    free(b);
    check_resume("pruning", cfg, 5);
}

/* Weights of fc1 of r's network >= 0 and < 0. */
static void fc1_signs(struct run *r, size_t *n_pos, size_t *n_neg)
{
    *n_pos = *n_neg = 0;
    for (size_t i = 0; i < dsnn_net_n_layers(r->net); i++) {
        struct dsnn_layer *l = dsnn_net_layer(r->net, i);
        struct dsnn_sparse_csr c;
        if (strcmp(l->name, "fc1") != 0 || !dsnn_sparse_get_csr(l, &c))
            continue;
        for (size_t k = 0; k < c.nnz; k++)
            *(c.value[k] < 0 ? n_neg : n_pos) += 1;
    }
}

struct linear_track {
    struct run *r;
    size_t pos, neg;
};

/* nupic PruningModel on fc1 (20 x 48 = 960 weights): target_final_density 0.2, epochs 1..4,
 * interval 2: steps at the start of epochs 2 and 4 (multiples of 2), decay 0.8 / 2 per step, so
 * targets 0.6 and 0.2: int(576) and int(192) connections, each step 384 = 192 positive + 192
 * negative weights. */
static void check_linear(int epoch, const struct dsnn_metrics *m, void *user)
{
    struct linear_track *t = user;
    static const double nnz[5] = {960, 960, 576, 576, 192};
    const bool step = epoch == 2 || epoch == 4;
    CU_ASSERT_EQUAL(metric(m, "nnz_fc1"), nnz[epoch]);
    CU_ASSERT_EQUAL(metric(m, "pruning_active"), step);
    if (step)
        CU_ASSERT(fabs(metric(m, "target_density_fc1") - (epoch == 2 ? 0.6 : 0.2)) < 1e-12);
    size_t pos, neg;
    fc1_signs(t->r, &pos, &neg);
    if (step) {
        CU_ASSERT_EQUAL(t->pos - pos, 192);
        CU_ASSERT_EQUAL(t->neg - neg, 192);
    }
    t->pos = pos;
    t->neg = neg;
}

static void test_pruning_linear(void)
{
    const char *cfg = "schedule = \"linear\"; target_final_density = 0.2; start_epoch = 1; "
                      "end_epoch = 4; pruning_interval = 2; learning_rate = 0.05; "
                      "momentum = 0.9;";
    struct dsnn_data data;
    struct blobs *b = blobs_new(&data);
    struct dsnn_error err = {0};
    struct dsnn_metrics *m = malloc(sizeof *m);
    struct run r;
    CU_ASSERT_EQUAL_FATAL(run_open(&r, "pruning", cfg, 5, &data, &err), DSNN_OK);
    struct linear_track t = {&r, 0, 0};
    fc1_signs(&r, &t.pos, &t.neg);
    CU_ASSERT_EQUAL(t.pos + t.neg, 960);
    train(&r, &data, 0, 5, check_linear, &t, m);
    CU_ASSERT(metric(m, "val_acc") > 0.9);
    run_close(&r);
    /* nupic's defaults: steps from epoch 1 to experiment.epochs (5; its step never comes), so
     * the decay is 0.9 / 5 per epoch: 0.82 at the start of epoch 1, 0.28 at the start of 4 */
    CU_ASSERT_EQUAL_FATAL(run_open(&r, "pruning", "schedule = \"linear\";", 5, &data, &err),
                          DSNN_OK);
    train(&r, &data, 0, 5, NULL, NULL, m);
    CU_ASSERT(fabs(metric(m, "target_density_fc1") - (1 - 4 * 0.9 / 5)) < 1e-12);
    CU_ASSERT_EQUAL(metric(m, "nnz_fc1"), 268); /* int(0.28 * 960) = 268 */
    run_close(&r);
    CU_ASSERT_EQUAL(run_open(&r, "pruning", "schedule = \"linear\"; end_epoch = 6;", 5, &data,
                             &err),
                    DSNN_ERR_CONFIG);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "experiment.epochs = 5"));
    run_close(&r);
    free(m);
    free(b);
    check_resume("pruning", cfg, 5);
}

static void check_lottery(int epoch, const struct dsnn_metrics *m, void *user)
{
    (void)user;
    /* rounds of 2 epochs; fc1 starts dense, -40 % per round; output per-layer rate 0.2 */
    const int round = epoch / 2;
    CU_ASSERT_EQUAL(metric(m, "iteration"), round);
    CU_ASSERT_EQUAL(metric(m, "iteration_epoch"), epoch % 2);
    size_t nnz = 20 * 48;
    for (int i = 0; i < round; i++)
        nnz -= (size_t)llround(0.4 * (double)nnz);
    CU_ASSERT_EQUAL(metric(m, "nnz_fc1"), (double)nnz);
    /* with rewinding and the same LR schedule, each round starts at the base rate */
    CU_ASSERT_EQUAL(metric(m, "learning_rate"), epoch % 2 == 0 ? 0.05 : 0.025);
}

static void test_iterative(void)
{
    const char *cfg = "n_iterations = 3; prune_perc = [0.4, 0.4, 0.2]; learning_rate = 0.05; "
                      "momentum = 0.9; lr_scheduler = \"StepLR\"; lr_gamma = 0.5;";
    struct dsnn_data data;
    struct blobs *b = blobs_new(&data);
    struct dsnn_error err = {0};
    struct dsnn_metrics *m = malloc(sizeof *m);
    struct run r;
    CU_ASSERT_EQUAL_FATAL(run_open(&r, "iterative-pruning", cfg, 6, &data, &err), DSNN_OK);
    train(&r, &data, 0, 6, check_lottery, NULL, m);
    CU_ASSERT(metric(m, "val_acc") > 0.9);
    run_close(&r);
    /* epochs inconsistent with the rounds: a clear error */
    CU_ASSERT_EQUAL(run_open(&r, "iterative-pruning", "n_iterations = 4; iteration_epochs = 2;",
                             6, &data, &err),
                    DSNN_ERR_CONFIG);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "experiment.epochs = 6"));
    run_close(&r);
    CU_ASSERT_EQUAL(run_open(&r, "iterative-pruning", "n_iterations = 4;", 6, &data, &err),
                    DSNN_ERR_CONFIG);
    run_close(&r);
    CU_ASSERT_EQUAL(run_open(&r, "iterative-pruning",
                             "n_iterations = 3; prune_scope = \"global\"; prune_perc = [0.1, "
                             "0.2, 0.3];",
                             6, &data, &err),
                    DSNN_ERR_CONFIG);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "prune_perc"));
    run_close(&r);
    free(m);
    free(b);
    check_resume("iterative-pruning", cfg, 6);
    check_resume("iterative-pruning",
                 "iteration_epochs = 2; prune_scope = \"global\"; prune_perc = 0.3; "
                 "on_perc = 0.5; optim_alg = \"Adam\"; learning_rate = 0.01;",
                 6);
    check_resume("iterative-pruning", "iteration_epochs = 2; rewind = false; learning_rate = 0.05;",
                 6);
}

/* ---- one table, every topology-editing scheme, the same invariants ----
 *
 * Each row trains a model plugin on the blobs for a few epochs. A round observer
 * (dsnn_sparse_model_set_round_observer) snapshots every sparse layer at the start of each
 * prune / regrow round (the weights the rule sees) and checks the layer at its end:
 *   - invariants (dsnn_sparse_check: sorted, unique, in range): no duplicates;
 *   - connections that survive keep their value and optimizer state exactly (no step runs inside
 *     a round; not for the lottery ticket, which rewinds every weight);
 *   - new connections (new positions, and old positions redrawn with a new value) have the value
 *     grow_init gives (0 by default; the distribution for "normal" / "like_init" rows) and zero
 *     optimizer state in every slot;
 *   - nnz per layer (or in total, for schemes that redistribute) is constant where the scheme
 *     keeps it, and nothing grows where the scheme only prunes;
 *   - the pruned set and its size are what the rule and its schedule imply, recomputed here from
 *     the snapshot, independently of the library (see rule_check);
 * and per row: the number of rounds the schedule implies, that the rounds changed the topology,
 * and a bit-identical checkpoint round trip and resume (check_resume). */

enum rule {
    RULE_SET,         /* round(z n_pos) of the w >= 0 and round(z n_neg) of the w < 0 nearest 0 */
    RULE_MAG_NUPIC,   /* nupic: int(z n_pos) positive, n_neg - int((1 - z) n_neg) negative */
    RULE_MIXED,       /* pruned only if the magnitude rule and the Hebbian rule both prune */
    RULE_WEIGHTED,    /* nupic's rule on w * coactivation: |pruned - z nnz| < 1 */
    RULE_RIGL,        /* floor(df(t) nnz) smallest |w| dropped, as many grown by gradient */
    RULE_SNFS,        /* ceil(p(t) nnz) smallest |w| per layer, regrown across layers */
    RULE_DSR,         /* |w| below one threshold for all layers, regrown across layers */
    RULE_GMP,         /* down to round(d(epoch) n_in n_out) by smallest |w| */
    RULE_LOTTERY,     /* round(perc_l nnz) smallest |w| per layer, then rewind */
};

enum grow_check { GROW_ZERO, GROW_NORMAL, GROW_LIKE_INIT, GROW_NONE };

struct scheme_row {
    const char *plugin, *cfg;
    int epochs;
    enum rule rule;
    double rate;          /* z, drop fraction, prune rate, ... (per rule) */
    double rate2;         /* RULE_MIXED: Hebbian fraction */
    enum grow_check grow;
    double grow_std;      /* GROW_NORMAL */
    bool nnz_per_layer;   /* nnz of each layer constant (else the total) */
    int rounds;           /* update brackets the schedule implies */
    bool resume;          /* also check the checkpoint round trip */
};

#define MAX_SP 8
struct layer_snap {
    int n_in, n_out;
    size_t nnz;
    uint64_t *key;
    float *val;
    float *state[DSNN_OPT_STATE_MAX];
};

struct observer {
    const struct scheme_row *row;
    int rounds, rounds_changed, rounds_must_change;
    size_t n_layers;
    struct layer_snap before[MAX_SP];
    /* grown values, normalised (GROW_NORMAL: / grow_std; GROW_LIKE_INIT: * sqrt(fan_in)) */
    double g_sum, g_sq, g_max;
    size_t g_n;
    int64_t step; /* RULE_RIGL: step of the next round */
    double share[MAX_SP]; /* RULE_SNFS: momentum shares of the last round */
    char where[128];
};

static void snap_free(struct layer_snap *s)
{
    free(s->key);
    free(s->val);
    for (int i = 0; i < DSNN_OPT_STATE_MAX; i++)
        free(s->state[i]);
    memset(s, 0, sizeof *s);
}

static void snap_take(struct layer_snap *s, struct dsnn_layer *l)
{
    snap_free(s);
    struct dsnn_sparse_csr c;
    CU_ASSERT_FATAL(dsnn_sparse_get_csr(l, &c));
    s->n_in = c.n_in;
    s->n_out = c.n_out;
    s->nnz = c.nnz;
    s->key = malloc(sizeof(uint64_t) * (c.nnz + 1));
    s->val = malloc(sizeof(float) * (c.nnz + 1));
    for (int r = 0; r < c.n_out; r++)
        for (int64_t k = c.row_ptr[r]; k < c.row_ptr[r + 1]; k++)
            s->key[k] = (uint64_t)r * (uint64_t)c.n_in + (uint64_t)c.col[k];
    memcpy(s->val, c.value, sizeof(float) * c.nnz);
    const struct dsnn_param_block *w = dsnn_sparse_weight(l);
    for (int i = 0; i < DSNN_OPT_STATE_MAX; i++)
        if (w->state[i]) {
            s->state[i] = malloc(sizeof(float) * (c.nnz + 1));
            memcpy(s->state[i], w->state[i], sizeof(float) * c.nnz);
        }
}

/* Index of key in the ascending keys, or -1. */
static int64_t snap_find(const struct layer_snap *s, uint64_t key)
{
    size_t lo = 0, hi = s->nnz;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (s->key[mid] < key)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < s->nnz && s->key[lo] == key ? (int64_t)lo : -1;
}

/* Marks the count entries of smallest |v| among those selected by sign (0: all, 1: v >= 0,
 * 2: v < 0); ties: lowest index first. A plain O(n^2)-free reference: sort indices. */
static const float *g_sort_val;
static int cmp_abs(const void *a, const void *b)
{
    const size_t i = *(const size_t *)a, j = *(const size_t *)b;
    const float x = fabsf(g_sort_val[i]), y = fabsf(g_sort_val[j]);
    return x < y ? -1 : x > y ? 1 : (i > j) - (i < j);
}
static void mark_smallest(const float *v, size_t n, int sign, size_t count, uint8_t *mark)
{
    size_t *idx = malloc(sizeof(size_t) * (n + 1)), m = 0;
    for (size_t k = 0; k < n; k++)
        if (sign == 0 || (sign == 1) == (v[k] >= 0.0f))
            idx[m++] = k;
    g_sort_val = v;
    qsort(idx, m, sizeof *idx, cmp_abs);
    for (size_t k = 0; k < count && k < m; k++)
        mark[idx[k]] = 1;
    free(idx);
}

static size_t count_sign(const float *v, size_t n, bool pos)
{
    size_t c = 0;
    for (size_t k = 0; k < n; k++)
        c += (v[k] >= 0.0f) == pos;
    return c;
}

/* Checks one layer's round; pruned[k] (aligned with the snapshot) says which of the old
 * connections the round removed. Returns the number pruned. */
static size_t layer_round(struct observer *o, size_t li, struct dsnn_layer *l, uint8_t *pruned,
                          size_t *grown_out)
{
    const struct scheme_row *row = o->row;
    const struct layer_snap *b = &o->before[li];
    struct dsnn_error err = {0};
    enum dsnn_status st = dsnn_sparse_check(l, &err);
    if (st != DSNN_OK)
        fprintf(stderr, "\n%s: %s\n", o->where, err.msg);
    CU_ASSERT_EQUAL(st, DSNN_OK);
    struct dsnn_sparse_csr c;
    CU_ASSERT_FATAL(dsnn_sparse_get_csr(l, &c));
    const struct dsnn_param_block *w = dsnn_sparse_weight(l);
    const bool rewinds = row->rule == RULE_LOTTERY;
    size_t grown = 0, bad_survivor = 0, bad_new = 0;
    uint8_t *seen = calloc(b->nnz + 1, 1);
    for (int r = 0; r < c.n_out; r++)
        for (int64_t k = c.row_ptr[r]; k < c.row_ptr[r + 1]; k++) {
            const uint64_t key = (uint64_t)r * (uint64_t)c.n_in + (uint64_t)c.col[k];
            const int64_t j = snap_find(b, key);
            bool is_new = j < 0;
            if (j >= 0) {
                seen[j] = 1;
                /* an old position redrawn by the round has a new value (grow_init) */
                if (!rewinds && memcmp(&c.value[k], &b->val[j], sizeof(float)) != 0) {
                    is_new = true;
                    pruned[j] = 1;
                }
            }
            if (!is_new) {
                for (int s = 0; s < DSNN_OPT_STATE_MAX && !rewinds; s++)
                    if (w->state[s] && b->state[s] &&
                        memcmp(&w->state[s][k], &b->state[s][j], sizeof(float)) != 0)
                        bad_survivor++;
                continue;
            }
            grown++;
            for (int s = 0; s < DSNN_OPT_STATE_MAX; s++)
                if (w->state[s] && w->state[s][k] != 0.0f)
                    bad_new++;
            if (c.grad[k] != 0.0f && row->rule != RULE_RIGL && row->rule != RULE_SNFS)
                bad_new++; /* (RigL / SNFS grow between backward and step: gradients kept) */
            const double v = c.value[k];
            switch (row->grow) {
            case GROW_ZERO:
            case GROW_NONE: bad_new += v != 0.0; break;
            case GROW_NORMAL:
                o->g_sum += v / row->grow_std, o->g_sq += v * v / (row->grow_std * row->grow_std);
                o->g_n++;
                break;
            case GROW_LIKE_INIT: {
                const double z = v * sqrt((double)c.n_in); /* kaiming uniform: U(-1, 1) */
                o->g_sum += z, o->g_sq += z * z, o->g_n++;
                o->g_max = fmax(o->g_max, fabs(z));
                break;
            }
            }
        }
    for (size_t j = 0; j < b->nnz; j++)
        if (!seen[j])
            pruned[j] = 1;
    free(seen);
    if (bad_survivor || bad_new)
        fprintf(stderr, "\n%s layer %s: %zu survivors changed, %zu bad new connections\n",
                o->where, l->name, bad_survivor, bad_new);
    CU_ASSERT_EQUAL(bad_survivor, 0);
    CU_ASSERT_EQUAL(bad_new, 0);
    if (row->grow == GROW_NONE)
        CU_ASSERT_EQUAL(grown, 0);
    if (row->nnz_per_layer)
        CU_ASSERT_EQUAL(c.nnz, b->nnz);
    size_t n_pruned = 0;
    for (size_t j = 0; j < b->nnz; j++)
        n_pruned += pruned[j];
    *grown_out = grown;
    return n_pruned;
}

/* expect[j] = 1 for the connections the rule must prune (exact rules); returns false when the
 * rule only bounds the pruned set (then expect marks the allowed ones). */
static bool rule_expect(struct observer *o, size_t li, struct dsnn_layer *l, uint8_t *expect,
                        size_t *count)
{
    const struct scheme_row *row = o->row;
    const struct layer_snap *b = &o->before[li];
    const double z = row->rate, full = (double)b->n_in * (double)b->n_out;
    const size_t np = count_sign(b->val, b->nnz, true), nn = b->nnz - np;
    memset(expect, 0, b->nnz + 1);
    *count = 0;
    switch (row->rule) {
    case RULE_SET: {
        if ((double)b->nnz >= full)
            return true; /* a full layer is left alone */
        /* round half to even (nearbyint, as Python's round) */
        const size_t cp = (size_t)nearbyint(z * (double)np), cn = (size_t)nearbyint(z * (double)nn);
        mark_smallest(b->val, b->nnz, 1, cp, expect);
        mark_smallest(b->val, b->nnz, 2, cn, expect);
        /* exact count from the layer's edit counts: a connection pruned and redrawn at its own
         * position with an equal value (0 -> 0) is invisible in the snapshot */
        struct dsnn_sparse_update_stats u = dsnn_sparse_last_update(l);
        *count = cp + cn;
        if (*count > 0) {
            CU_ASSERT_EQUAL(u.pruned, *count);
            CU_ASSERT_EQUAL(u.grown, *count);
        }
        return false;
    }
    case RULE_MAG_NUPIC:
    case RULE_MIXED:
        if ((double)b->nnz >= full)
            return true;
        mark_smallest(b->val, b->nnz, 1, (size_t)(z * (double)np), expect);
        mark_smallest(b->val, b->nnz, 2, nn - (size_t)((1.0 - z) * (double)nn), expect);
        if (row->rule == RULE_MIXED)
            return false; /* the Hebbian rule may keep some of these */
        break;
    case RULE_WEIGHTED:
        memset(expect, 1, b->nnz);
        *count = (double)b->nnz < full ? (size_t)floor(z * (double)b->nnz) : 0;
        return false;
    case RULE_RIGL:
    case RULE_SNFS: {
        if ((double)b->nnz >= full && row->rule == RULE_RIGL)
            return true;
        size_t k;
        if (row->rule == RULE_RIGL) {
            const double x = fmin(1.0, (double)o->step / 48.0); /* begin 0, end 75 % of 64 */
            k = (size_t)floor(z * 0.5 * (1.0 + cos(3.14159265358979323846 * x)) * (double)b->nnz);
        } else {
            const double x = (double)o->step / 64.0; /* 16 steps x 4 epochs */
            k = (size_t)ceil(z * 0.5 * (1.0 + cos(3.14159265358979323846 * x)) * (double)b->nnz - 1e-9);
        }
        mark_smallest(b->val, b->nnz, 0, k, expect);
        /* the drop removes exactly k (the layer's edit counts); some may be regrown in place,
         * restored with their value and state: the pruned set seen here is a subset */
        struct dsnn_sparse_update_stats u = dsnn_sparse_last_update(l);
        if (k > 0) {
            CU_ASSERT_EQUAL(u.pruned, k);
            if (row->rule == RULE_RIGL)
                CU_ASSERT_EQUAL(u.grown, k);
        }
        *count = k;
        return false;
    }
    case RULE_DSR:
        memset(expect, 1, b->nnz);
        return false; /* checked over all layers together (one threshold) */
    case RULE_GMP: {
        /* start_epoch 0, end_epoch 3, interval 2: rounds at the start of epochs 0, 2, 3 */
        const int e = o->rounds == 0 ? 0 : o->rounds == 1 ? 2 : 3;
        const double r = 1.0 - (double)e / 3.0;
        const double d = z + (1.0 - z) * r * r * r;
        const size_t target = (size_t)llround(d * full);
        if (target < b->nnz)
            mark_smallest(b->val, b->nnz, 0, b->nnz - target, expect);
        break;
    }
    case RULE_LOTTERY: {
        const double perc[3] = {0.4, 0.4, 0.2}; /* the CNN rows: 0.4 for every layer */
        const double p = g_conv ? 0.4 : perc[li];
        mark_smallest(b->val, b->nnz, 0, (size_t)llround(p * (double)b->nnz), expect);
        break;
    }
    }
    for (size_t j = 0; j < b->nnz; j++)
        *count += expect[j];
    return true;
}

static void round_observer(void *user, const struct dsnn_sparse_model *sm,
                           enum dsnn_sparse_round_phase phase, const struct dsnn_metrics *round)
{
    struct observer *o = user;
    const struct scheme_row *row = o->row;
    (void)round;
    CU_ASSERT_FATAL(dsnn_sparse_model_n_layers(sm) <= MAX_SP);
    if (phase == DSNN_SPARSE_ROUND_BEGIN) {
        o->n_layers = dsnn_sparse_model_n_layers(sm);
        for (size_t i = 0; i < dsnn_sparse_model_n_layers(sm); i++)
            snap_take(&o->before[i], dsnn_sparse_model_layer(sm, i));
        if (row->rule == RULE_RIGL)
            o->step += 4; /* update_frequency 4 */
        if (row->rule == RULE_SNFS) {
            o->step += 16; /* end of an epoch of 16 steps */
            /* momentum contribution of each layer: mean |momentum| of its active weights */
            double sum = 0;
            for (size_t i = 0; i < dsnn_sparse_model_n_layers(sm); i++) {
                const struct layer_snap *b = &o->before[i];
                double m = 0;
                for (size_t k = 0; k < b->nnz && b->state[0]; k++)
                    m += fabs(b->state[0][k]);
                o->share[i] = b->nnz ? m / (double)b->nnz : 0;
                sum += o->share[i];
            }
            for (size_t i = 0; i < dsnn_sparse_model_n_layers(sm); i++)
                o->share[i] = sum > 0 ? o->share[i] / sum : 1.0 / (double)dsnn_sparse_model_n_layers(sm);
        }
        return;
    }
    snprintf(o->where, sizeof o->where, "%s (%s) round %d", row->plugin, row->cfg, o->rounds);
    size_t total_before = 0, total_after = 0, total_pruned = 0, total_grown = 0;
    double dsr_max_pruned = -1, dsr_min_kept = INFINITY;
    size_t must_change = 0; /* layers the rule must edit this round */
    for (size_t i = 0; i < dsnn_sparse_model_n_layers(sm); i++) {
        struct dsnn_layer *l = dsnn_sparse_model_layer(sm, i);
        const struct layer_snap *b = &o->before[i];
        uint8_t *pruned = calloc(b->nnz + 1, 1), *expect = malloc(b->nnz + 1);
        size_t grown = 0, count = 0;
        const size_t n_pruned = layer_round(o, i, l, pruned, &grown);
        const bool exact = rule_expect(o, i, l, expect, &count);
        size_t outside = 0;
        for (size_t j = 0; j < b->nnz; j++)
            outside += pruned[j] && !expect[j];
        if (exact) {
            if (n_pruned != count || outside)
                fprintf(stderr, "\n%s layer %s: pruned %zu, the rule prunes %zu (%zu others)\n",
                        o->where, l->name, n_pruned, count, outside);
            CU_ASSERT_EQUAL(n_pruned, count);
        }
        CU_ASSERT_EQUAL(outside, 0); /* only connections the rule may prune */
        switch (row->rule) {
        case RULE_MIXED: {
            /* both rules must prune: at most int(tau nnz) (the Hebbian count) */
            CU_ASSERT(n_pruned <= (size_t)(row->rate2 * (double)b->nnz));
            break;
        }
        case RULE_WEIGHTED:
            if ((double)b->nnz < (double)b->n_in * b->n_out)
                CU_ASSERT(fabs((double)n_pruned - row->rate * (double)b->nnz) < 1.0);
            break;
        case RULE_SET:
        case RULE_RIGL:
        case RULE_SNFS:
            CU_ASSERT(n_pruned <= count);
            break;
        case RULE_DSR:
            /* (a kept 0 may be a 0 redrawn in place: |0| is below any threshold) */
            for (size_t j = 0; j < b->nnz; j++) {
                const double a = fabs(b->val[j]);
                if (pruned[j])
                    dsr_max_pruned = fmax(dsr_max_pruned, a);
                else if (a > 0)
                    dsr_min_kept = fmin(dsr_min_kept, a);
            }
            break;
        default: break;
        }
        if (row->nnz_per_layer && row->grow != GROW_NONE)
            CU_ASSERT_EQUAL(grown, n_pruned);
        must_change += count > 0;
        total_before += b->nnz;
        total_after += dsnn_sparse_nnz(l);
        total_pruned += n_pruned;
        total_grown += grown;
        free(pruned);
        free(expect);
    }
    if (row->grow != GROW_NONE) {
        CU_ASSERT_EQUAL(total_after, total_before); /* redistributing schemes: the total */
        CU_ASSERT_EQUAL(total_grown, total_pruned);
    } else {
        CU_ASSERT_EQUAL(total_after, total_before - total_pruned);
    }
    if (row->rule == RULE_DSR)
        CU_ASSERT(dsr_max_pruned < dsr_min_kept); /* one threshold for every layer */
    /* a rate > 0 changes the topology */
    if (must_change)
        CU_ASSERT(total_pruned > 0);
    o->rounds_must_change += must_change > 0;
    o->rounds_changed += total_pruned > 0;
    o->rounds++;
}

static const struct scheme_row scheme_rows[] = {
    {"set", "on_perc = 0.3; weight_prune_perc = 0.3; learning_rate = 0.05; momentum = 0.9;", 4,
     RULE_SET, 0.3, 0, GROW_ZERO, 0, true, 4, true},
    {"set", "on_perc = [0.3, 0.5, 1.0]; weight_prune_perc = 0.2; grow_init = \"normal\"; "
            "grow_std = 0.05; learning_rate = 0.05; momentum = 0.9; nesterov_momentum = true;",
     3, RULE_SET, 0.2, 0, GROW_NORMAL, 0.05, true, 3, false},
    {"set", "on_perc = 0.3; weight_prune_perc = 0.3; grow_init = \"like_init\"; "
            "optim_alg = \"Adam\"; learning_rate = 0.01;",
     3, RULE_SET, 0.3, 0, GROW_LIKE_INIT, 0, true, 3, true},
    {"dsnn-weighted-mag", "on_perc = 0.3; weight_prune_perc = 0.3; learning_rate = 0.05; "
                          "momentum = 0.9;",
     3, RULE_WEIGHTED, 0.3, 0, GROW_ZERO, 0, true, 3, true},
    {"dsnn-mixed-heb", "on_perc = 0.3; hebbian_prune_perc = 0; weight_prune_perc = 0.25; "
                       "learning_rate = 0.05; momentum = 0.9;",
     3, RULE_MAG_NUPIC, 0.25, 0, GROW_ZERO, 0, true, 3, true},
    {"dsnn-mixed-heb", "on_perc = 0.3; hebbian_prune_perc = 0.3; weight_prune_perc = 0.3; "
                       "learning_rate = 0.05; momentum = 0.9;",
     3, RULE_MIXED, 0.3, 0.3, GROW_ZERO, 0, true, 3, true},
    {"rigl", "on_perc = 0.3; drop_fraction = 0.3; update_frequency = 4; learning_rate = 0.05; "
             "momentum = 0.9;",
     4, RULE_RIGL, 0.3, 0, GROW_ZERO, 0, true, 12, false},
    {"snfs", "on_perc = 0.3; prune_rate = 0.5; learning_rate = 0.05; momentum = 0.9;", 4,
     RULE_SNFS, 0.5, 0, GROW_ZERO, 0, false, 3, false},
    {"dsr", "on_perc = 0.3; update_interval = 4; target_fraction_to_prune = 0.02; "
            "learning_rate = 0.05; momentum = 0.9;",
     4, RULE_DSR, 0, 0, GROW_ZERO, 0, false, 16, false},
    {"pruning", "target_final_density = 0.2; start_epoch = 0; end_epoch = 3; "
                "pruning_interval = 2; learning_rate = 0.05; momentum = 0.9;",
     5, RULE_GMP, 0.2, 0, GROW_NONE, 0, false, 3, false},
    {"iterative-pruning", "n_iterations = 3; prune_perc = [0.4, 0.4, 0.2]; learning_rate = 0.05; "
                          "momentum = 0.9;",
     6, RULE_LOTTERY, 0, 0, GROW_NONE, 0, false, 2, false},
};

/* SNFS: the logged momentum shares of an epoch's round are those of the weights' momentum
 * magnitudes seen by the observer. */
static void check_snfs_shares(int epoch, const struct dsnn_metrics *m, void *user)
{
    const struct observer *o = user;
    double rounds = 0;
    (void)epoch;
    if (!dsnn_metrics_get(m, "update_rounds", &rounds) || rounds < 1)
        return;
    const char *names[3] = {"fc1", "fc2", "output"};
    for (int i = 0; i < 3; i++) {
        char key[64];
        snprintf(key, sizeof key, "momentum_share_%s", names[i]);
        CU_ASSERT(fabs(metric(m, key) - o->share[i]) < 1e-9);
    }
}

static void test_scheme_table(void)
{
    for (size_t ri = 0; ri < DSNN_COUNT_OF(scheme_rows); ri++) {
        const struct scheme_row *row = &scheme_rows[ri];
        struct observer o = {.row = row};
        struct dsnn_data data;
        struct blobs *b = blobs_new(&data);
        struct dsnn_error err = {0};
        struct dsnn_metrics *m = malloc(sizeof *m);
        struct run r;
        enum dsnn_status st = run_open(&r, row->plugin, row->cfg, row->epochs, &data, &err);
        if (st != DSNN_OK)
            fprintf(stderr, "\n%s: %s\n", row->plugin, err.msg);
        CU_ASSERT_EQUAL_FATAL(st, DSNN_OK);
        dsnn_sparse_model_set_round_observer(round_observer, &o);
        train(&r, &data, 0, row->epochs, row->rule == RULE_SNFS ? check_snfs_shares : NULL, &o,
              m);
        dsnn_sparse_model_set_round_observer(NULL, NULL);
        if (o.rounds != row->rounds || o.rounds_changed < o.rounds_must_change)
            fprintf(stderr, "\n%s (%s): %d rounds (want %d), %d changed the topology (%d must)\n",
                    row->plugin, row->cfg, o.rounds, row->rounds, o.rounds_changed,
                    o.rounds_must_change);
        CU_ASSERT_EQUAL(o.rounds, row->rounds);
        /* rounds the rule must change (GMP's first is at d_initial, RigL's last at df = 0) */
        CU_ASSERT(o.rounds_changed >= o.rounds_must_change);
        CU_ASSERT(o.rounds_changed >= (row->rule == RULE_GMP ? o.rounds - 1 : o.rounds - 1));
        CU_ASSERT(o.rounds_changed > 0);
        CU_ASSERT(metric(m, "val_acc") > 0.8);
        if (row->grow == GROW_NORMAL || row->grow == GROW_LIKE_INIT) {
            /* normalised grown values: N(0, 1), or U(-1, 1) (variance 1/3) */
            const double n = (double)o.g_n, mean = o.g_sum / n, var = o.g_sq / n - mean * mean;
            const double want_var = row->grow == GROW_NORMAL ? 1.0 : 1.0 / 3.0;
            printf("\n    %s %s: %zu grown, mean %.3f, variance %.3f (want 0, %.3f) ", row->plugin,
                   row->grow == GROW_NORMAL ? "normal" : "like_init", o.g_n, mean, var, want_var);
            CU_ASSERT(o.g_n >= 200);
            /* several standard errors: sd of the mean sqrt(var / n), of the variance about
             * var sqrt(2 / n) (0.8 var sqrt(1 / n) for the uniform) */
            CU_ASSERT(fabs(mean) < 5 * sqrt(want_var / n));
            CU_ASSERT(fabs(var - want_var) < 5 * want_var * sqrt(2.0 / n));
            if (row->grow == GROW_LIKE_INIT)
                CU_ASSERT(o.g_max <= 1.0 + 1e-5);
        }
        for (size_t i = 0; i < MAX_SP; i++)
            snap_free(&o.before[i]);
        run_close(&r);
        free(m);
        free(b);
        if (row->resume)
            check_resume(row->plugin, row->cfg, row->epochs);
    }
}

/* The same table on a CNN whose convolutions are truly sparse and rewired (sparse_linear_only =
 * false): one inside a residual block, or, for the coactivation schemes (nupic's DSCNN: conv
 * coactivations), two at the top level; all rows but those with per-layer arrays (the lottery
 * ticket's with one prune_perc for every layer). */
static void test_scheme_table_conv(void)
{
    for (size_t ri = 0; ri < DSNN_COUNT_OF(scheme_rows); ri++) {
        const struct scheme_row *row = &scheme_rows[ri];
        const bool lottery = row->rule == RULE_LOTTERY;
        if (strchr(row->cfg, '[') && !lottery)
            continue;
        const bool heb = strncmp(row->plugin, "dsnn-", 5) == 0;
        g_conv = heb ? 2 : 1;
        struct scheme_row conv = *row;
        char cfg[600];
        snprintf(cfg, sizeof cfg, "%s sparse_linear_only = false;",
                 lottery ? "n_iterations = 3; prune_perc = 0.4; learning_rate = 0.05; "
                           "momentum = 0.9;"
                         : row->cfg);
        conv.cfg = cfg;
        struct observer o = {.row = &conv};
        struct dsnn_data data;
        struct blobs *b = blobs_new(&data);
        struct dsnn_error err = {0};
        struct dsnn_metrics *m = malloc(sizeof *m);
        struct run r;
        enum dsnn_status st = run_open(&r, conv.plugin, conv.cfg, conv.epochs, &data, &err);
        if (st != DSNN_OK)
            fprintf(stderr, "\n%s: %s\n", conv.plugin, err.msg);
        CU_ASSERT_EQUAL_FATAL(st, DSNN_OK);
        dsnn_sparse_model_set_round_observer(round_observer, &o);
        train(&r, &data, 0, conv.epochs, NULL, &o, m);
        dsnn_sparse_model_set_round_observer(NULL, NULL);
        CU_ASSERT_EQUAL(o.n_layers, heb ? 3u : 4u); /* conv1, [block.]conv1/2, output */
        if (o.rounds != conv.rounds || o.rounds_changed < o.rounds_must_change)
            fprintf(stderr, "\n%s (%s): %d rounds (want %d), %d changed the topology (%d must)\n",
                    conv.plugin, conv.cfg, o.rounds, conv.rounds, o.rounds_changed,
                    o.rounds_must_change);
        CU_ASSERT_EQUAL(o.rounds, conv.rounds);
        CU_ASSERT(o.rounds_changed >= o.rounds_must_change);
        CU_ASSERT(o.rounds_changed > 0);
        /* the block's convolutions are logged under their qualified names */
        CU_ASSERT(metric(m, heb ? "density_conv2" : "density_block.conv2") > 0);
        CU_ASSERT(metric(m, "nnz_conv1") > 0);
        const double acc = metric(m, "val_acc");
        if (!(acc > 0.8))
            fprintf(stderr, "\n%s (conv): val_acc %g\n", conv.plugin, acc);
        CU_ASSERT(acc > 0.8);
        for (size_t i = 0; i < MAX_SP; i++)
            snap_free(&o.before[i]);
        run_close(&r);
        free(m);
        free(b);
        if (conv.resume)
            check_resume(conv.plugin, conv.cfg, conv.epochs);
    }
    g_conv = 0;
}

/* ---- the scheme kit itself: step rounds, the epoch's tally, tag and state in the checkpoint ---- */

struct kit_params {
    double x;                                       /* state */
    double per_layer[DSNN_SPARSE_MODEL_MAX_LAYERS]; /* state, one per sparse layer */
    int64_t every;
    int64_t ts[16]; /* steps of the rounds run */
    size_t n_ts, logged;
    bool fail;
};
static struct kit_params *g_kit; /* the parameters of the model created last */

static const struct dsnn_key_spec kit_keys[] = {
    DSNN_SCHEME_KEYS("kit"),
    {.name = "every", .type = DSNN_KEY_INT, .def = 5, DSNN_KEY_RANGE(1, 100),
     DSNN_KEY_AT(struct kit_params, every), .doc = "optimizer steps between two rounds"},
};

static enum dsnn_status kit_init(struct dsnn_sparse_model *sm, void *params,
                                 const struct dsnn_run_ctx *ctx, struct dsnn_error *err)
{
    (void)sm;
    (void)ctx;
    (void)err;
    g_kit = params;
    return DSNN_OK;
}

static enum dsnn_status kit_round(struct dsnn_sparse_model *sm, void *params, int64_t t,
                                  struct dsnn_error *err)
{
    struct kit_params *p = params;
    if (p->fail)
        return dsnn_error_set(err, DSNN_ERR_INTERNAL, "failed");
    if (p->n_ts < DSNN_COUNT_OF(p->ts))
        p->ts[p->n_ts++] = t;
    enum dsnn_status st = dsnn_sparse_model_update_begin(sm, err);
    if (st != DSNN_OK)
        return st;
    dsnn_sparse_model_update_pruned(sm);
    return dsnn_scheme_update_end(sm, err);
}

static enum dsnn_status kit_after_step(struct dsnn_sparse_model *sm, void *params, int64_t step,
                                       struct dsnn_error *err)
{
    const struct kit_params *p = params;
    return dsnn_scheme_step_round(sm, params, step, 3, -1, p->every, kit_round, "kit round", err);
}

static enum dsnn_status kit_end_epoch(struct dsnn_sparse_model *sm, void *params, int epoch,
                                      struct dsnn_metrics *m, struct dsnn_error *err)
{
    (void)epoch;
    (void)err;
    ((struct kit_params *)params)->logged = dsnn_scheme_log_rounds(sm, m);
    return DSNN_OK;
}

static const struct dsnn_scheme_state kit_state[] = {
    DSNN_SCHEME_STATE(struct kit_params, x, "kit x"),
    DSNN_SCHEME_STATE_PER_LAYER(struct kit_params, per_layer, "kit per layer"),
};
static const struct dsnn_scheme kit_scheme = {
    .params_size = sizeof(struct kit_params), .init = kit_init, .after_step = kit_after_step,
    .end_epoch = kit_end_epoch, .tag = "KIT ", .state = kit_state,
    .n_state = DSNN_COUNT_OF(kit_state)};
/* The same with another checkpoint tag. */
static const struct dsnn_scheme kit_other_tag = {
    .params_size = sizeof(struct kit_params), .init = kit_init, .tag = "KOT ",
    .state = kit_state, .n_state = DSNN_COUNT_OF(kit_state)};

static void *kit_open(const struct dsnn_scheme *s, struct dsnn_config_file *cf,
                      struct dsnn_net **net, const struct dsnn_data *data)
{
    struct dsnn_error err = {0};
    const struct dsnn_run_ctx ctx = {.seed = 42, .epochs = 2, .n_threads = 1};
    void *state = NULL;
    *net = make_net();
    enum dsnn_status st =
        dsnn_scheme_create(s, kit_keys, DSNN_COUNT_OF(kit_keys),
                           dsnn_cfg_group(dsnn_config_file_root(cf), "model"), &ctx, *net,
                           &data->info, &state, &err);
    if (st != DSNN_OK)
        fprintf(stderr, "\ncreate: %s\n", err.msg);
    CU_ASSERT_EQUAL_FATAL(st, DSNN_OK);
    return state;
}

static void test_scheme_kit(void)
{
    struct dsnn_data data;
    struct blobs *b = blobs_new(&data);
    struct dsnn_error err = {0};
    struct dsnn_config_file *cf = NULL;
    CU_ASSERT_EQUAL_FATAL(dsnn_config_file_parse("model = { plugin = \"kit\"; on_perc = 0.3; };",
                                                 "test.cfg", &cf, &err),
                          DSNN_OK);
    struct dsnn_metrics *m = malloc(sizeof *m);
    struct dsnn_net *net_a, *net_c, *net_d;
    void *a = kit_open(&kit_scheme, cf, &net_a, &data);
    struct kit_params *pa = g_kit;
    /* 16 steps per epoch, rounds at t = 3, 8, 13 | 18, 23, 28: three per epoch, tallied */
    const int64_t want[6] = {3, 8, 13, 18, 23, 28};
    for (int e = 0; e < 2; e++) {
        dsnn_metrics_clear(m);
        CU_ASSERT_EQUAL_FATAL(dsnn_scheme_train_epoch(a, &data, e, m, &err), DSNN_OK);
        CU_ASSERT_EQUAL(pa->logged, 3u);
        CU_ASSERT_EQUAL(metric(m, "update_rounds"), 3.0);
        CU_ASSERT_EQUAL(metric(m, "pruned_fc1"), 0.0);
    }
    CU_ASSERT_EQUAL_FATAL(pa->n_ts, 6u);
    CU_ASSERT(memcmp(pa->ts, want, sizeof want) == 0);

    /* tag and state: the checkpoint ends with "KIT ", x, one double per sparse layer */
    pa->x = 1.5;
    for (int i = 0; i < 3; i++)
        pa->per_layer[i] = 0.25 * (i + 1);
    FILE *f = tmpfile();
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_EQUAL_FATAL(dsnn_scheme_save(a, f, &err), DSNN_OK);
    const long size = ftell(f);
    char tail[4 + 4 * sizeof(double)];
    CU_ASSERT_EQUAL_FATAL(fseek(f, size - (long)sizeof tail, SEEK_SET), 0);
    CU_ASSERT_EQUAL_FATAL(fread(tail, 1, sizeof tail, f), sizeof tail);
    CU_ASSERT(memcmp(tail, "KIT ", 4) == 0);
    CU_ASSERT(memcmp(tail + 4, &pa->x, sizeof(double)) == 0);
    CU_ASSERT(memcmp(tail + 4 + sizeof(double), pa->per_layer, 3 * sizeof(double)) == 0);

    void *c = kit_open(&kit_scheme, cf, &net_c, &data);
    struct kit_params *pc = g_kit;
    rewind(f);
    CU_ASSERT_EQUAL(dsnn_scheme_load(c, f, &err), DSNN_OK);
    CU_ASSERT_EQUAL(ftell(f), size);
    CU_ASSERT_EQUAL(pc->x, 1.5);
    CU_ASSERT(memcmp(pc->per_layer, pa->per_layer, sizeof pa->per_layer) == 0);

    void *d = kit_open(&kit_other_tag, cf, &net_d, &data);
    rewind(f);
    CU_ASSERT_EQUAL(dsnn_scheme_load(d, f, &err), DSNN_ERR_FORMAT);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "KOT "));
    fclose(f);

    /* a failing round: the error names the step */
    pc->fail = true;
    dsnn_metrics_clear(m);
    CU_ASSERT_EQUAL(dsnn_scheme_train_epoch(c, &data, 0, m, &err), DSNN_ERR_INTERNAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "kit round at step 3"));

    dsnn_scheme_destroy(a);
    dsnn_scheme_destroy(c);
    dsnn_scheme_destroy(d);
    dsnn_net_free(net_a);
    dsnn_net_free(net_c);
    dsnn_net_free(net_d);
    dsnn_config_file_free(cf);
    free(m);
    free(b);
}

static int cleanup(void)
{
    dsnn_registry_free(g_reg);
    g_reg = NULL;
    return 0;
}

static CU_TestInfo tests[] = {
    {"every scheme through the same round invariants (table)", test_scheme_table},
    {"the same on a CNN with truly sparse convolutions (table)", test_scheme_table_conv},
    {"rigl", test_rigl},
    {"snfs", test_snfs},
    {"dsr", test_dsr},
    {"pruning (GMP)", test_pruning},
    {"pruning, nupic's linear schedule (PruningModel)", test_pruning_linear},
    {"iterative-pruning (lottery ticket)", test_iterative},
    {"the scheme kit: step rounds, the epoch's tally, tag and state", test_scheme_kit},
    CU_TEST_INFO_NULL,
};

int main(void)
{
    int isa_rc = dsnn_test_isa_init();
    if (isa_rc >= 0)
        return isa_rc;
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    CU_SuiteInfo suites[] = {{"sparse schemes", NULL, cleanup, NULL, NULL, tests},
                             CU_SUITE_INFO_NULL};
    if (CU_register_suites(suites) != CUE_SUCCESS) {
        CU_cleanup_registry();
        return 2;
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
    CU_cleanup_registry();
    return failed ? 1 : 0;
}
