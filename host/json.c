/* json.c - the JSON module: string builder, writers, strict reader (see json.h). */
#include "json.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JSON_MAX_DEPTH 64

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

void dsnn_sbuf_vprintf(struct dsnn_sbuf *b, const char *fmt, va_list ap)
{
    va_list again;
    va_copy(again, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    if (n >= 0 && sbuf_reserve(b, (size_t)n)) {
        vsnprintf(b->p + b->len, (size_t)n + 1, fmt, again);
        b->len += (size_t)n;
    } else if (n < 0) {
        b->oom = true; /* an encoding error: the content is incomplete */
    }
    va_end(again);
}

void dsnn_sbuf_printf(struct dsnn_sbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    dsnn_sbuf_vprintf(b, fmt, ap);
    va_end(ap);
}

char *dsnn_strdup_vprintf(const char *fmt, va_list ap)
{
    struct dsnn_sbuf b = {0};
    dsnn_sbuf_vprintf(&b, fmt, ap);
    if (b.oom || !sbuf_reserve(&b, 0)) { /* an empty string still gets its buffer */
        dsnn_sbuf_free(&b);
        return NULL;
    }
    return b.p;
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

void dsnn_sbuf_json_number_digits(struct dsnn_sbuf *b, double v, int digits)
{
    if (!isfinite(v))
        dsnn_sbuf_puts(b, "null");
    /* range first: (long long)v of a value beyond its range is undefined behaviour */
    else if (fabs(v) < 1e15 && v == (double)(long long)v)
        dsnn_sbuf_printf(b, "%lld", (long long)v);
    else
        dsnn_sbuf_printf(b, "%.*g", digits, v);
}

void dsnn_sbuf_json_number(struct dsnn_sbuf *b, double v)
{
    dsnn_sbuf_json_number_digits(b, v, 17);
}

void dsnn_sbuf_free(struct dsnn_sbuf *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

size_t dsnn_json_string(const char *s, char *buf, size_t size)
{
    size_t len = 0;
#define PUT(c)                                                                                    \
    do {                                                                                          \
        if (len + 1 < size)                                                                       \
            buf[len] = (c);                                                                       \
        len++;                                                                                    \
    } while (0)
    PUT('"');
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            PUT('\\');
            PUT((char)c);
        } else if (c == '\n') {
            PUT('\\');
            PUT('n');
        } else if (c < 0x20) {
            char hex[8];
            snprintf(hex, sizeof hex, "\\u%04x", c);
            for (char *h = hex; *h; h++)
                PUT(*h);
        } else {
            PUT((char)c);
        }
    }
    PUT('"');
#undef PUT
    if (size)
        buf[len < size ? len : size - 1] = '\0';
    return len;
}

/* ---- the reader ---- */

struct parser {
    const char *s;
    size_t len, pos;
    bool lines; /* the text has more than one line: errors name the line too */
    struct dsnn_error *err;
};

static enum dsnn_status fail(struct parser *p, const char *what)
{
    size_t line = 1, col = p->pos + 1;
    for (size_t i = 0; i < p->pos && i < p->len; i++)
        if (p->s[i] == '\n') {
            line++;
            col = p->pos - i;
        }
    char where[64];
    if (p->lines)
        snprintf(where, sizeof where, "line %zu, column %zu", line, col);
    else
        snprintf(where, sizeof where, "column %zu", col);
    if (p->pos >= p->len)
        return dsnn_error_set(p->err, DSNN_ERR_FORMAT, "%s: %s, found the end of the %s", where,
                              what, p->lines ? "text" : "line");
    unsigned char c = (unsigned char)p->s[p->pos];
    if (c >= 0x20 && c < 0x7f)
        return dsnn_error_set(p->err, DSNN_ERR_FORMAT, "%s: %s, found '%c'", where, what, c);
    return dsnn_error_set(p->err, DSNN_ERR_FORMAT, "%s: %s, found byte 0x%02x", where, what, c);
}

static void skip_ws(struct parser *p)
{
    while (p->pos < p->len && (p->s[p->pos] == ' ' || p->s[p->pos] == '\t' ||
                               p->s[p->pos] == '\n' || p->s[p->pos] == '\r'))
        p->pos++;
}

static int hex_digit(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

static bool read_hex4(struct parser *p, unsigned *out)
{
    if (p->pos + 4 > p->len)
        return false;
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        int d = hex_digit(p->s[p->pos + (size_t)i]);
        if (d < 0)
            return false;
        v = v * 16 + (unsigned)d;
    }
    p->pos += 4;
    *out = v;
    return true;
}

static size_t put_utf8(char *dst, unsigned cp)
{
    if (cp < 0x80) {
        dst[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        dst[0] = (char)(0xc0 | cp >> 6);
        dst[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        dst[0] = (char)(0xe0 | cp >> 12);
        dst[1] = (char)(0x80 | (cp >> 6 & 0x3f));
        dst[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    dst[0] = (char)(0xf0 | cp >> 18);
    dst[1] = (char)(0x80 | (cp >> 12 & 0x3f));
    dst[2] = (char)(0x80 | (cp >> 6 & 0x3f));
    dst[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* A string at p->pos (the opening quote); *out (if out) receives the decoded copy. */
static enum dsnn_status parse_string(struct parser *p, char **out)
{
    if (p->pos >= p->len || p->s[p->pos] != '"')
        return fail(p, "expected a string");
    size_t start = ++p->pos;
    /* decoded text is never longer than the escaped text */
    char *buf = NULL;
    size_t n = 0;
    if (out) {
        size_t end = start;
        while (end < p->len && p->s[end] != '"')
            end += p->s[end] == '\\' ? 2 : 1;
        buf = malloc(end - start + 1);
        if (!buf)
            return dsnn_error_set(p->err, DSNN_ERR_NOMEM, "out of memory");
    }
    for (;;) {
        if (p->pos >= p->len) {
            free(buf);
            return fail(p, "unterminated string: expected '\"'");
        }
        unsigned char c = (unsigned char)p->s[p->pos];
        if (c == '"') {
            p->pos++;
            break;
        }
        if (c < 0x20) {
            free(buf);
            return fail(p, "control character in a string (escape it)");
        }
        if (c != '\\') {
            if (buf)
                buf[n++] = (char)c;
            p->pos++;
            continue;
        }
        p->pos++;
        if (p->pos >= p->len) {
            free(buf);
            return fail(p, "unterminated escape");
        }
        char e = p->s[p->pos++];
        char simple = e == '"' ? '"' : e == '\\' ? '\\' : e == '/' ? '/' : e == 'b' ? '\b'
                      : e == 'f' ? '\f' : e == 'n' ? '\n' : e == 'r' ? '\r' : e == 't' ? '\t'
                                                                                    : 0;
        if (simple) {
            if (buf)
                buf[n++] = simple;
            continue;
        }
        if (e != 'u') {
            p->pos--;
            free(buf);
            return fail(p, "invalid escape (expected one of \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u)");
        }
        unsigned cp = 0, lo = 0;
        if (!read_hex4(p, &cp)) {
            free(buf);
            return fail(p, "expected 4 hex digits after \\u");
        }
        if (cp >= 0xd800 && cp < 0xdc00) { /* a surrogate pair: the low half must follow */
            if (p->pos + 2 > p->len || p->s[p->pos] != '\\' || p->s[p->pos + 1] != 'u' ||
                (p->pos += 2, !read_hex4(p, &lo)) || lo < 0xdc00 || lo >= 0xe000) {
                free(buf);
                return fail(p, "expected the low surrogate \\uDC00-\\uDFFF of a pair");
            }
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
        } else if (cp >= 0xdc00 && cp < 0xe000) {
            free(buf);
            return fail(p, "lone low surrogate");
        }
        if (cp == 0) {
            free(buf);
            return fail(p, "\\u0000 is not supported");
        }
        if (buf)
            n += put_utf8(buf + n, cp); /* 6 or 12 escaped bytes -> at most 4 */
    }
    if (buf) {
        buf[n] = '\0';
        *out = buf;
    }
    return DSNN_OK;
}

static enum dsnn_status parse_number(struct parser *p, double *out)
{
    size_t start = p->pos;
    if (p->pos < p->len && p->s[p->pos] == '-')
        p->pos++;
    if (p->pos >= p->len || p->s[p->pos] < '0' || p->s[p->pos] > '9')
        return fail(p, "expected a digit");
    if (p->s[p->pos] == '0')
        p->pos++;
    else
        while (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9')
            p->pos++;
    if (p->pos < p->len && p->s[p->pos] == '.') {
        p->pos++;
        if (p->pos >= p->len || p->s[p->pos] < '0' || p->s[p->pos] > '9')
            return fail(p, "expected a digit after '.'");
        while (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9')
            p->pos++;
    }
    if (p->pos < p->len && (p->s[p->pos] == 'e' || p->s[p->pos] == 'E')) {
        p->pos++;
        if (p->pos < p->len && (p->s[p->pos] == '+' || p->s[p->pos] == '-'))
            p->pos++;
        if (p->pos >= p->len || p->s[p->pos] < '0' || p->s[p->pos] > '9')
            return fail(p, "expected a digit in the exponent");
        while (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9')
            p->pos++;
    }
    char tmp[64];
    size_t n = p->pos - start;
    if (n < sizeof tmp) {
        memcpy(tmp, p->s + start, n);
        tmp[n] = '\0';
        *out = strtod(tmp, NULL);
    } else {
        char *big = malloc(n + 1);
        if (!big)
            return dsnn_error_set(p->err, DSNN_ERR_NOMEM, "out of memory");
        memcpy(big, p->s + start, n);
        big[n] = '\0';
        *out = strtod(big, NULL);
        free(big);
    }
    return DSNN_OK;
}

static bool literal(struct parser *p, const char *word)
{
    size_t n = strlen(word);
    if (p->pos + n > p->len || memcmp(p->s + p->pos, word, n) != 0)
        return false;
    p->pos += n;
    return true;
}

static char *copy_span(const char *s, size_t n)
{
    char *c = malloc(n + 1);
    if (c) {
        memcpy(c, s, n);
        c[n] = '\0';
    }
    return c;
}

static enum dsnn_status parse_value(struct parser *p, int depth, struct dsnn_json_value *v);

/* Appends a zeroed element to v->items (*cap: its allocated length). */
static struct dsnn_json_value *add_item(struct parser *p, struct dsnn_json_value *v, size_t *cap)
{
    if (v->n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 8;
        struct dsnn_json_value *ni = realloc(v->items, ncap * sizeof *ni);
        if (!ni) {
            dsnn_error_set(p->err, DSNN_ERR_NOMEM, "out of memory");
            return NULL;
        }
        v->items = ni;
        *cap = ncap;
    }
    struct dsnn_json_value *e = &v->items[v->n++];
    memset(e, 0, sizeof *e);
    e->number = NAN;
    return e;
}

/* The elements / members of an array / object at p->pos (its '[' or '{'). */
static enum dsnn_status parse_container(struct parser *p, int depth, struct dsnn_json_value *v)
{
    if (depth >= JSON_MAX_DEPTH)
        return fail(p, "nested deeper than 64 levels");
    bool object = p->s[p->pos] == '{';
    char close = object ? '}' : ']';
    v->type = object ? DSNN_JSON_OBJECT : DSNN_JSON_ARRAY;
    p->pos++;
    skip_ws(p);
    if (p->pos < p->len && p->s[p->pos] == close) {
        p->pos++;
        return DSNN_OK;
    }
    size_t cap = 0;
    for (;;) {
        char *key = NULL;
        enum dsnn_status st;
        if (object) {
            skip_ws(p);
            if ((st = parse_string(p, &key)) != DSNN_OK)
                return st;
            skip_ws(p);
            if (p->pos >= p->len || p->s[p->pos] != ':') {
                free(key);
                return fail(p, "expected ':' after a key");
            }
            p->pos++;
        }
        struct dsnn_json_value *e = add_item(p, v, &cap);
        if (!e) {
            free(key);
            return DSNN_ERR_NOMEM;
        }
        e->key = key;
        if ((st = parse_value(p, depth + 1, e)) != DSNN_OK)
            return st;
        skip_ws(p);
        if (p->pos < p->len && p->s[p->pos] == ',') {
            p->pos++;
            continue;
        }
        if (p->pos < p->len && p->s[p->pos] == close) {
            p->pos++;
            return DSNN_OK;
        }
        return fail(p, object ? "expected ',' or '}'" : "expected ',' or ']'");
    }
}

/* The scalar or container at p->pos into v (type, number, text, items). */
static enum dsnn_status parse_value(struct parser *p, int depth, struct dsnn_json_value *v)
{
    skip_ws(p);
    v->number = NAN;
    if (p->pos >= p->len)
        return fail(p, "expected a value");
    size_t start = p->pos;
    char c = p->s[p->pos];
    enum dsnn_status st = DSNN_OK;
    if (c == '"') {
        v->type = DSNN_JSON_STRING;
        return parse_string(p, &v->text);
    }
    if (c == '-' || (c >= '0' && c <= '9')) {
        v->type = DSNN_JSON_NUMBER;
        st = parse_number(p, &v->number);
    } else if (literal(p, "true") || literal(p, "false")) {
        v->type = DSNN_JSON_BOOL;
        v->number = c == 't';
    } else if (literal(p, "null")) {
        v->type = DSNN_JSON_NULL;
    } else if (c == '[' || c == '{') {
        st = parse_container(p, depth, v);
    } else {
        return fail(p, "expected a value (string, number, true, false, null, array or object)");
    }
    if (st == DSNN_OK && !(v->text = copy_span(p->s + start, p->pos - start)))
        st = dsnn_error_set(p->err, DSNN_ERR_NOMEM, "out of memory");
    return st;
}

static enum dsnn_status parse_root(const char *text, size_t len, bool object,
                                   struct dsnn_json_value *out, struct dsnn_error *err)
{
    struct parser p = {text, len, 0, false, err};
    for (size_t i = 0; i < len && !p.lines; i++)
        if (text[i] == '\n')
            for (size_t k = i + 1; k < len && !p.lines; k++)
                p.lines = text[k] != ' ' && text[k] != '\t' && text[k] != '\r' && text[k] != '\n';
    memset(out, 0, sizeof *out);
    skip_ws(&p);
    if (object && (p.pos >= p.len || text[p.pos] != '{'))
        return fail(&p, "expected '{' (each line must be one JSON object)");
    enum dsnn_status st = parse_value(&p, 0, out);
    if (st == DSNN_OK) {
        skip_ws(&p);
        if (p.pos < p.len)
            st = fail(&p, object ? "expected the end of the line after the object"
                                 : "expected the end of the text after the value");
    }
    if (st != DSNN_OK)
        dsnn_json_free(out);
    return st;
}

enum dsnn_status dsnn_json_parse(const char *text, size_t len, struct dsnn_json_value *out,
                                 struct dsnn_error *err)
{
    return parse_root(text, len, false, out, err);
}

void dsnn_json_free(struct dsnn_json_value *v)
{
    if (!v)
        return;
    for (size_t i = 0; i < v->n; i++)
        dsnn_json_free(&v->items[i]);
    free(v->items);
    free(v->key);
    free(v->text);
    memset(v, 0, sizeof *v);
}

const struct dsnn_json_value *dsnn_json_get(const struct dsnn_json_value *obj, const char *key)
{
    if (!obj || obj->type != DSNN_JSON_OBJECT)
        return NULL;
    for (size_t i = obj->n; i-- > 0;)
        if (strcmp(obj->items[i].key, key) == 0)
            return &obj->items[i];
    return NULL;
}

const char *dsnn_json_str(const struct dsnn_json_value *obj, const char *key)
{
    const struct dsnn_json_value *v = dsnn_json_get(obj, key);
    return v && v->type == DSNN_JSON_STRING ? v->text : "";
}

bool dsnn_json_int(const struct dsnn_json_value *obj, const char *key, int64_t lo, int64_t hi,
                   int64_t def, int64_t *out)
{
    const struct dsnn_json_value *v = dsnn_json_get(obj, key);
    if (!v) {
        *out = def;
        return true;
    }
    const double d = v->type == DSNN_JSON_NUMBER ? v->number : NAN;
    if (!(d >= (double)lo && d <= (double)hi) || d != floor(d))
        return false;
    *out = (int64_t)d;
    return true;
}

double dsnn_json_num(const struct dsnn_json_value *obj, const char *key, double def)
{
    const struct dsnn_json_value *v = dsnn_json_get(obj, key);
    if (!v)
        return def;
    if (v->type == DSNN_JSON_NUMBER)
        return v->number;
    if (v->type == DSNN_JSON_NULL)
        return NAN;
    if (v->type == DSNN_JSON_STRING) { /* the legacy forms of non-finite numbers */
        if (strcmp(v->text, "nan") == 0)
            return NAN;
        if (strcmp(v->text, "inf") == 0)
            return INFINITY;
        if (strcmp(v->text, "-inf") == 0)
            return -INFINITY;
    }
    return def;
}

/* ---- one object per line ---- */

enum dsnn_status dsnn_json_parse_object(const char *text, size_t len, struct dsnn_json_object *out,
                                        struct dsnn_error *err)
{
    struct dsnn_json_value v;
    memset(out, 0, sizeof *out);
    enum dsnn_status st = parse_root(text, len, true, &v, err);
    if (st != DSNN_OK)
        return st;
    out->n = v.n;
    out->items = v.items;
    free(v.text);
    return DSNN_OK;
}

void dsnn_json_object_free(struct dsnn_json_object *o)
{
    if (!o)
        return;
    struct dsnn_json_value v = {.type = DSNN_JSON_OBJECT, .n = o->n, .items = o->items};
    dsnn_json_free(&v);
    o->items = NULL;
    o->n = 0;
}

const struct dsnn_json_value *dsnn_json_find(const struct dsnn_json_object *o, const char *key)
{
    struct dsnn_json_value v = {.type = DSNN_JSON_OBJECT, .n = o->n, .items = o->items};
    return dsnn_json_get(&v, key);
}

bool dsnn_json_number(const struct dsnn_json_object *o, const char *key, double *out)
{
    const struct dsnn_json_value *m = dsnn_json_find(o, key);
    if (!m || m->type != DSNN_JSON_NUMBER)
        return false;
    *out = m->number;
    return true;
}

const char *dsnn_json_string_at(const struct dsnn_json_object *o, const char *key)
{
    const struct dsnn_json_value *m = dsnn_json_find(o, key);
    return m && m->type == DSNN_JSON_STRING ? m->text : NULL;
}
