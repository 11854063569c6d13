/* host/evaluate.h - `dsnn-host evaluate TRIAL_DIR [--noise-levels L,...] [--repeats N]
 * [--checkpoint FILE]`: nupic.research's offline noise-robustness test (dynamic_sparse
 * validation/noise_tests.py) on a trial of a results directory.
 *
 * The trial's configuration is rebuilt as the runner built it (<dir>/../experiment.cfg with the
 * trial's searched values from journal.jsonl: its last trial_created / trial_perturbed event;
 * seed and configuration hash as the runner computes them), its checkpoint is checked against
 * it (trial index, configuration hash, model) and loaded into the dataset, network and model
 * built as a trial process builds them, in a child process (a crashing plugin is an error
 * message). For each noise level L and repeat r the model is evaluated on the dataset's noise
 * split with test_noise = true, noise_level = L and noise_seed = S (r = 0) or
 * dsnn_seed_mix(S, r), S being the trial's noise seed (dataset.noise_seed if its configuration
 * sets it, else the trial seed, as the trial's own noise split): repeat 0 at the trial's
 * noise_level gives the trial's noise_acc. Level 0 is the noise split with no value replaced,
 * i.e. the test split: its accuracy is the trial's val_acc of the checkpoint's state.
 *
 * Prints a table (level, accuracy mean and sample std over the repeats, loss mean and std) and
 * writes <trial>/noise_eval.json atomically; what the plugins log goes to
 * <trial>/noise_eval.log. */
#ifndef DSNN_HOST_EVALUATE_H
#define DSNN_HOST_EVALUATE_H

#include <stdbool.h>
#include <stddef.h>
#include "dsnn/status.h"
#include "registry.h"

#define DSNN_EVAL_FILE "noise_eval.json"
#define DSNN_EVAL_LOG "noise_eval.log"
#define DSNN_EVAL_MAX_LEVELS 101
#define DSNN_EVAL_MAX_REPEATS 1000

struct dsnn_eval_options {
    const double *levels; /* NULL: nupic's 0, 0.025, ..., 0.2 */
    size_t n_levels;
    int repeats;            /* 0: 1 */
    const char *checkpoint; /* NULL: <trial>/checkpoint.bin */
    bool quiet;             /* no table on stdout */
};

/* Parses "0,0.05,0.1" (numbers in [0, 1], strictly increasing, at most cap of them) into
 * levels; DSNN_ERR_INVALID naming the item that is not. */
enum dsnn_status dsnn_eval_parse_levels(const char *text, double *levels, size_t cap, size_t *n,
                                        struct dsnn_error *err);
/* Parses a repeat count in [1, DSNN_EVAL_MAX_REPEATS]; DSNN_ERR_INVALID otherwise. */
enum dsnn_status dsnn_eval_parse_repeats(const char *text, int *out, struct dsnn_error *err);

/* The whole command. Returns an enum dsnn_exit value: 0; 1 the evaluation failed in a plugin
 * (an error, or the process crashed); 3 the configuration cannot be rebuilt, the checkpoint is
 * of another trial / configuration / model, or the dataset has no noise split; 4 a plugin is
 * missing; 5 not a trial folder, no (readable) checkpoint, data or noise_eval.json that cannot
 * be read / written. err says what and where. */
int dsnn_evaluate_trial(struct dsnn_registry *reg, const char *trial_dir,
                        const struct dsnn_eval_options *opt, struct dsnn_error *err);

#endif
