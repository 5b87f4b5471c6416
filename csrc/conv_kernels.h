/*
 * conv_kernels.h -- the direct (implicit-GEMM) convolution's micro-kernels:
 * the contract between conv_impl.h and conv_avx512.c.
 *
 * Stride 1, dilation 1. The input is zero-padded once into `in` (rows of
 * in_rs elements, cin channels per pixel), so output pixel i of an output
 * row reads, for kernel row t, the span = kw * cin contiguous elements
 * in[t*in_rs + i*cin + q], q < span: the column matrix is never built.
 *
 * rows: out[r*m*n + i*n + j] = sum over t < kh, q < span (in that order) of
 *   in[r*in_rs + t*in_rs + i*cin + q] * wp[strip(j)][t*span + q][j % 32]
 *   for r < nrows output rows, i < m pixels, j < n channels; out overwritten.
 *   wp holds the (kh*span) x n weight matrix in strips of NC_CONV_NB
 *   columns, each strip kk x NC_CONV_NB, zero-padded, 64-byte aligned.
 *
 * dw: one tile of the weight gradient, rows q0..q0+rows-1 of one kernel row
 *   (in already offset to them), columns 0..cols-1 (dz and dw offset to the
 *   tile's first column):
 *     dw[i*ldd + j] (+)= sum over r < nrows, o < ow (in that order) of
 *       in[r*in_rs + o*cin + i] * dz[(r*ow + o)*ldz + j]
 *   overwriting when `first`, else continuing dw's chain. It may read up to
 *   NC_CONV_DW_ROWS elements past in's last pixel (the caller leaves slack).
 * Every element is one chain in a fixed order whatever the tiling, so the
 * thread split does not move a bit.
 */
#ifndef NC_CONV_KERNELS_H
#define NC_CONV_KERNELS_H

#include <stddef.h>

#define NC_CONV_NB 32       /* weight strip width (columns) */
#define NC_CONV_MR 14       /* output pixels per rows tile */
#define NC_CONV_DW_COLS 64  /* columns per dw tile */
#define NC_CONV_DW_ROWS 12  /* largest dw tile height */

/* dw tile height for a tile of `cols` columns: 24 accumulators at most */
static inline size_t nc_conv_dw_rows(size_t cols)
{
    return cols > 48 ? 6 : cols > 32 ? 8 : 12;
}

#if defined(__x86_64__) || defined(_M_X64)
#define NC_CONV_X86 1
void nc_conv_rows_avx512_f32(size_t nrows, size_t m, size_t n, size_t kh, size_t span,
                             size_t cin, size_t in_rs, const float *in, const float *wp,
                             float *out);
void nc_conv_dw_avx512_f32(size_t rows, size_t cols, size_t nrows, size_t ow, size_t cin,
                           size_t in_rs, const float *in, const float *dz, size_t ldz,
                           float *dw, size_t ldd, int first);
#endif

#endif /* NC_CONV_KERNELS_H */
