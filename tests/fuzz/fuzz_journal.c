/* tests/fuzz/fuzz_journal.c - the journal reader of the host (host/journal.c): lines of JSON
 * objects, a torn last line, a tail of NUL bytes; then its repair, after which the journal must
 * read back without a dropped tail.
 *
 * Input: a journal.jsonl file. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "fuzz_plugins.h"
#include "journal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[4096];
    fuzz_write(fuzz_path(path, "journal.jsonl"), data, size);
    struct dsnn_journal_log log = {0};
    struct dsnn_error err = {0};
    enum dsnn_status st = fuzz_report("journal", dsnn_journal_load(path, &log, &err), &err);
    if (st == DSNN_OK) {
        for (size_t i = 0; i < log.n; i++) {
            (void)dsnn_json_str(&log.events[i], "event");
            int64_t v;
            (void)dsnn_json_int(&log.events[i], "line", 0, (int64_t)1 << 53, 0, &v);
        }
        bool dropped = log.dropped_tail;
        size_t n = log.n;
        dsnn_journal_log_free(&log);
        if (dropped) {
            if (dsnn_journal_repair(path, &err) != DSNN_OK)
                abort(); /* a journal that reads must repair */
            struct dsnn_journal_log again = {0};
            if (dsnn_journal_load(path, &again, &err) != DSNN_OK || again.dropped_tail ||
                again.n != n)
                abort(); /* the repaired journal must read the same events, no tail */
            dsnn_journal_log_free(&again);
        }
    }
    unlink(path);
    return 0;
}
