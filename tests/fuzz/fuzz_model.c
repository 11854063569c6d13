/* tests/fuzz/fuzz_model.c - see fuzz_model.h. */
#define _XOPEN_SOURCE 700 /* open_memstream */
#include "fuzz_model.h"

#include <stdlib.h>
#include <string.h>

#define SCHED "learning_rate = 0.05; momentum = 0.9;"
const struct fuzz_model fuzz_models[] = {
    {"dense", SCHED},
    {"sparse", "on_perc = 0.3; " SCHED},
    {"set", "on_perc = 0.3; weight_prune_perc = 0.3; " SCHED},
    {"set", "on_perc = 0.3; weight_prune_perc = 0.3; optim_alg = \"Adam\"; learning_rate = 0.01;"},
    {"dsnn-weighted-mag", "on_perc = 0.3; weight_prune_perc = 0.3; " SCHED},
    {"dsnn-mixed-heb", "on_perc = 0.3; hebbian_prune_perc = 0.3; weight_prune_perc = 0.3; " SCHED},
    {"rigl", "on_perc = 0.3; drop_fraction = 0.3; update_frequency = 1; " SCHED},
    {"snfs", "on_perc = 0.3; prune_rate = 0.5; " SCHED},
    {"dsr", "on_perc = 0.3; update_interval = 1; target_fraction_to_prune = 0.02; " SCHED},
    {"pruning", "target_final_density = 0.2; start_epoch = 0; end_epoch = 3; "
                "pruning_interval = 1; " SCHED},
    {"iterative-pruning", "n_iterations = 2; iteration_epochs = 2; prune_perc = 0.4; " SCHED},
};
const int fuzz_n_models = (int)(sizeof fuzz_models / sizeof fuzz_models[0]);

/* ---- a small dataset: 16 train and 8 test samples of 1x4x4, 4 classes ---- */
enum { NF = 16, NC = 4, NTRAIN = 16, NTEST = 8, BS = 8 };

struct tiny {
    float x[NTRAIN * NF];
    int32_t y[NTRAIN];
    int64_t n, pos;
};

static enum dsnn_status tiny_begin(void *state, enum dsnn_split split, int epoch,
                                   struct dsnn_error *err)
{
    (void)epoch;
    struct tiny *d = state;
    if (split == DSNN_SPLIT_NOISE)
        return dsnn_error_set(err, DSNN_ERR_UNSUPPORTED, "no noise split");
    d->n = split == DSNN_SPLIT_TRAIN ? NTRAIN : NTEST;
    d->pos = 0;
    return DSNN_OK;
}

static enum dsnn_status tiny_next(void *state, struct dsnn_batch *b, struct dsnn_error *err)
{
    (void)err;
    struct tiny *d = state;
    int n = d->n - d->pos < BS ? (int)(d->n - d->pos) : BS;
    *b = (struct dsnn_batch){d->x + d->pos * NF, d->y + d->pos, n};
    d->pos += n;
    return DSNN_OK;
}

static const struct dsnn_dataset_ops tiny_ops = {.begin = tiny_begin, .next_batch = tiny_next};

static struct tiny *tiny_new(struct dsnn_data *data, bool image)
{
    struct tiny *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    struct dsnn_rng r;
    dsnn_rng_seed(&r, 7, 1);
    for (int i = 0; i < NTRAIN; i++) {
        d->y[i] = i % NC;
        for (int f = 0; f < NF; f++)
            d->x[i * NF + f] = (float)dsnn_rng_normal(&r) + (f % NC == i % NC ? 2.0f : 0.0f);
    }
    *data = (struct dsnn_data){
        .ops = &tiny_ops,
        .state = d,
        .info = {image ? (struct dsnn_shape){1, 4, 4} : (struct dsnn_shape){NF, 1, 1}, NC,
                 NTRAIN, NTEST, 0, BS, BS},
    };
    return d;
}

/* ---- networks ---- */

static struct dsnn_net *make_net(int kind)
{
    struct dsnn_error err = {0};
    enum dsnn_status st = DSNN_OK;
    struct dsnn_net *net;
    if (kind == 1) {
        const struct dsnn_shape in = {1, 4, 4}, mid = {4, 4, 4};
        net = dsnn_net_new(in, NC, &err);
        if (!net)
            return NULL;
        if ((st = dsnn_net_add(net, dsnn_conv2d_new("conv1", in, 4, 3, 1, 1, true, &err), &err)) ||
            (st = dsnn_net_add(net, dsnn_relu_new("relu1", mid, &err), &err)) ||
            (st = dsnn_net_add(net, dsnn_resnet_basic_block_new("block", mid, 4, 1, &err),
                               &err)) ||
            (st = dsnn_net_add(net, dsnn_flatten_new("flat", mid, &err), &err)) ||
            (st = dsnn_net_add(net, dsnn_linear_new("output", 64, NC, true, &err), &err)))
            goto fail;
        return net;
    }
    struct dsnn_kwinners_cfg kw = dsnn_kwinners_cfg_default();
    kw.percent_on = 0.25;
    net = dsnn_net_new((struct dsnn_shape){NF, 1, 1}, NC, &err);
    if (!net)
        return NULL;
    if ((st = dsnn_net_add(net, dsnn_linear_new("fc1", NF, 16, true, &err), &err)) ||
        (st = dsnn_net_add(net, dsnn_batchnorm1d_new("bn1", 16, true, &err), &err)) ||
        (st = dsnn_net_add(net, dsnn_kwinners_new("kw1", 16, &kw, &err), &err)) ||
        (st = dsnn_net_add(net, dsnn_linear_new("fc2", 16, 12, true, &err), &err)) ||
        (st = dsnn_net_add(net, dsnn_relu_new("relu2", (struct dsnn_shape){12, 1, 1}, &err),
                           &err)) ||
        (st = dsnn_net_add(net, dsnn_linear_new("output", 12, NC, true, &err), &err)))
        goto fail;
    return net;
fail:
    fprintf(stderr, "fuzz: network %d: %s\n", kind, err.msg);
    dsnn_net_free(net);
    return NULL;
}

bool fuzz_model_open(struct fuzz_run *r, int model, int net)
{
    memset(r, 0, sizeof *r);
    struct dsnn_error err = {0};
    const struct fuzz_model *m = &fuzz_models[model];
    const struct dsnn_component *c = fuzz_component(DSNN_KIND_MODEL, m->plugin);
    char text[2048];
    snprintf(text, sizeof text, "model = { plugin = \"%s\"; %s };", m->plugin, m->cfg);
    const struct dsnn_cfg *g = fuzz_config(text, "model", &r->cf);
    r->ops = c ? c->ops : NULL;
    r->net = make_net(net);
    r->ctx = (struct dsnn_run_ctx){.seed = 42, .epochs = 4, .n_threads = 1,
                                   .log = fuzz_null_log()};
    if (!r->ops || !r->net || !tiny_new(&r->data, net == 1) ||
        r->ops->create(g, &r->ctx, r->net, &r->data.info, &r->model, &err) != DSNN_OK) {
        fprintf(stderr, "fuzz: model %s on network %d: %s\n", m->plugin, net, err.msg);
        fuzz_model_close(r);
        return false;
    }
    return true;
}

void fuzz_model_exercise(struct fuzz_run *r)
{
    struct dsnn_error err = {0};
    struct dsnn_metrics *m = malloc(sizeof *m);
    if (!m)
        return;
    dsnn_metrics_clear(m);
    if (r->ops->train_epoch(r->model, &r->data, 1, m, &err) == DSNN_OK)
        (void)r->ops->evaluate(r->model, &r->data, DSNN_SPLIT_TEST, m, &err);
    free(m);
    char *buf = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&buf, &size);
    if (f) {
        (void)r->ops->save(r->model, f, &err);
        fclose(f);
    }
    free(buf);
}

void fuzz_model_close(struct fuzz_run *r)
{
    if (r->model)
        r->ops->destroy(r->model);
    dsnn_net_free(r->net);
    free(r->data.state);
    dsnn_config_file_free(r->cf);
    memset(r, 0, sizeof *r);
}

bool fuzz_model_seed(int model, int net, int epochs, FILE *f)
{
    struct fuzz_run r;
    if (!fuzz_model_open(&r, model, net))
        return false;
    struct dsnn_error err = {0};
    struct dsnn_metrics *m = malloc(sizeof *m);
    bool ok = m != NULL;
    for (int e = 0; ok && e < epochs; e++) {
        dsnn_metrics_clear(m);
        ok = r.ops->train_epoch(r.model, &r.data, e, m, &err) == DSNN_OK;
    }
    free(m);
    unsigned char head[2] = {(unsigned char)model, (unsigned char)net};
    ok = ok && fwrite(head, 1, 2, f) == 2 && r.ops->save(r.model, f, &err) == DSNN_OK;
    if (!ok)
        fprintf(stderr, "fuzz: seed of model %s: %s\n", fuzz_models[model].plugin, err.msg);
    fuzz_model_close(&r);
    return ok;
}
