/* sparse/util.c - radix sort / select and a hash set used by the sparse topology code. */
#include "sparse/sparse_impl.h"

#include <stdlib.h>
#include <string.h>

#define RADIX_BITS 11
#define RADIX_SIZE (1u << RADIX_BITS)

/* Insertion sort, the base case of the radix sorts below: one function per key type. */
#define SP_INSERTION_SORT(fn, T)                                                                   \
    static void fn(T *keys, size_t n)                                                              \
    {                                                                                              \
        for (size_t i = 1; i < n; i++) {                                                           \
            T v = keys[i];                                                                         \
            size_t j = i;                                                                          \
            for (; j > 0 && keys[j - 1] > v; j--)                                                  \
                keys[j] = keys[j - 1];                                                             \
            keys[j] = v;                                                                           \
        }                                                                                          \
    }
SP_INSERTION_SORT(insertion_sort_u64, uint64_t)
SP_INSERTION_SORT(insertion_sort_u32, uint32_t)
#undef SP_INSERTION_SORT

/* LSD radix sort passes, DIGIT bits at a time, over the low `bits` bits of keys[n], with tmp[n]
 * and count[2^DIGIT] as scratch (a pass is skipped when every key has the same digit); the sorted
 * keys end in keys. One function per key type. */
#define SP_RADIX_PASSES(fn, T, DIGIT)                                                              \
    static void fn(T *keys, T *tmp, size_t *count, size_t n, int bits)                             \
    {                                                                                              \
        const size_t size = (size_t)1 << (DIGIT);                                                  \
        T *src = keys, *dst = tmp;                                                                 \
        for (int shift = 0; shift < bits; shift += (DIGIT)) {                                      \
            memset(count, 0, size * sizeof *count);                                                \
            for (size_t i = 0; i < n; i++)                                                         \
                count[(src[i] >> shift) & (size - 1)]++;                                           \
            if (count[(src[0] >> shift) & (size - 1)] == n)                                        \
                continue; /* all keys share this digit */                                          \
            size_t sum = 0;                                                                        \
            for (size_t d = 0; d < size; d++) {                                                    \
                size_t c = count[d];                                                               \
                count[d] = sum;                                                                    \
                sum += c;                                                                          \
            }                                                                                      \
            for (size_t i = 0; i < n; i++)                                                         \
                dst[count[(src[i] >> shift) & (size - 1)]++] = src[i];                             \
            T *t = src;                                                                            \
            src = dst;                                                                             \
            dst = t;                                                                               \
        }                                                                                          \
        if (src != keys)                                                                           \
            memcpy(keys, src, n * sizeof *keys);                                                   \
    }
SP_RADIX_PASSES(radix_passes_u64, uint64_t, RADIX_BITS)
SP_RADIX_PASSES(radix_passes_u32, uint32_t, 8)
#undef SP_RADIX_PASSES

bool sp_sort_u64(uint64_t *keys, size_t n, uint64_t max_key)
{
    if (n < 2)
        return true;
    if (n <= 32) {
        insertion_sort_u64(keys, n);
        return true;
    }
    int bits = 0;
    while (bits < 64 && (max_key >> bits) != 0)
        bits++;
    uint64_t *tmp = malloc(n * sizeof *tmp);
    size_t *count = malloc(RADIX_SIZE * sizeof *count);
    if (!tmp || !count) {
        free(tmp);
        free(count);
        return false;
    }
    radix_passes_u64(keys, tmp, count, n, bits);
    free(tmp);
    free(count);
    return true;
}

bool sp_sort_u32(uint32_t *keys, size_t n)
{
    if (n < 2)
        return true;
    if (n <= 48) {
        insertion_sort_u32(keys, n);
        return true;
    }
    uint32_t *tmp = malloc(n * sizeof *tmp);
    size_t count[256];
    if (!tmp)
        return false;
    radix_passes_u32(keys, tmp, count, n, 32);
    free(tmp);
    return true;
}

void sp_radix_select(const uint32_t *keys, size_t n, size_t count, uint32_t *thr,
                          size_t *n_equal_take)
{
    uint32_t prefix = 0, mask = 0;
    size_t k = count; /* rank (1-based) of the wanted key among those matching prefix */
    size_t hist[256];
    (void)n;
    for (int shift = 24; shift >= 0; shift -= 8) {
        memset(hist, 0, sizeof hist);
        for (size_t i = 0; i < n; i++)
            if ((keys[i] & mask) == prefix)
                hist[(keys[i] >> shift) & 255u]++;
        size_t cum = 0;
        unsigned b = 0;
        for (; b < 255; b++) {
            if (cum + hist[b] >= k)
                break;
            cum += hist[b];
        }
        k -= cum;
        prefix |= (uint32_t)b << shift;
        mask |= 255u << shift;
    }
    *thr = prefix;
    *n_equal_take = k;
}

static inline size_t hash_u64(uint64_t k, size_t mask)
{
    k ^= k >> 31;
    k *= 0x9e3779b97f4a7c15ULL;
    k ^= k >> 29;
    return (size_t)k & mask;
}

bool sp_hashset_init(struct sp_hashset *h, size_t expected)
{
    size_t size = 16;
    while (size < 2 * expected)
        size <<= 1;
    h->slots = malloc(size * sizeof *h->slots);
    if (!h->slots)
        return false;
    memset(h->slots, 0xff, size * sizeof *h->slots);
    h->mask = size - 1;
    return true;
}

bool sp_hashset_insert(struct sp_hashset *h, uint64_t key)
{
    size_t i = hash_u64(key, h->mask);
    for (;;) {
        uint64_t s = h->slots[i];
        if (s == key)
            return false;
        if (s == UINT64_MAX) {
            h->slots[i] = key;
            return true;
        }
        i = (i + 1) & h->mask;
    }
}

bool sp_hashset_contains(const struct sp_hashset *h, uint64_t key)
{
    size_t i = hash_u64(key, h->mask);
    for (;;) {
        uint64_t s = h->slots[i];
        if (s == key)
            return true;
        if (s == UINT64_MAX)
            return false;
        i = (i + 1) & h->mask;
    }
}

void sp_hashset_free(struct sp_hashset *h)
{
    free(h->slots);
    h->slots = NULL;
}
