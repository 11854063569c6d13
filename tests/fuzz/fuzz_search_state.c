/* tests/fuzz/fuzz_search_state.c - every search plugin's restore op (its saved state, the
 * payload of search_state.bin).
 *
 * Input: byte 0 picks the strategy (fuzz_searches[byte % n]), byte 1 the number of trials
 * (1 + byte % 8), the rest is the saved state. The strategy is created as the host creates it
 * and restores the state; a state it accepts must then serve suggest, on_result, on_complete,
 * exploit and save without fault. fuzz_corpus writes the seeds with the save op. */
#define _XOPEN_SOURCE 700 /* open_memstream */
#include <stdlib.h>
#include <string.h>

#include "fuzz_search.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    struct fuzz_search s;
    if (!fuzz_search_open(&s, data[0] % fuzz_n_searches, 1 + data[1] % 8))
        abort(); /* the harness's own configuration failed */
    FILE *f = fuzz_mem_stream(data + 2, size - 2);
    struct dsnn_error err = {0};
    enum dsnn_status st = fuzz_report("restore", s.ops->restore(s.state, f, &err), &err);
    fclose(f);
    if (st == DSNN_OK)
        fuzz_search_drive(&s, 4);
    fuzz_search_close(&s);
    return 0;
}
