/* host/runner_impl.h - what the files of the experiment runner share (private to host/runner*.c;
 * the public interface is runner.h). The runner is split by concern:
 *
 *   runner.c           scheduling: the run loop, starting / reaping trial processes, their
 *                      messages, dsnn_run_experiment
 *   runner_validate.c  configuration checks (experiment group, plugin keys, trial configurations,
 *                      the trials proposed up front)
 *   runner_child.c     the trial process and the pipe protocol
 *   runner_trial.c     trial records, parameters, trial events (created, perturbed, finished)
 *   runner_search.c    the search strategy: instance, state file, suggest, decisions
 *   runner_resume.c    dsnn-host resume: the journal replayed
 *   runner_evaluate.c  dsnn-host evaluate: a trial's checkpoint on the noise split
 *
 * Functions shared between these files carry the prefix rn_. Include this header first (it sets
 * _XOPEN_SOURCE). */
#ifndef DSNN_HOST_RUNNER_IMPL_H
#define DSNN_HOST_RUNNER_IMPL_H

#define _XOPEN_SOURCE 700 /* nftw, open_memstream, fmemopen, getline, strdup */
#include "runner.h"

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "checkpoint.h"
#include "dsnn/dsnn.h"
#include "journal.h"
#include "progress.h"
#include "results.h"

#define MAX_TRIALS 100000
#define MAX_PARALLEL 1024
#define SEARCH_STATE_FILE "search_state.bin"

enum trial_status {
    TRIAL_PENDING = 0, /* created, waiting for a slot (new, retried, resumed, perturbed) */
    TRIAL_RUNNING,
    TRIAL_TERMINATED,  /* ran all epochs */
    TRIAL_STOPPED,     /* the search strategy said STOP before the last epoch */
    TRIAL_PAUSED,      /* the search strategy said PAUSE: stopped after a checkpoint */
    TRIAL_ERROR,       /* failed (after its retries) */
    TRIAL_INTERRUPTED  /* SIGINT / SIGTERM: continued by `dsnn-host resume` */
};

struct trial {
    int index;
    char id[32];
    char dir[1100];
    /* searched parameters: params' values point into pcf, parsed from params_cfg */
    struct dsnn_config_file *pcf;
    struct dsnn_param_set params;
    char *params_cfg;  /* libconfig text: p0 = { path = "..."; value = ...; }; ... */
    char *params_json; /* {"model.x": 1, ...} */
    char params_text[1024];
    uint64_t seed, cfg_hash;
    /* its configuration (experiment.cfg with the searched values), built and validated once per
     * set of parameters by rn_trial_config (cfg_built), dropped when they change or the trial
     * ends for good */
    bool cfg_built;
    enum dsnn_status cfg_status;
    int cfg_code;    /* exit code of a configuration error */
    char *cfg_error; /* its message (cfg_status != DSNN_OK) */
    struct dsnn_config_file *tcf;
    const struct dsnn_registry_entry *plugin[5]; /* by enum dsnn_kind */
    enum trial_status status;
    bool queued; /* waiting for a slot */
    int attempts, failures;
    bool no_retry; /* the failure would repeat (bad configuration, damaged checkpoint) */
    /* results: result.json lines written, and lines the search strategy has seen with the
     * decision it gave (a re-run of such a line reuses it) */
    size_t n_lines, n_reported, cap_reported;
    unsigned char *decisions;
    double *reported_metric;
    bool warned_nondeterministic;
    int epochs_done; /* epoch + 1 of the last result */
    double last_metric, best_metric;
    double seconds;
    char error[DSNN_ERROR_MSG_MAX];
    /* PBT: a PERTURB decision waiting for the child to stop, or (resume) for its copy */
    bool perturb_pending;
    int perturb_source;
    size_t perturb_line;
    char *perturb_cfg;
    /* the running child (under MPI: on the worker rank `rank`, remote slot mpi_slot, pid 0) */
    int mpi_slot; /* -1: a local process */
    int rank;
    pid_t pid;
    int rfd, wfd;
    double t_start;
    double term_sent; /* experiment.trial_timeout_s: when SIGTERM was sent (0: not), -1 after SIGKILL */
    bool got_done, child_error;
    int last_decision; /* search decision of the last result */
    bool halted;       /* told to stop because the host was interrupted */
    struct dsnn_trial_files tf;
};

struct experiment {
    const char *cfg_path; /* the configuration read (resume: <dir>/experiment.cfg) */
    struct dsnn_config_file *cf; /* read once; every trial's configuration is a clone of it */
    const char *cfg_text; /* cf's snapshot (@includes expanded): saved as experiment.cfg */
    size_t cfg_len;
    uint64_t cfg_hash; /* of the snapshot */
    const char *name;
    int64_t seed, epochs, num_samples, parallel, threads;
    int64_t slots; /* trials at once: parallel, or parallel per worker rank under MPI */
    int64_t checkpoint_freq, keep_checkpoints, max_failures;
    double trial_timeout_s; /* experiment.trial_timeout_s (0: none) */
    bool rewire_before_eval; /* experiment.rewire_before_eval: the round before the evaluation */
    int trial_threads;
    const char *metric;
    bool maximize;
    bool allow_unknown;
    const struct dsnn_registry *reg;
    const struct dsnn_registry_entry *plugin[5]; /* by enum dsnn_kind */
    char dir[1024];
    struct dsnn_journal journal;
    int lock_fd;
    bool quiet;
    bool resumed;
    bool warned_no_checkpoint, warned_no_exploit;
    pid_t host_pid;
    /* search strategy */
    const struct dsnn_search_ops *sops;
    void *search;
    bool search_done;
    bool search_saves; /* save and restore ops: search_state.bin after each search event */
    int next_index;
    size_t n_known; /* trials the scratch instance proposed up front */
    /* trials (index == position) */
    struct trial **trials;
    size_t n_trials, cap_trials;
    int n_running;
    bool started_any;
    bool warned_metric; /* experiment.metric missing from a result: warned once */
    bool fatal; /* stop starting trials; exit with fatal_code */
    int fatal_code;
    struct dsnn_error fatal_err;
    bool io_failed; /* a write to the results directory failed: stopping (rn_io_failed) */
    struct dsnn_error io_err;
    struct dsnn_progress progress;
};

/* Child -> host messages: a header, then size bytes. Host -> child: one decision byte after
 * each MSG_RESULT (enum child_decision). Host-internal: not part of any ABI. */
enum msg_type {
    MSG_RESULT = 1,     /* struct dsnn_metrics of an epoch */
    MSG_ERROR = 2,      /* struct dsnn_error: the trial failed */
    MSG_DONE = 3,       /* the trial ended normally */
    MSG_CHECKPOINT = 4, /* struct ckpt_msg: a checkpoint was written */
    MSG_WARNING = 5,    /* struct dsnn_error: printed by the host, the trial goes on */
    MSG_FATAL = 6       /* struct dsnn_error: failed in a way a retry would repeat */
};
struct msg_header {
    uint32_t type, size;
};
struct ckpt_msg {
    uint64_t epochs, n_results;
};
enum child_decision {
    CHILD_CONTINUE = 0,
    CHILD_STOP = 1,    /* end now */
    CHILD_PAUSE = 2,   /* checkpoint, then end */
    CHILD_PERTURB = 3, /* checkpoint, then end (the host restarts it with new parameters) */
    CHILD_HALT = 4     /* the host is interrupted: checkpoint, then end */
};

/* What the child starts from: a checkpoint (epochs > 0 or not) or nothing. */
struct child_start {
    bool have_ckpt;
    struct dsnn_checkpoint_header hdr;
    const unsigned char *payload;
    char ckpt_path[1200];
};

/* A trial process at work: what it built and where it is (runner_child.c; the evaluation
 * process of `dsnn-host evaluate` builds the same, evaluate.c). */
struct child_run {
    struct experiment *ex;
    const struct trial *t;
    const struct dsnn_model_ops *mops;
    const char *model_name;
    bool checkpoints; /* the model can save and load, and experiment.checkpoint_freq > 0 */
    struct dsnn_data data;
    struct dsnn_net *net;
    void *model;
    int wfd, rfd;
    FILE *log;
    size_t lines;       /* lines of result.json so far */
    double time_before; /* training time before the checkpoint it continues from */
    double t_start;
};

/* What runs in a child process forked by rn_spawn_process (it never returns: _exit). */
typedef void (*rn_child_body)(struct experiment *ex, const struct trial *t,
                              const struct child_start *cs, int wfd, int rfd, void *arg);

/* ---- runner.c ---- */
extern volatile sig_atomic_t rn_interrupted;         /* SIGINT / SIGTERM received */
extern volatile sig_atomic_t rn_pids[MAX_PARALLEL];  /* running trial processes, 0 = free slot */
int rn_run_and_finish(struct experiment *ex, struct dsnn_error *err);
void rn_experiment_release(struct experiment *ex);
enum dsnn_status rn_lock_dir(struct experiment *ex, struct dsnn_error *err);
void rn_print_summary(const struct experiment *ex);
void rn_print_banner(const struct experiment *ex, const char *verb);
/* "SIGSEGV (segmentation fault)" and the like; "a signal" for others. Static text. */
const char *rn_signal_name(int sig);
/* Reads the checkpoint at path (dsnn_checkpoint_read) and checks that it is t's: its trial
 * index and configuration hash (DSNN_ERR_CONFIG "written by ... for another configuration"),
 * its model (DSNN_ERR_CONFIG); t's configuration must be built. *payload as
 * dsnn_checkpoint_read (NULL on any error). */
enum dsnn_status rn_checkpoint_open(const struct trial *t, const char *path,
                                    struct dsnn_checkpoint_header *hdr, unsigned char **payload,
                                    struct dsnn_error *err);

/* ---- runner_validate.c ---- */
enum dsnn_status rn_setup(struct experiment *ex, const struct dsnn_registry *reg, int *code,
                          struct dsnn_error *err);
enum dsnn_status rn_validate_upfront(struct experiment *ex, struct dsnn_error *err);
/* Builds experiment.cfg with the searched values ps and validates it (plugin[] gets its
 * plugins); a failure names the trial (id) and its values (params_text). The caller frees
 * *out. */
enum dsnn_status rn_config_build(const struct experiment *ex, const struct dsnn_param_set *ps,
                                 const char *id, const char *params_text,
                                 struct dsnn_config_file **out,
                                 const struct dsnn_registry_entry *plugin[5], int *code,
                                 struct dsnn_error *err);
/* t's configuration into t->tcf and t->plugin, built and validated on the first call after its
 * parameters were set; later calls return the same result (DSNN_OK, or the same error and exit
 * code *code). */
enum dsnn_status rn_trial_config(const struct experiment *ex, struct trial *t, int *code,
                                 struct dsnn_error *err);
/* Frees t's configuration (it is built again on the next rn_trial_config). */
void rn_trial_config_drop(struct trial *t);
int rn_trial_threads(const struct experiment *ex, size_t n_trials);

/* As rn_setup, from the snapshot text of a configuration (an MPI worker: rank 0's experiment.cfg)
 * named name. */
enum dsnn_status rn_setup_text(struct experiment *ex, const struct dsnn_registry *reg,
                               const char *name, const char *text, size_t len, int *code,
                               struct dsnn_error *err);

/* ---- runner_mpi.c: trials on MPI worker ranks (rank 0's side; the worker is dsnn_mpi_worker)
 * ---- */
/* Rank 0 of a job with workers: the remote slots (ex->slots = parallel per worker). false: not
 * such a job (a local run). */
bool rn_mpi_prepare(struct experiment *ex);
bool rn_mpi_active(void);
/* A free slot for t (t->mpi_slot); returns its rank. */
int rn_mpi_pick(struct experiment *ex, struct trial *t);
/* As rn_spawn_child, on t's slot (rn_mpi_pick): t->rfd / t->wfd lead to the remote process. */
bool rn_mpi_spawn(struct experiment *ex, struct trial *t, const struct child_start *cs);
void rn_mpi_kill(struct trial *t, int sig);
void rn_mpi_kill_all(int sig);
/* The wait status of t's remote process, after EOF on t->rfd; frees its slot. */
int rn_mpi_wait(struct trial *t);

/* ---- runner_probe.c ---- */
/* Before any trial of `run`: opens (and closes) the dataset of the first trial the search
 * proposes, in a child process. A data error (DSNN_ERR_IO / FORMAT / NOT_FOUND) is returned with
 * *code = DSNN_EXIT_IO, a configuration error of the dataset (CONFIG / INVALID) with
 * DSNN_EXIT_CONFIG; anything else (a crash, out of memory) is DSNN_OK: the trials report it. */
enum dsnn_status rn_probe_data(struct experiment *ex, int *code, struct dsnn_error *err);

/* ---- runner_child.c ---- */
bool rn_write_full(int fd, const void *p, size_t n);
int rn_read_full(int fd, void *p, size_t n);
double rn_now_s(void);
/* Forks the process of t (its configuration built: t->tcf, t->plugin) starting from cs, with
 * the pipes to it (t->pid, t->rfd, t->wfd). false: t->error says why it could not. */
bool rn_spawn_child(struct experiment *ex, struct trial *t, const struct child_start *cs);
/* As rn_spawn_child with another body: forks a process for t (default signal actions, killed
 * with the host, the other trials' pipes and the lock closed) that runs body(ex, t, cs, wfd,
 * rfd, arg); t->pid, t->rfd (messages from it), t->wfd (to it). false: t->error says why. */
bool rn_spawn_process(struct experiment *ex, struct trial *t, const struct child_start *cs,
                      rn_child_body body, void *arg);
/* Waits for the process pid forked by rn_spawn_process (retrying on EINTR), frees its slot in
 * rn_pids and returns its wait status. */
int rn_reap_process(pid_t pid);
bool rn_send_msg(int fd, uint32_t type, const void *payload, uint32_t size);
/* <dir>/<name> opened for appending, line-buffered, close-on-exec; stderr if it cannot be. */
FILE *rn_child_log(const char *dir, const char *name);
/* The run context of t's process (seed, index, epochs, threads, trial dir, log); sets the
 * threads of libdsnn (ctx->n_threads: what it got). */
void rn_child_ctx(const struct experiment *ex, const struct trial *t, FILE *log,
                  struct dsnn_run_ctx *ctx);
/* Opens the dataset, builds the network, creates the model (r->data.ops, r->mops and
 * r->model_name set): what a trial process does first. */
enum dsnn_status rn_child_build(struct child_run *r, const struct dsnn_config_file *tcf,
                                const struct dsnn_registry_entry *const plugin[5],
                                struct dsnn_run_ctx *ctx, struct dsnn_error *err);
/* Loads the payload of checkpoint cs into r's model (an error names the checkpoint). */
enum dsnn_status rn_child_load_model(struct child_run *r, const struct child_start *cs,
                                     struct dsnn_error *err);
/* Destroys the model, frees the network, closes the dataset of r. */
void rn_child_release(struct child_run *r);
/* The end of a process forked for a trial: st's message (err, or the status text) to the log
 * and as MSG_ERROR (MSG_FATAL when fatal) to the host, else MSG_DONE; closes log; _exit. */
void rn_child_exit(int wfd, FILE *log, enum dsnn_status st, struct dsnn_error *err, bool fatal)
    __attribute__((noreturn));

/* ---- runner_trial.c ---- */
const char *rn_status_str(enum trial_status s);
bool rn_status_final(enum trial_status s);
const char *rn_decision_str(int d);
int rn_decision_parse(const char *s);
void rn_say_clear(struct experiment *ex);
void rn_warn(struct experiment *ex, const char *fmt, ...) DSNN_PRINTF(2, 3);
/* A write to the results directory failed (disk full, I/O error ...): the experiment stops as a
 * kill -9 would stop it, nothing more being written: the journal is frozen, the running trial
 * processes get SIGTERM, no trial starts, and the host exits with DSNN_EXIT_IO naming e; what
 * was written stays consistent, and `resume` continues once the cause is gone. */
void rn_io_failed(struct experiment *ex, const struct dsnn_error *e);
/* Starts the experiment set up in ex (validated, its directory locked, experiment.cfg written,
 * the journal empty): experiment_started, the first trials, the scheduler. Returns the exit
 * code (run, and resume of a journal that has no event yet). */
int rn_start(struct experiment *ex, struct dsnn_error *err);
void rn_format_params(const struct dsnn_param_set *ps, char *buf, size_t size);
char *rn_params_to_cfg(const struct dsnn_param_set *ps);
char *rn_params_to_json(const struct dsnn_param_set *ps);
enum dsnn_status rn_trial_set_params(const struct experiment *ex, struct trial *t,
                                     const char *params_cfg, struct dsnn_error *err);
struct trial *rn_trial_by_index(const struct experiment *ex, int index);
struct trial *rn_trial_by_id(const struct experiment *ex, const char *id);
struct trial *rn_trial_new(struct experiment *ex, int index, struct dsnn_error *err);
void rn_trial_free(struct trial *t);
bool rn_trial_note_reported(struct trial *t, size_t line, int d, double v);
void rn_trial_note_metric(const struct experiment *ex, struct trial *t, double v);
void rn_trial_scan_results(const struct experiment *ex, struct trial *t);
void rn_trial_finish(struct experiment *ex, struct trial *t, enum trial_status status);
/* t ends in ERROR with the formatted message (no_retry: a retry would fail the same way). */
void rn_trial_fail(struct experiment *ex, struct trial *t, bool no_retry, const char *fmt, ...)
    DSNN_PRINTF(4, 5);
struct trial *rn_trial_create(struct experiment *ex, int index, const struct dsnn_param_set *ps,
                              bool *config_error, struct dsnn_error *err);
struct trial *rn_next_queued(const struct experiment *ex);
void rn_trial_perturb(struct experiment *ex, struct trial *t);

/* ---- runner_resume.c ---- */
/* ex->dir, cfg_path, ex->journal.path from results_dir, which must hold experiment.cfg (a run
 * killed before it created journal.jsonl left none: the experiment starts on resume). */
enum dsnn_status rn_results_paths(struct experiment *ex, const char *results_dir, char *cfg_path,
                                  size_t size, struct dsnn_error *err);
/* The trials of ex's journal (read only, never repaired) with their current parameters (the
 * last trial_created / trial_perturbed), as resume rebuilds them, without the search strategy:
 * ex set up by rn_setup. */
enum dsnn_status rn_trials_from_journal(struct experiment *ex, struct dsnn_error *err);

/* ---- runner_search.c ---- */
enum dsnn_status rn_search_create(struct experiment *ex, void **state, struct dsnn_error *err);
void rn_search_save(struct experiment *ex);
enum dsnn_status rn_search_restore(struct experiment *ex, uint64_t *seq, struct dsnn_error *err);
bool rn_suggest_next(struct experiment *ex);
/* The strategy's decision on a new result of t (line `line` of its result.json, epoch, metrics
 * m, the experiment's metric v): on_result, the trial_result journal event, search_state.bin.
 * *perturb: PERTURB with a source to exploit (t->perturb_pending; the decision returned is
 * then PERTURB too). */
int rn_search_decide(struct experiment *ex, struct trial *t, size_t line, int epoch,
                     const struct dsnn_metrics *m, double v, bool *perturb);

#endif
