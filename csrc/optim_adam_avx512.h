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
#include "gemm/kernels.h" /* NC_AINLINE */

/* The step's coefficients, broadcast once. */
typedef struct nc_adam_vec_k {
    __m512 gs, cv, ncv, wd, dec, b1w, b2, b2w, bc2s, eps, nstep, pl1, pl2;
    int hat, pen, wd_on;
} nc_adam_vec_k;

/* adam_range's update of the 16 weights at p (m, v) with raw gradient
 * graw, their |w| and w^2 added into two lanes of 8 each (lo, hi halves);
 * mod (a literal) is adam_range's MOD. */
NC_AINLINE void nc_adam_vec(const nc_adam_vec_k *K, const int mod, float *p, float *m, float *v,
                            __m512 graw, __m512d *a_lo, __m512d *a_hi, __m512d *s_lo,
                            __m512d *s_hi)
{
    const __m512 w = _mm512_loadu_ps(p), one = _mm512_set1_ps(1.0f), zero = _mm512_setzero_ps();
    const __m512d wlo = _mm512_cvtps_pd(_mm512_castps512_ps256(w));
    const __m512d whi = _mm512_cvtps_pd(_mm512_extractf32x8_ps(w, 1));
    __m512 gi = graw, mo, vo, mi, vi, den;
    if (K->pen == 2) {
        const __m512d absmask = _mm512_castsi512_pd(_mm512_set1_epi64(0x7fffffffffffffffLL));
        *a_lo = _mm512_add_pd(*a_lo, _mm512_and_pd(wlo, absmask));
        *a_hi = _mm512_add_pd(*a_hi, _mm512_and_pd(whi, absmask));
    }
    *s_lo = _mm512_fmadd_pd(wlo, wlo, *s_lo);
    *s_hi = _mm512_fmadd_pd(whi, whi, *s_hi);
    if (K->pen == 1) {
        gi = _mm512_add_ps(gi, _mm512_mul_ps(K->pl2, w));
    } else {
        /* (w > 0) - (w < 0): NaN gives 0 */
        const __m512 pos = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(w, zero, _CMP_GT_OQ), one);
        const __m512 neg = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(w, zero, _CMP_LT_OQ), one);
        const __m512 sign = _mm512_sub_ps(pos, neg);
        gi = _mm512_add_ps(gi, _mm512_add_ps(_mm512_mul_ps(K->pl1, sign),
                                             _mm512_mul_ps(K->pl2, w)));
    }
    if (mod) {
        gi = _mm512_mul_ps(gi, K->gs);
        gi = _mm512_min_ps(K->cv, gi);  /* gi > cv ? cv : gi (NaN gi kept) */
        gi = _mm512_max_ps(K->ncv, gi); /* gi < -cv ? -cv : gi */
        if (K->wd_on) gi = _mm512_add_ps(gi, _mm512_mul_ps(K->wd, w));
    }
    mo = _mm512_loadu_ps(m);
    vo = _mm512_loadu_ps(v);
    mi = _mm512_add_ps(mo, _mm512_mul_ps(K->b1w, _mm512_sub_ps(gi, mo)));
    vi = _mm512_add_ps(_mm512_mul_ps(vo, K->b2), _mm512_mul_ps(_mm512_mul_ps(K->b2w, gi), gi));
    _mm512_storeu_ps(m, mi);
    _mm512_storeu_ps(v, vi);
    den = K->hat ? _mm512_add_ps(_mm512_sqrt_ps(vi), K->eps)
                 : _mm512_add_ps(_mm512_div_ps(_mm512_sqrt_ps(vi), K->bc2s), K->eps);
    _mm512_storeu_ps(p, _mm512_add_ps(mod ? _mm512_mul_ps(w, K->dec) : w,
                                      _mm512_mul_ps(K->nstep, _mm512_div_ps(mi, den))));
}

/* The whole vectors of [0, nl), 32 elements a step: lanes 0-15 then 16-31. */
NC_AINLINE void nc_adam_pen_loop(const nc_adam_vec_k *K, const int mod, size_t nl, float *p,
                                 const float *g, float *m, float *v, __m512d *a, __m512d *s)
{
    size_t i;
    for (i = 0; i < nl; i += 32) {
        nc_adam_vec(K, mod, p + i, m + i, v + i, _mm512_loadu_ps(g + i), &a[0], &a[1], &s[0],
                    &s[1]);
        nc_adam_vec(K, mod, p + i + 16, m + i + 16, v + i + 16, _mm512_loadu_ps(g + i + 16),
                    &a[2], &a[3], &s[2], &s[3]);
    }
}

/* Elements [0, n - n % 32) of the range (the caller runs the rest through
 * adam_range); returns how many. la, ls: the lanes, from the range's start:
 * 32 elements at a time, lanes 0-15 then 16-31. */
static size_t nc_adam_pen_f32_avx512(size_t n, float *restrict p, const float *restrict g,
                                     float *restrict m, float *restrict v, float gs, float cv,
                                     float wd, float dec, float b1w, float b2, float b2w,
                                     float bc2s, float eps, float nstep, int hat, float pl1,
                                     float pl2, double *la, double *ls, int pen, int mod)
{
    const size_t nl = n - n % 32;
    nc_adam_vec_k K;
    __m512d a[4], s[4];
    int q;
    K.gs = _mm512_set1_ps(gs);
    K.cv = _mm512_set1_ps(cv);
    K.ncv = _mm512_set1_ps(-cv);
    K.wd = _mm512_set1_ps(wd);
    K.wd_on = wd != 0;
    K.dec = _mm512_set1_ps(dec);
    K.b1w = _mm512_set1_ps(b1w);
    K.b2 = _mm512_set1_ps(b2);
    K.b2w = _mm512_set1_ps(b2w);
    K.bc2s = _mm512_set1_ps(bc2s);
    K.eps = _mm512_set1_ps(eps);
    K.nstep = _mm512_set1_ps(nstep);
    K.pl1 = _mm512_set1_ps(pl1);
    K.pl2 = _mm512_set1_ps(pl2);
    K.hat = hat;
    K.pen = pen;
    for (q = 0; q < 4; q++) {
        a[q] = _mm512_loadu_pd(la + 8 * q);
        s[q] = _mm512_loadu_pd(ls + 8 * q);
    }
    if (mod) /* (literal flags: each its own loop) */
        nc_adam_pen_loop(&K, 1, nl, p, g, m, v, a, s);
    else
        nc_adam_pen_loop(&K, 0, nl, p, g, m, v, a, s);
    for (q = 0; q < 4; q++) {
        _mm512_storeu_pd(la + 8 * q, a[q]);
        _mm512_storeu_pd(ls + 8 * q, s[q]);
    }
    return nl;
}
