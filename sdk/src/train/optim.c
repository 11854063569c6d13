/* train/optim.c - SGD (momentum, Nesterov, weight decay) and Adam with PyTorch semantics; LR schedules. */
#include "dsnn/io.h"
#include "dsnn/optim.h"
#include "layers/layers_impl.h"
#include "core/core_impl.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

struct dsnn_optim {
    struct dsnn_optim_cfg cfg;
    double lr;
    int64_t t; /* Adam step count */
};

/* "FILE:LINE: key 'model.KEY': what", the style of the typed getters (where the key is absent:
 * where its group is). */
static enum dsnn_status key_error(const struct dsnn_cfg *cfg, const char *key, const char *what,
                                  struct dsnn_error *err)
{
    char where[300];
    const char *path = dsnn_cfg_path(cfg);
    return dsnn_error_set(err, DSNN_ERR_CONFIG, "%s: key '%s%s%s': %s",
                          dsnn_cfg_where(cfg, key, where, sizeof where), path, *path ? "." : "",
                          key, what);
}

enum dsnn_status dsnn_optim_cfg_read(const struct dsnn_cfg *cfg, struct dsnn_optim_cfg *out,
                                     struct dsnn_error *err)
{
    static const char *const algs[] = {"SGD", "Adam", NULL};
    int alg = 0;
    enum dsnn_status st;
    memset(out, 0, sizeof *out);
    if ((st = dsnn_cfg_enum(cfg, "optim_alg", "SGD", algs, &alg, err)) ||
        (st = dsnn_cfg_float(cfg, "learning_rate", 0.1, &out->learning_rate, err)) ||
        (st = dsnn_cfg_float(cfg, "momentum", 0.0, &out->momentum, err)) ||
        (st = dsnn_cfg_bool(cfg, "nesterov_momentum", false, &out->nesterov, err)) ||
        (st = dsnn_cfg_float(cfg, "weight_decay", 0.0, &out->weight_decay, err)) ||
        (st = dsnn_cfg_float(cfg, "adam_beta1", 0.9, &out->beta1, err)) ||
        (st = dsnn_cfg_float(cfg, "adam_beta2", 0.999, &out->beta2, err)) ||
        (st = dsnn_cfg_float(cfg, "adam_eps", 1e-8, &out->eps, err)))
        return st;
    out->alg = alg == 1 ? DSNN_OPTIM_ADAM : DSNN_OPTIM_SGD;
    if ((st = dsnn_cfg_check_range(cfg, "learning_rate", out->learning_rate, 0, 1e6, err)) ||
        (st = dsnn_cfg_check_range(cfg, "momentum", out->momentum, 0, 1, err)) ||
        (st = dsnn_cfg_check_range(cfg, "weight_decay", out->weight_decay, 0, 1e6, err)) ||
        (st = dsnn_cfg_check_range(cfg, "adam_beta1", out->beta1, 0, 1, err)) ||
        (st = dsnn_cfg_check_range(cfg, "adam_beta2", out->beta2, 0, 1, err)))
        return st;
    if (out->nesterov && out->momentum <= 0)
        return key_error(cfg, "nesterov_momentum", "true needs momentum > 0", err);
    return DSNN_OK;
}

struct dsnn_optim *dsnn_optim_new(const struct dsnn_optim_cfg *cfg, struct dsnn_error *err)
{
    struct dsnn_optim *o = calloc(1, sizeof *o);
    if (!o) {
        dsnn_error_set(err, DSNN_ERR_NOMEM, "out of memory");
        return NULL;
    }
    o->cfg = *cfg;
    o->lr = cfg->learning_rate;
    return o;
}

void dsnn_optim_free(struct dsnn_optim *o)
{
    free(o);
}

void dsnn_optim_set_lr(struct dsnn_optim *o, double lr)
{
    o->lr = lr;
}

double dsnn_optim_lr(const struct dsnn_optim *o)
{
    return o->lr;
}

/* Allocates the optimizer state b needs (before any parallel update). */
static enum dsnn_status optim_prepare(const struct dsnn_optim *o, struct dsnn_param_block *b,
                                      struct dsnn_error *err)
{
    const int slots = o->cfg.alg == DSNN_OPTIM_SGD ? (o->cfg.momentum != 0.0 ? 1 : 0) : 2;
    for (int s = 0; s < slots; s++)
        if (!dsnn_param_block_state(b, s))
            return dsnn_error_set(err, DSNN_ERR_NOMEM, "optimizer: out of memory");
    return DSNN_OK;
}

/* Updates values [i0, i1) of b (state already allocated). Bit-identical in every version. */
MULTIVERSION static void optim_range(const struct dsnn_optim *o, struct dsnn_param_block *b, ptrdiff_t i0,
                        ptrdiff_t i1)
{
    const float lr = (float)o->lr;
    const float wd = b->no_weight_decay ? 0.0f : (float)o->cfg.weight_decay;
    float *restrict w = b->value;
    const float *restrict g = b->grad;
    if (o->cfg.alg == DSNN_OPTIM_SGD) {
        const float mu = (float)o->cfg.momentum;
        if (mu == 0.0f) {
#pragma omp simd
            for (ptrdiff_t i = i0; i < i1; i++)
                w[i] -= lr * (g[i] + wd * w[i]);
            return;
        }
        float *restrict buf = b->state[0];
        /* Two loops rather than a branch inside one, so that each vectorises. */
        if (o->cfg.nesterov) {
#pragma omp simd
            for (ptrdiff_t i = i0; i < i1; i++) {
                float d = g[i] + wd * w[i];
                float v = mu * buf[i] + d;
                buf[i] = v;
                w[i] -= lr * (d + mu * v);
            }
        } else {
#pragma omp simd
            for (ptrdiff_t i = i0; i < i1; i++) {
                float v = mu * buf[i] + (g[i] + wd * w[i]);
                buf[i] = v;
                w[i] -= lr * v;
            }
        }
        return;
    }
    float *restrict m = b->state[0];
    float *restrict v = b->state[1];
    const float b1 = (float)o->cfg.beta1, b2 = (float)o->cfg.beta2, eps = (float)o->cfg.eps;
    /* 1 - beta in double, as PyTorch does: 1.0f - (float)0.999 is off by 1.3e-5 relative. */
    const float omb1 = (float)(1.0 - o->cfg.beta1), omb2 = (float)(1.0 - o->cfg.beta2);
    const int64_t t = o->t > 0 ? o->t : 1;
    const float c1 = (float)(1.0 - pow(o->cfg.beta1, (double)t));
    const float c2 = (float)sqrt(1.0 - pow(o->cfg.beta2, (double)t));
#pragma omp simd
    for (ptrdiff_t i = i0; i < i1; i++) {
        float d = g[i] + wd * w[i];
        m[i] = b1 * m[i] + omb1 * d;
        v[i] = b2 * v[i] + omb2 * d * d;
        w[i] -= lr * (m[i] / c1) / (sqrtf(v[i]) / c2 + eps);
    }
}

/* Values below which an update runs on the calling thread only. */
#define OPTIM_PARALLEL_MIN 16384

/* Updates blocks[0..n): one parallel region for all of them (each thread takes its slice of
 * every block; the element-wise updates are independent), serial when they are small. */
static enum dsnn_status optim_blocks(struct dsnn_optim *o, struct dsnn_param_block *const *blocks,
                                     size_t n, struct dsnn_error *err)
{
    size_t total = 0;
    for (size_t k = 0; k < n; k++) {
        enum dsnn_status st = optim_prepare(o, blocks[k], err);
        if (st != DSNN_OK)
            return st;
        total += blocks[k]->n;
    }
#pragma omp parallel if (total > OPTIM_PARALLEL_MIN)
    {
        const int t = omp_get_thread_num(), nt = omp_get_num_threads();
        for (size_t k = 0; k < n; k++) {
            int64_t i0, i1; /* whole cache lines */
            dsnn_part_range((int64_t)blocks[k]->n, t, nt, 16, &i0, &i1);
            if (i1 > i0)
                optim_range(o, blocks[k], i0, i1);
        }
    }
    return DSNN_OK;
}

enum dsnn_status dsnn_optim_step_block(struct dsnn_optim *o, struct dsnn_param_block *b,
                                       struct dsnn_error *err)
{
    return optim_blocks(o, &b, 1, err);
}

enum dsnn_status dsnn_optim_step(struct dsnn_optim *o, struct dsnn_net *net,
                                 struct dsnn_error *err)
{
    o->t++;
    size_t n = 0;
    for (size_t i = 0; i < dsnn_net_n_layers(net); i++)
        n += dsnn_net_layer(net, i)->n_params;
    struct dsnn_param_block *small[16];
    struct dsnn_param_block **blocks = n <= 16 ? small : malloc(n * sizeof *blocks);
    if (!blocks)
        return dsnn_error_set(err, DSNN_ERR_NOMEM, "optimizer: out of memory");
    n = 0;
    for (size_t i = 0; i < dsnn_net_n_layers(net); i++) {
        struct dsnn_layer *l = dsnn_net_layer(net, i);
        for (size_t k = 0; k < l->n_params; k++)
            blocks[n++] = &l->params[k];
    }
    enum dsnn_status st = optim_blocks(o, blocks, n, err);
    if (blocks != small)
        free(blocks);
    return st;
}

enum dsnn_status dsnn_optim_save(const struct dsnn_optim *o, FILE *f, struct dsnn_error *err)
{
    enum dsnn_status st;
    if ((st = dsnn_io_write(f, "OPTM", 4, "optimizer tag", err)) ||
        (st = dsnn_io_write(f, &o->lr, sizeof o->lr, "learning rate", err)) ||
        (st = dsnn_io_write(f, &o->t, sizeof o->t, "step count", err)))
        return st;
    return DSNN_OK;
}

enum dsnn_status dsnn_optim_load(struct dsnn_optim *o, FILE *f, struct dsnn_error *err)
{
    enum dsnn_status st;
    if ((st = dsnn_io_expect_tag(f, "OPTM", err)) ||
        (st = dsnn_io_read(f, &o->lr, sizeof o->lr, "learning rate", err)) ||
        (st = dsnn_io_read(f, &o->t, sizeof o->t, "step count", err)))
        return st;
    return DSNN_OK;
}

enum dsnn_status dsnn_lr_sched_read(const struct dsnn_cfg *cfg, double base_lr,
                                    struct dsnn_lr_sched *out, struct dsnn_error *err)
{
    static const char *const types[] = {"none", "StepLR", "MultiStepLR", NULL};
    int type = 0;
    int64_t step = 1;
    int64_t ms[DSNN_LR_MILESTONES_MAX];
    size_t n_ms = 0;
    enum dsnn_status st;
    memset(out, 0, sizeof *out);
    if ((st = dsnn_cfg_enum(cfg, "lr_scheduler", "none", types, &type, err)) ||
        (st = dsnn_cfg_float(cfg, "lr_gamma", 0.1, &out->gamma, err)) ||
        (st = dsnn_cfg_int(cfg, "lr_step_size", 1, &step, err)) ||
        (st = dsnn_cfg_int_array(cfg, "lr_milestones", ms, DSNN_LR_MILESTONES_MAX, &n_ms, err)))
        return st;
    out->base_lr = base_lr;
    out->type = type == 1 ? DSNN_LR_STEP : type == 2 ? DSNN_LR_MULTISTEP : DSNN_LR_CONSTANT;
    if (out->type == DSNN_LR_STEP && step < 1)
        return dsnn_cfg_check_range(cfg, "lr_step_size", (double)step, 1, 1e9, err);
    if (out->type == DSNN_LR_MULTISTEP && n_ms == 0)
        return key_error(cfg, "lr_scheduler", "\"MultiStepLR\" needs lr_milestones = [...]", err);
    out->step_size = (int)step;
    for (size_t i = 0; i < n_ms; i++) {
        if (i && ms[i] <= ms[i - 1])
            return key_error(cfg, "lr_milestones", "must be strictly increasing", err);
        out->milestones[i] = (int)ms[i];
    }
    out->n_milestones = n_ms;
    return DSNN_OK;
}

double dsnn_lr_sched_at(const struct dsnn_lr_sched *s, int epoch)
{
    switch (s->type) {
    case DSNN_LR_STEP: return s->base_lr * pow(s->gamma, (double)(epoch / s->step_size));
    case DSNN_LR_MULTISTEP: {
        int k = 0;
        for (size_t i = 0; i < s->n_milestones; i++)
            if (epoch >= s->milestones[i])
                k++;
        return s->base_lr * pow(s->gamma, (double)k);
    }
    case DSNN_LR_CONSTANT: break;
    }
    return s->base_lr;
}
