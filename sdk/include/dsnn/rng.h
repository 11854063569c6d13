/* dsnn/rng.h - deterministic random numbers (xoshiro256** seeded by splitmix64).
 *
 * Every random stream of a trial derives from (experiment seed, trial id, stream id), so that
 * runs and resumes are reproducible bit for bit. The state is plain data: copy it to save it. */
#ifndef DSNN_RNG_H
#define DSNN_RNG_H

#include <stddef.h>
#include <stdint.h>
#include "dsnn/export.h"

#ifdef __cplusplus
extern "C" {
#endif

struct dsnn_rng {
    uint64_t s[4];
};

/* Well-known stream ids; plugins may use any other value. */
enum dsnn_rng_stream {
    DSNN_RNG_STREAM_INIT = 1,     /* weight / topology initialisation */
    DSNN_RNG_STREAM_DATA = 2,     /* data order, augmentation */
    DSNN_RNG_STREAM_DROPOUT = 3,  /* dropout masks */
    DSNN_RNG_STREAM_TOPOLOGY = 4, /* prune / regrow */
    DSNN_RNG_STREAM_SEARCH = 5    /* search strategy */
};

/* Seeds from (seed, stream): distinct streams are independent. */
DSNN_API void dsnn_rng_seed(struct dsnn_rng *r, uint64_t seed, uint64_t stream);
/* Mixes several 64-bit values into one seed (e.g. experiment seed and trial index). */
DSNN_API uint64_t dsnn_seed_mix(uint64_t a, uint64_t b);

DSNN_API uint64_t dsnn_rng_u64(struct dsnn_rng *r);
/* Uniform in [0, n), unbiased. n must be > 0. */
DSNN_API uint64_t dsnn_rng_below(struct dsnn_rng *r, uint64_t n);
/* Uniform in [0, 1). */
DSNN_API double dsnn_rng_uniform(struct dsnn_rng *r);
/* Standard normal (Box-Muller; no cached second value, so the state alone defines the stream). */
DSNN_API double dsnn_rng_normal(struct dsnn_rng *r);
/* Fisher-Yates shuffle of idx[0..n). */
DSNN_API void dsnn_rng_shuffle_u32(struct dsnn_rng *r, uint32_t *idx, size_t n);

#ifdef __cplusplus
}
#endif
#endif
