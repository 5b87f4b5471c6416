/*
 * optim_adam_avx512.h -- the penalized float Adam step (optim_impl.h's
 * adam_range with PEN 1 or 2, no AMSGrad) in AVX-512 registers, included by
 * optim_avx512.c before its float optim_impl.h.
 *
 * Why by hand: the penalty's value needs sum |w| and sum w^2 of the weights
 * in double lanes. Taken in the same iteration as each vector's update, their
 * conversions run beside the update's divisions and square roots; GCC does
 * not vectorise that loop (32 lanes of double beside 16 of float), and a
 * pass of their own (penalty_sums) costs a third of the step.
 *
 * The same operations in the same order as adam_range and penalty_sums (no
 * contraction into FMAs but one: the square of a float is exact in double,
 * so w * w + s fused rounds as the sum alone does; min/max written so that
 * NaN passes as in the C clip), so the same bits at every level: tests hold
 * the levels to it.
 */
#include <immintrin.h>

/* Elements [0, n - n % 32) of the range (the caller runs the rest through
 * adam_range); returns how many. la, ls: the lanes, from the range's start. */
static size_t nc_adam_pen_f32_avx512(size_t n, float *restrict p, const float *restrict g,
                                     float *restrict m, float *restrict v, float gs, float cv,
                                     float wd, float dec, float b1w, float b2, float b2w,
                                     float bc2s, float eps, float nstep, int hat, float pl1,
                                     float pl2, double *la, double *ls, int pen)
{
    const size_t nl = n - n % 32;
    const __m512 vgs = _mm512_set1_ps(gs), vcv = _mm512_set1_ps(cv),
                 vncv = _mm512_set1_ps(-cv), vwd = _mm512_set1_ps(wd),
                 vdec = _mm512_set1_ps(dec), vb1w = _mm512_set1_ps(b1w),
                 vb2 = _mm512_set1_ps(b2), vb2w = _mm512_set1_ps(b2w),
                 vbc2s = _mm512_set1_ps(bc2s), veps = _mm512_set1_ps(eps),
                 vnstep = _mm512_set1_ps(nstep), vpl1 = _mm512_set1_ps(pl1),
                 vpl2 = _mm512_set1_ps(pl2), one = _mm512_set1_ps(1.0f),
                 zero = _mm512_setzero_ps();
    const __m512d absmask = _mm512_castsi512_pd(_mm512_set1_epi64(0x7fffffffffffffffLL));
    __m512d a[4], s[4];
    size_t i;
    int q;
    for (q = 0; q < 4; q++) {
        a[q] = _mm512_loadu_pd(la + 8 * q);
        s[q] = _mm512_loadu_pd(ls + 8 * q);
    }
    for (i = 0; i < nl; i += 32) {
#define NC_ADAM_HALF(h)                                                                        \
        do {                                                                                   \
            const size_t k = i + 16 * (h);                                                     \
            __m512 w = _mm512_loadu_ps(p + k), gi = _mm512_loadu_ps(g + k), mo, vo, mi, vi, den; \
            __m512d wlo = _mm512_cvtps_pd(_mm512_castps512_ps256(w));                          \
            __m512d whi = _mm512_cvtps_pd(_mm512_extractf32x8_ps(w, 1));                       \
            if (pen == 2) {                                                                    \
                a[2 * (h)] = _mm512_add_pd(a[2 * (h)], _mm512_and_pd(wlo, absmask));           \
                a[2 * (h) + 1] = _mm512_add_pd(a[2 * (h) + 1], _mm512_and_pd(whi, absmask));   \
            }                                                                                  \
            s[2 * (h)] = _mm512_fmadd_pd(wlo, wlo, s[2 * (h)]);                               \
            s[2 * (h) + 1] = _mm512_fmadd_pd(whi, whi, s[2 * (h) + 1]);                       \
            if (pen == 1) {                                                                    \
                gi = _mm512_add_ps(gi, _mm512_mul_ps(vpl2, w));                                \
            } else {                                                                           \
                __m512 sign = _mm512_sub_ps(                                                   \
                    _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(w, zero, _CMP_GT_OQ), one),         \
                    _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(w, zero, _CMP_LT_OQ), one));        \
                gi = _mm512_add_ps(gi, _mm512_add_ps(_mm512_mul_ps(vpl1, sign),                \
                                                     _mm512_mul_ps(vpl2, w)));                 \
            }                                                                                  \
            gi = _mm512_mul_ps(gi, vgs);                                                       \
            gi = _mm512_min_ps(vcv, gi);  /* gi > cv ? cv : gi (NaN gi kept) */               \
            gi = _mm512_max_ps(vncv, gi); /* gi < -cv ? -cv : gi */                           \
            gi = _mm512_add_ps(gi, _mm512_mul_ps(vwd, w));                                     \
            mo = _mm512_loadu_ps(m + k);                                                       \
            vo = _mm512_loadu_ps(v + k);                                                       \
            mi = _mm512_add_ps(mo, _mm512_mul_ps(vb1w, _mm512_sub_ps(gi, mo)));                \
            vi = _mm512_add_ps(_mm512_mul_ps(vo, vb2), _mm512_mul_ps(_mm512_mul_ps(vb2w, gi), gi)); \
            _mm512_storeu_ps(m + k, mi);                                                       \
            _mm512_storeu_ps(v + k, vi);                                                       \
            den = hat ? _mm512_add_ps(_mm512_sqrt_ps(vi), veps)                                \
                      : _mm512_add_ps(_mm512_div_ps(_mm512_sqrt_ps(vi), vbc2s), veps);        \
            _mm512_storeu_ps(p + k, _mm512_add_ps(_mm512_mul_ps(w, vdec),                      \
                                                  _mm512_mul_ps(vnstep, _mm512_div_ps(mi, den)))); \
        } while (0)
        NC_ADAM_HALF(0);
        NC_ADAM_HALF(1);
#undef NC_ADAM_HALF
    }
    for (q = 0; q < 4; q++) {
        _mm512_storeu_pd(la + 8 * q, a[q]);
        _mm512_storeu_pd(ls + 8 * q, s[q]);
    }
    return nl;
}
