/* rbm_avx512.c -- Philox-4x32-10 for 16 blocks at once in AVX-512 registers
 * (the RBM's Bernoulli draws; the same words as nc_philox4x32_10). */
#include <immintrin.h>

#include "internal.h"

void nc_rbm_philox16_avx512(uint64_t seed, uint64_t stream, uint64_t first, uint32_t w[4][16]);

/* lo and hi 32-bit halves of a * m, lane by lane */
static inline void mulhilo(__m512i a, __m512i m, __m512i *lo, __m512i *hi)
{
    __m512i pe = _mm512_mul_epu32(a, m);                      /* even lanes, 64-bit */
    __m512i po = _mm512_mul_epu32(_mm512_srli_epi64(a, 32), m); /* odd lanes */
    *hi = _mm512_mask_blend_epi32(0xAAAA, _mm512_srli_epi64(pe, 32), po);
    *lo = _mm512_mask_blend_epi32(0xAAAA, pe, _mm512_slli_epi64(po, 32));
}

/* the 16 blocks' four words, word j of block first + l in lane l of *cj */
static inline void philox16(uint64_t seed, uint64_t stream, uint64_t first, __m512i *o0,
                            __m512i *o1, __m512i *o2, __m512i *o3)
{
    const __m512i iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    __m512i c0, c1, c2, c3, l0, h0, l1, h1;
    const __m512i m0 = _mm512_set1_epi32((int)0xD2511F53u), m1 = _mm512_set1_epi32((int)0xCD9E8D57u);
    uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
    __mmask16 carry;
    int r;
    /* counters first + l: the low words, plus a carry into the high ones */
    c0 = _mm512_add_epi32(_mm512_set1_epi32((int)(uint32_t)first), iota);
    carry = _mm512_cmplt_epu32_mask(c0, _mm512_set1_epi32((int)(uint32_t)first));
    c1 = _mm512_mask_add_epi32(_mm512_set1_epi32((int)(uint32_t)(first >> 32)), carry,
                               _mm512_set1_epi32((int)(uint32_t)(first >> 32)),
                               _mm512_set1_epi32(1));
    c2 = _mm512_set1_epi32((int)(uint32_t)stream);
    c3 = _mm512_set1_epi32((int)(uint32_t)(stream >> 32));
    for (r = 0; r < 10; r++) {
        __m512i vk0 = _mm512_set1_epi32((int)k0), vk1 = _mm512_set1_epi32((int)k1);
        mulhilo(c0, m0, &l0, &h0);
        mulhilo(c2, m1, &l1, &h1);
        c0 = _mm512_xor_si512(_mm512_xor_si512(h1, c1), vk0);
        c2 = _mm512_xor_si512(_mm512_xor_si512(h0, c3), vk1);
        c1 = l1;
        c3 = l0;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    *o0 = c0;
    *o1 = c1;
    *o2 = c2;
    *o3 = c3;
}

void nc_rbm_philox16_avx512(uint64_t seed, uint64_t stream, uint64_t first, uint32_t w[4][16])
{
    __m512i c0, c1, c2, c3;
    philox16(seed, stream, first, &c0, &c1, &c2, &c3);
    _mm512_storeu_si512((void *)w[0], c0);
    _mm512_storeu_si512((void *)w[1], c1);
    _mm512_storeu_si512((void *)w[2], c2);
    _mm512_storeu_si512((void *)w[3], c3);
}

/* p[i] <- 1 if 32-bit draw i of (seed, stream) < p[i] 2^32 else 0, for
 * i < n (float and double): rbm_bernoulli's contract, 64 elements (16 blocks)
 * a round, the comparison in double as there. */
void nc_rbm_bernoulli_avx512_f32(uint64_t seed, uint64_t stream, size_t n, float *p);
void nc_rbm_bernoulli_avx512_f64(uint64_t seed, uint64_t stream, size_t n, double *p);

static inline void words64(uint64_t seed, uint64_t stream, uint64_t first, uint32_t u[64])
{
    uint32_t w[4][16];
    int l;
    nc_rbm_philox16_avx512(seed, stream, first, w);
    for (l = 0; l < 16; l++) {
        u[4 * l] = w[0][l];
        u[4 * l + 1] = w[1][l];
        u[4 * l + 2] = w[2][l];
        u[4 * l + 3] = w[3][l];
    }
}

void nc_rbm_bernoulli_avx512_f32(uint64_t seed, uint64_t stream, size_t n, float *p)
{
    /* Whole rounds stay in registers: the words are put in element order
     * (element 16s + e is word e % 4 of block 4s + e / 4) by two-source
     * permutes, and compared in float: for an integer w and a float x,
     * w < x exactly when w rounded toward zero to float is < x (that float
     * is the largest one <= w), and x = p 2^32 is exact -- the double
     * comparison's result, 16 lanes at a time. */
    const __m512 scale = _mm512_set1_ps(4294967296.0f), one = _mm512_set1_ps(1.0f);
    const __m512i lane = _mm512_setr_epi32(0, 16, 0, 16, 1, 17, 1, 17, 2, 18, 2, 18, 3, 19, 3, 19);
    uint32_t u[64];
    size_t i0, e;
    int s;
    for (i0 = 0; i0 < n; i0 += 64) {
        size_t len = n - i0 < 64 ? n - i0 : 64;
        __m512i c0, c1, c2, c3;
        philox16(seed, stream, (uint64_t)(i0 / 4), &c0, &c1, &c2, &c3);
        if (len == 64) {
            for (s = 0; s < 4; s++) {
                __m512i ix = _mm512_add_epi32(lane, _mm512_set1_epi32(4 * s));
                __m512i w = _mm512_mask_blend_epi32(0xCCCC, _mm512_permutex2var_epi32(c0, ix, c1),
                                                    _mm512_permutex2var_epi32(c2, ix, c3));
                __m512 wf = _mm512_cvt_roundepu32_ps(w, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
                __m512 x = _mm512_mul_ps(_mm512_loadu_ps(p + i0 + 16 * s), scale);
                __mmask16 k = _mm512_cmp_ps_mask(wf, x, _CMP_LT_OQ);
                _mm512_storeu_ps(p + i0 + 16 * s, _mm512_maskz_mov_ps(k, one));
            }
        } else {
            uint32_t w[4][16];
            _mm512_storeu_si512((void *)w[0], c0);
            _mm512_storeu_si512((void *)w[1], c1);
            _mm512_storeu_si512((void *)w[2], c2);
            _mm512_storeu_si512((void *)w[3], c3);
            for (e = 0; e < len; e++) u[e] = w[e % 4][e / 4];
            for (e = 0; e < len; e++)
                p[i0 + e] = (double)u[e] < (double)p[i0 + e] * 4294967296.0 ? 1.0f : 0.0f;
        }
    }
}

void nc_rbm_bernoulli_avx512_f64(uint64_t seed, uint64_t stream, size_t n, double *p)
{
    const __m512d scale = _mm512_set1_pd(4294967296.0), one = _mm512_set1_pd(1.0);
    uint32_t u[64];
    size_t i0, e;
    for (i0 = 0; i0 < n; i0 += 64) {
        size_t len = n - i0 < 64 ? n - i0 : 64;
        words64(seed, stream, (uint64_t)(i0 / 4), u);
        if (len == 64) {
            for (e = 0; e < 64; e += 8) {
                __m512d w = _mm512_cvtepu32_pd(_mm256_loadu_si256((const __m256i *)(u + e)));
                __m512d t = _mm512_mul_pd(_mm512_loadu_pd(p + i0 + e), scale);
                __mmask8 k = _mm512_cmp_pd_mask(w, t, _CMP_LT_OQ);
                _mm512_storeu_pd(p + i0 + e, _mm512_maskz_mov_pd(k, one));
            }
        } else {
            for (e = 0; e < len; e++)
                p[i0 + e] = (double)u[e] < p[i0 + e] * 4294967296.0 ? 1.0 : 0.0;
        }
    }
}
