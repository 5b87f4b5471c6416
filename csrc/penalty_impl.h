/*
 * penalty_impl.h -- L1/L2 weight penalties and their gradients, written once
 * for `real`. Included by optim_impl.h: the penalty is gradient
 * preprocessing, so its loops are compiled per ISA level with the
 * optimizer's (optim.c, optim_avx2.c, optim_avx512.c), and the optimizer
 * step can add it on the fly (nc_?optim_step_penalized) instead of in a pass
 * of its own over the weights and gradients.
 *
 * The value: sum |w| and sum w^2 in double, over blocks of NC_PENALTY_BLOCK
 * elements from w[0] (one optimizer task each); within a block, NC_PEN_LANES
 * partial sums by i % NC_PEN_LANES (independent chains the compiler
 * vectorises without reassociating anything); the blocks' partial sums added
 * lane by lane in block order; the lanes combined pairwise. A fixed order,
 * so the value never depends on the ISA, the thread count, or whether the
 * optimizer or nc_?penalty computed it.
 */

#ifndef NC_PENALTY_COMMON_
#define NC_PENALTY_COMMON_
#define NC_PENALTY_BLOCK NC_OPTIM_CHUNK
#define NC_PEN_LANES 32 /* four zmm of doubles a sum: chains short enough to stream */

/* The lanes' sum, pairwise in a fixed order. */
static inline double nc_pen_lanes_total(double *x)
{
    int width, j;
    for (width = NC_PEN_LANES / 2; width >= 1; width /= 2)
        for (j = 0; j < width; j++) x[j] = x[j] + x[j + width];
    return x[0];
}
#endif

/* Adds sum |w| and sum w^2 of n elements, by lane i % NC_PEN_LANES from
 * w[0], into a and s; a sum not wanted (its coefficient is 0: the term is
 * left out, as Keras' L1L2 leaves it) is skipped but for the tail. n is a
 * multiple of NC_PEN_LANES except at the end of a block. One loop per sum:
 * combined, GCC vectorises the squares and leaves |w| scalar. */
static inline void NC_TAG(penalty_sums)(size_t n, const real *restrict w, int want_abs, int want_sq,
                                 double *restrict a, double *restrict s)
{
    double la[NC_PEN_LANES], ls[NC_PEN_LANES];
    size_t i, j, nl = n - n % NC_PEN_LANES;
    for (j = 0; j < NC_PEN_LANES; j++) {
        la[j] = a[j];
        ls[j] = s[j];
    }
    if (want_abs)
        for (i = 0; i < nl; i += NC_PEN_LANES)
            for (j = 0; j < NC_PEN_LANES; j++) la[j] += fabs((double)w[i + j]); /* exact */
    if (want_sq)
        for (i = 0; i < nl; i += NC_PEN_LANES)
            for (j = 0; j < NC_PEN_LANES; j++) ls[j] += (double)w[i + j] * (double)w[i + j];
    for (j = 0; nl + j < n; j++) {
        double wd = (double)w[nl + j];
        la[j] += fabs(wd);
        ls[j] += wd * wd;
    }
    for (j = 0; j < NC_PEN_LANES; j++) {
        a[j] = la[j];
        s[j] = ls[j];
    }
}

/* out = g + (l1 sign(w) + 2 l2 w), rl2 being 2 l2; out may be g. The sign
 * by arithmetic, not branches (random signs mispredict), NaN giving 0. */
static void NC_TAG(penalty_grad)(size_t n, const real *restrict w, const real *g, real *out,
                                 real rl1, real rl2)
{
    size_t i;
    if (rl1 == 0) { /* the same bits: rl1 * sign is a zero, which adds nothing */
        for (i = 0; i < n; i++) out[i] = g[i] + rl2 * w[i];
        return;
    }
    for (i = 0; i < n; i++) {
        real wi = w[i];
        real sign = (real)(wi > 0) - (real)(wi < 0);
        out[i] = g[i] + (rl1 * sign + rl2 * wi);
    }
}
