/* rbm_bin_avx512.c -- the binary-left kernels of rbm_bin.h, float, AVX-512:
 * the selected rows are summed 256 columns at a time in 16 registers (a row
 * of B is loaded once and added once: load-bound, no multiplies). */
#include <immintrin.h>

#include "rbm_bin.h"

#if defined(__GNUC__)
#define RBM_AINLINE static inline __attribute__((always_inline))
#else
#define RBM_AINLINE static inline
#endif

static inline unsigned popcount16(unsigned x)
{
    x = x - ((x >> 1) & 0x5555u);
    x = (x & 0x3333u) + ((x >> 2) & 0x3333u);
    x = (x + (x >> 4)) & 0x0F0Fu;
    return (x + (x >> 8)) & 0x1Fu;
}

/* Rows of B are picked at random, which the hardware prefetcher cannot
 * follow: each row is asked for RBM_PF rows ahead of its sums. */
#ifndef RBM_PF
#define RBM_PF 6
#endif
/* nv vectors of 16 columns from c0, the last one under mask `last` */
RBM_AINLINE void binrow(const nc_rbm_binmm *a, size_t i, size_t c0, int nv, __mmask16 last)
{
    __m512 acc[16];
    const float *b = (const float *)a->b + c0, *b2 = (const float *)a->b2 + c0;
    float *c = (float *)a->c + i * a->ldc + c0;
    const __m512 alpha = _mm512_set1_ps((float)a->alpha), beta = _mm512_set1_ps((float)a->beta);
    uint32_t p;
    int t;
#pragma GCC unroll 16
    for (t = 0; t < nv; t++) acc[t] = _mm512_setzero_ps();
    for (p = a->ptr[i]; p < a->ptr[i + 1]; p++) {
        const float *s = b + (size_t)a->idx[p] * a->ldb;
        if (p + RBM_PF < a->ptr[i + 1]) {
            const char *f = (const char *)(b + (size_t)a->idx[p + RBM_PF] * a->ldb);
#pragma GCC unroll 16
            for (t = 0; t < nv; t++) _mm_prefetch(f + 64 * t, _MM_HINT_T0);
        }
#pragma GCC unroll 16
        for (t = 0; t < nv - 1; t++) acc[t] = _mm512_add_ps(acc[t], _mm512_loadu_ps(s + 16 * t));
        acc[nv - 1] = _mm512_add_ps(acc[nv - 1], _mm512_maskz_loadu_ps(last, s + 16 * (nv - 1)));
    }
    if (a->ptr2)
        for (p = a->ptr2[i]; p < a->ptr2[i + 1]; p++) {
            const float *s = b2 + (size_t)a->idx2[p] * a->ldb2;
            if (p + RBM_PF < a->ptr2[i + 1]) {
                const char *f = (const char *)(b2 + (size_t)a->idx2[p + RBM_PF] * a->ldb2);
#pragma GCC unroll 16
                for (t = 0; t < nv; t++) _mm_prefetch(f + 64 * t, _MM_HINT_T0);
            }
#pragma GCC unroll 16
            for (t = 0; t < nv - 1; t++)
                acc[t] = _mm512_sub_ps(acc[t], _mm512_loadu_ps(s + 16 * t));
            acc[nv - 1] = _mm512_sub_ps(acc[nv - 1],
                                        _mm512_maskz_loadu_ps(last, s + 16 * (nv - 1)));
        }
    if ((float)a->beta == 0) {
#pragma GCC unroll 16
        for (t = 0; t < nv - 1; t++) _mm512_storeu_ps(c + 16 * t, _mm512_mul_ps(alpha, acc[t]));
        _mm512_mask_storeu_ps(c + 16 * (nv - 1), last, _mm512_mul_ps(alpha, acc[nv - 1]));
    } else {
#pragma GCC unroll 16
        for (t = 0; t < nv - 1; t++)
            _mm512_storeu_ps(c + 16 * t, _mm512_add_ps(_mm512_mul_ps(alpha, acc[t]),
                                                       _mm512_mul_ps(beta, _mm512_loadu_ps(c + 16 * t))));
        _mm512_mask_storeu_ps(
            c + 16 * (nv - 1), last,
            _mm512_add_ps(_mm512_mul_ps(alpha, acc[nv - 1]),
                          _mm512_mul_ps(beta, _mm512_maskz_loadu_ps(last, c + 16 * (nv - 1)))));
    }
}

void nc_rbm_binmm_avx512_f32(const nc_rbm_binmm *a, size_t r0, size_t r1)
{
    size_t i, n = a->n;
    for (i = r0; i < r1; i++) {
        size_t c0 = 0;
        for (; c0 + 256 <= n; c0 += 256) binrow(a, i, c0, 16, 0xFFFF);
        if (c0 + 128 <= n) {
            binrow(a, i, c0, 8, 0xFFFF);
            c0 += 128;
        }
        for (; c0 + 16 <= n; c0 += 16) binrow(a, i, c0, 1, 0xFFFF);
        if (c0 < n) binrow(a, i, c0, 1, (__mmask16)((1u << (n - c0)) - 1));
    }
}

size_t nc_rbm_binidx_avx512_f32(size_t m, size_t n, const float *x, size_t ld, uint32_t *ptr,
                                uint32_t *idx)
{
    const __m512i iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512 zero = _mm512_setzero_ps(), one = _mm512_set1_ps(1.0f);
    size_t i, j, c = 0;
    ptr[0] = 0;
    for (i = 0; i < m; i++) {
        const float *r = x + i * ld;
        for (j = 0; j < n; j += 16) {
            __mmask16 lm = n - j >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - j)) - 1);
            __m512 v = _mm512_maskz_loadu_ps(lm, r + j);
            __mmask16 nz = _mm512_mask_cmp_ps_mask(lm, v, zero, _CMP_NEQ_UQ);
            __mmask16 on = _mm512_mask_cmp_ps_mask(lm, v, one, _CMP_EQ_OQ);
            if (nz != on) return (size_t)-1;
            /* compress in a register and store the whole vector (the buffer
             * has 16 spare entries): a compressing store to memory is slow on
             * some cores (Zen 4) */
            _mm512_storeu_si512((void *)(idx + c),
                                _mm512_maskz_compress_epi32(nz, _mm512_add_epi32(
                                                                    iota, _mm512_set1_epi32((int)j))));
            c += popcount16((unsigned)nz);
        }
        ptr[i + 1] = (uint32_t)c;
    }
    return c;
}

/* wt (k x n) = w^T, w n x k: 16 x 16 tiles transposed in registers, so each
 * store fills a whole 64-byte line of wt (the rest, scalar). */
void nc_rbm_transpose_avx512_f32(size_t n, size_t k, const float *w, float *wt)
{
    size_t n16 = n / 16 * 16, k16 = k / 16 * 16, i0, j0, i, j;
    for (i0 = 0; i0 < n16; i0 += 16)
        for (j0 = 0; j0 < k16; j0 += 16) {
            const float *s = w + i0 * k + j0;
            float *d = wt + j0 * n + i0;
            __m512 r[16], t[16];
            int q;
            for (q = 0; q < 16; q++) r[q] = _mm512_loadu_ps(s + (size_t)q * k);
            /* pairs of rows interleaved, then quads, then 128-bit lanes */
            for (q = 0; q < 16; q += 2) {
                t[q] = _mm512_unpacklo_ps(r[q], r[q + 1]);
                t[q + 1] = _mm512_unpackhi_ps(r[q], r[q + 1]);
            }
            for (q = 0; q < 16; q += 4) {
                r[q] = _mm512_shuffle_ps(t[q], t[q + 2], 0x44);
                r[q + 1] = _mm512_shuffle_ps(t[q], t[q + 2], 0xEE);
                r[q + 2] = _mm512_shuffle_ps(t[q + 1], t[q + 3], 0x44);
                r[q + 3] = _mm512_shuffle_ps(t[q + 1], t[q + 3], 0xEE);
            }
            /* r[4g + c] holds, in 128-bit lane L, column 4L + c of rows 4g .. 4g+3 */
            for (q = 0; q < 4; q++) {
                t[q] = _mm512_shuffle_f32x4(r[q], r[4 + q], 0x88);      /* lanes 0,2 | 0,2 */
                t[4 + q] = _mm512_shuffle_f32x4(r[q], r[4 + q], 0xDD);  /* lanes 1,3 | 1,3 */
                t[8 + q] = _mm512_shuffle_f32x4(r[8 + q], r[12 + q], 0x88);
                t[12 + q] = _mm512_shuffle_f32x4(r[8 + q], r[12 + q], 0xDD);
            }
            for (q = 0; q < 4; q++) {
                /* column 4L + c, L = 0..3: rows 0-3,4-7 from t[c] / t[4+c], 8-15 from t[8+c] / t[12+c] */
                __m512 a = _mm512_shuffle_f32x4(t[q], t[8 + q], 0x88);     /* L = 0 */
                __m512 b = _mm512_shuffle_f32x4(t[4 + q], t[12 + q], 0x88); /* L = 1 */
                __m512 c = _mm512_shuffle_f32x4(t[q], t[8 + q], 0xDD);     /* L = 2 */
                __m512 e = _mm512_shuffle_f32x4(t[4 + q], t[12 + q], 0xDD); /* L = 3 */
                _mm512_storeu_ps(d + (size_t)q * n, a);
                _mm512_storeu_ps(d + (size_t)(4 + q) * n, b);
                _mm512_storeu_ps(d + (size_t)(8 + q) * n, c);
                _mm512_storeu_ps(d + (size_t)(12 + q) * n, e);
            }
        }
    for (i = 0; i < n; i++)
        for (j = (i < n16 ? k16 : 0); j < k; j++) wt[j * n + i] = w[i * k + j];
}
