/* train/base_model.c - nupic's BaseModel: optimizer, LR schedule, epoch loop, checkpoint. */
#include "dsnn/io.h"
#include "dsnn/train.h"
#include "train_impl.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct dsnn_key_spec base_model_keys[] = {
    DSNN_KEYS_FROM(dsnn_optim_keys),
    DSNN_KEYS_FROM(dsnn_lr_sched_keys),
    {.name = "debug_weights", .type = DSNN_KEY_BOOL, .def = false,
     .doc = "log weight_mean_<layer> and weight_std_<layer> every epoch, after its round (nupic "
            "debug_weights; a sparse layer's over its active connections)"},
};
DSNN_KEY_TABLE_DEFINE(, dsnn_base_model_keys, base_model_keys);

enum dsnn_status bm_configure(struct dsnn_base_model *bm, const struct dsnn_cfg *cfg,
                              const struct dsnn_run_ctx *ctx, struct dsnn_net *net,
                              struct dsnn_error *err)
{
    enum dsnn_status st;
    memset(bm, 0, sizeof *bm);
    bm->net = net;
    bm->seed = ctx ? ctx->seed : 0;
    if ((st = dsnn_optim_cfg_read(cfg, &bm->optim_cfg, err)) ||
        (st = dsnn_lr_sched_read(cfg, bm->optim_cfg.learning_rate, &bm->sched, err)) ||
        (st = dsnn_cfg_bool(cfg, "debug_weights", false, &bm->debug_weights, err)))
        return st;
    bm->opt = dsnn_optim_new(&bm->optim_cfg, err);
    return bm->opt ? DSNN_OK : (err ? err->status : DSNN_ERR_NOMEM);
}

void bm_log_weights(const struct dsnn_base_model *bm, struct dsnn_metrics *m)
{
    for (size_t i = 0; i < dsnn_net_n_layers(bm->net); i++) {
        const struct dsnn_layer *l = dsnn_net_layer(bm->net, i);
        int k = 0;
        for (size_t b = 0; b < l->n_params; b++) {
            const struct dsnn_param_block *p = &l->params[b];
            if (strcmp(p->name, "weight") != 0 || p->n == 0)
                continue;
            double sum = 0, sq = 0;
            for (size_t j = 0; j < p->n; j++)
                sum += p->value[j];
            const double mean = sum / (double)p->n;
            for (size_t j = 0; j < p->n; j++)
                sq += (p->value[j] - mean) * (p->value[j] - mean);
            char suffix[24] = "";
            if (k++ > 0)
                snprintf(suffix, sizeof suffix, "_%d", k - 1);
            dsnn_metrics_setf(m, mean, "weight_mean_%s%s", l->name, suffix);
            dsnn_metrics_setf(m, sqrt(sq / (double)p->n), "weight_std_%s%s", l->name, suffix);
        }
    }
}

enum dsnn_status dsnn_base_model_init_net(struct dsnn_base_model *bm,
                                          const struct dsnn_dataset_info *info,
                                          struct dsnn_error *err)
{
    struct dsnn_rng rng;
    dsnn_rng_seed(&rng, bm->seed, DSNN_RNG_STREAM_INIT);
    int max_batch = info->batch_size_train > info->batch_size_test ? info->batch_size_train
                                                                   : info->batch_size_test;
    return dsnn_net_init(bm->net, &rng, max_batch, err);
}

enum dsnn_status dsnn_base_model_train_epoch(struct dsnn_base_model *bm, struct dsnn_data *data,
                                             int epoch, const struct dsnn_train_hooks *hooks,
                                             struct dsnn_metrics *m, struct dsnn_error *err)
{
    double lr = dsnn_lr_sched_at(&bm->sched, epoch);
    dsnn_optim_set_lr(bm->opt, lr);
    dsnn_metrics_set(m, "learning_rate", lr);
    enum dsnn_status st = dsnn_train_epoch(bm->net, bm->opt, data, epoch, hooks, &bm->step, m, err);
    if (st == DSNN_OK)
        dsnn_net_on_epoch_end(bm->net); /* e.g. k-winners boost decay (nupic _post_epoch_updates) */
    return st;
}

enum dsnn_status dsnn_base_model_evaluate(struct dsnn_base_model *bm, struct dsnn_data *data,
                                          enum dsnn_split split, struct dsnn_metrics *m,
                                          struct dsnn_error *err)
{
    const char *prefix = split == DSNN_SPLIT_TEST    ? "val"
                         : split == DSNN_SPLIT_NOISE ? "noise"
                                                     : "train_eval";
    return dsnn_evaluate(bm->net, data, split, prefix, m, err);
}

enum dsnn_status dsnn_base_model_save(struct dsnn_base_model *bm, FILE *f, struct dsnn_error *err)
{
    enum dsnn_status st;
    if ((st = dsnn_io_write(f, "BMOD", 4, "model tag", err)) ||
        (st = dsnn_io_write(f, &bm->step, sizeof bm->step, "step", err)) ||
        (st = dsnn_optim_save(bm->opt, f, err)) || (st = dsnn_net_save(bm->net, f, err)))
        return st;
    return DSNN_OK;
}

enum dsnn_status dsnn_base_model_load(struct dsnn_base_model *bm, FILE *f, struct dsnn_error *err)
{
    enum dsnn_status st;
    if ((st = dsnn_io_expect_tag(f, "BMOD", err)) ||
        (st = dsnn_io_read(f, &bm->step, sizeof bm->step, "step", err)) ||
        (st = dsnn_optim_load(bm->opt, f, err)) || (st = dsnn_net_load(bm->net, f, err)))
        return st;
    return DSNN_OK;
}

struct dsnn_base_model *dsnn_base_model_new(const struct dsnn_cfg *cfg,
                                            const struct dsnn_run_ctx *ctx, struct dsnn_net *net,
                                            struct dsnn_error *err)
{
    struct dsnn_base_model *bm = calloc(1, sizeof *bm);
    if (!bm) {
        dsnn_error_set(err, DSNN_ERR_NOMEM, "out of memory");
        return NULL;
    }
    if (bm_configure(bm, cfg, ctx, net, err) != DSNN_OK) {
        dsnn_base_model_free(bm);
        return NULL;
    }
    return bm;
}

void dsnn_base_model_free(struct dsnn_base_model *bm)
{
    bm_release(bm);
    free(bm);
}

struct dsnn_optim *dsnn_base_model_optim(const struct dsnn_base_model *bm)
{
    return bm ? bm->opt : NULL;
}

const struct dsnn_lr_sched *dsnn_base_model_lr_sched(const struct dsnn_base_model *bm)
{
    return bm ? &bm->sched : NULL;
}

void bm_release(struct dsnn_base_model *bm)
{
    if (!bm)
        return;
    dsnn_optim_free(bm->opt);
    bm->opt = NULL;
}

struct dsnn_net *dsnn_base_model_net(const struct dsnn_base_model *bm)
{
    return bm->net;
}

int64_t dsnn_base_model_step(const struct dsnn_base_model *bm)
{
    return bm->step;
}

const struct dsnn_optim_cfg *dsnn_base_model_optim_cfg(const struct dsnn_base_model *bm)
{
    return &bm->optim_cfg;
}

enum dsnn_status dsnn_base_model_reset_optim(struct dsnn_base_model *bm, struct dsnn_error *err)
{
    struct dsnn_optim *o = dsnn_optim_new(&bm->optim_cfg, err);
    if (!o)
        return err ? err->status : DSNN_ERR_NOMEM;
    dsnn_optim_free(bm->opt);
    bm->opt = o;
    return DSNN_OK;
}
