/* sparse/kernels_scalar.c - the scalar kernel set of the sparse engine (see sparse/kernels.inc;
 * compiled with this set's instruction-set flags only, sdk/CMakeLists.txt). */
#define SP_KSET_SCALAR 1
#define SP_KSET_TABLE sp_kernels_scalar
#include "sparse/kernels.inc"
