/* runner_search.c - the search strategy on the host side: its instance, its state file
 * search_state.bin (strategies with save and restore), and asking it for the next trial. */
#include "runner_impl.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

static const char search_magic[8] = {'D', 'S', 'N', 'N', 'S', 'R', 'C', 'H'};

/* search_state.bin: magic, u64 seq (the journal's search events it reflects), the state. */
void rn_search_save(struct experiment *ex)
{
    if (!ex->search_saves)
        return;
    char *buf = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&buf, &size);
    struct dsnn_error err = {0};
    enum dsnn_status st = DSNN_ERR_NOMEM;
    if (f) {
        uint64_t seq = ex->journal.seq;
        fwrite(search_magic, 1, sizeof search_magic, f);
        fwrite(&seq, sizeof seq, 1, f);
        st = ex->sops->save(ex->search, f, &err);
        if (fclose(f) != 0 && st == DSNN_OK)
            st = dsnn_error_set(&err, DSNN_ERR_NOMEM, "out of memory");
    }
    if (st == DSNN_OK) {
        char path[1200];
        snprintf(path, sizeof path, "%s/" SEARCH_STATE_FILE, ex->dir);
        st = dsnn_write_file_atomic(path, buf, size, &err);
    }
    free(buf);
    if (st != DSNN_OK) {
        /* DSNN_ERR_UNSUPPORTED: this instance does not save (a quiet choice of the strategy) */
        if (st != DSNN_ERR_UNSUPPORTED)
            rn_warn(ex, "search '%s': cannot save its state (%s); a resume will replay the journal",
                    ex->plugin[DSNN_KIND_SEARCH]->name, err.msg[0] ? err.msg : dsnn_status_str(st));
        ex->search_saves = false;
        char path[1200];
        snprintf(path, sizeof path, "%s/" SEARCH_STATE_FILE, ex->dir);
        unlink(path);
    }
}

/* Restores the strategy from search_state.bin; *seq gets the search events it reflects. */
enum dsnn_status rn_search_restore(struct experiment *ex, uint64_t *seq,
                                   struct dsnn_error *err)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/" SEARCH_STATE_FILE, ex->dir);
    unsigned char *data = NULL;
    size_t size = 0;
    enum dsnn_status st = dsnn_read_file(path, &data, &size, err);
    if (st != DSNN_OK)
        return st;
    if (size < 16 || memcmp(data, search_magic, 8) != 0) {
        free(data);
        return dsnn_error_set(err, DSNN_ERR_FORMAT, "%s: not a search state file", path);
    }
    memcpy(seq, data + 8, 8);
    FILE *f = fmemopen(data + 16, size - 16 ? size - 16 : 1, "rb");
    if (!f) {
        free(data);
        return dsnn_error_set(err, DSNN_ERR_NOMEM, "%s: cannot open a memory stream", path);
    }
    st = ex->sops->restore(ex->search, f, err);
    fclose(f);
    free(data);
    if (st != DSNN_OK)
        dsnn_error_prefix(err, "%s", path);
    return st;
}


/* Asks the strategy for the next trial. false: none now (done, or a fatal error). */
bool rn_suggest_next(struct experiment *ex)
{
    if (ex->search_done || ex->fatal)
        return false;
    if (ex->n_trials >= MAX_TRIALS) {
        ex->search_done = true;
        return false;
    }
    struct dsnn_param_set ps;
    memset(&ps, 0, sizeof ps);
    bool done = false, config_error = false;
    struct dsnn_error err = {0};
    if (ex->sops->suggest(ex->search, ex->next_index, &ps, &done, &err) != DSNN_OK) {
        dsnn_error_prefix(&err, "search '%s': suggest(%d)", ex->plugin[DSNN_KIND_SEARCH]->name,
                          ex->next_index);
        ex->fatal = true;
        ex->fatal_code = DSNN_EXIT_CONFIG;
        ex->fatal_err = err;
        ex->search_done = true;
        return false;
    }
    if (done) {
        ex->search_done = true;
        return false;
    }
    struct trial *t = rn_trial_create(ex, ex->next_index, &ps, &config_error, &err);
    if (!t && !config_error && err.status == DSNN_ERR_IO) {
        rn_io_failed(ex, &err);
        return false;
    }
    if (!t) {
        ex->fatal = true;
        if (!config_error)
            ex->fatal_code = err.status == DSNN_ERR_IO ? DSNN_EXIT_IO : DSNN_EXIT_CONFIG;
        ex->fatal_err = err;
        return false;
    }
    ex->next_index++;
    return true;
}

enum dsnn_status rn_search_create(struct experiment *ex, void **state, struct dsnn_error *err)
{
    struct dsnn_search_ctx sctx = {
        .seed = (uint64_t)ex->seed,
        .num_samples = (int)ex->num_samples,
        .max_epochs = (int)ex->epochs,
        .metric = ex->metric,
        .maximize = ex->maximize,
    };
    const struct dsnn_cfg *root = dsnn_config_file_root(ex->cf);
    enum dsnn_status st = ex->sops->create(dsnn_cfg_group(root, "search"), &sctx, state, err);
    if (st != DSNN_OK)
        dsnn_error_prefix(err, "search '%s'", ex->plugin[DSNN_KIND_SEARCH]->name);
    return st;
}

static void metrics_to_json(struct dsnn_sbuf *b, const struct dsnn_metrics *m)
{
    dsnn_sbuf_puts(b, "{");
    for (size_t i = 0; i < m->n; i++) {
        dsnn_sbuf_puts(b, i ? ", " : "");
        dsnn_sbuf_json_string(b, m->items[i].name);
        dsnn_sbuf_puts(b, ": ");
        dsnn_sbuf_json_number(b, m->items[i].value);
    }
    dsnn_sbuf_puts(b, "}");
}

/* PERTURB for t at result line `line`: exploit() names the source and the new parameters,
 * kept on t (perturb_pending) and appended to the journal event b. false: the answer is
 * ignored (warned about once) and the decision becomes CONTINUE. */
static bool search_exploit(struct experiment *ex, struct trial *t, size_t line,
                           struct dsnn_sbuf *b)
{
    int source = t->index;
    struct dsnn_param_set np;
    memset(&np, 0, sizeof np);
    struct dsnn_error err = {0};
    char *cfg = NULL;
    const char *why = NULL;
    if (!ex->sops->exploit)
        why = "the strategy has no exploit op";
    else if (ex->checkpoint_freq <= 0 || ex->warned_no_checkpoint)
        why = "the trials have no checkpoints";
    else if (ex->sops->exploit(ex->search, t->index, &source, &np, &err) != DSNN_OK)
        why = err.msg;
    else if (!rn_trial_by_index(ex, source))
        why = "exploit() named no existing trial";
    else if (!(cfg = rn_params_to_cfg(&np)))
        why = "out of memory";
    if (why) {
        if (!ex->warned_no_exploit)
            rn_warn(ex, "search '%s' answered PERTURB for %s, which is ignored: %s",
                    ex->plugin[DSNN_KIND_SEARCH]->name, t->id, why);
        ex->warned_no_exploit = true;
        dsnn_sbuf_puts(b, ", \"ignored\": ");
        dsnn_sbuf_json_string(b, why);
        return false;
    }
    char *json = rn_params_to_json(&np);
    dsnn_sbuf_printf(b, ", \"exploit\": {\"source\": \"%s\", \"params\": %s, \"params_cfg\": ",
                     rn_trial_by_index(ex, source)->id, json ? json : "{}");
    dsnn_sbuf_json_string(b, cfg);
    dsnn_sbuf_puts(b, "}");
    free(json);
    free(t->perturb_cfg);
    t->perturb_cfg = cfg;
    t->perturb_source = source;
    t->perturb_line = line;
    t->perturb_pending = true;
    return true;
}

int rn_search_decide(struct experiment *ex, struct trial *t, size_t line, int epoch,
                     const struct dsnn_metrics *m, double v, bool *perturb)
{
    int decision = ex->sops->on_result ? (int)ex->sops->on_result(ex->search, t->index, epoch, m)
                                       : DSNN_SEARCH_CONTINUE;
    if (decision < DSNN_SEARCH_CONTINUE || decision > DSNN_SEARCH_PERTURB)
        decision = DSNN_SEARCH_CONTINUE;
    struct dsnn_sbuf b = {0};
    dsnn_sbuf_printf(&b,
                     "\"event\": \"trial_result\", \"seq\": %llu, \"trial_id\": \"%s\", "
                     "\"epoch\": %d, \"line\": %zu, ",
                     (unsigned long long)++ex->journal.seq, t->id, epoch, line);
    dsnn_sbuf_json_string(&b, ex->metric);
    dsnn_sbuf_puts(&b, ": ");
    dsnn_sbuf_json_number(&b, v);
    dsnn_sbuf_printf(&b, ", \"decision\": \"%s\"", rn_decision_str(decision));
    *perturb = false;
    if (decision == DSNN_SEARCH_PERTURB) {
        *perturb = search_exploit(ex, t, line, &b);
        if (!*perturb)
            decision = DSNN_SEARCH_CONTINUE;
    }
    dsnn_sbuf_puts(&b, ", \"metrics\": ");
    metrics_to_json(&b, m);
    if (!b.oom)
        dsnn_journal_add(&ex->journal, b.p);
    dsnn_sbuf_free(&b);
    if (!rn_trial_note_reported(t, line, *perturb ? DSNN_SEARCH_PERTURB : decision, v))
        rn_warn(ex, "out of memory");
    rn_search_save(ex);
    return decision;
}
