/* host/journal.h - the experiment journal (results/<experiment>/journal.jsonl) and the small JSON
 * reader that `dsnn-host resume` needs to read it back.
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

/* ---- a growable string ---- */
struct dsnn_sbuf {
    char *p;     /* NUL-terminated (once anything was added); owned */
    size_t len, cap;
    bool oom;    /* an allocation failed: the content is incomplete */
};
void dsnn_sbuf_printf(struct dsnn_sbuf *b, const char *fmt, ...) DSNN_PRINTF(2, 3);
void dsnn_sbuf_puts(struct dsnn_sbuf *b, const char *s);
/* Appends s as a JSON string literal (quoted, escaped). */
void dsnn_sbuf_json_string(struct dsnn_sbuf *b, const char *s);
/* Appends v as a JSON number with enough digits to read back the same double ("%.17g");
 * non-finite values as the strings "nan", "inf", "-inf". */
void dsnn_sbuf_json_number(struct dsnn_sbuf *b, double v);
void dsnn_sbuf_free(struct dsnn_sbuf *b);

/* ---- JSON values (a DOM; enough for the journal and params.json) ---- */
enum dsnn_jtype { DSNN_JNULL = 0, DSNN_JBOOL, DSNN_JNUMBER, DSNN_JSTRING, DSNN_JARRAY, DSNN_JOBJECT };
struct dsnn_jnode {
    enum dsnn_jtype type;
    char *key;               /* member name inside an object, else NULL */
    double num;              /* DSNN_JNUMBER */
    bool b;                  /* DSNN_JBOOL */
    char *str;               /* DSNN_JSTRING (unescaped; \u escapes beyond ASCII become '?') */
    struct dsnn_jnode *kids; /* first element / member */
    struct dsnn_jnode *next; /* next sibling */
};
/* Parses one JSON text (trailing whitespace allowed). Returns NULL if it is not valid JSON (or
 * out of memory). The caller owns the result (dsnn_jnode_free). */
struct dsnn_jnode *dsnn_jnode_parse(const char *text);
void dsnn_jnode_free(struct dsnn_jnode *n);
/* Member key of an object, or NULL. */
const struct dsnn_jnode *dsnn_jnode_get(const struct dsnn_jnode *obj, const char *key);
/* String member key ("" when absent or not a string). */
const char *dsnn_jnode_str(const struct dsnn_jnode *obj, const char *key);
/* Number member key (def when absent; "nan"/"inf"/"-inf" strings and null read as numbers). */
double dsnn_jnode_num(const struct dsnn_jnode *obj, const char *key, double def);

/* ---- the journal ---- */
struct dsnn_journal {
    char path[1100];
    uint64_t seq; /* search events written so far */
    bool warned;  /* a write failure was reported once */
};
/* Appends {"time": "...", <members>} where members is the text of the object's members
 * ("\"event\": \"x\", ..."). Failures are reported on stderr once (the experiment goes on:
 * losing the journal loses resumability, not results). */
void dsnn_journal_add(struct dsnn_journal *j, const char *members);
/* The same, formatted. */
void dsnn_journal_addf(struct dsnn_journal *j, const char *fmt, ...) DSNN_PRINTF(2, 3);

/* The lines of a journal read back. */
struct dsnn_journal_log {
    struct dsnn_jnode **events; /* owned; one per complete line */
    size_t n;
    bool dropped_tail;          /* the last line had no '\n' (a write cut short): dropped */
};
/* Reads path. A line that is not a JSON object is DSNN_ERR_FORMAT naming the file and line,
 * except the last line when it has no '\n' (dropped_tail). */
enum dsnn_status dsnn_journal_load(const char *path, struct dsnn_journal_log *log,
                                   struct dsnn_error *err);
void dsnn_journal_log_free(struct dsnn_journal_log *log);
/* Cuts a last line without '\n' off the file (so that the next append starts a fresh line). */
enum dsnn_status dsnn_journal_repair(const char *path, struct dsnn_error *err);

#endif
