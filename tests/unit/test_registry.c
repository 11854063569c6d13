/* tests/unit/test_registry.c - the plugin registry: loading, ABI and descriptor checks,
 * duplicates, lookup and suggestions, and the test-only plugins of tests/plugins (including a
 * short training run through the registry and the crash plugin's failure modes). */
#include <elf.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dsnn/dsnn.h"
#include "elf_check.h"
#include "harness.h"
#include "registry.h"

static char g_path[4096];

/* $DSNN_BUILD_DIR/test-plugins/<rel> (static buffer). */
static const char *tp(const char *rel)
{
    snprintf(g_path, sizeof(g_path), "%s/test-plugins/%s", dsnn_test_build_dir(), rel);
    return g_path;
}

static struct dsnn_registry *new_reg(void)
{
    struct dsnn_registry *reg = NULL;
    struct dsnn_error err = {0};
    CU_ASSERT_EQUAL_FATAL(dsnn_registry_new(&reg, &err), DSNN_OK);
    CU_ASSERT_PTR_NOT_NULL_FATAL(reg);
    return reg;
}

static bool contains(const char *hay, const char *needle)
{
    bool ok = strstr(hay, needle) != NULL;
    if (!ok)
        fprintf(stderr, "\n  expected \"%s\" in: %s\n", needle, hay);
    return ok;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t ls = strlen(s), lx = strlen(suffix);
    return ls >= lx && strcmp(s + ls - lx, suffix) == 0;
}

/* "M.m" of the host and of a plugin with the given offsets. */
static void abi_str(char *buf, size_t size, int dmajor, int dminor)
{
    snprintf(buf, size, "%d.%d", DSNN_ABI_MAJOR + dmajor, DSNN_ABI_MINOR + dminor);
}

/* ---- loading the valid test plugins ---- */

static void test_load_ok_dir(void)
{
    struct dsnn_registry *reg = new_reg();
    struct dsnn_error err = {0};
    CU_ASSERT_EQUAL(dsnn_registry_load_dir(reg, tp("ok"), &err), DSNN_OK);
    CU_ASSERT_EQUAL(dsnn_registry_n_errors(reg), 0);
    CU_ASSERT_EQUAL(dsnn_registry_count(reg), 5);
    CU_ASSERT_EQUAL(dsnn_registry_n_dirs(reg), 1);
    CU_ASSERT_STRING_EQUAL(dsnn_registry_dir_at(reg, 0), tp("ok"));

    const struct dsnn_registry_entry *e = dsnn_registry_find(reg, DSNN_KIND_DATASET, "okdata");
    CU_ASSERT_PTR_NOT_NULL_FATAL(e);
    CU_ASSERT_EQUAL(e->kind, DSNN_KIND_DATASET);
    CU_ASSERT_STRING_EQUAL(e->name, "okdata");
    CU_ASSERT_STRING_EQUAL(e->plugin->name, "okdata");
    CU_ASSERT(ends_with(e->path, "/ok/okdata.so"));
    CU_ASSERT_PTR_NOT_NULL(e->ops.dataset.open);
    CU_ASSERT_PTR_NOT_NULL(e->ops.dataset.close);
    CU_ASSERT_PTR_EQUAL(dsnn_registry_entry_ops(e), &e->ops.dataset);

    e = dsnn_registry_find(reg, DSNN_KIND_MODEL, "crash");
    CU_ASSERT_PTR_NOT_NULL_FATAL(e);
    CU_ASSERT_PTR_NOT_NULL(e->ops.model.train_epoch);
    CU_ASSERT_PTR_NOT_NULL(e->ops.model.save);
    CU_ASSERT_PTR_NOT_NULL(dsnn_registry_entry_key(e, "crash_epoch"));
    CU_ASSERT_EQUAL(dsnn_registry_entry_key(e, "crash_epoch")->type, DSNN_KEY_INT);
    CU_ASSERT_PTR_NULL(dsnn_registry_entry_key(e, "no_such_key"));
    CU_ASSERT_PTR_NOT_NULL(dsnn_registry_find(reg, DSNN_KIND_NETWORK, "oknet"));
    CU_ASSERT_PTR_NOT_NULL(dsnn_registry_find(reg, DSNN_KIND_MODEL, "okmodel"));
    CU_ASSERT_PTR_NOT_NULL(dsnn_registry_find(reg, DSNN_KIND_SEARCH, "oksearch"));
    /* Key is (kind, name): a name of another kind is not found. */
    CU_ASSERT_PTR_NULL(dsnn_registry_find(reg, DSNN_KIND_DATASET, "okmodel"));
    CU_ASSERT_PTR_NULL(dsnn_registry_find(reg, DSNN_KIND_MODEL, "nope"));
    CU_ASSERT_PTR_NULL(dsnn_registry_find(reg, DSNN_KIND_MODEL, NULL));

    /* Iteration is sorted by (kind, name). */
    static const char *order[] = {"okdata", "oknet", "crash", "okmodel", "oksearch"};
    for (size_t i = 0; i < dsnn_registry_count(reg); i++) {
        const struct dsnn_registry_entry *x = dsnn_registry_at(reg, i);
        CU_ASSERT_PTR_NOT_NULL_FATAL(x);
        CU_ASSERT_STRING_EQUAL(x->name, order[i]);
    }
    CU_ASSERT_PTR_NULL(dsnn_registry_at(reg, 5));
    dsnn_registry_free(reg);
}

static void test_load_same_file_twice(void)
{
    struct dsnn_registry *reg = new_reg();
    struct dsnn_error err = {0};
    char path[4096];
    snprintf(path, sizeof(path), "%s", tp("ok/okmodel.so"));
    CU_ASSERT_EQUAL(dsnn_registry_load_file(reg, path, &err), DSNN_OK);
    CU_ASSERT_EQUAL(dsnn_registry_load_file(reg, path, &err), DSNN_OK); /* no duplicate */
    CU_ASSERT_EQUAL(dsnn_registry_load_dir(reg, tp("ok"), &err), DSNN_OK);
    CU_ASSERT_EQUAL(dsnn_registry_count(reg), 5);
    CU_ASSERT_EQUAL(dsnn_registry_n_errors(reg), 0);
    dsnn_registry_free(reg);
}

static void test_load_relative_name(void)
{
    /* A bare file name is a file of the current directory, not a library-path search. */
    char cwd[4096];
    CU_ASSERT_PTR_NOT_NULL_FATAL(getcwd(cwd, sizeof(cwd)));
    CU_ASSERT_EQUAL_FATAL(chdir(tp("ok")), 0);
    struct dsnn_registry *reg = new_reg();
    struct dsnn_error err = {0};
    CU_ASSERT_EQUAL(dsnn_registry_load_file(reg, "oknet.so", &err), DSNN_OK);
    CU_ASSERT_PTR_NOT_NULL(dsnn_registry_find(reg, DSNN_KIND_NETWORK, "oknet"));
    CU_ASSERT_EQUAL(dsnn_registry_load_file(reg, "absent.so", &err), DSNN_ERR_NOT_FOUND);
    CU_ASSERT(contains(err.msg, "absent.so"));
    dsnn_registry_free(reg);
    CU_ASSERT_EQUAL(chdir(cwd), 0);
}

/* ---- refusals ---- */

static void test_bad_abi_major(void)
{
    struct dsnn_registry *reg = new_reg();
    struct dsnn_error err = {0};
    char plugin_v[16], host_v[16];
    abi_str(plugin_v, sizeof(plugin_v), 1, -DSNN_ABI_MINOR);
    abi_str(host_v, sizeof(host_v), 0, 0);
    CU_ASSERT_EQUAL(dsnn_registry_load_file(reg, tp("bad_abi_major/badmajor.so"), &err),
                    DSNN_ERR_ABI);
    CU_ASSERT_EQUAL(err.status, DSNN_ERR_ABI);
    CU_ASSERT(contains(err.msg, "bad_abi_major/badmajor.so"));
    CU_ASSERT(contains(err.msg, plugin_v));
    CU_ASSERT(contains(err.msg, host_v));
    CU_ASSERT(contains(err.msg, "rebuild"));
    CU_ASSERT_EQUAL(dsnn_registry_count(reg), 0);
    CU_ASSERT_EQUAL(dsnn_registry_n_errors(reg), 1);
    CU_ASSERT_STRING_EQUAL(dsnn_registry_error_at(reg, 0)->msg, err.msg);
    CU_ASSERT_EQUAL(dsnn_registry_error_at(reg, 0)->status, DSNN_ERR_ABI);
    /* The same through a directory. */
    struct dsnn_error err2 = {0};
    CU_ASSERT_EQUAL(dsnn_registry_load_dir(reg, tp("bad_abi_major"), &err2), DSNN_ERR_ABI);
    CU_ASSERT(contains(err2.msg, "badmajor.so"));
    CU_ASSERT_EQUAL(dsnn_registry_n_errors(reg), 2);
    CU_ASSERT_EQUAL(dsnn_registry_count(reg), 0);
    dsnn_registry_free(reg);
}

static void test_newer_minor(void)
{
    struct dsnn_registry *reg = new_reg();
    struct dsnn_error err = {0};
    char plugin_v[16], host_v[16];
    abi_str(plugin_v, sizeof(plugin_v), 0, 1);
    abi_str(host_v, sizeof(host_v), 0, 0);
    CU_ASSERT_EQUAL(dsnn_registry_load_dir(reg, tp("newer_minor"), &err), DSNN_ERR_ABI);
    CU_ASSERT(contains(err.msg, "newminor.so"));
    CU_ASSERT(contains(err.msg, plugin_v));
    CU_ASSERT(contains(err.msg, host_v));
    CU_ASSERT_EQUAL(dsnn_registry_count(reg), 0);
    dsnn_registry_free(reg);
}

static void test_no_entry_symbol(void)
{
    struct dsnn_registry *reg = new_reg();
    struct dsnn_error err = {0};
    CU_ASSERT_EQUAL(dsnn_registry_load_file(reg, tp("no_entry_symbol/noentry.so"), &err),
                    DSNN_ERR_NOT_FOUND);
    CU_ASSERT(contains(err.msg, "noentry.so"));
    CU_ASSERT(contains(err.msg, "dsnn_plugin_entry"));
    CU_ASSERT(contains(err.msg, "undefined symbol")); /* dlerror() */
    CU_ASSERT_EQUAL(dsnn_registry_count(reg), 0);
    dsnn_registry_free(reg);
}

static void test_missing_required_op(void)
{
    struct dsnn_registry *reg = new_reg();
    struct dsnn_error err = {0};
    CU_ASSERT_EQUAL(dsnn_registry_load_dir(reg, tp("missing_op"), &err), DSNN_ERR_INVALID);
    CU_ASSERT(contains(err.msg, "missingop.so"));
    CU_ASSERT(contains(err.msg, "train_epoch"));
    CU_ASSERT_EQUAL(dsnn_registry_count(reg), 0);
    dsnn_registry_free(reg);
}

static void test_duplicate(void)
{
    struct dsnn_registry *reg = new_reg();
    struct dsnn_error err = {0};
    CU_ASSERT_EQUAL(dsnn_registry_load_dir(reg, tp("duplicate"), &err), DSNN_ERR_INVALID);
    CU_ASSERT(contains(err.msg, "dupmodel"));
    CU_ASSERT(contains(err.msg, "duplicate/dup_a.so"));
    CU_ASSERT(contains(err.msg, "duplicate/dup_b.so"));
    /* Files load in name order, so dup_a wins deterministically; the rest of the directory still
     * loads. */
    CU_ASSERT_EQUAL(dsnn_registry_count(reg), 1);
    const struct dsnn_registry_entry *e = dsnn_registry_find(reg, DSNN_KIND_MODEL, "dupmodel");
    CU_ASSERT_PTR_NOT_NULL_FATAL(e);
    CU_ASSERT(ends_with(e->path, "dup_a.so"));
    CU_ASSERT_STRING_EQUAL(e->plugin->name, "dup_a");
    CU_ASSERT_EQUAL(dsnn_registry_n_errors(reg), 1);
    dsnn_registry_free(reg);
}

static void test_not_a_shared_object(void)
{
    struct dsnn_registry *reg = new_reg();
    struct dsnn_error err = {0};
    CU_ASSERT_EQUAL(dsnn_registry_load_dir(reg, tp("not_so"), &err), DSNN_ERR_FORMAT);
    CU_ASSERT(contains(err.msg, "not_so/x.so"));
    CU_ASSERT(contains(err.msg, "cannot load plugin: not an ELF file"));
    CU_ASSERT_EQUAL(dsnn_registry_count(reg), 0);
    dsnn_registry_free(reg);
}

static void test_missing_dir(void)
{
    struct dsnn_registry *reg = new_reg();
    struct dsnn_error err = {0};
    CU_ASSERT_EQUAL(dsnn_registry_load_dir(reg, tp("no_such_case"), &err), DSNN_ERR_NOT_FOUND);
    CU_ASSERT(contains(err.msg, "no_such_case"));
    CU_ASSERT_EQUAL(dsnn_registry_n_errors(reg), 1);
    /* A file is not a directory. */
    CU_ASSERT_NOT_EQUAL(dsnn_registry_load_dir(reg, tp("ok/okdata.so"), &err), DSNN_OK);
    CU_ASSERT(contains(err.msg, "okdata.so"));
    dsnn_registry_free(reg);
}

static void test_several_bad_dirs_collect_errors(void)
{
    struct dsnn_registry *reg = new_reg();
    struct dsnn_error err = {0};
    dsnn_registry_load_dir(reg, tp("ok"), &err);
    dsnn_registry_load_dir(reg, tp("bad_abi_major"), &err);
    dsnn_registry_load_dir(reg, tp("no_entry_symbol"), &err);
    dsnn_registry_load_dir(reg, tp("duplicate"), &err);
    CU_ASSERT_EQUAL(dsnn_registry_n_errors(reg), 3);
    CU_ASSERT_EQUAL(dsnn_registry_count(reg), 6);
    CU_ASSERT_EQUAL(dsnn_registry_n_dirs(reg), 4);
    CU_ASSERT_PTR_NULL(dsnn_registry_error_at(reg, 3));
    dsnn_registry_free(reg);
    dsnn_registry_free(NULL);
}

/* ---- lookup ---- */

static void test_lookup_suggestions(void)
{
    struct dsnn_registry *reg = new_reg();
    struct dsnn_error err = {0};
    CU_ASSERT_EQUAL_FATAL(dsnn_registry_load_dir(reg, tp("ok"), &err), DSNN_OK);
    const struct dsnn_registry_entry *e = NULL;
    CU_ASSERT_EQUAL(dsnn_registry_lookup(reg, DSNN_KIND_MODEL, "okmodel", &e, &err), DSNN_OK);
    CU_ASSERT_PTR_NOT_NULL(e);

    CU_ASSERT_EQUAL(dsnn_registry_lookup(reg, DSNN_KIND_MODEL, "okmdel", &e, &err),
                    DSNN_ERR_NOT_FOUND);
    CU_ASSERT_PTR_NULL(e);
    CU_ASSERT(contains(err.msg, "no model plugin named 'okmdel'"));
    CU_ASSERT(contains(err.msg, "did you mean 'okmodel'?"));
    CU_ASSERT(contains(err.msg, "available models: crash, okmodel"));
    CU_ASSERT(contains(err.msg, tp("ok")));

    CU_ASSERT_EQUAL(dsnn_registry_lookup(reg, DSNN_KIND_DATASET, "okmodel", &e, &err),
                    DSNN_ERR_NOT_FOUND);
    CU_ASSERT(contains(err.msg, "available datasets: okdata"));
    CU_ASSERT(contains(err.msg, "'okmodel' is a model"));

    CU_ASSERT_EQUAL(dsnn_registry_lookup(reg, DSNN_KIND_SEARCH, "zzzzzzzz", &e, &err),
                    DSNN_ERR_NOT_FOUND);
    CU_ASSERT_PTR_NULL(strstr(err.msg, "did you mean"));
    CU_ASSERT(contains(err.msg, "oksearch"));

    CU_ASSERT_EQUAL(dsnn_registry_lookup(reg, DSNN_KIND_MODEL, "", &e, &err), DSNN_ERR_INVALID);

    CU_ASSERT_STRING_EQUAL(dsnn_registry_suggest(reg, DSNN_KIND_NETWORK, "OKNET"), "oknet");
    CU_ASSERT_STRING_EQUAL(dsnn_registry_suggest(reg, (enum dsnn_kind)0, "okdta"), "okdata");
    CU_ASSERT_PTR_NULL(dsnn_registry_suggest(reg, DSNN_KIND_MODEL, "okdata"));

    char names[256];
    CU_ASSERT_EQUAL(dsnn_registry_names(reg, DSNN_KIND_MODEL, names, sizeof(names)), 2);
    CU_ASSERT_STRING_EQUAL(names, "crash, okmodel");
    CU_ASSERT_EQUAL(dsnn_registry_names(reg, DSNN_KIND_MODEL, names, 4), 2);
    CU_ASSERT_STRING_EQUAL(names, "cra"); /* truncated, terminated */
    dsnn_registry_free(reg);

    /* Nothing of a kind loaded. */
    reg = new_reg();
    CU_ASSERT_EQUAL(dsnn_registry_lookup(reg, DSNN_KIND_MODEL, "set", &e, &err),
                    DSNN_ERR_NOT_FOUND);
    CU_ASSERT(contains(err.msg, "no models are loaded"));
    CU_ASSERT(contains(err.msg, "no plugin directory was searched"));
    dsnn_registry_free(reg);
}

static void test_kind_parse(void)
{
    enum dsnn_kind k;
    CU_ASSERT(dsnn_registry_kind_parse("dataset", &k) && k == DSNN_KIND_DATASET);
    CU_ASSERT(dsnn_registry_kind_parse("networks", &k) && k == DSNN_KIND_NETWORK);
    CU_ASSERT(dsnn_registry_kind_parse("model", &k) && k == DSNN_KIND_MODEL);
    CU_ASSERT(dsnn_registry_kind_parse("search", &k) && k == DSNN_KIND_SEARCH);
    CU_ASSERT(dsnn_registry_kind_parse("datasets", &k) && k == DSNN_KIND_DATASET);
    CU_ASSERT(dsnn_registry_kind_parse("models", &k) && k == DSNN_KIND_MODEL);
    CU_ASSERT(dsnn_registry_kind_parse("searches", &k) && k == DSNN_KIND_SEARCH);
    CU_ASSERT(dsnn_registry_kind_parse("network", NULL));
    static const char *const wrong[] = {"searchs", "datasetss", "data", "models2", "", "Model"};
    for (size_t i = 0; i < sizeof wrong / sizeof wrong[0]; i++)
        CU_ASSERT(!dsnn_registry_kind_parse(wrong[i], &k));
    CU_ASSERT(!dsnn_registry_kind_parse("layer", &k));
    CU_ASSERT(!dsnn_registry_kind_parse(NULL, &k));
    CU_ASSERT_EQUAL(dsnn_registry_ops_size(DSNN_KIND_MODEL), sizeof(struct dsnn_model_ops));
    CU_ASSERT_EQUAL(dsnn_registry_ops_size((enum dsnn_kind)99), 0);
}

/* ---- descriptor checks on in-memory descriptors ---- */

static enum dsnn_status f_build(const struct dsnn_cfg *cfg, const struct dsnn_run_ctx *ctx,
                                struct dsnn_shape input, int n_classes, struct dsnn_net **out,
                                struct dsnn_error *err)
{
    (void)cfg, (void)ctx, (void)input, (void)n_classes, (void)out, (void)err;
    return DSNN_ERR_UNSUPPORTED;
}
static enum dsnn_status f_create(const struct dsnn_cfg *cfg, const struct dsnn_search_ctx *ctx,
                                 void **state, struct dsnn_error *err)
{
    (void)cfg, (void)ctx, (void)state, (void)err;
    return DSNN_ERR_UNSUPPORTED;
}
static enum dsnn_status f_suggest(void *state, int trial_index, struct dsnn_param_set *out,
                                  bool *done, struct dsnn_error *err)
{
    (void)state, (void)trial_index, (void)out, (void)done, (void)err;
    return DSNN_ERR_UNSUPPORTED;
}
static void f_destroy(void *state)
{
    (void)state;
}
static void f_on_complete(void *state, int trial_index, bool error)
{
    (void)state, (void)trial_index, (void)error;
}

static const struct dsnn_network_ops net_ops = {.build = f_build};
static const struct dsnn_key_spec net_keys[] = {{.name = "depth", .type = DSNN_KEY_INT, .def = 2, .doc = "layers"}};
static const struct dsnn_search_ops search_ops = {
    .create = f_create, .suggest = f_suggest, .on_complete = f_on_complete, .destroy = f_destroy};

/* A descriptor with one component c (copied into static storage). */
static struct dsnn_component g_comp[2];
static struct dsnn_plugin g_plugin;
static const struct dsnn_plugin *one(struct dsnn_component c)
{
    g_comp[0] = c;
    g_plugin = (struct dsnn_plugin){DSNN_ABI_MAJOR, DSNN_ABI_MINOR,
                                    (uint32_t)sizeof(struct dsnn_plugin), "mem", g_comp, 1};
    return &g_plugin;
}

static enum dsnn_status add(const struct dsnn_plugin *p, struct dsnn_error *err)
{
    struct dsnn_registry *reg = new_reg();
    enum dsnn_status st = dsnn_registry_add(reg, p, "mem.so", err);
    if (st != DSNN_OK) {
        CU_ASSERT_EQUAL(dsnn_registry_count(reg), 0);
        CU_ASSERT_EQUAL(dsnn_registry_n_errors(reg), 1);
    }
    dsnn_registry_free(reg);
    return st;
}

static void test_descriptor_checks(void)
{
    struct dsnn_error err = {0};
    const struct dsnn_component good = DSNN_COMPONENT(DSNN_KIND_NETWORK, "memnet", "1.0", "d",
                                                      net_ops, net_keys);
    CU_ASSERT_EQUAL(add(one(good), &err), DSNN_OK);
    CU_ASSERT_EQUAL(add(NULL, &err), DSNN_ERR_INVALID);
    CU_ASSERT(contains(err.msg, "NULL"));

    /* ABI */
    one(good);
    g_plugin.abi_major = DSNN_ABI_MAJOR + 1;
    CU_ASSERT_EQUAL(add(&g_plugin, &err), DSNN_ERR_ABI);
    CU_ASSERT(contains(err.msg, "mem.so"));
    one(good);
    g_plugin.abi_major = DSNN_ABI_MAJOR - 1;
    CU_ASSERT_EQUAL(add(&g_plugin, &err), DSNN_ERR_ABI);
    one(good);
    g_plugin.abi_minor = DSNN_ABI_MINOR + 3;
    CU_ASSERT_EQUAL(add(&g_plugin, &err), DSNN_ERR_ABI);
    CU_ASSERT(contains(err.msg, "update dsnn-host"));

    /* struct_size: too small refused, larger accepted (appended fields this host ignores). */
    one(good);
    g_plugin.struct_size = 12;
    CU_ASSERT_EQUAL(add(&g_plugin, &err), DSNN_ERR_ABI);
    CU_ASSERT(contains(err.msg, "12 bytes"));
    one(good);
    g_plugin.struct_size = (uint32_t)sizeof(struct dsnn_plugin) + 16;
    CU_ASSERT_EQUAL(add(&g_plugin, &err), DSNN_OK);

    /* descriptor fields */
    one(good);
    g_plugin.name = NULL;
    CU_ASSERT_EQUAL(add(&g_plugin, &err), DSNN_ERR_INVALID);
    one(good);
    g_plugin.n_components = 0;
    CU_ASSERT_EQUAL(add(&g_plugin, &err), DSNN_ERR_INVALID);
    CU_ASSERT(contains(err.msg, "no components"));

    /* components */
    struct dsnn_component c = good;
    c.kind = (enum dsnn_kind)7;
    CU_ASSERT_EQUAL(add(one(c), &err), DSNN_ERR_INVALID);
    CU_ASSERT(contains(err.msg, "unknown kind 7"));
    c = good;
    c.name = NULL;
    CU_ASSERT_EQUAL(add(one(c), &err), DSNN_ERR_INVALID);
    c.name = "";
    CU_ASSERT_EQUAL(add(one(c), &err), DSNN_ERR_INVALID);
    c.name = "has/slash";
    CU_ASSERT_EQUAL(add(one(c), &err), DSNN_ERR_INVALID);
    CU_ASSERT(contains(err.msg, "has/slash"));
    c.name = "ok-name_2.x";
    CU_ASSERT_EQUAL(add(one(c), &err), DSNN_OK);
    c = good;
    c.ops = NULL;
    CU_ASSERT_EQUAL(add(one(c), &err), DSNN_ERR_INVALID);
    CU_ASSERT(contains(err.msg, "no ops table"));
    c = good;
    c.ops_size = 3;
    CU_ASSERT_EQUAL(add(one(c), &err), DSNN_ERR_ABI);
    c.ops_size = 0;
    CU_ASSERT_EQUAL(add(one(c), &err), DSNN_ERR_ABI);
    c = good;
    c.keys = NULL;
    CU_ASSERT_EQUAL(add(one(c), &err), DSNN_ERR_INVALID);
    c.n_keys = 0; /* no keys at all is fine */
    CU_ASSERT_EQUAL(add(one(c), &err), DSNN_OK);
    static const struct dsnn_key_spec bad_keys[] = {{.name = NULL, .type = DSNN_KEY_INT, .def = 1, .doc = "x"}};
    c = good;
    c.keys = bad_keys;
    c.n_keys = 1;
    CU_ASSERT_EQUAL(add(one(c), &err), DSNN_ERR_INVALID);
    static const struct dsnn_key_spec bad_type[] = {{.name = "k", .type = (enum dsnn_key_type)42, .def = 1, .doc = "x"}};
    c.keys = bad_type;
    CU_ASSERT_EQUAL(add(one(c), &err), DSNN_ERR_INVALID);
    CU_ASSERT(contains(err.msg, "unknown type 42"));
    /* NULL version / description are tolerated */
    c = good;
    c.version = NULL;
    c.description = NULL;
    CU_ASSERT_EQUAL(add(one(c), &err), DSNN_OK);

    /* the same (kind, name) twice in one file */
    g_comp[0] = good;
    g_comp[1] = good;
    g_plugin = (struct dsnn_plugin){DSNN_ABI_MAJOR, DSNN_ABI_MINOR,
                                    (uint32_t)sizeof(struct dsnn_plugin), "two", g_comp, 2};
    CU_ASSERT_EQUAL(add(&g_plugin, &err), DSNN_ERR_INVALID);
    CU_ASSERT(contains(err.msg, "twice"));
    /* same name, different kinds: fine */
    g_comp[1] = (struct dsnn_component)DSNN_COMPONENT(DSNN_KIND_SEARCH, "memnet", "1.0", "d",
                                                      search_ops, net_keys);
    CU_ASSERT_EQUAL(add(&g_plugin, &err), DSNN_OK);
}

/* Ops tables of other sizes: an older plugin (smaller table) reads missing functions as NULL,
 * a larger table of the same minor is accepted and truncated. */
struct bigger_search_ops {
    struct dsnn_search_ops base;
    void (*future_op)(void);
};
static void future(void)
{
}

static void test_ops_sizes(void)
{
    struct dsnn_error err = {0};
    /* Older search plugin whose table ends after on_complete: destroy (required) missing. */
    struct dsnn_component c = DSNN_COMPONENT(DSNN_KIND_SEARCH, "old", "1", "d", search_ops,
                                             net_keys);
    c.ops_size = offsetof(struct dsnn_search_ops, save);
    CU_ASSERT_EQUAL(add(one(c), &err), DSNN_ERR_INVALID);
    CU_ASSERT(contains(err.msg, "'destroy'"));
    CU_ASSERT(contains(err.msg, "older"));

    struct dsnn_search_ops full;
    memset(&full, 0xff, sizeof(full));
    dsnn_registry_copy_ops(&c, &full, sizeof(full));
    CU_ASSERT_PTR_EQUAL(full.create, f_create);
    CU_ASSERT_PTR_EQUAL(full.on_complete, f_on_complete);
    CU_ASSERT_PTR_NULL(full.save);
    CU_ASSERT_PTR_NULL(full.restore);
    CU_ASSERT_PTR_NULL(full.destroy);

    static const struct bigger_search_ops big = {
        {.create = f_create, .suggest = f_suggest, .destroy = f_destroy}, future};
    c.ops = &big;
    c.ops_size = sizeof(big);
    struct dsnn_registry *reg = new_reg();
    CU_ASSERT_EQUAL(dsnn_registry_add(reg, one(c), "big.so", &err), DSNN_OK);
    const struct dsnn_registry_entry *e = dsnn_registry_find(reg, DSNN_KIND_SEARCH, "old");
    CU_ASSERT_PTR_NOT_NULL_FATAL(e);
    CU_ASSERT_PTR_EQUAL(e->ops.search.destroy, f_destroy);
    CU_ASSERT_PTR_NULL(e->ops.search.on_result);
    CU_ASSERT_STRING_EQUAL(e->path, "big.so");
    /* A second registration of the same (kind, name) names both origins. */
    CU_ASSERT_EQUAL(dsnn_registry_add(reg, one(c), "other.so", &err), DSNN_ERR_INVALID);
    CU_ASSERT(contains(err.msg, "big.so"));
    CU_ASSERT(contains(err.msg, "other.so"));
    dsnn_registry_free(reg);

    dsnn_registry_copy_ops(NULL, &full, sizeof(full));
    CU_ASSERT_PTR_NULL(full.create);
}


/* ---- broken shared objects (dsnn_elf_check) and unsafe paths ---- */

/* The bytes of file path (caller frees); *size its length. */
static unsigned char *slurp_file(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc(n > 0 ? (size_t)n : 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    CU_ASSERT_EQUAL_FATAL(fread(b, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *size = (size_t)n;
    return b;
}

/* Writes n bytes of b to path with the given mode (exactly, whatever the umask). */
static void write_bytes(const char *path, const unsigned char *b, size_t n, mode_t mode)
{
    unlink(path);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_EQUAL_FATAL(write(fd, b, n), (ssize_t)n);
    close(fd);
    CU_ASSERT_EQUAL_FATAL(chmod(path, mode), 0);
}

/* A fresh directory (mode 0755) under /tmp; the caller removes it with rm_tree. */
static void make_tmp_dir(char *dir)
{
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
    CU_ASSERT_EQUAL_FATAL(chmod(dir, 0755), 0);
}

static void rm_tree(const char *dir)
{
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CU_ASSERT_EQUAL(system(cmd), 0);
}

/* dsnn_elf_check refuses bytes, with a message containing want. */
static void expect_elf_error(const unsigned char *b, size_t n, const char *want)
{
    struct dsnn_error err = {0};
    CU_ASSERT_EQUAL(dsnn_elf_check(b, n, &err), DSNN_ERR_FORMAT);
    CU_ASSERT(contains(err.msg, want));
}

static void test_elf_check(void)
{
#if UINTPTR_MAX > 0xffffffffu
    size_t n = 0;
    unsigned char *so = slurp_file(tp("ok/oknet.so"), &n);
    struct dsnn_error err = {0};
    CU_ASSERT_EQUAL(dsnn_elf_check(so, n, &err), DSNN_OK);
    /* Every proper prefix is refused (the section header table is at the end). */
    size_t accepted = 0;
    for (size_t len = 0; len < n; len++)
        accepted += dsnn_elf_check(so, len, NULL) == DSNN_OK;
    CU_ASSERT_EQUAL(accepted, 0);
    expect_elf_error(so, 0, "empty file");
    expect_elf_error(so, 3, "not an ELF file");
    expect_elf_error(so, 40, "truncated ELF file");
    Elf64_Ehdr h;
    memcpy(&h, so, sizeof h);
    expect_elf_error(so, h.e_phoff + 4, "program header table");
    expect_elf_error(so, n / 2, "ends past the end of the file");

    unsigned char *m = malloc(n);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
#define MUTATE(field_stmt, want)                                                                  \
    do {                                                                                          \
        memcpy(m, so, n);                                                                         \
        Elf64_Ehdr e;                                                                             \
        memcpy(&e, m, sizeof e);                                                                  \
        field_stmt;                                                                               \
        memcpy(m, &e, sizeof e);                                                                  \
        expect_elf_error(m, n, want);                                                             \
    } while (0)
    MUTATE(e.e_phoff = n, "program header table");
    MUTATE(e.e_phoff = UINT64_MAX - 8, "program header table"); /* offset + size overflows */
    MUTATE(e.e_phnum = 0xffff, "program headers");
    MUTATE(e.e_phnum = 0, "program headers");
    MUTATE(e.e_phentsize = 1, "program header entries");
    MUTATE(e.e_type = ET_EXEC, "not a shared object");
    MUTATE(e.e_machine = (Elf64_Half)(e.e_machine + 1), "another machine");
    MUTATE(e.e_ident[EI_CLASS] = ELFCLASS32, "32-bit");
    MUTATE(e.e_ident[EI_DATA] = ELFDATA2MSB, "byte order");
    MUTATE(e.e_shoff = UINT64_MAX - 16, "section header table");
    MUTATE(e.e_shentsize = 3, "section header entries");
#undef MUTATE
    /* Program headers: a PT_LOAD reaching past the end, or overflowing; PT_DYNAMIC likewise. */
    unsigned patched = 0;
    for (unsigned i = 0; i < h.e_phnum; i++) {
        Elf64_Phdr p;
        size_t at = h.e_phoff + i * sizeof p;
        memcpy(&p, so + at, sizeof p);
        if (p.p_type != PT_LOAD && p.p_type != PT_DYNAMIC)
            continue;
        Elf64_Phdr q = p;
        q.p_offset = UINT64_MAX - 1;
        memcpy(m, so, n);
        memcpy(m + at, &q, sizeof q);
        expect_elf_error(m, n, "ends past the end of the file");
        q = p; /* one byte too long (memsz too: filesz <= memsz) */
        q.p_filesz = q.p_memsz = n - p.p_offset + 1;
        memcpy(m, so, n);
        memcpy(m + at, &q, sizeof q);
        expect_elf_error(m, n, p.p_type == PT_LOAD ? "PT_LOAD" : "PT_DYNAMIC");
        patched++;
    }
    CU_ASSERT(patched >= 2);
    free(m);
    free(so);
#endif
    CU_ASSERT_EQUAL(dsnn_elf_check(NULL, 5, NULL), DSNN_ERR_INVALID);
}

/* A truncated copy of a real plugin among good ones: refused with a message naming it
 * (DSNN_ERR_FORMAT), the others load; no SIGBUS. */
static void test_load_truncated_plugin(void)
{
    char dir[] = "/tmp/dsnn_reg_trunc_XXXXXX";
    make_tmp_dir(dir);
    size_t n = 0;
    unsigned char *so = slurp_file(tp("ok/oknet.so"), &n);
    size_t n2 = 0;
    unsigned char *good = slurp_file(tp("ok/okdata.so"), &n2);
    char path[4200], bad[4200];
    snprintf(path, sizeof path, "%s/okdata.so", dir);
    write_bytes(path, good, n2, 0755);
    snprintf(bad, sizeof bad, "%s/oknet.so", dir);
    const size_t cuts[] = {n / 2, 64 + 56 * 3, n - 1};
    for (size_t c = 0; c < DSNN_COUNT_OF(cuts); c++) {
        write_bytes(bad, so, cuts[c], 0755);
        struct dsnn_registry *reg = new_reg();
        struct dsnn_error err = {0};
        CU_ASSERT_EQUAL(dsnn_registry_load_dir(reg, dir, &err), DSNN_ERR_FORMAT);
        CU_ASSERT(contains(err.msg, bad));
        CU_ASSERT(contains(err.msg, "truncated"));
        CU_ASSERT_EQUAL(dsnn_registry_count(reg), 1); /* okdata */
        CU_ASSERT_PTR_NOT_NULL(dsnn_registry_find(reg, DSNN_KIND_DATASET, "okdata"));
        CU_ASSERT_EQUAL(dsnn_registry_load_file(reg, bad, &err), DSNN_ERR_FORMAT);
        dsnn_registry_free(reg);
    }
    free(so);
    free(good);
    rm_tree(dir);
}

/* Loads dir into a fresh registry (allow_unsafe as given); returns the status, err filled. */
static enum dsnn_status load_one_dir(const char *dir, bool allow, struct dsnn_error *err,
                                     size_t *count, size_t *warnings)
{
    struct dsnn_registry *reg = new_reg();
    dsnn_registry_set_allow_unsafe(reg, allow);
    enum dsnn_status s = dsnn_registry_load_dir(reg, dir, err);
    *count = dsnn_registry_count(reg);
    *warnings = dsnn_registry_n_warnings(reg);
    if (*warnings)
        snprintf(err->msg, sizeof err->msg, "%s", dsnn_registry_warning_at(reg, 0));
    dsnn_registry_free(reg);
    return s;
}

static void test_unsafe_paths(void)
{
    char dir[] = "/tmp/dsnn_reg_unsafe_XXXXXX", other[] = "/tmp/dsnn_reg_other_XXXXXX";
    make_tmp_dir(dir);
    make_tmp_dir(other);
    size_t n = 0, count = 0, warnings = 0;
    unsigned char *so = slurp_file(tp("ok/okdata.so"), &n);
    char file[4200], target[4200], link[4200];
    snprintf(file, sizeof file, "%s/okdata.so", dir);
    write_bytes(file, so, n, 0755);
    struct dsnn_error err = {0};
    CU_ASSERT_EQUAL(load_one_dir(dir, false, &err, &count, &warnings), DSNN_OK);
    CU_ASSERT_EQUAL(count, 1);

    /* The directory writable by group, by others: nothing of it is loaded. */
    CU_ASSERT_EQUAL(chmod(dir, 0775), 0);
    CU_ASSERT_EQUAL(load_one_dir(dir, false, &err, &count, &warnings), DSNN_ERR_INVALID);
    CU_ASSERT(contains(err.msg, dir));
    CU_ASSERT(contains(err.msg, "writable by group (mode 0775)"));
    CU_ASSERT_EQUAL(count, 0);
    CU_ASSERT_EQUAL(chmod(dir, 01777), 0); /* sticky does not make it safe */
    CU_ASSERT_EQUAL(load_one_dir(dir, false, &err, &count, &warnings), DSNN_ERR_INVALID);
    CU_ASSERT(contains(err.msg, "writable by group and others"));
    /* allowed: loaded, with a warning naming the directory */
    CU_ASSERT_EQUAL(load_one_dir(dir, true, &err, &count, &warnings), DSNN_OK);
    CU_ASSERT_EQUAL(count, 1);
    CU_ASSERT_EQUAL(warnings, 1);
    CU_ASSERT(contains(err.msg, dir));
    CU_ASSERT_EQUAL(chmod(dir, 0755), 0);

    /* The file writable by others. */
    CU_ASSERT_EQUAL(chmod(file, 0757), 0);
    CU_ASSERT_EQUAL(load_one_dir(dir, false, &err, &count, &warnings), DSNN_ERR_INVALID);
    CU_ASSERT(contains(err.msg, file));
    CU_ASSERT(contains(err.msg, "writable by others"));
    CU_ASSERT_EQUAL(count, 0);
    CU_ASSERT_EQUAL(chmod(file, 0755), 0);

    /* Owned by another user (only root can make such a file). */
    if (geteuid() == 0) {
        CU_ASSERT_EQUAL(chown(file, 65534, 65534), 0);
        CU_ASSERT_EQUAL(load_one_dir(dir, false, &err, &count, &warnings), DSNN_ERR_INVALID);
        CU_ASSERT(contains(err.msg, "owned by uid 65534"));
        CU_ASSERT_EQUAL(chown(file, 0, 0), 0);
        CU_ASSERT_EQUAL(chown(dir, 65534, 65534), 0);
        CU_ASSERT_EQUAL(load_one_dir(dir, false, &err, &count, &warnings), DSNN_ERR_INVALID);
        CU_ASSERT(contains(err.msg, "owned by uid 65534"));
        CU_ASSERT_EQUAL(chown(dir, 0, 0), 0);
    }

    /* A symbolic link: what it points to is checked (the opened file), not the link. */
    unlink(file);
    snprintf(target, sizeof target, "%s/real.so", other);
    write_bytes(target, so, n, 0777);
    snprintf(link, sizeof link, "%s/linked.so", dir);
    CU_ASSERT_EQUAL_FATAL(symlink(target, link), 0);
    CU_ASSERT_EQUAL(load_one_dir(dir, false, &err, &count, &warnings), DSNN_ERR_INVALID);
    CU_ASSERT(contains(err.msg, link));
    CU_ASSERT(contains(err.msg, "writable by group and others"));
    CU_ASSERT_EQUAL(chmod(target, 0755), 0);
    CU_ASSERT_EQUAL(load_one_dir(dir, false, &err, &count, &warnings), DSNN_OK);
    CU_ASSERT_EQUAL(count, 1);
    /* A linked directory: the directory it points to is checked. */
    char dlink[4200];
    snprintf(dlink, sizeof dlink, "%s/plugins", dir);
    CU_ASSERT_EQUAL_FATAL(symlink(other, dlink), 0);
    CU_ASSERT_EQUAL(chmod(other, 0777), 0);
    CU_ASSERT_EQUAL(load_one_dir(dlink, false, &err, &count, &warnings), DSNN_ERR_INVALID);
    CU_ASSERT(contains(err.msg, "mode 0777"));
    CU_ASSERT_EQUAL(chmod(other, 0755), 0);
    CU_ASSERT_EQUAL(load_one_dir(dlink, false, &err, &count, &warnings), DSNN_OK);
    CU_ASSERT_EQUAL(count, 1);

    free(so);
    rm_tree(dir);
    rm_tree(other);
}

/* ---- the real plugins, if built: every one must pass the checks ---- */

static void test_real_plugin_dir(void)
{
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s/plugins", dsnn_test_build_dir());
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return; /* no plugins built */
    struct dsnn_registry *reg = new_reg();
    struct dsnn_error err = {0};
    enum dsnn_status s = dsnn_registry_load_dir(reg, dir, &err);
    if (s != DSNN_OK)
        fprintf(stderr, "\n  %s\n", err.msg);
    CU_ASSERT_EQUAL(s, DSNN_OK);
    CU_ASSERT_EQUAL(dsnn_registry_n_errors(reg), 0);
    for (size_t i = 0; i < dsnn_registry_count(reg); i++) {
        const struct dsnn_registry_entry *e = dsnn_registry_at(reg, i);
        CU_ASSERT(e->kind >= DSNN_KIND_DATASET && e->kind <= DSNN_KIND_SEARCH);
        CU_ASSERT_PTR_NOT_NULL(e->component->version);
        CU_ASSERT_PTR_NOT_NULL(e->component->description);
        for (size_t k = 0; k < e->component->n_keys; k++)
            CU_ASSERT_PTR_NOT_NULL(e->component->keys[k].doc);
    }
    dsnn_registry_free(reg);
}

/* ---- the test plugins at work ---- */

static const char *k_cfg = "dataset = { plugin = \"okdata\"; n_train = 300; n_test = 90; };\n"
                           "network = { plugin = \"oknet\"; hidden = 16; };\n"
                           "model = { plugin = \"%s\"; learning_rate = 0.1; momentum = 0.9; %s };\n";

/* Trains model `model` (extra model keys `extra`) for `epochs` epochs on okdata/oknet through the
 * registry. Returns the status of the first failure (message in err) and the last val_acc. */
static enum dsnn_status run_tiny(struct dsnn_registry *reg, const char *model, const char *extra,
                                 int epochs, int trial_index, double *val_acc,
                                 struct dsnn_error *err)
{
    char text[1024];
    snprintf(text, sizeof(text), k_cfg, model, extra);
    struct dsnn_config_file *f = NULL;
    enum dsnn_status st = dsnn_config_file_parse(text, "tiny.cfg", &f, err);
    if (st != DSNN_OK)
        return st;
    const struct dsnn_cfg *root = dsnn_config_file_root(f);
    const struct dsnn_registry_entry *de, *ne, *me;
    if ((st = dsnn_registry_lookup(reg, DSNN_KIND_DATASET, "okdata", &de, err)) ||
        (st = dsnn_registry_lookup(reg, DSNN_KIND_NETWORK, "oknet", &ne, err)) ||
        (st = dsnn_registry_lookup(reg, DSNN_KIND_MODEL, model, &me, err))) {
        dsnn_config_file_free(f);
        return st;
    }
    struct dsnn_run_ctx ctx = {.seed = 7, .trial_index = trial_index, .epochs = epochs,
                               .n_threads = 1, .trial_dir = NULL, .log = stderr};
    struct dsnn_data data = {.ops = &de->ops.dataset};
    struct dsnn_net *net = NULL;
    void *ms = NULL;
    static struct dsnn_metrics m;
    if ((st = de->ops.dataset.open(dsnn_cfg_group(root, "dataset"), &ctx, &data.state, &data.info,
                                   err)) != DSNN_OK) {
        dsnn_config_file_free(f);
        return st;
    }
    if ((st = ne->ops.network.build(dsnn_cfg_group(root, "network"), &ctx, data.info.shape,
                                    data.info.n_classes, &net, err)) != DSNN_OK)
        goto out;
    if ((st = me->ops.model.create(dsnn_cfg_group(root, "model"), &ctx, net, &data.info, &ms,
                                   err)) != DSNN_OK)
        goto out;
    for (int ep = 0; ep < epochs; ep++) {
        dsnn_metrics_clear(&m);
        bool rewired = false;
        if ((st = me->ops.model.train_epoch(ms, &data, ep, &m, err)) ||
            (me->ops.model.end_epoch &&
             (st = me->ops.model.end_epoch(ms, &data, ep, &m, &rewired, err))) ||
            (st = me->ops.model.evaluate(ms, &data, DSNN_SPLIT_TEST, &m, err)))
            goto out;
        double lr = 0;
        CU_ASSERT(dsnn_metrics_get(&m, "learning_rate", &lr) && lr > 0);
        CU_ASSERT(dsnn_metrics_get(&m, "train_loss", &lr));
        if (!dsnn_metrics_get(&m, "val_acc", val_acc))
            *val_acc = -1;
    }
out:
    if (ms)
        me->ops.model.destroy(ms);
    dsnn_net_free(net);
    de->ops.dataset.close(data.state);
    dsnn_config_file_free(f);
    return st;
}

static void test_ok_plugins_train(void)
{
    struct dsnn_registry *reg = new_reg();
    struct dsnn_error err = {0};
    CU_ASSERT_EQUAL_FATAL(dsnn_registry_load_dir(reg, tp("ok"), &err), DSNN_OK);
    double acc = 0;
    enum dsnn_status st = run_tiny(reg, "okmodel", "", 3, 0, &acc, &err);
    if (st != DSNN_OK)
        fprintf(stderr, "\n  %s\n", err.msg);
    CU_ASSERT_EQUAL(st, DSNN_OK);
    CU_ASSERT(acc > 0.8);
    /* crash with crash_epoch = -1 never crashes; crash_trial selects the trial. */
    CU_ASSERT_EQUAL(run_tiny(reg, "crash", "crash_epoch = -1;", 2, 0, &acc, &err), DSNN_OK);
    CU_ASSERT_EQUAL(run_tiny(reg, "crash", "crash_trial = 1; crash_mode = \"abort\";", 2, 0, &acc,
                             &err),
                    DSNN_OK);
    CU_ASSERT(acc > 0.5);
    /* "error": a clean failure with a message. */
    st = run_tiny(reg, "crash", "crash_epoch = 1; crash_mode = \"error\";", 3, 0, &acc, &err);
    CU_ASSERT_EQUAL(st, DSNN_ERR_INTERNAL);
    CU_ASSERT(contains(err.msg, "epoch 1"));
    /* bad config values are reported */
    st = run_tiny(reg, "crash", "crash_mode = \"boom\";", 1, 0, &acc, &err);
    CU_ASSERT_EQUAL(st, DSNN_ERR_CONFIG);
    CU_ASSERT(contains(err.msg, "crash_mode"));
    dsnn_registry_free(reg);
}

/* Runs the crash model in a child; returns its wait status. */
static int crash_child(const char *extra)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        struct dsnn_registry *reg = NULL;
        struct dsnn_error err = {0};
        double acc;
        if (dsnn_registry_new(&reg, &err) || dsnn_registry_load_dir(reg, tp("ok"), &err))
            _exit(100);
        enum dsnn_status st = run_tiny(reg, "crash", extra, 3, 2, &acc, &err);
        _exit(st == DSNN_OK ? 0 : 101);
    }
    int status = -1;
    CU_ASSERT_EQUAL(waitpid(pid, &status, 0), pid);
    return status;
}

static void test_crash_modes(void)
{
    int s = crash_child("crash_epoch = 1;"); /* default mode segv */
    CU_ASSERT(WIFSIGNALED(s) && WTERMSIG(s) == SIGSEGV);
    s = crash_child("crash_epoch = 2; crash_mode = \"abort\"; crash_trial = 2;");
    CU_ASSERT(WIFSIGNALED(s) && WTERMSIG(s) == SIGABRT);
    s = crash_child("crash_epoch = 0; crash_mode = \"exit\"; crash_exit_code = 9;");
    CU_ASSERT(WIFEXITED(s) && WEXITSTATUS(s) == 9);
    s = crash_child("crash_epoch = 0; crash_mode = \"segv\"; crash_trial = 5;"); /* not trial 2 */
    CU_ASSERT(WIFEXITED(s) && WEXITSTATUS(s) == 0);
}

static CU_TestInfo tests[] = {
    {"load the ok test plugins", test_load_ok_dir},
    {"same file twice is a no-op", test_load_same_file_twice},
    {"bare file name is relative to cwd", test_load_relative_name},
    {"refuse bad ABI major", test_bad_abi_major},
    {"refuse newer ABI minor", test_newer_minor},
    {"refuse missing entry symbol", test_no_entry_symbol},
    {"refuse missing required op", test_missing_required_op},
    {"refuse duplicate (kind, name)", test_duplicate},
    {"refuse non-ELF .so", test_not_a_shared_object},
    {"ELF check over bytes", test_elf_check},
    {"truncated plugin refused, others load", test_load_truncated_plugin},
    {"unsafe plugin paths refused", test_unsafe_paths},
    {"missing directory", test_missing_dir},
    {"errors are collected", test_several_bad_dirs_collect_errors},
    {"lookup and suggestions", test_lookup_suggestions},
    {"kind names", test_kind_parse},
    {"descriptor checks", test_descriptor_checks},
    {"older / larger ops tables", test_ops_sizes},
    {"real plugins pass the checks", test_real_plugin_dir},
    {"ok plugins train", test_ok_plugins_train},
    {"crash plugin modes", test_crash_modes},
    CU_TEST_INFO_NULL,
};

DSNN_TEST_MAIN("registry", tests)
