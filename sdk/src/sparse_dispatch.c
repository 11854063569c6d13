/* sparse_dispatch.c - see sparse_dispatch.h. */
#include "sparse_dispatch.h"

bool dsnn_sparse_dims_dispatch(const struct dsnn_layer *l, int *n_in, int *n_out, bool *bias)
{
    /* Until the sparse engine provides its dims accessor every sparse layer records its
     * dimensions in its shapes. */
    if (!dsnn_layer_is(l, "sparse_linear"))
        return false;
    if (n_in)
        *n_in = l->in.c * l->in.h * l->in.w;
    if (n_out)
        *n_out = l->out.c * l->out.h * l->out.w;
    if (bias)
        *bias = l->n_params > 1;
    return true;
}
