/*
 * dense_impl.h -- a dense layer's forward and backward, written once for `real`.
 * The three products run through nc_?gemm with transposes read in place.
 */

nc_status NC_FN(dense_forward)(size_t m, size_t k, size_t n,
                               const real *x, const real *w, const real *b,
                               nc_act act, real param, real *y)
{
    /* bias and activation as the product's epilogue, on blocks still in cache */
    return NC_FN(gemm_bias_act)(0, 0, m, n, k, R_C(1), x, k, w, n, R_C(0), y, n, b, act, param);
}

#ifndef NC_DW_T_MAX
#define NC_DW_T_MAX 4096 /* elements of a narrow dW computed transposed on the stack */
#endif

nc_status NC_FN(dense_backward)(size_t m, size_t k, size_t n,
                                const real *x, const real *w, const real *dz,
                                real *dx, real *dw, real *db, real beta)
{
    nc_status st;
    size_t i, j;
    if (dx) { /* dX (m x k) = dZ (m x n) W^T (n x k) */
        st = NC_FN(gemm)(0, 1, m, k, n, R_C(1), dz, n, w, n, R_C(0), dx, k);
        if (st != NC_OK) return st;
    }
    if (dw && beta == 0 && n < 16 && k >= 64 && n * k <= NC_DW_T_MAX) {
        /* a narrow layer (a classifier's head): dW^T = dZ^T X is n rows of
         * k, whole vectors across, where dW's rows would fill n of a vector's
         * lanes; then transposed. Each element is the same chain over the m
         * samples in order (a b = b a), so the same bits. */
        real t[NC_DW_T_MAX];
        st = NC_FN(gemm)(1, 0, n, k, m, R_C(1), dz, n, x, k, R_C(0), t, k);
        if (st != NC_OK) return st;
        for (i = 0; i < k; i++)
            for (j = 0; j < n; j++) dw[i * n + j] = t[j * k + i];
    } else if (dw) { /* dW (k x n) = X^T (k x m) dZ (m x n) + beta dW */
        st = NC_FN(gemm)(1, 0, k, n, m, R_C(1), x, k, dz, n, beta, dw, n);
        if (st != NC_OK) return st;
    }
    if (db) {
        for (j = 0; j < n; j++) db[j] = beta == 0 ? R_C(0) : beta * db[j];
        for (i = 0; i < m; i++) {
            const real *dzi = dz + i * n;
            for (j = 0; j < n; j++) db[j] += dzi[j];
        }
    }
    return NC_OK;
}

/* ---- sparse inputs (dense_sparse.h) ---- */

/* The portable "rows times": row i of C accumulated in a block of columns. */
static void NC_TAG(sparse_rows_ref)(size_t m, size_t n, const int32_t *ptr, const int32_t *idx,
                                    const real *val, const real *b, size_t ldb, real *c,
                                    size_t ldc)
{
    size_t i, j, j0;
    for (j0 = 0; j0 < n; j0 += 64) {
        size_t nb = NC_MIN((size_t)64, n - j0);
        for (i = 0; i < m; i++) {
            real acc[64];
            int32_t e;
            for (j = 0; j < nb; j++) acc[j] = 0;
            for (e = ptr[i]; e < ptr[i + 1]; e++) {
                const real *br = b + (size_t)idx[e] * ldb + j0;
                real a = val[e];
                for (j = 0; j < nb; j++) acc[j] += a * br[j];
            }
            for (j = 0; j < nb; j++) c[i * ldc + j0 + j] = acc[j];
        }
    }
}

/* The level's vector kernel, + bias and ReLU as each row is stored (bias
 * NULL, relu 0: the product alone); 0 when the level has none. */
static int NC_TAG(sparse_rows_vec)(size_t m, size_t n, size_t bk, const int32_t *ptr,
                                   const int32_t *idx, const real *val, const real *b,
                                   size_t ldb, real *c, size_t ldc, const real *bias, int relu)
{
#ifdef NC_SPARSE_X86
    if (nc_active_isa_ == NC_ISA_AVX512) {
        NC_FN(sparse_rows_avx512)(m, n, bk, ptr, idx, val, b, ldb, c, ldc, bias, relu);
        return 1;
    }
    if (nc_active_isa_ == NC_ISA_AVX2) {
        NC_FN(sparse_rows_avx2)(m, n, bk, ptr, idx, val, b, ldb, c, ldc, bias, relu);
        return 1;
    }
#else
    (void)m, (void)n, (void)bk, (void)ptr, (void)idx, (void)val, (void)b, (void)ldb, (void)c;
    (void)ldc, (void)bias, (void)relu;
#endif
    return 0;
}

nc_status NC_FN(sparse_rows)(size_t m, size_t n, size_t bk, const int32_t *ptr,
                             const int32_t *idx, const real *val, const real *b, size_t ldb,
                             real *c, size_t ldc)
{
    if (!NC_TAG(sparse_rows_vec)(m, n, bk, ptr, idx, val, b, ldb, c, ldc, NULL, 0))
        NC_TAG(sparse_rows_ref)(m, n, ptr, idx, val, b, ldb, c, ldc);
    return NC_OK;
}

void NC_FN(relu_backward_db)(size_t m, size_t n, const real *y, real *dz, real *db)
{
#ifdef NC_SPARSE_X86
    if (nc_active_isa_ == NC_ISA_AVX512) {
        NC_FN(sparse_rows_avx512_relu_db)(m, n, y, dz, db);
        return;
    }
    if (nc_active_isa_ == NC_ISA_AVX2) {
        NC_FN(sparse_rows_avx2_relu_db)(m, n, y, dz, db);
        return;
    }
#endif
    NC_RELU_DB_LOOP(real, m, n, y, dz, db);
}

nc_status NC_FN(sparse_rows_bias_act)(size_t m, size_t n, size_t bk, const int32_t *ptr,
                                      const int32_t *idx, const real *val, const real *b,
                                      size_t ldb, real *c, size_t ldc, const real *bias,
                                      nc_act act, real param)
{
    nc_status st;
    if ((act == NC_ACT_IDENTITY || act == NC_ACT_RELU) /* as each row is stored */
        && NC_TAG(sparse_rows_vec)(m, n, bk, ptr, idx, val, b, ldb, c, ldc, bias,
                                   act == NC_ACT_RELU))
        return NC_OK;
    st = NC_FN(sparse_rows)(m, n, bk, ptr, idx, val, b, ldb, c, ldc);
    return st != NC_OK ? st : NC_FN(bias_act)(act, param, m, n, bias, c, ldc);
}

size_t NC_FN(count_nonzero)(size_t count, const real *x)
{
    size_t i, nnz = 0;
#ifdef NC_SPARSE_X86
    if (nc_active_isa_ == NC_ISA_AVX512) return NC_FN(count_nonzero_avx512)(count, x);
    if (nc_active_isa_ == NC_ISA_AVX2) return NC_FN(count_nonzero_avx2)(count, x);
#endif
    for (i = 0; i < count; i++) nnz += x[i] != 0;
    return nnz;
}

size_t NC_FN(to_csr)(size_t m, size_t k, const real *x, int32_t *ptr, int32_t *idx, real *val)
{
    size_t i, p, nnz = 0;
#ifdef NC_SPARSE_X86 /* the same entries; like this loop, they may write past nnz (not past m * k) */
    if (nc_active_isa_ == NC_ISA_AVX512) return NC_FN(to_csr_avx512)(m, k, x, ptr, idx, val);
    if (nc_active_isa_ == NC_ISA_AVX2) return NC_FN(to_csr_avx2)(m, k, x, ptr, idx, val);
#endif
    for (i = 0; i < m; i++) {
        const real *xi = x + i * k;
        ptr[i] = (int32_t)nnz;
        for (p = 0; p < k; p++) { /* branch-free: written always, kept if nonzero */
            idx[nnz] = (int32_t)p;
            val[nnz] = xi[p];
            nnz += xi[p] != 0;
        }
    }
    ptr[m] = (int32_t)nnz;
    return nnz;
}

void NC_FN(csr_to_csc)(size_t m, size_t k, const int32_t *ptr, const int32_t *idx,
                       const real *val, int32_t *cptr, int32_t *row, real *cval)
{
    size_t i, p;
    int32_t e, sum = 0;
    for (p = 0; p <= k; p++) cptr[p] = 0;
    for (e = 0; e < ptr[m]; e++) cptr[idx[e] + 1]++;
    for (p = 0; p <= k; p++) { sum += cptr[p]; cptr[p] = sum; }
    /* cptr[p] is now where column p starts; fill in row order (so rows increase) */
    for (i = 0; i < m; i++)
        for (e = ptr[i]; e < ptr[i + 1]; e++) {
            int32_t at = cptr[idx[e]]++;
            row[at] = (int32_t)i;
            cval[at] = val[e];
        }
    /* each cptr[p] moved to the start of column p + 1: shift back */
    for (p = k; p > 0; p--) cptr[p] = cptr[p - 1];
    cptr[0] = 0;
}
