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

enum dsnn_status dsnn_noise_options_read(const struct dsnn_cfg *cfg, uint64_t trial_seed,
                                         struct dsnn_noise_options *o, struct dsnn_error *err)
{
    enum dsnn_status st;
    char kw[700];
    static const char *const spaces[] = {"normalized", "pixel", NULL};
    int space = 0;
    int64_t seed = 0;
    if ((st = dsnn_cfg_bool(cfg, "test_noise", false, &o->enabled, err)) != DSNN_OK ||
        (st = dsnn_cfg_float(cfg, "noise_level", 0.1, &o->level, err)) != DSNN_OK ||
        (st = dsnn_cfg_float(cfg, "noise_high", DSNN_NOISE_HIGH, &o->high, err)) != DSNN_OK ||
        (st = dsnn_cfg_float(cfg, "noise_low", DSNN_NOISE_LOW, &o->low, err)) != DSNN_OK ||
        (st = dsnn_cfg_enum(cfg, "noise_space", "normalized", spaces, &space, err)) != DSNN_OK ||
        (st = dsnn_cfg_int(cfg, "noise_seed", 0, &seed, err)) != DSNN_OK)
        return st;
    if (!(o->level >= 0 && o->level <= 1))
        return dsnn_error_set(err, DSNN_ERR_CONFIG, "%s: must be in [0, 1], got %g",
                              dsnn_dataset_key_where(cfg, "noise_level", kw, sizeof kw),
                              o->level);
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
