/*
 * dense_sparse.h -- a dense layer's products with a sparse input, shared by
 * dense.c (the portable kernels and the dispatch), dense_avx2.c and
 * dense_avx512.c (the same kernel in vector registers) and plan.c.
 *
 * The one kernel, "rows times": C (m x n) row i = sum over the entries
 * e = ptr[i] .. ptr[i+1]-1, in that order, of val[e] * B[idx[e], :].
 * With ptr/idx/val the nonzeros of X by rows (CSR) it is X W (a forward
 * pass); with those of X by columns (CSC) it is X^T G (a weight gradient).
 * Each element of C is one chain of multiply-adds in entry order, so the
 * split of rows or columns between tasks never changes a bit. Zeros of X
 * contribute nothing (as in any sparse product): where B is finite this is
 * the dense product's value, the terms 0 * b being exact zeros.
 */
#ifndef NC_DENSE_SPARSE_H
#define NC_DENSE_SPARSE_H

#include <stdint.h>
#include "internal.h"

#if defined(__x86_64__) || defined(_M_X64)
#define NC_SPARSE_DECL(isa)                                                                     \
    void nc_ssparse_rows_##isa(size_t m, size_t n, size_t bk, const int32_t *ptr,              \
                               const int32_t *idx, const float *val, const float *b, size_t ldb, \
                               float *c, size_t ldc, const float *bias, int relu);               \
    void nc_dsparse_rows_##isa(size_t m, size_t n, size_t bk, const int32_t *ptr,              \
                               const int32_t *idx, const double *val, const double *b,           \
                               size_t ldb, double *c, size_t ldc, const double *bias, int relu); \
    void nc_ssparse_rows_##isa##_relu_db(size_t m, size_t n, const float *y, float *dz,         \
                                         float *db);                                            \
    void nc_dsparse_rows_##isa##_relu_db(size_t m, size_t n, const double *y, double *dz,      \
                                         double *db);                                           \
    size_t nc_sto_csr_##isa(size_t m, size_t k, const float *x, int32_t *ptr, int32_t *idx,    \
                            float *val);                                                       \
    size_t nc_dto_csr_##isa(size_t m, size_t k, const double *x, int32_t *ptr, int32_t *idx,   \
                            double *val);                                                      \
    size_t nc_scount_nonzero_##isa(size_t count, const float *x);                              \
    size_t nc_dcount_nonzero_##isa(size_t count, const double *x);
NC_SPARSE_DECL(avx2)
NC_SPARSE_DECL(avx512)
#undef NC_SPARSE_DECL
#define NC_SPARSE_X86 1
#endif

/* Whether training plans take a sparse first input through the sparse
 * products: 0 by its density (plan_impl.h), 1 never, 2 always. For tests;
 * not thread-safe. Defined in plan.c. */
extern int nc_plan_sparse_;

/* The kernel of the level in force (dense.c); B has bk rows. */
nc_status nc_ssparse_rows(size_t m, size_t n, size_t bk, const int32_t *ptr, const int32_t *idx,
                          const float *val, const float *b, size_t ldb, float *c, size_t ldc);
nc_status nc_dsparse_rows(size_t m, size_t n, size_t bk, const int32_t *ptr, const int32_t *idx,
                          const double *val, const double *b, size_t ldb, double *c, size_t ldc);

/* The same, then C = act(C + bias) (nc_?bias_act: bias n entries or NULL),
 * applied as each row is stored where the level's kernel can (identity and
 * ReLU at AVX2 and AVX-512), else in a pass after: the same bits. */
nc_status nc_ssparse_rows_bias_act(size_t m, size_t n, size_t bk, const int32_t *ptr,
                                   const int32_t *idx, const float *val, const float *b,
                                   size_t ldb, float *c, size_t ldc, const float *bias,
                                   nc_act act, float param);
nc_status nc_dsparse_rows_bias_act(size_t m, size_t n, size_t bk, const int32_t *ptr,
                                   const int32_t *idx, const double *val, const double *b,
                                   size_t ldb, double *c, size_t ldc, const double *bias,
                                   nc_act act, double param);
/* A ReLU layer's backward and bias gradient in one pass: dz = y > 0 ? dz : 0
 * in place (nc_?act_backward's ReLU), db = dz's column sums (nc_?dense_backward's
 * bits). */
void nc_srelu_backward_db(size_t m, size_t n, const float *y, float *dz, float *db);
void nc_drelu_backward_db(size_t m, size_t n, const double *y, double *dz, double *db);
/* Its loop, written once for element type T: plain C that each level's file
 * compiles at its own width (the same bits at every width). */
#define NC_RELU_DB_LOOP(T, m, n, y, dz, db)                                   \
    do {                                                                      \
        size_t i_, j_;                                                        \
        for (j_ = 0; j_ < (n); j_++) (db)[j_] = 0;                            \
        for (i_ = 0; i_ < (m); i_++) {                                        \
            const T *yi_ = (y) + i_ * (n);                                    \
            T *di_ = (dz) + i_ * (n);                                         \
            for (j_ = 0; j_ < (n); j_++) {                                    \
                T d_ = yi_[j_] > 0 ? di_[j_] : (T)0;                          \
                di_[j_] = d_;                                                 \
                (db)[j_] += d_;                                               \
            }                                                                 \
        }                                                                     \
    } while (0)

/* x (m x k) to its nonzeros by rows: ptr (m + 1), idx and val (nnz each, at
 * most m * k); NaN counts as nonzero, -0.0 does not. Returns nnz. idx and
 * val must have room for m * k entries: the entries past nnz may be written
 * (all levels give the same first nnz). Vector forms per level below; the
 * dispatch is nc_?to_csr. */
size_t nc_sto_csr(size_t m, size_t k, const float *x, int32_t *ptr, int32_t *idx, float *val);
size_t nc_dto_csr(size_t m, size_t k, const double *x, int32_t *ptr, int32_t *idx, double *val);
/* The same nonzeros by columns (k columns), rows increasing within each;
 * count is k + 1 ints of scratch. */
void nc_scsr_to_csc(size_t m, size_t k, const int32_t *ptr, const int32_t *idx,
                    const float *val, int32_t *cptr, int32_t *row, float *cval);
void nc_dcsr_to_csc(size_t m, size_t k, const int32_t *ptr, const int32_t *idx,
                    const double *val, int32_t *cptr, int32_t *row, double *cval);
/* Nonzeros of x (count elements; NaN counts, -0.0 does not). */
size_t nc_scount_nonzero(size_t count, const float *x);
size_t nc_dcount_nonzero(size_t count, const double *x);

#endif /* NC_DENSE_SPARSE_H */
