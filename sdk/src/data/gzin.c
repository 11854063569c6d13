/* data/gzin.c - raw or gzip input as one byte stream; multi-member gzip, trailing bytes refused
 * (see dsnn/gzin.h). */
#define _POSIX_C_SOURCE 200809L /* strdup */
#include "dsnn/gzin.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define GZIN_CHUNK (1u << 17) /* bytes read from the file at a time */

struct dsnn_gzin {
    char *name;
    int fd;                   /* -1: memory input */
    unsigned char *buf;       /* fd input: GZIN_CHUNK bytes */
    const unsigned char *in;  /* unread input: in[0, avail) */
    size_t avail;
    uint64_t in_off;          /* offset in the file of in[0] */
    bool src_eof;             /* nothing more to read from the source beyond in[0, avail) */
    bool gzip, member_end;
    z_stream zs;
    bool zinit;
};

/* Reads more of the file behind the unread input (kept, moved to the start of buf). */
static enum dsnn_status refill(struct dsnn_gzin *g, struct dsnn_error *err)
{
    if (g->src_eof)
        return DSNN_OK;
    if (g->avail > 0 && g->in != g->buf)
        memmove(g->buf, g->in, g->avail);
    g->in = g->buf;
    while (g->avail < GZIN_CHUNK) {
        ssize_t r = read(g->fd, g->buf + g->avail, GZIN_CHUNK - g->avail);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return dsnn_error_set(err, DSNN_ERR_IO, "%s: read error: %s", g->name,
                                  strerror(errno));
        if (r == 0) {
            g->src_eof = true;
            break;
        }
        g->avail += (size_t)r;
        break; /* what arrived is enough to go on */
    }
    return DSNN_OK;
}

/* At least k unread bytes unless the source ends first. */
static enum dsnn_status want(struct dsnn_gzin *g, size_t k, struct dsnn_error *err)
{
    while (g->avail < k && !g->src_eof) {
        enum dsnn_status st = refill(g, err);
        if (st != DSNN_OK)
            return st;
    }
    return DSNN_OK;
}

static void consume(struct dsnn_gzin *g, size_t n)
{
    g->in += n;
    g->avail -= n;
    g->in_off += n;
}

static enum dsnn_status start(struct dsnn_gzin *g, struct dsnn_error *err)
{
    enum dsnn_status st = want(g, 2, err);
    if (st != DSNN_OK)
        return st;
    g->gzip = g->avail >= 2 && g->in[0] == 0x1f && g->in[1] == 0x8b;
    if (g->gzip) {
        if (inflateInit2(&g->zs, 15 + 16) != Z_OK) /* gzip only */
            return dsnn_error_set(err, DSNN_ERR_NOMEM, "%s: cannot start zlib", g->name);
        g->zinit = true;
    }
    return DSNN_OK;
}

static enum dsnn_status make(const char *name, int fd, struct dsnn_gzin **out,
                             struct dsnn_error *err)
{
    struct dsnn_gzin *g = calloc(1, sizeof *g);
    if (g)
        g->name = strdup(name ? name : "(input)");
    if (g && fd >= 0)
        g->buf = malloc(GZIN_CHUNK);
    if (!g || !g->name || (fd >= 0 && !g->buf)) {
        if (g) {
            free(g->name);
            free(g);
        }
        return dsnn_error_set(err, DSNN_ERR_NOMEM, "%s: out of memory", name ? name : "input");
    }
    g->fd = fd;
    g->in = g->buf;
    *out = g;
    return DSNN_OK;
}

enum dsnn_status dsnn_gzin_open(const char *path, const char *what, struct dsnn_gzin **out,
                                struct dsnn_error *err)
{
    *out = NULL;
    const char *sep = what ? " " : "", *w = what ? what : "";
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0)
        return dsnn_error_set(err, DSNN_ERR_IO, "%s: cannot open%s%s: %s", path, sep, w,
                              strerror(errno));
    struct stat sb;
    int e = fstat(fd, &sb) != 0 ? errno : 0;
    if (e != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return dsnn_error_set(err, DSNN_ERR_IO, "%s: cannot read%s%s: %s", path, sep, w,
                              e != 0                ? strerror(e)
                              : S_ISDIR(sb.st_mode) ? "is a directory"
                                                    : "not a regular file");
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0)
        fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    struct dsnn_gzin *g = NULL;
    enum dsnn_status st = make(path, fd, &g, err);
    if (st != DSNN_OK) {
        close(fd);
        return st;
    }
    if ((st = start(g, err)) != DSNN_OK) {
        dsnn_gzin_close(g);
        return st;
    }
    *out = g;
    return DSNN_OK;
}

enum dsnn_status dsnn_gzin_open_mem(const unsigned char *bytes, size_t size, const char *name,
                                    struct dsnn_gzin **out, struct dsnn_error *err)
{
    *out = NULL;
    struct dsnn_gzin *g = NULL;
    enum dsnn_status st = make(name, -1, &g, err);
    if (st != DSNN_OK)
        return st;
    g->in = bytes;
    g->avail = bytes ? size : 0;
    g->src_eof = true;
    if ((st = start(g, err)) != DSNN_OK) {
        dsnn_gzin_close(g);
        return st;
    }
    *out = g;
    return DSNN_OK;
}

bool dsnn_gzin_compressed(const struct dsnn_gzin *g)
{
    return g && g->gzip;
}

void dsnn_gzin_close(struct dsnn_gzin *g)
{
    if (!g)
        return;
    if (g->zinit)
        inflateEnd(&g->zs);
    if (g->fd >= 0)
        close(g->fd);
    free(g->buf);
    free(g->name);
    free(g);
}

static enum dsnn_status read_raw(struct dsnn_gzin *g, unsigned char *p, size_t n, size_t *got,
                                 struct dsnn_error *err)
{
    while (*got < n) {
        if (g->avail == 0) {
            if (g->src_eof)
                break;
            enum dsnn_status st = refill(g, err);
            if (st != DSNN_OK)
                return st;
            continue;
        }
        size_t k = n - *got < g->avail ? n - *got : g->avail;
        memcpy(p + *got, g->in, k);
        consume(g, k);
        *got += k;
    }
    return DSNN_OK;
}

/* After the end of a member: the end of the data, or the next member. Returns DSNN_OK with
 * g->member_end still set at the end of the data. */
static enum dsnn_status next_member(struct dsnn_gzin *g, struct dsnn_error *err)
{
    enum dsnn_status st = want(g, 2, err);
    if (st != DSNN_OK || g->avail == 0)
        return st;
    if (g->avail < 2 || g->in[0] != 0x1f || g->in[1] != 0x8b) {
        uint64_t rest = g->avail;
        if (g->fd >= 0) { /* count what is left, for the message */
            struct stat sb;
            if (fstat(g->fd, &sb) == 0 && (uint64_t)sb.st_size >= g->in_off)
                rest = (uint64_t)sb.st_size - g->in_off;
        }
        return dsnn_error_set(err, DSNN_ERR_FORMAT,
                              "%s: trailing bytes after the gzip data: %" PRIu64 " byte%s at "
                              "offset %" PRIu64 " that are not another gzip member (the file is "
                              "damaged or not what its name says)",
                              g->name, rest, rest == 1 ? "" : "s", g->in_off);
    }
    if (inflateReset(&g->zs) != Z_OK)
        return dsnn_error_set(err, DSNN_ERR_INTERNAL, "%s: zlib reset failed", g->name);
    g->member_end = false;
    return DSNN_OK;
}

static enum dsnn_status read_gzip(struct dsnn_gzin *g, unsigned char *p, size_t n, size_t *got,
                                  struct dsnn_error *err)
{
    while (*got < n) {
        enum dsnn_status st;
        if (g->member_end) {
            if ((st = next_member(g, err)) != DSNN_OK)
                return st;
            if (g->member_end)
                break; /* the end of the data */
        }
        if (g->avail == 0 && (st = refill(g, err)) != DSNN_OK)
            return st;
        size_t out = n - *got > (1u << 30) ? (1u << 30) : n - *got;
        size_t in = g->avail > (1u << 30) ? (1u << 30) : g->avail;
        g->zs.next_in = (Bytef *)(uintptr_t)g->in;
        g->zs.avail_in = (uInt)in;
        g->zs.next_out = p + *got;
        g->zs.avail_out = (uInt)out;
        int zr = inflate(&g->zs, Z_NO_FLUSH);
        size_t used = in - g->zs.avail_in, made = out - g->zs.avail_out;
        consume(g, used);
        *got += made;
        if (zr == Z_STREAM_END) {
            g->member_end = true;
            continue;
        }
        if (zr == Z_MEM_ERROR)
            return dsnn_error_set(err, DSNN_ERR_NOMEM, "%s: out of memory while decompressing",
                                  g->name);
        if (zr != Z_OK && zr != Z_BUF_ERROR)
            return dsnn_error_set(err, DSNN_ERR_FORMAT, "%s: corrupt gzip file: %s", g->name,
                                  g->zs.msg ? g->zs.msg : "inflate failed");
        if (used == 0 && made == 0 && g->avail == 0 && g->src_eof)
            return dsnn_error_set(err, DSNN_ERR_FORMAT,
                                  "%s: corrupt gzip file: truncated: the compressed stream ends "
                                  "early (the file is cut short; download it again)",
                                  g->name);
    }
    return DSNN_OK;
}

enum dsnn_status dsnn_gzin_read(struct dsnn_gzin *g, void *buf, size_t n, size_t *got,
                                struct dsnn_error *err)
{
    *got = 0;
    if (!g || (!buf && n > 0))
        return dsnn_error_set(err, DSNN_ERR_INVALID, "dsnn_gzin_read: no reader or buffer");
    return g->gzip ? read_gzip(g, buf, n, got, err) : read_raw(g, buf, n, got, err);
}
