/*
 * gemm_impl.h -- the matrix product, written once for `real`: the reference
 * loops below, and nc_?gemm, which runs the framework in gemm/frame_impl.h.
 *
 * Plain loops, ordered so the innermost one runs along contiguous memory
 * (the compiler vectorises it); the oracle the fast kernels are tested against.
 * Each output element sums its k terms in increasing order of the k index.
 */

/* C = beta * C, with beta == 0 overwriting (NaN in C does not survive). */
static void NC_TAG(scale_c)(size_t m, size_t n, real beta, real *c, size_t ldc)
{
    size_t i, j;
    if (beta == R_C(1)) return;
    for (i = 0; i < m; i++) {
        real *ci = c + i * ldc;
        if (beta == 0)
            for (j = 0; j < n; j++) ci[j] = 0;
        else
            for (j = 0; j < n; j++) ci[j] *= beta;
    }
}

nc_status NC_FN(gemm_ref)(int trans_a, int trans_b, size_t m, size_t n, size_t k,
                          real alpha, const real *a, size_t lda,
                          const real *b, size_t ldb,
                          real beta, real *c, size_t ldc)
{
    size_t i, j, p;
    NC_TAG(scale_c)(m, n, beta, c, ldc);
    if (alpha == 0 || k == 0) return NC_OK;
    if (!trans_b) {
        /* rank-1 updates along a row of B: c[i, :] += alpha a(i, p) b[p, :] */
        for (i = 0; i < m; i++) {
            real *ci = c + i * ldc;
            for (p = 0; p < k; p++) {
                real aip = alpha * (trans_a ? a[p * lda + i] : a[i * lda + p]);
                const real *bp = b + p * ldb;
                for (j = 0; j < n; j++) ci[j] += aip * bp[j];
            }
        }
    } else {
        /* B^T: row j of B is column j of op(B), a dot product per element */
        for (i = 0; i < m; i++) {
            real *ci = c + i * ldc;
            for (j = 0; j < n; j++) {
                const real *bj = b + j * ldb;
                real s = 0;
                if (trans_a)
                    for (p = 0; p < k; p++) s += a[p * lda + i] * bj[p];
                else
                    for (p = 0; p < k; p++) s += a[i * lda + p] * bj[p];
                ci[j] += alpha * s;
            }
        }
    }
    return NC_OK;
}

#include "gemm/frame_impl.h"

/* The fast product: the BLIS framework and the level's micro-kernels. */
nc_status NC_FN(gemm)(int trans_a, int trans_b, size_t m, size_t n, size_t k,
                      real alpha, const real *a, size_t lda,
                      const real *b, size_t ldb,
                      real beta, real *c, size_t ldc)
{
    return NC_TAG(gemm_fast)(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc,
                             NULL);
}

nc_status NC_FN(gemm_bias_act)(int trans_a, int trans_b, size_t m, size_t n, size_t k,
                               real alpha, const real *a, size_t lda,
                               const real *b, size_t ldb,
                               real beta, real *c, size_t ldc,
                               const real *bias, nc_act act, real param)
{
    NC_TAG(gemm_epi) epi;
    nc_status st;
    if ((unsigned)act >= NC_ACT_COUNT_) return NC_ERR_ARG;
    if (act == NC_ACT_SOFTMAX || act == NC_ACT_LOG_SOFTMAX) { /* row-wise: a pass of its own */
        st = NC_FN(gemm)(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        return st != NC_OK ? st : NC_FN(bias_act)(act, param, m, n, bias, c, ldc);
    }
    epi.bias = bias;
    epi.act = act;
    epi.param = param;
    return NC_TAG(gemm_fast)(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc,
                             bias == NULL && act == NC_ACT_IDENTITY ? NULL : &epi);
}
