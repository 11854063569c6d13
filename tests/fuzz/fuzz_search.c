/* tests/fuzz/fuzz_search.c - see fuzz_search.h. */
#define _XOPEN_SOURCE 700 /* open_memstream */
#include "fuzz_search.h"

#include <stdlib.h>
#include <string.h>

#define SPACE                                                                                     \
    "space = { model = {\n"                                                                       \
    "  learning_rate = { dist = \"loguniform\"; low = 1e-4; high = 1e-1; };\n"                    \
    "  on_perc = { dist = \"choice\"; values = [0.02, 0.05, 0.1]; };\n"                           \
    "  momentum = { dist = \"uniform\"; low = 0.5; high = 0.9; }; }; };\n"
const struct fuzz_search_cfg fuzz_searches[] = {
    {"asha", "grace_period = 1; reduction_factor = 2; max_t = 4; brackets = 2; " SPACE},
    {"median-stop", "grace_period = 1; min_samples_required = 2; " SPACE},
    {"pbt", "perturbation_interval = 1; quantile_fraction = 0.5; " SPACE},
};
const int fuzz_n_searches = (int)(sizeof fuzz_searches / sizeof fuzz_searches[0]);

bool fuzz_search_open(struct fuzz_search *s, int which, int n_trials)
{
    memset(s, 0, sizeof *s);
    const struct fuzz_search_cfg *c = &fuzz_searches[which];
    char text[4096];
    snprintf(text, sizeof text, "search = { plugin = \"%s\"; %s };", c->plugin, c->cfg);
    const struct dsnn_cfg *g = fuzz_config(text, "search", &s->cf);
    const struct dsnn_component *comp = fuzz_component(DSNN_KIND_SEARCH, c->plugin);
    const struct dsnn_search_ctx ctx = {.seed = 42, .num_samples = n_trials, .max_epochs = 4,
                                        .metric = "val_acc", .maximize = true};
    struct dsnn_error err = {0};
    s->ops = comp ? comp->ops : NULL;
    s->n_trials = n_trials;
    if (!s->ops || s->ops->create(g, &ctx, &s->state, &err) != DSNN_OK) {
        fprintf(stderr, "fuzz: search %s: %s\n", c->plugin, err.msg);
        fuzz_search_close(s);
        return false;
    }
    return true;
}

void fuzz_search_drive(struct fuzz_search *s, int epochs)
{
    static struct dsnn_param_set ps;
    static struct dsnn_metrics m;
    struct dsnn_error err = {0};
    bool live[8] = {false};
    int n = s->n_trials < 8 ? s->n_trials : 8;
    for (int i = 0; i < n; i++) {
        bool done = false;
        memset(&ps, 0, sizeof ps);
        live[i] = s->ops->suggest(s->state, i, &ps, &done, &err) == DSNN_OK && !done;
    }
    for (int e = 0; e < epochs; e++)
        for (int i = 0; i < n; i++) {
            if (!live[i])
                continue;
            dsnn_metrics_clear(&m);
            dsnn_metrics_set(&m, "val_acc", 0.1 * (i + 1) + 0.01 * e);
            dsnn_metrics_set(&m, "val_loss", 1.0 / (1 + i + e));
            enum dsnn_search_decision d = s->ops->on_result(s->state, i, e, &m);
            if (d == DSNN_SEARCH_PERTURB && s->ops->exploit) {
                int source = -1;
                memset(&ps, 0, sizeof ps);
                if (s->ops->exploit(s->state, i, &source, &ps, &err) == DSNN_OK &&
                    (source < 0 || source >= s->n_trials))
                    abort(); /* exploit names a trial that does not exist */
            } else if (d == DSNN_SEARCH_STOP || d == DSNN_SEARCH_PAUSE) {
                live[i] = false;
                s->ops->on_complete(s->state, i, false);
            }
        }
    for (int i = 0; i < n; i++)
        if (live[i])
            s->ops->on_complete(s->state, i, false);
    char *buf = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&buf, &size);
    if (f) {
        (void)s->ops->save(s->state, f, &err);
        fclose(f);
    }
    free(buf);
}

void fuzz_search_close(struct fuzz_search *s)
{
    if (s->state)
        s->ops->destroy(s->state);
    dsnn_config_file_free(s->cf);
    memset(s, 0, sizeof *s);
}

bool fuzz_search_seed(int which, int n_trials, int epochs, FILE *f)
{
    struct fuzz_search s;
    if (!fuzz_search_open(&s, which, n_trials))
        return false;
    if (epochs > 0)
        fuzz_search_drive(&s, epochs);
    struct dsnn_error err = {0};
    unsigned char head[2] = {(unsigned char)which, (unsigned char)(n_trials - 1)};
    bool ok = fwrite(head, 1, 2, f) == 2 && s.ops->save(s.state, f, &err) == DSNN_OK;
    if (!ok)
        fprintf(stderr, "fuzz: seed of search %s: %s\n", fuzz_searches[which].plugin, err.msg);
    fuzz_search_close(&s);
    return ok;
}
