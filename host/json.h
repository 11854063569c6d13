/* host/json.h - the one JSON module of the host and its tests (static library dsnn_json): a
 * string builder with JSON writers, and a strict reader that produces a tree.
 *
 * Writing:
 *     struct dsnn_sbuf b = {0};
 *     dsnn_sbuf_puts(&b, "{\"name\": ");
 *     dsnn_sbuf_json_string(&b, name);          // quoted, escaped
 *     dsnn_sbuf_puts(&b, ", \"acc\": ");
 *     dsnn_sbuf_json_number(&b, acc);           // exact (17 digits); NaN / inf as null
 *     dsnn_sbuf_puts(&b, "}");
 *     if (!b.oom) use(b.p);
 *     dsnn_sbuf_free(&b);
 *
 * One NaN policy: non-finite numbers are written as JSON null, everywhere (result.json,
 * journal.jsonl). The reader still takes the strings "nan", "inf", "-inf" for numbers
 * (dsnn_json_num): journal.jsonl files written by earlier versions contain them.
 *
 * Reading:
 *     struct dsnn_json_value v;
 *     if (dsnn_json_parse(text, len, &v, &err) != DSNN_OK)
 *         fprintf(stderr, "%s:%d: %s\n", path, line_no, err.msg);  // "column 12: expected ':'"
 *     double acc = dsnn_json_num(&v, "val_acc", NAN);
 *     dsnn_json_free(&v);
 *
 * The whole JSON grammar is checked (RFC 8259: strings with escapes and \uXXXX, numbers, true,
 * false, null, nested arrays and objects up to 64 levels). An error names where it is:
 * "column C: what was expected, found X", or "line L, column C: ..." when the text has more than
 * one line. Every value keeps its decoded string (strings) or the JSON text it was written as
 * (numbers, arrays, objects, true/false/null), so that "0.02", "[300, 100]" or an integer seed
 * beyond 2^53 print and compare exactly as in the file. */
#ifndef DSNN_HOST_JSON_H
#define DSNN_HOST_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdint.h>
#include "dsnn/status.h"

/* ---- a growable string ---- */
struct dsnn_sbuf {
    char *p; /* NUL-terminated (once anything was added); owned */
    size_t len, cap;
    bool oom; /* an allocation failed: the content is incomplete */
};
void dsnn_sbuf_printf(struct dsnn_sbuf *b, const char *fmt, ...) DSNN_PRINTF(2, 3);
void dsnn_sbuf_vprintf(struct dsnn_sbuf *b, const char *fmt, va_list ap);
/* A new string of the format (free it), or NULL when out of memory. */
char *dsnn_strdup_vprintf(const char *fmt, va_list ap);
void dsnn_sbuf_puts(struct dsnn_sbuf *b, const char *s);
/* Appends s as a JSON string literal (quoted; '"', '\\', control characters escaped). */
void dsnn_sbuf_json_string(struct dsnn_sbuf *b, const char *s);
/* Appends v as a JSON number: an integer below 1e15 exactly, else "%.<digits>g"; non-finite
 * values as null. */
void dsnn_sbuf_json_number_digits(struct dsnn_sbuf *b, double v, int digits);
/* The same with enough digits to read back the same double (17). */
void dsnn_sbuf_json_number(struct dsnn_sbuf *b, double v);
void dsnn_sbuf_free(struct dsnn_sbuf *b);
/* JSON string literal of s (quoted, escaped) into buf (NUL-terminated when size > 0); returns
 * its length (as snprintf). */
size_t dsnn_json_string(const char *s, char *buf, size_t size);

/* ---- the tree ---- */
enum dsnn_json_type {
    DSNN_JSON_NULL = 0,
    DSNN_JSON_BOOL,
    DSNN_JSON_NUMBER,
    DSNN_JSON_STRING,
    DSNN_JSON_ARRAY,
    DSNN_JSON_OBJECT
};

struct dsnn_json_value {
    enum dsnn_json_type type;
    char *key;     /* member name (decoded) inside an object, else NULL */
    double number; /* NUMBER: its value; BOOL: 0 or 1; NAN otherwise */
    char *text;    /* STRING: decoded (UTF-8); otherwise the value's JSON text as written */
    size_t n;      /* ARRAY / OBJECT: elements / members, in order */
    struct dsnn_json_value *items;
};

/* Parses text[0..len) as one JSON value surrounded by optional whitespace. On failure returns
 * DSNN_ERR_FORMAT (or DSNN_ERR_NOMEM) with the position and what was expected in err, and out
 * is empty. The caller frees *out (dsnn_json_free). */
enum dsnn_status dsnn_json_parse(const char *text, size_t len, struct dsnn_json_value *out,
                                 struct dsnn_error *err);
/* Frees what v holds (NULL and an empty value are accepted; twice is harmless). */
void dsnn_json_free(struct dsnn_json_value *v);
/* The last member named key of an object (JSON allows duplicates; the last wins, as in
 * Python), or NULL (also when obj is not an object). */
const struct dsnn_json_value *dsnn_json_get(const struct dsnn_json_value *obj, const char *key);
/* The string member key; "" when absent or not a string. */
const char *dsnn_json_str(const struct dsnn_json_value *obj, const char *key);
/* The number member key: def when absent; null reads as NaN, and so do the legacy strings "nan",
 * "inf", "-inf" (NaN, +inf, -inf); def for other types. */
double dsnn_json_num(const struct dsnn_json_value *obj, const char *key, double def);
/* The integer member key into *out: def when absent; false (and *out untouched) when it is not a
 * number, not integral or outside [lo, hi] (|lo|, |hi| <= 2^53). For fields of untrusted files
 * (the journal) that index or size anything. */
bool dsnn_json_int(const struct dsnn_json_value *obj, const char *key, int64_t lo, int64_t hi,
                   int64_t def, int64_t *out);

/* ---- one object per line (result.json, journal.jsonl, params.json) ---- */
struct dsnn_json_object {
    size_t n;
    struct dsnn_json_value *items; /* the members; owned (dsnn_json_object_free) */
};
/* Parses text[0..len) as one JSON object (errors as dsnn_json_parse; anything else than an
 * object is "column 1: expected '{' (each line must be one JSON object)"). */
enum dsnn_status dsnn_json_parse_object(const char *text, size_t len, struct dsnn_json_object *out,
                                        struct dsnn_error *err);
void dsnn_json_object_free(struct dsnn_json_object *o);
/* The last member named key, or NULL. */
const struct dsnn_json_value *dsnn_json_find(const struct dsnn_json_object *o, const char *key);
/* The number at key; false when absent or not a number (null included). */
bool dsnn_json_number(const struct dsnn_json_object *o, const char *key, double *out);
/* The string at key, or NULL when absent or not a string. */
const char *dsnn_json_string_at(const struct dsnn_json_object *o, const char *key);

#endif
