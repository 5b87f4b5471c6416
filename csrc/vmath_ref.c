/*
 * vmath_ref.c -- the portable forms of vmath.h: plain loops over libm, with
 * the same formulas as the scalar kernels had (so the "ref" level computes
 * exactly what nncore computed before the SIMD levels existed). The float64
 * functions are these loops too, at every level.
 */
#include <math.h>

#include "vmath.h"

#define NC_REF_LOOPS(T, SUF, EXP, EXPM1, LOG, LOG1P, TANH, FABS)          \
    void nc_vexp_##SUF(size_t n, const T *x, T *y)                        \
    {                                                                     \
        size_t i;                                                         \
        for (i = 0; i < n; i++) y[i] = EXP(x[i]);                         \
    }                                                                     \
    void nc_vexpm1_##SUF(size_t n, const T *x, T *y)                      \
    {                                                                     \
        size_t i;                                                         \
        for (i = 0; i < n; i++) y[i] = EXPM1(x[i]);                       \
    }                                                                     \
    void nc_vlog_##SUF(size_t n, const T *x, T *y)                        \
    {                                                                     \
        size_t i;                                                         \
        for (i = 0; i < n; i++) y[i] = LOG(x[i]);                         \
    }                                                                     \
    void nc_vtanh_##SUF(size_t n, const T *x, T *y)                       \
    {                                                                     \
        size_t i;                                                         \
        for (i = 0; i < n; i++) y[i] = TANH(x[i]);                        \
    }                                                                     \
    void nc_vsigmoid_##SUF(size_t n, const T *x, T *y)                    \
    {                                                                     \
        /* two branches so that exp never overflows; NaN takes the second \
         * and propagates */                                              \
        size_t i;                                                         \
        for (i = 0; i < n; i++) {                                         \
            T v = x[i];                                                   \
            if (v >= 0) {                                                 \
                y[i] = (T)1 / ((T)1 + EXP(-v));                           \
            } else {                                                      \
                T e = EXP(v);                                             \
                y[i] = e / ((T)1 + e);                                    \
            }                                                             \
        }                                                                 \
    }                                                                     \
    void nc_vsoftplus_##SUF(size_t n, const T *x, T *y)                   \
    {                                                                     \
        /* max(x, 0) + log1p(e^-|x|): no overflow, no cancellation */     \
        size_t i;                                                         \
        for (i = 0; i < n; i++) {                                         \
            T v = x[i];                                                   \
            y[i] = (v > 0 ? v : (T)0) + LOG1P(EXP(-FABS(v)));             \
        }                                                                 \
    }

NC_REF_LOOPS(float, f32_ref, expf, expm1f, logf, log1pf, tanhf, fabsf)
NC_REF_LOOPS(double, f64, exp, expm1, log, log1p, tanh, fabs)
