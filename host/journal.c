/* journal.c - the experiment journal and a small JSON reader (see journal.h). */
#include "journal.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "results.h"

/* ---- dsnn_sbuf ---- */

static bool sbuf_reserve(struct dsnn_sbuf *b, size_t extra)
{
    if (b->oom)
        return false;
    if (b->len + extra + 1 <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
        b->oom = true;
        return false;
    }
    b->p = p;
    b->cap = cap;
    return true;
}

void dsnn_sbuf_printf(struct dsnn_sbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !sbuf_reserve(b, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void dsnn_sbuf_puts(struct dsnn_sbuf *b, const char *s)
{
    size_t n = strlen(s);
    if (!sbuf_reserve(b, n))
        return;
    memcpy(b->p + b->len, s, n + 1);
    b->len += n;
}

void dsnn_sbuf_json_string(struct dsnn_sbuf *b, const char *s)
{
    size_t need = dsnn_json_string(s, NULL, 0);
    if (!sbuf_reserve(b, need))
        return;
    dsnn_json_string(s, b->p + b->len, need + 1);
    b->len += need;
}

void dsnn_sbuf_json_number(struct dsnn_sbuf *b, double v)
{
    if (isnan(v))
        dsnn_sbuf_puts(b, "\"nan\"");
    else if (isinf(v))
        dsnn_sbuf_puts(b, v > 0 ? "\"inf\"" : "\"-inf\"");
    else if (fabs(v) < 1e15 && v == (double)(long long)v)
        dsnn_sbuf_printf(b, "%lld", (long long)v);
    else
        dsnn_sbuf_printf(b, "%.17g", v);
}

void dsnn_sbuf_free(struct dsnn_sbuf *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

/* ---- JSON reader ---- */

struct jparser {
    const char *p;
    int depth;
};

static void skip_ws(struct jparser *ps)
{
    while (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\r' || *ps->p == '\n')
        ps->p++;
}

static char *parse_string(struct jparser *ps)
{
    if (*ps->p != '"')
        return NULL;
    const char *s = ++ps->p;
    size_t cap = 16, n = 0;
    char *out = malloc(cap);
    if (!out)
        return NULL;
    for (; *s && *s != '"'; s++) {
        char c = *s;
        if ((unsigned char)c < 0x20)
            goto fail;
        if (c == '\\') {
            s++;
            switch (*s) {
            case '"': c = '"'; break;
            case '\\': c = '\\'; break;
            case '/': c = '/'; break;
            case 'n': c = '\n'; break;
            case 't': c = '\t'; break;
            case 'r': c = '\r'; break;
            case 'b': c = '\b'; break;
            case 'f': c = '\f'; break;
            case 'u': {
                unsigned v = 0;
                for (int i = 1; i <= 4; i++) {
                    char h = s[i];
                    unsigned d = h >= '0' && h <= '9'   ? (unsigned)(h - '0')
                                 : h >= 'a' && h <= 'f' ? (unsigned)(h - 'a' + 10)
                                 : h >= 'A' && h <= 'F' ? (unsigned)(h - 'A' + 10)
                                                        : 99u;
                    if (d == 99u)
                        goto fail;
                    v = v * 16 + d;
                }
                c = v < 0x80 ? (char)v : '?';
                s += 4;
                break;
            }
            default: goto fail;
            }
        }
        if (n + 2 > cap) {
            char *nb = realloc(out, cap * 2);
            if (!nb)
                goto fail;
            out = nb;
            cap *= 2;
        }
        out[n++] = c;
    }
    if (*s != '"')
        goto fail;
    out[n] = '\0';
    ps->p = s + 1;
    return out;
fail:
    free(out);
    return NULL;
}

static struct dsnn_jnode *parse_value(struct jparser *ps);

static struct dsnn_jnode *parse_container(struct jparser *ps, bool object)
{
    struct dsnn_jnode *n = calloc(1, sizeof *n);
    if (!n)
        return NULL;
    n->type = object ? DSNN_JOBJECT : DSNN_JARRAY;
    if (++ps->depth > 64)
        goto fail;
    ps->p++; /* '{' or '[' */
    skip_ws(ps);
    char close = object ? '}' : ']';
    struct dsnn_jnode **tail = &n->kids;
    if (*ps->p == close) {
        ps->p++;
        ps->depth--;
        return n;
    }
    for (;;) {
        char *key = NULL;
        if (object) {
            skip_ws(ps);
            if (!(key = parse_string(ps)))
                goto fail;
            skip_ws(ps);
            if (*ps->p != ':') {
                free(key);
                goto fail;
            }
            ps->p++;
        }
        skip_ws(ps);
        struct dsnn_jnode *v = parse_value(ps);
        if (!v) {
            free(key);
            goto fail;
        }
        v->key = key;
        *tail = v;
        tail = &v->next;
        skip_ws(ps);
        if (*ps->p == ',') {
            ps->p++;
            continue;
        }
        if (*ps->p != close)
            goto fail;
        ps->p++;
        ps->depth--;
        return n;
    }
fail:
    dsnn_jnode_free(n);
    return NULL;
}

static struct dsnn_jnode *parse_value(struct jparser *ps)
{
    skip_ws(ps);
    char c = *ps->p;
    if (c == '{' || c == '[')
        return parse_container(ps, c == '{');
    struct dsnn_jnode *n = calloc(1, sizeof *n);
    if (!n)
        return NULL;
    if (c == '"') {
        n->type = DSNN_JSTRING;
        if (!(n->str = parse_string(ps)))
            goto fail;
    } else if (strncmp(ps->p, "true", 4) == 0 || strncmp(ps->p, "false", 5) == 0) {
        n->type = DSNN_JBOOL;
        n->b = c == 't';
        ps->p += n->b ? 4 : 5;
    } else if (strncmp(ps->p, "null", 4) == 0) {
        n->type = DSNN_JNULL;
        ps->p += 4;
    } else if (c == '-' || (c >= '0' && c <= '9')) {
        char *end;
        n->type = DSNN_JNUMBER;
        n->num = strtod(ps->p, &end);
        if (end == ps->p)
            goto fail;
        ps->p = end;
    } else {
        goto fail;
    }
    return n;
fail:
    free(n);
    return NULL;
}

struct dsnn_jnode *dsnn_jnode_parse(const char *text)
{
    struct jparser ps = {text, 0};
    struct dsnn_jnode *n = parse_value(&ps);
    if (!n)
        return NULL;
    skip_ws(&ps);
    if (*ps.p) {
        dsnn_jnode_free(n);
        return NULL;
    }
    return n;
}

void dsnn_jnode_free(struct dsnn_jnode *n)
{
    while (n) {
        struct dsnn_jnode *next = n->next;
        dsnn_jnode_free(n->kids);
        free(n->key);
        free(n->str);
        free(n);
        n = next;
    }
}

const struct dsnn_jnode *dsnn_jnode_get(const struct dsnn_jnode *obj, const char *key)
{
    if (!obj || obj->type != DSNN_JOBJECT)
        return NULL;
    for (const struct dsnn_jnode *k = obj->kids; k; k = k->next)
        if (k->key && strcmp(k->key, key) == 0)
            return k;
    return NULL;
}

const char *dsnn_jnode_str(const struct dsnn_jnode *obj, const char *key)
{
    const struct dsnn_jnode *v = dsnn_jnode_get(obj, key);
    return v && v->type == DSNN_JSTRING ? v->str : "";
}

double dsnn_jnode_num(const struct dsnn_jnode *obj, const char *key, double def)
{
    const struct dsnn_jnode *v = dsnn_jnode_get(obj, key);
    if (!v)
        return def;
    if (v->type == DSNN_JNUMBER)
        return v->num;
    if (v->type == DSNN_JNULL)
        return NAN;
    if (v->type == DSNN_JSTRING) {
        if (strcmp(v->str, "nan") == 0)
            return NAN;
        if (strcmp(v->str, "inf") == 0)
            return INFINITY;
        if (strcmp(v->str, "-inf") == 0)
            return -INFINITY;
    }
    return def;
}

/* ---- the journal ---- */

void dsnn_journal_add(struct dsnn_journal *j, const char *members)
{
    struct dsnn_sbuf b = {0};
    char ts[32];
    dsnn_sbuf_printf(&b, "{\"time\": \"%s\", %s}", dsnn_iso_time(ts, sizeof ts), members);
    struct dsnn_error err = {0};
    if (b.oom)
        dsnn_error_set(&err, DSNN_ERR_NOMEM, "%s: out of memory", j->path);
    else
        dsnn_append_line(j->path, b.p, &err);
    if (err.status != DSNN_OK && !j->warned) {
        fprintf(stderr, "warning: %s (the experiment goes on, but may not be resumable)\n",
                err.msg);
        j->warned = true;
    }
    dsnn_sbuf_free(&b);
}

void dsnn_journal_addf(struct dsnn_journal *j, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    char *buf = malloc((size_t)n + 1);
    if (!buf)
        return;
    va_start(ap, fmt);
    vsnprintf(buf, (size_t)n + 1, fmt, ap);
    va_end(ap);
    dsnn_journal_add(j, buf);
    free(buf);
}

static enum dsnn_status read_text(const char *path, char **out, size_t *len,
                                  struct dsnn_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return dsnn_error_set(err, errno == ENOENT ? DSNN_ERR_NOT_FOUND : DSNN_ERR_IO,
                              "%s: cannot open: %s", path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    for (size_t r; buf && (r = fread(buf + n, 1, cap - n - 1, f)) > 0;) {
        n += r;
        if (n + 1 == cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
    }
    bool bad = ferror(f);
    fclose(f);
    if (!buf)
        return dsnn_error_set(err, DSNN_ERR_NOMEM, "%s: out of memory", path);
    if (bad) {
        free(buf);
        return dsnn_error_set(err, DSNN_ERR_IO, "%s: read error", path);
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return DSNN_OK;
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
            struct dsnn_jnode *ev = dsnn_jnode_parse(p);
            if (!ev || ev->type != DSNN_JOBJECT) {
                dsnn_jnode_free(ev);
                free(text);
                dsnn_journal_log_free(log);
                return dsnn_error_set(err, DSNN_ERR_FORMAT,
                                      "%s:%zu: not a JSON object (the journal is damaged; "
                                      "remove the line to resume without it)",
                                      path, line_no);
            }
            if (log->n == cap) {
                cap = cap ? cap * 2 : 256;
                struct dsnn_jnode **ne = realloc(log->events, cap * sizeof *ne);
                if (!ne) {
                    dsnn_jnode_free(ev);
                    free(text);
                    dsnn_journal_log_free(log);
                    return dsnn_error_set(err, DSNN_ERR_NOMEM, "%s: out of memory", path);
                }
                log->events = ne;
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
        dsnn_jnode_free(log->events[i]);
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
