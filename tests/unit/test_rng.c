/* tests/unit/test_rng.c - deterministic random numbers (sdk/src/core/rng.c).
 *
 * Same (seed, stream) gives the same sequence, other streams or seeds give others; bounded draws
 * stay in range and are roughly uniform (chi-square with fixed seeds, so the test is
 * deterministic); shuffles are permutations; normals have mean 0 and standard deviation 1. */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dsnn/layer.h"
#include "dsnn/rng.h"
#include "harness.h"

/* Chi-square statistic of counts against a uniform expectation. */
static double chi_square(const uint64_t *counts, size_t k, uint64_t total)
{
    double e = (double)total / (double)k, x = 0;
    for (size_t i = 0; i < k; i++)
        x += ((double)counts[i] - e) * ((double)counts[i] - e) / e;
    return x;
}

static void test_same_seed_same_stream(void)
{
    struct dsnn_rng a, b;
    dsnn_rng_seed(&a, 42, DSNN_RNG_STREAM_INIT);
    dsnn_rng_seed(&b, 42, DSNN_RNG_STREAM_INIT);
    CU_ASSERT_EQUAL(memcmp(&a, &b, sizeof a), 0);
    bool same = true;
    for (int i = 0; i < 10000; i++)
        same &= dsnn_rng_u64(&a) == dsnn_rng_u64(&b);
    CU_ASSERT_TRUE(same);
    /* The state is plain data: a copy continues identically. */
    struct dsnn_rng c = a;
    same = true;
    for (int i = 0; i < 1000; i++) {
        same &= dsnn_rng_uniform(&a) == dsnn_rng_uniform(&c);
        same &= dsnn_rng_normal(&a) == dsnn_rng_normal(&c);
        same &= dsnn_rng_below(&a, 1000) == dsnn_rng_below(&c, 1000);
    }
    CU_ASSERT_TRUE(same);
    /* Reseeding restarts the sequence. */
    struct dsnn_rng d;
    dsnn_rng_seed(&d, 42, DSNN_RNG_STREAM_INIT);
    uint64_t first = dsnn_rng_u64(&d);
    dsnn_rng_seed(&d, 42, DSNN_RNG_STREAM_INIT);
    CU_ASSERT_EQUAL(dsnn_rng_u64(&d), first);
}

/* Number of equal outputs at the same position in the first n draws. */
static int collisions(uint64_t seed_a, uint64_t stream_a, uint64_t seed_b, uint64_t stream_b, int n)
{
    struct dsnn_rng a, b;
    dsnn_rng_seed(&a, seed_a, stream_a);
    dsnn_rng_seed(&b, seed_b, stream_b);
    int same = 0;
    for (int i = 0; i < n; i++)
        same += dsnn_rng_u64(&a) == dsnn_rng_u64(&b);
    return same;
}

static void test_streams_and_seeds_differ(void)
{
    for (uint64_t s = 1; s <= 5; s++)
        for (uint64_t t = s + 1; t <= 5; t++)
            CU_ASSERT_EQUAL(collisions(7, s, 7, t, 1000), 0);
    CU_ASSERT_EQUAL(collisions(1, 1, 2, 1, 1000), 0);
    CU_ASSERT_EQUAL(collisions(0, 0, 0, 1, 1000), 0);
    CU_ASSERT_EQUAL(collisions(0, 0, 1, 0, 1000), 0);
    /* Swapping seed and stream is not the same stream. */
    CU_ASSERT_EQUAL(collisions(3, 5, 5, 3, 1000), 0);
    /* Seed 0, stream 0 still gives a working (nonzero) generator. */
    struct dsnn_rng z;
    dsnn_rng_seed(&z, 0, 0);
    CU_ASSERT(z.s[0] | z.s[1] | z.s[2] | z.s[3]);
    int nonzero = 0;
    for (int i = 0; i < 100; i++)
        nonzero += dsnn_rng_u64(&z) != 0;
    CU_ASSERT(nonzero > 95);

    /* dsnn_seed_mix: deterministic, sensitive to both arguments and their order. */
    CU_ASSERT_EQUAL(dsnn_seed_mix(1, 2), dsnn_seed_mix(1, 2));
    CU_ASSERT_NOT_EQUAL(dsnn_seed_mix(1, 2), dsnn_seed_mix(2, 1));
    CU_ASSERT_NOT_EQUAL(dsnn_seed_mix(1, 2), dsnn_seed_mix(1, 3));
    CU_ASSERT_NOT_EQUAL(dsnn_seed_mix(1, 2), dsnn_seed_mix(0, 2));
    CU_ASSERT_NOT_EQUAL(dsnn_seed_mix(0, 0), 0);
    /* Trial seeds of an experiment are all distinct. */
    uint64_t seeds[256];
    bool distinct = true;
    for (int i = 0; i < 256; i++) {
        seeds[i] = dsnn_seed_mix(12345, (uint64_t)i);
        for (int j = 0; j < i; j++)
            distinct &= seeds[i] != seeds[j];
    }
    CU_ASSERT_TRUE(distinct);
}

static void test_u64_bits(void)
{
    /* Every bit is set about half of the time. */
    struct dsnn_rng r;
    dsnn_rng_seed(&r, 2024, 9);
    int ones[64] = {0};
    const int n = 20000;
    for (int i = 0; i < n; i++) {
        uint64_t x = dsnn_rng_u64(&r);
        for (int b = 0; b < 64; b++)
            ones[b] += (int)((x >> b) & 1);
    }
    bool ok = true;
    for (int b = 0; b < 64; b++)
        ok &= abs(ones[b] - n / 2) < 600; /* ~8.5 sigma */
    CU_ASSERT_TRUE(ok);
}

static void test_below_range(void)
{
    static const uint64_t ns[] = {1,    2,     3,          7,
                                  10,   1000,  65537,      1ULL << 32,
                                  (1ULL << 33) + 1, UINT64_MAX / 3, UINT64_MAX - 1, UINT64_MAX};
    struct dsnn_rng r;
    dsnn_rng_seed(&r, 1, 2);
    for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++) {
        bool in_range = true;
        uint64_t max_seen = 0;
        for (int i = 0; i < 5000; i++) {
            uint64_t x = dsnn_rng_below(&r, ns[k]);
            in_range &= x < ns[k];
            if (x > max_seen)
                max_seen = x;
        }
        CU_ASSERT_TRUE(in_range);
        if (ns[k] == 1)
            CU_ASSERT_EQUAL(max_seen, 0);
        if (ns[k] >= 1000) /* the upper part of the range is reached */
            CU_ASSERT(max_seen > ns[k] / 2);
    }
    /* Every value of a small range appears. */
    uint64_t seen = 0;
    for (int i = 0; i < 1000; i++)
        seen |= 1ULL << dsnn_rng_below(&r, 7);
    CU_ASSERT_EQUAL(seen, 0x7f);
}

static void test_below_uniform(void)
{
    /* Chi-square critical values at p = 0.001: df 9 -> 27.88, df 2 -> 13.82, df 99 -> 148.2. */
    static const struct {
        uint64_t n;
        double crit;
    } cases[] = {{10, 27.88}, {3, 13.82}, {100, 148.2}};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        struct dsnn_rng r;
        dsnn_rng_seed(&r, 777, 100 + k);
        uint64_t counts[100] = {0};
        const uint64_t total = 200000;
        for (uint64_t i = 0; i < total; i++)
            counts[dsnn_rng_below(&r, cases[k].n)]++;
        double x = chi_square(counts, (size_t)cases[k].n, total);
        if (x >= cases[k].crit)
            fprintf(stderr, "\n    below(%llu): chi-square %.2f >= %.2f\n",
                    (unsigned long long)cases[k].n, x, cases[k].crit);
        CU_ASSERT(x < cases[k].crit);
    }
    /* A range that does not divide 2^64, folded into 4 bins by the top bits. A modulo-biased
     * generator would put 2/3 of the mass below 2^63 for n = 3 * 2^62. */
    struct dsnn_rng r;
    dsnn_rng_seed(&r, 99, 1);
    const uint64_t n = 3ULL << 62;
    uint64_t counts[3] = {0};
    const uint64_t total = 90000;
    for (uint64_t i = 0; i < total; i++)
        counts[dsnn_rng_below(&r, n) / (1ULL << 62)]++;
    CU_ASSERT(chi_square(counts, 3, total) < 13.82);
}

static void test_uniform(void)
{
    struct dsnn_rng r;
    dsnn_rng_seed(&r, 5, 5);
    const int n = 100000;
    double sum = 0, sum2 = 0, lo = 1, hi = 0;
    uint64_t bins[20] = {0};
    for (int i = 0; i < n; i++) {
        double u = dsnn_rng_uniform(&r);
        sum += u;
        sum2 += u * u;
        if (u < lo)
            lo = u;
        if (u > hi)
            hi = u;
        bins[(int)(u * 20)]++;
    }
    CU_ASSERT(lo >= 0.0);
    CU_ASSERT(hi < 1.0);
    CU_ASSERT(lo < 1e-3);
    CU_ASSERT(hi > 1 - 1e-3);
    double mean = sum / n, var = sum2 / n - mean * mean;
    CU_ASSERT(fabs(mean - 0.5) < 0.005);
    CU_ASSERT(fabs(var - 1.0 / 12) < 0.002);
    CU_ASSERT(chi_square(bins, 20, (uint64_t)n) < 43.82); /* df 19, p = 0.001 */
}

static void test_normal(void)
{
    struct dsnn_rng r;
    dsnn_rng_seed(&r, 31337, DSNN_RNG_STREAM_INIT);
    const int n = 200000;
    double sum = 0, sum2 = 0, sum3 = 0, sum4 = 0;
    int within1 = 0, within2 = 0;
    bool finite = true;
    for (int i = 0; i < n; i++) {
        double x = dsnn_rng_normal(&r);
        finite &= isfinite(x);
        sum += x;
        sum2 += x * x;
        sum3 += x * x * x;
        sum4 += x * x * x * x;
        within1 += fabs(x) < 1;
        within2 += fabs(x) < 2;
    }
    CU_ASSERT_TRUE(finite);
    double mean = sum / n, var = sum2 / n - mean * mean;
    double sd = sqrt(var);
    CU_ASSERT(fabs(mean) < 0.01);
    CU_ASSERT(fabs(sd - 1) < 0.01);
    CU_ASSERT(fabs(sum3 / n) < 0.05);    /* skewness ~ 0 */
    CU_ASSERT(fabs(sum4 / n - 3) < 0.1); /* kurtosis ~ 3 */
    CU_ASSERT(fabs((double)within1 / n - 0.6827) < 0.005);
    CU_ASSERT(fabs((double)within2 / n - 0.9545) < 0.003);
}

static bool is_permutation(const uint32_t *v, size_t n)
{
    bool *seen = calloc(n ? n : 1, sizeof *seen);
    bool ok = seen != NULL;
    for (size_t i = 0; ok && i < n; i++) {
        if (v[i] >= n || seen[v[i]])
            ok = false;
        else
            seen[v[i]] = true;
    }
    free(seen);
    return ok;
}

static void test_shuffle(void)
{
    struct dsnn_rng r;
    dsnn_rng_seed(&r, 8, DSNN_RNG_STREAM_DATA);
    /* Empty and single element: nothing happens (and nothing is read out of bounds). */
    dsnn_rng_shuffle_u32(&r, NULL, 0);
    uint32_t one = 0;
    dsnn_rng_shuffle_u32(&r, &one, 1);
    CU_ASSERT_EQUAL(one, 0);

    static const size_t sizes[] = {2, 3, 10, 100, 1000};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        size_t n = sizes[k];
        uint32_t *v = malloc(n * sizeof *v);
        CU_ASSERT_PTR_NOT_NULL_FATAL(v);
        for (size_t i = 0; i < n; i++)
            v[i] = (uint32_t)i;
        dsnn_rng_shuffle_u32(&r, v, n);
        CU_ASSERT_TRUE(is_permutation(v, n));
        if (n >= 100) {
            size_t fixed = 0;
            for (size_t i = 0; i < n; i++)
                fixed += v[i] == i;
            CU_ASSERT(fixed < 10); /* expected ~1 fixed point */
        }
        free(v);
    }

    /* Deterministic for the same stream. */
    struct dsnn_rng a, b;
    dsnn_rng_seed(&a, 3, 2);
    dsnn_rng_seed(&b, 3, 2);
    uint32_t x[50], y[50];
    for (uint32_t i = 0; i < 50; i++)
        x[i] = y[i] = i;
    dsnn_rng_shuffle_u32(&a, x, 50);
    dsnn_rng_shuffle_u32(&b, y, 50);
    CU_ASSERT_EQUAL(memcmp(x, y, sizeof x), 0);

    /* All 6 permutations of 3 elements are equally likely (chi-square df 5, p = 0.001). */
    uint64_t counts[6] = {0};
    const uint64_t total = 60000;
    for (uint64_t t = 0; t < total; t++) {
        uint32_t p[3] = {0, 1, 2};
        dsnn_rng_shuffle_u32(&r, p, 3);
        counts[p[0] * 2 + (p[1] > p[2])]++;
    }
    CU_ASSERT(chi_square(counts, 6, total) < 20.52);
    /* Each element lands in each position of a 5-array equally often. */
    uint64_t pos[5][5] = {{0}};
    for (uint64_t t = 0; t < 50000; t++) {
        uint32_t p[5] = {0, 1, 2, 3, 4};
        dsnn_rng_shuffle_u32(&r, p, 5);
        for (int i = 0; i < 5; i++)
            pos[p[i]][i]++;
    }
    for (int e = 0; e < 5; e++)
        CU_ASSERT(chi_square(pos[e], 5, 50000) < 18.47); /* df 4 */
}

static void test_weight_init_draw(void)
{
    struct dsnn_rng r;
    dsnn_rng_seed(&r, 1, DSNN_RNG_STREAM_INIT);
    const int n = 50000, fan_in = 64, fan_out = 16;
    double bound_k = 1.0 / sqrt(fan_in), bound_x = sqrt(6.0 / (fan_in + fan_out));
    double mx_k = 0, mx_x = 0, s_kn = 0, s_n = 0;
    bool zero = true;
    for (int i = 0; i < n; i++) {
        double k = dsnn_weight_init_draw(DSNN_INIT_KAIMING_UNIFORM, fan_in, fan_out, 0, &r);
        double x = dsnn_weight_init_draw(DSNN_INIT_XAVIER_UNIFORM, fan_in, fan_out, 0, &r);
        double kn = dsnn_weight_init_draw(DSNN_INIT_KAIMING_NORMAL, fan_in, fan_out, 0, &r);
        double nn = dsnn_weight_init_draw(DSNN_INIT_NORMAL, fan_in, fan_out, 0.05, &r);
        mx_k = fmax(mx_k, fabs(k));
        mx_x = fmax(mx_x, fabs(x));
        s_kn += kn * kn;
        s_n += nn * nn;
        zero &= dsnn_weight_init_draw(DSNN_INIT_ZERO, fan_in, fan_out, 1, &r) == 0.0f;
    }
    CU_ASSERT_TRUE(zero);
    CU_ASSERT(mx_k <= bound_k && mx_k > 0.99 * bound_k);
    CU_ASSERT(mx_x <= bound_x && mx_x > 0.99 * bound_x);
    CU_ASSERT(fabs(sqrt(s_kn / n) - sqrt(2.0 / fan_in)) < 0.02 * sqrt(2.0 / fan_in));
    CU_ASSERT(fabs(sqrt(s_n / n) - 0.05) < 0.001);
}

static CU_TestInfo tests[] = {
    {"same seed and stream: same sequence", test_same_seed_same_stream},
    {"other streams and seeds differ", test_streams_and_seeds_differ},
    {"u64 bits balanced", test_u64_bits},
    {"below: range", test_below_range},
    {"below: uniform (chi-square)", test_below_uniform},
    {"uniform in [0, 1)", test_uniform},
    {"normal: mean 0, sd 1", test_normal},
    {"shuffle: permutation, uniform", test_shuffle},
    {"weight init draws", test_weight_init_draw},
    CU_TEST_INFO_NULL,
};

DSNN_TEST_MAIN("rng", tests)
