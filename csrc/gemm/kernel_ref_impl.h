/*
 * gemm/kernel_ref_impl.h -- the portable micro-kernels, written once for
 * `real` (kernel_ref.c includes it per precision with REF_MR / REF_NR set).
 * Plain C that any compiler vectorises a little; its job is to be obviously
 * right, so that the framework is tested at the ref level too.
 */

static void NC_TAG(ref_ukr)(size_t k, const real *a, const real *b, real *c, size_t ldc,
                            real alpha, real beta, size_t mr, size_t nr)
{
    real ab[REF_MR][REF_NR];
    size_t i, j, p;
    for (i = 0; i < REF_MR; i++)
        for (j = 0; j < REF_NR; j++) ab[i][j] = 0;
    for (p = 0; p < k; p++, a += REF_MR, b += REF_NR)
        for (i = 0; i < REF_MR; i++)
            for (j = 0; j < REF_NR; j++) ab[i][j] += a[i] * b[j];
    for (i = 0; i < mr; i++) {
        real *ci = c + i * ldc;
        if (beta == 0)
            for (j = 0; j < nr; j++) ci[j] = alpha * ab[i][j];
        else
            for (j = 0; j < nr; j++) ci[j] = alpha * ab[i][j] + beta * ci[j];
    }
}

static void NC_TAG(ref_small)(size_t m, size_t n, size_t k, real alpha,
                              const real *a, size_t ars, size_t acs,
                              const real *b, size_t ldb, real beta, real *c, size_t ldc)
{
    real ab[REF_NR];
    size_t i, j, j0, nb, p;
    for (i = 0; i < m; i++) {
        const real *ai = a + i * ars;
        real *ci = c + i * ldc;
        for (j0 = 0; j0 < n; j0 += REF_NR) {
            nb = NC_MIN(REF_NR, n - j0);
            for (j = 0; j < nb; j++) ab[j] = 0;
            for (p = 0; p < k; p++) {
                real aip = ai[p * acs];
                const real *bp = b + p * ldb + j0;
                for (j = 0; j < nb; j++) ab[j] += aip * bp[j];
            }
            if (beta == 0)
                for (j = 0; j < nb; j++) ci[j0 + j] = alpha * ab[j];
            else
                for (j = 0; j < nb; j++) ci[j0 + j] = alpha * ab[j] + beta * ci[j0 + j];
        }
    }
}
