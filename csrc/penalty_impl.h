/*
 * penalty_impl.h -- L1/L2 weight penalties and their gradients in one pass,
 * written once for `real`.
 */

/* sum |w| and sum w^2 in eight partial sums by i % 8 (a separate function:
 * combined in the same one as the loop, GCC no longer vectorises it) */
static void NC_TAG(penalty_sums)(size_t n, const real *w, double *abs_out, double *sq_out)
{
    double a[8] = {0, 0, 0, 0, 0, 0, 0, 0}, s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    size_t i, j, n8 = n - n % 8;
    for (i = 0; i < n8; i += 8)
        for (j = 0; j < 8; j++) {
            double wd = (double)w[i + j]; /* |w| in double is exact */
            a[j] += fabs(wd);
            s[j] += wd * wd;
        }
    for (j = 0; n8 + j < n; j++) { /* the tail, by i % 8 as well */
        double wd = (double)w[n8 + j];
        a[j] += fabs(wd);
        s[j] += wd * wd;
    }
    for (j = 0; j < 8; j++) {
        abs_out[j] = a[j];
        sq_out[j] = s[j];
    }
}

nc_status NC_FN(penalty)(size_t n, const real *w, real *g, double l1, double l2,
                         double *penalty)
{
    /* Eight partial sums by i % 8, combined pairwise: independent chains the
     * compiler vectorises (one running sum is a chain of dependent adds), in
     * a fixed order, so the value never depends on the ISA or thread count. */
    double abs_acc[8], sq_acc[8];
    double abs_sum, sq_sum;
    const real rl1 = (real)l1, rl2 = (real)(2 * l2);
    size_t i;
    /* the sums, then the gradient (w still in cache): the sign as
     * arithmetic, not branches (random signs mispredict), NaN giving 0 */
    NC_TAG(penalty_sums)(n, w, abs_acc, sq_acc);
    if (g)
        for (i = 0; i < n; i++) {
            real wi = w[i];
            real sign = (real)(wi > 0) - (real)(wi < 0);
            g[i] += rl1 * sign + rl2 * wi;
        }
    abs_sum = ((abs_acc[0] + abs_acc[4]) + (abs_acc[2] + abs_acc[6]))
              + ((abs_acc[1] + abs_acc[5]) + (abs_acc[3] + abs_acc[7]));
    sq_sum = ((sq_acc[0] + sq_acc[4]) + (sq_acc[2] + sq_acc[6]))
             + ((sq_acc[1] + sq_acc[5]) + (sq_acc[3] + sq_acc[7]));
    *penalty = l1 * abs_sum + l2 * sq_sum;
    return NC_OK;
}
