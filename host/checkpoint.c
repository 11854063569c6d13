/* checkpoint.c - epoch checkpoints of a trial (see checkpoint.h). */
#define _XOPEN_SOURCE 700 /* link */
#include "checkpoint.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char magic[8] = {'D', 'S', 'N', 'N', 'C', 'K', 'P', 'T'};
#define HEADER_SIZE (8 + 4 + 4 + 7 * 8 + 32 + 32 + 64)

uint64_t dsnn_fnv1a(uint64_t h, const void *data, size_t size)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < size; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

static void put(unsigned char **p, const void *v, size_t n)
{
    memcpy(*p, v, n);
    *p += n;
}

static void get(const unsigned char **p, void *v, size_t n)
{
    memcpy(v, *p, n);
    *p += n;
}

/* The header fields after magic, format and header size, in file order, with their sizes on
 * disk (the whole field). */
static const struct {
    size_t offset, size;
} header_fields[] = {
    {offsetof(struct dsnn_checkpoint_header, epochs), 8},
    {offsetof(struct dsnn_checkpoint_header, n_results), 8},
    {offsetof(struct dsnn_checkpoint_header, trial_index), 8},
    {offsetof(struct dsnn_checkpoint_header, config_hash), 8},
    {offsetof(struct dsnn_checkpoint_header, payload_size), 8},
    {offsetof(struct dsnn_checkpoint_header, payload_hash), 8},
    {offsetof(struct dsnn_checkpoint_header, time_total_s), 8},
    {offsetof(struct dsnn_checkpoint_header, trial_id), 32},
    {offsetof(struct dsnn_checkpoint_header, dsnn_version), 32},
    {offsetof(struct dsnn_checkpoint_header, model), 64},
};

/* Where payload_hash lies in the encoded header. */
#define HASH_AT (8 + 4 + 4 + 5 * 8)
/* Upper bounds of the header's counts (a checkpoint beyond them is damaged or forged). */
#define CKPT_MAX_EPOCHS 1000000000ull
#define CKPT_MAX_TRIALS 1000000ull

/* The hash of an encoded header (its hash field taken as 0) and the payload. */
static uint64_t ckpt_hash(const unsigned char *head, const void *payload, size_t size)
{
    unsigned char h[HEADER_SIZE];
    memcpy(h, head, HEADER_SIZE);
    memset(h + HASH_AT, 0, 8);
    return dsnn_fnv1a(dsnn_fnv1a(DSNN_FNV_INIT, h, HEADER_SIZE), payload, size);
}

static void encode(const struct dsnn_checkpoint_header *h, unsigned char *buf)
{
    uint32_t format = DSNN_CHECKPOINT_FORMAT, hsize = HEADER_SIZE;
    unsigned char *p = buf;
    put(&p, magic, 8);
    put(&p, &format, 4);
    put(&p, &hsize, 4);
    for (size_t i = 0; i < DSNN_COUNT_OF(header_fields); i++)
        put(&p, (const char *)h + header_fields[i].offset, header_fields[i].size);
}

/* Reads the fields of header_fields from p into h. */
static void decode_fields(const unsigned char *p, struct dsnn_checkpoint_header *h)
{
    for (size_t i = 0; i < DSNN_COUNT_OF(header_fields); i++)
        get(&p, (char *)h + header_fields[i].offset, header_fields[i].size);
}

/* Name of the kept copy of a checkpoint of `epochs` epochs. */
static void kept_name(char *buf, size_t size, const char *dir, uint64_t epochs)
{
    snprintf(buf, size, "%s/checkpoint.%llu.bin", dir, (unsigned long long)epochs);
}

/* Epochs of a kept file name "checkpoint.<n>.bin", or -1. */
static long long kept_epochs(const char *name)
{
    unsigned long long n;
    char tail[8];
    if (sscanf(name, "checkpoint.%llu.%7s", &n, tail) != 2 || strcmp(tail, "bin") != 0)
        return -1;
    return (long long)n;
}

/* Keeps the newest `keep` kept copies of dir, removes the older ones. */
static void prune_kept(const char *dir, int keep)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    long long found[4096];
    size_t n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        long long k = kept_epochs(e->d_name);
        if (k >= 0 && n < sizeof found / sizeof *found)
            found[n++] = k;
    }
    closedir(d);
    /* newest first */
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && found[j - 1] < found[j]; j--) {
            long long t = found[j];
            found[j] = found[j - 1];
            found[j - 1] = t;
        }
    for (size_t i = keep > 0 ? (size_t)keep : 0; i < n; i++) {
        char path[1200];
        kept_name(path, sizeof path, dir, (unsigned long long)found[i]);
        unlink(path);
    }
}

enum dsnn_status dsnn_checkpoint_write(const char *dir, struct dsnn_checkpoint_header *hdr,
                                       const void *payload, size_t size, int keep,
                                       struct dsnn_error *err)
{
    char path[1200];
    if (snprintf(path, sizeof path, "%s/" DSNN_CHECKPOINT_FILE, dir) >= (int)sizeof path)
        return dsnn_error_set(err, DSNN_ERR_IO, "%s: path too long", dir);
    hdr->payload_size = size;
    hdr->payload_hash = 0;
    memset(hdr->dsnn_version, 0, sizeof hdr->dsnn_version);
    snprintf(hdr->dsnn_version, sizeof hdr->dsnn_version, "%s", DSNN_VERSION_STRING);
    unsigned char *buf = malloc(HEADER_SIZE + size);
    if (!buf)
        return dsnn_error_set(err, DSNN_ERR_NOMEM, "%s: out of memory for the checkpoint", path);
    encode(hdr, buf);
    if (size)
        memcpy(buf + HEADER_SIZE, payload, size);
    hdr->payload_hash = ckpt_hash(buf, payload, size);
    memcpy(buf + HASH_AT, &hdr->payload_hash, 8);
    if (keep > 1) {
        /* the current one stays as checkpoint.<epochs>.bin (a hard link: no copy, and
         * checkpoint.bin never goes missing) */
        struct dsnn_checkpoint_header old;
        if (dsnn_checkpoint_read(path, &old, NULL, NULL) == DSNN_OK && old.epochs != hdr->epochs) {
            char kept[1200];
            kept_name(kept, sizeof kept, dir, old.epochs);
            unlink(kept);
            if (link(path, kept) != 0)
                fprintf(stderr, "warning: %s: cannot keep as %s: %s\n", path, kept,
                        strerror(errno));
        }
    }
    enum dsnn_status st = dsnn_write_file_atomic(path, buf, HEADER_SIZE + size, err);
    free(buf);
    if (st == DSNN_OK)
        prune_kept(dir, keep - 1);
    return st;
}

enum dsnn_status dsnn_checkpoint_read(const char *path, struct dsnn_checkpoint_header *hdr,
                                      unsigned char **payload, struct dsnn_error *err)
{
    if (payload)
        *payload = NULL;
    memset(hdr, 0, sizeof *hdr);
    FILE *f = fopen(path, "rb");
    if (!f)
        return dsnn_error_set(err, errno == ENOENT ? DSNN_ERR_NOT_FOUND : DSNN_ERR_IO,
                              "%s: cannot open the checkpoint: %s", path, strerror(errno));
    unsigned char head[HEADER_SIZE];
    enum dsnn_status st = DSNN_OK;
    unsigned char *data = NULL;
    struct stat sb;
    size_t got = fread(head, 1, sizeof head, f);
    if (got < 16 || memcmp(head, magic, 8) != 0) {
        st = dsnn_error_set(err, DSNN_ERR_FORMAT,
                            "%s: not a dsnn checkpoint (bad magic or truncated header)", path);
        goto out;
    }
    const unsigned char *p = head + 8;
    uint32_t format, hsize;
    get(&p, &format, 4);
    get(&p, &hsize, 4);
    if (format != DSNN_CHECKPOINT_FORMAT || hsize != HEADER_SIZE) {
        st = dsnn_error_set(err, DSNN_ERR_FORMAT,
                            "%s: checkpoint format %u (header %u bytes); this dsnn reads format "
                            "%u (header %u bytes)",
                            path, format, hsize, DSNN_CHECKPOINT_FORMAT, (unsigned)HEADER_SIZE);
        goto out;
    }
    if (got != HEADER_SIZE) {
        st = dsnn_error_set(err, DSNN_ERR_FORMAT, "%s: truncated checkpoint header", path);
        goto out;
    }
    decode_fields(p, hdr);
    hdr->trial_id[31] = hdr->dsnn_version[31] = hdr->model[63] = '\0';
    if (hdr->epochs > CKPT_MAX_EPOCHS || hdr->n_results > CKPT_MAX_EPOCHS ||
        hdr->trial_index > CKPT_MAX_TRIALS || !(hdr->time_total_s >= 0.0) ||
        hdr->time_total_s > 1e12) {
        st = dsnn_error_set(err, DSNN_ERR_FORMAT,
                            "%s: header fields out of range (epochs %llu, results %llu, trial "
                            "%llu, time %g s): the checkpoint is damaged",
                            path, (unsigned long long)hdr->epochs,
                            (unsigned long long)hdr->n_results,
                            (unsigned long long)hdr->trial_index, hdr->time_total_s);
        goto out;
    }
    if (fstat(fileno(f), &sb) != 0 || hdr->payload_size > (uint64_t)sb.st_size ||
        (uint64_t)sb.st_size != HEADER_SIZE + hdr->payload_size) {
        st = dsnn_error_set(err, DSNN_ERR_FORMAT,
                            "%s: the checkpoint is %lld bytes, its header says %llu: truncated or "
                            "damaged",
                            path, (long long)sb.st_size,
                            (unsigned long long)(HEADER_SIZE + hdr->payload_size));
        goto out;
    }
    data = malloc(hdr->payload_size ? hdr->payload_size : 1);
    if (!data) {
        st = dsnn_error_set(err, DSNN_ERR_NOMEM, "%s: out of memory", path);
        goto out;
    }
    if (fread(data, 1, hdr->payload_size, f) != hdr->payload_size) {
        st = dsnn_error_set(err, DSNN_ERR_FORMAT, "%s: cannot read the checkpoint payload", path);
        goto out;
    }
    if (ckpt_hash(head, data, hdr->payload_size) != hdr->payload_hash) {
        st = dsnn_error_set(err, DSNN_ERR_FORMAT,
                            "%s: checksum mismatch: the checkpoint is damaged", path);
        goto out;
    }
    if (strcmp(hdr->dsnn_version, DSNN_VERSION_STRING) != 0) {
        st = dsnn_error_set(err, DSNN_ERR_FORMAT,
                            "%s: written by dsnn %s; this is dsnn %s (a checkpoint is read by the "
                            "version that wrote it)",
                            path, hdr->dsnn_version, DSNN_VERSION_STRING);
        goto out;
    }
out:
    fclose(f);
    if (st == DSNN_OK && payload)
        *payload = data;
    else
        free(data);
    return st;
}

void dsnn_checkpoint_remove_all(const char *dir)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/" DSNN_CHECKPOINT_FILE, dir);
    unlink(path);
    prune_kept(dir, 0);
}

void dsnn_checkpoint_remove_temps(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    static const char prefix[] = DSNN_CHECKPOINT_FILE ".tmp.";
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        if (strncmp(e->d_name, prefix, sizeof prefix - 1) == 0) {
            char path[1200];
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            unlink(path);
        }
    closedir(d);
}
