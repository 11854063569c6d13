/* test_sparse_schemes.c - the model plugins rigl, snfs, dsr, pruning and iterative-pruning,
 * loaded from the build's plugin folder and trained on a small in-memory dataset:
 *   - per-scheme invariants of the logged metrics (constant nnz for the dynamic schemes, the GMP
 *     density schedule, the lottery-ticket density per round);
 *   - checkpoints: a model saved after 2 epochs and loaded into a fresh one continues exactly
 *     (bit for bit) as the original;
 *   - configuration errors name the key (inconsistent epochs, end_epoch out of range ...).
 * Needs the plugins built (DSNN_BUILD_DIR/plugins, set by ctest). */
#include "harness.h"
#include "registry.h"

#include <dsnn/dsnn.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- a small dataset: 4 Gaussian blobs in 20 dimensions ---- */

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
        .info = {{NF, 1, 1}, NC, NTRAIN, NTEST, 0, BS, BS},
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
        const char *so[] = {"rigl", "snfs", "dsr", "pruning", "iterative-pruning"};
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

/* MLP 20 -> 48 -> 32 -> 4 with dense linear layers (the model makes them sparse). */
static struct dsnn_net *make_net(void)
{
    struct dsnn_error err = {0};
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
        enum dsnn_status st = r->ops->train_epoch(r->model, data, e, last, &err);
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

static int cleanup(void)
{
    dsnn_registry_free(g_reg);
    g_reg = NULL;
    return 0;
}

static CU_TestInfo tests[] = {
    {"rigl", test_rigl},
    {"snfs", test_snfs},
    {"dsr", test_dsr},
    {"pruning (GMP)", test_pruning},
    {"iterative-pruning (lottery ticket)", test_iterative},
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
