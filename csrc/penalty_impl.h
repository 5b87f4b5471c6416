/*
 * penalty_impl.h -- L1/L2 weight penalties and their gradients in one pass,
 * written once for `real`.
 */

nc_status NC_FN(penalty)(size_t n, const real *w, real *g, double l1, double l2,
                         double *penalty)
{
    /* Eight partial sums by i % 8, combined pairwise: independent chains the
     * compiler vectorises (one running sum is a chain of dependent adds), in
     * a fixed order, so the value never depends on the ISA or thread count. */
    double abs_acc[8] = {0, 0, 0, 0, 0, 0, 0, 0}, sq_acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    double abs_sum, sq_sum;
    const real rl1 = (real)l1, rl2 = (real)(2 * l2);
    size_t i, j, n8 = n - n % 8;
    for (i = 0; i < n8; i += 8)
        for (j = 0; j < 8; j++) {
            double wj = (double)w[i + j]; /* (|w| in double: exact, and it vectorises) */
            abs_acc[j] += fabs(wj);
            sq_acc[j] += wj * wj;
        }
    for (j = 0; i + j < n; j++) { /* the tail, by i % 8 as well */
        double wj = (double)w[i + j];
        abs_acc[j] += fabs(wj);
        sq_acc[j] += wj * wj;
    }
    abs_sum = ((abs_acc[0] + abs_acc[4]) + (abs_acc[2] + abs_acc[6]))
              + ((abs_acc[1] + abs_acc[5]) + (abs_acc[3] + abs_acc[7]));
    sq_sum = ((sq_acc[0] + sq_acc[4]) + (sq_acc[2] + sq_acc[6]))
             + ((sq_acc[1] + sq_acc[5]) + (sq_acc[3] + sq_acc[7]));
    if (g) {
        /* the sign as arithmetic, not branches (random signs mispredict);
         * NaN gives 0 as before */
        for (i = 0; i < n; i++) {
            real wi = w[i];
            real sign = (real)(wi > 0) - (real)(wi < 0);
            g[i] += rl1 * sign + rl2 * wi;
        }
    }
    *penalty = l1 * abs_sum + l2 * sq_sum;
    return NC_OK;
}
