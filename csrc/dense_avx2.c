/* dense_avx2.c -- dense_sparse_x86.h for AVX2 (edges through maskload/maskstore). */
#include "dense_sparse.h"
#include "gemm/kernels.h" /* NC_AINLINE, NC_GLUE */

#if defined(NC_SPARSE_X86) && defined(__AVX2__)
#include <immintrin.h>

/* lane masks: the first cnt lanes all ones */
static __m256i nc_sp_mask32(size_t cnt)
{
    const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)cnt), lanes);
}
static __m256i nc_sp_mask64(size_t cnt)
{
    const __m256i lanes = _mm256_setr_epi64x(0, 1, 2, 3);
    return _mm256_cmpgt_epi64(_mm256_set1_epi64x((long long)cnt), lanes);
}

#define T float
#define VT __m256
#define MT __m256i
#define L 8
#define VZERO() _mm256_setzero_ps()
#define VLOADM(m, p) _mm256_maskload_ps((p), (m))
#define VSET1(x) _mm256_set1_ps(x)
#define VFMA(a, b, c) _mm256_fmadd_ps((a), (b), (c))
#define VSTOREM(p, m, v) _mm256_maskstore_ps((p), (m), (v))
#define MASK(cnt) nc_sp_mask32(cnt)
#define FN nc_ssparse_rows_avx2
#include "dense_sparse_x86.h"

#define T double
#define VT __m256d
#define MT __m256i
#define L 4
#define VZERO() _mm256_setzero_pd()
#define VLOADM(m, p) _mm256_maskload_pd((p), (m))
#define VSET1(x) _mm256_set1_pd(x)
#define VFMA(a, b, c) _mm256_fmadd_pd((a), (b), (c))
#define VSTOREM(p, m, v) _mm256_maskstore_pd((p), (m), (v))
#define MASK(cnt) nc_sp_mask64(cnt)
#define FN nc_dsparse_rows_avx2
#include "dense_sparse_x86.h"

#else
typedef int nc_dense_avx2_empty_; /* ISO C forbids an empty translation unit */
#endif
