/*
 * loss_impl.h -- losses and their gradients, written once for `real`.
 *
 * Each row function returns one sample's loss (in double, so that the
 * reduction over a large batch does not lose the small terms) and, when g is
 * not NULL, writes that loss's gradient times gscale into g.
 * Probabilities are clipped to [eps, 1 - eps] (Keras); the gradient is taken
 * at the clipped value, so it stays finite at p = 0 and p = 1.
 * The logs and exponentials of a row are taken a stack block of NC_VCHUNK
 * elements at a time through real.h's array hooks (SIMD for float), and
 * every element of the inputs is read before g (which may be p) is written.
 */

#include "scalar_impl.h"

static inline real NC_TAG(clip_prob)(real p)
{
    const real eps = R_C(NC_PROB_EPS);
    /* written so that NaN falls through both tests and propagates */
    return p < eps ? eps : (p > R_C(1) - eps ? R_C(1) - eps : p);
}

static double NC_TAG(row_mse)(size_t k, const real *t, const real *p, real *g, real gscale)
{
    double s = 0;
    size_t j;
    for (j = 0; j < k; j++) {
        real d = p[j] - t[j];
        s += (double)d * d;
        if (g) g[j] = R_C(2) * d * gscale / (real)k;
    }
    return s / (double)k;
}

static double NC_TAG(row_mae)(size_t k, const real *t, const real *p, real *g, real gscale)
{
    double s = 0;
    size_t j;
    for (j = 0; j < k; j++) {
        real d = p[j] - t[j];
        s += R_FABS(d);
        if (g) {
            real sign = d > 0 ? R_C(1) : (d < 0 ? R_C(-1) : (d == 0 ? R_C(0) : d));
            g[j] = sign * gscale / (real)k;
        }
    }
    return s / (double)k;
}

static double NC_TAG(row_bce)(size_t k, const real *t, const real *p, real *g, real gscale)
{
    double s = 0;
    size_t i, j;
    for (i = 0; i < k; i += NC_VCHUNK) {
        real pc[NC_VCHUNK], lp[NC_VCHUNK], lq[NC_VCHUNK];
        size_t len = NC_MIN(k - i, (size_t)NC_VCHUNK);
        for (j = 0; j < len; j++) {
            pc[j] = NC_TAG(clip_prob)(p[i + j]);
            lq[j] = R_C(1) - pc[j];
        }
        R_VLOG(len, pc, lp);
        R_VLOG(len, lq, lq);
        for (j = 0; j < len; j++) {
            real tj = t[i + j], q = pc[j];
            s -= (double)tj * lp[j] + (double)(R_C(1) - tj) * lq[j];
            if (g) g[i + j] = (q - tj) / (q * (R_C(1) - q)) * gscale / (real)k;
        }
    }
    return s / (double)k;
}

static double NC_TAG(row_bce_logits)(size_t k, const real *t, const real *z, real *g, real gscale)
{
    double s = 0;
    size_t i, j;
    for (i = 0; i < k; i += NC_VCHUNK) {
        real l[NC_VCHUNK], sg[NC_VCHUNK];
        size_t len = NC_MIN(k - i, (size_t)NC_VCHUNK);
        /* log1p(e^-|v|) = softplus(-|v|), kept apart from max(v, 0) - v t
         * so that the sum (in double) keeps it when v is large */
        for (j = 0; j < len; j++) l[j] = -R_FABS(z[i + j]);
        R_VSOFTPLUS(len, l, l);
        if (g) R_VSIGMOID(len, z + i, sg);
        for (j = 0; j < len; j++) {
            real v = z[i + j], tj = t[i + j];
            /* log(1 + e^v) - v t, as max(v, 0) - v t + log1p(e^-|v|) */
            s += (double)(v > 0 ? v : R_C(0)) - (double)v * tj + l[j];
            if (g) g[i + j] = (sg[j] - tj) * gscale / (real)k;
        }
    }
    return s / (double)k;
}

static double NC_TAG(row_cce)(size_t k, const real *t, const real *p, real *g, real gscale)
{
    double s = 0;
    size_t i, j;
    for (i = 0; i < k; i += NC_VCHUNK) {
        real pc[NC_VCHUNK], lp[NC_VCHUNK];
        size_t len = NC_MIN(k - i, (size_t)NC_VCHUNK);
        for (j = 0; j < len; j++) pc[j] = NC_TAG(clip_prob)(p[i + j]);
        R_VLOG(len, pc, lp);
        for (j = 0; j < len; j++) {
            s -= (double)t[i + j] * lp[j];
            if (g) g[i + j] = -t[i + j] / pc[j] * gscale;
        }
    }
    return s;
}

/* Row max, NaN winning so that it propagates. */
static inline real NC_TAG(row_max)(size_t k, const real *z)
{
    real m = z[0];
    size_t j;
    /* as "if (z[j] > m || z[j] != z[j]) m = z[j]", without the branch,
     * which random logits mispredict (it had been most of a 10-class loss) */
    for (j = 1; j < k; j++) {
        const real zj = z[j], larger = zj > m ? zj : m;
        m = zj != zj ? zj : larger;
    }
    return m;
}

/*
 * A softmax cross-entropy row's loss from its max m and the sum of its
 * e^(z - m); *tsum gets the sum of its targets, whose share of the sum is
 * the gradient's factor on e^(z - m).
 */
static double NC_TAG(cce_logits_row_loss)(size_t k, const real *t, int64_t label,
                                          const real *z, real m, double sum_e, double *tsum)
{
    /* a term is (m - z) + log s, never (m + log s) - z: that cancels for large logits */
    double log_s = log(sum_e), s = 0, ts = 0;
    size_t j;
    if (t) {
        for (j = 0; j < k; j++) {
            s += (double)t[j] * (((double)m - (double)z[j]) + log_s);
            ts += t[j];
        }
    } else {
        s = ((double)m - (double)z[label]) + log_s;
        ts = 1;
    }
    *tsum = ts;
    return s;
}

/*
 * Softmax cross-entropy from logits, via log-sum-exp. t is the target row,
 * or NULL with `label` giving the one-hot position (sparse form).
 */
static double NC_TAG(row_cce_logits)(size_t k, const real *t, int64_t label,
                                     const real *z, real *g, real gscale)
{
    real m = NC_TAG(row_max)(k, z);
    double sum_e = 0, s, tsum;
    /* e^(z - m) is kept in g for the gradient, unless g is z or t itself
     * (the loss below still reads them): then it is recomputed at the end */
    int keep = g != NULL && g != z && g != t;
    size_t i, j;
    for (i = 0; i < k; i += NC_VCHUNK) {
        real buf[NC_VCHUNK], *e = keep ? g + i : buf;
        size_t len = NC_MIN(k - i, (size_t)NC_VCHUNK);
        for (j = 0; j < len; j++) e[j] = z[i + j] - m;
        R_VEXP(len, e, e);
        for (j = 0; j < len; j++) sum_e += e[j];
    }
    s = NC_TAG(cce_logits_row_loss)(k, t, label, z, m, sum_e, &tsum);
    if (g) {
        real scale = (real)(tsum / sum_e) * gscale;
        for (i = 0; i < k; i += NC_VCHUNK) {
            real buf[NC_VCHUNK], *e = keep ? g + i : buf;
            size_t len = NC_MIN(k - i, (size_t)NC_VCHUNK);
            if (!keep) {
                for (j = 0; j < len; j++) buf[j] = z[i + j] - m;
                R_VEXP(len, buf, buf);
            }
            for (j = 0; j < len; j++)
                g[i + j] = e[j] * scale - (t ? t[i + j] : R_C(0)) * gscale;
        }
        if (!t) g[label] -= gscale;
    }
    return s;
}

/*
 * row_cce_logits over rows first .. first + n - 1 of a batch, several rows
 * per exponential call when a row is short (a 10-class output: the calls,
 * not the arithmetic, had been the cost). Each row's max, e^(z - m), sum,
 * log and gradient are row_cce_logits' own operations in its order, so the
 * bits are the same. Adds each row's loss to *sum (and per_sample).
 */
static void NC_TAG(rows_cce_logits)(size_t n, size_t k, const real *t, const int64_t *labels,
                                    const real *z, real *g, real gscale, real *per_sample,
                                    double *sum)
{
    real e[NC_VCHUNK], m[NC_VCHUNK / 2];
    const size_t group = k <= NC_VCHUNK / 2 ? NC_VCHUNK / k : 1;
    size_t i0, i, j;
    for (i0 = 0; i0 < n; i0 += group) {
        const size_t rows = NC_MIN(group, n - i0);
        if (group == 1) { /* a long row: in blocks, on its own */
            double li = NC_TAG(row_cce_logits)(k, t ? t + i0 * k : NULL, t ? 0 : labels[i0],
                                               z + i0 * k, g ? g + i0 * k : NULL, gscale);
            if (per_sample) per_sample[i0] = (real)li;
            *sum += li;
            continue;
        }
        /* every input of the group is read here, before any of g (maybe z or t) is written */
        for (i = 0; i < rows; i++) {
            const real *zi = z + (i0 + i) * k;
            m[i] = NC_TAG(row_max)(k, zi);
            for (j = 0; j < k; j++) e[i * k + j] = zi[j] - m[i];
        }
        R_VEXP(rows * k, e, e);
        for (i = 0; i < rows; i++) {
            const size_t r = i0 + i;
            const real *zi = z + r * k, *ti = t ? t + r * k : NULL, *ei = e + i * k;
            double sum_e = 0, tsum, li;
            for (j = 0; j < k; j++) sum_e += ei[j];
            li = NC_TAG(cce_logits_row_loss)(k, ti, ti ? 0 : labels[r], zi, m[i], sum_e, &tsum);
            if (g) {
                real *gi = g + r * k, scale = (real)(tsum / sum_e) * gscale;
                for (j = 0; j < k; j++) gi[j] = ei[j] * scale - (ti ? ti[j] : R_C(0)) * gscale;
                if (!ti) gi[labels[r]] -= gscale;
            }
            if (per_sample) per_sample[r] = (real)li;
            *sum += li;
        }
    }
}

nc_status NC_FN(loss)(nc_loss loss, nc_reduction reduction, size_t n, size_t k,
                      const real *t, const real *p,
                      double *total, real *per_sample, real *grad)
{
    double sum = 0;
    real gscale = reduction == NC_REDUCE_MEAN ? R_C(1) / (real)(n ? n : 1) : R_C(1);
    size_t i;
    if ((unsigned)loss >= NC_LOSS_COUNT_ || (unsigned)reduction > NC_REDUCE_NONE)
        return NC_ERR_ARG;
    if (k == 0 && n > 0) return NC_ERR_ARG;
    if (loss == NC_LOSS_CCE_LOGITS)
        NC_TAG(rows_cce_logits)(n, k, t, NULL, p, grad, gscale, per_sample, &sum);
    for (i = 0; i < n && loss != NC_LOSS_CCE_LOGITS; i++) {
        const real *ti = t + i * k, *pi = p + i * k;
        real *gi = grad ? grad + i * k : NULL;
        double li = 0;
        switch (loss) {
        case NC_LOSS_MSE: li = NC_TAG(row_mse)(k, ti, pi, gi, gscale); break;
        case NC_LOSS_MAE: li = NC_TAG(row_mae)(k, ti, pi, gi, gscale); break;
        case NC_LOSS_BCE: li = NC_TAG(row_bce)(k, ti, pi, gi, gscale); break;
        case NC_LOSS_BCE_LOGITS: li = NC_TAG(row_bce_logits)(k, ti, pi, gi, gscale); break;
        case NC_LOSS_CCE: li = NC_TAG(row_cce)(k, ti, pi, gi, gscale); break;
        default: break;
        }
        if (per_sample) per_sample[i] = (real)li;
        sum += li;
    }
    *total = reduction == NC_REDUCE_MEAN ? (n ? sum / (double)n : NAN) : sum;
    return NC_OK;
}

nc_status NC_FN(loss_sparse)(nc_loss loss, nc_reduction reduction, size_t n, size_t k,
                             const int64_t *labels, const real *p,
                             double *total, real *per_sample, real *grad)
{
    double sum = 0;
    real gscale = reduction == NC_REDUCE_MEAN ? R_C(1) / (real)(n ? n : 1) : R_C(1);
    size_t i, j;
    if ((loss != NC_LOSS_CCE && loss != NC_LOSS_CCE_LOGITS) || (unsigned)reduction > NC_REDUCE_NONE)
        return NC_ERR_ARG;
    if (k == 0 && n > 0) return NC_ERR_ARG;
    if (loss == NC_LOSS_CCE_LOGITS)
        NC_TAG(rows_cce_logits)(n, k, NULL, labels, p, grad, gscale, per_sample, &sum);
    for (i = 0; i < n && loss == NC_LOSS_CCE; i++) {
        const real *pi = p + i * k;
        real *gi = grad ? grad + i * k : NULL;
        int64_t c = labels[i];
        double li;
        real pc = NC_TAG(clip_prob)(pi[c]);
        li = -(double)R_LOG(pc);
        if (gi) {
            for (j = 0; j < k; j++) gi[j] = 0;
            gi[c] = -gscale / pc;
        }
        if (per_sample) per_sample[i] = (real)li;
        sum += li;
    }
    *total = reduction == NC_REDUCE_MEAN ? (n ? sum / (double)n : NAN) : sum;
    return NC_OK;
}
