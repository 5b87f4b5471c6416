/*
 * gemm/tile_x86.h -- the x86 register tile, written once over a vector
 * abstraction. kernel_avx2.c and kernel_avx512.c include it once per
 * precision after defining:
 *   T, VT, MT          element, vector and column-mask types; L lanes per vector
 *   VZERO() VLOAD(p) VLOADM(m, p) VSET1(x) VFMA(a, b, c) VMUL(a, b)
 *   VSTOREM(p, m, v)   masked store (masked-off lanes neither read nor fault)
 *   MASK(cnt)          mask of the first cnt lanes (0 <= cnt <= L)
 *   TILE, SMALL, UKR   names of the functions to define
 *   UKR_MR, UKR_NV     the packed micro-kernel's tile: UKR_MR rows x UKR_NV vectors
 *   SMALL_MR           rows per tile of the unpacked kernel
 *
 * TILE is always inlined with constant R (rows) and V (vectors), so the
 * compiler unrolls its loops and keeps acc[][] in registers.
 */

NC_AINLINE void
TILE(const int R, const int V, const int packed, size_t k,
     const T *a, size_t ars, size_t acs, const T *b, size_t ldb, const MT *mk,
     T alpha, T beta, T *c, size_t ldc, size_t rows)
{
    VT acc[NC_GEMM_MAX_MR][8];
    VT bv[8];
    int i, v;
    size_t p;
    /* fetch the C tile now: its rows arrive while the k loop runs */
#pragma GCC unroll 16
    for (i = 0; i < R; i++)
        if ((size_t)i < rows) {
            _mm_prefetch((const char *)(c + i * ldc), _MM_HINT_T0);
            if (V * L * sizeof(T) > 64)
                _mm_prefetch((const char *)(c + i * ldc) + V * L * sizeof(T) - 1, _MM_HINT_T0);
        }
#pragma GCC unroll 16
    for (i = 0; i < R; i++)
#pragma GCC unroll 8
        for (v = 0; v < V; v++) acc[i][v] = VZERO();
    for (p = 0; p < k; p++) {
        const T *bp = b + p * ldb;
        const T *ap = a + p * acs;
#pragma GCC unroll 8
        for (v = 0; v < V; v++) bv[v] = packed ? VLOAD(bp + L * v) : VLOADM(mk[v], bp + L * v);
#pragma GCC unroll 16
        for (i = 0; i < R; i++) {
            VT ai = VSET1(ap[i * ars]);
#pragma GCC unroll 8
            for (v = 0; v < V; v++) acc[i][v] = VFMA(ai, bv[v], acc[i][v]);
        }
    }
    {
        VT va = VSET1(alpha), vb = VSET1(beta);
#pragma GCC unroll 16
        for (i = 0; i < R; i++) {
            T *ci = c + i * ldc;
            if ((size_t)i >= rows) break;
#pragma GCC unroll 8
            for (v = 0; v < V; v++) {
                VT r = VMUL(va, acc[i][v]);
                if (beta != 0) r = VFMA(vb, VLOADM(mk[v], ci + L * v), r);
                VSTOREM(ci + L * v, mk[v], r);
            }
        }
    }
}

static void UKR(size_t k, const T *a, const T *b, T *c, size_t ldc,
                T alpha, T beta, size_t mr, size_t nr)
{
    MT mk[UKR_NV];
    int v;
    for (v = 0; v < UKR_NV; v++) {
        size_t lo = (size_t)v * L;
        mk[v] = MASK(nr > lo ? NC_MIN((size_t)L, nr - lo) : 0);
    }
    /* a bottom-edge tile of at most half height skips the padding rows'
     * arithmetic (each element's chain is the same either way) */
    if (mr <= UKR_MR / 2)
        TILE(UKR_MR / 2, UKR_NV, 1, k, a, 1, UKR_MR, b, (size_t)UKR_NV * L, mk, alpha, beta, c, ldc, mr);
    else
        TILE(UKR_MR, UKR_NV, 1, k, a, 1, UKR_MR, b, (size_t)UKR_NV * L, mk, alpha, beta, c, ldc, mr);
}

/* One column strip (V vectors wide) of the unpacked product, SMALL_MR rows at a time. */
NC_AINLINE void
NC_GLUE(SMALL, _strip)(const int V, size_t m, size_t k, T alpha, const T *a, size_t ars,
                       size_t acs, const T *b, size_t ldb, const MT *mk, T beta, T *c, size_t ldc)
{
    size_t i0;
    for (i0 = 0; i0 < m; i0 += SMALL_MR) {
        size_t r = NC_MIN((size_t)SMALL_MR, m - i0);
        const T *ai = a + i0 * ars;
        T *ci = c + i0 * ldc;
#define NC_CASE(n) case n: TILE(n, V, 0, k, ai, ars, acs, b, ldb, mk, alpha, beta, ci, ldc, n); break;
        switch (r) {
        NC_CASE(1) NC_CASE(2) NC_CASE(3) NC_CASE(4)
#if SMALL_MR > 4
        NC_CASE(5) NC_CASE(6)
#endif
#if SMALL_MR > 6
        NC_CASE(7) NC_CASE(8)
#endif
#if SMALL_MR > 8
        NC_CASE(9) NC_CASE(10) NC_CASE(11) NC_CASE(12)
#endif
        default: break;
        }
#undef NC_CASE
    }
}

static void SMALL(size_t m, size_t n, size_t k, T alpha, const T *a, size_t ars, size_t acs,
                  const T *b, size_t ldb, T beta, T *c, size_t ldc)
{
    /* One or two rows: four vectors across (eight with 32 registers and a
     * wide B), enough independent chains to hide the FMA latency and whole
     * rows of B streamed in order; otherwise two across and SMALL_MR down. */
    /* (A narrow C, n <= L, e.g. a 10-class output: one vector across, so
     * the masked-off lanes of a second one cost nothing.) */
    const int V = m > 2 ? (n <= (size_t)L ? 1 : 2)
                        : (sizeof(VT) == 64 && n > 4 * (size_t)L ? 8 : 4);
    size_t j0;
    for (j0 = 0; j0 < n; j0 += (size_t)V * L) {
        MT mk[8];
        int v;
        for (v = 0; v < 8; v++) {
            size_t lo = j0 + (size_t)v * L;
            mk[v] = MASK(v < V && n > lo ? NC_MIN((size_t)L, n - lo) : 0);
        }
        if (V == 8)
            NC_GLUE(SMALL, _strip)(8, m, k, alpha, a, ars, acs, b + j0, ldb, mk, beta, c + j0, ldc);
        else if (V == 4)
            NC_GLUE(SMALL, _strip)(4, m, k, alpha, a, ars, acs, b + j0, ldb, mk, beta, c + j0, ldc);
        else if (V == 2)
            NC_GLUE(SMALL, _strip)(2, m, k, alpha, a, ars, acs, b + j0, ldb, mk, beta, c + j0, ldc);
        else
            NC_GLUE(SMALL, _strip)(1, m, k, alpha, a, ars, acs, b + j0, ldb, mk, beta, c + j0, ldc);
    }
}
