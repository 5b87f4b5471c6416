/*
 * rbm_bin_impl.h -- the reference binary-left kernels (rbm_bin.h), written
 * once for `real`: the oracle of the SIMD ones, and the path of the portable
 * level and of float64.
 */

#define RBM_BIN_COLS 256 /* columns summed per pass (an accumulator on the stack) */

static size_t NC_TAG(rbm_binidx_ref)(size_t m, size_t n, const real *x, size_t ld,
                                     uint32_t *ptr, uint32_t *idx)
{
    size_t i, j, c = 0;
    ptr[0] = 0;
    for (i = 0; i < m; i++) {
        const real *r = x + i * ld;
        for (j = 0; j < n; j++) {
            if (r[j] != 0) {
                if (r[j] != 1) return (size_t)-1;
                idx[c++] = (uint32_t)j;
            }
        }
        ptr[i + 1] = (uint32_t)c;
    }
    return c;
}

static void NC_TAG(rbm_binmm_ref)(const nc_rbm_binmm *a, size_t r0, size_t r1)
{
    real acc[RBM_BIN_COLS];
    const real *b = (const real *)a->b, *b2 = (const real *)a->b2;
    const real alpha = (real)a->alpha, beta = (real)a->beta;
    size_t i, c0, j, p;
    for (i = r0; i < r1; i++) {
        real *ci = (real *)a->c + i * a->ldc;
        for (c0 = 0; c0 < a->n; c0 += RBM_BIN_COLS) {
            size_t nb = NC_MIN(a->n - c0, (size_t)RBM_BIN_COLS);
            for (j = 0; j < nb; j++) acc[j] = 0;
            for (p = a->ptr[i]; p < a->ptr[i + 1]; p++) {
                const real *s = b + (size_t)a->idx[p] * a->ldb + c0;
                for (j = 0; j < nb; j++) acc[j] += s[j];
            }
            if (a->ptr2)
                for (p = a->ptr2[i]; p < a->ptr2[i + 1]; p++) {
                    const real *s = b2 + (size_t)a->idx2[p] * a->ldb2 + c0;
                    for (j = 0; j < nb; j++) acc[j] -= s[j];
                }
            /* alpha acc + beta c, two roundings (the SIMD kernels' order) */
            if (beta == 0)
                for (j = 0; j < nb; j++) ci[c0 + j] = alpha * acc[j];
            else
                for (j = 0; j < nb; j++) ci[c0 + j] = alpha * acc[j] + beta * ci[c0 + j];
        }
    }
}
