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

/* What the optimizer keys read into (optim_alg as the index of its choice). */
struct optim_keys {
    int alg;
    struct dsnn_optim_cfg cfg;
};
static const char *const optim_algs[] = {"SGD", "Adam", NULL};
#define OK_AT(f) DSNN_KEY_AT(struct optim_keys, f)
static const struct dsnn_key_spec optim_keys[] = {
    {.name = "optim_alg", .type = DSNN_KEY_STRING, .def_str = "SGD", .choices = optim_algs,
     OK_AT(alg), .doc = "optimizer: \"SGD\" or \"Adam\""},
    {.name = "learning_rate", .type = DSNN_KEY_FLOAT, .def = 0.1, DSNN_KEY_RANGE(0, 1e6),
     OK_AT(cfg.learning_rate), .doc = "initial learning rate"},
    {.name = "momentum", .type = DSNN_KEY_FLOAT, .def = 0.0, DSNN_KEY_RANGE(0, 1),
     OK_AT(cfg.momentum), .doc = "SGD momentum"},
    {.name = "nesterov_momentum", .type = DSNN_KEY_BOOL, .def = false, OK_AT(cfg.nesterov),
     .doc = "SGD with Nesterov momentum (needs momentum > 0)"},
    {.name = "weight_decay", .type = DSNN_KEY_FLOAT, .def = 0.0, DSNN_KEY_RANGE(0, 1e6),
     OK_AT(cfg.weight_decay), .doc = "L2 penalty added to the gradient"},
    {.name = "adam_beta1", .type = DSNN_KEY_FLOAT, .def = 0.9, DSNN_KEY_RANGE(0, 1),
     OK_AT(cfg.beta1), .doc = "Adam beta1"},
    {.name = "adam_beta2", .type = DSNN_KEY_FLOAT, .def = 0.999, DSNN_KEY_RANGE(0, 1),
     OK_AT(cfg.beta2), .doc = "Adam beta2"},
    {.name = "adam_eps", .type = DSNN_KEY_FLOAT, .def = 1e-8, OK_AT(cfg.eps), .doc = "Adam epsilon"},
};
#undef OK_AT
DSNN_KEY_TABLE_DEFINE(, dsnn_optim_keys, optim_keys);

enum dsnn_status dsnn_optim_cfg_read(const struct dsnn_cfg *cfg, struct dsnn_optim_cfg *out,
                                     struct dsnn_error *err)
{
    struct optim_keys k = {0};
    enum dsnn_status st = dsnn_keys_read(&dsnn_optim_keys, cfg, &k, err);
    if (st != DSNN_OK)
        return st;
    *out = k.cfg;
    out->alg = k.alg == 1 ? DSNN_OPTIM_ADAM : DSNN_OPTIM_SGD;
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

struct lr_sched_keys {
    int type;
    double gamma;
    int64_t step;
};
static const char *const lr_sched_types[] = {"none", "StepLR", "MultiStepLR", NULL};
static const struct dsnn_key_spec lr_sched_keys[] = {
    {.name = "lr_scheduler", .type = DSNN_KEY_STRING, .def_str = "none", .choices = lr_sched_types,
     DSNN_KEY_AT(struct lr_sched_keys, type),
     .doc = "learning-rate schedule per epoch: \"none\", \"StepLR\" or \"MultiStepLR\""},
    {.name = "lr_gamma", .type = DSNN_KEY_FLOAT, .def = 0.1, DSNN_KEY_AT(struct lr_sched_keys, gamma),
     .doc = "factor applied at each LR step / milestone"},
    {.name = "lr_step_size", .type = DSNN_KEY_INT, .def = 1, DSNN_KEY_AT(struct lr_sched_keys, step),
     .doc = "StepLR: epochs between LR steps (>= 1)"},
    {.name = "lr_milestones", .type = DSNN_KEY_INT_ARRAY,
     .doc = "MultiStepLR: epochs at which LR drops (strictly increasing)"},
};
DSNN_KEY_TABLE_DEFINE(, dsnn_lr_sched_keys, lr_sched_keys);

enum dsnn_status dsnn_lr_sched_read(const struct dsnn_cfg *cfg, double base_lr,
                                    struct dsnn_lr_sched *out, struct dsnn_error *err)
{
    struct lr_sched_keys k = {0};
    int64_t ms[DSNN_LR_MILESTONES_MAX];
    size_t n_ms = 0;
    enum dsnn_status st;
    memset(out, 0, sizeof *out);
    if ((st = dsnn_keys_read(&dsnn_lr_sched_keys, cfg, &k, err)) ||
        (st = dsnn_cfg_int_array(cfg, "lr_milestones", ms, DSNN_LR_MILESTONES_MAX, &n_ms, err)))
        return st;
    int type = k.type;
    int64_t step = k.step;
    out->gamma = k.gamma;
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
