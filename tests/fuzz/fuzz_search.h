/* tests/fuzz/fuzz_search.h - a search plugin with a small space, driven as the host drives it,
 * for fuzz_search_state and the seeds fuzz_corpus writes. */
#ifndef DSNN_FUZZ_SEARCH_H
#define DSNN_FUZZ_SEARCH_H

#include <stdbool.h>
#include <stdio.h>

#include "fuzz_plugins.h"

/* The search plugins that save and restore a state, each with a `search` group. */
struct fuzz_search_cfg {
    const char *plugin;
    const char *cfg;
};
extern const struct fuzz_search_cfg fuzz_searches[];
extern const int fuzz_n_searches;

struct fuzz_search {
    struct dsnn_config_file *cf;
    const struct dsnn_search_ops *ops;
    void *state;
    int n_trials;
};

bool fuzz_search_open(struct fuzz_search *s, int which, int n_trials);
/* Suggests every trial, reports `epochs` epochs of made-up results for each (taking the
 * decisions, exploit after PERTURB), completes them, and saves the state (to memory). */
void fuzz_search_drive(struct fuzz_search *s, int epochs);
void fuzz_search_close(struct fuzz_search *s);
/* The state of strategy `which` with n_trials trials after `epochs` epochs, prefixed by the two
 * bytes fuzz_search_state reads, to f. false on failure. */
bool fuzz_search_seed(int which, int n_trials, int epochs, FILE *f);

#endif
