/* tests/fuzz/fuzz_checkpoint.c - the checkpoint reader of the host (host/checkpoint.c): magic,
 * format, header fields and their ranges, sizes, checksum, version.
 *
 * Input: a checkpoint file. It is read as it is, then once more with its dsnn_version set to
 * this version's and its checksum recomputed (as dsnn_checkpoint_write would), so that what
 * lies behind the checksum is reached too. The models' own payloads are fuzz_model_load's. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checkpoint.h"
#include "fuzz_plugins.h"

#define HEADER_SIZE 200     /* checkpoint.h: 8 + 4 + 4 + 7 * 8 + 32 + 32 + 64 */
#define HASH_AT 56          /* 8 + 4 + 4 + 5 * 8 */
#define VERSION_AT 104      /* 8 + 4 + 4 + 7 * 8 + 32 */

static void read_one(const char *path)
{
    struct dsnn_checkpoint_header hdr;
    struct dsnn_error err = {0};
    unsigned char *payload = NULL;
    if (fuzz_report("checkpoint", dsnn_checkpoint_read(path, &hdr, &payload, &err), &err) ==
        DSNN_OK) {
        if (hdr.epochs > 1000000000ull || hdr.trial_index > 1000000ull ||
            memchr(hdr.model, '\0', sizeof hdr.model) == NULL)
            abort(); /* accepted a header out of range */
        free(payload);
    } else if (payload) {
        abort(); /* a failure must not hand out a payload */
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[4096];
    fuzz_write(fuzz_path(path, DSNN_CHECKPOINT_FILE), data, size);
    read_one(path);
    if (size >= HEADER_SIZE) {
        unsigned char *copy = malloc(size);
        if (!copy)
            return 0;
        memcpy(copy, data, size);
        memset(copy + VERSION_AT, 0, 32);
        memcpy(copy + VERSION_AT, DSNN_VERSION_STRING, strlen(DSNN_VERSION_STRING));
        memset(copy + HASH_AT, 0, 8);
        uint64_t h = dsnn_fnv1a(dsnn_fnv1a(DSNN_FNV_INIT, copy, HEADER_SIZE), copy + HEADER_SIZE,
                                size - HEADER_SIZE);
        memcpy(copy + HASH_AT, &h, 8);
        fuzz_write(path, copy, size);
        free(copy);
        read_one(path);
    }
    unlink(path);
    return 0;
}
