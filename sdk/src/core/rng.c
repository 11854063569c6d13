/* core/rng.c - xoshiro256** seeded through splitmix64. */
#include "dsnn/rng.h"

#include <math.h>

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

uint64_t dsnn_seed_mix(uint64_t a, uint64_t b)
{
    uint64_t x = a ^ (b * 0xd1342543de82ef95ULL + 0x2545f4914f6cdd1dULL);
    (void)splitmix64(&x);
    return splitmix64(&x);
}

void dsnn_rng_seed(struct dsnn_rng *r, uint64_t seed, uint64_t stream)
{
    uint64_t x = dsnn_seed_mix(seed, stream);
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&x);
    if (!(r->s[0] | r->s[1] | r->s[2] | r->s[3]))
        r->s[0] = 1;
}

static inline uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t dsnn_rng_u64(struct dsnn_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

uint64_t dsnn_rng_below(struct dsnn_rng *r, uint64_t n)
{
    /* Lemire's nearly divisionless method. */
    uint64_t x = dsnn_rng_u64(r);
    __uint128_t m = (__uint128_t)x * n;
    uint64_t l = (uint64_t)m;
    if (l < n) {
        uint64_t t = -n % n;
        while (l < t) {
            x = dsnn_rng_u64(r);
            m = (__uint128_t)x * n;
            l = (uint64_t)m;
        }
    }
    return (uint64_t)(m >> 64);
}

double dsnn_rng_uniform(struct dsnn_rng *r)
{
    return (double)(dsnn_rng_u64(r) >> 11) * 0x1.0p-53;
}

double dsnn_rng_normal(struct dsnn_rng *r)
{
    double u1 = dsnn_rng_uniform(r);
    double u2 = dsnn_rng_uniform(r);
    if (u1 < 1e-300)
        u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586476925 * u2);
}

void dsnn_rng_shuffle_u32(struct dsnn_rng *r, uint32_t *idx, size_t n)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)dsnn_rng_below(r, i);
        uint32_t t = idx[i - 1];
        idx[i - 1] = idx[j];
        idx[j] = t;
    }
}
