/* sparse_dispatch.h (private) - lets dense-layer code ask about sparse layers without
 * depending on the sparse engine's internals. Implemented in sparse_dispatch.c. */
#ifndef DSNN_SPARSE_DISPATCH_H
#define DSNN_SPARSE_DISPATCH_H

#include "dsnn/layer.h"

bool dsnn_sparse_dims_dispatch(const struct dsnn_layer *l, int *n_in, int *n_out, bool *bias);

#endif
