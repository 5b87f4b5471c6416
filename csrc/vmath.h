/*
 * vmath.h -- vectorised exp, log, tanh, sigmoid and softplus over arrays
 * (internal; the activation and loss kernels use them through real.h's
 * R_V* hooks).
 *
 * float32: each call dispatches on nc_active_isa_ to that level's file
 * (vmath_ref.c portable C on libm, vmath_avx2.c, vmath_avx512.c,
 * vmath_neon.c). Every level is within 4 ulp of the correctly rounded value
 * over the whole input range (tests/test_vmath.py measures it), returns NaN
 * for NaN, is exact at +-inf and 0, overflows exp to +inf only above
 * 88.7228 and gives the denormal results of exp below -87.34.
 *   exp      e^x
 *   expm1    e^x - 1, accurate near 0 (the sign of x, -0 included)
 *   log      ln x   (log 0 = -inf, log of x < 0 = NaN, denormal x handled)
 *   tanh     tanh x (saturates to +-1 without overflow)
 *   sigmoid  1 / (1 + e^-x), computed as e^x / (1 + e^x) for x < 0 so that
 *            it never overflows and keeps its relative accuracy down to the
 *            denormals
 *   softplus log(1 + e^x) = max(x, 0) + log1p(e^-|x|)
 * y may equal x (in place); otherwise they must not overlap.
 *
 * float64 stays on libm (plain loops, the same formulas as the scalar
 * kernels), so the double kernels are unchanged.
 */
#ifndef NC_VMATH_H
#define NC_VMATH_H

#include <stddef.h>

#include "internal.h"

void nc_vexp_f32(size_t n, const float *x, float *y);
void nc_vexpm1_f32(size_t n, const float *x, float *y);
void nc_vlog_f32(size_t n, const float *x, float *y);
void nc_vtanh_f32(size_t n, const float *x, float *y);
void nc_vsigmoid_f32(size_t n, const float *x, float *y);
void nc_vsoftplus_f32(size_t n, const float *x, float *y);

void nc_vexp_f64(size_t n, const double *x, double *y);
void nc_vexpm1_f64(size_t n, const double *x, double *y);
void nc_vlog_f64(size_t n, const double *x, double *y);
void nc_vtanh_f64(size_t n, const double *x, double *y);
void nc_vsigmoid_f64(size_t n, const double *x, double *y);
void nc_vsoftplus_f64(size_t n, const double *x, double *y);

/* Per-level float32 implementations (the dispatch in vmath.c picks one). */
#define NC_VMATH_DECLARE(isa)                                              \
    void nc_vexp_f32_##isa(size_t n, const float *x, float *y);           \
    void nc_vexpm1_f32_##isa(size_t n, const float *x, float *y);         \
    void nc_vlog_f32_##isa(size_t n, const float *x, float *y);           \
    void nc_vtanh_f32_##isa(size_t n, const float *x, float *y);          \
    void nc_vsigmoid_f32_##isa(size_t n, const float *x, float *y);       \
    void nc_vsoftplus_f32_##isa(size_t n, const float *x, float *y);

NC_VMATH_DECLARE(ref)
#if defined(__x86_64__) || defined(_M_X64) || defined(__i386__) || defined(_M_IX86)
#define NC_VMATH_X86 1
NC_VMATH_DECLARE(avx2)
NC_VMATH_DECLARE(avx512)
#endif
#if defined(__aarch64__) || defined(_M_ARM64)
#define NC_VMATH_NEON 1
NC_VMATH_DECLARE(neon)
#endif

/* Elements per stack scratch block, for kernels that need exp or log of a
 * derived array without allocating (softmax rows, the losses). */
#define NC_VCHUNK 256

#endif /* NC_VMATH_H */
