/* dense_avx512.c -- dense_sparse_x86.h for AVX-512 (masked edges). */
#include "dense_sparse.h"
#include "gemm/kernels.h" /* NC_AINLINE, NC_GLUE */

#if defined(NC_SPARSE_X86) && defined(__AVX512F__)
#include <immintrin.h>

#define T float
#define VT __m512
#define MT __mmask16
#define L 16
#define VZERO() _mm512_setzero_ps()
#define VLOADM(m, p) _mm512_maskz_loadu_ps((m), (p))
#define VSET1(x) _mm512_set1_ps(x)
#define VFMA(a, b, c) _mm512_fmadd_ps((a), (b), (c))
#define VSTOREM(p, m, v) _mm512_mask_storeu_ps((p), (m), (v))
#define MASK(cnt) ((__mmask16)((cnt) >= 16 ? 0xffffu : ((1u << (cnt)) - 1u)))
#define FN nc_ssparse_rows_avx512
#include "dense_sparse_x86.h"

#define T double
#define VT __m512d
#define MT __mmask8
#define L 8
#define VZERO() _mm512_setzero_pd()
#define VLOADM(m, p) _mm512_maskz_loadu_pd((m), (p))
#define VSET1(x) _mm512_set1_pd(x)
#define VFMA(a, b, c) _mm512_fmadd_pd((a), (b), (c))
#define VSTOREM(p, m, v) _mm512_mask_storeu_pd((p), (m), (v))
#define MASK(cnt) ((__mmask8)((cnt) >= 8 ? 0xffu : ((1u << (cnt)) - 1u)))
#define FN nc_dsparse_rows_avx512
#include "dense_sparse_x86.h"

#else
typedef int nc_dense_avx512_empty_; /* ISO C forbids an empty translation unit */
#endif
