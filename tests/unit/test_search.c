/* tests/unit/test_search.c - the search plugins random, asha, median-stop and pbt, loaded from
 * $DSNN_BUILD_DIR/plugins/<name>.so through the host registry and driven through their ops
 * tables on scripted metric streams, as the host drives them; plus the shared search space of
 * libdsnn (dsnn/search_space.h). */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dsnn/config.h"
#include "dsnn/io.h"
#include "dsnn/metrics.h"
#include "dsnn/plugin.h"
#include "dsnn/search_space.h"
#include "dsnn/status.h"
#include "harness.h"
#include "registry.h"

#define ASSERT_HAS(msg, sub)                                                                       \
    do {                                                                                           \
        const char *m_ = (msg), *s_ = (sub);                                                       \
        bool ok_ = m_ && strstr(m_, s_) != NULL;                                                   \
        if (!ok_)                                                                                  \
            fprintf(stderr, "\n    %s:%d: \"%s\" does not contain \"%s\"\n", __FILE__, __LINE__,   \
                    m_ ? m_ : "(null)", s_);                                                       \
        CU_ASSERT(ok_);                                                                            \
    } while (0)

/* ---- the plugins ---- */

static struct dsnn_registry *g_reg;

static void cleanup(void)
{
    dsnn_registry_free(g_reg);
    g_reg = NULL;
}

static const struct dsnn_search_ops *plugin_ops(const char *name)
{
    if (!g_reg) {
        struct dsnn_error err = {0};
        atexit(cleanup);
        if (dsnn_registry_new(&g_reg, &err) != DSNN_OK)
            return NULL;
    }
    const struct dsnn_registry_entry *e = dsnn_registry_find(g_reg, DSNN_KIND_SEARCH, name);
    if (!e) {
        char path[4096];
        snprintf(path, sizeof path, "%s/plugins/%s.so", dsnn_test_build_dir(), name);
        struct dsnn_error err = {0};
        if (dsnn_registry_load_file(g_reg, path, &err) != DSNN_OK) {
            fprintf(stderr, "\n    cannot load %s: %s\n", path, err.msg);
            return NULL;
        }
        e = dsnn_registry_find(g_reg, DSNN_KIND_SEARCH, name);
    }
    return e ? &e->ops.search : NULL;
}

/* A parsed configuration and a strategy created over its `search` group. */
struct strat {
    const struct dsnn_search_ops *ops;
    struct dsnn_config_file *f;
    void *state;
};

static enum dsnn_status strat_open_ctx(struct strat *s, const char *plugin, const char *text,
                                       const struct dsnn_search_ctx *ctx, struct dsnn_error *err)
{
    memset(s, 0, sizeof *s);
    s->ops = plugin_ops(plugin);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s->ops);
    struct dsnn_error perr = {0};
    if (dsnn_config_file_parse(text, "exp.cfg", &s->f, &perr) != DSNN_OK)
        fprintf(stderr, "\n    parse: %s\n", perr.msg);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s->f);
    const struct dsnn_cfg *search = dsnn_cfg_group(dsnn_config_file_root(s->f), "search");
    return s->ops->create(search, ctx, &s->state, err);
}

static enum dsnn_status strat_open(struct strat *s, const char *plugin, const char *text,
                                   int num_samples, int max_epochs, struct dsnn_error *err)
{
    struct dsnn_search_ctx ctx = {.seed = 42,
                                  .num_samples = num_samples,
                                  .max_epochs = max_epochs,
                                  .metric = "val_acc",
                                  .maximize = true};
    return strat_open_ctx(s, plugin, text, &ctx, err);
}

/* Opens and asserts success. */
static void strat_must_open(struct strat *s, const char *plugin, const char *text,
                            int num_samples, int max_epochs)
{
    struct dsnn_error err = {0};
    enum dsnn_status st = strat_open(s, plugin, text, num_samples, max_epochs, &err);
    if (st != DSNN_OK)
        fprintf(stderr, "\n    create %s: %s\n", plugin, err.msg);
    CU_ASSERT_EQUAL_FATAL(st, DSNN_OK);
}

static void strat_close(struct strat *s)
{
    if (s->state)
        s->ops->destroy(s->state);
    dsnn_config_file_free(s->f);
    memset(s, 0, sizeof *s);
}

static bool suggest(struct strat *s, int i, struct dsnn_param_set *ps)
{
    struct dsnn_error err = {0};
    bool done = true;
    memset(ps, 0xab, sizeof *ps);
    enum dsnn_status st = s->ops->suggest(s->state, i, ps, &done, &err);
    if (st != DSNN_OK)
        fprintf(stderr, "\n    suggest %d: %s\n", i, err.msg);
    CU_ASSERT_EQUAL(st, DSNN_OK);
    return done;
}

static enum dsnn_search_decision report(struct strat *s, int trial, int epoch, const char *metric,
                                        double value)
{
    static struct dsnn_metrics m;
    dsnn_metrics_clear(&m);
    dsnn_metrics_set(&m, "train_loss", 1.0);
    dsnn_metrics_set(&m, metric, value);
    return s->ops->on_result(s->state, trial, epoch, &m);
}

/* Saves a's state and restores it into a fresh b created from the same text. */
static void save_restore(struct strat *a, struct strat *b, const char *plugin, const char *text,
                         int num_samples, int max_epochs)
{
    CU_ASSERT_PTR_NOT_NULL_FATAL(a->ops->save);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a->ops->restore);
    FILE *f = tmpfile();
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    struct dsnn_error err = {0};
    CU_ASSERT_EQUAL(a->ops->save(a->state, f, &err), DSNN_OK);
    rewind(f);
    strat_must_open(b, plugin, text, num_samples, max_epochs);
    enum dsnn_status st = b->ops->restore(b->state, f, &err);
    if (st != DSNN_OK)
        fprintf(stderr, "\n    restore: %s\n", err.msg);
    CU_ASSERT_EQUAL(st, DSNN_OK);
    CU_ASSERT_EQUAL(fgetc(f), EOF); /* restore read everything save wrote */
    fclose(f);
}

/* Value of a parameter as a double (scalars, or a choice referring to a number). */
static const struct dsnn_param *param(const struct dsnn_param_set *ps, const char *path)
{
    for (size_t i = 0; i < ps->n; i++)
        if (strcmp(ps->items[i].path, path) == 0)
            return &ps->items[i];
    return NULL;
}

static double num(const struct dsnn_param_set *ps, const char *path)
{
    const struct dsnn_param *p = param(ps, path);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    switch (p->value.type) {
    case DSNN_VALUE_INT: return (double)p->value.u.i;
    case DSNN_VALUE_FLOAT: return p->value.u.f;
    case DSNN_VALUE_CFG: {
        char buf[64];
        dsnn_cfg_to_text(p->value.u.cfg, buf, sizeof buf);
        return strtod(buf, NULL);
    }
    default: CU_FAIL("not a number"); return NAN;
    }
}

static int line_of(const char *text, const char *needle)
{
    const char *p = strstr(text, needle);
    int line = 1;
    for (const char *q = text; p && q < p; q++)
        line += *q == '\n';
    return p ? line : 0;
}

/* create must fail with DSNN_ERR_CONFIG, a message starting "exp.cfg:LINE: " (LINE: of
 * line_needle, if given) and containing every part. */
static void check_refused(const char *plugin, const char *text, const char *line_needle,
                          const char *const parts[])
{
    struct strat s;
    struct dsnn_error err = {0};
    CU_ASSERT_EQUAL(strat_open(&s, plugin, text, 4, 9, &err), DSNN_ERR_CONFIG);
    CU_ASSERT_PTR_NULL(s.state);
    if (line_needle) {
        char want[64];
        snprintf(want, sizeof want, "exp.cfg:%d: ", line_of(text, line_needle));
        bool at = strncmp(err.msg, want, strlen(want)) == 0;
        if (!at)
            fprintf(stderr, "\n    \"%s\" does not start with \"%s\"\n", err.msg, want);
        CU_ASSERT_TRUE(at);
    }
    for (int i = 0; parts[i]; i++)
        ASSERT_HAS(err.msg, parts[i]);
    strat_close(&s);
}

/* ---- random and the search space ---- */

static const char *const k_space =
    "search = {\n"
    "  plugin = \"random\";\n"
    "  space = {\n"
    "    model = {\n"
    "      learning_rate = { dist = \"loguniform\"; low = 1e-4; high = 1e-1; };\n"
    "      momentum = { dist = \"uniform\"; low = 0.5; high = 0.9; };\n"
    "      on_perc = { dist = \"choice\"; values = [0.02, 0.05, 0.1]; };\n"
    "      k = { dist = \"randint\"; low = 3; high = 7; };\n"
    "      noise = { dist = \"normal\"; mean = 1.0; std = 0.5; };\n"
    "      alg = (\"SGD\", \"Adam\");\n"
    "      optim = \"SGD\";\n"
    "    };\n"
    "    network = { hidden_sizes = ([100], [300, 100]); };\n"
    "  };\n"
    "};\n";

static void test_plugins_load(void)
{
    static const char *const names[] = {"random", "asha", "median-stop", "pbt"};
    for (size_t i = 0; i < 4; i++) {
        const struct dsnn_search_ops *ops = plugin_ops(names[i]);
        CU_ASSERT_PTR_NOT_NULL_FATAL(ops);
        CU_ASSERT_PTR_NOT_NULL(ops->create);
        CU_ASSERT_PTR_NOT_NULL(ops->suggest);
        CU_ASSERT_PTR_NOT_NULL(ops->on_result);
        CU_ASSERT_PTR_NOT_NULL(ops->destroy);
        const struct dsnn_registry_entry *e =
            dsnn_registry_find(g_reg, DSNN_KIND_SEARCH, names[i]);
        CU_ASSERT_PTR_NOT_NULL(dsnn_registry_entry_key(e, "space"));
        /* strategies with state save it; random is a pure function of (seed, trial) */
        CU_ASSERT_EQUAL(ops->save != NULL, i > 0);
        CU_ASSERT_EQUAL(ops->restore != NULL, i > 0);
        CU_ASSERT_EQUAL(ops->exploit != NULL, i == 3);
    }
    const struct dsnn_registry_entry *e = dsnn_registry_find(g_reg, DSNN_KIND_SEARCH, "asha");
    CU_ASSERT_PTR_NOT_NULL(dsnn_registry_entry_key(e, "grace_period"));
    CU_ASSERT_PTR_NOT_NULL(dsnn_registry_entry_key(e, "reduction_factor"));
    CU_ASSERT_PTR_NOT_NULL(dsnn_registry_entry_key(e, "max_t"));
    CU_ASSERT_PTR_NOT_NULL(dsnn_registry_entry_key(e, "brackets"));
    e = dsnn_registry_find(g_reg, DSNN_KIND_SEARCH, "median-stop");
    CU_ASSERT_PTR_NOT_NULL(dsnn_registry_entry_key(e, "min_samples_required"));
    e = dsnn_registry_find(g_reg, DSNN_KIND_SEARCH, "pbt");
    CU_ASSERT_PTR_NOT_NULL(dsnn_registry_entry_key(e, "perturbation_interval"));
    CU_ASSERT_PTR_NOT_NULL(dsnn_registry_entry_key(e, "quantile_fraction"));
    CU_ASSERT_PTR_NOT_NULL(dsnn_registry_entry_key(e, "resample_probability"));
}

static void test_random_distributions(void)
{
    enum { N = 4000 };
    struct strat s;
    strat_must_open(&s, "random", k_space, N, 5);
    const struct dsnn_cfg *space =
        dsnn_config_file_lookup(s.f, "search.space.model.on_perc.values");
    CU_ASSERT_PTR_NOT_NULL_FATAL(space);
    double sum_log = 0, sum_u = 0, sum_n = 0, sum_n2 = 0;
    int k_count[8] = {0}, perc_count[3] = {0}, alg_adam = 0, hidden_two = 0;
    static struct dsnn_param_set ps;
    for (int t = 0; t < N; t++) {
        CU_ASSERT_FALSE_FATAL(suggest(&s, t, &ps));
        CU_ASSERT_EQUAL_FATAL(ps.n, 8);
        /* the space's order of keys */
        CU_ASSERT_STRING_EQUAL(ps.items[0].path, "model.learning_rate");
        CU_ASSERT_STRING_EQUAL(ps.items[7].path, "network.hidden_sizes");
        double lr = num(&ps, "model.learning_rate");
        CU_ASSERT_EQUAL(param(&ps, "model.learning_rate")->value.type, DSNN_VALUE_FLOAT);
        CU_ASSERT(lr >= 1e-4 && lr < 1e-1);
        sum_log += log(lr);
        double mom = num(&ps, "model.momentum");
        CU_ASSERT(mom >= 0.5 && mom < 0.9);
        sum_u += mom;
        const struct dsnn_param *k = param(&ps, "model.k");
        CU_ASSERT_EQUAL_FATAL(k->value.type, DSNN_VALUE_INT);
        CU_ASSERT(k->value.u.i >= 3 && k->value.u.i < 7);
        k_count[k->value.u.i & 7]++;
        double z = num(&ps, "model.noise");
        sum_n += z;
        sum_n2 += z * z;
        const struct dsnn_param *op = param(&ps, "model.on_perc");
        CU_ASSERT_EQUAL_FATAL(op->value.type, DSNN_VALUE_CFG);
        for (size_t c = 0; c < 3; c++) /* a reference to one of the configured choices */
            perc_count[c] += op->value.u.cfg == dsnn_cfg_child(space, c);
        char buf[64];
        dsnn_value_to_text(&param(&ps, "model.alg")->value, buf, sizeof buf);
        alg_adam += strcmp(buf, "\"Adam\"") == 0;
        CU_ASSERT(strcmp(buf, "\"Adam\"") == 0 || strcmp(buf, "\"SGD\"") == 0);
        dsnn_value_to_text(&param(&ps, "model.optim")->value, buf, sizeof buf);
        CU_ASSERT_STRING_EQUAL(buf, "\"SGD\""); /* fixed */
        dsnn_value_to_text(&param(&ps, "network.hidden_sizes")->value, buf, sizeof buf);
        hidden_two += strcmp(buf, "[300, 100]") == 0;
        CU_ASSERT(strcmp(buf, "[300, 100]") == 0 || strcmp(buf, "[100]") == 0);
    }
    /* loguniform: log(lr) uniform in [log 1e-4, log 1e-1): mean -5.757, sd 1.994 / sqrt(N) */
    double mean_log = sum_log / N, want_log = (log(1e-4) + log(1e-1)) / 2;
    CU_ASSERT(fabs(mean_log - want_log) < 4 * 1.994 / sqrt(N));
    /* uniform mean 0.7 (sd 0.1155 / sqrt N) */
    CU_ASSERT(fabs(sum_u / N - 0.7) < 4 * 0.1155 / sqrt(N));
    /* normal: mean 1, std 0.5 */
    double mean_n = sum_n / N, sd_n = sqrt(sum_n2 / N - mean_n * mean_n);
    CU_ASSERT(fabs(mean_n - 1.0) < 4 * 0.5 / sqrt(N));
    CU_ASSERT(fabs(sd_n - 0.5) < 0.03);
    /* randint 3..6, each about N/4; never 7 */
    for (int v = 3; v < 7; v++)
        CU_ASSERT(abs(k_count[v] - N / 4) < 150);
    CU_ASSERT_EQUAL(k_count[7], 0);
    for (int c = 0; c < 3; c++)
        CU_ASSERT(abs(perc_count[c] - N / 3) < 150);
    CU_ASSERT_EQUAL(perc_count[0] + perc_count[1] + perc_count[2], N);
    CU_ASSERT(abs(alg_adam - N / 2) < 150);
    CU_ASSERT(abs(hidden_two - N / 2) < 150);
    CU_ASSERT_TRUE(suggest(&s, N, &ps));
    CU_ASSERT_EQUAL(ps.n, 0);
    CU_ASSERT_TRUE(suggest(&s, -1, &ps));
    /* on_result / on_complete are harmless */
    CU_ASSERT_EQUAL(report(&s, 0, 0, "val_acc", 0.1), DSNN_SEARCH_CONTINUE);
    s.ops->on_complete(s.state, 0, false);
    strat_close(&s);
}

static void test_random_deterministic(void)
{
    struct strat a, b, c;
    strat_must_open(&a, "random", k_space, 20, 5);
    strat_must_open(&b, "random", k_space, 20, 5);
    struct dsnn_search_ctx ctx = {.seed = 43, .num_samples = 20, .max_epochs = 5,
                                  .metric = "val_acc", .maximize = true};
    struct dsnn_error err = {0};
    CU_ASSERT_EQUAL_FATAL(strat_open_ctx(&c, "random", k_space, &ctx, &err), DSNN_OK);
    static struct dsnn_param_set pa, pb, pc;
    int differ_seed = 0, differ_trial = 0;
    double prev_lr = -1;
    for (int t = 0; t < 20; t++) {
        suggest(&a, t, &pa);
        suggest(&b, 19 - t, &pb); /* b asks in reverse order */
        suggest(&b, t, &pb);
        suggest(&c, t, &pc);
        double lr = num(&pa, "model.learning_rate");
        CU_ASSERT_EQUAL(lr, num(&pb, "model.learning_rate"));
        CU_ASSERT_EQUAL(num(&pa, "model.noise"), num(&pb, "model.noise"));
        CU_ASSERT_EQUAL(num(&pa, "model.k"), num(&pb, "model.k"));
        char ta[64], tb[64];
        dsnn_value_to_text(&param(&pa, "model.on_perc")->value, ta, sizeof ta);
        dsnn_value_to_text(&param(&pb, "model.on_perc")->value, tb, sizeof tb);
        CU_ASSERT_STRING_EQUAL(ta, tb);
        dsnn_value_to_text(&param(&pa, "network.hidden_sizes")->value, ta, sizeof ta);
        dsnn_value_to_text(&param(&pb, "network.hidden_sizes")->value, tb, sizeof tb);
        CU_ASSERT_STRING_EQUAL(ta, tb);
        differ_seed += lr != num(&pc, "model.learning_rate");
        differ_trial += lr != prev_lr;
        prev_lr = lr;
    }
    CU_ASSERT_EQUAL(differ_seed, 20);
    CU_ASSERT_EQUAL(differ_trial, 20);
    strat_close(&a);
    strat_close(&b);
    strat_close(&c);
}

static void test_space_no_space(void)
{
    struct strat s;
    strat_must_open(&s, "random", "search = { plugin = \"random\"; };\n", 3, 5);
    struct dsnn_param_set ps;
    for (int t = 0; t < 3; t++) {
        CU_ASSERT_FALSE(suggest(&s, t, &ps));
        CU_ASSERT_EQUAL(ps.n, 0);
    }
    CU_ASSERT_TRUE(suggest(&s, 3, &ps));
    strat_close(&s);
    /* num_samples 0 counts as 1 */
    strat_must_open(&s, "random", k_space, 0, 5);
    CU_ASSERT_FALSE(suggest(&s, 0, &ps));
    CU_ASSERT_TRUE(suggest(&s, 1, &ps));
    strat_close(&s);
}

static void test_space_api(void)
{
    struct dsnn_config_file *f = NULL;
    struct dsnn_error err = {0};
    CU_ASSERT_EQUAL_FATAL(dsnn_config_file_parse(k_space, "exp.cfg", &f, &err), DSNN_OK);
    static struct dsnn_search_space sp;
    const struct dsnn_cfg *search = dsnn_cfg_group(dsnn_config_file_root(f), "search");
    CU_ASSERT_EQUAL_FATAL(dsnn_search_space_parse(search, "space", &sp, &err), DSNN_OK);
    CU_ASSERT_EQUAL_FATAL(sp.n, 8);
    CU_ASSERT_EQUAL(sp.dims[0].dist, DSNN_DIST_LOGUNIFORM);
    CU_ASSERT_EQUAL(sp.dims[1].dist, DSNN_DIST_UNIFORM);
    CU_ASSERT_EQUAL(sp.dims[2].dist, DSNN_DIST_CHOICE);
    CU_ASSERT_EQUAL(sp.dims[2].n_values, 3);
    CU_ASSERT_EQUAL(sp.dims[3].dist, DSNN_DIST_RANDINT);
    CU_ASSERT_EQUAL(sp.dims[4].dist, DSNN_DIST_NORMAL);
    CU_ASSERT_EQUAL(sp.dims[5].dist, DSNN_DIST_CHOICE); /* list shorthand */
    CU_ASSERT_EQUAL(sp.dims[6].dist, DSNN_DIST_FIXED);
    CU_ASSERT_EQUAL(sp.dims[7].dist, DSNN_DIST_CHOICE);
    CU_ASSERT_STRING_EQUAL(sp.dims[7].path, "network.hidden_sizes");
    CU_ASSERT_STRING_EQUAL(dsnn_dist_str(DSNN_DIST_LOGUNIFORM), "loguniform");
    CU_ASSERT_STRING_EQUAL(dsnn_dist_str((enum dsnn_dist)99), "unknown");
    struct dsnn_rng r;
    static struct dsnn_search_point p;
    dsnn_search_trial_rng(&r, 1, 0);
    dsnn_search_space_sample(&sp, &r, &p);
    CU_ASSERT_TRUE(dsnn_search_space_contains(&sp, &p));
    struct dsnn_search_point q = p;
    q.x[2] = 3; /* choice index out of range */
    CU_ASSERT_FALSE(dsnn_search_space_contains(&sp, &q));
    q = p;
    q.x[0] = 0.5; /* above loguniform's high */
    CU_ASSERT_FALSE(dsnn_search_space_contains(&sp, &q));
    q = p;
    q.x[3] = 7; /* randint's high is excluded */
    CU_ASSERT_FALSE(dsnn_search_space_contains(&sp, &q));
    q.x[3] = 4.5;
    CU_ASSERT_FALSE(dsnn_search_space_contains(&sp, &q));
    /* params of a point */
    static struct dsnn_param_set ps;
    p.x[2] = 1;
    p.x[3] = 5;
    CU_ASSERT_EQUAL(dsnn_search_space_params(&sp, &p, &ps, &err), DSNN_OK);
    CU_ASSERT_EQUAL(ps.n, 8);
    CU_ASSERT_EQUAL(num(&ps, "model.on_perc"), 0.05);
    CU_ASSERT_EQUAL(ps.items[3].value.type, DSNN_VALUE_INT);
    CU_ASSERT_EQUAL(ps.items[3].value.u.i, 5);
    /* a missing key: empty space */
    CU_ASSERT_EQUAL(dsnn_search_space_parse(search, "nothing", &sp, &err), DSNN_OK);
    CU_ASSERT_EQUAL(sp.n, 0);
    /* the values apply to a trial configuration */
    dsnn_search_space_parse(search, "space", &sp, &err);
    dsnn_search_space_params(&sp, &p, &ps, &err);
    struct dsnn_config_file *trial = NULL;
    CU_ASSERT_EQUAL_FATAL(dsnn_config_file_parse("model = { k = 1; };\n", "t.cfg", &trial, &err),
                          DSNN_OK);
    for (size_t i = 0; i < ps.n; i++)
        CU_ASSERT_EQUAL(dsnn_config_file_set(trial, ps.items[i].path, &ps.items[i].value, &err),
                        DSNN_OK);
    int64_t k = 0;
    double perc = 0;
    CU_ASSERT_EQUAL(dsnn_cfg_int(dsnn_config_file_lookup(trial, "model"), "k", 0, &k, &err),
                    DSNN_OK);
    CU_ASSERT_EQUAL(k, 5);
    dsnn_cfg_float(dsnn_config_file_lookup(trial, "model"), "on_perc", 0, &perc, &err);
    CU_ASSERT_EQUAL(perc, 0.05);
    dsnn_config_file_free(trial);
    dsnn_config_file_free(f);
}

static void test_space_refused(void)
{
    check_refused("random",
                  "search = { space = {\n model = {\n  lr = { dist = \"logunif\"; low = 1; "
                  "high = 2; };\n }; }; };\n",
                  "logunif",
                  (const char *const[]){"'search.space.model.lr.dist'", "logunif", "loguniform",
                                        NULL});
    check_refused("random",
                  "search = { space = {\n model = {\n  lr = { dist = \"uniform\"; low = 0.5;\n"
                  "         high = 0.1; };\n }; }; };\n",
                  "high = 0.1",
                  (const char *const[]){"'search.space.model.lr.high'", "greater than low",
                                        NULL});
    check_refused("random",
                  "search = { space = {\n model = {\n  lr = { dist = \"loguniform\"; low = 0.0; "
                  "high = 0.1; };\n }; }; };\n",
                  "low = 0.0",
                  (const char *const[]){"'search.space.model.lr.low'", "> 0", NULL});
    check_refused("random",
                  "search = { space = {\n model = {\n  k = { dist = \"randint\"; low = 1.5; "
                  "high = 4; };\n }; }; };\n",
                  "low = 1.5",
                  (const char *const[]){"'search.space.model.k.low'", "integer", NULL});
    check_refused("random",
                  "search = { space = {\n model = {\n  k = { dist = \"randint\"; low = 4; "
                  "high = 4; };\n }; }; };\n",
                  "high = 4",
                  (const char *const[]){"'search.space.model.k.high'", "greater", NULL});
    check_refused("random",
                  "search = { space = {\n model = {\n  lr = { dist = \"uniform\";\n low = 0.5; "
                  "};\n }; }; };\n",
                  "lr =", (const char *const[]){"'search.space.model.lr.high'", "required", NULL});
    check_refused("random",
                  "search = { space = {\n model = {\n  lr = { dist = \"uniform\"; low = 0.5;\n"
                  "         hihg = 0.7; high = 1; };\n }; }; };\n",
                  "hihg",
                  (const char *const[]){"'search.space.model.lr.hihg'", "not a key", "low, high",
                                        NULL});
    check_refused("random",
                  "search = { space = {\n model = {\n  z = { dist = \"normal\"; mean = 0;\n"
                  "        std = 0.0; };\n }; }; };\n",
                  "std = 0.0",
                  (const char *const[]){"'search.space.model.z.std'", "> 0", NULL});
    check_refused("random",
                  "search = { space = {\n model = {\n  c = { dist = \"choice\";\n"
                  "        values = []; };\n }; }; };\n",
                  "values = []",
                  (const char *const[]){"'search.space.model.c.values'", "empty", NULL});
    check_refused("random",
                  "search = { space = {\n model = {\n  c = { dist = \"choice\";\n"
                  "        values = 0.1; };\n }; }; };\n",
                  "values = 0.1",
                  (const char *const[]){"'search.space.model.c.values'", "array or list", NULL});
    check_refused("random", "search = { space = {\n model = {\n  c = ();\n }; }; };\n", "c = ()",
                  (const char *const[]){"'search.space.model.c'", "empty", NULL});
    check_refused("random", "search = {\n plugin = \"random\";\n space = 5;\n};\n", "space = 5",
                  (const char *const[]){"'search.space'", "expected a group", NULL});
    check_refused("random",
                  "search = { space = {\n experiment = { epochs = [1, 2]; };\n}; };\n", "epochs",
                  (const char *const[]){"search.space.experiment.epochs", "cannot be searched",
                                        NULL});
    check_refused("random",
                  "search = { space = {\n model = {\n  lr = { dist = 3; };\n }; }; };\n",
                  "dist = 3",
                  (const char *const[]){"'search.space.model.lr.dist'", "expected a string",
                                        NULL});
    /* more keys than a parameter set holds */
    char text[4096];
    size_t len = (size_t)snprintf(text, sizeof text, "search = { space = { model = {\n");
    for (int i = 0; i < DSNN_PARAMS_MAX + 1; i++)
        len += (size_t)snprintf(text + len, sizeof text - len, "  k%d = [1];\n", i);
    snprintf(text + len, sizeof text - len, "}; }; };\n");
    char last[16];
    snprintf(last, sizeof last, "k%d =", DSNN_PARAMS_MAX);
    check_refused("random", text, last, (const char *const[]){"more than 32", NULL});
    /* the other plugins read the same space */
    check_refused("asha",
                  "search = { space = {\n model = {\n  lr = { dist = \"logunif\"; low = 1; "
                  "high = 2; };\n }; }; };\n",
                  "logunif", (const char *const[]){"'search.space.model.lr.dist'", NULL});
    check_refused("pbt",
                  "search = { space = {\n model = {\n  lr = { dist = \"logunif\"; low = 1; "
                  "high = 2; };\n }; }; };\n",
                  "logunif", (const char *const[]){"'search.space.model.lr.dist'", NULL});
    check_refused("median-stop",
                  "search = { space = {\n model = {\n  lr = { dist = \"logunif\"; low = 1; "
                  "high = 2; };\n }; }; };\n",
                  "logunif", (const char *const[]){"'search.space.model.lr.dist'", NULL});
}

/* ---- asha ---- */

/* 9 trials, eta = 3, grace_period = 1, max_t = 9: rungs at 1, 3 and 9 epochs. */
static const char *const k_asha = "search = {\n"
                                  "  plugin = \"asha\";\n"
                                  "  grace_period = 1;\n"
                                  "  reduction_factor = 3;\n"
                                  "  space = { model = { lr = [0.1, 0.01]; }; };\n"
                                  "};\n";

/* val_acc of trial i after epoch e (0-based). At t = 1 (epoch 0) the trials alternate good and
 * bad; at t = 3 (epoch 2) the survivors 0, 2, 4, 6, 8 have 0.55, 0.5, 0.75, 0.6, 0.95. */
static double asha_curve(int i, int e)
{
    static const double v1[9] = {0.5, 0.4, 0.6, 0.3, 0.7, 0.2, 0.8, 0.1, 0.9};
    static const double v3[9] = {0.55, 0.45, 0.5, 0.35, 0.75, 0.25, 0.6, 0.15, 0.95};
    if (e == 0)
        return v1[i];
    if (e == 1)
        return (v1[i] + v3[i]) / 2;
    return v3[i] + 0.01 * (e - 2);
}

/* Feeds epochs [from, to) epoch-major (every running trial reports epoch e, then e + 1 ...);
 * stop_t[i] receives the time (epoch + 1) at which trial i got STOP (0: still running). */
static void asha_drive(struct strat *s, int from, int to, int stop_t[9], const char *metric,
                       double sign)
{
    for (int e = from; e < to; e++)
        for (int i = 0; i < 9; i++) {
            if (stop_t[i])
                continue;
            enum dsnn_search_decision d = report(s, i, e, metric, sign * asha_curve(i, e));
            CU_ASSERT(d == DSNN_SEARCH_CONTINUE || d == DSNN_SEARCH_STOP);
            if (d == DSNN_SEARCH_STOP)
                stop_t[i] = e + 1;
        }
}

/* Expected (Ray's rule; worked out in the comments of test_asha_rungs). */
static const int k_asha_expected[9] = {9, 1, 3, 1, 9, 1, 3, 1, 9};

static void test_asha_rungs(void)
{
    /* Rung t = 1, in report order (cutoff = 66.7th percentile of the values recorded so far):
     *   T0 0.5 first -> continue; T1 0.4 < 0.5 -> STOP; T2 0.6 >= pct(.4,.5) = .467 -> continue;
     *   T3 0.3 < pct(.4,.5,.6) = .533 -> STOP; T4 0.7 >= .5 -> continue; T5 0.2 < .567 -> STOP;
     *   T6 0.8 -> continue; T7 0.1 -> STOP; T8 0.9 -> continue.
     * Rung t = 3 (survivors 0, 2, 4, 6, 8):
     *   T0 0.55 first -> continue; T2 0.5 < 0.55 -> STOP; T4 0.75 >= pct(.5,.55) = .533 ->
     *   continue; T6 0.6 < pct(.5,.55,.75) = .617 -> STOP; T8 0.95 -> continue.
     * T0, T4, T8 reach max_t = 9 (experiment.epochs) and are stopped there. */
    struct strat s;
    strat_must_open(&s, "asha", k_asha, 9, 9);
    static struct dsnn_param_set ps;
    for (int i = 0; i < 9; i++)
        CU_ASSERT_FALSE(suggest(&s, i, &ps));
    CU_ASSERT_TRUE(suggest(&s, 9, &ps));
    int stop_t[9] = {0};
    asha_drive(&s, 0, 9, stop_t, "val_acc", 1);
    for (int i = 0; i < 9; i++) {
        if (stop_t[i] != k_asha_expected[i])
            fprintf(stderr, "\n    trial %d stopped at %d, expected %d\n", i, stop_t[i],
                    k_asha_expected[i]);
        CU_ASSERT_EQUAL(stop_t[i], k_asha_expected[i]);
    }
    /* a result without the metric is ignored */
    CU_ASSERT_EQUAL(report(&s, 1, 3, "other", 0.0), DSNN_SEARCH_CONTINUE);
    s.ops->on_complete(s.state, 0, false);
    strat_close(&s);

    /* mode "min" on a loss (= -acc) gives the same decisions */
    strat_must_open(&s, "asha",
                    "search = { plugin = \"asha\"; grace_period = 1; reduction_factor = 3;\n"
                    " metric = \"val_loss\"; mode = \"min\"; };\n",
                    9, 9);
    int stop_min[9] = {0};
    asha_drive(&s, 0, 9, stop_min, "val_loss", -1);
    for (int i = 0; i < 9; i++)
        CU_ASSERT_EQUAL(stop_min[i], k_asha_expected[i]);
    strat_close(&s);

    /* max_t below experiment.epochs stops the survivors there */
    strat_must_open(&s, "asha",
                    "search = { grace_period = 1; reduction_factor = 3; max_t = 4; };\n", 9, 9);
    int stop_4[9] = {0};
    asha_drive(&s, 0, 9, stop_4, "val_acc", 1);
    for (int i = 0; i < 9; i++)
        CU_ASSERT_EQUAL(stop_4[i], k_asha_expected[i] == 9 ? 4 : k_asha_expected[i]);
    strat_close(&s);
}

static void test_asha_sequential(void)
{
    /* Trials one after another (a host running one trial at a time). Trial 0 passes every rung
     * (nothing recorded); trial 1 (0.4 < 0.5 at t = 1) stops at once; trial 2 passes t = 1
     * (0.6 >= 0.467) but at t = 3 0.5 < 0.55 (the only record) -> stop; trial 3 stops at 1;
     * trial 4: t = 1 0.7 >= pct(.3,.4,.5,.6) = .5; t = 3 0.75 >= pct(.5,.55) = .533 -> runs to
     * 9; ... */
    struct strat s;
    strat_must_open(&s, "asha", k_asha, 9, 9);
    int stop_t[9] = {0};
    for (int i = 0; i < 9; i++)
        for (int e = 0; e < 9 && !stop_t[i]; e++)
            if (report(&s, i, e, "val_acc", asha_curve(i, e)) == DSNN_SEARCH_STOP)
                stop_t[i] = e + 1;
    static const int want[9] = {9, 1, 3, 1, 9, 1, 3, 1, 9};
    for (int i = 0; i < 9; i++)
        CU_ASSERT_EQUAL(stop_t[i], want[i]);
    strat_close(&s);
}

static void test_asha_save_restore(void)
{
    /* State after t = 2 (rung 1 full), saved and restored into a fresh instance: both continue
     * identically (and as an instance that was never saved). */
    struct strat a, b;
    strat_must_open(&a, "asha", k_asha, 10, 9);
    int stop_a[9] = {0};
    asha_drive(&a, 0, 2, stop_a, "val_acc", 1);
    save_restore(&a, &b, "asha", k_asha, 10, 9);
    int stop_b[9];
    memcpy(stop_b, stop_a, sizeof stop_b);
    asha_drive(&a, 2, 9, stop_a, "val_acc", 1);
    asha_drive(&b, 2, 9, stop_b, "val_acc", 1);
    for (int i = 0; i < 9; i++) {
        CU_ASSERT_EQUAL(stop_a[i], k_asha_expected[i]);
        CU_ASSERT_EQUAL(stop_b[i], k_asha_expected[i]);
    }
    /* The restored records matter: a probe trial with 0.55 at t = 1 is below the 66.7th
     * percentile (.633) of the 9 values recorded at rung 1, so b stops it; an instance without
     * that history lets it continue. */
    struct strat c;
    strat_must_open(&c, "asha", k_asha, 10, 9);
    CU_ASSERT_EQUAL(report(&b, 9, 0, "val_acc", 0.55), DSNN_SEARCH_STOP);
    CU_ASSERT_EQUAL(report(&c, 9, 0, "val_acc", 0.55), DSNN_SEARCH_CONTINUE);
    /* a restore refuses a state of another configuration, a truncated one, or garbage */
    FILE *f = tmpfile();
    struct dsnn_error err = {0};
    CU_ASSERT_EQUAL(a.ops->save(a.state, f, &err), DSNN_OK);
    rewind(f);
    struct strat d;
    strat_must_open(&d, "asha",
                    "search = { grace_period = 1; reduction_factor = 3; brackets = 2; };\n", 9, 9);
    CU_ASSERT_EQUAL(d.ops->restore(d.state, f, &err), DSNN_ERR_FORMAT);
    ASSERT_HAS(err.msg, "bracket");
    strat_close(&d);
    strat_must_open(&d, "asha", "search = { grace_period = 1; reduction_factor = 2; };\n", 9, 9);
    rewind(f);
    CU_ASSERT_EQUAL(d.ops->restore(d.state, f, &err), DSNN_ERR_FORMAT);
    strat_close(&d);
    fclose(f);
    f = tmpfile();
    CU_ASSERT_EQUAL(a.ops->save(a.state, f, &err), DSNN_OK);
    long full = ftell(f);
    fclose(f);
    /* truncated */
    f = tmpfile();
    a.ops->save(a.state, f, &err);
    rewind(f);
    char *buf = malloc((size_t)full);
    CU_ASSERT_EQUAL(fread(buf, 1, (size_t)full, f), (size_t)full);
    fclose(f);
    f = tmpfile();
    fwrite(buf, 1, (size_t)full - 5, f);
    rewind(f);
    strat_must_open(&d, "asha", k_asha, 9, 9);
    memset(&err, 0, sizeof err);
    CU_ASSERT_EQUAL(d.ops->restore(d.state, f, &err), DSNN_ERR_FORMAT);
    ASSERT_HAS(err.msg, "truncated");
    fclose(f);
    f = tmpfile();
    fputs("garbage!", f);
    rewind(f);
    CU_ASSERT_EQUAL(d.ops->restore(d.state, f, &err), DSNN_ERR_FORMAT);
    ASSERT_HAS(err.msg, "ASHA");
    fclose(f);
    free(buf);
    strat_close(&d);
    strat_close(&a);
    strat_close(&b);
    strat_close(&c);
}

static void test_asha_brackets(void)
{
    /* Two brackets (grace 1, eta 3, max_t 9): bracket 0 has rungs 1, 3, 9, bracket 1 rungs 3,
     * 9. Trials are spread over both (weights e^0 : e^-1), the same way by every instance. A
     * trial of bracket 1 is never stopped at t = 1. */
    const char *text = "search = { grace_period = 1; reduction_factor = 3; brackets = 2; };\n";
    struct strat a, b;
    strat_must_open(&a, "asha", text, 200, 9);
    strat_must_open(&b, "asha", text, 200, 9);
    int stopped_at_1 = 0;
    for (int i = 0; i < 200; i++) {
        /* decreasing values: at t = 1 every trial of bracket 0 but the first is stopped */
        enum dsnn_search_decision da = report(&a, i, 0, "val_acc", 1.0 - i * 0.001);
        enum dsnn_search_decision db = report(&b, i, 0, "val_acc", 1.0 - i * 0.001);
        CU_ASSERT_EQUAL(da, db);
        stopped_at_1 += da == DSNN_SEARCH_STOP;
    }
    /* about 200 / (1 + e^-1) = 146 in bracket 0 */
    CU_ASSERT(stopped_at_1 > 120 && stopped_at_1 < 170);
    strat_close(&a);
    strat_close(&b);
}

static void test_asha_refused(void)
{
    check_refused("asha", "search = {\n reduction_factor = 1.0;\n};\n", "reduction_factor",
                  (const char *const[]){"'search.reduction_factor'", "out of range", NULL});
    check_refused("asha", "search = {\n grace_period = 0;\n};\n", "grace_period",
                  (const char *const[]){"'search.grace_period'", NULL});
    check_refused("asha", "search = {\n grace_period = 3;\n max_t = 2;\n};\n", "max_t",
                  (const char *const[]){"'search.max_t'", "grace_period", NULL});
    check_refused("asha", "search = {\n reduction_factor = 3;\n brackets = 4;\n};\n", "brackets",
                  (const char *const[]){"'search.brackets'", "[1, 3]", NULL});
    check_refused("asha", "search = {\n mode = \"avg\";\n};\n", "mode",
                  (const char *const[]){"'search.mode'", "\"max\"", NULL});
    check_refused("asha", "search = {\n grace_period = 1.5;\n};\n", "grace_period",
                  (const char *const[]){"'search.grace_period'", "integer", NULL});
}

/* ---- median-stop ---- */

static const char *const k_median = "search = {\n"
                                    "  plugin = \"median-stop\";\n"
                                    "  grace_period = 1;\n"
                                    "  min_samples_required = 3;\n"
                                    "};\n";

static const double k_median_curves[6][5] = {
    {0.50, 0.60, 0.70, 0.75, 0.80}, /* T0 */
    {0.40, 0.50, 0.60, 0.65, 0.70}, /* T1: worse than T0, but only 1 other trial */
    {0.45, 0.55, 0.65, 0.70, 0.75}, /* T2: 2 others: still too few */
    {0.30, 0.35, 0.40, 0.45, 0.50}, /* T3: at t = 2 best .35 < median(.55, .45, .5) = .5 */
    {0.60, 0.70, 0.80, 0.85, 0.90}, /* T4: good */
    {0.50, 0.52, 0.53, 0.54, 0.55}, /* T5: t = 2: .52 >= median .5; t = 3: .53 < .575 */
};

/* Runs trials [from, to) one after another; stop_t[i]: time of STOP (0: none). */
static void median_drive(struct strat *s, int from, int to, int stop_t[6])
{
    for (int i = from; i < to; i++)
        for (int e = 0; e < 5 && !stop_t[i]; e++) {
            enum dsnn_search_decision d = report(s, i, e, "val_acc", k_median_curves[i][e]);
            CU_ASSERT(d == DSNN_SEARCH_CONTINUE || d == DSNN_SEARCH_STOP);
            if (d == DSNN_SEARCH_STOP)
                stop_t[i] = e + 1;
        }
}

static void test_median_stop(void)
{
    /* T5 at t = 3: the others that reached 3 are T0, T1, T2, T4 (T3 stopped at 2), running
     * means over t' in [1, 3]: .6, .5, .55, .7 -> median .575 > best .53. */
    struct strat s;
    strat_must_open(&s, "median-stop", k_median, 6, 5);
    static struct dsnn_param_set ps;
    CU_ASSERT_FALSE(suggest(&s, 5, &ps));
    CU_ASSERT_TRUE(suggest(&s, 6, &ps));
    int stop_t[6] = {0};
    median_drive(&s, 0, 6, stop_t);
    static const int want[6] = {0, 0, 0, 2, 0, 3};
    for (int i = 0; i < 6; i++) {
        if (stop_t[i] != want[i])
            fprintf(stderr, "\n    trial %d stopped at %d, expected %d\n", i, stop_t[i], want[i]);
        CU_ASSERT_EQUAL(stop_t[i], want[i]);
    }
    /* a stopped trial stays stopped */
    CU_ASSERT_EQUAL(report(&s, 3, 2, "val_acc", 0.99), DSNN_SEARCH_STOP);
    strat_close(&s);

    /* an even number of others: the median is the mean of the two middle values. T5 reaching
     * .58 at t = 3 is above the median .575 of (.5, .55, .6, .7), below the upper middle .6 */
    strat_must_open(&s, "median-stop", k_median, 6, 5);
    CU_ASSERT_TRUE(suggest(&s, 6, &ps));
    int stop_e[6] = {0};
    median_drive(&s, 0, 5, stop_e);
    static const double t5[3] = {0.50, 0.52, 0.58};
    for (int e = 0; e < 3; e++)
        CU_ASSERT_EQUAL(report(&s, 5, e, "val_acc", t5[e]), DSNN_SEARCH_CONTINUE);
    strat_close(&s);

    /* grace_period 2: at t = 2 nothing is stopped (t must exceed it); T3 stops at t = 3
     * (best .40 < median of means over [2, 3]: T0 .65, T1 .55, T2 .6 -> .6) */
    strat_must_open(&s, "median-stop",
                    "search = { grace_period = 2; min_samples_required = 3; };\n", 6, 5);
    int stop_g[6] = {0};
    median_drive(&s, 0, 4, stop_g);
    CU_ASSERT_EQUAL(stop_g[3], 3);
    strat_close(&s);

    /* min_samples_required 4: T3 sees only 3 others and runs to the end */
    strat_must_open(&s, "median-stop",
                    "search = { grace_period = 1; min_samples_required = 4; };\n", 6, 5);
    int stop_m[6] = {0};
    median_drive(&s, 0, 4, stop_m);
    CU_ASSERT_EQUAL(stop_m[3], 0);
    strat_close(&s);

    /* mode min on the negated curves: same decisions */
    strat_must_open(&s, "median-stop",
                    "search = { metric = \"loss\"; mode = \"min\"; };\n", 6, 5);
    int stop_l[6] = {0};
    for (int i = 0; i < 6; i++)
        for (int e = 0; e < 5 && !stop_l[i]; e++)
            if (report(&s, i, e, "loss", -k_median_curves[i][e]) == DSNN_SEARCH_STOP)
                stop_l[i] = e + 1;
    for (int i = 0; i < 6; i++)
        CU_ASSERT_EQUAL(stop_l[i], want[i]);
    strat_close(&s);
}

static void test_median_save_restore(void)
{
    struct strat a, b;
    strat_must_open(&a, "median-stop", k_median, 6, 5);
    int stop_a[6] = {0};
    median_drive(&a, 0, 4, stop_a);
    CU_ASSERT_EQUAL(stop_a[3], 2);
    save_restore(&a, &b, "median-stop", k_median, 6, 5);
    int stop_b[6];
    memcpy(stop_b, stop_a, sizeof stop_b);
    median_drive(&a, 4, 6, stop_a);
    median_drive(&b, 4, 6, stop_b);
    CU_ASSERT_EQUAL(memcmp(stop_a, stop_b, sizeof stop_a), 0);
    CU_ASSERT_EQUAL(stop_b[5], 3);
    CU_ASSERT_EQUAL(report(&b, 3, 4, "val_acc", 0.99), DSNN_SEARCH_STOP); /* stopped flag kept */
    /* another num_samples is refused */
    FILE *f = tmpfile();
    struct dsnn_error err = {0};
    CU_ASSERT_EQUAL(a.ops->save(a.state, f, &err), DSNN_OK);
    rewind(f);
    struct strat c;
    strat_must_open(&c, "median-stop", k_median, 7, 5);
    CU_ASSERT_EQUAL(c.ops->restore(c.state, f, &err), DSNN_ERR_FORMAT);
    ASSERT_HAS(err.msg, "num_samples");
    fclose(f);
    strat_close(&c);
    strat_close(&a);
    strat_close(&b);
}

static void test_median_refused(void)
{
    check_refused("median-stop", "search = {\n min_samples_required = 0;\n};\n",
                  "min_samples_required",
                  (const char *const[]){"'search.min_samples_required'", "out of range", NULL});
    check_refused("median-stop", "search = {\n grace_period = \"2\";\n};\n", "grace_period",
                  (const char *const[]){"'search.grace_period'", "integer", NULL});
}

/* ---- pbt ---- */

static const char *const k_pbt =
    "search = {\n"
    "  plugin = \"pbt\";\n"
    "  perturbation_interval = 2;\n"
    "  space = { model = {\n"
    "    learning_rate = { dist = \"loguniform\"; low = 1e-3; high = 1e-1; };\n"
    "    momentum = { dist = \"uniform\"; low = 0.5; high = 0.99; };\n"
    "    width = { dist = \"randint\"; low = 100; high = 1000; };\n"
    "    on_perc = [0.01, 0.02, 0.05, 0.1, 0.2];\n"
    "    alg = \"SGD\";\n"
    "  }; };\n"
    "};\n";

/* Index of the choice a parameter refers to in the array at path of the configuration. */
static int choice_index(const struct strat *s, const struct dsnn_param_set *ps,
                        const char *param_path, const char *cfg_path)
{
    const struct dsnn_param *p = param(ps, param_path);
    const struct dsnn_cfg *arr = dsnn_config_file_lookup(s->f, cfg_path);
    if (!p || !arr || p->value.type != DSNN_VALUE_CFG)
        return -1;
    for (size_t k = 0; k < dsnn_cfg_count(arr); k++)
        if (dsnn_cfg_child(arr, k) == p->value.u.cfg)
            return (int)k;
    return -1;
}

/* Every trial reports epoch e with val_acc = score(i); returns the trials that got PERTURB. */
static int pbt_epoch(struct strat *s, int n, int e, const double *score, bool perturbed[])
{
    int count = 0;
    for (int i = 0; i < n; i++) {
        enum dsnn_search_decision d = report(s, i, e, "val_acc", score[i]);
        CU_ASSERT(d == DSNN_SEARCH_CONTINUE || d == DSNN_SEARCH_PERTURB);
        perturbed[i] = d == DSNN_SEARCH_PERTURB;
        count += perturbed[i];
    }
    return count;
}

/* Checks that exploit's params are the source's explored: numbers x0.8 / x1.2 or resampled in
 * bounds; the choice a neighbour or resampled; the fixed value kept. Counts resamples. */
static void check_explored(const struct strat *s, const struct dsnn_param_set *src,
                           const struct dsnn_param_set *got, int *n_scaled, int *n_resampled)
{
    CU_ASSERT_EQUAL_FATAL(got->n, 5);
    static const char *const paths[] = {"model.learning_rate", "model.momentum", "model.width"};
    static const double lo[] = {1e-3, 0.5, 100}, hi[] = {1e-1, 0.99, 1000};
    for (int k = 0; k < 3; k++) {
        double a = num(src, paths[k]), b = num(got, paths[k]);
        bool up = fabs(b - a * 1.2) <= 1e-12 * a, down = fabs(b - a * 0.8) <= 1e-12 * a;
        if (k == 2) { /* randint: truncated */
            up = b == trunc(a * 1.2);
            down = b == trunc(a * 0.8);
            CU_ASSERT_EQUAL(param(got, paths[k])->value.type, DSNN_VALUE_INT);
        }
        if (up || down) {
            (*n_scaled)++;
        } else {
            CU_ASSERT(b >= lo[k] && b < hi[k]); /* resampled within the bounds */
            (*n_resampled)++;
        }
    }
    int ca = choice_index(s, src, "model.on_perc", "search.space.model.on_perc");
    int cb = choice_index(s, got, "model.on_perc", "search.space.model.on_perc");
    CU_ASSERT(ca >= 0 && cb >= 0);
    CU_ASSERT(cb >= 0 && cb < 5);
    if (abs(ca - cb) > 1)
        (*n_resampled)++; /* only a resample jumps further */
    char buf[32];
    dsnn_value_to_text(&param(got, "model.alg")->value, buf, sizeof buf);
    CU_ASSERT_STRING_EQUAL(buf, "\"SGD\"");
}

static void test_pbt_perturb_exploit(void)
{
    enum { N = 8 };
    struct strat s;
    strat_must_open(&s, "pbt", k_pbt, N, 10);
    static struct dsnn_param_set init[N], got;
    for (int i = 0; i < N; i++)
        CU_ASSERT_FALSE(suggest(&s, i, &init[i]));
    CU_ASSERT_TRUE(suggest(&s, N, &got));
    /* trial i's accuracy 0.1 * (i + 1): trials 0 and 1 are the bottom quantile
     * (ceil(8 * 0.25) = 2), trials 6 and 7 the top */
    double score[N];
    for (int i = 0; i < N; i++)
        score[i] = 0.1 * (i + 1);
    bool pert[N];
    CU_ASSERT_EQUAL(pbt_epoch(&s, N, 0, score, pert), 0); /* t = 1 < interval */
    CU_ASSERT_EQUAL(pbt_epoch(&s, N, 1, score, pert), 2); /* t = 2 */
    CU_ASSERT_TRUE(pert[0]);
    CU_ASSERT_TRUE(pert[1]);
    int n_scaled = 0, n_resampled = 0;
    for (int i = 0; i < 2; i++) {
        int src = -1;
        struct dsnn_error err = {0};
        CU_ASSERT_EQUAL_FATAL(s.ops->exploit(s.state, i, &src, &got, &err), DSNN_OK);
        CU_ASSERT(src == 6 || src == 7);
        if (src == 6 || src == 7)
            check_explored(&s, &init[src], &got, &n_scaled, &n_resampled);
    }
    /* t = 3: not an interval; trials 2 and 3 become the worst */
    score[2] = 0.01;
    score[3] = 0.02;
    CU_ASSERT_EQUAL(pbt_epoch(&s, N, 2, score, pert), 0);
    /* t = 4: the bottom quantile by latest metric is {2, 3} */
    CU_ASSERT_EQUAL(pbt_epoch(&s, N, 3, score, pert), 2);
    CU_ASSERT_TRUE(pert[2] && pert[3]);
    /* no perturbation at the last epoch (t = 10 = experiment.epochs) */
    for (int e = 4; e < 9; e++)
        pbt_epoch(&s, N, e, score, pert);
    CU_ASSERT_EQUAL(pbt_epoch(&s, N, 9, score, pert), 0);
    /* finished trials leave the population: with one trial left nothing is perturbed */
    for (int i = 1; i < N; i++)
        s.ops->on_complete(s.state, i, false);
    strat_close(&s);
    strat_must_open(&s, "pbt", k_pbt, N, 10);
    for (int i = 1; i < N; i++) {
        report(&s, i, 0, "val_acc", 0.9);
        s.ops->on_complete(s.state, i, false);
    }
    CU_ASSERT_EQUAL(report(&s, 0, 1, "val_acc", 0.1), DSNN_SEARCH_CONTINUE);
    int src = -1;
    struct dsnn_error err = {0};
    CU_ASSERT_EQUAL(s.ops->exploit(s.state, 0, &src, &got, &err), DSNN_OK);
    CU_ASSERT_EQUAL(src, 0); /* nothing to clone: continues with its own parameters */
    static struct dsnn_param_set first;
    suggest(&s, 0, &first);
    CU_ASSERT_EQUAL(num(&got, "model.learning_rate"), num(&first, "model.learning_rate"));
    strat_close(&s);
}

static void test_pbt_explore_statistics(void)
{
    /* A population of 400: at t = 2 the 100 worst are perturbed; each exploit's source is in
     * the top 100 and its numbers are x0.8 / x1.2 (about 75 %) or resampled (25 %). */
    enum { N = 400 };
    struct strat s;
    strat_must_open(&s, "pbt", k_pbt, N, 10);
    static struct dsnn_param_set init[N], got;
    static double score[N];
    static bool pert[N];
    for (int i = 0; i < N; i++) {
        suggest(&s, i, &init[i]);
        score[i] = (double)((i * 37) % N) / N; /* a permutation of 0 .. 399 / 400 */
    }
    pbt_epoch(&s, N, 0, score, pert);
    int n_pert = pbt_epoch(&s, N, 1, score, pert);
    CU_ASSERT_EQUAL(n_pert, 100);
    int n_scaled = 0, n_resampled = 0, n_up = 0;
    for (int i = 0; i < N; i++) {
        if (!pert[i])
            continue;
        CU_ASSERT(score[i] < 100.0 / N); /* bottom quantile */
        int src = -1;
        struct dsnn_error err = {0};
        CU_ASSERT_EQUAL_FATAL(s.ops->exploit(s.state, i, &src, &got, &err), DSNN_OK);
        CU_ASSERT_FATAL(src >= 0 && src < N);
        CU_ASSERT(score[src] >= 300.0 / N); /* top quantile */
        check_explored(&s, &init[src], &got, &n_scaled, &n_resampled);
        n_up += fabs(num(&got, "model.learning_rate") -
                     1.2 * num(&init[src], "model.learning_rate")) < 1e-15;
    }
    /* 3 numeric parameters x 100 exploits: 25 % resampled (sd about 7.5) */
    CU_ASSERT(n_resampled >= 45 && n_resampled <= 110);
    CU_ASSERT(n_scaled >= 190);
    CU_ASSERT(n_up > 20 && n_up < 60); /* x1.2 about half of the scaled learning rates */
    strat_close(&s);
}

static void test_pbt_save_restore(void)
{
    enum { N = 8 };
    struct strat a, b;
    strat_must_open(&a, "pbt", k_pbt, N, 20);
    static struct dsnn_param_set pa, pb;
    for (int i = 0; i < N; i++)
        suggest(&a, i, &pa);
    double score[N];
    for (int i = 0; i < N; i++)
        score[i] = 0.1 * (i + 1);
    bool pert[N];
    pbt_epoch(&a, N, 0, score, pert);
    pbt_epoch(&a, N, 1, score, pert);
    int src = -1;
    struct dsnn_error err = {0};
    CU_ASSERT_EQUAL(a.ops->exploit(a.state, 0, &src, &pa, &err), DSNN_OK);
    save_restore(&a, &b, "pbt", k_pbt, N, 20);
    /* both continue identically: decisions, exploit sources and parameters */
    for (int e = 2; e < 19; e++) {
        for (int i = 0; i < N; i++)
            score[i] = 0.05 * ((i * 5 + e * 3) % N) + 0.01 * e;
        bool pa_[N], pb_[N];
        int na = pbt_epoch(&a, N, e, score, pa_), nb = pbt_epoch(&b, N, e, score, pb_);
        CU_ASSERT_EQUAL(na, nb);
        CU_ASSERT_EQUAL(memcmp(pa_, pb_, sizeof pa_), 0);
        for (int i = 0; i < N; i++) {
            if (!pa_[i])
                continue;
            int sa = -1, sb = -2;
            CU_ASSERT_EQUAL(a.ops->exploit(a.state, i, &sa, &pa, &err), DSNN_OK);
            CU_ASSERT_EQUAL(b.ops->exploit(b.state, i, &sb, &pb, &err), DSNN_OK);
            CU_ASSERT_EQUAL(sa, sb);
            CU_ASSERT_EQUAL(pa.n, pb.n);
            for (size_t k = 0; k < pa.n && k < pb.n; k++) {
                char va[64], vb[64];
                dsnn_value_to_text(&pa.items[k].value, va, sizeof va);
                dsnn_value_to_text(&pb.items[k].value, vb, sizeof vb);
                CU_ASSERT_STRING_EQUAL(va, vb);
            }
        }
    }
    /* a state of another space is refused */
    FILE *f = tmpfile();
    CU_ASSERT_EQUAL(a.ops->save(a.state, f, &err), DSNN_OK);
    rewind(f);
    struct strat c;
    strat_must_open(&c, "pbt", "search = { space = { model = { lr = [1, 2]; }; }; };\n", N, 20);
    CU_ASSERT_EQUAL(c.ops->restore(c.state, f, &err), DSNN_ERR_FORMAT);
    ASSERT_HAS(err.msg, "configuration changed");
    fclose(f);
    strat_close(&c);
    strat_close(&a);
    strat_close(&b);
}

static void test_pbt_refused(void)
{
    check_refused("pbt", "search = {\n quantile_fraction = 0.6;\n};\n", "quantile_fraction",
                  (const char *const[]){"'search.quantile_fraction'", "[0, 0.5]", NULL});
    check_refused("pbt", "search = {\n resample_probability = -0.1;\n};\n",
                  "resample_probability",
                  (const char *const[]){"'search.resample_probability'", NULL});
    check_refused("pbt", "search = {\n perturbation_interval = 0;\n};\n",
                  "perturbation_interval",
                  (const char *const[]){"'search.perturbation_interval'", NULL});
    check_refused("pbt", "search = {\n perturbation_factors = [];\n};\n", "perturbation_factors",
                  (const char *const[]){"'search.perturbation_factors'", "empty", NULL});
    /* custom factors */
    struct strat s;
    strat_must_open(&s, "pbt",
                    "search = { perturbation_interval = 1; resample_probability = 0.0;\n"
                    " perturbation_factors = [2.0];\n"
                    " space = { model = { lr = { dist = \"uniform\"; low = 0.1; high = 0.2; "
                    "}; }; }; };\n",
                    4, 10);
    static struct dsnn_param_set ps[4], got;
    for (int i = 0; i < 4; i++)
        suggest(&s, i, &ps[i]);
    for (int i = 0; i < 4; i++)
        report(&s, i, 0, "val_acc", 0.1 * i);
    CU_ASSERT_EQUAL(report(&s, 0, 1, "val_acc", 0.0), DSNN_SEARCH_PERTURB);
    int src = -1;
    struct dsnn_error err = {0};
    CU_ASSERT_EQUAL(s.ops->exploit(s.state, 0, &src, &got, &err), DSNN_OK);
    CU_ASSERT_EQUAL(src, 3); /* q = ceil(4 * 0.25) = 1: the best trial */
    CU_ASSERT_DOUBLE_EQUAL(num(&got, "model.lr"), 2.0 * num(&ps[3], "model.lr"), 1e-15);
    strat_close(&s);
}

static void test_pbt_done_trials(void)
{
    /* A trial at its last epoch (experiment.epochs = 4) or completed is no longer ranked: it
     * cannot be a source (nothing left to train from its checkpoint). */
    const char *text = "search = { perturbation_interval = 1;\n"
                       " space = { model = { lr = { dist = \"uniform\"; low = 0.1; high = 0.2; "
                       "}; }; }; };\n";
    struct strat s;
    strat_must_open(&s, "pbt", text, 5, 4);
    for (int i = 0; i < 5; i++)
        report(&s, i, 0, "val_acc", 0.1 * (i + 1));
    for (int e = 1; e < 4; e++) /* trial 4, the best, runs to the end (t = 4) */
        report(&s, 4, e, "val_acc", 0.9);
    s.ops->on_complete(s.state, 3, false); /* trial 3, the second best, is done */
    /* trial 0 at t = 2: ranked are 0, 1, 2 -> q = 1: 0 is the worst, 2 the only source */
    CU_ASSERT_EQUAL(report(&s, 0, 1, "val_acc", 0.05), DSNN_SEARCH_PERTURB);
    int src = -1;
    struct dsnn_error err = {0};
    static struct dsnn_param_set got;
    CU_ASSERT_EQUAL(s.ops->exploit(s.state, 0, &src, &got, &err), DSNN_OK);
    CU_ASSERT_EQUAL(src, 2);
    strat_close(&s);
}

/* Every strategy with a state refuses one of another version or with another tag, naming itself. */
static void test_state_head(void)
{
    static const struct {
        const char *plugin, *prefix;
    } cases[] = {{"asha", "asha state"}, {"median-stop", "median-stop state"}, {"pbt", "pbt state"}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        struct strat a, b;
        struct dsnn_error err = {0};
        char want[128];
        strat_must_open(&a, cases[c].plugin, "search = { };\n", 4, 9);
        strat_must_open(&b, cases[c].plugin, "search = { };\n", 4, 9);
        FILE *f = tmpfile();
        CU_ASSERT_PTR_NOT_NULL_FATAL(f);
        CU_ASSERT_EQUAL(a.ops->save(a.state, f, &err), DSNN_OK);
        /* the version, a u64 after the 4-byte tag */
        fseek(f, 4, SEEK_SET);
        CU_ASSERT_EQUAL(dsnn_io_write_u64(f, 99, "version", &err), DSNN_OK);
        rewind(f);
        CU_ASSERT_EQUAL(b.ops->restore(b.state, f, &err), DSNN_ERR_FORMAT);
        snprintf(want, sizeof want, "%s: version 99, expected 1", cases[c].prefix);
        CU_ASSERT_STRING_EQUAL(err.msg, want);
        /* the tag */
        rewind(f);
        fputc('#', f);
        rewind(f);
        memset(&err, 0, sizeof err);
        CU_ASSERT_EQUAL(b.ops->restore(b.state, f, &err), DSNN_ERR_FORMAT);
        CU_ASSERT_EQUAL(strncmp(err.msg, cases[c].prefix, strlen(cases[c].prefix)), 0);
        fclose(f);
        strat_close(&a);
        strat_close(&b);
    }
}

static CU_TestInfo tests[] = {
    {"plugins load through the registry", test_plugins_load},
    {"random: distributions", test_random_distributions},
    {"random: deterministic for the seed", test_random_deterministic},
    {"random: no space", test_space_no_space},
    {"search space API", test_space_api},
    {"search space errors: FILE:LINE and key", test_space_refused},
    {"asha: rungs eta 3, grace 1, 9 trials", test_asha_rungs},
    {"asha: trials one after another", test_asha_sequential},
    {"asha: save / restore", test_asha_save_restore},
    {"asha: brackets", test_asha_brackets},
    {"asha: config errors", test_asha_refused},
    {"median-stop: stops the expected trials", test_median_stop},
    {"median-stop: save / restore", test_median_save_restore},
    {"median-stop: config errors", test_median_refused},
    {"pbt: perturb bottom, exploit top", test_pbt_perturb_exploit},
    {"pbt: explore statistics", test_pbt_explore_statistics},
    {"pbt: save / restore", test_pbt_save_restore},
    {"pbt: config errors, custom factors", test_pbt_refused},
    {"pbt: done trials are no sources", test_pbt_done_trials},
    {"asha, median-stop, pbt: state version and tag checked", test_state_head},
    CU_TEST_INFO_NULL,
};

DSNN_TEST_MAIN("search", tests)
