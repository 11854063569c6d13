/* dsnn/gzin.h - reading a file that may be gzip-compressed, as a stream of bytes.
 *
 *     struct dsnn_gzin *in = NULL;
 *     if (dsnn_gzin_open(path, &in, &err) != DSNN_OK) return err.status;  // names the file
 *     size_t got;
 *     while (dsnn_gzin_read(in, buf, sizeof buf, &got, &err) == DSNN_OK && got > 0) ...
 *     dsnn_gzin_close(in);
 *
 * A file that starts with the gzip magic (1f 8b) is decompressed, any other file is read as it
 * is. Compressed input (the policy of every gzip reader of dsnn: dsnn_read_file, the IDX and
 * CIFAR datasets):
 *   - several gzip members one after the other (what `cat a.gz b.gz` makes, and gzip -d reads)
 *     are decompressed one after the other, as one stream;
 *   - anything else after the end of a member (zero padding, a zlib stream, junk) is an error
 *     naming the file and the offset ("trailing bytes after the gzip data"), not silently
 *     ignored as zlib's gzread does: the file is not what it claims to be;
 *   - a stream that ends inside a member is "truncated", a bad checksum or deflate data
 *     "corrupt gzip file" with zlib's reason; every message names the file.
 * Errors are DSNN_ERR_FORMAT (bad data), DSNN_ERR_IO (read errors), DSNN_ERR_NOMEM. */
#ifndef DSNN_GZIN_H
#define DSNN_GZIN_H

#include <stdbool.h>
#include <stddef.h>
#include "dsnn/export.h"
#include "dsnn/status.h"

#ifdef __cplusplus
extern "C" {
#endif

struct dsnn_gzin; /* opaque */

/* Opens path (a regular file; missing, a directory or a FIFO is DSNN_ERR_IO). what ("images file", NULL)
 * is used in open errors. The caller owns *out (close with dsnn_gzin_close). */
DSNN_API enum dsnn_status dsnn_gzin_open(const char *path, const char *what,
                                         struct dsnn_gzin **out, struct dsnn_error *err);
/* Reads bytes[0, size) (not copied: they must outlive the reader); name is used in messages. */
DSNN_API enum dsnn_status dsnn_gzin_open_mem(const unsigned char *bytes, size_t size,
                                             const char *name, struct dsnn_gzin **out,
                                             struct dsnn_error *err);
/* True when the input is gzip-compressed. */
DSNN_API bool dsnn_gzin_compressed(const struct dsnn_gzin *in);
/* Reads up to n bytes into buf; *got is less than n only at the end of the data (0: the end). */
DSNN_API enum dsnn_status dsnn_gzin_read(struct dsnn_gzin *in, void *buf, size_t n, size_t *got,
                                         struct dsnn_error *err);
/* NULL is accepted. */
DSNN_API void dsnn_gzin_close(struct dsnn_gzin *in);

#ifdef __cplusplus
}
#endif
#endif
