/* train/metrics.c - named scalar metrics. */
#include "dsnn/metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void dsnn_metrics_clear(struct dsnn_metrics *m)
{
    m->n = 0;
}

enum dsnn_status dsnn_metrics_set(struct dsnn_metrics *m, const char *name, double value)
{
    if (!name || strlen(name) >= DSNN_METRIC_NAME_MAX)
        return DSNN_ERR_INVALID;
    for (size_t i = 0; i < m->n; i++) {
        if (strcmp(m->items[i].name, name) == 0) {
            m->items[i].value = value;
            return DSNN_OK;
        }
    }
    if (m->n >= DSNN_METRICS_MAX)
        return DSNN_ERR_INVALID;
    strcpy(m->items[m->n].name, name);
    m->items[m->n].value = value;
    m->n++;
    return DSNN_OK;
}

enum dsnn_status dsnn_metrics_setf(struct dsnn_metrics *m, double value, const char *fmt, ...)
{
    char name[DSNN_METRIC_NAME_MAX + 1];
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    if (len < 0 || len >= DSNN_METRIC_NAME_MAX)
        return DSNN_ERR_INVALID;
    return dsnn_metrics_set(m, name, value);
}

bool dsnn_metrics_get(const struct dsnn_metrics *m, const char *name, double *value)
{
    for (size_t i = 0; i < m->n; i++) {
        if (strcmp(m->items[i].name, name) == 0) {
            if (value)
                *value = m->items[i].value;
            return true;
        }
    }
    return false;
}
