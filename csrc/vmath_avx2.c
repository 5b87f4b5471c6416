/*
 * vmath_avx2.c -- vmath.h's float32 functions for AVX2 + FMA, 8 lanes.
 *
 * exp: n = round(x log2 e), r = x - n ln2 (two-part ln2, FMA), a degree-6
 * polynomial in r (Cephes expf), times 2^n applied as two factors 2^(n/2)
 * so that n = 128 (x near the overflow edge) and n < -126 (denormal
 * results) need no special case: the product rounds once into the
 * denormals, and overflows to +inf exactly where e^x does.
 * log: x = m 2^e with m in [sqrt(1/2), sqrt(2)), then a degree-8 polynomial
 * in m - 1 (Cephes logf); denormals are scaled by 2^23 first.
 * tanh: -m / (2 + m) with m = expm1(-2|x|), expm1 from the same reduction
 * (Taylor to r^8), so one formula serves from 0 to saturation.
 * Quotients use a reciprocal estimate refined to within an ulp (div8).
 * The tail (n % 8 elements) goes through one padded vector.
 */
#if defined(__x86_64__) || defined(_M_X64) || defined(__i386__) || defined(_M_IX86)
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "vmath.h"

#define V __m256
#define SET1 _mm256_set1_ps
#define FMA _mm256_fmadd_ps

/* e^x for any x: +-inf and the overflow and underflow edges come out of the
 * clamp and the scaling; NaN stays NaN (the clamp keeps it). */
static inline V exp8(V x)
{
    V n, r, z, p, s1, s2;
    __m256i ni, e1, e2;
    /* min/max with x second keep a NaN x (they return the second operand) */
    x = _mm256_max_ps(SET1(-104.0f), _mm256_min_ps(SET1(88.8f), x));
    n = _mm256_round_ps(_mm256_mul_ps(x, SET1(1.44269504088896341f)),
                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    r = FMA(n, SET1(-0.693359375f), x);
    r = FMA(n, SET1(2.12194440e-4f), r);
    z = _mm256_mul_ps(r, r);
    p = SET1(1.9875691500e-4f);
    p = FMA(p, r, SET1(1.3981999507e-3f));
    p = FMA(p, r, SET1(8.3334519073e-3f));
    p = FMA(p, r, SET1(4.1665795894e-2f));
    p = FMA(p, r, SET1(1.6666665459e-1f));
    p = FMA(p, r, SET1(5.0000001201e-1f));
    p = _mm256_add_ps(FMA(p, z, r), SET1(1.0f));
    ni = _mm256_cvtps_epi32(n);
    e1 = _mm256_srai_epi32(ni, 1);
    e2 = _mm256_sub_epi32(ni, e1);
    s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(e1, _mm256_set1_epi32(127)), 23));
    s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(e2, _mm256_set1_epi32(127)), 23));
    return _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
}

/* ln x for finite x >= FLT_MIN (normal, positive); specials are the caller's. */
static inline V log8_core(V x, V eadj)
{
    __m256i bits = _mm256_castps_si256(x);
    V e = _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_srli_epi32(bits, 23), _mm256_set1_epi32(126)));
    V m = _mm256_castsi256_ps(_mm256_or_si256(_mm256_and_si256(bits, _mm256_set1_epi32(0x007fffff)),
                                              _mm256_set1_epi32(0x3f000000))); /* [0.5, 1) */
    V lo = _mm256_cmp_ps(m, SET1(0.707106781186547524f), _CMP_LT_OQ);
    V f, z, p;
    e = _mm256_add_ps(_mm256_sub_ps(e, _mm256_and_ps(lo, SET1(1.0f))), eadj);
    f = _mm256_add_ps(_mm256_sub_ps(m, SET1(1.0f)), _mm256_and_ps(lo, m)); /* 2m - 1 or m - 1 */
    z = _mm256_mul_ps(f, f);
    p = SET1(7.0376836292e-2f);
    p = FMA(p, f, SET1(-1.1514610310e-1f));
    p = FMA(p, f, SET1(1.1676998740e-1f));
    p = FMA(p, f, SET1(-1.2420140846e-1f));
    p = FMA(p, f, SET1(1.4249322787e-1f));
    p = FMA(p, f, SET1(-1.6668057665e-1f));
    p = FMA(p, f, SET1(2.0000714765e-1f));
    p = FMA(p, f, SET1(-2.4999993993e-1f));
    p = FMA(p, f, SET1(3.3333331174e-1f));
    p = _mm256_mul_ps(_mm256_mul_ps(p, f), z);
    p = FMA(e, SET1(-2.12194440e-4f), p);
    p = FMA(z, SET1(-0.5f), p);
    return FMA(e, SET1(0.693359375f), _mm256_add_ps(f, p));
}

/* a / b for b in [1, 2^30]: a 12-bit reciprocal estimate, one Newton step
 * and one correction of the quotient (a - q b, exact by FMA) give within
 * an ulp of the division at a third of vdivps' throughput cost. */
static inline V div8(V a, V b)
{
    V r = _mm256_rcp_ps(b), q;
    r = FMA(r, _mm256_fnmadd_ps(b, r, SET1(1.0f)), r);
    q = _mm256_mul_ps(a, r);
    return FMA(_mm256_fnmadd_ps(q, b, a), r, q);
}

static inline V nan_through(V x, V y)
{
    return _mm256_blendv_ps(y, x, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
}

/* A NaN x needs no blend in exp, sigmoid and softplus: the clamp in exp8
 * keeps it, so the polynomial and everything after it is NaN. (log needs
 * one: its exponent and mantissa come from x's bits.) */
static inline V v_exp(V x) { return exp8(x); }

/* e^x - 1 = 2 (h expm1(r) + (h - 1/2)) with h = 2^(n-1): exact at n = 0
 * (h = 1/2) where expm1 r carries the relative accuracy near 0, no
 * cancellation elsewhere, and h stays finite up to the overflow edge
 * (n = 128). x is clamped to [-30, 88.8] (expm1 is -1 below -17.4 in
 * float; NaN passes the clamp). Below 2^-25 in magnitude expm1 x rounds to
 * x itself, which is returned as is (denormals and -0 included: the
 * halving by h = 1/2 would flush the smallest of them). */
static inline V v_expm1(V x)
{
    const V sign = SET1(-0.0f);
    V v = _mm256_max_ps(SET1(-30.0f), _mm256_min_ps(SET1(88.8f), x)), n, r, p, h, m;
    n = _mm256_round_ps(_mm256_mul_ps(v, SET1(1.44269504088896341f)),
                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    r = FMA(n, SET1(-0.693359375f), v);
    r = FMA(n, SET1(2.12194440e-4f), r);
    p = SET1(1.0f / 40320);
    p = FMA(p, r, SET1(1.0f / 5040));
    p = FMA(p, r, SET1(1.0f / 720));
    p = FMA(p, r, SET1(1.0f / 120));
    p = FMA(p, r, SET1(1.0f / 24));
    p = FMA(p, r, SET1(1.0f / 6));
    p = FMA(p, r, SET1(0.5f));
    p = FMA(p, _mm256_mul_ps(r, r), r); /* expm1 r, Taylor to r^8 on |r| <= ln2/2 */
    h = _mm256_castsi256_ps(_mm256_slli_epi32(
        _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(126)), 23)); /* 2^(n-1) */
    m = FMA(h, p, _mm256_sub_ps(h, SET1(0.5f)));
    m = _mm256_add_ps(m, m);
    return _mm256_blendv_ps(m, x, _mm256_cmp_ps(_mm256_andnot_ps(sign, x),
                                                 SET1(2.98023224e-8f) /* 2^-25 */, _CMP_LT_OQ));
}

static inline V v_log(V x)
{
    V den = _mm256_cmp_ps(x, SET1(1.17549435e-38f), _CMP_LT_OQ);
    V xs = _mm256_blendv_ps(x, _mm256_mul_ps(x, SET1(8388608.0f)), den);
    V y = log8_core(xs, _mm256_and_ps(den, SET1(-23.0f)));
    y = _mm256_blendv_ps(y, x, _mm256_cmp_ps(x, SET1(INFINITY), _CMP_EQ_OQ));
    y = _mm256_blendv_ps(y, SET1(-INFINITY), _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_EQ_OQ));
    y = _mm256_blendv_ps(y, SET1(NAN), _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_LT_OQ));
    return nan_through(x, y);
}

static inline V v_tanh(V x)
{
    /* tanh|x| = -m / (2 + m) with m = e^-2|x| - 1 = 2^n expm1(r) + (2^n - 1):
     * one formula from 0 (no cancellation: expm1 keeps its relative accuracy)
     * to saturation (beyond 9.01 tanh rounds to 1; |x| is capped at 10 so
     * that 2^n stays normal). A NaN x stays NaN through every step (the cap
     * takes x second, and min returns its second operand for NaN). */
    const V sign = SET1(-0.0f);
    V a = _mm256_min_ps(SET1(10.0f), _mm256_andnot_ps(sign, x));
    V v = _mm256_mul_ps(a, SET1(-2.0f)), n, r, z, p, s, m, y;
    n = _mm256_round_ps(_mm256_mul_ps(v, SET1(1.44269504088896341f)),
                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    r = FMA(n, SET1(-0.693359375f), v);
    r = FMA(n, SET1(2.12194440e-4f), r);
    /* expm1 r = r + r^2 p(r) on |r| <= ln2/2, p exp8's Cephes polynomial:
     * its error is relative to the r^2 p term, so expm1 keeps its relative
     * accuracy near 0, with two FMAs fewer than a Taylor series to r^8 */
    z = _mm256_mul_ps(r, r);
    p = SET1(1.9875691500e-4f);
    p = FMA(p, r, SET1(1.3981999507e-3f));
    p = FMA(p, r, SET1(8.3334519073e-3f));
    p = FMA(p, r, SET1(4.1665795894e-2f));
    p = FMA(p, r, SET1(1.6666665459e-1f));
    p = FMA(p, r, SET1(5.0000001201e-1f));
    p = FMA(p, z, r);
    s = _mm256_castsi256_ps(_mm256_slli_epi32(
        _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23)); /* 2^n, n in [-29, 0] */
    m = FMA(s, p, _mm256_sub_ps(s, SET1(1.0f)));
    y = div8(_mm256_xor_ps(m, sign), _mm256_add_ps(m, SET1(2.0f)));
    return _mm256_or_ps(y, _mm256_and_ps(sign, x)); /* odd; tanh(-0) = -0 */
}

static inline V v_sigmoid(V x)
{
    V e = exp8(_mm256_or_ps(x, SET1(-0.0f))); /* e^-|x|, never overflows */
    V num = _mm256_blendv_ps(SET1(1.0f), e, _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_LT_OQ));
    return div8(num, _mm256_add_ps(SET1(1.0f), e));
}

static inline V v_softplus(V x)
{
    /* log1p(e) = log(u) + (e - (u - 1)) / u with u = 1 + e rounded: the
     * quotient puts back what the rounding of u lost (exactly e when u = 1) */
    V e = exp8(_mm256_or_ps(x, SET1(-0.0f)));
    V u = _mm256_add_ps(SET1(1.0f), e);
    V c = div8(_mm256_sub_ps(e, _mm256_sub_ps(u, SET1(1.0f))), u);
    V l = _mm256_add_ps(log8_core(u, _mm256_setzero_ps()), c);
    return _mm256_add_ps(_mm256_max_ps(x, _mm256_setzero_ps()), l);
}

#define NC_AVX2_ARRAY(fn)                                                 \
    void nc_v##fn##_f32_avx2(size_t n, const float *x, float *y)          \
    {                                                                     \
        size_t i = 0;                                                     \
        for (; i + 16 <= n; i += 16) {                                    \
            V a = v_##fn(_mm256_loadu_ps(x + i));                         \
            V b = v_##fn(_mm256_loadu_ps(x + i + 8));                     \
            _mm256_storeu_ps(y + i, a);                                   \
            _mm256_storeu_ps(y + i + 8, b);                               \
        }                                                                 \
        for (; i + 8 <= n; i += 8)                                        \
            _mm256_storeu_ps(y + i, v_##fn(_mm256_loadu_ps(x + i)));      \
        if (i < n) {                                                      \
            float buf[8] = {1, 1, 1, 1, 1, 1, 1, 1};                      \
            memcpy(buf, x + i, (n - i) * sizeof(float));                  \
            _mm256_storeu_ps(buf, v_##fn(_mm256_loadu_ps(buf)));          \
            memcpy(y + i, buf, (n - i) * sizeof(float));                  \
        }                                                                 \
    }

NC_AVX2_ARRAY(exp)
NC_AVX2_ARRAY(expm1)
NC_AVX2_ARRAY(log)
NC_AVX2_ARRAY(tanh)
NC_AVX2_ARRAY(sigmoid)
NC_AVX2_ARRAY(softplus)

#else
typedef int nc_vmath_avx2_empty_; /* ISO C forbids an empty translation unit */
#endif
