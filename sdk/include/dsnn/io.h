/* dsnn/io.h - checked binary I/O for checkpoints and atomic file writes. */
#ifndef DSNN_IO_H
#define DSNN_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "dsnn/export.h"
#include "dsnn/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Write / read exactly size bytes; a short read is DSNN_ERR_FORMAT ("truncated"). what names the
 * item in messages. */
DSNN_API enum dsnn_status dsnn_io_write(FILE *f, const void *p, size_t size, const char *what,
                                        struct dsnn_error *err);
DSNN_API enum dsnn_status dsnn_io_read(FILE *f, void *p, size_t size, const char *what,
                                       struct dsnn_error *err);
/* A tagged section: 4-char tag + u64 length, checked on read. */
DSNN_API enum dsnn_status dsnn_io_write_u64(FILE *f, uint64_t v, const char *what,
                                            struct dsnn_error *err);
DSNN_API enum dsnn_status dsnn_io_read_u64(FILE *f, uint64_t *v, const char *what,
                                           struct dsnn_error *err);
DSNN_API enum dsnn_status dsnn_io_expect_tag(FILE *f, const char tag[4], struct dsnn_error *err);
/* Reads a section's tag and the count written after it, which must be expected: the number of
 * items (what, plural: "layers") that the reader (owner: "the network") has. Another count is
 * DSNN_ERR_FORMAT "checkpoint has N <what>, <owner> has M"; a wrong tag or a short read fails as
 * in dsnn_io_expect_tag and dsnn_io_read_u64. */
DSNN_API enum dsnn_status dsnn_io_expect_count(FILE *f, const char tag[4], uint64_t expected,
                                               const char *what, const char *owner,
                                               struct dsnn_error *err);

/* Writes data to path atomically: path.tmp, fsync, rename. */
DSNN_API enum dsnn_status dsnn_write_file_atomic(const char *path, const void *data, size_t size,
                                                 struct dsnn_error *err);

/* Crash-consistency testing (tests/unit/test_crash.c): with DSNN_TEST_KILL_AT_WRITE=N:PATH in
 * the environment, every file write (dsnn_write_file_atomic, the host's appended lines) of the
 * host and of its trial processes appends a byte to PATH first; the write that makes PATH N
 * bytes long writes the first half of its bytes to fd and its process dies of SIGKILL, as a
 * kill -9 in the middle of that write would leave it. Without the variable: nothing. */
DSNN_API void dsnn_io_kill_point(int fd, const void *data, size_t size);

/* fsyncs the directory that holds path (after a file in it was created or renamed, so that the
 * entry survives a power loss). */
DSNN_API enum dsnn_status dsnn_fsync_parent(const char *path, struct dsnn_error *err);

/* a * b into *out, false when it does not fit a size_t (then *out is SIZE_MAX): for every
 * size computed from untrusted counts (file headers, checkpoints) before it is allocated. */
DSNN_API bool dsnn_size_mul(size_t a, size_t b, size_t *out);

/* Reads a whole file into memory as it is (no decompression), with a NUL after the last byte
 * (*size does not count it), so that a text file is a C string. A missing file is
 * DSNN_ERR_NOT_FOUND, other failures DSNN_ERR_IO ("PATH: cannot open: ...", "PATH: read
 * error"). Caller frees *data with free(). */
DSNN_API enum dsnn_status dsnn_read_file_raw(const char *path, unsigned char **data, size_t *size,
                                             struct dsnn_error *err);
/* Reads a whole (optionally gzip-compressed, detected by magic) file into memory. Several gzip
 * members are read as one stream; bytes after the gzip data that are not another member are
 * DSNN_ERR_FORMAT naming the file (dsnn/gzin.h).
 * Caller frees *data with free(). */
DSNN_API enum dsnn_status dsnn_read_file(const char *path, unsigned char **data, size_t *size,
                                         struct dsnn_error *err);

#ifdef __cplusplus
}
#endif
#endif
