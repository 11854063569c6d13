/* tests/fuzz/fuzz_json.c - the host's JSON reader (host/json.c): one value (dsnn_json_parse)
 * and one object per line (dsnn_json_parse_object), with the accessors the readers of
 * result.json, params.json and the journal use. The text written back by the JSON writer of a
 * decoded string must parse to the same string.
 *
 * Input: JSON text. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

static void walk(const struct dsnn_json_value *v, int depth)
{
    if (depth > 100)
        abort(); /* the reader allows 64 levels */
    if (v->type == DSNN_JSON_STRING) {
        struct dsnn_sbuf b = {0};
        dsnn_sbuf_json_string(&b, v->text);
        struct dsnn_json_value back;
        struct dsnn_error err = {0};
        if (!b.oom) {
            if (dsnn_json_parse(b.p, b.len, &back, &err) != DSNN_OK ||
                back.type != DSNN_JSON_STRING || strcmp(back.text, v->text) != 0)
                abort(); /* the writer's string does not read back */
            dsnn_json_free(&back);
        }
        dsnn_sbuf_free(&b);
    }
    for (size_t i = 0; i < v->n; i++)
        walk(&v->items[i], depth + 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct dsnn_json_value v;
    struct dsnn_error err = {0};
    if (dsnn_json_parse((const char *)data, size, &v, &err) == DSNN_OK) {
        walk(&v, 0);
        int64_t i;
        (void)dsnn_json_get(&v, "trial_id");
        (void)dsnn_json_str(&v, "event");
        (void)dsnn_json_num(&v, "val_acc", 0);
        (void)dsnn_json_int(&v, "epoch", -1000, 1000000, 0, &i);
        dsnn_json_free(&v);
    }
    struct dsnn_json_object o;
    if (dsnn_json_parse_object((const char *)data, size, &o, &err) == DSNN_OK) {
        double d;
        (void)dsnn_json_number(&o, "epoch", &d);
        (void)dsnn_json_string_at(&o, "trial_id");
        (void)dsnn_json_find(&o, "metrics");
        dsnn_json_object_free(&o);
    }
    return 0;
}
