/* sparse - model plugin: static sparse training (nupic SparseModel).
 *
 *     model = { plugin = "sparse"; on_perc = 0.1; sparse_type = "precise"; learning_rate = 0.01;
 *               momentum = 0.9; };
 *
 * The chosen linear layers become truly sparse layers with a fixed random topology (on_perc per
 * layer, or Erdos-Renyi with epsilon when on_perc is unset); the topology never changes. The
 * baseline every dynamic scheme is compared with. Logs density_<layer>, nnz_<layer>,
 * density_total and n_params each epoch. */
#include <dsnn/dsnn.h>

static const struct dsnn_key_spec sparse_keys[] = {
    DSNN_SCHEME_KEYS("sparse"),
};

static const struct dsnn_scheme sparse_scheme = {0}; /* the sparse model alone */
DSNN_SCHEME_PLUGIN("sparse", "1.0.0",
                   "Static sparse training (nupic SparseModel): truly sparse layers with a fixed "
                   "random topology",
                   sparse_scheme, sparse_keys)
