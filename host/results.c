/* results.c - writing the results directory (see results.h). */
#include "results.h"

#include "json.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

enum dsnn_status dsnn_mkdirs(const char *dir, struct dsnn_error *err)
{
    char buf[1024];
    if (snprintf(buf, sizeof buf, "%s", dir) >= (int)sizeof buf)
        return dsnn_error_set(err, DSNN_ERR_IO, "%s: path too long", dir);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            return dsnn_error_set(err, DSNN_ERR_IO, "%s: cannot create directory: %s", buf,
                                  strerror(errno));
        *p = '/';
    }
    if (mkdir(buf, 0755) != 0 && errno != EEXIST)
        return dsnn_error_set(err, DSNN_ERR_IO, "%s: cannot create directory: %s", buf,
                              strerror(errno));
    struct stat st;
    if (stat(buf, &st) != 0 || !S_ISDIR(st.st_mode))
        return dsnn_error_set(err, DSNN_ERR_IO, "%s: not a directory", buf);
    return DSNN_OK;
}

enum dsnn_status dsnn_append_line(const char *path, const char *line, struct dsnn_error *err)
{
    /* never through a symbolic link; a file created here gets its directory synced */
    bool created = false;
    int fd = open(path, O_WRONLY | O_APPEND | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) {
        fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        created = fd >= 0;
    }
    if (fd < 0)
        return dsnn_error_set(err, DSNN_ERR_IO, "%s: cannot open for append: %s", path,
                              errno == ELOOP ? "it is a symbolic link" : strerror(errno));
    struct stat sb;
    const off_t before = fstat(fd, &sb) == 0 ? sb.st_size : -1;
    size_t len = strlen(line);
    char *buf = malloc(len + 1);
    if (!buf) {
        close(fd);
        return dsnn_error_set(err, DSNN_ERR_NOMEM, "out of memory");
    }
    memcpy(buf, line, len);
    buf[len] = '\n';
    /* One write() of the whole line: O_APPEND keeps lines whole. */
    dsnn_io_kill_point(fd, buf, len + 1);
    ssize_t w = write(fd, buf, len + 1);
    free(buf);
    if (w != (ssize_t)(len + 1) || fdatasync(fd) != 0) {
        int e = w < 0 ? errno : w != (ssize_t)(len + 1) ? ENOSPC : errno;
        if (w > 0 && w != (ssize_t)(len + 1) && before >= 0 && ftruncate(fd, before) == 0)
            e = ENOSPC; /* a short write is rolled back: the file keeps whole lines */
        close(fd);
        return dsnn_error_set(err, DSNN_ERR_IO, "%s: write failed: %s", path, strerror(e));
    }
    if (close(fd) != 0)
        return dsnn_error_set(err, DSNN_ERR_IO, "%s: close failed: %s", path, strerror(errno));
    return created ? dsnn_fsync_parent(path, err) : DSNN_OK;
}

enum dsnn_status dsnn_copy_file(const char *from, const char *to, struct dsnn_error *err)
{
    unsigned char *buf = NULL;
    size_t len = 0;
    enum dsnn_status rs = dsnn_read_file_raw(from, &buf, &len, err);
    if (rs != DSNN_OK) {
        if (err && rs == DSNN_ERR_NOT_FOUND)
            err->status = DSNN_ERR_IO;
        return rs == DSNN_ERR_NOT_FOUND ? DSNN_ERR_IO : rs;
    }
    enum dsnn_status st = dsnn_write_file_atomic(to, buf, len, err);
    free(buf);
    return st;
}

const char *dsnn_iso_time(char *buf, size_t size)
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

enum dsnn_status dsnn_trial_files_open(struct dsnn_trial_files *tf, const char *dir,
                                       struct dsnn_error *err)
{
    memset(tf, 0, sizeof *tf);
    if (snprintf(tf->dir, sizeof tf->dir, "%s", dir) >= (int)sizeof tf->dir)
        return dsnn_error_set(err, DSNN_ERR_IO, "%s: path too long", dir);
    return dsnn_mkdirs(dir, err);
}

/* A number of progress.csv: as in result.json, but non-finite values as nan, inf, -inf (what
 * pandas reads). */
static void csv_number(double v, char *buf, size_t size)
{
    if (!isfinite(v))
        snprintf(buf, size, "%s", isnan(v) ? "nan" : v > 0 ? "inf" : "-inf");
    /* range first: (long long)v of a value beyond its range is undefined behaviour */
    else if (fabs(v) < 1e15 && v == (double)(long long)v)
        snprintf(buf, size, "%lld", (long long)v);
    else
        snprintf(buf, size, "%.8g", v);
}

enum dsnn_status dsnn_trial_files_epoch(struct dsnn_trial_files *tf, const char *trial_id,
                                        const struct dsnn_metrics *m, struct dsnn_error *err)
{
    char path[1100];
    struct dsnn_sbuf b = {0};
    dsnn_sbuf_puts(&b, "{\"trial_id\": ");
    dsnn_sbuf_json_string(&b, trial_id);
    for (size_t i = 0; i < m->n; i++) {
        dsnn_sbuf_puts(&b, ", ");
        dsnn_sbuf_json_string(&b, m->items[i].name);
        dsnn_sbuf_puts(&b, ": ");
        dsnn_sbuf_json_number_digits(&b, m->items[i].value, 8);
    }
    dsnn_sbuf_puts(&b, "}");
    if (b.oom) {
        dsnn_sbuf_free(&b);
        return dsnn_error_set(err, DSNN_ERR_NOMEM, "out of memory");
    }
    snprintf(path, sizeof path, "%s/result.json", tf->dir);
    enum dsnn_status st = dsnn_append_line(path, b.p, err);
    dsnn_sbuf_free(&b);
    if (st != DSNN_OK)
        return st;
    /* progress.csv: columns fixed by the first epoch; later metrics missing -> empty cell. */
    snprintf(path, sizeof path, "%s/progress.csv", tf->dir);
    if (!tf->have_header) {
        size_t h = 0;
        for (size_t i = 0; i < m->n && h < sizeof tf->csv_header; i++)
            h += (size_t)snprintf(tf->csv_header + h, sizeof tf->csv_header - h, "%s%s",
                                  i ? "," : "", m->items[i].name);
        h += (size_t)snprintf(tf->csv_header + h,
                              h < sizeof tf->csv_header ? sizeof tf->csv_header - h : 0,
                              ",trial_id");
        if (h >= sizeof tf->csv_header)
            return dsnn_error_set(err, DSNN_ERR_INVALID, "%s: too many metrics for CSV", path);
        if ((st = dsnn_append_line(path, tf->csv_header, err)) != DSNN_OK)
            return st;
        tf->have_header = true;
    }
    char header[sizeof tf->csv_header];
    memcpy(header, tf->csv_header, sizeof header);
    char *save = NULL;
    bool first = true;
    for (char *col = strtok_r(header, ",", &save); col; col = strtok_r(NULL, ",", &save)) {
        char cell[64] = "";
        double v;
        if (strcmp(col, "trial_id") == 0)
            snprintf(cell, sizeof cell, "%s", trial_id);
        else if (dsnn_metrics_get(m, col, &v))
            csv_number(v, cell, sizeof cell);
        dsnn_sbuf_printf(&b, "%s%s", first ? "" : ",", cell);
        first = false;
    }
    st = b.oom ? dsnn_error_set(err, DSNN_ERR_NOMEM, "out of memory")
               : dsnn_append_line(path, b.p ? b.p : "", err);
    dsnn_sbuf_free(&b);
    return st;
}

enum dsnn_status dsnn_trial_files_error(struct dsnn_trial_files *tf, const char *text,
                                        struct dsnn_error *err)
{
    char path[1100];
    snprintf(path, sizeof path, "%s/error.txt", tf->dir);
    size_t len = strlen(text);
    char *buf = malloc(len + 2);
    if (!buf)
        return dsnn_error_set(err, DSNN_ERR_NOMEM, "out of memory");
    memcpy(buf, text, len);
    buf[len] = '\n';
    enum dsnn_status st = dsnn_write_file_atomic(path, buf, len + 1, err);
    free(buf);
    return st;
}

/* The first n complete lines of path: length of that prefix into *keep and how many complete
 * lines the file has into *lines. *text (malloc'd) is the file, or NULL when it is missing. */
static enum dsnn_status read_prefix(const char *path, size_t n, char **text, size_t *keep,
                                    size_t *lines, struct dsnn_error *err)
{
    *text = NULL;
    *keep = *lines = 0;
    unsigned char *data = NULL;
    size_t len = 0;
    enum dsnn_status st = dsnn_read_file_raw(path, &data, &len, err);
    if (st == DSNN_ERR_NOT_FOUND)
        return DSNN_OK;
    if (st != DSNN_OK)
        return st;
    char *buf = (char *)data;
    for (size_t i = 0; i < len; i++)
        if (buf[i] == '\n') {
            if (*lines < n)
                *keep = i + 1;
            ++*lines;
        }
    *text = buf;
    return DSNN_OK;
}

size_t dsnn_trial_files_count(const char *dir)
{
    char path[1100];
    snprintf(path, sizeof path, "%s/result.json", dir);
    char *text;
    size_t keep, lines;
    if (read_prefix(path, 0, &text, &keep, &lines, NULL) != DSNN_OK)
        return 0;
    free(text);
    return lines;
}

/* Rewrites path with its first n lines (atomically; only when that changes it). */
static enum dsnn_status keep_lines(const char *path, size_t n, char *first_line, size_t size,
                                   struct dsnn_error *err)
{
    char *text;
    size_t keep, lines;
    enum dsnn_status st = read_prefix(path, n, &text, &keep, &lines, err);
    if (st != DSNN_OK || !text)
        return st;
    if (first_line && size) {
        const char *nl = memchr(text, '\n', keep);
        size_t l = nl ? (size_t)(nl - text) : 0;
        if (l >= size)
            l = size - 1;
        memcpy(first_line, text, l);
        first_line[l] = '\0';
    }
    struct stat sb; /* nothing to do when the file is exactly its first n lines already */
    bool whole = stat(path, &sb) == 0 && (size_t)sb.st_size == keep;
    if (n == 0)
        st = unlink(path) == 0 || errno == ENOENT
                 ? DSNN_OK
                 : dsnn_error_set(err, DSNN_ERR_IO, "%s: cannot remove: %s", path,
                                  strerror(errno));
    else if (!whole)
        st = dsnn_write_file_atomic(path, text, keep, err);
    free(text);
    return st;
}

enum dsnn_status dsnn_trial_files_resume(struct dsnn_trial_files *tf, const char *dir,
                                         size_t n_results, struct dsnn_error *err)
{
    enum dsnn_status st = dsnn_trial_files_open(tf, dir, err);
    if (st != DSNN_OK)
        return st;
    char path[1100];
    snprintf(path, sizeof path, "%s/result.json", dir);
    if ((st = keep_lines(path, n_results, NULL, 0, err)) != DSNN_OK)
        return st;
    snprintf(path, sizeof path, "%s/progress.csv", dir);
    if ((st = keep_lines(path, n_results ? n_results + 1 : 0, tf->csv_header,
                         sizeof tf->csv_header, err)) != DSNN_OK)
        return st;
    tf->have_header = n_results > 0 && tf->csv_header[0];
    return DSNN_OK;
}
