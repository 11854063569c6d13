/* json.c - a small, strict JSON reader (see json.h). */
#include "json.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define JSON_MAX_DEPTH 64

struct parser {
    const char *s;
    size_t len, pos;
    struct dsnn_error *err;
};

static enum dsnn_status fail(struct parser *p, const char *what)
{
    if (p->pos >= p->len)
        return dsnn_error_set(p->err, DSNN_ERR_FORMAT, "column %zu: %s, found the end of the line",
                              p->pos + 1, what);
    unsigned char c = (unsigned char)p->s[p->pos];
    if (c >= 0x20 && c < 0x7f)
        return dsnn_error_set(p->err, DSNN_ERR_FORMAT, "column %zu: %s, found '%c'", p->pos + 1,
                              what, c);
    return dsnn_error_set(p->err, DSNN_ERR_FORMAT, "column %zu: %s, found byte 0x%02x", p->pos + 1,
                          what, c);
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

/* Any value at p->pos; type and number (for scalars) into *type, *number. */
static enum dsnn_status parse_value(struct parser *p, int depth, enum dsnn_json_type *type,
                                    double *number)
{
    skip_ws(p);
    *number = NAN;
    if (p->pos >= p->len)
        return fail(p, "expected a value");
    char c = p->s[p->pos];
    if (c == '"') {
        *type = DSNN_JSON_STRING;
        return parse_string(p, NULL);
    }
    if (c == '-' || (c >= '0' && c <= '9')) {
        *type = DSNN_JSON_NUMBER;
        return parse_number(p, number);
    }
    if (literal(p, "true")) {
        *type = DSNN_JSON_BOOL;
        *number = 1;
        return DSNN_OK;
    }
    if (literal(p, "false")) {
        *type = DSNN_JSON_BOOL;
        *number = 0;
        return DSNN_OK;
    }
    if (literal(p, "null")) {
        *type = DSNN_JSON_NULL;
        return DSNN_OK;
    }
    if (c != '[' && c != '{')
        return fail(p, "expected a value (string, number, true, false, null, array or object)");
    if (depth >= JSON_MAX_DEPTH)
        return fail(p, "nested deeper than 64 levels");
    bool object = c == '{';
    char close = object ? '}' : ']';
    *type = object ? DSNN_JSON_OBJECT : DSNN_JSON_ARRAY;
    p->pos++;
    skip_ws(p);
    if (p->pos < p->len && p->s[p->pos] == close) {
        p->pos++;
        return DSNN_OK;
    }
    for (;;) {
        enum dsnn_json_type t;
        double d;
        enum dsnn_status st;
        if (object) {
            skip_ws(p);
            if ((st = parse_string(p, NULL)) != DSNN_OK)
                return st;
            skip_ws(p);
            if (p->pos >= p->len || p->s[p->pos] != ':')
                return fail(p, "expected ':' after a key");
            p->pos++;
        }
        if ((st = parse_value(p, depth + 1, &t, &d)) != DSNN_OK)
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

static char *copy_span(const char *s, size_t n)
{
    char *c = malloc(n + 1);
    if (c) {
        memcpy(c, s, n);
        c[n] = '\0';
    }
    return c;
}

enum dsnn_status dsnn_json_parse_object(const char *text, size_t len, struct dsnn_json_object *out,
                                        struct dsnn_error *err)
{
    struct parser p = {text, len, 0, err};
    struct dsnn_json_object o = {0, NULL};
    size_t cap = 0;
    enum dsnn_status st = DSNN_OK;
    memset(out, 0, sizeof *out);
    skip_ws(&p);
    if (p.pos >= p.len || text[p.pos] != '{')
        return fail(&p, "expected '{' (each line must be one JSON object)");
    p.pos++;
    skip_ws(&p);
    if (p.pos < p.len && text[p.pos] == '}') {
        p.pos++;
    } else {
        for (;;) {
            struct dsnn_json_member m = {NULL, DSNN_JSON_NULL, NAN, NULL};
            skip_ws(&p);
            if ((st = parse_string(&p, &m.key)) != DSNN_OK)
                goto fail;
            skip_ws(&p);
            if (p.pos >= p.len || text[p.pos] != ':') {
                free(m.key);
                st = fail(&p, "expected ':' after a key");
                goto fail;
            }
            p.pos++;
            skip_ws(&p);
            size_t vstart = p.pos;
            if ((st = parse_value(&p, 1, &m.type, &m.number)) != DSNN_OK) {
                free(m.key);
                goto fail;
            }
            if (m.type == DSNN_JSON_STRING) {
                struct parser again = {text, len, vstart, err};
                st = parse_string(&again, &m.text);
            } else {
                m.text = copy_span(text + vstart, p.pos - vstart);
                st = m.text ? DSNN_OK : dsnn_error_set(err, DSNN_ERR_NOMEM, "out of memory");
            }
            if (st == DSNN_OK && o.n == cap) {
                size_t ncap = cap ? cap * 2 : 16;
                struct dsnn_json_member *ni = realloc(o.items, ncap * sizeof *ni);
                if (ni) {
                    o.items = ni;
                    cap = ncap;
                } else {
                    st = dsnn_error_set(err, DSNN_ERR_NOMEM, "out of memory");
                }
            }
            if (st != DSNN_OK) {
                free(m.key);
                free(m.text);
                goto fail;
            }
            o.items[o.n++] = m;
            skip_ws(&p);
            if (p.pos < p.len && text[p.pos] == ',') {
                p.pos++;
                continue;
            }
            if (p.pos < p.len && text[p.pos] == '}') {
                p.pos++;
                break;
            }
            st = fail(&p, "expected ',' or '}'");
            goto fail;
        }
    }
    skip_ws(&p);
    if (p.pos < p.len) {
        st = fail(&p, "expected the end of the line after the object");
        goto fail;
    }
    *out = o;
    return DSNN_OK;
fail:
    dsnn_json_object_free(&o);
    return st;
}

void dsnn_json_object_free(struct dsnn_json_object *o)
{
    if (!o)
        return;
    for (size_t i = 0; i < o->n; i++) {
        free(o->items[i].key);
        free(o->items[i].text);
    }
    free(o->items);
    o->items = NULL;
    o->n = 0;
}

const struct dsnn_json_member *dsnn_json_find(const struct dsnn_json_object *o, const char *key)
{
    for (size_t i = o->n; i-- > 0;)
        if (strcmp(o->items[i].key, key) == 0)
            return &o->items[i];
    return NULL;
}

bool dsnn_json_number(const struct dsnn_json_object *o, const char *key, double *out)
{
    const struct dsnn_json_member *m = dsnn_json_find(o, key);
    if (!m || m->type != DSNN_JSON_NUMBER)
        return false;
    *out = m->number;
    return true;
}

const char *dsnn_json_string_at(const struct dsnn_json_object *o, const char *key)
{
    const struct dsnn_json_member *m = dsnn_json_find(o, key);
    return m && m->type == DSNN_JSON_STRING ? m->text : NULL;
}
