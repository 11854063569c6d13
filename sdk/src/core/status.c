/* core/status.c - status names and error messages. */
#include "dsnn/status.h"

#include <stdio.h>
#include <string.h>

const char *dsnn_status_str(enum dsnn_status s)
{
    switch (s) {
    case DSNN_OK: return "ok";
    case DSNN_ERR_NOMEM: return "out of memory";
    case DSNN_ERR_INVALID: return "invalid argument";
    case DSNN_ERR_IO: return "I/O error";
    case DSNN_ERR_FORMAT: return "malformed file";
    case DSNN_ERR_CONFIG: return "configuration error";
    case DSNN_ERR_ABI: return "plugin ABI mismatch";
    case DSNN_ERR_NOT_FOUND: return "not found";
    case DSNN_ERR_UNSUPPORTED: return "unsupported";
    case DSNN_ERR_NUMERIC: return "numerical error";
    case DSNN_ERR_INTERNAL: return "internal error";
    case DSNN_ERR_INTERRUPTED: return "interrupted";
    }
    return "unknown status";
}

enum dsnn_status dsnn_error_setv(struct dsnn_error *err, enum dsnn_status status, const char *fmt,
                                 va_list ap)
{
    if (err) {
        err->status = status;
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    }
    return status;
}

enum dsnn_status dsnn_error_set(struct dsnn_error *err, enum dsnn_status status, const char *fmt,
                                ...)
{
    va_list ap;
    va_start(ap, fmt);
    dsnn_error_setv(err, status, fmt, ap);
    va_end(ap);
    return status;
}

enum dsnn_status dsnn_error_prefix(struct dsnn_error *err, const char *fmt, ...)
{
    if (!err)
        return DSNN_ERR_INTERNAL;
    char prefix[DSNN_ERROR_MSG_MAX];
    char old[DSNN_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof old);
    old[sizeof old - 1] = '\0';
    size_t plen = strnlen(prefix, sizeof prefix - 1);
    if (plen + 2 >= sizeof err->msg)
        plen = sizeof err->msg - 3;
    memcpy(err->msg, prefix, plen);
    memcpy(err->msg + plen, ": ", 2);
    size_t room = sizeof err->msg - plen - 3;
    size_t olen = strnlen(old, room);
    memcpy(err->msg + plen + 2, old, olen);
    err->msg[plen + 2 + olen] = '\0';
    return err->status;
}
