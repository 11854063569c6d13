/* dsnn-bench-conv - training-step time of convolutional networks with truly sparse convolutions
 * against the dense convolution path of the same binary.
 *
 *   dsnn-bench-conv --net vgg16|resnet18 --densities 1.0,0.5,0.1 --steps N [--batch 128]
 *
 * Networks (CIFAR-shaped inputs 3x32x32, 10 classes, generated data: timing only):
 *   vgg16     13 conv3x3 (padding 1) + batch norm + ReLU, 5 max poolings, linear 512 -> 10
 *             (as the vgg plugin, cfg "vgg16", with conv biases)
 *   resnet18  conv3x3 64 + bn + relu, 4 stages of 2 basic blocks (64, 128, 256, 512 channels,
 *             strides 1 2 2 2; 1x1 stride-2 conv + bn shortcuts), global average pool, linear
 *             (as the resnet plugin, depth 18; no conv biases)
 * A density entry is
 *   1.0          every convolution dense (dsnn_conv2d_new: the dense engine, layers/conv_gemm.c)
 *   <d>          every convolution a sparse_conv2d of density d, the engine choosing per layer
 *                between its sparse kernels and its dense scratch path (--dense-above, default
 *                the layer's)
 *   <d>@sparse   the same with the sparse kernels forced (dense_above 2)
 *   <d>@dense    the same with the dense scratch path forced (dense_above 0)
 * The linear classifier stays dense. A step is forward + softmax cross-entropy + backward + SGD
 * (momentum 0.9); --warmup steps (default 1) are run first and not timed; seconds_per_step is
 * the median of --steps timed steps. Each configuration runs in a fresh process (the program
 * re-executes itself), so peak_rss_mb is per configuration; --repeat N runs each N times
 * (interleaved) and keeps the fastest. The last line gives each configuration's speed-up over
 * the dense one ("1.0") when it is among them.
 *
 * GFLOP per step counts the convolutions only: 2 B P nnz for the forward, the weight gradient and
 * the input gradient (not for the first convolution), P the output positions, nnz the active
 * weights (out_c in_c k k when dense). --layers prints, instead, the forward / backward time of
 * each convolution of the network alone (dense and each density), for finding where the time
 * goes. --threads N (0: all cores), --isa scalar|avx2|avx512 (DSNN_ISA), OPENBLAS_CORETYPE is
 * inherited and named in the output ("openblas_core"): run the program with and without it to
 * compare OpenBLAS's kernels. */
#include <dsnn/dsnn.h>
#include <dsnn/sparse.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BC_MAX_CONFIGS 16

struct opts {
    const char *net;
    char *densities;
    int steps, warmup, batch, threads, repeat;
    double dense_above; /* < 0: the layer's default */
    bool layers;
    const char *one; /* internal: run one configuration */
    const char *isa;
};

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + 1e-6 * (double)ru.ru_utime.tv_usec +
           (double)ru.ru_stime.tv_sec + 1e-6 * (double)ru.ru_stime.tv_usec;
}

static double peak_rss_mb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0;
}

static void die(const char *what, const struct dsnn_error *err)
{
    fprintf(stderr, "dsnn-bench-conv: %s: %s\n", what, err && err->msg[0] ? err->msg : "failed");
    exit(1);
}

/* A configuration: density (1: dense convolutions) and the dense_above the sparse layers get. */
struct config {
    double density;
    double above; /* < 0: default */
    bool dense;
};

static bool parse_config(const char *s, double dense_above, struct config *c)
{
    char *end;
    c->density = strtod(s, &end);
    if (end == s || !(c->density > 0.0) || c->density > 1.0)
        return false;
    c->dense = c->density == 1.0 && *end == '\0';
    c->above = dense_above;
    if (strcmp(end, "@sparse") == 0)
        c->above = 2.0;
    else if (strcmp(end, "@dense") == 0)
        c->above = 0.0;
    else if (*end)
        return false;
    return true;
}

/* ---- networks ---- */

struct builder {
    struct dsnn_net *net;
    const struct config *c;
    int n_conv;
    struct dsnn_error *err;
};

static struct dsnn_layer *conv(struct builder *b, const char *name, struct dsnn_shape in, int out,
                               int k, int s, int p, bool bias)
{
    b->n_conv++;
    if (b->c->dense)
        return dsnn_conv2d_new(name, in, out, k, s, p, bias, b->err);
    struct dsnn_sparse_init si = dsnn_sparse_init_default();
    si.density = b->c->density;
    struct dsnn_layer *l = dsnn_sparse_conv2d_new(name, in, out, k, s, p, bias, &si, b->err);
    if (l && b->c->above >= 0.0)
        dsnn_sparse_conv2d_set_dense_above(l, b->c->above);
    return l;
}

static void add(struct builder *b, struct dsnn_layer *l)
{
    if (!l || dsnn_net_add(b->net, l, b->err) != DSNN_OK)
        die("building the network", b->err);
}

static void build_vgg16(struct builder *b)
{
    static const int cfg[] = {64, 64, 0, 128, 128, 0, 256, 256, 256, 0,
                              512, 512, 512, 0, 512, 512, 512, 0, -1};
    char name[32];
    for (int i = 0, ci = 0, pi = 0; cfg[i] >= 0; i++) {
        const struct dsnn_shape in = dsnn_net_last_shape(b->net);
        if (cfg[i] == 0) {
            snprintf(name, sizeof name, "pool%d", pi++);
            add(b, dsnn_maxpool2d_new(name, in, 2, 2, 0, b->err));
            continue;
        }
        snprintf(name, sizeof name, "conv%d", ci);
        add(b, conv(b, name, in, cfg[i], 3, 1, 1, true));
        snprintf(name, sizeof name, "bn%d", ci);
        add(b, dsnn_batchnorm2d_new(name, dsnn_net_last_shape(b->net), true, b->err));
        snprintf(name, sizeof name, "relu%d", ci++);
        add(b, dsnn_relu_new(name, dsnn_net_last_shape(b->net), b->err));
    }
}

/* torchvision BasicBlock from the builder's convolutions. */
static struct dsnn_layer *basic_block(struct builder *b, const char *name, struct dsnn_shape in,
                                      int out, int stride)
{
    struct dsnn_layer *inner[5], *sc[2];
    size_t n_sc = 0;
    inner[0] = conv(b, "conv1", in, out, 3, stride, 1, false);
    const struct dsnn_shape mid = {out, (in.h + 2 - 3) / stride + 1, (in.w + 2 - 3) / stride + 1};
    inner[1] = dsnn_batchnorm2d_new("bn1", mid, true, b->err);
    inner[2] = dsnn_relu_new("relu1", mid, b->err);
    inner[3] = conv(b, "conv2", mid, out, 3, 1, 1, false);
    inner[4] = dsnn_batchnorm2d_new("bn2", mid, true, b->err);
    if (stride != 1 || in.c != out) {
        sc[0] = conv(b, "shortcut_conv", in, out, 1, stride, 0, false);
        sc[1] = dsnn_batchnorm2d_new("shortcut_bn", mid, true, b->err);
        n_sc = 2;
    }
    for (int i = 0; i < 5; i++)
        if (!inner[i])
            die("building a block", b->err);
    return dsnn_residual_new(name, inner, 5, sc, n_sc, true, b->err);
}

static void build_resnet18(struct builder *b)
{
    add(b, conv(b, "conv1", dsnn_net_last_shape(b->net), 64, 3, 1, 1, false));
    add(b, dsnn_batchnorm2d_new("bn1", dsnn_net_last_shape(b->net), true, b->err));
    add(b, dsnn_relu_new("relu1", dsnn_net_last_shape(b->net), b->err));
    static const int ch[4] = {64, 128, 256, 512};
    char name[32];
    for (int s = 0; s < 4; s++)
        for (int k = 0; k < 2; k++) {
            snprintf(name, sizeof name, "layer%d.%d", s + 1, k);
            add(b, basic_block(b, name, dsnn_net_last_shape(b->net), ch[s], s > 0 && k == 0 ? 2 : 1));
        }
    add(b, dsnn_global_avgpool2d_new("avgpool", dsnn_net_last_shape(b->net), b->err));
}

static struct dsnn_net *build(const char *net, const struct config *c, struct dsnn_error *err)
{
    struct builder b = {dsnn_net_new((struct dsnn_shape){3, 32, 32}, 10, err), c, 0, err};
    if (!b.net)
        die("net", err);
    if (strcmp(net, "vgg16") == 0)
        build_vgg16(&b);
    else
        build_resnet18(&b);
    add(&b, dsnn_flatten_new("flatten", dsnn_net_last_shape(b.net), err));
    add(&b, dsnn_linear_new("output", (int)dsnn_shape_size(dsnn_net_last_shape(b.net)), 10, true,
                            err));
    return b.net;
}

/* ---- counting ---- */

struct conv_count {
    double nnz, flop_per_sample, dense_weights;
    int n;
};

static void count_layer(struct dsnn_layer *l, struct conv_count *cc)
{
    struct dsnn_conv2d_geom g;
    if (dsnn_residual_n_layers(l, false) > 0) {
        for (int s = 0; s < 2; s++)
            for (size_t i = 0; i < dsnn_residual_n_layers(l, s); i++)
                count_layer(dsnn_residual_layer(l, s, i), cc);
        return;
    }
    if (!dsnn_conv2d_geometry(l, &g))
        return;
    const double full = (double)g.out_c * g.in_c * g.kernel * g.kernel;
    const double nnz = dsnn_sparse_conv2d_is(l) ? (double)dsnn_sparse_conv2d_nnz(l) : full;
    const double P = (double)g.out_h * g.out_w;
    cc->flop_per_sample += (cc->n == 0 ? 4.0 : 6.0) * nnz * P;
    cc->nnz += nnz;
    cc->dense_weights += full;
    cc->n++;
}

static struct conv_count count_net(struct dsnn_net *net)
{
    struct conv_count cc = {0};
    for (size_t i = 0; i < dsnn_net_n_layers(net); i++)
        count_layer(dsnn_net_layer(net, i), &cc);
    return cc;
}

static int cmp_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* ---- one configuration (in its own process) ---- */

static int run_one(const struct opts *o)
{
    struct dsnn_error err = {0};
    struct config c;
    if (!parse_config(o->one, o->dense_above, &c)) {
        fprintf(stderr, "dsnn-bench-conv: bad density '%s' (1.0, 0.1, 0.5@sparse, 0.5@dense)\n",
                o->one);
        return 2;
    }
    dsnn_set_num_threads(o->threads);
    struct dsnn_net *net = build(o->net, &c, &err);
    struct dsnn_rng rng;
    dsnn_rng_seed(&rng, 1, DSNN_RNG_STREAM_INIT);
    const int B = o->batch;
    if (dsnn_net_init(net, &rng, B, &err) != DSNN_OK)
        die("init", &err);
    struct dsnn_optim_cfg oc = {.alg = DSNN_OPTIM_SGD, .learning_rate = 0.01, .momentum = 0.9};
    struct dsnn_optim *opt = dsnn_optim_new(&oc, &err);
    if (!opt)
        die("optimizer", &err);
    const size_t nx = (size_t)B * 3 * 32 * 32;
    float *x = malloc(sizeof(float) * nx), *dl = malloc(sizeof(float) * (size_t)B * 10);
    int32_t *lab = malloc(sizeof(int32_t) * (size_t)B);
    double *step = malloc(sizeof(double) * (size_t)(o->steps > 0 ? o->steps : 1));
    struct dsnn_rng data;
    dsnn_rng_seed(&data, 2, DSNN_RNG_STREAM_DATA);
    for (size_t i = 0; i < nx; i++)
        x[i] = (float)dsnn_rng_normal(&data);
    for (int i = 0; i < B; i++)
        lab[i] = (int32_t)dsnn_rng_below(&data, 10);
    double loss = 0, cpu = 0;
    int64_t correct = 0;
    for (int s = -o->warmup; s < o->steps; s++) {
        const double t0 = now(), c0 = cpu_seconds();
        const float *z = dsnn_net_forward(net, x, B, true, &err);
        if (!z || dsnn_softmax_xent(z, lab, B, 10, dl, &loss, &correct, &err) != DSNN_OK)
            die("forward", &err);
        if (dsnn_net_backward(net, dl, B, &err) != DSNN_OK)
            die("backward", &err);
        if (dsnn_optim_step(opt, net, &err) != DSNN_OK)
            die("optimizer step", &err);
        if (s >= 0) {
            step[s] = now() - t0;
            cpu += cpu_seconds() - c0;
        }
    }
    qsort(step, (size_t)o->steps, sizeof(double), cmp_double);
    const double med = step[o->steps / 2];
    const struct conv_count cc = count_net(net);
    const char *wp = getenv("OMP_WAIT_POLICY");
    printf("{\"config\":\"%s\",\"net\":\"%s\",\"density\":%.4f,\"path\":\"%s\",\"batch\":%d,"
           "\"threads\":%d,\"steps\":%d,\"seconds_per_step\":%.4f,\"seconds_per_step_min\":%.4f,"
           "\"cpu_s_per_step\":%.4f,\"convs\":%d,\"nnz\":%.0f,\"conv_weights_dense\":%.0f,"
           "\"conv_gflop_per_step\":%.2f,\"gflops\":%.2f,\"peak_rss_mb\":%.1f,\"loss\":%.4f,"
           "\"isa\":\"%s\",\"openblas_core\":\"%s\",\"omp_wait_policy\":\"%s\",\"runs\":%d}\n",
           o->one, o->net, c.density,
           c.dense ? "dense conv2d" : c.above > 1.0 ? "sparse kernels" : c.above == 0.0 ? "dense scratch" : "engine's choice",
           B, o->threads, o->steps, med, step[0], cpu / o->steps, cc.n, cc.nnz, cc.dense_weights,
           cc.flop_per_sample * B * 1e-9, cc.flop_per_sample * B * 1e-9 / med, peak_rss_mb(),
           loss / B, dsnn_isa_str(dsnn_isa_active()), dsnn_blas_core(), wp ? wp : "default",
           o->repeat);
    fflush(stdout);
    free(x), free(dl), free(lab), free(step);
    dsnn_optim_free(opt);
    dsnn_net_free(net);
    return 0;
}

/* ---- --layers: each VGG-16 convolution shape alone ---- */

static double time_layer(struct dsnn_layer *l, const float *x, float *y, const float *dy,
                         float *dx, int B, int reps, double *fwd)
{
    struct dsnn_error err = {0};
    double tf = 1e30, tb = 1e30;
    for (int r = 0; r < reps; r++) {
        const double a = now();
        if (l->ops->forward(l, x, y, B, true, &err) != DSNN_OK)
            die("layer forward", &err);
        const double b = now();
        if (l->ops->backward(l, x, y, dy, dx, B, &err) != DSNN_OK)
            die("layer backward", &err);
        const double c = now();
        tf = b - a < tf ? b - a : tf;
        tb = c - b < tb ? c - b : tb;
    }
    *fwd = tf;
    return tb;
}

static int run_layers(const struct opts *o, struct config *cs, int nc)
{
    static const int shapes[][3] = {{3, 64, 32},   {64, 64, 32},   {64, 128, 16}, {128, 128, 16},
                                    {128, 256, 8}, {256, 256, 8},  {256, 512, 4}, {512, 512, 4},
                                    {512, 512, 2}};
    struct dsnn_error err = {0};
    dsnn_set_num_threads(o->threads);
    const int B = o->batch;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const int C = shapes[s][0], M = shapes[s][1], H = shapes[s][2];
        const size_t ni = (size_t)B * C * H * H, no = (size_t)B * M * H * H;
        float *x = malloc(sizeof(float) * ni), *dx = malloc(sizeof(float) * ni);
        float *y = malloc(sizeof(float) * no), *dy = malloc(sizeof(float) * no);
        struct dsnn_rng rng;
        dsnn_rng_seed(&rng, 3, 1);
        for (size_t i = 0; i < ni; i++)
            x[i] = (float)dsnn_rng_normal(&rng);
        for (size_t i = 0; i < no; i++)
            dy[i] = (float)dsnn_rng_normal(&rng);
        for (int k = 0; k < nc; k++) {
            struct builder b = {NULL, &cs[k], 0, &err};
            struct dsnn_layer *l = conv(&b, "conv", (struct dsnn_shape){C, H, H}, M, 3, 1, 1, true);
            if (!l || dsnn_layer_init(l, &rng, &err) != DSNN_OK)
                die("layer", &err);
            double tf;
            const double tb = time_layer(l, x, y, dy, dx, B, o->steps > 0 ? o->steps : 1, &tf);
            char label[48];
            if (cs[k].dense)
                snprintf(label, sizeof label, "1.0");
            else
                snprintf(label, sizeof label, "%g%s", cs[k].density,
                         cs[k].above < 0    ? ""
                         : cs[k].above > 1  ? "@sparse"
                         : cs[k].above <= 0 ? "@dense"
                                            : "");
            printf("{\"layer\":\"%dx%dx%d->%d\",\"config\":\"%s\",\"fwd_ms\":%.2f,\"bwd_ms\":%.2f,"
                   "\"isa\":\"%s\"}\n",
                   C, H, H, M, label, tf * 1e3, tb * 1e3, dsnn_isa_str(dsnn_isa_active()));
            fflush(stdout);
            dsnn_layer_free(l);
        }
        free(x), free(dx), free(y), free(dy);
    }
    return 0;
}

/* ---- driver ---- */

static void usage(void)
{
    fprintf(stderr,
            "usage: dsnn-bench-conv [--net vgg16|resnet18] [--densities 1.0,0.5,0.1] [--steps N]\n"
            "       [--warmup N] [--batch B] [--threads N] [--repeat N] [--dense-above D]\n"
            "       [--isa scalar|avx2|avx512] [--layers]\n");
    exit(2);
}

/* Runs one configuration in a child (this program with --one) and returns its JSON line. */
static char *run_child(const char *self, const struct opts *o, const char *cfg)
{
    char steps[16], warm[16], batch[16], thr[16], above[32], rep[16];
    snprintf(steps, sizeof steps, "%d", o->steps);
    snprintf(warm, sizeof warm, "%d", o->warmup);
    snprintf(batch, sizeof batch, "%d", o->batch);
    snprintf(thr, sizeof thr, "%d", o->threads);
    snprintf(above, sizeof above, "%.17g", o->dense_above);
    snprintf(rep, sizeof rep, "%d", o->repeat);
    int fd[2];
    if (pipe(fd) != 0)
        return NULL;
    const pid_t pid = fork();
    if (pid == 0) {
        dup2(fd[1], 1);
        close(fd[0]);
        close(fd[1]);
        execl(self, self, "--net", o->net, "--steps", steps, "--warmup", warm, "--batch", batch,
              "--threads", thr, "--dense-above", above, "--repeat", rep, "--one", cfg,
              (char *)NULL);
        _exit(127);
    }
    close(fd[1]);
    FILE *f = fdopen(fd[0], "r");
    char *line = NULL;
    size_t cap = 0;
    if (!f || getline(&line, &cap, f) < 0) {
        free(line);
        line = NULL;
    }
    if (f)
        fclose(f);
    int status = 0;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        free(line);
        return NULL;
    }
    return line;
}

static double json_num(const char *line, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = line ? strstr(line, pat) : NULL;
    return p ? strtod(p + strlen(pat), NULL) : NAN;
}

int main(int argc, char **argv)
{
    struct opts o = {"vgg16", NULL, 5, 1, 128, 0, 1, -1.0, false, NULL, NULL};
    char def[] = "1.0,0.5,0.1";
    o.densities = def;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--layers") == 0) {
            o.layers = true;
            continue;
        }
        if (!v)
            usage();
        i++;
        if (strcmp(a, "--net") == 0)
            o.net = v;
        else if (strcmp(a, "--densities") == 0)
            o.densities = argv[i];
        else if (strcmp(a, "--steps") == 0)
            o.steps = atoi(v);
        else if (strcmp(a, "--warmup") == 0)
            o.warmup = atoi(v);
        else if (strcmp(a, "--batch") == 0)
            o.batch = atoi(v);
        else if (strcmp(a, "--threads") == 0)
            o.threads = atoi(v);
        else if (strcmp(a, "--repeat") == 0)
            o.repeat = atoi(v);
        else if (strcmp(a, "--dense-above") == 0)
            o.dense_above = atof(v);
        else if (strcmp(a, "--isa") == 0)
            o.isa = v;
        else if (strcmp(a, "--one") == 0)
            o.one = v;
        else
            usage();
    }
    if ((strcmp(o.net, "vgg16") != 0 && strcmp(o.net, "resnet18") != 0) || o.steps < 1 ||
        o.warmup < 0 || o.batch < 1 || o.threads < 0 || o.repeat < 1)
        usage();
    if (o.isa && setenv("DSNN_ISA", o.isa, 1) != 0)
        return 2;
    struct dsnn_error err = {0};
    if (dsnn_isa_init_env(&err) != DSNN_OK)
        die("DSNN_ISA", &err);
    if (o.one)
        return run_one(&o);
    char *names[BC_MAX_CONFIGS];
    struct config cs[BC_MAX_CONFIGS];
    int nc = 0;
    for (char *t = strtok(o.densities, ","); t; t = strtok(NULL, ",")) {
        if (nc == BC_MAX_CONFIGS || !parse_config(t, o.dense_above, &cs[nc])) {
            fprintf(stderr, "dsnn-bench-conv: bad density '%s'\n", t);
            return 2;
        }
        names[nc++] = t;
    }
    if (o.layers)
        return run_layers(&o, cs, nc);
    char self[4096];
    const ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        return 1;
    self[n] = '\0';
    char *best[BC_MAX_CONFIGS] = {0};
    for (int r = 0; r < o.repeat; r++)
        for (int k = 0; k < nc; k++) {
            char *line = run_child(self, &o, names[k]);
            if (!line) {
                fprintf(stderr, "dsnn-bench-conv: configuration %s failed\n", names[k]);
                return 1;
            }
            if (!best[k] || json_num(line, "seconds_per_step") < json_num(best[k], "seconds_per_step")) {
                free(best[k]);
                best[k] = line;
            } else {
                free(line);
            }
        }
    int dense = -1;
    for (int k = 0; k < nc; k++) {
        fputs(best[k], stdout);
        if (cs[k].dense)
            dense = k;
    }
    if (dense >= 0) {
        const double td = json_num(best[dense], "seconds_per_step");
        printf("{\"speedup_vs_dense\":{");
        for (int k = 0, first = 1; k < nc; k++) {
            if (k == dense)
                continue;
            printf("%s\"%s\":%.3f", first ? "" : ",", names[k],
                   td / json_num(best[k], "seconds_per_step"));
            first = 0;
        }
        printf("},\"net\":\"%s\",\"batch\":%d}\n", o.net, o.batch);
    }
    for (int k = 0; k < nc; k++)
        free(best[k]);
    return 0;
}
