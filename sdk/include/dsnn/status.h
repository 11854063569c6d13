/* dsnn/status.h - status codes and error messages.
 *
 * Library functions return an enum dsnn_status; where a caller passes a struct dsnn_error,
 * a human-readable message saying what went wrong and where is written into it.
 * Library code never exits the process. */
#ifndef DSNN_STATUS_H
#define DSNN_STATUS_H

#include <stdarg.h>
#include "dsnn/export.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Values are part of the ABI: append only. */
enum dsnn_status {
    DSNN_OK = 0,
    DSNN_ERR_NOMEM = 1,       /* allocation failed */
    DSNN_ERR_INVALID = 2,     /* invalid argument (programmer or user) */
    DSNN_ERR_IO = 3,          /* file could not be read or written */
    DSNN_ERR_FORMAT = 4,      /* a file is malformed (truncated, bad magic, ...) */
    DSNN_ERR_CONFIG = 5,      /* a configuration value is wrong or missing */
    DSNN_ERR_ABI = 6,         /* plugin ABI mismatch */
    DSNN_ERR_NOT_FOUND = 7,   /* no such plugin, key, file ... */
    DSNN_ERR_UNSUPPORTED = 8, /* operation not supported by this component */
    DSNN_ERR_NUMERIC = 9,     /* NaN / Inf appeared in training */
    DSNN_ERR_INTERNAL = 10,   /* a bug: an invariant was broken */
    DSNN_ERR_INTERRUPTED = 11 /* stopped on request (signal) */
};

#define DSNN_ERROR_MSG_MAX 1024

/* An error report: status plus message. Zero-initialise before use ({0}). */
struct dsnn_error {
    enum dsnn_status status;
    char msg[DSNN_ERROR_MSG_MAX];
};

/* Static name of a status, e.g. "config error". Never NULL. */
DSNN_API const char *dsnn_status_str(enum dsnn_status s);

/* Sets err (may be NULL) to status + formatted message and returns status, so that callers can
 * write `return dsnn_error_set(err, DSNN_ERR_IO, "%s: cannot open: %s", path, strerror(errno));` */
DSNN_API enum dsnn_status dsnn_error_set(struct dsnn_error *err, enum dsnn_status status,
                                         const char *fmt, ...) DSNN_PRINTF(3, 4);
DSNN_API enum dsnn_status dsnn_error_setv(struct dsnn_error *err, enum dsnn_status status,
                                          const char *fmt, va_list ap);
/* Prepends "prefix: " to err->msg (context as an error travels up). Returns err->status. */
DSNN_API enum dsnn_status dsnn_error_prefix(struct dsnn_error *err, const char *fmt, ...)
    DSNN_PRINTF(2, 3);

#ifdef __cplusplus
}
#endif
#endif
