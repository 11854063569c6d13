/* tests/unit/test_grid.c - the "grid" search plugin, loaded from $DSNN_BUILD_DIR/plugins/grid.so
 * through the host registry and driven through its ops table, as the host drives it.
 *
 * The grid is the Cartesian product of every array/list in the `search.grid` tree (which mirrors
 * the configuration), last key varying fastest, repeated experiment.num_samples times; a scalar is
 * a fixed override; a list of arrays gives array-valued choices. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dsnn/config.h"
#include "dsnn/plugin.h"
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

#define ASSERT_STR(got, want)                                                                      \
    do {                                                                                           \
        const char *g_ = (got), *w_ = (want);                                                      \
        bool ok_ = g_ && strcmp(g_, w_) == 0;                                                      \
        if (!ok_)                                                                                  \
            fprintf(stderr, "\n    %s:%d: got \"%s\", want \"%s\"\n", __FILE__, __LINE__,          \
                    g_ ? g_ : "(null)", w_);                                                       \
        CU_ASSERT(ok_);                                                                            \
    } while (0)

/* ---- the plugin ---- */

static struct dsnn_registry *g_reg;
static const struct dsnn_search_ops *g_ops;

/* At exit (before the leak checker's report): unload the plugin. */
static void cleanup(void)
{
    dsnn_registry_free(g_reg);
    g_reg = NULL;
    g_ops = NULL;
}

static const struct dsnn_search_ops *grid_ops(void)
{
    static bool tried;
    if (!tried) {
        tried = true;
        char path[4096];
        snprintf(path, sizeof path, "%s/plugins/grid.so", dsnn_test_build_dir());
        struct dsnn_error err = {0};
        atexit(cleanup);
        if (dsnn_registry_new(&g_reg, &err) != DSNN_OK ||
            dsnn_registry_load_file(g_reg, path, &err) != DSNN_OK) {
            fprintf(stderr, "\n    cannot load %s: %s\n", path, err.msg);
            return NULL;
        }
        const struct dsnn_registry_entry *e = dsnn_registry_find(g_reg, DSNN_KIND_SEARCH, "grid");
        if (e)
            g_ops = &e->ops.search;
    }
    return g_ops;
}

/* A parsed configuration and a created grid over its `search` group. */
struct grid {
    struct dsnn_config_file *f;
    void *state;
};

static enum dsnn_status grid_open(struct grid *g, const char *text, int num_samples,
                                  struct dsnn_error *err)
{
    memset(g, 0, sizeof *g);
    const struct dsnn_search_ops *ops = grid_ops();
    CU_ASSERT_PTR_NOT_NULL_FATAL(ops);
    struct dsnn_error perr = {0};
    if (dsnn_config_file_parse(text, "exp.cfg", &g->f, &perr) != DSNN_OK)
        fprintf(stderr, "\n    parse: %s\n", perr.msg);
    CU_ASSERT_PTR_NOT_NULL_FATAL(g->f);
    struct dsnn_search_ctx ctx = {.seed = 1,
                                  .num_samples = num_samples,
                                  .max_epochs = 3,
                                  .metric = "val_acc",
                                  .maximize = true};
    const struct dsnn_cfg *search = dsnn_cfg_group(dsnn_config_file_root(g->f), "search");
    return ops->create(search, &ctx, &g->state, err);
}

static void grid_close(struct grid *g)
{
    if (g->state)
        g_ops->destroy(g->state);
    dsnn_config_file_free(g->f);
}

/* Suggestion for trial i; asserts DSNN_OK. */
static bool suggest(struct grid *g, int i, struct dsnn_param_set *ps)
{
    struct dsnn_error err = {0};
    bool done = true;
    memset(ps, 0xab, sizeof *ps); /* garbage in: the plugin must set everything */
    CU_ASSERT_EQUAL(g_ops->suggest(g->state, i, ps, &done, &err), DSNN_OK);
    return done;
}

/* "path=value;path=value" of a parameter set, values as libconfig text. */
static void describe(const struct dsnn_param_set *ps, char *buf, size_t size)
{
    size_t len = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < ps->n && len < size; i++) {
        char v[256];
        dsnn_value_to_text(&ps->items[i].value, v, sizeof v);
        int w = snprintf(buf + len, size - len, "%s%s=%s", i ? ";" : "", ps->items[i].path, v);
        if (w > 0)
            len += (size_t)w;
    }
}

/* 1-based line of the first occurrence of needle in text. */
static int line_of(const char *text, const char *needle)
{
    const char *p = strstr(text, needle);
    int line = 1;
    for (const char *q = text; p && q < p; q++)
        line += *q == '\n';
    return p ? line : 0;
}

/* ---- tests ---- */

static void test_plugin_loads(void)
{
    const struct dsnn_search_ops *ops = grid_ops();
    CU_ASSERT_PTR_NOT_NULL_FATAL(ops);
    CU_ASSERT_PTR_NOT_NULL(ops->create);
    CU_ASSERT_PTR_NOT_NULL(ops->suggest);
    CU_ASSERT_PTR_NOT_NULL(ops->on_result);
    CU_ASSERT_PTR_NOT_NULL(ops->on_complete);
    CU_ASSERT_PTR_NOT_NULL(ops->destroy);
    const struct dsnn_registry_entry *e = dsnn_registry_find(g_reg, DSNN_KIND_SEARCH, "grid");
    CU_ASSERT_PTR_NOT_NULL_FATAL(e);
    CU_ASSERT_STRING_EQUAL(e->name, "grid");
    CU_ASSERT_EQUAL(e->kind, DSNN_KIND_SEARCH);
    CU_ASSERT_PTR_NOT_NULL(dsnn_registry_entry_key(e, "grid"));
}

static const char *const k_main = "experiment = { num_samples = 2; };\n"
                                  "search = {\n"
                                  "  plugin = \"grid\";\n"
                                  "  grid = {\n"
                                  "    model = {\n"
                                  "      on_perc = [0.02, 0.04];\n"
                                  "      learning_rate = [0.1, 0.01, 0.001];\n"
                                  "    };\n"
                                  "    network = {\n"
                                  "      hidden_sizes = ([100], [200, 200]);\n"
                                  "    };\n"
                                  "  };\n"
                                  "};\n";

static void test_product_and_order(void)
{
    struct grid g;
    struct dsnn_error err = {0};
    CU_ASSERT_EQUAL_FATAL(grid_open(&g, k_main, 2, &err), DSNN_OK);
    static const char *const on_perc[] = {"0.02", "0.04"};
    static const char *const lr[] = {"0.1", "0.01", "0.001"};
    static const char *const hidden[] = {"[100]", "[200, 200]"};
    char seen[12][256];
    for (int t = 0; t < 24; t++) {
        struct dsnn_param_set ps;
        CU_ASSERT_FALSE(suggest(&g, t, &ps));
        CU_ASSERT_EQUAL_FATAL(ps.n, 3);
        /* The configuration's order of keys. */
        ASSERT_STR(ps.items[0].path, "model.on_perc");
        ASSERT_STR(ps.items[1].path, "model.learning_rate");
        ASSERT_STR(ps.items[2].path, "network.hidden_sizes");
        /* Sample s of combination c is trial s * 12 + c; the last key varies fastest. */
        int c = t % 12;
        char want[256], got[256];
        snprintf(want, sizeof want,
                 "model.on_perc=%s;model.learning_rate=%s;"
                 "network.hidden_sizes=%s",
                 on_perc[c / 6], lr[(c / 2) % 3], hidden[c % 2]);
        describe(&ps, got, sizeof got);
        ASSERT_STR(got, want);
        if (t < 12)
            snprintf(seen[t], sizeof seen[t], "%s", got);
        else
            ASSERT_STR(got, seen[c]); /* the second sample repeats the first */
        /* Values refer to the grid's settings. */
        for (size_t i = 0; i < ps.n; i++)
            CU_ASSERT_EQUAL(ps.items[i].value.type, DSNN_VALUE_CFG);
        CU_ASSERT_EQUAL(dsnn_cfg_type(ps.items[2].value.u.cfg), DSNN_CFG_ARRAY);
        CU_ASSERT_EQUAL(dsnn_cfg_type(ps.items[0].value.u.cfg), DSNN_CFG_FLOAT);
    }
    /* All 12 combinations differ. */
    bool distinct = true;
    for (int a = 0; a < 12; a++)
        for (int b = 0; b < a; b++)
            distinct &= strcmp(seen[a], seen[b]) != 0;
    CU_ASSERT_TRUE(distinct);
    /* Done after the last trial (and for any later or negative index). */
    struct dsnn_param_set ps;
    CU_ASSERT_TRUE(suggest(&g, 24, &ps));
    CU_ASSERT_EQUAL(ps.n, 0);
    CU_ASSERT_TRUE(suggest(&g, 1000, &ps));
    CU_ASSERT_TRUE(suggest(&g, -1, &ps));
    CU_ASSERT_FALSE(suggest(&g, 23, &ps)); /* still answers earlier trials */
    /* The other callbacks are harmless. */
    struct dsnn_metrics m;
    dsnn_metrics_clear(&m);
    dsnn_metrics_set(&m, "val_acc", 0.5);
    CU_ASSERT_EQUAL(g_ops->on_result(g.state, 0, 0, &m), DSNN_SEARCH_CONTINUE);
    g_ops->on_complete(g.state, 0, false);
    g_ops->on_complete(g.state, 1, true);
    grid_close(&g);
}

static void test_apply_to_config(void)
{
    /* The host applies a trial's parameters to the configuration with dsnn_config_file_set. */
    struct grid g;
    struct dsnn_error err = {0};
    CU_ASSERT_EQUAL_FATAL(grid_open(&g, k_main, 1, &err), DSNN_OK);
    struct dsnn_param_set ps;
    CU_ASSERT_FALSE(suggest(&g, 11, &ps)); /* on_perc 0.04, lr 0.001, hidden [200, 200] */
    struct dsnn_config_file *trial = NULL;
    CU_ASSERT_EQUAL_FATAL(
        dsnn_config_file_parse("model = { learning_rate = 0.5; momentum = 0.9; };\n"
                               "network = { plugin = \"mlp\"; hidden_sizes = [10]; };\n",
                               "trial.cfg", &trial, &err),
        DSNN_OK);
    for (size_t i = 0; i < ps.n; i++)
        CU_ASSERT_EQUAL(dsnn_config_file_set(trial, ps.items[i].path, &ps.items[i].value, &err),
                        DSNN_OK);
    grid_close(&g); /* the copies outlive the grid's configuration */
    const struct dsnn_cfg *model = dsnn_config_file_lookup(trial, "model");
    const struct dsnn_cfg *network = dsnn_config_file_lookup(trial, "network");
    double d = 0;
    CU_ASSERT_EQUAL(dsnn_cfg_float(model, "learning_rate", 0, &d, &err), DSNN_OK);
    CU_ASSERT_EQUAL(d, 0.001);
    CU_ASSERT_EQUAL(dsnn_cfg_float(model, "on_perc", 0, &d, &err), DSNN_OK);
    CU_ASSERT_EQUAL(d, 0.04);
    CU_ASSERT_EQUAL(dsnn_cfg_float(model, "momentum", 0, &d, &err), DSNN_OK);
    CU_ASSERT_EQUAL(d, 0.9);
    int64_t h[4];
    size_t n = 0;
    CU_ASSERT_EQUAL(dsnn_cfg_int_array(network, "hidden_sizes", h, 4, &n, &err), DSNN_OK);
    CU_ASSERT(n == 2 && h[0] == 200 && h[1] == 200);
    dsnn_config_file_free(trial);
}

static void test_nested_groups(void)
{
    const char *text = "search = { grid = {\n"
                       "  model = {\n"
                       "    sparse = {\n"
                       "      density = [0.1, 0.2];\n"
                       "      deeper = { k = [1, 2, 3]; };\n"
                       "    };\n"
                       "    alg = (\"SGD\", \"Adam\");\n"
                       "  };\n"
                       "  dataset = { augment = [true, false]; };\n"
                       "}; };\n";
    struct grid g;
    struct dsnn_error err = {0};
    CU_ASSERT_EQUAL_FATAL(grid_open(&g, text, 1, &err), DSNN_OK);
    int count = 0;
    struct dsnn_param_set ps;
    char got[512];
    for (int t = 0; !suggest(&g, t, &ps); t++) {
        count++;
        CU_ASSERT_EQUAL_FATAL(ps.n, 4);
        ASSERT_STR(ps.items[0].path, "model.sparse.density");
        ASSERT_STR(ps.items[1].path, "model.sparse.deeper.k");
        ASSERT_STR(ps.items[2].path, "model.alg");
        ASSERT_STR(ps.items[3].path, "dataset.augment");
        if (t == 0) {
            describe(&ps, got, sizeof got);
            ASSERT_STR(got, "model.sparse.density=0.1;model.sparse.deeper.k=1;model.alg=\"SGD\";"
                            "dataset.augment=true");
        }
        if (t == 23) {
            describe(&ps, got, sizeof got);
            ASSERT_STR(got, "model.sparse.density=0.2;model.sparse.deeper.k=3;model.alg=\"Adam\";"
                            "dataset.augment=false");
        }
        if (t == 5) { /* 5 = ((0 * 3 + 1) * 2 + 0) * 2 + 1 */
            describe(&ps, got, sizeof got);
            ASSERT_STR(got, "model.sparse.density=0.1;model.sparse.deeper.k=2;model.alg=\"SGD\";"
                            "dataset.augment=false");
        }
        if (count > 100)
            break;
    }
    CU_ASSERT_EQUAL(count, 2 * 3 * 2 * 2);
    grid_close(&g);
}

static void test_fixed_override(void)
{
    const char *text = "search = { grid = { model = {\n"
                       "  epochs_x = 5;\n"
                       "  lr = [0.1, 0.2];\n"
                       "  name = \"fixed\";\n"
                       "  flag = false;\n"
                       "  one = [7];\n"
                       "  sizes = ([300, 300]);\n"
                       "}; }; };\n";
    struct grid g;
    struct dsnn_error err = {0};
    CU_ASSERT_EQUAL_FATAL(grid_open(&g, text, 3, &err), DSNN_OK);
    struct dsnn_param_set ps;
    char got[512];
    for (int t = 0; t < 6; t++) {
        CU_ASSERT_FALSE(suggest(&g, t, &ps));
        describe(&ps, got, sizeof got);
        ASSERT_STR(got, t % 2 ? "model.epochs_x=5;model.lr=0.2;model.name=\"fixed\";"
                                "model.flag=false;model.one=7;model.sizes=[300, 300]"
                              : "model.epochs_x=5;model.lr=0.1;model.name=\"fixed\";"
                                "model.flag=false;model.one=7;model.sizes=[300, 300]");
    }
    /* Scalars do not multiply the grid: 2 combinations x 3 samples. */
    CU_ASSERT_TRUE(suggest(&g, 6, &ps));
    grid_close(&g);
}

static void test_no_grid(void)
{
    /* No grid (or an empty one): one trial per sample, without overrides. */
    static const char *const texts[] = {"search = { plugin = \"grid\"; };\n",
                                        "search = { grid = { }; };\n",
                                        "search = { grid = { model = { }; }; };\n"};
    for (size_t k = 0; k < 3; k++) {
        struct grid g;
        struct dsnn_error err = {0};
        CU_ASSERT_EQUAL_FATAL(grid_open(&g, texts[k], 3, &err), DSNN_OK);
        struct dsnn_param_set ps;
        for (int t = 0; t < 3; t++) {
            CU_ASSERT_FALSE(suggest(&g, t, &ps));
            CU_ASSERT_EQUAL(ps.n, 0);
        }
        CU_ASSERT_TRUE(suggest(&g, 3, &ps));
        grid_close(&g);
    }
    /* num_samples 0 counts as 1. */
    struct grid g;
    struct dsnn_error err = {0};
    CU_ASSERT_EQUAL_FATAL(grid_open(&g, k_main, 0, &err), DSNN_OK);
    struct dsnn_param_set ps;
    CU_ASSERT_FALSE(suggest(&g, 11, &ps));
    CU_ASSERT_TRUE(suggest(&g, 12, &ps));
    grid_close(&g);
}

static void check_refused(const char *text, const char *line_needle, const char *parts[])
{
    struct grid g;
    struct dsnn_error err = {0};
    CU_ASSERT_EQUAL(grid_open(&g, text, 1, &err), DSNN_ERR_CONFIG);
    CU_ASSERT_EQUAL(err.status, DSNN_ERR_CONFIG);
    CU_ASSERT_PTR_NULL(g.state);
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
    grid_close(&g);
}

static void test_refused(void)
{
    check_refused(
        "search = { grid = {\n  model = {\n    lr = [0.1];\n    sizes = [];\n  };\n}; };\n",
        "sizes", (const char *[]){"'search.grid.model.sizes'", "empty", NULL});
    check_refused("search = { grid = {\n  network = {\n    hidden_sizes = ();\n  };\n}; };\n",
                  "hidden_sizes",
                  (const char *[]){"'search.grid.network.hidden_sizes'", "empty", NULL});
    check_refused("search = {\n  plugin = \"grid\";\n  grid = 5;\n};\n", "grid = 5",
                  (const char *[]){"'search.grid'", "expected a group", NULL});
    check_refused("search = { grid = {\n experiment = { epochs = [1, 2]; };\n}; };\n", "epochs",
                  (const char *[]){"experiment.epochs", "cannot be searched", NULL});
    check_refused("search = { grid = {\n search = { plugin = [\"a\", \"b\"]; };\n}; };\n", "plugin",
                  (const char *[]){"search.plugin", "cannot be searched", NULL});

    /* More keys than a parameter set holds. */
    char text[4096];
    size_t len = (size_t)snprintf(text, sizeof text, "search = { grid = { model = {\n");
    for (int i = 0; i < DSNN_PARAMS_MAX + 1; i++)
        len += (size_t)snprintf(text + len, sizeof text - len, "  k%d = [1];\n", i);
    snprintf(text + len, sizeof text - len, "}; }; };\n");
    char last[16];
    snprintf(last, sizeof last, "k%d =", DSNN_PARAMS_MAX);
    check_refused(text, last, (const char *[]){"more than 32", NULL});

    /* Exactly DSNN_PARAMS_MAX keys is fine (4 searched, the others fixed). */
    len = (size_t)snprintf(text, sizeof text, "search = { grid = { model = {\n");
    for (int i = 0; i < DSNN_PARAMS_MAX; i++)
        len += (size_t)snprintf(text + len, sizeof text - len, "  k%d = %s;\n", i,
                                i < 4 ? "[1, 2]" : "3");
    snprintf(text + len, sizeof text - len, "}; }; };\n");
    struct grid g;
    struct dsnn_error err = {0};
    CU_ASSERT_EQUAL(grid_open(&g, text, 1, &err), DSNN_OK);
    struct dsnn_param_set ps;
    CU_ASSERT_FALSE(suggest(&g, 15, &ps));
    CU_ASSERT_EQUAL(ps.n, DSNN_PARAMS_MAX);
    CU_ASSERT_TRUE(suggest(&g, 16, &ps));
    grid_close(&g);

    /* Too many combinations (7 keys of 10 choices). */
    len = (size_t)snprintf(text, sizeof text, "search = { grid = { model = {\n");
    for (int i = 0; i < 7; i++)
        len += (size_t)snprintf(text + len, sizeof text - len,
                                "  k%d = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];\n", i);
    snprintf(text + len, sizeof text - len, "}; }; };\n");
    check_refused(text, NULL, (const char *[]){"combinations", NULL});
}

static void test_param_set(void)
{
    /* dsnn_param_set_put (libdsnn), the container of a suggestion. */
    static struct dsnn_param_set ps;
    ps.n = 0;
    struct dsnn_error err = {0};
    struct dsnn_value a = {.type = DSNN_VALUE_INT, .u.i = 1};
    struct dsnn_value b = {.type = DSNN_VALUE_FLOAT, .u.f = 0.5};
    CU_ASSERT_EQUAL(dsnn_param_set_put(&ps, "model.x", &a, &err), DSNN_OK);
    CU_ASSERT_EQUAL(dsnn_param_set_put(&ps, "model.y", &a, &err), DSNN_OK);
    CU_ASSERT_EQUAL(dsnn_param_set_put(&ps, "model.x", &b, &err), DSNN_OK); /* replaces */
    CU_ASSERT_EQUAL(ps.n, 2);
    CU_ASSERT_STRING_EQUAL(ps.items[0].path, "model.x");
    CU_ASSERT_EQUAL(ps.items[0].value.type, DSNN_VALUE_FLOAT);
    CU_ASSERT_EQUAL(ps.items[0].value.u.f, 0.5);
    char path[DSNN_PARAM_PATH_MAX + 1];
    memset(path, 'p', sizeof path);
    path[DSNN_PARAM_PATH_MAX - 1] = '\0';
    CU_ASSERT_EQUAL(dsnn_param_set_put(&ps, path, &a, &err), DSNN_OK);
    path[DSNN_PARAM_PATH_MAX - 1] = 'p';
    path[DSNN_PARAM_PATH_MAX] = '\0';
    CU_ASSERT_EQUAL(dsnn_param_set_put(&ps, path, &a, &err), DSNN_ERR_INVALID);
    ASSERT_HAS(err.msg, "too long");
    ps.n = 0;
    for (int i = 0; i < DSNN_PARAMS_MAX; i++) {
        char p[32];
        snprintf(p, sizeof p, "model.k%d", i);
        CU_ASSERT_EQUAL(dsnn_param_set_put(&ps, p, &a, &err), DSNN_OK);
    }
    memset(&err, 0, sizeof err);
    CU_ASSERT_EQUAL(dsnn_param_set_put(&ps, "model.extra", &a, &err), DSNN_ERR_INVALID);
    ASSERT_HAS(err.msg, "32");
    CU_ASSERT_EQUAL(dsnn_param_set_put(&ps, "model.k3", &b, &err), DSNN_OK);
    CU_ASSERT_EQUAL(ps.n, DSNN_PARAMS_MAX);
    CU_ASSERT_STRING_EQUAL(dsnn_kind_str(DSNN_KIND_SEARCH), "search");
    CU_ASSERT_STRING_EQUAL(dsnn_kind_str((enum dsnn_kind)0), "unknown");
    CU_ASSERT_STRING_EQUAL(dsnn_key_type_str(DSNN_KEY_FLOAT_OR_ARRAY), "float|float[]");
    CU_ASSERT_STRING_EQUAL(dsnn_key_type_str((enum dsnn_key_type)99), "unknown");
}

static CU_TestInfo tests[] = {
    {"plugin loads through the registry", test_plugin_loads},
    {"product x num_samples, order", test_product_and_order},
    {"parameters applied to a trial config", test_apply_to_config},
    {"nested groups", test_nested_groups},
    {"scalar fixed override", test_fixed_override},
    {"no grid: one trial per sample", test_no_grid},
    {"refused grids: FILE:LINE and key", test_refused},
    {"parameter sets", test_param_set},
    CU_TEST_INFO_NULL,
};

DSNN_TEST_MAIN("grid", tests)
