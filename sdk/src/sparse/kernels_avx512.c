/* sparse/kernels_avx512.c - the avx512 kernel set of the sparse engine (see sparse/kernels.inc;
 * compiled with this set's instruction-set flags only, sdk/CMakeLists.txt). */
#if defined(__x86_64__) || defined(__i386__)
#define SP_KSET_AVX512 1
#define SP_KSET_TABLE sp_kernels_avx512
#include "sparse/kernels.inc"
#endif
