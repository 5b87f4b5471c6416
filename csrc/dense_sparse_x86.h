/*
 * dense_sparse_x86.h -- dense_sparse.h's "rows times" in vector registers,
 * included by dense_avx2.c and dense_avx512.c once per precision after
 * defining T, VT, MT, L, NV, VZERO, VLOAD, VLOADM, VSET1, VFMA, VADD, VRELU,
 * VSTORE, VSTOREM, MASK and FN (all undefined again at the end).
 *
 * Every nonzero costs n / L multiply-adds against a row of B; where that
 * row comes from decides the speed.
 *  - A B too big for L1 (a layer's W, in L2): C's row strip of NV vectors
 *    (all of a 256-wide float row at AVX-512) in registers, so that each
 *    nonzero reads its row of B once, in full vectors. L2's bandwidth is
 *    the bound: 8 or 4 vectors wide, a prefetch of a later nonzero's row,
 *    strips of B packed into L1 with four rows of C side by side (masked
 *    multiply-adds for the shorter rows) all measured no faster.
 *  - A B small enough (a batch's dZ): its strip of SV vectors packed into
 *    L1 first (rows 1 KiB apart share a few L1 sets).
 * Either way each element of C is one chain of multiply-adds in entry order
 * from zero, so the result does not depend on the blocking.
 *
 * A forward pass's bias and ReLU can be applied as each row is stored
 * (bias_act's c + b, then c < 0 ? 0 : c: the same bits), instead of in two
 * more passes over C.
 */

/* The store's epilogue: + bias (when given), then ReLU (when relu). */
#define NC_SP_EPI(r, bias_v)                                                  \
    do {                                                                      \
        if (bias) r = VADD(r, bias_v);                                        \
        if (relu) r = VRELU(r);                                               \
    } while (0)
#define SV 4                      /* vectors per strip of the L1 kernel */
/* The row pointer as an opaque register: else GCC splits b + idx * ldb + v * L
 * into b and one loop-invariant offset per vector, 16 of them, which spill
 * into vector registers and cost an extra move and add before every load;
 * opaque, each load takes its offset as a constant displacement. */
#ifndef NC_SP_OPAQUE
#if defined(__GNUC__) || defined(__clang__)
#define NC_SP_OPAQUE(p) __asm__("" : "+r"(p))
#else
#define NC_SP_OPAQUE(p) ((void)0)
#endif
#endif
#define SMALL_B (4096 * 4 / (int)sizeof(T)) /* elements: 16 KiB */

/* C (m x w vectors from column 0 of c and b) for full vectors: w is a
 * constant at each call, so acc[] lives in registers. */
NC_AINLINE void NC_GLUE(FN, _strip)(int w, size_t m, const int32_t *ptr, const int32_t *idx,
                                    const T *val, const T *b, size_t ldb, T *c, size_t ldc,
                                    const T *bias, int relu)
{
    size_t i;
    int v;
    for (i = 0; i < m; i++) {
        VT acc[NV];
        int32_t e = ptr[i], e1 = ptr[i + 1];
        /* loops to the constant NV, cut at w: both GCC and Clang unroll them
         * whole and keep acc[] in registers */
#pragma GCC unroll 16
        for (v = 0; v < NV; v++)
            if (v < w) acc[v] = VZERO();
        for (; e < e1; e++) {
            const T *br = b + (size_t)idx[e] * ldb;
            VT a = VSET1(val[e]);
            NC_SP_OPAQUE(br);
#pragma GCC unroll 16
            for (v = 0; v < NV; v++)
                if (v < w) acc[v] = VFMA(a, VLOAD(br + v * L), acc[v]);
        }
#pragma GCC unroll 16
        for (v = 0; v < NV; v++)
            if (v < w) {
                NC_SP_EPI(acc[v], VLOAD(bias + v * L));
                VSTORE(c + i * ldc + v * L, acc[v]);
            }
    }
}

/* one vector of columns with its first cnt lanes only (the right edge) */
static void NC_GLUE(FN, _edge)(size_t cnt, size_t m, const int32_t *ptr, const int32_t *idx,
                               const T *val, const T *b, size_t ldb, T *c, size_t ldc,
                               const T *bias, int relu)
{
    const MT mk = MASK(cnt);
    size_t i;
    for (i = 0; i < m; i++) {
        VT acc = VZERO();
        int32_t e;
        for (e = ptr[i]; e < ptr[i + 1]; e++)
            acc = VFMA(VSET1(val[e]), VLOADM(mk, b + (size_t)idx[e] * ldb), acc);
        NC_SP_EPI(acc, VLOADM(mk, bias));
        VSTOREM(c + i * ldc, mk, acc);
    }
}

/* B small: strips of SV vectors packed into L1 (unmasked loads but at the
 * right edge: AVX2's maskload is slow). Measured against the alternatives:
 * two rows of C side by side, wider (32 KiB) or narrower strips, rows
 * taken in order of their lengths, all no faster. */
static void NC_GLUE(FN, _packed)(size_t m, size_t n, size_t bk, const int32_t *ptr,
                                 const int32_t *idx, const T *val, const T *b, size_t ldb,
                                 T *c, size_t ldc, const T *bias, int relu)
{
    VT pack[SMALL_B / L];
    size_t j0, i, p;
    int v;
    for (j0 = 0; j0 < n; j0 += (size_t)SV * L) {
        const int full = n - j0 >= (size_t)SV * L;
        for (p = 0; p < bk; p++) {
            const T *br = b + p * ldb + j0;
            if (full) {
#pragma GCC unroll 4
                for (v = 0; v < SV; v++) pack[p * SV + v] = VLOAD(br + v * L);
            } else {
                for (v = 0; v < SV; v++) {
                    size_t lo = (size_t)v * L;
                    pack[p * SV + v] = VLOADM(MASK(n - j0 > lo ? NC_MIN((size_t)L, n - j0 - lo) : 0),
                                              br + lo);
                }
            }
        }
        for (i = 0; i < m; i++) {
            VT acc[SV];
            int32_t e, e1 = ptr[i + 1];
            T *ci = c + i * ldc + j0;
#pragma GCC unroll 4
            for (v = 0; v < SV; v++) acc[v] = VZERO();
            for (e = ptr[i]; e < e1; e++) {
                const VT *br = pack + (size_t)idx[e] * SV;
                VT a = VSET1(val[e]);
#pragma GCC unroll 4
                for (v = 0; v < SV; v++) acc[v] = VFMA(a, br[v], acc[v]);
            }
            if (full) {
#pragma GCC unroll 4
                for (v = 0; v < SV; v++) {
                    NC_SP_EPI(acc[v], VLOAD(bias + j0 + v * L));
                    VSTORE(ci + v * L, acc[v]);
                }
            } else {
                for (v = 0; v < SV; v++) {
                    size_t lo = (size_t)v * L;
                    const MT mk = MASK(n - j0 > lo ? NC_MIN((size_t)L, n - j0 - lo) : 0);
                    NC_SP_EPI(acc[v], VLOADM(mk, bias + j0 + lo));
                    VSTOREM(ci + lo, mk, acc[v]);
                }
            }
        }
    }
}

/* rows times: C[i, :] = sum over i's entries e of val[e] B[idx[e], :];
 * B has bk rows. Then, as each row is stored, + bias (n entries, or NULL)
 * and ReLU when relu. */
void FN(size_t m, size_t n, size_t bk, const int32_t *ptr, const int32_t *idx, const T *val,
        const T *b, size_t ldb, T *c, size_t ldc, const T *bias, int relu)
{
    size_t j = 0, nf = n / L * L;
    if (m == 0 || n == 0) return;
    if (bk * SV * L <= (size_t)SMALL_B) {
        NC_GLUE(FN, _packed)(m, n, bk, ptr, idx, val, b, ldb, c, ldc, bias, relu);
        return;
    }
    /* the full vectors in strips of NV, then 8, 4, 2, 1 (constant widths) */
    for (; nf - j >= (size_t)NV * L; j += (size_t)NV * L)
        NC_GLUE(FN, _strip)(NV, m, ptr, idx, val, b + j, ldb, c + j, ldc,
                           bias ? bias + j : NULL, relu);
#if NV > 8
    if (nf - j >= 8 * L) {
        NC_GLUE(FN, _strip)(8, m, ptr, idx, val, b + j, ldb, c + j, ldc,
                           bias ? bias + j : NULL, relu);
        j += 8 * L;
    }
#endif
    if (nf - j >= 4 * L) {
        NC_GLUE(FN, _strip)(4, m, ptr, idx, val, b + j, ldb, c + j, ldc,
                           bias ? bias + j : NULL, relu);
        j += 4 * L;
    }
    if (nf - j >= 2 * L) {
        NC_GLUE(FN, _strip)(2, m, ptr, idx, val, b + j, ldb, c + j, ldc,
                           bias ? bias + j : NULL, relu);
        j += 2 * L;
    }
    if (nf - j >= L) {
        NC_GLUE(FN, _strip)(1, m, ptr, idx, val, b + j, ldb, c + j, ldc,
                           bias ? bias + j : NULL, relu);
        j += L;
    }
    if (j < n)
        NC_GLUE(FN, _edge)(n - j, m, ptr, idx, val, b + j, ldb, c + j, ldc, bias ? bias + j : NULL,
                           relu);
}

/* nc_?relu_backward_db at this file's width. */
void NC_GLUE(FN, _relu_db)(size_t m, size_t n, const T *restrict y, T *restrict dz,
                           T *restrict db)
{
    NC_RELU_DB_LOOP(T, m, n, y, dz, db);
}

#undef SV
#undef SMALL_B
/* the includer's parameters too, so that it can define them anew */
#undef T
#undef VT
#undef MT
#undef L
#undef NV
#undef VZERO
#undef VLOAD
#undef VLOADM
#undef VSET1
#undef VFMA
#undef VADD
#undef VRELU
#undef NC_SP_EPI
#undef VSTORE
#undef VSTOREM
#undef MASK
#undef FN
