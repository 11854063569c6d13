/* tests/fuzz/fuzz_corpus.c - writes the seed corpora of the harnesses: valid files made by the
 * real writers where there is one (checkpoints, model and search states, journal lines) and by
 * small encoders of the formats where the project only reads them (IDX, CIFAR, .npz).
 *
 *     fuzz_corpus OUT_DIR SOURCE_DIR     -> OUT_DIR/<harness>/seed-*
 *
 * (the .cfg files of SOURCE_DIR/configs are the configuration seeds.) tests/fuzz/run.sh runs it. */
#define _XOPEN_SOURCE 700 /* open_memstream, mkdtemp, strdup */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "checkpoint.h"
#include "fuzz_model.h"
#include "fuzz_search.h"
#include "journal.h"

static const char *g_out;
static int g_failed;

/* A growable byte buffer. */
struct buf {
    unsigned char *p;
    size_t n, cap;
};

static void put(struct buf *b, const void *data, size_t n)
{
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        if (!b->p)
            abort();
    }
    memcpy(b->p + b->n, data, n);
    b->n += n;
}
static void put8(struct buf *b, unsigned v)
{
    unsigned char c = (unsigned char)v;
    put(b, &c, 1);
}
static void put16(struct buf *b, unsigned v)
{
    put8(b, v & 0xFF);
    put8(b, v >> 8 & 0xFF);
}
static void put32(struct buf *b, uint32_t v)
{
    put16(b, v & 0xFFFF);
    put16(b, v >> 16);
}
static void put64(struct buf *b, uint64_t v)
{
    put32(b, (uint32_t)v);
    put32(b, (uint32_t)(v >> 32));
}
static void be32(struct buf *b, uint32_t v)
{
    for (int i = 3; i >= 0; i--)
        put8(b, v >> (8 * i) & 0xFF);
}

static void seed(const char *harness, const char *name, const void *data, size_t n)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", g_out, harness);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/%s/seed-%s", g_out, harness, name);
    FILE *f = fopen(path, "wb");
    if (!f || (n && fwrite(data, 1, n, f) != n) || fclose(f) != 0) {
        fprintf(stderr, "fuzz_corpus: %s: %s\n", path, strerror(errno));
        g_failed = 1;
    }
}

/* data deflated: gzip (windowBits 31) or raw (-15). */
static struct buf deflated(const void *data, size_t n, int window_bits)
{
    struct buf out = {0};
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (deflateInit2(&zs, 6, Z_DEFLATED, window_bits, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        abort();
    out.cap = deflateBound(&zs, (uLong)n) + 64;
    out.p = malloc(out.cap);
    zs.next_in = (Bytef *)data;
    zs.avail_in = (uInt)n;
    zs.next_out = out.p;
    zs.avail_out = (uInt)out.cap;
    if (!out.p || deflate(&zs, Z_FINISH) != Z_STREAM_END)
        abort();
    out.n = out.cap - zs.avail_out;
    deflateEnd(&zs);
    return out;
}

/* ---- IDX ---- */

static struct buf idx_images(int n, int rows, int cols)
{
    struct buf b = {0};
    be32(&b, 0x00000803u);
    be32(&b, (uint32_t)n);
    be32(&b, (uint32_t)rows);
    be32(&b, (uint32_t)cols);
    for (int i = 0; i < n * rows * cols; i++)
        put8(&b, (unsigned)(i * 37 % 256));
    return b;
}

static struct buf idx_labels(int n, int classes)
{
    struct buf b = {0};
    be32(&b, 0x00000801u);
    be32(&b, (uint32_t)n);
    for (int i = 0; i < n; i++)
        put8(&b, (unsigned)(i % classes));
    return b;
}

static void idx_seed(const char *name, unsigned opt, struct buf im, struct buf lb, bool gz_im,
                     bool gz_lb)
{
    struct buf a = gz_im ? deflated(im.p, im.n, 31) : im;
    struct buf l = gz_lb ? deflated(lb.p, lb.n, 31) : lb;
    struct buf s = {0};
    put8(&s, opt);
    put32(&s, (uint32_t)a.n);
    put(&s, a.p, a.n);
    put(&s, l.p, l.n);
    seed("fuzz_idx", name, s.p, s.n);
    if (gz_im)
        free(a.p);
    if (gz_lb)
        free(l.p);
    free(s.p);
}

static void idx_seeds(void)
{
    struct buf im = idx_images(6, 4, 5), lb = idx_labels(6, 3);
    idx_seed("raw", 0, im, lb, false, false);
    idx_seed("gz", 0, im, lb, true, true);
    idx_seed("gz-images", 1, im, lb, true, false);
    idx_seed("raw-none-noise", 6, im, lb, false, false);
    idx_seed("gz-labels-val", 1, im, lb, false, true);
    free(im.p);
    free(lb.p);
}

/* ---- CIFAR ---- */

static void cifar_seeds(void)
{
    for (int v = 0; v < 2; v++) {
        struct buf b = {0};
        put8(&b, v ? 1u : 0u);
        for (int r = 0; r < 3; r++) {
            if (v)
                put8(&b, (unsigned)(r % 20)); /* coarse */
            put8(&b, (unsigned)(r % 10));
            for (int i = 0; i < 3072; i++)
                put8(&b, (unsigned)((i + r * 11) % 256));
        }
        seed("fuzz_cifar", v ? "cifar100" : "cifar10", b.p, b.n);
        struct buf gz = deflated(b.p + 1, b.n - 1, 31);
        struct buf g = {0};
        put8(&g, v ? 1u | 2u | 8u : 4u | 16u);
        put(&g, gz.p, gz.n);
        seed("fuzz_cifar", v ? "cifar100-gz" : "cifar10-gz", g.p, g.n);
        free(gz.p);
        free(g.p);
        free(b.p);
    }
}

/* ---- .npz: a ZIP of .npy members ---- */

static struct buf npy(const char *descr, const char *shape, const void *data, size_t n)
{
    char head[256];
    int len = snprintf(head, sizeof head, "{'descr': '%s', 'fortran_order': False, 'shape': %s, }",
                       descr, shape);
    int total = 10 + len + 1;
    int pad = (64 - total % 64) % 64;
    struct buf b = {0};
    put(&b, "\x93NUMPY\x01\x00", 8);
    put16(&b, (unsigned)(len + pad + 1));
    put(&b, head, (size_t)len);
    for (int i = 0; i < pad; i++)
        put8(&b, ' ');
    put8(&b, '\n');
    put(&b, data, n);
    return b;
}

struct member {
    const char *name;
    struct buf data;
};

/* method 0 (stored) or 8 (deflated); zip64: sizes in a ZIP64 extra field of the central
 * directory, as numpy's force_zip64 writes them. */
static struct buf zip(const struct member *m, int n, int method, bool zip64)
{
    struct buf z = {0}, cd = {0};
    for (int i = 0; i < n; i++) {
        uint32_t crc = (uint32_t)crc32(0L, m[i].data.p, (uInt)m[i].data.n);
        struct buf comp = method == 8 ? deflated(m[i].data.p, m[i].data.n, -15) : m[i].data;
        uint32_t off = (uint32_t)z.n;
        size_t nl = strlen(m[i].name);
        put32(&z, 0x04034b50u);
        put16(&z, 20);
        put16(&z, 0);
        put16(&z, (unsigned)method);
        put32(&z, 0);
        put32(&z, crc);
        put32(&z, (uint32_t)comp.n);
        put32(&z, (uint32_t)m[i].data.n);
        put16(&z, (unsigned)nl);
        put16(&z, 0);
        put(&z, m[i].name, nl);
        put(&z, comp.p, comp.n);
        put32(&cd, 0x02014b50u);
        put16(&cd, 45);
        put16(&cd, 20);
        put16(&cd, 0);
        put16(&cd, (unsigned)method);
        put32(&cd, 0);
        put32(&cd, crc);
        put32(&cd, zip64 ? 0xFFFFFFFFu : (uint32_t)comp.n);
        put32(&cd, zip64 ? 0xFFFFFFFFu : (uint32_t)m[i].data.n);
        put16(&cd, (unsigned)nl);
        put16(&cd, zip64 ? 20 : 0);
        put16(&cd, 0);
        put16(&cd, 0);
        put16(&cd, 0);
        put32(&cd, 0);
        put32(&cd, off);
        put(&cd, m[i].name, nl);
        if (zip64) {
            put16(&cd, 1);
            put16(&cd, 16);
            put64(&cd, m[i].data.n);
            put64(&cd, comp.n);
        }
        if (method == 8)
            free(comp.p);
    }
    uint32_t cd_off = (uint32_t)z.n;
    put(&z, cd.p, cd.n);
    put32(&z, 0x06054b50u);
    put16(&z, 0);
    put16(&z, 0);
    put16(&z, (unsigned)n);
    put16(&z, (unsigned)n);
    put32(&z, (uint32_t)cd.n);
    put32(&z, cd_off);
    put16(&z, 0);
    free(cd.p);
    return z;
}

static void npz_seed(const char *name, unsigned opt, const struct member *m, int n, int method,
                     bool zip64)
{
    struct buf z = zip(m, n, method, zip64);
    struct buf s = {0};
    put8(&s, opt);
    put(&s, z.p, z.n);
    seed("fuzz_npz", name, s.p, s.n);
    free(z.p);
    free(s.p);
}

static void npz_seeds(void)
{
    float x[4 * 2 * 2 * 2];
    int64_t y[4];
    uint8_t yb[4];
    for (int i = 0; i < 16; i++)
        x[i] = (float)i / 4.0f - 1.0f;
    for (int i = 0; i < 4; i++) {
        y[i] = i % 3;
        yb[i] = (uint8_t)(i % 3);
    }
    struct member m[2] = {{"arr_0.npy", npy("<f4", "(4, 1, 2, 2)", x, sizeof(float) * 16)},
                          {"arr_1.npy", npy("<i8", "(4,)", y, sizeof y)}};
    npz_seed("stored", 0, m, 2, 0, false);
    npz_seed("deflated", 1, m, 2, 8, false);
    npz_seed("zip64", 2, m, 2, 0, true);
    free(m[0].data.p);
    free(m[1].data.p);
    struct member k[2] = {{"arr_0.npy", npy("<f4", "(4, 4)", x, sizeof(float) * 16)},
                          {"arr_1.npy", npy("|u1", "(4,)", yb, sizeof yb)}};
    npz_seed("u1-labels", 3, k, 2, 8, false);
    free(k[0].data.p);
    free(k[1].data.p);
}

/* ---- checkpoints, model states, search states ---- */

static struct buf memstream_of(bool (*fill)(int, int, int, FILE *), int a, int b, int c)
{
    struct buf out = {0};
    char *p = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&p, &n);
    if (!f)
        abort();
    bool ok = fill(a, b, c, f);
    fclose(f);
    if (!ok) {
        g_failed = 1;
        free(p);
        return out;
    }
    out.p = (unsigned char *)p;
    out.n = out.cap = n;
    return out;
}

static void model_seeds(char *dir)
{
    for (int m = 0; m < fuzz_n_models; m++)
        for (int net = 0; net < FUZZ_N_NETS; net++) {
            int epochs = (m + net) % 2;
            struct buf b = memstream_of(fuzz_model_seed, m, net, epochs);
            if (!b.p)
                continue;
            char name[128];
            snprintf(name, sizeof name, "%02d-%s-net%d", m, fuzz_models[m].plugin, net);
            seed("fuzz_model_load", name, b.p, b.n);
            if (net == 0) { /* a checkpoint of it, by the host's writer */
                struct dsnn_checkpoint_header h = {.epochs = (uint64_t)epochs,
                                                   .n_results = (uint64_t)epochs,
                                                   .trial_index = (uint64_t)m,
                                                   .config_hash = 0x1234u,
                                                   .time_total_s = 1.5};
                snprintf(h.trial_id, sizeof h.trial_id, "trial_%05d", m);
                snprintf(h.model, sizeof h.model, "%s", fuzz_models[m].plugin);
                struct dsnn_error err = {0};
                char path[4200];
                unsigned char *data = NULL;
                size_t size = 0;
                snprintf(path, sizeof path, "%s/" DSNN_CHECKPOINT_FILE, dir);
                if (dsnn_checkpoint_write(dir, &h, b.p + 2, b.n - 2, 1, &err) != DSNN_OK ||
                    dsnn_read_file_raw(path, &data, &size, &err) != DSNN_OK) {
                    fprintf(stderr, "fuzz_corpus: checkpoint: %s\n", err.msg);
                    g_failed = 1;
                } else {
                    seed("fuzz_checkpoint", name, data, size);
                }
                free(data);
                unlink(path);
            }
            free(b.p);
        }
}

static void search_seeds(void)
{
    for (int s = 0; s < fuzz_n_searches; s++)
        for (int trials = 1; trials <= 4; trials += 3)
            for (int epochs = 0; epochs <= 3; epochs += 3) {
                struct buf b = memstream_of(fuzz_search_seed, s, trials, epochs);
                if (!b.p)
                    continue;
                char name[128];
                snprintf(name, sizeof name, "%s-%dtrials-%depochs", fuzz_searches[s].plugin,
                         trials, epochs);
                seed("fuzz_search_state", name, b.p, b.n);
                free(b.p);
            }
}

/* ---- journal and JSON ---- */

static void journal_seeds(char *dir)
{
    struct dsnn_journal j = {0};
    snprintf(j.path, sizeof j.path, "%s/journal.jsonl", dir);
    dsnn_journal_add(&j, "\"event\": \"experiment_started\", \"name\": \"fuzz\", \"trials\": 2, "
                         "\"dsnn_version\": \"" DSNN_VERSION_STRING "\", \"config_hash\": "
                         "\"00000000deadbeef\", \"parallel\": 1, \"trial_threads\": 1");
    for (int t = 0; t < 2; t++) {
        dsnn_journal_addf(&j, "\"event\": \"trial_created\", \"seq\": %d, \"trial_id\": "
                              "\"trial_%05d\", \"index\": %d, \"params\": {\"model.on_perc\": "
                              "0.%d}, \"params_cfg\": \"p0 = { path = \\\"model.on_perc\\\"; "
                              "value = 0.%d; };\"", 1 + 3 * t, t, t, t + 1, t + 1);
        dsnn_journal_addf(&j, "\"event\": \"trial_started\", \"trial_id\": \"trial_%05d\", "
                              "\"attempt\": 1, \"from_epoch\": 0, \"from_line\": 0, "
                              "\"checkpoint\": false", t);
        dsnn_journal_addf(&j, "\"event\": \"trial_result\", \"seq\": %d, \"trial_id\": "
                              "\"trial_%05d\", \"epoch\": 0, \"line\": 0, \"val_acc\": 0.5, "
                              "\"decision\": \"CONTINUE\", \"metrics\": {\"val_acc\": 0.5, "
                              "\"train_loss\": 1.25, \"density_fc1\": null}", 2 + 3 * t, t);
        dsnn_journal_addf(&j, "\"event\": \"trial_finished\", \"seq\": %d, \"trial_id\": "
                              "\"trial_%05d\", \"status\": \"TERMINATED\", \"epochs\": 1, "
                              "\"error\": \"\"", 3 + 3 * t, t);
    }
    dsnn_journal_add(&j, "\"event\": \"experiment_finished\", \"failed_trials\": 0");
    unsigned char *data = NULL;
    size_t size = 0;
    struct dsnn_error err = {0};
    if (dsnn_read_file_raw(j.path, &data, &size, &err) != DSNN_OK) {
        fprintf(stderr, "fuzz_corpus: journal: %s\n", err.msg);
        g_failed = 1;
        return;
    }
    seed("fuzz_journal", "complete", data, size);
    seed("fuzz_journal", "torn", data, size - 20);
    struct buf nul = {0};
    put(&nul, data, size - 30);
    for (int i = 0; i < 64; i++)
        put8(&nul, 0);
    seed("fuzz_journal", "nul-tail", nul.p, nul.n);
    free(nul.p);
    /* the first lines are JSON seeds too */
    const unsigned char *nl = memchr(data, '\n', size);
    if (nl)
        seed("fuzz_json", "journal-line", data, (size_t)(nl - data));
    free(data);
    unlink(j.path);
    static const char *const json[] = {
        "{\"trial_id\": \"trial_00000\", \"epoch\": 3, \"val_acc\": 0.8125, \"train_loss\": "
        "0.5, \"time_this_iter_s\": 1e-3, \"done\": false, \"density\": [0.1, 0.2, null]}",
        "{\"model.on_perc\": 0.02, \"network.hidden_sizes\": [300, 100], \"model.optim_alg\": "
        "\"Adam\", \"seed\": 18446744073709551615}",
        "[1, -2.5e+10, \"esc \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u00e9 \\ud83d\\ude00\", true, "
        "false, null, {}, [], {\"a\": {\"b\": [[[]]]}}]",
        "\"nan\"",
        "-0.0",
    };
    for (size_t i = 0; i < DSNN_COUNT_OF(json); i++) {
        char name[16];
        snprintf(name, sizeof name, "%zu", i);
        seed("fuzz_json", name, json[i], strlen(json[i]));
    }
}

/* ---- configurations ---- */

static void config_seeds(const char *src)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/configs", src);
    DIR *d = opendir(path);
    struct dirent *e;
    int n = 0;
    while (d && (e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l < 5 || strcmp(e->d_name + l - 4, ".cfg") != 0)
            continue;
        char file[4400];
        unsigned char *data = NULL;
        size_t size = 0;
        struct dsnn_error err = {0};
        snprintf(file, sizeof file, "%s/%s", path, e->d_name);
        if (dsnn_read_file_raw(file, &data, &size, &err) == DSNN_OK) {
            seed("fuzz_config", e->d_name, data, size);
            n++;
        }
        free(data);
    }
    if (d)
        closedir(d);
    if (n == 0) {
        fprintf(stderr, "fuzz_corpus: no configuration in %s\n", path);
        g_failed = 1;
    }
    static const char search[] =
        "experiment = { name = \"s\"; epochs = 4; num_samples = 3; metric = \"val_loss\"; "
        "mode = \"min\"; };\n"
        "dataset = { plugin = \"synthetic\"; };\nnetwork = { plugin = \"mlp\"; hidden_sizes = "
        "[8]; };\nmodel = { plugin = \"set\"; on_perc = 0.1; };\n"
        "search = { plugin = \"grid\"; grid = { model = { on_perc = [0.1, 0.2]; "
        "weight_prune_perc = [0.3]; }; network = { hidden_sizes = ([8], [4, 4]); }; }; };\n";
    seed("fuzz_config", "grid", search, sizeof search - 1);
    static const char pbt[] =
        "experiment = { epochs = 4L; num_samples = 2; };\n"
        "dataset = { plugin = \"synthetic\"; };\nnetwork = { plugin = \"mlp\"; };\n"
        "model = { plugin = \"dense\"; };\n"
        "search = { plugin = \"pbt\"; space = { model = { learning_rate = { dist = "
        "\"loguniform\"; low = 1e-4; high = 1e-1; }; momentum = { dist = \"choice\"; values = "
        "[0.5, 0.9]; }; }; }; };\n";
    seed("fuzz_config", "pbt", pbt, sizeof pbt - 1);
}

/* ---- plugin descriptors, in fuzz_registry's encoding ---- */

static void enc_str(struct buf *b, const char *s)
{
    if (!s) {
        put8(b, 255);
        return;
    }
    size_t n = strlen(s) < 254 ? strlen(s) : 254;
    put8(b, (unsigned)n);
    put(b, s, n);
}

static void enc_keys(struct buf *b, const struct dsnn_key_spec *k, size_t n, int include_at)
{
    size_t m = n < 8 ? n : 8;
    put8(b, (unsigned)m);
    for (size_t i = 0; i < m; i++) {
        enc_str(b, k[i].name);
        put8(b, k[i].type == DSNN_KEY_INCLUDE && include_at < 0 ? DSNN_KEY_ANY
                                                                : (unsigned)k[i].type);
        enc_str(b, k[i].doc);
        enc_str(b, k[i].default_value);
        enc_str(b, k[i].def_str);
        put32(b, (uint32_t)(int32_t)k[i].def);
        put8(b, (k[i].required ? 1u : 0u) | (k[i].has_range ? 2u : 0u) | 4u |
                    (k[i].choices ? 0x80u : 0u));
        if (k[i].choices)
            for (int c = 0; c < 3; c++)
                enc_str(b, k[i].choices[0] ? k[i].choices[c > 0 && k[i].choices[1] ? 1 : 0]
                                           : NULL);
        if (k[i].type == DSNN_KEY_INCLUDE && include_at >= 0)
            put8(b, (unsigned)include_at);
    }
}

static void enc_ops(struct buf *b, const struct dsnn_component *c)
{
    put8(b, 0);
    put16(b, (unsigned)(c->ops_size ^ sizeof(struct dsnn_model_ops)));
    uint32_t nulls = 0;
    const void *const *fns = c->ops;
    for (size_t i = 0; i < c->ops_size / sizeof(void *) && i < 32; i++)
        if (!fns[i])
            nulls |= 1u << i;
    put32(b, nulls);
}

static void registry_seeds(void)
{
    for (size_t i = 0; i < fuzz_n_plugins; i++) {
        const struct dsnn_plugin *p = fuzz_plugins[i].entry();
        struct buf b = {0};
        put8(&b, i % 3 == 0); /* some against the registry of all plugins: duplicates */
        put32(&b, 0);
        put32(&b, 0);
        put32(&b, 0);
        enc_str(&b, p->name);
        /* table 0: the first included table of the first component; tables 1-3 empty */
        const struct dsnn_key_table *inc = NULL;
        for (size_t k = 0; k < p->components[0].n_keys && !inc; k++)
            if (p->components[0].keys[k].type == DSNN_KEY_INCLUDE)
                inc = p->components[0].keys[k].include;
        if (inc)
            enc_keys(&b, inc->keys, inc->n, -1);
        else
            put8(&b, 0);
        for (int t = 1; t < 4; t++)
            put8(&b, 0);
        put8(&b, (unsigned)p->n_components);
        for (size_t c = 0; c < p->n_components; c++) {
            const struct dsnn_component *comp = &p->components[c];
            put8(&b, (unsigned)comp->kind);
            enc_str(&b, comp->name);
            enc_str(&b, comp->version);
            enc_str(&b, comp->description);
            enc_ops(&b, comp);
            enc_keys(&b, comp->keys, comp->n_keys, 0);
        }
        seed("fuzz_registry", fuzz_plugins[i].name, b.p, b.n);
        free(b.p);
    }
}

/* fuzz_elf: a shared object built like a plugin, whole and cut after its headers. */
static void elf_seeds(void)
{
    FILE *f = fopen(FUZZ_ELF_SEED, "rb");
    static unsigned char so[1 << 20];
    size_t n = f ? fread(so, 1, sizeof so, f) : 0;
    if (f)
        fclose(f);
    if (n < 64 || n == sizeof so) {
        fprintf(stderr, "fuzz_corpus: %s: cannot read the ELF seed\n", FUZZ_ELF_SEED);
        g_failed = 1;
        return;
    }
    seed("fuzz_elf", "plugin.so", so, n);
    seed("fuzz_elf", "headers.so", so, n < 1024 ? n : 1024);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s OUT_DIR SOURCE_DIR\n", argv[0]);
        return 2;
    }
    g_out = argv[1];
    if (mkdir(g_out, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "fuzz_corpus: %s: %s\n", g_out, strerror(errno));
        return 1;
    }
    char dir[] = "/tmp/dsnn-fuzz-corpus-XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    idx_seeds();
    cifar_seeds();
    npz_seeds();
    model_seeds(dir);
    search_seeds();
    journal_seeds(dir);
    config_seeds(argv[2]);
    registry_seeds();
    elf_seeds();
    rmdir(dir);
    return g_failed;
}
