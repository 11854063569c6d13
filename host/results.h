/* host/results.h - the results directory of an experiment (close to Ray Tune's layout):
 *
 *   <root>/<experiment>/experiment.cfg      the configuration file as run (verbatim copy)
 *   <root>/<experiment>/journal.jsonl       append-only log of experiment and trial events
 *   <root>/<experiment>/<trial_id>/params.json   searched parameters of the trial
 *                                 /trial.cfg     the trial's full configuration
 *                                 /result.json   one JSON object per epoch
 *                                 /progress.csv  the same as CSV
 *                                 /error.txt     on failure (error.<attempt>.txt: a failed
 *                                                attempt that was retried)
 *                                 /checkpoint.bin    the latest epoch checkpoint (checkpoint.h)
 *                                 /pbt_history.jsonl parameter changes of a PBT trial
 *                                 /noise_eval.json   dsnn-host evaluate (evaluate.h), with
 *                                                    noise_eval.log, its plugins' log
 *
 * Every append is flushed and fsync'ed, so a crash loses at most the line being written;
 * whole files are written atomically (temp file, fsync, rename). */
#ifndef DSNN_HOST_RESULTS_H
#define DSNN_HOST_RESULTS_H

#include <stdbool.h>
#include "dsnn/dsnn.h"

/* Creates dir (and parents) if missing. */
enum dsnn_status dsnn_mkdirs(const char *dir, struct dsnn_error *err);
/* Appends one line (a '\n' is added) to path, fsync'ed. */
enum dsnn_status dsnn_append_line(const char *path, const char *line, struct dsnn_error *err);
/* Copies a file byte for byte (atomically). */
enum dsnn_status dsnn_copy_file(const char *from, const char *to, struct dsnn_error *err);
/* Current UTC time as ISO 8601 into buf. */
const char *dsnn_iso_time(char *buf, size_t size);

/* Per-trial result writers. */
struct dsnn_trial_files {
    char dir[1024];
    char csv_header[8192]; /* columns of progress.csv, fixed by the first epoch */
    bool have_header;
};
enum dsnn_status dsnn_trial_files_open(struct dsnn_trial_files *tf, const char *dir,
                                       struct dsnn_error *err);
/* Appends an epoch's metrics (plus trial_id) to result.json and progress.csv. */
enum dsnn_status dsnn_trial_files_epoch(struct dsnn_trial_files *tf, const char *trial_id,
                                        const struct dsnn_metrics *m, struct dsnn_error *err);
/* Lines of <dir>/result.json that are complete ('\n'-terminated); 0 if there is no file. */
size_t dsnn_trial_files_count(const char *dir);
/* Opens the writers of an existing trial folder to continue after its first n_results epochs:
 * result.json and progress.csv keep their first n_results lines (progress.csv: after its
 * header, which is kept for the next lines); later lines, and a line cut short by a crash, are
 * removed (each file is rewritten atomically). n_results == 0 removes both files. */
enum dsnn_status dsnn_trial_files_resume(struct dsnn_trial_files *tf, const char *dir,
                                         size_t n_results, struct dsnn_error *err);
/* Writes error.txt. */
enum dsnn_status dsnn_trial_files_error(struct dsnn_trial_files *tf, const char *text,
                                        struct dsnn_error *err);

#endif
