/* host/json.h - a small, strict JSON reader for the results directory (params.json, the lines of
 * result.json and journal.jsonl): one object per call, its members kept in order.
 *
 *     struct dsnn_json_object o;
 *     struct dsnn_error err = {0};
 *     if (dsnn_json_parse_object(line, strlen(line), &o, &err) != DSNN_OK)
 *         fprintf(stderr, "%s:%d: %s\n", path, line_no, err.msg);   // "column 12: expected ':'"
 *     double acc;
 *     if (dsnn_json_number(&o, "val_acc", &acc)) ...
 *     dsnn_json_object_free(&o);
 *
 * The whole JSON grammar is checked (RFC 8259: strings with escapes and \uXXXX, numbers, true,
 * false, null, nested arrays and objects up to 64 levels). Member values are kept as their
 * decoded string (strings) or as the JSON text they were written as (numbers, arrays, objects,
 * true/false/null), so that "0.02", "[300, 100]" or an integer seed beyond 2^53 print and
 * compare exactly as in the file. */
#ifndef DSNN_HOST_JSON_H
#define DSNN_HOST_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include "dsnn/status.h"

enum dsnn_json_type {
    DSNN_JSON_NULL = 0,
    DSNN_JSON_BOOL,
    DSNN_JSON_NUMBER,
    DSNN_JSON_STRING,
    DSNN_JSON_ARRAY,
    DSNN_JSON_OBJECT
};

struct dsnn_json_member {
    char *key;                /* decoded */
    enum dsnn_json_type type;
    double number;            /* NUMBER: its value; BOOL: 0 or 1; NAN otherwise */
    char *text;               /* STRING: decoded; otherwise the value's JSON text as written */
};

struct dsnn_json_object {
    size_t n;
    struct dsnn_json_member *items; /* owned; free with dsnn_json_object_free */
};

/* Parses text[0..len) as one JSON object surrounded by optional whitespace. On failure returns
 * DSNN_ERR_FORMAT (or DSNN_ERR_NOMEM) with "column C: what was expected" in err and leaves out
 * empty. */
enum dsnn_status dsnn_json_parse_object(const char *text, size_t len, struct dsnn_json_object *out,
                                        struct dsnn_error *err);
/* Frees the members (NULL and an empty object are accepted). */
void dsnn_json_object_free(struct dsnn_json_object *o);
/* The last member named key (JSON allows duplicates; the last wins, as in Python), or NULL. */
const struct dsnn_json_member *dsnn_json_find(const struct dsnn_json_object *o, const char *key);
/* The number at key; false when absent or not a number (null included). */
bool dsnn_json_number(const struct dsnn_json_object *o, const char *key, double *out);
/* The string at key, or NULL when absent or not a string. */
const char *dsnn_json_string_at(const struct dsnn_json_object *o, const char *key);

#endif
