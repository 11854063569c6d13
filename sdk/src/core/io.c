/* core/io.c - checked binary I/O, atomic writes, whole-file reads (raw or gzip). */
#include "dsnn/io.h"
#include "dsnn/gzin.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum dsnn_status dsnn_io_write(FILE *f, const void *p, size_t size, const char *what,
                               struct dsnn_error *err)
{
    if (size && fwrite(p, 1, size, f) != size)
        return dsnn_error_set(err, DSNN_ERR_IO, "cannot write %s: %s", what, strerror(errno));
    return DSNN_OK;
}

enum dsnn_status dsnn_io_read(FILE *f, void *p, size_t size, const char *what,
                              struct dsnn_error *err)
{
    if (size && fread(p, 1, size, f) != size)
        return dsnn_error_set(err, ferror(f) ? DSNN_ERR_IO : DSNN_ERR_FORMAT,
                              "cannot read %s: %s", what,
                              ferror(f) ? strerror(errno) : "file is truncated");
    return DSNN_OK;
}

enum dsnn_status dsnn_io_write_u64(FILE *f, uint64_t v, const char *what, struct dsnn_error *err)
{
    return dsnn_io_write(f, &v, sizeof v, what, err);
}

enum dsnn_status dsnn_io_read_u64(FILE *f, uint64_t *v, const char *what, struct dsnn_error *err)
{
    return dsnn_io_read(f, v, sizeof *v, what, err);
}

enum dsnn_status dsnn_io_expect_tag(FILE *f, const char tag[4], struct dsnn_error *err)
{
    char got[4];
    enum dsnn_status st = dsnn_io_read(f, got, 4, "section tag", err);
    if (st != DSNN_OK)
        return st;
    if (memcmp(got, tag, 4) != 0)
        return dsnn_error_set(err, DSNN_ERR_FORMAT,
                              "expected section '%.4s', found '%.4s' (file corrupt or from an "
                              "incompatible version)",
                              tag, got);
    return DSNN_OK;
}

enum dsnn_status dsnn_io_expect_count(FILE *f, const char tag[4], uint64_t expected,
                                      const char *what, const char *owner, struct dsnn_error *err)
{
    char desc[96];
    snprintf(desc, sizeof desc, "number of %s", what);
    uint64_t n;
    enum dsnn_status st;
    if ((st = dsnn_io_expect_tag(f, tag, err)) || (st = dsnn_io_read_u64(f, &n, desc, err)))
        return st;
    if (n != expected)
        return dsnn_error_set(err, DSNN_ERR_FORMAT, "checkpoint has %llu %s, %s has %llu",
                              (unsigned long long)n, what, owner, (unsigned long long)expected);
    return DSNN_OK;
}

enum dsnn_status dsnn_fsync_parent(const char *path, struct dsnn_error *err)
{
    const char *slash = strrchr(path, '/');
    char dir[4096];
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if ((size_t)(slash - path) >= sizeof dir)
        return dsnn_error_set(err, DSNN_ERR_IO, "%s: path too long", path);
    else
        snprintf(dir, sizeof dir, "%.*s", slash == path ? 1 : (int)(slash - path), path);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return dsnn_error_set(err, DSNN_ERR_IO, "%s: cannot open the directory: %s", dir,
                              strerror(errno));
    bool ok = fsync(fd) == 0 || errno == EINVAL; /* some file systems cannot sync directories */
    int e = errno;
    close(fd);
    return ok ? DSNN_OK
              : dsnn_error_set(err, DSNN_ERR_IO, "%s: fsync of the directory failed: %s", dir,
                               strerror(e));
}

void dsnn_io_kill_point(int fd, const void *data, size_t size)
{
    static int state; /* 0: the variable not read yet; 1: off; 2: on */
    static long at;
    static char counter[4096];
    if (state == 0) {
        const char *s = getenv("DSNN_TEST_KILL_AT_WRITE");
        char *end = NULL;
        at = s ? strtol(s, &end, 10) : 0;
        state = at > 0 && end && *end == ':' && strlen(end + 1) < sizeof counter ? 2 : 1;
        if (state == 2)
            strcpy(counter, end + 1);
    }
    if (state != 2)
        return;
    int c = open(counter, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    struct stat sb;
    bool hit = c >= 0 && write(c, "w", 1) == 1 && fstat(c, &sb) == 0 && sb.st_size == at;
    if (c >= 0)
        close(c);
    if (!hit)
        return;
    ssize_t w = write(fd, data, size / 2); /* the first half, as far as it goes */
    (void)w;
    raise(SIGKILL);
}

enum dsnn_status dsnn_write_file_atomic(const char *path, const void *data, size_t size,
                                        struct dsnn_error *err)
{
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 16);
    if (!tmp)
        return dsnn_error_set(err, DSNN_ERR_NOMEM, "out of memory");
    snprintf(tmp, plen + 16, "%s.tmp.%ld", path, (long)getpid());
    unlink(tmp); /* a stale one (or a link planted there) is removed, never followed */
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0) {
        enum dsnn_status st =
            dsnn_error_set(err, DSNN_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
        free(tmp);
        return st;
    }
    const char *p = data;
    size_t left = size;
    dsnn_io_kill_point(fd, data, size);
    while (left) {
        ssize_t w = write(fd, p, left);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            enum dsnn_status st =
                dsnn_error_set(err, DSNN_ERR_IO, "%s: write failed: %s", tmp, strerror(errno));
            close(fd);
            unlink(tmp);
            free(tmp);
            return st;
        }
        p += w;
        left -= (size_t)w;
    }
    /* Close even when fsync fails (no descriptor leak). */
    bool synced = fsync(fd) == 0;
    int sync_errno = errno;
    bool closed = close(fd) == 0;
    if (!synced || !closed) {
        enum dsnn_status st =
            dsnn_error_set(err, DSNN_ERR_IO, "%s: %s failed: %s", tmp, synced ? "close" : "fsync",
                           strerror(synced ? errno : sync_errno));
        unlink(tmp);
        free(tmp);
        return st;
    }
    if (rename(tmp, path) != 0) {
        enum dsnn_status st = dsnn_error_set(err, DSNN_ERR_IO, "%s: cannot rename to %s: %s", tmp,
                                             path, strerror(errno));
        unlink(tmp);
        free(tmp);
        return st;
    }
    free(tmp);
    return dsnn_fsync_parent(path, err); /* the rename survives a power loss */
}

bool dsnn_size_mul(size_t a, size_t b, size_t *out)
{
    if (b != 0 && a > SIZE_MAX / b) {
        *out = SIZE_MAX;
        return false;
    }
    *out = a * b;
    return true;
}

enum dsnn_status dsnn_read_file_raw(const char *path, unsigned char **data, size_t *size,
                                    struct dsnn_error *err)
{
    *data = NULL;
    *size = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return dsnn_error_set(err, errno == ENOENT ? DSNN_ERR_NOT_FOUND : DSNN_ERR_IO,
                              "%s: cannot open: %s", path, strerror(errno));
    size_t cap = 1 << 16, len = 0;
    unsigned char *buf = malloc(cap);
    if (!buf) {
        fclose(f);
        return dsnn_error_set(err, DSNN_ERR_NOMEM, "%s: out of memory", path);
    }
    for (;;) {
        if (len + 1 >= cap) { /* room for the NUL */
            unsigned char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                fclose(f);
                return dsnn_error_set(err, DSNN_ERR_NOMEM, "%s: out of memory", path);
            }
            buf = nb;
            cap *= 2;
        }
        size_t r = fread(buf + len, 1, cap - 1 - len, f);
        len += r;
        if (r == 0)
            break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return dsnn_error_set(err, DSNN_ERR_IO, "%s: read error", path);
    }
    buf[len] = '\0';
    *data = buf;
    *size = len;
    return DSNN_OK;
}

/* dsnn_read_file's reader: a missing file is DSNN_ERR_IO there, as it always was. */
static enum dsnn_status read_raw(const char *path, unsigned char **data, size_t *size,
                                 struct dsnn_error *err)
{
    enum dsnn_status st = dsnn_read_file_raw(path, data, size, err);
    if (st == DSNN_ERR_NOT_FOUND && err)
        err->status = DSNN_ERR_IO;
    return st == DSNN_ERR_NOT_FOUND ? DSNN_ERR_IO : st;
}

enum dsnn_status dsnn_read_file(const char *path, unsigned char **data, size_t *size,
                                struct dsnn_error *err)
{
    *data = NULL;
    *size = 0;
    unsigned char *raw = NULL;
    size_t rlen = 0;
    enum dsnn_status st = read_raw(path, &raw, &rlen, err);
    if (st != DSNN_OK)
        return st;
    if (rlen < 2 || raw[0] != 0x1f || raw[1] != 0x8b) {
        *data = raw;
        *size = rlen;
        return DSNN_OK;
    }
    /* gzip: one stream of every member; other bytes after the gzip data are an error
     * (dsnn/gzin.h). */
    struct dsnn_gzin *gz = NULL;
    st = dsnn_gzin_open_mem(raw, rlen, path, &gz, err);
    size_t cap = rlen * 4 + 1024, len = 0;
    unsigned char *out = st == DSNN_OK ? malloc(cap) : NULL;
    if (st == DSNN_OK && !out)
        st = dsnn_error_set(err, DSNN_ERR_NOMEM, "%s: out of memory", path);
    while (st == DSNN_OK) {
        if (len == cap) {
            unsigned char *nb = cap <= SIZE_MAX / 2 ? realloc(out, cap * 2) : NULL;
            if (!nb) {
                st = dsnn_error_set(err, DSNN_ERR_NOMEM, "%s: out of memory", path);
                break;
            }
            out = nb;
            cap *= 2;
        }
        size_t got = 0;
        st = dsnn_gzin_read(gz, out + len, cap - len, &got, err);
        len += got;
        if (st == DSNN_OK && len < cap)
            break; /* the end of the data */
    }
    dsnn_gzin_close(gz);
    free(raw);
    if (st != DSNN_OK) {
        free(out);
        return st;
    }
    *data = out;
    *size = len;
    return DSNN_OK;
}
