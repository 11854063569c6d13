/* dsnn-bench-sparse - throughput and memory of the truly sparse engine against the dense path.
 *
 * Trains a Fashion-MNIST MLP 784-1000-1000-1000-10 (ReLU) at batch 128 with SGD momentum 0.9 and
 * softmax cross-entropy for --epochs epochs at each configuration of --densities, each in a fresh
 * process (the program re-executes itself) so that peak RSS is per configuration, and prints one
 * JSON line per configuration.
 *
 *   1.0    every layer dense: dsnn_linear_new (OpenBLAS sgemm)
 *   <d>    hidden layers sparse_linear at uniform density d (precise mask)
 *   er<e>  hidden layers sparse_linear at Erdős–Rényi density, epsilon e (precise mask)
 *   The output layer 1000->10 of a sparse configuration follows the SET convention: Erdős–Rényi
 *   with epsilon 20, which caps at density 1 (all 10000 connections, stored as sparse_linear).
 *   Sparse hidden layers use the sparse engine's fused ReLU (--relu fused, the default) or a
 *   separate relu layer (--relu layer), which dsnn_net_init fuses into the sparse layer anyway
 *   (the two must run at the same speed); the dense path always uses relu layers.
 *   Sparse layers draw their initial weights with the sparse fan-in (kaiming uniform over
 *   density * n_in inputs), which is what makes the sparse MLPs train well.
 *
 * FLOPs per step: sum over linear layers of 2*B*nnz (forward) + 2*B*nnz (weight gradient)
 * + 2*B*nnz (input gradient, not computed for the first layer), with B the batch and nnz the
 * active connections (n_in*n_out when dense); biases, ReLU, loss and optimizer not counted.
 *
 * --peak measures what this machine can do, for judging the GFLOP/s above: the FMA peak of one
 * core and of --threads cores at once (independent fused multiply-adds on registers, no memory)
 * at every vector width the CPU has (8-wide AVX2, 16-wide AVX-512), and OpenBLAS sgemm on the
 * network's layer shapes at batch --batch (the dense path's kernel), with the inherited OpenBLAS
 * core and, when OPENBLAS_CORETYPE is set, again with OpenBLAS's own choice (variable unset).
 *
 * Kernel sets and OpenBLAS cores. --isa LIST (e.g. scalar,avx2,avx512; default: the one in use,
 * see DSNN_ISA in dsnn/isa.h) runs every sparse configuration once per kernel set, in the same
 * run (labels "er20@avx2"). When OPENBLAS_CORETYPE is set (the project's machines set it for the
 * tests), the dense configuration runs twice: with the inherited core ("1.0") and with
 * OpenBLAS's own choice ("1.0@openblas-auto", the variable removed from its environment);
 * --openblas inherit|auto|both chooses (default both). Every JSON line names the sparse kernel
 * set ("isa") and OpenBLAS's core ("openblas_core").
 *
 * --big builds the SET-MLP 784-100000-100000-100000-10 at epsilon 20 and runs one training step
 * (forward, backward, optimizer), printing times and peak RSS.
 *
 * Data: /usr/share/datasets/fashion-mnist/train-{images-idx3,labels-idx1}-ubyte.gz (--data DIR);
 * synthetic data if missing (said in the output, "data":"synthetic").
 *
 * Besides wall-clock time, each line gives cpu_s_per_epoch (user + system time of all threads,
 * which includes spin-waiting unless OMP_WAIT_POLICY=passive) and the fastest / median step.
 *
 * --repeat N runs each configuration N times (each in a fresh process, the repetitions
 * interleaved across configurations) and prints the fastest run ("runs":N in the JSON), for
 * machines shared with other work. A last line gives each configuration's speed-up over the
 * dense one (seconds per epoch, fastest runs) when 1.0 is among the configurations. --wait-policy active|passive
 * sets OMP_WAIT_POLICY for the runs (passive is far better when the cores are oversubscribed by
 * other processes; active is best on an idle machine). */
#include <dsnn/dsnn.h>
#include <dsnn/sparse.h>

#include <cblas.h>
#include <omp.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define BENCH_X86 1
#endif

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

struct opts {
    int epochs, threads, batch, big, peak, repeat;
    int fused_relu; /* sparse hidden layers fuse their ReLU (dsnn_sparse_set_activation) */
    const char *wait_policy; /* OMP_WAIT_POLICY given to the children (NULL: inherited) */
    const char *densities;
    const char *data_dir;
    const char *one;   /* run this configuration in this process */
    const char *label; /* its name in the JSON line (default: the configuration) */
    const char *isas;  /* kernel sets to run the sparse configurations with (NULL: active) */
    const char *openblas; /* dense path: "inherit", "auto" or "both" */
    double lr;
    uint64_t seed;
    long max_steps; /* 0: whole epochs */
};

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* User + system CPU time of this process (all threads), seconds. */
static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + 1e-6 * (double)ru.ru_utime.tv_usec +
           (double)ru.ru_stime.tv_sec + 1e-6 * (double)ru.ru_stime.tv_usec;
}

static double peak_rss_mb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    double kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "VmHWM:", 6) == 0)
            kb = atof(line + 6);
    if (f)
        fclose(f);
    if (kb < 0) {
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        kb = (double)ru.ru_maxrss;
    }
    return kb / 1024.0;
}

/* ---- data ---- */

struct data {
    int n, dim;
    unsigned char *x; /* [n][dim] bytes */
    int32_t *y;
    const char *source;
};

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static unsigned char *read_gz(const char *path, size_t *size)
{
    gzFile g = gzopen(path, "rb");
    if (!g)
        return NULL;
    size_t cap = 1 << 20, n = 0;
    unsigned char *buf = malloc(cap);
    for (;;) {
        if (n == cap) {
            cap *= 2;
            unsigned char *b = realloc(buf, cap);
            if (!b) {
                free(buf);
                gzclose(g);
                return NULL;
            }
            buf = b;
        }
        int got = gzread(g, buf + n, (unsigned)(cap - n));
        if (got <= 0)
            break;
        n += (size_t)got;
    }
    gzclose(g);
    *size = n;
    return buf;
}

static void load_data(const char *dir, struct data *d, uint64_t seed)
{
    char pi[1024], pl[1024];
    snprintf(pi, sizeof pi, "%s/train-images-idx3-ubyte.gz", dir);
    snprintf(pl, sizeof pl, "%s/train-labels-idx1-ubyte.gz", dir);
    size_t si = 0, sl = 0;
    unsigned char *bi = read_gz(pi, &si), *bl = read_gz(pl, &sl);
    if (bi && bl && si >= 16 && sl >= 8 && be32(bi) == 2051 && be32(bl) == 2049 &&
        be32(bi + 4) == be32(bl + 4) && si >= 16 + (size_t)be32(bi + 4) * be32(bi + 8) * be32(bi + 12)) {
        d->n = (int)be32(bi + 4);
        d->dim = (int)(be32(bi + 8) * be32(bi + 12));
        d->x = malloc((size_t)d->n * d->dim);
        d->y = malloc(sizeof(int32_t) * d->n);
        memcpy(d->x, bi + 16, (size_t)d->n * d->dim);
        for (int i = 0; i < d->n; i++)
            d->y[i] = bl[8 + i];
        d->source = "fashion-mnist";
    } else {
        /* synthetic: class-dependent blobs, 60000 x 784 */
        d->n = 60000;
        d->dim = 784;
        d->x = malloc((size_t)d->n * d->dim);
        d->y = malloc(sizeof(int32_t) * d->n);
        struct dsnn_rng r;
        dsnn_rng_seed(&r, seed, 99);
        for (int i = 0; i < d->n; i++) {
            int c = (int)dsnn_rng_below(&r, 10);
            d->y[i] = c;
            for (int j = 0; j < d->dim; j++) {
                int v = (int)(dsnn_rng_below(&r, 64) + ((j / 78) == c ? 160 : 0));
                d->x[(size_t)i * d->dim + j] = (unsigned char)(v > 255 ? 255 : v);
            }
        }
        d->source = "synthetic";
    }
    free(bi);
    free(bl);
}

/* ---- network ---- */

static int die(const char *what, const struct dsnn_error *err)
{
    fprintf(stderr, "dsnn-bench-sparse: %s: %s\n", what, err->msg);
    exit(1);
}

/* Parses a configuration label: dense (1.0), uniform density, or er<eps>. */
static bool parse_config(const char *label, bool *dense, double *density, double *eps)
{
    char *end;
    *dense = false;
    *density = 0;
    *eps = 0;
    if (strncmp(label, "er", 2) == 0) {
        *eps = strtod(label + 2, &end);
        return *end == '\0' && *eps > 0;
    }
    *density = strtod(label, &end);
    if (*end != '\0' || !(*density > 0 && *density <= 1))
        return false;
    *dense = *density == 1.0;
    return true;
}

static struct dsnn_net *build_net(const int *sizes, int n_layers, bool dense, double density,
                                  double eps, bool fused_relu, struct dsnn_error *err)
{
    struct dsnn_net *net =
        dsnn_net_new((struct dsnn_shape){sizes[0], 1, 1}, sizes[n_layers], err);
    if (!net)
        die("net", err);
    for (int i = 0; i < n_layers; i++) {
        char name[16];
        snprintf(name, sizeof name, "fc%d", i + 1);
        struct dsnn_layer *l;
        bool last = i == n_layers - 1;
        if (dense) {
            l = dsnn_linear_new(name, sizes[i], sizes[i + 1], true, err);
        } else {
            struct dsnn_sparse_init init = dsnn_sparse_init_default();
            init.mask = DSNN_SPARSE_MASK_PRECISE;
            init.sparse_fan_in = true; /* scale init to the actual fan-in */
            if (last) { /* SET convention: ER epsilon 20 (caps at 1 for 1000 -> 10) */
                init.epsilon = 20;
            } else if (eps > 0) {
                init.epsilon = eps;
            } else {
                init.density = density;
            }
            l = dsnn_sparse_linear_new(name, sizes[i], sizes[i + 1], true, &init, err);
            if (l && !last && fused_relu &&
                dsnn_sparse_set_activation(l, DSNN_SPARSE_ACT_RELU, err) != DSNN_OK)
                die("activation", err);
        }
        if (!l || dsnn_net_add(net, l, err) != DSNN_OK)
            die("layer", err);
        if (!last && (dense || !fused_relu)) {
            snprintf(name, sizeof name, "relu%d", i + 1);
            l = dsnn_relu_new(name, (struct dsnn_shape){sizes[i + 1], 1, 1}, err);
            if (!l || dsnn_net_add(net, l, err) != DSNN_OK)
                die("relu", err);
        }
    }
    return net;
}

/* Connections of every linear layer and FLOPs per sample per step (see the file comment). */
static void count_net(struct dsnn_net *net, double *nnz_total, double *flop_per_sample,
                      char *dens, size_t dsize)
{
    *nnz_total = 0;
    *flop_per_sample = 0;
    size_t pos = 0;
    int first = 1;
    dens[0] = '\0';
    for (size_t i = 0; i < dsnn_net_n_layers(net); i++) {
        struct dsnn_layer *l = dsnn_net_layer(net, i);
        int ni, no;
        bool b;
        if (!dsnn_linear_dims(l, &ni, &no, &b))
            continue;
        double nnz = dsnn_sparse_is(l) ? (double)dsnn_sparse_nnz(l) : (double)ni * no;
        *nnz_total += nnz;
        *flop_per_sample += (first ? 4.0 : 6.0) * nnz;
        pos += (size_t)snprintf(dens + pos, dsize - pos, "%s%.5f", first ? "" : ",",
                                nnz / ((double)ni * no));
        first = 0;
    }
}

static int run_one(const struct opts *o)
{
    struct dsnn_error err = {0};
    bool dense;
    double density, eps;
    if (!parse_config(o->one, &dense, &density, &eps)) {
        fprintf(stderr, "dsnn-bench-sparse: bad configuration '%s' (1.0, 0.05, er20 ...)\n",
                o->one);
        return 2;
    }
    dsnn_set_num_threads(o->threads);
    struct data d = {0};
    load_data(o->data_dir, &d, o->seed);
    const int sizes[] = {d.dim, 1000, 1000, 1000, 10};
    struct dsnn_net *net = build_net(sizes, 4, dense, density, eps, o->fused_relu, &err);
    struct dsnn_rng rng, data_rng;
    dsnn_rng_seed(&rng, o->seed, DSNN_RNG_STREAM_INIT);
    dsnn_rng_seed(&data_rng, o->seed, DSNN_RNG_STREAM_DATA);
    double t_init = now();
    if (dsnn_net_init(net, &rng, o->batch, &err) != DSNN_OK)
        die("init", &err);
    t_init = now() - t_init;
    struct dsnn_optim_cfg oc = {.alg = DSNN_OPTIM_SGD, .learning_rate = o->lr, .momentum = 0.9};
    struct dsnn_optim *opt = dsnn_optim_new(&oc, &err);
    const int B = o->batch, dim = d.dim;
    float *x = malloc(sizeof(float) * (size_t)B * dim);
    float *dl = malloc(sizeof(float) * (size_t)B * 10);
    int32_t *lab = malloc(sizeof(int32_t) * B);
    uint32_t *order = malloc(sizeof(uint32_t) * d.n);
    const float norm_scale = (float)(1.0 / (255.0 * 0.3530)), norm_shift = (float)(-0.2860 / 0.3530);
    double nnz, flop_ps;
    char dens[256];
    count_net(net, &nnz, &flop_ps, dens, sizeof dens);
    double t_fwd = 0, t_bwd = 0, t_opt = 0, t_total = 0, loss = 0, cpu = 0;
    int64_t correct = 0, seen = 0, steps = 0;
    const int64_t max_steps = (int64_t)o->epochs * ((d.n + B - 1) / B);
    double *step_s = malloc(sizeof(double) * (size_t)max_steps); /* full steps (batch B) only */
    int64_t n_full = 0;
    for (int e = 0; e < o->epochs; e++) {
        for (int i = 0; i < d.n; i++)
            order[i] = (uint32_t)i;
        dsnn_rng_shuffle_u32(&data_rng, order, (size_t)d.n);
        loss = 0;
        correct = 0;
        seen = 0;
        double t0 = now(), c0 = cpu_seconds();
        for (int s = 0; s < d.n; s += B) {
            if (o->max_steps && steps >= o->max_steps)
                break;
            int n = d.n - s < B ? d.n - s : B;
            /* the batch loader: (x / 255 - mean) / std, vectorised, on all threads */
#pragma omp parallel for num_threads(o->threads) if (o->threads > 1) schedule(static)
            for (int i = 0; i < n; i++) {
                const unsigned char *src = d.x + (size_t)order[s + i] * dim;
                float *restrict dst = x + (size_t)i * dim;
                for (int j = 0; j < dim; j++)
                    dst[j] = (float)src[j] * norm_scale + norm_shift;
                lab[i] = d.y[order[s + i]];
            }
            double a = now();
            const float *z = dsnn_net_forward(net, x, n, true, &err);
            if (!z)
                die("forward", &err);
            if (dsnn_softmax_xent(z, lab, n, 10, dl, &loss, &correct, &err) != DSNN_OK)
                die("loss", &err);
            double b = now();
            if (dsnn_net_backward(net, dl, n, &err) != DSNN_OK)
                die("backward", &err);
            double c = now();
            if (dsnn_optim_step(opt, net, &err) != DSNN_OK)
                die("optimizer", &err);
            double e2 = now();
            if (n == B)
                step_s[n_full++] = e2 - a;
            t_fwd += b - a;
            t_bwd += c - b;
            t_opt += e2 - c;
            seen += n;
            steps++;
        }
        t_total += now() - t0;
        cpu += cpu_seconds() - c0;
    }
    const double secs = t_total / o->epochs;
    /* per-step times (forward + loss + backward + optimizer): robust to intermittent load */
    for (int64_t i = 1; i < n_full; i++) { /* insertion sort, a few hundred entries */
        double v = step_s[i];
        int64_t j = i;
        for (; j > 0 && step_s[j - 1] > v; j--)
            step_s[j] = step_s[j - 1];
        step_s[j] = v;
    }
    const double step_min = n_full ? step_s[0] : 0, step_med = n_full ? step_s[n_full / 2] : 0;
    free(step_s);
    const double flops = flop_ps * (double)seen * o->epochs / t_total; /* FLOP/s */
    const char *wp = getenv("OMP_WAIT_POLICY");
    printf("{\"config\":\"%s\",\"layer_density\":[%s],\"output_layer\":\"%s\",\"nnz\":%.0f,"
           "\"batch\":%d,\"threads\":%d,\"epochs\":%d,\"samples_per_epoch\":%lld,"
           "\"seconds_per_epoch\":%.3f,\"samples_per_s\":%.0f,\"gflop_per_epoch\":%.2f,"
           "\"gflops\":%.2f,\"cpu_s_per_epoch\":%.3f,\"step_ms_min\":%.3f,\"step_ms_median\":%.3f,\"fwd_s\":%.3f,"
           "\"bwd_s\":%.3f,\"opt_s\":%.3f,\"init_s\":%.3f,"
           "\"peak_rss_mb\":%.1f,\"train_loss\":%.4f,\"train_acc\":%.4f,\"kernel\":\"%s\","
           "\"data\":\"%s\",\"relu\":\"%s\",\"omp_wait_policy\":\"%s\",\"runs\":%d,"
           "\"isa\":\"%s\",\"openblas_core\":\"%s\"}\n",
           o->label ? o->label : o->one, dens, dense ? "dense linear (OpenBLAS)" : "sparse_linear ER eps=20 (=dense)",
           nnz, B, o->threads, o->epochs, (long long)seen, secs, (double)seen / secs,
           flop_ps * (double)seen * 1e-9, flops * 1e-9, cpu / o->epochs, step_min * 1e3,
           step_med * 1e3,
           t_fwd / o->epochs, t_bwd / o->epochs,
           t_opt / o->epochs, t_init, peak_rss_mb(), loss / (double)seen,
           (double)correct / (double)seen, dense ? "openblas" : "sparse", d.source,
           !dense && o->fused_relu ? "fused" : "layer", wp ? wp : "default", o->repeat,
           dsnn_isa_str(dsnn_isa_active()), dsnn_blas_core());
    fflush(stdout);
    free(x);
    free(dl);
    free(lab);
    free(order);
    free(d.x);
    free(d.y);
    dsnn_optim_free(opt);
    dsnn_net_free(net);
    return 0;
}

static int run_big(const struct opts *o)
{
    struct dsnn_error err = {0};
    dsnn_set_num_threads(o->threads);
    const int sizes[] = {784, 100000, 100000, 100000, 10};
    const int B = o->batch;
    double t0 = now();
    struct dsnn_net *net = build_net(sizes, 4, false, 0, 20, o->fused_relu, &err);
    struct dsnn_rng rng;
    dsnn_rng_seed(&rng, o->seed, DSNN_RNG_STREAM_INIT);
    if (dsnn_net_init(net, &rng, B, &err) != DSNN_OK)
        die("init", &err);
    double t_init = now() - t0;
    double rss_init = peak_rss_mb();
    float *x = malloc(sizeof(float) * (size_t)B * 784), *dl = malloc(sizeof(float) * B * 10);
    int32_t *lab = malloc(sizeof(int32_t) * B);
    struct data d = {0};
    load_data(o->data_dir, &d, o->seed);
    for (int i = 0; i < B; i++) {
        for (int j = 0; j < 784; j++)
            x[(size_t)i * 784 + j] =
                (float)((d.x[(size_t)(i % d.n) * d.dim + j] / 255.0 - 0.2860) / 0.3530);
        lab[i] = d.y[i % d.n];
    }
    free(d.x);
    free(d.y);
    struct dsnn_optim_cfg oc = {.alg = DSNN_OPTIM_SGD, .learning_rate = o->lr, .momentum = 0.9};
    struct dsnn_optim *opt = dsnn_optim_new(&oc, &err);
    double loss = 0, times[3];
    int64_t correct = 0;
    double a = now();
    const float *z = dsnn_net_forward(net, x, B, true, &err);
    if (!z || dsnn_softmax_xent(z, lab, B, 10, dl, &loss, &correct, &err) != DSNN_OK)
        die("forward", &err);
    double b = now();
    if (dsnn_net_backward(net, dl, B, &err) != DSNN_OK)
        die("backward", &err);
    double c = now();
    if (dsnn_optim_step(opt, net, &err) != DSNN_OK)
        die("optimizer", &err);
    double e = now();
    times[0] = b - a;
    times[1] = c - b;
    times[2] = e - c;
    double nnz, flop_ps;
    char dens[256];
    count_net(net, &nnz, &flop_ps, dens, sizeof dens);
    const double rss = peak_rss_mb();
    printf("{\"config\":\"big-set-mlp-784-100000x3-10-er20\",\"layer_density\":[%s],\"nnz\":%.0f,"
           "\"batch\":%d,\"threads\":%d,\"init_s\":%.3f,\"step_s\":%.3f,\"fwd_s\":%.3f,"
           "\"bwd_s\":%.3f,\"opt_s\":%.3f,\"peak_rss_mb_after_init\":%.1f,\"peak_rss_mb\":%.1f,"
           "\"loss\":%.4f,\"target_met\":%s,\"relu\":\"%s\",\"data\":\"%s\",\"isa\":\"%s\"}\n",
           dens, nnz, B, o->threads, t_init, times[0] + times[1] + times[2], times[0], times[1],
           times[2], rss_init, rss, loss / B, rss < 4096 ? "true" : "false",
           o->fused_relu ? "fused" : "layer", d.source, dsnn_isa_str(dsnn_isa_active()));
    fflush(stdout);
    free(x);
    free(dl);
    free(lab);
    dsnn_optim_free(opt);
    dsnn_net_free(net);
    return 0;
}

/* ---- machine peak ---- */

static volatile float g_sink;

/* Seconds for reps rounds of 10 independent FMA chains per thread (registers only), at vector
 * width VW (8: AVX2 ymm, 16: AVX-512 zmm); each function is compiled for its own instructions
 * and only called where the CPU has them. */
#define FMA_BODY(T, SET1, FMA, ADD, STORE, VW)                                                    \
    T a0 = SET1(0.1f), a1 = SET1(0.2f), a2 = SET1(0.3f), a3 = SET1(0.4f), a4 = SET1(0.5f),       \
      a5 = SET1(0.6f), a6 = SET1(0.7f), a7 = SET1(0.8f), a8 = SET1(0.9f), a9 = SET1(1.0f);       \
    const T m = SET1(0.99999f), c = SET1(1e-6f);                                                  \
    double t = now();                                                                             \
    for (long k = 0; k < reps; k++) {                                                             \
        a0 = FMA(a0, m, c);                                                                       \
        a1 = FMA(a1, m, c);                                                                       \
        a2 = FMA(a2, m, c);                                                                       \
        a3 = FMA(a3, m, c);                                                                       \
        a4 = FMA(a4, m, c);                                                                       \
        a5 = FMA(a5, m, c);                                                                       \
        a6 = FMA(a6, m, c);                                                                       \
        a7 = FMA(a7, m, c);                                                                       \
        a8 = FMA(a8, m, c);                                                                       \
        a9 = FMA(a9, m, c);                                                                       \
    }                                                                                             \
    t = now() - t;                                                                                \
    T s = ADD(ADD(ADD(a0, a1), ADD(a2, a3)), ADD(ADD(a4, a5), ADD(a6, a7)));                      \
    s = ADD(s, ADD(a8, a9));                                                                      \
    float v[VW];                                                                                  \
    STORE(v, s);                                                                                  \
    *sink += v[0];                                                                                \
    return t;

#ifdef BENCH_X86
__attribute__((target("avx2,fma"))) static double fma_loop8(long reps, float *sink)
{
    FMA_BODY(__m256, _mm256_set1_ps, _mm256_fmadd_ps, _mm256_add_ps, _mm256_storeu_ps, 8)
}
__attribute__((target("avx512f"))) static double fma_loop16(long reps, float *sink)
{
    FMA_BODY(__m512, _mm512_set1_ps, _mm512_fmadd_ps, _mm512_add_ps, _mm512_storeu_ps, 16)
}
#endif

/* FMA peak at width vw (8 or 16) of one core and of all threads, GFLOP/s; false if the CPU lacks
 * the instructions. */
static bool fma_peak(int vw, int threads, double *one, double *all)
{
#ifdef BENCH_X86
    if (!dsnn_isa_supported(vw == 16 ? DSNN_ISA_AVX512 : DSNN_ISA_AVX2))
        return false;
    const long reps = 100000000 / (vw / 8); /* 16 GFLOP per thread */
    const double flop = (double)reps * 10 * 2 * vw;
    float sink = 0;
    double best1 = 1e300, bestn = 1e300;
    for (int r = 0; r < 3; r++) {
        double t = vw == 16 ? fma_loop16(reps, &sink) : fma_loop8(reps, &sink);
        best1 = t < best1 ? t : best1;
        double tmax = 0;
#pragma omp parallel num_threads(threads) reduction(max : tmax)
        {
            float s = 0;
            tmax = vw == 16 ? fma_loop16(reps, &s) : fma_loop8(reps, &s);
#pragma omp atomic
            sink += s;
        }
        bestn = tmax < bestn ? tmax : bestn;
    }
    g_sink = sink; /* keeps the loops' results alive */
    *one = flop / best1 * 1e-9;
    *all = flop * threads / bestn * 1e-9;
    return true;
#else
    (void)vw, (void)threads, (void)one, (void)all;
    return false;
#endif
}

/* OpenBLAS sgemm with its own threads on the network's layer shapes, forward shape
 * y[B][n_out] = x[B][n_in] W^T (libdsnn runs OpenBLAS on one thread and splits large products
 * over its OpenMP threads). Prints the per-shape figures into per, returns the network's. */
static double sgemm_peak(int threads, int B, char *per, size_t per_size)
{
    dsnn_set_num_threads(threads);
    openblas_set_num_threads(threads);
    const int shapes[][2] = {{784, 1000}, {1000, 1000}, {1000, 10}};
    double gemm_flop = 0, gemm_s = 0;
    float sink = 0;
    size_t pos = 0;
    per[0] = '\0';
    for (int si = 0; si < 3; si++) {
        const int ni = shapes[si][0], no = shapes[si][1];
        float *x = malloc(sizeof(float) * (size_t)B * ni);
        float *w = malloc(sizeof(float) * (size_t)ni * no);
        float *y = malloc(sizeof(float) * (size_t)B * no);
        for (size_t i = 0; i < (size_t)B * ni; i++)
            x[i] = (float)(i % 7) * 0.1f;
        for (size_t i = 0; i < (size_t)ni * no; i++)
            w[i] = (float)(i % 5) * 0.01f;
        const int n = 200;
        double best = 1e300;
        for (int r = 0; r < 3; r++) {
            double t = now();
            for (int k = 0; k < n; k++)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, no, ni, 1.0f, x, ni, w,
                            ni, 0.0f, y, no);
            t = now() - t;
            best = t < best ? t : best;
        }
        const double f = 2.0 * B * ni * no * n;
        gemm_flop += f;
        gemm_s += best;
        pos += (size_t)snprintf(per + pos, per_size - pos, "%s\"%dx%d\":%.2f", si ? "," : "", ni,
                                no, f / best * 1e-9);
        sink += y[0];
        free(x);
        free(w);
        free(y);
    }
    g_sink = sink;
    return gemm_flop / gemm_s * 1e-9;
}

/* --peak: the FMA peaks and sgemm (inherited OpenBLAS core); --peak-sgemm (a child with
 * OPENBLAS_CORETYPE removed): sgemm only, labelled by o->label. */
static int run_peak(const struct opts *o, bool sgemm_only)
{
    char fma[512] = "";
    if (!sgemm_only) {
        size_t pos = 0;
        const int widths[] = {8, 16};
        for (int i = 0; i < 2; i++) {
            double one, all;
            if (fma_peak(widths[i], o->threads, &one, &all))
                pos += (size_t)snprintf(fma + pos, sizeof fma - pos,
                                        "\"fma%d_gflops_one_core\":%.2f,"
                                        "\"fma%d_gflops_all_threads\":%.2f,",
                                        widths[i], one, widths[i], all);
        }
    }
    char per[512];
    const double net = sgemm_peak(o->threads, o->batch, per, sizeof per);
    printf("{\"config\":\"%s\",\"threads\":%d,\"batch\":%d,%s\"sgemm_gflops\":{%s},"
           "\"sgemm_gflops_network\":%.2f,\"isa\":\"%s\",\"cpu_isas\":\"%s\","
           "\"openblas_core\":\"%s\",\"note\":\"FMA peak: fp32 fused multiply-adds on registers, "
           "fmaN = N-wide (8: AVX2, 16: AVX-512)\"}\n",
           o->label ? o->label : "peak", o->threads, o->batch, fma, per, net,
           dsnn_isa_str(dsnn_isa_active()), dsnn_isa_cpu_list(), dsnn_blas_core());
    fflush(stdout);
    return 0;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: dsnn-bench-sparse [--epochs N] [--densities 1.0,0.2,0.05,er20,0.01]\n"
            "                         [--threads N] [--batch N] [--lr X] [--seed N]\n"
            "                         [--data DIR] [--max-steps N] [--repeat N]\n"
            "                         [--wait-policy active|passive] [--relu fused|layer]\n"
            "                         [--isa scalar,avx2,avx512] [--openblas inherit|auto|both]\n"
            "                         [--big] [--peak]\n");
}

/* One child run: a configuration (or the sgemm peak) under a kernel set and OpenBLAS choice. */
struct bench_run {
    char label[64];
    const char *cfg; /* configuration token; NULL: sgemm peak */
    const char *isa; /* DSNN_ISA for the child (NULL: inherited) */
    bool openblas_auto; /* OPENBLAS_CORETYPE removed from the child's environment */
    bool dense;
};

/* Runs r in a fresh process (this program with --one / --peak-sgemm), reads its JSON line into
 * line; false if it failed. */
static bool run_child(const struct opts *o, const char *self, const struct bench_run *r,
                      char *line, size_t line_size)
{
    int fd[2];
    if (pipe(fd) != 0) {
        perror("pipe");
        return false;
    }
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        close(fd[0]);
        close(fd[1]);
        return false;
    }
    if (pid == 0) {
        char ep[16], th[16], ba[16], lr[32], sd[32], ms[32], rp[16];
        char *relu = o->fused_relu ? "fused" : "layer";
        snprintf(ep, sizeof ep, "%d", o->epochs);
        snprintf(th, sizeof th, "%d", o->threads);
        snprintf(ba, sizeof ba, "%d", o->batch);
        snprintf(lr, sizeof lr, "%g", o->lr);
        snprintf(sd, sizeof sd, "%llu", (unsigned long long)o->seed);
        snprintf(ms, sizeof ms, "%ld", o->max_steps);
        snprintf(rp, sizeof rp, "%d", o->repeat);
        char *args[] = {(char *)self, r->cfg ? "--one" : "--peak-sgemm",
                        (char *)(r->cfg ? r->cfg : "-"), "--label", (char *)r->label,
                        "--epochs", ep, "--threads", th, "--batch", ba, "--lr", lr, "--seed", sd,
                        "--data", (char *)o->data_dir, "--max-steps", ms, "--repeat", rp,
                        "--relu", relu, NULL};
        if (r->isa)
            setenv("DSNN_ISA", r->isa, 1);
        if (r->openblas_auto)
            unsetenv("OPENBLAS_CORETYPE");
        close(fd[0]);
        dup2(fd[1], STDOUT_FILENO);
        close(fd[1]);
        execv("/proc/self/exe", args);
        perror("execv");
        _exit(127);
    }
    close(fd[1]);
    size_t n = 0;
    ssize_t got;
    while (n + 1 < line_size && (got = read(fd[0], line + n, line_size - 1 - n)) > 0)
        n += (size_t)got;
    line[n] = '\0';
    close(fd[0]);
    int st = 0;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 && line[0] == '{';
}

int main(int argc, char **argv)
{
    struct opts o = {.epochs = 1,
                     .threads = 2,
                     .batch = 128,
                     .densities = "1.0,0.2,0.05,er20,0.01",
                     .data_dir = "/usr/share/datasets/fashion-mnist",
                     .lr = 0.01,
                     .repeat = 1,
                     .fused_relu = 1,
                     .openblas = "both",
                     .seed = 42};
    bool peak_sgemm = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--big")) {
            o.big = 1;
            continue;
        }
        if (!strcmp(a, "--peak")) {
            o.peak = 1;
            continue;
        }
        if (!v) {
            usage();
            return 2;
        }
        if (!strcmp(a, "--epochs"))
            o.epochs = atoi(v);
        else if (!strcmp(a, "--densities"))
            o.densities = v;
        else if (!strcmp(a, "--threads"))
            o.threads = atoi(v);
        else if (!strcmp(a, "--batch"))
            o.batch = atoi(v);
        else if (!strcmp(a, "--lr"))
            o.lr = atof(v);
        else if (!strcmp(a, "--seed"))
            o.seed = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--data"))
            o.data_dir = v;
        else if (!strcmp(a, "--max-steps"))
            o.max_steps = atol(v);
        else if (!strcmp(a, "--one"))
            o.one = v;
        else if (!strcmp(a, "--peak-sgemm"))
            peak_sgemm = true;
        else if (!strcmp(a, "--label"))
            o.label = v;
        else if (!strcmp(a, "--repeat"))
            o.repeat = atoi(v);
        else if (!strcmp(a, "--wait-policy"))
            o.wait_policy = v;
        else if (!strcmp(a, "--relu"))
            o.fused_relu = strcmp(v, "layer") != 0;
        else if (!strcmp(a, "--isa"))
            o.isas = v;
        else if (!strcmp(a, "--openblas") &&
                 (!strcmp(v, "inherit") || !strcmp(v, "auto") || !strcmp(v, "both")))
            o.openblas = v;
        else {
            usage();
            return 2;
        }
        i++;
    }
    if (o.epochs < 1 || o.threads < 1 || o.batch < 1 || o.repeat < 1) {
        usage();
        return 2;
    }
    struct dsnn_error ierr = {0};
    if (dsnn_isa_init_env(&ierr) != DSNN_OK) {
        fprintf(stderr, "dsnn-bench-sparse: %s\n", ierr.msg);
        return 2;
    }
    if (o.one)
        return run_one(&o);
    if (peak_sgemm)
        return run_peak(&o, true);
    if (o.big) {
        if (o.wait_policy && !getenv("DSNN_BENCH_REEXEC")) { /* apply before libgomp starts */
            setenv("OMP_WAIT_POLICY", o.wait_policy, 1);
            setenv("DSNN_BENCH_REEXEC", "1", 1);
            execv("/proc/self/exe", argv);
        }
        return run_big(&o);
    }
    const bool blas_env = getenv("OPENBLAS_CORETYPE") != NULL;
    if (o.peak) {
        run_peak(&o, false);
        if (blas_env && strcmp(o.openblas, "inherit") != 0) { /* OpenBLAS's own choice too */
            struct bench_run r = {.cfg = NULL, .openblas_auto = true};
            snprintf(r.label, sizeof r.label, "peak-sgemm@openblas-auto");
            char line[4096];
            if (!run_child(&o, argv[0], &r, line, sizeof line)) {
                fprintf(stderr, "dsnn-bench-sparse: %s failed\n", r.label);
                return 1;
            }
            fputs(line, stdout);
        }
        return 0;
    }
    /* kernel sets to run the sparse configurations with */
    const char *isa_list[DSNN_ISA_COUNT];
    int n_isa = 0;
    char *isa_buf = strdup(o.isas ? o.isas : dsnn_isa_str(dsnn_isa_active()));
    for (char *tok = strtok(isa_buf, ","); tok; tok = strtok(NULL, ",")) {
        enum dsnn_isa isa;
        if (!dsnn_isa_parse(tok, &isa) || !dsnn_isa_supported(isa)) {
            fprintf(stderr, "dsnn-bench-sparse: --isa %s: %s (this CPU has: %s)\n", tok,
                    dsnn_isa_parse(tok, &isa) ? "not supported by this CPU" : "unknown",
                    dsnn_isa_cpu_list());
            return 2;
        }
        if (n_isa < DSNN_ISA_COUNT)
            isa_list[n_isa++] = dsnn_isa_str(isa);
    }
    const bool many_isa = n_isa > 1 || o.isas;
    /* one fresh process per configuration (and repetition): re-execute with --one and keep the
     * fastest run's JSON line */
    if (o.wait_policy)
        setenv("OMP_WAIT_POLICY", o.wait_policy, 1);
    char *list = strdup(o.densities);
    enum { MAX_RUNS = 64 };
    static struct bench_run runs[MAX_RUNS];
    int n_run = 0, dense = -1, dense_auto = -1;
    for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) {
        bool d;
        double dens, eps;
        if (!parse_config(tok, &d, &dens, &eps)) {
            fprintf(stderr, "dsnn-bench-sparse: bad configuration '%s' (1.0, 0.05, er20 ...)\n",
                    tok);
            return 2;
        }
        for (int v = 0; v < (d ? 2 : n_isa) && n_run < MAX_RUNS; v++) {
            struct bench_run *r = &runs[n_run];
            *r = (struct bench_run){.cfg = tok, .dense = d};
            if (d) { /* v = 0: inherited OpenBLAS core, v = 1: OpenBLAS's own choice */
                const bool want = v == 0 ? !blas_env || strcmp(o.openblas, "auto") != 0
                                         : blas_env && strcmp(o.openblas, "inherit") != 0;
                if (!want)
                    continue;
                r->openblas_auto = v == 1;
                snprintf(r->label, sizeof r->label, "%s%s", tok, v ? "@openblas-auto" : "");
                *(v ? &dense_auto : &dense) = n_run;
            } else {
                r->isa = isa_list[v];
                snprintf(r->label, sizeof r->label, "%s%s%s", tok, many_isa ? "@" : "",
                         many_isa ? isa_list[v] : "");
            }
            n_run++;
        }
    }
    /* Repetitions are interleaved (every configuration once, then again ...), so that a machine
     * whose speed drifts over the run (shared hosts) affects all configurations alike; each
     * configuration keeps its fastest run. */
    static char best[MAX_RUNS][4096];
    double best_s[MAX_RUNS];
    bool failed[MAX_RUNS] = {false};
    for (int c = 0; c < n_run; c++)
        best_s[c] = 1e300;
    int status_all = 0;
    for (int rep = 0; rep < o.repeat; rep++) {
        for (int c = 0; c < n_run; c++) {
            if (failed[c])
                continue;
            char line[4096];
            const char *sp;
            if (!run_child(&o, argv[0], &runs[c], line, sizeof line) ||
                !(sp = strstr(line, "\"seconds_per_epoch\":"))) {
                fprintf(stderr, "dsnn-bench-sparse: configuration '%s' failed\n", runs[c].label);
                status_all = 1;
                failed[c] = true;
                continue;
            }
            double secs = atof(sp + strlen("\"seconds_per_epoch\":"));
            if (o.repeat > 1)
                fprintf(stderr, "  %s run %d: %.3f s/epoch\n", runs[c].label, rep + 1, secs);
            if (secs < best_s[c]) {
                best_s[c] = secs;
                snprintf(best[c], sizeof best[c], "%s", line);
            }
        }
    }
    /* one line per configuration, then the speed-ups against the dense configuration (1.0) with
     * the inherited OpenBLAS core, and against OpenBLAS's own choice */
    for (int c = 0; c < n_run; c++)
        if (!failed[c])
            fputs(best[c], stdout);
    const int refs[2] = {dense, dense_auto};
    const char *ref_names[2] = {"speedup_vs_dense", "speedup_vs_dense_openblas_auto"};
    for (int q = 0; q < 2; q++) {
        const int ref = refs[q];
        if (ref < 0 || failed[ref] || n_run < 2)
            continue;
        printf("{\"config\":\"%s\"", ref_names[q]);
        for (int c = 0; c < n_run; c++)
            if (c != ref && !failed[c])
                printf(",\"%s\":%.2f", runs[c].label, best_s[ref] / best_s[c]);
        printf(",\"runs\":%d}\n", o.repeat);
    }
    fflush(stdout);
    free(list);
    free(isa_buf);
    return status_all;
}
