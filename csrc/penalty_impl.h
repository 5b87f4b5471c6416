/*
 * penalty_impl.h -- L1/L2 weight penalties and their gradients in one pass,
 * written once for `real`.
 */

nc_status NC_FN(penalty)(size_t n, const real *w, real *g, double l1, double l2,
                         double *penalty)
{
    double abs_sum = 0, sq_sum = 0;
    const real rl1 = (real)l1, rl2 = (real)(2 * l2);
    size_t i;
    for (i = 0; i < n; i++) {
        abs_sum += R_FABS(w[i]);
        sq_sum += (double)w[i] * w[i];
    }
    if (g) {
        for (i = 0; i < n; i++) {
            real sign = w[i] > 0 ? R_C(1) : (w[i] < 0 ? R_C(-1) : R_C(0));
            g[i] += rl1 * sign + rl2 * w[i];
        }
    }
    *penalty = l1 * abs_sum + l2 * sq_sum;
    return NC_OK;
}
