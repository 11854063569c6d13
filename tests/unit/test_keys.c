/* tests/unit/test_keys.c - key specs (dsnn/keys.h, sdk/src/core/keys.c).
 *
 * dsnn_keys_read: defaults of every type, values into fields of every width, ranges (closed,
 * per element for arrays), choices as an index, required keys, keys without a field (checked,
 * not stored), included tables (not read: their owner reads them); dsnn_key_check; the default
 * and range texts that `dsnn-host info` prints; dsnn_keys_flatten / dsnn_keys_find through
 * nested includes; the shared tables of libdsnn (base model, sparse model, prune schedule). */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "dsnn/dsnn.h"
#include "harness.h"

#define ASSERT_HAS(msg, sub)                                                                       \
    do {                                                                                           \
        const char *m_ = (msg), *s_ = (sub);                                                       \
        bool ok_ = m_ && strstr(m_, s_) != NULL;                                                   \
        if (!ok_)                                                                                  \
            fprintf(stderr, "\n    %s:%d: \"%s\" does not contain \"%s\"\n", __FILE__, __LINE__,   \
                    m_ ? m_ : "(null)", s_);                                                       \
        CU_ASSERT(ok_);                                                                            \
    } while (0)

struct params {
    int64_t i64;
    int32_t i32;
    uint8_t u8;
    double f64;
    float f32;
    bool b;
    const char *s;
    int choice;
};

static const char *const modes[] = {"alpha", "Beta", "gamma", NULL};
#define AT(f) DSNN_KEY_AT(struct params, f)
static const struct dsnn_key_spec inner_keys[] = {
    {.name = "inner", .type = DSNN_KEY_INT, .def = 7, .doc = "from the included table"},
};
DSNN_KEY_TABLE_DEFINE(static, inner_table, inner_keys);
static const struct dsnn_key_spec mid_keys[] = {
    DSNN_KEYS_FROM(inner_table),
    {.name = "mid", .type = DSNN_KEY_BOOL, .def = true, .doc = "middle"},
};
DSNN_KEY_TABLE_DEFINE(static, mid_table, mid_keys);
static const struct dsnn_key_spec keys[] = {
    {.name = "i64", .type = DSNN_KEY_INT, .def = -5, DSNN_KEY_RANGE(-10, 1e12), AT(i64), .doc = "x"},
    {.name = "i32", .type = DSNN_KEY_INT, .def = 3, DSNN_KEY_RANGE(1, 100), AT(i32), .doc = "x"},
    {.name = "u8", .type = DSNN_KEY_INT, .def = 200, DSNN_KEY_RANGE(0, 255), AT(u8), .doc = "x"},
    {.name = "f64", .type = DSNN_KEY_FLOAT, .def = 0.3, DSNN_KEY_RANGE(0, 1), AT(f64), .doc = "x"},
    {.name = "f32", .type = DSNN_KEY_FLOAT, .def = 1.5, AT(f32), .doc = "x"},
    {.name = "b", .type = DSNN_KEY_BOOL, .def = true, AT(b), .doc = "x"},
    {.name = "s", .type = DSNN_KEY_STRING, .def_str = "hello", AT(s), .doc = "x"},
    {.name = "choice", .type = DSNN_KEY_STRING, .def_str = "beta", .choices = modes, AT(choice),
     .doc = "x"},
    {.name = "arr", .type = DSNN_KEY_FLOAT_ARRAY, DSNN_KEY_RANGE(0, 1), .doc = "no field"},
    {.name = "either", .type = DSNN_KEY_FLOAT_OR_ARRAY, .def = 0.5, DSNN_KEY_RANGE(0, 1),
     .doc = "no field"},
    DSNN_KEYS_FROM(mid_table),
};
#undef AT
DSNN_KEY_TABLE_DEFINE(static, table, keys);

static const struct dsnn_key_spec required_keys[] = {
    {.name = "need", .type = DSNN_KEY_INT, .required = true, DSNN_KEY_AT(struct params, i64),
     .doc = "x"},
};
DSNN_KEY_TABLE_DEFINE(static, required_table, required_keys);

/* Parses "model = { TEXT };" and reads table into p; returns the status, err holds the message. */
static struct dsnn_config_file *g_file;
static enum dsnn_status read_text(const struct dsnn_key_table *t, const char *text,
                                  struct params *p, struct dsnn_error *err)
{
    char buf[1024];
    snprintf(buf, sizeof buf, "model = {\n%s\n};\n", text);
    dsnn_config_file_free(g_file);
    g_file = NULL;
    struct dsnn_error perr = {0};
    CU_ASSERT_EQUAL_FATAL(dsnn_config_file_parse(buf, "t.cfg", &g_file, &perr), DSNN_OK);
    memset(p, 0xA5, sizeof *p);
    *err = (struct dsnn_error){0};
    return dsnn_keys_read(t, dsnn_cfg_group(dsnn_config_file_root(g_file), "model"), p, err);
}

static void test_defaults(void)
{
    struct params p;
    struct dsnn_error err;
    CU_ASSERT_EQUAL(read_text(&table, "", &p, &err), DSNN_OK);
    CU_ASSERT_EQUAL(p.i64, -5);
    CU_ASSERT_EQUAL(p.i32, 3);
    CU_ASSERT_EQUAL(p.u8, 200);
    CU_ASSERT_DOUBLE_EQUAL(p.f64, 0.3, 0);
    CU_ASSERT_EQUAL(p.f32, 1.5f);
    CU_ASSERT_TRUE(p.b);
    CU_ASSERT_STRING_EQUAL(p.s, "hello");
    CU_ASSERT_EQUAL(p.choice, 1); /* "beta" matches "Beta" case-insensitively */
}

static void test_values(void)
{
    struct params p;
    struct dsnn_error err;
    CU_ASSERT_EQUAL(read_text(&table,
                              "i64 = 1000000000000L; i32 = 100; u8 = 0; f64 = 1; f32 = -2.25; "
                              "b = false; s = \"x y\"; choice = \"GAMMA\"; arr = [0.0, 1.0]; "
                              "either = [0.25, 0.75]; inner = 99; mid = false;",
                              &p, &err),
                    DSNN_OK);
    CU_ASSERT_EQUAL(p.i64, 1000000000000LL);
    CU_ASSERT_EQUAL(p.i32, 100);
    CU_ASSERT_EQUAL(p.u8, 0);
    CU_ASSERT_DOUBLE_EQUAL(p.f64, 1.0, 0); /* an integer where a float goes */
    CU_ASSERT_EQUAL(p.f32, -2.25f);
    CU_ASSERT_FALSE(p.b);
    CU_ASSERT_STRING_EQUAL(p.s, "x y");
    CU_ASSERT_EQUAL(p.choice, 2);
}

static void test_errors(void)
{
    struct params p;
    struct dsnn_error err;
    CU_ASSERT_EQUAL(read_text(&table, "i32 = 0;", &p, &err), DSNN_ERR_CONFIG);
    ASSERT_HAS(err.msg, "t.cfg:2: key 'model.i32'");
    ASSERT_HAS(err.msg, "must be in [1, 100]");
    CU_ASSERT_EQUAL(read_text(&table, "f64 = 1.0000001;", &p, &err), DSNN_ERR_CONFIG);
    ASSERT_HAS(err.msg, "key 'model.f64'");
    CU_ASSERT_EQUAL(read_text(&table, "f64 = \"a\";", &p, &err), DSNN_ERR_CONFIG);
    ASSERT_HAS(err.msg, "key 'model.f64'");
    CU_ASSERT_EQUAL(read_text(&table, "choice = \"delta\";", &p, &err), DSNN_ERR_CONFIG);
    ASSERT_HAS(err.msg, "\"delta\" is not one of \"alpha\", \"Beta\", \"gamma\"");
    /* arrays: every element, and the scalar form of FLOAT_OR_ARRAY */
    CU_ASSERT_EQUAL(read_text(&table, "arr = [0.5, 2.0];", &p, &err), DSNN_ERR_CONFIG);
    ASSERT_HAS(err.msg, "key 'model.arr': 2 is out of range");
    CU_ASSERT_EQUAL(read_text(&table, "either = -0.5;", &p, &err), DSNN_ERR_CONFIG);
    ASSERT_HAS(err.msg, "key 'model.either': -0.5 is out of range");
    CU_ASSERT_EQUAL(read_text(&table, "either = [0.5, 1.5];", &p, &err), DSNN_ERR_CONFIG);
    ASSERT_HAS(err.msg, "key 'model.either': 1.5 is out of range");
    /* included keys are not read (nor checked) by the including table's reader */
    CU_ASSERT_EQUAL(read_text(&table, "inner = \"not an int\";", &p, &err), DSNN_OK);
    /* a required key */
    CU_ASSERT_EQUAL(read_text(&required_table, "", &p, &err), DSNN_ERR_CONFIG);
    ASSERT_HAS(err.msg, "key 'model.need'");
    ASSERT_HAS(err.msg, "required");
    CU_ASSERT_EQUAL(read_text(&required_table, "need = 4;", &p, &err), DSNN_OK);
    CU_ASSERT_EQUAL(p.i64, 4);
}

static void test_key_check(void)
{
    struct params p;
    struct dsnn_error err;
    CU_ASSERT_EQUAL(read_text(&table, "", &p, &err), DSNN_OK); /* g_file: empty group */
    const struct dsnn_cfg *g = dsnn_cfg_group(dsnn_config_file_root(g_file), "model");
    for (size_t i = 0; i < table.n; i++)
        CU_ASSERT_EQUAL(dsnn_key_check(&keys[i], g, &err), DSNN_OK); /* absent: fine */
    read_text(&table, "", &p, &err);
    char buf[256];
    snprintf(buf, sizeof buf, "model = { i32 = 101; choice = \"x\"; arr = [2]; s = \"free\"; };");
    dsnn_config_file_free(g_file);
    g_file = NULL;
    CU_ASSERT_EQUAL_FATAL(dsnn_config_file_parse(buf, "c.cfg", &g_file, &err), DSNN_OK);
    g = dsnn_cfg_group(dsnn_config_file_root(g_file), "model");
    CU_ASSERT_EQUAL(dsnn_key_check(dsnn_keys_find(keys, table.n, "i32"), g, &err), DSNN_ERR_CONFIG);
    ASSERT_HAS(err.msg, "c.cfg:1: key 'model.i32': 101 is out of range");
    CU_ASSERT_EQUAL(dsnn_key_check(dsnn_keys_find(keys, table.n, "choice"), g, &err),
                    DSNN_ERR_CONFIG);
    CU_ASSERT_EQUAL(dsnn_key_check(dsnn_keys_find(keys, table.n, "arr"), g, &err), DSNN_ERR_CONFIG);
    CU_ASSERT_EQUAL(dsnn_key_check(dsnn_keys_find(keys, table.n, "s"), g, &err), DSNN_OK);
}

static void test_texts(void)
{
    char buf[128];
    const struct {
        const char *key, *def, *range;
    } want[] = {
        {"i64", "-5", "[-10, 1000000000000]"}, {"f64", "0.3", "[0, 1]"},   {"b", "true", ""},
        {"s", "\"hello\"", ""},        {"arr", "[]", "[0, 1]"},    {"either", "0.5", "[0, 1]"},
        {"choice", "\"beta\"", "one of \"alpha\", \"Beta\", \"gamma\""}, {"mid", "true", ""},
    };
    for (size_t i = 0; i < DSNN_COUNT_OF(want); i++) {
        const struct dsnn_key_spec *k = dsnn_keys_find(keys, table.n, want[i].key);
        CU_ASSERT_PTR_NOT_NULL_FATAL(k);
        size_t n = dsnn_key_default_text(k, buf, sizeof buf);
        CU_ASSERT_STRING_EQUAL(buf, want[i].def);
        CU_ASSERT_EQUAL(n, strlen(want[i].def));
        n = dsnn_key_range_text(k, buf, sizeof buf);
        CU_ASSERT_STRING_EQUAL(buf, want[i].range);
        CU_ASSERT_EQUAL(n, strlen(want[i].range));
    }
    dsnn_key_default_text(&required_keys[0], buf, sizeof buf);
    CU_ASSERT_STRING_EQUAL(buf, "(required)");
    /* like snprintf: truncated but the full length returned */
    char small[4];
    CU_ASSERT_EQUAL(dsnn_key_range_text(dsnn_keys_find(keys, table.n, "choice"), small, sizeof small),
                    strlen("one of \"alpha\", \"Beta\", \"gamma\""));
    CU_ASSERT_STRING_EQUAL(small, "one");
    const struct dsnn_key_spec text = {.name = "t", .type = DSNN_KEY_INT,
                                       .default_value = "(the trial seed)"};
    dsnn_key_default_text(&text, buf, sizeof buf);
    CU_ASSERT_STRING_EQUAL(buf, "(the trial seed)");
}

static void test_flatten(void)
{
    const struct dsnn_key_spec *flat[32];
    size_t n = dsnn_keys_flatten(keys, table.n, flat, DSNN_COUNT_OF(flat));
    CU_ASSERT_EQUAL(n, table.n - 1 + 2); /* the include entry becomes inner, mid */
    CU_ASSERT_STRING_EQUAL(flat[table.n - 1]->name, "inner");
    CU_ASSERT_STRING_EQUAL(flat[table.n]->name, "mid");
    CU_ASSERT_EQUAL(dsnn_keys_flatten(keys, table.n, NULL, 0), n); /* count only */
    CU_ASSERT_PTR_EQUAL(dsnn_keys_find(keys, table.n, "inner"), &inner_keys[0]);
    CU_ASSERT_PTR_NULL(dsnn_keys_find(keys, table.n, "nope"));
    CU_ASSERT_PTR_NULL(dsnn_keys_find(keys, table.n, "mid_table")); /* an include is no key */
    /* an include cycle is cut at depth 8, not followed forever */
    static struct dsnn_key_table cyc;
    static struct dsnn_key_spec cyc_keys[2];
    cyc_keys[0] = (struct dsnn_key_spec){.name = "c", .type = DSNN_KEY_INT};
    cyc_keys[1] = (struct dsnn_key_spec){.name = "self", .type = DSNN_KEY_INCLUDE, .include = &cyc};
    cyc = (struct dsnn_key_table){cyc_keys, 2};
    CU_ASSERT_EQUAL(dsnn_keys_flatten(cyc_keys, 2, NULL, 0), 9);
    CU_ASSERT_PTR_NULL(dsnn_keys_find(cyc_keys, 2, "missing"));
}

/* The shared tables hold the keys their readers read, with the defaults the readers use. */
static void test_shared_tables(void)
{
    const char *base[] = {"optim_alg", "learning_rate", "momentum", "nesterov_momentum",
                          "weight_decay", "adam_beta1", "adam_beta2", "adam_eps", "lr_scheduler",
                          "lr_gamma", "lr_step_size", "lr_milestones", "debug_weights"};
    const struct dsnn_key_spec inc = DSNN_BASE_MODEL_KEYS;
    const struct dsnn_key_spec *flat[64];
    size_t n = dsnn_keys_flatten(&inc, 1, flat, DSNN_COUNT_OF(flat));
    CU_ASSERT_EQUAL(n, DSNN_COUNT_OF(base));
    for (size_t i = 0; i < n && i < DSNN_COUNT_OF(base); i++)
        CU_ASSERT_STRING_EQUAL(flat[i]->name, base[i]);
    struct dsnn_optim_cfg oc;
    struct dsnn_error err = {0};
    CU_ASSERT_EQUAL(dsnn_optim_cfg_read(NULL, &oc, &err), DSNN_OK); /* every default */
    CU_ASSERT_DOUBLE_EQUAL(oc.learning_rate, dsnn_keys_find(&inc, 1, "learning_rate")->def, 0);
    CU_ASSERT_DOUBLE_EQUAL(oc.beta2, dsnn_keys_find(&inc, 1, "adam_beta2")->def, 0);
    CU_ASSERT_DOUBLE_EQUAL(oc.eps, dsnn_keys_find(&inc, 1, "adam_eps")->def, 0);
    CU_ASSERT_EQUAL(oc.alg, DSNN_OPTIM_SGD);
    const struct dsnn_key_spec sm = DSNN_SPARSE_MODEL_KEYS, ps = DSNN_PRUNE_SCHEDULE_KEYS;
    CU_ASSERT_EQUAL(dsnn_keys_flatten(&sm, 1, NULL, 0), 13);
    CU_ASSERT_DOUBLE_EQUAL(dsnn_keys_find(&sm, 1, "epsilon")->def, 20, 0);
    CU_ASSERT_EQUAL(dsnn_keys_flatten(&ps, 1, NULL, 0), 2);
    struct dsnn_prune_schedule sched;
    CU_ASSERT_EQUAL(dsnn_prune_schedule_read(NULL, &sched, &err), DSNN_OK);
    CU_ASSERT_EQUAL(sched.interval, (int)dsnn_keys_find(&ps, 1, "pruning_interval")->def);
}

static void test_cleanup(void)
{
    dsnn_config_file_free(g_file);
    g_file = NULL;
}

static CU_TestInfo tests[] = {
    {"defaults of every type", test_defaults},
    {"values into fields of every width", test_values},
    {"range, type, choice and required errors", test_errors},
    {"dsnn_key_check", test_key_check},
    {"default and range texts", test_texts},
    {"flatten and find through includes", test_flatten},
    {"shared tables of libdsnn", test_shared_tables},
    {"cleanup", test_cleanup},
    CU_TEST_INFO_NULL,
};

DSNN_TEST_MAIN("keys", tests)
