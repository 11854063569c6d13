/* train/schedules.c - drop-fraction annealing, update timing, the GMP cubic schedule, DSR's threshold
 * adaptation and capped proportional allocation (see dsnn/schedules.h). */
#include "dsnn/schedules.h"

#include <math.h>

#define SCHED_PI 3.14159265358979323846

const char *const *dsnn_anneal_names(void)
{
    static const char *const names[] = {"constant", "cosine", "exponential", "linear", NULL};
    return names;
}

double dsnn_anneal_at(enum dsnn_anneal a, double value0, int64_t t, int64_t begin, int64_t end,
                      double exponent)
{
    double x;
    if (t < begin)
        x = 0.0;
    else if (end <= begin)
        x = 1.0;
    else
        x = fmin(1.0, (double)(t - begin) / (double)(end - begin));
    switch (a) {
    case DSNN_ANNEAL_CONSTANT: return value0;
    case DSNN_ANNEAL_COSINE: return value0 * 0.5 * (1.0 + cos(SCHED_PI * x));
    case DSNN_ANNEAL_EXPONENTIAL: return value0 * pow(1.0 - x, exponent);
    case DSNN_ANNEAL_LINEAR: return value0 * (1.0 - x);
    }
    return value0;
}

bool dsnn_schedule_due(int64_t t, int64_t begin, int64_t end, int64_t every)
{
    if (every <= 0 || t < begin || (end >= 0 && t > end))
        return false;
    return (t - begin) % every == 0;
}

double dsnn_gmp_density(double d_initial, double d_final, double t, double t0, double t1)
{
    if (!(d_final < d_initial) || t < t0)
        return d_initial;
    if (t >= t1) /* also a one-shot schedule, t1 <= t0 */
        return d_final;
    const double r = 1.0 - (t - t0) / (t1 - t0);
    return d_final + (d_initial - d_final) * r * r * r;
}

int dsnn_dsr_adjust_threshold(double *h, size_t pruned, size_t target, double tol)
{
    if ((double)pruned < (1.0 - tol) * (double)target) {
        *h *= 2.0;
        return 1;
    }
    if ((double)pruned > (1.0 + tol) * (double)target) {
        *h *= 0.5;
        return -1;
    }
    return 0;
}

/* ---- capped proportional allocation ---- */

static double clean_weight(double w)
{
    return w > 0.0 && isfinite(w) ? w : 0.0;
}

/* Effective weight of bin i in a phase: phase 1 the given weights, phase 2 weight 1 for the bins
 * of weight 0 that have room (shared equally). */
static double eff_weight(const double *weight, const size_t *cap, size_t i, int phase)
{
    const double w = clean_weight(weight[i]);
    return phase == 1 ? w : (w == 0.0 && cap[i] > 0 ? 1.0 : 0.0);
}

/* Water level lam such that sum_i min(cap_i, lam e_i) = r over the bins of positive effective
 * weight (INFINITY when all of them are capped). capped[] (here: out[], 0/1) marks the bins that
 * reach their cap. */
static double water_level(size_t n, const double *weight, const size_t *cap, double r, int phase,
                          size_t *capped)
{
    for (;;) {
        double rem = r, wsum = 0.0;
        for (size_t i = 0; i < n; i++) {
            const double e = eff_weight(weight, cap, i, phase);
            if (e <= 0.0)
                continue;
            if (capped[i])
                rem -= (double)cap[i];
            else
                wsum += e;
        }
        if (wsum <= 0.0)
            return INFINITY;
        const double lam = rem / wsum;
        bool changed = false;
        for (size_t i = 0; i < n; i++) {
            const double e = eff_weight(weight, cap, i, phase);
            if (e > 0.0 && !capped[i] && lam * e >= (double)cap[i]) {
                capped[i] = 1;
                changed = true;
            }
        }
        if (!changed)
            return lam;
    }
}

size_t dsnn_allocate_capped(size_t n, const double *weight, const size_t *cap, size_t total,
                            size_t *out)
{
    size_t room = 0;
    for (size_t i = 0; i < n; i++) {
        out[i] = 0;
        room = room + cap[i] < room ? SIZE_MAX : room + cap[i];
    }
    const size_t target = total < room ? total : room;
    if (target == 0)
        return 0;
    /* Phase 1: bins of positive weight. Phase 2 (only if they are all full): the rest equally. */
    const double lam1 = water_level(n, weight, cap, (double)target, 1, out);
    double lam2 = 0.0;
    if (isinf(lam1)) {
        double r2 = (double)target;
        for (size_t i = 0; i < n; i++)
            if (clean_weight(weight[i]) > 0.0)
                r2 -= (double)cap[i];
        if (r2 > 0.0)
            lam2 = water_level(n, weight, cap, r2, 2, out);
    }
    /* Real shares, floored; then the deficit by largest remainder among bins with room. */
    size_t sum = 0;
    for (size_t i = 0; i < n; i++) {
        const double w = clean_weight(weight[i]);
        const double real = w > 0.0 ? fmin((double)cap[i], lam1 * w)
                                    : (cap[i] > 0 ? fmin((double)cap[i], lam2) : 0.0);
        double f = floor(real);
        out[i] = f >= (double)cap[i] ? cap[i] : (size_t)f;
        sum += out[i];
    }
    while (sum < target) {
        size_t best = n;
        double best_frac = -1.0;
        for (size_t i = 0; i < n; i++) {
            if (out[i] >= cap[i])
                continue;
            const double w = clean_weight(weight[i]);
            const double real = w > 0.0 ? fmin((double)cap[i], lam1 * w)
                                        : fmin((double)cap[i], lam2);
            /* a bin with no share at all comes last */
            const double frac = real > 0.0 ? real - (double)out[i] : -0.5;
            if (frac > best_frac) {
                best_frac = frac;
                best = i;
            }
        }
        if (best == n)
            break;
        out[best]++;
        sum++;
    }
    while (sum > target) { /* rounding overshoot (not expected): take from the fullest share */
        size_t best = n;
        for (size_t i = 0; i < n; i++)
            if (out[i] > 0 && (best == n || out[i] > out[best]))
                best = i;
        out[best]--;
        sum--;
    }
    return sum;
}
