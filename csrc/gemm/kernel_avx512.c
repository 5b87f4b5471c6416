/*
 * gemm/kernel_avx512.c -- AVX-512 micro-kernels (built with the avx512 flags).
 *
 * float: 14 x 32 tile (28 zmm accumulators, 2 for the B row, 1 broadcast).
 * double: 14 x 16 tile, the same shape in 8-lane vectors.
 * Column edges use the opmask registers, so partial tiles cost no scalar loop.
 */
#include "../internal.h"
#include "kernels.h"

#if defined(NC_GEMM_X86) && defined(__AVX512F__)
#include <immintrin.h>

/* ---- float ---- */
#define T float
#define VT __m512
#define MT __mmask16
#define L 16
#define VZERO() _mm512_setzero_ps()
#define VLOAD(p) _mm512_load_ps(p)
#define VLOADM(m, p) _mm512_maskz_loadu_ps((m), (p))
#define VSET1(x) _mm512_set1_ps(x)
#define VFMA(a, b, c) _mm512_fmadd_ps((a), (b), (c))
#define VMUL(a, b) _mm512_mul_ps((a), (b))
#define VSTOREM(p, m, v) _mm512_mask_storeu_ps((p), (m), (v))
#define MASK(cnt) ((__mmask16)((cnt) >= 16 ? 0xffffu : ((1u << (cnt)) - 1u)))
#define TILE tile_f32
#define SMALL small_f32
#define UKR ukr_f32
#define UKR_MR 14
#define UKR_NV 2
#define SMALL_MR 12
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
#define VT __m512d
#define MT __mmask8
#define L 8
#define VZERO() _mm512_setzero_pd()
#define VLOAD(p) _mm512_load_pd(p)
#define VLOADM(m, p) _mm512_maskz_loadu_pd((m), (p))
#define VSET1(x) _mm512_set1_pd(x)
#define VFMA(a, b, c) _mm512_fmadd_pd((a), (b), (c))
#define VMUL(a, b) _mm512_mul_pd((a), (b))
#define VSTOREM(p, m, v) _mm512_mask_storeu_pd((p), (m), (v))
#define MASK(cnt) ((__mmask8)((cnt) >= 8 ? 0xffu : ((1u << (cnt)) - 1u)))
#define TILE tile_f64
#define SMALL small_f64
#define UKR ukr_f64
#define UKR_MR 14
#define UKR_NV 2
#define SMALL_MR 12
#include "tile_x86.h"

/* Block sizes for a core with a 32-48 KiB L1d and 1-2 MiB L2: the 14 x KC
 * micro-panel of A plus a KC x 32 row strip of B stay in L1; MC x KC of A
 * fills about a quarter of L2; KC x NC of B lives in L3. */
#ifndef NC_AVX512_BLOCKS_F32 /* MC, KC, NC; overridable with -D when tuning */
#define NC_AVX512_BLOCKS_F32 42, 1024, 1024
#endif
#ifndef NC_AVX512_BLOCKS_F64
#define NC_AVX512_BLOCKS_F64 42, 512, 1024
#endif
/*                                      ukr      small      MR  NR  MC, KC, NC */
const nc_gemm_cfg_f32 nc_gemm_avx512_f32 = {ukr_f32, small_f32, 14, 32, NC_AVX512_BLOCKS_F32,
                                            nc_gemm_transpose_avx2_f32};
const nc_gemm_cfg_f64 nc_gemm_avx512_f64 = {ukr_f64, small_f64, 14, 16, NC_AVX512_BLOCKS_F64,
                                            nc_gemm_transpose_avx2_f64};

#endif
