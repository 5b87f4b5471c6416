/*
 * perceptron_impl.h -- Rosenblatt's perceptron rule, written once for `real`
 * (see real.h); perceptron.c instantiates it for float and double.
 *
 * Not gradient descent: the step activation has no useful derivative, so the
 * rule moves the weights only on a mistake, by lr * (y - y_hat) * x. Each of
 * the k outputs is its own perceptron (one-vs-rest for k classes), sharing
 * the pass over the samples.
 */

/* One sample's rule for each output; returns the updates made. */
static size_t NC_TAG(perceptron_sample)(size_t d, size_t k, const real *xi, const real *yi,
                                        real lr, real *w, real *b)
{
    size_t j, c, wrong = 0;
    for (c = 0; c < k; c++) {
        real *wc = w + c * d;
        real z = b ? b[c] : R_C(0), y_hat, delta;
        for (j = 0; j < d; j++) z += wc[j] * xi[j];
        y_hat = z > 0 ? R_C(1) : R_C(0); /* the step: 0 at z == 0, as nc_act STEP */
        delta = lr * (yi[c] - y_hat);
        if (delta == 0) continue;
        for (j = 0; j < d; j++) wc[j] += delta * xi[j];
        if (b) b[c] += delta;
        wrong++;
    }
    return wrong;
}

nc_status NC_FN(perceptron_epoch)(size_t n, size_t d, size_t k, const real *x,
                                  const real *y, const int64_t *order, real lr,
                                  real *w, real *b, size_t *mistakes)
{
    size_t t, wrong = 0;
    for (t = 0; t < n; t++) {
        size_t i = order ? (size_t)order[t] : t;
        wrong += NC_TAG(perceptron_sample)(d, k, x + i * d, y + i * k, lr, w, b);
    }
    if (mistakes) *mistakes = wrong;
    return NC_OK;
}

/* The same from uint8 samples, each converted into xrow first (exact, so
 * the bits of the epoch on x converted). */
nc_status NC_FN(perceptron_epoch_u8)(size_t n, size_t d, size_t k, const uint8_t *x,
                                     const real *y, const int64_t *order, real lr, real *w,
                                     real *b, real *xrow, size_t *mistakes)
{
    size_t t, wrong = 0;
    for (t = 0; t < n; t++) {
        size_t i = order ? (size_t)order[t] : t;
        NC_FN(u8_to_real)(d, x + i * d, xrow);
        wrong += NC_TAG(perceptron_sample)(d, k, xrow, y + i * k, lr, w, b);
    }
    if (mistakes) *mistakes = wrong;
    return NC_OK;
}
