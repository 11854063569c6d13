/* host/report.h - `dsnn-host report RESULTS_DIR [--group-by KEY]... [--html FILE]`: a summary of
 * a results directory (see results.h for its layout).
 *
 * Reads experiment.cfg (experiment.name, experiment.metric and experiment.mode; defaults
 * "val_acc" / "max" when absent), journal.jsonl (each trial's status: the last "status" given
 * for it, else RUNNING once started or with results, PENDING once created; RUNNING becomes
 * INTERRUPTED when the journal's last experiment event is experiment_interrupted) and every
 * trial folder (a directory holding params.json or result.json): params.json and the lines of
 * result.json, each a JSON object. A malformed line is an error naming the file and the line
 * (but a malformed last line without its '\n', an append cut short by a crash, is ignored with
 * a note, as the runner's journal reader does).
 *
 * Prints, per trial: status, epochs (training_iteration of its last result), the metric's best
 * (max or min by mode) and last value, the time (time_total_s of the last epoch) and the
 * searched parameters (trial_seed left out). With
 * group keys (parameter paths as in params.json, e.g. model.on_perc, or "all": every parameter
 * but trial_seed), trials with equal values form a group, printed with mean ± std (sample
 * standard deviation, as pandas) over its trials. Writes a self-contained HTML page (no
 * script, no network) with the tables and inline SVG plots: the metric per epoch of every trial
 * (one polyline per trial, coloured by group), and per density_* metric (density per layer) one
 * plot of its value per epoch. */
#ifndef DSNN_HOST_REPORT_H
#define DSNN_HOST_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include "dsnn/status.h"

struct dsnn_report; /* opaque: a loaded results directory */

struct dsnn_report_options {
    const char *const *group_by; /* parameter paths, or "all" */
    size_t n_group_by;
    const char *html_path; /* NULL: <dir>/report.html */
};

/* Loads dir. warn (may be NULL) receives notes (e.g. experiment.cfg missing). Errors:
 * DSNN_ERR_NOT_FOUND / DSNN_ERR_IO (dir or a file unreadable, no trial folder),
 * DSNN_ERR_FORMAT ("DIR/trial_00001/result.json:3: column 17: expected ',' or '}'").
 * The caller owns *out (free with dsnn_report_free). */
enum dsnn_status dsnn_report_load(const char *dir, FILE *warn, struct dsnn_report **out,
                                  struct dsnn_error *err);
void dsnn_report_free(struct dsnn_report *r); /* NULL accepted */

/* Checks the group keys: DSNN_ERR_INVALID naming an unknown key and listing the parameters. */
enum dsnn_status dsnn_report_check_options(const struct dsnn_report *r,
                                           const struct dsnn_report_options *opt,
                                           struct dsnn_error *err);
/* The text tables (trials, then groups if any) to out. */
void dsnn_report_print(const struct dsnn_report *r, const struct dsnn_report_options *opt,
                       FILE *out);
/* The HTML page, written atomically to path. */
enum dsnn_status dsnn_report_write_html(const struct dsnn_report *r,
                                        const struct dsnn_report_options *opt, const char *path,
                                        struct dsnn_error *err);

/* The whole command: load, check, print to out, write the HTML page (its path is printed last).
 * Returns DSNN_OK or the first error (DSNN_ERR_INVALID: bad option; others: reading or
 * writing). */
enum dsnn_status dsnn_report_run(const char *dir, const struct dsnn_report_options *opt,
                                 FILE *out, FILE *warn, struct dsnn_error *err);

#endif
