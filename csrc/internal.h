/*
 * internal.h -- what the engine's own files share and users never see.
 */
#ifndef NC_INTERNAL_H
#define NC_INTERNAL_H

#include "nncore.h"

#define NC_MIN(a, b) ((a) < (b) ? (a) : (b))
#define NC_MAX(a, b) ((a) > (b) ? (a) : (b))

/* The reference matrix product: the oracle for the fast kernels. */
nc_status nc_sgemm_ref(int trans_a, int trans_b, size_t m, size_t n, size_t k,
                       float alpha, const float *a, size_t lda, const float *b, size_t ldb,
                       float beta, float *c, size_t ldc);
nc_status nc_dgemm_ref(int trans_a, int trans_b, size_t m, size_t n, size_t k,
                       double alpha, const double *a, size_t lda, const double *b, size_t ldb,
                       double beta, double *c, size_t ldc);

#endif /* NC_INTERNAL_H */
