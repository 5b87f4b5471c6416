/*
 * conv_avx512.c -- AVX-512 micro-kernels of the direct convolution (float),
 * built with the avx512 flags; contract in conv_kernels.h, portable form in
 * conv_impl.h.
 *
 * rows: a 14-pixel x 32-channel register tile (28 zmm accumulators) whose k
 * loop walks the kernel rows through the padded input in place.
 * dw:   a q x 64 tile (6 x 4 zmm) summing rank-1 updates pixel by pixel:
 * the column matrix of im2col is read straight from the padded input.
 */
#include "internal.h"
#include "conv_kernels.h"

#if defined(NC_CONV_X86) && defined(__AVX512F__)
#include <immintrin.h>

#define NC_AINL static inline __attribute__((always_inline))

static __mmask16 mask16(size_t cnt)
{
    return (__mmask16)(cnt >= 16 ? 0xffffu : ((1u << cnt) - 1u));
}

NC_AINL void rows_tile(const int R, const int V, size_t kh, size_t span, size_t cin,
                       size_t in_rs, const float *a, const float *b, float *c, size_t ldc,
                       __mmask16 m0, __mmask16 m1)
{
    __m512 acc[NC_CONV_MR][2];
    size_t t, q;
    int i, v;
#pragma GCC unroll 16
    for (i = 0; i < R; i++)
#pragma GCC unroll 2
        for (v = 0; v < V; v++) acc[i][v] = _mm512_setzero_ps();
    for (t = 0; t < kh; t++) {
        const float *at = a + t * in_rs, *bt = b + t * span * NC_CONV_NB;
        for (q = 0; q < span; q++) {
            __m512 b0 = _mm512_load_ps(bt + q * NC_CONV_NB);
            __m512 b1 = V > 1 ? _mm512_load_ps(bt + q * NC_CONV_NB + 16) : b0;
#pragma GCC unroll 16
            for (i = 0; i < R; i++) {
                __m512 ai = _mm512_set1_ps(at[(size_t)i * cin + q]);
                acc[i][0] = _mm512_fmadd_ps(ai, b0, acc[i][0]);
                if (V > 1) acc[i][1] = _mm512_fmadd_ps(ai, b1, acc[i][1]);
            }
        }
    }
#pragma GCC unroll 16
    for (i = 0; i < R; i++) {
        _mm512_mask_storeu_ps(c + (size_t)i * ldc, m0, acc[i][0]);
        if (V > 1) _mm512_mask_storeu_ps(c + (size_t)i * ldc + 16, m1, acc[i][1]);
    }
}

void nc_conv_rows_avx512_f32(size_t nrows, size_t m, size_t n, size_t kh, size_t span,
                             size_t cin, size_t in_rs, const float *in, const float *wp,
                             float *out)
{
    size_t kk = kh * span, s, r, i0;
    for (s = 0; s * NC_CONV_NB < n; s++) {
        size_t j0 = s * NC_CONV_NB, nn = NC_MIN((size_t)NC_CONV_NB, n - j0);
        __mmask16 m0 = mask16(nn), m1 = mask16(nn > 16 ? nn - 16 : 0);
        const float *b = wp + s * kk * NC_CONV_NB;
        for (r = 0; r < nrows; r++) {
            for (i0 = 0; i0 < m; i0 += NC_CONV_MR) {
                size_t rr = NC_MIN((size_t)NC_CONV_MR, m - i0);
                const float *a = in + r * in_rs + i0 * cin;
                float *c = out + (r * m + i0) * n + j0;
#define NC_CASE(R)                                                                          \
    case R:                                                                                 \
        if (nn > 16) rows_tile(R, 2, kh, span, cin, in_rs, a, b, c, n, m0, m1);            \
        else rows_tile(R, 1, kh, span, cin, in_rs, a, b, c, n, m0, m1);                    \
        break;
                switch (rr) {
                NC_CASE(1) NC_CASE(2) NC_CASE(3) NC_CASE(4) NC_CASE(5) NC_CASE(6) NC_CASE(7)
                NC_CASE(8) NC_CASE(9) NC_CASE(10) NC_CASE(11) NC_CASE(12) NC_CASE(13)
                NC_CASE(14)
                default: break;
                }
#undef NC_CASE
            }
        }
    }
}

NC_AINL void dw_tile(const int R, const int V, size_t rows, size_t cols, size_t nrows,
                     size_t ow, size_t cin, size_t in_rs, const float *in, const float *dz,
                     size_t ldz, float *dw, size_t ldd, int first)
{
    __m512 acc[NC_CONV_DW_ROWS][4];
    __mmask16 mk[4];
    size_t r, o;
    int i, v;
#pragma GCC unroll 4
    for (v = 0; v < V; v++) mk[v] = mask16(cols > (size_t)v * 16 ? cols - (size_t)v * 16 : 0);
#pragma GCC unroll 12
    for (i = 0; i < R; i++)
#pragma GCC unroll 4
        for (v = 0; v < V; v++)
            acc[i][v] = first || (size_t)i >= rows
                            ? _mm512_setzero_ps()
                            : _mm512_maskz_loadu_ps(mk[v], dw + i * ldd + v * 16);
    for (r = 0; r < nrows; r++) {
        const float *a = in + r * in_rs;
        const float *b = dz + r * ow * ldz;
        for (o = 0; o < ow; o++, a += cin, b += ldz) {
            __m512 bv[4];
#pragma GCC unroll 4
            for (v = 0; v < V; v++) bv[v] = _mm512_maskz_loadu_ps(mk[v], b + v * 16);
#pragma GCC unroll 12
            for (i = 0; i < R; i++) {
                __m512 ai = _mm512_set1_ps(a[i]);
#pragma GCC unroll 4
                for (v = 0; v < V; v++) acc[i][v] = _mm512_fmadd_ps(ai, bv[v], acc[i][v]);
            }
        }
    }
#pragma GCC unroll 12
    for (i = 0; i < R; i++) {
        if ((size_t)i >= rows) break;
#pragma GCC unroll 4
        for (v = 0; v < V; v++) _mm512_mask_storeu_ps(dw + i * ldd + v * 16, mk[v], acc[i][v]);
    }
}

void nc_conv_dw_avx512_f32(size_t rows, size_t cols, size_t nrows, size_t ow, size_t cin,
                           size_t in_rs, const float *in, const float *dz, size_t ldz,
                           float *dw, size_t ldd, int first)
{
    /* the tile heights match nc_conv_dw_rows(cols) */
    if (cols > 48)
        dw_tile(6, 4, rows, cols, nrows, ow, cin, in_rs, in, dz, ldz, dw, ldd, first);
    else if (cols > 32)
        dw_tile(8, 3, rows, cols, nrows, ow, cin, in_rs, in, dz, ldz, dw, ldd, first);
    else if (cols > 16)
        dw_tile(12, 2, rows, cols, nrows, ow, cin, in_rs, in, dz, ldz, dw, ldd, first);
    else if (rows <= 4) /* a short span (few channels): no idle rows */
        dw_tile(4, 1, rows, cols, nrows, ow, cin, in_rs, in, dz, ldz, dw, ldd, first);
    else if (rows <= 8)
        dw_tile(8, 1, rows, cols, nrows, ow, cin, in_rs, in, dz, ldz, dw, ldd, first);
    else
        dw_tile(12, 1, rows, cols, nrows, ow, cin, in_rs, in, dz, ldz, dw, ldd, first);
}

#else
typedef int nc_conv_avx512_empty_; /* ISO C forbids an empty translation unit */
#endif
