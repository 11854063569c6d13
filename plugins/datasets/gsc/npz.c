/* plugins/datasets/gsc/npz.c - minimal validating .npz (ZIP of .npy) reader; see npz.h. */
#include "npz.h"

#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#define ZIP_EOCD_SIG 0x06054b50u
#define ZIP64_LOCATOR_SIG 0x07064b50u
#define ZIP64_EOCD_SIG 0x06064b50u
#define ZIP_CDIR_SIG 0x02014b50u
#define ZIP_LOCAL_SIG 0x04034b50u
#define ZIP_EOCD_SIZE 22
#define ZIP_MAX_COMMENT 65535
#define NPZ_CHUNK (1u << 16)
#define NPY_HEADER_MAX (1u << 20)
#define NPZ_DEFLATE_MAX_RATIO 1032u /* the largest expansion of deflate (zlib's FAQ) */

static uint16_t le16(const unsigned char *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}
static uint32_t le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t le64(const unsigned char *p)
{
    return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

/* Reads n bytes at offset; a short read is "truncated" naming what. */
static enum dsnn_status npz_pread(struct npz *z, uint64_t offset, void *buf, size_t n,
                                  const char *what, struct dsnn_error *err)
{
    if (offset > z->file_size || n > z->file_size - offset)
        return dsnn_error_set(err, DSNN_ERR_FORMAT,
                              "%s: corrupt ZIP archive: %s at byte %" PRIu64 " (%zu bytes) lies "
                              "beyond the end of the file (%" PRIu64 " bytes)",
                              z->path, what, offset, n, z->file_size);
    if (fseeko(z->f, (off_t)offset, SEEK_SET) != 0)
        return dsnn_error_set(err, DSNN_ERR_IO, "%s: cannot seek: %s", z->path, strerror(errno));
    if (fread(buf, 1, n, z->f) != n)
        return ferror(z->f) ? dsnn_error_set(err, DSNN_ERR_IO, "%s: read error: %s", z->path,
                                             strerror(errno))
                            : dsnn_error_set(err, DSNN_ERR_FORMAT, "%s: truncated while reading "
                                             "%s", z->path, what);
    return DSNN_OK;
}

void npz_close(struct npz *z)
{
    if (!z)
        return;
    if (z->f)
        fclose(z->f);
    free(z->members);
    z->f = NULL;
    z->members = NULL;
    z->n_members = 0;
}

/* Finds the end of central directory record: the last signature whose comment length reaches
 * exactly the end of the file. */
static enum dsnn_status npz_find_eocd(struct npz *z, uint64_t *at, unsigned char eocd[22],
                                      struct dsnn_error *err)
{
    uint64_t span = z->file_size < ZIP_EOCD_SIZE + ZIP_MAX_COMMENT ? z->file_size
                                                                   : ZIP_EOCD_SIZE + ZIP_MAX_COMMENT;
    unsigned char *tail = malloc(span ? (size_t)span : 1);
    if (!tail)
        return dsnn_error_set(err, DSNN_ERR_NOMEM, "%s: out of memory", z->path);
    enum dsnn_status st = npz_pread(z, z->file_size - span, tail, (size_t)span, "the end", err);
    if (st != DSNN_OK) {
        free(tail);
        return st;
    }
    for (uint64_t i = span >= ZIP_EOCD_SIZE ? span - ZIP_EOCD_SIZE + 1 : 0; i-- > 0;) {
        if (le32(tail + i) == ZIP_EOCD_SIG && i + ZIP_EOCD_SIZE + le16(tail + i + 20) == span) {
            memcpy(eocd, tail + i, ZIP_EOCD_SIZE);
            *at = z->file_size - span + i;
            free(tail);
            return DSNN_OK;
        }
    }
    bool zipish = span >= 4 && le32(tail) == ZIP_LOCAL_SIG;
    free(tail);
    if (z->file_size == 0)
        return dsnn_error_set(err, DSNN_ERR_FORMAT, "%s: empty file, expected an .npz (ZIP) "
                              "archive", z->path);
    return dsnn_error_set(err, DSNN_ERR_FORMAT,
                          "%s: not a complete ZIP archive: no end of central directory record%s",
                          z->path,
                          zipish ? " (it starts like a ZIP file: cut short? copy it again)"
                                 : " (an .npz file is a ZIP archive, as numpy.savez writes)");
}

/* The end of central directory record (ZIP64's where the classic one says so): how many
 * members, and the central directory's size and offset, checked against the file. */
static enum dsnn_status npz_end_record(struct npz *z, uint64_t *n_entries, uint64_t *cd_size,
                                       uint64_t *cd_offset, struct dsnn_error *err)
{
    const char *path = z->path;
    unsigned char eocd[ZIP_EOCD_SIZE] = {0};
    uint64_t eocd_at = 0;
    enum dsnn_status st;
    if ((st = npz_find_eocd(z, &eocd_at, eocd, err)) != DSNN_OK)
        return st;
    *n_entries = le16(eocd + 10), *cd_size = le32(eocd + 12), *cd_offset = le32(eocd + 16);
    if (le16(eocd + 4) != 0 || le16(eocd + 6) != 0 || le16(eocd + 8) != le16(eocd + 10))
        return dsnn_error_set(err, DSNN_ERR_UNSUPPORTED,
                              "%s: a ZIP archive split over several disks is not supported", path);
    if (*n_entries == 0xFFFF || *cd_size == 0xFFFFFFFFu || *cd_offset == 0xFFFFFFFFu) {
        /* ZIP64: locator just before the end record, then the ZIP64 end record. */
        unsigned char loc[20], rec[56];
        if (eocd_at < sizeof loc)
            return dsnn_error_set(err, DSNN_ERR_FORMAT, "%s: corrupt ZIP64 archive: no ZIP64 "
                                  "end of central directory locator", path);
        if ((st = npz_pread(z, eocd_at - sizeof loc, loc, sizeof loc, "the ZIP64 locator",
                            err)) != DSNN_OK)
            return st;
        if (le32(loc) != ZIP64_LOCATOR_SIG)
            return dsnn_error_set(err, DSNN_ERR_FORMAT, "%s: corrupt ZIP64 archive: no ZIP64 "
                                  "end of central directory locator", path);
        if ((st = npz_pread(z, le64(loc + 8), rec, sizeof rec, "the ZIP64 end record", err)) !=
            DSNN_OK)
            return st;
        if (le32(rec) != ZIP64_EOCD_SIG)
            return dsnn_error_set(err, DSNN_ERR_FORMAT, "%s: corrupt ZIP64 archive: bad ZIP64 "
                                  "end of central directory record", path);
        *n_entries = le64(rec + 32);
        *cd_size = le64(rec + 40);
        *cd_offset = le64(rec + 48);
        eocd_at = le64(loc + 8);
    }
    if (*cd_offset > eocd_at || *cd_size > eocd_at - *cd_offset)
        return dsnn_error_set(err, DSNN_ERR_FORMAT,
                              "%s: corrupt ZIP archive: the central directory (%" PRIu64
                              " bytes at %" PRIu64 ") does not lie before its end record (at %"
                              PRIu64 "); the file is cut short or damaged",
                              path, *cd_size, *cd_offset, eocd_at);
    if (*n_entries == 0)
        return dsnn_error_set(err, DSNN_ERR_FORMAT, "%s: the archive holds no arrays", path);
    if (*n_entries > *cd_size / 46)
        return dsnn_error_set(err, DSNN_ERR_FORMAT, "%s: corrupt ZIP archive: %" PRIu64 " members "
                              "cannot fit in a central directory of %" PRIu64 " bytes",
                              path, *n_entries, *cd_size);
    return DSNN_OK;
}

/* ZIP64 extra field of a central directory entry: the 64-bit values of m's fields set to
 * 0xFFFFFFFF, in order. */
static void npz_zip64_extra(struct npz_member *m, const unsigned char *x, const unsigned char *xend)
{
    while (xend - x >= 4) {
        uint16_t id = le16(x), len = le16(x + 2);
        if (xend - x - 4 < len)
            break;
        if (id == 0x0001) {
            const unsigned char *v = x + 4, *vend = v + len;
            if (m->size == 0xFFFFFFFFu && vend - v >= 8) {
                m->size = le64(v);
                v += 8;
            }
            if (m->csize == 0xFFFFFFFFu && vend - v >= 8) {
                m->csize = le64(v);
                v += 8;
            }
            if (m->local_offset == 0xFFFFFFFFu && vend - v >= 8) {
                m->local_offset = le64(v);
                v += 8;
            }
        }
        x += 4 + len;
    }
}

/* The n_entries entries of the central directory cd (cd_size bytes) into z->members. */
static enum dsnn_status npz_members(struct npz *z, const unsigned char *cd, uint64_t cd_size,
                                    uint64_t n_entries, struct dsnn_error *err)
{
    uint64_t pos = 0;
    for (uint64_t k = 0; k < n_entries; k++) {
        struct npz_member *m = &z->members[k];
        if (cd_size - pos < 46 || le32(cd + pos) != ZIP_CDIR_SIG)
            return dsnn_error_set(err, DSNN_ERR_FORMAT, "%s: corrupt ZIP archive: bad central "
                                  "directory entry %" PRIu64, z->path, k);
        const unsigned char *e = cd + pos;
        uint16_t name_len = le16(e + 28), extra_len = le16(e + 30), comment_len = le16(e + 32);
        if (cd_size - pos - 46 < (uint64_t)name_len + extra_len + comment_len)
            return dsnn_error_set(err, DSNN_ERR_FORMAT, "%s: corrupt ZIP archive: central "
                                  "directory entry %" PRIu64 " runs past its end", z->path, k);
        m->flags = le16(e + 8);
        m->method = le16(e + 10);
        m->crc = le32(e + 16);
        m->csize = le32(e + 20);
        m->size = le32(e + 24);
        m->local_offset = le32(e + 42);
        size_t nl = name_len < NPZ_NAME_MAX - 1 ? name_len : NPZ_NAME_MAX - 1;
        memcpy(m->name, e + 46, nl);
        m->name[nl] = '\0';
        npz_zip64_extra(m, e + 46 + name_len, e + 46 + name_len + extra_len);
        pos += 46ull + name_len + extra_len + comment_len;
    }
    return DSNN_OK;
}

enum dsnn_status npz_open(const char *path, struct npz *z, struct dsnn_error *err)
{
    enum dsnn_status st;
    memset(z, 0, sizeof *z);
    if (strlen(path) >= sizeof z->path)
        return dsnn_error_set(err, DSNN_ERR_CONFIG, "%s: path too long", path);
    memcpy(z->path, path, strlen(path) + 1);
    struct stat sb;
    if (stat(path, &sb) != 0)
        return dsnn_error_set(err, DSNN_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    if (!S_ISREG(sb.st_mode))
        return dsnn_error_set(err, DSNN_ERR_IO, "%s: cannot read: %s", path,
                              S_ISDIR(sb.st_mode) ? "is a directory" : "not a regular file");
    z->f = fopen(path, "rb");
    if (!z->f)
        return dsnn_error_set(err, DSNN_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    z->file_size = (uint64_t)sb.st_size;
    uint64_t n_entries = 0, cd_size = 0, cd_offset = 0;
    if ((st = npz_end_record(z, &n_entries, &cd_size, &cd_offset, err)) != DSNN_OK)
        goto fail;
    z->cd_offset = cd_offset;
    unsigned char *cd = malloc(cd_size ? (size_t)cd_size : 1);
    z->members = calloc((size_t)n_entries, sizeof *z->members);
    if (!cd || !z->members)
        st = dsnn_error_set(err, DSNN_ERR_NOMEM, "%s: out of memory", path);
    else if ((st = npz_pread(z, cd_offset, cd, (size_t)cd_size, "the central directory", err)) ==
             DSNN_OK)
        st = npz_members(z, cd, cd_size, n_entries, err);
    free(cd);
    if (st != DSNN_OK)
        goto fail;
    z->n_members = (size_t)n_entries;
    return DSNN_OK;

fail:
    npz_close(z);
    return st;
}

const struct npz_member *npz_find(const struct npz *z, const char *name)
{
    size_t len = strlen(name);
    for (size_t i = 0; i < z->n_members; i++) {
        const char *n = z->members[i].name;
        if (strcmp(n, name) == 0 ||
            (strncmp(n, name, len) == 0 && strcmp(n + len, ".npy") == 0))
            return &z->members[i];
    }
    return NULL;
}

const char *npz_list(const struct npz *z, char *buf, size_t size)
{
    size_t at = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < z->n_members && at < size; i++) {
        const char *n = z->members[i].name;
        size_t l = strlen(n);
        if (l > 4 && strcmp(n + l - 4, ".npy") == 0)
            l -= 4;
        int w = snprintf(buf + at, size - at, "%s\"%.*s\"", i ? ", " : "", (int)l, n);
        if (w < 0)
            break;
        at += (size_t)w;
    }
    return buf;
}

/* ---- streaming one member ---- */

struct npz_stream {
    struct npz *z;
    const struct npz_member *m;
    bool inflating;
    z_stream zs;
    uint64_t in_left;  /* compressed bytes not yet read from the file */
    uint64_t out_pos;  /* uncompressed bytes delivered */
    uint32_t crc;
    unsigned char in[NPZ_CHUNK];
};

static enum dsnn_status npz_stream_open(struct npz *z, const struct npz_member *m,
                                        struct npz_stream *s, struct dsnn_error *err)
{
    memset(s, 0, offsetof(struct npz_stream, in));
    s->z = z;
    s->m = m;
    if (m->flags & 1u)
        return dsnn_error_set(err, DSNN_ERR_UNSUPPORTED, "%s: member %s is encrypted", z->path,
                              m->name);
    if (m->method != 0 && m->method != 8)
        return dsnn_error_set(err, DSNN_ERR_UNSUPPORTED,
                              "%s: member %s uses ZIP compression method %u; only stored (0, "
                              "numpy.savez) and deflated (8, numpy.savez_compressed) are supported",
                              z->path, m->name, m->method);
    if (m->method == 0 && m->csize != m->size)
        return dsnn_error_set(err, DSNN_ERR_FORMAT,
                              "%s: member %s is stored but its sizes differ (%" PRIu64
                              " compressed, %" PRIu64 " uncompressed)",
                              z->path, m->name, m->csize, m->size);
    /* The uncompressed size is only the directory's word: deflate cannot expand more than
     * NPZ_DEFLATE_MAX_RATIO times, so a larger claim is damage, refused before the header it
     * announces sizes anything (a claim of 8 GB in a 400-byte file) */
    if (m->method == 8 && m->size / NPZ_DEFLATE_MAX_RATIO > m->csize)
        return dsnn_error_set(err, DSNN_ERR_FORMAT,
                              "%s: corrupt ZIP archive: member %s claims %" PRIu64
                              " bytes uncompressed from %" PRIu64 " compressed, more than "
                              "deflate can expand (%u:1); the file is damaged",
                              z->path, m->name, m->size, m->csize, NPZ_DEFLATE_MAX_RATIO);
    unsigned char lh[30];
    enum dsnn_status st = npz_pread(z, m->local_offset, lh, sizeof lh, "a local header", err);
    if (st != DSNN_OK)
        return st;
    if (le32(lh) != ZIP_LOCAL_SIG)
        return dsnn_error_set(err, DSNN_ERR_FORMAT,
                              "%s: corrupt ZIP archive: no local header for member %s at byte "
                              "%" PRIu64,
                              z->path, m->name, m->local_offset);
    if (le16(lh + 8) != m->method)
        return dsnn_error_set(err, DSNN_ERR_FORMAT,
                              "%s: corrupt ZIP archive: member %s has compression method %u in "
                              "its local header and %u in the central directory",
                              z->path, m->name, le16(lh + 8), m->method);
    uint64_t data = m->local_offset + 30 + le16(lh + 26) + le16(lh + 28);
    if (data > z->cd_offset || m->csize > z->cd_offset - data)
        return dsnn_error_set(err, DSNN_ERR_FORMAT,
                              "%s: corrupt ZIP archive: the data of member %s (%" PRIu64
                              " bytes at %" PRIu64 ") run past the central directory (at %" PRIu64
                              "); the file is damaged",
                              z->path, m->name, m->csize, data, z->cd_offset);
    if (fseeko(z->f, (off_t)data, SEEK_SET) != 0)
        return dsnn_error_set(err, DSNN_ERR_IO, "%s: cannot seek: %s", z->path, strerror(errno));
    s->in_left = m->csize;
    s->crc = (uint32_t)crc32(0L, Z_NULL, 0);
    if (m->method == 8) {
        if (inflateInit2(&s->zs, -15) != Z_OK)
            return dsnn_error_set(err, DSNN_ERR_NOMEM, "%s: cannot start zlib", z->path);
        s->inflating = true;
    }
    return DSNN_OK;
}

static void npz_stream_close(struct npz_stream *s)
{
    if (s->inflating)
        inflateEnd(&s->zs);
    s->inflating = false;
}

/* Reads exactly n bytes of the member's uncompressed data; fewer is a "truncated" error. */
static enum dsnn_status npz_stream_read(struct npz_stream *s, void *buf, size_t n,
                                        const char *what, struct dsnn_error *err)
{
    struct npz *z = s->z;
    const struct npz_member *m = s->m;
    if (n > m->size - s->out_pos)
        return dsnn_error_set(err, DSNN_ERR_FORMAT,
                              "%s: member %s is truncated: %s needs %zu bytes at byte %" PRIu64
                              " but the member holds %" PRIu64,
                              z->path, m->name, what, n, s->out_pos, m->size);
    unsigned char *out = buf;
    size_t done = 0;
    if (!s->inflating) {
        while (done < n) {
            size_t want = n - done > (1u << 30) ? (1u << 30) : n - done;
            size_t got = fread(out + done, 1, want, z->f);
            if (got == 0)
                return ferror(z->f) ? dsnn_error_set(err, DSNN_ERR_IO, "%s: read error: %s",
                                                     z->path, strerror(errno))
                                    : dsnn_error_set(err, DSNN_ERR_FORMAT,
                                                     "%s: truncated in member %s", z->path,
                                                     m->name);
            done += got;
        }
        s->in_left -= n;
    } else {
        while (done < n) {
            if (s->zs.avail_in == 0 && s->in_left > 0) {
                size_t want = s->in_left < NPZ_CHUNK ? (size_t)s->in_left : NPZ_CHUNK;
                size_t got = fread(s->in, 1, want, z->f);
                if (got != want)
                    return ferror(z->f) ? dsnn_error_set(err, DSNN_ERR_IO, "%s: read error: %s",
                                                         z->path, strerror(errno))
                                        : dsnn_error_set(err, DSNN_ERR_FORMAT,
                                                         "%s: truncated in member %s", z->path,
                                                         m->name);
                s->in_left -= got;
                s->zs.next_in = s->in;
                s->zs.avail_in = (uInt)got;
            }
            size_t want = n - done > (1u << 30) ? (1u << 30) : n - done;
            s->zs.next_out = out + done;
            s->zs.avail_out = (uInt)want;
            int zr = inflate(&s->zs, Z_NO_FLUSH);
            size_t got = want - s->zs.avail_out;
            done += got;
            if (zr == Z_STREAM_END && done < n)
                return dsnn_error_set(err, DSNN_ERR_FORMAT,
                                      "%s: member %s: the deflate stream ends after %" PRIu64
                                      " bytes, the ZIP directory announces %" PRIu64,
                                      z->path, m->name, s->out_pos + done, m->size);
            if (zr != Z_OK && zr != Z_STREAM_END && !(zr == Z_BUF_ERROR && got > 0))
                return dsnn_error_set(err, DSNN_ERR_FORMAT, "%s: member %s: corrupt deflate "
                                      "data: %s", z->path, m->name,
                                      s->zs.msg ? s->zs.msg
                                                : (zr == Z_BUF_ERROR ? "unexpected end of data"
                                                                     : "zlib error"));
        }
    }
    for (size_t off = 0; off < n;) { /* crc32 takes uInt lengths */
        size_t len = n - off > (1u << 30) ? (1u << 30) : n - off;
        s->crc = (uint32_t)crc32(s->crc, out + off, (uInt)len);
        off += len;
    }
    s->out_pos += n;
    return DSNN_OK;
}

/* After the last byte: nothing may be left and the CRC must match. */
static enum dsnn_status npz_stream_finish(struct npz_stream *s, struct dsnn_error *err)
{
    const struct npz_member *m = s->m;
    if (s->out_pos != m->size)
        return dsnn_error_set(err, DSNN_ERR_FORMAT,
                              "%s: member %s: %" PRIu64 " bytes follow the array data (the "
                              "member holds %" PRIu64 " bytes, the array needs %" PRIu64 ")",
                              s->z->path, m->name, m->size - s->out_pos, m->size, s->out_pos);
    if (s->crc != m->crc)
        return dsnn_error_set(err, DSNN_ERR_FORMAT,
                              "%s: member %s: CRC-32 mismatch (computed %08" PRIx32
                              ", recorded %08" PRIx32 "): the file is damaged",
                              s->z->path, m->name, s->crc, m->crc);
    return DSNN_OK;
}

/* ---- the .npy header ---- */

struct npy_parser {
    const char *p, *end;
};

static void npy_ws(struct npy_parser *q)
{
    while (q->p < q->end && (*q->p == ' ' || *q->p == '\t' || *q->p == '\n' || *q->p == '\r'))
        q->p++;
}

static bool npy_char(struct npy_parser *q, char c)
{
    npy_ws(q);
    if (q->p < q->end && *q->p == c) {
        q->p++;
        return true;
    }
    return false;
}

/* A quoted Python string ('...' or "...", no escapes) into out. */
static bool npy_string(struct npy_parser *q, char *out, size_t size)
{
    npy_ws(q);
    if (q->p >= q->end || (*q->p != '\'' && *q->p != '"'))
        return false;
    char quote = *q->p++;
    size_t n = 0;
    while (q->p < q->end && *q->p != quote) {
        if (*q->p == '\\' || n + 1 >= size)
            return false;
        out[n++] = *q->p++;
    }
    if (q->p >= q->end)
        return false;
    q->p++;
    out[n] = '\0';
    return true;
}

static bool npy_word(struct npy_parser *q, const char *w)
{
    npy_ws(q);
    size_t n = strlen(w);
    if ((size_t)(q->end - q->p) >= n && strncmp(q->p, w, n) == 0) {
        q->p += n;
        return true;
    }
    return false;
}

/* Parses descr into kind, itemsize and byte order. */
static bool npy_descr(const char *d, struct npy_header *h)
{
    if (strlen(d) < 3)
        return false;
    char order = d[0], kind = d[1];
    if (order != '<' && order != '>' && order != '|' && order != '=')
        return false;
    char *endp = NULL;
    long size = strtol(d + 2, &endp, 10);
    if (!endp || *endp != '\0')
        return false;
    bool ok = (kind == 'f' && (size == 4 || size == 8)) ||
              ((kind == 'i' || kind == 'u') && (size == 1 || size == 2 || size == 4 || size == 8)) ||
              (kind == 'b' && size == 1);
    if (!ok)
        return false;
    h->kind = kind;
    h->itemsize = (int)size;
    h->big_endian = order == '>';
    return true;
}

/* 'shape': (d0, d1, ...) after its key; NULL, or what is wrong. */
static const char *npy_shape(struct npy_parser *q, struct npy_header *h)
{
    if (!npy_char(q, '('))
        return "'shape' is not a tuple";
    h->ndim = 0;
    while (!npy_char(q, ')')) {
        npy_ws(q);
        char *endp = NULL;
        if (q->p >= q->end || *q->p < '0' || *q->p > '9')
            return "'shape' holds something other than non-negative integers";
        errno = 0;
        unsigned long long v = strtoull(q->p, &endp, 10);
        if (errno || endp > q->end)
            return "a dimension of 'shape' is too large";
        q->p = endp;
        (void)npy_char(q, 'L'); /* a Python 2 long */
        if (h->ndim >= NPZ_MAX_DIMS)
            return "too many dimensions";
        h->shape[h->ndim++] = v;
        if (npy_char(q, ','))
            continue;
        npy_ws(q);
        if (q->p >= q->end || *q->p != ')')
            return "'shape' does not parse";
    }
    return NULL;
}

/* The header dict {'descr': '<f4', 'fortran_order': False, 'shape': (3, 1, 32, 32), } into h,
 * descr and *fortran. NULL, or what is wrong; a key that is not one of the three: NULL with
 * unknown set to it. */
static const char *npy_dict(const char *text, size_t len, struct npy_header *h, char *descr,
                            size_t descr_size, bool *fortran, char *unknown, size_t unknown_size)
{
    struct npy_parser q = {text, text + len};
    bool have_descr = false, have_order = false, have_shape = false;
    char key[64];
    unknown[0] = '\0';
    if (!npy_char(&q, '{'))
        return "the header is not a Python dict";
    while (!npy_char(&q, '}')) {
        if (!npy_string(&q, key, sizeof key) || !npy_char(&q, ':'))
            return "a key of the header dict does not parse";
        const char *bad = NULL;
        if (strcmp(key, "descr") == 0) {
            if (!npy_string(&q, descr, descr_size))
                return "'descr' is not a string (structured arrays are not supported)";
            have_descr = true;
        } else if (strcmp(key, "fortran_order") == 0) {
            if (npy_word(&q, "False"))
                *fortran = false;
            else if (npy_word(&q, "True"))
                *fortran = true;
            else
                return "'fortran_order' is not True or False";
            have_order = true;
        } else if (strcmp(key, "shape") == 0) {
            if ((bad = npy_shape(&q, h)) != NULL)
                return bad;
            have_shape = true;
        } else {
            snprintf(unknown, unknown_size, "%s", key);
            return NULL;
        }
        if (!npy_char(&q, ',')) {
            if (!npy_char(&q, '}'))
                return "the header dict does not parse";
            break;
        }
    }
    if (!have_descr || !have_order || !have_shape)
        return "the header lacks descr, fortran_order or shape";
    return NULL;
}

/* The magic, version and length of member m's .npy header, then its text (*text, malloc'd,
 * NUL-terminated, *len bytes) from stream s; h->data_offset. */
static enum dsnn_status npy_header_text(struct npz *z, const struct npz_member *m,
                                        struct npz_stream *s, struct npy_header *h, char **text,
                                        uint64_t *len, struct dsnn_error *err)
{
    unsigned char pre[12];
    enum dsnn_status st;
    if ((st = npz_stream_read(s, pre, 10, "the .npy magic and header length", err)) != DSNN_OK)
        return st;
    if (memcmp(pre, "\x93NUMPY", 6) != 0)
        return dsnn_error_set(err, DSNN_ERR_FORMAT, "%s: member %s is not a .npy array (bad "
                              "magic; expected \\x93NUMPY)", z->path, m->name);
    unsigned major = pre[6], minor = pre[7];
    uint64_t hlen;
    if (major == 1 && minor == 0) {
        hlen = le16(pre + 8);
        h->data_offset = 10 + hlen;
    } else if ((major == 2 || major == 3) && minor == 0) {
        if ((st = npz_stream_read(s, pre + 10, 2, "the .npy header length", err)) != DSNN_OK)
            return st;
        hlen = le32(pre + 8);
        h->data_offset = 12 + hlen;
    } else {
        return dsnn_error_set(err, DSNN_ERR_UNSUPPORTED,
                              "%s: member %s: .npy format version %u.%u is not supported (1.0, "
                              "2.0, 3.0 are)",
                              z->path, m->name, major, minor);
    }
    if (hlen == 0 || hlen > NPY_HEADER_MAX)
        return dsnn_error_set(err, DSNN_ERR_FORMAT, "%s: member %s: implausible .npy header "
                              "length %" PRIu64, z->path, m->name, hlen);
    *text = malloc((size_t)hlen + 1);
    if (!*text)
        return dsnn_error_set(err, DSNN_ERR_NOMEM, "%s: out of memory", z->path);
    if ((st = npz_stream_read(s, *text, (size_t)hlen, "the .npy header", err)) != DSNN_OK)
        return st;
    (*text)[hlen] = '\0';
    *len = hlen;
    return DSNN_OK;
}

/* The element type, order and size of h (parsed) against member m. */
static enum dsnn_status npy_check(const struct npz *z, const struct npz_member *m,
                                  struct npy_header *h, const char *descr, bool fortran,
                                  struct dsnn_error *err)
{
    if (!npy_descr(descr, h))
        return dsnn_error_set(err, DSNN_ERR_UNSUPPORTED,
                              "%s: member %s: element type '%s' is not supported (floats '<f4' "
                              "'<f8', integers '|u1' '<i8' ..., bool '|b1')",
                              z->path, m->name, descr);
    snprintf(h->descr, sizeof h->descr, "%s", descr);
    if (fortran && h->ndim > 1)
        return dsnn_error_set(err, DSNN_ERR_UNSUPPORTED,
                              "%s: member %s: Fortran-ordered arrays are not supported (save it "
                              "with numpy.ascontiguousarray)",
                              z->path, m->name);
    h->count = 1;
    for (int d = 0; d < h->ndim; d++) {
        if (h->shape[d] != 0 && h->count > UINT64_MAX / h->shape[d] / (uint64_t)h->itemsize)
            return dsnn_error_set(err, DSNN_ERR_FORMAT, "%s: member %s: shape too large",
                                  z->path, m->name);
        h->count *= h->shape[d];
    }
    uint64_t need = h->data_offset + h->count * (uint64_t)h->itemsize;
    if (need != m->size)
        return dsnn_error_set(err, DSNN_ERR_FORMAT,
                              "%s: member %s: the .npy header announces %" PRIu64 " elements of "
                              "%d bytes, i.e. %" PRIu64 " bytes with the header, but the member "
                              "holds %" PRIu64 " bytes (%s)",
                              z->path, m->name, h->count, h->itemsize, need, m->size,
                              need > m->size ? "truncated" : "trailing bytes");
    return DSNN_OK;
}

enum dsnn_status npz_header(struct npz *z, const struct npz_member *m, struct npy_header *h,
                            struct dsnn_error *err)
{
    struct npz_stream *s = malloc(sizeof *s);
    if (!s)
        return dsnn_error_set(err, DSNN_ERR_NOMEM, "%s: out of memory", z->path);
    char *text = NULL;
    uint64_t hlen = 0;
    memset(h, 0, sizeof *h);
    enum dsnn_status st = npz_stream_open(z, m, s, err);
    if (st == DSNN_OK)
        st = npy_header_text(z, m, s, h, &text, &hlen, err);
    if (st == DSNN_OK) {
        char descr[64] = "", unknown[64];
        bool fortran = false;
        const char *bad = npy_dict(text, (size_t)hlen, h, descr, sizeof descr, &fortran,
                                   unknown, sizeof unknown);
        if (unknown[0])
            st = dsnn_error_set(err, DSNN_ERR_FORMAT,
                                "%s: member %s: unexpected key '%s' in the .npy header (only "
                                "descr, fortran_order and shape are allowed)",
                                z->path, m->name, unknown);
        else if (bad)
            st = dsnn_error_set(err, DSNN_ERR_FORMAT, "%s: member %s: bad .npy header: %s: "
                                "%.200s", z->path, m->name, bad, text);
        else
            st = npy_check(z, m, h, descr, fortran, err);
    }
    free(text);
    npz_stream_close(s);
    free(s);
    return st;
}

/* ---- data ---- */

static void npz_swap(unsigned char *p, int size)
{
    for (int i = 0; i < size / 2; i++) {
        unsigned char t = p[i];
        p[i] = p[size - 1 - i];
        p[size - 1 - i] = t;
    }
}

/* Element i of buf (raw, in file byte order) as double / int64. */
static double npz_as_double(const unsigned char *p, const struct npy_header *h)
{
    unsigned char b[8];
    memcpy(b, p, (size_t)h->itemsize);
    if (h->big_endian)
        npz_swap(b, h->itemsize);
    switch (h->kind) {
    case 'f':
        if (h->itemsize == 4) {
            float f;
            memcpy(&f, b, 4);
            return f;
        } else {
            double d;
            memcpy(&d, b, 8);
            return d;
        }
    case 'b': return b[0] != 0;
    case 'u': {
        uint64_t v = 0;
        memcpy(&v, b, (size_t)h->itemsize); /* little-endian host */
        return (double)v;
    }
    default: {
        int64_t v = 0;
        memcpy(&v, b, (size_t)h->itemsize);
        int shift = 64 - 8 * h->itemsize;
        v = shift ? (int64_t)((uint64_t)v << shift) >> shift : v; /* sign-extend */
        return (double)v;
    }
    }
}

static int64_t npz_as_int(const unsigned char *p, const struct npy_header *h, bool *fits)
{
    unsigned char b[8];
    memcpy(b, p, (size_t)h->itemsize);
    if (h->big_endian)
        npz_swap(b, h->itemsize);
    if (h->kind == 'b')
        return b[0] != 0;
    if (h->kind == 'u') {
        uint64_t v = 0;
        memcpy(&v, b, (size_t)h->itemsize);
        if (v > (uint64_t)INT64_MAX) {
            *fits = false;
            return INT64_MAX;
        }
        return (int64_t)v;
    }
    int64_t v = 0;
    memcpy(&v, b, (size_t)h->itemsize);
    int shift = 64 - 8 * h->itemsize;
    return shift ? (int64_t)((uint64_t)v << shift) >> shift : v;
}

/* Streams the data of m in chunks, converting each element into fout (or iout). */
static enum dsnn_status npz_read_data(struct npz *z, const struct npz_member *m,
                                      const struct npy_header *h, float *fout, int64_t *iout,
                                      struct dsnn_error *err)
{
    struct npz_stream *s = malloc(sizeof *s);
    unsigned char *buf = malloc(NPZ_CHUNK);
    if (!s || !buf) {
        free(s);
        free(buf);
        return dsnn_error_set(err, DSNN_ERR_NOMEM, "%s: out of memory", z->path);
    }
    enum dsnn_status st = npz_stream_open(z, m, s, err);
    if (st == DSNN_OK) {
        /* skip the header (it was checked by npz_header) */
        uint64_t skip = h->data_offset;
        while (st == DSNN_OK && skip > 0) {
            size_t n = skip < NPZ_CHUNK ? (size_t)skip : NPZ_CHUNK;
            st = npz_stream_read(s, buf, n, "the .npy header", err);
            skip -= n;
        }
    }
    const size_t per = NPZ_CHUNK / (size_t)h->itemsize;
    bool fits = true;
    bool native_f32 = h->kind == 'f' && h->itemsize == 4 && !h->big_endian;
    for (uint64_t i = 0; st == DSNN_OK && i < h->count;) {
        size_t n = h->count - i < per ? (size_t)(h->count - i) : per;
        if (fout && native_f32) { /* straight into the destination */
            st = npz_stream_read(s, fout + i, n * 4, "the array data", err);
        } else {
            st = npz_stream_read(s, buf, n * (size_t)h->itemsize, "the array data", err);
            for (size_t k = 0; st == DSNN_OK && k < n; k++) {
                const unsigned char *p = buf + k * (size_t)h->itemsize;
                if (fout)
                    fout[i + k] = (float)npz_as_double(p, h);
                else
                    iout[i + k] = npz_as_int(p, h, &fits);
            }
        }
        i += n;
    }
    if (st == DSNN_OK && !fits)
        st = dsnn_error_set(err, DSNN_ERR_FORMAT, "%s: member %s: a value does not fit in a "
                            "64-bit signed integer", z->path, m->name);
    if (st == DSNN_OK)
        st = npz_stream_finish(s, err);
    npz_stream_close(s);
    free(s);
    free(buf);
    return st;
}

enum dsnn_status npz_read_f32(struct npz *z, const struct npz_member *m,
                              const struct npy_header *h, float *out, struct dsnn_error *err)
{
    return npz_read_data(z, m, h, out, NULL, err);
}

enum dsnn_status npz_read_i64(struct npz *z, const struct npz_member *m,
                              const struct npy_header *h, int64_t *out, struct dsnn_error *err)
{
    if (h->kind == 'f')
        return dsnn_error_set(err, DSNN_ERR_FORMAT,
                              "%s: member %s holds floats ('%s'); integer labels are expected",
                              z->path, m->name, h->descr);
    return npz_read_data(z, m, h, NULL, out, err);
}
