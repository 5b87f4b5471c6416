/*
 * dense_sparse_x86.h -- dense_sparse.h's sparse kernels in vector registers,
 * included by dense_avx2.c and dense_avx512.c once per precision after
 * defining T, VT, MT, L, VZERO, VLOADM, VSET1, VFMA, VSTOREM,
 * MASK and FN (all undefined again at the end).
 *
 * Every nonzero costs n / L multiply-adds against a row of B; where that
 * row comes from decides the speed. Rows fetched from L2 per nonzero (and
 * rows 1 KiB apart share a few L1 sets) run well below the FMA rate, so a
 * B small enough (a batch's dZ) has its strip packed into L1 first.
 */
#define NV 8
#define SV 4                      /* vectors per strip of the L1 kernels */
#define SMALL_B (4096 * 4 / (int)sizeof(T)) /* elements: 16 KiB */

/* rows times: C[i, :] = sum over i's entries e of val[e] B[idx[e], :];
 * B has bk rows. */
void FN(size_t m, size_t n, size_t bk, const int32_t *ptr, const int32_t *idx, const T *val,
        const T *b, size_t ldb, T *c, size_t ldc)
{
    size_t j0, i;
    if (bk * SV * L <= (size_t)SMALL_B) {
        /* B's strip packed into L1 (a copy of bk x SV vectors), C's row
         * strip in registers */
        VT pack[SMALL_B / L];
        for (j0 = 0; j0 < n; j0 += (size_t)SV * L) {
            MT mk[SV];
            int v;
            size_t p;
            for (v = 0; v < SV; v++) {
                size_t lo = j0 + (size_t)v * L;
                mk[v] = MASK(n > lo ? NC_MIN((size_t)L, n - lo) : 0);
            }
            for (p = 0; p < bk; p++)
#pragma GCC unroll 4
                for (v = 0; v < SV; v++) pack[p * SV + v] = VLOADM(mk[v], b + p * ldb + j0 + v * L);
            for (i = 0; i < m; i++) {
                VT acc[SV];
                int32_t e, e1 = ptr[i + 1];
#pragma GCC unroll 4
                for (v = 0; v < SV; v++) acc[v] = VZERO();
                for (e = ptr[i]; e < e1; e++) {
                    const VT *br = pack + (size_t)idx[e] * SV;
                    VT a = VSET1(val[e]);
#pragma GCC unroll 4
                    for (v = 0; v < SV; v++) acc[v] = VFMA(a, br[v], acc[v]);
                }
#pragma GCC unroll 4
                for (v = 0; v < SV; v++) VSTOREM(c + i * ldc + j0 + v * L, mk[v], acc[v]);
            }
        }
        return;
    }
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
#undef SV
#undef SMALL_B
/* the includer's parameters too, so that it can define them anew */
#undef T
#undef VT
#undef MT
#undef L
#undef VZERO
#undef VLOADM
#undef VSET1
#undef VFMA
#undef VSTOREM
#undef MASK
#undef FN
