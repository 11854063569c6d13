/* tests/fuzz/fuzz_registry.c - the checks the registry applies to a loaded plugin's descriptor
 * (host/registry.c, dsnn_registry_add: the same checks as after dlopen, without it): ABI
 * version, descriptor size, names, kinds, ops tables and their sizes, required operations, key
 * tables and their includes, duplicates; then what `dsnn-host info` and `list` read of it.
 *
 * Input: a descriptor, decoded by struct reader below (fuzz_corpus encodes the shipped plugins'
 * descriptors the same way). Integers are XORed with the valid value, so that zero bytes read as
 * a valid descriptor; strings are a length byte (255: NULL) and the bytes. Byte 0: bit 0
 * registers into a registry that already holds every shipped plugin (duplicates). */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_plugins.h"
#include "registry.h"

#define MAX_COMPONENTS 8
#define MAX_KEYS 8
#define MAX_TABLES 4
#define MAX_OPS 1024

struct reader {
    const uint8_t *p, *end;
};

static unsigned u8(struct reader *r)
{
    return r->p < r->end ? *r->p++ : 0;
}

static uint32_t u32(struct reader *r)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++)
        v |= (uint32_t)u8(r) << (8 * i);
    return v;
}

/* Everything decoded, owned here (the registry keeps pointers into it until it is freed). */
struct arena {
    void *blocks[512];
    size_t n;
};

static void *keep(struct arena *a, void *p)
{
    if (!p || a->n == DSNN_COUNT_OF(a->blocks)) {
        free(p);
        return NULL;
    }
    return a->blocks[a->n++] = p;
}

static const char *str(struct reader *r, struct arena *a)
{
    unsigned n = u8(r);
    if (n == 255)
        return NULL;
    char *s = keep(a, calloc(1, n + 1));
    for (unsigned i = 0; i < n; i++) {
        char c = (char)u8(r);
        if (s)
            s[i] = c;
    }
    return s ? s : "";
}

static void dummy_op(void) {}

static struct dsnn_key_table tables[MAX_TABLES];

static const struct dsnn_key_spec *keys(struct reader *r, struct arena *a, size_t *n_out)
{
    unsigned flags = u8(r);
    size_t n = flags % (MAX_KEYS + 1);
    *n_out = n;
    if (flags & 0x80)
        return NULL;
    struct dsnn_key_spec *k = keep(a, calloc(n ? n : 1, sizeof *k));
    if (!k)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        k[i].name = str(r, a);
        unsigned t = u8(r);
        k[i].type = (enum dsnn_key_type)(t < 16 ? t : t << 24);
        k[i].doc = str(r, a);
        k[i].default_value = str(r, a);
        k[i].def_str = str(r, a);
        k[i].def = (double)(int32_t)u32(r);
        unsigned opt = u8(r);
        k[i].required = opt & 1;
        k[i].has_range = opt & 2;
        k[i].min = -(double)(opt >> 2);
        k[i].max = (double)(opt >> 2);
        if (opt & 0x80) {
            const char **choices = keep(a, calloc(4, sizeof *choices));
            if (choices)
                for (int c = 0; c < 3; c++)
                    choices[c] = str(r, a); /* a NULL ends the list early */
            k[i].choices = choices;
        }
        if (k[i].type == DSNN_KEY_INCLUDE) {
            unsigned w = u8(r);
            k[i].include = w < MAX_TABLES ? &tables[w] : NULL;
        }
    }
    return k;
}

static void *ops_table(struct reader *r, struct arena *a, size_t *size_out)
{
    unsigned flags = u8(r);
    size_t size = (u8(r) | (size_t)u8(r) << 8) ^ sizeof(struct dsnn_model_ops);
    if (size > MAX_OPS)
        size %= MAX_OPS;
    *size_out = size;
    if (flags & 1)
        return NULL;
    /* exactly size bytes, so that reading beyond the declared size is caught */
    unsigned char *ops = keep(a, malloc(size ? size : 1));
    if (!ops)
        return NULL;
    uint32_t nulls = u32(r);
    void (*fn)(void) = dummy_op;
    for (size_t off = 0, i = 0; off < size; off += sizeof fn, i++) {
        void (*v)(void) = nulls >> (i % 32) & 1 ? NULL : fn;
        memcpy(ops + off, &v, size - off < sizeof fn ? size - off : sizeof fn);
    }
    return ops;
}

static void query(const struct dsnn_registry *reg)
{
    char buf[512];
    struct dsnn_error err = {0};
    for (size_t i = 0; i < dsnn_registry_count(reg); i++) {
        const struct dsnn_registry_entry *e = dsnn_registry_at(reg, i);
        const struct dsnn_registry_entry *found = NULL;
        (void)dsnn_registry_lookup(reg, e->kind, e->name, &found, &err);
        (void)dsnn_registry_names(reg, e->kind, buf, sizeof buf);
        (void)dsnn_registry_suggest(reg, e->kind, "mpl");
        for (size_t k = 0; k < e->component->n_keys; k++) {
            const struct dsnn_key_spec *ks = &e->component->keys[k];
            (void)dsnn_key_default_text(ks, buf, sizeof buf);
            (void)dsnn_key_range_text(ks, buf, sizeof buf);
            (void)dsnn_registry_entry_key(e, ks->name);
        }
        (void)dsnn_registry_entry_ops(e);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct reader r = {data, data + size};
    struct arena a = {{0}, 0};
    const unsigned opt = u8(&r);
    struct dsnn_plugin p = {0};
    p.abi_major = u32(&r) ^ DSNN_ABI_MAJOR;
    p.abi_minor = u32(&r) ^ DSNN_ABI_MINOR;
    p.struct_size = u32(&r) ^ (uint32_t)sizeof(struct dsnn_plugin);
    p.name = str(&r, &a);
    for (int t = 0; t < MAX_TABLES; t++)
        tables[t].keys = keys(&r, &a, &tables[t].n);
    unsigned nc = u8(&r);
    p.n_components = nc % (MAX_COMPONENTS + 1);
    struct dsnn_component *c = keep(&a, calloc(MAX_COMPONENTS, sizeof *c));
    p.components = nc & 0x80 || !c ? NULL : c;
    for (size_t i = 0; c && i < p.n_components; i++) {
        unsigned kind = u8(&r);
        c[i].kind = (enum dsnn_kind)(kind < 8 ? kind : kind << 24);
        c[i].name = str(&r, &a);
        c[i].version = str(&r, &a);
        c[i].description = str(&r, &a);
        c[i].ops = ops_table(&r, &a, &c[i].ops_size);
        c[i].keys = keys(&r, &a, &c[i].n_keys);
    }
    struct dsnn_registry *reg = NULL;
    struct dsnn_error err = {0};
    if (dsnn_registry_new(&reg, &err) != DSNN_OK)
        abort();
    if (opt & 1)
        for (size_t i = 0; i < fuzz_n_plugins; i++)
            (void)dsnn_registry_add(reg, fuzz_plugins[i].entry(), fuzz_plugins[i].name, &err);
    if (fuzz_report("add", dsnn_registry_add(reg, &p, "fuzz.so", &err), &err) == DSNN_OK)
        query(reg);
    else if (dsnn_registry_n_errors(reg) == 0)
        abort(); /* a refusal is recorded */
    dsnn_registry_free(reg);
    for (size_t i = 0; i < a.n; i++)
        free(a.blocks[i]);
    return 0;
}
