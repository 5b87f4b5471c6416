/*
 * rbm_bin.h -- products whose left operand is a binary (0/1) matrix.
 *
 * A product X B with X (m x k) holding only 0 and 1 is, row by row, a sum of
 * the rows of B that X selects: no multiplies, and the zeros are skipped. The
 * RBM's sampled states are always binary, and so is binary data (digits16:
 * ~16% ink), so at those densities the sums cost a fraction of a dense GEMM.
 * X is handed over as index lists (CSR: row i selects idx[ptr[i] ..
 * ptr[i+1]-1], ascending), built in one pass that also checks that X is
 * binary; X^T's lists (CSC) come from X's by a counting pass.
 *
 * Each row is summed in list order, lane by lane, so the result does not
 * depend on the level (the SIMD kernels match the reference bit for bit) nor
 * on the thread count (rows are split between threads, never a sum).
 */
#ifndef NC_RBM_BIN_H
#define NC_RBM_BIN_H

#include "internal.h"

#if defined(__x86_64__) || defined(_M_X64)
#define RBM_BIN_X86 1
#endif

/*
 * C[i, :] = alpha (sum_{p in row i of A} B[idx[p], :] - sum_{p in row i of A2}
 * B2[idx2[p], :]) + beta C[i, :] for rows r0 <= i < r1, n columns; the second
 * list (ptr2 NULL: none) serves the RBM's gradient v0^T h0 - v-^T h- in one
 * pass. beta 0: C is not read. b, b2, c point to float or double as the
 * kernel's name says; alpha, beta are converted to it.
 */
typedef struct nc_rbm_binmm {
    size_t n;
    const uint32_t *ptr, *idx;
    const void *b;
    size_t ldb;
    const uint32_t *ptr2, *idx2;
    const void *b2;
    size_t ldb2;
    double alpha, beta;
    void *c;
    size_t ldc;
} nc_rbm_binmm;

typedef void (*nc_rbm_binmm_fn)(const nc_rbm_binmm *a, size_t r0, size_t r1);
/* CSR lists of x (m x n, row stride ld) into ptr (m + 1) and idx (capacity
 * m n + 16: SIMD levels store whole vectors past the end); returns the count
 * of ones, or (size_t)-1 when an entry is neither 0 nor 1 (NaN included). */
typedef size_t (*nc_rbm_binidx_f32_fn)(size_t m, size_t n, const float *x, size_t ld,
                                       uint32_t *ptr, uint32_t *idx);

#ifdef RBM_BIN_X86
void nc_rbm_binmm_avx2_f32(const nc_rbm_binmm *a, size_t r0, size_t r1);
void nc_rbm_binmm_avx512_f32(const nc_rbm_binmm *a, size_t r0, size_t r1);
size_t nc_rbm_binidx_avx2_f32(size_t m, size_t n, const float *x, size_t ld, uint32_t *ptr,
                              uint32_t *idx);
void nc_rbm_transpose_avx512_f32(size_t n, size_t k, const float *w, float *wt);
size_t nc_rbm_binidx_avx512_f32(size_t m, size_t n, const float *x, size_t ld, uint32_t *ptr,
                                uint32_t *idx);
#endif

/* Which path rbm_update's products take: 0 chooses (binary operands below
 * the density cut-off), 1 always dense, 2 binary whenever the operand is
 * binary. For tests; not thread-safe. */
extern int nc_rbm_bin_mode_;
/* Sets it (mode 0..2) and returns the previous one. */
int nc_rbm_set_bin_mode(int mode);
/* Binary products run so far (for tests: that the path was taken). */
extern size_t nc_rbm_bin_count_;
size_t nc_rbm_bin_count(void);

#endif /* NC_RBM_BIN_H */
