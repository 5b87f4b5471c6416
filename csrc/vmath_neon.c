/*
 * vmath_neon.c -- vmath.h's float32 functions for AArch64 Advanced SIMD,
 * 4 lanes. The same algorithms as vmath_avx2.c (Cephes expf/logf
 * polynomials, tanh through expm1, 2^n applied as two factors so that the overflow edge and the
 * denormal results need no special case, denormal log inputs scaled by
 * 2^23). NEON's FMIN/FMAX propagate NaN, and NaN is blended back at the end
 * anyway. The tail (n % 4 elements) goes through one padded vector.
 * setup.py compiles this file on aarch64 only.
 */
#if defined(__aarch64__) || defined(_M_ARM64)
#include <arm_neon.h>
#include <math.h>
#include <string.h>

#include "vmath.h"

#define V float32x4_t
#define SET1 vdupq_n_f32
/* a + b * c */
#define FMA(b, c, a) vfmaq_f32((a), (b), (c))

static inline V exp4(V x)
{
    V n, r, z, p, s1, s2;
    int32x4_t ni, e1, e2;
    x = vmaxq_f32(SET1(-104.0f), vminq_f32(SET1(88.8f), x));
    n = vrndnq_f32(vmulq_f32(x, SET1(1.44269504088896341f)));
    r = FMA(n, SET1(-0.693359375f), x);
    r = FMA(n, SET1(2.12194440e-4f), r);
    z = vmulq_f32(r, r);
    p = SET1(1.9875691500e-4f);
    p = FMA(p, r, SET1(1.3981999507e-3f));
    p = FMA(p, r, SET1(8.3334519073e-3f));
    p = FMA(p, r, SET1(4.1665795894e-2f));
    p = FMA(p, r, SET1(1.6666665459e-1f));
    p = FMA(p, r, SET1(5.0000001201e-1f));
    p = vaddq_f32(FMA(p, z, r), SET1(1.0f));
    ni = vcvtq_s32_f32(n);
    e1 = vshrq_n_s32(ni, 1);
    e2 = vsubq_s32(ni, e1);
    s1 = vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(e1, vdupq_n_s32(127)), 23));
    s2 = vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(e2, vdupq_n_s32(127)), 23));
    return vmulq_f32(vmulq_f32(p, s1), s2);
}

/* ln x for finite x >= FLT_MIN (normal, positive); specials are the caller's. */
static inline V log4_core(V x, V eadj)
{
    uint32x4_t bits = vreinterpretq_u32_f32(x);
    V e = vcvtq_f32_s32(vsubq_s32(vreinterpretq_s32_u32(vshrq_n_u32(bits, 23)), vdupq_n_s32(126)));
    V m = vreinterpretq_f32_u32(vorrq_u32(vandq_u32(bits, vdupq_n_u32(0x007fffffu)),
                                          vdupq_n_u32(0x3f000000u))); /* [0.5, 1) */
    uint32x4_t lo = vcltq_f32(m, SET1(0.707106781186547524f));
    V f, z, p;
    e = vaddq_f32(vsubq_f32(e, vreinterpretq_f32_u32(vandq_u32(lo, vreinterpretq_u32_f32(SET1(1.0f))))),
                  eadj);
    f = vaddq_f32(vsubq_f32(m, SET1(1.0f)), vreinterpretq_f32_u32(vandq_u32(lo, vreinterpretq_u32_f32(m))));
    z = vmulq_f32(f, f);
    p = SET1(7.0376836292e-2f);
    p = FMA(p, f, SET1(-1.1514610310e-1f));
    p = FMA(p, f, SET1(1.1676998740e-1f));
    p = FMA(p, f, SET1(-1.2420140846e-1f));
    p = FMA(p, f, SET1(1.4249322787e-1f));
    p = FMA(p, f, SET1(-1.6668057665e-1f));
    p = FMA(p, f, SET1(2.0000714765e-1f));
    p = FMA(p, f, SET1(-2.4999993993e-1f));
    p = FMA(p, f, SET1(3.3333331174e-1f));
    p = vmulq_f32(vmulq_f32(p, f), z);
    p = FMA(e, SET1(-2.12194440e-4f), p);
    p = FMA(z, SET1(-0.5f), p);
    return FMA(e, SET1(0.693359375f), vaddq_f32(f, p));
}

static inline V nan_through(V x, V y)
{
    return vbslq_f32(vceqq_f32(x, x), y, x);
}

/* A NaN x needs no blend in exp, sigmoid and softplus: the clamp in exp4
 * keeps it, so the polynomial and everything after it is NaN. (log needs
 * one: its exponent and mantissa come from x's bits.) */
static inline V v_exp(V x) { return exp4(x); }

/* e^x - 1 = 2 (h expm1(r) + (h - 1/2)) with h = 2^(n-1): exact at n = 0
 * (h = 1/2) where expm1 r carries the relative accuracy near 0, no
 * cancellation elsewhere, and h stays finite up to the overflow edge
 * (n = 128). x is clamped to [-30, 88.8] (expm1 is -1 below -17.4 in
 * float; NaN passes the clamp). Below 2^-25 in magnitude expm1 x rounds to
 * x itself, which is returned as is (denormals and -0 included: the
 * halving by h = 1/2 would flush the smallest of them). */
static inline V v_expm1(V x)
{
    V v = vmaxq_f32(SET1(-30.0f), vminq_f32(SET1(88.8f), x)), n, r, p, h, m;
    n = vrndnq_f32(vmulq_f32(v, SET1(1.44269504088896341f)));
    r = FMA(n, SET1(-0.693359375f), v);
    r = FMA(n, SET1(2.12194440e-4f), r);
    p = SET1(1.0f / 40320);
    p = FMA(p, r, SET1(1.0f / 5040));
    p = FMA(p, r, SET1(1.0f / 720));
    p = FMA(p, r, SET1(1.0f / 120));
    p = FMA(p, r, SET1(1.0f / 24));
    p = FMA(p, r, SET1(1.0f / 6));
    p = FMA(p, r, SET1(0.5f));
    p = FMA(p, vmulq_f32(r, r), r); /* expm1 r, Taylor to r^8 on |r| <= ln2/2 */
    h = vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(vcvtq_s32_f32(n), vdupq_n_s32(126)), 23));
    m = FMA(h, p, vsubq_f32(h, SET1(0.5f)));
    m = vaddq_f32(m, m);
    return vbslq_f32(vcltq_f32(vabsq_f32(x), SET1(2.98023224e-8f) /* 2^-25 */), x, m);
}

static inline V v_log(V x)
{
    const V zero = SET1(0.0f);
    uint32x4_t den = vcltq_f32(x, SET1(1.17549435e-38f));
    V xs = vbslq_f32(den, vmulq_f32(x, SET1(8388608.0f)), x);
    V y = log4_core(xs, vbslq_f32(den, SET1(-23.0f), zero));
    y = vbslq_f32(vceqq_f32(x, SET1(INFINITY)), x, y);
    y = vbslq_f32(vceqq_f32(x, zero), SET1(-INFINITY), y);
    y = vbslq_f32(vcltq_f32(x, zero), SET1(NAN), y);
    return nan_through(x, y);
}

static inline V v_tanh(V x)
{
    /* tanh|x| = -m / (2 + m) with m = e^-2|x| - 1 = 2^n expm1(r) + (2^n - 1):
     * one formula from 0 (no cancellation: expm1 keeps its relative accuracy)
     * to saturation (beyond 9.01 tanh rounds to 1; |x| is capped at 10 so
     * that 2^n stays normal). A NaN x stays NaN through every step (FMIN
     * propagates it). */
    V a = vminq_f32(SET1(10.0f), vabsq_f32(x));
    V v = vmulq_f32(a, SET1(-2.0f)), n, r, p, s, m, y;
    n = vrndnq_f32(vmulq_f32(v, SET1(1.44269504088896341f)));
    r = FMA(n, SET1(-0.693359375f), v);
    r = FMA(n, SET1(2.12194440e-4f), r);
    p = SET1(1.0f / 40320);
    p = FMA(p, r, SET1(1.0f / 5040));
    p = FMA(p, r, SET1(1.0f / 720));
    p = FMA(p, r, SET1(1.0f / 120));
    p = FMA(p, r, SET1(1.0f / 24));
    p = FMA(p, r, SET1(1.0f / 6));
    p = FMA(p, r, SET1(0.5f));
    p = FMA(p, vmulq_f32(r, r), r); /* expm1 r, Taylor to r^8 on |r| <= ln2/2 */
    s = vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(vcvtq_s32_f32(n), vdupq_n_s32(127)), 23));
    m = FMA(s, p, vsubq_f32(s, SET1(1.0f)));
    y = vdivq_f32(vnegq_f32(m), vaddq_f32(m, SET1(2.0f)));
    return vbslq_f32(vdupq_n_u32(0x80000000u), x, y); /* odd; tanh(-0) = -0 */
}

static inline V v_sigmoid(V x)
{
    V e = exp4(vnegq_f32(vabsq_f32(x))); /* e^-|x|, never overflows */
    V num = vbslq_f32(vcltq_f32(x, SET1(0.0f)), e, SET1(1.0f));
    return vdivq_f32(num, vaddq_f32(SET1(1.0f), e));
}

static inline V v_softplus(V x)
{
    /* log1p(e) = log(u) + (e - (u - 1)) / u with u = 1 + e rounded */
    V e = exp4(vnegq_f32(vabsq_f32(x)));
    V u = vaddq_f32(SET1(1.0f), e);
    V c = vdivq_f32(vsubq_f32(e, vsubq_f32(u, SET1(1.0f))), u);
    V l = vaddq_f32(log4_core(u, SET1(0.0f)), c);
    return vaddq_f32(vmaxq_f32(x, SET1(0.0f)), l);
}

#define NC_NEON_ARRAY(fn)                                                 \
    void nc_v##fn##_f32_neon(size_t n, const float *x, float *y)          \
    {                                                                     \
        size_t i = 0;                                                     \
        for (; i + 8 <= n; i += 8) {                                      \
            V a = v_##fn(vld1q_f32(x + i));                               \
            V b = v_##fn(vld1q_f32(x + i + 4));                           \
            vst1q_f32(y + i, a);                                          \
            vst1q_f32(y + i + 4, b);                                      \
        }                                                                 \
        for (; i + 4 <= n; i += 4)                                        \
            vst1q_f32(y + i, v_##fn(vld1q_f32(x + i)));                   \
        if (i < n) {                                                      \
            float buf[4] = {1, 1, 1, 1};                                  \
            memcpy(buf, x + i, (n - i) * sizeof(float));                  \
            vst1q_f32(buf, v_##fn(vld1q_f32(buf)));                       \
            memcpy(y + i, buf, (n - i) * sizeof(float));                  \
        }                                                                 \
    }

NC_NEON_ARRAY(exp)
NC_NEON_ARRAY(expm1)
NC_NEON_ARRAY(log)
NC_NEON_ARRAY(tanh)
NC_NEON_ARRAY(sigmoid)
NC_NEON_ARRAY(softplus)

#else
typedef int nc_vmath_neon_empty_; /* ISO C forbids an empty translation unit */
#endif
