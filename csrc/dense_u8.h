/*
 * dense_u8.h -- a first-layer input stored as bytes (uint8 images as
 * loaded: 0/1 or 0..255 pixels), read by the training plans without a
 * float copy of the data set. Shared by dense_u8.c (the portable kernels
 * and the dispatch), dense_avx2.c / dense_avx512.c (vector forms) and
 * plan.c. Every uint8 value is exact in float and double, so these give
 * the bits of the float kernels on the converted array.
 */
#ifndef NC_DENSE_U8_H
#define NC_DENSE_U8_H

#include <stdint.h>
#include "internal.h"

/* x (m x k bytes) to its nonzeros by rows, as nc_?to_csr on the array
 * converted to real: ptr (m + 1), idx and val (nnz each, val as reals);
 * returns nnz. idx and val must have room for m * k entries: the entries
 * past nnz may be written (every level gives the same first nnz). */
size_t nc_su8_to_csr(size_t m, size_t k, const uint8_t *x, int32_t *ptr, int32_t *idx,
                     float *val);
size_t nc_du8_to_csr(size_t m, size_t k, const uint8_t *x, int32_t *ptr, int32_t *idx,
                     double *val);
/* count bytes to reals: y[i] = x[i] */
void nc_su8_to_real(size_t count, const uint8_t *x, float *y);
void nc_du8_to_real(size_t count, const uint8_t *x, double *y);

#if defined(__x86_64__) || defined(_M_X64)
/* the level forms behind nc_?u8_to_csr (dense_avx2.c, dense_avx512.c) */
size_t nc_su8_to_csr_avx2(size_t m, size_t k, const uint8_t *x, int32_t *ptr, int32_t *idx,
                          float *val);
size_t nc_du8_to_csr_avx2(size_t m, size_t k, const uint8_t *x, int32_t *ptr, int32_t *idx,
                          double *val);
size_t nc_su8_to_csr_avx512(size_t m, size_t k, const uint8_t *x, int32_t *ptr, int32_t *idx,
                            float *val);
size_t nc_du8_to_csr_avx512(size_t m, size_t k, const uint8_t *x, int32_t *ptr, int32_t *idx,
                            double *val);
#define NC_U8_X86 1
#endif

#endif /* NC_DENSE_U8_H */
