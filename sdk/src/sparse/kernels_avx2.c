/* sparse/kernels_avx2.c - the avx2 kernel set of the sparse engine (see sparse/kernels.inc;
 * compiled with this set's instruction-set flags only, sdk/CMakeLists.txt). */
#if defined(__x86_64__) || defined(__i386__)
#define SP_KSET_AVX2 1
#define SP_KSET_TABLE sp_kernels_avx2
#include "sparse/kernels.inc"
#endif
