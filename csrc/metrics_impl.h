/*
 * metrics_impl.h -- accuracy counts, written once for `real`.
 */

/* Index of the first largest entry of a row. NaN never wins, wherever it
 * sits (a row of nothing but NaN gives 0). */
static size_t NC_TAG(argmax)(size_t k, const real *v)
{
    size_t j, best = 0;
    while (best < k && v[best] != v[best]) best++;
    if (best == k) return 0;
    for (j = best + 1; j < k; j++)
        if (v[j] > v[best]) best = j;
    return best;
}

nc_status NC_FN(accuracy_argmax)(size_t n, size_t k, const real *t, const real *p,
                                 size_t *correct)
{
    size_t i, hits = 0;
    for (i = 0; i < n && k > 0; i++)
        hits += NC_TAG(argmax)(k, p + i * k) == NC_TAG(argmax)(k, t + i * k);
    *correct = hits;
    return NC_OK;
}

nc_status NC_FN(accuracy_sparse)(size_t n, size_t k, const int64_t *labels, const real *p,
                                 size_t *correct)
{
    size_t i, hits = 0;
    for (i = 0; i < n && k > 0; i++)
        hits += (int64_t)NC_TAG(argmax)(k, p + i * k) == labels[i];
    *correct = hits;
    return NC_OK;
}

nc_status NC_FN(accuracy_threshold)(size_t count, const real *t, const real *p,
                                    real threshold, size_t *correct)
{
    size_t i, hits = 0;
    for (i = 0; i < count; i++)
        hits += (p[i] > threshold) == (t[i] > R_C(0.5));
    *correct = hits;
    return NC_OK;
}
