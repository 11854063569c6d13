/* train/scheme.c - the scheme kit: the model plugin around a struct dsnn_scheme (dsnn/scheme.h). */
#include "dsnn/io.h"
#include "dsnn/scheme.h"
#include "dsnn/schedules.h"
#include "train/train_impl.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The rule of a round, with or without the layer's index. */
struct rule {
    dsnn_scheme_prune_fn prune;
    dsnn_scheme_prune_layer_fn prune_layer;
    dsnn_scheme_keep_fn keep;
    dsnn_scheme_keep_layer_fn keep_layer;
};

enum dsnn_status dsnn_scheme_create(const struct dsnn_scheme *s, const struct dsnn_key_spec *keys,
                                    size_t n_keys, const struct dsnn_cfg *cfg,
                                    const struct dsnn_run_ctx *ctx, struct dsnn_net *net,
                                    const struct dsnn_dataset_info *info, void **state,
                                    struct dsnn_error *err)
{
    struct dsnn_sparse_model *sm = calloc(1, sizeof *sm);
    if (!sm)
        return dsnn_error_set(err, DSNN_ERR_NOMEM, "out of memory");
    sm->scheme = s;
    sm->dense = (s->flags & DSNN_SCHEME_DENSE) != 0;
    sm->params = calloc(1, s->params_size ? s->params_size : 1);
    const struct dsnn_key_table table = {keys, n_keys};
    enum dsnn_status st = DSNN_OK;
    if (!sm->params)
        st = dsnn_error_set(err, DSNN_ERR_NOMEM, "out of memory");
    else if (sm->dense)
        st = bm_configure(&sm->base, cfg, ctx, net, err);
    else
        st = sm_configure(sm, cfg, ctx, net, err);
    if (st == DSNN_OK)
        st = dsnn_keys_read(&table, cfg, sm->params, err);
    if (st == DSNN_OK && (s->flags & DSNN_SCHEME_PRUNE_SCHEDULE))
        st = dsnn_prune_schedule_read(cfg, &sm->sched, err);
    if (st == DSNN_OK && s->configure)
        st = s->configure(sm, sm->params, cfg, ctx, info, err);
    if (st == DSNN_OK)
        st = sm->dense ? dsnn_base_model_init_net(&sm->base, info, err)
                       : sm_init_net(sm, info, err);
    if (st == DSNN_OK && s->init)
        st = s->init(sm, sm->params, ctx, err);
    if (st != DSNN_OK) {
        dsnn_scheme_destroy(sm);
        return st;
    }
    *state = sm;
    return DSNN_OK;
}

static enum dsnn_status hook_forward(void *user, struct dsnn_net *net, const struct dsnn_batch *b,
                                     struct dsnn_error *err)
{
    (void)net;
    struct dsnn_sparse_model *sm = user;
    enum dsnn_status st;
    if (sm->coact_tracking && (st = dsnn_coact_accumulate(sm->coact, b->x, b->n, err)))
        return st;
    return sm->scheme->after_forward ? sm->scheme->after_forward(sm, sm->params, b, err)
                                     : DSNN_OK;
}

static enum dsnn_status hook_backward(void *user, struct dsnn_net *net, int64_t step,
                                      struct dsnn_error *err)
{
    (void)net;
    struct dsnn_sparse_model *sm = user;
    return sm->scheme->after_backward(sm, sm->params, step, err);
}

static enum dsnn_status hook_step(void *user, struct dsnn_net *net, int64_t step,
                                  struct dsnn_error *err)
{
    (void)net;
    struct dsnn_sparse_model *sm = user;
    return sm->scheme->after_step(sm, sm->params, step, err);
}

enum dsnn_status dsnn_scheme_train_pass(void *state, struct dsnn_data *data, int epoch,
                                        struct dsnn_metrics *m, struct dsnn_error *err)
{
    struct dsnn_sparse_model *sm = state;
    const struct dsnn_scheme *s = sm->scheme;
    const bool scheduled = (s->flags & DSNN_SCHEME_PRUNE_SCHEDULE) != 0;
    const bool active = scheduled && dsnn_prune_schedule_active(&sm->sched, epoch);
    sm->epoch_rounds_before = sm->rounds_ended;
    int train_epoch = epoch;
    enum dsnn_status st;
    dsnn_sparse_update_tally_clear(&sm->tally);
    if (s->begin_epoch && (st = s->begin_epoch(sm, sm->params, epoch, &train_epoch, m, err)))
        return st;
    sm->coact_tracking = dsnn_coact_tracks_epoch(sm->coact, &sm->sched, active, epoch);
    const struct dsnn_train_hooks hooks = {
        .user = sm,
        .after_forward = sm->coact_tracking || s->after_forward ? hook_forward : NULL,
        .after_backward = s->after_backward ? hook_backward : NULL,
        .after_step = s->after_step ? hook_step : NULL,
    };
    const bool any = hooks.after_forward || hooks.after_backward || hooks.after_step;
    if (sm->coact_tracking && (st = dsnn_coact_begin_epoch(sm->coact, err)))
        return st;
    if ((st = dsnn_base_model_train_epoch(&sm->base, data, train_epoch, any ? &hooks : NULL, m,
                                          err)))
        return st;
    if (sm->coact_tracking && (st = dsnn_coact_end_epoch(sm->coact, err)))
        return st;
    sm->coact_tracking = false;
    return DSNN_OK;
}

/* surviving_synapses_avg: the mean of the finite surviving_synapses_<layer> of m (NaN: none). */
static void log_surviving_avg(const struct dsnn_sparse_model *sm, struct dsnn_metrics *m)
{
    double sum = 0, v;
    size_t n = 0;
    for (size_t i = 0; i < sm->n_layers; i++) {
        char name[DSNN_METRIC_NAME_MAX + DSNN_LAYER_NAME_MAX];
        snprintf(name, sizeof name, "surviving_synapses_%s", dsnn_sparse_model_layer(sm, i)->name);
        if (dsnn_metrics_get(m, name, &v) && isfinite(v))
            sum += v, n++;
    }
    dsnn_metrics_set(m, "surviving_synapses_avg", n ? sum / (double)n : NAN);
}

enum dsnn_status dsnn_scheme_end_epoch(void *state, struct dsnn_data *data, int epoch,
                                       struct dsnn_metrics *m, bool *rewired,
                                       struct dsnn_error *err)
{
    (void)data;
    struct dsnn_sparse_model *sm = state;
    const struct dsnn_scheme *s = sm->scheme;
    const bool scheduled = (s->flags & DSNN_SCHEME_PRUNE_SCHEDULE) != 0;
    const bool active = scheduled && dsnn_prune_schedule_active(&sm->sched, epoch);
    const uint64_t rounds_before = sm->rounds_ended;
    enum dsnn_status st;
    *rewired = false;
    if (scheduled) {
        dsnn_metrics_set(m, "pruning_active", active);
        if (!active)
            dsnn_sparse_model_log_idle(sm, m);
        else if (s->round && (st = s->round(sm, sm->params, epoch, m, err)))
            return st;
    }
    if (s->end_epoch && (st = s->end_epoch(sm, sm->params, epoch, m, err)))
        return st;
    if ((s->flags & DSNN_SCHEME_LOG_IDLE) && sm->rounds_ended == sm->epoch_rounds_before)
        dsnn_sparse_model_log_idle(sm, m);
    dsnn_sparse_model_log_density(sm, m);
    if (sm->base.debug_weights)
        bm_log_weights(&sm->base, m);
    if (sm->log_surviving)
        log_surviving_avg(sm, m);
    *rewired = sm->rounds_ended != rounds_before;
    return DSNN_OK;
}

enum dsnn_status dsnn_scheme_train_epoch(void *state, struct dsnn_data *data, int epoch,
                                         struct dsnn_metrics *m, struct dsnn_error *err)
{
    bool rewired;
    enum dsnn_status st = dsnn_scheme_train_pass(state, data, epoch, m, err);
    return st != DSNN_OK ? st : dsnn_scheme_end_epoch(state, data, epoch, m, &rewired, err);
}

enum dsnn_status dsnn_scheme_evaluate(void *state, struct dsnn_data *data, enum dsnn_split split,
                                      struct dsnn_metrics *m, struct dsnn_error *err)
{
    struct dsnn_sparse_model *sm = state;
    return dsnn_base_model_evaluate(&sm->base, data, split, m, err);
}

/* The scheme's checkpoint, written (save) or read back in one order: the base model's (dense) or
 * the sparse model's, the coactivation history, the scheme's tag and state members, then its
 * save / load callback. */
static enum dsnn_status scheme_io(struct dsnn_sparse_model *sm, FILE *f, bool save,
                                  struct dsnn_error *err)
{
    const struct dsnn_scheme *s = sm->scheme;
    enum dsnn_status st;
    if (sm->dense)
        st = save ? dsnn_base_model_save(&sm->base, f, err)
                  : dsnn_base_model_load(&sm->base, f, err);
    else
        st = save ? dsnn_sparse_model_save(sm, f, err) : dsnn_sparse_model_load(sm, f, err);
    if (st == DSNN_OK && sm->coact)
        st = save ? dsnn_coact_save(sm->coact, f, err) : dsnn_coact_load(sm->coact, f, err);
    if (st == DSNN_OK && s->tag)
        st = save ? dsnn_io_write(f, s->tag, 4, "scheme tag", err)
                  : dsnn_io_expect_tag(f, s->tag, err);
    for (size_t i = 0; st == DSNN_OK && i < s->n_state; i++) {
        const struct dsnn_scheme_state *v = &s->state[i];
        void *p = (char *)sm->params + v->offset;
        const size_t size = v->per_layer ? v->size * sm->n_layers : v->size;
        st = save ? dsnn_io_write(f, p, size, v->what, err)
                  : dsnn_io_read(f, p, size, v->what, err);
    }
    if (st == DSNN_OK && save && s->save)
        st = s->save(sm, sm->params, f, err);
    if (st == DSNN_OK && !save && s->load)
        st = s->load(sm, sm->params, f, err);
    return st;
}

enum dsnn_status dsnn_scheme_save(void *state, FILE *f, struct dsnn_error *err)
{
    return scheme_io(state, f, true, err);
}

enum dsnn_status dsnn_scheme_load(void *state, FILE *f, struct dsnn_error *err)
{
    return scheme_io(state, f, false, err);
}

void dsnn_scheme_destroy(void *state)
{
    struct dsnn_sparse_model *sm = state;
    if (!sm)
        return;
    if (sm->params && sm->scheme->destroy)
        sm->scheme->destroy(sm->params);
    free(sm->params);
    sm_release(sm);
    free(sm);
}

/* ---- Coactivation-driven schemes ---- */

enum dsnn_status dsnn_scheme_track_coact(struct dsnn_sparse_model *sm, bool dense, double alpha,
                                         struct dsnn_error *err)
{
    for (size_t i = 0; i < sm->n_layers; i++)
        if (sm->layer_index[i] < dsnn_net_n_layers(sm->base.net) &&
            dsnn_net_layer(sm->base.net, sm->layer_index[i]) != sm->layer[i])
            return dsnn_error_set(err, DSNN_ERR_CONFIG,
                                  "layer '%s': coactivations of layers inside residual blocks are "
                                  "not tracked; exclude them (start_sparse / end_sparse) or use "
                                  "sparse_linear_only = true",
                                  sm->layer[i]->name);
    dsnn_coact_free(sm->coact);
    sm->coact = dsnn_coact_new(sm->base.net, sm->layer_index, sm->n_layers, dense, alpha, err);
    sm->coact_alpha = alpha;
    return sm->coact ? DSNN_OK : (err ? err->status : DSNN_ERR_NOMEM);
}

enum dsnn_status dsnn_scheme_track_coact_opts(struct dsnn_sparse_model *sm, bool dense,
                                              double alpha, const struct dsnn_coact_options *o,
                                              struct dsnn_error *err)
{
    enum dsnn_status st = dsnn_scheme_track_coact(sm, dense, alpha, err);
    if (st == DSNN_OK && o)
        st = dsnn_coact_set_options(sm->coact, o, err);
    return st;
}

/* Hebbian growth: the score of an inactive connection is its coactivation. */
struct heb_score {
    const float *dense; /* [n_out][n_in] */
    int n_in;
};

static enum dsnn_status heb_score(void *user, struct dsnn_layer *l, int row0, int row1, float *out,
                                  struct dsnn_error *err)
{
    (void)l;
    (void)err;
    const struct heb_score *h = user;
    memcpy(out, h->dense + (size_t)row0 * (size_t)h->n_in,
           (size_t)(row1 - row0) * (size_t)h->n_in * sizeof *out);
    return DSNN_OK;
}

/* One layer of dsnn_scheme_coact_round. */
static enum dsnn_status coact_layer(struct dsnn_sparse_model *sm, size_t i, const void *params,
                                    struct rule r, bool hebbian_grow,
                                    struct dsnn_metrics *m, struct dsnn_error *err)
{
    struct dsnn_layer *l = dsnn_sparse_model_layer(sm, i);
    struct dsnn_sparse_csr c;
    dsnn_sparse_get_csr(l, &c);
    if (c.nnz == (size_t)c.n_in * (size_t)c.n_out)
        return DSNN_OK; /* a full layer has nowhere to regrow: left alone */
    const float *coact = sm->coact ? dsnn_coact_values(sm->coact, i) : NULL;
    if (sm->coact && !coact)
        return dsnn_error_set(err, DSNN_ERR_INTERNAL,
                              "layer '%s': coactivations are not aligned with the topology",
                              l->name);
    uint8_t *keep = malloc(c.nnz ? c.nnz : 1);
    if (!keep)
        return dsnn_error_set(err, DSNN_ERR_NOMEM, "out of memory");
    size_t n_keep = 0;
    enum dsnn_status st =
        r.keep ? r.keep(params, c.value, coact, c.nnz, keep, &n_keep, err)
               : r.keep_layer(params, i, c.value, coact, c.nnz, keep, &n_keep, err);
    if (st == DSNN_OK) {
        double samples = (double)dsnn_coact_samples(sm->coact);
        if (coact && c.nnz && samples > 0) {
            double sum = 0;
            for (size_t k = 0; k < c.nnz; k++)
                sum += coact[k];
            dsnn_metrics_setf(m, sum / (double)c.nnz / samples, "coact_mean_%s", l->name);
        }
        dsnn_metrics_setf(m, (double)n_keep, "kept_%s", l->name);
        size_t inactive = (size_t)c.n_in * (size_t)c.n_out - c.nnz;
        size_t grow = dsnn_rule_grow_count(c.nnz, n_keep, inactive);
        struct heb_score hs = {hebbian_grow ? dsnn_coact_dense(sm->coact, i) : NULL, c.n_in};
        if (hebbian_grow && !hs.dense)
            st = dsnn_error_set(err, DSNN_ERR_INTERNAL,
                                "layer '%s': no dense coactivations for Hebbian growth", l->name);
        else
            st = dsnn_dynsparse_apply(l, keep, grow, hebbian_grow ? heb_score : NULL, &hs,
                                      &sm->topo_rng, err);
    }
    free(keep);
    return st;
}

static enum dsnn_status coact_round(struct dsnn_sparse_model *sm, const void *params,
                                    struct rule r, bool hebbian_grow, struct dsnn_metrics *m,
                                    struct dsnn_error *err)
{
    enum dsnn_status st = dsnn_sparse_model_update_begin(sm, err);
    for (size_t i = 0; st == DSNN_OK && i < sm->n_layers; i++)
        st = coact_layer(sm, i, params, r, hebbian_grow, m, err);
    if (st != DSNN_OK)
        return st;
    dsnn_sparse_model_update_pruned(sm);
    return dsnn_sparse_model_update_end(sm, m, err);
}

enum dsnn_status dsnn_scheme_coact_round(struct dsnn_sparse_model *sm, const void *params,
                                         dsnn_scheme_keep_fn keep, bool hebbian_grow,
                                         struct dsnn_metrics *m, struct dsnn_error *err)
{
    return coact_round(sm, params, (struct rule){.keep = keep}, hebbian_grow, m, err);
}

enum dsnn_status dsnn_scheme_coact_round_layers(struct dsnn_sparse_model *sm, const void *params,
                                                dsnn_scheme_keep_layer_fn keep, bool hebbian_grow,
                                                struct dsnn_metrics *m, struct dsnn_error *err)
{
    return coact_round(sm, params, (struct rule){.keep_layer = keep}, hebbian_grow, m, err);
}

/* ---- Rounds within the epoch ---- */

enum dsnn_status dsnn_scheme_step_round(struct dsnn_sparse_model *sm, void *params, int64_t step,
                                        int64_t begin, int64_t end, int64_t every,
                                        dsnn_scheme_step_fn round, const char *name,
                                        struct dsnn_error *err)
{
    const int64_t t = step + 1; /* steps completed once this one is applied */
    if (!dsnn_schedule_due(t, begin, end, every))
        return DSNN_OK;
    enum dsnn_status st = round(sm, params, t, err);
    if (st != DSNN_OK)
        dsnn_error_prefix(err, "%s at step %lld", name, (long long)t);
    return st;
}

void dsnn_scheme_dense_grad_when_due(struct dsnn_sparse_model *sm, int64_t begin, int64_t end,
                                     int64_t every)
{
    const int64_t t = dsnn_base_model_step(&sm->base) + 1; /* the step being computed */
    dsnn_sparse_model_keep_dense_grad(sm, every <= 0 || dsnn_schedule_due(t, begin, end, every));
}

enum dsnn_status dsnn_scheme_update_end(struct dsnn_sparse_model *sm, struct dsnn_error *err)
{
    return dsnn_sparse_model_update_end_tally(sm, &sm->tally, err);
}

size_t dsnn_scheme_log_rounds(const struct dsnn_sparse_model *sm, struct dsnn_metrics *m)
{
    dsnn_sparse_update_tally_log(&sm->tally, sm, m);
    return sm->tally.rounds;
}

/* ---- Prune and regrow at random ---- */

static enum dsnn_status random_round(struct dsnn_sparse_model *sm, const void *params,
                                     struct rule r, struct dsnn_metrics *m,
                                     struct dsnn_error *err)
{
    size_t removed[DSNN_SPARSE_MODEL_MAX_LAYERS] = {0};
    enum dsnn_status st = dsnn_sparse_model_update_begin(sm, err);
    for (size_t i = 0; st == DSNN_OK && i < sm->n_layers; i++) {
        struct dsnn_layer *l = dsnn_sparse_model_layer(sm, i);
        if (dsnn_sparse_density(l) < 1.0) /* a full layer has nowhere to regrow: left alone */
            st = r.prune ? r.prune(params, l, &removed[i], err)
                         : r.prune_layer(params, i, l, &removed[i], err);
    }
    if (st != DSNN_OK)
        return st;
    dsnn_sparse_model_update_pruned(sm);
    for (size_t i = 0; st == DSNN_OK && i < sm->n_layers; i++)
        st = dsnn_sparse_grow_random(dsnn_sparse_model_layer(sm, i), removed[i], &sm->topo_rng,
                                     err);
    return st != DSNN_OK ? st : dsnn_sparse_model_update_end(sm, m, err);
}

enum dsnn_status dsnn_scheme_random_round(struct dsnn_sparse_model *sm, const void *params,
                                          dsnn_scheme_prune_fn prune, struct dsnn_metrics *m,
                                          struct dsnn_error *err)
{
    return random_round(sm, params, (struct rule){.prune = prune}, m, err);
}

enum dsnn_status dsnn_scheme_random_round_layers(struct dsnn_sparse_model *sm,
                                                 const void *params,
                                                 dsnn_scheme_prune_layer_fn prune,
                                                 struct dsnn_metrics *m, struct dsnn_error *err)
{
    return random_round(sm, params, (struct rule){.prune_layer = prune}, m, err);
}

enum dsnn_status dsnn_scheme_read_per_layer(const struct dsnn_sparse_model *sm,
                                            const struct dsnn_cfg *cfg, const char *key,
                                            double def, double *out, struct dsnn_error *err)
{
    double v[DSNN_SPARSE_MODEL_MAX_LAYERS];
    size_t got = 0;
    enum dsnn_status st =
        dsnn_cfg_float_or_array(cfg, key, def, v, DSNN_SPARSE_MODEL_MAX_LAYERS, &got, err);
    if (st != DSNN_OK)
        return st;
    if (got != 1 && got != sm->n_layers)
        return dsnn_cfg_count_error(cfg, key, got, "", sm->n_layers, "sparse layers",
                                    "one value or one per sparse layer", err);
    for (size_t i = 0; i < sm->n_layers; i++)
        out[i] = v[got == 1 ? 0 : i];
    return DSNN_OK;
}
