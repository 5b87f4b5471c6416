/*
 * dense_sparse_x86.h -- dense_sparse.h's "rows times" kernel in vector
 * registers, included by dense_avx2.c and dense_avx512.c once per precision
 * after defining T, VT, MT, L, VZERO, VLOADM, VSET1, VFMA, VSTOREM, MASK
 * and FN (the function's name).
 *
 * Columns go in blocks of NV vectors held in registers: a row of C is
 * summed over its entries without touching memory, B's rows stream in.
 */
#define NV 8

void FN(size_t m, size_t n, const int32_t *ptr, const int32_t *idx, const T *val,
        const T *b, size_t ldb, T *c, size_t ldc)
{
    size_t j0, i;
    for (j0 = 0; j0 < n; j0 += (size_t)NV * L) {
        MT mk[NV];
        int v;
        for (v = 0; v < NV; v++) {
            size_t lo = j0 + (size_t)v * L;
            mk[v] = MASK(n > lo ? NC_MIN((size_t)L, n - lo) : 0);
        }
        for (i = 0; i < m; i++) {
            VT acc[NV];
            int32_t e, e1 = ptr[i + 1];
#pragma GCC unroll 8
            for (v = 0; v < NV; v++) acc[v] = VZERO();
            for (e = ptr[i]; e < e1; e++) {
                const T *br = b + (size_t)idx[e] * ldb + j0;
                VT a = VSET1(val[e]);
#pragma GCC unroll 8
                for (v = 0; v < NV; v++) acc[v] = VFMA(a, VLOADM(mk[v], br + v * L), acc[v]);
            }
#pragma GCC unroll 8
            for (v = 0; v < NV; v++) VSTOREM(c + i * ldc + j0 + v * L, mk[v], acc[v]);
        }
    }
}

#undef NV
