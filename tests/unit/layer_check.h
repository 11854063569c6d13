/* layer_check.h - helpers for the layer unit tests (test_layers_*.c): random data, a layer's
 * loss L = sum(dy * y), and finite-difference checks of backward against it. */
#ifndef DSNN_TEST_LAYER_CHECK_H
#define DSNN_TEST_LAYER_CHECK_H

#include "harness.h"

#include <dsnn/dsnn.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static inline void lc_fill(float *p, size_t n, struct dsnn_rng *rng, double lo, double hi)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (float)(lo + (hi - lo) * dsnn_rng_uniform(rng));
}

static inline bool lc_close(double a, double b, double rtol, double atol)
{
    return fabs(a - b) <= atol + rtol * fabs(b);
}

static inline float *lc_alloc(size_t n)
{
    float *p = calloc(n ? n : 1, sizeof(float));
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    return p;
}

/* Initialises l from a fixed seed. */
static inline void lc_init(struct dsnn_layer *l, uint64_t seed)
{
    struct dsnn_error err = {0};
    struct dsnn_rng rng;
    dsnn_rng_seed(&rng, seed, DSNN_RNG_STREAM_INIT);
    CU_ASSERT_PTR_NOT_NULL_FATAL(l);
    enum dsnn_status st = dsnn_layer_init(l, &rng, &err);
    if (st != DSNN_OK)
        fprintf(stderr, "init of '%s' failed: %s\n", l->name, err.msg);
    CU_ASSERT_EQUAL_FATAL(st, DSNN_OK);
    l->initialized = true;
}

/* Called before every forward of a finite-difference check (e.g. to reset an RNG). */
typedef void (*lc_reset_fn)(struct dsnn_layer *l, void *user);

/* L = sum dy * y of one forward (double). */
static inline double lc_loss(struct dsnn_layer *l, const float *x, int batch, bool train,
                             const float *dy, float *y, lc_reset_fn reset, void *user)
{
    if (reset)
        reset(l, user);
    CU_ASSERT_EQUAL_FATAL(l->ops->forward(l, x, y, batch, train, NULL), DSNN_OK);
    const size_t n = (size_t)batch * (size_t)dsnn_shape_size(l->out);
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += (double)dy[i] * y[i];
    return s;
}

/* Central differences of L with respect to `checks` entries of v (every entry if checks >= n),
 * compared with the analytic gradient g. Returns the number of mismatches (printed). */
static inline int lc_fd(struct dsnn_layer *l, float *x, int batch, bool train, const float *dy,
                        float *v, const float *g, size_t n, size_t checks, double h, double rtol,
                        double atol, lc_reset_fn reset, void *user, const char *what)
{
    float *y = lc_alloc((size_t)batch * (size_t)dsnn_shape_size(l->out));
    int bad = 0;
    size_t step = checks >= n ? 1 : n / checks;
    for (size_t i = 0; i < n; i += step) {
        const float keep = v[i];
        v[i] = (float)(keep + h);
        const double lp = lc_loss(l, x, batch, train, dy, y, reset, user);
        v[i] = (float)(keep - h);
        const double lm = lc_loss(l, x, batch, train, dy, y, reset, user);
        v[i] = keep;
        const double num = (lp - lm) / (2.0 * h);
        if (!lc_close(g[i], num, rtol, atol)) {
            if (bad < 5)
                fprintf(stderr, "%s: %s[%zu] analytic %.6g numeric %.6g\n", l->name, what, i,
                        (double)g[i], num);
            bad++;
        }
    }
    free(y);
    return bad;
}

/* Forward + backward at x with output gradient dy, then finite differences of the input and of
 * every parameter block. Returns the number of mismatches. */
static inline int lc_check_grads(struct dsnn_layer *l, float *x, int batch, bool train,
                                 const float *dy, size_t checks, double h, double rtol,
                                 double atol, lc_reset_fn reset, void *user)
{
    const size_t n_in = (size_t)batch * (size_t)dsnn_shape_size(l->in);
    const size_t n_out = (size_t)batch * (size_t)dsnn_shape_size(l->out);
    float *y = lc_alloc(n_out), *dx = lc_alloc(n_in);
    if (reset)
        reset(l, user);
    CU_ASSERT_EQUAL_FATAL(l->ops->forward(l, x, y, batch, train, NULL), DSNN_OK);
    CU_ASSERT_EQUAL_FATAL(l->ops->backward(l, x, y, dy, dx, batch, NULL), DSNN_OK);
    /* keep the analytic parameter gradients: the finite differences run more forwards */
    size_t np = l->n_params;
    float **pg = calloc(np ? np : 1, sizeof *pg);
    for (size_t b = 0; b < np; b++) {
        pg[b] = lc_alloc(l->params[b].n);
        memcpy(pg[b], l->params[b].grad, sizeof(float) * l->params[b].n);
    }
    int bad = lc_fd(l, x, batch, train, dy, x, dx, n_in, checks, h, rtol, atol, reset, user, "x");
    for (size_t b = 0; b < np; b++)
        bad += lc_fd(l, x, batch, train, dy, l->params[b].value, pg[b], l->params[b].n, checks,
                     h, rtol, atol, reset, user, l->params[b].name);
    for (size_t b = 0; b < np; b++)
        free(pg[b]);
    free(pg);
    free(y);
    free(dx);
    return bad;
}

/* Saves l to a memory file and loads it into m (same construction). */
static inline void lc_save_load(struct dsnn_layer *l, struct dsnn_layer *m)
{
    struct dsnn_error err = {0};
    FILE *f = tmpfile();
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_EQUAL_FATAL(dsnn_layer_save(l, f, &err), DSNN_OK);
    rewind(f);
    enum dsnn_status st = dsnn_layer_load(m, f, &err);
    if (st != DSNN_OK)
        fprintf(stderr, "load: %s\n", err.msg);
    CU_ASSERT_EQUAL_FATAL(st, DSNN_OK);
    CU_ASSERT_EQUAL(fgetc(f), EOF); /* everything was read */
    fclose(f);
}

#endif
