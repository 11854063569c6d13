/* rules/dynsparse.c - nupic's prune / regrow decisions (SET, DSNNWeightedMag, DSNNMixedHeb) as
 * keep masks over the active connections, their application to a sparse layer, and the prune
 * schedule. See dsnn/dynsparse_rules.h. */
#include "dsnn/dynsparse_rules.h"
#include "sparse/sparse_impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

bool dsnn_perc_on(double perc)
{
    return perc > 0.0; /* false for unset (< 0), 0 and NaN */
}

static enum dsnn_status check_perc(double perc, const char *what, struct dsnn_error *err)
{
    if (perc > 1.0)
        return dsnn_error_set(err, DSNN_ERR_INVALID, "%s %g is above 1", what, perc);
    return DSNN_OK;
}

/* keep[k] = !remove[k]: the rules below say which connections stay. */
static void invert(uint8_t *mask, size_t n)
{
    for (size_t k = 0; k < n; k++)
        mask[k] = !mask[k];
}

static size_t count_keep(const uint8_t *keep, size_t n)
{
    size_t c = 0;
    for (size_t k = 0; k < n; k++)
        c += keep[k] != 0;
    return c;
}

/* The signed magnitude rule with nupic's rounding (dsnn/sparse.h: the one implementation). */
static enum dsnn_status magnitude(const float *score, size_t n, double perc, uint8_t *keep,
                                  struct dsnn_error *err)
{
    memset(keep, 1, n);
    if (!dsnn_perc_on(perc))
        return DSNN_OK;
    memset(keep, 0, n);
    enum dsnn_status st =
        dsnn_signed_magnitude_mark(score, n, perc, DSNN_PRUNE_ROUND_NUPIC, keep, NULL, err);
    invert(keep, n);
    return st;
}

/* A rule of one array and one fraction (magnitude, hebbian). */
typedef enum dsnn_status (*rule_fn)(const float *x, size_t n, double perc, uint8_t *keep,
                                    struct dsnn_error *err);

/* The keep mask of a one-rule scheme: the fraction (key `what`) checked, the rule, the count. */
static enum dsnn_status one_rule_keep(rule_fn rule, const char *what, const float *x, size_t n,
                                      double perc, uint8_t *keep, size_t *n_keep,
                                      struct dsnn_error *err)
{
    enum dsnn_status st = check_perc(perc, what, err);
    if (st == DSNN_OK)
        st = rule(x, n, perc, keep, err);
    if (st == DSNN_OK && n_keep)
        *n_keep = count_keep(keep, n);
    return st;
}

enum dsnn_status dsnn_rule_magnitude_keep(const float *score, size_t n, double perc, uint8_t *keep,
                                          size_t *n_keep, struct dsnn_error *err)
{
    return one_rule_keep(magnitude, "weight_prune_perc", score, n, perc, keep, n_keep, err);
}

static enum dsnn_status hebbian(const float *coact, size_t n, double perc, uint8_t *keep,
                                struct dsnn_error *err)
{
    memset(keep, 1, n);
    if (!dsnn_perc_on(perc))
        return DSNN_OK;
    if (!coact && n)
        return dsnn_error_set(err, DSNN_ERR_INVALID, "Hebbian pruning without coactivations");
    uint32_t *key = malloc((n ? n : 1) * sizeof *key);
    if (!key)
        return dsnn_error_set(err, DSNN_ERR_NOMEM, "out of memory");
    for (size_t k = 0; k < n; k++)
        key[k] = sp_float_key(coact[k]);
    /* nupic: kth = int(tau * total_active) lowest correlations pruned */
    memset(keep, 0, n);
    sp_mark_smallest(key, n, (size_t)(perc * (double)n), keep);
    invert(keep, n);
    free(key);
    return DSNN_OK;
}

enum dsnn_status dsnn_rule_hebbian_keep(const float *coact, size_t n, double perc, uint8_t *keep,
                                        size_t *n_keep, struct dsnn_error *err)
{
    return one_rule_keep(hebbian, "hebbian_prune_perc", coact, n, perc, keep, n_keep, err);
}

enum dsnn_status dsnn_rule_mixed_heb_keep(const float *weight, const float *coact, size_t n,
                                          double hebbian_perc, double weight_perc, uint8_t *keep,
                                          size_t *n_keep, struct dsnn_error *err)
{
    enum dsnn_status st;
    if ((st = check_perc(hebbian_perc, "hebbian_prune_perc", err)) ||
        (st = check_perc(weight_perc, "weight_prune_perc", err)))
        return st;
    const bool tau = dsnn_perc_on(hebbian_perc), zeta = dsnn_perc_on(weight_perc);
    if (tau && zeta) {
        uint8_t *mag = malloc(n ? n : 1);
        if (!mag)
            return dsnn_error_set(err, DSNN_ERR_NOMEM, "out of memory");
        st = hebbian(coact, n, hebbian_perc, keep, err);
        if (st == DSNN_OK)
            st = magnitude(weight, n, weight_perc, mag, err);
        for (size_t k = 0; st == DSNN_OK && k < n; k++)
            keep[k] = keep[k] | mag[k];
        free(mag);
    } else if (tau) {
        st = hebbian(coact, n, hebbian_perc, keep, err);
    } else {
        st = magnitude(weight, n, weight_perc, keep, err); /* keeps all when zeta is off */
    }
    if (st == DSNN_OK && n_keep)
        *n_keep = count_keep(keep, n);
    return st;
}

enum dsnn_status dsnn_rule_weighted_mag_keep(const float *weight, const float *coact, size_t n,
                                             double weight_perc, uint8_t *keep, size_t *n_keep,
                                             struct dsnn_error *err)
{
    enum dsnn_status st = check_perc(weight_perc, "weight_prune_perc", err);
    if (st != DSNN_OK)
        return st;
    if (!dsnn_perc_on(weight_perc)) {
        memset(keep, 1, n);
    } else {
        if (!coact && n)
            return dsnn_error_set(err, DSNN_ERR_INVALID,
                                  "weighted magnitude pruning without coactivations");
        float *score = malloc((n ? n : 1) * sizeof *score);
        if (!score)
            return dsnn_error_set(err, DSNN_ERR_NOMEM, "out of memory");
        for (size_t k = 0; k < n; k++)
            score[k] = weight[k] * coact[k];
        st = magnitude(score, n, weight_perc, keep, err);
        free(score);
    }
    if (st == DSNN_OK && n_keep)
        *n_keep = count_keep(keep, n);
    return st;
}

size_t dsnn_rule_grow_count(size_t target, size_t n_keep, size_t n_inactive)
{
    size_t add = target > n_keep ? target - n_keep : 0;
    return add < n_inactive ? add : n_inactive;
}

enum dsnn_status dsnn_dynsparse_apply(struct dsnn_layer *l, const uint8_t *keep, size_t grow,
                                      dsnn_sparse_score_fn fn, void *user, struct dsnn_rng *rng,
                                      struct dsnn_error *err)
{
    struct dsnn_sparse_csr c;
    if (!dsnn_sparse_get_csr(l, &c))
        return dsnn_error_set(err, DSNN_ERR_INVALID,
                              "layer '%s' is not an initialised sparse "
                              "linear layer",
                              l ? l->name : "(null)");
    /* Connections to remove, as keys row * n_in + col (ascending: CSR order). */
    size_t n_rm = 0;
    for (size_t k = 0; k < c.nnz; k++)
        n_rm += !keep[k];
    uint64_t *rm = malloc((n_rm ? n_rm : 1) * sizeof *rm);
    if (!rm)
        return dsnn_error_set(err, DSNN_ERR_NOMEM, "out of memory");
    size_t j = 0;
    for (int r = 0; r < c.n_out; r++)
        for (int64_t k = c.row_ptr[r]; k < c.row_ptr[r + 1]; k++)
            if (!keep[k])
                rm[j++] = (uint64_t)r * (uint64_t)c.n_in + (uint64_t)c.col[k];
    /* Grow first: the candidates are the connections inactive before the round (nupic). */
    enum dsnn_status st = DSNN_OK;
    if (grow > 0)
        st = fn ? dsnn_sparse_grow_score(l, grow, fn, user, rng, err)
                : dsnn_sparse_grow_random(l, grow, rng, err);
    if (st != DSNN_OK) {
        free(rm);
        return st;
    }
    dsnn_sparse_get_csr(l, &c);
    uint8_t *remove = calloc(c.nnz ? c.nnz : 1, 1);
    if (!remove) {
        free(rm);
        return dsnn_error_set(err, DSNN_ERR_NOMEM, "out of memory");
    }
    j = 0;
    for (int r = 0; r < c.n_out && j < n_rm; r++)
        for (int64_t k = c.row_ptr[r]; k < c.row_ptr[r + 1] && j < n_rm; k++)
            if ((uint64_t)r * (uint64_t)c.n_in + (uint64_t)c.col[k] == rm[j]) {
                remove[k] = 1;
                j++;
            }
    free(rm);
    if (j != n_rm) {
        free(remove);
        return dsnn_error_set(err, DSNN_ERR_INTERNAL,
                              "layer '%s': %zu of %zu connections to prune vanished during growth",
                              l->name, n_rm - j, n_rm);
    }
    st = dsnn_sparse_prune_mask(l, remove, err);
    free(remove);
    return st;
}

struct prune_schedule_keys {
    int64_t interval, early;
};
static const struct dsnn_key_spec prune_schedule_keys[] = {
    {.name = "pruning_interval", .type = DSNN_KEY_INT, .def = 1, DSNN_KEY_RANGE(1, 1e9),
     DSNN_KEY_AT(struct prune_schedule_keys, interval),
     .doc = "epochs between prune / regrow rounds: a round ends every pruning_interval-th epoch"},
    {.name = "pruning_early_stop", .type = DSNN_KEY_INT, .def = 0, DSNN_KEY_RANGE(0, 1e9),
     DSNN_KEY_AT(struct prune_schedule_keys, early),
     .doc = "no more prune / regrow rounds once this many lr_milestones have passed (nupic: "
            "counted on lr_milestones whatever the lr_scheduler); 0: never stop"},
};
DSNN_KEY_TABLE_DEFINE(, dsnn_prune_schedule_keys, prune_schedule_keys);

enum dsnn_status dsnn_prune_schedule_read(const struct dsnn_cfg *cfg, struct dsnn_prune_schedule *s,
                                          struct dsnn_error *err)
{
    struct prune_schedule_keys k = {0};
    int64_t ms[DSNN_LR_MILESTONES_MAX];
    size_t n_ms = 0;
    enum dsnn_status st;
    memset(s, 0, sizeof *s);
    if ((st = dsnn_keys_read(&dsnn_prune_schedule_keys, cfg, &k, err)) ||
        (st = dsnn_cfg_int_array(cfg, "lr_milestones", ms, DSNN_LR_MILESTONES_MAX, &n_ms, err)))
        return st;
    const int64_t interval = k.interval, early = k.early;
    if (early > 0 && n_ms == 0) {
        char where[300];
        return dsnn_error_set(err, DSNN_ERR_CONFIG,
                              "%s: key '%s.pruning_early_stop' = %lld counts lr_milestones, but "
                              "there are none (give lr_milestones = [...] or remove "
                              "pruning_early_stop)",
                              dsnn_cfg_where(cfg, "pruning_early_stop", where, sizeof where),
                              dsnn_cfg_path(cfg), (long long)early);
    }
    s->interval = (int)interval;
    s->early_stop = (int)early;
    for (size_t i = 0; i < n_ms; i++)
        s->milestones[i] = (int)ms[i];
    s->n_milestones = n_ms;
    return DSNN_OK;
}

bool dsnn_prune_schedule_stopped(const struct dsnn_prune_schedule *s, int epoch)
{
    if (s->early_stop <= 0)
        return false;
    int passed = 0;
    for (size_t i = 0; i < s->n_milestones; i++)
        passed += s->milestones[i] <= epoch;
    return passed >= s->early_stop;
}

bool dsnn_prune_schedule_active(const struct dsnn_prune_schedule *s, int epoch)
{
    if (s->interval > 1 && (epoch + 1) % s->interval != 0)
        return false;
    return !dsnn_prune_schedule_stopped(s, epoch);
}
