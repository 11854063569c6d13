/* tests/plugins/tiny_model.c - see tiny_model.h. */
#include "tiny_model.h"

#include <stdlib.h>

enum dsnn_status tiny_model_create(const struct dsnn_cfg *cfg, const struct dsnn_run_ctx *ctx,
                                   struct dsnn_net *net, const struct dsnn_dataset_info *info,
                                   void **state, struct dsnn_error *err)
{
    struct dsnn_optim_cfg ocfg;
    enum dsnn_status st = dsnn_optim_cfg_read(cfg, &ocfg, err);
    if (st != DSNN_OK)
        return st;
    struct tiny_model *t = calloc(1, sizeof(*t));
    if (!t)
        return dsnn_error_set(err, DSNN_ERR_NOMEM, "tiny model: out of memory");
    t->net = net;
    t->trial_index = ctx ? ctx->trial_index : 0;
    if ((st = dsnn_lr_sched_read(cfg, ocfg.learning_rate, &t->sched, err)) != DSNN_OK)
        goto fail;
    if (!(t->opt = dsnn_optim_new(&ocfg, err))) {
        st = err && err->status != DSNN_OK ? err->status : DSNN_ERR_NOMEM;
        goto fail;
    }
    struct dsnn_rng rng;
    dsnn_rng_seed(&rng, ctx ? ctx->seed : 0, DSNN_RNG_STREAM_INIT);
    int max_batch = info->batch_size_train > info->batch_size_test ? info->batch_size_train
                                                                   : info->batch_size_test;
    if ((st = dsnn_net_init(net, &rng, max_batch, err)) != DSNN_OK)
        goto fail;
    *state = t;
    return DSNN_OK;
fail:
    dsnn_optim_free(t->opt);
    free(t);
    return st;
}

enum dsnn_status tiny_model_train_epoch(void *state, struct dsnn_data *data, int epoch,
                                        struct dsnn_metrics *m, struct dsnn_error *err)
{
    struct tiny_model *t = state;
    double lr = dsnn_lr_sched_at(&t->sched, epoch);
    dsnn_optim_set_lr(t->opt, lr);
    enum dsnn_status st = dsnn_train_epoch(t->net, t->opt, data, epoch, NULL, &t->step, m, err);
    if (st != DSNN_OK)
        return st;
    dsnn_metrics_set(m, "learning_rate", lr);
    dsnn_metrics_set(m, "n_params", (double)dsnn_net_param_count(t->net));
    return DSNN_OK;
}

enum dsnn_status tiny_model_evaluate(void *state, struct dsnn_data *data, enum dsnn_split split,
                                     struct dsnn_metrics *m, struct dsnn_error *err)
{
    struct tiny_model *t = state;
    const char *prefix = split == DSNN_SPLIT_TEST    ? "val"
                         : split == DSNN_SPLIT_NOISE ? "noise"
                                                     : "train";
    return dsnn_evaluate(t->net, data, split, prefix, m, err);
}

enum dsnn_status tiny_model_save(void *state, FILE *f, struct dsnn_error *err)
{
    struct tiny_model *t = state;
    enum dsnn_status st;
    if ((st = dsnn_io_write_u64(f, (uint64_t)t->step, "tiny model step", err)) ||
        (st = dsnn_optim_save(t->opt, f, err)))
        return st;
    return dsnn_net_save(t->net, f, err);
}

enum dsnn_status tiny_model_load(void *state, FILE *f, struct dsnn_error *err)
{
    struct tiny_model *t = state;
    uint64_t step;
    enum dsnn_status st;
    if ((st = dsnn_io_read_u64(f, &step, "tiny model step", err)) ||
        (st = dsnn_optim_load(t->opt, f, err)))
        return st;
    t->step = (int64_t)step;
    return dsnn_net_load(t->net, f, err);
}

void tiny_model_destroy(void *state)
{
    struct tiny_model *t = state;
    if (!t)
        return;
    dsnn_optim_free(t->opt);
    free(t->extra);
    free(t);
}
