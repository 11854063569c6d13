/* journal.c - the experiment journal (see journal.h). */
#include "journal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "json.h"
#include "results.h"

/* ---- the journal ---- */

enum dsnn_status dsnn_journal_add(struct dsnn_journal *j, const char *members)
{
    if (j->failed)
        return j->error.status;
    struct dsnn_sbuf b = {0};
    char ts[32];
    dsnn_sbuf_printf(&b, "{\"time\": \"%s\", %s}", dsnn_iso_time(ts, sizeof ts), members);
    struct dsnn_error err = {0};
    if (b.oom)
        dsnn_error_set(&err, DSNN_ERR_NOMEM, "%s: out of memory", j->path);
    else
        dsnn_append_line(j->path, b.p, &err);
    dsnn_sbuf_free(&b);
    if (err.status != DSNN_OK) {
        j->failed = true;
        j->error = err;
    }
    return err.status;
}

enum dsnn_status dsnn_journal_addf(struct dsnn_journal *j, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *buf = dsnn_strdup_vprintf(fmt, ap);
    va_end(ap);
    if (!buf) {
        if (!j->failed) {
            j->failed = true;
            dsnn_error_set(&j->error, DSNN_ERR_NOMEM, "%s: out of memory", j->path);
        }
        return j->error.status;
    }
    enum dsnn_status st = dsnn_journal_add(j, buf);
    free(buf);
    return st;
}

static enum dsnn_status read_text(const char *path, char **out, size_t *len,
                                  struct dsnn_error *err)
{
    return dsnn_read_file_raw(path, (unsigned char **)out, len, err);
}

enum dsnn_status dsnn_journal_load(const char *path, struct dsnn_journal_log *log,
                                   struct dsnn_error *err)
{
    memset(log, 0, sizeof *log);
    char *text;
    size_t len;
    enum dsnn_status st = read_text(path, &text, &len, err);
    if (st != DSNN_OK)
        return st;
    /* NUL bytes: a tail of them (a power loss) is dropped with the line it cuts; anything
     * after them is damage that no later line may hide behind */
    const char *z = memchr(text, '\0', len);
    if (z) {
        size_t at = (size_t)(z - text), line = 1;
        for (size_t i = 0; i < at; i++)
            line += text[i] == '\n';
        for (size_t i = at; i < len; i++)
            if (text[i] != '\0') {
                free(text);
                return dsnn_error_set(err, DSNN_ERR_FORMAT,
                                      "%s:%zu: NUL bytes inside the journal (it is damaged; "
                                      "remove them and the lines they cut to resume)",
                                      path, line);
            }
        log->nul_tail = len - at;
        log->dropped_tail = true;
        size_t keep = at;
        while (keep > 0 && text[keep - 1] != '\n')
            keep--;
        text[keep] = '\0';
    }
    size_t cap = 0, line_no = 0;
    for (char *p = text; *p;) {
        char *nl = strchr(p, '\n');
        line_no++;
        if (!nl) { /* the last line, cut short by a crash */
            log->dropped_tail = true;
            break;
        }
        *nl = '\0';
        char *q = p;
        while (*q == ' ' || *q == '\t' || *q == '\r')
            q++;
        if (*q) {
            if (log->n == cap) {
                cap = cap ? cap * 2 : 256;
                struct dsnn_json_value *ne = realloc(log->events, cap * sizeof *ne);
                if (!ne) {
                    free(text);
                    dsnn_journal_log_free(log);
                    return dsnn_error_set(err, DSNN_ERR_NOMEM, "%s: out of memory", path);
                }
                log->events = ne;
            }
            struct dsnn_json_value ev;
            struct dsnn_error jerr = {0};
            st = dsnn_json_parse(p, (size_t)(nl - p), &ev, &jerr);
            if (st == DSNN_OK && ev.type != DSNN_JSON_OBJECT) {
                dsnn_json_free(&ev);
                st = dsnn_error_set(&jerr, DSNN_ERR_FORMAT, "column %zu: not a JSON object",
                                    (size_t)(q - p) + 1);
            }
            if (st != DSNN_OK) {
                free(text);
                dsnn_journal_log_free(log);
                if (st == DSNN_ERR_NOMEM)
                    return dsnn_error_set(err, st, "%s: out of memory", path);
                return dsnn_error_set(err, DSNN_ERR_FORMAT,
                                      "%s:%zu: %s (the journal is damaged; remove the line to "
                                      "resume without it)",
                                      path, line_no, jerr.msg);
            }
            log->events[log->n++] = ev;
        }
        p = nl + 1;
    }
    free(text);
    return DSNN_OK;
}

void dsnn_journal_log_free(struct dsnn_journal_log *log)
{
    for (size_t i = 0; i < log->n; i++)
        dsnn_json_free(&log->events[i]);
    free(log->events);
    memset(log, 0, sizeof *log);
}

enum dsnn_status dsnn_journal_repair(const char *path, struct dsnn_error *err)
{
    char *text;
    size_t len;
    enum dsnn_status st = read_text(path, &text, &len, err);
    if (st != DSNN_OK)
        return st;
    size_t keep = len;
    while (keep > 0 && text[keep - 1] != '\n')
        keep--;
    free(text);
    if (keep == len)
        return DSNN_OK;
    int fd = open(path, O_WRONLY);
    if (fd < 0 || ftruncate(fd, (off_t)keep) != 0 || fsync(fd) != 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        return dsnn_error_set(err, DSNN_ERR_IO, "%s: cannot cut the incomplete last line: %s",
                              path, strerror(e));
    }
    close(fd);
    return DSNN_OK;
}
