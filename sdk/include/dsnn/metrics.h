/* dsnn/metrics.h - named scalar metrics of one epoch (train_loss, val_acc, density_fc1 ...). */
#ifndef DSNN_METRICS_H
#define DSNN_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include "dsnn/export.h"
#include "dsnn/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define DSNN_METRIC_NAME_MAX 48
#define DSNN_METRICS_MAX 256

struct dsnn_metric {
    char name[DSNN_METRIC_NAME_MAX];
    double value;
};

/* Insertion-ordered; setting an existing name overwrites its value. Plain data: copyable. */
struct dsnn_metrics {
    size_t n;
    struct dsnn_metric items[DSNN_METRICS_MAX];
};

DSNN_API void dsnn_metrics_clear(struct dsnn_metrics *m);
/* DSNN_ERR_INVALID if the name is too long or the table is full. */
DSNN_API enum dsnn_status dsnn_metrics_set(struct dsnn_metrics *m, const char *name, double value);
/* Sets "<prefix><index or name>" e.g. density_fc1. */
DSNN_API enum dsnn_status dsnn_metrics_setf(struct dsnn_metrics *m, double value, const char *fmt,
                                            ...) DSNN_PRINTF(3, 4);
DSNN_API bool dsnn_metrics_get(const struct dsnn_metrics *m, const char *name, double *value);

#ifdef __cplusplus
}
#endif
#endif
