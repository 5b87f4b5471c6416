/*
 * gemm/kernel_avx2.c -- AVX2 + FMA micro-kernels (built with -mavx2 -mfma).
 *
 * float: 6 x 16 tile (12 ymm accumulators, 2 for the B row, 1 broadcast);
 * double: 6 x 8. Column edges use vmaskmov, whose masked-off lanes do not fault.
 */
#include "../internal.h"
#include "kernels.h"

#if defined(NC_GEMM_X86) && defined(__AVX2__) && defined(__FMA__)
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

#ifndef NC_AVX2_BLOCKS_F32 /* MC, KC, NC; overridable with -D when tuning */
#define NC_AVX2_BLOCKS_F32 48, 1024, 1024
#endif
#ifndef NC_AVX2_BLOCKS_F64
#define NC_AVX2_BLOCKS_F64 48, 512, 1024
#endif
/*                                     ukr      small      MR NR  MC, KC, NC */
const nc_gemm_cfg_f32 nc_gemm_avx2_f32 = {ukr_f32, small_f32, 6, 16, NC_AVX2_BLOCKS_F32};
const nc_gemm_cfg_f64 nc_gemm_avx2_f64 = {ukr_f64, small_f64, 6, 8, NC_AVX2_BLOCKS_F64};

#endif
