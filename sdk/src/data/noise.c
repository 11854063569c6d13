/* data/noise.c - nupic.research's RandomNoise for the noise split of image datasets. */
#include "dsnn/dataset_util.h"

#include <math.h>

/* Stream id of the noise generators ("noise" in ASCII): independent of the well-known streams. */
#define NOISE_STREAM 0x6e6f697365ull

size_t dsnn_noise_apply(float *x, size_t n, double noise_level, float high, float low,
                        struct dsnn_rng *rng)
{
    if (!x || !rng || n == 0 || !(noise_level > 0))
        return 0;
    if (noise_level > 1)
        noise_level = 1;
    /* int(a.shape[0] * noise_level) in Python: the same double product, truncated. */
    size_t k = (size_t)((double)n * noise_level);
    if (k > n)
        k = n;
    /* Sequential sampling: element i (with r = n - i elements left) becomes high with probability
     * h / r and low with probability l / r. Every assignment of h highs and l lows to distinct
     * elements is then equally likely, as with nupic's random permutation. */
    size_t h = k / 2, l = k - k / 2;
    for (size_t i = 0; i < n && h + l > 0; i++) {
        uint64_t v = dsnn_rng_below(rng, (uint64_t)(n - i));
        if (v < h) {
            x[i] = high;
            h--;
        } else if (v < h + l) {
            x[i] = low;
            l--;
        }
    }
    return k;
}

void dsnn_noise_rng(struct dsnn_rng *r, uint64_t seed, uint64_t sample)
{
    dsnn_rng_seed(r, dsnn_seed_mix(seed, sample), NOISE_STREAM);
}

struct noise_keys {
    bool enabled;
    double level, high, low;
    int space;
    int64_t seed;
};
static const char *const noise_spaces[] = {"normalized", "pixel", NULL};
#define NK_AT(f) DSNN_KEY_AT(struct noise_keys, f)
static const struct dsnn_key_spec noise_keys[] = {
    {.name = "test_noise", .type = DSNN_KEY_BOOL, .def = false, NK_AT(enabled),
     .doc = "also provide the noise split: the test split with noise_level of the values of each "
            "sample replaced by noise_high / noise_low (nupic RandomNoise); n_noise = n_test"},
    {.name = "noise_level", .type = DSNN_KEY_FLOAT, .def = 0.1, DSNN_KEY_RANGE(0, 1), NK_AT(level),
     .doc = "fraction in [0, 1] of the values of a sample (all channels together) that are "
            "replaced: k = floor(n * noise_level), floor(k/2) by noise_high, the rest by "
            "noise_low"},
    {.name = "noise_high", .type = DSNN_KEY_FLOAT, .def = DSNN_NOISE_HIGH, NK_AT(high),
     .doc = "first noise value (nupic: 0.5 + 2 * 0.2)"},
    {.name = "noise_low", .type = DSNN_KEY_FLOAT, .def = DSNN_NOISE_LOW, NK_AT(low),
     .doc = "second noise value (nupic: 0.5 - 2 * 0.2)"},
    {.name = "noise_space", .type = DSNN_KEY_STRING, .def_str = "normalized",
     .choices = noise_spaces, NK_AT(space),
     .doc = "\"normalized\": the noise values are set after normalisation, as nupic does; "
            "\"pixel\": they are set in the [0, 1] image before normalisation"},
    {.name = "noise_seed", .type = DSNN_KEY_INT, .default_value = "(the trial seed)", NK_AT(seed),
     .doc = "seed of the noise; the noisy copy of test sample i depends on (noise_seed, i) only, "
            "so it is the same at every epoch (set it to give every trial the same noisy set)"},
};
#undef NK_AT
DSNN_KEY_TABLE_DEFINE(, dsnn_noise_keys, noise_keys);

enum dsnn_status dsnn_noise_options_read(const struct dsnn_cfg *cfg, uint64_t trial_seed,
                                         struct dsnn_noise_options *o, struct dsnn_error *err)
{
    enum dsnn_status st;
    char kw[700];
    struct noise_keys k = {0};
    if ((st = dsnn_keys_read(&dsnn_noise_keys, cfg, &k, err)) != DSNN_OK)
        return st;
    o->enabled = k.enabled;
    o->level = k.level;
    o->high = k.high;
    o->low = k.low;
    const int space = k.space;
    const int64_t seed = k.seed;
    if (!isfinite(o->high))
        return dsnn_error_set(err, DSNN_ERR_CONFIG, "%s: must be a finite number",
                              dsnn_dataset_key_where(cfg, "noise_high", kw, sizeof kw));
    if (!isfinite(o->low))
        return dsnn_error_set(err, DSNN_ERR_CONFIG, "%s: must be a finite number",
                              dsnn_dataset_key_where(cfg, "noise_low", kw, sizeof kw));
    o->space = space == 1 ? DSNN_NOISE_SPACE_PIXEL : DSNN_NOISE_SPACE_NORMALIZED;
    o->seed = dsnn_cfg_has(cfg, "noise_seed") ? (uint64_t)seed : trial_seed;
    return DSNN_OK;
}
