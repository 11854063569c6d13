/* host/progress.h - what dsnn-host run / resume prints while trials run.
 *
 * Standard output a terminal: a compact table of the trials (trial, status, epoch/epochs,
 * metric last / best, time, searched parameters), redrawn in place with ANSI escapes at most
 * once a second. Otherwise (a pipe, a file, CI): one line per reported epoch, as before.
 * Nothing with quiet. */
#ifndef DSNN_HOST_PROGRESS_H
#define DSNN_HOST_PROGRESS_H

#include <stdbool.h>
#include <stddef.h>
#include "dsnn/dsnn.h"

struct dsnn_progress_row {
    const char *trial_id;
    const char *status; /* "RUNNING", "TERMINATED" ... */
    const char *params; /* "k=v k=v" or "" */
    int epochs_done;    /* epochs reported so far */
    int epochs;         /* experiment.epochs */
    double last, best;  /* the experiment's metric (NAN: none yet) */
    double seconds;     /* running time of the trial */
};

struct dsnn_progress {
    bool quiet;
    bool table;          /* stdout is a terminal: redraw a table */
    const char *metric;
    int drawn;           /* lines of the table on screen now */
    double last_draw;    /* monotonic seconds */
    double t0;
};

/* table: -1 decides by isatty(stdout) and $TERM ("dumb" is no terminal), 0/1 forces. */
void dsnn_progress_init(struct dsnn_progress *p, bool quiet, int table, const char *metric);
/* An epoch was reported (the line mode prints it; the table mode waits for the next redraw). */
void dsnn_progress_epoch(struct dsnn_progress *p, const char *trial_id, const char *params,
                         long long epochs, const struct dsnn_metrics *m);
/* Redraws the table when forced or a second has passed since the last redraw. */
void dsnn_progress_table(struct dsnn_progress *p, const struct dsnn_progress_row *rows, size_t n,
                         const char *footer, bool force);
/* Erases the table (before a message is printed under it; the next redraw brings it back). */
void dsnn_progress_clear(struct dsnn_progress *p);
/* Leaves the last table on screen and stops redrawing in place. */
void dsnn_progress_end(struct dsnn_progress *p);

#endif
