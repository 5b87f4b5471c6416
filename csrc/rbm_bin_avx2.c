/* rbm_bin_avx2.c -- the binary-left kernels of rbm_bin.h, float, AVX2: the
 * selected rows are summed 64 columns at a time in 8 registers. */
#include <immintrin.h>

#include "rbm_bin.h"

#if defined(__GNUC__)
#define RBM_AINLINE static inline __attribute__((always_inline))
#else
#define RBM_AINLINE static inline
#endif

/* nv vectors of 8 columns from c0, the last one under mask `last` */
RBM_AINLINE void binrow(const nc_rbm_binmm *a, size_t i, size_t c0, int nv, __m256i last)
{
    __m256 acc[8];
    const float *b = (const float *)a->b + c0, *b2 = (const float *)a->b2 + c0;
    float *c = (float *)a->c + i * a->ldc + c0;
    const __m256 alpha = _mm256_set1_ps((float)a->alpha), beta = _mm256_set1_ps((float)a->beta);
    uint32_t p;
    int t;
#pragma GCC unroll 8
    for (t = 0; t < nv; t++) acc[t] = _mm256_setzero_ps();
    for (p = a->ptr[i]; p < a->ptr[i + 1]; p++) {
        const float *s = b + (size_t)a->idx[p] * a->ldb;
#pragma GCC unroll 8
        for (t = 0; t < nv - 1; t++) acc[t] = _mm256_add_ps(acc[t], _mm256_loadu_ps(s + 8 * t));
        acc[nv - 1] = _mm256_add_ps(acc[nv - 1], _mm256_maskload_ps(s + 8 * (nv - 1), last));
    }
    if (a->ptr2)
        for (p = a->ptr2[i]; p < a->ptr2[i + 1]; p++) {
            const float *s = b2 + (size_t)a->idx2[p] * a->ldb2;
#pragma GCC unroll 8
            for (t = 0; t < nv - 1; t++)
                acc[t] = _mm256_sub_ps(acc[t], _mm256_loadu_ps(s + 8 * t));
            acc[nv - 1] = _mm256_sub_ps(acc[nv - 1], _mm256_maskload_ps(s + 8 * (nv - 1), last));
        }
    if ((float)a->beta == 0) {
#pragma GCC unroll 8
        for (t = 0; t < nv - 1; t++) _mm256_storeu_ps(c + 8 * t, _mm256_mul_ps(alpha, acc[t]));
        _mm256_maskstore_ps(c + 8 * (nv - 1), last, _mm256_mul_ps(alpha, acc[nv - 1]));
    } else {
#pragma GCC unroll 8
        for (t = 0; t < nv - 1; t++)
            _mm256_storeu_ps(c + 8 * t, _mm256_add_ps(_mm256_mul_ps(alpha, acc[t]),
                                                      _mm256_mul_ps(beta, _mm256_loadu_ps(c + 8 * t))));
        _mm256_maskstore_ps(
            c + 8 * (nv - 1), last,
            _mm256_add_ps(_mm256_mul_ps(alpha, acc[nv - 1]),
                          _mm256_mul_ps(beta, _mm256_maskload_ps(c + 8 * (nv - 1), last))));
    }
}

void nc_rbm_binmm_avx2_f32(const nc_rbm_binmm *a, size_t r0, size_t r1)
{
    const __m256i all = _mm256_set1_epi32(-1);
    const __m256i iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    size_t i, n = a->n;
    for (i = r0; i < r1; i++) {
        size_t c0 = 0;
        for (; c0 + 64 <= n; c0 += 64) binrow(a, i, c0, 8, all);
        for (; c0 + 8 <= n; c0 += 8) binrow(a, i, c0, 1, all);
        if (c0 < n)
            binrow(a, i, c0, 1, _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(n - c0)), iota));
    }
}

size_t nc_rbm_binidx_avx2_f32(size_t m, size_t n, const float *x, size_t ld, uint32_t *ptr,
                              uint32_t *idx)
{
    const __m256 zero = _mm256_setzero_ps(), one = _mm256_set1_ps(1.0f);
    size_t i, j, c = 0;
    ptr[0] = 0;
    for (i = 0; i < m; i++) {
        const float *r = x + i * ld;
        for (j = 0; j + 8 <= n; j += 8) {
            __m256 v = _mm256_loadu_ps(r + j);
            unsigned nz = (unsigned)_mm256_movemask_ps(_mm256_cmp_ps(v, zero, _CMP_NEQ_UQ));
            unsigned on = (unsigned)_mm256_movemask_ps(_mm256_cmp_ps(v, one, _CMP_EQ_OQ));
            if (nz != on) return (size_t)-1;
            while (nz) {
#if defined(__GNUC__)
                unsigned b = (unsigned)__builtin_ctz(nz);
#else
                unsigned b = 0;
                while (!(nz >> b & 1u)) b++;
#endif
                idx[c++] = (uint32_t)(j + b);
                nz &= nz - 1;
            }
        }
        for (; j < n; j++) {
            if (r[j] != 0) {
                if (r[j] != 1) return (size_t)-1;
                idx[c++] = (uint32_t)j;
            }
        }
        ptr[i + 1] = (uint32_t)c;
    }
    return c;
}
