/*
 * vmath_avx512.c -- vmath.h's float32 functions for AVX-512 (F, DQ), 16 lanes.
 *
 * The same algorithms as vmath_avx2.c (Cephes expf and logf polynomials,
 * tanh through expm1), with true divisions for quotients (see div16), and
 * AVX-512's exact helpers: scalef applies 2^n with one rounding, overflowing
 * to +inf and rounding into the denormals exactly as e^x does; getexp and
 * getmant split x = m 2^e for normals and denormals alike. Tails are masked
 * loads and stores.
 */
#if defined(__x86_64__) || defined(_M_X64) || defined(__i386__) || defined(_M_IX86)
#include <immintrin.h>
#include <math.h>

#include "vmath.h"

#define V __m512
#define SET1 _mm512_set1_ps
#define FMA _mm512_fmadd_ps

static inline V exp16(V x)
{
    V n, r, z, p;
    /* min/max with x second keep a NaN x (they return the second operand) */
    x = _mm512_max_ps(SET1(-104.0f), _mm512_min_ps(SET1(88.8f), x));
    n = _mm512_roundscale_ps(_mm512_mul_ps(x, SET1(1.44269504088896341f)),
                             _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    r = FMA(n, SET1(-0.693359375f), x);
    r = FMA(n, SET1(2.12194440e-4f), r);
    z = _mm512_mul_ps(r, r);
    p = SET1(1.9875691500e-4f);
    p = FMA(p, r, SET1(1.3981999507e-3f));
    p = FMA(p, r, SET1(8.3334519073e-3f));
    p = FMA(p, r, SET1(4.1665795894e-2f));
    p = FMA(p, r, SET1(1.6666665459e-1f));
    p = FMA(p, r, SET1(5.0000001201e-1f));
    p = _mm512_add_ps(FMA(p, z, r), SET1(1.0f));
    return _mm512_scalef_ps(p, n);
}

/* ln x for finite x > 0 (denormals included); specials are the caller's. */
static inline V log16_core(V x)
{
    V m = _mm512_getmant_ps(x, _MM_MANT_NORM_p5_1, _MM_MANT_SIGN_zero); /* [0.5, 1) */
    V e = _mm512_add_ps(_mm512_getexp_ps(x), SET1(1.0f));
    __mmask16 lo = _mm512_cmp_ps_mask(m, SET1(0.707106781186547524f), _CMP_LT_OQ);
    V f, z, p;
    e = _mm512_mask_sub_ps(e, lo, e, SET1(1.0f));
    f = _mm512_mask_add_ps(_mm512_sub_ps(m, SET1(1.0f)), lo, _mm512_sub_ps(m, SET1(1.0f)), m);
    z = _mm512_mul_ps(f, f);
    p = SET1(7.0376836292e-2f);
    p = FMA(p, f, SET1(-1.1514610310e-1f));
    p = FMA(p, f, SET1(1.1676998740e-1f));
    p = FMA(p, f, SET1(-1.2420140846e-1f));
    p = FMA(p, f, SET1(1.4249322787e-1f));
    p = FMA(p, f, SET1(-1.6668057665e-1f));
    p = FMA(p, f, SET1(2.0000714765e-1f));
    p = FMA(p, f, SET1(-2.4999993993e-1f));
    p = FMA(p, f, SET1(3.3333331174e-1f));
    p = _mm512_mul_ps(_mm512_mul_ps(p, f), z);
    p = FMA(e, SET1(-2.12194440e-4f), p);
    p = FMA(z, SET1(-0.5f), p);
    return FMA(e, SET1(0.693359375f), _mm512_add_ps(f, p));
}

/* a / b for b in [1, 2^30]. The true division: on Zen 4 vdivps runs on its
 * own pipelined unit (a zmm quotient every ~5 cycles) beside the FMA pipes
 * that the polynomials keep busy, so in these kernels (~20 cycles a vector)
 * it is free, where the refined reciprocal estimate it replaces took six
 * FMA-pipe operations (sigmoid in cache: 16.4 against 20.9 cycles a
 * vector). On Skylake-X (a 16-cycle zmm divide sharing ports 0 and 5) it
 * costs some 15% instead; Ice Lake and later sit in between. */
static inline V div16(V a, V b)
{
    return _mm512_div_ps(a, b);
}

static inline V nan_through(V x, V y)
{
    return _mm512_mask_mov_ps(y, _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q), x);
}

/* A NaN x needs no blend in exp, sigmoid and softplus: the clamp in exp16
 * keeps it, so the polynomial and everything after it is NaN. (log needs
 * one: its exponent and mantissa come from x's bits.) */
static inline V v_exp(V x) { return exp16(x); }

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
    V v = _mm512_max_ps(SET1(-30.0f), _mm512_min_ps(SET1(88.8f), x)), n, r, p, h, m;
    n = _mm512_roundscale_ps(_mm512_mul_ps(v, SET1(1.44269504088896341f)),
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
    p = FMA(p, _mm512_mul_ps(r, r), r); /* expm1 r, Taylor to r^8 on |r| <= ln2/2 */
    h = _mm512_scalef_ps(SET1(0.5f), n);
    m = FMA(h, p, _mm512_sub_ps(h, SET1(0.5f)));
    m = _mm512_add_ps(m, m);
    return _mm512_mask_mov_ps(m, _mm512_cmp_ps_mask(_mm512_andnot_ps(sign, x),
                                                    SET1(2.98023224e-8f) /* 2^-25 */, _CMP_LT_OQ),
                              x);
}

static inline V v_log(V x)
{
    V zero = _mm512_setzero_ps();
    V y = log16_core(x);
    y = _mm512_mask_mov_ps(y, _mm512_cmp_ps_mask(x, SET1(INFINITY), _CMP_EQ_OQ), x);
    y = _mm512_mask_mov_ps(y, _mm512_cmp_ps_mask(x, zero, _CMP_EQ_OQ), SET1(-INFINITY));
    y = _mm512_mask_mov_ps(y, _mm512_cmp_ps_mask(x, zero, _CMP_LT_OQ), SET1(NAN));
    return nan_through(x, y);
}

static inline V v_tanh(V x)
{
    /* tanh|x| = -m / (2 + m) with m = e^-2|x| - 1 = 2^n expm1(r) + (2^n - 1):
     * one formula from 0 (no cancellation: expm1 keeps its relative accuracy)
     * to saturation (beyond 9.01 tanh rounds to 1; |x| is capped at 10 so
     * that 2^n stays normal). expm1 r = r + r^2 p(r) with exp16's Cephes
     * polynomial p (degree 5): its error is relative to the r^2 p term, so
     * it keeps expm1's relative accuracy for small r, with two FMAs fewer
     * than a Taylor series to r^8. A NaN x stays NaN through every step (the
     * cap takes x second, and min returns its second operand for NaN). */
    const V sign = SET1(-0.0f);
    V a = _mm512_min_ps(SET1(10.0f), _mm512_andnot_ps(sign, x));
    V v = _mm512_mul_ps(a, SET1(-2.0f)), n, r, z, p, s, m, y;
    n = _mm512_roundscale_ps(_mm512_mul_ps(a, SET1(-2.88539008177792681f)), /* -2 log2 e */
                             _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    r = FMA(n, SET1(-0.693359375f), v);
    r = FMA(n, SET1(2.12194440e-4f), r);
    z = _mm512_mul_ps(r, r);
    p = SET1(1.9875691500e-4f);
    p = FMA(p, r, SET1(1.3981999507e-3f));
    p = FMA(p, r, SET1(8.3334519073e-3f));
    p = FMA(p, r, SET1(4.1665795894e-2f));
    p = FMA(p, r, SET1(1.6666665459e-1f));
    p = FMA(p, r, SET1(5.0000001201e-1f));
    p = FMA(p, z, r); /* expm1 r on |r| <= ln2/2 */
    s = _mm512_scalef_ps(SET1(1.0f), n);
    m = FMA(s, p, _mm512_sub_ps(s, SET1(1.0f)));
    y = div16(_mm512_xor_ps(m, sign), _mm512_add_ps(m, SET1(2.0f)));
    /* odd: |y| with x's sign bit, one bitwise select (y is -0 at x = 0) */
    return _mm512_castsi512_ps(_mm512_ternarylogic_epi32(_mm512_castps_si512(sign),
                                                         _mm512_castps_si512(x),
                                                         _mm512_castps_si512(y), 0xCA));
}

static inline V v_sigmoid(V x)
{
    V e = exp16(_mm512_or_ps(x, SET1(-0.0f))); /* e^-|x|, never overflows */
    V num = _mm512_mask_mov_ps(SET1(1.0f), _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LT_OQ), e);
    return div16(num, _mm512_add_ps(SET1(1.0f), e));
}

static inline V v_softplus(V x)
{
    /* log1p(e) = log(u) + (e - (u - 1)) / u with u = 1 + e rounded */
    V e = exp16(_mm512_or_ps(x, SET1(-0.0f)));
    V u = _mm512_add_ps(SET1(1.0f), e);
    V c = div16(_mm512_sub_ps(e, _mm512_sub_ps(u, SET1(1.0f))), u);
    V l = _mm512_add_ps(log16_core(u), c);
    return _mm512_add_ps(_mm512_max_ps(x, _mm512_setzero_ps()), l);
}

#define NC_AVX512_ARRAY(fn)                                               \
    void nc_v##fn##_f32_avx512(size_t n, const float *x, float *y)        \
    {                                                                     \
        size_t i = 0;                                                     \
        for (; i + 32 <= n; i += 32) {                                    \
            V a = v_##fn(_mm512_loadu_ps(x + i));                         \
            V b = v_##fn(_mm512_loadu_ps(x + i + 16));                    \
            _mm512_storeu_ps(y + i, a);                                   \
            _mm512_storeu_ps(y + i + 16, b);                              \
        }                                                                 \
        for (; i + 16 <= n; i += 16)                                      \
            _mm512_storeu_ps(y + i, v_##fn(_mm512_loadu_ps(x + i)));      \
        if (i < n) {                                                      \
            __mmask16 k = (__mmask16)((1u << (n - i)) - 1u);              \
            V v = _mm512_mask_loadu_ps(SET1(1.0f), k, x + i);             \
            _mm512_mask_storeu_ps(y + i, k, v_##fn(v));                   \
        }                                                                 \
    }

NC_AVX512_ARRAY(exp)
NC_AVX512_ARRAY(expm1)
NC_AVX512_ARRAY(log)
NC_AVX512_ARRAY(tanh)
NC_AVX512_ARRAY(sigmoid)
NC_AVX512_ARRAY(softplus)

#else
typedef int nc_vmath_avx512_empty_; /* ISO C forbids an empty translation unit */
#endif
