/* test_isa.c - the run-time choice of the sparse kernel set (dsnn/isa.h), and agreement of
 * every kernel set this CPU has with the scalar one over a few training steps.
 *
 * Tolerance of the cross-ISA check: after STEPS SGD steps of a three-layer truly sparse MLP
 * (fused ReLUs, panel hand-off, a batch that is not a multiple of the chunk), every weight, bias
 * and logit of a vector kernel set must be within 1e-5 * (1 + max |value|) of the scalar set's.
 * The sets differ only in rounding (fused multiply-adds, order of the horizontal sums of the
 * weight gradient): measured 3.0e-8 for avx2 and avx512 against scalar (scale 0.147, AMD EPYC
 * Zen 5, gcc 12), 300 times below the tolerance; a dropped connection, a wrong mask or a wrong
 * lane is of the order of the values themselves. The sets must also not be bit
 * identical (that would mean the switch did not take effect). */
#include "harness.h"

#include <dsnn/dsnn.h>
#include <dsnn/sparse.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STEPS 12
#define BATCH 100
#define N_LAYERS 3
static const int sizes[N_LAYERS + 1] = {61, 90, 47, 10};

static void test_names(void)
{
    for (int i = 0; i < DSNN_ISA_COUNT; i++) {
        enum dsnn_isa isa = DSNN_ISA_SCALAR;
        CU_ASSERT(dsnn_isa_parse(dsnn_isa_str((enum dsnn_isa)i), &isa));
        CU_ASSERT_EQUAL(isa, (enum dsnn_isa)i);
    }
    enum dsnn_isa isa;
    CU_ASSERT_FALSE(dsnn_isa_parse("AVX2", &isa));
    CU_ASSERT_FALSE(dsnn_isa_parse("sse", &isa));
    CU_ASSERT_FALSE(dsnn_isa_parse("", &isa));
    CU_ASSERT_STRING_EQUAL(dsnn_isa_str((enum dsnn_isa)7), "?");
    CU_ASSERT(dsnn_isa_supported(DSNN_ISA_SCALAR));
    CU_ASSERT(dsnn_isa_supported(dsnn_isa_best()));
    CU_ASSERT_FALSE(dsnn_isa_supported((enum dsnn_isa)DSNN_ISA_COUNT));
    /* AVX-512 implies AVX2 + FMA here */
    if (dsnn_isa_supported(DSNN_ISA_AVX512))
        CU_ASSERT(dsnn_isa_supported(DSNN_ISA_AVX2));
    /* the CPU list names exactly the supported sets, best last */
    const char *list = dsnn_isa_cpu_list();
    CU_ASSERT(strncmp(list, "scalar", 6) == 0);
    CU_ASSERT_EQUAL(strstr(list, "avx2") != NULL, dsnn_isa_supported(DSNN_ISA_AVX2));
    CU_ASSERT_EQUAL(strstr(list, "avx512") != NULL, dsnn_isa_supported(DSNN_ISA_AVX512));
    const char *best = dsnn_isa_str(dsnn_isa_best());
    CU_ASSERT_STRING_EQUAL(list + strlen(list) - strlen(best), best);
    CU_ASSERT(strlen(dsnn_blas_core()) > 0);
}

static void test_set(void)
{
    const enum dsnn_isa keep = dsnn_isa_active();
    struct dsnn_error err = {0};
    for (int i = 0; i < DSNN_ISA_COUNT; i++) {
        enum dsnn_isa isa = (enum dsnn_isa)i;
        memset(&err, 0, sizeof err);
        if (dsnn_isa_supported(isa)) {
            CU_ASSERT_EQUAL(dsnn_isa_set(isa, &err), DSNN_OK);
            CU_ASSERT_EQUAL(dsnn_isa_active(), isa);
        } else {
            CU_ASSERT_EQUAL(dsnn_isa_set(isa, &err), DSNN_ERR_UNSUPPORTED);
            CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, dsnn_isa_cpu_list()));
            CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, dsnn_isa_str(isa)));
            CU_ASSERT_NOT_EQUAL(dsnn_isa_active(), isa);
        }
    }
    CU_ASSERT_EQUAL(dsnn_isa_set((enum dsnn_isa)-1, &err), DSNN_ERR_INVALID);
    CU_ASSERT_EQUAL(dsnn_isa_set(keep, &err), DSNN_OK);
}

/* DSNN_ISA as the host reads it: unknown words and sets the CPU lacks are errors that name what
 * the CPU has; unset, empty and "auto" change nothing. */
static void test_env(void)
{
    const enum dsnn_isa keep = dsnn_isa_active();
    const char *old = getenv("DSNN_ISA");
    char *saved = old ? strdup(old) : NULL;
    struct dsnn_error err = {0};
    setenv("DSNN_ISA", "avx9000", 1);
    CU_ASSERT_EQUAL(dsnn_isa_init_env(&err), DSNN_ERR_CONFIG);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "DSNN_ISA=avx9000"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, dsnn_isa_cpu_list()));
    CU_ASSERT_EQUAL(dsnn_isa_active(), keep);
    const char *words[] = {"", "auto"};
    for (int i = 0; i < 2; i++) {
        setenv("DSNN_ISA", words[i], 1);
        CU_ASSERT_EQUAL(dsnn_isa_init_env(&err), DSNN_OK);
        CU_ASSERT_EQUAL(dsnn_isa_active(), keep);
    }
    for (int i = 0; i < DSNN_ISA_COUNT; i++) {
        enum dsnn_isa isa = (enum dsnn_isa)i;
        setenv("DSNN_ISA", dsnn_isa_str(isa), 1);
        memset(&err, 0, sizeof err);
        enum dsnn_status st = dsnn_isa_init_env(&err);
        if (dsnn_isa_supported(isa)) {
            CU_ASSERT_EQUAL(st, DSNN_OK);
            CU_ASSERT_EQUAL(dsnn_isa_active(), isa);
        } else {
            CU_ASSERT_EQUAL(st, DSNN_ERR_UNSUPPORTED);
            CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, dsnn_isa_cpu_list()));
        }
    }
    if (saved)
        setenv("DSNN_ISA", saved, 1);
    else
        unsetenv("DSNN_ISA");
    free(saved);
    CU_ASSERT_EQUAL(dsnn_isa_set(keep, &err), DSNN_OK);
}

/* Everything a few training steps produce: parameters of every layer and the last logits. */
struct run {
    float *v;
    size_t n;
};

static void push(struct run *r, const float *p, size_t n)
{
    r->v = realloc(r->v, sizeof(float) * (r->n + n));
    memcpy(r->v + r->n, p, sizeof(float) * n);
    r->n += n;
}

static struct run train_steps(enum dsnn_isa isa)
{
    struct dsnn_error err = {0};
    struct run out = {0};
    CU_ASSERT_EQUAL_FATAL(dsnn_isa_set(isa, &err), DSNN_OK);
    struct dsnn_net *net =
        dsnn_net_new((struct dsnn_shape){sizes[0], 1, 1}, sizes[N_LAYERS], &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(net);
    for (int i = 0; i < N_LAYERS; i++) {
        struct dsnn_sparse_init init = dsnn_sparse_init_default();
        init.density = 0.35;
        init.mask = DSNN_SPARSE_MASK_PRECISE;
        char name[8];
        snprintf(name, sizeof name, "fc%d", i + 1);
        struct dsnn_layer *l = dsnn_sparse_linear_new(name, sizes[i], sizes[i + 1], true, &init,
                                                      &err);
        CU_ASSERT_PTR_NOT_NULL_FATAL(l);
        if (i < N_LAYERS - 1)
            CU_ASSERT_EQUAL(dsnn_sparse_set_activation(l, DSNN_SPARSE_ACT_RELU, &err), DSNN_OK);
        CU_ASSERT_EQUAL_FATAL(dsnn_net_add(net, l, &err), DSNN_OK);
    }
    struct dsnn_rng rng;
    dsnn_rng_seed(&rng, 11, DSNN_RNG_STREAM_INIT);
    CU_ASSERT_EQUAL_FATAL(dsnn_net_init(net, &rng, BATCH, &err), DSNN_OK);
    struct dsnn_optim_cfg oc = {.alg = DSNN_OPTIM_SGD, .learning_rate = 0.05, .momentum = 0.9};
    struct dsnn_optim *opt = dsnn_optim_new(&oc, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(opt);
    float *x = malloc(sizeof(float) * BATCH * (size_t)sizes[0]);
    float *dl = malloc(sizeof(float) * BATCH * (size_t)sizes[N_LAYERS]);
    int32_t lab[BATCH];
    struct dsnn_rng data;
    dsnn_rng_seed(&data, 3, DSNN_RNG_STREAM_DATA);
    const float *z = NULL;
    for (int s = 0; s < STEPS; s++) {
        for (int j = 0; j < BATCH; j++) {
            lab[j] = (int32_t)dsnn_rng_below(&data, (uint64_t)sizes[N_LAYERS]);
            for (int i = 0; i < sizes[0]; i++) /* class-dependent inputs: training has a signal */
                x[(size_t)j * sizes[0] + i] = (float)(dsnn_rng_uniform(&data) - 0.5 +
                                                      (i % sizes[N_LAYERS] == lab[j] ? 1.0 : 0.0));
        }
        double loss = 0;
        int64_t correct = 0;
        z = dsnn_net_forward(net, x, BATCH, true, &err);
        CU_ASSERT_PTR_NOT_NULL_FATAL(z);
        CU_ASSERT_EQUAL_FATAL(dsnn_softmax_xent(z, lab, BATCH, sizes[N_LAYERS], dl, &loss,
                                                &correct, &err),
                              DSNN_OK);
        CU_ASSERT_EQUAL_FATAL(dsnn_net_backward(net, dl, BATCH, &err), DSNN_OK);
        CU_ASSERT_EQUAL_FATAL(dsnn_optim_step(opt, net, &err), DSNN_OK);
    }
    z = dsnn_net_forward(net, x, BATCH, false, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(z);
    push(&out, z, (size_t)BATCH * sizes[N_LAYERS]);
    for (int i = 0; i < N_LAYERS; i++) {
        struct dsnn_layer *l = dsnn_net_layer(net, (size_t)i);
        struct dsnn_sparse_csr c;
        CU_ASSERT_FATAL(dsnn_sparse_get_csr(l, &c));
        push(&out, c.value, c.nnz);
        push(&out, dsnn_sparse_bias(l)->value, (size_t)c.n_out);
    }
    free(x);
    free(dl);
    dsnn_optim_free(opt);
    dsnn_net_free(net);
    return out;
}

static void test_cross_isa_training(void)
{
    const enum dsnn_isa keep = dsnn_isa_active();
    struct run ref = train_steps(DSNN_ISA_SCALAR);
    double scale = 0;
    for (size_t i = 0; i < ref.n; i++)
        scale = fmax(scale, fabs(ref.v[i]));
    CU_ASSERT(scale > 0.05); /* something trained */
    int compared = 0;
    for (int i = DSNN_ISA_SCALAR + 1; i < DSNN_ISA_COUNT; i++) {
        if (!dsnn_isa_supported((enum dsnn_isa)i))
            continue;
        struct run r = train_steps((enum dsnn_isa)i);
        CU_ASSERT_EQUAL_FATAL(r.n, ref.n);
        double maxd = 0;
        for (size_t k = 0; k < r.n; k++)
            maxd = fmax(maxd, fabs((double)r.v[k] - ref.v[k]));
        printf("\n    %s vs scalar: %zu values, max |diff| %.3g (scale %.3g) ",
               dsnn_isa_str((enum dsnn_isa)i), r.n, maxd, scale);
        CU_ASSERT(maxd <= 1e-5 * (1.0 + scale));
        CU_ASSERT(maxd > 0); /* the kernel set did change */
        free(r.v);
        compared++;
    }
    /* the same set twice is bit identical */
    struct dsnn_error err = {0};
    struct run again = train_steps(dsnn_isa_best());
    struct run best = train_steps(dsnn_isa_best());
    CU_ASSERT_EQUAL_FATAL(again.n, best.n);
    CU_ASSERT(memcmp(again.v, best.v, sizeof(float) * best.n) == 0);
    free(again.v);
    free(best.v);
    free(ref.v);
    if (!compared)
        printf("\n    (this CPU has only the scalar kernel set) ");
    CU_ASSERT_EQUAL(dsnn_isa_set(keep, &err), DSNN_OK);
}

static CU_TestInfo tests[] = {
    {"names, support and the CPU list", test_names},
    {"dsnn_isa_set switches or refuses", test_set},
    {"DSNN_ISA from the environment", test_env},
    {"a few training steps agree across kernel sets", test_cross_isa_training},
    CU_TEST_INFO_NULL,
};

DSNN_TEST_MAIN("isa", tests)
