/* tests/fuzz/fuzz_model.h - a model plugin on a small network and an in-memory dataset, for
 * fuzz_model_load and the seeds fuzz_corpus writes. */
#ifndef DSNN_FUZZ_MODEL_H
#define DSNN_FUZZ_MODEL_H

#include <stdbool.h>
#include <stdio.h>

#include "fuzz_plugins.h"

/* A model plugin and a configuration of its `model` group that it accepts. */
struct fuzz_model {
    const char *plugin;
    const char *cfg;
};
extern const struct fuzz_model fuzz_models[];
extern const int fuzz_n_models;

/* The networks: 0 an MLP with k-winners, 1 a CNN with a residual block and batch norm. */
#define FUZZ_N_NETS 2

struct fuzz_run {
    struct dsnn_config_file *cf;
    struct dsnn_net *net;
    const struct dsnn_model_ops *ops;
    void *model;
    struct dsnn_data data;
    struct dsnn_run_ctx ctx;
};

/* Creates model `model` (index in fuzz_models) on network `net`; false when it fails (then r
 * holds nothing). */
bool fuzz_model_open(struct fuzz_run *r, int model, int net);
/* Trains an epoch, evaluates and saves (to memory): what a loaded state must survive. */
void fuzz_model_exercise(struct fuzz_run *r);
void fuzz_model_close(struct fuzz_run *r);
/* Writes the state of model on net after `epochs` epochs of training to f, prefixed by the two
 * bytes fuzz_model_load reads. false on failure. */
bool fuzz_model_seed(int model, int net, int epochs, FILE *f);

#endif
