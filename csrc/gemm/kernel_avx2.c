/*
 * gemm/kernel_avx2.c -- AVX2 + FMA micro-kernels (built with -mavx2 -mfma).
 *
 * float: 6 x 16 tile (12 ymm accumulators, 2 for the B row, 1 broadcast);
 * double: 6 x 8. Column edges use vmaskmov, whose masked-off lanes do not fault.
 */
#include "../internal.h"
#include "kernels.h"

/* MSVC's /arch:AVX2 implies FMA but does not define __FMA__ */
#if defined(NC_GEMM_X86) && defined(__AVX2__) && (defined(__FMA__) || defined(_MSC_VER))
#include <immintrin.h>

static inline __m256i lanes_below_(int cnt) /* lanes i < cnt all ones (32-bit lanes) */
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(cnt), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
static inline __m256i lanes_below64_(int cnt) /* 64-bit lanes i < cnt all ones */
{
    return _mm256_cmpgt_epi64(_mm256_set1_epi64x(cnt), _mm256_setr_epi64x(0, 1, 2, 3));
}

/* ---- float ---- */
#define T float
#define VT __m256
#define MT __m256i
#define L 8
#define VZERO() _mm256_setzero_ps()
#define VLOAD(p) _mm256_load_ps(p)
#define VLOADM(m, p) _mm256_maskload_ps((p), (m))
#define VSET1(x) _mm256_set1_ps(x)
#define VFMA(a, b, c) _mm256_fmadd_ps((a), (b), (c))
#define VMUL(a, b) _mm256_mul_ps((a), (b))
#define VSTOREM(p, m, v) _mm256_maskstore_ps((p), (m), (v))
#define MASK(cnt) lanes_below_((int)(cnt))
#define TILE tile_f32
#define SMALL small_f32
#define UKR ukr_f32
#define UKR_MR 6
#define UKR_NV 2
#define SMALL_MR 6
#include "tile_x86.h"
#undef T
#undef VT
#undef MT
#undef L
#undef VZERO
#undef VLOAD
#undef VLOADM
#undef VSET1
#undef VFMA
#undef VMUL
#undef VSTOREM
#undef MASK
#undef TILE
#undef SMALL
#undef UKR
#undef UKR_MR
#undef UKR_NV
#undef SMALL_MR

/* ---- double ---- */
#define T double
#define VT __m256d
#define MT __m256i
#define L 4
#define VZERO() _mm256_setzero_pd()
#define VLOAD(p) _mm256_load_pd(p)
#define VLOADM(m, p) _mm256_maskload_pd((p), (m))
#define VSET1(x) _mm256_set1_pd(x)
#define VFMA(a, b, c) _mm256_fmadd_pd((a), (b), (c))
#define VMUL(a, b) _mm256_mul_pd((a), (b))
#define VSTOREM(p, m, v) _mm256_maskstore_pd((p), (m), (v))
#define MASK(cnt) lanes_below64_((int)(cnt))
#define TILE tile_f64
#define SMALL small_f64
#define UKR ukr_f64
#define UKR_MR 6
#define UKR_NV 2
#define SMALL_MR 6
#include "tile_x86.h"

/* The scalar remainder of a panel transpose: rows [r0, rows) and the zero
 * padding, every p; and columns [p0, kc) of rows [0, r0). */
#define NC_TRANSPOSE_REST(T)                                                        \
    for (p = p_end; p < kc; p++)                                                    \
        for (r = 0; r < r_end; r++) dst[p * w + r] = src[r * ld + p];               \
    for (p = 0; p < kc; p++) {                                                      \
        for (r = r_end; r < rows; r++) dst[p * w + r] = src[r * ld + p];            \
        for (r = rows; r < w; r++) dst[p * w + r] = (T)0;                           \
    }

/* 8 x 8 blocks through registers (unpack, shuffle, lane permute), a chunk of
 * 8 p at a time across the panel's rows so the written lines stay in L1. */
void nc_gemm_transpose_avx2_f32(const float *src, size_t ld, size_t rows, size_t kc,
                                size_t w, float *dst)
{
    size_t r_end = rows / 8 * 8, p_end = kc / 8 * 8, p0, r0, p, r;
    for (p0 = 0; p0 < p_end; p0 += 8)
        for (r0 = 0; r0 < r_end; r0 += 8) {
            const float *s = src + r0 * ld + p0;
            float *d = dst + p0 * w + r0;
            __m256 r_0 = _mm256_loadu_ps(s), r_1 = _mm256_loadu_ps(s + ld);
            __m256 r_2 = _mm256_loadu_ps(s + 2 * ld), r_3 = _mm256_loadu_ps(s + 3 * ld);
            __m256 r_4 = _mm256_loadu_ps(s + 4 * ld), r_5 = _mm256_loadu_ps(s + 5 * ld);
            __m256 r_6 = _mm256_loadu_ps(s + 6 * ld), r_7 = _mm256_loadu_ps(s + 7 * ld);
            __m256 t0 = _mm256_unpacklo_ps(r_0, r_1), t1 = _mm256_unpackhi_ps(r_0, r_1);
            __m256 t2 = _mm256_unpacklo_ps(r_2, r_3), t3 = _mm256_unpackhi_ps(r_2, r_3);
            __m256 t4 = _mm256_unpacklo_ps(r_4, r_5), t5 = _mm256_unpackhi_ps(r_4, r_5);
            __m256 t6 = _mm256_unpacklo_ps(r_6, r_7), t7 = _mm256_unpackhi_ps(r_6, r_7);
            __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE);
            __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xEE);
            __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xEE);
            __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xEE);
            _mm256_storeu_ps(d, _mm256_permute2f128_ps(s0, s4, 0x20));
            _mm256_storeu_ps(d + w, _mm256_permute2f128_ps(s1, s5, 0x20));
            _mm256_storeu_ps(d + 2 * w, _mm256_permute2f128_ps(s2, s6, 0x20));
            _mm256_storeu_ps(d + 3 * w, _mm256_permute2f128_ps(s3, s7, 0x20));
            _mm256_storeu_ps(d + 4 * w, _mm256_permute2f128_ps(s0, s4, 0x31));
            _mm256_storeu_ps(d + 5 * w, _mm256_permute2f128_ps(s1, s5, 0x31));
            _mm256_storeu_ps(d + 6 * w, _mm256_permute2f128_ps(s2, s6, 0x31));
            _mm256_storeu_ps(d + 7 * w, _mm256_permute2f128_ps(s3, s7, 0x31));
        }
    NC_TRANSPOSE_REST(float)
}

/* 4 x 4 blocks of doubles, the same way. */
void nc_gemm_transpose_avx2_f64(const double *src, size_t ld, size_t rows, size_t kc,
                                size_t w, double *dst)
{
    size_t r_end = rows / 4 * 4, p_end = kc / 4 * 4, p0, r0, p, r;
    for (p0 = 0; p0 < p_end; p0 += 4)
        for (r0 = 0; r0 < r_end; r0 += 4) {
            const double *s = src + r0 * ld + p0;
            double *d = dst + p0 * w + r0;
            __m256d r_0 = _mm256_loadu_pd(s), r_1 = _mm256_loadu_pd(s + ld);
            __m256d r_2 = _mm256_loadu_pd(s + 2 * ld), r_3 = _mm256_loadu_pd(s + 3 * ld);
            __m256d t0 = _mm256_unpacklo_pd(r_0, r_1), t1 = _mm256_unpackhi_pd(r_0, r_1);
            __m256d t2 = _mm256_unpacklo_pd(r_2, r_3), t3 = _mm256_unpackhi_pd(r_2, r_3);
            _mm256_storeu_pd(d, _mm256_permute2f128_pd(t0, t2, 0x20));
            _mm256_storeu_pd(d + w, _mm256_permute2f128_pd(t1, t3, 0x20));
            _mm256_storeu_pd(d + 2 * w, _mm256_permute2f128_pd(t0, t2, 0x31));
            _mm256_storeu_pd(d + 3 * w, _mm256_permute2f128_pd(t1, t3, 0x31));
        }
    NC_TRANSPOSE_REST(double)
}

#ifndef NC_AVX2_BLOCKS_F32 /* MC, KC, NC; overridable with -D when tuning */
#define NC_AVX2_BLOCKS_F32 48, 1024, 1024
#endif
#ifndef NC_AVX2_BLOCKS_F64
#define NC_AVX2_BLOCKS_F64 48, 512, 1024
#endif
/*                                     ukr      small      MR NR  MC, KC, NC */
const nc_gemm_cfg_f32 nc_gemm_avx2_f32 = {ukr_f32, small_f32, 6, 16, NC_AVX2_BLOCKS_F32,
                                          nc_gemm_transpose_avx2_f32};
const nc_gemm_cfg_f64 nc_gemm_avx2_f64 = {ukr_f64, small_f64, 6, 8, NC_AVX2_BLOCKS_F64,
                                          nc_gemm_transpose_avx2_f64};

#endif
