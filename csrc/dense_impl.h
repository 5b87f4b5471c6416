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
    if (dw) { /* dW (k x n) = X^T (k x m) dZ (m x n) + beta dW */
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
