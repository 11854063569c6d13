/* tests/fuzz/fuzz_model_load.c - every model plugin's load op (the payload of a checkpoint:
 * weights, sparse topology, optimizer, RNG and schedule state).
 *
 * Input: byte 0 picks the model (fuzz_models[byte % n]), byte 1 the network (net_kinds), the
 * rest is the saved state. A model is created on the network as a trial creates it, then loads
 * the state; a state it accepts must also train an epoch, evaluate and save again without
 * fault. fuzz_corpus writes the seeds with the models' save op (fuzz_model_seed). */
#include <stdlib.h>
#include <string.h>

#include "fuzz_model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    struct fuzz_run r;
    if (!fuzz_model_open(&r, data[0] % fuzz_n_models, data[1] % FUZZ_N_NETS))
        abort(); /* the harness's own configuration failed */
    FILE *f = fuzz_mem_stream(data + 2, size - 2);
    struct dsnn_error err = {0};
    enum dsnn_status st = fuzz_report("load", r.ops->load(r.model, f, &err), &err);
    fclose(f);
    if (st == DSNN_OK)
        fuzz_model_exercise(&r);
    fuzz_model_close(&r);
    return 0;
}
