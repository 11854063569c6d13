/* host/journal.h - the experiment journal (results/<experiment>/journal.jsonl), written and read
 * back (by `dsnn-host resume`) with the JSON module json.h.
 *
 * The journal is append-only, one JSON object per line, each line written with one write() and
 * fdatasync'ed (dsnn_append_line), so that a crash (kill -9, power loss) loses at most the line
 * being written. Reading tolerates exactly that: a last line without its '\n' is dropped (and
 * cut from the file by dsnn_journal_repair before anything is appended again).
 *
 * Events (every line also has "time"; the search events also "seq", their 1-based rank among
 * the search events, which orders the search strategy's state file search_state.bin):
 *   experiment_started   name, trials (known up front), dsnn_version, config_hash
 *   experiment_resumed   dsnn_version
 *   trial_created        seq, trial_id, index, params (JSON object), params_cfg (libconfig)
 *   trial_started        trial_id, attempt, from_epoch, from_line, checkpoint (bool)
 *   trial_result         seq, trial_id, epoch, line (0-based line of result.json), <metric>,
 *                        decision, metrics {all metrics, exact}, exploit {source, params,
 *                        params_cfg} when decision is PERTURB
 *   trial_perturbed      trial_id, source, from_epoch, old_params, new_params, params_cfg
 *   trial_failed         trial_id, attempt, epochs, error   (an attempt that will be retried)
 *   trial_finished       [seq], trial_id, status, epochs, error; seq present when the search
 *                        strategy was told (on_complete): TERMINATED, STOPPED, PAUSED, ERROR;
 *                        absent for INTERRUPTED (the trial is resumable)
 *   experiment_interrupted / experiment_finished (failed_trials) / experiment_failed (error) */
#ifndef DSNN_HOST_JOURNAL_H
#define DSNN_HOST_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "dsnn/dsnn.h"
#include "json.h"

/* ---- the journal ---- */
struct dsnn_journal {
    char path[1100];
    uint64_t seq;             /* search events written so far */
    bool failed;              /* an append failed (or the host stopped it): nothing more is
                                 appended, so that the file stays a prefix of the events */
    struct dsnn_error error;  /* why */
};
/* Appends {"time": "...", <members>} where members is the text of the object's members
 * ("\"event\": \"x\", ..."). A failed append leaves the file as it was (dsnn_append_line rolls a
 * short write back) and sets j->failed: later appends are skipped and return the same error,
 * so that the journal is what a kill -9 at that moment would leave (the host stops, exit 5). */
enum dsnn_status dsnn_journal_add(struct dsnn_journal *j, const char *members);
/* The same, formatted. */
enum dsnn_status dsnn_journal_addf(struct dsnn_journal *j, const char *fmt, ...)
    DSNN_PRINTF(2, 3);

/* The lines of a journal read back. */
struct dsnn_journal_log {
    struct dsnn_json_value *events; /* owned; one object per complete line */
    size_t n;
    bool dropped_tail;          /* the last line had no '\n' (a write cut short): dropped */
    size_t nul_tail;            /* NUL bytes that ended the file (a power loss): dropped with
                                   the line they cut (dropped_tail is set too) */
};
/* Reads path. A line that is not a JSON object is DSNN_ERR_FORMAT naming the file, the line and
 * the column ("DIR/journal.jsonl:7: column 12: expected ':' after a key, found '1' (the journal
 * is damaged; ...)"), except the last line when it has no '\n' (dropped_tail), also when
 * it is followed by NUL bytes only (what a power loss leaves: nul_tail); NUL bytes followed by
 * anything else are DSNN_ERR_FORMAT naming the line. Non-finite
 * numbers are null; the strings "nan", "inf", "-inf" of older journals read as numbers too
 * (dsnn_json_num). */
enum dsnn_status dsnn_journal_load(const char *path, struct dsnn_journal_log *log,
                                   struct dsnn_error *err);
void dsnn_journal_log_free(struct dsnn_journal_log *log);
/* Cuts a last line without '\n' off the file (so that the next append starts a fresh line). */
enum dsnn_status dsnn_journal_repair(const char *path, struct dsnn_error *err);

#endif
