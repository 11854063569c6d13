/* host/checkpoint.h - epoch checkpoints of a trial: <trial>/checkpoint.bin.
 *
 * A checkpoint is a small header followed by what the model's save op wrote (weights, sparse
 * topology, optimizer state, RNG states, schedule state: everything the model needs to continue
 * exactly; the dataset's order is a function of (trial seed, epoch), so nothing of it is saved).
 * Layout (integers in the byte order of the host that wrote it):
 *
 *     "DSNNCKPT"          8 bytes magic
 *     u32 format          DSNN_CHECKPOINT_FORMAT
 *     u32 header_size     bytes from the magic to the payload
 *     u64 epochs          epochs completed: training continues with this epoch (0-based)
 *     u64 n_results       lines of the trial's result.json at that point
 *     u64 trial_index
 *     u64 config_hash     hash of the configuration the trial ran with (experiment.cfg + params)
 *     u64 payload_size
 *     u64 payload_hash    FNV-1a 64 of the header (this field as 0) and the payload (format 2:
 *                         a damaged header field, e.g. epochs, is caught too; format 1 hashed
 *                         the payload only and is refused)
 *     f64 time_total_s    training time of the trial so far
 *     char trial_id[32], dsnn_version[32], model[64]   NUL-padded
 *     payload
 *
 * The file is written atomically (temp file, fsync, rename), so a crash leaves the previous
 * checkpoint or the new one, never a mix. With keep > 1, the previous ones stay as
 * checkpoint.<epochs>.bin (the newest keep - 1 of them). */
#ifndef DSNN_HOST_CHECKPOINT_H
#define DSNN_HOST_CHECKPOINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "dsnn/dsnn.h"

#define DSNN_CHECKPOINT_FILE "checkpoint.bin"
#define DSNN_CHECKPOINT_FORMAT 2u

struct dsnn_checkpoint_header {
    uint64_t epochs;
    uint64_t n_results;
    uint64_t trial_index;
    uint64_t config_hash;
    uint64_t payload_size;
    uint64_t payload_hash;
    double time_total_s;
    char trial_id[32];
    char dsnn_version[32];
    char model[64];
};

/* FNV-1a 64-bit hash of size bytes, continuing from h (start with DSNN_FNV_INIT). */
#define DSNN_FNV_INIT 0xcbf29ce484222325ULL
uint64_t dsnn_fnv1a(uint64_t h, const void *data, size_t size);

/* Writes <dir>/checkpoint.bin atomically from hdr (payload_size / payload_hash / dsnn_version
 * are filled in here) and the payload; keeps the newest keep - 1 older checkpoints as
 * checkpoint.<epochs>.bin (keep >= 1). */
enum dsnn_status dsnn_checkpoint_write(const char *dir, struct dsnn_checkpoint_header *hdr,
                                       const void *payload, size_t size, int keep,
                                       struct dsnn_error *err);

/* Reads and checks path (magic, format, sizes, the hash of header and payload, the dsnn version
 * that wrote it, the ranges of the header's counts). On success the caller owns
 * *payload (free()). A missing file is DSNN_ERR_NOT_FOUND; anything damaged is DSNN_ERR_FORMAT
 * with a message naming the file and what is wrong. payload may be NULL to check the header
 * only (the payload is still hashed). */
enum dsnn_status dsnn_checkpoint_read(const char *path, struct dsnn_checkpoint_header *hdr,
                                      unsigned char **payload, struct dsnn_error *err);

/* Removes checkpoint.bin and the kept checkpoint.<epochs>.bin files of dir. */
void dsnn_checkpoint_remove_all(const char *dir);
/* Removes the temporary files of checkpoint writes that were cut short (a trial process killed
 * while writing); call it only while no trial process of dir runs. */
void dsnn_checkpoint_remove_temps(const char *dir);

#endif
