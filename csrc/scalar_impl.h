/*
 * scalar_impl.h -- one-element helpers shared by the kernels, for `real`.
 * Included once per precision by each *_impl.h that needs them.
 */

static inline real NC_TAG(sigmoid)(real x)
{
    /* Two branches so that exp never overflows: for x < 0, e^x / (1 + e^x). */
    if (x >= 0) {
        return R_C(1) / (R_C(1) + R_EXP(-x));
    } else {
        real e = R_EXP(x);
        return e / (R_C(1) + e);
    }
}

