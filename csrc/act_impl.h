/*
 * act_impl.h -- activation kernels, written once for `real` (see real.h).
 *
 * Plain loops the compiler may vectorise, with the transcendental parts on
 * real.h's array hooks (R_VEXP, ...): SIMD polynomials for float at the
 * level in force (vmath.h), libm loops for double. Where a kernel needs e^v
 * of a derived array it uses a stack block of NC_VCHUNK elements, never an
 * allocation, and reads each element before writing it so that y may be x.
 * NaN propagates through every activation (never silently becomes 0 or 1).
 */

#include "scalar_impl.h"

/* f over n contiguous elements (everything but the softmaxes). y may be x. */
static void NC_TAG(act_elementwise)(nc_act act, real param, size_t n,
                                    const real *x, real *y)
{
    size_t i;
    switch (act) {
    case NC_ACT_IDENTITY:
        if (x != y)
            for (i = 0; i < n; i++) y[i] = x[i];
        break;
    case NC_ACT_STEP:
        for (i = 0; i < n; i++) y[i] = x[i] > 0 ? R_C(1) : (x[i] <= 0 ? R_C(0) : x[i]);
        break;
    case NC_ACT_SIGMOID:
        R_VSIGMOID(n, x, y);
        break;
    case NC_ACT_TANH:
        R_VTANH(n, x, y);
        break;
    case NC_ACT_RELU:
        for (i = 0; i < n; i++) y[i] = x[i] < 0 ? R_C(0) : x[i];
        break;
    case NC_ACT_LEAKY_RELU:
        for (i = 0; i < n; i++) y[i] = x[i] < 0 ? param * x[i] : x[i];
        break;
    case NC_ACT_ELU:
        /* y may be x, and x decides the branch: expm1 goes through a stack
         * block. NaN takes the second branch and stays NaN. */
        for (i = 0; i < n; i += NC_VCHUNK) {
            real e[NC_VCHUNK];
            size_t j, len = NC_MIN(n - i, (size_t)NC_VCHUNK);
            R_VEXPM1(len, x + i, e);
            for (j = 0; j < len; j++) y[i + j] = x[i + j] > 0 ? x[i + j] : param * e[j];
        }
        break;
    case NC_ACT_SOFTPLUS:
        /* log(1 + e^x) = max(x, 0) + log1p(e^-|x|): no overflow, no cancellation */
        R_VSOFTPLUS(n, x, y);
        break;
    default:
        break;
    }
}

/* Softmax or log-softmax of one row of n elements. y may be x. */
static void NC_TAG(softmax_row)(int log_form, size_t n, const real *x, real *y)
{
    size_t i;
    real m, s = 0;
    if (n == 0) return;
    m = x[0];
    for (i = 1; i < n; i++)
        if (x[i] > m || x[i] != x[i]) m = x[i]; /* NaN wins, so it propagates */
    if (log_form) {
        real log_s;
        /* y may be x, so the exponentials go through a stack block */
        for (i = 0; i < n; i += NC_VCHUNK) {
            real e[NC_VCHUNK];
            size_t j, len = NC_MIN(n - i, (size_t)NC_VCHUNK);
            for (j = 0; j < len; j++) e[j] = x[i + j] - m;
            R_VEXP(len, e, e);
            for (j = 0; j < len; j++) s += e[j];
        }
        /* (x - m) - log s, never x - (m + log s): the latter cancels against a large m */
        log_s = R_LOG(s);
        for (i = 0; i < n; i++) y[i] = (x[i] - m) - log_s;
    } else {
        real inv;
        for (i = 0; i < n; i++) y[i] = x[i] - m;
        R_VEXP(n, y, y);
        for (i = 0; i < n; i++) s += y[i];
        inv = R_C(1) / s;
        for (i = 0; i < n; i++) y[i] *= inv;
    }
}

static void NC_TAG(act_row)(nc_act act, real param, size_t n, const real *x, real *y)
{
    if (act == NC_ACT_SOFTMAX || act == NC_ACT_LOG_SOFTMAX)
        NC_TAG(softmax_row)(act == NC_ACT_LOG_SOFTMAX, n, x, y);
    else
        NC_TAG(act_elementwise)(act, param, n, x, y);
}

nc_status NC_FN(act_forward)(nc_act act, real param, size_t rows, size_t cols,
                             const real *x, real *y)
{
    size_t r;
    if ((unsigned)act >= NC_ACT_COUNT_) return NC_ERR_ARG;
    if (act == NC_ACT_SOFTMAX || act == NC_ACT_LOG_SOFTMAX) {
        for (r = 0; r < rows; r++)
            NC_TAG(softmax_row)(act == NC_ACT_LOG_SOFTMAX, cols, x + r * cols, y + r * cols);
    } else {
        NC_TAG(act_elementwise)(act, param, rows * cols, x, y);
    }
    return NC_OK;
}

nc_status NC_FN(act_backward)(nc_act act, real param, size_t rows, size_t cols,
                              const real *y, const real *dy, real *dx)
{
    size_t i, r, n = rows * cols;
    switch (act) {
    case NC_ACT_IDENTITY:
        if (dx != dy)
            for (i = 0; i < n; i++) dx[i] = dy[i];
        break;
    case NC_ACT_STEP:
        for (i = 0; i < n; i++) dx[i] = 0;
        break;
    case NC_ACT_SIGMOID:
        for (i = 0; i < n; i++) dx[i] = dy[i] * y[i] * (R_C(1) - y[i]);
        break;
    case NC_ACT_TANH:
        for (i = 0; i < n; i++) dx[i] = dy[i] * (R_C(1) - y[i] * y[i]);
        break;
    case NC_ACT_RELU:
        /* dy read unconditionally: the select then vectorises (a branch on
         * y's sign mispredicts half the time on real data) */
        for (i = 0; i < n; i++) {
            real d = dy[i];
            dx[i] = y[i] > 0 ? d : R_C(0);
        }
        break;
    case NC_ACT_LEAKY_RELU:
        /* slope >= 0, so y > 0 exactly where x > 0 */
        for (i = 0; i < n; i++) dx[i] = y[i] > 0 ? dy[i] : param * dy[i];
        break;
    case NC_ACT_ELU:
        /* for x <= 0, d/dx alpha (e^x - 1) = alpha e^x = y + alpha */
        for (i = 0; i < n; i++) dx[i] = y[i] > 0 ? dy[i] : dy[i] * (y[i] + param);
        break;
    case NC_ACT_SOFTPLUS:
        /* softplus' = sigmoid(x) = 1 - e^-y, via expm1 for small y; dx may
         * be y or dy, so expm1(-y) goes through a stack block */
        for (i = 0; i < n; i += NC_VCHUNK) {
            real e[NC_VCHUNK];
            size_t j, len = NC_MIN(n - i, (size_t)NC_VCHUNK);
            for (j = 0; j < len; j++) e[j] = -y[i + j];
            R_VEXPM1(len, e, e);
            for (j = 0; j < len; j++) dx[i + j] = -dy[i + j] * e[j];
        }
        break;
    case NC_ACT_SOFTMAX:
        for (r = 0; r < rows; r++) {
            const real *yr = y + r * cols, *dyr = dy + r * cols;
            real *dxr = dx + r * cols, dot = 0;
            for (i = 0; i < cols; i++) dot += dyr[i] * yr[i];
            for (i = 0; i < cols; i++) dxr[i] = yr[i] * (dyr[i] - dot);
        }
        break;
    case NC_ACT_LOG_SOFTMAX:
        for (r = 0; r < rows; r++) {
            const real *yr = y + r * cols, *dyr = dy + r * cols;
            real *dxr = dx + r * cols, sum = 0;
            for (i = 0; i < cols; i++) sum += dyr[i];
            /* dx may be y or dy: e^y goes through a stack block */
            for (i = 0; i < cols; i += NC_VCHUNK) {
                real e[NC_VCHUNK];
                size_t j, len = NC_MIN(cols - i, (size_t)NC_VCHUNK);
                R_VEXP(len, yr + i, e);
                for (j = 0; j < len; j++) dxr[i + j] = dyr[i + j] - e[j] * sum;
            }
        }
        break;
    default:
        return NC_ERR_ARG;
    }
    return NC_OK;
}

nc_status NC_FN(bias_act)(nc_act act, real param, size_t rows, size_t cols,
                          const real *bias, real *y, size_t ldy)
{
    size_t r, j;
    if ((unsigned)act >= NC_ACT_COUNT_) return NC_ERR_ARG;
    if (bias == NULL && act == NC_ACT_IDENTITY) return NC_OK;
    for (r = 0; r < rows; r++) {
        real *yr = y + r * ldy;
        if (bias)
            for (j = 0; j < cols; j++) yr[j] += bias[j];
        NC_TAG(act_row)(act, param, cols, yr, yr);
    }
    return NC_OK;
}
