/* host/runner.h - running an experiment: trials from the search plugin, up to
 * experiment.parallel at once, each in a child process, results written to
 * results/<experiment>/; and continuing an interrupted one (dsnn-host resume). */
#ifndef DSNN_HOST_RUNNER_H
#define DSNN_HOST_RUNNER_H

#include <stdbool.h>
#include "dsnn/status.h"
#include "registry.h"

/* Exit codes of dsnn-host (documented in README and --help). */
enum dsnn_exit {
    DSNN_EXIT_OK = 0,          /* success (all trials TERMINATED) */
    DSNN_EXIT_TRIALS_FAILED = 1, /* experiment ran, but at least one trial ended in ERROR */
    DSNN_EXIT_USAGE = 2,       /* bad command line */
    DSNN_EXIT_CONFIG = 3,      /* configuration file invalid */
    DSNN_EXIT_PLUGIN = 4,      /* a plugin could not be loaded / is missing */
    DSNN_EXIT_IO = 5,          /* results directory or data could not be read / written */
    DSNN_EXIT_INTERRUPTED = 130 /* stopped by SIGINT / SIGTERM (resumable) */
};

struct dsnn_run_options {
    const char *results_root; /* default "results" (overridden by experiment.results_dir) */
    bool quiet;               /* no progress on stdout (table on a terminal, else a line per
                               * epoch) */
    bool overwrite;           /* replace an existing results/<experiment> */
};

/* Runs the experiment described by cfg_path. Returns an enum dsnn_exit value; err describes the
 * failure. */
int dsnn_run_experiment(struct dsnn_registry *reg, const char *cfg_path,
                        const struct dsnn_run_options *opt, struct dsnn_error *err);

/* Continues the experiment of results_dir (written by dsnn_run_experiment, then interrupted by
 * SIGINT / SIGTERM / kill -9 / a crash of the host): reads its experiment.cfg (which must be
 * unchanged) and journal.jsonl; finished trials (TERMINATED, STOPPED, PAUSED, ERROR after its
 * retries) are not run again, unfinished ones continue from their last checkpoint, the search
 * strategy continues where it was (restore op, else the journal replayed into it). Only
 * results_root and overwrite of opt are ignored. Same return values as dsnn_run_experiment;
 * an experiment that had finished is left as it is (0, or 1 if a trial ended in ERROR). */
int dsnn_resume_experiment(struct dsnn_registry *reg, const char *results_dir,
                           const struct dsnn_run_options *opt, struct dsnn_error *err);

/* ---- MPI (runner_mpi.c; without MPI support: a job of one process) ---- */
/* Before anything else in main(): when started by an MPI launcher (mpirun, srun) as one of N > 1
 * processes, MPI_Init. Returns 1 (MPI started, N > 1), 0 (a local run: MPI is not started),
 * -1 with err (started under a launcher with N > 1 but built without MPI, or MPI failed). */
int dsnn_mpi_init(int *argc, char ***argv, struct dsnn_error *err);
int dsnn_mpi_rank(void);
int dsnn_mpi_size(void);
/* A worker rank (1..N-1) of run / resume: runs the trials rank 0 sends until it says stop.
 * Returns an exit code. */
int dsnn_mpi_worker(const struct dsnn_registry *reg, struct dsnn_error *err);
/* Last thing before exit (every rank; rank 0 tells the workers to stop). */
void dsnn_mpi_finalize(void);
void dsnn_mpi_abort(int code);

#endif
