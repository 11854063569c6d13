/* layers/net_build.c - helpers of network plugins' build functions: the next layer's input shape,
 * the output layer and the end of a build, per-layer keys (dsnn/net.h). */
#include "dsnn/config.h"
#include "dsnn/keys.h"
#include "dsnn/layers.h"
#include "dsnn/net.h"
#include "dsnn/sparse.h"

#include <stdio.h>
#include <string.h>

#define NET_READ_MAX 64 /* values of a per-layer key */

struct dsnn_shape dsnn_net_last_shape(const struct dsnn_net *net)
{
    size_t n = dsnn_net_n_layers(net);
    return n ? dsnn_net_layer(net, n - 1)->out : dsnn_net_input_shape(net);
}

enum dsnn_status dsnn_net_add_linear(struct dsnn_net *net, const char *name, int n_out, bool bias,
                                     struct dsnn_error *err)
{
    const int n_in = (int)dsnn_shape_size(dsnn_net_last_shape(net));
    return dsnn_net_add(net, dsnn_linear_new(name, n_in, n_out, bias, err), err);
}

enum dsnn_status dsnn_net_add_fc_relu(struct dsnn_net *net, int fc_idx, int relu_idx, int n_out,
                                      bool bias, struct dsnn_error *err)
{
    char name[DSNN_LAYER_NAME_MAX];
    snprintf(name, sizeof name, "fc%d", fc_idx);
    enum dsnn_status st = dsnn_net_add_linear(net, name, n_out, bias, err);
    if (st == DSNN_OK) {
        snprintf(name, sizeof name, "relu%d", relu_idx);
        st = dsnn_net_add(net, dsnn_relu_new(name, (struct dsnn_shape){n_out, 1, 1}, err), err);
    }
    return st;
}

enum dsnn_status dsnn_net_add_conv2d(struct dsnn_net *net, const char *name, int out_c, int kernel,
                                     int stride, int padding, bool bias, double density,
                                     struct dsnn_error *err)
{
    const struct dsnn_shape in = dsnn_net_last_shape(net);
    if (!(density > 0))
        return dsnn_net_add(
            net, dsnn_conv2d_new(name, in, out_c, kernel, stride, padding, bias, err), err);
    struct dsnn_sparse_init si = dsnn_sparse_init_default();
    si.density = density;
    return dsnn_net_add(
        net, dsnn_sparse_conv2d_new(name, in, out_c, kernel, stride, padding, bias, &si, err), err);
}

enum dsnn_status dsnn_net_build_end(struct dsnn_net *net, enum dsnn_status st, bool bias,
                                    const struct dsnn_cfg *cfg, const char *what,
                                    struct dsnn_net **out, struct dsnn_error *err)
{
    if (st == DSNN_OK)
        st = dsnn_net_add_linear(net, "output", dsnn_net_n_classes(net), bias, err);
    if (st == DSNN_OK) {
        *out = net;
        return DSNN_OK;
    }
    const struct dsnn_shape in = dsnn_net_input_shape(net);
    dsnn_net_free(net);
    if (!cfg)
        return st;
    char where[300];
    dsnn_cfg_where(cfg, NULL, where, sizeof where);
    if (what)
        return dsnn_error_prefix(err, "%s: %s: cannot build the network for %dx%dx%d inputs",
                                 where, what, in.c, in.h, in.w);
    return dsnn_error_prefix(err, "%s: cannot build the network for %dx%dx%d inputs", where,
                             in.c, in.h, in.w);
}

enum dsnn_status dsnn_net_read_floats(const struct dsnn_cfg *cfg,
                                      const struct dsnn_key_table *keys, const char *key,
                                      const double *defs, double *out, size_t n,
                                      const struct dsnn_net_items *what, struct dsnn_error *err)
{
    if (!dsnn_cfg_has(cfg, key) && defs) {
        memcpy(out, defs, n * sizeof *out);
        return DSNN_OK;
    }
    const double def = dsnn_keys_find(keys->keys, keys->n, key)->def;
    double v[NET_READ_MAX];
    size_t got = 0;
    enum dsnn_status st = dsnn_cfg_float_or_array(cfg, key, def, v, NET_READ_MAX, &got, err);
    if (st != DSNN_OK)
        return st;
    if (got != 1 && got != n) {
        char give[200];
        snprintf(give, sizeof give, "one value or %s", what->hint);
        return dsnn_cfg_count_error(cfg, key, got, what->lead, n, what->items, give, err);
    }
    for (size_t i = 0; i < n; i++)
        out[i] = v[got == 1 ? 0 : i];
    return DSNN_OK;
}

enum dsnn_status dsnn_net_read_activations(const struct dsnn_cfg *cfg,
                                           const struct dsnn_key_table *keys, const double *defs,
                                           bool kwinners, double *percent_on, bool *use_kw,
                                           size_t n, const struct dsnn_net_items *what,
                                           struct dsnn_error *err)
{
    static const char nupic[] = "percent_on_k_winner";
    if (!dsnn_cfg_has(cfg, nupic)) {
        for (size_t i = 0; i < n; i++)
            use_kw[i] = kwinners;
        return dsnn_net_read_floats(cfg, keys, "percent_on", defs, percent_on, n, what, err);
    }
    const char *other = dsnn_cfg_has(cfg, "percent_on") ? "percent_on"
                        : dsnn_cfg_has(cfg, "kwinners") ? "kwinners"
                                                        : NULL;
    if (other) {
        char where[300];
        return dsnn_error_set(err, DSNN_ERR_CONFIG,
                              "%s: key '%s.%s' and key '%s' are both given: %s (nupic's form) "
                              "says per layer whether it is k-winners and its percent_on; keep "
                              "one form",
                              dsnn_cfg_where(cfg, nupic, where, sizeof where), dsnn_cfg_path(cfg),
                              nupic, other, nupic);
    }
    enum dsnn_status st = dsnn_net_read_floats(cfg, keys, nupic, NULL, percent_on, n, what, err);
    for (size_t i = 0; st == DSNN_OK && i < n; i++)
        use_kw[i] = percent_on[i] < 0.5;
    return st;
}

enum dsnn_status dsnn_net_read_sizes(const struct dsnn_cfg *cfg, const char *key,
                                     const int64_t *defs, size_t n_defs, int64_t *out, size_t max,
                                     size_t *n, struct dsnn_error *err)
{
    if (dsnn_cfg_has(cfg, key))
        return dsnn_cfg_int_array(cfg, key, out, max, n, err);
    memcpy(out, defs, n_defs * sizeof *out);
    *n = n_defs;
    return DSNN_OK;
}
