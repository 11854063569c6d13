/* tests/fuzz/fuzz_common.c - see fuzz_plugins.h. */
#define _XOPEN_SOURCE 700 /* mkdtemp, fmemopen, nftw */
#include "fuzz_plugins.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "registry.h"

const struct dsnn_component *fuzz_component(enum dsnn_kind kind, const char *name)
{
    for (size_t i = 0; i < fuzz_n_plugins; i++) {
        const struct dsnn_plugin *p = fuzz_plugins[i].entry();
        for (size_t k = 0; k < p->n_components; k++)
            if (p->components[k].kind == kind && strcmp(p->components[k].name, name) == 0)
                return &p->components[k];
    }
    return NULL;
}

const struct dsnn_registry *fuzz_registry(void)
{
    static struct dsnn_registry *reg;
    if (reg)
        return reg;
    struct dsnn_error err = {0};
    if (dsnn_registry_new(&reg, &err) != DSNN_OK)
        abort();
    for (size_t i = 0; i < fuzz_n_plugins; i++)
        if (dsnn_registry_add(reg, fuzz_plugins[i].entry(), fuzz_plugins[i].name, &err) !=
            DSNN_OK) {
            fprintf(stderr, "fuzz: plugin %s: %s\n", fuzz_plugins[i].name, err.msg);
            abort();
        }
    return reg;
}

static char g_dir[64];

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void rm_dir(void)
{
    if (g_dir[0])
        nftw(g_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

const char *fuzz_dir(void)
{
    if (!g_dir[0]) {
        snprintf(g_dir, sizeof g_dir, "/tmp/dsnn-fuzz-XXXXXX");
        if (!mkdtemp(g_dir))
            abort();
        atexit(rm_dir);
    }
    return g_dir;
}

char *fuzz_path(char *buf, const char *name)
{
    snprintf(buf, 4096, "%s/%s", fuzz_dir(), name);
    return buf;
}

void fuzz_write(const char *path, const void *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f) != 0)
        abort();
}

FILE *fuzz_mem_stream(const uint8_t *data, size_t size)
{
    FILE *f = size ? fmemopen((void *)data, size, "rb") : fopen("/dev/null", "rb");
    if (!f)
        abort();
    return f;
}

FILE *fuzz_null_log(void)
{
    static FILE *log;
    if (!log && !(log = fopen("/dev/null", "w")))
        abort();
    return log;
}

const struct dsnn_cfg *fuzz_config(const char *text, const char *group,
                                   struct dsnn_config_file **cf)
{
    struct dsnn_error err = {0};
    if (dsnn_config_file_parse(text, "fuzz.cfg", cf, &err) != DSNN_OK) {
        fprintf(stderr, "fuzz: the harness's configuration does not parse: %s\n%s\n", err.msg,
                text);
        abort();
    }
    return dsnn_cfg_group(dsnn_config_file_root(*cf), group);
}

enum dsnn_status fuzz_report(const char *what, enum dsnn_status st, const struct dsnn_error *err)
{
    static int verbose = -1;
    if (verbose < 0)
        verbose = getenv("DSNN_FUZZ_VERBOSE") != NULL;
    if (verbose)
        fprintf(stderr, "%s: %s\n", what, st == DSNN_OK ? "OK" : err->msg);
    return st;
}

/* See fuzz_plugins.h. */
void fuzz_run_dataset(const char *plugin, const char *text)
{
    const struct dsnn_component *c = fuzz_component(DSNN_KIND_DATASET, plugin);
    const struct dsnn_dataset_ops *ops = c->ops;
    struct dsnn_config_file *cf = NULL;
    const struct dsnn_cfg *g = fuzz_config(text, "dataset", &cf);
    struct dsnn_run_ctx ctx = {.seed = 1, .epochs = 1, .n_threads = 1, .log = fuzz_null_log()};
    struct dsnn_dataset_info info;
    struct dsnn_error err = {0};
    void *state = NULL;
    if (fuzz_report(plugin, ops->open(g, &ctx, &state, &info, &err), &err) == DSNN_OK) {
        for (int s = DSNN_SPLIT_TRAIN; s <= DSNN_SPLIT_NOISE; s++) {
            struct dsnn_batch b;
            if (ops->begin(state, (enum dsnn_split)s, 0, &err) == DSNN_OK)
                (void)ops->next_batch(state, &b, &err);
        }
        ops->close(state);
    }
    dsnn_config_file_free(cf);
}
